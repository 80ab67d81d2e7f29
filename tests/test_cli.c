/*  =========================================================================
    test_cli.c - the troupe tool, run as an operator runs it

    Each test starts troupe-broker on a free port and two tests/worker
    daemons registered with it, then runs the build tree's tools/troupe
    (or $TROUPE_TEST_TOOL) against that broker and reads what it printed
    and how it exited. Every wait is on an event with a deadline: a line
    printed, an exit.
    =========================================================================
*/
#include "testutil.h"
#include "testproc.h"
#include <jansson.h>
#include <sys/stat.h>

static const char *
s_tool_path (void)
{
    const char *path = getenv ("TROUPE_TEST_TOOL");
    return path? path: "tools/troupe";
}

typedef struct {
    tu_proc_t broker, w1, w2;
} deployment_t;

static void
s_daemon_start (tu_proc_t *d, const char *name, const tu_proc_t *broker)
{
    const char *args [] = { "--tr-daemon", "--tr-name", name, "--tr-registry", broker->endpoint,
                            NULL };
    tu_proc_spawn (d, tu_worker_path (), args);
    tu_proc_pump (d, tu_now_ms () + tu_ms (5000), tu_proc_has_line, NULL);
    ck_assert_msg (sscanf (d->out_text, "%255s %255s", d->uid, d->endpoint) == 2,
                   "no uid and endpoint from %s; stdout '%s', stderr '%s'", name,
                   d->out_text, d->err_text);
}

//  A broker on a free port and daemons w1 and w2 registered with it: a
//  daemon prints its line once it has registered.
static void
s_deployment_start (deployment_t *self)
{
    tu_subreaper ();
    const char *args [] = { "--endpoint", "tcp://127.0.0.1:*", NULL };
    tu_proc_spawn (&self->broker, tu_broker_path (), args);
    tu_proc_pump (&self->broker, tu_now_ms () + tu_ms (5000), tu_proc_has_line, NULL);
    ck_assert_msg (sscanf (self->broker.out_text, "troupe-broker serving at %255s",
                           self->broker.endpoint) == 1,
                   "no serving line; stdout '%s', stderr '%s'",
                   self->broker.out_text, self->broker.err_text);
    s_daemon_start (&self->w1, "w1", &self->broker);
    s_daemon_start (&self->w2, "w2", &self->broker);
}

static void
s_deployment_stop (deployment_t *self)
{
    if (self->w1.pidfd >= 0)
        tu_proc_stop (&self->w1, 143);
    if (self->w2.pidfd >= 0)
        tu_proc_stop (&self->w2, 143);
    tu_proc_stop (&self->broker, 0);
    tu_assert_no_procs_left (0);
}

//  Run the tool with args (NULL-terminated), then --registry ENDPOINT
//  when registry is not NULL, and check it exits with want.
static void
s_tool (tu_proc_t *t, const char *registry, int want, const char *const *args)
{
    const char *all [20];
    int n = 0;
    for (; *args; args++)
        all [n++] = *args;
    if (registry) {
        all [n++] = "--registry";
        all [n++] = registry;
    }
    all [n] = NULL;
    tu_proc_spawn (t, s_tool_path (), all);
    tu_proc_expect_exit (t, 10000, want);
}

static size_t
s_count (const char *text, const char *part)
{
    size_t count = 0;
    for (const char *at = strstr (text, part); at; at = strstr (at + 1, part))
        count++;
    return count;
}

//  --------------------------------------------------------------------------
//  The command line

START_TEST (test_help_lists_the_commands_and_each_command_has_its_own)
{
    tu_subreaper ();
    tu_proc_t t;
    s_tool (&t, NULL, 0, (const char *[]) { "--help", NULL });
    ck_assert_contains (t.out_text, "Usage: troupe COMMAND");
    const char *commands [] = { "ls", "tree", "ping", "call", "cancel", "keygen" };
    for (size_t i = 0; i < 6; i++)
        ck_assert_contains (t.out_text, commands [i]);
    ck_assert_contains (t.out_text, "--registry");
    ck_assert_contains (t.out_text, "--timeout");
    ck_assert_contains (t.out_text, "--keys");
    s_tool (&t, NULL, 0, (const char *[]) { "ping", "--help", NULL });
    ck_assert_contains (t.out_text, "Usage: troupe ping NAME [-c COUNT]");
    ck_assert_contains (t.out_text, "--timeout");
    s_tool (&t, NULL, 0, (const char *[]) { "call", "--help", NULL });
    ck_assert_contains (t.out_text, "Usage: troupe call NAME FUNCTION [JSON]");
    ck_assert_str_eq (t.err_text, "");
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_a_bad_command_line_exits_2_naming_the_problem)
{
    tu_subreaper ();
    tu_proc_t t;
    s_tool (&t, NULL, 2, (const char *[]) { NULL });
    ck_assert_contains (t.err_text, "no command given");
    s_tool (&t, NULL, 2, (const char *[]) { "frobnicate", NULL });
    ck_assert_contains (t.err_text, "unknown command 'frobnicate'");
    s_tool (&t, NULL, 2, (const char *[]) { "ping", NULL });
    ck_assert_contains (t.err_text, "'ping' needs an actor name");
    s_tool (&t, NULL, 2, (const char *[]) { "ls", "--timeout", "soon", NULL });
    ck_assert_contains (t.err_text, "bad --timeout 'soon'");
    s_tool (&t, NULL, 2, (const char *[]) { "tree", "--json", NULL });
    ck_assert_contains (t.err_text, "'tree' takes no --json");
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  Listing

START_TEST (test_ls_lists_both_daemons_but_not_itself)
{
    deployment_t d;
    s_deployment_start (&d);
    tu_proc_t t;
    s_tool (&t, d.broker.endpoint, 0, (const char *[]) { "ls", NULL });
    ck_assert_contains (t.out_text, "NAME");
    ck_assert_contains (t.out_text, "AGE");
    ck_assert_contains (t.out_text, "ENDPOINT");
    ck_assert_contains (t.out_text, d.w1.uid);
    ck_assert_contains (t.out_text, d.w2.uid);
    ck_assert_contains (t.out_text, d.w1.endpoint);
    char pid [32];
    snprintf (pid, sizeof pid, " %d ", (int) d.w2.pid);
    ck_assert_contains (t.out_text, pid);
    ck_assert_msg (strstr (t.out_text, "troupe@") == NULL, "it lists itself: '%s'", t.out_text);
    s_deployment_stop (&d);
}
END_TEST

START_TEST (test_ls_json_is_an_array_with_every_field_of_each_daemon)
{
    deployment_t d;
    s_deployment_start (&d);
    tu_proc_t t;
    s_tool (&t, d.broker.endpoint, 0, (const char *[]) { "ls", "--json", NULL });
    json_error_t error;
    json_t *list = json_loads (t.out_text, 0, &error);
    ck_assert_msg (list && json_is_array (list), "not a JSON array (%s): '%s'",
                   error.text, t.out_text);
    int found = 0;
    size_t index;
    json_t *entry;
    json_array_foreach (list, index, entry) {
        const char *name = json_string_value (json_object_get (entry, "name"));
        const char *uid = json_string_value (json_object_get (entry, "uid"));
        ck_assert (name && uid);
        ck_assert_str_ne (name, "troupe");
        ck_assert (json_is_string (json_object_get (entry, "endpoint")));
        ck_assert (json_is_string (json_object_get (entry, "host")));
        ck_assert (json_is_string (json_object_get (entry, "parent")));
        ck_assert (json_is_integer (json_object_get (entry, "pid")));
        ck_assert (json_is_integer (json_object_get (entry, "expires_ms")));
        ck_assert (json_is_integer (json_object_get (entry, "age_ms")));
        ck_assert_int_ge (json_integer_value (json_object_get (entry, "age_ms")), 0);
        const tu_proc_t *w = strcmp (name, "w1") == 0? &d.w1
                           : strcmp (name, "w2") == 0? &d.w2: NULL;
        if (w) {
            found++;
            ck_assert_str_eq (uid, w->uid);
            ck_assert_str_eq (json_string_value (json_object_get (entry, "endpoint")),
                              w->endpoint);
            ck_assert_int_eq (json_integer_value (json_object_get (entry, "pid")), w->pid);
            ck_assert_int_gt (json_integer_value (json_object_get (entry, "expires_ms")), 0);
        }
    }
    ck_assert_int_eq (found, 2);
    json_decref (list);
    s_deployment_stop (&d);
}
END_TEST

START_TEST (test_tree_shows_both_daemons_as_roots)
{
    deployment_t d;
    s_deployment_start (&d);
    tu_proc_t t;
    s_tool (&t, d.broker.endpoint, 0, (const char *[]) { "tree", NULL });
    char line [512];
    snprintf (line, sizeof line, "\nw1 (%s) pid %d", d.w1.uid, (int) d.w1.pid);
    ck_assert_contains (t.out_text, line);
    snprintf (line, sizeof line, "\nw2 (%s) pid %d", d.w2.uid, (int) d.w2.pid);
    ck_assert_contains (t.out_text, line);
    ck_assert_msg (strstr (t.out_text, "troupe@") == NULL, "it shows itself: '%s'", t.out_text);
    s_deployment_stop (&d);
}
END_TEST

START_TEST (test_tree_shows_a_child_under_its_parent)
{
    deployment_t d;
    s_deployment_start (&d);
    tu_proc_t t;
    //  w1 starts a child of its own, "held", which registers with w1 as
    //  its parent before the call returns.
    s_tool (&t, d.broker.endpoint, 0, (const char *[]) { "call", "w1", "hold_grandchild", NULL });
    int held_pid = atoi (t.out_text);
    ck_assert_int_gt (held_pid, 0);
    s_tool (&t, d.broker.endpoint, 0, (const char *[]) { "tree", NULL });
    char line [512];
    snprintf (line, sizeof line, "\nw1 (%s) pid %d", d.w1.uid, (int) d.w1.pid);
    const char *parent = strstr (t.out_text, line);
    ck_assert_msg (parent, "no w1 root in '%s'", t.out_text);
    const char *child = strchr (parent + 1, '\n');
    ck_assert_msg (child && strncmp (child + 1, "`-- held (held@", 15) == 0,
                   "held is not the last child of w1 in '%s'", t.out_text);
    snprintf (line, sizeof line, ") pid %d on ", held_pid);
    ck_assert_contains (child, line);
    s_deployment_stop (&d);
}
END_TEST

//  --------------------------------------------------------------------------
//  Calling

START_TEST (test_ping_prints_four_round_trips_and_their_summary)
{
    deployment_t d;
    s_deployment_start (&d);
    tu_proc_t t;
    s_tool (&t, d.broker.endpoint, 0, (const char *[]) { "ping", "w1", NULL });
    ck_assert_int_eq (s_count (t.out_text, "reply from "), 4);
    ck_assert_contains (t.out_text, d.w1.uid);
    ck_assert_contains (t.out_text, "min/avg/max");
    s_tool (&t, d.broker.endpoint, 0, (const char *[]) { "ping", "w2", "-c", "2", NULL });
    ck_assert_int_eq (s_count (t.out_text, "reply from "), 2);
    s_deployment_stop (&d);
}
END_TEST

START_TEST (test_call_echo_returns_the_same_nested_json)
{
    deployment_t d;
    s_deployment_start (&d);
    const char *text = "{\"a\": [1, -2, 2.5, null, true, false, \"x\"],"
                       " \"b\": {\"c\": [[], {}], \"d\": \"\\u00e9t\\u00e9\"}}";
    tu_proc_t t;
    s_tool (&t, d.broker.endpoint, 0, (const char *[]) { "call", "w1", "echo", text, NULL });
    json_t *want = json_loads (text, 0, NULL);
    json_t *got = json_loads (t.out_text, 0, NULL);
    ck_assert_msg (got && json_equal (want, got), "sent '%s', got '%s'", text, t.out_text);
    json_decref (got);
    //  --json: the same, on one line.
    s_tool (&t, d.broker.endpoint, 0,
            (const char *[]) { "call", "w1", "echo", text, "--json", NULL });
    ck_assert_int_eq (s_count (t.out_text, "\n"), 1);
    got = json_loads (t.out_text, 0, NULL);
    ck_assert_msg (got && json_equal (want, got), "sent '%s', got '%s'", text, t.out_text);
    json_decref (got);
    json_decref (want);
    //  No arguments: [].
    s_tool (&t, d.broker.endpoint, 0, (const char *[]) { "call", "w2", "echo", "--json", NULL });
    ck_assert_str_eq (t.out_text, "[]\n");
    s_deployment_stop (&d);
}
END_TEST

START_TEST (test_call_failures_exit_1_or_2_saying_why)
{
    deployment_t d;
    s_deployment_start (&d);
    tu_proc_t t;
    s_tool (&t, d.broker.endpoint, 1, (const char *[]) { "call", "nobody", "echo", NULL });
    ck_assert_contains (t.err_text, "no actor named 'nobody'");
    s_tool (&t, d.broker.endpoint, 1, (const char *[]) { "call", "w1", "no_such_fn", NULL });
    ck_assert_contains (t.err_text, "not exported");
    ck_assert_contains (t.err_text, "ENOTEXPOSED");
    ck_assert_contains (t.err_text, "no_such_fn");
    s_tool (&t, d.broker.endpoint, 2, (const char *[]) { "call", "w1", "echo", "[1, ", NULL });
    ck_assert_contains (t.err_text, "bad JSON");
    ck_assert_str_eq (t.out_text, "");
    s_deployment_stop (&d);
}
END_TEST

START_TEST (test_a_remote_error_prints_its_type_and_traceback_and_exits_1)
{
    deployment_t d;
    s_deployment_start (&d);
    tu_proc_t t;
    s_tool (&t, d.broker.endpoint, 1, (const char *[]) { "call", "w1", "fail", "[3]", NULL });
    ck_assert_contains (t.err_text, "ValueError");
    ck_assert_contains (t.err_text, "n must be > 0, got 3");
    ck_assert_contains (t.err_text, "traceback");
    char origin [300];
    snprintf (origin, sizeof origin, "origin: %s", d.w1.uid);
    ck_assert_contains (t.err_text, origin);
    ck_assert_str_eq (t.out_text, "");
    s_deployment_stop (&d);
}
END_TEST

START_TEST (test_cancel_is_acknowledged_and_the_daemon_exits_0)
{
    deployment_t d;
    s_deployment_start (&d);
    tu_proc_t t;
    s_tool (&t, d.broker.endpoint, 0, (const char *[]) { "cancel", "w2", NULL });
    ck_assert_contains (t.out_text, "acknowledged");
    ck_assert_contains (t.out_text, d.w2.uid);
    tu_proc_expect_exit (&d.w2, 5000, 0);
    s_deployment_stop (&d);
}
END_TEST

//  --------------------------------------------------------------------------
//  No broker, and keys

START_TEST (test_a_dead_broker_fails_within_the_timeout_saying_so)
{
    deployment_t d;
    s_deployment_start (&d);
    char endpoint [256];
    snprintf (endpoint, sizeof endpoint, "%s", d.broker.endpoint);
    s_deployment_stop (&d);
    tu_subreaper ();
    tu_proc_t t;
    long long start = tu_now_ms ();
    s_tool (&t, endpoint, 1, (const char *[]) { "ls", "--timeout", "1000", NULL });
    ck_assert_int_lt (tu_now_ms () - start, 1000 + tu_ms (2000));
    char want [300];
    snprintf (want, sizeof want, "cannot reach the registry at %s", endpoint);
    ck_assert_contains (t.err_text, want);
    s_tool (&t, endpoint, 1, (const char *[]) { "ping", "w1", "--timeout", "1000", NULL });
    ck_assert_contains (t.err_text, want);
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_keygen_makes_a_private_secret_and_never_overwrites_it)
{
    tu_subreaper ();
    char base [] = "/tmp/troupe-cli-XXXXXX";
    ck_assert_ptr_nonnull (mkdtemp (base));
    char dir [300], path [400];
    snprintf (dir, sizeof dir, "%s/keys", base);
    tu_proc_t t;
    s_tool (&t, NULL, 0, (const char *[]) { "keygen", dir, NULL });
    struct stat st;
    snprintf (path, sizeof path, "%s/troupe.key_secret", dir);
    ck_assert_int_eq (stat (path, &st), 0);
    ck_assert_int_eq (st.st_mode & 0777, 0600);
    snprintf (path, sizeof path, "%s/troupe.key", dir);
    ck_assert_int_eq (stat (path, &st), 0);
    snprintf (path, sizeof path, "%s/allowed/troupe.key", dir);
    ck_assert_int_eq (stat (path, &st), 0);
    s_tool (&t, NULL, 1, (const char *[]) { "keygen", dir, NULL });
    ck_assert_contains (t.err_text, "cannot make keys");
    unlink (path);
    snprintf (path, sizeof path, "%s/allowed", dir);
    rmdir (path);
    snprintf (path, sizeof path, "%s/troupe.key", dir);
    unlink (path);
    snprintf (path, sizeof path, "%s/troupe.key_secret", dir);
    unlink (path);
    rmdir (dir);
    rmdir (base);
    tu_assert_no_procs_left (0);
}
END_TEST

//  A deployment with keys: the tool reaches it with them, not without.
START_TEST (test_with_keys_the_tool_talks_curve_and_without_them_it_cannot)
{
    tu_subreaper ();
    char base [] = "/tmp/troupe-cli-XXXXXX";
    ck_assert_ptr_nonnull (mkdtemp (base));
    char dir [300];
    snprintf (dir, sizeof dir, "%s/keys", base);
    ck_assert_int_eq (tr_keygen (dir), 0);
    tu_proc_t broker, w1, t;
    const char *bargs [] = { "--endpoint", "tcp://127.0.0.1:*", "--keys", dir, NULL };
    tu_proc_spawn (&broker, tu_broker_path (), bargs);
    tu_proc_pump (&broker, tu_now_ms () + tu_ms (5000), tu_proc_has_line, NULL);
    ck_assert_msg (sscanf (broker.out_text, "troupe-broker serving at %255s", broker.endpoint) == 1,
                   "no serving line; stderr '%s'", broker.err_text);
    const char *wargs [] = { "--tr-daemon", "--tr-name", "w1", "--tr-registry", broker.endpoint,
                             "--tr-keys", dir, NULL };
    tu_proc_spawn (&w1, tu_worker_path (), wargs);
    tu_proc_pump (&w1, tu_now_ms () + tu_ms (5000), tu_proc_has_line, NULL);
    ck_assert_msg (sscanf (w1.out_text, "%255s %255s", w1.uid, w1.endpoint) == 2,
                   "no uid from w1; stderr '%s'", w1.err_text);
    s_tool (&t, broker.endpoint, 0, (const char *[]) { "ls", "--keys", dir, NULL });
    ck_assert_contains (t.out_text, w1.uid);
    s_tool (&t, broker.endpoint, 0, (const char *[]) { "call", "w1", "echo", "[\"sealed\"]",
                                                       "--keys", dir, "--json", NULL });
    ck_assert_contains (t.out_text, "sealed");
    //  Without the keys the broker's handshake refuses the tool.
    s_tool (&t, broker.endpoint, 1, (const char *[]) { "ls", "--timeout", "1000", NULL });
    ck_assert_contains (t.err_text, "cannot reach the registry");
    tu_proc_stop (&w1, 143);
    tu_proc_stop (&broker, 0);
    char path [400];
    const char *files [] = { "allowed/troupe.key", "troupe.key", "troupe.key_secret" };
    for (int i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/%s", dir, files [i]);
        unlink (path);
    }
    snprintf (path, sizeof path, "%s/allowed", dir);
    rmdir (path);
    rmdir (dir);
    rmdir (base);
    tu_assert_no_procs_left (0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("cli");
    TCase *tc = tu_tcase (suite, "command line", 30);
    tcase_add_test (tc, test_help_lists_the_commands_and_each_command_has_its_own);
    tcase_add_test (tc, test_a_bad_command_line_exits_2_naming_the_problem);
    tcase_add_test (tc, test_keygen_makes_a_private_secret_and_never_overwrites_it);
    tc = tu_tcase (suite, "a broker and two daemons", 60);
    tcase_add_test (tc, test_ls_lists_both_daemons_but_not_itself);
    tcase_add_test (tc, test_ls_json_is_an_array_with_every_field_of_each_daemon);
    tcase_add_test (tc, test_tree_shows_both_daemons_as_roots);
    tcase_add_test (tc, test_tree_shows_a_child_under_its_parent);
    tcase_add_test (tc, test_with_keys_the_tool_talks_curve_and_without_them_it_cannot);
    tcase_add_test (tc, test_ping_prints_four_round_trips_and_their_summary);
    tcase_add_test (tc, test_call_echo_returns_the_same_nested_json);
    tcase_add_test (tc, test_call_failures_exit_1_or_2_saying_why);
    tcase_add_test (tc, test_a_remote_error_prints_its_type_and_traceback_and_exits_1);
    tcase_add_test (tc, test_cancel_is_acknowledged_and_the_daemon_exits_0);
    tcase_add_test (tc, test_a_dead_broker_fails_within_the_timeout_saying_so);
    return tu_run_suite (suite, CK_FORK);
}
