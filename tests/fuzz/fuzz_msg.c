/*  =========================================================================
    fuzz_msg.c - libFuzzer target: the frame decoder and the body readers

    Each input is one frame as a peer would send it. It goes through what
    the runtime does with a frame: the head is peeked (tri_msg_peek,
    tri_msg_cmd_args_at), the frame checked and decoded, and the body read
    by every reader, whatever the frame's type says (hello, cmd, the
    stream frames, error), since a reader must refuse any body rather
    than trust the type. A body that decodes must also survive a round
    trip: encoded again and decoded, it encodes to the same bytes.
    Built with ./configure --enable-fuzzers (clang); seeds in
    tests/fuzz/msg/.
    =========================================================================
*/
#include "troupe_private.h"

//  The runtime's defaults, smaller: a megabyte is plenty to find bugs.
static const tri_limits_t s_limits = { 1024 * 1024, TRI_DEFAULT_MAX_DEPTH };

//  Encode o; decode the bytes; encode that again: the same bytes.
static void
s_round_trip (const msgpack_object *o)
{
    tr_args_t *first = tr_args_from_object (o);
    if (!first)
        return;                 //  out of memory only
    tr_value_t *value = tr_value_decode (tr_args_data (first), tr_args_size (first));
    if (!value) {
        //  Within the frame's limits, so it must decode.
        fprintf (stderr, "fuzz_msg: a decoded body, encoded again, does not decode\n");
        abort ();
    }
    tr_args_t *second = tr_args_from_object (tr_value_object (value));
    if (second
    &&  (tr_args_size (first) != tr_args_size (second)
         || memcmp (tr_args_data (first), tr_args_data (second), tr_args_size (first)))) {
        fprintf (stderr, "fuzz_msg: a body does not encode the same after a round trip\n");
        abort ();
    }
    tr_args_destroy (&second);
    tr_value_destroy (&value);
    tr_args_destroy (&first);
}

//  Every reader, on any body: each must refuse what it cannot read.
static void
s_read_body (const tri_msg_t *msg)
{
    char why [256];
    tri_hello_t hello;
    if (tri_msg_read_hello (msg, &hello, why, sizeof why) == 0) {
        if (!hello.uid || strlen (hello.uid) == 0 || !hello.endpoint)
            abort ();
    }
    const char *fn;
    const msgpack_object *args;
    tr_kind_t kind;
    if (tri_msg_read_cmd (msg, &fn, &args, &kind, why, sizeof why) == 0) {
        //  What serve.c reads of a call before running it.
        if (!fn || !args || (kind != TR_CALL && kind != TR_CONTEXT && kind != TR_STREAM))
            abort ();
        (void) strlen (fn);
        tr_args_t *copy = tr_args_from_object (args);
        tr_args_destroy (&copy);
    }
    int side;
    const msgpack_object *value;
    if (tri_msg_read_stream (msg, &side, &value) == 0) {
        if (side != 0 && side != 1)
            abort ();
    }
    tr_error_t *err = tri_error_unpack (&msg->body, "fuzz@peer");
    if (err) {
        (void) strlen (tr_error_type (err));
        (void) strlen (tr_error_message (err));
        (void) strlen (tr_error_origin (err));
    }
    tr_error_destroy (&err);
    s_round_trip (&msg->body);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    //  Refusals are what this target provokes: the library need not log them.
    setenv ("TROUPE_LOGLEVEL", "error", 0);
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    int type;
    uint64_t cid;
    tri_msg_peek (data, size, &type, &cid);
    if (type < 0 || type > TRI_TYPE_MAX)
        abort ();
    size_t at = tri_msg_cmd_args_at (data, size);
    if (at >= size && at != 0)
        abort ();
    (void) tri_msg_type_name (type);

    zmq_msg_t frame;
    if (zmq_msg_init_size (&frame, size))
        return 0;
    if (size)
        memcpy (zmq_msg_data (&frame), data, size);
    tri_msg_t *msg;
    char why [256];
    int rc = tri_msg_decode_typed (&frame, &s_limits, &msg, &type, &cid, why, sizeof why);
    if (rc) {
        if (msg || (rc != TR_EPROTO && rc != TR_ETOOBIG) || strlen (why) == 0)
            abort ();
        return 0;
    }
    if (msg->type < 1 || msg->type > TRI_TYPE_MAX || msg->cid != cid)
        abort ();
    s_read_body (msg);
    //  The way a result leaves the runtime: as a value owning the frame.
    tr_value_t *value = tri_msg_to_value (&msg);
    (void) tr_value_object (value);
    tr_value_destroy (&value);
    return 0;
}
