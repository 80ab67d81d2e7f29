/*  =========================================================================
    test_value.c - tr_pack, tr_unpack, tr_value_t and replies

    Values go through the same path as on the wire: tr_pack, the encoded
    bytes, tr_value_decode, tr_unpack. Mismatches and malformed formats are
    checked for their return code and for the reason they give.
    =========================================================================
*/
#include "testutil.h"
#include "troupe_private.h"
#include <fcntl.h>
#include <limits.h>

//  Decode what args holds (and destroy args); the test fails if either
//  step fails.
static tr_value_t *
s_decode (tr_args_t *args)
{
    ck_assert_ptr_nonnull (args);
    tr_value_t *value = tr_value_decode (tr_args_data (args), tr_args_size (args));
    ck_assert_ptr_nonnull (value);
    tr_args_destroy (&args);
    ck_assert_ptr_null (args);
    return value;
}

//  True if args holds exactly these bytes.
static bool
s_bytes_are (const tr_args_t *args, const char *bytes, size_t size)
{
    return tr_args_size (args) == size
        && memcmp (tr_args_data (args), bytes, size) == 0;
}

static size_t
s_count_lines (const char *text)
{
    size_t lines = 0;
    for (; *text; text++)
        if (*text == '\n')
            lines++;
    return lines;
}

//  ==========================================================================
//  Round trips

START_TEST (test_every_letter_round_trips_through_the_wire)
{
    tr_value_t *inner = s_decode (tr_pack ("{s:i}", "k", 7));
    const char bytes [3] = { 0, 1, 2 };
    tr_value_t *value = s_decode (tr_pack (
        "[i, I, u, f, b, b, n, s, s#, y, o, s]",
        -42, (int64_t) INT64_MIN, (uint64_t) UINT64_MAX, 2.5, 1, 0,
        "hello", "abcdef", (size_t) 3, bytes, sizeof bytes,
        tr_value_object (inner), (const char *) NULL));

    int i = 0;
    int64_t I = 0;
    uint64_t u = 0;
    double f = 0;
    bool yes = false, no = true;
    const char *s = NULL, *s3 = NULL;
    size_t s3_size = 0, y_size = 0;
    const void *y = NULL;
    const msgpack_object *o = NULL;
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "[i I u f b b n s s# y o n]",
                                &i, &I, &u, &f, &yes, &no, &s, &s3, &s3_size,
                                &y, &y_size, &o));
    ck_assert_int_eq (i, -42);
    ck_assert (I == INT64_MIN);
    ck_assert (u == UINT64_MAX);
    ck_assert (f == 2.5);
    ck_assert (yes);
    ck_assert (!no);
    ck_assert_str_eq (s, "hello");
    ck_assert_uint_eq (s3_size, 3);
    ck_assert_str_eq (s3, "abc");           //  NUL after the 3 bytes
    ck_assert_uint_eq (y_size, 3);
    ck_assert_mem_eq (y, bytes, 3);
    ck_assert_int_eq (o->type, MSGPACK_OBJECT_MAP);
    int k = 0;
    ck_assert_tr_ok (tr_unpack (o, "{s:i}", "k", &k));
    ck_assert_int_eq (k, 7);

    //  The wire types are the ones each letter promises.
    const msgpack_object *items = tr_value_object (value)->via.array.ptr;
    ck_assert_uint_eq (tr_value_object (value)->via.array.size, 12);
    ck_assert_int_eq (items [0].type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    ck_assert_int_eq (items [2].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    ck_assert_int_eq (items [3].type, MSGPACK_OBJECT_FLOAT64);
    ck_assert_int_eq (items [4].type, MSGPACK_OBJECT_BOOLEAN);
    ck_assert_int_eq (items [6].type, MSGPACK_OBJECT_NIL);
    ck_assert_int_eq (items [7].type, MSGPACK_OBJECT_STR);
    ck_assert_int_eq (items [9].type, MSGPACK_OBJECT_BIN);
    ck_assert_int_eq (items [11].type, MSGPACK_OBJECT_NIL);

    tr_value_destroy (&value);
    tr_value_destroy (&inner);
    ck_assert_ptr_null (value);
}
END_TEST

START_TEST (test_each_letter_alone_is_a_top_level_value)
{
    int i = 0;
    tr_value_t *value = s_decode (tr_pack ("i", 12345));
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "i", &i));
    ck_assert_int_eq (i, 12345);
    tr_value_destroy (&value);

    const char *s = NULL;
    value = s_decode (tr_pack ("s", "top"));
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "s", &s));
    ck_assert_str_eq (s, "top");
    tr_value_destroy (&value);

    const void *y = NULL;
    size_t size = 0;
    value = s_decode (tr_pack ("y", "\xff\xfe", (size_t) 2));
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "y", &y, &size));
    ck_assert_uint_eq (size, 2);
    ck_assert_mem_eq (y, "\xff\xfe", 2);
    tr_value_destroy (&value);

    double f = 0;
    value = s_decode (tr_pack ("f", -0.125));
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "f", &f));
    ck_assert (f == -0.125);
    tr_value_destroy (&value);

    value = s_decode (tr_pack ("n"));
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "n"));
    tr_value_destroy (&value);

    bool b = false;
    value = s_decode (tr_pack ("b", true));
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "b", &b));
    ck_assert (b);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_integer_limits_round_trip)
{
    tr_value_t *value = s_decode (tr_pack ("[i i i I I I u u]",
        INT_MIN, INT_MAX, 0, (int64_t) INT64_MIN, (int64_t) INT64_MAX, (int64_t) -1,
        (uint64_t) 0, (uint64_t) UINT64_MAX));
    int a, b, c;
    int64_t d, e, f;
    uint64_t g, h;
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "[i i i I I I u u]",
                                &a, &b, &c, &d, &e, &f, &g, &h));
    ck_assert_int_eq (a, INT_MIN);
    ck_assert_int_eq (b, INT_MAX);
    ck_assert_int_eq (c, 0);
    ck_assert (d == INT64_MIN);
    ck_assert (e == INT64_MAX);
    ck_assert (f == -1);
    ck_assert (g == 0);
    ck_assert (h == UINT64_MAX);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_nested_arrays_and_maps_round_trip)
{
    tr_value_t *value = s_decode (tr_pack (
        "{s:[i, {s:s, s:[]}], s:{}, s:[[], [n, [b]]], s:{s:{s:I}}}",
        "list", 1, "name", "deep", "none",
        "empty",
        "arrays", false,
        "a", "b", "c", (int64_t) 99));
    const msgpack_object *o = tr_value_object (value);
    ck_assert_int_eq (o->type, MSGPACK_OBJECT_MAP);
    ck_assert_uint_eq (o->via.map.size, 4);

    int one = 0;
    const char *name = NULL;
    bool flag = true;
    int64_t deep = 0;
    ck_assert_tr_ok (tr_unpack (o, "{s:[i {s:s s:[]}] s:{} s:[[] [n [b]]] s:{s:{s:I}}}",
                                "list", &one, "name", &name, "none",
                                "empty",
                                "arrays", &flag,
                                "a", "b", "c", &deep));
    ck_assert_int_eq (one, 1);
    ck_assert_str_eq (name, "deep");
    ck_assert (!flag);
    ck_assert (deep == 99);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_packed_bytes_are_plain_msgpack)
{
    tr_args_t *args = tr_pack ("i", 1);
    ck_assert (s_bytes_are (args, "\x01", 1));
    tr_args_destroy (&args);

    args = tr_pack ("[is]", 1, "x");
    ck_assert (s_bytes_are (args, "\x92\x01\xa1x", 4));
    tr_args_destroy (&args);

    args = tr_pack ("{s:n}", "k");
    ck_assert (s_bytes_are (args, "\x81\xa1k\xc0", 4));
    tr_args_destroy (&args);

    args = tr_pack ("y", "ab", (size_t) 2);
    ck_assert (s_bytes_are (args, "\xc4\x02" "ab", 4));
    tr_args_destroy (&args);

    args = tr_pack ("[]");
    ck_assert (s_bytes_are (args, "\x90", 1));
    tr_args_destroy (&args);

    args = tr_pack ("{}");
    ck_assert (s_bytes_are (args, "\x80", 1));
    tr_args_destroy (&args);
}
END_TEST

START_TEST (test_spaces_commas_and_colons_are_ignored)
{
    tr_args_t *tight = tr_pack ("{s[ii]s{sb}}", "a", 1, 2, "m", "t", true);
    tr_args_t *loose = tr_pack ("  { s : [ i , i ] ,\n\t s: { s:b } }  ",
                                "a", 1, 2, "m", "t", true);
    ck_assert_ptr_nonnull (tight);
    ck_assert_ptr_nonnull (loose);
    ck_assert (s_bytes_are (loose, tr_args_data (tight), tr_args_size (tight)));
    tr_args_destroy (&tight);
    tr_args_destroy (&loose);
}
END_TEST

START_TEST (test_null_pointers_pack_as_nil)
{
    tr_value_t *value = s_decode (tr_pack ("[s s# o y]", (const char *) NULL,
                                           (const char *) NULL, (size_t) 5,
                                           (const msgpack_object *) NULL,
                                           (const void *) NULL, (size_t) 0));
    const msgpack_object *o = tr_value_object (value);
    ck_assert_tr_ok (tr_unpack (o, "[n n n ...]"));
    ck_assert_int_eq (o->via.array.ptr [3].type, MSGPACK_OBJECT_BIN);
    ck_assert_uint_eq (o->via.array.ptr [3].via.bin.size, 0);
    tr_value_destroy (&value);

    //  Bytes that are not there cannot be packed.
    ck_assert_ptr_null (tr_pack ("y", (const void *) NULL, (size_t) 3));
    //  Nor a key that is not there.
    ck_assert_ptr_null (tr_pack ("{s:i}", (const char *) NULL, 1));
}
END_TEST

START_TEST (test_string_with_length_keeps_inner_nul_bytes)
{
    tr_value_t *value = s_decode (tr_pack ("{s#:s#}", "key-and-more", (size_t) 3,
                                           "a\0b", (size_t) 3));
    const char *s = NULL;
    size_t size = 0;
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "{s:s#}", "key", &s, &size));
    ck_assert_uint_eq (size, 3);
    ck_assert_mem_eq (s, "a\0b", 4);        //  and the NUL after
    //  The key can be given with a length too.
    s = NULL;
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "{s#:s#}", "keyboard", (size_t) 3,
                                &s, &size));
    ck_assert_ptr_nonnull (s);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_args_from_object_encodes_the_same_bytes)
{
    tr_args_t *args = tr_pack ("{s:[i,f,s], s:y}", "a", 1, 1.5, "x", "b", "\x01\x02", (size_t) 2);
    ck_assert_ptr_nonnull (args);
    tr_value_t *value = tr_value_decode (tr_args_data (args), tr_args_size (args));
    ck_assert_ptr_nonnull (value);
    tr_args_t *copy = tr_args_from_object (tr_value_object (value));
    ck_assert_ptr_nonnull (copy);
    ck_assert (s_bytes_are (copy, tr_args_data (args), tr_args_size (args)));
    tr_args_destroy (&copy);
    tr_args_destroy (&args);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_large_values_grow_the_buffer)
{
    size_t size = 100 * 1000;
    char *big = malloc (size + 1);
    ck_assert_ptr_nonnull (big);
    memset (big, 'z', size);
    big [size] = '\0';
    tr_value_t *value = s_decode (tr_pack ("[s y i]", big, big, size, 5));
    const char *s = NULL;
    const void *y = NULL;
    size_t y_size = 0;
    int i = 0;
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "[s y i]", &s, &y, &y_size, &i));
    ck_assert_str_eq (s, big);
    ck_assert_uint_eq (y_size, size);
    ck_assert_mem_eq (y, big, size);
    ck_assert_int_eq (i, 5);
    tr_value_destroy (&value);
    free (big);
}
END_TEST

//  ==========================================================================
//  Unpack behaviour

START_TEST (test_ellipsis_allows_more_elements_and_only_more)
{
    tr_value_t *value = s_decode (tr_pack ("[i i i]", 1, 2, 3));
    const msgpack_object *o = tr_value_object (value);
    int a = 0, b = 0;
    ck_assert_tr_ok (tr_unpack (o, "[i ...]", &a));
    ck_assert_int_eq (a, 1);
    ck_assert_tr_ok (tr_unpack (o, "[i i i ...]", NULL, NULL, NULL));
    ck_assert_tr_ok (tr_unpack (o, "[...]"));
    ck_assert_tr_rc (tr_unpack (o, "[i i]", &a, &b), TR_EFORMAT);

    char msg [128] = "";
    ck_assert_tr_rc (tr_unpack_ex (o, msg, sizeof msg, "[i i i i ...]", &a, &a, &a, &a),
                     TR_EFORMAT);
    ck_assert_str_eq (msg, "at top level: expected array of at least 4 elements, got 3");
    tr_value_destroy (&value);

    value = s_decode (tr_pack ("[]"));
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "[...]"));
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "[]"));
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_optional_key_absent_leaves_outputs_untouched)
{
    tr_value_t *value = s_decode (tr_pack ("{s:i, s:s}", "here", 5, "name", "n"));
    const msgpack_object *o = tr_value_object (value);
    int here = 0, gone = -7, inner = -8;
    const char *gone_s = "untouched", *name = NULL;
    //  The absent optional item takes its pointers, so the items after it
    //  still read theirs.
    ck_assert_tr_ok (tr_unpack (o, "{?s:[i {s:s} i], s:i, ?s:s, s:s}",
                                "missing", &gone, "k", &gone_s, &inner,
                                "here", &here,
                                "also-missing", &gone_s,
                                "name", &name));
    ck_assert_int_eq (gone, -7);
    ck_assert_int_eq (inner, -8);
    ck_assert_str_eq (gone_s, "untouched");
    ck_assert_int_eq (here, 5);
    ck_assert_str_eq (name, "n");

    //  Present optional keys are read; keys not in the format are ignored.
    here = 0;
    ck_assert_tr_ok (tr_unpack (o, "{?s:i}", "here", &here));
    ck_assert_int_eq (here, 5);

    //  Optional does not mean any type.
    char msg [128] = "";
    ck_assert_tr_rc (tr_unpack_ex (o, msg, sizeof msg, "{?s:s}", "here", &name), TR_EFORMAT);
    ck_assert_str_eq (msg, "at .here: expected string, got int");
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_missing_key_is_a_mismatch)
{
    tr_value_t *value = s_decode (tr_pack ("[{s:i}]", "a", 1));
    int a = 0, b = 0;
    char msg [128] = "";
    ck_assert_tr_rc (tr_unpack_ex (tr_value_object (value), msg, sizeof msg,
                                   "[{s:i s:i}]", "a", &a, "b", &b), TR_EFORMAT);
    ck_assert_str_eq (msg, "at [0]: missing key \"b\"");
    ck_assert_tr_rc (tr_unpack (tr_value_object (value), "[{s:i}]", "b", &b), TR_EFORMAT);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_unpacked_pointers_point_into_the_object)
{
    tr_value_t *value = s_decode (tr_pack ("[s, y, [i]]", "abc", "xy", (size_t) 2, 4));
    const msgpack_object *o = tr_value_object (value);
    const char *s = NULL;
    const void *y = NULL;
    size_t size = 0;
    const msgpack_object *sub = NULL;
    ck_assert_tr_ok (tr_unpack (o, "[s y o]", &s, &y, &size, &sub));
    ck_assert_ptr_eq (s, o->via.array.ptr [0].via.str.ptr);
    ck_assert_ptr_eq (y, o->via.array.ptr [1].via.bin.ptr);
    ck_assert_ptr_eq (sub, &o->via.array.ptr [2]);
    //  The whole value is an "o" too.
    ck_assert_tr_ok (tr_unpack (o, "o", &sub));
    ck_assert_ptr_eq (sub, o);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_number_and_bytes_letters_accept_their_relatives)
{
    //  f reads integers and float32; y reads strings.
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 4);
    msgpack_pack_float (&pk, 0.5f);
    msgpack_pack_int (&pk, -3);
    msgpack_pack_uint64 (&pk, 1u << 20);
    msgpack_pack_str_with_body (&pk, "text", 4);
    tr_value_t *value = tr_value_decode (sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    ck_assert_ptr_nonnull (value);
    const msgpack_object *o = tr_value_object (value);
    ck_assert_int_eq (o->via.array.ptr [0].type, MSGPACK_OBJECT_FLOAT32);

    double a = 0, b = 0, c = 0;
    const void *y = NULL;
    size_t size = 0;
    ck_assert_tr_ok (tr_unpack (o, "[f f f y]", &a, &b, &c, &y, &size));
    ck_assert (a == 0.5);
    ck_assert (b == -3.0);
    ck_assert (c == 1048576.0);
    ck_assert_uint_eq (size, 4);
    ck_assert_mem_eq (y, "text", 4);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_null_output_pointers_check_without_storing)
{
    tr_value_t *value = s_decode (tr_pack ("[i s]", 1, "x"));
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "[i s]", NULL, NULL));
    ck_assert_tr_rc (tr_unpack (tr_value_object (value), "[s i]", NULL, NULL), TR_EFORMAT);
    tr_value_destroy (&value);
}
END_TEST

//  ==========================================================================
//  Mismatches

//  Unpack the value packed from pack_fmt with fmt, expecting TR_EFORMAT
//  and exactly the reason want.
#define CHECK_MISMATCH(value, fmt, want, ...) do { \
    char msg_ [256] = ""; \
    ck_assert_tr_rc (tr_unpack_ex (tr_value_object (value), msg_, sizeof msg_, \
                                   fmt, __VA_ARGS__), TR_EFORMAT); \
    ck_assert_str_eq (msg_, want); \
} while (0)

START_TEST (test_every_type_mismatch_names_path_and_types)
{
    tr_value_t *value = s_decode (tr_pack (
        "[i, {s:i, s:[n, s]}, b, s, y, f, [], {}]",
        1, "name", 5, "list", "str", true, "str", "by", (size_t) 2, 0.5));
    int i;
    int64_t I;
    uint64_t u;
    double f;
    bool b;
    const char *s;
    size_t size;
    const void *y;

    CHECK_MISMATCH (value, "[i {s:s} ...]", "at [1].name: expected string, got int",
                    &i, "name", &s);
    CHECK_MISMATCH (value, "[i {s:[i s]} ...]", "at [1].list[0]: expected int, got nil",
                    &i, "list", &i, &s);
    CHECK_MISMATCH (value, "[i {s:[n b]} ...]", "at [1].list[1]: expected bool, got string",
                    &i, "list", &b);
    CHECK_MISMATCH (value, "[s ...]", "at [0]: expected string, got int", &s);
    CHECK_MISMATCH (value, "[s# ...]", "at [0]: expected string, got int", &s, &size);
    CHECK_MISMATCH (value, "[y ...]", "at [0]: expected bytes, got int", &y, &size);
    CHECK_MISMATCH (value, "[n ...]", "at [0]: expected nil, got int", NULL);
    CHECK_MISMATCH (value, "[i i ...]", "at [1]: expected int, got map", &i, &i);
    CHECK_MISMATCH (value, "[i I ...]", "at [1]: expected int, got map", &i, &I);
    CHECK_MISMATCH (value, "[i u ...]", "at [1]: expected unsigned int, got map", &i, &u);
    CHECK_MISMATCH (value, "[i [...] ...]", "at [1]: expected array, got map", &i);
    CHECK_MISMATCH (value, "[{} ...]", "at [0]: expected map, got int", NULL);
    CHECK_MISMATCH (value, "[i o f ...]", "at [2]: expected number, got bool", &i, NULL, &f);
    CHECK_MISMATCH (value, "[i o i ...]", "at [2]: expected int, got bool", &i, NULL, &i);
    CHECK_MISMATCH (value, "[i o o i ...]", "at [3]: expected int, got string", &i, NULL, NULL, &i);
    CHECK_MISMATCH (value, "[o o o o i ...]", "at [4]: expected int, got bin",
                    NULL, NULL, NULL, NULL, &i);
    CHECK_MISMATCH (value, "[o o o o o b ...]", "at [5]: expected bool, got float",
                    NULL, NULL, NULL, NULL, NULL, &b);
    CHECK_MISMATCH (value, "[o o o o o o {} ...]", "at [6]: expected map, got array",
                    NULL, NULL, NULL, NULL, NULL, NULL);
    CHECK_MISMATCH (value, "[o o o o o o o []]", "at [7]: expected array, got map",
                    NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    CHECK_MISMATCH (value, "{}", "at top level: expected map, got array", NULL);
    CHECK_MISMATCH (value, "[i]", "at top level: expected array of 1 element, got 8", &i);
    CHECK_MISMATCH (value, "[i {s:[n]} ...]", "at [1].list: expected array of 1 element, got 2",
                    &i, "list");
    CHECK_MISMATCH (value, "[i {s:i s:i} ...]", "at [1]: missing key \"nope\"",
                    &i, "name", &i, "nope", &i);

    //  tr_unpack says the same with its return code, and does not write.
    ck_assert_tr_rc (tr_unpack (tr_value_object (value), "[s ...]", &s), TR_EFORMAT);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_deep_paths_are_spelled_out)
{
    tr_value_t *value = s_decode (tr_pack ("[[n, n, {s:[i, s]}]]", "key", 1, "x"));
    int i;
    CHECK_MISMATCH (value, "[[n n {s:[i i]}]]", "at [0][2].key[1]: expected int, got string",
                    "key", &i, &i);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_a_short_message_buffer_is_truncated_and_terminated)
{
    tr_value_t *value = s_decode (tr_pack ("s", "x"));
    int i;
    char msg [8];
    memset (msg, 'X', sizeof msg);
    ck_assert_tr_rc (tr_unpack_ex (tr_value_object (value), msg, sizeof msg, "i", &i),
                     TR_EFORMAT);
    ck_assert_uint_lt (strlen (msg), sizeof msg);
    ck_assert (strncmp (msg, "at top ", 7) == 0);
    //  A zero-sized one is not written at all.
    memset (msg, 'X', sizeof msg);
    ck_assert_tr_rc (tr_unpack_ex (tr_value_object (value), msg, 0, "i", &i), TR_EFORMAT);
    ck_assert_int_eq (msg [0], 'X');
    tr_value_destroy (&value);
}
END_TEST

//  ==========================================================================
//  Integer ranges

START_TEST (test_int_letter_rejects_what_does_not_fit_an_int)
{
    tr_value_t *value = s_decode (tr_pack ("[I I i i]",
        (int64_t) INT_MAX + 1, (int64_t) INT_MIN - 1, INT_MAX, INT_MIN));
    const msgpack_object *o = tr_value_object (value);
    int i = 17;
    char msg [128];
    ck_assert_tr_rc (tr_unpack_ex (o, msg, sizeof msg, "[i ...]", &i), TR_EFORMAT);
    ck_assert_str_eq (msg, "at [0]: expected int, got 2147483648 (out of range)");
    ck_assert_tr_rc (tr_unpack_ex (o, msg, sizeof msg, "[o i ...]", NULL, &i), TR_EFORMAT);
    ck_assert_str_eq (msg, "at [1]: expected int, got -2147483649 (out of range)");
    ck_assert_int_eq (i, 17);
    int a, b;
    ck_assert_tr_ok (tr_unpack (o, "[o o i i]", NULL, NULL, &a, &b));
    ck_assert_int_eq (a, INT_MAX);
    ck_assert_int_eq (b, INT_MIN);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_int64_letter_rejects_values_above_int64_max)
{
    tr_value_t *value = s_decode (tr_pack ("[u u]", (uint64_t) INT64_MAX + 1,
                                           (uint64_t) INT64_MAX));
    const msgpack_object *o = tr_value_object (value);
    int64_t I = 0;
    char msg [128];
    ck_assert_tr_rc (tr_unpack_ex (o, msg, sizeof msg, "[I ...]", &I), TR_EFORMAT);
    ck_assert_str_eq (msg, "at [0]: expected int64, got 9223372036854775808 (out of range)");
    ck_assert_tr_ok (tr_unpack (o, "[o I]", NULL, &I));
    ck_assert (I == INT64_MAX);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_unsigned_letter_rejects_negative_values)
{
    tr_value_t *value = s_decode (tr_pack ("[i i]", -1, 0));
    const msgpack_object *o = tr_value_object (value);
    uint64_t u = 9;
    char msg [128];
    ck_assert_tr_rc (tr_unpack_ex (o, msg, sizeof msg, "[u u]", &u, &u), TR_EFORMAT);
    ck_assert_str_eq (msg, "at [0]: expected unsigned int, got -1 (out of range)");
    ck_assert (u == 9);
    ck_assert_tr_ok (tr_unpack (o, "[o u]", NULL, &u));
    ck_assert (u == 0);
    tr_value_destroy (&value);
}
END_TEST

//  ==========================================================================
//  Malformed formats

static const char *s_bad_formats [] = {
    "",             //  nothing
    "   ",          //  nothing but spaces
    "[i",           //  unclosed array
    "{s:i",         //  unclosed map
    "i]",           //  trailing junk
    "ii",           //  two values
    "[i}",          //  wrong closer
    "{s:i]",        //  wrong closer
    "{s}",          //  key without value
    "{i:i}",        //  key not 's'
    "{[]:i}",       //  key not 's'
    "x",            //  unknown letter
    "[i x]",        //  unknown letter inside
    "#",            //  '#' alone
    "y#",           //  '#' after another letter
    "s##",          //  two '#'
    "[i ... i]",    //  items after "..."
    "{s:i ...}",    //  "..." in a map
    "...",          //  "..." at the top
    "[?i]",         //  '?' outside a map
    "{s?:i}",       //  '?' after the key
    "{?}",          //  '?' without a key
    "[i..]",        //  two dots
};

START_TEST (test_malformed_format_fails_pack_with_null)
{
    const char *fmt = s_bad_formats [_i];
    ck_assert_msg (tr_pack (fmt, 1, 2, 3) == NULL, "tr_pack accepted \"%s\"", fmt);
}
END_TEST

START_TEST (test_malformed_format_fails_unpack_with_a_reason)
{
    const char *fmt = s_bad_formats [_i];
    tr_value_t *value = s_decode (tr_pack ("[i i]", 1, 2));
    char msg [128] = "";
    int a, b, c;
    int rc = tr_unpack_ex (tr_value_object (value), msg, sizeof msg, fmt, &a, &b, &c);
    ck_assert_msg (rc == TR_EFORMAT, "tr_unpack gave %s for \"%s\"", tr_errname (rc), fmt);
    ck_assert_msg (strncmp (msg, "malformed format at offset ", 27) == 0,
                   "reason for \"%s\": %s", fmt, msg);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_unpack_only_syntax_is_malformed_for_pack)
{
    ck_assert_ptr_null (tr_pack ("[i ...]", 1));
    ck_assert_ptr_null (tr_pack ("{?s:i}", "a", 1));
}
END_TEST

START_TEST (test_malformed_format_reason_says_what_and_where)
{
    tr_value_t *value = s_decode (tr_pack ("[i i]", 1, 2));
    char msg [128] = "";
    int a;
    ck_assert_tr_rc (tr_unpack_ex (tr_value_object (value), msg, sizeof msg, "[i x]", &a),
                     TR_EFORMAT);
    ck_assert_str_eq (msg, "malformed format at offset 3: unknown letter 'x'");
    ck_assert_tr_rc (tr_unpack_ex (tr_value_object (value), msg, sizeof msg, "  [i", &a),
                     TR_EFORMAT);
    ck_assert_str_eq (msg, "malformed format at offset 2: '[' is never closed");
    ck_assert_tr_rc (tr_unpack_ex (tr_value_object (value), msg, sizeof msg, "{i:i}", &a, &a),
                     TR_EFORMAT);
    ck_assert_str_eq (msg, "malformed format at offset 1: map key must be 's', got 'i'");
    ck_assert_tr_rc (tr_unpack_ex (tr_value_object (value), msg, sizeof msg, "[i i] i", &a, &a),
                     TR_EFORMAT);
    ck_assert_str_eq (msg, "malformed format at offset 6: trailing characters after the value");
    //  A format that does not parse fails before reading the value.
    ck_assert_tr_rc (tr_unpack_ex (tr_value_object (value), msg, sizeof msg, "{s:i", "k", &a),
                     TR_EFORMAT);
    ck_assert_str_eq (msg, "malformed format at offset 0: '{' is never closed");
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_nesting_is_limited_in_formats)
{
    char fmt [2 * 70 + 1];
    for (int depth = 0; depth < 70; depth++) {
        fmt [depth] = '[';
        fmt [2 * 70 - 1 - depth] = ']';
    }
    fmt [2 * 70] = '\0';
    ck_assert_ptr_null (tr_pack (fmt));
    msgpack_object nil = { .type = MSGPACK_OBJECT_NIL };
    ck_assert_tr_rc (tr_unpack (&nil, fmt), TR_EFORMAT);
    //  Deep but within the limit is fine.
    char ok [2 * 60 + 1];
    for (int depth = 0; depth < 60; depth++) {
        ok [depth] = '[';
        ok [2 * 60 - 1 - depth] = ']';
    }
    ok [2 * 60] = '\0';
    tr_args_t *args = tr_pack (ok);
    ck_assert_ptr_nonnull (args);
    tr_args_destroy (&args);
}
END_TEST

START_TEST (test_pack_logs_one_line_saying_what_and_where)
{
    tri_log_init ("test_value");
    tu_capture_t capture;
    char text [2048];
    tu_capture_start (&capture);
    tr_args_t *args = tr_pack ("[i x]", 1);
    tu_capture_end (&capture, text, sizeof text);
    ck_assert_ptr_null (args);
    ck_assert_uint_eq (s_count_lines (text), 1);
    ck_assert_msg (strstr (text, "TR-PACK-FORMAT"), "log: %s", text);
    ck_assert_msg (strstr (text, "unknown letter 'x' at offset 3"), "log: %s", text);
}
END_TEST

START_TEST (test_unpack_never_logs)
{
    tri_log_init ("test_value");
    tr_value_t *value = s_decode (tr_pack ("i", 1));
    tu_capture_t capture;
    char text [2048];
    tu_capture_start (&capture);
    const char *s;
    int rc1 = tr_unpack (tr_value_object (value), "[i x]");
    int rc2 = tr_unpack (tr_value_object (value), "s", &s);
    int rc3 = tr_unpack (NULL, "i", NULL);
    tu_capture_end (&capture, text, sizeof text);
    ck_assert_tr_rc (rc1, TR_EFORMAT);
    ck_assert_tr_rc (rc2, TR_EFORMAT);
    ck_assert_tr_rc (rc3, TR_EINVAL);
    ck_assert_msg (text [0] == '\0', "tr_unpack logged: %s", text);
    tr_value_destroy (&value);
}
END_TEST

//  ==========================================================================
//  Decoding bytes

START_TEST (test_every_truncation_of_a_value_is_refused)
{
    tr_args_t *args = tr_pack ("{s:[i, I, s, y, {s:f}], s:b}", "list", 1, (int64_t) 1 << 40,
                               "string", "bytes", (size_t) 5, "f", 1.5, "b", true);
    ck_assert_ptr_nonnull (args);
    size_t size = tr_args_size (args);
    for (size_t cut = 0; cut < size; cut++) {
        //  A copy of exactly cut bytes, so that reading past it is seen.
        char *prefix = malloc (cut? cut: 1);
        memcpy (prefix, tr_args_data (args), cut);
        tr_value_t *value = tr_value_decode (prefix, cut);
        ck_assert_msg (value == NULL, "decoded %zu of %zu bytes", cut, size);
        free (prefix);
    }
    tr_args_destroy (&args);
}
END_TEST

START_TEST (test_trailing_bytes_are_refused)
{
    ck_assert_ptr_null (tr_value_decode ("\x01\x02", 2));         //  two values
    ck_assert_ptr_null (tr_value_decode ("\x91\x01\xc0", 3));     //  array, then nil
    ck_assert_ptr_null (tr_value_decode ("\xa1x\x00", 3));        //  string, then 0
    tr_value_t *value = tr_value_decode ("\x91\x01", 2);
    ck_assert_ptr_nonnull (value);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_garbage_is_refused)
{
    ck_assert_ptr_null (tr_value_decode ("\xc1", 1));             //  never-used byte
    ck_assert_ptr_null (tr_value_decode ("\x92\x01\xc1", 3));
    ck_assert_ptr_null (tr_value_decode (NULL, 3));
    ck_assert_ptr_null (tr_value_decode ("", 0));
    //  Lengths that claim more than there is.
    ck_assert_ptr_null (tr_value_decode ("\xdd\xff\xff\xff\xff", 5));             //  array32
    ck_assert_ptr_null (tr_value_decode ("\xdf\xff\xff\xff\xff\x01\x01", 7));     //  map32
    ck_assert_ptr_null (tr_value_decode ("\xdb\xff\xff\xff\xff" "abc", 8));        //  str32
    ck_assert_ptr_null (tr_value_decode ("\xc6\x00\x00\x00\x04" "abc", 8));        //  bin32
    ck_assert_ptr_null (tr_value_decode ("\xc7\x02\x01" "a", 4));                  //  ext8
    ck_assert_ptr_null (tr_value_decode ("\xd8\x01" "abc", 5));                    //  fixext16
    ck_assert_ptr_null (tr_value_decode ("\xcb\x00\x00", 3));                      //  float64
    ck_assert_ptr_null (tr_value_decode ("\x9f\x01\x02", 3));                      //  fixarray
}
END_TEST

START_TEST (test_nesting_deeper_than_msgpack_allows_is_refused)
{
    char bytes [101];
    memset (bytes, 0x91, 100);                  //  [[[[...nil...]]]]
    bytes [100] = (char) 0xc0;
    ck_assert_ptr_null (tr_value_decode (bytes, sizeof bytes));
    //  Ten deep is fine.
    tr_value_t *value = tr_value_decode (bytes + 90, 11);
    ck_assert_ptr_nonnull (value);
    tr_value_destroy (&value);
}
END_TEST

//  Fail unless every string under o has a NUL right after its bytes.
static void
s_assert_cstrings (const msgpack_object *o, int *count)
{
    switch (o->type) {
        case MSGPACK_OBJECT_STR:
            ck_assert_ptr_nonnull (o->via.str.ptr);
            ck_assert_int_eq (o->via.str.ptr [o->via.str.size], '\0');
            (*count)++;
            break;
        case MSGPACK_OBJECT_ARRAY:
            for (uint32_t i = 0; i < o->via.array.size; i++)
                s_assert_cstrings (&o->via.array.ptr [i], count);
            break;
        case MSGPACK_OBJECT_MAP:
            for (uint32_t i = 0; i < o->via.map.size; i++) {
                s_assert_cstrings (&o->via.map.ptr [i].key, count);
                s_assert_cstrings (&o->via.map.ptr [i].val, count);
            }
            break;
        default:
            break;
    }
}

START_TEST (test_decoded_strings_are_nul_terminated)
{
    //  On the wire each string is followed by the next header, not a NUL.
    tr_value_t *value = s_decode (tr_pack ("[s, s, {s:s, s:[s, s#]}, s]",
        "ab", "cd", "key", "val", "k2", "x", "yz", (size_t) 2, ""));
    int count = 0;
    s_assert_cstrings (tr_value_object (value), &count);
    ck_assert_int_eq (count, 8);
    const char *empty = NULL;
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "[o o o s]", NULL, NULL, NULL, &empty));
    ck_assert_str_eq (empty, "");
    tr_value_destroy (&value);

    //  A string alone at the top too.
    value = tr_value_decode ("\xa3" "abc", 4);
    ck_assert_ptr_nonnull (value);
    ck_assert_int_eq (tr_value_object (value)->via.str.ptr [3], '\0');
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_decoded_value_does_not_borrow_the_input)
{
    tr_args_t *args = tr_pack ("[s, y, {s:s}]", "string", "bytes", (size_t) 5, "k", "v");
    ck_assert_ptr_nonnull (args);
    size_t size = tr_args_size (args);
    char *copy = malloc (size);
    memcpy (copy, tr_args_data (args), size);
    tr_args_destroy (&args);
    tr_value_t *value = tr_value_decode (copy, size);
    memset (copy, 0xff, size);
    free (copy);
    ck_assert_ptr_nonnull (value);
    const char *s, *v;
    const void *y;
    size_t y_size;
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "[s y {s:s}]", &s, &y, &y_size, "k", &v));
    ck_assert_str_eq (s, "string");
    ck_assert_uint_eq (y_size, 5);
    ck_assert_mem_eq (y, "bytes", 5);
    ck_assert_str_eq (v, "v");
    tr_value_destroy (&value);

    //  Ext payloads too: [fixext1 type 5 "z", ext8 of 0 bytes type 7].
    copy = malloc (7);
    memcpy (copy, "\x92\xd4\x05" "z" "\xc7\x00\x07", 7);
    value = tr_value_decode (copy, 7);
    memset (copy, 0, 7);
    free (copy);
    ck_assert_ptr_nonnull (value);
    const msgpack_object *o = tr_value_object (value);
    ck_assert_int_eq (o->via.array.ptr [0].type, MSGPACK_OBJECT_EXT);
    ck_assert_int_eq (o->via.array.ptr [0].via.ext.type, 5);
    ck_assert_uint_eq (o->via.array.ptr [0].via.ext.size, 1);
    ck_assert_int_eq (o->via.array.ptr [0].via.ext.ptr [0], 'z');
    ck_assert_int_eq (o->via.array.ptr [1].via.ext.type, 7);
    ck_assert_uint_eq (o->via.array.ptr [1].via.ext.size, 0);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_scalar_values_decode)
{
    tr_value_t *value = tr_value_decode ("\xc0", 1);
    ck_assert_ptr_nonnull (value);
    ck_assert_int_eq (tr_value_object (value)->type, MSGPACK_OBJECT_NIL);
    tr_value_destroy (&value);
    value = tr_value_decode ("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9);
    ck_assert_ptr_nonnull (value);
    uint64_t u = 0;
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "u", &u));
    ck_assert (u == UINT64_MAX);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_value_destroy_accepts_null_and_nulls_the_pointer)
{
    tr_value_destroy (NULL);
    tr_value_t *value = NULL;
    tr_value_destroy (&value);
    ck_assert_ptr_null (tr_value_object (NULL));
    value = tr_value_decode ("\x90", 1);
    ck_assert_ptr_nonnull (value);
    tr_value_destroy (&value);
    ck_assert_ptr_null (value);
    tr_value_destroy (&value);
}
END_TEST

//  ==========================================================================
//  Internals: tri_value_new, tri_value_cstrings

static int s_owner_frees;

static void
s_owner_free (void *owner)
{
    s_owner_frees++;
    free (owner);
}

START_TEST (test_value_frees_its_owner_once)
{
    s_owner_frees = 0;
    msgpack_object nil = { .type = MSGPACK_OBJECT_NIL };
    tr_value_t *value = tri_value_new (&nil, malloc (16), s_owner_free);
    ck_assert_ptr_nonnull (value);
    ck_assert_int_eq (tr_value_object (value)->type, MSGPACK_OBJECT_NIL);
    ck_assert_int_eq (s_owner_frees, 0);
    tr_value_destroy (&value);
    ck_assert_int_eq (s_owner_frees, 1);
    tr_value_destroy (&value);
    ck_assert_int_eq (s_owner_frees, 1);
    //  No owner at all is fine.
    value = tri_value_new (&nil, NULL, NULL);
    ck_assert_ptr_nonnull (value);
    tr_value_destroy (&value);
}
END_TEST

START_TEST (test_cstrings_copies_keys_and_values_into_the_zone)
{
    const char text [] = "keyvalueitem";            //  no NUL after any of them
    msgpack_object item = { .type = MSGPACK_OBJECT_STR };
    item.via.str.ptr = text + 8;
    item.via.str.size = 4;
    msgpack_object_kv kv;
    kv.key.type = MSGPACK_OBJECT_STR;
    kv.key.via.str.ptr = text;
    kv.key.via.str.size = 3;
    kv.val.type = MSGPACK_OBJECT_ARRAY;
    kv.val.via.array.size = 1;
    kv.val.via.array.ptr = &item;
    msgpack_object map = { .type = MSGPACK_OBJECT_MAP };
    map.via.map.size = 1;
    map.via.map.ptr = &kv;

    msgpack_zone *zone = msgpack_zone_new (256);
    ck_assert_ptr_nonnull (zone);
    ck_assert_tr_ok (tri_value_cstrings (&map, zone));
    ck_assert_ptr_ne (kv.key.via.str.ptr, text);
    ck_assert_str_eq (kv.key.via.str.ptr, "key");
    ck_assert_ptr_ne (item.via.str.ptr, text + 8);
    ck_assert_str_eq (item.via.str.ptr, "item");
    msgpack_zone_free (zone);
}
END_TEST

//  ==========================================================================
//  Replies

START_TEST (test_reply_set_keeps_its_own_copy)
{
    tr_reply_t reply = { NULL };
    tr_args_t *args = tr_pack ("[i s]", 3, "three");
    ck_assert_tr_ok (tr_reply_set (&reply, args));
    ck_assert_ptr_nonnull (reply.value);
    ck_assert_ptr_ne (reply.value, args);
    ck_assert (s_bytes_are (reply.value, tr_args_data (args), tr_args_size (args)));
    tr_args_destroy (&args);

    tr_value_t *value = tr_value_decode (tr_args_data (reply.value), tr_args_size (reply.value));
    int i = 0;
    const char *s = NULL;
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "[i s]", &i, &s));
    ck_assert_int_eq (i, 3);
    ck_assert_str_eq (s, "three");
    tr_value_destroy (&value);

    //  A second set replaces the first; setting to itself is fine.
    args = tr_pack ("n");
    ck_assert_tr_ok (tr_reply_set (&reply, args));
    tr_args_destroy (&args);
    ck_assert (s_bytes_are (reply.value, "\xc0", 1));
    ck_assert_tr_ok (tr_reply_set (&reply, reply.value));
    ck_assert (s_bytes_are (reply.value, "\xc0", 1));
    tr_args_destroy (&reply.value);
}
END_TEST

START_TEST (test_reply_pack_sets_or_keeps_the_previous_on_bad_format)
{
    tr_reply_t reply = { NULL };
    ck_assert_tr_ok (tr_reply_pack (&reply, "{s:i}", "x", 1));
    ck_assert (s_bytes_are (reply.value, "\x81\xa1x\x01", 4));
    ck_assert_tr_ok (tr_reply_pack (&reply, "i", 2));
    ck_assert (s_bytes_are (reply.value, "\x02", 1));
    ck_assert_tr_rc (tr_reply_pack (&reply, "[i", 3), TR_EFORMAT);
    ck_assert (s_bytes_are (reply.value, "\x02", 1));
    tr_args_destroy (&reply.value);
}
END_TEST

START_TEST (test_reply_object_packs_a_copy)
{
    tr_value_t *value = s_decode (tr_pack ("[s {s:b}]", "a", "b", true));
    tr_reply_t reply = { NULL };
    ck_assert_tr_ok (tr_reply_object (&reply, tr_value_object (value)));
    ck_assert_tr_ok (tr_reply_object (&reply, tr_value_object (value)));
    tr_value_destroy (&value);
    ck_assert (s_bytes_are (reply.value, "\x92\xa1" "a" "\x81\xa1" "b" "\xc3", 7));
    tr_args_destroy (&reply.value);
}
END_TEST

START_TEST (test_reply_functions_refuse_null_arguments)
{
    tr_reply_t reply = { NULL };
    tr_args_t *args = tr_pack ("i", 1);
    msgpack_object nil = { .type = MSGPACK_OBJECT_NIL };
    ck_assert_tr_rc (tr_reply_set (NULL, args), TR_EINVAL);
    ck_assert_tr_rc (tr_reply_set (&reply, NULL), TR_EINVAL);
    ck_assert_tr_rc (tr_reply_pack (NULL, "i", 1), TR_EINVAL);
    ck_assert_tr_rc (tr_reply_pack (&reply, NULL), TR_EINVAL);
    ck_assert_tr_rc (tr_reply_object (NULL, &nil), TR_EINVAL);
    ck_assert_tr_rc (tr_reply_object (&reply, NULL), TR_EINVAL);
    ck_assert_ptr_null (reply.value);
    tr_args_destroy (&args);
}
END_TEST

//  ==========================================================================
//  NULL arguments

START_TEST (test_null_arguments_are_refused)
{
    int i;
    char msg [64] = "";
    msgpack_object nil = { .type = MSGPACK_OBJECT_NIL };
    ck_assert_tr_rc (tr_unpack (NULL, "i", &i), TR_EINVAL);
    ck_assert_tr_rc (tr_unpack (&nil, NULL), TR_EINVAL);
    ck_assert_tr_rc (tr_unpack_ex (NULL, msg, sizeof msg, "i", &i), TR_EINVAL);
    ck_assert_str_eq (msg, "object is NULL");
    ck_assert_tr_rc (tr_unpack_ex (&nil, msg, sizeof msg, NULL), TR_EINVAL);
    ck_assert_str_eq (msg, "format is NULL");
    ck_assert_tr_rc (tr_unpack_ex (&nil, NULL, 0, NULL), TR_EINVAL);

    //  A NULL key in a map format.
    tr_value_t *value = s_decode (tr_pack ("{s:i}", "a", 1));
    ck_assert_tr_rc (tr_unpack (tr_value_object (value), "{s:i}", (const char *) NULL, &i),
                     TR_EINVAL);
    tr_value_destroy (&value);

    ck_assert_ptr_null (tr_pack (NULL));
    ck_assert_ptr_null (tr_args_from_object (NULL));
    ck_assert_ptr_null (tr_args_data (NULL));
    ck_assert_uint_eq (tr_args_size (NULL), 0);
    tr_args_destroy (NULL);
    tr_args_t *args = NULL;
    tr_args_destroy (&args);
    ck_assert_ptr_null (args);
}
END_TEST

//  ==========================================================================
//  Spare args: the runtime's thread reuses destroyed args

//  Pack "[s i]" after taking from the heap blocks of the sizes args and
//  its buffer have (so a block just freed is not simply handed back);
//  then give them back. Whether the new args is the old one tells a
//  spare from an allocation.
static tr_args_t *
s_pack_past_the_heap (size_t struct_size, size_t buffer_size)
{
    void *held_struct = malloc (struct_size);
    void *held_buffer = malloc (buffer_size);
    ck_assert_ptr_nonnull (held_struct);
    ck_assert_ptr_nonnull (held_buffer);
    tr_args_t *args = tr_pack ("[s i]", "another value, as long", 8);
    free (held_struct);
    free (held_buffer);
    ck_assert_ptr_nonnull (args);
    return args;
}

START_TEST (test_spare_args_are_reused_without_allocating)
{
    tri_args_spares (true);
    tr_args_t *args = tr_pack ("[s i]", "a value of some length", 7);
    ck_assert_ptr_nonnull (args);
    tr_args_t *was = args;
    size_t alloc = args->sbuf.alloc;
    char *data = args->sbuf.data;
    tr_args_destroy (&args);
    ck_assert_ptr_null (args);
    //  The same shape again: packed into the spare, nothing allocated.
    args = s_pack_past_the_heap (sizeof *args, alloc);
    ck_assert_ptr_eq (args, was);
    ck_assert_ptr_eq (args->sbuf.data, data);
    tr_value_t *value = s_decode (args);
    const char *s;
    int i;
    ck_assert_tr_ok (tr_unpack (tr_value_object (value), "[s i]", &s, &i));
    ck_assert_str_eq (s, "another value, as long");
    ck_assert_int_eq (i, 8);
    tr_value_destroy (&value);
    //  Off: destroyed args are freed, not kept.
    tri_args_spares (false);
    args = tr_pack ("[s i]", "a value of some length", 7);
    was = args;
    alloc = args->sbuf.alloc;
    tr_args_destroy (&args);
    args = s_pack_past_the_heap (sizeof *args, alloc);
    ck_assert_ptr_ne (args, was);
    tr_args_destroy (&args);
}
END_TEST

START_TEST (test_a_large_args_is_freed_not_kept)
{
    tri_args_spares (true);
    size_t size = 64 * 1024;
    char *big = malloc (size);
    ck_assert_ptr_nonnull (big);
    memset (big, 'b', size);
    tr_args_t *args = tr_pack ("y", big, size);
    ck_assert_ptr_nonnull (args);
    tr_args_t *was = args;
    tr_args_destroy (&args);
    args = s_pack_past_the_heap (sizeof *args, 80);
    ck_assert_ptr_ne (args, was);
    tr_args_destroy (&args);
    free (big);
    tri_args_spares (false);
}
END_TEST

START_TEST (test_a_spare_holds_nothing_of_its_last_value)
{
    tri_args_spares (true);
    //  A deep value, checked (its depth is kept), then destroyed.
    tri_limits_t limits = { .max_size = 1 << 20, .max_depth = 8 };
    char why [256];
    tr_args_t *args = tr_pack ("[[[[[i]]]]]", 1);
    ck_assert_int_eq (tri_args_check (args, 16, 2, &limits, why, sizeof why), 0);
    limits.max_depth = 4;
    ck_assert_int_eq (tri_args_check (args, 16, 2, &limits, why, sizeof why), TR_ETOOBIG);
    tr_args_destroy (&args);
    //  A flat value in the spare is judged by its own depth.
    args = tr_pack ("i", 5);
    ck_assert_int_eq (tri_args_check (args, 16, 2, &limits, why, sizeof why), 0);
    ck_assert_uint_eq (tr_args_size (args), 1);
    tr_args_destroy (&args);
    //  A value larger than any spare's buffer grows it, whole and exact.
    size_t size = 3000;
    char *text = malloc (size + 1);
    ck_assert_ptr_nonnull (text);
    memset (text, 't', size);
    text [size] = '\0';
    for (int round = 0; round < 3; round++) {
        args = tr_pack ("[s i]", text, round);
        ck_assert_ptr_nonnull (args);
        msgpack_sbuffer expect;
        msgpack_sbuffer_init (&expect);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &expect, msgpack_sbuffer_write);
        msgpack_pack_array (&pk, 2);
        msgpack_pack_str (&pk, size);
        msgpack_pack_str_body (&pk, text, size);
        msgpack_pack_int (&pk, round);
        ck_assert_uint_eq (tr_args_size (args), expect.size);
        ck_assert_mem_eq (tr_args_data (args), expect.data, expect.size);
        msgpack_sbuffer_destroy (&expect);
        tr_args_destroy (&args);
    }
    free (text);
    tri_args_spares (false);
}
END_TEST

//  ==========================================================================

static Suite *
s_suite (void)
{
    Suite *suite = suite_create ("value");

    TCase *tc = tu_tcase (suite, "round trips", 10);
    tcase_add_test (tc, test_every_letter_round_trips_through_the_wire);
    tcase_add_test (tc, test_each_letter_alone_is_a_top_level_value);
    tcase_add_test (tc, test_integer_limits_round_trip);
    tcase_add_test (tc, test_nested_arrays_and_maps_round_trip);
    tcase_add_test (tc, test_packed_bytes_are_plain_msgpack);
    tcase_add_test (tc, test_spaces_commas_and_colons_are_ignored);
    tcase_add_test (tc, test_null_pointers_pack_as_nil);
    tcase_add_test (tc, test_string_with_length_keeps_inner_nul_bytes);
    tcase_add_test (tc, test_args_from_object_encodes_the_same_bytes);
    tcase_add_test (tc, test_large_values_grow_the_buffer);

    tc = tu_tcase (suite, "unpack", 10);
    tcase_add_test (tc, test_ellipsis_allows_more_elements_and_only_more);
    tcase_add_test (tc, test_optional_key_absent_leaves_outputs_untouched);
    tcase_add_test (tc, test_missing_key_is_a_mismatch);
    tcase_add_test (tc, test_unpacked_pointers_point_into_the_object);
    tcase_add_test (tc, test_number_and_bytes_letters_accept_their_relatives);
    tcase_add_test (tc, test_null_output_pointers_check_without_storing);

    tc = tu_tcase (suite, "mismatches", 10);
    tcase_add_test (tc, test_every_type_mismatch_names_path_and_types);
    tcase_add_test (tc, test_deep_paths_are_spelled_out);
    tcase_add_test (tc, test_a_short_message_buffer_is_truncated_and_terminated);

    tc = tu_tcase (suite, "integer ranges", 10);
    tcase_add_test (tc, test_int_letter_rejects_what_does_not_fit_an_int);
    tcase_add_test (tc, test_int64_letter_rejects_values_above_int64_max);
    tcase_add_test (tc, test_unsigned_letter_rejects_negative_values);

    int bad = (int) (sizeof s_bad_formats / sizeof s_bad_formats [0]);
    tc = tu_tcase (suite, "malformed formats", 10);
    tcase_add_loop_test (tc, test_malformed_format_fails_pack_with_null, 0, bad);
    tcase_add_loop_test (tc, test_malformed_format_fails_unpack_with_a_reason, 0, bad);
    tcase_add_test (tc, test_unpack_only_syntax_is_malformed_for_pack);
    tcase_add_test (tc, test_malformed_format_reason_says_what_and_where);
    tcase_add_test (tc, test_nesting_is_limited_in_formats);
    tcase_add_test (tc, test_pack_logs_one_line_saying_what_and_where);
    tcase_add_test (tc, test_unpack_never_logs);

    tc = tu_tcase (suite, "decoding bytes", 10);
    tcase_add_test (tc, test_every_truncation_of_a_value_is_refused);
    tcase_add_test (tc, test_trailing_bytes_are_refused);
    tcase_add_test (tc, test_garbage_is_refused);
    tcase_add_test (tc, test_nesting_deeper_than_msgpack_allows_is_refused);
    tcase_add_test (tc, test_decoded_strings_are_nul_terminated);
    tcase_add_test (tc, test_decoded_value_does_not_borrow_the_input);
    tcase_add_test (tc, test_scalar_values_decode);
    tcase_add_test (tc, test_value_destroy_accepts_null_and_nulls_the_pointer);

    tc = tu_tcase (suite, "internals", 10);
    tcase_add_test (tc, test_value_frees_its_owner_once);
    tcase_add_test (tc, test_cstrings_copies_keys_and_values_into_the_zone);

    tc = tu_tcase (suite, "spare args", 10);
    tcase_add_test (tc, test_spare_args_are_reused_without_allocating);
    tcase_add_test (tc, test_a_large_args_is_freed_not_kept);
    tcase_add_test (tc, test_a_spare_holds_nothing_of_its_last_value);

    tc = tu_tcase (suite, "replies", 10);
    tcase_add_test (tc, test_reply_set_keeps_its_own_copy);
    tcase_add_test (tc, test_reply_pack_sets_or_keeps_the_previous_on_bad_format);
    tcase_add_test (tc, test_reply_object_packs_a_copy);
    tcase_add_test (tc, test_reply_functions_refuse_null_arguments);

    tc = tu_tcase (suite, "null arguments", 10);
    tcase_add_test (tc, test_null_arguments_are_refused);

    return suite;
}

int
main (void)
{
    return tu_run_suite (s_suite (), CK_FORK_GETENV);
}
