/*  =========================================================================
    test_rule11_no_orphans.c - a child whose parent dies goes by itself

    Rule 11: a local child holds a pidfd of its parent and cancels itself
    when the parent exits, however it exits. The test process is a child
    subreaper, so the orphan comes back to it and its exit can be seen.
    =========================================================================
*/
#include "testutil.h"
#include <signal.h>

typedef struct {
    int start_rc, hold_rc, close_rc;
    int child_pid, grandchild_pid;
    int kill_signal;                //  how the middle actor is killed
} orphan_state_t;

static int
s_kill_the_middle (tr_actor_t *self, void *arg)
{
    orphan_state_t *st = arg;
    tr_nursery_t *n;
    tr_portal_t *child;
    tr_nursery_open (self, &n);
    st->start_rc = tr_nursery_start_actor (n, "middle", NULL, &child);
    if (st->start_rc == 0) {
        tr_value_t *value = NULL;
        st->hold_rc = tr_portal_run (child, "hold_grandchild", NULL, &value);
        if (st->hold_rc == 0)
            tr_unpack (tr_value_object (value), "i", &st->grandchild_pid);
        tr_value_destroy (&value);
        st->child_pid = tr_portal_pid (child);
        if (st->grandchild_pid > 0)
            kill (st->child_pid, st->kill_signal);
    }
    st->close_rc = tr_nursery_close (&n, NULL);
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
        //  The orphan's exit is not an event we can poll without a pidfd
        //  of our own: check on a short period until the deadline.
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        nanosleep (&ts, NULL);
    }
    return -1;
}

static void
s_check_orphan_goes (int kill_signal)
{
    tu_subreaper ();
    orphan_state_t st = { .kill_signal = kill_signal };
    tr_config_t config = tu_config ();
    long long start = tu_now_ms ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_kill_the_middle, &st), 0);
    ck_assert_tr_ok (st.start_rc);
    ck_assert_tr_ok (st.hold_rc);
    ck_assert_int_gt (st.grandchild_pid, 0);
    ck_assert_int_ne (st.grandchild_pid, st.child_pid);
    //  The middle actor died without being asked: its nursery says so.
    ck_assert_tr_rc (st.close_rc, TR_ECRASHED);
    int status = s_reap_orphan (st.grandchild_pid, 3000);
    ck_assert_msg (status != -1, "the orphan %d did not exit within 3 s", st.grandchild_pid);
    //  It noticed its parent's death and cancelled itself: exit status 1.
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 1,
                   "orphan ended with wait status 0x%x", status);
    ck_assert_int_lt (tu_now_ms () - start, tu_ms (3000));
    tu_assert_no_procs_left (0);
}

START_TEST (test_a_grandchild_whose_parent_is_killed_with_sigkill_exits_by_itself)
{
    s_check_orphan_goes (SIGKILL);
}
END_TEST

START_TEST (test_a_grandchild_whose_parent_crashes_exits_by_itself)
{
    s_check_orphan_goes (SIGSEGV);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("rule11_no_orphans");
    TCase *tc = tu_tcase (suite, "orphans", 30);
    tcase_add_test (tc, test_a_grandchild_whose_parent_is_killed_with_sigkill_exits_by_itself);
    tcase_add_test (tc, test_a_grandchild_whose_parent_crashes_exits_by_itself);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
