/*  =========================================================================
    msg.c - the wire protocol: one msgpack array [type, cid, body] a frame

    Every frame a peer sends is checked before it is decoded (check.c),
    so a few hostile bytes can neither make the decoder allocate gigabytes
    nor recurse. The decoded message keeps the frame it came from (no copy) and a zone in
    which its strings are NUL-terminated. doc/protocol.md is the reference.
    =========================================================================
*/
#include "troupe_private.h"

static const char *s_type_names [] = {
    "none", "hello", "cmd", "started", "yield", "stop", "return",
    "error", "cancel", "ack", "ping", "pong", "credit"
};

const char *
tri_msg_type_name (int type)
{
    if (type < 1 || type > TRI_TYPE_MAX)
        return "unknown";
    return s_type_names [type];
}

static bool
s_peek_uint (const uint8_t **p, const uint8_t *end, uint64_t *value)
{
    if (*p >= end)
        return false;
    uint8_t b = *(*p)++;
    int n = b <= 0x7f? 0: b == 0xcc || b == 0xd0? 1: b == 0xcd || b == 0xd1? 2
          : b == 0xce || b == 0xd2? 4: b == 0xcf || b == 0xd3? 8: -1;
    if (n < 0 || end - *p < n)
        return false;
    if (b >= 0xd0 && (**p & 0x80))
        return false;               //  negative
    *value = n? tri_be (*p, n): b;
    *p += n;
    return true;
}

void
tri_msg_peek (const void *data, size_t size, int *type, uint64_t *cid)
{
    const uint8_t *p = data;
    const uint8_t *end = p + size;
    uint64_t t = 0, c = 0;
    *type = 0;
    *cid = 0;
    if (size < 3 || *p++ != 0x93 || !s_peek_uint (&p, end, &t) || !s_peek_uint (&p, end, &c))
        return;
    *type = t <= TRI_TYPE_MAX? (int) t: 0;
    *cid = c;
}

size_t
tri_msg_cmd_args_at (const void *data, size_t size)
{
    const uint8_t *p = data;
    const uint8_t *end = p + size;
    uint64_t type, cid;
    if (size < 5 || *p++ != 0x93 || !s_peek_uint (&p, end, &type) || type != TRI_CMD
    ||  !s_peek_uint (&p, end, &cid) || p >= end || *p++ != 0x92 || p >= end)
        return 0;
    uint8_t b = *p++;
    int n = (b & 0xe0) == 0xa0? 0: b == 0xd9? 1: b == 0xda? 2: b == 0xdb? 4: -1;
    if (n < 0 || end - p < n)
        return 0;
    uint64_t length = n? tri_be (p, n): (uint64_t) (b & 0x1f);
    p += n;
    if ((uint64_t) (end - p) <= length)
        return 0;                   //  nothing left for args
    return (size_t) (p + length - (const uint8_t *) data);
}

//  --------------------------------------------------------------------------
//  Decode a frame into a message; the message takes the frame.

//  Spare message records of this thread (see tri_msg_spares).
#define SPARE_FRAME_MAX     (64 * 1024)

//  max stays 0 (keep none) until tri_msg_spares turns them on.
static _Thread_local tri_spares_t s_spares;

static void
s_msg_free_record (void *record)
{
    tri_msg_t *msg = record;
    msgpack_zone_destroy (&msg->zone);
    free (msg);
}

//  A message record with an empty zone and an empty frame.
static tri_msg_t *
s_msg_alloc (void)
{
    tri_msg_t *msg = tri_spares_pop (&s_spares);
    if (!msg) {
        msg = malloc (sizeof *msg);
        if (!msg)
            return NULL;
        if (!msgpack_zone_init (&msg->zone, 1024)) {
            free (msg);
            return NULL;
        }
    }
    zmq_msg_init (&msg->frame);
    return msg;
}

int
tri_msg_decode (zmq_msg_t *frame, const tri_limits_t *limits,
                tri_msg_t **msg_p, uint64_t *cid, char *why, size_t why_size)
{
    int type;
    return tri_msg_decode_typed (frame, limits, msg_p, &type, cid, why, why_size);
}

int
tri_msg_decode_typed (zmq_msg_t *frame, const tri_limits_t *limits,
                      tri_msg_t **msg_p, int *type, uint64_t *cid, char *why, size_t why_size)
{
    assert (frame && limits && msg_p && type && cid);
    *msg_p = NULL;
    *cid = 0;
    *type = 0;
    const void *data = zmq_msg_data (frame);
    size_t size = zmq_msg_size (frame);
    int rc = tri_msg_check (data, size, limits, why, why_size);
    if (rc) {
        //  The caller answers with the frame's cid if its head is sound,
        //  so that the sender's call fails instead of waiting forever.
        tri_msg_peek (data, size, type, cid);
        zmq_msg_close (frame);
        return rc;
    }
    tri_msg_t *msg = s_msg_alloc ();
    if (!msg) {
        tri_msg_peek (data, size, type, cid);
        zmq_msg_close (frame);
        return tri_why (why, why_size, TR_ETOOBIG, "out of memory decoding %zu bytes", size);
    }
    zmq_msg_move (&msg->frame, frame);
    zmq_msg_close (frame);
    data = zmq_msg_data (&msg->frame);

    msgpack_object top;
    size_t offset = 0;
    msgpack_unpack_return ur = msgpack_unpack (data, size, &offset, &msg->zone, &top);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        rc = tri_why (why, why_size, TR_EPROTO, "msgpack could not be decoded (%d)", (int) ur);
        goto fail;
    }
    if (top.type != MSGPACK_OBJECT_ARRAY || top.via.array.size != 3) {
        rc = tri_why (why, why_size, TR_EPROTO, "frame is not an array [type, cid, body]");
        goto fail;
    }
    const msgpack_object *items = top.via.array.ptr;
    if (items [1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        rc = tri_why (why, why_size, TR_EPROTO, "cid is not an unsigned integer");
        goto fail;
    }
    *cid = items [1].via.u64;
    //  Named as sent: past 2^63 or negative too.
    if (items [0].type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        rc = tri_why (why, why_size, TR_EPROTO, "unknown message type %lld",
                      (long long) items [0].via.i64);
        goto fail;
    }
    if (items [0].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        rc = tri_why (why, why_size, TR_EPROTO, "unknown message type (not an integer)");
        goto fail;
    }
    if (items [0].via.u64 < 1 || items [0].via.u64 > TRI_TYPE_MAX) {
        rc = tri_why (why, why_size, TR_EPROTO, "unknown message type %llu",
                      (unsigned long long) items [0].via.u64);
        goto fail;
    }
    msg->type = (tri_type_t) items [0].via.u64;
    msg->cid = *cid;
    msg->body = items [2];
    if (tri_value_cstrings (&msg->body, &msg->zone)) {
        rc = tri_why (why, why_size, TR_ETOOBIG, "out of memory decoding %zu bytes", size);
        goto fail;
    }
    *msg_p = msg;
    return 0;
fail:
    {
        //  The cid read above stands, even where the head is not sound.
        uint64_t peeked;
        tri_msg_peek (zmq_msg_data (&msg->frame), zmq_msg_size (&msg->frame), type, &peeked);
        if (!*cid)
            *cid = peeked;
    }
    tri_msg_destroy (&msg);
    return rc;
}

void
tri_msg_destroy (tri_msg_t **msg_p)
{
    assert (msg_p);
    tri_msg_t *msg = *msg_p;
    if (!msg)
        return;
    *msg_p = NULL;
    //  A record whose zone grew for a large frame is not worth keeping.
    bool small = zmq_msg_size (&msg->frame) <= SPARE_FRAME_MAX;
    zmq_msg_close (&msg->frame);
    if (small && s_spares.count < s_spares.max) {
        msgpack_zone_clear (&msg->zone);
        tri_spares_push (&s_spares, msg);
    }
    else
        s_msg_free_record (msg);
}

void
tri_msg_spares (bool on)
{
    s_spares.max = on? TRI_SPARES_MAX: 0;
    if (!on)
        tri_spares_drain (&s_spares, s_msg_free_record);
}

static void
s_msg_free (void *owner)
{
    tri_msg_t *msg = owner;
    tri_msg_destroy (&msg);
}

tr_value_t *
tri_msg_to_value (tri_msg_t **msg_p)
{
    assert (msg_p && *msg_p);
    tri_msg_t *msg = *msg_p;
    *msg_p = NULL;
    //  The value lives in the message: no allocation of its own.
    msg->value.object = msg->body;
    msg->value.owner = msg;
    msg->value.owner_free = s_msg_free;
    msg->value.inside_owner = true;
    return &msg->value;
}

//  --------------------------------------------------------------------------
//  Encoding

void
tri_msg_begin (msgpack_packer *pk, tri_type_t type, uint64_t cid)
{
    uint8_t head [11];
    pk->callback (pk->data, (const char *) head, tri_msg_head (head, type, cid));
}

void
tri_msg_pack_str (msgpack_packer *pk, const char *s)
{
    size_t len = strlen (s);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

void
tri_msg_pack_hello (msgpack_packer *pk, const tri_hello_t *hello)
{
    msgpack_pack_map (pk, 4);
    tri_msg_pack_str (pk, "v");
    msgpack_pack_array (pk, 2);
    msgpack_pack_int (pk, hello->major);
    msgpack_pack_int (pk, hello->minor);
    tri_msg_pack_str (pk, "uid");
    tri_msg_pack_str (pk, hello->uid);
    tri_msg_pack_str (pk, "pid");
    msgpack_pack_int64 (pk, hello->pid);
    tri_msg_pack_str (pk, "ep");
    tri_msg_pack_str (pk, hello->endpoint? hello->endpoint: "");
}


int
tri_msg_read_hello (const tri_msg_t *msg, tri_hello_t *hello, char *why, size_t why_size)
{
    assert (msg && hello);
    memset (hello, 0, sizeof *hello);
    const msgpack_object *body = &msg->body;
    if (body->type != MSGPACK_OBJECT_MAP)
        return tri_why (why, why_size, TR_EPROTO, "hello body is not a map");
    const msgpack_object *v = tri_map_get (body, "v");
    if (!v || v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size < 2
    ||  v->via.array.ptr [0].type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  v->via.array.ptr [1].type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  v->via.array.ptr [0].via.u64 > 65535 || v->via.array.ptr [1].via.u64 > 65535)
        return tri_why (why, why_size, TR_EPROTO, "hello has no version [major, minor]");
    hello->major = (int) v->via.array.ptr [0].via.u64;
    hello->minor = (int) v->via.array.ptr [1].via.u64;
    const msgpack_object *uid = tri_map_get (body, "uid");
    if (!uid || uid->type != MSGPACK_OBJECT_STR || uid->via.str.size == 0
    ||  uid->via.str.size > 255)
        return tri_why (why, why_size, TR_EPROTO, "hello has no uid");
    //  The uid is used as a C string: one cut short by a NUL would name
    //  another actor.
    if (memchr (uid->via.str.ptr, '\0', uid->via.str.size))
        return tri_why (why, why_size, TR_EPROTO, "hello uid has a NUL byte in it");
    hello->uid = uid->via.str.ptr;
    const msgpack_object *pid = tri_map_get (body, "pid");
    if (pid && pid->type == MSGPACK_OBJECT_POSITIVE_INTEGER && pid->via.u64 < INT32_MAX)
        hello->pid = (int64_t) pid->via.u64;
    const msgpack_object *ep = tri_map_get (body, "ep");
    hello->endpoint = ep && ep->type == MSGPACK_OBJECT_STR? ep->via.str.ptr: "";
    return 0;
}

void
tri_msg_pack_cmd_pk (msgpack_packer *pk, uint64_t cid, const char *fn, const tr_args_t *args,
                     tr_kind_t kind)
{
    tri_frame_t frame;
    tri_frame_cmd (&frame, cid, fn, args, kind);
    if (!frame.failed)
        pk->callback (pk->data, frame.data, frame.size);
    tri_frame_fini (&frame);
}

void
tri_msg_pack_cmd (msgpack_sbuffer *sbuf, uint64_t cid, const char *fn,
                  const tr_args_t *args)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    tri_msg_pack_cmd_pk (&pk, cid, fn, args, TR_CALL);
}

const char *
tri_msg_rc_type (int rc)
{
    return rc == TR_ETOOBIG? "TooBig": rc == TR_ENOMEM? "NoMemory": "ProtocolError";
}

//  --------------------------------------------------------------------------
//  Frames being built: a small buffer inside the frame, the heap beyond.

static int
s_frame_write (void *data, const char *buf, size_t len)
{
    tri_frame_t *self = data;
    if (self->failed)
        return -1;
    if (self->size + len > self->capacity) {
        size_t capacity = self->capacity * 2;
        while (capacity < self->size + len)
            capacity *= 2;
        char *bigger = self->data == self->local? malloc (capacity): realloc (self->data, capacity);
        if (!bigger) {
            self->failed = true;
            return -1;
        }
        if (self->data == self->local)
            memcpy (bigger, self->local, self->size);
        self->data = bigger;
        self->capacity = capacity;
    }
    memcpy (self->data + self->size, buf, len);
    self->size += len;
    return 0;
}

void
tri_frame_init (tri_frame_t *self)
{
    self->data = self->local;
    self->size = 0;
    self->capacity = sizeof self->local;
    self->failed = false;
    msgpack_packer_init (&self->pk, self, s_frame_write);
}

void
tri_frame_begin (tri_frame_t *self, tri_type_t type, uint64_t cid)
{
    tri_frame_init (self);
    self->size = tri_msg_head ((uint8_t *) self->data, type, cid);
}

//  A msgpack str header for len bytes at out (at most 5 bytes); its size.
static size_t
s_str_head (uint8_t *out, size_t len)
{
    if (len < 32) {
        out [0] = (uint8_t) (0xa0 | len);
        return 1;
    }
    int bytes = len <= 0xff? 1: len <= 0xffff? 2: 4;
    out [0] = bytes == 1? 0xd9: bytes == 2? 0xda: 0xdb;
    for (int i = 0; i < bytes; i++)
        out [1 + i] = (uint8_t) (len >> (8 * (bytes - 1 - i)));
    return 1 + (size_t) bytes;
}

void
tri_frame_cmd (tri_frame_t *self, uint64_t cid, const char *fn, const tr_args_t *args,
               tr_kind_t kind)
{
    tri_frame_init (self);
    size_t fn_len = strlen (fn);
    size_t len = args? tri_args_len (args): 0;
    //  [cmd, cid, [fn, (kind,) args]]: at most 11 + 1 + 5 + 1 bytes, the
    //  name, the arguments (or an empty array).
    tri_frame_reserve (self, 18 + fn_len + (len? len: 1));
    if (self->failed)
        return;
    uint8_t *out = (uint8_t *) self->data;
    size_t n = tri_msg_head (out, TRI_CMD, cid);
    out [n++] = kind == TR_CALL? 0x92: 0x93;
    n += s_str_head (out + n, fn_len);
    memcpy (out + n, fn, fn_len);
    n += fn_len;
    if (kind != TR_CALL)
        out [n++] = (uint8_t) kind;
    if (len) {
        memcpy (out + n, tri_args_bytes (args), len);
        n += len;
    }
    else
        out [n++] = 0x90;
    self->size = n;
}

void
tri_frame_reserve (tri_frame_t *self, size_t size)
{
    if (size <= self->capacity || self->failed)
        return;
    char *bigger = self->data == self->local? malloc (size): realloc (self->data, size);
    if (!bigger) {
        self->failed = true;
        return;
    }
    if (self->data == self->local)
        memcpy (bigger, self->local, self->size);
    self->data = bigger;
    self->capacity = size;
}

char *
tri_frame_detach (tri_frame_t *self)
{
    if (self->data == self->local)
        return NULL;
    char *data = self->data;
    self->data = self->local;
    self->capacity = sizeof self->local;
    self->size = 0;
    return data;
}

void
tri_frame_write (tri_frame_t *self, const void *data, size_t size)
{
    s_frame_write (self, data, size);
}

int
tri_frame_check_args (const tri_frame_t *self, const tr_args_t *args, int level,
                      const tri_limits_t *limits, char *why, size_t why_size)
{
    if (self->failed)
        return tri_why (why, why_size, TR_ENOMEM, "out of memory building the frame");
    size_t len = args? tri_args_len (args): 0;
    if (len)
        //  The value is never changed once made: its own check is kept.
        return tri_args_check ((tr_args_t *) args, self->size - len, level, limits,
                               why, why_size);
    if (self->size > limits->max_size)
        return tri_why (why, why_size, TR_ETOOBIG, "frame of %zu bytes exceeds the limit of %zu",
                        self->size, limits->max_size);
    return 0;
}

void
tri_frame_fini (tri_frame_t *self)
{
    if (self->data != self->local)
        free (self->data);
    self->data = self->local;
    self->size = 0;
}

int
tri_msg_read_cmd (const tri_msg_t *msg, const char **fn, const msgpack_object **args,
                  tr_kind_t *kind, char *why, size_t why_size)
{
    assert (msg && fn && args && kind);
    const msgpack_object *body = &msg->body;
    const msgpack_object *items = body->via.array.ptr;
    if (body->type != MSGPACK_OBJECT_ARRAY
    ||  (body->via.array.size != 2 && body->via.array.size != 3)
    ||  items [0].type != MSGPACK_OBJECT_STR
    ||  (body->via.array.size == 3
         && (items [1].type != MSGPACK_OBJECT_POSITIVE_INTEGER
             || (items [1].via.u64 != TR_CONTEXT && items [1].via.u64 != TR_STREAM))))
        return tri_why (why, why_size, TR_EPROTO,
                        "cmd body is not [fn, args], [fn, 1, args] or [fn, 2, args]");
    //  "echo\0anything" must not call echo.
    const msgpack_object *name = &items [0];
    if (memchr (name->via.str.ptr, '\0', name->via.str.size))
        return tri_why (why, why_size, TR_EPROTO, "cmd names a function with a NUL byte in it");
    *fn = name->via.str.ptr;
    *kind = body->via.array.size == 3? (tr_kind_t) items [1].via.u64: TR_CALL;
    *args = &items [body->via.array.size - 1];
    return 0;
}

int
tri_msg_read_stream (const tri_msg_t *msg, int *side, const msgpack_object **value)
{
    assert (msg && side && value);
    const msgpack_object *body = &msg->body;
    if (body->type != MSGPACK_OBJECT_ARRAY || body->via.array.size < 2
    ||  (msg->type != TRI_YIELD && body->via.array.size != 2)
    ||  body->via.array.ptr [0].type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  body->via.array.ptr [0].via.u64 > 1)
        return TR_EPROTO;
    *side = (int) body->via.array.ptr [0].via.u64;
    *value = &body->via.array.ptr [1];
    return 0;
}

size_t
tri_msg_head (uint8_t *out, tri_type_t type, uint64_t cid)
{
    size_t n = 0;
    out [n++] = 0x93;
    out [n++] = (uint8_t) type;
    if (cid < 0x80)
        out [n++] = (uint8_t) cid;
    else {
        int bytes = cid <= 0xff? 1: cid <= 0xffff? 2: cid <= 0xffffffffu? 4: 8;
        out [n++] = bytes == 1? 0xcc: bytes == 2? 0xcd: bytes == 4? 0xce: 0xcf;
        for (int i = bytes - 1; i >= 0; i--)
            out [n++] = (uint8_t) (cid >> (8 * i));
    }
    return n;
}
