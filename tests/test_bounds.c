/*  =========================================================================
    test_bounds.c - scenario: no peer can exhaust or freeze an actor

    The forked test process is the root actor and the callee: it exports
    a few functions and, from a worker thread (tr_to_thread), talks to its
    own ROUTER through plain libzmq DEALERs, as a hostile or broken peer
    would: too many calls at once, answers never read, a routing id
    reused across connections, a flood of bad frames from two peers
    taking turns. Each bound must hold and the actor must go on serving.
    =========================================================================
*/
#include "testutil.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <stdatomic.h>
#include <zmq.h>

#define T_HELLO     1
#define T_CMD       2
#define T_RETURN    6
#define T_ERROR     7

//  Calls of park running now (the actor's thread writes, the test's reads).
static atomic_int s_parked;

static int
s_park (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) args; (void) out;
    atomic_fetch_add (&s_parked, 1);
    int rc = tr_sleep (ctx, 600000);
    atomic_fetch_sub (&s_parked, 1);
    return rc;
}

static int
s_add (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int64_t a, b;
    if (tr_unpack (args, "[II]", &a, &b))
        return tr_raise (ctx, "TypeError", "add takes [a, b]");
    return tr_reply_pack (out, "I", a + b);
}

static int
s_big (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int64_t size;
    if (tr_unpack (args, "[I]", &size) || size < 0 || size > (1 << 24))
        return tr_raise (ctx, "TypeError", "big takes [size]");
    char *data = malloc ((size_t) size);
    if (!data)
        return TR_ENOMEM;
    memset (data, 'x', (size_t) size);
    int rc = tr_reply_pack (out, "s#", data, (size_t) size);
    free (data);
    return rc;
}

//  [ms]: keep the actor's thread for ms, never parking.
static int
s_hog (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) out;
    int64_t ms;
    if (tr_unpack (args, "[I]", &ms))
        return tr_raise (ctx, "TypeError", "hog takes [ms]");
    long long until = tu_now_ms () + ms;
    while (tu_now_ms () < until)
        ;
    return 0;
}

static const tr_export_t s_exports [] = {
    { "hog", s_hog, TR_CALL, 0, 0 },
    { "park", s_park, TR_CALL, 0, 0 },
    { "add", s_add, TR_CALL, 0, 0 },
    { "big", s_big, TR_CALL, 0, 0 },
    TR_EXPORTS_END
};

//  --------------------------------------------------------------------------
//  A raw peer (its own libzmq context: it runs on a worker thread)

typedef struct {
    void *zctx;
    void *dealer;
} s_raw_t;

static void
s_raw_open (s_raw_t *self, const char *endpoint, const char *routing_id, int rcvhwm)
{
    self->zctx = zmq_ctx_new ();
    self->dealer = zmq_socket (self->zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt (self->dealer, ZMQ_LINGER, &zero, sizeof zero);
    if (rcvhwm)
        zmq_setsockopt (self->dealer, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    if (routing_id)
        zmq_setsockopt (self->dealer, ZMQ_ROUTING_ID, routing_id, strlen (routing_id));
    zmq_connect (self->dealer, endpoint);
}

static void
s_raw_close (s_raw_t *self)
{
    zmq_close (self->dealer);
    zmq_ctx_term (self->zctx);
}

static void
s_raw_send (s_raw_t *self, tr_args_t *args)
{
    zmq_send (self->dealer, tr_args_data (args), tr_args_size (args), 0);
    tr_args_destroy (&args);
}

//  Hello as a peer of protocol 1.minor.
static void
s_raw_hello_minor (s_raw_t *self, const char *uid, int minor)
{
    s_raw_send (self, tr_pack ("[i i {s:[ii] s:s s:i s:s}]", T_HELLO, 0, "v", 1, minor,
                               "uid", uid, "pid", (int) getpid (), "ep", ""));
}

static void
s_raw_hello (s_raw_t *self, const char *uid)
{
    s_raw_hello_minor (self, uid, 1);
}

//  [cmd, cid, [fn, [n...]]] with up to two ints.
static void
s_raw_call (s_raw_t *self, uint64_t cid, const char *fn, int nargs, int64_t a, int64_t b)
{
    if (nargs == 0)
        s_raw_send (self, tr_pack ("[i I [s []]]", T_CMD, (int64_t) cid, fn));
    else
    if (nargs == 1)
        s_raw_send (self, tr_pack ("[i I [s [I]]]", T_CMD, (int64_t) cid, fn, a));
    else
        s_raw_send (self, tr_pack ("[i I [s [I I]]]", T_CMD, (int64_t) cid, fn, a, b));
}

typedef struct {
    bool got;
    int type;
    uint64_t cid;
    int code;
    char msg [512];
} s_reply_t;

//  Wait up to timeout_ms for one frame and read its head.
static bool
s_raw_recv (s_raw_t *self, s_reply_t *reply, int timeout_ms)
{
    memset (reply, 0, sizeof *reply);
    zmq_pollitem_t item = { self->dealer, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, tu_ms (timeout_ms)) <= 0)
        return false;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    if (zmq_msg_recv (&frame, self->dealer, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&frame);
        return false;
    }
    reply->got = true;
    tr_value_t *value = tr_value_decode (zmq_msg_data (&frame), zmq_msg_size (&frame));
    zmq_msg_close (&frame);
    const msgpack_object *body;
    if (value && tr_unpack (tr_value_object (value), "[iuo]", &reply->type, &reply->cid,
                            &body) == 0) {
        const char *s = NULL;
        if (reply->type == T_ERROR
        &&  tr_unpack (body, "{s:i s:s}", "code", &reply->code, "msg", &s) == 0)
            snprintf (reply->msg, sizeof reply->msg, "%s", s);
    }
    tr_value_destroy (&value);
    return true;
}

//  Wait for a reply with that cid (others are skipped); false if none came.
static bool
s_raw_await (s_raw_t *self, uint64_t cid, s_reply_t *reply, int timeout_ms)
{
    long long deadline = tu_now_ms () + tu_ms (timeout_ms);
    while (tu_now_ms () < deadline)
        if (s_raw_recv (self, reply, (int) (deadline - tu_now_ms ())) && reply->cid == cid)
            return true;
    return false;
}

//  Wait until s_parked is want.
static bool
s_await_parked (int want, int timeout_ms)
{
    long long deadline = tu_now_ms () + tu_ms (timeout_ms);
    while (atomic_load (&s_parked) != want && tu_now_ms () < deadline)
        usleep (2000);
    return atomic_load (&s_parked) == want;
}

//  --------------------------------------------------------------------------
//  The frame: the root runs body on a worker thread against its own
//  endpoint; stderr goes to a file the test reads afterwards.

typedef void (s_body_fn) (const char *endpoint, void *obs);

typedef struct {
    s_body_fn *body;
    void *obs;
    char endpoint [256];
    int thread_rc;
} s_frame_t;

static void *
s_thread (void *arg)
{
    s_frame_t *frame = arg;
    frame->body (frame->endpoint, frame->obs);
    return NULL;
}

static int
s_root (tr_actor_t *self, void *arg)
{
    s_frame_t *frame = arg;
    snprintf (frame->endpoint, sizeof frame->endpoint, "%s", tr_actor_endpoint (self));
    frame->thread_rc = tr_to_thread (tr_actor_ctx (self), s_thread, frame, NULL);
    return 0;
}

static char s_log_path [64];

//  Run body with config; stderr is kept in s_log_path.
static void
s_run (tr_config_t *config, s_body_fn *body, void *obs)
{
    tu_subreaper ();
    atomic_store (&s_parked, 0);
    snprintf (s_log_path, sizeof s_log_path, "/tmp/test_bounds-%d.log", (int) getpid ());
    int fd = open (s_log_path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    ck_assert_int_ge (fd, 0);
    int saved = dup (2);
    dup2 (fd, 2);
    close (fd);
    config->size = sizeof *config;
    config->exports = s_exports;
    s_frame_t frame = { .body = body, .obs = obs };
    int rc = tr_run (config, 0, NULL, s_root, &frame);
    fflush (stderr);
    dup2 (saved, 2);
    close (saved);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (frame.thread_rc);
}

//  How many lines of the log hold needle (and the last one in line).
static int
s_log_count (const char *needle, char *line, size_t line_size)
{
    FILE *f = fopen (s_log_path, "r");
    if (!f)
        return 0;
    char text [2048];
    int count = 0;
    while (fgets (text, sizeof text, f))
        if (strstr (text, needle)) {
            count++;
            if (line)
                snprintf (line, line_size, "%s", text);
        }
    fclose (f);
    return count;
}

static void
s_log_remove (void)
{
    unlink (s_log_path);
}

//  --------------------------------------------------------------------------
//  Calls served at once are bounded per peer and per actor

typedef struct {
    s_reply_t refused_peer [2];     //  a's cids 9 and 10
    s_reply_t refused_actor;        //  b's cid 5
    bool a_parked, b_parked, a_cancelled;
    s_reply_t after;                //  b's add once a has gone
} s_calls_t;

static void
s_calls_body (const char *endpoint, void *arg)
{
    s_calls_t *obs = arg;
    s_raw_t a, b;
    s_raw_open (&a, endpoint, NULL, 0);
    s_raw_hello (&a, "a@raw");
    s_reply_t hello;
    s_raw_await (&a, 0, &hello, 5000);
    for (uint64_t cid = 1; cid <= 10; cid++)
        s_raw_call (&a, cid, "park", 0, 0, 0);
    s_raw_await (&a, 9, &obs->refused_peer [0], 5000);
    s_raw_await (&a, 10, &obs->refused_peer [1], 5000);
    obs->a_parked = s_await_parked (8, 5000);
    s_raw_open (&b, endpoint, NULL, 0);
    s_raw_hello (&b, "b@raw");
    s_raw_await (&b, 0, &hello, 5000);
    for (uint64_t cid = 1; cid <= 5; cid++)
        s_raw_call (&b, cid, "park", 0, 0, 0);
    s_raw_await (&b, 5, &obs->refused_actor, 5000);
    obs->b_parked = s_await_parked (12, 5000);
    //  a leaves: its calls are cancelled, and b is served again.
    s_raw_close (&a);
    obs->a_cancelled = s_await_parked (4, 5000);
    s_raw_call (&b, 6, "add", 2, 40, 2);
    s_raw_await (&b, 6, &obs->after, 5000);
    s_raw_close (&b);
    s_await_parked (0, 5000);
}

START_TEST (calls_over_the_bounds_are_refused_and_a_leaving_peer_frees_its_share)
{
    tr_config_t config = tu_config ();
    config.max_calls_per_peer = 8;
    config.max_calls = 12;
    s_calls_t obs;
    memset (&obs, 0, sizeof obs);
    s_run (&config, s_calls_body, &obs);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg (obs.refused_peer [i].got, "call %d over the peer's bound: no answer", 9 + i);
        ck_assert_int_eq (obs.refused_peer [i].type, T_ERROR);
        ck_assert_msg (obs.refused_peer [i].code == TR_ELIMIT, "code %d (%s)",
                       obs.refused_peer [i].code, obs.refused_peer [i].msg);
        ck_assert_msg (strstr (obs.refused_peer [i].msg, "the most one peer may have"), "%s",
                       obs.refused_peer [i].msg);
    }
    ck_assert (obs.a_parked);
    ck_assert_msg (obs.refused_actor.got && obs.refused_actor.code == TR_ELIMIT,
                   "the call over the actor's bound: code %d", obs.refused_actor.code);
    ck_assert_msg (strstr (obs.refused_actor.msg, "the most it may"), "%s", obs.refused_actor.msg);
    ck_assert (obs.b_parked);
    ck_assert_msg (obs.a_cancelled, "the calls of a peer that left were not cancelled");
    ck_assert_msg (obs.after.got && obs.after.type == T_RETURN, "after: type %d code %d %s",
                   obs.after.type, obs.after.code, obs.after.msg);
    ck_assert_int_ge (s_log_count ("TR-LIMIT", NULL, 0), 1);
    s_log_remove ();
    tu_assert_no_procs_left (2000);
}
END_TEST

//  The caller's tr_portal_run returns TR_ELIMIT for a call over the bound

typedef struct {
    int open_rc, over_rc, after_rc;
    char over_type [64];
    int parked;
} s_portal_t;

static int
s_park_through (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    tr_value_t *v = NULL;
    tr_args_t *args = tr_pack ("[]");
    int rc = tr_portal_run (arg, "park", args, &v);
    tr_args_destroy (&args);
    tr_value_destroy (&v);
    return rc;
}

static int
s_portal_root (tr_actor_t *self, void *arg)
{
    s_portal_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_portal_t *p = NULL;
    if ((obs->open_rc = tr_portal_open (self, tr_actor_endpoint (self), tu_ms (2000), &p)))
        return 1;
    tr_task_t *tasks [2];
    for (int i = 0; i < 2; i++)
        tr_task_spawn (self, s_park_through, p, &tasks [i]);
    long long deadline = tu_now_ms () + tu_ms (5000);
    while (atomic_load (&s_parked) < 2 && tu_now_ms () < deadline)
        tr_sleep (ctx, 5);
    obs->parked = atomic_load (&s_parked);
    tr_value_t *v = NULL;
    tr_args_t *args = tr_pack ("[ii]", 40, 2);
    obs->over_rc = tr_portal_run (p, "add", args, &v);
    const tr_error_t *err = tr_portal_error (p);
    snprintf (obs->over_type, sizeof obs->over_type, "%s", err? tr_error_type (err): "");
    tr_value_destroy (&v);
    //  One ends: the next call is served.
    tr_task_cancel (tasks [0]);
    tr_task_join (&tasks [0], NULL);
    obs->after_rc = tr_portal_run (p, "add", args, &v);
    tr_value_destroy (&v);
    tr_args_destroy (&args);
    tr_task_cancel (tasks [1]);
    tr_task_join (&tasks [1], NULL);
    tr_portal_close (&p);
    return 0;
}

START_TEST (a_call_over_the_bound_fails_at_the_caller_with_elimit)
{
    tu_subreaper ();
    atomic_store (&s_parked, 0);
    tr_config_t config = tu_config ();
    config.size = sizeof config;
    config.exports = s_exports;
    config.max_calls_per_peer = 2;
    s_portal_t obs;
    memset (&obs, 0, sizeof obs);
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_portal_root, &obs), 0);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_int_eq (obs.parked, 2);
    ck_assert_tr_rc (obs.over_rc, TR_ELIMIT);
    ck_assert_str_eq (obs.over_type, "TooManyCalls");
    ck_assert_tr_ok (obs.after_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A peer that does not read its answers is disconnected

typedef struct {
    int reader_answers;             //  of 20, from a peer that reads
    int stalled_answers;            //  of 50, read once the peer was dropped
    bool logged;
    s_reply_t after;                //  the stalled peer says hello again
} s_stall_t;

static void
s_stall_body (const char *endpoint, void *arg)
{
    s_stall_t *obs = arg;
    s_raw_t stalled, reader;
    s_reply_t reply;
    s_raw_open (&stalled, endpoint, NULL, 1);
    s_raw_hello (&stalled, "stalled@raw");
    s_raw_await (&stalled, 0, &reply, 5000);
    for (uint64_t cid = 1; cid <= 50; cid++)
        s_raw_call (&stalled, cid, "big", 1, 1 << 20, 0);
    //  A peer that reads gets every answer meanwhile.
    s_raw_open (&reader, endpoint, NULL, 0);
    s_raw_hello (&reader, "reader@raw");
    s_raw_await (&reader, 0, &reply, 5000);
    for (uint64_t cid = 1; cid <= 20; cid++)
        s_raw_call (&reader, cid, "big", 1, 1 << 20, 0);
    for (int i = 0; i < 20; i++)
        if (s_raw_recv (&reader, &reply, 10000) && reply.type == T_RETURN)
            obs->reader_answers++;
    long long deadline = tu_now_ms () + tu_ms (20000);
    while (!(obs->logged = s_log_count ("TR-SEND-QUEUE", NULL, 0) > 0)
    &&     tu_now_ms () < deadline)
        usleep (10000);
    //  What reaches it once it reads: what was queued, not all 50.
    while (s_raw_recv (&stalled, &reply, 1000))
        if (reply.type == T_RETURN)
            obs->stalled_answers++;
    //  Its connection is ignored from then on.
    s_raw_hello (&stalled, "stalled@raw");
    s_raw_recv (&stalled, &obs->after, 1000);
    s_raw_close (&stalled);
    s_raw_close (&reader);
}

START_TEST (a_peer_that_does_not_read_its_answers_is_disconnected)
{
    tr_config_t config = tu_config ();
    config.max_msg_size = 2 << 20;
    config.max_queued_bytes = 4 << 20;
    s_stall_t obs;
    memset (&obs, 0, sizeof obs);
    s_run (&config, s_stall_body, &obs);
    ck_assert_int_eq (obs.reader_answers, 20);
    ck_assert_msg (obs.logged, "no TR-SEND-QUEUE line");
    ck_assert_msg (obs.stalled_answers < 20, "the stalled peer got %d answers of 50",
                   obs.stalled_answers);
    ck_assert_msg (!obs.after.got, "the dropped peer was answered again");
    s_log_remove ();
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A routing id is trusted on the connection its hello came on only

typedef struct {
    s_reply_t hogged;               //  add from a new connection, no hello,
                                    //  read with the old one's departure
    s_reply_t first;                //  add, after hello
    s_reply_t again;                //  add from a new connection, no hello
    s_reply_t twin;                 //  hello with the id of a connected peer
    s_reply_t held;                 //  the first still served
} s_rid_t;

static void
s_rid_body (const char *endpoint, void *arg)
{
    s_rid_t *obs = arg;
    s_raw_t one, two;
    s_reply_t reply;
    s_raw_open (&one, endpoint, "same-id", 0);
    s_raw_hello (&one, "one@raw");
    s_raw_await (&one, 0, &reply, 5000);
    s_raw_call (&one, 1, "add", 2, 1, 2);
    s_raw_await (&one, 1, &obs->first, 5000);
    s_raw_close (&one);
    //  Known routing id, new connection, no hello: refused.
    s_raw_open (&one, endpoint, "same-id", 0);
    s_raw_call (&one, 2, "add", 2, 3, 4);
    s_raw_await (&one, 2, &obs->again, 5000);
    s_raw_hello (&one, "one@raw");
    s_raw_await (&one, 0, &reply, 5000);
    //  A second connection with the id of one, still connected.
    s_raw_open (&two, endpoint, "same-id", 0);
    s_raw_hello (&two, "two@raw");
    s_raw_recv (&two, &obs->twin, 2000);
    s_raw_call (&one, 3, "add", 2, 5, 6);
    s_raw_await (&one, 3, &obs->held, 5000);
    s_raw_close (&two);
    //  While the actor's thread is held, one leaves and comes back with
    //  its id: the new connection's frame and the old one's end are read
    //  together afterwards, on the same descriptor number most likely.
    s_raw_call (&one, 4, "hog", 1, 500, 0);
    usleep (100 * 1000);
    s_raw_close (&one);
    s_raw_open (&one, endpoint, "same-id", 0);
    s_raw_call (&one, 5, "add", 2, 7, 8);
    s_raw_await (&one, 5, &obs->hogged, 2000);
    s_raw_close (&one);
}

START_TEST (a_new_connection_says_hello_again_whatever_its_routing_id)
{
    tr_config_t config = tu_config ();
    s_rid_t obs;
    memset (&obs, 0, sizeof obs);
    s_run (&config, s_rid_body, &obs);
    ck_assert (obs.first.got && obs.first.type == T_RETURN);
    ck_assert_msg (obs.again.got && obs.again.type == T_ERROR && obs.again.code == TR_EPROTO,
                   "no hello on a new connection: type %d code %d", obs.again.type,
                   obs.again.code);
    ck_assert_msg (strstr (obs.again.msg, "before hello"), "%s", obs.again.msg);
    //  The twin is never served as the first: refused, or not heard at all.
    ck_assert_msg (!obs.twin.got || obs.twin.type == T_ERROR, "the twin was answered %d",
                   obs.twin.type);
    ck_assert_msg (obs.held.got && obs.held.type == T_RETURN, "the first peer lost its channel");
    ck_assert_msg (!obs.hogged.got || obs.hogged.type == T_ERROR,
                   "a new connection was served under the old one's routing id");
    s_log_remove ();
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A peer of 1.4 has a routing id of its own: its frames are its own by
//  that id; a hello is still judged by its connection

typedef struct {
    s_reply_t first;                //  add, after hello
    s_reply_t twin;                 //  hello with the id of the connected peer
    s_reply_t held;                 //  the first still served
    s_reply_t again;                //  add from a new connection, no hello,
                                    //  once the first's departure is read
    int served_before;              //  such adds served before it was
    s_reply_t back;                 //  add, after hello on the new connection
} s_own_rid_t;

static void
s_own_rid_body (const char *endpoint, void *arg)
{
    s_own_rid_t *obs = arg;
    //  What a 1.4 peer uses: bytes nobody else knows.
    char rid [17];
    for (int i = 0; i < 16; i++)
        rid [i] = "0123456789abcdef" [rand () % 16];
    rid [0] = 'r';
    rid [16] = 0;
    s_raw_t one, two;
    s_reply_t reply;
    s_raw_open (&one, endpoint, rid, 0);
    s_raw_hello_minor (&one, "one@raw", 4);
    s_raw_await (&one, 0, &reply, 5000);
    s_raw_call (&one, 1, "add", 2, 1, 2);
    s_raw_await (&one, 1, &obs->first, 5000);
    s_raw_open (&two, endpoint, rid, 0);
    s_raw_hello_minor (&two, "two@raw", 4);
    s_raw_recv (&two, &obs->twin, 2000);
    s_raw_call (&one, 2, "add", 2, 3, 4);
    s_raw_await (&one, 2, &obs->held, 5000);
    s_raw_close (&two);
    s_raw_close (&one);
    //  Until the actor has read that the connection ended, a frame with
    //  the id may still go to the peer's channel (it is the same peer);
    //  after, a new connection says hello first.
    long long deadline = tu_now_ms () + tu_ms (5000);
    uint64_t cid = 3;
    while (tu_now_ms () < deadline) {
        s_raw_open (&one, endpoint, rid, 0);
        s_raw_call (&one, cid, "add", 2, 5, 6);
        if (s_raw_await (&one, cid, &obs->again, 2000) && obs->again.type == T_ERROR)
            break;
        if (obs->again.got)
            obs->served_before++;
        s_raw_close (&one);
        cid++;
    }
    s_raw_hello_minor (&one, "one@raw", 4);
    s_raw_await (&one, 0, &reply, 5000);
    s_raw_call (&one, 100, "add", 2, 7, 8);
    s_raw_await (&one, 100, &obs->back, 5000);
    s_raw_close (&one);
}

START_TEST (a_peer_of_1_4_is_known_by_its_own_routing_id_and_says_hello_on_a_new_connection)
{
    tr_config_t config = tu_config ();
    s_own_rid_t obs;
    memset (&obs, 0, sizeof obs);
    s_run (&config, s_own_rid_body, &obs);
    ck_assert_msg (obs.first.got && obs.first.type == T_RETURN, "first: type %d '%s'",
                   obs.first.type, obs.first.msg);
    ck_assert_msg (!obs.twin.got || obs.twin.type == T_ERROR, "the twin was answered %d",
                   obs.twin.type);
    ck_assert_msg (obs.held.got && obs.held.type == T_RETURN, "the first peer lost its channel");
    ck_assert_msg (obs.again.got && obs.again.type == T_ERROR && obs.again.code == TR_EPROTO,
                   "no hello on a new connection: type %d code %d, %d served before",
                   obs.again.type, obs.again.code, obs.served_before);
    ck_assert_msg (strstr (obs.again.msg, "before hello"), "%s", obs.again.msg);
    ck_assert_msg (obs.back.got && obs.back.type == T_RETURN, "after hello again: type %d '%s'",
                   obs.back.type, obs.back.msg);
    s_log_remove ();
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Bad frames: one warning a second per peer, and a count of the rest

typedef struct {
    int answered;
    int lines;
    char summary [2048];
} s_flood_t;

static void
s_flood_body (const char *endpoint, void *arg)
{
    s_flood_t *obs = arg;
    s_raw_t a, b;
    s_reply_t reply;
    s_raw_open (&a, endpoint, NULL, 0);
    s_raw_open (&b, endpoint, NULL, 0);
    s_raw_hello (&a, "a@raw");
    s_raw_await (&a, 0, &reply, 5000);
    s_raw_hello (&b, "b@raw");
    s_raw_await (&b, 0, &reply, 5000);
    //  Taking turns, 200 each: every one is still answered.
    for (int i = 0; i < 200; i++) {
        zmq_send (a.dealer, "\xc1", 1, 0);
        zmq_send (b.dealer, "\xc1", 1, 0);
        if (s_raw_recv (&a, &reply, 5000) && reply.type == T_ERROR)
            obs->answered++;
        if (s_raw_recv (&b, &reply, 5000) && reply.type == T_ERROR)
            obs->answered++;
    }
    //  A second later, the next one says what was kept back.
    usleep (1100 * 1000);
    zmq_send (a.dealer, "\xc1", 1, 0);
    s_raw_recv (&a, &reply, 5000);
    s_raw_close (&a);
    s_raw_close (&b);
}

START_TEST (a_flood_of_bad_frames_from_peers_taking_turns_is_logged_once_a_second)
{
    tr_config_t config = tu_config ();
    s_flood_t obs;
    memset (&obs, 0, sizeof obs);
    s_run (&config, s_flood_body, &obs);
    ck_assert_int_eq (obs.answered, 400);
    int lines = s_log_count ("TR-BAD-FRAME", obs.summary, sizeof obs.summary);
    //  A first warning each, perhaps one more each if the turns took over
    //  a second, and the summary.
    ck_assert_msg (lines >= 3 && lines <= 8, "%d warning lines for 401 bad frames", lines);
    ck_assert_int_ge (s_log_count ("more like this from a@raw suppressed", NULL, 0), 1);
    s_log_remove ();
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  SIGTERM ends a loaded daemon cleanly


//  Start tests/worker as a daemon with calls bounded at max_calls; read
//  its endpoint. Returns its pid.
static pid_t
s_daemon_start (int max_calls, char *endpoint, size_t size)
{
    int out [2];
    ck_assert_int_eq (pipe2 (out, O_CLOEXEC), 0);
    char *argv [] = { (char *) tu_worker_path (), "--tr-daemon", "--tr-name", "loaded", NULL };
    char calls [32];
    snprintf (calls, sizeof calls, "%d", max_calls);
    setenv ("TU_MAX_CALLS", calls, 1);
    pid_t pid = tu_spawn_tied (argv, out [1], -1, NULL);
    unsetenv ("TU_MAX_CALLS");
    ck_assert_int_ge (pid, 0);
    close (out [1]);
    char line [600];
    tu_read_first_line (out [0], line, sizeof line, 5000);
    char uid [256];
    ck_assert_int_eq (sscanf (line, "%255s %255s", uid, endpoint), 2);
    (void) size;
    return pid;
}

//  Park calls calls at the daemon from peers raw peers, and wait until the
//  last one's answer to a ping shows they were all read.
static void
s_load (s_raw_t *raw, int peers, const char *endpoint, int calls)
{
    s_reply_t reply;
    for (int p = 0; p < peers; p++) {
        s_raw_open (&raw [p], endpoint, NULL, 0);
        char uid [32];
        snprintf (uid, sizeof uid, "loader-%d@raw", p);
        s_raw_hello (&raw [p], uid);
        ck_assert (s_raw_await (&raw [p], 0, &reply, 5000));
        for (int i = 1; i <= calls / peers; i++)
            s_raw_call (&raw [p], (uint64_t) i, "sleep", 1, 600000, 0);
        //  [ping, cid, nil]: answered once every call before it was read.
        zmq_send (raw [p].dealer, "\x93\x0a\xcd\xff\xff\xc0", 6, 0);
        ck_assert_msg (s_raw_recv (&raw [p], &reply, 30000) && reply.cid == 0xffff,
                       "the load was not read: %s", reply.msg);
    }
}

START_TEST (sigterm_ends_a_loaded_daemon_cleanly)
{
    tu_subreaper ();
    //  Three times in a row: the abort it guards against came in two
    //  tries of three.
    int runs = 3, peers = 4, leave = 2;
    for (int run = 0; run < runs; run++) {
        char endpoint [256];
        pid_t pid = s_daemon_start (40000, endpoint, sizeof endpoint);
        s_raw_t raw [4];
        s_load (raw, peers, endpoint, 30000);
        //  Some of the peers leave: their calls are being cancelled as
        //  the signal comes.
        for (int p = 0; p < leave; p++)
            s_raw_close (&raw [p]);
        kill (pid, SIGTERM);
        int status = -1;
        long long deadline = tu_now_ms () + tu_ms (20000);
        while (waitpid (pid, &status, WNOHANG) == 0 && tu_now_ms () < deadline)
            usleep (10000);
        for (int p = leave; p < peers; p++)
            s_raw_close (&raw [p]);
        if (status == -1) {
            kill (pid, SIGKILL);
            waitpid (pid, &status, 0);
        }
        ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 143,
                       "run %d: the daemon ended with status 0x%x (signal %d)", run, status,
                       WIFSIGNALED (status)? WTERMSIG (status): 0);
    }
    tu_assert_no_procs_left (2000);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("bounds");
    TCase *tc = tcase_create ("bounds");
    tcase_set_timeout (tc, 60);
    tcase_add_test (tc, calls_over_the_bounds_are_refused_and_a_leaving_peer_frees_its_share);
    tcase_add_test (tc, a_call_over_the_bound_fails_at_the_caller_with_elimit);
    tcase_add_test (tc, a_peer_that_does_not_read_its_answers_is_disconnected);
    tcase_add_test (tc, a_new_connection_says_hello_again_whatever_its_routing_id);
    tcase_add_test (tc, a_peer_of_1_4_is_known_by_its_own_routing_id_and_says_hello_on_a_new_connection);
    tcase_add_test (tc, a_flood_of_bad_frames_from_peers_taking_turns_is_logged_once_a_second);
    tcase_add_test (tc, sigterm_ends_a_loaded_daemon_cleanly);
    suite_add_tcase (s, tc);
    SRunner *sr = srunner_create (s);
    srunner_run_all (sr, CK_NORMAL);
    int failed = srunner_ntests_failed (sr);
    srunner_free (sr);
    return failed? EXIT_FAILURE: EXIT_SUCCESS;
}
