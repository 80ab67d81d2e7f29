/*  =========================================================================
    actor.c - tr_run, the three roles, the export table and serving calls

    tr_run decides what this process is. A root runs root_main as its first
    task. A child (a parent's nursery spawned it; the environment says
    where its parent is) connects back, says hello and serves until its
    parent cancels it or dies. A daemon serves at a given endpoint until a
    signal. Every incoming cmd that names an exported function becomes a
    task running that function; its return value, raised error or cancel
    ack goes back on the same channel with the caller's cid.
    =========================================================================
*/
#include "troupe_private.h"
#include <czmq.h>
#include <libgen.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

//  A task serving one cmd.
struct tri_serve {
    tri_channel_t *channel;
    uint64_t cid;
    const tr_export_t *export;
    tri_msg_t *msg;                 //  the cmd; args point into it
    const msgpack_object *args;
    tr_ctx_t ctx;
    tr_reply_t reply;
    int rc;                         //  for TR_THREAD functions
    bool cancel_asked;              //  the caller sent cancel
    tri_serve_t *next, *prev;       //  in channel->serves
};

//  A task spawned by tr_task_spawn.
struct tr_task {
    tri_task_t *task;
    tr_ctx_t ctx;
    int (*fn) (tr_ctx_t *ctx, void *arg);
    void *arg;
    int result;
    tr_task_t *next, *prev;         //  every user task of the actor
};

//  Process-wide state of this module (runtime thread only).
static struct {
    const tr_export_t *exports;
    tr_task_t *tasks;               //  spawned by tr_task_spawn, not joined
    int (*root_main) (tr_actor_t *self, void *arg);
    void *root_arg;
    tr_ctx_t root_ctx;
    int root_rc;
    bool root_done;
} s_actor;

//  --------------------------------------------------------------------------
//  Contexts

static void
s_ctx_init (tr_ctx_t *ctx, tri_task_t *task)
{
    memset (ctx, 0, sizeof *ctx);
    ctx->task = task;
    ctx->actor = &tri_rt->actor;
    tri_task_set_data (task, ctx);
}

static void
s_ctx_clear (tr_ctx_t *ctx)
{
    tr_error_destroy (&ctx->raised);
    tr_error_destroy (&ctx->remote);
}

//  The context of the running task, if ctx is it.
static bool
s_ctx_current (tr_ctx_t *ctx)
{
    return ctx && tri_rt && ctx->task && tri_task_current () == ctx->task;
}

tr_ctx_t *
tr_actor_ctx (tr_actor_t *self)
{
    if (!self || !tri_rt)
        return NULL;
    tri_task_t *task = tri_task_current ();
    return task? tri_task_data (task): NULL;
}

tr_actor_t *
tr_ctx_actor (tr_ctx_t *ctx)
{
    return ctx? ctx->actor: NULL;
}

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
//  Checkpoints

int
tr_checkpoint (tr_ctx_t *ctx)
{
    if (!ctx || !ctx->task)
        return TR_EINVAL;
    return tri_task_cancelled (ctx->task)? TR_ECANCELED: 0;
}

bool
tr_ctx_cancelled (tr_ctx_t *ctx)
{
    return ctx && ctx->task && tri_task_cancelled (ctx->task);
}

int
tr_sleep (tr_ctx_t *ctx, int ms)
{
    if (!s_ctx_current (ctx) || ms < 0)
        return TR_EINVAL;
    int64_t deadline = tri_deadline (ms);
    while (true) {
        int rc = tri_task_park (deadline);
        if (rc == TR_ETIMEDOUT)
            return 0;
        if (rc == TR_ECANCELED)
            return rc;
        if (tri_now_ms () >= deadline)
            return 0;
    }
}

int
tr_to_thread (tr_ctx_t *ctx, void *(*fn) (void *), void *arg, void **ret)
{
    if (!s_ctx_current (ctx) || !fn)
        return TR_EINVAL;
    return tri_task_to_thread (fn, arg, ret, false);
}

int
tr_raise (tr_ctx_t *ctx, const char *type, const char *fmt, ...)
{
    if (!ctx || !type || !fmt)
        return TR_EINVAL;
    va_list ap;
    va_start (ap, fmt);
    tr_error_t *err = tri_error_newv (TR_EREMOTE, type, ctx->actor->uid, fmt, ap);
    va_end (ap);
    if (!err)
        return TR_ENOMEM;
    tri_error_capture_frames (err, 1);
    tr_error_destroy (&ctx->raised);
    ctx->raised = err;
    return TR_EREMOTE;
}

//  --------------------------------------------------------------------------
//  User tasks

static void
s_task_main (void *arg)
{
    tr_task_t *self = arg;
    self->result = self->fn (&self->ctx, self->arg);
}

int
tr_task_spawn (tr_actor_t *actor, int (*fn) (tr_ctx_t *ctx, void *arg),
               void *arg, tr_task_t **task_p)
{
    if (!actor || !fn || !task_p || !tri_rt)
        return TR_EINVAL;
    tr_task_t *self = calloc (1, sizeof *self);
    if (!self)
        return TR_ENOMEM;
    self->fn = fn;
    self->arg = arg;
    self->task = tri_task_new (s_task_main, self, 0, true);
    if (!self->task) {
        free (self);
        return TR_ENOMEM;
    }
    s_ctx_init (&self->ctx, self->task);
    if (tri_rt->stopping)
        tri_task_cancel (self->task);
    self->next = s_actor.tasks;
    if (self->next)
        self->next->prev = self;
    s_actor.tasks = self;
    *task_p = self;
    return 0;
}

int
tr_task_cancel (tr_task_t *self)
{
    if (!self)
        return TR_EINVAL;
    tri_task_cancel (self->task);
    return 0;
}

static void
s_task_free (tr_task_t *self)
{
    if (self->prev)
        self->prev->next = self->next;
    else
        s_actor.tasks = self->next;
    if (self->next)
        self->next->prev = self->prev;
    s_ctx_clear (&self->ctx);
    tri_task_destroy (&self->task);
    free (self);
}

int
tr_task_join (tr_task_t **task_p, int *result)
{
    if (!task_p || !*task_p || !tri_task_current ())
        return TR_EINVAL;
    tr_task_t *self = *task_p;
    if (self->task == tri_task_current ())
        return TR_EINVAL;
    if (!tri_task_done (self->task)) {
        int rc = tri_task_join (self->task, -1);
        if (rc)
            return rc;
    }
    if (result)
        *result = self->result;
    s_task_free (self);
    *task_p = NULL;
    return 0;
}

//  --------------------------------------------------------------------------
//  Serving cmds

static const tr_export_t *
s_find_export (const char *name)
{
    for (const tr_export_t *e = s_actor.exports; e && e->name; e++)
        if (streq (e->name, name))
            return e;
    return NULL;
}

static void
s_serve_unlink (tri_serve_t *self)
{
    tri_channel_t *channel = self->channel;
    if (self->prev)
        self->prev->next = self->next;
    else
        channel->serves = self->next;
    if (self->next)
        self->next->prev = self->prev;
}

static void *
s_serve_in_thread (void *arg)
{
    tri_serve_t *self = arg;
    self->rc = self->export->fn (&self->ctx, self->args, &self->reply);
    return NULL;
}

//  The error to send for a function that returned rc < 0.
static tr_error_t *
s_serve_error (tri_serve_t *self, int rc)
{
    tr_ctx_t *ctx = &self->ctx;
    const char *uid = tri_rt->actor.uid;
    tr_error_t *err = NULL;
    if (ctx->raised) {
        err = ctx->raised;
        ctx->raised = NULL;
        err->code = rc == TR_EREMOTE? TR_EREMOTE: rc;
    }
    else
    if (ctx->remote && ctx->remote->code == rc) {
        //  A failure of a call this function made, passed on: the error
        //  keeps its origin and gains this actor as a hop (rule 5).
        err = ctx->remote;
        ctx->remote = NULL;
        tri_error_add_hop (err, uid);
    }
    else
        err = tri_error_new (rc, tr_errname (rc), uid, "%s returned %s: %s",
                             self->export->name, tr_errname (rc), tr_strerror (rc));
    return err;
}

static void
s_serve_main (void *arg)
{
    tri_serve_t *self = arg;
    tri_channel_t *channel = self->channel;
    int rc;
    if (self->export->flags & TR_THREAD) {
        //  Shielded: the thread uses our args and reply until it ends; it
        //  sees the cancel through tr_checkpoint.
        rc = tri_task_to_thread (s_serve_in_thread, self, NULL, true);
        if (rc == 0)
            rc = self->rc;
    }
    else
        rc = self->export->fn (&self->ctx, self->args, &self->reply);

    if (!channel->closed) {
        tri_rt_t *rt = tri_rt;
        if (rc == TR_ECANCELED && (self->cancel_asked || rt->stopping))
            tri_channel_send_empty (channel, TRI_ACK, self->cid);
        else
        if (rc == 0) {
            tri_msg_begin (&rt->pk, TRI_RETURN, self->cid);
            if (self->reply.value && self->reply.value->sbuf.size)
                msgpack_sbuffer_write (&rt->sbuf, self->reply.value->sbuf.data,
                                       self->reply.value->sbuf.size);
            else
                msgpack_pack_nil (&rt->pk);
            char why [256];
            int bad = tri_msg_check (rt->sbuf.data, rt->sbuf.size, &rt->limits, why, sizeof why);
            if (bad) {
                msgpack_sbuffer_clear (&rt->sbuf);
                tri_channel_reply_error (channel, self->cid, bad,
                                         bad == TR_ETOOBIG? "TooBig": "ProtocolError",
                                         "result of %s: %s", self->export->name, why);
            }
            else
                tri_channel_send (channel);
        }
        else {
            tr_error_t *err = s_serve_error (self, rc);
            if (err)
                tri_channel_send_error (channel, self->cid, err);
            tr_error_destroy (&err);
        }
    }
    s_serve_unlink (self);
    s_ctx_clear (&self->ctx);
    tr_args_destroy (&self->reply.value);
    tri_msg_destroy (&self->msg);
    tri_channel_unref (&self->channel);
    free (self);
}

void
tri_serve_cmd (tri_channel_t *channel, tri_msg_t *msg)
{
    tri_rt_t *rt = tri_rt;
    const char *fn;
    const msgpack_object *args;
    char why [256];
    if (tri_msg_read_cmd (msg, &fn, &args, why, sizeof why)) {
        tri_channel_reply_error (channel, msg->cid, TR_EPROTO, "ProtocolError", "%s", why);
        goto done;
    }
    if (msg->cid == 0) {
        tri_channel_reply_error (channel, 0, TR_EPROTO, "ProtocolError",
                                 "cmd %s with cid 0: cids start at 1", fn);
        goto done;
    }
    const tr_export_t *export = s_find_export (fn);
    if (!export) {
        tri_channel_reply_error (channel, msg->cid, TR_ENOTEXPOSED, "NotExposed",
                                 "function '%s' is not exported by actor %s", fn, rt->actor.uid);
        goto done;
    }
    if (export->kind != TR_CALL) {
        tri_channel_reply_error (channel, msg->cid, TR_EPROTO, "ProtocolError",
                                 "function '%s' of actor %s is not a plain call", fn, rt->actor.uid);
        goto done;
    }
    for (tri_serve_t *s = channel->serves; s; s = s->next)
        if (s->cid == msg->cid) {
            tri_channel_reply_error (channel, msg->cid, TR_EPROTO, "ProtocolError",
                                     "cid %llu is already in use by a call to %s",
                                     (unsigned long long) msg->cid, s->export->name);
            goto done;
        }
    if (rt->stopping) {
        tri_channel_reply_error (channel, msg->cid, TR_ECANCELED, "Cancelled",
                                 "actor %s is shutting down", rt->actor.uid);
        goto done;
    }
    tri_serve_t *self = calloc (1, sizeof *self);
    if (!self)
        goto nomem;
    self->export = export;
    self->cid = msg->cid;
    self->args = args;
    tri_task_t *task = tri_task_new (s_serve_main, self, export->stack_size, false);
    if (!task) {
        free (self);
        goto nomem;
    }
    self->msg = msg;
    self->channel = channel;
    tri_channel_ref (channel);
    s_ctx_init (&self->ctx, task);
    self->next = channel->serves;
    if (self->next)
        self->next->prev = self;
    channel->serves = self;
    return;
nomem:
    tri_channel_reply_error (channel, msg->cid, TR_ENOMEM, "NoMemory",
                             "actor %s is out of memory", rt->actor.uid);
done:
    tri_msg_destroy (&msg);
}

void
tri_serve_cancel (tri_channel_t *channel, uint64_t cid)
{
    for (tri_serve_t *s = channel->serves; s; s = s->next)
        if (s->cid == cid) {
            s->cancel_asked = true;
            tri_task_cancel (s->ctx.task);
            return;
        }
    //  Already answered (or never started): acknowledge all the same, so a
    //  caller waiting for the ack does not wait in vain.
    tri_channel_send_empty (channel, TRI_ACK, cid);
}

void
tri_serve_channel_closed (tri_channel_t *channel)
{
    for (tri_serve_t *s = channel->serves; s; s = s->next)
        tri_task_cancel (s->ctx.task);
}

void
tri_actor_cancel_all (void)
{
    tri_rt_t *rt = tri_rt;
    if (rt->root_task && !s_actor.root_done)
        tri_task_cancel (rt->root_task);
    for (tr_task_t *t = s_actor.tasks; t; t = t->next)
        tri_task_cancel (t->task);
    if (rt->parent)
        tri_serve_channel_closed (rt->parent);
    void *item;
    for (item = zhashx_first (rt->channels); item; item = zhashx_next (rt->channels))
        tri_serve_channel_closed (item);
}

//  --------------------------------------------------------------------------
//  Roles and the entry point

static void
s_root_main (void *arg)
{
    (void) arg;
    s_actor.root_rc = s_actor.root_main (&tri_rt->actor, s_actor.root_arg);
    s_actor.root_done = true;
    //  Structured concurrency: nothing outlives the root's main function.
    tri_rt->stopping = true;
    tri_actor_cancel_all ();
}

static bool
s_all_done (void)
{
    return tri_rt->stopping && (!tri_rt->root_task || s_actor.root_done)
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
            tri_rt_loop (s_all_done);
    }
    while (s_actor.tasks)
        s_task_free (s_actor.tasks);
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

static char *
s_new_uid (const char *name)
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

static int
s_exit_code (int rc)
{
    tri_rt_t *rt = tri_rt;
    if (rt->signals && rc == 0)
        return 128 + rt->last_signal;
    return rc;
}

int
tr_run (const tr_config_t *config, int argc, char **argv,
        int (*root_main) (tr_actor_t *self, void *arg), void *arg)
{
    if (tri_rt || argc < 0 || (argc > 0 && !argv))
        return TR_EINVAL;
    memset (&s_actor, 0, sizeof s_actor);
    s_actor.exports = config? config->exports: NULL;

    const char *parent = getenv (TRI_ENV_PARENT);
    bool child = parent && *parent;
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
        uid = s_new_uid (name);
        if (daemon)
            bind = s_arg_value (argc, argv, "--tr-bind");
    }
    if (!uid)
        return TR_ENOMEM;
    //  What the children inherit must not name our parent.
    unsetenv (TRI_ENV_PARENT);
    unsetenv (TRI_ENV_UID);
    unsetenv (TRI_ENV_BIND);

    int rc = tri_rt_start (config, name, uid, bind);
    free (uid);
    if (rc)
        return rc;
    tri_rt_t *rt = tri_rt;
    int exit_code = 0;
    if (child) {
        const char *ppid = getenv (TRI_ENV_PARENT_PID);
        unsetenv (TRI_ENV_PARENT_PID);
        if ((rc = tri_rt_connect_parent (parent, ppid? atoi (ppid): 0))) {
            tri_rt_stop ();
            return 1;
        }
        tri_rt_loop (s_all_done);
        s_finish ();
        //  Cancelled by the parent: 0. Parent gone or signalled: non-zero.
        exit_code = rt->cancel_from? 0: (rt->signals? 128 + rt->last_signal: 1);
        tri_rt_ack_cancel ();
    }
    else
    if (daemon) {
        tri_log_info ("TR-DAEMON", "%s serving at %s", rt->actor.uid, rt->actor.endpoint);
        fprintf (stdout, "%s %s\n", rt->actor.uid, rt->actor.endpoint);
        fflush (stdout);
        tri_rt_loop (s_all_done);
        s_finish ();
        tri_rt_ack_cancel ();
        exit_code = s_exit_code (0);
    }
    else {
        s_actor.root_main = root_main;
        s_actor.root_arg = arg;
        rt->root_task = tri_task_new (s_root_main, NULL, 0, true);
        if (!rt->root_task) {
            tri_rt_stop ();
            return TR_ENOMEM;
        }
        s_ctx_init (&s_actor.root_ctx, rt->root_task);
        tri_rt_loop (s_all_done);
        s_finish ();
        tri_rt_ack_cancel ();
        exit_code = s_exit_code (s_actor.root_rc);
        s_ctx_clear (&s_actor.root_ctx);
        tri_task_destroy (&rt->root_task);
    }
    tri_rt_stop ();
    return exit_code;
}
