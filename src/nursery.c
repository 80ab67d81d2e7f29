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

    A nursery given a strategy supervises its start_actor children: the
    loop tells it when one is reaped, and a supervisor task (one per
    nursery, shielded: only the close or a cancel ends it) stops the
    siblings the strategy names, spawns them again under their names and
    points their portals at the new processes. Deaths are counted in a
    sliding period; past the intensity it gives up and cancels the
    nursery, whose close then returns those deaths.
    =========================================================================
*/
#include "troupe_private.h"
#include <signal.h>

//  One child of the nursery.
typedef struct {
    tr_nursery_t *nursery;
    tri_child_t *child;
    tri_child_t *next;          //  its replacement, while it is spawned
    tr_portal_t *portal;        //  once it said hello
    bool spawning;              //  a task is in start_actor for it
    bool main;                  //  a run_in_actor child: never restarted
    bool down;                  //  died unasked (or stopped to restart)
    bool counted;               //  its death was counted
    bool stopping;              //  the supervisor stops it to restart it
    bool restart;               //  in this round of restarts
    //  what it was started with, to start it again
    char *name;
    char *worker_path;
    char *bind;
    char **env;
    tri_node_t node;            //  in the nursery's kids
} kid_t;

//  A death the supervisor counted.
typedef struct {
    int64_t at;
    tr_error_t *error;
} death_t;

struct tr_nursery {
    tri_list_t kids;
    bool closing;
    bool cancelled;             //  tr_nursery_cancel, a failure, or the
                                //  close's own task cancelled
    int spawning;               //  kids whose spawn is in progress
    tr_error_t *error;          //  the last spawn failure, for any task
    tri_waitq_t events;         //  a spawn ended, a result came, a cancel,
                                //  a child died
    //  supervision
    tr_supervise_t how;         //  strategy TR_NO_RESTART: none
    bool supervising;           //  the supervisor task runs
    bool gave_up;
    death_t *deaths;            //  within the period, oldest first
    int ndeaths;
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
    free (kid->name);
    free (kid->worker_path);
    free (kid->bind);
    for (char **e = kid->env; e && *e; e++)
        free (*e);
    free (kid->env);
    free (kid);
}

//  A new kid, with its own copy of what it is started with. NULL on ENOMEM.
static kid_t *
s_kid_new (tr_nursery_t *self, const char *name, const tr_spawn_opts_t *opts)
{
    kid_t *kid = calloc (1, sizeof *kid);
    if (!kid)
        return NULL;
    kid->nursery = self;
    tri_node_init (&kid->node);
    bool ok = (kid->name = strdup (name)) != NULL;
    if (ok && opts && opts->worker_path)
        ok = (kid->worker_path = strdup (opts->worker_path)) != NULL;
    if (ok && opts && opts->bind)
        ok = (kid->bind = strdup (opts->bind)) != NULL;
    if (ok && opts && opts->env) {
        size_t n = 0;
        while (opts->env [n])
            n++;
        ok = (kid->env = calloc (n + 1, sizeof (char *))) != NULL;
        for (size_t i = 0; ok && i < n; i++)
            ok = (kid->env [i] = strdup (opts->env [i])) != NULL;
    }
    if (!ok) {
        s_kid_free (kid);
        return NULL;
    }
    return kid;
}

//  Spawn a process for kid, from what it was started with.
static int
s_kid_spawn (kid_t *kid, tri_child_t **child, tr_error_t **error)
{
    tr_spawn_opts_t opts = {
        .worker_path = kid->worker_path,
        .bind = kid->bind,
        .env = (const char *const *) kid->env
    };
    return tri_child_spawn (kid->name, &opts, child, error);
}

static bool
s_any_down (tr_nursery_t *self)
{
    EACH_KID (kid, self)
        if (kid->down)
            return true;
    return false;
}

//  Calls made through the portals of the children a death will restart
//  wait for the restart from now on, not only once the supervisor runs.
static void
s_hold_calls (tr_nursery_t *self)
{
    bool after = false;
    EACH_KID (kid, self) {
        if (kid->main || !kid->portal)
            continue;
        if (kid->down)
            after = true;
        if (kid->down || self->how.strategy == TR_ONE_FOR_ALL
        ||  (self->how.strategy == TR_REST_FOR_ONE && after))
            tri_portal_restarting (kid->portal);
    }
}

//  A child of ours died (on the loop: must not park). One that died while
//  the nursery stood, unasked, is down: a supervisor restarts it, and
//  tr_nursery_wait hears of it.
static void
s_kid_died (void *arg)
{
    kid_t *kid = arg;
    tr_nursery_t *self = kid->nursery;
    //  Killed by us (a hard cancel, a second Ctrl-C), not for being lost:
    //  asked for.
    bool asked = tri_child_killed (kid->child) && !tri_child_lost (kid->child);
    if (!kid->spawning && kid->portal && !kid->main && !kid->stopping && !asked
    &&  !self->closing && !self->cancelled && !tri_portal_cancel_called (kid->portal)) {
        kid->down = true;
        if (self->how.strategy != TR_NO_RESTART)
            s_hold_calls (self);
    }
    tri_waitq_wake_all (&self->events, 0);
}

//  Await the hellos of count children spawned together, or, if spawning
//  them failed with rc after spawned of them, kill and reap those. On
//  failure every one is reaped when this returns. Returns rc, or how the
//  wait for the hellos ended.
static int
s_await_spawned (tri_child_t **children, size_t spawned, size_t count, int rc,
                 tr_error_t **error)
{
    if (rc) {
        tri_child_kill_reap_all (children, spawned);
        return rc;
    }
    size_t failed;
    return tri_child_await_hellos (children, count, tri_after_ms (tri_config ()->hello_ms),
                                   &failed, error);
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
        kid_t *kid = numbered && !kid_name? NULL
                   : s_kid_new (self, numbered? kid_name: name, opts);
        rc = !kid? TR_ENOMEM: s_kid_spawn (kid, &kid->child, &error);
        free (kid_name);
        if (rc) {
            if (kid)
                s_kid_free (kid);
            break;
        }
        kid->spawning = true;
        self->spawning++;
        tri_list_push_back (&self->kids, &kid->node);
        kids [spawned] = kid;
        children [spawned] = kid->child;
    }

    //  2. Every hello. On failure every child is killed and reaped before
    //  the wait returns.
    rc = s_await_spawned (children, spawned, count, rc, &error);
    for (size_t i = 0; i < count && rc == 0; i++)
        if (!(kids [i]->portal = tri_portal_new (tri_child_channel (children [i]),
                                                 tri_child_pid (children [i])))) {
            rc = TR_ENOMEM;
            tri_child_kill_reap_all (children, count);
        }
    for (size_t i = 0; i < spawned; i++) {
        kids [i]->spawning = false;
        if (rc == 0)
            tri_child_on_death (kids [i]->child, s_kid_died, kids [i]);
    }
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
    kid->main = true;
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
            tri_child_interrupt (kid->next? kid->next: kid->child, rc);
}

int
tr_nursery_cancel (tr_nursery_t *self, bool hard)
{
    if (!self)
        return TR_EINVAL;
    self->cancelled = true;
    s_interrupt_spawns (self, TR_ECANCELED);
    EACH_KID (kid, self) {
        //  No restart comes any more: calls waiting for one fail.
        if (kid->portal)
            tri_portal_restart_failed (kid->portal);
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
//  Stopping children

//  A kid this stop is about: every one, or those marked for a restart.
static bool
s_selected (const kid_t *kid, bool marked)
{
    return !marked || kid->restart;
}

//  Wait (shielded) until every selected child is reaped or the deadline
//  passes.
static void
s_await_exits (tr_nursery_t *self, bool marked, int64_t deadline)
{
    EACH_KID (kid, self)
        if (s_selected (kid, marked))
            tri_child_await_exit (kid->child, deadline);
}

//  Stop the selected children still running: ask each to cancel (rule 2;
//  one with no portal yet is killed), then rule 8: SIGTERM after the
//  grace period, SIGKILL after the next; return once each is reaped.
static void
s_stop_kids (tr_nursery_t *self, bool marked)
{
    const tr_config_t *config = tri_config ();
    EACH_KID (kid, self) {
        if (!s_selected (kid, marked) || tri_child_exited (kid->child))
            continue;
        if (kid->portal)
            tri_portal_send_cancel (kid->portal);
        else
            tri_child_signal (kid->child, SIGKILL);
    }
    s_await_exits (self, marked, tri_after_ms (config->grace_ms));
    bool stragglers = false;
    EACH_KID (kid, self)
        if (s_selected (kid, marked) && !tri_child_exited (kid->child)) {
            tri_log_warn ("TR-GRACE", "%s did not exit within %d ms of its cancel: SIGTERM",
                          tri_child_uid (kid->child), config->grace_ms);
            tri_child_signal (kid->child, SIGTERM);
            stragglers = true;
        }
    if (stragglers)
        s_await_exits (self, marked, tri_after_ms (config->term_ms));
    EACH_KID (kid, self)
        if (s_selected (kid, marked) && !tri_child_exited (kid->child)) {
            tri_log_warn ("TR-KILL", "%s ignored SIGTERM: SIGKILL", tri_child_uid (kid->child));
            tri_child_kill_reap (kid->child);
        }
}

//  --------------------------------------------------------------------------
//  Supervision

static const char *
s_strategy_name (tr_strategy_t strategy)
{
    return strategy == TR_ONE_FOR_ONE? "one_for_one"
         : strategy == TR_ONE_FOR_ALL? "one_for_all"
         : strategy == TR_REST_FOR_ONE? "rest_for_one": "no_restart";
}

//  Count a death (error is taken). True if that makes more than the
//  intensity within the period: then the supervisor gives up.
static bool
s_count_death (tr_nursery_t *self, tr_error_t *error)
{
    int64_t now = tri_now_ms ();
    int gone = 0;
    while (gone < self->ndeaths && self->deaths [gone].at < now - self->how.period_ms)
        tr_error_destroy (&self->deaths [gone++].error);
    memmove (self->deaths, self->deaths + gone, (size_t) (self->ndeaths - gone) * sizeof (death_t));
    self->ndeaths -= gone;
    //  There is room for intensity + 1: one more is giving up.
    self->deaths [self->ndeaths].at = now;
    self->deaths [self->ndeaths].error = error;
    self->ndeaths++;
    return self->ndeaths > self->how.intensity;
}

//  More deaths than the intensity: cancel the nursery. Calls waiting on
//  a dead child's restart fail with its death; the others are asked to
//  cancel, and the close returns the deaths.
static void
s_give_up (tr_nursery_t *self)
{
    tri_log_error ("TR-SUPERVISOR", "%d deaths within %d ms, more than %d: giving up",
                   self->ndeaths, self->how.period_ms, self->how.intensity);
    self->gave_up = true;
    self->cancelled = true;
    tr_error_destroy (&self->error);
    self->error = tr_error_dup (self->deaths [self->ndeaths - 1].error);
    EACH_KID (kid, self) {
        if (kid->portal)
            tri_portal_restart_failed (kid->portal);
        if (kid->down)
            continue;
        if (kid->portal)
            tri_portal_send_cancel (kid->portal);
        else
            tri_child_signal (kid->child, SIGKILL);
    }
    tri_waitq_wake_all (&self->events, TR_ECANCELED);
}

//  Count the new deaths. Returns true if the supervisor gave up.
static bool
s_count_deaths (tr_nursery_t *self)
{
    EACH_KID (kid, self) {
        if (!kid->down || kid->counted)
            continue;
        kid->counted = true;
        tr_error_t *death = tri_child_death (kid->child);
        if (!death)
            death = tri_error_new (TR_ECRASHED, "Crashed", tri_child_uid (kid->child),
                                   "%s died", tri_child_uid (kid->child));
        bool give_up = s_count_death (self, death);
        tri_log_warn ("TR-RESTART", "%s died: %s; %s (%s)", tri_child_uid (kid->child),
                      death? tr_error_message (death): "out of memory",
                      give_up? "too many deaths": "restarting", s_strategy_name (self->how.strategy));
        if (give_up) {
            s_give_up (self);
            return true;
        }
    }
    return false;
}

//  Mark the children this round restarts: the dead ones and the
//  siblings the strategy names (start_actor children only).
static void
s_mark_round (tr_nursery_t *self)
{
    bool after = false;
    EACH_KID (kid, self) {
        kid->restart = false;
        if (kid->main || !kid->portal)
            continue;
        if (kid->down)
            after = true;
        switch (self->how.strategy) {
            case TR_ONE_FOR_ALL:  kid->restart = true; break;
            case TR_REST_FOR_ONE: kid->restart = after; break;
            default:              kid->restart = kid->down; break;
        }
    }
}

//  Spawn every marked child again, their hellos awaited together, and
//  point each portal at its new process. A failure is one more death.
//  Returns true if the supervisor gave up.
static bool
s_respawn (tr_nursery_t *self)
{
    size_t count = 0;
    EACH_KID (kid, self)
        if (kid->restart)
            count++;
    tri_child_t **children = calloc (count? count: 1, sizeof *children);
    kid_t **kids = calloc (count? count: 1, sizeof *kids);
    tr_error_t *error = NULL;
    int rc = !children || !kids? TR_ENOMEM: 0;
    size_t spawned = 0;
    EACH_KID (kid, self) {
        if (!kid->restart || rc)
            continue;
        if ((rc = s_kid_spawn (kid, &kid->next, &error)))
            break;
        kid->spawning = true;
        self->spawning++;
        kids [spawned] = kid;
        children [spawned++] = kid->next;
    }
    rc = s_await_spawned (children, spawned, count, rc, &error);
    for (size_t i = 0; i < spawned; i++) {
        kid_t *kid = kids [i];
        kid->spawning = false;
        self->spawning--;
        if (rc == 0 && tri_portal_rebind (kid->portal, tri_child_channel (kid->next),
                                          tri_child_pid (kid->next)) == 0) {
            tri_child_destroy (&kid->child);
            kid->child = kid->next;
            tri_child_on_death (kid->child, s_kid_died, kid);
            kid->down = kid->counted = kid->stopping = false;
            tri_log_info ("TR-RESTART", "%s restarted as %s (pid %d), restart %d",
                            kid->name, tri_child_uid (kid->child), tri_child_pid (kid->child),
                            tr_portal_restarts (kid->portal));
        }
        else {
            if (rc == 0)
                rc = TR_ENOMEM;
            tri_child_kill_reap (kid->next);
            tri_child_destroy (&kid->next);
        }
        kid->next = NULL;
    }
    free (children);
    free (kids);
    //  A death during this round restarts some of these again next: their
    //  calls, woken by the rebind, wait once more (they run only once
    //  this task parks).
    if (s_any_down (self))
        s_hold_calls (self);
    tri_waitq_wake_all (&self->events, 0);
    if (rc == 0 || self->closing || self->cancelled) {
        tr_error_destroy (&error);
        return false;
    }
    if (!error)
        error = tri_error_new (rc, "SpawnError", tri_uid (), "cannot restart: %s",
                               tr_strerror (rc));
    tri_log_warn ("TR-RESTART", "restart failed: %s", tr_error_message (error));
    if (s_count_death (self, error)) {
        s_give_up (self);
        return true;
    }
    return false;
}

//  The supervisor: one round per death, until the close or a cancel.
static void
s_supervise (void *arg)
{
    tr_nursery_t *self = arg;
    while (!self->closing && !self->cancelled) {
        if (!s_any_down (self)) {
            tri_waitq_wait_shielded (&self->events, -1);
            continue;
        }
        if (s_count_deaths (self))
            break;
        s_mark_round (self);
        EACH_KID (kid, self)
            if (kid->restart && !kid->down) {
                kid->stopping = true;
                tri_portal_restarting (kid->portal);
            }
        s_stop_kids (self, true);
        EACH_KID (kid, self)
            if (kid->restart)
                kid->down = kid->counted = true;
        if (self->closing || self->cancelled || s_respawn (self))
            break;
    }
    self->supervising = false;
    tri_waitq_wake_all (&self->events, 0);
}

int
tr_nursery_supervise (tr_nursery_t *self, const tr_supervise_t *how)
{
    if (!self || !how || self->closing || self->cancelled
    ||  how->strategy < TR_NO_RESTART || how->strategy > TR_REST_FOR_ONE
    ||  how->intensity < 0 || how->period_ms < 0)
        return TR_EINVAL;
    int intensity = how->intensity? how->intensity: 3;
    death_t *deaths = realloc (self->deaths, (size_t) (intensity + 1) * sizeof *deaths);
    if (!deaths)
        return TR_ENOMEM;
    self->deaths = deaths;
    while (self->ndeaths > intensity + 1)
        tr_error_destroy (&self->deaths [--self->ndeaths].error);
    self->how.strategy = how->strategy;
    self->how.intensity = intensity;
    self->how.period_ms = how->period_ms? how->period_ms: 5000;
    if (how->strategy != TR_NO_RESTART && !self->supervising) {
        if (!tri_task_new (s_supervise, self, 0, false))
            return TR_ENOMEM;
        self->supervising = true;
    }
    //  Those already down are restarted now.
    if (how->strategy != TR_NO_RESTART && s_any_down (self))
        s_hold_calls (self);
    tri_waitq_wake_all (&self->events, 0);
    return 0;
}

int
tr_nursery_wait (tr_nursery_t *self, int timeout_ms)
{
    if (!self || timeout_ms < -1 || !tri_task_current () || self->closing)
        return TR_EINVAL;
    int64_t deadline = tri_deadline (timeout_ms);
    const tr_error_t *error;
    for (;;) {
        if (self->gave_up) {
            const tr_error_t *last = self->deaths [self->ndeaths - 1].error;
            return last? tr_error_code (last): TR_ECRASHED;
        }
        if (self->cancelled || tri_task_cancelled (tri_task_current ()))
            return TR_ECANCELED;
        EACH_KID (kid, self) {
            if (kid->down && self->how.strategy == TR_NO_RESTART)
                return TR_ECRASHED;
            int rc = kid->portal? tri_portal_main_failure (kid->portal, &error): 0;
            if (rc)
                return rc;
        }
        if (tri_waitq_wait (&self->events, deadline) == TR_ETIMEDOUT)
            return TR_ETIMEDOUT;
    }
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
    self->closing = true;
    bool cut_short = false;

    //  0. No spawn is left half done: those in progress end now.
    s_interrupt_spawns (self, TR_ECLOSED);
    while (self->spawning > 0 || self->supervising) {
        tri_waitq_wake_all (&self->events, 0);
        tri_waitq_wait_shielded (&self->events, -1);
    }
    //  Calls waiting for a restart that will not come fail now.
    EACH_KID (kid, self)
        if (kid->portal)
            tri_portal_restart_failed (kid->portal);

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

    //  2, 3. Ask every child still running to cancel; rule 8: then
    //  SIGTERM, then SIGKILL; always reap.
    s_stop_kids (self, false);

    //  4. Results and errors, then free everything, once nothing is in
    //  flight: no task inside a call through one of the portals, every
    //  main result and cancel ack read or given up on (rule 3).
    EACH_KID (kid, self)
        if (kid->portal)
            tri_portal_settle (kid->portal);
    //  A supervisor that gave up fails with the deaths it counted; the
    //  deaths it restarted, or was restarting, are no failure.
    tr_error_t *errors = NULL;
    for (int i = 0; self->gave_up && i < self->ndeaths; i++) {
        tri_error_append (&errors, self->deaths [i].error);
        self->deaths [i].error = NULL;
    }
    EACH_KID (kid, self) {
        if (kid->down && self->how.strategy != TR_NO_RESTART)
            continue;
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
    for (int i = 0; i < self->ndeaths; i++)
        tr_error_destroy (&self->deaths [i].error);
    free (self->deaths);
    free (self);
    return rc;
}
