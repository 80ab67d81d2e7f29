/*  =========================================================================
    tri_runtime.h - the process's runtime: configuration, identity and
    the loop (runtime.c)

    The loop is a registry of watchers and timers and knows none of its
    clients. A module that owns a descriptor or a ZeroMQ socket embeds a
    tri_watch_t and registers it with its own callback; a module that needs
    a deadline embeds a tri_timer_t. Between waits the loop runs every
    ready task (task.c). It sleeps in one epoll set that holds every
    descriptor once, so an idle watcher costs nothing per iteration.

    The bodies of tri_watch_t and tri_timer_t are here only so that owners
    can embed them; their fields are the loop's.
    =========================================================================
*/
#ifndef TRI_RUNTIME_H_INCLUDED
#define TRI_RUNTIME_H_INCLUDED

typedef struct tri_watch tri_watch_t;
typedef struct tri_timer tri_timer_t;

//  Called on the loop (never in a task: it must not park). For a socket,
//  drain is true when the socket is known to hold messages (read a batch),
//  false when its descriptor woke the loop (read one: see runtime.c).
typedef void (tri_watch_fn) (tri_watch_t *watch, bool drain);
typedef void (tri_timer_fn) (tri_timer_t *timer);

struct tri_watch {
    int fd;                     //  what epoll watches
    void *socket;               //  the ZeroMQ socket behind fd, or NULL
    tri_watch_fn *fn;
    void *arg;                  //  the owner's
    bool active;                //  in the epoll set
    bool touched;               //  socket used since last found empty
    bool ready;                 //  socket found holding messages
    tri_node_t touched_node;    //  in the loop's list of touched sockets
};

struct tri_timer {
    int64_t deadline;
    tri_timer_fn *fn;
    void *arg;                  //  the owner's
    tri_node_t node;            //  in the loop's timers, by deadline
};

//  --------------------------------------------------------------------------
//  Start and stop

//  Set up the runtime of this process: configuration (defaults filled in),
//  identity, ZeroMQ context, scheduler, epoll set. Returns 0, TR_ENOMEM
//  or TR_ESYS.
int
    tri_rt_start (const tr_config_t *config, const char *name, const char *uid);
//  Tear down what tri_rt_start made; every watcher must be gone.
void
    tri_rt_stop (void);
bool
    tri_rt_running (void);
//  True on the thread that runs the loop (not on a pool thread).
bool
    tri_rt_this_thread (void);

//  The configuration with every default filled in, the frame limits, this
//  actor, its uid and the ZeroMQ context.
const tr_config_t *
    tri_config (void);
const tri_limits_t *
    tri_limits (void);
tr_actor_t *
    tri_actor (void);
const char *
    tri_uid (void);
void *
    tri_zctx (void);
//  Record the endpoint peers reach this actor at (copied).
int
    tri_rt_set_endpoint (const char *endpoint);
//  A fresh call id, unique in this actor; never 0.
uint64_t
    tri_cid_next (void);
//  The highest call id handed out so far.
uint64_t
    tri_cid_last (void);

//  name@uuid, or NULL on ENOMEM (caller frees).
char *
    tri_uid_new (const char *name);
//  Remove the socket file of an ipc endpoint (others: nothing).
void
    tri_ipc_unlink (const char *endpoint);
//  The configured limits and linger on a new socket, then its link (as
//  tri_socket_link).
void
    tri_socket_options (void *socket, bool remote);
//  The link of what the socket binds or connects next: remote, ZMTP
//  heartbeats on libzmq's I/O thread for remote links; else none, on the
//  I/O thread of the links between a parent and its children, whose
//  liveness is seen from their process state. libzmq's heartbeat timer
//  belongs to the I/O thread: one connection with heartbeats makes every
//  wake-up of its thread pay, so the two kinds never share one.
void
    tri_socket_link (void *socket, bool remote);

//  --------------------------------------------------------------------------
//  The loop

//  Run tasks and watchers until done () is true (checked after every run
//  of the ready tasks).
void
    tri_loop_run (bool (*done) (void));
//  Call fn each time the ready tasks have all run, before the loop looks
//  at its sockets (the channel layer sends the frames it held then). One
//  hook; NULL removes it.
void
    tri_loop_on_ran (void (*fn) (void));
//  Watch fd (socket NULL), or the ZeroMQ socket (its ZMQ_FD). Returns 0
//  or TR_ESYS.
int
    tri_loop_watch (tri_watch_t *self, int fd, tri_watch_fn *fn, void *arg);
int
    tri_loop_watch_socket (tri_watch_t *self, void *socket, tri_watch_fn *fn, void *arg);
//  Stop watching; safe on a watcher that is not active, and from inside
//  any callback.
void
    tri_loop_unwatch (tri_watch_t *self);
//  The socket was sent on or read from: its descriptor may no longer
//  signal what is queued, so the loop asks it before it sleeps.
void
    tri_loop_touch (tri_watch_t *self);
//  A read found the socket empty: its descriptor signals the next message.
void
    tri_loop_idle (tri_watch_t *self);
//  Call fn (timer) on the loop once deadline has passed (restarts an
//  active timer).
void
    tri_timer_start (tri_timer_t *self, int64_t deadline, tri_timer_fn *fn, void *arg);
void
    tri_timer_stop (tri_timer_t *self);
bool
    tri_timer_active (const tri_timer_t *self);

#endif
