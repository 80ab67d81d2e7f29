/*  =========================================================================
    soak.c - one tree worked for a long time, its resources watched

    `make soak` runs it. A root starts one long-lived child ("kid") and,
    in rounds, puts through it: 200,000 calls (four tasks calling at
    once), 1,000 spawn-call-cancel cycles (a nursery opened, a child
    started, called, a call to it cancelled with its ack, the nursery
    closed), portal churn (a portal opened on the kid's endpoint, one
    call, closed) and context churn (a context opened on the kid, its
    stream opened, values echoed, closed, the result read). After each
    round it samples the descriptors (/proc/PID/fd), threads
    (/proc/PID/task) and resident memory (VmRSS) of the root and the kid
    and prints them. The first rounds are the warm-up; the sample after
    them is the baseline, and every later sample must stay within a small
    bound of it: a few descriptors, no new thread, a few MiB. Any failed
    operation fails the soak too.

    The memory series mean something in a plain build only: under
    AddressSanitizer, its quarantine keeps freed memory resident.

    SOAK_SCALE (a number, default 1) scales the work. The whole of it
    takes under a minute on two cores, and .ci/run runs all of it. The last line is the totals, one
    check per series and per kind of work: "tests: N passed, M failed";
    the exit status is 0 only if every check passed.

    This binary is also the child actor the root starts.
    =========================================================================
*/
#include "troupe.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  The full soak's work.
#define SOAK_CALLS          200000
#define SOAK_CYCLES         1000
#define SOAK_PORTALS        4000
#define SOAK_CONTEXTS       4000
#define SOAK_CALLERS        4
#define SOAK_ROUNDS         20
#define SOAK_WARMUP         4       //  rounds before the baseline sample
#define SOAK_ECHOES         4       //  values per context's stream

//  How far a series may grow past its baseline.
#define BOUND_FDS           4
#define BOUND_THREADS       0
#define BOUND_RSS_KIB       (4 * 1024)
#define SETTLE_MS           2000    //  how long a sample past them is retried

//  --------------------------------------------------------------------------
//  The child's exports

static int
s_nil (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx; (void) args; (void) out;
    return 0;
}

static int
s_echo (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx;
    return tr_reply_object (out, args);
}

static int
s_sleep (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int ms = 0;
    if (tr_unpack (args, "[i]", &ms))
        return tr_raise (ctx, "TypeError", "sleep takes [ms]");
    int rc = tr_sleep (ctx, ms);
    return rc? rc: tr_reply_pack (out, "s", "slept");
}

static int
s_pid (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx; (void) args;
    return tr_reply_pack (out, "i", (int) getpid ());
}

//  Started with its args, then every value is sent back; returns how
//  many came once the stream ends.
static int
s_ctx_echo (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    tr_args_t *first = tr_args_from_object (args);
    int rc = tr_ctx_started (ctx, first);
    tr_args_destroy (&first);
    tr_stream_t *stream;
    if (rc || (rc = tr_ctx_open_stream (ctx, &stream)))
        return rc;
    int64_t count = 0;
    const msgpack_object *value;
    while ((rc = tr_stream_recv (stream, &value, -1)) == 0) {
        tr_args_t *back = tr_args_from_object (value);
        rc = tr_stream_send (stream, back);
        tr_args_destroy (&back);
        if (rc)
            break;
        count++;
    }
    tr_stream_close (&stream);
    return rc == TR_ECLOSED? tr_reply_pack (out, "I", count): rc;
}

static const tr_export_t s_exports [] = {
    TR_FN ("nil", s_nil),
    TR_FN ("echo", s_echo),
    TR_FN ("sleep", s_sleep),
    TR_FN ("pid", s_pid),
    TR_CTX_FN ("ctx_echo", s_ctx_echo),
    TR_EXPORTS_END
};

//  --------------------------------------------------------------------------
//  Samples

typedef struct {
    int fds, threads;
    long rss_kib;
} sample_t;

static int
s_count_dir (int pid, const char *what)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/%s", pid, what);
    DIR *dir = opendir (path);
    if (!dir)
        return -1;
    int count = 0;
    struct dirent *e;
    while ((e = readdir (dir)))
        if (e->d_name [0] != '.')
            count++;
    closedir (dir);
    //  The root's own opendir holds one descriptor while it counts.
    return pid == (int) getpid () && strcmp (what, "fd") == 0? count - 1: count;
}

static sample_t
s_sample (int pid)
{
    sample_t sample = { s_count_dir (pid, "fd"), s_count_dir (pid, "task"), -1 };
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen (path, "r");
    while (f && fgets (line, sizeof line, f))
        if (strncmp (line, "VmRSS:", 6) == 0)
            sample.rss_kib = atol (line + 6);
    if (f)
        fclose (f);
    return sample;
}

//  --------------------------------------------------------------------------
//  The work

typedef struct {
    tr_actor_t *self;
    tr_portal_t *kid;
    const char *endpoint;           //  the kid's
    int kid_pid;
    long calls, cycles, portals, contexts;      //  per round
    long calls_ok, cycles_ok, portals_ok, contexts_ok;
    long calls_done, cycles_done, portals_done, contexts_done;
    char first_failure [512];
} soak_t;

static void
s_failed (soak_t *self, const char *what, int rc, const tr_error_t *error)
{
    if (*self->first_failure)
        return;
    snprintf (self->first_failure, sizeof self->first_failure, "%s: %s (%s%s%s)",
              what, tr_errname (rc), tr_strerror (rc), error? ": ": "",
              error? tr_error_message (error): "");
}

typedef struct {
    soak_t *soak;
    long count, ok;
} caller_t;

static int
s_caller (tr_ctx_t *ctx, void *arg)
{
    caller_t *caller = arg;
    tr_args_t *args = tr_pack ("[is]", 42, "soak");
    for (long i = 0; i < caller->count; i++) {
        tr_value_t *value = NULL;
        int rc = tr_portal_run (caller->soak->kid, i % 2? "nil": "echo", args, &value);
        tr_value_destroy (&value);
        if (rc == 0)
            caller->ok++;
        else
            s_failed (caller->soak, "call", rc, tr_portal_error (caller->soak->kid));
        if (tr_ctx_cancelled (ctx))
            break;
    }
    tr_args_destroy (&args);
    return 0;
}

static void
s_calls (soak_t *self, long count)
{
    caller_t callers [SOAK_CALLERS];
    tr_task_t *tasks [SOAK_CALLERS];
    for (int i = 0; i < SOAK_CALLERS; i++) {
        callers [i] = (caller_t) { self, count / SOAK_CALLERS + (i < count % SOAK_CALLERS), 0 };
        if (tr_task_spawn (self->self, s_caller, &callers [i], &tasks [i]))
            tasks [i] = NULL;
    }
    for (int i = 0; i < SOAK_CALLERS; i++) {
        if (tasks [i])
            tr_task_join (&tasks [i], NULL);
        self->calls_ok += callers [i].ok;
        self->calls_done += callers [i].count;
    }
}

static int
s_sleeper (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    tr_args_t *args = tr_pack ("[i]", 60000);
    int rc = tr_portal_run (arg, "sleep", args, NULL);
    tr_args_destroy (&args);
    return rc;
}

//  A nursery, a child started in it, called; a second call to it
//  cancelled with its ack; the nursery closed (the child cancelled and
//  reaped).
static void
s_cycle (soak_t *self)
{
    tr_nursery_t *n = NULL;
    tr_portal_t *p = NULL;
    tr_task_t *task = NULL;
    int rc = tr_nursery_open (self->self, &n);
    if (rc == 0 && (rc = tr_nursery_start_actor (n, "cycle", NULL, &p)))
        s_failed (self, "spawn", rc, tr_nursery_error (n));
    if (rc == 0 && (rc = tr_portal_run (p, "nil", NULL, NULL)))
        s_failed (self, "cycle call", rc, tr_portal_error (p));
    if (rc == 0)
        rc = tr_task_spawn (self->self, s_sleeper, p, &task);
    if (rc == 0) {
        //  Let the call leave before it is cancelled.
        tr_sleep (tr_actor_ctx (self->self), 0);
        tr_task_cancel (task);
        int result = 0;
        tr_task_join (&task, &result);
        if (result != TR_ECANCELED) {
            s_failed (self, "cancelled call", result, NULL);
            rc = -1;
        }
    }
    tr_error_t *errors = NULL;
    int close_rc = tr_nursery_close (&n, &errors);
    if (close_rc) {
        s_failed (self, "nursery close", close_rc, errors);
        rc = close_rc;
    }
    tr_error_destroy (&errors);
    self->cycles_done++;
    if (rc == 0)
        self->cycles_ok++;
}

static void
s_portal (soak_t *self)
{
    tr_portal_t *p = NULL;
    int rc = tr_portal_open (self->self, self->endpoint, 5000, &p);
    if (rc)
        s_failed (self, "portal open", rc, tr_ctx_error (tr_actor_ctx (self->self)));
    else
    if ((rc = tr_portal_run (p, "nil", NULL, NULL)))
        s_failed (self, "portal call", rc, tr_portal_error (p));
    tr_portal_close (&p);
    self->portals_done++;
    if (rc == 0)
        self->portals_ok++;
}

static void
s_context (soak_t *self)
{
    tr_context_t *c = NULL;
    tr_stream_t *s = NULL;
    tr_args_t *hello = tr_pack ("s", "hello");
    int rc = tr_portal_open_context (self->kid, "ctx_echo", hello, &c, NULL);
    tr_args_destroy (&hello);
    if (rc == 0)
        rc = tr_context_open_stream (c, &s);
    for (int i = 0; rc == 0 && i < SOAK_ECHOES; i++) {
        tr_args_t *value = tr_pack ("i", i);
        rc = tr_stream_send (s, value);
        tr_args_destroy (&value);
    }
    for (int i = 0; rc == 0 && i < SOAK_ECHOES; i++) {
        const msgpack_object *value;
        int got = -1;
        rc = tr_stream_recv (s, &value, 5000);
        if (rc == 0 && (tr_unpack (value, "i", &got) || got != i))
            rc = TR_EFORMAT;
    }
    if (s)
        tr_stream_close (&s);
    const msgpack_object *result;
    int64_t count = -1;
    if (rc == 0 && (rc = tr_context_result (c, &result)) == 0
    &&  (tr_unpack (result, "I", &count) || count != SOAK_ECHOES))
        rc = TR_EFORMAT;
    if (rc)
        s_failed (self, "context", rc, c? tr_context_error (c): tr_portal_error (self->kid));
    if (c)
        tr_context_close (&c);
    self->contexts_done++;
    if (rc == 0)
        self->contexts_ok++;
}

//  --------------------------------------------------------------------------
//  The verdict

typedef struct {
    const char *name;
    long base, max, last, bound;
} series_t;

static bool
s_verdict (const series_t *series)
{
    bool ok = series->max - series->base <= series->bound;
    printf ("soak: %-13s baseline %ld, max after it %ld, last %ld, bound +%ld: %s\n",
            series->name, series->base, series->max, series->last, series->bound,
            ok? "ok": "GREW");
    return ok;
}

static bool
s_work_verdict (const char *name, long ok, long done)
{
    printf ("soak: %-13s %ld of %ld succeeded: %s\n", name, ok, done,
            ok == done? "ok": "FAILED");
    return ok == done;
}

static double
s_scale (void)
{
    const char *text = getenv ("SOAK_SCALE");
    char *end = NULL;
    double scale = text? strtod (text, &end): 1;
    return !text || end == text || *end || !(scale > 0)? 1: scale;
}

static long
s_per_round (long total, double scale)
{
    long n = (long) (total * scale / SOAK_ROUNDS + 0.5);
    return n > 0? n: 1;
}

static double
s_now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
s_root (tr_actor_t *self, void *arg)
{
    (void) arg;
    double scale = s_scale ();
    soak_t soak = {
        .self = self,
        .calls = s_per_round (SOAK_CALLS, scale),
        .cycles = s_per_round (SOAK_CYCLES, scale),
        .portals = s_per_round (SOAK_PORTALS, scale),
        .contexts = s_per_round (SOAK_CONTEXTS, scale)
    };
    printf ("soak: scale %g: %d rounds of %ld calls, %ld spawn-call-cancel cycles, "
            "%ld portals, %ld contexts; warm-up %d rounds\n", scale, SOAK_ROUNDS,
            soak.calls, soak.cycles, soak.portals, soak.contexts, SOAK_WARMUP);
    fflush (stdout);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    int rc = tr_nursery_start_actor (n, "kid", NULL, &soak.kid);
    if (rc) {
        fprintf (stderr, "soak: cannot start the kid: %s\n", tr_strerror (rc));
        tr_nursery_close (&n, NULL);
        return 1;
    }
    soak.endpoint = tr_portal_endpoint (soak.kid);
    soak.kid_pid = tr_portal_pid (soak.kid);

    enum { ROOT_FDS, ROOT_THREADS, ROOT_RSS, KID_FDS, KID_THREADS, KID_RSS, SERIES };
    series_t series [SERIES] = {
        { "root fds", 0, 0, 0, BOUND_FDS },
        { "root threads", 0, 0, 0, BOUND_THREADS },
        { "root rss KiB", 0, 0, 0, BOUND_RSS_KIB },
        { "kid fds", 0, 0, 0, BOUND_FDS },
        { "kid threads", 0, 0, 0, BOUND_THREADS },
        { "kid rss KiB", 0, 0, 0, BOUND_RSS_KIB }
    };
    double started = s_now_s ();
    for (int round = 1; round <= SOAK_ROUNDS; round++) {
        s_calls (&soak, soak.calls);
        for (long i = 0; i < soak.cycles; i++)
            s_cycle (&soak);
        for (long i = 0; i < soak.portals; i++)
            s_portal (&soak);
        for (long i = 0; i < soak.contexts; i++)
            s_context (&soak);
        //  Connections just closed end a moment later, in libzmq's I/O
        //  threads: a sample past the bounds is taken again, every 50 ms
        //  for up to SETTLE_MS, before it counts. What is held stays.
        long values [SERIES];
        double settle_started = s_now_s ();
        int settled_ms = 0;
        while (true) {
            sample_t root = s_sample ((int) getpid ());
            sample_t kid = s_sample (soak.kid_pid);
            long now [SERIES] = {
                root.fds, root.threads, root.rss_kib, kid.fds, kid.threads, kid.rss_kib
            };
            memcpy (values, now, sizeof values);
            bool within = true;
            for (int s = 0; s < SERIES && round > SOAK_WARMUP; s++)
                within = within && values [s] - series [s].base <= series [s].bound;
            settled_ms = (int) ((s_now_s () - settle_started) * 1000);
            if (within || settled_ms >= SETTLE_MS
            ||  tr_sleep (tr_actor_ctx (self), 50))
                break;
        }
        printf ("soak: round %2d at %6.1f s: root fds %ld threads %ld rss %ld KiB; "
                "kid fds %ld threads %ld rss %ld KiB%s\n", round, s_now_s () - started,
                values [ROOT_FDS], values [ROOT_THREADS], values [ROOT_RSS],
                values [KID_FDS], values [KID_THREADS], values [KID_RSS],
                settled_ms >= 50? " (sampled again)": "");
        fflush (stdout);
        for (int s = 0; s < SERIES; s++) {
            if (round == SOAK_WARMUP)
                series [s].base = series [s].max = values [s];
            else
            if (round > SOAK_WARMUP && values [s] > series [s].max)
                series [s].max = values [s];
            series [s].last = values [s];
        }
    }
    tr_nursery_close (&n, NULL);

    int passed = 0, failed = 0;
    for (int s = 0; s < SERIES; s++)
        s_verdict (&series [s])? passed++: failed++;
    s_work_verdict ("calls", soak.calls_ok, soak.calls_done)? passed++: failed++;
    s_work_verdict ("cycles", soak.cycles_ok, soak.cycles_done)? passed++: failed++;
    s_work_verdict ("portals", soak.portals_ok, soak.portals_done)? passed++: failed++;
    s_work_verdict ("contexts", soak.contexts_ok, soak.contexts_done)? passed++: failed++;
    if (*soak.first_failure)
        printf ("soak: first failure: %s\n", soak.first_failure);
    printf ("soak: %s in %.1f s\n", failed? "FAILED": "passed", s_now_s () - started);
    printf ("tests: %d passed, %d failed\n", passed, failed);
    fflush (stdout);
    return failed? 1: 0;
}

int
main (int argc, char **argv)
{
    tr_config_t config = TR_CONFIG_INIT;
    config.name = "soak";
    config.exports = s_exports;
    int rc = tr_run (&config, argc, argv, s_root, NULL);
    return rc < 0? 2: rc;
}
