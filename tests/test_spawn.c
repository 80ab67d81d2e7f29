/*  =========================================================================
    test_spawn.c - scenario: spawning children, crashes, reaping

    Each test makes the forked test process a root actor (tr_run from the
    test function) that spawns tests/worker children. The root records what
    it sees in a struct; the test asserts on it once tr_run has returned,
    then checks that no process the scenario started is left.
    =========================================================================
*/
#include "testutil.h"
#include "testspawn.h"
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>

//  --------------------------------------------------------------------------
//  A child answers calls and is reaped on close

typedef struct {
    int start_rc, pid_rc, add_rc, close_rc;
    int portal_pid, reported_pid;
    int64_t sum;
    char uid [256];
    int children_after_close;
} s_basic_t;

static int
s_basic_root (tr_actor_t *self, void *arg)
{
    s_basic_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p = NULL;
    obs->start_rc = tr_nursery_start_actor (n, "kid", NULL, &p);
    if (obs->start_rc == 0) {
        snprintf (obs->uid, sizeof obs->uid, "%s", tr_portal_uid (p));
        obs->portal_pid = tr_portal_pid (p);
        obs->pid_rc = tu_call_pid (p, &obs->reported_pid);
        tr_value_t *v = NULL;
        obs->add_rc = tu_call (p, "add", tr_pack ("[ii]", 2, 40), &v);
        if (obs->add_rc == 0)
            tr_unpack (tr_value_object (v), "I", &obs->sum);
        tr_value_destroy (&v);
    }
    obs->close_rc = tr_nursery_close (&n, NULL);
    obs->children_after_close = tu_children_now ();
    return 7;
}

START_TEST (a_child_answers_calls_and_is_reaped_when_its_nursery_closes)
{
    tu_subreaper ();
    s_basic_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_basic_root, &obs);
    ck_assert_int_eq (rc, 7);
    ck_assert_tr_ok (obs.start_rc);
    ck_assert_msg (strncmp (obs.uid, "kid@", 4) == 0, "uid %s", obs.uid);
    ck_assert_tr_ok (obs.pid_rc);
    ck_assert_int_gt (obs.portal_pid, 0);
    ck_assert_int_eq (obs.reported_pid, obs.portal_pid);
    ck_assert_int_ne (obs.reported_pid, (int) getpid ());
    ck_assert_tr_ok (obs.add_rc);
    ck_assert_int_eq (obs.sum, 42);
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_int_eq (obs.children_after_close, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Crashes in a call

typedef struct {
    tu_frame_t frame;               //  the child is "crasher"
    const char *fn;
    const char *how;                //  NULL: no args
    int run_rc;
    int pid;
    tu_err_t error;                 //  tr_portal_error after the call
    long long run_ms;
} s_crash_t;

static int
s_crash_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_crash_t *obs = arg;
    obs->pid = tr_portal_pid (p);
    long long t0 = tu_now_ms ();
    tr_args_t *args = obs->how? tr_pack ("[s]", obs->how): NULL;
    obs->run_rc = tu_call (p, obs->fn, args, NULL);
    obs->run_ms = tu_now_ms () - t0;
    tu_err_copy (&obs->error, tr_portal_error (p));
    return 0;
}

//  Run the crash scenario as the root; returns what tr_run returned.
static int
s_crash_run (s_crash_t *obs)
{
    obs->frame = (tu_frame_t) { .body = s_crash_body, .obs = obs, .name = "crasher" };
    tr_config_t config = tu_config ();
    return tr_run (&config, 0, NULL, tu_frame_root, &obs->frame);
}

static void
s_run_crash (s_crash_t *obs)
{
    int rc = s_crash_run (obs);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs->frame.start_rc);
    ck_assert_tr_rc (obs->run_rc, TR_ECRASHED);
    ck_assert_msg (obs->error.set, "no portal error after the crash");
    ck_assert_tr_rc (obs->error.code, TR_ECRASHED);
    ck_assert_msg (strstr (obs->error.message, obs->frame.uid),
                   "message '%s' does not name %s", obs->error.message, obs->frame.uid);
    ck_assert_str_eq (obs->error.origin, obs->frame.uid);
    //  The close reports the crash too: the child died on its own.
    ck_assert_tr_rc (obs->frame.close_rc, TR_ECRASHED);
    ck_assert_int_eq (obs->frame.close_errors, 1);
    ck_assert_tr_rc (obs->frame.close_error.code, TR_ECRASHED);
}

START_TEST (a_child_that_segfaults_in_a_call_is_reported_as_killed_by_sigsegv)
{
    tu_subreaper ();
    s_crash_t obs = { .fn = "crash", .how = "segv" };
    s_run_crash (&obs);
    ck_assert_int_eq (obs.error.signal, SIGSEGV);
    ck_assert_int_eq (obs.error.status, 0);
    ck_assert_int_eq (obs.frame.close_error.signal, SIGSEGV);
    tu_assert_no_procs_left (2000);
}
END_TEST

START_TEST (a_child_that_aborts_in_a_call_is_reported_as_killed_by_sigabrt)
{
    tu_subreaper ();
    s_crash_t obs = { .fn = "crash", .how = "abort" };
    s_run_crash (&obs);
    ck_assert_int_eq (obs.error.signal, SIGABRT);
    ck_assert_int_eq (obs.error.status, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

START_TEST (a_child_that_exits_in_a_call_is_reported_with_its_exit_status)
{
    tu_subreaper ();
    s_crash_t obs = { .fn = "crash", .how = "exit" };
    s_run_crash (&obs);
    ck_assert_int_eq (obs.error.status, 3);
    ck_assert_int_eq (obs.error.signal, 0);
    ck_assert_int_eq (obs.frame.close_error.status, 3);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  The child's stderr goes to a file for the scenario so that its
//  "stack overflow" line can be read back.
START_TEST (a_stack_overflow_in_a_child_task_is_reported_as_sigsegv_and_named)
{
    tu_subreaper ();
    tu_capture_t capture;
    tu_capture_start (&capture);
    s_crash_t obs = { .fn = "overflow" };
    int rc = s_crash_run (&obs);
    char text [8192];
    tu_capture_end (&capture, text, sizeof text);
    fputs (text, stderr);

    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs.frame.start_rc);
    ck_assert_tr_rc (obs.run_rc, TR_ECRASHED);
    ck_assert_tr_rc (obs.error.code, TR_ECRASHED);
    ck_assert_int_eq (obs.error.signal, SIGSEGV);
    ck_assert_msg (strstr (obs.error.message, obs.frame.uid), "message '%s'", obs.error.message);
    ck_assert_msg (strstr (text, "stack overflow"),
                   "the child did not say 'stack overflow' on stderr:\n%s", text);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Children that never become actors

typedef struct {
    tr_spawn_opts_t opts;
    int hello_ms;
    int start_rc, close_rc;
    bool portal_null;
    tu_err_t error;
    long long start_ms;
    int children_after_start;
} s_nohello_t;

static int
s_nohello_root (tr_actor_t *self, void *arg)
{
    s_nohello_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p = (tr_portal_t *) &p;
    long long t0 = tu_now_ms ();
    obs->start_rc = tr_nursery_start_actor (n, "never", &obs->opts, &p);
    obs->start_ms = tu_now_ms () - t0;
    obs->portal_null = p == NULL;
    obs->children_after_start = tu_children_now ();
    tu_err_copy (&obs->error, tr_nursery_error (n));
    obs->close_rc = tr_nursery_close (&n, NULL);
    return 0;
}

static void
s_run_nohello (s_nohello_t *obs)
{
    tr_config_t config = tu_config ();
    if (obs->hello_ms)
        config.hello_ms = obs->hello_ms;
    int rc = tr_run (&config, 0, NULL, s_nohello_root, obs);
    ck_assert_int_eq (rc, 0);
    ck_assert_msg (obs->portal_null, "a failed spawn left a portal");
    ck_assert_msg (obs->error.set, "tr_nursery_error is NULL after a failed spawn");
    ck_assert_msg (*obs->error.message, "empty error message");
    ck_assert_int_eq (obs->children_after_start, 0);
    //  The failed spawn is not the nursery's business any more.
    ck_assert_tr_ok (obs->close_rc);
}

START_TEST (a_worker_path_that_does_not_exist_fails_the_spawn_with_a_reason)
{
    tu_subreaper ();
    s_nohello_t obs;
    memset (&obs, 0, sizeof obs);
    obs.opts.worker_path = "/nonexistent/troupe-worker";
    s_run_nohello (&obs);
    ck_assert_msg (obs.start_rc == TR_ESYS || obs.start_rc == TR_ECRASHED,
                   "start returned %s", tr_errname (obs.start_rc));
    ck_assert_int_eq (obs.error.code, obs.start_rc);
    ck_assert_msg (strstr (obs.error.message, "never"),
                   "message '%s' does not name the child", obs.error.message);
    ck_assert_msg (strstr (obs.error.message, "/nonexistent/troupe-worker"),
                   "message '%s' does not name the path", obs.error.message);
    ck_assert_msg (strstr (obs.error.message, strerror (ENOENT)),
                   "message '%s' does not say why", obs.error.message);
    tu_assert_no_procs_left (2000);
}
END_TEST

START_TEST (a_worker_that_exits_before_hello_fails_the_spawn_as_crashed)
{
    tu_subreaper ();
    s_nohello_t obs;
    memset (&obs, 0, sizeof obs);
    obs.opts.worker_path = "/bin/false";
    s_run_nohello (&obs);
    ck_assert_tr_rc (obs.start_rc, TR_ECRASHED);
    ck_assert_tr_rc (obs.error.code, TR_ECRASHED);
    ck_assert_int_eq (obs.error.status, 1);
    ck_assert_msg (strstr (obs.error.message, "never@"),
                   "message '%s' does not name the child", obs.error.message);
    ck_assert_msg (strstr (obs.error.message, "status 1"), "message '%s'", obs.error.message);
    ck_assert_msg (obs.start_ms < tu_ms (4000), "took %lld ms to notice", obs.start_ms);
    tu_assert_no_procs_left (2000);
}
END_TEST

START_TEST (a_child_that_never_says_hello_is_killed_after_the_hello_deadline)
{
    tu_subreaper ();
    tu_stdin_pipe ();
    s_nohello_t obs;
    memset (&obs, 0, sizeof obs);
    obs.opts.worker_path = "/bin/cat";
    obs.hello_ms = 300;
    s_run_nohello (&obs);
    ck_assert_tr_rc (obs.start_rc, TR_ETIMEDOUT);
    ck_assert_tr_rc (obs.error.code, TR_ETIMEDOUT);
    ck_assert_msg (strstr (obs.error.message, "300 ms"), "message '%s'", obs.error.message);
    ck_assert_msg (obs.start_ms >= 280 && obs.start_ms < tu_ms (1500),
                   "spawn gave up after %lld ms, hello_ms is 300", obs.start_ms);
    tu_stdin_close ();
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A spawn whose task is cancelled

typedef struct {
    tr_nursery_t *n;
    int rc;
    bool portal_null;
    bool started;
} s_spawner_t;

static int
s_spawner (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_spawner_t *self = arg;
    self->started = true;
    tr_spawn_opts_t opts = { .worker_path = "/bin/cat" };
    tr_portal_t *p = (tr_portal_t *) &p;
    self->rc = tr_nursery_start_actor (self->n, "slow", &opts, &p);
    self->portal_null = p == NULL;
    return self->rc;
}

//  Open the spawner's nursery and start the spawner in a task of self;
//  0, or what failed.
static int
s_spawner_start (tr_actor_t *self, s_spawner_t *spawner, tr_task_t **task)
{
    int rc = tr_nursery_open (self, &spawner->n);
    if (rc == 0)
        rc = tr_task_spawn (self, s_spawner, spawner, task);
    return rc;
}

typedef struct {
    bool wait_for_process;          //  cancel once the process exists
    bool saw_process;
    int join_rc, task_rc, close_rc;
    s_spawner_t spawner;
    long long cancel_ms;
    int children_after;
} s_cancel_spawn_t;

static int
s_cancel_spawn_root (tr_actor_t *self, void *arg)
{
    s_cancel_spawn_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_task_t *task;
    if (s_spawner_start (self, &obs->spawner, &task))
        return 1;
    //  The spawning task runs once we park: wait until its process
    //  exists, so the cancel lands while it waits for the hello.
    if (obs->wait_for_process)
        obs->saw_process = tu_wait_children (ctx, 1, tu_now_ms () + tu_ms (5000));
    long long t0 = tu_now_ms ();
    tr_task_cancel (task);
    obs->join_rc = tr_task_join (&task, &obs->task_rc);
    obs->cancel_ms = tu_now_ms () - t0;
    obs->children_after = tu_children_now ();
    obs->close_rc = tr_nursery_close (&obs->spawner.n, NULL);
    return 0;
}

START_TEST (a_spawn_cancelled_while_waiting_for_hello_kills_and_reaps_the_child)
{
    tu_subreaper ();
    s_cancel_spawn_t obs;
    memset (&obs, 0, sizeof obs);
    obs.wait_for_process = true;
    tu_run_without_hellos (s_cancel_spawn_root, &obs);
    ck_assert_msg (obs.saw_process, "the spawning task never started a process");
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_tr_rc (obs.task_rc, TR_ECANCELED);
    ck_assert_msg (obs.spawner.portal_null, "a cancelled spawn left a portal");
    ck_assert_msg (obs.cancel_ms < tu_ms (2000), "cancel took %lld ms", obs.cancel_ms);
    ck_assert_int_eq (obs.children_after, 0);
    ck_assert_tr_ok (obs.close_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

START_TEST (a_spawn_cancelled_before_it_starts_spawns_nothing)
{
    tu_subreaper ();
    s_cancel_spawn_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_cancel_spawn_root, &obs);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_tr_rc (obs.task_rc, TR_ECANCELED);
    ck_assert_msg (obs.spawner.portal_null, "a cancelled spawn left a portal");
    ck_assert_int_eq (obs.children_after, 0);
    ck_assert_tr_ok (obs.close_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A spawn interrupted by another task's tr_nursery_cancel

typedef struct {
    s_spawner_t spawner;
    bool saw_process;
    int cancel_rc, join_rc, task_rc, close_rc;
    tu_err_t error;                 //  tr_nursery_error after the spawn
    long long cancel_ms;
    size_t close_errors;
    int children_after;
} s_nursery_cancel_spawn_t;

static int
s_nursery_cancel_spawn_root (tr_actor_t *self, void *arg)
{
    s_nursery_cancel_spawn_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_task_t *task;
    if (s_spawner_start (self, &obs->spawner, &task))
        return 1;
    obs->saw_process = tu_wait_children (ctx, 1, tu_now_ms () + 5000);
    long long t0 = tu_now_ms ();
    obs->cancel_rc = tr_nursery_cancel (obs->spawner.n, false);
    obs->join_rc = tr_task_join (&task, &obs->task_rc);
    obs->cancel_ms = tu_now_ms () - t0;
    obs->children_after = tu_children_now ();
    tu_err_copy (&obs->error, tr_nursery_error (obs->spawner.n));
    obs->close_rc = tu_nursery_close (&obs->spawner.n, &obs->close_errors, NULL);
    return 0;
}

START_TEST (a_spawn_interrupted_by_a_nursery_cancel_from_another_task_fails_as_cancelled)
{
    tu_subreaper ();
    s_nursery_cancel_spawn_t obs;
    memset (&obs, 0, sizeof obs);
    tu_run_without_hellos (s_nursery_cancel_spawn_root, &obs);
    ck_assert_msg (obs.saw_process, "the spawning task never started a process");
    ck_assert_tr_ok (obs.cancel_rc);
    ck_assert_tr_ok (obs.join_rc);
    //  The spawning task itself was not cancelled: its spawn was.
    ck_assert_tr_rc (obs.task_rc, TR_ECANCELED);
    ck_assert_tr_rc (obs.spawner.rc, TR_ECANCELED);
    ck_assert_msg (obs.spawner.portal_null, "a cancelled spawn left a portal");
    ck_assert_msg (obs.cancel_ms < 2000, "the spawn returned %lld ms after the cancel",
                   obs.cancel_ms);
    //  Killed and reaped before the spawn returned.
    ck_assert_int_eq (obs.children_after, 0);
    ck_assert_msg (obs.error.set, "tr_nursery_error does not say why the spawn failed");
    ck_assert_tr_rc (obs.error.code, TR_ECANCELED);
    ck_assert_msg (strstr (obs.error.message, "slow@"), "message '%s' does not name the child",
                   obs.error.message);
    //  A cancelled nursery's children are no one's failure.
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_int_eq (obs.close_errors, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Extra environment for a child (tr_spawn_opts_t.env)

#define ENV_NAMES 3

static const char *s_env_names [ENV_NAMES] = { "FOO", "TU_INHERITED", "FOOBAR" };

typedef struct {
    int start_rc [2];
    int rc [2][ENV_NAMES];
    char value [2][ENV_NAMES][32];  //  "(nil)" for an unset variable
    int close_rc;
} s_env_t;

static int
s_env_root (tr_actor_t *self, void *arg)
{
    s_env_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    static const char *const extra [] = { "FOO=bar", "TU_INHERITED=child", NULL };
    tr_spawn_opts_t opts = { .env = extra };
    tr_portal_t *p [2] = { NULL, NULL };
    obs->start_rc [0] = tr_nursery_start_actor (n, "extra", &opts, &p [0]);
    obs->start_rc [1] = tr_nursery_start_actor (n, "plain", NULL, &p [1]);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < ENV_NAMES && obs->start_rc [i] == 0; j++) {
            tr_value_t *v = NULL;
            obs->rc [i][j] = tu_call (p [i], "getenv", tr_pack ("[s]", s_env_names [j]), &v);
            const char *value = "(nil)";
            if (obs->rc [i][j] == 0 && tr_value_object (v)->type != MSGPACK_OBJECT_NIL
            &&  tr_unpack (tr_value_object (v), "s", &value))
                value = "(not a string)";
            snprintf (obs->value [i][j], sizeof obs->value [i][j], "%s", value);
            tr_value_destroy (&v);
        }
    obs->close_rc = tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (a_child_sees_the_extra_environment_of_its_spawn_and_an_extra_replaces_what_it_inherits)
{
    tu_subreaper ();
    unsetenv ("FOO");
    setenv ("TU_INHERITED", "parent", 1);
    setenv ("FOOBAR", "keep", 1);
    s_env_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_env_root, &obs);
    ck_assert_int_eq (rc, 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_tr_ok (obs.start_rc [i]);
        for (int j = 0; j < ENV_NAMES; j++)
            ck_assert_tr_ok (obs.rc [i][j]);
    }
    //  With env { "FOO=bar", "TU_INHERITED=child" }:
    ck_assert_str_eq (obs.value [0][0], "bar");
    ck_assert_str_eq (obs.value [0][1], "child");
    //  "FOO=" replaces FOO only, not every name that starts with FOO.
    ck_assert_str_eq (obs.value [0][2], "keep");
    //  Without: only what it inherits.
    ck_assert_str_eq (obs.value [1][0], "(nil)");
    ck_assert_str_eq (obs.value [1][1], "parent");
    ck_assert_str_eq (obs.value [1][2], "keep");
    ck_assert_tr_ok (obs.close_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  kill -9 while a call is parked in the child

START_TEST (a_child_killed_while_serving_a_call_fails_the_call_as_crashed_by_sigkill)
{
    tu_subreaper ();
    tu_kill_t obs;
    tu_frame_t frame;
    tu_kill_run (&obs, &frame);
    ck_assert_tr_rc (obs.sleeper.error.code, TR_ECRASHED);
    ck_assert_msg (strstr (obs.sleeper.error.message, frame.uid),
                   "message '%s'", obs.sleeper.error.message);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Nested trees: root -> child -> grandchild

typedef struct {
    int pid_rc, via_rc, via_add_rc;
    int child_pid, grandchild_pid, grandchild_reported;
    int64_t sum;
    int sum_grandchild_pid;
} s_nested_t;

static int
s_nested_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_nested_t *obs = arg;
    obs->pid_rc = tu_call_pid (p, &obs->child_pid);
    obs->via_rc = tu_call_grandchild_pid (p, &obs->grandchild_reported, &obs->grandchild_pid);
    tr_value_t *v = NULL;
    obs->via_add_rc = tu_call (p, "via_child", tr_pack ("[s[ii]]", "add", 20, 22), &v);
    if (obs->via_add_rc == 0)
        tr_unpack (tr_value_object (v), "[Ii]", &obs->sum, &obs->sum_grandchild_pid);
    tr_value_destroy (&v);
    return 0;
}

START_TEST (a_call_through_a_child_reaches_a_grandchild_in_another_process)
{
    tu_subreaper ();
    s_nested_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_nested_body, .obs = &obs, .name = "child" };
    tu_run_frame (&frame, NULL);
    ck_assert_tr_ok (obs.pid_rc);
    ck_assert_tr_ok (obs.via_rc);
    ck_assert_int_gt (obs.grandchild_pid, 0);
    ck_assert_int_eq (obs.grandchild_reported, obs.grandchild_pid);
    ck_assert_int_ne (obs.grandchild_pid, obs.child_pid);
    ck_assert_int_ne (obs.grandchild_pid, (int) getpid ());
    ck_assert_tr_ok (obs.via_add_rc);
    ck_assert_int_eq (obs.sum, 42);
    ck_assert_int_ne (obs.sum_grandchild_pid, obs.child_pid);
    //  Each via_child call had a grandchild of its own.
    ck_assert_int_ne (obs.sum_grandchild_pid, obs.grandchild_pid);
    ck_assert_tr_ok (frame.close_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------

static Suite *
s_suite (void)
{
    Suite *s = suite_create ("spawn");
    TCase *tc = tu_tcase (s, "calls", 30);
    tcase_add_test (tc, a_child_answers_calls_and_is_reaped_when_its_nursery_closes);
    tcase_add_test (tc, a_call_through_a_child_reaches_a_grandchild_in_another_process);
    tcase_add_test (tc, a_child_sees_the_extra_environment_of_its_spawn_and_an_extra_replaces_what_it_inherits);

    tc = tu_tcase (s, "crashes", 30);
    tcase_add_test (tc, a_child_that_segfaults_in_a_call_is_reported_as_killed_by_sigsegv);
    tcase_add_test (tc, a_child_that_aborts_in_a_call_is_reported_as_killed_by_sigabrt);
    tcase_add_test (tc, a_child_that_exits_in_a_call_is_reported_with_its_exit_status);
    tcase_add_test (tc, a_stack_overflow_in_a_child_task_is_reported_as_sigsegv_and_named);
    tcase_add_test (tc, a_child_killed_while_serving_a_call_fails_the_call_as_crashed_by_sigkill);

    tc = tu_tcase (s, "failed spawns", 30);
    tcase_add_test (tc, a_worker_path_that_does_not_exist_fails_the_spawn_with_a_reason);
    tcase_add_test (tc, a_worker_that_exits_before_hello_fails_the_spawn_as_crashed);
    tcase_add_test (tc, a_child_that_never_says_hello_is_killed_after_the_hello_deadline);
    tcase_add_test (tc, a_spawn_cancelled_while_waiting_for_hello_kills_and_reaps_the_child);
    tcase_add_test (tc, a_spawn_cancelled_before_it_starts_spawns_nothing);
    tcase_add_test (tc, a_spawn_interrupted_by_a_nursery_cancel_from_another_task_fails_as_cancelled);
    return s;
}

int
main (void)
{
    return tu_run_suite (s_suite (), CK_FORK);
}
