/*  =========================================================================
    test_faults.c - fault injection: trees under load, actors killed,
    stopped, cut off, connections closed, the broker restarted

    Each scenario puts a tree under load (caller tasks calling all the
    time, each call timed against its deadline) while an injector task
    breaks things one at a time, waits for each break to be detected, and
    a monitor task watches the processes. Heartbeats are short (100 ms,
    600 ms timeout) in the root and, through the environment
    (TU_HEARTBEAT_*), in every tests/worker it starts.

    Faults injected, and how each is detected:
    - SIGKILL of a worker of a supervised nursery (one_for_one): its
      pidfd tells the root at once; detected once the supervisor has
      restarted it (tr_portal_restarts grew, a new pid answers "pid") and
      the old pid is reaped.
    - SIGSTOP of a worker, held: the ROUTER's heartbeat drops it; detected
      once it was killed, reaped and restarted, within the heartbeat
      timeout plus a margin.
    - SIGSTOP then SIGCONT after 150 ms (under the timeout): not a death;
      detected as handled once the same pid answers again, not restarted.
    - a connection closed abruptly: a portal opened on a worker's
      endpoint is closed while a call through it is being served; detected
      once the call returned TR_ECLOSED at once and the worker cancelled
      the call it served (its cancel count grew).
    - troupe-broker killed (SIGKILL) and started again at its endpoint:
      detected once every worker's current uid is listed by it again.
    - (netns scenario, root only) traffic to a host dropped by an nftables
      rule (when nft is installed), or its link set down: detected once
      the calls in flight to the daemons there fail with a clear error
      within the heartbeat timeout; once the fault is lifted, new portals
      open and the daemons serve them.
    Each worker holds a grandchild (tests/worker's hold_grandchild): a
    worker's death orphans it, and the monitor (the test process is a
    subreaper) checks that it exits within the heartbeat timeout and
    reaps it. The monitor also counts zombies: a dead worker not reaped by
    the runtime within a second.

    Asserted at the end of each: every call returned its result or a
    clear error (TR_ECRASHED / TR_ECLOSED / TR_ETIMEDOUT with an error
    object) before its deadline, every fault was detected, no orphan
    outlived its parent past the heartbeat timeout, no zombie, every
    survivor still serves, and no process is left. Each prints one line:
    "faults: N injected, N detected, 0 hangs, 0 orphans, 0 zombies".

    Without root, `ip` or network namespaces the netns scenario prints
    why and passes without running (the rest runs anywhere).
    =========================================================================
*/
#include "testutil.h"
#include "testnet.h"
#include "testproc.h"
#include <errno.h>
#include <sched.h>
#include <stdarg.h>

#define S_HB_IVL_MS         100
#define S_HB_TIMEOUT_MS     600
#define S_WORKERS           4
#define S_CALLERS           4
#define S_LEASE_MS          "900"
//  A call's deadline: a stopped worker found within the heartbeat
//  timeout, killed, restarted; the rest is margin (scaled).
#define S_CALL_BOUND_MS     (S_HB_TIMEOUT_MS + 2500)
//  How long an orphan may outlive its parent.
#define S_ORPHAN_BOUND_MS   (S_HB_TIMEOUT_MS + 1000)
#define S_ZOMBIE_BOUND_MS   1000
#define S_MAX_PIDS          512

#define streq(a, b) (strcmp ((a), (b)) == 0)

//  --------------------------------------------------------------------------
//  What a scenario counts

typedef struct {
    int injected, detected, hangs, orphans, zombies;
    int adopted;                    //  orphans seen, ended and reaped here
    long calls, ok, clear_errors, unclear;
    char unclear_text [256];        //  the first call that failed unclearly
    char undetected [256];          //  the first fault not detected
    char hang_text [256];
    int survivors_rc;               //  the last check that every survivor serves
    bool stop;                      //  callers and monitor stop
    //  Processes the monitor knows: old workers (must be reaped by the
    //  runtime), grandchildren (orphans once their parent died).
    int old [S_MAX_PIDS], nold;
    int grand [S_MAX_PIDS], ngrand;
    long long seen [S_MAX_PIDS];    //  when each grandchild was first ours
    long long zombie_since [S_MAX_PIDS];
    bool counted [S_MAX_PIDS], zcounted [S_MAX_PIDS];
} faults_t;

static void
s_note (char *buf, size_t size, const char *fmt, ...)
{
    if (*buf)
        return;
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (buf, size, fmt, ap);
    va_end (ap);
}

static void
s_print (const char *scenario, const faults_t *f)
{
    printf ("faults: %d injected, %d detected, %d hangs, %d orphans, %d zombies"
            " (%s: %ld calls, %ld ok, %ld clear errors, %ld unclear; %d orphans ended)\n",
            f->injected, f->detected, f->hangs, f->orphans, f->zombies, scenario,
            f->calls, f->ok, f->clear_errors, f->unclear, f->adopted);
    fflush (stdout);
}

static void
s_assert_clean (const faults_t *f)
{
    ck_assert_msg (f->injected > 0, "no fault injected");
    ck_assert_msg (f->detected == f->injected, "%d of %d faults detected; first missed: %s",
                   f->detected, f->injected, f->undetected);
    ck_assert_msg (f->hangs == 0, "%d calls passed their deadline: %s", f->hangs, f->hang_text);
    ck_assert_msg (f->unclear == 0, "%ld calls failed without a clear error: %s",
                   f->unclear, f->unclear_text);
    ck_assert_int_eq (f->orphans, 0);
    ck_assert_int_eq (f->zombies, 0);
    ck_assert_msg (f->ok > 0, "no call succeeded");
    ck_assert_tr_ok (f->survivors_rc);
}

//  Account for one call's outcome: rc, its error, how long it took.
static void
s_account (faults_t *f, const char *what, int rc, const tr_error_t *error,
           long long took_ms, int bound_ms)
{
    f->calls++;
    if (took_ms > tu_ms (bound_ms)) {
        f->hangs++;
        s_note (f->hang_text, sizeof f->hang_text, "%s took %lld ms (%s)", what, took_ms,
                tr_errname (rc));
    }
    if (rc == 0)
        f->ok++;
    else
    if ((rc == TR_ECRASHED || rc == TR_ECLOSED || rc == TR_ETIMEDOUT) && error)
        f->clear_errors++;
    else {
        f->unclear++;
        s_note (f->unclear_text, sizeof f->unclear_text, "%s: %s (%s)", what, tr_errname (rc),
                error? tr_error_message (error): "no error object");
    }
}

//  --------------------------------------------------------------------------
//  The monitor: orphans and zombies among the test process's children

static int
s_index (const int *pids, int n, int pid)
{
    for (int i = 0; i < n; i++)
        if (pids [i] == pid)
            return i;
    return -1;
}

static void
s_monitor_scan (faults_t *f)
{
    pid_t pids [64];
    char states [64];
    int n = tu_children (pids, states, 64);
    long long now = tu_now_ms ();
    for (int i = 0; i < n; i++) {
        int g = s_index (f->grand, f->ngrand, (int) pids [i]);
        if (g >= 0) {
            //  A grandchild is ours only once its parent died: an orphan.
            if (!f->seen [g]) {
                f->seen [g] = now;
                f->adopted++;
            }
            if (states [i] == 'Z')
                waitpid (pids [i], NULL, WNOHANG);
            else
            if (!f->counted [g] && now - f->seen [g] > tu_ms (S_ORPHAN_BOUND_MS)) {
                f->counted [g] = true;
                f->orphans++;
            }
            continue;
        }
        int o = s_index (f->old, f->nold, (int) pids [i]);
        if (o >= 0 && states [i] == 'Z') {
            if (!f->zombie_since [o])
                f->zombie_since [o] = now;
            else
            if (!f->zcounted [o] && now - f->zombie_since [o] > tu_ms (S_ZOMBIE_BOUND_MS)) {
                f->zcounted [o] = true;
                f->zombies++;
            }
        }
    }
}

static int
s_monitor (tr_ctx_t *ctx, void *arg)
{
    faults_t *f = arg;
    while (!f->stop) {
        s_monitor_scan (f);
        if (tr_sleep (ctx, 10))
            break;
    }
    return 0;
}

//  Once the scenario ended: orphans still about have the bound to go.
static void
s_monitor_finish (tr_ctx_t *ctx, faults_t *f)
{
    long long deadline = tu_now_ms () + tu_ms (S_ORPHAN_BOUND_MS) + 200;
    while (tu_now_ms () < deadline) {
        s_monitor_scan (f);
        bool left = false;
        for (int g = 0; g < f->ngrand; g++) {
            char path [64];
            snprintf (path, sizeof path, "/proc/%d", f->grand [g]);
            left = left || (f->seen [g] && access (path, F_OK) == 0);
        }
        if (!left || tr_sleep (ctx, 10))
            break;
    }
}

//  --------------------------------------------------------------------------
//  The supervised tree

typedef struct {
    faults_t f;
    tr_actor_t *self;
    tr_portal_t *w [S_WORKERS];
    tu_proc_t broker;
    char broker_ep [256];
    unsigned seed;
    int rounds;                     //  faults to inject
} tree_t;

static int
s_pid_of (tr_portal_t *p, int *pid)
{
    tr_value_t *v = NULL;
    int rc = tr_portal_run (p, "pid", NULL, &v);
    if (rc == 0 && tr_unpack (tr_value_object (v), "i", pid))
        rc = TR_EFORMAT;
    tr_value_destroy (&v);
    return rc;
}

//  Give the worker behind p a grandchild and remember it.
static void
s_hold (tree_t *t, tr_portal_t *p)
{
    tr_value_t *v = NULL;
    int pid = 0;
    if (tr_portal_run (p, "hold_grandchild", NULL, &v) == 0
    &&  tr_unpack (tr_value_object (v), "i", &pid) == 0
    &&  t->f.ngrand < S_MAX_PIDS)
        t->f.grand [t->f.ngrand++] = pid;
    tr_value_destroy (&v);
}

typedef struct {
    tree_t *t;
    int id;
} caller_t;

static int
s_caller (tr_ctx_t *ctx, void *arg)
{
    caller_t *c = arg;
    tree_t *t = c->t;
    unsigned seed = t->seed + (unsigned) c->id;
    for (int i = 0; !t->f.stop && !tr_ctx_cancelled (ctx); i++) {
        tr_portal_t *p = t->w [rand_r (&seed) % S_WORKERS];
        const char *fn = i % 2? "echo": "echo_thread";
        tr_args_t *args = tr_pack ("[ii]", c->id, i);
        tr_value_t *v = NULL;
        long long start = tu_now_ms ();
        int rc = tr_portal_run (p, fn, args, &v);
        long long took = tu_now_ms () - start;
        int a = -1, b = -1;
        if (rc == 0 && (tr_unpack (tr_value_object (v), "[ii]", &a, &b) || a != c->id || b != i))
            rc = TR_EFORMAT;
        tr_value_destroy (&v);
        tr_args_destroy (&args);
        s_account (&t->f, fn, rc, tr_portal_error (p), took, S_CALL_BOUND_MS);
        //  Between calls, a moment for the rest of the tree.
        if (i % 8 == 7 && tr_sleep (ctx, 1))
            break;
    }
    return 0;
}

//  Wait until the worker behind p was restarted since (restarts, pid)
//  and its old pid reaped; the new one answers and holds a grandchild.
static bool
s_restarted (tr_ctx_t *ctx, tree_t *t, tr_portal_t *p, int restarts, int pid, int bound_ms)
{
    long long deadline = tu_now_ms () + tu_ms (bound_ms);
    char path [64];
    snprintf (path, sizeof path, "/proc/%d", pid);
    while (tr_portal_restarts (p) <= restarts || tr_portal_pid (p) == pid
    ||     access (path, F_OK) == 0) {
        if (tu_now_ms () >= deadline || tr_sleep (ctx, 5))
            return false;
    }
    int now = 0;
    if (s_pid_of (p, &now) || now == pid)
        return false;
    s_hold (t, p);
    return true;
}

static void
s_old (faults_t *f, int pid)
{
    if (f->nold < S_MAX_PIDS)
        f->old [f->nold++] = pid;
}

static bool
s_fault_kill (tr_ctx_t *ctx, tree_t *t, tr_portal_t *p, int sig)
{
    int restarts = tr_portal_restarts (p), pid = tr_portal_pid (p);
    s_old (&t->f, pid);
    kill (pid, sig);
    bool ok = s_restarted (ctx, t, p, restarts, pid,
                           sig == SIGSTOP? S_HB_TIMEOUT_MS + 2000: 2000);
    if (!ok) {
        s_note (t->f.undetected, sizeof t->f.undetected, "%s of pid %d", strsignal (sig), pid);
        kill (pid, SIGCONT);
    }
    return ok;
}

static bool
s_fault_pause (tr_ctx_t *ctx, tree_t *t, tr_portal_t *p)
{
    int restarts = tr_portal_restarts (p), pid = tr_portal_pid (p);
    kill (pid, SIGSTOP);
    tr_sleep (ctx, 150);
    kill (pid, SIGCONT);
    int now = 0;
    int rc = s_pid_of (p, &now);
    bool ok = rc == 0 && now == pid && tr_portal_restarts (p) == restarts;
    if (!ok)
        s_note (t->f.undetected, sizeof t->f.undetected,
                "pid %d paused 150 ms: %s, now pid %d", pid, tr_errname (rc), now);
    return ok;
}

static int
s_long_call (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    return tu_call (arg, "sleep", tr_pack ("[i]", 30000), NULL);
}

//  A portal on the worker's endpoint, closed while a call through it is
//  served there.
static bool
s_fault_close (tr_ctx_t *ctx, tree_t *t, tr_portal_t *p)
{
    tr_portal_t *q = NULL;
    int cancels = 0, sleeping = 0;
    if (tr_portal_open (t->self, tr_portal_endpoint (p), tu_ms (2000), &q)
    ||  tu_cancels (p, &cancels, &sleeping)) {
        tr_portal_close (&q);
        s_note (t->f.undetected, sizeof t->f.undetected, "no portal on %s", tr_portal_uid (p));
        return false;
    }
    tr_task_t *task = NULL;
    tr_task_spawn (t->self, s_long_call, q, &task);
    bool ok = tu_wait_sleeping (ctx, p, sleeping + 1, 2000);
    long long start = tu_now_ms ();
    tr_portal_close (&q);
    int result = 0;
    ok = tr_task_join_shielded (&task, tu_ms (1000), &result) == 0 && ok;
    long long took = tu_now_ms () - start;
    ok = ok && took <= tu_ms (500);
    //  The worker cancels the call of a peer that left.
    long long deadline = tu_now_ms () + tu_ms (S_HB_TIMEOUT_MS + 1000);
    int now_cancels = cancels;
    while (ok && (tu_cancels (p, &now_cancels, &sleeping) || now_cancels <= cancels)) {
        if (tu_now_ms () >= deadline || tr_sleep (ctx, 5)) {
            ok = false;
            break;
        }
    }
    if (task) {
        tr_task_cancel (task);
        tr_task_join (&task, NULL);
    }
    if (!ok || result != TR_ECLOSED)
        s_note (t->f.undetected, sizeof t->f.undetected,
                "portal closed under a call: call %s after %lld ms, cancels %d -> %d",
                tr_errname (result), took, cancels, now_cancels);
    return ok && result == TR_ECLOSED;
}

//  Whether the broker lists every worker's current uid.
static bool
s_all_listed (tr_actor_t *self, tree_t *t)
{
    tr_value_t *entries = NULL;
    if (tr_registry_list (self, NULL, &entries))
        return false;
    const msgpack_object *o = tr_value_object (entries);
    int found = 0;
    for (int w = 0; w < S_WORKERS; w++)
        for (uint32_t i = 0; o->type == MSGPACK_OBJECT_ARRAY && i < o->via.array.size; i++) {
            const char *uid = NULL;
            tr_unpack (&o->via.array.ptr [i], "{s:s}", "uid", &uid);
            if (uid && streq (uid, tr_portal_uid (t->w [w]))) {
                found++;
                break;
            }
        }
    tr_value_destroy (&entries);
    return found == S_WORKERS;
}

static void
s_broker_start (tu_proc_t *b, const char *endpoint, char *ep, size_t size)
{
    const char *args [] = { "--endpoint", endpoint, "--lease-ms", S_LEASE_MS, NULL };
    tu_proc_spawn (b, tu_broker_path (), args);
    ck_assert (tu_proc_pump (b, tu_now_ms () + tu_ms (5000), tu_proc_has_line, NULL));
    const char *at = strstr (b->out_text, "serving at ");
    ck_assert_msg (at, "broker said '%s'", b->out_text);
    if (ep) {
        snprintf (ep, size, "%s", at + strlen ("serving at "));
        ep [strcspn (ep, "\n")] = 0;
    }
}

static bool
s_fault_broker (tr_ctx_t *ctx, tree_t *t)
{
    kill (t->broker.pid, SIGKILL);
    tu_proc_wait (&t->broker, 5000);
    s_broker_start (&t->broker, t->broker_ep, NULL, 0);
    //  Back within two renewals, and the retry that found it gone.
    long long deadline = tu_now_ms () + tu_ms (3000);
    while (!s_all_listed (t->self, t)) {
        if (tu_now_ms () >= deadline || tr_sleep (ctx, 20)) {
            s_note (t->f.undetected, sizeof t->f.undetected,
                    "workers not listed again by the restarted broker");
            return false;
        }
    }
    return true;
}

static int
s_tree_root (tr_actor_t *self, void *arg)
{
    tree_t *t = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    t->self = self;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_supervise_t how = { TR_ONE_FOR_ONE, 1000, 1000 };
    int rc = tr_nursery_supervise (n, &how);
    if (rc == 0)
        rc = tr_nursery_start_actors (n, "w", S_WORKERS, NULL, t->w);
    if (rc) {
        tr_nursery_close (&n, NULL);
        return 2;
    }
    for (int w = 0; w < S_WORKERS; w++)
        s_hold (t, t->w [w]);
    tr_task_t *monitor = NULL, *callers [S_CALLERS];
    caller_t args [S_CALLERS];
    tr_task_spawn (self, s_monitor, &t->f, &monitor);
    for (int c = 0; c < S_CALLERS; c++) {
        args [c] = (caller_t) { t, c };
        tr_task_spawn (self, s_caller, &args [c], &callers [c]);
    }
    unsigned seed = t->seed;
    for (int i = 0; i < t->rounds; i++) {
        tr_portal_t *p = t->w [rand_r (&seed) % S_WORKERS];
        bool ok;
        t->f.injected++;
        switch (i % 5) {
            case 0: ok = s_fault_kill (ctx, t, p, SIGKILL); break;
            case 1: ok = s_fault_kill (ctx, t, p, SIGSTOP); break;
            case 2: ok = s_fault_pause (ctx, t, p); break;
            case 3: ok = s_fault_close (ctx, t, p); break;
            default: ok = s_fault_broker (ctx, t); break;
        }
        if (ok)
            t->f.detected++;
        //  The load runs a moment between faults.
        if (tr_sleep (ctx, 20))
            break;
    }
    t->f.stop = true;
    for (int c = 0; c < S_CALLERS; c++)
        tr_task_join (&callers [c], NULL);
    //  Every survivor serves.
    for (int w = 0; w < S_WORKERS; w++) {
        int pid;
        t->f.survivors_rc = s_pid_of (t->w [w], &pid);
        if (t->f.survivors_rc)
            break;
    }
    tr_task_join (&monitor, NULL);
    rc = tr_nursery_close (&n, NULL);
    s_monitor_finish (ctx, &t->f);
    return rc? 3: 0;
}

static void
s_env (void)
{
    char ivl [16], timeout [16];
    snprintf (ivl, sizeof ivl, "%d", S_HB_IVL_MS);
    snprintf (timeout, sizeof timeout, "%d", S_HB_TIMEOUT_MS);
    setenv ("TU_HEARTBEAT_IVL_MS", ivl, 1);
    setenv ("TU_HEARTBEAT_TIMEOUT_MS", timeout, 1);
}

static tr_config_t
s_config (void)
{
    tr_config_t config = tu_config ();
    config.size = sizeof config;
    config.heartbeat_ivl_ms = S_HB_IVL_MS;
    config.heartbeat_timeout_ms = S_HB_TIMEOUT_MS;
    config.grace_ms = 300;
    config.term_ms = 300;
    config.drain_ms = 200;
    config.registry_lease_ms = atoi (S_LEASE_MS);
    return config;
}

START_TEST (test_a_supervised_tree_under_load_survives_kills_stops_closed_connections_and_a_restarted_broker)
{
    tu_subreaper ();
    s_env ();
    static tree_t t;
    memset (&t, 0, sizeof t);
    t.seed = (unsigned) getpid ();
    t.rounds = 40;
    s_broker_start (&t.broker, "tcp://127.0.0.1:*", t.broker_ep, sizeof t.broker_ep);
    tr_config_t config = s_config ();
    config.registry = t.broker_ep;
    int rc = tr_run (&config, 0, NULL, s_tree_root, &t);
    kill (t.broker.pid, SIGTERM);
    tu_proc_wait (&t.broker, 5000);
    s_print ("supervised tree", &t.f);
    ck_assert_int_eq (rc, 0);
    s_assert_clean (&t.f);
    //  Every worker killed left a grandchild behind.
    ck_assert_int_gt (t.f.adopted, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Daemons on a host of their own: traffic dropped, the link set down
//
//  Two network namespaces joined by a veth pair: "r" (the test process
//  joins it and runs the root there) and "w" (two tests/worker daemons
//  bound to tcp on its address). Named trf-RUNNER-TEST-{r,w}; the test
//  removes them at its end, the test case's unchecked teardown removes
//  those of its run whatever became of the test, and the suite removes
//  at its start those of runs whose process is gone.

#define S_DAEMONS           2
#define S_NET_CALLERS       2       //  per daemon
#define S_OPEN_MS           1000

static pid_t s_runner;              //  the suite's process: names the namespaces
static const char *s_nft_path;

//  Kill what runs in the namespace called name, and remove it.
static void
s_ns_remove (const char *name)
{
    char path [300];
    snprintf (path, sizeof path, "/run/netns/%s", name);
    struct stat ns;
    DIR *dir = stat (path, &ns) == 0? opendir ("/proc"): NULL;
    struct dirent *e;
    while (dir && (e = readdir (dir)) != NULL) {
        pid_t pid = (pid_t) atoi (e->d_name);
        char net [64];
        struct stat st;
        snprintf (net, sizeof net, "/proc/%d/ns/net", (int) pid);
        if (pid > 0 && pid != getpid () && stat (net, &st) == 0
        &&  st.st_dev == ns.st_dev && st.st_ino == ns.st_ino)
            kill (pid, SIGKILL);
    }
    if (dir)
        closedir (dir);
    tu_ip (NULL, "netns", "del", name, NULL);
}

//  Remove this run's namespaces (unless stale_only) and those of runs
//  whose process is gone.
static void
s_ns_sweep (bool stale_only)
{
    DIR *dir = opendir ("/run/netns");
    if (!dir)
        return;
    char names [32][256];
    int count = 0;
    struct dirent *e;
    while ((e = readdir (dir)) != NULL && count < 32) {
        int owner;
        if (sscanf (e->d_name, "trf-%d-", &owner) != 1 || owner <= 0)
            continue;
        bool ours = owner == (int) s_runner;
        bool stale = !ours && kill ((pid_t) owner, 0) && errno == ESRCH;
        if ((ours && !stale_only) || stale)
            snprintf (names [count++], sizeof names [0], "%s", e->d_name);
    }
    closedir (dir);
    for (int i = 0; i < count; i++)
        s_ns_remove (names [i]);
}

static void
s_ns_teardown (void)
{
    s_ns_sweep (false);
    long long deadline = tu_now_ms () + 2000;
    while (tu_now_ms () < deadline) {
        pid_t pid = waitpid (-1, NULL, WNOHANG);
        if (pid < 0)
            break;
        if (pid == 0) {
            struct timespec ts = { 0, 5 * 1000 * 1000 };
            nanosleep (&ts, NULL);
        }
    }
}

//  Why the netns scenario cannot run here, or NULL.
static const char *
s_cannot (void)
{
    if (geteuid () != 0)
        return "not root";
    const char *paths [] = { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip" };
    for (size_t i = 0; i < sizeof paths / sizeof paths [0] && !tu_ip_path; i++)
        if (access (paths [i], X_OK) == 0)
            tu_ip_path = paths [i];
    if (!tu_ip_path)
        return "no ip(8)";
    const char *nft [] = { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft" };
    for (size_t i = 0; i < sizeof nft / sizeof nft [0] && !s_nft_path; i++)
        if (access (nft [i], X_OK) == 0)
            s_nft_path = nft [i];
    char name [64];
    snprintf (name, sizeof name, "trf-%d-probe", (int) s_runner);
    const char *why = NULL;
    if (!tu_ip (NULL, "netns", "add", name, NULL))
        why = "ip netns add failed";
    else
    if (!tu_ip (NULL, "-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1", NULL))
        why = "cannot make a veth pair in a network namespace";
    s_ns_remove (name);
    return why;
}

typedef struct {
    faults_t f;
    char ns_r [96], ns_w [96];
    int fd_r, fd_w;
    char addr_w [32];
    tu_proc_t daemon [S_DAEMONS];
    char endpoint [S_DAEMONS][256];
    tr_actor_t *self;
    long long fault_at, lifted_at;  //  0: none now
    //  Per caller: its last failure and success (tu_now_ms).
    long long failed_at [S_DAEMONS * S_NET_CALLERS];
    long long served_at [S_DAEMONS * S_NET_CALLERS];
} net_t;

typedef struct {
    net_t *net;
    int id;
} net_caller_t;

static int
s_net_caller (tr_ctx_t *ctx, void *arg)
{
    net_caller_t *c = arg;
    net_t *net = c->net;
    const char *endpoint = net->endpoint [c->id / S_NET_CALLERS];
    tr_portal_t *p = NULL;
    for (int i = 0; !net->f.stop && !tr_ctx_cancelled (ctx); i++) {
        long long start = tu_now_ms ();
        int rc = 0;
        if (!p) {
            rc = tr_portal_open (net->self, endpoint, tu_ms (S_OPEN_MS), &p);
            s_account (&net->f, "portal open", rc, rc? tr_ctx_error (ctx): NULL,
                       tu_now_ms () - start, S_OPEN_MS + 1000);
        }
        if (rc == 0) {
            start = tu_now_ms ();
            tr_value_t *v = NULL;
            rc = tu_call (p, "echo", tr_pack ("[i]", i), &v);
            tr_value_destroy (&v);
            s_account (&net->f, "call across hosts", rc, tr_portal_error (p),
                       tu_now_ms () - start, S_HB_TIMEOUT_MS + 1000);
        }
        if (rc) {
            net->failed_at [c->id] = tu_now_ms ();
            tr_portal_close (&p);
        }
        else
            net->served_at [c->id] = tu_now_ms ();
        if (i % 8 == 7 && tr_sleep (ctx, 1))
            break;
    }
    tr_portal_close (&p);
    return 0;
}

//  Break (or mend) the link between the hosts: an nftables table that
//  drops everything in w, or w's end of the link set down.
static bool
s_net_fault (tr_ctx_t *ctx, net_t *net, bool drop, bool on)
{
    if (drop && on)
        return tu_ip (ctx, "netns", "exec", net->ns_w, s_nft_path, "add table inet trf ; "
                     "add chain inet trf in { type filter hook input priority 0 ; policy drop ; } ; "
                     "add chain inet trf out { type filter hook output priority 0 ; policy drop ; }",
                     NULL);
    if (drop)
        return tu_ip (ctx, "netns", "exec", net->ns_w, s_nft_path, "delete", "table", "inet", "trf",
                     NULL);
    return tu_ip (ctx, "-n", net->ns_w, "link", "set", "eth0", on? "down": "up", NULL);
}

//  Whether every caller has, since at: failed (served false) or been
//  served (served true).
static bool
s_all_callers (net_t *net, long long at, bool served)
{
    for (int c = 0; c < S_DAEMONS * S_NET_CALLERS; c++)
        if ((served? net->served_at [c]: net->failed_at [c]) < at)
            return false;
    return true;
}

static bool
s_wait_callers (tr_ctx_t *ctx, net_t *net, long long at, bool served, int bound_ms)
{
    long long deadline = at + tu_ms (bound_ms);
    while (!s_all_callers (net, at, served))
        if (tu_now_ms () >= deadline || tr_sleep (ctx, 5))
            return false;
    return true;
}

static int
s_net_root (tr_actor_t *self, void *arg)
{
    net_t *net = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    net->self = self;
    tr_task_t *callers [S_DAEMONS * S_NET_CALLERS];
    net_caller_t args [S_DAEMONS * S_NET_CALLERS];
    for (int c = 0; c < S_DAEMONS * S_NET_CALLERS; c++) {
        args [c] = (net_caller_t) { net, c };
        tr_task_spawn (self, s_net_caller, &args [c], &callers [c]);
    }
    //  Every caller served once before the first fault.
    long long start = tu_now_ms ();
    bool ready = s_wait_callers (ctx, net, start, true, 5000);
    for (int i = 0; ready && i < 6; i++) {
        bool drop = s_nft_path && i % 2 == 0;
        net->f.injected++;
        long long at = tu_now_ms ();
        bool ok = s_net_fault (ctx, net, drop, true);
        //  The calls in flight fail within the heartbeat timeout.
        ok = ok && s_wait_callers (ctx, net, at, false, S_HB_TIMEOUT_MS + 1500);
        bool lifted = s_net_fault (ctx, net, drop, false);
        long long back = tu_now_ms ();
        //  Once mended, the daemons serve new portals.
        ok = ok && lifted && s_wait_callers (ctx, net, back, true, S_OPEN_MS + 3000);
        if (ok)
            net->f.detected++;
        else
            s_note (net->f.undetected, sizeof net->f.undetected, "%s (round %d)",
                    drop? "nftables drop": "link down", i);
    }
    net->f.stop = true;
    for (int c = 0; c < S_DAEMONS * S_NET_CALLERS; c++)
        tr_task_join (&callers [c], NULL);
    //  The survivors serve.
    for (int d = 0; d < S_DAEMONS; d++) {
        tr_portal_t *p = NULL;
        net->f.survivors_rc = tr_portal_open (self, net->endpoint [d], tu_ms (2000), &p);
        if (net->f.survivors_rc == 0)
            net->f.survivors_rc = tr_portal_run (p, "nil", NULL, NULL);
        tr_portal_close (&p);
        if (net->f.survivors_rc)
            break;
    }
    return ready? 0: 4;
}

START_TEST (test_daemons_on_another_host_under_load_survive_dropped_traffic_and_a_link_set_down)
{
    const char *why = s_cannot ();
    if (why) {
        printf ("test_faults: netns scenario skipped: %s\n", why);
        fflush (stdout);
        return;
    }
    if (!s_nft_path)
        printf ("test_faults: no nft(8): links set down only\n");
    tu_subreaper ();
    s_env ();
    static net_t net;
    memset (&net, 0, sizeof net);
    int subnet = 20 + (int) (getpid () % 200);
    snprintf (net.ns_r, sizeof net.ns_r, "trf-%d-%d-r", (int) s_runner, (int) getpid ());
    snprintf (net.ns_w, sizeof net.ns_w, "trf-%d-%d-w", (int) s_runner, (int) getpid ());
    snprintf (net.addr_w, sizeof net.addr_w, "10.214.%d.2", subnet);
    char cidr_r [40], cidr_w [40], path [160];
    snprintf (cidr_r, sizeof cidr_r, "10.214.%d.1/24", subnet);
    snprintf (cidr_w, sizeof cidr_w, "%s/24", net.addr_w);
    ck_assert (tu_ip (NULL, "netns", "add", net.ns_r, NULL));
    ck_assert (tu_ip (NULL, "netns", "add", net.ns_w, NULL));
    ck_assert (tu_ip (NULL, "-n", net.ns_r, "link", "add", "eth0", "type", "veth",
                     "peer", "name", "eth0", "netns", net.ns_w, NULL));
    ck_assert (tu_ip (NULL, "-n", net.ns_r, "addr", "add", cidr_r, "dev", "eth0", NULL));
    ck_assert (tu_ip (NULL, "-n", net.ns_w, "addr", "add", cidr_w, "dev", "eth0", NULL));
    const char *sides [] = { net.ns_r, net.ns_w };
    for (int i = 0; i < 2; i++) {
        ck_assert (tu_ip (NULL, "-n", sides [i], "link", "set", "lo", "up", NULL));
        ck_assert (tu_ip (NULL, "-n", sides [i], "link", "set", "eth0", "up", NULL));
    }
    snprintf (path, sizeof path, "/run/netns/%s", net.ns_r);
    net.fd_r = open (path, O_RDONLY | O_CLOEXEC);
    snprintf (path, sizeof path, "/run/netns/%s", net.ns_w);
    net.fd_w = open (path, O_RDONLY | O_CLOEXEC);
    ck_assert (net.fd_r >= 0 && net.fd_w >= 0);
    //  The daemons start in w; then the test process moves to r for good.
    ck_assert_int_eq (setns (net.fd_w, CLONE_NEWNET), 0);
    for (int d = 0; d < S_DAEMONS; d++) {
        char name [16], bind [64];
        snprintf (name, sizeof name, "d%d", d);
        snprintf (bind, sizeof bind, "tcp://%s:%d", net.addr_w, 5600 + d);
        const char *args [] = { "--tr-daemon", "--tr-name", name, "--tr-bind", bind,
                                "--tr-insecure", "--tr-registry", "none", NULL };
        tu_proc_spawn_io (&net.daemon [d], tu_worker_path (), args, false);
    }
    ck_assert_int_eq (setns (net.fd_r, CLONE_NEWNET), 0);
    for (int d = 0; d < S_DAEMONS; d++) {
        tu_proc_t *p = &net.daemon [d];
        ck_assert (tu_proc_pump (p, tu_now_ms () + tu_ms (5000), tu_proc_has_line, NULL));
        char uid [256];
        ck_assert_msg (sscanf (p->out_text, "%255s %255s", uid, net.endpoint [d]) == 2,
                       "daemon said '%s'", p->out_text);
    }
    tr_config_t config = s_config ();
    config.registry = "none";
    int rc = tr_run (&config, 0, NULL, s_net_root, &net);
    for (int d = 0; d < S_DAEMONS; d++)
        tu_proc_stop (&net.daemon [d], 143);
    s_print ("daemons across hosts", &net.f);
    close (net.fd_r);
    close (net.fd_w);
    s_ns_remove (net.ns_r);
    s_ns_remove (net.ns_w);
    ck_assert_int_eq (rc, 0);
    s_assert_clean (&net.f);
    tu_assert_no_procs_left (2000);
}
END_TEST

int
main (void)
{
    s_runner = getpid ();
    s_ns_sweep (true);
    Suite *suite = suite_create ("faults");
    TCase *tc = tu_tcase (suite, "supervised tree", 60);
    tcase_add_test (tc, test_a_supervised_tree_under_load_survives_kills_stops_closed_connections_and_a_restarted_broker);
    tc = tu_tcase (suite, "daemons across hosts", 40);
    tcase_add_unchecked_fixture (tc, NULL, s_ns_teardown);
    tcase_add_test (tc, test_daemons_on_another_host_under_load_survive_dropped_traffic_and_a_link_set_down);
    return tu_run_suite (suite, CK_FORK);
}
