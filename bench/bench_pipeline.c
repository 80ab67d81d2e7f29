/*  =========================================================================
    bench_pipeline.c - many calls in flight through one portal, troupe
    against raw libzmq

    Figures rpc_pipelined_8, rpc_pipelined_64 and rpc_pipelined_256: a root
    keeps N calls of a no-op exported function in flight through one portal
    on a child actor (ipc), from N tasks (tr_task_spawn) that each call
    tr_portal_run again as soon as their call returns; calls per second.
    The raw reference in the same run is a DEALER that keeps N requests
    outstanding against a ROUTER in a copy of this binary started in
    raw-server mode, which answers each one; the frames have exactly the
    sizes of troupe's cmd and return frames. Within a round the two sides
    alternate every few thousand calls, each side filling its pipeline at
    the start of its chunk and draining it at the end; each figure is the
    median of the rounds.

    Usage: bench_pipeline [8|64|256]   (all when no argument is given)
    BENCH_ONLY=troupe or BENCH_ONLY=raw times one side only (for profiling).
    This binary is also the child actor (tr_run serves its exports) and,
    with --raw-server ENDPOINT REPLY_SIZE REQUEST_MAX, the raw server.
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"

#define DEFAULT_ROUNDS  7
#define MAX_DEPTH       256

typedef struct {
    bench_run_t bench;              //  rpc_pipelined_<depth>: calls/s
    int depth;                      //  calls in flight
    int chunk;                      //  calls per side before switching sides
} s_run_t;

//  One chunk of troupe calls: what the tasks share. Static, not on the
//  root's stack: a task cancelled by SIGINT may outlive the root's wait.
typedef struct {
    tr_portal_t *portal;
    int to_start;                   //  calls not started yet
    int running;                    //  tasks not ended yet
    int rc;                         //  first failure
    int64_t end_ns;                 //  when the last call returned
} s_pipe_t;

static s_pipe_t s_pipe;

//  --------------------------------------------------------------------------
//  troupe

//  One of the tasks: call until the chunk's calls are all started.
static int
s_caller (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_pipe_t *self = arg;
    while (self->to_start > 0 && self->rc == 0) {
        self->to_start--;
        int rc = bench_call_nil (self->portal);
        if (rc && self->rc == 0)
            self->rc = rc;
    }
    if (--self->running == 0)
        self->end_ns = bench_now_ns ();
    return 0;
}

//  Make calls calls, depth at a time, from depth tasks; the time from the
//  first call to the last return in *ns. The tasks are made before the
//  clock starts and run once this task parks in the first join.
static int
s_troupe_calls (tr_actor_t *self, tr_portal_t *portal, int calls, int depth, int64_t *ns)
{
    tr_task_t *tasks [MAX_DEPTH];
    s_pipe = (s_pipe_t) { .portal = portal, .to_start = calls };
    *ns = 0;
    if (calls == 0)
        return 0;
    int made = 0, rc = 0;
    for (; made < depth && made < calls; made++)
        if ((rc = tr_task_spawn (self, s_caller, &s_pipe, &tasks [made])))
            break;
    s_pipe.running = made;
    if (rc)
        s_pipe.to_start = 0;        //  the tasks made end at once
    int64_t start = bench_now_ns ();
    for (int i = 0; i < made; i++) {
        int join_rc = tr_task_join (&tasks [i], NULL);
        if (join_rc && rc == 0)
            rc = join_rc;
    }
    *ns = s_pipe.end_ns - start;
    return rc? rc: s_pipe.rc;
}

//  troupe's side of the figure (bench_alternate): the time from the first
//  call to the last return, the tasks made before it.
typedef struct {
    tr_actor_t *self;
    tr_portal_t *portal;
    int depth;
} s_side_t;

static int
s_pipelined_side (void *arg, int n, int64_t *ns)
{
    s_side_t *side = arg;
    return s_troupe_calls (side->self, side->portal, n, side->depth, ns);
}

//  --------------------------------------------------------------------------
//  The figure of one depth

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
        fprintf (stderr, "bench_pipeline: cannot start the child: %s\n", tr_strerror (rc));
        goto done;
    }
    //  The frames troupe sends for one call, at a cid from the middle of
    //  the timed calls.
    int warmup = run->chunk;
    uint64_t cid = (uint64_t) warmup + (uint64_t) bench->rounds * bench->per_round / 2;
    size_t cmd_size, reply_size;
    uint8_t *cmd = bench_call_frames_args (cid, "nil", NULL, false, &cmd_size, &reply_size);
    fprintf (stderr, "bench: %s: cmd frame %zu bytes, return frame %zu bytes, "
             "%d in flight, %d rounds of %d calls\n", bench->name, cmd_size, reply_size,
             run->depth, bench->rounds, bench->per_round);
    if (bench_raw_open (&raw, "ipc", "pipeline", cmd, cmd_size, reply_size))
        goto done;
    int64_t troupe_ns;
    if ((rc = s_troupe_calls (self, server, warmup, run->depth, &troupe_ns))
    ||  bench_raw_calls (&raw, warmup, run->depth)) {
        fprintf (stderr, "bench_pipeline: warm-up failed: %s\n", tr_strerror (rc));
        goto done;
    }
    s_side_t side = { self, server, run->depth };
    for (int r = 0; r < bench->rounds; r++)
        if (bench_alternate (bench, r, run->chunk, s_pipelined_side, &side, &raw, run->depth))
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
    //  Calls per round and per chunk: each chunk long enough that filling
    //  and draining the pipeline is a small part of it.
    static const struct { int depth, calls, chunk; } figures [] = {
        { 8, 8000, 1000 }, { 64, 16000, 2000 }, { 256, 16000, 4000 }
    };
    for (size_t f = 0; f < sizeof figures / sizeof figures [0]; f++) {
        if (argc > 1 && argv [1][0] != '-' && atoi (argv [1]) != figures [f].depth)
            continue;
        s_run_t run;
        char name [32];
        snprintf (name, sizeof name, "rpc_pipelined_%d", figures [f].depth);
        bench_run_init (&run.bench, name, "calls/s", 0, DEFAULT_ROUNDS, figures [f].calls);
        run.depth = figures [f].depth;
        run.chunk = figures [f].chunk;
        tr_config_t config = { .name = "bench_pipeline", .exports = exports };
        if (bench_finish (&run.bench, tr_run (&config, argc, argv, s_root, &run), &code))
            return code;
    }
    return 0;
}
