/*  =========================================================================
    test_protocol.c - scenario: a raw peer speaks the wire protocol to an
    actor, badly and then well

    The forked test process is the root actor; it starts one tests/worker
    child and then, from its own task, talks to the child's ROUTER through
    a plain libzmq DEALER: garbage, wrong shapes, unknown types, hostile
    lengths and depths, frames before hello, a wrong version, then a proper
    hello and calls. Every bad frame must get an error reply (never a
    crash, a hang or silence) and the actor must go on serving its parent.
    Raw I/O blocks the root's loop thread for a moment at a time, which is
    fine here: the child is another process.
    =========================================================================
*/
#include "testutil.h"
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
              multipart, truncated, trailing;
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
    //  Two frames in one message.
    memset (&obs->multipart, 0, sizeof obs->multipart);
    if (zmq_send (raw->dealer, "\x93\x0a\x01\xc0", 4, ZMQ_SNDMORE) == 4
    &&  zmq_send (raw->dealer, "\x93\x0a\x02\xc0", 4, 0) == 4)
        s_raw_recv (raw, &obs->multipart, 5000);
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
    s_assert_error (&obs.multipart, "multipart", 0, TR_EPROTO, "one frame");
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
    ck_assert_msg (strstr (obs.bad_version.msg, "1.0"), "'%s'", obs.bad_version.msg);
    ck_assert_msg (strstr (obs.bad_version.msg, "raw@future"), "'%s'", obs.bad_version.msg);
    ck_assert_msg (obs.hello.got && obs.hello.type == T_HELLO,
                   "no hello back (type %d, '%s')", obs.hello.type, obs.hello.msg);
    ck_assert_str_eq (obs.hello.uid, frame.base.uid);
    ck_assert_int_eq (obs.hello.major, 1);
    ck_assert_int_eq (obs.hello.minor, 0);
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
//  raw DEALER reconnects by itself; with a fixed routing id the actor
//  knows it again (its hello still holds) and answers a ping.
typedef struct {
    s_reply_t hello, first_after, ping;
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
    //  must be a pong, never an answer to the big frame.
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
    ck_assert_msg (obs.first_after.type == T_PONG,
                   "the big frame got an answer: type %d '%s'", obs.first_after.type,
                   obs.first_after.msg);
    ck_assert_msg (obs.ping.type == T_PONG, "no pong within %lld ms", obs.pong_ms);
    ck_assert_int_ge (obs.ping.cid, 100);
    //  The actor's side hung up on the big frame; the DEALER came back.
    ck_assert_int_ge (obs.disconnects, 1);
    ck_assert_int_ge (obs.connects, 2);
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
    return s;
}

int
main (void)
{
    return tu_run_suite (s_suite (), CK_FORK);
}
