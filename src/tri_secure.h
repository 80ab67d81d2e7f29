/*  =========================================================================
    tri_secure.h - CURVE keys, the ZAP handler and what may bind (secure.c)

    The lowest layer that knows about keys. The actor starts it before the
    first socket exists; the socket layer (peer.c) asks it to make each
    socket a CURVE server or client, whether an address may be bound, and
    where the private ipc endpoints live.
    =========================================================================
*/
#ifndef TRI_SECURE_H_INCLUDED
#define TRI_SECURE_H_INCLUDED

//  Load the key pair and the allowed keys of dir (NULL: no keys) and bind
//  the ZAP handler in troupe's context, watched by the loop. insecure:
//  allow a non-loopback tcp bind without keys. Returns 0, TR_EINVAL (keys
//  unreadable, said in the log), TR_ESYS or TR_ENOMEM.
int
    tri_secure_start (const char *dir, bool insecure);
//  Close the ZAP handler and forget the keys.
void
    tri_secure_stop (void);
//  True when keys are loaded: every socket speaks CURVE.
bool
    tri_secure_on (void);
//  Make a socket a CURVE server (the ROUTER) or a client that expects the
//  deployment's key (a DEALER); nothing without keys. The server returns
//  0 or TR_ESYS.
int
    tri_secure_server (void *socket);
//  The monitor events of the ROUTER's that secure.c wants (failed
//  handshakes, with keys; else 0): a socket has one monitor, the socket
//  layer's, which hands them to tri_secure_on_event to be logged.
int
    tri_secure_events (void);
void
    tri_secure_on_event (int code, const char *address, size_t size);
void
    tri_secure_client (void *socket);
//  0 if endpoint may be bound; TR_EINVAL (logged, saying how to make keys)
//  for a non-loopback tcp address without keys, unless insecure.
int
    tri_secure_check_bind (const char *endpoint);
//  The directory of this user's ipc endpoints, $TMPDIR/troupe-<uid>, made
//  mode 0700 or checked to be ours and 0700. Returns 0, TR_EINVAL or
//  TR_ESYS (logged).
int
    tri_secure_ipc_dir (char *dir, size_t size);
//  Remove the files of that directory whose actor is gone: no process
//  has its pid here and nothing listens on it (an actor killed by a
//  signal leaves its endpoint behind).
void
    tri_secure_ipc_sweep (void);

#endif
