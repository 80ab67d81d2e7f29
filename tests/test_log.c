/*  =========================================================================
    test_log.c - log lines: level filter, actor name and pid prefix, ids
    =========================================================================
*/
#include "testutil.h"
#include "../src/troupe_private.h"
#include <fcntl.h>

//  Send stderr to a fresh temporary file; return its fd.
static int
s_capture_stderr (void)
{
    char path [] = "/tmp/troupe-test-log-XXXXXX";
    int fd = mkstemp (path);
    ck_assert_int_ge (fd, 0);
    unlink (path);
    fflush (stderr);
    ck_assert_int_eq (dup2 (fd, STDERR_FILENO), STDERR_FILENO);
    return fd;
}

static char *
s_captured (int fd)
{
    fflush (stderr);
    static char text [4096];
    ssize_t n = pread (fd, text, sizeof text - 1, 0);
    text [n > 0? n: 0] = 0;
    return text;
}

START_TEST (test_lines_carry_name_pid_and_id)
{
    setenv ("TROUPE_LOGLEVEL", "info", 1);
    tri_log_init ("alpha");
    int fd = s_capture_stderr ();
    tr_log (TR_LOG_INFO, "TR-TEST", "value %d", 42);
    char expected [64];
    snprintf (expected, sizeof expected, "alpha[%d] TR-TEST value 42", (int) getpid ());
    ck_assert_msg (strstr (s_captured (fd), expected), "got: %s", s_captured (fd));
}
END_TEST

START_TEST (test_level_filters_lower_levels)
{
    setenv ("TROUPE_LOGLEVEL", "error", 1);
    tri_log_init ("beta");
    int fd = s_capture_stderr ();
    tr_log (TR_LOG_WARNING, "TR-HIDDEN", "not shown");
    tr_log (TR_LOG_INFO, "TR-HIDDEN", "not shown");
    tr_log (TR_LOG_ERROR, "TR-SHOWN", "shown");
    char *text = s_captured (fd);
    ck_assert_ptr_null (strstr (text, "TR-HIDDEN"));
    ck_assert_ptr_nonnull (strstr (text, "TR-SHOWN shown"));
    ck_assert (!tri_log_enabled (TR_LOG_DEBUG));
}
END_TEST

START_TEST (test_debug_level_shows_everything)
{
    setenv ("TROUPE_LOGLEVEL", "debug", 1);
    tri_log_init ("gamma");
    int fd = s_capture_stderr ();
    tri_log_debug ("TR-DBG", "deep %s", "detail");
    ck_assert_ptr_nonnull (strstr (s_captured (fd), "TR-DBG deep detail"));
}
END_TEST

START_TEST (test_unknown_level_means_warning)
{
    setenv ("TROUPE_LOGLEVEL", "loud", 1);
    tri_log_init ("delta");
    ck_assert (tri_log_enabled (TR_LOG_WARNING));
    ck_assert (!tri_log_enabled (TR_LOG_INFO));
    unsetenv ("TROUPE_LOGLEVEL");
    tri_log_init ("delta");
    ck_assert (tri_log_enabled (TR_LOG_WARNING));
    ck_assert (!tri_log_enabled (TR_LOG_INFO));
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("log");
    TCase *tc = tu_tcase (suite, "lines", 10);
    tcase_add_test (tc, test_lines_carry_name_pid_and_id);
    tcase_add_test (tc, test_level_filters_lower_levels);
    tcase_add_test (tc, test_debug_level_shows_everything);
    tcase_add_test (tc, test_unknown_level_means_warning);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
