/*  =========================================================================
    test_supervise.c - scenario: supervised nurseries restart what dies

    The forked test process is the root actor; a supervised nursery
    starts tests/worker children. A child that crashes is restarted under
    its name and its portal reaches the new process; each strategy
    restarts exactly the children it names (their pids say so); past the
    intensity the supervisor gives up and the close returns every death;
    run_in_actor children are results, never restarted; a storm of
    restarts leaves no process behind.
    =========================================================================
*/
#include "testutil.h"

#define ck_assert_contains(text, part) \
    ck_assert_msg (strstr ((text), (part)) != NULL, "'%s' does not contain '%s'", (text), (part))

//  The pid a child reports of itself, or -1.
static int
s_pid_of (tr_portal_t *p)
{
    tr_value_t *v = NULL;
    int pid = -1;
    if (tr_portal_run (p, "pid", NULL, &v) == 0)
        tr_unpack (tr_value_object (v), "i", &pid);
    tr_value_destroy (&v);
    return pid;
}

static int
s_supervise (tr_nursery_t *n, tr_strategy_t strategy, int intensity, int period_ms)
{
    tr_supervise_t how = { strategy, intensity, period_ms };
    return tr_nursery_supervise (n, &how);
}

//  --------------------------------------------------------------------------
//  A child that crashes every few calls

#define FLAKY_CALLS 30
#define FLAKY_EVERY 5

typedef struct {
    int supervise_rc, start_rc;
    int ok, crashed, other;         //  outcomes of the calls
    int other_rc;
    bool counts_right;              //  each answer counted calls since a restart
    int restarts;
    int pids_seen;                  //  distinct pids that answered
    tu_err_t crash;                 //  the first crash's error
    char log [8192];
    int close_rc;
    size_t close_errors;
} s_flaky_t;

static int
s_flaky_root (tr_actor_t *self, void *arg)
{
    s_flaky_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    obs->supervise_rc = s_supervise (n, TR_ONE_FOR_ONE, 100, 60000);
    tr_portal_t *p = NULL;
    obs->start_rc = tr_nursery_start_actor (n, "flaky", NULL, &p);
    obs->counts_right = true;
    int last_pid = 0;
    for (int i = 1; obs->start_rc == 0 && i <= FLAKY_CALLS; i++) {
        int pid = tr_portal_pid (p);
        if (pid != last_pid)
            obs->pids_seen++;
        last_pid = pid;
        tr_value_t *v = NULL;
        int rc = tu_call (p, "flaky", tr_pack ("[i]", FLAKY_EVERY), &v);
        if (rc == 0) {
            int count = 0;
            tr_unpack (tr_value_object (v), "i", &count);
            if (count != (i - 1) % FLAKY_EVERY + 1)
                obs->counts_right = false;
            obs->ok++;
        }
        else
        if (rc == TR_ECRASHED) {
            if (!obs->crashed)
                tu_err_copy (&obs->crash, tr_portal_error (p));
            obs->crashed++;
        }
        else {
            obs->other++;
            obs->other_rc = rc;
        }
        tr_value_destroy (&v);
    }
    //  One more call: it waits for the last restart.
    if (obs->start_rc == 0 && s_pid_of (p) > 0)
        obs->restarts = tr_portal_restarts (p);
    obs->close_rc = tu_nursery_close (&n, &obs->close_errors, NULL);
    return 0;
}

START_TEST (a_child_that_crashes_every_few_calls_is_restarted_and_calls_go_on_succeeding)
{
    tu_subreaper ();
    s_flaky_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    tu_capture_t capture;
    tu_capture_start (&capture);
    int rc = tr_run (&config, 0, NULL, s_flaky_root, &obs);
    tu_capture_end (&capture, obs.log, sizeof obs.log);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs.supervise_rc);
    ck_assert_tr_ok (obs.start_rc);
    //  Every fifth call takes its process down with it; every other call
    //  succeeds, on a process that counts from one again.
    ck_assert_int_eq (obs.crashed, FLAKY_CALLS / FLAKY_EVERY);
    ck_assert_int_eq (obs.ok, FLAKY_CALLS - FLAKY_CALLS / FLAKY_EVERY);
    ck_assert_msg (obs.other == 0, "a call returned %s", tr_errname (obs.other_rc));
    ck_assert (obs.counts_right);
    ck_assert_int_eq (obs.restarts, FLAKY_CALLS / FLAKY_EVERY);
    ck_assert_int_eq (obs.pids_seen, FLAKY_CALLS / FLAKY_EVERY);
    //  The call in flight failed with the crash, naming the exit status.
    ck_assert_int_eq (obs.crash.code, TR_ECRASHED);
    ck_assert_int_eq (obs.crash.status, 3);
    //  Each restart is logged with its cause.
    ck_assert_contains (obs.log, "TR-RESTART");
    ck_assert_contains (obs.log, "exited with status 3");
    ck_assert_contains (obs.log, "restarting (one_for_one)");
    //  Restarted deaths are no failure of the nursery's.
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_int_eq (obs.close_errors, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Strategies: which children restart

#define KIDS 3

typedef struct {
    tr_strategy_t strategy;
    int start_rc;
    int before [KIDS], after [KIDS];
    int restarts [KIDS];
    char name [KIDS][64];           //  the name in each uid, after
    int crash_rc;
    int close_rc;
    size_t close_errors;
} s_strategy_t;

static int
s_strategy_root (tr_actor_t *self, void *arg)
{
    s_strategy_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    s_supervise (n, obs->strategy, 10, 60000);
    tr_portal_t *p [KIDS] = { NULL };
    obs->start_rc = tr_nursery_start_actors (n, "w", KIDS, NULL, p);
    if (obs->start_rc == 0) {
        for (int i = 0; i < KIDS; i++)
            obs->before [i] = s_pid_of (p [i]);
        //  The middle child dies.
        obs->crash_rc = tu_call (p [1], "crash", tr_pack ("[s]", "exit"), NULL);
        //  Calls wait for the restarts, then reach the new processes.
        for (int i = 0; i < KIDS; i++) {
            obs->after [i] = s_pid_of (p [i]);
            obs->restarts [i] = tr_portal_restarts (p [i]);
            snprintf (obs->name [i], sizeof obs->name [i], "%s", tr_portal_uid (p [i]));
            char *at = strchr (obs->name [i], '@');
            if (at)
                *at = '\0';
        }
    }
    obs->close_rc = tu_nursery_close (&n, &obs->close_errors, NULL);
    return 0;
}

static void
s_run_strategy (tr_strategy_t strategy, const bool restarted [KIDS])
{
    tu_subreaper ();
    s_strategy_t obs;
    memset (&obs, 0, sizeof obs);
    obs.strategy = strategy;
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_strategy_root, &obs), 0);
    ck_assert_tr_ok (obs.start_rc);
    ck_assert_tr_rc (obs.crash_rc, TR_ECRASHED);
    for (int i = 0; i < KIDS; i++) {
        char want [16];
        snprintf (want, sizeof want, "w-%d", i);
        ck_assert_int_gt (obs.before [i], 0);
        ck_assert_int_gt (obs.after [i], 0);
        ck_assert_str_eq (obs.name [i], want);
        if (restarted [i]) {
            ck_assert_msg (obs.after [i] != obs.before [i], "child %d was not restarted", i);
            ck_assert_int_eq (obs.restarts [i], 1);
        }
        else {
            ck_assert_msg (obs.after [i] == obs.before [i], "child %d was restarted", i);
            ck_assert_int_eq (obs.restarts [i], 0);
        }
    }
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_int_eq (obs.close_errors, 0);
    tu_assert_no_procs_left (2000);
}

START_TEST (one_for_one_restarts_only_the_child_that_died)
{
    const bool restarted [KIDS] = { false, true, false };
    s_run_strategy (TR_ONE_FOR_ONE, restarted);
}
END_TEST

START_TEST (one_for_all_restarts_every_child)
{
    const bool restarted [KIDS] = { true, true, true };
    s_run_strategy (TR_ONE_FOR_ALL, restarted);
}
END_TEST

START_TEST (rest_for_one_restarts_the_child_that_died_and_those_started_after_it)
{
    const bool restarted [KIDS] = { false, true, true };
    s_run_strategy (TR_REST_FOR_ONE, restarted);
}
END_TEST

//  --------------------------------------------------------------------------
//  Intensity exceeded

#define INTENSITY 2

typedef struct {
    int start_rc;
    int crash_rc [INTENSITY + 1];
    int between_rc [INTENSITY];     //  a call after each restart
    int wait_rc;
    long long wait_ms;
    int dead_call_rc, sibling_call_rc;
    tu_err_t dead_call;
    int close_rc;
    size_t close_errors;
    tu_err_t close_error;
    int error_codes [8];
    int error_status [8];
    char log [8192];
} s_intensity_t;

static int
s_intensity_root (tr_actor_t *self, void *arg)
{
    s_intensity_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    s_supervise (n, TR_ONE_FOR_ONE, INTENSITY, 60000);
    tr_portal_t *p [2] = { NULL };
    obs->start_rc = tr_nursery_start_actors (n, "w", 2, NULL, p);
    if (obs->start_rc == 0) {
        for (int i = 0; i <= INTENSITY; i++) {
            obs->crash_rc [i] = tu_call (p [0], "crash", tr_pack ("[s]", "exit"), NULL);
            if (i < INTENSITY)
                obs->between_rc [i] = s_pid_of (p [0]) > 0? 0: -1;
        }
        long long t0 = tu_now_ms ();
        obs->wait_rc = tr_nursery_wait (n, tu_ms (10000));
        obs->wait_ms = tu_now_ms () - t0;
        obs->dead_call_rc = tu_call (p [0], "pid", NULL, NULL);
        tu_err_copy (&obs->dead_call, tr_portal_error (p [0]));
        obs->sibling_call_rc = tu_call (p [1], "pid", NULL, NULL);
    }
    tr_error_t *errors = NULL;
    obs->close_rc = tr_nursery_close (&n, &errors);
    obs->close_errors = tu_err_count (errors);
    tu_err_copy (&obs->close_error, errors);
    int i = 0;
    for (const tr_error_t *e = errors; e && i < 8; e = tr_error_next (e), i++) {
        obs->error_codes [i] = tr_error_code (e);
        obs->error_status [i] = tr_error_exit_status (e);
    }
    tr_error_destroy (&errors);
    return 0;
}

START_TEST (past_the_intensity_the_supervisor_gives_up_and_close_returns_every_death)
{
    tu_subreaper ();
    s_intensity_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    tu_capture_t capture;
    tu_capture_start (&capture);
    int rc = tr_run (&config, 0, NULL, s_intensity_root, &obs);
    tu_capture_end (&capture, obs.log, sizeof obs.log);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs.start_rc);
    for (int i = 0; i <= INTENSITY; i++)
        ck_assert_tr_rc (obs.crash_rc [i], TR_ECRASHED);
    for (int i = 0; i < INTENSITY; i++)
        ck_assert_int_eq (obs.between_rc [i], 0);
    //  The third death within the period ends the supervisor: the wait
    //  returns with the death, the dead child's calls fail with it, its
    //  sibling was asked to cancel.
    ck_assert_tr_rc (obs.wait_rc, TR_ECRASHED);
    ck_assert_int_lt (obs.wait_ms, tu_ms (5000));
    ck_assert_tr_rc (obs.dead_call_rc, TR_ECRASHED);
    ck_assert_int_eq (obs.dead_call.status, 3);
    ck_assert_tr_rc (obs.sibling_call_rc, TR_ECLOSED);
    ck_assert_contains (obs.log, "TR-SUPERVISOR");
    ck_assert_contains (obs.log, "giving up");
    //  Every death that counted, as a list.
    ck_assert_tr_rc (obs.close_rc, TR_ECRASHED);
    ck_assert_int_eq (obs.close_errors, INTENSITY + 1);
    for (int i = 0; i <= INTENSITY; i++) {
        ck_assert_int_eq (obs.error_codes [i], TR_ECRASHED);
        ck_assert_int_eq (obs.error_status [i], 3);
    }
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  What is not restarted

typedef struct {
    int run_rc, result_rc, restarts, close_rc;
    size_t close_errors;
    tu_err_t close_error;
    int cancel_rc, after_cancel_rc, cancelled_restarts;
} s_not_restarted_t;

static int
s_not_restarted_root (tr_actor_t *self, void *arg)
{
    s_not_restarted_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    s_supervise (n, TR_ONE_FOR_ALL, 10, 60000);
    //  A run_in_actor child whose function fails: a result.
    tr_portal_t *p = NULL;
    tr_args_t *args = tr_pack ("[i]", 0);
    obs->run_rc = tr_nursery_run_in_actor (n, "runner", "fail", args, &p);
    tr_args_destroy (&args);
    if (obs->run_rc == 0) {
        obs->result_rc = tr_portal_result (p, NULL);
        obs->restarts = tr_portal_restarts (p);
    }
    //  A daemon the user cancels: a wish, not a death.
    tr_portal_t *d = NULL;
    if (tr_nursery_start_actor (n, "daemon", NULL, &d) == 0) {
        obs->cancel_rc = tr_portal_cancel_actor (d, 2000);
        obs->after_cancel_rc = tu_call (d, "pid", NULL, NULL);
        obs->cancelled_restarts = tr_portal_restarts (d);
    }
    obs->close_rc = tu_nursery_close (&n, &obs->close_errors, &obs->close_error);
    return 0;
}

START_TEST (a_run_in_actor_failure_and_a_cancelled_daemon_are_not_restarted)
{
    tu_subreaper ();
    s_not_restarted_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_not_restarted_root, &obs), 0);
    ck_assert_tr_ok (obs.run_rc);
    ck_assert_tr_rc (obs.result_rc, TR_EREMOTE);
    ck_assert_int_eq (obs.restarts, 0);
    ck_assert_tr_ok (obs.cancel_rc);
    ck_assert_tr_rc (obs.after_cancel_rc, TR_ECLOSED);
    ck_assert_int_eq (obs.cancelled_restarts, 0);
    //  The failed result is the nursery's error, as without a strategy.
    ck_assert_tr_rc (obs.close_rc, TR_EREMOTE);
    ck_assert_int_eq (obs.close_errors, 1);
    ck_assert_str_eq (obs.close_error.type, "ValueError");
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A restart storm

#define STORM_KIDS 4
#define STORM_CRASHES 40

typedef struct {
    int start_rc;
    int crashes, restarts, answered;
    tu_err_t odd;                   //  a crash call that did not crash
    int close_rc;
    size_t close_errors;
} s_storm_t;

static int
s_storm_root (tr_actor_t *self, void *arg)
{
    s_storm_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    s_supervise (n, TR_REST_FOR_ONE, 1000, 60000);
    tr_portal_t *p [STORM_KIDS] = { NULL };
    obs->start_rc = tr_nursery_start_actors (n, "storm", STORM_KIDS, NULL, p);
    for (int i = 0; obs->start_rc == 0 && i < STORM_CRASHES; i++) {
        //  Crash one, and do not wait for its restart before the next.
        const char *how [] = { "exit", "abort", "segv" };
        tr_portal_t *kid = p [(i * 7) % STORM_KIDS];
        int rc = tu_call (kid, "crash", tr_pack ("[s]", how [i % 3]), NULL);
        if (rc == TR_ECRASHED)
            obs->crashes++;
        else
        if (!obs->odd.set) {
            tu_err_copy (&obs->odd, tr_portal_error (kid));
            obs->odd.code = rc;
            obs->odd.set = true;
        }
    }
    for (int i = 0; obs->start_rc == 0 && i < STORM_KIDS; i++) {
        if (s_pid_of (p [i]) > 0)
            obs->answered++;
        obs->restarts += tr_portal_restarts (p [i]);
    }
    obs->close_rc = tu_nursery_close (&n, &obs->close_errors, NULL);
    return 0;
}

START_TEST (a_restart_storm_leaves_no_zombie_and_no_orphan)
{
    tu_subreaper ();
    s_storm_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    config.hello_ms = 10000;
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_storm_root, &obs), 0);
    ck_assert_tr_ok (obs.start_rc);
    ck_assert_msg (obs.crashes == STORM_CRASHES, "%d crashes; a call returned %s: %s: %s",
                   obs.crashes, tr_errname (obs.odd.code), obs.odd.type, obs.odd.message);
    //  Every child answers at the end; rest_for_one restarted at least
    //  the one that died each time.
    ck_assert_int_eq (obs.answered, STORM_KIDS);
    ck_assert_int_ge (obs.restarts, STORM_CRASHES);
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_int_eq (obs.close_errors, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A stopped child is a dead one

typedef struct {
    int start_rc, before, after, restarts;
    int pending_rc;                 //  the call in flight when it stopped
    tu_err_t pending;
    long long detect_ms;            //  from SIGSTOP to the call's failure
    bool stopped_gone;              //  the stopped process was reaped
    int close_rc;
    size_t close_errors;
} s_stopped_t;

static int
s_stopped_root (tr_actor_t *self, void *arg)
{
    s_stopped_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    s_supervise (n, TR_ONE_FOR_ONE, 3, 60000);
    tr_portal_t *p = NULL;
    obs->start_rc = tr_nursery_start_actor (n, "w", NULL, &p);
    if (obs->start_rc == 0) {
        obs->before = s_pid_of (p);
        kill (obs->before, SIGSTOP);
        long long t0 = tu_now_ms ();
        obs->pending_rc = tu_call (p, "pid", NULL, NULL);
        obs->detect_ms = tu_now_ms () - t0;
        tu_err_copy (&obs->pending, tr_portal_error (p));
        obs->after = s_pid_of (p);
        obs->restarts = tr_portal_restarts (p);
        obs->stopped_gone = tu_process_gone (tr_actor_ctx (self), obs->before, 2000);
        //  A SIGCONT now wakes nothing: the process is gone.
        kill (obs->before, SIGCONT);
    }
    obs->close_rc = tu_nursery_close (&n, &obs->close_errors, NULL);
    return 0;
}

START_TEST (a_stopped_child_is_detected_killed_and_restarted_within_the_heartbeat_timeout)
{
    tu_subreaper ();
    s_stopped_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    config.heartbeat_ivl_ms = 200;
    config.heartbeat_timeout_ms = 1000;
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_stopped_root, &obs), 0);
    ck_assert_tr_ok (obs.start_rc);
    ck_assert_int_gt (obs.before, 0);
    //  The call to the stopped process fails with its loss, within the
    //  heartbeat timeout and a margin, not never.
    ck_assert_tr_rc (obs.pending_rc, TR_ECRASHED);
    ck_assert_str_eq (obs.pending.type, "ConnectionLost");
    ck_assert_int_lt (obs.detect_ms, tu_ms (1000 + 1000));
    //  It was killed and reaped, and a new process serves its portal.
    ck_assert (obs.stopped_gone);
    ck_assert_int_gt (obs.after, 0);
    ck_assert_int_ne (obs.after, obs.before);
    ck_assert_int_eq (obs.restarts, 1);
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_int_eq (obs.close_errors, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  tr_nursery_wait

typedef struct {
    int idle_rc, crash_rc, wait_rc, close_rc;
    size_t close_errors;
    tu_err_t close_error;
} s_wait_t;

static int
s_wait_root (tr_actor_t *self, void *arg)
{
    s_wait_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p = NULL;
    if (tr_nursery_start_actor (n, "w", NULL, &p) == 0) {
        obs->idle_rc = tr_nursery_wait (n, 50);
        obs->crash_rc = tu_call (p, "crash", tr_pack ("[s]", "exit"), NULL);
        obs->wait_rc = tr_nursery_wait (n, tu_ms (5000));
    }
    obs->close_rc = tu_nursery_close (&n, &obs->close_errors, &obs->close_error);
    return 0;
}

START_TEST (without_a_strategy_tr_nursery_wait_returns_when_a_daemon_child_dies)
{
    tu_subreaper ();
    s_wait_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_wait_root, &obs), 0);
    ck_assert_tr_rc (obs.idle_rc, TR_ETIMEDOUT);
    ck_assert_tr_rc (obs.crash_rc, TR_ECRASHED);
    ck_assert_tr_rc (obs.wait_rc, TR_ECRASHED);
    ck_assert_tr_rc (obs.close_rc, TR_ECRASHED);
    ck_assert_int_eq (obs.close_errors, 1);
    ck_assert_int_eq (obs.close_error.status, 3);
    tu_assert_no_procs_left (2000);
}
END_TEST

typedef struct {
    int rc [6];
} s_args_t;

static int
s_args_root (tr_actor_t *self, void *arg)
{
    s_args_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_supervise_t bad_strategy = { (tr_strategy_t) 9, 1, 1000 };
    tr_supervise_t bad_intensity = { TR_ONE_FOR_ONE, -1, 1000 };
    tr_supervise_t bad_period = { TR_ONE_FOR_ONE, 1, -5 };
    obs->rc [0] = tr_nursery_supervise (NULL, &bad_period);
    obs->rc [1] = tr_nursery_supervise (n, NULL);
    obs->rc [2] = tr_nursery_supervise (n, &bad_strategy);
    obs->rc [3] = tr_nursery_supervise (n, &bad_intensity);
    obs->rc [4] = tr_nursery_supervise (n, &bad_period);
    obs->rc [5] = tr_nursery_wait (NULL, 0);
    tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (bad_supervision_arguments_are_refused)
{
    tu_subreaper ();
    s_args_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_args_root, &obs), 0);
    for (int i = 0; i < 6; i++)
        ck_assert_tr_rc (obs.rc [i], TR_EINVAL);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------

static Suite *
s_suite (void)
{
    Suite *s = suite_create ("supervise");
    TCase *tc = tu_tcase (s, "restart", 60);
    tcase_add_test (tc, a_child_that_crashes_every_few_calls_is_restarted_and_calls_go_on_succeeding);
    tcase_add_test (tc, one_for_one_restarts_only_the_child_that_died);
    tcase_add_test (tc, one_for_all_restarts_every_child);
    tcase_add_test (tc, rest_for_one_restarts_the_child_that_died_and_those_started_after_it);

    tc = tu_tcase (s, "limits", 60);
    tcase_add_test (tc, past_the_intensity_the_supervisor_gives_up_and_close_returns_every_death);
    tcase_add_test (tc, a_run_in_actor_failure_and_a_cancelled_daemon_are_not_restarted);
    tcase_add_test (tc, a_restart_storm_leaves_no_zombie_and_no_orphan);
    tcase_add_test (tc, a_stopped_child_is_detected_killed_and_restarted_within_the_heartbeat_timeout);

    tc = tu_tcase (s, "wait", 30);
    tcase_add_test (tc, without_a_strategy_tr_nursery_wait_returns_when_a_daemon_child_dies);
    tcase_add_test (tc, bad_supervision_arguments_are_refused);
    return s;
}

int
main (void)
{
    return tu_run_suite (s_suite (), CK_FORK);
}
