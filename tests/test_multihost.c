/*  =========================================================================
    test_multihost.c - scenario: a broker and workers on hosts of their own

    The multi-host suite. Each test builds a small network of its own out
    of Linux network namespaces: four "hosts" (a: troupe-broker, b and c:
    tests/worker daemons, d: the root) and a "switch", a namespace holding
    a bridge with one veth pair to each host, on a private /24 that exists
    nowhere else. The host's own namespaces are never touched: every
    interface is made inside the test's namespaces. Processes enter a host
    by the test thread's setns(2) into it just before it forks them, so no
    `ip netns exec` stands between the test and what it starts; the test
    process itself joins d and runs the root there, and its task steps
    into a for a moment to start a new broker.

    The scenarios: workers found by name through the broker, called and
    streamed from across hosts and cancelled with acks; a worker cut off
    at the switch (its port set down rather than a drop rule: nft and
    iptables need not be installed, and a port that is down drops
    silently, as a pulled cable does), which the root must lose within
    its heartbeat timeout and the
    registry within the lease, and which must register again by itself
    once the cable is back; and a broker restarted mid-run, which must
    have every worker back within two renewals while calls on the portals
    opened before go on as if nothing happened.

    Namespaces are named trmh-RUNNER-TEST-HOST (the suite's pid, the test
    process's pid). The test removes its own at its end; the test case's
    unchecked teardown, which runs in the suite's process whatever
    became of the test, kills whatever still runs in any namespace of
    this run, reaps it (the suite's process is a subreaper) and removes
    the namespaces; and the suite removes at its start those left by runs
    whose process is gone. Without root, `ip`, namespaces, veth or
    bridges the suite prints why and exits 77 (automake's SKIP), after an
    empty Check run so the totals still count it: no tests.
    =========================================================================
*/
#include "testutil.h"
#include "testnet.h"
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/syscall.h>

extern char **environ;

//  The broker's lease; registrants renew every third of it.
#define S_LEASE_MS          2000
#define S_RENEW_MS          (S_LEASE_MS / 3)
//  locate.c tries a registry it could not reach again after this.
#define S_RETRY_MS          1000
//  The root's heartbeats; the workers keep the defaults (500 / 3000).
//  A peer silent for the heartbeat timeout is lost: calls through it fail
//  then, with S_LOST_SLACK_MS for the loop to hear of it.
#define S_HB_IVL_MS         250
#define S_HB_TIMEOUT_MS     1500
#define S_LOST_SLACK_MS     300
#define S_WORKER_HB_TIMEOUT_MS 3000
//  What a bound allows beyond the figures it is made of.
#define S_MARGIN_MS         1000
#define S_PORT              5555

#define streq(a, b) (strcmp ((a), (b)) == 0)

static pid_t s_runner;              //  the suite's process: names its namespaces

//  --------------------------------------------------------------------------
//  Running ip(8)

//  --------------------------------------------------------------------------
//  Namespaces

//  Kill every process in the namespace at path, as `ip netns pids` finds
//  them: those whose /proc/PID/ns/net is that namespace.
static void
s_ns_kill_all (const char *path)
{
    struct stat ns;
    if (stat (path, &ns))
        return;
    DIR *dir = opendir ("/proc");
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir (dir)) != NULL) {
        pid_t pid = (pid_t) atoi (e->d_name);
        if (pid <= 0 || pid == getpid ())
            continue;
        char net [64];
        snprintf (net, sizeof net, "/proc/%d/ns/net", (int) pid);
        struct stat st;
        if (stat (net, &st) == 0 && st.st_dev == ns.st_dev && st.st_ino == ns.st_ino)
            kill (pid, SIGKILL);
    }
    closedir (dir);
}

//  Remove the namespace called name and stop what runs in it.
static void
s_ns_remove (const char *name)
{
    char path [300];
    snprintf (path, sizeof path, "/run/netns/%s", name);
    s_ns_kill_all (path);
    tu_ip (NULL, "netns", "del", name, NULL);
}

//  Remove the namespaces of this suite's runs: this run's (unless
//  stale_only) and those of runs whose process is gone. Returns how many.
static int
s_ns_sweep (bool stale_only)
{
    DIR *dir = opendir ("/run/netns");
    if (!dir)
        return 0;
    char names [64][256];
    int count = 0;
    struct dirent *e;
    while ((e = readdir (dir)) != NULL && count < 64) {
        int owner;
        if (sscanf (e->d_name, "trmh-%d-", &owner) != 1 || owner <= 0)
            continue;
        bool ours = owner == (int) s_runner;
        bool stale = !ours && kill ((pid_t) owner, 0) && errno == ESRCH;
        if ((ours && !stale_only) || stale)
            snprintf (names [count++], sizeof names [0], "%s", e->d_name);
    }
    closedir (dir);
    for (int i = 0; i < count; i++)
        s_ns_remove (names [i]);
    return count;
}

//  The test case's teardown, in the suite's process: nothing of this
//  run's may outlive its test, however the test ended. What a test that
//  failed or timed out left running was orphaned to us (the suite's
//  process is a subreaper): kill it and reap it.
static void
s_teardown (void)
{
    s_ns_sweep (false);
    long long deadline = tu_now_ms () + 2000;
    while (tu_now_ms () < deadline) {
        pid_t pid = waitpid (-1, NULL, WNOHANG);
        if (pid < 0)
            break;                  //  no child left
        if (pid == 0) {
            struct timespec ts = { 0, 5 * 1000 * 1000 };
            nanosleep (&ts, NULL);
        }
    }
}

//  --------------------------------------------------------------------------
//  The network: hosts a, b, c, d on one bridge

typedef enum { H_A, H_B, H_C, H_D, H_SW, H_COUNT } host_t;
static const char *s_host [H_COUNT] = { "a", "b", "c", "d", "sw" };

typedef struct {
    char prefix [64];               //  trmh-RUNNER-TEST
    int subnet;                     //  10.213.subnet.0/24
    char ns [H_COUNT][96];          //  namespace names
    int fd [H_COUNT];               //  open namespaces, -1 if not
    int home;                       //  the namespace we started in
} net_t;

//  host's address, 10.213.subnet.(1 + host)
static const char *
s_addr (const net_t *net, host_t host, char *buf, size_t size)
{
    snprintf (buf, size, "10.213.%d.%d", net->subnet, 1 + (int) host);
    return buf;
}

//  The switch port of host, the name of its end in the switch.
static const char *
s_port (host_t host, char *buf, size_t size)
{
    snprintf (buf, size, "port-%s", s_host [host]);
    return buf;
}

static void
s_net_up (net_t *net)
{
    memset (net, 0, sizeof *net);
    snprintf (net->prefix, sizeof net->prefix, "trmh-%d-%d", (int) s_runner, (int) getpid ());
    //  Unique per run already (each namespace has its own), but distinct
    //  subnets keep packets of parallel runs apart in any capture.
    net->subnet = 20 + (int) (getpid () % 200);
    net->home = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge (net->home, 0);
    for (int h = 0; h < H_COUNT; h++) {
        snprintf (net->ns [h], sizeof net->ns [h], "%s-%s", net->prefix, s_host [h]);
        net->fd [h] = -1;
    }
    for (int h = 0; h < H_COUNT; h++) {
        ck_assert_msg (tu_ip (NULL, "netns", "add", net->ns [h], NULL),
                       "cannot add namespace %s", net->ns [h]);
        char path [160];
        snprintf (path, sizeof path, "/run/netns/%s", net->ns [h]);
        net->fd [h] = open (path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge (net->fd [h], 0);
    }
    const char *sw = net->ns [H_SW];
    ck_assert (tu_ip (NULL, "-n", sw, "link", "add", "br0", "type", "bridge", NULL));
    ck_assert (tu_ip (NULL, "-n", sw, "link", "set", "br0", "up", NULL));
    for (int h = H_A; h <= H_D; h++) {
        char port [32], addr [32], cidr [40];
        s_port ((host_t) h, port, sizeof port);
        snprintf (cidr, sizeof cidr, "%s/24", s_addr (net, (host_t) h, addr, sizeof addr));
        ck_assert (tu_ip (NULL, "-n", sw, "link", "add", "name", port, "type", "veth",
                         "peer", "name", "eth0", "netns", net->ns [h], NULL));
        ck_assert (tu_ip (NULL, "-n", sw, "link", "set", port, "master", "br0", "up", NULL));
        ck_assert (tu_ip (NULL, "-n", net->ns [h], "addr", "add", cidr, "dev", "eth0", NULL));
        ck_assert (tu_ip (NULL, "-n", net->ns [h], "link", "set", "eth0", "up", NULL));
        ck_assert (tu_ip (NULL, "-n", net->ns [h], "link", "set", "lo", "up", NULL));
    }
}

//  Remove the network (everything in it has ended); true once every
//  namespace of it is gone.
static bool
s_net_down (net_t *net)
{
    bool gone = true;
    for (int h = 0; h < H_COUNT; h++) {
        if (net->fd [h] >= 0)
            close (net->fd [h]);
        net->fd [h] = -1;
        s_ns_remove (net->ns [h]);
        char path [160];
        snprintf (path, sizeof path, "/run/netns/%s", net->ns [h]);
        gone = gone && access (path, F_OK) != 0;
    }
    close (net->home);
    return gone;
}

//  Cut host off at the switch, or plug it back.
static bool
s_net_cable (tr_ctx_t *ctx, net_t *net, host_t host, bool plugged)
{
    char port [32];
    s_port (host, port, sizeof port);
    return tu_ip (ctx, "-n", net->ns [H_SW], "link", "set", port, plugged? "up": "down", NULL);
}

//  --------------------------------------------------------------------------
//  Processes on the hosts

typedef struct {
    pid_t pid;
    int pidfd;                      //  -1 once reaped
    int out;                        //  its stdout, -1 once closed
    char text [1024];               //  what it wrote so far
    size_t len;
    int status;                     //  wait status once reaped
} proc_t;

typedef struct {
    int fd;
    int ms;
} poll_job_t;

static void *
s_poll_job (void *arg)
{
    poll_job_t *job = arg;
    struct pollfd item = { job->fd, POLLIN, 0 };
    return poll (&item, 1, job->ms) == 1? arg: NULL;
}

//  Wait up to ms for fd to be readable: from a task (ctx not NULL) on a
//  worker thread while the task parks, else here.
static bool
s_readable (tr_ctx_t *ctx, int fd, int ms)
{
    poll_job_t job = { fd, ms };
    if (!ctx)
        return s_poll_job (&job) == &job;
    void *ret = NULL;
    return tr_to_thread (ctx, s_poll_job, &job, &ret) == 0 && ret == &job;
}

//  Start argv in host: this thread steps into the host's namespace for
//  the spawn only (the child keeps it) and back. Never parks.
static bool
s_spawn (net_t *net, host_t host, char *const *argv, proc_t *p)
{
    memset (p, 0, sizeof *p);
    p->pidfd = p->out = -1;
    int out [2];
    if (pipe2 (out, O_CLOEXEC))
        return false;
    int here = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    bool ok = here >= 0 && setns (net->fd [host], CLONE_NEWNET) == 0;
    if (ok) {
        //  The program starts in host's network namespace, this thread's now.
        p->pid = tu_spawn_tied (argv, out [1], -1, NULL);
        ok = p->pid > 0;
        //  Back home whatever happened: nothing else may start in host.
        if (setns (here, CLONE_NEWNET))
            abort ();
    }
    if (here >= 0)
        close (here);
    close (out [1]);
    if (!ok) {
        close (out [0]);
        return false;
    }
    p->out = out [0];
    p->pidfd = (int) syscall (SYS_pidfd_open, p->pid, 0);
    return p->pidfd >= 0;
}

//  Read its stdout up to the end of its first line, timeout_ms (scaled)
//  at most; the pipe is closed then, as nothing else comes on it.
static bool
s_first_line (tr_ctx_t *ctx, proc_t *p, int timeout_ms)
{
    long long deadline = tu_now_ms () + tu_ms (timeout_ms);
    while (p->out >= 0 && !strchr (p->text, '\n')) {
        long long left = deadline - tu_now_ms ();
        if (left <= 0 || !s_readable (ctx, p->out, (int) left))
            break;
        ssize_t n = read (p->out, p->text + p->len, sizeof p->text - 1 - p->len);
        if (n <= 0)
            break;
        p->len += (size_t) n;
        p->text [p->len] = 0;
    }
    if (p->out >= 0)
        close (p->out);
    p->out = -1;
    return strchr (p->text, '\n') != NULL;
}

//  Wait up to timeout_ms (scaled) for it to exit and reap it; its wait
//  status, or -1 if it did not exit.
static int
s_reap (tr_ctx_t *ctx, proc_t *p, int timeout_ms)
{
    if (p->pidfd < 0)
        return p->status;
    if (!s_readable (ctx, p->pidfd, tu_ms (timeout_ms))
    ||  waitpid (p->pid, &p->status, 0) != p->pid)
        return -1;
    close (p->pidfd);
    p->pidfd = -1;
    return p->status;
}

//  --------------------------------------------------------------------------
//  The broker and the workers

typedef struct {
    proc_t proc;
    char uid [256];                 //  workers: as they printed it
    char endpoint [256];
} actor_proc_t;

static const char *
s_broker_path (void)
{
    const char *path = getenv ("TROUPE_TEST_BROKER");
    return path? path: "broker/troupe-broker";
}

//  The deployment's keys, made once per test process and removed at its
//  exit: every actor of the scenario and the broker use them, as hosts
//  that were each given a copy of the directory would.
static char s_keys [64];

static void
s_keys_remove (void)
{
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_keys);
    if (system (cmd)) {
        //  Nothing to do: a directory in /tmp left behind.
    }
}

static const char *
s_keys_dir (void)
{
    if (!*s_keys) {
        snprintf (s_keys, sizeof s_keys, "/tmp/trmh-keys-%d", (int) getpid ());
        ck_assert_int_eq (tr_keygen (s_keys), 0);
        atexit (s_keys_remove);
    }
    return s_keys;
}

//  Start troupe-broker in a at the suite's port; false (why says why)
//  unless it serves there.
static bool
s_broker_start (tr_ctx_t *ctx, net_t *net, actor_proc_t *b, char *why, size_t size)
{
    char addr [32], endpoint [64], lease [16];
    snprintf (endpoint, sizeof endpoint, "tcp://%s:%d", s_addr (net, H_A, addr, sizeof addr), S_PORT);
    snprintf (lease, sizeof lease, "%d", S_LEASE_MS);
    char *argv [] = { (char *) s_broker_path (), (char *) "--endpoint", endpoint,
                      (char *) "--lease-ms", lease, (char *) "--keys", (char *) s_keys_dir (),
                      NULL };
    if (!s_spawn (net, H_A, argv, &b->proc)) {
        snprintf (why, size, "cannot start %s in %s", argv [0], net->ns [H_A]);
        return false;
    }
    s_first_line (ctx, &b->proc, 5000);
    if (sscanf (b->proc.text, "troupe-broker serving at %255s", b->endpoint) != 1
    ||  strcmp (b->endpoint, endpoint)) {
        snprintf (why, size, "the broker in %s printed '%.200s', not that it serves at %s",
                  net->ns [H_A], b->proc.text, endpoint);
        return false;
    }
    return true;
}

//  Start tests/worker as a daemon called name in host, registering with
//  the broker; read the uid and endpoint it prints.
static void
s_worker_start (net_t *net, host_t host, const char *name, actor_proc_t *w)
{
    char addr [32], bind [64], registry [64];
    snprintf (bind, sizeof bind, "tcp://%s:*", s_addr (net, host, addr, sizeof addr));
    snprintf (registry, sizeof registry, "tcp://%s:%d", s_addr (net, H_A, addr, sizeof addr), S_PORT);
    char *argv [] = { (char *) tu_worker_path (), (char *) "--tr-daemon", (char *) "--tr-name",
                      (char *) name, (char *) "--tr-bind", bind, (char *) "--tr-registry",
                      registry, (char *) "--tr-keys", (char *) s_keys_dir (), NULL };
    ck_assert_msg (s_spawn (net, host, argv, &w->proc), "cannot start %s in %s",
                   argv [0], net->ns [host]);
    ck_assert_msg (s_first_line (NULL, &w->proc, 5000), "%s printed no line", name);
    ck_assert_int_eq (sscanf (w->proc.text, "%255s %255s", w->uid, w->endpoint), 2);
    ck_assert_msg (strncmp (w->endpoint, bind, strlen (bind) - 1) == 0,
                   "%s serves at %s, not on %s", name, w->endpoint, bind);
}

//  --------------------------------------------------------------------------
//  A scene: the network, the broker, two workers and what the root saw

typedef struct scene_s scene_t;
typedef void (scene_fn) (tr_actor_t *self, scene_t *sc);

struct scene_s {
    net_t net;
    actor_proc_t broker, wb, wc;
    scene_fn *play;                 //  what the root does
    char registry [256];            //  the broker's endpoint
    bool failed;
    char why [1024];                //  the first thing that went wrong
    int line;                       //  where
    //  what was measured, in ms
    long long lost_ms, dropped_ms, back_ms, again_ms;
};

#define S_NAME_B "worker-b"
#define S_NAME_C "worker-c"

//  Record the first failure; the scene then stops.
static void
s_fail (scene_t *sc, int line, const char *fmt, ...)
{
    if (sc->failed)
        return;
    sc->failed = true;
    sc->line = line;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (sc->why, sizeof sc->why, fmt, ap);
    va_end (ap);
}

#define S_REQUIRE(sc, cond, ...) do { \
    if (!(cond)) { \
        s_fail ((sc), __LINE__, __VA_ARGS__); \
        goto done; \
    } \
} while (0)

//  The detail of a failed call, for messages.
static const char *
s_detail (tr_ctx_t *ctx)
{
    const tr_error_t *err = tr_ctx_error (ctx);
    return err? tr_error_message (err): "";
}

//  echo [text, n] on p; 0 if it came back as sent, else why not.
static int
s_echo (tr_portal_t *p, const char *text, int n)
{
    tr_args_t *args = tr_pack ("[si]", text, n);
    tr_value_t *v = NULL;
    int rc = tr_portal_run (p, "echo", args, &v);
    tr_args_destroy (&args);
    const char *got = NULL;
    int m = -1;
    if (rc == 0 && (tr_unpack (tr_value_object (v), "[si]", &got, &m)
                    || strcmp (got, text) || m != n))
        rc = TR_EFORMAT;
    tr_value_destroy (&v);
    return rc;
}

//  How many registrations the broker lists under name with uid (and,
//  if pid is not NULL, the pid of the last); -1 if it could not be asked.
static int
s_listed (tr_actor_t *self, const char *name, const char *uid, int *pid)
{
    tr_value_t *entries = NULL;
    if (tr_registry_list (self, name, &entries))
        return -1;
    const msgpack_object *arr = tr_value_object (entries);
    int count = 0;
    for (uint32_t i = 0; arr->type == MSGPACK_OBJECT_ARRAY && i < arr->via.array.size; i++) {
        const char *u = NULL;
        int p = 0;
        if (tr_unpack (&arr->via.array.ptr [i], "{s:s, s:i}", "uid", &u, "pid", &p) == 0
        &&  streq (u, uid)) {
            count++;
            if (pid)
                *pid = p;
        }
    }
    tr_value_destroy (&entries);
    return count;
}

//  Find a worker by name, waiting up to timeout_ms (scaled; 0: it must
//  be registered now), and check it is the one started; false (the
//  scene failed) if not.
static bool
s_find (tr_actor_t *self, scene_t *sc, const char *name, const actor_proc_t *w,
        int timeout_ms, tr_portal_t **p)
{
    int rc = timeout_ms? tr_wait_for_actor (self, name, tu_ms (timeout_ms), p)
                       : tr_find_actor (self, name, p);
    if (rc) {
        s_fail (sc, __LINE__, "%s (%s) returned %s: %s",
                timeout_ms? "tr_wait_for_actor": "tr_find_actor", name, tr_errname (rc),
                s_detail (tr_actor_ctx (self)));
        return false;
    }
    if (!streq (tr_portal_uid (*p), w->uid) || !streq (tr_portal_endpoint (*p), w->endpoint)) {
        s_fail (sc, __LINE__, "%s found as %s at %s, started as %s at %s", name,
                tr_portal_uid (*p), tr_portal_endpoint (*p), w->uid, w->endpoint);
        return false;
    }
    return true;
}

//  The end of every scene: cancel both workers, each acked.
static void
s_cancel_both (scene_t *sc, tr_portal_t *pb, tr_portal_t *pc)
{
    int rb = tr_portal_cancel_actor (pb, tu_ms (2000));
    int rc = tr_portal_cancel_actor (pc, tu_ms (2000));
    if (rb || rc)
        s_fail (sc, __LINE__, "cancel_actor: %s returned %s, %s returned %s", S_NAME_B,
                tr_errname (rb), S_NAME_C, tr_errname (rc));
}

static int
s_root (tr_actor_t *self, void *arg)
{
    scene_t *sc = arg;
    sc->play (self, sc);
    return 0;
}

//  Build the network, start the broker and the workers, run play as a
//  root in d; then check that the workers ended (cancelled: exit 0), stop
//  the broker (exit 0), and that nothing is left, processes or
//  namespaces.
static void
s_run_scene (scene_t *sc, scene_fn *play)
{
    tu_subreaper ();
    memset (sc, 0, sizeof *sc);
    sc->play = play;
    s_net_up (&sc->net);
    char why [512] = "";
    ck_assert_msg (s_broker_start (NULL, &sc->net, &sc->broker, why, sizeof why), "%s", why);
    snprintf (sc->registry, sizeof sc->registry, "%s", sc->broker.endpoint);
    s_worker_start (&sc->net, H_B, S_NAME_B, &sc->wb);
    s_worker_start (&sc->net, H_C, S_NAME_C, &sc->wc);

    char addr [32], bind [64];
    snprintf (bind, sizeof bind, "tcp://%s:*", s_addr (&sc->net, H_D, addr, sizeof addr));
    tr_config_t config = tu_config ();
    config.size = sizeof config;
    config.bind = bind;
    config.registry = sc->registry;
    config.keys = s_keys_dir ();
    config.heartbeat_ivl_ms = S_HB_IVL_MS;
    config.heartbeat_timeout_ms = S_HB_TIMEOUT_MS;
    //  The root lives on host d: this process joins it for the run.
    ck_assert_int_eq (setns (sc->net.fd [H_D], CLONE_NEWNET), 0);
    int rc = tr_run (&config, 0, NULL, s_root, sc);
    ck_assert_int_eq (setns (sc->net.home, CLONE_NEWNET), 0);
    ck_assert_int_eq (rc, 0);
    ck_assert_msg (!sc->failed, "line %d: %s", sc->line, sc->why);

    int status = s_reap (NULL, &sc->wb.proc, 5000);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0,
                   "%s ended with status 0x%x", S_NAME_B, status);
    status = s_reap (NULL, &sc->wc.proc, 5000);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0,
                   "%s ended with status 0x%x", S_NAME_C, status);
    ck_assert_int_eq (kill (sc->broker.proc.pid, SIGTERM), 0);
    status = s_reap (NULL, &sc->broker.proc, 5000);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0,
                   "the broker ended with status 0x%x", status);
    tu_assert_no_procs_left (0);
    ck_assert_msg (s_net_down (&sc->net), "namespaces of %s are left", sc->net.prefix);
}

//  --------------------------------------------------------------------------
//  1. Found by name, called, streamed from, cancelled

static void
s_play_meet (tr_actor_t *self, scene_t *sc)
{
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_portal_t *pb = NULL, *pc = NULL;
    tr_context_t *cb = NULL, *cc = NULL;
    if (!s_find (self, sc, S_NAME_B, &sc->wb, 5000, &pb)
    ||  !s_find (self, sc, S_NAME_C, &sc->wc, 5000, &pc))
        goto done;
    int rc = s_echo (pb, "from d to b", 2);
    S_REQUIRE (sc, rc == 0, "echo on %s: %s %s", S_NAME_B, tr_errname (rc), s_detail (ctx));
    rc = s_echo (pc, "from d to c", 3);
    S_REQUIRE (sc, rc == 0, "echo on %s: %s %s", S_NAME_C, tr_errname (rc), s_detail (ctx));

    //  The broker knows each worker once, with the pid it runs as.
    int pid = 0;
    int n = s_listed (self, S_NAME_B, sc->wb.uid, &pid);
    S_REQUIRE (sc, n == 1 && pid == sc->wb.proc.pid, "%s listed %d times, pid %d (is %d)",
               S_NAME_B, n, pid, (int) sc->wb.proc.pid);
    n = s_listed (self, S_NAME_C, sc->wc.uid, &pid);
    S_REQUIRE (sc, n == 1 && pid == sc->wc.proc.pid, "%s listed %d times, pid %d (is %d)",
               S_NAME_C, n, pid, (int) sc->wc.proc.pid);

    //  A context on each, both streaming at once: each stream in order.
    enum { COUNT = 200 };
    tr_args_t *args = tr_pack ("[i]", COUNT);
    const msgpack_object *first_b = NULL, *first_c = NULL;
    int rb = tr_portal_open_context (pb, "ctx_count", args, &cb, &first_b);
    int rcc = tr_portal_open_context (pc, "ctx_count", args, &cc, &first_c);
    tr_args_destroy (&args);
    S_REQUIRE (sc, rb == 0 && rcc == 0, "open_context: %s, %s", tr_errname (rb), tr_errname (rcc));
    const char *go_b = "", *go_c = "";
    S_REQUIRE (sc, tr_unpack (first_b, "s", &go_b) == 0 && streq (go_b, "go")
               &&  tr_unpack (first_c, "s", &go_c) == 0 && streq (go_c, "go"),
               "first values '%s' and '%s', not 'go'", go_b, go_c);
    tr_stream_t *sb, *scc;
    S_REQUIRE (sc, tr_context_open_stream (cb, &sb) == 0 && tr_context_open_stream (cc, &scc) == 0,
               "cannot open the streams");
    for (int i = 0; i < COUNT; i++) {
        tr_stream_t *streams [2] = { sb, scc };
        for (int k = 0; k < 2; k++) {
            const msgpack_object *value;
            int64_t got = -1;
            rc = tr_stream_recv (streams [k], &value, tu_ms (5000));
            S_REQUIRE (sc, rc == 0 && tr_unpack (value, "I", &got) == 0 && got == i,
                       "stream from %s: value %d is %lld (%s)", k? S_NAME_C: S_NAME_B, i,
                       (long long) got, tr_errname (rc));
        }
    }
    const msgpack_object *value;
    rb = tr_stream_recv (sb, &value, tu_ms (5000));
    rcc = tr_stream_recv (scc, &value, tu_ms (5000));
    S_REQUIRE (sc, rb == TR_ECLOSED && rcc == TR_ECLOSED, "after the last value: %s, %s",
               tr_errname (rb), tr_errname (rcc));
    int64_t total_b = -1, total_c = -1;
    const msgpack_object *result;
    S_REQUIRE (sc, tr_context_result (cb, &result) == 0 && tr_unpack (result, "I", &total_b) == 0
               &&  tr_context_result (cc, &result) == 0 && tr_unpack (result, "I", &total_c) == 0
               &&  total_b == COUNT && total_c == COUNT,
               "results %lld and %lld, not %d", (long long) total_b, (long long) total_c, COUNT);
    tr_context_close (&cb);
    tr_context_close (&cc);
    s_cancel_both (sc, pb, pc);
done:
    tr_context_close (&cb);
    tr_context_close (&cc);
    tr_portal_close (&pb);
    tr_portal_close (&pc);
}

START_TEST (test_workers_on_two_hosts_are_found_through_a_broker_on_a_third_called_streamed_from_and_cancelled)
{
    scene_t sc;
    s_run_scene (&sc, s_play_meet);
}
END_TEST

//  --------------------------------------------------------------------------
//  2. A worker cut off: lost, dropped, back

static void
s_play_partition (tr_actor_t *self, scene_t *sc)
{
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_portal_t *pb = NULL, *pc = NULL, *pc2 = NULL;
    bool cut = false;
    if (!s_find (self, sc, S_NAME_B, &sc->wb, 5000, &pb)
    ||  !s_find (self, sc, S_NAME_C, &sc->wc, 5000, &pc))
        goto done;
    int rc = s_echo (pc, "before", 1);
    S_REQUIRE (sc, rc == 0, "echo on %s: %s", S_NAME_C, tr_errname (rc));

    //  Pull c's cable. A call on c then fails once the root's heartbeat
    //  timeout passes with nothing from c.
    long long cut_at = tu_now_ms ();
    S_REQUIRE (sc, (cut = s_net_cable (ctx, &sc->net, H_C, false)), "cannot set c's port down");
    rc = s_echo (pc, "into the void", 2);
    sc->lost_ms = tu_now_ms () - cut_at;
    S_REQUIRE (sc, rc == TR_ECLOSED || rc == TR_ECRASHED,
               "a call on %s cut off returned %s, not TR_ECLOSED or TR_ECRASHED",
               S_NAME_C, tr_errname (rc));
    S_REQUIRE (sc, sc->lost_ms < tu_ms (S_HB_TIMEOUT_MS + S_LOST_SLACK_MS),
               "%s was lost %lld ms after the cut (heartbeat timeout %d ms)", S_NAME_C,
               sc->lost_ms, S_HB_TIMEOUT_MS);
    rc = s_echo (pb, "b is still here", 3);
    S_REQUIRE (sc, rc == 0, "echo on %s while c is cut off: %s", S_NAME_B, tr_errname (rc));

    //  The broker drops c once its lease runs out, and keeps b.
    long long deadline = cut_at + tu_ms (S_LEASE_MS + S_MARGIN_MS);
    int n;
    while ((n = s_listed (self, S_NAME_C, sc->wc.uid, NULL)) != 0 && tu_now_ms () < deadline)
        tr_sleep (ctx, 20);
    sc->dropped_ms = tu_now_ms () - cut_at;
    S_REQUIRE (sc, n == 0, "%s still listed %lld ms after the cut (lease %d ms)",
               S_NAME_C, sc->dropped_ms, S_LEASE_MS);
    n = s_listed (self, S_NAME_B, sc->wb.uid, NULL);
    S_REQUIRE (sc, n == 1, "%s listed %d times while c is cut off", S_NAME_B, n);

    //  Plug it back: c registers again by itself, once its connection to
    //  the broker is back (or lost by its own heartbeat and made anew,
    //  tried every second), and is found and called through a new portal.
    long long healed_at = tu_now_ms ();
    S_REQUIRE (sc, s_net_cable (ctx, &sc->net, H_C, true), "cannot set c's port up");
    cut = false;
    int bound = S_WORKER_HB_TIMEOUT_MS + S_RETRY_MS + 2 * S_RENEW_MS + S_MARGIN_MS;
    if (!s_find (self, sc, S_NAME_C, &sc->wc, bound, &pc2))
        goto done;
    sc->back_ms = tu_now_ms () - healed_at;
    rc = s_echo (pc2, "welcome back", 4);
    S_REQUIRE (sc, rc == 0, "echo on %s found again: %s %s", S_NAME_C, tr_errname (rc), s_detail (ctx));
    n = s_listed (self, S_NAME_C, sc->wc.uid, NULL);
    S_REQUIRE (sc, n == 1, "%s listed %d times once back", S_NAME_C, n);
    //  The portal lost stays closed.
    rc = s_echo (pc, "old portal", 5);
    S_REQUIRE (sc, rc == TR_ECLOSED || rc == TR_ECRASHED, "a call on the lost portal returned %s",
               tr_errname (rc));
    s_cancel_both (sc, pb, pc2);
done:
    if (cut)
        s_net_cable (ctx, &sc->net, H_C, true);
    tr_portal_close (&pb);
    tr_portal_close (&pc);
    tr_portal_close (&pc2);
}

START_TEST (test_a_worker_cut_off_is_lost_within_the_heartbeat_timeout_dropped_by_the_registry_and_found_again_once_back)
{
    scene_t sc;
    s_run_scene (&sc, s_play_partition);
    fprintf (stderr, "test_multihost: c lost after %lld ms, dropped after %lld ms, "
             "found again %lld ms after the cable came back\n",
             sc.lost_ms, sc.dropped_ms, sc.back_ms);
}
END_TEST

//  --------------------------------------------------------------------------
//  3. The broker restarted mid-run

static void
s_play_restart (tr_actor_t *self, scene_t *sc)
{
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_portal_t *pb = NULL, *pc = NULL, *fb = NULL, *fc = NULL;
    if (!s_find (self, sc, S_NAME_B, &sc->wb, 5000, &pb)
    ||  !s_find (self, sc, S_NAME_C, &sc->wc, 5000, &pc))
        goto done;
    int rb = s_echo (pb, "before", 1), rc = s_echo (pc, "before", 1);
    S_REQUIRE (sc, rb == 0 && rc == 0, "echo before: %s, %s", tr_errname (rb), tr_errname (rc));

    //  Stop the broker; it exits 0.
    S_REQUIRE (sc, kill (sc->broker.proc.pid, SIGTERM) == 0, "cannot signal the broker");
    int status = s_reap (ctx, &sc->broker.proc, 5000);
    S_REQUIRE (sc, status >= 0 && WIFEXITED (status) && WEXITSTATUS (status) == 0,
               "the broker ended with status 0x%x", status);

    //  Without it, the workers answer as before: the portals do not go
    //  through the broker.
    rb = s_echo (pb, "no broker", 2);
    rc = s_echo (pc, "no broker", 2);
    S_REQUIRE (sc, rb == 0 && rc == 0, "echo without a broker: %s, %s", tr_errname (rb),
               tr_errname (rc));

    //  A new broker at the same endpoint has both back within two
    //  renewals, without anyone being told.
    char why [512];
    S_REQUIRE (sc, s_broker_start (ctx, &sc->net, &sc->broker, why, sizeof why), "%s", why);
    long long up_at = tu_now_ms ();
    long long deadline = up_at + tu_ms (2 * S_RENEW_MS + S_MARGIN_MS);
    int nb = 0, nc = 0;
    while (true) {
        nb = s_listed (self, S_NAME_B, sc->wb.uid, NULL);
        nc = s_listed (self, S_NAME_C, sc->wc.uid, NULL);
        if ((nb == 1 && nc == 1) || tu_now_ms () >= deadline)
            break;
        tr_sleep (ctx, 20);
    }
    sc->again_ms = tu_now_ms () - up_at;
    S_REQUIRE (sc, nb == 1 && nc == 1, "%lld ms after the new broker came up, %s is listed %d "
               "times and %s %d times", sc->again_ms, S_NAME_B, nb, S_NAME_C, nc);

    //  Findable again, and the portals of before still work.
    if (!s_find (self, sc, S_NAME_B, &sc->wb, 0, &fb)
    ||  !s_find (self, sc, S_NAME_C, &sc->wc, 0, &fc))
        goto done;
    rb = s_echo (fb, "found again", 3);
    rc = s_echo (fc, "found again", 3);
    S_REQUIRE (sc, rb == 0 && rc == 0, "echo on the workers found again: %s, %s",
               tr_errname (rb), tr_errname (rc));
    rb = s_echo (pb, "after", 4);
    rc = s_echo (pc, "after", 4);
    S_REQUIRE (sc, rb == 0 && rc == 0, "echo after the restart: %s, %s", tr_errname (rb),
               tr_errname (rc));
    tr_portal_close (&fb);
    tr_portal_close (&fc);
    s_cancel_both (sc, pb, pc);
done:
    tr_portal_close (&fb);
    tr_portal_close (&fc);
    tr_portal_close (&pb);
    tr_portal_close (&pc);
}

START_TEST (test_a_broker_restarted_mid_run_has_both_workers_back_within_two_renewals_and_calls_go_on)
{
    scene_t sc;
    s_run_scene (&sc, s_play_restart);
    fprintf (stderr, "test_multihost: both workers registered again %lld ms after the "
             "new broker came up\n", sc.again_ms);
}
END_TEST

//  --------------------------------------------------------------------------
//  Whether this machine lets us build the network; NULL if it does, else
//  why not.

static const char *
s_cannot (void)
{
    static const char *paths [] = { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip" };
    for (size_t i = 0; i < sizeof paths / sizeof *paths && !tu_ip_path; i++)
        if (access (paths [i], X_OK) == 0)
            tu_ip_path = paths [i];
    if (!tu_ip_path)
        return "no ip(8) program (iproute2)";
    if (geteuid () != 0)
        return "not root: network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN";
    char name [64], path [96];
    snprintf (name, sizeof name, "trmh-%d-probe", (int) s_runner);
    snprintf (path, sizeof path, "/run/netns/%s", name);
    const char *why = NULL;
    int home = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (!tu_ip (NULL, "netns", "add", name, NULL))
        why = "ip netns add failed";
    else {
        int fd = open (path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || home < 0 || setns (fd, CLONE_NEWNET) || setns (home, CLONE_NEWNET))
            why = "setns(2) into a network namespace failed";
        else
        if (!tu_ip (NULL, "-n", name, "link", "add", "br0", "type", "bridge", NULL))
            why = "cannot make a bridge in a network namespace";
        else
        if (!tu_ip (NULL, "-n", name, "link", "add", "name", "v0", "type", "veth",
                   "peer", "name", "v1", NULL))
            why = "cannot make a veth pair in a network namespace";
        if (fd >= 0)
            close (fd);
        s_ns_remove (name);
    }
    if (home >= 0)
        close (home);
    return why;
}

int
main (void)
{
    s_runner = getpid ();
    Suite *suite = suite_create ("multihost");
    const char *why = s_cannot ();
    if (why) {
        //  An empty run prints Check's totals (no tests); automake counts
        //  the suite as skipped.
        printf ("test_multihost: skipped: %s\n", why);
        fflush (stdout);
        tu_run_suite (suite, CK_FORK);
        return 77;
    }
    s_ns_sweep (true);
    prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    TCase *tc = tu_tcase (suite, "meeting", 30);
    tcase_add_unchecked_fixture (tc, NULL, s_teardown);
    tcase_add_test (tc, test_workers_on_two_hosts_are_found_through_a_broker_on_a_third_called_streamed_from_and_cancelled);
    tc = tu_tcase (suite, "partition", 40);
    tcase_add_unchecked_fixture (tc, NULL, s_teardown);
    tcase_add_test (tc, test_a_worker_cut_off_is_lost_within_the_heartbeat_timeout_dropped_by_the_registry_and_found_again_once_back);
    tc = tu_tcase (suite, "broker restart", 30);
    tcase_add_unchecked_fixture (tc, NULL, s_teardown);
    tcase_add_test (tc, test_a_broker_restarted_mid_run_has_both_workers_back_within_two_renewals_and_calls_go_on);
    //  Each test joins a namespace: it needs a process of its own.
    return tu_run_suite (suite, CK_FORK);
}
