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
            " (%s: %ld calls, %ld ok, %ld clear errors, %ld unclear)\n",
            f->injected, f->detected, f->hangs, f->orphans, f->zombies, scenario,
            f->calls, f->ok, f->clear_errors, f->unclear);
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
            if (!f->seen [g])
                f->seen [g] = now;
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
    tu_assert_no_procs_left (2000);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("faults");
    TCase *tc = tu_tcase (suite, "supervised tree", 60);
    tcase_add_test (tc, test_a_supervised_tree_under_load_survives_kills_stops_closed_connections_and_a_restarted_broker);
    return tu_run_suite (suite, CK_FORK);
}
