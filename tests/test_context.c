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
#include "teststream.h"
#include <signal.h>
#include <stdbool.h>

//  Open a context with args (taken).
static int
s_open (tr_portal_t *p, const char *fn, tr_args_t *args, tr_context_t **c,
        const msgpack_object **first)
{
    int rc = tr_portal_open_context (p, fn, args, c, first);
    tr_args_destroy (&args);
    return rc;
}

//  Gather with args (taken).
static int
s_gather (tr_portal_t **portals, size_t n, const char *fn, tr_args_t *args,
          tr_context_t **contexts, const msgpack_object **firsts)
{
    int rc = tr_contexts_open (portals, n, fn, args, contexts, firsts);
    tr_args_destroy (&args);
    return rc;
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

//  Open a context on the child's "ctx_echo", its first value "ready".
static int
s_echo_open (tr_portal_t *p, tr_context_t **c, const msgpack_object **first)
{
    tr_args_t *hello = tr_pack ("s", "ready");
    int rc = tr_portal_open_context (p, "ctx_echo", hello, c, first);
    tr_args_destroy (&hello);
    return rc;
}

//  Read the echo's result (how many it echoed) and close its context;
//  returns the close's rc.
static int
s_echo_end (tr_context_t **c, int *result_rc, int64_t *echoed)
{
    const msgpack_object *result;
    *result_rc = tr_context_result (*c, &result);
    if (*result_rc == 0)
        tr_unpack (result, "I", echoed);
    return tr_context_close (c);
}

static int
s_pingpong_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_pingpong_t *obs = arg;
    obs->bad_at = -1;
    tr_context_t *c = NULL;
    const msgpack_object *first;
    obs->open_rc = s_echo_open (p, &c, &first);
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
    obs->close_rc = s_echo_end (&c, &obs->result_rc, &obs->echoed);
    return 0;
}

START_TEST (ten_thousand_values_go_back_and_forth_in_one_context)
{
    tu_subreaper ();
    s_pingpong_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_pingpong_body, .obs = &obs };
    tu_run_frame_clean (&frame);
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
//  A receive that times out: never sooner than asked, and the stream stays
//  open for the values that come after

#define RECV_WAIT_MS 5

typedef struct {
    int open_rc, stream_rc, waited_rc, no_wait_rc, echo_rc, result_rc, close_rc;
    int64_t waited_us, echoed, value;
} s_recv_timeout_t;

static int
s_recv_timeout_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_recv_timeout_t *obs = arg;
    tr_context_t *c = NULL;
    obs->open_rc = s_echo_open (p, &c, NULL);
    if (obs->open_rc)
        return 0;
    tr_stream_t *s;
    if ((obs->stream_rc = tr_context_open_stream (c, &s)) == 0) {
        const msgpack_object *value;
        int64_t start = tri_now_us ();
        obs->waited_rc = tr_stream_recv (s, &value, RECV_WAIT_MS);
        obs->waited_us = tri_now_us () - start;
        obs->no_wait_rc = tr_stream_recv (s, &value, 0);
        obs->echo_rc = tr_stream_send_pack (s, "I", (int64_t) 42);
        if (obs->echo_rc == 0)
            obs->echo_rc = tr_stream_recv (s, &value, tu_ms (5000));
        if (obs->echo_rc == 0)
            tr_unpack (value, "I", &obs->value);
        tr_stream_close (&s);
    }
    obs->close_rc = s_echo_end (&c, &obs->result_rc, &obs->echoed);
    return 0;
}

START_TEST (a_receive_that_times_out_leaves_the_stream_open)
{
    tu_subreaper ();
    s_recv_timeout_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_recv_timeout_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_tr_ok (obs.stream_rc);
    ck_assert_tr_rc (obs.waited_rc, TR_ETIMEDOUT);
    ck_assert_int_ge (obs.waited_us, RECV_WAIT_MS * 1000);
    ck_assert_int_lt (obs.waited_us, (int64_t) tu_ms (1000) * 1000);
    ck_assert_tr_rc (obs.no_wait_rc, TR_ETIMEDOUT);
    ck_assert_tr_ok (obs.echo_rc);
    ck_assert_int_eq (obs.value, 42);
    ck_assert_tr_ok (obs.result_rc);
    ck_assert_int_eq (obs.echoed, 1);
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
    obs->end_rc = tu_stream_count (s, &obs->received, &obs->out_of_order);
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
    tu_run_frame_clean (&frame);
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
    tu_run_frame_clean (&frame);
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
//  A value sent alone is not held for the next

typedef struct {
    int open_rc, first_rc, second_rc;
    char first [16], second [16];
    long long first_ms, second_ms;
} s_alone_t;

static int
s_alone_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_alone_t *obs = arg;
    tr_context_t *c;
    obs->open_rc = s_open (p, "ctx_then_compute", tr_pack ("[i]", 400), &c, NULL);
    if (obs->open_rc)
        return 0;
    long long start = tu_now_ms ();
    tr_stream_t *s;
    tr_context_open_stream (c, &s);
    const msgpack_object *value;
    const char *text;
    if ((obs->first_rc = tr_stream_recv (s, &value, tu_ms (5000))) == 0
    &&  tr_unpack (value, "s", &text) == 0)
        snprintf (obs->first, sizeof obs->first, "%s", text);
    obs->first_ms = tu_now_ms () - start;
    if ((obs->second_rc = tr_stream_recv (s, &value, tu_ms (5000))) == 0
    &&  tr_unpack (value, "s", &text) == 0)
        snprintf (obs->second, sizeof obs->second, "%s", text);
    obs->second_ms = tu_now_ms () - start;
    tr_context_close (&c);
    return 0;
}

START_TEST (a_value_sent_before_a_long_computation_arrives_before_it_ends)
{
    tu_subreaper ();
    s_alone_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_alone_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_tr_ok (obs.first_rc);
    ck_assert_str_eq (obs.first, "first");
    ck_assert_tr_ok (obs.second_rc);
    ck_assert_str_eq (obs.second, "second");
    //  The callee computes for 400 ms between the two without parking:
    //  the first left when it was sent, not with the second.
    ck_assert_msg (obs.second_ms - obs.first_ms >= 200, "the first value came at %lld ms, "
                   "the second at %lld ms: held together", obs.first_ms, obs.second_ms);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Either side closes first; the context stays open for the result

typedef struct {
    //  the caller closes first
    int echo_rc, echo_result_rc;
    int64_t echoed;
    //  the callee closes first
    int count_rc, values, end_rc, send_after_rc, count_result_rc;
    int64_t counted;
    //  the callee returns without closing
    int open_rc, end2_rc, result2_rc;
    int values2;
} s_close_t;

static int
s_close_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_close_t *obs = arg;
    tr_context_t *c;
    tr_stream_t *s;
    const msgpack_object *value;
    obs->echo_rc = tr_portal_open_context (p, "ctx_echo", NULL, &c, NULL);
    if (obs->echo_rc == 0) {
        tr_context_open_stream (c, &s);
        for (int i = 0; i < 3; i++) {
            tr_stream_send_pack (s, "i", i);
            tr_stream_recv (s, &value, tu_ms (5000));
        }
        tr_stream_close (&s);
        obs->echo_result_rc = tr_context_result (c, &value);
        if (obs->echo_result_rc == 0)
            tr_unpack (value, "I", &obs->echoed);
        tr_context_close (&c);
    }
    obs->count_rc = s_open (p, "ctx_count", tr_pack ("[i]", 5), &c, NULL);
    if (obs->count_rc == 0) {
        tr_context_open_stream (c, &s);
        while ((obs->end_rc = tr_stream_recv (s, &value, tu_ms (5000))) == 0)
            obs->values++;
        obs->send_after_rc = tr_stream_send_pack (s, "s", "too late");
        tr_stream_close (&s);
        obs->count_result_rc = tr_context_result (c, &value);
        if (obs->count_result_rc == 0)
            tr_unpack (value, "I", &obs->counted);
        tr_context_close (&c);
    }
    obs->open_rc = s_open (p, "ctx_count", tr_pack ("[i b]", 4, false), &c, NULL);
    if (obs->open_rc == 0) {
        tr_context_open_stream (c, &s);
        while ((obs->end2_rc = tr_stream_recv (s, &value, tu_ms (5000))) == 0)
            obs->values2++;
        tr_stream_close (&s);
        obs->result2_rc = tr_context_result (c, NULL);
        tr_context_close (&c);
    }
    return 0;
}

START_TEST (either_side_may_close_first_and_the_result_still_comes)
{
    tu_subreaper ();
    s_close_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_close_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    ck_assert_tr_ok (obs.echo_rc);
    ck_assert_tr_ok (obs.echo_result_rc);
    ck_assert_int_eq (obs.echoed, 3);
    ck_assert_tr_ok (obs.count_rc);
    ck_assert_int_eq (obs.values, 5);
    ck_assert_tr_rc (obs.end_rc, TR_ECLOSED);
    ck_assert_tr_rc (obs.send_after_rc, TR_ECLOSED);
    ck_assert_tr_ok (obs.count_result_rc);
    ck_assert_int_eq (obs.counted, 5);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_int_eq (obs.values2, 4);
    ck_assert_tr_rc (obs.end2_rc, TR_ECLOSED);
    ck_assert_tr_ok (obs.result2_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Cancel: the remote task only, acknowledged, the actor goes on serving

typedef struct {
    const char *fn;                 //  ctx_echo (parks in recv), ctx_flood (in send)
    int open_rc, parked, cancel_rc, result_rc, recv_rc;
    tu_err_t result_error;
    long long cancel_ms;
    int produced_rc, produced;      //  ctx_flood: sent before it parked
    int cancels, sleeping, counters_rc;
    int second_rc, second_result_rc;
    int64_t second_echoed;
} s_cancel_t;

static int
s_cancel_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_cancel_t *obs = arg;
    tr_context_t *c;
    obs->open_rc = tr_portal_open_context (p, obs->fn, NULL, &c, NULL);
    if (obs->open_rc)
        return 0;
    tr_stream_t *s;
    tr_context_open_stream (c, &s);
    if (strcmp (obs->fn, "ctx_flood") == 0) {
        //  Nobody reads, so no credit is granted beyond the 64 every
        //  stream starts with: the producer waits in send after those.
        obs->parked = tu_wait_produced (ctx, p, 64, &obs->produced);
    }
    else
        obs->parked = tu_wait_sleeping (ctx, p, 1, 5000);
    long long start = tu_now_ms ();
    obs->cancel_rc = tr_context_cancel (c);
    obs->cancel_ms = tu_now_ms () - start;
    obs->result_rc = tr_context_result (c, NULL);
    tu_err_copy (&obs->result_error, tr_context_error (c));
    const msgpack_object *value;
    //  What was sent before the cancel may still be read; then it ends.
    while ((obs->recv_rc = tr_stream_recv (s, &value, 0)) == 0)
        ;
    tr_context_close (&c);
    obs->counters_rc = tu_cancels (p, &obs->cancels, &obs->sleeping);
    //  The actor serves the next context.
    obs->second_rc = tr_portal_open_context (p, "ctx_echo", NULL, &c, NULL);
    if (obs->second_rc == 0) {
        tr_context_open_stream (c, &s);
        tr_stream_send_pack (s, "s", "again");
        tr_stream_recv (s, &value, tu_ms (5000));
        tr_stream_close (&s);
        obs->second_result_rc = tr_context_result (c, &value);
        if (obs->second_result_rc == 0)
            tr_unpack (value, "I", &obs->second_echoed);
        tr_context_close (&c);
    }
    return 0;
}

static void
s_cancel_check (const char *fn)
{
    tu_subreaper ();
    s_cancel_t obs;
    memset (&obs, 0, sizeof obs);
    obs.fn = fn;
    tu_frame_t frame = { .body = s_cancel_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_msg (obs.parked, "the callee never parked");
    ck_assert_tr_ok (obs.cancel_rc);
    ck_assert_msg (obs.cancel_ms < tu_ms (1000), "the ack took %lld ms", obs.cancel_ms);
    ck_assert_tr_rc (obs.result_rc, TR_ECANCELED);
    ck_assert_str_eq (obs.result_error.type, "ContextCancelled");
    ck_assert_tr_rc (obs.recv_rc, TR_ECANCELED);
    ck_assert_tr_ok (obs.counters_rc);
    ck_assert_int_eq (obs.cancels, 1);
    ck_assert_int_eq (obs.sleeping, 0);
    ck_assert_tr_ok (obs.second_rc);
    ck_assert_tr_ok (obs.second_result_rc);
    ck_assert_int_eq (obs.second_echoed, 1);
    tu_assert_no_procs_left (2000);
}

START_TEST (cancelling_a_context_whose_callee_waits_in_receive_is_acknowledged)
{
    s_cancel_check ("ctx_echo");
}
END_TEST

START_TEST (cancelling_a_context_whose_callee_waits_in_send_is_acknowledged)
{
    s_cancel_check ("ctx_flood");
}
END_TEST

//  --------------------------------------------------------------------------
//  A caller's task that is cancelled, or fails, with a context open

typedef struct {
    tr_portal_t *p;
    int open_rc, recv_rc;
    bool fail;                      //  return an error instead of waiting
} s_leaver_t;

//  Opens a context and leaves it open: waits in receive until cancelled,
//  or fails at once.
static int
s_leaver (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_leaver_t *self = arg;
    tr_context_t *c;
    if ((self->open_rc = tr_portal_open_context (self->p, "ctx_echo", NULL, &c, NULL)))
        return self->open_rc;
    if (self->fail)
        return TR_EINVAL;
    tr_stream_t *s;
    tr_context_open_stream (c, &s);
    const msgpack_object *value;
    self->recv_rc = tr_stream_recv (s, &value, -1);
    return self->recv_rc;
}

typedef struct {
    s_leaver_t waiting, failing;
    int parked_rc, join_rc [2], result [2];
    int counters_rc, cancels, sleeping;
    bool parked;
} s_left_t;

static int
s_left_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_left_t *obs = arg;
    obs->waiting.p = obs->failing.p = p;
    obs->failing.fail = true;
    tr_task_t *waiting, *failing;
    tr_task_spawn (tr_ctx_actor (ctx), s_leaver, &obs->waiting, &waiting);
    tr_task_spawn (tr_ctx_actor (ctx), s_leaver, &obs->failing, &failing);
    obs->join_rc [1] = tr_task_join (&failing, &obs->result [1]);
    //  Both callees waited in receive; the failing task's one is gone.
    obs->parked = tu_wait_sleeping (ctx, p, 1, 5000);
    tr_task_cancel (waiting);
    obs->join_rc [0] = tr_task_join (&waiting, &obs->result [0]);
    obs->counters_rc = tu_cancels (p, &obs->cancels, &obs->sleeping);
    return 0;
}

START_TEST (a_task_that_ends_with_a_context_open_cancels_the_remote_task)
{
    tu_subreaper ();
    s_left_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_left_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    ck_assert_tr_ok (obs.waiting.open_rc);
    ck_assert_tr_ok (obs.failing.open_rc);
    ck_assert_tr_ok (obs.join_rc [1]);
    ck_assert_tr_rc (obs.result [1], TR_EINVAL);
    ck_assert_msg (obs.parked, "the remaining callee is not waiting in receive");
    ck_assert_tr_ok (obs.join_rc [0]);
    ck_assert_tr_rc (obs.result [0], TR_ECANCELED);
    ck_assert_tr_rc (obs.waiting.recv_rc, TR_ECANCELED);
    //  Each remote task was cancelled when its caller's task ended, and
    //  the cancel was acknowledged before the task was gone.
    ck_assert_tr_ok (obs.counters_rc);
    ck_assert_int_eq (obs.cancels, 2);
    ck_assert_int_eq (obs.sleeping, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A context closed while another task waits on it

typedef struct {
    tr_context_t *c;
    int recv_rc, result_rc;
    bool returned;
} s_borrower_t;

//  Waits on a context another task owns: its stream, then its result.
static int
s_borrower (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_borrower_t *self = arg;
    tr_stream_t *s;
    tr_context_open_stream (self->c, &s);
    const msgpack_object *value;
    self->recv_rc = tr_stream_recv (s, &value, -1);
    self->result_rc = tr_context_result (self->c, NULL);
    self->returned = true;
    return 0;
}

typedef struct {
    s_borrower_t borrower;
    int open_rc, close_rc, join_rc;
    bool parked;
} s_borrow_t;

static int
s_borrow_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_borrow_t *obs = arg;
    obs->open_rc = tr_portal_open_context (p, "ctx_echo", NULL, &obs->borrower.c, NULL);
    if (obs->open_rc)
        return 0;
    tr_task_t *task;
    tr_task_spawn (tr_ctx_actor (ctx), s_borrower, &obs->borrower, &task);
    obs->parked = tu_wait_sleeping (ctx, p, 1, 5000);
    //  The borrower waits in receive: the close ends the context for it,
    //  and frees it only once the borrower has left every call on it.
    obs->close_rc = tr_context_close (&obs->borrower.c);
    obs->join_rc = tr_task_join (&task, NULL);
    return 0;
}

START_TEST (a_context_closed_while_another_task_waits_on_it_wakes_that_task_first)
{
    tu_subreaper ();
    s_borrow_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_borrow_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_msg (obs.parked, "the callee did not wait in receive");
    ck_assert_tr_ok (obs.close_rc);
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_msg (obs.borrower.returned, "the borrowing task did not return");
    ck_assert_tr_rc (obs.borrower.recv_rc, TR_ECLOSED);
    ck_assert_tr_rc (obs.borrower.result_rc, TR_ECANCELED);
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
    tr_context_t *c;
    obs->open_rc = s_open (p, "ctx_count", tr_pack ("[I]", (int64_t) 1 << 40),
                                           &c, NULL);
    if (obs->open_rc)
        return 0;
    tr_stream_t *s;
    tr_context_open_stream (c, &s);
    tu_stream_killed_read (p, s, obs);
    tu_err_copy (&obs->recv_error, tr_context_error (c));
    obs->result_rc = tr_context_result (c, NULL);
    tr_context_close (&c);
    return 0;
}

START_TEST (a_child_killed_mid_stream_ends_the_receive_with_crashed)
{
    tu_subreaper ();
    tu_stream_killed_t obs;
    tu_stream_killed_run (s_killed_body, &obs);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Flow control: a slow consumer bounds the producer; another stream on
//  the same channel keeps its pace

#define PACE_VALUES 20000

typedef struct {
    int flood_rc;
    tu_window_t window;
    double alone_per_s, beside_per_s;
    int alone_rc, beside_rc;
} s_flow_t;

//  Read a ctx_count stream of n values to its end; values per second.
static int
s_count_rate (tr_portal_t *p, int n, double *per_s)
{
    tr_context_t *c;
    int rc = s_open (p, "ctx_count", tr_pack ("[i]", n), &c, NULL);
    if (rc)
        return rc;
    tr_stream_t *s;
    tr_context_open_stream (c, &s);
    const msgpack_object *value;
    int got = 0;
    struct timespec t0, t1;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    while ((rc = tr_stream_recv (s, &value, tu_ms (5000))) == 0)
        got++;
    clock_gettime (CLOCK_MONOTONIC, &t1);
    double us = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
    *per_s = got * 1e6 / (us > 0? us: 1);
    tr_stream_close (&s);
    rc = tr_context_result (c, NULL);
    tr_context_close (&c);
    return rc == 0 && got != n? TR_EPROTO: rc;
}

//  The best of three rates: a run of 20,000 values takes some 15 ms, and
//  one preemption of another process on a loaded machine halves it.
static int
s_best_rate (tr_portal_t *p, int n, double *per_s)
{
    *per_s = 0;
    for (int i = 0; i < 3; i++) {
        double rate;
        int rc = s_count_rate (p, n, &rate);
        if (rc)
            return rc;
        if (rate > *per_s)
            *per_s = rate;
    }
    return 0;
}

static int
s_flow_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_flow_t *obs = arg;
    obs->alone_rc = s_best_rate (p, PACE_VALUES, &obs->alone_per_s);
    tr_context_t *flood;
    obs->flood_rc = tr_portal_open_context (p, "ctx_flood", NULL, &flood, NULL);
    if (obs->flood_rc)
        return 0;
    //  Read a few hundred, then no more: the producer stops.
    tr_stream_t *s;
    tr_context_open_stream (flood, &s);
    tu_window_fill (ctx, p, s, &obs->window);
    obs->beside_rc = s_best_rate (p, PACE_VALUES, &obs->beside_per_s);
    tu_window_recount (ctx, p, &obs->window);
    tr_context_close (&flood);
    fprintf (stderr, "flow: a stream alone %.0f values/s, beside a stalled one %.0f values/s; "
             "the stalled producer sent %d\n", obs->alone_per_s, obs->beside_per_s,
             obs->window.produced_after);
    return 0;
}

START_TEST (a_slow_consumer_bounds_its_producer_and_another_stream_keeps_its_pace)
{
    tu_subreaper ();
    s_flow_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_flow_body, .obs = &obs };
    tu_run_frame_clean (&frame);
    ck_assert_tr_ok (obs.alone_rc);
    ck_assert_tr_ok (obs.flood_rc);
    //  The window bounds what the producer sent past what was read,
    //  before and after another stream of 20,000 values went by on the
    //  same channel, and it stopped there.
    tu_window_check (&obs.window);
    ck_assert_tr_ok (obs.beside_rc);
    ck_assert_msg (obs.beside_per_s > 0.5 * obs.alone_per_s,
                   "beside a stalled stream %.0f/s, alone %.0f/s",
                   obs.beside_per_s, obs.alone_per_s);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Gather (rule 10)

#define GATHERED 8

#define SPINNER 6               //  busy when the failing gather opens

typedef struct {
    int start_rc, open_rc, close_rc;
    tu_err_t open_error;
    bool all_null;
    int counters_rc [GATHERED], cancels [GATHERED], sleeping [GATHERED];
    int ok_rc, ok_close_rc;
    bool firsts_nil;
    tu_fifo_t fifo;
    bool spinning;              //  SPINNER said it spins
    int spin_rc;                //  its spin call's outcome
    tr_portal_t *spinner;
} s_gather_t;

//  A task: SPINNER spins (no checkpoint, its loop held) for 300 ms,
//  scaled, once it has written to the FIFO.
static int
s_spin_task (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_gather_t *obs = arg;
    return tu_call (obs->spinner, "spin", tr_pack ("[si]", obs->fifo.path, tu_ms (300)), NULL);
}

static int
s_gather_root (tr_actor_t *self, void *arg)
{
    s_gather_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *portals [GATHERED];
    for (int i = 0; i < GATHERED && !obs->start_rc; i++) {
        char name [16];
        snprintf (name, sizeof name, "kid-%d", i);
        obs->start_rc = tr_nursery_start_actor (n, name, NULL, &portals [i]);
    }
    if (!obs->start_rc) {
        tr_context_t *contexts [GATHERED];
        const msgpack_object *firsts [GATHERED];
        //  All eight start: gather returns them all.
        obs->ok_rc = s_gather (portals, GATHERED, "ctx_fail_in", tr_pack ("[s]", "none"),
                                       contexts, firsts);
        obs->firsts_nil = true;
        for (int i = 0; i < GATHERED && !obs->ok_rc; i++)
            if (firsts [i]->type != MSGPACK_OBJECT_NIL)
                obs->firsts_nil = false;
        if (!obs->ok_rc)
            obs->ok_close_rc = tr_contexts_close (contexts, GATHERED);
        //  SPINNER is held when the next gather opens. It comes after
        //  kid-5, whose failure ends the gather's waits before SPINNER's
        //  turn, so it reads the open and the cancel together, and its
        //  function meets the cancel at started rather than in its
        //  receive.
        tr_task_t *spin = NULL;
        obs->spinner = portals [SPINNER];
        if (tr_task_spawn (self, s_spin_task, obs, &spin) == 0)
            obs->spinning = tu_fifo_wait (tr_actor_ctx (self), &obs->fifo, 5000);
        //  kid-5 fails at started: the other seven are cancelled.
        obs->open_rc = s_gather (portals, GATHERED, "ctx_fail_in", tr_pack ("[s]", "kid-5"),
                                         contexts, firsts);
        int spun = TR_ENOMEM;
        obs->spin_rc = spin? tr_task_join (&spin, &spun): TR_ENOMEM;
        if (obs->spin_rc == 0)
            obs->spin_rc = spun;
        tu_err_copy (&obs->open_error, tr_portal_error (portals [5]));
        obs->all_null = true;
        for (int i = 0; i < GATHERED; i++)
            if (contexts [i] || firsts [i])
                obs->all_null = false;
        for (int i = 0; i < GATHERED; i++)
            obs->counters_rc [i] = tu_cancels (portals [i], &obs->cancels [i], &obs->sleeping [i]);
    }
    obs->close_rc = tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (gather_on_eight_actors_where_one_fails_cancels_the_other_seven)
{
    tu_subreaper ();
    s_gather_t obs;
    memset (&obs, 0, sizeof obs);
    ck_assert (tu_fifo_open (&obs.fifo));
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_gather_root, &obs);
    tu_fifo_close (&obs.fifo);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (obs.start_rc);
    ck_assert_msg (obs.spinning, "kid-%d never said it spins", SPINNER);
    ck_assert_tr_ok (obs.spin_rc);
    ck_assert_tr_ok (obs.ok_rc);
    ck_assert_msg (obs.firsts_nil, "a first value is not nil");
    ck_assert_tr_ok (obs.ok_close_rc);
    ck_assert_tr_rc (obs.open_rc, TR_EREMOTE);
    ck_assert_str_eq (obs.open_error.type, "ValueError");
    ck_assert_str_eq (obs.open_error.message, "kid-5 fails at started");
    ck_assert_msg (obs.all_null, "a failed gather left a context or a first value");
    for (int i = 0; i < GATHERED; i++) {
        ck_assert_tr_ok (obs.counters_rc [i]);
        //  The first gather's eight were cancelled by its close, the
        //  second's seven by its failure (SPINNER's at started): two
        //  cancels each but kid-5's, and nothing left parked anywhere.
        ck_assert_int_eq (obs.cancels [i], i == 5? 1: 2);
        ck_assert_int_eq (obs.sleeping [i], 0);
    }
    ck_assert_tr_ok (obs.close_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A pipeline: each stage streams to the next

#define STAGES 4
#define PIPED 1000

typedef struct {
    int start_rc, open_rc, send_rc, result_rc, close_rc;
    int64_t count, last;
    bool in_order;
} s_pipe_t;

static int
s_pipe_root (tr_actor_t *self, void *arg)
{
    s_pipe_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *stages [STAGES];
    for (int i = 0; i < STAGES && !obs->start_rc; i++) {
        char name [16];
        snprintf (name, sizeof name, "stage-%d", i);
        obs->start_rc = tr_nursery_start_actor (n, name, NULL, &stages [i]);
    }
    if (!obs->start_rc) {
        tr_args_t *rest = tr_pack ("[s s s]", tr_portal_endpoint (stages [1]),
                                   tr_portal_endpoint (stages [2]), tr_portal_endpoint (stages [3]));
        tr_context_t *c;
        obs->open_rc = tr_portal_open_context (stages [0], "ctx_stage", rest, &c, NULL);
        tr_args_destroy (&rest);
        if (!obs->open_rc) {
            tr_stream_t *s;
            tr_context_open_stream (c, &s);
            for (int i = 0; i < PIPED && !obs->send_rc; i++)
                obs->send_rc = tr_stream_send_pack (s, "i", i);
            tr_stream_close (&s);
            const msgpack_object *result;
            obs->result_rc = tr_context_result (c, &result);
            if (!obs->result_rc)
                tr_unpack (result, "[I b I]", &obs->count, &obs->in_order, &obs->last);
            tr_context_close (&c);
        }
    }
    obs->close_rc = tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (a_four_stage_pipeline_delivers_a_thousand_values_in_order)
{
    tu_subreaper ();
    s_pipe_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_pipe_root, &obs), 0);
    ck_assert_tr_ok (obs.start_rc);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_tr_ok (obs.send_rc);
    ck_assert_tr_ok (obs.result_rc);
    ck_assert_int_eq (obs.count, PIPED);
    ck_assert_msg (obs.in_order, "values came out of order");
    //  Three hops, one added at each.
    ck_assert_int_eq (obs.last, PIPED - 1 + STAGES - 1);
    ck_assert_tr_ok (obs.close_rc);
    tu_assert_no_procs_left (2000);
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
    tcase_add_test (tc, a_value_sent_before_a_long_computation_arrives_before_it_ends);
    tcase_add_test (tc, a_receive_that_times_out_leaves_the_stream_open);
    tc = tu_tcase (suite, "rule1_and_errors", 30);
    tcase_add_test (tc, started_twice_is_a_protocol_error_the_caller_sees_boxed);
    tcase_add_test (tc, opening_the_stream_before_started_fails_the_open_with_the_rule);
    tcase_add_test (tc, a_breach_of_rule_one_is_the_answer_even_if_the_function_goes_on);
    tcase_add_test (tc, a_context_function_that_never_calls_started_fails_the_open);
    tcase_add_test (tc, a_callee_error_before_started_is_what_the_open_returns);
    tcase_add_test (tc, a_callee_error_mid_stream_comes_after_the_values_it_sent);
    tcase_add_test (tc, a_callee_error_after_the_stream_is_the_result);
    tc = tu_tcase (suite, "close_and_cancel", 30);
    tcase_add_test (tc, either_side_may_close_first_and_the_result_still_comes);
    tcase_add_test (tc, cancelling_a_context_whose_callee_waits_in_receive_is_acknowledged);
    tcase_add_test (tc, cancelling_a_context_whose_callee_waits_in_send_is_acknowledged);
    tcase_add_test (tc, a_child_killed_mid_stream_ends_the_receive_with_crashed);
    tcase_add_test (tc, a_task_that_ends_with_a_context_open_cancels_the_remote_task);
    tcase_add_test (tc, a_context_closed_while_another_task_waits_on_it_wakes_that_task_first);
    tc = tu_tcase (suite, "flow_gather_pipeline", 60);
    tcase_add_test (tc, a_slow_consumer_bounds_its_producer_and_another_stream_keeps_its_pace);
    tcase_add_test (tc, gather_on_eight_actors_where_one_fails_cancels_the_other_seven);
    tcase_add_test (tc, a_four_stage_pipeline_delivers_a_thousand_values_in_order);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
