/*  =========================================================================
    test_rule9_result_cache.c - a run_in_actor result is a kept message

    Rule 9: a portal keeps the whole final message of the remote main
    task; tr_portal_result may be called any number of times and returns
    the same value, nil included, without waiting again. The root reads
    results many times over, from one task and from several, before and
    after the children have exited.
    =========================================================================
*/
#include "testutil.h"

#define READS 1000

//  --------------------------------------------------------------------------
//  Read many times: the same value, the first read waits, no other does

typedef struct {
    int start_rc [3];
    int first_rc [3], again_rc [3];
    bool same [3];                  //  every read gave the first's object
    int failed_reads;               //  reads after the first that failed
    long long again_ms;             //  all the reads after the first
    bool nil_is_nil;
    char echo [64];                 //  the nested value, re-read last
    int64_t sum;
    int close_rc;
} s_many_t;

static int
s_many_root (tr_actor_t *self, void *arg)
{
    s_many_t *obs = arg;
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p [3] = { NULL, NULL, NULL };
    tr_args_t *args = tr_pack ("[ii]", 40, 2);
    obs->start_rc [0] = tr_nursery_run_in_actor (n, "nil", "nil", NULL, &p [0]);
    obs->start_rc [1] = tr_nursery_run_in_actor (n, "adder", "add", args, &p [1]);
    tr_args_destroy (&args);
    //  A nested value: the whole message is kept, not a scalar of it.
    args = tr_pack ("[s {s:[i n b]}]", "whole", "inner", 7, 1);
    obs->start_rc [2] = tr_nursery_run_in_actor (n, "echo", "echo", args, &p [2]);
    tr_args_destroy (&args);
    const msgpack_object *first [3] = { NULL, NULL, NULL };
    for (int i = 0; i < 3; i++)
        if (obs->start_rc [i] == 0)
            obs->first_rc [i] = tr_portal_result (p [i], &first [i]);
    long long t0 = tu_now_ms ();
    for (int i = 0; i < 3; i++) {
        if (obs->start_rc [i] || obs->first_rc [i])
            continue;
        obs->same [i] = true;
        for (int k = 0; k < READS; k++) {
            const msgpack_object *v = NULL;
            int rc = tr_portal_result (p [i], &v);
            if (rc)
                obs->failed_reads++;
            if (v != first [i])
                obs->same [i] = false;
            obs->again_rc [i] = rc;
        }
    }
    obs->again_ms = tu_now_ms () - t0;
    if (first [0])
        obs->nil_is_nil = first [0]->type == MSGPACK_OBJECT_NIL;
    if (first [1])
        tr_unpack (first [1], "I", &obs->sum);
    const char *word;
    int seven;
    bool yes;
    if (first [2] && tr_unpack (first [2], "[s {s:[i n b]}]", &word, "inner", &seven, &yes) == 0)
        snprintf (obs->echo, sizeof obs->echo, "%s %d %s", word, seven, yes? "true": "false");
    obs->close_rc = tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (a_result_read_a_thousand_times_is_the_same_value_nil_included_without_waiting)
{
    tu_subreaper ();
    s_many_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_many_root, &obs), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_tr_ok (obs.start_rc [i]);
        ck_assert_tr_ok (obs.first_rc [i]);
        ck_assert_tr_ok (obs.again_rc [i]);
        ck_assert_msg (obs.same [i], "result %d changed between reads", i);
    }
    ck_assert_int_eq (obs.failed_reads, 0);
    ck_assert_msg (obs.nil_is_nil, "nil's result is not nil");
    ck_assert_int_eq (obs.sum, 42);
    ck_assert_str_eq (obs.echo, "whole 7 true");
    //  3000 reads from the cache: no read parks for an answer.
    ck_assert_msg (obs.again_ms < tu_ms (200), "%d reads took %lld ms", 3 * READS, obs.again_ms);
    ck_assert_tr_ok (obs.close_rc);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  Many readers of one result, before the answer and after the exit

#define READERS 8

typedef struct {
    tr_portal_t *p;
    int rc [2];
    const msgpack_object *v [2];
} s_reader_t;

static int
s_reader (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_reader_t *self = arg;
    for (int i = 0; i < 2; i++)
        self->rc [i] = tr_portal_result (self->p, &self->v [i]);
    return 0;
}

typedef struct {
    int start_rc;
    s_reader_t readers [READERS];
    int join_rc [READERS];
    bool gone;
    int late_rc;
    bool late_kept;                 //  the kept result is ["kept"]
    bool all_same;
    long long late_ms;
    int close_rc;
} s_readers_t;

static int
s_readers_root (tr_actor_t *self, void *arg)
{
    s_readers_t *obs = arg;
    tr_ctx_t *ctx = tr_actor_ctx (self);
    tr_nursery_t *n;
    if (tr_nursery_open (self, &n))
        return 1;
    tr_portal_t *p = NULL;
    //  The readers run as soon as this task parks, before the loop reads
    //  the answer, so they park for it; one that came later would read
    //  the kept message. All must see the same object.
    tr_args_t *args = tr_pack ("[s]", "kept");
    obs->start_rc = tr_nursery_run_in_actor (n, "echo", "echo", args, &p);
    tr_args_destroy (&args);
    if (obs->start_rc == 0) {
        int pid = tr_portal_pid (p);
        tr_task_t *tasks [READERS];
        for (int i = 0; i < READERS; i++) {
            obs->readers [i].p = p;
            tr_task_spawn (self, s_reader, &obs->readers [i], &tasks [i]);
        }
        for (int i = 0; i < READERS; i++)
            obs->join_rc [i] = tr_task_join (&tasks [i], NULL);
        //  Once the child has exited, the kept message is all there is.
        char path [64];
        snprintf (path, sizeof path, "/proc/%d", pid);
        long long deadline = tu_now_ms () + tu_ms (5000);
        while (access (path, F_OK) == 0 && tu_now_ms () < deadline && tr_sleep (ctx, 10) == 0)
            ;
        obs->gone = access (path, F_OK) != 0;
        long long t0 = tu_now_ms ();
        const msgpack_object *late = NULL;
        obs->late_rc = tr_portal_result (p, &late);
        obs->late_ms = tu_now_ms () - t0;
        const char *text;
        obs->late_kept = late && tr_unpack (late, "[s]", &text) == 0 && strcmp (text, "kept") == 0;
        obs->all_same = true;
        for (int i = 0; i < READERS; i++)
            for (int k = 0; k < 2; k++)
                if (obs->readers [i].v [k] != late)
                    obs->all_same = false;
    }
    obs->close_rc = tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (every_task_reading_one_result_gets_the_same_value_even_after_the_child_exited)
{
    tu_subreaper ();
    s_readers_t obs;
    memset (&obs, 0, sizeof obs);
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_readers_root, &obs), 0);
    ck_assert_tr_ok (obs.start_rc);
    for (int i = 0; i < READERS; i++) {
        ck_assert_tr_ok (obs.join_rc [i]);
        ck_assert_tr_ok (obs.readers [i].rc [0]);
        ck_assert_tr_ok (obs.readers [i].rc [1]);
    }
    ck_assert_msg (obs.gone, "the child did not exit after answering");
    ck_assert_tr_ok (obs.late_rc);
    ck_assert_msg (obs.late_kept, "the kept result is not [\"kept\"]");
    ck_assert_msg (obs.all_same, "the readers got different objects");
    ck_assert_msg (obs.late_ms < tu_ms (100), "a read after the exit took %lld ms", obs.late_ms);
    ck_assert_tr_ok (obs.close_rc);
    tu_assert_no_procs_left (0);
}
END_TEST

int
main (void)
{
    Suite *suite = suite_create ("rule9_result_cache");
    TCase *tc = tu_tcase (suite, "results", 30);
    tcase_add_test (tc, a_result_read_a_thousand_times_is_the_same_value_nil_included_without_waiting);
    tcase_add_test (tc, every_task_reading_one_result_gets_the_same_value_even_after_the_child_exited);
    return tu_run_suite (suite, CK_FORK_GETENV);
}
