/*  =========================================================================
    channel.c - one peer: its state, what we send it, what it sends us

    A channel is a peer that connected to our ROUTER (known by its routing
    id, keyed in the runtime's table as hex), or a DEALER of ours: to our
    parent, or a portal opened on an endpoint. Frames are decoded once here
    and routed by (channel, cid): a cmd starts a serving task (actor.c), an
    answer completes a pending call (portal.c), a cancel reaches a served
    task or the whole actor. A channel whose peer is gone fails its pending
    calls after the drain period (rule 3), so answers already on their way
    still arrive; bad frames are answered with errors and never with
    silence, errors never with errors.
    =========================================================================
*/
#include "troupe_private.h"
#include <czmq.h>
#include <unistd.h>

//  Frames read from one socket before the loop runs tasks again.
#define TRI_BATCH 64

//  --------------------------------------------------------------------------
//  Channels

//  A routing id as hex, the key of the runtime's table; out holds
//  2 * size + 1 bytes.
static void
s_hex_into (char *out, const uint8_t *data, size_t size)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out [2 * i] = digits [data [i] >> 4];
        out [2 * i + 1] = digits [data [i] & 15];
    }
    out [size * 2] = 0;
}

static char *
s_hex (const uint8_t *data, size_t size)
{
    char *hex = malloc (size * 2 + 1);
    if (hex)
        s_hex_into (hex, data, size);
    return hex;
}

tri_channel_t *
tri_channel_new (void *socket, const uint8_t *rid, size_t rid_size)
{
    tri_channel_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->socket = socket;
    self->drain_deadline = -1;
    self->refs = 1;
    if (rid_size) {
        memcpy (self->rid, rid, rid_size);
        self->rid_size = rid_size;
    }
    if (!(self->key = s_hex (rid, rid_size))) {
        free (self);
        return NULL;
    }
    return self;
}

void
tri_channel_ref (tri_channel_t *self)
{
    assert (self);
    self->refs++;
}

void
tri_channel_unref (tri_channel_t **self_p)
{
    assert (self_p);
    tri_channel_t *self = *self_p;
    *self_p = NULL;
    if (!self || --self->refs > 0)
        return;
    assert (!self->calls && !self->serves);
    if (tri_rt && tri_rt->last_channel == self)
        tri_rt->last_channel = NULL;
    tr_error_destroy (&self->death);
    free (self->key);
    free (self->uid);
    free (self->endpoint);
    free (self);
}

//  The flag that says a socket was touched, or NULL for a socket the loop
//  always asks.
bool *
tri_socket_used_flag (void *socket)
{
    if (socket == tri_rt->router)
        return &tri_rt->router_used;
    for (tri_channel_t *d = tri_rt->dealers; d; d = d->next_dealer) {
        if (d->socket == socket)
            return &d->used;
        if (d->monitor == socket)
            return &d->monitor_used;
    }
    return NULL;
}

//  Note that the socket was used: its fd may no longer signal a message.
static void
s_socket_used (void *socket)
{
    bool *used = tri_socket_used_flag (socket);
    if (used)
        *used = true;
}

static int
s_send_raw (void *socket, const uint8_t *rid, size_t rid_size,
            const void *data, size_t size)
{
    s_socket_used (socket);
    if (rid_size && zmq_send (socket, rid, rid_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    return zmq_send (socket, data, size, ZMQ_DONTWAIT) < 0? -1: 0;
}

int
tri_channel_send (tri_channel_t *self)
{
    tri_rt_t *rt = tri_rt;
    int rc = 0;
    if (self->closed)
        rc = TR_ECLOSED;
    else
    if (s_send_raw (self->socket, self->rid, self->rid_size, rt->sbuf.data, rt->sbuf.size)) {
        tri_log_debug ("TR-SEND", "send to %s failed: %s",
                       self->uid? self->uid: self->key, zmq_strerror (errno));
        rc = TR_ECLOSED;
        if (errno == EHOSTUNREACH)
            tri_channel_close (self, tri_error_new (TR_ECLOSED, "Closed", self->uid,
                               "%s is no longer connected", self->uid? self->uid: "peer"),
                               self->child != NULL);
    }
    msgpack_sbuffer_clear (&rt->sbuf);
    return rc;
}

int
tri_channel_send_empty (tri_channel_t *self, tri_type_t type, uint64_t cid)
{
    tri_msg_begin (&tri_rt->pk, type, cid);
    msgpack_pack_nil (&tri_rt->pk);
    return tri_channel_send (self);
}

int
tri_channel_send_error (tri_channel_t *self, uint64_t cid, const tr_error_t *err)
{
    tri_msg_begin (&tri_rt->pk, TRI_ERROR, cid);
    tri_error_pack (&tri_rt->pk, err);
    return tri_channel_send (self);
}

//  An error message to a channel, or to a peer we hold no channel for.
static int
s_reply_errorv (void *socket, const uint8_t *rid, size_t rid_size,
                tri_channel_t *channel, uint64_t cid, int code, const char *type,
                const char *fmt, va_list ap)
{
    tri_rt_t *rt = tri_rt;
    tr_error_t *err = tri_error_newv (code, type, rt->actor.uid, fmt, ap);
    if (!err)
        return TR_ENOMEM;
    int rc = 0;
    if (channel)
        rc = tri_channel_send_error (channel, cid, err);
    else {
        tri_msg_begin (&rt->pk, TRI_ERROR, cid);
        tri_error_pack (&rt->pk, err);
        if (s_send_raw (socket, rid, rid_size, rt->sbuf.data, rt->sbuf.size))
            rc = TR_ECLOSED;
        msgpack_sbuffer_clear (&rt->sbuf);
    }
    tr_error_destroy (&err);
    return rc;
}

int
tri_channel_reply_error (tri_channel_t *self, uint64_t cid, int code,
                         const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    int rc = s_reply_errorv (NULL, NULL, 0, self, cid, code, type, fmt, ap);
    va_end (ap);
    return rc;
}

static int
s_reply_error_raw (void *socket, const uint8_t *rid, size_t rid_size, uint64_t cid,
                   int code, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    int rc = s_reply_errorv (socket, rid, rid_size, NULL, cid, code, type, fmt, ap);
    va_end (ap);
    return rc;
}

//  Fail every pending call on a closed channel.
static void
s_channel_fail_calls (tri_channel_t *self)
{
    tr_error_t *why = self->death;
    tr_error_t *fallback = NULL;
    if (!why)
        why = fallback = tri_error_new (TR_ECLOSED, "Closed", self->uid,
                                        "channel to %s closed", self->uid? self->uid: "peer");
    while (self->calls)
        tri_call_fail (self->calls, why);
    tr_error_destroy (&fallback);
    self->drain_deadline = -1;
}

void
tri_channel_close (tri_channel_t *self, tr_error_t *death, bool drain)
{
    tri_rt_t *rt = tri_rt;
    if (death) {
        tr_error_destroy (&self->death);
        self->death = death;
    }
    if (self->closed)
        return;
    self->closed = true;
    if (self->ack_waiter)
        tri_task_wake (self->ack_waiter, TR_ECLOSED);
    tri_serve_channel_closed (self);
    if (drain && self->calls) {
        //  Answers the peer sent before it went may still be queued
        //  (rule 3): give them the drain period.
        self->drain_deadline = tri_now_ms () + rt->config.drain_ms;
        tri_channel_ref (self);
        self->next_dying = rt->dying;
        rt->dying = self;
    }
    else
        s_channel_fail_calls (self);
}

void
tri_channels_expire (int64_t now)
{
    tri_channel_t **link = &tri_rt->dying;
    while (*link) {
        tri_channel_t *channel = *link;
        if (!channel->calls || now >= channel->drain_deadline) {
            *link = channel->next_dying;
            s_channel_fail_calls (channel);
            tri_channel_unref (&channel);
        }
        else
            link = &channel->next_dying;
    }
}

int64_t
tri_channels_deadline (void)
{
    int64_t deadline = -1;
    for (tri_channel_t *c = tri_rt->dying; c; c = c->next_dying)
        deadline = tri_deadline_min (deadline, c->drain_deadline);
    return deadline;
}

//  --------------------------------------------------------------------------
//  Incoming frames

//  Log a peer's bad frame once per peer at warning level, then at debug.
//  Peers that never said hello have no name: their warnings are limited
//  to one a second, so a flood of garbage cannot flood the log.
static void
s_log_bad (tri_channel_t *channel, const char *who, const char *why)
{
    static char last_peer [512];
    static int64_t last_unknown = -1;
    bool repeated;
    if (channel && channel->uid) {
        repeated = streq (last_peer, channel->uid);
        snprintf (last_peer, sizeof last_peer, "%s", channel->uid);
    }
    else {
        int64_t now = tri_now_ms ();
        repeated = last_unknown >= 0 && now - last_unknown < 1000;
        if (!repeated)
            last_unknown = now;
    }
    if (repeated)
        tri_log_debug ("TR-BAD-FRAME", "%s: %s", who, why);
    else
        tri_log_warn ("TR-BAD-FRAME", "%s: %s", who, why);
}

static void
s_on_hello (const uint8_t *rid, size_t rid_size, tri_msg_t *msg)
{
    tri_rt_t *rt = tri_rt;
    tri_hello_t hello;
    char why [256];
    if (tri_msg_read_hello (msg, &hello, why, sizeof why)) {
        s_log_bad (NULL, "hello", why);
        s_reply_error_raw (rt->router, rid, rid_size, msg->cid, TR_EPROTO, "ProtocolError", "%s", why);
        return;
    }
    if (hello.major != TR_PROTOCOL_MAJOR) {
        tri_log_warn ("TR-VERSION", "%s speaks protocol %d.%d, this actor speaks %d.%d: refused",
                      hello.uid, hello.major, hello.minor, TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR);
        s_reply_error_raw (rt->router, rid, rid_size, msg->cid, TR_EVERSION, "VersionMismatch",
                           "peer %s speaks protocol %d.%d, %s speaks %d.%d",
                           hello.uid, hello.major, hello.minor, rt->actor.uid,
                           TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR);
        tri_child_t *child = tri_child_hello (hello.uid, NULL);
        if (child && child->hello_waiter)
            tri_task_wake (child->hello_waiter, TR_EVERSION);
        return;
    }
    tri_channel_t *channel = tri_channel_new (rt->router, rid, rid_size);
    if (!channel || !(channel->uid = strdup (hello.uid))
    ||  !(channel->endpoint = strdup (hello.endpoint))) {
        if (channel)
            tri_channel_unref (&channel);
        return;
    }
    channel->pid = (int) hello.pid;
    zhashx_insert (rt->channels, channel->key, channel);
    rt->last_channel = channel;
    tri_log_debug ("TR-HELLO", "hello from %s at %s", channel->uid, channel->endpoint);
    //  Answer with ours, so the peer knows who and what version we are.
    tri_hello_t mine = { TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR, rt->actor.uid,
                         rt->actor.endpoint, (int64_t) getpid () };
    tri_msg_begin (&rt->pk, TRI_HELLO, 0);
    tri_msg_pack_hello (&rt->pk, &mine);
    tri_channel_send (channel);
    tri_child_hello (channel->uid, channel);
}

//  Actor cancel requested by a peer (cid 0): cancel everything, ack when
//  every task has ended (actor.c's loop end sends it).
static void
s_on_actor_cancel (tri_channel_t *channel)
{
    tri_rt_t *rt = tri_rt;
    tri_log_debug ("TR-CANCEL", "%s asked us to cancel", channel->uid);
    if (!rt->cancel_from) {
        rt->cancel_from = channel;
        tri_channel_ref (channel);
    }
    rt->stopping = true;
    tri_actor_cancel_all ();
}

static void
s_dispatch (tri_channel_t *channel, tri_msg_t *msg)
{
    tri_rt_t *rt = tri_rt;
    switch (msg->type) {
        case TRI_CMD:
            tri_serve_cmd (channel, msg);
            return;
        case TRI_RETURN:
        case TRI_ERROR:
        case TRI_ACK:
            if (msg->type == TRI_ACK && msg->cid == 0) {
                channel->acked = true;
                if (channel->ack_waiter)
                    tri_task_wake (channel->ack_waiter, 0);
                break;
            }
            if (msg->cid == 0 || msg->cid > rt->next_cid) {
                //  Never answer an error with an error: two actors would
                //  trade them forever.
                if (msg->type == TRI_ERROR) {
                    tr_error_t *err = tri_error_unpack (&msg->body, channel->uid);
                    tri_log_warn ("TR-PEER-ERROR", "%s reports: %s: %s", channel->uid,
                                  err? err->type: "?", err? err->message: "?");
                    tr_error_destroy (&err);
                }
                else {
                    s_log_bad (channel, channel->uid, "answer to a call never made");
                    tri_channel_reply_error (channel, msg->cid, TR_EPROTO, "ProtocolError",
                                             "%s for cid %llu, which %s never sent",
                                             tri_msg_type_name (msg->type),
                                             (unsigned long long) msg->cid, rt->actor.uid);
                }
                break;
            }
            tri_call_answer (msg->cid, msg, channel);
            return;
        case TRI_CANCEL:
            if (msg->cid == 0)
                s_on_actor_cancel (channel);
            else
                tri_serve_cancel (channel, msg->cid);
            break;
        case TRI_PING:
            tri_channel_send_empty (channel, TRI_PONG, msg->cid);
            break;
        case TRI_PONG:
            break;
        case TRI_HELLO:
            s_log_bad (channel, channel->uid, "second hello");
            tri_channel_reply_error (channel, msg->cid, TR_EPROTO, "ProtocolError",
                                     "hello already received from %s", channel->uid);
            break;
        default:
            s_log_bad (channel, channel->uid, "unexpected message type");
            tri_channel_reply_error (channel, msg->cid, TR_EPROTO, "ProtocolError",
                                     "%s (cid %llu) was not expected: no stream or context "
                                     "is open with that cid", tri_msg_type_name (msg->type),
                                     (unsigned long long) msg->cid);
            break;
    }
    tri_msg_destroy (&msg);
}

//  A frame that could not be decoded. An answer to one of our calls fails
//  that call here, so its caller does not wait forever; a request is
//  answered with an error under its cid; an error is never answered.
static void
s_bad_frame (tri_channel_t *channel, void *socket, const uint8_t *rid, size_t rid_size,
             int rc, const char *why, int type, uint64_t cid)
{
    tri_rt_t *rt = tri_rt;
    const char *who = channel && channel->uid? channel->uid: "unknown peer";
    s_log_bad (channel, who, why);
    if (channel && cid && (type == TRI_RETURN || type == TRI_ERROR || type == TRI_ACK)) {
        tri_call_t *call = zhashx_lookup (rt->calls, (void *) (uintptr_t) cid);
        if (call && call->channel == channel) {
            tr_error_t *err = tri_error_new (rc, rc == TR_ETOOBIG? "TooBig": "ProtocolError",
                                             channel->uid, "the answer from %s could not be "
                                             "read: %s", channel->uid, why);
            if (err) {
                tri_call_fail (call, err);
                tr_error_destroy (&err);
            }
        }
    }
    if (type != TRI_ERROR)
        s_reply_error_raw (socket, rid, rid_size, cid, rc,
                           rc == TR_ETOOBIG? "TooBig": "ProtocolError", "%s", why);
}

//  One frame from the ROUTER (rid already read).
static void
s_on_router_frame (const uint8_t *rid, size_t rid_size, zmq_msg_t *frame)
{
    tri_rt_t *rt = tri_rt;
    tri_channel_t *channel = rt->last_channel;
    if (!channel || channel->rid_size != rid_size || memcmp (channel->rid, rid, rid_size)) {
        char key [520];
        s_hex_into (key, rid, rid_size);
        channel = zhashx_lookup (rt->channels, key);
        if (channel)
            rt->last_channel = channel;
    }
    tri_msg_t *msg = NULL;
    uint64_t cid = 0;
    int type;
    char why [256];
    tri_msg_peek (zmq_msg_data (frame), zmq_msg_size (frame), &type, &cid);
    int rc = tri_msg_decode (frame, &rt->limits, &msg, &cid, why, sizeof why);
    if (rc) {
        s_bad_frame (channel, rt->router, rid, rid_size, rc, why, type, cid);
        return;
    }
    if (!channel) {
        if (msg->type == TRI_HELLO)
            s_on_hello (rid, rid_size, msg);
        else
        if (msg->type == TRI_ERROR)
            s_log_bad (NULL, "unknown peer", "error frame before hello (not answered)");
        else {
            s_log_bad (NULL, "unknown peer", "frame before hello");
            s_reply_error_raw (rt->router, rid, rid_size, msg->cid, TR_EPROTO, "ProtocolError",
                               "%s before hello: say hello first", tri_msg_type_name (msg->type));
        }
        tri_msg_destroy (&msg);
        return;
    }
    s_dispatch (channel, msg);
}

//  Read one message, or (drain) up to a batch until the socket is empty.
//  After one message the socket stays marked used, so the loop asks it
//  before it sleeps: a call's answer is read without probing the socket
//  twice, and a burst is still read in batches.
void
tri_channel_read_router (bool drain)
{
    tri_rt_t *rt = tri_rt;
    for (int i = 0; i < (drain? TRI_BATCH: 1); i++) {
        zmq_msg_t rid, frame;
        zmq_msg_init (&rid);
        if (zmq_msg_recv (&rid, rt->router, ZMQ_DONTWAIT) < 0) {
            if (errno == EAGAIN)
                tri_rt->router_used = false;
            zmq_msg_close (&rid);
            return;
        }
        tri_rt->router_used = true;
        zmq_msg_init (&frame);
        int more = zmq_msg_more (&rid);
        if (!more || zmq_msg_recv (&frame, rt->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&frame);
            zmq_msg_close (&rid);
            continue;
        }
        const uint8_t *id = zmq_msg_data (&rid);
        size_t id_size = zmq_msg_size (&rid);
        if (zmq_msg_more (&frame)) {
            //  One frame per message: drop the rest and say so.
            zmq_msg_t extra;
            zmq_msg_init (&extra);
            while (zmq_msg_more (&frame) && zmq_msg_recv (&extra, rt->router, ZMQ_DONTWAIT) >= 0)
                if (!zmq_msg_more (&extra))
                    break;
            zmq_msg_close (&extra);
            zmq_msg_close (&frame);
            s_log_bad (NULL, "peer", "multipart message");
            s_reply_error_raw (rt->router, id, id_size, 0, TR_EPROTO, "ProtocolError",
                               "a message must be one frame");
        }
        else
            s_on_router_frame (id, id_size, &frame);
        zmq_msg_close (&rid);
    }
}

//  A frame on one of our DEALERs: the parent's, or an opened portal's.
//  The peer's hello (the answer to ours) names it.
static void
s_on_dealer_hello (tri_channel_t *channel, tri_msg_t *msg)
{
    tri_hello_t hello;
    char why [256];
    if (channel->hello_done || tri_msg_read_hello (msg, &hello, why, sizeof why)) {
        s_dispatch (channel, msg);
        return;
    }
    char *uid = strdup (hello.uid);
    char *endpoint = strdup (hello.endpoint);
    if (uid && endpoint) {
        free (channel->uid);
        free (channel->endpoint);
        channel->uid = uid;
        channel->endpoint = endpoint;
        channel->pid = (int) hello.pid;
        channel->hello_done = true;
    }
    else {
        free (uid);
        free (endpoint);
        channel->hello_rc = TR_ENOMEM;
    }
    if (channel->hello_waiter)
        tri_task_wake (channel->hello_waiter, 0);
    tri_msg_destroy (&msg);
}

void
tri_channel_read_dealer (tri_channel_t *channel, bool drain)
{
    tri_rt_t *rt = tri_rt;
    bool *used = tri_socket_used_flag (channel->socket);
    for (int i = 0; i < (drain? TRI_BATCH: 1) && channel->socket; i++) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, channel->socket, ZMQ_DONTWAIT) < 0) {
            if (errno == EAGAIN && used)
                *used = false;
            zmq_msg_close (&frame);
            return;
        }
        if (used)
            *used = true;
        tri_msg_t *msg = NULL;
        uint64_t cid = 0;
        int type;
        char why [256];
        tri_msg_peek (zmq_msg_data (&frame), zmq_msg_size (&frame), &type, &cid);
        int rc = tri_msg_decode (&frame, &rt->limits, &msg, &cid, why, sizeof why);
        if (rc) {
            s_bad_frame (channel, channel->socket, NULL, 0, rc, why, type, cid);
            continue;
        }
        if (msg->type == TRI_HELLO)
            s_on_dealer_hello (channel, msg);
        else
        if (!channel->hello_done && msg->type == TRI_ERROR && msg->cid == 0) {
            //  The peer refused our hello (another major version).
            tr_error_t *err = tri_error_unpack (&msg->body, channel->uid);
            tri_log_warn ("TR-REFUSED", "%s refused us: %s", channel->endpoint,
                          err? err->message: "?");
            channel->hello_rc = err? err->code: TR_EPROTO;
            tr_error_destroy (&channel->death);
            channel->death = err;
            if (channel->hello_waiter)
                tri_task_wake (channel->hello_waiter, 0);
            tri_msg_destroy (&msg);
        }
        else
            s_dispatch (channel, msg);
    }
}

//  Events of an opened portal's connection. Once the peer has said hello,
//  a disconnect means it died, or went silent past the heartbeat timeout:
//  the calls through it fail rather than wait for a peer that is gone.
void
tri_channel_read_monitor (tri_channel_t *channel)
{
    for (int i = 0; i < TRI_BATCH && channel->monitor; i++) {
        zmq_msg_t event, address;
        zmq_msg_init (&event);
        zmq_msg_init (&address);
        if (zmq_msg_recv (&event, channel->monitor, ZMQ_DONTWAIT) < 0) {
            if (errno == EAGAIN)
                channel->monitor_used = false;
            zmq_msg_close (&event);
            zmq_msg_close (&address);
            return;
        }
        channel->monitor_used = true;
        uint16_t code = 0;
        if (zmq_msg_size (&event) >= 2)
            memcpy (&code, zmq_msg_data (&event), 2);
        if (zmq_msg_more (&event))
            zmq_msg_recv (&address, channel->monitor, ZMQ_DONTWAIT);
        zmq_msg_close (&event);
        zmq_msg_close (&address);
        if (code == ZMQ_EVENT_DISCONNECTED && channel->hello_done && !channel->closed) {
            tri_log_warn ("TR-LOST", "connection to %s at %s lost", channel->uid, channel->endpoint);
            tri_channel_close (channel, tri_error_new (TR_ECLOSED, "ConnectionLost", channel->uid,
                               "connection to %s at %s lost: the actor died or was silent "
                               "past the heartbeat timeout", channel->uid, channel->endpoint),
                               true);
        }
    }
}

