/*  =========================================================================
    test_registry.c - scenario: finding actors by name

    The forked test process is a root; with no registry address it serves
    the embedded registry, and the tests/worker children it starts
    register there. Daemons (tests/worker --tr-daemon) register with the
    root or with troupe-broker processes given by --tr-registry. A raw
    libzmq peer, run on a worker thread while the root's loop serves,
    sends the registry bad requests and floods it.
    =========================================================================
*/
#include "testutil.h"
#include "testproc.h"
#include <zmq.h>

#define T_HELLO     1
#define T_CMD       2
#define T_RETURN    6
#define T_ERROR     7

//  --------------------------------------------------------------------------
//  Processes the scenarios start by hand: daemons and brokers

//  Start path with args, its stdout on a pipe (its stderr is ours, so
//  what it logs shows in the suite's log), and read its first line (5 s
//  at most).
static void
s_proc_start (tu_proc_t *p, const char *path, const char *const *args)
{
    tu_proc_spawn_io (p, path, args, false);
    tu_proc_pump (p, tu_now_ms () + tu_ms (5000), tu_proc_has_line, NULL);
    ck_assert_msg (strchr (p->out_text, '\n'), "%s printed no line", path);
}

//  A tests/worker daemon named name registering with registry.
static void
s_daemon_start (tu_proc_t *p, const char *name, const char *registry)
{
    const char *args [] = { "--tr-daemon", "--tr-name", name, "--tr-registry", registry, NULL };
    s_proc_start (p, tu_worker_path (), args);
}

//  A troupe-broker at endpoint (a free loopback port if "tcp://127.0.0.1:*");
//  its endpoint into ep.
static void
s_broker_start (tu_proc_t *p, const char *endpoint, const char *lease_ms, char *ep, size_t size)
{
    const char *args [] = { "--endpoint", endpoint, "--lease-ms", lease_ms, NULL };
    s_proc_start (p, tu_broker_path (), args);
    const char *at = strstr (p->out_text, "serving at ");
    ck_assert_msg (at, "broker said '%s'", p->out_text);
    snprintf (ep, size, "%s", at + strlen ("serving at "));
    ep [strcspn (ep, "\n")] = 0;
}

//  Signal p (sig 0: none) and wait for it to exit; its wait status, or
//  -1 if it did not within timeout_ms (scaled): then it is killed.
static int
s_proc_stop (tu_proc_t *p, int sig, int timeout_ms)
{
    if (sig)
        kill (p->pid, sig);
    return tu_proc_wait (p, timeout_ms)? p->status: -1;
}

//  --------------------------------------------------------------------------
//  Reading the registry from a root

//  How many live registrations under name the root's registries list
//  (-1 if the listing failed); the uid of the first into uid.
static int
s_count (tr_actor_t *self, const char *name, char *uid, size_t size)
{
    tr_value_t *entries = NULL;
    if (tr_registry_list (self, name, &entries))
        return -1;
    const msgpack_object *o = tr_value_object (entries);
    int n = (int) o->via.array.size;
    const char *u;
    if (uid && n > 0 && tr_unpack (&o->via.array.ptr [0], "{s:s}", "uid", &u) == 0)
        snprintf (uid, size, "%s", u);
    tr_value_destroy (&entries);
    return n;
}

//  Ask again, every 10 ms, until name has want registrations or the
//  deadline; the time it took, or -1.
static long long
s_await_count (tr_actor_t *self, const char *name, int want, int timeout_ms)
{
    long long start = tu_now_ms (), deadline = start + tu_ms (timeout_ms);
    while (s_count (self, name, NULL, 0) != want) {
        if (tu_now_ms () >= deadline || tr_sleep (tr_actor_ctx (self), 10))
            return -1;
    }
    return tu_now_ms () - start;
}

static tr_config_t
s_config (void)
{
    tr_config_t config = tu_config ();
    config.size = sizeof config;
    return config;
}

//  --------------------------------------------------------------------------
//  The embedded registry: the root and its children

typedef struct {
    char address [256], endpoint [256], root_uid [256];
    int self_count;
    int children, child_entries;
    bool fields_match;
    char mismatch [512];
    int find_rc, find2_rc;
    char found1 [256], found2 [256];
    int echo_rc;
    char echoed [64];
    long long cancelled_gone_ms, killed_gone_ms;
} s_embedded_t;

static int
s_embedded_root (tr_actor_t *self, void *arg)
{
    s_embedded_t *obs = arg;
    snprintf (obs->address, sizeof obs->address, "%s", tr_registry_address (self)? tr_registry_address (self): "");
    snprintf (obs->endpoint, sizeof obs->endpoint, "%s", tr_actor_endpoint (self));
    snprintf (obs->root_uid, sizeof obs->root_uid, "%s", tr_actor_uid (self));
    obs->self_count = s_count (self, "root", NULL, 0);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *kids [3];
    if (tr_nursery_start_actors (n, "regw", 3, NULL, kids) == 0) {
        obs->children = 3;
        //  Each registers as regw-i through its parent channel.
        obs->fields_match = true;
        for (int i = 0; i < 3; i++) {
            char name [32];
            snprintf (name, sizeof name, "regw-%d", i);
            if (s_await_count (self, name, 1, 5000) < 0) {
                snprintf (obs->mismatch, sizeof obs->mismatch, "%s never registered", name);
                obs->fields_match = false;
                break;
            }
            tr_value_t *entries = NULL;
            tr_registry_list (self, name, &entries);
            const char *uid, *endpoint, *host, *parent;
            int pid;
            int64_t expires;
            char hostname [256] = "";
            gethostname (hostname, sizeof hostname - 1);
            if (tr_unpack (&tr_value_object (entries)->via.array.ptr [0],
                           "{s:s s:s s:i s:s s:s s:I}", "uid", &uid, "endpoint", &endpoint,
                           "pid", &pid, "host", &host, "parent", &parent, "expires_ms", &expires)
            ||  strcmp (uid, tr_portal_uid (kids [i])) || strcmp (endpoint, tr_portal_endpoint (kids [i]))
            ||  pid != tr_portal_pid (kids [i]) || strcmp (host, hostname)
            ||  strcmp (parent, tr_actor_uid (self)) || expires <= 0 || expires > 10000) {
                snprintf (obs->mismatch, sizeof obs->mismatch, "%s: uid %s endpoint %s pid %d host %s "
                          "parent %s expires %lld", name, uid, endpoint, pid, host, parent,
                          (long long) expires);
                obs->fields_match = false;
            }
            tr_value_destroy (&entries);
        }
        obs->child_entries = s_count (self, NULL, NULL, 0);
        //  A find gives a portal that works like any other.
        tr_portal_t *p1 = NULL, *p2 = NULL;
        tr_value_t *out = NULL;
        if ((obs->find_rc = tr_find_actor (self, "regw-1", &p1)) == 0) {
            snprintf (obs->found1, sizeof obs->found1, "%s", tr_portal_uid (p1));
            const char *s;
            if ((obs->echo_rc = tu_call (p1, "echo", tr_pack ("[s]", "through a find"), &out)) == 0
            &&  tr_unpack (tr_value_object (out), "[s]", &s) == 0)
                snprintf (obs->echoed, sizeof obs->echoed, "%s", s);
            tr_value_destroy (&out);
            tr_portal_close (&p1);
        }
        if ((obs->find2_rc = tr_find_actor (self, "regw-1", &p2)) == 0) {
            snprintf (obs->found2, sizeof obs->found2, "%s", tr_portal_uid (p2));
            tr_portal_close (&p2);
        }
        //  A child cancelled, and one killed: both dropped at once, long
        //  before their leases (10 s) run out.
        tr_portal_cancel_actor (kids [0], 2000);
        obs->cancelled_gone_ms = s_await_count (self, "regw-0", 0, 2000);
        kill (tr_portal_pid (kids [2]), SIGKILL);
        obs->killed_gone_ms = s_await_count (self, "regw-2", 0, 2000);
    }
    tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (a_root_serves_the_registry_and_its_children_register_there)
{
    tu_subreaper ();
    s_embedded_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = s_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_embedded_root, &obs), 0);
    ck_assert_str_eq (obs.address, obs.endpoint);
    ck_assert_int_eq (obs.self_count, 1);
    ck_assert_int_eq (obs.children, 3);
    ck_assert_msg (obs.fields_match, "%s", obs.mismatch);
    ck_assert_int_eq (obs.child_entries, 4);
    ck_assert_tr_ok (obs.find_rc);
    ck_assert_tr_ok (obs.echo_rc);
    ck_assert_str_eq (obs.echoed, "through a find");
    ck_assert_tr_ok (obs.find2_rc);
    ck_assert_str_eq (obs.found1, obs.found2);
    ck_assert_msg (obs.cancelled_gone_ms >= 0, "a cancelled child stayed registered");
    ck_assert_msg (obs.killed_gone_ms >= 0, "a killed child stayed registered");
    //  The root's variable is not left behind for the next root.
    ck_assert_ptr_null (getenv ("TROUPE_REGISTRY"));
    tu_assert_no_procs_left (2000);
}
END_TEST

typedef struct {
    int hold_rc, held_pid;
    char kid_uid [256];
    long long found_ms;
    int pid;
    char parent [256];
    int call_rc;
} s_grand_t;

static int
s_grand_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_grand_t *obs = arg;
    tr_actor_t *self = tr_ctx_actor (ctx);
    snprintf (obs->kid_uid, sizeof obs->kid_uid, "%s", tr_portal_uid (p));
    tr_value_t *out = NULL;
    if ((obs->hold_rc = tr_portal_run (p, "hold_grandchild", NULL, &out)) == 0)
        tr_unpack (tr_value_object (out), "i", &obs->held_pid);
    tr_value_destroy (&out);
    //  The grandchild registers with the root's registry too, naming the
    //  child as its parent.
    obs->found_ms = s_await_count (self, "held", 1, 5000);
    tr_value_t *entries = NULL;
    const char *parent;
    if (tr_registry_list (self, "held", &entries) == 0
    &&  tr_value_object (entries)->via.array.size == 1
    &&  tr_unpack (&tr_value_object (entries)->via.array.ptr [0], "{s:i s:s}",
                   "pid", &obs->pid, "parent", &parent) == 0)
        snprintf (obs->parent, sizeof obs->parent, "%s", parent);
    tr_value_destroy (&entries);
    tr_portal_t *g;
    if (tr_find_actor (self, "held", &g) == 0) {
        obs->call_rc = tr_portal_run (g, "nil", NULL, NULL);
        tr_portal_close (&g);
    }
    return 0;
}

START_TEST (grandchildren_register_with_the_root_naming_their_parent)
{
    tu_subreaper ();
    s_grand_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_grand_body, .obs = &obs };
    tr_config_t config = s_config ();
    tu_run_frame (&frame, &config);
    ck_assert_tr_ok (obs.hold_rc);
    ck_assert_msg (obs.found_ms >= 0, "the grandchild never registered");
    ck_assert_int_eq (obs.pid, obs.held_pid);
    ck_assert_str_eq (obs.parent, obs.kid_uid);
    ck_assert_tr_ok (obs.call_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Finding, waiting, names

typedef struct {
    int unknown_rc;
    char unknown_why [256];
    int timeout_rc;
    long long timeout_ms;
    int late_rc;
    long long late_ms;
    char late_uid [256];
    int alias_rc, alias_count, alias_after, unalias_rc, unalias_again_rc;
    char alias_uid [256], self_uid [256];
    int bad_find_rc, bad_wait_rc, bad_alias_rc, bad_list_rc;
    int rotate_rc;
    char rot [4][256];
} s_find_t;

typedef struct {
    tr_actor_t *self;
    tr_portal_t *portal;
    int rc;
    long long at;
} s_waiter_t;

static int
s_waiter (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_waiter_t *w = arg;
    w->rc = tr_wait_for_actor (w->self, "late", tu_ms (5000), &w->portal);
    w->at = tu_now_ms ();
    return 0;
}

static int
s_find_root (tr_actor_t *self, void *arg)
{
    s_find_t *obs = arg;
    snprintf (obs->self_uid, sizeof obs->self_uid, "%s", tr_actor_uid (self));
    tr_portal_t *p = NULL;
    obs->unknown_rc = tr_find_actor (self, "nobody", &p);
    const tr_error_t *why = tr_ctx_error (tr_actor_ctx (self));
    if (why)
        snprintf (obs->unknown_why, sizeof obs->unknown_why, "%s", tr_error_message (why));
    long long start = tu_now_ms ();
    obs->timeout_rc = tr_wait_for_actor (self, "nobody", 300, &p);
    obs->timeout_ms = tu_now_ms () - start;
    obs->bad_find_rc = tr_find_actor (self, "no spaces", &p);
    obs->bad_wait_rc = tr_wait_for_actor (self, "x", -2, &p);
    obs->bad_alias_rc = tr_register_name (self, "a/b");
    tr_value_t *v = NULL;
    obs->bad_list_rc = tr_registry_list (self, "", &v);

    //  A waiter parks; the name registers afterwards; the waiter wakes.
    s_waiter_t w = { .self = self };
    tr_task_t *task;
    tr_task_spawn (self, s_waiter, &w, &task);
    tr_sleep (tr_actor_ctx (self), 50);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *late;
    start = tu_now_ms ();
    if (tr_nursery_start_actor (n, "late", NULL, &late) == 0) {
        tr_task_join (&task, NULL);
        obs->late_rc = w.rc;
        obs->late_ms = w.at - start;
        if (w.portal) {
            snprintf (obs->late_uid, sizeof obs->late_uid, "%s", tr_portal_uid (w.portal));
            tr_portal_close (&w.portal);
        }
    }
    //  Names of our own, and several actors under one name: finds take
    //  each in turn.
    obs->alias_rc = tr_register_name (self, "alias-1");
    obs->alias_count = s_count (self, "alias-1", obs->alias_uid, sizeof obs->alias_uid);
    obs->unalias_rc = tr_unregister_name (self, "alias-1");
    obs->alias_after = s_count (self, "alias-1", NULL, 0);
    obs->unalias_again_rc = tr_unregister_name (self, "alias-1");
    tr_portal_t *two [2];
    if (tr_nursery_start_actors (n, "pair", 2, NULL, two) == 0) {
        s_await_count (self, "pair-0", 1, 5000);
        s_await_count (self, "pair-1", 1, 5000);
        obs->rotate_rc = 0;
        for (int i = 0; i < 2 && obs->rotate_rc == 0; i++) {
            tr_portal_t *f;
            obs->rotate_rc = tr_find_actor (self, i? "pair-1": "pair-0", &f);
            if (obs->rotate_rc == 0) {
                snprintf (obs->rot [i], sizeof obs->rot [i], "%s", tr_portal_uid (f));
                tr_portal_close (&f);
            }
        }
    }
    tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (finds_and_waits_say_what_happened)
{
    tu_subreaper ();
    s_find_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = s_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_find_root, &obs), 0);
    ck_assert_tr_rc (obs.unknown_rc, TR_ENOTFOUND);
    ck_assert_msg (strstr (obs.unknown_why, "nobody"), "error: %s", obs.unknown_why);
    ck_assert_tr_rc (obs.timeout_rc, TR_ETIMEDOUT);
    ck_assert_msg (obs.timeout_ms >= 290 && obs.timeout_ms < tu_ms (1500), "timed out after %lld ms",
                   obs.timeout_ms);
    ck_assert_tr_rc (obs.bad_find_rc, TR_EINVAL);
    ck_assert_tr_rc (obs.bad_wait_rc, TR_EINVAL);
    ck_assert_tr_rc (obs.bad_alias_rc, TR_EINVAL);
    ck_assert_tr_rc (obs.bad_list_rc, TR_EINVAL);
    ck_assert_tr_ok (obs.late_rc);
    ck_assert_msg (strncmp (obs.late_uid, "late@", 5) == 0, "found %s", obs.late_uid);
    ck_assert_msg (obs.late_ms < tu_ms (3000), "the waiter woke %lld ms after the start", obs.late_ms);
    ck_assert_tr_ok (obs.alias_rc);
    ck_assert_int_eq (obs.alias_count, 1);
    ck_assert_str_eq (obs.alias_uid, obs.self_uid);
    ck_assert_tr_ok (obs.unalias_rc);
    ck_assert_int_eq (obs.alias_after, 0);
    ck_assert_tr_rc (obs.unalias_again_rc, TR_ENOTFOUND);
    ck_assert_tr_ok (obs.rotate_rc);
    ck_assert_msg (strncmp (obs.rot [0], "pair-0@", 7) == 0, "found %s", obs.rot [0]);
    ck_assert_msg (strncmp (obs.rot [1], "pair-1@", 7) == 0, "found %s", obs.rot [1]);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Daemons: register by --tr-registry, unregister on SIGTERM, leases

typedef struct {
    tu_proc_t daemon;
    int wait_rc, call_rc;
    char uid [256];
    long long gone_ms;
    int status;
    //  leases
    long long expired_ms, back_ms;
} s_daemon_t;

static int
s_daemon_root (tr_actor_t *self, void *arg)
{
    s_daemon_t *obs = arg;
    s_daemon_start (&obs->daemon, "regd", tr_actor_endpoint (self));
    tr_portal_t *p = NULL;
    if ((obs->wait_rc = tr_wait_for_actor (self, "regd", tu_ms (5000), &p)) == 0) {
        snprintf (obs->uid, sizeof obs->uid, "%s", tr_portal_uid (p));
        obs->call_rc = tr_portal_run (p, "nil", NULL, NULL);
        tr_portal_close (&p);
    }
    //  SIGTERM: the daemon unregisters as it stops (the lease is 10 s).
    kill (obs->daemon.pid, SIGTERM);
    obs->gone_ms = s_await_count (self, "regd", 0, 2000);
    obs->status = s_proc_stop (&obs->daemon, 0, 5000);
    return 0;
}

START_TEST (a_daemon_registers_where_it_is_told_and_unregisters_when_it_stops)
{
    tu_subreaper ();
    s_daemon_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = s_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_daemon_root, &obs), 0);
    ck_assert_tr_ok (obs.wait_rc);
    ck_assert_msg (strncmp (obs.uid, "regd@", 5) == 0, "found %s", obs.uid);
    ck_assert_tr_ok (obs.call_rc);
    ck_assert_msg (obs.gone_ms >= 0, "the stopped daemon stayed registered");
    ck_assert_msg (WIFEXITED (obs.status) && WEXITSTATUS (obs.status) == 143,
                   "daemon status %#x", obs.status);
    tu_assert_no_procs_left (2000);
}
END_TEST

static int
s_lease_root (tr_actor_t *self, void *arg)
{
    s_daemon_t *obs = arg;
    s_daemon_start (&obs->daemon, "leased", tr_actor_endpoint (self));
    if (s_await_count (self, "leased", 1, 5000) < 0)
        return 0;
    //  It stops renewing: its lease (900 ms) runs out.
    kill (obs->daemon.pid, SIGSTOP);
    obs->expired_ms = s_await_count (self, "leased", 0, 3000);
    //  It runs again and renews within a third of the lease.
    kill (obs->daemon.pid, SIGCONT);
    obs->back_ms = s_await_count (self, "leased", 1, 3000);
    obs->status = s_proc_stop (&obs->daemon, SIGTERM, 5000);
    return 0;
}

START_TEST (a_lease_that_is_not_renewed_runs_out_and_a_renewal_brings_it_back)
{
    tu_subreaper ();
    s_daemon_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = s_config ();
    config.registry_lease_ms = 900;
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_lease_root, &obs), 0);
    //  Renewed at most 300 ms before the stop: gone 600 to 900 ms after.
    ck_assert_msg (obs.expired_ms >= 550 && obs.expired_ms < tu_ms (1800),
                   "the lease ran out after %lld ms", obs.expired_ms);
    ck_assert_msg (obs.back_ms >= 0, "the daemon did not register again");
    ck_assert_msg (obs.back_ms < tu_ms (1500), "registered again after %lld ms", obs.back_ms);
    ck_assert_msg (WIFEXITED (obs.status) && WEXITSTATUS (obs.status) == 143,
                   "daemon status %#x", obs.status);
    tu_assert_no_procs_left (2000);
}
END_TEST

typedef struct {
    tu_proc_t d1, d2;
    int find_rc, open_rc, stream_rc, values, in_order, result_rc;
    int64_t result;
    int cancel_rc, d1_status;
    int dead_rc;
    char dead_type [64];
    long long dead_ms;
} s_portal_t;

static int
s_portal_root (tr_actor_t *self, void *arg)
{
    s_portal_t *obs = arg;
    s_daemon_start (&obs->d1, "streamer", tr_actor_endpoint (self));
    s_daemon_start (&obs->d2, "doomed", tr_actor_endpoint (self));
    tr_portal_t *p = NULL, *q = NULL;
    if ((obs->find_rc = tr_wait_for_actor (self, "streamer", tu_ms (5000), &p)) == 0) {
        //  A context and its stream through a found portal.
        tr_context_t *c;
        tr_args_t *args = tr_pack ("[I]", (int64_t) 1000);
        obs->open_rc = tr_portal_open_context (p, "ctx_count", args, &c, NULL);
        tr_args_destroy (&args);
        if (obs->open_rc == 0) {
            tr_stream_t *stream;
            if ((obs->stream_rc = tr_context_open_stream (c, &stream)) == 0) {
                obs->in_order = 1;
                const msgpack_object *v;
                int64_t i;
                while (tr_stream_recv (stream, &v, tu_ms (5000)) == 0 && tr_unpack (v, "I", &i) == 0) {
                    if (i != obs->values)
                        obs->in_order = 0;
                    obs->values++;
                }
                tr_stream_close (&stream);
            }
            const msgpack_object *result;
            if ((obs->result_rc = tr_context_result (c, &result)) == 0)
                tr_unpack (result, "I", &obs->result);
            tr_context_close (&c);
        }
        //  Cancel with its ack: the daemon exits 0.
        obs->cancel_rc = tr_portal_cancel_actor (p, tu_ms (2000));
        obs->d1_status = s_proc_stop (&obs->d1, 0, 5000);
        tr_portal_close (&p);
    }
    //  A found actor killed: its portal says so.
    if (tr_wait_for_actor (self, "doomed", tu_ms (5000), &q) == 0) {
        tr_portal_run (q, "nil", NULL, NULL);
        long long start = tu_now_ms ();
        kill (obs->d2.pid, SIGKILL);
        s_proc_stop (&obs->d2, 0, 5000);
        while ((obs->dead_rc = tr_portal_run (q, "nil", NULL, NULL)) == 0
           &&  tu_now_ms () - start < tu_ms (5000))
            tr_sleep (tr_actor_ctx (self), 10);
        obs->dead_ms = tu_now_ms () - start;
        const tr_error_t *e = tr_portal_error (q);
        if (e)
            snprintf (obs->dead_type, sizeof obs->dead_type, "%s", tr_error_type (e));
        tr_portal_close (&q);
    }
    return 0;
}

START_TEST (a_found_actor_streams_cancels_with_an_ack_and_its_death_is_seen)
{
    tu_subreaper ();
    s_portal_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = s_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_portal_root, &obs), 0);
    ck_assert_tr_ok (obs.find_rc);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_tr_ok (obs.stream_rc);
    ck_assert_int_eq (obs.values, 1000);
    ck_assert_int_eq (obs.in_order, 1);
    ck_assert_tr_ok (obs.result_rc);
    ck_assert_int_eq (obs.result, 1000);
    ck_assert_tr_ok (obs.cancel_rc);
    ck_assert_msg (WIFEXITED (obs.d1_status) && WEXITSTATUS (obs.d1_status) == 0,
                   "a cancelled daemon's status %#x", obs.d1_status);
    ck_assert_tr_rc (obs.dead_rc, TR_ECLOSED);
    ck_assert_str_eq (obs.dead_type, "ConnectionLost");
    ck_assert_msg (obs.dead_ms < tu_ms (1000), "the death was seen after %lld ms", obs.dead_ms);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  troupe-broker: restart without loss, several brokers

typedef struct {
    char ep1 [256], ep2 [256];
    tu_proc_t broker1, broker2, daemon;
    long long first_ms, again_ms;
    int call_rc, b1_status, b2_status, d_status;
    int both1, both2, listed;
    int find_rc;
    char found [256];
} s_broker_t;

static int
s_restart_root (tr_actor_t *self, void *arg)
{
    s_broker_t *obs = arg;
    s_daemon_start (&obs->daemon, "survivor", obs->ep1);
    obs->first_ms = s_await_count (self, "survivor", 1, 5000);
    tr_portal_t *p = NULL;
    if (tr_find_actor (self, "survivor", &p))
        return 0;
    //  The broker goes and comes back at the same endpoint, empty.
    obs->b1_status = s_proc_stop (&obs->broker1, SIGTERM, 5000);
    char ep [256];
    s_broker_start (&obs->broker1, obs->ep1, "900", ep, sizeof ep);
    long long start = tu_now_ms ();
    if (s_await_count (self, "survivor", 1, 5000) >= 0)
        obs->again_ms = tu_now_ms () - start;
    else
        obs->again_ms = -1;
    //  The portal found before never went through the broker.
    obs->call_rc = tr_portal_run (p, "nil", NULL, NULL);
    tr_portal_close (&p);
    obs->d_status = s_proc_stop (&obs->daemon, SIGTERM, 5000);
    return 0;
}

START_TEST (a_restarted_broker_gets_every_live_actor_back_within_two_renewals)
{
    tu_subreaper ();
    s_broker_t obs;
    memset (&obs, 0, sizeof obs);
    s_broker_start (&obs.broker1, "tcp://127.0.0.1:*", "900", obs.ep1, sizeof obs.ep1);
    tr_config_t config = s_config ();
    config.registry = obs.ep1;
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_restart_root, &obs), 0);
    int status = s_proc_stop (&obs.broker1, SIGTERM, 5000);
    ck_assert_msg (obs.first_ms >= 0, "the daemon never registered with the broker");
    ck_assert_msg (WIFEXITED (obs.b1_status) && WEXITSTATUS (obs.b1_status) == 0,
                   "broker status %#x", obs.b1_status);
    //  Renewal every 300 ms, a second between tries when it cannot reach
    //  the registry: back within two renewal intervals of the broker's
    //  return, plus the try that found it gone.
    ck_assert_msg (obs.again_ms >= 0, "the daemon did not register again");
    ck_assert_msg (obs.again_ms < tu_ms (1600), "registered again after %lld ms", obs.again_ms);
    ck_assert_tr_ok (obs.call_rc);
    ck_assert_msg (WIFEXITED (obs.d_status) && WEXITSTATUS (obs.d_status) == 143,
                   "daemon status %#x", obs.d_status);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0, "broker status %#x", status);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  How many registrations under name the broker at endpoint lists.
static int
s_broker_count (tr_actor_t *self, const char *endpoint, const char *name)
{
    tr_portal_t *p;
    if (tr_portal_open (self, endpoint, tu_ms (2000), &p))
        return -1;
    tr_value_t *out = NULL;
    int n = -1;
    if (tu_call (p, "tr.registry.list", tr_pack ("[s]", name), &out) == 0)
        n = (int) tr_value_object (out)->via.array.size;
    tr_value_destroy (&out);
    tr_portal_close (&p);
    return n;
}

static int
s_two_root (tr_actor_t *self, void *arg)
{
    s_broker_t *obs = arg;
    char both [600];
    snprintf (both, sizeof both, "%s,%s", obs->ep1, obs->ep2);
    s_daemon_start (&obs->daemon, "twice", both);
    if (s_await_count (self, "twice", 1, 5000) < 0)
        return 0;
    long long deadline = tu_now_ms () + tu_ms (3000);
    while ((obs->both1 = s_broker_count (self, obs->ep1, "twice")) != 1
       ||  (obs->both2 = s_broker_count (self, obs->ep2, "twice")) != 1)
        if (tu_now_ms () >= deadline || tr_sleep (tr_actor_ctx (self), 20))
            break;
    //  One broker goes: finds ask the other.
    obs->b1_status = s_proc_stop (&obs->broker1, SIGTERM, 5000);
    tr_portal_t *p = NULL;
    if ((obs->find_rc = tr_find_actor (self, "twice", &p)) == 0) {
        snprintf (obs->found, sizeof obs->found, "%s", tr_portal_uid (p));
        obs->call_rc = tr_portal_run (p, "nil", NULL, NULL);
        tr_portal_close (&p);
    }
    obs->listed = s_count (self, "twice", NULL, 0);
    obs->d_status = s_proc_stop (&obs->daemon, SIGTERM, 5000);
    return 0;
}

START_TEST (an_actor_registers_with_every_broker_and_a_find_asks_them_in_turn)
{
    tu_subreaper ();
    s_broker_t obs;
    memset (&obs, 0, sizeof obs);
    s_broker_start (&obs.broker1, "tcp://127.0.0.1:*", "3000", obs.ep1, sizeof obs.ep1);
    s_broker_start (&obs.broker2, "tcp://127.0.0.1:*", "3000", obs.ep2, sizeof obs.ep2);
    char both [600];
    snprintf (both, sizeof both, "%s,%s", obs.ep1, obs.ep2);
    tr_config_t config = s_config ();
    config.registry = both;
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_two_root, &obs), 0);
    int status = s_proc_stop (&obs.broker2, SIGTERM, 5000);
    ck_assert_int_eq (obs.both1, 1);
    ck_assert_int_eq (obs.both2, 1);
    ck_assert_tr_ok (obs.find_rc);
    ck_assert_msg (strncmp (obs.found, "twice@", 6) == 0, "found %s", obs.found);
    ck_assert_tr_ok (obs.call_rc);
    ck_assert_int_eq (obs.listed, 1);
    ck_assert_msg (WIFEXITED (obs.d_status) && WEXITSTATUS (obs.d_status) == 143,
                   "daemon status %#x", obs.d_status);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0, "broker status %#x", status);
    tu_assert_no_procs_left (2000);
}
END_TEST

typedef struct {
    int find_rc, list_rc;
    long long find_ms, list_ms;
    char why [256];
} s_down_t;

static int
s_down_root (tr_actor_t *self, void *arg)
{
    s_down_t *obs = arg;
    tr_portal_t *p = NULL;
    long long start = tu_now_ms ();
    obs->find_rc = tr_find_actor (self, "anyone", &p);
    obs->find_ms = tu_now_ms () - start;
    const tr_error_t *e = tr_ctx_error (tr_actor_ctx (self));
    if (e)
        snprintf (obs->why, sizeof obs->why, "%s", tr_error_message (e));
    tr_value_t *v = NULL;
    start = tu_now_ms ();
    obs->list_rc = tr_registry_list (self, NULL, &v);
    obs->list_ms = tu_now_ms () - start;
    return 0;
}

START_TEST (with_its_registry_down_a_find_fails_in_one_attempt_and_says_why)
{
    s_down_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = s_config ();
    config.registry = "tcp://127.0.0.1:1";      //  nothing listens there
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_down_root, &obs), 0);
    ck_assert_tr_rc (obs.find_rc, TR_ECLOSED);
    ck_assert_msg (strstr (obs.why, "cannot reach the registry at tcp://127.0.0.1:1"), "error: %s", obs.why);
    //  One attempt of at most 2 s (the lease task's, or its own).
    ck_assert_msg (obs.find_ms < tu_ms (2600), "the find took %lld ms", obs.find_ms);
    ck_assert_tr_rc (obs.list_rc, TR_ECLOSED);
    ck_assert_msg (obs.list_ms < tu_ms (2600), "the listing took %lld ms", obs.list_ms);
}
END_TEST

//  --------------------------------------------------------------------------
//  Bad input from a raw peer (on a worker thread, the root's loop serves)

#define S_BAD_CASES 14

typedef struct {
    const char *endpoint;
    int connected;
    int replies;
    int types [S_BAD_CASES];
    char msgs [S_BAD_CASES][256];
    int flood_ok, flood_full;
    char flood_why [256];
    int after_type;             //  a good request after all that
    int busy;                   //  waits refused
} s_raw_t;

//  Send [cmd, cid, [fn, args]] (takes args) and wait for the answer: its
//  type, and for an error "Type: message" into msg.
static void
s_raw_request (void *dealer, uint64_t cid, const char *fn, tr_args_t *args, int *type,
               char *msg, size_t size)
{
    //  [cmd, cid, [fn, args]]: args encoded by hand after the head.
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 3);
    msgpack_pack_int (&pk, T_CMD);
    msgpack_pack_uint64 (&pk, cid);
    msgpack_pack_array (&pk, 2);
    msgpack_pack_str (&pk, strlen (fn));
    msgpack_pack_str_body (&pk, fn, strlen (fn));
    if (args)
        msgpack_sbuffer_write (&sbuf, tr_args_data (args), tr_args_size (args));
    else
        msgpack_pack_nil (&pk);
    tr_args_destroy (&args);
    zmq_send (dealer, sbuf.data, sbuf.size, 0);
    msgpack_sbuffer_destroy (&sbuf);
    *type = -1;
    zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, tu_ms (5000)) <= 0)
        return;
    zmq_msg_t reply;
    zmq_msg_init (&reply);
    if (zmq_msg_recv (&reply, dealer, 0) < 0)
        return;
    tr_value_t *v = tr_value_decode (zmq_msg_data (&reply), zmq_msg_size (&reply));
    zmq_msg_close (&reply);
    const msgpack_object *body;
    uint64_t rcid;
    if (v && tr_unpack (tr_value_object (v), "[iuo]", type, &rcid, &body) == 0 && *type == T_ERROR) {
        const char *t = "", *m = "";
        tr_unpack (body, "{s:s s:s}", "type", &t, "msg", &m);
        snprintf (msg, size, "%s: %s", t, m);
    }
    tr_value_destroy (&v);
}

static void *
s_raw_thread (void *arg)
{
    s_raw_t *obs = arg;
    void *zctx = zmq_ctx_new ();
    void *dealer = zmq_socket (zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect (dealer, obs->endpoint);
    tr_args_t *hello = tr_pack ("[i i {s:[ii] s:s s:i s:s}]", T_HELLO, 0, "v", TR_PROTOCOL_MAJOR,
                                TR_PROTOCOL_MINOR, "uid", "raw@peer", "pid", (int) getpid (), "ep", "");
    zmq_send (dealer, tr_args_data (hello), tr_args_size (hello), 0);
    tr_args_destroy (&hello);
    zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, tu_ms (5000)) == 1) {
        zmq_msg_t m;
        zmq_msg_init (&m);
        zmq_msg_recv (&m, dealer, 0);
        zmq_msg_close (&m);
        obs->connected = 1;
    }
    char long_name [100], long_ep [400];
    memset (long_name, 'n', sizeof long_name - 1);
    long_name [sizeof long_name - 1] = 0;
    snprintf (long_ep, sizeof long_ep, "tcp://%0300d", 1);
    const char *R = "tr.registry.register";
    struct { const char *fn; tr_args_t *args; } bad [S_BAD_CASES] = {
        { R, tr_pack ("[s]", "x") },
        { R, tr_pack ("{s:s}", "name", "x") },
        { R, tr_pack ("[s s s i s s]", long_name, "a@b", "tcp://h:1", 1, "h", "") },
        { R, tr_pack ("[s s s i s s]", "bad name", "a@b", "tcp://h:1", 1, "h", "") },
        { R, tr_pack ("[s s s i s s]", "ok", "no-at-sign", "tcp://h:1", 1, "h", "") },
        { R, tr_pack ("[s s s i s s]", "ok", "a@b", "http://h:1", 1, "h", "") },
        { R, tr_pack ("[s s s i s s]", "ok", "a@b", long_ep, 1, "h", "") },
        { R, tr_pack ("[s s s i s s]", "ok", "a@b", "tcp://h:1", -4, "h", "") },
        { R, tr_pack ("[s s s s s s]", "ok", "a@b", "tcp://h:1", "1", "h", "") },
        { R, tr_pack ("[s s s i s s]", "ok", "a@b", "tcp://h:1", 1, "h", "not a uid") },
        { "tr.registry.find", tr_pack ("[s]", "a b") },
        { "tr.registry.wait", tr_pack ("[s i]", "ok", -5) },
        { "tr.registry.list", tr_pack ("[s s]", "a", "b") },
        { "tr.registry.unregister", tr_pack ("[i]", 5) },
    };
    for (int i = 0; obs->connected && i < S_BAD_CASES; i++) {
        s_raw_request (dealer, (uint64_t) (i + 1), bad [i].fn, bad [i].args, &obs->types [i],
                       obs->msgs [i], sizeof obs->msgs [i]);
        obs->replies += obs->types [i] >= 0;
    }
    //  A flood of good registrations from this one peer.
    for (int i = 0; obs->connected && i < 300; i++) {
        char name [32], uid [64];
        snprintf (name, sizeof name, "flood-%d", i);
        snprintf (uid, sizeof uid, "flood-%d@raw", i);
        int type;
        char msg [256] = "";
        s_raw_request (dealer, (uint64_t) (100 + i), "tr.registry.register",
                       tr_pack ("[s s s i s n]", name, uid, "tcp://127.0.0.1:9", 1, "h"),
                       &type, msg, sizeof msg);
        if (type == T_RETURN)
            obs->flood_ok++;
        else
        if (type == T_ERROR) {
            obs->flood_full++;
            snprintf (obs->flood_why, sizeof obs->flood_why, "%s", msg);
        }
    }
    char msg [256];
    s_raw_request (dealer, 1000, "tr.registry.find", tr_pack ("[s]", "flood-3"),
                   &obs->after_type, msg, sizeof msg);
    //  Waits park a task each: 70 at once from this peer, the last six
    //  are refused at once.
    for (int i = 0; obs->connected && i < 70; i++) {
        tr_args_t *args = tr_pack ("[i I [s [s i]]]", T_CMD, (int64_t) (2000 + i),
                                   "tr.registry.wait", "never", 3000);
        zmq_send (dealer, tr_args_data (args), tr_args_size (args), 0);
        tr_args_destroy (&args);
    }
    long long deadline = tu_now_ms () + tu_ms (2000);
    while (obs->connected && obs->busy < 6 && tu_now_ms () < deadline) {
        zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) != 1)
            continue;
        zmq_msg_t m;
        zmq_msg_init (&m);
        zmq_msg_recv (&m, dealer, 0);
        tr_value_t *v = tr_value_decode (zmq_msg_data (&m), zmq_msg_size (&m));
        zmq_msg_close (&m);
        int type;
        uint64_t cid;
        const msgpack_object *body;
        const char *t;
        if (v && tr_unpack (tr_value_object (v), "[iuo]", &type, &cid, &body) == 0
        &&  type == T_ERROR && tr_unpack (body, "{s:s}", "type", &t) == 0 && strcmp (t, "RegistryBusy") == 0)
            obs->busy++;
        tr_value_destroy (&v);
    }
    zmq_close (dealer);
    zmq_ctx_term (zctx);
    return NULL;
}

typedef struct {
    s_raw_t raw;
    int thread_rc;
    int own_rc, child_rc, child_found;
    bool flood_gone;
} s_bad_t;

static int
s_bad_root (tr_actor_t *self, void *arg)
{
    s_bad_t *obs = arg;
    obs->raw.endpoint = tr_actor_endpoint (self);
    obs->thread_rc = tr_to_thread (tr_actor_ctx (self), s_raw_thread, &obs->raw, NULL);
    //  The registry goes on serving everyone else.
    obs->own_rc = tr_register_name (self, "still-here");
    //  The flooding peer has left: its registrations went with its
    //  channel, which the registry forgets once the peer is gone.
    obs->flood_gone = s_await_count (self, NULL, 2, 5000) >= 0;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p;
    if ((obs->child_rc = tr_nursery_start_actor (n, "after", NULL, &p)) == 0)
        obs->child_found = s_await_count (self, "after", 1, 5000) >= 0;
    tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (bad_requests_are_answered_and_a_flood_is_bounded_per_peer)
{
    tu_subreaper ();
    s_bad_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = s_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_bad_root, &obs), 0);
    ck_assert_tr_ok (obs.thread_rc);
    ck_assert_int_eq (obs.raw.connected, 1);
    static const char *needles [S_BAD_CASES] = {
        "[name, uid, endpoint, pid, host, parent]", "[name, uid, endpoint, pid, host, parent]",
        "name", "bad name", "bad uid", "bad endpoint", "endpoint", "pid", "pid",
        "bad parent", "tr.registry.find", "tr.registry.wait", "tr.registry.list",
        "tr.registry.unregister" };
    for (int i = 0; i < S_BAD_CASES; i++) {
        ck_assert_msg (obs.raw.types [i] == T_ERROR, "bad request %d: reply type %d", i,
                       obs.raw.types [i]);
        ck_assert_msg (strstr (obs.raw.msgs [i], "BadRequest") && strstr (obs.raw.msgs [i], needles [i]),
                       "bad request %d: '%s' does not say '%s'", i, obs.raw.msgs [i], needles [i]);
    }
    ck_assert_int_eq (obs.raw.flood_ok, 256);
    ck_assert_int_eq (obs.raw.flood_full, 44);
    ck_assert_msg (strstr (obs.raw.flood_why, "RegistryFull") && strstr (obs.raw.flood_why, "one peer"),
                   "flood refused with '%s'", obs.raw.flood_why);
    ck_assert_int_eq (obs.raw.after_type, T_RETURN);
    ck_assert_int_eq (obs.raw.busy, 6);
    ck_assert_tr_ok (obs.own_rc);
    ck_assert_msg (obs.flood_gone, "the flooding peer's registrations outlived it");
    ck_assert_tr_ok (obs.child_rc);
    ck_assert_msg (obs.child_found, "a child could not register after the flood");
    tu_assert_no_procs_left (2000);
}
END_TEST

typedef struct {
    int rcs [6];
    char why [256];
    int listed;
} s_full_t;

static int
s_full_root (tr_actor_t *self, void *arg)
{
    s_full_t *obs = arg;
    //  The root's own name is one of the four.
    for (int i = 0; i < 5; i++) {
        char name [16];
        snprintf (name, sizeof name, "name-%d", i);
        obs->rcs [i] = tr_register_name (self, name);
        const tr_error_t *e = tr_ctx_error (tr_actor_ctx (self));
        if (obs->rcs [i] && e)
            snprintf (obs->why, sizeof obs->why, "%s", tr_error_message (e));
    }
    obs->listed = s_count (self, NULL, NULL, 0);
    //  Room again once one goes.
    tr_unregister_name (self, "name-0");
    obs->rcs [5] = tr_register_name (self, "name-5");
    return 0;
}

START_TEST (a_full_registry_refuses_with_a_reason_and_takes_more_once_there_is_room)
{
    s_full_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = s_config ();
    config.registry_max = 4;
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_full_root, &obs), 0);
    ck_assert_tr_ok (obs.rcs [0]);
    ck_assert_tr_ok (obs.rcs [1]);
    ck_assert_tr_ok (obs.rcs [2]);
    ck_assert_tr_rc (obs.rcs [3], TR_EREMOTE);
    ck_assert_tr_rc (obs.rcs [4], TR_EREMOTE);
    ck_assert_msg (strstr (obs.why, "full"), "refused with '%s'", obs.why);
    ck_assert_int_eq (obs.listed, 4);
    ck_assert_tr_ok (obs.rcs [5]);
}
END_TEST

//  --------------------------------------------------------------------------

int
main (void)
{
    Suite *suite = suite_create ("registry");
    TCase *tc = tu_tcase (suite, "embedded", 30);
    tcase_add_test (tc, a_root_serves_the_registry_and_its_children_register_there);
    tcase_add_test (tc, finds_and_waits_say_what_happened);
    tcase_add_test (tc, grandchildren_register_with_the_root_naming_their_parent);
    tc = tu_tcase (suite, "daemons", 30);
    tcase_add_test (tc, a_daemon_registers_where_it_is_told_and_unregisters_when_it_stops);
    tcase_add_test (tc, a_lease_that_is_not_renewed_runs_out_and_a_renewal_brings_it_back);
    tcase_add_test (tc, a_found_actor_streams_cancels_with_an_ack_and_its_death_is_seen);
    tc = tu_tcase (suite, "brokers", 30);
    tcase_add_test (tc, a_restarted_broker_gets_every_live_actor_back_within_two_renewals);
    tcase_add_test (tc, an_actor_registers_with_every_broker_and_a_find_asks_them_in_turn);
    tcase_add_test (tc, with_its_registry_down_a_find_fails_in_one_attempt_and_says_why);
    tc = tu_tcase (suite, "bad_input", 30);
    tcase_add_test (tc, bad_requests_are_answered_and_a_flood_is_bounded_per_peer);
    tcase_add_test (tc, a_full_registry_refuses_with_a_reason_and_takes_more_once_there_is_room);
    return tu_run_suite (suite, CK_FORK);
}
