/*  =========================================================================
    test_protocol.c - scenario: a raw peer speaks the wire protocol to an
    actor, badly and then well

    The forked test process is the root actor; it starts one tests/worker
    child and then, from its own task, talks to the child's ROUTER through
    a plain libzmq DEALER: garbage, wrong shapes, unknown types, hostile
    lengths and depths, frames before hello, a wrong version, then a proper
    hello and calls, reserved types and export kinds. Every bad frame must
    get an error reply (never a crash, a hang or silence) and the actor
    must go on serving its parent. Raw I/O blocks the root's loop thread
    for a moment at a time, which is fine here: the child is another
    process. The other way round, a plain libzmq ROUTER served by a thread
    of the test answers the root's tr_portal_open: badly read answers and
    a refused hello must fail the call or the open at once.
    =========================================================================
*/
#include "testutil.h"
#include <pthread.h>
#include <stdbool.h>
#include <zmq.h>

//  Wire constants (doc/protocol.md).
#define T_HELLO     1
#define T_CMD       2
#define T_RETURN    6
#define T_ERROR     7
#define T_PING      10
#define T_PONG      11

//  --------------------------------------------------------------------------
//  A raw peer

typedef struct {
    void *zctx;
    void *dealer;
    void *monitor;              //  the DEALER's connection events
} s_raw_t;

static int
s_raw_open (s_raw_t *self, const char *endpoint, const char *routing_id)
{
    memset (self, 0, sizeof *self);
    self->zctx = zmq_ctx_new ();
    if (!self->zctx)
        return -1;
    self->dealer = zmq_socket (self->zctx, ZMQ_DEALER);
    if (!self->dealer)
        return -1;
    int zero = 0;
    zmq_setsockopt (self->dealer, ZMQ_LINGER, &zero, sizeof zero);
    if (routing_id)
        zmq_setsockopt (self->dealer, ZMQ_ROUTING_ID, routing_id, strlen (routing_id));
    char address [64];
    snprintf (address, sizeof address, "inproc://raw-monitor-%p", (void *) self);
    if (zmq_socket_monitor (self->dealer, address,
                            ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED))
        return -1;
    self->monitor = zmq_socket (self->zctx, ZMQ_PAIR);
    if (!self->monitor)
        return -1;
    zmq_setsockopt (self->monitor, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect (self->monitor, address))
        return -1;
    return zmq_connect (self->dealer, endpoint);
}

//  Count the connection events seen so far.
static void
s_raw_events (s_raw_t *self, int *connects, int *disconnects)
{
    while (true) {
        zmq_msg_t event, endpoint;
        zmq_msg_init (&event);
        zmq_msg_init (&endpoint);
        if (zmq_msg_recv (&event, self->monitor, ZMQ_DONTWAIT) < 0
        ||  zmq_msg_recv (&endpoint, self->monitor, 0) < 0) {
            zmq_msg_close (&event);
            zmq_msg_close (&endpoint);
            return;
        }
        uint16_t id;
        memcpy (&id, zmq_msg_data (&event), sizeof id);
        if (id == ZMQ_EVENT_CONNECTED)
            (*connects)++;
        if (id == ZMQ_EVENT_DISCONNECTED)
            (*disconnects)++;
        zmq_msg_close (&event);
        zmq_msg_close (&endpoint);
    }
}

static void
s_raw_close (s_raw_t *self)
{
    if (self->dealer)
        zmq_socket_monitor (self->dealer, NULL, 0);
    if (self->monitor)
        zmq_close (self->monitor);
    if (self->dealer)
        zmq_close (self->dealer);
    if (self->zctx)
        zmq_ctx_term (self->zctx);
    memset (self, 0, sizeof *self);
}

static int
s_raw_send (s_raw_t *self, const void *data, size_t size)
{
    return zmq_send (self->dealer, data, size, 0) == (int) size? 0: -1;
}

//  Send an encoded value as one frame; takes args.
static int
s_raw_send_args (s_raw_t *self, tr_args_t *args)
{
    if (!args)
        return -1;
    int rc = s_raw_send (self, tr_args_data (args), tr_args_size (args));
    tr_args_destroy (&args);
    return rc;
}

//  What one reply said.
typedef struct {
    bool got;                   //  a frame came within the timeout
    bool decoded;               //  it was [type, cid, body]
    int type;
    uint64_t cid;
    int code;                   //  error replies
    char msg [512];
    char uid [256];             //  hello replies
    int major, minor;
    bool body_nil;
    char echo [64];             //  return of echo ["..."]
    bool more;                  //  more frames followed in its message
} s_reply_t;

//  Wait up to timeout_ms for one frame and decode it.
static void
s_raw_recv (s_raw_t *self, s_reply_t *reply, int timeout_ms)
{
    memset (reply, 0, sizeof *reply);
    zmq_pollitem_t item = { self->dealer, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, tu_ms (timeout_ms)) <= 0)
        return;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    if (zmq_msg_recv (&frame, self->dealer, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&frame);
        return;
    }
    reply->got = true;
    reply->more = zmq_msg_more (&frame);
    tr_value_t *value = tr_value_decode (zmq_msg_data (&frame), zmq_msg_size (&frame));
    zmq_msg_close (&frame);
    const msgpack_object *body;
    if (!value || tr_unpack (tr_value_object (value), "[iuo]", &reply->type, &reply->cid, &body)) {
        tr_value_destroy (&value);
        return;
    }
    reply->decoded = true;
    reply->body_nil = body->type == MSGPACK_OBJECT_NIL;
    const char *s = NULL;
    if (reply->type == T_ERROR
    &&  tr_unpack (body, "{s:i s:s}", "code", &reply->code, "msg", &s) == 0)
        snprintf (reply->msg, sizeof reply->msg, "%s", s);
    if (reply->type == T_HELLO
    &&  tr_unpack (body, "{s:[ii] s:s}", "v", &reply->major, &reply->minor, "uid", &s) == 0)
        snprintf (reply->uid, sizeof reply->uid, "%s", s);
    if (reply->type == T_RETURN && tr_unpack (body, "[s]", &s) == 0)
        snprintf (reply->echo, sizeof reply->echo, "%s", s);
    tr_value_destroy (&value);
}

//  Send bytes, wait for the answer.
static void
s_exchange (s_raw_t *self, const void *data, size_t size, s_reply_t *reply)
{
    memset (reply, 0, sizeof *reply);
    if (s_raw_send (self, data, size) == 0)
        s_raw_recv (self, reply, 5000);
}

static void
s_exchange_args (s_raw_t *self, tr_args_t *args, s_reply_t *reply)
{
    memset (reply, 0, sizeof *reply);
    if (s_raw_send_args (self, args) == 0)
        s_raw_recv (self, reply, 5000);
}

static tr_args_t *
s_hello (int major, int minor, const char *uid)
{
    return tr_pack ("[i i {s:[ii] s:s s:i s:s}]", T_HELLO, 0,
                    "v", major, minor, "uid", uid, "pid", (int) getpid (), "ep", "");
}

static void
s_assert_error (const s_reply_t *reply, const char *what, uint64_t cid, int code,
                const char *needle)
{
    ck_assert_msg (reply->got, "%s: no reply", what);
    ck_assert_msg (reply->decoded, "%s: the reply is not [type, cid, body]", what);
    ck_assert_msg (reply->type == T_ERROR, "%s: reply type %d, not error", what, reply->type);
    ck_assert_msg (reply->cid == cid, "%s: reply cid %llu, wanted %llu", what,
                   (unsigned long long) reply->cid, (unsigned long long) cid);
    ck_assert_msg (reply->code == code, "%s: code %s, wanted %s (msg '%s')", what,
                   tr_errname (reply->code), tr_errname (code), reply->msg);
    if (needle)
        ck_assert_msg (strstr (reply->msg, needle), "%s: message '%s' does not mention '%s'",
                       what, reply->msg, needle);
}

//  --------------------------------------------------------------------------
//  The scenario frame: start one child, run a body with a raw peer on its
//  ROUTER, then call the child through the portal to show it still serves.

typedef void (s_body_fn) (tr_ctx_t *ctx, tr_portal_t *p, s_raw_t *raw, void *obs);

typedef struct {
    s_body_fn *body;
    void *obs;
    const char *routing_id;
    tu_frame_t base;                //  the one child, its start and close
    int raw_rc, after_rc;
    int64_t after;
} s_frame_t;

static int
s_raw_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_frame_t *frame = arg;
    s_raw_t raw;
    frame->raw_rc = s_raw_open (&raw, tr_portal_endpoint (p), frame->routing_id);
    if (frame->raw_rc == 0)
        frame->body (ctx, p, &raw, frame->obs);
    s_raw_close (&raw);
    tr_value_t *v = NULL;
    frame->after_rc = tu_call (p, "add", tr_pack ("[ii]", 40, 2), &v);
    if (frame->after_rc == 0)
        tr_unpack (tr_value_object (v), "I", &frame->after);
    tr_value_destroy (&v);
    return 0;
}

static void
s_run_frame (s_frame_t *frame)
{
    frame->base = (tu_frame_t) { .body = s_raw_body, .obs = frame };
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, tu_frame_root, &frame->base);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (frame->base.start_rc);
    ck_assert_int_eq (frame->raw_rc, 0);
    //  After everything the raw peer did, the actor still serves.
    ck_assert_tr_ok (frame->after_rc);
    ck_assert_int_eq (frame->after, 42);
    ck_assert_tr_ok (frame->base.close_rc);
}

//  --------------------------------------------------------------------------
//  Malformed frames

typedef struct {
    s_reply_t garbage, not_triple, scalar, unknown_type, huge_array, deep,
              multipart_first, multipart_second, truncated, trailing;
} s_malformed_t;

static void
s_malformed_body (tr_ctx_t *ctx, tr_portal_t *p, s_raw_t *raw, void *arg)
{
    (void) ctx; (void) p;
    s_malformed_t *obs = arg;
    //  0xc1 is the one byte msgpack never uses.
    s_exchange (raw, "\xc1\xc1\xc1\xc1", 4, &obs->garbage);
    s_exchange_args (raw, tr_pack ("[ii]", T_CMD, 3), &obs->not_triple);
    s_exchange_args (raw, tr_pack ("s", "hello?"), &obs->scalar);
    s_exchange_args (raw, tr_pack ("[i i n]", 99, 7), &obs->unknown_type);
    //  An array header claiming 2^31 items, and nothing after it.
    s_exchange (raw, "\xdd\x80\x00\x00\x00", 5, &obs->huge_array);
    //  [cmd, 9, [[[...40 deep...]]]]
    unsigned char deep [64];
    size_t size = 0;
    deep [size++] = 0x93;
    deep [size++] = T_CMD;
    deep [size++] = 9;
    for (int i = 0; i < 40; i++)
        deep [size++] = 0x91;
    deep [size++] = 0xc0;
    s_exchange (raw, deep, size, &obs->deep);
    //  A str 8 that declares 200 bytes and brings 3.
    s_exchange (raw, "\x93\x02\x04\xd9\xc8" "abc", 8, &obs->truncated);
    //  A good frame with a byte after it.
    s_exchange (raw, "\x93\x0a\x04\xc0\xc0", 5, &obs->trailing);
    //  Two frames in one message, the second bad: each is one frame.
    memset (&obs->multipart_first, 0, sizeof obs->multipart_first);
    memset (&obs->multipart_second, 0, sizeof obs->multipart_second);
    if (zmq_send (raw->dealer, "\x93\x0a\x01\xc0", 4, ZMQ_SNDMORE) == 4
    &&  zmq_send (raw->dealer, "\xc1\xc1", 2, 0) == 2) {
        s_raw_recv (raw, &obs->multipart_first, 5000);
        s_raw_recv (raw, &obs->multipart_second, 5000);
    }
}

START_TEST (malformed_frames_are_answered_with_an_error_saying_what_is_wrong)
{
    tu_subreaper ();
    s_malformed_t obs;
    memset (&obs, 0, sizeof obs);
    s_frame_t frame = { .body = s_malformed_body, .obs = &obs };
    s_run_frame (&frame);
    s_assert_error (&obs.garbage, "garbage", 0, TR_EPROTO, "invalid msgpack byte 0xc1");
    s_assert_error (&obs.not_triple, "[cmd, 3]", 0, TR_EPROTO, "[type, cid, body]");
    s_assert_error (&obs.scalar, "a string", 0, TR_EPROTO, "[type, cid, body]");
    s_assert_error (&obs.unknown_type, "type 99", 7, TR_EPROTO, "99");
    ck_assert_msg (strstr (obs.unknown_type.msg, "type"), "'%s'", obs.unknown_type.msg);
    s_assert_error (&obs.huge_array, "2^31 items", 0, TR_EPROTO, "2147483648 items");
    //  A frame whose head [type, cid, ...] is sound is answered under its
    //  cid, so that a caller waiting on it fails instead of waiting on.
    s_assert_error (&obs.deep, "40 deep", 9, TR_ETOOBIG, "deeper than 32");
    s_assert_error (&obs.truncated, "truncated str", 4, TR_EPROTO, "200 bytes");
    s_assert_error (&obs.trailing, "trailing byte", 4, TR_EPROTO, "trailing");
    //  Each part of a message is a frame of its own, answered on its own.
    s_assert_error (&obs.multipart_first, "ping before hello, part 1", 1, TR_EPROTO,
                    "before hello");
    s_assert_error (&obs.multipart_second, "garbage, part 2", 0, TR_EPROTO,
                    "invalid msgpack byte 0xc1");
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Hello first, same major version

typedef struct {
    s_reply_t before_hello, bad_version, hello, echo, unknown_fn, cid_zero,
              second_hello, stray_return, after_error, ping;
} s_handshake_t;

static void
s_handshake_body (tr_ctx_t *ctx, tr_portal_t *p, s_raw_t *raw, void *arg)
{
    (void) ctx; (void) p;
    s_handshake_t *obs = arg;
    s_exchange_args (raw, tr_pack ("[i i [s [s]]]", T_CMD, 4, "echo", "early"),
                     &obs->before_hello);
    s_exchange_args (raw, s_hello (2, 0, "raw@future"), &obs->bad_version);
    s_exchange_args (raw, s_hello (1, 0, "raw@peer"), &obs->hello);
    s_exchange_args (raw, tr_pack ("[i i [s [s]]]", T_CMD, 5, "echo", "again"), &obs->echo);
    s_exchange_args (raw, tr_pack ("[i i [s []]]", T_CMD, 6, "no_such_fn"), &obs->unknown_fn);
    s_exchange_args (raw, tr_pack ("[i i [s []]]", T_CMD, 0, "nil"), &obs->cid_zero);
    s_exchange_args (raw, s_hello (1, 0, "raw@peer"), &obs->second_hello);
    s_exchange_args (raw, tr_pack ("[i i n]", T_RETURN, 999999), &obs->stray_return);
    //  Errors are never answered: the next reply is the pong.
    s_raw_send_args (raw, tr_pack ("[i i {s:i s:s s:s s:s}]", T_ERROR, 0, "code", -5,
                                   "type", "ProtocolError", "msg", "you are wrong",
                                   "origin", "raw@peer"));
    s_exchange_args (raw, tr_pack ("[i i n]", T_PING, 8), &obs->ping);
}

START_TEST (a_peer_must_say_hello_first_and_speak_the_same_major_version)
{
    tu_subreaper ();
    s_handshake_t obs;
    memset (&obs, 0, sizeof obs);
    s_frame_t frame = { .body = s_handshake_body, .obs = &obs };
    s_run_frame (&frame);
    s_assert_error (&obs.before_hello, "cmd before hello", 4, TR_EPROTO, "before hello");
    s_assert_error (&obs.bad_version, "hello 2.0", 0, TR_EVERSION, "2.0");
    char ours [32];
    snprintf (ours, sizeof ours, "%d.%d", TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR);
    ck_assert_msg (strstr (obs.bad_version.msg, ours), "'%s'", obs.bad_version.msg);
    ck_assert_msg (strstr (obs.bad_version.msg, "raw@future"), "'%s'", obs.bad_version.msg);
    ck_assert_msg (obs.hello.got && obs.hello.type == T_HELLO,
                   "no hello back (type %d, '%s')", obs.hello.type, obs.hello.msg);
    ck_assert_str_eq (obs.hello.uid, frame.base.uid);
    ck_assert_int_eq (obs.hello.major, TR_PROTOCOL_MAJOR);
    ck_assert_int_eq (obs.hello.minor, TR_PROTOCOL_MINOR);
    ck_assert_msg (obs.echo.got && obs.echo.type == T_RETURN,
                   "echo: type %d, '%s'", obs.echo.type, obs.echo.msg);
    ck_assert_int_eq (obs.echo.cid, 5);
    ck_assert_str_eq (obs.echo.echo, "again");
    s_assert_error (&obs.unknown_fn, "unknown function", 6, TR_ENOTEXPOSED, "no_such_fn");
    s_assert_error (&obs.cid_zero, "cmd with cid 0", 0, TR_EPROTO, "cid 0");
    s_assert_error (&obs.second_hello, "second hello", 0, TR_EPROTO, "already");
    s_assert_error (&obs.stray_return, "return never asked for", 999999, TR_EPROTO, "never sent");
    ck_assert_msg (obs.ping.got && obs.ping.type == T_PONG,
                   "the error was answered, or no pong (type %d, '%s')",
                   obs.ping.type, obs.ping.msg);
    ck_assert_int_eq (obs.ping.cid, 8);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A frame above the size limit

//  The child's limit is its default, 16 MiB, enforced by ZMQ_MAXMSGSIZE on
//  its ROUTER: libzmq drops the connection when the frame's header comes,
//  before any byte reaches troupe, so no error can be sent back. The
//  raw DEALER reconnects by itself; the actor forgot the peer with its
//  connection, so the new connection says hello again, and is answered.
typedef struct {
    s_reply_t hello, first_after, ping, hello_again;
    int sent;
    int connects, disconnects;
    long long pong_ms;
} s_oversized_t;

static void
s_oversized_body (tr_ctx_t *ctx, tr_portal_t *p, s_raw_t *raw, void *arg)
{
    (void) ctx; (void) p;
    s_oversized_t *obs = arg;
    s_exchange_args (raw, s_hello (1, 0, "raw@big"), &obs->hello);
    size_t size = 17 * 1024 * 1024;
    char *data = malloc (size);
    //  A valid bin 32 frame: [cmd, 1, bytes...]; only its size is wrong.
    memset (data, 0, size);
    memcpy (data, "\x93\x02\x01\xc6", 4);
    uint32_t len = (uint32_t) (size - 8);
    data [4] = (char) (len >> 24);
    data [5] = (char) (len >> 16);
    data [6] = (char) (len >> 8);
    data [7] = (char) len;
    obs->sent = s_raw_send (raw, data, size);
    free (data);
    //  Ping until the reconnected peer gets a pong; whatever comes first
    //  must be a pong or the demand for a hello, never an answer to the
    //  big frame.
    long long t0 = tu_now_ms ();
    uint64_t cid = 100;
    while (tu_now_ms () - t0 < tu_ms (10000)) {
        s_raw_send_args (raw, tr_pack ("[i I n]", T_PING, (int64_t) cid));
        s_raw_recv (raw, &obs->ping, 500);
        if (obs->ping.got) {
            if (!obs->first_after.got)
                obs->first_after = obs->ping;
            if (obs->ping.type == T_PONG)
                break;
            if (obs->ping.type == T_ERROR && strstr (obs->ping.msg, "before hello"))
                s_exchange_args (raw, s_hello (1, 0, "raw@big"), &obs->hello_again);
        }
        cid++;
    }
    obs->pong_ms = tu_now_ms () - t0;
    s_raw_events (raw, &obs->connects, &obs->disconnects);
}

START_TEST (a_frame_over_the_size_limit_drops_the_connection_and_the_actor_serves_on)
{
    tu_subreaper ();
    s_oversized_t obs;
    memset (&obs, 0, sizeof obs);
    s_frame_t frame = { .body = s_oversized_body, .obs = &obs, .routing_id = "raw-big" };
    s_run_frame (&frame);
    ck_assert_msg (obs.hello.type == T_HELLO, "no hello back");
    ck_assert_int_eq (obs.sent, 0);
    ck_assert_msg (obs.first_after.got, "no answer at all after the big frame");
    ck_assert_msg (obs.first_after.type == T_PONG
                   || (obs.first_after.type == T_ERROR && obs.first_after.cid >= 100
                       && strstr (obs.first_after.msg, "before hello")),
                   "the big frame got an answer: type %d '%s'", obs.first_after.type,
                   obs.first_after.msg);
    ck_assert_msg (obs.first_after.type == T_PONG || obs.hello_again.type == T_HELLO,
                   "no hello back on the new connection");
    ck_assert_msg (obs.ping.type == T_PONG, "no pong within %lld ms", obs.pong_ms);
    ck_assert_int_ge (obs.ping.cid, 100);
    //  The actor's side hung up on the big frame; the DEALER came back.
    ck_assert_int_ge (obs.disconnects, 1);
    ck_assert_int_ge (obs.connects, 2);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Stream frames for no context, and export kinds called the wrong way
//  (doc/protocol.md, sections 2 and 3.4)

#define T_STARTED   3
#define T_YIELD     4
#define T_STOP      5
#define T_CREDIT    12

typedef struct {
    s_reply_t hello, started, yield, stop, credit, shapeless, raw_context, raw_stream,
              raw_plain, raw_thread, after;
    int context_rc, stream_rc;
    tu_err_t context_error, stream_error;
} s_reserved_t;

static void
s_reserved_body (tr_ctx_t *ctx, tr_portal_t *p, s_raw_t *raw, void *arg)
{
    (void) ctx;
    s_reserved_t *obs = arg;
    s_exchange_args (raw, s_hello (1, 0, "raw@reserved"), &obs->hello);
    s_exchange_args (raw, tr_pack ("[i i n]", T_STARTED, 21), &obs->started);
    s_exchange_args (raw, tr_pack ("[i i [i n]]", T_YIELD, 22, 0), &obs->yield);
    s_exchange_args (raw, tr_pack ("[i i [i n]]", T_STOP, 23, 1), &obs->stop);
    s_exchange_args (raw, tr_pack ("[i i [i i]]", T_CREDIT, 24, 0, 10), &obs->credit);
    s_exchange_args (raw, tr_pack ("[i i n]", T_YIELD, 27), &obs->shapeless);
    s_exchange_args (raw, tr_pack ("[i i [s []]]", T_CMD, 25, "a_context"), &obs->raw_context);
    s_exchange_args (raw, tr_pack ("[i i [s []]]", T_CMD, 26, "a_stream"), &obs->raw_stream);
    s_exchange_args (raw, tr_pack ("[i i [s i []]]", T_CMD, 28, "nil", 1), &obs->raw_plain);
    s_exchange_args (raw, tr_pack ("[i i [s i []]]", T_CMD, 29, "a_thread_context", 1),
                     &obs->raw_thread);
    s_exchange_args (raw, tr_pack ("[i i [s []]]", T_CMD, 30, "nil"), &obs->after);
    //  And through a portal, as a user would call them.
    obs->context_rc = tu_call (p, "a_context", NULL, NULL);
    tu_err_copy (&obs->context_error, tr_portal_error (p));
    obs->stream_rc = tu_call (p, "a_stream", NULL, NULL);
    tu_err_copy (&obs->stream_error, tr_portal_error (p));
}

START_TEST (stream_frames_for_no_context_and_kinds_called_the_wrong_way_are_refused)
{
    tu_subreaper ();
    s_reserved_t obs;
    memset (&obs, 0, sizeof obs);
    s_frame_t frame = { .body = s_reserved_body, .obs = &obs };
    s_run_frame (&frame);
    ck_assert_msg (obs.hello.got && obs.hello.type == T_HELLO, "no hello back");
    //  "<type> (cid N) was not expected: no stream or context is open
    //  with that cid"
    s_assert_error (&obs.started, "started", 21, TR_EPROTO, "started (cid 21) was not expected");
    s_assert_error (&obs.yield, "yield", 22, TR_EPROTO, "yield (cid 22) was not expected");
    s_assert_error (&obs.stop, "stop", 23, TR_EPROTO, "stop (cid 23) was not expected");
    s_assert_error (&obs.credit, "credit", 24, TR_EPROTO, "credit (cid 24) was not expected");
    s_assert_error (&obs.shapeless, "yield with a nil body", 27, TR_EPROTO,
                    "yield (cid 27): body is not [side, value]");
    s_assert_error (&obs.raw_context, "cmd a_context", 25, TR_EPROTO,
                    "function 'a_context' of actor");
    ck_assert_msg (strstr (obs.raw_context.msg, "is a context function, not a plain call"),
                   "'%s'", obs.raw_context.msg);
    s_assert_error (&obs.raw_stream, "cmd a_stream", 26, TR_EPROTO, "function 'a_stream' of actor");
    ck_assert_msg (strstr (obs.raw_stream.msg, "is a one-way stream"), "'%s'", obs.raw_stream.msg);
    s_assert_error (&obs.raw_plain, "context cmd nil", 28, TR_EPROTO, "function 'nil' of actor");
    ck_assert_msg (strstr (obs.raw_plain.msg, "is a plain call, not a context function"), "'%s'",
                   obs.raw_plain.msg);
    s_assert_error (&obs.raw_thread, "context cmd a_thread_context", 29, TR_EPROTO,
                    "function 'a_thread_context' of actor");
    ck_assert_msg (strstr (obs.raw_thread.msg, "TR_THREAD"), "'%s'", obs.raw_thread.msg);
    //  And it goes on serving.
    ck_assert_msg (obs.after.got && obs.after.type == T_RETURN && obs.after.cid == 30,
                   "no answer to a plain call after the refusals");
    ck_assert_tr_rc (obs.context_rc, TR_EPROTO);
    ck_assert_tr_rc (obs.context_error.code, TR_EPROTO);
    ck_assert_str_eq (obs.context_error.type, "ProtocolError");
    ck_assert_str_eq (obs.context_error.origin, frame.base.uid);
    ck_assert_msg (strstr (obs.context_error.message, "open it with tr_portal_open_context"),
                   "'%s'", obs.context_error.message);
    ck_assert_tr_rc (obs.stream_rc, TR_EPROTO);
    ck_assert_tr_rc (obs.stream_error.code, TR_EPROTO);
    ck_assert_str_eq (obs.stream_error.type, "ProtocolError");
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A raw caller that breaks the rules of a stream: answered, and the
//  context goes on

typedef struct {
    s_reply_t hello, started, over, not_count, echoed, ended;
    char echoed_text [16];
    int64_t echoed_side, result;
} s_rawctx_t;

static void
s_rawctx_body (tr_ctx_t *ctx, tr_portal_t *p, s_raw_t *raw, void *arg)
{
    (void) ctx; (void) p;
    s_rawctx_t *obs = arg;
    s_exchange_args (raw, s_hello (1, 2, "raw@caller"), &obs->hello);
    s_exchange_args (raw, tr_pack ("[i i [s i []]]", T_CMD, 40, "ctx_echo", 1), &obs->started);
    //  70 values in one yield: past the 64 credits a stream starts with.
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 3);
    msgpack_pack_int (&pk, T_YIELD);
    msgpack_pack_int (&pk, 40);
    msgpack_pack_array (&pk, 71);
    msgpack_pack_int (&pk, 0);
    for (int i = 0; i < 70; i++)
        msgpack_pack_int (&pk, i);
    s_exchange (raw, sbuf.data, sbuf.size, &obs->over);
    msgpack_sbuffer_destroy (&sbuf);
    s_exchange_args (raw, tr_pack ("[i i [i s]]", T_CREDIT, 40, 0, "lots"), &obs->not_count);
    //  A proper value is still echoed, and stop ends the context.
    s_raw_send_args (raw, tr_pack ("[i i [i s]]", T_YIELD, 40, 0, "again"));
    //  Reading it grants credit first: the echo comes after that.
    zmq_pollitem_t item = { raw->dealer, 0, ZMQ_POLLIN, 0 };
    for (int frames = 0; frames < 4 && !*obs->echoed_text; frames++) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_poll (&item, 1, tu_ms (5000)) == 1 && zmq_msg_recv (&frame, raw->dealer, 0) >= 0) {
            tr_value_t *v = tr_value_decode (zmq_msg_data (&frame), zmq_msg_size (&frame));
            int type;
            uint64_t cid;
            const char *text;
            if (v && tr_unpack (tr_value_object (v), "[i u [I s]]", &type, &cid,
                                &obs->echoed_side, &text) == 0 && type == T_YIELD && cid == 40)
                snprintf (obs->echoed_text, sizeof obs->echoed_text, "%s", text);
            tr_value_destroy (&v);
        }
        zmq_msg_close (&frame);
    }
    s_exchange_args (raw, tr_pack ("[i i [i n]]", T_STOP, 40, 0), &obs->ended);
}

START_TEST (a_stream_frame_that_breaks_the_rules_is_answered_and_the_context_goes_on)
{
    tu_subreaper ();
    s_rawctx_t obs;
    memset (&obs, 0, sizeof obs);
    s_frame_t frame = { .body = s_rawctx_body, .obs = &obs };
    s_run_frame (&frame);
    ck_assert_msg (obs.started.got && obs.started.type == T_STARTED && obs.started.cid == 40,
                   "no started for the context (type %d)", obs.started.type);
    s_assert_error (&obs.over, "70 values in one yield", 40, TR_EPROTO,
                    "beyond the credit granted (window 1024)");
    s_assert_error (&obs.not_count, "a credit of a string", 40, TR_EPROTO,
                    "credit (cid 40) is not a count");
    ck_assert_str_eq (obs.echoed_text, "again");
    ck_assert_int_eq (obs.echoed_side, 1);
    //  ctx_echo returns how many values it echoed: the refused ones are
    //  not among them.
    ck_assert_msg (obs.ended.got && obs.ended.type == T_RETURN && obs.ended.cid == 40,
                   "no return after stop (type %d)", obs.ended.type);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A raw caller of one-way streams (protocol 1.3)

#define T_CANCEL    8
#define T_ACK       9

typedef struct {
    s_reply_t hello, started, yield, cancelled;
    s_reply_t count_started, count_end;
    int count_values;
    bool count_in_order;
} s_rawstream_t;

static void
s_rawstream_body (tr_ctx_t *ctx, tr_portal_t *p, s_raw_t *raw, void *arg)
{
    (void) ctx; (void) p;
    s_rawstream_t *obs = arg;
    s_exchange_args (raw, s_hello (1, 3, "raw@streams"), &obs->hello);
    //  The runtime starts it before the function runs; a value from the
    //  caller is refused, and a cancel is acknowledged.
    s_exchange_args (raw, tr_pack ("[i i [s i []]]", T_CMD, 50, "stream_quiet", 2),
                     &obs->started);
    s_exchange_args (raw, tr_pack ("[i i [i s]]", T_YIELD, 50, 0, "x"), &obs->yield);
    s_exchange_args (raw, tr_pack ("[i i n]", T_CANCEL, 50), &obs->cancelled);
    //  started, the values (in one yield or more), return.
    s_exchange_args (raw, tr_pack ("[i i [s i [i]]]", T_CMD, 51, "stream_count", 2, 5),
                     &obs->count_started);
    obs->count_in_order = true;
    for (int frames = 0; frames < 8 && !obs->count_end.got; frames++) {
        zmq_pollitem_t item = { raw->dealer, 0, ZMQ_POLLIN, 0 };
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_poll (&item, 1, tu_ms (5000)) != 1 || zmq_msg_recv (&frame, raw->dealer, 0) < 0) {
            zmq_msg_close (&frame);
            break;
        }
        tr_value_t *v = tr_value_decode (zmq_msg_data (&frame), zmq_msg_size (&frame));
        zmq_msg_close (&frame);
        int type = 0;
        uint64_t cid = 0;
        const msgpack_object *body;
        if (v && tr_unpack (tr_value_object (v), "[i u o]", &type, &cid, &body) == 0
        &&  cid == 51) {
            if (type == T_YIELD && body->type == MSGPACK_OBJECT_ARRAY
            &&  body->via.array.size > 1 && body->via.array.ptr [0].via.u64 == 1)
                for (uint32_t i = 1; i < body->via.array.size; i++)
                    if (body->via.array.ptr [i].via.i64 != obs->count_values++)
                        obs->count_in_order = false;
            if (type == T_RETURN || type == T_ERROR) {
                obs->count_end.got = true;
                obs->count_end.type = type;
                obs->count_end.cid = cid;
                obs->count_end.body_nil = body->type == MSGPACK_OBJECT_NIL;
            }
        }
        tr_value_destroy (&v);
    }
}

START_TEST (a_one_way_stream_is_started_by_the_runtime_and_refuses_the_callers_values)
{
    tu_subreaper ();
    s_rawstream_t obs;
    memset (&obs, 0, sizeof obs);
    s_frame_t frame = { .body = s_rawstream_body, .obs = &obs };
    s_run_frame (&frame);
    ck_assert_msg (obs.hello.got && obs.hello.type == T_HELLO, "no hello back");
    ck_assert_int_eq (obs.hello.minor, TR_PROTOCOL_MINOR);
    ck_assert_msg (obs.started.got && obs.started.type == T_STARTED && obs.started.cid == 50
                   && obs.started.body_nil, "no nil started (type %d)", obs.started.type);
    s_assert_error (&obs.yield, "a yield from the caller", 50, TR_EPROTO,
                    "a one-way stream carries values from its callee only");
    ck_assert_msg (obs.cancelled.got && obs.cancelled.type == T_ACK && obs.cancelled.cid == 50,
                   "no ack to the cancel (type %d)", obs.cancelled.type);
    ck_assert_msg (obs.count_started.got && obs.count_started.type == T_STARTED
                   && obs.count_started.body_nil, "no nil started for stream_count");
    ck_assert_int_eq (obs.count_values, 5);
    ck_assert_msg (obs.count_in_order, "values out of order");
    ck_assert_msg (obs.count_end.got && obs.count_end.type == T_RETURN,
                   "no return after the values (type %d)", obs.count_end.type);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A raw peer behind a ROUTER: what our DEALER (tr_portal_open) is told

//  A thread serves a plain libzmq ROUTER, as a peer that is not troupe
//  would: it answers our hello, or refuses it, and answers cmds by name:
//  "garbled" with a return that cannot be decoded, "deep" with one nested
//  too deep, anything else with a proper return of its arguments.
typedef struct {
    bool refuse;                    //  answer hello with a VersionMismatch
    void *zctx;
    void *router;
    char endpoint [256];
    pthread_t thread;
    volatile bool stop;
    int errors_seen;                //  error frames troupe sent us
    int cmds_seen;
    int hellos;                     //  hellos seen, the first few kept:
    uint8_t hello_rid [4][256];     //  the routing id each came with
    size_t hello_rid_size [4];
    int hello_minor [4];            //  and the minor it said
} s_server_t;

//  [type, cid] head then raw body bytes, as one frame to rid.
static void
s_server_send_raw (s_server_t *self, zmq_msg_t *rid, const void *data, size_t size)
{
    zmq_send (self->router, zmq_msg_data (rid), zmq_msg_size (rid), ZMQ_SNDMORE);
    zmq_send (self->router, data, size, 0);
}

static void
s_server_send (s_server_t *self, zmq_msg_t *rid, tr_args_t *args)
{
    if (args)
        s_server_send_raw (self, rid, tr_args_data (args), tr_args_size (args));
    tr_args_destroy (&args);
}

//  A return frame for cid whose body is body [0 .. size): the head is
//  fixarray 3, type, cid as a uint 64.
static size_t
s_bad_return (unsigned char *out, uint64_t cid, const unsigned char *body, size_t size)
{
    size_t n = 0;
    out [n++] = 0x93;
    out [n++] = T_RETURN;
    out [n++] = 0xcf;
    for (int shift = 56; shift >= 0; shift -= 8)
        out [n++] = (unsigned char) (cid >> shift);
    memcpy (out + n, body, size);
    return n + size;
}

static void
s_server_frame (s_server_t *self, zmq_msg_t *rid, zmq_msg_t *frame)
{
    tr_value_t *value = tr_value_decode (zmq_msg_data (frame), zmq_msg_size (frame));
    int type;
    uint64_t cid;
    const msgpack_object *body;
    if (!value || tr_unpack (tr_value_object (value), "[iuo]", &type, &cid, &body)) {
        tr_value_destroy (&value);
        return;
    }
    if (type == T_HELLO && self->hellos < 4) {
        int i = self->hellos;
        self->hello_rid_size [i] = zmq_msg_size (rid);
        memcpy (self->hello_rid [i], zmq_msg_data (rid), zmq_msg_size (rid));
        int major = 0;
        if (tr_unpack (body, "{s:[ii]}", "v", &major, &self->hello_minor [i]))
            self->hello_minor [i] = -1;
    }
    if (type == T_HELLO)
        self->hellos++;
    if (type == T_HELLO && self->refuse)
        s_server_send (self, rid, tr_pack ("[i i {s:i s:s s:s s:s}]", T_ERROR, 0,
                                           "code", TR_EVERSION, "type", "VersionMismatch",
                                           "msg", "peer speaks protocol 1.0, raw@server speaks 9.0",
                                           "origin", "raw@server"));
    else
    if (type == T_HELLO)
        s_server_send (self, rid, tr_pack ("[i i {s:[ii] s:s s:i s:s}]", T_HELLO, 0,
                                           "v", 1, 0, "uid", "raw@server",
                                           "pid", (int) getpid (), "ep", self->endpoint));
    else
    if (type == T_ERROR)
        self->errors_seen++;
    else
    if (type == T_CMD) {
        self->cmds_seen++;
        const char *fn;
        const msgpack_object *args;
        unsigned char out [128];
        int kind;
        if (tr_unpack (body, "[so]", &fn, &args) && tr_unpack (body, "[s i o]", &fn, &kind, &args))
            fn = "";
        if (strcmp (fn, "garbled") == 0) {
            //  0xc1 is the one byte msgpack never uses.
            static const unsigned char garbled [] = { 0xc1 };
            s_server_send_raw (self, rid, out, s_bad_return (out, cid, garbled, 1));
        }
        else
        if (strcmp (fn, "yield_first") == 0)
            s_server_send (self, rid, tr_pack ("[i I [i i]]", T_YIELD, (int64_t) cid, 1, 7));
        else
        if (strcmp (fn, "started_twice") == 0) {
            s_server_send (self, rid, tr_pack ("[i I s]", T_STARTED, (int64_t) cid, "one"));
            s_server_send (self, rid, tr_pack ("[i I s]", T_STARTED, (int64_t) cid, "two"));
        }
        else
        if (strcmp (fn, "deep") == 0) {
            unsigned char deep [41];
            memset (deep, 0x91, 40);
            deep [40] = 0xc0;
            s_server_send_raw (self, rid, out, s_bad_return (out, cid, deep, sizeof deep));
        }
        else
            s_server_send (self, rid, tr_pack ("[i I o]", T_RETURN, (int64_t) cid, args));
    }
    tr_value_destroy (&value);
}

static void *
s_server_run (void *arg)
{
    s_server_t *self = arg;
    while (!self->stop) {
        zmq_pollitem_t item = { self->router, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 20) <= 0)
            continue;
        zmq_msg_t rid, frame;
        zmq_msg_init (&rid);
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&rid, self->router, ZMQ_DONTWAIT) >= 0
        &&  zmq_msg_more (&rid) && zmq_msg_recv (&frame, self->router, ZMQ_DONTWAIT) >= 0)
            s_server_frame (self, &rid, &frame);
        zmq_msg_close (&frame);
        zmq_msg_close (&rid);
    }
    return NULL;
}

static void
s_server_start (s_server_t *self)
{
    self->zctx = zmq_ctx_new ();
    ck_assert_ptr_nonnull (self->zctx);
    self->router = zmq_socket (self->zctx, ZMQ_ROUTER);
    ck_assert_ptr_nonnull (self->router);
    int zero = 0;
    zmq_setsockopt (self->router, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq (zmq_bind (self->router, "tcp://127.0.0.1:*"), 0);
    size_t size = sizeof self->endpoint;
    ck_assert_int_eq (zmq_getsockopt (self->router, ZMQ_LAST_ENDPOINT, self->endpoint, &size), 0);
    ck_assert_int_eq (pthread_create (&self->thread, NULL, s_server_run, self), 0);
}

static void
s_server_stop (s_server_t *self)
{
    self->stop = true;
    pthread_join (self->thread, NULL);
    zmq_close (self->router);
    zmq_ctx_term (self->zctx);
}

typedef struct {
    s_server_t *server;
    int open_rc;
    long long open_ms;
    char uid [256];
    int garbled_rc, deep_rc, echo_rc;
    tu_err_t garbled, deep;
    long long garbled_ms, deep_ms;
    char echo [16];
    int close_rc;
    tu_err_t open_error;            //  the task's error after a failed open
} s_answers_t;

static int
s_answers_root (tr_actor_t *self, void *arg)
{
    s_answers_t *obs = arg;
    tr_portal_t *p = NULL;
    long long t0 = tu_now_ms ();
    obs->open_rc = tr_portal_open (self, obs->server->endpoint, 5000, &p);
    obs->open_ms = tu_now_ms () - t0;
    if (obs->open_rc) {
        tu_err_copy (&obs->open_error, tr_ctx_error (tr_actor_ctx (self)));
        return 0;
    }
    snprintf (obs->uid, sizeof obs->uid, "%s", tr_portal_uid (p));
    t0 = tu_now_ms ();
    obs->garbled_rc = tu_call (p, "garbled", NULL, NULL);
    obs->garbled_ms = tu_now_ms () - t0;
    tu_err_copy (&obs->garbled, tr_portal_error (p));
    t0 = tu_now_ms ();
    obs->deep_rc = tu_call (p, "deep", NULL, NULL);
    obs->deep_ms = tu_now_ms () - t0;
    tu_err_copy (&obs->deep, tr_portal_error (p));
    tr_value_t *v = NULL;
    obs->echo_rc = tu_call (p, "echo", tr_pack ("[s]", "still"), &v);
    const char *text;
    if (obs->echo_rc == 0 && tr_unpack (tr_value_object (v), "[s]", &text) == 0)
        snprintf (obs->echo, sizeof obs->echo, "%s", text);
    tr_value_destroy (&v);
    obs->close_rc = tr_portal_close (&p);
    return 0;
}

//  --------------------------------------------------------------------------
//  A callee that breaks the order of a context on the wire

typedef struct {
    s_server_t *server;
    int open_rc, early_rc, twice_rc, twice_result_rc, echo_rc;
    tu_err_t early, twice;
    char first [16];
} s_order_t;

static int
s_order_root (tr_actor_t *self, void *arg)
{
    s_order_t *obs = arg;
    tr_portal_t *p = NULL;
    obs->open_rc = tr_portal_open (self, obs->server->endpoint, 5000, &p);
    if (obs->open_rc)
        return 0;
    tr_context_t *c = NULL;
    obs->early_rc = tr_portal_open_context (p, "yield_first", NULL, &c, NULL);
    tu_err_copy (&obs->early, tr_portal_error (p));
    tr_context_close (&c);
    const msgpack_object *first;
    obs->twice_rc = tr_portal_open_context (p, "started_twice", NULL, &c, &first);
    if (obs->twice_rc == 0) {
        const char *text = "";
        tr_unpack (first, "s", &text);
        snprintf (obs->first, sizeof obs->first, "%s", text);
        obs->twice_result_rc = tr_context_result (c, NULL);
        tu_err_copy (&obs->twice, tr_context_error (c));
    }
    tr_context_close (&c);
    obs->echo_rc = tu_call (p, "echo", tr_pack ("[s]", "still"), NULL);
    tr_portal_close (&p);
    return 0;
}

START_TEST (a_started_or_yield_out_of_order_is_answered_and_fails_the_context)
{
    tu_subreaper ();
    s_server_t server = { .refuse = false };
    s_server_start (&server);
    s_order_t obs = { .server = &server };
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_order_root, &obs);
    s_server_stop (&server);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_tr_rc (obs.early_rc, TR_EPROTO);
    ck_assert_str_eq (obs.early.type, "ProtocolError");
    ck_assert_msg (strstr (obs.early.message, "yield (cid") &&
                   strstr (obs.early.message, "came before started"), "'%s'", obs.early.message);
    ck_assert_tr_ok (obs.twice_rc);
    ck_assert_str_eq (obs.first, "one");
    ck_assert_tr_rc (obs.twice_result_rc, TR_EPROTO);
    ck_assert_msg (strstr (obs.twice.message, "came twice"), "'%s'", obs.twice.message);
    //  Both were answered with an error frame (and a cancel), and the
    //  root went on: a plain call still works.
    ck_assert_int_ge (server.errors_seen, 2);
    ck_assert_tr_ok (obs.echo_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Answers sent in a burst travel together to a peer that reads them so

typedef struct {
    s_reply_t hello [2], first [2], second [2];
} s_burst_t;

//  Two calls in one message from a peer of protocol 1.minor; both answers.
static void
s_burst_exchange (s_raw_t *raw, int minor, s_reply_t *hello, s_reply_t *first,
                  s_reply_t *second)
{
    s_exchange_args (raw, s_hello (1, minor, minor? "raw@new": "raw@old"), hello);
    tr_args_t *a = tr_pack ("[i i [s [s]]]", T_CMD, 21, "echo", "one");
    tr_args_t *b = tr_pack ("[i i [s [s]]]", T_CMD, 22, "echo", "two");
    if (a && b
    &&  zmq_send (raw->dealer, tr_args_data (a), tr_args_size (a), ZMQ_SNDMORE) >= 0
    &&  zmq_send (raw->dealer, tr_args_data (b), tr_args_size (b), 0) >= 0) {
        s_raw_recv (raw, first, 5000);
        s_raw_recv (raw, second, 5000);
    }
    tr_args_destroy (&a);
    tr_args_destroy (&b);
}

static void
s_burst_body (tr_ctx_t *ctx, tr_portal_t *p, s_raw_t *raw, void *arg)
{
    (void) ctx;
    s_burst_t *obs = arg;
    s_burst_exchange (raw, 0, &obs->hello [0], &obs->first [0], &obs->second [0]);
    s_raw_t other;
    if (s_raw_open (&other, tr_portal_endpoint (p), "burst-new") == 0)
        s_burst_exchange (&other, TR_PROTOCOL_MINOR, &obs->hello [1], &obs->first [1],
                          &obs->second [1]);
    s_raw_close (&other);
}

START_TEST (a_burst_of_answers_travels_in_one_message_to_a_peer_that_reads_them_so)
{
    tu_subreaper ();
    s_burst_t obs;
    memset (&obs, 0, sizeof obs);
    s_frame_t frame = { .body = s_burst_body, .obs = &obs };
    s_run_frame (&frame);
    for (int i = 0; i < 2; i++) {
        const char *who = i? "a 1.1 peer": "a 1.0 peer";
        ck_assert_msg (obs.hello [i].got && obs.hello [i].type == T_HELLO, "%s: no hello", who);
        ck_assert_msg (obs.first [i].got && obs.first [i].type == T_RETURN
                   &&  obs.first [i].cid == 21 && strcmp (obs.first [i].echo, "one") == 0,
                       "%s: first answer type %d cid %llu '%s'", who, obs.first [i].type,
                       (unsigned long long) obs.first [i].cid, obs.first [i].echo);
        ck_assert_msg (obs.second [i].got && obs.second [i].type == T_RETURN
                   &&  obs.second [i].cid == 22 && strcmp (obs.second [i].echo, "two") == 0,
                       "%s: second answer type %d cid %llu '%s'", who, obs.second [i].type,
                       (unsigned long long) obs.second [i].cid, obs.second [i].echo);
        ck_assert_msg (!obs.second [i].more, "%s: a part after the last answer", who);
    }
    //  Protocol 1.0 has one frame per message; 1.1 reads both as one.
    ck_assert_msg (!obs.first [0].more, "a 1.0 peer got two frames in one message");
    ck_assert_msg (obs.first [1].more, "a 1.1 peer got the burst's answers apart");
    tu_assert_no_procs_left (2000);
}
END_TEST

START_TEST (an_answer_that_cannot_be_read_fails_its_call_at_once)
{
    tu_subreaper ();
    s_server_t server = { .refuse = false };
    s_server_start (&server);
    s_answers_t obs = { .server = &server };
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_answers_root, &obs);
    s_server_stop (&server);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_str_eq (obs.uid, "raw@server");
    ck_assert_tr_rc (obs.garbled_rc, TR_EPROTO);
    ck_assert_tr_rc (obs.garbled.code, TR_EPROTO);
    ck_assert_str_eq (obs.garbled.type, "ProtocolError");
    ck_assert_msg (strstr (obs.garbled.message, "could not be read"), "'%s'", obs.garbled.message);
    ck_assert_msg (strstr (obs.garbled.message, "0xc1"), "'%s'", obs.garbled.message);
    ck_assert_msg (obs.garbled_ms < 1000, "the garbled answer failed its call after %lld ms",
                   obs.garbled_ms);
    ck_assert_tr_rc (obs.deep_rc, TR_ETOOBIG);
    ck_assert_tr_rc (obs.deep.code, TR_ETOOBIG);
    ck_assert_str_eq (obs.deep.type, "TooBig");
    ck_assert_msg (strstr (obs.deep.message, "deeper than 32"), "'%s'", obs.deep.message);
    ck_assert_msg (obs.deep_ms < 1000, "the deep answer failed its call after %lld ms",
                   obs.deep_ms);
    //  The portal goes on: the next answer is read as usual.
    ck_assert_tr_ok (obs.echo_rc);
    ck_assert_str_eq (obs.echo, "still");
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_int_eq (server.cmds_seen, 3);
    //  Each bad answer was also answered with an error (doc/protocol.md 5).
    ck_assert_int_eq (server.errors_seen, 2);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  Two portals to the raw server, one after the other.
static int
s_two_portals_root (tr_actor_t *self, void *arg)
{
    s_server_t *server = arg;
    for (int i = 0; i < 2; i++) {
        tr_portal_t *p = NULL;
        int rc = tr_portal_open (self, server->endpoint, 5000, &p);
        if (rc)
            return rc;
        tr_portal_close (&p);
    }
    return 0;
}

START_TEST (every_dealer_troupe_opens_has_a_random_routing_id_of_its_own)
{
    tu_subreaper ();
    s_server_t server = { .refuse = false };
    s_server_start (&server);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_two_portals_root, &server);
    s_server_stop (&server);
    ck_assert_int_eq (rc, 0);
    ck_assert_int_eq (server.hellos, 2);
    for (int i = 0; i < 2; i++) {
        //  16 bytes, not one of the ids libzmq makes up (those start with
        //  a 0 byte), and the hello says the peer keeps to 1.4.
        ck_assert_uint_eq (server.hello_rid_size [i], 16);
        ck_assert_uint_ne (server.hello_rid [i][0], 0);
        ck_assert_int_eq (server.hello_minor [i], TR_PROTOCOL_MINOR);
        ck_assert_int_ge (TR_PROTOCOL_MINOR, 4);
    }
    ck_assert_msg (memcmp (server.hello_rid [0], server.hello_rid [1], 16) != 0,
                   "two sockets had the same routing id");
    tu_assert_no_procs_left (2000);
}
END_TEST

START_TEST (a_peer_that_refuses_our_hello_with_a_version_error_fails_the_open_as_eversion)
{
    tu_subreaper ();
    s_server_t server = { .refuse = true };
    s_server_start (&server);
    s_answers_t obs = { .server = &server };
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_answers_root, &obs);
    s_server_stop (&server);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_rc (obs.open_rc, TR_EVERSION);
    //  Refused, not timed out (the open would wait 5 s).
    ck_assert_msg (obs.open_ms < 1000, "the open failed after %lld ms", obs.open_ms);
    //  The peer's own error is the task's.
    ck_assert_tr_rc (obs.open_error.code, TR_EVERSION);
    ck_assert_str_eq (obs.open_error.type, "VersionMismatch");
    ck_assert_str_eq (obs.open_error.message, "peer speaks protocol 1.0, raw@server speaks 9.0");
    ck_assert_str_eq (obs.open_error.origin, "raw@server");
    ck_assert_int_eq (server.cmds_seen, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------

static Suite *
s_suite (void)
{
    Suite *s = suite_create ("protocol");
    TCase *tc = tu_tcase (s, "raw peer", 30);
    tcase_add_test (tc, malformed_frames_are_answered_with_an_error_saying_what_is_wrong);
    tcase_add_test (tc, a_peer_must_say_hello_first_and_speak_the_same_major_version);
    tcase_add_test (tc, a_frame_over_the_size_limit_drops_the_connection_and_the_actor_serves_on);
    tcase_add_test (tc, stream_frames_for_no_context_and_kinds_called_the_wrong_way_are_refused);
    tcase_add_test (tc, a_stream_frame_that_breaks_the_rules_is_answered_and_the_context_goes_on);
    tcase_add_test (tc, a_one_way_stream_is_started_by_the_runtime_and_refuses_the_callers_values);

    tc = tu_tcase (s, "raw server", 20);
    tcase_add_test (tc, a_burst_of_answers_travels_in_one_message_to_a_peer_that_reads_them_so);
    tcase_add_test (tc, an_answer_that_cannot_be_read_fails_its_call_at_once);
    tcase_add_test (tc, a_started_or_yield_out_of_order_is_answered_and_fails_the_context);
    tcase_add_test (tc, a_peer_that_refuses_our_hello_with_a_version_error_fails_the_open_as_eversion);
    tcase_add_test (tc, every_dealer_troupe_opens_has_a_random_routing_id_of_its_own);
    return s;
}

int
main (void)
{
    return tu_run_suite (s_suite (), CK_FORK);
}
