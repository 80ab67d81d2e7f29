/*  =========================================================================
    peer.c - the sockets and the peers they reach

    The ROUTER that peers call in on is keyed by routing id: a peer's
    first frame must be a hello of our major version, which makes its
    channel; anything else before it is answered with an error. A DEALER
    of ours learns its peer from the hello that answers ours, or the
    refusal that does. Every DEALER (to a portal's peer, to our parent)
    is watched by a socket monitor: once the peer has said hello, a
    disconnect means it died or was silent past the heartbeat timeout,
    and its channel closes so that the calls through it fail rather than
    wait; the parent's DEALER also tells the actor (rule 11).

    The ROUTER is watched by a monitor too. Each connection is known by
    its descriptor: libzmq stamps every message with the descriptor it
    came on (ZMQ_SRCFD) and names it in the monitor's ACCEPTED and
    DISCONNECTED events, so the hello binds a channel to its connection
    and the disconnect of that connection is the peer's departure. What
    the peer had queued is read first; then the hook the spawning layer
    registered may claim the channel (a child of ours), or it is closed
    with ConnectionLost: the calls it was being served are cancelled and
    it is forgotten, so that a daemon stays flat however many peers come
    and go. libzmq sends DISCONNECTED before it closes the descriptor,
    so before a hello's descriptor is bound the monitor is drained: the
    departure of the connection that had that number before is seen
    first. Two hellos on one descriptor with no event between them (a
    peer said hello and left, and its descriptor was accepted again,
    before either hello was read) are told apart by a probe a heartbeat
    interval later: a send to a routing id whose connection ended fails.

    A routing id is trusted on the connection its hello came on only: a
    hello, a frame of an unknown routing id or one from a descriptor that
    is not its channel's is judged after the monitor has been read, and a
    frame whose routing id is known but whose descriptor is not that
    channel's is one before hello.
    A hello with the routing id of a peer still connected is refused; one
    with the id of a peer whose connection ended makes it depart first.
    A peer that overran its send budget (channel.c) is forgotten and its
    connection ignored until it ends.
    =========================================================================
*/
#include "troupe_private.h"
#include "tri_fds.h"
#include <czmq.h>
#include <sys/random.h>
#include <unistd.h>

//  Frames read from one socket before the loop runs tasks again.
#define TRI_BATCH 64
//  Bytes of the random routing id each DEALER of ours has.
#define TRI_RID_SIZE 16

struct tri_dealer {
    tri_channel_t *channel;
    void *socket;
    tri_watch_t watch;
    void *monitor;              //  PAIR on the DEALER's events, or NULL
    tri_watch_t monitor_watch;
    bool hello_done;            //  the peer's hello arrived
    int hello_rc;               //  the peer refused ours (TR_EVERSION, ...)
    tr_error_t *refusal;        //  and said why
    tri_waitq_t hello_waiters;
    char *connected;            //  the endpoint it connected to
    tri_node_t node;            //  in s_peer.dealers
    void (*on_lost) (tri_dealer_t *self);
};

//  A connection to the ROUTER, by its descriptor.
typedef struct {
    tri_channel_t *channel;     //  whose hello came on it (the table's)
    bool open;                  //  accepted and not disconnected since
    bool ignored;               //  its peer overran its send budget
} tri_conn_t;

//  A channel whose connection ended, waiting to be closed.
typedef struct {
    tri_channel_t *channel;     //  a reference
    int fd;                     //  the connection's descriptor, or -1
    bool reused;                //  accepted again since, for another peer
} tri_departed_t;

//  A channel whose hello came on a descriptor another hello came on too,
//  with no event between them: one of the two peers has gone, and the
//  probe tells which.
typedef struct {
    tri_channel_t *channel;     //  a reference
    int fd;
} tri_suspect_t;

static struct {
    void *router;
    tri_watch_t router_watch;
    zhashx_t *channels;         //  ROUTER peers by routing id as hex
    tri_channel_t *last;        //  the hot path's cache
    tri_list_t dealers;
    void (*on_hello) (const char *uid, tri_channel_t *channel, int rc);
    bool (*on_departed) (tri_channel_t *channel);
    void *monitor;              //  PAIR on the ROUTER's events
    tri_watch_t monitor_watch;
    tri_conn_t *conns;          //  by descriptor
    int nconns;
    tri_departed_t *departed;   //  gone, not yet closed
    size_t ndeparted, departed_max;
    bool departing;             //  s_departures_run is running
    tri_suspect_t *suspects;
    size_t nsuspects, suspects_max;
    tri_timer_t probe;          //  probes the suspects
    char *local;                //  the endpoint our children connect to
} s_peer = { .dealers = { &s_peer.dealers, &s_peer.dealers } };

void
tri_peer_on_hello (void (*fn) (const char *uid, tri_channel_t *channel, int rc))
{
    s_peer.on_hello = fn;
}

void
tri_peer_on_departed (bool (*fn) (tri_channel_t *channel))
{
    s_peer.on_departed = fn;
}

size_t
tri_peer_count (void)
{
    return s_peer.channels? zhashx_size (s_peer.channels): 0;
}

//  --------------------------------------------------------------------------
//  Departures from the ROUTER

static void s_on_router (tri_watch_t *watch, bool drain);

//  The connection with that descriptor, NULL if it cannot be recorded.
static tri_conn_t *
s_conn (int fd)
{
    if (fd < 0)
        return NULL;
    if (fd >= s_peer.nconns) {
        int size = s_peer.nconns? s_peer.nconns: 64;
        while (size <= fd)
            size *= 2;
        tri_conn_t *conns = realloc (s_peer.conns, size * sizeof *conns);
        if (!conns)
            return NULL;
        memset (conns + s_peer.nconns, 0, (size - s_peer.nconns) * sizeof *conns);
        s_peer.conns = conns;
        s_peer.nconns = size;
    }
    return &s_peer.conns [fd];
}

//  The connection of a channel has ended: it departs once what it queued
//  is read (s_departures_run).
static void
s_depart (tri_conn_t *conn, int fd)
{
    tri_channel_t *channel = conn->channel;
    conn->channel = NULL;
    if (!channel)
        return;
    if (s_peer.ndeparted == s_peer.departed_max) {
        size_t max = s_peer.departed_max? 2 * s_peer.departed_max: 16;
        tri_departed_t *departed = realloc (s_peer.departed, max * sizeof *departed);
        if (!departed) {
            //  No room to wait: it goes now, what it queued unread.
            if (!tri_channel_closed (channel))
                tri_channel_close (channel, NULL, false);
            return;
        }
        s_peer.departed = departed;
        s_peer.departed_max = max;
    }
    tri_channel_ref (channel);
    s_peer.departed [s_peer.ndeparted++] = (tri_departed_t) { channel, fd, false };
}

//  Forget suspect i (its reference dropped).
static void
s_suspect_drop (size_t i)
{
    tri_channel_unref (&s_peer.suspects [i].channel);
    s_peer.suspects [i] = s_peer.suspects [--s_peer.nsuspects];
}

//  The descriptor fd has ended: so have its suspects.
static void
s_suspects_depart (int fd)
{
    for (size_t i = 0; i < s_peer.nsuspects; )
        if (s_peer.suspects [i].fd == fd) {
            tri_conn_t conn = { s_peer.suspects [i].channel, false, false };
            s_depart (&conn, fd);
            s_suspect_drop (i);
        }
        else
            i++;
}

//  Whether the ROUTER still routes to the channel's peer: with
//  ZMQ_ROUTER_MANDATORY, a routing id whose connection ended fails at
//  once (EHOSTUNREACH once libzmq dropped the pipe, EAGAIN while it
//  terminates: the pipe has no high water mark). The peer answers the
//  ping (cid 0) with a pong, which nobody awaits.
static bool
s_routable (tri_channel_t *channel)
{
    const char *key = tri_channel_key (channel);
    uint8_t rid [256];
    size_t size = strlen (key) / 2;
    for (size_t i = 0; i < size; i++) {
        unsigned byte;
        sscanf (key + 2 * i, "%2x", &byte);
        rid [i] = (uint8_t) byte;
    }
    tri_loop_touch (&s_peer.router_watch);
    if (zmq_send (s_peer.router, rid, size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return false;
    static const uint8_t ping [] = { 0x93, TRI_PING, 0x00, 0xc0 };    //  [ping, 0, nil]
    zmq_send (s_peer.router, ping, sizeof ping, ZMQ_DONTWAIT);
    return true;
}

static void s_departures_run (void);

//  Probe the suspects and the channels bound to their descriptors: those
//  gone depart, and the one left is bound to the descriptor.
static void
s_probe (tri_timer_t *timer)
{
    tri_timer_stop (timer);
    for (size_t i = 0; i < s_peer.nsuspects; ) {
        tri_suspect_t *suspect = &s_peer.suspects [i];
        tri_conn_t *conn = &s_peer.conns [suspect->fd];
        if (conn->channel && !tri_channel_closed (conn->channel)
        &&  !s_routable (conn->channel))
            s_depart (conn, suspect->fd);
        if (tri_channel_closed (suspect->channel) || !s_routable (suspect->channel)) {
            tri_conn_t gone = { suspect->channel, false, false };
            s_depart (&gone, suspect->fd);
            s_suspect_drop (i);
        }
        else
        if (!conn->channel && conn->open) {
            conn->channel = suspect->channel;
            s_suspect_drop (i);
        }
        else
            i++;
    }
    if (s_peer.nsuspects)
        tri_timer_start (timer, tri_after_ms (tri_config ()->heartbeat_ivl_ms), s_probe, NULL);
    s_departures_run ();
}

//  Read the events the ROUTER's monitor holds: a batch, or (all) every
//  one of them.
static void
s_monitor_drain (bool all)
{
    for (int i = 0; all || i < TRI_BATCH; i++) {
        zmq_msg_t event, address;
        zmq_msg_init (&event);
        zmq_msg_init (&address);
        if (zmq_msg_recv (&event, s_peer.monitor, ZMQ_DONTWAIT) < 0) {
            if (errno == EAGAIN)
                tri_loop_idle (&s_peer.monitor_watch);
            zmq_msg_close (&event);
            zmq_msg_close (&address);
            return;
        }
        tri_loop_touch (&s_peer.monitor_watch);
        uint16_t code = 0;
        int32_t fd = -1;
        if (zmq_msg_size (&event) >= 6) {
            memcpy (&code, zmq_msg_data (&event), 2);
            memcpy (&fd, (char *) zmq_msg_data (&event) + 2, 4);
        }
        if (zmq_msg_more (&event))
            zmq_msg_recv (&address, s_peer.monitor, ZMQ_DONTWAIT);
        zmq_msg_close (&event);
        if (code != ZMQ_EVENT_ACCEPTED && code != ZMQ_EVENT_DISCONNECTED)
            tri_secure_on_event (code, zmq_msg_data (&address), zmq_msg_size (&address));
        zmq_msg_close (&address);
        tri_conn_t *conn = code == ZMQ_EVENT_ACCEPTED || code == ZMQ_EVENT_DISCONNECTED
                         ? s_conn (fd): NULL;
        if (!conn)
            continue;
        //  A channel still bound to a descriptor that is accepted again
        //  lost its connection: its departure is made sure of.
        s_depart (conn, fd);
        s_suspects_depart (fd);
        conn->open = code == ZMQ_EVENT_ACCEPTED;
        conn->ignored = false;
        if (conn->open)
            for (size_t j = 0; j < s_peer.ndeparted; j++)
                if (s_peer.departed [j].fd == fd)
                    s_peer.departed [j].reused = true;
    }
}

//  The channel of a departed peer closes, unless the spawning layer
//  claims it.
static void
s_departure (tri_channel_t *channel)
{
    bool owned = s_peer.on_departed && s_peer.on_departed (channel);
    //  A channel draining for its last frames has had them all (a child's
    //  owner says when: its death may still be to come).
    if (tri_channel_closed (channel)) {
        if (!owned)
            tri_channel_close (channel, NULL, false);
    }
    else
    if (!owned && !tri_channel_closed (channel)) {
        tri_log_debug ("TR-LOST", "%s at %s has gone", tri_channel_uid (channel),
                       tri_channel_endpoint (channel));
        tri_channel_close (channel, tri_error_new (TR_ECLOSED, "ConnectionLost",
                           tri_channel_uid (channel), "connection from %s lost: the "
                           "actor left, died or was silent past the heartbeat timeout",
                           tri_channel_uid (channel)), false);
    }
}

//  Close the channels of departed peers, after reading what they queued.
static void
s_departures_run (void)
{
    if (s_peer.departing || !s_peer.ndeparted)
        return;
    s_peer.departing = true;
    while (s_peer.ndeparted) {
        //  What came before the connection went is read first.
        int events = 0;
        size_t size = sizeof events;
        while (s_peer.router
        &&     zmq_getsockopt (s_peer.router, ZMQ_EVENTS, &events, &size) == 0
        &&     (events & ZMQ_POLLIN))
            s_on_router (&s_peer.router_watch, true);
        tri_channel_t *channel = s_peer.departed [--s_peer.ndeparted].channel;
        s_departure (channel);
        tri_channel_unref (&channel);
    }
    s_peer.departing = false;
}

static void
s_on_router_monitor (tri_watch_t *watch, bool drain)
{
    (void) watch; (void) drain;
    s_monitor_drain (false);
    s_departures_run ();
}

//  The channel made by a hello that came on descriptor fd.
static void
s_bind_conn (tri_channel_t *channel, int fd)
{
    s_monitor_drain (true);
    tri_conn_t *conn = s_conn (fd);
    if (!conn)
        return;
    //  Another channel on the same descriptor, with no event between the
    //  two hellos: the descriptor was closed and accepted again before
    //  either hello was read, so one of the two peers has gone; which, a
    //  probe tells, once libzmq has ended the gone one's pipe. The new
    //  one waits as a suspect.
    if (conn->channel && conn->open) {
        if (s_peer.nsuspects == s_peer.suspects_max) {
            size_t max = s_peer.suspects_max? 2 * s_peer.suspects_max: 8;
            tri_suspect_t *suspects = realloc (s_peer.suspects, max * sizeof *suspects);
            if (!suspects)
                return;         //  unbound: forgotten when a send fails
            s_peer.suspects = suspects;
            s_peer.suspects_max = max;
        }
        tri_log_debug ("TR-HELLO", "%s and %s said hello on one connection's descriptor: "
                       "one of them has gone", tri_channel_uid (conn->channel),
                       tri_channel_uid (channel));
        tri_channel_ref (channel);
        s_peer.suspects [s_peer.nsuspects++] = (tri_suspect_t) { channel, fd };
        if (!tri_timer_active (&s_peer.probe))
            tri_timer_start (&s_peer.probe, tri_after_ms (tri_config ()->heartbeat_ivl_ms),
                             s_probe, NULL);
        return;
    }
    conn->channel = channel;
    //  The connection this hello came on has ended already.
    if (!conn->open)
        s_depart (conn, fd);
}

//  --------------------------------------------------------------------------
//  The ROUTER

//  A channel of a ROUTER peer is forgotten once it is closed and drained.
static void
s_router_released (tri_channel_t *channel)
{
    if (s_peer.last == channel)
        s_peer.last = NULL;
    for (int fd = 0; fd < s_peer.nconns; fd++)
        if (s_peer.conns [fd].channel == channel)
            s_peer.conns [fd].channel = NULL;
    for (size_t i = 0; i < s_peer.nsuspects; i++)
        if (s_peer.suspects [i].channel == channel) {
            s_suspect_drop (i);
            break;
        }
    if (s_peer.channels && zhashx_lookup (s_peer.channels, tri_channel_key (channel)) == channel) {
        zhashx_delete (s_peer.channels, tri_channel_key (channel));
        tri_channel_unref (&channel);
    }
}

//  Whether the channel's hello came on the connection with descriptor fd
//  (or its connection ended and it departs, its last frames read): 1;
//  2 if the descriptor has been accepted again since, so that the frame
//  may be the departed peer's last or another peer's first; else 0.
static int
s_came_on (tri_channel_t *channel, int fd)
{
    if (fd < 0)
        return 1;               //  libzmq cannot tell: inproc
    if (fd < s_peer.nconns && s_peer.conns [fd].channel == channel)
        return 1;
    for (size_t i = 0; i < s_peer.nsuspects; i++)
        if (s_peer.suspects [i].channel == channel && s_peer.suspects [i].fd == fd)
            return 1;
    for (size_t i = 0; i < s_peer.ndeparted; i++)
        if (s_peer.departed [i].channel == channel && s_peer.departed [i].fd == fd)
            return s_peer.departed [i].reused? 2: 1;
    return 0;
}

//  Whether the channel's connection is open still.
static bool
s_connected (tri_channel_t *channel)
{
    for (int fd = 0; fd < s_peer.nconns; fd++)
        if (s_peer.conns [fd].channel == channel && s_peer.conns [fd].open)
            return true;
    for (size_t i = 0; i < s_peer.nsuspects; i++)
        if (s_peer.suspects [i].channel == channel)
            return true;
    return false;
}

//  A peer that overran its send budget: its connection is ignored until
//  it ends, so that it cannot say hello again and pile up another budget.
static void
s_on_overflow (tri_channel_t *channel)
{
    for (int fd = 0; fd < s_peer.nconns; fd++)
        if (s_peer.conns [fd].channel == channel)
            s_peer.conns [fd].ignored = true;
}

static void
s_on_hello (const uint8_t *rid, size_t rid_size, tri_msg_t *msg, int fd)
{
    tri_hello_t hello;
    char why [256];
    if (tri_msg_read_hello (msg, &hello, why, sizeof why)) {
        tri_channel_log_bad (NULL, why);
        tri_socket_reply_error (s_peer.router, &s_peer.router_watch, rid, rid_size, msg->cid,
                                TR_EPROTO, "ProtocolError", "%s", why);
        return;
    }
    if (hello.major != TR_PROTOCOL_MAJOR) {
        tri_log_warn ("TR-VERSION", "%s speaks protocol %d.%d, this actor speaks %d.%d: refused",
                      hello.uid, hello.major, hello.minor, TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR);
        tri_socket_reply_error (s_peer.router, &s_peer.router_watch, rid, rid_size, msg->cid,
                                TR_EVERSION, "VersionMismatch",
                                "peer %s speaks protocol %d.%d, %s speaks %d.%d",
                                hello.uid, hello.major, hello.minor, tri_uid (),
                                TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR);
        if (s_peer.on_hello)
            s_peer.on_hello (hello.uid, NULL, TR_EVERSION);
        return;
    }
    //  A routing id is never trusted across connections: one a connected
    //  peer has is refused to another, and one whose connection ended
    //  has departed (its channel closes now) before a new channel takes it.
    char key [513];
    tri_rid_key (key, rid, rid_size);
    tri_channel_t *taken = zhashx_lookup (s_peer.channels, key);
    if (taken && s_connected (taken)) {
        tri_log_warn ("TR-ROUTING-ID", "%s said hello on a new connection with the routing id "
                      "of %s, which is still connected: refused", hello.uid,
                      tri_channel_uid (taken));
        tri_socket_reply_error (s_peer.router, &s_peer.router_watch, rid, rid_size, msg->cid,
                                TR_EPROTO, "ProtocolError", "routing id %s is in use by "
                                "another connection to actor %s", key, tri_uid ());
        return;
    }
    if (taken) {
        tri_channel_ref (taken);
        s_departure (taken);
        //  Forgotten even if the spawning layer claimed it.
        if (zhashx_lookup (s_peer.channels, key) == taken) {
            zhashx_delete (s_peer.channels, key);
            tri_channel_on_released (taken, NULL);
            if (s_peer.last == taken)
                s_peer.last = NULL;
            tri_channel_unref (&taken);
        }
        tri_channel_unref (&taken);
    }
    tri_channel_t *channel = tri_channel_new (s_peer.router, &s_peer.router_watch, rid, rid_size);
    if (!channel || tri_channel_set_peer (channel, hello.uid, hello.endpoint, (int) hello.pid)
    ||  zhashx_insert (s_peer.channels, tri_channel_key (channel), channel)) {
        tri_log_error ("TR-NOMEM", "no memory for the channel of %s: refused", hello.uid);
        tri_socket_reply_error (s_peer.router, &s_peer.router_watch, rid, rid_size, msg->cid,
                                TR_ENOMEM, "NoMemory", "actor %s is out of memory", tri_uid ());
        tri_channel_unref (&channel);
        return;
    }
    tri_channel_on_released (channel, s_router_released);
    tri_channel_set_minor (channel, (int) hello.minor);
    s_bind_conn (channel, fd);
    s_peer.last = channel;
    tri_log_debug ("TR-HELLO", "hello from %s at %s (descriptor %d)", hello.uid,
                   tri_channel_endpoint (channel), fd);
    //  Answer with ours, so the peer knows who and what version we are. A
    //  peer already gone (a child killed before its hello was read) makes
    //  the send close the channel and drop it from the table: our
    //  reference keeps it alive for the hook, which learns it is closed.
    tri_channel_ref (channel);
    tri_channel_send_hello (channel);
    if (s_peer.on_hello)
        s_peer.on_hello (hello.uid, channel, 0);
    tri_channel_unref (&channel);
}

//  Decode a frame (taken). On failure type and cid say what it was, as far
//  as they can be read, and why what was wrong.
static int
s_decode (zmq_msg_t *frame, tri_msg_t **msg, int *type, uint64_t *cid,
          char *why, size_t why_size)
{
    return tri_msg_decode_typed (frame, tri_limits (), msg, type, cid, why, why_size);
}

//  Decode a frame (taken) of channel's peer; NULL, with the channel told
//  of the bad frame, if it cannot be.
static tri_msg_t *
s_decode_for (tri_channel_t *channel, zmq_msg_t *frame)
{
    tri_msg_t *msg = NULL;
    uint64_t cid = 0;
    int type;
    char why [256];
    int rc = s_decode (frame, &msg, &type, &cid, why, sizeof why);
    if (rc)
        tri_channel_bad_frame (channel, rc, why, type, cid);
    return msg;
}

//  Decode a frame (taken) of channel's peer and hand it to the channel.
static void
s_dispatch (tri_channel_t *channel, zmq_msg_t *frame)
{
    tri_msg_t *msg = s_decode_for (channel, frame);
    if (msg)
        tri_channel_dispatch (channel, msg);
}

//  The channel of the peer with this routing id, or NULL.
static tri_channel_t *
s_lookup (const uint8_t *rid, size_t rid_size)
{
    tri_channel_t *channel = s_peer.last;
    if (!channel || !tri_channel_has_rid (channel, rid, rid_size)) {
        char key [513];
        tri_rid_key (key, rid, rid_size);
        if ((channel = zhashx_lookup (s_peer.channels, key)))
            s_peer.last = channel;
    }
    return channel;
}

//  One frame from the ROUTER (rid already read).
static void
s_on_router_frame (const uint8_t *rid, size_t rid_size, zmq_msg_t *frame)
{
    //  [type, ...]: a fixarray, then the type as a positive fixint.
    const uint8_t *data = zmq_msg_data (frame);
    bool hello = zmq_msg_size (frame) >= 2 && data [1] == TRI_HELLO;
    tri_channel_t *channel = s_lookup (rid, rid_size);
    //  A peer of 1.4 or later has a routing id of its own that no other
    //  peer knows: a frame with it is that peer's, whichever connection
    //  it came on. Its open channel takes it without asking libzmq for
    //  the descriptor. A hello, and every frame of older peers, is judged
    //  by its connection.
    if (channel && !hello && tri_channel_minor (channel) >= 4 && !tri_channel_closed (channel)) {
        s_dispatch (channel, frame);
        return;
    }
    //  The connection the frame came on (read before the frame is taken).
    int fd = zmq_msg_get (frame, ZMQ_SRCFD);
    if (fd >= 0 && fd < s_peer.nconns && s_peer.conns [fd].ignored) {
        //  Unless the descriptor is another connection's by now.
        s_monitor_drain (true);
        if (s_peer.conns [fd].ignored) {
            zmq_msg_close (frame);
            return;
        }
    }
    //  A frame of a known peer on the connection its hello came on is
    //  its own: the hot path reads nothing more. A hello, a frame of an
    //  unknown routing id or one from another descriptor is judged once
    //  the monitor has been read, so that the connections that ended or
    //  began before it are known.
    if (hello || !channel || s_came_on (channel, fd) != 1) {
        s_monitor_drain (true);
        channel = s_lookup (rid, rid_size);
    }
    //  A peer is known by its routing id on the connection its hello
    //  came on only: another connection with that id says hello first.
    //  On a descriptor closed and accepted again, a hello is the new
    //  peer's; anything else may be the departed peer's last frames, and
    //  goes to its channel, which closes when the departures run, at the
    //  end of this read.
    if (channel) {
        int on = s_came_on (channel, fd);
        if (on == 2)
            on = hello? 0: 1;
        if (!on)
            channel = NULL;
    }
    if (channel) {
        s_dispatch (channel, frame);
        return;
    }
    tri_msg_t *msg = NULL;
    uint64_t cid = 0;
    int type;
    char why [256];
    int rc = s_decode (frame, &msg, &type, &cid, why, sizeof why);
    if (rc) {
        tri_channel_log_bad (NULL, why);
        if (type != TRI_ERROR)
            tri_socket_reply_error (s_peer.router, &s_peer.router_watch, rid, rid_size,
                                    cid, rc, tri_msg_rc_type (rc), "%s", why);
        return;
    }
    if (msg->type == TRI_HELLO)
        s_on_hello (rid, rid_size, msg, fd);
    else
    if (msg->type == TRI_ERROR)
        tri_channel_log_bad (NULL, "error frame before hello (not answered)");
    else {
        tri_channel_log_bad (NULL, "frame before hello");
        tri_socket_reply_error (s_peer.router, &s_peer.router_watch, rid, rid_size, msg->cid,
                                TR_EPROTO, "ProtocolError", "%s before hello: say hello first",
                                tri_msg_type_name (msg->type));
    }
    tri_msg_destroy (&msg);
}

//  Read one message, or (drain) up to a batch until the socket is empty.
//  After its routing id, each part of a message is one frame.
static void
s_on_router (tri_watch_t *watch, bool drain)
{
    void *router = s_peer.router;
    for (int i = 0; i < (drain? TRI_BATCH: 1); i++) {
        zmq_msg_t rid, frame;
        zmq_msg_init (&rid);
        if (zmq_msg_recv (&rid, router, ZMQ_DONTWAIT) < 0) {
            if (errno == EAGAIN)
                tri_loop_idle (watch);
            zmq_msg_close (&rid);
            break;
        }
        tri_loop_touch (watch);
        const uint8_t *id = zmq_msg_data (&rid);
        size_t id_size = zmq_msg_size (&rid);
        bool more = zmq_msg_more (&rid);
        while (more) {
            zmq_msg_init (&frame);
            if (zmq_msg_recv (&frame, router, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close (&frame);
                break;
            }
            more = zmq_msg_more (&frame);
            s_on_router_frame (id, id_size, &frame);
        }
        zmq_msg_close (&rid);
    }
    s_departures_run ();
}

//  The endpoint our children are given: the ROUTER's second listener, on
//  the same transport as the public one (tri_socket_link). A fresh ipc
//  file beside the public one, named so that the sweep knows it: the
//  uuid's last eight characters.
static void
s_local_address (const char *public, char *address, size_t size)
{
    const char *uuid = strchr (tri_uid (), '@');
    const char *tag = uuid && strlen (uuid + 1) >= 16? uuid + strlen (uuid) - 8: "1";
    char dir [128];
    if (strncmp (public, "tcp://", 6) == 0)
        snprintf (address, size, "tcp://127.0.0.1:*");
    else
    if (tri_secure_ipc_dir (dir, sizeof dir) == 0)
        snprintf (address, size, "ipc://%s/%d-%.8s.ipc", dir, (int) getpid (), tag);
    else
        *address = 0;
}

const char *
tri_peer_local_endpoint (void)
{
    return s_peer.local? s_peer.local: tri_actor ()->endpoint;
}

int
tri_peer_listen (const char *bind)
{
    char address [256];
    if (!bind || streq (bind, "ipc")) {
        //  In a directory only this user can enter: an ipc endpoint is
        //  reached by whoever can open the file.
        char dir [128];
        int rc = tri_secure_ipc_dir (dir, sizeof dir);
        if (rc)
            return rc;
        const char *uuid = strchr (tri_uid (), '@');
        snprintf (address, sizeof address, "ipc://%s/%d-%.8s.ipc",
                  dir, (int) getpid (), uuid? uuid + 1: "0");
    }
    else
    if (streq (bind, "tcp"))
        snprintf (address, sizeof address, "tcp://127.0.0.1:*");
    else
        snprintf (address, sizeof address, "%s", bind);
    int rc = tri_secure_check_bind (address);
    if (rc)
        return rc;

    if (!(s_peer.channels = zhashx_new ()))
        return TR_ENOMEM;
    zhashx_set_destructor (s_peer.channels, NULL);
    if (!(s_peer.router = zmq_socket (tri_zctx (), ZMQ_ROUTER)))
        return TR_ESYS;
    int one = 1;
    zmq_setsockopt (s_peer.router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    //  Heartbeats of our own on the public listener: a peer's TTL alone
    //  would not do, since libzmq arms it at each ping the peer sends and
    //  disarms it at any message that follows, so a peer stopped just
    //  after it sent something would never be dropped. Our pings are
    //  answered by the peer's I/O thread, however busy its tasks are.
    tri_socket_options (s_peer.router, true);
    //  Small answers are not counted in bytes (channel.c): at most this
    //  many messages wait for one peer; a send past it is the peer's
    //  overflow, as its byte bound is.
    int hwm = TRI_ROUTER_SNDHWM;
    zmq_setsockopt (s_peer.router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if ((rc = tri_secure_server (s_peer.router)))
        return rc;
    tri_channel_on_overflow (s_on_overflow);
    //  Before the bind, so that no connection is accepted unseen. The
    //  monitor's queue has no limit: a lost DISCONNECTED would be a peer
    //  never forgotten. A socket has one monitor: this one also carries
    //  the failed handshakes secure.c logs.
    static unsigned runs = 0;
    char monitor [64];
    snprintf (monitor, sizeof monitor, "inproc://troupe-router-monitor-%u", ++runs);
    int zero = 0;
    if (zmq_socket_monitor (s_peer.router, monitor, ZMQ_EVENT_ACCEPTED
                            | ZMQ_EVENT_DISCONNECTED | tri_secure_events ())
    ||  !(s_peer.monitor = zmq_socket (tri_zctx (), ZMQ_PAIR))
    ||  zmq_setsockopt (s_peer.monitor, ZMQ_LINGER, &zero, sizeof zero)
    ||  zmq_setsockopt (s_peer.monitor, ZMQ_RCVHWM, &zero, sizeof zero)
    ||  zmq_connect (s_peer.monitor, monitor)) {
        tri_log_error ("TR-MONITOR", "cannot monitor the ROUTER: %s", zmq_strerror (errno));
        return TR_ESYS;
    }
    if ((rc = tri_loop_watch_socket (&s_peer.monitor_watch, s_peer.monitor,
                                     s_on_router_monitor, NULL)))
        return rc;
    if (zmq_bind (s_peer.router, address)) {
        tri_log_error ("TR-BIND", "cannot bind %s: %s", address, zmq_strerror (errno));
        return TR_ESYS;
    }
    char last [256];
    size_t size = sizeof last;
    zmq_getsockopt (s_peer.router, ZMQ_LAST_ENDPOINT, last, &size);
    if ((rc = tri_rt_set_endpoint (last)))
        return rc;
    //  Children connect to a second listener without heartbeats, on an
    //  I/O thread of its own: their liveness is seen from their process
    //  state (spawn.c, actor.c). libzmq copies the options into a
    //  listener as it binds; the CURVE ones hold for both.
    s_local_address (last, address, sizeof address);
    if (!*address || tri_secure_check_bind (address)) {
        tri_log_error ("TR-BIND", "no endpoint for children beside %s", last);
        return TR_ESYS;
    }
    tri_socket_link (s_peer.router, false);
    if (zmq_bind (s_peer.router, address)) {
        tri_log_error ("TR-BIND", "cannot bind %s: %s", address, zmq_strerror (errno));
        return TR_ESYS;
    }
    size = sizeof last;
    zmq_getsockopt (s_peer.router, ZMQ_LAST_ENDPOINT, last, &size);
    if (!(s_peer.local = strdup (last)))
        return TR_ENOMEM;
    return tri_loop_watch_socket (&s_peer.router_watch, s_peer.router, s_on_router, NULL);
}

//  --------------------------------------------------------------------------
//  DEALERs

//  The peer's hello names it; an error before it is its refusal of ours.
static void
s_on_dealer_frame (tri_dealer_t *self, zmq_msg_t *frame)
{
    tri_msg_t *msg = s_decode_for (self->channel, frame);
    if (!msg)
        return;
    char why [256];
    tri_hello_t hello;
    if (msg->type == TRI_HELLO && !self->hello_done
    &&  tri_msg_read_hello (msg, &hello, why, sizeof why) == 0) {
        if (tri_channel_set_peer (self->channel, hello.uid, hello.endpoint, (int) hello.pid))
            self->hello_rc = TR_ENOMEM;
        else {
            self->hello_done = true;
            tri_channel_set_minor (self->channel, (int) hello.minor);
        }
        tri_waitq_wake_all (&self->hello_waiters, 0);
        tri_msg_destroy (&msg);
    }
    else
    if (!self->hello_done && msg->type == TRI_ERROR && msg->cid == 0) {
        tr_error_t *err = tri_error_unpack (&msg->body, tri_channel_uid (self->channel));
        tri_log_warn ("TR-REFUSED", "%s refused us: %s", tri_channel_endpoint (self->channel),
                      err? tr_error_message (err): "?");
        self->hello_rc = err? tr_error_code (err): TR_EPROTO;
        if (err && !self->refusal)
            self->refusal = tr_error_dup (err);
        tri_channel_close (self->channel, err, false);
        tri_waitq_wake_all (&self->hello_waiters, 0);
        tri_msg_destroy (&msg);
    }
    else
        tri_channel_dispatch (self->channel, msg);
}

//  Read one message, or (drain) up to a batch until the socket is empty;
//  each part of a message is one frame.
static void
s_on_dealer (tri_watch_t *watch, bool drain)
{
    tri_dealer_t *self = watch->arg;
    bool more = false;
    for (int i = 0; (more || i < (drain? TRI_BATCH: 1)) && watch->active; i++) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, self->socket, ZMQ_DONTWAIT) < 0) {
            if (errno == EAGAIN)
                tri_loop_idle (watch);
            zmq_msg_close (&frame);
            return;
        }
        tri_loop_touch (watch);
        more = zmq_msg_more (&frame);
        s_on_dealer_frame (self, &frame);
    }
}

static void
s_on_monitor (tri_watch_t *watch, bool drain)
{
    (void) drain;
    tri_dealer_t *self = watch->arg;
    for (int i = 0; i < TRI_BATCH && watch->active; i++) {
        zmq_msg_t event, address;
        zmq_msg_init (&event);
        zmq_msg_init (&address);
        if (zmq_msg_recv (&event, self->monitor, ZMQ_DONTWAIT) < 0) {
            if (errno == EAGAIN)
                tri_loop_idle (watch);
            zmq_msg_close (&event);
            zmq_msg_close (&address);
            return;
        }
        tri_loop_touch (watch);
        uint16_t code = 0;
        if (zmq_msg_size (&event) >= 2)
            memcpy (&code, zmq_msg_data (&event), 2);
        if (zmq_msg_more (&event))
            zmq_msg_recv (&address, self->monitor, ZMQ_DONTWAIT);
        zmq_msg_close (&event);
        zmq_msg_close (&address);
        tri_channel_t *channel = self->channel;
        if (code == ZMQ_EVENT_DISCONNECTED && self->hello_done && !tri_channel_closed (channel)) {
            if (tri_channel_end_expected (channel))
                tri_log_debug ("TR-LOST", "%s at %s is gone, as it said it would",
                               tri_channel_uid (channel), tri_channel_endpoint (channel));
            else
                tri_log_warn ("TR-LOST", "connection to %s at %s lost", tri_channel_uid (channel),
                              tri_channel_endpoint (channel));
            //  What came before the connection went is read first; nothing
            //  can come after it, so there is no drain period to wait.
            int events = 0;
            size_t size = sizeof events;
            while (!tri_channel_closed (channel) && self->watch.active
            &&     zmq_getsockopt (self->socket, ZMQ_EVENTS, &events, &size) == 0
            &&     (events & ZMQ_POLLIN))
                s_on_dealer (&self->watch, true);
            if (!tri_channel_closed (channel))
                tri_channel_close (channel, tri_error_new (TR_ECLOSED, "ConnectionLost",
                                   tri_channel_uid (channel), "connection to %s at %s lost: the "
                                   "actor died or was silent past the heartbeat timeout",
                                   tri_channel_uid (channel), tri_channel_endpoint (channel)), false);
            //  The channel is over: libzmq must not connect again and
            //  hand what it still queued to whoever listens there next.
            zmq_disconnect (self->socket, self->connected);
            if (self->on_lost) {
                self->on_lost (self);
                return;
            }
        }
    }
}

static int
s_monitor_open (tri_dealer_t *self)
{
    //  A name never used before: the endpoint of a closed monitor is
    //  unbound asynchronously, and a new DEALER may get the old one's
    //  address.
    static uint64_t sequence = 0;
    char address [64];
    snprintf (address, sizeof address, "inproc://troupe-monitor-%llu",
              (unsigned long long) ++sequence);
    if (zmq_socket_monitor (self->socket, address, ZMQ_EVENT_DISCONNECTED))
        return TR_ESYS;
    if (!(self->monitor = zmq_socket (tri_zctx (), ZMQ_PAIR)))
        return TR_ESYS;
    int zero = 0;
    zmq_setsockopt (self->monitor, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect (self->monitor, address))
        return TR_ESYS;
    return tri_loop_watch_socket (&self->monitor_watch, self->monitor, s_on_monitor, self);
}

//  Fail an open with rc and why, as the caller's *error if it wants one.
static int
s_open_failed (tr_error_t **error, int rc, const char *type, const char *endpoint,
               const char *why)
{
    if (error)
        *error = tri_error_new (rc, type, tri_uid (), "cannot open a connection to %s: %s",
                                endpoint, why);
    return rc;
}

int
tri_dealer_open (const char *endpoint, bool parent, tri_dealer_t **dealer_p, tr_error_t **error)
{
    if (error)
        *error = NULL;
    //  A connection to a peer costs descriptors, the last of them in
    //  libzmq's I/O thread, where running out is only retried in silence:
    //  refused while they are short. The parent's connection is the one a
    //  child cannot do without, and is made first.
    char why [128];
    if (!parent && tri_fds_check (TRI_FDS_PORTAL, why, sizeof why)) {
        tri_log_warn ("TR-SOCKET", "cannot open a connection to %s: %s", endpoint, why);
        return s_open_failed (error, TR_ESYS, "TooManyOpenFiles", endpoint, why);
    }
    tri_dealer_t *self = calloc (1, sizeof *self);
    if (!self)
        return s_open_failed (error, TR_ENOMEM, "NoMemory", endpoint, "out of memory");
    tri_waitq_init (&self->hello_waiters);
    tri_node_init (&self->node);
    int rc = TR_ESYS;
    if (!(self->socket = zmq_socket (tri_zctx (), ZMQ_DEALER))) {
        //  Out of descriptors, most often: libzmq's mailbox is one.
        snprintf (why, sizeof why, "no socket: %s", zmq_strerror (errno));
        tri_log_warn ("TR-SOCKET", "cannot open a socket to %s: %s", endpoint,
                      zmq_strerror (errno));
        goto fail;
    }
    //  Heartbeats to remote peers; none to the parent, on its local
    //  endpoint: its pidfd tells us when it exits, its process state when
    //  it is stopped (actor.c).
    tri_socket_options (self->socket, !parent);
    tri_secure_client (self->socket);
    //  A routing id of our own, that no other peer can guess: the peer
    //  then takes a frame with it as ours whichever connection it came on
    //  (protocol 1.4). Its first byte is not 0, which libzmq keeps for the
    //  ids it makes up itself.
    uint8_t rid [TRI_RID_SIZE];
    if (getrandom (rid, sizeof rid, 0) != (ssize_t) sizeof rid) {
        snprintf (why, sizeof why, "no random bytes for a routing id: %s", strerror (errno));
        tri_log_error ("TR-RANDOM", "%s", why);
        goto fail;
    }
    rid [0] |= 0x80;
    zmq_setsockopt (self->socket, ZMQ_ROUTING_ID, rid, sizeof rid);
    if (!(self->connected = strdup (endpoint))) {
        rc = TR_ENOMEM;
        goto fail;
    }
    if (zmq_connect (self->socket, endpoint)) {
        snprintf (why, sizeof why, "%s", zmq_strerror (errno));
        tri_log_warn ("TR-CONNECT", "cannot connect to %s: %s", endpoint, why);
        goto fail;
    }
    rc = TR_ENOMEM;
    if (!(self->channel = tri_channel_new (self->socket, &self->watch, NULL, 0))
    ||  tri_channel_set_peer (self->channel, parent? "parent": endpoint, endpoint, 0))
        goto fail;
    //  Watch the connection: the peer is no child of ours, no pidfd tells
    //  us when it dies or stops answering.
    if ((rc = s_monitor_open (self))) {
        snprintf (why, sizeof why, "no monitor: %s", zmq_strerror (errno));
        tri_log_error ("TR-MONITOR", "cannot monitor the connection to %s: %s", endpoint,
                       zmq_strerror (errno));
        goto fail;
    }
    if ((rc = tri_loop_watch_socket (&self->watch, self->socket, s_on_dealer, self))) {
        snprintf (why, sizeof why, "cannot watch the socket");
        goto fail;
    }
    tri_list_push_back (&s_peer.dealers, &self->node);
    tri_channel_send_hello (self->channel);
    *dealer_p = self;
    return 0;
fail:
    tri_dealer_close (&self);
    if (rc == TR_ENOMEM)
        return s_open_failed (error, rc, "NoMemory", endpoint, "out of memory");
    return s_open_failed (error, rc, "ConnectError", endpoint, why);
}

int
tri_dealer_await_hello (tri_dealer_t *self, int64_t deadline, tr_error_t **error)
{
    if (error)
        *error = NULL;
    int rc = 0;
    while (!self->hello_done && !self->hello_rc && !rc)
        rc = tri_waitq_wait (&self->hello_waiters, deadline);
    if (self->hello_done)
        return 0;
    if (self->hello_rc && error)
        *error = tr_error_dup (self->refusal);
    return self->hello_rc? self->hello_rc: rc;
}

void
tri_dealer_on_lost (tri_dealer_t *self, void (*fn) (tri_dealer_t *dealer))
{
    self->on_lost = fn;
}

tri_channel_t *
tri_dealer_channel (const tri_dealer_t *self)
{
    return self->channel;
}

void
tri_dealer_close (tri_dealer_t **self_p)
{
    tri_dealer_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    tri_node_unlink (&self->node);
    if (self->channel && !tri_channel_closed (self->channel))
        tri_channel_close (self->channel, NULL, false);
    tri_waitq_wake_all (&self->hello_waiters, TR_ECLOSED);
    tri_loop_unwatch (&self->monitor_watch);
    tri_loop_unwatch (&self->watch);
    if (self->monitor) {
        zmq_socket_monitor (self->socket, NULL, 0);
        zmq_close (self->monitor);
    }
    if (self->socket)
        zmq_close (self->socket);
    tri_channel_unref (&self->channel);
    tr_error_destroy (&self->refusal);
    free (self->connected);
    free (self);
}

//  --------------------------------------------------------------------------
//  Shutdown

void
tri_peer_stop (void)
{
    tri_node_t *node;
    while ((node = tri_list_first (&s_peer.dealers))) {
        tri_dealer_t *dealer = tri_list_entry (node, tri_dealer_t, node);
        tri_dealer_close (&dealer);
    }
    if (s_peer.channels) {
        tri_channel_t *channel;
        while ((channel = zhashx_first (s_peer.channels))) {
            zhashx_delete (s_peer.channels, tri_channel_key (channel));
            tri_channel_on_released (channel, NULL);
            if (!tri_channel_closed (channel))
                tri_channel_close (channel, NULL, false);
            tri_channel_unref (&channel);
        }
        zhashx_destroy (&s_peer.channels);
    }
    s_peer.last = NULL;
    tri_timer_stop (&s_peer.probe);
    while (s_peer.nsuspects)
        s_suspect_drop (0);
    free (s_peer.suspects);
    s_peer.suspects = NULL;
    s_peer.suspects_max = 0;
    while (s_peer.ndeparted)
        tri_channel_unref (&s_peer.departed [--s_peer.ndeparted].channel);
    free (s_peer.departed);
    s_peer.departed = NULL;
    s_peer.departed_max = 0;
    free (s_peer.conns);
    s_peer.conns = NULL;
    s_peer.nconns = 0;
    tri_loop_unwatch (&s_peer.monitor_watch);
    if (s_peer.monitor) {
        zmq_socket_monitor (s_peer.router, NULL, 0);
        zmq_close (s_peer.monitor);
        s_peer.monitor = NULL;
    }
    tri_loop_unwatch (&s_peer.router_watch);
    if (s_peer.router)
        zmq_close (s_peer.router);
    s_peer.router = NULL;
    tri_ipc_unlink (tri_actor ()->endpoint);
    tri_ipc_unlink (s_peer.local);
    free (s_peer.local);
    s_peer.local = NULL;
    s_peer.on_hello = NULL;
    s_peer.on_departed = NULL;
}
