/*  =========================================================================
    bench_daemon_churn.c - a daemon on which portals come and go, troupe
    against raw libzmq

    Figure daemon_churn: a daemon (this binary with --tr-daemon, on ipc)
    on which portals are opened, called once and closed, BENCH_N of them
    in all (10,000): BENCH_SHORT (500) from short-lived roots, each a
    process of its own that opens one portal and exits, the rest from one
    long-lived root, one after the other. The figure is the long-lived
    root's time per portal (tr_portal_open, which waits for the daemon's
    hello, a call of "nil", tr_portal_close). The raw reference in the same
    run: a fresh DEALER connected to a ROUTER in another copy of this
    binary (--raw-churn-server) on ipc, one request and its answer, the
    socket closed, as many times; the rounds of the two alternate.

    The daemon's peers (tr.info), descriptors (/proc/PID/fd) and resident
    memory (VmRSS) are read after a warm-up of 500 portals and again at
    the end; the line daemon_churn_held says whether they stayed flat:
    the same peers (the probe's own portal only) and descriptors, memory
    grown by less than 1 MiB. A daemon that kept the channel of every
    peer that ever came would hold 10,000 of them.

    This binary is also the daemon, the short-lived roots and the raw
    server.
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"
#include <poll.h>

#define DEFAULT_ROUNDS      5
#define CHURN_PORTALS       10000
#define CHURN_SHORT         500
#define CHURN_WARMUP        500
#define RSS_FLAT_KIB        1024
#define OPEN_MS             5000

static const tr_export_t s_exports [] = {
    TR_FN ("nil", bench_nil),
    TR_EXPORTS_END
};

typedef struct {
    int peers;
    int fds;
    long rss_kib;
} held_t;

typedef struct {
    bench_run_t run;
    const char *endpoint;           //  the daemon's
    pid_t pid;                      //  the daemon's
    int long_portals;               //  opened by the long-lived root
    held_t before, after;
} churn_t;

static int
s_count_fds (pid_t pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/fd", (int) pid);
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
s_rss_kib (pid_t pid)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *f = fopen (path, "r");
    long kib = -1;
    while (f && fgets (line, sizeof line, f))
        if (strncmp (line, "VmRSS:", 6) == 0)
            kib = atol (line + 6);
    if (f)
        fclose (f);
    return kib;
}

//  Open a portal on the daemon, call nil, close it.
static int
s_one_portal (tr_actor_t *self, const char *endpoint)
{
    tr_portal_t *p = NULL;
    int rc = tr_portal_open (self, endpoint, OPEN_MS, &p);
    if (rc == 0)
        rc = bench_call_nil (p);
    tr_portal_close (&p);
    return rc;
}

//  What the daemon holds, once only the probe's portal is left (or 3 s).
static int
s_held (tr_actor_t *self, tr_portal_t *probe, churn_t *st, held_t *held)
{
    int64_t deadline = tri_now_ms () + 3000;
    int rc;
    do {
        tr_value_t *value = NULL;
        rc = tr_portal_run (probe, "tr.info", NULL, &value);
        if (rc == 0 && tr_unpack (tr_value_object (value), "{s:i}", "peers", &held->peers))
            rc = TR_EFORMAT;
        tr_value_destroy (&value);
    } while (rc == 0 && held->peers != 1 && tri_now_ms () < deadline
    &&       tr_sleep (tr_actor_ctx (self), 20) == 0);
    held->fds = s_count_fds (st->pid);
    held->rss_kib = s_rss_kib (st->pid);
    return rc;
}

//  A raw DEALER's life: connect, one request and its answer, close.
static int
s_raw_one (void *ctx, const char *endpoint)
{
    static uint8_t frame [64];
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    int linger = 0, rc = -1;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    bench_curve (dealer, false);
    if (zmq_connect (dealer, endpoint) == 0
    &&  zmq_send (dealer, frame, 16, 0) >= 0
    &&  zmq_recv (dealer, frame, sizeof frame, 0) >= 0)
        rc = 0;
    zmq_close (dealer);
    return rc;
}

//  The raw server: bind a ROUTER at endpoint and answer each request with
//  itself, until killed.
static int
s_raw_server (const char *endpoint)
{
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    bench_curve (router, true);
    if (zmq_bind (router, endpoint)) {
        fprintf (stderr, "raw server: cannot bind %s: %s\n", endpoint, zmq_strerror (errno));
        return 1;
    }
    bench_echo_loop (router, false);
    zmq_close (router);
    zmq_ctx_term (ctx);
    return 0;
}

//  Start a short-lived root (this binary with --short) and reap it.
static int
s_short_root (const char *endpoint)
{
    char *argv [] = { "bench_daemon_churn", "--short", (char *) endpoint, NULL };
    pid_t pid = bench_spawn_self (argv);
    return pid < 0? -1: bench_reap (pid);
}

static int
s_root (tr_actor_t *self, void *arg)
{
    churn_t *st = arg;
    st->run.was_root = true;
    int total = st->run.per_round;
    int shorts = bench_env_int ("BENCH_SHORT", CHURN_SHORT);
    if (shorts > total)
        shorts = total;
    st->long_portals = total - shorts;
    tr_portal_t *probe = NULL;
    int rc = tr_portal_open (self, st->endpoint, OPEN_MS, &probe);
    for (int i = 0; rc == 0 && i < CHURN_WARMUP; i++)
        rc = s_one_portal (self, st->endpoint);
    if (rc == 0)
        rc = s_held (self, probe, st, &st->before);

    //  The raw side: a server bound where each fresh DEALER connects.
    char raw_endpoint [128];
    snprintf (raw_endpoint, sizeof raw_endpoint, "ipc:///tmp/bench-daemon-churn-%d.ipc",
              (int) getpid ());
    char *server_argv [] = { "bench_daemon_churn", "--raw-churn-server", raw_endpoint, NULL };
    pid_t server = rc == 0? bench_spawn_self (server_argv): -1;
    void *ctx = zmq_ctx_new ();
    if (server < 0)
        rc = -1;
    //  Its first answer says it is bound.
    for (int i = 0; rc == 0 && i < 10; i++)
        rc = s_raw_one (ctx, raw_endpoint);
    //  Short-lived roots, spread over the rounds, between the timed parts.
    int rounds = st->run.rounds;
    for (int r = 0; rc == 0 && r < rounds; r++) {
        int n = st->long_portals / rounds + (r < st->long_portals % rounds);
        int64_t start = bench_now_ns ();
        for (int i = 0; rc == 0 && i < n; i++)
            rc = s_one_portal (self, st->endpoint);
        int64_t troupe_ns = bench_now_ns () - start;
        start = bench_now_ns ();
        for (int i = 0; rc == 0 && i < n; i++)
            rc = s_raw_one (ctx, raw_endpoint);
        int64_t raw_ns = bench_now_ns () - start;
        st->run.per_round = n;
        if (rc == 0)
            bench_record (&st->run, r, troupe_ns, raw_ns);
        int m = shorts / rounds + (r < shorts % rounds);
        for (int i = 0; rc == 0 && i < m; i++)
            rc = s_short_root (st->endpoint)? -1: 0;
    }
    if (server > 0) {
        kill (server, SIGTERM);
        bench_reap (server);
    }
    unlink (raw_endpoint + 6);
    zmq_ctx_term (ctx);
    if (rc == 0)
        rc = s_held (self, probe, st, &st->after);
    if (probe)
        tr_portal_cancel_actor (probe, 3000);
    tr_portal_close (&probe);
    st->run.failed = rc != 0;
    return rc? 1: 0;
}

//  A short-lived root: one portal, and exit.
static int
s_short_main (tr_actor_t *self, void *arg)
{
    return s_one_portal (self, arg)? 1: 0;
}

//  Start the daemon and read the line it prints.
static pid_t
s_daemon_start (char *uid, char *endpoint)
{
    int out [2];
    if (pipe (out))
        return -1;
    extern char **environ;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, out [1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose (&actions, out [0]);
    char *argv [] = { "bench_daemon_churn", "--tr-daemon", "--tr-name", "churned",
                      "--tr-bind", "ipc", NULL };
    pid_t pid;
    int err = posix_spawn (&pid, "/proc/self/exe", &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy (&actions);
    close (out [1]);
    if (err) {
        close (out [0]);
        return -1;
    }
    char line [600] = "";
    size_t len = 0;
    while (!strchr (line, '\n')) {
        struct pollfd item = { out [0], POLLIN, 0 };
        if (poll (&item, 1, 5000) <= 0)
            break;
        ssize_t n = read (out [0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t) n;
        line [len] = 0;
    }
    close (out [0]);
    if (sscanf (line, "%255s %255s", uid, endpoint) != 2) {
        kill (pid, SIGKILL);
        bench_reap (pid);
        return -1;
    }
    return pid;
}

int
main (int argc, char **argv)
{
    bench_pin ();
    int code;
    if (argc == 3 && streq (argv [1], "--raw-churn-server"))
        return s_raw_server (argv [2]);
    tr_config_t config = { .name = "bench_daemon_churn", .exports = s_exports };
    for (int i = 1; i < argc; i++)
        if (streq (argv [i], "--tr-daemon"))
            return tr_run (&config, argc, argv, NULL, NULL);
    if (argc == 3 && streq (argv [1], "--short"))
        return tr_run (&config, 0, NULL, s_short_main, argv [2]);

    churn_t st;
    memset (&st, 0, sizeof st);
    bench_run_init (&st.run, "daemon_churn", "us", 1000, DEFAULT_ROUNDS, CHURN_PORTALS);
    char uid [256], endpoint [256];
    st.pid = s_daemon_start (uid, endpoint);
    if (st.pid < 0) {
        fprintf (stderr, "bench: daemon_churn: cannot start the daemon\n");
        return 1;
    }
    st.endpoint = endpoint;
    int total = st.run.per_round;
    int rc = tr_run (&config, 0, NULL, s_root, &st);
    int status = bench_reap (st.pid);
    if (bench_finish (&st.run, rc, &code))
        return code;
    if (status != 0)
        fprintf (stderr, "bench: daemon_churn: the daemon exited with %d\n", status);
    long growth = st.after.rss_kib - st.before.rss_kib;
    bool flat = st.after.peers == st.before.peers && st.after.fds == st.before.fds
             && growth < RSS_FLAT_KIB;
    printf ("bench: daemon_churn_held before: peers=%d fds=%d rss=%ld KiB after: peers=%d "
            "fds=%d rss=%ld KiB growth=%+ld KiB over %d portals (%d from short-lived roots): "
            "%s\n", st.before.peers, st.before.fds, st.before.rss_kib, st.after.peers,
            st.after.fds, st.after.rss_kib, growth, total, total - st.long_portals,
            flat? "flat": "GROWING");
    fflush (stdout);
    return 0;
}
