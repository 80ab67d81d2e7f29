/*  =========================================================================
    tri_child.h - child processes (spawn.c)

    A child is a process this actor spawned: its pidfd (or, where pidfds
    are refused, our end of a socket pair only it shares) watched by the
    loop, its hello awaited (by one task, together with the hellos of
    the children spawned with it, so that they start in parallel), its
    exit recorded; a child whose connection ends and that does not exit
    is lost, killed and reaped. Any number of tasks may wait for its
    exit. The record
    knows nothing of nurseries or portals; it closes its channel when the
    process is reaped (rule 3: with the drain period, so the child's last
    frames are still read).
    =========================================================================
*/
#ifndef TRI_CHILD_H_INCLUDED
#define TRI_CHILD_H_INCLUDED

typedef struct tri_child tri_child_t;

//  Spawn a child actor named name. On failure *error says why. Returns
//  0, TR_ENOMEM or TR_ESYS.
int
    tri_child_spawn (const char *name, const tr_spawn_opts_t *opts, tri_child_t **child,
                     tr_error_t **error);
//  Wait for the hello of each of count children, spawned beforehand, so
//  that they start in parallel; one task at a time awaits a child's
//  hello. The first failure ends the wait: then every one of the children
//  is killed and reaped, *failed is the index of the one that failed and
//  *error says why. Returns 0, TR_ETIMEDOUT, TR_ECANCELED, TR_ECRASHED,
//  TR_EVERSION, or the code tri_child_interrupt gave.
int
    tri_child_await_hellos (tri_child_t **children, size_t count, int64_t deadline,
                            size_t *failed, tr_error_t **error);
//  End a wait for the hello with rc (TR_ECANCELED, TR_ECLOSED).
void
    tri_child_interrupt (tri_child_t *self, int rc);
//  The channel its hello made, or NULL.
tri_channel_t *
    tri_child_channel (const tri_child_t *self);
const char *
    tri_child_uid (const tri_child_t *self);
int
    tri_child_pid (const tri_child_t *self);
//  Send sig (no effect once reaped). SIGTERM and SIGKILL mark it killed.
void
    tri_child_signal (tri_child_t *self, int sig);
//  Call fn (arg) on the loop, once, when the child is dead: reaped, or
//  lost (killed; reaped a moment later), after its channel has learnt of
//  its death. fn must not park. NULL removes it.
void
    tri_child_on_death (tri_child_t *self, void (*fn) (void *arg), void *arg);
//  Send sig to every child of this actor.
void
    tri_child_signal_all (int sig);
//  Park (shielded) until the child is reaped or the deadline passes.
//  Returns 0 or TR_ETIMEDOUT.
int
    tri_child_await_exit (tri_child_t *self, int64_t deadline);
//  Kill hard and reap, even past the deadline; never leaves a zombie.
void
    tri_child_kill_reap (tri_child_t *self);
//  The same for count children, killed together.
void
    tri_child_kill_reap_all (tri_child_t **children, size_t count);
bool
    tri_child_exited (const tri_child_t *self);
//  We sent it SIGTERM or SIGKILL.
bool
    tri_child_killed (const tri_child_t *self);
//  It was stopped for the heartbeat timeout, or its connection ended and
//  it did not exit: it stopped answering and we killed it. Its death is ConnectionLost,
//  a failure of its own.
bool
    tri_child_lost (const tri_child_t *self);
//  Children of this process sent SIGTERM or SIGKILL so far, each counted
//  once (for the benchmarks: a clean cancel has none).
size_t
    tri_child_hard_kills (void);
//  It exited with status 0.
bool
    tri_child_clean (const tri_child_t *self);
//  The error describing how it died (also when it exited 0: whether that
//  was asked for is the caller's to judge). NULL on ENOMEM.
tr_error_t *
    tri_child_death (const tri_child_t *self);
//  Free a reaped child.
void
    tri_child_destroy (tri_child_t **self_p);

#endif
