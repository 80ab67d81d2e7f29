/*  =========================================================================
    stream.c - one side of a context's stream: values in order both ways,
    with credit flow control

    A sender may have at most the receiver's window of values unread:
    each side starts with TRI_STREAM_CREDIT0 credits to spend (the
    protocol's), and a receiver grants more with credit frames as its
    user reads, in batches (when half its window is free, it tops the
    peer up), so a stream in full flow costs one credit frame per half
    window, and a context that streams little costs none. A slow reader therefore bounds what is queued on both sides,
    and a sender out of credit parks in send, where a cancel still
    reaches it. Values received are kept in the order they came in a ring
    the size of the window; a peer that sends past its credit breaks the
    protocol and its value is dropped.

    Either side's close (stop) ends the stream both ways: the other side
    reads what was sent before it and then TR_ECLOSED, and its sends
    return TR_ECLOSED. The end of the context ends it too, with the
    context's outcome. The caller's side of a one-way stream only
    receives, and its close is its context's (the context layer's).
    =========================================================================
*/
#include "troupe_private.h"

void
tri_stream_init (tr_stream_t *self, tri_channel_t *channel, uint64_t cid, int side,
                 const void *source)
{
    memset (self, 0, sizeof *self);
    self->channel = channel;
    self->cid = cid;
    self->side = side;
    self->source = source;
    self->credit = TRI_STREAM_CREDIT0;
    self->peer_credit = TRI_STREAM_CREDIT0;
    self->window = (uint32_t) tri_config ()->stream_window;
    tri_waitq_init (&self->readers);
    tri_waitq_init (&self->writers);
    tri_waitq_init (&self->idle);
}

void
tri_stream_enter (tr_stream_t *self)
{
    self->users++;
}

int
tri_stream_leave (tr_stream_t *self, int rc)
{
    if (--self->users == 0)
        tri_waitq_wake_all (&self->idle, 0);
    return rc;
}

void
tri_stream_quiesce (tr_stream_t *self)
{
    while (self->users > 0)
        tri_waitq_wait_shielded (&self->idle, -1);
}

static void
s_drop_unread (tr_stream_t *self)
{
    while (self->queued) {
        tri_msg_destroy (&self->ring [self->head]);
        self->head = (self->head + 1) % self->window;
        self->queued--;
    }
    tri_msg_destroy (&self->current);
    self->count = 0;
}

void
tri_stream_fini (tr_stream_t *self)
{
    assert (self->users == 0);
    assert (tri_waitq_empty (&self->readers) && tri_waitq_empty (&self->writers));
    if (self->ring)
        s_drop_unread (self);
    tri_msg_destroy (&self->current);
    free (self->ring);
    self->ring = NULL;
    tr_error_destroy (&self->end_error);
}

//  [stop, cid, [side, nil]] or [credit, cid, [side, n]]
static int
s_send_control (tr_stream_t *self, tri_type_t type, uint64_t n)
{
    tri_frame_t frame;
    tri_frame_begin (&frame, type, self->cid);
    msgpack_pack_array (&frame.pk, 2);
    msgpack_pack_uint8 (&frame.pk, (uint8_t) self->side);
    if (type == TRI_CREDIT)
        msgpack_pack_uint64 (&frame.pk, n);
    else
        msgpack_pack_nil (&frame.pk);
    return tri_channel_send (self->channel, &frame);
}

//  Top the peer's credit up to our window once the values it may still
//  send and those we have not read fall to below.
static void
s_grant (tr_stream_t *self, uint32_t below)
{
    if (!self->live || self->closed || self->ended || self->peer_stopped)
        return;
    uint32_t outstanding = self->peer_credit + self->count;
    if (outstanding > below || outstanding >= self->window)
        return;
    uint32_t more = self->window - outstanding;
    self->peer_credit += more;
    s_send_control (self, TRI_CREDIT, more);
}

void
tri_stream_start (tr_stream_t *self)
{
    if (self->live)
        return;
    self->live = true;
    if (!self->ring && !(self->ring = calloc (self->window, sizeof *self->ring))) {
        //  Receive nothing: a peer's value will be refused, not lost
        //  silently.
        self->window = 0;
        return;
    }
}

int
tri_stream_open (tr_stream_t *self)
{
    if (self->closed)
        return TR_ECLOSED;
    self->opened = true;
    return 0;
}

int
tri_stream_on_frame (tr_stream_t *self, tri_msg_t *msg, char *why, size_t why_size)
{
    int rc = 0;
    const msgpack_object *value = &msg->body.via.array.ptr [1];
    switch (msg->type) {
        case TRI_YIELD:
            if (!self->live) {
                rc = tri_why (why, why_size, TR_EPROTO, "yield (cid %llu) before started",
                              (unsigned long long) self->cid);
                break;
            }
            //  After our close, values still on their way are dropped.
            if (self->closed || self->ended)
                break;
            if (self->peer_stopped) {
                rc = tri_why (why, why_size, TR_EPROTO, "yield (cid %llu) after stop",
                              (unsigned long long) self->cid);
                break;
            }
            {
                uint32_t values = msg->body.via.array.size - 1;
                if (values > self->peer_credit || self->queued == self->window) {
                    rc = tri_why (why, why_size, TR_EPROTO,
                                  "yield (cid %llu) beyond the credit granted (window %u)",
                                  (unsigned long long) self->cid, self->window);
                    break;
                }
                self->peer_credit -= values;
                self->ring [(self->head + self->queued) % self->window] = msg;
                self->queued++;
                self->count += values;
            }
            tri_waitq_wake_one (&self->readers, 0);
            return 0;
        case TRI_STOP:
            if (!self->live) {
                rc = tri_why (why, why_size, TR_EPROTO, "stop (cid %llu) before started",
                              (unsigned long long) self->cid);
                break;
            }
            self->peer_stopped = true;
            tri_waitq_wake_all (&self->readers, 0);
            tri_waitq_wake_all (&self->writers, 0);
            break;
        case TRI_CREDIT:
            if (value->type != MSGPACK_OBJECT_POSITIVE_INTEGER
            ||  value->via.u64 > UINT32_MAX - self->credit) {
                rc = tri_why (why, why_size, TR_EPROTO, "credit (cid %llu) is not a count",
                              (unsigned long long) self->cid);
                break;
            }
            self->credit += (uint32_t) value->via.u64;
            tri_waitq_wake_all (&self->writers, 0);
            break;
        default:
            assert (false);
    }
    tri_msg_destroy (&msg);
    return rc;
}

void
tri_stream_end (tr_stream_t *self, int rc, const tr_error_t *err)
{
    if (self->ended)
        return;
    self->ended = true;
    self->end_rc = rc;
    self->end_error = err? tr_error_dup (err): NULL;
    tri_waitq_wake_all (&self->readers, 0);
    tri_waitq_wake_all (&self->writers, 0);
}

void
tri_stream_shut (tr_stream_t *self)
{
    if (self->closed)
        return;
    self->closed = true;
    self->opened = false;
    if (self->live && !self->ended && !self->peer_stopped)
        s_send_control (self, TRI_STOP, 0);
    if (self->ring)
        s_drop_unread (self);
    tri_waitq_wake_all (&self->readers, 0);
    tri_waitq_wake_all (&self->writers, 0);
}

//  --------------------------------------------------------------------------
//  The user's side

//  What a stream that has ended returns, recorded on the task.
static int
s_ended (tr_stream_t *self)
{
    if (self->ended && self->end_error)
        return tri_ctx_fail (self->source, tr_error_dup (self->end_error));
    return self->ended? self->end_rc: TR_ECLOSED;
}

static int s_send_value (tr_stream_t *self, const tr_args_t *value);

int
tr_stream_send (tr_stream_t *self, const tr_args_t *value)
{
    if (!self || !self->opened || self->one_way || !tri_task_current ())
        return TR_EINVAL;
    tri_stream_enter (self);
    return tri_stream_leave (self, s_send_value (self, value));
}

static int
s_send_value (tr_stream_t *self, const tr_args_t *value)
{
    while (true) {
        if (tri_task_cancelled (tri_task_current ()))
            return TR_ECANCELED;
        if (self->closed || self->peer_stopped || self->ended || !self->live)
            return self->ended? s_ended (self): TR_ECLOSED;
        if (self->credit)
            break;
        int rc = tri_waitq_wait (&self->writers, -1);
        if (rc)
            return rc;
    }
    //  The value's bytes, checked once for all the frames they go into
    //  (at nesting 2: [yield, cid, [side, value ...]]).
    static const uint8_t nil = 0xc0;
    const void *body = &nil;
    size_t body_size = 1;
    if (value && tri_args_len (value)) {
        char why [256];
        int rc = tri_args_check ((tr_args_t *) value, 16, 2, tri_limits (), why, sizeof why);
        if (rc)
            return tri_ctx_fail (self->source, tri_error_new (rc, tri_msg_rc_type (rc), tri_uid (),
                                                              "stream value: %s", why));
        body = tri_args_bytes (value);
        body_size = tri_args_len (value);
    }
    self->credit--;
    int rc = tri_channel_send_value (self->channel, self->cid, self->side, body, body_size);
    return rc == TR_ECLOSED && self->ended? s_ended (self): rc;
}

int
tr_stream_send_pack (tr_stream_t *self, const char *fmt, ...)
{
    if (!self || !fmt)
        return TR_EINVAL;
    va_list ap;
    va_start (ap, fmt);
    tr_args_t *value = tr_vpack (fmt, ap);
    va_end (ap);
    if (!value)
        return TR_EFORMAT;
    int rc = tr_stream_send (self, value);
    tr_args_destroy (&value);
    return rc;
}

static int s_recv_value (tr_stream_t *self, const msgpack_object **value, int timeout_ms);

int
tr_stream_recv (tr_stream_t *self, const msgpack_object **value, int timeout_ms)
{
    if (value)
        *value = NULL;
    if (!self || !value || !self->opened || !tri_task_current ())
        return TR_EINVAL;
    tri_stream_enter (self);
    return tri_stream_leave (self, s_recv_value (self, value, timeout_ms));
}

static int
s_recv_value (tr_stream_t *self, const msgpack_object **value, int timeout_ms)
{
    int64_t deadline = tri_deadline (timeout_ms);
    while (!self->count) {
        if (tri_task_cancelled (tri_task_current ()))
            return TR_ECANCELED;
        if (self->closed || self->peer_stopped || self->ended)
            return self->ended? s_ended (self): TR_ECLOSED;
        if (timeout_ms == 0)
            return TR_ETIMEDOUT;
        int rc = tri_waitq_wait (&self->readers, deadline);
        if (rc)
            return rc;
    }
    if (tri_task_cancelled (tri_task_current ()))
        return TR_ECANCELED;
    //  The values of one frame in turn, then the next frame; the value
    //  handed out before lives as long as its frame.
    if (!self->current || self->current_at == self->current->body.via.array.size) {
        tri_msg_destroy (&self->current);
        self->current = self->ring [self->head];
        self->ring [self->head] = NULL;
        self->head = (self->head + 1) % self->window;
        self->queued--;
        self->current_at = 1;
    }
    *value = &self->current->body.via.array.ptr [self->current_at++];
    self->count--;
    s_grant (self, self->window / 2);
    return 0;
}

static void (*s_close_owner) (tr_stream_t *self) = NULL;

void
tri_stream_on_close_owner (void (*fn) (tr_stream_t *self))
{
    s_close_owner = fn;
}

int
tr_stream_close (tr_stream_t **self_p)
{
    if (!self_p)
        return TR_EINVAL;
    tr_stream_t *self = *self_p;
    if (self && self->one_way) {
        //  It owns its context: closing it may wait for a cancel's ack.
        if (!tri_task_current ())
            return TR_EINVAL;
        *self_p = NULL;
        assert (s_close_owner);
        s_close_owner (self);
        return 0;
    }
    *self_p = NULL;
    if (self)
        tri_stream_shut (self);
    return 0;
}
