/*  =========================================================================
    test_no_pidfd.c - trees where pidfds are refused

    Where the kernel refuses pidfds (valgrind 3.19 does not know
    pidfd_open), a parent links each child by a socket pair instead.
    TROUPE_NO_PIDFD=1 forces that here, in each forked test process before
    it becomes a root, and its children inherit it. The trees must behave
    as with pidfds: a child is spawned, called and reaped; its death by
    SIGKILL fails its call at once; the child of a parent killed exits by
    itself; no process is left.
    =========================================================================
*/
#include "testutil.h"
#include "troupe_private.h"
#include <signal.h>

//  How many pidfds this process holds now.
static int
s_pidfds_held (void)
{
    int count = 0;
    DIR *dir = opendir ("/proc/self/fd");
    if (!dir)
        return -1;
    struct dirent *e;
    while ((e = readdir (dir)) != NULL) {
        char path [300], target [64];
        snprintf (path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink (path, target, sizeof target - 1);
        if (n > 0) {
            target [n] = 0;
            if (streq (target, "anon_inode:[pidfd]"))
                count++;
        }
    }
    closedir (dir);
    return count;
}

static void
s_no_pidfd (void)
{
    ck_assert_int_eq (setenv ("TROUPE_NO_PIDFD", "1", 1), 0);
    ck_assert (tri_pidfd_refused ());
}

//  --------------------------------------------------------------------------
//  A linked child answers calls, has a grandchild, and is reaped

typedef struct {
    int pid_rc, via_rc, env_rc;
    int child_pid, grandchild_pid;
    int pidfds;                     //  held by the root, child running
    bool env_null;                  //  the child consumed its link's variable
} s_calls_t;

static int
s_calls_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_calls_t *obs = arg;
    tr_value_t *v = NULL;
    obs->pid_rc = tu_call (p, "pid", NULL, &v);
    if (obs->pid_rc == 0)
        tr_unpack (tr_value_object (v), "i", &obs->child_pid);
    tr_value_destroy (&v);
    obs->via_rc = tu_call (p, "via_child", tr_pack ("[s[]]", "pid"), &v);
    if (obs->via_rc == 0) {
        int reported;
        tr_unpack (tr_value_object (v), "[ii]", &reported, &obs->grandchild_pid);
    }
    tr_value_destroy (&v);
    obs->env_rc = tu_call (p, "getenv", tr_pack ("[s]", "TROUPE_PARENT_FD"), &v);
    if (obs->env_rc == 0)
        obs->env_null = tr_value_object (v)->type == MSGPACK_OBJECT_NIL;
    tr_value_destroy (&v);
    obs->pidfds = s_pidfds_held ();
    return 0;
}

START_TEST (a_linked_child_answers_calls_through_a_grandchild_and_is_reaped)
{
    tu_subreaper ();
    s_no_pidfd ();
    s_calls_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_calls_body, .obs = &obs, .name = "linked" };
    tu_run_frame (&frame, NULL);
    ck_assert_tr_ok (obs.pid_rc);
    ck_assert_tr_ok (obs.via_rc);
    ck_assert_tr_ok (obs.env_rc);
    ck_assert_int_gt (obs.child_pid, 0);
    ck_assert_int_gt (obs.grandchild_pid, 0);
    ck_assert_int_ne (obs.grandchild_pid, obs.child_pid);
    ck_assert_msg (obs.env_null, "the child left TROUPE_PARENT_FD in its environment");
    ck_assert_int_eq (obs.pidfds, 0);
    ck_assert_tr_ok (frame.close_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A linked child killed with SIGKILL fails its call at once

typedef struct {
    tr_portal_t *p;
    int rc;
    tu_err_t error;
} s_sleeper_t;

static int
s_sleeper (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_sleeper_t *self = arg;
    self->rc = tu_call (self->p, "sleep", tr_pack ("[i]", 10000), NULL);
    tu_err_copy (&self->error, tr_portal_error (self->p));
    return self->rc;
}

typedef struct {
    int join_rc;
    bool sleeping;
    s_sleeper_t sleeper;
    long long fail_ms;
} s_kill_t;

static int
s_kill_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_kill_t *obs = arg;
    obs->sleeper.p = p;
    tr_task_t *task;
    tr_task_spawn (tr_ctx_actor (ctx), s_sleeper, &obs->sleeper, &task);
    obs->sleeping = tu_wait_sleeping (ctx, p, 1, 5000);
    long long t0 = tu_now_ms ();
    kill (tr_portal_pid (p), SIGKILL);
    obs->join_rc = tr_task_join (&task, NULL);
    obs->fail_ms = tu_now_ms () - t0;
    return 0;
}

START_TEST (a_linked_child_killed_with_sigkill_fails_its_call_as_crashed_at_once)
{
    tu_subreaper ();
    s_no_pidfd ();
    s_kill_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_kill_body, .obs = &obs, .name = "victim" };
    tu_run_frame (&frame, NULL);
    ck_assert_msg (obs.sleeping, "the child never reported its sleeping call");
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_tr_rc (obs.sleeper.rc, TR_ECRASHED);
    ck_assert_int_eq (obs.sleeper.error.signal, SIGKILL);
    ck_assert_msg (obs.fail_ms < tu_ms (3000), "the call failed %lld ms after the kill",
                   obs.fail_ms);
    ck_assert_tr_rc (frame.close_rc, TR_ECRASHED);
    ck_assert_int_eq (frame.close_error.signal, SIGKILL);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A linked grandchild whose parent is killed exits by itself (rule 11)

typedef struct {
    int start_rc, hold_rc, close_rc;
    int child_pid, grandchild_pid;
    long long seen_ms;              //  from the kill to the child's reaping
} s_orphan_t;

static int
s_orphan_root (tr_actor_t *self, void *arg)
{
    s_orphan_t *obs = arg;
    tr_nursery_t *n;
    tr_portal_t *child;
    tr_nursery_open (self, &n);
    obs->start_rc = tr_nursery_start_actor (n, "middle", NULL, &child);
    if (obs->start_rc == 0) {
        tr_value_t *value = NULL;
        obs->hold_rc = tu_call (child, "hold_grandchild", NULL, &value);
        if (obs->hold_rc == 0)
            tr_unpack (tr_value_object (value), "i", &obs->grandchild_pid);
        tr_value_destroy (&value);
        obs->child_pid = tr_portal_pid (child);
    }
    long long t0 = tu_now_ms ();
    if (obs->grandchild_pid > 0)
        kill (obs->child_pid, SIGKILL);
    obs->close_rc = tr_nursery_close (&n, NULL);
    obs->seen_ms = tu_now_ms () - t0;
    return 0;
}

//  Wait for pid (our orphan by now) to exit; its wait status, or -1.
static int
s_reap_orphan (pid_t pid, int timeout_ms)
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
        //  holds no pidfd, by design here): check on a short period.
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        nanosleep (&ts, NULL);
    }
    return -1;
}

START_TEST (a_linked_grandchild_whose_parent_is_killed_exits_by_itself)
{
    tu_subreaper ();
    s_no_pidfd ();
    s_orphan_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_orphan_root, &obs), 0);
    ck_assert_tr_ok (obs.start_rc);
    ck_assert_tr_ok (obs.hold_rc);
    ck_assert_int_gt (obs.grandchild_pid, 0);
    //  The middle actor's death is seen though its child lives on: the
    //  grandchild does not hold the middle's end of the root's link.
    ck_assert_tr_rc (obs.close_rc, TR_ECRASHED);
    ck_assert_msg (obs.seen_ms < tu_ms (3000), "the death was seen after %lld ms", obs.seen_ms);
    int status = s_reap_orphan (obs.grandchild_pid, 3000);
    ck_assert_msg (status != -1, "the orphan %d did not exit within 3 s", obs.grandchild_pid);
    //  It noticed its parent's death and cancelled itself: exit status 1.
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 1,
                   "orphan ended with wait status 0x%x", status);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  A linked child acknowledges its cancel and is reaped (rule 2)

static int
s_nil_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx; (void) arg;
    return tu_call (p, "nil", NULL, NULL);
}

START_TEST (a_linked_child_is_cancelled_and_reaped_when_its_nursery_closes)
{
    tu_subreaper ();
    s_no_pidfd ();
    tu_frame_t frame = { .body = s_nil_body, .name = "quiet" };
    tu_run_frame (&frame, NULL);
    ck_assert_tr_ok (frame.close_rc);
    ck_assert_int_eq (frame.close_errors, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("no_pidfd");
    TCase *tc = tu_tcase (suite, "linked", 30);
    tcase_add_test (tc, a_linked_child_answers_calls_through_a_grandchild_and_is_reaped);
    tcase_add_test (tc, a_linked_child_is_cancelled_and_reaped_when_its_nursery_closes);
    tcase_add_test (tc, a_linked_child_killed_with_sigkill_fails_its_call_as_crashed_at_once);
    tcase_add_test (tc, a_linked_grandchild_whose_parent_is_killed_exits_by_itself);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
