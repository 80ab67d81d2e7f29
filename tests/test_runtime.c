/*  =========================================================================
    test_runtime.c - the loop: watchers, timers, touched sockets, and the
    wait queues tasks park on

    The runtime is started without an actor (no socket of its own), and
    the tests register their own descriptors and sockets, as the modules
    above it do.
    =========================================================================
*/
#include "troupe_private.h"
#include "testutil.h"
#include <fcntl.h>

static int s_fired;
static int s_order [8];
static int s_norder;

static void
s_setup (void)
{
    tr_config_t config = TR_CONFIG_INIT;
    ck_assert_tr_ok (tri_rt_start (&config, "test", "test@0"));
    s_fired = 0;
    s_norder = 0;
}

static void
s_teardown (void)
{
    tri_rt_stop ();
}

static bool s_done_flag;

static bool
s_done (void)
{
    return s_done_flag;
}

//  --------------------------------------------------------------------------
//  Watchers

static void
s_on_pipe (tri_watch_t *watch, bool drain)
{
    (void) drain;
    char byte;
    while (read (watch->fd, &byte, 1) == 1)
        s_fired++;
    s_done_flag = s_fired >= 3;
}

START_TEST (a_watched_descriptor_calls_its_owner_when_readable)
{
    int fds [2];
    ck_assert_int_eq (pipe2 (fds, O_NONBLOCK), 0);
    tri_watch_t watch;
    ck_assert_tr_ok (tri_loop_watch (&watch, fds [0], s_on_pipe, NULL));
    ck_assert_int_eq (write (fds [1], "abc", 3), 3);
    s_done_flag = false;
    tri_loop_run (s_done);
    ck_assert_int_eq (s_fired, 3);
    tri_loop_unwatch (&watch);
    tri_loop_unwatch (&watch);          //  twice is harmless
    close (fds [0]);
    close (fds [1]);
}
END_TEST

//  Two watchers ready in one wake-up; the first unwatches the second,
//  which must then not be called.
static tri_watch_t s_pair [2];

static void
s_on_first (tri_watch_t *watch, bool drain)
{
    (void) drain;
    char byte;
    while (read (watch->fd, &byte, 1) == 1)
        ;
    s_order [s_norder++] = watch == &s_pair [0]? 0: 1;
    tri_loop_unwatch (&s_pair [watch == &s_pair [0]? 1: 0]);
    s_done_flag = true;
}

START_TEST (a_watcher_unwatched_by_another_callback_of_the_same_wake_up_is_not_called)
{
    int a [2], b [2];
    ck_assert_int_eq (pipe2 (a, O_NONBLOCK), 0);
    ck_assert_int_eq (pipe2 (b, O_NONBLOCK), 0);
    ck_assert_tr_ok (tri_loop_watch (&s_pair [0], a [0], s_on_first, NULL));
    ck_assert_tr_ok (tri_loop_watch (&s_pair [1], b [0], s_on_first, NULL));
    ck_assert_int_eq (write (a [1], "x", 1), 1);
    ck_assert_int_eq (write (b [1], "y", 1), 1);
    s_done_flag = false;
    tri_loop_run (s_done);
    ck_assert_int_eq (s_norder, 1);
    tri_loop_unwatch (&s_pair [0]);
    tri_loop_unwatch (&s_pair [1]);
    for (int i = 0; i < 2; i++) {
        close (a [i]);
        close (b [i]);
    }
}
END_TEST

//  A socket that already holds messages when the loop starts: its
//  descriptor says nothing, the loop must ask it.
static void
s_on_socket (tri_watch_t *watch, bool drain)
{
    for (int i = 0; i < (drain? 64: 1); i++) {
        char buf [8];
        if (zmq_recv (watch->socket, buf, sizeof buf, ZMQ_DONTWAIT) < 0) {
            tri_loop_idle (watch);
            break;
        }
        tri_loop_touch (watch);
        s_fired++;
    }
    s_done_flag = s_fired == 10;
}

START_TEST (messages_queued_before_the_loop_sleeps_are_read_without_a_descriptor_edge)
{
    void *in = zmq_socket (tri_zctx (), ZMQ_PAIR);
    void *out = zmq_socket (tri_zctx (), ZMQ_PAIR);
    ck_assert_int_eq (zmq_bind (in, "inproc://test-runtime"), 0);
    ck_assert_int_eq (zmq_connect (out, "inproc://test-runtime"), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq (zmq_send (out, "m", 1, 0), 1);
    //  Consume the descriptor's edge before the loop ever sees it.
    uint32_t events;
    size_t size = sizeof events;
    zmq_getsockopt (in, ZMQ_EVENTS, &events, &size);
    ck_assert (events & ZMQ_POLLIN);
    tri_watch_t watch;
    ck_assert_tr_ok (tri_loop_watch_socket (&watch, in, s_on_socket, NULL));
    s_done_flag = false;
    tri_loop_run (s_done);
    ck_assert_int_eq (s_fired, 10);
    tri_loop_unwatch (&watch);
    int zero = 0;
    zmq_setsockopt (out, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close (out);
    zmq_close (in);
}
END_TEST

//  --------------------------------------------------------------------------
//  Timers

static void
s_on_timer (tri_timer_t *timer)
{
    s_order [s_norder++] = (int) (intptr_t) timer->arg;
    s_done_flag = s_norder == 3;
}

START_TEST (timers_fire_in_deadline_order_and_a_stopped_one_never_fires)
{
    tri_timer_t t [4];
    memset (t, 0, sizeof t);
    int64_t now = tri_now_us ();
    tri_timer_start (&t [0], now + 30000, s_on_timer, (void *) 3);
    tri_timer_start (&t [1], now + 10000, s_on_timer, (void *) 1);
    tri_timer_start (&t [2], now + 20000, s_on_timer, (void *) 2);
    tri_timer_start (&t [3], now + 15000, s_on_timer, (void *) 9);
    ck_assert (tri_timer_active (&t [3]));
    tri_timer_stop (&t [3]);
    ck_assert (!tri_timer_active (&t [3]));
    s_done_flag = false;
    tri_loop_run (s_done);
    ck_assert_int_eq (s_norder, 3);
    ck_assert_int_eq (s_order [0], 1);
    ck_assert_int_eq (s_order [1], 2);
    ck_assert_int_eq (s_order [2], 3);
    ck_assert (tri_now_us () >= now + 30000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Wait queues

static tri_waitq_t s_queue;
static int s_woken [8];
static int s_nwoken;

static void
s_waiter (void *arg)
{
    int id = (int) (intptr_t) arg;
    int64_t deadline = id == 9? tri_after_ms (20): -1;
    int rc = tri_waitq_wait (&s_queue, deadline);
    s_woken [s_nwoken++] = rc == 0? id: -id;
}

static void
s_waker (void *arg)
{
    (void) arg;
    //  Let every waiter park first.
    tri_task_park (tri_after_ms (40));
    tri_waitq_wake_one (&s_queue, 0);
    tri_task_park (tri_now_us ());
    tri_waitq_wake_all (&s_queue, 0);
}

static bool
s_no_tasks (void)
{
    return tri_sched_alive () == 0;
}

START_TEST (any_number_of_tasks_wait_on_one_queue_each_with_its_own_deadline)
{
    tri_waitq_init (&s_queue);
    s_nwoken = 0;
    for (int id = 1; id <= 4; id++)
        ck_assert_ptr_nonnull (tri_task_new (s_waiter, (void *) (intptr_t) id, 0, false));
    //  This one times out before any wake.
    ck_assert_ptr_nonnull (tri_task_new (s_waiter, (void *) 9, 0, false));
    ck_assert_ptr_nonnull (tri_task_new (s_waker, NULL, 0, false));
    tri_loop_run (s_no_tasks);
    ck_assert_int_eq (s_nwoken, 5);
    ck_assert_int_eq (s_woken [0], -9);     //  its deadline, first
    ck_assert_int_eq (s_woken [1], 1);      //  wake_one: the longest waiting
    ck_assert (tri_waitq_empty (&s_queue));
    int seen = 0;
    for (int i = 2; i < 5; i++)
        seen |= 1 << s_woken [i];
    ck_assert_int_eq (seen, (1 << 2) | (1 << 3) | (1 << 4));
}
END_TEST

static tri_task_t *s_cancelled_one;

static void
s_canceller (void *arg)
{
    (void) arg;
    tri_task_park (tri_after_ms (10));
    tri_task_cancel (s_cancelled_one);
    tri_task_park (tri_now_us ());
    tri_waitq_wake_all (&s_queue, 0);
}

START_TEST (a_cancelled_waiter_leaves_the_queue_and_the_others_are_still_woken)
{
    tri_waitq_init (&s_queue);
    s_nwoken = 0;
    s_cancelled_one = tri_task_new (s_waiter, (void *) 1, 0, false);
    ck_assert_ptr_nonnull (tri_task_new (s_waiter, (void *) 2, 0, false));
    ck_assert_ptr_nonnull (tri_task_new (s_canceller, NULL, 0, false));
    tri_loop_run (s_no_tasks);
    ck_assert_int_eq (s_nwoken, 2);
    ck_assert_int_eq (s_woken [0], -1);
    ck_assert_int_eq (s_woken [1], 2);
    ck_assert (tri_waitq_empty (&s_queue));
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("runtime");
    TCase *tc = tu_tcase (s, "watchers", 30);
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_add_test (tc, a_watched_descriptor_calls_its_owner_when_readable);
    tcase_add_test (tc, a_watcher_unwatched_by_another_callback_of_the_same_wake_up_is_not_called);
    tcase_add_test (tc, messages_queued_before_the_loop_sleeps_are_read_without_a_descriptor_edge);
    tc = tu_tcase (s, "timers", 30);
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_add_test (tc, timers_fire_in_deadline_order_and_a_stopped_one_never_fires);
    tc = tu_tcase (s, "wait queues", 30);
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    tcase_add_test (tc, any_number_of_tasks_wait_on_one_queue_each_with_its_own_deadline);
    tcase_add_test (tc, a_cancelled_waiter_leaves_the_queue_and_the_others_are_still_woken);
    return tu_run_suite (s, CK_FORK_GETENV);
}
