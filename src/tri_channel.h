/*  =========================================================================
    tri_channel.h - one peer and the conversations on it (channel.c)

    A channel is one peer: a peer that connected to our ROUTER, or a
    DEALER of ours (to our parent, or a portal opened on an endpoint); the
    socket layer (peer.c) makes them. Every conversation on a channel is
    an endpoint: a call id in one direction, with a table of operations.
    Frames are routed to endpoints by (call id, direction) in constant
    time; a new kind of conversation (a stream, a context) is a new table
    of operations, not an edit of dispatch. Frames no endpoint claims go
    to the hooks the upper layers registered: a cmd that opens a call to
    the serving layer, an actor cancel to the actor.

    Directions: TRI_DIR_IN is a call the peer made to us (its cmd and
    cancel come in, our return, error and ack go out); TRI_DIR_OUT is a
    call we made (the reverse). The cid-0 actor cancel is TRI_DIR_OUT
    cid 0 on the side that asked.
    =========================================================================
*/
#ifndef TRI_CHANNEL_H_INCLUDED
#define TRI_CHANNEL_H_INCLUDED

typedef struct tri_channel tri_channel_t;
typedef struct tri_budget tri_budget_t;
typedef struct tri_endpoint tri_endpoint_t;

typedef enum {
    TRI_DIR_IN = 0,
    TRI_DIR_OUT = 1
} tri_dir_t;

typedef struct {
    //  A frame for this endpoint (taken).
    void (*on_message) (tri_endpoint_t *self, tri_msg_t *msg);
    //  No frame will come: the peer is gone (after the drain period for
    //  TRI_DIR_OUT endpoints, at once for TRI_DIR_IN), or the frame meant
    //  for it could not be read. The endpoint is unbound already.
    void (*on_failed) (tri_endpoint_t *self, const tr_error_t *why);
} tri_endpoint_ops_t;

//  Embedded in the record of each conversation; fields are channel.c's.
struct tri_endpoint {
    uint64_t cid;
    tri_dir_t dir;
    tri_channel_t *channel;     //  while bound (holds a reference)
    const tri_endpoint_ops_t *ops;
    tri_node_t node;            //  in the channel's endpoints
};

//  --------------------------------------------------------------------------
//  Channels

//  A channel sending on socket (to rid on a ROUTER, rid_size 0 for a
//  DEALER); watch is the socket's watcher, touched on every send.
//  One reference, the caller's.
tri_channel_t *
    tri_channel_new (void *socket, tri_watch_t *watch, const uint8_t *rid, size_t rid_size);
void
    tri_channel_ref (tri_channel_t *self);
void
    tri_channel_unref (tri_channel_t **self_p);
//  Who the peer is, from its hello. Returns 0 or TR_ENOMEM.
int
    tri_channel_set_peer (tri_channel_t *self, const char *uid, const char *endpoint, int pid);
const char *
    tri_channel_uid (const tri_channel_t *self);
const char *
    tri_channel_endpoint (const tri_channel_t *self);
int
    tri_channel_pid (const tri_channel_t *self);
//  The routing id as hex (the socket layer's key).
const char *
    tri_channel_key (const tri_channel_t *self);
bool
    tri_channel_closed (const tri_channel_t *self);
//  The peer acknowledged that it cancels itself: its going is no news.
void
    tri_channel_expect_end (tri_channel_t *self);
bool
    tri_channel_end_expected (const tri_channel_t *self);
//  True if the channel is the ROUTER peer with that routing id.
bool
    tri_channel_has_rid (const tri_channel_t *self, const uint8_t *rid, size_t rid_size);
//  A routing id as hex into out (2 * size + 1 bytes): the key of a table.
void
    tri_rid_key (char *out, const uint8_t *rid, size_t size);
//  Why it closed, or NULL.
const tr_error_t *
    tri_channel_death (const tri_channel_t *self);
//  Called once when a closed channel has failed its last endpoint (at
//  once, or when its drain period ends): the socket layer forgets it.
void
    tri_channel_on_released (tri_channel_t *self, void (*fn) (tri_channel_t *channel));

//  The protocol minor version of the peer's hello. From 1.1 on it reads
//  several frames per ZeroMQ message: frames sent in a burst then travel
//  together.
void
    tri_channel_set_minor (tri_channel_t *self, int minor);
//  The minor the peer's hello said, 0 before it. From 1.4 on, the
//  peer's routing id is random and its own (doc/protocol.md section 1).
int
    tri_channel_minor (const tri_channel_t *self);
//  Send what the channel holds now.
void
    tri_channel_flush (tri_channel_t *self);
//  Send what every channel holds: the loop calls it once the ready tasks
//  have run.
void
    tri_channel_flush_all (void);

//  The peer is gone. death (taken) says why; closing a draining channel
//  again without drain ends its drain period now. TRI_DIR_IN endpoints fail at
//  once; with drain, TRI_DIR_OUT endpoints stay routable for the drain
//  period (rule 3: answers the peer sent before it went still arrive),
//  else they fail now. A closed channel sends nothing.
void
    tri_channel_close (tri_channel_t *self, tr_error_t *death, bool drain);

//  --------------------------------------------------------------------------
//  Endpoints

//  Bind ep to (cid, dir) on the channel. Returns 0, TR_EPROTO (taken),
//  TR_ECLOSED or TR_ENOMEM.
int
    tri_endpoint_bind (tri_endpoint_t *ep, tri_channel_t *channel, uint64_t cid,
                       tri_dir_t dir, const tri_endpoint_ops_t *ops);
//  Unbind; safe on an endpoint that is not bound.
void
    tri_endpoint_unbind (tri_endpoint_t *ep);
bool
    tri_endpoint_bound (const tri_endpoint_t *ep);
//  Called when a peer has let more than max_queued_bytes pile up, before
//  its channel closes with SendQueueFull: the socket layer ignores the
//  peer's connection from then on.
void
    tri_channel_on_overflow (void (*fn) (tri_channel_t *channel));
//  The peer has not taken what it was sent for too long: it is
//  disconnected as when its budget overflows.
void
    tri_channel_overflow (tri_channel_t *self);
//  Bytes handed to libzmq for the peer and not yet written to the
//  network (with a small cost per message): at most max_queued_bytes.
size_t
    tri_channel_queued (const tri_channel_t *self);
//  How many TRI_DIR_IN endpoints (calls the peer made to us) are bound.
int
    tri_channel_in_count (const tri_channel_t *self);

//  --------------------------------------------------------------------------
//  Routing (the socket layer hands every decoded frame here)

//  Route msg (taken), read from the channel.
void
    tri_channel_dispatch (tri_channel_t *self, tri_msg_t *msg);
//  A frame from the channel could not be decoded: an answer to a call
//  fails that call, a request is answered with an error under its cid,
//  an error is never answered.
void
    tri_channel_bad_frame (tri_channel_t *self, int rc, const char *why, int type, uint64_t cid);

//  Hooks of the upper layers: a cmd with a cid no endpoint holds, and an
//  actor cancel (cid 0). msg is taken.
void
    tri_channel_on_request (void (*fn) (tri_channel_t *channel, tri_msg_t *msg));
void
    tri_channel_on_stop (void (*fn) (tri_channel_t *channel));

//  Log a peer's bad frame: one warning a second at most per peer (and
//  for the peers that never said hello together: channel NULL), the rest
//  at debug, counted, and the count told with the next warning or when
//  the channel closes.
void
    tri_channel_log_bad (tri_channel_t *channel, const char *why);

//  --------------------------------------------------------------------------
//  Sending. Every send takes the frame it sends.

//  Send frame; returns 0, TR_ECLOSED (the peer is gone: the channel
//  closes) or TR_ENOMEM (the frame could not be built).
int
    tri_channel_send (tri_channel_t *self, tri_frame_t *frame);
//  Send one value (its size encoded bytes, copied) of the stream of
//  context cid, sent by side. Values that follow each other within
//  100 us are a burst: to a peer that reads several frames per message
//  they travel in one yield frame (up to 64 values or 8 KiB), held even
//  when no other task is ready, until the task parks (the loop runs),
//  calls tr_checkpoint, pauses or fills the frame. Returns as
//  tri_channel_send.
int
    tri_channel_send_value (tri_channel_t *self, uint64_t cid, int side,
                            const void *value, size_t size);
//  Send the size bytes at start, inside the heap block base, without a
//  copy; base is taken (freed once sent, or now on failure). Returns 0 or
//  TR_ECLOSED.
int
    tri_channel_send_owned (tri_channel_t *self, char *base, char *start, size_t size);
//  Send a whole frame already in a ZeroMQ message (taken).
int
    tri_channel_send_msg (tri_channel_t *self, zmq_msg_t *msg);
//  [type, cid, nil]
int
    tri_channel_send_empty (tri_channel_t *self, tri_type_t type, uint64_t cid);
//  [error, cid, err]
int
    tri_channel_send_error (tri_channel_t *self, uint64_t cid, const tr_error_t *err);
//  An error made here from code, type and message.
int
    tri_channel_reply_error (tri_channel_t *self, uint64_t cid, int code,
                             const char *type, const char *fmt, ...) TR_PRINTF (5, 6);
//  Send our hello.
int
    tri_channel_send_hello (tri_channel_t *self);

//  An error frame straight to a socket, for a peer we hold no channel for
//  (rid_size 0: a DEALER).
int
    tri_socket_reply_error (void *socket, tri_watch_t *watch, const uint8_t *rid,
                            size_t rid_size, uint64_t cid, int code, const char *type,
                            const char *fmt, ...) TR_PRINTF (8, 9);

#endif
