/*  =========================================================================
    portal.c - a handle on one remote actor

    Many tasks may call through one portal at once; each call is a
    tri_call_t of its own and each failure is recorded on the task that
    made it. The portal keeps the whole final message of a run_in_actor
    main call, so its result can be read any number of times (rule 9),
    and owns cancel-with-ack (rule 2): the actor cancel is an endpoint at
    cid 0 whose ack wakes every task waiting for it, and an actor we asked
    to cancel takes no more calls and its exit is no failure.
    =========================================================================
*/
#include "troupe_private.h"

struct tr_portal {
    tri_channel_t *channel;
    tri_dealer_t *dealer;       //  tr_portal_open's connection, or NULL
    char *uid;
    char *endpoint;
    int pid;
    //  run_in_actor: the main call and its cached outcome
    tri_call_t *main;           //  in flight, NULL once done
    bool has_main;
    bool main_done;
    int main_rc;
    tr_value_t *main_value;
    tr_error_t *main_error;
    tri_waitq_t main_waiters;
    void (*on_main_done) (void *arg);
    void *main_arg;
    //  calls in flight
    int calls;                  //  tasks inside tr_portal_run on it
    tri_waitq_t idle;           //  woken when calls drops to 0
    //  actor cancel (rule 2)
    tri_endpoint_t cancel;      //  TRI_DIR_OUT cid 0 while waiting for the ack
    bool cancel_called;
    bool acked;
    tri_waitq_t ack_waiters;
    bool closing;               //  tr_portal_close came while calls ran
    //  restarts (a supervised nursery's child)
    bool restarting;            //  its actor died and is being restarted
    int restarts;               //  times it was
    tri_waitq_t rebound;        //  woken when a restart ends, either way
};

//  --------------------------------------------------------------------------
//  Make and free

static tr_portal_t *
s_new (tri_channel_t *channel, int pid)
{
    tr_portal_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->channel = channel;
    tri_channel_ref (channel);
    tri_waitq_init (&self->main_waiters);
    tri_waitq_init (&self->idle);
    tri_waitq_init (&self->ack_waiters);
    tri_waitq_init (&self->rebound);
    self->uid = strdup (tri_channel_uid (channel));
    self->endpoint = strdup (tri_channel_endpoint (channel));
    self->pid = pid;
    if (!self->uid || !self->endpoint)
        tri_portal_destroy (&self);
    return self;
}

tr_portal_t *
tri_portal_new (tri_channel_t *channel, int pid)
{
    return s_new (channel, pid);
}

void
tri_portal_destroy (tr_portal_t **self_p)
{
    tr_portal_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    assert (self->calls == 0);
    tri_call_destroy (&self->main);
    tri_endpoint_unbind (&self->cancel);
    tri_channel_unref (&self->channel);
    tri_dealer_close (&self->dealer);
    tr_value_destroy (&self->main_value);
    tr_error_destroy (&self->main_error);
    free (self->uid);
    free (self->endpoint);
    free (self);
}

//  --------------------------------------------------------------------------
//  Calls

//  Why no call can go through any more, recorded on the calling task.
static int
s_closed (tr_portal_t *self)
{
    tr_error_t *err;
    const tr_error_t *death = tri_channel_death (self->channel);
    if (self->cancel_called)
        err = tri_error_new (TR_ECLOSED, "Closed", self->uid,
                             "actor %s was asked to cancel: it takes no more calls", self->uid);
    else
    if (death)
        err = tr_error_dup (death);
    else
        err = tri_error_new (TR_ECLOSED, "Closed", self->uid, "channel to %s is closed", self->uid);
    return tri_ctx_fail (self, err);
}

//  A call made while the actor restarts waits for the new process, or
//  for the restart to be given up on (it then fails with the death).
static int
s_await_restart (tr_portal_t *self)
{
    while (self->restarting) {
        int rc = tri_waitq_wait (&self->rebound, -1);
        if (rc == TR_ECANCELED && tri_task_cancelled (tri_task_current ()))
            return TR_ECANCELED;
    }
    return 0;
}

tri_channel_t *
tri_portal_channel (tr_portal_t *self, int *rc)
{
    *rc = s_await_restart (self);
    if (*rc)
        return NULL;
    if (tri_task_cancelled (tri_task_current ()))
        *rc = TR_ECANCELED;
    else
    if (self->closing)
        *rc = TR_ECLOSED;
    else
    if (tri_channel_closed (self->channel) || self->cancel_called)
        *rc = s_closed (self);
    return *rc? NULL: self->channel;
}

static int
s_run (tr_portal_t *self, const char *fn, const tr_args_t *args, tr_value_t **out)
{
    if (tri_task_cancelled (tri_task_current ()) || s_await_restart (self))
        return TR_ECANCELED;
    if (tri_channel_closed (self->channel) || self->cancel_called)
        return s_closed (self);
    tri_call_t *call;
    tr_error_t *error = NULL;
    int rc = tri_call_start (self->channel, fn, args, &call, &error);
    if (rc == TR_ECLOSED)
        return s_closed (self);
    if (rc)
        return error? tri_ctx_fail (self, error): rc;
    rc = tri_call_wait (call, -1);
    if (rc == TR_ECANCELED) {
        //  Cancel the remote call too and wait for its ack: cancellation
        //  is acknowledged, never just dropped.
        tri_call_cancel (call);
        tri_call_destroy (&call);
        return tri_ctx_fail (self, tri_error_new (TR_ECANCELED, "Cancelled", tri_uid (),
                             "call of %s in %s cancelled", fn, self->uid));
    }
    rc = tri_call_outcome (call, out, &error);
    tri_call_destroy (&call);
    if (rc)
        return tri_ctx_fail (self, error);
    tr_error_destroy (&error);
    return 0;
}

int
tr_portal_run (tr_portal_t *self, const char *fn, const tr_args_t *args, tr_value_t **out)
{
    if (out)
        *out = NULL;
    if (!self || !fn || !tri_task_current ())
        return TR_EINVAL;
    if (self->closing)
        return TR_ECLOSED;
    self->calls++;
    int rc = s_run (self, fn, args, out);
    if (--self->calls == 0) {
        tri_waitq_wake_all (&self->idle, 0);
        //  The last call out frees a portal closed under it.
        if (self->closing)
            tri_portal_destroy (&self);
    }
    return rc;
}

//  Park (shielded) on queue until done (self) holds. A call, a main call
//  or an actor cancel ends when its channel's drain period does, or when
//  its ack is given up on; a channel still open after both periods is
//  closed, which ends them at once.
static void
s_settle (tr_portal_t *self, tri_waitq_t *queue, bool (*done) (const tr_portal_t *self))
{
    const tr_config_t *config = tri_config ();
    int64_t deadline = tri_after_ms (config->drain_ms + config->cancel_ack_ms);
    while (!done (self)) {
        int rc = tri_waitq_wait_shielded (queue, tri_channel_closed (self->channel)? -1: deadline);
        if (rc == TR_ETIMEDOUT && !tri_channel_closed (self->channel))
            tri_channel_close (self->channel, NULL, false);
    }
}

static bool
s_no_calls (const tr_portal_t *self)
{
    return self->calls == 0;
}

static bool
s_main_ended (const tr_portal_t *self)
{
    return !self->main;
}

static bool
s_cancel_ended (const tr_portal_t *self)
{
    return !tri_endpoint_bound (&self->cancel);
}

void
tri_portal_settle (tr_portal_t *self)
{
    s_settle (self, &self->idle, s_no_calls);
    s_settle (self, &self->main_waiters, s_main_ended);
    s_settle (self, &self->ack_waiters, s_cancel_ended);
}

//  --------------------------------------------------------------------------
//  Portals on an endpoint

//  Why an open whose peer did not refuse it failed with rc.
static tr_error_t *
s_open_error (int rc, const char *endpoint, int timeout_ms)
{
    if (rc == TR_ETIMEDOUT)
        return tri_error_new (rc, "Timeout", tri_uid (), "no hello from %s within %d ms",
                              endpoint, timeout_ms);
    if (rc == TR_ECANCELED)
        return tri_error_new (rc, "Cancelled", tri_uid (), "the open of a portal on %s "
                              "was cancelled", endpoint);
    return tri_error_new (rc, rc == TR_ENOMEM? "NoMemory": "ConnectError", tri_uid (),
                          "cannot open a portal on %s", endpoint);
}

int
tr_portal_open (tr_actor_t *actor, const char *endpoint, int timeout_ms,
                tr_portal_t **portal_p)
{
    if (!actor || !endpoint || timeout_ms < -1 || !portal_p || !tri_task_current ())
        return TR_EINVAL;
    *portal_p = NULL;
    if (tri_task_cancelled (tri_task_current ()))
        return TR_ECANCELED;
    //  A failure is the task's to read (tr_ctx_error), with why.
    tri_dealer_t *dealer;
    tr_error_t *error;
    int rc = tri_dealer_open (endpoint, false, &dealer, &error);
    if (rc)
        return tri_ctx_fail (NULL, error);
    rc = tri_dealer_await_hello (dealer, tri_deadline (timeout_ms), &error);
    tr_portal_t *self = NULL;
    if (rc == 0 && !(self = s_new (tri_dealer_channel (dealer), tri_channel_pid (tri_dealer_channel (dealer)))))
        rc = TR_ENOMEM;
    if (rc) {
        tri_dealer_close (&dealer);
        if (!error)
            error = s_open_error (rc, endpoint, timeout_ms);
        return error? tri_ctx_fail (NULL, error): rc;
    }
    self->dealer = dealer;
    *portal_p = self;
    return 0;
}

int
tr_portal_close (tr_portal_t **self_p)
{
    if (!self_p)
        return TR_EINVAL;
    tr_portal_t *self = *self_p;
    if (!self)
        return 0;
    if (!self->dealer || self->closing)
        return TR_EINVAL;
    *self_p = NULL;
    self->closing = true;
    //  Calls still waiting fail with TR_ECLOSED; the last one out frees it.
    tri_channel_close (self->channel, NULL, false);
    if (self->calls == 0)
        tri_portal_destroy (&self);
    return 0;
}

//  --------------------------------------------------------------------------
//  The main call of a run_in_actor portal

static void
s_main_done (tri_call_t *call, void *arg)
{
    tr_portal_t *self = arg;
    self->main_rc = tri_call_outcome (call, &self->main_value, &self->main_error);
    self->main_done = true;
    self->main = NULL;
    tri_call_destroy (&call);
    tri_waitq_wake_all (&self->main_waiters, 0);
    if (self->on_main_done)
        self->on_main_done (self->main_arg);
}

int
tri_portal_start_main (tr_portal_t *self, const char *fn, const tr_args_t *args,
                       void (*on_done) (void *arg), void *arg, tr_error_t **error)
{
    tri_call_t *call;
    int rc = tri_call_start (self->channel, fn, args, &call, error);
    if (rc)
        return rc;
    self->main = call;
    self->has_main = true;
    self->on_main_done = on_done;
    self->main_arg = arg;
    tri_call_on_done (call, s_main_done, self);
    return 0;
}

bool
tri_portal_main_done (const tr_portal_t *self)
{
    return !self->has_main || self->main_done;
}

int
tri_portal_main_failure (const tr_portal_t *self, const tr_error_t **error)
{
    *error = NULL;
    if (!self->main_done || self->main_rc == 0)
        return 0;
    //  An actor we asked to cancel answers with an ack, or goes before it
    //  answers: neither is its failure (rule 2).
    if (self->cancel_called && (self->main_rc == TR_ECANCELED || self->main_rc == TR_ECLOSED))
        return 0;
    *error = self->main_error;
    return self->main_rc;
}

int
tr_portal_result (tr_portal_t *self, const msgpack_object **value)
{
    if (!self || !self->has_main)
        return TR_EINVAL;
    if (!self->main_done) {
        if (!tri_task_current ())
            return TR_EINVAL;
        while (!self->main_done) {
            int rc = tri_waitq_wait (&self->main_waiters, -1);
            if (rc && !self->main_done)
                return rc;
        }
    }
    if (self->main_rc)
        return tri_ctx_fail (self, tr_error_dup (self->main_error));
    if (value)
        *value = tr_value_object (self->main_value);
    return 0;
}

//  --------------------------------------------------------------------------
//  Cancel with ack (rule 2)

static size_t s_acks;           //  actor cancels acknowledged, all portals

static void
s_on_ack (tri_endpoint_t *ep, tri_msg_t *msg)
{
    tr_portal_t *self = tri_list_entry (ep, tr_portal_t, cancel);
    tri_msg_destroy (&msg);
    tri_endpoint_unbind (ep);
    self->acked = true;
    s_acks++;
    tri_channel_expect_end (self->channel);
    tri_waitq_wake_all (&self->ack_waiters, 0);
}

static void
s_on_no_ack (tri_endpoint_t *ep, const tr_error_t *why)
{
    (void) why;
    tr_portal_t *self = tri_list_entry (ep, tr_portal_t, cancel);
    tri_waitq_wake_all (&self->ack_waiters, 0);
}

static const tri_endpoint_ops_t s_cancel_ops = { s_on_ack, s_on_no_ack };

tri_channel_t *
tri_portal_peer (const tr_portal_t *self)
{
    return self->channel;
}

bool
tri_portal_closed (const tr_portal_t *self)
{
    return self->closing || self->cancel_called || tri_channel_closed (self->channel);
}

void
tri_portal_send_cancel (tr_portal_t *self)
{
    if (self->cancel_called || tri_channel_closed (self->channel))
        return;
    self->cancel_called = true;
    tri_endpoint_bind (&self->cancel, self->channel, 0, TRI_DIR_OUT, &s_cancel_ops);
    tri_channel_send_empty (self->channel, TRI_CANCEL, 0);
}

bool
tri_portal_acked (const tr_portal_t *self)
{
    return self->acked;
}

size_t
tri_portal_acks (void)
{
    return s_acks;
}

int
tr_portal_cancel_actor (tr_portal_t *self, int timeout_ms)
{
    if (!self || timeout_ms < -1 || !tri_task_current ())
        return TR_EINVAL;
    int64_t deadline = tri_deadline (timeout_ms);
    if (self->acked)
        return 0;
    if (tri_channel_closed (self->channel) && !tri_endpoint_bound (&self->cancel))
        return s_closed (self);
    tri_portal_send_cancel (self);
    while (!self->acked) {
        if (!tri_endpoint_bound (&self->cancel))
            return s_closed (self);
        int rc = tri_waitq_wait (&self->ack_waiters, deadline);
        if (rc && !self->acked)
            return rc;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Restarts

void
tri_portal_restarting (tr_portal_t *self)
{
    self->restarting = true;
}

bool
tri_portal_cancel_called (const tr_portal_t *self)
{
    return self->cancel_called;
}

int
tri_portal_rebind (tr_portal_t *self, tri_channel_t *channel, int pid)
{
    char *uid = strdup (tri_channel_uid (channel));
    char *endpoint = strdup (tri_channel_endpoint (channel));
    if (!uid || !endpoint) {
        free (uid);
        free (endpoint);
        return TR_ENOMEM;
    }
    //  What was under way with the old process ends with it.
    tri_endpoint_unbind (&self->cancel);
    tri_channel_unref (&self->channel);
    self->channel = channel;
    tri_channel_ref (channel);
    free (self->uid);
    free (self->endpoint);
    self->uid = uid;
    self->endpoint = endpoint;
    self->pid = pid;
    self->cancel_called = false;
    self->acked = false;
    self->restarting = false;
    self->restarts++;
    tri_waitq_wake_all (&self->ack_waiters, 0);
    tri_waitq_wake_all (&self->rebound, 0);
    return 0;
}

void
tri_portal_restart_failed (tr_portal_t *self)
{
    self->restarting = false;
    tri_waitq_wake_all (&self->rebound, 0);
}

int
tr_portal_restarts (const tr_portal_t *self)
{
    return self? self->restarts: 0;
}

//  --------------------------------------------------------------------------
//  Accessors

const tr_error_t *
tr_portal_error (const tr_portal_t *self)
{
    return self? tri_ctx_error_of (self): NULL;
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
