/*  =========================================================================
    test_cluster.c - scenario: a cluster, many children started at once

    tr_nursery_start_actors spawns every process before it awaits any
    hello, so the children start in parallel. All of them answer and are
    reaped on close; the start is faster than one child after another;
    and when one child fails to start, or the nursery is cancelled or
    closed while the hellos are awaited, none is left: every other child
    of the call is killed and reaped before it returns, and its portals
    are all NULL. The forked test process is the root actor; it records
    what it sees and the test asserts once tr_run returned.
    =========================================================================
*/
#include "testutil.h"
#include <errno.h>

#define MEMBERS 32
#define TU_STR_(x) #x
#define TU_STR(x) TU_STR_ (x)

//  Fill portals with a value no call leaves there, to see them cleared.
static void
s_poison (tr_portal_t **portals, size_t count)
{
    for (size_t i = 0; i < count; i++)
        portals [i] = (tr_portal_t *) &portals [i];
}

static bool
s_all_null (tr_portal_t **portals, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (portals [i])
            return false;
    return true;
}

//  --------------------------------------------------------------------------
//  32 children at once

typedef struct {
    int start_rc, close_rc;
    bool distinct;                  //  32 different portals and pids
    int named;                      //  uids "member-i@..." in order
    int answered;                   //  "pid" calls that gave the portal's pid
    int children_before_close, children_after_close;
    size_t close_errors;
} s_all_t;

static int
s_all_root (tr_actor_t *self, void *arg)
{
    s_all_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p [MEMBERS];
    obs->start_rc = tr_nursery_start_actors (n, "member", MEMBERS, NULL, p);
    if (obs->start_rc == 0) {
        obs->distinct = true;
        for (int i = 0; i < MEMBERS; i++) {
            char prefix [32];
            snprintf (prefix, sizeof prefix, "member-%d@", i);
            if (p [i] && strncmp (tr_portal_uid (p [i]), prefix, strlen (prefix)) == 0)
                obs->named++;
            for (int j = 0; j < i; j++)
                if (p [i] == p [j] || tr_portal_pid (p [i]) == tr_portal_pid (p [j]))
                    obs->distinct = false;
        }
        for (int i = 0; i < MEMBERS; i++) {
            tr_value_t *v = NULL;
            int pid = 0;
            if (tu_call (p [i], "pid", NULL, &v) == 0
            &&  tr_unpack (tr_value_object (v), "i", &pid) == 0 && pid == tr_portal_pid (p [i]))
                obs->answered++;
            tr_value_destroy (&v);
        }
    }
    obs->children_before_close = tu_children_now ();
    obs->close_rc = tu_nursery_close (&n, &obs->close_errors, NULL);
    obs->children_after_close = tu_children_now ();
    return 0;
}

START_TEST (thirty_two_children_started_at_once_all_answer_a_call_and_are_reaped_on_close)
{
    tu_subreaper ();
    s_all_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_all_root, &obs), 0);
    ck_assert_tr_ok (obs.start_rc);
    ck_assert_msg (obs.distinct, "two children share a portal or a pid");
    ck_assert_int_eq (obs.named, MEMBERS);
    ck_assert_int_eq (obs.answered, MEMBERS);
    ck_assert_int_eq (obs.children_before_close, MEMBERS);
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_int_eq (obs.close_errors, 0);
    ck_assert_int_eq (obs.children_after_close, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  At once against one after another, in the same run
//
//  Starting a child is mostly CPU: exec and the dynamic loading of some
//  thirty libraries, about 8 ms of it per child here, as much as for a
//  raw libzmq program (bench_cluster). On an idle 2-core machine 32 at
//  once take half the time of 32 one after another, but on a loaded one
//  that gain shrinks to nothing: measured 0.5 idle, 0.85-0.97 at a load
//  of 5-6. So that the test measures what a cluster changes (the hellos
//  are awaited together, not one after another) and not how busy the
//  machine is, its children take HELLO_DELAY_MS more to start without
//  using the CPU (tests/worker's TU_HELLO_DELAY_MS). The plain figures
//  are bench_cluster's.

#define TIMING_ROUNDS 3
#define HELLO_DELAY_MS 25

typedef struct {
    int rc;                         //  the first failure, 0 if none
    long long sequential_ms [TIMING_ROUNDS];
    long long parallel_ms [TIMING_ROUNDS];
    int children_after;
} s_timing_t;

static int
s_compare_ll (const void *a, const void *b)
{
    long long x = *(const long long *) a, y = *(const long long *) b;
    return x < y? -1: x > y;
}

//  The median of the rounds (sorts them).
static long long
s_median (long long *values)
{
    qsort (values, TIMING_ROUNDS, sizeof *values, s_compare_ll);
    return values [TIMING_ROUNDS / 2];
}

//  Start MEMBERS children, at once or one by one, and close them; the
//  time of the start alone in *ms.
static int
s_time_start (tr_actor_t *self, bool at_once, long long *ms)
{
    static const char *const env [] = { "TU_HELLO_DELAY_MS=" TU_STR (HELLO_DELAY_MS), NULL };
    tr_spawn_opts_t opts = { .env = env };
    tr_nursery_t *n;
    int rc = tr_nursery_open (self, &n);
    if (rc)
        return rc;
    tr_portal_t *p [MEMBERS];
    long long t0 = tu_now_ms ();
    if (at_once)
        rc = tr_nursery_start_actors (n, "member", MEMBERS, &opts, p);
    else
        for (int i = 0; i < MEMBERS && rc == 0; i++)
            rc = tr_nursery_start_actor (n, "member", &opts, &p [i]);
    *ms = tu_now_ms () - t0;
    int close_rc = tr_nursery_close (&n, NULL);
    return rc? rc: close_rc;
}

static int
s_timing_root (tr_actor_t *self, void *arg)
{
    s_timing_t *obs = arg;
    //  Alternating, so that a change in the machine's load hits both.
    for (int r = 0; r < TIMING_ROUNDS && obs->rc == 0; r++) {
        obs->rc = s_time_start (self, false, &obs->sequential_ms [r]);
        if (obs->rc == 0)
            obs->rc = s_time_start (self, true, &obs->parallel_ms [r]);
    }
    obs->children_after = tu_children_now ();
    return 0;
}

START_TEST (starting_thirty_two_at_once_takes_well_under_the_time_of_one_after_another)
{
    tu_subreaper ();
    s_timing_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_timing_root, &obs), 0);
    ck_assert_tr_ok (obs.rc);
    ck_assert_int_eq (obs.children_after, 0);
    for (int r = 0; r < TIMING_ROUNDS; r++)
        fprintf (stderr, "cluster: round %d: at once %lld ms, one after another %lld ms\n",
                 r, obs.parallel_ms [r], obs.sequential_ms [r]);
    //  Medians: a burst of load from elsewhere in one round moves neither.
    long long sequential = s_median (obs.sequential_ms);
    long long parallel = s_median (obs.parallel_ms);
    //  One after another is at least MEMBERS * HELLO_DELAY_MS (800 ms) plus
    //  the CPU; at once, one delay plus the CPU: about 0.3 on a loaded
    //  machine, so 0.7 leaves room.
    ck_assert_msg (parallel < 0.7 * sequential,
                   "%d at once took %lld ms against %lld ms one after another "
                   "(medians of %d rounds)", MEMBERS, parallel, sequential, TIMING_ROUNDS);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A child that fails to start takes the others down

typedef struct {
    tr_spawn_opts_t opts;
    const char *const *env;
    size_t count;
    int hello_ms;                   //  0: the default
    int start_rc, close_rc;
    bool portals_null;
    tu_err_t error;                 //  tr_nursery_error after the call
    tu_err_t ctx_error;             //  tr_ctx_error after the call
    long long start_ms;
    int children_after_start;
    size_t close_errors;
} s_fails_t;

static int
s_fails_root (tr_actor_t *self, void *arg)
{
    s_fails_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p [MEMBERS];
    s_poison (p, obs->count);
    long long t0 = tu_now_ms ();
    obs->start_rc = tr_nursery_start_actors (n, "member", obs->count, &obs->opts, p);
    obs->start_ms = tu_now_ms () - t0;
    obs->portals_null = s_all_null (p, obs->count);
    obs->children_after_start = tu_children_now ();
    tu_err_copy (&obs->error, tr_nursery_error (n));
    tu_err_copy (&obs->ctx_error, tr_ctx_error (tr_actor_ctx (self)));
    obs->close_rc = tu_nursery_close (&n, &obs->close_errors, NULL);
    return 0;
}

static void
s_run_fails (s_fails_t *obs)
{
    tu_subreaper ();
    tr_config_t config = tu_config ();
    if (obs->hello_ms)
        config.hello_ms = obs->hello_ms;
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_fails_root, obs), 0);
    ck_assert_msg (obs->portals_null, "a failed cluster left a portal");
    //  Every child of the call is gone before the call returns.
    ck_assert_int_eq (obs->children_after_start, 0);
    ck_assert_msg (obs->error.set, "tr_nursery_error is NULL after a failed cluster");
    ck_assert_int_eq (obs->error.code, obs->start_rc);
    ck_assert_msg (obs->ctx_error.set, "tr_ctx_error is NULL after a failed cluster");
    ck_assert_str_eq (obs->ctx_error.message, obs->error.message);
    //  A failed start is not the nursery's business any more.
    ck_assert_tr_ok (obs->close_rc);
    ck_assert_int_eq (obs->close_errors, 0);
}

START_TEST (one_child_that_exits_before_its_hello_fails_the_cluster_and_no_child_is_left)
{
    static const char *const env [] = { "TU_EXIT_BEFORE_HELLO=member-5", NULL };
    s_fails_t obs;
    memset (&obs, 0, sizeof obs);
    obs.count = MEMBERS;
    obs.opts.env = env;
    s_run_fails (&obs);
    ck_assert_tr_rc (obs.start_rc, TR_ECRASHED);
    ck_assert_str_eq (obs.error.type, "Crashed");
    ck_assert_msg (strstr (obs.error.message, "member-5@"),
                   "message '%s' does not name the child that failed", obs.error.message);
    ck_assert_int_eq (obs.error.status, 7);
    //  Noticed at once, not at the hello deadline.
    ck_assert_msg (obs.start_ms < tu_ms (4000), "took %lld ms to notice", obs.start_ms);
    tu_assert_no_procs_left (2000);
}
END_TEST

START_TEST (a_child_that_never_says_hello_fails_the_cluster_at_the_hello_deadline)
{
    static const char *const env [] = { "TU_HANG_BEFORE_HELLO=member-2", NULL };
    s_fails_t obs;
    memset (&obs, 0, sizeof obs);
    obs.count = 8;
    obs.opts.env = env;
    obs.hello_ms = 500;
    s_run_fails (&obs);
    ck_assert_tr_rc (obs.start_rc, TR_ETIMEDOUT);
    ck_assert_str_eq (obs.error.type, "SpawnTimeout");
    ck_assert_msg (strstr (obs.error.message, "member-2@"),
                   "message '%s' does not name the silent child", obs.error.message);
    ck_assert_msg (obs.start_ms >= 480 && obs.start_ms < tu_ms (2500),
                   "the cluster gave up after %lld ms, hello_ms is 500", obs.start_ms);
    tu_assert_no_procs_left (2000);
}
END_TEST

START_TEST (a_worker_path_that_does_not_exist_fails_the_cluster_with_a_reason)
{
    s_fails_t obs;
    memset (&obs, 0, sizeof obs);
    obs.count = 4;
    obs.opts.worker_path = "/nonexistent/troupe-worker";
    s_run_fails (&obs);
    ck_assert_msg (obs.start_rc == TR_ESYS || obs.start_rc == TR_ECRASHED,
                   "start returned %s", tr_errname (obs.start_rc));
    ck_assert_msg (strstr (obs.error.message, "member-"),
                   "message '%s' does not name the child", obs.error.message);
    ck_assert_msg (strstr (obs.error.message, "/nonexistent/troupe-worker"),
                   "message '%s' does not name the path", obs.error.message);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Cancelled or closed while the hellos are awaited (rule 7)

#define WAITING 8

typedef enum { BY_CANCEL, BY_CLOSE, BY_TASK_CANCEL } s_how_t;

typedef struct {
    tr_nursery_t *n;
    bool closed_under;              //  n may be gone when the call returns
    int rc;
    bool portals_null;
    tu_err_t error;                 //  tr_ctx_error after it failed
} s_cluster_task_t;

static int
s_cluster_task (tr_ctx_t *ctx, void *arg)
{
    s_cluster_task_t *self = arg;
    //  Every child but member-3 says hello; member-3 never does, so the
    //  call is still waiting when the test interrupts it.
    static const char *const env [] = { "TU_HANG_BEFORE_HELLO=member-3", NULL };
    tr_spawn_opts_t opts = { .env = env };
    tr_portal_t *p [WAITING];
    s_poison (p, WAITING);
    self->rc = tr_nursery_start_actors (self->n, "member", WAITING, &opts, p);
    self->portals_null = s_all_null (p, WAITING);
    tu_err_copy (&self->error, tr_ctx_error (ctx));
    return 0;
}

typedef struct {
    s_how_t how;
    s_cluster_task_t task;
    bool saw_processes;
    int join_rc, close_rc;
    size_t close_errors;
    long long interrupted_ms;       //  from the interruption to the call's end
    int children_after_call;
    int children_after_close;
} s_interrupted_t;

static int
s_interrupted_root (tr_actor_t *self, void *arg)
{
    s_interrupted_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    obs->task.n = n;
    obs->task.closed_under = obs->how == BY_CLOSE;
    tr_task_t *task;
    if (tr_task_spawn (self, s_cluster_task, &obs->task, &task))
        return 1;
    //  The task runs once we park: wait until every process exists, so
    //  that the interruption lands while the call awaits the hellos.
    long long deadline = tu_now_ms () + tu_ms (5000);
    while (!(obs->saw_processes = tu_children_now () >= WAITING) && tu_now_ms () < deadline)
        tr_sleep (ctx, 5);
    long long t0 = tu_now_ms ();
    if (obs->how == BY_CANCEL)
        tr_nursery_cancel (n, false);
    else
    if (obs->how == BY_TASK_CANCEL)
        tr_task_cancel (task);
    else
        obs->close_rc = tu_nursery_close (&n, &obs->close_errors, NULL);
    obs->join_rc = tr_task_join (&task, NULL);
    obs->interrupted_ms = tu_now_ms () - t0;
    obs->children_after_call = tu_children_now ();
    if (obs->how != BY_CLOSE)
        obs->close_rc = tu_nursery_close (&n, &obs->close_errors, NULL);
    obs->children_after_close = tu_children_now ();
    return 0;
}

static void
s_run_interrupted (s_interrupted_t *obs)
{
    tu_subreaper ();
    tr_config_t config = tu_config ();
    config.hello_ms = 20000;
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_interrupted_root, obs), 0);
    ck_assert_msg (obs->saw_processes, "the cluster's processes never all existed");
    ck_assert_tr_ok (obs->join_rc);
    ck_assert_msg (obs->task.portals_null, "an interrupted cluster left a portal");
    ck_assert_msg (obs->task.error.set, "no tr_ctx_error after an interrupted cluster");
    ck_assert_int_eq (obs->task.error.code, obs->task.rc);
    //  Nothing waited for the 20 s hello deadline.
    ck_assert_msg (obs->interrupted_ms < tu_ms (2000), "the call ended %lld ms after",
                   obs->interrupted_ms);
    //  Killed and reaped by the time the call returned: no zombie.
    ck_assert_int_eq (obs->children_after_call, 0);
    ck_assert_tr_ok (obs->close_rc);
    ck_assert_int_eq (obs->close_errors, 0);
    ck_assert_int_eq (obs->children_after_close, 0);
    tu_assert_no_procs_left (0);
}

START_TEST (a_nursery_cancelled_while_a_cluster_awaits_its_hellos_kills_and_reaps_every_child)
{
    s_interrupted_t obs;
    memset (&obs, 0, sizeof obs);
    obs.how = BY_CANCEL;
    s_run_interrupted (&obs);
    ck_assert_tr_rc (obs.task.rc, TR_ECANCELED);
}
END_TEST

START_TEST (a_nursery_closed_while_a_cluster_awaits_its_hellos_kills_and_reaps_every_child)
{
    s_interrupted_t obs;
    memset (&obs, 0, sizeof obs);
    obs.how = BY_CLOSE;
    s_run_interrupted (&obs);
    ck_assert_tr_rc (obs.task.rc, TR_ECLOSED);
}
END_TEST

START_TEST (a_cluster_whose_task_is_cancelled_kills_and_reaps_every_child)
{
    s_interrupted_t obs;
    memset (&obs, 0, sizeof obs);
    obs.how = BY_TASK_CANCEL;
    s_run_interrupted (&obs);
    ck_assert_tr_rc (obs.task.rc, TR_ECANCELED);
}
END_TEST

//  --------------------------------------------------------------------------
//  Arguments

typedef struct {
    int rc [8];
    bool untouched;                 //  no portal written on a bad call
    int spawned;                    //  children seen after the bad calls
    int outside_task_rc;
} s_args_t;

static int
s_args_root (tr_actor_t *self, void *arg)
{
    s_args_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p [2];
    s_poison (p, 2);
    tr_portal_t *poison [2] = { p [0], p [1] };
    obs->rc [0] = tr_nursery_start_actors (NULL, "member", 2, NULL, p);
    obs->rc [1] = tr_nursery_start_actors (n, NULL, 2, NULL, p);
    obs->rc [2] = tr_nursery_start_actors (n, "", 2, NULL, p);
    obs->rc [3] = tr_nursery_start_actors (n, "a@b", 2, NULL, p);
    obs->rc [4] = tr_nursery_start_actors (n, "member", 0, NULL, p);
    obs->rc [5] = tr_nursery_start_actors (n, "member", 2, NULL, NULL);
    obs->untouched = p [0] == poison [0] && p [1] == poison [1];
    obs->spawned = tu_children_now ();
    //  A cancelled nursery takes no cluster; the array is cleared.
    tr_nursery_cancel (n, false);
    obs->rc [6] = tr_nursery_start_actors (n, "member", 2, NULL, p);
    obs->rc [7] = s_all_null (p, 2)? 0: -1;
    tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (bad_arguments_and_calls_outside_a_task_return_einval)
{
    tu_subreaper ();
    s_args_t obs;
    memset (&obs, 0, sizeof obs);
    //  Outside a task (no runtime runs yet). The nursery pointer is not
    //  NULL, and is never read: the call refuses before it touches it.
    tr_portal_t *p [2] = { NULL, NULL };
    obs.outside_task_rc = tr_nursery_start_actors ((tr_nursery_t *) &obs, "member", 2, NULL, p);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_args_root, &obs), 0);
    ck_assert_tr_rc (obs.outside_task_rc, TR_EINVAL);
    for (int i = 0; i < 6; i++)
        ck_assert_msg (obs.rc [i] == TR_EINVAL, "bad call %d returned %s", i,
                       tr_errname (obs.rc [i]));
    ck_assert_msg (obs.untouched, "a bad call wrote the portals");
    ck_assert_int_eq (obs.spawned, 0);
    ck_assert_tr_rc (obs.rc [6], TR_ECLOSED);
    ck_assert_msg (obs.rc [7] == 0, "a refused cluster left portals");
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------

int
main (void)
{
    Suite *suite = suite_create ("cluster");
    TCase *tc = tu_tcase (suite, "start", 60);
    tcase_add_test (tc, thirty_two_children_started_at_once_all_answer_a_call_and_are_reaped_on_close);
    tcase_add_test (tc, starting_thirty_two_at_once_takes_well_under_the_time_of_one_after_another);

    tc = tu_tcase (suite, "failure", 30);
    tcase_add_test (tc, one_child_that_exits_before_its_hello_fails_the_cluster_and_no_child_is_left);
    tcase_add_test (tc, a_child_that_never_says_hello_fails_the_cluster_at_the_hello_deadline);
    tcase_add_test (tc, a_worker_path_that_does_not_exist_fails_the_cluster_with_a_reason);

    tc = tu_tcase (suite, "interrupted", 30);
    tcase_add_test (tc, a_nursery_cancelled_while_a_cluster_awaits_its_hellos_kills_and_reaps_every_child);
    tcase_add_test (tc, a_nursery_closed_while_a_cluster_awaits_its_hellos_kills_and_reaps_every_child);
    tcase_add_test (tc, a_cluster_whose_task_is_cancelled_kills_and_reaps_every_child);

    tc = tu_tcase (suite, "arguments", 30);
    tcase_add_test (tc, bad_arguments_and_calls_outside_a_task_return_einval);
    return tu_run_suite (suite, CK_FORK);
}
