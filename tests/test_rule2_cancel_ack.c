/*  =========================================================================
    test_rule2_cancel_ack.c - a remote cancel is acknowledged

    Rule 2: tr_portal_cancel_actor sends a cancel and waits, up to its
    timeout, for the peer's ack; the channel is then marked cancel_called,
    so the peer's exit that follows is no failure. The root's child runs a
    call that the cancel must end; a child that cannot answer ("stubborn",
    spinning with no checkpoint) shows the wait is bounded; a child that is
    already dead gives its death, not a wait.
    =========================================================================
*/
#include "testutil.h"

//  A task of the root that runs fn([arg..., 20000]) in the child.
typedef struct {
    tr_portal_t *p;
    const char *fifo;               //  for stubborn; NULL for sleep
    int rc;
    tu_err_t error;
} s_caller_t;

static int
s_caller (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_caller_t *self = arg;
    self->rc = self->fifo
             ? tu_call (self->p, "stubborn", tr_pack ("[si]", self->fifo, 20000), NULL)
             : tu_call (self->p, "sleep", tr_pack ("[i]", 20000), NULL);
    tu_err_copy (&self->error, tr_portal_error (self->p));
    return 0;
}

//  --------------------------------------------------------------------------
//  The ack comes, and the exit that follows is no failure. The child
//  acks and exits at once, so its exit and its ack race to the root:
//  several rounds, each with a child of its own, while burners keep the
//  root's cores busy.

#define ROUNDS 10

typedef struct {
    tu_burners_t burners;
    int start_rc;
    s_caller_t caller;
    bool sleeping, gone;
    int cancel_rc, join_rc, after_rc, close_rc;
    size_t close_errors;
    long long cancel_ms;
    tu_err_t after_error, close_error;
} s_acked_t;

static int
s_acked_root (tr_actor_t *self, void *arg)
{
    s_acked_t *rounds = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    for (int round = 0; round < ROUNDS; round++) {
        s_acked_t *obs = &rounds [round];
        tr_nursery_t *n;
        if (tr_nursery_open (self, &n))
            return 1;
        tr_portal_t *p;
        tr_task_t *task = NULL;
        obs->start_rc = tr_nursery_start_actor (n, "kid", NULL, &p);
        if (obs->start_rc == 0) {
            obs->caller.p = p;
            if (tr_task_spawn (self, s_caller, &obs->caller, &task) == 0)
                obs->sleeping = tu_wait_sleeping (ctx, p, 1, 5000);
            tu_burners_start (&obs->burners, self);
            long long t0 = tu_now_ms ();
            obs->cancel_rc = tr_portal_cancel_actor (p, tu_ms (5000));
            obs->cancel_ms = tu_now_ms () - t0;
            tu_burners_stop (&obs->burners);
            if (task)
                obs->join_rc = tr_task_join (&task, NULL);
            obs->gone = tu_process_gone (ctx, tr_portal_pid (p), 5000);
            obs->after_rc = tu_call (p, "add", tr_pack ("[ii]", 1, 2), NULL);
            tu_err_copy (&obs->after_error, tr_portal_error (p));
        }
        obs->close_rc = tu_nursery_close (&n, &obs->close_errors, &obs->close_error);
    }
    return 0;
}

START_TEST (a_cancelled_actor_acknowledges_and_its_exit_is_no_failure)
{
    tu_subreaper ();
    s_acked_t rounds [ROUNDS];
    memset (rounds, 0, sizeof rounds);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_acked_root, rounds), 0);
    for (int round = 0; round < ROUNDS; round++) {
        s_acked_t *obs = &rounds [round];
        ck_assert_tr_ok (obs->start_rc);
        ck_assert_msg (obs->sleeping, "round %d: the child never reported its call sleeping", round);
        //  The ack came (0, neither a timeout nor a closed channel),
        //  well before the 5 s timeout though the burners load the cores.
        ck_assert_msg (obs->cancel_rc == 0, "round %d: cancel_actor returned %s", round,
                       tr_errname (obs->cancel_rc));
        ck_assert_msg (obs->cancel_ms < tu_ms (2000), "round %d: the ack took %lld ms",
                       round, obs->cancel_ms);
        //  The call that was running there was cancelled, not cut off.
        ck_assert_tr_ok (obs->join_rc);
        ck_assert_tr_rc (obs->caller.rc, TR_ECANCELED);
        ck_assert_tr_rc (obs->caller.error.code, TR_ECANCELED);
        ck_assert_msg (obs->gone, "round %d: the cancelled child did not exit", round);
        ck_assert_tr_rc (obs->after_rc, TR_ECLOSED);
        ck_assert_tr_rc (obs->after_error.code, TR_ECLOSED);
        //  We asked it to go: its exit is not reported.
        ck_assert_msg (obs->close_rc == 0 && obs->close_errors == 0,
                       "round %d: the close returned %s with %zu errors (%s)", round,
                       tr_errname (obs->close_rc), obs->close_errors, obs->close_error.message);
    }
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  No ack: the wait ends at the timeout

typedef struct {
    tu_fifo_t fifo;
    s_caller_t caller;
    bool spinning, alive_after;
    int cancel_rc, join_rc;
    long long cancel_ms;
} s_unacked_t;

static int
s_unacked_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_unacked_t *obs = arg;
    obs->caller.p = p;
    obs->caller.fifo = obs->fifo.path;
    tr_task_t *task;
    if (tr_task_spawn (tr_ctx_actor (ctx), s_caller, &obs->caller, &task))
        return 1;
    obs->spinning = tu_fifo_wait (ctx, &obs->fifo, 5000);
    long long t0 = tu_now_ms ();
    obs->cancel_rc = tr_portal_cancel_actor (p, 300);
    obs->cancel_ms = tu_now_ms () - t0;
    //  Not reaped: it still exists, the cancel did nothing harder.
    char path [64];
    snprintf (path, sizeof path, "/proc/%d", tr_portal_pid (p));
    obs->alive_after = access (path, F_OK) == 0;
    //  The frame's close escalates (rule 8) and ends the call.
    tr_task_cancel (task);
    obs->join_rc = tr_task_join (&task, NULL);
    return 0;
}

START_TEST (a_cancel_that_gets_no_ack_gives_up_at_its_timeout)
{
    tu_subreaper ();
    s_unacked_t obs;
    memset (&obs, 0, sizeof obs);
    ck_assert (tu_fifo_open (&obs.fifo));
    tu_frame_t frame = { .body = s_unacked_body, .obs = &obs };
    tr_config_t config = tu_config ();
    config.grace_ms = 300;
    config.term_ms = 300;
    config.cancel_ack_ms = 300;
    tu_capture_t capture;
    char log [16384];
    tu_capture_start (&capture);
    int rc = tr_run (&config, 0, NULL, tu_frame_root, &frame);
    tu_capture_end (&capture, log, sizeof log);
    tu_fifo_close (&obs.fifo);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (frame.start_rc);
    ck_assert_msg (obs.spinning, "the child never started to spin");
    ck_assert_tr_rc (obs.cancel_rc, TR_ETIMEDOUT);
    //  It ended at its timeout: not before, and long before the 20 s the
    //  child would spin.
    ck_assert_msg (obs.cancel_ms >= 290 && obs.cancel_ms < tu_ms (3000),
                   "a 300 ms wait for the ack took %lld ms", obs.cancel_ms);
    ck_assert_msg (obs.alive_after, "the child was gone when the wait ended");
    ck_assert_tr_ok (obs.join_rc);
    //  It never exited by itself: the close had to kill it.
    ck_assert_msg (strstr (log, "TR-KILL"), "the stubborn child was not killed:\n%s", log);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  Already dead: the death, at once

typedef struct {
    bool gone;
    int cancel_rc;
    long long cancel_ms;
    tu_err_t error;
} s_dead_t;

static int
s_dead_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_dead_t *obs = arg;
    kill (tr_portal_pid (p), SIGKILL);
    obs->gone = tu_process_gone (ctx, tr_portal_pid (p), 5000);
    long long t0 = tu_now_ms ();
    obs->cancel_rc = tr_portal_cancel_actor (p, tu_ms (5000));
    obs->cancel_ms = tu_now_ms () - t0;
    tu_err_copy (&obs->error, tr_portal_error (p));
    return 0;
}

START_TEST (cancelling_an_actor_that_already_died_returns_its_death_at_once)
{
    tu_subreaper ();
    s_dead_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_dead_body, .obs = &obs };
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, tu_frame_root, &frame), 0);
    ck_assert_tr_ok (frame.start_rc);
    ck_assert_msg (obs.gone, "the killed child was not reaped");
    ck_assert_tr_rc (obs.cancel_rc, TR_ECRASHED);
    ck_assert_tr_rc (obs.error.code, TR_ECRASHED);
    ck_assert_int_eq (obs.error.signal, SIGKILL);
    //  No wait for an ack that cannot come (the timeout is 5 s).
    ck_assert_msg (obs.cancel_ms < tu_ms (1000), "the cancel waited %lld ms", obs.cancel_ms);
    //  Nobody asked it to go before it died: the close reports it.
    ck_assert_tr_rc (frame.close_rc, TR_ECRASHED);
    ck_assert_int_eq (frame.close_error.signal, SIGKILL);
    tu_assert_no_procs_left (0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("rule2_cancel_ack");
    TCase *tc = tu_tcase (suite, "cancel_actor", 30);
    tcase_add_test (tc, a_cancelled_actor_acknowledges_and_its_exit_is_no_failure);
    tcase_add_test (tc, a_cancel_that_gets_no_ack_gives_up_at_its_timeout);
    tcase_add_test (tc, cancelling_an_actor_that_already_died_returns_its_death_at_once);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
