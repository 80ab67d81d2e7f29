/*  =========================================================================
    hops.c - where a round trip's time goes, hop by hop

    Loaded into bench_rpc and its children with LD_PRELOAD (make
    bench-hops): it wraps the calls that mark a message's way from one
    thread to the next and notes when each happened, in each thread, for
    a window of HOPS_WINDOW_MS milliseconds starting at HOPS_T0 (a
    CLOCK_MONOTONIC time in nanoseconds, the same in every process):

        E   epoll_wait or a waiting poll returned with something ready
        Z   a thread is about to sleep in epoll_wait or a waiting poll
        W   an 8-byte write: a libzmq mailbox signal (eventfd)
        S   send: an I/O thread writes a message to the socket
        R   recv: an I/O thread read bytes from the socket

    At the window's end each thread writes what it noted to
    HOPS_DIR/ev.PID.TID, first line "main" or "io". bench/hops.py puts
    the threads of both processes side by side and follows each call
    from the root's signal to its I/O thread, through the child and
    back, to the root's signal of the next call.

    The wrappers add one clock read per call (about 30 ns); what they
    measure is the same for troupe and for the raw reference, so their
    difference is troupe's. Not part of libtroupe.
    =========================================================================
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HOPS_MAX 500000         //  events per thread in the window at most

typedef struct {
    long long ns;
    char what;
} hop_t;

static __thread hop_t *s_hops;
static __thread int s_count;
static __thread int s_done;
static long long s_start = -1, s_end;

static long long
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
s_dump (void)
{
    const char *dir = getenv ("HOPS_DIR");
    long tid = syscall (SYS_gettid);
    long pid = syscall (SYS_getpid);
    char path [512];
    snprintf (path, sizeof path, "%s/ev.%ld.%ld", dir? dir: "/tmp", pid, tid);
    FILE *file = fopen (path, "w");
    if (file) {
        fprintf (file, "%s\n", tid == pid? "main": "io");
        for (int i = 0; i < s_count; i++)
            fprintf (file, "%lld %c\n", s_hops [i].ns, s_hops [i].what);
        fclose (file);
    }
    free (s_hops);
    s_hops = NULL;
    s_done = 1;
}

static void
s_note (char what)
{
    if (s_done)
        return;
    if (s_start < 0) {
        const char *t0 = getenv ("HOPS_T0");
        const char *window = getenv ("HOPS_WINDOW_MS");
        s_start = t0? atoll (t0): 0;
        s_end = s_start + (window? atoll (window): 300) * 1000000LL;
    }
    long long now = s_now ();
    if (now < s_start)
        return;
    if (now > s_end || s_count == HOPS_MAX) {
        s_dump ();
        return;
    }
    if (!s_hops && !(s_hops = malloc (HOPS_MAX * sizeof *s_hops))) {
        s_done = 1;
        return;
    }
    s_hops [s_count].ns = now;
    s_hops [s_count++].what = what;
}

#define REAL(name) \
    static __typeof__ (name) *real; \
    if (!real) \
        real = (__typeof__ (name) *) dlsym (RTLD_NEXT, #name)

//  The wrappers are exported under the wrapped calls' names (aliases), so
//  that the dynamic linker hands them the calls libzmq and libtroupe make.

static int
s_poll (struct pollfd *fds, nfds_t nfds, int timeout)
{
    REAL (poll);
    if (timeout < 0)
        s_note ('Z');
    int rc = real (fds, nfds, timeout);
    if (timeout != 0 && rc > 0)
        s_note ('E');
    return rc;
}

static int
s_epoll_wait (int epfd, struct epoll_event *events, int max, int timeout)
{
    REAL (epoll_wait);
    if (timeout != 0)
        s_note ('Z');
    int rc = real (epfd, events, max, timeout);
    if (rc > 0)
        s_note ('E');
    return rc;
}

static ssize_t
s_write (int fd, const void *data, size_t size)
{
    REAL (write);
    if (size == 8)
        s_note ('W');
    return real (fd, data, size);
}

static ssize_t
s_send (int fd, const void *data, size_t size, int flags)
{
    REAL (send);
    s_note ('S');
    return real (fd, data, size, flags);
}

static ssize_t
s_recv (int fd, void *data, size_t size, int flags)
{
    REAL (recv);
    ssize_t rc = real (fd, data, size, flags);
    if (rc > 0)
        s_note ('R');
    return rc;
}

#define EXPORT_AS(wrapper, name) \
    __typeof__ (name) name __attribute__ ((alias (#wrapper), visibility ("default")))
EXPORT_AS (s_poll, poll);
EXPORT_AS (s_epoll_wait, epoll_wait);
EXPORT_AS (s_write, write);
EXPORT_AS (s_send, send);
EXPORT_AS (s_recv, recv);
