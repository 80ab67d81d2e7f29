/*  =========================================================================
    portal.c - a handle on one remote actor, and the calls made through it

    A call is a cid in the runtime's table and a task parked until the
    answer with that cid arrives; many tasks may call through one portal at
    once. The portal keeps the whole final message of a run_in_actor main
    call, so its result can be read any number of times (rule 9), and
    cancels with an ack (rule 2): the channel is marked cancel_called, so
    the peer's resulting exit is not reported as a failure.
    =========================================================================
*/
#include "troupe_private.h"
#include <czmq.h>

struct tr_portal {
    tri_channel_t *channel;     //  the peer's channel, owned by the loop
    tri_child_t *child;         //  when the peer is our child
    char *uid;
    char *endpoint;
    int pid;
    tr_error_t *error;          //  last failure, borrowed by callers
    //  run_in_actor: the main call and its cached outcome
    tri_call_t *main;           //  in flight, NULL once done
    bool has_main;
    bool main_done;
    int main_rc;
    tr_value_t *main_value;
    tr_error_t *main_error;
    tri_task_t **waiters;       //  tasks waiting for the main result
    size_t nwaiters, capacity;
    void (*on_main_done) (tr_portal_t *self);
    int calls;                  //  tasks inside tr_portal_run on it
    tri_task_t *closer;         //  a close waiting for calls to be 0
    bool opened;                //  by tr_portal_open: the user's to close
    bool closing;               //  tr_portal_close came while calls ran
};

//  --------------------------------------------------------------------------
//  Calls

tri_call_t *
tri_call_new (tri_channel_t *channel)
{
    tri_rt_t *rt = tri_rt;
    tri_call_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cid = ++rt->next_cid;
    self->channel = channel;
    tri_channel_ref (channel);
    zhashx_insert (rt->calls, (void *) (uintptr_t) self->cid, self);
    self->next = channel->calls;
    if (self->next)
        self->next->prev = self;
    channel->calls = self;
    self->linked = true;
    return self;
}

//  Out of the runtime's table and the channel's list.
static void
s_call_unlink (tri_call_t *self)
{
    if (!self->linked)
        return;
    self->linked = false;
    zhashx_delete (tri_rt->calls, (void *) (uintptr_t) self->cid);
    if (self->prev)
        self->prev->next = self->next;
    else
        self->channel->calls = self->next;
    if (self->next)
        self->next->prev = self->prev;
    self->next = self->prev = NULL;
}

void
tri_call_destroy (tri_call_t **self_p)
{
    tri_call_t *self = *self_p;
    if (!self)
        return;
    s_call_unlink (self);
    tri_channel_unref (&self->channel);
    if (self->answer)
        tri_msg_destroy (&self->answer);
    tr_error_destroy (&self->failure);
    free (self);
    *self_p = NULL;
}

static void
s_call_done (tri_call_t *self)
{
    s_call_unlink (self);
    if (self->on_done)
        self->on_done (self);
    else
    if (self->waiter)
        tri_task_wake (self->waiter, 0);
}

void
tri_call_answer (uint64_t cid, tri_msg_t *msg, tri_channel_t *from)
{
    tri_call_t *self = zhashx_lookup (tri_rt->calls, (void *) (uintptr_t) cid);
    if (!self || self->channel != from) {
        //  A late answer to a call we stopped waiting for.
        tri_log_debug ("TR-LATE", "%s answered cid %llu after the caller left",
                       from->uid, (unsigned long long) cid);
        tri_msg_destroy (&msg);
        return;
    }
    self->answer = msg;
    s_call_done (self);
}

void
tri_call_fail (tri_call_t *self, const tr_error_t *why)
{
    self->failure = tr_error_dup (why);
    s_call_done (self);
}

int
tri_call_outcome (tri_call_t *self, tr_value_t **out, tr_error_t **error)
{
    *error = NULL;
    if (self->failure) {
        *error = self->failure;
        self->failure = NULL;
        return (*error)->code;
    }
    assert (self->answer);
    const char *peer = self->channel && self->channel->uid? self->channel->uid: "peer";
    switch (self->answer->type) {
        case TRI_RETURN:
            if (out)
                *out = tri_msg_to_value (&self->answer);
            return 0;
        case TRI_ERROR:
            *error = tri_error_unpack (&self->answer->body, peer);
            return *error? (*error)->code: TR_ENOMEM;
        case TRI_ACK:
            *error = tri_error_new (TR_ECANCELED, "Cancelled", NULL, "the call was cancelled");
            return TR_ECANCELED;
        default:
            *error = tri_error_new (TR_EPROTO, "ProtocolError", NULL, "unexpected %s",
                                    tri_msg_type_name (self->answer->type));
            return TR_EPROTO;
    }
}

//  --------------------------------------------------------------------------
//  Portals

tr_portal_t *
tri_portal_new (tri_channel_t *channel, tri_child_t *child)
{
    tr_portal_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->channel = channel;
    tri_channel_ref (channel);
    self->child = child;
    self->uid = strdup (channel->uid);
    self->endpoint = strdup (channel->endpoint? channel->endpoint: "");
    self->pid = child? (int) child->pid: channel->pid;
    if (!self->uid || !self->endpoint)
        tri_portal_destroy (&self);
    return self;
}

void
tri_portal_destroy (tr_portal_t **self_p)
{
    tr_portal_t *self = *self_p;
    if (!self)
        return;
    tri_call_destroy (&self->main);
    tri_channel_unref (&self->channel);
    tr_value_destroy (&self->main_value);
    tr_error_destroy (&self->main_error);
    tr_error_destroy (&self->error);
    free (self->waiters);
    free (self->uid);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

static void
s_set_error (tr_portal_t *self, tr_error_t *error)
{
    tr_error_destroy (&self->error);
    self->error = error;
}

//  Remember a failure on the calling task too, so that an exported
//  function returning this code relays the error with its hop (rule 5).
static void
s_task_remember (const tr_error_t *error)
{
    tri_task_t *task = tri_task_current ();
    tr_ctx_t *ctx = task? tri_task_data (task): NULL;
    if (ctx && error) {
        tr_error_destroy (&ctx->remote);
        ctx->remote = tr_error_dup (error);
    }
}

static int
s_send_cmd (tr_portal_t *self, tri_call_t *call, const char *fn, const tr_args_t *args)
{
    tri_rt_t *rt = tri_rt;
    tri_msg_pack_cmd (&rt->sbuf, call->cid, fn, args);
    //  What we would refuse to read, we do not send: the call fails here.
    char why [256];
    int rc = tri_msg_check (rt->sbuf.data, rt->sbuf.size, &rt->limits, why, sizeof why);
    if (rc) {
        msgpack_sbuffer_clear (&rt->sbuf);
        s_set_error (self, tri_error_new (rc, rc == TR_ETOOBIG? "TooBig": "ProtocolError",
                     rt->actor.uid, "call of %s: %s", fn, why));
        return rc;
    }
    return tri_channel_send (self->channel);
}

//  A new call of fn(args) on the portal's channel, sent; nothing is left
//  pending when it fails.
static int
s_call_start (tr_portal_t *self, const char *fn, const tr_args_t *args, tri_call_t **call_p)
{
    tri_call_t *call = tri_call_new (self->channel);
    if (!call)
        return TR_ENOMEM;
    int rc = s_send_cmd (self, call, fn, args);
    if (rc)
        tri_call_destroy (&call);
    *call_p = call;
    return rc;
}

//  Why no call can go through any more. An actor we asked to cancel is
//  closed to calls, and its exit, however it ends, is no crash (rule 2).
static int
s_closed (tr_portal_t *self)
{
    tri_channel_t *channel = self->channel;
    tr_error_t *err;
    if (channel->cancel_called)
        err = tri_error_new (TR_ECLOSED, "Closed", self->uid,
                             "actor %s was asked to cancel: it takes no more calls", self->uid);
    else
    if (channel->death)
        err = tr_error_dup (channel->death);
    else
        err = tri_error_new (TR_ECLOSED, "Closed", self->uid, "channel to %s is closed", self->uid);
    int rc = err? err->code: TR_ECLOSED;
    s_set_error (self, err);
    return rc;
}

static int
s_run (tr_portal_t *self, const char *fn, const tr_args_t *args, tr_value_t **out)
{
    if (out)
        *out = NULL;
    if (tri_task_cancelled (tri_task_current ()))
        return TR_ECANCELED;
    if (self->channel->closed || self->channel->cancel_called)
        return s_closed (self);
    tri_call_t *call;
    int rc = s_call_start (self, fn, args, &call);
    if (rc)
        return rc == TR_ECLOSED? s_closed (self): rc;
    call->waiter = tri_task_current ();
    rc = tri_task_park (-1);
    if (rc == TR_ECANCELED && !call->answer && !call->failure) {
        //  Cancel the remote call too and wait for its ack: cancellation
        //  is acknowledged, never just dropped.
        if (tri_channel_send_empty (self->channel, TRI_CANCEL, call->cid) == 0
        &&  !call->answer && !call->failure)
            tri_task_park_shielded (tri_now_ms () + tri_rt->config.cancel_ack_ms);
        tri_call_destroy (&call);
        s_set_error (self, tri_error_new (TR_ECANCELED, "Cancelled", tri_rt->actor.uid,
                                          "call of %s in %s cancelled", fn, self->uid));
        return TR_ECANCELED;
    }
    tr_error_t *error = NULL;
    rc = tri_call_outcome (call, out, &error);
    tri_call_destroy (&call);
    if (rc) {
        s_task_remember (error);
        s_set_error (self, error);
    }
    else
        tr_error_destroy (&error);
    return rc;
}

int
tr_portal_run (tr_portal_t *self, const char *fn, const tr_args_t *args, tr_value_t **out)
{
    if (!self || !fn || !tri_task_current ())
        return TR_EINVAL;
    if (self->closing)
        return TR_ECLOSED;
    self->calls++;
    int rc = s_run (self, fn, args, out);
    if (--self->calls == 0 && self->closer)
        tri_task_wake (self->closer, 0);
    //  The last call out frees a portal closed under it.
    if (self->calls == 0 && self->closing)
        tri_portal_destroy (&self);
    return rc;
}

//  --------------------------------------------------------------------------
//  Portals on an endpoint

int
tr_portal_open (tr_actor_t *actor, const char *endpoint, int timeout_ms,
                tr_portal_t **portal_p)
{
    if (!actor || !endpoint || timeout_ms < -1 || !portal_p || !tri_task_current ())
        return TR_EINVAL;
    *portal_p = NULL;
    if (tri_task_cancelled (tri_task_current ()))
        return TR_ECANCELED;
    int64_t deadline = tri_deadline (timeout_ms);
    tri_channel_t *channel;
    int rc = tri_rt_open_dealer (endpoint, &channel);
    if (rc)
        return rc;
    while (!channel->hello_done && !channel->hello_rc && !rc) {
        channel->hello_waiter = tri_task_current ();
        rc = tri_task_park (deadline);
        channel->hello_waiter = NULL;
    }
    tr_portal_t *self = NULL;
    if (channel->hello_done && !(self = tri_portal_new (channel, NULL)))
        rc = TR_ENOMEM;
    if (!self) {
        if (!rc)
            rc = channel->hello_rc? channel->hello_rc: TR_EPROTO;
        tri_rt_close_dealer (channel);
    }
    tri_channel_unref (&channel);
    if (self) {
        self->opened = true;
        *portal_p = self;
    }
    return rc;
}

int
tr_portal_close (tr_portal_t **self_p)
{
    if (!self_p)
        return TR_EINVAL;
    tr_portal_t *self = *self_p;
    if (!self)
        return 0;
    if (!self->opened || self->closing)
        return TR_EINVAL;
    *self_p = NULL;
    self->closing = true;
    //  Calls still waiting fail with TR_ECLOSED; the last one out frees it.
    tri_rt_close_dealer (self->channel);
    if (self->calls == 0)
        tri_portal_destroy (&self);
    return 0;
}

//  Wait, shielded, until no task is inside tr_portal_run on this portal,
//  so that a nursery close can free it. The peer is gone by then: a call
//  ends when its channel's drain period does, or when its cancel ack is
//  given up on; a channel still open after both periods is closed, which
//  fails its calls at once.
void
tri_portal_await_calls (tr_portal_t *self)
{
    int64_t deadline = tri_now_ms () + tri_rt->config.drain_ms + tri_rt->config.cancel_ack_ms;
    while (self->calls > 0) {
        self->closer = tri_task_current ();
        int rc = tri_task_park_shielded (self->channel->closed? -1: deadline);
        self->closer = NULL;
        if (rc == TR_ETIMEDOUT && !self->channel->closed)
            tri_channel_close (self->channel, NULL, false);
    }
}

//  --------------------------------------------------------------------------
//  The main call of a run_in_actor portal

static void
s_main_done (tri_call_t *call)
{
    tr_portal_t *self = call->arg;
    self->main_rc = tri_call_outcome (call, &self->main_value, &self->main_error);
    self->main_done = true;
    self->main = NULL;
    tri_call_destroy (&call);
    for (size_t i = 0; i < self->nwaiters; i++)
        tri_task_wake (self->waiters [i], 0);
    self->nwaiters = 0;
    if (self->on_main_done)
        self->on_main_done (self);
}

//  Start fn as the portal's main call; the answer is kept (rule 9).
int
tri_portal_start_main (tr_portal_t *self, const char *fn, const tr_args_t *args,
                       void (*on_done) (tr_portal_t *self))
{
    tri_call_t *call;
    int rc = s_call_start (self, fn, args, &call);
    if (rc)
        return rc;
    call->on_done = s_main_done;
    call->arg = self;
    self->main = call;
    self->has_main = true;
    self->on_main_done = on_done;
    return 0;
}

tri_child_t *
tri_portal_child (const tr_portal_t *self)
{
    return self->child;
}

bool
tri_portal_main_done (const tr_portal_t *self)
{
    return !self->has_main || self->main_done;
}

int
tr_portal_result (tr_portal_t *self, const msgpack_object **value)
{
    if (!self || !self->has_main)
        return TR_EINVAL;
    if (!self->main_done) {
        if (!tri_task_current ())
            return TR_EINVAL;
        if (self->nwaiters == self->capacity) {
            size_t capacity = self->capacity? self->capacity * 2: 4;
            tri_task_t **waiters = realloc (self->waiters, capacity * sizeof *waiters);
            if (!waiters)
                return TR_ENOMEM;
            self->waiters = waiters;
            self->capacity = capacity;
        }
        tri_task_t *me = tri_task_current ();
        self->waiters [self->nwaiters++] = me;
        int rc = tri_task_park (-1);
        if (!self->main_done) {
            for (size_t i = 0; i < self->nwaiters; i++)
                if (self->waiters [i] == me) {
                    self->waiters [i] = self->waiters [--self->nwaiters];
                    break;
                }
            return rc? rc: TR_ECANCELED;
        }
    }
    if (self->main_rc) {
        s_set_error (self, tr_error_dup (self->main_error));
        return self->main_rc;
    }
    if (value)
        *value = tr_value_object (self->main_value);
    return 0;
}

//  Outcome of the main call without waiting (nursery close collects it).
int
tri_portal_main_error (const tr_portal_t *self, const tr_error_t **error)
{
    *error = self->main_error;
    return self->main_rc;
}

//  --------------------------------------------------------------------------
//  Cancel with ack (rule 2)

void
tri_portal_send_cancel (tr_portal_t *self)
{
    tri_channel_t *channel = self->channel;
    if (!channel->closed && !channel->cancel_called) {
        channel->cancel_called = true;
        tri_channel_send_empty (channel, TRI_CANCEL, 0);
    }
}

//  Park until the peer acknowledges our cancel, the channel closes or the
//  deadline passes.
static int
s_await_ack (tr_portal_t *self, int64_t deadline)
{
    tri_channel_t *channel = self->channel;
    while (!channel->acked) {
        if (channel->closed)
            return TR_ECLOSED;
        channel->ack_waiter = tri_task_current ();
        int rc = tri_task_park (deadline);
        channel->ack_waiter = NULL;
        if (rc && !channel->acked)
            return rc;
    }
    return 0;
}

int
tr_portal_cancel_actor (tr_portal_t *self, int timeout_ms)
{
    if (!self || timeout_ms < -1 || !tri_task_current ())
        return TR_EINVAL;
    int64_t deadline = tri_deadline (timeout_ms);
    tri_channel_t *channel = self->channel;
    if (channel->acked)
        return 0;
    if (channel->closed)
        return s_closed (self);
    tri_portal_send_cancel (self);
    int rc = s_await_ack (self, deadline);
    if (rc == TR_ECLOSED)
        return s_closed (self);
    return rc;
}

//  --------------------------------------------------------------------------
//  Accessors

const tr_error_t *
tr_portal_error (const tr_portal_t *self)
{
    return self? self->error: NULL;
}

const char *
tr_portal_uid (const tr_portal_t *self)
{
    return self? self->uid: NULL;
}

const char *
tr_portal_endpoint (const tr_portal_t *self)
{
    return self? self->endpoint: NULL;
}

int
tr_portal_pid (const tr_portal_t *self)
{
    return self? self->pid: 0;
}
