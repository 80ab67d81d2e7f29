/*  =========================================================================
    test_rule12_ctrl_c.c - SIGINT or SIGTERM to an actor is a cancel

    Rule 12: the signal cancels the actor's tasks; its nurseries then
    cancel their children gracefully (each acknowledges and exits 0), and
    tr_run returns 128 + the signal. A second SIGINT kills the children.
    The test process is the root and signals itself; the second signal
    comes from a thread once the first has demonstrably been handled.
    =========================================================================
*/
#include "testutil.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>

typedef struct {
    int signal;                 //  what to send ourselves
    bool twice;                 //  and again, later
    int start_rc [2];
    int run_rc;                 //  the root's call parked in a child
    int close_rc;
    int children_exit [2];      //  after the close
    long long cancel_ms;        //  from the signal to tr_run's return
    long long signalled_at;
    tr_portal_t *watched;       //  the child the root's call is parked in
    pthread_t presser;
    int handled [2];            //  pipe: the root saw the first signal's cancel
    int done [2];               //  pipe: tr_run has returned
    bool parked;                //  the signal came once the call was parked
    bool pressed;               //  the second signal was sent
    long long handled_at, pressed_at;
} ctrl_c_t;

//  The runtime counts a second signal only once this long has passed
//  since it handled the first (src/runtime.c: one keypress can deliver
//  SIGINT twice in a burst), plus a margin for the clocks' rounding.
#define SECOND_SIGNAL_WINDOW_MS (250 + 50)

//  The second signal comes from a thread of its own: the root's tasks
//  are all cancelled by then and cannot wait. It is sent once the first
//  has been handled: the root's call parked in the child returned
//  TR_ECANCELED, which the root reports on the handled pipe.
static void *
s_second_press (void *arg)
{
    ctrl_c_t *st = arg;
    struct pollfd handled = { st->handled [0], POLLIN, 0 };
    if (poll (&handled, 1, tu_ms (5000)) != 1)
        return NULL;
    st->handled_at = tu_now_ms ();
    //  The runtime read the first signal before the root's call returned,
    //  so once the window has passed since this event a second signal
    //  counts. That is a clock deadline, not an event: wait for it on the
    //  done pipe, so that if tr_run returns first there is no second
    //  press into a process that has stopped listening.
    long long window_end = st->handled_at + SECOND_SIGNAL_WINDOW_MS;
    long long now;
    while ((now = tu_now_ms ()) < window_end) {
        struct pollfd done = { st->done [0], POLLIN, 0 };
        if (poll (&done, 1, (int) (window_end - now)) == 1)
            return NULL;
    }
    st->pressed_at = tu_now_ms ();
    st->pressed = true;
    kill (getpid (), st->signal);
    return NULL;
}

//  Send the signal once the root's call is parked in the child: its task
//  sleeps, or (twice) a worker thread of the child is inside the blocking
//  job, not merely queued for one (a queued job is dropped on cancel, and
//  the child would exit at once).
static int
s_signaller (tr_ctx_t *ctx, void *arg)
{
    ctrl_c_t *st = arg;
    long long deadline = tu_now_ms () + tu_ms (5000);
    int busy = 0;
    while (busy == 0 && tu_now_ms () < deadline) {
        tr_value_t *value = NULL;
        int cancels;
        if (st->twice) {
            if (tr_portal_run (st->watched, "blocking", NULL, &value) == 0)
                tr_unpack (tr_value_object (value), "i", &busy);
        }
        else
        if (tr_portal_run (st->watched, "cancels", NULL, &value) == 0)
            tr_unpack (tr_value_object (value), "[ii]", &cancels, &busy);
        tr_value_destroy (&value);
        if (busy == 0 && tr_sleep (ctx, 5))
            return 1;
    }
    st->parked = busy > 0;
    st->signalled_at = tu_now_ms ();
    kill (getpid (), st->signal);
    if (st->twice)
        pthread_create (&st->presser, NULL, s_second_press, st);
    return 0;
}

static int
s_root (tr_actor_t *self, void *arg)
{
    ctrl_c_t *st = arg;
    tr_nursery_t *n;
    tr_portal_t *p [2] = { NULL, NULL };
    tr_task_t *signaller;
    tr_nursery_open (self, &n);
    for (int i = 0; i < 2; i++)
        st->start_rc [i] = tr_nursery_start_actor (n, "sleeper", NULL, &p [i]);
    st->watched = p [0];
    tr_task_spawn (self, s_signaller, st, &signaller);
    //  In the second test the child's thread ignores the cancel for 10 s,
    //  so only the second signal's SIGKILL ends it early.
    tr_args_t *args = tr_pack ("[i]", 10000);
    st->run_rc = tr_portal_run (p [0], st->twice? "thread_sleep": "sleep", args, NULL);
    tr_args_destroy (&args);
    //  The call returned because the first signal cancelled it: say so to
    //  the presser (should the pipe fail, the test fails on run_rc).
    if (st->twice && st->run_rc == TR_ECANCELED && write (st->handled [1], "h", 1) != 1)
        st->run_rc = TR_ESYS;
    st->close_rc = tr_nursery_close (&n, NULL);
    tr_task_join (&signaller, NULL);
    return 0;
}

static void
s_check (ctrl_c_t *st)
{
    tu_subreaper ();
    ck_assert_int_eq (pipe2 (st->handled, O_CLOEXEC), 0);
    ck_assert_int_eq (pipe2 (st->done, O_CLOEXEC), 0);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_root, st);
    st->cancel_ms = tu_now_ms () - st->signalled_at;
    ck_assert_int_eq (write (st->done [1], "d", 1), 1);
    if (st->twice)
        pthread_join (st->presser, NULL);
    for (int i = 0; i < 2; i++) {
        close (st->handled [i]);
        close (st->done [i]);
    }
    ck_assert_int_eq (rc, 128 + st->signal);
    ck_assert_msg (st->parked, "the root's call never parked in the child");
    ck_assert_tr_ok (st->start_rc [0]);
    ck_assert_tr_ok (st->start_rc [1]);
    ck_assert_tr_rc (st->run_rc, TR_ECANCELED);
    tu_assert_no_procs_left (0);
}

START_TEST (test_sigint_cancels_the_tree_gracefully_and_returns_130)
{
    ctrl_c_t st = { .signal = SIGINT };
    s_check (&st);
    //  Every child acknowledged its cancel: no error, well within grace.
    ck_assert_tr_ok (st.close_rc);
    ck_assert_int_lt (st.cancel_ms, tu_ms (2000));
}
END_TEST

START_TEST (test_sigterm_cancels_the_tree_gracefully_and_returns_143)
{
    ctrl_c_t st = { .signal = SIGTERM };
    s_check (&st);
    ck_assert_tr_ok (st.close_rc);
    ck_assert_int_lt (st.cancel_ms, tu_ms (2000));
}
END_TEST

START_TEST (test_a_second_sigint_kills_the_children_at_once)
{
    //  The busy child acks only after its 10 s thread: without the second
    //  SIGINT the close would wait out the 3 s grace and SIGTERM it.
    ctrl_c_t st = { .signal = SIGINT, .twice = true };
    s_check (&st);
    ck_assert_msg (st.pressed, "the first signal was never seen handled");
    ck_assert_int_ge (st.pressed_at - st.handled_at, 250);
    ck_assert_int_lt (st.cancel_ms, tu_ms (2500));
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("rule12_ctrl_c");
    TCase *tc = tu_tcase (suite, "signals", 30);
    tcase_add_test (tc, test_sigint_cancels_the_tree_gracefully_and_returns_130);
    tcase_add_test (tc, test_sigterm_cancels_the_tree_gracefully_and_returns_143);
    tcase_add_test (tc, test_a_second_sigint_kills_the_children_at_once);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
