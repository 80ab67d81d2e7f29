/*  =========================================================================
    test_ctx.c - scenario: task contexts, the library's own exports, and
    the configuration's size

    Each task owns the detail of its own failures, however many tasks
    call through one portal; every actor serves the library's tr.*
    functions beside its own; a config made with TR_CONFIG_INIT, or
    zeroed as before, is read correctly and a larger one is refused.
    =========================================================================
*/
#include "testutil.h"

//  --------------------------------------------------------------------------
//  Per-task error detail

typedef struct {
    tr_portal_t *p;
    int rc;
    tu_err_t via_ctx, via_portal;
} s_failer_t;

//  Task B: fails with NotExposed while A is parked.
static int
s_not_exposed (tr_ctx_t *ctx, void *arg)
{
    s_failer_t *b = arg;
    b->rc = tr_portal_run (b->p, "no_such_function", NULL, NULL);
    tu_err_copy (&b->via_ctx, tr_ctx_error (ctx));
    tu_err_copy (&b->via_portal, tr_portal_error (b->p));
    return 0;
}

typedef struct {
    s_failer_t a, b;
    int join_rc;
} s_errors_t;

static int
s_errors_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_errors_t *obs = arg;
    obs->a.p = obs->b.p = p;
    tr_args_t *args = tr_pack ("[i]", -1);
    obs->a.rc = tr_portal_run (p, "fail", args, NULL);
    tr_args_destroy (&args);
    //  A parks until B has failed through the same portal, then reads.
    tr_task_t *b;
    if (tr_task_spawn (tr_ctx_actor (ctx), s_not_exposed, &obs->b, &b))
        return 1;
    obs->join_rc = tr_task_join (&b, NULL);
    tu_err_copy (&obs->a.via_ctx, tr_ctx_error (ctx));
    tu_err_copy (&obs->a.via_portal, tr_portal_error (p));
    return 0;
}

START_TEST (two_tasks_failing_through_one_portal_each_read_their_own_error)
{
    tu_subreaper ();
    s_errors_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_errors_body, .obs = &obs };
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, tu_frame_root, &frame), 0);
    ck_assert_tr_ok (frame.start_rc);
    ck_assert_tr_ok (obs.join_rc);
    ck_assert_tr_rc (obs.a.rc, TR_EREMOTE);
    ck_assert_tr_rc (obs.b.rc, TR_ENOTEXPOSED);
    ck_assert_str_eq (obs.a.via_ctx.type, "ValueError");
    ck_assert_str_eq (obs.a.via_portal.type, "ValueError");
    ck_assert_str_eq (obs.b.via_ctx.type, "NotExposed");
    ck_assert_str_eq (obs.b.via_portal.type, "NotExposed");
    ck_assert_ptr_nonnull (strstr (obs.b.via_ctx.message, "no_such_function"));
    tu_assert_no_procs_left (0);
}
END_TEST

//  A portal the task never failed on has no error for it.
typedef struct {
    bool other_is_null;
    int rc;
} s_other_t;

static int
s_other_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    s_other_t *obs = arg;
    tr_nursery_t *n;
    tr_portal_t *q = NULL;
    if (tr_nursery_open (tr_ctx_actor (ctx), &n))
        return 1;
    obs->rc = tr_nursery_start_actor (n, "other", NULL, &q);
    if (obs->rc == 0) {
        tr_portal_run (p, "no_such_function", NULL, NULL);
        obs->other_is_null = tr_portal_error (q) == NULL && tr_portal_error (p) != NULL;
    }
    tr_nursery_close (&n, NULL);
    return 0;
}

START_TEST (a_failure_on_one_portal_is_not_reported_on_another)
{
    tu_subreaper ();
    s_other_t obs = { false, -1 };
    tu_frame_t frame = { .body = s_other_body, .obs = &obs };
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, tu_frame_root, &frame), 0);
    ck_assert_tr_ok (obs.rc);
    ck_assert (obs.other_is_null);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  The library's own exports

typedef struct {
    int rc;
    char uid [256];
    int pid;
    int major;
} s_info_t;

static int
s_info_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    s_info_t *obs = arg;
    tr_value_t *v = NULL;
    obs->rc = tr_portal_run (p, "tr.info", NULL, &v);
    const char *uid = "";
    int minor = -1;
    if (obs->rc == 0
    &&  tr_unpack (tr_value_object (v), "{s:s, s:i, s:[ii]}", "uid", &uid, "pid", &obs->pid,
                   "protocol", &obs->major, &minor))
        obs->rc = TR_EFORMAT;
    snprintf (obs->uid, sizeof obs->uid, "%s", uid);
    tr_value_destroy (&v);
    return obs->pid == tr_portal_pid (p)? 0: 2;
}

START_TEST (every_actor_serves_tr_info_beside_its_own_exports)
{
    tu_subreaper ();
    s_info_t obs;
    memset (&obs, 0, sizeof obs);
    tu_frame_t frame = { .body = s_info_body, .obs = &obs };
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, tu_frame_root, &frame), 0);
    ck_assert_tr_ok (obs.rc);
    ck_assert_str_eq (obs.uid, frame.uid);
    ck_assert_int_eq (obs.major, TR_PROTOCOL_MAJOR);
    tu_assert_no_procs_left (0);
}
END_TEST

static int
s_unknown_internal_body (tr_ctx_t *ctx, tr_portal_t *p, void *arg)
{
    (void) ctx;
    int *rc = arg;
    *rc = tr_portal_run (p, "tr.nothing", NULL, NULL);
    return 0;
}

START_TEST (an_unknown_library_function_is_not_exposed)
{
    tu_subreaper ();
    int rc = 0;
    tu_frame_t frame = { .body = s_unknown_internal_body, .obs = &rc };
    tr_config_t config = tu_config ();
    ck_assert_int_eq (tr_run (&config, 0, NULL, tu_frame_root, &frame), 0);
    ck_assert_tr_rc (rc, TR_ENOTEXPOSED);
    tu_assert_no_procs_left (0);
}
END_TEST

//  --------------------------------------------------------------------------
//  The configuration's size

static int
s_name_root (tr_actor_t *self, void *arg)
{
    snprintf (arg, 64, "%s", tr_actor_name (self));
    return 7;
}

START_TEST (a_config_made_with_tr_config_init_is_read_whole)
{
    tr_config_t config = TR_CONFIG_INIT;
    config.name = "initialised";
    char name [64] = "";
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_name_root, name), 7);
    ck_assert_str_eq (name, "initialised");
}
END_TEST

START_TEST (a_zeroed_config_of_the_first_layout_is_read_as_before)
{
    tr_config_t config;
    memset (&config, 0, sizeof config);
    config.name = "zeroed";
    char name [64] = "";
    ck_assert_int_eq (tr_run (&config, 0, NULL, s_name_root, name), 7);
    ck_assert_str_eq (name, "zeroed");
}
END_TEST

START_TEST (a_config_larger_than_this_library_knows_is_refused)
{
    tr_config_t config = TR_CONFIG_INIT;
    config.size = sizeof config + 8;
    char name [64] = "";
    ck_assert_tr_rc (tr_run (&config, 0, NULL, s_name_root, name), TR_EINVAL);
    ck_assert_str_eq (name, "");
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("ctx");
    TCase *tc = tu_tcase (s, "errors", 30);
    tcase_add_test (tc, two_tasks_failing_through_one_portal_each_read_their_own_error);
    tcase_add_test (tc, a_failure_on_one_portal_is_not_reported_on_another);
    tc = tu_tcase (s, "library exports", 30);
    tcase_add_test (tc, every_actor_serves_tr_info_beside_its_own_exports);
    tcase_add_test (tc, an_unknown_library_function_is_not_exposed);
    tc = tu_tcase (s, "config", 30);
    tcase_add_test (tc, a_config_made_with_tr_config_init_is_read_whole);
    tcase_add_test (tc, a_zeroed_config_of_the_first_layout_is_read_as_before);
    tcase_add_test (tc, a_config_larger_than_this_library_knows_is_refused);
    return tu_run_suite (s, CK_FORK);
}
