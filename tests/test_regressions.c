/*  =========================================================================
    test_regressions.c - defects of the runtime, each tried as a user would

    Every scenario here once hung, aborted the root, lost an answer or
    reported the wrong thing: two tasks cancelling one actor,
    spawns interrupted by a cancel, a close or a signal, an acknowledged
    cancel taken for a failure, final answers and acks lost when the exit
    is seen first, errors of a close whose task was cancelled, closes given
    NULL, the error detail of two tasks failing through one portal, and a
    lease renewed after it ran out, which those waiting for its name did
    not hear of.
    They use the public API only. The forked test process is the root
    actor; it records what it sees and the test asserts once tr_run
    returned. Short timeouts make a hang fail fast.
    =========================================================================
*/
#include "testutil.h"
#include "testspawn.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>

//  --------------------------------------------------------------------------
//  Helpers

//  Park the task until *flag is true or timeout_ms passed; tr_sleep (0)
//  only lets the other tasks run. Returns *flag.
static bool
s_wait_flag (tr_ctx_t *ctx, const bool *flag, long long timeout_ms)
{
    long long deadline = tu_now_ms () + timeout_ms;
    while (!*flag && tu_now_ms () < deadline)
        if (tr_sleep (ctx, 1))
            break;
    return *flag;
}

//  run_in_actor with a packed argument list.
static int
s_run_in (tr_nursery_t *n, const char *name, const char *fn, tr_args_t *args, tr_portal_t **p)
{
    int rc = tr_nursery_run_in_actor (n, name, fn, args, p);
    tr_args_destroy (&args);
    return rc;
}

//  --------------------------------------------------------------------------
//  Two tasks cancel one actor: both get the ack

typedef struct {
    tr_portal_t *p;
    bool done;
    int rc;
} s_canceller_t;

static int
s_canceller (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_canceller_t *self = arg;
    self->rc = tr_portal_cancel_actor (self->p, -1);
    self->done = true;
    return 0;
}

typedef struct {
    s_canceller_t cancellers [2];
    bool done [2];                  //  returned before we gave up
    long long wait_ms;
} s_double_cancel_t;

static int
s_double_cancel_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_double_cancel_t *obs = arg;
    tr_task_t *tasks [2];
    for (int i = 0; i < 2; i++) {
        obs->cancellers [i].p = p;
        if (tr_task_spawn (tr_ctx_actor (ctx), s_canceller, &obs->cancellers [i], &tasks [i]))
            return 1;
    }
    //  The ack takes milliseconds; one that never comes is given up on,
    //  and its task cancelled, so that the scenario ends.
    long long t0 = tu_now_ms ();
    long long deadline = t0 + tu_ms (5000);
    while (!(obs->cancellers [0].done && obs->cancellers [1].done) && tu_now_ms () < deadline)
        tr_sleep (ctx, 5);
    obs->wait_ms = tu_now_ms () - t0;
    for (int i = 0; i < 2; i++)
        obs->done [i] = obs->cancellers [i].done;
    for (int i = 0; i < 2; i++) {
        if (!obs->cancellers [i].done)
            tr_task_cancel (tasks [i]);
        tr_task_join (&tasks [i], NULL);
    }
    return 0;
}

START_TEST (two_tasks_cancelling_one_actor_with_no_timeout_both_get_the_ack)
{
    tu_subreaper ();
    s_double_cancel_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_double_cancel_body, .obs = &obs };
    tu_run_frame (&frame, NULL);
    ck_assert_msg (obs.done [0] && obs.done [1], "a task waiting for the ack never returned "
                   "(first returned: %d, second returned: %d, waited %lld ms)",
                   obs.done [0], obs.done [1], obs.wait_ms);
    ck_assert_tr_ok (obs.cancellers [0].rc);
    ck_assert_tr_ok (obs.cancellers [1].rc);
    //  An acknowledged cancel is no failure (rule 2).
    ck_assert_tr_ok (frame.close_rc);
    ck_assert_int_eq (frame.close_errors, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Spawns interrupted by another task's cancel or close

#define SPAWNERS 3

typedef struct {
    tr_nursery_t *n;
    const char *path;               //  what the child runs
    bool entered;                   //  about to call tr_nursery_start_actor
    bool returned;
    int rc;
    bool portal_null;
} s_spawner_t;

static int
s_spawner (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_spawner_t *self = arg;
    tr_spawn_opts_t opts = { .worker_path = self->path };
    tr_portal_t *p = (tr_portal_t *) &p;
    self->entered = true;
    self->rc = tr_nursery_start_actor (self->n, "spawnling", &opts, &p);
    self->portal_null = p == NULL;
    self->returned = true;
    return 0;
}

typedef struct {
    tr_nursery_t *n;
    int rc;
} s_canceller_task_t;

static int
s_nursery_canceller (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_canceller_task_t *self = arg;
    self->rc = tr_nursery_cancel (self->n, false);
    return 0;
}

typedef struct {
    bool cancel_first;              //  another task cancels before the close
    s_spawner_t spawners [SPAWNERS];
    bool in_flight;                 //  every spawn waited for its hello
    s_canceller_task_t canceller;
    int close_rc;
    size_t close_errors;
    tu_err_t close_error;
    bool nursery_null;
    int children_after;
} s_interrupted_t;

static int
s_interrupted_root (tr_actor_t *self, void *arg)
{
    s_interrupted_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_task_t *tasks [SPAWNERS];
    for (int i = 0; i < SPAWNERS; i++) {
        obs->spawners [i] = (s_spawner_t) { .n = n, .path = "/bin/cat" };
        if (tr_task_spawn (self, s_spawner, &obs->spawners [i], &tasks [i]))
            return 1;
    }
    //  A spawner's process exists once it parks for the hello, which from
    //  /bin/cat never comes.
    long long deadline = tu_now_ms () + tu_ms (5000);
    while (!obs->in_flight && tu_now_ms () < deadline) {
        tr_sleep (ctx, 1);
        bool entered = true;
        for (int i = 0; i < SPAWNERS; i++)
            entered &= obs->spawners [i].entered && !obs->spawners [i].returned;
        obs->in_flight = entered && tu_children_now () == SPAWNERS;
    }
    if (obs->cancel_first) {
        //  The interrupted spawns react to the cancel while we wait for
        //  the task that cancelled; then we close at once.
        tr_task_t *task;
        obs->canceller.n = n;
        obs->canceller.rc = TR_EINVAL;
        if (tr_task_spawn (self, s_nursery_canceller, &obs->canceller, &task) == 0)
            tr_task_join (&task, NULL);
    }
    obs->close_rc = tu_nursery_close (&n, &obs->close_errors, &obs->close_error);
    obs->nursery_null = n == NULL;
    for (int i = 0; i < SPAWNERS; i++)
        tr_task_join (&tasks [i], NULL);
    obs->children_after = tu_children_now ();
    return 0;
}

static void
s_run_interrupted (s_interrupted_t *obs)
{
    tu_subreaper ();
    tu_run_without_hellos (s_interrupted_root, obs);
    ck_assert_msg (obs->in_flight, "the spawns were never all waiting for their hello");
    ck_assert_msg (obs->nursery_null, "the close left the nursery");
    for (int i = 0; i < SPAWNERS; i++) {
        ck_assert_msg (obs->spawners [i].returned, "spawn %d never returned", i);
        ck_assert_msg (obs->spawners [i].portal_null, "spawn %d left a portal", i);
    }
    //  Children that never said hello and that the nursery killed are no
    //  child's failure.
    ck_assert_msg (obs->close_rc == 0 && obs->close_errors == 0,
                   "the close returned %s with %zu errors, the first %s: %s",
                   tr_errname (obs->close_rc), obs->close_errors,
                   obs->close_error.type, obs->close_error.message);
    ck_assert_int_eq (obs->children_after, 0);
    tu_assert_no_procs_left (2000);
}

START_TEST (spawns_interrupted_by_another_tasks_cancel_and_close_fail_and_the_root_goes_on)
{
    s_interrupted_t obs;
    memset (&obs, 0, sizeof obs);
    obs.cancel_first = true;
    s_run_interrupted (&obs);
    ck_assert_tr_ok (obs.canceller.rc);
    for (int i = 0; i < SPAWNERS; i++)
        ck_assert_msg (obs.spawners [i].rc == TR_ECANCELED || obs.spawners [i].rc == TR_ECLOSED,
                       "spawn %d returned %s, wanted ECANCELED or ECLOSED", i,
                       tr_errname (obs.spawners [i].rc));
}
END_TEST

START_TEST (spawns_interrupted_by_a_close_fail_as_closed)
{
    s_interrupted_t obs;
    memset (&obs, 0, sizeof obs);
    s_run_interrupted (&obs);
    //  The header: TR_ECLOSED (nursery closing or cancelled).
    for (int i = 0; i < SPAWNERS; i++)
        ck_assert_tr_rc (obs.spawners [i].rc, TR_ECLOSED);
}
END_TEST

//  --------------------------------------------------------------------------
//  SIGINT while many tasks spawn (rule 12)

#define SIGINT_SPAWNERS 8
#define SIGINT_ROUNDS 10

typedef struct {
    s_spawner_t spawners [SIGINT_SPAWNERS];
    bool in_flight;
    bool pressed;
    int close_rc;
    int children_after;
} s_sigint_t;

static void *
s_press (void *arg)
{
    (void) arg;
    kill (getpid (), SIGINT);
    return NULL;
}

static int
s_sigint_root (tr_actor_t *self, void *arg)
{
    s_sigint_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_task_t *tasks [SIGINT_SPAWNERS];
    for (int i = 0; i < SIGINT_SPAWNERS; i++) {
        obs->spawners [i] = (s_spawner_t) { .n = n, .path = tu_worker_path () };
        if (tr_task_spawn (self, s_spawner, &obs->spawners [i], &tasks [i]))
            return 1;
    }
    //  Once every task has started its spawn, Ctrl-C comes from a thread
    //  of its own, as from a terminal: some children have said hello by
    //  then, others not yet.
    long long deadline = tu_now_ms () + tu_ms (5000);
    while (!obs->in_flight && tu_now_ms () < deadline) {
        tr_sleep (ctx, 0);
        bool entered = true;
        for (int i = 0; i < SIGINT_SPAWNERS; i++)
            entered &= obs->spawners [i].entered;
        obs->in_flight = entered;
    }
    pthread_t presser;
    obs->pressed = pthread_create (&presser, NULL, s_press, NULL) == 0;
    for (int i = 0; i < SIGINT_SPAWNERS; i++)
        tr_task_join (&tasks [i], NULL);
    if (obs->pressed)
        pthread_join (presser, NULL);
    obs->close_rc = tr_nursery_close (&n, NULL);
    obs->children_after = tu_children_now ();
    return 0;
}

START_TEST (sigint_while_many_tasks_spawn_cancels_them_and_tr_run_returns_130)
{
    tu_subreaper ();
    for (int round = 0; round < SIGINT_ROUNDS; round++) {
        s_sigint_t obs;
        memset (&obs, 0, sizeof obs);
        tr_config_t config = tu_config ();
        int rc = tr_run (&config, 0, NULL, s_sigint_root, &obs);
        ck_assert_msg (rc == 130, "round %d: tr_run returned %d", round, rc);
        ck_assert_msg (obs.in_flight, "round %d: the spawns never all started", round);
        ck_assert_msg (obs.pressed, "round %d: no thread to send SIGINT", round);
        for (int i = 0; i < SIGINT_SPAWNERS; i++) {
            int spawn_rc = obs.spawners [i].rc;
            ck_assert_msg (obs.spawners [i].returned, "round %d: spawn %d never returned",
                           round, i);
            ck_assert_msg (spawn_rc == 0 || spawn_rc == TR_ECANCELED || spawn_rc == TR_ECLOSED,
                           "round %d: spawn %d returned %s", round, i, tr_errname (spawn_rc));
        }
        ck_assert_msg (obs.children_after == 0, "round %d: %d children after the close",
                       round, obs.children_after);
        tu_assert_no_procs_left (2000);
    }
}
END_TEST

//  --------------------------------------------------------------------------
//  An acknowledged cancel of one run_in_actor child is no failure (rule 2)

#define SIBLINGS 2

typedef struct {
    tr_portal_t *p;
    int rc;
    char text [16];
} s_reader_t;

static int
s_reader (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_reader_t *self = arg;
    const msgpack_object *value;
    const char *text = "";
    self->rc = tr_portal_result (self->p, &value);
    if (self->rc == 0 && tr_unpack (value, "s", &text))
        text = "(not a string)";
    snprintf (self->text, sizeof self->text, "%s", text);
    return 0;
}

typedef struct {
    int start_rc [SIBLINGS + 1];
    bool sleeping;                  //  every child's main call was running
    s_reader_t readers [SIBLINGS];
    int cancel_rc, close_rc;
    size_t close_errors;
    tu_err_t close_error;
} s_cancel_one_t;

static int
s_cancel_one_root (tr_actor_t *self, void *arg)
{
    s_cancel_one_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    //  The first child would sleep long; we cancel it. Its siblings answer
    //  within a second and a half, well after the cancel and the close began.
    tr_portal_t *p [SIBLINGS + 1];
    obs->start_rc [0] = s_run_in (n, "cancelled", "sleep", tr_pack ("[i]", 20000), &p [0]);
    for (int i = 1; i <= SIBLINGS; i++)
        obs->start_rc [i] = s_run_in (n, "sibling", "sleep", tr_pack ("[i]", 1500), &p [i]);
    for (int i = 0; i <= SIBLINGS; i++)
        if (obs->start_rc [i]) {
            tr_nursery_close (&n, NULL);
            return 1;
        }
    obs->sleeping = true;
    for (int i = 0; i <= SIBLINGS; i++)
        obs->sleeping &= tu_wait_sleeping (ctx, p [i], 1, (int) tu_ms (5000));
    tr_task_t *tasks [SIBLINGS];
    for (int i = 0; i < SIBLINGS; i++) {
        obs->readers [i].p = p [i + 1];
        tr_task_spawn (self, s_reader, &obs->readers [i], &tasks [i]);
    }
    obs->cancel_rc = tr_portal_cancel_actor (p [0], (int) tu_ms (5000));
    obs->close_rc = tu_nursery_close (&n, &obs->close_errors, &obs->close_error);
    for (int i = 0; i < SIBLINGS; i++)
        tr_task_join (&tasks [i], NULL);
    return 0;
}

START_TEST (cancelling_one_run_in_actor_child_with_its_ack_does_not_cancel_its_siblings)
{
    tu_subreaper ();
    s_cancel_one_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_cancel_one_root, &obs);
    ck_assert_int_eq (rc, 0);
    for (int i = 0; i <= SIBLINGS; i++)
        ck_assert_tr_ok (obs.start_rc [i]);
    ck_assert_msg (obs.sleeping, "the children's main calls were not all running");
    for (int i = 0; i < SIBLINGS; i++) {
        ck_assert_msg (obs.readers [i].rc == 0, "sibling %d's result is %s, not its value",
                       i, tr_errname (obs.readers [i].rc));
        ck_assert_str_eq (obs.readers [i].text, "slept");
    }
    ck_assert_msg (obs.close_rc == 0 && obs.close_errors == 0,
                   "the close returned %s with %zu errors, the first %s: %s",
                   tr_errname (obs.close_rc), obs.close_errors,
                   obs.close_error.type, obs.close_error.message);
    //  The child acked before it exited: the ack counts, not the exit.
    ck_assert_tr_ok (obs.cancel_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A close does not lose final answers that came before the exits (rule 3)

#define FAILERS 8
#define FAILER_ROUNDS 3

//  True once the process has exited (a zombie nobody reaped yet) or is
//  gone.
static bool
s_exited (int pid)
{
    char path [64], buf [512];
    snprintf (path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return true;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf [n] = 0;
    char *close_paren = strrchr (buf, ')');
    return !close_paren || close_paren [1] == 0 || close_paren [2] == 'Z'
        || close_paren [2] == 'X';
}

typedef struct {
    int pids [FAILERS];
    int count;
    bool all_exited;
} s_hog_t;

//  Keeps the root's thread busy, never parking, until every child has
//  exited: their last frames and their exits are then all waiting when
//  the loop next looks, as on a machine too loaded to keep up.
static int
s_hog (tr_ctx_t *ctx, void *arg)
{
    s_hog_t *self = arg;
    //  First let the loop go round idle once more after the close's
    //  cancels went out.
    for (int i = 0; i < 2; i++)
        if (tr_sleep (ctx, 0))
            return 0;
    long long deadline = tu_now_ms () + tu_ms (5000);
    while (!self->all_exited && tu_now_ms () < deadline) {
        bool all = true;
        for (int i = 0; i < self->count && all; i++)
            all = s_exited (self->pids [i]);
        self->all_exited = all;
    }
    return 0;
}

typedef struct {
    int start_rc [FAILERS];
    bool all_exited;                //  before the loop saw any of it
    int close_rc;
    size_t close_errors;
    int value_errors;               //  of them, the children's ValueErrors
    tu_err_t other;                 //  the first error that is not one
} s_failers_t;

static int
s_failers_root (tr_actor_t *self, void *arg)
{
    s_failers_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    //  The first child fails at once, so the close cancels the others
    //  (rule 6). They cannot stop: each blocks until the same moment and
    //  then fails, acks the cancel and exits, its answer sent just before
    //  its exit.
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    int64_t at = (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000 + tu_ms (1500);
    s_hog_t hog = { .count = 0 };
    tr_portal_t *p;
    obs->start_rc [0] = s_run_in (n, "failer", "fail", tr_pack ("[i]", -1), &p);
    for (int i = 1; i < FAILERS; i++) {
        obs->start_rc [i] = s_run_in (n, "failer", "fail_at", tr_pack ("[I]", at), &p);
        if (obs->start_rc [i] == 0)
            hog.pids [hog.count++] = tr_portal_pid (p);
    }
    //  The hog runs once the close parks, waiting for the exits.
    tr_task_t *task = NULL;
    tr_task_spawn (self, s_hog, &hog, &task);
    tr_error_t *errors = NULL;
    obs->close_rc = tr_nursery_close (&n, &errors);
    tr_task_join (&task, NULL);
    obs->all_exited = hog.all_exited;
    obs->close_errors = tu_err_count (errors);
    for (const tr_error_t *e = errors; e; e = tr_error_next (e))
        if (tr_error_code (e) == TR_EREMOTE && strcmp (tr_error_type (e), "ValueError") == 0)
            obs->value_errors++;
        else
        if (!obs->other.set)
            tu_err_copy (&obs->other, e);
    tr_error_destroy (&errors);
    return 0;
}

START_TEST (a_close_lists_every_final_answer_even_when_the_exits_are_seen_first)
{
    tu_subreaper ();
    for (int round = 0; round < FAILER_ROUNDS; round++) {
        s_failers_t obs;
        memset (&obs, 0, sizeof obs);
        tr_config_t config = tu_config ();
        int rc = tr_run (&config, 0, NULL, s_failers_root, &obs);
        ck_assert_msg (rc == 0, "round %d: tr_run returned %d", round, rc);
        for (int i = 0; i < FAILERS; i++)
            ck_assert_msg (obs.start_rc [i] == 0, "round %d: spawn %d returned %s",
                           round, i, tr_errname (obs.start_rc [i]));
        ck_assert_msg (obs.all_exited, "round %d: the children did not all exit", round);
        ck_assert_msg (obs.close_rc == TR_EREMOTE, "round %d: the close returned %s",
                       round, tr_errname (obs.close_rc));
        ck_assert_msg (obs.close_errors == FAILERS && obs.value_errors == FAILERS,
                       "round %d: the close listed %zu errors, %d of them the children's, "
                       "of %d%s%s%s%s", round, obs.close_errors, obs.value_errors, FAILERS,
                       obs.other.set? "; another: ": "", obs.other.type,
                       obs.other.set? ": ": "", obs.other.message);
        tu_assert_no_procs_left (2000);
    }
}
END_TEST

//  The same for an actor cancel: calls in flight are acked, then the
//  actor cancel, and the actor exits at once. Seen in that order or not,
//  the ack was given: the cancel succeeded (rule 2).

#define ACKED_CALLS 3

typedef struct {
    tr_portal_t *p;
    int rc;
} s_acked_call_t;

static int
s_acked_call (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_acked_call_t *self = arg;
    self->rc = tu_call (self->p, "sleep", tr_pack ("[i]", 20000), NULL);
    return 0;
}

typedef struct {
    bool sleeping;
    bool exited;
    int cancel_rc;
    tu_err_t cancel_error;
    s_acked_call_t calls [ACKED_CALLS];
} s_ack_then_exit_t;

static int
s_ack_then_exit_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_ack_then_exit_t *obs = arg;
    tr_actor_t *actor = tr_ctx_actor (ctx);
    tr_task_t *tasks [ACKED_CALLS];
    for (int i = 0; i < ACKED_CALLS; i++) {
        obs->calls [i].p = p;
        tr_task_spawn (actor, s_acked_call, &obs->calls [i], &tasks [i]);
    }
    obs->sleeping = tu_wait_sleeping (ctx, p, ACKED_CALLS, (int) tu_ms (5000));
    s_hog_t hog = { .pids = { tr_portal_pid (p) }, .count = 1 };
    tr_task_t *task;
    tr_task_spawn (actor, s_hog, &hog, &task);
    obs->cancel_rc = tr_portal_cancel_actor (p, (int) tu_ms (5000));
    if (obs->cancel_rc)
        tu_err_copy (&obs->cancel_error, tr_portal_error (p));
    tr_task_join (&task, NULL);
    obs->exited = hog.all_exited;
    for (int i = 0; i < ACKED_CALLS; i++)
        tr_task_join (&tasks [i], NULL);
    return 0;
}

START_TEST (a_cancel_acked_just_before_the_actor_exits_succeeds)
{
    tu_subreaper ();
    s_ack_then_exit_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_ack_then_exit_body, .obs = &obs };
    tu_run_frame (&frame, NULL);
    ck_assert_msg (obs.sleeping, "the child never reported its calls sleeping");
    ck_assert_msg (obs.exited, "the child did not exit after its cancel");
    ck_assert_msg (obs.cancel_rc == 0, "the cancel returned %s: %s: %s",
                   tr_errname (obs.cancel_rc), obs.cancel_error.type,
                   obs.cancel_error.message);
    for (int i = 0; i < ACKED_CALLS; i++)
        ck_assert_msg (obs.calls [i].rc == TR_ECANCELED || obs.calls [i].rc == TR_ECLOSED,
                       "call %d returned %s", i, tr_errname (obs.calls [i].rc));
    ck_assert_tr_ok (frame.close_rc);
    ck_assert_int_eq (frame.close_errors, 0);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A close whose task is cancelled lists nothing for the children it
//  cancelled itself

typedef struct {
    tr_nursery_t *n;
    int start_rc, close_rc;
    bool closing;
    size_t close_errors;
    tu_err_t close_error;
    bool empty_origin;              //  some error had an empty origin
} s_closer_t;

static int
s_closer (tr_ctx_t *ctx, void *arg)
{
    s_closer_t *self = arg;
    if (tr_nursery_open (tr_ctx_actor (ctx), &self->n))
        return 1;
    tr_portal_t *p;
    self->start_rc = s_run_in (self->n, "sleeper", "sleep", tr_pack ("[i]", 20000), &p);
    self->closing = true;
    tr_error_t *errors = NULL;
    self->close_rc = tr_nursery_close (&self->n, &errors);
    self->close_errors = tu_err_count (errors);
    tu_err_copy (&self->close_error, errors);
    for (const tr_error_t *e = errors; e; e = tr_error_next (e))
        if (*tr_error_origin (e) == 0)
            self->empty_origin = true;
    tr_error_destroy (&errors);
    return 0;
}

typedef struct {
    s_closer_t closer;
    bool in_close;
    int join_rc;
} s_cancel_close_t;

static int
s_cancel_close_root (tr_actor_t *self, void *arg)
{
    s_cancel_close_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_task_t *task;
    if (tr_task_spawn (self, s_closer, &obs->closer, &task))
        return 1;
    obs->in_close = s_wait_flag (ctx, &obs->closer.closing, tu_ms (5000));
    tr_task_cancel (task);
    obs->join_rc = tr_task_join (&task, NULL);
    return 0;
}

START_TEST (a_close_whose_task_is_cancelled_lists_no_error_for_the_children_it_cancelled)
{
    tu_subreaper ();
    s_cancel_close_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    int rc = tr_run (&config, 0, NULL, s_cancel_close_root, &obs);
    ck_assert_int_eq (rc, 0);
    ck_assert_msg (obs.in_close, "the task never reached its close");
    ck_assert_tr_ok (obs.closer.start_rc);
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_msg (!obs.closer.empty_origin, "the close listed an error with no origin: %s: %s",
                   obs.closer.close_error.type, obs.closer.close_error.message);
    ck_assert_msg (obs.closer.close_errors == 0,
                   "the close listed %zu errors for a child it cancelled, the first %s: %s",
                   obs.closer.close_errors, obs.closer.close_error.type,
                   obs.closer.close_error.message);
    //  The header: TR_ECANCELED when the cancel cut short the wait.
    ck_assert_tr_rc (obs.closer.close_rc, TR_ECANCELED);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Closing NULL is no error (the header: destructors accept NULL)

typedef struct {
    int nursery_rc, portal_rc;
    bool errors_cleared;
} s_null_t;

static int
s_null_root (tr_actor_t *self, void *arg)
{
    (void) self;
    s_null_t *obs = arg;
    tr_nursery_t *n = NULL;
    tr_error_t *errors = (tr_error_t *) &errors;
    obs->nursery_rc = tr_nursery_close (&n, &errors);
    obs->errors_cleared = errors == NULL;
    tr_portal_t *p = NULL;
    obs->portal_rc = tr_portal_close (&p);
    return 0;
}

START_TEST (closing_a_nursery_or_portal_that_is_null_returns_0)
{
    tu_subreaper ();
    s_null_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_null_root, &obs), 0);
    ck_assert_tr_ok (obs.nursery_rc);
    ck_assert_msg (obs.errors_cleared, "the close of NULL did not clear the error list");
    ck_assert_tr_ok (obs.portal_rc);
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  Two tasks fail through one portal: each reads its own detail

typedef struct {
    tr_portal_t *p;
    bool a_failed, b_failed;
    bool a_waited, b_waited;
    int a_rc, b_rc;
    tu_err_t a_error, b_error;
} s_two_failures_t;

//  Fails first, then parks until the other task has failed too, and only
//  then reads its detail.
static int
s_fail_a (tr_ctx_t *ctx, void *arg)
{
    s_two_failures_t *obs = arg;
    obs->a_rc = tu_call (obs->p, "fail", tr_pack ("[i]", -4), NULL);
    obs->a_failed = true;
    obs->a_waited = s_wait_flag (ctx, &obs->b_failed, tu_ms (5000));
    tu_err_copy (&obs->a_error, tr_portal_error (obs->p));
    return 0;
}

static int
s_fail_b (tr_ctx_t *ctx, void *arg)
{
    s_two_failures_t *obs = arg;
    obs->b_waited = s_wait_flag (ctx, &obs->a_failed, tu_ms (5000));
    obs->b_rc = tu_call (obs->p, "nope", NULL, NULL);
    tu_err_copy (&obs->b_error, tr_portal_error (obs->p));
    obs->b_failed = true;
    return 0;
}

static int
s_two_failures_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_two_failures_t *obs = arg;
    obs->p = p;
    tr_task_t *a, *b;
    if (tr_task_spawn (tr_ctx_actor (ctx), s_fail_a, obs, &a)
    ||  tr_task_spawn (tr_ctx_actor (ctx), s_fail_b, obs, &b))
        return 1;
    tr_task_join (&a, NULL);
    tr_task_join (&b, NULL);
    return 0;
}

START_TEST (two_tasks_failing_through_one_portal_each_read_their_own_error)
{
    tu_subreaper ();
    s_two_failures_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_two_failures_body, .obs = &obs };
    tu_run_frame (&frame, NULL);
    ck_assert_tr_ok (frame.close_rc);
    ck_assert_msg (obs.a_waited && obs.b_waited, "the two failures did not come in turn");
    ck_assert_tr_rc (obs.a_rc, TR_EREMOTE);
    ck_assert_tr_rc (obs.b_rc, TR_ENOTEXPOSED);
    ck_assert_msg (obs.b_error.set, "the second task read no error");
    ck_assert_tr_rc (obs.b_error.code, TR_ENOTEXPOSED);
    ck_assert_str_eq (obs.b_error.type, "NotExposed");
    ck_assert_msg (obs.a_error.set, "the first task read no error");
    ck_assert_msg (obs.a_error.code == TR_EREMOTE && strcmp (obs.a_error.type, "ValueError") == 0,
                   "the first task read another task's error: %s %s: %s",
                   tr_errname (obs.a_error.code), obs.a_error.type, obs.a_error.message);
    ck_assert_str_eq (obs.a_error.message, "n must be > 0, got -4");
    tu_assert_no_procs_left (2000);
}
END_TEST

//  --------------------------------------------------------------------------
//  A lease that ran out and is renewed before the registry swept it wakes
//  the tasks waiting for its name (a worker cut off and back: the root
//  waiting for it timed out although it had registered again).

#define S_LEASE_MS 3000

typedef struct {
    int open_rc, first_rc, renew_rc, wait_rc;
    long long waited_ms;
} s_revived_t;

//  Register the name "revived" for an actor at our own endpoint (so a
//  find can open a portal on it) through p.
static int
s_register_revived (tr_actor_t *self, tr_portal_t *p)
{
    tr_args_t *args = tr_pack ("[sssiss]", "revived", "revived@regression",
                               tr_actor_endpoint (self), (int) getpid (), "localhost", "");
    int rc = tr_portal_run (p, "tr.registry.register", args, NULL);
    tr_args_destroy (&args);
    return rc;
}

static int
s_revived_waiter (tr_ctx_t *ctx, void *arg)
{
    s_revived_t *obs = arg;
    tr_portal_t *p = NULL;
    long long start = tu_now_ms ();
    obs->wait_rc = tr_wait_for_actor (tr_ctx_actor (ctx), "revived", tu_ms (3000), &p);
    obs->waited_ms = tu_now_ms () - start;
    tr_portal_close (&p);
    return 0;
}

static void
s_sleep_until (tr_ctx_t *ctx, long long at)
{
    long long left = at - tu_now_ms ();
    if (left > 0)
        tr_sleep (ctx, (int) left);
}

static int
s_revived_root (tr_actor_t *self, void *arg)
{
    s_revived_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_portal_t *p = NULL;
    if ((obs->open_rc = tr_portal_open (self, tr_actor_endpoint (self), tu_ms (2000), &p)))
        return 1;
    obs->first_rc = s_register_revived (self, p);
    long long registered = tu_now_ms ();
    //  A listing sweeps (at most every quarter lease) while the lease
    //  still runs: the next sweep is due a quarter lease later.
    s_sleep_until (ctx, registered + S_LEASE_MS * 8 / 10);
    tr_value_t *v = NULL;
    tr_registry_list (self, NULL, &v);
    tr_value_destroy (&v);
    //  Once the lease ran out, a task waits for the name; before the
    //  next sweep, the same actor registers it again: a renewal.
    s_sleep_until (ctx, registered + S_LEASE_MS + 20);
    tr_task_t *waiter;
    if (tr_task_spawn (self, s_revived_waiter, obs, &waiter))
        return 1;
    s_sleep_until (ctx, registered + S_LEASE_MS + 60);
    obs->renew_rc = s_register_revived (self, p);
    tr_task_join (&waiter, NULL);
    tr_portal_close (&p);
    return 0;
}

START_TEST (a_lease_renewed_after_it_ran_out_wakes_those_waiting_for_its_name)
{
    s_revived_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    config.size = sizeof config;
    config.bind = "tcp";
    config.registry_lease_ms = S_LEASE_MS;
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_revived_root, &obs), 0);
    ck_assert_tr_ok (obs.open_rc);
    ck_assert_tr_ok (obs.first_rc);
    ck_assert_tr_ok (obs.renew_rc);
    ck_assert_tr_ok (obs.wait_rc);
    ck_assert_msg (obs.waited_ms < tu_ms (1000), "the wait ended %lld ms after it began",
                   obs.waited_ms);
}
END_TEST

//  --------------------------------------------------------------------------

static Suite *
s_suite (void)
{
    Suite *s = suite_create ("regressions");
    TCase *tc = tu_tcase (s, "portal", 20);
    tcase_add_test (tc, two_tasks_cancelling_one_actor_with_no_timeout_both_get_the_ack);
    tcase_add_test (tc, two_tasks_failing_through_one_portal_each_read_their_own_error);
    tcase_add_test (tc, closing_a_nursery_or_portal_that_is_null_returns_0);

    tc = tu_tcase (s, "interrupted spawns", 20);
    tcase_add_test (tc, spawns_interrupted_by_another_tasks_cancel_and_close_fail_and_the_root_goes_on);
    tcase_add_test (tc, spawns_interrupted_by_a_close_fail_as_closed);
    tcase_add_test (tc, sigint_while_many_tasks_spawn_cancels_them_and_tr_run_returns_130);

    tc = tu_tcase (s, "close", 20);
    tcase_add_test (tc, cancelling_one_run_in_actor_child_with_its_ack_does_not_cancel_its_siblings);
    tcase_add_test (tc, a_close_whose_task_is_cancelled_lists_no_error_for_the_children_it_cancelled);

    tc = tu_tcase (s, "draining", 20);
    tcase_add_test (tc, a_close_lists_every_final_answer_even_when_the_exits_are_seen_first);
    tcase_add_test (tc, a_cancel_acked_just_before_the_actor_exits_succeeds);

    tc = tu_tcase (s, "registry", 20);
    tcase_add_test (tc, a_lease_renewed_after_it_ran_out_wakes_those_waiting_for_its_name);
    return s;
}

int
main (void)
{
    return tu_run_suite (s_suite (), CK_FORK);
}
