/*  =========================================================================
    context.c - the caller's side of a context, and gather

    A context is an endpoint (TRI_DIR_OUT, a fresh cid) like a call, with
    more to it: the callee's first value (started), the caller's side of
    the stream, and the final message (return, error, or the ack of a
    cancel) or the failure that ended it. The callee's side lives with the
    served call (serve.c).

    Opening waits for started, or for the end that came instead (the
    callee failed first). A cancel is acknowledged, never just dropped:
    tr_context_cancel, the close of a context still running, and the
    cancel of a task waiting on one all send it and wait, bounded, for
    the ack. Gather (rule 10) sends every cmd before it waits for any
    first value, and every cancel before it waits for any ack.

    A one-way stream (tr_portal_open_stream_from) is a context opened with
    kind TR_STREAM whose handle the user never gets: the stream, embedded
    here, is what the user holds, and its close, result and error are the
    context's. So a stream from a function ends as a context does: its
    result comes back, a close cancels a callee still running and waits
    for the ack, and a task that ends with one open closes it.
    =========================================================================
*/
#include "troupe_private.h"

struct tr_context {
    tri_endpoint_t ep;
    tri_channel_t *channel;     //  kept for the peer's name after unbind
    char *fn;
    bool one_way;               //  opened as a one-way stream: the user
                                //  holds only its stream
    tri_msg_t *first;           //  the started frame
    tri_msg_t *final;           //  return, error or ack
    tr_error_t *failure;        //  why it ended without one
    bool started;
    bool done;
    bool cancel_sent;
    bool judged;                //  rc and error hold the outcome
    int rc;
    tr_error_t *error;
    tri_waitq_t waiters;        //  for started or the end
    tr_stream_t stream;
    tri_node_t node;            //  in its opening task's held list
};

//  What the user opened, for messages.
static const char *
s_noun (const tr_context_t *self)
{
    return self->one_way? "stream from": "context";
}

//  --------------------------------------------------------------------------
//  What comes from the callee

//  The outcome of an ended context, judged once.
static int
s_judge (tr_context_t *self)
{
    assert (self->done);
    if (self->judged)
        return self->rc;
    self->judged = true;
    const char *peer = tri_channel_uid (self->channel);
    if (self->failure) {
        self->error = tr_error_dup (self->failure);
        self->rc = tr_error_code (self->failure);
    }
    else
    if (self->final->type == TRI_RETURN)
        self->rc = 0;
    else
    if (self->final->type == TRI_ERROR) {
        self->error = tri_error_unpack (&self->final->body, peer);
        self->rc = self->error? tr_error_code (self->error): TR_ENOMEM;
    }
    else {
        self->error = tri_error_new (TR_ECANCELED, "ContextCancelled", peer,
                                     "%s %s in %s was cancelled", s_noun (self), self->fn,
                                     peer);
        self->rc = TR_ECANCELED;
    }
    return self->rc;
}

static void
s_end (tr_context_t *self)
{
    self->done = true;
    tri_endpoint_unbind (&self->ep);
    int rc = s_judge (self);
    tri_stream_end (&self->stream, rc? rc: TR_ECLOSED, self->error);
    tri_waitq_wake_all (&self->waiters, 0);
}

//  The callee broke the protocol: tell it, cancel its task, and end the
//  context with the breach.
static void
s_breach (tr_context_t *self, const char *why)
{
    tri_channel_log_bad (self->channel, why);
    tri_channel_reply_error (self->channel, self->ep.cid, TR_EPROTO, "ProtocolError", "%s", why);
    if (self->done)
        return;
    tri_channel_send_empty (self->channel, TRI_CANCEL, self->ep.cid);
    self->failure = tri_error_new (TR_EPROTO, "ProtocolError", tri_channel_uid (self->channel),
                                   "%s %s in %s: %s", s_noun (self), self->fn,
                                   tri_channel_uid (self->channel), why);
    s_end (self);
}

static void
s_on_message (tri_endpoint_t *ep, tri_msg_t *msg)
{
    tr_context_t *self = tri_list_entry (ep, tr_context_t, ep);
    char why [256];
    int rc;
    switch (msg->type) {
        case TRI_STARTED:
            if (self->started) {
                tri_why (why, sizeof why, TR_EPROTO, "started (cid %llu) came twice",
                         (unsigned long long) msg->cid);
                tri_msg_destroy (&msg);
                s_breach (self, why);
                return;
            }
            self->started = true;
            self->first = msg;
            tri_stream_start (&self->stream);
            tri_waitq_wake_all (&self->waiters, 0);
            return;
        case TRI_YIELD:
        case TRI_STOP:
        case TRI_CREDIT:
            if (!self->started) {
                tri_why (why, sizeof why, TR_EPROTO, "%s (cid %llu) came before started",
                         tri_msg_type_name (msg->type), (unsigned long long) msg->cid);
                tri_msg_destroy (&msg);
                s_breach (self, why);
                return;
            }
            if ((rc = tri_stream_on_frame (&self->stream, msg, why, sizeof why))) {
                tri_channel_log_bad (self->channel, why);
                tri_channel_reply_error (self->channel, self->ep.cid, rc, "ProtocolError",
                                         "%s", why);
            }
            return;
        default:
            //  return, error, ack: the end.
            self->final = msg;
            s_end (self);
            return;
    }
}

static void
s_on_failed (tri_endpoint_t *ep, const tr_error_t *why)
{
    tr_context_t *self = tri_list_entry (ep, tr_context_t, ep);
    self->failure = tr_error_dup (why);
    s_end (self);
}

static const tri_endpoint_ops_t s_ops = { s_on_message, s_on_failed };

//  --------------------------------------------------------------------------
//  Make, cancel, free

static void
s_destroy (tr_context_t **self_p)
{
    tr_context_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    assert (tri_waitq_empty (&self->waiters));
    tri_node_unlink (&self->node);
    tri_endpoint_unbind (&self->ep);
    tri_stream_fini (&self->stream);
    tri_channel_unref (&self->channel);
    tri_msg_destroy (&self->first);
    tri_msg_destroy (&self->final);
    tr_error_destroy (&self->failure);
    tr_error_destroy (&self->error);
    free (self->fn);
    free (self);
}

//  The task of ctx ends: close what it left open (the remote tasks are
//  cancelled and their acks awaited), all together.
static void
s_close_left (tr_ctx_t *ctx)
{
    tri_list_t *held = tri_ctx_held (ctx);
    while (!tri_list_empty (held)) {
        tr_context_t *left [16];
        size_t n = 0;
        tri_list_each (node, next, held) {
            if (n == sizeof left / sizeof left [0])
                break;
            left [n] = tri_list_entry (node, tr_context_t, node);
            tri_log_debug ("TR-CONTEXT", "%s %s left open: closed", s_noun (left [n]),
                           left [n]->fn);
            n++;
        }
        tr_contexts_close (left, n);
    }
}

static void s_close_one_way (tr_stream_t *stream);

//  Send the cmd of fn(args) on the portal's channel, as a context or a
//  one-way stream (kind). On failure the reason is recorded on the task
//  against the portal.
static int
s_start (tr_portal_t *portal, const char *fn, const tr_args_t *args, tr_kind_t kind,
         tr_context_t **self_p)
{
    *self_p = NULL;
    int rc;
    tri_channel_t *channel = tri_portal_channel (portal, &rc);
    if (!channel)
        return rc;
    tr_context_t *self = calloc (1, sizeof *self);
    if (!self || !(self->fn = strdup (fn))) {
        free (self);
        return TR_ENOMEM;
    }
    self->one_way = kind == TR_STREAM;
    tri_waitq_init (&self->waiters);
    tri_node_init (&self->node);
    tr_ctx_t *owner = tri_ctx_current ();
    if (owner)
        tri_list_push_back (tri_ctx_held (owner), &self->node);
    tri_ctx_on_end (s_close_left);
    tri_stream_on_close_owner (s_close_one_way);
    uint64_t cid = tri_cid_next ();
    self->channel = channel;
    tri_channel_ref (channel);
    tri_stream_init (&self->stream, channel, cid, TRI_SIDE_CALLER, self);
    tr_error_t *error = NULL;
    if ((rc = tri_endpoint_bind (&self->ep, channel, cid, TRI_DIR_OUT, &s_ops)) == 0)
        rc = tri_call_send_cmd (channel, cid, fn, args, kind, &error);
    if (rc) {
        s_destroy (&self);
        if (rc == TR_ECLOSED && !error) {
            tri_portal_channel (portal, &rc);
            return rc? rc: TR_ECLOSED;
        }
        return error? tri_ctx_fail (portal, error): rc;
    }
    *self_p = self;
    return 0;
}

//  Send the cancel, once, unless the context has ended.
static void
s_send_cancel (tr_context_t *self)
{
    if (self->done || self->cancel_sent)
        return;
    self->cancel_sent = true;
    if (tri_channel_send_empty (self->channel, TRI_CANCEL, self->ep.cid))
        return;             //  the channel closed: the end comes by itself
}

//  Wait, shielded, until the context has ended or the deadline passed.
static bool
s_await_end (tr_context_t *self, int64_t deadline)
{
    while (!self->done)
        if (tri_waitq_wait_shielded (&self->waiters, deadline) == TR_ETIMEDOUT)
            break;
    return self->done;
}

//  Wait until started or the end. Cancelled, the remote task is cancelled
//  and its ack awaited.
static int
s_await_started (tr_context_t *self)
{
    while (!self->started && !self->done) {
        int rc = tri_waitq_wait (&self->waiters, -1);
        if (rc == TR_ECANCELED) {
            s_send_cancel (self);
            s_await_end (self, tri_after_ms (tri_config ()->cancel_ack_ms));
            return TR_ECANCELED;
        }
    }
    return 0;
}

//  A failed open: the reason recorded against the portal.
static int
s_open_failed (tr_portal_t *portal, tr_context_t *self, int rc)
{
    const char *peer = tri_channel_uid (self->channel);
    if (rc == TR_ECANCELED)
        return tri_ctx_fail (portal, tri_error_new (TR_ECANCELED, "Cancelled", tri_uid (),
                             "opening %s %s in %s cancelled", s_noun (self), self->fn,
                             peer));
    rc = s_judge (self);
    return self->error? tri_ctx_fail (portal, tr_error_dup (self->error)): rc;
}

//  --------------------------------------------------------------------------
//  The caller's API

int
tr_portal_open_context (tr_portal_t *portal, const char *fn, const tr_args_t *args,
                        tr_context_t **context, const msgpack_object **first)
{
    if (context)
        *context = NULL;
    if (first)
        *first = NULL;
    if (!portal || !fn || !context || !tri_task_current ())
        return TR_EINVAL;
    return tr_contexts_open (&portal, 1, fn, args, context, first);
}

static int s_open (tr_portal_t *const *portals, size_t n, const char *fn,
                   const tr_args_t *args, tr_kind_t kind, tr_context_t **contexts,
                   const msgpack_object **firsts);

int
tr_contexts_open (tr_portal_t *const *portals, size_t n, const char *fn,
                  const tr_args_t *args, tr_context_t **contexts,
                  const msgpack_object **firsts)
{
    return s_open (portals, n, fn, args, TR_CONTEXT, contexts, firsts);
}

//  Open fn(args) as kind on each of n portals: every cmd leaves before
//  any started is awaited; one failure closes them all.
static int
s_open (tr_portal_t *const *portals, size_t n, const char *fn, const tr_args_t *args,
        tr_kind_t kind, tr_context_t **contexts, const msgpack_object **firsts)
{
    if (!portals || !n || !fn || !contexts || !tri_task_current ())
        return TR_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!portals [i])
            return TR_EINVAL;
        contexts [i] = NULL;
        if (firsts)
            firsts [i] = NULL;
    }
    //  Every request leaves before any reply is awaited.
    int rc = 0;
    size_t failed = n;
    for (size_t i = 0; i < n && !rc; i++)
        if ((rc = s_start (portals [i], fn, args, kind, &contexts [i])))
            failed = i;
    for (size_t i = 0; i < n && !rc; i++) {
        if ((rc = s_await_started (contexts [i])))
            failed = i;
        else
        if (!contexts [i]->started)
            rc = s_open_failed (portals [failed = i], contexts [i], 0);
    }
    if (rc == TR_ECANCELED && failed < n && contexts [failed])
        s_open_failed (portals [failed], contexts [failed], rc);
    if (!rc) {
        for (size_t i = 0; i < n && firsts; i++)
            firsts [i] = &contexts [i]->first->body;
        return 0;
    }
    //  One failed: the others are cancelled and closed together.
    tr_contexts_close (contexts, n);
    return rc;
}

int
tr_context_open_stream (tr_context_t *self, tr_stream_t **stream)
{
    if (stream)
        *stream = NULL;
    if (!self || !stream)
        return TR_EINVAL;
    int rc = tri_stream_open (&self->stream);
    if (rc == 0)
        *stream = &self->stream;
    return rc;
}

static int s_result (tr_context_t *self, const msgpack_object **value);

int
tr_context_result (tr_context_t *self, const msgpack_object **value)
{
    if (value)
        *value = NULL;
    if (!self || !tri_task_current ())
        return TR_EINVAL;
    tri_stream_enter (&self->stream);
    return tri_stream_leave (&self->stream, s_result (self, value));
}

static int
s_result (tr_context_t *self, const msgpack_object **value)
{
    while (!self->done) {
        int rc = tri_waitq_wait (&self->waiters, -1);
        if (rc == TR_ECANCELED) {
            //  Nobody will wait for it any more: cancel the remote task.
            s_send_cancel (self);
            s_await_end (self, tri_after_ms (tri_config ()->cancel_ack_ms));
            return tri_ctx_fail (self, tri_error_new (TR_ECANCELED, "Cancelled", tri_uid (),
                                 "waiting for %s %s cancelled", s_noun (self), self->fn));
        }
    }
    int rc = s_judge (self);
    if (rc)
        return self->error? tri_ctx_fail (self, tr_error_dup (self->error)): rc;
    if (value)
        *value = &self->final->body;
    return 0;
}

int
tr_context_cancel (tr_context_t *self)
{
    if (!self || !tri_task_current ())
        return TR_EINVAL;
    if (self->done)
        return 0;
    s_send_cancel (self);
    tri_stream_enter (&self->stream);
    bool ended = s_await_end (self, tri_after_ms (tri_config ()->cancel_ack_ms));
    return tri_stream_leave (&self->stream, ended? 0: TR_ETIMEDOUT);
}

int
tr_context_close (tr_context_t **self_p)
{
    if (!self_p)
        return TR_EINVAL;
    if (!*self_p)
        return 0;
    return tr_contexts_close (self_p, 1);
}

int
tr_contexts_close (tr_context_t **contexts, size_t n)
{
    if (!contexts || !tri_task_current ())
        return TR_EINVAL;
    //  Every cancel leaves before any ack is awaited. The cancel ends the
    //  remote side of the stream too: no stop is sent.
    for (size_t i = 0; i < n; i++)
        if (contexts [i]) {
            s_send_cancel (contexts [i]);
            tri_stream_end (&contexts [i]->stream, TR_ECLOSED, NULL);
            tri_stream_shut (&contexts [i]->stream);
        }
    int64_t deadline = tri_after_ms (tri_config ()->cancel_ack_ms);
    for (size_t i = 0; i < n; i++)
        if (contexts [i]) {
            tr_context_t *self = contexts [i];
            if (!s_await_end (self, deadline)) {
                const char *peer = tri_channel_uid (self->channel);
                tri_log_warn ("TR-CANCEL-ACK", "%s %s in %s: no ack in %d ms",
                              s_noun (self), self->fn, peer, tri_config ()->cancel_ack_ms);
                //  Given up on: it ends here, for every task waiting on it.
                self->failure = tri_error_new (TR_ETIMEDOUT, "Cancelled", peer,
                                               "%s %s in %s: no ack to its cancel in %d ms",
                                               s_noun (self), self->fn, peer,
                                               tri_config ()->cancel_ack_ms);
                s_end (self);
            }
            //  Tasks still inside a call on it leave before it is freed.
            tri_stream_quiesce (&self->stream);
            s_destroy (&contexts [i]);
        }
    return 0;
}

const tr_error_t *
tr_context_error (const tr_context_t *self)
{
    return self? tri_ctx_error_of (self): NULL;
}

//  --------------------------------------------------------------------------
//  One-way streams: the user holds the stream, the context is its owner

static tr_context_t *
s_owner (const tr_stream_t *stream)
{
    assert (stream->one_way);
    return tri_list_entry (stream, tr_context_t, stream);
}

static void
s_close_one_way (tr_stream_t *stream)
{
    tr_context_t *self = s_owner (stream);
    tr_context_close (&self);
}

int
tr_portal_open_stream_from (tr_portal_t *portal, const char *fn, const tr_args_t *args,
                            tr_stream_t **stream)
{
    if (stream)
        *stream = NULL;
    if (!portal || !fn || !stream || !tri_task_current ())
        return TR_EINVAL;
    tr_context_t *self;
    int rc = s_open (&portal, 1, fn, args, TR_STREAM, &self, NULL);
    if (rc)
        return rc;
    //  Not closed yet: the open cannot fail.
    self->stream.one_way = true;
    tri_stream_open (&self->stream);
    *stream = &self->stream;
    return 0;
}

int
tr_stream_result (tr_stream_t *self, const msgpack_object **value)
{
    if (value)
        *value = NULL;
    if (!self || !self->one_way)
        return TR_EINVAL;
    return tr_context_result (s_owner (self), value);
}

const tr_error_t *
tr_stream_error (const tr_stream_t *self)
{
    return self && self->one_way? tr_context_error (s_owner (self)): NULL;
}
