/*  =========================================================================
    ctx.c - task contexts: checkpoints, sleeping, threads, raising, and
    the tasks a user spawns

    Every task the user's code runs in (the root's main function, a served
    call, a spawned task) has a tr_ctx_t. It carries the error the task
    raised, for the reply, and the detail of the last failure of a
    blocking call the task made: per task, so many tasks may share one
    portal and each reads its own failure.
    =========================================================================
*/
#include "troupe_private.h"

//  A task spawned by tr_task_spawn.
struct tr_task {
    tri_task_t *task;
    tr_ctx_t ctx;
    int (*fn) (tr_ctx_t *ctx, void *arg);
    void *arg;
    int result;
    tri_node_t node;                //  in s_tasks until joined
};

static tri_list_t s_tasks = { &s_tasks, &s_tasks };
static bool s_stopping = false;

//  --------------------------------------------------------------------------
//  Contexts

void
tri_ctx_init (tr_ctx_t *ctx, tri_task_t *task)
{
    memset (ctx, 0, sizeof *ctx);
    ctx->task = task;
    tri_list_init (&ctx->held);
    tri_task_set_data (task, ctx);
}

tri_list_t *
tri_ctx_held (tr_ctx_t *ctx)
{
    return &ctx->held;
}

static void (*s_on_end) (tr_ctx_t *ctx) = NULL;
static void (*s_on_checkpoint) (void) = NULL;

void
tri_ctx_on_checkpoint (void (*fn) (void))
{
    s_on_checkpoint = fn;
}

void
tri_ctx_on_end (void (*fn) (tr_ctx_t *ctx))
{
    s_on_end = fn;
}

void
tri_ctx_end (tr_ctx_t *ctx)
{
    if (s_on_end)
        s_on_end (ctx);
}

void
tri_ctx_clear (tr_ctx_t *ctx)
{
    //  Closed at the function's end; whatever is left is no longer held.
    tri_node_t *node;
    while (ctx->held.next && (node = tri_list_first (&ctx->held)))
        tri_node_unlink (node);
    tr_error_destroy (&ctx->raised);
    tr_error_destroy (&ctx->error);
    ctx->error_source = NULL;
}

tr_ctx_t *
tri_ctx_current (void)
{
    tri_task_t *task = tri_task_current ();
    return task? tri_task_data (task): NULL;
}

int
tri_ctx_fail (const void *source, tr_error_t *err)
{
    int rc = err? tr_error_code (err): TR_ENOMEM;
    tr_ctx_t *ctx = tri_ctx_current ();
    if (!ctx) {
        tr_error_destroy (&err);
        return rc;
    }
    tr_error_destroy (&ctx->error);
    ctx->error = err;
    ctx->error_source = source;
    return rc;
}

const tr_error_t *
tri_ctx_error_of (const void *source)
{
    tr_ctx_t *ctx = tri_ctx_current ();
    return ctx && ctx->error_source == source? ctx->error: NULL;
}

tr_error_t *
tri_ctx_reply_error (tr_ctx_t *ctx, int rc, const char *fn)
{
    const char *uid = tri_uid ();
    tr_error_t *err = NULL;
    if (ctx->raised) {
        err = ctx->raised;
        ctx->raised = NULL;
        tri_error_set_code (err, rc == TR_EREMOTE? TR_EREMOTE: rc);
    }
    else
    if (ctx->error && tr_error_code (ctx->error) == rc) {
        //  A failure of a call this function made, passed on: the error
        //  keeps its origin and gains this actor as a hop (rule 5).
        err = ctx->error;
        ctx->error = NULL;
        tri_error_add_hop (err, uid);
    }
    else
        err = tri_error_new (rc, tr_errname (rc), uid, "%s returned %s: %s",
                             fn, tr_errname (rc), tr_strerror (rc));
    return err;
}

//  The context of the running task, if ctx is it.
static bool
s_is_current (tr_ctx_t *ctx)
{
    return ctx && ctx->task && tri_task_current () == ctx->task;
}

tr_ctx_t *
tr_actor_ctx (tr_actor_t *self)
{
    if (!self || !tri_rt_running ())
        return NULL;
    return tri_ctx_current ();
}

tr_actor_t *
tr_ctx_actor (tr_ctx_t *ctx)
{
    return ctx && tri_rt_running ()? tri_actor (): NULL;
}

const tr_error_t *
tr_ctx_error (tr_ctx_t *ctx)
{
    return ctx? ctx->error: NULL;
}

//  --------------------------------------------------------------------------
//  Checkpoints, sleeping, threads

int
tr_checkpoint (tr_ctx_t *ctx)
{
    if (!ctx || !ctx->task)
        return TR_EINVAL;
    if (s_on_checkpoint && tri_rt_this_thread ())
        s_on_checkpoint ();
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
    if (!s_is_current (ctx) || ms < 0)
        return TR_EINVAL;
    int64_t deadline = tri_deadline (ms);
    while (true) {
        int rc = tri_task_park (deadline);
        if (rc == TR_ETIMEDOUT)
            return 0;
        if (rc == TR_ECANCELED)
            return rc;
        if (tri_now_us () >= deadline)
            return 0;
    }
}

int
tr_to_thread (tr_ctx_t *ctx, void *(*fn) (void *), void *arg, void **ret)
{
    if (!s_is_current (ctx) || !fn)
        return TR_EINVAL;
    return tri_task_to_thread (fn, arg, ret, false);
}

int
tr_raise (tr_ctx_t *ctx, const char *type, const char *fmt, ...)
{
    if (!ctx || !type || !fmt || !tri_rt_running ())
        return TR_EINVAL;
    va_list ap;
    va_start (ap, fmt);
    tr_error_t *err = tri_error_newv (TR_EREMOTE, type, tri_uid (), fmt, ap);
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
    tri_ctx_end (&self->ctx);
}

int
tr_task_spawn (tr_actor_t *actor, int (*fn) (tr_ctx_t *ctx, void *arg),
               void *arg, tr_task_t **task_p)
{
    if (!actor || !fn || !task_p || !tri_rt_running ())
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
    tri_ctx_init (&self->ctx, self->task);
    //  Nothing outlives a stopping actor.
    if (s_stopping)
        tri_task_cancel (self->task);
    tri_list_push_back (&s_tasks, &self->node);
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
    tri_node_unlink (&self->node);
    tri_ctx_clear (&self->ctx);
    tri_task_destroy (&self->task);
    free (self);
}

//  Wait for the task (shielded: whether or not the caller is cancelled)
//  until the deadline; once it ended, hand out its result and free it.
static int
s_task_join (tr_task_t **task_p, int64_t deadline, bool shielded, int *result)
{
    if (!task_p || !*task_p || !tri_task_current ())
        return TR_EINVAL;
    tr_task_t *self = *task_p;
    if (self->task == tri_task_current ())
        return TR_EINVAL;
    if (!tri_task_done (self->task)) {
        //  0 ms does not wait: not even one park.
        if (deadline >= 0 && deadline <= tri_now_us ())
            return TR_ETIMEDOUT;
        int rc = shielded? tri_task_join_shielded (self->task, deadline)
                         : tri_task_join (self->task, deadline);
        if (rc)
            return rc;
    }
    if (result)
        *result = self->result;
    s_task_free (self);
    *task_p = NULL;
    return 0;
}

int
tr_task_join (tr_task_t **task_p, int *result)
{
    return s_task_join (task_p, -1, false, result);
}

int
tr_task_join_shielded (tr_task_t **task_p, int timeout_ms, int *result)
{
    if (timeout_ms < -1)
        return TR_EINVAL;
    return s_task_join (task_p, tri_deadline (timeout_ms), true, result);
}

void
tri_tasks_stop (void)
{
    s_stopping = true;
    tri_list_each (node, next, &s_tasks)
        tri_task_cancel (tri_list_entry (node, tr_task_t, node)->task);
}

void
tri_tasks_free (void)
{
    tri_node_t *node;
    while ((node = tri_list_first (&s_tasks)))
        s_task_free (tri_list_entry (node, tr_task_t, node));
    s_stopping = false;
}
