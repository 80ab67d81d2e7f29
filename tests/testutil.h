/*  =========================================================================
    testutil.h - what every Check suite shares

    Assertions that print tr_strerror, a deadline helper, and the leak
    check run after each scenario: the test process makes itself a child
    subreaper, so any actor its scenario started, however deep, is its
    descendant or comes back to it when orphaned; after the scenario none
    may be left, running or unreaped.
    =========================================================================
*/
#ifndef TESTUTIL_H_INCLUDED
#define TESTUTIL_H_INCLUDED

#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

static inline long long
tu_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
//  Orphans that came back to us are given orphan_wait_ms to exit by
//  themselves (rule 11) and are reaped here; one still alive then fails.
static inline void
tu_assert_no_procs_left (int orphan_wait_ms)
{
    pid_t pids [64];
    char states [64];
    long long deadline = tu_now_ms () + orphan_wait_ms;
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

#endif
