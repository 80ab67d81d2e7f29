/*  =========================================================================
    testnet.h - running ip(8) from a scenario that makes network namespaces

    The suites that cut links between namespaces they make run ip(8) to
    make, wire and remove them: from the test process, or from a task on
    a worker thread while the task parks (the actor goes on serving).
    Include after testutil.h; set tu_ip_path to the program first.
    =========================================================================
*/
#ifndef TESTNET_H_INCLUDED
#define TESTNET_H_INCLUDED

#include <errno.h>
#include <spawn.h>
#include <stdarg.h>

extern char **environ;

static const char *tu_ip_path;      //  the ip(8) program

//  Run ip with args (NULL-terminated), stdout and stderr to ours; true
//  if it exited 0.
static inline bool
tu_ip_argv (char *const *args)
{
    char *argv [32] = { (char *) "ip" };
    int argc = 1;
    for (; *args && argc < 31; args++)
        argv [argc++] = *args;
    argv [argc] = NULL;
    pid_t pid;
    if (posix_spawn (&pid, tu_ip_path, NULL, NULL, argv, environ))
        return false;
    int status;
    while (waitpid (pid, &status, 0) < 0)
        if (errno != EINTR)
            return false;
    return WIFEXITED (status) && WEXITSTATUS (status) == 0;
}

static inline void *
tu_ip_job_ (void *arg)
{
    return tu_ip_argv (arg)? arg: NULL;
}

//  Run ip with the arguments that follow (up to NULL); from a task (ctx
//  not NULL) on a worker thread while the task parks.
static inline bool
tu_ip (tr_ctx_t *ctx, ...)
{
    char *args [32];
    int n = 0;
    va_list ap;
    va_start (ap, ctx);
    const char *arg;
    while ((arg = va_arg (ap, const char *)) && n < 31)
        args [n++] = (char *) arg;
    va_end (ap);
    args [n] = NULL;
    if (!ctx)
        return tu_ip_argv (args);
    void *ret = NULL;
    return tr_to_thread (ctx, tu_ip_job_, args, &ret) == 0 && ret == args;
}

#endif
