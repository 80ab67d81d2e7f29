/*  =========================================================================
    test_daemon.c - scenario: daemons started by hand, reached by endpoint

    A daemon is tests/worker started with --tr-daemon, as an operator
    would start one on another host. The test process starts it (and reaps
    it), reads the uid and endpoint it prints, and as a root reaches it
    with tr_portal_open.
    =========================================================================
*/
#include "testutil.h"
#include <poll.h>
#include <sys/syscall.h>


typedef struct {
    pid_t pid;
    int pidfd;
    char uid [256];
    char endpoint [256];
} daemon_t;

//  Start tests/worker as a daemon and read the line it prints.
static void
s_daemon_start (daemon_t *d, const char *name, const char *bind)
{
    int out [2];
    ck_assert_int_eq (pipe2 (out, O_CLOEXEC), 0);
    char *argv [] = { (char *) tu_worker_path (), "--tr-daemon", "--tr-name", (char *) name,
                      "--tr-bind", (char *) bind, NULL };
    d->pid = tu_spawn_tied (argv, out [1], -1, NULL);
    ck_assert_int_ge (d->pid, 0);
    close (out [1]);
    d->pidfd = (int) syscall (SYS_pidfd_open, d->pid, 0);
    ck_assert_int_ge (d->pidfd, 0);
    //  The line comes once the daemon is bound: wait for it (5 s at most).
    char line [600];
    tu_read_first_line (out [0], line, sizeof line, 5000);
    ck_assert_int_eq (sscanf (line, "%255s %255s", d->uid, d->endpoint), 2);
}

//  Wait for the daemon to exit; return its wait status, or -1.
static int
s_daemon_wait (daemon_t *d, int timeout_ms)
{
    struct pollfd item = { d->pidfd, POLLIN, 0 };
    int status = -1;
    if (poll (&item, 1, tu_ms (timeout_ms)) == 1)
        waitpid (d->pid, &status, 0);
    close (d->pidfd);
    return status;
}

//  --------------------------------------------------------------------------

typedef struct {
    const char *endpoint;
    bool leave_running;
    int open_rc, run_rc, cancel_rc, close_rc;
    int64_t sum;
    char uid [256];
} call_state_t;

static int
s_call_and_cancel (tr_actor_t *self, void *arg)
{
    call_state_t *st = arg;
    tr_portal_t *p = NULL;
    st->open_rc = tr_portal_open (self, st->endpoint, tu_ms (5000), &p);
    if (st->open_rc)
        return 1;
    snprintf (st->uid, sizeof st->uid, "%s", tr_portal_uid (p));
    tr_args_t *args = tr_pack ("[II]", (int64_t) 40, (int64_t) 2);
    tr_value_t *value = NULL;
    st->run_rc = tr_portal_run (p, "add", args, &value);
    tr_args_destroy (&args);
    if (st->run_rc == 0)
        tr_unpack (tr_value_object (value), "I", &st->sum);
    tr_value_destroy (&value);
    if (!st->leave_running)
        st->cancel_rc = tr_portal_cancel_actor (p, tu_ms (2000));
    st->close_rc = tr_portal_close (&p);
    return p == NULL? 0: 1;
}

START_TEST (test_a_daemon_is_called_through_its_endpoint_and_cancelled)
{
    tu_subreaper ();
    daemon_t d;
    s_daemon_start (&d, "adder", "ipc");
    ck_assert (strncmp (d.uid, "adder@", 6) == 0);
    call_state_t st = { .endpoint = d.endpoint };
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_call_and_cancel, &st), 0);
    ck_assert_tr_ok (st.open_rc);
    ck_assert_tr_ok (st.run_rc);
    ck_assert_int_eq (st.sum, 42);
    ck_assert_str_eq (st.uid, d.uid);
    ck_assert_tr_ok (st.cancel_rc);
    ck_assert_tr_ok (st.close_rc);
    int status = s_daemon_wait (&d, 5000);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0,
                   "daemon ended with status 0x%x", status);
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_a_daemon_on_tcp_stops_on_sigterm_with_143)
{
    tu_subreaper ();
    daemon_t d;
    s_daemon_start (&d, "tcpd", "tcp://127.0.0.1:*");
    ck_assert (strncmp (d.endpoint, "tcp://127.0.0.1:", 16) == 0);
    call_state_t st = { .endpoint = d.endpoint, .leave_running = true };
    tr_config_t config = { .name = "root" };
    //  Reach it once, then leave it running: only the signal stops it.
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_call_and_cancel, &st), 0);
    ck_assert_tr_ok (st.run_rc);
    ck_assert_int_eq (st.sum, 42);
    ck_assert_int_eq (kill (d.pid, SIGTERM), 0);
    int status = s_daemon_wait (&d, 5000);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 143,
                   "daemon ended with status 0x%x", status);
    tu_assert_no_procs_left (0);
}
END_TEST

typedef struct {
    const char *endpoint;
    int rc;
    long long elapsed;
    tu_err_t error;             //  the task's error after the open
} open_state_t;

static int
s_open_nobody (tr_actor_t *self, void *arg)
{
    open_state_t *st = arg;
    tr_portal_t *p = NULL;
    long long start = tu_now_ms ();
    st->rc = tr_portal_open (self, st->endpoint, 300, &p);
    st->elapsed = tu_now_ms () - start;
    tu_err_copy (&st->error, tr_ctx_error (tr_actor_ctx (self)));
    return p? 1: 0;
}

START_TEST (test_opening_a_portal_on_nobody_times_out)
{
    open_state_t st = { .endpoint = "ipc:///tmp/troupe-test-nobody-listens.ipc" };
    tr_config_t config = { .name = "root" };
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_open_nobody, &st), 0);
    ck_assert_tr_rc (st.rc, TR_ETIMEDOUT);
    ck_assert_int_ge (st.elapsed, 300);
    ck_assert_int_lt (st.elapsed, tu_ms (2000));
    ck_assert_tr_rc (st.error.code, TR_ETIMEDOUT);
    ck_assert_str_eq (st.error.type, "Timeout");
    ck_assert_str_eq (st.error.message, "no hello from ipc:///tmp/troupe-test-nobody-listens.ipc "
                                        "within 300 ms");
}
END_TEST

START_TEST (test_opening_a_portal_on_a_bad_endpoint_fails_at_once)
{
    open_state_t st = { .endpoint = "nonsense://here" };
    tr_config_t config = { .name = "root" };
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_open_nobody, &st), 0);
    ck_assert_tr_rc (st.rc, TR_ESYS);
    ck_assert_int_lt (st.elapsed, tu_ms (250));
    ck_assert_tr_rc (st.error.code, TR_ESYS);
    ck_assert_str_eq (st.error.type, "ConnectError");
    ck_assert_msg (strncmp (st.error.message, "cannot open a connection to nonsense://here: ", 45) == 0,
                   "the error says '%s'", st.error.message);
}
END_TEST

//  Two portals on one daemon, and calls through both at once.
typedef struct {
    const char *endpoint;
    int rc [2];
    int64_t sums [2];
} two_state_t;

typedef struct {
    tr_portal_t *p;
    int64_t base;
    int rc;
    int64_t sum;
} lane_t;

static int
s_lane (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    lane_t *lane = arg;
    for (int i = 0; i < 50 && lane->rc == 0; i++) {
        tr_args_t *args = tr_pack ("[II]", lane->base, (int64_t) i);
        tr_value_t *value = NULL;
        lane->rc = tr_portal_run (lane->p, "add", args, &value);
        int64_t v = 0;
        if (lane->rc == 0 && tr_unpack (tr_value_object (value), "I", &v) == 0)
            lane->sum += v;
        tr_value_destroy (&value);
        tr_args_destroy (&args);
    }
    return 0;
}

static int
s_two_portals (tr_actor_t *self, void *arg)
{
    two_state_t *st = arg;
    lane_t lanes [2] = { { .base = 1000 }, { .base = 2000 } };
    tr_task_t *tasks [2];
    for (int i = 0; i < 2; i++)
        if ((st->rc [i] = tr_portal_open (self, st->endpoint, tu_ms (5000), &lanes [i].p)))
            return 1;
    for (int i = 0; i < 2; i++)
        tr_task_spawn (self, s_lane, &lanes [i], &tasks [i]);
    for (int i = 0; i < 2; i++) {
        tr_task_join (&tasks [i], NULL);
        st->rc [i] = lanes [i].rc;
        st->sums [i] = lanes [i].sum;
    }
    tr_portal_cancel_actor (lanes [0].p, 2000);
    for (int i = 0; i < 2; i++)
        tr_portal_close (&lanes [i].p);
    return 0;
}

START_TEST (test_two_portals_on_one_daemon_call_at_once)
{
    tu_subreaper ();
    daemon_t d;
    s_daemon_start (&d, "shared", "ipc");
    two_state_t st = { .endpoint = d.endpoint };
    tr_config_t config = { .name = "root" };
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_two_portals, &st), 0);
    ck_assert_tr_ok (st.rc [0]);
    ck_assert_tr_ok (st.rc [1]);
    //  sum over i < 50 of base + i
    ck_assert_int_eq (st.sums [0], 50 * 1000 + 1225);
    ck_assert_int_eq (st.sums [1], 50 * 2000 + 1225);
    int status = s_daemon_wait (&d, 5000);
    ck_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    tu_assert_no_procs_left (0);
}
END_TEST

//  A call parked in a daemon that is then killed (or stopped) fails.
typedef struct {
    const char *endpoint;
    pid_t daemon;
    int signal;
    int open_rc, call_rc;
    char type [64];
    long long fail_ms;          //  from the signal to the call's failure
} lost_state_t;

typedef struct {
    tr_portal_t *p;
    int rc;
    char type [64];
    long long ended;
} sleeper_t;

static int
s_sleeper (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    sleeper_t *sl = arg;
    tr_args_t *args = tr_pack ("[i]", 20000);
    sl->rc = tr_portal_run (sl->p, "sleep", args, NULL);
    sl->ended = tu_now_ms ();
    tr_args_destroy (&args);
    const tr_error_t *err = tr_portal_error (sl->p);
    snprintf (sl->type, sizeof sl->type, "%s", err? tr_error_type (err): "");
    return 0;
}

static int
s_lost_root (tr_actor_t *self, void *arg)
{
    lost_state_t *st = arg;
    sleeper_t sl = { 0 };
    if ((st->open_rc = tr_portal_open (self, st->endpoint, tu_ms (5000), &sl.p)))
        return 1;
    tr_task_t *task;
    tr_task_spawn (self, s_sleeper, &sl, &task);
    //  Once the daemon reports the call sleeping, take the daemon away.
    long long deadline = tu_now_ms () + tu_ms (5000);
    int sleeping = 0, cancels;
    while (!sleeping && tu_now_ms () < deadline) {
        tr_value_t *value = NULL;
        if (tr_portal_run (sl.p, "cancels", NULL, &value) == 0)
            tr_unpack (tr_value_object (value), "[ii]", &cancels, &sleeping);
        tr_value_destroy (&value);
        if (!sleeping)
            tr_sleep (tr_actor_ctx (self), 5);
    }
    long long signalled = tu_now_ms ();
    kill (st->daemon, st->signal);
    tr_task_join (&task, NULL);
    st->call_rc = sl.rc;
    snprintf (st->type, sizeof st->type, "%s", sl.type);
    st->fail_ms = sl.ended - signalled;
    tr_portal_close (&sl.p);
    return 0;
}

static void
s_check_lost (int sig, long long within_ms)
{
    tu_subreaper ();
    daemon_t d;
    s_daemon_start (&d, "lost", "tcp://127.0.0.1:*");
    lost_state_t st = { .endpoint = d.endpoint, .daemon = d.pid, .signal = sig };
    //  Heartbeats every 100 ms, silence for 1 s is death.
    tr_config_t config = { .name = "root", .heartbeat_ivl_ms = 100,
                           .heartbeat_timeout_ms = 1000 };
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_lost_root, &st), 0);
    if (sig == SIGSTOP)
        kill (d.pid, SIGKILL);
    s_daemon_wait (&d, 5000);
    ck_assert_tr_ok (st.open_rc);
    ck_assert_tr_rc (st.call_rc, TR_ECLOSED);
    ck_assert_str_eq (st.type, "ConnectionLost");
    ck_assert_msg (st.fail_ms < tu_ms (within_ms), "the call failed %lld ms after the signal", st.fail_ms);
    tu_assert_no_procs_left (0);
}

//  A daemon killed mid-stream: the receive ends at once, connection lost.
typedef struct {
    const char *endpoint;
    pid_t daemon;
    int open_rc, values, recv_rc;
    char type [64];
    long long fail_ms;
} stream_lost_t;

static int
s_stream_lost_root (tr_actor_t *self, void *arg)
{
    stream_lost_t *st = arg;
    tr_portal_t *p = NULL;
    if ((st->open_rc = tr_portal_open (self, st->endpoint, tu_ms (5000), &p)))
        return 1;
    tr_context_t *c;
    tr_args_t *args = tr_pack ("[I]", (int64_t) 1 << 40);
    st->open_rc = tr_portal_open_context (p, "ctx_count", args, &c, NULL);
    tr_args_destroy (&args);
    if (st->open_rc == 0) {
        tr_stream_t *s;
        tr_context_open_stream (c, &s);
        const msgpack_object *value;
        while (st->values < 1000 && tr_stream_recv (s, &value, tu_ms (5000)) == 0)
            st->values++;
        long long signalled = tu_now_ms ();
        kill (st->daemon, SIGKILL);
        while ((st->recv_rc = tr_stream_recv (s, &value, tu_ms (10000))) == 0)
            ;
        st->fail_ms = tu_now_ms () - signalled;
        const tr_error_t *err = tr_context_error (c);
        snprintf (st->type, sizeof st->type, "%s", err? tr_error_type (err): "");
        tr_context_close (&c);
    }
    tr_portal_close (&p);
    return 0;
}

START_TEST (test_a_stream_from_a_daemon_that_is_killed_ends_at_once)
{
    tu_subreaper ();
    daemon_t d;
    s_daemon_start (&d, "streamer", "tcp://127.0.0.1:*");
    stream_lost_t st = { .endpoint = d.endpoint, .daemon = d.pid };
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_stream_lost_root, &st), 0);
    s_daemon_wait (&d, 5000);
    ck_assert_tr_ok (st.open_rc);
    ck_assert_int_eq (st.values, 1000);
    ck_assert_tr_rc (st.recv_rc, TR_ECLOSED);
    ck_assert_str_eq (st.type, "ConnectionLost");
    ck_assert_msg (st.fail_ms < tu_ms (1500), "the receive ended %lld ms after the kill",
                   st.fail_ms);
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_a_call_into_a_daemon_that_is_killed_fails_at_once)
{
    s_check_lost (SIGKILL, 1500);
}
END_TEST

START_TEST (test_a_call_into_a_daemon_that_stops_answering_fails_after_the_heartbeat_timeout)
{
    s_check_lost (SIGSTOP, 3500);
}
END_TEST

//  A portal closed while other tasks' calls are in flight through it.
#define IN_FLIGHT 3

typedef struct {
    tr_portal_t *p;
    int rc;
} in_flight_t;

static int
s_in_flight (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    in_flight_t *call = arg;
    tr_args_t *args = tr_pack ("[i]", 20000);
    //  The portal may be freed under this call: touch it no more after.
    call->rc = tr_portal_run (call->p, "sleep", args, NULL);
    tr_args_destroy (&args);
    return 0;
}

typedef struct {
    const char *endpoint;
    int open_rc [2];
    bool sleeping;
    int close_rc;
    bool portal_null;
    in_flight_t calls [IN_FLIGHT];
    long long fail_ms;              //  from the close to the last call's end
    int after_rc;
    int64_t after;
} closed_under_t;

static int
s_closed_under (tr_actor_t *self, void *arg)
{
    closed_under_t *st = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_portal_t *p = NULL, *watcher = NULL;
    if ((st->open_rc [0] = tr_portal_open (self, st->endpoint, 5000, &p))
    ||  (st->open_rc [1] = tr_portal_open (self, st->endpoint, 5000, &watcher))) {
        tr_portal_close (&p);
        return 1;
    }
    tr_task_t *tasks [IN_FLIGHT];
    for (int i = 0; i < IN_FLIGHT; i++) {
        st->calls [i].p = p;
        tr_task_spawn (self, s_in_flight, &st->calls [i], &tasks [i]);
    }
    //  Once the daemon reports all of them sleeping, close the portal.
    long long deadline = tu_now_ms () + 5000;
    int sleeping = 0, cancels;
    while (sleeping < IN_FLIGHT && tu_now_ms () < deadline) {
        tr_value_t *value = NULL;
        if (tr_portal_run (watcher, "cancels", NULL, &value) == 0)
            tr_unpack (tr_value_object (value), "[ii]", &cancels, &sleeping);
        tr_value_destroy (&value);
        if (sleeping < IN_FLIGHT)
            tr_sleep (ctx, 5);
    }
    st->sleeping = sleeping == IN_FLIGHT;
    long long t0 = tu_now_ms ();
    st->close_rc = tr_portal_close (&p);
    st->portal_null = p == NULL;
    for (int i = 0; i < IN_FLIGHT; i++)
        tr_task_join (&tasks [i], NULL);
    st->fail_ms = tu_now_ms () - t0;
    //  The daemon serves on.
    tr_args_t *args = tr_pack ("[ii]", 40, 2);
    tr_value_t *value = NULL;
    st->after_rc = tr_portal_run (watcher, "add", args, &value);
    tr_args_destroy (&args);
    if (st->after_rc == 0)
        tr_unpack (tr_value_object (value), "I", &st->after);
    tr_value_destroy (&value);
    tr_portal_close (&watcher);
    return 0;
}

START_TEST (test_closing_a_portal_fails_the_calls_in_flight_as_closed_and_the_daemon_serves_on)
{
    tu_subreaper ();
    daemon_t d;
    s_daemon_start (&d, "sleepy", "ipc");
    closed_under_t st = { .endpoint = d.endpoint };
    tr_config_t config = { .name = "root" };
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_closed_under, &st), 0);
    //  Its three calls still sleep there: a signal cancels them.
    ck_assert_int_eq (kill (d.pid, SIGTERM), 0);
    int status = s_daemon_wait (&d, 5000);
    ck_assert_tr_ok (st.open_rc [0]);
    ck_assert_tr_ok (st.open_rc [1]);
    ck_assert_msg (st.sleeping, "the daemon never reported the calls sleeping");
    ck_assert_tr_ok (st.close_rc);
    ck_assert_msg (st.portal_null, "the close left the portal");
    for (int i = 0; i < IN_FLIGHT; i++)
        ck_assert_tr_rc (st.calls [i].rc, TR_ECLOSED);
    ck_assert_msg (st.fail_ms < 1000, "the calls failed %lld ms after the close", st.fail_ms);
    ck_assert_tr_ok (st.after_rc);
    ck_assert_int_eq (st.after, 42);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 143,
                   "daemon ended with status 0x%x", status);
    tu_assert_no_procs_left (0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("daemon");
    TCase *tc = tu_tcase (suite, "daemon", 30);
    tcase_add_test (tc, test_a_daemon_is_called_through_its_endpoint_and_cancelled);
    tcase_add_test (tc, test_two_portals_on_one_daemon_call_at_once);
    tcase_add_test (tc, test_closing_a_portal_fails_the_calls_in_flight_as_closed_and_the_daemon_serves_on);
    tcase_add_test (tc, test_a_daemon_on_tcp_stops_on_sigterm_with_143);
    tcase_add_test (tc, test_a_call_into_a_daemon_that_is_killed_fails_at_once);
    tcase_add_test (tc, test_a_stream_from_a_daemon_that_is_killed_ends_at_once);
    tcase_add_test (tc, test_a_call_into_a_daemon_that_stops_answering_fails_after_the_heartbeat_timeout);
    tcase_add_test (tc, test_opening_a_portal_on_nobody_times_out);
    tcase_add_test (tc, test_opening_a_portal_on_a_bad_endpoint_fails_at_once);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
