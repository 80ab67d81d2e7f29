/*  =========================================================================
    test_rule6_one_cancels_all.c - one failure cancels every other child

    Rule 6: a nursery whose child fails, or whose own body fails, cancels
    every other child, waits for each, and returns all the errors. The
    other children here are run_in_actor sleepers (20 s), whose results a
    close would otherwise wait for, and a child serving a long call: a
    close that returns within a second or two cancelled them; the list it
    returns holds every failure and nothing for the children it cancelled.
    =========================================================================
*/
#include "testutil.h"

#define FAILERS     3
#define SLEEPERS    3

//  A task of the root that keeps a child busy with a long call.
typedef struct {
    tr_portal_t *p;
    int rc;
} s_busy_t;

static int
s_busy (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_busy_t *self = arg;
    self->rc = tu_call (self->p, "sleep", tr_pack ("[i]", 20000), NULL);
    return 0;
}

//  --------------------------------------------------------------------------
//  Children fail: the others are cancelled, every failure is listed

typedef struct {
    int start_rc [FAILERS + SLEEPERS + 1];
    bool sleeping;
    s_busy_t busy;
    int close_rc, join_rc;
    long long close_ms;
    size_t count;
    unsigned seen;                  //  bit k: failer k's error is listed
    char odd [512];                 //  the first listed error not a failer's
    int children_at_return;
} s_failing_t;

static int
s_failing_root (tr_actor_t *self, void *arg)
{
    s_failing_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p;
    tr_task_t *task = NULL;
    int at = 0;
    obs->start_rc [at++] = tr_nursery_start_actor (n, "busy", NULL, &obs->busy.p);
    if (obs->start_rc [0] == 0 && tr_task_spawn (self, s_busy, &obs->busy, &task) == 0)
        obs->sleeping = tu_wait_sleeping (ctx, obs->busy.p, 1, 5000);
    for (int i = 0; i < SLEEPERS; i++) {
        tr_args_t *args = tr_pack ("[i]", 20000);
        obs->start_rc [at++] = tr_nursery_run_in_actor (n, "sleeper", "sleep", args, &p);
        tr_args_destroy (&args);
    }
    for (int k = 0; k < FAILERS; k++) {
        tr_args_t *args = tr_pack ("[i]", -(k + 1));
        obs->start_rc [at++] = tr_nursery_run_in_actor (n, "failer", "fail", args, &p);
        tr_args_destroy (&args);
    }
    long long t0 = tu_now_ms ();
    tr_error_t *errors = NULL;
    obs->close_rc = tr_nursery_close (&n, &errors);
    obs->close_ms = tu_now_ms () - t0;
    obs->children_at_return = tu_children_now ();
    for (const tr_error_t *e = errors; e; e = tr_error_next (e)) {
        obs->count++;
        int v = 0;
        if (tr_error_code (e) == TR_EREMOTE && strcmp (tr_error_type (e), "ValueError") == 0
        &&  sscanf (tr_error_message (e), "n must be > 0, got %d", &v) == 1
        &&  v <= -1 && v >= -FAILERS)
            obs->seen |= 1u << (-v - 1);
        else
        if (!*obs->odd) {
            char *text = tr_error_format (e);
            snprintf (obs->odd, sizeof obs->odd, "%s", text? text: "?");
            free (text);
        }
    }
    tr_error_destroy (&errors);
    if (task)
        obs->join_rc = tr_task_join (&task, NULL);
    return 0;
}

START_TEST (failing_children_cancel_every_other_child_and_the_close_lists_each_failure)
{
    tu_subreaper ();
    s_failing_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_failing_root, &obs), 0);
    for (int i = 0; i < FAILERS + SLEEPERS + 1; i++)
        ck_assert_tr_ok (obs.start_rc [i]);
    ck_assert_msg (obs.sleeping, "the busy child never reported its call");
    ck_assert_tr_rc (obs.close_rc, TR_EREMOTE);
    //  The sleepers' 20 s and the busy call were cut short by a cancel.
    ck_assert_msg (obs.close_ms < tu_ms (2500), "the close took %lld ms", obs.close_ms);
    ck_assert_msg (*obs.odd == 0, "a child that was cancelled is listed: %s", obs.odd);
    ck_assert_msg (obs.count == FAILERS && obs.seen == (1u << FAILERS) - 1,
                   "%zu errors listed, failers seen 0x%x", obs.count, obs.seen);
    //  The busy child acknowledged: its call was cancelled, not cut off.
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_tr_rc (obs.busy.rc, TR_ECANCELED);
    ck_assert_int_eq (obs.children_at_return, 0);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  The nursery's own body fails

typedef struct {
    int start_rc [SLEEPERS + 1];
    int body_rc;                    //  the body's own failing call
    int cancel_rc, close_rc;
    long long close_ms;
    size_t count;
    tu_err_t first;
    int children_at_return;
} s_body_t;

static int
s_body_root (tr_actor_t *self, void *arg)
{
    s_body_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p, *helper = NULL;
    for (int i = 0; i < SLEEPERS; i++) {
        tr_args_t *args = tr_pack ("[i]", 20000);
        obs->start_rc [i] = tr_nursery_run_in_actor (n, "sleeper", "sleep", args, &p);
        tr_args_destroy (&args);
    }
    obs->start_rc [SLEEPERS] = tr_nursery_start_actor (n, "helper", NULL, &helper);
    //  The body's own work fails (a call it makes raises): it gives up,
    //  and what it started must not outlive it.
    if (helper)
        obs->body_rc = tu_call (helper, "add", tr_pack ("[s]", "not numbers"), NULL);
    if (obs->body_rc)
        obs->cancel_rc = tr_nursery_cancel (n, false);
    long long t0 = tu_now_ms ();
    obs->close_rc = tu_nursery_close (&n, &obs->count, &obs->first);
    obs->close_ms = tu_now_ms () - t0;
    obs->children_at_return = tu_children_now ();
    return obs->body_rc? 7: 0;
}

START_TEST (a_nursery_whose_body_fails_cancels_every_child_and_lists_none_of_them)
{
    tu_subreaper ();
    s_body_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    //  The root reports its body's failure as its own.
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_body_root, &obs), 7);
    for (int i = 0; i <= SLEEPERS; i++)
        ck_assert_tr_ok (obs.start_rc [i]);
    ck_assert_tr_rc (obs.body_rc, TR_EREMOTE);
    ck_assert_tr_ok (obs.cancel_rc);
    ck_assert_msg (obs.close_ms < tu_ms (2500), "the close took %lld ms", obs.close_ms);
    //  The children did not fail: the body did, and cancelled them.
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_msg (obs.count == 0, "%zu errors listed, the first: %s: %s", obs.count,
                   obs.first.type, obs.first.message);
    ck_assert_int_eq (obs.children_at_return, 0);
    tu_assert_no_procs_left (0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("rule6_one_cancels_all");
    TCase *tc = tu_tcase (suite, "failures", 30);
    tcase_add_test (tc, failing_children_cancel_every_other_child_and_the_close_lists_each_failure);
    tcase_add_test (tc, a_nursery_whose_body_fails_cancels_every_child_and_lists_none_of_them);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
