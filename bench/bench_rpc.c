/*  =========================================================================
    bench_rpc.c - round trip of a no-op call, troupe against raw libzmq

    Figures rpc_rtt_ipc, rpc_rtt_tcp and rpc_rtt_curve: a root calls an
    exported function that returns nil in a child actor, one call at a
    time, with the parent-child channel on ipc or on tcp (config.bind),
    or on tcp with CURVE (keys made by tr_keygen in a fresh directory);
    microseconds per call. With CURVE the raw reference encrypts too. The raw reference in the same run is a DEALER/ROUTER ping-pong
    between this process and a copy of this binary started in raw-server
    mode, carrying frames of exactly the size of troupe's cmd and return
    frames, with blocking zmq_send/zmq_recv on both sides. Within a round
    the two alternate every few hundred calls; each figure is the median
    of the rounds.

    Usage: bench_rpc [ipc|tcp|curve]   (all when no argument is given)
    BENCH_ONLY=troupe or BENCH_ONLY=raw times one side only (for profiling).
    This binary is also the child actor (tr_run serves its exports) and,
    with --raw-server ENDPOINT REPLY_SIZE REQUEST_MAX, the raw server.
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"

#define DEFAULT_ROUNDS  7
#define DEFAULT_CALLS   20000
#define WARMUP_CALLS    2000
#define CHUNK_CALLS     500     //  calls per side before switching sides

typedef struct {
    bench_run_t bench;              //  rpc_rtt_<transport>: us per call
    const char *transport;          //  "ipc" or "tcp"
} s_run_t;

//  --------------------------------------------------------------------------
//  troupe

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
    int rc = tr_nursery_open (self, &nursery);
    if (rc == 0)
        rc = tr_nursery_start_actor (nursery, "server", NULL, &server);
    if (rc) {
        fprintf (stderr, "bench_rpc: cannot start the child: %s\n", tr_strerror (rc));
        goto done;
    }
    //  The frames troupe sends for one call, at a cid from the middle of
    //  the timed calls.
    uint64_t cid = WARMUP_CALLS + (uint64_t) bench->rounds * bench->per_round / 2;
    size_t cmd_size, reply_size;
    uint8_t *cmd = bench_call_frames_args (cid, "nil", NULL, false, &cmd_size, &reply_size);
    fprintf (stderr, "bench: rpc_rtt_%s: cmd frame %zu bytes, return frame %zu bytes, "
             "%d rounds of %d calls\n", run->transport, cmd_size, reply_size,
             bench->rounds, bench->per_round);
    if (bench_raw_open (&raw, run->transport, "rpc", cmd, cmd_size, reply_size))
        goto done;
    if ((rc = bench_call_nil_n (server, WARMUP_CALLS)) || bench_raw_calls (&raw, WARMUP_CALLS, 1)) {
        fprintf (stderr, "bench_rpc: warm-up failed: %s\n", tr_strerror (rc));
        goto done;
    }
    for (int r = 0; r < bench->rounds; r++)
        if (bench_alternate (bench, r, CHUNK_CALLS, bench_nil_side, server, &raw, 1))
            goto done;
    bench->failed = false;
done:
    bench_raw_close (&raw);
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

    static const tr_export_t exports [] = { TR_FN ("nil", bench_nil), TR_EXPORTS_END };
    const char *figures [] = { "ipc", "tcp", "curve" };
    for (size_t t = 0; t < sizeof figures / sizeof figures [0]; t++) {
        if (argc > 1 && argv [1][0] != '-' && strcmp (argv [1], figures [t]) != 0)
            continue;
        bool curve = strcmp (figures [t], "curve") == 0;
        s_run_t run;
        memset (&run, 0, sizeof run);
        run.transport = curve? "tcp": figures [t];
        snprintf (run.bench.name, sizeof run.bench.name, "rpc_rtt_%s", figures [t]);
        run.bench.unit = "us";
        run.bench.unit_ns = 1e3;
        run.bench.rounds = bench_rounds (DEFAULT_ROUNDS);
        run.bench.per_round = bench_env_int ("BENCH_N", DEFAULT_CALLS);
        tr_config_t config = TR_CONFIG_INIT;
        config.name = "bench_rpc";
        config.exports = exports;
        config.bind = run.transport;
        char keys [64] = "";
        if (curve) {
            snprintf (keys, sizeof keys, "/tmp/troupe-bench-keys-XXXXXX");
            if (!mkdtemp (keys) || rmdir (keys) || tr_keygen (keys)) {
                fprintf (stderr, "bench_rpc: cannot make keys in %s\n", keys);
                return 1;
            }
            config.keys = keys;
        }
        int rc = tr_run (&config, argc, argv, s_root, &run);
        if (curve) {
            char cmd [128];
            snprintf (cmd, sizeof cmd, "rm -rf '%s'", keys);
            if (system (cmd)) {
                //  A directory left in /tmp: nothing else to do.
            }
        }
        if (bench_finish (&run.bench, rc, &code))
            return code;
    }
    return 0;
}
