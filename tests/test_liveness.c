/*  =========================================================================
    test_liveness.c - stopped and silent peers are detected, departed ones
    forgotten

    The link between a parent and its child runs on an endpoint of the
    parent's own for children, without heartbeats: each reads the other's
    process state every heartbeat interval. ZMTP heartbeats run on every
    portal opened on an endpoint. A child stopped with SIGSTOP is lost:
    its parent kills and reaps it, its calls fail with ConnectionLost, and
    so do its contexts' streams; one stopped for less than the timeout is
    not. A child whose parent is stopped cancels itself and exits 1. A
    daemon stopped under a portal fails that portal's calls. A child busy
    without checkpoints is not lost: its process runs. A peer that leaves an actor's ROUTER (closes
    its portal, exits, is killed) is forgotten: a daemon on which portals
    come and go keeps a flat count of peers, descriptors and memory.

    Bounds use the default heartbeat settings: interval 500 ms, timeout
    3000 ms. A peer that stops is lost within the timeout; the bounds add
    a margin of 1500 ms (scaled by tu_ms) for the loop and a loaded host.
    =========================================================================
*/
#include "troupe_private.h"
#include "testutil.h"
#include "testproc.h"
#include <errno.h>
#include <poll.h>
#include <zmq.h>
#include <signal.h>

#define HB_TIMEOUT_MS   3000        //  tr_config_t's default
#define LOST_BOUND_MS   (HB_TIMEOUT_MS + 1500)

//  The state letter of /proc/pid/stat, 0 if the process is gone, and its
//  exit code field (wait status form) once it is a zombie.
static char
s_proc_state (int pid, int *exit_code)
{
    char path [64], buf [1024];
    snprintf (path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return 0;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf [n] = 0;
    char *end = strrchr (buf, ')');
    if (!end)
        return 0;
    if (exit_code) {
        //  Field 52, the last: fields after the name start at 3.
        char *last = strrchr (buf, ' ');
        *exit_code = last? atoi (last + 1): -1;
    }
    return end [2];
}

//  --------------------------------------------------------------------------
//  A stopped child

typedef struct {
    tr_portal_t *p;
    int pid;
    long long stopped_at;
} stopper_t;

//  Once the child sleeps in the call under test, stop it.
static int
s_stopper (tr_ctx_t *ctx, void *arg)
{
    stopper_t *st = arg;
    if (!tu_wait_sleeping (ctx, st->p, 1, 5000))
        return 1;
    st->stopped_at = tu_now_ms ();
    return kill (st->pid, SIGSTOP);
}

typedef struct {
    int run_rc, stopper_rc;
    long long elapsed;
    tu_err_t error;
    bool gone;
    int cont_rc, cont_errno;
} stop_obs_t;

static int
s_stop_child (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    stop_obs_t *obs = arg;
    stopper_t st = { .p = p, .pid = tr_portal_pid (p) };
    tr_task_t *task;
    if (tr_task_spawn (tr_ctx_actor (ctx), s_stopper, &st, &task))
        return 1;
    obs->run_rc = tu_call (p, "sleep", tr_pack ("[i]", 60000), NULL);
    obs->elapsed = tu_now_ms () - st.stopped_at;
    tu_err_copy (&obs->error, tr_portal_error (p));
    tr_task_join (&task, &obs->stopper_rc);
    obs->gone = tu_process_gone (ctx, st.pid, 2000);
    //  Nothing to resurrect: the process is gone.
    obs->cont_rc = kill (st.pid, SIGCONT);
    obs->cont_errno = errno;
    return 0;
}

START_TEST (test_a_stopped_child_is_lost_killed_and_reaped)
{
    tu_subreaper ();
    stop_obs_t obs = { 0 };
    tu_frame_t frame = { .body = s_stop_child, .obs = &obs };
    tu_run_frame (&frame, NULL);
    fprintf (stderr, "stopped child: call failed %lld ms after the stop\n", obs.elapsed);
    ck_assert_int_eq (obs.stopper_rc, 0);
    //  Its call failed with its loss, within the heartbeat timeout.
    ck_assert_tr_rc (obs.run_rc, TR_ECRASHED);
    ck_assert_str_eq (obs.error.type, "ConnectionLost");
    ck_assert_contains (obs.error.message, "stopped answering within the heartbeat timeout");
    ck_assert_msg (obs.elapsed < tu_ms (LOST_BOUND_MS),
                   "the call failed %lld ms after the stop", obs.elapsed);
    //  Killed and reaped; SIGCONT finds nobody.
    ck_assert (obs.gone);
    ck_assert_int_eq (obs.cont_rc, -1);
    ck_assert_int_eq (obs.cont_errno, ESRCH);
    //  The nursery lists the loss as the child's failure.
    ck_assert_tr_rc (frame.close_rc, TR_ECRASHED);
    ck_assert_uint_eq (frame.close_errors, 1);
    ck_assert_str_eq (frame.close_error.type, "ConnectionLost");
    ck_assert_int_eq (frame.close_error.signal, SIGKILL);
    tu_assert_no_procs_left (0);
}
END_TEST

//  A context open on the child when it is stopped: its stream's receive
//  and its result fail with the loss.
typedef struct {
    int open_rc, echo_rc, recv_rc, result_rc;
    long long elapsed;
    tu_err_t error;
    bool gone;
} stop_ctx_obs_t;

static int
s_stop_child_in_context (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    stop_ctx_obs_t *obs = arg;
    int pid = tr_portal_pid (p);
    tr_context_t *c = NULL;
    tr_stream_t *s = NULL;
    const msgpack_object *value;
    if ((obs->open_rc = tr_portal_open_context (p, "ctx_echo", NULL, &c, NULL)))
        return 1;
    tr_context_open_stream (c, &s);
    tr_stream_send_pack (s, "i", 1);
    obs->echo_rc = tr_stream_recv (s, &value, tu_ms (5000));
    kill (pid, SIGSTOP);
    long long start = tu_now_ms ();
    obs->recv_rc = tr_stream_recv (s, &value, tu_ms (LOST_BOUND_MS + 5000));
    obs->elapsed = tu_now_ms () - start;
    obs->result_rc = tr_context_result (c, &value);
    tu_err_copy (&obs->error, tr_context_error (c));
    tr_stream_close (&s);
    tr_context_close (&c);
    obs->gone = tu_process_gone (ctx, pid, 2000);
    return 0;
}

START_TEST (test_a_context_on_a_stopped_child_fails_with_its_loss)
{
    tu_subreaper ();
    stop_ctx_obs_t obs = { 0 };
    tu_frame_t frame = { .body = s_stop_child_in_context, .obs = &obs };
    tu_run_frame (&frame, NULL);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_tr_ok (obs.echo_rc);
    ck_assert_tr_rc (obs.recv_rc, TR_ECRASHED);
    ck_assert_msg (obs.elapsed < tu_ms (LOST_BOUND_MS),
                   "the receive failed %lld ms after the stop", obs.elapsed);
    ck_assert_tr_rc (obs.result_rc, TR_ECRASHED);
    ck_assert_str_eq (obs.error.type, "ConnectionLost");
    ck_assert (obs.gone);
    ck_assert_tr_rc (frame.close_rc, TR_ECRASHED);
    ck_assert_str_eq (frame.close_error.type, "ConnectionLost");
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  A stopped parent: root -> middle -> grandchild, the middle one stopped

typedef struct {
    int hold_rc, middle_pid, grandchild_pid;
    char state;                     //  the grandchild's, when seen ended
    int exit_code;
    long long elapsed;
} middle_obs_t;

static int
s_stop_middle (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    middle_obs_t *obs = arg;
    obs->hold_rc = tu_call_int (p, "hold_grandchild", NULL, &obs->grandchild_pid);
    obs->middle_pid = tr_portal_pid (p);
    if (obs->grandchild_pid <= 0)
        return 1;
    kill (obs->middle_pid, SIGSTOP);
    long long start = tu_now_ms ();
    //  The grandchild exits by itself: a zombie of its stopped parent.
    long long deadline = start + tu_ms (LOST_BOUND_MS + 2000);
    while (tu_now_ms () < deadline) {
        obs->state = s_proc_state (obs->grandchild_pid, &obs->exit_code);
        if (obs->state == 'Z' || obs->state == 0)
            break;
        if (tr_sleep (ctx, 10))
            break;
    }
    obs->elapsed = tu_now_ms () - start;
    //  The middle one is still stopped (this root's timeout is longer):
    //  end it, so the orphan comes back to us.
    kill (obs->middle_pid, SIGKILL);
    return 0;
}

START_TEST (test_a_child_whose_parent_is_stopped_exits_by_itself)
{
    tu_subreaper ();
    middle_obs_t obs = { 0 };
    tu_frame_t frame = { .body = s_stop_middle, .obs = &obs, .name = "middle" };
    tr_config_t config = tu_config ();
    //  The root's own heartbeats would lose the middle one only later.
    config.heartbeat_timeout_ms = 20000;
    tu_run_frame (&frame, &config);
    fprintf (stderr, "stopped parent: the grandchild went %lld ms after the stop\n",
             obs.elapsed);
    ck_assert_tr_ok (obs.hold_rc);
    ck_assert_int_gt (obs.grandchild_pid, 0);
    ck_assert_msg (obs.state == 'Z', "grandchild %d in state '%c' after %lld ms",
                   obs.grandchild_pid, obs.state? obs.state: '-', obs.elapsed);
    ck_assert_msg (obs.elapsed < tu_ms (LOST_BOUND_MS),
                   "the grandchild took %lld ms to go", obs.elapsed);
    //  It cancelled itself like an orphan (rule 11): exit status 1.
    ck_assert_msg (WIFEXITED (obs.exit_code) && WEXITSTATUS (obs.exit_code) == 1,
                   "grandchild ended with wait status 0x%x", obs.exit_code);
    ck_assert_tr_rc (frame.close_rc, TR_ECRASHED);
    //  The orphan came back to us and is reaped here.
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A child stopped for less than the heartbeat timeout is nothing

typedef struct {
    int before_rc, after_rc;
    int64_t sum;
    char state;                     //  the child's while stopped
} short_stop_obs_t;

static int
s_stop_child_briefly (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    short_stop_obs_t *obs = arg;
    int pid = tr_portal_pid (p);
    obs->before_rc = tu_call (p, "add", tr_pack ("[II]", (int64_t) 1, (int64_t) 1), NULL);
    kill (pid, SIGSTOP);
    //  Stopped across several checks of its state, well short of the
    //  timeout: the stop is what is under test, not a synchronisation.
    tr_sleep (ctx, HB_TIMEOUT_MS / 2);
    obs->state = s_proc_state (pid, NULL);
    kill (pid, SIGCONT);
    tr_value_t *value = NULL;
    obs->after_rc = tu_call (p, "add", tr_pack ("[II]", (int64_t) 40, (int64_t) 2), &value);
    if (obs->after_rc == 0)
        tr_unpack (tr_value_object (value), "I", &obs->sum);
    tr_value_destroy (&value);
    return 0;
}

START_TEST (test_a_child_stopped_shorter_than_the_timeout_is_not_lost)
{
    tu_subreaper ();
    short_stop_obs_t obs = { 0 };
    tu_frame_t frame = { .body = s_stop_child_briefly, .obs = &obs };
    tu_run_frame (&frame, NULL);
    ck_assert_tr_ok (obs.before_rc);
    ck_assert_msg (obs.state == 'T', "the child was in state '%c'", obs.state? obs.state: '-');
    ck_assert_tr_ok (obs.after_rc);
    ck_assert_int_eq (obs.sum, 42);
    ck_assert_tr_ok (frame.close_rc);
    ck_assert_uint_eq (frame.close_errors, 0);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  A child's link to its parent: the parent's endpoint for children

//  How many connected unix sockets bear path: the ends accepted by the
//  listener bound there.
static int
s_unix_conns (const char *path)
{
    FILE *f = fopen ("/proc/net/unix", "r");
    if (!f)
        return -1;
    char line [512];
    int count = 0;
    while (fgets (line, sizeof line, f)) {
        //  Num RefCount Protocol Flags Type St Inode Path
        char state [8], name [400];
        if (sscanf (line, "%*s %*s %*s %*s %*s %7s %*s %399s", state, name) == 2
        &&  streq (state, "03") && streq (name, path))
            count++;
    }
    fclose (f);
    return count;
}

typedef struct {
    char endpoint [256], local [256];
    int info_rc;
    int on_public, on_local;
} link_obs_t;

static int
s_look_at_the_link (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    link_obs_t *obs = arg;
    snprintf (obs->endpoint, sizeof obs->endpoint, "%s", tr_actor_endpoint (tr_ctx_actor (ctx)));
    snprintf (obs->local, sizeof obs->local, "%s", tri_peer_local_endpoint ());
    //  A call on the link, so that it is up.
    obs->info_rc = tu_call (p, "tr.info", NULL, NULL);
    obs->on_public = s_unix_conns (obs->endpoint + 6);
    obs->on_local = s_unix_conns (obs->local + 6);
    return 0;
}

START_TEST (test_a_child_reaches_its_parent_on_an_endpoint_of_its_own)
{
    tu_subreaper ();
    link_obs_t obs = { 0 };
    tu_frame_t frame = { .body = s_look_at_the_link, .obs = &obs };
    tu_run_frame (&frame, NULL);
    ck_assert_tr_ok (obs.info_rc);
    ck_assert_msg (strncmp (obs.endpoint, "ipc://", 6) == 0, "endpoint %s", obs.endpoint);
    ck_assert_msg (strncmp (obs.local, "ipc://", 6) == 0, "local endpoint %s", obs.local);
    ck_assert_str_ne (obs.endpoint, obs.local);
    //  The child's connection was accepted on the endpoint for children,
    //  none on the public one: its lease with the registry we serve rides
    //  on that link too.
    ck_assert_int_eq (obs.on_local, 1);
    ck_assert_int_eq (obs.on_public, 0);
    ck_assert_tr_ok (frame.close_rc);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  A busy child is not lost

typedef struct {
    int run_rc;
    char reply [16];
} busy_obs_t;

static int
s_busy_child (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    busy_obs_t *obs = arg;
    tr_value_t *value = NULL;
    //  Longer than the heartbeat timeout, without a checkpoint.
    obs->run_rc = tu_call (p, "busy", tr_pack ("[i]", HB_TIMEOUT_MS + 2000), &value);
    const char *text = NULL;
    if (obs->run_rc == 0 && tr_unpack (tr_value_object (value), "s", &text) == 0)
        snprintf (obs->reply, sizeof obs->reply, "%s", text);
    tr_value_destroy (&value);
    return 0;
}

START_TEST (test_a_child_busy_past_the_heartbeat_timeout_is_not_lost)
{
    tu_subreaper ();
    busy_obs_t obs = { 0 };
    tu_frame_t frame = { .body = s_busy_child, .obs = &obs };
    tu_run_frame (&frame, NULL);
    ck_assert_tr_ok (obs.run_rc);
    ck_assert_str_eq (obs.reply, "busy");
    ck_assert_tr_ok (frame.close_rc);
    ck_assert_uint_eq (frame.close_errors, 0);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  Daemons

static void
s_daemon_start (tu_proc_t *d, const char *name)
{
    const char *args [] = { "--tr-daemon", "--tr-name", name, "--tr-bind", "ipc", NULL };
    tu_proc_spawn_io (d, tu_worker_path (), args, false);
    ck_assert (tu_proc_pump (d, tu_now_ms () + tu_ms (5000), tu_proc_has_line, NULL));
    ck_assert_int_eq (sscanf (d->out_text, "%255s %255s", d->uid, d->endpoint), 2);
}

//  The daemon's peers (tr.info) through p.
static int
s_peers (tr_portal_t *p, int *peers)
{
    tr_value_t *value = NULL;
    int rc = tr_portal_run (p, "tr.info", NULL, &value);
    if (rc == 0 && tr_unpack (tr_value_object (value), "{s:i}", "peers", peers))
        rc = TR_EFORMAT;
    tr_value_destroy (&value);
    return rc;
}

typedef struct {
    const char *endpoint;
    int pid;
    int open_rc, first_rc, run_rc, again_rc, cancel_rc;
    long long elapsed;
    tu_err_t error;
    int64_t sum;
} daemon_stop_t;

static int
s_stop_daemon (tr_actor_t *self, void *arg)
{
    daemon_stop_t *st = arg;
    tr_portal_t *p = NULL;
    if ((st->open_rc = tr_portal_open (self, st->endpoint, tu_ms (5000), &p)))
        return 1;
    st->first_rc = tu_call (p, "add", tr_pack ("[II]", (int64_t) 1, (int64_t) 1), NULL);
    kill (st->pid, SIGSTOP);
    long long start = tu_now_ms ();
    st->run_rc = tu_call (p, "sleep", tr_pack ("[i]", 60000), NULL);
    st->elapsed = tu_now_ms () - start;
    tu_err_copy (&st->error, tr_portal_error (p));
    tr_portal_close (&p);
    kill (st->pid, SIGCONT);
    //  It serves new portals.
    if ((st->again_rc = tr_portal_open (self, st->endpoint, tu_ms (5000), &p)))
        return 1;
    tr_value_t *value = NULL;
    st->again_rc = tu_call (p, "add", tr_pack ("[II]", (int64_t) 40, (int64_t) 2), &value);
    if (st->again_rc == 0)
        tr_unpack (tr_value_object (value), "I", &st->sum);
    tr_value_destroy (&value);
    st->cancel_rc = tr_portal_cancel_actor (p, tu_ms (3000));
    tr_portal_close (&p);
    return 0;
}

START_TEST (test_a_stopped_daemon_fails_its_portals_calls_and_serves_again_after_sigcont)
{
    tu_subreaper ();
    tu_proc_t d;
    s_daemon_start (&d, "stopped");
    daemon_stop_t st = { .endpoint = d.endpoint, .pid = d.pid };
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_stop_daemon, &st), 0);
    fprintf (stderr, "stopped daemon: call failed %lld ms after the stop\n", st.elapsed);
    ck_assert_tr_ok (st.open_rc);
    ck_assert_tr_ok (st.first_rc);
    ck_assert_tr_rc (st.run_rc, TR_ECLOSED);
    ck_assert_str_eq (st.error.type, "ConnectionLost");
    ck_assert_msg (st.elapsed < tu_ms (LOST_BOUND_MS),
                   "the call failed %lld ms after the stop", st.elapsed);
    ck_assert_tr_ok (st.again_rc);
    ck_assert_int_eq (st.sum, 42);
    ck_assert_tr_ok (st.cancel_rc);
    tu_proc_expect_exit (&d, 5000, 0);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  Departed peers are forgotten

//  What the daemon holds.
typedef struct {
    int peers;
    int fds;
    long rss_kb;
} holdings_t;

static int
s_count_fds (int pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/fd", pid);
    DIR *dir = opendir (path);
    if (!dir)
        return -1;
    int count = 0;
    struct dirent *e;
    while ((e = readdir (dir)))
        if (e->d_name [0] != '.')
            count++;
    closedir (dir);
    return count;
}

static long
s_rss_kb (int pid)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen (path, "r");
    long kb = -1;
    while (f && fgets (line, sizeof line, f))
        if (strncmp (line, "VmRSS:", 6) == 0)
            kb = atol (line + 6);
    if (f)
        fclose (f);
    return kb;
}

typedef struct {
    const char *endpoint;
    int pid;
    int rounds;                     //  portals opened and closed
    int want_peers;                 //  wait until the daemon holds this many
    bool cancel;                    //  cancel the daemon at the end
    int rc;
    holdings_t before, after;
} churn_t;

//  Wait until the daemon holds want peers (the probe's own included);
//  then read what it holds.
static int
s_settle (tr_ctx_t *ctx, tr_portal_t *p, const churn_t *st, holdings_t *h)
{
    long long deadline = tu_now_ms () + tu_ms (LOST_BOUND_MS);
    int rc;
    while ((rc = s_peers (p, &h->peers)) == 0 && h->peers != st->want_peers
    &&     tu_now_ms () < deadline)
        tr_sleep (ctx, 20);
    h->fds = s_count_fds (st->pid);
    h->rss_kb = s_rss_kb (st->pid);
    return rc;
}

//  A long-lived root: one portal held throughout, rounds portals opened,
//  called and closed beside it.
static int
s_churn (tr_actor_t *self, void *arg)
{
    churn_t *st = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_portal_t *probe = NULL;
    if ((st->rc = tr_portal_open (self, st->endpoint, tu_ms (5000), &probe)))
        return 1;
    st->rc = s_settle (ctx, probe, st, &st->before);
    for (int i = 0; i < st->rounds && st->rc == 0; i++) {
        tr_portal_t *p = NULL;
        if ((st->rc = tr_portal_open (self, st->endpoint, tu_ms (5000), &p)))
            break;
        st->rc = tu_call (p, "add", tr_pack ("[II]", (int64_t) i, (int64_t) 1), NULL);
        tr_portal_close (&p);
    }
    if (st->rc == 0)
        st->rc = s_settle (ctx, probe, st, &st->after);
    if (st->cancel)
        tr_portal_cancel_actor (probe, tu_ms (3000));
    tr_portal_close (&probe);
    return 0;
}

static const char *s_endpoint;

static int
s_once_root (tr_actor_t *self, void *arg)
{
    const char *endpoint = arg;
    tr_portal_t *p = NULL;
    int rc = tr_portal_open (self, endpoint, tu_ms (5000), &p);
    if (rc == 0)
        rc = tu_call (p, "add", tr_pack ("[II]", (int64_t) 1, (int64_t) 2), NULL);
    tr_portal_close (&p);
    return rc? 1: 0;
}

static int
s_hold_root (tr_actor_t *self, void *arg)
{
    int fd = *(int *) arg;
    tr_portal_t *p = NULL;
    int rc = tr_portal_open (self, s_endpoint, tu_ms (5000), &p);
    if (rc == 0)
        rc = tu_call (p, "add", tr_pack ("[II]", (int64_t) 1, (int64_t) 2), NULL);
    if (rc == 0 && write (fd, "h", 1) == 1)
        tr_sleep (tr_actor_ctx (self), 60000);
    tr_portal_close (&p);
    return 1;
}

//  A short-lived root in a process of its own: open a portal, call, close
//  it, exit. With hold, it says so on a pipe and waits to be killed
//  instead.
static void
s_short_root (const char *endpoint, bool hold)
{
    int fds [2] = { -1, -1 };
    if (hold)
        ck_assert_int_eq (pipe2 (fds, O_CLOEXEC), 0);
    int fd = fds [1];
    pid_t pid = fork ();
    ck_assert_int_ge (pid, 0);
    if (pid == 0) {
        tr_config_t config = tu_config ();
        int rc = hold? tr_run (&config, 0, NULL, s_hold_root, &fd)
                     : tr_run (&config, 0, NULL, s_once_root, (void *) endpoint);
        _exit (rc);
    }
    if (!hold) {
        int status;
        ck_assert_int_eq (waitpid (pid, &status, 0), pid);
        ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0,
                       "a short-lived root ended with 0x%x", status);
        return;
    }
    //  It holds a portal now: kill -9 it.
    char byte;
    close (fds [1]);
    struct pollfd item = { fds [0], POLLIN, 0 };
    ck_assert_int_eq (poll (&item, 1, tu_ms (5000)), 1);
    ck_assert_int_eq (read (fds [0], &byte, 1), 1);
    close (fds [0]);
    ck_assert_int_eq (kill (pid, SIGKILL), 0);
    ck_assert_int_eq (waitpid (pid, NULL, 0), pid);
}

START_TEST (test_a_daemon_forgets_departed_peers_and_stays_flat)
{
    tu_subreaper ();
    tu_proc_t d;
    s_daemon_start (&d, "churned");
    s_endpoint = d.endpoint;
    //  Warm up: the daemon's allocator and libzmq reach their working size.
    for (int i = 0; i < 20; i++)
        s_short_root (d.endpoint, false);
    churn_t warm = { .endpoint = d.endpoint, .pid = d.pid, .rounds = 100, .want_peers = 1 };
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_churn, &warm), 0);
    ck_assert_tr_ok (warm.rc);
    ck_assert_int_eq (warm.after.peers, 1);

    //  Short-lived roots, each in a process of its own, and one killed
    //  with SIGKILL while it holds its portal.
    churn_t probe = { .endpoint = d.endpoint, .pid = d.pid, .rounds = 0, .want_peers = 1 };
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_churn, &probe), 0);
    ck_assert_tr_ok (probe.rc);
    holdings_t before = probe.before;
    for (int i = 0; i < 100; i++)
        s_short_root (d.endpoint, false);
    s_short_root (d.endpoint, true);

    //  Then one long-lived root that opens and closes many.
    churn_t st = { .endpoint = d.endpoint, .pid = d.pid, .rounds = 400, .want_peers = 1,
                   .cancel = true };
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_churn, &st), 0);
    ck_assert_tr_ok (st.rc);
    fprintf (stderr, "daemon before: %d peers, %d fds, %ld kB; after: %d peers, %d fds, "
             "%ld kB\n", before.peers, before.fds, before.rss_kb,
             st.after.peers, st.after.fds, st.after.rss_kb);
    //  Only the probe's own portal is left, whatever came and went.
    ck_assert_int_eq (before.peers, 1);
    ck_assert_int_eq (st.after.peers, 1);
    ck_assert_int_eq (st.after.fds, before.fds);
#ifndef TU_UNDER_ASAN
    ck_assert_msg (st.after.rss_kb - before.rss_kb < 1024,
                   "RSS grew from %ld kB to %ld kB", before.rss_kb, st.after.rss_kb);
#endif
    tu_proc_expect_exit (&d, 5000, 0);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  A descriptor reused before the hellos on it were read

#define T_HELLO 1
#define T_PING  10
#define T_PONG  11

//  CPU time the process has used, in clock ticks.
static long
s_cpu_ticks (int pid)
{
    char path [64], buf [1024];
    snprintf (path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf [n] = 0;
    char *end = strrchr (buf, ')');
    long utime = 0, stime = 0;
    //  Fields 14 and 15; the state is field 3.
    if (!end || sscanf (end + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
                        &utime, &stime) != 2)
        return -1;
    return utime + stime;
}

//  A raw DEALER's hello, as a peer of protocol 1.0 says it.
static void
s_raw_hello (void *dealer, const char *uid)
{
    tr_args_t *hello = tr_pack ("[i i {s:[ii] s:s s:i s:s}]", T_HELLO, 0, "v", 1, 0,
                                "uid", uid, "pid", (int) getpid (), "ep", "");
    zmq_send (dealer, tr_args_data (hello), tr_args_size (hello), 0);
    tr_args_destroy (&hello);
}

//  The type of the next frame within timeout_ms, or -1.
static int
s_raw_next_type (void *dealer, int timeout_ms)
{
    zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) != 1)
        return -1;
    zmq_msg_t m;
    zmq_msg_init (&m);
    zmq_msg_recv (&m, dealer, 0);
    tr_value_t *v = tr_value_decode (zmq_msg_data (&m), zmq_msg_size (&m));
    zmq_msg_close (&m);
    int type = -1;
    uint64_t cid;
    const msgpack_object *body;
    if (!v || tr_unpack (tr_value_object (v), "[iuo]", &type, &cid, &body))
        type = -1;
    tr_value_destroy (&v);
    return type;
}

typedef struct {
    tr_portal_t *p;
    int rc;
} busy_call_t;

static int
s_busy_call (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    busy_call_t *call = arg;
    call->rc = tu_call (call->p, "busy", tr_pack ("[i]", 1500), NULL);
    return 0;
}

typedef struct {
    const char *endpoint;
    int pid;
    int open_rc, busy_rc;
    bool was_busy, a_gone, reused;
    int fds_before, fds_a, fds_after_a;
    int b_hello, b_pong;
    int peers_with_b, peers_after_b;
} reuse_t;

static int
s_reuse (tr_actor_t *self, void *arg)
{
    reuse_t *st = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    busy_call_t call = { 0 };
    if ((st->open_rc = tr_portal_open (self, st->endpoint, tu_ms (5000), &call.p)))
        return 1;
    st->fds_before = s_count_fds (st->pid);
    //  Keep the daemon's loop busy: hellos wait unread meanwhile.
    long ticks = s_cpu_ticks (st->pid);
    tr_task_t *task;
    if (tr_task_spawn (self, s_busy_call, &call, &task))
        return 1;
    long long deadline = tu_now_ms () + tu_ms (3000);
    while (!(st->was_busy = s_cpu_ticks (st->pid) - ticks >= sysconf (_SC_CLK_TCK) / 5)
    &&     tu_now_ms () < deadline)
        tr_sleep (ctx, 10);
    //  A says hello and leaves, before its hello can be read.
    void *zctx = zmq_ctx_new ();
    void *a = zmq_socket (zctx, ZMQ_DEALER);
    int linger = 1000;
    zmq_setsockopt (a, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect (a, st->endpoint);
    s_raw_hello (a, "raw@a");
    deadline = tu_now_ms () + tu_ms (3000);
    while ((st->fds_a = s_count_fds (st->pid)) == st->fds_before && tu_now_ms () < deadline)
        tr_sleep (ctx, 5);
    zmq_close (a);
    deadline = tu_now_ms () + tu_ms (3000);
    while ((st->fds_after_a = s_count_fds (st->pid)) != st->fds_before
    &&     tu_now_ms () < deadline)
        tr_sleep (ctx, 5);
    //  B takes its descriptor, and stays.
    void *b = zmq_socket (zctx, ZMQ_DEALER);
    zmq_setsockopt (b, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect (b, st->endpoint);
    s_raw_hello (b, "raw@b");
    tr_task_join (&task, NULL);
    st->busy_rc = call.rc;
    st->b_hello = s_raw_next_type (b, tu_ms (3000));
    //  A is forgotten, B is known and served (after the probe, if the
    //  descriptor was shared).
    churn_t want = { .pid = st->pid, .want_peers = 2 };
    holdings_t h;
    s_settle (ctx, call.p, &want, &h);
    st->peers_with_b = h.peers;
    tr_args_t *ping = tr_pack ("[i I n]", T_PING, (int64_t) 5);
    zmq_send (b, tr_args_data (ping), tr_args_size (ping), 0);
    tr_args_destroy (&ping);
    st->b_pong = s_raw_next_type (b, tu_ms (3000));
    zmq_close (b);
    zmq_ctx_term (zctx);
    want.want_peers = 1;
    s_settle (ctx, call.p, &want, &h);
    st->peers_after_b = h.peers;
    tr_portal_cancel_actor (call.p, tu_ms (3000));
    tr_portal_close (&call.p);
    return 0;
}

START_TEST (test_a_peer_gone_before_its_hello_was_read_is_told_from_the_next_on_its_descriptor)
{
    tu_subreaper ();
    tu_proc_t d;
    s_daemon_start (&d, "reused");
    reuse_t st = { .endpoint = d.endpoint, .pid = d.pid };
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_reuse, &st), 0);
    fprintf (stderr, "reuse: busy %d, fds %d -> %d -> %d\n", st.was_busy, st.fds_before,
             st.fds_a, st.fds_after_a);
    ck_assert_tr_ok (st.open_rc);
    ck_assert (st.was_busy);
    ck_assert_tr_ok (st.busy_rc);
    ck_assert_int_eq (st.fds_a, st.fds_before + 1);
    ck_assert_int_eq (st.fds_after_a, st.fds_before);
    ck_assert_int_eq (st.b_hello, T_HELLO);
    ck_assert_int_eq (st.peers_with_b, 2);
    ck_assert_int_eq (st.b_pong, T_PONG);
    ck_assert_int_eq (st.peers_after_b, 1);
    tu_proc_expect_exit (&d, 5000, 0);
    tu_assert_no_procs_left (0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("liveness");
    TCase *tc = tu_tcase (suite, "stopped", 60);
    tcase_add_test (tc, test_a_stopped_child_is_lost_killed_and_reaped);
    tcase_add_test (tc, test_a_context_on_a_stopped_child_fails_with_its_loss);
    tcase_add_test (tc, test_a_child_whose_parent_is_stopped_exits_by_itself);
    tcase_add_test (tc, test_a_child_busy_past_the_heartbeat_timeout_is_not_lost);
    tcase_add_test (tc, test_a_child_stopped_shorter_than_the_timeout_is_not_lost);
    tcase_add_test (tc, test_a_child_reaches_its_parent_on_an_endpoint_of_its_own);
    tcase_add_test (tc, test_a_stopped_daemon_fails_its_portals_calls_and_serves_again_after_sigcont);
    tc = tu_tcase (suite, "departed", 120);
    tcase_add_test (tc, test_a_daemon_forgets_departed_peers_and_stays_flat);
    tcase_add_test (tc, test_a_peer_gone_before_its_hello_was_read_is_told_from_the_next_on_its_descriptor);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
