/*  =========================================================================
    test_error.c - return codes and boxed errors

    The code table behind tr_strerror and tr_errname, the life of an error
    object (new, hops, lists, dup, destroy), its wire form through a whole
    frame as a peer sends it, what a malformed error body becomes, and the
    text a user prints.
    =========================================================================
*/
#include "testutil.h"
#include "troupe_private.h"
#include "tri_error_impl.h"
#include <limits.h>

static const tri_limits_t s_defaults = { TRI_DEFAULT_MAX_MSG, TRI_DEFAULT_MAX_DEPTH };

//  Every code of the table, with its name and text.
static const struct {
    int code;
    const char *name;
    const char *text;
} s_codes [] = {
#define S_CODE(name, value, text) { value, #name, text },
    TR_ERRORS (S_CODE)
#undef S_CODE
};

#define S_CODES ((int) (sizeof s_codes / sizeof s_codes [0]))

//  Send err as the body of an error frame and decode it as a peer would.
static tr_error_t *
s_through_the_wire (const tr_error_t *err, const char *peer)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    tri_msg_begin (&pk, TRI_ERROR, 17);
    tri_error_pack (&pk, err);
    zmq_msg_t frame;
    ck_assert_int_eq (zmq_msg_init_size (&frame, sbuf.size), 0);
    memcpy (zmq_msg_data (&frame), sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);

    tri_msg_t *msg = NULL;
    uint64_t cid = 0;
    char why [256] = "";
    int rc = tri_msg_decode (&frame, &s_defaults, &msg, &cid, why, sizeof why);
    ck_assert_msg (rc == 0, "error frame refused: %s", why);
    ck_assert_int_eq (msg->type, TRI_ERROR);
    ck_assert (msg->cid == 17);
    tr_error_t *back = tri_error_unpack (&msg->body, peer);
    tri_msg_destroy (&msg);
    ck_assert_ptr_nonnull (back);
    return back;
}

//  Unpack the value args holds (taken) as an error body.
static tr_error_t *
s_unpack_body (tr_args_t *args, const char *peer)
{
    ck_assert_ptr_nonnull (args);
    tr_value_t *value = tr_value_decode (tr_args_data (args), tr_args_size (args));
    ck_assert_ptr_nonnull (value);
    tr_args_destroy (&args);
    tr_error_t *err = tri_error_unpack (tr_value_object (value), peer);
    tr_value_destroy (&value);
    return err;
}

//  Fail unless a and b hold the same fields (not next).
static void
s_assert_same (const tr_error_t *a, const tr_error_t *b)
{
    ck_assert_int_eq (tr_error_code (a), tr_error_code (b));
    ck_assert_str_eq (tr_error_type (a), tr_error_type (b));
    ck_assert_str_eq (tr_error_message (a), tr_error_message (b));
    ck_assert_str_eq (tr_error_origin (a), tr_error_origin (b));
    ck_assert_uint_eq (tr_error_hops (a), tr_error_hops (b));
    for (size_t i = 0; i < tr_error_hops (a); i++)
        ck_assert_str_eq (tr_error_hop (a, i), tr_error_hop (b, i));
    ck_assert_str_eq (tr_error_frames (a), tr_error_frames (b));
    ck_assert_int_eq (tr_error_exit_status (a), tr_error_exit_status (b));
    ck_assert_int_eq (tr_error_signal (a), tr_error_signal (b));
}

//  ==========================================================================
//  Return codes

START_TEST (test_every_code_has_its_name_and_text)
{
    for (int i = 0; i < S_CODES; i++) {
        ck_assert_int_lt (s_codes [i].code, 0);
        ck_assert_ptr_nonnull (tr_strerror (s_codes [i].code));
        ck_assert_str_eq (tr_strerror (s_codes [i].code), s_codes [i].text);
        ck_assert_str_eq (tr_errname (s_codes [i].code), s_codes [i].name);
        for (int j = 0; j < i; j++) {
            ck_assert_int_ne (s_codes [i].code, s_codes [j].code);
            ck_assert_str_ne (s_codes [i].name, s_codes [j].name);
        }
    }
    ck_assert_str_eq (tr_errname (TR_ECANCELED), "ECANCELED");
    ck_assert_str_eq (tr_errname (TR_EFORMAT), "EFORMAT");
    ck_assert_str_eq (tr_errname (0), "OK");
    ck_assert_str_eq (tr_strerror (0), "success");
}
END_TEST

START_TEST (test_unknown_codes_get_a_text_and_a_name_never_null)
{
    static const int unknown [] = { 1, 2, -16, -100, 12345, -12345, INT_MIN, INT_MAX };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown [0]; i++) {
        const char *text = tr_strerror (unknown [i]);
        ck_assert_ptr_nonnull (text);
        ck_assert_uint_gt (strlen (text), 0);
        ck_assert_str_eq (tr_errname (unknown [i]), "EUNKNOWN");
        for (int j = 0; j < S_CODES; j++)
            ck_assert_str_ne (text, s_codes [j].text);
    }
}
END_TEST

//  ==========================================================================
//  Objects

START_TEST (test_new_error_holds_what_it_was_given)
{
    tr_error_t *err = tri_error_new (TR_EREMOTE, "ValueError", "worker@1", "n=%d, s=%s", 7, "x");
    ck_assert_ptr_nonnull (err);
    ck_assert_int_eq (tr_error_code (err), TR_EREMOTE);
    ck_assert_str_eq (tr_error_type (err), "ValueError");
    ck_assert_str_eq (tr_error_message (err), "n=7, s=x");
    ck_assert_str_eq (tr_error_origin (err), "worker@1");
    ck_assert_uint_eq (tr_error_hops (err), 1);
    ck_assert_str_eq (tr_error_hop (err, 0), "worker@1");
    ck_assert_ptr_null (tr_error_hop (err, 1));
    ck_assert_str_eq (tr_error_frames (err), "");
    ck_assert_int_eq (tr_error_exit_status (err), 0);
    ck_assert_int_eq (tr_error_signal (err), 0);
    ck_assert_ptr_null (tr_error_next (err));
    tr_error_destroy (&err);
    ck_assert_ptr_null (err);
}
END_TEST

START_TEST (test_new_error_without_type_or_origin_uses_the_code_name_and_no_hops)
{
    tr_error_t *err = tri_error_new (TR_ETIMEDOUT, NULL, NULL, "late");
    ck_assert_ptr_nonnull (err);
    ck_assert_str_eq (tr_error_type (err), "ETIMEDOUT");
    ck_assert_str_eq (tr_error_origin (err), "");
    ck_assert_uint_eq (tr_error_hops (err), 0);
    ck_assert_ptr_null (tr_error_hop (err, 0));
    tr_error_destroy (&err);
}
END_TEST

START_TEST (test_hops_are_added_in_order_without_consecutive_duplicates)
{
    tr_error_t *err = tri_error_new (TR_EREMOTE, "E", "a@1", "m");
    ck_assert_tr_ok (tri_error_add_hop (err, "a@1"));      //  the origin again
    ck_assert_uint_eq (tr_error_hops (err), 1);
    ck_assert_tr_ok (tri_error_add_hop (err, "b@2"));
    ck_assert_tr_ok (tri_error_add_hop (err, "b@2"));
    ck_assert_tr_ok (tri_error_add_hop (err, "c@3"));
    ck_assert_tr_ok (tri_error_add_hop (err, "a@1"));      //  not consecutive: kept
    ck_assert_uint_eq (tr_error_hops (err), 4);
    ck_assert_str_eq (tr_error_hop (err, 0), "a@1");
    ck_assert_str_eq (tr_error_hop (err, 1), "b@2");
    ck_assert_str_eq (tr_error_hop (err, 2), "c@3");
    ck_assert_str_eq (tr_error_hop (err, 3), "a@1");
    ck_assert_ptr_null (tr_error_hop (err, 4));
    //  The chain is a copy of the uid, not the caller's buffer.
    char uid [] = "d@4";
    ck_assert_tr_ok (tri_error_add_hop (err, uid));
    uid [0] = 'x';
    ck_assert_str_eq (tr_error_hop (err, 4), "d@4");
    tr_error_destroy (&err);
}
END_TEST

START_TEST (test_append_builds_a_list_in_order)
{
    tr_error_t *list = NULL;
    tri_error_append (&list, NULL);
    ck_assert_ptr_null (list);
    tr_error_t *one = tri_error_new (TR_ECRASHED, "Crashed", "one@1", "first");
    tr_error_t *two = tri_error_new (TR_EREMOTE, "ValueError", "two@2", "second");
    tr_error_t *three = tri_error_new (TR_ETIMEDOUT, NULL, "three@3", "third");
    tri_error_append (&list, one);
    ck_assert_ptr_eq (list, one);
    tri_error_append (&list, two);
    tri_error_append (&list, NULL);
    tri_error_append (&list, three);
    ck_assert_ptr_eq (list, one);
    ck_assert_ptr_eq (tr_error_next (list), two);
    ck_assert_ptr_eq (tr_error_next (two), three);
    ck_assert_ptr_null (tr_error_next (three));
    //  Destroying the head frees the whole list (valgrind checks it).
    tr_error_destroy (&list);
    ck_assert_ptr_null (list);
}
END_TEST

START_TEST (test_dup_copies_the_whole_list_deeply)
{
    tr_error_t *list = tri_error_new (TR_ECRASHED, "Crashed", "child@1", "exited with %d", 3);
    list->exit_status = 3;
    tri_error_add_hop (list, "parent@2");
    tri_error_capture_frames (list, 0);
    tr_error_t *second = tri_error_new (TR_ECRASHED, "Crashed", "other@3", "signal");
    second->signal = SIGSEGV;
    tri_error_append (&list, second);

    tr_error_t *copy = tr_error_dup (list);
    ck_assert_ptr_nonnull (copy);
    ck_assert_ptr_ne (copy, list);
    s_assert_same (copy, list);
    ck_assert_ptr_nonnull (tr_error_next (copy));
    ck_assert_ptr_ne (tr_error_next (copy), second);
    s_assert_same (tr_error_next (copy), second);
    ck_assert_ptr_null (tr_error_next (tr_error_next (copy)));
    //  Nothing is shared.
    ck_assert_ptr_ne (tr_error_message (copy), tr_error_message (list));
    ck_assert_ptr_ne (tr_error_hop (copy, 1), tr_error_hop (list, 1));
    tr_error_destroy (&list);
    ck_assert_str_eq (tr_error_message (copy), "exited with 3");
    ck_assert_str_eq (tr_error_hop (copy, 1), "parent@2");
    ck_assert_int_eq (tr_error_signal (tr_error_next (copy)), SIGSEGV);
    tr_error_destroy (&copy);

    ck_assert_ptr_null (tr_error_dup (NULL));
}
END_TEST

START_TEST (test_destroy_accepts_null_and_nulls_the_pointer)
{
    tr_error_destroy (NULL);
    tr_error_t *err = NULL;
    tr_error_destroy (&err);
    ck_assert_ptr_null (err);
    err = tri_error_new (TR_EPROTO, "ProtocolError", "p@1", "bad");
    tr_error_destroy (&err);
    ck_assert_ptr_null (err);
    tr_error_destroy (&err);                    //  twice: nothing happens
    ck_assert_ptr_null (err);
}
END_TEST

START_TEST (test_accessors_accept_null)
{
    ck_assert_int_eq (tr_error_code (NULL), TR_EINVAL);
    ck_assert_ptr_null (tr_error_type (NULL));
    ck_assert_ptr_null (tr_error_message (NULL));
    ck_assert_ptr_null (tr_error_origin (NULL));
    ck_assert_uint_eq (tr_error_hops (NULL), 0);
    ck_assert_ptr_null (tr_error_hop (NULL, 0));
    ck_assert_ptr_null (tr_error_frames (NULL));
    ck_assert_int_eq (tr_error_exit_status (NULL), 0);
    ck_assert_int_eq (tr_error_signal (NULL), 0);
    ck_assert_ptr_null (tr_error_next (NULL));
    ck_assert_ptr_null (tr_error_format (NULL));
}
END_TEST

//  ==========================================================================
//  Wire form

START_TEST (test_an_error_round_trips_through_an_error_frame)
{
    tr_error_t *err = tri_error_new (TR_ECRASHED, "Crashed", "worker@1",
                                     "actor worker@1 (pid %d) was killed by signal %d", 42, 9);
    tri_error_add_hop (err, "middle@2");
    tri_error_add_hop (err, "root@3");
    free (err->frames);
    err->frames = strdup ("#0 s_crash at worker.c:10\n#1 s_serve_main\n");
    err->exit_status = 0;
    err->signal = SIGKILL;
    tr_error_t *back = s_through_the_wire (err, "middle@2");
    s_assert_same (back, err);
    ck_assert_ptr_null (tr_error_next (back));
    tr_error_destroy (&back);

    //  And an exit status, with an empty message.
    tr_error_t *exited = tri_error_new (TR_ECRASHED, "Crashed", "w@9", "%s", "");
    exited->exit_status = 3;
    back = s_through_the_wire (exited, "w@9");
    s_assert_same (back, exited);
    ck_assert_int_eq (tr_error_exit_status (back), 3);
    tr_error_destroy (&back);
    tr_error_destroy (&exited);
    tr_error_destroy (&err);
}
END_TEST

START_TEST (test_every_code_of_the_table_round_trips)
{
    tr_error_t *err = tri_error_new (s_codes [_i].code, NULL, "a@1", "%s", s_codes [_i].text);
    tr_error_t *back = s_through_the_wire (err, "a@1");
    s_assert_same (back, err);
    ck_assert_str_eq (tr_error_type (back), s_codes [_i].name);
    tr_error_destroy (&back);
    tr_error_destroy (&err);
}
END_TEST

START_TEST (test_an_error_without_origin_keeps_no_hops_through_the_wire)
{
    tr_error_t *err = tri_error_new (TR_ECANCELED, "Cancelled", NULL, "the call was cancelled");
    ck_assert_uint_eq (tr_error_hops (err), 0);
    tr_error_t *back = s_through_the_wire (err, "peer@1");
    s_assert_same (back, err);
    tr_error_destroy (&back);
    tr_error_destroy (&err);
}
END_TEST

START_TEST (test_malformed_error_bodies_become_protocol_errors)
{
    struct {
        tr_args_t *body;
        const char *reason;
    } cases [] = {
        { tr_pack ("n"), "not a map" },
        { tr_pack ("i", -2), "not a map" },
        { tr_pack ("s", "boom"), "not a map" },
        { tr_pack ("[s s s]", "T", "m", "o"), "not a map" },
        { tr_pack ("{}"), "without type, msg or origin" },
        { tr_pack ("{s:i s:s s:s}", "code", -2, "msg", "m", "origin", "o@1"),
          "without type, msg or origin" },
        { tr_pack ("{s:i s:s s:s}", "code", -2, "type", "T", "origin", "o@1"),
          "without type, msg or origin" },
        { tr_pack ("{s:i s:s s:s}", "code", -2, "type", "T", "msg", "m"),
          "without type, msg or origin" },
        { tr_pack ("{s:i s:s s:s}", "type", 5, "msg", "m", "origin", "o@1"),
          "without type, msg or origin" },
        { tr_pack ("{s:s s:n s:s}", "type", "T", "msg", "origin", "o@1"),
          "without type, msg or origin" },
        { tr_pack ("{s:s s:s s:y}", "type", "T", "msg", "m", "origin", "o@1", (size_t) 3),
          "without type, msg or origin" }
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        tr_error_t *err = s_unpack_body (cases [i].body, "bad@peer");
        ck_assert_msg (err != NULL, "case %zu: NULL", i);
        ck_assert_msg (tr_error_code (err) == TR_EPROTO, "case %zu: %s", i,
                       tr_errname (tr_error_code (err)));
        ck_assert_str_eq (tr_error_type (err), "ProtocolError");
        ck_assert_str_eq (tr_error_origin (err), "bad@peer");
        ck_assert_msg (strstr (tr_error_message (err), "bad@peer")
                    && strstr (tr_error_message (err), cases [i].reason),
                       "case %zu: message '%s'", i, tr_error_message (err));
        tr_error_destroy (&err);
    }
    tr_error_t *err = tri_error_unpack (NULL, "bad@peer");
    ck_assert_ptr_nonnull (err);
    ck_assert_int_eq (tr_error_code (err), TR_EPROTO);
    tr_error_destroy (&err);
}
END_TEST

START_TEST (test_codes_outside_the_table_arrive_as_remote_errors)
{
    static const struct {
        const char *fmt;
        int code;
    } cases [] = {
        { "{s:i s:s s:s s:s}", 12345 },     //  unknown
        { "{s:i s:s s:s s:s}", -12345 },    //  unknown
        { "{s:i s:s s:s s:s}", 0 },         //  success is no error
        { "{s:i s:s s:s s:s}", 5 }          //  positive
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        tr_error_t *err = s_unpack_body (tr_pack (cases [i].fmt, "code", cases [i].code,
                                                  "type", "Odd", "msg", "kept",
                                                  "origin", "far@1"), "near@2");
        ck_assert_ptr_nonnull (err);
        ck_assert_msg (tr_error_code (err) == TR_EREMOTE, "code %d became %s", cases [i].code,
                       tr_errname (tr_error_code (err)));
        ck_assert_str_eq (tr_error_type (err), "Odd");
        ck_assert_str_eq (tr_error_message (err), "kept");
        ck_assert_str_eq (tr_error_origin (err), "far@1");
        tr_error_destroy (&err);
    }
    //  No code at all, or not an integer.
    tr_error_t *err = s_unpack_body (tr_pack ("{s:s s:s s:s}", "type", "T", "msg", "m",
                                              "origin", "o@1"), "p@1");
    ck_assert_int_eq (tr_error_code (err), TR_EREMOTE);
    tr_error_destroy (&err);
    err = s_unpack_body (tr_pack ("{s:s s:s s:s s:s}", "code", "-1", "type", "T", "msg", "m",
                                  "origin", "o@1"), "p@1");
    ck_assert_int_eq (tr_error_code (err), TR_EREMOTE);
    tr_error_destroy (&err);
    //  A code of the table is kept.
    err = s_unpack_body (tr_pack ("{s:i s:s s:s s:s}", "code", TR_ENOTEXPOSED, "type",
                                  "NotExposed", "msg", "m", "origin", "o@1"), "p@1");
    ck_assert_int_eq (tr_error_code (err), TR_ENOTEXPOSED);
    tr_error_destroy (&err);
}
END_TEST

START_TEST (test_optional_error_fields_take_defaults)
{
    //  Only type, msg and origin: no frames, the origin as the only hop,
    //  no status, no signal.
    tr_error_t *err = s_unpack_body (tr_pack ("{s:s s:s s:s}", "type", "T", "msg", "m",
                                              "origin", "o@1"), "p@1");
    ck_assert_str_eq (tr_error_frames (err), "");
    ck_assert_uint_eq (tr_error_hops (err), 1);
    ck_assert_str_eq (tr_error_hop (err, 0), "o@1");
    ck_assert_int_eq (tr_error_exit_status (err), 0);
    ck_assert_int_eq (tr_error_signal (err), 0);
    tr_error_destroy (&err);

    //  Wrongly typed optional fields read as absent; hops that are not
    //  strings are skipped.
    err = s_unpack_body (tr_pack ("{s:s s:s s:s s:i s:s s:s s:[s i s n]}",
                                  "type", "T", "msg", "m", "origin", "o@1", "frames", 7,
                                  "status", "3", "signal", "9",
                                  "hops", "o@1", 5, "q@2"), "p@1");
    ck_assert_str_eq (tr_error_frames (err), "");
    ck_assert_int_eq (tr_error_exit_status (err), 0);
    ck_assert_int_eq (tr_error_signal (err), 0);
    ck_assert_uint_eq (tr_error_hops (err), 2);
    ck_assert_str_eq (tr_error_hop (err, 0), "o@1");
    ck_assert_str_eq (tr_error_hop (err, 1), "q@2");
    tr_error_destroy (&err);
}
END_TEST

START_TEST (test_a_peer_cannot_make_the_chain_unbounded)
{
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    const char *keys [] = { "type", "msg", "origin" };
    for (int i = 0; i < 3; i++) {
        msgpack_pack_str (&pk, strlen (keys [i]));
        msgpack_pack_str_body (&pk, keys [i], strlen (keys [i]));
        msgpack_pack_str (&pk, 1);
        msgpack_pack_str_body (&pk, "x", 1);
    }
    msgpack_pack_str (&pk, 4);
    msgpack_pack_str_body (&pk, "hops", 4);
    msgpack_pack_array (&pk, 1000);
    for (int i = 0; i < 1000; i++) {
        char hop [16];
        int n = snprintf (hop, sizeof hop, "h%d@x", i);
        msgpack_pack_str (&pk, (size_t) n);
        msgpack_pack_str_body (&pk, hop, (size_t) n);
    }
    tr_value_t *value = tr_value_decode (sbuf.data, sbuf.size);
    ck_assert_ptr_nonnull (value);
    tr_error_t *err = tri_error_unpack (tr_value_object (value), "p@1");
    ck_assert_ptr_nonnull (err);
    ck_assert_uint_eq (tr_error_hops (err), 256);
    ck_assert_str_eq (tr_error_hop (err, 255), "h255@x");
    tr_error_destroy (&err);
    tr_value_destroy (&value);
    msgpack_sbuffer_destroy (&sbuf);
}
END_TEST

//  ==========================================================================
//  Text

START_TEST (test_format_shows_type_message_origin_hops_and_frames)
{
    tr_error_t *err = tri_error_new (TR_EREMOTE, "ValueError", "leaf@1", "n must be %d", 3);
    tri_error_add_hop (err, "mid@2");
    tri_error_add_hop (err, "top@3");
    free (err->frames);
    err->frames = strdup ("frame-one\nframe-two\n");
    char *text = tr_error_format (err);
    ck_assert_ptr_nonnull (text);
    ck_assert_msg (strstr (text, "ValueError: n must be 3\n"), "%s", text);
    ck_assert_msg (strstr (text, "raised in leaf@1 (EREMOTE)"), "%s", text);
    ck_assert_msg (strstr (text, "relayed by mid@2 -> top@3\n"), "%s", text);
    ck_assert_msg (strstr (text, "remote traceback:\n    frame-one\n    frame-two\n"), "%s", text);
    ck_assert_msg (!strstr (text, "signal"), "%s", text);
    free (text);

    //  A frames string without a final newline still prints every line.
    free (err->frames);
    err->frames = strdup ("alpha\nbeta");
    text = tr_error_format (err);
    ck_assert_msg (strstr (text, "    alpha\n    beta\n"), "%s", text);
    free (text);
    tr_error_destroy (&err);
}
END_TEST

START_TEST (test_format_of_a_local_error_has_no_relays_or_traceback)
{
    tr_error_t *err = tri_error_new (TR_ECRASHED, "Crashed", "child@1", "killed");
    err->signal = SIGSEGV;
    char *text = tr_error_format (err);
    ck_assert_msg (strstr (text, "Crashed: killed\n"), "%s", text);
    ck_assert_msg (strstr (text, "raised in child@1 (ECRASHED)"), "%s", text);
    ck_assert_msg (strstr (text, "killed by signal 11"), "%s", text);
    ck_assert_msg (!strstr (text, "relayed by"), "%s", text);
    ck_assert_msg (!strstr (text, "traceback"), "%s", text);
    free (text);
    tr_error_destroy (&err);
}
END_TEST

START_TEST (test_format_of_a_list_shows_every_error)
{
    tr_error_t *list = tri_error_new (TR_EREMOTE, "First", "a@1", "one");
    tri_error_append (&list, tri_error_new (TR_ECRASHED, "Second", "b@2", "two"));
    char *text = tr_error_format (list);
    char *first = strstr (text, "First: one");
    char *second = strstr (text, "Second: two");
    ck_assert_msg (first && second && first < second, "%s", text);
    ck_assert_msg (strstr (text, "raised in b@2 (ECRASHED)"), "%s", text);
    free (text);
    tr_error_destroy (&list);
}
END_TEST

//  ==========================================================================
//  Frames

START_TEST (test_capture_frames_records_at_least_one_line)
{
    tr_error_t *err = tri_error_new (TR_EREMOTE, "E", "a@1", "m");
    tri_error_capture_frames (err, 0);
    const char *frames = tr_error_frames (err);
    ck_assert_uint_gt (strlen (frames), 0);
    ck_assert_ptr_nonnull (strchr (frames, '\n'));
    ck_assert_int_eq (frames [strlen (frames) - 1], '\n');
    //  It travels with the error.
    tr_error_t *back = s_through_the_wire (err, "a@1");
    ck_assert_str_eq (tr_error_frames (back), frames);
    char *text = tr_error_format (back);
    ck_assert_msg (strstr (text, "remote traceback:\n    "), "%s", text);
    free (text);
    tr_error_destroy (&back);

    //  Skipping more frames than there are leaves none, without failing.
    tri_error_capture_frames (err, 1000);
    ck_assert_str_eq (tr_error_frames (err), "");
    tr_error_destroy (&err);
}
END_TEST

//  ==========================================================================

static Suite *
s_suite (void)
{
    Suite *suite = suite_create ("error");

    TCase *tc = tu_tcase (suite, "codes", 10);
    tcase_add_test (tc, test_every_code_has_its_name_and_text);
    tcase_add_test (tc, test_unknown_codes_get_a_text_and_a_name_never_null);

    tc = tu_tcase (suite, "objects", 10);
    tcase_add_test (tc, test_new_error_holds_what_it_was_given);
    tcase_add_test (tc, test_new_error_without_type_or_origin_uses_the_code_name_and_no_hops);
    tcase_add_test (tc, test_hops_are_added_in_order_without_consecutive_duplicates);
    tcase_add_test (tc, test_append_builds_a_list_in_order);
    tcase_add_test (tc, test_dup_copies_the_whole_list_deeply);
    tcase_add_test (tc, test_destroy_accepts_null_and_nulls_the_pointer);
    tcase_add_test (tc, test_accessors_accept_null);

    tc = tu_tcase (suite, "wire", 10);
    tcase_add_test (tc, test_an_error_round_trips_through_an_error_frame);
    tcase_add_loop_test (tc, test_every_code_of_the_table_round_trips, 0, S_CODES);
    tcase_add_test (tc, test_an_error_without_origin_keeps_no_hops_through_the_wire);
    tcase_add_test (tc, test_malformed_error_bodies_become_protocol_errors);
    tcase_add_test (tc, test_codes_outside_the_table_arrive_as_remote_errors);
    tcase_add_test (tc, test_optional_error_fields_take_defaults);
    tcase_add_test (tc, test_a_peer_cannot_make_the_chain_unbounded);

    tc = tu_tcase (suite, "format", 10);
    tcase_add_test (tc, test_format_shows_type_message_origin_hops_and_frames);
    tcase_add_test (tc, test_format_of_a_local_error_has_no_relays_or_traceback);
    tcase_add_test (tc, test_format_of_a_list_shows_every_error);
    tcase_add_test (tc, test_capture_frames_records_at_least_one_line);

    return suite;
}

int
main (void)
{
    return tu_run_suite (s_suite (), CK_FORK_GETENV);
}
