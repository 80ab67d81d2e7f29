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
    awaits its ack. The two sides alternate operation by operation; each
    figure is the median of the rounds. The time to open and to close goes
    to stderr for each side, per round.

    BENCH_CHILDREN overrides the number of children.
    BENCH_ONLY=troupe (the gather) or BENCH_ONLY=raw (the sequence) times
    one side only (for profiling).
    This binary is also the child actor (tr_run serves its exports).
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"

#define DEFAULT_ROUNDS      7
#define DEFAULT_OPS         50      //  operations per side per round
#define DEFAULT_CHILDREN    16
#define MAX_CHILDREN        256
#define WARMUP_OPS          3

typedef struct {
    bench_run_t bench;              //  troupe: gather; raw: one at a time
    int children;
} s_run_t;

//  Time spent opening and closing, for one side of one round.
typedef struct {
    int64_t open_ns;
    int64_t close_ns;
} s_split_t;

//  The children's context function: started at once, then wait on the
//  stream until it ends (closed by the caller, or cancelled).
static int
s_hold (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) args; (void) out;
    tr_stream_t *stream;
    int rc = tr_ctx_started (ctx, NULL);
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
s_gather (tr_portal_t **portals, int n, s_split_t *split)
{
    tr_context_t *contexts [MAX_CHILDREN];
    int64_t start = bench_now_ns ();
    int rc = tr_contexts_open (portals, (size_t) n, "hold", NULL, contexts, NULL);
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
s_sequence (tr_portal_t **portals, int n, s_split_t *split)
{
    tr_context_t *contexts [MAX_CHILDREN];
    int rc = 0, opened = 0;
    int64_t start = bench_now_ns ();
    for (; opened < n; opened++)
        if ((rc = tr_portal_open_context (portals [opened], "hold", NULL,
                                          &contexts [opened], NULL)))
            break;
    int64_t middle = bench_now_ns ();
    for (int i = 0; i < opened; i++)
        tr_context_close (&contexts [i]);
    split->open_ns += middle - start;
    split->close_ns += bench_now_ns () - middle;
    return rc;
}

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
    const char *only = getenv ("BENCH_ONLY");
    bool gather_on = !(only && strcmp (only, "raw") == 0);
    bool sequence_on = !(only && strcmp (only, "troupe") == 0);
    s_split_t unused = { 0, 0 };
    for (int i = 0; i < WARMUP_OPS; i++)
        if ((gather_on && (rc = s_gather (portals, run->children, &unused)))
        ||  (sequence_on && (rc = s_sequence (portals, run->children, &unused)))) {
            fprintf (stderr, "bench_gather: warm-up failed: %s\n", tr_strerror (rc));
            goto done;
        }
    for (int r = 0; r < bench->rounds; r++) {
        s_split_t gather = { 0, 0 }, sequence = { 0, 0 };
        for (int op = 0; op < bench->per_round; op++) {
            if (gather_on && (rc = s_gather (portals, run->children, &gather))) {
                fprintf (stderr, "bench_gather: gather failed: %s\n", tr_strerror (rc));
                goto done;
            }
            if (sequence_on && (rc = s_sequence (portals, run->children, &sequence))) {
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
done:
    if (nursery)
        tr_nursery_close (&nursery, NULL);
    return bench->failed? 1: 0;
}

int
main (int argc, char **argv)
{
    bench_pin ();
    static const tr_export_t exports [] = {
        TR_FN ("nil", bench_nil),
        TR_CTX_FN ("hold", s_hold),
        TR_EXPORTS_END
    };
    s_run_t run;
    bench_run_init (&run.bench, "gather_open", "ms", 1e6, DEFAULT_ROUNDS, DEFAULT_OPS);
    run.children = bench_env_int ("BENCH_CHILDREN", DEFAULT_CHILDREN);
    if (run.children > MAX_CHILDREN)
        run.children = MAX_CHILDREN;
    tr_config_t config = { .name = "bench_gather", .exports = exports };
    int code;
    if (bench_finish (&run.bench, tr_run (&config, argc, argv, s_root, &run), &code))
        return code;
    return 0;
}
