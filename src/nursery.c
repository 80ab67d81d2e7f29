/*  =========================================================================
    nursery.c - a nursery owns the child actors started through it

    Opening a nursery and closing it bracket the life of its children: the
    close waits for every run_in_actor result, asks every child still
    running to cancel (rule 2), escalates to SIGTERM and SIGKILL after the
    grace periods (rule 8), and returns only when each child is reaped. A
    child that fails makes the close cancel the others (rule 6) and its
    error is returned, with the others, as a list.
    =========================================================================
*/
#include "troupe_private.h"
#include <signal.h>
#include <sys/wait.h>

struct tr_nursery {
    tr_actor_t *actor;
    tri_child_t **children;
    size_t count, capacity;
    bool closing;
    bool cancelled;             //  tr_nursery_cancel or a failure
    tr_error_t *error;          //  last spawn failure
    tri_task_t *waiter;         //  close waiting for a main result
    tr_nursery_t *next, *prev;  //  open nurseries of this actor
};

static tr_nursery_t *s_open = NULL;

size_t
tri_nursery_open_count (void)
{
    size_t count = 0;
    for (tr_nursery_t *n = s_open; n; n = n->next)
        count++;
    return count;
}

void
tri_nursery_close_all (void)
{
    while (s_open) {
        tr_nursery_t *n = s_open;
        tr_nursery_cancel (n, false);
        tr_nursery_close (&n, NULL);
    }
}

//  --------------------------------------------------------------------------

int
tr_nursery_open (tr_actor_t *actor, tr_nursery_t **nursery_p)
{
    if (!actor || !nursery_p || !tri_rt)
        return TR_EINVAL;
    tr_nursery_t *self = calloc (1, sizeof *self);
    if (!self)
        return TR_ENOMEM;
    self->actor = actor;
    self->next = s_open;
    if (self->next)
        self->next->prev = self;
    s_open = self;
    *nursery_p = self;
    return 0;
}

const tr_error_t *
tr_nursery_error (const tr_nursery_t *self)
{
    return self? self->error: NULL;
}

static int
s_add (tr_nursery_t *self, tri_child_t *child)
{
    if (self->count == self->capacity) {
        size_t capacity = self->capacity? self->capacity * 2: 8;
        tri_child_t **children = realloc (self->children, capacity * sizeof *children);
        if (!children)
            return TR_ENOMEM;
        self->children = children;
        self->capacity = capacity;
    }
    self->children [self->count++] = child;
    child->nursery = self;
    return 0;
}

static void
s_remove (tr_nursery_t *self, tri_child_t *child)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->children [i] == child) {
            memmove (&self->children [i], &self->children [i + 1],
                     (self->count - i - 1) * sizeof *self->children);
            self->count--;
            return;
        }
}

int
tr_nursery_start_actor (tr_nursery_t *self, const char *name,
                        const tr_spawn_opts_t *opts, tr_portal_t **portal_p)
{
    if (!self || !name || !*name || strchr (name, '@') || !portal_p || !tri_task_current ())
        return TR_EINVAL;
    *portal_p = NULL;
    if (self->closing || self->cancelled)
        return TR_ECLOSED;
    if (tri_task_cancelled (tri_task_current ()))
        return TR_ECANCELED;
    tri_child_t *child = NULL;
    int rc = tri_child_spawn (name, opts, &child);
    if (rc) {
        //  errno says why posix_spawn failed (a missing or unusable binary).
        const char *why = rc == TR_ESYS? strerror (errno): tr_strerror (rc);
        const char *path = opts && opts->worker_path? opts->worker_path
                         : tri_rt->config.worker_path? tri_rt->config.worker_path
                         : "/proc/self/exe";
        tr_error_destroy (&self->error);
        self->error = tri_error_new (rc, "SpawnError", tri_rt->actor.uid,
                                     "cannot spawn %s from %s: %s", name, path, why);
        return rc;
    }
    if ((rc = s_add (self, child))) {
        tri_child_kill_reap (child);
        tri_child_destroy (&child);
        return rc;
    }
    tr_error_t *error = NULL;
    rc = tri_child_await_hello (child, tri_now_ms () + tri_rt->config.hello_ms, &error);
    if (rc == 0 && !(child->portal = tri_portal_new (child->channel, child))) {
        rc = TR_ENOMEM;
        tri_child_kill_reap (child);
    }
    if (rc) {
        if (error && rc == TR_ECANCELED)
            tri_log_info ("TR-SPAWN", "%s", error->message);
        else
        if (error)
            tri_log_warn ("TR-SPAWN", "%s", error->message);
        tr_error_destroy (&self->error);
        self->error = error;
        s_remove (self, child);
        tri_child_destroy (&child);
        return rc;
    }
    *portal_p = child->portal;
    return 0;
}

//  A run_in_actor child answered: it has no more work, let it go now. If
//  it failed, wake the close that may be waiting for another child's
//  result, so that it cancels the others at once (rule 6).
static void
s_main_done (tr_portal_t *portal)
{
    tri_portal_send_cancel (portal);
    const tr_error_t *error;
    if (tri_portal_main_error (portal, &error) == 0)
        return;
    tri_child_t *child = tri_portal_child (portal);
    if (child && child->nursery && child->nursery->waiter)
        tri_task_wake (child->nursery->waiter, 0);
}

int
tr_nursery_run_in_actor (tr_nursery_t *self, const char *name, const char *fn,
                         const tr_args_t *args, tr_portal_t **portal_p)
{
    if (!self || !fn || !portal_p)
        return TR_EINVAL;
    int rc = tr_nursery_start_actor (self, name, NULL, portal_p);
    if (rc)
        return rc;
    rc = tri_portal_start_main (*portal_p, fn, args, s_main_done);
    if (rc) {
        //  The child stays in the nursery; close reaps it.
        tri_portal_send_cancel (*portal_p);
        *portal_p = NULL;
    }
    return rc;
}

int
tr_nursery_cancel (tr_nursery_t *self, bool hard)
{
    if (!self)
        return TR_EINVAL;
    self->cancelled = true;
    for (size_t i = 0; i < self->count; i++) {
        tri_child_t *child = self->children [i];
        if (child->hello_waiter)
            tri_task_wake (child->hello_waiter, TR_ECANCELED);
        if (hard)
            tri_child_signal (child, SIGKILL);
        else
        if (child->portal)
            tri_portal_send_cancel (child->portal);
    }
    if (self->waiter)
        tri_task_wake (self->waiter, TR_ECANCELED);
    return 0;
}

//  --------------------------------------------------------------------------
//  Close

//  The first run_in_actor child still without a result, or NULL.
static tri_child_t *
s_pending_main (tr_nursery_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        tri_child_t *child = self->children [i];
        if (child->portal && !tri_portal_main_done (child->portal))
            return child;
    }
    return NULL;
}

static bool
s_any_failed (tr_nursery_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        tri_child_t *child = self->children [i];
        const tr_error_t *error;
        if (child->portal && tri_portal_main_done (child->portal)
        &&  tri_portal_main_error (child->portal, &error) != 0)
            return true;
    }
    return false;
}

//  Wait (shielded) until every child is reaped or the deadline passes.
static void
s_await_exits (tr_nursery_t *self, int64_t deadline)
{
    for (size_t i = 0; i < self->count; i++)
        tri_child_await_exit (self->children [i], deadline);
}

static tr_error_t *
s_collect_errors (tr_nursery_t *self)
{
    tr_error_t *errors = NULL;
    for (size_t i = 0; i < self->count; i++) {
        tri_child_t *child = self->children [i];
        const tr_error_t *error = NULL;
        if (child->portal && tri_portal_main_error (child->portal, &error) && error) {
            //  A main call that ended because we cancelled the nursery or
            //  killed the child is no failure of the child's.
            bool cancelled = error->code == TR_ECANCELED && self->cancelled;
            bool killed = child->killed
                       && (error->code == TR_ECRASHED || error->code == TR_ECLOSED);
            if (!cancelled && !killed)
                tri_error_append (&errors, tr_error_dup (error));
            continue;
        }
        //  Asked to cancel and exited cleanly, or killed by us: no error.
        bool clean = child->code == CLD_EXITED && child->status == 0;
        if (!clean && !child->killed && !(child->channel && child->channel->cancel_called && child->channel->acked))
            tri_error_append (&errors, tri_child_death (child));
    }
    return errors;
}

int
tr_nursery_close (tr_nursery_t **self_p, tr_error_t **errors_p)
{
    if (!self_p || !*self_p || !tri_task_current ())
        return TR_EINVAL;
    tr_nursery_t *self = *self_p;
    tri_rt_t *rt = tri_rt;
    self->closing = true;
    if (errors_p)
        *errors_p = NULL;
    bool cancelled = false;

    //  1. Wait for every run_in_actor result, unless cancelled or a child
    //  failed (rule 6: one cancels all).
    tri_child_t *child;
    while (!self->cancelled && (child = s_pending_main (self))) {
        if (s_any_failed (self))
            break;
        self->waiter = tri_task_current ();
        const msgpack_object *ignored;
        int rc = tr_portal_result (child->portal, &ignored);
        self->waiter = NULL;
        if (rc == TR_ECANCELED && tri_task_cancelled (tri_task_current ())) {
            cancelled = true;
            break;
        }
    }
    if (s_any_failed (self))
        self->cancelled = true;

    //  2. Ask every child still running to cancel, wait for them to exit.
    for (size_t i = 0; i < self->count; i++) {
        child = self->children [i];
        if (child->exited)
            continue;
        if (child->portal)
            tri_portal_send_cancel (child->portal);
        else
            tri_child_signal (child, SIGKILL);
    }
    s_await_exits (self, tri_now_ms () + rt->config.grace_ms);

    //  3. Rule 8: then SIGTERM, then SIGKILL; always reap.
    bool stragglers = false;
    for (size_t i = 0; i < self->count; i++)
        if (!self->children [i]->exited) {
            tri_log_warn ("TR-GRACE", "%s did not exit within %d ms of its cancel: SIGTERM",
                          self->children [i]->uid, rt->config.grace_ms);
            tri_child_signal (self->children [i], SIGTERM);
            stragglers = true;
        }
    if (stragglers)
        s_await_exits (self, tri_now_ms () + rt->config.term_ms);
    for (size_t i = 0; i < self->count; i++)
        if (!self->children [i]->exited) {
            tri_log_warn ("TR-KILL", "%s ignored SIGTERM: SIGKILL", self->children [i]->uid);
            tri_child_kill_reap (self->children [i]);
        }

    //  4. Results and errors, then free everything, once no other task is
    //  still inside a call through one of the portals.
    for (size_t i = 0; i < self->count; i++)
        if (self->children [i]->portal)
            tri_portal_await_calls (self->children [i]->portal);
    tr_error_t *errors = s_collect_errors (self);
    int rc = errors? errors->code: (cancelled? TR_ECANCELED: 0);
    if (errors_p)
        *errors_p = errors;
    else
        tr_error_destroy (&errors);
    for (size_t i = 0; i < self->count; i++) {
        child = self->children [i];
        tri_portal_destroy (&child->portal);
        tri_child_destroy (&child);
    }
    if (self->prev)
        self->prev->next = self->next;
    else
        s_open = self->next;
    if (self->next)
        self->next->prev = self->prev;
    tr_error_destroy (&self->error);
    free (self->children);
    free (self);
    *self_p = NULL;
    return rc;
}
