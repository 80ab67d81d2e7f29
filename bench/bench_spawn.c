/*  =========================================================================
    bench_spawn.c - spawn a child, call it once, close: troupe against raw

    Figure spawn: the time to open a nursery, start a child actor, make one
    no-op call to it and close the nursery (cancel, ack, exit, reap), in
    milliseconds per child. The raw reference in the same run starts this
    same binary with posix_spawn in raw-child mode: it connects a DEALER to
    our ROUTER, sends a hello frame of the size of troupe's hello, waits
    for one request (a cmd frame's size), answers with a return frame's
    size and exits; we reap it with waitpid. Both sides exec the same
    binary, so loading and linking cost the same. The two alternate child
    by child; the figure is the median of the rounds.

    This binary is also the child actor (tr_run serves its exports) and,
    with --raw-child ENDPOINT HELLO_SIZE REPLY_SIZE, the raw child.
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"

#define DEFAULT_ROUNDS  7
#define DEFAULT_SPAWNS  50
#define WARMUP_SPAWNS   5

//  --------------------------------------------------------------------------
//  Raw libzmq

typedef struct {
    bench_bound_t router;           //  the raw children connect to it
    char hello_arg [32];
    char reply_arg [32];
    uint8_t cmd [BENCH_MAX_FRAME];
    size_t cmd_size;
} s_raw_t;

//  One child: spawn, hello, request, reply, reap.
static int
s_raw_spawn (s_raw_t *self)
{
    char *argv [] = { "bench_spawn", "--raw-child", self->router.endpoint,
                      self->hello_arg, self->reply_arg, NULL };
    pid_t pid = bench_spawn_self (argv);
    if (pid < 0)
        return -1;
    uint8_t rid [256], frame [BENCH_MAX_FRAME];
    int rid_size = zmq_recv (self->router.socket, rid, sizeof rid, 0);
    int rc = -1;
    if (rid_size > 0
    &&  zmq_recv (self->router.socket, frame, sizeof frame, 0) >= 0
    &&  zmq_send (self->router.socket, rid, (size_t) rid_size, ZMQ_SNDMORE) >= 0
    &&  zmq_send (self->router.socket, self->cmd, self->cmd_size, 0) >= 0
    &&  zmq_recv (self->router.socket, rid, sizeof rid, 0) >= 0
    &&  zmq_recv (self->router.socket, frame, sizeof frame, 0) >= 0)
        rc = 0;
    if (rc)
        kill (pid, SIGKILL);
    return bench_reap (pid) == 0? rc: -1;
}

//  --------------------------------------------------------------------------
//  troupe

static int
s_troupe_spawn (tr_actor_t *self)
{
    tr_nursery_t *nursery;
    tr_portal_t *child;
    int rc = tr_nursery_open (self, &nursery);
    if (rc)
        return rc;
    rc = tr_nursery_start_actor (nursery, "child", NULL, &child);
    if (rc == 0)
        rc = bench_call_nil (child);
    int close_rc = tr_nursery_close (&nursery, NULL);
    return rc? rc: close_rc;
}

//  Sizes of the frames troupe exchanges: the child's hello (a uid
//  "child@" + uuid, an ipc endpoint like the child's), a cmd and a return.
static void
s_frame_sizes (s_raw_t *raw)
{
    snprintf (raw->hello_arg, sizeof raw->hello_arg, "%zu", bench_hello_size ("child"));
    size_t reply_size;
    bench_call_frames (1, raw->cmd, &raw->cmd_size, &reply_size);
    snprintf (raw->reply_arg, sizeof raw->reply_arg, "%zu", reply_size);
}

static int
s_root (tr_actor_t *self, void *arg)
{
    bench_run_t *run = arg;
    run->was_root = true;
    run->failed = true;
    s_raw_t raw;
    memset (&raw, 0, sizeof raw);
    s_frame_sizes (&raw);
    fprintf (stderr, "bench: spawn: hello %s bytes, cmd %zu bytes, return %s bytes, "
             "%d rounds of %d spawns\n", raw.hello_arg, raw.cmd_size, raw.reply_arg,
             run->rounds, run->per_round);
    int rc = 0;
    if (bench_bind (&raw.router, ZMQ_ROUTER, "ipc", "spawn"))
        goto done;
    for (int i = 0; i < WARMUP_SPAWNS; i++)
        if ((rc = s_troupe_spawn (self)) || s_raw_spawn (&raw)) {
            fprintf (stderr, "bench_spawn: warm-up failed: %s\n", tr_strerror (rc));
            goto done;
        }
    for (int r = 0; r < run->rounds; r++) {
        //  One of each in turn, so that a change in the machine's load
        //  during the round hits both alike.
        int64_t troupe_ns = 0, raw_ns = 0;
        for (int i = 0; i < run->per_round; i++) {
            int64_t start = bench_now_ns ();
            if ((rc = s_troupe_spawn (self))) {
                fprintf (stderr, "bench_spawn: spawn failed: %s\n", tr_strerror (rc));
                goto done;
            }
            int64_t middle = bench_now_ns ();
            if (s_raw_spawn (&raw)) {
                fprintf (stderr, "bench_spawn: raw spawn failed\n");
                goto done;
            }
            troupe_ns += middle - start;
            raw_ns += bench_now_ns () - middle;
        }
        bench_record (run, r, troupe_ns, raw_ns);
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
        return bench_raw_child (argv [2], (size_t) strtoul (argv [3], NULL, 10),
                            (size_t) strtoul (argv [4], NULL, 10));

    static const tr_export_t exports [] = { TR_FN ("nil", bench_nil), TR_EXPORTS_END };
    bench_run_t run;
    memset (&run, 0, sizeof run);
    snprintf (run.name, sizeof run.name, "spawn");
    run.unit = "ms";
    run.unit_ns = 1e6;
    run.rounds = bench_rounds (DEFAULT_ROUNDS);
    run.per_round = bench_env_int ("BENCH_N", DEFAULT_SPAWNS);
    tr_config_t config = { .name = "bench_spawn", .exports = exports };
    int code;
    if (bench_finish (&run, tr_run (&config, argc, argv, s_root, &run), &code))
        return code;
    return 0;
}
