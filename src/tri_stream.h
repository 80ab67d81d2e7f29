/*  =========================================================================
    tri_stream.h - one side of a context's stream (stream.c)

    Each side of a context holds one stream record, embedded in its own
    record of the context: the values received and not read yet (never
    more than the window it granted), the credit it may still spend
    sending, and whether either side closed it or the context ended. The
    owner routes the stream's frames here (yield, stop, credit) and says
    when the context ends; the stream sends its own frames on the owner's
    channel under the owner's cid.

    On the wire a stream frame's body is [side, value]: the side that sent
    it (TRI_SIDE_CALLER, the one that opened the context, or
    TRI_SIDE_CALLEE), which tells the receiver whether the cid is a call it
    made or one it serves. A yield may carry several values, [side, value,
    value, ...]: those a task sent in a burst.

    The caller's side of a one-way stream (tr_portal_open_stream_from) is
    the stream of a context it owns and the user never sees: it only
    receives, and its close is that context's close, which the context
    layer does (tri_stream_on_close_owner).
    =========================================================================
*/
#ifndef TRI_STREAM_H_INCLUDED
#define TRI_STREAM_H_INCLUDED

#define TRI_SIDE_CALLER 0
#define TRI_SIDE_CALLEE 1

struct tr_stream {
    tri_channel_t *channel;     //  the owner's, borrowed
    uint64_t cid;
    int side;                   //  ours
    const void *source;         //  failures are recorded against it
    //  receiving: yield frames (each of one or more values) in a ring
    tri_msg_t **ring;           //  frames received, not read yet
    uint32_t head;
    uint32_t queued;            //  frames in the ring
    uint32_t count;             //  values not read yet, current's included
    uint32_t window;            //  the ring's size
    uint32_t peer_credit;       //  values the peer may still send
    tri_msg_t *current;         //  the frame the last recv read from
    uint32_t current_at;        //  its next value
    tri_waitq_t readers;
    //  sending
    uint32_t credit;            //  values we may still send
    tri_waitq_t writers;
    //  state
    bool live;                  //  started: frames flow
    bool opened;                //  the user holds it
    bool one_way;               //  the caller's side of a one-way stream:
                                //  receives only, owns its context
    bool closed;                //  we closed it (stop sent)
    bool peer_stopped;          //  the peer's stop came
    bool ended;                 //  the context ended
    int end_rc;                 //  then: what recv returns once drained
    tr_error_t *end_error;      //  and why (NULL for TR_ECLOSED)
    //  tasks inside a call on the stream or its context, which must
    //  have left before either is freed
    int users;
    tri_waitq_t idle;           //  woken when users drops to 0
};

//  A stream that is not live yet, for cid on channel; side is ours.
void
    tri_stream_init (tr_stream_t *self, tri_channel_t *channel, uint64_t cid, int side,
                     const void *source);
//  Free what it holds.
void
    tri_stream_fini (tr_stream_t *self);
//  The context started: frames may flow.
void
    tri_stream_start (tr_stream_t *self);
//  The user asks for the stream: returns 0, or TR_ECLOSED if it was
//  closed on our side.
int
    tri_stream_open (tr_stream_t *self);
//  A yield, stop or credit frame of this stream (taken). Returns 0, or
//  TR_EPROTO with why when the frame breaks the protocol (the owner
//  answers it).
int
    tri_stream_on_frame (tr_stream_t *self, tri_msg_t *msg, char *why, size_t why_size);
//  The context ended: rc is what receives return once every value is
//  read (TR_ECLOSED for a return), err (copied; may be NULL) why.
void
    tri_stream_end (tr_stream_t *self, int rc, const tr_error_t *err);
//  A task enters or leaves a call that may park on the stream or its
//  context (leave returns rc).
void
    tri_stream_enter (tr_stream_t *self);
int
    tri_stream_leave (tr_stream_t *self, int rc);
//  Wait, shielded, until no task is inside a call on the stream: the
//  owner calls it once the stream has ended, before freeing it.
void
    tri_stream_quiesce (tr_stream_t *self);
//  Close our side if the user has not: send stop (unless the context
//  ended) and drop what is unread.
void
    tri_stream_shut (tr_stream_t *self);
//  tr_stream_close of a one-way stream calls fn, which closes and frees
//  the context that owns it (registered by the context layer).
void
    tri_stream_on_close_owner (void (*fn) (tr_stream_t *self));

#endif
