/*  =========================================================================
    bench.h - what the benchmarks share

    A monotonic clock, a process's CPU time, the median of a set of
    rounds, the one result line per figure that `make bench` prints, the
    frames troupe sends for a call, and the raw-libzmq reference: this
    same binary started as a ROUTER server, and the DEALER that calls it.
    Every figure is measured against plain libzmq doing the same work in
    the same run (or, where libzmq has no counterpart, against troupe
    without the burden measured), and rounds of the two alternate so that
    drift in the machine's load hits both alike.

    Each benchmark binary is also the child actor its root starts: it
    exports "nil", and its main tells the root's run from the child's.

    Result line (stdout): bench: NAME troupe=VALUE UNIT raw=VALUE UNIT ratio=R
    VALUE is time per operation, or operations per second (calls/s).
    Per-round values go to stderr. BENCH_ROUNDS and BENCH_N override the
    number of rounds and the work per round. On a machine with two CPUs
    or more the calling process (all its threads) runs on CPU 0 and every
    process it starts on CPU 1, the same for troupe and raw: where the
    scheduler happens to place the threads otherwise moves a round by
    a third either way. BENCH_PIN=0 leaves the placement to the scheduler.
    =========================================================================
*/
#ifndef BENCH_H_INCLUDED
#define BENCH_H_INCLUDED

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <czmq.h>
//  Include after troupe_private.h: the frame helpers use tri_msg.

#define BENCH_MAX_ROUNDS 101
#define BENCH_MAX_FRAME  4096       //  a raw side's buffer for small frames

//  Monotonic time in nanoseconds.
static inline int64_t
bench_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int
bench_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: (x > y? 1: 0);
}

//  CPU time a process has used so far, all its threads, in nanoseconds
//  (from /proc/PID/task/*/schedstat; threads that have ended are not
//  counted); -1 if it cannot be read.
static inline int64_t
bench_cpu_ns (pid_t pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/task", (int) pid);
    DIR *dir = opendir (path);
    if (!dir)
        return -1;
    int64_t total = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (entry->d_name [0] == '.')
            continue;
        char stat [sizeof path + sizeof entry->d_name + 16];
        snprintf (stat, sizeof stat, "%s/%s/schedstat", path, entry->d_name);
        FILE *file = fopen (stat, "r");
        long long ns = 0;
        if (file && fscanf (file, "%lld", &ns) == 1)
            total += ns;
        if (file)
            fclose (file);
    }
    closedir (dir);
    return total;
}

//  Median of n values (values is left unchanged).
static inline double
bench_median (const double *values, int n)
{
    double sorted [BENCH_MAX_ROUNDS];
    if (n <= 0)
        return 0;
    if (n > BENCH_MAX_ROUNDS)
        n = BENCH_MAX_ROUNDS;
    memcpy (sorted, values, (size_t) n * sizeof *sorted);
    qsort (sorted, (size_t) n, sizeof *sorted, bench_compare);
    return n % 2? sorted [n / 2]: (sorted [n / 2 - 1] + sorted [n / 2]) / 2;
}

//  A positive integer from the environment, or the default.
static inline int
bench_env_int (const char *name, int fallback)
{
    const char *value = getenv (name);
    int n = value? atoi (value): 0;
    return n > 0? n: fallback;
}

//  Rounds to run: BENCH_ROUNDS or the default, at most BENCH_MAX_ROUNDS.
static inline int
bench_rounds (int fallback)
{
    int n = bench_env_int ("BENCH_ROUNDS", fallback);
    return n > BENCH_MAX_ROUNDS? BENCH_MAX_ROUNDS: n;
}

//  One round's pair of values, to stderr.
static inline void
bench_round (const char *name, int round, double troupe, double raw, const char *unit)
{
    fprintf (stderr, "bench: %s round %d: troupe=%.3f %s raw=%.3f %s\n",
             name, round, troupe, unit, raw, unit);
}

//  The result line of one figure: medians of the rounds, ratio troupe/raw.
static inline void
bench_print (const char *name, const double *troupe, const double *raw,
             int rounds, const char *unit)
{
    double t = bench_median (troupe, rounds);
    double r = bench_median (raw, rounds);
    printf ("bench: %s troupe=%.3f %s raw=%.3f %s ratio=%.2f\n",
            name, t, unit, r, unit, r > 0? t / r: 0.0);
    fflush (stdout);
}

//  Put process pid (0: this one) on CPU cpu, unless pinning is off
//  (BENCH_PIN=0, or a single CPU).
static inline void
bench_pin_pid (pid_t pid, int cpu)
{
    const char *pin = getenv ("BENCH_PIN");
    if ((pin && strcmp (pin, "0") == 0) || sysconf (_SC_NPROCESSORS_ONLN) < 2)
        return;
    cpu_set_t set;
    CPU_ZERO (&set);
    CPU_SET (cpu, &set);
    if (sched_setaffinity (pid, sizeof set, &set))
        fprintf (stderr, "bench: cannot pin %d to a CPU: %s\n", (int) pid, strerror (errno));
}

//  Unless BENCH_PIN=0, pin this process: the first process (the one the
//  user started) to CPU 0, and the processes it starts, which inherit the
//  environment, to CPU 1. Call it first thing in main().
static inline void
bench_pin (void)
{
    bool started = getenv ("BENCH_PIN_STARTED") != NULL;
    if (!started)
        setenv ("BENCH_PIN_STARTED", "1", 1);
    bench_pin_pid (0, started? 1: 0);
}

//  Start this same binary with the given arguments (argv [0] included,
//  NULL-ended). Returns the pid, or -1 with errno set.
static inline pid_t
bench_spawn_self (char *const argv [])
{
    extern char **environ;
    //  The path itself: under valgrind, /proc/self/exe names the tool.
    char path [PATH_MAX];
    ssize_t size = readlink ("/proc/self/exe", path, sizeof path - 1);
    if (size <= 0)
        strcpy (path, "/proc/self/exe");
    else
        path [size] = 0;
    pid_t pid;
    int err = posix_spawn (&pid, path, NULL, NULL, argv, environ);
    if (err) {
        errno = err;
        return -1;
    }
    return pid;
}

//  Reap a child; returns its exit status, or -1 if it did not exit.
static inline int
bench_reap (pid_t pid)
{
    int status;
    while (waitpid (pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED (status)? WEXITSTATUS (status): -1;
}

//  --------------------------------------------------------------------------
//  The raw side's socket, bound where the processes it starts connect: a
//  socket file in /tmp for ipc, a free port on the loopback for tcp.

typedef struct {
    void *ctx;
    void *socket;
    char path [128];                //  the ipc socket file, to remove
    char endpoint [256];            //  where the socket is bound
} bench_bound_t;

//  When troupe runs with keys ($TROUPE_KEYS, which tr_run sets for the
//  processes it starts), the raw reference speaks CURVE too, with the
//  same key pair: the bound side is the server, the other the client.
static inline void
bench_curve (void *socket, bool server)
{
    const char *dir = getenv ("TROUPE_KEYS");
    if (!dir || !*dir)
        return;
    char path [512];
    snprintf (path, sizeof path, "%s/troupe.key", dir);
    zcert_t *cert = zcert_load (path);
    if (!cert)
        return;
    int one = 1;
    if (server)
        zmq_setsockopt (socket, ZMQ_CURVE_SERVER, &one, sizeof one);
    else {
        zmq_setsockopt (socket, ZMQ_CURVE_SERVERKEY, zcert_public_key (cert), 32);
        zmq_setsockopt (socket, ZMQ_CURVE_PUBLICKEY, zcert_public_key (cert), 32);
    }
    zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, zcert_secret_key (cert), 32);
    zcert_destroy (&cert);
}

//  With BENCH_RAW_HEARTBEAT=1 (inherited by the raw server), the raw
//  reference runs the ZMTP heartbeats troupe runs on every link, with its
//  default interval, timeout and TTL: what troupe costs beyond the
//  heartbeats that keep its peers' liveness known.
static inline void
bench_heartbeat (void *socket)
{
    const char *knob = getenv ("BENCH_RAW_HEARTBEAT");
    if (!knob || strcmp (knob, "1") != 0)
        return;
    int ivl = TRI_DEFAULT_HB_IVL_MS, ttl = TRI_DEFAULT_HB_TIMEOUT_MS;
    int timeout = ttl - ivl < ivl? ivl: ttl - ivl;
    zmq_setsockopt (socket, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt (socket, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout);
    zmq_setsockopt (socket, ZMQ_HEARTBEAT_TTL, &ttl, sizeof ttl);
}

//  Bind a new socket of this type; tag names the socket file. Returns 0,
//  or -1 with the reason on stderr.
static inline int
bench_bind (bench_bound_t *self, int type, const char *transport, const char *tag)
{
    if (strcmp (transport, "tcp") == 0)
        snprintf (self->endpoint, sizeof self->endpoint, "tcp://127.0.0.1:*");
    else {
        snprintf (self->path, sizeof self->path, "/tmp/troupe-bench-%s-%d.ipc",
                  tag, (int) getpid ());
        snprintf (self->endpoint, sizeof self->endpoint, "ipc://%s", self->path);
    }
    self->ctx = zmq_ctx_new ();
    self->socket = zmq_socket (self->ctx, type);
    if (self->socket) {
        bench_curve (self->socket, true);
        bench_heartbeat (self->socket);
    }
    if (!self->socket || zmq_bind (self->socket, self->endpoint)) {
        fprintf (stderr, "raw: cannot bind %s: %s\n", self->endpoint, zmq_strerror (errno));
        return -1;
    }
    //  The port tcp picked.
    size_t size = sizeof self->endpoint;
    zmq_getsockopt (self->socket, ZMQ_LAST_ENDPOINT, self->endpoint, &size);
    return 0;
}

//  Close what bench_bind made, as far as it got.
static inline void
bench_unbind (bench_bound_t *self)
{
    if (self->socket)
        zmq_close (self->socket);
    if (self->ctx)
        zmq_ctx_term (self->ctx);
    if (*self->path)
        unlink (self->path);
}

//  --------------------------------------------------------------------------
//  One figure, troupe against raw

//  What the root measures for one figure, and main prints.
typedef struct {
    char name [32];                 //  the figure
    const char *unit;               //  of the values: "us" or "ms"
    double unit_ns;                 //  nanoseconds in one unit
    int rounds;
    int per_round;                  //  operations timed in each round
    bool per_second;                //  values are operations per second
    bool was_root;                  //  tr_run ran us as the root
    bool failed;
    double troupe [BENCH_MAX_ROUNDS];   //  unit per operation, per round
    double raw [BENCH_MAX_ROUNDS];
} bench_run_t;

//  Keep round r, given the time each side took for its per_round
//  operations, and report it.
static inline void
bench_record (bench_run_t *run, int r, int64_t troupe_ns, int64_t raw_ns)
{
    if (run->per_second) {
        run->troupe [r] = troupe_ns > 0? run->per_round * 1e9 / troupe_ns: 0;
        run->raw [r] = raw_ns > 0? run->per_round * 1e9 / raw_ns: 0;
    }
    else {
        run->troupe [r] = troupe_ns / run->unit_ns / run->per_round;
        run->raw [r] = raw_ns / run->unit_ns / run->per_round;
    }
    bench_round (run->name, r, run->troupe [r], run->raw [r], run->unit);
}

//  Keep round r of a figure that is the time of the whole operation (a
//  tree, a cluster), not per one of its per_round parts, and report it.
static inline void
bench_record_whole (bench_run_t *run, int r, int64_t troupe_ns, int64_t raw_ns)
{
    run->troupe [r] = troupe_ns / run->unit_ns;
    run->raw [r] = raw_ns / run->unit_ns;
    bench_round (run->name, r, run->troupe [r], run->raw [r], run->unit);
}

//  A figure named name, in unit (unit_ns nanoseconds; 0 for a rate in
//  operations per second), with the rounds and the operations per round
//  from the environment or the defaults.
static inline void
bench_run_init (bench_run_t *run, const char *name, const char *unit, double unit_ns,
                int rounds, int per_round)
{
    memset (run, 0, sizeof *run);
    snprintf (run->name, sizeof run->name, "%s", name);
    run->unit = unit;
    run->unit_ns = unit_ns;
    run->per_second = unit_ns == 0;
    run->rounds = bench_rounds (rounds);
    run->per_round = bench_env_int ("BENCH_N", per_round);
}

//  Once tr_run over run returned rc: true if main must exit now with
//  *code (rc when this process served as the child actor, 1 when the run
//  failed); else the figure is printed and main goes on.
static inline bool
bench_finish (bench_run_t *run, int rc, int *code)
{
    *code = rc;
    if (!run->was_root)
        return true;                //  we served as the child actor
    if (rc || run->failed) {
        fprintf (stderr, "bench: %s failed (%d)\n", run->name, rc);
        *code = 1;
        return true;
    }
    bench_print (run->name, run->troupe, run->raw, run->rounds, run->unit);
    return false;
}

//  The function the root calls in its child: no arguments, returns nil.
static inline int
bench_nil (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx; (void) args; (void) out;
    return 0;
}

//  Call the child's nil once.
static inline int
bench_call_nil (tr_portal_t *portal)
{
    tr_value_t *result = NULL;
    int rc = tr_portal_run (portal, "nil", NULL, &result);
    tr_value_destroy (&result);
    return rc;
}

//  Call the child's nil calls times, one after the other.
static inline int
bench_call_nil_n (tr_portal_t *portal, int calls)
{
    for (int i = 0; i < calls; i++) {
        int rc = bench_call_nil (portal);
        if (rc)
            return rc;
    }
    return 0;
}

//  The size of the hello a child named name sends: its uid (name@ and a
//  uuid) and an ipc endpoint like a child's.
static inline size_t
bench_hello_size (const char *name)
{
    char uid [64], endpoint [128];
    snprintf (uid, sizeof uid, "%s@%s", name, "00000000-0000-0000-0000-000000000000");
    snprintf (endpoint, sizeof endpoint, "ipc:///tmp/troupe-%d-%.8s.ipc",
              (int) getpid (), "00000000");
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    tri_hello_t hello = { TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR, uid, endpoint,
                          (int64_t) getpid () };
    tri_msg_begin (&pk, TRI_HELLO, 0);
    tri_msg_pack_hello (&pk, &hello);
    size_t size = sbuf.size;
    msgpack_sbuffer_destroy (&sbuf);
    return size;
}

//  The frames troupe sends for one call of nil at cid: the cmd
//  [2, cid, ["nil", []]], copied into cmd, and the size of the return
//  [6, cid, nil].
static inline void
bench_call_frames (uint64_t cid, uint8_t *cmd, size_t *cmd_size, size_t *return_size)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    tri_msg_pack_cmd (&sbuf, cid, "nil", NULL);
    *cmd_size = sbuf.size;
    memcpy (cmd, sbuf.data, sbuf.size);
    msgpack_sbuffer_clear (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    tri_msg_begin (&pk, TRI_RETURN, cid);
    msgpack_pack_nil (&pk);
    *return_size = sbuf.size;
    msgpack_sbuffer_destroy (&sbuf);
}

//  The frames troupe sends for one call of fn (args, NULL for none) at
//  cid: the cmd, in a new buffer the caller frees (NULL when out of
//  memory), and the size of the return [6, cid, value] whose value is
//  args itself (echo) or nil.
static inline uint8_t *
bench_call_frames_args (uint64_t cid, const char *fn, const tr_args_t *args, bool echo,
                        size_t *cmd_size, size_t *return_size)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    tri_msg_pack_cmd (&sbuf, cid, fn, args);
    *cmd_size = sbuf.size;
    uint8_t *cmd = malloc (sbuf.size);
    if (cmd)
        memcpy (cmd, sbuf.data, sbuf.size);
    msgpack_sbuffer_clear (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    tri_msg_begin (&pk, TRI_RETURN, cid);
    if (echo && args)
        msgpack_sbuffer_write (&sbuf, tr_args_data (args), tr_args_size (args));
    else
        msgpack_pack_nil (&pk);
    *return_size = sbuf.size;
    msgpack_sbuffer_destroy (&sbuf);
    return cmd;
}

//  --------------------------------------------------------------------------
//  The raw reference of a call: a ROUTER in another process (this same
//  binary, started with --raw-server) answers every request; the bench
//  process holds the DEALER. Two kinds of answer:
//  - a frame of the return's size, with blocking zmq_send/zmq_recv into
//    and out of plain buffers on both sides (small frames: the bytes are
//    copied either way, and this is the plainest libzmq);
//  - echo: the server sends back the very message it received and the
//    client receives into a zmq_msg_t, so that neither copies the payload
//    (large frames: what a libzmq program echoing a megabyte would do).
//    The request is still sent from the client's buffer, one copy, as
//    troupe must encode its arguments into the frame it sends.

//  A ROUTER's echo of one message whose routing id part is in rid (taken,
//  closed here): receive the body, send both back. False when a call
//  fails, or the body is empty and empty_stops.
static inline bool
bench_echo_body (void *router, zmq_msg_t *rid, bool empty_stops)
{
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    int size = zmq_msg_recv (&msg, router, 0);
    bool go_on = size > 0 || (size == 0 && !empty_stops);
    go_on = go_on && zmq_msg_send (rid, router, ZMQ_SNDMORE) >= 0
                  && zmq_msg_send (&msg, router, 0) >= 0;
    zmq_msg_close (rid);
    zmq_msg_close (&msg);
    return go_on;
}

//  A ROUTER echoes every message until a call fails or (empty_stops) an
//  empty body comes.
static inline void
bench_echo_loop (void *router, bool empty_stops)
{
    while (true) {
        zmq_msg_t rid;
        zmq_msg_init (&rid);
        if (zmq_msg_recv (&rid, router, 0) < 0) {
            zmq_msg_close (&rid);
            return;
        }
        if (!bench_echo_body (router, &rid, empty_stops))
            return;
    }
}

//  The raw server: connect a ROUTER to endpoint and answer every request
//  (up to request_max bytes) with reply_size bytes, or with the request
//  itself when reply_size is 0 (echo), until an empty request. Returns
//  the exit code for main.
static inline int
bench_raw_server (const char *endpoint, size_t request_max, size_t reply_size)
{
    if (request_max < BENCH_MAX_FRAME)
        request_max = BENCH_MAX_FRAME;
    uint8_t *request = malloc (request_max);
    uint8_t *reply = malloc (reply_size? reply_size: 1);
    if (!request || !reply) {
        free (request);
        free (reply);
        return 2;
    }
    //  The bytes do not matter to libzmq, only their number.
    memset (reply, 0xc0, reply_size);
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    if (router) {
        bench_curve (router, false);
        bench_heartbeat (router);
    }
    int rc = 0;
    if (!router || zmq_connect (router, endpoint)) {
        fprintf (stderr, "raw server: cannot connect to %s: %s\n", endpoint, zmq_strerror (errno));
        rc = 1;
    }
    if (rc == 0 && reply_size == 0)
        bench_echo_loop (router, true);
    while (rc == 0 && reply_size > 0) {
        uint8_t rid [256];
        int rid_size = zmq_recv (router, rid, sizeof rid, 0);
        if (rid_size < 0)
            break;
        int size = zmq_recv (router, request, request_max, 0);
        if (size <= 0)
            break;
        if (zmq_send (router, rid, (size_t) rid_size, ZMQ_SNDMORE) < 0
        ||  zmq_send (router, reply, reply_size, 0) < 0)
            break;
    }
    if (router)
        zmq_close (router);
    zmq_ctx_term (ctx);
    free (request);
    free (reply);
    return rc;
}

//  If argv asks for the raw server (--raw-server ENDPOINT REPLY_SIZE
//  [REQUEST_MAX]), serve and return true with main's exit code in *code.
static inline bool
bench_raw_server_main (int argc, char **argv, int *code)
{
    if ((argc != 4 && argc != 5) || strcmp (argv [1], "--raw-server") != 0)
        return false;
    size_t request_max = argc == 5? (size_t) strtoul (argv [4], NULL, 10): BENCH_MAX_FRAME;
    *code = bench_raw_server (argv [2], request_max, (size_t) strtoul (argv [3], NULL, 10));
    return true;
}

//  A raw child (bench_spawn, bench_cluster): connect a DEALER to endpoint
//  with a routing id of its own, say hello in hello_size bytes, receive
//  one frame, then answer it with reply_size bytes or, with reply_size 0,
//  wait for one more frame (the stop), and exit. Returns the exit code.
static inline int
bench_raw_child (const char *endpoint, size_t hello_size, size_t reply_size)
{
    static uint8_t frame [BENCH_MAX_FRAME];
    if (hello_size > sizeof frame || reply_size > sizeof frame)
        return 2;
    memset (frame, 0xc0, sizeof frame);
    char id [64];
    snprintf (id, sizeof id, "child@%d", (int) getpid ());
    void *ctx = zmq_ctx_new ();
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    zmq_setsockopt (dealer, ZMQ_ROUTING_ID, id, strlen (id));
    int rc = 1;
    if (zmq_connect (dealer, endpoint) == 0
    &&  zmq_send (dealer, frame, hello_size, 0) >= 0
    &&  zmq_recv (dealer, frame, sizeof frame, 0) >= 0
    &&  (reply_size? zmq_send (dealer, frame, reply_size, 0)
                   : zmq_recv (dealer, frame, sizeof frame, 0)) >= 0)
        rc = 0;
    zmq_close (dealer);
    zmq_ctx_term (ctx);
    return rc;
}

typedef struct {
    bench_bound_t dealer;           //  the server connects to it
    pid_t pid;
    bool echo;                      //  the server echoes; answers go to a zmq_msg_t
    uint8_t *cmd;                   //  a real cmd frame of troupe's
    size_t cmd_size;
    uint8_t *answer;                //  where answers land, unless echo
    size_t answer_max;
} bench_raw_t;

//  Bind the DEALER and start the server, which answers cmd (taken: the
//  caller's malloc'ed frame, NULL if that failed) with frames of
//  return_size bytes, or with cmd itself when return_size is 0 (echo).
//  Returns 0, or -1 with the reason on stderr; bench_raw_close cleans up
//  either way.
static inline int
bench_raw_open (bench_raw_t *self, const char *transport, const char *tag,
                uint8_t *cmd, size_t cmd_size, size_t return_size)
{
    memset (self, 0, sizeof *self);
    self->echo = return_size == 0;
    self->cmd = cmd;
    self->cmd_size = cmd_size;
    self->answer_max = return_size > BENCH_MAX_FRAME? return_size: BENCH_MAX_FRAME;
    if (!self->echo)
        self->answer = malloc (self->answer_max);
    if (!cmd || (!self->echo && !self->answer)) {
        fprintf (stderr, "raw client: out of memory\n");
        return -1;
    }
    if (bench_bind (&self->dealer, ZMQ_DEALER, transport, tag))
        return -1;
    char reply_arg [32], request_arg [32];
    snprintf (reply_arg, sizeof reply_arg, "%zu", return_size);
    snprintf (request_arg, sizeof request_arg, "%zu", cmd_size);
    char *argv [] = { "bench", "--raw-server", self->dealer.endpoint, reply_arg,
                      request_arg, NULL };
    self->pid = bench_spawn_self (argv);
    if (self->pid < 0) {
        fprintf (stderr, "raw client: cannot spawn the server: %s\n", strerror (errno));
        return -1;
    }
    return 0;
}

//  Receive one answer.
static inline int
bench_raw_answer (bench_raw_t *self)
{
    if (!self->echo)
        return zmq_recv (self->dealer.socket, self->answer, self->answer_max, 0) < 0? -1: 0;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    int rc = zmq_msg_recv (&msg, self->dealer.socket, 0) < 0? -1: 0;
    zmq_msg_close (&msg);
    return rc;
}

//  Make calls round trips, at most depth of them outstanding at a time
//  (1: one after the other). Returns 0, or -1 with errno set.
static inline int
bench_raw_calls (bench_raw_t *self, int calls, int depth)
{
    int sent = 0;
    for (int got = 0; got < calls; got++) {
        for (; sent < calls && sent - got < depth; sent++)
            if (zmq_send (self->dealer.socket, self->cmd, self->cmd_size, 0) < 0)
                return -1;
        if (bench_raw_answer (self))
            return -1;
    }
    return 0;
}

//  Whether BENCH_ONLY leaves this side ("troupe" or "raw") on: set to one
//  side, it turns the other off.
static inline bool
bench_side_on (const char *side)
{
    const char *only = getenv ("BENCH_ONLY");
    const char *other = strcmp (side, "raw") == 0? "troupe": "raw";
    return !only || strcmp (only, other) != 0;
}

//  troupe's side of a figure: make n operations (0 when it is off). Its
//  time is the wall clock around the call, unless it sets *ns itself (it
//  comes in at -1). Returns 0, a troupe error code, or -1 with errno set
//  (a side that is libzmq's).
typedef int (bench_troupe_fn) (void *arg, int n, int64_t *ns);

//  troupe's side that calls the child's nil n times, one after the other
//  (arg: the portal).
static inline int
bench_nil_side (void *arg, int n, int64_t *ns)
{
    (void) ns;
    return bench_call_nil_n (arg, n);
}

//  Round r of a figure: troupe's side and raw's (bench_raw_calls, depth
//  in flight) take turns in chunks of chunk operations until each has made
//  the round's per_round, so that a change in the machine's load during
//  the round hits both alike; then the round is recorded. Returns 0, or
//  -1 with the failure on stderr.
static inline int
bench_alternate (bench_run_t *run, int r, int chunk, bench_troupe_fn *troupe, void *arg,
                 bench_raw_t *raw, int depth)
{
    bool troupe_on = bench_side_on ("troupe"), raw_on = bench_side_on ("raw");
    int64_t troupe_ns = 0, raw_ns = 0;
    for (int made = 0; made < run->per_round; made += chunk) {
        int n = run->per_round - made < chunk? run->per_round - made: chunk;
        int64_t own = -1;
        int64_t start = bench_now_ns ();
        int rc = troupe (arg, troupe_on? n: 0, &own);
        int64_t middle = bench_now_ns ();
        if (rc) {
            fprintf (stderr, "bench: %s: troupe failed: %s\n", run->name,
                     rc == -1? zmq_strerror (errno): tr_strerror (rc));
            return -1;
        }
        if (bench_raw_calls (raw, raw_on? n: 0, depth)) {
            fprintf (stderr, "bench: %s: raw failed: %s\n", run->name, zmq_strerror (errno));
            return -1;
        }
        troupe_ns += own >= 0? own: middle - start;
        raw_ns += bench_now_ns () - middle;
    }
    bench_record (run, r, troupe_ns, raw_ns);
    return 0;
}

//  Stop the server, reap it, close the socket; safe on what bench_raw_open
//  left, however far it got.
static inline void
bench_raw_close (bench_raw_t *self)
{
    if (self->pid > 0) {
        zmq_send (self->dealer.socket, "", 0, 0);
        bench_reap (self->pid);
        self->pid = 0;
    }
    bench_unbind (&self->dealer);
    memset (&self->dealer, 0, sizeof self->dealer);
    free (self->cmd);
    free (self->answer);
    self->cmd = NULL;
    self->answer = NULL;
}

#endif
