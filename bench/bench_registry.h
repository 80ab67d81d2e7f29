/*  =========================================================================
    bench_registry.h - what the registry's benchmarks share

    bench_find and bench_churn start troupe-broker as an operator would
    (a program of its own, found as $BENCH_BROKER or broker/troupe-broker
    beside bench/), place it on a CPU, and read its CPU time and resident
    memory from /proc. Their raw references keep registrations as the
    registry does (each field copied, in a czmq hash) and read the cmd
    frames troupe sends.
    =========================================================================
*/
#ifndef BENCH_REGISTRY_H_INCLUDED
#define BENCH_REGISTRY_H_INCLUDED

#include <czmq.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
//  Include after troupe_private.h and bench.h.

#define BENCH_NAME_MAX      64      //  the longest name the registry takes

//  --------------------------------------------------------------------------
//  Placement and memory

//  CPU time used so far by count processes, all their threads, in ns.
static inline int64_t
bench_cpu_sum (const pid_t *pids, int count)
{
    int64_t total = 0;
    for (int i = 0; i < count; i++) {
        int64_t ns = bench_cpu_ns (pids [i]);
        total += ns > 0? ns: 0;
    }
    return total;
}

//  VmRSS of a process in KiB, or -1.
static inline long
bench_rss_kib (pid_t pid)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    long kib = -1;
    while (file && fgets (line, sizeof line, file))
        if (sscanf (line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (file)
        fclose (file);
    return kib;
}

//  --------------------------------------------------------------------------
//  The broker, a program of its own

typedef struct {
    pid_t pid;
    char path [128];                //  its ipc socket file, to remove
    char endpoint [256];            //  where it serves
} bench_broker_t;

//  The troupe-broker to start: $BENCH_BROKER, else ../broker/troupe-broker
//  from this binary's directory.
static inline void
bench_broker_path (char *path, size_t size)
{
    const char *given = getenv ("BENCH_BROKER");
    if (given && *given) {
        snprintf (path, size, "%s", given);
        return;
    }
    char self [PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
    self [n > 0? n: 0] = 0;
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr (self, '/');
        if (slash)
            *slash = 0;
    }
    snprintf (path, size, "%s/broker/troupe-broker", *self? self: ".");
}

//  Start a broker serving on transport ("ipc" or "tcp") on CPU cpu, and
//  wait until it says where it serves. Returns 0, or -1 with the reason on
//  stderr.
static inline int
bench_broker_start (bench_broker_t *self, const char *transport, int cpu)
{
    memset (self, 0, sizeof *self);
    char program [PATH_MAX + 32], endpoint [256];
    bench_broker_path (program, sizeof program);
    if (strcmp (transport, "tcp") == 0)
        snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:*");
    else {
        snprintf (self->path, sizeof self->path, "/tmp/troupe-bench-broker-%d.ipc",
                  (int) getpid ());
        snprintf (endpoint, sizeof endpoint, "ipc://%s", self->path);
    }
    int out [2];
    if (pipe2 (out, O_CLOEXEC)) {
        perror ("bench: pipe");
        return -1;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, out [1], STDOUT_FILENO);
    char *argv [] = { program, "--endpoint", endpoint, NULL };
    extern char **environ;
    int err = posix_spawn (&self->pid, program, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy (&actions);
    close (out [1]);
    if (err) {
        fprintf (stderr, "bench: cannot start %s: %s\n", program, strerror (err));
        close (out [0]);
        self->pid = 0;
        return -1;
    }
    bench_pin_pid (self->pid, cpu);
    //  "troupe-broker serving at ENDPOINT\n", within five seconds.
    char text [512] = "";
    size_t size = 0;
    int64_t deadline = bench_now_ns () + 5000000000LL;
    while (!memchr (text, '\n', size) && size < sizeof text - 1) {
        int left = (int) ((deadline - bench_now_ns ()) / 1000000);
        struct pollfd pfd = { out [0], POLLIN, 0 };
        if (left <= 0 || poll (&pfd, 1, left) <= 0)
            break;
        ssize_t n = read (out [0], text + size, sizeof text - 1 - size);
        if (n <= 0)
            break;
        size += (size_t) n;
        text [size] = 0;
    }
    close (out [0]);
    if (sscanf (text, "troupe-broker serving at %255s", self->endpoint) != 1) {
        fprintf (stderr, "bench: %s did not say where it serves ('%s')\n",
                 program, text);
        return -1;
    }
    return 0;
}

//  Stop the broker (SIGTERM) and reap it; safe on what bench_broker_start left.
static inline void
bench_broker_stop (bench_broker_t *self)
{
    if (self->pid > 0) {
        kill (self->pid, SIGTERM);
        int code = bench_reap (self->pid);
        if (code != 0)
            fprintf (stderr, "bench: the broker exited with %d\n", code);
    }
    if (*self->path)
        unlink (self->path);
    memset (self, 0, sizeof *self);
}

//  --------------------------------------------------------------------------
//  Raw libzmq: registrations as the registry keeps them, and its frames

//  A registration as the raw servers keep it: the fields copied, as the
//  registry copies them.
typedef struct {
    char *name;
    char *uid;
    char *endpoint;
    char *host;
    char *parent;
    int pid;
    int64_t expires;
    int64_t since;                  //  registered at
} bench_entry_t;

static inline int64_t
bench_now_ms (void)
{
    return bench_now_ns () / 1000000;
}

static inline bench_entry_t *
bench_entry_new (const char *name, const char *uid, const char *endpoint, int pid,
                 const char *host, const char *parent)
{
    bench_entry_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->name = strdup (name);
    self->uid = strdup (uid);
    self->endpoint = strdup (endpoint);
    self->host = strdup (host);
    self->parent = strdup (parent);
    self->pid = pid;
    self->since = bench_now_ms ();
    self->expires = self->since + 10000;
    return self;
}

static inline void
bench_entry_destroy (void **item)
{
    bench_entry_t *self = *item;
    if (self) {
        free (self->name);
        free (self->uid);
        free (self->endpoint);
        free (self->host);
        free (self->parent);
        free (self);
    }
    *item = NULL;
}

//  The entry as the registry packs it (registry.c, s_pack_entry).
static inline void
bench_entry_pack (msgpack_packer *pk, const bench_entry_t *e)
{
    msgpack_pack_map (pk, 8);
    tri_msg_pack_str (pk, "name");
    tri_msg_pack_str (pk, e->name);
    tri_msg_pack_str (pk, "uid");
    tri_msg_pack_str (pk, e->uid);
    tri_msg_pack_str (pk, "endpoint");
    tri_msg_pack_str (pk, e->endpoint);
    tri_msg_pack_str (pk, "pid");
    msgpack_pack_int (pk, e->pid);
    tri_msg_pack_str (pk, "host");
    tri_msg_pack_str (pk, e->host);
    tri_msg_pack_str (pk, "parent");
    tri_msg_pack_str (pk, e->parent);
    int64_t now = bench_now_ms ();
    tri_msg_pack_str (pk, "expires_ms");
    msgpack_pack_int64 (pk, e->expires - now);
    tri_msg_pack_str (pk, "age_ms");
    msgpack_pack_int64 (pk, now - e->since);
}

//  A cmd frame [2, cid, [fn, args]]: its cid, fn and args, or false.
static inline bool
bench_cmd_parse (const msgpack_object *o, uint64_t *cid, const msgpack_object **fn,
                 const msgpack_object **args)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3
    ||  o->via.array.ptr [1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    const msgpack_object *call = &o->via.array.ptr [2];
    if (call->type != MSGPACK_OBJECT_ARRAY || call->via.array.size != 2
    ||  call->via.array.ptr [0].type != MSGPACK_OBJECT_STR
    ||  call->via.array.ptr [1].type != MSGPACK_OBJECT_ARRAY)
        return false;
    *cid = o->via.array.ptr [1].via.u64;
    *fn = &call->via.array.ptr [0];
    *args = &call->via.array.ptr [1];
    return true;
}

//  Item i of an args array, a string, into buf (NUL-terminated), or false.
static inline bool
bench_arg_str (const msgpack_object *args, uint32_t i, char *buf, size_t size)
{
    if (i >= args->via.array.size || args->via.array.ptr [i].type != MSGPACK_OBJECT_STR
    ||  args->via.array.ptr [i].via.str.size >= size)
        return false;
    memcpy (buf, args->via.array.ptr [i].via.str.ptr, args->via.array.ptr [i].via.str.size);
    buf [args->via.array.ptr [i].via.str.size] = 0;
    return true;
}


#endif
