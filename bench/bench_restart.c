/*  =========================================================================
    bench_restart.c - a supervised child killed, restarted and called
    again: troupe against raw

    Figure restart: the time from a child's SIGKILL to the first call that
    succeeds on its replacement, in milliseconds. troupe: a nursery with
    the one_for_one strategy holds one child; the root kills it and calls
    nil through the same portal until a call succeeds (a call that was on
    its way to the dead process fails with its death and is made again;
    later calls wait for the restart). The raw reference does the same
    work by hand in the same run: SIGKILL, waitpid, posix_spawn of this
    binary in raw-child mode, its hello, one request and its reply. Both
    sides exec the same binary. The two alternate kill by kill; the
    figure is the median of the rounds, and the calls that failed on the
    way are counted.

    This binary is also the child actor (tr_run serves its exports) and,
    with --raw-child ENDPOINT HELLO_SIZE REPLY_SIZE, the raw child, which
    answers requests until it is killed.
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"

#define DEFAULT_ROUNDS  7
#define DEFAULT_KILLS   20
#define WARMUP_KILLS    3

//  --------------------------------------------------------------------------
//  Raw libzmq

typedef struct {
    bench_bound_t router;           //  the raw children connect to it
    char hello_arg [32];
    char reply_arg [32];
    uint8_t cmd [BENCH_MAX_FRAME];
    size_t cmd_size;
    pid_t pid;                      //  the child alive now
    uint8_t rid [256];
    int rid_size;
} s_raw_t;

//  Spawn a raw child and take its hello.
static int
s_raw_start (s_raw_t *self)
{
    char *argv [] = { "bench_restart", "--raw-child", self->router.endpoint,
                      self->hello_arg, self->reply_arg, NULL };
    uint8_t frame [BENCH_MAX_FRAME];
    if ((self->pid = bench_spawn_self (argv)) < 0)
        return -1;
    self->rid_size = zmq_recv (self->router.socket, self->rid, sizeof self->rid, 0);
    if (self->rid_size <= 0 || zmq_recv (self->router.socket, frame, sizeof frame, 0) < 0)
        return -1;
    return 0;
}

//  One request and its reply.
static int
s_raw_call (s_raw_t *self)
{
    uint8_t rid [256], frame [BENCH_MAX_FRAME];
    if (zmq_send (self->router.socket, self->rid, (size_t) self->rid_size, ZMQ_SNDMORE) < 0
    ||  zmq_send (self->router.socket, self->cmd, self->cmd_size, 0) < 0
    ||  zmq_recv (self->router.socket, rid, sizeof rid, 0) < 0
    ||  zmq_recv (self->router.socket, frame, sizeof frame, 0) < 0)
        return -1;
    return 0;
}

//  Kill the child, reap it, start another and call it once.
static int
s_raw_restart (s_raw_t *self)
{
    kill (self->pid, SIGKILL);
    waitpid (self->pid, NULL, 0);
    self->pid = 0;
    return s_raw_start (self) || s_raw_call (self)? -1: 0;
}

static int
s_raw_child (const char *endpoint, size_t hello_size, size_t reply_size)
{
    static uint8_t frame [BENCH_MAX_FRAME];
    if (hello_size > sizeof frame || reply_size > sizeof frame)
        return 2;
    memset (frame, 0xc0, sizeof frame);
    char id [64];
    snprintf (id, sizeof id, "child@%d", (int) getpid ());
    void *ctx = zmq_ctx_new ();
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    zmq_setsockopt (dealer, ZMQ_ROUTING_ID, id, strlen (id));
    if (zmq_connect (dealer, endpoint) || zmq_send (dealer, frame, hello_size, 0) < 0)
        return 1;
    while (zmq_recv (dealer, frame, sizeof frame, 0) >= 0
    &&     zmq_send (dealer, frame, reply_size, 0) >= 0)
        ;
    return 1;
}

//  --------------------------------------------------------------------------
//  troupe

//  Kill the portal's actor and call it until a call succeeds; *failed
//  counts the calls that did not.
static int
s_troupe_restart (tr_portal_t *portal, int *failed)
{
    int pid = tr_portal_pid (portal);
    int restarts = tr_portal_restarts (portal);
    kill (pid, SIGKILL);
    for (int tries = 0; tries < 100; tries++) {
        int rc = bench_call_nil (portal);
        if (rc == 0 && tr_portal_restarts (portal) > restarts)
            return 0;
        if (rc && rc != TR_ECRASHED)
            return rc;
        if (rc)
            (*failed)++;
    }
    return TR_ETIMEDOUT;
}

//  Sizes of the frames troupe exchanges: the child's hello, a cmd and a
//  return.
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
    fprintf (stderr, "bench: restart: %d rounds of %d kills\n", run->rounds, run->per_round);
    tr_nursery_t *nursery = NULL;
    tr_portal_t *child = NULL;
    int rc = 0, failed = 0;
    tr_supervise_t how = { TR_ONE_FOR_ONE, 1000000, 1000 };
    if (bench_bind (&raw.router, ZMQ_ROUTER, "ipc", "restart") || s_raw_start (&raw)
    ||  (rc = tr_nursery_open (self, &nursery))
    ||  (rc = tr_nursery_supervise (nursery, &how))
    ||  (rc = tr_nursery_start_actor (nursery, "child", NULL, &child))
    ||  (rc = bench_call_nil (child)))
        goto done;
    for (int i = 0; i < WARMUP_KILLS; i++)
        if ((rc = s_troupe_restart (child, &failed)) || s_raw_restart (&raw)) {
            fprintf (stderr, "bench_restart: warm-up failed: %s\n", tr_strerror (rc));
            goto done;
        }
    failed = 0;
    for (int r = 0; r < run->rounds; r++) {
        int64_t troupe_ns = 0, raw_ns = 0;
        for (int i = 0; i < run->per_round; i++) {
            int64_t start = bench_now_ns ();
            if ((rc = s_troupe_restart (child, &failed))) {
                fprintf (stderr, "bench_restart: restart failed: %s\n", tr_strerror (rc));
                goto done;
            }
            int64_t middle = bench_now_ns ();
            if (s_raw_restart (&raw)) {
                fprintf (stderr, "bench_restart: raw restart failed\n");
                goto done;
            }
            troupe_ns += middle - start;
            raw_ns += bench_now_ns () - middle;
        }
        bench_record (run, r, troupe_ns, raw_ns);
    }
    fprintf (stderr, "bench: restart: %d calls failed on the way (of %d kills), "
             "%d restarts\n", failed, run->rounds * run->per_round, tr_portal_restarts (child));
    run->failed = false;
done:
    if (raw.pid > 0) {
        kill (raw.pid, SIGKILL);
        waitpid (raw.pid, NULL, 0);
    }
    bench_unbind (&raw.router);
    tr_nursery_close (&nursery, NULL);
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
    bench_run_init (&run, "restart", "ms", 1e6, DEFAULT_ROUNDS, DEFAULT_KILLS);
    tr_config_t config = { .name = "bench_restart", .exports = exports };
    int code;
    if (bench_finish (&run, tr_run (&config, argc, argv, s_root, &run), &code))
        return code;
    return 0;
}
