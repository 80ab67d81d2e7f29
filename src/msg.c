/*  =========================================================================
    msg.c - the wire protocol: one msgpack array [type, cid, body] a frame

    Every frame a peer sends is checked before it is decoded: it must be
    exactly one msgpack value, no deeper than the depth limit, and every
    length it declares must fit in the bytes that follow, so a few hostile
    bytes can neither make the decoder allocate gigabytes nor recurse. The
    decoded message keeps the frame it came from (no copy) and a zone in
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

//  --------------------------------------------------------------------------
//  Structural check of untrusted msgpack bytes.

static int
s_fail (char *why, size_t why_size, int rc, const char *fmt, ...)
{
    if (why && why_size) {
        va_list ap;
        va_start (ap, fmt);
        vsnprintf (why, why_size, fmt, ap);
        va_end (ap);
    }
    return rc;
}

//  msgpack-c's decoder keeps open containers on a fixed stack of
//  MSGPACK_EMBED_STACK_SIZE (32, in its private unpack_define.h) and
//  refuses a container at any deeper level, empty or not: a deeper limit
//  would pass frames that the decoder then refuses as out of memory.
#define S_MSGPACK_MAX_DEPTH 32

static uint64_t
s_be (const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p [i];
    return v;
}

int
tri_msg_check (const void *data, size_t size, const tri_limits_t *limits,
               char *why, size_t why_size)
{
    assert (limits);
    const uint8_t *p = data;
    const uint8_t *end = p + size;
    if (size > limits->max_size)
        return s_fail (why, why_size, TR_ETOOBIG,
                       "frame of %zu bytes exceeds the limit of %zu", size, limits->max_size);
    //  remaining [d] = items still expected in the container at depth d;
    //  depth 0 is the top level, which holds exactly one value.
    uint64_t remaining [S_MSGPACK_MAX_DEPTH + 1];
    int max_depth = limits->max_depth > S_MSGPACK_MAX_DEPTH
                  ? S_MSGPACK_MAX_DEPTH: limits->max_depth;
    int depth = 0;
    remaining [0] = 1;
    while (true) {
        while (depth > 0 && remaining [depth] == 0)
            depth--;
        if (depth == 0 && remaining [0] == 0)
            break;
        if (p >= end)
            return s_fail (why, why_size, TR_EPROTO,
                           "truncated msgpack at byte %zu", (size_t) (p - (const uint8_t *) data));
        remaining [depth]--;
        uint8_t b = *p++;
        uint64_t skip = 0;          //  payload bytes after the header
        uint64_t items = 0;         //  children of a container
        bool container = false;
        int lenbytes = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            ;
        else
        if (b >= 0x80 && b <= 0x8f) {
            container = true;
            items = 2 * (uint64_t) (b & 0x0f);
        }
        else
        if (b >= 0x90 && b <= 0x9f) {
            container = true;
            items = b & 0x0f;
        }
        else
        if (b >= 0xa0 && b <= 0xbf)
            skip = b & 0x1f;
        else
        switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; break;
            case 0xc5: case 0xda: lenbytes = 2; break;
            case 0xc6: case 0xdb: lenbytes = 4; break;
            case 0xc7: lenbytes = 1; skip = 1; break;       //  ext: + type byte
            case 0xc8: lenbytes = 2; skip = 1; break;
            case 0xc9: lenbytes = 4; skip = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: container = true; lenbytes = 2; break;
            case 0xdd: container = true; lenbytes = 4; break;
            case 0xde: container = true; lenbytes = 2; break;
            case 0xdf: container = true; lenbytes = 4; break;
            default:
                return s_fail (why, why_size, TR_EPROTO,
                               "invalid msgpack byte 0x%02x at byte %zu", b,
                               (size_t) (p - 1 - (const uint8_t *) data));
        }
        if (lenbytes) {
            if ((size_t) (end - p) < (size_t) lenbytes)
                return s_fail (why, why_size, TR_EPROTO, "truncated msgpack length");
            uint64_t n = s_be (p, lenbytes);
            p += lenbytes;
            if (container)
                items = (b == 0xde || b == 0xdf)? 2 * n: n;
            else
                skip += n;
        }
        if (skip > (uint64_t) (end - p))
            return s_fail (why, why_size, TR_EPROTO,
                           "msgpack declares %llu bytes, %zu remain",
                           (unsigned long long) skip, (size_t) (end - p));
        p += skip;
        if (container) {
            //  Every item takes at least one byte.
            if (items > (uint64_t) (end - p))
                return s_fail (why, why_size, TR_EPROTO,
                               "msgpack declares %llu items, %zu bytes remain",
                               (unsigned long long) items, (size_t) (end - p));
            //  An empty container is a level too (it is one for msgpack-c).
            if (depth + 1 > max_depth)
                return s_fail (why, why_size, TR_ETOOBIG,
                               "msgpack nested deeper than %d", max_depth);
            if (items > 0)
                remaining [++depth] = items;
        }
    }
    if (p != end)
        return s_fail (why, why_size, TR_EPROTO,
                       "%zu trailing bytes after the msgpack value", (size_t) (end - p));
    return 0;
}

//  Read a msgpack integer >= 0 at *p; false if there is none. msgpack-c
//  decodes a signed encoding of such a value as unsigned, and so does
//  tri_msg_decode: the peek must read it too.
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
    *value = n? s_be (*p, n): b;
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

//  --------------------------------------------------------------------------
//  Decode a frame into a message; the message takes the frame.

int
tri_msg_decode (zmq_msg_t *frame, const tri_limits_t *limits,
                tri_msg_t **msg_p, uint64_t *cid, char *why, size_t why_size)
{
    assert (frame && limits && msg_p && cid);
    *msg_p = NULL;
    *cid = 0;
    const void *data = zmq_msg_data (frame);
    size_t size = zmq_msg_size (frame);
    int rc = tri_msg_check (data, size, limits, why, why_size);
    if (rc) {
        //  The caller answers with the frame's cid if its head is sound,
        //  so that the sender's call fails instead of waiting forever.
        int type;
        tri_msg_peek (data, size, &type, cid);
        zmq_msg_close (frame);
        return rc;
    }
    tri_msg_t *msg = malloc (sizeof *msg);
    if (!msg || !msgpack_zone_init (&msg->zone, 1024)) {
        free (msg);
        zmq_msg_close (frame);
        return s_fail (why, why_size, TR_ETOOBIG, "out of memory decoding %zu bytes", size);
    }
    zmq_msg_init (&msg->frame);
    zmq_msg_move (&msg->frame, frame);
    zmq_msg_close (frame);
    data = zmq_msg_data (&msg->frame);

    msgpack_object top;
    size_t offset = 0;
    msgpack_unpack_return ur = msgpack_unpack (data, size, &offset, &msg->zone, &top);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        rc = s_fail (why, why_size, TR_EPROTO, "msgpack could not be decoded (%d)", (int) ur);
        goto fail;
    }
    if (top.type != MSGPACK_OBJECT_ARRAY || top.via.array.size != 3) {
        rc = s_fail (why, why_size, TR_EPROTO, "frame is not an array [type, cid, body]");
        goto fail;
    }
    const msgpack_object *items = top.via.array.ptr;
    if (items [1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        rc = s_fail (why, why_size, TR_EPROTO, "cid is not an unsigned integer");
        goto fail;
    }
    *cid = items [1].via.u64;
    if (items [0].type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  items [0].via.u64 < 1 || items [0].via.u64 > TRI_TYPE_MAX) {
        rc = s_fail (why, why_size, TR_EPROTO, "unknown message type %s%lld",
                     items [0].type == MSGPACK_OBJECT_POSITIVE_INTEGER? "": "(not an integer) ",
                     items [0].type == MSGPACK_OBJECT_POSITIVE_INTEGER? (long long) items [0].via.u64: 0LL);
        goto fail;
    }
    msg->type = (tri_type_t) items [0].via.u64;
    msg->cid = *cid;
    msg->body = items [2];
    if (tri_value_cstrings (&msg->body, &msg->zone)) {
        rc = s_fail (why, why_size, TR_ETOOBIG, "out of memory decoding %zu bytes", size);
        goto fail;
    }
    *msg_p = msg;
    return 0;
fail:
    tri_msg_destroy (&msg);
    return rc;
}

void
tri_msg_destroy (tri_msg_t **msg_p)
{
    assert (msg_p);
    tri_msg_t *msg = *msg_p;
    if (msg) {
        msgpack_zone_destroy (&msg->zone);
        zmq_msg_close (&msg->frame);
        free (msg);
        *msg_p = NULL;
    }
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
    return tri_value_new (&msg->body, msg, s_msg_free);
}

//  --------------------------------------------------------------------------
//  Encoding

void
tri_msg_begin (msgpack_packer *pk, tri_type_t type, uint64_t cid)
{
    msgpack_pack_array (pk, 3);
    msgpack_pack_uint8 (pk, (uint8_t) type);
    msgpack_pack_uint64 (pk, cid);
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
        return s_fail (why, why_size, TR_EPROTO, "hello body is not a map");
    const msgpack_object *v = tri_map_get (body, "v");
    if (!v || v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size < 2
    ||  v->via.array.ptr [0].type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  v->via.array.ptr [1].type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  v->via.array.ptr [0].via.u64 > 65535 || v->via.array.ptr [1].via.u64 > 65535)
        return s_fail (why, why_size, TR_EPROTO, "hello has no version [major, minor]");
    hello->major = (int) v->via.array.ptr [0].via.u64;
    hello->minor = (int) v->via.array.ptr [1].via.u64;
    const msgpack_object *uid = tri_map_get (body, "uid");
    if (!uid || uid->type != MSGPACK_OBJECT_STR || uid->via.str.size == 0
    ||  uid->via.str.size > 255)
        return s_fail (why, why_size, TR_EPROTO, "hello has no uid");
    //  The uid is used as a C string: one cut short by a NUL would name
    //  another actor.
    if (memchr (uid->via.str.ptr, '\0', uid->via.str.size))
        return s_fail (why, why_size, TR_EPROTO, "hello uid has a NUL byte in it");
    hello->uid = uid->via.str.ptr;
    const msgpack_object *pid = tri_map_get (body, "pid");
    if (pid && pid->type == MSGPACK_OBJECT_POSITIVE_INTEGER && pid->via.u64 < INT32_MAX)
        hello->pid = (int64_t) pid->via.u64;
    const msgpack_object *ep = tri_map_get (body, "ep");
    hello->endpoint = ep && ep->type == MSGPACK_OBJECT_STR? ep->via.str.ptr: "";
    return 0;
}

void
tri_msg_pack_cmd_pk (msgpack_packer *pk, uint64_t cid, const char *fn, const tr_args_t *args)
{
    tri_msg_begin (pk, TRI_CMD, cid);
    msgpack_pack_array (pk, 2);
    tri_msg_pack_str (pk, fn);
    if (args && args->sbuf.size)
        pk->callback (pk->data, args->sbuf.data, args->sbuf.size);
    else
        msgpack_pack_array (pk, 0);
}

void
tri_msg_pack_cmd (msgpack_sbuffer *sbuf, uint64_t cid, const char *fn,
                  const tr_args_t *args)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sbuf, msgpack_sbuffer_write);
    tri_msg_pack_cmd_pk (&pk, cid, fn, args);
}

const char *
tri_msg_rc_type (int rc)
{
    return rc == TR_ETOOBIG? "TooBig": "ProtocolError";
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
    tri_msg_begin (&self->pk, type, cid);
}

void
tri_frame_write (tri_frame_t *self, const void *data, size_t size)
{
    s_frame_write (self, data, size);
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
tri_msg_read_cmd (const tri_msg_t *msg, const char **fn,
                  const msgpack_object **args, char *why, size_t why_size)
{
    assert (msg && fn && args);
    const msgpack_object *body = &msg->body;
    if (body->type != MSGPACK_OBJECT_ARRAY || body->via.array.size != 2
    ||  body->via.array.ptr [0].type != MSGPACK_OBJECT_STR)
        return s_fail (why, why_size, TR_EPROTO, "cmd body is not [fn, args]");
    //  "echo\0anything" must not call echo.
    const msgpack_object *name = &body->via.array.ptr [0];
    if (memchr (name->via.str.ptr, '\0', name->via.str.size))
        return s_fail (why, why_size, TR_EPROTO, "cmd names a function with a NUL byte in it");
    *fn = name->via.str.ptr;
    *args = &body->via.array.ptr [1];
    return 0;
}
