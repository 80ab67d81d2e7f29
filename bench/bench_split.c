/*  =========================================================================
    bench_split.c - which side of a call's round trip costs more than raw
    libzmq: the caller's or the callee's

    Figures rpc_rtt_caller and rpc_rtt_callee, both over ipc, microseconds
    per call, each against the same raw ping-pong (bench.h's raw DEALER
    and ROUTER, frames of troupe's cmd and return sizes) in the same round:
    - rpc_rtt_caller: troupe calls (tr_portal_run of nil, through a portal
      opened on an endpoint) into a raw libzmq ROUTER in a copy of this
      binary (--raw-callee) that speaks just enough of the protocol: it
      answers the hello, and every cmd with a return of nil under its cid.
    - rpc_rtt_callee: a raw libzmq DEALER in the root says hello to the
      troupe child's ROUTER and sends it cmd frames of nil, one at a time;
      the child serves them as any call.
    The ratio of each is what troupe's side costs on its own; rpc_rtt_ipc
    (bench_rpc) is both sides together. The raw reference differs from
    bench_rpc's in one way: here the troupe child serves on its ROUTER, as
    it serves any peer but its parent.

    Usage: bench_split [caller|callee]   (both when no argument is given)
    This binary is also the child actor, the raw server (--raw-server) and
    the raw callee (--raw-callee ENDPOINT).
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"

#define DEFAULT_ROUNDS  7
#define DEFAULT_CALLS   20000
#define WARMUP_CALLS    2000
#define CHUNK_CALLS     500

//  --------------------------------------------------------------------------
//  The raw callee: a ROUTER bound at endpoint, answering hello and cmds
//  until a cancel of the actor (cid 0), which it acknowledges.

static int
s_raw_callee (const char *endpoint)
{
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    if (!router || zmq_bind (router, endpoint)) {
        fprintf (stderr, "raw callee: cannot bind %s: %s\n", endpoint, zmq_strerror (errno));
        return 1;
    }
    msgpack_sbuffer hello;
    msgpack_sbuffer_init (&hello);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &hello, msgpack_sbuffer_write);
    tri_msg_begin (&pk, TRI_HELLO, 0);
    tri_hello_t me = { TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR, "raw@callee", endpoint, getpid () };
    tri_msg_pack_hello (&pk, &me);
    uint8_t rid [256], frame [BENCH_MAX_FRAME], answer [16];
    while (true) {
        int rid_size = zmq_recv (router, rid, sizeof rid, 0);
        int size = rid_size < 0? -1: zmq_recv (router, frame, sizeof frame, 0);
        if (size < 0)
            break;
        int type;
        uint64_t cid;
        tri_msg_peek (frame, (size_t) size, &type, &cid);
        const void *out = answer;
        size_t out_size;
        if (type == TRI_HELLO) {
            out = hello.data;
            out_size = hello.size;
        }
        else
        if (type == TRI_CMD) {
            out_size = tri_msg_head (answer, TRI_RETURN, cid);
            answer [out_size++] = 0xc0;
        }
        else
        if (type == TRI_CANCEL && cid == 0) {
            out_size = tri_msg_head (answer, TRI_ACK, 0);
            answer [out_size++] = 0xc0;
            zmq_send (router, rid, (size_t) rid_size, ZMQ_SNDMORE);
            zmq_send (router, out, out_size, 0);
            break;
        }
        else
            continue;
        zmq_send (router, rid, (size_t) rid_size, ZMQ_SNDMORE);
        zmq_send (router, out, out_size, 0);
    }
    msgpack_sbuffer_destroy (&hello);
    int linger = 100;
    zmq_setsockopt (router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close (router);
    zmq_ctx_term (ctx);
    return 0;
}

//  --------------------------------------------------------------------------
//  A raw caller of the troupe child: a DEALER that said hello

typedef struct {
    void *ctx;
    void *dealer;
    uint8_t *cmd;
    size_t cmd_size;
} s_caller_t;

static int
s_caller_open (s_caller_t *self, const char *endpoint, uint64_t cid)
{
    memset (self, 0, sizeof *self);
    size_t return_size;
    self->cmd = bench_call_frames_args (cid, "nil", NULL, false, &self->cmd_size, &return_size);
    self->ctx = zmq_ctx_new ();
    self->dealer = zmq_socket (self->ctx, ZMQ_DEALER);
    if (!self->cmd || !self->dealer || zmq_connect (self->dealer, endpoint))
        return -1;
    msgpack_sbuffer hello;
    msgpack_sbuffer_init (&hello);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &hello, msgpack_sbuffer_write);
    tri_msg_begin (&pk, TRI_HELLO, 0);
    tri_hello_t me = { TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR, "raw@caller", "", getpid () };
    tri_msg_pack_hello (&pk, &me);
    uint8_t answer [BENCH_MAX_FRAME];
    int rc = zmq_send (self->dealer, hello.data, hello.size, 0) < 0
          || zmq_recv (self->dealer, answer, sizeof answer, 0) < 0? -1: 0;
    msgpack_sbuffer_destroy (&hello);
    return rc;
}

//  The same cmd each time: a cid is free again once its call answered.
static int
s_caller_calls (s_caller_t *self, int calls)
{
    uint8_t answer [BENCH_MAX_FRAME];
    for (int i = 0; i < calls; i++)
        if (zmq_send (self->dealer, self->cmd, self->cmd_size, 0) < 0
        ||  zmq_recv (self->dealer, answer, sizeof answer, 0) < 0)
            return -1;
    return 0;
}

//  The raw caller as the figure's side (bench_alternate).
static int
s_caller_side (void *arg, int n, int64_t *ns)
{
    (void) ns;
    return s_caller_calls (arg, n);
}

static void
s_caller_close (s_caller_t *self)
{
    if (self->dealer) {
        int zero = 0;
        zmq_setsockopt (self->dealer, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close (self->dealer);
    }
    if (self->ctx)
        zmq_ctx_term (self->ctx);
    free (self->cmd);
}

//  --------------------------------------------------------------------------

typedef struct {
    bench_run_t bench;
    bool caller;                    //  rpc_rtt_caller, else rpc_rtt_callee
} s_run_t;

static int
s_root (tr_actor_t *self, void *arg)
{
    s_run_t *run = arg;
    bench_run_t *bench = &run->bench;
    bench->was_root = true;
    bench->failed = true;
    bench_raw_t raw;
    memset (&raw, 0, sizeof raw);
    s_caller_t caller;
    memset (&caller, 0, sizeof caller);
    tr_nursery_t *nursery = NULL;
    tr_portal_t *portal = NULL, *child = NULL;
    pid_t callee = 0;
    char path [128], endpoint [160];
    snprintf (path, sizeof path, "/tmp/troupe-bench-callee-%d.ipc", (int) getpid ());
    snprintf (endpoint, sizeof endpoint, "ipc://%s", path);
    int rc;
    uint64_t cid = WARMUP_CALLS + (uint64_t) bench->rounds * bench->per_round / 2;
    size_t cmd_size, reply_size;
    uint8_t *cmd = bench_call_frames_args (cid, "nil", NULL, false, &cmd_size, &reply_size);
    if (bench_raw_open (&raw, "ipc", "split", cmd, cmd_size, reply_size))
        goto done;
    if (run->caller) {
        char *argv [] = { "bench_split", "--raw-callee", endpoint, NULL };
        if ((callee = bench_spawn_self (argv)) < 0
        ||  (rc = tr_portal_open (self, endpoint, 5000, &portal))) {
            fprintf (stderr, "bench_split: no raw callee at %s\n", endpoint);
            goto done;
        }
    }
    else {
        if ((rc = tr_nursery_open (self, &nursery))
        ||  (rc = tr_nursery_start_actor (nursery, "server", NULL, &child))
        ||  s_caller_open (&caller, tr_portal_endpoint (child), 1)) {
            fprintf (stderr, "bench_split: cannot reach the child's ROUTER\n");
            goto done;
        }
    }
    if ((run->caller? bench_call_nil_n (portal, WARMUP_CALLS): s_caller_calls (&caller, WARMUP_CALLS))
    ||  bench_raw_calls (&raw, WARMUP_CALLS, 1))
        goto done;
    bench_troupe_fn *side = run->caller? bench_nil_side: s_caller_side;
    void *side_arg = run->caller? (void *) portal: &caller;
    for (int r = 0; r < bench->rounds; r++)
        if (bench_alternate (bench, r, CHUNK_CALLS, side, side_arg, &raw, 1))
            goto done;
    bench->failed = false;
done:
    bench_raw_close (&raw);
    s_caller_close (&caller);
    if (portal) {
        tr_portal_cancel_actor (portal, 1000);
        tr_portal_close (&portal);
    }
    if (callee > 0) {
        if (bench_reap (callee))
            kill (callee, SIGKILL), bench_reap (callee);
    }
    unlink (path);
    if (nursery)
        tr_nursery_close (&nursery, NULL);
    return bench->failed? 1: 0;
}

int
main (int argc, char **argv)
{
    bench_pin ();
    int code;
    if (bench_raw_server_main (argc, argv, &code))
        return code;
    if (argc == 3 && strcmp (argv [1], "--raw-callee") == 0)
        return s_raw_callee (argv [2]);

    static const tr_export_t exports [] = { TR_FN ("nil", bench_nil), TR_EXPORTS_END };
    const char *sides [] = { "caller", "callee" };
    for (int s = 0; s < 2; s++) {
        if (argc > 1 && argv [1][0] != '-' && strcmp (argv [1], sides [s]) != 0)
            continue;
        s_run_t run;
        memset (&run, 0, sizeof run);
        run.caller = s == 0;
        snprintf (run.bench.name, sizeof run.bench.name, "rpc_rtt_%s", sides [s]);
        run.bench.unit = "us";
        run.bench.unit_ns = 1e3;
        run.bench.rounds = bench_rounds (DEFAULT_ROUNDS);
        run.bench.per_round = bench_env_int ("BENCH_N", DEFAULT_CALLS);
        tr_config_t config = { .name = "bench_split", .exports = exports, .bind = "ipc" };
        if (bench_finish (&run.bench, tr_run (&config, argc, argv, s_root, &run), &code))
            return code;
    }
    return 0;
}
