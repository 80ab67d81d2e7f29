/*  =========================================================================
    test_msg.c - the wire protocol: checking, decoding and encoding frames

    Frames are built with msgpack_packer, as a peer would, and go through
    tri_msg_check and tri_msg_decode the way the loop feeds them. Every
    valid sample is also cut at every byte and given a trailing byte, and
    a seeded fuzz loop mutates valid frames to show that nothing a peer
    sends can crash the decoder or get past the check into msgpack-c.
    =========================================================================
*/
#include "testutil.h"
#include "troupe_private.h"
#include <stdint.h>
#include <dirent.h>

static const tri_limits_t s_defaults = { TRI_DEFAULT_MAX_MSG, TRI_DEFAULT_MAX_DEPTH };

//  --------------------------------------------------------------------------
//  Helpers

typedef struct {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
} s_buf_t;

static void
s_buf_init (s_buf_t *self)
{
    msgpack_sbuffer_init (&self->sbuf);
    msgpack_packer_init (&self->pk, &self->sbuf, msgpack_sbuffer_write);
}

static void
s_buf_destroy (s_buf_t *self)
{
    msgpack_sbuffer_destroy (&self->sbuf);
}

static bool
s_streq (const char *a, const char *b)
{
    return strcmp (a, b) == 0;
}

static void
s_pack_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

//  A string of size bytes, 'a' to 'z' over and over.
static void
s_pack_long_str (msgpack_packer *pk, size_t size)
{
    char *text = malloc (size);
    ck_assert_ptr_nonnull (text);
    for (size_t i = 0; i < size; i++)
        text [i] = (char) ('a' + i % 26);
    msgpack_pack_str (pk, size);
    msgpack_pack_str_body (pk, text, size);
    free (text);
}

static void
s_pack_bin (msgpack_packer *pk, size_t size)
{
    uint8_t *bytes = malloc (size? size: 1);
    ck_assert_ptr_nonnull (bytes);
    for (size_t i = 0; i < size; i++)
        bytes [i] = (uint8_t) (i * 7);
    msgpack_pack_bin (pk, size);
    msgpack_pack_bin_body (pk, bytes, size);
    free (bytes);
}

static void
s_pack_ext (msgpack_packer *pk, size_t size, int8_t type)
{
    uint8_t *bytes = malloc (size? size: 1);
    ck_assert_ptr_nonnull (bytes);
    for (size_t i = 0; i < size; i++)
        bytes [i] = (uint8_t) (i * 3 + 1);
    msgpack_pack_ext (pk, size, type);
    msgpack_pack_ext_body (pk, bytes, size);
    free (bytes);
}

//  Decode size bytes as a frame the loop just received.
static int
s_decode (const void *data, size_t size, const tri_limits_t *limits,
          tri_msg_t **msg, uint64_t *cid, char *why, size_t why_size)
{
    zmq_msg_t frame;
    ck_assert_int_eq (zmq_msg_init_size (&frame, size), 0);
    if (size)
        memcpy (zmq_msg_data (&frame), data, size);
    return tri_msg_decode (&frame, limits, msg, cid, why, why_size);
}

//  Decode, expecting success.
static tri_msg_t *
s_decode_ok (const void *data, size_t size)
{
    tri_msg_t *msg = NULL;
    uint64_t cid = 99;
    char why [256] = "";
    int rc = s_decode (data, size, &s_defaults, &msg, &cid, why, sizeof why);
    ck_assert_msg (rc == 0, "decode failed: %s (%s)", tr_errname (rc), why);
    ck_assert_ptr_nonnull (msg);
    ck_assert (cid == msg->cid);
    return msg;
}

//  Frame [type, cid, body] with body the encoded value in args (taken).
static tri_msg_t *
s_decode_with_body (tri_type_t type, uint64_t cid, tr_args_t *args)
{
    ck_assert_ptr_nonnull (args);
    s_buf_t buf;
    s_buf_init (&buf);
    tri_msg_begin (&buf.pk, type, cid);
    msgpack_sbuffer_write (&buf.sbuf, tr_args_data (args), tr_args_size (args));
    tr_args_destroy (&args);
    tri_msg_t *msg = s_decode_ok (buf.sbuf.data, buf.sbuf.size);
    s_buf_destroy (&buf);
    return msg;
}

//  Fail unless every string under o has a NUL right after its bytes;
//  returns how many strings it saw.
static int
s_assert_cstrings (const msgpack_object *o)
{
    int count = 0;
    switch (o->type) {
        case MSGPACK_OBJECT_STR:
            ck_assert_ptr_nonnull (o->via.str.ptr);
            ck_assert_int_eq (o->via.str.ptr [o->via.str.size], '\0');
            return 1;
        case MSGPACK_OBJECT_ARRAY:
            for (uint32_t i = 0; i < o->via.array.size; i++)
                count += s_assert_cstrings (&o->via.array.ptr [i]);
            return count;
        case MSGPACK_OBJECT_MAP:
            for (uint32_t i = 0; i < o->via.map.size; i++) {
                count += s_assert_cstrings (&o->via.map.ptr [i].key);
                count += s_assert_cstrings (&o->via.map.ptr [i].val);
            }
            return count;
        default:
            return 0;
    }
}

//  --------------------------------------------------------------------------
//  Valid samples: one per msgpack format family, each packed with
//  msgpack_packer and checked to start with the marker byte it is meant
//  to exercise.

typedef struct {
    const char *name;
    uint8_t marker;             //  first byte of the encoded body
} s_sample_t;

static const s_sample_t s_samples [] = {
    { "nil", 0xc0 },
    { "true", 0xc3 },
    { "false", 0xc2 },
    { "positive fixint", 0x07 },
    { "negative fixint", 0xfb },
    { "uint8", 0xcc },
    { "uint16", 0xcd },
    { "uint32", 0xce },
    { "uint64", 0xcf },
    { "int8", 0xd0 },
    { "int16", 0xd1 },
    { "int32", 0xd2 },
    { "int64", 0xd3 },
    { "float32", 0xca },
    { "float64", 0xcb },
    { "empty fixstr", 0xa0 },
    { "fixstr", 0xa5 },
    { "str8", 0xd9 },
    { "str16", 0xda },
    { "str32", 0xdb },
    { "bin8", 0xc4 },
    { "bin16", 0xc5 },
    { "bin32", 0xc6 },
    { "fixext1", 0xd4 },
    { "fixext2", 0xd5 },
    { "fixext4", 0xd6 },
    { "fixext8", 0xd7 },
    { "fixext16", 0xd8 },
    { "ext8 of zero bytes", 0xc7 },
    { "ext8", 0xc7 },
    { "ext16", 0xc8 },
    { "ext32", 0xc9 },
    { "empty fixarray", 0x90 },
    { "fixarray", 0x93 },
    { "array16", 0xdc },
    { "array32", 0xdd },
    { "empty fixmap", 0x80 },
    { "fixmap", 0x82 },
    { "map16", 0xde },
    { "map32", 0xdf },
    { "nested maps and arrays", 0x83 }
};

#define S_SAMPLES ((int) (sizeof s_samples / sizeof s_samples [0]))

static void
s_pack_sample (msgpack_packer *pk, int index)
{
    const char *name = s_samples [index].name;
    if (s_streq (name, "nil"))
        msgpack_pack_nil (pk);
    else if (s_streq (name, "true"))
        msgpack_pack_true (pk);
    else if (s_streq (name, "false"))
        msgpack_pack_false (pk);
    else if (s_streq (name, "positive fixint"))
        msgpack_pack_int (pk, 7);
    else if (s_streq (name, "negative fixint"))
        msgpack_pack_int (pk, -5);
    else if (s_streq (name, "uint8"))
        msgpack_pack_fix_uint8 (pk, 200);
    else if (s_streq (name, "uint16"))
        msgpack_pack_fix_uint16 (pk, 60000);
    else if (s_streq (name, "uint32"))
        msgpack_pack_fix_uint32 (pk, 4000000000u);
    else if (s_streq (name, "uint64"))
        msgpack_pack_fix_uint64 (pk, UINT64_MAX);
    else if (s_streq (name, "int8"))
        msgpack_pack_fix_int8 (pk, -100);
    else if (s_streq (name, "int16"))
        msgpack_pack_fix_int16 (pk, -30000);
    else if (s_streq (name, "int32"))
        msgpack_pack_fix_int32 (pk, -2000000000);
    else if (s_streq (name, "int64"))
        msgpack_pack_fix_int64 (pk, INT64_MIN);
    else if (s_streq (name, "float32"))
        msgpack_pack_float (pk, 1.5f);
    else if (s_streq (name, "float64"))
        msgpack_pack_double (pk, -2.25);
    else if (s_streq (name, "empty fixstr"))
        s_pack_str (pk, "");
    else if (s_streq (name, "fixstr"))
        s_pack_str (pk, "hello");
    else if (s_streq (name, "str8"))
        s_pack_long_str (pk, 200);
    else if (s_streq (name, "str16"))
        s_pack_long_str (pk, 1000);
    else if (s_streq (name, "str32"))
        s_pack_long_str (pk, 70000);
    else if (s_streq (name, "bin8"))
        s_pack_bin (pk, 10);
    else if (s_streq (name, "bin16"))
        s_pack_bin (pk, 300);
    else if (s_streq (name, "bin32"))
        s_pack_bin (pk, 70000);
    else if (s_streq (name, "fixext1"))
        s_pack_ext (pk, 1, 5);
    else if (s_streq (name, "fixext2"))
        s_pack_ext (pk, 2, -3);
    else if (s_streq (name, "fixext4"))
        s_pack_ext (pk, 4, 0);
    else if (s_streq (name, "fixext8"))
        s_pack_ext (pk, 8, 127);
    else if (s_streq (name, "fixext16"))
        s_pack_ext (pk, 16, -128);
    else if (s_streq (name, "ext8 of zero bytes"))
        s_pack_ext (pk, 0, 9);
    else if (s_streq (name, "ext8"))
        s_pack_ext (pk, 3, 9);
    else if (s_streq (name, "ext16"))
        s_pack_ext (pk, 300, 10);
    else if (s_streq (name, "ext32"))
        s_pack_ext (pk, 70000, 11);
    else if (s_streq (name, "empty fixarray"))
        msgpack_pack_array (pk, 0);
    else if (s_streq (name, "fixarray")) {
        msgpack_pack_array (pk, 3);
        msgpack_pack_int (pk, 1);
        s_pack_str (pk, "two");
        msgpack_pack_nil (pk);
    }
    else if (s_streq (name, "array16")) {
        msgpack_pack_array (pk, 20);
        for (int i = 0; i < 20; i++)
            msgpack_pack_int (pk, i * 1000);
    }
    else if (s_streq (name, "array32")) {
        msgpack_pack_array (pk, 65536);
        for (int i = 0; i < 65536; i++)
            msgpack_pack_nil (pk);
    }
    else if (s_streq (name, "empty fixmap"))
        msgpack_pack_map (pk, 0);
    else if (s_streq (name, "fixmap")) {
        msgpack_pack_map (pk, 2);
        s_pack_str (pk, "a");
        msgpack_pack_int (pk, 1);
        s_pack_str (pk, "b");
        s_pack_str (pk, "bee");
    }
    else if (s_streq (name, "map16")) {
        msgpack_pack_map (pk, 20);
        for (int i = 0; i < 20; i++) {
            char key [16];
            snprintf (key, sizeof key, "k%d", i);
            s_pack_str (pk, key);
            msgpack_pack_int (pk, -i);
        }
    }
    else if (s_streq (name, "map32")) {
        //  One byte a key and a value, so that every cut fails at the
        //  map's header and cutting at every byte stays linear.
        msgpack_pack_map (pk, 65536);
        for (int i = 0; i < 65536; i++) {
            msgpack_pack_int (pk, i & 0x7f);
            msgpack_pack_true (pk);
        }
    }
    else if (s_streq (name, "nested maps and arrays")) {
        //  {"a": [1, {"b": [bin, ext, 1.5, {}]}, []], "c": {"d": [[["e"]]]},
        //   "f": "x"}
        msgpack_pack_map (pk, 3);
        s_pack_str (pk, "a");
        msgpack_pack_array (pk, 3);
        msgpack_pack_int (pk, 1);
        msgpack_pack_map (pk, 1);
        s_pack_str (pk, "b");
        msgpack_pack_array (pk, 4);
        s_pack_bin (pk, 5);
        s_pack_ext (pk, 4, 2);
        msgpack_pack_double (pk, 1.5);
        msgpack_pack_map (pk, 0);
        msgpack_pack_array (pk, 0);
        s_pack_str (pk, "c");
        msgpack_pack_map (pk, 1);
        s_pack_str (pk, "d");
        msgpack_pack_array (pk, 1);
        msgpack_pack_array (pk, 1);
        msgpack_pack_array (pk, 1);
        s_pack_str (pk, "e");
        s_pack_str (pk, "f");
        s_pack_str (pk, "x");
    }
    else
        ck_abort_msg ("no such sample %s", name);
}

//  The sample as a body and as a whole return frame (cid 7).
static void
s_sample_frame (int index, s_buf_t *body, s_buf_t *frame)
{
    s_buf_init (body);
    s_pack_sample (&body->pk, index);
    ck_assert_msg (body->sbuf.size > 0 && (uint8_t) body->sbuf.data [0] == s_samples [index].marker,
                   "%s: packed as 0x%02x, wanted 0x%02x", s_samples [index].name,
                   (uint8_t) body->sbuf.data [0], s_samples [index].marker);
    s_buf_init (frame);
    tri_msg_begin (&frame->pk, TRI_RETURN, 7);
    msgpack_sbuffer_write (&frame->sbuf, body->sbuf.data, body->sbuf.size);
}

//  tri_msg_check of the first n bytes of data, read from a buffer that
//  ends right after them when that is cheap, so that valgrind sees any
//  read past the cut.
static int
s_check_prefix (const char *data, size_t size, size_t n, char *why, size_t why_size)
{
    if (n > 256 && size - n > 256)
        return tri_msg_check (data, n, &s_defaults, why, why_size);
    char *copy = malloc (n? n: 1);
    ck_assert_ptr_nonnull (copy);
    memcpy (copy, data, n);
    int rc = tri_msg_check (copy, n, &s_defaults, why, why_size);
    free (copy);
    return rc;
}

//  ==========================================================================
//  tri_msg_check: what it accepts

START_TEST (test_check_accepts_every_msgpack_format_alone_and_in_a_frame)
{
    s_buf_t body, frame;
    s_sample_frame (_i, &body, &frame);
    char why [256] = "";
    int rc = tri_msg_check (body.sbuf.data, body.sbuf.size, &s_defaults, why, sizeof why);
    ck_assert_msg (rc == 0, "%s alone: %s (%s)", s_samples [_i].name, tr_errname (rc), why);
    rc = tri_msg_check (frame.sbuf.data, frame.sbuf.size, &s_defaults, why, sizeof why);
    ck_assert_msg (rc == 0, "%s in a frame: %s (%s)", s_samples [_i].name, tr_errname (rc), why);
    s_buf_destroy (&body);
    s_buf_destroy (&frame);
}
END_TEST

START_TEST (test_check_refuses_every_cut_of_a_valid_frame)
{
    s_buf_t body, frame;
    s_sample_frame (_i, &body, &frame);
    for (size_t n = 0; n < frame.sbuf.size; n++) {
        char why [256] = "";
        int rc = s_check_prefix (frame.sbuf.data, frame.sbuf.size, n, why, sizeof why);
        ck_assert_msg (rc == TR_EPROTO, "%s cut at %zu of %zu: %s", s_samples [_i].name,
                       n, frame.sbuf.size, tr_errname (rc));
        ck_assert_msg (*why, "%s cut at %zu: no reason", s_samples [_i].name, n);
    }
    //  The body alone, too.
    for (size_t n = 0; n < body.sbuf.size; n++) {
        char why [256] = "";
        int rc = s_check_prefix (body.sbuf.data, body.sbuf.size, n, why, sizeof why);
        ck_assert_msg (rc == TR_EPROTO, "%s body cut at %zu of %zu: %s", s_samples [_i].name,
                       n, body.sbuf.size, tr_errname (rc));
    }
    s_buf_destroy (&body);
    s_buf_destroy (&frame);
}
END_TEST

START_TEST (test_check_refuses_a_trailing_byte_after_a_valid_frame)
{
    s_buf_t body, frame;
    s_sample_frame (_i, &body, &frame);
    msgpack_pack_nil (&frame.pk);
    char why [256] = "";
    ck_assert_tr_rc (tri_msg_check (frame.sbuf.data, frame.sbuf.size, &s_defaults,
                                    why, sizeof why), TR_EPROTO);
    ck_assert_msg (strstr (why, "1 trailing byte"), "reason: %s", why);
    s_buf_destroy (&body);
    s_buf_destroy (&frame);
}
END_TEST

//  ==========================================================================
//  tri_msg_check: what it refuses

START_TEST (test_check_refuses_an_empty_frame)
{
    char why [256] = "";
    ck_assert_tr_rc (tri_msg_check ("", 0, &s_defaults, why, sizeof why), TR_EPROTO);
    ck_assert_msg (strstr (why, "truncated"), "reason: %s", why);
}
END_TEST

START_TEST (test_check_refuses_the_never_used_byte_0xc1)
{
    static const struct {
        const char *bytes;
        size_t size;
        size_t at;
    } cases [] = {
        { "\xc1", 1, 0 },
        { "\x92\x01\xc1", 3, 2 },               //  [1, 0xc1]
        { "\x81\xc1\x01", 3, 1 },               //  {0xc1: 1}
        { "\x93\x06\x01\xc1", 4, 3 },           //  [return, 1, 0xc1]
        { "\x93\xc1\x01\xc0", 4, 1 }            //  [0xc1, 1, nil]
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char why [256] = "";
        ck_assert_tr_rc (tri_msg_check (cases [i].bytes, cases [i].size, &s_defaults,
                                        why, sizeof why), TR_EPROTO);
        char want [64];
        snprintf (want, sizeof want, "0xc1 at byte %zu", cases [i].at);
        ck_assert_msg (strstr (why, want), "case %zu: reason '%s' lacks '%s'", i, why, want);
    }
}
END_TEST

START_TEST (test_check_refuses_lengths_beyond_the_remaining_bytes)
{
    //  Each declares more bytes or items than follow it.
    static const struct {
        const char *bytes;
        size_t size;
    } cases [] = {
        { "\xdd\xff\xff\xff\xff", 5 },                  //  array32 of 4G items
        { "\xdd\xff\xff\xff\xff\xc0\xc0", 7 },
        { "\xdc\xff\xff\xc0", 4 },                      //  array16
        { "\x93\x01\x02", 3 },                          //  fixarray 3, 2 items
        { "\xdf\xff\xff\xff\xff", 5 },                  //  map32
        { "\xdf\x00\x00\x00\x02\xc0\xc0\xc0", 8 },      //  2 pairs, 3 items
        { "\xde\x00\x10", 3 },                          //  map16
        { "\x82\x01\x02\x03", 4 },                      //  fixmap 2, 3 items
        { "\xdb\x7f\xff\xff\xff", 5 },                  //  str32 of 2 GiB
        { "\xdb\x7f\xff\xff\xff" "abc", 8 },
        { "\xda\x00\x10" "a", 4 },                      //  str16
        { "\xd9\x05" "ab", 4 },                         //  str8
        { "\xa5" "ab", 3 },                             //  fixstr
        { "\xc6\xff\xff\xff\xff", 5 },                  //  bin32
        { "\xc5\x01\x00" "x", 4 },                      //  bin16
        { "\xc4\x03" "a", 3 },                          //  bin8
        { "\xc9\x00\x00\x00\x10\x01", 6 },              //  ext32
        { "\xc8\x01\x00\x01" "x", 5 },                  //  ext16
        { "\xc7\x05\x01" "a", 4 },                      //  ext8
        { "\xc7\x00", 2 },                              //  ext8 without its type
        { "\xd8\x01" "abc", 5 },                        //  fixext16
        { "\xd4\x01", 2 },                              //  fixext1
        { "\xcb\x00\x00", 3 },                          //  float64
        { "\xcf\x01", 2 },                              //  uint64
        { "\xdd\xff\xff", 3 },                          //  length itself cut
        { "\x93\x06\x01\xdd\xff\xff\xff\xff", 8 },      //  as a frame body
        { "\x93\x06\x01\xdb\x7f\xff\xff\xff", 8 },
        { "\x93\x06\x01\x92\xc0\xdf\xff\xff\xff\xff\xc0", 11 }
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char why [256] = "";
        //  An exact copy, so that valgrind would see a read past the end.
        char *copy = malloc (cases [i].size);
        ck_assert_ptr_nonnull (copy);
        memcpy (copy, cases [i].bytes, cases [i].size);
        int rc = tri_msg_check (copy, cases [i].size, &s_defaults, why, sizeof why);
        free (copy);
        ck_assert_msg (rc == TR_EPROTO, "case %zu: %s", i, tr_errname (rc));
        ck_assert_msg (strstr (why, "declares") || strstr (why, "truncated"),
                       "case %zu: reason: %s", i, why);
    }
    //  The decoder never gets to allocate for them; the cid comes from
    //  the frame's head, so that the answer can name the call.
    tri_msg_t *msg = NULL;
    uint64_t cid = 5;
    char why [256] = "";
    ck_assert_tr_rc (s_decode ("\x93\x06\x01\xdd\xff\xff\xff\xff", 8, &s_defaults,
                               &msg, &cid, why, sizeof why), TR_EPROTO);
    ck_assert_ptr_null (msg);
    ck_assert (cid == 1);
    ck_assert_msg (strstr (why, "4294967295 items"), "reason: %s", why);
}
END_TEST

//  n nested arrays (or maps), the innermost holding nil, or empty.
static void
s_pack_nested (msgpack_packer *pk, int n, bool maps, bool empty_inside)
{
    for (int i = 0; i < n; i++) {
        bool last = i == n - 1;
        if (maps) {
            msgpack_pack_map (pk, last && empty_inside? 0: 1);
            if (!(last && empty_inside))
                s_pack_str (pk, "k");
        }
        else
            msgpack_pack_array (pk, last && empty_inside? 0: 1);
    }
    if (!empty_inside || n == 0)
        msgpack_pack_nil (pk);
}

START_TEST (test_check_refuses_nesting_deeper_than_the_limit_as_too_big)
{
    static const int limits [] = { 1, 2, 4, 8, TRI_DEFAULT_MAX_DEPTH };
    for (size_t l = 0; l < sizeof limits / sizeof limits [0]; l++)
    for (int shape = 0; shape < 4; shape++) {
        bool maps = shape & 1, empty = shape & 2;
        tri_limits_t limit = { 1 << 20, limits [l] };
        for (int depth = 1; depth <= limits [l] + 2; depth++) {
            s_buf_t buf;
            s_buf_init (&buf);
            s_pack_nested (&buf.pk, depth, maps, empty);
            char why [256] = "";
            int rc = tri_msg_check (buf.sbuf.data, buf.sbuf.size, &limit, why, sizeof why);
            s_buf_destroy (&buf);
            int want = depth <= limits [l]? 0: TR_ETOOBIG;
            ck_assert_msg (rc == want, "%d nested %s%s, limit %d: %s (%s), wanted %s",
                           depth, maps? "maps": "arrays", empty? " (innermost empty)": "",
                           limits [l], tr_errname (rc), why, tr_errname (want));
            if (rc)
                ck_assert_msg (strstr (why, "nested deeper than"), "reason: %s", why);
        }
    }
}
END_TEST

START_TEST (test_decode_gives_too_big_for_frames_nested_past_the_limit)
{
    //  The frame's own array is the first level: a body can nest one less.
    for (int shape = 0; shape < 2; shape++) {
        bool empty = shape == 1;
        for (int body_depth = TRI_DEFAULT_MAX_DEPTH - 1; body_depth <= TRI_DEFAULT_MAX_DEPTH;
             body_depth++) {
            s_buf_t buf;
            s_buf_init (&buf);
            tri_msg_begin (&buf.pk, TRI_RETURN, 3);
            s_pack_nested (&buf.pk, body_depth, false, empty);
            tri_msg_t *msg = NULL;
            uint64_t cid = 1;
            char why [256] = "";
            int rc = s_decode (buf.sbuf.data, buf.sbuf.size, &s_defaults, &msg, &cid,
                               why, sizeof why);
            s_buf_destroy (&buf);
            int want = body_depth < TRI_DEFAULT_MAX_DEPTH? 0: TR_ETOOBIG;
            ck_assert_msg (rc == want, "body %d deep%s: %s (%s), wanted %s", body_depth,
                           empty? " (innermost empty)": "", tr_errname (rc), why,
                           tr_errname (want));
            tri_msg_destroy (&msg);
        }
    }
}
END_TEST

START_TEST (test_depth_limits_beyond_what_msgpack_decodes_are_capped)
{
    //  msgpack-c decodes at most 32 levels; a larger limit must not let a
    //  deeper frame through the check only for the decoder to refuse it.
    tri_limits_t deep = { 1 << 20, 64 };
    s_buf_t buf;
    s_buf_init (&buf);
    s_pack_nested (&buf.pk, 40, false, false);
    char why [256] = "";
    ck_assert_tr_rc (tri_msg_check (buf.sbuf.data, buf.sbuf.size, &deep, why, sizeof why),
                     TR_ETOOBIG);
    tri_msg_t *msg = NULL;
    uint64_t cid = 0;
    ck_assert_tr_rc (s_decode (buf.sbuf.data, buf.sbuf.size, &deep, &msg, &cid,
                               why, sizeof why), TR_ETOOBIG);
    ck_assert_ptr_null (msg);
    s_buf_destroy (&buf);
}
END_TEST

START_TEST (test_check_refuses_frames_larger_than_the_size_limit_as_too_big)
{
    //  [return, 1, "xxx..."] of exactly 100 bytes: 3 header bytes, a str8
    //  header of 2 and 95 bytes of text.
    s_buf_t buf;
    s_buf_init (&buf);
    tri_msg_begin (&buf.pk, TRI_RETURN, 1);
    s_pack_long_str (&buf.pk, 95);
    ck_assert_uint_eq (buf.sbuf.size, 100);
    tri_limits_t exact = { 100, TRI_DEFAULT_MAX_DEPTH };
    tri_limits_t smaller = { 99, TRI_DEFAULT_MAX_DEPTH };
    char why [256] = "";
    ck_assert_tr_ok (tri_msg_check (buf.sbuf.data, buf.sbuf.size, &exact, why, sizeof why));
    ck_assert_tr_rc (tri_msg_check (buf.sbuf.data, buf.sbuf.size, &smaller, why, sizeof why),
                     TR_ETOOBIG);
    ck_assert_msg (strstr (why, "100 bytes") && strstr (why, "99"), "reason: %s", why);

    tri_msg_t *msg = NULL;
    uint64_t cid = 5;
    ck_assert_tr_rc (s_decode (buf.sbuf.data, buf.sbuf.size, &smaller, &msg, &cid,
                               why, sizeof why), TR_ETOOBIG);
    ck_assert_ptr_null (msg);
    ck_assert (cid == 1);
    s_buf_destroy (&buf);
}
END_TEST

START_TEST (test_check_reason_is_optional_and_always_terminated)
{
    ck_assert_tr_rc (tri_msg_check ("\xc1", 1, &s_defaults, NULL, 0), TR_EPROTO);
    ck_assert_tr_rc (tri_msg_check ("\xc1", 1, &s_defaults, NULL, 100), TR_EPROTO);
    char why [8];
    memset (why, 'x', sizeof why);
    ck_assert_tr_rc (tri_msg_check ("\xdd\xff\xff\xff\xff", 5, &s_defaults, why, sizeof why),
                     TR_EPROTO);
    ck_assert_int_eq (why [7], '\0');
    ck_assert_uint_eq (strlen (why), 7);
    memset (why, 'x', sizeof why);
    ck_assert_tr_rc (tri_msg_check ("\xc1", 1, &s_defaults, why, 0), TR_EPROTO);
    ck_assert_int_eq (why [0], 'x');            //  no room: not written
}
END_TEST

//  ==========================================================================
//  tri_msg_peek: the type and cid of a frame that may not decode

static const uint64_t s_cids [] = {
    0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295u, 4294967296u, UINT64_MAX
};

#define S_CIDS (sizeof s_cids / sizeof s_cids [0])

START_TEST (test_peek_reads_type_and_cid_of_any_width_even_from_a_cut_frame)
{
    for (int type = 1; type <= TRI_TYPE_MAX; type++)
    for (size_t c = 0; c < S_CIDS; c++) {
        s_buf_t buf;
        s_buf_init (&buf);
        tri_msg_begin (&buf.pk, (tri_type_t) type, s_cids [c]);
        size_t head = buf.sbuf.size;
        s_pack_long_str (&buf.pk, 100);
        //  Whole, cut after the head, and cut inside the body.
        size_t sizes [] = { buf.sbuf.size, head, head + 5 };
        for (size_t k = 0; k < 3; k++) {
            char *copy = malloc (sizes [k]);
            ck_assert_ptr_nonnull (copy);
            memcpy (copy, buf.sbuf.data, sizes [k]);
            int got_type = -1;
            uint64_t got_cid = 12345;
            tri_msg_peek (copy, sizes [k], &got_type, &got_cid);
            free (copy);
            ck_assert_int_eq (got_type, type);
            ck_assert (got_cid == s_cids [c]);
        }
        s_buf_destroy (&buf);
    }
    //  Any encoding that decodes as an unsigned integer is read: wider
    //  than needed, or signed and >= 0.
    static const struct {
        const char *bytes;
        size_t size;
        int type;
        uint64_t cid;
    } widths [] = {
        { "\x93\xcc\x06\xcd\x01\x00\xc0", 7, TRI_RETURN, 256 },
        { "\x93\xd0\x06\xd0\x7f\xc0", 6, TRI_RETURN, 127 },
        { "\x93\xd1\x00\x02\xd2\x00\x01\x00\x00\xc0", 10, TRI_CMD, 65536 },
        { "\x93\xd3\x00\x00\x00\x00\x00\x00\x00\x09"
          "\xd3\x7f\xff\xff\xff\xff\xff\xff\xff\xc0", 20, TRI_ACK, INT64_MAX }
    };
    for (size_t i = 0; i < sizeof widths / sizeof widths [0]; i++) {
        int type = -1;
        uint64_t cid = 0;
        tri_msg_peek (widths [i].bytes, widths [i].size, &type, &cid);
        ck_assert_msg (type == widths [i].type && cid == widths [i].cid,
                       "width case %zu: type %d cid %llu", i, type, (unsigned long long) cid);
        //  And the decoder agrees.
        tri_msg_t *msg = s_decode_ok (widths [i].bytes, widths [i].size);
        ck_assert_int_eq (msg->type, type);
        ck_assert (msg->cid == cid);
        tri_msg_destroy (&msg);
    }
}
END_TEST

START_TEST (test_peek_gives_zero_for_what_it_cannot_read)
{
    static const struct {
        const char *bytes;
        size_t size;
        int type;
        uint64_t cid;
    } cases [] = {
        { "", 0, 0, 0 },
        { "\x93", 1, 0, 0 },
        { "\x93\x06", 2, 0, 0 },                        //  no cid
        { "\x93\x06\xcd\x01", 4, 0, 0 },                //  cid cut
        { "\x93\xcc", 2, 0, 0 },                        //  type cut
        { "\x92\x06\x01", 3, 0, 0 },                    //  not 3 items
        { "\xdc\x00\x03\x06\x01\xc0", 6, 0, 0 },          //  not a fixarray
        { "\xc0\x06\x01", 3, 0, 0 },                    //  not an array
        { "\x93\xff\x01\xc0", 4, 0, 0 },                //  negative type
        { "\x93\x06\xff\xc0", 4, 0, 0 },                //  negative cid
        { "\x93\x06\xd0\x80\xc0", 5, 0, 0 },            //  negative int8 cid
        { "\x93\x06\xd3\xff\x00\x00\x00\x00\x00\x00\x01\xc0", 12, 0, 0 },
        { "\x93\x06\xa1" "1" "\xc0", 5, 0, 0 },          //  cid a string
        { "\x93\xd0\xfa\x01\xc0", 5, 0, 0 },            //  type -6
        { "\x93\x00\x2a\xc1", 4, 0, 42 },               //  type 0: cid still read
        { "\x93\x0d\x2b\xc1", 4, 0, 43 },               //  type 13: cid still read
        { "\x93\xcf\xff\xff\xff\xff\xff\xff\xff\xff\x07\xc0", 12, 0, 7 }
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char *copy = malloc (cases [i].size? cases [i].size: 1);
        ck_assert_ptr_nonnull (copy);
        memcpy (copy, cases [i].bytes, cases [i].size);
        int type = -1;
        uint64_t cid = 12345;
        tri_msg_peek (copy, cases [i].size, &type, &cid);
        free (copy);
        ck_assert_msg (type == cases [i].type && cid == cases [i].cid,
                       "case %zu: type %d cid %llu", i, type, (unsigned long long) cid);
    }
}
END_TEST

START_TEST (test_a_refused_frame_reports_the_cid_of_its_head)
{
    static const tri_limits_t tight = { 64, 4 };
    struct {
        const char *bytes;
        size_t size;
        int rc;
        uint64_t cid;
    } cases [] = {
        { "\x93\x06\x2a\xc1", 4, TR_EPROTO, 42 },        //  0xc1 in the body
        { "\x93\x09\x2a", 3, TR_EPROTO, 42 },            //  no body
        { "\x93\x07\xcd\x01\x2c\xa5" "ab", 8, TR_EPROTO, 300 },
        { "\x93\x06\x2a\x91\x91\x91\x91\xc0", 8, TR_ETOOBIG, 42 },
        { "\x93\x06\x2a\xc0\xc0", 5, TR_EPROTO, 42 },    //  trailing byte
        { "\x93\x06\xff\xc1", 4, TR_EPROTO, 0 },         //  negative cid
        { "\x92\x06\x2a", 3, TR_EPROTO, 0 },             //  two items
        { "\x93\x06\x2a\x91\x91\x91\xc0", 7, 0, 42 }      //  4 deep: fine
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        tri_msg_t *msg = NULL;
        uint64_t cid = 12345;
        char why [256] = "";
        int rc = s_decode (cases [i].bytes, cases [i].size, &tight, &msg, &cid, why, sizeof why);
        ck_assert_msg (rc == cases [i].rc && cid == cases [i].cid,
                       "case %zu: %s (%s) cid %llu", i, tr_errname (rc), why,
                       (unsigned long long) cid);
        tri_msg_destroy (&msg);
    }
    //  Too big for the size limit: the head is still read.
    s_buf_t buf;
    s_buf_init (&buf);
    tri_msg_begin (&buf.pk, TRI_CMD, 77);
    s_pack_long_str (&buf.pk, 100);
    tri_msg_t *msg = NULL;
    uint64_t cid = 0;
    ck_assert_tr_rc (s_decode (buf.sbuf.data, buf.sbuf.size, &tight, &msg, &cid, NULL, 0),
                     TR_ETOOBIG);
    ck_assert (cid == 77);
    s_buf_destroy (&buf);
}
END_TEST

//  ==========================================================================
//  tri_msg_decode

START_TEST (test_every_format_round_trips_as_a_frame_body)
{
    s_buf_t body, frame;
    s_sample_frame (_i, &body, &frame);
    tri_msg_t *msg = s_decode_ok (frame.sbuf.data, frame.sbuf.size);
    ck_assert_int_eq (msg->type, TRI_RETURN);
    ck_assert (msg->cid == 7);

    msgpack_unpacked want;
    msgpack_unpacked_init (&want);
    size_t offset = 0;
    ck_assert_int_eq (msgpack_unpack_next (&want, body.sbuf.data, body.sbuf.size, &offset),
                      MSGPACK_UNPACK_SUCCESS);
    ck_assert_msg (msgpack_object_equal (want.data, msg->body),
                   "%s did not round trip", s_samples [_i].name);
    s_assert_cstrings (&msg->body);
    msgpack_unpacked_destroy (&want);
    tri_msg_destroy (&msg);
    ck_assert_ptr_null (msg);
    s_buf_destroy (&body);
    s_buf_destroy (&frame);
}
END_TEST

START_TEST (test_every_message_type_and_cid_width_round_trips)
{
    for (int type = 1; type <= TRI_TYPE_MAX; type++)
    for (size_t c = 0; c < S_CIDS; c++) {
        s_buf_t buf;
        s_buf_init (&buf);
        tri_msg_begin (&buf.pk, (tri_type_t) type, s_cids [c]);
        msgpack_pack_array (&buf.pk, 2);
        s_pack_str (&buf.pk, tri_msg_type_name (type));
        msgpack_pack_int (&buf.pk, type);
        tri_msg_t *msg = s_decode_ok (buf.sbuf.data, buf.sbuf.size);
        ck_assert_int_eq (msg->type, type);
        ck_assert (msg->cid == s_cids [c]);
        const char *name = NULL;
        int echoed = 0;
        ck_assert_tr_ok (tr_unpack (&msg->body, "[s i]", &name, &echoed));
        ck_assert_str_eq (name, tri_msg_type_name (type));
        ck_assert_int_eq (echoed, type);
        tri_msg_destroy (&msg);
        s_buf_destroy (&buf);
    }
}
END_TEST

START_TEST (test_message_type_names_cover_the_table)
{
    static const char *names [] = {
        NULL, "hello", "cmd", "started", "yield", "stop", "return",
        "error", "cancel", "ack", "ping", "pong", "credit"
    };
    for (int type = 1; type <= TRI_TYPE_MAX; type++)
        ck_assert_str_eq (tri_msg_type_name (type), names [type]);
    ck_assert_int_eq (TRI_HELLO, 1);
    ck_assert_int_eq (TRI_CREDIT, 12);
    ck_assert_str_eq (tri_msg_type_name (0), "unknown");
    ck_assert_str_eq (tri_msg_type_name (13), "unknown");
    ck_assert_str_eq (tri_msg_type_name (-1), "unknown");
    ck_assert_str_eq (tri_msg_type_name (INT32_MAX), "unknown");
}
END_TEST

//  Decode a frame that must fail with EPROTO; returns the reported cid.
static uint64_t
s_decode_refused (const void *data, size_t size, const char *reason)
{
    tri_msg_t sentinel;
    tri_msg_t *msg = &sentinel;             //  must be set to NULL
    uint64_t cid = 12345;
    char why [256] = "";
    int rc = s_decode (data, size, &s_defaults, &msg, &cid, why, sizeof why);
    ck_assert_msg (rc == TR_EPROTO, "%s: got %s (%s)", reason, tr_errname (rc), why);
    ck_assert_ptr_null (msg);
    ck_assert_msg (strstr (why, reason), "reason '%s' lacks '%s'", why, reason);
    return cid;
}

START_TEST (test_unknown_message_types_are_refused_with_the_cid)
{
    //  [0, 42, nil] and [13, 43, nil]
    ck_assert (s_decode_refused ("\x93\x00\x2a\xc0", 4, "unknown message type 0") == 42);
    ck_assert (s_decode_refused ("\x93\x0d\x2b\xc0", 4, "unknown message type 13") == 43);
    //  [255, 2^40, nil]
    s_buf_t buf;
    s_buf_init (&buf);
    msgpack_pack_array (&buf.pk, 3);
    msgpack_pack_int (&buf.pk, 255);
    msgpack_pack_uint64 (&buf.pk, 1ULL << 40);
    msgpack_pack_nil (&buf.pk);
    ck_assert (s_decode_refused (buf.sbuf.data, buf.sbuf.size, "unknown message type 255")
               == 1ULL << 40);
    s_buf_destroy (&buf);
    //  [-1, 44, nil], ["cmd", 45, nil], [1.0, 46, nil]
    ck_assert (s_decode_refused ("\x93\xff\x2c\xc0", 4, "unknown message type") == 44);
    ck_assert (s_decode_refused ("\x93\xa3" "cmd" "\x2d\xc0", 7, "not an integer") == 45);
    ck_assert (s_decode_refused ("\x93\xca\x3f\x80\x00\x00\x2e\xc0", 8, "not an integer") == 46);
}
END_TEST

//  The refusal names the type as it was sent, negative or past 2^63.
START_TEST (test_an_out_of_range_message_type_is_reported_as_sent)
{
    //  [-1, 47, nil], [-200, 48, nil]
    ck_assert (s_decode_refused ("\x93\xff\x2f\xc0", 4, "unknown message type -1") == 47);
    ck_assert (s_decode_refused ("\x93\xd1\xff\x38\x30\xc0", 6, "unknown message type -200")
               == 48);
    //  [2^64-1, 49, nil]
    ck_assert (s_decode_refused ("\x93\xcf\xff\xff\xff\xff\xff\xff\xff\xff\x31\xc0", 12,
                                 "unknown message type 18446744073709551615") == 49);
}
END_TEST

START_TEST (test_frames_that_are_not_three_item_arrays_are_refused)
{
    static const struct {
        const char *bytes;
        size_t size;
    } cases [] = {
        { "\xc0", 1 },                                  //  nil
        { "\x06", 1 },                                  //  6
        { "\xa5" "hello", 6 },                          //  "hello"
        { "\x83\x01\x06\x02\x01\x03\xc0", 7 },          //  {1: 6, 2: 1, 3: nil}
        { "\x90", 1 },                                  //  []
        { "\x91\x06", 2 },                              //  [6]
        { "\x92\x06\x01", 3 },                          //  [6, 1]
        { "\x94\x06\x01\xc0\xc0", 5 },                  //  [6, 1, nil, nil]
        { "\xdc\x00\x03\x06\x01\xc0", 6 }               //  array16 of 3: accepted below
    };
    for (size_t i = 0; i + 1 < sizeof cases / sizeof cases [0]; i++)
        ck_assert (s_decode_refused (cases [i].bytes, cases [i].size,
                                     "not an array [type, cid, body]") == 0);
    //  The array's encoding does not matter, only its length.
    size_t last = sizeof cases / sizeof cases [0] - 1;
    tri_msg_t *msg = s_decode_ok (cases [last].bytes, cases [last].size);
    ck_assert_int_eq (msg->type, TRI_RETURN);
    tri_msg_destroy (&msg);
}
END_TEST

START_TEST (test_cids_that_are_not_unsigned_integers_are_refused)
{
    //  [6, -1, nil], [6, -2^40, nil], [6, "1", nil], [6, nil, nil], [6, 1.0, nil]
    ck_assert (s_decode_refused ("\x93\x06\xff\xc0", 4, "cid is not an unsigned integer") == 0);
    ck_assert (s_decode_refused ("\x93\x06\xd3\xff\xff\xff\x00\x00\x00\x00\x00\xc0", 12,
                                 "cid is not an unsigned integer") == 0);
    ck_assert (s_decode_refused ("\x93\x06\xa1" "1" "\xc0", 5, "cid is not an unsigned integer") == 0);
    ck_assert (s_decode_refused ("\x93\x06\xc0\xc0", 4, "cid is not an unsigned integer") == 0);
    ck_assert (s_decode_refused ("\x93\x06\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00\xc0", 12,
                                 "cid is not an unsigned integer") == 0);
}
END_TEST

//  Counts the times zmq freed a frame's buffer.
static void
s_count_free (void *data, void *hint)
{
    free (data);
    (*(int *) hint)++;
}

//  A frame whose buffer zmq gives back through s_count_free.
static void
s_counted_frame (zmq_msg_t *frame, const void *data, size_t size, int *frees)
{
    void *copy = malloc (size);
    ck_assert_ptr_nonnull (copy);
    memcpy (copy, data, size);
    ck_assert_int_eq (zmq_msg_init_data (frame, copy, size, s_count_free, frees), 0);
}

START_TEST (test_decode_takes_the_frame_on_success_and_on_failure)
{
    int frees = 0;
    zmq_msg_t frame;
    tri_msg_t *msg = NULL;
    uint64_t cid = 0;
    char why [256];
    //  [return, 9, "payload"]: kept until the message is destroyed.
    s_counted_frame (&frame, "\x93\x06\x09\xa7payload", 11, &frees);
    ck_assert_tr_ok (tri_msg_decode (&frame, &s_defaults, &msg, &cid, why, sizeof why));
    ck_assert_int_eq (frees, 0);
    ck_assert_str_eq (msg->body.via.str.ptr, "payload");
    tri_msg_destroy (&msg);
    ck_assert_int_eq (frees, 1);
    tri_msg_destroy (&msg);                     //  NULL: nothing happens
    ck_assert_int_eq (frees, 1);

    //  Refused by the check, and refused after decoding: freed once.
    s_counted_frame (&frame, "\x93\x06\x09\xc1", 4, &frees);
    ck_assert_tr_rc (tri_msg_decode (&frame, &s_defaults, &msg, &cid, why, sizeof why),
                     TR_EPROTO);
    ck_assert_int_eq (frees, 2);
    s_counted_frame (&frame, "\x93\x00\x09\xc0", 4, &frees);
    ck_assert_tr_rc (tri_msg_decode (&frame, &s_defaults, &msg, &cid, why, sizeof why),
                     TR_EPROTO);
    ck_assert_int_eq (frees, 3);
    ck_assert_ptr_null (msg);
}
END_TEST

START_TEST (test_decoded_strings_are_nul_terminated)
{
    //  On the wire every string is followed by the next header, not a NUL.
    s_buf_t buf;
    s_buf_init (&buf);
    tri_msg_begin (&buf.pk, TRI_CMD, 4);
    msgpack_pack_array (&buf.pk, 2);
    s_pack_str (&buf.pk, "fn");
    msgpack_pack_array (&buf.pk, 5);
    s_pack_str (&buf.pk, "abc");
    msgpack_pack_map (&buf.pk, 2);
    s_pack_str (&buf.pk, "key");
    s_pack_str (&buf.pk, "value");
    s_pack_str (&buf.pk, "");
    s_pack_long_str (&buf.pk, 300);
    s_pack_long_str (&buf.pk, 40);
    s_pack_str (&buf.pk, "");
    s_pack_str (&buf.pk, "z");
    tri_msg_t *msg = s_decode_ok (buf.sbuf.data, buf.sbuf.size);
    ck_assert_int_eq (s_assert_cstrings (&msg->body), 9);
    const char *fn = NULL;
    const msgpack_object *args = NULL;
    tr_kind_t kind;
    ck_assert_tr_ok (tri_msg_read_cmd (msg, &fn, &args, &kind, NULL, 0));
    ck_assert_int_eq (kind, TR_CALL);
    ck_assert_str_eq (fn, "fn");
    ck_assert_str_eq (args->via.array.ptr [0].via.str.ptr, "abc");
    ck_assert_str_eq (args->via.array.ptr [1].via.map.ptr [0].val.via.str.ptr, "value");
    ck_assert_uint_eq (strlen (args->via.array.ptr [2].via.str.ptr), 40);
    ck_assert_str_eq (args->via.array.ptr [4].via.str.ptr, "z");
    tri_msg_destroy (&msg);
    s_buf_destroy (&buf);
}
END_TEST

START_TEST (test_a_value_outlives_the_message_it_came_from)
{
    for (int small = 0; small < 2; small++) {
        //  A small frame lives inside the zmq_msg_t, a large one outside.
        s_buf_t buf;
        s_buf_init (&buf);
        tri_msg_begin (&buf.pk, TRI_RETURN, 8);
        msgpack_pack_array (&buf.pk, 3);
        s_pack_str (&buf.pk, "kept");
        s_pack_bin (&buf.pk, small? 4: 2000);
        s_pack_ext (&buf.pk, small? 2: 500, 7);
        ck_assert (small? buf.sbuf.size < 30: buf.sbuf.size > 2500);

        int frees = 0;
        zmq_msg_t frame;
        s_counted_frame (&frame, buf.sbuf.data, buf.sbuf.size, &frees);
        tri_msg_t *msg = NULL;
        uint64_t cid = 0;
        ck_assert_tr_ok (tri_msg_decode (&frame, &s_defaults, &msg, &cid, NULL, 0));
        tr_value_t *value = tri_msg_to_value (&msg);
        ck_assert_ptr_null (msg);
        ck_assert_ptr_nonnull (value);
        //  Overwrite what was sent: the value must not depend on it.
        memset (buf.sbuf.data, 0xc1, buf.sbuf.size);
        s_buf_destroy (&buf);
        ck_assert_int_eq (frees, 0);

        const char *text = NULL;
        const void *bin = NULL;
        size_t bin_size = 0;
        const msgpack_object *ext = NULL;
        ck_assert_tr_ok (tr_unpack (tr_value_object (value), "[s y o]",
                                    &text, &bin, &bin_size, &ext));
        ck_assert_str_eq (text, "kept");
        ck_assert_uint_eq (bin_size, small? 4: 2000);
        for (size_t i = 0; i < bin_size; i++)
            ck_assert_int_eq (((const uint8_t *) bin) [i], (uint8_t) (i * 7));
        ck_assert_int_eq (ext->type, MSGPACK_OBJECT_EXT);
        ck_assert_int_eq (ext->via.ext.type, 7);
        ck_assert_uint_eq (ext->via.ext.size, small? 2: 500);
        ck_assert_int_eq ((uint8_t) ext->via.ext.ptr [1], 4);
        tr_value_destroy (&value);
        ck_assert_ptr_null (value);
        ck_assert_int_eq (frees, 1);
    }
}
END_TEST

//  ==========================================================================
//  hello

//  A hello frame with the given body, decoded.
static tri_msg_t *
s_hello_frame (tr_args_t *body)
{
    return s_decode_with_body (TRI_HELLO, 0, body);
}

START_TEST (test_hello_round_trips)
{
    s_buf_t buf;
    s_buf_init (&buf);
    tri_hello_t sent = { TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR, "worker@0b7e-41",
                         "ipc:///tmp/troupe-1-2.ipc", 123456 };
    tri_msg_begin (&buf.pk, TRI_HELLO, 0);
    tri_msg_pack_hello (&buf.pk, &sent);
    tri_msg_t *msg = s_decode_ok (buf.sbuf.data, buf.sbuf.size);
    ck_assert_int_eq (msg->type, TRI_HELLO);
    ck_assert (msg->cid == 0);
    tri_hello_t got;
    memset (&got, 0xff, sizeof got);
    char why [256] = "";
    ck_assert_tr_ok (tri_msg_read_hello (msg, &got, why, sizeof why));
    ck_assert_int_eq (got.major, TR_PROTOCOL_MAJOR);
    ck_assert_int_eq (got.minor, TR_PROTOCOL_MINOR);
    ck_assert_str_eq (got.uid, sent.uid);
    ck_assert_str_eq (got.endpoint, sent.endpoint);
    ck_assert (got.pid == 123456);
    //  The body is the documented map, nothing more.
    ck_assert_int_eq (msg->body.type, MSGPACK_OBJECT_MAP);
    ck_assert_uint_eq (msg->body.via.map.size, 4);
    tri_msg_destroy (&msg);

    //  Another version, and no endpoint (packed as "").
    msgpack_sbuffer_clear (&buf.sbuf);
    tri_hello_t other = { 7, 65535, "x@y", NULL, 1 };
    tri_msg_begin (&buf.pk, TRI_HELLO, 0);
    tri_msg_pack_hello (&buf.pk, &other);
    msg = s_decode_ok (buf.sbuf.data, buf.sbuf.size);
    ck_assert_tr_ok (tri_msg_read_hello (msg, &got, why, sizeof why));
    ck_assert_int_eq (got.major, 7);
    ck_assert_int_eq (got.minor, 65535);
    ck_assert_str_eq (got.endpoint, "");
    tri_msg_destroy (&msg);
    s_buf_destroy (&buf);
}
END_TEST

START_TEST (test_hello_without_pid_or_endpoint_is_accepted)
{
    tri_msg_t *msg = s_hello_frame (tr_pack ("{s:[ii] s:s}", "v", 1, 0, "uid", "peer@1"));
    tri_hello_t got;
    ck_assert_tr_ok (tri_msg_read_hello (msg, &got, NULL, 0));
    ck_assert_str_eq (got.uid, "peer@1");
    ck_assert (got.pid == 0);
    ck_assert_str_eq (got.endpoint, "");
    tri_msg_destroy (&msg);

    //  Wrongly typed optional fields read as absent.
    msg = s_hello_frame (tr_pack ("{s:[ii] s:s s:s s:i}", "v", 1, 0, "uid", "peer@1",
                                  "pid", "12", "ep", 5));
    ck_assert_tr_ok (tri_msg_read_hello (msg, &got, NULL, 0));
    ck_assert (got.pid == 0);
    ck_assert_str_eq (got.endpoint, "");
    tri_msg_destroy (&msg);
}
END_TEST

START_TEST (test_hello_without_version_or_uid_is_refused_with_a_reason)
{
    char long_uid [300];
    memset (long_uid, 'u', sizeof long_uid - 1);
    long_uid [sizeof long_uid - 1] = '\0';
    struct {
        tr_args_t *body;
        const char *reason;
    } cases [] = {
        { tr_pack ("n"), "not a map" },
        { tr_pack ("[s s]", "v", "uid"), "not a map" },
        { tr_pack ("{}"), "no version" },
        { tr_pack ("{s:s s:i}", "uid", "a@b", "pid", 1), "no version" },
        { tr_pack ("{s:i s:s}", "v", 1, "uid", "a@b"), "no version" },
        { tr_pack ("{s:[i] s:s}", "v", 1, "uid", "a@b"), "no version" },
        { tr_pack ("{s:[ii] s:s}", "v", -1, 0, "uid", "a@b"), "no version" },
        { tr_pack ("{s:[is] s:s}", "v", 1, "0", "uid", "a@b"), "no version" },
        { tr_pack ("{s:[ii] s:s}", "v", 65536, 0, "uid", "a@b"), "no version" },
        { tr_pack ("{s:[ii]}", "v", 1, 0), "no uid" },
        { tr_pack ("{s:[ii] s:i}", "v", 1, 0, "uid", 5), "no uid" },
        { tr_pack ("{s:[ii] s:s}", "v", 1, 0, "uid", ""), "no uid" },
        { tr_pack ("{s:[ii] s:s}", "v", 1, 0, "uid", long_uid), "no uid" },
        { tr_pack ("{s:[ii] s:s#}", "v", 1, 0, "uid", "a\0b", (size_t) 3), "NUL" },
        { tr_pack ("{s:[ii] s:s}", "V", 1, 0, "UID", "a@b"), "no version" }
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        tri_msg_t *msg = s_hello_frame (cases [i].body);
        tri_hello_t got;
        char why [256] = "";
        int rc = tri_msg_read_hello (msg, &got, why, sizeof why);
        ck_assert_msg (rc == TR_EPROTO, "case %zu: %s", i, tr_errname (rc));
        ck_assert_msg (strstr (why, cases [i].reason), "case %zu: reason '%s' lacks '%s'",
                       i, why, cases [i].reason);
        tri_msg_destroy (&msg);
    }
    //  A uid of 255 bytes (the longest routing id) is fine.
    long_uid [255] = '\0';
    tri_msg_t *msg = s_hello_frame (tr_pack ("{s:[ii] s:s}", "v", 1, 0, "uid", long_uid));
    tri_hello_t got;
    ck_assert_tr_ok (tri_msg_read_hello (msg, &got, NULL, 0));
    ck_assert_uint_eq (strlen (got.uid), 255);
    tri_msg_destroy (&msg);
}
END_TEST

//  ==========================================================================
//  cmd

START_TEST (test_cmd_without_args_carries_an_empty_array)
{
    s_buf_t buf;
    s_buf_init (&buf);
    tri_msg_pack_cmd (&buf.sbuf, 77, "echo", NULL);
    tri_msg_t *msg = s_decode_ok (buf.sbuf.data, buf.sbuf.size);
    ck_assert_int_eq (msg->type, TRI_CMD);
    ck_assert (msg->cid == 77);
    const char *fn = NULL;
    const msgpack_object *args = NULL;
    tr_kind_t kind;
    char why [256] = "";
    ck_assert_tr_ok (tri_msg_read_cmd (msg, &fn, &args, &kind, why, sizeof why));
    ck_assert_int_eq (kind, TR_CALL);
    ck_assert_str_eq (fn, "echo");
    ck_assert_int_eq (args->type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq (args->via.array.size, 0);
    tri_msg_destroy (&msg);

    //  An args object that holds nothing is the same as NULL.
    tr_args_t *empty = calloc (1, sizeof *empty);
    ck_assert_ptr_nonnull (empty);
    msgpack_sbuffer_init (&empty->sbuf);
    msgpack_sbuffer_clear (&buf.sbuf);
    tri_msg_pack_cmd (&buf.sbuf, 78, "nil", empty);
    msg = s_decode_ok (buf.sbuf.data, buf.sbuf.size);
    ck_assert_tr_ok (tri_msg_read_cmd (msg, &fn, &args, &kind, why, sizeof why));
    ck_assert_str_eq (fn, "nil");
    ck_assert_int_eq (args->type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq (args->via.array.size, 0);
    tri_msg_destroy (&msg);
    tr_args_destroy (&empty);
    s_buf_destroy (&buf);
}
END_TEST

//  The cmd frame written in place is byte for byte what msgpack-c makes:
//  every cid width, names at every str header width, each kind, with and
//  without arguments. The reference is msgpack-c's own packer, called here:
//  troupe's packer functions are written with the in-place encoder.
static void
s_packer_head (msgpack_packer *pk, tri_type_t type, uint64_t cid)
{
    msgpack_pack_array (pk, 3);
    msgpack_pack_uint8 (pk, (uint8_t) type);
    msgpack_pack_uint64 (pk, cid);
}

static void
s_packer_cmd (msgpack_packer *pk, uint64_t cid, const char *fn, const tr_args_t *args,
              tr_kind_t kind)
{
    s_packer_head (pk, TRI_CMD, cid);
    msgpack_pack_array (pk, kind == TR_CALL? 2: 3);
    msgpack_pack_str (pk, strlen (fn));
    msgpack_pack_str_body (pk, fn, strlen (fn));
    if (kind != TR_CALL)
        msgpack_pack_uint8 (pk, (uint8_t) kind);
    if (args && tr_args_size (args))
        pk->callback (pk->data, tr_args_data (args), tr_args_size (args));
    else
        msgpack_pack_array (pk, 0);
}

START_TEST (test_cmd_written_in_place_is_what_the_packer_makes)
{
    const uint64_t cids [] = { 0, 1, 127, 128, 255, 256, 65535, 65536, 0xffffffffu,
                               0x100000000ull, UINT64_MAX };
    const size_t names [] = { 1, 4, 31, 32, 255, 256, 65535, 65536 };
    const tr_kind_t kinds [] = { TR_CALL, TR_CONTEXT, TR_STREAM };
    tr_args_t *empty = calloc (1, sizeof *empty);
    ck_assert_ptr_nonnull (empty);
    tr_args_t *argses [] = { NULL, empty, tr_pack ("[i s]", 7, "x"), tr_pack ("n") };
    ck_assert_ptr_nonnull (argses [2]);
    char *fn = malloc (65537);
    ck_assert_ptr_nonnull (fn);
    int cases = 0;
    for (size_t c = 0; c < sizeof cids / sizeof cids [0]; c++)
    for (size_t n = 0; n < sizeof names / sizeof names [0]; n++)
    for (size_t k = 0; k < sizeof kinds / sizeof kinds [0]; k++)
    for (size_t a = 0; a < sizeof argses / sizeof argses [0]; a++) {
        memset (fn, 'f', names [n]);
        fn [names [n]] = '\0';
        tri_frame_t want, got;
        tri_frame_init (&want);
        s_packer_cmd (&want.pk, cids [c], fn, argses [a], kinds [k]);
        tri_frame_cmd (&got, cids [c], fn, argses [a], kinds [k]);
        ck_assert (!want.failed && !got.failed);
        ck_assert_msg (got.size == want.size && memcmp (got.data, want.data, got.size) == 0,
                       "cid %llu, name of %zu, kind %d, args %zu: %zu bytes against %zu",
                       (unsigned long long) cids [c], names [n], kinds [k], a, got.size,
                       want.size);
        tri_frame_fini (&want);
        tri_frame_fini (&got);
        cases++;
    }
    ck_assert_int_eq (cases, 11 * 8 * 3 * 4);
    //  A frame's head written in place is the packer's too.
    for (size_t c = 0; c < sizeof cids / sizeof cids [0]; c++) {
        tri_frame_t want, got;
        tri_frame_init (&want);
        s_packer_head (&want.pk, TRI_RETURN, cids [c]);
        tri_frame_begin (&got, TRI_RETURN, cids [c]);
        ck_assert (got.size == want.size && memcmp (got.data, want.data, got.size) == 0);
        tri_frame_fini (&want);
        tri_frame_fini (&got);
    }
    free (fn);
    free (empty);
    tr_args_destroy (&argses [2]);
    tr_args_destroy (&argses [3]);
}
END_TEST

//  A frame troupe builds is judged on sending by its head's construction
//  and its arguments' own check; the verdict must be the one a receiver
//  reaches reading the whole frame, at every depth around the limit and
//  at every size around it, for a cmd (arguments at level 2) and a
//  return or started (the value at level 1).
START_TEST (test_sending_check_agrees_with_the_receivers_at_the_limits)
{
    const int max_depths [] = { 4, 16, 32, 64 };
    for (size_t m = 0; m < sizeof max_depths / sizeof max_depths [0]; m++)
    for (int depth = 0; depth <= 34; depth++) {
        char fmt [96] = "";
        for (int i = 0; i < depth; i++)
            strcat (fmt, "[");
        strcat (fmt, "i");
        for (int i = 0; i < depth; i++)
            strcat (fmt, "]");
        tr_args_t *args = tr_pack (fmt, 1);
        ck_assert_ptr_nonnull (args);
        tri_limits_t limits = { 1 << 20, max_depths [m] };
        for (int twice = 0; twice < 2; twice++) {
            //  (The second time the arguments' own check is remembered.)
            tri_frame_t cmd;
            tri_frame_cmd (&cmd, 9, "echo", args, TR_CALL);
            int sent = tri_frame_check_args (&cmd, args, 2, &limits, NULL, 0);
            int read = tri_msg_check (cmd.data, cmd.size, &limits, NULL, 0);
            ck_assert_msg (sent == read, "cmd, depth %d of %d: sending says %d, reading %d",
                           depth, max_depths [m], sent, read);
            tri_frame_fini (&cmd);
            tri_frame_t ret;
            tri_frame_begin (&ret, TRI_RETURN, 9);
            tri_frame_write (&ret, tr_args_data (args), tr_args_size (args));
            sent = tri_frame_check_args (&ret, args, 1, &limits, NULL, 0);
            read = tri_msg_check (ret.data, ret.size, &limits, NULL, 0);
            ck_assert_msg (sent == read, "return, depth %d of %d: sending says %d, reading %d",
                           depth, max_depths [m], sent, read);
            tri_frame_fini (&ret);
        }
        tr_args_destroy (&args);
    }
    //  Sizes: a string value whose frame is just under, at and over the limit.
    for (size_t len = 90; len < 110; len++) {
        char *text = malloc (len + 1);
        ck_assert_ptr_nonnull (text);
        memset (text, 't', len);
        text [len] = '\0';
        tr_args_t *args = tr_pack ("s", text);
        tri_limits_t limits = { 100, 32 };
        tri_frame_t cmd;
        tri_frame_cmd (&cmd, 300, "echo", args, TR_CALL);
        int sent = tri_frame_check_args (&cmd, args, 2, &limits, NULL, 0);
        int read = tri_msg_check (cmd.data, cmd.size, &limits, NULL, 0);
        ck_assert_msg (sent == read, "cmd of %zu bytes: sending says %d, reading %d",
                       cmd.size, sent, read);
        tri_frame_fini (&cmd);
        //  Without arguments only the size can be wrong.
        tri_frame_cmd (&cmd, 300, text, NULL, TR_CALL);
        sent = tri_frame_check_args (&cmd, NULL, 2, &limits, NULL, 0);
        read = tri_msg_check (cmd.data, cmd.size, &limits, NULL, 0);
        ck_assert_msg (sent == read, "cmd of %zu bytes, no args: sending says %d, reading %d",
                       cmd.size, sent, read);
        tri_frame_fini (&cmd);
        tr_args_destroy (&args);
        free (text);
    }
}
END_TEST

START_TEST (test_cmd_with_packed_args_round_trips)
{
    s_buf_t buf;
    s_buf_init (&buf);
    tr_args_t *args = tr_pack ("[i s {s:[b n f]} y]", -3, "text", "inner", 1, 0.5,
                               "\x00\x01\x02", (size_t) 3);
    ck_assert_ptr_nonnull (args);
    tri_msg_pack_cmd (&buf.sbuf, UINT64_MAX, "add", args);
    tri_msg_t *msg = s_decode_ok (buf.sbuf.data, buf.sbuf.size);
    ck_assert (msg->cid == UINT64_MAX);
    const char *fn = NULL;
    tr_kind_t kind;
    const msgpack_object *got = NULL;
    ck_assert_tr_ok (tri_msg_read_cmd (msg, &fn, &got, &kind, NULL, 0));
    ck_assert_str_eq (fn, "add");

    tr_value_t *want = tr_value_decode (tr_args_data (args), tr_args_size (args));
    ck_assert_ptr_nonnull (want);
    ck_assert (msgpack_object_equal (*tr_value_object (want), *got));
    int i = 0;
    const char *s = NULL;
    bool b = false;
    double f = 0;
    const void *y = NULL;
    size_t y_size = 0;
    ck_assert_tr_ok (tr_unpack (got, "[i s {s:[b n f]} y]", &i, &s, "inner", &b, &f,
                                &y, &y_size));
    ck_assert_int_eq (i, -3);
    ck_assert_str_eq (s, "text");
    ck_assert (b);
    ck_assert (f == 0.5);
    ck_assert_uint_eq (y_size, 3);
    ck_assert_mem_eq (y, "\x00\x01\x02", 3);
    tr_value_destroy (&want);
    tr_args_destroy (&args);

    //  A scalar is carried as it is.
    tri_msg_destroy (&msg);
    msgpack_sbuffer_clear (&buf.sbuf);
    args = tr_pack ("i", 42);
    tri_msg_pack_cmd (&buf.sbuf, 2, "sleep", args);
    msg = s_decode_ok (buf.sbuf.data, buf.sbuf.size);
    ck_assert_tr_ok (tri_msg_read_cmd (msg, &fn, &got, &kind, NULL, 0));
    ck_assert_int_eq (got->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    ck_assert (got->via.u64 == 42);
    tri_msg_destroy (&msg);
    tr_args_destroy (&args);
    s_buf_destroy (&buf);
}
END_TEST

START_TEST (test_cmd_bodies_other_than_fn_and_args_are_refused)
{
    struct {
        tr_args_t *body;
        const char *reason;
    } cases [] = {
        { tr_pack ("n"), "not [fn, args]" },
        { tr_pack ("s", "echo"), "not [fn, args]" },
        { tr_pack ("[]"), "not [fn, args]" },
        { tr_pack ("[s]", "echo"), "not [fn, args]" },
        { tr_pack ("[s [] n]", "echo"), "not [fn, args]" },
        { tr_pack ("[i []]", 1), "not [fn, args]" },
        { tr_pack ("[y []]", "echo", (size_t) 4), "not [fn, args]" },
        { tr_pack ("{s:s s:[]}", "fn", "echo", "args"), "not [fn, args]" },
        { tr_pack ("[s# []]", "echo\0junk", (size_t) 9), "NUL" }
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        tri_msg_t *msg = s_decode_with_body (TRI_CMD, 1, cases [i].body);
        const char *fn = NULL;
        tr_kind_t kind;
        const msgpack_object *args = NULL;
        char why [256] = "";
        int rc = tri_msg_read_cmd (msg, &fn, &args, &kind, why, sizeof why);
        ck_assert_msg (rc == TR_EPROTO, "case %zu: %s", i, tr_errname (rc));
        ck_assert_msg (strstr (why, cases [i].reason), "case %zu: reason '%s' lacks '%s'",
                       i, why, cases [i].reason);
        tri_msg_destroy (&msg);
    }
}
END_TEST

START_TEST (test_cmd_says_its_kind_call_context_or_one_way_stream)
{
    struct {
        tr_args_t *body;
        int rc;
        tr_kind_t kind;
    } cases [] = {
        { tr_pack ("[s []]", "f"), 0, TR_CALL },
        { tr_pack ("[s i []]", "f", 1), 0, TR_CONTEXT },
        { tr_pack ("[s i []]", "f", 2), 0, TR_STREAM },
        { tr_pack ("[s i []]", "f", 0), TR_EPROTO, TR_CALL },
        { tr_pack ("[s i []]", "f", 3), TR_EPROTO, TR_CALL },
        { tr_pack ("[s i []]", "f", -1), TR_EPROTO, TR_CALL }
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        tri_msg_t *msg = s_decode_with_body (TRI_CMD, 1, cases [i].body);
        const char *fn = NULL;
        tr_kind_t kind = TR_CALL;
        const msgpack_object *args = NULL;
        char why [256] = "";
        int rc = tri_msg_read_cmd (msg, &fn, &args, &kind, why, sizeof why);
        ck_assert_msg (rc == cases [i].rc, "case %zu: %s", i, tr_errname (rc));
        if (rc == 0) {
            ck_assert_int_eq (kind, cases [i].kind);
            ck_assert_str_eq (fn, "f");
        }
        else
            ck_assert_msg (strstr (why, "[fn, args], [fn, 1, args] or [fn, 2, args]"),
                           "case %zu: '%s'", i, why);
        tri_msg_destroy (&msg);
    }
}
END_TEST

//  ==========================================================================
//  Fuzz: seeded mutations of valid frames through tri_msg_decode and the
//  readers of every body. Nothing may crash, and whatever passes the check
//  must be decodable by msgpack-c (the check is the only thing between a
//  peer and msgpack-c's allocations).

static uint64_t s_rng;

static uint64_t
s_rand (void)
{
    //  xorshift64*
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return s_rng * 0x2545F4914F6CDD1DULL;
}

static uint64_t
s_fuzz_iterations (void)
{
    const char *env = getenv ("TROUPE_FUZZ_ITERATIONS");
    return env && atoll (env) > 0? (uint64_t) atoll (env): 300000;
}

//  The seed corpus: one frame of each shape the runtime sends.
static size_t
s_seed_frames (s_buf_t *seeds, size_t max)
{
    size_t n = 0;
    tri_hello_t hello = { 1, 0, "seed@0000-1111", "tcp://127.0.0.1:5555", 4242 };
    s_buf_init (&seeds [n]);
    tri_msg_begin (&seeds [n].pk, TRI_HELLO, 0);
    tri_msg_pack_hello (&seeds [n].pk, &hello);
    n++;

    tr_args_t *args = tr_pack ("[i s {s:[b n f] s:{}} y []]", 1, "two", "three", 1, 4.5,
                               "four", "\x05\x06", (size_t) 2);
    ck_assert_ptr_nonnull (args);
    s_buf_init (&seeds [n]);
    tri_msg_pack_cmd (&seeds [n].sbuf, 300, "echo", args);
    tr_args_destroy (&args);
    n++;

    s_buf_init (&seeds [n]);
    tri_msg_begin (&seeds [n].pk, TRI_RETURN, 300);
    s_pack_sample (&seeds [n].pk, S_SAMPLES - 1);
    n++;

    tr_error_t *err = tri_error_new (TR_EREMOTE, "ValueError", "seed@1", "n=%d", 3);
    ck_assert_ptr_nonnull (err);
    tri_error_add_hop (err, "relay@2");
    s_buf_init (&seeds [n]);
    tri_msg_begin (&seeds [n].pk, TRI_ERROR, 301);
    tri_error_pack (&seeds [n].pk, err);
    tr_error_destroy (&err);
    n++;

    s_buf_init (&seeds [n]);
    tri_msg_begin (&seeds [n].pk, TRI_CANCEL, 0);
    msgpack_pack_nil (&seeds [n].pk);
    n++;

    s_buf_init (&seeds [n]);
    tri_msg_begin (&seeds [n].pk, TRI_RETURN, 70000);
    msgpack_pack_array (&seeds [n].pk, 4);
    s_pack_long_str (&seeds [n].pk, 40);
    s_pack_ext (&seeds [n].pk, 16, 3);
    msgpack_pack_fix_int64 (&seeds [n].pk, -1);
    msgpack_pack_float (&seeds [n].pk, 2.0f);
    n++;
    ck_assert_uint_le (n, max);
    return n;
}

static const uint8_t s_interesting [] = {
    0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xc7,
    0xca, 0xcb, 0xcf, 0xd3, 0xd4, 0xd8, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff
};

//  Mutate buf (size bytes, capacity cap) in place; returns the new size.
static size_t
s_mutate (uint8_t *buf, size_t size, size_t cap)
{
    int count = 1 + (int) (s_rand () % 4);
    for (int m = 0; m < count; m++) {
        size_t at = size? (size_t) (s_rand () % size): 0;
        switch (s_rand () % 7) {
            case 0:                     //  flip a bit
                if (size)
                    buf [at] ^= (uint8_t) (1u << (s_rand () % 8));
                break;
            case 1:                     //  an interesting byte
                if (size)
                    buf [at] = s_interesting [s_rand () % sizeof s_interesting];
                break;
            case 2:                     //  a random byte
                if (size)
                    buf [at] = (uint8_t) s_rand ();
                break;
            case 3:                     //  insert a byte
                if (size < cap) {
                    memmove (buf + at + 1, buf + at, size - at);
                    buf [at] = s_interesting [s_rand () % sizeof s_interesting];
                    size++;
                }
                break;
            case 4:                     //  delete a run
                if (size) {
                    size_t run = 1 + (size_t) (s_rand () % 4);
                    if (run > size - at)
                        run = size - at;
                    memmove (buf + at, buf + at + run, size - at - run);
                    size -= run;
                }
                break;
            case 5:                     //  truncate
                size = at;
                break;
            case 6: {                   //  duplicate a run at the end
                size_t run = 1 + (size_t) (s_rand () % 16);
                if (run > size - at)
                    run = size - at;
                if (size + run <= cap) {
                    memmove (buf + size, buf + at, run);
                    size += run;
                }
                break;
            }
        }
    }
    return size;
}

//  Use a decoded message the way the runtime may, whatever its type.
static void
s_exercise (tri_msg_t **msg_p)
{
    tri_msg_t *msg = *msg_p;
    s_assert_cstrings (&msg->body);
    tri_hello_t hello;
    char why [64];
    if (tri_msg_read_hello (msg, &hello, why, sizeof why) == 0) {
        ck_assert_ptr_nonnull (hello.uid);
        ck_assert_ptr_nonnull (hello.endpoint);
        ck_assert_uint_gt (strlen (hello.uid), 0);
    }
    const char *fn;
    tr_kind_t kind;
    const msgpack_object *args;
    if (tri_msg_read_cmd (msg, &fn, &args, &kind, why, sizeof why) == 0)
        ck_assert_ptr_nonnull (fn);
    tr_error_t *err = tri_error_unpack (&msg->body, "fuzz@peer");
    ck_assert_ptr_nonnull (err);
    ck_assert_int_lt (tr_error_code (err), 0);
    tr_error_destroy (&err);
    tr_value_t *value = tri_msg_to_value (msg_p);
    ck_assert_ptr_nonnull (value);
    tr_value_destroy (&value);
}

START_TEST (test_mutated_frames_never_crash_the_decoder)
{
    s_rng = 0x74726f757065ULL;          //  "troupe": the same run every time
    s_buf_t seeds [8];
    size_t nseeds = s_seed_frames (seeds, 8);
    size_t cap = 0;
    for (size_t i = 0; i < nseeds; i++)
        cap = seeds [i].sbuf.size > cap? seeds [i].sbuf.size: cap;
    cap *= 2;
    uint8_t *work = malloc (cap);
    ck_assert_ptr_nonnull (work);

    static const tri_limits_t tight = { 256, 4 };
    uint64_t iterations = s_fuzz_iterations ();
    uint64_t accepted = 0, proto = 0, toobig = 0;
    for (uint64_t it = 0; it < iterations; it++) {
        const s_buf_t *seed = &seeds [s_rand () % nseeds];
        memcpy (work, seed->sbuf.data, seed->sbuf.size);
        size_t size = s_mutate (work, seed->sbuf.size, cap);
        const tri_limits_t *limits = it % 4 == 3? &tight: &s_defaults;

        //  The frame as zmq hands it over: a buffer of exactly size bytes.
        zmq_msg_t frame;
        ck_assert_int_eq (zmq_msg_init_size (&frame, size), 0);
        if (size)
            memcpy (zmq_msg_data (&frame), work, size);
        int peek_type;
        uint64_t peek_cid;
        tri_msg_peek (zmq_msg_data (&frame), size, &peek_type, &peek_cid);
        ck_assert (peek_type >= 0 && peek_type <= TRI_TYPE_MAX);
        tri_msg_t *msg = NULL;
        uint64_t cid = 0;
        char why [256] = "";
        int rc = tri_msg_decode (&frame, limits, &msg, &cid, why, sizeof why);
        if (rc == 0) {
            accepted++;
            ck_assert_ptr_nonnull (msg);
            ck_assert (msg->type >= 1 && msg->type <= TRI_TYPE_MAX);
            ck_assert (msg->cid == cid);
            //  What decodes with a fixarray head peeks the same.
            if (size && work [0] == 0x93)
                ck_assert (peek_type == (int) msg->type && peek_cid == msg->cid);
            s_exercise (&msg);
            ck_assert_ptr_null (msg);
            continue;
        }
        ck_assert_ptr_null (msg);
        ck_assert_msg (rc == TR_EPROTO || rc == TR_ETOOBIG, "iteration %llu: %s",
                       (unsigned long long) it, tr_errname (rc));
        ck_assert_msg (*why, "iteration %llu: no reason", (unsigned long long) it);
        ck_assert_msg (!strstr (why, "could not be decoded"),
                       "iteration %llu: the check let through what msgpack-c refused: %s",
                       (unsigned long long) it, why);
        if (rc == TR_EPROTO)
            proto++;
        else
            toobig++;
    }
    free (work);
    for (size_t i = 0; i < nseeds; i++)
        s_buf_destroy (&seeds [i]);
    //  The mutations reach every outcome.
    ck_assert_uint_gt (accepted, iterations / 100);
    ck_assert_uint_gt (proto, iterations / 10);
    ck_assert_uint_gt (toobig, 0);
}
END_TEST

//  The fuzz targets' seeds (tests/fuzz/msg/, made by make_corpus with the
//  real encoders) are frames of today's protocol: each decodes, is of the
//  type its name says, its body reads as that type's, and together they
//  cover every type.
START_TEST (test_fuzz_seeds_are_readable_frames_of_every_type)
{
    const char *srcdir = getenv ("srcdir");
    char path [4096];
    snprintf (path, sizeof path, "%s/tests/fuzz/msg", srcdir? srcdir: ".");
    DIR *dir = opendir (path);
    ck_assert_msg (dir, "no seeds in %s", path);
    bool seen [TRI_TYPE_MAX + 1] = { false };
    struct dirent *entry;
    int seeds = 0;
    while ((entry = readdir (dir))) {
        if (entry->d_name [0] == '.')
            continue;
        char file [8192];
        snprintf (file, sizeof file, "%s/%s", path, entry->d_name);
        FILE *in = fopen (file, "rb");
        ck_assert_ptr_nonnull (in);
        static char data [65536];
        size_t size = fread (data, 1, sizeof data, in);
        fclose (in);
        zmq_msg_t frame;
        ck_assert_int_eq (zmq_msg_init_size (&frame, size), 0);
        memcpy (zmq_msg_data (&frame), data, size);
        tri_msg_t *msg;
        uint64_t cid;
        char why [256] = "";
        int rc = tri_msg_decode (&frame, &s_defaults, &msg, &cid, why, sizeof why);
        ck_assert_msg (rc == 0, "seed %s does not decode: %s", entry->d_name, why);
        //  "NN-type" or "NN-type-more"
        const char *name = strchr (entry->d_name, '-');
        ck_assert_ptr_nonnull (name);
        name++;
        const char *type = tri_msg_type_name ((int) msg->type);
        ck_assert_msg (strncmp (name, type, strlen (type)) == 0
                       && (name [strlen (type)] == '\0' || name [strlen (type)] == '-'),
                       "seed %s is a %s frame", entry->d_name, type);
        //  And its body reads as its type's.
        tri_hello_t hello;
        const char *fn;
        const msgpack_object *args, *value;
        tr_kind_t kind;
        int side;
        if (msg->type == TRI_HELLO)
            ck_assert_int_eq (tri_msg_read_hello (msg, &hello, why, sizeof why), 0);
        if (msg->type == TRI_CMD)
            ck_assert_msg (tri_msg_read_cmd (msg, &fn, &args, &kind, why, sizeof why) == 0,
                           "seed %s: %s", entry->d_name, why);
        if (msg->type == TRI_YIELD || msg->type == TRI_STOP || msg->type == TRI_CREDIT)
            ck_assert_int_eq (tri_msg_read_stream (msg, &side, &value), 0);
        if (msg->type == TRI_ERROR) {
            tr_error_t *err = tri_error_unpack (&msg->body, "peer");
            ck_assert_ptr_nonnull (err);
            ck_assert_int_ne (tr_error_code (err), TR_EPROTO);
            tr_error_destroy (&err);
        }
        seen [msg->type] = true;
        tri_msg_destroy (&msg);
        seeds++;
    }
    closedir (dir);
    for (int type = 1; type <= TRI_TYPE_MAX; type++)
        ck_assert_msg (seen [type], "no seed of type %s", tri_msg_type_name (type));
    ck_assert_int_ge (seeds, TRI_TYPE_MAX);
}
END_TEST

//  ==========================================================================

static Suite *
s_suite (void)
{
    Suite *suite = suite_create ("msg");

    TCase *tc = tu_tcase (suite, "check accepts", 30);
    tcase_add_loop_test (tc, test_check_accepts_every_msgpack_format_alone_and_in_a_frame,
                         0, S_SAMPLES);
    tcase_add_loop_test (tc, test_check_refuses_every_cut_of_a_valid_frame, 0, S_SAMPLES);
    tcase_add_loop_test (tc, test_check_refuses_a_trailing_byte_after_a_valid_frame,
                         0, S_SAMPLES);

    tc = tu_tcase (suite, "check refuses", 10);
    tcase_add_test (tc, test_check_refuses_an_empty_frame);
    tcase_add_test (tc, test_check_refuses_the_never_used_byte_0xc1);
    tcase_add_test (tc, test_check_refuses_lengths_beyond_the_remaining_bytes);
    tcase_add_test (tc, test_check_refuses_nesting_deeper_than_the_limit_as_too_big);
    tcase_add_test (tc, test_decode_gives_too_big_for_frames_nested_past_the_limit);
    tcase_add_test (tc, test_depth_limits_beyond_what_msgpack_decodes_are_capped);
    tcase_add_test (tc, test_check_refuses_frames_larger_than_the_size_limit_as_too_big);
    tcase_add_test (tc, test_check_reason_is_optional_and_always_terminated);

    tc = tu_tcase (suite, "peek", 10);
    tcase_add_test (tc, test_peek_reads_type_and_cid_of_any_width_even_from_a_cut_frame);
    tcase_add_test (tc, test_peek_gives_zero_for_what_it_cannot_read);
    tcase_add_test (tc, test_a_refused_frame_reports_the_cid_of_its_head);

    tc = tu_tcase (suite, "decode", 30);
    tcase_add_loop_test (tc, test_every_format_round_trips_as_a_frame_body, 0, S_SAMPLES);
    tcase_add_test (tc, test_every_message_type_and_cid_width_round_trips);
    tcase_add_test (tc, test_message_type_names_cover_the_table);
    tcase_add_test (tc, test_unknown_message_types_are_refused_with_the_cid);
    tcase_add_test (tc, test_an_out_of_range_message_type_is_reported_as_sent);
    tcase_add_test (tc, test_frames_that_are_not_three_item_arrays_are_refused);
    tcase_add_test (tc, test_cids_that_are_not_unsigned_integers_are_refused);
    tcase_add_test (tc, test_decode_takes_the_frame_on_success_and_on_failure);
    tcase_add_test (tc, test_decoded_strings_are_nul_terminated);
    tcase_add_test (tc, test_a_value_outlives_the_message_it_came_from);

    tc = tu_tcase (suite, "hello", 10);
    tcase_add_test (tc, test_hello_round_trips);
    tcase_add_test (tc, test_hello_without_pid_or_endpoint_is_accepted);
    tcase_add_test (tc, test_hello_without_version_or_uid_is_refused_with_a_reason);

    tc = tu_tcase (suite, "cmd", 10);
    tcase_add_test (tc, test_cmd_without_args_carries_an_empty_array);
    tcase_add_test (tc, test_cmd_with_packed_args_round_trips);
    tcase_add_test (tc, test_cmd_written_in_place_is_what_the_packer_makes);
    tcase_add_test (tc, test_sending_check_agrees_with_the_receivers_at_the_limits);
    tcase_add_test (tc, test_cmd_bodies_other_than_fn_and_args_are_refused);
    tcase_add_test (tc, test_cmd_says_its_kind_call_context_or_one_way_stream);

    tc = tu_tcase (suite, "fuzz", 120);
    tcase_add_test (tc, test_mutated_frames_never_crash_the_decoder);

    tc = tu_tcase (suite, "fuzz seeds", 10);
    tcase_add_test (tc, test_fuzz_seeds_are_readable_frames_of_every_type);

    return suite;
}

int
main (void)
{
    return tu_run_suite (s_suite (), CK_FORK_GETENV);
}
