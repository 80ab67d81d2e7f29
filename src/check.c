/*  =========================================================================
    check.c - a structural check of untrusted msgpack bytes

    Before anything a peer sent is decoded, and before tr_value_decode
    trusts its bytes, they are checked: exactly one msgpack value, no
    deeper than the depth limit, and every length it declares fits in the
    bytes that follow, so a few hostile bytes can neither make msgpack-c
    allocate gigabytes nor recurse. Both the wire layer (msg.c) and the
    value layer (value.c) stand on this.
    =========================================================================
*/
#include "troupe_private.h"

//  --------------------------------------------------------------------------
//  Structural check of untrusted msgpack bytes.

int
tri_why (char *why, size_t why_size, int rc, const char *fmt, ...)
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

uint64_t
tri_be (const uint8_t *p, int n)
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
    return tri_msg_check_depth (data, size, limits, NULL, why, why_size);
}

int
tri_msg_check_depth (const void *data, size_t size, const tri_limits_t *limits,
                     int *depth_p, char *why, size_t why_size)
{
    assert (limits);
    int deepest = 0;
    const uint8_t *p = data;
    const uint8_t *end = p + size;
    if (size > limits->max_size)
        return tri_why (why, why_size, TR_ETOOBIG,
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
            return tri_why (why, why_size, TR_EPROTO,
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
                return tri_why (why, why_size, TR_EPROTO,
                               "invalid msgpack byte 0x%02x at byte %zu", b,
                               (size_t) (p - 1 - (const uint8_t *) data));
        }
        if (lenbytes) {
            if ((size_t) (end - p) < (size_t) lenbytes)
                return tri_why (why, why_size, TR_EPROTO, "truncated msgpack length");
            uint64_t n = tri_be (p, lenbytes);
            p += lenbytes;
            if (container)
                items = (b == 0xde || b == 0xdf)? 2 * n: n;
            else
                skip += n;
        }
        if (skip > (uint64_t) (end - p))
            return tri_why (why, why_size, TR_EPROTO,
                           "msgpack declares %llu bytes, %zu remain",
                           (unsigned long long) skip, (size_t) (end - p));
        p += skip;
        if (container) {
            //  Every item takes at least one byte.
            if (items > (uint64_t) (end - p))
                return tri_why (why, why_size, TR_EPROTO,
                               "msgpack declares %llu items, %zu bytes remain",
                               (unsigned long long) items, (size_t) (end - p));
            //  An empty container is a level too (it is one for msgpack-c).
            if (depth + 1 > max_depth)
                return tri_why (why, why_size, TR_ETOOBIG,
                               "msgpack nested deeper than %d", max_depth);
            if (depth + 1 > deepest)
                deepest = depth + 1;
            if (items > 0)
                remaining [++depth] = items;
        }
    }
    if (p != end)
        return tri_why (why, why_size, TR_EPROTO,
                       "%zu trailing bytes after the msgpack value", (size_t) (end - p));
    if (depth_p)
        *depth_p = deepest;
    return 0;
}

int
tri_args_check (tr_args_t *value, size_t head_size, int level, const tri_limits_t *limits,
                char *why, size_t why_size)
{
    size_t size = head_size + tri_args_len (value);
    if (size > limits->max_size)
        return tri_why (why, why_size, TR_ETOOBIG,
                       "frame of %zu bytes exceeds the limit of %zu", size, limits->max_size);
    int max_depth = limits->max_depth > S_MSGPACK_MAX_DEPTH? S_MSGPACK_MAX_DEPTH: limits->max_depth;
    if (value->depth == 0) {
        int depth;
        tri_limits_t any = { tri_args_len (value), S_MSGPACK_MAX_DEPTH };
        int rc = tri_msg_check_depth (tri_args_bytes (value), tri_args_len (value), &any,
                                      &depth, why, why_size);
        if (rc == TR_ETOOBIG)
            return tri_why (why, why_size, TR_ETOOBIG, "msgpack nested deeper than %d", max_depth);
        if (rc)
            return rc;
        value->depth = depth + 1;
    }
    if (value->depth - 1 + level > max_depth)
        return tri_why (why, why_size, TR_ETOOBIG, "msgpack nested deeper than %d", max_depth);
    return 0;
}

//  Read a msgpack integer >= 0 at *p; false if there is none. msgpack-c
//  decodes a signed encoding of such a value as unsigned, and so does
//  tri_msg_decode: the peek must read it too.
