/*  =========================================================================
    runtime.c - the runtime of this process: configuration, identity and
    the loop

    Each actor is one process with one thread that does all of its work.
    The loop is a registry of watchers (a descriptor or a ZeroMQ socket, a
    callback, an argument) and timers; it knows none of its clients. The
    channel layer registers the ROUTER and its DEALERs, the child layer its
    children's pidfds, the actor its signal pipe and its parent's pidfd,
    the pool its eventfd; each brings its own policy in its callback.
    Between waits the loop runs every ready task (task.c) until each parks.

    Nothing here takes a lock and nothing hands a message to another
    thread: a call costs raw libzmq's path plus one encode, one decode and
    two coroutine switches.

    ZeroMQ sockets in an epoll set. A socket's ZMQ_FD is an edge: it turns
    readable when commands ("a message arrived") reach the socket, and
    whichever call on the socket next processes them, a send included,
    consumes the edge. So a socket that was used since it was last found
    empty is "touched", and before the loop sleeps it asks each touched
    socket (and only those) with ZMQ_EVENTS whether a message is already
    queued. An owner reads one message when the descriptor woke the loop
    and a batch when the socket was found holding messages: a call's
    answer is then read without probing the socket twice.

    The loop sleeps without a timeout: the earliest deadline (timers and
    the tasks') is held by a timerfd in the same epoll set, set again only
    when an earlier one comes. A wait with a timeout makes the kernel arm
    a timer at every sleep, which costs each wake-up.
    =========================================================================
*/
#include "troupe_private.h"
#include <czmq.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define TRI_EPOLL_BATCH 64
//  While sockets keep holding messages, the loop reads them without asking
//  epoll about the other descriptors, this many times in a row at most.
#define TRI_EPOLL_SKIP  16

static struct {
    tr_config_t config;         //  with every default filled in
    tri_limits_t limits;
    tr_actor_t actor;
    void *zctx;
    uint64_t next_cid;
    int epfd;
    int tfd;                    //  timerfd at the earliest deadline, in epfd
    tri_watch_t tfd_watch;
    int64_t armed;              //  the deadline it holds, -1 none
    tri_list_t touched;         //  sockets to ask before sleeping
    tri_list_t timers;          //  by deadline, earliest first
    struct epoll_event events [TRI_EPOLL_BATCH];
    int nevents;                //  events of this wake-up not yet handled
    int at;                     //  next of them to handle
    bool running;
    void (*on_ran) (void);      //  after each run of the ready tasks
} s_rt = { .epfd = -1, .tfd = -1, .armed = -1 };

//  --------------------------------------------------------------------------
//  Configuration defaults, filled in once. A config whose size is 0 was
//  made before the field existed, and has every field up to linger_ms.

static void
s_fill_defaults (tr_config_t *c)
{
#define DEFAULT(field, value) if (c->field <= 0) c->field = (value)
    DEFAULT (stack_size, TRI_DEFAULT_STACK);
    DEFAULT (max_msg_size, TRI_DEFAULT_MAX_MSG);
    DEFAULT (max_depth, TRI_DEFAULT_MAX_DEPTH);
    DEFAULT (threads, TRI_DEFAULT_THREADS);
    DEFAULT (cancel_ack_ms, TRI_DEFAULT_CANCEL_ACK_MS);
    DEFAULT (drain_ms, TRI_DEFAULT_DRAIN_MS);
    DEFAULT (grace_ms, TRI_DEFAULT_GRACE_MS);
    DEFAULT (term_ms, TRI_DEFAULT_TERM_MS);
    DEFAULT (hello_ms, TRI_DEFAULT_HELLO_MS);
    DEFAULT (heartbeat_ivl_ms, TRI_DEFAULT_HB_IVL_MS);
    DEFAULT (heartbeat_timeout_ms, TRI_DEFAULT_HB_TIMEOUT_MS);
    DEFAULT (linger_ms, TRI_DEFAULT_LINGER_MS);
    DEFAULT (stream_window, TRI_DEFAULT_STREAM_WINDOW);
    DEFAULT (registry_max, TRI_DEFAULT_REGISTRY_MAX);
    DEFAULT (registry_lease_ms, TRI_DEFAULT_REGISTRY_LEASE_MS);
    DEFAULT (max_calls_per_peer, TRI_DEFAULT_MAX_CALLS_PEER);
    DEFAULT (max_calls, TRI_DEFAULT_MAX_CALLS);
    if (c->max_queued_bytes == 0)
        c->max_queued_bytes = TRI_DEFAULT_MAX_QUEUED;
#undef DEFAULT
    //  One answer of the largest size always fits.
    if (c->max_queued_bytes < c->max_msg_size)
        c->max_queued_bytes = c->max_msg_size;
    //  Every stream starts with the protocol's credit; a window is never
    //  smaller.
    if (c->stream_window < TRI_STREAM_CREDIT0)
        c->stream_window = TRI_STREAM_CREDIT0;
    //  msgpack-c cannot decode deeper values anyway.
    if (c->max_depth > TRI_DEFAULT_MAX_DEPTH)
        c->max_depth = TRI_DEFAULT_MAX_DEPTH;
    c->size = sizeof *c;
}

//  Copy the caller's config: as many bytes as its size says, so a program
//  built against an older, shorter tr_config_t is read correctly.
static void
s_copy_config (tr_config_t *to, const tr_config_t *from)
{
    memset (to, 0, sizeof *to);
    if (!from)
        return;
    size_t size = from->size? from->size: TR_CONFIG_SIZE_0_1;
    if (size > sizeof *to)
        size = sizeof *to;
    memcpy (to, from, size);
}

//  --------------------------------------------------------------------------
//  Identity and small helpers

const tr_config_t *
tri_config (void)
{
    return &s_rt.config;
}

const tri_limits_t *
tri_limits (void)
{
    return &s_rt.limits;
}

tr_actor_t *
tri_actor (void)
{
    return &s_rt.actor;
}

const char *
tri_uid (void)
{
    return s_rt.actor.uid;
}

void *
tri_zctx (void)
{
    return s_rt.zctx;
}

bool
tri_rt_running (void)
{
    return s_rt.running;
}

//  Set on the thread that runs the loop.
static _Thread_local bool s_on_loop_thread = false;

bool
tri_rt_this_thread (void)
{
    return s_on_loop_thread;
}

int
tri_rt_set_endpoint (const char *endpoint)
{
    char *copy = strdup (endpoint);
    if (!copy)
        return TR_ENOMEM;
    free (s_rt.actor.endpoint);
    s_rt.actor.endpoint = copy;
    return 0;
}

uint64_t
tri_cid_next (void)
{
    return ++s_rt.next_cid;
}

uint64_t
tri_cid_last (void)
{
    return s_rt.next_cid;
}

char *
tri_uid_new (const char *name)
{
    zuuid_t *uuid = zuuid_new ();
    if (!uuid)
        return NULL;
    char *uid = NULL;
    if (asprintf (&uid, "%s@%s", name, zuuid_str_canonical (uuid)) < 0)
        uid = NULL;
    zuuid_destroy (&uuid);
    return uid;
}

//  libzmq removes an ipc socket file on close only for wildcard endpoints,
//  and a process that was killed removes nothing.
void
tri_ipc_unlink (const char *endpoint)
{
    if (endpoint && strncmp (endpoint, "ipc:///", 7) == 0)
        unlink (endpoint + 6);
}

void
tri_socket_options (void *socket, bool remote)
{
    const tr_config_t *c = &s_rt.config;
    int64_t max = (int64_t) c->max_msg_size;
    int zero = 0;
    zmq_setsockopt (socket, ZMQ_MAXMSGSIZE, &max, sizeof max);
    zmq_setsockopt (socket, ZMQ_LINGER, &c->linger_ms, sizeof c->linger_ms);
    zmq_setsockopt (socket, ZMQ_SNDHWM, &zero, sizeof zero);
    tri_socket_link (socket, remote);
}

void
tri_socket_link (void *socket, bool remote)
{
    const tr_config_t *c = &s_rt.config;
    uint64_t affinity = remote? TRI_IO_REMOTE: TRI_IO_LOCAL;
    zmq_setsockopt (socket, ZMQ_AFFINITY, &affinity, sizeof affinity);
    int ivl = 0, timeout = 0, ttl = 0;
    if (remote) {
        ivl = c->heartbeat_ivl_ms;
        //  libzmq starts the timeout at the first heartbeat it sends after
        //  the peer fell silent, up to an interval late: a silent peer is
        //  to be lost within the configured timeout, so libzmq gets an
        //  interval less.
        timeout = c->heartbeat_timeout_ms - c->heartbeat_ivl_ms;
        if (timeout < c->heartbeat_ivl_ms)
            timeout = c->heartbeat_ivl_ms;
        ttl = c->heartbeat_timeout_ms;
    }
    zmq_setsockopt (socket, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt (socket, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout);
    zmq_setsockopt (socket, ZMQ_HEARTBEAT_TTL, &ttl, sizeof ttl);
}

//  The timerfd rang: it holds no deadline any more; the loop expires what
//  is due and sets it again.
static void
s_on_tfd (tri_watch_t *watch, bool drain)
{
    (void) watch; (void) drain;
    uint64_t expirations;
    if (read (s_rt.tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
        tri_log_error ("TR-EPOLL", "timerfd: %s", strerror (errno));
    s_rt.armed = -1;
}

//  Make the timerfd ring by deadline (tri_now_us's clock) unless it rings
//  before. A later deadline it held that is gone only wakes the loop once
//  for nothing.
static void
s_arm (int64_t deadline)
{
    if (s_rt.armed >= 0 && s_rt.armed <= deadline)
        return;
    struct itimerspec spec = { .it_value = { .tv_sec = deadline / 1000000,
                                              .tv_nsec = (deadline % 1000000) * 1000 } };
    if (timerfd_settime (s_rt.tfd, TFD_TIMER_ABSTIME, &spec, NULL) == 0)
        s_rt.armed = deadline;
}

//  --------------------------------------------------------------------------
//  Start and stop

int
tri_rt_start (const tr_config_t *config, const char *name, const char *uid)
{
    assert (!s_rt.running);
    //  czmq's own SIGINT/SIGTERM handlers would swallow rule 12's signals.
    zsys_handler_set (NULL);
    memset (&s_rt, 0, sizeof s_rt);
    s_on_loop_thread = true;
    s_rt.epfd = s_rt.tfd = -1;
    s_rt.armed = -1;
    tri_list_init (&s_rt.touched);
    tri_list_init (&s_rt.timers);
    s_copy_config (&s_rt.config, config);
    s_fill_defaults (&s_rt.config);
    s_rt.limits.max_size = s_rt.config.max_msg_size;
    s_rt.limits.max_depth = s_rt.config.max_depth;
    s_rt.running = true;
    tri_log_init (name);
    tri_msg_spares (true);
    tri_args_spares (true);

    int rc = TR_ENOMEM;
    s_rt.actor.name = strdup (name);
    s_rt.actor.uid = strdup (uid);
    if (!s_rt.actor.name || !s_rt.actor.uid)
        goto fail;
    rc = TR_ESYS;
    if ((s_rt.epfd = epoll_create1 (EPOLL_CLOEXEC)) < 0
    ||  (s_rt.tfd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0
    ||  tri_loop_watch (&s_rt.tfd_watch, s_rt.tfd, s_on_tfd, NULL))
        goto fail;
    if ((rc = tri_sched_init (s_rt.config.stack_size)))
        goto fail;
    tri_pool_configure (s_rt.config.threads);
    rc = TR_ESYS;
    if (!(s_rt.zctx = zmq_ctx_new ()))
        goto fail;
    zmq_ctx_set (s_rt.zctx, ZMQ_BLOCKY, 0);
    //  Before any socket: remote links and local ones on threads apart
    //  (tri_socket_link).
    zmq_ctx_set (s_rt.zctx, ZMQ_IO_THREADS, 2);
    return 0;
fail:
    tri_rt_stop ();
    return rc;
}

void
tri_rt_stop (void)
{
    if (!s_rt.running)
        return;
    assert (tri_list_empty (&s_rt.touched));
    if (s_rt.zctx)
        zmq_ctx_term (s_rt.zctx);
    tri_pool_stop ();
    tri_sched_term ();
    tri_msg_spares (false);
    tri_args_spares (false);
    if (s_rt.epfd >= 0)
        close (s_rt.epfd);
    if (s_rt.tfd >= 0)
        close (s_rt.tfd);
    free (s_rt.actor.name);
    free (s_rt.actor.uid);
    free (s_rt.actor.endpoint);
    //  A timer its owner left running is no longer in any list: stopped
    //  or started again after the next start, it touches no stale node.
    while (!tri_list_empty (&s_rt.timers))
        tri_node_unlink (s_rt.timers.next);
    memset (&s_rt, 0, sizeof s_rt);
    s_on_loop_thread = true;
    s_rt.epfd = s_rt.tfd = -1;
    s_rt.armed = -1;
}

//  --------------------------------------------------------------------------
//  Watchers

void
tri_loop_on_ran (void (*fn) (void))
{
    s_rt.on_ran = fn;
}

int
tri_loop_watch (tri_watch_t *self, int fd, tri_watch_fn *fn, void *arg)
{
    assert (self && fd >= 0 && fn);
    memset (self, 0, sizeof *self);
    self->fd = fd;
    self->fn = fn;
    self->arg = arg;
    tri_node_init (&self->touched_node);
    struct epoll_event event = { .events = EPOLLIN, .data.ptr = self };
    if (epoll_ctl (s_rt.epfd, EPOLL_CTL_ADD, fd, &event)) {
        tri_log_error ("TR-EPOLL", "cannot watch fd %d: %s", fd, strerror (errno));
        return TR_ESYS;
    }
    self->active = true;
    return 0;
}

int
tri_loop_watch_socket (tri_watch_t *self, void *socket, tri_watch_fn *fn, void *arg)
{
    int fd = -1;
    size_t size = sizeof fd;
    if (zmq_getsockopt (socket, ZMQ_FD, &fd, &size))
        return TR_ESYS;
    int rc = tri_loop_watch (self, fd, fn, arg);
    if (rc == 0) {
        self->socket = socket;
        //  Whatever was done on it before, ask it once.
        tri_loop_touch (self);
    }
    return rc;
}

void
tri_loop_unwatch (tri_watch_t *self)
{
    if (!self || !self->active)
        return;
    self->active = false;
    tri_node_unlink (&self->touched_node);
    epoll_ctl (s_rt.epfd, EPOLL_CTL_DEL, self->fd, NULL);
    //  An event of this wake-up not yet handled must not reach it.
    for (int i = s_rt.at; i < s_rt.nevents; i++)
        if (s_rt.events [i].data.ptr == self)
            s_rt.events [i].data.ptr = NULL;
}

void
tri_loop_touch (tri_watch_t *self)
{
    if (self->active && !self->touched) {
        self->touched = true;
        tri_list_push_back (&s_rt.touched, &self->touched_node);
    }
}

void
tri_loop_idle (tri_watch_t *self)
{
    self->touched = false;
    self->ready = false;
    tri_node_unlink (&self->touched_node);
}

//  --------------------------------------------------------------------------
//  Timers: few (one per draining channel), kept sorted.

void
tri_timer_start (tri_timer_t *self, int64_t deadline, tri_timer_fn *fn, void *arg)
{
    tri_timer_stop (self);
    self->deadline = deadline;
    self->fn = fn;
    self->arg = arg;
    tri_node_t *at = s_rt.timers.next;
    while (at != &s_rt.timers && tri_list_entry (at, tri_timer_t, node)->deadline <= deadline)
        at = at->next;
    //  Insert before at.
    self->node.next = at;
    self->node.prev = at->prev;
    at->prev->next = &self->node;
    at->prev = &self->node;
}

void
tri_timer_stop (tri_timer_t *self)
{
    if (self->node.next && tri_node_linked (&self->node))
        tri_node_unlink (&self->node);
    else
        tri_node_init (&self->node);
}

bool
tri_timer_active (const tri_timer_t *self)
{
    return self->node.next && tri_node_linked (&self->node);
}

static void
s_timers_expire (int64_t now)
{
    tri_node_t *node;
    while ((node = tri_list_first (&s_rt.timers))) {
        tri_timer_t *timer = tri_list_entry (node, tri_timer_t, node);
        if (timer->deadline > now)
            break;
        tri_node_unlink (node);
        timer->fn (timer);
    }
}

static int64_t
s_timers_deadline (void)
{
    tri_node_t *node = tri_list_first (&s_rt.timers);
    return node? tri_list_entry (node, tri_timer_t, node)->deadline: -1;
}

//  --------------------------------------------------------------------------
//  The loop

//  Ask every touched socket whether it holds a message; those that do are
//  marked ready, those that do not are no longer touched. True if any is
//  ready.
static bool
s_probe_touched (void)
{
    bool any = false;
    tri_list_each (node, next, &s_rt.touched) {
        tri_watch_t *watch = tri_list_entry (node, tri_watch_t, touched_node);
        uint32_t events = 0;
        size_t size = sizeof events;
        if (zmq_getsockopt (watch->socket, ZMQ_EVENTS, &events, &size) == 0
        &&  (events & ZMQ_POLLIN)) {
            watch->ready = true;
            any = true;
        }
        else
            tri_loop_idle (watch);
    }
    return any;
}

//  Run the callbacks of the sockets found ready; they read a batch. A
//  callback may unwatch any watcher, so walk a snapshot of the list head
//  by head.
static void
s_run_ready (void)
{
    tri_list_each (node, next, &s_rt.touched) {
        tri_watch_t *watch = tri_list_entry (node, tri_watch_t, touched_node);
        if (watch->ready) {
            watch->ready = false;
            watch->fn (watch, true);
            //  The callback may have unlinked the next node: restart.
            next = s_rt.touched.next;
            while (next != &s_rt.touched
               &&  !tri_list_entry (next, tri_watch_t, touched_node)->ready)
                next = next->next;
        }
    }
}

void
tri_loop_run (bool (*done) (void))
{
    int skipped = 0;
    while (true) {
        tri_sched_run ();
        if (s_rt.on_ran)
            s_rt.on_ran ();
        if (done ())
            break;
        bool ready = !tri_list_empty (&s_rt.touched) && s_probe_touched ();
        //  A burst: read on without a system call for the other
        //  descriptors, but never leave them unasked for long.
        if (ready && skipped < TRI_EPOLL_SKIP) {
            skipped++;
            s_run_ready ();
            int64_t now = tri_now_us ();
            tri_sched_expire (now);
            s_timers_expire (now);
            continue;
        }
        skipped = 0;
        //  The loop sleeps without a timeout: one would make the kernel
        //  arm a timer at every sleep, which costs each wake-up as libzmq's
        //  heartbeat timer does (doc/benchmarks.md). The earliest deadline
        //  is the timerfd's, set again only when an earlier one comes.
        int timeout = -1;
        if (ready || tri_sched_has_ready ())
            timeout = 0;
        else {
            int64_t deadline = tri_deadline_min (tri_sched_next_deadline (), s_timers_deadline ());
            if (deadline >= 0) {
                if (deadline <= tri_now_us ())
                    timeout = 0;
                else
                    s_arm (deadline);
            }
        }
        int n = epoll_wait (s_rt.epfd, s_rt.events, TRI_EPOLL_BATCH, timeout);
        if (n < 0 && errno != EINTR) {
            tri_log_error ("TR-EPOLL", "epoll_wait: %s", strerror (errno));
            break;
        }
        if (ready)
            s_run_ready ();
        s_rt.nevents = n > 0? n: 0;
        for (s_rt.at = 0; s_rt.at < s_rt.nevents; ) {
            tri_watch_t *watch = s_rt.events [s_rt.at++].data.ptr;
            if (watch)
                watch->fn (watch, false);
        }
        s_rt.nevents = s_rt.at = 0;
        int64_t now = tri_now_us ();
        tri_sched_expire (now);
        s_timers_expire (now);
    }
}
