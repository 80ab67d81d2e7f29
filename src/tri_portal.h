/*  =========================================================================
    tri_portal.h - what the nursery asks of a portal (portal.c)

    A portal is the one owner of cancel-with-ack (rule 2) and of a
    run_in_actor main call's cached outcome (rule 9); the nursery asks it,
    rather than reading the channel, whether its actor was asked to cancel
    and whether its main call failed.
    =========================================================================
*/
#ifndef TRI_PORTAL_H_INCLUDED
#define TRI_PORTAL_H_INCLUDED

//  A portal on channel (a reference is taken); pid 0 when not a child.
tr_portal_t *
    tri_portal_new (tri_channel_t *channel, int pid);
void
    tri_portal_destroy (tr_portal_t **self_p);
//  The channel a new call or context through the portal goes on, or NULL
//  with *rc saying why not (recorded on the running task: the actor was
//  asked to cancel, or is gone; or the task is cancelled).
tri_channel_t *
    tri_portal_channel (tr_portal_t *self, int *rc);
//  The channel to its actor, whatever the state of the calling task.
tri_channel_t *
    tri_portal_peer (const tr_portal_t *self);
//  No call can go through it any more: closed, its actor asked to cancel
//  or gone.
bool
    tri_portal_closed (const tr_portal_t *self);
//  Start fn(args) as the portal's main call; its answer is kept (rule 9)
//  and on_done (arg) runs on the loop when it comes. On failure *error
//  says why. Returns 0, TR_ECLOSED, TR_ETOOBIG or TR_ENOMEM.
int
    tri_portal_start_main (tr_portal_t *self, const char *fn, const tr_args_t *args,
                           void (*on_done) (void *arg), void *arg, tr_error_t **error);
//  True if there is no main call or it has ended.
bool
    tri_portal_main_done (const tr_portal_t *self);
//  The main call's failure, judged: 0 if it succeeded, is still running,
//  or ended because we asked the actor to cancel (rule 2); else its code,
//  and *error (borrowed) says why.
int
    tri_portal_main_failure (const tr_portal_t *self, const tr_error_t **error);
//  Ask the actor to cancel, once; never parks (rule 2).
void
    tri_portal_send_cancel (tr_portal_t *self);
//  It acknowledged the cancel we asked for.
bool
    tri_portal_acked (const tr_portal_t *self);
//  The actor was asked to cancel (by anyone).
bool
    tri_portal_cancel_called (const tr_portal_t *self);
//  Its actor died and a supervisor restarts it: calls and contexts made
//  through it wait for tri_portal_rebind or tri_portal_restart_failed.
void
    tri_portal_restarting (tr_portal_t *self);
//  From now on the portal reaches the restarted actor on channel (a
//  reference is taken), with its uid, endpoint and pid; the restart count
//  goes up. Returns 0 or TR_ENOMEM (the portal is unchanged).
int
    tri_portal_rebind (tr_portal_t *self, tri_channel_t *channel, int pid);
//  The restart was given up on: waiting calls fail with the death.
void
    tri_portal_restart_failed (tr_portal_t *self);
//  Actor cancels acknowledged so far, through every portal of this
//  process (for the benchmarks).
size_t
    tri_portal_acks (void);
//  Wait (in a task, shielded) until nothing is in flight on the portal:
//  no task inside a call through it, the main call ended, the actor
//  cancel acknowledged or given up on. Its peer must be gone or asked to
//  cancel: then this takes at most the drain period (rule 3: a child's
//  last answers and its ack are read even when its exit is seen first).
void
    tri_portal_settle (tr_portal_t *self);

#endif
