/*  =========================================================================
    bench_gather.c - contexts opened on many actors at once, troupe against
    troupe

    Figure gather_open: the root starts 16 child actors once; then each
    operation opens a context on all 16 with tr_contexts_open and closes
    them with tr_contexts_close (rule 10: every request is sent before any
    reply is awaited, every cancel before any ack), in milliseconds per
    operation. Its reference ("raw" in the result line) is not libzmq,
    which has no counterpart, but the same work done one context at a
    time in the same run: 16 tr_portal_open_context one after the other,
    then 16 tr_context_close one after the other. The ratio is the time of
    the gather over the time of the sequence: what opening and closing
    together saves (lower is better).

    The children's context function "hold" calls tr_ctx_started at once,
    opens its stream and waits on it until it ends; the root never opens
    its side, so each close cancels the remote task, which returns, and
    awaits its ack.

    Figure gather_open_1ms: the same, but each callee waits tr_sleep (1)
    before it calls tr_ctx_started: a wait, not work, as for a peer on another host, or
    one that opens a file or a connection first. That is what a gather is
    for: the waits overlap instead of adding up. On a machine with few
    CPUs, gather_open (no wait) measures the CPU the children share
    instead.

    The two sides alternate operation by operation; each
    figure is the median of the rounds. The time to open and to close goes
    to stderr for each side, per round.

    What the machine allows, on stderr after the figure: the same pattern
    in raw libzmq. The root's ROUTER talks to 16 DEALERs, each in a copy
    of this binary (--raw-echo) that answers every message; one operation
    is two exchanges with each peer (troupe's open and close are one
    round trip each), all sent before any answer is awaited, against the
    same exchanges one peer at a time; the ratio of the two medians is
    the floor a gather can reach here. On a 2-CPU machine every peer runs
    on the one CPU the root does not, so a gather is bounded by the
    peers' wake-ups there, in troupe and in libzmq alike.

    BENCH_CHILDREN overrides the number of children.
    BENCH_ONLY=troupe (the gather) or BENCH_ONLY=raw (the sequence) times
    one side only (for profiling).
    This binary is also the child actor (tr_run serves its exports) and,
    with --raw-echo ENDPOINT, a raw peer.
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"

#define DEFAULT_ROUNDS      7
#define DEFAULT_OPS         50      //  operations per side per round
#define DEFAULT_CHILDREN    16
#define MAX_CHILDREN        256
#define WARMUP_OPS          3
#define DEFAULT_OPS_LATE    10      //  the same, when each open waits
#define RAW_FRAME           13      //  bytes in a raw request and answer: a cmd's size

typedef struct {
    bench_run_t bench;              //  troupe: gather; raw: one at a time
    int children;
    int start_ms;                   //  each callee's wait before started
    tr_args_t *args;                //  "hold"'s argument: [start_ms]
} s_run_t;

//  Time spent opening and closing, for one side of one round.
typedef struct {
    int64_t open_ns;
    int64_t close_ns;
} s_split_t;

//  The children's context function: started after [ms] milliseconds,
//  then wait on the stream until it ends (closed by the caller, or
//  cancelled).
static int
s_hold (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) out;
    int ms = 0;
    tr_stream_t *stream;
    int rc = tr_unpack (args, "[i]", &ms);
    if (rc == 0 && ms > 0)
        rc = tr_sleep (ctx, ms);
    if (rc == 0)
        rc = tr_ctx_started (ctx, NULL);
    if (rc == 0)
        rc = tr_ctx_open_stream (ctx, &stream);
    while (rc == 0) {
        const msgpack_object *value;
        rc = tr_stream_recv (stream, &value, -1);
    }
    return rc == TR_ECLOSED? 0: rc;
}

//  One gather: open a context on every portal at once, close them all.
static int
s_gather (tr_portal_t **portals, int n, const tr_args_t *args, s_split_t *split)
{
    tr_context_t *contexts [MAX_CHILDREN];
    int64_t start = bench_now_ns ();
    int rc = tr_contexts_open (portals, (size_t) n, "hold", args, contexts, NULL);
    int64_t opened = bench_now_ns ();
    if (rc)
        return rc;
    rc = tr_contexts_close (contexts, (size_t) n);
    split->open_ns += opened - start;
    split->close_ns += bench_now_ns () - opened;
    return rc;
}

//  The same, one context at a time: open each in turn, then close each.
static int
s_sequence (tr_portal_t **portals, int n, const tr_args_t *args, s_split_t *split)
{
    tr_context_t *contexts [MAX_CHILDREN];
    int rc = 0, opened = 0;
    int64_t start = bench_now_ns ();
    for (; opened < n; opened++)
        if ((rc = tr_portal_open_context (portals [opened], "hold", args,
                                          &contexts [opened], NULL)))
            break;
    int64_t middle = bench_now_ns ();
    for (int i = 0; i < opened; i++)
        tr_context_close (&contexts [i]);
    split->open_ns += middle - start;
    split->close_ns += bench_now_ns () - middle;
    return rc;
}

//  --------------------------------------------------------------------------
//  Raw libzmq, the same pattern: what the machine allows

//  A raw peer: connect a DEALER to endpoint, say hello (an empty message),
//  answer every message with RAW_FRAME bytes until an empty one; a message
//  whose first byte is N > 0 is answered N milliseconds later, at the
//  deadline the children's tr_sleep (N) has. Returns
//  main's exit code.
static int
s_raw_echo (const char *endpoint)
{
    uint8_t frame [BENCH_MAX_FRAME];
    memset (frame, 0xc0, sizeof frame);
    void *ctx = zmq_ctx_new ();
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    int rc = 0;
    if (!dealer || zmq_connect (dealer, endpoint) || zmq_send (dealer, "", 0, 0) < 0) {
        fprintf (stderr, "raw echo: cannot reach %s: %s\n", endpoint, zmq_strerror (errno));
        rc = 1;
    }
    while (rc == 0) {
        int size = zmq_recv (dealer, frame, sizeof frame, 0);
        if (size <= 0)
            break;
        if (frame [0] > 0) {
            //  Until N ms from now, at the microsecond tr_sleep's
            //  deadline is.
            int64_t until_us = tri_after_ms (frame [0]);
            struct timespec until = { (time_t) (until_us / 1000000),
                                      (long) (until_us % 1000000) * 1000L };
            while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
                ;
            frame [0] = 0;
        }
        if (zmq_send (dealer, frame, RAW_FRAME, 0) < 0)
            break;
    }
    if (dealer)
        zmq_close (dealer);
    zmq_ctx_term (ctx);
    return rc;
}

typedef struct {
    bench_bound_t router;
    int peers;
    pid_t pids [MAX_CHILDREN];
    uint8_t ids [MAX_CHILDREN][256];    //  the peers' routing ids
    size_t id_sizes [MAX_CHILDREN];
} s_raw_t;

static int
s_raw_send (s_raw_t *self, int peer, int wait_ms)
{
    uint8_t request [RAW_FRAME] = { (uint8_t) wait_ms };
    return zmq_send (self->router.socket, self->ids [peer], self->id_sizes [peer],
                     ZMQ_SNDMORE) < 0
        || zmq_send (self->router.socket, request, sizeof request, 0) < 0? -1: 0;
}

static int
s_raw_answer (s_raw_t *self)
{
    uint8_t frame [BENCH_MAX_FRAME];
    return zmq_recv (self->router.socket, frame, sizeof frame, 0) < 0
        || zmq_recv (self->router.socket, frame, sizeof frame, 0) < 0? -1: 0;
}

//  Bind, start the peers, learn their routing ids from their hellos.
static int
s_raw_open (s_raw_t *self, int peers)
{
    memset (self, 0, sizeof *self);
    if (bench_bind (&self->router, ZMQ_ROUTER, "ipc", "gather"))
        return -1;
    for (; self->peers < peers; self->peers++) {
        char *argv [] = { "bench", "--raw-echo", self->router.endpoint, NULL };
        if ((self->pids [self->peers] = bench_spawn_self (argv)) < 0)
            return -1;
    }
    for (int i = 0; i < peers; i++) {
        uint8_t hello [BENCH_MAX_FRAME];
        int size = zmq_recv (self->router.socket, self->ids [i], sizeof self->ids [i], 0);
        if (size <= 0 || zmq_recv (self->router.socket, hello, sizeof hello, 0) != 0)
            return -1;
        self->id_sizes [i] = (size_t) size;
    }
    return 0;
}

static void
s_raw_close (s_raw_t *self)
{
    for (int i = 0; i < self->peers; i++)
        if (self->id_sizes [i]) {
            zmq_send (self->router.socket, self->ids [i], self->id_sizes [i], ZMQ_SNDMORE);
            zmq_send (self->router.socket, "", 0, 0);
        }
        else
        if (self->pids [i] > 0)
            kill (self->pids [i], SIGKILL);     //  never said hello
    for (int i = 0; i < self->peers; i++)
        if (self->pids [i] > 0)
            bench_reap (self->pids [i]);
    if (self->router.socket) {
        int linger = 0;
        zmq_setsockopt (self->router.socket, ZMQ_LINGER, &linger, sizeof linger);
    }
    bench_unbind (&self->router);
}

//  One raw operation: two exchanges with every peer, all at once (gather)
//  or one peer at a time; the first is answered after wait_ms.
static int
s_raw_op (s_raw_t *self, bool gather, int wait_ms)
{
    for (int exchange = 0; exchange < 2; exchange++) {
        for (int i = 0; i < self->peers; i++)
            if (s_raw_send (self, i, exchange? 0: wait_ms)
            ||  (!gather && s_raw_answer (self)))
                return -1;
        for (int i = 0; gather && i < self->peers; i++)
            if (s_raw_answer (self))
                return -1;
    }
    return 0;
}

//  The raw pattern's figures, to stderr.
static void
s_raw_floor (s_run_t *run)
{
    bench_run_t *bench = &run->bench;
    s_raw_t *raw = calloc (1, sizeof *raw);
    double gather [BENCH_MAX_ROUNDS], sequence [BENCH_MAX_ROUNDS];
    if (!raw || s_raw_open (raw, run->children)) {
        fprintf (stderr, "bench_gather: cannot start the raw peers\n");
        goto done;
    }
    for (int i = 0; i < WARMUP_OPS; i++)
        if (s_raw_op (raw, true, run->start_ms) || s_raw_op (raw, false, run->start_ms))
            goto failed;
    for (int r = 0; r < bench->rounds; r++) {
        int64_t gather_ns = 0, sequence_ns = 0;
        for (int op = 0; op < bench->per_round; op++) {
            int64_t start = bench_now_ns ();
            if (s_raw_op (raw, true, run->start_ms))
                goto failed;
            int64_t middle = bench_now_ns ();
            if (s_raw_op (raw, false, run->start_ms))
                goto failed;
            gather_ns += middle - start;
            sequence_ns += bench_now_ns () - middle;
        }
        gather [r] = gather_ns / 1e6 / bench->per_round;
        sequence [r] = sequence_ns / 1e6 / bench->per_round;
    }
    double g = bench_median (gather, bench->rounds);
    double q = bench_median (sequence, bench->rounds);
    fprintf (stderr, "bench: %s: raw libzmq, 2 exchanges with each of %d peers (the first "
             "answered after %d ms): all at once %.3f ms, one peer at a time %.3f ms, "
             "ratio %.2f\n", bench->name, run->children, run->start_ms, g, q,
             q > 0? g / q: 0.0);
    goto done;
failed:
    fprintf (stderr, "bench_gather: raw exchange failed: %s\n", zmq_strerror (errno));
done:
    if (raw)
        s_raw_close (raw);
    free (raw);
}

//  --------------------------------------------------------------------------

static int
s_root (tr_actor_t *self, void *arg)
{
    s_run_t *run = arg;
    bench_run_t *bench = &run->bench;
    bench->was_root = true;
    bench->failed = true;
    tr_portal_t *portals [MAX_CHILDREN];
    tr_nursery_t *nursery = NULL;
    int rc = tr_nursery_open (self, &nursery);
    int64_t start = bench_now_ns ();
    for (int i = 0; rc == 0 && i < run->children; i++)
        rc = tr_nursery_start_actor (nursery, "holder", NULL, &portals [i]);
    if (rc) {
        fprintf (stderr, "bench_gather: cannot start the children: %s\n", tr_strerror (rc));
        goto done;
    }
    fprintf (stderr, "bench: %s: started %d children in %.1f ms; %d rounds of %d "
             "operations each way\n", bench->name, run->children,
             (bench_now_ns () - start) / 1e6, bench->rounds, bench->per_round);
    bool gather_on = bench_side_on ("troupe");
    bool sequence_on = bench_side_on ("raw");
    s_split_t unused = { 0, 0 };
    for (int i = 0; i < WARMUP_OPS; i++)
        if ((gather_on && (rc = s_gather (portals, run->children, run->args, &unused)))
        ||  (sequence_on && (rc = s_sequence (portals, run->children, run->args, &unused)))) {
            fprintf (stderr, "bench_gather: warm-up failed: %s\n", tr_strerror (rc));
            goto done;
        }
    for (int r = 0; r < bench->rounds; r++) {
        s_split_t gather = { 0, 0 }, sequence = { 0, 0 };
        for (int op = 0; op < bench->per_round; op++) {
            if (gather_on && (rc = s_gather (portals, run->children, run->args, &gather))) {
                fprintf (stderr, "bench_gather: gather failed: %s\n", tr_strerror (rc));
                goto done;
            }
            if (sequence_on && (rc = s_sequence (portals, run->children, run->args,
                                                 &sequence))) {
                fprintf (stderr, "bench_gather: sequence failed: %s\n", tr_strerror (rc));
                goto done;
            }
        }
        bench_record (bench, r, gather.open_ns + gather.close_ns,
                      sequence.open_ns + sequence.close_ns);
        double per = 1e6 * bench->per_round;
        fprintf (stderr, "bench: %s round %d: gather open %.3f ms close %.3f ms, "
                 "one at a time open %.3f ms close %.3f ms\n", bench->name, r,
                 gather.open_ns / per, gather.close_ns / per,
                 sequence.open_ns / per, sequence.close_ns / per);
    }
    bench->failed = false;
    if (gather_on && sequence_on)
        s_raw_floor (run);
done:
    if (nursery)
        tr_nursery_close (&nursery, NULL);
    return bench->failed? 1: 0;
}

int
main (int argc, char **argv)
{
    bench_pin ();
    if (argc == 3 && strcmp (argv [1], "--raw-echo") == 0)
        return s_raw_echo (argv [2]);
    static const tr_export_t exports [] = {
        TR_FN ("nil", bench_nil),
        TR_CTX_FN ("hold", s_hold),
        TR_EXPORTS_END
    };
    static const struct {
        const char *name;
        int start_ms;
        int ops;
    } figures [] = {
        { "gather_open", 0, DEFAULT_OPS },
        { "gather_open_1ms", 1, DEFAULT_OPS_LATE }
    };
    for (size_t f = 0; f < sizeof figures / sizeof figures [0]; f++) {
        if (argc > 1 && argv [1][0] != '-' && strcmp (argv [1], figures [f].name) != 0)
            continue;
        s_run_t run;
        bench_run_init (&run.bench, figures [f].name, "ms", 1e6, DEFAULT_ROUNDS,
                        figures [f].ops);
        run.children = bench_env_int ("BENCH_CHILDREN", DEFAULT_CHILDREN);
        if (run.children > MAX_CHILDREN)
            run.children = MAX_CHILDREN;
        run.start_ms = figures [f].start_ms;
        run.args = tr_pack ("[i]", run.start_ms);
        if (!run.args)
            return 1;
        tr_config_t config = { .name = "bench_gather", .exports = exports };
        int rc = tr_run (&config, argc, argv, s_root, &run);
        tr_args_destroy (&run.args);
        int code;
        if (bench_finish (&run.bench, rc, &code))
            return code;
    }
    return 0;
}
