/*  =========================================================================
    test_rule4_nursery_exit.c - a nursery's exit is an event others wait on

    Rule 4: code can wait on a nursery's exit, so that nothing is closed
    before the peers have terminated. tr_nursery_close is that exit: it
    returns only once every child is reaped and its final status is
    collected. Another task waiting for the close (joining the task that
    closes) checks /proc at the moment it is woken: no child, running or
    zombie, may be left, and the close's errors must already say how each
    child ended.
    =========================================================================
*/
#include "testutil.h"

//  --------------------------------------------------------------------------
//  A task waits for the close; at that moment every child is gone

#define IDLE    3
#define ADDERS  3

typedef struct {
    int start_rc [IDLE + ADDERS];
    int pid [IDLE + ADDERS];
    int close_rc;
    size_t close_errors;
    bool closing;                   //  the close has begun
    int children_in_close;          //  our children when the close began
    int children_at_return;         //  seen by the closer itself
} s_closer_t;

static int
s_closer (tr_ctx_t *ctx, void *arg)
{
    s_closer_t *self = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (tr_ctx_actor (ctx), &n))
        return 1;
    tr_portal_t *p;
    for (int i = 0; i < IDLE; i++) {
        self->start_rc [i] = tr_nursery_start_actor (n, "idle", NULL, &p);
        self->pid [i] = self->start_rc [i] == 0? tr_portal_pid (p): 0;
    }
    for (int i = IDLE; i < IDLE + ADDERS; i++) {
        tr_args_t *args = tr_pack ("[ii]", i, i);
        self->start_rc [i] = tr_nursery_run_in_actor (n, "adder", "add", args, &p);
        tr_args_destroy (&args);
        self->pid [i] = self->start_rc [i] == 0? tr_portal_pid (p): 0;
    }
    self->children_in_close = tu_children_now ();
    self->closing = true;
    self->close_rc = tu_nursery_close (&n, &self->close_errors, NULL);
    self->children_at_return = tu_children_now ();
    return 0;
}

typedef struct {
    s_closer_t closer;
    int join_rc;
    int children_when_woken;        //  seen by the task that waited
    int left [IDLE + ADDERS];       //  pids still in /proc then
} s_waiter_t;

static int
s_waiter_root (tr_actor_t *self, void *arg)
{
    s_waiter_t *obs = arg;
    tr_task_t *task;
    if (tr_task_spawn (self, s_closer, &obs->closer, &task))
        return 1;
    //  The nursery's exit is the closing task's end: wait for it.
    obs->join_rc = tr_task_join (&task, NULL);
    obs->children_when_woken = tu_children_now ();
    for (int i = 0; i < IDLE + ADDERS; i++) {
        char path [64];
        snprintf (path, sizeof path, "/proc/%d", obs->closer.pid [i]);
        obs->left [i] = obs->closer.pid [i] > 0 && access (path, F_OK) == 0? obs->closer.pid [i]: 0;
    }
    return 0;
}

START_TEST (a_task_waiting_for_a_close_finds_every_child_reaped_when_it_is_woken)
{
    tu_subreaper ();
    s_waiter_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_waiter_root, &obs), 0);
    for (int i = 0; i < IDLE + ADDERS; i++)
        ck_assert_tr_ok (obs.closer.start_rc [i]);
    ck_assert_msg (obs.closer.closing, "the close never began");
    //  They were there when the close began (the run_in_actor ones may
    //  have been let go already) ...
    ck_assert_int_ge (obs.closer.children_in_close, IDLE);
    ck_assert_tr_ok (obs.closer.close_rc);
    ck_assert_int_eq (obs.closer.close_errors, 0);
    //  ... and none is, running or zombie, once it has returned.
    ck_assert_int_eq (obs.closer.children_at_return, 0);
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_int_eq (obs.children_when_woken, 0);
    for (int i = 0; i < IDLE + ADDERS; i++)
        ck_assert_msg (obs.left [i] == 0, "child %d was still in /proc", obs.left [i]);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  How each child ended is known when the close returns

typedef struct {
    int start_rc [3];
    char uid [3][256];
    int close_rc;
    size_t count;
    tu_err_t error [3];
    int children_at_return;
} s_status_t;

static int
s_status_root (tr_actor_t *self, void *arg)
{
    s_status_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    //  One exits with a status, one is killed by a signal, one stays up
    //  until the close asks it to go.
    tr_portal_t *p;
    tr_args_t *args = tr_pack ("[s]", "exit");
    obs->start_rc [0] = tr_nursery_run_in_actor (n, "exiter", "crash", args, &p);
    tr_args_destroy (&args);
    if (obs->start_rc [0] == 0)
        snprintf (obs->uid [0], sizeof obs->uid [0], "%s", tr_portal_uid (p));
    args = tr_pack ("[s]", "abort");
    obs->start_rc [1] = tr_nursery_run_in_actor (n, "aborter", "crash", args, &p);
    tr_args_destroy (&args);
    if (obs->start_rc [1] == 0)
        snprintf (obs->uid [1], sizeof obs->uid [1], "%s", tr_portal_uid (p));
    obs->start_rc [2] = tr_nursery_start_actor (n, "idle", NULL, &p);
    if (obs->start_rc [2] == 0)
        snprintf (obs->uid [2], sizeof obs->uid [2], "%s", tr_portal_uid (p));
    tr_error_t *errors = NULL;
    obs->close_rc = tr_nursery_close (&n, &errors);
    obs->children_at_return = tu_children_now ();
    size_t i = 0;
    for (const tr_error_t *e = errors; e; e = tr_error_next (e), i++) {
        obs->count++;
        if (i < 3)
            tu_err_copy (&obs->error [i], e);
    }
    tr_error_destroy (&errors);
    return 0;
}

START_TEST (a_close_returns_each_child_s_exit_status_or_signal_once_it_is_reaped)
{
    tu_subreaper ();
    s_status_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_status_root, &obs), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_tr_ok (obs.start_rc [i]);
    ck_assert_int_eq (obs.children_at_return, 0);
    ck_assert_tr_rc (obs.close_rc, TR_ECRASHED);
    //  The two that died, each with how; the idle one left cleanly.
    ck_assert_int_eq (obs.count, 2);
    bool exited = false, aborted = false;
    for (int i = 0; i < 2; i++) {
        tu_err_t *e = &obs.error [i];
        ck_assert_tr_rc (e->code, TR_ECRASHED);
        if (strcmp (e->origin, obs.uid [0]) == 0) {
            ck_assert_int_eq (e->status, 3);
            ck_assert_int_eq (e->signal, 0);
            exited = true;
        }
        else {
            ck_assert_str_eq (e->origin, obs.uid [1]);
            ck_assert_int_eq (e->signal, SIGABRT);
            aborted = true;
        }
    }
    ck_assert (exited && aborted);
    tu_assert_no_procs_left (0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("rule4_nursery_exit");
    TCase *tc = tu_tcase (suite, "close", 30);
    tcase_add_test (tc, a_task_waiting_for_a_close_finds_every_child_reaped_when_it_is_woken);
    tcase_add_test (tc, a_close_returns_each_child_s_exit_status_or_signal_once_it_is_reaped);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
