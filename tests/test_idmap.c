/*  =========================================================================
    test_idmap.c - the constant-time map from ids to pointers

    Checked against a plain array of what should be there, through
    growth, collisions and deletions that must shift later entries back.
    =========================================================================
*/
#include "troupe_private.h"
#include "testutil.h"

START_TEST (an_empty_map_finds_nothing_and_deletes_nothing)
{
    tri_idmap_t map;
    tri_idmap_init (&map);
    ck_assert_ptr_null (tri_idmap_get (&map, 1));
    ck_assert_ptr_null (tri_idmap_del (&map, 1));
    tri_idmap_fini (&map);
}
END_TEST

START_TEST (put_get_and_del_agree_with_a_reference_through_growth_and_deletions)
{
    enum { N = 5000 };
    static char values [N];
    static bool present [N];
    memset (present, 0, sizeof present);
    tri_idmap_t map;
    tri_idmap_init (&map);
    unsigned seed = 12345;
    size_t size = 0;
    for (int round = 0; round < 200000; round++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int) ((seed >> 8) % N);
        //  Ids far apart and close together: sequential cids and
        //  scattered ones both occur.
        uint64_t key = (i & 1)? (uint64_t) i + 1: ((uint64_t) i << 40) + 7;
        if (present [i]) {
            ck_assert_ptr_eq (tri_idmap_get (&map, key), &values [i]);
            ck_assert_ptr_eq (tri_idmap_del (&map, key), &values [i]);
            present [i] = false;
            size--;
        }
        else {
            ck_assert_ptr_null (tri_idmap_get (&map, key));
            ck_assert_int_eq (tri_idmap_put (&map, key, &values [i]), 0);
            present [i] = true;
            size++;
        }
        ck_assert_uint_eq (map.size, size);
    }
    for (int i = 0; i < N; i++) {
        uint64_t key = (i & 1)? (uint64_t) i + 1: ((uint64_t) i << 40) + 7;
        ck_assert_ptr_eq (tri_idmap_get (&map, key), present [i]? &values [i]: NULL);
    }
    tri_idmap_fini (&map);
}
END_TEST

START_TEST (the_largest_id_is_a_key_like_any_other)
{
    tri_idmap_t map;
    tri_idmap_init (&map);
    int a, b;
    ck_assert_int_eq (tri_idmap_put (&map, UINT64_MAX, &a), 0);
    ck_assert_int_eq (tri_idmap_put (&map, UINT64_MAX - 1, &b), 0);
    ck_assert_ptr_eq (tri_idmap_get (&map, UINT64_MAX), &a);
    ck_assert_ptr_eq (tri_idmap_del (&map, UINT64_MAX), &a);
    ck_assert_ptr_eq (tri_idmap_get (&map, UINT64_MAX - 1), &b);
    tri_idmap_fini (&map);
}
END_TEST

int
main (void)
{
    Suite *s = suite_create ("idmap");
    TCase *tc = tu_tcase (s, "idmap", 30);
    tcase_add_test (tc, an_empty_map_finds_nothing_and_deletes_nothing);
    tcase_add_test (tc, put_get_and_del_agree_with_a_reference_through_growth_and_deletions);
    tcase_add_test (tc, the_largest_id_is_a_key_like_any_other);
    return tu_run_suite (s, CK_FORK_GETENV);
}
