/*  =========================================================================
    bench_cancel_tree.c - cancel a nursery of 32 children: troupe against raw

    Figure cancel_tree: a root opens a nursery and starts 32 child actors
    with tr_nursery_start_actors (untimed); the clock runs from
    tr_nursery_cancel (hard = false) through tr_nursery_close, that is
    until every child has acked its cancel, exited and been reaped, in
    milliseconds for the 32. The raw reference in the same run starts this
    same binary 32 times with posix_spawn in raw-child mode (untimed):
    each connects a DEALER to our ROUTER and says it is ready with a frame
    of troupe's hello size. Timed: the parent sends each a stop frame of
    troupe's cancel size, each answers with a frame of troupe's ack size
    and exits, and the parent reads the 32 answers and reaps the 32 with
    waitpid. Both sides exec the same binary, so loading and linking cost
    the same. One cluster of each per round, alternating; the figure is
    the median of the rounds.

    Also printed: the hard kills (children the close sent SIGTERM or
    SIGKILL, from the spawn layer's own count, summed over every round)
    and the acks the portals received, which must be 32 a round.

    BENCH_N overrides the number of children (32). This binary is also the
    child actor (tr_run serves its exports) and, with --raw-child
    ENDPOINT HELLO_SIZE ACK_SIZE, the raw child.
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"

#define DEFAULT_ROUNDS      7
#define DEFAULT_CHILDREN    32
#define MAX_CHILDREN        1024
#define WARMUP_ROUNDS       1

//  --------------------------------------------------------------------------
//  Raw libzmq

typedef struct {
    bench_bound_t router;           //  the raw children connect to it
    char hello_arg [32];
    char ack_arg [32];
    uint8_t cancel [BENCH_MAX_FRAME];
    size_t cancel_size;
    uint8_t rid [MAX_CHILDREN][256];
    size_t rid_size [MAX_CHILDREN];
    pid_t pid [MAX_CHILDREN];
} s_raw_t;

//  The raw child: connect, say ready, wait for the stop, answer it with
//  ack_size bytes and exit.
static int
s_raw_child (const char *endpoint, size_t hello_size, size_t ack_size)
{
    static uint8_t frame [BENCH_MAX_FRAME];
    if (hello_size > sizeof frame || ack_size > sizeof frame)
        return 2;
    memset (frame, 0xc0, sizeof frame);
    char id [64];
    snprintf (id, sizeof id, "child@%d", (int) getpid ());
    void *ctx = zmq_ctx_new ();
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    bench_curve (dealer, false);
    zmq_setsockopt (dealer, ZMQ_ROUTING_ID, id, strlen (id));
    int rc = 1;
    if (zmq_connect (dealer, endpoint) == 0
    &&  zmq_send (dealer, frame, hello_size, 0) >= 0
    &&  zmq_recv (dealer, frame, sizeof frame, 0) >= 0
    &&  zmq_send (dealer, frame, ack_size, 0) >= 0)
        rc = 0;
    zmq_close (dealer);
    zmq_ctx_term (ctx);
    return rc;
}

//  Spawn count children and read their hellos (untimed); then, timed
//  into *ns, stop each, read each answer and reap each.
static int
s_raw_cancel (s_raw_t *self, int count, int64_t *ns)
{
    char *argv [] = { "bench_cancel_tree", "--raw-child", self->router.endpoint,
                      self->hello_arg, self->ack_arg, NULL };
    uint8_t frame [BENCH_MAX_FRAME];
    int rc = 0, spawned = 0, ready = 0;
    *ns = 0;
    for (; spawned < count; spawned++)
        if ((self->pid [spawned] = bench_spawn_self (argv)) < 0) {
            rc = -1;
            break;
        }
    for (; rc == 0 && ready < count; ready++) {
        int size = zmq_recv (self->router.socket, self->rid [ready], 256, 0);
        if (size <= 0 || zmq_recv (self->router.socket, frame, sizeof frame, 0) < 0)
            rc = -1;
        else
            self->rid_size [ready] = (size_t) size;
    }
    int64_t start = bench_now_ns ();
    for (int i = 0; rc == 0 && i < count; i++)
        if (zmq_send (self->router.socket, self->rid [i], self->rid_size [i], ZMQ_SNDMORE) < 0
        ||  zmq_send (self->router.socket, self->cancel, self->cancel_size, 0) < 0)
            rc = -1;
    for (int i = 0; rc == 0 && i < count; i++)
        if (zmq_recv (self->router.socket, frame, sizeof frame, 0) <= 0
        ||  zmq_recv (self->router.socket, frame, sizeof frame, 0) < 0)
            rc = -1;
    if (rc)
        for (int i = 0; i < spawned; i++)
            kill (self->pid [i], SIGKILL);
    for (int i = 0; i < spawned; i++)
        if (bench_reap (self->pid [i]) != 0 && rc == 0)
            rc = -1;
    *ns = bench_now_ns () - start;
    return rc;
}

//  --------------------------------------------------------------------------
//  troupe

typedef struct {
    size_t hard_kills;              //  over every timed round
    size_t acks;
    size_t expected_acks;
} s_counts_t;

//  How many of our registry's entries are children of ours.
static int
s_registered (tr_actor_t *self)
{
    tr_value_t *entries = NULL;
    if (tr_registry_list (self, NULL, &entries))
        return 0;
    const msgpack_object *list = tr_value_object (entries);
    int count = 0;
    for (uint32_t i = 0; list->type == MSGPACK_OBJECT_ARRAY && i < list->via.array.size; i++) {
        const char *parent = NULL;
        if (tr_unpack (&list->via.array.ptr [i], "{s:s}", "parent", &parent) == 0
        &&  parent && strcmp (parent, tr_actor_uid (self)) == 0)
            count++;
    }
    tr_value_destroy (&entries);
    return count;
}

//  Start count children (untimed); then, timed into *ns, cancel the
//  nursery and close it. Every child must end without an error.
static int
s_troupe_cancel (tr_actor_t *self, int count, int64_t *ns, s_counts_t *counts)
{
    static tr_portal_t *portals [MAX_CHILDREN];
    tr_nursery_t *nursery;
    *ns = 0;
    int rc = tr_nursery_open (self, &nursery);
    if (rc)
        return rc;
    rc = tr_nursery_start_actors (nursery, "child", (size_t) count, NULL, portals);
    if (rc)
        fprintf (stderr, "bench_cancel_tree: %s\n",
                 tr_error_message (tr_nursery_error (nursery)));
    //  Healthy children, settled: each has registered with our registry
    //  (its start-up's last round trip), so that none is still starting
    //  (with no registry, TROUPE_REGISTRY=none, there is nothing to wait
    //  for).
    int64_t settle_by = bench_now_ns () + 5000 * (int64_t) 1000000;
    while (rc == 0 && tr_registry_address (self) && s_registered (self) < count) {
        if (bench_now_ns () > settle_by) {
            fprintf (stderr, "bench_cancel_tree: children did not register\n");
            rc = TR_ETIMEDOUT;
        }
        else
            tr_sleep (tr_actor_ctx (self), 1);
    }
    size_t kills = tri_child_hard_kills ();
    size_t acks = tri_portal_acks ();
    tr_error_t *errors = NULL;
    int64_t start = bench_now_ns ();
    tr_nursery_cancel (nursery, false);
    int close_rc = tr_nursery_close (&nursery, &errors);
    *ns = bench_now_ns () - start;
    if (errors)
        fprintf (stderr, "bench_cancel_tree: close: %s\n", tr_error_message (errors));
    tr_error_destroy (&errors);
    if (counts && rc == 0) {
        counts->hard_kills += tri_child_hard_kills () - kills;
        counts->acks += tri_portal_acks () - acks;
        counts->expected_acks += (size_t) count;
    }
    return rc? rc: close_rc;
}

//  Sizes of troupe's frames: a child's hello (a uid "child-N@" + uuid and
//  an ipc endpoint like the child's), a cancel [type, 0, nil] to copy,
//  and the ack's size.
static void
s_frame_sizes (s_raw_t *raw)
{
    snprintf (raw->hello_arg, sizeof raw->hello_arg, "%zu", bench_hello_size ("child-10"));
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    tri_msg_begin (&pk, TRI_CANCEL, 0);
    msgpack_pack_nil (&pk);
    raw->cancel_size = sbuf.size;
    memcpy (raw->cancel, sbuf.data, sbuf.size);
    msgpack_sbuffer_clear (&sbuf);
    tri_msg_begin (&pk, TRI_ACK, 0);
    msgpack_pack_nil (&pk);
    snprintf (raw->ack_arg, sizeof raw->ack_arg, "%zu", sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
}

static s_counts_t s_counts;

static int
s_root (tr_actor_t *self, void *arg)
{
    bench_run_t *run = arg;
    run->was_root = true;
    run->failed = true;
    static s_raw_t raw;
    memset (&raw, 0, sizeof raw);
    s_frame_sizes (&raw);
    int count = run->per_round;
    fprintf (stderr, "bench: cancel_tree: %d children, hello %s bytes, cancel %zu bytes, "
             "ack %s bytes, %d rounds\n", count, raw.hello_arg, raw.cancel_size,
             raw.ack_arg, run->rounds);
    int rc = 0;
    int64_t troupe_ns, raw_ns;
    if (count > MAX_CHILDREN) {
        fprintf (stderr, "bench_cancel_tree: at most %d children\n", MAX_CHILDREN);
        return 1;
    }
    if (bench_bind (&raw.router, ZMQ_ROUTER, "ipc", "cancel"))
        goto done;
    for (int i = 0; i < WARMUP_ROUNDS; i++)
        if ((rc = s_troupe_cancel (self, count, &troupe_ns, NULL))
        ||  s_raw_cancel (&raw, count, &raw_ns)) {
            fprintf (stderr, "bench_cancel_tree: warm-up failed: %s\n", tr_strerror (rc));
            goto done;
        }
    for (int r = 0; r < run->rounds; r++) {
        if ((rc = s_troupe_cancel (self, count, &troupe_ns, &s_counts))) {
            fprintf (stderr, "bench_cancel_tree: cancel failed: %s\n", tr_strerror (rc));
            goto done;
        }
        if (s_raw_cancel (&raw, count, &raw_ns)) {
            fprintf (stderr, "bench_cancel_tree: raw cancel failed\n");
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
    if (argc == 5 && strcmp (argv [1], "--raw-child") == 0)
        return s_raw_child (argv [2], (size_t) strtoul (argv [3], NULL, 10),
                            (size_t) strtoul (argv [4], NULL, 10));

    static const tr_export_t exports [] = { TR_FN ("nil", bench_nil), TR_EXPORTS_END };
    bench_run_t run;
    bench_run_init (&run, "cancel_tree", "ms", 1e6, DEFAULT_ROUNDS, DEFAULT_CHILDREN);
    tr_config_t config = { .name = "bench_cancel_tree", .exports = exports };
    int code;
    int rc = tr_run (&config, argc, argv, s_root, &run);
    if (!run.was_root || rc || run.failed)
        return bench_finish (&run, rc, &code)? code: 1;
    //  The result line, with the hard kills and acks of every timed round.
    double t = bench_median (run.troupe, run.rounds);
    double r = bench_median (run.raw, run.rounds);
    printf ("bench: cancel_tree troupe=%.3f ms raw=%.3f ms ratio=%.2f hard_kills=%zu "
            "acks=%zu/%zu\n", t, r, r > 0? t / r: 0.0, s_counts.hard_kills,
            s_counts.acks, s_counts.expected_acks);
    fflush (stdout);
    return s_counts.acks == s_counts.expected_acks? 0: 1;
}
