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
#include "testspawn.h"
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
    obs->pid_rc = tu_call_pid (p, &obs->child_pid);
    int reported;
    obs->via_rc = tu_call_grandchild_pid (p, &reported, &obs->grandchild_pid);
    tr_value_t *v = NULL;
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

START_TEST (a_linked_child_killed_with_sigkill_fails_its_call_as_crashed_at_once)
{
    tu_subreaper ();
    s_no_pidfd ();
    tu_kill_t obs;
    tu_frame_t frame;
    tu_kill_run (&obs, &frame);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A linked grandchild whose parent is killed exits by itself (rule 11)

START_TEST (a_linked_grandchild_whose_parent_is_killed_exits_by_itself)
{
    tu_subreaper ();
    s_no_pidfd ();
    tu_orphan_t obs;
    tu_orphan_run (&obs, SIGKILL);
    //  The middle actor's death is seen though its child lives on: the
    //  grandchild does not hold the middle's end of the root's link.
    ck_assert_msg (obs.seen_ms < tu_ms (3000), "the death was seen after %lld ms", obs.seen_ms);
    tu_orphan_check_gone (obs.grandchild_pid);
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
