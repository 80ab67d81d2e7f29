/*  =========================================================================
    bench_payload.c - a large bytes argument echoed, troupe against raw
    libzmq

    Figures rpc_payload_64k and rpc_payload_1m: a root calls an exported
    function of a child actor (ipc) that returns its arguments, passing
    one bytes value of 64 KiB or 1 MiB (tr_pack "[y]", packed once and
    passed to every call), one call at a time; microseconds per call. The
    raw reference in the same run is a DEALER/ROUTER echo between this
    process and a copy of this binary started in raw-server mode: the
    DEALER sends a frame of the size of troupe's cmd frame for that call
    from a buffer (zmq_send), the server sends the message it received
    straight back (zmq_msg_recv, zmq_msg_send) and the DEALER receives it
    into a zmq_msg_t, so that the raw side copies the payload once, in
    zmq_send. Within a round the two alternate every few calls; each
    figure is the median of the rounds.

    Usage: bench_payload [64k|1m]   (both when no argument is given)
    BENCH_ONLY=troupe or BENCH_ONLY=raw times one side only (for profiling).
    This binary is also the child actor (tr_run serves its exports) and,
    with --raw-server ENDPOINT REPLY_SIZE REQUEST_MAX, the raw server.
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"

#define DEFAULT_ROUNDS  7

typedef struct {
    bench_run_t bench;              //  rpc_payload_<size>: us per call
    size_t size;                    //  bytes in the argument
    int chunk;                      //  calls per side before switching sides
    int warmup;                     //  calls per side before the rounds
} s_run_t;

//  The child's function: return the arguments as they came.
static int
s_echo (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx;
    return tr_reply_object (out, args);
}

//  --------------------------------------------------------------------------
//  troupe

static int
s_troupe_calls (tr_portal_t *portal, const tr_args_t *args, int calls)
{
    for (int i = 0; i < calls; i++) {
        tr_value_t *result = NULL;
        int rc = tr_portal_run (portal, "echo", args, &result);
        tr_value_destroy (&result);
        if (rc)
            return rc;
    }
    return 0;
}

//  troupe's side of the figure (bench_alternate).
typedef struct {
    tr_portal_t *portal;
    const tr_args_t *args;
} s_echo_t;

static int
s_echo_side (void *arg, int n, int64_t *ns)
{
    (void) ns;
    s_echo_t *echo = arg;
    return s_troupe_calls (echo->portal, echo->args, n);
}

//  One call, and a look at what came back: [bytes of the size sent].
static int
s_troupe_check (tr_portal_t *portal, const tr_args_t *args, size_t size)
{
    tr_value_t *result = NULL;
    int rc = tr_portal_run (portal, "echo", args, &result);
    const void *bytes;
    size_t bytes_size = 0;
    if (rc == 0 && (tr_unpack (tr_value_object (result), "[y]", &bytes, &bytes_size)
                    || bytes_size != size)) {
        fprintf (stderr, "bench_payload: the echo is not the argument\n");
        rc = TR_EPROTO;
    }
    tr_value_destroy (&result);
    return rc;
}

//  --------------------------------------------------------------------------
//  The figure of one size

static int
s_root (tr_actor_t *self, void *arg)
{
    s_run_t *run = arg;
    bench_run_t *bench = &run->bench;
    bench->was_root = true;
    bench->failed = true;
    bench_raw_t raw;
    memset (&raw, 0, sizeof raw);
    tr_nursery_t *nursery = NULL;
    tr_portal_t *server;
    tr_args_t *args = NULL;
    uint8_t *payload = malloc (run->size);
    if (!payload)
        goto done;
    memset (payload, 0x5a, run->size);
    args = tr_pack ("[y]", payload, run->size);
    if (!args)
        goto done;
    int rc = tr_nursery_open (self, &nursery);
    if (rc == 0)
        rc = tr_nursery_start_actor (nursery, "server", NULL, &server);
    if (rc) {
        fprintf (stderr, "bench_payload: cannot start the child: %s\n", tr_strerror (rc));
        goto done;
    }
    //  The frames troupe sends for one call, at a cid from the middle of
    //  the timed calls.
    uint64_t cid = (uint64_t) run->warmup + (uint64_t) bench->rounds * bench->per_round / 2;
    size_t cmd_size, reply_size;
    uint8_t *cmd = bench_call_frames_args (cid, "echo", args, true, &cmd_size, &reply_size);
    fprintf (stderr, "bench: %s: cmd frame %zu bytes, return frame %zu bytes "
             "(raw echoes the cmd), %d rounds of %d calls\n", bench->name, cmd_size,
             reply_size, bench->rounds, bench->per_round);
    if (bench_raw_open (&raw, "ipc", "payload", cmd, cmd_size, 0))
        goto done;
    if ((rc = s_troupe_check (server, args, run->size))
    ||  (rc = s_troupe_calls (server, args, run->warmup))
    ||  bench_raw_calls (&raw, run->warmup, 1)) {
        fprintf (stderr, "bench_payload: warm-up failed: %s\n", tr_strerror (rc));
        goto done;
    }
    s_echo_t echo = { server, args };
    for (int r = 0; r < bench->rounds; r++)
        if (bench_alternate (bench, r, run->chunk, s_echo_side, &echo, &raw, 1))
            goto done;
    bench->failed = false;
done:
    bench_raw_close (&raw);
    if (nursery)
        tr_nursery_close (&nursery, NULL);
    tr_args_destroy (&args);
    free (payload);
    return bench->failed? 1: 0;
}

int
main (int argc, char **argv)
{
    bench_pin ();
    int code;
    if (bench_raw_server_main (argc, argv, &code))
        return code;

    static const tr_export_t exports [] = {
        TR_FN ("nil", bench_nil), TR_FN ("echo", s_echo), TR_EXPORTS_END
    };
    static const struct {
        const char *tag;
        size_t size;
        int calls, chunk, warmup;
    } figures [] = {
        { "64k", 64 * 1024, 1000, 50, 100 },
        { "1m", 1024 * 1024, 300, 10, 30 }
    };
    for (size_t f = 0; f < sizeof figures / sizeof figures [0]; f++) {
        if (argc > 1 && argv [1][0] != '-' && strcmp (argv [1], figures [f].tag) != 0)
            continue;
        s_run_t run;
        char name [32];
        snprintf (name, sizeof name, "rpc_payload_%s", figures [f].tag);
        bench_run_init (&run.bench, name, "us", 1e3, DEFAULT_ROUNDS, figures [f].calls);
        run.size = figures [f].size;
        run.chunk = figures [f].chunk;
        run.warmup = figures [f].warmup;
        tr_config_t config = { .name = "bench_payload", .exports = exports };
        if (bench_finish (&run.bench, tr_run (&config, argc, argv, s_root, &run), &code))
            return code;
    }
    return 0;
}
