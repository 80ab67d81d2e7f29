/*  =========================================================================
    channel.c - one peer: its conversations, what we send it, where what
    it sends us goes

    A channel is one peer, made by the socket layer (peer.c). Each call on
    it, in either direction, is an endpoint bound to (cid, direction);
    dispatch hands a frame to its endpoint through the endpoint's table of
    operations and to nobody else. A channel whose peer is gone fails the
    calls it served at once, and the calls it made after the drain period
    (rule 3), so answers already on their way still arrive. Bad frames are
    answered with errors and never with silence, errors never with errors.

    Frames that leave together travel together. A frame sent while other
    tasks are ready to run is held, and goes out with those sent after it
    in one ZeroMQ message of several parts (one frame each) when the last
    ready task has run, or when 32 are held: a burst of answers or
    requests then costs libzmq's I/O thread one wake-up and one write
    instead of one per frame. A frame sent when nothing else is ready
    goes out at once, so a lone call waits for nothing. Peers that speak
    protocol 1.0 get one frame per message.

    What a peer has not taken yet is bounded: every message handed to
    libzmq counts against its channel's budget until libzmq frees it, and
    a peer that lets more than max_queued_bytes (and one largest frame)
    pile up is disconnected with SendQueueFull. Bad frames are logged
    once a second at most per peer, with a count of the rest.
    =========================================================================
*/
#include "troupe_private.h"
#include <czmq.h>
#include <stdatomic.h>

#define TRI_HOLD_MAX 32         //  frames per message at most
#define TRI_BATCH_VALUES 64     //  stream values per yield frame at most
#define TRI_BATCH_BYTES 8192    //  and their bytes, unless one is larger
#define TRI_BURST_GAP_US 100    //  values closer than this make a burst

struct tri_channel {
    void *socket;               //  our ROUTER, or a DEALER of ours
    tri_watch_t *watch;         //  the socket's watcher, touched on send
    uint8_t rid [256];          //  peer's routing id on our ROUTER
    size_t rid_size;            //  0 on a DEALER
    char key [513];             //  rid as hex
    char *uid;                  //  peer's uid (from its hello)
    char *endpoint;             //  peer's ROUTER endpoint (from its hello)
    int pid;                    //  peer's pid (from its hello)
    int refs;
    bool closed;                //  peer gone: no more sends
    bool end_expected;          //  the peer acknowledged a cancel of itself
    bool released;              //  closed and every endpoint failed
    tr_error_t *death;          //  why it closed
    tri_idmap_t in, out;        //  endpoints by cid
    uint64_t in_cid_max;        //  the highest cid of a cmd the peer sent
    tri_endpoint_t *cancel;     //  TRI_DIR_OUT cid 0: our actor cancel
    tri_list_t in_list, out_list;
    int in_count;               //  endpoints in in_list
    tri_budget_t *budget;       //  what libzmq holds for the peer
    int64_t bad_logged;         //  the last bad-frame warning, or -1
    unsigned bad_suppressed;    //  bad-frame warnings kept back since
    tri_timer_t drain;          //  fails the out endpoints
    void (*on_released) (tri_channel_t *self);
    bool batching;              //  the peer reads several frames per message
    int minor;                  //  of the peer's hello; 0 before it
    int held;                   //  frames held for the next message
    tri_node_t holding_node;    //  in s_holding while held > 0 or batch
    zmq_msg_t *hold;            //  TRI_HOLD_MAX of them, once batching
    //  the yield frame being filled with a burst's values (batch_open),
    //  in a buffer kept for the next
    char *batch;                //  TRI_BATCH_BYTES
    bool batch_open;
    size_t batch_size;
    size_t batch_count_at;      //  where its array16 count is
    uint64_t batch_cid;
    int batch_side;
    int batch_values;
    int64_t value_sent_us;      //  when the last value was sent
};

//  --------------------------------------------------------------------------
//  What a peer has not taken yet

//  Each message handed to libzmq is counted in its channel's budget until
//  libzmq frees it: once it has been written to the network, or dropped
//  with a connection that ended. libzmq frees messages on its I/O thread,
//  so the count is atomic and the budget outlives the channel while a
//  message of its is queued.
struct tri_budget {
    atomic_size_t queued;       //  bytes, and TRI_MSG_COST per message
    atomic_int refs;            //  the channel's, and one per message
};

//  What keeping one message costs libzmq besides its bytes.
#define TRI_MSG_COST 64
//  Messages up to this size (a frame's local buffer) are copied into
//  libzmq as they are sent and not counted: tracking each would cost the
//  hot path an allocation and a callback on libzmq's thread. The ROUTER's
//  send high-water mark bounds how many of them wait for one peer
//  (TRI_ROUTER_SNDHWM), and a peer over it is one that does not read.
#define TRI_COUNT_MIN 512

typedef struct {
    tri_budget_t *budget;
    size_t cost;
    zmq_msg_t msg;              //  the message as it was made
} tri_sent_t;

static void
s_budget_unref (tri_budget_t *budget)
{
    if (atomic_fetch_sub (&budget->refs, 1) == 1)
        free (budget);
}

static void
s_sent_free (void *data, void *hint)
{
    (void) data;
    tri_sent_t *sent = hint;
    atomic_fetch_sub (&sent->budget->queued, sent->cost);
    s_budget_unref (sent->budget);
    zmq_msg_close (&sent->msg);
    free (sent);
}

//  Channels holding frames, flushed when the ready tasks have run.
static tri_list_t s_holding = { &s_holding, &s_holding };
static int s_flush (tri_channel_t *self);
static int s_held (tri_channel_t *self, bool burst);

static void s_bad_log_end (tri_channel_t *self);

static void (*s_on_request) (tri_channel_t *channel, tri_msg_t *msg) = NULL;
static void (*s_on_overflow) (tri_channel_t *channel) = NULL;
static void (*s_on_stop) (tri_channel_t *channel) = NULL;

//  --------------------------------------------------------------------------
//  Channels

void
tri_rid_key (char *out, const uint8_t *data, size_t size)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out [2 * i] = digits [data [i] >> 4];
        out [2 * i + 1] = digits [data [i] & 15];
    }
    out [size * 2] = 0;
}

tri_channel_t *
tri_channel_new (void *socket, tri_watch_t *watch, const uint8_t *rid, size_t rid_size)
{
    assert (rid_size <= 256);
    tri_channel_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    tri_loop_on_ran (tri_channel_flush_all);
    tri_ctx_on_checkpoint (tri_channel_flush_all);
    self->socket = socket;
    self->watch = watch;
    if (!(self->budget = calloc (1, sizeof *self->budget))) {
        free (self);
        return NULL;
    }
    atomic_init (&self->budget->refs, 1);
    atomic_init (&self->budget->queued, 0);
    self->refs = 1;
    self->bad_logged = -1;
    if (rid_size)
        memcpy (self->rid, rid, rid_size);
    self->rid_size = rid_size;
    tri_rid_key (self->key, rid, rid_size);
    tri_list_init (&self->in_list);
    tri_list_init (&self->out_list);
    tri_node_init (&self->drain.node);
    tri_node_init (&self->holding_node);
    return self;
}

void
tri_channel_ref (tri_channel_t *self)
{
    assert (self);
    self->refs++;
}

void
tri_channel_unref (tri_channel_t **self_p)
{
    assert (self_p);
    tri_channel_t *self = *self_p;
    *self_p = NULL;
    if (!self || --self->refs > 0)
        return;
    assert (tri_list_empty (&self->in_list) && tri_list_empty (&self->out_list) && !self->cancel);
    tri_timer_stop (&self->drain);
    //  Its socket may be closed by now: what it still holds is dropped.
    for (int i = 0; i < self->held; i++)
        zmq_msg_close (&self->hold [i]);
    tri_node_unlink (&self->holding_node);
    free (self->hold);
    free (self->batch);
    s_budget_unref (self->budget);
    tri_idmap_fini (&self->in);
    tri_idmap_fini (&self->out);
    tr_error_destroy (&self->death);
    free (self->uid);
    free (self->endpoint);
    free (self);
}

int
tri_channel_set_peer (tri_channel_t *self, const char *uid, const char *endpoint, int pid)
{
    char *u = strdup (uid);
    char *e = strdup (endpoint? endpoint: "");
    if (!u || !e) {
        free (u);
        free (e);
        return TR_ENOMEM;
    }
    free (self->uid);
    free (self->endpoint);
    self->uid = u;
    self->endpoint = e;
    self->pid = pid;
    return 0;
}

const char *
tri_channel_uid (const tri_channel_t *self)
{
    return self->uid? self->uid: "peer";
}

const char *
tri_channel_endpoint (const tri_channel_t *self)
{
    return self->endpoint? self->endpoint: "";
}

int
tri_channel_pid (const tri_channel_t *self)
{
    return self->pid;
}

const char *
tri_channel_key (const tri_channel_t *self)
{
    return self->key;
}

bool
tri_channel_has_rid (const tri_channel_t *self, const uint8_t *rid, size_t rid_size)
{
    return self->rid_size == rid_size && memcmp (self->rid, rid, rid_size) == 0;
}

void
tri_channel_expect_end (tri_channel_t *self)
{
    self->end_expected = true;
}

bool
tri_channel_end_expected (const tri_channel_t *self)
{
    return self->end_expected;
}

bool
tri_channel_closed (const tri_channel_t *self)
{
    return self->closed;
}

const tr_error_t *
tri_channel_death (const tri_channel_t *self)
{
    return self->death;
}

void
tri_channel_on_released (tri_channel_t *self, void (*fn) (tri_channel_t *channel))
{
    self->on_released = fn;
}

//  --------------------------------------------------------------------------
//  Endpoints

int
tri_endpoint_bind (tri_endpoint_t *ep, tri_channel_t *self, uint64_t cid,
                   tri_dir_t dir, const tri_endpoint_ops_t *ops)
{
    assert (ep && self && ops);
    tri_node_init (&ep->node);
    ep->channel = NULL;
    if (self->closed)
        return TR_ECLOSED;
    if (cid == 0) {
        //  Only our actor cancel lives at cid 0.
        assert (dir == TRI_DIR_OUT);
        if (self->cancel)
            return TR_EPROTO;
        self->cancel = ep;
    }
    else {
        tri_idmap_t *map = dir == TRI_DIR_IN? &self->in: &self->out;
        if (tri_idmap_get (map, cid))
            return TR_EPROTO;
        if (tri_idmap_put (map, cid, ep))
            return TR_ENOMEM;
    }
    ep->cid = cid;
    ep->dir = dir;
    ep->ops = ops;
    ep->channel = self;
    tri_list_push_back (dir == TRI_DIR_IN? &self->in_list: &self->out_list, &ep->node);
    if (dir == TRI_DIR_IN)
        self->in_count++;
    tri_channel_ref (self);
    return 0;
}

int
tri_channel_in_count (const tri_channel_t *self)
{
    return self->in_count;
}

bool
tri_endpoint_bound (const tri_endpoint_t *ep)
{
    return ep->channel != NULL;
}

static void s_release (tri_channel_t *self);

void
tri_endpoint_unbind (tri_endpoint_t *ep)
{
    tri_channel_t *self = ep->channel;
    if (!self)
        return;
    if (ep->cid == 0 && ep->dir == TRI_DIR_OUT)
        self->cancel = NULL;
    else
        tri_idmap_del (ep->dir == TRI_DIR_IN? &self->in: &self->out, ep->cid);
    tri_node_unlink (&ep->node);
    if (ep->dir == TRI_DIR_IN)
        self->in_count--;
    ep->channel = NULL;
    //  A draining channel whose last call was answered is done draining.
    if (self->closed && !self->released && tri_timer_active (&self->drain)
    &&  tri_list_empty (&self->out_list)) {
        tri_timer_stop (&self->drain);
        s_release (self);
    }
    tri_channel_unref (&self);
}

static tri_endpoint_t *
s_lookup (tri_channel_t *self, uint64_t cid, tri_dir_t dir)
{
    if (cid == 0)
        return dir == TRI_DIR_OUT? self->cancel: NULL;
    return tri_idmap_get (dir == TRI_DIR_IN? &self->in: &self->out, cid);
}

//  Fail one endpoint: unbind it, then tell its owner.
static void
s_fail (tri_endpoint_t *ep, const tr_error_t *why)
{
    const tri_endpoint_ops_t *ops = ep->ops;
    tri_endpoint_unbind (ep);
    ops->on_failed (ep, why);
}

//  Fail every endpoint of a list (owners may unbind others meanwhile).
static void
s_fail_all (tri_list_t *list, const tr_error_t *why)
{
    tri_node_t *node;
    while ((node = tri_list_first (list)))
        s_fail (tri_list_entry (node, tri_endpoint_t, node), why);
}

static tr_error_t *
s_why_closed (tri_channel_t *self)
{
    return self->death? tr_error_dup (self->death)
         : tri_error_new (TR_ECLOSED, "Closed", self->uid, "channel to %s closed",
                          tri_channel_uid (self));
}

//  Every endpoint is gone: the socket layer may forget the channel.
static void
s_release (tri_channel_t *self)
{
    if (self->released)
        return;
    self->released = true;
    if (self->on_released)
        self->on_released (self);
}

static void
s_drained (tri_timer_t *timer)
{
    tri_channel_t *self = timer->arg;
    tri_timer_stop (timer);
    tri_channel_ref (self);
    tr_error_t *why = s_why_closed (self);
    s_fail_all (&self->out_list, why);
    tr_error_destroy (&why);
    s_release (self);
    tri_channel_unref (&self);
}

void
tri_channel_close (tri_channel_t *self, tr_error_t *death, bool drain)
{
    if (death) {
        tr_error_destroy (&self->death);
        self->death = death;
    }
    //  What was held for the peer leaves first (if it is gone, libzmq
    //  drops it).
    s_flush (self);
    if (self->closed) {
        //  Closed again without drain: the drain period ends now.
        if (!drain && tri_timer_active (&self->drain))
            s_drained (&self->drain);
        return;
    }
    self->closed = true;
    s_bad_log_end (self);
    tri_channel_ref (self);
    tr_error_t *why = s_why_closed (self);
    s_fail_all (&self->in_list, why);
    if (drain && !tri_list_empty (&self->out_list))
        tri_timer_start (&self->drain, tri_after_ms (tri_config ()->drain_ms), s_drained, self);
    else {
        s_fail_all (&self->out_list, why);
        s_release (self);
    }
    tr_error_destroy (&why);
    tri_channel_unref (&self);
}

//  --------------------------------------------------------------------------
//  Sending

static int
s_send_raw (void *socket, tri_watch_t *watch, const uint8_t *rid, size_t rid_size,
            const void *data, size_t size)
{
    if (watch)
        tri_loop_touch (watch);
    if (rid_size && zmq_send (socket, rid, rid_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    return zmq_send (socket, data, size, ZMQ_DONTWAIT) < 0? -1: 0;
}

static void
s_free_frame (void *data, void *base)
{
    (void) data;
    free (base);
}

//  A message of size bytes at start, inside the heap block base, without
//  copying them: libzmq frees base once the frame has left. On failure
//  base is freed here.
static int
s_block_msg (zmq_msg_t *msg, char *base, char *start, size_t size)
{
    if (zmq_msg_init_data (msg, start, size, s_free_frame, base)) {
        free (base);
        return -1;
    }
    return 0;
}

//  The routing id that starts every message to a ROUTER peer.
static int
s_send_rid (tri_channel_t *self)
{
    return self->rid_size
        && zmq_send (self->socket, self->rid, self->rid_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
         ? -1: 0;
}

//  The cost of a message to the peer: 0 for one that is not counted.
static size_t
s_cost (zmq_msg_t *msg)
{
    size_t size = zmq_msg_size (msg);
    return size > TRI_COUNT_MIN? size + TRI_MSG_COST: 0;
}

//  Whether cost more bytes fit in the budget: the first message always
//  does, and a large answer waited for room (serve.c), so that the
//  bound here, one largest frame over it, is only met by a peer that
//  does not read. Else -1, errno ENOBUFS.
static int
s_room (tri_channel_t *self, size_t cost)
{
    size_t queued = atomic_load (&self->budget->queued);
    const tr_config_t *config = tri_config ();
    if (queued && queued + cost > config->max_queued_bytes + config->max_msg_size) {
        errno = ENOBUFS;
        return -1;
    }
    return 0;
}

//  Make msg one the budget counts until libzmq frees it (in place; the
//  message is the same bytes, not copied). Returns 0 or -1 (msg as it was).
static int
s_count (tri_channel_t *self, zmq_msg_t *msg)
{
    if (zmq_msg_size (msg) <= TRI_COUNT_MIN)
        return 0;
    tri_sent_t *sent = malloc (sizeof *sent);
    if (!sent)
        return -1;
    zmq_msg_init (&sent->msg);
    zmq_msg_move (&sent->msg, msg);
    sent->cost = s_cost (&sent->msg);
    sent->budget = self->budget;
    if (zmq_msg_init_data (msg, zmq_msg_data (&sent->msg), zmq_msg_size (&sent->msg),
                           s_sent_free, sent)) {
        zmq_msg_move (msg, &sent->msg);
        free (sent);
        return -1;
    }
    atomic_fetch_add (&self->budget->refs, 1);
    atomic_fetch_add (&self->budget->queued, sent->cost);
    return 0;
}

size_t
tri_channel_queued (const tri_channel_t *self)
{
    return atomic_load (&self->budget->queued);
}

//  Send one frame already in a message (taken).
static int
s_send_msg (tri_channel_t *self, zmq_msg_t *msg)
{
    tri_loop_touch (self->watch);
    if (s_room (self, s_cost (msg)) || s_count (self, msg)
    ||  s_send_rid (self) || zmq_msg_send (msg, self->socket, ZMQ_DONTWAIT) < 0) {
        int saved = errno;
        zmq_msg_close (msg);
        errno = saved;
        return -1;
    }
    return 0;
}

//  The open batch of values becomes the next held frame (there is a slot
//  for it: a full hold is always sent at once).
static int
s_put_batch (tri_channel_t *self)
{
    if (!self->batch_open)
        return 0;
    self->batch_open = false;
    //  [yield, cid, [side, value ...]]: the count covers the side.
    uint16_t items = (uint16_t) (self->batch_values + 1);
    self->batch [self->batch_count_at] = (char) (items >> 8);
    self->batch [self->batch_count_at + 1] = (char) (items & 0xff);
    //  Copied out, so that the buffer serves the next burst.
    zmq_msg_t *msg = &self->hold [self->held];
    if (zmq_msg_init_size (msg, self->batch_size))
        return -1;
    memcpy (zmq_msg_data (msg), self->batch, self->batch_size);
    self->held++;
    return 0;
}

//  Send the held frames as one message: the routing id, then a part per
//  frame. Returns 0 or -1 with errno set (the frames are gone either way).
static int
s_flush (tri_channel_t *self)
{
    if (s_put_batch (self))
        return -1;
    int held = self->held;
    if (!held)
        return 0;
    self->held = 0;
    tri_node_unlink (&self->holding_node);
    tri_loop_touch (self->watch);
    //  The message goes whole or not at all.
    size_t cost = 0;
    for (int j = 0; j < held; j++)
        cost += s_cost (&self->hold [j]);
    int rc = s_room (self, cost), i = 0;
    for (int j = 0; rc == 0 && j < held; j++)
        rc = s_count (self, &self->hold [j]);
    if (rc == 0)
        rc = s_send_rid (self);
    for (; rc == 0 && i < held; i++)
        if (zmq_msg_send (&self->hold [i], self->socket,
                          (i + 1 < held? ZMQ_SNDMORE: 0) | ZMQ_DONTWAIT) < 0)
            rc = -1;
    int saved = errno;
    for (; i < held; i++)
        zmq_msg_close (&self->hold [i]);
    errno = saved;
    return rc;
}

//  Hold a frame for the next message; it goes now if nothing else will
//  run before the loop waits, or if the message is full.
//  The next hold slot, after the open batch of values (which the frame
//  to hold must follow); NULL if a flush it took failed.
static zmq_msg_t *
s_slot (tri_channel_t *self)
{
    if (self->batch_open
    &&  (s_put_batch (self) || (self->held == TRI_HOLD_MAX && s_flush (self))))
        return NULL;
    return &self->hold [self->held];
}

//  Whether a frame sent now is held for the next message: always to a
//  peer that reads several, once something is held, and while other
//  tasks will run first, or (burst) the running task sends more.
static bool
s_holds (tri_channel_t *self, bool burst)
{
    return self->batching
        && (burst || self->held || self->batch_open || tri_sched_has_ready ());
}

static int
s_hold (tri_channel_t *self, tri_frame_t *frame)
{
    zmq_msg_t *msg = s_slot (self);
    if (!msg)
        return -1;
    if (frame->data == frame->local) {
        if (zmq_msg_init_size (msg, frame->size))
            return -1;
        memcpy (zmq_msg_data (msg), frame->data, frame->size);
    }
    else {
        size_t size = frame->size;
        char *data = tri_frame_detach (frame);
        if (s_block_msg (msg, data, data, size))
            return -1;
    }
    return s_held (self, false);
}

//  The frame in the next hold slot is ready: count it, and send the held
//  frames if the message is full or, unless burst, nothing else will run
//  before the loop waits.
static int
s_held (tri_channel_t *self, bool burst)
{
    self->held++;
    if (!tri_node_linked (&self->holding_node))
        tri_list_push_back (&s_holding, &self->holding_node);
    if (self->held == TRI_HOLD_MAX || (!burst && !tri_sched_has_ready ()))
        return s_flush (self);
    return 0;
}

//  A frame that outgrew its inside buffer is handed to libzmq as it is.
static int
s_send_frame (tri_channel_t *self, tri_frame_t *frame)
{
    if (s_holds (self, false))
        return s_hold (self, frame);
    if (frame->data == frame->local) {
        //  Copied, not counted (TRI_COUNT_MIN); a peer over its bound
        //  takes nothing more.
        if (s_room (self, 0))
            return -1;
        return s_send_raw (self->socket, self->watch, self->rid, self->rid_size,
                           frame->data, frame->size);
    }
    zmq_msg_t msg;
    size_t size = frame->size;
    char *data = tri_frame_detach (frame);
    return s_block_msg (&msg, data, data, size)? -1: s_send_msg (self, &msg);
}

//  A send that failed: the peer is gone if it is no longer connected. A
//  peer that lets more than its budget pile up, not reading what it is
//  sent (stalled, stopped, or never reading at all), is disconnected:
//  its calls fail, the socket layer forgets it and ignores its
//  connection, and what libzmq still holds for it (the budget at most)
//  goes when that connection ends. Other peers do not notice.
static void
s_send_failed (tri_channel_t *self)
{
    tri_log_debug ("TR-SEND", "send to %s failed: %s", tri_channel_uid (self),
                   zmq_strerror (errno));
    //  EAGAIN: the ROUTER's high-water mark for this peer (small
    //  messages), ENOBUFS: its byte bound (large ones).
    if ((errno == ENOBUFS || errno == EAGAIN) && !self->closed) {
        size_t queued = tri_channel_queued (self);
        size_t max = tri_config ()->max_queued_bytes;
        tri_log_warn ("TR-SEND-QUEUE", "%s does not read what it is sent: %zu bytes wait for "
                      "it, over the bound of %zu: disconnected", tri_channel_uid (self),
                      queued, max);
        if (s_on_overflow)
            s_on_overflow (self);
        tri_channel_close (self, tri_error_new (TR_ELIMIT, "SendQueueFull", self->uid,
                           "%s did not read what actor %s sent it: more than %zu bytes "
                           "waited for it", tri_channel_uid (self), tri_uid (), max), false);
    }
    else
    if (errno == EHOSTUNREACH)
        tri_channel_close (self, tri_error_new (TR_ECLOSED, "Closed", self->uid,
                           "%s is no longer connected", tri_channel_uid (self)), true);
}

void
tri_channel_overflow (tri_channel_t *self)
{
    errno = ENOBUFS;
    s_send_failed (self);
}

int
tri_channel_send (tri_channel_t *self, tri_frame_t *frame)
{
    int rc = 0;
    if (frame->failed)
        rc = TR_ENOMEM;
    else
    if (self->closed)
        rc = TR_ECLOSED;
    else
    if (s_send_frame (self, frame)) {
        rc = TR_ECLOSED;
        s_send_failed (self);
    }
    tri_frame_fini (frame);
    return rc;
}

//  Send the frame made of head then body (both copied); burst as for
//  s_holds.
static int
s_send_parts (tri_channel_t *self, const void *head, size_t head_size,
              const void *body, size_t body_size, bool burst)
{
    if (self->closed)
        return TR_ECLOSED;
    bool hold = s_holds (self, burst);
    zmq_msg_t direct;
    zmq_msg_t *msg = hold? s_slot (self): &direct;
    if (!msg) {
        s_send_failed (self);
        return TR_ECLOSED;
    }
    if (zmq_msg_init_size (msg, head_size + body_size))
        return TR_ENOMEM;
    memcpy (zmq_msg_data (msg), head, head_size);
    memcpy ((char *) zmq_msg_data (msg) + head_size, body, body_size);
    if (hold? s_held (self, burst): s_send_msg (self, msg)) {
        s_send_failed (self);
        return TR_ECLOSED;
    }
    return 0;
}

int
tri_channel_send_value (tri_channel_t *self, uint64_t cid, int side,
                        const void *value, size_t size)
{
    if (self->closed)
        return TR_ECLOSED;
    uint8_t head [24];
    size_t head_size = tri_msg_head (head, TRI_YIELD, cid);
    //  A value that follows the last one closely is part of a burst, and
    //  waits for the next in one frame; one that comes alone leaves alone
    //  (after what is held), so a slow producer's values are not delayed.
    int64_t now = tri_now_us ();
    bool burst = now - self->value_sent_us < TRI_BURST_GAP_US;
    self->value_sent_us = now;
    if (!self->batching || head_size + 4 + size > TRI_BATCH_BYTES
    ||  (!burst && !self->batch_open)) {
        head [head_size++] = 0x92;
        head [head_size++] = (uint8_t) side;
        int rc = s_send_parts (self, head, head_size, value, size, burst);
        //  Held because other tasks were ready: the sending task may not
        //  park for a long while, and a lone value must not wait for it.
        if (rc == 0 && !burst && self->held && s_flush (self)) {
            s_send_failed (self);
            return TR_ECLOSED;
        }
        return rc;
    }
    if (self->batch_open
    &&  (self->batch_cid != cid || self->batch_side != side
         || self->batch_values == TRI_BATCH_VALUES
         || self->batch_size + size > TRI_BATCH_BYTES)) {
        if (s_put_batch (self) || (self->held == TRI_HOLD_MAX && s_flush (self))) {
            s_send_failed (self);
            return TR_ECLOSED;
        }
    }
    if (!self->batch_open) {
        //  [yield, cid, array16 [side, ...: the count is written when it
        //  is sealed.
        if (!self->batch && !(self->batch = malloc (TRI_BATCH_BYTES)))
            return TR_ENOMEM;
        self->batch_open = true;
        memcpy (self->batch, head, head_size);
        self->batch [head_size] = (char) 0xdc;
        self->batch_count_at = head_size + 1;
        self->batch [head_size + 3] = (char) side;
        self->batch_size = head_size + 4;
        self->batch_cid = cid;
        self->batch_side = side;
        self->batch_values = 0;
        if (!tri_node_linked (&self->holding_node))
            tri_list_push_back (&s_holding, &self->holding_node);
    }
    memcpy (self->batch + self->batch_size, value, size);
    self->batch_size += size;
    self->batch_values++;
    //  A value after a pause ends the burst held before it: both leave.
    if (!burst && s_flush (self)) {
        s_send_failed (self);
        return TR_ECLOSED;
    }
    return 0;
}

void
tri_channel_flush (tri_channel_t *self)
{
    if ((self->held || self->batch_open) && s_flush (self))
        s_send_failed (self);
}

void
tri_channel_flush_all (void)
{
    tri_node_t *node;
    while ((node = tri_list_first (&s_holding)))
        tri_channel_flush (tri_list_entry (node, tri_channel_t, holding_node));
}

void
tri_channel_set_minor (tri_channel_t *self, int minor)
{
    self->minor = minor;
    bool on = minor >= 1;       //  1.1 reads several frames per message
    if (!on)
        tri_channel_flush (self);
    else
    if (!self->hold && !(self->hold = malloc (TRI_HOLD_MAX * sizeof (zmq_msg_t))))
        on = false;             //  one frame per message will do
    self->batching = on;
}

int
tri_channel_minor (const tri_channel_t *self)
{
    return self->minor;
}

int
tri_channel_send_msg (tri_channel_t *self, zmq_msg_t *msg)
{
    if (self->closed) {
        zmq_msg_close (msg);
        return TR_ECLOSED;
    }
    int rc = s_flush (self);
    if (rc)
        zmq_msg_close (msg);
    else
        rc = s_send_msg (self, msg);
    if (rc) {
        s_send_failed (self);
        return TR_ECLOSED;
    }
    return 0;
}

int
tri_channel_send_owned (tri_channel_t *self, char *base, char *start, size_t size)
{
    zmq_msg_t msg;
    if (s_block_msg (&msg, base, start, size))
        return TR_ENOMEM;
    return tri_channel_send_msg (self, &msg);
}

int
tri_channel_send_empty (tri_channel_t *self, tri_type_t type, uint64_t cid)
{
    tri_frame_t frame;
    tri_frame_begin (&frame, type, cid);
    msgpack_pack_nil (&frame.pk);
    return tri_channel_send (self, &frame);
}

int
tri_channel_send_error (tri_channel_t *self, uint64_t cid, const tr_error_t *err)
{
    tri_frame_t frame;
    tri_frame_begin (&frame, TRI_ERROR, cid);
    tri_error_pack (&frame.pk, err);
    return tri_channel_send (self, &frame);
}

int
tri_channel_send_hello (tri_channel_t *self)
{
    tr_actor_t *me = tri_actor ();
    tri_hello_t hello = { TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR, me->uid,
                          me->endpoint, (int64_t) getpid () };
    tri_frame_t frame;
    tri_frame_begin (&frame, TRI_HELLO, 0);
    tri_msg_pack_hello (&frame.pk, &hello);
    return tri_channel_send (self, &frame);
}

int
tri_channel_reply_error (tri_channel_t *self, uint64_t cid, int code,
                         const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    tr_error_t *err = tri_error_newv (code, type, tri_uid (), fmt, ap);
    va_end (ap);
    if (!err)
        return TR_ENOMEM;
    int rc = tri_channel_send_error (self, cid, err);
    tr_error_destroy (&err);
    return rc;
}

int
tri_socket_reply_error (void *socket, tri_watch_t *watch, const uint8_t *rid, size_t rid_size,
                        uint64_t cid, int code, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    tr_error_t *err = tri_error_newv (code, type, tri_uid (), fmt, ap);
    va_end (ap);
    if (!err)
        return TR_ENOMEM;
    tri_frame_t frame;
    tri_frame_begin (&frame, TRI_ERROR, cid);
    tri_error_pack (&frame.pk, err);
    tr_error_destroy (&err);
    int rc = frame.failed? TR_ENOMEM: 0;
    if (!rc && s_send_raw (socket, watch, rid, rid_size, frame.data, frame.size))
        rc = TR_ECLOSED;
    tri_frame_fini (&frame);
    return rc;
}

//  --------------------------------------------------------------------------
//  Incoming frames

void
tri_channel_on_request (void (*fn) (tri_channel_t *channel, tri_msg_t *msg))
{
    s_on_request = fn;
}

void
tri_channel_on_overflow (void (*fn) (tri_channel_t *channel))
{
    s_on_overflow = fn;
}

void
tri_channel_on_stop (void (*fn) (tri_channel_t *channel))
{
    s_on_stop = fn;
}

//  One warning a second at most per peer, and one for every peer that
//  never said hello together: a flood of bad frames, from one peer or
//  from several taking turns, cannot flood the log. What was kept back
//  is counted, and the next warning (or the channel's end) says so.
#define TRI_BAD_LOG_MS 1000

typedef struct {
    int64_t logged;             //  when the last warning went, or -1
    unsigned suppressed;        //  since then
} tri_bad_log_t;

static void
s_bad_log (tri_bad_log_t *log, const char *who, const char *why)
{
    int64_t now = tri_now_ms ();
    if (log->logged >= 0 && now - log->logged < TRI_BAD_LOG_MS) {
        log->suppressed++;
        tri_log_debug ("TR-BAD-FRAME", "%s: %s", who, why);
        return;
    }
    if (log->suppressed)
        tri_log_warn ("TR-BAD-FRAME", "%s: %s (%u more like this from %s suppressed)",
                      who, why, log->suppressed, who);
    else
        tri_log_warn ("TR-BAD-FRAME", "%s: %s", who, why);
    log->logged = now;
    log->suppressed = 0;
}

//  What a peer's log kept back is told when it goes.
static void
s_bad_log_end (tri_channel_t *self)
{
    if (self->bad_suppressed)
        tri_log_warn ("TR-BAD-FRAME", "%u more bad frames from %s suppressed",
                      self->bad_suppressed, tri_channel_uid (self));
    self->bad_suppressed = 0;
}

void
tri_channel_log_bad (tri_channel_t *channel, const char *why)
{
    static tri_bad_log_t unknown = { -1, 0 };
    if (channel && channel->uid) {
        tri_bad_log_t log = { channel->bad_logged, channel->bad_suppressed };
        s_bad_log (&log, channel->uid, why);
        channel->bad_logged = log.logged;
        channel->bad_suppressed = log.suppressed;
    }
    else
        s_bad_log (&unknown, "unknown peer", why);
}

//  An answer no call of ours waits for.
static void
s_stray_answer (tri_channel_t *self, tri_msg_t *msg)
{
    if (msg->cid == 0 && msg->type == TRI_ACK)
        return;                 //  an actor cancel we stopped waiting for
    if (msg->cid != 0 && msg->cid <= tri_cid_last ()) {
        tri_log_debug ("TR-LATE", "%s answered cid %llu after the caller left",
                       tri_channel_uid (self), (unsigned long long) msg->cid);
        return;
    }
    //  Never answer an error with an error: two actors would trade them
    //  forever.
    if (msg->type == TRI_ERROR) {
        tr_error_t *err = tri_error_unpack (&msg->body, self->uid);
        tri_log_warn ("TR-PEER-ERROR", "%s reports: %s: %s", tri_channel_uid (self),
                      err? tr_error_type (err): "?", err? tr_error_message (err): "?");
        tr_error_destroy (&err);
        return;
    }
    tri_channel_log_bad (self, "answer to a call never made");
    tri_channel_reply_error (self, msg->cid, TR_EPROTO, "ProtocolError",
                             "%s for cid %llu, which %s never sent",
                             tri_msg_type_name (msg->type),
                             (unsigned long long) msg->cid, tri_uid ());
}

//  The context a started, yield, stop or credit frame belongs to: started
//  comes from the callee; the others say which side sent them. A frame
//  no context claims is answered with an error here (NULL).
static tri_endpoint_t *
s_lookup_stream (tri_channel_t *self, tri_msg_t *msg)
{
    int side = 1;
    const msgpack_object *value;
    if (msg->type != TRI_STARTED && tri_msg_read_stream (msg, &side, &value)) {
        tri_channel_log_bad (self, "stream frame body is not [side, value]");
        tri_channel_reply_error (self, msg->cid, TR_EPROTO, "ProtocolError",
                                 "%s (cid %llu): body is not [side, value]",
                                 tri_msg_type_name (msg->type), (unsigned long long) msg->cid);
        return NULL;
    }
    //  Side 1: the peer serves the cid, which is our call.
    tri_endpoint_t *ep = msg->cid? s_lookup (self, msg->cid, side? TRI_DIR_OUT: TRI_DIR_IN): NULL;
    //  A context that has just ended on one side still gets what the
    //  other sent before it learnt so: dropped.
    uint64_t opened_max = side? tri_cid_last (): self->in_cid_max;
    if (!ep && msg->cid && msg->cid <= opened_max)
        tri_log_debug ("TR-LATE", "%s sent %s for cid %llu after it ended",
                       tri_channel_uid (self), tri_msg_type_name (msg->type),
                       (unsigned long long) msg->cid);
    else
    if (!ep) {
        char why [96];
        snprintf (why, sizeof why, "%s for cid %llu, which no context holds",
                  tri_msg_type_name (msg->type), (unsigned long long) msg->cid);
        tri_channel_log_bad (self, why);
        tri_channel_reply_error (self, msg->cid, TR_EPROTO, "ProtocolError",
                                 "%s (cid %llu) was not expected: no stream or context "
                                 "is open with that cid", tri_msg_type_name (msg->type),
                                 (unsigned long long) msg->cid);
    }
    return ep;
}

void
tri_channel_dispatch (tri_channel_t *self, tri_msg_t *msg)
{
    tri_endpoint_t *ep = NULL;
    switch (msg->type) {
        case TRI_CMD:
            if ((ep = s_lookup (self, msg->cid, TRI_DIR_IN))) {
                tri_channel_reply_error (self, msg->cid, TR_EPROTO, "ProtocolError",
                                         "cid %llu is already in use by a call",
                                         (unsigned long long) msg->cid);
                break;
            }
            if (msg->cid == 0) {
                tri_channel_reply_error (self, 0, TR_EPROTO, "ProtocolError",
                                         "cmd with cid 0: cids start at 1");
                break;
            }
            if (msg->cid > self->in_cid_max)
                self->in_cid_max = msg->cid;
            s_on_request (self, msg);
            return;
        case TRI_CANCEL:
            if (msg->cid == 0) {
                tri_log_debug ("TR-CANCEL", "%s asked us to cancel", tri_channel_uid (self));
                s_on_stop (self);
            }
            else
            if ((ep = s_lookup (self, msg->cid, TRI_DIR_IN))) {
                ep->ops->on_message (ep, msg);
                return;
            }
            else
                //  Already answered (or never started): acknowledge all the
                //  same, so a caller waiting for the ack does not wait in vain.
                tri_channel_send_empty (self, TRI_ACK, msg->cid);
            break;
        case TRI_RETURN:
        case TRI_ERROR:
        case TRI_ACK:
            if ((ep = s_lookup (self, msg->cid, TRI_DIR_OUT))
            &&  (msg->cid != 0 || msg->type == TRI_ACK)) {
                ep->ops->on_message (ep, msg);
                return;
            }
            s_stray_answer (self, msg);
            break;
        case TRI_STARTED:
        case TRI_YIELD:
        case TRI_STOP:
        case TRI_CREDIT:
            if ((ep = s_lookup_stream (self, msg))) {
                ep->ops->on_message (ep, msg);
                return;
            }
            break;
        case TRI_PING:
            tri_channel_send_empty (self, TRI_PONG, msg->cid);
            break;
        case TRI_PONG:
            break;
        case TRI_HELLO:
            tri_channel_log_bad (self, "second hello");
            tri_channel_reply_error (self, msg->cid, TR_EPROTO, "ProtocolError",
                                     "hello already received from %s", tri_channel_uid (self));
            break;
        default:
            break;
    }
    tri_msg_destroy (&msg);
}

void
tri_channel_bad_frame (tri_channel_t *self, int rc, const char *why, int type, uint64_t cid)
{
    tri_channel_log_bad (self, why);
    if (cid && (type == TRI_RETURN || type == TRI_ERROR || type == TRI_ACK)) {
        tri_endpoint_t *ep = s_lookup (self, cid, TRI_DIR_OUT);
        if (ep) {
            tr_error_t *err = tri_error_new (rc, tri_msg_rc_type (rc), self->uid,
                                             "the answer from %s could not be read: %s",
                                             tri_channel_uid (self), why);
            if (err) {
                s_fail (ep, err);
                tr_error_destroy (&err);
            }
        }
    }
    if (type != TRI_ERROR)
        tri_channel_reply_error (self, cid, rc, tri_msg_rc_type (rc), "%s", why);
}
