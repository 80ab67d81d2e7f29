/*  =========================================================================
    bench_siblings.c - a call while the root has many idle children,
    troupe against troupe

    Figure rpc_idle_siblings: the round trip of a no-op call from a root
    to one child actor (ipc, one call at a time) while that root also has
    128 idle children (started with tr_nursery_start_actor, never called),
    in microseconds per call; its reference ("raw" in the result line) is
    the same round trip from a second root that has no other child, so
    the ratio is what idle children cost a busy one. The two roots run
    side by side for the whole figure, each a copy of this binary started
    with --siblings-root, each pinned to CPU 0 with its children on CPU 1
    as the other figures are; this process (which runs no actor) tells
    them in turn to make a chunk of calls, over a pipe each, so that the
    two sides alternate every 250 calls within a round as the other
    figures do, and a drift of the machine's speed hits both alike. Each
    figure is the median of its rounds. The time to start and to close
    the 128 children goes to stderr, and so does each root's CPU time per
    call (all its threads, from /proc), with and without.

    BENCH_SIBLINGS overrides the number of idle children.
    This binary is also the child actor (tr_run serves its exports).
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"
#include <fcntl.h>

#define DEFAULT_ROUNDS      7
#define DEFAULT_CALLS       2000
#define DEFAULT_SIBLINGS    128
#define WARMUP_CALLS        500
#define CHUNK_CALLS         250     //  calls per side before switching sides

//  --------------------------------------------------------------------------
//  A root: one target child, and siblings idle children beside it. It reads
//  a count of calls from fd in, makes them, and writes to fd out the time
//  they took and the CPU time it spent, in nanoseconds; a count of 0 ends
//  it.

typedef struct {
    int siblings;
    int in, out;
    bool failed;
} s_side_t;

static int
s_side_root (tr_actor_t *self, void *arg)
{
    s_side_t *side = arg;
    side->failed = true;
    tr_nursery_t *nursery = NULL;       //  the target
    tr_nursery_t *siblings = NULL;      //  the idle children
    tr_portal_t *target;
    FILE *in = NULL, *out = NULL;       //  commands, results
    int rc = tr_nursery_open (self, &nursery);
    if (rc == 0)
        rc = tr_nursery_start_actor (nursery, "target", NULL, &target);
    if (rc == 0)
        rc = tr_nursery_open (self, &siblings);
    if (rc) {
        fprintf (stderr, "bench_siblings: cannot start the child: %s\n", tr_strerror (rc));
        goto done;
    }
    int64_t start = bench_now_ns ();
    for (int i = 0; i < side->siblings; i++) {
        tr_portal_t *sibling;
        if ((rc = tr_nursery_start_actor (siblings, "idle", NULL, &sibling))) {
            fprintf (stderr, "bench_siblings: cannot start idle child %d: %s\n", i,
                     tr_strerror (rc));
            goto done;
        }
    }
    if (side->siblings)
        fprintf (stderr, "bench: rpc_idle_siblings: started %d idle children in %.1f ms\n",
                 side->siblings, (bench_now_ns () - start) / 1e6);
    in = fdopen (side->in, "r");
    out = fdopen (side->out, "w");
    char line [64];
    while (in && out && fgets (line, sizeof line, in)) {
        int calls = atoi (line);
        if (calls <= 0)
            break;
        int64_t cpu_start = bench_cpu_ns (getpid ());
        start = bench_now_ns ();
        if ((rc = bench_call_nil_n (target, calls))) {
            fprintf (stderr, "bench_siblings: call failed: %s\n", tr_strerror (rc));
            goto done;
        }
        int64_t took = bench_now_ns () - start;
        int64_t cpu = bench_cpu_ns (getpid ()) - cpu_start;
        if (fprintf (out, "%lld %lld\n", (long long) took, (long long) cpu) < 0
        ||  fflush (out))
            goto done;
    }
    if (side->siblings) {
        start = bench_now_ns ();
        rc = tr_nursery_close (&siblings, NULL);
        fprintf (stderr, "bench: rpc_idle_siblings: closed %d idle children in %.1f ms\n",
                 side->siblings, (bench_now_ns () - start) / 1e6);
        if (rc) {
            fprintf (stderr, "bench_siblings: closing the idle children: %s\n",
                     tr_strerror (rc));
            goto done;
        }
    }
    side->failed = false;
done:
    if (in)
        fclose (in);
    if (out)
        fclose (out);
    tr_nursery_close (&siblings, NULL);
    tr_nursery_close (&nursery, NULL);
    return side->failed? 1: 0;
}

//  --------------------------------------------------------------------------
//  This process: starts both roots and has them make calls in turn.

typedef struct {
    pid_t pid;
    FILE *to, *from;                    //  its commands, its results
} s_root_t;

static int
s_root_start (s_root_t *self, int siblings)
{
    //  Our ends stay ours: the other root must not hold them open.
    int command [2], result [2];
    if (pipe2 (command, O_CLOEXEC) || pipe2 (result, O_CLOEXEC))
        return -1;
    fcntl (command [0], F_SETFD, 0);
    fcntl (result [1], F_SETFD, 0);
    char in [16], out [16], count [16];
    snprintf (in, sizeof in, "%d", command [0]);
    snprintf (out, sizeof out, "%d", result [1]);
    snprintf (count, sizeof count, "%d", siblings);
    char *argv [] = { "bench_siblings", "--siblings-root", count, in, out, NULL };
    self->pid = bench_spawn_self (argv);
    close (command [0]);
    close (result [1]);
    self->to = fdopen (command [1], "w");
    self->from = fdopen (result [0], "r");
    return self->pid < 0 || !self->to || !self->from? -1: 0;
}

//  Have the root make calls; the time they took and its CPU time.
static int
s_root_calls (s_root_t *self, int calls, int64_t *took, int64_t *cpu)
{
    char line [64];
    long long t, c;
    if (fprintf (self->to, "%d\n", calls) < 0 || fflush (self->to)
    ||  !fgets (line, sizeof line, self->from)
    ||  sscanf (line, "%lld %lld", &t, &c) != 2)
        return -1;
    *took = t;
    *cpu = c;
    return 0;
}

//  Tell the root to end, and reap it; its exit status.
static int
s_root_stop (s_root_t *self)
{
    if (self->pid <= 0)
        return -1;
    if (!self->to || fprintf (self->to, "0\n") < 0 || fflush (self->to))
        kill (self->pid, SIGTERM);
    if (self->to)
        fclose (self->to);
    if (self->from)
        fclose (self->from);
    return bench_reap (self->pid);
}

static int
s_compare (int siblings)
{
    bench_run_t bench;
    bench_run_init (&bench, "rpc_idle_siblings", "us", 1e3, DEFAULT_ROUNDS, DEFAULT_CALLS);
    bench.was_root = true;
    fprintf (stderr, "bench: %s: %d idle children, %d rounds of %d calls each way\n",
             bench.name, siblings, bench.rounds, bench.per_round);
    s_root_t with = { 0 }, without = { 0 };
    int64_t took, cpu;
    int rc = s_root_start (&with, siblings) || s_root_start (&without, 0)
          || s_root_calls (&with, WARMUP_CALLS, &took, &cpu)
          || s_root_calls (&without, WARMUP_CALLS, &took, &cpu);
    double cpu_with [BENCH_MAX_ROUNDS], cpu_without [BENCH_MAX_ROUNDS];
    for (int r = 0; r < bench.rounds && rc == 0; r++) {
        int64_t with_ns = 0, without_ns = 0, with_cpu = 0, without_cpu = 0;
        for (int made = 0; made < bench.per_round && rc == 0; made += CHUNK_CALLS) {
            int chunk = bench.per_round - made < CHUNK_CALLS? bench.per_round - made: CHUNK_CALLS;
            rc = s_root_calls (&with, chunk, &took, &cpu);
            with_ns += took;
            with_cpu += cpu;
            rc = rc || s_root_calls (&without, chunk, &took, &cpu);
            without_ns += took;
            without_cpu += cpu;
        }
        cpu_with [r] = with_cpu / 1e3 / bench.per_round;
        cpu_without [r] = without_cpu / 1e3 / bench.per_round;
        if (rc == 0)
            bench_record (&bench, r, with_ns, without_ns);
    }
    int with_status = s_root_stop (&with);
    int without_status = s_root_stop (&without);
    if (rc || with_status || without_status) {
        fprintf (stderr, "bench: %s failed (roots ended with %d and %d)\n", bench.name,
                 with_status, without_status);
        return 1;
    }
    double c_with = bench_median (cpu_with, bench.rounds);
    double c_without = bench_median (cpu_without, bench.rounds);
    fprintf (stderr, "bench: %s: root CPU per call: with %.3f us, without %.3f us (%.2fx)\n",
             bench.name, c_with, c_without, c_without > 0? c_with / c_without: 0.0);
    bench_print (bench.name, bench.troupe, bench.raw, bench.rounds, bench.unit);
    return 0;
}

int
main (int argc, char **argv)
{
    bench_pin ();
    static const tr_export_t exports [] = { TR_FN ("nil", bench_nil), TR_EXPORTS_END };
    tr_config_t config = { .name = "bench_siblings", .exports = exports };
    if (argc == 5 && strcmp (argv [1], "--siblings-root") == 0) {
        //  Pinned as a first process is (CPU 0), its children as started
        //  ones (CPU 1).
        bench_pin_pid (0, 0);
        s_side_t side = { .siblings = atoi (argv [2]), .in = atoi (argv [3]),
                          .out = atoi (argv [4]) };
        //  Not for the children.
        fcntl (side.in, F_SETFD, FD_CLOEXEC);
        fcntl (side.out, F_SETFD, FD_CLOEXEC);
        int rc = tr_run (&config, 1, argv, s_side_root, &side);
        return rc || side.failed? 1: 0;
    }
    const char *parent = getenv (TRI_ENV_PARENT);
    if (parent && *parent)
        return tr_run (&config, argc, argv, NULL, NULL);     //  a child: serve
    return s_compare (bench_env_int ("BENCH_SIBLINGS", DEFAULT_SIBLINGS));
}
