/*  =========================================================================
    serve.c - the callee's side of a call: export tables and serving tasks

    A cmd that no endpoint holds comes here from the channel layer. Only
    functions in an export table can be called; anything else is answered
    with NotExposed, naming the function and the actor. A served call is
    an endpoint on the caller's channel: a cancel with its cid cancels its
    task, and the channel's close cancels it too (nobody is left to read
    the answer). An answer we would refuse to read is replaced by an error
    saying why.

    A function exported as TR_CONTEXT is served the same way, with the
    callee's side of the context besides: tr_ctx_started sends the first
    value and makes the stream live, the stream's frames are routed to
    it, and rule 1 is kept here: started exactly once, before the stream
    opens. A breach is recorded on the served call and is its answer,
    whatever the function returns after it.

    A function exported as TR_STREAM is served as a context whose started
    is sent here, with a nil first value, before the function runs: its
    caller learns at once that it runs (or why it does not), and the
    function only sends on its stream and returns. For it, tr_ctx_started
    is a breach.

    Calls served at once are bounded per peer and per actor (each holds a
    task and its guarded stack): the call over a bound is refused with
    TooManyCalls. A large answer waits while its caller has more than its
    budget waiting for it already (channel.c).
    =========================================================================
*/
#include "troupe_private.h"

#define TRI_INTERNAL_TABLES 8

//  A task serving one cmd.
typedef struct {
    tri_endpoint_t ep;              //  TRI_DIR_IN, the caller's cid
    tri_channel_t *channel;         //  to answer on
    const tr_export_t *export;
    tri_msg_t *msg;                 //  the cmd; args point into it
    const msgpack_object *args;
    tr_ctx_t ctx;
    tr_reply_t reply;
    int rc;                         //  for TR_THREAD functions
    bool cancel_asked;              //  the caller sent cancel
    tri_node_t node;                //  in s_serve.all
    //  a context (export kind TR_CONTEXT or TR_STREAM)
    bool context;
    bool one_way;                   //  TR_STREAM: the runtime sends started
    bool started;                   //  tr_ctx_started sent the first value
    tr_error_t *breach;             //  of rule 1: the answer, whatever fn returns
    tr_stream_t stream;
} serve_t;

static struct {
    tri_spares_t spares;            //  records of ended calls
    const tr_export_t *user;
    const tr_export_t *internal [TRI_INTERNAL_TABLES];
    size_t ninternal;
    bool stopping;
    tri_list_t all;
    int count;                      //  calls in all
} s_serve = { .spares = { NULL, 0, TRI_SPARES_MAX }, .all = { &s_serve.all, &s_serve.all } };

//  --------------------------------------------------------------------------
//  Export tables

static const tr_export_t *
s_lookup (const tr_export_t *table, const char *name)
{
    for (const tr_export_t *e = table; e && e->name; e++)
        if (streq (e->name, name))
            return e;
    return NULL;
}

static const tr_export_t *
s_find_export (const char *name)
{
    if (strncmp (name, "tr.", 3) == 0) {
        for (size_t i = 0; i < s_serve.ninternal; i++) {
            const tr_export_t *e = s_lookup (s_serve.internal [i], name);
            if (e)
                return e;
        }
        return NULL;
    }
    return s_lookup (s_serve.user, name);
}

int
tri_serve_add_internal (const tr_export_t *table)
{
    if (s_serve.ninternal == TRI_INTERNAL_TABLES)
        return TR_ENOMEM;
    s_serve.internal [s_serve.ninternal++] = table;
    return 0;
}

//  --------------------------------------------------------------------------
//  Serving

static serve_t *
s_serve_alloc (void)
{
    serve_t *self = tri_spares_pop (&s_serve.spares);
    if (!self)
        return calloc (1, sizeof *self);
    memset (self, 0, sizeof *self);
    return self;
}

static void
s_serve_free (serve_t *self)
{
    if (!tri_spares_push (&s_serve.spares, self))
        free (self);
}

static void
s_on_message (tri_endpoint_t *ep, tri_msg_t *msg)
{
    serve_t *self = tri_list_entry (ep, serve_t, ep);
    if (msg->type == TRI_CANCEL) {
        self->cancel_asked = true;
        tri_task_cancel (self->ctx.task);
        tri_msg_destroy (&msg);
        return;
    }
    //  yield, stop, credit: the caller's side of a context's stream.
    char why [256];
    int rc;
    uint64_t cid = msg->cid;
    if (!self->context) {
        rc = tri_why (why, sizeof why, TR_EPROTO, "%s (cid %llu) was not expected: it is "
                      "a plain call", tri_msg_type_name (msg->type), (unsigned long long) cid);
        tri_msg_destroy (&msg);
    }
    else
    if (self->one_way && msg->type == TRI_YIELD) {
        rc = tri_why (why, sizeof why, TR_EPROTO, "yield (cid %llu) was not expected: a one-way "
                      "stream carries values from its callee only", (unsigned long long) cid);
        tri_msg_destroy (&msg);
    }
    else
        rc = tri_stream_on_frame (&self->stream, msg, why, sizeof why);
    if (rc) {
        tri_channel_log_bad (self->channel, why);
        tri_channel_reply_error (self->channel, cid, rc, "ProtocolError", "%s", why);
    }
}

static void
s_on_failed (tri_endpoint_t *ep, const tr_error_t *why)
{
    serve_t *self = tri_list_entry (ep, serve_t, ep);
    if (self->context)
        tri_stream_end (&self->stream, tr_error_code (why), why);
    tri_task_cancel (self->ctx.task);
}

static const tri_endpoint_ops_t s_ops = { s_on_message, s_on_failed };

//  What a breach of rule 1 says it broke: in a context function, and in
//  a stream function, whose started the runtime sends.
#define TRI_RULE1 "started comes exactly once, before the stream opens (rule 1)"
#define TRI_RULE1_STREAM "a stream function is started by the runtime, never by " \
                         "tr_ctx_started (rule 1)"

//  Record a breach of rule 1 on the served context (the first one is its
//  answer) and return TR_EPROTO. rule says which.
static int
s_breach (serve_t *self, const char *rule, const char *fmt, ...) TR_PRINTF (3, 4);

static int
s_breach (serve_t *self, const char *rule, const char *fmt, ...)
{
    char text [256];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (text, sizeof text, fmt, ap);
    va_end (ap);
    tr_error_t *err = tri_error_new (TR_EPROTO, "ProtocolError", tri_uid (), "%s: %s",
                                     text, rule);
    if (!err)
        return TR_EPROTO;
    tri_error_capture_frames (err, 2);
    if (!self->breach)
        self->breach = tr_error_dup (err);
    return tri_ctx_fail (NULL, err);
}

static void *
s_serve_in_thread (void *arg)
{
    serve_t *self = arg;
    self->rc = self->export->fn (&self->ctx, self->args, &self->reply);
    return NULL;
}

static void
s_release_request (void *data, void *hint)
{
    (void) data;
    zmq_msg_close (hint);
    free (hint);
}

static void
s_reply_no_memory (serve_t *self)
{
    tri_channel_reply_error (self->channel, self->ep.cid, TR_ENOMEM, "NoMemory",
                             "no memory for the result of %s", self->export->name);
}

//  Answer with the call's own arguments, from the request: the return
//  head is written over the cmd head just in front of them, and the
//  request's buffer leaves as the answer. False when the request is
//  small enough to copy (or its head is not laid out as expected).
static bool
s_reply_echo (serve_t *self)
{
    zmq_msg_t *request = &self->msg->frame;
    size_t size = zmq_msg_size (request);
    tri_frame_t head;
    if (size <= sizeof head.local)
        return false;
    size_t at = tri_msg_cmd_args_at (zmq_msg_data (request), size);
    tri_frame_begin (&head, TRI_RETURN, self->ep.cid);
    zmq_msg_t *keep = NULL;
    if (at < head.size || head.failed || !(keep = malloc (sizeof *keep))) {
        tri_frame_fini (&head);
        return false;
    }
    //  The args were checked when the request came; the head is ours.
    zmq_msg_init (keep);
    zmq_msg_move (keep, request);
    char *start = (char *) zmq_msg_data (keep) + at - head.size;
    memcpy (start, head.data, head.size);
    size_t length = size - at + head.size;
    tri_frame_fini (&head);
    zmq_msg_t answer;
    if (zmq_msg_init_data (&answer, start, length, s_release_request, keep)) {
        s_release_request (NULL, keep);
        s_reply_no_memory (self);
        return true;
    }
    tri_channel_send_msg (self->channel, &answer);
    return true;
}

//  A large answer waits while more than max_queued_bytes wait for the
//  caller already, up to the heartbeat timeout: a caller that reads
//  slowly gets it late, one that does not read is disconnected. Returns
//  true if it may go.
static bool
s_await_room (serve_t *self, size_t size)
{
    tri_channel_t *channel = self->channel;
    const tr_config_t *config = tri_config ();
    int64_t deadline = tri_after_ms (config->heartbeat_timeout_ms);
    while (!tri_channel_closed (channel)) {
        size_t queued = tri_channel_queued (channel);
        if (!queued || queued + size <= config->max_queued_bytes)
            return true;
        if (tri_now_us () >= deadline) {
            tri_channel_overflow (channel);
            return false;
        }
        if (tr_sleep (&self->ctx, 2))
            return false;
    }
    return false;
}

static void
s_reply (serve_t *self, int rc)
{
    tri_channel_t *channel = self->channel;
    uint64_t cid = self->ep.cid;
    if (rc == TR_ECANCELED && (self->cancel_asked || s_serve.stopping)) {
        tri_channel_send_empty (channel, TRI_ACK, cid);
        return;
    }
    if (self->context && rc == 0 && !self->started && !self->breach)
        s_breach (self, TRI_RULE1, "context function '%s' returned without calling "
                  "tr_ctx_started", self->export->name);
    if (self->breach) {
        tri_channel_send_error (channel, cid, self->breach);
        return;
    }
    if (rc) {
        tr_error_t *err = tri_ctx_reply_error (&self->ctx, rc, self->export->name);
        if (err)
            tri_channel_send_error (channel, cid, err);
        tr_error_destroy (&err);
        return;
    }
    if (self->reply.echo) {
        if (s_reply_echo (self))
            return;
        if (!(self->reply.value = tr_args_from_object (self->args))) {
            s_reply_no_memory (self);
            return;
        }
    }
    tri_frame_t frame;
    tri_frame_begin (&frame, TRI_RETURN, cid);
    tr_args_t *value = self->reply.value;
    char why [256];
    if (value && tri_args_len (value) > sizeof frame.local) {
        //  A large result leaves in its own buffer: the frame's head goes
        //  into the room kept in front of the value.
        assert (frame.size <= TRI_ARGS_HEADROOM);
        char *start = value->sbuf.data + TRI_ARGS_HEADROOM - frame.size;
        memcpy (start, frame.data, frame.size);
        size_t size = frame.size + tri_args_len (value);
        int bad = tri_args_check (value, frame.size, 1, tri_limits (), why, sizeof why);
        tri_frame_fini (&frame);
        if (bad)
            tri_channel_reply_error (channel, cid, bad, tri_msg_rc_type (bad), "result of %s: %s",
                                     self->export->name, why);
        else
        if (s_await_room (self, size)) {
            char *base = value->sbuf.data;
            value->sbuf.data = NULL;
            value->sbuf.size = value->sbuf.alloc = 0;
            tri_channel_send_owned (channel, base, start, size);
        }
        return;
    }
    if (value && tri_args_len (value))
        tri_frame_write (&frame, tri_args_bytes (value), tri_args_len (value));
    else
        msgpack_pack_nil (&frame.pk);
    int bad = tri_frame_check_args (&frame, value, 1, tri_limits (), why, sizeof why);
    if (bad) {
        tri_frame_fini (&frame);
        tri_channel_reply_error (channel, cid, bad, tri_msg_rc_type (bad), "result of %s: %s",
                                 self->export->name, why);
    }
    else
        tri_channel_send (channel, &frame);
}

static int s_send_started (serve_t *self, const tr_args_t *first);

static void
s_serve_main (void *arg)
{
    serve_t *self = arg;
    //  A stream function is started before it runs; it does not run if
    //  its caller is gone or cancelled it first.
    int rc = self->one_way? s_send_started (self, NULL): 0;
    if (rc == 0 && (self->export->flags & TR_THREAD)) {
        //  Shielded: the thread uses our args and reply until it ends; it
        //  sees the cancel through tr_checkpoint.
        rc = tri_task_to_thread (s_serve_in_thread, self, NULL, true);
        if (rc == 0)
            rc = self->rc;
    }
    else
    if (rc == 0)
        rc = self->export->fn (&self->ctx, self->args, &self->reply);
    tri_ctx_end (&self->ctx);
    //  The answer ends the stream on both sides: no stop is needed.
    if (self->context)
        tri_stream_end (&self->stream, TR_ECLOSED, NULL);
    //  Unbound: the channel closed, nobody reads an answer.
    if (tri_endpoint_bound (&self->ep))
        s_reply (self, rc);
    tri_endpoint_unbind (&self->ep);
    tri_node_unlink (&self->node);
    s_serve.count--;
    if (self->context) {
        //  Another task of ours may still be inside a call on the stream.
        tri_stream_quiesce (&self->stream);
        tri_stream_fini (&self->stream);
        tr_error_destroy (&self->breach);
    }
    tri_ctx_clear (&self->ctx);
    tr_args_destroy (&self->reply.value);
    tri_msg_destroy (&self->msg);
    tri_channel_unref (&self->channel);
    s_serve_free (self);
}

//  Why export cannot be served as the kind the cmd asked for, or NULL.
static const char *
s_wrong_kind (const tr_export_t *export, tr_kind_t kind)
{
    static const char *asked [] = { "a plain call", "a context function", "a one-way stream" };
    if (export->kind != TR_CALL && (export->flags & TR_THREAD))
        return export->kind == TR_CONTEXT
            ? "is a context exported with TR_THREAD: a context runs on the actor's thread"
            : "is a one-way stream exported with TR_THREAD: a stream runs on the actor's thread";
    if (export->kind == kind)
        return NULL;
    static char why [128];
    switch (export->kind) {
        case TR_CONTEXT:
            snprintf (why, sizeof why, "is a context function, not %s: open it with "
                      "tr_portal_open_context", asked [kind]);
            break;
        case TR_STREAM:
            snprintf (why, sizeof why, "is a one-way stream, not %s: open it with "
                      "tr_portal_open_stream_from", asked [kind]);
            break;
        default:
            snprintf (why, sizeof why, "is a plain call, not %s: call it with tr_portal_run",
                      asked [kind]);
            break;
    }
    return why;
}

//  Refuse a call over a bound: TooManyCalls, logged once a second at
//  most (the caller learns it from its answer).
static void
s_refuse (tri_channel_t *channel, uint64_t cid, const char *fmt, ...) TR_PRINTF (3, 4);

static void
s_refuse (tri_channel_t *channel, uint64_t cid, const char *fmt, ...)
{
    static int64_t logged = -1;
    static unsigned suppressed = 0;
    char why [512];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (why, sizeof why, fmt, ap);
    va_end (ap);
    int64_t now = tri_now_ms ();
    if (logged < 0 || now - logged >= 1000) {
        if (suppressed)
            tri_log_warn ("TR-LIMIT", "%s (%u more like this suppressed)", why, suppressed);
        else
            tri_log_warn ("TR-LIMIT", "%s", why);
        logged = now;
        suppressed = 0;
    }
    else
        suppressed++;
    tri_channel_reply_error (channel, cid, TR_ELIMIT, "TooManyCalls", "%s", why);
}

static void
s_on_request (tri_channel_t *channel, tri_msg_t *msg)
{
    const char *fn;
    const msgpack_object *args;
    tr_kind_t kind;
    char why [256];
    if (tri_msg_read_cmd (msg, &fn, &args, &kind, why, sizeof why)) {
        tri_channel_reply_error (channel, msg->cid, TR_EPROTO, "ProtocolError", "%s", why);
        goto done;
    }
    const tr_export_t *export = s_find_export (fn);
    if (!export) {
        tri_channel_reply_error (channel, msg->cid, TR_ENOTEXPOSED, "NotExposed",
                                 "function '%s' is not exported by actor %s", fn, tri_uid ());
        goto done;
    }
    const char *wrong = s_wrong_kind (export, kind);
    if (wrong) {
        tri_channel_reply_error (channel, msg->cid, TR_EPROTO, "ProtocolError",
                                 "function '%s' of actor %s %s", fn, tri_uid (), wrong);
        goto done;
    }
    if (s_serve.stopping) {
        tri_channel_reply_error (channel, msg->cid, TR_ECANCELED, "Cancelled",
                                 "actor %s is shutting down", tri_uid ());
        goto done;
    }
    //  Each call served holds a task and its guarded stack (two memory
    //  maps): one peer must not take them all, nor every peer together
    //  the process's last maps.
    const tr_config_t *config = tri_config ();
    if (tri_channel_in_count (channel) >= config->max_calls_per_peer) {
        s_refuse (channel, msg->cid, "%s has %d calls in progress at actor %s, the most one "
                  "peer may have: call %s refused", tri_channel_uid (channel),
                  config->max_calls_per_peer, tri_uid (), fn);
        goto done;
    }
    if (s_serve.count >= config->max_calls) {
        s_refuse (channel, msg->cid, "actor %s serves %d calls, the most it may: call %s "
                  "refused", tri_uid (), config->max_calls, fn);
        goto done;
    }
    serve_t *self = s_serve_alloc ();
    if (!self)
        goto nomem;
    self->export = export;
    self->args = args;
    self->reply.args = args;
    if (tri_endpoint_bind (&self->ep, channel, msg->cid, TRI_DIR_IN, &s_ops)) {
        s_serve_free (self);
        goto nomem;
    }
    tri_task_t *task = tri_task_new (s_serve_main, self, export->stack_size, false);
    if (!task) {
        tri_endpoint_unbind (&self->ep);
        s_serve_free (self);
        goto nomem;
    }
    self->msg = msg;
    self->channel = channel;
    tri_channel_ref (channel);
    tri_ctx_init (&self->ctx, task);
    self->ctx.served = self;
    if (export->kind != TR_CALL) {
        self->context = true;
        self->one_way = export->kind == TR_STREAM;
        tri_stream_init (&self->stream, channel, msg->cid, TRI_SIDE_CALLEE, NULL);
    }
    tri_list_push_back (&s_serve.all, &self->node);
    s_serve.count++;
    return;
nomem:
    tri_channel_reply_error (channel, msg->cid, TR_ENOMEM, "NoMemory",
                             "actor %s is out of memory", tri_uid ());
done:
    tri_msg_destroy (&msg);
}

//  --------------------------------------------------------------------------
//  The channel the call that ctx serves came on, or NULL.

tri_channel_t *
tri_serve_caller (tr_ctx_t *ctx)
{
    serve_t *self = ctx? ctx->served: NULL;
    return self? self->channel: NULL;
}

//  --------------------------------------------------------------------------
//  The callee's side of a context

//  The context the task of ctx serves, or NULL.
static serve_t *
s_served_context (tr_ctx_t *ctx)
{
    serve_t *self = ctx? ctx->served: NULL;
    return self && self->context? self: NULL;
}

int
tr_ctx_started (tr_ctx_t *ctx, const tr_args_t *first)
{
    serve_t *self = s_served_context (ctx);
    if (!self || ctx != tri_ctx_current ())
        return TR_EINVAL;
    if (self->one_way)
        return s_breach (self, TRI_RULE1_STREAM, "tr_ctx_started was called in stream "
                         "function '%s'", self->export->name);
    if (self->started)
        return s_breach (self, TRI_RULE1, "tr_ctx_started was called twice in '%s'",
                         self->export->name);
    return s_send_started (self, first);
}

//  Send started with first (NULL: nil); the stream is live.
static int
s_send_started (serve_t *self, const tr_args_t *first)
{
    if (tri_task_cancelled (self->ctx.task))
        return TR_ECANCELED;
    if (!tri_endpoint_bound (&self->ep))
        return TR_ECLOSED;
    tri_frame_t frame;
    tri_frame_begin (&frame, TRI_STARTED, self->ep.cid);
    size_t size = first? tri_args_len (first): 0;
    tri_frame_reserve (&frame, frame.size + (size? size: 1));
    if (size)
        tri_frame_write (&frame, tri_args_bytes (first), size);
    else
        msgpack_pack_nil (&frame.pk);
    char why [256];
    int rc = tri_frame_check_args (&frame, first, 1, tri_limits (), why, sizeof why);
    if (rc) {
        tri_frame_fini (&frame);
        return tri_ctx_fail (NULL, tri_error_new (rc, tri_msg_rc_type (rc), tri_uid (),
                                                  "first value of %s: %s", self->export->name, why));
    }
    if ((rc = tri_channel_send (self->channel, &frame)))
        return rc;
    //  The function goes on running, maybe for long without parking: the
    //  caller is waiting for this, so it leaves now, whatever is ready.
    tri_channel_flush (self->channel);
    self->started = true;
    tri_stream_start (&self->stream);
    return 0;
}

int
tr_ctx_open_stream (tr_ctx_t *ctx, tr_stream_t **stream)
{
    if (stream)
        *stream = NULL;
    serve_t *self = s_served_context (ctx);
    if (!self || !stream)
        return TR_EINVAL;
    if (!self->started)
        return s_breach (self, TRI_RULE1, "tr_ctx_open_stream was called before "
                         "tr_ctx_started in '%s'", self->export->name);
    int rc = tri_stream_open (&self->stream);
    if (rc == 0)
        *stream = &self->stream;
    return rc;
}

//  --------------------------------------------------------------------------

void
tri_serve_start (const tr_export_t *exports)
{
    s_serve.user = exports;
    s_serve.stopping = false;
    tri_channel_on_request (s_on_request);
}

void
tri_serve_stop (void)
{
    s_serve.stopping = true;
    tri_list_each (node, next, &s_serve.all)
        tri_task_cancel (tri_list_entry (node, serve_t, node)->ctx.task);
}

void
tri_serve_reset (void)
{
    assert (tri_list_empty (&s_serve.all));
    tri_spares_drain (&s_serve.spares, free);
    s_serve.user = NULL;
    s_serve.ninternal = 0;
    s_serve.stopping = false;
}
