/*  =========================================================================
    worker.c - the child actor every scenario suite spawns

    A test binary cannot be its own child under Check's fork mode, so the
    suites set config.worker_path to this program. Each export is one
    behaviour a scenario needs: echo, fail, crash, sleep until cancelled,
    block a worker thread, call a grandchild, interleave tasks, read the
    environment, fail at an agreed moment, spin without a checkpoint (and
    ignore SIGTERM), fail or be slow to start when the environment says
    so, exports of kinds that must be refused, and context functions:
    echo over a stream, count, flood, break rule 1 or fail at a chosen
    moment, and a pipeline stage.
    =========================================================================
*/
#include "troupe.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int s_cancels = 0;       //  cancellations observed by sleepers
static int s_sleeping = 0;      //  tasks parked in sleep/thread_sleep now

static int
s_echo (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx;
    return tr_reply_object (out, args);
}

//  TR_THREAD: its arguments back, answered from a pool thread.
static int
s_echo_thread (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx;
    return tr_reply_object (out, args);
}

static int
s_add (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int64_t a, b;
    if (tr_unpack (args, "[II]", &a, &b))
        return tr_raise (ctx, "TypeError", "add takes [int, int]");
    return tr_reply_pack (out, "I", a + b);
}

static int
s_nil (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx; (void) args; (void) out;
    return 0;
}

static int
s_fail (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) out;
    int n = 0;
    tr_unpack (args, "[i]", &n);
    return tr_raise (ctx, "ValueError", "n must be > 0, got %d", n);
}

static int
s_crash (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx; (void) out;
    const char *how = "segv";
    tr_unpack (args, "[s]", &how);
    if (strcmp (how, "abort") == 0)
        abort ();
    if (strcmp (how, "exit") == 0)
        _exit (3);
    raise (SIGSEGV);
    return 0;
}

static int
s_recurse (int depth)
{
    volatile char pad [1024];
    pad [0] = (char) depth;
    return depth > 1000000000? pad [0]: s_recurse (depth + 1) + pad [0];
}

static int
s_overflow (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx; (void) args;
    return tr_reply_pack (out, "i", s_recurse (0));
}

//  [ms]: sleep; a cancel is counted and passed on.
static int
s_sleep (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int ms = 0;
    if (tr_unpack (args, "[i]", &ms))
        return tr_raise (ctx, "TypeError", "sleep takes [ms]");
    s_sleeping++;
    int rc = tr_sleep (ctx, ms);
    s_sleeping--;
    if (rc == TR_ECANCELED)
        s_cancels++;
    if (rc)
        return rc;
    return tr_reply_pack (out, "s", "slept");
}

//  Worker threads inside s_blocking now (a job still queued is not).
static atomic_int s_blocking_now = 0;

static void *
s_blocking (void *arg)
{
    int ms = *(int *) arg;
    atomic_fetch_add (&s_blocking_now, 1);
    usleep ((useconds_t) ms * 1000);
    atomic_fetch_sub (&s_blocking_now, 1);
    return arg;
}

//  How many worker threads are blocked in thread_sleep's job right now.
static int
s_blocking_fn (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx; (void) args;
    return tr_reply_pack (out, "i", atomic_load (&s_blocking_now));
}

//  [ms]: block a worker thread for ms while the task waits.
static int
s_thread_sleep (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    static int ms;      //  outlives a cancelled wait: the thread reads it
    if (tr_unpack (args, "[i]", &ms))
        return tr_raise (ctx, "TypeError", "thread_sleep takes [ms]");
    s_sleeping++;
    void *ret = NULL;
    int rc = tr_to_thread (ctx, s_blocking, &ms, &ret);
    s_sleeping--;
    if (rc == TR_ECANCELED)
        s_cancels++;
    if (rc)
        return rc;
    return tr_reply_pack (out, "b", ret == &ms);
}

static int
s_cancels_fn (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx; (void) args;
    return tr_reply_pack (out, "[ii]", s_cancels, s_sleeping);
}

static int
s_pid (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx; (void) args;
    return tr_reply_pack (out, "i", (int) getpid ());
}

//  [fn, args]: spawn a grandchild, call fn(args) there, return its result
//  (or pass its failure on, which adds this actor to the error's chain).
static int
s_via_child (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    const char *fn;
    const msgpack_object *fn_args;
    if (tr_unpack (args, "[so]", &fn, &fn_args))
        return tr_raise (ctx, "TypeError", "via_child takes [fn, args]");
    tr_nursery_t *n;
    int rc = tr_nursery_open (tr_ctx_actor (ctx), &n);
    if (rc)
        return rc;
    tr_portal_t *p;
    rc = tr_nursery_start_actor (n, "grandchild", NULL, &p);
    tr_value_t *value = NULL;
    if (rc == 0) {
        tr_args_t *a = tr_args_from_object (fn_args);
        rc = tr_portal_run (p, fn, a, &value);
        tr_args_destroy (&a);
        if (rc == 0) {
            //  [result, grandchild pid]
            rc = tr_reply_pack (out, "[oi]", tr_value_object (value), tr_portal_pid (p));
            tr_value_destroy (&value);
        }
    }
    int close_rc = tr_nursery_close (&n, NULL);
    return rc? rc: close_rc;
}

//  [tasks, rounds]: tasks that sleep 0 ms at each round and record the
//  order they ran in, to show they interleave at checkpoints.
typedef struct { int id, rounds; char *trace; } s_lane_t;

static int
s_lane (tr_ctx_t *ctx, void *arg)
{
    s_lane_t *lane = arg;
    for (int i = 0; i < lane->rounds; i++) {
        size_t len = strlen (lane->trace);
        lane->trace [len] = (char) ('a' + lane->id);
        lane->trace [len + 1] = 0;
        int rc = tr_sleep (ctx, 0);
        if (rc)
            return rc;
    }
    return lane->id;
}

static int
s_interleave (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int tasks, rounds;
    if (tr_unpack (args, "[ii]", &tasks, &rounds) || tasks < 1 || tasks > 26
    ||  rounds < 1 || rounds > 100)
        return tr_raise (ctx, "TypeError", "interleave takes [tasks 1..26, rounds 1..100]");
    char trace [26 * 100 + 1] = "";
    s_lane_t lanes [26];
    tr_task_t *handles [26];
    int sum = 0;
    for (int i = 0; i < tasks; i++) {
        lanes [i] = (s_lane_t) { i, rounds, trace };
        tr_task_spawn (tr_ctx_actor (ctx), s_lane, &lanes [i], &handles [i]);
    }
    for (int i = 0; i < tasks; i++) {
        int result = 0;
        tr_task_join (&handles [i], &result);
        sum += result;
    }
    return tr_reply_pack (out, "[si]", trace, sum);
}

//  TR_THREAD: [n] sums 0..n-1 on a pool thread, checking in as it goes.
static int
s_thread_sum (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int64_t n;
    if (tr_unpack (args, "[I]", &n))
        return tr_raise (ctx, "TypeError", "thread_sum takes [n]");
    int64_t sum = 0;
    for (int64_t i = 0; i < n; i++) {
        if ((i & 0xffff) == 0 && tr_checkpoint (ctx))
            return TR_ECANCELED;
        sum += i;
    }
    return tr_reply_pack (out, "I", sum);
}

//  [size]: a string of size bytes.
static int
s_big (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int64_t size;
    if (tr_unpack (args, "[I]", &size) || size < 0 || size > (1 << 28))
        return tr_raise (ctx, "TypeError", "big takes [size]");
    char *data = malloc ((size_t) size);
    if (!data)
        return TR_ENOMEM;
    memset (data, 'x', (size_t) size);
    int rc = tr_reply_pack (out, "s#", data, (size_t) size);
    free (data);
    return rc;
}

//  hold_grandchild: spawn a grandchild that stays up, kept by a task of
//  ours, and return its pid. A test then kills us to see it go by itself.
static tr_nursery_t *s_held = NULL;

static int
s_hold (tr_ctx_t *ctx, void *arg)
{
    (void) arg;
    tr_sleep (ctx, 600000);
    return tr_nursery_close (&s_held, NULL);
}

static int
s_hold_grandchild (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) args;
    if (s_held)
        return tr_raise (ctx, "StateError", "a grandchild is held already");
    tr_actor_t *actor = tr_ctx_actor (ctx);
    tr_portal_t *p;
    tr_task_t *holder;
    int rc = tr_nursery_open (actor, &s_held);
    if (rc == 0)
        rc = tr_nursery_start_actor (s_held, "held", NULL, &p);
    if (rc == 0)
        rc = tr_task_spawn (actor, s_hold, NULL, &holder);
    if (rc)
        return rc;
    return tr_reply_pack (out, "i", tr_portal_pid (p));
}

//  [name]: the value of the environment variable, or nil.
static int
s_getenv (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    const char *name;
    if (tr_unpack (args, "[s]", &name))
        return tr_raise (ctx, "TypeError", "getenv takes [name]");
    return tr_reply_pack (out, "s", getenv (name));
}

//  [at_ms]: block this actor (no checkpoint, so no cancel can stop it)
//  until CLOCK_REALTIME reaches at_ms, then fail as "fail" does. Children
//  given the same at_ms answer at the same moment.
static int
s_fail_at (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) out;
    int64_t at_ms;
    if (tr_unpack (args, "[I]", &at_ms))
        return tr_raise (ctx, "TypeError", "fail_at takes [at_ms]");
    struct timespec at = { (time_t) (at_ms / 1000), (long) (at_ms % 1000) * 1000000L };
    while (clock_nanosleep (CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL) == EINTR)
        ;
    return tr_raise (ctx, "ValueError", "failed at %lld", (long long) at_ms);
}

//  [fifo, ms]: spin for ms (60 s at most) without ever reaching a
//  checkpoint, so the actor sees no cancel: the loop's thread is this
//  task's. First SIGTERM's disposition is set (default or ignored), then
//  one byte is written to the FIFO at path, which the test holds open for
//  reading, to say the spin has begun. Rule 8's escalation ends it.
static int
s_spin_with (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out,
             void (*disposition) (int))
{
    const char *path;
    int ms;
    if (tr_unpack (args, "[si]", &path, &ms) || ms < 0 || ms > 60000)
        return tr_raise (ctx, "TypeError", "spin takes [fifo, ms 0..60000]");
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = disposition;
    sigemptyset (&action.sa_mask);
    sigaction (SIGTERM, &action, NULL);
    int fd = open (path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || write (fd, "s", 1) != 1)
        return tr_raise (ctx, "OSError", "cannot signal on %s: %s", path, strerror (errno));
    close (fd);
    struct timespec start, now;
    clock_gettime (CLOCK_MONOTONIC, &start);
    long long elapsed_ms = 0;
    while (elapsed_ms < ms) {
        clock_gettime (CLOCK_MONOTONIC, &now);
        elapsed_ms = (now.tv_sec - start.tv_sec) * 1000LL
                   + (now.tv_nsec - start.tv_nsec) / 1000000;
    }
    return tr_reply_pack (out, "s", "spun");
}

//  spin: SIGTERM ends it (the runtime's own handler would only write to
//  a pipe that this spinning thread never reads).
static int
s_spin (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    return s_spin_with (ctx, args, out, SIG_DFL);
}

//  stubborn: SIGTERM is ignored as well; only SIGKILL ends it.
static int
s_stubborn (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    return s_spin_with (ctx, args, out, SIG_IGN);
}

//  [ms]: compute for ms (60 s at most) without a checkpoint: the task
//  holds the loop's thread, and only libzmq's I/O thread answers the
//  parent's heartbeats meanwhile.
static int
s_busy (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int ms;
    if (tr_unpack (args, "[i]", &ms) || ms < 0 || ms > 60000)
        return tr_raise (ctx, "TypeError", "busy takes [ms 0..60000]");
    struct timespec start, now;
    clock_gettime (CLOCK_MONOTONIC, &start);
    long long elapsed_ms = 0;
    volatile uint64_t sum = 0;
    while (elapsed_ms < ms) {
        for (int i = 0; i < 100000; i++)
            sum += (uint64_t) i * 2654435761u;
        clock_gettime (CLOCK_MONOTONIC, &now);
        elapsed_ms = (now.tv_sec - start.tv_sec) * 1000LL
                   + (now.tv_nsec - start.tv_nsec) / 1000000;
    }
    return tr_reply_pack (out, "s", "busy");
}

//  --------------------------------------------------------------------------
//  Contexts

static int s_produced = 0;      //  values ctx_flood has sent so far

//  started with args, then every value received is sent back; returns
//  how many came, once the stream ends.
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
    s_sleeping++;
    while ((rc = tr_stream_recv (stream, &value, -1)) == 0) {
        s_sleeping--;
        tr_args_t *back = tr_args_from_object (value);
        rc = tr_stream_send (stream, back);
        tr_args_destroy (&back);
        if (rc)
            break;
        count++;
        s_sleeping++;
    }
    if (rc == TR_ECLOSED || rc == TR_ECANCELED)
        s_sleeping--;
    if (rc == TR_ECANCELED)
        s_cancels++;
    tr_stream_close (&stream);
    if (rc != TR_ECLOSED)
        return rc;
    return tr_reply_pack (out, "I", count);
}

//  [n, close]: started with "go", then the ints 0 .. n-1 on the stream;
//  close (default true) closes it before returning n.
static int
s_ctx_count (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int64_t n = 0;
    bool close = true;
    if (tr_unpack (args, "[I ...]", &n))
        return tr_raise (ctx, "TypeError", "ctx_count takes [n]");
    tr_unpack (args, "[I b]", &n, &close);
    tr_args_t *go = tr_pack ("s", "go");
    int rc = tr_ctx_started (ctx, go);
    tr_args_destroy (&go);
    tr_stream_t *stream;
    if (rc || (rc = tr_ctx_open_stream (ctx, &stream)))
        return rc;
    for (int64_t i = 0; i < n && rc == 0; i++)
        rc = tr_stream_send_pack (stream, "I", i);
    if (close)
        tr_stream_close (&stream);
    if (rc)
        return rc;
    return tr_reply_pack (out, "I", n);
}

//  Send on stream until the caller closes it or cancels, counting in
//  s_produced; a task in it counts as sleeping. Returns the count.
static int
s_flood (tr_stream_t *stream, tr_reply_t *out)
{
    int rc;
    s_produced = 0;
    s_sleeping++;
    while ((rc = tr_stream_send_pack (stream, "i", s_produced)) == 0)
        s_produced++;
    s_sleeping--;
    if (rc == TR_ECANCELED)
        s_cancels++;
    if (rc != TR_ECLOSED)
        return rc;
    return tr_reply_pack (out, "i", s_produced);
}

//  Sends until the caller closes the stream or cancels; counts in
//  s_produced what it sent.
static int
s_ctx_flood (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) args;
    int rc = tr_ctx_started (ctx, NULL);
    tr_stream_t *stream;
    if (rc || (rc = tr_ctx_open_stream (ctx, &stream)))
        return rc;
    return s_flood (stream, out);
}

//  --------------------------------------------------------------------------
//  One-way streams (TR_STREAM): the runtime has started them

//  [n]: the ints 0 .. n-1, then returns n.
static int
s_stream_count (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int64_t n = 0;
    if (tr_unpack (args, "[I]", &n))
        return tr_raise (ctx, "TypeError", "stream_count takes [n]");
    tr_stream_t *stream;
    int rc = tr_ctx_open_stream (ctx, &stream);
    for (int64_t i = 0; i < n && rc == 0; i++)
        rc = tr_stream_send_pack (stream, "I", i);
    return rc? rc: tr_reply_pack (out, "I", n);
}

//  [k]: the ints 0 .. k-1, then fails with a ValueError.
static int
s_stream_fail_after (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) out;
    int k = 0;
    tr_unpack (args, "[i]", &k);
    tr_stream_t *stream;
    int rc = tr_ctx_open_stream (ctx, &stream);
    for (int i = 0; i < k && rc == 0; i++)
        rc = tr_stream_send_pack (stream, "i", i);
    return rc? rc: tr_raise (ctx, "ValueError", "failed after %d values", k);
}

//  Sends until the caller closes the stream or cancels, counting in
//  s_produced; a task in it counts as sleeping.
static int
s_stream_flood (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) args;
    tr_stream_t *stream;
    int rc = tr_ctx_open_stream (ctx, &stream);
    return rc? rc: s_flood (stream, out);
}

//  Sends nothing: waits on its stream until the caller closes it or
//  cancels.
static int
s_stream_quiet (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) args;
    tr_stream_t *stream;
    int rc = tr_ctx_open_stream (ctx, &stream);
    if (rc)
        return rc;
    const msgpack_object *value;
    s_sleeping++;
    while ((rc = tr_stream_recv (stream, &value, -1)) == 0)
        ;
    s_sleeping--;
    if (rc == TR_ECANCELED)
        s_cancels++;
    return rc == TR_ECLOSED? tr_reply_pack (out, "s", "closed"): rc;
}

//  Breaks the rule: calls started, as a context function would, then
//  sends a value and returns as if nothing happened.
static int
s_stream_starts (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) args;
    tr_ctx_started (ctx, NULL);
    tr_stream_t *stream;
    if (tr_ctx_open_stream (ctx, &stream) == 0)
        tr_stream_send_pack (stream, "s", "after started");
    return tr_reply_pack (out, "s", "ignored");
}

static int
s_produced_fn (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx; (void) args;
    return tr_reply_pack (out, "i", s_produced);
}

//  [how]: break rule 1 or fail at an agreed moment. "twice": started
//  twice; "stream_first": open the stream first; "no_started": return
//  without started; "before": raise before started; "mid": send three
//  values, then raise; "after": read until the stream ends, then raise.
//  "ignore": break rule 1 and go on as if nothing happened.
static int
s_ctx_bad (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    const char *how = "";
    tr_unpack (args, "[s]", &how);
    tr_stream_t *stream = NULL;
    if (strcmp (how, "before") == 0)
        return tr_raise (ctx, "ValueError", "failed before started");
    if (strcmp (how, "no_started") == 0)
        return tr_reply_pack (out, "s", "never started");
    if (strcmp (how, "stream_first") == 0) {
        int rc = tr_ctx_open_stream (ctx, &stream);
        return rc? rc: tr_raise (ctx, "AssertionError", "open_stream before started worked");
    }
    if (strcmp (how, "ignore") == 0) {
        tr_ctx_open_stream (ctx, &stream);
        tr_ctx_started (ctx, NULL);
        return tr_reply_pack (out, "s", "ignored");
    }
    int rc = tr_ctx_started (ctx, NULL);
    if (rc)
        return rc;
    if (strcmp (how, "twice") == 0)
        return tr_ctx_started (ctx, NULL);
    if ((rc = tr_ctx_open_stream (ctx, &stream)))
        return rc;
    if (strcmp (how, "mid") == 0) {
        for (int i = 0; i < 3 && rc == 0; i++)
            rc = tr_stream_send_pack (stream, "i", i);
        return rc? rc: tr_raise (ctx, "ValueError", "failed mid-stream");
    }
    const msgpack_object *value;
    while ((rc = tr_stream_recv (stream, &value, -1)) == 0)
        ;
    if (rc != TR_ECLOSED)
        return rc;
    return tr_raise (ctx, "ValueError", "failed after the stream");
}

//  [name]: fails before started in the actor named name; elsewhere
//  starts and waits on its stream until it ends or is cancelled.
static int
s_ctx_fail_in (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    const char *name = "";
    tr_unpack (args, "[s]", &name);
    if (strcmp (name, tr_actor_name (tr_ctx_actor (ctx))) == 0)
        return tr_raise (ctx, "ValueError", "%s fails at started", name);
    //  A cancel counts wherever it finds the task: a gather that fails
    //  may cancel an open this actor has not run up to its receive yet
    //  (the open and the cancel read in one batch).
    int rc = tr_ctx_started (ctx, NULL);
    tr_stream_t *stream;
    if (rc == 0)
        rc = tr_ctx_open_stream (ctx, &stream);
    if (rc == 0) {
        const msgpack_object *value;
        s_sleeping++;
        while ((rc = tr_stream_recv (stream, &value, -1)) == 0)
            ;
        s_sleeping--;
    }
    if (rc == TR_ECANCELED)
        s_cancels++;
    return rc == TR_ECLOSED? tr_reply_pack (out, "s", "closed"): rc;
}

//  [ms]: sends "first", then computes for ms without parking or a
//  checkpoint, then sends "second": the first must not wait for it.
static int
s_ctx_then_compute (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) out;
    int ms = 300;
    tr_unpack (args, "[i]", &ms);
    int rc = tr_ctx_started (ctx, NULL);
    tr_stream_t *stream;
    if (rc || (rc = tr_ctx_open_stream (ctx, &stream)))
        return rc;
    if ((rc = tr_stream_send_pack (stream, "s", "first")))
        return rc;
    struct timespec start, now;
    clock_gettime (CLOCK_MONOTONIC, &start);
    do
        clock_gettime (CLOCK_MONOTONIC, &now);
    while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
    return tr_stream_send_pack (stream, "s", "second");
}

//  [endpoints...]: one stage of a pipeline. Values read from the caller
//  go, plus one, to a context on the next stage (opened at endpoints [0]
//  with the rest); the last stage checks that they come in order. The
//  result is the last stage's [count, in order, last value].
static int
s_ctx_stage (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    if (args->type != MSGPACK_OBJECT_ARRAY)
        return tr_raise (ctx, "TypeError", "ctx_stage takes [endpoints...]");
    tr_portal_t *next = NULL;
    tr_context_t *down = NULL;
    tr_stream_t *downstream = NULL;
    int rc = 0;
    if (args->via.array.size > 0) {
        char endpoint [256];
        const msgpack_object *e = &args->via.array.ptr [0];
        snprintf (endpoint, sizeof endpoint, "%.*s", (int) e->via.str.size, e->via.str.ptr);
        msgpack_object rest = *args;
        rest.via.array.ptr++;
        rest.via.array.size--;
        tr_args_t *rest_args = tr_args_from_object (&rest);
        if ((rc = tr_portal_open (tr_ctx_actor (ctx), endpoint, 5000, &next)) == 0
        &&  (rc = tr_portal_open_context (next, "ctx_stage", rest_args, &down, NULL)) == 0)
            rc = tr_context_open_stream (down, &downstream);
        tr_args_destroy (&rest_args);
    }
    if (rc == 0)
        rc = tr_ctx_started (ctx, NULL);
    tr_stream_t *upstream;
    if (rc == 0)
        rc = tr_ctx_open_stream (ctx, &upstream);
    int64_t count = 0, last = -1;
    bool in_order = true;
    const msgpack_object *value;
    while (rc == 0 && (rc = tr_stream_recv (upstream, &value, -1)) == 0) {
        int64_t v = 0;
        tr_unpack (value, "I", &v);
        if (downstream)
            rc = tr_stream_send_pack (downstream, "I", v + 1);
        else {
            if (count > 0 && v != last + 1)
                in_order = false;
            last = v;
            count++;
        }
    }
    if (rc == TR_ECLOSED)
        rc = 0;
    if (down) {
        tr_stream_close (&downstream);
        const msgpack_object *result;
        if (rc == 0 && (rc = tr_context_result (down, &result)) == 0)
            rc = tr_reply_object (out, result);
        tr_context_close (&down);
    }
    else
    if (rc == 0)
        rc = tr_reply_pack (out, "[I b I]", count, in_order, last);
    tr_portal_close (&next);
    return rc;
}

//  Count this process's calls; the n-th one (n from the args) exits with
//  status 3 before answering. Returns the count otherwise.
static int
s_flaky (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx;
    static int calls = 0;
    int n = 0;
    tr_unpack (args, "[i]", &n);
    if (++calls == n)
        _exit (3);
    return tr_reply_pack (out, "i", calls);
}

static const tr_export_t s_exports [] = {
    TR_FN ("hold_grandchild", s_hold_grandchild),
    TR_FN ("echo", s_echo),
    TR_FN_THREAD ("echo_thread", s_echo_thread),
    TR_FN ("add", s_add),
    TR_FN ("nil", s_nil),
    TR_FN ("fail", s_fail),
    TR_FN ("crash", s_crash),
    TR_FN ("flaky", s_flaky),
    { "overflow", s_overflow, TR_CALL, 0, 64 * 1024 },
    TR_FN ("sleep", s_sleep),
    TR_FN ("thread_sleep", s_thread_sleep),
    TR_FN ("cancels", s_cancels_fn),
    TR_FN ("blocking", s_blocking_fn),
    TR_FN ("pid", s_pid),
    TR_FN ("via_child", s_via_child),
    TR_FN ("interleave", s_interleave),
    TR_FN_THREAD ("thread_sum", s_thread_sum),
    TR_FN ("big", s_big),
    TR_FN ("getenv", s_getenv),
    TR_FN ("fail_at", s_fail_at),
    //  A context and a one-way stream called as plain calls, and a
    //  context and a stream on a thread: calls to them are refused.
    { "a_context", s_echo, TR_CONTEXT, 0, 0 },
    { "a_stream", s_echo, TR_STREAM, 0, 0 },
    { "a_thread_context", s_echo, TR_CONTEXT, TR_THREAD, 0 },
    { "a_thread_stream", s_echo, TR_STREAM, TR_THREAD, 0 },
    TR_STREAM_FN ("stream_count", s_stream_count),
    TR_STREAM_FN ("stream_fail_after", s_stream_fail_after),
    TR_STREAM_FN ("stream_flood", s_stream_flood),
    TR_STREAM_FN ("stream_quiet", s_stream_quiet),
    TR_STREAM_FN ("stream_starts", s_stream_starts),
    TR_CTX_FN ("ctx_echo", s_ctx_echo),
    TR_CTX_FN ("ctx_count", s_ctx_count),
    TR_CTX_FN ("ctx_flood", s_ctx_flood),
    TR_FN ("produced", s_produced_fn),
    TR_CTX_FN ("ctx_bad", s_ctx_bad),
    TR_CTX_FN ("ctx_stage", s_ctx_stage),
    TR_CTX_FN ("ctx_fail_in", s_ctx_fail_in),
    TR_CTX_FN ("ctx_then_compute", s_ctx_then_compute),
    TR_FN ("spin", s_spin),
    TR_FN ("stubborn", s_stubborn),
    TR_FN ("busy", s_busy),
    TR_EXPORTS_END
};

//  Whether this child's name (its uid up to '@') is the value of the
//  environment variable var: how a scenario picks one child of a cluster,
//  whose children all get the same environment.
static bool
s_named_by (const char *var)
{
    const char *name = getenv (var);
    const char *uid = getenv ("TROUPE_UID");
    size_t len = name? strlen (name): 0;
    return len && uid && strncmp (uid, name, len) == 0 && uid [len] == '@';
}

int
main (int argc, char **argv)
{
    //  Fail to start, before any hello: exit with status 7, or never say
    //  hello (until killed).
    if (s_named_by ("TU_EXIT_BEFORE_HELLO"))
        _exit (7);
    if (s_named_by ("TU_HANG_BEFORE_HELLO"))
        while (true)
            pause ();
    //  A start that takes this long without using the CPU, as a child
    //  that loads more or waits on something would.
    const char *delay = getenv ("TU_HELLO_DELAY_MS");
    if (delay && atoi (delay) > 0) {
        struct timespec ts = { atoi (delay) / 1000, (atoi (delay) % 1000) * 1000000L };
        while (nanosleep (&ts, &ts) && errno == EINTR)
            ;
    }
    tr_config_t config = { .size = sizeof config, .exports = s_exports };
    //  Heartbeats as short as the scenario's (test_faults): a child
    //  whose parent is stopped or cut off then ends as fast as the parent
    //  notices the child.
    const char *ivl = getenv ("TU_HEARTBEAT_IVL_MS");
    const char *timeout = getenv ("TU_HEARTBEAT_TIMEOUT_MS");
    if (ivl && timeout) {
        config.heartbeat_ivl_ms = atoi (ivl);
        config.heartbeat_timeout_ms = atoi (timeout);
    }
    //  Bounds on calls served at once, raised to load a daemon.
    const char *calls = getenv ("TU_MAX_CALLS");
    if (calls && atoi (calls) > 0)
        config.max_calls_per_peer = config.max_calls = atoi (calls);
    return tr_run (&config, argc, argv, NULL, NULL);
}
