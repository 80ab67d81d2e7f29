/*  =========================================================================
    tri_peer.h - the sockets and the peers they reach (peer.c)

    The socket layer owns every ZeroMQ socket of the actor: the ROUTER
    bound at its endpoint, a DEALER per peer it connected to (its parent,
    portals opened on an endpoint) and the monitors of those sockets. It
    registers each with the loop, reads and decodes what arrives, makes a
    channel for each peer that says hello, and hands every other frame to
    its channel (channel.c). Together with channel.c it is the channel
    layer.
    =========================================================================
*/
#ifndef TRI_PEER_H_INCLUDED
#define TRI_PEER_H_INCLUDED

typedef struct tri_dealer tri_dealer_t;

//  Bind the ROUTER ("ipc": a fresh private endpoint, "tcp": loopback on
//  a free port, else a ZeroMQ endpoint) and watch it; sets the actor's
//  endpoint; binds it a second time for our children (the same transport
//  on this host, tri_peer_local_endpoint); with keys (secure.c) it is a
//  CURVE server on both. Returns 0,
//  TR_EINVAL (a non-loopback tcp address without keys, or an ipc
//  directory not ours), TR_ESYS or TR_ENOMEM.
int
    tri_peer_listen (const char *bind);
//  The endpoint our children connect to: the ROUTER's second listener,
//  without heartbeats, on the I/O thread of local links (the public one
//  until tri_peer_listen succeeded).
const char *
    tri_peer_local_endpoint (void);
//  Close every socket and forget every channel (runtime shutdown).
void
    tri_peer_stop (void);
//  Called for each peer that says hello on the ROUTER (rc 0, channel its
//  new channel) or is refused for its version (rc TR_EVERSION, channel
//  NULL). The spawning layer registers it.
void
    tri_peer_on_hello (void (*fn) (const char *uid, tri_channel_t *channel, int rc));

//  Called for each ROUTER peer whose connection ended (it left, died, or
//  was silent past the heartbeat timeout), once what it queued is read.
//  Returns true if it takes the channel over (a child of the spawning
//  layer's, which closes it); else the channel is closed with
//  ConnectionLost and forgotten.
void
    tri_peer_on_departed (bool (*fn) (tri_channel_t *channel));
//  How many ROUTER peers have a channel (tr.info's "peers").
size_t
    tri_peer_count (void);

//  A DEALER connected to endpoint, with ZMTP heartbeats, and our hello
//  sent on it. parent: the DEALER to our parent (our uid as routing id),
//  on its local endpoint without heartbeats (actor.c watches it).
//  The connection is watched by a monitor, so that a peer that dies or
//  goes silent past the heartbeat timeout closes the channel, and libzmq
//  does not connect again. Returns 0, TR_ESYS (descriptors short, bad
//  endpoint or no monitor) or TR_ENOMEM, with *error (the caller's, may
//  be NULL) saying why.
int
    tri_dealer_open (const char *endpoint, bool parent, tri_dealer_t **dealer,
                     tr_error_t **error);
//  Wait for the peer's hello. Returns 0, TR_ETIMEDOUT, TR_ECANCELED, or
//  the peer's refusal (TR_EVERSION, ...), with *error its boxed error
//  (the caller's; error may be NULL).
int
    tri_dealer_await_hello (tri_dealer_t *self, int64_t deadline, tr_error_t **error);
//  Called once the peer's connection is lost (after its channel closed).
void
    tri_dealer_on_lost (tri_dealer_t *self, void (*fn) (tri_dealer_t *dealer));
tri_channel_t *
    tri_dealer_channel (const tri_dealer_t *self);
//  Close the channel (its calls fail), the monitor and the socket.
void
    tri_dealer_close (tri_dealer_t **self_p);

#endif
