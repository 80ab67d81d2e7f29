/*  =========================================================================
    testspawn.h - scenarios the spawning suites share

    test_spawn runs them on children linked by pidfds, test_no_pidfd runs
    them again on children linked by a socket pair, and
    test_rule11_no_orphans kills the middle of a tree in more ways than
    one: the pid calls of a tree of three processes, spawns of children
    that never say hello (test_rule7_cancel_during_spawn and
    test_regressions cut them short too), a child killed by SIGKILL while
    it serves a call, and a grandchild whose parent is killed, which must
    exit by itself. Each suite keeps its own tests and what only it
    checks; these run the scenario and check what every suite expects of
    it.

    Include after testutil.h.
    =========================================================================
*/
#ifndef TESTSPAWN_H_INCLUDED
#define TESTSPAWN_H_INCLUDED

//  --------------------------------------------------------------------------
//  Pids of a tree

//  The child's pid as it reports it (tests/worker's "pid").
static inline int
tu_call_pid (tr_portal_t *p, int *pid)
{
    return tu_call_int (p, "pid", NULL, pid);
}

//  Through the child, a new grandchild's pid: as the grandchild reports
//  it (reported) and as the child spawned it (pid).
static inline int
tu_call_grandchild_pid (tr_portal_t *p, int *reported, int *pid)
{
    tr_value_t *v = NULL;
    int rc = tu_call (p, "via_child", tr_pack ("[s[]]", "pid"), &v);
    if (rc == 0)
        tr_unpack (tr_value_object (v), "[ii]", reported, pid);
    tr_value_destroy (&v);
    return rc;
}

//  --------------------------------------------------------------------------
//  Spawns of children that never say hello

//  Park until this process has want children, alive or zombie, or the
//  deadline (on tu_now_ms) passed; whether it has them.
static inline bool
tu_wait_children (tr_ctx_t *ctx, int want, long long deadline)
{
    bool seen;
    while (!(seen = tu_children_now () >= want) && tu_now_ms () < deadline)
        tr_sleep (ctx, 5);
    return seen;
}

//  Run root as the root with a hello deadline of 20 s and stdin on a pipe
//  nobody writes to (tu_stdin_pipe), and check that tr_run returned 0.
//  Children that run /bin/cat then never say hello: a spawn of one that
//  ends sooner was ended by something else.
static inline void
tu_run_without_hellos (int (*root) (tr_actor_t *self, void *arg), void *obs)
{
    tu_stdin_pipe ();
    tr_config_t config = tu_config ();
    config.hello_ms = 20000;
    int rc = tr_run (&config, 0, NULL, root, obs);
    tu_stdin_close ();
    ck_assert_int_eq (rc, 0);
}

//  --------------------------------------------------------------------------
//  A child killed by SIGKILL while it serves a call

typedef struct {
    tr_portal_t *p;
    int rc;
    tu_err_t error;
} tu_sleeper_t;

//  A task whose call sleeps in the child for 10 s.
static inline int
tu_sleeper_ (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    tu_sleeper_t *self = arg;
    self->rc = tu_call (self->p, "sleep", tr_pack ("[i]", 10000), NULL);
    tu_err_copy (&self->error, tr_portal_error (self->p));
    return self->rc;
}

typedef struct {
    int join_rc;
    bool sleeping;
    tu_sleeper_t sleeper;
    long long fail_ms;              //  from the kill to the call's end
} tu_kill_t;

static inline int
tu_kill_body_ (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    tu_kill_t *obs = arg;
    obs->sleeper.p = p;
    tr_task_t *task;
    tr_task_spawn (tr_ctx_actor (ctx), tu_sleeper_, &obs->sleeper, &task);
    obs->sleeping = tu_wait_sleeping (ctx, p, 1, 5000);
    long long t0 = tu_now_ms ();
    kill (tr_portal_pid (p), SIGKILL);
    obs->join_rc = tr_task_join (&task, NULL);
    obs->fail_ms = tu_now_ms () - t0;
    return 0;
}

//  Run the scenario as the root, on a child named "victim", and check
//  that the call failed as crashed by SIGKILL within 3 s, and so did the
//  close. The test checks that no process is left.
static inline void
tu_kill_run (tu_kill_t *obs, tu_frame_t *frame)
{
    memset (obs, 0, sizeof *obs);
    *frame = (tu_frame_t) { .body = tu_kill_body_, .obs = obs, .name = "victim" };
    tu_run_frame (frame, NULL);
    ck_assert_msg (obs->sleeping, "the child never reported its sleeping call");
    ck_assert_tr_ok (obs->join_rc);
    ck_assert_tr_rc (obs->sleeper.rc, TR_ECRASHED);
    ck_assert_int_eq (obs->sleeper.error.signal, SIGKILL);
    ck_assert_msg (obs->fail_ms < tu_ms (3000), "the call failed %lld ms after the kill",
                   obs->fail_ms);
    ck_assert_tr_rc (frame->close_rc, TR_ECRASHED);
    ck_assert_int_eq (frame->close_error.signal, SIGKILL);
}

//  --------------------------------------------------------------------------
//  A grandchild whose parent is killed exits by itself (rule 11)

typedef struct {
    int kill_signal;                //  how the middle actor is killed
    int start_rc, hold_rc, close_rc;
    int child_pid, grandchild_pid;
    long long seen_ms;              //  from the kill to the child's reaping
} tu_orphan_t;

//  The root: start "middle", have it hold a grandchild, kill it with
//  kill_signal, close the nursery.
static inline int
tu_orphan_root_ (tr_actor_t *self, void *arg)
{
    tu_orphan_t *obs = arg;
    tr_nursery_t *n;
    tr_portal_t *child;
    tr_nursery_open (self, &n);
    obs->start_rc = tr_nursery_start_actor (n, "middle", NULL, &child);
    if (obs->start_rc == 0) {
        obs->hold_rc = tu_call_int (child, "hold_grandchild", NULL, &obs->grandchild_pid);
        obs->child_pid = tr_portal_pid (child);
    }
    long long t0 = tu_now_ms ();
    if (obs->grandchild_pid > 0)
        kill (obs->child_pid, obs->kill_signal);
    obs->close_rc = tr_nursery_close (&n, NULL);
    obs->seen_ms = tu_now_ms () - t0;
    return 0;
}

//  Run the scenario as the root, the middle actor killed with
//  kill_signal, and check that it held a grandchild and that its nursery
//  saw it die without being asked.
static inline void
tu_orphan_run (tu_orphan_t *obs, int kill_signal)
{
    memset (obs, 0, sizeof *obs);
    obs->kill_signal = kill_signal;
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, tu_orphan_root_, obs), 0);
    ck_assert_tr_ok (obs->start_rc);
    ck_assert_tr_ok (obs->hold_rc);
    ck_assert_int_gt (obs->grandchild_pid, 0);
    ck_assert_tr_rc (obs->close_rc, TR_ECRASHED);
}

//  Wait for pid (our orphan by now) to exit; its wait status, or -1.
static inline int
tu_reap_orphan (pid_t pid, int timeout_ms)
{
    long long deadline = tu_now_ms () + tu_ms (timeout_ms);
    int status;
    while (tu_now_ms () < deadline) {
        pid_t got = waitpid (pid, &status, WNOHANG);
        if (got == pid)
            return status;
        if (got < 0)
            return -1;
        //  The orphan's exit is no event this process can wait on (it
        //  holds no pidfd of it): check on a short period.
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        nanosleep (&ts, NULL);
    }
    return -1;
}

//  Check that the orphan exits within 3 s, having noticed its parent's
//  death and cancelled itself: exit status 1.
static inline void
tu_orphan_check_gone (pid_t pid)
{
    int status = tu_reap_orphan (pid, 3000);
    ck_assert_msg (status != -1, "the orphan %d did not exit within 3 s", (int) pid);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 1,
                   "orphan ended with wait status 0x%x", status);
}

#endif
