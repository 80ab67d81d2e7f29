/*  =========================================================================
    tri_ctx.h - task contexts (ctx.c)

    A tr_ctx_t is one running task as the user sees it: its cancellation,
    the error it raised, and the detail of the last failure of a blocking
    call it made (per task, like nng_aio_result, so that two tasks calling
    through one portal never read each other's errors). The body is here
    so that the serving and actor modules can embed a context in their
    own records; its fields are ctx.c's.
    =========================================================================
*/
#ifndef TRI_CTX_H_INCLUDED
#define TRI_CTX_H_INCLUDED

struct tr_ctx {
    tri_task_t *task;
    tr_error_t *raised;         //  from tr_raise
    tr_error_t *error;          //  last failure of a blocking call
    const void *error_source;   //  the portal or nursery it failed on
    void *served;               //  the call this task serves (serve.c's)
    tri_list_t held;            //  what it opened and must close (contexts)
};

//  Bind ctx to task (its tri_task_data).
void
    tri_ctx_init (tr_ctx_t *ctx, tri_task_t *task);
void
    tri_ctx_clear (tr_ctx_t *ctx);
//  The task's function has returned: what it left open is closed, in the
//  task still (it may park). The layer that lets a task hold such things
//  registers fn.
void
    tri_ctx_end (tr_ctx_t *ctx);
//  The things the task holds, to close when its function returns: the
//  layer that makes them links their nodes here and unlinks them when
//  they are closed.
tri_list_t *
    tri_ctx_held (tr_ctx_t *ctx);
void
    tri_ctx_on_end (void (*fn) (tr_ctx_t *ctx));
//  fn runs at every tr_checkpoint on the loop's thread: what a running
//  task holds back to send in a burst leaves then (registered by the
//  channel layer).
void
    tri_ctx_on_checkpoint (void (*fn) (void));
//  The running task's context, or NULL on the loop.
tr_ctx_t *
    tri_ctx_current (void);
//  Record err (taken) as the running task's last failure, made on source
//  (a portal or nursery, or NULL). Returns err's code (TR_ENOMEM if NULL).
int
    tri_ctx_fail (const void *source, tr_error_t *err);
//  The running task's last failure, if it was made on source.
const tr_error_t *
    tri_ctx_error_of (const void *source);
//  The error to send back for a served function that returned rc < 0:
//  what it raised, or the failure of a call it made passed on with this
//  actor added as a hop (rule 5), or a new error naming rc. Taken from
//  ctx; NULL on ENOMEM.
tr_error_t *
    tri_ctx_reply_error (tr_ctx_t *ctx, int rc, const char *fn);

//  User tasks (tr_task_spawn): cancel every one, and every one spawned
//  from now on; free those never joined.
void
    tri_tasks_stop (void);
void
    tri_tasks_free (void);

#endif
