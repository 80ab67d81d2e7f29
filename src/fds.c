/*  =========================================================================
    fds.c - descriptors: the limit, the headroom, the guarded listeners

    An actor spends descriptors on every child (a pidfd and the child's
    connection) and on every peer that connects to it. Out of descriptors,
    libzmq's ipc listener aborts the process: its accept treats EMFILE as
    a bug (the tcp listener tolerates it, and then spins on the pending
    connection). So descriptors are kept from running out:

    - at start the soft RLIMIT_NOFILE is raised to the hard one;
    - a spawn is refused with TR_ESYS "too many open files" while fewer
      than TRI_FDS_SPAWN descriptors are free (tri_fds_check);
    - the ROUTER's listening socket is guarded: a connection accepted
      into one of the last TRI_FDS_RESERVE descriptors is closed at once,
      and an accept that meets EMFILE anyway takes a spare descriptor
      held for the purpose, accepts and closes the connection, and says
      ECONNABORTED, which libzmq ignores. A refused peer's libzmq
      reconnects on its own, and is accepted once descriptors are back.
      One warning says when refusing starts, one line when it ends.

    libzmq offers no other way to stop accepting: zmq_unbind ends every
    connection accepted through the endpoint (its sessions are the
    listener's children), and ZMQ_BACKLOG only sizes the kernel's queue.
    So accept and accept4 are defined here, ahead of the C library's in
    the lookup order of libzmq's calls, and behave as the C library's for
    every descriptor but the guarded ones. The guard state is read by
    libzmq's I/O thread: it is all atomics.
    =========================================================================
*/
#include "troupe_private.h"
#include "tri_fds.h"
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define TRI_FDS_LISTENERS 4

static atomic_int s_limit;                  //  the soft limit, 0 before start
static atomic_int s_spare = -1;             //  held for the accept guard
static atomic_int s_listeners [TRI_FDS_LISTENERS] = { -1, -1, -1, -1 };
static atomic_ulong s_refused;              //  connections refused
static atomic_bool s_refusing;              //  since the last accepted one

//  --------------------------------------------------------------------------
//  Raise the soft limit to the hard one and hold the spare descriptor.
//  Idempotent: an actor may start more than once in a process.

void
tri_fds_start (void)
{
    struct rlimit rl;
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rlim_t was = rl.rlim_cur;
            rl.rlim_cur = rl.rlim_max;
            if (setrlimit (RLIMIT_NOFILE, &rl))
                rl.rlim_cur = was;
            else
                tri_log_debug ("TR-FDS", "descriptor limit raised from %llu to %llu",
                               (unsigned long long) was, (unsigned long long) rl.rlim_cur);
        }
        atomic_store (&s_limit, rl.rlim_cur > INT_MAX? INT_MAX: (int) rl.rlim_cur);
    }
    if (atomic_load (&s_spare) < 0)
        atomic_store (&s_spare, open ("/dev/null", O_RDONLY | O_CLOEXEC));
}

//  Forget the guarded listeners: their descriptors close with the ROUTER.
void
tri_fds_stop (void)
{
    for (int i = 0; i < TRI_FDS_LISTENERS; i++)
        atomic_store (&s_listeners [i], -1);
}

//  --------------------------------------------------------------------------
//  Descriptors free under the soft limit, as the lowest free descriptor
//  says: every one below it is open. Exact while descriptors are dense,
//  as they are given out lowest first; holes left by closed ones make it
//  say more are free than are, by the number of descriptors open above
//  the lowest hole, and the next ones opened fill the holes first. Counting
//  /proc/self/fd would be exact but costs milliseconds at thousands of
//  descriptors, too much for every spawn.

int
tri_fds_free (void)
{
    int limit = atomic_load (&s_limit);
    if (limit <= 0) {
        struct rlimit rl;
        if (getrlimit (RLIMIT_NOFILE, &rl))
            return INT_MAX;
        limit = rl.rlim_cur > INT_MAX? INT_MAX: (int) rl.rlim_cur;
    }
    int spare = atomic_load (&s_spare);
    int lowest = fcntl (spare >= 0? spare: STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
    if (lowest < 0)
        return errno == EMFILE? 0: INT_MAX;
    close (lowest);
    return limit > lowest? limit - lowest: 0;
}

int
tri_fds_check (int need, char *why, size_t why_size)
{
    int free_fds = tri_fds_free ();
    if (free_fds >= need)
        return 0;
    int limit = atomic_load (&s_limit);
    return tri_why (why, why_size, TR_ESYS,
                    "too many open files (%d of %d descriptors in use, %d more needed)",
                    limit - free_fds, limit, need - free_fds);
}

unsigned long
tri_fds_refused (void)
{
    return atomic_load (&s_refused);
}

//  --------------------------------------------------------------------------
//  Guard the listening socket bound to endpoint (as ZMQ_LAST_ENDPOINT
//  spells it): found among our descriptors by its address, since libzmq
//  does not tell which it is. Returns 0, or TR_ESYS if none matches.

static bool
s_is_endpoint (int fd, const char *endpoint)
{
    int listening = 0;
    socklen_t size = sizeof listening;
    if (getsockopt (fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) || !listening)
        return false;
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname (fd, (struct sockaddr *) &addr, &len))
        return false;
    if (strncmp (endpoint, "ipc://", 6) == 0) {
        const struct sockaddr_un *un = (const struct sockaddr_un *) &addr;
        if (addr.ss_family != AF_UNIX)
            return false;
        if (endpoint [6] == '@')        //  abstract: a NUL, then the name
            return un->sun_path [0] == 0
                && len - offsetof (struct sockaddr_un, sun_path) == strlen (endpoint + 6)
                && memcmp (un->sun_path + 1, endpoint + 7, strlen (endpoint + 7)) == 0;
        return streq (un->sun_path, endpoint + 6);
    }
    const char *colon = strrchr (endpoint, ':');
    if (strncmp (endpoint, "tcp://", 6) || !colon)
        return false;
    int port = atoi (colon + 1);
    if (addr.ss_family == AF_INET)
        return ntohs (((const struct sockaddr_in *) &addr)->sin_port) == port;
    if (addr.ss_family == AF_INET6)
        return ntohs (((const struct sockaddr_in6 *) &addr)->sin6_port) == port;
    return false;
}

static void
s_guard_fd (int fd)
{
    for (int i = 0; i < TRI_FDS_LISTENERS; i++) {
        int none = -1;
        if (atomic_compare_exchange_strong (&s_listeners [i], &none, fd))
            return;
    }
}

int
tri_fds_guard (const char *endpoint)
{
    if (!endpoint)
        return TR_EINVAL;
    int found = 0;
    DIR *dir = opendir ("/proc/self/fd");
    if (dir) {
        struct dirent *entry;
        while ((entry = readdir (dir))) {
            int fd = atoi (entry->d_name);
            if (entry->d_name [0] != '.' && fd != dirfd (dir) && s_is_endpoint (fd, endpoint)) {
                s_guard_fd (fd);
                found++;
            }
        }
        closedir (dir);
    }
    else {
        int limit = atomic_load (&s_limit);
        for (int fd = 0; fd < limit && fd < 65536; fd++)
            if (s_is_endpoint (fd, endpoint)) {
                s_guard_fd (fd);
                found++;
            }
    }
    if (!found)
        tri_log_warn ("TR-FDS", "cannot find the listening socket of %s: connections are "
                      "not guarded against running out of descriptors", endpoint);
    return found? 0: TR_ESYS;
}

//  --------------------------------------------------------------------------
//  The accept guard, in libzmq's I/O thread.

static bool
s_guarded (int fd)
{
    for (int i = 0; i < TRI_FDS_LISTENERS; i++)
        if (atomic_load (&s_listeners [i]) == fd)
            return true;
    return false;
}

static int
s_accept (int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int conn = (int) syscall (SYS_accept4, fd, addr, len, flags);
    if (!s_guarded (fd))
        return conn;
    int limit = atomic_load (&s_limit);
    if (conn >= 0) {
        //  Descriptors are handed out lowest first: this one's number
        //  says that many are open.
        if (limit <= 0 || conn < limit - TRI_FDS_RESERVE) {
            if (atomic_exchange (&s_refusing, false))
                tri_log_info ("TR-FDS", "accepting connections again (%lu refused so far)",
                              atomic_load (&s_refused));
            return conn;
        }
        close (conn);
    }
    else
    if (errno == EMFILE || errno == ENFILE) {
        //  The connection would stay pending and the listener would be
        //  woken for it again and again: refuse it on the spare.
        int spare = atomic_exchange (&s_spare, -1);
        if (spare >= 0) {
            close (spare);
            int taken = (int) syscall (SYS_accept4, fd, NULL, NULL, SOCK_CLOEXEC);
            if (taken >= 0)
                close (taken);
            atomic_store (&s_spare, open ("/dev/null", O_RDONLY | O_CLOEXEC));
        }
    }
    else
        return conn;
    atomic_fetch_add (&s_refused, 1);
    //  One line when refusing starts, not one per connection.
    if (!atomic_exchange (&s_refusing, true))
        tri_log_warn ("TR-FDS", "too many open files: refusing connections until "
                      "descriptors are closed (limit %d)", limit);
    errno = ECONNABORTED;
    return -1;
}

//  glibc declares the address as a transparent union under _GNU_SOURCE.
#if defined (__GLIBC__) && defined (__USE_GNU)
#   define TRI_SOCKADDR_ARG __SOCKADDR_ARG
#   define TRI_SOCKADDR(a) ((a).__sockaddr__)
#else
#   define TRI_SOCKADDR_ARG struct sockaddr *restrict
#   define TRI_SOCKADDR(a) (a)
#endif

__attribute__ ((visibility ("default"))) int
accept4 (int fd, TRI_SOCKADDR_ARG addr, socklen_t *restrict len, int flags)
{
    return s_accept (fd, TRI_SOCKADDR (addr), len, flags);
}

__attribute__ ((visibility ("default"))) int
accept (int fd, TRI_SOCKADDR_ARG addr, socklen_t *restrict len)
{
    return s_accept (fd, TRI_SOCKADDR (addr), len, 0);
}
