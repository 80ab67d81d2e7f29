/*  =========================================================================
    test_rule7_cancel_during_spawn.c - a nursery cancelled mid-spawn
    kills and reaps the process

    Rule 7: a nursery cancelled before a child's hello exists kills and
    reaps that process; nothing waits for a handshake that cannot come,
    and no zombie is left. The children that never say hello are
    /bin/cat, reading a stdin nobody writes to; the hello deadline is
    20 s, so a spawn that ends sooner was ended by the cancel.
    =========================================================================
*/
#include "testutil.h"
#include "testspawn.h"

#define SPAWNERS 4

typedef struct {
    tr_nursery_t *n;
    const char *path;               //  worker_path; NULL: tests/worker
    bool closed_under;              //  n may be gone when the spawn returns
    int rc;
    bool portal_null;
    tu_err_t error;                 //  tr_nursery_error after it failed
} s_spawner_t;

static int
s_spawner (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_spawner_t *self = arg;
    tr_spawn_opts_t opts = { .worker_path = self->path };
    tr_portal_t *p = (tr_portal_t *) &p;
    self->rc = tr_nursery_start_actor (self->n, "never", &opts, &p);
    self->portal_null = p == NULL;
    if (self->rc && !self->closed_under)
        tu_err_copy (&self->error, tr_nursery_error (self->n));
    return 0;
}

typedef struct {
    bool and_close;                 //  close at once, without joining first
    s_spawner_t spawners [SPAWNERS];
    int nspawners;
    bool saw_processes;
    int cancel_rc, close_rc;
    int join_rc [SPAWNERS];
    size_t close_errors;
    long long spawns_ms;            //  from the cancel to the last spawn's end
    int children_after_spawns;
    int children_after_close;
} s_midspawn_t;

static int
s_midspawn_root (tr_actor_t *self, void *arg)
{
    s_midspawn_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_task_t *tasks [SPAWNERS];
    for (int i = 0; i < obs->nspawners; i++) {
        obs->spawners [i].n = n;
        obs->spawners [i].path = "/bin/cat";
        obs->spawners [i].closed_under = obs->and_close;
        tr_task_spawn (self, s_spawner, &obs->spawners [i], &tasks [i]);
    }
    //  The spawning tasks run once we park: wait until all their
    //  processes exist, so the cancel lands while they wait for hellos.
    obs->saw_processes = tu_wait_children (ctx, obs->nspawners, tu_now_ms () + tu_ms (5000));
    long long t0 = tu_now_ms ();
    obs->cancel_rc = tr_nursery_cancel (n, false);
    if (obs->and_close)
        obs->close_rc = tu_nursery_close (&n, &obs->close_errors, NULL);
    for (int i = 0; i < obs->nspawners; i++)
        obs->join_rc [i] = tr_task_join (&tasks [i], NULL);
    obs->spawns_ms = tu_now_ms () - t0;
    obs->children_after_spawns = tu_children_now ();
    if (!obs->and_close)
        obs->close_rc = tu_nursery_close (&n, &obs->close_errors, NULL);
    obs->children_after_close = tu_children_now ();
    return 0;
}

static void
s_check_midspawn (s_midspawn_t *obs)
{
    tu_subreaper ();
    tu_run_without_hellos (s_midspawn_root, obs);
    ck_assert_msg (obs->saw_processes, "the spawning tasks never started their processes");
    ck_assert_tr_ok (obs->cancel_rc);
    for (int i = 0; i < obs->nspawners; i++) {
        s_spawner_t *sp = &obs->spawners [i];
        ck_assert_tr_ok (obs->join_rc [i]);
        //  Cancelled: the header's TR_ECLOSED for a cancelled nursery, or
        //  TR_ECANCELED; never a crash of ours, never the hello timeout.
        ck_assert_msg (sp->rc == TR_ECLOSED || sp->rc == TR_ECANCELED,
                       "spawn %d returned %s (%s)", i, tr_errname (sp->rc), sp->error.message);
        ck_assert_msg (sp->portal_null, "a cancelled spawn left a portal");
    }
    //  Nothing waited for the 20 s hello deadline.
    ck_assert_msg (obs->spawns_ms < tu_ms (2000), "the spawns ended %lld ms after the cancel",
                   obs->spawns_ms);
    //  Killed and reaped by the time the spawns returned: no zombie.
    ck_assert_int_eq (obs->children_after_spawns, 0);
    //  A spawn that failed is no failure of the nursery's children.
    ck_assert_tr_ok (obs->close_rc);
    ck_assert_int_eq (obs->close_errors, 0);
    ck_assert_int_eq (obs->children_after_close, 0);
    tu_assert_no_procs_left (0);
}

START_TEST (a_nursery_cancelled_by_another_task_during_a_spawn_kills_and_reaps_the_process)
{
    s_midspawn_t obs;
    memset (&obs, 0, sizeof obs);
    obs.nspawners = 1;
    s_check_midspawn (&obs);
}
END_TEST

START_TEST (a_nursery_cancelled_during_several_spawns_kills_and_reaps_every_process)
{
    s_midspawn_t obs;
    memset (&obs, 0, sizeof obs);
    obs.nspawners = SPAWNERS;
    s_check_midspawn (&obs);
}
END_TEST

START_TEST (a_nursery_cancelled_and_closed_during_spawns_kills_and_reaps_every_process)
{
    s_midspawn_t obs;
    memset (&obs, 0, sizeof obs);
    obs.nspawners = SPAWNERS;
    obs.and_close = true;
    s_check_midspawn (&obs);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("rule7_cancel_during_spawn");
    TCase *tc = tu_tcase (suite, "spawn", 30);
    tcase_add_test (tc, a_nursery_cancelled_by_another_task_during_a_spawn_kills_and_reaps_the_process);
    tcase_add_test (tc, a_nursery_cancelled_during_several_spawns_kills_and_reaps_every_process);
    tcase_add_test (tc, a_nursery_cancelled_and_closed_during_spawns_kills_and_reaps_every_process);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
