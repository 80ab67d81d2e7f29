/*  =========================================================================
    bench_stream.c - values streamed within a context, troupe against raw
    libzmq

    Figure stream_throughput: a child actor streams 64-byte values (a
    msgpack bin of 64 bytes, packed once) to the root, one way, inside one
    context: the child's context function "source" calls tr_ctx_started,
    tr_ctx_open_stream, sends the values asked for with tr_stream_send and
    closes its stream; the root opens the context, opens its stream,
    receives until TR_ECLOSED and reads the context's result. Values per
    second, from the open to the result, one context per chunk. The raw
    reference in the same run is a DEALER in a copy of this binary
    (started with --raw-source) that, asked for a count by the root's
    ROUTER, sends that many messages of the size of troupe's yield frame
    for one value, which the root receives with zmq_recv; timed from the
    request to the last message. The ratio is troupe's rate over raw's:
    higher is better. troupe carries the values a task sends in a row in
    one yield frame (up to 64 of them); raw sends one message per value,
    as a plain libzmq program does.

    Figure stream_rtt: a ping-pong inside one open context: the root sends
    the 64-byte value on the stream, the child's context function "echo"
    receives it and sends it back, one at a time; microseconds per round
    trip. The raw reference is the DEALER/ROUTER ping-pong of bench.h
    (a copy of this binary started with --raw-server) with frames of
    exactly the size of troupe's yield frame each way, blocking
    zmq_send/zmq_recv on both sides.

    Within a round the two sides alternate every chunk (a context of
    10,000 values; 500 round trips); each figure is the median of the
    rounds. Everything runs over ipc.

    Usage: bench_stream [throughput|rtt]   (both when no argument is given)
    BENCH_ONLY=troupe or BENCH_ONLY=raw times one side only (for profiling).
    This binary is also the child actor (tr_run serves its exports) and,
    with --raw-server ENDPOINT REPLY_SIZE REQUEST_MAX or --raw-source
    ENDPOINT SIZE, the raw side's peer.
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"

#define DEFAULT_ROUNDS      7
#define VALUE_SIZE          64
#define THROUGHPUT_VALUES   100000  //  values per round
#define THROUGHPUT_CHUNK    10000   //  values per context, and per raw request
#define RTT_TRIPS           10000   //  round trips per round
#define RTT_CHUNK           500     //  round trips per side before switching
#define RTT_WARMUP          1000

typedef struct {
    bench_run_t bench;              //  stream_throughput (values/s), stream_rtt (us)
    bool throughput;                //  which of the two
    int chunk;
} s_run_t;

//  The value every figure sends: a bin of VALUE_SIZE bytes, packed once in
//  main, in the root and in the child alike.
static tr_args_t *s_value;

//  The size of troupe's yield frame [yield, cid, [side, value]] carrying
//  s_value alone, as a burst of one (the channel writes the array's
//  header as an array16, to fill in the count when the burst is sealed);
//  into frame (may be NULL) a malloc'ed copy of its bytes. Both sides'
//  frames have the same size.
static size_t
s_yield_frame (uint64_t cid, uint8_t **frame)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    tri_msg_begin (&pk, TRI_YIELD, cid);
    const char burst [] = { (char) 0xdc, 0, 2, TRI_SIDE_CALLEE };
    msgpack_sbuffer_write (&sbuf, burst, sizeof burst);
    msgpack_sbuffer_write (&sbuf, tr_args_data (s_value), tr_args_size (s_value));
    size_t size = sbuf.size;
    if (frame) {
        *frame = malloc (size);
        if (*frame)
            memcpy (*frame, sbuf.data, size);
    }
    msgpack_sbuffer_destroy (&sbuf);
    return size;
}

//  --------------------------------------------------------------------------
//  The child's context functions

//  "source" [n]: stream n copies of the value to the caller, close the
//  stream, return n.
static int
s_source (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int n = 0;
    if (tr_unpack (args, "[i]", &n) || n < 0)
        return tr_raise (ctx, "ValueError", "source takes [count]");
    tr_stream_t *stream;
    int rc = tr_ctx_started (ctx, NULL);
    if (rc == 0)
        rc = tr_ctx_open_stream (ctx, &stream);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = tr_stream_send (stream, s_value);
    if (rc)
        return rc;
    tr_stream_close (&stream);
    return tr_reply_pack (out, "i", n);
}

//  "echo": send back every value received, until the caller closes the
//  stream; return how many.
static int
s_echo (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) args;
    tr_stream_t *stream;
    int rc = tr_ctx_started (ctx, NULL);
    if (rc == 0)
        rc = tr_ctx_open_stream (ctx, &stream);
    int64_t echoed = 0;
    while (rc == 0) {
        const msgpack_object *value;
        rc = tr_stream_recv (stream, &value, -1);
        if (rc == 0)
            rc = tr_stream_send_pack (stream, "o", value);
        if (rc == 0)
            echoed++;
    }
    if (rc != TR_ECLOSED)
        return rc;
    return tr_reply_pack (out, "I", echoed);
}

//  --------------------------------------------------------------------------
//  Raw one-way stream: the root's ROUTER asks a DEALER in a copy of this
//  binary for a count of messages, and receives them.

//  The source: connect a DEALER to endpoint, say hello (an empty message,
//  so the ROUTER learns its routing id), then for every request (a count
//  in decimal) send that many messages of size bytes, until an empty
//  request. Returns main's exit code.
static int
s_raw_source (const char *endpoint, size_t size)
{
    uint8_t *message = malloc (size? size: 1);
    if (!message)
        return 2;
    memset (message, 0xc4, size);
    void *ctx = zmq_ctx_new ();
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    int rc = 0;
    if (!dealer || zmq_connect (dealer, endpoint) || zmq_send (dealer, "", 0, 0) < 0) {
        fprintf (stderr, "raw source: cannot reach %s: %s\n", endpoint, zmq_strerror (errno));
        rc = 1;
    }
    while (rc == 0) {
        char request [32];
        int request_size = zmq_recv (dealer, request, sizeof request - 1, 0);
        if (request_size <= 0)
            break;
        request [request_size] = 0;
        long count = atol (request);
        for (long i = 0; i < count; i++)
            if (zmq_send (dealer, message, size, 0) < 0) {
                rc = 1;
                break;
            }
    }
    if (dealer)
        zmq_close (dealer);
    zmq_ctx_term (ctx);
    free (message);
    return rc;
}

typedef struct {
    bench_bound_t router;           //  the source connects to it
    pid_t pid;
    uint8_t peer [256];             //  the source's routing id
    size_t peer_size;
    size_t size;                    //  of each message
    bool owed;                      //  a chunk was asked for and not all received
    uint8_t buffer [BENCH_MAX_FRAME];
} s_raw_stream_t;

//  Bind the ROUTER, start the source and wait for its hello. Returns 0, or
//  -1 with the reason on stderr; s_raw_stream_close cleans up either way.
static int
s_raw_stream_open (s_raw_stream_t *self, size_t size)
{
    memset (self, 0, sizeof *self);
    self->size = size;
    if (bench_bind (&self->router, ZMQ_ROUTER, "ipc", "stream"))
        return -1;
    char size_arg [32];
    snprintf (size_arg, sizeof size_arg, "%zu", size);
    char *argv [] = { "bench", "--raw-source", self->router.endpoint, size_arg, NULL };
    self->pid = bench_spawn_self (argv);
    if (self->pid < 0) {
        fprintf (stderr, "raw stream: cannot spawn the source: %s\n", strerror (errno));
        return -1;
    }
    int peer_size = zmq_recv (self->router.socket, self->peer, sizeof self->peer, 0);
    if (peer_size <= 0 || zmq_recv (self->router.socket, self->buffer,
                                    sizeof self->buffer, 0) != 0) {
        fprintf (stderr, "raw stream: no hello from the source\n");
        return -1;
    }
    self->peer_size = (size_t) peer_size;
    return 0;
}

//  Ask for count messages and receive them. Returns 0, or -1 with errno
//  set (EPROTO: a message of another size).
static int
s_raw_stream_chunk (s_raw_stream_t *self, int count)
{
    if (count == 0)
        return 0;
    char request [32];
    int request_size = snprintf (request, sizeof request, "%d", count);
    if (zmq_send (self->router.socket, self->peer, self->peer_size, ZMQ_SNDMORE) < 0
    ||  zmq_send (self->router.socket, request, (size_t) request_size, 0) < 0)
        return -1;
    self->owed = true;
    for (int i = 0; i < count; i++) {
        uint8_t peer [256];
        if (zmq_recv (self->router.socket, peer, sizeof peer, 0) < 0)
            return -1;
        int size = zmq_recv (self->router.socket, self->buffer, sizeof self->buffer, 0);
        if (size < 0)
            return -1;
        if ((size_t) size != self->size) {
            errno = EPROTO;
            return -1;
        }
    }
    self->owed = false;
    return 0;
}

//  Stop the source, reap it, close the socket. A source cut short in a
//  chunk (a signal, a failure) may be blocked sending and never read the
//  stop: it is killed, and what is queued for it dropped.
static void
s_raw_stream_close (s_raw_stream_t *self)
{
    if (self->pid > 0) {
        zmq_send (self->router.socket, self->peer, self->peer_size, ZMQ_SNDMORE);
        zmq_send (self->router.socket, "", 0, 0);
        if (self->owed)
            kill (self->pid, SIGKILL);
        bench_reap (self->pid);
        self->pid = 0;
    }
    if (self->router.socket) {
        int linger = 0;
        zmq_setsockopt (self->router.socket, ZMQ_LINGER, &linger, sizeof linger);
    }
    bench_unbind (&self->router);
    memset (&self->router, 0, sizeof self->router);
}

//  --------------------------------------------------------------------------
//  troupe: one context of count values from the child

static int
s_troupe_chunk (tr_portal_t *source, int count)
{
    if (count == 0)
        return 0;
    tr_args_t *args = tr_pack ("[i]", count);
    tr_context_t *context = NULL;
    tr_stream_t *stream = NULL;
    int rc = args? 0: TR_ENOMEM;
    if (rc == 0)
        rc = tr_portal_open_context (source, "source", args, &context, NULL);
    if (rc == 0)
        rc = tr_context_open_stream (context, &stream);
    int got = 0;
    while (rc == 0) {
        const msgpack_object *value;
        rc = tr_stream_recv (stream, &value, -1);
        if (rc == 0 && (value->type != MSGPACK_OBJECT_BIN
                        || value->via.bin.size != VALUE_SIZE))
            rc = TR_EPROTO;
        if (rc == 0)
            got++;
    }
    if (rc == TR_ECLOSED)
        rc = got == count? 0: TR_EPROTO;
    const msgpack_object *result;
    int64_t sent = -1;
    if (rc == 0)
        rc = tr_context_result (context, &result);
    if (rc == 0 && (tr_unpack (result, "I", &sent) || sent != count))
        rc = TR_EPROTO;
    if (rc == TR_EPROTO)
        fprintf (stderr, "bench_stream: asked for %d values, received %d, the source "
                 "says %lld\n", count, got, (long long) sent);
    tr_context_close (&context);
    tr_args_destroy (&args);
    return rc;
}

static int
s_throughput (tr_portal_t *child, s_run_t *run)
{
    bench_run_t *bench = &run->bench;
    s_raw_stream_t *raw = calloc (1, sizeof *raw);
    int rc = -1;
    //  The frame troupe sends for one value, at a cid from the middle of
    //  the timed contexts (one per chunk).
    int contexts = bench->rounds * ((bench->per_round + run->chunk - 1) / run->chunk);
    size_t frame_size = s_yield_frame (1 + 1 + (uint64_t) contexts / 2, NULL);
    fprintf (stderr, "bench: %s: yield frame %zu bytes (a %d-byte bin value), %d rounds "
             "of %d values, %d per context\n", bench->name, frame_size, VALUE_SIZE,
             bench->rounds, bench->per_round, run->chunk);
    if (!raw || s_raw_stream_open (raw, frame_size))
        goto done;
    bool troupe_on = bench_side_on ("troupe"), raw_on = bench_side_on ("raw");
    if ((rc = s_troupe_chunk (child, troupe_on? run->chunk: 0))) {
        fprintf (stderr, "bench_stream: warm-up failed: %s\n", tr_strerror (rc));
        goto done;
    }
    if ((rc = s_raw_stream_chunk (raw, raw_on? run->chunk: 0))) {
        fprintf (stderr, "bench_stream: raw warm-up failed: %s\n", zmq_strerror (errno));
        goto done;
    }
    int values = bench->per_round;
    for (int r = 0; r < bench->rounds; r++) {
        int64_t troupe_ns = 0, raw_ns = 0;
        for (int made = 0; made < values; made += run->chunk) {
            int chunk = values - made < run->chunk? values - made: run->chunk;
            int64_t start = bench_now_ns ();
            if ((rc = s_troupe_chunk (child, troupe_on? chunk: 0))) {
                fprintf (stderr, "bench_stream: stream failed: %s\n", tr_strerror (rc));
                goto done;
            }
            int64_t middle = bench_now_ns ();
            if ((rc = s_raw_stream_chunk (raw, raw_on? chunk: 0))) {
                fprintf (stderr, "bench_stream: raw stream failed: %s\n", zmq_strerror (errno));
                goto done;
            }
            troupe_ns += middle - start;
            raw_ns += bench_now_ns () - middle;
        }
        bench_record (bench, r, troupe_ns, raw_ns);
    }
    rc = 0;
done:
    if (raw)
        s_raw_stream_close (raw);
    free (raw);
    return rc;
}

//  --------------------------------------------------------------------------
//  troupe: round trips on the stream of one open context

static int
s_troupe_trips (tr_stream_t *stream, int trips)
{
    for (int i = 0; i < trips; i++) {
        const msgpack_object *value;
        int rc = tr_stream_send (stream, s_value);
        if (rc == 0)
            rc = tr_stream_recv (stream, &value, -1);
        if (rc == 0 && (value->type != MSGPACK_OBJECT_BIN
                        || value->via.bin.size != VALUE_SIZE))
            rc = TR_EPROTO;
        if (rc)
            return rc;
    }
    return 0;
}

//  troupe's side of the figure (bench_alternate); arg: the stream.
static int
s_trips_side (void *arg, int n, int64_t *ns)
{
    (void) ns;
    return s_troupe_trips (arg, n);
}

static int
s_rtt (tr_portal_t *child, s_run_t *run)
{
    bench_run_t *bench = &run->bench;
    bench_raw_t raw;
    memset (&raw, 0, sizeof raw);
    tr_context_t *context = NULL;
    tr_stream_t *stream = NULL;
    bool troupe_on = bench_side_on ("troupe"), raw_on = bench_side_on ("raw");
    int rc = 0;
    if (troupe_on) {
        rc = tr_portal_open_context (child, "echo", NULL, &context, NULL);
        if (rc == 0)
            rc = tr_context_open_stream (context, &stream);
        if (rc) {
            fprintf (stderr, "bench_stream: cannot open the context: %s\n", tr_strerror (rc));
            goto done;
        }
    }
    //  The frame troupe sends each way, at a cid of one byte as the
    //  context's (one of the root's first calls).
    uint8_t *frame;
    size_t frame_size = s_yield_frame (1, &frame);
    fprintf (stderr, "bench: %s: yield frame %zu bytes each way (a %d-byte bin value), "
             "%d rounds of %d round trips\n", bench->name, frame_size, VALUE_SIZE,
             bench->rounds, bench->per_round);
    rc = -1;
    if (bench_raw_open (&raw, "ipc", "stream", frame, frame_size, frame_size))
        goto done;
    if ((rc = s_troupe_trips (stream, troupe_on? RTT_WARMUP: 0))) {
        fprintf (stderr, "bench_stream: warm-up failed: %s\n", tr_strerror (rc));
        goto done;
    }
    if ((rc = bench_raw_calls (&raw, raw_on? RTT_WARMUP: 0, 1))) {
        fprintf (stderr, "bench_stream: raw warm-up failed: %s\n", zmq_strerror (errno));
        goto done;
    }
    for (int r = 0; r < bench->rounds; r++)
        if ((rc = bench_alternate (bench, r, run->chunk, s_trips_side, stream, &raw, 1)))
            goto done;
    //  End the context the way a program would: close the stream, and
    //  the echo returns how many values it sent back.
    if (context) {
        tr_stream_close (&stream);
        const msgpack_object *result;
        if ((rc = tr_context_result (context, &result))) {
            fprintf (stderr, "bench_stream: the echo failed: %s\n", tr_strerror (rc));
            goto done;
        }
    }
    rc = 0;
done:
    bench_raw_close (&raw);
    tr_context_close (&context);
    return rc;
}

//  --------------------------------------------------------------------------

static int
s_root (tr_actor_t *self, void *arg)
{
    s_run_t *run = arg;
    bench_run_t *bench = &run->bench;
    bench->was_root = true;
    bench->failed = true;
    tr_nursery_t *nursery = NULL;
    tr_portal_t *child;
    int rc = tr_nursery_open (self, &nursery);
    if (rc == 0)
        rc = tr_nursery_start_actor (nursery, "streamer", NULL, &child);
    if (rc) {
        fprintf (stderr, "bench_stream: cannot start the child: %s\n", tr_strerror (rc));
        goto done;
    }
    rc = run->throughput? s_throughput (child, run): s_rtt (child, run);
    bench->failed = rc != 0;
done:
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
    if (argc == 4 && strcmp (argv [1], "--raw-source") == 0)
        return s_raw_source (argv [2], (size_t) strtoul (argv [3], NULL, 10));

    uint8_t bytes [VALUE_SIZE];
    memset (bytes, 0x5a, sizeof bytes);
    s_value = tr_pack ("y", bytes, sizeof bytes);
    if (!s_value)
        return 2;
    static const tr_export_t exports [] = {
        TR_FN ("nil", bench_nil),
        TR_CTX_FN ("source", s_source),
        TR_CTX_FN ("echo", s_echo),
        TR_EXPORTS_END
    };
    static const struct {
        const char *tag;
        const char *unit;
        double unit_ns;
        int per_round, chunk;
    } figures [] = {
        { "throughput", "values/s", 0, THROUGHPUT_VALUES, THROUGHPUT_CHUNK },
        { "rtt", "us", 1e3, RTT_TRIPS, RTT_CHUNK }
    };
    code = 0;
    for (size_t f = 0; f < sizeof figures / sizeof figures [0]; f++) {
        if (argc > 1 && argv [1][0] != '-' && strcmp (argv [1], figures [f].tag) != 0)
            continue;
        s_run_t run;
        char name [32];
        snprintf (name, sizeof name, "stream_%s", figures [f].tag);
        bench_run_init (&run.bench, name, figures [f].unit, figures [f].unit_ns,
                        DEFAULT_ROUNDS, figures [f].per_round);
        run.throughput = f == 0;
        run.chunk = figures [f].chunk;
        tr_config_t config = { .name = "bench_stream", .exports = exports };
        if (bench_finish (&run.bench, tr_run (&config, argc, argv, s_root, &run), &code))
            break;
    }
    tr_args_destroy (&s_value);
    return code;
}
