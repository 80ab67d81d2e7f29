/*  =========================================================================
    test_nursery.c - scenario: nurseries own, wait for, cancel and reap
    their children

    The forked test process is the root actor; its nurseries start
    tests/worker children. Closing a nursery waits for run_in_actor
    results, one failure cancels the rest (rule 6), a cancelled nursery
    reaps everything within the grace period, and tr_run closes what the
    root left open. The root records what it sees; the test asserts once
    tr_run returned.
    =========================================================================
*/
#include "testutil.h"
#include <stdbool.h>

//  --------------------------------------------------------------------------
//  Helpers

//  run_in_actor with a packed argument list.
static int
s_run_in (tr_nursery_t *n, const char *name, const char *fn, tr_args_t *args, tr_portal_t **p)
{
    int rc = tr_nursery_run_in_actor (n, name, fn, args, p);
    tr_args_destroy (&args);
    return rc;
}

//  --------------------------------------------------------------------------
//  run_in_actor results

#define ADDERS 4

typedef struct {
    int start_rc [ADDERS], result_rc [ADDERS];
    int64_t sum [ADDERS];
    int pid [ADDERS];
    int close_rc;
    bool errors_null;
    int children_after;
} s_adders_t;

static int
s_adders_root (tr_actor_t *self, void *arg)
{
    s_adders_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p [ADDERS] = { NULL };
    for (int i = 0; i < ADDERS; i++)
        obs->start_rc [i] = s_run_in (n, "adder", "add", tr_pack ("[ii]", i, 100 * i), &p [i]);
    for (int i = 0; i < ADDERS; i++)
        if (obs->start_rc [i] == 0) {
            obs->pid [i] = tr_portal_pid (p [i]);
            const msgpack_object *v = NULL;
            obs->result_rc [i] = tr_portal_result (p [i], &v);
            if (v)
                tr_unpack (v, "I", &obs->sum [i]);
        }
    tr_error_t *errors = (tr_error_t *) &errors;
    obs->close_rc = tr_nursery_close (&n, &errors);
    obs->errors_null = errors == NULL;
    tr_error_destroy (&errors);
    obs->children_after = tu_children_now ();
    return 0;
}

START_TEST (run_in_actor_children_each_return_their_result_and_are_reaped_on_close)
{
    tu_subreaper ();
    s_adders_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_adders_root, &obs);
    ck_assert_int_eq (rc, 0);
    for (int i = 0; i < ADDERS; i++) {
        ck_assert_tr_ok (obs.start_rc [i]);
        ck_assert_tr_ok (obs.result_rc [i]);
        ck_assert_int_eq (obs.sum [i], 101 * i);
        for (int j = 0; j < i; j++)
            ck_assert_int_ne (obs.pid [i], obs.pid [j]);
    }
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_msg (obs.errors_null, "a clean close gave an error list");
    ck_assert_int_eq (obs.children_after, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  One fails, the others are cancelled (rule 6)

#define SLEEPERS 3

typedef struct {
    int start_rc [SLEEPERS + 1];
    int close_rc;
    long long close_ms;
    size_t nerrors;
    tu_err_t first;                 //  the first error of the close
    int children_after;
} s_one_fails_t;

static int
s_one_fails_root (tr_actor_t *self, void *arg)
{
    s_one_fails_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p;
    //  The failing child comes last and the close starts before it can
    //  have answered: the close is waiting for a sleeper's result when
    //  the failure comes, and must not wait on.
    for (int i = 0; i < SLEEPERS; i++)
        obs->start_rc [i] = s_run_in (n, "sleeper", "sleep", tr_pack ("[i]", 20000), &p);
    obs->start_rc [SLEEPERS] = s_run_in (n, "failer", "fail", tr_pack ("[i]", -7), &p);
    long long t0 = tu_now_ms ();
    obs->close_rc = tu_nursery_close (&n, &obs->nerrors, &obs->first);
    obs->close_ms = tu_now_ms () - t0;
    obs->children_after = tu_children_now ();
    return 0;
}

START_TEST (a_failing_child_cancels_its_sleeping_siblings_and_close_returns_its_error)
{
    tu_subreaper ();
    s_one_fails_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_one_fails_root, &obs);
    ck_assert_int_eq (rc, 0);
    for (int i = 0; i <= SLEEPERS; i++)
        ck_assert_tr_ok (obs.start_rc [i]);
    ck_assert_tr_rc (obs.close_rc, TR_EREMOTE);
    //  The sleepers sleep 20 s: they were cancelled, not waited for.
    ck_assert_msg (obs.close_ms < tu_ms (2000), "close took %lld ms", obs.close_ms);
    ck_assert_int_eq (obs.nerrors, 1);
    ck_assert_tr_rc (obs.first.code, TR_EREMOTE);
    ck_assert_str_eq (obs.first.type, "ValueError");
    ck_assert_str_eq (obs.first.message, "n must be > 0, got -7");
    ck_assert_int_eq (obs.children_after, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  tr_nursery_cancel, then close

typedef struct {
    tr_portal_t *p;
    int rc;
} s_busy_t;

//  Keeps a child busy with a long call of its own.
static int
s_busy (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_busy_t *self = arg;
    self->rc = tu_call (self->p, "sleep", tr_pack ("[i]", 20000), NULL);
    return self->rc;
}

typedef struct {
    bool hard;
    int start_rc [4];
    bool sleeping;
    s_busy_t busy;
    int cancel_rc, close_rc, join_rc, after_cancel_rc;
    bool errors_null;
    long long close_ms;
    int children_after;
} s_cancelled_t;

static int
s_cancelled_root (tr_actor_t *self, void *arg)
{
    s_cancelled_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *idle, *p;
    obs->start_rc [0] = tr_nursery_start_actor (n, "idle", NULL, &idle);
    obs->start_rc [1] = tr_nursery_start_actor (n, "busy", NULL, &obs->busy.p);
    obs->start_rc [2] = s_run_in (n, "sleeper", "sleep", tr_pack ("[i]", 20000), &p);
    obs->start_rc [3] = s_run_in (n, "blocker", "thread_sleep", tr_pack ("[i]", 300), &p);
    tr_task_t *task = NULL;
    if (obs->start_rc [1] == 0 && tr_task_spawn (self, s_busy, &obs->busy, &task) == 0)
        obs->sleeping = tu_wait_sleeping (ctx, obs->busy.p, 1, 5000);
    obs->cancel_rc = tr_nursery_cancel (n, obs->hard);
    //  A cancelled nursery takes no more children.
    obs->after_cancel_rc = tr_nursery_start_actor (n, "late", NULL, &p);
    long long t0 = tu_now_ms ();
    if (task)
        obs->join_rc = tr_task_join (&task, NULL);
    tr_error_t *errors = (tr_error_t *) &errors;
    obs->close_rc = tr_nursery_close (&n, &errors);
    obs->close_ms = tu_now_ms () - t0;
    obs->errors_null = errors == NULL;
    tr_error_destroy (&errors);
    obs->children_after = tu_children_now ();
    return 0;
}

static void
s_check_cancelled (s_cancelled_t *obs)
{
    for (int i = 0; i < 4; i++)
        ck_assert_tr_ok (obs->start_rc [i]);
    ck_assert_msg (obs->sleeping, "the busy child never reported its call");
    ck_assert_tr_ok (obs->cancel_rc);
    ck_assert_tr_rc (obs->after_cancel_rc, TR_ECLOSED);
    ck_assert_tr_ok (obs->join_rc);
    //  The nursery was cancelled on purpose: that is no child's failure.
    ck_assert_tr_ok (obs->close_rc);
    ck_assert_msg (obs->errors_null, "a cancelled close reported errors");
    ck_assert_int_eq (obs->children_after, 0);
}

START_TEST (a_cancelled_nursery_closes_with_every_child_reaped_within_the_grace_period)
{
    tu_subreaper ();
    s_cancelled_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_cancelled_root, &obs);
    ck_assert_int_eq (rc, 0);
    s_check_cancelled (&obs);
    //  Every child acked: no SIGTERM after the 3 s grace was needed.
    ck_assert_msg (obs.close_ms < tu_ms (2500), "close took %lld ms", obs.close_ms);
    ck_assert_tr_rc (obs.busy.rc, TR_ECANCELED);
    tu_assert_no_procs_left (2000);
}
END_TEST

START_TEST (a_hard_cancelled_nursery_kills_and_reaps_every_child_at_once)
{
    tu_subreaper ();
    s_cancelled_t obs;
    memset (&obs, 0, sizeof obs);
    obs.hard = true;
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_cancelled_root, &obs);
    ck_assert_int_eq (rc, 0);
    s_check_cancelled (&obs);
    ck_assert_msg (obs.close_ms < tu_ms (1000), "close took %lld ms", obs.close_ms);
    //  The busy call died with its actor.
    ck_assert_msg (obs.busy.rc == TR_ECRASHED || obs.busy.rc == TR_ECLOSED,
                   "the busy call returned %s", tr_errname (obs.busy.rc));
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Closing from a task that is cancelled

typedef struct {
    tr_nursery_t *n;
    tr_portal_t *p;
    int start_rc, close_rc;
    bool closing;
} s_closer_t;

static int
s_closer (tr_ctx_t *ctx, void *arg)
{
    s_closer_t *self = arg;
    if (tr_nursery_open (tr_ctx_actor (ctx), &self->n))
        return 1;
    tr_args_t *args = tr_pack ("[i]", 20000);
    self->start_rc = tr_nursery_run_in_actor (self->n, "sleeper", "sleep", args, &self->p);
    tr_args_destroy (&args);
    self->closing = true;
    self->close_rc = tr_nursery_close (&self->n, NULL);
    return self->close_rc;
}

typedef struct {
    s_closer_t closer;
    bool in_close;
    int join_rc, task_rc;
    long long cancel_ms;
    bool nursery_null;
    int children_after;
} s_cancel_close_t;

static int
s_cancel_close_root (tr_actor_t *self, void *arg)
{
    s_cancel_close_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_task_t *task;
    if (tr_task_spawn (self, s_closer, &obs->closer, &task))
        return 1;
    long long deadline = tu_now_ms () + tu_ms (5000);
    while (!obs->closer.closing && tu_now_ms () < deadline)
        tr_sleep (ctx, 5);
    obs->in_close = obs->closer.closing;
    long long t0 = tu_now_ms ();
    tr_task_cancel (task);
    obs->join_rc = tr_task_join (&task, &obs->task_rc);
    obs->cancel_ms = tu_now_ms () - t0;
    obs->nursery_null = obs->closer.n == NULL;
    obs->children_after = tu_children_now ();
    return 0;
}

START_TEST (a_close_whose_task_is_cancelled_cancels_the_children_and_still_reaps_them)
{
    tu_subreaper ();
    s_cancel_close_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_cancel_close_root, &obs);
    ck_assert_int_eq (rc, 0);
    ck_assert_msg (obs.in_close, "the task never reached its close");
    ck_assert_tr_ok (obs.closer.start_rc);
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_tr_rc (obs.task_rc, TR_ECANCELED);
    ck_assert_msg (obs.nursery_null, "the close left the nursery");
    ck_assert_msg (obs.cancel_ms < tu_ms (2500), "the cancelled close took %lld ms", obs.cancel_ms);
    ck_assert_int_eq (obs.children_after, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Empty nurseries, and what tr_run closes

typedef struct {
    int open_rc, close_rc;
    bool null_after;
    long long close_ms;
} s_empty_t;

static int
s_empty_root (tr_actor_t *self, void *arg)
{
    s_empty_t *obs = arg;
    tr_nursery_t *n = NULL;
    obs->open_rc = tr_nursery_open (self, &n);
    long long t0 = tu_now_ms ();
    tr_error_t *errors = (tr_error_t *) &errors;
    obs->close_rc = tr_nursery_close (&n, &errors);
    obs->close_ms = tu_now_ms () - t0;
    obs->null_after = n == NULL && errors == NULL;
    return 0;
}

START_TEST (closing_an_empty_nursery_returns_at_once)
{
    tu_subreaper ();
    s_empty_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_empty_root, &obs);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_msg (obs.null_after, "close did not clear the nursery and the errors");
    ck_assert_msg (obs.close_ms < tu_ms (50), "close took %lld ms", obs.close_ms);
    tu_assert_no_procs_left (2000);
}
END_TEST

typedef struct {
    int start_rc [2];
    int pid [2];
    int value;
} s_left_open_t;

static int
s_left_open_root (tr_actor_t *self, void *arg)
{
    s_left_open_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p [2];
    obs->start_rc [0] = tr_nursery_start_actor (n, "forgotten", NULL, &p [0]);
    obs->start_rc [1] = s_run_in (n, "sleeper", "sleep", tr_pack ("[i]", 20000), &p [1]);
    for (int i = 0; i < 2; i++)
        obs->pid [i] = obs->start_rc [i] == 0? tr_portal_pid (p [i]): 0;
    //  Returns without closing n.
    return obs->value;
}

START_TEST (a_nursery_the_root_left_open_is_closed_by_tr_run)
{
    tu_subreaper ();
    s_left_open_t obs = { .value = 5 };
    tr_config_t config = tu_config ();
    long long t0 = tu_now_ms ();
    int rc = tr_run (&config, 0, NULL, s_left_open_root, &obs);
    long long run_ms = tu_now_ms () - t0;
    ck_assert_int_eq (rc, 5);
    ck_assert_tr_ok (obs.start_rc [0]);
    ck_assert_tr_ok (obs.start_rc [1]);
    //  tr_run returned only after reaping them: they are gone already.
    ck_assert_int_eq (tu_children_now (), 0);
    for (int i = 0; i < 2; i++) {
        char path [64];
        snprintf (path, sizeof path, "/proc/%d", obs.pid [i]);
        ck_assert_msg (access (path, F_OK) != 0, "child %d still exists", obs.pid [i]);
    }
    ck_assert_msg (run_ms < tu_ms (5000), "tr_run took %lld ms", run_ms);
    tu_assert_no_procs_left (2000);
}
END_TEST

static int
s_value_root (tr_actor_t *self, void *arg)
{
    (void) self;
    return *(int *) arg;
}

START_TEST (tr_run_returns_what_root_main_returned)
{
    tu_subreaper ();
    tr_config_t config = tu_config ();
    int values [] = { 0, 1, 42, 99 };
    for (size_t i = 0; i < sizeof values / sizeof values [0]; i++)
        ck_assert_int_eq (tr_run (&config, 0, NULL, s_value_root, &values [i]), values [i]);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------

static Suite *
s_suite (void)
{
    Suite *s = suite_create ("nursery");
    TCase *tc = tu_tcase (s, "close", 30);
    tcase_add_test (tc, run_in_actor_children_each_return_their_result_and_are_reaped_on_close);
    tcase_add_test (tc, a_failing_child_cancels_its_sleeping_siblings_and_close_returns_its_error);
    tcase_add_test (tc, closing_an_empty_nursery_returns_at_once);

    tc = tu_tcase (s, "cancel", 30);
    tcase_add_test (tc, a_cancelled_nursery_closes_with_every_child_reaped_within_the_grace_period);
    tcase_add_test (tc, a_hard_cancelled_nursery_kills_and_reaps_every_child_at_once);
    tcase_add_test (tc, a_close_whose_task_is_cancelled_cancels_the_children_and_still_reaps_them);

    tc = tu_tcase (s, "tr_run", 30);
    tcase_add_test (tc, a_nursery_the_root_left_open_is_closed_by_tr_run);
    tcase_add_test (tc, tr_run_returns_what_root_main_returned);
    return s;
}

int
main (void)
{
    return tu_run_suite (s_suite (), CK_FORK);
}
