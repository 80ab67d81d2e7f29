/*  =========================================================================
    troupe.h - trees of actors (OS processes) that call and supervise
    each other over ZeroMQ

    This is the one public header. Every type is opaque. Functions return 0
    or a negative TR_E* code (see TR_ERRORS and tr_strerror); the detail of
    a failure is in a tr_error_t. Objects made by _open/_new are ended by
    _close(&p)/_destroy(&p), which accept NULL and set the caller's pointer
    to NULL. Timeouts are in milliseconds: -1 waits forever, 0 does not
    wait. What recv/result/error functions hand out is borrowed, valid until
    the next call on the same object.

    Every actor runs all of its work on one thread: the root's main
    function, every incoming call and every task spawned with
    tr_task_spawn() is a coroutine on that thread. A blocking call of this
    API (tr_portal_run, tr_sleep, tr_to_thread, tr_task_join, ...) parks
    the calling task and lets the others run; it is a checkpoint: once the
    task is cancelled it returns TR_ECANCELED, and the task is expected to
    unwind and return. Blocking functions must be called from a task (the
    root main, an exported function or a spawned task); called elsewhere
    they return TR_EINVAL.
    =========================================================================
*/
#ifndef TROUPE_H_INCLUDED
#define TROUPE_H_INCLUDED

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TR_VERSION_MAJOR 0
#define TR_VERSION_MINOR 1
#define TR_VERSION_PATCH 0

//  Wire protocol version carried in every hello. A peer with another
//  major version is refused.
#define TR_PROTOCOL_MAJOR 1
#define TR_PROTOCOL_MINOR 4

#if defined(TROUPE_BUILD) && defined(__GNUC__)
#   define TR_EXPORT __attribute__ ((visibility ("default")))
#else
#   define TR_EXPORT
#endif

#if defined(__GNUC__)
#   define TR_PRINTF(f, a) __attribute__ ((format (printf, f, a)))
#else
#   define TR_PRINTF(f, a)
#endif

//  --------------------------------------------------------------------------
//  Return codes. One table makes the enum, tr_strerror() and tr_errname().

#define TR_ERRORS(X) \
    X (ECANCELED,   -1, "operation was cancelled") \
    X (EREMOTE,     -2, "remote actor raised an error; see the error object") \
    X (ETIMEDOUT,   -3, "deadline passed before the operation completed") \
    X (ECLOSED,     -4, "channel or object is closed") \
    X (EPROTO,      -5, "protocol violation") \
    X (ENOTEXPOSED, -6, "function is not exported by that actor") \
    X (ENOTFOUND,   -7, "no such actor, call or object") \
    X (ECRASHED,    -8, "actor process died; see the error object") \
    X (EINVAL,      -9, "invalid argument") \
    X (ENOMEM,     -10, "out of memory") \
    X (ESYS,       -11, "system call failed") \
    X (ETOOBIG,    -12, "message exceeds a size, length or depth limit") \
    X (EVERSION,   -13, "peer speaks an incompatible protocol version") \
    X (EFORMAT,    -14, "value does not match the format string") \
    X (ELIMIT,     -15, "a bound on calls or queued answers per peer or per actor was reached")

typedef enum {
    TR_OK = 0,
#define TR_ERRORS_ENUM(name, value, text) TR_##name = value,
    TR_ERRORS (TR_ERRORS_ENUM)
#undef TR_ERRORS_ENUM
} tr_rc_t;

//  One line of text for a return code; never NULL.
TR_EXPORT const char *
    tr_strerror (int rc);

//  The code's name without prefix ("ECANCELED"); "OK" for 0, "EUNKNOWN"
//  for anything else. Never NULL.
TR_EXPORT const char *
    tr_errname (int rc);

//  --------------------------------------------------------------------------
//  Opaque types

typedef struct tr_actor tr_actor_t;         //  this process's actor
typedef struct tr_ctx tr_ctx_t;             //  one running task
typedef struct tr_task tr_task_t;           //  handle on a spawned task
typedef struct tr_nursery tr_nursery_t;     //  owns child actors
typedef struct tr_portal tr_portal_t;       //  handle on a remote actor
typedef struct tr_error tr_error_t;         //  boxed error, maybe a list
typedef struct tr_args tr_args_t;           //  an encoded value to send
typedef struct tr_value tr_value_t;         //  a received value, owned
typedef struct tr_reply tr_reply_t;         //  where a function puts its result
typedef struct tr_context tr_context_t;     //  caller's handle on an open context
typedef struct tr_stream tr_stream_t;       //  one side of a context's stream

//  --------------------------------------------------------------------------
//  Exported functions. Only functions in an actor's export table can be
//  called by its peers; anything else is answered with TR_ENOTEXPOSED.
//
//  The function receives the call's arguments (the value the caller
//  passed, an empty array when it passed NULL), sets its result with
//  tr_reply_set() or tr_reply_pack() (nil when it sets none) and returns
//  0. To fail, it returns tr_raise(...), or any negative code: the code
//  of the last failed tr_portal_run of this task relays that call's error
//  with this actor added to its chain (rule 5); other codes are sent as an
//  error whose type is the code's name.

typedef int (tr_fn) (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out);

typedef enum {
    TR_CALL = 0,        //  request/response (tr_portal_run)
    TR_CONTEXT = 1,     //  a context: started, then a stream both ways
                        //  (tr_portal_open_context)
    TR_STREAM = 2       //  one-way stream: values from the callee only
                        //  (tr_portal_open_stream_from)
} tr_kind_t;

//  Export flags.
#define TR_THREAD 0x1u  //  run the whole function on a pooled worker thread;
                        //  it may then call only tr_checkpoint, tr_raise,
                        //  tr_reply_* and the tr_pack/tr_unpack family

typedef struct {
    const char *name;       //  name peers call it by; NULL ends the table
    tr_fn *fn;
    tr_kind_t kind;
    unsigned flags;         //  TR_THREAD
    size_t stack_size;      //  task stack for this function; 0 = actor default
} tr_export_t;

#define TR_FN(name, fn)         { (name), (fn), TR_CALL, 0, 0 }
#define TR_FN_THREAD(name, fn)  { (name), (fn), TR_CALL, TR_THREAD, 0 }
#define TR_CTX_FN(name, fn)     { (name), (fn), TR_CONTEXT, 0, 0 }
#define TR_STREAM_FN(name, fn)  { (name), (fn), TR_STREAM, 0, 0 }
#define TR_EXPORTS_END          { NULL, NULL, TR_CALL, 0, 0 }

//  --------------------------------------------------------------------------
//  Configuration. Start from TR_CONFIG_INIT (or zero-initialise) and set
//  what you need: every 0 or NULL field takes the default named beside
//  it. size tells the library which version of the struct the program was
//  built with, so fields added later (only ever at the end) are read
//  only from programs that know them; 0 means the first layout, up to
//  linger_ms.

typedef struct {
    size_t size;                //  sizeof (tr_config_t), or 0
    const char *name;           //  actor name; default: basename of argv[0]
    const tr_export_t *exports; //  export table ending with TR_EXPORTS_END
    const char *worker_path;    //  binary that children run; default: this
                                //  program (/proc/self/exe)
    const char *bind;           //  where this actor's ROUTER binds: "ipc"
                                //  (default: a fresh ipc path under
                                //  $TMPDIR), "tcp" (tcp://127.0.0.1:*) or
                                //  a ZeroMQ endpoint
    size_t stack_size;          //  default task stack: 256 KiB
    size_t max_msg_size;        //  largest frame accepted: 16 MiB
    int max_depth;              //  deepest nesting accepted: 32
    int threads;                //  tr_to_thread worker threads: 4
    int cancel_ack_ms;          //  wait for a cancel ack: 1000
    int drain_ms;               //  drain a closing child's channel: 500
    int grace_ms;               //  grace before SIGTERM: 3000
    int term_ms;                //  SIGTERM to SIGKILL: 1000
    int hello_ms;               //  child hello deadline: 5000
    int heartbeat_ivl_ms;       //  ZMTP heartbeat interval: 500
    int heartbeat_timeout_ms;   //  a peer silent this long is lost: 3000
    int linger_ms;              //  ZMQ_LINGER when an actor closes: 1000
    int stream_window;          //  values a stream's receiver lets its
                                //  sender have in flight: 1024 (at least 64)
    const char *registry;       //  registry endpoints, "ENDPOINT[,ENDPOINT...]",
                                //  or "none"; --tr-registry overrides it;
                                //  default: $TROUPE_REGISTRY, else a root
                                //  serves its own (the embedded registry)
    int registry_max;           //  registrations a registry served here
                                //  holds: 4096
    int registry_lease_ms;      //  lease a registry served here grants;
                                //  registrants renew every third: 10000
    const char *keys;           //  CURVE key directory (made by tr_keygen or
                                //  `troupe keygen`); --tr-keys overrides it;
                                //  default: $TROUPE_KEYS, else no keys.
                                //  With keys, every socket speaks CURVE and
                                //  only peers whose public key is in
                                //  DIR/allowed may connect
    int insecure;               //  non-zero: allow binding a non-loopback
                                //  tcp address without keys (--tr-insecure);
                                //  default: refuse to start
    int max_calls_per_peer;     //  calls one peer may have served here at
                                //  once; more are refused with TR_ELIMIT
                                //  ("TooManyCalls"): 1024
    int max_calls;              //  calls served here at once, from every
                                //  peer together: 16384
    size_t max_queued_bytes;    //  bytes sent to one peer and not yet taken
                                //  by the network; a peer that lets more
                                //  pile up is disconnected (TR_ELIMIT,
                                //  "SendQueueFull"): 64 MiB, never less
                                //  than max_msg_size
} tr_config_t;

#define TR_CONFIG_INIT          { .size = sizeof (tr_config_t) }
//  The size of the first layout (every field up to linger_ms).
#define TR_CONFIG_SIZE_0_1 \
    (offsetof (tr_config_t, linger_ms) + sizeof (int))

//  --------------------------------------------------------------------------
//  The entry point; every program calls it from main().
//
//  It decides the process's role. Started by a user it is the root: it
//  starts the runtime and runs root_main(self, arg) as the first task, and
//  returns root_main's return value once root_main has returned, every
//  other task has ended and every child is reaped. Started by a parent's
//  nursery (the environment says so) it is a child: it connects back, says
//  hello, serves calls until it is cancelled or its parent is gone, and
//  returns 0 when its parent cancelled it, 1 when its parent died or could
//  not be reached, 128 + the signal after SIGINT or SIGTERM. With
//  --tr-daemon (and --tr-name NAME, --tr-bind ENDPOINT, --tr-registry
//  ENDPOINT[,ENDPOINT...]) it prints its uid and endpoint on stdout,
//  registers under its name and serves until a signal or a peer's cancel.
//  A root or daemon finds its registry in --tr-registry, else
//  config.registry, else $TROUPE_REGISTRY; a child in what its parent
//  passed down. Keys the same way: --tr-keys DIR, else config.keys, else
//  $TROUPE_KEYS; children inherit the directory's path (never a key)
//  through $TROUPE_KEYS. Binding a non-loopback tcp address without keys
//  fails with TR_EINVAL unless --tr-insecure or config.insecure says so.
//  SIGINT or SIGTERM cancels the root's tasks and its children; tr_run then
//  returns 130 or 143 unless root_main returned another non-zero code.
//  Returns a negative TR_E* code when the runtime cannot start.
TR_EXPORT int
    tr_run (const tr_config_t *config, int argc, char **argv,
            int (*root_main) (tr_actor_t *self, void *arg), void *arg);

//  This actor's uid (name@uuid), name and the endpoint peers reach it at.
TR_EXPORT const char *
    tr_actor_uid (const tr_actor_t *self);
TR_EXPORT const char *
    tr_actor_name (const tr_actor_t *self);
TR_EXPORT const char *
    tr_actor_endpoint (const tr_actor_t *self);

//  The context of the task that is running now, or NULL outside a task.
TR_EXPORT tr_ctx_t *
    tr_actor_ctx (tr_actor_t *self);

//  The actor a task runs in.
TR_EXPORT tr_actor_t *
    tr_ctx_actor (tr_ctx_t *ctx);

//  --------------------------------------------------------------------------
//  Tasks and checkpoints

//  Returns TR_ECANCELED once the task is cancelled, else 0 (TR_EINVAL
//  without a task). CPU-bound loops call it to stay cancellable. Never
//  parks.
TR_EXPORT int
    tr_checkpoint (tr_ctx_t *ctx);

//  The detail of the last failure of a blocking call this task made
//  (borrowed; valid until the task's next failing call), or NULL. Each
//  task has its own: many tasks may call through one portal at once.
TR_EXPORT const tr_error_t *
    tr_ctx_error (tr_ctx_t *ctx);

//  True once the task has been cancelled.
TR_EXPORT bool
    tr_ctx_cancelled (tr_ctx_t *ctx);

//  Park the task for ms milliseconds while the others run. Returns 0,
//  TR_ECANCELED or TR_EINVAL.
TR_EXPORT int
    tr_sleep (tr_ctx_t *ctx, int ms);

//  Run fn(arg) on a pooled worker thread while the task waits; *ret (if
//  not NULL) receives fn's return value. If the task is cancelled it stops
//  waiting and returns TR_ECANCELED at once; the thread runs fn to its end
//  and its result is dropped. fn must not call troupe functions other than
//  tr_pack/tr_unpack. Returns 0, TR_ECANCELED, TR_ENOMEM or TR_EINVAL.
TR_EXPORT int
    tr_to_thread (tr_ctx_t *ctx, void *(*fn) (void *), void *arg, void **ret);

//  Record an error of the given type (a short word such as "ValueError")
//  and message on the task and return TR_EREMOTE, so that an exported
//  function can `return tr_raise (ctx, "ValueError", "n=%d", n);`. Its
//  caller's call returns TR_EREMOTE with that error, this actor as origin
//  and the C frames of the raising task as traceback (function names need
//  the program linked with -rdynamic, and non-static functions). Returns
//  TR_EREMOTE, or TR_EINVAL / TR_ENOMEM when nothing was recorded.
TR_EXPORT int
    tr_raise (tr_ctx_t *ctx, const char *type, const char *fmt, ...)
    TR_PRINTF (3, 4);

//  Start fn(ctx, arg) as a new task of this actor; it runs when the
//  calling task next parks. *task is the handle to join or cancel it.
//  Returns 0, TR_ENOMEM or TR_EINVAL.
TR_EXPORT int
    tr_task_spawn (tr_actor_t *self, int (*fn) (tr_ctx_t *ctx, void *arg),
                   void *arg, tr_task_t **task);

//  Ask the task to stop: its current or next checkpoint returns
//  TR_ECANCELED. Never parks. Returns 0 or TR_EINVAL.
TR_EXPORT int
    tr_task_cancel (tr_task_t *task);

//  Wait for the task to end, store its return value in *result (if not
//  NULL), free it and set *task to NULL. If the waiting task is cancelled
//  first it returns TR_ECANCELED and *task stays valid. Returns 0,
//  TR_ECANCELED or TR_EINVAL.
TR_EXPORT int
    tr_task_join (tr_task_t **task, int *result);

//  Wait for the task to end even if the waiting task is cancelled (a
//  shield: cleanup code that must wait for its own subtasks), at most
//  timeout_ms (-1 forever, 0 do not wait). On 0 it is tr_task_join's: the
//  task's return value in *result (if not NULL), the task freed and *task
//  set to NULL. On TR_ETIMEDOUT *task stays valid (cancel it, join it
//  again). The task is not cancelled by this call:
//  cancel it first (tr_task_cancel) if it should stop rather than finish.
//  Returns 0, TR_ETIMEDOUT or TR_EINVAL (no task, joining itself, called
//  outside a task, or timeout_ms < -1).
TR_EXPORT int
    tr_task_join_shielded (tr_task_t **task, int timeout_ms, int *result);

//  --------------------------------------------------------------------------
//  Replies (inside an exported function)

//  Set the call's result to a copy of value. Returns 0, TR_ENOMEM or
//  TR_EINVAL.
TR_EXPORT int
    tr_reply_set (tr_reply_t *out, const tr_args_t *value);

//  Set the call's result from a tr_pack format. Returns 0, TR_EFORMAT,
//  TR_ENOMEM or TR_EINVAL.
TR_EXPORT int
    tr_reply_pack (tr_reply_t *out, const char *fmt, ...);

//  Set the call's result to a copy of a msgpack object. The function's
//  own args, passed back as they are, are not copied: the answer is sent
//  from the bytes of the request. Returns 0, TR_ENOMEM or TR_EINVAL.
TR_EXPORT int
    tr_reply_object (tr_reply_t *out, const msgpack_object *value);

//  --------------------------------------------------------------------------
//  Nurseries: a nursery owns the child actors started through it. Closing
//  it waits for every run_in_actor result, cancels the children that are
//  still running (each is asked, then SIGTERM, then SIGKILL after the
//  grace periods) and reaps every one: nothing outlives it.

//  Open a nursery of this actor. Returns 0, TR_ENOMEM or TR_EINVAL.
TR_EXPORT int
    tr_nursery_open (tr_actor_t *self, tr_nursery_t **nursery);

//  Options for one child. Zero-initialise; NULL fields take the config's.
typedef struct {
    const char *worker_path;        //  binary to run; default config's
    const char *bind;               //  child's ROUTER bind; default config's
    const char *const *env;         //  extra "KEY=VALUE" strings, NULL-ended
} tr_spawn_opts_t;

//  Spawn a child actor that serves calls until it is cancelled and return
//  a portal on it (owned by the nursery) once it has said hello. A child
//  that does not say hello within the hello deadline, that dies first, or
//  whose spawning task or nursery is cancelled first is killed and reaped;
//  tr_nursery_error then says why. Returns 0, TR_ECANCELED, TR_ETIMEDOUT,
//  TR_ECRASHED, TR_EVERSION, TR_ESYS, TR_ENOMEM, TR_ECLOSED (nursery
//  closing or cancelled) or TR_EINVAL.
TR_EXPORT int
    tr_nursery_start_actor (tr_nursery_t *self, const char *name,
                            const tr_spawn_opts_t *opts, tr_portal_t **portal);

//  Start count children named name-0 ... name-(count-1) at once: every
//  process is spawned before any hello is awaited, so they start in
//  parallel. On 0, portals [i] (owned by the nursery) is child i's. If
//  any fails to start, every other is killed and reaped, the array is
//  left NULL and the first failure is returned (tr_nursery_error says
//  why). Returns as tr_nursery_start_actor.
TR_EXPORT int
    tr_nursery_start_actors (tr_nursery_t *self, const char *name, size_t count,
                             const tr_spawn_opts_t *opts, tr_portal_t **portals);

//  Spawn a child actor and start fn(args) in it as its main task; its
//  final message is kept by the portal (tr_portal_result) and the child is
//  cancelled and reaped once it has answered. args is borrowed (NULL: no
//  arguments). Returns as tr_nursery_start_actor, or TR_ETOOBIG when args
//  exceed the limits (the child is then cancelled and closing reaps it).
TR_EXPORT int
    tr_nursery_run_in_actor (tr_nursery_t *self, const char *name,
                             const char *fn, const tr_args_t *args,
                             tr_portal_t **portal);

//  Supervision: what a nursery does when a child it started with
//  start_actor (or start_actors) dies without being asked to.
typedef enum {
    TR_NO_RESTART = 0,      //  nothing until close, which reports the death
    TR_ONE_FOR_ONE = 1,     //  restart the child that died
    TR_ONE_FOR_ALL = 2,     //  restart every start_actor child
    TR_REST_FOR_ONE = 3     //  restart it and those started after it
} tr_strategy_t;

typedef struct {
    tr_strategy_t strategy;
    int intensity;          //  at most this many deaths...: default 3
    int period_ms;          //  ...within this period: default 5000
} tr_supervise_t;

//  Give the nursery a restart strategy (before or after children start).
//  A child that dies unasked (crash, exit, a signal, or a link lost past
//  the heartbeat timeout) is restarted under the same name, with the same
//  options, together with the siblings the strategy names (each asked to
//  cancel first, then SIGTERM and SIGKILL after the grace periods, as at
//  close). Its portal stays the user's: calls in flight when it died fail
//  with its death, calls made while it restarts wait for the new process
//  and go to it. A death is logged with its cause (TR-RESTART), and
//  tr_portal_restarts counts restarts. run_in_actor children are never
//  restarted: their end is their result. More deaths than intensity
//  within period_ms (a restart that fails counts as one) make the
//  supervisor give up: the nursery is cancelled (its other children are
//  asked to cancel), calls through the dead child's portal fail with its
//  death, tr_nursery_wait returns, and tr_nursery_close returns every
//  death that counted, as a list. Returns 0 or TR_EINVAL (closing,
//  cancelled, or a bad strategy, intensity < 0 or period_ms < 0).
TR_EXPORT int
    tr_nursery_supervise (tr_nursery_t *self, const tr_supervise_t *how);

//  Park until the nursery has failed: its supervisor gave up, or (with no
//  strategy) a start_actor child died unasked, or a run_in_actor child
//  failed; or until it is cancelled, or timeout_ms passed (-1: no limit).
//  Returns the failure's code (TR_ECRASHED, TR_EREMOTE, ...),
//  TR_ECANCELED (the nursery or the calling task was cancelled),
//  TR_ETIMEDOUT, or TR_EINVAL.
TR_EXPORT int
    tr_nursery_wait (tr_nursery_t *self, int timeout_ms);

//  The last spawn failure of this nursery (borrowed), or NULL: why a
//  start_actor or run_in_actor failed, e.g. the child's exit status. With
//  several tasks spawning at once, each reads its own with tr_ctx_error.
TR_EXPORT const tr_error_t *
    tr_nursery_error (const tr_nursery_t *self);

//  Cancel every child: ask each to cancel (hard = false) or kill each at
//  once (hard = true). Never parks; tr_nursery_close waits. Returns 0 or
//  TR_EINVAL.
TR_EXPORT int
    tr_nursery_cancel (tr_nursery_t *self, bool hard);

//  Wait for every run_in_actor result, cancel the children still running,
//  reap all of them, free the nursery and its portals and set *nursery to
//  NULL. If errors is not NULL it receives the list of the children's
//  errors (caller destroys it). If the calling task is cancelled the
//  children are cancelled at once; the nursery is still fully closed.
//  Returns 0 (also for *nursery == NULL), or the first child's error code
//  (TR_EREMOTE, TR_ECRASHED, ...), or TR_ECANCELED when the cancel cut
//  short the wait for results, or TR_EINVAL outside a task.
//  A child that ignored its cancel and was killed is logged, not listed.
TR_EXPORT int
    tr_nursery_close (tr_nursery_t **nursery, tr_error_t **errors);

//  --------------------------------------------------------------------------
//  Portals: handles on remote actors. Portals from a nursery belong to it.

//  Call fn(args) in the remote actor and wait for its result. args is
//  borrowed (NULL: no arguments). On 0, *out (if not NULL) receives the
//  result (destroy it with tr_value_destroy). Many tasks may call through
//  one portal at once. If the calling task is cancelled, the remote call
//  is cancelled and its ack awaited (up to cancel_ack_ms) before this
//  returns TR_ECANCELED. Returns 0, TR_EREMOTE, TR_ENOTEXPOSED (the error
//  names the function and actor), TR_ECRASHED, TR_ECLOSED, TR_ECANCELED,
//  TR_ETOOBIG, TR_ELIMIT (the callee serves as many calls as it may, from
//  us or from everyone: "TooManyCalls") or TR_EINVAL; tr_portal_error()
//  then has the detail.
TR_EXPORT int
    tr_portal_run (tr_portal_t *self, const char *fn, const tr_args_t *args,
                   tr_value_t **out);

//  The final value of a run_in_actor portal's main call. Waits for it the
//  first time; later calls return the same value (nil included) at once.
//  *value is borrowed from the portal. Returns 0, or the call's failure
//  (TR_EREMOTE, TR_ECRASHED, ...) every time, or TR_ECANCELED, or
//  TR_EINVAL for a portal with no main call, or TR_ENOMEM.
TR_EXPORT int
    tr_portal_result (tr_portal_t *self, const msgpack_object **value);

//  Ask the remote actor to cancel all its work and exit; wait up to
//  timeout_ms for its ack. From then on calls through the portal return
//  TR_ECLOSED, and the actor's exit is not reported as a failure.
//  Returns 0, TR_ETIMEDOUT, TR_ECLOSED, TR_ECANCELED, TR_EINVAL, or the
//  code of the actor's death (TR_ECRASHED) if it had already died.
TR_EXPORT int
    tr_portal_cancel_actor (tr_portal_t *self, int timeout_ms);

//  Open a portal on the actor serving at endpoint (a daemon, or any actor
//  whose endpoint you know) and return once it has answered hello. The
//  portal is the caller's: close it with tr_portal_close. Returns 0,
//  TR_ETIMEDOUT, TR_EVERSION (it speaks another major version),
//  TR_ECANCELED, TR_ESYS (bad endpoint), TR_ENOMEM or TR_EINVAL.
TR_EXPORT int
    tr_portal_open (tr_actor_t *self, const char *endpoint, int timeout_ms,
                    tr_portal_t **portal);

//  Close a portal from tr_portal_open; calls still waiting on it return
//  TR_ECLOSED. The remote actor goes on (cancel it first to stop it).
//  Never parks. Returns 0, or TR_EINVAL for a portal a nursery owns.
TR_EXPORT int
    tr_portal_close (tr_portal_t **portal);

//  The calling task's last failure on this portal (borrowed, valid until
//  the task's next failing call), or NULL. Each task reads its own:
//  another task's failure on the same portal never replaces it.
TR_EXPORT const tr_error_t *
    tr_portal_error (const tr_portal_t *self);

//  The remote actor's uid (name@uuid), ROUTER endpoint and process id, as
//  its hello gave them (the pid of a daemon may be on another host).
TR_EXPORT const char *
    tr_portal_uid (const tr_portal_t *self);
TR_EXPORT const char *
    tr_portal_endpoint (const tr_portal_t *self);
TR_EXPORT int
    tr_portal_pid (const tr_portal_t *self);
//  How many times a supervised nursery restarted the portal's actor. The
//  uid, endpoint and pid above are the current process's: strings read
//  before a restart are freed by it.
TR_EXPORT int
    tr_portal_restarts (const tr_portal_t *self);

//  --------------------------------------------------------------------------
//  Contexts: a long conversation with one remote task. The caller opens a
//  context on a function exported as TR_CONTEXT; the callee calls
//  tr_ctx_started() once with a first value, which the caller's open
//  returns; then either side may open the context's stream and send and
//  receive until one of them closes it; the callee's return value or
//  error is the context's result.
//
//  Rule 1: the callee calls tr_ctx_started exactly once, and before
//  tr_ctx_open_stream. Calling started twice, or opening the stream
//  first, returns TR_EPROTO, and the caller sees that error boxed (its
//  open, receive or result returns TR_EPROTO with a ProtocolError from
//  the callee), whatever the function returns afterwards. A context function that
//  returns without calling started fails the same way.

//  A function exported as TR_STREAM (TR_STREAM_FN) is a one-way stream:
//  the runtime sends started (a nil first value) before it runs it, so
//  the caller's tr_portal_open_stream_from returns at once; it takes its
//  stream with tr_ctx_open_stream, sends with tr_stream_send, and ends
//  the stream by returning (its result goes back, as a context's) or
//  failing. It never calls tr_ctx_started.

//  Callee: send first (borrowed; NULL sends nil) to the caller, whose
//  open then returns. Returns 0, TR_EPROTO (rule 1; or in a stream
//  function, which the runtime starts: the caller sees that error boxed),
//  TR_ECLOSED (the caller is gone), TR_ETOOBIG, TR_ECANCELED or TR_EINVAL
//  (not in a context or stream function).
TR_EXPORT int
    tr_ctx_started (tr_ctx_t *ctx, const tr_args_t *first);

//  Callee: the stream of the context or one-way stream this task serves
//  (owned by it; tr_stream_close ends it, and it ends by itself when the
//  function returns). Returns 0, TR_EPROTO (before started, rule 1),
//  TR_ECLOSED (this side closed it already) or TR_EINVAL.
TR_EXPORT int
    tr_ctx_open_stream (tr_ctx_t *ctx, tr_stream_t **stream);

//  Caller: start fn(args) in the remote actor as a context and wait for
//  its first value. On 0, *context is the caller's (close it with
//  tr_context_close) and *first (if not NULL) the value the callee
//  passed to started, borrowed from the context. If the callee fails
//  before started, returns its error (TR_EREMOTE, TR_ENOTEXPOSED, ...)
//  and tr_portal_error() has it. If the calling task is cancelled, the
//  remote task is cancelled and its ack awaited before TR_ECANCELED.
//  Returns as tr_portal_run.
TR_EXPORT int
    tr_portal_open_context (tr_portal_t *portal, const char *fn, const tr_args_t *args,
                            tr_context_t **context, const msgpack_object **first);

//  Caller: the context's stream (owned by the context). Values the
//  callee sent before it are kept and read first; once the context has
//  ended, receives return how it ended. Returns 0, TR_ECLOSED (this side
//  closed it already) or TR_EINVAL.
TR_EXPORT int
    tr_context_open_stream (tr_context_t *self, tr_stream_t **stream);

//  Caller: wait for the callee's final value. *value (if not NULL) is
//  borrowed from the context; every later call returns the same outcome
//  at once. Returns 0, TR_EREMOTE (the callee failed; tr_context_error
//  says how), TR_ECANCELED (the context was cancelled: error type
//  "ContextCancelled", not a failure of the callee; or the waiting task
//  was cancelled), TR_ECRASHED or TR_ECLOSED (the peer died or the
//  connection was lost) or TR_EINVAL.
TR_EXPORT int
    tr_context_result (tr_context_t *self, const msgpack_object **value);

//  Caller: cancel the remote task (only it: its actor goes on serving)
//  and wait, shielded, up to cancel_ack_ms for its ack. The result is
//  then TR_ECANCELED with a "ContextCancelled" error, unless the final
//  value came first. Returns 0 (acknowledged, or the context had already
//  ended), TR_ETIMEDOUT (no ack in time) or TR_EINVAL.
TR_EXPORT int
    tr_context_cancel (tr_context_t *self);

//  Caller: end the context and free it; sets *self to NULL. A context
//  still running remotely is cancelled first (with its ack awaited, as
//  tr_context_cancel). Returns 0 or TR_EINVAL (outside a task).
TR_EXPORT int
    tr_context_close (tr_context_t **self);

//  The calling task's last failure on this context or its stream
//  (borrowed), or NULL.
TR_EXPORT const tr_error_t *
    tr_context_error (const tr_context_t *self);

//  Rule 10, gather: open fn(args) as a context on each of n portals,
//  sending every request before waiting for any first value. On 0,
//  contexts [i] and firsts [i] (firsts may be NULL) are those of portals
//  [i]. If any open fails, every other context is cancelled (all cancels
//  sent before any ack is awaited) and closed, the arrays are left NULL,
//  and the first failure is returned (tr_portal_error of its portal has
//  it).
TR_EXPORT int
    tr_contexts_open (tr_portal_t *const *portals, size_t n, const char *fn,
                      const tr_args_t *args, tr_context_t **contexts,
                      const msgpack_object **firsts);

//  Close n contexts together: every stream still open is closed and every
//  context still running remotely is cancelled, all cancels sent before
//  any ack is awaited. Sets each contexts [i] to NULL. Returns 0 or
//  TR_EINVAL.
TR_EXPORT int
    tr_contexts_close (tr_context_t **contexts, size_t n);

//  --------------------------------------------------------------------------
//  Streams: values sent in order both ways within one context, with
//  per-stream credit flow control: a sender may have at most the
//  receiver's stream_window values unread; past that, send parks until
//  the receiver has read more. Closing either side ends the stream both
//  ways: the other side receives every value sent before the close and
//  then TR_ECLOSED, and its sends return TR_ECLOSED.

//  Send value (borrowed). A checkpoint. Values sent in a row (within
//  100 us of each other) leave together when the task parks or calls
//  tr_checkpoint, or after 64 values or 8 KiB; a value sent after a pause
//  leaves at once. Returns 0, TR_ECLOSED (the
//  stream was closed by either side), TR_EREMOTE / TR_ECRASHED (the
//  context ended in a failure), TR_ECANCELED, TR_ETOOBIG, TR_ENOMEM or
//  TR_EINVAL.
TR_EXPORT int
    tr_stream_send (tr_stream_t *self, const tr_args_t *value);

//  Send a value built from a tr_pack format, without a tr_args_t.
//  Returns as tr_stream_send, or TR_EFORMAT.
TR_EXPORT int
    tr_stream_send_pack (tr_stream_t *self, const char *fmt, ...);

//  Receive the next value; *value is borrowed until the next receive on
//  this stream, or its close. A checkpoint. Returns 0, TR_ETIMEDOUT,
//  TR_ECLOSED (the stream ended and every value sent before its end has
//  been read), TR_EREMOTE (the callee failed: every value it sent before
//  is read first), TR_ECRASHED or TR_ECLOSED (its peer is gone),
//  TR_ECANCELED or TR_EINVAL.
TR_EXPORT int
    tr_stream_recv (tr_stream_t *self, const msgpack_object **value, int timeout_ms);

//  Close this side: the other side is told (stop) and values not yet
//  read are dropped. Sets *self to NULL. A context's stream never parks.
//  A stream from tr_portal_open_stream_from is freed with its context,
//  as tr_context_close: a callee still running is cancelled and its ack
//  awaited (shielded, up to cancel_ack_ms), so only in a task. Returns 0
//  or TR_EINVAL (a stream from a function, outside a task: *self kept).
TR_EXPORT int
    tr_stream_close (tr_stream_t **self);

//  --------------------------------------------------------------------------
//  One-way streams: the caller opens a function exported as TR_STREAM and
//  receives what it sends. The stream owns a hidden context, which carries
//  the callee's result or error, and its cancel: there is nothing else to
//  close.

//  Caller: start fn(args) in the remote actor as a one-way stream and
//  wait until it runs (the callee's runtime says so before the function
//  starts). On 0, *stream is the caller's: read it with tr_stream_recv,
//  then tr_stream_result; free it with tr_stream_close (a task that ends
//  with it open closes it). Sends on it return TR_EINVAL. A failure
//  before the start (TR_ENOTEXPOSED, TR_EPROTO for a function of another
//  kind, the connection's failure, ...) is returned as by
//  tr_portal_open_context, with tr_portal_error() holding it; if the
//  calling task is cancelled, the remote task is cancelled and its ack
//  awaited before TR_ECANCELED. Returns as tr_portal_run.
TR_EXPORT int
    tr_portal_open_stream_from (tr_portal_t *portal, const char *fn, const tr_args_t *args,
                                tr_stream_t **stream);

//  Caller: wait for the final value of the function a stream was opened
//  from, as tr_context_result. Read the values first: a callee out of
//  credit waits for them to be read before it can return. *value (if not
//  NULL) is borrowed from the stream. Returns 0, TR_EREMOTE (the callee
//  failed; tr_stream_error says how), TR_ECANCELED (cancelled: error type
//  "ContextCancelled"; or the waiting task was cancelled), TR_ECRASHED
//  or TR_ECLOSED (the peer died or the connection was lost), or
//  TR_EINVAL (not a stream from tr_portal_open_stream_from, or outside a
//  task).
TR_EXPORT int
    tr_stream_result (tr_stream_t *self, const msgpack_object **value);

//  The calling task's last failure on a stream from
//  tr_portal_open_stream_from (its receives and its result; borrowed),
//  or NULL (none, or another stream).
TR_EXPORT const tr_error_t *
    tr_stream_error (const tr_stream_t *self);

//  --------------------------------------------------------------------------
//  The registry: find actors by name, on one host or many.
//
//  Every actor registers its name, uid and endpoint with its registry and
//  keeps the registration alive as a lease: it renews it every third of
//  the lease, an actor that stops renewing is dropped once the lease runs
//  out, and one that exits unregisters at once. A root started with no
//  registry address (config.registry, --tr-registry, $TROUPE_REGISTRY)
//  serves the registry itself, and its children and theirs register
//  there; troupe-broker serves the same registry as a program of its own.
//  An address may list several registries: an actor registers with each,
//  and a find asks them in turn. A registry lost and back (a restarted
//  broker) gets every live actor's registration again within two renewal
//  periods.

//  Find a live actor registered under name and open a portal on it (see
//  tr_portal_open; close it with tr_portal_close). When several are, each
//  find starts from the next one. Returns 0, TR_ENOTFOUND (none, or none
//  answered), TR_ECLOSED (no registry could be reached: *portal NULL, the
//  task's error says why), TR_ECANCELED or TR_EINVAL.
TR_EXPORT int
    tr_find_actor (tr_actor_t *self, const char *name, tr_portal_t **portal);

//  As tr_find_actor, but wait up to timeout_ms for an actor to register
//  under name. Returns 0, TR_ETIMEDOUT, TR_ECLOSED, TR_ECANCELED or
//  TR_EINVAL.
TR_EXPORT int
    tr_wait_for_actor (tr_actor_t *self, const char *name, int timeout_ms,
                       tr_portal_t **portal);

//  Every live registration, or those under name when name is not NULL,
//  from every registry this actor uses (each actor once): an array of
//  maps {name, uid, endpoint, pid, host, parent, expires_ms,
//  age_ms}; the caller
//  destroys *entries. Returns 0, TR_ECLOSED (no registry answered),
//  TR_ECANCELED or TR_EINVAL.
TR_EXPORT int
    tr_registry_list (tr_actor_t *self, const char *name, tr_value_t **entries);

//  Register this actor under one more name (1 to 64 of A-Z a-z 0-9 . _ -),
//  kept alive with its own. Returns 0, TR_EREMOTE (a registry refused it:
//  bad name, or full; the task's error says which), TR_ECLOSED,
//  TR_ECANCELED or TR_EINVAL.
TR_EXPORT int
    tr_register_name (tr_actor_t *self, const char *name);

//  Drop a name given to tr_register_name. Returns 0, TR_ENOTFOUND (not
//  one of ours), TR_ECANCELED or TR_EINVAL.
TR_EXPORT int
    tr_unregister_name (tr_actor_t *self, const char *name);

//  The registry address this actor uses: its own endpoint when it serves
//  the embedded registry, NULL with no registry ("none").
TR_EXPORT const char *
    tr_registry_address (const tr_actor_t *self);

//  --------------------------------------------------------------------------
//  Keys for CURVE

//  Make a deployment's keys in dir (created mode 0700 if missing):
//  troupe.key_secret (mode 0600) and troupe.key, a key pair in czmq's
//  zcert format, and allowed/troupe.key, its public key, the first of
//  the peers allowed to connect. Never overwrites existing keys. Returns
//  0, TR_EINVAL (no dir, or dir holds keys already), TR_ESYS or
//  TR_ENOMEM.
TR_EXPORT int
    tr_keygen (const char *dir);

//  --------------------------------------------------------------------------
//  Values. tr_pack builds a msgpack value from a jansson-style format:
//      i int         I int64_t      u uint64_t     f double
//      b bool (int)  n nil          s const char * (NULL packs nil)
//      s# const char *, size_t      y const void *, size_t (bytes)
//      o const msgpack_object *     [ ... ] array   { s:v ... } map
//  Spaces, commas and colons between items are ignored.
//  tr_unpack reads one with the same letters, taking pointers:
//      i int *   I int64_t *   u uint64_t *   f double * (ints convert)
//      b bool *  n nothing (must be nil)
//      s const char ** (NUL-terminated: every value troupe hands out is)
//      s# const char **, size_t *      y const void **, size_t *
//      o const msgpack_object **       [ ... ] array (exact length;
//      "..." after the items allows more)   { s:v ... } map by key
//      ? before an item in a map: optional, left untouched if absent
//  Pointers point into the object and live as long as it does.

//  Encode a value; NULL (with the reason logged) if fmt is malformed or
//  out of memory. Destroy with tr_args_destroy.
TR_EXPORT tr_args_t *
    tr_pack (const char *fmt, ...);
TR_EXPORT tr_args_t *
    tr_vpack (const char *fmt, va_list ap);

//  Encode a copy of a msgpack object.
TR_EXPORT tr_args_t *
    tr_args_from_object (const msgpack_object *o);

TR_EXPORT void
    tr_args_destroy (tr_args_t **args);

//  The encoded bytes.
TR_EXPORT const void *
    tr_args_data (const tr_args_t *args);
TR_EXPORT size_t
    tr_args_size (const tr_args_t *args);

//  Decode per fmt. Returns 0, TR_EFORMAT (mismatch of format and value, or
//  a malformed format) or TR_EINVAL. tr_unpack_ex also writes the reason,
//  with the path where it failed, into msg (up to msg_size bytes).
TR_EXPORT int
    tr_unpack (const msgpack_object *o, const char *fmt, ...);
TR_EXPORT int
    tr_vunpack (const msgpack_object *o, const char *fmt, va_list ap);
TR_EXPORT int
    tr_unpack_ex (const msgpack_object *o, char *msg, size_t msg_size,
                  const char *fmt, ...);

//  A received value and the memory it lives in.
TR_EXPORT const msgpack_object *
    tr_value_object (const tr_value_t *value);

//  Decode encoded msgpack bytes into a new value (strings NUL-terminated).
//  Returns NULL on malformed input.
TR_EXPORT tr_value_t *
    tr_value_decode (const void *data, size_t size);

TR_EXPORT void
    tr_value_destroy (tr_value_t **value);

//  --------------------------------------------------------------------------
//  Errors. A tr_error_t is a boxed error: the code (TR_EREMOTE,
//  TR_ECRASHED, ...), a type ("ValueError", "Crashed", "NotExposed"), a
//  message, the uid of the actor where it arose, the chain of actors it
//  passed through (origin first) and the C frames where it was raised. A
//  nursery's errors come as a list linked by tr_error_next.

TR_EXPORT int
    tr_error_code (const tr_error_t *self);
TR_EXPORT const char *
    tr_error_type (const tr_error_t *self);
TR_EXPORT const char *
    tr_error_message (const tr_error_t *self);
TR_EXPORT const char *
    tr_error_origin (const tr_error_t *self);

//  Number of actors in the chain and the i-th one (0 = origin).
TR_EXPORT size_t
    tr_error_hops (const tr_error_t *self);
TR_EXPORT const char *
    tr_error_hop (const tr_error_t *self, size_t index);

//  The C frames captured at the origin, one per line ("" if none).
TR_EXPORT const char *
    tr_error_frames (const tr_error_t *self);

//  For TR_ECRASHED: the exit status, or the signal that killed the actor
//  (the other is 0).
TR_EXPORT int
    tr_error_exit_status (const tr_error_t *self);
TR_EXPORT int
    tr_error_signal (const tr_error_t *self);

//  The next error of a list, or NULL.
TR_EXPORT const tr_error_t *
    tr_error_next (const tr_error_t *self);

//  The whole error as text, traceback included (caller frees).
TR_EXPORT char *
    tr_error_format (const tr_error_t *self);

TR_EXPORT tr_error_t *
    tr_error_dup (const tr_error_t *self);

//  Destroy the error and every error after it in its list.
TR_EXPORT void
    tr_error_destroy (tr_error_t **self);

//  --------------------------------------------------------------------------
//  Logging: lines go to stderr through czmq's zsys log, prefixed with the
//  actor's name and pid, filtered by TROUPE_LOGLEVEL=error|warning|info|debug
//  (default: warning). id is a short stable tag such as "TR-BAD-FRAME".

typedef enum {
    TR_LOG_ERROR = 0,
    TR_LOG_WARNING = 1,
    TR_LOG_INFO = 2,
    TR_LOG_DEBUG = 3
} tr_loglevel_t;

TR_EXPORT void
    tr_log (tr_loglevel_t level, const char *id, const char *fmt, ...)
    TR_PRINTF (3, 4);

#ifdef __cplusplus
}
#endif

#endif
