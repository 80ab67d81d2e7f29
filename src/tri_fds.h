/*  =========================================================================
    tri_fds.h - descriptors: the limit, the headroom, the guarded listeners
    (fds.c)

    The actor starts it first and guards its ROUTER's listening socket
    once bound; spawning a child and connecting to a peer ask it whether
    descriptors are left.
    =========================================================================
*/
#ifndef TRI_FDS_H_INCLUDED
#define TRI_FDS_H_INCLUDED

//  A guarded listener refuses connections while fewer than this many
//  descriptors would be left after accepting.
#define TRI_FDS_RESERVE     16
//  A spawn needs this many free: its own and the reserve left intact.
#define TRI_FDS_SPAWN       (2 * TRI_FDS_RESERVE)
//  A portal needs this many free: its own (its socket's mailbox, its
//  monitor's two, the connection, with room to spare) and the reserve
//  left intact.
#define TRI_FDS_PORTAL      (TRI_FDS_RESERVE + 8)

//  Raise the soft RLIMIT_NOFILE to the hard one; hold the spare descriptor
//  of the accept guard. Idempotent.
void
    tri_fds_start (void);
//  Forget the guarded listeners (the ROUTER is closing).
void
    tri_fds_stop (void);
//  How many descriptors are free under the soft limit.
int
    tri_fds_free (void);
//  0 if need descriptors are free, else TR_ESYS with why "too many open
//  files (...)".
int
    tri_fds_check (int need, char *why, size_t why_size);
//  Guard the listening socket bound to endpoint (ZMQ_LAST_ENDPOINT): refuse
//  its connections while descriptors are short. Returns 0, or TR_ESYS
//  (logged) when no listening socket of ours has that address.
int
    tri_fds_guard (const char *endpoint);
//  How many connections the guard refused.
unsigned long
    tri_fds_refused (void);

#endif
