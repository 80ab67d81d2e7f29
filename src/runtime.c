/*  =========================================================================
    runtime.c - the runtime thread: one poll loop that owns every socket

    Each actor is one process with one thread that does all of its work.
    The loop owns the ROUTER that peers call in on, the DEALER a child
    opened to its parent, the pidfds of its children and of its parent,
    the self-pipe that signal handlers write to and the eventfd of the
    worker pool. Between polls it runs every ready task (task.c) until each
    parks; a task parks on a blocking API call and the loop wakes it when
    the frame, timer, exit or thread result it waits for arrives.

    Nothing here takes a lock and nothing hands a message to another
    thread: a call costs raw libzmq's path plus one encode, one decode and
    two coroutine switches. channel.c reads and routes the frames.
    =========================================================================
*/
#include "troupe_private.h"
#include <czmq.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

tri_rt_t *tri_rt = NULL;

//  The loop sleeps in poll() on the sockets' ZMQ_FDs. Such an fd is an
//  edge: it turns readable when commands (such as "a message arrived")
//  reach the socket, and whichever call on the socket next processes them,
//  a send included, consumes the edge. So before the loop sleeps it asks
//  each socket with ZMQ_EVENTS whether a message is already queued, as
//  zmq_poll does (twice per socket per wait). The ROUTER and the DEALER to
//  the parent skip the question when nothing touched them since they were
//  last found empty; with one read per wakeup (channel.c) this halves
//  the poll() syscalls of a call's round trip.

//  --------------------------------------------------------------------------
//  Signals: handlers only write to the self-pipe (rule 12).

static int s_sig_fd = -1;

static void
s_on_signal (int sig)
{
    int saved = errno;
    unsigned char byte = (unsigned char) sig;
    if (s_sig_fd >= 0 && write (s_sig_fd, &byte, 1) < 0) {
        //  The pipe is full: a signal is already pending.
    }
    errno = saved;
}

//  A fault in a task's guard page is a stack overflow: say so, then let the
//  default action kill the process so the parent reports the crash.
static void
s_on_segv (int sig, siginfo_t *info, void *uctx)
{
    (void) uctx;
    if (tri_task_is_guard (info->si_addr)) {
        static const char text [] = "troupe: stack overflow in a task; raise the export's stack_size\n";
        if (write (STDERR_FILENO, text, sizeof text - 1) < 0) {
            //  Nothing to do: the process is about to die anyway.
        }
    }
    signal (sig, SIG_DFL);
    //  A fault returns to the faulting instruction and faults again, now
    //  fatally; a SIGSEGV sent by raise() or kill() would not come back,
    //  so send it again (it is delivered once the handler returns).
    if (info->si_code <= 0)
        raise (sig);
}

static void
s_install_signals (void)
{
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset (&sa.sa_mask);
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);
    //  Installed under ASan too: a crash must end in SIGSEGV, as the parent
    //  reports it, whatever the build.
    static uint8_t *altstack = NULL;
    if (!altstack && (altstack = malloc (SIGSTKSZ * 2))) {
        stack_t ss = { .ss_sp = altstack, .ss_size = SIGSTKSZ * 2, .ss_flags = 0 };
        sigaltstack (&ss, NULL);
    }
    struct sigaction segv;
    memset (&segv, 0, sizeof segv);
    segv.sa_sigaction = s_on_segv;
    segv.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset (&segv.sa_mask);
    sigaction (SIGSEGV, &segv, NULL);
}

static void
s_restore_signals (void)
{
    signal (SIGINT, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    s_sig_fd = -1;
}

//  --------------------------------------------------------------------------
//  Configuration defaults, filled in once.

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
#undef DEFAULT
    //  msgpack-c cannot decode deeper values anyway.
    if (c->max_depth > TRI_DEFAULT_MAX_DEPTH)
        c->max_depth = TRI_DEFAULT_MAX_DEPTH;
}

//  --------------------------------------------------------------------------
//  Sockets

static void
s_socket_options (void *socket)
{
    const tr_config_t *c = &tri_rt->config;
    int64_t max = (int64_t) c->max_msg_size;
    int zero = 0;
    zmq_setsockopt (socket, ZMQ_MAXMSGSIZE, &max, sizeof max);
    zmq_setsockopt (socket, ZMQ_LINGER, &c->linger_ms, sizeof c->linger_ms);
    zmq_setsockopt (socket, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt (socket, ZMQ_HEARTBEAT_IVL, &c->heartbeat_ivl_ms, sizeof (int));
    zmq_setsockopt (socket, ZMQ_HEARTBEAT_TIMEOUT, &c->heartbeat_timeout_ms, sizeof (int));
    zmq_setsockopt (socket, ZMQ_HEARTBEAT_TTL, &c->heartbeat_timeout_ms, sizeof (int));
}

//  "ipc" and "tcp" name a fresh private endpoint; anything else is used
//  as it is.
static int
s_bind (void *router, const char *bind, char **endpoint)
{
    char address [256];
    if (!bind || streq (bind, "ipc")) {
        const char *tmp = getenv ("TMPDIR");
        if (!tmp || !*tmp || strlen (tmp) > 60)
            tmp = "/tmp";
        const char *uuid = strchr (tri_rt->actor.uid, '@');
        snprintf (address, sizeof address, "ipc://%s/troupe-%d-%.8s.ipc",
                  tmp, (int) getpid (), uuid? uuid + 1: "0");
    }
    else
    if (streq (bind, "tcp"))
        snprintf (address, sizeof address, "tcp://127.0.0.1:*");
    else
        snprintf (address, sizeof address, "%s", bind);
    if (zmq_bind (router, address)) {
        tri_log_error ("TR-BIND", "cannot bind %s: %s", address, zmq_strerror (errno));
        return TR_ESYS;
    }
    char last [256];
    size_t size = sizeof last;
    zmq_getsockopt (router, ZMQ_LAST_ENDPOINT, last, &size);
    *endpoint = strdup (last);
    return *endpoint? 0: TR_ENOMEM;
}

//  --------------------------------------------------------------------------
//  Start and stop

static size_t
s_cid_hash (const void *key)
{
    uint64_t x = (uint64_t) (uintptr_t) key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t) x;
}

static int
s_cid_compare (const void *a, const void *b)
{
    return a == b? 0: ((uintptr_t) a < (uintptr_t) b? -1: 1);
}

int
tri_rt_start (const tr_config_t *config, const char *name, const char *uid,
              const char *bind)
{
    assert (!tri_rt);
    //  czmq's own SIGINT/SIGTERM handlers would swallow rule 12's signals.
    zsys_handler_set (NULL);
    tri_rt = calloc (1, sizeof *tri_rt);
    if (!tri_rt)
        return TR_ENOMEM;
    tri_rt_t *rt = tri_rt;
    if (config)
        rt->config = *config;
    s_fill_defaults (&rt->config);
    rt->limits.max_size = rt->config.max_msg_size;
    rt->limits.max_depth = rt->config.max_depth;
    rt->parent_pidfd = -1;
    rt->sig_pipe [0] = rt->sig_pipe [1] = -1;
    rt->next_cid = 0;
    rt->actor.name = strdup (name);
    rt->actor.uid = strdup (uid);
    msgpack_sbuffer_init (&rt->sbuf);
    msgpack_packer_init (&rt->pk, &rt->sbuf, msgpack_sbuffer_write);
    tri_log_init (name);

    int rc = TR_ENOMEM;
    rt->channels = zhashx_new ();
    rt->calls = zhashx_new ();
    if (!rt->actor.name || !rt->actor.uid || !rt->channels || !rt->calls)
        goto fail;
    zhashx_set_key_hasher (rt->calls, s_cid_hash);
    zhashx_set_key_comparator (rt->calls, s_cid_compare);
    zhashx_set_key_duplicator (rt->calls, NULL);
    zhashx_set_key_destructor (rt->calls, NULL);

    rc = TR_ESYS;
    if (pipe2 (rt->sig_pipe, O_NONBLOCK | O_CLOEXEC))
        goto fail;
    s_sig_fd = rt->sig_pipe [1];
    s_install_signals ();
    if ((rc = tri_sched_init (rt->config.stack_size, rt->config.threads)))
        goto fail;
    rc = TR_ESYS;
    if (!(rt->zctx = zmq_ctx_new ()))
        goto fail;
    zmq_ctx_set (rt->zctx, ZMQ_BLOCKY, 0);
    if (!(rt->router = zmq_socket (rt->zctx, ZMQ_ROUTER)))
        goto fail;
    int one = 1;
    zmq_setsockopt (rt->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    s_socket_options (rt->router);
    if ((rc = s_bind (rt->router, bind? bind: rt->config.bind, &rt->actor.endpoint)))
        goto fail;
    tri_log_debug ("TR-START", "%s serving at %s", uid, rt->actor.endpoint);
    return 0;
fail:
    tri_rt_stop ();
    return rc;
}

static void
s_close_socket (void **socket)
{
    if (*socket) {
        zmq_close (*socket);
        *socket = NULL;
    }
}

void
tri_rt_stop (void)
{
    tri_rt_t *rt = tri_rt;
    if (!rt)
        return;
    tri_channels_expire (INT64_MAX);
    //  Every channel goes; pending calls and serves are gone by now.
    if (rt->channels) {
        tri_channel_t *channel;
        while ((channel = zhashx_first (rt->channels))) {
            zhashx_delete (rt->channels, channel->key);
            if (!channel->closed)
                tri_channel_close (channel, NULL, false);
            tri_channel_unref (&channel);
        }
        zhashx_destroy (&rt->channels);
    }
    while (rt->dealers) {
        tri_channel_t *channel = rt->dealers;
        if (channel == rt->parent) {
            rt->dealers = channel->next_dealer;
            continue;
        }
        tri_rt_close_dealer (channel);
    }
    if (rt->parent) {
        if (!rt->parent->closed)
            tri_channel_close (rt->parent, NULL, false);
        tri_channel_unref (&rt->parent);
    }
    zhashx_destroy (&rt->calls);
    s_close_socket (&rt->parent_dealer);
    s_close_socket (&rt->router);
    if (rt->zctx)
        zmq_ctx_term (rt->zctx);
    //  libzmq removes an ipc socket file on close only for wildcard
    //  endpoints: take ours away, or every actor leaves one in $TMPDIR.
    if (rt->actor.endpoint && strncmp (rt->actor.endpoint, "ipc:///", 7) == 0)
        unlink (rt->actor.endpoint + 6);
    tri_sched_term ();
    s_restore_signals ();
    if (rt->sig_pipe [0] >= 0)
        close (rt->sig_pipe [0]);
    if (rt->sig_pipe [1] >= 0)
        close (rt->sig_pipe [1]);
    if (rt->parent_pidfd >= 0)
        close (rt->parent_pidfd);
    msgpack_sbuffer_destroy (&rt->sbuf);
    free (rt->actor.name);
    free (rt->actor.uid);
    free (rt->actor.endpoint);
    free (rt);
    tri_rt = NULL;
}

static void
s_read_signals (void)
{
    tri_rt_t *rt = tri_rt;
    unsigned char sig;
    static int64_t first_at = 0;
    while (read (rt->sig_pipe [0], &sig, 1) == 1) {
        //  One keypress or kill can deliver the signal twice in a burst
        //  (to the process and to its group): a second one counts only
        //  once a human could have pressed Ctrl-C again.
        if (rt->signals == 1 && tri_now_ms () - first_at < 250)
            continue;
        rt->signals++;
        rt->last_signal = sig;
        if (rt->signals == 1) {
            first_at = tri_now_ms ();
            tri_log_info ("TR-SIGNAL", "signal %d: cancelling", sig);
            rt->stopping = true;
            tri_actor_cancel_all ();
        }
        else {
            tri_log_warn ("TR-SIGNAL", "signal %d again: killing every child", sig);
            for (tri_child_t *c = rt->children; c; c = c->next)
                tri_child_signal (c, SIGKILL);
        }
    }
}

//  --------------------------------------------------------------------------
//  The loop

//  The fd a socket signals on (see the note on ZMQ_FD at the top).
static int
s_socket_fd (void *socket)
{
    int fd = -1;
    size_t size = sizeof fd;
    zmq_getsockopt (socket, ZMQ_FD, &fd, &size);
    return fd;
}

//  Does the socket hold a message now? Every socket in the poll set must
//  be asked before the loop sleeps (see the note on ZMQ_FD at the top);
//  once found empty, its fd signals the next message.
static bool
s_socket_ready (void *socket)
{
    bool *used = tri_socket_used_flag (socket);
    if (used && !*used)
        return false;
    uint32_t events = 0;
    size_t size = sizeof events;
    if (zmq_getsockopt (socket, ZMQ_EVENTS, &events, &size))
        return false;
    bool ready = (events & ZMQ_POLLIN) != 0;
    if (used)
        *used = ready;
    return ready;
}

void
tri_rt_loop (bool (*done) (void))
{
    tri_rt_t *rt = tri_rt;
    struct pollfd fixed [8];
    struct pollfd *items = fixed;
    size_t capacity = 8;
    //  Whatever was done on the sockets before, ask them once.
    tri_rt->router_used = true;
    for (tri_channel_t *d = rt->dealers; d; d = d->next_dealer)
        d->used = true;
    while (true) {
        tri_sched_run ();
        if (done ())
            break;
        size_t children = 0;
        for (tri_child_t *c = rt->children; c; c = c->next)
            children += c->pidfd >= 0;
        for (tri_channel_t *d = rt->dealers; d; d = d->next_dealer)
            children += 2;
        if (children + 6 > capacity) {
            capacity = (children + 6) * 2;
            struct pollfd *bigger = malloc (capacity * sizeof *bigger);
            assert (bigger);
            if (items != fixed)
                free (items);
            items = bigger;
        }
        size_t n = 0;
        items [n++] = (struct pollfd) { s_socket_fd (rt->router), POLLIN, 0 };
        size_t dealers_at = n;
        for (tri_channel_t *d = rt->dealers; d; d = d->next_dealer)
            items [n++] = (struct pollfd) { s_socket_fd (d->socket), POLLIN, 0 };
        size_t monitors_at = n;
        for (tri_channel_t *d = rt->dealers; d; d = d->next_dealer)
            if (d->monitor)
                items [n++] = (struct pollfd) { s_socket_fd (d->monitor), POLLIN, 0 };
        size_t fds_at = n;
        items [n++] = (struct pollfd) { rt->sig_pipe [0], POLLIN, 0 };
        int pool_fd = tri_pool_fd ();
        size_t pool_at = pool_fd >= 0? n: SIZE_MAX;
        if (pool_fd >= 0)
            items [n++] = (struct pollfd) { pool_fd, POLLIN, 0 };
        size_t ppid_at = rt->parent_pidfd >= 0? n: SIZE_MAX;
        if (rt->parent_pidfd >= 0)
            items [n++] = (struct pollfd) { rt->parent_pidfd, POLLIN, 0 };
        size_t children_at = n;
        for (tri_child_t *c = rt->children; c; c = c->next)
            if (c->pidfd >= 0)
                items [n++] = (struct pollfd) { c->pidfd, POLLIN, 0 };

        //  Messages already queued in a socket: its fd will not say so.
        bool router_ready = s_socket_ready (rt->router);
        bool dealer_ready = false;
        for (tri_channel_t *d = rt->dealers; d; d = d->next_dealer) {
            dealer_ready |= (d->ready = s_socket_ready (d->socket));
            if (d->monitor)
                dealer_ready |= (d->monitor_ready = s_socket_ready (d->monitor));
        }
        int timeout = -1;
        if (router_ready || dealer_ready || tri_sched_has_ready ())
            timeout = 0;
        else {
            int64_t deadline = tri_deadline_min (tri_sched_next_deadline (), tri_channels_deadline ());
            if (deadline >= 0) {
                int64_t left = deadline - tri_now_ms ();
                timeout = left <= 0? 0: (left > INT_MAX? INT_MAX: (int) left);
            }
        }
        int rc = poll (items, (nfds_t) n, timeout);
        if (rc < 0 && errno != EINTR) {
            tri_log_error ("TR-POLL", "poll: %s", strerror (errno));
            break;
        }
        if (rc < 0)
            rc = 0;
        //  Drain a socket whose messages were queued already; read one
        //  from a socket that woke us.
        if (router_ready || items [0].revents)
            tri_channel_read_router (router_ready);
        size_t at = dealers_at;
        for (tri_channel_t *d = rt->dealers; d; d = d->next_dealer, at++)
            if (d->ready || items [at].revents)
                tri_channel_read_dealer (d, d->ready);
        at = monitors_at;
        for (tri_channel_t *d = rt->dealers; d; d = d->next_dealer) {
            if (!d->monitor)
                continue;
            if (d->monitor_ready || items [at].revents)
                tri_channel_read_monitor (d);
            at++;
        }
        if (rc > 0) {
            if (items [fds_at].revents & POLLIN)
                s_read_signals ();
            if (pool_at != SIZE_MAX && (items [pool_at].revents & POLLIN))
                tri_pool_drain ();
            if (ppid_at != SIZE_MAX && (items [ppid_at].revents & POLLIN)) {
                tri_log_warn ("TR-ORPHAN", "parent process %d is gone: cancelling",
                              rt->parent? rt->parent->pid: 0);
                close (rt->parent_pidfd);
                rt->parent_pidfd = -1;
                if (rt->parent && !rt->parent->closed)
                    tri_channel_close (rt->parent, tri_error_new (TR_ECLOSED, "ParentGone",
                                       rt->parent->uid, "parent process exited"), false);
                rt->stopping = true;
                tri_actor_cancel_all ();
            }
            //  Children reaped here may unlink themselves: walk by index
            //  against the pidfds we polled.
            for (size_t i = children_at; i < n; i++) {
                if (!(items [i].revents & POLLIN))
                    continue;
                for (tri_child_t *c = rt->children; c; c = c->next)
                    if (c->pidfd == items [i].fd) {
                        tri_child_reaped (c);
                        break;
                    }
            }
        }
        int64_t now = tri_now_ms ();
        tri_sched_expire (now);
        tri_channels_expire (now);
    }
    if (items != fixed)
        free (items);
}

//  --------------------------------------------------------------------------
//  Child role: connect back to the parent, watch it, say hello.

int
tri_rt_connect_parent (const char *endpoint, int parent_pid)
{
    tri_rt_t *rt = tri_rt;
    //  Rule 11: a local parent's pidfd becomes readable when it exits. The
    //  pid is checked against ours so a recycled pid cannot fool us.
    if (parent_pid > 0) {
        rt->parent_pidfd = tri_pidfd_open (parent_pid);
        if (rt->parent_pidfd < 0 || getppid () != parent_pid) {
            tri_log_error ("TR-ORPHAN", "parent %d is already gone", parent_pid);
            return TR_ECLOSED;
        }
    }
    rt->parent_dealer = zmq_socket (rt->zctx, ZMQ_DEALER);
    if (!rt->parent_dealer)
        return TR_ESYS;
    s_socket_options (rt->parent_dealer);
    //  The parent knows us by our uid from the first frame on.
    zmq_setsockopt (rt->parent_dealer, ZMQ_ROUTING_ID, rt->actor.uid, strlen (rt->actor.uid));
    if (zmq_connect (rt->parent_dealer, endpoint)) {
        tri_log_error ("TR-CONNECT", "cannot connect to parent at %s: %s",
                       endpoint, zmq_strerror (errno));
        return TR_ESYS;
    }
    rt->parent = tri_channel_new (rt->parent_dealer, NULL, 0);
    if (!rt->parent || !(rt->parent->uid = strdup ("parent"))
    ||  !(rt->parent->endpoint = strdup (endpoint)))
        return TR_ENOMEM;
    rt->parent->pid = parent_pid;
    rt->parent->next_dealer = rt->dealers;
    rt->parent->used = true;
    rt->dealers = rt->parent;
    tri_hello_t hello = { TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR, rt->actor.uid,
                          rt->actor.endpoint, (int64_t) getpid () };
    tri_msg_begin (&rt->pk, TRI_HELLO, 0);
    tri_msg_pack_hello (&rt->pk, &hello);
    return tri_channel_send (rt->parent);
}

//  --------------------------------------------------------------------------
//  DEALERs of portals opened on an endpoint

int
tri_rt_open_dealer (const char *endpoint, tri_channel_t **channel_p)
{
    tri_rt_t *rt = tri_rt;
    void *socket = zmq_socket (rt->zctx, ZMQ_DEALER);
    if (!socket)
        return TR_ESYS;
    s_socket_options (socket);
    if (zmq_connect (socket, endpoint)) {
        tri_log_warn ("TR-CONNECT", "cannot connect to %s: %s", endpoint, zmq_strerror (errno));
        zmq_close (socket);
        return TR_ESYS;
    }
    tri_channel_t *channel = tri_channel_new (socket, NULL, 0);
    if (!channel || !(channel->uid = strdup (endpoint))
    ||  !(channel->endpoint = strdup (endpoint))) {
        if (channel)
            tri_channel_unref (&channel);
        zmq_close (socket);
        return TR_ENOMEM;
    }
    //  Watch the connection: the peer is no child of ours, no pidfd tells
    //  us when it dies.
    char address [64];
    snprintf (address, sizeof address, "inproc://troupe-monitor-%p", (void *) channel);
    if (zmq_socket_monitor (socket, address, ZMQ_EVENT_DISCONNECTED) == 0
    &&  (channel->monitor = zmq_socket (rt->zctx, ZMQ_PAIR))
    &&  zmq_connect (channel->monitor, address)) {
        zmq_close (channel->monitor);
        channel->monitor = NULL;
    }
    int zero = 0;
    if (channel->monitor)
        zmq_setsockopt (channel->monitor, ZMQ_LINGER, &zero, sizeof zero);
    channel->monitor_used = true;
    channel->next_dealer = rt->dealers;
    channel->used = true;
    rt->dealers = channel;
    tri_channel_ref (channel);          //  the caller's
    tri_hello_t hello = { TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR, rt->actor.uid,
                          rt->actor.endpoint, (int64_t) getpid () };
    tri_msg_begin (&rt->pk, TRI_HELLO, 0);
    tri_msg_pack_hello (&rt->pk, &hello);
    tri_channel_send (channel);
    *channel_p = channel;
    return 0;
}

void
tri_rt_close_dealer (tri_channel_t *channel)
{
    tri_rt_t *rt = tri_rt;
    tri_channel_t **link = &rt->dealers;
    while (*link && *link != channel)
        link = &(*link)->next_dealer;
    if (!*link)
        return;
    *link = channel->next_dealer;
    if (!channel->closed)
        tri_channel_close (channel, NULL, false);
    if (channel->monitor) {
        zmq_socket_monitor (channel->socket, NULL, 0);
        s_close_socket (&channel->monitor);
    }
    s_close_socket (&channel->socket);
    tri_channel_unref (&channel);       //  the list's
}

void
tri_rt_ack_cancel (void)
{
    tri_rt_t *rt = tri_rt;
    if (rt->cancel_from) {
        tri_channel_send_empty (rt->cancel_from, TRI_ACK, 0);
        tri_channel_unref (&rt->cancel_from);
    }
}
