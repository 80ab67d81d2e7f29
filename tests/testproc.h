/*  =========================================================================
    testproc.h - programs a suite starts by hand, and watches

    Some suites run programs as an operator or a user runs them: the
    broker, the examples, tests/worker as a daemon. Each is started with
    fork and exec (told by SIGTERM if the test process ends first), its
    stdout (and, unless the suite wants it in its own log, its stderr)
    on a pipe, and watched through a pidfd, so that every
    wait is on an event with a deadline: a line printed, its exit. What
    it writes is read into its buffers without ever blocking. Every
    program started is listed until it has ended, and a wait on one reads
    the pipes of all of them: none ever blocks on a full pipe while the
    test waits on another. The test process reaps them itself.

    Include after testutil.h. The list is this process's: a program is
    dropped from it once it has exited and its pipes are closed, so a
    tu_proc_t may go out of scope only then.
    =========================================================================
*/
#ifndef TESTPROC_H_INCLUDED
#define TESTPROC_H_INCLUDED

#include <sys/syscall.h>


typedef struct {
    pid_t pid;
    int pidfd;                      //  -1 once reaped
    int out, err;                   //  read ends, -1 at end of file (or not piped)
    char out_text [8192];           //  what it wrote so far
    size_t out_len;
    char err_text [8192];
    size_t err_len;
    int status;                     //  wait status once reaped, else -1
    char path [256];                //  the program, for messages
    char uid [256];                 //  a daemon's, from the line it prints
    char endpoint [256];            //  where it serves, from that line
} tu_proc_t;

//  Every program started and not yet ended.
#define TU_PROCS_MAX 8
static tu_proc_t *tu_procs [TU_PROCS_MAX];
static size_t tu_nprocs;

#define ck_assert_contains(text, part) \
    ck_assert_msg (strstr ((text), (part)) != NULL, "'%s' does not contain '%s'", (text), (part))

//  Path of troupe-broker: $TROUPE_TEST_BROKER, else the build tree's.
static inline const char *
tu_broker_path (void)
{
    const char *path = getenv ("TROUPE_TEST_BROKER");
    return path? path: "broker/troupe-broker";
}

//  Start path with the arguments in args (NULL-terminated), its stdout on
//  a pipe, its stderr on one too if err_piped (else it writes to this
//  process's stderr, so it shows in the suite's log as it comes), and
//  list it. self may be one that ran before and ended.
static inline void
tu_proc_spawn_io (tu_proc_t *self, const char *path, const char *const *args, bool err_piped)
{
    memset (self, 0, sizeof *self);
    self->status = -1;
    self->err = -1;
    snprintf (self->path, sizeof self->path, "%s", path);
    int out [2], err [2] = { -1, -1 };
    ck_assert_int_eq (pipe2 (out, O_CLOEXEC), 0);
    if (err_piped)
        ck_assert_int_eq (pipe2 (err, O_CLOEXEC), 0);
    char *argv [24] = { (char *) path };
    int argc = 1;
    for (; args && *args; args++) {
        ck_assert_int_lt (argc, 23);
        argv [argc++] = (char *) *args;
    }
    argv [argc] = NULL;
    self->pid = tu_spawn_tied (argv, out [1], err [1], NULL);
    ck_assert_int_ge (self->pid, 0);
    close (out [1]);
    self->out = out [0];
    if (err_piped) {
        close (err [1]);
        self->err = err [0];
    }
    self->pidfd = (int) syscall (SYS_pidfd_open, self->pid, 0);
    ck_assert_int_ge (self->pidfd, 0);
    for (size_t i = 0; i < tu_nprocs; i++)
        if (tu_procs [i] == self)
            return;                 //  started again: it is listed already
    ck_assert_int_lt (tu_nprocs, TU_PROCS_MAX);
    tu_procs [tu_nprocs++] = self;
}

//  Start path with args, its stdout and its stderr on pipes.
static inline void
tu_proc_spawn (tu_proc_t *self, const char *path, const char *const *args)
{
    tu_proc_spawn_io (self, path, args, true);
}

//  Read one chunk from *fd into text; close it at end of file. Past
//  size, what comes is read and dropped.
static inline void
tu_proc_read_into (int *fd, char *text, size_t *len, size_t size)
{
    char scratch [512];
    bool full = *len + 1 >= size;
    ssize_t n = full? read (*fd, scratch, sizeof scratch)
                    : read (*fd, text + *len, size - 1 - *len);
    if (n <= 0) {
        close (*fd);
        *fd = -1;
        return;
    }
    if (!full) {
        *len += (size_t) n;
        text [*len] = 0;
    }
}

//  Reap it: its pidfd said it exited (or it was killed).
static inline void
tu_proc_reap (tu_proc_t *self)
{
    ck_assert_int_eq (waitpid (self->pid, &self->status, 0), self->pid);
    close (self->pidfd);
    self->pidfd = -1;
}

//  Drop from the list every program that has exited, its pipes closed:
//  nothing of it is left to watch.
static inline void
tu_proc_forget_ended (void)
{
    size_t kept = 0;
    for (size_t i = 0; i < tu_nprocs; i++) {
        tu_proc_t *p = tu_procs [i];
        if (p->pidfd >= 0 || p->out >= 0 || p->err >= 0)
            tu_procs [kept++] = p;
    }
    tu_nprocs = kept;
}

//  A condition to wait for; arg is the caller's.
typedef bool (tu_until_fn) (tu_proc_t *self, const void *arg);

//  Read every listed program's output and watch their exits until
//  until (self, arg) holds or the deadline (tu_now_ms) passes; true if
//  it holds.
static inline bool
tu_proc_pump (tu_proc_t *self, long long deadline, tu_until_fn *until, const void *arg)
{
    while (!until (self, arg)) {
        long long left = deadline - tu_now_ms ();
        if (left <= 0)
            return false;
        struct pollfd items [3 * TU_PROCS_MAX];
        tu_proc_t *owner [3 * TU_PROCS_MAX];
        int kind [3 * TU_PROCS_MAX];
        nfds_t count = 0;
        for (size_t i = 0; i < tu_nprocs; i++) {
            int fds [3] = { tu_procs [i]->out, tu_procs [i]->err, tu_procs [i]->pidfd };
            for (int k = 0; k < 3; k++)
                if (fds [k] >= 0) {
                    items [count] = (struct pollfd) { fds [k], POLLIN, 0 };
                    owner [count] = tu_procs [i];
                    kind [count++] = k;
                }
        }
        ck_assert_msg (count > 0, "waiting on nothing");
        ck_assert_int_ge (poll (items, count, (int) left), 0);
        for (nfds_t i = 0; i < count; i++) {
            tu_proc_t *q = owner [i];
            if (!items [i].revents)
                continue;
            if (kind [i] == 0)
                tu_proc_read_into (&q->out, q->out_text, &q->out_len, sizeof q->out_text);
            else
            if (kind [i] == 1)
                tu_proc_read_into (&q->err, q->err_text, &q->err_len, sizeof q->err_text);
            else
                tu_proc_reap (q);
        }
        tu_proc_forget_ended ();
    }
    return true;
}

//  It printed a whole line, or exited.
static inline bool
tu_proc_has_line (tu_proc_t *self, const void *arg)
{
    (void) arg;
    return strchr (self->out_text, '\n') || self->pidfd < 0;
}

//  It exited and everything it wrote was read.
static inline bool
tu_proc_has_ended (tu_proc_t *self, const void *arg)
{
    (void) arg;
    return self->pidfd < 0 && self->out < 0 && self->err < 0;
}

//  Wait up to timeout_ms (scaled by tu_ms) for it to exit, everything it
//  wrote read; true if it did, its wait status in status. If it did not,
//  kill it, reap it, close its pipes, and return false.
static inline bool
tu_proc_wait (tu_proc_t *self, int timeout_ms)
{
    if (tu_proc_pump (self, tu_now_ms () + tu_ms (timeout_ms), tu_proc_has_ended, NULL))
        return true;
    if (self->pidfd >= 0) {
        kill (self->pid, SIGKILL);
        tu_proc_reap (self);
    }
    if (self->out >= 0)
        close (self->out);
    if (self->err >= 0)
        close (self->err);
    self->out = self->err = -1;
    tu_proc_forget_ended ();
    return false;
}

//  As tu_proc_wait, but one that does not exit in time fails the test.
//  Returns its wait status.
static inline int
tu_proc_wait_status (tu_proc_t *self, int timeout_ms)
{
    ck_assert_msg (tu_proc_wait (self, timeout_ms),
                   "%s (pid %d) did not exit within %d ms; stdout '%s', stderr '%s'",
                   self->path, (int) self->pid, timeout_ms, self->out_text, self->err_text);
    return self->status;
}

//  Wait up to timeout_ms (scaled) for it to exit, everything it wrote
//  read, and check that it exited with want.
static inline void
tu_proc_expect_exit (tu_proc_t *self, int timeout_ms, int want)
{
    int status = tu_proc_wait_status (self, timeout_ms);
    ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == want,
                   "status 0x%x, wanted exit %d; stdout '%s', stderr '%s'",
                   status, want, self->out_text, self->err_text);
}

//  SIGTERM, then as tu_proc_expect_exit with 5 s.
static inline void
tu_proc_stop (tu_proc_t *self, int want)
{
    ck_assert_int_eq (kill (self->pid, SIGTERM), 0);
    tu_proc_expect_exit (self, 5000, want);
}

#endif
