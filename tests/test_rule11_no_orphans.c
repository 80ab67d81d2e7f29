/*  =========================================================================
    test_rule11_no_orphans.c - a child whose parent dies goes by itself

    Rule 11: a local child holds a pidfd of its parent and cancels itself
    when the parent exits, however it exits. The test process is a child
    subreaper, so the orphan comes back to it and its exit can be seen.
    =========================================================================
*/
#include "testutil.h"
#include "testspawn.h"
#include <signal.h>

static void
s_check_orphan_goes (int kill_signal)
{
    tu_subreaper ();
    long long start = tu_now_ms ();
    tu_orphan_t obs;
    tu_orphan_run (&obs, kill_signal);
    ck_assert_int_ne (obs.grandchild_pid, obs.child_pid);
    tu_orphan_check_gone (obs.grandchild_pid);
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
