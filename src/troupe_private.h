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
#include <time.h>
#include <zmq.h>

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
#define TRI_DEFAULT_LINGER_MS       1000

//  Environment a parent hands its child.
#define TRI_ENV_PARENT      "TROUPE_PARENT"        //  parent ROUTER endpoint
#define TRI_ENV_PARENT_PID  "TROUPE_PARENT_PID"    //  parent's pid
#define TRI_ENV_UID         "TROUPE_UID"           //  child's uid
#define TRI_ENV_BIND        "TROUPE_BIND"          //  child's bind address

//  --------------------------------------------------------------------------
//  Time: monotonic milliseconds; deadlines are absolute, -1 = none.

static inline int64_t
tri_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  A user's relative timeout (-1 forever, 0 no wait) as a deadline.
static inline int64_t
tri_deadline (int timeout_ms)
{
    return timeout_ms < 0? -1: tri_now_ms () + timeout_ms;
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

//  Set up the scheduler of this process (stack size for tasks that ask for
//  0, number of worker threads for the pool, created on first use).
int
    tri_sched_init (size_t default_stack, int threads);
//  Free every stack and finished task, stop and join the pool threads.
//  Asserts that no task is alive.
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

struct tr_args {
    msgpack_sbuffer sbuf;           //  one encoded msgpack value
};

//  A received value. object points into memory owned by owner, freed with
//  owner_free(owner) (both may be NULL).
struct tr_value {
    msgpack_object object;
    void *owner;
    void (*owner_free) (void *owner);
};

struct tr_reply {
    tr_args_t *value;               //  NULL until set: nil
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

static inline const msgpack_object *
tri_map_get (const msgpack_object *map, const char *key)
{
    return tri_value_map_get (map, key, strlen (key));
}

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
} tri_msg_t;

const char *
    tri_msg_type_name (int type);
//  Check that data is exactly one msgpack value within the limits, and
//  every length it declares fits in the bytes that follow. Returns 0 or
//  TR_EPROTO/TR_ETOOBIG with the reason in why.
int
    tri_msg_check (const void *data, size_t size, const tri_limits_t *limits,
                   char *why, size_t why_size);
//  Best-effort read of a frame's type and cid, before or without decoding
//  it (0 and 0 where they cannot be read).
void
    tri_msg_peek (const void *data, size_t size, int *type, uint64_t *cid);
//  Decode frame (taken on success and on failure). On failure *cid holds
//  the cid if it could be read (else 0) and why the reason. Returns 0,
//  TR_EPROTO or TR_ETOOBIG.
int
    tri_msg_decode (zmq_msg_t *frame, const tri_limits_t *limits,
                    tri_msg_t **msg, uint64_t *cid, char *why, size_t why_size);
void
    tri_msg_destroy (tri_msg_t **msg);
//  Detach body into a tr_value_t owning the message.
tr_value_t *
    tri_msg_to_value (tri_msg_t **msg);
//  Start a frame in pk: array header, type and cid; the caller packs body.
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
//  Cmd body: [fn, args]
void
    tri_msg_pack_cmd (msgpack_sbuffer *sbuf, uint64_t cid, const char *fn,
                      const tr_args_t *args);
int
    tri_msg_read_cmd (const tri_msg_t *msg, const char **fn,
                      const msgpack_object **args, char *why, size_t why_size);

//  --------------------------------------------------------------------------
//  error.c

struct tr_error {
    int code;                   //  TR_E*
    char *type;
    char *message;
    char *origin;               //  uid where it arose
    char **hops;                //  chain of uids, origin first
    size_t nhops;
    char *frames;               //  C frames at the origin, "" if none
    int exit_status;            //  for crashes
    int signal;
    tr_error_t *next;
};

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
//  The runtime (runtime.c, actor.c, spawn.c, portal.c, nursery.c)
//
//  All of this lives on the runtime thread. A channel is one peer: either
//  a peer that connected to our ROUTER (routing id = its uid), or the
//  DEALER a child opened to its parent. Both sides of a channel may call:
//  a cmd carries the caller's cid, and every answer (return, error, ack)
//  echoes it, so requests are routed to served tasks by (channel, cid) and
//  answers to our pending calls by cid alone (cids are unique per actor).

typedef struct tri_channel tri_channel_t;
typedef struct tri_call tri_call_t;
typedef struct tri_serve tri_serve_t;
typedef struct tri_child tri_child_t;

struct tri_channel {
    void *socket;               //  our ROUTER, or the DEALER to our parent
    uint8_t rid [256];          //  peer's routing id on our ROUTER
    size_t rid_size;            //  0 for the DEALER
    char *key;                  //  rid as hex: key in the runtime's table
    char *uid;                  //  peer's uid (from its hello)
    char *endpoint;             //  peer's ROUTER endpoint (from its hello)
    int pid;                    //  peer's pid (from its hello)
    int refs;                   //  runtime table, calls, serves, portal
    bool closed;                //  peer gone: no more sends
    bool cancel_called;         //  we asked the peer to cancel (rule 2)
    bool acked;                 //  the peer acknowledged that cancel
    int64_t drain_deadline;     //  when pending calls fail once closed, -1
    tr_error_t *death;          //  why it closed (for calls that fail)
    tri_call_t *calls;          //  our pending calls to this peer
    tri_serve_t *serves;        //  tasks serving this peer's cmds
    tri_child_t *child;         //  when the peer is our child
    tri_task_t *ack_waiter;     //  task waiting for the cancel ack
    tri_channel_t *next_dying;  //  in the runtime's dying list
    //  A channel on a DEALER of ours (to our parent, or a portal opened
    //  on an endpoint) learns the peer from the peer's hello.
    bool hello_done;            //  the peer's hello arrived
    int hello_rc;               //  the peer refused ours (TR_EVERSION, ...)
    tri_task_t *hello_waiter;   //  tr_portal_open waiting for the hello
    bool ready;                 //  loop: messages already queued
    bool used;                  //  loop: DEALER touched since found empty
    void *monitor;              //  PAIR on the DEALER's events (opened portals)
    bool monitor_ready, monitor_used;
    tri_channel_t *next_dealer; //  in the runtime's dealer list
};

//  One outgoing call waiting for its final answer.
struct tri_call {
    uint64_t cid;
    tri_channel_t *channel;
    tri_task_t *waiter;         //  woken when the answer comes
    tri_msg_t *answer;          //  return, error or ack; NULL until then
    tr_error_t *failure;        //  set when the channel died first
    void (*on_done) (tri_call_t *call);     //  instead of waking a waiter
    void *arg;                  //  for on_done
    bool linked;                //  in the cid table and channel->calls
    tri_call_t *next, *prev;    //  in channel->calls
};

struct tr_ctx {
    tri_task_t *task;
    tr_actor_t *actor;
    tr_error_t *raised;         //  from tr_raise
    tr_error_t *remote;         //  last failure of a call this task made
};

struct tr_actor {
    char *uid;                  //  name@uuid
    char *name;
    char *endpoint;             //  our ROUTER's endpoint
};

//  Runtime (runtime.c)
typedef struct {
    tr_config_t config;         //  with every default filled in
    tri_limits_t limits;
    tr_actor_t actor;
    void *zctx;
    void *router;
    void *parent_dealer;        //  child role: our DEALER to the parent
    tri_channel_t *parent;      //  child role: the channel on it
    tri_channel_t *dealers;     //  channels on our DEALERs, parent included
    int parent_pidfd;           //  child role: readable when parent exits
    int sig_pipe [2];
    int signals;                //  SIGINT/SIGTERM received so far
    int last_signal;
    uint64_t next_cid;
    struct _zhashx_t *channels;  //  by rid key
    struct _zhashx_t *calls;     //  by cid
    tri_channel_t *last_channel;    //  cache for the hot path
    tri_channel_t *dying;       //  closed channels draining their calls
    tri_child_t *children;      //  every child process alive or unreaped
    bool stopping;              //  actor cancel in progress
    tri_channel_t *cancel_from; //  who asked us to cancel (gets the ack)
    tri_task_t *root_task;
    bool router_used;           //  ROUTER touched since found empty
    msgpack_sbuffer sbuf;       //  scratch for encoding, loop thread only
    msgpack_packer pk;          //  packs into sbuf
} tri_rt_t;

extern tri_rt_t *tri_rt;

int
    tri_rt_start (const tr_config_t *config, const char *name, const char *uid,
                  const char *bind);
void
    tri_rt_stop (void);
//  Run the loop until done() is true (checked before every poll).
void
    tri_rt_loop (bool (*done) (void));
//  Send the frame in tri_rt->sbuf on channel; clears sbuf. Returns 0 or
//  TR_ECLOSED (and closes the channel) if the peer is gone.
int
    tri_channel_send (tri_channel_t *channel);
//  Send [type, cid, nil].
int
    tri_channel_send_empty (tri_channel_t *channel, tri_type_t type, uint64_t cid);
//  Send [error, cid, err].
int
    tri_channel_send_error (tri_channel_t *channel, uint64_t cid, const tr_error_t *err);
//  Send a new error built from code/type/message.
int
    tri_channel_reply_error (tri_channel_t *channel, uint64_t cid, int code,
                             const char *type, const char *fmt, ...) TR_PRINTF (5, 6);
//  Channels (channel.c)
tri_channel_t *
    tri_channel_new (void *socket, const uint8_t *rid, size_t rid_size);
void
    tri_channel_ref (tri_channel_t *channel);
void
    tri_channel_unref (tri_channel_t **channel);
//  Peer gone: fail pending calls after the drain period (now if drain is
//  false), cancel the tasks serving it. death is taken.
void
    tri_channel_close (tri_channel_t *channel, tr_error_t *death, bool drain);

//  Fail the calls of closed channels whose drain period ended by now, and
//  the earliest such deadline (-1: none).
void
    tri_channels_expire (int64_t now);
int64_t
    tri_channels_deadline (void);
//  Read what the loop found: frames on the ROUTER, on a DEALER, events of
//  an opened portal's monitor. drain: read a batch, not one.
void
    tri_channel_read_router (bool drain);
void
    tri_channel_read_dealer (tri_channel_t *channel, bool drain);
void
    tri_channel_read_monitor (tri_channel_t *channel);
//  The flag that says a socket was touched since it was last found empty
//  (see runtime.c), or NULL for a socket the loop always asks.
bool *
    tri_socket_used_flag (void *socket);

//  Calls (portal.c)
tri_call_t *
    tri_call_new (tri_channel_t *channel);
void
    tri_call_destroy (tri_call_t **call);
//  The loop got the final answer for cid (msg taken).
void
    tri_call_answer (uint64_t cid, tri_msg_t *msg, tri_channel_t *from);
//  Fail the call with the channel's death (loop, when draining ends).
void
    tri_call_fail (tri_call_t *call, const tr_error_t *why);
//  Outcome of a finished call: 0 (value in *out), or an error code with
//  the error in *error.
int
    tri_call_outcome (tri_call_t *call, tr_value_t **out, tr_error_t **error);

//  Serving (actor.c)
void
    tri_serve_cmd (tri_channel_t *channel, tri_msg_t *msg);
void
    tri_serve_cancel (tri_channel_t *channel, uint64_t cid);
//  A channel closed: cancel what serves it.
void
    tri_serve_channel_closed (tri_channel_t *channel);
//  Cancel every task of the actor (actor cancel, signal, parent gone).
void
    tri_actor_cancel_all (void);

//  Child processes (spawn.c)
struct tri_child {
    pid_t pid;
    int pidfd;                  //  -1 once reaped
    char *uid;
    tr_nursery_t *nursery;
    tr_portal_t *portal;
    tri_channel_t *channel;     //  after hello
    bool exited;                //  reaped
    int status;                 //  waitid's si_status
    int code;                   //  CLD_EXITED, CLD_KILLED, CLD_DUMPED
    bool killed;                //  we sent SIGTERM or SIGKILL
    tri_task_t *hello_waiter;
    tri_task_t *exit_waiter;    //  woken when it is reaped
    tri_child_t *next;          //  in tri_rt->children
};

//  Spawn a child process. Returns 0, TR_ENOMEM or TR_ESYS (errno then
//  says why posix_spawn failed).
//  A pidfd for pid, or -1 (errno set).
int
    tri_pidfd_open (pid_t pid);
int
    tri_child_spawn (const char *name, const tr_spawn_opts_t *opts, tri_child_t **child);
//  Wait for the child's hello; on failure the child is killed and reaped
//  and *error says why. Returns 0, TR_ETIMEDOUT, TR_ECANCELED, TR_ECRASHED.
int
    tri_child_await_hello (tri_child_t *child, int64_t deadline, tr_error_t **error);
void
    tri_child_signal (tri_child_t *child, int sig);
//  Park (shielded) until the child is reaped or the deadline passes.
int
    tri_child_await_exit (tri_child_t *child, int64_t deadline);
//  Kill hard and reap, even past the deadline; never leaves a zombie.
void
    tri_child_kill_reap (tri_child_t *child);
//  The loop saw the pidfd readable: reap, record, notify.
void
    tri_child_reaped (tri_child_t *child);
//  The error describing how a child died (also when it exited 0: whether
//  that exit was asked for is the caller's to judge).
tr_error_t *
    tri_child_death (const tri_child_t *child);
//  The hello of uid arrived on channel (loop). Returns the child or NULL.
tri_child_t *
    tri_child_hello (const char *uid, tri_channel_t *channel);
void
    tri_child_destroy (tri_child_t **child);

//  Portals and nurseries
tr_portal_t *
    tri_portal_new (tri_channel_t *channel, tri_child_t *child);
void
    tri_portal_destroy (tr_portal_t **portal);
//  Wait (in a task, shielded) until no task is inside tr_portal_run on the
//  portal; its peer must be gone.
void
    tri_portal_await_calls (tr_portal_t *portal);
void
    tri_portal_send_cancel (tr_portal_t *portal);
//  Nurseries still open (their owner returned without closing them).
size_t
    tri_nursery_open_count (void);
//  Close every open nursery (in a task): cancel and reap their children.
void
    tri_nursery_close_all (void);
//  Create the child role's DEALER to the parent and say hello.
int
    tri_rt_connect_parent (const char *endpoint, int parent_pid);
//  A DEALER connected to endpoint, its channel, and our hello sent; the
//  peer's hello sets channel->hello_done. The channel holds a reference for
//  the caller. Returns 0, TR_ESYS (bad endpoint) or TR_ENOMEM.
int
    tri_rt_open_dealer (const char *endpoint, tri_channel_t **channel);
//  Close the channel (its calls fail) and its DEALER.
void
    tri_rt_close_dealer (tri_channel_t *channel);
//  Send the cancel ack to whoever asked us to cancel, if anyone.
void
    tri_rt_ack_cancel (void);
int
    tri_portal_start_main (tr_portal_t *portal, const char *fn, const tr_args_t *args,
                           void (*on_done) (tr_portal_t *portal));
bool
    tri_portal_main_done (const tr_portal_t *portal);
//  The child a nursery's portal is on, or NULL.
tri_child_t *
    tri_portal_child (const tr_portal_t *portal);
int
    tri_portal_main_error (const tr_portal_t *portal, const tr_error_t **error);

#endif
