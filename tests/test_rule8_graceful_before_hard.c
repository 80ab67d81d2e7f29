/*  =========================================================================
    test_rule8_graceful_before_hard.c - ask first, then SIGTERM, then
    SIGKILL

    Rule 8: a nursery cancelled while a child still runs first asks the
    child to cancel (rule 2); only after the grace period does it send
    SIGTERM, after term_ms more SIGKILL, and then it reaps. The children
    here run tests/worker's "spin" (SIGTERM ends it) or "stubborn" (it
    ignores SIGTERM) from a task of the root: they never reach a
    checkpoint, so the cancel is never seen. The root's grace and term
    periods are short; the test captures stderr for the root's TR-GRACE
    and TR-KILL lines, times the close, and reads the signal that ended
    the child from the call that was running in it.
    =========================================================================
*/
#include "testutil.h"

#define GRACE_MS    300
#define TERM_MS     300

//  A task of the root that runs fn in the child until the child is gone.
typedef struct {
    tr_portal_t *p;
    const char *fn;
    const char *arg;                //  the FIFO's path
    int rc;
    tu_err_t error;
} s_runner_t;

static int
s_runner (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_runner_t *self = arg;
    tr_args_t *args = strcmp (self->fn, "sleep") == 0? tr_pack ("[i]", 20000)
                                                     : tr_pack ("[si]", self->arg, 20000);
    self->rc = tu_call (self->p, self->fn, args, NULL);
    tu_err_copy (&self->error, tr_portal_error (self->p));
    return 0;
}

typedef struct {
    const char *fn;                 //  spin, stubborn or sleep
    tu_fifo_t fifo;
    s_runner_t runner;
    int start_rc, join_rc, close_rc;
    bool busy;                      //  the child is in fn, cannot checkpoint
    size_t close_errors;
    char uid [256];
    int pid;
    long long close_ms;
    int children_after;
} s_escalate_t;

static int
s_escalate_root (tr_actor_t *self, void *arg)
{
    s_escalate_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p;
    tr_task_t *task = NULL;
    obs->start_rc = tr_nursery_start_actor (n, "kid", NULL, &p);
    if (obs->start_rc == 0) {
        snprintf (obs->uid, sizeof obs->uid, "%s", tr_portal_uid (p));
        obs->pid = tr_portal_pid (p);
        obs->runner = (s_runner_t) { .p = p, .fn = obs->fn, .arg = obs->fifo.path };
        if (tr_task_spawn (self, s_runner, &obs->runner, &task) == 0)
            obs->busy = strcmp (obs->fn, "sleep") == 0
                      ? tu_wait_sleeping (ctx, p, 1, 5000)
                      : tu_fifo_wait (ctx, &obs->fifo, 5000);
    }
    tr_nursery_cancel (n, false);
    long long t0 = tu_now_ms ();
    obs->close_rc = tu_nursery_close (&n, &obs->close_errors, NULL);
    obs->close_ms = tu_now_ms () - t0;
    //  The close returns once the child is reaped (rule 4).
    obs->children_after = tu_children_now ();
    if (task)
        obs->join_rc = tr_task_join (&task, NULL);
    return 0;
}

static char s_log [65536];

//  Run fn in a child under a nursery that is cancelled and closed; the
//  root's stderr goes to s_log.
static void
s_run (s_escalate_t *obs, const char *fn, int grace_ms, int term_ms)
{
    tu_subreaper ();
    memset (obs, 0, sizeof *obs);
    obs->fn = fn;
    ck_assert_msg (tu_fifo_open (&obs->fifo), "cannot make a FIFO at %s", obs->fifo.path);
    tr_config_t config = tu_config ();
    config.grace_ms = grace_ms;
    config.term_ms = term_ms;
    tu_capture_t capture;
    tu_capture_start (&capture);
    int rc = tr_run (&config, 0, NULL, s_escalate_root, obs);
    tu_capture_end (&capture, s_log, sizeof s_log);
    tu_fifo_close (&obs->fifo);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs->start_rc);
    ck_assert_msg (obs->busy, "the child never started %s", fn);
    ck_assert_tr_ok (obs->join_rc);
    //  A child we killed because it ignored its cancel is logged, not
    //  listed: the close itself succeeds.
    ck_assert_tr_ok (obs->close_rc);
    ck_assert_int_eq (obs->close_errors, 0);
    ck_assert_int_eq (obs->children_after, 0);
}

//  The line of s_log that carries id, or NULL.
static const char *
s_line (const char *id)
{
    return strstr (s_log, id);
}

//  The line with id names the child.
static void
s_assert_line_names (const char *id, const char *uid)
{
    const char *line = s_line (id);
    ck_assert_msg (line, "no %s line; the log:\n%s", id, s_log);
    const char *end = strchr (line, '\n');
    size_t len = end? (size_t) (end - line): strlen (line);
    char copy [1024];
    snprintf (copy, sizeof copy, "%.*s", (int) (len < sizeof copy? len: sizeof copy - 1), line);
    ck_assert_msg (strstr (copy, uid), "%s line does not name %s: %s", id, uid, copy);
}

START_TEST (a_child_that_ignores_its_cancel_gets_sigterm_after_the_grace_period)
{
    s_escalate_t obs;
    s_run (&obs, "spin", GRACE_MS, TERM_MS);
    //  Asked, then after the grace SIGTERM, which ended it: no SIGKILL.
    s_assert_line_names ("TR-GRACE", obs.uid);
    ck_assert_msg (!s_line ("TR-KILL"), "SIGKILL although SIGTERM ended it:\n%s", s_log);
    ck_assert_msg (obs.close_ms >= GRACE_MS, "SIGTERM came %lld ms into the close, grace is %d",
                   obs.close_ms, GRACE_MS);
    ck_assert_msg (obs.close_ms < tu_ms (2500), "the close took %lld ms", obs.close_ms);
    //  The call that ran in it died with it, by SIGTERM.
    ck_assert_tr_rc (obs.runner.rc, TR_ECRASHED);
    ck_assert_int_eq (obs.runner.error.signal, SIGTERM);
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (a_child_that_also_ignores_sigterm_gets_sigkill_after_term_ms_more)
{
    s_escalate_t obs;
    s_run (&obs, "stubborn", GRACE_MS, TERM_MS);
    //  Both steps, in order, each naming the child.
    s_assert_line_names ("TR-GRACE", obs.uid);
    s_assert_line_names ("TR-KILL", obs.uid);
    ck_assert_msg (s_line ("TR-GRACE") < s_line ("TR-KILL"), "SIGKILL before SIGTERM:\n%s", s_log);
    ck_assert_msg (obs.close_ms >= GRACE_MS + TERM_MS,
                   "SIGKILL came %lld ms into the close, grace + term is %d",
                   obs.close_ms, GRACE_MS + TERM_MS);
    ck_assert_msg (obs.close_ms < tu_ms (3000), "the close took %lld ms", obs.close_ms);
    ck_assert_tr_rc (obs.runner.rc, TR_ECRASHED);
    ck_assert_int_eq (obs.runner.error.signal, SIGKILL);
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (a_child_that_acknowledges_its_cancel_is_never_signalled)
{
    //  The default grace (3 s): an ack well within it leaves no signal.
    s_escalate_t obs;
    s_run (&obs, "sleep", 0, 0);
    ck_assert_msg (!s_line ("TR-GRACE") && !s_line ("TR-KILL"),
                   "a child that acked was signalled:\n%s", s_log);
    ck_assert_msg (obs.close_ms < tu_ms (2000), "the close took %lld ms", obs.close_ms);
    //  Its call was cancelled and acknowledged, not cut off by a death.
    ck_assert_tr_rc (obs.runner.rc, TR_ECANCELED);
    tu_assert_no_procs_left (0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("rule8_graceful_before_hard");
    TCase *tc = tu_tcase (suite, "escalation", 30);
    tcase_add_test (tc, a_child_that_ignores_its_cancel_gets_sigterm_after_the_grace_period);
    tcase_add_test (tc, a_child_that_also_ignores_sigterm_gets_sigkill_after_term_ms_more);
    tcase_add_test (tc, a_child_that_acknowledges_its_cancel_is_never_signalled);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
