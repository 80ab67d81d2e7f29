/*  =========================================================================
    spawn.c - child processes: posix_spawn, hello, pidfds, reaping

    A child is this program (or config.worker_path) re-executed with
    posix_spawn, told through its environment where its parent listens,
    its uid and where to bind. The parent watches it through a pidfd that
    the loop polls beside the sockets, signals it with pidfd_send_signal
    and reaps it with waitid on that pidfd: no SIGCHLD handler and no pid
    reuse race. Whatever happens during a spawn (timeout, cancel, early
    death), the process is killed and reaped before the spawn returns.
    =========================================================================
*/
#include "troupe_private.h"
#include <czmq.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int
tri_pidfd_open (pid_t pid)
{
    return (int) syscall (SYS_pidfd_open, pid, 0);
}

static int
s_pidfd_send_signal (int pidfd, int sig)
{
    return (int) syscall (SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

//  The environment for a child: ours without troupe's own variables, then
//  the child's, then the caller's extras.
static char **
s_child_env (const char *uid, const char *bind, const char *const *extra)
{
    tri_rt_t *rt = tri_rt;
    size_t count = 0, extras = 0;
    while (environ [count])
        count++;
    while (extra && extra [extras])
        extras++;
    char **env = calloc (count + extras + 5, sizeof *env);
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
    if (asprintf (&env [n++], "%s=%s", TRI_ENV_PARENT, rt->actor.endpoint) < 0
    ||  asprintf (&env [n++], "%s=%d", TRI_ENV_PARENT_PID, (int) getpid ()) < 0
    ||  asprintf (&env [n++], "%s=%s", TRI_ENV_UID, uid) < 0)
        env [n - 1] = NULL;
    if (bind && asprintf (&env [n++], "%s=%s", TRI_ENV_BIND, bind) < 0)
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
//  Spawn a child process; it is linked into tri_rt->children and polled.

int
tri_child_spawn (const char *name, const tr_spawn_opts_t *opts, tri_child_t **child_p)
{
    tri_rt_t *rt = tri_rt;
    const char *path = opts && opts->worker_path? opts->worker_path: rt->config.worker_path;
    if (!path)
        path = "/proc/self/exe";
    const char *bind = opts && opts->bind? opts->bind: rt->config.bind;
    int rc = TR_ENOMEM;
    int spawn_errno = 0;            //  why posix_spawn failed, for errno
    char **env = NULL;
    posix_spawnattr_t attr;
    bool attr_ready = false;
    tri_child_t *self = calloc (1, sizeof *self);
    if (!self)
        goto fail;
    self->pidfd = -1;
    zuuid_t *uuid = zuuid_new ();
    if (!uuid)
        goto fail;
    if (asprintf (&self->uid, "%s@%s", name, zuuid_str_canonical (uuid)) < 0)
        self->uid = NULL;
    zuuid_destroy (&uuid);
    if (!self->uid)
        goto fail;
    if (!(env = s_child_env (self->uid, bind, opts? opts->env: NULL)))
        goto fail;

    //  The child starts with default signal handling and an empty mask,
    //  in a process group of its own: a terminal's Ctrl-C reaches the root
    //  only, which cancels its tree in order (rule 12).
    rc = TR_ESYS;
    if (posix_spawnattr_init (&attr))
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
    int err = posix_spawn (&self->pid, path, NULL, &attr, argv, env);
    if (err) {
        tri_log_error ("TR-SPAWN", "cannot spawn %s: %s", path, strerror (err));
        spawn_errno = err;
        goto fail;
    }
    self->pidfd = tri_pidfd_open (self->pid);
    if (self->pidfd < 0) {
        //  Cannot watch it: do not let it live unwatched.
        kill (self->pid, SIGKILL);
        waitpid (self->pid, NULL, 0);
        goto fail;
    }
    posix_spawnattr_destroy (&attr);
    s_env_free (&env);
    self->next = rt->children;
    rt->children = self;
    tri_log_debug ("TR-SPAWN", "spawned %s as pid %d", self->uid, (int) self->pid);
    *child_p = self;
    return 0;
fail:
    if (attr_ready)
        posix_spawnattr_destroy (&attr);
    s_env_free (&env);
    if (self) {
        free (self->uid);
        free (self);
    }
    if (spawn_errno)
        errno = spawn_errno;
    return rc;
}

//  --------------------------------------------------------------------------
//  Signals and reaping

//  A child that died without closing its ROUTER leaves its ipc file: take
//  it away (a child that exited cleanly has already done so).
static void
s_unlink_endpoint (const tri_child_t *self)
{
    const char *endpoint = self->channel? self->channel->endpoint: NULL;
    if (endpoint && strncmp (endpoint, "ipc:///", 7) == 0)
        unlink (endpoint + 6);
}

void
tri_child_signal (tri_child_t *self, int sig)
{
    if (self->pidfd >= 0 && !self->exited) {
        if (sig == SIGTERM || sig == SIGKILL)
            self->killed = true;
        s_pidfd_send_signal (self->pidfd, sig);
    }
}

void
tri_child_reaped (tri_child_t *self)
{
    if (self->exited || self->pidfd < 0)
        return;
    siginfo_t info;
    memset (&info, 0, sizeof info);
    if (waitid (P_PIDFD, (id_t) self->pidfd, &info, WEXITED | WNOHANG) < 0 || info.si_pid == 0)
        return;
    self->exited = true;
    self->code = info.si_code;
    self->status = info.si_status;
    close (self->pidfd);
    self->pidfd = -1;
    s_unlink_endpoint (self);
    tri_log_debug ("TR-REAP", "%s (pid %d) %s %d", self->uid, (int) self->pid,
                   self->code == CLD_EXITED? "exited with": "killed by signal", self->status);
    if (self->hello_waiter)
        tri_task_wake (self->hello_waiter, TR_ECRASHED);
    if (self->exit_waiter)
        tri_task_wake (self->exit_waiter, 0);
    if (self->channel && !self->channel->closed)
        tri_channel_close (self->channel, tri_child_death (self), true);
}

tr_error_t *
tri_child_death (const tri_child_t *self)
{
    if (!self->exited)
        return tri_error_new (TR_ECRASHED, "Crashed", self->uid, "%s is gone", self->uid);
    tr_error_t *err;
    if (self->code == CLD_EXITED)
        err = tri_error_new (TR_ECRASHED, "Crashed", self->uid,
                             "actor %s (pid %d) exited with status %d", self->uid,
                             (int) self->pid, self->status);
    else
        err = tri_error_new (TR_ECRASHED, "Crashed", self->uid,
                             "actor %s (pid %d) was killed by signal %d (%s)%s", self->uid,
                             (int) self->pid, self->status, strsignal (self->status),
                             self->code == CLD_DUMPED? ", core dumped": "");
    if (err) {
        if (self->code == CLD_EXITED)
            err->exit_status = self->status;
        else
            err->signal = self->status;
    }
    return err;
}

int
tri_child_await_exit (tri_child_t *self, int64_t deadline)
{
    while (!self->exited) {
        tri_task_t *me = tri_task_current ();
        assert (me && !self->exit_waiter);
        self->exit_waiter = me;
        int rc = tri_task_park_shielded (deadline);
        self->exit_waiter = NULL;
        //  The pidfd may be readable without the loop having polled it yet.
        tri_child_reaped (self);
        if (rc == TR_ETIMEDOUT)
            return self->exited? 0: TR_ETIMEDOUT;
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
        tri_child_await_exit (self, tri_now_ms () + 5000);
    if (!self->exited && self->pidfd >= 0) {
        //  SIGKILL cannot be caught: block until the kernel is done.
        siginfo_t info;
        memset (&info, 0, sizeof info);
        if (waitid (P_PIDFD, (id_t) self->pidfd, &info, WEXITED) == 0) {
            self->exited = true;
            self->code = info.si_code;
            self->status = info.si_status;
            close (self->pidfd);
            self->pidfd = -1;
        }
    }
}

//  --------------------------------------------------------------------------
//  Hello

tri_child_t *
tri_child_hello (const char *uid, tri_channel_t *channel)
{
    for (tri_child_t *c = tri_rt->children; c; c = c->next)
        if (!c->channel && streq (c->uid, uid)) {
            if (channel) {
                c->channel = channel;
                channel->child = c;
                tri_channel_ref (channel);
                if (c->hello_waiter)
                    tri_task_wake (c->hello_waiter, 0);
            }
            return c;
        }
    return NULL;
}

int
tri_child_await_hello (tri_child_t *self, int64_t deadline, tr_error_t **error)
{
    tri_rt_t *rt = tri_rt;
    int rc = 0;
    while (!self->channel && !self->exited) {
        self->hello_waiter = tri_task_current ();
        rc = tri_task_park (deadline);
        self->hello_waiter = NULL;
        if (rc)
            break;
    }
    if (self->channel && rc == 0)
        return 0;
    if (rc == 0)
        rc = TR_ECRASHED;
    //  Rule 7: no handshake will come; kill and reap what was spawned.
    tri_child_reaped (self);
    if (rc == TR_ECRASHED || self->exited)
        *error = tri_child_death (self);
    else
    if (rc == TR_ETIMEDOUT)
        *error = tri_error_new (rc, "SpawnTimeout", rt->actor.uid,
                                "actor %s (pid %d) did not say hello within %d ms",
                                self->uid, (int) self->pid, rt->config.hello_ms);
    else
    if (rc == TR_EVERSION)
        *error = tri_error_new (rc, "VersionMismatch", rt->actor.uid,
                                "actor %s speaks another protocol major version than %d",
                                self->uid, TR_PROTOCOL_MAJOR);
    else
        *error = tri_error_new (rc, tr_errname (rc), rt->actor.uid,
                                "spawn of %s interrupted: %s", self->uid, tr_strerror (rc));
    tri_child_kill_reap (self);
    return rc;
}

void
tri_child_destroy (tri_child_t **self_p)
{
    tri_child_t *self = *self_p;
    if (!self)
        return;
    assert (self->exited);
    tri_child_t **link = &tri_rt->children;
    while (*link && *link != self)
        link = &(*link)->next;
    if (*link)
        *link = self->next;
    if (self->channel) {
        self->channel->child = NULL;
        //  The peer is gone for good: forget its routing id too.
        if (self->channel->closed
        &&  zhashx_lookup (tri_rt->channels, self->channel->key) == self->channel) {
            tri_channel_t *table_ref = self->channel;
            zhashx_delete (tri_rt->channels, table_ref->key);
            tri_channel_unref (&table_ref);
        }
        tri_channel_unref (&self->channel);
    }
    free (self->uid);
    free (self);
    *self_p = NULL;
}
