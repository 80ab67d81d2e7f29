/*  =========================================================================
    teststream.h - scenarios the stream suites share

    test_context reads the stream of a context, test_stream_from a one-way
    stream; both run the same scenarios on it: integers read to the end
    in order, a child killed by SIGKILL after a thousand values, and a
    reader that stops while the producer fills its window. Each suite
    opens its own kind of stream and keeps what only it checks; these read
    the stream and check what both kinds must show.

    Include after testutil.h.
    =========================================================================
*/
#ifndef TESTSTREAM_H_INCLUDED
#define TESTSTREAM_H_INCLUDED

#include "troupe_private.h"         //  a stream's counts, for the window

//  Receive integers until the stream ends, counting them in received and
//  those that are not their index in out_of_order. Returns what ended it.
static inline int
tu_stream_count (tr_stream_t *s, int64_t *received, int64_t *out_of_order)
{
    const msgpack_object *value;
    int rc;
    while ((rc = tr_stream_recv (s, &value, tu_ms (5000))) == 0) {
        int64_t v = -1;
        tr_unpack (value, "I", &v);
        if (v != *received)
            (*out_of_order)++;
        (*received)++;
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  A child killed mid-stream

#define TU_KILLED_AFTER 1000        //  values read before the kill

typedef struct {
    int open_rc, values, recv_rc, result_rc;
    tu_err_t recv_error, result_error;
    long long after_kill_ms;        //  from the kill to the stream's end
} tu_stream_killed_t;

//  Read TU_KILLED_AFTER values of an endless stream from p's child, kill
//  the child with SIGKILL, then read until the stream ends.
static inline void
tu_stream_killed_read (tr_portal_t *p, tr_stream_t *s, tu_stream_killed_t *obs)
{
    const msgpack_object *value;
    for (int i = 0; i < TU_KILLED_AFTER; i++)
        if (tr_stream_recv (s, &value, tu_ms (5000)) == 0)
            obs->values++;
    kill (tr_portal_pid (p), SIGKILL);
    long long start = tu_now_ms ();
    while ((obs->recv_rc = tr_stream_recv (s, &value, tu_ms (10000))) == 0)
        ;
    obs->after_kill_ms = tu_now_ms () - start;
}

//  Run body as the root against one child, obs zeroed first. The close
//  fails with the crash: only the start is checked of the frame. Then
//  check that every value before the kill came, and that the receive
//  ended as crashed by SIGKILL within 2 s, and so did the result.
static inline void
tu_stream_killed_run (tu_body_fn *body, tu_stream_killed_t *obs)
{
    memset (obs, 0, sizeof *obs);
    tu_frame_t frame = { .body = body, .obs = obs };
    tr_config_t config = tu_config ();
    tr_run (&config, 0, NULL, tu_frame_root, &frame);
    ck_assert_tr_ok (frame.start_rc);
    ck_assert_tr_ok (obs->open_rc);
    ck_assert_int_eq (obs->values, TU_KILLED_AFTER);
    ck_assert_tr_rc (obs->recv_rc, TR_ECRASHED);
    ck_assert_int_eq (obs->recv_error.signal, SIGKILL);
    ck_assert_msg (obs->after_kill_ms < tu_ms (2000), "the end took %lld ms", obs->after_kill_ms);
    ck_assert_tr_rc (obs->result_rc, TR_ECRASHED);
}

//  --------------------------------------------------------------------------
//  Flow control: a slow consumer bounds the producer

#define TU_WINDOW_READ 300          //  values read before the reader stops

typedef struct {
    int read;
    int window;                     //  the reader's stream_window
    int allowed;                    //  read + unread + credit left
    int produced_before, produced_after;
} tu_window_t;

//  Read TU_WINDOW_READ values of a flooding stream from p's child, then
//  no more: the producer stops when the window (this side's
//  stream_window, the default here) is unread, between read + window / 2
//  + 1 and read + window values, since credit is topped up when half of
//  it is free. Wait until it sent what this side allows: what was read,
//  what came and waits, and the credit not yet spent.
static inline void
tu_window_fill (tr_ctx_t *ctx, tr_portal_t *p, tr_stream_t *s, tu_window_t *self)
{
    const msgpack_object *value;
    while (self->read < TU_WINDOW_READ && tr_stream_recv (s, &value, tu_ms (5000)) == 0)
        self->read++;
    self->window = (int) s->window;
    self->allowed = self->read + (int) (s->count + s->peer_credit);
    tu_wait_produced (ctx, p, self->allowed, &self->produced_before);
}

//  Once something else went by on the channel: what the producer sent by
//  now.
static inline void
tu_window_recount (tr_ctx_t *ctx, tr_portal_t *p, tu_window_t *self)
{
    tu_wait_produced (ctx, p, self->allowed, &self->produced_after);
}

//  Check that the window bounded what the producer sent past what was
//  read, before and after, and that it stopped there.
static inline void
tu_window_check (const tu_window_t *self)
{
    ck_assert_int_eq (self->read, TU_WINDOW_READ);
    ck_assert_int_eq (self->window, TRI_DEFAULT_STREAM_WINDOW);
    ck_assert_int_gt (self->allowed, TU_WINDOW_READ + self->window / 2);
    ck_assert_int_le (self->allowed, TU_WINDOW_READ + self->window);
    ck_assert_int_eq (self->produced_before, self->allowed);
    ck_assert_int_eq (self->produced_after, self->allowed);
}

#endif
