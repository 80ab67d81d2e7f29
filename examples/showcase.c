/*  =========================================================================
    showcase.c - a parallel job over a tree of actors, streaming its progress

    Reads the regular files under a directory (/usr/share by default, at
    most 20000 files or 500 MB) and counts their bytes, lines and words,
    with a CRC-32 of each file summed into a checksum of the whole set.

    The root walks the directory and starts N workers: this same binary,
    which tr_run turns into a child actor serving "scan". What it shows:

    - contexts: "scan" is a long conversation with one task in a worker,
      not a single call. The worker calls tr_ctx_started once (the root's
      open returns then), and its return value is the context's result:
      the worker's final totals.
    - gather: the root opens the contexts on all workers at once with
      tr_contexts_open, which sends every request before it waits for any
      worker, and closes them together with tr_contexts_close.
    - streams both ways: over each context's stream the root sends batches
      of paths and the worker sends back the totals of each batch as soon
      as it has read it; those partial totals drive the live progress
      line. One task per worker keeps two batches in its stream, so a
      fast worker takes more of them.

    With --registry the root starts no worker: it finds them by name in
    a registry (a troupe-broker), where this same binary, started by hand
    as a daemon on any host, registered and serves "scan" until stopped:
        showcase --tr-daemon --tr-name scan-1 --tr-registry tcp://A:5555
    The root registers there too, and leaves the daemons serving when the
    job is done. Each worker reads the paths on its own host.

    A file that cannot be read is counted, not fatal; a worker that fails
    fails the job, and its error is printed with the worker's traceback.
    With --fail-one one worker raises an error midway through its share,
    to show just that: the root prints the boxed remote error, cancels the
    other workers (each acknowledges) and exits non-zero.
    With --restart the workers are supervised (one_for_one) and one of
    them is killed midway through its share, as the OOM killer would: its
    nursery restarts it, the root opens scan on it again through the same
    portal and sends the batches it had not answered once more, and the
    job completes with the same totals as if nothing had happened.
    Ctrl-C cancels every task and child; the nursery reaps them all.
    =========================================================================
*/
#include <troupe.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <signal.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_BYTES 500000000       //  the walk stops at 500 MB

typedef struct {
    uint64_t files, bytes, lines, words;
    uint64_t crcs;              //  sum of the files' CRC-32s: the same
                                //  however the files are split up
    uint64_t unreadable;
} totals_t;

static void
s_add (totals_t *sum, const totals_t *more)
{
    sum->files += more->files;
    sum->bytes += more->bytes;
    sum->lines += more->lines;
    sum->words += more->words;
    sum->crcs += more->crcs;
    sum->unreadable += more->unreadable;
}

//  --------------------------------------------------------------------------
//  The worker

static uint32_t s_crc_table [256];      //  CRC-32 (IEEE 802.3), made by main

//  Read one file in 64 KiB chunks, with a yield after each: the reads run
//  on the actor's one thread, and the yield lets its loop hear a cancel,
//  which then stops even a big file. Returns 0, TR_ECANCELED or an errno.
static int
s_scan_file (tr_ctx_t *ctx, const char *path, totals_t *totals)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    unsigned char chunk [65536];
    totals_t file = { .files = 1 };
    uint32_t crc = 0xFFFFFFFFu;
    bool in_word = false;
    ssize_t size;
    while ((size = read (fd, chunk, sizeof chunk)) > 0 && tr_sleep (ctx, 0) == 0) {
        for (ssize_t i = 0; i < size; i++) {
            bool space = chunk [i] == ' ' || (chunk [i] >= '\t' && chunk [i] <= '\r');
            crc = s_crc_table [(crc ^ chunk [i]) & 0xFF] ^ (crc >> 8);
            file.lines += chunk [i] == '\n';
            file.words += in_word && space;
            in_word = !space;
        }
        file.bytes += (uint64_t) size;
    }
    int error = size < 0? errno: 0;
    close (fd);
    if (size > 0)
        return TR_ECANCELED;
    if (error == 0) {
        file.words += in_word;
        file.crcs = crc ^ 0xFFFFFFFFu;
        s_add (totals, &file);
    }
    return error;
}

//  --fail-one: the worker chosen to fail raises here, midway through its
//  share. Not static, and never inlined, so that the traceback the root
//  prints names it (the program is linked with -rdynamic, and built
//  without sibling calls: see Makefile.am).
__attribute__ ((noinline)) int
showcase_fail (tr_ctx_t *ctx, const char *path, uint64_t files)
{
    return tr_raise (ctx, "ScanError", "%s failed on purpose (--fail-one) at %s, after %llu files",
                     tr_actor_name (tr_ctx_actor (ctx)), path, (unsigned long long) files);
}

//  scan, a context. Started with nil (or, with --fail-one or --restart,
//  [uid, batches, kill]: the worker whose uid it is raises, or is killed
//  if kill, once it has read that many batches, midway through the next
//  one), it opens its stream and reads each
//  batch the root sends there (NUL-ended paths one after another, as
//  bytes), answering with that batch's [files, bytes, lines, words, crcs,
//  unreadable, why], where why tells what stopped the batch's first
//  unreadable file ("" if none). Once the root closes the stream it
//  returns the totals of all its batches, [files, bytes, lines, words,
//  crcs, unreadable], as the context's result.
//  A context function runs on the actor's thread (TR_THREAD is for plain
//  calls). tr_to_thread could take the reads off it, but a cancel ends
//  its wait at once while the thread would still read the batch, which
//  the stream owns; so the reads stay here and yield as they go.
static int
s_scan (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    const char *fail_uid = NULL;
    int fail_after = 0;
    bool die = false;
    bool fail = tr_unpack (args, "[sib]", &fail_uid, &fail_after, &die) == 0
             && strcmp (fail_uid, tr_actor_uid (tr_ctx_actor (ctx))) == 0;
    int batches = 0;
    tr_stream_t *stream;
    int rc = tr_ctx_started (ctx, NULL);
    if (rc == 0)
        rc = tr_ctx_open_stream (ctx, &stream);
    totals_t all = { 0 };
    const msgpack_object *batch;
    while (rc == 0 && (rc = tr_stream_recv (stream, &batch, -1)) == 0) {
        const char *paths;
        size_t size;
        if (tr_unpack (batch, "y", &paths, &size) || size == 0 || paths [size - 1])
            return tr_raise (ctx, "TypeError", "a batch is NUL-ended paths, as bytes");
        totals_t t = { 0 };
        char why [PATH_MAX + 100] = "";
        size_t count = 0, index = 0;        //  files in the batch, this one
        for (size_t i = 0; i < size; i++)
            count += paths [i] == 0;
        for (const char *path = paths; path < paths + size; path += strlen (path) + 1) {
            if (fail && batches == fail_after && index++ == count / 2) {
                if (die)
                    kill (getpid (), SIGKILL);
                return showcase_fail (ctx, path, all.files + t.files);
            }
            int error = s_scan_file (ctx, path, &t);
            if (error < 0)
                return error;
            if (error > 0 && t.unreadable++ == 0)
                snprintf (why, sizeof why, "%s: %s", path, strerror (error));
        }
        s_add (&all, &t);
        batches++;
        rc = tr_stream_send_pack (stream, "[uuuuuus]", t.files, t.bytes, t.lines,
                                  t.words, t.crcs, t.unreadable, why);
    }
    if (rc != TR_ECLOSED)               //  the root's close ends the stream
        return rc;
    return tr_reply_pack (out, "[uuuuuu]", all.files, all.bytes, all.lines, all.words,
                          all.crcs, all.unreadable);
}

//  --------------------------------------------------------------------------
//  The root

typedef struct worker worker_t;

typedef struct {
    const char *dir;
    int workers;
    bool fail_one;              //  --fail-one: one worker raises midway
    bool restart;               //  --restart: one is killed midway, and
                                //  restarted
    const char *registry;       //  --registry: find the workers there
    const char *names;          //  their names, "a,b,c"; NULL: scan*
    size_t max_files;
    //  Every path, NUL-ended, one after another, and where each starts: a
    //  batch of consecutive files is one slice and goes out as it is.
    char *paths;
    size_t paths_size;
    size_t *starts;             //  count + 1 of them
    size_t count;
    uint64_t found_bytes;
    //  The feeders share the rest without a lock: every task of an actor
    //  runs on its one thread, and they switch only in a blocking call.
    size_t next;                //  the first file not handed out yet
    totals_t done;              //  the sum of the partial totals so far
    char *why;                  //  why the first unreadable file was so
    int failed;                 //  a worker failed: stop feeding
    double started, shown;
    worker_t *all;              //  every worker, job->workers of them
} job_t;

struct worker {
    job_t *job;
    tr_portal_t *portal;        //  owned by the nursery, or by s_run
    tr_context_t **context;     //  its "scan", which s_run owns
    tr_task_t *feeder;
    size_t sent [2][2];         //  [first, next) of the batches sent whose
    int queued;                 //  totals have not come back: the oldest
                                //  first
    int restarts;
    char uid [128];             //  outlives the portal, for the summary
    int pid;
    char endpoint [256];        //  where it serves
    totals_t done;              //  the sum of its partial totals
    totals_t scanned;           //  the same, in its scan now open
};

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
s_print_error (const char *what, const tr_error_t *error, int rc)
{
    char *text = tr_error_format (error);
    fprintf (stderr, "\nshowcase: %s (%s)\n%s", what, tr_strerror (rc), text? text: "");
    free (text);
}

//  Collect the regular files under job->dir, up to the bounds. This runs on
//  the actor's own thread, which has nothing else to do yet; a yield every
//  256 entries lets a Ctrl-C through.
static int
s_walk (tr_ctx_t *ctx, job_t *job)
{
    char *roots [] = { (char *) job->dir, NULL };
    FTS *fts = fts_open (roots, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    FILE *paths = open_memstream (&job->paths, &job->paths_size);
    int rc = fts && paths? 0: TR_ESYS;
    FTSENT *entry;
    for (size_t seen = 1; rc == 0 && job->count < job->max_files
         && job->found_bytes < MAX_BYTES && (entry = fts_read (fts)); seen++) {
        if (entry->fts_info == FTS_F) {
            job->starts [job->count++] = (size_t) ftell (paths);
            job->found_bytes += (uint64_t) entry->fts_statp->st_size;
            fwrite (entry->fts_path, entry->fts_pathlen + 1, 1, paths);
        }
        if (seen % 256 == 0)
            rc = tr_sleep (ctx, 0);
    }
    if (fts)
        fts_close (fts);
    if (paths && fclose (paths))
        rc = TR_ENOMEM;
    job->starts [job->count] = job->paths_size;
    return rc;
}

//  Progress on stderr: redrawn in place on a terminal, else once a second.
static void
s_progress (job_t *job, bool last)
{
    double now = s_now ();
    bool tty = isatty (STDERR_FILENO);
    if (last || tty || now - job->shown >= 1.0) {
        fprintf (stderr, "%s%llu/%zu files, %.1f MB, %.0f files/s%s", tty? "\r": "",
                 (unsigned long long) (job->done.files + job->done.unreadable), job->count,
                 job->done.bytes / 1e6, job->done.files / (now - job->started),
                 tty && !last? "   ": "\n");
        job->shown = now;
    }
}

//  Send files [first, next) to the worker, a slice of job->paths as it
//  is, and remember it until its totals come back.
static int
s_send_range (worker_t *self, tr_stream_t *stream, size_t first, size_t next)
{
    job_t *job = self->job;
    self->sent [self->queued][0] = first;
    self->sent [self->queued][1] = next;
    self->queued++;
    return tr_stream_send_pack (stream, "y", job->paths + job->starts [first],
                                job->starts [next] - job->starts [first]);
}

//  Send the next 32 files.
static int
s_send_batch (worker_t *self, tr_stream_t *stream)
{
    job_t *job = self->job;
    size_t first = job->next;
    job->next = first + 32 < job->count? first + 32: job->count;
    return s_send_range (self, stream, first, job->next);
}

//  Receive the totals of one batch and add them up.
static int
s_recv_totals (worker_t *self, tr_stream_t *stream)
{
    job_t *job = self->job;
    const msgpack_object *partial;
    totals_t t;
    const char *why;
    int rc = tr_stream_recv (stream, &partial, -1);
    if (rc)
        return rc;
    if (tr_unpack (partial, "[uuuuuus]", &t.files, &t.bytes, &t.lines, &t.words,
                   &t.crcs, &t.unreadable, &why))
        return TR_EPROTO;               //  not what scan sends
    s_add (&job->done, &t);
    s_add (&self->done, &t);
    s_add (&self->scanned, &t);
    self->queued--;
    memmove (self->sent [0], self->sent [1], sizeof self->sent [0]);
    if (*why && !job->why)
        job->why = strdup (why);
    s_progress (job, false);
    return 0;
}

//  A worker failed (the first to): print its error, boxed with the
//  worker's traceback, and stop the job. The other workers are cancelled
//  and each acknowledges: those we started as actors (then they exit and
//  the nursery reaps them), daemons found in a registry only in their
//  scan, since they serve others too. Their feeders, which see their
//  contexts end, return without a word: the job has failed already.
static void
s_worker_failed (worker_t *self, int rc)
{
    job_t *job = self->job;
    char what [200];
    snprintf (what, sizeof what, "worker %s failed; the job stops", self->uid);
    s_print_error (what, tr_context_error (*self->context), rc);
    job->failed = rc;
    for (int i = 0; i < job->workers; i++) {
        worker_t *other = &job->all [i];
        if (other == self || !other->portal || !other->context || !*other->context)
            continue;
        int cancel_rc = job->registry? tr_context_cancel (*other->context)
                                     : tr_portal_cancel_actor (other->portal, 1000);
        fprintf (stderr, "showcase: %s %s: %s\n", job->registry? "scan in": "worker",
                 other->uid, cancel_rc? tr_strerror (cancel_rc): "cancelled, acknowledged");
    }
}

//  --restart: the worker died under its scan and its nursery restarts
//  it. Open scan again through the same portal (the open waits for the
//  new process) and send it the batches the dead one had not answered.
//  Returns 0 with *stream the new scan's, or why not.
static int
s_rescan (worker_t *self, tr_stream_t **stream)
{
    char what [300];
    snprintf (what, sizeof what, "worker %s died; its supervisor restarts it and its %d "
              "unanswered batches go again", self->uid, self->queued);
    s_print_error (what, tr_context_error (*self->context), TR_ECRASHED);
    tr_stream_close (stream);
    tr_context_close (self->context);
    int rc = tr_portal_open_context (self->portal, "scan", NULL, self->context, NULL);
    if (rc == 0)
        rc = tr_context_open_stream (*self->context, stream);
    if (rc)
        return rc;
    self->restarts = tr_portal_restarts (self->portal);
    self->pid = tr_portal_pid (self->portal);
    snprintf (self->uid, sizeof self->uid, "%s", tr_portal_uid (self->portal));
    fprintf (stderr, "showcase: restarted as %s (pid %d)\n", self->uid, self->pid);
    memset (&self->scanned, 0, sizeof self->scanned);
    size_t sent [2][2];
    int queued = self->queued;
    memcpy (sent, self->sent, sizeof sent);
    self->queued = 0;
    for (int i = 0; rc == 0 && i < queued; i++)
        rc = s_send_range (self, *stream, sent [i][0], sent [i][1]);
    return rc;
}

//  One task per worker feeds its stream: two batches at first, so that
//  the worker has the next one at hand when it ends one, then another for
//  each batch's totals that come back. When no batch is left it closes
//  the stream, which ends the worker's loop, and checks the worker's
//  result, its final totals, against the partial ones. With --restart a
//  worker that died is scanned again once restarted.
static int
s_feed (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    worker_t *self = arg;
    job_t *job = self->job;
    tr_stream_t *stream = NULL;
    int rc = tr_context_open_stream (*self->context, &stream);
    while (rc == 0 && !job->failed) {
        while (rc == 0 && self->queued < 2 && job->next < job->count)
            rc = s_send_batch (self, stream);
        if (rc || self->queued == 0)
            break;
        rc = s_recv_totals (self, stream);
        if (rc == TR_ECRASHED && job->restart && !job->failed)
            rc = s_rescan (self, &stream);
    }
    tr_stream_close (&stream);
    const msgpack_object *result;
    totals_t t;
    if (rc == 0 && !job->failed
    &&  (rc = tr_context_result (*self->context, &result)) == 0
    &&  (tr_unpack (result, "[uuuuuu]", &t.files, &t.bytes, &t.lines, &t.words,
                    &t.crcs, &t.unreadable)
         || memcmp (&t, &self->scanned, sizeof t)))
        rc = TR_EPROTO;                 //  not the sum of what it sent
    if (rc && rc != TR_ECANCELED && !job->failed)      //  cancelled: the root says so
        s_worker_failed (self, rc);
    //  A scan this task opened again is this task's: it goes with it.
    if (self->restarts)
        tr_context_close (self->context);
    return rc;
}

//  Start job->workers children in a nursery: worker-1, worker-2, ...
static int
s_start_workers (tr_actor_t *self, job_t *job, tr_nursery_t **nursery,
                 tr_portal_t **portals)
{
    int rc = tr_nursery_open (self, nursery);
    //  --restart: a worker that dies is started again, up to 3 times in
    //  10 s; more, and the job fails with every death.
    tr_supervise_t how = { TR_ONE_FOR_ONE, 3, 10000 };
    if (rc == 0 && job->restart)
        rc = tr_nursery_supervise (*nursery, &how);
    for (int i = 0; rc == 0 && i < job->workers; i++) {
        char name [32];
        snprintf (name, sizeof name, "worker-%d", i + 1);
        rc = tr_nursery_start_actor (*nursery, name, NULL, &portals [i]);
        if (rc && rc != TR_ECANCELED)
            s_print_error ("cannot start a worker", tr_nursery_error (*nursery), rc);
    }
    return rc;
}

static int
s_compare_names (const void *a, const void *b)
{
    return strcmp (a, b);
}

//  The names of every actor in the registry whose name starts with
//  "scan", each once, in order; at most 64.
static int
s_list_scanners (tr_actor_t *self, char names [][65], int *count)
{
    tr_value_t *entries = NULL;
    int rc = tr_registry_list (self, NULL, &entries);
    const msgpack_object *list = rc == 0? tr_value_object (entries): NULL;
    for (uint32_t i = 0; list && i < list->via.array.size && *count < 64; i++) {
        const char *name;
        if (tr_unpack (&list->via.array.ptr [i], "{s:s}", "name", &name)
        ||  strncmp (name, "scan", 4) != 0 || strlen (name) > 64)
            continue;
        bool seen = false;
        for (int j = 0; j < *count && !seen; j++)
            seen = strcmp (names [j], name) == 0;
        if (!seen)
            strcpy (names [(*count)++], name);
    }
    tr_value_destroy (&entries);
    qsort (names, (size_t) *count, sizeof names [0], s_compare_names);
    return rc;
}

//  Find the workers in the registry: the names given, else every "scan"
//  one registered now. A named worker may still be starting: each is
//  waited for, 10 s at most. Sets job->workers to how many.
static int
s_find_workers (tr_actor_t *self, job_t *job, tr_portal_t **portals)
{
    char names [64][65];
    int count = 0, rc = 0;
    if (job->names) {
        for (const char *p = job->names; *p && count < 64; count++) {
            size_t len = strcspn (p, ",");
            snprintf (names [count], sizeof names [count], "%.*s", (int) len, p);
            p += p [len] == ','? len + 1: len;
        }
    }
    else
    if ((rc = s_list_scanners (self, names, &count)) == 0 && count == 0) {
        fprintf (stderr, "showcase: no worker registered as scan* at %s\n", job->registry);
        rc = TR_ENOTFOUND;
    }
    else
    if (rc && rc != TR_ECANCELED)
        s_print_error ("cannot list the registry", tr_ctx_error (tr_actor_ctx (self)), rc);
    for (int i = 0; rc == 0 && i < count; i++)
        if ((rc = tr_wait_for_actor (self, names [i], 10000, &portals [i]))
        &&  rc != TR_ECANCELED) {
            char what [200];
            snprintf (what, sizeof what, "no worker '%.64s' at %.100s within 10 s", names [i],
                      job->registry);
            s_print_error (what, tr_ctx_error (tr_actor_ctx (self)), rc);
        }
    job->workers = count;
    return rc;
}

//  Start the workers (or find them), open "scan" in all of them together
//  and feed each from its own task. Once every feeder is done with its
//  context, the contexts are closed together, then the nursery, which
//  cancels the workers (they serve until told) and reaps them; found
//  daemons serve on, and only our portals on them are closed.
//  After a Ctrl-C this task is cancelled and its waits return at once,
//  tr_task_join included (a feeder that has returned is joined all the
//  same), except the nursery's close, which waits for the workers' exit,
//  and the contexts' close, which waits for the cancel acks and for every
//  task still inside a call on them. So then the nursery is closed first:
//  by the time it returns, every stream has ended with its worker and
//  every feeder has returned, and the contexts they used can go. Found
//  daemons stay up: closing the contexts cancels the remote scans, and
//  the feeders, cancelled too, return while it waits.
static void
s_run (tr_actor_t *self, job_t *job, worker_t *workers)
{
    tr_portal_t *portals [64] = { NULL };   //  --workers is at most 64
    tr_context_t *contexts [64] = { NULL };
    tr_nursery_t *nursery = NULL;
    int rc = job->registry? s_find_workers (self, job, portals)
                          : s_start_workers (self, job, &nursery, portals);
    size_t n = (size_t) job->workers;
    job->all = workers;
    for (size_t i = 0; i < n && portals [i]; i++) {
        workers [i].job = job;
        workers [i].portal = portals [i];
        workers [i].pid = tr_portal_pid (portals [i]);
        snprintf (workers [i].uid, sizeof workers [i].uid, "%s", tr_portal_uid (portals [i]));
        snprintf (workers [i].endpoint, sizeof workers [i].endpoint, "%s",
                  tr_portal_endpoint (portals [i]));
    }
    //  --fail-one, --restart: the first worker (its feeder starts first,
    //  so it has work however small the job) fails or is killed halfway
    //  through its share.
    tr_args_t *args = NULL;
    if (rc == 0 && (job->fail_one || job->restart) && n > 0) {
        int share = (int) (job->count / n / 32);
        if (!(args = tr_pack ("[sib]", workers [0].uid, share / 2, job->restart)))
            rc = TR_ENOMEM;
    }
    //  Gather: every request leaves before any worker is waited for.
    if (rc == 0 && (rc = tr_contexts_open (portals, n, "scan", args, contexts, NULL))
    &&  rc != TR_ECANCELED)
        s_print_error ("cannot open scan", tr_ctx_error (tr_actor_ctx (self)), rc);
    tr_args_destroy (&args);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        workers [i].context = &contexts [i];
        rc = tr_task_spawn (self, s_feed, &workers [i], &workers [i].feeder);
    }
    if (rc)
        job->failed = rc;               //  the feeders send no more batches
    bool joined = true;
    for (size_t i = 0; i < n && joined; i++)
        if (workers [i].feeder && tr_task_join (&workers [i].feeder, NULL))
            joined = false;
    if (joined)
        tr_contexts_close (contexts, n);
    tr_error_t *errors = NULL;
    if (nursery && tr_nursery_close (&nursery, &errors) && errors && !job->failed) {
        s_print_error ("a worker failed", errors, tr_error_code (errors));
        job->failed = tr_error_code (errors);
    }
    tr_error_destroy (&errors);
    tr_contexts_close (contexts, n);    //  after a Ctrl-C
    for (size_t i = 0; i < n; i++)
        if (workers [i].feeder)
            tr_task_join (&workers [i].feeder, NULL);
    if (job->registry)
        for (size_t i = 0; i < 64; i++)
            tr_portal_close (&portals [i]);
}

static void
s_summary (tr_actor_t *self, job_t *job, worker_t *workers, bool cancelled)
{
    totals_t *t = &job->done;
    double seconds = s_now () - job->started;
    s_progress (job, true);
    printf ("%s %llu of %zu files in %.2f s: %.0f files/s, %.1f MB/s\n",
            cancelled? "cancelled after": job->failed? "failed after": "read",
            (unsigned long long) t->files, job->count, seconds, t->files / seconds,
            t->bytes / 1e6 / seconds);
    printf ("  %.1f MB, %llu lines, %llu words, checksum %08x\n", t->bytes / 1e6,
            (unsigned long long) t->lines, (unsigned long long) t->words, (uint32_t) t->crcs);
    printf ("  %llu files unreadable%s%s\n", (unsigned long long) t->unreadable,
            job->why? ", the first: ": "", job->why? job->why: "");
    printf ("%s (root, pid %d)\n", tr_actor_uid (self), (int) getpid ());
    for (int i = 0; i < job->workers && workers [i].uid [0]; i++) {
        char where [300];           //  a daemon's pid may be another host's
        snprintf (where, sizeof where, "pid %d%s%s", workers [i].pid,
                  job->registry? " at ": "", job->registry? workers [i].endpoint: "");
        char restarts [64] = "";
        if (workers [i].restarts)
            snprintf (restarts, sizeof restarts, ", restarted %d time%s", workers [i].restarts,
                      workers [i].restarts > 1? "s": "");
        printf ("%s %s (%s): %llu files, %.1f MB%s\n",
                i + 1 < job->workers && workers [i + 1].uid [0]? "├──": "└──", workers [i].uid,
                where, (unsigned long long) workers [i].done.files,
                workers [i].done.bytes / 1e6, restarts);
    }
}

static const char *s_usage =
    "usage: showcase [--workers N] [--dir PATH] [--max-files N] [--fail-one | --restart]\n"
    "       showcase --registry ENDPOINT[,...] [--workers NAME[,NAME...]] [--dir PATH]\n"
    "                [--max-files N] [--fail-one]\n"
    "       showcase --tr-daemon --tr-name NAME --tr-registry ENDPOINT[,...]\n"
    "                [--tr-bind ENDPOINT]\n"
    "Reads the regular files under PATH (default /usr/share), at most N files\n"
    "(default 20000) or 500 MB, in N worker actors (default 4) it starts.\n"
    "With --registry it starts none: it uses the workers registered there as\n"
    "NAME... (default: every name that starts with \"scan\"), which are this\n"
    "program started as daemons (the third form) on this host or others. Each\n"
    "worker reads the paths on its own host. With --fail-one one worker raises\n"
    "an error midway: its traceback is printed, the others are cancelled and\n"
    "the program exits 1. With --restart one worker is killed midway; its\n"
    "supervisor restarts it and the job completes.\n";

static int
s_root (tr_actor_t *self, void *arg)
{
    char **argv = arg;
    int argc = 0;
    while (argv [argc])
        argc++;
    job_t job = { .dir = "/usr/share", .workers = 4, .max_files = 20000 };
    static const struct option options [] = {
        { "workers", required_argument, NULL, 'w' }, { "dir", required_argument, NULL, 'd' },
        { "max-files", required_argument, NULL, 'f' }, { "registry", required_argument, NULL, 'r' },
        { "fail-one", no_argument, NULL, 'x' }, { "restart", no_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    bool wrong = false;
    const char *workers_arg = NULL;
    while ((option = getopt_long (argc, argv, "w:d:f:r:h", options, NULL)) != -1)
        switch (option) {
            case 'w': workers_arg = optarg; break;
            case 'd': job.dir = optarg; break;
            case 'f': job.max_files = strtoul (optarg, NULL, 10); break;
            case 'r': job.registry = optarg; break;
            case 'x': job.fail_one = true; break;
            case 'R': job.restart = true; break;
            case 'h': fputs (s_usage, stdout); return 0;
            default: wrong = true;      //  getopt said why
        }
    if (job.registry)
        job.names = workers_arg;        //  names; how many is how many are found
    else
    if (workers_arg)
        job.workers = atoi (workers_arg);
    if (wrong || optind < argc || job.workers < 1 || job.workers > 64 || job.max_files < 1
    ||  (job.registry && !*job.registry) || (job.names && !*job.names)
    ||  (job.restart && (job.fail_one || job.registry))) {
        fputs (s_usage, stderr);
        return 2;
    }
    //  main gave tr_run the registry; an abbreviated --reg escaped it.
    const char *registry = tr_registry_address (self);
    if (job.registry && (!registry || strcmp (registry, job.registry))) {
        fprintf (stderr, "showcase: spell --registry out in full\n");
        return 2;
    }
    tr_ctx_t *ctx = tr_actor_ctx (self);
    worker_t *workers = calloc (64, sizeof *workers);
    job.starts = calloc (job.max_files + 1, sizeof *job.starts);
    int rc = workers && job.starts? s_walk (ctx, &job): TR_ENOMEM;
    if (rc == 0 && job.count > 0) {
        if (job.registry)
            fprintf (stderr, "showcase: %zu files, %.1f MB under %s; workers from %s\n",
                     job.count, job.found_bytes / 1e6, job.dir, job.registry);
        else
            fprintf (stderr, "showcase: %zu files, %.1f MB under %s; %d workers\n",
                     job.count, job.found_bytes / 1e6, job.dir, job.workers);
        job.started = s_now ();
        s_run (self, &job, workers);
        s_summary (self, &job, workers, tr_ctx_cancelled (ctx));
    }
    else
        fprintf (stderr, "showcase: %s: %s\n", job.dir, rc? tr_strerror (rc): "no regular files there");
    free (workers);
    free (job.starts);
    free (job.paths);
    free (job.why);
    //  After a signal, 0 lets tr_run exit with 130 (SIGINT) or 143 (SIGTERM).
    return tr_ctx_cancelled (ctx)? 0: rc || job.failed || job.count == 0;
}

int
main (int argc, char **argv)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int bit = 0; bit < 8; bit++)
            crc = crc & 1? 0xEDB88320u ^ (crc >> 1): crc >> 1;
        s_crc_table [n] = crc;
    }
    static const tr_export_t exports [] = {
        TR_CTX_FN ("scan", s_scan),
        TR_EXPORTS_END
    };
    tr_config_t config = TR_CONFIG_INIT;
    config.name = "showcase";
    config.exports = exports;
    //  The root registers with its registry as it starts: --registry is
    //  read here, the other options by s_root.
    for (int i = 1; i < argc; i++)
        if (strncmp (argv [i], "--registry=", 11) == 0)
            config.registry = argv [i] + 11;
        else
        if (strcmp (argv [i], "--registry") == 0 && i + 1 < argc)
            config.registry = argv [++i];
    //  Root or worker: tr_run decides, and calls s_root only in the root.
    int rc = tr_run (&config, argc, argv, s_root, argv);
    if (rc < 0)
        fprintf (stderr, "showcase: cannot start: %s\n", tr_strerror (rc));
    return rc < 0? 1: rc;
}
