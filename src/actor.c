/*  =========================================================================
    actor.c - tr_run, the three roles, and stopping an actor

    tr_run decides what this process is. A root runs root_main as its first
    task. A child (a parent's nursery spawned it; the environment says
    where its parent is) connects back, says hello and serves until its
    parent cancels it or dies. A daemon serves at a given endpoint until a
    signal or a peer's cancel.

    This is the top of the house: it wires the layers below together and
    owns the policies that end an actor. One function stops it, whoever
    asks: a peer's cancel (acknowledged once every task has ended, rule 2),
    a signal (rule 12), the parent's death (rule 11) or the root's main
    function returning (nothing outlives it).
    =========================================================================
*/
#include "troupe_private.h"
#include "tri_fds.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRI_MAX_ASKERS 16

static const char *
    s_arg_value (int argc, char **argv, const char *name);
static bool
    s_arg_flag (int argc, char **argv, const char *name);

//  Process-wide state of this module (runtime thread only).
static struct {
    int (*root_main) (tr_actor_t *self, void *arg);
    void *root_arg;
    tri_task_t *root_task;
    tr_ctx_t root_ctx;
    int root_rc;
    bool root_done;
    bool stopping;
    tri_channel_t *askers [TRI_MAX_ASKERS];     //  peers that asked us to
    size_t naskers;                             //  cancel: they get the ack
    tri_dealer_t *parent;                       //  child role
    int parent_pidfd;           //  or our end of the link to it
    bool parent_linked;         //  parent_pidfd is that link: it stays
                                //  open until the process exits
    tri_watch_t parent_watch;
    pid_t parent_pid;           //  a local parent's, or 0
    int64_t parent_stopped_at;  //  when it was first seen stopped (us), or 0
    tri_timer_t parent_stops;   //  s_watch_parent
    int sig_pipe [2];
    tri_watch_t sig_watch;
    int signals;                //  SIGINT/SIGTERM received so far
    int last_signal;
    int64_t first_signal_at;
    tri_watch_t pool_watch;
    bool env_set;               //  we set TROUPE_REGISTRY for our children
    char *env_saved;            //  what it was before, or NULL
    struct {
        bool set;               //  we set TROUPE_KEYS/TROUPE_INSECURE
        char *saved;            //  what it was before, or NULL
    } env_keys, env_insecure;
} s_actor;

//  --------------------------------------------------------------------------
//  Stopping: one function, whoever asks.

static void
s_stop (const char *why, tri_channel_t *asker)
{
    if (asker && s_actor.naskers < TRI_MAX_ASKERS) {
        tri_channel_ref (asker);
        s_actor.askers [s_actor.naskers++] = asker;
    }
    if (s_actor.stopping)
        return;
    s_actor.stopping = true;
    tri_log_debug ("TR-STOP", "stopping: %s", why);
    if (s_actor.root_task && !s_actor.root_done)
        tri_task_cancel (s_actor.root_task);
    tri_tasks_stop ();
    tri_serve_stop ();
}

static void
s_on_stop_request (tri_channel_t *channel)
{
    s_stop ("a peer asked us to cancel", channel);
}

//  Every task has ended: acknowledge the cancel to whoever asked.
static void
s_ack_askers (void)
{
    for (size_t i = 0; i < s_actor.naskers; i++) {
        tri_channel_send_empty (s_actor.askers [i], TRI_ACK, 0);
        tri_channel_unref (&s_actor.askers [i]);
    }
    s_actor.naskers = 0;
}

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
s_on_signals (tri_watch_t *watch, bool drain)
{
    (void) watch; (void) drain;
    unsigned char sig;
    while (read (s_actor.sig_pipe [0], &sig, 1) == 1) {
        //  One keypress or kill can deliver the signal twice in a burst
        //  (to the process and to its group): a second one counts only
        //  once a human could have pressed Ctrl-C again.
        if (s_actor.signals == 1 && tri_now_ms () - s_actor.first_signal_at < 250)
            continue;
        s_actor.signals++;
        s_actor.last_signal = sig;
        if (s_actor.signals == 1) {
            s_actor.first_signal_at = tri_now_ms ();
            tri_log_info ("TR-SIGNAL", "signal %d: cancelling", sig);
            s_stop ("signal", NULL);
        }
        else {
            tri_log_warn ("TR-SIGNAL", "signal %d again: killing every child", sig);
            tri_child_signal_all (SIGKILL);
        }
    }
}

static int
s_signals_start (void)
{
    if (pipe2 (s_actor.sig_pipe, O_NONBLOCK | O_CLOEXEC))
        return TR_ESYS;
    s_sig_fd = s_actor.sig_pipe [1];
    int rc = tri_loop_watch (&s_actor.sig_watch, s_actor.sig_pipe [0], s_on_signals, NULL);
    if (rc)
        return rc;
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
    return 0;
}

static void
s_signals_stop (void)
{
    signal (SIGINT, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    s_sig_fd = -1;
    tri_loop_unwatch (&s_actor.sig_watch);
    for (int i = 0; i < 2; i++)
        if (s_actor.sig_pipe [i] >= 0) {
            close (s_actor.sig_pipe [i]);
            s_actor.sig_pipe [i] = -1;
        }
}

//  --------------------------------------------------------------------------
//  The worker pool's wake-ups

static void
s_on_pool (tri_watch_t *watch, bool drain)
{
    (void) watch; (void) drain;
    tri_pool_drain ();
}

static void
s_pool_started (int fd)
{
    tri_loop_watch (&s_actor.pool_watch, fd, s_on_pool, NULL);
}

//  --------------------------------------------------------------------------
//  Child role: connect back to the parent, watch it (rule 11).

static void
s_on_parent_exit (tri_watch_t *watch, bool drain)
{
    (void) drain;
    tri_loop_unwatch (watch);
    tri_channel_t *parent = tri_dealer_channel (s_actor.parent);
    tri_log_warn ("TR-ORPHAN", "parent process %d is gone: cancelling", tri_channel_pid (parent));
    if (!s_actor.parent_linked)
        close (s_actor.parent_pidfd);
    s_actor.parent_pidfd = -1;
    if (!tri_channel_closed (parent))
        tri_channel_close (parent, tri_error_new (TR_ECLOSED, "ParentGone", tri_channel_uid (parent),
                           "parent process exited"), false);
    s_stop ("parent gone", NULL);
}

//  The connection to the parent is lost: it is stopped, hung, or its
//  host is gone (a parent that exits is seen through its pidfd). Like a
//  parent's death (rule 11): cancel, and exit 1.
static void
s_on_parent_lost (tri_dealer_t *dealer)
{
    tri_log_warn ("TR-ORPHAN", "parent at %s stopped answering within %d ms: cancelling",
                  tri_channel_endpoint (tri_dealer_channel (dealer)),
                  tri_config ()->heartbeat_timeout_ms);
    s_stop ("parent unreachable", NULL);
}

//  Our link to the parent has no heartbeats (tri_socket_link): a parent
//  stopped for a heartbeat timeout is seen from its process state, each
//  heartbeat interval, and is a lost parent. Stopped for less, nothing.
static void
s_watch_parent (tri_timer_t *timer)
{
    const tr_config_t *config = tri_config ();
    int64_t now = tri_now_us ();
    int64_t next = tri_after_ms (config->heartbeat_ivl_ms);
    if (!s_actor.parent || s_actor.stopping)
        return;
    int64_t lost_at = tri_pid_lost_at (s_actor.parent_pid, &s_actor.parent_stopped_at, now);
    if (lost_at && lost_at <= now) {
        s_on_parent_lost (s_actor.parent);
        return;
    }
    if (lost_at && lost_at < next)
        next = lost_at;
    tri_timer_start (timer, next, s_watch_parent, NULL);
}

//  The end of the socket pair our parent linked us by (when it does
//  without pidfds), or -1. It is made close-on-exec at once, so that our
//  own children do not hold it: it reads end of file when the parent
//  exits, and only then. It is never closed: the parent reads end of file
//  on its own end when we exit, and we may outlive tr_run a while (pool
//  threads are joined after it).
static int
s_parent_link (void)
{
    const char *text = getenv (TRI_ENV_PARENT_FD);
    int fd = text && *text? atoi (text): -1;
    unsetenv (TRI_ENV_PARENT_FD);
    struct stat st;
    if (fd < 0 || fstat (fd, &st) || !S_ISSOCK (st.st_mode))
        return -1;
    fcntl (fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

//  The parent is known by its public endpoint (endpoint: its registry, if
//  it serves one, is reached through this link); we connect to the one
//  it keeps for its children (local), if it gave one.
static int
s_connect_parent (const char *endpoint, const char *local, int parent_pid, int link)
{
    //  A local parent's pidfd becomes readable when it exits (or our end
    //  of its link, which it gave us where pidfds are refused). The pid is
    //  checked against ours so a recycled pid cannot fool us.
    if (link >= 0) {
        s_actor.parent_pidfd = link;
        s_actor.parent_linked = true;
    }
    else
    if (parent_pid > 0)
        s_actor.parent_pidfd = tri_pidfd_open (parent_pid);
    if (parent_pid > 0 && (s_actor.parent_pidfd < 0 || getppid () != parent_pid)) {
        if (s_actor.parent_pidfd < 0 && errno == ENOSYS)
            tri_log_error ("TR-ORPHAN", "cannot watch parent %d: pidfds are refused here, and "
                           "not where the parent runs (set %s=1 there)", parent_pid,
                           TRI_ENV_NO_PIDFD);
        else
            tri_log_error ("TR-ORPHAN", "parent %d is already gone", parent_pid);
        return TR_ECLOSED;
    }
    int rc = tri_dealer_open (local? local: endpoint, true, &s_actor.parent, NULL);
    if (rc) {
        tri_log_error ("TR-CONNECT", "cannot connect to parent at %s", local? local: endpoint);
        return rc;
    }
    tri_channel_set_peer (tri_dealer_channel (s_actor.parent), "parent", endpoint, parent_pid);
    tri_dealer_on_lost (s_actor.parent, s_on_parent_lost);
    if (parent_pid > 0) {
        s_actor.parent_pid = parent_pid;
        tri_timer_start (&s_actor.parent_stops, tri_after_ms (tri_config ()->heartbeat_ivl_ms),
                         s_watch_parent, NULL);
    }
    if (s_actor.parent_pidfd >= 0)
        rc = tri_loop_watch (&s_actor.parent_watch, s_actor.parent_pidfd, s_on_parent_exit, NULL);
    return rc;
}

//  --------------------------------------------------------------------------
//  The registry: which one, and telling our children

//  A root or daemon takes --tr-registry, config.registry, then
//  $TROUPE_REGISTRY; a root with none of them serves its own registry.
//  A child takes what its parent put in its environment.
static int
s_registry_start (bool child, bool daemon, int argc, char **argv)
{
    const tr_config_t *config = tri_config ();
    const char *address = getenv (TRI_ENV_REGISTRY);
    if (!child) {
        const char *arg = argc > 0? s_arg_value (argc, argv, "--tr-registry"): NULL;
        if (arg)
            address = arg;
        else
        if (config->registry && *config->registry)
            address = config->registry;
    }
    if (address && !*address)
        address = NULL;
    if (!address && (child || daemon))
        address = "none";
    int rc = 0;
    if (!address && (rc = tri_registry_serve (config->registry_max, config->registry_lease_ms)))
        return rc;
    //  Our children (and theirs) use the same registry.
    const char *old = getenv (TRI_ENV_REGISTRY);
    if (old && !(s_actor.env_saved = strdup (old)))
        return TR_ENOMEM;
    s_actor.env_set = true;
    if (setenv (TRI_ENV_REGISTRY, address? address: tri_actor ()->endpoint, 1))
        return TR_ENOMEM;
    rc = tri_locate_start (address, child? s_actor.parent: NULL);
    if (rc == TR_EINVAL)
        tri_log_error ("TR-REGISTRY", "bad registry address '%s'", address);
    return rc;
}

static void
s_registry_stop (void)
{
    tri_locate_stop ();
    tri_registry_stop ();
    if (s_actor.env_set) {
        if (s_actor.env_saved)
            setenv (TRI_ENV_REGISTRY, s_actor.env_saved, 1);
        else
            unsetenv (TRI_ENV_REGISTRY);
    }
    free (s_actor.env_saved);
    s_actor.env_saved = NULL;
    s_actor.env_set = false;
}

//  --------------------------------------------------------------------------
//  Keys: which directory, and telling our children (the directory's path,
//  never a key)

static int
s_env_push (const char *name, const char *value, bool *set, char **saved)
{
    const char *old = getenv (name);
    if (old && !(*saved = strdup (old)))
        return TR_ENOMEM;
    *set = true;
    if (value? setenv (name, value, 1): unsetenv (name))
        return TR_ENOMEM;
    return 0;
}

static void
s_env_pop (const char *name, bool *set, char **saved)
{
    if (*set) {
        if (*saved)
            setenv (name, *saved, 1);
        else
            unsetenv (name);
    }
    free (*saved);
    *saved = NULL;
    *set = false;
}

//  A root or daemon takes --tr-keys, config.keys, then $TROUPE_KEYS, and
//  --tr-insecure or config.insecure; a child what its parent passed down.
static int
s_secure_start (bool child, int argc, char **argv)
{
    const tr_config_t *config = tri_config ();
    const char *keys = getenv (TRI_ENV_KEYS);
    bool insecure;
    if (child)
        insecure = getenv (TRI_ENV_INSECURE) != NULL;
    else {
        const char *arg = argc > 0? s_arg_value (argc, argv, "--tr-keys"): NULL;
        if (arg)
            keys = arg;
        else
        if (config->keys && *config->keys)
            keys = config->keys;
        insecure = config->insecure || (argc > 0 && s_arg_flag (argc, argv, "--tr-insecure"));
    }
    if (keys && !*keys)
        keys = NULL;
    //  Children find the directory wherever they run from.
    char *path = keys? realpath (keys, NULL): NULL;
    if (path)
        keys = path;
    int rc = tri_secure_start (keys, insecure);
    if (rc == 0)
        rc = s_env_push (TRI_ENV_KEYS, keys, &s_actor.env_keys.set, &s_actor.env_keys.saved);
    if (rc == 0)
        rc = s_env_push (TRI_ENV_INSECURE, insecure? "1": NULL, &s_actor.env_insecure.set,
                         &s_actor.env_insecure.saved);
    free (path);
    return rc;
}

static void
s_secure_stop (void)
{
    tri_secure_stop ();
    s_env_pop (TRI_ENV_KEYS, &s_actor.env_keys.set, &s_actor.env_keys.saved);
    s_env_pop (TRI_ENV_INSECURE, &s_actor.env_insecure.set, &s_actor.env_insecure.saved);
}

//  --------------------------------------------------------------------------
//  The library's own exports

//  tr.info: who this actor is, and how many peers it holds a channel for.
static int
s_info (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx; (void) args;
    tr_actor_t *me = tri_actor ();
    return tr_reply_pack (out, "{s:s, s:s, s:s, s:i, s:[ii], s:i}", "uid", me->uid,
                          "name", me->name, "endpoint", me->endpoint, "pid", (int) getpid (),
                          "protocol", TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR,
                          "peers", (int) tri_peer_count ());
}

static const tr_export_t s_internal [] = {
    TR_FN ("tr.info", s_info),
    TR_EXPORTS_END
};

const char *
tr_actor_uid (const tr_actor_t *self)
{
    return self? self->uid: NULL;
}

const char *
tr_actor_name (const tr_actor_t *self)
{
    return self? self->name: NULL;
}

const char *
tr_actor_endpoint (const tr_actor_t *self)
{
    return self? self->endpoint: NULL;
}

//  --------------------------------------------------------------------------
//  Running

static void
s_root_main (void *arg)
{
    (void) arg;
    s_actor.root_rc = s_actor.root_main (tri_actor (), s_actor.root_arg);
    tri_ctx_end (&s_actor.root_ctx);
    s_actor.root_done = true;
    //  Structured concurrency: nothing outlives the root's main function.
    s_stop ("root returned", NULL);
}

static bool
s_all_done (void)
{
    return s_actor.stopping && (!s_actor.root_task || s_actor.root_done)
        && tri_sched_alive () == 0;
}

static void
s_close_leftovers (void *arg)
{
    (void) arg;
    tri_nursery_close_all ();
}

//  After the last task: children whose nursery was never closed are
//  cancelled and reaped, so that nothing outlives this process.
static void
s_finish (void)
{
    if (tri_nursery_open_count () > 0) {
        tri_log_warn ("TR-NURSERY-OPEN", "%zu nurseries were not closed: closing them",
                      tri_nursery_open_count ());
        if (tri_task_new (s_close_leftovers, NULL, 0, false))
            tri_loop_run (s_all_done);
    }
    tri_tasks_free ();
    s_ack_askers ();
}

static const char *
s_arg_value (int argc, char **argv, const char *name)
{
    size_t len = strlen (name);
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], name) && i + 1 < argc)
            return argv [i + 1];
        if (strncmp (argv [i], name, len) == 0 && argv [i][len] == '=')
            return argv [i] + len + 1;
    }
    return NULL;
}

static bool
s_arg_flag (int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (streq (argv [i], name))
            return true;
    return false;
}

//  Everything the runtime needs before the first task runs.
static int
s_start (const tr_config_t *config, const char *name, const char *uid, const char *bind,
         bool child, int argc, char **argv)
{
    //  Before the first socket: the limit as high as it may go.
    tri_fds_start ();
    int rc = tri_rt_start (config, name, uid);
    if (rc)
        return rc;
    s_actor.sig_pipe [0] = s_actor.sig_pipe [1] = -1;
    s_actor.parent_pidfd = -1;
    tri_pool_on_start (s_pool_started);
    tri_serve_start (config? config->exports: NULL);
    tri_serve_add_internal (s_internal);
    tri_channel_on_stop (s_on_stop_request);
    if ((rc = s_signals_start ()))
        return rc;
    //  The ZAP handler is bound before the first CURVE socket exists.
    if ((rc = s_secure_start (child, argc, argv)))
        return rc;
    //  A root or a daemon sweeps the endpoints of actors killed by a
    //  signal; a child's root has done it already.
    if (!child)
        tri_secure_ipc_sweep ();
    if ((rc = tri_peer_listen (bind? bind: tri_config ()->bind)))
        return rc;
    //  Connections are refused while descriptors are short, so that the
    //  listener never meets EMFILE.
    tri_fds_guard (tri_actor ()->endpoint);
    tri_fds_guard (tri_peer_local_endpoint ());
    tri_log_debug ("TR-START", "%s serving at %s", uid, tri_actor ()->endpoint);
    return 0;
}

static void
s_teardown (void)
{
    s_registry_stop ();
    tri_timer_stop (&s_actor.parent_stops);
    tri_dealer_close (&s_actor.parent);
    tri_loop_unwatch (&s_actor.parent_watch);
    if (s_actor.parent_pidfd >= 0 && !s_actor.parent_linked)
        close (s_actor.parent_pidfd);
    tri_fds_stop ();
    tri_peer_stop ();
    s_secure_stop ();
    s_signals_stop ();
    tri_loop_unwatch (&s_actor.pool_watch);
    tri_pool_on_start (NULL);
    tri_serve_reset ();
    tri_call_spares_free ();
    tri_ctx_clear (&s_actor.root_ctx);
    if (s_actor.root_task)
        tri_task_destroy (&s_actor.root_task);
    tri_rt_stop ();
}

int
tr_run (const tr_config_t *config, int argc, char **argv,
        int (*root_main) (tr_actor_t *self, void *arg), void *arg)
{
    if (tri_rt_running () || argc < 0 || (argc > 0 && !argv))
        return TR_EINVAL;
    if (config && config->size > sizeof *config)
        return TR_EINVAL;
    memset (&s_actor, 0, sizeof s_actor);
    s_actor.sig_pipe [0] = s_actor.sig_pipe [1] = -1;
    s_actor.parent_pidfd = -1;

    const char *parent = getenv (TRI_ENV_PARENT);
    bool child = parent && *parent;
    //  Before anything could spawn: our children must not inherit it.
    int parent_link = child? s_parent_link (): -1;
    bool daemon = !child && argc > 0 && s_arg_flag (argc, argv, "--tr-daemon");
    if (!child && !daemon && !root_main)
        return TR_EINVAL;

    //  Name and uid.
    char name [128];
    char *uid = NULL;
    const char *bind = NULL;
    if (child) {
        const char *env_uid = getenv (TRI_ENV_UID);
        if (!env_uid || !strchr (env_uid, '@'))
            return TR_EINVAL;
        snprintf (name, sizeof name, "%.*s", (int) (strchr (env_uid, '@') - env_uid), env_uid);
        uid = strdup (env_uid);
        bind = getenv (TRI_ENV_BIND);
        if (bind && !*bind)
            bind = NULL;
    }
    else {
        const char *given = daemon? s_arg_value (argc, argv, "--tr-name"): NULL;
        if (!given && config && config->name)
            given = config->name;
        if (!given && argc > 0) {
            const char *slash = strrchr (argv [0], '/');
            given = slash? slash + 1: argv [0];
        }
        snprintf (name, sizeof name, "%s", given && *given? given: "actor");
        uid = tri_uid_new (name);
        if (daemon)
            bind = s_arg_value (argc, argv, "--tr-bind");
    }
    if (!uid)
        return TR_ENOMEM;
    //  What the children inherit must not name our parent.
    const char *local = getenv (TRI_ENV_PARENT_LOCAL);
    char *parent_local = child && local && *local? strdup (local): NULL;
    unsetenv (TRI_ENV_PARENT);
    unsetenv (TRI_ENV_PARENT_LOCAL);
    unsetenv (TRI_ENV_UID);
    unsetenv (TRI_ENV_BIND);
    char *parent_endpoint = child? strdup (parent): NULL;

    int rc = s_start (config, name, uid, bind, child, argc, argv);
    free (uid);
    if (rc) {
        free (parent_endpoint);
        free (parent_local);
        if (tri_rt_running ())
            s_teardown ();
        return rc;
    }
    int exit_code = 0;
    if (child) {
        const char *ppid = getenv (TRI_ENV_PARENT_PID);
        int parent_pid = ppid? atoi (ppid): 0;
        unsetenv (TRI_ENV_PARENT_PID);
        rc = parent_endpoint? s_connect_parent (parent_endpoint, parent_local, parent_pid,
                                                parent_link)
                            : TR_ENOMEM;
        free (parent_endpoint);
        free (parent_local);
        if (rc == 0)
            rc = s_registry_start (true, false, argc, argv);
        if (rc) {
            s_teardown ();
            return 1;
        }
        tri_loop_run (s_all_done);
        //  Cancelled by the parent: 0. Parent gone or signalled: non-zero.
        exit_code = s_actor.naskers? 0: (s_actor.signals? 128 + s_actor.last_signal: 1);
        s_finish ();
    }
    else
    if ((rc = s_registry_start (false, daemon, argc, argv))) {
        s_teardown ();
        return rc;
    }
    else
    if (daemon) {
        tri_log_info ("TR-DAEMON", "%s serving at %s", tri_uid (), tri_actor ()->endpoint);
        fprintf (stdout, "%s %s\n", tri_uid (), tri_actor ()->endpoint);
        fflush (stdout);
        tri_loop_run (s_all_done);
        s_finish ();
        exit_code = s_actor.signals? 128 + s_actor.last_signal: 0;
    }
    else {
        s_actor.root_main = root_main;
        s_actor.root_arg = arg;
        s_actor.root_task = tri_task_new (s_root_main, NULL, 0, true);
        if (!s_actor.root_task) {
            s_teardown ();
            return TR_ENOMEM;
        }
        tri_ctx_init (&s_actor.root_ctx, s_actor.root_task);
        tri_loop_run (s_all_done);
        s_finish ();
        exit_code = s_actor.root_rc;
        if (s_actor.signals && exit_code == 0)
            exit_code = 128 + s_actor.last_signal;
    }
    s_teardown ();
    return exit_code;
}
