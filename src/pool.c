/*  =========================================================================
    pool.c - the worker threads behind tr_to_thread and TR_THREAD exports

    The only state of an actor that crosses threads. A task that hands a
    function to the pool parks; a worker runs the function, puts the job on
    the done list under the mutex and writes to an eventfd that the loop
    polls; tri_pool_drain, on the loop's thread, wakes the waiting task. A
    task that stops waiting (cancelled, unshielded) leaves its job behind;
    the drain frees it and drops its result when the worker is done. The
    threads are created on first use and joined by tri_pool_stop, which
    lets them finish the job they run; threads are never cancelled.
    =========================================================================
*/
#include "troupe_private.h"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

//  A tri_task_to_thread () call.
typedef struct job {
    void *(*fn) (void *);
    void *arg;
    void *result;               //  written by the worker
    struct job *next;           //  queue or done list, under the mutex
    tri_task_t *task;           //  the waiting task, NULL once it left (loop)
    bool done;                  //  drained, result valid (loop)
} job_t;

//  The pool: the lists and stopping are under mutex; the rest is the
//  loop's, except fd, which is fixed while the threads live.
static struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    job_t *queue_head;
    job_t *queue_tail;
    job_t *done_head;
    job_t *done_tail;
    bool stopping;
    pthread_t *threads;
    int nthreads;
    int fd;                     //  eventfd, -1 until the pool exists
    size_t jobs;                //  jobs allocated and not yet freed
    int size;                   //  threads to start
} s_pool = {
    .mutex = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
    .fd = -1,
    .size = TRI_DEFAULT_THREADS
};

//  Put job at the end of a list (under the mutex).
static void
s_append (job_t **head, job_t **tail, job_t *job)
{
    job->next = NULL;
    if (*tail)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
}

//  --------------------------------------------------------------------------
//  How many threads the pool starts (from the next start on).

void
tri_pool_configure (int threads)
{
    s_pool.size = threads > 0? threads: TRI_DEFAULT_THREADS;
}

static void *
s_worker (void *unused)
{
    (void) unused;
    pthread_mutex_lock (&s_pool.mutex);
    while (true) {
        while (!s_pool.queue_head && !s_pool.stopping)
            pthread_cond_wait (&s_pool.cond, &s_pool.mutex);
        if (s_pool.stopping)
            break;
        job_t *job = s_pool.queue_head;
        s_pool.queue_head = job->next;
        if (!s_pool.queue_head)
            s_pool.queue_tail = NULL;
        pthread_mutex_unlock (&s_pool.mutex);

        job->result = job->fn (job->arg);

        pthread_mutex_lock (&s_pool.mutex);
        s_append (&s_pool.done_head, &s_pool.done_tail, job);
        pthread_mutex_unlock (&s_pool.mutex);
        //  After the job is on the list, so that a drain woken by this
        //  write finds it.
        uint64_t one = 1;
        while (write (s_pool.fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
        pthread_mutex_lock (&s_pool.mutex);
    }
    pthread_mutex_unlock (&s_pool.mutex);
    return NULL;
}

static void (*s_on_start) (int fd) = NULL;

void
tri_pool_on_start (void (*fn) (int fd))
{
    s_on_start = fn;
}

static int
s_pool_start (void)
{
    if (s_pool.fd >= 0)
        return 0;
    pthread_t *threads = calloc ((size_t) s_pool.size, sizeof *threads);
    if (!threads)
        return TR_ENOMEM;
    s_pool.fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s_pool.fd < 0) {
        free (threads);
        return TR_ENOMEM;
    }
    s_pool.stopping = false;
    //  Workers leave asynchronous signals to the runtime thread.
    sigset_t all, old;
    sigfillset (&all);
    sigdelset (&all, SIGSEGV);
    sigdelset (&all, SIGBUS);
    sigdelset (&all, SIGFPE);
    sigdelset (&all, SIGILL);
    pthread_sigmask (SIG_SETMASK, &all, &old);
    int count = 0;
    while (count < s_pool.size && pthread_create (&threads [count], NULL, s_worker, NULL) == 0)
        count++;
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (count == 0) {
        close (s_pool.fd);
        s_pool.fd = -1;
        free (threads);
        return TR_ENOMEM;
    }
    s_pool.threads = threads;
    s_pool.nthreads = count;
    if (s_on_start)
        s_on_start (s_pool.fd);
    return 0;
}

static void
s_jobs_free (job_t *list)
{
    while (list) {
        job_t *job = list;
        list = job->next;
        free (job);
        s_pool.jobs--;
    }
}

//  Threads finish the job they run; queued jobs, whose tasks are gone
//  (no task is alive), are dropped unrun.
void
tri_pool_stop (void)
{
    if (s_pool.fd < 0)
        return;
    pthread_mutex_lock (&s_pool.mutex);
    s_pool.stopping = true;
    pthread_cond_broadcast (&s_pool.cond);
    pthread_mutex_unlock (&s_pool.mutex);
    for (int index = 0; index < s_pool.nthreads; index++)
        pthread_join (s_pool.threads [index], NULL);
    free (s_pool.threads);
    s_pool.threads = NULL;
    s_pool.nthreads = 0;
    s_jobs_free (s_pool.queue_head);
    s_jobs_free (s_pool.done_head);
    s_pool.queue_head = s_pool.queue_tail = NULL;
    s_pool.done_head = s_pool.done_tail = NULL;
    s_pool.stopping = false;
    close (s_pool.fd);
    s_pool.fd = -1;
}

//  --------------------------------------------------------------------------
//  Run fn(arg) on a pool thread while the current task parks.

int
tri_task_to_thread (void *(*fn) (void *), void *arg, void **ret, bool shielded)
{
    tri_task_t *self = tri_task_current ();
    assert (self && fn);
    if (!shielded && tri_task_cancelled (self))
        return TR_ECANCELED;
    int rc = s_pool_start ();
    if (rc)
        return rc;
    job_t *job = calloc (1, sizeof *job);
    if (!job)
        return TR_ENOMEM;
    job->fn = fn;
    job->arg = arg;
    job->task = self;
    s_pool.jobs++;

    pthread_mutex_lock (&s_pool.mutex);
    s_append (&s_pool.queue_head, &s_pool.queue_tail, job);
    pthread_cond_signal (&s_pool.cond);
    pthread_mutex_unlock (&s_pool.mutex);

    //  Only the drain's wake (job->done) or, unshielded, a cancel ends the
    //  wait; any other wake is spurious here.
    while (!job->done) {
        rc = shielded? tri_task_park_shielded (-1): tri_task_park (-1);
        if (rc == TR_ECANCELED && !shielded && !job->done) {
            job->task = NULL;       //  tri_pool_drain frees it
            return TR_ECANCELED;
        }
    }
    if (ret)
        *ret = job->result;
    free (job);
    s_pool.jobs--;
    return 0;
}

int
tri_pool_fd (void)
{
    return s_pool.fd;
}

//  --------------------------------------------------------------------------
//  Wake the tasks whose jobs ended; free the jobs nobody waits for.

void
tri_pool_drain (void)
{
    if (s_pool.fd < 0)
        return;
    uint64_t count;
    while (read (s_pool.fd, &count, sizeof count) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock (&s_pool.mutex);
    job_t *list = s_pool.done_head;
    s_pool.done_head = s_pool.done_tail = NULL;
    pthread_mutex_unlock (&s_pool.mutex);
    while (list) {
        job_t *job = list;
        list = job->next;
        if (job->task) {
            job->done = true;
            tri_task_wake (job->task, 0);
        }
        else {
            free (job);
            s_pool.jobs--;
        }
    }
}

//  Jobs allocated and not yet freed, for the tests.

size_t
tri_pool_jobs (void)
{
    return s_pool.jobs;
}
