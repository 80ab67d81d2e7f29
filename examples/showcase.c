/*  =========================================================================
    showcase.c - a parallel job over a tree of actors

    Reads the regular files under a directory (/usr/share by default, at
    most 20000 files or 500 MB) and counts their bytes, lines and words,
    with a CRC-32 of each file summed into a checksum of the whole set.

    The root walks the directory and starts N workers: this same binary,
    which tr_run turns into a child actor serving "scan". One task per
    worker pulls batches of paths and runs "scan" in its worker, so the
    workers read in parallel and a fast one takes more batches. A file that
    cannot be read is counted, not fatal; a failed batch fails the job.
    Ctrl-C cancels every task and child; the nursery reaps them all.
    =========================================================================
*/
#include <troupe.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
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

//  Read one file in 64 KiB chunks, with a checkpoint after each so that a
//  cancel stops even a big file. Returns 0, TR_ECANCELED or an errno.
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
    while ((size = read (fd, chunk, sizeof chunk)) > 0 && !tr_checkpoint (ctx)) {
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

//  scan [paths] -> [files, bytes, lines, words, crcs, unreadable, why]:
//  paths holds NUL-ended paths one after another; why tells what stopped
//  the first unreadable file ("" if none).
//  Exported with TR_THREAD: the whole function runs on a pool thread, so
//  its blocking reads never stall the actor's own thread, which goes on
//  answering its parent (heartbeats, cancels). tr_to_thread around the
//  reads would do that too, but a cancel ends its wait at once while the
//  thread still uses the paths and counters the call owns; under TR_THREAD
//  the runtime waits for the function, which sees the cancel in
//  tr_checkpoint.
static int
s_scan (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    const char *paths;
    size_t size;
    if (tr_unpack (args, "[y]", &paths, &size) || size == 0 || paths [size - 1])
        return tr_raise (ctx, "TypeError", "scan takes [NUL-ended paths as bytes]");
    totals_t t = { 0 };
    char why [PATH_MAX + 100] = "";
    for (const char *path = paths; path < paths + size; path += strlen (path) + 1) {
        int rc = s_scan_file (ctx, path, &t);
        if (rc < 0)
            return rc;
        if (rc > 0 && t.unreadable++ == 0)
            snprintf (why, sizeof why, "%s: %s", path, strerror (rc));
    }
    return tr_reply_pack (out, "[uuuuuus]", t.files, t.bytes, t.lines, t.words,
                          t.crcs, t.unreadable, why);
}

//  --------------------------------------------------------------------------
//  The root

typedef struct {
    const char *dir;
    int workers;
    size_t max_files;
    //  Every path, NUL-ended, one after another, and where each starts: a
    //  batch of consecutive files is one slice and goes out as it is.
    char *paths;
    size_t paths_size;
    size_t *starts;             //  count + 1 of them
    size_t count;
    uint64_t found_bytes;
    //  The pullers share the rest without a lock: every task of an actor
    //  runs on its one thread, and they switch only in a blocking call.
    size_t next;                //  the first file not handed out yet
    totals_t done;
    char *why;                  //  why the first unreadable file was so
    int failed;                 //  a batch failed: stop pulling
    double started, shown;
} job_t;

typedef struct {
    job_t *job;
    tr_portal_t *portal;
    tr_task_t *puller;
    char uid [128];             //  outlives the portal, for the summary
    int pid;
    totals_t done;
} worker_t;

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

//  One task per worker: take the next 32 files, scan them in the worker,
//  repeat. Taking batches as workers become free, rather than dealing out
//  shares up front, gives a faster worker more of them.
static int
s_pull (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    worker_t *self = arg;
    job_t *job = self->job;
    while (!job->failed && job->next < job->count) {
        size_t first = job->next;
        job->next = first + 32 < job->count? first + 32: job->count;
        tr_args_t *args = tr_pack ("[y]", job->paths + job->starts [first],
                                   job->starts [job->next] - job->starts [first]);
        tr_value_t *answer = NULL;
        int rc = tr_portal_run (self->portal, "scan", args, &answer);
        tr_args_destroy (&args);
        totals_t t;
        const char *why;
        if (rc == 0 && tr_unpack (tr_value_object (answer), "[uuuuuus]", &t.files, &t.bytes,
                                  &t.lines, &t.words, &t.crcs, &t.unreadable, &why))
            rc = TR_EPROTO;             //  not what scan answers
        if (rc == 0) {
            s_add (&job->done, &t);
            s_add (&self->done, &t);
            if (*why && !job->why)
                job->why = strdup (why);
            s_progress (job, false);
        }
        else
        if (rc != TR_ECANCELED) {       //  cancelled: the root says so
            s_print_error ("a batch failed; the job stops", tr_portal_error (self->portal), rc);
            job->failed = rc;
        }
        tr_value_destroy (&answer);
        if (rc)
            return rc;
    }
    return 0;
}

//  Start the workers and a puller for each, and wait for the pullers. The
//  close then cancels the workers (they serve until told) and reaps them.
//  After a Ctrl-C this task is cancelled and tr_task_join returns at once,
//  so the close comes first: it returns once the workers are reaped and no
//  call through their portals is in flight, so every puller has ended.
static void
s_run (tr_actor_t *self, job_t *job, worker_t *workers)
{
    tr_nursery_t *nursery = NULL;
    int rc = tr_nursery_open (self, &nursery);
    for (int i = 0; rc == 0 && i < job->workers; i++) {
        worker_t *worker = &workers [i];
        char name [32];
        snprintf (name, sizeof name, "worker-%d", i + 1);
        if ((rc = tr_nursery_start_actor (nursery, name, NULL, &worker->portal)) == 0) {
            worker->job = job;
            worker->pid = tr_portal_pid (worker->portal);
            snprintf (worker->uid, sizeof worker->uid, "%s", tr_portal_uid (worker->portal));
            rc = tr_task_spawn (self, s_pull, worker, &worker->puller);
        }
        else
        if (rc != TR_ECANCELED)
            s_print_error ("cannot start a worker", tr_nursery_error (nursery), rc);
    }
    if (rc)
        job->failed = rc;               //  the pullers take no more batches
    for (int i = 0; i < job->workers; i++)
        if (workers [i].puller && tr_task_join (&workers [i].puller, NULL))
            break;
    tr_error_t *errors = NULL;
    if (nursery && tr_nursery_close (&nursery, &errors) && errors && !job->failed) {
        s_print_error ("a worker failed", errors, tr_error_code (errors));
        job->failed = tr_error_code (errors);
    }
    tr_error_destroy (&errors);
    for (int i = 0; i < job->workers; i++)
        if (workers [i].puller)
            tr_task_join (&workers [i].puller, NULL);
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
    for (int i = 0; i < job->workers && workers [i].pid; i++)
        printf ("%s %s (pid %d): %llu files, %.1f MB\n",
                i + 1 < job->workers && workers [i + 1].pid? "├──": "└──", workers [i].uid,
                workers [i].pid, (unsigned long long) workers [i].done.files,
                workers [i].done.bytes / 1e6);
}

static const char *s_usage =
    "usage: showcase [--workers N] [--dir PATH] [--max-files N]\n"
    "Reads the regular files under PATH (default /usr/share), at most N files\n"
    "(default 20000) or 500 MB, in N worker actors (default 4).\n";

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
        { "max-files", required_argument, NULL, 'f' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    bool wrong = false;
    while ((option = getopt_long (argc, argv, "w:d:f:h", options, NULL)) != -1)
        switch (option) {
            case 'w': job.workers = atoi (optarg); break;
            case 'd': job.dir = optarg; break;
            case 'f': job.max_files = strtoul (optarg, NULL, 10); break;
            case 'h': fputs (s_usage, stdout); return 0;
            default: wrong = true;      //  getopt said why
        }
    if (wrong || optind < argc || job.workers < 1 || job.workers > 64 || job.max_files < 1) {
        fputs (s_usage, stderr);
        return 2;
    }
    tr_ctx_t *ctx = tr_actor_ctx (self);
    worker_t *workers = calloc ((size_t) job.workers, sizeof *workers);
    job.starts = calloc (job.max_files + 1, sizeof *job.starts);
    int rc = workers && job.starts? s_walk (ctx, &job): TR_ENOMEM;
    if (rc == 0 && job.count > 0) {
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
        TR_FN_THREAD ("scan", s_scan),
        TR_EXPORTS_END
    };
    tr_config_t config = TR_CONFIG_INIT;
    config.name = "showcase";
    config.exports = exports;
    //  Root or worker: tr_run decides, and calls s_root only in the root.
    int rc = tr_run (&config, argc, argv, s_root, argv);
    if (rc < 0)
        fprintf (stderr, "showcase: cannot start: %s\n", tr_strerror (rc));
    return rc < 0? 1: rc;
}
