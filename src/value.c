/*  =========================================================================
    value.c - values: jansson-style pack and unpack over msgpack

    tr_pack turns a format string and its arguments into one encoded msgpack
    value (a tr_args_t); tr_unpack (unpack.c) reads a msgpack object back
    through the same letters into the caller's pointers and, when they
    disagree, says where. Both are on every call path, so neither
    allocates per item:

    - a format is checked whole in one pass before any argument is read,
      so a malformed one never yields half a value and the walks that
      follow can trust it;
    - an array or map header needs its item count before its items, so
      the packer counts ahead in the format (nested groups skipped);
    - the path for a mismatch message ("[1].name") is a chain of frames on
      the C stack, rendered only when something failed.

    A tr_value_t is a received object plus the memory it lives in. Every
    string in it is NUL-terminated (tri_value_cstrings), which is what lets
    tr_unpack's "s" hand out plain C strings.
    =========================================================================
*/
#include "troupe_private.h"
#include <inttypes.h>
#include <limits.h>

//  First allocation of an args buffer; msgpack's own default is 8 KiB,
//  far more than most arguments need and kept as long as the value lives.
#define S_ARGS_INIT     64

//  Deepest nesting of brackets a format may have.
#define S_MAX_DEPTH     64

//  --------------------------------------------------------------------------
//  Formats

typedef enum {
    S_PACK,
    S_UNPACK
} s_mode_t;

typedef struct {
    const char *fmt;
    s_mode_t mode;
    size_t offset;              //  where the format is wrong
    char why [96];              //  and what is wrong there
} s_check_t;


static int
s_check_fail (s_check_t *self, const char *at, const char *fmt, ...)
    TR_PRINTF (3, 4);

static int
s_check_fail (s_check_t *self, const char *at, const char *fmt, ...)
{
    self->offset = (size_t) (at - self->fmt);
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (self->why, sizeof self->why, fmt, ap);
    va_end (ap);
    return -1;
}

//  Say what is wrong with a character found where a value should start.
static int
s_check_unexpected (s_check_t *self, const char *p)
{
    unsigned char c = (unsigned char) *p;
    if (c == '\0')
        return s_check_fail (self, p, "format ends where a value was expected");
    if (c == ']' || c == '}')
        return s_check_fail (self, p, "unexpected '%c'", c);
    if (c == '?')
        return s_check_fail (self, p, self->mode == S_PACK
                             ? "'?' is only for tr_unpack"
                             : "'?' may only come before a map key");
    if (strncmp (p, "...", 3) == 0)
        return s_check_fail (self, p, self->mode == S_PACK
                             ? "'...' is only for tr_unpack"
                             : "'...' may only end an array");
    if (c == '#')
        return s_check_fail (self, p, "'#' must follow 's'");
    if (c >= 0x20 && c < 0x7f)
        return s_check_fail (self, p, "unknown letter '%c'", c);
    return s_check_fail (self, p, "unexpected byte 0x%02x", c);
}

static int
    s_check_value (s_check_t *self, const char **pp, int depth);

static int
s_check_array (s_check_t *self, const char **pp, int depth)
{
    const char *open = *pp;
    const char *p = open + 1;
    while (true) {
        p = tri_fmt_skip_sep (p);
        if (*p == ']')
            break;
        if (*p == '\0')
            return s_check_fail (self, open, "'[' is never closed");
        if (self->mode == S_UNPACK && strncmp (p, "...", 3) == 0) {
            p = tri_fmt_skip_sep (p + 3);
            if (*p != ']')
                return s_check_fail (self, p, "'...' must be followed by ']'");
            break;
        }
        if (s_check_value (self, &p, depth))
            return -1;
    }
    *pp = p + 1;
    return 0;
}

static int
s_check_map (s_check_t *self, const char **pp, int depth)
{
    const char *open = *pp;
    const char *p = open + 1;
    while (true) {
        p = tri_fmt_skip_sep (p);
        if (*p == '}')
            break;
        if (*p == '\0')
            return s_check_fail (self, open, "'{' is never closed");
        if (*p == '?') {
            if (self->mode == S_PACK)
                return s_check_fail (self, p, "'?' is only for tr_unpack");
            p = tri_fmt_skip_sep (p + 1);
        }
        if (*p != 's') {
            if (*p == '\0')
                return s_check_fail (self, open, "'{' is never closed");
            if (*p == '}')
                return s_check_fail (self, p, "'?' must be followed by a key");
            return s_check_fail (self, p, "map key must be 's', got '%c'", *p);
        }
        p += p [1] == '#'? 2: 1;
        p = tri_fmt_skip_sep (p);
        if (*p == '}' || *p == '\0')
            return s_check_fail (self, p, "map key without a value");
        if (s_check_value (self, &p, depth))
            return -1;
    }
    *pp = p + 1;
    return 0;
}

//  Check the value starting at *pp and move *pp past it.
static int
s_check_value (s_check_t *self, const char **pp, int depth)
{
    const char *p = *pp;
    switch (*p) {
        case 'i': case 'I': case 'u': case 'f':
        case 'b': case 'n': case 'y': case 'o':
            *pp = p + 1;
            return 0;
        case 's':
            *pp = p + (p [1] == '#'? 2: 1);
            return 0;
        case '[':
        case '{':
            if (depth >= S_MAX_DEPTH)
                return s_check_fail (self, p, "nested deeper than %d", S_MAX_DEPTH);
            return *p == '['? s_check_array (self, pp, depth + 1)
                            : s_check_map (self, pp, depth + 1);
        default:
            return s_check_unexpected (self, p);
    }
}

//  Check that self->fmt describes exactly one value. Returns 0, or -1
//  with offset and why set.
static int
s_check (s_check_t *self)
{
    const char *p = tri_fmt_skip_sep (self->fmt);
    if (*p == '\0')
        return s_check_fail (self, p, "empty format");
    if (s_check_value (self, &p, 0))
        return -1;
    p = tri_fmt_skip_sep (p);
    if (*p)
        return s_check_fail (self, p, "trailing characters after the value");
    return 0;
}

//  Return the end of the group opening at p ('[' or '{'), just past its
//  matching bracket. The format has been checked.
static const char *
s_skip_group (const char *p)
{
    int depth = 0;
    do {
        if (*p == '[' || *p == '{')
            depth++;
        else
        if (*p == ']' || *p == '}')
            depth--;
        p++;
    } while (depth > 0 && *p);
    return p;
}

//  Count the items of the group whose first item is at p (keys and values
//  of a map count one each); set *more if they end with "...". The format
//  has been checked.
size_t
tri_fmt_count_items (const char *p, bool *more)
{
    size_t count = 0;
    while (true) {
        p = tri_fmt_skip_sep (p);
        switch (*p) {
            case ']':
            case '}':
            case '\0':
                return count;
            case '.':
                if (more)
                    *more = true;
                p += 3;
                break;
            case '?':
                p++;
                break;
            case '[':
            case '{':
                count++;
                p = s_skip_group (p);
                break;
            default:
                count++;
                p += (*p == 's' && p [1] == '#')? 2: 1;
                break;
        }
    }
}

int
tri_fmt_check (const char *fmt, bool unpack, size_t *offset, char *why, size_t why_size)
{
    s_check_t check = { .fmt = fmt, .mode = unpack? S_UNPACK: S_PACK };
    if (s_check (&check) == 0)
        return 0;
    *offset = check.offset;
    snprintf (why, why_size, "%s", check.why);
    return -1;
}

//  --------------------------------------------------------------------------
//  Args

//  While the runtime runs, its thread keeps destroyed args, buffers and
//  all, for the next ones it makes: a value packed to be sent and then
//  destroyed (a stream value, a reply, a call's arguments) costs no
//  allocation once one like it was made. Other threads allocate.
#define S_SPARES_MAX    16
#define S_SPARE_BYTES   4096    //  a larger buffer is freed, not kept

static tri_spares_t s_spares;
static _Thread_local bool s_spares_here;

static void
s_args_free (void *record)
{
    tr_args_t *args = record;
    free (args->sbuf.data);
    free (args);
}

void
tri_args_spares (bool on)
{
    s_spares_here = on;
    s_spares.max = on? S_SPARES_MAX: 0;
    if (!on)
        tri_spares_drain (&s_spares, s_args_free);
}

static tr_args_t *
s_args_new (size_t capacity)
{
    size_t alloc = TRI_ARGS_HEADROOM + (capacity? capacity: 1);
    tr_args_t *self = s_spares_here? tri_spares_pop (&s_spares): NULL;
    if (!self) {
        if (!(self = malloc (sizeof *self)))
            return NULL;
        self->sbuf.data = NULL;
        self->sbuf.alloc = 0;
    }
    //  A spare's buffer may be too small; a new one has none yet.
    if (self->sbuf.alloc < alloc) {
        char *data = realloc (self->sbuf.data, alloc);
        if (!data) {
            s_args_free (self);
            return NULL;
        }
        self->sbuf.data = data;
        self->sbuf.alloc = alloc;
    }
    self->depth = 0;
    self->sbuf.size = TRI_ARGS_HEADROOM;
    return self;
}

//  --------------------------------------------------------------------------
//  Encode a copy of a msgpack object.

//  How many bytes msgpack-c encodes o in (an upper bound: every header at
//  its largest), so that a copy of a large value is one allocation.
static size_t
s_encoded_bound (const msgpack_object *o)
{
    switch (o->type) {
        case MSGPACK_OBJECT_STR:
            return 5 + o->via.str.size;
        case MSGPACK_OBJECT_BIN:
            return 5 + o->via.bin.size;
        case MSGPACK_OBJECT_EXT:
            return 6 + o->via.ext.size;
        case MSGPACK_OBJECT_ARRAY: {
            size_t size = 5;
            for (uint32_t i = 0; i < o->via.array.size; i++)
                size += s_encoded_bound (&o->via.array.ptr [i]);
            return size;
        }
        case MSGPACK_OBJECT_MAP: {
            size_t size = 5;
            for (uint32_t i = 0; i < o->via.map.size; i++)
                size += s_encoded_bound (&o->via.map.ptr [i].key)
                      + s_encoded_bound (&o->via.map.ptr [i].val);
            return size;
        }
        default:
            return 9;
    }
}

tr_args_t *
tr_args_from_object (const msgpack_object *o)
{
    if (!o)
        return NULL;
    tr_args_t *self = s_args_new (s_encoded_bound (o));
    if (!self)
        return NULL;
    msgpack_packer pk;
    msgpack_packer_init (&pk, &self->sbuf, msgpack_sbuffer_write);
    if (msgpack_pack_object (&pk, *o))
        tr_args_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  Destroy args; NULL-safe, NULLs the caller's pointer.

void
tr_args_destroy (tr_args_t **args)
{
    if (!args || !*args)
        return;
    tr_args_t *self = *args;
    *args = NULL;
    //  (A large reply's buffer was handed to libzmq: no data.)
    bool keep = s_spares_here && self->sbuf.data && self->sbuf.alloc <= S_SPARE_BYTES;
    if (!keep || !tri_spares_push (&s_spares, self))
        s_args_free (self);
}

//  --------------------------------------------------------------------------
//  The encoded bytes.

const void *
tr_args_data (const tr_args_t *args)
{
    return args? tri_args_bytes (args): NULL;
}

size_t
tr_args_size (const tr_args_t *args)
{
    return args? tri_args_len (args): 0;
}

//  --------------------------------------------------------------------------
//  Pack

typedef struct {
    msgpack_packer pk;
    const char *fmt;
    const char *p;              //  next letter
    va_list ap;
    int rc;                     //  set when an argument was refused
} s_packer_t;

static int
s_pack_refuse (s_packer_t *self, int rc, const char *at, const char *what)
{
    tr_log (TR_LOG_WARNING, "TR-PACK-ARG", "%s at offset %zu of format \"%s\"",
            what, (size_t) (at - self->fmt), self->fmt);
    self->rc = rc;
    return -1;
}

static int
s_pack_str (s_packer_t *self, const char *at, const char *s, size_t size)
{
    if (size > UINT32_MAX)
        return s_pack_refuse (self, TR_ETOOBIG, at, "string longer than 4 GiB");
    return msgpack_pack_str (&self->pk, size)
        || msgpack_pack_str_body (&self->pk, s, size);
}

//  Pack the value at self->p and move past it. Returns 0, or -1 with
//  self->rc set when an argument was refused (else out of memory).
static int
s_pack_value (s_packer_t *self)
{
    msgpack_packer *pk = &self->pk;
    const char *at = self->p;
    self->p++;
    switch (*at) {
        case 'i':
            return msgpack_pack_int (pk, va_arg (self->ap, int));
        case 'I':
            return msgpack_pack_int64 (pk, va_arg (self->ap, int64_t));
        case 'u':
            return msgpack_pack_uint64 (pk, va_arg (self->ap, uint64_t));
        case 'f':
            return msgpack_pack_double (pk, va_arg (self->ap, double));
        case 'b':
            return va_arg (self->ap, int)? msgpack_pack_true (pk)
                                         : msgpack_pack_false (pk);
        case 'n':
            return msgpack_pack_nil (pk);
        case 's': {
            const char *s = va_arg (self->ap, const char *);
            size_t size;
            if (*self->p == '#') {
                self->p++;
                size = va_arg (self->ap, size_t);
            }
            else
                size = s? strlen (s): 0;
            if (!s)
                return msgpack_pack_nil (pk);
            return s_pack_str (self, at, s, size);
        }
        case 'y': {
            const void *bytes = va_arg (self->ap, const void *);
            size_t size = va_arg (self->ap, size_t);
            if (!bytes && size)
                return s_pack_refuse (self, TR_EINVAL, at, "NULL bytes with a non-zero size");
            if (size > UINT32_MAX)
                return s_pack_refuse (self, TR_ETOOBIG, at, "bytes longer than 4 GiB");
            return msgpack_pack_bin (pk, size)
                || msgpack_pack_bin_body (pk, bytes, size);
        }
        case 'o': {
            const msgpack_object *o = va_arg (self->ap, const msgpack_object *);
            return o? msgpack_pack_object (pk, *o): msgpack_pack_nil (pk);
        }
        case '[': {
            if (msgpack_pack_array (pk, tri_fmt_count_items (self->p, NULL)))
                return -1;
            while (true) {
                self->p = tri_fmt_skip_sep (self->p);
                if (*self->p == ']')
                    break;
                if (s_pack_value (self))
                    return -1;
            }
            self->p++;
            return 0;
        }
        case '{': {
            if (msgpack_pack_map (pk, tri_fmt_count_items (self->p, NULL) / 2))
                return -1;
            while (true) {
                self->p = tri_fmt_skip_sep (self->p);
                if (*self->p == '}')
                    break;
                const char *key_at = self->p++;         //  's', checked
                const char *key = va_arg (self->ap, const char *);
                size_t size;
                if (*self->p == '#') {
                    self->p++;
                    size = va_arg (self->ap, size_t);
                }
                else
                    size = key? strlen (key): 0;
                if (!key)
                    return s_pack_refuse (self, TR_EINVAL, key_at, "NULL map key");
                if (s_pack_str (self, key_at, key, size))
                    return -1;
                self->p = tri_fmt_skip_sep (self->p);
                if (s_pack_value (self))
                    return -1;
            }
            self->p++;
            return 0;
        }
        default:
            assert (false);             //  the format was checked
            return -1;
    }
}

//  Encode per fmt into *args_p. Returns 0, TR_EFORMAT, TR_EINVAL,
//  TR_ETOOBIG or TR_ENOMEM, each logged.
static int
s_vpack (const char *fmt, va_list ap, tr_args_t **args_p)
{
    if (!fmt) {
        tr_log (TR_LOG_WARNING, "TR-PACK-FORMAT", "format is NULL");
        return TR_EINVAL;
    }
    s_check_t check = { .fmt = fmt, .mode = S_PACK };
    if (s_check (&check)) {
        tr_log (TR_LOG_WARNING, "TR-PACK-FORMAT", "%s at offset %zu of format \"%s\"",
                check.why, check.offset, fmt);
        return TR_EFORMAT;
    }
    tr_args_t *args = s_args_new (S_ARGS_INIT);
    if (!args) {
        tr_log (TR_LOG_WARNING, "TR-PACK-NOMEM", "out of memory packing \"%s\"", fmt);
        return TR_ENOMEM;
    }
    s_packer_t self = { .fmt = fmt, .p = tri_fmt_skip_sep (fmt), .rc = 0 };
    msgpack_packer_init (&self.pk, &args->sbuf, msgpack_sbuffer_write);
    va_copy (self.ap, ap);
    int rc = s_pack_value (&self);
    va_end (self.ap);
    if (rc) {
        tr_args_destroy (&args);
        if (self.rc)
            return self.rc;
        tr_log (TR_LOG_WARNING, "TR-PACK-NOMEM", "out of memory packing \"%s\"", fmt);
        return TR_ENOMEM;
    }
    *args_p = args;
    return 0;
}

//  --------------------------------------------------------------------------
//  Encode a value; NULL (with the reason logged) if fmt is malformed or out
//  of memory.

tr_args_t *
tr_pack (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    tr_args_t *args = tr_vpack (fmt, ap);
    va_end (ap);
    return args;
}

tr_args_t *
tr_vpack (const char *fmt, va_list ap)
{
    tr_args_t *args = NULL;
    s_vpack (fmt, ap, &args);
    return args;
}

//  --------------------------------------------------------------------------
//  Values

//  Copy what o's strings (and, if all, its bin and ext payloads) point at
//  into zone, strings with a NUL after them, and repoint o at the copies.
static int
s_value_own (msgpack_object *o, msgpack_zone *zone, bool all)
{
    switch (o->type) {
        case MSGPACK_OBJECT_STR: {
            uint32_t size = o->via.str.size;
            char *copy = msgpack_zone_malloc_no_align (zone, (size_t) size + 1);
            if (!copy)
                return TR_ENOMEM;
            if (size)
                memcpy (copy, o->via.str.ptr, size);
            copy [size] = '\0';
            o->via.str.ptr = copy;
            return 0;
        }
        case MSGPACK_OBJECT_BIN:
        case MSGPACK_OBJECT_EXT: {
            if (!all)
                return 0;
            bool bin = o->type == MSGPACK_OBJECT_BIN;
            uint32_t size = bin? o->via.bin.size: o->via.ext.size;
            if (size == 0)
                return 0;
            char *copy = msgpack_zone_malloc_no_align (zone, size);
            if (!copy)
                return TR_ENOMEM;
            memcpy (copy, bin? o->via.bin.ptr: o->via.ext.ptr, size);
            if (bin)
                o->via.bin.ptr = copy;
            else
                o->via.ext.ptr = copy;
            return 0;
        }
        case MSGPACK_OBJECT_ARRAY:
            for (uint32_t i = 0; i < o->via.array.size; i++)
                if (s_value_own (&o->via.array.ptr [i], zone, all))
                    return TR_ENOMEM;
            return 0;
        case MSGPACK_OBJECT_MAP:
            for (uint32_t i = 0; i < o->via.map.size; i++)
                if (s_value_own (&o->via.map.ptr [i].key, zone, all)
                ||  s_value_own (&o->via.map.ptr [i].val, zone, all))
                    return TR_ENOMEM;
            return 0;
        default:
            return 0;
    }
}

//  --------------------------------------------------------------------------
//  Copy every string of o into zone with a NUL after it.

int
tri_value_cstrings (msgpack_object *o, msgpack_zone *zone)
{
    assert (o);
    assert (zone);
    return s_value_own (o, zone, false);
}

//  --------------------------------------------------------------------------
//  New value owning owner (taken even on failure).

tr_value_t *
tri_value_new (const msgpack_object *o, void *owner, void (*owner_free) (void *))
{
    assert (o);
    tr_value_t *self = malloc (sizeof *self);
    if (!self) {
        if (owner && owner_free)
            owner_free (owner);
        return NULL;
    }
    self->object = *o;
    self->owner = owner;
    self->owner_free = owner_free;
    self->inside_owner = false;
    return self;
}

//  --------------------------------------------------------------------------
//  The object of a value.

const msgpack_object *
tr_value_object (const tr_value_t *value)
{
    return value? &value->object: NULL;
}

static void
s_zone_free (void *zone)
{
    msgpack_zone_free (zone);
}

//  --------------------------------------------------------------------------
//  Decode encoded msgpack bytes into a new value; NULL on malformed input.

tr_value_t *
tr_value_decode (const void *data, size_t size)
{
    //  msgpack-c allocates a container's items as soon as it reads its
    //  header: five bytes claiming four billion items must not reach it.
    tri_limits_t limits = { size, TRI_DEFAULT_MAX_DEPTH };
    if (!data || size == 0 || tri_msg_check (data, size, &limits, NULL, 0))
        return NULL;
    msgpack_unpacked result;
    msgpack_unpacked_init (&result);
    size_t offset = 0;
    msgpack_unpack_return ret = msgpack_unpack_next (&result, data, size, &offset);
    if (ret != MSGPACK_UNPACK_SUCCESS || offset != size) {
        msgpack_unpacked_destroy (&result);
        return NULL;
    }
    //  The objects refer to data for their strings and bytes: copy those
    //  into the zone, which msgpack made only if there was a container.
    msgpack_object object = result.data;
    msgpack_zone *zone = msgpack_unpacked_release_zone (&result);
    if (!zone
    &&  (object.type == MSGPACK_OBJECT_STR
    ||   object.type == MSGPACK_OBJECT_BIN
    ||   object.type == MSGPACK_OBJECT_EXT)) {
        zone = msgpack_zone_new (size + 64);
        if (!zone)
            return NULL;
    }
    if (zone && s_value_own (&object, zone, true)) {
        msgpack_zone_free (zone);
        return NULL;
    }
    return tri_value_new (&object, zone, zone? s_zone_free: NULL);
}

//  --------------------------------------------------------------------------
//  Destroy a value and the memory it lives in; NULL-safe.

void
tr_value_destroy (tr_value_t **value)
{
    if (!value || !*value)
        return;
    tr_value_t *self = *value;
    *value = NULL;
    bool inside = self->inside_owner;
    if (self->owner && self->owner_free)
        self->owner_free (self->owner);
    if (!inside)
        free (self);
}

//  --------------------------------------------------------------------------
//  Replies

static void
s_reply_replace (tr_reply_t *out, tr_args_t *value)
{
    tr_args_destroy (&out->value);
    out->value = value;
    out->echo = false;
}

//  --------------------------------------------------------------------------
//  Set the call's result to a copy of value.

int
tr_reply_set (tr_reply_t *out, const tr_args_t *value)
{
    if (!out || !value)
        return TR_EINVAL;
    tr_args_t *copy = s_args_new (tri_args_len (value));
    if (!copy)
        return TR_ENOMEM;
    memcpy (copy->sbuf.data, value->sbuf.data, value->sbuf.size);
    copy->sbuf.size = value->sbuf.size;
    s_reply_replace (out, copy);
    return 0;
}

//  --------------------------------------------------------------------------
//  Set the call's result from a tr_pack format.

int
tr_reply_pack (tr_reply_t *out, const char *fmt, ...)
{
    if (!out || !fmt)
        return TR_EINVAL;
    tr_args_t *value = NULL;
    va_list ap;
    va_start (ap, fmt);
    int rc = s_vpack (fmt, ap, &value);
    va_end (ap);
    if (rc)
        return rc;
    s_reply_replace (out, value);
    return 0;
}

//  --------------------------------------------------------------------------
//  Set the call's result to a copy of a msgpack object.

int
tr_reply_object (tr_reply_t *out, const msgpack_object *value)
{
    if (!out || !value)
        return TR_EINVAL;
    if (value == out->args) {
        //  The arguments themselves: their bytes in the request are the
        //  answer's (serve.c sends them from there, without a copy).
        s_reply_replace (out, NULL);
        out->echo = true;
        return 0;
    }
    tr_args_t *copy = tr_args_from_object (value);
    if (!copy)
        return TR_ENOMEM;
    s_reply_replace (out, copy);
    return 0;
}
