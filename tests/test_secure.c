/*  =========================================================================
    test_secure.c - CURVE keys, the ZAP handler and secure defaults

    Keys are made with tr_keygen in a fresh directory. A root with keys
    spawns, calls, streams and cancels as without them; a daemon with keys
    serves a root of its deployment and refuses one of another deployment,
    a plaintext peer and a CURVE peer whose key is not allowed; without
    keys a daemon refuses to bind a non-loopback address unless told
    --tr-insecure. No secret key is ever printed.
    =========================================================================
*/
#include "testutil.h"
#include <czmq.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>


typedef struct {
    pid_t pid;
    int pidfd;
    char uid [256];
    char endpoint [256];
    char log [128];             //  the daemon's stderr
} daemon_t;

//  A fresh key directory under $TMPDIR (or /tmp).
static void
s_keys (char *dir, size_t size)
{
    snprintf (dir, size, "/tmp/troupe-test-keys-XXXXXX");
    ck_assert_ptr_nonnull (mkdtemp (dir));
    ck_assert_int_eq (rmdir (dir), 0);
    ck_assert_tr_ok (tr_keygen (dir));
}

//  The z85 secret key of a key directory.
static void
s_secret_txt (const char *dir, char *secret, size_t size)
{
    char path [256];
    snprintf (path, sizeof path, "%s/troupe.key", dir);
    zcert_t *cert = zcert_load (path);
    ck_assert_ptr_nonnull (cert);
    snprintf (secret, size, "%s", zcert_secret_txt (cert));
    zcert_destroy (&cert);
}

static void
s_public_bin (const char *dir, uint8_t *key)
{
    char path [256];
    snprintf (path, sizeof path, "%s/troupe.key", dir);
    zcert_t *cert = zcert_load (path);
    ck_assert_ptr_nonnull (cert);
    memcpy (key, zcert_public_key (cert), 32);
    zcert_destroy (&cert);
}

static void
s_rm_keys (const char *dir)
{
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq (system (cmd), 0);
}

//  Start tests/worker as a daemon with extra arguments, its stderr in a
//  file; with want_line, read the line it prints once bound (5 s at most).
static void
s_daemon_start (daemon_t *d, char **extra, bool want_line)
{
    int out [2];
    ck_assert_int_eq (pipe2 (out, O_CLOEXEC), 0);
    snprintf (d->log, sizeof d->log, "/tmp/troupe-test-secure-%d-%d.log", (int) getpid (), rand ());
    int log = open (d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge (log, 0);
    char *argv [16] = { (char *) tu_worker_path (), "--tr-daemon", "--tr-name", "secd" };
    int argc = 4;
    for (int i = 0; extra [i] && argc < 15; i++)
        argv [argc++] = extra [i];
    argv [argc] = NULL;
    d->pid = tu_spawn_tied (argv, out [1], log, NULL);
    ck_assert_int_ge (d->pid, 0);
    close (log);
    close (out [1]);
    d->pidfd = (int) syscall (SYS_pidfd_open, d->pid, 0);
    ck_assert_int_ge (d->pidfd, 0);
    char line [600];
    tu_read_first_line (out [0], line, sizeof line, 5000);
    if (want_line)
        ck_assert_int_eq (sscanf (line, "%255s %255s", d->uid, d->endpoint), 2);
}

//  Wait for the daemon to exit (SIGTERM first if sig); its wait status.
static int
s_daemon_end (daemon_t *d, bool sig)
{
    if (sig)
        kill (d->pid, SIGTERM);
    struct pollfd item = { d->pidfd, POLLIN, 0 };
    int status = -1;
    if (poll (&item, 1, tu_ms (5000)) == 1)
        waitpid (d->pid, &status, 0);
    close (d->pidfd);
    return status;
}

//  The daemon's stderr, and the file removed.
static void
s_daemon_log (daemon_t *d, char *buf, size_t size)
{
    FILE *file = fopen (d->log, "r");
    ck_assert_ptr_nonnull (file);
    size_t n = fread (buf, 1, size - 1, file);
    buf [n] = 0;
    fclose (file);
    unlink (d->log);
}

//  --------------------------------------------------------------------------

typedef struct {
    const char *keys;
    int start_rc, add_rc, count_rc, result_rc, cancel_rc, cancelled_rc, env_rc;
    int64_t sum, values, last;
    char env [512];
} child_state_t;

static int
s_child_with_keys (tr_actor_t *self, void *arg)
{
    child_state_t *st = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p = NULL;
    st->start_rc = tr_nursery_start_actor (n, "w", NULL, &p);
    if (st->start_rc == 0) {
        tr_args_t *args = tr_pack ("[II]", (int64_t) 40, (int64_t) 2);
        tr_value_t *value = NULL;
        st->add_rc = tr_portal_run (p, "add", args, &value);
        if (st->add_rc == 0)
            tr_unpack (tr_value_object (value), "I", &st->sum);
        tr_value_destroy (&value);
        tr_args_destroy (&args);
        //  The child got the directory, not a key.
        args = tr_pack ("[s]", "TROUPE_KEYS");
        st->env_rc = tr_portal_run (p, "getenv", args, &value);
        const char *text = NULL;
        if (st->env_rc == 0 && tr_unpack (tr_value_object (value), "s", &text) == 0 && text)
            snprintf (st->env, sizeof st->env, "%s", text);
        tr_value_destroy (&value);
        tr_args_destroy (&args);
        //  A stream of five values.
        tr_context_t *c = NULL;
        args = tr_pack ("[i]", 5);
        st->count_rc = tr_portal_open_context (p, "ctx_count", args, &c, NULL);
        tr_args_destroy (&args);
        if (st->count_rc == 0) {
            tr_stream_t *s = NULL;
            const msgpack_object *v;
            if (tr_context_open_stream (c, &s) == 0)
                while (tr_stream_recv (s, &v, tu_ms (5000)) == 0) {
                    st->values++;
                    st->last = v->via.i64;
                }
            st->result_rc = tr_context_result (c, NULL);
            tr_context_close (&c);
        }
        //  A context that never ends by itself, cancelled.
        args = tr_pack ("[]");
        st->cancel_rc = tr_portal_open_context (p, "ctx_flood", args, &c, NULL);
        tr_args_destroy (&args);
        if (st->cancel_rc == 0) {
            st->cancel_rc = tr_context_cancel (c);
            st->cancelled_rc = tr_context_result (c, NULL);
            tr_context_close (&c);
        }
    }
    return tr_nursery_close (&n, NULL)? 1: 0;
}

START_TEST (test_a_root_with_keys_calls_streams_and_cancels_its_child)
{
    tu_subreaper ();
    unsetenv ("TROUPE_KEYS");
    char dir [64], secret [64];
    s_keys (dir, sizeof dir);
    s_secret_txt (dir, secret, sizeof secret);
    child_state_t st = { .keys = dir };
    tr_config_t config = tu_config ();
    config.size = sizeof config;
    config.keys = dir;
    tu_capture_t cap;
    tu_capture_start (&cap);
    int rc = tr_run (&config, 0, NULL, s_child_with_keys, &st);
    char err [16384];
    tu_capture_end (&cap, err, sizeof err);
    ck_assert_int_eq (rc, 0);
    ck_assert_tr_ok (st.start_rc);
    ck_assert_tr_ok (st.add_rc);
    ck_assert_int_eq (st.sum, 42);
    ck_assert_tr_ok (st.env_rc);
    char *real = realpath (dir, NULL);
    ck_assert_str_eq (st.env, real);
    free (real);
    ck_assert_tr_ok (st.count_rc);
    ck_assert_int_eq (st.values, 5);
    ck_assert_int_eq (st.last, 4);
    ck_assert_tr_ok (st.result_rc);
    ck_assert_tr_ok (st.cancel_rc);
    ck_assert_tr_rc (st.cancelled_rc, TR_ECANCELED);
    ck_assert_msg (!strstr (err, secret), "the secret key was printed");
    ck_assert_ptr_null (getenv ("TROUPE_KEYS"));
    s_rm_keys (dir);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------

typedef struct {
    const char *endpoint;
    int open_ms;
    int open_rc, run_rc;
    int64_t sum;
} call_state_t;

static int
s_call (tr_actor_t *self, void *arg)
{
    call_state_t *st = arg;
    tr_portal_t *p = NULL;
    st->open_rc = tr_portal_open (self, st->endpoint, tu_ms (st->open_ms), &p);
    if (st->open_rc)
        return 0;
    tr_args_t *args = tr_pack ("[II]", (int64_t) 40, (int64_t) 2);
    tr_value_t *value = NULL;
    st->run_rc = tr_portal_run (p, "add", args, &value);
    tr_args_destroy (&args);
    if (st->run_rc == 0)
        tr_unpack (tr_value_object (value), "I", &st->sum);
    tr_value_destroy (&value);
    tr_portal_close (&p);
    return 0;
}

//  A root with keys dir calls add on endpoint; returns the open's rc.
static int
s_root_calls (const char *keys, const char *endpoint, int open_ms, int64_t *sum)
{
    call_state_t st = { .endpoint = endpoint, .open_ms = open_ms };
    tr_config_t config = tu_config ();
    config.size = sizeof config;
    config.keys = keys;
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_call, &st), 0);
    if (st.open_rc == 0) {
        ck_assert_tr_ok (st.run_rc);
        *sum = st.sum;
    }
    return st.open_rc;
}

START_TEST (test_a_daemon_with_keys_serves_its_deployment_and_refuses_another)
{
    tu_subreaper ();
    unsetenv ("TROUPE_KEYS");
    char dir [64], other [64], secret [64], other_secret [64];
    s_keys (dir, sizeof dir);
    s_keys (other, sizeof other);
    s_secret_txt (dir, secret, sizeof secret);
    s_secret_txt (other, other_secret, sizeof other_secret);
    daemon_t d;
    char *extra [] = { "--tr-keys", dir, "--tr-bind", "tcp://127.0.0.1:*", NULL };
    setenv ("TROUPE_LOGLEVEL", "debug", 1);
    s_daemon_start (&d, extra, true);
    unsetenv ("TROUPE_LOGLEVEL");

    int64_t sum = 0;
    ck_assert_tr_ok (s_root_calls (dir, d.endpoint, 5000, &sum));
    ck_assert_int_eq (sum, 42);
    //  Another deployment's keys: the handshake is refused, the open
    //  times out.
    ck_assert_tr_rc (s_root_calls (other, d.endpoint, 700, &sum), TR_ETIMEDOUT);
    //  No keys at all: the same.
    ck_assert_tr_rc (s_root_calls (NULL, d.endpoint, 500, &sum), TR_ETIMEDOUT);
    //  It still serves its own.
    sum = 0;
    ck_assert_tr_ok (s_root_calls (dir, d.endpoint, 5000, &sum));
    ck_assert_int_eq (sum, 42);

    int status = s_daemon_end (&d, true);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 143, "status 0x%x", status);
    char log [65536];
    s_daemon_log (&d, log, sizeof log);
    //  Its key cannot be known (its handshake fails before it is sent),
    //  its address is.
    ck_assert_msg (strstr (log, "TR-CURVE") && strstr (log, "refused")
                   && strstr (log, "tcp://127.0.0.1"),
                   "the daemon did not log the refusal: %s", log);
    ck_assert_msg (!strstr (log, secret) && !strstr (log, other_secret),
                   "a secret key was printed");
    s_rm_keys (dir);
    s_rm_keys (other);
    tu_assert_no_procs_left (0);
}
END_TEST

//  A raw DEALER (curve: with a key pair of its own) sends something like
//  a hello and waits for any answer.
static bool
s_raw_peer_answered (const char *endpoint, const uint8_t *server_key, int wait_ms,
                     char *public_txt)
{
    void *zctx = zmq_ctx_new ();
    void *dealer = zmq_socket (zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &zero, sizeof zero);
    if (server_key) {
        char pub [41], sec [41];
        ck_assert_int_eq (zmq_curve_keypair (pub, sec), 0);
        memcpy (public_txt, pub, 41);
        zmq_setsockopt (dealer, ZMQ_CURVE_SERVERKEY, server_key, 32);
        zmq_setsockopt (dealer, ZMQ_CURVE_PUBLICKEY, pub, 40);
        zmq_setsockopt (dealer, ZMQ_CURVE_SECRETKEY, sec, 40);
    }
    ck_assert_int_eq (zmq_connect (dealer, endpoint), 0);
    //  Not even a valid hello: whatever it is, it must reach no one.
    zmq_send (dealer, "\x94\x00\x00\xa4\x65\x63\x68\x6f", 8, ZMQ_DONTWAIT);
    zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
    bool answered = zmq_poll (&item, 1, tu_ms (wait_ms)) == 1;
    zmq_close (dealer);
    zmq_ctx_term (zctx);
    return answered;
}

START_TEST (test_a_plaintext_peer_and_an_unknown_key_get_nothing_from_a_daemon_with_keys)
{
    tu_subreaper ();
    unsetenv ("TROUPE_KEYS");
    char dir [64], secret [64];
    s_keys (dir, sizeof dir);
    s_secret_txt (dir, secret, sizeof secret);
    daemon_t d;
    char *extra [] = { "--tr-keys", dir, "--tr-bind", "tcp://127.0.0.1:*", NULL };
    s_daemon_start (&d, extra, true);
    //  A daemon without keys answers the same frame with an error: so
    //  silence here means the frame was stopped at the handshake.
    char raw_public [41] = "";
    ck_assert_msg (!s_raw_peer_answered (d.endpoint, NULL, 500, NULL),
                   "a plaintext peer was answered");
    uint8_t server [32];
    s_public_bin (dir, server);
    ck_assert_msg (!s_raw_peer_answered (d.endpoint, server, 500, raw_public),
                   "a CURVE peer with a key not allowed was answered");
    int64_t sum = 0;
    ck_assert_tr_ok (s_root_calls (dir, d.endpoint, 5000, &sum));
    ck_assert_int_eq (sum, 42);
    int status = s_daemon_end (&d, true);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 143, "status 0x%x", status);
    char log [65536];
    s_daemon_log (&d, log, sizeof log);
    ck_assert_msg (strstr (log, "TR-CURVE") && strstr (log, "refused")
                   && strstr (log, raw_public),
                   "the unknown key was not logged: %s", log);
    ck_assert_msg (!strstr (log, secret), "the secret key was printed");
    s_rm_keys (dir);
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_a_daemon_without_keys_answers_a_raw_peer)
{
    //  The control for the test above: the same frame, no keys anywhere.
    tu_subreaper ();
    unsetenv ("TROUPE_KEYS");
    daemon_t d;
    char *extra [] = { "--tr-bind", "tcp://127.0.0.1:*", NULL };
    s_daemon_start (&d, extra, true);
    ck_assert_msg (s_raw_peer_answered (d.endpoint, NULL, 5000, NULL),
                   "no answer without keys");
    s_daemon_end (&d, true);
    char log [65536];
    s_daemon_log (&d, log, sizeof log);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------

START_TEST (test_a_daemon_without_keys_refuses_to_bind_every_address)
{
    tu_subreaper ();
    unsetenv ("TROUPE_KEYS");
    daemon_t d;
    char *extra [] = { "--tr-bind", "tcp://0.0.0.0:*", NULL };
    s_daemon_start (&d, extra, false);
    int status = s_daemon_end (&d, false);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) != 0, "status 0x%x", status);
    char log [65536];
    s_daemon_log (&d, log, sizeof log);
    ck_assert_msg (strstr (log, "troupe keygen") && strstr (log, "--tr-insecure"),
                   "the refusal does not say how to make keys: %s", log);

    char *star [] = { "--tr-bind", "tcp://*:*", NULL };
    s_daemon_start (&d, star, false);
    status = s_daemon_end (&d, false);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) != 0, "status 0x%x", status);
    s_daemon_log (&d, log, sizeof log);
    ck_assert_msg (strstr (log, "troupe keygen"), "%s", log);
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_a_daemon_told_insecure_binds_every_address)
{
    tu_subreaper ();
    unsetenv ("TROUPE_KEYS");
    daemon_t d;
    char *extra [] = { "--tr-insecure", "--tr-bind", "tcp://0.0.0.0:*", NULL };
    s_daemon_start (&d, extra, true);
    ck_assert (strncmp (d.endpoint, "tcp://0.0.0.0:", 14) == 0);
    int status = s_daemon_end (&d, true);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 143, "status 0x%x", status);
    char log [65536];
    s_daemon_log (&d, log, sizeof log);
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_a_daemon_with_keys_binds_every_address)
{
    tu_subreaper ();
    unsetenv ("TROUPE_KEYS");
    char dir [64];
    s_keys (dir, sizeof dir);
    //  Through the environment, as a child would get it.
    setenv ("TROUPE_KEYS", dir, 1);
    daemon_t d;
    char *extra [] = { "--tr-bind", "tcp://0.0.0.0:*", NULL };
    s_daemon_start (&d, extra, true);
    unsetenv ("TROUPE_KEYS");
    char endpoint [300];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%s", strrchr (d.endpoint, ':') + 1);
    int64_t sum = 0;
    ck_assert_tr_ok (s_root_calls (dir, endpoint, 5000, &sum));
    ck_assert_int_eq (sum, 42);
    s_daemon_end (&d, true);
    char log [65536];
    s_daemon_log (&d, log, sizeof log);
    s_rm_keys (dir);
    tu_assert_no_procs_left (0);
}
END_TEST

START_TEST (test_keys_that_cannot_be_read_stop_the_start)
{
    unsetenv ("TROUPE_KEYS");
    tr_config_t config = tu_config ();
    config.size = sizeof config;
    config.keys = "/nonexistent/troupe-keys";
    call_state_t st = { .endpoint = "ipc:///nowhere" };
    tu_capture_t cap;
    tu_capture_start (&cap);
    int rc = tr_run (&config, 0, NULL, s_call, &st);
    char err [4096];
    tu_capture_end (&cap, err, sizeof err);
    ck_assert_tr_rc (rc, TR_EINVAL);
    ck_assert_msg (strstr (err, "TR-CURVE"), "%s", err);
}
END_TEST

static int
s_endpoint_root (tr_actor_t *self, void *arg)
{
    snprintf (arg, 512, "%s", tr_actor_endpoint (self));
    return 0;
}

START_TEST (test_ipc_endpoints_live_in_a_directory_only_their_user_can_enter)
{
    char tmp [] = "/tmp/trs-XXXXXX";
    ck_assert_ptr_nonnull (mkdtemp (tmp));
    setenv ("TMPDIR", tmp, 1);
    char dir [256], endpoint [512] = "";
    snprintf (dir, sizeof dir, "%s/troupe-%u", tmp, (unsigned) getuid ());
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_endpoint_root, endpoint), 0);
    char want [300];
    snprintf (want, sizeof want, "ipc://%s/", dir);
    ck_assert_msg (strncmp (endpoint, want, strlen (want)) == 0, "endpoint %s", endpoint);
    struct stat st;
    ck_assert_int_eq (stat (dir, &st), 0);
    ck_assert_int_eq (st.st_mode & 0777, 0700);
    ck_assert_int_eq (st.st_uid, getuid ());
    //  A directory others may enter is refused, not used.
    ck_assert_int_eq (chmod (dir, 0755), 0);
    tu_capture_t cap;
    tu_capture_start (&cap);
    int rc = tr_run (&config, 0, NULL, s_endpoint_root, endpoint);
    char err [4096];
    tu_capture_end (&cap, err, sizeof err);
    ck_assert_tr_rc (rc, TR_EINVAL);
    ck_assert_msg (strstr (err, "TR-IPC") && strstr (err, "0700"), "%s", err);
    rmdir (dir);
    rmdir (tmp);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("secure");
    TCase *tc = tu_tcase (suite, "secure", 30);
    tcase_add_test (tc, test_a_root_with_keys_calls_streams_and_cancels_its_child);
    tcase_add_test (tc, test_a_daemon_with_keys_serves_its_deployment_and_refuses_another);
    tcase_add_test (tc, test_a_plaintext_peer_and_an_unknown_key_get_nothing_from_a_daemon_with_keys);
    tcase_add_test (tc, test_a_daemon_without_keys_answers_a_raw_peer);
    tcase_add_test (tc, test_a_daemon_without_keys_refuses_to_bind_every_address);
    tcase_add_test (tc, test_a_daemon_told_insecure_binds_every_address);
    tcase_add_test (tc, test_a_daemon_with_keys_binds_every_address);
    tcase_add_test (tc, test_keys_that_cannot_be_read_stop_the_start);
    tcase_add_test (tc, test_ipc_endpoints_live_in_a_directory_only_their_user_can_enter);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
