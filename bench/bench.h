/*  =========================================================================
    bench.h - what the benchmarks share

    A monotonic clock, the median of a set of rounds, the one result line
    per figure that `make bench` prints, and the spawning of this same
    binary in a raw-libzmq mode. Every figure is measured against plain
    libzmq doing the same work in the same run, and rounds of the two
    alternate so that drift in the machine's load hits both alike.

    Result line (stdout): bench: NAME troupe=VALUE UNIT raw=VALUE UNIT ratio=R
    Per-round values go to stderr. BENCH_ROUNDS and BENCH_N override the
    number of rounds and the work per round. On a machine with two CPUs
    or more the calling process (all its threads) runs on CPU 0 and every
    process it starts on CPU 1, the same for troupe and raw: where the
    scheduler happens to place the threads otherwise moves a round by
    a third either way. BENCH_PIN=0 leaves the placement to the scheduler.
    =========================================================================
*/
#ifndef BENCH_H_INCLUDED
#define BENCH_H_INCLUDED

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_ROUNDS 101

//  Monotonic time in nanoseconds.
static inline int64_t
bench_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int
bench_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: (x > y? 1: 0);
}

//  Median of n values (values is left unchanged).
static inline double
bench_median (const double *values, int n)
{
    double sorted [BENCH_MAX_ROUNDS];
    if (n <= 0)
        return 0;
    if (n > BENCH_MAX_ROUNDS)
        n = BENCH_MAX_ROUNDS;
    memcpy (sorted, values, (size_t) n * sizeof *sorted);
    qsort (sorted, (size_t) n, sizeof *sorted, bench_compare);
    return n % 2? sorted [n / 2]: (sorted [n / 2 - 1] + sorted [n / 2]) / 2;
}

//  A positive integer from the environment, or the default.
static inline int
bench_env_int (const char *name, int fallback)
{
    const char *value = getenv (name);
    int n = value? atoi (value): 0;
    return n > 0? n: fallback;
}

//  Rounds to run: BENCH_ROUNDS or the default, at most BENCH_MAX_ROUNDS.
static inline int
bench_rounds (int fallback)
{
    int n = bench_env_int ("BENCH_ROUNDS", fallback);
    return n > BENCH_MAX_ROUNDS? BENCH_MAX_ROUNDS: n;
}

//  One round's pair of values, to stderr.
static inline void
bench_round (const char *name, int round, double troupe, double raw, const char *unit)
{
    fprintf (stderr, "bench: %s round %d: troupe=%.3f %s raw=%.3f %s\n",
             name, round, troupe, unit, raw, unit);
}

//  The result line of one figure: medians of the rounds, ratio troupe/raw.
static inline void
bench_print (const char *name, const double *troupe, const double *raw,
             int rounds, const char *unit)
{
    double t = bench_median (troupe, rounds);
    double r = bench_median (raw, rounds);
    printf ("bench: %s troupe=%.3f %s raw=%.3f %s ratio=%.2f\n",
            name, t, unit, r, unit, r > 0? t / r: 0.0);
    fflush (stdout);
}

//  Unless BENCH_PIN=0, pin this process: the first process (the one the
//  user started) to CPU 0, and the processes it starts, which inherit the
//  environment, to CPU 1. Call it first thing in main().
static inline void
bench_pin (void)
{
    const char *pin = getenv ("BENCH_PIN");
    if ((pin && strcmp (pin, "0") == 0) || sysconf (_SC_NPROCESSORS_ONLN) < 2)
        return;
    bool started = getenv ("BENCH_PIN_STARTED") != NULL;
    if (!started)
        setenv ("BENCH_PIN_STARTED", "1", 1);
    cpu_set_t set;
    CPU_ZERO (&set);
    CPU_SET (started? 1: 0, &set);
    if (sched_setaffinity (0, sizeof set, &set))
        fprintf (stderr, "bench: cannot pin to a CPU: %s\n", strerror (errno));
}

//  Start this same binary with the given arguments (argv [0] included,
//  NULL-ended). Returns the pid, or -1 with errno set.
static inline pid_t
bench_spawn_self (char *const argv [])
{
    extern char **environ;
    pid_t pid;
    int err = posix_spawn (&pid, "/proc/self/exe", NULL, NULL, argv, environ);
    if (err) {
        errno = err;
        return -1;
    }
    return pid;
}

//  Reap a child; returns its exit status, or -1 if it did not exit.
static inline int
bench_reap (pid_t pid)
{
    int status;
    while (waitpid (pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED (status)? WEXITSTATUS (status): -1;
}

#endif
