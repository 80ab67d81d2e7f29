/*  =========================================================================
    call.c - the caller's side of a call

    tri_call_start sends a cmd under a fresh cid and binds an endpoint for
    it; the channel routes every answer with that cid here. The call ends
    with its final message (return, error, or the ack of a cancel) or with
    a failure: the channel closed and its drain period passed, or the
    answer could not be read. Every frame a plain call gets is final; a
    context or a one-way stream, which gets many, is an endpoint of its
    own kind with its own operations and its own queue of frames
    (context.c, stream.c).
    =========================================================================
*/
#include "troupe_private.h"

struct tri_call {
    tri_endpoint_t ep;
    tri_channel_t *channel;     //  kept for the peer's name after unbind
    tri_msg_t *answer;          //  the final message, or NULL
    tr_error_t *failure;        //  why it ended without one
    bool done;
    tri_waitq_t waiters;
    void (*on_done) (tri_call_t *call, void *arg);
    void *arg;
};

//  Records of ended calls, kept for the next (runtime thread only).
static tri_spares_t s_spares = { NULL, 0, TRI_SPARES_MAX };

static tri_call_t *
s_call_alloc (void)
{
    tri_call_t *self = tri_spares_pop (&s_spares);
    if (!self)
        return calloc (1, sizeof *self);
    memset (self, 0, sizeof *self);
    return self;
}

static void
s_call_free (tri_call_t *self)
{
    if (!tri_rt_running () || !tri_spares_push (&s_spares, self))
        free (self);
}

void
tri_call_spares_free (void)
{
    tri_spares_drain (&s_spares, free);
}

static void
s_done (tri_call_t *self)
{
    self->done = true;
    tri_endpoint_unbind (&self->ep);
    tri_waitq_wake_all (&self->waiters, 0);
    if (self->on_done)
        self->on_done (self, self->arg);
}

static void
s_on_message (tri_endpoint_t *ep, tri_msg_t *msg)
{
    tri_call_t *self = tri_list_entry (ep, tri_call_t, ep);
    if (msg->type != TRI_RETURN && msg->type != TRI_ERROR && msg->type != TRI_ACK) {
        //  started, yield, stop, credit: a plain call has no stream.
        tri_channel_reply_error (self->channel, msg->cid, TR_EPROTO, "ProtocolError",
                                 "%s (cid %llu) was not expected: it is a plain call",
                                 tri_msg_type_name (msg->type), (unsigned long long) msg->cid);
        tri_msg_destroy (&msg);
        return;
    }
    //  Every answer a plain call gets is final.
    self->answer = msg;
    s_done (self);
}

static void
s_on_failed (tri_endpoint_t *ep, const tr_error_t *why)
{
    tri_call_t *self = tri_list_entry (ep, tri_call_t, ep);
    self->failure = tr_error_dup (why);
    s_done (self);
}

static const tri_endpoint_ops_t s_ops = { s_on_message, s_on_failed };

int
tri_call_send_cmd (tri_channel_t *channel, uint64_t cid, const char *fn,
                   const tr_args_t *args, tr_kind_t kind, tr_error_t **error)
{
    tri_frame_t frame;
    tri_frame_cmd (&frame, cid, fn, args, kind);
    //  What we would refuse to read, we do not send: the call fails here.
    //  [cmd, cid, [fn, args]]: args at level 2.
    char why [256];
    int rc = tri_frame_check_args (&frame, args, 2, tri_limits (), why, sizeof why);
    if (rc) {
        tri_frame_fini (&frame);
        if (error)
            *error = tri_error_new (rc, tri_msg_rc_type (rc), tri_uid (), "call of %s: %s", fn, why);
        return rc;
    }
    return tri_channel_send (channel, &frame);
}

int
tri_call_start (tri_channel_t *channel, const char *fn, const tr_args_t *args,
                tri_call_t **call_p, tr_error_t **error)
{
    *call_p = NULL;
    if (error)
        *error = NULL;
    tri_call_t *self = s_call_alloc ();
    if (!self)
        return TR_ENOMEM;
    tri_waitq_init (&self->waiters);
    uint64_t cid = tri_cid_next ();
    int rc = tri_endpoint_bind (&self->ep, channel, cid, TRI_DIR_OUT, &s_ops);
    if (rc) {
        s_call_free (self);
        return rc;
    }
    self->channel = channel;
    tri_channel_ref (channel);
    rc = tri_call_send_cmd (channel, cid, fn, args, TR_CALL, error);
    if (rc) {
        tri_call_destroy (&self);
        return rc;
    }
    *call_p = self;
    return 0;
}

int
tri_call_wait (tri_call_t *self, int64_t deadline)
{
    while (!self->done) {
        int rc = tri_waitq_wait (&self->waiters, deadline);
        if (rc && !self->done)
            return rc;
    }
    return 0;
}

int
tri_call_wait_shielded (tri_call_t *self, int64_t deadline)
{
    while (!self->done) {
        int rc = tri_waitq_wait_shielded (&self->waiters, deadline);
        if (rc && !self->done)
            return rc;
    }
    return 0;
}

void
tri_call_cancel (tri_call_t *self)
{
    if (self->done)
        return;
    //  Cancellation is acknowledged, never just dropped.
    if (tri_channel_send_empty (self->channel, TRI_CANCEL, self->ep.cid))
        return;
    int64_t deadline = tri_after_ms (tri_config ()->cancel_ack_ms);
    while (!self->done && tri_waitq_wait_shielded (&self->waiters, deadline) != TR_ETIMEDOUT)
        ;
}

void
tri_call_on_done (tri_call_t *self, void (*fn) (tri_call_t *call, void *arg), void *arg)
{
    self->on_done = fn;
    self->arg = arg;
}

int
tri_call_outcome (tri_call_t *self, tr_value_t **out, tr_error_t **error)
{
    assert (self->done);
    *error = NULL;
    if (self->failure) {
        *error = self->failure;
        self->failure = NULL;
        return tr_error_code (*error);
    }
    assert (self->answer);
    const char *peer = tri_channel_uid (self->channel);
    switch (self->answer->type) {
        case TRI_RETURN:
            if (out)
                *out = tri_msg_to_value (&self->answer);
            return 0;
        case TRI_ERROR:
            *error = tri_error_unpack (&self->answer->body, peer);
            return *error? tr_error_code (*error): TR_ENOMEM;
        case TRI_ACK:
            *error = tri_error_new (TR_ECANCELED, "Cancelled", peer,
                                    "the call was cancelled in %s", peer);
            return TR_ECANCELED;
        default:
            *error = tri_error_new (TR_EPROTO, "ProtocolError", peer, "unexpected %s",
                                    tri_msg_type_name (self->answer->type));
            return TR_EPROTO;
    }
}

void
tri_call_destroy (tri_call_t **self_p)
{
    tri_call_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    assert (tri_waitq_empty (&self->waiters));
    tri_endpoint_unbind (&self->ep);
    tri_channel_unref (&self->channel);
    tri_msg_destroy (&self->answer);
    tr_error_destroy (&self->failure);
    s_call_free (self);
}
