/*  =========================================================================
    bench_parked.c - a call into an actor that has thousands of calls
    parked, troupe against troupe

    Figure rpc_parked_4000: the round trip of a no-op call from the root
    to a child actor (ipc, one call at a time) in which 4,000 other calls
    are parked, in microseconds per call; its reference ("raw" in the
    result line) is the same call into a second child that has nothing
    else to do, so the ratio is what parked calls cost the callee. The
    parked calls come from 4,000 tasks of the root, each calling the
    child's "park", which sleeps until it is cancelled; both children are
    called by the same root, whose own 4,000 waiting calls therefore weigh
    on both sides alike. Within a round the two children are called in
    turn every hundred calls; the figure is the median of the rounds.

    Then the 4,000 tasks are cancelled, each cancelling its remote call
    and waiting for the ack, and the time until the last has ended goes
    to stderr ("cancelling 4000 parked calls took ... ms"), as do the time
    it took to park them and the CPU time each child spent per call
    (median of the rounds; all its threads, from /proc).

    Tasks get 64 KiB stacks here (config.stack_size), in the root and in
    the children: 4,000 of them in each, and none needs more.
    BENCH_PARKED overrides the number of parked calls.
    This binary is also the child actor (tr_run serves its exports).
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"

#define DEFAULT_ROUNDS  7
#define DEFAULT_CALLS   2000
#define DEFAULT_PARKED  4000
#define WARMUP_CALLS    500
#define CHUNK_CALLS     100     //  calls per side before switching sides
#define STACK_SIZE      (64 * 1024)
#define PARK_WAIT_MS    60000   //  for the calls to be parked

typedef struct {
    bench_run_t bench;              //  troupe: busy child; raw: idle child
    int parked;                     //  calls to park
    tr_portal_t *busy;              //  the child with the parked calls
    int park_failures;              //  park calls that ended other than cancelled
} s_run_t;

//  --------------------------------------------------------------------------
//  The child's functions

static int s_parked;                //  calls parked in this child now

//  Sleep until cancelled.
static int
s_park (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) args; (void) out;
    s_parked++;
    int rc;
    while ((rc = tr_sleep (ctx, 3600 * 1000)) == 0)
        ;
    s_parked--;
    return rc;
}

//  How many calls are parked here.
static int
s_count (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx; (void) args;
    return tr_reply_pack (out, "i", s_parked);
}

//  --------------------------------------------------------------------------
//  The root

//  One of the root's tasks: park one call in the busy child.
static int
s_parker (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_run_t *run = arg;
    int rc = tr_portal_run (run->busy, "park", NULL, NULL);
    if (rc != TR_ECANCELED)
        run->park_failures++;
    return 0;
}

//  Wait until the busy child has parked calls calls, up to PARK_WAIT_MS.
static int
s_wait_parked (tr_actor_t *self, s_run_t *run)
{
    tr_ctx_t *ctx = tr_actor_ctx (self);
    int64_t deadline = bench_now_ns () + (int64_t) PARK_WAIT_MS * 1000000;
    while (true) {
        tr_value_t *value = NULL;
        int count = 0;
        int rc = tr_portal_run (run->busy, "count", NULL, &value);
        if (rc == 0 && tr_unpack (tr_value_object (value), "i", &count))
            rc = TR_EPROTO;
        tr_value_destroy (&value);
        if (rc)
            return rc;
        if (count >= run->parked)
            return 0;
        if (run->park_failures || bench_now_ns () > deadline) {
            fprintf (stderr, "bench_parked: %d of %d calls parked\n", count, run->parked);
            return TR_ETIMEDOUT;
        }
        if ((rc = tr_sleep (ctx, 10)))
            return rc;
    }
}

//  Cancel the tasks made and wait for every one; returns the time it took.
static int64_t
s_cancel_all (tr_task_t **tasks, int made)
{
    int64_t start = bench_now_ns ();
    for (int i = 0; i < made; i++)
        tr_task_cancel (tasks [i]);
    for (int i = 0; i < made; i++)
        tr_task_join (&tasks [i], NULL);
    return bench_now_ns () - start;
}

static int
s_root (tr_actor_t *self, void *arg)
{
    s_run_t *run = arg;
    bench_run_t *bench = &run->bench;
    bench->was_root = true;
    bench->failed = true;
    tr_nursery_t *nursery = NULL;
    tr_portal_t *idle;
    int made = 0;
    tr_task_t **tasks = calloc ((size_t) run->parked, sizeof *tasks);
    int rc = tasks? tr_nursery_open (self, &nursery): TR_ENOMEM;
    if (rc == 0)
        rc = tr_nursery_start_actor (nursery, "idle", NULL, &idle);
    if (rc == 0)
        rc = tr_nursery_start_actor (nursery, "busy", NULL, &run->busy);
    if (rc) {
        fprintf (stderr, "bench_parked: cannot start the children: %s\n", tr_strerror (rc));
        goto done;
    }
    fprintf (stderr, "bench: %s: %d parked calls, %d rounds of %d calls each way\n",
             bench->name, run->parked, bench->rounds, bench->per_round);
    if ((rc = bench_call_nil_n (idle, WARMUP_CALLS)) || (rc = bench_call_nil_n (run->busy, WARMUP_CALLS))) {
        fprintf (stderr, "bench_parked: warm-up failed: %s\n", tr_strerror (rc));
        goto done;
    }
    int64_t start = bench_now_ns ();
    for (; made < run->parked; made++)
        if ((rc = tr_task_spawn (self, s_parker, run, &tasks [made]))) {
            fprintf (stderr, "bench_parked: cannot spawn a task: %s\n", tr_strerror (rc));
            goto done;
        }
    if ((rc = s_wait_parked (self, run))) {
        fprintf (stderr, "bench_parked: the calls did not park: %s\n", tr_strerror (rc));
        goto done;
    }
    fprintf (stderr, "bench: %s: parking %d calls took %.1f ms\n", bench->name,
             run->parked, (bench_now_ns () - start) / 1e6);
    if ((rc = bench_call_nil_n (idle, WARMUP_CALLS)) || (rc = bench_call_nil_n (run->busy, WARMUP_CALLS))) {
        fprintf (stderr, "bench_parked: warm-up failed: %s\n", tr_strerror (rc));
        goto done;
    }
    //  The callees' CPU time per call (all their threads), beside the
    //  round trips: with a core to spare, CPU the round trip hides.
    double busy_cpu [BENCH_MAX_ROUNDS], idle_cpu [BENCH_MAX_ROUNDS];
    pid_t busy_pid = tr_portal_pid (run->busy), idle_pid = tr_portal_pid (idle);
    int calls = bench->per_round;
    for (int r = 0; r < bench->rounds; r++) {
        //  The two children in turn, in short chunks, so that a change in
        //  the machine's load during the round hits both alike.
        int64_t busy_ns = 0, idle_ns = 0, busy_cpu_ns = 0, idle_cpu_ns = 0;
        for (int sent = 0; sent < calls; sent += CHUNK_CALLS) {
            int chunk = calls - sent < CHUNK_CALLS? calls - sent: CHUNK_CALLS;
            int64_t cpu = bench_cpu_ns (busy_pid);
            int64_t chunk_start = bench_now_ns ();
            if ((rc = bench_call_nil_n (run->busy, chunk)))
                break;
            int64_t middle = bench_now_ns ();
            busy_cpu_ns += bench_cpu_ns (busy_pid) - cpu;
            cpu = bench_cpu_ns (idle_pid);
            int64_t idle_start = bench_now_ns ();
            if ((rc = bench_call_nil_n (idle, chunk)))
                break;
            busy_ns += middle - chunk_start;
            idle_ns += bench_now_ns () - idle_start;
            idle_cpu_ns += bench_cpu_ns (idle_pid) - cpu;
        }
        if (rc) {
            fprintf (stderr, "bench_parked: call failed: %s\n", tr_strerror (rc));
            goto done;
        }
        bench_record (bench, r, busy_ns, idle_ns);
        busy_cpu [r] = busy_cpu_ns / 1e3 / calls;
        idle_cpu [r] = idle_cpu_ns / 1e3 / calls;
        fprintf (stderr, "bench: %s round %d: callee CPU per call: busy=%.3f us idle=%.3f us\n",
                 bench->name, r, busy_cpu [r], idle_cpu [r]);
    }
    double busy_median = bench_median (busy_cpu, bench->rounds);
    double idle_median = bench_median (idle_cpu, bench->rounds);
    fprintf (stderr, "bench: %s: callee CPU per call: busy %.3f us, idle %.3f us (%.2fx)\n",
             bench->name, busy_median, idle_median,
             idle_median > 0? busy_median / idle_median: 0.0);
    int64_t cancel_ns = s_cancel_all (tasks, made);
    made = 0;
    fprintf (stderr, "bench: %s: cancelling %d parked calls took %.1f ms\n", bench->name,
             run->parked, cancel_ns / 1e6);
    if (run->park_failures)
        fprintf (stderr, "bench_parked: %d parked calls ended other than cancelled\n",
                 run->park_failures);
    else
        bench->failed = false;
done:
    s_cancel_all (tasks, made);
    tr_nursery_close (&nursery, NULL);
    free (tasks);
    return bench->failed? 1: 0;
}

int
main (int argc, char **argv)
{
    bench_pin ();
    static const tr_export_t exports [] = {
        TR_FN ("nil", bench_nil), TR_FN ("park", s_park), TR_FN ("count", s_count),
        TR_EXPORTS_END
    };
    s_run_t run;
    memset (&run, 0, sizeof run);
    bench_run_init (&run.bench, "rpc_parked_4000", "us", 1e3, DEFAULT_ROUNDS, DEFAULT_CALLS);
    run.parked = bench_env_int ("BENCH_PARKED", DEFAULT_PARKED);
    if (run.parked != DEFAULT_PARKED)
        snprintf (run.bench.name, sizeof run.bench.name, "rpc_parked_%d", run.parked);
    //  The calls parked here come from one peer, the root: the bound on
    //  calls one peer may have in progress is raised to let them in.
    tr_config_t config = { .size = sizeof config, .name = "bench_parked", .exports = exports,
                           .stack_size = STACK_SIZE, .max_calls_per_peer = run.parked + 64,
                           .max_calls = run.parked + 64 };
    int code;
    if (bench_finish (&run.bench, tr_run (&config, argc, argv, s_root, &run), &code))
        return code;
    return 0;
}
