/*  =========================================================================
    troupe_private.h - what the modules of libtroupe share

    Internal names are tri_<module>_<verb>; they are hidden from the shared
    library (-fvisibility=hidden) and reached by the tests through the
    static convenience library. tri_ functions assert their arguments;
    public ones return TR_EINVAL.

    One actor per process; its runtime thread owns everything here except
    the worker pool's queues (task.c), which are the only state crossing
    threads.
    =========================================================================
*/
#ifndef TROUPE_PRIVATE_H_INCLUDED
#define TROUPE_PRIVATE_H_INCLUDED

#include "troupe.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <zmq.h>

#include "tri_list.h"
#include "tri_idmap.h"

#ifndef streq
#   define streq(s1, s2) (!strcmp ((s1), (s2)))
#endif

//  --------------------------------------------------------------------------
//  Defaults, all in one place (DESIGN.md section 6)

#define TRI_DEFAULT_STACK           (256 * 1024)
#define TRI_DEFAULT_MAX_MSG         (16 * 1024 * 1024)
#define TRI_DEFAULT_MAX_DEPTH       32
#define TRI_DEFAULT_THREADS         4
#define TRI_DEFAULT_CANCEL_ACK_MS   1000
#define TRI_DEFAULT_DRAIN_MS        500
#define TRI_DEFAULT_GRACE_MS        3000
#define TRI_DEFAULT_TERM_MS         1000
#define TRI_DEFAULT_HELLO_MS        5000
#define TRI_DEFAULT_HB_IVL_MS       500
#define TRI_DEFAULT_HB_TIMEOUT_MS   3000
//  Messages that may wait for one ROUTER peer (the small ones channel.c
//  does not count in bytes: at most about 36 MiB of them).
#define TRI_ROUTER_SNDHWM 65536
//  libzmq's I/O threads, as ZMQ_AFFINITY bits: remote links with their
//  heartbeats on one, the links between parents and children on the other
//  (tri_socket_link).
#define TRI_IO_REMOTE               1
#define TRI_IO_LOCAL                2
#define TRI_DEFAULT_LINGER_MS       1000
#define TRI_DEFAULT_STREAM_WINDOW   1024
#define TRI_DEFAULT_REGISTRY_MAX    4096
#define TRI_DEFAULT_REGISTRY_LEASE_MS 10000
#define TRI_DEFAULT_MAX_CALLS_PEER  1024
#define TRI_DEFAULT_MAX_CALLS       16384
#define TRI_DEFAULT_MAX_QUEUED      (64 * 1024 * 1024)
//  The credit each side of a stream starts with (doc/protocol.md).
#define TRI_STREAM_CREDIT0          64

//  Environment a parent hands its child.
#define TRI_ENV_PARENT      "TROUPE_PARENT"        //  parent ROUTER endpoint
#define TRI_ENV_PARENT_LOCAL "TROUPE_PARENT_LOCAL" //  where its children connect
#define TRI_ENV_PARENT_PID  "TROUPE_PARENT_PID"    //  parent's pid
#define TRI_ENV_PARENT_FD   "TROUPE_PARENT_FD"     //  child's end of its link
                                                    //  (without pidfds)
#define TRI_ENV_NO_PIDFD    "TROUPE_NO_PIDFD"      //  1: do without pidfds
#define TRI_ENV_UID         "TROUPE_UID"           //  child's uid
#define TRI_ENV_BIND        "TROUPE_BIND"          //  child's bind address
#define TRI_ENV_REGISTRY    "TROUPE_REGISTRY"      //  registry address
#define TRI_ENV_KEYS        "TROUPE_KEYS"          //  CURVE key directory
#define TRI_ENV_INSECURE    "TROUPE_INSECURE"      //  child: parent allowed
                                                   //  binds without keys

//  --------------------------------------------------------------------------
//  Time, monotonic. Deadlines are absolute microseconds on tri_now_us's
//  clock, -1 = none: every wait and timer. tri_now_ms is for what is
//  reckoned in milliseconds (a lease, how often to log) and is never
//  compared with a deadline.

static inline int64_t
tri_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Monotonic microseconds.
static inline int64_t
tri_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  The deadline ms milliseconds from now (ms > 0): rounded up from the
//  clock's nanoseconds to the next microsecond, so that it passes no
//  sooner than ms from now. ms <= 0: now, already passed.
static inline int64_t
tri_after_ms (int64_t ms)
{
    if (ms <= 0)
        return tri_now_us ();
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    int64_t ns = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec + ms * 1000000;
    return (ns + 999) / 1000;
}

//  Whole milliseconds left until deadline (>= 0), rounded up: a timeout
//  to hand on that ends no sooner than the deadline.
static inline int64_t
tri_ms_left (int64_t deadline)
{
    int64_t left = deadline - tri_now_us ();
    return left <= 0? 0: (left + 999) / 1000;
}

//  A user's relative timeout (-1 forever, 0 no wait) as a deadline.
static inline int64_t
tri_deadline (int timeout_ms)
{
    return timeout_ms < 0? -1: tri_after_ms (timeout_ms);
}

//  The earlier of two deadlines.
static inline int64_t
tri_deadline_min (int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b? a: b;
}

//  --------------------------------------------------------------------------
//  log.c

void
    tri_log_init (const char *name);
bool
    tri_log_enabled (tr_loglevel_t level);

#define tri_log_error(id, ...)  tr_log (TR_LOG_ERROR, id, __VA_ARGS__)
#define tri_log_warn(id, ...)   tr_log (TR_LOG_WARNING, id, __VA_ARGS__)
#define tri_log_info(id, ...)   tr_log (TR_LOG_INFO, id, __VA_ARGS__)
#define tri_log_debug(id, ...) \
    do { if (tri_log_enabled (TR_LOG_DEBUG)) tr_log (TR_LOG_DEBUG, id, __VA_ARGS__); } while (0)

//  --------------------------------------------------------------------------
//  task.c: coroutines on the runtime thread, the scheduler, timers and the
//  worker-thread pool.
//
//  A task runs fn(arg) on its own mmap'ed stack with a guard page. Tasks
//  switch only when they park; the runtime loop calls tri_sched_run() to
//  run every ready task until each parks or ends. A finished task is freed
//  by the scheduler unless it is joinable, then tri_task_join()/destroy.

typedef struct tri_task tri_task_t;
typedef void (tri_task_fn) (void *arg);

//  A wait queue: any number of tasks parked on one event, each with its
//  own deadline; waking them is one call.
typedef struct {
    tri_list_t tasks;
} tri_waitq_t;

void
    tri_waitq_init (tri_waitq_t *self);
bool
    tri_waitq_empty (const tri_waitq_t *self);
//  Park the running task on the queue until woken, the deadline
//  (TR_ETIMEDOUT) or cancellation (TR_ECANCELED, also at once if already
//  cancelled). Returns the rc it was woken with.
int
    tri_waitq_wait (tri_waitq_t *self, int64_t deadline);
//  Same, but cancellation neither prevents nor ends the wait.
int
    tri_waitq_wait_shielded (tri_waitq_t *self, int64_t deadline);
//  Wake the longest waiting task, or every task, with rc.
void
    tri_waitq_wake_one (tri_waitq_t *self, int rc);
void
    tri_waitq_wake_all (tri_waitq_t *self, int rc);

//  Set up the scheduler of this process (stack size for tasks that ask for
//  0).
int
    tri_sched_init (size_t default_stack);
//  Free every stack and finished task. Asserts that no task is alive.
void
    tri_sched_term (void);
//  Number of tasks alive (not yet finished).
size_t
    tri_sched_alive (void);
//  Run ready tasks until none is ready. Must be called from the loop (no
//  task running). Returns how many switches it made.
int
    tri_sched_run (void);
bool
    tri_sched_has_ready (void);
//  Earliest deadline of a parked task, or -1.
int64_t
    tri_sched_next_deadline (void);
//  Wake every parked task whose deadline is <= now with TR_ETIMEDOUT.
void
    tri_sched_expire (int64_t now);

//  New task, ready to run. stack_size 0 = default. joinable: kept after it
//  ends until tri_task_join/destroy; else freed by the scheduler when fn
//  returns. NULL on ENOMEM.
tri_task_t *
    tri_task_new (tri_task_fn *fn, void *arg, size_t stack_size, bool joinable);
//  Free a finished joinable task; sets *task to NULL.
void
    tri_task_destroy (tri_task_t **task);
//  The running task, or NULL on the loop.
tri_task_t *
    tri_task_current (void);
bool
    tri_task_done (const tri_task_t *task);
//  Park the current task until woken, the deadline passes (TR_ETIMEDOUT)
//  or it is cancelled (TR_ECANCELED, also returned at once if already
//  cancelled). Returns the rc passed to tri_task_wake.
int
    tri_task_park (int64_t deadline);
//  Same, but cancellation neither prevents nor ends the wait.
int
    tri_task_park_shielded (int64_t deadline);
//  Make a parked task ready; its park returns rc. No effect if it is not
//  parked (already woken, running or done).
void
    tri_task_wake (tri_task_t *task, int rc);
//  Mark cancelled (sticky) and wake it with TR_ECANCELED if it is parked
//  unshielded. Safe on a finished task.
void
    tri_task_cancel (tri_task_t *task);
//  Thread-safe read of the cancelled flag.
bool
    tri_task_cancelled (const tri_task_t *task);
//  Park until task ends (or deadline / cancel of the caller).
int
    tri_task_join (tri_task_t *task, int64_t deadline);
//  Same, but cancellation of the caller neither prevents nor ends the
//  wait: only the end of task or the deadline (TR_ETIMEDOUT) does.
int
    tri_task_join_shielded (tri_task_t *task, int64_t deadline);
//  Opaque user pointer per task (the runtime stores its tr_ctx_t here).
void *
    tri_task_data (const tri_task_t *task);
void
    tri_task_set_data (tri_task_t *task, void *data);
//  Guard page of a task's stack, for the SIGSEGV handler: true if addr is
//  in the guard page of any live task.
bool
    tri_task_is_guard (const void *addr);

//  Run fn(arg) on a pool thread while the current task parks. shielded:
//  wait for the thread even when cancelled (the caller's memory is in use
//  by fn); unshielded: return TR_ECANCELED at once, the result is dropped
//  when fn ends. Returns 0, TR_ECANCELED or TR_ENOMEM.
int
    tri_task_to_thread (void *(*fn) (void *), void *arg, void **ret, bool shielded);
//  Threads the pool starts (0: the default); stop and join them (each
//  finishes its current job; queued jobs are dropped).
void
    tri_pool_configure (int threads);
void
    tri_pool_stop (void);
//  eventfd the loop polls; -1 until the pool exists.
int
    tri_pool_fd (void);
//  fn (fd) is called when the pool starts its threads, so that the layer
//  that owns the loop can watch the eventfd (NULL: nobody).
void
    tri_pool_on_start (void (*fn) (int fd));
//  Called by the loop when the fd is readable: wakes the tasks whose jobs
//  ended and frees dropped jobs.
void
    tri_pool_drain (void);
//  Counters for the tests: stacks mmap'ed since tri_sched_init, stacks in
//  the free list now, to_thread jobs not yet freed (queued, running, or
//  done and not yet drained).
size_t
    tri_sched_stacks_mapped (void);
size_t
    tri_sched_stacks_cached (void);
size_t
    tri_pool_jobs (void);

//  --------------------------------------------------------------------------
//  value.c

//  An encoded value. Its buffer starts with TRI_ARGS_HEADROOM bytes kept
//  free, where a frame's head ([type, cid, ...) can be written in front of
//  the value, so that a reply is sent in the value's own buffer.
#define TRI_ARGS_HEADROOM 16

struct tr_args {
    msgpack_sbuffer sbuf;           //  headroom, then one msgpack value
    int depth;                      //  its nesting, once checked; 0 = not yet
};

static inline const char *
tri_args_bytes (const tr_args_t *args)
{
    return args->sbuf.data + TRI_ARGS_HEADROOM;
}

//  (An args with no buffer at all holds nothing, as one with an empty one.)
static inline size_t
tri_args_len (const tr_args_t *args)
{
    return args->sbuf.size > TRI_ARGS_HEADROOM? args->sbuf.size - TRI_ARGS_HEADROOM: 0;
}

//  A received value. object points into memory owned by owner, freed with
//  owner_free(owner) (both may be NULL).
struct tr_value {
    msgpack_object object;
    void *owner;
    void (*owner_free) (void *owner);
    bool inside_owner;              //  lives in owner: freeing owner frees it
};

struct tr_reply {
    tr_args_t *value;               //  NULL until set: nil
    const msgpack_object *args;     //  the call's arguments
    bool echo;                      //  the result is args, sent from the request
};

//  Format strings (value.c), shared by tr_pack and tr_unpack (unpack.c).
static inline bool
tri_fmt_is_sep (char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ':';
}

static inline const char *
tri_fmt_skip_sep (const char *p)
{
    while (tri_fmt_is_sep (*p))
        p++;
    return p;
}

//  Check that fmt describes exactly one value (for unpack: its letters).
//  Returns 0, or -1 with the offset and the reason.
int
    tri_fmt_check (const char *fmt, bool unpack, size_t *offset, char *why, size_t why_size);
//  Items of the group whose first item is at p (map keys and values count
//  one each); *more set if they end with "...". fmt must be checked.
size_t
    tri_fmt_count_items (const char *p, bool *more);

//  Copy every string of o into zone with a NUL after it and repoint o at
//  the copies. Returns 0 or TR_ENOMEM.
int
    tri_value_cstrings (msgpack_object *o, msgpack_zone *zone);
//  The value under a string key of a map, or NULL (first match wins).
const msgpack_object *
    tri_value_map_get (const msgpack_object *map, const char *key, size_t key_len);

const msgpack_object *
    tri_map_get (const msgpack_object *map, const char *key);

//  New value owning owner (taken even on failure).
tr_value_t *
    tri_value_new (const msgpack_object *o, void *owner, void (*owner_free) (void *));

//  --------------------------------------------------------------------------
//  msg.c: the wire protocol (doc/protocol.md). Frame = [type, cid, body].

typedef enum {
    TRI_HELLO = 1,
    TRI_CMD = 2,
    TRI_STARTED = 3,
    TRI_YIELD = 4,
    TRI_STOP = 5,
    TRI_RETURN = 6,
    TRI_ERROR = 7,
    TRI_CANCEL = 8,
    TRI_ACK = 9,
    TRI_PING = 10,
    TRI_PONG = 11,
    TRI_CREDIT = 12,
    TRI_TYPE_MAX = 12
} tri_type_t;

typedef struct {
    size_t max_size;                //  whole frame
    int max_depth;                  //  nesting of arrays and maps
} tri_limits_t;

//  A decoded frame. Strings in body are NUL-terminated.
typedef struct {
    tri_type_t type;
    uint64_t cid;
    msgpack_object body;
    zmq_msg_t frame;                //  the bytes body points into
    msgpack_zone zone;              //  what body's objects live in
    tr_value_t value;               //  handed out by tri_msg_to_value
} tri_msg_t;

const char *
    tri_msg_type_name (int type);
//  n bytes at p as a big-endian unsigned integer.
uint64_t
    tri_be (const uint8_t *p, int n);
//  Write the reason into why (may be NULL) and return rc.
int
    tri_why (char *why, size_t why_size, int rc, const char *fmt, ...) TR_PRINTF (4, 5);
//  check.c: check that data is exactly one msgpack value within the limits, and
//  every length it declares fits in the bytes that follow. Returns 0 or
//  TR_EPROTO/TR_ETOOBIG with the reason in why.
int
    tri_msg_check (const void *data, size_t size, const tri_limits_t *limits,
                   char *why, size_t why_size);
//  The same, and *depth (if not NULL) is how deep the value nests (a
//  scalar is 0, [] and [1] are 1).
int
    tri_msg_check_depth (const void *data, size_t size, const tri_limits_t *limits,
                         int *depth, char *why, size_t why_size);
//  Whether value, put at nesting level, makes a frame within limits,
//  checking its bytes only the first time (tr_args are never changed).
//  Returns 0, or TR_ETOOBIG / TR_EPROTO with the reason in why.
int
    tri_args_check (tr_args_t *value, size_t head_size, int level,
                    const tri_limits_t *limits, char *why, size_t why_size);
//  Keep destroyed args for reuse on this thread (the runtime's, while it
//  runs), or (off) stop and free those kept.
void
    tri_args_spares (bool on);
//  Write [type, cid, as the head of a frame (0x93, the type, the cid in
//  msgpack's shortest form) into out (at least 11 bytes); its size.
size_t
    tri_msg_head (uint8_t *out, tri_type_t type, uint64_t cid);
//  Best-effort read of a frame's type and cid, before or without decoding
//  it (0 and 0 where they cannot be read).
void
    tri_msg_peek (const void *data, size_t size, int *type, uint64_t *cid);
//  Where the args of a cmd frame [cmd, cid, [fn, args]] begin (they run to
//  its end), or 0 if the frame does not start that way.
size_t
    tri_msg_cmd_args_at (const void *data, size_t size);
//  Decode frame (taken on success and on failure). On failure *cid holds
//  the cid if it could be read (else 0) and why the reason. Returns 0,
//  TR_EPROTO or TR_ETOOBIG.
int
    tri_msg_decode (zmq_msg_t *frame, const tri_limits_t *limits,
                    tri_msg_t **msg, uint64_t *cid, char *why, size_t why_size);
//  The same; on failure *type is the frame's type as far as it can be
//  read (else 0).
int
    tri_msg_decode_typed (zmq_msg_t *frame, const tri_limits_t *limits, tri_msg_t **msg,
                          int *type, uint64_t *cid, char *why, size_t why_size);
void
    tri_msg_destroy (tri_msg_t **msg);
//  On: this thread keeps the records of destroyed messages (and their
//  zones' first chunk) for the next decode, so a round trip allocates
//  nothing for its frames; off: it frees them. The runtime thread turns
//  it on while it runs.
void
    tri_msg_spares (bool on);
//  Detach body into a tr_value_t owning the message.
tr_value_t *
    tri_msg_to_value (tri_msg_t **msg);
//  Start a frame in pk: array header, type and cid (tri_msg_head's bytes);
//  the caller packs body.
void
    tri_msg_begin (msgpack_packer *pk, tri_type_t type, uint64_t cid);
//  Pack a C string as a msgpack str.
void
    tri_msg_pack_str (msgpack_packer *pk, const char *s);

//  Hello body: {"v": [major, minor], "uid": s, "pid": i, "ep": s}
typedef struct {
    int major, minor;
    const char *uid;
    const char *endpoint;
    int64_t pid;
} tri_hello_t;

void
    tri_msg_pack_hello (msgpack_packer *pk, const tri_hello_t *hello);
int
    tri_msg_read_hello (const tri_msg_t *msg, tri_hello_t *hello, char *why, size_t why_size);
//  Cmd body: [fn, args], [fn, 1, args] to open a context (kind
//  TR_CONTEXT), or [fn, 2, args] a one-way stream (kind TR_STREAM)
void
    tri_msg_pack_cmd (msgpack_sbuffer *sbuf, uint64_t cid, const char *fn,
                      const tr_args_t *args);
//  The same in pk, any kind: tri_frame_cmd's bytes.
void
    tri_msg_pack_cmd_pk (msgpack_packer *pk, uint64_t cid, const char *fn,
                         const tr_args_t *args, tr_kind_t kind);
//  The error type for a frame refused with rc: "TooBig" or "ProtocolError".
const char *
    tri_msg_rc_type (int rc);

//  A frame being built, to send: a small buffer inside, the heap beyond.
//  pk packs into it; failed says memory ran out. Must not move once made.
typedef struct {
    char *data;
    size_t size;
    size_t capacity;
    bool failed;
    msgpack_packer pk;
    char local [512];
} tri_frame_t;

//  An empty frame.
void
    tri_frame_init (tri_frame_t *self);
//  A frame started as [type, cid, ...]: the caller packs the body.
void
    tri_frame_begin (tri_frame_t *self, tri_type_t type, uint64_t cid);
//  The frame [cmd, cid, [fn, args]] ([fn, kind, args] for a context or a
//  stream), written in place: the one encoder of a cmd.
void
    tri_frame_cmd (tri_frame_t *self, uint64_t cid, const char *fn, const tr_args_t *args,
                   tr_kind_t kind);
//  Append encoded bytes.
void
    tri_frame_write (tri_frame_t *self, const void *data, size_t size);
//  Make room for size bytes in all, so that a large frame is built in
//  one allocation and one copy.
void
    tri_frame_reserve (tri_frame_t *self, size_t size);
//  Take the frame's heap buffer (the caller frees it); NULL while the
//  frame still fits its inside buffer. The frame is empty afterwards.
char *
    tri_frame_detach (tri_frame_t *self);
//  What a peer would make of a frame troupe built, whose one part of
//  unknown shape is args, written last at nesting level: 0, or TR_EPROTO
//  / TR_ETOOBIG (TR_ENOMEM if it could not be built) with the reason in
//  why. The head is sound by construction and args are checked once in
//  their life (tri_args_check): received frames alone are read in full.
int
    tri_frame_check_args (const tri_frame_t *self, const tr_args_t *args, int level,
                          const tri_limits_t *limits, char *why, size_t why_size);
void
    tri_frame_fini (tri_frame_t *self);
int
    tri_msg_read_cmd (const tri_msg_t *msg, const char **fn, const msgpack_object **args,
                      tr_kind_t *kind, char *why, size_t why_size);
//  The body [side, value] of a yield, stop or credit frame ([side,
//  value, ...] for a yield of several values): side is 0 when the caller
//  of the cid sent it, 1 when its callee did; value is the first. Returns
//  0 or TR_EPROTO.
int
    tri_msg_read_stream (const tri_msg_t *msg, int *side, const msgpack_object **value);

//  --------------------------------------------------------------------------
//  error.c


//  New error; origin is also the first hop. NULL on ENOMEM.
tr_error_t *
    tri_error_new (int code, const char *type, const char *origin,
                   const char *fmt, ...) TR_PRINTF (4, 5);
tr_error_t *
    tri_error_newv (int code, const char *type, const char *origin,
                    const char *fmt, va_list ap);
//  Add uid to the chain (unless it is already last). Returns 0 or TR_ENOMEM.
int
    tri_error_add_hop (tr_error_t *self, const char *uid);
//  Capture the C frames of the calling code into self->frames.
void
    tri_error_capture_frames (tr_error_t *self, int skip);
//  Change the code (an error raised, sent with the code it was returned
//  with); the exit status or signal of a crash. Both accept NULL.
void
    tri_error_set_code (tr_error_t *self, int code);
void
    tri_error_set_exit (tr_error_t *self, int exit_status, int signal);
//  Append other (taken) to the end of self's list.
void
    tri_error_append (tr_error_t **list, tr_error_t *other);
//  Error body on the wire: {"code","type","msg","origin","hops","frames"}
void
    tri_error_pack (msgpack_packer *pk, const tr_error_t *self);
//  Decode; on malformed input returns an EPROTO error saying so (never NULL
//  unless out of memory).
tr_error_t *
    tri_error_unpack (const msgpack_object *o, const char *peer);


//  --------------------------------------------------------------------------
//  The actor's identity (runtime.c owns it; tr_actor_* read it)

struct tr_actor {
    char *uid;                  //  name@uuid
    char *name;
    char *endpoint;             //  our ROUTER's endpoint
};

//  A pidfd for pid, or -1 (errno set).
int
    tri_pidfd_open (pid_t pid);
//  True if this process does without pidfds: the kernel (or valgrind)
//  refuses them, or $TROUPE_NO_PIDFD is set to other than 0 (a knob for
//  tests and diagnosis). Children are then linked by socket pairs.
bool
    tri_pidfd_refused (void);
//  True if the process is stopped (SIGSTOP, SIGTSTP, a tracer), as its
//  /proc/PID/stat says; false if it runs or is not there.
bool
    tri_pid_stopped (pid_t pid);
//  When pid, stopped since *since (set at the first call that sees it
//  stopped, at now, on the deadlines' clock), has been stopped for the
//  heartbeat timeout: the deadline at which its watcher loses it. 0 if it
//  is not stopped (*since back to 0).
int64_t
    tri_pid_lost_at (pid_t pid, int64_t *since, int64_t now);

//  --------------------------------------------------------------------------
//  The upper half, one header per module, each layer above the last:
//
//      actor        tr_run, roles, stopping, signals, parent watch
//      nursery      supervised children: start, run_in_actor, close
//      portal       calls, main result cache, cancel with ack
//      child        child processes: spawn, hello, exit, reaping
//      context      the caller's side of a context, gather
//      call, serve  the caller's and the callee's side of a call (serve
//                   also serves contexts: started, the callee's stream)
//      stream       one side of a context's stream, credit
//      channel      peers, endpoints and routing (channel.c), sockets
//                   and hello (peer.c)
//      ctx          task contexts, user tasks, per-task error detail
//      runtime      configuration, identity, the loop: watchers, timers
//      task, pool   coroutines, wait queues, worker threads
//
//  Each calls only downward; what must go up is a callback the upper
//  layer registered (tri_channel_on_request, tri_peer_on_hello, the
//  endpoint operations, tri_pool_on_start).

#include "tri_runtime.h"
#include "tri_secure.h"
#include "tri_ctx.h"
#include "tri_channel.h"
#include "tri_peer.h"
#include "tri_stream.h"
#include "tri_call.h"
#include "tri_serve.h"
#include "tri_child.h"
#include "tri_portal.h"
#include "tri_nursery.h"
#include "tri_registry.h"

#endif
