/*  =========================================================================
    spawn.c - child processes: posix_spawn, hello, pidfds, reaping

    A child is this program (or config.worker_path) re-executed with
    posix_spawn, told through its environment where its parent listens,
    its uid and where to bind. The parent watches it through a pidfd that
    the loop watches beside the sockets, signals it with pidfd_send_signal
    and reaps it with waitid on that pidfd: no SIGCHLD handler and no pid
    reuse race. Where pidfds are refused (valgrind 3.19 does not know
    pidfd_open; TROUPE_NO_PIDFD=1 forces it), a socket pair links the two
    instead: the child alone holds one end, so ours reads end of file when
    it exits, and the child's reads end of file when we do; the child is
    then signalled with kill and reaped with waitid on its pid, which stay
    ours until it is reaped. Whatever happens during a spawn (timeout,
    cancel, early death), the process is killed and reaped before the
    spawn returns.
    The hello of a child arrives on the ROUTER; the socket layer tells us
    through the hook we registered, and so of the end of its connection:
    a child whose connection ended and that is stopped, or has not exited
    a heartbeat timeout later, is lost: killed with SIGKILL and reaped,
    and its death is ConnectionLost, a failure of its own. Our links to
    children have no heartbeats: a child's state in /proc, read every
    heartbeat interval, tells that it was stopped for a heartbeat
    timeout, and it is lost the same way. Children spawned together have
    their hellos awaited together, so that the first failure of any of
    them ends the wait and takes all of them down.
    =========================================================================
*/
#ifdef HAVE_CONFIG_H
#   include "config.h"
#endif
#include "troupe_private.h"
#include "tri_fds.h"
#include <czmq.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef HAVE_VALGRIND_VALGRIND_H
#   include <valgrind/valgrind.h>
#else
#   define RUNNING_ON_VALGRIND 0
#endif

extern char **environ;

struct tri_child {
    pid_t pid;
    int pidfd;                  //  -1 once reaped; without pidfds, our
                                //  end of the socket pair linking us
    bool linked;                //  without pidfds: by that socket pair
    tri_watch_t watch;          //  on the pidfd
    char *uid;
    tri_channel_t *channel;     //  after hello
    bool exited;                //  reaped
    int status;                 //  waitid's si_status
    int code;                   //  CLD_EXITED, CLD_KILLED, CLD_DUMPED
    bool killed;                //  we sent SIGTERM or SIGKILL
    bool lost;                  //  stopped too long, or its connection ended
                                //  and it did not exit
    bool departed;              //  its connection ended, what it sent is read
    tri_timer_t lost_timer;     //  from its connection's end to its loss
    int64_t stopped_at;         //  when it was first seen stopped (us), or 0
    int interrupt;              //  ends the wait for hello, 0 none
    int refused;                //  its hello was refused (TR_EVERSION)
    tri_waitq_t *hello_waitq;   //  where a task awaits its hello (with
                                //  its siblings'), or NULL
    tri_waitq_t exit_waiters;
    void (*on_death) (void *arg);   //  the owner's, run once it is dead
    void *on_death_arg;
    bool death_told;
    tri_node_t node;            //  in s_children
};

static tri_list_t s_children = { &s_children, &s_children };
static size_t s_hard_kills;     //  children sent SIGTERM or SIGKILL, once each
static tri_timer_t s_stop_watch; //  while there are children (s_watch_stops)

int
tri_pidfd_open (pid_t pid)
{
    return (int) syscall (SYS_pidfd_open, pid, 0);
}

bool
tri_pidfd_refused (void)
{
    const char *knob = getenv (TRI_ENV_NO_PIDFD);
    if (knob && *knob && !streq (knob, "0"))
        return true;
    //  Asked once: pidfd_open, pidfd_send_signal and waitid(P_PIDFD) on
    //  ourselves. Only a refusal counts (ENOSYS; EINVAL for an idtype
    //  waitid does not know), not a lack of descriptors.
    static int refused = -1;
    if (refused < 0) {
        int fd = tri_pidfd_open (getpid ());
        if (fd < 0)
            refused = errno == ENOSYS;
        else {
            siginfo_t info;
            refused = (syscall (SYS_pidfd_send_signal, fd, 0, NULL, 0) < 0 && errno == ENOSYS)
                   || (waitid (P_PIDFD, (id_t) fd, &info, WEXITED | WNOHANG) < 0
                       && (errno == ENOSYS || errno == EINVAL));
            close (fd);
        }
        if (refused)
            tri_log_info ("TR-SPAWN", "pidfds refused: children are linked by socket pairs");
    }
    return refused;
}

static int
s_send_signal (tri_child_t *self, int sig)
{
    if (self->linked)
        return kill (self->pid, sig);
    return (int) syscall (SYS_pidfd_send_signal, self->pidfd, sig, NULL, 0);
}

//  waitid on the child: on its pidfd, or on its pid (it is ours and not
//  reaped, so the pid is still its).
static int
s_waitid (tri_child_t *self, siginfo_t *info, int options)
{
    if (self->linked)
        return waitid (P_PID, (id_t) self->pid, info, options);
    return waitid (P_PIDFD, (id_t) self->pidfd, info, options);
}

//  This program, to spawn again. /proc/self/exe still names it if its
//  file was replaced; under valgrind it names valgrind's tool, so the
//  program's own path is taken there (valgrind shows it to the client).
static const char *
s_self_exe (void)
{
    static char path [PATH_MAX];
    if (!RUNNING_ON_VALGRIND)
        return "/proc/self/exe";
    if (!*path) {
        ssize_t size = readlink ("/proc/self/exe", path, sizeof path - 1);
        path [size > 0? size: 0] = 0;
    }
    return *path? path: "/proc/self/exe";
}

//  The environment for a child: ours without troupe's own variables, then
//  the child's, then the caller's extras.
static char **
s_child_env (const char *uid, const char *bind, int link, const char *const *extra)
{
    size_t count = 0, extras = 0;
    while (environ [count])
        count++;
    while (extra && extra [extras])
        extras++;
    char **env = calloc (count + extras + 7, sizeof *env);
    if (!env)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        //  An extra "NAME=value" replaces what we inherited under NAME.
        bool replaced = false;
        for (size_t j = 0; j < extras && !replaced; j++) {
            const char *eq = strchr (extra [j], '=');
            size_t len = eq? (size_t) (eq - extra [j]) + 1: strlen (extra [j]);
            replaced = strncmp (environ [i], extra [j], len) == 0;
        }
        if (!replaced
        &&  strncmp (environ [i], "TROUPE_PARENT", 13) && strncmp (environ [i], "TROUPE_UID=", 11)
        &&  strncmp (environ [i], "TROUPE_BIND=", 12))
            env [n++] = strdup (environ [i]);
    }
    if (asprintf (&env [n++], "%s=%s", TRI_ENV_PARENT, tri_actor ()->endpoint) < 0
    ||  asprintf (&env [n++], "%s=%s", TRI_ENV_PARENT_LOCAL, tri_peer_local_endpoint ()) < 0
    ||  asprintf (&env [n++], "%s=%d", TRI_ENV_PARENT_PID, (int) getpid ()) < 0
    ||  asprintf (&env [n++], "%s=%s", TRI_ENV_UID, uid) < 0)
        env [n - 1] = NULL;
    if (bind && asprintf (&env [n++], "%s=%s", TRI_ENV_BIND, bind) < 0)
        env [n - 1] = NULL;
    if (link >= 0 && asprintf (&env [n++], "%s=%d", TRI_ENV_PARENT_FD, link) < 0)
        env [n - 1] = NULL;
    for (size_t i = 0; i < extras; i++)
        env [n++] = strdup (extra [i]);
    for (size_t i = 0; i < n; i++)
        if (!env [i]) {
            for (size_t j = 0; j < n; j++)
                free (env [j]);
            free (env);
            return NULL;
        }
    return env;
}

static void
s_env_free (char ***env_p)
{
    char **env = *env_p;
    if (env) {
        for (size_t i = 0; env [i]; i++)
            free (env [i]);
        free (env);
        *env_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Hello and exit, as the loop sees them

//  Something that ends the wait for its hello happened: wake the task
//  awaiting it, if any.
static void
s_hello_event (tri_child_t *self, int rc)
{
    if (self->hello_waitq)
        tri_waitq_wake_all (self->hello_waitq, rc);
}

//  The child is reaped and has a channel: close the channel with its
//  death (drained: its last frames are still read). A channel a failed
//  send closed first (the child's socket went away before its exit was
//  seen) takes the death too: it is why, and the calls still draining
//  fail with it.
static void
s_close_channel (tri_child_t *self)
{
    //  A child that died without closing its ROUTER leaves its ipc file (a
    //  child that exited cleanly has already taken it away).
    tri_ipc_unlink (tri_channel_endpoint (self->channel));
    //  Once its connection has ended and what it sent is read, nothing
    //  more can come: no drain period.
    tri_channel_close (self->channel, tri_child_death (self), !self->departed);
}

static void
s_on_hello (const char *uid, tri_channel_t *channel, int rc)
{
    tri_list_each (node, next, &s_children) {
        tri_child_t *self = tri_list_entry (node, tri_child_t, node);
        if (self->channel || self->refused || !streq (self->uid, uid))
            continue;
        if (rc)
            self->refused = rc;
        else {
            self->channel = channel;
            tri_channel_ref (channel);
            //  Its exit was seen before its hello was read: the channel
            //  learns of its death now, as s_reaped would have told it.
            if (self->exited)
                s_close_channel (self);
        }
        s_hello_event (self, 0);
        return;
    }
}

//  Tell the owner, once, that the child is dead: reaped, or lost.
static void
s_tell_death (tri_child_t *self)
{
    if (self->death_told)
        return;
    self->death_told = true;
    if (self->on_death)
        self->on_death (self->on_death_arg);
}

//  Record how it ended; close what belonged to it.
static void
s_reaped (tri_child_t *self, const siginfo_t *info)
{
    tri_timer_stop (&self->lost_timer);
    self->exited = true;
    self->code = info->si_code;
    self->status = info->si_status;
    tri_loop_unwatch (&self->watch);
    close (self->pidfd);
    self->pidfd = -1;
    tri_log_debug ("TR-REAP", "%s (pid %d) %s %d", self->uid, (int) self->pid,
                   self->code == CLD_EXITED? "exited with": "killed by signal", self->status);
    s_hello_event (self, 0);
    tri_waitq_wake_all (&self->exit_waiters, 0);
    if (self->channel)
        s_close_channel (self);
    s_tell_death (self);
}

//  Reap it if it has exited; true if it is reaped.
static bool
s_try_reap (tri_child_t *self)
{
    if (self->exited)
        return true;
    siginfo_t info;
    memset (&info, 0, sizeof info);
    if (s_waitid (self, &info, WEXITED | WNOHANG) < 0) {
        if (errno != ECHILD)
            return false;
        //  Someone else reaped it: it is gone, how is not known. Its pidfd
        //  would stay readable for ever.
        tri_log_warn ("TR-REAP", "%s (pid %d) was reaped by someone else", self->uid,
                      (int) self->pid);
        info.si_code = CLD_EXITED;
        info.si_status = 255;
    }
    else
    if (info.si_pid == 0)
        return false;
    s_reaped (self, &info);
    return true;
}

static void
s_on_pidfd (tri_watch_t *watch, bool drain)
{
    (void) drain;
    tri_child_t *self = watch->arg;
    if (s_try_reap (self) || !self->linked)
        return;
    //  Its end of the socket pair closed as it exited, a moment before
    //  it can be reaped: wait that moment out (bounded, 100 ms). One that
    //  closed it and lives on is reaped when it is killed.
    for (int i = 0; i < 1000; i++) {
        struct timespec pause = { 0, 100 * 1000 };
        nanosleep (&pause, NULL);
        if (s_try_reap (self))
            return;
    }
    tri_log_warn ("TR-REAP", "%s (pid %d) closed its link to us and lives on", self->uid,
                  (int) self->pid);
    tri_loop_unwatch (&self->watch);
}

//  Its connection ended and it is stopped, or has not exited a heartbeat
//  timeout later: it stopped answering. Killed; its calls fail now
//  with its loss, no drain period: nothing more can come from it.
static void
s_lose (tri_child_t *self)
{
    tri_timer_stop (&self->lost_timer);
    if (s_try_reap (self))
        return;
    self->lost = true;
    tri_log_warn ("TR-LOST", "%s (pid %d) stopped answering within the heartbeat timeout: "
                  "killed", self->uid, (int) self->pid);
    tri_child_signal (self, SIGKILL);
    //  Also over a channel a failed send closed first: the loss is why.
    if (self->channel)
        tri_channel_close (self->channel, tri_child_death (self), false);
    //  Dead to its owner now; reaped when the kernel is done with it.
    s_tell_death (self);
}

static void
s_lost_expired (tri_timer_t *timer)
{
    s_lose (timer->arg);
}

//  Our links to children have no heartbeats (tri_socket_link): a child
//  stopped for a heartbeat timeout is seen from its process state, each
//  heartbeat interval, and lost as one whose connection ended. A child
//  stopped for less is nothing; one we are ending has its grace periods.
static void
s_watch_stops (tri_timer_t *timer)
{
    const tr_config_t *config = tri_config ();
    int64_t now = tri_now_us ();
    int64_t next = tri_after_ms (config->heartbeat_ivl_ms);
    tri_list_each (node, nx, &s_children) {
        tri_child_t *self = tri_list_entry (node, tri_child_t, node);
        if (self->exited || self->lost || self->killed || !self->channel
        ||  tri_channel_end_expected (self->channel)) {
            self->stopped_at = 0;
            continue;
        }
        int64_t lost_at = tri_pid_lost_at (self->pid, &self->stopped_at, now);
        if (!lost_at)
            continue;
        if (lost_at <= now)
            s_lose (self);
        else
        if (lost_at < next)
            next = lost_at;
    }
    if (!tri_list_empty (&s_children))
        tri_timer_start (timer, next, s_watch_stops, NULL);
}

bool
tri_pid_stopped (pid_t pid)
{
    char path [64], stat [512];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    size_t size = fread (stat, 1, sizeof stat - 1, file);
    fclose (file);
    stat [size] = 0;
    const char *end = strrchr (stat, ')');
    return end && end [1] == ' ' && (end [2] == 'T' || end [2] == 't');
}

int64_t
tri_pid_lost_at (pid_t pid, int64_t *since, int64_t now)
{
    if (!tri_pid_stopped (pid))
        return *since = 0;
    if (!*since)
        *since = now;
    return *since + (int64_t) tri_config ()->heartbeat_timeout_ms * 1000;
}

//  The connection of a ROUTER peer ended: ours to handle if it is a child.
//  A child that exits closes its connection a little before the kernel
//  says so through its pidfd, and one we asked to end has the grace
//  periods of its nursery (rule 8). A stopped one is lost now; one that
//  runs on without its connection (its I/O thread hung) after another
//  heartbeat timeout.
static bool
s_on_departed (tri_channel_t *channel)
{
    tri_list_each (node, next, &s_children) {
        tri_child_t *self = tri_list_entry (node, tri_child_t, node);
        if (self->channel != channel)
            continue;
        self->departed = true;
        if (s_try_reap (self)) {
            //  Reaped, now or before: what it sent is read and nothing
            //  more can come, so a drain under way ends.
            tri_channel_close (channel, NULL, false);
            return true;
        }
        if (self->killed || tri_channel_end_expected (channel)
        ||  tri_timer_active (&self->lost_timer))
            return true;
        int64_t delay = tri_pid_stopped (self->pid)? 0: tri_config ()->heartbeat_timeout_ms;
        tri_timer_start (&self->lost_timer, tri_after_ms (delay), s_lost_expired, self);
        return true;
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Spawn a child process; it is watched from now on.

int
tri_child_spawn (const char *name, const tr_spawn_opts_t *opts, tri_child_t **child_p,
                 tr_error_t **error)
{
    const tr_config_t *config = tri_config ();
    const char *path = opts && opts->worker_path? opts->worker_path: config->worker_path;
    if (!path)
        path = s_self_exe ();
    const char *bind = opts && opts->bind? opts->bind: config->bind;
    int rc = TR_ENOMEM;
    int spawn_errno = 0;            //  why posix_spawn failed
    char **env = NULL;
    posix_spawnattr_t attr;
    bool attr_ready = false;
    posix_spawn_file_actions_t actions;
    bool actions_ready = false;
    int link [2] = { -1, -1 };      //  ours, the child's (without pidfds)
    *error = NULL;
    //  A child costs descriptors here (its pidfd, its connection): refused
    //  while they are short, before the listener would meet EMFILE. The
    //  nursery logs the refusal.
    char why [128];
    if (tri_fds_check (TRI_FDS_SPAWN, why, sizeof why)) {
        *error = tri_error_new (TR_ESYS, "SpawnError", tri_uid (), "cannot spawn %s from %s: %s",
                                name, path, why);
        return TR_ESYS;
    }
    tri_child_t *self = calloc (1, sizeof *self);
    if (!self)
        goto fail;
    self->pidfd = -1;
    tri_node_init (&self->lost_timer.node);
    tri_waitq_init (&self->exit_waiters);
    tri_node_init (&self->node);
    if (!(self->uid = tri_uid_new (name)))
        goto fail;
    //  Without pidfds, the child's end of the link is the one descriptor
    //  it inherits (a dup2 onto itself clears its close-on-exec flag).
    if (tri_pidfd_refused ()) {
        rc = TR_ESYS;
        if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, link)) {
            spawn_errno = errno;
            goto fail;
        }
        if ((spawn_errno = posix_spawn_file_actions_init (&actions)))
            goto fail;
        actions_ready = true;
        if ((spawn_errno = posix_spawn_file_actions_adddup2 (&actions, link [1], link [1])))
            goto fail;
        rc = TR_ENOMEM;
    }
    if (!(env = s_child_env (self->uid, bind, link [1], opts? opts->env: NULL)))
        goto fail;

    //  The child starts with default signal handling and an empty mask,
    //  in a process group of its own: a terminal's Ctrl-C reaches the root
    //  only, which cancels its tree in order (rule 12).
    rc = TR_ESYS;
    if ((spawn_errno = posix_spawnattr_init (&attr)))
        goto fail;
    attr_ready = true;
    sigset_t empty, defaults;
    sigemptyset (&empty);
    sigemptyset (&defaults);
    sigaddset (&defaults, SIGINT);
    sigaddset (&defaults, SIGTERM);
    sigaddset (&defaults, SIGPIPE);
    sigaddset (&defaults, SIGSEGV);
    posix_spawnattr_setsigmask (&attr, &empty);
    posix_spawnattr_setsigdefault (&attr, &defaults);
    posix_spawnattr_setpgroup (&attr, 0);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
                                   | POSIX_SPAWN_SETPGROUP);
    char *argv [] = { (char *) path, NULL };
    //  Asked first, for a reason wherever posix_spawn cannot give one:
    //  under valgrind its child is a fork, whose failed exec is only an
    //  exit status.
    if (access (path, X_OK)) {
        spawn_errno = errno;
        tri_log_error ("TR-SPAWN", "cannot spawn %s: %s", path, strerror (spawn_errno));
        goto fail;
    }
    if ((spawn_errno = posix_spawn (&self->pid, path, actions_ready? &actions: NULL, &attr,
                                    argv, env))) {
        tri_log_error ("TR-SPAWN", "cannot spawn %s: %s", path, strerror (spawn_errno));
        goto fail;
    }
    if (link [0] >= 0) {
        close (link [1]);
        self->pidfd = link [0];
        self->linked = true;
        link [0] = link [1] = -1;
    }
    else
        self->pidfd = tri_pidfd_open (self->pid);
    if (self->pidfd < 0 || tri_loop_watch (&self->watch, self->pidfd, s_on_pidfd, self)) {
        //  Cannot watch it: do not let it live unwatched.
        spawn_errno = errno;
        kill (self->pid, SIGKILL);
        waitpid (self->pid, NULL, 0);
        if (self->pidfd >= 0)
            close (self->pidfd);
        goto fail;
    }
    posix_spawnattr_destroy (&attr);
    if (actions_ready)
        posix_spawn_file_actions_destroy (&actions);
    s_env_free (&env);
    tri_list_push_back (&s_children, &self->node);
    if (!tri_timer_active (&s_stop_watch))
        tri_timer_start (&s_stop_watch, tri_after_ms (config->heartbeat_ivl_ms),
                         s_watch_stops, NULL);
    tri_peer_on_hello (s_on_hello);
    tri_peer_on_departed (s_on_departed);
    tri_log_debug ("TR-SPAWN", "spawned %s as pid %d", self->uid, (int) self->pid);
    *child_p = self;
    return 0;
fail:
    *error = tri_error_new (rc, "SpawnError", tri_uid (), "cannot spawn %s from %s: %s", name,
                            path, rc != TR_ESYS? tr_strerror (rc)
                                : spawn_errno == EMFILE || spawn_errno == ENFILE? "too many open files"
                                : strerror (spawn_errno));
    if (attr_ready)
        posix_spawnattr_destroy (&attr);
    if (actions_ready)
        posix_spawn_file_actions_destroy (&actions);
    for (int i = 0; i < 2; i++)
        if (link [i] >= 0)
            close (link [i]);
    s_env_free (&env);
    if (self) {
        free (self->uid);
        free (self);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Signals, exits, reaping

void
tri_child_signal (tri_child_t *self, int sig)
{
    if (self->pidfd >= 0 && !self->exited) {
        if ((sig == SIGTERM || sig == SIGKILL) && !self->killed) {
            self->killed = true;
            s_hard_kills++;
        }
        s_send_signal (self, sig);
    }
}

void
tri_child_on_death (tri_child_t *self, void (*fn) (void *arg), void *arg)
{
    self->on_death = fn;
    self->on_death_arg = arg;
}

void
tri_child_signal_all (int sig)
{
    tri_list_each (node, next, &s_children)
        tri_child_signal (tri_list_entry (node, tri_child_t, node), sig);
}

int
tri_child_await_exit (tri_child_t *self, int64_t deadline)
{
    while (!s_try_reap (self)) {
        //  The pidfd may be readable without the loop having seen it yet.
        int rc = tri_waitq_wait_shielded (&self->exit_waiters, deadline);
        if (rc == TR_ETIMEDOUT)
            return s_try_reap (self)? 0: TR_ETIMEDOUT;
    }
    return 0;
}

void
tri_child_kill_reap (tri_child_t *self)
{
    if (self->exited)
        return;
    tri_child_signal (self, SIGKILL);
    if (tri_task_current ())
        tri_child_await_exit (self, tri_after_ms (5000));
    if (!self->exited && self->pidfd >= 0) {
        //  SIGKILL cannot be caught: block until the kernel is done.
        siginfo_t info;
        memset (&info, 0, sizeof info);
        if (s_waitid (self, &info, WEXITED) == 0)
            s_reaped (self, &info);
    }
}

void
tri_child_kill_reap_all (tri_child_t **children, size_t count)
{
    //  Every SIGKILL first: they die together, not one after the other.
    for (size_t i = 0; i < count; i++)
        tri_child_signal (children [i], SIGKILL);
    for (size_t i = 0; i < count; i++)
        tri_child_kill_reap (children [i]);
}

tr_error_t *
tri_child_death (const tri_child_t *self)
{
    if (self->lost) {
        tr_error_t *err = tri_error_new (TR_ECRASHED, "ConnectionLost", self->uid,
                                         "actor %s (pid %d) stopped answering within the "
                                         "heartbeat timeout (%d ms) and was killed", self->uid,
                                         (int) self->pid, tri_config ()->heartbeat_timeout_ms);
        tri_error_set_exit (err, 0, SIGKILL);
        return err;
    }
    if (!self->exited)
        return tri_error_new (TR_ECRASHED, "Crashed", self->uid, "%s is gone", self->uid);
    if (self->code == CLD_EXITED) {
        tr_error_t *err = tri_error_new (TR_ECRASHED, "Crashed", self->uid,
                                         "actor %s (pid %d) exited with status %d", self->uid,
                                         (int) self->pid, self->status);
        tri_error_set_exit (err, self->status, 0);
        return err;
    }
    tr_error_t *err = tri_error_new (TR_ECRASHED, "Crashed", self->uid,
                                     "actor %s (pid %d) was killed by signal %d (%s)%s",
                                     self->uid, (int) self->pid, self->status,
                                     strsignal (self->status),
                                     self->code == CLD_DUMPED? ", core dumped": "");
    tri_error_set_exit (err, 0, self->status);
    return err;
}

size_t
tri_child_hard_kills (void)
{
    return s_hard_kills;
}

bool
tri_child_exited (const tri_child_t *self)
{
    return self->exited;
}

bool
tri_child_killed (const tri_child_t *self)
{
    return self->killed;
}

bool
tri_child_lost (const tri_child_t *self)
{
    return self->lost;
}

bool
tri_child_clean (const tri_child_t *self)
{
    return self->exited && self->code == CLD_EXITED && self->status == 0;
}

tri_channel_t *
tri_child_channel (const tri_child_t *self)
{
    return self->channel;
}

const char *
tri_child_uid (const tri_child_t *self)
{
    return self->uid;
}

int
tri_child_pid (const tri_child_t *self)
{
    return (int) self->pid;
}

//  --------------------------------------------------------------------------
//  Hello

void
tri_child_interrupt (tri_child_t *self, int rc)
{
    if (!self->channel && !self->interrupt) {
        self->interrupt = rc;
        s_hello_event (self, rc);
    }
}

//  0 once it said hello, 1 while it still may, else why it never will.
static int
s_hello_state (const tri_child_t *self)
{
    if (self->channel)
        return 0;
    if (self->interrupt)
        return self->interrupt;
    if (self->refused)
        return self->refused;
    if (self->exited)
        return TR_ECRASHED;
    return 1;
}

//  Why the child never said hello (rc), as an error.
static tr_error_t *
s_hello_error (tri_child_t *self, int rc)
{
    const tr_config_t *config = tri_config ();
    if (rc == TR_ECRASHED)
        return tri_child_death (self);
    if (rc == TR_ETIMEDOUT)
        return tri_error_new (rc, "SpawnTimeout", tri_uid (),
                              "actor %s (pid %d) did not say hello within %d ms",
                              self->uid, (int) self->pid, config->hello_ms);
    if (rc == TR_EVERSION)
        return tri_error_new (rc, "VersionMismatch", tri_uid (),
                              "actor %s speaks another protocol major version than %d",
                              self->uid, TR_PROTOCOL_MAJOR);
    return tri_error_new (rc, tr_errname (rc), tri_uid (),
                          "spawn of %s interrupted: %s", self->uid, tr_strerror (rc));
}

//  Every child's hello is awaited on one queue, which each of them wakes:
//  the first failure ends the wait, whichever child it is.
int
tri_child_await_hellos (tri_child_t **children, size_t count, int64_t deadline,
                        size_t *failed, tr_error_t **error)
{
    *error = NULL;
    *failed = 0;
    tri_waitq_t waitq;
    tri_waitq_init (&waitq);
    for (size_t i = 0; i < count; i++) {
        assert (!children [i]->hello_waitq);
        children [i]->hello_waitq = &waitq;
    }
    int rc = 0;
    int wait_rc = 0;            //  TR_ETIMEDOUT, or TR_ECANCELED for this task
    size_t next = 0;            //  children before it said hello
    while (true) {
        //  The first failure in spawn order, of those seen at this wake.
        size_t pending = count;
        for (size_t i = next; i < count && rc == 0; i++) {
            int state = s_hello_state (children [i]);
            if (state < 0) {
                rc = state;
                *failed = i;
            }
            else
            if (state > 0 && pending == count)
                pending = i;
        }
        if (rc || pending == count)
            break;
        if (wait_rc) {
            //  Given up: the first child still silent is the one that
            //  failed.
            rc = wait_rc;
            *failed = pending;
            break;
        }
        next = pending;
        wait_rc = tri_waitq_wait (&waitq, deadline);
        if (wait_rc != TR_ETIMEDOUT
        && !(wait_rc == TR_ECANCELED && tri_task_cancelled (tri_task_current ())))
            wait_rc = 0;        //  a child's news: look again
    }
    for (size_t i = 0; i < count; i++)
        children [i]->hello_waitq = NULL;
    if (rc == 0)
        return 0;
    //  Rule 7: no handshake will come; kill and reap what was spawned.
    tri_child_t *culprit = children [*failed];
    s_try_reap (culprit);
    *error = s_hello_error (culprit, rc);
    tri_child_kill_reap_all (children, count);
    return rc;
}

void
tri_child_destroy (tri_child_t **self_p)
{
    tri_child_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    assert (self->exited);
    assert (!self->hello_waitq && tri_waitq_empty (&self->exit_waiters));
    tri_node_unlink (&self->node);
    if (tri_list_empty (&s_children))
        tri_timer_stop (&s_stop_watch);
    tri_timer_stop (&self->lost_timer);
    tri_channel_unref (&self->channel);
    free (self->uid);
    free (self);
}
