/*  =========================================================================
    test_task.c - coroutines, the scheduler, timers and the worker pool

    The tests drive the scheduler with a small loop of their own, the way
    the runtime does: run the ready tasks, poll until the next deadline or
    the pool's eventfd, expire, drain. Tasks record what they see in
    globals; the test body asserts on them once the loop is over.
    =========================================================================
*/
#ifdef HAVE_CONFIG_H
#   include "config.h"
#endif
#include "troupe_private.h"
#include "testutil.h"

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>


//  --------------------------------------------------------------------------
//  Helpers

//  Run the scheduler until no task is alive, or fail at the test's
//  deadline. A wait with no deadline, no pool and nothing ready can never
//  end: fail at once.
static void
s_loop (void)
{
    while (tri_sched_alive () > 0) {
        tri_sched_run ();
        if (tri_sched_alive () == 0)
            break;
        int64_t deadline = tri_sched_next_deadline ();
        int fd = tri_pool_fd ();
        ck_assert_msg (deadline >= 0 || fd >= 0 || tri_sched_has_ready (),
                       "%zu tasks parked with nothing to wake them",
                       tri_sched_alive ());
        int timeout = -1;
        if (tri_sched_has_ready ())
            timeout = 0;
        else
        if (deadline >= 0) {
            timeout = (int) tri_ms_left (deadline);
        }
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int n = poll (&pfd, fd >= 0? 1: 0, timeout);
        ck_assert_int_ge (n, 0);
        tri_sched_expire (tri_now_us ());
        if (n > 0 && (pfd.revents & POLLIN))
            tri_pool_drain ();
    }
}

//  Let the other ready tasks run: park until the next expire.
static int
s_yield (void)
{
    return tri_task_park (tri_now_us ());
}

//  A trace the tasks append to.
static char s_trace [256];

static void
s_trace_add (const char *what)
{
    strncat (s_trace, what, sizeof s_trace - strlen (s_trace) - 1);
}

static void
s_setup (void)
{
    s_trace [0] = 0;
    ck_assert_int_eq (tri_sched_init (0), 0);
    tri_pool_configure (0);
}

static void
s_teardown (void)
{
    //  In no-fork mode a failed test may leave tasks behind; keep the
    //  others running rather than assert.
    if (tri_sched_alive () == 0) {
        tri_pool_stop ();
        tri_sched_term ();
    }
}

//  A gate that pool threads wait at until the test opens it.
typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    bool open;
    int arrived;                //  threads that reached the gate
    atomic_bool finished;       //  a thread passed it and returned
} gate_t;

static gate_t s_gate;

static void
s_gate_init (gate_t *self)
{
    pthread_mutex_init (&self->mutex, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->cond, &attr);
    pthread_condattr_destroy (&attr);
    self->open = false;
    self->arrived = 0;
    atomic_init (&self->finished, false);
}

static void
s_gate_open (gate_t *self)
{
    pthread_mutex_lock (&self->mutex);
    self->open = true;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->mutex);
}

//  Wait until open (or until count threads arrived, if count > 0), at most
//  10 s. Returns whether the wait was satisfied.
static bool
s_gate_wait (gate_t *self, int count)
{
    struct timespec until;
    clock_gettime (CLOCK_MONOTONIC, &until);
    until.tv_sec += 10;
    pthread_mutex_lock (&self->mutex);
    self->arrived++;
    pthread_cond_broadcast (&self->cond);
    int rc = 0;
    while (rc == 0 && !self->open && !(count > 0 && self->arrived >= count))
        rc = pthread_cond_timedwait (&self->cond, &self->mutex, &until);
    bool ok = self->open || (count > 0 && self->arrived >= count);
    pthread_mutex_unlock (&self->mutex);
    return ok;
}

//  --------------------------------------------------------------------------
//  Scheduling

static void
s_rounds_task (void *arg)
{
    for (int round = 0; round < 3; round++) {
        s_trace_add ((const char *) arg);
        ck_assert_int_eq (s_yield (), TR_ETIMEDOUT);
    }
}

START_TEST (test_tasks_take_turns_in_fifo_order_at_each_park)
{
    ck_assert_ptr_nonnull (tri_task_new (s_rounds_task, "A", 0, false));
    ck_assert_ptr_nonnull (tri_task_new (s_rounds_task, "B", 0, false));
    ck_assert_ptr_nonnull (tri_task_new (s_rounds_task, "C", 0, false));
    ck_assert_uint_eq (tri_sched_alive (), 3);
    s_loop ();
    ck_assert_str_eq (s_trace, "ABCABCABC");
    ck_assert_uint_eq (tri_sched_alive (), 0);
}
END_TEST

static tri_task_t *s_first;

static void
s_waker_task (void *arg)
{
    (void) arg;
    s_trace_add ("B");
    tri_task_wake (s_first, 7);
    tri_task_wake (s_first, 8);             //  not parked any more: no effect
    tri_task_wake (tri_task_current (), 9); //  running: no effect
}

static void
s_spawner_task (void *arg)
{
    (void) arg;
    s_trace_add ("A");
    ck_assert_ptr_nonnull (tri_task_new (s_waker_task, NULL, 0, false));
    int rc = tri_task_park (-1);
    char text [16];
    snprintf (text, sizeof text, "A%d", rc);
    s_trace_add (text);
}

START_TEST (test_tasks_made_ready_during_a_run_run_in_the_same_run)
{
    s_first = tri_task_new (s_spawner_task, NULL, 0, false);
    ck_assert_ptr_nonnull (s_first);
    ck_assert (tri_sched_has_ready ());
    //  A runs and parks, B runs and wakes A, A runs again: one call.
    ck_assert_int_eq (tri_sched_run (), 3);
    ck_assert_str_eq (s_trace, "ABA7");
    ck_assert_uint_eq (tri_sched_alive (), 0);
    ck_assert (!tri_sched_has_ready ());
    ck_assert_ptr_null (tri_task_current ());
}
END_TEST

static int s_rc;
static int64_t s_elapsed;

static void
s_sleeper_task (void *arg)
{
    int ms = *(int *) arg;
    int64_t start = tri_now_us ();
    s_rc = tri_task_park (start + ms * 1000);
    s_elapsed = (tri_now_us () - start) / 1000;
}

START_TEST (test_a_park_with_a_deadline_times_out_on_time)
{
    int ms = 100;
    ck_assert_ptr_nonnull (tri_task_new (s_sleeper_task, &ms, 0, false));
    ck_assert_int_eq (tri_sched_next_deadline (), -1);
    int64_t before = tri_now_us ();
    tri_sched_run ();
    int64_t deadline = tri_sched_next_deadline ();
    ck_assert_int_ge (deadline, before + ms * 1000);
    ck_assert_int_le (deadline, tri_now_us () + ms * 1000);
    s_loop ();
    ck_assert_tr_rc (s_rc, TR_ETIMEDOUT);
    ck_assert_int_ge (s_elapsed, ms);
    ck_assert_int_lt (s_elapsed, ms + tu_ms (400));
    ck_assert_int_eq (tri_sched_next_deadline (), -1);
}
END_TEST

static void
s_timed_task (void *arg)
{
    int ms = (int) (intptr_t) arg;
    ck_assert_tr_rc (tri_task_park (tri_after_ms (ms)), TR_ETIMEDOUT);
    char text [16];
    snprintf (text, sizeof text, "%d,", ms);
    s_trace_add (text);
}

START_TEST (test_deadlines_expire_earliest_first)
{
    ck_assert_ptr_nonnull (tri_task_new (s_timed_task, (void *) 90, 0, false));
    ck_assert_ptr_nonnull (tri_task_new (s_timed_task, (void *) 30, 0, false));
    ck_assert_ptr_nonnull (tri_task_new (s_timed_task, (void *) 60, 0, false));
    int64_t before = tri_now_us ();
    tri_sched_run ();
    int64_t next = tri_sched_next_deadline ();
    ck_assert_int_ge (next, before + 30000);
    ck_assert_int_le (next, tri_now_us () + 30001);
    //  Nothing is due before the earliest deadline.
    tri_sched_expire (next - 1);
    ck_assert (!tri_sched_has_ready ());
    s_loop ();
    ck_assert_str_eq (s_trace, "30,60,90,");
}
END_TEST

static tri_task_t *s_parked;

static void
s_long_park_task (void *arg)
{
    (void) arg;
    s_rc = tri_task_park (tri_after_ms (60000));
}

static void
s_wake_it_task (void *arg)
{
    (void) arg;
    ck_assert_int_gt (tri_sched_next_deadline (), 0);
    tri_task_wake (s_parked, 42);
    //  Woken: its deadline is gone, a second wake changes nothing.
    ck_assert_int_eq (tri_sched_next_deadline (), -1);
    tri_task_wake (s_parked, 43);
}

START_TEST (test_wake_passes_its_rc_and_clears_the_deadline)
{
    s_parked = tri_task_new (s_long_park_task, NULL, 0, false);
    ck_assert_ptr_nonnull (s_parked);
    ck_assert_ptr_nonnull (tri_task_new (s_wake_it_task, NULL, 0, false));
    s_rc = 0;
    int64_t start = tri_now_ms ();
    s_loop ();
    ck_assert_int_eq (s_rc, 42);
    ck_assert_int_lt (tri_now_ms () - start, tu_ms (5000));
}
END_TEST

static void
s_data_task (void *arg)
{
    tri_task_t *self = tri_task_current ();
    ck_assert_ptr_null (tri_task_data (self));
    tri_task_set_data (self, arg);
    ck_assert_ptr_eq (tri_task_data (self), arg);
    ck_assert (!tri_task_done (self));
    ck_assert (!tri_task_cancelled (self));
}

START_TEST (test_a_task_carries_a_user_pointer)
{
    int value;
    tri_task_t *task = tri_task_new (s_data_task, &value, 0, true);
    ck_assert_ptr_nonnull (task);
    s_loop ();
    ck_assert (tri_task_done (task));
    ck_assert_ptr_eq (tri_task_data (task), &value);
    tri_task_destroy (&task);
    ck_assert_ptr_null (task);
    tri_task_destroy (&task);
}
END_TEST

//  --------------------------------------------------------------------------
//  Cancellation

static int s_rc2;

static void
s_park_forever_task (void *arg)
{
    (void) arg;
    s_rc = tri_task_park (-1);
    //  Sticky: the next park returns at once too.
    s_rc2 = tri_task_park (-1);
}

static void
s_cancel_it_task (void *arg)
{
    tri_task_t *task = (tri_task_t *) arg;
    tri_task_cancel (task);
    ck_assert (tri_task_cancelled (task));
}

START_TEST (test_cancel_wakes_a_parked_task_with_ecanceled)
{
    tri_task_t *task = tri_task_new (s_park_forever_task, NULL, 0, true);
    ck_assert_ptr_nonnull (task);
    ck_assert (!tri_task_cancelled (task));
    ck_assert_ptr_nonnull (tri_task_new (s_cancel_it_task, task, 0, false));
    s_loop ();
    ck_assert_tr_rc (s_rc, TR_ECANCELED);
    ck_assert_tr_rc (s_rc2, TR_ECANCELED);
    ck_assert (tri_task_cancelled (task));
    //  Cancelling a finished task is harmless.
    tri_task_cancel (task);
    tri_task_destroy (&task);
}
END_TEST

START_TEST (test_a_task_cancelled_before_it_parks_does_not_park)
{
    tri_task_t *task = tri_task_new (s_park_forever_task, NULL, 0, false);
    ck_assert_ptr_nonnull (task);
    tri_task_cancel (task);
    //  One switch in, and it ends without parking.
    ck_assert_int_eq (tri_sched_run (), 1);
    ck_assert_uint_eq (tri_sched_alive (), 0);
    ck_assert_tr_rc (s_rc, TR_ECANCELED);
    ck_assert_tr_rc (s_rc2, TR_ECANCELED);
}
END_TEST

static bool s_flag;

static void
s_shielded_task (void *arg)
{
    (void) arg;
    int64_t start = tri_now_ms ();
    //  Already cancelled, and cancelled again while it waits: neither
    //  stops a shielded park.
    tri_task_cancel (tri_task_current ());
    s_rc = tri_task_park_shielded (tri_after_ms (100));
    s_elapsed = tri_now_ms () - start;
    s_rc2 = tri_task_park (-1);
}

static void
s_shielded_wake_task (void *arg)
{
    (void) arg;
    tri_task_cancel (tri_task_current ());
    s_rc = tri_task_park_shielded (-1);
}

static void
s_wake_later_task (void *arg)
{
    tri_task_cancel ((tri_task_t *) arg);
    ck_assert_tr_rc (tri_task_park (tri_after_ms (20)), TR_ETIMEDOUT);
    s_flag = true;
    tri_task_wake ((tri_task_t *) arg, 5);
}

START_TEST (test_a_shielded_park_ignores_cancellation)
{
    tri_task_t *task = tri_task_new (s_shielded_task, NULL, 0, false);
    ck_assert_ptr_nonnull (task);
    ck_assert_ptr_nonnull (tri_task_new (s_cancel_it_task, task, 0, false));
    s_loop ();
    ck_assert_tr_rc (s_rc, TR_ETIMEDOUT);
    ck_assert_int_ge (s_elapsed, 100);
    ck_assert_tr_rc (s_rc2, TR_ECANCELED);

    //  A wake still ends it, with its rc.
    task = tri_task_new (s_shielded_wake_task, NULL, 0, false);
    ck_assert_ptr_nonnull (task);
    ck_assert_ptr_nonnull (tri_task_new (s_wake_later_task, task, 0, false));
    s_flag = false;
    s_loop ();
    ck_assert (s_flag);
    ck_assert_int_eq (s_rc, 5);
}
END_TEST

//  --------------------------------------------------------------------------
//  Join

static tri_task_t *s_target;

static void
s_short_task (void *arg)
{
    (void) arg;
    ck_assert_tr_rc (tri_task_park (tri_after_ms (50)), TR_ETIMEDOUT);
    s_flag = true;
}

static int s_joined;

static void
s_joiner_task (void *arg)
{
    (void) arg;
    int rc = tri_task_join (s_target, tri_after_ms (tu_ms (5000)));
    ck_assert_tr_ok (rc);
    ck_assert (s_flag);
    ck_assert (tri_task_done (s_target));
    //  A finished task joins at once.
    ck_assert_tr_ok (tri_task_join (s_target, tri_now_us ()));
    s_joined++;
}

START_TEST (test_join_waits_for_the_task_to_end)
{
    s_flag = false;
    s_joined = 0;
    s_target = tri_task_new (s_short_task, NULL, 0, true);
    ck_assert_ptr_nonnull (s_target);
    //  Two joiners, both woken when it ends.
    ck_assert_ptr_nonnull (tri_task_new (s_joiner_task, NULL, 0, false));
    ck_assert_ptr_nonnull (tri_task_new (s_joiner_task, NULL, 0, false));
    s_loop ();
    ck_assert_int_eq (s_joined, 2);
    ck_assert (tri_task_done (s_target));
    tri_task_destroy (&s_target);
    ck_assert_ptr_null (s_target);
}
END_TEST

static int s_join_rc;
static int s_join_rc2;

static void
s_impatient_task (void *arg)
{
    (void) arg;
    s_join_rc = tri_task_join (s_target, tri_after_ms (50));
    //  Cancelled by the task after it while joining again.
    s_join_rc2 = tri_task_join (s_target, -1);
    ck_assert (!tri_task_done (s_target));
    tri_task_cancel (s_target);
}

static void
s_cancel_joiner_task (void *arg)
{
    tri_task_t *joiner = (tri_task_t *) arg;
    //  Wait until the joiner is back in its second join.
    ck_assert_tr_rc (tri_task_park (tri_after_ms (100)), TR_ETIMEDOUT);
    tri_task_cancel (joiner);
}

START_TEST (test_join_times_out_or_is_cancelled)
{
    s_target = tri_task_new (s_park_forever_task, NULL, 0, true);
    ck_assert_ptr_nonnull (s_target);
    tri_task_t *joiner = tri_task_new (s_impatient_task, NULL, 0, false);
    ck_assert_ptr_nonnull (joiner);
    ck_assert_ptr_nonnull (tri_task_new (s_cancel_joiner_task, joiner, 0, false));
    s_loop ();
    ck_assert_tr_rc (s_join_rc, TR_ETIMEDOUT);
    ck_assert_tr_rc (s_join_rc2, TR_ECANCELED);
    //  And the target, cancelled by the joiner, ended.
    ck_assert_tr_rc (s_rc, TR_ECANCELED);
    ck_assert (tri_task_done (s_target));
    tri_task_destroy (&s_target);
}
END_TEST

//  --------------------------------------------------------------------------
//  Stacks

static int s_ended;

static void
s_busy_task (void *arg)
{
    (void) arg;
    //  Use some of the stack, so reuse would show up under the sanitizers.
    volatile char buffer [16 * 1024];
    memset ((char *) buffer, (char) s_ended, sizeof buffer);
    char local = 0;
    ck_assert (!tri_task_is_guard (&local));
    ck_assert (!tri_task_is_guard ((char *) buffer));
    s_ended++;
}

START_TEST (test_finished_tasks_give_their_stacks_back_for_reuse)
{
    s_ended = 0;
    for (int round = 0; round < 100; round++) {
        for (int index = 0; index < 10; index++)
            ck_assert_ptr_nonnull (tri_task_new (s_busy_task, NULL, 0, false));
        s_loop ();
    }
    ck_assert_int_eq (s_ended, 1000);
    ck_assert_uint_eq (tri_sched_stacks_mapped (), 10);
    ck_assert_uint_eq (tri_sched_stacks_cached (), 10);
    ck_assert (!tri_task_is_guard (NULL));
}
END_TEST

START_TEST (test_the_stack_cache_is_capped_and_keeps_default_sizes_only)
{
    s_ended = 0;
    for (int index = 0; index < 100; index++)
        ck_assert_ptr_nonnull (tri_task_new (s_rounds_task, "", 0, false));
    s_loop ();
    ck_assert_uint_eq (tri_sched_stacks_mapped (), 100);
    ck_assert_uint_eq (tri_sched_stacks_cached (), 64);

    ck_assert_ptr_nonnull (tri_task_new (s_busy_task, NULL, 1024 * 1024, false));
    ck_assert_ptr_nonnull (tri_task_new (s_busy_task, NULL, 0, false));
    s_loop ();
    ck_assert_int_eq (s_ended, 2);
    ck_assert_uint_eq (tri_sched_stacks_mapped (), 101);
    ck_assert_uint_eq (tri_sched_stacks_cached (), 64);
}
END_TEST

START_TEST (test_the_default_stack_size_is_configurable)
{
    tri_pool_stop ();
    tri_sched_term ();
    ck_assert_int_eq (tri_sched_init (64 * 1024), 0);
    tri_pool_configure (1);
    s_ended = 0;
    ck_assert_ptr_nonnull (tri_task_new (s_busy_task, NULL, 0, false));
    ck_assert_ptr_nonnull (tri_task_new (s_busy_task, NULL, 64 * 1024, false));
    s_loop ();
    ck_assert_int_eq (s_ended, 2);
    //  Both are of the default size: both cached.
    ck_assert_uint_eq (tri_sched_stacks_mapped (), 2);
    ck_assert_uint_eq (tri_sched_stacks_cached (), 2);
}
END_TEST

//  Recurse until the stack runs out; frames well under a page, so the
//  first write past the end lands in the guard page.
static volatile int s_depth_limit = INT_MAX;

static int
s_recurse (int depth)
{
    volatile char frame [512];
    frame [0] = (char) depth;
    if (depth >= s_depth_limit)
        return frame [0];
    return s_recurse (depth + 1) + frame [0];
}

static void
s_overflow_task (void *arg)
{
    (void) arg;
    s_recurse (0);
}

#ifndef TU_UNDER_ASAN
START_TEST (test_a_stack_overflow_kills_the_process_with_sigsegv)
{
    ck_assert_ptr_nonnull (tri_task_new (s_overflow_task, NULL, 64 * 1024, false));
    tri_sched_run ();
    ck_abort_msg ("the task did not overflow its stack");
}
END_TEST
#endif

static void
s_on_segv (int sig, siginfo_t *info, void *context)
{
    (void) sig;
    (void) context;
    _exit (tri_task_is_guard (info->si_addr)? 42: 43);
}

START_TEST (test_the_guard_page_is_recognised_in_a_sigsegv_handler)
{
    static char altstack [64 * 1024];
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack };
    ck_assert_int_eq (sigaltstack (&ss, NULL), 0);
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_sigaction = s_on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset (&sa.sa_mask);
    ck_assert_int_eq (sigaction (SIGSEGV, &sa, NULL), 0);
    ck_assert_ptr_nonnull (tri_task_new (s_overflow_task, NULL, 64 * 1024, false));
    tri_sched_run ();
    ck_abort_msg ("the task did not overflow its stack");
}
END_TEST

//  --------------------------------------------------------------------------
//  Worker pool

static pthread_t s_main_thread;
static atomic_bool s_off_thread;

static void *
s_plus_one (void *arg)
{
    atomic_store (&s_off_thread, !pthread_equal (pthread_self (), s_main_thread));
    return (char *) arg + 1;
}

static char s_buffer [8];
static void *s_ret;

static void
s_to_thread_task (void *arg)
{
    (void) arg;
    s_ret = NULL;
    s_rc = tri_task_to_thread (s_plus_one, s_buffer, &s_ret, false);
    //  ret may be NULL.
    s_rc2 = tri_task_to_thread (s_plus_one, s_buffer, NULL, true);
}

START_TEST (test_to_thread_returns_the_function_value)
{
    s_main_thread = pthread_self ();
    atomic_init (&s_off_thread, false);
    ck_assert_int_eq (tri_pool_fd (), -1);
    ck_assert_ptr_nonnull (tri_task_new (s_to_thread_task, NULL, 0, false));
    s_loop ();
    ck_assert_tr_ok (s_rc);
    ck_assert_tr_ok (s_rc2);
    ck_assert_ptr_eq (s_ret, s_buffer + 1);
    ck_assert (atomic_load (&s_off_thread));
    ck_assert_int_ge (tri_pool_fd (), 0);
    ck_assert_uint_eq (tri_pool_jobs (), 0);
}
END_TEST

static void *
s_meet (void *arg)
{
    //  True only if all three jobs were running at the same time.
    return s_gate_wait ((gate_t *) arg, 3)? arg: NULL;
}

static int s_met;

static void
s_meet_task (void *arg)
{
    (void) arg;
    void *ret = NULL;
    ck_assert_tr_ok (tri_task_to_thread (s_meet, &s_gate, &ret, false));
    if (ret == &s_gate)
        s_met++;
}

START_TEST (test_to_thread_jobs_run_in_parallel)
{
    tri_pool_stop ();
    tri_sched_term ();
    ck_assert_int_eq (tri_sched_init (0), 0);
    tri_pool_configure (3);
    s_gate_init (&s_gate);
    s_met = 0;
    for (int index = 0; index < 3; index++)
        ck_assert_ptr_nonnull (tri_task_new (s_meet_task, NULL, 0, false));
    s_loop ();
    ck_assert_int_eq (s_met, 3);
}
END_TEST

static void *
s_gated (void *arg)
{
    gate_t *gate = (gate_t *) arg;
    bool opened = s_gate_wait (gate, 0);
    atomic_store (&gate->finished, true);
    return opened? gate: NULL;
}

static bool s_finished_at_return;
static bool s_released;

static void
s_gated_task (void *arg)
{
    bool shielded = arg != NULL;
    s_ret = s_buffer;
    int64_t start = tri_now_ms ();
    s_rc = tri_task_to_thread (s_gated, &s_gate, &s_ret, shielded);
    s_elapsed = tri_now_ms () - start;
    s_finished_at_return = atomic_load (&s_gate.finished);
    s_flag = s_released;
    //  Not shielded: let the thread go now that we no longer wait for it.
    if (!shielded)
        s_gate_open (&s_gate);
}

static void
s_cancel_then_release_task (void *arg)
{
    tri_task_cancel ((tri_task_t *) arg);
    //  A shielded wait must outlast this.
    ck_assert_tr_rc (tri_task_park (tri_after_ms (50)), TR_ETIMEDOUT);
    s_released = true;
    s_gate_open (&s_gate);
}

START_TEST (test_a_cancelled_to_thread_returns_at_once_and_drops_the_job)
{
    s_gate_init (&s_gate);
    s_released = false;
    tri_task_t *task = tri_task_new (s_gated_task, NULL, 0, false);
    ck_assert_ptr_nonnull (task);
    ck_assert_ptr_nonnull (tri_task_new (s_cancel_it_task, task, 0, false));
    s_loop ();
    ck_assert_tr_rc (s_rc, TR_ECANCELED);
    ck_assert (!s_finished_at_return);
    ck_assert_int_lt (s_elapsed, tu_ms (1000));
    ck_assert_ptr_eq (s_ret, s_buffer);     //  untouched

    //  The job is still out; its result is dropped by the drain.
    ck_assert_int_ge (tri_pool_fd (), 0);
    int64_t deadline = tri_now_ms () + tu_ms (5000);
    while (tri_pool_jobs () > 0 && tri_now_ms () < deadline) {
        struct pollfd pfd = { .fd = tri_pool_fd (), .events = POLLIN };
        if (poll (&pfd, 1, (int) (deadline - tri_now_ms ())) > 0)
            tri_pool_drain ();
    }
    ck_assert_uint_eq (tri_pool_jobs (), 0);
    ck_assert (atomic_load (&s_gate.finished));
    ck_assert_ptr_eq (s_ret, s_buffer);
}
END_TEST

START_TEST (test_a_shielded_to_thread_waits_for_the_thread)
{
    s_gate_init (&s_gate);
    s_released = false;
    tri_task_t *task = tri_task_new (s_gated_task, (void *) 1, 0, false);
    ck_assert_ptr_nonnull (task);
    ck_assert_ptr_nonnull (tri_task_new (s_cancel_then_release_task, task, 0, false));
    s_loop ();
    ck_assert_tr_ok (s_rc);
    ck_assert (s_flag);                     //  returned after the release
    ck_assert (s_finished_at_return);
    ck_assert_ptr_eq (s_ret, &s_gate);
    ck_assert_uint_eq (tri_pool_jobs (), 0);
}
END_TEST

static void
s_cancelled_to_thread_task (void *arg)
{
    (void) arg;
    tri_task_cancel (tri_task_current ());
    s_rc = tri_task_to_thread (s_plus_one, s_buffer, NULL, false);
}

START_TEST (test_to_thread_in_a_cancelled_task_does_not_start_the_job)
{
    ck_assert_ptr_nonnull (tri_task_new (s_cancelled_to_thread_task, NULL, 0, false));
    s_loop ();
    ck_assert_tr_rc (s_rc, TR_ECANCELED);
    ck_assert_uint_eq (tri_pool_jobs (), 0);
}
END_TEST

//  --------------------------------------------------------------------------
//  tr_task_join_shielded: the public join that waits while cancelled. These
//  run a whole actor (tr_run) with no child: the tasks are the root's.

typedef struct {
    int (*fn) (tr_ctx_t *ctx, void *arg);   //  the cancelled joiner
    tr_task_t *self;            //  the cancelled joiner's own handle
    tr_task_t *sub;             //  the subtask it joins
    int timeout_ms;             //  the subtask's sleep
    bool sub_done;              //  the subtask finished its work
    int64_t sub_end;            //  when
    int plain_rc;               //  tr_task_join while cancelled
    bool sub_kept;              //  *task stayed valid after that
    int shielded_rc;
    int64_t joined_at;
    int sub_result;
    bool sub_cleared;           //  *task is NULL after the shielded join
    int checkpoint_rc;          //  still cancelled afterwards
    int zero_rc;                //  timeout 0 while it runs
    int64_t zero_ms;
    int64_t timed_ms;           //  how long the timed-out join waited
    int again_rc;               //  after cancelling the subtask
    int self_rc;                //  joining itself
    int join_rc;                //  the root's join of the joiner
    int result;                 //  the joiner's return value
} s_shield_t;

//  The subtask: sleeps (its cleanup work), then says it is done.
static int
s_sub_main (tr_ctx_t *ctx, void *arg)
{
    s_shield_t *obs = arg;
    int rc = tr_sleep (ctx, obs->timeout_ms);
    if (rc == 0) {
        obs->sub_done = true;
        obs->sub_end = tri_now_ms ();
        return 7;
    }
    return rc;
}

//  Cancelled before it first runs: every checkpoint fails at once, yet
//  the shielded join waits for the subtask's end.
static int
s_cleanup_main (tr_ctx_t *ctx, void *arg)
{
    s_shield_t *obs = arg;
    if (tr_task_spawn (tr_ctx_actor (ctx), s_sub_main, obs, &obs->sub))
        return 1;
    if (tr_sleep (ctx, 60000) != TR_ECANCELED)
        return 2;
    obs->plain_rc = tr_task_join (&obs->sub, NULL);
    obs->sub_kept = obs->sub != NULL && !obs->sub_done;
    obs->shielded_rc = tr_task_join_shielded (&obs->sub, tu_ms (5000), &obs->sub_result);
    obs->joined_at = tri_now_ms ();
    obs->sub_cleared = obs->sub == NULL;
    obs->checkpoint_rc = tr_checkpoint (ctx);
    return 3;
}

//  Spawn fn as a task, cancel it before it runs, join it.
static int
s_shield_root (tr_actor_t *self, void *arg)
{
    s_shield_t *obs = arg;
    if (tr_task_spawn (self, obs->fn, obs, &obs->self))
        return 1;
    tr_task_cancel (obs->self);
    tr_task_t *task = obs->self;
    obs->join_rc = tr_task_join (&task, &obs->result);
    return 0;
}

//  Run fn as the cancelled task of a root.
static void
s_run_shielded (s_shield_t *obs, int (*fn) (tr_ctx_t *, void *))
{
    tu_subreaper ();
    obs->fn = fn;
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_shield_root, obs), 0);
    ck_assert_tr_ok (obs->join_rc);
}

START_TEST (test_a_cancelled_task_joins_a_subtask_that_finishes_after_it)
{
    s_shield_t obs;
    memset (&obs, 0, sizeof obs);
    obs.timeout_ms = 150;
    s_run_shielded (&obs, s_cleanup_main);
    ck_assert_int_eq (obs.result, 3);
    //  The plain join gives up at once and keeps the handle.
    ck_assert_tr_rc (obs.plain_rc, TR_ECANCELED);
    ck_assert (obs.sub_kept);
    //  The shielded one waited for the subtask's work to finish.
    ck_assert_tr_ok (obs.shielded_rc);
    ck_assert (obs.sub_done);
    ck_assert_int_ge (obs.joined_at, obs.sub_end);
    ck_assert_int_eq (obs.sub_result, 7);
    ck_assert (obs.sub_cleared);
    //  It stays cancelled.
    ck_assert_tr_rc (obs.checkpoint_rc, TR_ECANCELED);
    tu_assert_no_procs_left (0);
}
END_TEST

//  The subtask sleeps far longer than the joiner will wait.
static int
s_deadline_main (tr_ctx_t *ctx, void *arg)
{
    s_shield_t *obs = arg;
    if (tr_task_spawn (tr_ctx_actor (ctx), s_sub_main, obs, &obs->sub))
        return 1;
    int64_t start = tri_now_ms ();
    obs->shielded_rc = tr_task_join_shielded (&obs->sub, 100, &obs->sub_result);
    obs->timed_ms = tri_now_ms () - start;
    obs->sub_kept = obs->sub != NULL && !obs->sub_done;
    start = tri_now_ms ();
    obs->zero_rc = tr_task_join_shielded (&obs->sub, 0, NULL);
    obs->zero_ms = tri_now_ms () - start;
    //  Stop it rather than wait for it: then the join returns its end.
    tr_task_cancel (obs->sub);
    obs->again_rc = tr_task_join_shielded (&obs->sub, -1, &obs->sub_result);
    obs->sub_cleared = obs->sub == NULL;
    return 3;
}

START_TEST (test_a_shielded_join_honours_its_deadline)
{
    s_shield_t obs;
    memset (&obs, 0, sizeof obs);
    obs.timeout_ms = 30000;
    s_run_shielded (&obs, s_deadline_main);
    ck_assert_int_eq (obs.result, 3);
    ck_assert_tr_rc (obs.shielded_rc, TR_ETIMEDOUT);
    ck_assert_int_ge (obs.timed_ms, 100);
    ck_assert_int_lt (obs.timed_ms, tu_ms (2000));
    ck_assert (obs.sub_kept);
    //  0 does not wait.
    ck_assert_tr_rc (obs.zero_rc, TR_ETIMEDOUT);
    ck_assert_int_lt (obs.zero_ms, tu_ms (50));
    ck_assert_tr_ok (obs.again_rc);
    ck_assert (obs.sub_cleared);
    ck_assert (!obs.sub_done);
    ck_assert_tr_rc (obs.sub_result, TR_ECANCELED);
    tu_assert_no_procs_left (0);
}
END_TEST

//  The subtask ends at its first run, before the joiner runs (tasks run
//  in the order they were made ready).
static int
s_quick_main (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_shield_t *obs = arg;
    obs->sub_done = true;
    return 5;
}

static int
s_finished_main (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_shield_t *obs = arg;
    obs->sub_kept = obs->sub_done;
    obs->zero_rc = tr_task_join_shielded (&obs->sub, 0, &obs->sub_result);
    obs->sub_cleared = obs->sub == NULL;
    return 3;
}

static int
s_finished_root (tr_actor_t *self, void *arg)
{
    s_shield_t *obs = arg;
    tr_task_t *joiner;
    if (tr_task_spawn (self, s_quick_main, obs, &obs->sub)
    ||  tr_task_spawn (self, s_finished_main, obs, &joiner))
        return 1;
    tr_task_cancel (joiner);
    obs->join_rc = tr_task_join (&joiner, &obs->result);
    //  And from a task that is not cancelled, forever on a finished task.
    tr_task_t *quick;
    if (tr_task_spawn (self, s_quick_main, obs, &quick))
        return 1;
    obs->plain_rc = tr_task_join (&quick, NULL);    //  let it run
    if (tr_task_spawn (self, s_quick_main, obs, &quick)
    ||  tr_task_spawn (self, s_quick_main, obs, &obs->self))
        return 1;
    obs->again_rc = tr_task_join_shielded (&obs->self, -1, NULL);   //  both ran
    obs->shielded_rc = tr_task_join_shielded (&quick, -1, &obs->timeout_ms);
    return 0;
}

START_TEST (test_a_shielded_join_of_a_finished_task_returns_at_once)
{
    tu_subreaper ();
    s_shield_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_finished_root, &obs), 0);
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_int_eq (obs.result, 3);
    ck_assert (obs.sub_kept);               //  it had ended before the join
    ck_assert_tr_ok (obs.zero_rc);
    ck_assert_int_eq (obs.sub_result, 5);
    ck_assert (obs.sub_cleared);
    ck_assert_tr_ok (obs.plain_rc);
    ck_assert_tr_ok (obs.again_rc);
    ck_assert_tr_ok (obs.shielded_rc);
    ck_assert_int_eq (obs.timeout_ms, 5);
    tu_assert_no_procs_left (0);
}
END_TEST

static int
s_self_join_main (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_shield_t *obs = arg;
    obs->self_rc = tr_task_join_shielded (&obs->self, 0, NULL);
    return 3;
}

static int
s_invalid_root (tr_actor_t *self, void *arg)
{
    s_shield_t *obs = arg;
    tr_task_t *none = NULL;
    obs->plain_rc = tr_task_join_shielded (NULL, -1, NULL);
    obs->zero_rc = tr_task_join_shielded (&none, -1, NULL);
    if (tr_task_spawn (self, s_self_join_main, obs, &obs->self))
        return 1;
    tr_task_t *task = obs->self;
    obs->shielded_rc = tr_task_join_shielded (&task, -2, NULL);
    obs->sub_kept = task == obs->self;
    obs->join_rc = tr_task_join_shielded (&task, tu_ms (5000), &obs->result);
    return 0;
}

START_TEST (test_a_shielded_join_refuses_invalid_arguments)
{
    tu_subreaper ();
    s_shield_t obs;
    memset (&obs, 0, sizeof obs);
    //  Outside any task.
    tr_task_t *outside = (tr_task_t *) &obs;
    ck_assert_tr_rc (tr_task_join_shielded (&outside, 0, NULL), TR_EINVAL);
    ck_assert_ptr_eq (outside, (tr_task_t *) &obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_invalid_root, &obs), 0);
    ck_assert_tr_rc (obs.plain_rc, TR_EINVAL);
    ck_assert_tr_rc (obs.zero_rc, TR_EINVAL);
    ck_assert_tr_rc (obs.shielded_rc, TR_EINVAL);
    ck_assert (obs.sub_kept);
    ck_assert_tr_rc (obs.self_rc, TR_EINVAL);
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_int_eq (obs.result, 3);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  A timeout is a lower bound

typedef struct {
    int64_t shortest_us [2];    //  the shortest sleep of 1 ms, of 3 ms
    int failed_rc;
} s_sleeps_t;

//  Sleep 1 ms forty times and 3 ms ten times, each timed in microseconds.
static int
s_sleeps_root (tr_actor_t *self, void *arg)
{
    s_sleeps_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    const int ms [2] = { 1, 3 }, times [2] = { 40, 10 };
    for (int k = 0; k < 2; k++) {
        obs->shortest_us [k] = INT64_MAX;
        for (int i = 0; i < times [k]; i++) {
            int64_t start = tri_now_us ();
            int rc = tr_sleep (ctx, ms [k]);
            int64_t took = tri_now_us () - start;
            if (rc)
                obs->failed_rc = rc;
            if (took < obs->shortest_us [k])
                obs->shortest_us [k] = took;
        }
    }
    return 0;
}

START_TEST (test_a_sleep_never_ends_before_its_time)
{
    tu_subreaper ();
    s_sleeps_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_sleeps_root, &obs), 0);
    ck_assert_tr_ok (obs.failed_rc);
    ck_assert_int_ge (obs.shortest_us [0], 1000);
    ck_assert_int_ge (obs.shortest_us [1], 3000);
    tu_assert_no_procs_left (0);
}
END_TEST

//  A loop of 1 ms sleeps: each turn takes a millisecond and a little,
//  not two, as when deadlines were rounded up to a whole millisecond
//  (the loop then woke just after one and slept to the second next).
#define TURNS       101

static int
s_cmp_int64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

static int
s_turns_root (tr_actor_t *self, void *arg)
{
    int64_t *turn_us = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    int64_t at = tri_now_us ();
    for (int i = 0; i < TURNS; i++) {
        if (tr_sleep (ctx, 1))
            return 1;
        int64_t now = tri_now_us ();
        turn_us [i] = now - at;
        at = now;
    }
    return 0;
}

START_TEST (test_a_loop_of_one_ms_sleeps_turns_about_every_millisecond)
{
    tu_subreaper ();
    int64_t turn_us [TURNS];
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_turns_root, turn_us), 0);
    qsort (turn_us, TURNS, sizeof turn_us [0], s_cmp_int64);
    fprintf (stderr, "task: tr_sleep (1) in a loop: turns of %lld us (shortest), "
             "%lld us (median)\n", (long long) turn_us [0], (long long) turn_us [TURNS / 2]);
    ck_assert_int_ge (turn_us [0], 1000);
    ck_assert_msg (turn_us [TURNS / 2] < 1500, "the median turn took %lld us",
                   (long long) turn_us [TURNS / 2]);
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_a_deadline_of_no_wait_has_already_passed)
{
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_le (tri_deadline (0), tri_now_us ());
        ck_assert_int_le (tri_after_ms (0), tri_now_us ());
        ck_assert_int_eq (tri_deadline (-1), -1);
        int64_t at = tri_now_us ();
        ck_assert_int_ge (tri_after_ms (5), at + 5000);
        ck_assert_int_le (tri_after_ms (5), tri_now_us () + 5001);
        ck_assert_int_eq (tri_ms_left (tri_now_us () - 1), 0);
        //  Whole milliseconds, never fewer than are left.
        int64_t deadline = tri_now_us () + 2500;
        int64_t left = tri_ms_left (deadline);
        ck_assert_int_le (left, 3);
        ck_assert_int_ge (left * 1000, deadline - tri_now_us ());
    }
}
END_TEST

//  --------------------------------------------------------------------------

//  Every test case starts each test with a fresh scheduler.
static TCase *
s_tcase (Suite *suite, const char *name, int timeout_s)
{
    TCase *tc = tu_tcase (suite, name, timeout_s);
    tcase_add_checked_fixture (tc, s_setup, s_teardown);
    return tc;
}

//  --------------------------------------------------------------------------
//  The switch keeps what the C ABI says survives a call: callee-saved
//  registers and the floating-point state of each task.

static double s_fp [4];
static bool s_regs_kept;

static void
s_register_task (void *arg)
{
    int id = (int) (intptr_t) arg;
    volatile double x = 1.5 * id;
    register long keep1 = 1000 + id, keep2 = 2000 + id;
    for (int i = 0; i < 1000; i++) {
        s_yield ();
        x = x * 1.000001 + 0.5;
        if (keep1 != 1000 + id || keep2 != 2000 + id)
            s_regs_kept = false;
        __asm__ volatile ("" : "+r" (keep1), "+r" (keep2));
    }
    s_fp [id] = x;
}

START_TEST (test_registers_and_floating_point_survive_a_thousand_switches)
{
    s_regs_kept = true;
    for (int id = 0; id < 4; id++)
        ck_assert_ptr_nonnull (tri_task_new (s_register_task, (void *) (intptr_t) id, 0, false));
    s_loop ();
    ck_assert (s_regs_kept);
    for (int id = 0; id < 4; id++) {
        double want = 1.5 * id;
        for (int i = 0; i < 1000; i++)
            want = want * 1.000001 + 0.5;
        ck_assert_msg (s_fp [id] == want, "task %d computed %f, want %f", id, s_fp [id], want);
    }
}
END_TEST

static Suite *
s_suite (bool forking)
{
    Suite *suite = suite_create ("task");

    TCase *tc = s_tcase (suite, "scheduling", 20);
    tcase_add_test (tc, test_tasks_take_turns_in_fifo_order_at_each_park);
    tcase_add_test (tc, test_tasks_made_ready_during_a_run_run_in_the_same_run);
    tcase_add_test (tc, test_a_park_with_a_deadline_times_out_on_time);
    tcase_add_test (tc, test_deadlines_expire_earliest_first);
    tcase_add_test (tc, test_wake_passes_its_rc_and_clears_the_deadline);
    tcase_add_test (tc, test_a_task_carries_a_user_pointer);

    tc = s_tcase (suite, "cancel", 20);
    tcase_add_test (tc, test_cancel_wakes_a_parked_task_with_ecanceled);
    tcase_add_test (tc, test_a_task_cancelled_before_it_parks_does_not_park);
    tcase_add_test (tc, test_a_shielded_park_ignores_cancellation);

    tcase_add_test (tc, test_registers_and_floating_point_survive_a_thousand_switches);

    tc = s_tcase (suite, "join", 20);
    tcase_add_test (tc, test_join_waits_for_the_task_to_end);
    tcase_add_test (tc, test_join_times_out_or_is_cancelled);

    tc = s_tcase (suite, "stacks", 60);
    tcase_add_test (tc, test_finished_tasks_give_their_stacks_back_for_reuse);
    tcase_add_test (tc, test_the_stack_cache_is_capped_and_keeps_default_sizes_only);
    tcase_add_test (tc, test_the_default_stack_size_is_configurable);

    //  A crash ends the process: only with a fork per test. Under ASan its
    //  own SEGV handler reports the overflow ("stack-overflow") and exits
    //  with 1 instead of dying of the signal; a handler of ours still runs.
    if (forking) {
        tc = s_tcase (suite, "overflow", 20);
#ifndef TU_UNDER_ASAN
        tcase_add_test_raise_signal (tc, test_a_stack_overflow_kills_the_process_with_sigsegv, SIGSEGV);
#endif
        tcase_add_exit_test (tc, test_the_guard_page_is_recognised_in_a_sigsegv_handler, 42);
    }

    tc = s_tcase (suite, "pool", 30);
    tcase_add_test (tc, test_to_thread_returns_the_function_value);
    tcase_add_test (tc, test_to_thread_jobs_run_in_parallel);
    tcase_add_test (tc, test_a_cancelled_to_thread_returns_at_once_and_drops_the_job);
    tcase_add_test (tc, test_a_shielded_to_thread_waits_for_the_thread);
    tcase_add_test (tc, test_to_thread_in_a_cancelled_task_does_not_start_the_job);

    //  A whole actor each: tr_run sets the scheduler up itself.
    tc = tu_tcase (suite, "shielded join", 30);
    tcase_add_test (tc, test_a_cancelled_task_joins_a_subtask_that_finishes_after_it);
    tcase_add_test (tc, test_a_shielded_join_honours_its_deadline);
    tcase_add_test (tc, test_a_shielded_join_of_a_finished_task_returns_at_once);
    tcase_add_test (tc, test_a_shielded_join_refuses_invalid_arguments);
    tc = tu_tcase (suite, "timeouts", 30);
    tcase_add_test (tc, test_a_sleep_never_ends_before_its_time);
    tcase_add_test (tc, test_a_loop_of_one_ms_sleeps_turns_about_every_millisecond);
    tcase_add_test (tc, test_a_deadline_of_no_wait_has_already_passed);
    return suite;
}

int
main (void)
{
    const char *fork_env = getenv ("CK_FORK");
    bool forking = !(fork_env && strcmp (fork_env, "no") == 0);
    return tu_run_suite (s_suite (forking), CK_FORK_GETENV);
}
