/*  =========================================================================
    tri_call.h - the caller's side of a call (call.c)

    A call is an endpoint (TRI_DIR_OUT, a fresh cid) on a channel, with
    its final message once it came and a wait queue of the tasks waiting
    for its end. Any number of tasks may wait on one call.
    =========================================================================
*/
#ifndef TRI_CALL_H_INCLUDED
#define TRI_CALL_H_INCLUDED

typedef struct tri_call tri_call_t;

//  Send fn(args) on channel. On failure nothing is left pending and
//  *error (if not NULL) says why. Returns 0, TR_ECLOSED, TR_ETOOBIG,
//  TR_EPROTO or TR_ENOMEM.
int
    tri_call_start (tri_channel_t *channel, const char *fn, const tr_args_t *args,
                    tri_call_t **call, tr_error_t **error);
//  Send the cmd that starts fn(args) under cid, as a plain call, a
//  context or a one-way stream (kind TR_CALL, TR_CONTEXT, TR_STREAM). On
//  failure *error (if not NULL) says why. Returns 0, TR_ECLOSED,
//  TR_ETOOBIG, TR_EPROTO or TR_ENOMEM.
int
    tri_call_send_cmd (tri_channel_t *channel, uint64_t cid, const char *fn,
                       const tr_args_t *args, tr_kind_t kind, tr_error_t **error);
//  Park until the call has ended. Returns 0, TR_ECANCELED or TR_ETIMEDOUT.
int
    tri_call_wait (tri_call_t *self, int64_t deadline);
//  Same, but cancellation of the waiting task neither prevents nor ends
//  the wait (a last word sent while the actor stops). Returns 0 or
//  TR_ETIMEDOUT.
int
    tri_call_wait_shielded (tri_call_t *self, int64_t deadline);
//  Cancel the remote task and wait, shielded, up to the cancel-ack
//  period for its ack (or any end of the call).
void
    tri_call_cancel (tri_call_t *self);
//  Called on the loop when the call ends (instead of, or besides, tasks
//  waiting).
void
    tri_call_on_done (tri_call_t *self, void (*fn) (tri_call_t *call, void *arg), void *arg);
//  Outcome of an ended call: 0 (the value in *out if out is not NULL),
//  or an error code with the error in *error (caller destroys).
int
    tri_call_outcome (tri_call_t *self, tr_value_t **out, tr_error_t **error);
void
    tri_call_destroy (tri_call_t **self_p);
//  Free the records kept for reuse (runtime shutdown).
void
    tri_call_spares_free (void);

#endif
