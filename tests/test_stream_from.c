/*  =========================================================================
    test_stream_from.c - scenario: one-way streams (tr_portal_open_stream_from)

    The forked test process is the root actor; it opens streams from
    functions that tests/worker children export as TR_STREAM: the values
    come complete and in order, then the end, then the result; a failure
    of the callee comes after the values it sent, boxed; the wrong kind is
    refused both ways before anything runs; a close or a cancel reaches
    the remote task only and is acknowledged; a killed child ends the
    stream at once; credit bounds the producer. The root records what it
    sees; the test asserts once tr_run returned, and that nothing is left
    running.
    =========================================================================
*/
#include "testutil.h"
#include "teststream.h"
#include <signal.h>
#include <stdbool.h>

//  Open a stream from fn(args) (args taken).
static int
s_open (tr_portal_t *p, const char *fn, tr_args_t *args, tr_stream_t **s)
{
    int rc = tr_portal_open_stream_from (p, fn, args, s);
    tr_args_destroy (&args);
    return rc;
}

//  --------------------------------------------------------------------------
//  Complete and in order, then the end, then the result

#define COUNTED 100000

typedef struct {
    int open_rc, end_rc, again_rc, result_rc, result_again_rc, close_rc;
    int64_t received, out_of_order, result;
    bool stream_null;               //  after the close
} s_count_t;

static int
s_count_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_count_t *obs = arg;
    tr_stream_t *s;
    obs->open_rc = s_open (p, "stream_count", tr_pack ("[I]", (int64_t) COUNTED), &s);
    if (obs->open_rc)
        return 0;
    obs->end_rc = tu_stream_count (s, &obs->received, &obs->out_of_order);
    const msgpack_object *value;
    obs->again_rc = tr_stream_recv (s, &value, 0);
    const msgpack_object *result;
    obs->result_rc = tr_stream_result (s, &result);
    if (obs->result_rc == 0)
        tr_unpack (result, "I", &obs->result);
    obs->result_again_rc = tr_stream_result (s, NULL);
    obs->close_rc = tr_stream_close (&s);
    obs->stream_null = s == NULL;
    return 0;
}

START_TEST (a_hundred_thousand_values_arrive_in_order_then_the_end_then_the_result)
{
    tu_subreaper ();
    s_count_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_count_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_int_eq (obs.received, COUNTED);
    ck_assert_int_eq (obs.out_of_order, 0);
    ck_assert_tr_rc (obs.end_rc, TR_ECLOSED);
    ck_assert_tr_rc (obs.again_rc, TR_ECLOSED);
    ck_assert_tr_ok (obs.result_rc);
    ck_assert_int_eq (obs.result, COUNTED);
    ck_assert_tr_ok (obs.result_again_rc);
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_msg (obs.stream_null, "the close left the stream set");
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  The callee fails: after the values it sent, boxed

typedef struct {
    int k;
    int open_rc, values, recv_rc, result_rc;
    bool in_order;
    tu_err_t recv_error, result_error;
    int after_rc;                   //  a plain call after it all
} s_fail_t;

static int
s_fail_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_fail_t *obs = arg;
    tr_stream_t *s;
    obs->open_rc = s_open (p, "stream_fail_after", tr_pack ("[i]", obs->k), &s);
    if (obs->open_rc == 0) {
        const msgpack_object *value;
        obs->in_order = true;
        while ((obs->recv_rc = tr_stream_recv (s, &value, tu_ms (5000))) == 0) {
            int v = -1;
            if (tr_unpack (value, "i", &v) || v != obs->values)
                obs->in_order = false;
            obs->values++;
        }
        tu_err_copy (&obs->recv_error, tr_stream_error (s));
        obs->result_rc = tr_stream_result (s, NULL);
        tu_err_copy (&obs->result_error, tr_stream_error (s));
        tr_stream_close (&s);
    }
    obs->after_rc = tu_call (p, "nil", NULL, NULL);
    return 0;
}

static void
s_fail_check (int k)
{
    tu_subreaper ();
    s_fail_t obs;
    memset (&obs, 0, sizeof obs);
    obs.k = k;
    tu_frame_t frame = { .body = s_fail_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    char message [64];
    snprintf (message, sizeof message, "failed after %d values", k);
    //  The runtime started it: the open succeeds, whatever the function
    //  does next.
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_int_eq (obs.values, k);
    ck_assert_msg (obs.in_order, "values came out of order");
    ck_assert_tr_rc (obs.recv_rc, TR_EREMOTE);
    ck_assert_tr_rc (obs.recv_error.code, TR_EREMOTE);
    ck_assert_str_eq (obs.recv_error.type, "ValueError");
    ck_assert_str_eq (obs.recv_error.message, message);
    ck_assert_msg (strstr (obs.recv_error.origin, "kid@"), "origin '%s'", obs.recv_error.origin);
    ck_assert_msg (obs.recv_error.frames, "no remote traceback");
    ck_assert_tr_rc (obs.result_rc, TR_EREMOTE);
    ck_assert_str_eq (obs.result_error.type, "ValueError");
    ck_assert_str_eq (obs.result_error.message, message);
    ck_assert_tr_ok (obs.after_rc);
    tu_assert_no_procs_left (2000);
}

START_TEST (a_callee_error_mid_stream_comes_after_every_value_it_sent)
{
    s_fail_check (5);
}
END_TEST

START_TEST (a_callee_that_fails_before_any_value_ends_the_stream_with_its_error)
{
    s_fail_check (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  Refused before anything runs: an unknown function, the wrong kind

typedef struct {
    int unknown_rc, stream_as_call_rc, stream_as_context_rc;
    int call_as_stream_rc, context_as_stream_rc, thread_stream_rc;
    tu_err_t unknown, stream_as_call, stream_as_context;
    tu_err_t call_as_stream, context_as_stream, thread_stream;
    bool all_null;
    int after_rc, counters_rc, cancels, sleeping;
} s_refused_t;

static int
s_refused_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_refused_t *obs = arg;
    tr_stream_t *s;
    obs->all_null = true;
    obs->unknown_rc = s_open (p, "no_such_function", NULL, &s);
    tu_err_copy (&obs->unknown, tr_portal_error (p));
    obs->all_null = obs->all_null && !s;
    obs->call_as_stream_rc = s_open (p, "nil", NULL, &s);
    tu_err_copy (&obs->call_as_stream, tr_portal_error (p));
    obs->all_null = obs->all_null && !s;
    obs->context_as_stream_rc = s_open (p, "ctx_echo", NULL, &s);
    tu_err_copy (&obs->context_as_stream, tr_portal_error (p));
    obs->all_null = obs->all_null && !s;
    obs->thread_stream_rc = s_open (p, "a_thread_stream", NULL, &s);
    tu_err_copy (&obs->thread_stream, tr_portal_error (p));
    obs->all_null = obs->all_null && !s;
    obs->stream_as_call_rc = tu_call (p, "stream_count", tr_pack ("[i]", 3), NULL);
    tu_err_copy (&obs->stream_as_call, tr_portal_error (p));
    tr_context_t *c = NULL;
    tr_args_t *args = tr_pack ("[i]", 3);
    obs->stream_as_context_rc = tr_portal_open_context (p, "stream_count", args, &c, NULL);
    tr_args_destroy (&args);
    tu_err_copy (&obs->stream_as_context, tr_portal_error (p));
    obs->all_null = obs->all_null && !c;
    obs->after_rc = tu_call (p, "nil", NULL, NULL);
    //  Nothing ran: no stream function was cancelled or is waiting.
    obs->counters_rc = tu_cancels (p, &obs->cancels, &obs->sleeping);
    return 0;
}

static void
s_assert_names (const tu_err_t *err, int rc, const char *fn, const char *what)
{
    ck_assert_tr_rc (rc, TR_EPROTO);
    ck_assert_tr_rc (err->code, TR_EPROTO);
    ck_assert_str_eq (err->type, "ProtocolError");
    ck_assert_msg (strstr (err->message, fn), "'%s' does not name '%s'", err->message, fn);
    ck_assert_msg (strstr (err->message, what), "'%s' does not say '%s'", err->message, what);
}

START_TEST (an_unknown_function_or_the_wrong_kind_is_refused_both_ways_before_it_runs)
{
    tu_subreaper ();
    s_refused_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_refused_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    ck_assert_tr_rc (obs.unknown_rc, TR_ENOTEXPOSED);
    ck_assert_str_eq (obs.unknown.type, "NotExposed");
    ck_assert_msg (strstr (obs.unknown.message, "no_such_function"), "'%s'", obs.unknown.message);
    s_assert_names (&obs.call_as_stream, obs.call_as_stream_rc, "'nil'",
                    "is a plain call, not a one-way stream: call it with tr_portal_run");
    s_assert_names (&obs.context_as_stream, obs.context_as_stream_rc, "'ctx_echo'",
                    "is a context function, not a one-way stream: open it with "
                    "tr_portal_open_context");
    s_assert_names (&obs.thread_stream, obs.thread_stream_rc, "'a_thread_stream'", "TR_THREAD");
    s_assert_names (&obs.stream_as_call, obs.stream_as_call_rc, "'stream_count'",
                    "is a one-way stream, not a plain call: open it with "
                    "tr_portal_open_stream_from");
    s_assert_names (&obs.stream_as_context, obs.stream_as_context_rc, "'stream_count'",
                    "is a one-way stream, not a context function: open it with "
                    "tr_portal_open_stream_from");
    ck_assert_msg (obs.all_null, "a refused open left a stream or a context");
    ck_assert_tr_ok (obs.after_rc);
    ck_assert_tr_ok (obs.counters_rc);
    ck_assert_int_eq (obs.cancels, 0);
    ck_assert_int_eq (obs.sleeping, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Rule 1 for a stream function; misuse on the caller's side

typedef struct {
    int open_rc, values, recv_rc, result_rc, after_rc;
    tu_err_t recv_error, result_error;
    int send_rc, send_pack_rc;
    int ctx_result_rc, ctx_close_rc;
    bool ctx_error_null, null_error_null;
    int null_result_rc;
} s_rule_t;

static int
s_rule_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_rule_t *obs = arg;
    tr_stream_t *s;
    obs->open_rc = s_open (p, "stream_starts", NULL, &s);
    if (obs->open_rc == 0) {
        //  The caller's side of a one-way stream only receives.
        tr_args_t *value = tr_pack ("i", 1);
        obs->send_rc = tr_stream_send (s, value);
        tr_args_destroy (&value);
        obs->send_pack_rc = tr_stream_send_pack (s, "i", 1);
        const msgpack_object *got;
        while ((obs->recv_rc = tr_stream_recv (s, &got, tu_ms (5000))) == 0)
            obs->values++;
        tu_err_copy (&obs->recv_error, tr_stream_error (s));
        obs->result_rc = tr_stream_result (s, NULL);
        tu_err_copy (&obs->result_error, tr_stream_error (s));
        tr_stream_close (&s);
    }
    //  A context's stream has no result of its own, nor an error.
    tr_context_t *c;
    if (tr_portal_open_context (p, "ctx_echo", NULL, &c, NULL) == 0) {
        tr_stream_t *cs;
        tr_context_open_stream (c, &cs);
        obs->ctx_result_rc = tr_stream_result (cs, NULL);
        obs->ctx_error_null = tr_stream_error (cs) == NULL;
        obs->ctx_close_rc = tr_context_close (&c);
    }
    obs->null_result_rc = tr_stream_result (NULL, NULL);
    obs->null_error_null = tr_stream_error (NULL) == NULL;
    obs->after_rc = tu_call (p, "nil", NULL, NULL);
    return 0;
}

START_TEST (started_in_a_stream_function_is_a_protocol_error_the_caller_sees_boxed)
{
    tu_subreaper ();
    s_rule_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_rule_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_tr_rc (obs.send_rc, TR_EINVAL);
    ck_assert_tr_rc (obs.send_pack_rc, TR_EINVAL);
    //  The value it sent after the breach comes; then the breach, which
    //  is the answer whatever the function returned.
    ck_assert_int_eq (obs.values, 1);
    ck_assert_tr_rc (obs.recv_rc, TR_EPROTO);
    ck_assert_str_eq (obs.recv_error.type, "ProtocolError");
    ck_assert_msg (strstr (obs.recv_error.message, "tr_ctx_started was called in stream "
                                                   "function 'stream_starts'"),
                   "'%s'", obs.recv_error.message);
    ck_assert_msg (strstr (obs.recv_error.message, "started by the runtime"),
                   "'%s'", obs.recv_error.message);
    ck_assert_msg (strstr (obs.recv_error.origin, "kid@"), "origin '%s'", obs.recv_error.origin);
    ck_assert_msg (obs.recv_error.frames, "no remote traceback");
    ck_assert_tr_rc (obs.result_rc, TR_EPROTO);
    ck_assert_str_eq (obs.result_error.message, obs.recv_error.message);
    ck_assert_tr_rc (obs.ctx_result_rc, TR_EINVAL);
    ck_assert_msg (obs.ctx_error_null, "a context's stream has an error of its own");
    ck_assert_tr_ok (obs.ctx_close_rc);
    ck_assert_tr_rc (obs.null_result_rc, TR_EINVAL);
    ck_assert_msg (obs.null_error_null, "a NULL stream has an error");
    ck_assert_tr_ok (obs.after_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  The caller closes early, while the callee waits in send

typedef struct {
    int open_rc, produced, close_rc;
    bool parked, stream_null;
    long long close_ms;
    int counters_rc, cancels, sleeping;
    int second_rc, second_values, second_end_rc, second_result_rc;
    int64_t second_result;
    int call_rc;
} s_early_t;

static int
s_early_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_early_t *obs = arg;
    tr_stream_t *s;
    obs->open_rc = s_open (p, "stream_flood", NULL, &s);
    if (obs->open_rc)
        return 0;
    //  Nobody reads, so no credit is granted beyond the 64 every stream
    //  starts with: the producer waits in send after those.
    obs->parked = tu_wait_produced (ctx, p, 64, &obs->produced);
    long long start = tu_now_ms ();
    obs->close_rc = tr_stream_close (&s);
    obs->close_ms = tu_now_ms () - start;
    obs->stream_null = s == NULL;
    //  The close waited for the ack: the callee is gone already.
    obs->counters_rc = tu_cancels (p, &obs->cancels, &obs->sleeping);
    //  The actor serves the next stream, and a plain call.
    obs->second_rc = s_open (p, "stream_count", tr_pack ("[i]", 10), &s);
    if (obs->second_rc == 0) {
        const msgpack_object *value;
        while ((obs->second_end_rc = tr_stream_recv (s, &value, tu_ms (5000))) == 0)
            obs->second_values++;
        const msgpack_object *result;
        obs->second_result_rc = tr_stream_result (s, &result);
        if (obs->second_result_rc == 0)
            tr_unpack (result, "I", &obs->second_result);
        tr_stream_close (&s);
    }
    obs->call_rc = tu_call (p, "nil", NULL, NULL);
    return 0;
}

START_TEST (closing_early_cancels_a_callee_waiting_in_send_and_the_actor_serves_on)
{
    tu_subreaper ();
    s_early_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_early_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_msg (obs.parked, "the producer never sent its first 64 values");
    ck_assert_int_eq (obs.produced, 64);
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_msg (obs.stream_null, "the close left the stream set");
    ck_assert_msg (obs.close_ms < tu_ms (1000), "the close took %lld ms", obs.close_ms);
    ck_assert_tr_ok (obs.counters_rc);
    ck_assert_int_eq (obs.cancels, 1);
    ck_assert_int_eq (obs.sleeping, 0);
    ck_assert_tr_ok (obs.second_rc);
    ck_assert_int_eq (obs.second_values, 10);
    ck_assert_tr_rc (obs.second_end_rc, TR_ECLOSED);
    ck_assert_tr_ok (obs.second_result_rc);
    ck_assert_int_eq (obs.second_result, 10);
    ck_assert_tr_ok (obs.call_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  The calling task is cancelled while it waits in receive

typedef struct {
    tr_portal_t *p;
    int open_rc, recv_rc;
} s_reader_t;

//  Opens a quiet stream and waits in receive until cancelled; returns
//  with the stream open.
static int
s_reader (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_reader_t *self = arg;
    tr_stream_t *s;
    if ((self->open_rc = tr_portal_open_stream_from (self->p, "stream_quiet", NULL, &s)))
        return self->open_rc;
    const msgpack_object *value;
    self->recv_rc = tr_stream_recv (s, &value, -1);
    return self->recv_rc;
}

typedef struct {
    s_reader_t reader;
    bool parked;
    int join_rc, result;
    long long join_ms;
    int counters_rc, cancels, sleeping;
} s_cancelled_t;

static int
s_cancelled_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_cancelled_t *obs = arg;
    obs->reader.p = p;
    tr_task_t *task;
    tr_task_spawn (tr_ctx_actor (ctx), s_reader, &obs->reader, &task);
    obs->parked = tu_wait_sleeping (ctx, p, 1, 5000);
    long long start = tu_now_ms ();
    tr_task_cancel (task);
    obs->join_rc = tr_task_join (&task, &obs->result);
    obs->join_ms = tu_now_ms () - start;
    //  The task's end closed the stream it left open: the remote task was
    //  cancelled and its ack awaited before the join returned.
    obs->counters_rc = tu_cancels (p, &obs->cancels, &obs->sleeping);
    return 0;
}

START_TEST (a_task_cancelled_in_receive_cancels_the_remote_task_with_an_ack)
{
    tu_subreaper ();
    s_cancelled_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_cancelled_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    ck_assert_tr_ok (obs.reader.open_rc);
    ck_assert_msg (obs.parked, "the callee never waited");
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_tr_rc (obs.result, TR_ECANCELED);
    ck_assert_tr_rc (obs.reader.recv_rc, TR_ECANCELED);
    ck_assert_msg (obs.join_ms < tu_ms (1000), "the cancel took %lld ms", obs.join_ms);
    ck_assert_tr_ok (obs.counters_rc);
    ck_assert_int_eq (obs.cancels, 1);
    ck_assert_int_eq (obs.sleeping, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A child killed mid-stream

static int
s_killed_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    tu_stream_killed_t *obs = arg;
    tr_stream_t *s;
    obs->open_rc = s_open (p, "stream_count", tr_pack ("[I]", (int64_t) 1 << 40), &s);
    if (obs->open_rc)
        return 0;
    tu_stream_killed_read (p, s, obs);
    tu_err_copy (&obs->recv_error, tr_stream_error (s));
    obs->result_rc = tr_stream_result (s, NULL);
    tu_err_copy (&obs->result_error, tr_stream_error (s));
    tr_stream_close (&s);
    return 0;
}

START_TEST (a_child_killed_mid_stream_ends_the_receive_with_crashed_at_once)
{
    tu_subreaper ();
    tu_stream_killed_t obs;
    tu_stream_killed_run (s_killed_body, &obs);
    ck_assert_int_eq (obs.result_error.signal, SIGKILL);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Flow control: a slow consumer bounds the producer

#define BESIDE 20000

typedef struct {
    int open_rc;
    tu_window_t window;
    int beside_rc, beside_values;
    int close_rc;
} s_flow_t;

static int
s_flow_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_flow_t *obs = arg;
    tr_stream_t *flood;
    obs->open_rc = s_open (p, "stream_flood", NULL, &flood);
    if (obs->open_rc)
        return 0;
    //  Read a few hundred, then no more: the producer stops.
    tu_window_fill (ctx, p, flood, &obs->window);
    //  Another stream of 20,000 values goes by on the same channel
    //  meanwhile; the stalled one stays where it is.
    tr_stream_t *beside;
    obs->beside_rc = s_open (p, "stream_count", tr_pack ("[i]", BESIDE), &beside);
    if (obs->beside_rc == 0) {
        const msgpack_object *value;
        while (tr_stream_recv (beside, &value, tu_ms (5000)) == 0)
            obs->beside_values++;
        obs->beside_rc = tr_stream_result (beside, NULL);
        tr_stream_close (&beside);
    }
    tu_window_recount (ctx, p, &obs->window);
    obs->close_rc = tr_stream_close (&flood);
    return 0;
}

START_TEST (a_slow_consumer_keeps_the_producer_within_its_window)
{
    tu_subreaper ();
    s_flow_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_flow_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    ck_assert_tr_ok (obs.open_rc);
    tu_window_check (&obs.window);
    ck_assert_tr_ok (obs.beside_rc);
    ck_assert_int_eq (obs.beside_values, BESIDE);
    ck_assert_tr_ok (obs.close_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------

int
main (void)
{
    Suite *suite = suite_create ("stream_from");
    TCase *tc = tu_tcase (suite, "values_and_errors", 60);
    tcase_add_test (tc, a_hundred_thousand_values_arrive_in_order_then_the_end_then_the_result);
    tcase_add_test (tc, a_callee_error_mid_stream_comes_after_every_value_it_sent);
    tcase_add_test (tc, a_callee_that_fails_before_any_value_ends_the_stream_with_its_error);
    tcase_add_test (tc, an_unknown_function_or_the_wrong_kind_is_refused_both_ways_before_it_runs);
    tcase_add_test (tc, started_in_a_stream_function_is_a_protocol_error_the_caller_sees_boxed);
    tc = tu_tcase (suite, "close_cancel_crash_flow", 60);
    tcase_add_test (tc, closing_early_cancels_a_callee_waiting_in_send_and_the_actor_serves_on);
    tcase_add_test (tc, a_task_cancelled_in_receive_cancels_the_remote_task_with_an_ack);
    tcase_add_test (tc, a_child_killed_mid_stream_ends_the_receive_with_crashed_at_once);
    tcase_add_test (tc, a_slow_consumer_keeps_the_producer_within_its_window);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
