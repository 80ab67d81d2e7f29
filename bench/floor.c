/*  =========================================================================
    floor.c - what an event loop costs raw libzmq's round trip

    The raw reference of bench_rpc sleeps in a blocking zmq_recv. troupe
    cannot: its loop watches many sockets and descriptors, so it sleeps
    in epoll_wait on each socket's ZMQ_FD. libzmq's descriptor is an edge
    that any call on the socket may consume, so before sleeping the loop
    asks the socket with ZMQ_EVENTS (which also arms the edge), and after
    waking it reads with ZMQ_DONTWAIT. Each of those makes libzmq check
    its mailbox: a getpid and a zero-timeout poll, which the blocking
    recv folds into the poll it sleeps in.

    This program times a DEALER/ROUTER ping-pong done both ways, nothing
    else in either: the blocking one, and one where both sides do what
    troupe's loop does with libzmq (an epoll set holding the socket's
    descriptor beside an idle eventfd and a timerfd; ZMQ_EVENTS before
    each sleep; one message read with ZMQ_DONTWAIT per wake-up). The
    ratio, loop over blocking, is the part of troupe's rpc_rtt ratio
    that no work of troupe's own can remove. Ipc, a 40-byte message each
    way, the sides alternating every 500 round trips; BENCH_ROUNDS (7)
    rounds of BENCH_N (20,000) round trips each, medians printed.

    make bench-floor runs it. Not part of libtroupe or of make bench.
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

#define MESSAGE_SIZE    40
#define CHUNK           500
#define WARMUP          2000

//  One side's way of waiting for a message.
typedef struct {
    void *socket;
    bool loop;                      //  false: blocking recv
    int epfd;
    int idle [2];                   //  an eventfd and a timerfd, never ready
} s_waiter_t;

static int
s_waiter_init (s_waiter_t *self, void *socket, bool loop)
{
    memset (self, 0, sizeof *self);
    self->socket = socket;
    self->loop = loop;
    self->epfd = self->idle [0] = self->idle [1] = -1;
    if (!loop)
        return 0;
    int fd;
    size_t size = sizeof fd;
    if (zmq_getsockopt (socket, ZMQ_FD, &fd, &size)
    ||  (self->epfd = epoll_create1 (EPOLL_CLOEXEC)) < 0
    ||  (self->idle [0] = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0
    ||  (self->idle [1] = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0)
        return -1;
    int fds [] = { fd, self->idle [0], self->idle [1] };
    for (int i = 0; i < 3; i++) {
        struct epoll_event event = { .events = EPOLLIN, .data.fd = fds [i] };
        if (epoll_ctl (self->epfd, EPOLL_CTL_ADD, fds [i], &event))
            return -1;
    }
    return 0;
}

static void
s_waiter_fini (s_waiter_t *self)
{
    if (self->epfd >= 0)
        close (self->epfd);
    for (int i = 0; i < 2; i++)
        if (self->idle [i] >= 0)
            close (self->idle [i]);
}

//  Receive one message part into msg, waiting as this side waits.
static int
s_waiter_recv (s_waiter_t *self, zmq_msg_t *msg)
{
    if (!self->loop)
        return zmq_msg_recv (msg, self->socket, 0);
    while (true) {
        uint32_t events = 0;
        size_t size = sizeof events;
        if (zmq_getsockopt (self->socket, ZMQ_EVENTS, &events, &size))
            return -1;
        if (events & ZMQ_POLLIN)
            return zmq_msg_recv (msg, self->socket, ZMQ_DONTWAIT);
        struct epoll_event ready [8];
        if (epoll_wait (self->epfd, ready, 8, -1) < 0 && errno != EINTR)
            return -1;
        int rc = zmq_msg_recv (msg, self->socket, ZMQ_DONTWAIT);
        if (rc >= 0 || errno != EAGAIN)
            return rc;
    }
}

//  The server: a ROUTER that connects to endpoint and echoes every
//  message until an empty one. Returns main's exit code.
static int
s_server (const char *endpoint, bool loop)
{
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    s_waiter_t waiter;
    int rc = 1;
    if (router && zmq_connect (router, endpoint) == 0 && s_waiter_init (&waiter, router, loop) == 0) {
        rc = 0;
        //  The body follows its routing id at once (a message's parts
        //  arrive together): only the first part is waited for.
        while (true) {
            zmq_msg_t rid;
            zmq_msg_init (&rid);
            if (s_waiter_recv (&waiter, &rid) < 0) {
                zmq_msg_close (&rid);
                break;
            }
            if (!bench_echo_body (router, &rid, true))
                break;
        }
        s_waiter_fini (&waiter);
    }
    if (router)
        zmq_close (router);
    zmq_ctx_term (ctx);
    return rc;
}

//  The client's side of one way: a bound DEALER and its server.
typedef struct {
    bench_bound_t dealer;
    s_waiter_t waiter;
    pid_t pid;
} s_side_t;

static int
s_side_open (s_side_t *self, bool loop)
{
    memset (self, 0, sizeof *self);
    if (bench_bind (&self->dealer, ZMQ_DEALER, "ipc", loop? "floor-loop": "floor-block")
    ||  s_waiter_init (&self->waiter, self->dealer.socket, loop))
        return -1;
    char *argv [] = { "floor", "--floor-server", self->dealer.endpoint, loop? "loop": "block",
                      NULL };
    self->pid = bench_spawn_self (argv);
    return self->pid < 0? -1: 0;
}

static int
s_side_trips (s_side_t *self, int trips)
{
    static uint8_t message [MESSAGE_SIZE];
    for (int i = 0; i < trips; i++) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        int rc = zmq_send (self->dealer.socket, message, sizeof message, 0) < 0
              || s_waiter_recv (&self->waiter, &msg) < 0? -1: 0;
        zmq_msg_close (&msg);
        if (rc)
            return -1;
    }
    return 0;
}

static void
s_side_close (s_side_t *self)
{
    if (self->pid > 0) {
        zmq_send (self->dealer.socket, "", 0, 0);
        bench_reap (self->pid);
    }
    s_waiter_fini (&self->waiter);
    bench_unbind (&self->dealer);
}

int
main (int argc, char **argv)
{
    bench_pin ();
    if (argc == 4 && strcmp (argv [1], "--floor-server") == 0)
        return s_server (argv [2], strcmp (argv [3], "loop") == 0);
    int rounds = bench_rounds (7), trips = bench_env_int ("BENCH_N", 20000);
    s_side_t block, loop;
    double block_us [BENCH_MAX_ROUNDS], loop_us [BENCH_MAX_ROUNDS], ratio [BENCH_MAX_ROUNDS];
    int rc = s_side_open (&block, false) || s_side_open (&loop, true)
          || s_side_trips (&block, WARMUP) || s_side_trips (&loop, WARMUP);
    for (int r = 0; r < rounds && rc == 0; r++) {
        int64_t block_ns = 0, loop_ns = 0;
        for (int made = 0; made < trips && rc == 0; made += CHUNK) {
            int chunk = trips - made < CHUNK? trips - made: CHUNK;
            int64_t start = bench_now_ns ();
            rc = s_side_trips (&block, chunk);
            int64_t middle = bench_now_ns ();
            rc = rc || s_side_trips (&loop, chunk);
            block_ns += middle - start;
            loop_ns += bench_now_ns () - middle;
        }
        block_us [r] = block_ns / 1e3 / trips;
        loop_us [r] = loop_ns / 1e3 / trips;
        ratio [r] = loop_us [r] / block_us [r];
        fprintf (stderr, "floor: round %d: loop=%.3f us blocking=%.3f us\n", r + 1, loop_us [r],
                 block_us [r]);
    }
    s_side_close (&block);
    s_side_close (&loop);
    if (rc) {
        fprintf (stderr, "floor: a round trip failed: %s\n", zmq_strerror (errno));
        return 1;
    }
    printf ("floor: rpc_rtt_ipc loop=%.3f us blocking=%.3f us ratio=%.3f\n",
            bench_median (loop_us, rounds), bench_median (block_us, rounds),
            bench_median (ratio, rounds));
    return 0;
}
