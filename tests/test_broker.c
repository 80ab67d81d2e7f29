/*  =========================================================================
    test_broker.c - troupe-broker, run as an operator runs it

    The test process starts the installed-style program (the build tree's
    broker/troupe-broker, or $TROUPE_TEST_BROKER) with fork and exec, reads
    its stdout and stderr through pipes and watches it through a pidfd, so
    every wait is on an event with a deadline: the line that says where it
    serves, its exit. Reaching it is a root of this process opening a
    portal on the endpoint it printed.
    =========================================================================
*/
#include "testutil.h"
#include "testproc.h"

//  Its stderr holds arg, or it closed it.
static bool
s_err_has (tu_proc_t *b, const void *arg)
{
    return strstr (b->err_text, (const char *) arg) != NULL || b->err < 0;
}

//  Start it with the options in args (NULL-terminated) and wait (5 s at
//  most) for the line that says where it serves.
static void
s_broker_start (tu_proc_t *b, const char *const *args)
{
    tu_proc_spawn (b, tu_broker_path (), args);
    tu_proc_pump (b, tu_now_ms () + tu_ms (5000), tu_proc_has_line, NULL);
    ck_assert_msg (sscanf (b->out_text, "troupe-broker serving at %255s", b->endpoint) == 1,
                   "no serving line; stdout '%s', stderr '%s'", b->out_text, b->err_text);
}

//  Run it to its end (it is expected to exit by itself) and check how.
static void
s_broker_expect_exit (tu_proc_t *b, const char *const *args, int want)
{
    tu_proc_spawn (b, tu_broker_path (), args);
    tu_proc_expect_exit (b, 5000, want);
}

//  --------------------------------------------------------------------------
//  A test that dies leaves no program behind

//  Whether pid, a child of this process (its subreaper), has ended by
//  deadline; reaped if so.
static bool
s_reaped_by (pid_t pid, long long deadline)
{
    while (tu_now_ms () < deadline) {
        int status;
        if (waitpid (pid, &status, WNOHANG) == pid)
            return true;
        usleep (5 * 1000);
    }
    return false;
}

START_TEST (test_a_broker_a_test_started_ends_when_the_test_process_dies)
{
    //  A test process that fails an assertion, times out or crashes ends
    //  without reaping what it started; the broker must not outlive it.
    tu_subreaper ();
    int pids [2];
    ck_assert_int_eq (pipe (pids), 0);
    pid_t test = fork ();
    ck_assert_int_ge (test, 0);
    if (test == 0) {
        close (pids [0]);
        tu_proc_t b;
        s_broker_start (&b, NULL);
        pid_t broker = b.pid;
        if (write (pids [1], &broker, sizeof broker) != sizeof broker)
            _exit (2);
        _exit (1);                  //  as Check ends a failed test
    }
    close (pids [1]);
    pid_t broker = 0;
    ck_assert_int_eq (read (pids [0], &broker, sizeof broker), (ssize_t) sizeof broker);
    close (pids [0]);
    int status;
    ck_assert_int_eq (waitpid (test, &status, 0), test);
    bool ended = s_reaped_by (broker, tu_now_ms () + tu_ms (5000));
    if (!ended) {
        kill (broker, SIGKILL);
        waitpid (broker, &status, 0);
    }
    ck_assert_msg (ended, "the broker outlived the test process that started it");
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  The command line

START_TEST (test_help_prints_the_usage_on_stdout_and_exits_0)
{
    tu_subreaper ();
    tu_proc_t b;
    const char *args [] = { "--help", NULL };
    s_broker_expect_exit (&b, args, 0);
    ck_assert_contains (b.out_text, "Usage: troupe-broker");
    ck_assert_contains (b.out_text, "--endpoint ENDPOINT");
    ck_assert_contains (b.out_text, "--max-registrations N");
    ck_assert_contains (b.out_text, "--lease-ms MS");
    ck_assert_contains (b.out_text, "--verbose");
    ck_assert_str_eq (b.err_text, "");
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_version_prints_the_library_version_and_exits_0)
{
    tu_subreaper ();
    tu_proc_t b;
    const char *args [] = { "--version", NULL };
    s_broker_expect_exit (&b, args, 0);
    char want [64];
    snprintf (want, sizeof want, "troupe-broker %d.%d.%d\n",
              TR_VERSION_MAJOR, TR_VERSION_MINOR, TR_VERSION_PATCH);
    ck_assert_str_eq (b.out_text, want);
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_an_unknown_option_exits_2_naming_it)
{
    tu_subreaper ();
    tu_proc_t b;
    const char *args [] = { "--frobnicate", NULL };
    s_broker_expect_exit (&b, args, 2);
    ck_assert_contains (b.err_text, "troupe-broker: unknown option '--frobnicate'");
    ck_assert_contains (b.err_text, "Try 'troupe-broker --help'");
    ck_assert_str_eq (b.out_text, "");
    const char *short_args [] = { "-vx", NULL };
    s_broker_expect_exit (&b, short_args, 2);
    ck_assert_contains (b.err_text, "troupe-broker: unknown option '-x'");
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_an_option_without_its_value_exits_2_naming_it)
{
    tu_subreaper ();
    tu_proc_t b;
    const char *args [] = { "--endpoint", NULL };
    s_broker_expect_exit (&b, args, 2);
    ck_assert_contains (b.err_text, "option '--endpoint' needs a value");
    ck_assert_str_eq (b.out_text, "");
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_a_stray_argument_exits_2_naming_it)
{
    tu_subreaper ();
    tu_proc_t b;
    const char *args [] = { "tcp://127.0.0.1:5555", NULL };
    s_broker_expect_exit (&b, args, 2);
    ck_assert_contains (b.err_text, "unexpected argument 'tcp://127.0.0.1:5555'");
    tu_assert_no_procs_left (0);
}
END_TEST

//  Every value must fail before anything binds: the endpoint given is one
//  the broker could serve at.
static void
s_check_bad_values (const char *option, const char *const *values, size_t count)
{
    tu_subreaper ();
    for (size_t i = 0; i < count; i++) {
        tu_proc_t b;
        const char *args [] = { "--endpoint", "tcp://127.0.0.1:*", option, values [i], NULL };
        s_broker_expect_exit (&b, args, 2);
        char want [128];
        snprintf (want, sizeof want, "bad %s '%s'", option, values [i]);
        ck_assert_contains (b.err_text, want);
        ck_assert_str_eq (b.out_text, "");
    }
    tu_assert_no_procs_left (0);
}

START_TEST (test_a_bad_max_registrations_exits_2_naming_the_value)
{
    const char *values [] = { "abc", "0", "-3", "12x", "", " 5", "+5", "99999999999" };
    s_check_bad_values ("--max-registrations", values, sizeof values / sizeof values [0]);
}
END_TEST

START_TEST (test_a_lease_that_is_not_a_number_or_too_short_exits_2_naming_the_value)
{
    const char *values [] = { "ten", "99", "0", "-1000", "1e4", "4294967296" };
    s_check_bad_values ("--lease-ms", values, sizeof values / sizeof values [0]);
}
END_TEST

//  --------------------------------------------------------------------------
//  Serving

typedef struct {
    const char *endpoint;
    bool cancel;                    //  ask it to cancel after the call
    int open_rc, run_rc, cancel_rc;
    char name [64];
    char uid [256];
    char endpoint_seen [256];
    int pid;
} info_state_t;

//  Open a portal on the broker, call tr.info, maybe cancel it.
static int
s_info_root (tr_actor_t *self, void *arg)
{
    info_state_t *st = arg;
    tr_portal_t *p = NULL;
    st->open_rc = tr_portal_open (self, st->endpoint, tu_ms (5000), &p);
    if (st->open_rc)
        return 1;
    tr_value_t *v = NULL;
    st->run_rc = tr_portal_run (p, "tr.info", NULL, &v);
    const char *name = "", *uid = "", *endpoint = "";
    if (st->run_rc == 0
    &&  tr_unpack (tr_value_object (v), "{s:s, s:s, s:s, s:i}", "name", &name, "uid", &uid,
                   "endpoint", &endpoint, "pid", &st->pid))
        st->run_rc = TR_EFORMAT;
    snprintf (st->name, sizeof st->name, "%s", name);
    snprintf (st->uid, sizeof st->uid, "%s", uid);
    snprintf (st->endpoint_seen, sizeof st->endpoint_seen, "%s", endpoint);
    tr_value_destroy (&v);
    if (st->cancel)
        st->cancel_rc = tr_portal_cancel_actor (p, tu_ms (2000));
    tr_portal_close (&p);
    return 0;
}

static void
s_call_info (info_state_t *st)
{
    tr_config_t config = { .name = "root" };
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_info_root, st), 0);
    ck_assert_tr_ok (st->open_rc);
    ck_assert_tr_ok (st->run_rc);
}

START_TEST (test_it_serves_at_a_free_port_and_answers_as_troupe_broker)
{
    tu_subreaper ();
    tu_proc_t b;
    const char *args [] = { "--endpoint", "tcp://127.0.0.1:*",
                            "--max-registrations", "10", "--lease-ms", "3000", NULL };
    s_broker_start (&b, args);
    //  The port ZeroMQ chose, not the wildcard.
    ck_assert_msg (strncmp (b.endpoint, "tcp://127.0.0.1:", 16) == 0 && atoi (b.endpoint + 16) > 0,
                   "printed endpoint '%s'", b.endpoint);
    info_state_t st = { .endpoint = b.endpoint };
    s_call_info (&st);
    ck_assert_str_eq (st.name, "troupe-broker");
    ck_assert (strncmp (st.uid, "troupe-broker@", 14) == 0);
    ck_assert_str_eq (st.endpoint_seen, b.endpoint);
    ck_assert_int_eq (st.pid, b.pid);
    ck_assert_int_eq (kill (b.pid, SIGTERM), 0);
    int status = tu_proc_wait_status (&b, 5000);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0, "status 0x%x", status);
    tu_assert_no_procs_left (0);
}
END_TEST

//  Started and reached, then sig: it exits 0 within 2 s (scaled).
static void
s_check_stops_on (int sig)
{
    tu_subreaper ();
    unsetenv ("TROUPE_LOGLEVEL");
    tu_proc_t b;
    const char *args [] = { "--endpoint", "tcp://127.0.0.1:*", NULL };
    s_broker_start (&b, args);
    info_state_t st = { .endpoint = b.endpoint };
    s_call_info (&st);
    long long signalled = tu_now_ms ();
    ck_assert_int_eq (kill (b.pid, sig), 0);
    int status = tu_proc_wait_status (&b, 5000);
    long long took = tu_now_ms () - signalled;
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0,
                   "status 0x%x after signal %d; stderr '%s'", status, sig, b.err_text);
    ck_assert_msg (took < tu_ms (2000), "it took %lld ms to stop", took);
    //  Quiet unless asked: a clean stop logs nothing at the default level.
    ck_assert_str_eq (b.err_text, "");
    tu_assert_no_procs_left (0);
}

START_TEST (test_sigterm_stops_it_promptly_with_exit_0)
{
    s_check_stops_on (SIGTERM);
}
END_TEST

START_TEST (test_sigint_stops_it_promptly_with_exit_0)
{
    s_check_stops_on (SIGINT);
}
END_TEST

START_TEST (test_a_peer_cancel_stops_it_with_exit_0)
{
    tu_subreaper ();
    tu_proc_t b;
    const char *args [] = { "--endpoint", "tcp://127.0.0.1:*", NULL };
    s_broker_start (&b, args);
    info_state_t st = { .endpoint = b.endpoint, .cancel = true };
    s_call_info (&st);
    ck_assert_tr_ok (st.cancel_rc);
    int status = tu_proc_wait_status (&b, 5000);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0, "status 0x%x", status);
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_verbose_logs_where_it_serves_on_stderr)
{
    tu_subreaper ();
    unsetenv ("TROUPE_LOGLEVEL");
    tu_proc_t b;
    const char *args [] = { "--endpoint", "tcp://127.0.0.1:*", "--verbose", NULL };
    s_broker_start (&b, args);
    char want [320];
    snprintf (want, sizeof want, "TR-BROKER serving the registry at %s", b.endpoint);
    tu_proc_pump (&b, tu_now_ms () + tu_ms (5000), s_err_has, want);
    ck_assert_contains (b.err_text, want);
    ck_assert_contains (b.err_text, "troupe-broker[");
    ck_assert_int_eq (kill (b.pid, SIGTERM), 0);
    int status = tu_proc_wait_status (&b, 5000);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0, "status 0x%x", status);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  Endpoints it cannot serve at

static void
s_check_cannot_serve (const char *endpoint)
{
    tu_proc_t b;
    //  Told --insecure: what fails is the bind, not the missing keys.
    const char *args [] = { "--endpoint", endpoint, "--insecure", NULL };
    s_broker_expect_exit (&b, args, 1);
    char want [320];
    snprintf (want, sizeof want, "troupe-broker: cannot serve at %s: %s\n",
              endpoint, tr_strerror (TR_ESYS));
    ck_assert_contains (b.err_text, want);
    ck_assert_str_eq (b.out_text, "");
}

START_TEST (test_an_address_not_on_this_host_exits_1_saying_so)
{
    tu_subreaper ();
    //  TEST-NET-3: never assigned to a host.
    s_check_cannot_serve ("tcp://203.0.113.1:5555");
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_a_public_endpoint_without_keys_exits_1_saying_how_to_make_them)
{
    tu_subreaper ();
    unsetenv ("TROUPE_KEYS");
    tu_proc_t b;
    const char *args [] = { "--endpoint", "tcp://0.0.0.0:*", NULL };
    s_broker_expect_exit (&b, args, 1);
    ck_assert_contains (b.err_text, "troupe keygen");
    ck_assert_contains (b.err_text, "--tr-insecure");
    ck_assert_str_eq (b.out_text, "");
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_a_malformed_endpoint_exits_1_saying_so)
{
    tu_subreaper ();
    s_check_cannot_serve ("nonsense://here");
    s_check_cannot_serve ("tcp://127.0.0.1:port");
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_a_port_in_use_exits_1_and_the_first_broker_serves_on)
{
    tu_subreaper ();
    tu_proc_t first;
    const char *args [] = { "--endpoint", "tcp://127.0.0.1:*", NULL };
    s_broker_start (&first, args);
    s_check_cannot_serve (first.endpoint);
    info_state_t st = { .endpoint = first.endpoint };
    s_call_info (&st);
    ck_assert_str_eq (st.name, "troupe-broker");
    ck_assert_int_eq (st.pid, first.pid);
    ck_assert_int_eq (kill (first.pid, SIGTERM), 0);
    int status = tu_proc_wait_status (&first, 5000);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0, "status 0x%x", status);
    tu_assert_no_procs_left (0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("broker");
    TCase *tc = tu_tcase (suite, "command line", 30);
    tcase_add_test (tc, test_help_prints_the_usage_on_stdout_and_exits_0);
    tcase_add_test (tc, test_version_prints_the_library_version_and_exits_0);
    tcase_add_test (tc, test_an_unknown_option_exits_2_naming_it);
    tcase_add_test (tc, test_an_option_without_its_value_exits_2_naming_it);
    tcase_add_test (tc, test_a_stray_argument_exits_2_naming_it);
    tcase_add_test (tc, test_a_bad_max_registrations_exits_2_naming_the_value);
    tcase_add_test (tc, test_a_lease_that_is_not_a_number_or_too_short_exits_2_naming_the_value);
    tc = tu_tcase (suite, "serving", 30);
    tcase_add_test (tc, test_it_serves_at_a_free_port_and_answers_as_troupe_broker);
    tcase_add_test (tc, test_sigterm_stops_it_promptly_with_exit_0);
    tcase_add_test (tc, test_sigint_stops_it_promptly_with_exit_0);
    tcase_add_test (tc, test_a_peer_cancel_stops_it_with_exit_0);
    tcase_add_test (tc, test_verbose_logs_where_it_serves_on_stderr);
    tcase_add_test (tc, test_a_broker_a_test_started_ends_when_the_test_process_dies);
    tc = tu_tcase (suite, "cannot serve", 30);
    tcase_add_test (tc, test_an_address_not_on_this_host_exits_1_saying_so);
    tcase_add_test (tc, test_a_malformed_endpoint_exits_1_saying_so);
    tcase_add_test (tc, test_a_public_endpoint_without_keys_exits_1_saying_how_to_make_them);
    tcase_add_test (tc, test_a_port_in_use_exits_1_and_the_first_broker_serves_on);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
