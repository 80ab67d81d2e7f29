/*  =========================================================================
    fuzz_runtime.c - libFuzzer target: an actor's runtime fed arbitrary
    multipart messages

    A real actor runs inside the fuzzer's process: tr_run on a thread of
    its own, a root exporting "echo", "nap" (a call that parks) and
    "relay" (a context that streams back what it is sent), serving its
    ROUTER on a private ipc endpoint and its embedded registry. Each
    input comes in as a peer would, over a fresh libzmq DEALER of the
    fuzzer's thread: a hello made by the real encoder first if the
    input's first byte says so, then
    the input's frames, grouped into multipart messages as it says (each
    frame a two-byte big-endian header, bit 15 "more parts follow", and
    its bytes). So every frame goes through peer.c's ROUTER reading,
    decoding, the hello and the channel table, and channel.c's dispatch to
    calls, contexts, streams and answers, exactly as in production; the
    DEALER is closed afterwards, and the actor sees the peer leave.

    After the input the peer pings: the actor must answer (a pong, or an
    error for a ping before hello) within a few seconds. If it does not,
    a second peer, connected once at the start, pings too: an actor that
    answers neither has stopped serving, and the input is a crash. The
    one frame left out is a cancel of the actor itself ([cancel, 0, ...]),
    which any peer may send and which ends it, as documented.
    Built with ./configure --enable-fuzzers (clang); seeds in
    tests/fuzz/runtime/.
    =========================================================================
*/
#include "troupe_private.h"
#include <pthread.h>
#include <signal.h>

#define PING_CID        0x7fffffffffffull
#define ANSWER_MS       3000

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t ready;
    char endpoint [256];        //  the actor's, once it serves
    bool started;
    void *zctx;                 //  the fuzzer's sockets
    void *prober;               //  a peer that said hello at the start
    uint64_t inputs;
    uint64_t unanswered;        //  pings the peer's own channel left unanswered
    tri_limits_t limits;
} s_fuzz;

//  The actor's signal handlers give way to the sanitizers' and libFuzzer's.
static struct sigaction s_saved [4];
static const int s_signals [4] = { SIGSEGV, SIGBUS, SIGINT, SIGTERM };

static int
s_echo (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx;
    return tr_reply_object (out, args);
}

//  Park for [ms] (at most 50) milliseconds: a call still running when its
//  peer leaves, to be cancelled.
static int
s_nap (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) out;
    int ms = 0;
    if (tr_unpack (args, "[i]", &ms))
        return tr_raise (ctx, "BadRequest", "nap takes [ms]");
    return tr_sleep (ctx, ms < 0? 0: ms > 50? 50: ms);
}

//  A context: started, then each value the caller streams (at most 16,
//  each awaited at most 100 ms) sent back, then the count.
static int
s_relay (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) args;
    tr_stream_t *stream;
    int rc = tr_ctx_started (ctx, NULL);
    if (rc == 0)
        rc = tr_ctx_open_stream (ctx, &stream);
    if (rc)
        return rc;
    int count = 0;
    const msgpack_object *value;
    while (count < 16 && tr_stream_recv (stream, &value, 100) == 0) {
        tr_args_t *copy = tr_args_from_object (value);
        rc = copy? tr_stream_send (stream, copy): TR_ENOMEM;
        tr_args_destroy (&copy);
        if (rc)
            return rc;
        count++;
    }
    return tr_reply_pack (out, "i", count);
}

static const tr_export_t s_exports [] = {
    TR_FN ("echo", s_echo),
    TR_FN ("nap", s_nap),
    TR_CTX_FN ("relay", s_relay),
    TR_EXPORTS_END
};

static int
s_root (tr_actor_t *self, void *arg)
{
    (void) arg;
    for (int i = 0; i < 4; i++)
        sigaction (s_signals [i], &s_saved [i], NULL);
    pthread_mutex_lock (&s_fuzz.lock);
    snprintf (s_fuzz.endpoint, sizeof s_fuzz.endpoint, "%s", tr_actor_endpoint (self));
    s_fuzz.started = true;
    pthread_cond_signal (&s_fuzz.ready);
    pthread_mutex_unlock (&s_fuzz.lock);
    tr_ctx_t *ctx = tr_actor_ctx (self);
    while (tr_sleep (ctx, 3600 * 1000) == 0)
        ;
    return 0;
}

static void *
s_actor_thread (void *arg)
{
    (void) arg;
    tr_config_t config = TR_CONFIG_INIT;
    config.name = "fuzz";
    config.exports = s_exports;
    config.bind = "ipc";
    char *argv [] = { "fuzz_runtime", NULL };
    int rc = tr_run (&config, 1, argv, s_root, NULL);
    fprintf (stderr, "fuzz_runtime: the actor ended (tr_run returned %d)\n", rc);
    abort ();
}

//  Send one frame made by the real encoders.
static int
s_send_frame (void *socket, tri_frame_t *frame, int flags)
{
    int rc = zmq_send (socket, frame->data, frame->size, flags) == (int) frame->size? 0: -1;
    tri_frame_fini (frame);
    return rc;
}

static void
s_send_hello (void *socket, uint64_t n)
{
    char uid [64];
    snprintf (uid, sizeof uid, "peer@00000000-0000-4000-8000-%012llx", (unsigned long long) n);
    tri_hello_t hello = { TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR, uid, "", 4242 };
    tri_frame_t frame;
    tri_frame_begin (&frame, TRI_HELLO, 0);
    tri_msg_pack_hello (&frame.pk, &hello);
    s_send_frame (socket, &frame, 0);
}

//  Ping and wait for the answer to it (a pong, or an error with its
//  cid), dropping everything else. True if it came.
static bool
s_ping (void *socket)
{
    tri_frame_t frame;
    tri_frame_begin (&frame, TRI_PING, PING_CID);
    msgpack_pack_nil (&frame.pk);
    if (s_send_frame (socket, &frame, 0))
        return false;
    int64_t deadline = tri_now_ms () + ANSWER_MS;
    while (true) {
        int64_t left = deadline - tri_now_ms ();
        if (left <= 0)
            return false;
        zmq_pollitem_t item = { socket, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, (long) left) <= 0)
            continue;
        zmq_msg_t reply;
        zmq_msg_init (&reply);
        if (zmq_msg_recv (&reply, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&reply);
            continue;
        }
        int type;
        uint64_t cid;
        tri_msg_peek (zmq_msg_data (&reply), zmq_msg_size (&reply), &type, &cid);
        //  FUZZ_RUNTIME_SHOW=1 with input files: what the actor answers.
        if (getenv ("FUZZ_RUNTIME_SHOW")) {
            tr_value_t *value = tr_value_decode (zmq_msg_data (&reply), zmq_msg_size (&reply));
            fprintf (stderr, "answer: ");
            if (value)
                msgpack_object_print (stderr, *tr_value_object (value));
            fprintf (stderr, "\n");
            tr_value_destroy (&value);
        }
        zmq_msg_close (&reply);
        if (cid == PING_CID && (type == TRI_PONG || type == TRI_ERROR))
            return true;
    }
}

static void *
s_dealer (void)
{
    void *socket = zmq_socket (s_fuzz.zctx, ZMQ_DEALER);
    assert (socket);
    int zero = 0;
    zmq_setsockopt (socket, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect (socket, s_fuzz.endpoint)) {
        fprintf (stderr, "fuzz_runtime: cannot connect to %s\n", s_fuzz.endpoint);
        abort ();
    }
    return socket;
}

static void
s_report (void)
{
    fprintf (stderr, "fuzz_runtime: %llu inputs, %llu left their own ping unanswered\n",
             (unsigned long long) s_fuzz.inputs, (unsigned long long) s_fuzz.unanswered);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    //  Bad frames are what this target sends: the actor need not say so.
    setenv ("TROUPE_LOGLEVEL", "error", 0);
    unsetenv ("TROUPE_REGISTRY");
    for (int i = 0; i < 4; i++)
        sigaction (s_signals [i], NULL, &s_saved [i]);
    pthread_mutex_init (&s_fuzz.lock, NULL);
    pthread_cond_init (&s_fuzz.ready, NULL);
    s_fuzz.limits = (tri_limits_t) { 16 * 1024 * 1024, TRI_DEFAULT_MAX_DEPTH };
    if (pthread_create (&s_fuzz.thread, NULL, s_actor_thread, NULL))
        abort ();
    pthread_mutex_lock (&s_fuzz.lock);
    while (!s_fuzz.started)
        pthread_cond_wait (&s_fuzz.ready, &s_fuzz.lock);
    pthread_mutex_unlock (&s_fuzz.lock);
    s_fuzz.zctx = zmq_ctx_new ();
    s_fuzz.prober = s_dealer ();
    s_send_hello (s_fuzz.prober, 0);
    if (!s_ping (s_fuzz.prober)) {
        fprintf (stderr, "fuzz_runtime: the actor does not answer a ping\n");
        abort ();
    }
    atexit (s_report);
    return 0;
}

//  A frame that decodes to a cancel of the actor itself.
static bool
s_is_actor_cancel (const uint8_t *data, size_t size)
{
    zmq_msg_t frame;
    if (zmq_msg_init_size (&frame, size))
        return false;
    if (size)
        memcpy (zmq_msg_data (&frame), data, size);
    tri_msg_t *msg;
    uint64_t cid;
    char why [256];
    bool cancel = false;
    if (tri_msg_decode (&frame, &s_fuzz.limits, &msg, &cid, why, sizeof why) == 0) {
        cancel = msg->type == TRI_CANCEL && msg->cid == 0;
        tri_msg_destroy (&msg);
    }
    return cancel;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    s_fuzz.inputs++;
    void *peer = s_dealer ();
    if (data [0] & 1)
        s_send_hello (peer, s_fuzz.inputs);
    const uint8_t *p = data + 1;
    const uint8_t *end = data + size;
    bool open = false;              //  a message has parts sent, not ended
    while (end - p >= 2) {
        size_t length = (size_t) (p [0] & 0x7f) << 8 | p [1];
        bool more = p [0] & 0x80;
        p += 2;
        if (length > (size_t) (end - p))
            length = (size_t) (end - p);
        if (!s_is_actor_cancel (p, length)) {
            zmq_send (peer, p, length, more? ZMQ_SNDMORE: 0);
            open = more;
        }
        p += length;
    }
    if (open)
        zmq_send (peer, "", 0, 0);  //  end the last message
    //  A peer's ping unanswered while others are served is what a peer
    //  that broke its own channel earns: counted, not a crash.
    if (!s_ping (peer)) {
        s_fuzz.unanswered++;
        if (!s_ping (s_fuzz.prober)) {
            fprintf (stderr, "fuzz_runtime: the actor stopped serving\n");
            abort ();
        }
    }
    zmq_close (peer);
    return 0;
}
