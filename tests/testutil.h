/*  =========================================================================
    testutil.h - what every Check suite shares

    Assertions that print tr_strerror, a deadline helper, and the leak
    check run after each scenario: the test process makes itself a child
    subreaper, so any actor its scenario started, however deep, is its
    descendant or comes back to it when orphaned; after the scenario none
    may be left, running or unreaped.

    Scenarios run a root actor that records what it sees in a struct; the
    test asserts on that once tr_run returned. For them: the root's
    config, copies of errors that outlive the runtime, calls that take
    their arguments, the one-child frame, a capture of stderr, a FIFO a
    child writes to when it can no longer answer calls, and threads that
    keep the cores busy. Last, building and running a suite.
    =========================================================================
*/
#ifndef TESTUTIL_H_INCLUDED
#define TESTUTIL_H_INCLUDED

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "troupe.h"

#define ck_assert_tr_rc(expr, want) do { \
    int tu_rc_ = (expr); \
    ck_assert_msg (tu_rc_ == (want), "%s returned %s (%d: %s), wanted %s", \
                   #expr, tr_errname (tu_rc_), tu_rc_, tr_strerror (tu_rc_), \
                   tr_errname (want)); \
} while (0)

#define ck_assert_tr_ok(expr) ck_assert_tr_rc ((expr), 0)

//  Built with AddressSanitizer (TU_UNDER_ASAN): freed memory waits in its
//  quarantine, so a process's resident size there says nothing of leaks
//  (LeakSanitizer does), and guard pages behave otherwise.
#if defined (__has_feature)
#   if __has_feature (address_sanitizer)
#       define TU_UNDER_ASAN 1
#   endif
#endif
#if defined (__SANITIZE_ADDRESS__) && !defined (TU_UNDER_ASAN)
#   define TU_UNDER_ASAN 1
#endif

static inline long long
tu_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  An upper bound on elapsed time, or a deadline to wait on, of ms
//  milliseconds on an ordinary machine, scaled like Check's own timeouts
//  by CK_TIMEOUT_MULTIPLIER for slower runs (sanitizers, valgrind, a
//  loaded CI host). Bounds only ever loosen: a multiplier below 1, or one
//  that is not a number, counts as 1. Lower bounds (a grace period that
//  must have passed) are the runtime's own figures and are not scaled.
static inline int
tu_ms (int ms)
{
    const char *text = getenv ("CK_TIMEOUT_MULTIPLIER");
    char *end = NULL;
    double factor = text? strtod (text, &end): 1;
    if (!text || end == text || *end || !(factor >= 1))
        factor = 1;
    double scaled = ms * factor;
    return scaled > 2e9? 2000000000: (int) scaled;
}

//  Path of the helper binary that tests spawn as child actors.
static inline const char *
tu_worker_path (void)
{
    const char *path = getenv ("TROUPE_TEST_WORKER");
    return path? path: "tests/worker";
}

//  Make this (forked) test process the reaper of every orphan below it.
static inline void
tu_subreaper (void)
{
    ck_assert_int_eq (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
}

//  Fill pids with this process's children (alive or zombie); return count.
static inline int
tu_children (pid_t *pids, char *states, int max)
{
    int count = 0;
    DIR *dir = opendir ("/proc");
    if (!dir)
        return 0;
    struct dirent *e;
    while ((e = readdir (dir)) != NULL) {
        pid_t pid = (pid_t) atoi (e->d_name);
        if (pid <= 0)
            continue;
        char path [64], buf [512];
        snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
        FILE *f = fopen (path, "r");
        if (!f)
            continue;
        size_t n = fread (buf, 1, sizeof buf - 1, f);
        fclose (f);
        buf [n] = 0;
        char *close_paren = strrchr (buf, ')');
        char state;
        int ppid;
        if (close_paren && sscanf (close_paren + 2, "%c %d", &state, &ppid) == 2
        &&  ppid == (int) getpid () && count < max) {
            pids [count] = pid;
            states [count] = state;
            count++;
        }
    }
    closedir (dir);
    return count;
}

//  Fail if any process the scenario started is still around. Direct
//  children must already be gone (the runtime reaps what it spawns).
//  Orphans that came back to us are given orphan_wait_ms (scaled by
//  tu_ms) to exit by themselves (rule 11) and are reaped here; one still
//  alive then fails.
static inline void
tu_assert_no_procs_left (int orphan_wait_ms)
{
    pid_t pids [64];
    char states [64];
    long long deadline = tu_now_ms () + tu_ms (orphan_wait_ms);
    while (true) {
        int n = tu_children (pids, states, 64);
        for (int i = 0; i < n; i++)
            if (states [i] == 'Z')
                waitpid (pids [i], NULL, WNOHANG);
        n = tu_children (pids, states, 64);
        if (n == 0)
            return;
        if (tu_now_ms () >= deadline) {
            char list [512] = "";
            for (int i = 0; i < n; i++) {
                char one [32];
                snprintf (one, sizeof one, " %d(%c)", (int) pids [i], states [i]);
                strncat (list, one, sizeof list - strlen (list) - 1);
            }
            for (int i = 0; i < n; i++)
                kill (pids [i], SIGKILL);
            ck_abort_msg ("processes left after the scenario:%s", list);
        }
        //  Waiting for an orphan to notice its parent's death: poll /proc
        //  on a short period until the deadline.
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep (&ts, NULL);
    }
}

//  /bin/cat with stdin on a pipe nobody writes to never says hello: a
//  spawn of it waits for its hello until it is interrupted. The test
//  process holds the write end open (tu_stdin_pipe) until it closes it
//  (tu_stdin_close), which lets such a child end.
static int tu_stdin_writer = -1;

static inline void
tu_stdin_pipe (void)
{
    int fds [2];
    ck_assert_int_eq (pipe2 (fds, O_CLOEXEC), 0);
    if (fds [0] == STDIN_FILENO)
        //  stdin was closed: the pipe took its place; let children have it.
        ck_assert_int_eq (fcntl (STDIN_FILENO, F_SETFD, 0), 0);
    else {
        ck_assert_int_eq (dup2 (fds [0], STDIN_FILENO), STDIN_FILENO);
        close (fds [0]);
    }
    tu_stdin_writer = fds [1];
}

static inline void
tu_stdin_close (void)
{
    if (tu_stdin_writer >= 0)
        close (tu_stdin_writer);
    tu_stdin_writer = -1;
}

//  --------------------------------------------------------------------------
//  Scenarios

//  The root's configuration: named "root", children run tu_worker_path.
static inline tr_config_t
tu_config (void)
{
    tr_config_t config;
    memset (&config, 0, sizeof config);
    config.name = "root";
    config.worker_path = tu_worker_path ();
    return config;
}

//  How many children this process has now, alive or zombie.
static inline int
tu_children_now (void)
{
    pid_t pids [64];
    char states [64];
    return tu_children (pids, states, 64);
}

//  A copy of a tr_error_t that outlives the runtime; all zero if there
//  was none.
typedef struct {
    bool set;
    int code;
    char type [64];
    char message [512];
    char origin [256];
    size_t hops;
    char hop [4][256];              //  the first four hops
    bool frames;                    //  it carries remote frames
    int signal;
    int status;
} tu_err_t;

static inline void
tu_err_copy (tu_err_t *self, const tr_error_t *error)
{
    memset (self, 0, sizeof *self);
    if (!error)
        return;
    self->set = true;
    self->code = tr_error_code (error);
    snprintf (self->type, sizeof self->type, "%s", tr_error_type (error));
    snprintf (self->message, sizeof self->message, "%s", tr_error_message (error));
    snprintf (self->origin, sizeof self->origin, "%s", tr_error_origin (error));
    self->hops = tr_error_hops (error);
    for (size_t i = 0; i < self->hops && i < 4; i++)
        snprintf (self->hop [i], sizeof self->hop [i], "%s", tr_error_hop (error, i));
    self->frames = *tr_error_frames (error) != 0;
    self->signal = tr_error_signal (error);
    self->status = tr_error_exit_status (error);
}

//  How many errors a list holds.
static inline size_t
tu_err_count (const tr_error_t *list)
{
    size_t count = 0;
    for (; list; list = tr_error_next (list))
        count++;
    return count;
}

//  Close a nursery and keep what its error list said: how many errors
//  (count, may be NULL) and a copy of the first (first, may be NULL).
//  Returns what tr_nursery_close returned.
static inline int
tu_nursery_close (tr_nursery_t **n, size_t *count, tu_err_t *first)
{
    tr_error_t *errors = NULL;
    int rc = tr_nursery_close (n, &errors);
    if (count)
        *count = tu_err_count (errors);
    if (first)
        tu_err_copy (first, errors);
    tr_error_destroy (&errors);
    return rc;
}

//  Call fn(args) and return its rc; args is taken, *out gets the value
//  when out is not NULL.
static inline int
tu_call (tr_portal_t *p, const char *fn, tr_args_t *args, tr_value_t **out)
{
    int rc = tr_portal_run (p, fn, args, out);
    tr_args_destroy (&args);
    return rc;
}

//  tu_call of a function that returns an int, into *out (left as it was
//  if the call fails).
static inline int
tu_call_int (tr_portal_t *p, const char *fn, tr_args_t *args, int *out)
{
    tr_value_t *v = NULL;
    int rc = tu_call (p, fn, args, &v);
    if (rc == 0)
        tr_unpack (tr_value_object (v), "i", out);
    tr_value_destroy (&v);
    return rc;
}

//  The child's [cancels_seen, sleeping_now] (tests/worker's "cancels").
static inline int
tu_cancels (tr_portal_t *p, int *cancels, int *sleeping)
{
    tr_value_t *v = NULL;
    int rc = tr_portal_run (p, "cancels", NULL, &v);
    if (rc == 0 && tr_unpack (tr_value_object (v), "[ii]", cancels, sleeping))
        rc = TR_EFORMAT;
    tr_value_destroy (&v);
    return rc;
}

//  Poll the child until want of its tasks sleep, or timeout_ms (scaled by
//  tu_ms) passed.
static inline bool
tu_wait_sleeping (tr_ctx_t *ctx, tr_portal_t *p, int want, int timeout_ms)
{
    long long deadline = tu_now_ms () + tu_ms (timeout_ms);
    while (tu_now_ms () < deadline) {
        int cancels, sleeping;
        if (tu_cancels (p, &cancels, &sleeping) == 0 && sleeping >= want)
            return true;
        if (tr_sleep (ctx, 10))
            return false;
    }
    return false;
}

//  Whether pid, our child, has gone from /proc (reaped) by timeout_ms
//  (scaled): its exit is seen by the runtime's loop while the task parks.
static inline bool
tu_process_gone (tr_ctx_t *ctx, int pid, int timeout_ms)
{
    long long deadline = tu_now_ms () + tu_ms (timeout_ms);
    char path [64];
    snprintf (path, sizeof path, "/proc/%d", pid);
    while (access (path, F_OK) == 0) {
        if (tu_now_ms () >= deadline || tr_sleep (ctx, 10))
            return false;
    }
    return true;
}

//  The frame most scenarios share: open a nursery, start one child, run
//  the body against its portal, close the nursery. Run it as the root
//  with tr_run (..., tu_frame_root, frame); the test checks the rcs.
typedef int (tu_body_fn) (tr_ctx_t *ctx, tr_portal_t *p, void *obs);

typedef struct {
    tu_body_fn *body;
    void *obs;                      //  the body's own observations
    const char *name;               //  the child's name; NULL for "kid"
    int start_rc, close_rc;
    char uid [256];                 //  the child's uid
    size_t close_errors;            //  errors the close returned
    tu_err_t close_error;           //  the first of them
} tu_frame_t;

//  Returns what the body returned, or 1 if no nursery opened.
static inline int
tu_frame_root (tr_actor_t *self, void *arg)
{
    tu_frame_t *frame = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p = NULL;
    frame->start_rc = tr_nursery_start_actor (n, frame->name? frame->name: "kid", NULL, &p);
    int rc = 0;
    if (frame->start_rc == 0) {
        snprintf (frame->uid, sizeof frame->uid, "%s", tr_portal_uid (p));
        rc = frame->body (tr_actor_ctx (self), p, frame->obs);
    }
    frame->close_rc = tu_nursery_close (&n, &frame->close_errors, &frame->close_error);
    return rc;
}

//  Run frame as the root (config NULL: tu_config ()) and check that
//  tr_run returned 0 and the child started.
static inline void
tu_run_frame (tu_frame_t *frame, const tr_config_t *config)
{
    tr_config_t defaults = tu_config ();
    ck_assert_int_eq (tr_run (config? config: &defaults, 0, NULL, tu_frame_root, frame), 0);
    ck_assert_tr_ok (frame->start_rc);
}

//  tu_run_frame with the default config, and the nursery closed with
//  no child failing.
static inline void
tu_run_frame_clean (tu_frame_t *frame)
{
    tu_run_frame (frame, NULL);
    ck_assert_tr_ok (frame->close_rc);
}

//  Everything written to stderr between start and end, for checking
//  what was logged.
typedef struct {
    int saved;
    FILE *file;
} tu_capture_t;

static inline void
tu_capture_start (tu_capture_t *self)
{
    fflush (stderr);
    self->file = tmpfile ();
    ck_assert_ptr_nonnull (self->file);
    self->saved = dup (STDERR_FILENO);
    ck_assert_int_ge (self->saved, 0);
    ck_assert_int_ge (dup2 (fileno (self->file), STDERR_FILENO), 0);
}

//  Put stderr back; buf gets what was written (cut to size - 1 bytes).
static inline const char *
tu_capture_end (tu_capture_t *self, char *buf, size_t size)
{
    fflush (stderr);
    dup2 (self->saved, STDERR_FILENO);
    close (self->saved);
    rewind (self->file);
    size_t n = fread (buf, 1, size - 1, self->file);
    buf [n] = '\0';
    fclose (self->file);
    return buf;
}

//  A FIFO a child writes one byte to once it has reached a point the
//  test waits for (tests/worker's "spin" and "stubborn": once they spin,
//  the child answers no call that could tell). The test holds the read
//  end open from tu_fifo_open to tu_fifo_close.
typedef struct {
    char path [128];
    int fd;                         //  read end, -1 when not open
    int wait_ms;                    //  the wait in progress, for its thread
} tu_fifo_t;

//  Make the FIFO and open its read end; false on failure.
static inline bool
tu_fifo_open (tu_fifo_t *self)
{
    static int count = 0;
    const char *dir = getenv ("TMPDIR");
    snprintf (self->path, sizeof self->path, "%s/troupe-test-%d-%d.fifo",
              dir && *dir? dir: "/tmp", (int) getpid (), count++);
    unlink (self->path);
    self->fd = -1;
    if (mkfifo (self->path, 0600))
        return false;
    self->fd = open (self->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    return self->fd >= 0;
}

static inline void *
tu_fifo_poll_ (void *arg)
{
    tu_fifo_t *self = arg;
    struct pollfd item = { self->fd, POLLIN, 0 };
    return poll (&item, 1, self->wait_ms) == 1 && (item.revents & POLLIN)? self: NULL;
}

//  Wait from a task, up to timeout_ms (scaled by tu_ms), for the byte:
//  poll(2) on a worker thread while the task is parked and the actor
//  runs on. True once it came.
static inline bool
tu_fifo_wait (tr_ctx_t *ctx, tu_fifo_t *self, int timeout_ms)
{
    self->wait_ms = tu_ms (timeout_ms);
    void *ret = NULL;
    return tr_to_thread (ctx, tu_fifo_poll_, self, &ret) == 0 && ret == self;
}

static inline void
tu_fifo_close (tu_fifo_t *self)
{
    if (self->fd >= 0)
        close (self->fd);
    self->fd = -1;
    unlink (self->path);
}

//  Burners: tasks of the root whose tr_to_thread jobs spin on every core
//  until stopped (30 s at most), so that the root's ZeroMQ I/O thread
//  competes for CPU. Races between a child's last frame and its exit,
//  which a starved I/O thread makes likely, then show in a few rounds.
#define TU_BURNERS 4

typedef struct {
    atomic_bool stop;
    tr_task_t *tasks [TU_BURNERS];
    int count;
} tu_burners_t;

static inline void *
tu_burn_ (void *arg)
{
    tu_burners_t *self = arg;
    long long deadline = tu_now_ms () + 30000;
    while (!atomic_load (&self->stop) && tu_now_ms () < deadline)
        ;
    return NULL;
}

static inline int
tu_burner_ (tr_ctx_t *ctx, void *arg)
{
    return tr_to_thread (ctx, tu_burn_, arg, NULL);
}

//  Start one burner per core (up to TU_BURNERS); they run once the
//  calling task parks.
static inline void
tu_burners_start (tu_burners_t *self, tr_actor_t *actor)
{
    atomic_store (&self->stop, false);
    self->count = 0;
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < TU_BURNERS && i < cores; i++)
        if (tr_task_spawn (actor, tu_burner_, self, &self->tasks [self->count]) == 0)
            self->count++;
}

//  Stop them and wait until they have.
static inline void
tu_burners_stop (tu_burners_t *self)
{
    atomic_store (&self->stop, true);
    for (int i = 0; i < self->count; i++)
        tr_task_join (&self->tasks [i], NULL);
    self->count = 0;
}

//  Ask the worker's "produced" until a flooding stream function (ctx_flood,
//  stream_flood) has sent want values; false after 5 s or if cancelled.
static inline bool
tu_wait_produced (tr_ctx_t *ctx, tr_portal_t *p, int want, int *produced)
{
    long long deadline = tu_now_ms () + tu_ms (5000);
    while (tu_now_ms () < deadline) {
        tr_value_t *v = NULL;
        if (tr_portal_run (p, "produced", NULL, &v) == 0)
            tr_unpack (tr_value_object (v), "i", produced);
        tr_value_destroy (&v);
        if (*produced >= want)
            return true;
        if (tr_sleep (ctx, 5))
            return false;
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Suites

//  A test case named name, with a timeout, added to suite.
static inline TCase *
tu_tcase (Suite *suite, const char *name, int timeout_s)
{
    TCase *tc = tcase_create (name);
    tcase_set_timeout (tc, timeout_s);
    suite_add_tcase (suite, tc);
    return tc;
}

//  Run every test of suite and print the summary; EXIT_SUCCESS if none
//  failed. mode is CK_FORK for suites whose tests each need a process of
//  their own, CK_FORK_GETENV to let CK_FORK=no run them in this one.
static inline int
tu_run_suite (Suite *suite, enum fork_status mode)
{
    SRunner *runner = srunner_create (suite);
    srunner_set_fork_status (runner, mode);
    srunner_run_all (runner, CK_NORMAL);
    int failed = srunner_ntests_failed (runner);
    srunner_free (runner);
    return failed == 0? EXIT_SUCCESS: EXIT_FAILURE;
}

//  --------------------------------------------------------------------------
//  Programs a test starts by hand

extern char **environ;

//  Start argv [0] with argv (NULL-ended), its stdout on out_fd and its
//  stderr on err_fd (-1: this process's), under the descriptor limit
//  nofile unless NULL. The program is sent SIGTERM if this process ends
//  first: a test that fails an assertion, times out or crashes ends
//  without reaping what it started, which must not outlive it. Give it
//  descriptors made with O_CLOEXEC. Returns its pid, or -1.
static inline pid_t
tu_spawn_tied (char *const argv [], int out_fd, int err_fd, const struct rlimit *nofile)
{
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid != 0)
        return pid;
    //  Only async-signal-safe calls from here.
    if (prctl (PR_SET_PDEATHSIG, SIGTERM) || getppid () != parent)
        _exit (127);
    if ((out_fd >= 0 && dup2 (out_fd, STDOUT_FILENO) < 0)
    ||  (err_fd >= 0 && dup2 (err_fd, STDERR_FILENO) < 0)
    ||  (nofile && setrlimit (RLIMIT_NOFILE, nofile)))
        _exit (127);
    execve (argv [0], argv, environ);
    _exit (127);
}

//  Read fd into line (NUL-terminated) until it holds a whole line, the
//  stream ends or timeout_ms (scaled) passes; then close fd.
static inline void
tu_read_first_line (int fd, char *line, size_t size, int timeout_ms)
{
    size_t len = 0;
    line [0] = 0;
    long long deadline = tu_now_ms () + tu_ms (timeout_ms);
    while (!strchr (line, '\n') && len + 1 < size && tu_now_ms () < deadline) {
        struct pollfd item = { fd, POLLIN, 0 };
        if (poll (&item, 1, (int) (deadline - tu_now_ms ())) <= 0)
            break;
        ssize_t n = read (fd, line + len, size - 1 - len);
        if (n <= 0)
            break;
        len += (size_t) n;
        line [len] = 0;
    }
    close (fd);
}

#endif
