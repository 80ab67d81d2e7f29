/*  =========================================================================
    test_spawn.c - scenario: spawning children, crashes, reaping

    Each test makes the forked test process a root actor (tr_run from the
    test function) that spawns tests/worker children. The root records what
    it sees in a struct; the test asserts on it once tr_run has returned,
    then checks that no process the scenario started is left.
    =========================================================================
*/
#include "testutil.h"
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>

//  --------------------------------------------------------------------------
//  Helpers

//  A copy of a tr_error_t that outlives the runtime.
typedef struct {
    bool set;
    int code;
    char type [64];
    char message [512];
    char origin [256];
    size_t hops;
    int signal;
    int status;
} s_err_t;

static void
s_err_copy (s_err_t *self, const tr_error_t *error)
{
    memset (self, 0, sizeof *self);
    if (!error)
        return;
    self->set = true;
    self->code = tr_error_code (error);
    snprintf (self->type, sizeof self->type, "%s", tr_error_type (error));
    snprintf (self->message, sizeof self->message, "%s", tr_error_message (error));
    snprintf (self->origin, sizeof self->origin, "%s", tr_error_origin (error));
    self->hops = tr_error_hops (error);
    self->signal = tr_error_signal (error);
    self->status = tr_error_exit_status (error);
}

static size_t
s_err_count (const tr_error_t *list)
{
    size_t count = 0;
    for (; list; list = tr_error_next (list))
        count++;
    return count;
}

static tr_config_t
s_config (void)
{
    tr_config_t config;
    memset (&config, 0, sizeof config);
    config.name = "root";
    config.worker_path = tu_worker_path ();
    return config;
}

static int
s_children_now (void)
{
    pid_t pids [64];
    char states [64];
    return tu_children (pids, states, 64);
}

//  Call fn(args) and return its rc; *out gets the value when not NULL.
static int
s_call (tr_portal_t *p, const char *fn, tr_args_t *args, tr_value_t **out)
{
    int rc = tr_portal_run (p, fn, args, out);
    tr_args_destroy (&args);
    return rc;
}

//  Poll the child's "cancels" until sleeping_now >= want or timeout_ms.
static bool
s_wait_sleeping (tr_ctx_t *ctx, tr_portal_t *p, int want, int timeout_ms)
{
    long long deadline = tu_now_ms () + timeout_ms;
    while (tu_now_ms () < deadline) {
        tr_value_t *v = NULL;
        int cancels = 0, sleeping = 0;
        if (tr_portal_run (p, "cancels", NULL, &v) == 0
        &&  tr_unpack (tr_value_object (v), "[ii]", &cancels, &sleeping) == 0
        &&  sleeping >= want) {
            tr_value_destroy (&v);
            return true;
        }
        tr_value_destroy (&v);
        if (tr_sleep (ctx, 10))
            return false;
    }
    return false;
}

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
        tr_value_t *v = NULL;
        obs->pid_rc = s_call (p, "pid", NULL, &v);
        if (obs->pid_rc == 0)
            tr_unpack (tr_value_object (v), "i", &obs->reported_pid);
        tr_value_destroy (&v);
        obs->add_rc = s_call (p, "add", tr_pack ("[ii]", 2, 40), &v);
        if (obs->add_rc == 0)
            tr_unpack (tr_value_object (v), "I", &obs->sum);
        tr_value_destroy (&v);
    }
    obs->close_rc = tr_nursery_close (&n, NULL);
    obs->children_after_close = s_children_now ();
    return 7;
}

START_TEST (a_child_answers_calls_and_is_reaped_when_its_nursery_closes)
{
    tu_subreaper ();
    s_basic_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = s_config ();
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
    const char *fn;
    const char *how;                //  NULL: no args
    int start_rc, run_rc, close_rc;
    char uid [256];
    int pid;
    s_err_t error;                  //  tr_portal_error after the call
    s_err_t close_error;            //  first error of the close list
    size_t close_errors;
    long long run_ms;
} s_crash_t;

static int
s_crash_root (tr_actor_t *self, void *arg)
{
    s_crash_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p = NULL;
    obs->start_rc = tr_nursery_start_actor (n, "crasher", NULL, &p);
    if (obs->start_rc == 0) {
        snprintf (obs->uid, sizeof obs->uid, "%s", tr_portal_uid (p));
        obs->pid = tr_portal_pid (p);
        long long t0 = tu_now_ms ();
        tr_args_t *args = obs->how? tr_pack ("[s]", obs->how): NULL;
        obs->run_rc = s_call (p, obs->fn, args, NULL);
        obs->run_ms = tu_now_ms () - t0;
        s_err_copy (&obs->error, tr_portal_error (p));
    }
    tr_error_t *errors = NULL;
    obs->close_rc = tr_nursery_close (&n, &errors);
    obs->close_errors = s_err_count (errors);
    s_err_copy (&obs->close_error, errors);
    tr_error_destroy (&errors);
    return 0;
}

static void
s_run_crash (s_crash_t *obs)
{
    tr_config_t config = s_config ();
    int rc = tr_run (&config, 0, NULL, s_crash_root, obs);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs->start_rc);
    ck_assert_tr_rc (obs->run_rc, TR_ECRASHED);
    ck_assert_msg (obs->error.set, "no portal error after the crash");
    ck_assert_tr_rc (obs->error.code, TR_ECRASHED);
    ck_assert_msg (strstr (obs->error.message, obs->uid),
                   "message '%s' does not name %s", obs->error.message, obs->uid);
    ck_assert_str_eq (obs->error.origin, obs->uid);
    //  The close reports the crash too: the child died on its own.
    ck_assert_tr_rc (obs->close_rc, TR_ECRASHED);
    ck_assert_int_eq (obs->close_errors, 1);
    ck_assert_tr_rc (obs->close_error.code, TR_ECRASHED);
}

START_TEST (a_child_that_segfaults_in_a_call_is_reported_as_killed_by_sigsegv)
{
    tu_subreaper ();
    s_crash_t obs = { .fn = "crash", .how = "segv" };
    s_run_crash (&obs);
    ck_assert_int_eq (obs.error.signal, SIGSEGV);
    ck_assert_int_eq (obs.error.status, 0);
    ck_assert_int_eq (obs.close_error.signal, SIGSEGV);
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
    ck_assert_int_eq (obs.close_error.status, 3);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  The child's stderr goes to a file for the scenario so that its
//  "stack overflow" line can be read back.
START_TEST (a_stack_overflow_in_a_child_task_is_reported_as_sigsegv_and_named)
{
    tu_subreaper ();
    FILE *capture = tmpfile ();
    ck_assert_ptr_nonnull (capture);
    fflush (stderr);
    int saved = dup (STDERR_FILENO);
    ck_assert_int_ge (saved, 0);
    ck_assert_int_ge (dup2 (fileno (capture), STDERR_FILENO), 0);

    s_crash_t obs = { .fn = "overflow" };
    tr_config_t config = s_config ();
    int rc = tr_run (&config, 0, NULL, s_crash_root, &obs);

    fflush (stderr);
    dup2 (saved, STDERR_FILENO);
    close (saved);
    char text [8192];
    rewind (capture);
    size_t size = fread (text, 1, sizeof text - 1, capture);
    text [size] = 0;
    fclose (capture);
    fputs (text, stderr);

    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs.start_rc);
    ck_assert_tr_rc (obs.run_rc, TR_ECRASHED);
    ck_assert_tr_rc (obs.error.code, TR_ECRASHED);
    ck_assert_int_eq (obs.error.signal, SIGSEGV);
    ck_assert_msg (strstr (obs.error.message, obs.uid), "message '%s'", obs.error.message);
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
    s_err_t error;
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
    obs->children_after_start = s_children_now ();
    s_err_copy (&obs->error, tr_nursery_error (n));
    obs->close_rc = tr_nursery_close (&n, NULL);
    return 0;
}

static void
s_run_nohello (s_nohello_t *obs)
{
    tr_config_t config = s_config ();
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
    ck_assert_msg (obs.start_ms < 4000, "took %lld ms to notice", obs.start_ms);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  /bin/cat with stdin on a pipe nobody writes to blocks for ever without
//  a hello: the test process holds the write end open.
static int s_stdin_writer = -1;

static void
s_stdin_pipe (void)
{
    int fds [2];
    ck_assert_int_eq (pipe2 (fds, O_CLOEXEC), 0);
    if (fds [0] == STDIN_FILENO)
        //  stdin was closed: the pipe took its place; let children have it.
        ck_assert_int_eq (fcntl (STDIN_FILENO, F_SETFD, 0), 0);
    else {
        ck_assert_int_eq (dup2 (fds [0], STDIN_FILENO), STDIN_FILENO);
        close (fds [0]);
    }
    s_stdin_writer = fds [1];
}

START_TEST (a_child_that_never_says_hello_is_killed_after_the_hello_deadline)
{
    tu_subreaper ();
    s_stdin_pipe ();
    s_nohello_t obs;
    memset (&obs, 0, sizeof obs);
    obs.opts.worker_path = "/bin/cat";
    obs.hello_ms = 300;
    s_run_nohello (&obs);
    ck_assert_tr_rc (obs.start_rc, TR_ETIMEDOUT);
    ck_assert_tr_rc (obs.error.code, TR_ETIMEDOUT);
    ck_assert_msg (strstr (obs.error.message, "300 ms"), "message '%s'", obs.error.message);
    ck_assert_msg (obs.start_ms >= 280 && obs.start_ms < 1500,
                   "spawn gave up after %lld ms, hello_ms is 300", obs.start_ms);
    close (s_stdin_writer);
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
    if (tr_nursery_open (self, &obs->spawner.n))
        return 1;
    tr_task_t *task;
    if (tr_task_spawn (self, s_spawner, &obs->spawner, &task))
        return 1;
    if (obs->wait_for_process) {
        //  The spawning task runs once we park: wait until its process
        //  exists, so the cancel lands while it waits for the hello.
        long long deadline = tu_now_ms () + 5000;
        while (!(obs->saw_process = s_children_now () > 0) && tu_now_ms () < deadline)
            tr_sleep (ctx, 5);
    }
    long long t0 = tu_now_ms ();
    tr_task_cancel (task);
    obs->join_rc = tr_task_join (&task, &obs->task_rc);
    obs->cancel_ms = tu_now_ms () - t0;
    obs->children_after = s_children_now ();
    obs->close_rc = tr_nursery_close (&obs->spawner.n, NULL);
    return 0;
}

START_TEST (a_spawn_cancelled_while_waiting_for_hello_kills_and_reaps_the_child)
{
    tu_subreaper ();
    s_stdin_pipe ();
    s_cancel_spawn_t obs;
    memset (&obs, 0, sizeof obs);
    obs.wait_for_process = true;
    tr_config_t config = s_config ();
    config.hello_ms = 20000;
    int rc = tr_run (&config, 0, NULL, s_cancel_spawn_root, &obs);
    ck_assert_int_eq (rc, 0);
    ck_assert_msg (obs.saw_process, "the spawning task never started a process");
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_tr_rc (obs.task_rc, TR_ECANCELED);
    ck_assert_msg (obs.spawner.portal_null, "a cancelled spawn left a portal");
    ck_assert_msg (obs.cancel_ms < 2000, "cancel took %lld ms", obs.cancel_ms);
    ck_assert_int_eq (obs.children_after, 0);
    ck_assert_tr_ok (obs.close_rc);
    close (s_stdin_writer);
    tu_assert_no_procs_left (2000);
}
END_TEST

START_TEST (a_spawn_cancelled_before_it_starts_spawns_nothing)
{
    tu_subreaper ();
    s_cancel_spawn_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = s_config ();
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
//  kill -9 while a call is parked in the child

typedef struct {
    tr_portal_t *p;
    int rc;
    s_err_t error;
} s_sleeper_t;

static int
s_sleeper (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_sleeper_t *self = arg;
    tr_args_t *args = tr_pack ("[i]", 10000);
    self->rc = tr_portal_run (self->p, "sleep", args, NULL);
    tr_args_destroy (&args);
    s_err_copy (&self->error, tr_portal_error (self->p));
    return self->rc;
}

typedef struct {
    int start_rc, join_rc, close_rc;
    bool sleeping;
    s_sleeper_t sleeper;
    char uid [256];
    long long fail_ms;
    s_err_t close_error;
} s_kill_t;

static int
s_kill_root (tr_actor_t *self, void *arg)
{
    s_kill_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    obs->start_rc = tr_nursery_start_actor (n, "victim", NULL, &obs->sleeper.p);
    if (obs->start_rc == 0) {
        snprintf (obs->uid, sizeof obs->uid, "%s", tr_portal_uid (obs->sleeper.p));
        tr_task_t *task;
        tr_task_spawn (self, s_sleeper, &obs->sleeper, &task);
        obs->sleeping = s_wait_sleeping (ctx, obs->sleeper.p, 1, 5000);
        long long t0 = tu_now_ms ();
        kill (tr_portal_pid (obs->sleeper.p), SIGKILL);
        obs->join_rc = tr_task_join (&task, NULL);
        obs->fail_ms = tu_now_ms () - t0;
    }
    tr_error_t *errors = NULL;
    obs->close_rc = tr_nursery_close (&n, &errors);
    s_err_copy (&obs->close_error, errors);
    tr_error_destroy (&errors);
    return 0;
}

START_TEST (a_child_killed_while_serving_a_call_fails_the_call_as_crashed_by_sigkill)
{
    tu_subreaper ();
    s_kill_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = s_config ();
    int rc = tr_run (&config, 0, NULL, s_kill_root, &obs);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs.start_rc);
    ck_assert_msg (obs.sleeping, "the child never reported its sleeping call");
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_tr_rc (obs.sleeper.rc, TR_ECRASHED);
    ck_assert_tr_rc (obs.sleeper.error.code, TR_ECRASHED);
    ck_assert_int_eq (obs.sleeper.error.signal, SIGKILL);
    ck_assert_msg (strstr (obs.sleeper.error.message, obs.uid),
                   "message '%s'", obs.sleeper.error.message);
    ck_assert_msg (obs.fail_ms < 3000, "the call failed %lld ms after the kill", obs.fail_ms);
    ck_assert_tr_rc (obs.close_rc, TR_ECRASHED);
    ck_assert_int_eq (obs.close_error.signal, SIGKILL);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Nested trees: root -> child -> grandchild

typedef struct {
    int start_rc, pid_rc, via_rc, via_add_rc, close_rc;
    int child_pid, grandchild_pid, grandchild_reported;
    int64_t sum;
    int sum_grandchild_pid;
} s_nested_t;

static int
s_nested_root (tr_actor_t *self, void *arg)
{
    s_nested_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p;
    obs->start_rc = tr_nursery_start_actor (n, "child", NULL, &p);
    if (obs->start_rc == 0) {
        tr_value_t *v = NULL;
        obs->pid_rc = s_call (p, "pid", NULL, &v);
        if (obs->pid_rc == 0)
            tr_unpack (tr_value_object (v), "i", &obs->child_pid);
        tr_value_destroy (&v);
        obs->via_rc = s_call (p, "via_child", tr_pack ("[s[]]", "pid"), &v);
        if (obs->via_rc == 0)
            tr_unpack (tr_value_object (v), "[ii]", &obs->grandchild_reported,
                       &obs->grandchild_pid);
        tr_value_destroy (&v);
        obs->via_add_rc = s_call (p, "via_child", tr_pack ("[s[ii]]", "add", 20, 22), &v);
        if (obs->via_add_rc == 0)
            tr_unpack (tr_value_object (v), "[Ii]", &obs->sum, &obs->sum_grandchild_pid);
        tr_value_destroy (&v);
    }
    obs->close_rc = tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (a_call_through_a_child_reaches_a_grandchild_in_another_process)
{
    tu_subreaper ();
    s_nested_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = s_config ();
    int rc = tr_run (&config, 0, NULL, s_nested_root, &obs);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs.start_rc);
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
    ck_assert_tr_ok (obs.close_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------

static Suite *
s_suite (void)
{
    Suite *s = suite_create ("spawn");
    TCase *tc = tcase_create ("calls");
    tcase_set_timeout (tc, 30);
    tcase_add_test (tc, a_child_answers_calls_and_is_reaped_when_its_nursery_closes);
    tcase_add_test (tc, a_call_through_a_child_reaches_a_grandchild_in_another_process);
    suite_add_tcase (s, tc);

    tc = tcase_create ("crashes");
    tcase_set_timeout (tc, 30);
    tcase_add_test (tc, a_child_that_segfaults_in_a_call_is_reported_as_killed_by_sigsegv);
    tcase_add_test (tc, a_child_that_aborts_in_a_call_is_reported_as_killed_by_sigabrt);
    tcase_add_test (tc, a_child_that_exits_in_a_call_is_reported_with_its_exit_status);
    tcase_add_test (tc, a_stack_overflow_in_a_child_task_is_reported_as_sigsegv_and_named);
    tcase_add_test (tc, a_child_killed_while_serving_a_call_fails_the_call_as_crashed_by_sigkill);
    suite_add_tcase (s, tc);

    tc = tcase_create ("failed spawns");
    tcase_set_timeout (tc, 30);
    tcase_add_test (tc, a_worker_path_that_does_not_exist_fails_the_spawn_with_a_reason);
    tcase_add_test (tc, a_worker_that_exits_before_hello_fails_the_spawn_as_crashed);
    tcase_add_test (tc, a_child_that_never_says_hello_is_killed_after_the_hello_deadline);
    tcase_add_test (tc, a_spawn_cancelled_while_waiting_for_hello_kills_and_reaps_the_child);
    tcase_add_test (tc, a_spawn_cancelled_before_it_starts_spawns_nothing);
    suite_add_tcase (s, tc);
    return s;
}

int
main (void)
{
    SRunner *runner = srunner_create (s_suite ());
    srunner_set_fork_status (runner, CK_FORK);
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed == 0? EXIT_SUCCESS: EXIT_FAILURE;
}
