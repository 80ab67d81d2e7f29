/*  =========================================================================
    bench_cluster.c - start 32 children at once: troupe against raw

    Figure cluster_start: the time for tr_nursery_start_actors to start 32
    child actors, every one of them spawned before any hello is awaited,
    until each has said hello and has its portal, in milliseconds for the
    32. The raw reference in the same run does the same work in parallel
    with plain libzmq: it starts this same binary 32 times with
    posix_spawn in raw-child mode, each of which connects a DEALER to our
    ROUTER and sends a hello frame of the size of troupe's; the parent
    answers each hello with a frame of the same size, as troupe's parent
    answers with its own hello, and the clock stops once all 32 hellos
    are in. Both sides exec the same binary, so loading and linking cost
    the same.

    Ending the children is outside both timings: troupe's close (cancel,
    ack, exit, reap) and the raw parent's stop frame to each child and
    waitpid on each come after the clock has stopped. The two sides
    alternate, one cluster each per round, and the figure is the median
    of the rounds.

    BENCH_N overrides the number of children (32). This binary is also the
    child actor (tr_run serves its exports) and, with --raw-child
    ENDPOINT HELLO_SIZE, the raw child.
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"

#define DEFAULT_ROUNDS      7
#define DEFAULT_CHILDREN    32
#define MAX_CHILDREN        1024
#define WARMUP_ROUNDS       2

//  --------------------------------------------------------------------------
//  Raw libzmq

typedef struct {
    bench_bound_t router;           //  the raw children connect to it
    char hello_arg [32];
    size_t hello_size;
    uint8_t rid [MAX_CHILDREN][256];
    size_t rid_size [MAX_CHILDREN];
    pid_t pid [MAX_CHILDREN];
} s_raw_t;

//  Spawn count children, then receive their hellos and answer each; the
//  time from the first spawn to the last hello in *ns. Then stop and reap
//  them all, untimed.
static int
s_raw_cluster (s_raw_t *self, int count, int64_t *ns)
{
    char *argv [] = { "bench_cluster", "--raw-child", self->router.endpoint,
                      self->hello_arg, NULL };
    uint8_t frame [BENCH_MAX_FRAME];
    memset (frame, 0xc0, sizeof frame);
    int rc = 0, spawned = 0, hellos = 0;
    int64_t start = bench_now_ns ();
    for (; spawned < count; spawned++)
        if ((self->pid [spawned] = bench_spawn_self (argv)) < 0) {
            rc = -1;
            break;
        }
    for (; rc == 0 && hellos < count; hellos++) {
        int size = zmq_recv (self->router.socket, self->rid [hellos], 256, 0);
        if (size <= 0
        ||  zmq_recv (self->router.socket, frame, sizeof frame, 0) < 0
        ||  zmq_send (self->router.socket, self->rid [hellos], (size_t) size, ZMQ_SNDMORE) < 0
        ||  zmq_send (self->router.socket, frame, self->hello_size, 0) < 0)
            rc = -1;
        else
            self->rid_size [hellos] = (size_t) size;
    }
    *ns = bench_now_ns () - start;
    //  Untimed: stop each child that said hello, kill the others, reap.
    for (int i = 0; i < hellos; i++)
        if (zmq_send (self->router.socket, self->rid [i], self->rid_size [i], ZMQ_SNDMORE) < 0
        ||  zmq_send (self->router.socket, "", 0, 0) < 0)
            rc = -1;
    if (rc)
        for (int i = 0; i < spawned; i++)
            kill (self->pid [i], SIGKILL);
    for (int i = 0; i < spawned; i++)
        if (bench_reap (self->pid [i]) != 0 && rc == 0)
            rc = -1;
    return rc;
}

//  --------------------------------------------------------------------------
//  troupe

//  Start count children at once; the time of tr_nursery_start_actors in
//  *ns. Then close the nursery, untimed.
static int
s_troupe_cluster (tr_actor_t *self, int count, int64_t *ns)
{
    static tr_portal_t *portals [MAX_CHILDREN];
    tr_nursery_t *nursery;
    int rc = tr_nursery_open (self, &nursery);
    if (rc)
        return rc;
    int64_t start = bench_now_ns ();
    rc = tr_nursery_start_actors (nursery, "child", (size_t) count, NULL, portals);
    *ns = bench_now_ns () - start;
    if (rc)
        fprintf (stderr, "bench_cluster: %s\n",
                 tr_error_message (tr_nursery_error (nursery)));
    int close_rc = tr_nursery_close (&nursery, NULL);
    return rc? rc: close_rc;
}

static int
s_root (tr_actor_t *self, void *arg)
{
    bench_run_t *run = arg;
    run->was_root = true;
    run->failed = true;
    static s_raw_t raw;
    memset (&raw, 0, sizeof raw);
    raw.hello_size = bench_hello_size ("child-10");
    snprintf (raw.hello_arg, sizeof raw.hello_arg, "%zu", raw.hello_size);
    int count = run->per_round;
    fprintf (stderr, "bench: cluster_start: %d children at once, hello %zu bytes, "
             "%d rounds\n", count, raw.hello_size, run->rounds);
    int rc = 0;
    int64_t troupe_ns, raw_ns;
    if (count > MAX_CHILDREN) {
        fprintf (stderr, "bench_cluster: at most %d children\n", MAX_CHILDREN);
        return 1;
    }
    if (bench_bind (&raw.router, ZMQ_ROUTER, "ipc", "cluster"))
        goto done;
    for (int i = 0; i < WARMUP_ROUNDS; i++)
        if ((rc = s_troupe_cluster (self, count, &troupe_ns))
        ||  s_raw_cluster (&raw, count, &raw_ns)) {
            fprintf (stderr, "bench_cluster: warm-up failed: %s\n", tr_strerror (rc));
            goto done;
        }
    for (int r = 0; r < run->rounds; r++) {
        //  One of each in turn, so that a change in the machine's load
        //  during the run hits both alike.
        if ((rc = s_troupe_cluster (self, count, &troupe_ns))) {
            fprintf (stderr, "bench_cluster: start failed: %s\n", tr_strerror (rc));
            goto done;
        }
        if (s_raw_cluster (&raw, count, &raw_ns)) {
            fprintf (stderr, "bench_cluster: raw cluster failed\n");
            goto done;
        }
        bench_record_whole (run, r, troupe_ns, raw_ns);
    }
    run->failed = false;
done:
    bench_unbind (&raw.router);
    return run->failed? 1: 0;
}

int
main (int argc, char **argv)
{
    bench_pin ();
    if (argc == 4 && strcmp (argv [1], "--raw-child") == 0)
        return bench_raw_child (argv [2], (size_t) strtoul (argv [3], NULL, 10), 0);

    static const tr_export_t exports [] = { TR_FN ("nil", bench_nil), TR_EXPORTS_END };
    bench_run_t run;
    bench_run_init (&run, "cluster_start", "ms", 1e6, DEFAULT_ROUNDS,
                    DEFAULT_CHILDREN);
    tr_config_t config = { .name = "bench_cluster", .exports = exports };
    int code;
    if (bench_finish (&run, tr_run (&config, argc, argv, s_root, &run), &code))
        return code;
    return 0;
}
