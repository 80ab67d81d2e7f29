/*  =========================================================================
    test_limits.c - scenario: descriptors running short, stale ipc files

    Under a small hard RLIMIT_NOFILE, a root spawning more children than
    its descriptors allow and a daemon that a peer opens many portals on
    both keep serving: spawns past the limit fail with TR_ESYS "too many
    open files", connections past it are refused until descriptors come
    back, and nothing aborts. And the ipc file of an actor killed by a
    signal is swept by the next actor that starts.
    =========================================================================
*/
#include "testutil.h"
#include <errno.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

//  The hard limit the scenarios run under: room for a few children or
//  connections, far fewer than they ask for. A daemon is a fresh process
//  with its own few descriptors. A root is the test process, which holds
//  what ran it gave it: its limit leaves it ROOT_ROOM free descriptors,
//  as 64 leaves one that holds 5 when it starts, whatever it holds.
#define SMALL_LIMIT     64
#define ROOT_ROOM       59

static void
s_limit_nofile (rlim_t limit)
{
    struct rlimit rl = { limit, limit };
    ck_assert_int_eq (setrlimit (RLIMIT_NOFILE, &rl), 0);
}

//  Limit this process to ROOT_ROOM free descriptors; return the limit.
static int
s_limit_root (void)
{
    int limit = 0, free_fds = 0;
    while (free_fds < ROOT_ROOM)
        if (fcntl (limit++, F_GETFD) < 0 && errno == EBADF)
            free_fds++;
    s_limit_nofile ((rlim_t) limit);
    return limit;
}

static int64_t
s_add (tr_portal_t *p, int64_t a, int64_t b, int *rc)
{
    tr_value_t *value = NULL;
    int64_t sum = -1;
    *rc = tu_call (p, "add", tr_pack ("[II]", a, b), &value);
    if (*rc == 0)
        tr_unpack (tr_value_object (value), "I", &sum);
    tr_value_destroy (&value);
    return sum;
}

//  --------------------------------------------------------------------------
//  A root spawning past its descriptors

#define SPAWNS_ASKED    60

typedef struct {
    int started;                //  children that said hello
    int refused;                //  spawns that failed after the first failure too
    int first_rc;               //  the first failed spawn's rc
    char first_message [512];
    int later_bad;              //  failures after the first that were not TR_ESYS
    int calls_ok;               //  children that answered afterwards
    int close_rc;
} spawn_state_t;

static int
s_spawn_past_the_limit (tr_actor_t *self, void *arg)
{
    spawn_state_t *st = arg;
    tr_nursery_t *n = NULL;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *portals [SPAWNS_ASKED] = { NULL };
    for (int i = 0; i < SPAWNS_ASKED; i++) {
        char name [32];
        snprintf (name, sizeof name, "kid-%d", i);
        int rc = tr_nursery_start_actor (n, name, NULL, &portals [st->started]);
        if (rc == 0) {
            st->started++;
            continue;
        }
        if (st->refused++ == 0) {
            st->first_rc = rc;
            const tr_error_t *error = tr_nursery_error (n);
            snprintf (st->first_message, sizeof st->first_message, "%s",
                      error? tr_error_message (error): "(no error)");
        }
        else
        if (rc != TR_ESYS)
            st->later_bad++;
        if (st->refused == 5)
            break;
    }
    //  Every child started keeps serving.
    for (int i = 0; i < st->started; i++) {
        int rc;
        if (s_add (portals [i], i, 1, &rc) == i + 1 && rc == 0)
            st->calls_ok++;
    }
    st->close_rc = tu_nursery_close (&n, NULL, NULL);
    return 0;
}

static void
s_root_spawns_past_the_limit (const char *bind)
{
    tu_subreaper ();
    int limit = s_limit_root ();
    spawn_state_t st = { 0 };
    tr_config_t config = tu_config ();
    config.bind = bind;
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_spawn_past_the_limit, &st), 0);
    fprintf (stderr, "limits: root on %s under %d descriptors: %d of %d children started, "
             "%d spawns refused\n", bind, limit, st.started, SPAWNS_ASKED, st.refused);
    ck_assert_msg (st.started >= 3, "only %d children started", st.started);
    ck_assert_msg (st.refused > 0, "all %d spawns were let through", SPAWNS_ASKED);
    ck_assert_tr_rc (st.first_rc, TR_ESYS);
    ck_assert_msg (strstr (st.first_message, "too many open files ("),
                   "the refusal says '%s'", st.first_message);
    ck_assert_int_eq (st.later_bad, 0);
    ck_assert_int_eq (st.calls_ok, st.started);
    tu_assert_no_procs_left (0);
}

START_TEST (test_a_root_on_ipc_refuses_spawns_past_its_descriptors_and_serves_on)
{
    s_root_spawns_past_the_limit ("ipc");
}
END_TEST

START_TEST (test_a_root_on_tcp_refuses_spawns_past_its_descriptors_and_serves_on)
{
    s_root_spawns_past_the_limit ("tcp");
}
END_TEST

//  --------------------------------------------------------------------------
//  A daemon that a peer opens many portals on

typedef struct {
    pid_t pid;
    int pidfd;
    char endpoint [256];
} daemon_t;

//  Start tests/worker as a daemon under a hard descriptor limit (0: the
//  test's own) and read the endpoint it prints.
static void
s_daemon_start (daemon_t *d, const char *bind, rlim_t limit)
{
    int out [2];
    ck_assert_int_eq (pipe2 (out, O_CLOEXEC), 0);
    char *argv [] = { (char *) tu_worker_path (), "--tr-daemon", "--tr-name", "limited",
                      "--tr-bind", (char *) bind, NULL };
    struct rlimit rl = { limit, limit };
    d->pid = tu_spawn_tied (argv, out [1], -1, limit? &rl: NULL);
    ck_assert_int_ge (d->pid, 0);
    close (out [1]);
    d->pidfd = (int) syscall (SYS_pidfd_open, d->pid, 0);
    ck_assert_int_ge (d->pidfd, 0);
    char line [600];
    tu_read_first_line (out [0], line, sizeof line, 5000);
    char uid [256];
    ck_assert_int_eq (sscanf (line, "%255s %255s", uid, d->endpoint), 2);
}

//  CPU time the process has used, in ms.
static long long
s_cpu_ms (pid_t pid)
{
    char path [64], text [1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    size_t n = fread (text, 1, sizeof text - 1, f);
    fclose (f);
    text [n] = 0;
    //  utime and stime are the 14th and 15th fields; the 2nd may hold spaces.
    const char *p = strrchr (text, ')');
    unsigned long long utime, stime;
    if (!p || sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                      &utime, &stime) != 2)
        return -1;
    return (long long) (utime + stime) * 1000 / sysconf (_SC_CLK_TCK);
}

static bool
s_daemon_alive (daemon_t *d)
{
    struct pollfd item = { d->pidfd, POLLIN, 0 };
    return poll (&item, 1, 0) == 0;
}

//  Wait for the daemon to exit; return its wait status, or -1.
static int
s_daemon_wait (daemon_t *d, int timeout_ms)
{
    struct pollfd item = { d->pidfd, POLLIN, 0 };
    int status = -1;
    if (poll (&item, 1, tu_ms (timeout_ms)) == 1)
        waitpid (d->pid, &status, 0);
    else {
        kill (d->pid, SIGKILL);
        waitpid (d->pid, NULL, 0);
    }
    close (d->pidfd);
    return status;
}

//  The daemon, cancelled through a portal, exits with 0 and leaves
//  nothing behind.
static void
s_daemon_ends_well (daemon_t *d)
{
    int status = s_daemon_wait (d, 5000);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0,
                   "daemon ended with status 0x%x", status);
    tu_assert_no_procs_left (0);
}

#define PORTALS_ASKED   100

typedef struct {
    daemon_t *daemon;
    int opened;                 //  portals open before the first failure
    int refused_rc;             //  the failed open's rc
    long long refused_cpu_ms;   //  CPU the daemon used while it was refused
    bool alive_when_short;
    int calls_ok;               //  open portals that answered when short
    int reopen_rc;              //  an open once half were closed
    int reopen_sum;
    int cancel_rc;
} portals_state_t;

static int
s_many_portals (tr_actor_t *self, void *arg)
{
    portals_state_t *st = arg;
    tr_portal_t *portals [PORTALS_ASKED] = { NULL };
    for (int i = 0; i < PORTALS_ASKED; i++) {
        long long cpu = s_cpu_ms (st->daemon->pid);
        int rc = tr_portal_open (self, st->daemon->endpoint, tu_ms (1000),
                                 &portals [st->opened]);
        if (rc) {
            st->refused_rc = rc;
            st->refused_cpu_ms = s_cpu_ms (st->daemon->pid) - cpu;
            break;
        }
        st->opened++;
    }
    st->alive_when_short = s_daemon_alive (st->daemon);
    for (int i = 0; i < st->opened; i++) {
        int rc;
        if (s_add (portals [i], i, 2, &rc) == i + 2 && rc == 0)
            st->calls_ok++;
    }
    //  Half of them leave: the daemon accepts again.
    for (int i = st->opened / 2; i < st->opened; i++)
        tr_portal_close (&portals [i]);
    tr_portal_t *again = NULL;
    st->reopen_rc = tr_portal_open (self, st->daemon->endpoint, tu_ms (5000), &again);
    if (st->reopen_rc == 0) {
        int rc;
        st->reopen_sum = (int) s_add (again, 40, 2, &rc);
        st->cancel_rc = tr_portal_cancel_actor (again, tu_ms (2000));
        tr_portal_close (&again);
    }
    for (int i = 0; i < st->opened / 2; i++)
        tr_portal_close (&portals [i]);
    return 0;
}

static void
s_daemon_serves_past_the_limit (const char *bind)
{
    tu_subreaper ();
    daemon_t d;
    s_daemon_start (&d, bind, SMALL_LIMIT);
    portals_state_t st = { .daemon = &d };
    tr_config_t config = { .name = "root" };
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_many_portals, &st), 0);
    fprintf (stderr, "limits: daemon on %s under %d descriptors: %d portals open, the next "
             "%s with %lld ms of the daemon's CPU\n", bind, SMALL_LIMIT, st.opened,
             tr_errname (st.refused_rc), st.refused_cpu_ms);
    ck_assert_msg (st.alive_when_short, "the daemon died when its descriptors ran short");
    ck_assert_msg (st.opened >= 3, "only %d portals opened", st.opened);
    ck_assert_msg (st.opened < PORTALS_ASKED, "all %d portals opened", PORTALS_ASKED);
    ck_assert_tr_rc (st.refused_rc, TR_ETIMEDOUT);
    //  Refusing is not spinning on the pending connection.
    ck_assert_msg (st.refused_cpu_ms < tu_ms (300), "the daemon used %lld ms of CPU in the "
                   "second it refused a connection", st.refused_cpu_ms);
    ck_assert_int_eq (st.calls_ok, st.opened);
    ck_assert_tr_ok (st.reopen_rc);
    ck_assert_int_eq (st.reopen_sum, 42);
    ck_assert_tr_ok (st.cancel_rc);
    s_daemon_ends_well (&d);
}

START_TEST (test_a_daemon_on_ipc_refuses_connections_while_short_and_recovers)
{
    s_daemon_serves_past_the_limit ("ipc");
}
END_TEST

START_TEST (test_a_daemon_on_tcp_refuses_connections_while_short_and_recovers)
{
    s_daemon_serves_past_the_limit ("tcp://127.0.0.1:*");
}
END_TEST

//  --------------------------------------------------------------------------
//  A root opening portals past its own descriptors

//  Run a root with ROOT_ROOM descriptors free and what it logs going to a
//  file, read into log afterwards; return tr_run's rc.
static int
s_run_logged_root (int (*fn) (tr_actor_t *self, void *arg), void *arg, char *log, size_t size)
{
    char path [] = "/tmp/troupe-limits-log-XXXXXX";
    int fd = mkstemp (path);
    ck_assert_int_ge (fd, 0);
    int saved_stderr = dup (STDERR_FILENO);
    ck_assert_int_ge (saved_stderr, 0);
    s_limit_root ();
    tr_config_t config = tu_config ();
    fflush (stderr);
    dup2 (fd, STDERR_FILENO);
    int rc = tr_run (&config, 0, NULL, fn, arg);
    fflush (stderr);
    dup2 (saved_stderr, STDERR_FILENO);
    close (saved_stderr);
    ssize_t read_size = pread (fd, log, size - 1, 0);
    log [read_size > 0? read_size: 0] = 0;
    close (fd);
    unlink (path);
    return rc;
}

typedef struct {
    daemon_t *daemon;
    int opened;
    int failed_rc;
    int calls_ok;
} opener_state_t;

static int
s_open_past_the_limit (tr_actor_t *self, void *arg)
{
    opener_state_t *st = arg;
    tr_portal_t *portals [PORTALS_ASKED] = { NULL };
    for (int i = 0; i < PORTALS_ASKED; i++) {
        int rc = tr_portal_open (self, st->daemon->endpoint, tu_ms (1000),
                                 &portals [st->opened]);
        if (rc) {
            st->failed_rc = rc;
            break;
        }
        st->opened++;
    }
    for (int i = 0; i < st->opened; i++) {
        int rc;
        if (s_add (portals [i], i, 3, &rc) == i + 3 && rc == 0)
            st->calls_ok++;
    }
    if (st->opened)
        tr_portal_cancel_actor (portals [0], tu_ms (2000));
    for (int i = 0; i < st->opened; i++)
        tr_portal_close (&portals [i]);
    return 0;
}

static void
s_root_opens_past_the_limit (const char *bind)
{
    tu_subreaper ();
    daemon_t d;
    s_daemon_start (&d, bind, 0);
    opener_state_t st = { .daemon = &d };
    char log [8192];
    int run_rc = s_run_logged_root (s_open_past_the_limit, &st, log, sizeof log);
    ck_assert_int_eq (run_rc, 0);
    fprintf (stderr, "limits: root with %d descriptors free opening portals on %s: %d open, "
             "the next %s\n", ROOT_ROOM, bind, st.opened, tr_errname (st.failed_rc));
    fputs (log, stderr);
    //  The failed open says why, in the root's log.
    ck_assert_msg (st.opened >= 3, "only %d portals opened", st.opened);
    ck_assert_msg (st.failed_rc != 0, "all %d portals opened", PORTALS_ASKED);
    ck_assert_tr_rc (st.failed_rc, TR_ESYS);
    ck_assert_msg (strstr (log, "too many open files ("), "the root logged no reason: '%s'", log);
    ck_assert_int_eq (st.calls_ok, st.opened);
    s_daemon_ends_well (&d);
}

START_TEST (test_a_root_opening_portals_past_its_descriptors_gets_an_error_on_ipc)
{
    s_root_opens_past_the_limit ("ipc");
}
END_TEST

START_TEST (test_a_root_opening_portals_past_its_descriptors_gets_an_error_on_tcp)
{
    s_root_opens_past_the_limit ("tcp://127.0.0.1:*");
}
END_TEST

//  --------------------------------------------------------------------------
//  A portal opened with the last few descriptors: the socket and its
//  monitor still open, and the connection libzmq makes later in its I/O
//  thread would not, which libzmq only retries, in silence. The open is
//  refused at once instead, and says why; once descriptors are back, the
//  next one opens.

#define FEW_LEFT        3

typedef struct {
    daemon_t *daemon;
    int short_rc;
    char short_error [256];     //  the task's error after it
    long long short_ms;         //  how long the refused open took
    int again_rc;
    int sum;
} few_left_state_t;

//  Take every free descriptor but FEW_LEFT, into taken (ROOT_ROOM long);
//  return how many were taken.
static int
s_take_all_but_few (int *taken)
{
    int count = 0;
    while (count < ROOT_ROOM) {
        int fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            ck_assert_int_eq (errno, EMFILE);
            break;
        }
        taken [count++] = fd;
    }
    ck_assert_int_ge (count, FEW_LEFT);
    for (int i = 0; i < FEW_LEFT; i++)
        close (taken [--count]);
    return count;
}

static void
s_give_back (int *taken, int count)
{
    while (count)
        close (taken [--count]);
}

static int
s_open_with_few_left (tr_actor_t *self, void *arg)
{
    few_left_state_t *st = arg;
    int taken [ROOT_ROOM];
    int count = s_take_all_but_few (taken);
    tr_portal_t *portal = NULL;
    long long start = tu_now_ms ();
    st->short_rc = tr_portal_open (self, st->daemon->endpoint, tu_ms (3000), &portal);
    st->short_ms = tu_now_ms () - start;
    const tr_error_t *error = tr_ctx_error (tr_actor_ctx (self));
    snprintf (st->short_error, sizeof st->short_error, "%s: %s",
              error? tr_error_type (error): "(no error)", error? tr_error_message (error): "");
    tr_portal_close (&portal);
    s_give_back (taken, count);
    st->again_rc = tr_portal_open (self, st->daemon->endpoint, tu_ms (5000), &portal);
    if (st->again_rc == 0) {
        int rc;
        st->sum = (int) s_add (portal, 40, 2, &rc);
        tr_portal_cancel_actor (portal, tu_ms (2000));
        tr_portal_close (&portal);
    }
    return 0;
}

static void
s_portal_open_with_few_left (const char *bind)
{
    tu_subreaper ();
    daemon_t d;
    s_daemon_start (&d, bind, 0);
    few_left_state_t st = { .daemon = &d };
    char log [8192];
    int run_rc = s_run_logged_root (s_open_with_few_left, &st, log, sizeof log);
    fprintf (stderr, "limits: a portal opened on %s with %d descriptors left: %s in %lld ms\n",
             bind, FEW_LEFT, tr_errname (st.short_rc), st.short_ms);
    fputs (log, stderr);
    ck_assert_int_eq (run_rc, 0);
    ck_assert_tr_rc (st.short_rc, TR_ESYS);
    ck_assert_msg (st.short_ms < tu_ms (1000), "the refusal took %lld ms", st.short_ms);
    ck_assert_msg (strstr (st.short_error, "TooManyOpenFiles: cannot open a connection to ")
                   && strstr (st.short_error, ": too many open files ("),
                   "the task's error is '%s'", st.short_error);
    ck_assert_msg (strstr (log, "too many open files ("), "the root logged no reason: '%s'", log);
    ck_assert_tr_ok (st.again_rc);
    ck_assert_int_eq (st.sum, 42);
    s_daemon_ends_well (&d);
}

START_TEST (test_a_portal_opened_with_three_descriptors_left_on_ipc_is_refused_at_once)
{
    s_portal_open_with_few_left ("ipc");
}
END_TEST

START_TEST (test_a_portal_opened_with_three_descriptors_left_on_tcp_is_refused_at_once)
{
    s_portal_open_with_few_left ("tcp://127.0.0.1:*");
}
END_TEST

//  --------------------------------------------------------------------------
//  A find with the last few descriptors: the registry knows the name, and
//  the portal on the actor cannot be opened. The find says so at once,
//  not that nobody is registered under the name, and a wait for the actor
//  does not wait on to its deadline.

//  Whether name is registered by timeout_ms (scaled). Asked of the
//  registry without a portal: a closed portal's descriptors are closed
//  later, by libzmq's threads, and would free some of those taken.
static bool
s_registered (tr_actor_t *self, const char *name, int timeout_ms)
{
    long long deadline = tu_now_ms () + tu_ms (timeout_ms);
    while (true) {
        tr_value_t *entries = NULL;
        bool found = tr_registry_list (self, name, &entries) == 0
                  && tr_value_object (entries)->via.array.size > 0;
        tr_value_destroy (&entries);
        if (found)
            return true;
        if (tu_now_ms () >= deadline || tr_sleep (tr_actor_ctx (self), 10))
            return false;
    }
}

typedef struct {
    bool registered;            //  the child, before any find
    int short_rc;               //  a find with FEW_LEFT
    char short_error [256];
    int wait_rc;                //  a wait with FEW_LEFT
    long long wait_ms;
    int again_rc;               //  a find once they are back
    int sum;
} find_state_t;

static int
s_find_with_few_left (tr_actor_t *self, void *arg)
{
    find_state_t *st = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_nursery_t *n = NULL;
    tr_portal_t *kid = NULL, *found = NULL;
    if (tr_nursery_open (self, &n) || tr_nursery_start_actor (n, "findme", NULL, &kid))
        return 1;
    st->registered = s_registered (self, "findme", 5000);
    int taken [ROOT_ROOM];
    int count = s_take_all_but_few (taken);
    st->short_rc = tr_find_actor (self, "findme", &found);
    const tr_error_t *error = tr_ctx_error (ctx);
    snprintf (st->short_error, sizeof st->short_error, "%s: %s",
              error? tr_error_type (error): "(no error)", error? tr_error_message (error): "");
    tr_portal_close (&found);
    long long start = tu_now_ms ();
    st->wait_rc = tr_wait_for_actor (self, "findme", tu_ms (3000), &found);
    st->wait_ms = tu_now_ms () - start;
    tr_portal_close (&found);
    s_give_back (taken, count);
    st->again_rc = tr_find_actor (self, "findme", &found);
    if (st->again_rc == 0) {
        int rc;
        st->sum = (int) s_add (found, 40, 2, &rc);
        tr_portal_close (&found);
    }
    return tu_nursery_close (&n, NULL, NULL);
}

START_TEST (test_a_find_with_three_descriptors_left_says_why_at_once)
{
    tu_subreaper ();
    find_state_t st = { 0 };
    char log [8192];
    int run_rc = s_run_logged_root (s_find_with_few_left, &st, log, sizeof log);
    fprintf (stderr, "limits: a find with %d descriptors left: %s (%s); a wait: %s in %lld ms\n",
             FEW_LEFT, tr_errname (st.short_rc), st.short_error, tr_errname (st.wait_rc),
             st.wait_ms);
    ck_assert_int_eq (run_rc, 0);
    ck_assert_msg (st.registered, "findme never registered");
    ck_assert_tr_rc (st.short_rc, TR_ESYS);
    ck_assert_msg (strstr (st.short_error, "TooManyOpenFiles: cannot open a portal on 'findme': "
                           "too many open files ("), "the find failed with '%s'", st.short_error);
    ck_assert_tr_rc (st.wait_rc, TR_ESYS);
    ck_assert_msg (st.wait_ms < tu_ms (1000), "the wait took %lld ms", st.wait_ms);
    ck_assert_tr_ok (st.again_rc);
    ck_assert_int_eq (st.sum, 42);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  Stale ipc files

static int
s_nothing (tr_actor_t *self, void *arg)
{
    (void) self;
    (void) arg;
    return 0;
}

static bool
s_exists (const char *path)
{
    struct stat st;
    return lstat (path, &st) == 0;
}

//  A pid that no process has here: the highest one the kernel may give,
//  unless it is taken.
static pid_t
s_unused_pid (void)
{
    int max = 32768;
    FILE *f = fopen ("/proc/sys/kernel/pid_max", "r");
    if (f) {
        if (fscanf (f, "%d", &max) != 1)
            max = 32768;
        fclose (f);
    }
    for (pid_t pid = max - 1; pid > 1; pid--)
        if (kill (pid, 0) && errno == ESRCH)
            return pid;
    return 0;
}

START_TEST (test_the_ipc_file_of_a_killed_daemon_is_swept_by_the_next_actor)
{
    tu_subreaper ();
    daemon_t killed, alive;
    s_daemon_start (&killed, "ipc", 0);
    s_daemon_start (&alive, "ipc", 0);
    ck_assert (strncmp (killed.endpoint, "ipc://", 6) == 0);
    const char *killed_path = killed.endpoint + 6;
    const char *alive_path = alive.endpoint + 6;
    ck_assert_int_eq (kill (killed.pid, SIGKILL), 0);
    int status = s_daemon_wait (&killed, 5000);
    ck_assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
    ck_assert_msg (s_exists (killed_path), "%s went with its daemon", killed_path);

    //  A socket some actor in another pid namespace listens on: its pid
    //  names no process here, yet it is live and stays.
    char dir [256];
    snprintf (dir, sizeof dir, "%s", killed_path);
    *strrchr (dir, '/') = 0;
    pid_t unused = s_unused_pid ();
    ck_assert_int_gt (unused, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf (addr.sun_path, sizeof addr.sun_path, "%.70s/%d-0badcafe.ipc", dir, (int) unused);
    int listener = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge (listener, 0);
    unlink (addr.sun_path);
    ck_assert_int_eq (bind (listener, (struct sockaddr *) &addr, sizeof addr), 0);
    ck_assert_int_eq (listen (listener, 4), 0);
    //  And a dead one's that nobody listens on any more.
    char dead [sizeof addr.sun_path];
    snprintf (dead, sizeof dead, "%.70s/%d-deadbeef.ipc", dir, (int) unused);
    struct sockaddr_un dead_addr = { .sun_family = AF_UNIX };
    memcpy (dead_addr.sun_path, dead, sizeof dead);
    int closed = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink (dead);
    ck_assert_int_eq (bind (closed, (struct sockaddr *) &dead_addr, sizeof dead_addr), 0);
    close (closed);
    ck_assert (s_exists (dead));

    tr_config_t config = { .name = "root" };
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_nothing, NULL), 0);
    ck_assert_msg (!s_exists (killed_path), "%s outlived the next actor's start", killed_path);
    ck_assert_msg (!s_exists (dead), "%s outlived the next actor's start", dead);
    ck_assert_msg (s_exists (addr.sun_path), "a live listener's file was swept");
    ck_assert_msg (s_exists (alive_path), "a live daemon's file was swept");
    close (listener);
    unlink (addr.sun_path);

    //  The live daemon still stops on its signal and removes its file.
    kill (alive.pid, SIGTERM);
    status = s_daemon_wait (&alive, 5000);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 143,
                   "daemon ended with status 0x%x", status);
    ck_assert (!s_exists (alive_path));
    tu_assert_no_procs_left (0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("limits");
    TCase *tc = tu_tcase (suite, "descriptors", 60);
    tcase_add_test (tc, test_a_root_on_ipc_refuses_spawns_past_its_descriptors_and_serves_on);
    tcase_add_test (tc, test_a_root_on_tcp_refuses_spawns_past_its_descriptors_and_serves_on);
    tcase_add_test (tc, test_a_daemon_on_ipc_refuses_connections_while_short_and_recovers);
    tcase_add_test (tc, test_a_daemon_on_tcp_refuses_connections_while_short_and_recovers);
    tcase_add_test (tc, test_a_root_opening_portals_past_its_descriptors_gets_an_error_on_ipc);
    tcase_add_test (tc, test_a_root_opening_portals_past_its_descriptors_gets_an_error_on_tcp);
    tcase_add_test (tc, test_a_portal_opened_with_three_descriptors_left_on_ipc_is_refused_at_once);
    tcase_add_test (tc, test_a_portal_opened_with_three_descriptors_left_on_tcp_is_refused_at_once);
    tcase_add_test (tc, test_a_find_with_three_descriptors_left_says_why_at_once);
    tc = tu_tcase (suite, "ipc files", 30);
    tcase_add_test (tc, test_the_ipc_file_of_a_killed_daemon_is_swept_by_the_next_actor);
    return tu_run_suite (suite, CK_FORK);
}
