/*  =========================================================================
    make_corpus.c - the fuzz targets' seeds, made with the real encoders

    Writes one file per message type into DIR/msg/ (a frame each, as
    fuzz_msg reads them), runtime inputs into DIR/runtime/ (a hello, then
    one or more frames of each type, as fuzz_runtime reads them) and a few
    formats and values into DIR/unpack/. Run it again after a change to
    the protocol: make fuzz-corpus.
    =========================================================================
*/
#include "troupe_private.h"
#include <sys/stat.h>

static const char *s_dir;

static void
s_write (const char *sub, const char *name, const void *data, size_t size)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/%s", s_dir, sub);
    mkdir (path, 0755);
    snprintf (path, sizeof path, "%s/%s/%s", s_dir, sub, name);
    FILE *file = fopen (path, "wb");
    if (!file || fwrite (data, 1, size, file) != size || fclose (file)) {
        perror (path);
        exit (1);
    }
}

//  A frame of each type, as the runtime builds them.
typedef struct {
    const char *name;
    tri_frame_t frame;
} s_seed_t;

static s_seed_t s_seeds [17];
static int s_nseeds;

static tri_frame_t *
s_seed (const char *name, tri_type_t type, uint64_t cid)
{
    s_seed_t *seed = &s_seeds [s_nseeds++];
    seed->name = name;
    tri_frame_begin (&seed->frame, type, cid);
    return &seed->frame;
}

//  A seed whose encoder writes the head too.
static tri_frame_t *
s_seed_whole (const char *name)
{
    s_seed_t *seed = &s_seeds [s_nseeds++];
    seed->name = name;
    tri_frame_init (&seed->frame);
    return &seed->frame;
}

static void
s_make_frames (void)
{
    tri_hello_t hello = { TR_PROTOCOL_MAJOR, TR_PROTOCOL_MINOR,
                          "seed@00000000-0000-4000-8000-000000000001", "ipc:///tmp/seed", 4242 };
    tri_msg_pack_hello (&s_seed ("hello", TRI_HELLO, 0)->pk, &hello);

    tr_args_t *args = tr_pack ("[s i f b n {s:[u I] s:y}]", "hi", -7, 1.5, 1,
                               "k", (uint64_t) 3, (int64_t) -4, "b", "\x00\x01", (size_t) 2);
    tri_msg_pack_cmd_pk (&s_seed_whole ("cmd")->pk, 1, "echo", args, TR_CALL);
    tri_msg_pack_cmd_pk (&s_seed_whole ("cmd-context")->pk, 2, "relay", args, TR_CONTEXT);
    tri_msg_pack_cmd_pk (&s_seed_whole ("cmd-info")->pk, 3, "tr.info", NULL, TR_CALL);
    tr_args_t *ms = tr_pack ("[i]", 30);
    tri_msg_pack_cmd_pk (&s_seed_whole ("cmd-nap")->pk, 4, "nap", ms, TR_CALL);
    tr_args_destroy (&ms);

    tri_frame_t *frame = s_seed ("started", TRI_STARTED, 2);
    tri_frame_write (frame, tri_args_bytes (args), tri_args_len (args));

    //  A yield as tri_channel_send_value makes it: [side, value].
    frame = s_seed ("yield", TRI_YIELD, 2);
    msgpack_pack_array (&frame->pk, 2);
    msgpack_pack_uint8 (&frame->pk, 0);
    tri_frame_write (frame, tri_args_bytes (args), tri_args_len (args));
    //  A burst: [side, value, value, ...].
    frame = s_seed ("yield-burst", TRI_YIELD, 2);
    msgpack_pack_array (&frame->pk, 4);
    msgpack_pack_uint8 (&frame->pk, 0);
    msgpack_pack_int (&frame->pk, 1);
    msgpack_pack_int (&frame->pk, 2);
    msgpack_pack_int (&frame->pk, 3);
    tr_args_destroy (&args);

    frame = s_seed ("stop", TRI_STOP, 2);
    msgpack_pack_array (&frame->pk, 2);
    msgpack_pack_uint8 (&frame->pk, 0);
    msgpack_pack_nil (&frame->pk);

    frame = s_seed ("credit", TRI_CREDIT, 2);
    msgpack_pack_array (&frame->pk, 2);
    msgpack_pack_uint8 (&frame->pk, 0);
    msgpack_pack_uint64 (&frame->pk, 64);

    frame = s_seed ("return", TRI_RETURN, 1);
    msgpack_pack_array (&frame->pk, 1);
    tri_msg_pack_str (&frame->pk, "hi");

    tr_error_t *err = tri_error_new (TR_EREMOTE, "ValueError", "seed@00000000-0000-4000-8000-000000000001",
                                     "bad value %d", 7);
    tri_error_add_hop (err, "hop@00000000-0000-4000-8000-000000000002");
    tri_error_pack (&s_seed ("error", TRI_ERROR, 1)->pk, err);
    tr_error_destroy (&err);

    msgpack_pack_nil (&s_seed ("cancel", TRI_CANCEL, 1)->pk);
    msgpack_pack_nil (&s_seed ("ack", TRI_ACK, 1)->pk);
    msgpack_pack_nil (&s_seed ("ping", TRI_PING, 9)->pk);
    msgpack_pack_nil (&s_seed ("pong", TRI_PONG, 9)->pk);
    tr_args_t *n = tr_pack ("[i]", 3);
    tri_msg_pack_cmd_pk (&s_seed_whole ("cmd-stream")->pk, 5, "stream_count", n, TR_STREAM);
    tr_args_destroy (&n);
}

//  fuzz_runtime's input: a flags byte (bit 0: say hello first), then
//  frames, each a two-byte big-endian header (bit 15: more parts of the
//  same message follow; the rest: its size) and its bytes.
static size_t
s_runtime_frame (uint8_t *out, const tri_frame_t *frame, bool more)
{
    assert (frame->size < 0x8000);
    out [0] = (uint8_t) ((more? 0x80: 0) | frame->size >> 8);
    out [1] = (uint8_t) frame->size;
    memcpy (out + 2, frame->data, frame->size);
    return 2 + frame->size;
}

static void
s_make_runtime (void)
{
    static uint8_t input [65536];
    for (int i = 0; i < s_nseeds; i++) {
        if (streq (s_seeds [i].name, "hello"))
            continue;
        size_t n = 0;
        input [n++] = 1;
        n += s_runtime_frame (input + n, &s_seeds [i].frame, false);
        s_write ("runtime", s_seeds [i].name, input, n);
    }
    //  A context opened, fed, stopped; two frames in one message; frames
    //  before hello; a hello of our own (a second one).
    const char *names [] = { "cmd-context", "yield", "credit", "stop", "cancel" };
    size_t n = 0;
    input [n++] = 1;
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < s_nseeds; i++)
            if (streq (s_seeds [i].name, names [k]))
                n += s_runtime_frame (input + n, &s_seeds [i].frame, false);
    s_write ("runtime", "context-session", input, n);
    n = 0;
    input [n++] = 1;
    n += s_runtime_frame (input + n, &s_seeds [1].frame, true);
    n += s_runtime_frame (input + n, &s_seeds [3].frame, false);
    s_write ("runtime", "multipart", input, n);
    n = 0;
    input [n++] = 0;
    n += s_runtime_frame (input + n, &s_seeds [0].frame, false);
    n += s_runtime_frame (input + n, &s_seeds [1].frame, false);
    s_write ("runtime", "own-hello", input, n);
    n = 0;
    input [n++] = 0;
    n += s_runtime_frame (input + n, &s_seeds [1].frame, false);
    s_write ("runtime", "before-hello", input, n);
}

static void
s_make_unpack (void)
{
    //  Random game (even first byte): format length, format, value.
    struct { const char *name, *fmt; tr_args_t *value; } seeds [] = {
        { "array", "[s i f b n]", tr_pack ("[s i f b n]", "hi", 1, 2.5, 0) },
        { "map", "{s:s# ?s:[u I] s:y}",
          tr_pack ("{s:s# s:[u I] s:y}", "a", "x\0y", (size_t) 3, "b", (uint64_t) 1,
                   (int64_t) -1, "c", "zz", (size_t) 2) },
        { "more", "[i, o ...]", tr_pack ("[i i i]", 1, 2, 3) },
        { "nested", "[[[{s:[n]}]]]", tr_pack ("[[[{s:[n]}]]]", "k") },
    };
    static uint8_t input [4096];
    for (size_t i = 0; i < sizeof seeds / sizeof seeds [0]; i++) {
        assert (seeds [i].value);
        size_t n = 0;
        input [n++] = 0;
        input [n++] = (uint8_t) strlen (seeds [i].fmt);
        memcpy (input + n, seeds [i].fmt, strlen (seeds [i].fmt));
        n += strlen (seeds [i].fmt);
        memcpy (input + n, tr_args_data (seeds [i].value), tr_args_size (seeds [i].value));
        n += tr_args_size (seeds [i].value);
        char name [64];
        snprintf (name, sizeof name, "random-%s", seeds [i].name);
        s_write ("unpack", name, input, n);
        tr_args_destroy (&seeds [i].value);
    }
    //  Round-trip game (odd first byte): bytes that steer the generator
    //  into an array, a map and nesting.
    static const uint8_t trip [][24] = {
        { 1, 10, 4, 0, 0, 0, 0, 1, 6, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 3, 0 },
        { 1, 11, 3, 0, 1, 0, 4, 1, 0, 7, 0, 3, 'x', 0, 'y', 0, 8, 0, 2, 1, 2 },
        { 1, 10, 2, 1, 10, 2, 0, 11, 1, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0, 3 },
    };
    for (size_t i = 0; i < sizeof trip / sizeof trip [0]; i++) {
        char name [64];
        snprintf (name, sizeof name, "trip-%zu", i);
        s_write ("unpack", name, trip [i], sizeof trip [i]);
    }
}

int
main (int argc, char **argv)
{
    if (argc != 2) {
        fprintf (stderr, "usage: make_corpus DIR\n");
        return 1;
    }
    s_dir = argv [1];
    s_make_frames ();
    for (int i = 0; i < s_nseeds; i++) {
        char name [64];
        snprintf (name, sizeof name, "%02d-%s", i + 1, s_seeds [i].name);
        s_write ("msg", name, s_seeds [i].frame.data, s_seeds [i].frame.size);
    }
    s_make_runtime ();
    s_make_unpack ();
    for (int i = 0; i < s_nseeds; i++)
        tri_frame_fini (&s_seeds [i].frame);
    return 0;
}
