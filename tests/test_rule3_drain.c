/*  =========================================================================
    test_rule3_drain.c - a child's final message is never cut off

    Rule 3: when a child of a local nursery ends, its channel is drained
    until the child has closed its side, so its final status (result,
    error or cancel ack) always arrives: children send their last frames
    with a bounded linger before they exit, and the parent reads what is
    queued even when it sees the exit first. Many children answering and
    exiting at once make the exit and the last frame race, the more so
    when the root's own I/O thread is short of CPU: while the children
    answer and exit, threads of the root's pool spin on every core. Each
    scenario is repeated for several rounds.
    =========================================================================
*/
#include "testutil.h"

#define CHILDREN    8
#define FAIL_ROUNDS 20
#define BIG_ROUNDS  5

//  --------------------------------------------------------------------------
//  Every failing child's error is in the close's list

typedef struct {
    tu_burners_t burners;
    int start_rc [FAIL_ROUNDS][CHILDREN];
    int close_rc [FAIL_ROUNDS];
    size_t count [FAIL_ROUNDS];
    unsigned seen [FAIL_ROUNDS];    //  bit k: the error of child k came
    char odd [512];                 //  the first error that was not ours
} s_failers_t;

//  Which of our children the error is from (its n), or -1.
static int
s_which (const tr_error_t *error, char uids [CHILDREN][256])
{
    int n = 0;
    if (tr_error_code (error) != TR_EREMOTE
    ||  strcmp (tr_error_type (error), "ValueError") != 0
    ||  sscanf (tr_error_message (error), "n must be > 0, got %d", &n) != 1
    ||  n > -1 || n < -CHILDREN
    ||  strcmp (tr_error_origin (error), uids [-n - 1]) != 0)
        return -1;
    return -n - 1;
}

static int
s_failers_root (tr_actor_t *self, void *arg)
{
    s_failers_t *obs = arg;
    for (int round = 0; round < FAIL_ROUNDS; round++) {
        tr_nursery_t *n;
        if (tr_nursery_open (self, &n))
            return 1;
        char uids [CHILDREN][256];
        memset (uids, 0, sizeof uids);
        for (int k = 0; k < CHILDREN; k++) {
            tr_portal_t *p;
            tr_args_t *args = tr_pack ("[i]", -(k + 1));
            obs->start_rc [round][k] = tr_nursery_run_in_actor (n, "failer", "fail", args, &p);
            tr_args_destroy (&args);
            if (obs->start_rc [round][k] == 0)
                snprintf (uids [k], sizeof uids [k], "%s", tr_portal_uid (p));
        }
        tr_error_t *errors = NULL;
        tu_burners_start (&obs->burners, self);
        obs->close_rc [round] = tr_nursery_close (&n, &errors);
        tu_burners_stop (&obs->burners);
        for (const tr_error_t *e = errors; e; e = tr_error_next (e)) {
            obs->count [round]++;
            int which = s_which (e, uids);
            if (which >= 0)
                obs->seen [round] |= 1u << which;
            else
            if (!*obs->odd) {
                char *text = tr_error_format (e);
                snprintf (obs->odd, sizeof obs->odd, "round %d: %s", round, text? text: "?");
                free (text);
            }
        }
        tr_error_destroy (&errors);
    }
    return 0;
}

START_TEST (a_close_lists_the_error_of_every_failing_child_round_after_round)
{
    tu_subreaper ();
    s_failers_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_failers_root, &obs), 0);
    for (int round = 0; round < FAIL_ROUNDS; round++) {
        for (int k = 0; k < CHILDREN; k++)
            ck_assert_tr_ok (obs.start_rc [round][k]);
        ck_assert_tr_rc (obs.close_rc [round], TR_EREMOTE);
        ck_assert_msg (*obs.odd == 0, "an error that is no child's: %s", obs.odd);
        ck_assert_msg (obs.count [round] == CHILDREN && obs.seen [round] == (1u << CHILDREN) - 1,
                       "round %d: %zu errors listed, children seen 0x%02x of 0x%02x",
                       round, obs.count [round], obs.seen [round], (1u << CHILDREN) - 1);
    }
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  Every child's large result is there once it has exited

#define BIG (256 * 1024)

typedef struct {
    tu_burners_t burners;
    int start_rc [BIG_ROUNDS][CHILDREN];
    int result_rc [BIG_ROUNDS][CHILDREN];
    size_t size [BIG_ROUNDS][CHILDREN];
    bool gone [BIG_ROUNDS];
    int close_rc [BIG_ROUNDS];
    tu_err_t error;                 //  the first failed result's
} s_big_t;

static int
s_big_root (tr_actor_t *self, void *arg)
{
    s_big_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    for (int round = 0; round < BIG_ROUNDS; round++) {
        tr_nursery_t *n;
        if (tr_nursery_open (self, &n))
            return 1;
        tr_portal_t *p [CHILDREN] = { NULL };
        int pids [CHILDREN] = { 0 };
        tu_burners_start (&obs->burners, self);
        for (int k = 0; k < CHILDREN; k++) {
            tr_args_t *args = tr_pack ("[I]", (int64_t) BIG);
            obs->start_rc [round][k] = tr_nursery_run_in_actor (n, "big", "big", args, &p [k]);
            tr_args_destroy (&args);
            if (obs->start_rc [round][k] == 0)
                pids [k] = tr_portal_pid (p [k]);
        }
        //  Each child answers, is let go and exits; read the results only
        //  once every one of them is gone.
        long long deadline = tu_now_ms () + tu_ms (10000);
        bool gone = false;
        while (!gone && tu_now_ms () < deadline) {
            gone = true;
            for (int k = 0; k < CHILDREN; k++) {
                char path [64];
                snprintf (path, sizeof path, "/proc/%d", pids [k]);
                if (pids [k] && access (path, F_OK) == 0)
                    gone = false;
            }
            if (!gone && tr_sleep (ctx, 5))
                break;
        }
        tu_burners_stop (&obs->burners);
        obs->gone [round] = gone;
        for (int k = 0; k < CHILDREN; k++) {
            if (!p [k])
                continue;
            const msgpack_object *v = NULL;
            obs->result_rc [round][k] = tr_portal_result (p [k], &v);
            if (obs->result_rc [round][k] == 0 && v && v->type == MSGPACK_OBJECT_STR)
                obs->size [round][k] = v->via.str.size;
            else
            if (!obs->error.set)
                tu_err_copy (&obs->error, tr_portal_error (p [k]));
        }
        obs->close_rc [round] = tr_nursery_close (&n, NULL);
    }
    return 0;
}

START_TEST (every_child_s_large_final_result_is_kept_though_it_exited_at_once)
{
    tu_subreaper ();
    s_big_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_big_root, &obs), 0);
    for (int round = 0; round < BIG_ROUNDS; round++) {
        ck_assert_msg (obs.gone [round], "round %d: the children did not exit after answering", round);
        for (int k = 0; k < CHILDREN; k++) {
            ck_assert_tr_ok (obs.start_rc [round][k]);
            ck_assert_msg (obs.result_rc [round][k] == 0,
                           "round %d child %d: result %s (%s: %s)", round, k,
                           tr_errname (obs.result_rc [round][k]), obs.error.type, obs.error.message);
            ck_assert_uint_eq (obs.size [round][k], BIG);
        }
        ck_assert_tr_ok (obs.close_rc [round]);
    }
    tu_assert_no_procs_left (0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("rule3_drain");
    TCase *tc = tu_tcase (suite, "drain", 60);
    tcase_add_test (tc, a_close_lists_the_error_of_every_failing_child_round_after_round);
    tcase_add_test (tc, every_child_s_large_final_result_is_kept_though_it_exited_at_once);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
