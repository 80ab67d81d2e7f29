/*  =========================================================================
    bench_siblings.c - a call while the root has many idle children,
    troupe against troupe

    Figure rpc_idle_siblings: the round trip of a no-op call from the root
    to one child actor (ipc, one call at a time) while the root also has
    128 idle children (started with tr_nursery_start_actor, never called),
    in microseconds per call; its reference ("raw" in the result line) is
    the same round trip when the root has no other child, so the ratio is
    what idle children cost a busy one. Starting 128 children takes about
    a second, so the two cannot alternate within a round as the other
    figures do; instead the rounds without siblings are split around the
    rounds with them (half before the children are started, half after
    they are closed), so that a steady drift of the machine's speed hits
    both alike. Each figure is the median of its rounds. The time to start
    and to close the 128 children goes to stderr, and so does the root's
    CPU time per call (all its threads, from /proc) with and without.

    BENCH_SIBLINGS overrides the number of idle children.
    This binary is also the child actor (tr_run serves its exports).
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"

#define DEFAULT_ROUNDS      7
#define DEFAULT_CALLS       2000
#define DEFAULT_SIBLINGS    128
#define WARMUP_CALLS        500

typedef struct {
    bench_run_t bench;              //  troupe: with siblings; raw: without
    int siblings;
} s_run_t;

//  One round: calls round trips to target; us per call in *value, and
//  the CPU time this process spent per call, all its threads, in *cpu.
static int
s_round (tr_portal_t *target, int calls, double *value, double *cpu)
{
    int64_t cpu_start = bench_cpu_ns (getpid ());
    int64_t start = bench_now_ns ();
    int rc = bench_call_nil_n (target, calls);
    if (rc)
        return rc;
    *value = (bench_now_ns () - start) / 1e3 / (calls? calls: 1);
    *cpu = (bench_cpu_ns (getpid ()) - cpu_start) / 1e3 / (calls? calls: 1);
    return 0;
}

//  Rounds [from, to) of one side into values and cpu, each reported.
static int
s_rounds (s_run_t *run, tr_portal_t *target, bool with, int from, int to,
          double *values, double *cpu)
{
    bench_run_t *bench = &run->bench;
    for (int r = from; r < to; r++) {
        int rc = s_round (target, bench->per_round, &values [r], &cpu [r]);
        if (rc) {
            fprintf (stderr, "bench_siblings: call failed: %s\n", tr_strerror (rc));
            return rc;
        }
        fprintf (stderr, "bench: %s round %d: %s=%.3f %s, root CPU %.3f %s per call "
                 "(%s %d idle children)\n", bench->name, r, with? "troupe": "raw",
                 values [r], bench->unit, cpu [r], bench->unit,
                 with? "with": "without", with? run->siblings: 0);
    }
    return 0;
}

static int
s_root (tr_actor_t *self, void *arg)
{
    s_run_t *run = arg;
    bench_run_t *bench = &run->bench;
    bench->was_root = true;
    bench->failed = true;
    tr_nursery_t *nursery = NULL;       //  the target
    tr_nursery_t *siblings = NULL;      //  the idle children
    tr_portal_t *target;
    int rc = tr_nursery_open (self, &nursery);
    if (rc == 0)
        rc = tr_nursery_start_actor (nursery, "target", NULL, &target);
    if (rc == 0)
        rc = tr_nursery_open (self, &siblings);
    if (rc) {
        fprintf (stderr, "bench_siblings: cannot start the child: %s\n", tr_strerror (rc));
        goto done;
    }
    fprintf (stderr, "bench: %s: %d idle children, %d rounds of %d calls each way\n",
             bench->name, run->siblings, bench->rounds, bench->per_round);
    double unused, unused_cpu;
    double cpu_with [BENCH_MAX_ROUNDS], cpu_without [BENCH_MAX_ROUNDS];
    if ((rc = s_round (target, WARMUP_CALLS, &unused, &unused_cpu)))
        goto done;
    //  Without siblings: the first half of the rounds.
    int half = (bench->rounds + 1) / 2;
    if ((rc = s_rounds (run, target, false, 0, half, bench->raw, cpu_without)))
        goto done;

    int64_t start = bench_now_ns ();
    for (int i = 0; i < run->siblings; i++) {
        tr_portal_t *sibling;
        if ((rc = tr_nursery_start_actor (siblings, "idle", NULL, &sibling))) {
            fprintf (stderr, "bench_siblings: cannot start idle child %d: %s\n", i,
                     tr_strerror (rc));
            goto done;
        }
    }
    fprintf (stderr, "bench: %s: started %d idle children in %.1f ms\n", bench->name,
             run->siblings, (bench_now_ns () - start) / 1e6);
    if ((rc = s_round (target, WARMUP_CALLS, &unused, &unused_cpu))
    ||  (rc = s_rounds (run, target, true, 0, bench->rounds, bench->troupe, cpu_with)))
        goto done;

    start = bench_now_ns ();
    rc = tr_nursery_close (&siblings, NULL);
    fprintf (stderr, "bench: %s: closed %d idle children in %.1f ms\n", bench->name,
             run->siblings, (bench_now_ns () - start) / 1e6);
    if (rc) {
        fprintf (stderr, "bench_siblings: closing the idle children: %s\n", tr_strerror (rc));
        goto done;
    }
    //  Without siblings again: the second half.
    if ((rc = s_round (target, WARMUP_CALLS, &unused, &unused_cpu))
    ||  (rc = s_rounds (run, target, false, half, bench->rounds, bench->raw, cpu_without)))
        goto done;
    double with = bench_median (cpu_with, bench->rounds);
    double without = bench_median (cpu_without, bench->rounds);
    fprintf (stderr, "bench: %s: root CPU per call: with %.3f us, without %.3f us (%.2fx)\n",
             bench->name, with, without, without > 0? with / without: 0.0);
    bench->failed = false;
done:
    tr_nursery_close (&siblings, NULL);
    tr_nursery_close (&nursery, NULL);
    return bench->failed? 1: 0;
}

int
main (int argc, char **argv)
{
    bench_pin ();
    static const tr_export_t exports [] = { TR_FN ("nil", bench_nil), TR_EXPORTS_END };
    s_run_t run;
    bench_run_init (&run.bench, "rpc_idle_siblings", "us", 1e3, DEFAULT_ROUNDS, DEFAULT_CALLS);
    run.siblings = bench_env_int ("BENCH_SIBLINGS", DEFAULT_SIBLINGS);
    tr_config_t config = { .name = "bench_siblings", .exports = exports };
    int code;
    if (bench_finish (&run.bench, tr_run (&config, argc, argv, s_root, &run), &code))
        return code;
    return 0;
}
