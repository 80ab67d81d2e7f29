/*  =========================================================================
    test_examples.c - scenario: the examples, run as a user runs them

    The README's "Several hosts" walk-through on one host: a troupe-broker,
    examples/worker and examples/showcase started by hand as daemons that
    register with it, and roots that find them by name. The test process
    starts every program with fork and exec ($TROUPE_TEST_BROKER,
    $TROUPE_TEST_EXAMPLE_WORKER, $TROUPE_TEST_SHOWCASE, else their paths in
    the build tree), reads what each prints through pipes and watches it
    through a pidfd, so every wait is on an event with a deadline: the
    line that says where it serves, its exit. A root of this process
    (tr_run with the broker as its registry) plays the user's own program.
    =========================================================================
*/
#include "testutil.h"
#include "testproc.h"
#include <stdarg.h>

static const char *
s_path (const char *variable, const char *fallback)
{
    const char *path = getenv (variable);
    return path? path: fallback;
}

#define WORKER_PATH     s_path ("TROUPE_TEST_EXAMPLE_WORKER", "examples/worker")
#define SHOWCASE_PATH   s_path ("TROUPE_TEST_SHOWCASE", "examples/showcase")

static bool
s_streq (const char *a, const char *b)
{
    return strcmp (a, b) == 0;
}

//  --------------------------------------------------------------------------
//  Programs started by hand

//  troupe-broker at endpoint (NULL: a free port of the loopback) with the
//  library's lease, or lease_ms (NULL); its endpoint once it serves.
static void
s_broker_serve (tu_proc_t *b, const char *endpoint, const char *lease_ms)
{
    const char *args [] = { "--endpoint", endpoint? endpoint: "tcp://127.0.0.1:*",
                            lease_ms? "--lease-ms": NULL, lease_ms, NULL };
    tu_proc_spawn (b, tu_broker_path (), args);
    tu_proc_pump (b, tu_now_ms () + tu_ms (5000), tu_proc_has_line, NULL);
    ck_assert_msg (sscanf (b->out_text, "troupe-broker serving at %255s", b->endpoint) == 1,
                   "no serving line; stdout '%s', stderr '%s'", b->out_text, b->err_text);
}

static void
s_broker_start (tu_proc_t *b)
{
    s_broker_serve (b, NULL, NULL);
}

//  path as a daemon named name, registered with the broker and serving on
//  a free port of the loopback, as the README starts one on each host.
static void
s_daemon_start (tu_proc_t *d, const char *path, const char *name, const tu_proc_t *broker)
{
    const char *args [] = { "--tr-daemon", "--tr-name", name, "--tr-registry", broker->endpoint,
                            "--tr-bind", "tcp://127.0.0.1:*", NULL };
    tu_proc_spawn (d, path, args);
    tu_proc_pump (d, tu_now_ms () + tu_ms (5000), tu_proc_has_line, NULL);
    ck_assert_msg (sscanf (d->out_text, "%255s %255s", d->uid, d->endpoint) == 2,
                   "no uid and endpoint from %s; stdout '%s', stderr '%s'", name,
                   d->out_text, d->err_text);
    ck_assert (strncmp (d->uid, name, strlen (name)) == 0 && d->uid [strlen (name)] == '@');
}

//  --------------------------------------------------------------------------
//  A root of this process, as the user's program: what it saw goes in a
//  state, the first thing that went wrong in its failure.

typedef struct {
    const char *registry;
    const tu_proc_t *workers [2];   //  the daemons to find, by name
    const char *names [2];
    int gone_rc;                    //  tr_find_actor on a stopped worker
    int wait_ms;                    //  the timeout s_wait_alone gives
    int wait_rc;                    //  what it returned
    long long waited;               //  after how long
    char failure [1024];
} root_state_t;

static bool
s_fail (root_state_t *st, const char *fmt, ...)
{
    if (!st->failure [0]) {
        va_list ap;
        va_start (ap, fmt);
        vsnprintf (st->failure, sizeof st->failure, fmt, ap);
        va_end (ap);
    }
    return false;
}

static int
s_root_run (root_state_t *st, int (*root) (tr_actor_t *, void *))
{
    tr_config_t config = TR_CONFIG_INIT;
    config.name = "root";
    config.registry = st->registry;
    return tr_run (&config, 0, NULL, root, st);
}

//  echo hands back what it was given: scalars, nested arrays and maps,
//  strings and bytes (NULs and high bytes included) keep type and value.
static bool
s_check_echo (root_state_t *st, tr_portal_t *p)
{
    static const char bytes [] = { 0, 1, (char) 0xff, (char) 0x80, 0, 'x' };
    tr_args_t *args = tr_pack ("[i s {s:[i n b f] s:{s:y s:[]}} y I]", 42, "héllo",
                               "list", -7, 1, 2.5, "map", "bin", bytes, sizeof bytes, "empty",
                               bytes, (size_t) 0, (int64_t) INT64_MIN);
    if (!args)
        return s_fail (st, "tr_pack failed");
    tr_value_t *want = tr_value_decode (tr_args_data (args), tr_args_size (args));
    tr_value_t *got = NULL;
    int rc = tr_portal_run (p, "echo", args, &got);
    bool ok = rc == 0 && want
           && msgpack_object_equal (*tr_value_object (got), *tr_value_object (want));
    if (rc)
        s_fail (st, "echo in %s: %s", tr_portal_uid (p), tr_strerror (rc));
    else
    if (!ok)
        s_fail (st, "echo in %s changed its arguments", tr_portal_uid (p));
    tr_value_destroy (&got);
    tr_value_destroy (&want);
    tr_args_destroy (&args);
    return ok;
}

//  info says who and where the worker is: its uid and its pid.
static bool
s_check_info (root_state_t *st, tr_portal_t *p, const tu_proc_t *d)
{
    tr_value_t *v = NULL;
    int rc = tr_portal_run (p, "info", NULL, &v);
    const char *uid = "", *host = "";
    int pid = 0;
    if (rc == 0 && tr_unpack (tr_value_object (v), "{s:s s:s s:i}", "uid", &uid, "host", &host,
                              "pid", &pid))
        rc = TR_EFORMAT;
    char here [256] = "";
    gethostname (here, sizeof here - 1);
    bool ok = rc == 0 && s_streq (uid, d->uid) && pid == (int) d->pid && s_streq (host, here);
    if (!ok)
        s_fail (st, "info in %s: %s, uid '%s' pid %d host '%s'", d->uid, tr_strerror (rc),
                uid, pid, host);
    tr_value_destroy (&v);
    return ok;
}

//  count streams 0 .. n-1 in order after its first value n, then ends
//  its stream and returns the sum.
static bool
s_check_count (root_state_t *st, tr_portal_t *p, int64_t n, int64_t every_ms)
{
    tr_args_t *args = every_ms? tr_pack ("[II]", n, every_ms): tr_pack ("[I]", n);
    tr_context_t *context = NULL;
    const msgpack_object *first = NULL;
    int rc = tr_portal_open_context (p, "count", args, &context, &first);
    tr_args_destroy (&args);
    int64_t value = -1;
    if (rc || tr_unpack (first, "I", &value) || value != n) {
        tr_context_close (&context);
        return s_fail (st, "count in %s: open %s, first %lld", tr_portal_uid (p),
                       tr_strerror (rc), (long long) value);
    }
    tr_stream_t *stream = NULL;
    rc = tr_context_open_stream (context, &stream);
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        const msgpack_object *v;
        if ((rc = tr_stream_recv (stream, &v, tu_ms (5000))) == 0
        &&  (tr_unpack (v, "I", &value) || value != i)) {
            s_fail (st, "count in %s: value %lld is %lld", tr_portal_uid (p), (long long) i,
                    (long long) value);
            rc = TR_EPROTO;
        }
    }
    if (rc == 0) {
        const msgpack_object *v;
        rc = tr_stream_recv (stream, &v, tu_ms (5000));
        rc = rc == TR_ECLOSED? 0: (rc? rc: TR_EPROTO);     //  n values, no more
    }
    const msgpack_object *result = NULL;
    if (rc == 0 && (rc = tr_context_result (context, &result)) == 0
    &&  (tr_unpack (result, "I", &value) || value != n * (n - 1) / 2))
        rc = TR_EPROTO;
    tr_context_close (&context);
    if (rc)
        return s_fail (st, "count [%lld, %lld] in %s: %s", (long long) n, (long long) every_ms,
                       tr_portal_uid (p), tr_strerror (rc));
    return true;
}

//  count refuses what it cannot count, with a typed error.
static bool
s_check_count_refuses (root_state_t *st, tr_portal_t *p)
{
    tr_args_t *args = tr_pack ("[s]", "ten");
    tr_context_t *context = NULL;
    int rc = tr_portal_open_context (p, "count", args, &context, NULL);
    tr_args_destroy (&args);
    const tr_error_t *error = tr_portal_error (p);
    bool ok = rc == TR_EREMOTE && error && s_streq (tr_error_type (error), "TypeError");
    tr_context_close (&context);
    return ok? true: s_fail (st, "count [\"ten\"] in %s: %s", tr_portal_uid (p), tr_strerror (rc));
}

//  Both workers are listed with the host they run on.
static bool
s_check_listed (root_state_t *st, tr_actor_t *self)
{
    tr_value_t *entries = NULL;
    int rc = tr_registry_list (self, NULL, &entries);
    if (rc)
        return s_fail (st, "tr_registry_list: %s", tr_strerror (rc));
    char here [256] = "";
    gethostname (here, sizeof here - 1);
    const msgpack_object *list = tr_value_object (entries);
    int found = 0;
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const char *uid, *host;
        if (tr_unpack (&list->via.array.ptr [i], "{s:s s:s}", "uid", &uid, "host", &host) == 0)
            for (int w = 0; w < 2; w++)
                found += s_streq (uid, st->workers [w]->uid) && s_streq (host, here);
    }
    tr_value_destroy (&entries);
    return found == 2? true: s_fail (st, "%d of the 2 workers listed", found);
}

//  Find each worker by name, call all it exports, then cancel it.
static int
s_use_workers (tr_actor_t *self, void *arg)
{
    root_state_t *st = arg;
    tr_portal_t *portals [2] = { NULL, NULL };
    for (int i = 0; i < 2; i++) {
        int rc = tr_wait_for_actor (self, st->names [i], tu_ms (5000), &portals [i]);
        if (rc)
            s_fail (st, "tr_wait_for_actor (%s): %s", st->names [i], tr_strerror (rc));
        else
        if (!s_streq (tr_portal_uid (portals [i]), st->workers [i]->uid))
            s_fail (st, "%s found as %s, not %s", st->names [i], tr_portal_uid (portals [i]),
                    st->workers [i]->uid);
    }
    if (portals [0] && portals [1] && s_check_listed (st, self))
        for (int i = 0; i < 2; i++)
            if (!s_check_echo (st, portals [i]) || !s_check_info (st, portals [i], st->workers [i])
            ||  !s_check_count (st, portals [i], i == 0? 1000: 20, i == 0? 0: 5)
            ||  !s_check_count_refuses (st, portals [i]))
                break;
    for (int i = 0; i < 2; i++) {
        int rc = portals [i]? tr_portal_cancel_actor (portals [i], tu_ms (2000)): 0;
        if (rc)
            s_fail (st, "cancelling %s: %s", st->names [i], tr_strerror (rc));
        tr_portal_close (&portals [i]);
    }
    return 0;
}

START_TEST (test_a_root_finds_two_worker_daemons_by_name_and_uses_all_they_export)
{
    tu_subreaper ();
    tu_proc_t broker, a, b;
    s_broker_start (&broker);
    s_daemon_start (&a, WORKER_PATH, "w-a", &broker);
    s_daemon_start (&b, WORKER_PATH, "w-b", &broker);
    root_state_t st = { .registry = broker.endpoint, .workers = { &a, &b },
                        .names = { "w-a", "w-b" } };
    ck_assert_int_eq (s_root_run (&st, s_use_workers), 0);
    ck_assert_msg (!st.failure [0], "%s", st.failure);
    //  Cancelled by a peer: a daemon exits 0.
    tu_proc_expect_exit (&a, 5000, 0);
    tu_proc_expect_exit (&b, 5000, 0);
    tu_proc_stop (&broker, 0);
    tu_assert_no_procs_left (0);
}
END_TEST

//  Wait for the first worker, and leave it serving.
static int
s_find_first (tr_actor_t *self, void *arg)
{
    root_state_t *st = arg;
    tr_portal_t *p = NULL;
    int rc = tr_wait_for_actor (self, st->names [0], tu_ms (5000), &p);
    if (rc)
        s_fail (st, "tr_wait_for_actor (%s): %s", st->names [0], tr_strerror (rc));
    tr_portal_close (&p);
    return 0;
}

static int
s_find_gone (tr_actor_t *self, void *arg)
{
    root_state_t *st = arg;
    tr_portal_t *p = NULL;
    st->gone_rc = tr_find_actor (self, st->names [0], &p);
    tr_portal_close (&p);
    return 0;
}

START_TEST (test_a_worker_stopped_by_sigterm_is_no_longer_found)
{
    tu_subreaper ();
    tu_proc_t broker, a;
    s_broker_start (&broker);
    s_daemon_start (&a, WORKER_PATH, "w-a", &broker);
    root_state_t st = { .registry = broker.endpoint, .workers = { &a }, .names = { "w-a" } };
    ck_assert_int_eq (s_root_run (&st, s_find_first), 0);
    ck_assert_msg (!st.failure [0], "%s", st.failure);
    tu_proc_stop (&a, 143);
    //  It unregistered on its way out: no lease to wait for.
    ck_assert_int_eq (s_root_run (&st, s_find_gone), 0);
    ck_assert_tr_rc (st.gone_rc, TR_ENOTFOUND);
    tu_proc_stop (&broker, 0);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  The broker down, and back

//  Wait for the first name, and say how long it took and how it ended.
static int
s_wait_alone (tr_actor_t *self, void *arg)
{
    root_state_t *st = arg;
    tr_portal_t *p = NULL;
    long long start = tu_now_ms ();
    st->wait_rc = tr_wait_for_actor (self, st->names [0], st->wait_ms, &p);
    st->waited = tu_now_ms () - start;
    if (p && !s_streq (tr_portal_uid (p), st->workers [0]->uid))
        s_fail (st, "found %s, not %s", tr_portal_uid (p), st->workers [0]->uid);
    tr_portal_close (&p);
    return 0;
}

START_TEST (test_a_root_whose_broker_is_down_waits_no_longer_than_its_timeout)
{
    tu_subreaper ();
    tu_proc_t broker;
    s_broker_start (&broker);
    tu_proc_stop (&broker, 0);      //  its endpoint now answers nobody
    root_state_t st = { .registry = broker.endpoint, .names = { "w-a" }, .wait_ms = 1000 };
    ck_assert_int_eq (s_root_run (&st, s_wait_alone), 0);
    ck_assert_tr_rc (st.wait_rc, TR_ETIMEDOUT);
    ck_assert_int_ge (st.waited, 1000);
    ck_assert_msg (st.waited < tu_ms (2000), "waited %lld ms", st.waited);
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_a_root_with_no_registry_is_told_so_at_once)
{
    root_state_t st = { .registry = "none", .names = { "w-a" }, .wait_ms = 5000 };
    ck_assert_int_eq (s_root_run (&st, s_wait_alone), 0);
    ck_assert_tr_rc (st.wait_rc, TR_ECLOSED);
    ck_assert_msg (st.waited < tu_ms (250), "waited %lld ms", st.waited);
}
END_TEST

START_TEST (test_a_worker_registers_again_with_a_broker_restarted_at_the_same_endpoint)
{
    tu_subreaper ();
    tu_proc_t broker, a;
    //  A short lease: the worker renews every 200 ms, so it finds the
    //  broker gone soon, and tries it again every second.
    s_broker_serve (&broker, NULL, "600");
    s_daemon_start (&a, WORKER_PATH, "w-a", &broker);
    root_state_t st = { .registry = broker.endpoint, .workers = { &a }, .names = { "w-a" },
                        .wait_ms = tu_ms (5000) };
    ck_assert_int_eq (s_root_run (&st, s_wait_alone), 0);
    ck_assert_tr_ok (st.wait_rc);
    char endpoint [256];
    snprintf (endpoint, sizeof endpoint, "%s", broker.endpoint);
    tu_proc_stop (&broker, 0);
    s_broker_serve (&broker, endpoint, "600");
    st.registry = endpoint;
    ck_assert_int_eq (s_root_run (&st, s_wait_alone), 0);
    ck_assert_tr_ok (st.wait_rc);
    ck_assert_msg (!st.failure [0], "%s", st.failure);
    tu_proc_stop (&a, 143);
    tu_proc_stop (&broker, 0);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  The showcase over daemons found in the registry

//  A directory of 40 files: file k has k + 1 lines of "alpha beta gamma",
//  so 820 lines and 2460 words in all.
static void
s_make_files (char *dir, size_t size)
{
    const char *tmp = getenv ("TMPDIR");
    snprintf (dir, size, "%s/troupe-test-examples-%d", tmp && *tmp? tmp: "/tmp", (int) getpid ());
    ck_assert_int_eq (mkdir (dir, 0700), 0);
    for (int k = 0; k < 40; k++) {
        char path [512];
        snprintf (path, sizeof path, "%s/file-%02d.txt", dir, k);
        FILE *f = fopen (path, "w");
        ck_assert_ptr_nonnull (f);
        for (int line = 0; line <= k; line++)
            fputs ("alpha beta gamma\n", f);
        ck_assert_int_eq (fclose (f), 0);
    }
}

static void
s_remove_files (const char *dir)
{
    for (int k = 0; k < 40; k++) {
        char path [512];
        snprintf (path, sizeof path, "%s/file-%02d.txt", dir, k);
        unlink (path);
    }
    rmdir (dir);
}

//  Run the showcase with args to its end; it must exit 0.
static void
s_showcase (tu_proc_t *p, const char *const *args)
{
    tu_proc_spawn (p, SHOWCASE_PATH, args);
    tu_proc_expect_exit (p, 30000, 0);
}

//  The summary's second line: "  MB, lines, words, checksum".
static void
s_totals_line (const tu_proc_t *p, char *line, size_t size)
{
    const char *start = strstr (p->out_text, "\n  ");
    ck_assert_msg (start != NULL, "no totals in '%s'", p->out_text);
    start += 1;
    size_t len = strcspn (start, "\n");
    snprintf (line, size, "%.*s", (int) len, start);
}

START_TEST (test_the_showcase_runs_its_job_on_daemons_it_finds_in_the_registry)
{
    tu_subreaper ();
    char dir [256];
    s_make_files (dir, sizeof dir);
    tu_proc_t broker, scan1, scan2, found, named, spawned;
    s_broker_start (&broker);
    s_daemon_start (&scan1, SHOWCASE_PATH, "scan-1", &broker);
    s_daemon_start (&scan2, SHOWCASE_PATH, "scan-2", &broker);

    //  By name: each is waited for, so they need not be registered yet.
    const char *by_name [] = { "--registry", broker.endpoint, "--workers", "scan-1,scan-2",
                               "--dir", dir, NULL };
    s_showcase (&named, by_name);
    ck_assert_contains (named.out_text, "read 40 of 40 files in ");
    ck_assert_contains (named.out_text, "820 lines, 2460 words, checksum ");
    ck_assert_contains (named.out_text, "  0 files unreadable\n");
    char want [600];
    snprintf (want, sizeof want, "── %s (pid %d at %s): ", scan1.uid, (int) scan1.pid, scan1.endpoint);
    ck_assert_contains (named.out_text, want);
    snprintf (want, sizeof want, "└── %s (pid %d at %s): ", scan2.uid, (int) scan2.pid, scan2.endpoint);
    ck_assert_contains (named.out_text, want);
    snprintf (want, sizeof want, "workers from %s\n", broker.endpoint);
    ck_assert_contains (named.err_text, want);

    //  Without names: every scan* registered, the same two.
    const char *by_prefix [] = { "--registry", broker.endpoint, "--dir", dir, NULL };
    s_showcase (&found, by_prefix);
    ck_assert_contains (found.out_text, scan1.uid);
    ck_assert_contains (found.out_text, scan2.uid);

    //  The same totals and checksum as workers it starts itself.
    const char *spawn [] = { "--workers", "2", "--dir", dir, NULL };
    s_showcase (&spawned, spawn);
    ck_assert_contains (spawned.out_text, "── worker-1@");
    char line [3][256];
    s_totals_line (&named, line [0], sizeof line [0]);
    s_totals_line (&found, line [1], sizeof line [1]);
    s_totals_line (&spawned, line [2], sizeof line [2]);
    ck_assert_str_eq (line [0], line [2]);
    ck_assert_str_eq (line [1], line [2]);

    //  The daemons served every job and serve on until stopped.
    ck_assert_int_ge (scan1.pidfd, 0);
    ck_assert_int_ge (scan2.pidfd, 0);
    tu_proc_stop (&scan1, 143);
    tu_proc_stop (&scan2, 143);
    tu_proc_stop (&broker, 0);
    s_remove_files (dir);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --fail-one: one worker raises midway; the root prints the remote error
//  with its traceback, cancels the others (each acknowledges) and exits 1.
START_TEST (test_the_showcase_with_fail_one_reports_the_remote_error_and_exits_non_zero)
{
    tu_subreaper ();
    char dir [256];
    s_make_files (dir, sizeof dir);
    tu_proc_t p;
    const char *args [] = { "--workers", "3", "--dir", dir, "--fail-one", NULL };
    tu_proc_spawn (&p, SHOWCASE_PATH, args);
    tu_proc_expect_exit (&p, 30000, 1);
    //  The boxed error: type and message, where it was raised, and the
    //  worker's own frames, the raising function by name.
    ck_assert_contains (p.err_text, "failed; the job stops (remote actor raised an error");
    char want [512];
    snprintf (want, sizeof want, "ScanError: worker-1 failed on purpose (--fail-one) at %s/file-", dir);
    ck_assert_contains (p.err_text, want);
    ck_assert_contains (p.err_text, "  raised in worker-1@");
    ck_assert_contains (p.err_text, "  remote traceback:\n");
    ck_assert_contains (p.err_text, "(showcase_fail+0x");
    //  The two others, cancelled as actors, each acknowledged.
    const char *at = p.err_text;
    int acked = 0;
    while ((at = strstr (at, ": cancelled, acknowledged\n"))) {
        acked++;
        at++;
    }
    ck_assert_int_eq (acked, 2);
    ck_assert_contains (p.err_text, "showcase: worker worker-2@");
    ck_assert_contains (p.err_text, "showcase: worker worker-3@");
    ck_assert_contains (p.out_text, "failed after ");
    s_remove_files (dir);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --restart: one worker is killed midway; its supervisor restarts it,
//  its unanswered batches go again, and the job ends as one that nothing
//  happened to: exit 0, the same totals and checksum.
START_TEST (test_the_showcase_with_restart_completes_with_the_right_totals)
{
    tu_subreaper ();
    char dir [256];
    s_make_files (dir, sizeof dir);
    tu_proc_t restarted, plain;
    const char *args [] = { "--workers", "3", "--dir", dir, "--restart", NULL };
    s_showcase (&restarted, args);
    const char *plain_args [] = { "--workers", "3", "--dir", dir, NULL };
    s_showcase (&plain, plain_args);
    //  The death, with its cause, and the restart.
    ck_assert_contains (restarted.err_text, "died; its supervisor restarts it and its ");
    ck_assert_contains (restarted.err_text, "was killed by signal 9 (Killed)");
    ck_assert_contains (restarted.err_text, "TR-RESTART worker-1@");
    ck_assert_contains (restarted.err_text, "restarting (one_for_one)");
    ck_assert_contains (restarted.err_text, "showcase: restarted as worker-1@");
    ck_assert_contains (restarted.out_text, "read 40 of 40 files in ");
    ck_assert_contains (restarted.out_text, ", restarted 1 time\n");
    char line [2][256];
    s_totals_line (&restarted, line [0], sizeof line [0]);
    s_totals_line (&plain, line [1], sizeof line [1]);
    ck_assert_str_eq (line [0], line [1]);
    s_remove_files (dir);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  examples/worker's command line

START_TEST (test_the_worker_without_tr_daemon_prints_its_usage_and_exits_2)
{
    tu_subreaper ();
    tu_proc_t p;
    tu_proc_spawn (&p, WORKER_PATH, NULL);
    tu_proc_expect_exit (&p, 5000, 2);
    ck_assert_contains (p.err_text, "usage: worker --tr-daemon --tr-name NAME --tr-registry ");
    ck_assert_str_eq (p.out_text, "");
    const char *help [] = { "--help", NULL };
    tu_proc_spawn (&p, WORKER_PATH, help);
    tu_proc_expect_exit (&p, 5000, 0);
    ck_assert_contains (p.out_text, "usage: worker --tr-daemon");
    ck_assert_str_eq (p.err_text, "");
    tu_assert_no_procs_left (0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("examples");
    TCase *tc = tu_tcase (suite, "worker daemons", 60);
    tcase_add_test (tc, test_a_root_finds_two_worker_daemons_by_name_and_uses_all_they_export);
    tcase_add_test (tc, test_a_worker_stopped_by_sigterm_is_no_longer_found);
    tcase_add_test (tc, test_the_worker_without_tr_daemon_prints_its_usage_and_exits_2);
    tc = tu_tcase (suite, "broker down", 60);
    tcase_add_test (tc, test_a_root_whose_broker_is_down_waits_no_longer_than_its_timeout);
    tcase_add_test (tc, test_a_root_with_no_registry_is_told_so_at_once);
    tcase_add_test (tc, test_a_worker_registers_again_with_a_broker_restarted_at_the_same_endpoint);
    tc = tu_tcase (suite, "showcase", 90);
    tcase_add_test (tc, test_the_showcase_runs_its_job_on_daemons_it_finds_in_the_registry);
    tcase_add_test (tc, test_the_showcase_with_fail_one_reports_the_remote_error_and_exits_non_zero);
    tcase_add_test (tc, test_the_showcase_with_restart_completes_with_the_right_totals);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
