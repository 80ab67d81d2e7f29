/*  =========================================================================
    test_portal.c - scenario: calls through portals

    The forked test process is the root actor; it calls tests/worker
    children through portals: values round-trip, calls run concurrently,
    remote errors come back boxed with their chain, cancellation reaches the
    remote task and is acknowledged, limits are enforced on both sides.
    The root records what it sees; the test asserts once tr_run returned.
    =========================================================================
*/
#include "testutil.h"
#include <stdbool.h>

//  --------------------------------------------------------------------------
//  Helpers

//  Call fn(args) expecting an integer; rc is returned, *result set.
static int
s_call_int (tr_portal_t *p, const char *fn, tr_args_t *args, int64_t *result)
{
    tr_value_t *v = NULL;
    int rc = tu_call (p, fn, args, &v);
    if (rc == 0 && tr_unpack (tr_value_object (v), "I", result))
        rc = TR_EFORMAT;
    tr_value_destroy (&v);
    return rc;
}

//  Most scenarios run in the one-child frame: it must start and close
//  cleanly whatever the body saw.
static void
s_run_frame (tu_frame_t *frame, tr_config_t *config)
{
    tu_run_frame (frame, config);
    ck_assert_tr_ok (frame->close_rc);
}

//  --------------------------------------------------------------------------
//  Values round-trip

typedef struct {
    int add_rc, echo_rc, nil_rc, empty_rc;
    int64_t sum;
    bool equal, same_bytes, nil_is_nil, empty_is_array;
    size_t sent_size, got_size;
    char unpack_msg [256];
    int unpack_rc;
    char s [16];
    size_t bin_size;
    unsigned char bin [4];
    int64_t big_negative;
    double f;
} s_values_t;

static int
s_values_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_values_t *obs = arg;
    obs->add_rc = s_call_int (p, "add", tr_pack ("[II]", (int64_t) -5000000000LL, (int64_t) 47), &obs->sum);

    char longer [300];
    memset (longer, 'q', sizeof longer);
    static const unsigned char bytes [] = { 0x00, 0xff, 0x7f, 0x80 };
    tr_args_t *args = tr_pack (
        "{s:[i I u s y n b f], s:{s:[], s:{}, s:s#}, s:[[[[ s ]]]], s:s#, s:s}",
        "scalars", -1, (int64_t) INT64_MIN, (uint64_t) UINT64_MAX, "text",
            bytes, sizeof bytes, 1, 2.5,
        "nested", "empty array", "empty map", "with nul", "a\0b", (size_t) 3,
        "deep", "bottom",
        "long", longer, sizeof longer,
        "unicode", "h\xc3\xa9llo \xe2\x9c\x93");
    ck_assert_ptr_nonnull (args);
    obs->sent_size = tr_args_size (args);
    tr_value_t *v = NULL;
    obs->echo_rc = tr_portal_run (p, "echo", args, &v);
    if (obs->echo_rc == 0) {
        tr_value_t *sent = tr_value_decode (tr_args_data (args), tr_args_size (args));
        obs->equal = sent && msgpack_object_equal (*tr_value_object (sent), *tr_value_object (v));
        tr_value_destroy (&sent);
        tr_args_t *again = tr_args_from_object (tr_value_object (v));
        obs->got_size = again? tr_args_size (again): 0;
        obs->same_bytes = again && tr_args_size (again) == tr_args_size (args)
                       && memcmp (tr_args_data (again), tr_args_data (args), tr_args_size (args)) == 0;
        tr_args_destroy (&again);
        const char *s;
        const void *bin;
        obs->unpack_rc = tr_unpack_ex (tr_value_object (v), obs->unpack_msg, sizeof obs->unpack_msg,
                                       "{s:[i I u s y n b f ...]}", "scalars",
                                       NULL, &obs->big_negative, NULL, &s, &bin,
                                       &obs->bin_size, NULL, &obs->f);
        if (obs->unpack_rc == 0) {
            snprintf (obs->s, sizeof obs->s, "%s", s);
            memcpy (obs->bin, bin, obs->bin_size < 4? obs->bin_size: 4);
        }
    }
    tr_value_destroy (&v);
    tr_args_destroy (&args);

    obs->nil_rc = tu_call (p, "nil", NULL, &v);
    obs->nil_is_nil = v && tr_value_object (v)->type == MSGPACK_OBJECT_NIL;
    tr_value_destroy (&v);
    //  No arguments reach the function as an empty array.
    obs->empty_rc = tu_call (p, "echo", NULL, &v);
    obs->empty_is_array = v && tr_value_object (v)->type == MSGPACK_OBJECT_ARRAY
                       && tr_value_object (v)->via.array.size == 0;
    tr_value_destroy (&v);
    return 0;
}

START_TEST (arguments_and_results_round_trip_exactly)
{
    tu_subreaper ();
    s_values_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_values_body, .obs = &obs };
    s_run_frame (&frame, NULL);
    ck_assert_tr_ok (obs.add_rc);
    ck_assert_int_eq (obs.sum, -5000000000LL + 47);
    ck_assert_tr_ok (obs.echo_rc);
    ck_assert_msg (obs.equal, "echo did not return an equal value");
    ck_assert_msg (obs.same_bytes, "echo re-encodes to %zu bytes, sent %zu",
                   obs.got_size, obs.sent_size);
    ck_assert_msg (obs.unpack_rc == 0, "unpack: %s", obs.unpack_msg);
    ck_assert_int_eq (obs.big_negative, INT64_MIN);
    ck_assert_str_eq (obs.s, "text");
    ck_assert_int_eq (obs.bin_size, 4);
    ck_assert_int_eq (obs.bin [0], 0x00);
    ck_assert_int_eq (obs.bin [1], 0xff);
    ck_assert_double_eq (obs.f, 2.5);
    ck_assert_tr_ok (obs.nil_rc);
    ck_assert_msg (obs.nil_is_nil, "nil did not come back as nil");
    ck_assert_tr_ok (obs.empty_rc);
    ck_assert_msg (obs.empty_is_array, "no arguments did not arrive as []");
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Concurrent calls through one portal

#define LANES 8
#define CALLS 100

typedef struct {
    tr_portal_t *p;
    int id;
    int ok;
    int first_bad_rc;
    int64_t first_bad_value, first_bad_want;
} s_lane_t;

static int
s_lane (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_lane_t *self = arg;
    for (int i = 0; i < CALLS; i++) {
        int64_t a = (int64_t) self->id * 1000000 + i, b = i * 7, sum = 0;
        int rc = s_call_int (self->p, "add", tr_pack ("[II]", a, b), &sum);
        if (rc == 0 && sum == a + b)
            self->ok++;
        else
        if (!self->first_bad_rc && !self->first_bad_want) {
            self->first_bad_rc = rc;
            self->first_bad_value = sum;
            self->first_bad_want = a + b;
        }
    }
    return 0;
}

typedef struct {
    s_lane_t lanes [LANES];
    int join_rc [LANES];
    int calls_in_flight_max;
} s_concurrent_t;

static int
s_concurrent_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_concurrent_t *obs = arg;
    tr_actor_t *self = tr_ctx_actor (ctx);
    tr_task_t *tasks [LANES];
    for (int i = 0; i < LANES; i++) {
        obs->lanes [i] = (s_lane_t) { .p = p, .id = i + 1 };
        if (tr_task_spawn (self, s_lane, &obs->lanes [i], &tasks [i]))
            return 1;
    }
    for (int i = 0; i < LANES; i++)
        obs->join_rc [i] = tr_task_join (&tasks [i], NULL);
    return 0;
}

START_TEST (many_tasks_call_through_one_portal_at_once_and_each_gets_its_own_result)
{
    tu_subreaper ();
    s_concurrent_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_concurrent_body, .obs = &obs };
    s_run_frame (&frame, NULL);
    for (int i = 0; i < LANES; i++) {
        ck_assert_tr_ok (obs.join_rc [i]);
        ck_assert_msg (obs.lanes [i].ok == CALLS,
                       "lane %d: %d of %d right; first wrong: rc %s, %lld instead of %lld",
                       i, obs.lanes [i].ok, CALLS, tr_errname (obs.lanes [i].first_bad_rc),
                       (long long) obs.lanes [i].first_bad_value,
                       (long long) obs.lanes [i].first_bad_want);
    }
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Remote errors

typedef struct {
    int fail_rc, relay_rc, after_rc;
    tu_err_t fail, relay;
    int64_t after;
} s_errors_t;

static int
s_errors_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_errors_t *obs = arg;
    obs->fail_rc = tu_call (p, "fail", tr_pack ("[i]", -3), NULL);
    tu_err_copy (&obs->fail, tr_portal_error (p));
    obs->relay_rc = tu_call (p, "via_child", tr_pack ("[s[i]]", "fail", -1), NULL);
    tu_err_copy (&obs->relay, tr_portal_error (p));
    obs->after_rc = s_call_int (p, "add", tr_pack ("[ii]", 1, 2), &obs->after);
    return 0;
}

START_TEST (a_remote_error_comes_back_with_its_type_message_origin_and_frames)
{
    tu_subreaper ();
    s_errors_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_errors_body, .obs = &obs };
    s_run_frame (&frame, NULL);
    ck_assert_tr_rc (obs.fail_rc, TR_EREMOTE);
    ck_assert_msg (obs.fail.set, "no portal error");
    ck_assert_tr_rc (obs.fail.code, TR_EREMOTE);
    ck_assert_str_eq (obs.fail.type, "ValueError");
    ck_assert_str_eq (obs.fail.message, "n must be > 0, got -3");
    ck_assert_str_eq (obs.fail.origin, frame.uid);
    ck_assert_int_ge (obs.fail.hops, 1);
    ck_assert_str_eq (obs.fail.hop [0], frame.uid);
    ck_assert_msg (obs.fail.frames, "no remote frames");
    ck_assert_tr_ok (obs.after_rc);
    ck_assert_int_eq (obs.after, 3);
    tu_assert_no_procs_left (2000);
}
END_TEST

START_TEST (an_error_relayed_by_a_child_keeps_its_origin_and_gains_a_hop)
{
    tu_subreaper ();
    s_errors_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_errors_body, .obs = &obs };
    s_run_frame (&frame, NULL);
    ck_assert_tr_rc (obs.relay_rc, TR_EREMOTE);
    ck_assert_tr_rc (obs.relay.code, TR_EREMOTE);
    ck_assert_str_eq (obs.relay.type, "ValueError");
    ck_assert_str_eq (obs.relay.message, "n must be > 0, got -1");
    ck_assert_msg (strncmp (obs.relay.origin, "grandchild@", 11) == 0,
                   "origin %s is not the grandchild", obs.relay.origin);
    ck_assert_int_eq (obs.relay.hops, 2);
    ck_assert_str_eq (obs.relay.hop [0], obs.relay.origin);
    ck_assert_str_eq (obs.relay.hop [1], frame.uid);
    ck_assert_msg (obs.relay.frames, "no remote frames");
    tu_assert_no_procs_left (2000);
}
END_TEST

typedef struct {
    int rc, after_rc;
    tu_err_t error;
    int64_t after;
} s_notexposed_t;

static int
s_notexposed_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_notexposed_t *obs = arg;
    obs->rc = tu_call (p, "no_such_function", tr_pack ("[i]", 1), NULL);
    tu_err_copy (&obs->error, tr_portal_error (p));
    obs->after_rc = s_call_int (p, "add", tr_pack ("[ii]", 20, 22), &obs->after);
    return 0;
}

START_TEST (calling_a_function_that_is_not_exported_fails_and_the_child_keeps_serving)
{
    tu_subreaper ();
    s_notexposed_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_notexposed_body, .obs = &obs };
    s_run_frame (&frame, NULL);
    ck_assert_tr_rc (obs.rc, TR_ENOTEXPOSED);
    ck_assert_tr_rc (obs.error.code, TR_ENOTEXPOSED);
    ck_assert_msg (strstr (obs.error.message, "no_such_function"), "message '%s'", obs.error.message);
    ck_assert_msg (strstr (obs.error.message, frame.uid), "message '%s'", obs.error.message);
    ck_assert_tr_ok (obs.after_rc);
    ck_assert_int_eq (obs.after, 42);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  run_in_actor results are kept (rule 9)

typedef struct {
    int nil_rc, nil_again_rc, add_rc, add_again_rc, close_rc;
    int nil_start_rc, add_start_rc;
    bool nil_is_nil, same_nil, same_add, gone;
    int64_t sum, sum_again;
    long long again_ms;
} s_result_t;

static int
s_result_root (tr_actor_t *self, void *arg)
{
    s_result_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *pnil = NULL, *padd = NULL;
    obs->nil_start_rc = tr_nursery_run_in_actor (n, "nil", "nil", NULL, &pnil);
    tr_args_t *args = tr_pack ("[ii]", 40, 2);
    obs->add_start_rc = tr_nursery_run_in_actor (n, "adder", "add", args, &padd);
    tr_args_destroy (&args);
    if (obs->nil_start_rc == 0 && obs->add_start_rc == 0) {
        const msgpack_object *v1 = NULL, *v2 = NULL, *a1 = NULL, *a2 = NULL;
        obs->nil_rc = tr_portal_result (pnil, &v1);
        obs->nil_is_nil = v1 && v1->type == MSGPACK_OBJECT_NIL;
        obs->add_rc = tr_portal_result (padd, &a1);
        if (a1)
            tr_unpack (a1, "I", &obs->sum);
        //  The children answered and were let go; once they are gone the
        //  results must still be there, without another wait.
        obs->gone = tu_process_gone (ctx, tr_portal_pid (pnil), 5000)
                 && tu_process_gone (ctx, tr_portal_pid (padd), 5000);
        long long t0 = tu_now_ms ();
        obs->nil_again_rc = tr_portal_result (pnil, &v2);
        obs->add_again_rc = tr_portal_result (padd, &a2);
        obs->again_ms = tu_now_ms () - t0;
        obs->same_nil = v1 && v1 == v2 && v2->type == MSGPACK_OBJECT_NIL;
        obs->same_add = a1 && a1 == a2;
        if (a2)
            tr_unpack (a2, "I", &obs->sum_again);
    }
    obs->close_rc = tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (a_run_in_actor_result_is_kept_and_returned_again_without_waiting)
{
    tu_subreaper ();
    s_result_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_result_root, &obs);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs.nil_start_rc);
    ck_assert_tr_ok (obs.add_start_rc);
    ck_assert_tr_ok (obs.nil_rc);
    ck_assert_msg (obs.nil_is_nil, "nil's result is not nil");
    ck_assert_tr_ok (obs.add_rc);
    ck_assert_int_eq (obs.sum, 42);
    ck_assert_msg (obs.gone, "the run_in_actor children did not exit after answering");
    ck_assert_tr_ok (obs.nil_again_rc);
    ck_assert_tr_ok (obs.add_again_rc);
    ck_assert_msg (obs.same_nil, "second result of nil differs");
    ck_assert_msg (obs.same_add, "second result of add differs");
    ck_assert_int_eq (obs.sum_again, 42);
    ck_assert_msg (obs.again_ms < tu_ms (50), "second results took %lld ms", obs.again_ms);
    ck_assert_tr_ok (obs.close_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

typedef struct {
    int start_rc, first_rc, again_rc, plain_rc, close_rc, plain_result_rc;
    size_t close_errors;
    tu_err_t first, again;
    long long again_ms;
} s_failed_result_t;

static int
s_failed_result_root (tr_actor_t *self, void *arg)
{
    s_failed_result_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p = NULL, *plain = NULL;
    tr_args_t *args = tr_pack ("[i]", -9);
    obs->start_rc = tr_nursery_run_in_actor (n, "failer", "fail", args, &p);
    tr_args_destroy (&args);
    obs->plain_rc = tr_nursery_start_actor (n, "plain", NULL, &plain);
    if (obs->start_rc == 0) {
        const msgpack_object *v = NULL;
        obs->first_rc = tr_portal_result (p, &v);
        tu_err_copy (&obs->first, tr_portal_error (p));
        long long t0 = tu_now_ms ();
        obs->again_rc = tr_portal_result (p, &v);
        obs->again_ms = tu_now_ms () - t0;
        tu_err_copy (&obs->again, tr_portal_error (p));
    }
    //  A portal from start_actor has no main call.
    if (obs->plain_rc == 0)
        obs->plain_result_rc = tr_portal_result (plain, NULL);
    obs->close_rc = tu_nursery_close (&n, &obs->close_errors, NULL);
    return 0;
}

START_TEST (a_failed_run_in_actor_result_is_returned_as_the_same_error_every_time)
{
    tu_subreaper ();
    s_failed_result_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_failed_result_root, &obs);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs.start_rc);
    ck_assert_tr_ok (obs.plain_rc);
    ck_assert_tr_rc (obs.first_rc, TR_EREMOTE);
    ck_assert_str_eq (obs.first.type, "ValueError");
    ck_assert_str_eq (obs.first.message, "n must be > 0, got -9");
    ck_assert_tr_rc (obs.again_rc, TR_EREMOTE);
    ck_assert_str_eq (obs.again.type, "ValueError");
    ck_assert_msg (obs.again_ms < tu_ms (50), "second result took %lld ms", obs.again_ms);
    ck_assert_tr_rc (obs.plain_result_rc, TR_EINVAL);
    //  The child's failure is the nursery's too.
    ck_assert_tr_rc (obs.close_rc, TR_EREMOTE);
    ck_assert_int_eq (obs.close_errors, 1);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Tasks in the child interleave at checkpoints

typedef struct {
    int rc;
    char trace [64];
    int sum;
} s_interleave_t;

static int
s_interleave_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_interleave_t *obs = arg;
    tr_value_t *v = NULL;
    obs->rc = tu_call (p, "interleave", tr_pack ("[ii]", 3, 4), &v);
    const char *trace;
    if (obs->rc == 0 && tr_unpack (tr_value_object (v), "[si]", &trace, &obs->sum) == 0)
        snprintf (obs->trace, sizeof obs->trace, "%s", trace);
    tr_value_destroy (&v);
    return 0;
}

START_TEST (tasks_in_a_child_interleave_at_their_checkpoints)
{
    tu_subreaper ();
    s_interleave_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_interleave_body, .obs = &obs };
    s_run_frame (&frame, NULL);
    ck_assert_tr_ok (obs.rc);
    ck_assert_int_eq (strlen (obs.trace), 12);
    ck_assert_int_eq (obs.sum, 0 + 1 + 2);
    //  Every round has each task once: "abcabcabcabc" and its kin, never
    //  "aaaabbbbcccc".
    for (int round = 0; round < 4; round++) {
        const char *r = obs.trace + 3 * round;
        ck_assert_msg (memchr (r, 'a', 3) && memchr (r, 'b', 3) && memchr (r, 'c', 3),
                       "trace %s does not interleave (round %d)", obs.trace, round);
    }
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Cancelling a task parked in tr_portal_run

typedef struct {
    tr_portal_t *p;
    const char *fn;
    int ms;
    int rc;
    tu_err_t error;
} s_caller_t;

static int
s_caller (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_caller_t *self = arg;
    self->rc = tu_call (self->p, self->fn, tr_pack ("[i]", self->ms), NULL);
    tu_err_copy (&self->error, tr_portal_error (self->p));
    return self->rc;
}

typedef struct {
    s_caller_t caller;
    bool sleeping;
    int join_rc, task_rc, cancels_rc, after_rc;
    int cancels, still_sleeping;
    long long cancel_ms;
    int64_t after;
} s_cancel_call_t;

static int
s_cancel_call_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_cancel_call_t *obs = arg;
    obs->caller.p = p;
    tr_task_t *task;
    if (tr_task_spawn (tr_ctx_actor (ctx), s_caller, &obs->caller, &task))
        return 1;
    obs->sleeping = tu_wait_sleeping (ctx, p, 1, 5000);
    long long t0 = tu_now_ms ();
    tr_task_cancel (task);
    obs->join_rc = tr_task_join (&task, &obs->task_rc);
    obs->cancel_ms = tu_now_ms () - t0;
    //  The ack is sent once the remote task has ended: by now it has
    //  counted its cancellation.
    obs->cancels_rc = tu_cancels (p, &obs->cancels, &obs->still_sleeping);
    obs->after_rc = s_call_int (p, "add", tr_pack ("[ii]", 1, 1), &obs->after);
    return 0;
}

//  Call fn(ms) from a task, cancel the task once the call sleeps in the
//  child, and check that the cancel reached the child and was acked.
static void
s_check_cancel_call (const char *fn, int ms)
{
    tu_subreaper ();
    s_cancel_call_t obs;
    memset (&obs, 0, sizeof obs);
    obs.caller.fn = fn;
    obs.caller.ms = ms;
    tu_frame_t frame = { .body = s_cancel_call_body, .obs = &obs };
    s_run_frame (&frame, NULL);
    ck_assert_msg (obs.sleeping, "the child never reported the call sleeping");
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_tr_rc (obs.task_rc, TR_ECANCELED);
    ck_assert_tr_rc (obs.caller.error.code, TR_ECANCELED);
    //  cancel_ack_ms is 1000: well under it means the ack came.
    ck_assert_msg (obs.cancel_ms < tu_ms (500), "cancel took %lld ms", obs.cancel_ms);
    ck_assert_tr_ok (obs.cancels_rc);
    ck_assert_int_eq (obs.cancels, 1);
    ck_assert_int_eq (obs.still_sleeping, 0);
    ck_assert_tr_ok (obs.after_rc);
    ck_assert_int_eq (obs.after, 2);
    tu_assert_no_procs_left (2000);
}

START_TEST (cancelling_a_caller_cancels_the_remote_call_and_waits_for_its_ack)
{
    s_check_cancel_call ("sleep", 10000);
}
END_TEST

START_TEST (cancelling_a_caller_ends_a_remote_to_thread_wait_while_the_thread_runs_on)
{
    s_check_cancel_call ("thread_sleep", 2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  tr_sleep in the root, cancelled

typedef struct {
    bool started;
    int rc;
} s_napper_t;

static int
s_napper (tr_ctx_t *ctx, void *arg)
{
    s_napper_t *self = arg;
    self->started = true;
    self->rc = tr_sleep (ctx, 10000);
    return self->rc;
}

typedef struct {
    s_napper_t napper;
    int join_rc, task_rc;
    long long cancel_ms;
} s_nap_t;

static int
s_nap_root (tr_actor_t *self, void *arg)
{
    s_nap_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_task_t *task;
    if (tr_task_spawn (self, s_napper, &obs->napper, &task))
        return 1;
    //  Let it start and park in its sleep.
    long long deadline = tu_now_ms () + tu_ms (5000);
    while (!obs->napper.started && tu_now_ms () < deadline)
        tr_sleep (ctx, 0);
    long long t0 = tu_now_ms ();
    tr_task_cancel (task);
    obs->join_rc = tr_task_join (&task, &obs->task_rc);
    obs->cancel_ms = tu_now_ms () - t0;
    return 0;
}

START_TEST (a_sleep_in_the_root_ends_at_once_when_its_task_is_cancelled)
{
    tu_subreaper ();
    s_nap_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_nap_root, &obs);
    ck_assert_int_eq (rc, 0);
    ck_assert_msg (obs.napper.started, "the sleeping task never ran");
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_tr_rc (obs.task_rc, TR_ECANCELED);
    ck_assert_msg (obs.cancel_ms < tu_ms (100), "cancel took %lld ms", obs.cancel_ms);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  TR_THREAD exports

typedef struct {
    int rc;
    int64_t sum;
} s_thread_sum_t;

static int
s_thread_sum_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_thread_sum_t *obs = arg;
    obs->rc = s_call_int (p, "thread_sum", tr_pack ("[I]", (int64_t) 1000000), &obs->sum);
    return 0;
}

START_TEST (a_thread_export_runs_on_a_worker_thread_and_returns_its_result)
{
    tu_subreaper ();
    s_thread_sum_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_thread_sum_body, .obs = &obs };
    s_run_frame (&frame, NULL);
    ck_assert_tr_ok (obs.rc);
    ck_assert_int_eq (obs.sum, 1000000LL * 999999LL / 2);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Large arguments echoed: answered from the request's own bytes

#define ECHO_TASKS 8

typedef struct {
    int big_rc, thread_rc, small_rc, task_rc [ECHO_TASKS], after_rc;
    bool big_same, thread_same, small_same, task_same [ECHO_TASKS];
    int64_t after;
} s_echo_big_t;

typedef struct {
    tr_portal_t *portal;
    int seed;
    int *rc;
    bool *same;
} s_echo_task_t;

//  size bytes of a pattern that differs with seed.
static char *
s_pattern (size_t size, int seed)
{
    char *data = malloc (size);
    for (size_t i = 0; data && i < size; i++)
        data [i] = (char) ((i * 7 + (size_t) seed * 131 + (i >> 9)) & 0xff);
    return data;
}

//  Call fn with [bytes]; true in *same if the answer is [the same bytes].
static int
s_echo_bytes (tr_portal_t *p, const char *fn, size_t size, int seed, bool *same)
{
    char *data = s_pattern (size, seed);
    tr_value_t *v = NULL;
    int rc = tu_call (p, fn, tr_pack ("[y]", data, size), &v);
    const char *back = NULL;
    size_t back_size = 0;
    *same = rc == 0 && tr_unpack (tr_value_object (v), "[y]", &back, &back_size) == 0
         && back_size == size && memcmp (back, data, size) == 0;
    tr_value_destroy (&v);
    free (data);
    return rc;
}

static int
s_echo_task (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_echo_task_t *t = arg;
    *t->rc = s_echo_bytes (t->portal, "echo", 100 * 1000 + (size_t) t->seed, t->seed, t->same);
    return 0;
}

static int
s_echo_big_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_echo_big_t *obs = arg;
    obs->big_rc = s_echo_bytes (p, "echo", 1024 * 1024, 1, &obs->big_same);
    obs->thread_rc = s_echo_bytes (p, "echo_thread", 1024 * 1024, 2, &obs->thread_same);
    obs->small_rc = s_echo_bytes (p, "echo", 100, 3, &obs->small_same);
    //  Many in flight at once: each answer holds its own request's bytes.
    s_echo_task_t tasks [ECHO_TASKS];
    tr_task_t *handles [ECHO_TASKS] = { NULL };
    for (int i = 0; i < ECHO_TASKS; i++) {
        obs->task_rc [i] = TR_EINVAL;
        tasks [i] = (s_echo_task_t) { p, 10 + i, &obs->task_rc [i], &obs->task_same [i] };
        tr_task_spawn (tr_ctx_actor (ctx), s_echo_task, &tasks [i], &handles [i]);
    }
    for (int i = 0; i < ECHO_TASKS; i++)
        if (handles [i])
            tr_task_join (&handles [i], NULL);
    obs->after_rc = s_call_int (p, "add", tr_pack ("[ii]", 2, 3), &obs->after);
    return 0;
}

START_TEST (large_arguments_echoed_come_back_byte_for_byte)
{
    tu_subreaper ();
    s_echo_big_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_echo_big_body, .obs = &obs };
    s_run_frame (&frame, NULL);
    ck_assert_tr_ok (obs.big_rc);
    ck_assert_msg (obs.big_same, "1 MiB echoed: the bytes differ");
    ck_assert_tr_ok (obs.thread_rc);
    ck_assert_msg (obs.thread_same, "1 MiB echoed from a pool thread: the bytes differ");
    ck_assert_tr_ok (obs.small_rc);
    ck_assert_msg (obs.small_same, "100 bytes echoed: the bytes differ");
    for (int i = 0; i < ECHO_TASKS; i++) {
        ck_assert_tr_ok (obs.task_rc [i]);
        ck_assert_msg (obs.task_same [i], "echo %d of %d in flight: the bytes differ", i,
                       ECHO_TASKS);
    }
    ck_assert_tr_ok (obs.after_rc);
    ck_assert_int_eq (obs.after, 5);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Size limits

typedef struct {
    int args_rc, deep_rc, result_rc, after_rc, small_rc;
    tu_err_t args_error, deep_error, result_error;
    int64_t after;
    size_t small_size;
    char root_uid [256];
} s_limits_t;

static int
s_limits_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_limits_t *obs = arg;
    snprintf (obs->root_uid, sizeof obs->root_uid, "%s", tr_actor_uid (tr_ctx_actor (ctx)));
    //  The root's limit is 64 KiB: 100 KB of arguments are refused here.
    size_t size = 100 * 1000;
    char *data = malloc (size);
    memset (data, 'z', size);
    obs->args_rc = tu_call (p, "echo", tr_pack ("[s#]", data, size), NULL);
    tu_err_copy (&obs->args_error, tr_portal_error (p));
    free (data);
    //  Nesting beyond the depth limit (32) is refused here too.
    char fmt [128] = "";
    for (int i = 0; i < 40; i++)
        strcat (fmt, "[");
    for (int i = 0; i < 40; i++)
        strcat (fmt, "]");
    obs->deep_rc = tu_call (p, "echo", tr_pack (fmt), NULL);
    tu_err_copy (&obs->deep_error, tr_portal_error (p));
    //  The child's own limit is its default, 16 MiB.
    obs->result_rc = tu_call (p, "big", tr_pack ("[I]", (int64_t) 17000000), NULL);
    tu_err_copy (&obs->result_error, tr_portal_error (p));
    tr_value_t *v = NULL;
    obs->small_rc = tu_call (p, "big", tr_pack ("[I]", (int64_t) 1000), &v);
    if (obs->small_rc == 0 && tr_value_object (v)->type == MSGPACK_OBJECT_STR)
        obs->small_size = tr_value_object (v)->via.str.size;
    tr_value_destroy (&v);
    obs->after_rc = s_call_int (p, "add", tr_pack ("[ii]", 2, 3), &obs->after);
    return 0;
}

START_TEST (oversized_arguments_and_results_fail_with_etoobig_and_the_child_serves_on)
{
    tu_subreaper ();
    s_limits_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    config.max_msg_size = 64 * 1024;
    tu_frame_t frame = { .body = s_limits_body, .obs = &obs };
    s_run_frame (&frame, &config);
    ck_assert_tr_rc (obs.args_rc, TR_ETOOBIG);
    ck_assert_tr_rc (obs.args_error.code, TR_ETOOBIG);
    //  Refused before sending: the error is the root's own.
    ck_assert_str_eq (obs.args_error.origin, obs.root_uid);
    ck_assert_tr_rc (obs.deep_rc, TR_ETOOBIG);
    ck_assert_str_eq (obs.deep_error.origin, obs.root_uid);
    ck_assert_tr_rc (obs.result_rc, TR_ETOOBIG);
    ck_assert_tr_rc (obs.result_error.code, TR_ETOOBIG);
    ck_assert_str_eq (obs.result_error.origin, frame.uid);
    ck_assert_msg (strstr (obs.result_error.message, "big"), "message '%s'",
                   obs.result_error.message);
    ck_assert_tr_ok (obs.small_rc);
    ck_assert_int_eq (obs.small_size, 1000);
    ck_assert_tr_ok (obs.after_rc);
    ck_assert_int_eq (obs.after, 5);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  tr_portal_cancel_actor

typedef struct {
    int cancel_rc, again_rc, call_rc;
    tu_err_t call_error;
    long long cancel_ms;
    bool gone;
} s_cancel_actor_t;

static int
s_cancel_actor_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_cancel_actor_t *obs = arg;
    long long t0 = tu_now_ms ();
    obs->cancel_rc = tr_portal_cancel_actor (p, tu_ms (5000));
    obs->cancel_ms = tu_now_ms () - t0;
    obs->again_rc = tr_portal_cancel_actor (p, tu_ms (5000));
    obs->gone = tu_process_gone (ctx, tr_portal_pid (p), 5000);
    obs->call_rc = tu_call (p, "add", tr_pack ("[ii]", 1, 2), NULL);
    tu_err_copy (&obs->call_error, tr_portal_error (p));
    return 0;
}

START_TEST (a_cancelled_actor_acks_exits_and_refuses_later_calls_as_closed)
{
    tu_subreaper ();
    s_cancel_actor_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_cancel_actor_body, .obs = &obs };
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, tu_frame_root, &frame);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (frame.start_rc);
    ck_assert_tr_ok (obs.cancel_rc);
    ck_assert_msg (obs.cancel_ms < tu_ms (1000), "the ack took %lld ms", obs.cancel_ms);
    ck_assert_tr_ok (obs.again_rc);
    ck_assert_msg (obs.gone, "the cancelled child did not exit");
    ck_assert_tr_rc (obs.call_rc, TR_ECLOSED);
    ck_assert_tr_rc (obs.call_error.code, TR_ECLOSED);
    //  We asked it to go: its exit is not a failure (rule 2).
    ck_assert_tr_ok (frame.close_rc);
    ck_assert_int_eq (frame.close_errors, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------

//  Many tasks wait on one run_in_actor result at once; each gets it.
typedef struct {
    tr_portal_t *p;
    int rc;
    char text [16];
} s_result_waiter_t;

static int
s_wait_result (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_result_waiter_t *w = arg;
    const msgpack_object *value;
    const char *text = "";
    w->rc = tr_portal_result (w->p, &value);
    if (w->rc == 0)
        tr_unpack (value, "s", &text);
    snprintf (w->text, sizeof w->text, "%s", text);
    return 0;
}

typedef struct {
    int run_rc, close_rc;
    s_result_waiter_t waiters [20];
} s_many_waiters_t;

static int
s_many_waiters_root (tr_actor_t *self, void *arg)
{
    s_many_waiters_t *obs = arg;
    tr_nursery_t *n;
    tr_portal_t *p;
    tr_nursery_open (self, &n);
    tr_args_t *args = tr_pack ("[i]", 200);
    obs->run_rc = tr_nursery_run_in_actor (n, "sleeper", "sleep", args, &p);
    tr_args_destroy (&args);
    tr_task_t *tasks [20];
    for (int i = 0; i < 20 && obs->run_rc == 0; i++) {
        obs->waiters [i].p = p;
        tr_task_spawn (self, s_wait_result, &obs->waiters [i], &tasks [i]);
    }
    for (int i = 0; i < 20 && obs->run_rc == 0; i++)
        tr_task_join (&tasks [i], NULL);
    obs->close_rc = tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (twenty_tasks_waiting_on_one_result_all_get_it)
{
    tu_subreaper ();
    s_many_waiters_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_many_waiters_root, &obs), 0);
    ck_assert_tr_ok (obs.run_rc);
    for (int i = 0; i < 20; i++) {
        ck_assert_tr_ok (obs.waiters [i].rc);
        ck_assert_str_eq (obs.waiters [i].text, "slept");
    }
    ck_assert_tr_ok (obs.close_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

static Suite *
s_suite (void)
{
    Suite *s = suite_create ("portal");
    TCase *tc = tu_tcase (s, "calls", 30);
    tcase_add_test (tc, arguments_and_results_round_trip_exactly);
    tcase_add_test (tc, many_tasks_call_through_one_portal_at_once_and_each_gets_its_own_result);
    tcase_add_test (tc, tasks_in_a_child_interleave_at_their_checkpoints);
    tcase_add_test (tc, a_thread_export_runs_on_a_worker_thread_and_returns_its_result);
    tcase_add_test (tc, a_run_in_actor_result_is_kept_and_returned_again_without_waiting);
    tcase_add_test (tc, a_failed_run_in_actor_result_is_returned_as_the_same_error_every_time);
    tcase_add_test (tc, twenty_tasks_waiting_on_one_result_all_get_it);

    tc = tu_tcase (s, "errors", 30);
    tcase_add_test (tc, a_remote_error_comes_back_with_its_type_message_origin_and_frames);
    tcase_add_test (tc, an_error_relayed_by_a_child_keeps_its_origin_and_gains_a_hop);
    tcase_add_test (tc, calling_a_function_that_is_not_exported_fails_and_the_child_keeps_serving);
    tcase_add_test (tc, large_arguments_echoed_come_back_byte_for_byte);
    tcase_add_test (tc, oversized_arguments_and_results_fail_with_etoobig_and_the_child_serves_on);

    tc = tu_tcase (s, "cancel", 30);
    tcase_add_test (tc, cancelling_a_caller_cancels_the_remote_call_and_waits_for_its_ack);
    tcase_add_test (tc, cancelling_a_caller_ends_a_remote_to_thread_wait_while_the_thread_runs_on);
    tcase_add_test (tc, a_sleep_in_the_root_ends_at_once_when_its_task_is_cancelled);
    tcase_add_test (tc, a_cancelled_actor_acks_exits_and_refuses_later_calls_as_closed);
    return s;
}

int
main (void)
{
    return tu_run_suite (s_suite (), CK_FORK);
}
