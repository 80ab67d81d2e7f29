/*  =========================================================================
    test_context.c - scenario: contexts and their streams

    The forked test process is the root actor; it opens contexts on
    tests/worker children: values flow both ways in order, either side
    closes first, rule 1 is kept, errors come back boxed before, during
    and after the stream, and a cancel reaches the remote task only and
    is acknowledged. The root records what it sees; the test asserts once
    tr_run returned, and that nothing is left running.
    =========================================================================
*/
#include "testutil.h"
#include <stdbool.h>

static void
s_run_frame (tu_frame_t *frame)
{
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, tu_frame_root, frame);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (frame->start_rc);
    ck_assert_tr_ok (frame->close_rc);
}

//  --------------------------------------------------------------------------
//  Ping-pong both ways in one context

#define PINGS 10000

typedef struct {
    int open_rc, stream_rc, result_rc, close_rc;
    int failed_rc;                  //  the first failing send or recv
    int bad_at;                     //  first value that came back wrong, or -1
    int64_t echoed;                 //  what the callee counted
    char first [32];
} s_pingpong_t;

static int
s_pingpong_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_pingpong_t *obs = arg;
    obs->bad_at = -1;
    tr_context_t *c = NULL;
    const msgpack_object *first;
    tr_args_t *hello = tr_pack ("s", "ready");
    obs->open_rc = tr_portal_open_context (p, "ctx_echo", hello, &c, &first);
    tr_args_destroy (&hello);
    if (obs->open_rc)
        return 0;
    const char *text = "";
    tr_unpack (first, "s", &text);
    snprintf (obs->first, sizeof obs->first, "%s", text);
    tr_stream_t *s;
    obs->stream_rc = tr_context_open_stream (c, &s);
    for (int i = 0; i < PINGS && !obs->stream_rc; i++) {
        const msgpack_object *back;
        int64_t v = -1;
        int rc = tr_stream_send_pack (s, "I", (int64_t) i * 7);
        if (rc == 0)
            rc = tr_stream_recv (s, &back, tu_ms (5000));
        if (rc) {
            obs->failed_rc = rc;
            break;
        }
        if (tr_unpack (back, "I", &v) || v != (int64_t) i * 7) {
            obs->bad_at = i;
            break;
        }
    }
    tr_stream_close (&s);
    const msgpack_object *result;
    obs->result_rc = tr_context_result (c, &result);
    if (obs->result_rc == 0)
        tr_unpack (result, "I", &obs->echoed);
    obs->close_rc = tr_context_close (&c);
    return 0;
}

START_TEST (ten_thousand_values_go_back_and_forth_in_one_context)
{
    tu_subreaper ();
    s_pingpong_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_pingpong_body, .obs = &obs };
    s_run_frame (&frame);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_str_eq (obs.first, "ready");
    ck_assert_tr_ok (obs.stream_rc);
    ck_assert_tr_ok (obs.failed_rc);
    ck_assert_int_eq (obs.bad_at, -1);
    ck_assert_tr_ok (obs.result_rc);
    ck_assert_int_eq (obs.echoed, PINGS);
    ck_assert_tr_ok (obs.close_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  One-way stream, complete and in order

#define ONE_WAY 100000

typedef struct {
    int open_rc, end_rc, result_rc;
    int64_t received, out_of_order, result;
} s_oneway_t;

static int
s_oneway_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_oneway_t *obs = arg;
    tr_context_t *c = NULL;
    tr_args_t *args = tr_pack ("[I]", (int64_t) ONE_WAY);
    obs->open_rc = tr_portal_open_context (p, "ctx_count", args, &c, NULL);
    tr_args_destroy (&args);
    if (obs->open_rc)
        return 0;
    tr_stream_t *s;
    tr_context_open_stream (c, &s);
    const msgpack_object *value;
    int rc;
    while ((rc = tr_stream_recv (s, &value, tu_ms (5000))) == 0) {
        int64_t v = -1;
        tr_unpack (value, "I", &v);
        if (v != obs->received)
            obs->out_of_order++;
        obs->received++;
    }
    obs->end_rc = rc;
    tr_stream_close (&s);
    const msgpack_object *result;
    obs->result_rc = tr_context_result (c, &result);
    if (obs->result_rc == 0)
        tr_unpack (result, "I", &obs->result);
    tr_context_close (&c);
    return 0;
}

START_TEST (a_hundred_thousand_values_arrive_complete_and_in_order)
{
    tu_subreaper ();
    s_oneway_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_oneway_body, .obs = &obs };
    s_run_frame (&frame);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_tr_rc (obs.end_rc, TR_ECLOSED);
    ck_assert_int_eq (obs.received, ONE_WAY);
    ck_assert_int_eq (obs.out_of_order, 0);
    ck_assert_tr_ok (obs.result_rc);
    ck_assert_int_eq (obs.result, ONE_WAY);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Rule 1 and errors at every step

typedef struct {
    const char *how;
    int open_rc, recv_rc, result_rc;
    int values;                     //  read before the stream ended
    tu_err_t open_error, recv_error, result_error;
    int after_rc;                   //  a plain call after it all
} s_bad_t;

static int
s_bad_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_bad_t *obs = arg;
    tr_context_t *c = NULL;
    tr_args_t *args = tr_pack ("[s]", obs->how);
    obs->open_rc = tr_portal_open_context (p, "ctx_bad", args, &c, NULL);
    tr_args_destroy (&args);
    tu_err_copy (&obs->open_error, tr_portal_error (p));
    if (obs->open_rc == 0) {
        tr_stream_t *s;
        tr_context_open_stream (c, &s);
        const msgpack_object *value;
        if (strcmp (obs->how, "after") == 0)
            tr_stream_close (&s);
        else {
            while ((obs->recv_rc = tr_stream_recv (s, &value, tu_ms (5000))) == 0)
                obs->values++;
            tu_err_copy (&obs->recv_error, tr_context_error (c));
            tr_stream_close (&s);
        }
        obs->result_rc = tr_context_result (c, NULL);
        tu_err_copy (&obs->result_error, tr_context_error (c));
        tr_context_close (&c);
    }
    obs->after_rc = tu_call (p, "nil", NULL, NULL);
    return 0;
}

static void
s_bad_run (s_bad_t *obs, const char *how)
{
    tu_subreaper ();
    memset (obs, 0, sizeof *obs);
    obs->how = how;
    tu_frame_t frame = { .body = s_bad_body, .obs = obs };
    s_run_frame (&frame);
    ck_assert_tr_ok (obs->after_rc);
    tu_assert_no_procs_left (2000);
}

static void
s_assert_rule1 (const tu_err_t *err, const char *what)
{
    ck_assert_tr_rc (err->code, TR_EPROTO);
    ck_assert_str_eq (err->type, "ProtocolError");
    ck_assert_msg (strstr (err->message, what), "'%s' does not say '%s'", err->message, what);
    ck_assert_msg (strstr (err->message, "rule 1"), "'%s' does not name rule 1", err->message);
    ck_assert_msg (strstr (err->origin, "kid@"), "origin '%s' is not the child", err->origin);
}

START_TEST (started_twice_is_a_protocol_error_the_caller_sees_boxed)
{
    s_bad_t obs;
    s_bad_run (&obs, "twice");
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_tr_rc (obs.result_rc, TR_EPROTO);
    s_assert_rule1 (&obs.result_error, "tr_ctx_started was called twice");
}
END_TEST

START_TEST (opening_the_stream_before_started_fails_the_open_with_the_rule)
{
    s_bad_t obs;
    s_bad_run (&obs, "stream_first");
    ck_assert_tr_rc (obs.open_rc, TR_EPROTO);
    s_assert_rule1 (&obs.open_error, "tr_ctx_open_stream was called before tr_ctx_started");
}
END_TEST

START_TEST (a_breach_of_rule_one_is_the_answer_even_if_the_function_goes_on)
{
    s_bad_t obs;
    s_bad_run (&obs, "ignore");
    //  It opened the stream first, then started: the caller's open
    //  succeeds, and the result is the breach, not "ignored".
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_tr_rc (obs.result_rc, TR_EPROTO);
    s_assert_rule1 (&obs.result_error, "before tr_ctx_started");
}
END_TEST

START_TEST (a_context_function_that_never_calls_started_fails_the_open)
{
    s_bad_t obs;
    s_bad_run (&obs, "no_started");
    ck_assert_tr_rc (obs.open_rc, TR_EPROTO);
    s_assert_rule1 (&obs.open_error, "returned without calling tr_ctx_started");
}
END_TEST

START_TEST (a_callee_error_before_started_is_what_the_open_returns)
{
    s_bad_t obs;
    s_bad_run (&obs, "before");
    ck_assert_tr_rc (obs.open_rc, TR_EREMOTE);
    ck_assert_str_eq (obs.open_error.type, "ValueError");
    ck_assert_str_eq (obs.open_error.message, "failed before started");
    ck_assert_msg (obs.open_error.frames, "no remote traceback");
}
END_TEST

START_TEST (a_callee_error_mid_stream_comes_after_the_values_it_sent)
{
    s_bad_t obs;
    s_bad_run (&obs, "mid");
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_int_eq (obs.values, 3);
    ck_assert_tr_rc (obs.recv_rc, TR_EREMOTE);
    ck_assert_str_eq (obs.recv_error.type, "ValueError");
    ck_assert_str_eq (obs.recv_error.message, "failed mid-stream");
    ck_assert_tr_rc (obs.result_rc, TR_EREMOTE);
    ck_assert_str_eq (obs.result_error.message, "failed mid-stream");
}
END_TEST

START_TEST (a_callee_error_after_the_stream_is_the_result)
{
    s_bad_t obs;
    s_bad_run (&obs, "after");
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_tr_rc (obs.result_rc, TR_EREMOTE);
    ck_assert_str_eq (obs.result_error.type, "ValueError");
    ck_assert_str_eq (obs.result_error.message, "failed after the stream");
}
END_TEST

//  --------------------------------------------------------------------------

int
main (void)
{
    Suite *suite = suite_create ("context");
    TCase *tc = tu_tcase (suite, "streams", 60);
    tcase_add_test (tc, ten_thousand_values_go_back_and_forth_in_one_context);
    tcase_add_test (tc, a_hundred_thousand_values_arrive_complete_and_in_order);
    tc = tu_tcase (suite, "rule1_and_errors", 30);
    tcase_add_test (tc, started_twice_is_a_protocol_error_the_caller_sees_boxed);
    tcase_add_test (tc, opening_the_stream_before_started_fails_the_open_with_the_rule);
    tcase_add_test (tc, a_breach_of_rule_one_is_the_answer_even_if_the_function_goes_on);
    tcase_add_test (tc, a_context_function_that_never_calls_started_fails_the_open);
    tcase_add_test (tc, a_callee_error_before_started_is_what_the_open_returns);
    tcase_add_test (tc, a_callee_error_mid_stream_comes_after_the_values_it_sent);
    tcase_add_test (tc, a_callee_error_after_the_stream_is_the_result);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
