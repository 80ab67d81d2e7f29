/*  =========================================================================
    nursery.c - a nursery owns the child actors started through it

    Opening a nursery and closing it bracket the life of its children.
    Each child is one record here: the process (spawn.c) and the portal
    on it (portal.c), and the record asks them, never their channel, how
    the child ended. Children start alone or as a cluster, every process
    of which is spawned before any hello is awaited; a cluster starts
    whole or not at all. The close first ends every spawn in progress, then
    waits for every run_in_actor result, asks every child still running to
    cancel (rule 2), escalates to SIGTERM and SIGKILL after the grace
    periods (rule 8), and returns only when each child is reaped (rule 4).
    A child that fails makes the close cancel the others (rule 6) and its
    error is returned, with the others, as a list.
    =========================================================================
*/
#include "troupe_private.h"
#include <signal.h>

//  One child of the nursery.
typedef struct {
    tr_nursery_t *nursery;
    tri_child_t *child;
    tr_portal_t *portal;        //  once it said hello
    bool spawning;              //  a task is in start_actor for it
    tri_node_t node;            //  in the nursery's kids
} kid_t;

struct tr_nursery {
    tri_list_t kids;
    bool closing;
    bool cancelled;             //  tr_nursery_cancel, a failure, or the
                                //  close's own task cancelled
    int spawning;               //  kids whose spawn is in progress
    tr_error_t *error;          //  the last spawn failure, for any task
    tri_waitq_t events;         //  a spawn ended, a result came, a cancel
    tri_node_t node;            //  in s_open
};

static tri_list_t s_open = { &s_open, &s_open };

size_t
tri_nursery_open_count (void)
{
    return tri_list_size (&s_open);
}

void
tri_nursery_close_all (void)
{
    tri_node_t *node;
    while ((node = tri_list_first (&s_open))) {
        tr_nursery_t *n = tri_list_entry (node, tr_nursery_t, node);
        tr_nursery_cancel (n, false);
        tr_nursery_close (&n, NULL);
    }
}

#define EACH_KID(kid, self) \
    for (tri_node_t *kid##_n = (self)->kids.next; kid##_n != &(self)->kids; kid##_n = kid##_n->next) \
        for (kid_t *kid = tri_list_entry (kid##_n, kid_t, node); kid; kid = NULL)

//  --------------------------------------------------------------------------

int
tr_nursery_open (tr_actor_t *actor, tr_nursery_t **nursery_p)
{
    if (!actor || !nursery_p || !tri_rt_running ())
        return TR_EINVAL;
    tr_nursery_t *self = calloc (1, sizeof *self);
    if (!self)
        return TR_ENOMEM;
    tri_list_init (&self->kids);
    tri_waitq_init (&self->events);
    tri_list_push_back (&s_open, &self->node);
    *nursery_p = self;
    return 0;
}

const tr_error_t *
tr_nursery_error (const tr_nursery_t *self)
{
    return self? self->error: NULL;
}

//  A spawn failed: the nursery keeps a copy for whoever asks, the task
//  that spawned the detail of its own failure. Returns err's code.
static int
s_spawn_failed (tr_nursery_t *self, tr_error_t *err)
{
    tr_error_destroy (&self->error);
    self->error = tr_error_dup (err);
    return tri_ctx_fail (self, err);
}

static void
s_kid_free (kid_t *kid)
{
    tri_node_unlink (&kid->node);
    tri_portal_destroy (&kid->portal);
    tri_child_destroy (&kid->child);
    free (kid);
}

//  Start count children (named name, or name-0 ... name-(count-1) when
//  numbered): spawn every process, then await every hello, which come in
//  parallel. On failure all of them are killed and reaped and the first
//  failure is recorded. The caller checked the arguments.
static int
s_start (tr_nursery_t *self, const char *name, size_t count, bool numbered,
         const tr_spawn_opts_t *opts, tr_portal_t **portals)
{
    if (self->closing || self->cancelled)
        return TR_ECLOSED;
    if (tri_task_cancelled (tri_task_current ()))
        return TR_ECANCELED;
    kid_t **kids = calloc (count, sizeof *kids);
    tri_child_t **children = calloc (count, sizeof *children);
    tr_error_t *error = NULL;
    int rc = TR_ENOMEM;
    size_t spawned = 0;
    if (!kids || !children)
        goto fail;

    //  1. Every process. Nothing here parks: no task sees half a cluster.
    for (; spawned < count; spawned++) {
        char *kid_name = NULL;
        if (numbered && asprintf (&kid_name, "%s-%zu", name, spawned) < 0)
            kid_name = NULL;
        kid_t *kid = calloc (1, sizeof *kid);
        rc = !kid || (numbered && !kid_name)? TR_ENOMEM
           : tri_child_spawn (numbered? kid_name: name, opts, &kid->child, &error);
        free (kid_name);
        if (rc) {
            free (kid);
            break;
        }
        kid->nursery = self;
        kid->spawning = true;
        self->spawning++;
        tri_list_push_back (&self->kids, &kid->node);
        kids [spawned] = kid;
        children [spawned] = kid->child;
    }

    //  2. Every hello. On failure every child is killed and reaped before
    //  the wait returns.
    if (rc)
        tri_child_kill_reap_all (children, spawned);
    else {
        size_t failed;
        rc = tri_child_await_hellos (children, count, tri_now_ms () + tri_config ()->hello_ms,
                                     &failed, &error);
    }
    for (size_t i = 0; i < count && rc == 0; i++)
        if (!(kids [i]->portal = tri_portal_new (tri_child_channel (children [i]),
                                                 tri_child_pid (children [i])))) {
            rc = TR_ENOMEM;
            tri_child_kill_reap_all (children, count);
        }
    for (size_t i = 0; i < spawned; i++)
        kids [i]->spawning = false;
    self->spawning -= (int) spawned;
    tri_waitq_wake_all (&self->events, 0);
    if (rc)
        goto fail;
    for (size_t i = 0; i < count; i++)
        portals [i] = kids [i]->portal;
    free (kids);
    free (children);
    return 0;

fail:
    if (error)
        tr_log (rc == TR_ECANCELED || rc == TR_ECLOSED? TR_LOG_INFO: TR_LOG_WARNING,
                "TR-SPAWN", "%s", tr_error_message (error));
    for (size_t i = 0; i < spawned; i++)
        s_kid_free (kids [i]);
    free (kids);
    free (children);
    return error? s_spawn_failed (self, error): rc;
}

int
tr_nursery_start_actor (tr_nursery_t *self, const char *name,
                        const tr_spawn_opts_t *opts, tr_portal_t **portal_p)
{
    if (!self || !name || !*name || strchr (name, '@') || !portal_p || !tri_task_current ())
        return TR_EINVAL;
    *portal_p = NULL;
    return s_start (self, name, 1, false, opts, portal_p);
}

int
tr_nursery_start_actors (tr_nursery_t *self, const char *name, size_t count,
                         const tr_spawn_opts_t *opts, tr_portal_t **portals)
{
    if (!self || !name || !*name || strchr (name, '@') || count == 0 || !portals
    ||  !tri_task_current ())
        return TR_EINVAL;
    for (size_t i = 0; i < count; i++)
        portals [i] = NULL;
    return s_start (self, name, count, true, opts, portals);
}

//  A run_in_actor child answered: it has no more work, let it go now. If
//  it failed, wake the close that may be waiting for another child's
//  result, so that it cancels the others at once (rule 6).
static void
s_main_done (void *arg)
{
    kid_t *kid = arg;
    tri_portal_send_cancel (kid->portal);
    tri_waitq_wake_all (&kid->nursery->events, 0);
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
    kid_t *kid = NULL;
    EACH_KID (k, self)
        if (k->portal == *portal_p)
            kid = k;
    tr_error_t *error = NULL;
    rc = tri_portal_start_main (kid->portal, fn, args, s_main_done, kid, &error);
    if (rc) {
        //  The child stays in the nursery; close reaps it.
        tri_portal_send_cancel (kid->portal);
        *portal_p = NULL;
        return error? s_spawn_failed (self, error): rc;
    }
    return 0;
}

//  Interrupt every spawn in progress with rc.
static void
s_interrupt_spawns (tr_nursery_t *self, int rc)
{
    EACH_KID (kid, self)
        if (kid->spawning)
            tri_child_interrupt (kid->child, rc);
}

int
tr_nursery_cancel (tr_nursery_t *self, bool hard)
{
    if (!self)
        return TR_EINVAL;
    self->cancelled = true;
    s_interrupt_spawns (self, TR_ECANCELED);
    EACH_KID (kid, self) {
        if (hard)
            tri_child_signal (kid->child, SIGKILL);
        else
        if (kid->portal)
            tri_portal_send_cancel (kid->portal);
    }
    tri_waitq_wake_all (&self->events, TR_ECANCELED);
    return 0;
}

//  --------------------------------------------------------------------------
//  Close

//  A run_in_actor child still without a result?
static bool
s_pending_main (tr_nursery_t *self)
{
    EACH_KID (kid, self)
        if (kid->portal && !tri_portal_main_done (kid->portal))
            return true;
    return false;
}

static bool
s_any_failed (tr_nursery_t *self)
{
    const tr_error_t *error;
    EACH_KID (kid, self)
        if (kid->portal && tri_portal_main_failure (kid->portal, &error))
            return true;
    return false;
}

//  Wait (shielded) until every child is reaped or the deadline passes.
static void
s_await_exits (tr_nursery_t *self, int64_t deadline)
{
    EACH_KID (kid, self)
        tri_child_await_exit (kid->child, deadline);
}

//  How a child ended, judged once: NULL if it did what was asked of it.
static tr_error_t *
s_kid_failure (tr_nursery_t *self, kid_t *kid)
{
    tri_child_t *child = kid->child;
    //  Killed because it stopped answering: its failure, not our doing.
    if (tri_child_lost (child))
        return tri_child_death (child);
    bool killed = tri_child_killed (child);
    if (kid->portal) {
        const tr_error_t *error;
        int rc = tri_portal_main_failure (kid->portal, &error);
        if (rc) {
            //  A main call that ended because we cancelled the nursery or
            //  killed the child is no failure of the child's.
            bool cancelled = rc == TR_ECANCELED && self->cancelled;
            bool died = killed && (rc == TR_ECRASHED || rc == TR_ECLOSED);
            return cancelled || died? NULL: tr_error_dup (error);
        }
        if (!tri_portal_main_done (kid->portal) || tri_portal_acked (kid->portal))
            return NULL;
    }
    //  Asked to cancel and exited cleanly, or killed by us: no error.
    if (tri_child_clean (child) || killed)
        return NULL;
    return tri_child_death (child);
}

int
tr_nursery_close (tr_nursery_t **self_p, tr_error_t **errors_p)
{
    if (errors_p)
        *errors_p = NULL;
    if (!self_p)
        return TR_EINVAL;
    tr_nursery_t *self = *self_p;
    if (!self)
        return 0;
    if (!tri_task_current () || self->closing)
        return TR_EINVAL;
    *self_p = NULL;
    const tr_config_t *config = tri_config ();
    self->closing = true;
    bool cut_short = false;

    //  0. No spawn is left half done: those in progress end now.
    s_interrupt_spawns (self, TR_ECLOSED);
    while (self->spawning > 0)
        tri_waitq_wait_shielded (&self->events, -1);

    //  1. Wait for every run_in_actor result, unless cancelled or a child
    //  failed (rule 6: one cancels all).
    while (!self->cancelled && s_pending_main (self) && !s_any_failed (self)) {
        if (tri_waitq_wait (&self->events, -1) == TR_ECANCELED
        &&  tri_task_cancelled (tri_task_current ())) {
            cut_short = true;
            self->cancelled = true;
        }
    }
    if (s_any_failed (self))
        self->cancelled = true;

    //  2. Ask every child still running to cancel, wait for them to exit.
    EACH_KID (kid, self) {
        if (tri_child_exited (kid->child))
            continue;
        if (kid->portal)
            tri_portal_send_cancel (kid->portal);
        else
            tri_child_signal (kid->child, SIGKILL);
    }
    s_await_exits (self, tri_now_ms () + config->grace_ms);

    //  3. Rule 8: then SIGTERM, then SIGKILL; always reap.
    bool stragglers = false;
    EACH_KID (kid, self)
        if (!tri_child_exited (kid->child)) {
            tri_log_warn ("TR-GRACE", "%s did not exit within %d ms of its cancel: SIGTERM",
                          tri_child_uid (kid->child), config->grace_ms);
            tri_child_signal (kid->child, SIGTERM);
            stragglers = true;
        }
    if (stragglers)
        s_await_exits (self, tri_now_ms () + config->term_ms);
    EACH_KID (kid, self)
        if (!tri_child_exited (kid->child)) {
            tri_log_warn ("TR-KILL", "%s ignored SIGTERM: SIGKILL", tri_child_uid (kid->child));
            tri_child_kill_reap (kid->child);
        }

    //  4. Results and errors, then free everything, once nothing is in
    //  flight: no task inside a call through one of the portals, every
    //  main result and cancel ack read or given up on (rule 3).
    EACH_KID (kid, self)
        if (kid->portal)
            tri_portal_settle (kid->portal);
    tr_error_t *errors = NULL;
    EACH_KID (kid, self) {
        tr_error_t *error = s_kid_failure (self, kid);
        if (error)
            tri_error_append (&errors, error);
    }
    int rc = errors? tr_error_code (errors): (cut_short? TR_ECANCELED: 0);
    if (errors_p)
        *errors_p = errors;
    else
        tr_error_destroy (&errors);
    tri_node_t *node;
    while ((node = tri_list_first (&self->kids)))
        s_kid_free (tri_list_entry (node, kid_t, node));
    tri_node_unlink (&self->node);
    tr_error_destroy (&self->error);
    free (self);
    return rc;
}
