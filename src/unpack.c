/*  =========================================================================
    unpack.c - tr_unpack: read a msgpack object through a format

    The same letters as tr_pack, taking pointers. The format is checked
    whole first (value.c), then walked beside the object; a mismatch says
    where it is with a path ("at [1].name: expected string, got int")
    built from frames on the C stack and rendered only on failure. Nothing
    here allocates, and nothing logs: the caller decides what a mismatch
    means.
    =========================================================================
*/
#include "troupe_private.h"
#include <inttypes.h>
#include <limits.h>

//  One step of the path from the top-level object to the one being read.
typedef struct s_path s_path_t;
struct s_path {
    const s_path_t *up;         //  NULL at the top level
    const char *key;            //  map key, or NULL for an array index
    size_t key_len;
    size_t index;
};

typedef struct {
    const char *fmt;
    const char *p;              //  next letter
    va_list ap;
    char *msg;                  //  where to say what went wrong, or NULL
    size_t msg_size;
} s_unpacker_t;

static void
s_path_render (const s_path_t *path, char *buf, size_t size, size_t *len)
{
    if (!path)
        return;
    s_path_render (path->up, buf, size, len);
    if (*len + 1 >= size)
        return;
    int n;
    if (path->key) {
        int key_len = path->key_len > 100? 100: (int) path->key_len;
        n = snprintf (buf + *len, size - *len, ".%.*s", key_len, path->key);
    }
    else
        n = snprintf (buf + *len, size - *len, "[%zu]", path->index);
    if (n > 0)
        *len = *len + (size_t) n < size? *len + (size_t) n: size - 1;
}

static int
s_mismatch (s_unpacker_t *self, int rc, const s_path_t *path, const char *fmt, ...)
    TR_PRINTF (4, 5);

//  Write "at <path>: <reason>" into the caller's msg; return rc.
static int
s_mismatch (s_unpacker_t *self, int rc, const s_path_t *path, const char *fmt, ...)
{
    if (!self->msg || self->msg_size == 0)
        return rc;
    char where [256] = "";
    size_t len = 0;
    s_path_render (path, where, sizeof where, &len);
    int n = snprintf (self->msg, self->msg_size, "at %s: ", len? where: "top level");
    if (n >= 0 && (size_t) n < self->msg_size) {
        va_list ap;
        va_start (ap, fmt);
        vsnprintf (self->msg + n, self->msg_size - (size_t) n, fmt, ap);
        va_end (ap);
    }
    return rc;
}

static const char *
s_type_name (const msgpack_object *o)
{
    switch (o->type) {
        case MSGPACK_OBJECT_NIL:                return "nil";
        case MSGPACK_OBJECT_BOOLEAN:            return "bool";
        case MSGPACK_OBJECT_POSITIVE_INTEGER:   return "int";
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:   return "int";
        case MSGPACK_OBJECT_FLOAT32:            return "float";
        case MSGPACK_OBJECT_FLOAT64:            return "float";
        case MSGPACK_OBJECT_STR:                return "string";
        case MSGPACK_OBJECT_BIN:                return "bin";
        case MSGPACK_OBJECT_ARRAY:              return "array";
        case MSGPACK_OBJECT_MAP:                return "map";
        case MSGPACK_OBJECT_EXT:                return "ext";
    }
    return "unknown";
}

static bool
s_is_int (const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER
        || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
}

//  An integer as signed, or false if it is above INT64_MAX.
static bool
s_int64 (const msgpack_object *o, int64_t *value)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *value = o->via.i64;
        return true;
    }
    if (o->via.u64 > INT64_MAX)
        return false;
    *value = (int64_t) o->via.u64;
    return true;
}

//  Say an integer did not fit the letter.
static int
s_out_of_range (s_unpacker_t *self, const s_path_t *path, const msgpack_object *o,
                const char *what)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return s_mismatch (self, TR_EFORMAT, path, "expected %s, got %" PRId64 " (out of range)",
                           what, o->via.i64);
    return s_mismatch (self, TR_EFORMAT, path, "expected %s, got %" PRIu64 " (out of range)",
                       what, o->via.u64);
}

const msgpack_object *
tri_value_map_get (const msgpack_object *map, const char *key, size_t key_len)
{
    const msgpack_object_kv *kv = map->via.map.ptr;
    for (uint32_t i = 0; i < map->via.map.size; i++, kv++)
        if (kv->key.type == MSGPACK_OBJECT_STR
        &&  kv->key.via.str.size == key_len
        &&  (key_len == 0 || memcmp (kv->key.via.str.ptr, key, key_len) == 0))
            return &kv->val;
    return NULL;
}

//  Read the value at self->p from o into the next pointers and move past
//  it. o == NULL skips: pointers are consumed, nothing is written (an
//  absent optional key). A NULL pointer reads without storing.
static int
s_unpack_value (s_unpacker_t *self, const msgpack_object *o, const s_path_t *path)
{
    const char letter = *self->p++;
    switch (letter) {
        case 'i': {
            int *out = va_arg (self->ap, int *);
            if (!o)
                return 0;
            if (!s_is_int (o))
                return s_mismatch (self, TR_EFORMAT, path, "expected int, got %s", s_type_name (o));
            int64_t value;
            if (!s_int64 (o, &value) || value < INT_MIN || value > INT_MAX)
                return s_out_of_range (self, path, o, "int");
            if (out)
                *out = (int) value;
            return 0;
        }
        case 'I': {
            int64_t *out = va_arg (self->ap, int64_t *);
            if (!o)
                return 0;
            if (!s_is_int (o))
                return s_mismatch (self, TR_EFORMAT, path, "expected int, got %s", s_type_name (o));
            int64_t value;
            if (!s_int64 (o, &value))
                return s_out_of_range (self, path, o, "int64");
            if (out)
                *out = value;
            return 0;
        }
        case 'u': {
            uint64_t *out = va_arg (self->ap, uint64_t *);
            if (!o)
                return 0;
            if (!s_is_int (o))
                return s_mismatch (self, TR_EFORMAT, path, "expected unsigned int, got %s",
                                   s_type_name (o));
            if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 < 0)
                return s_out_of_range (self, path, o, "unsigned int");
            if (out)
                *out = o->via.u64;      //  a non-negative i64 reads the same
            return 0;
        }
        case 'f': {
            double *out = va_arg (self->ap, double *);
            if (!o)
                return 0;
            double value;
            if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
                value = o->via.f64;
            else
            if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                value = (double) o->via.u64;
            else
            if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                value = (double) o->via.i64;
            else
                return s_mismatch (self, TR_EFORMAT, path, "expected number, got %s",
                                   s_type_name (o));
            if (out)
                *out = value;
            return 0;
        }
        case 'b': {
            bool *out = va_arg (self->ap, bool *);
            if (!o)
                return 0;
            if (o->type != MSGPACK_OBJECT_BOOLEAN)
                return s_mismatch (self, TR_EFORMAT, path, "expected bool, got %s",
                                   s_type_name (o));
            if (out)
                *out = o->via.boolean;
            return 0;
        }
        case 'n':
            if (o && o->type != MSGPACK_OBJECT_NIL)
                return s_mismatch (self, TR_EFORMAT, path, "expected nil, got %s", s_type_name (o));
            return 0;
        case 's': {
            const char **out = va_arg (self->ap, const char **);
            size_t *size = NULL;
            if (*self->p == '#') {
                self->p++;
                size = va_arg (self->ap, size_t *);
            }
            if (!o)
                return 0;
            if (o->type != MSGPACK_OBJECT_STR)
                return s_mismatch (self, TR_EFORMAT, path, "expected string, got %s",
                                   s_type_name (o));
            if (out)
                *out = o->via.str.ptr? o->via.str.ptr: "";
            if (size)
                *size = o->via.str.size;
            return 0;
        }
        case 'y': {
            const void **out = va_arg (self->ap, const void **);
            size_t *size = va_arg (self->ap, size_t *);
            if (!o)
                return 0;
            if (o->type != MSGPACK_OBJECT_BIN && o->type != MSGPACK_OBJECT_STR)
                return s_mismatch (self, TR_EFORMAT, path, "expected bytes, got %s",
                                   s_type_name (o));
            //  bin and str share their layout in msgpack_object
            if (out)
                *out = o->type == MSGPACK_OBJECT_BIN? (const void *) o->via.bin.ptr
                                                    : (const void *) o->via.str.ptr;
            if (size)
                *size = o->type == MSGPACK_OBJECT_BIN? o->via.bin.size: o->via.str.size;
            return 0;
        }
        case 'o': {
            const msgpack_object **out = va_arg (self->ap, const msgpack_object **);
            if (o && out)
                *out = o;
            return 0;
        }
        case '[': {
            if (o) {
                if (o->type != MSGPACK_OBJECT_ARRAY)
                    return s_mismatch (self, TR_EFORMAT, path, "expected array, got %s",
                                       s_type_name (o));
                bool more = false;
                size_t want = tri_fmt_count_items (self->p, &more);
                size_t have = o->via.array.size;
                if (more? have < want: have != want)
                    return s_mismatch (self, TR_EFORMAT, path,
                                       "expected array of %s%zu element%s, got %zu",
                                       more? "at least ": "", want, want == 1? "": "s", have);
            }
            for (size_t index = 0;; index++) {
                self->p = tri_fmt_skip_sep (self->p);
                if (*self->p == ']')
                    break;
                if (*self->p == '.') {          //  "...", then ']'
                    self->p = tri_fmt_skip_sep (self->p + 3);
                    break;
                }
                s_path_t step = { path, NULL, 0, index };
                int rc = s_unpack_value (self, o? &o->via.array.ptr [index]: NULL, &step);
                if (rc)
                    return rc;
            }
            self->p++;
            return 0;
        }
        case '{': {
            if (o && o->type != MSGPACK_OBJECT_MAP)
                return s_mismatch (self, TR_EFORMAT, path, "expected map, got %s",
                                   s_type_name (o));
            while (true) {
                self->p = tri_fmt_skip_sep (self->p);
                if (*self->p == '}')
                    break;
                bool optional = false;
                if (*self->p == '?') {
                    optional = true;
                    self->p = tri_fmt_skip_sep (self->p + 1);
                }
                self->p++;                      //  's', checked
                const char *key = va_arg (self->ap, const char *);
                size_t key_len;
                if (*self->p == '#') {
                    self->p++;
                    key_len = va_arg (self->ap, size_t);
                }
                else
                    key_len = key? strlen (key): 0;
                if (!key)
                    return s_mismatch (self, TR_EINVAL, path, "map key argument is NULL");
                self->p = tri_fmt_skip_sep (self->p);
                const msgpack_object *value = o? tri_value_map_get (o, key, key_len): NULL;
                if (o && !value && !optional)
                    return s_mismatch (self, TR_EFORMAT, path, "missing key \"%.*s\"",
                                       key_len > 100? 100: (int) key_len, key);
                s_path_t step = { path, key, key_len, 0 };
                int rc = s_unpack_value (self, value, &step);
                if (rc)
                    return rc;
            }
            self->p++;
            return 0;
        }
        default:
            assert (false);             //  the format was checked
            return TR_EFORMAT;
    }
}

static int
s_vunpack (const msgpack_object *o, char *msg, size_t msg_size,
           const char *fmt, va_list ap)
{
    s_unpacker_t self = { .fmt = fmt, .msg = msg, .msg_size = msg_size };
    if (!o || !fmt) {
        if (msg && msg_size)
            snprintf (msg, msg_size, "%s is NULL", o? "format": "object");
        return TR_EINVAL;
    }
    size_t offset;
    char why [96];
    if (tri_fmt_check (fmt, true, &offset, why, sizeof why)) {
        if (msg && msg_size)
            snprintf (msg, msg_size, "malformed format at offset %zu: %s", offset, why);
        return TR_EFORMAT;
    }
    self.p = tri_fmt_skip_sep (fmt);
    va_copy (self.ap, ap);
    int rc = s_unpack_value (&self, o, NULL);
    va_end (self.ap);
    return rc;
}

//  --------------------------------------------------------------------------
//  Decode o per fmt. Returns 0, TR_EFORMAT or TR_EINVAL.

int
tr_unpack (const msgpack_object *o, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    int rc = s_vunpack (o, NULL, 0, fmt, ap);
    va_end (ap);
    return rc;
}

int
tr_vunpack (const msgpack_object *o, const char *fmt, va_list ap)
{
    return s_vunpack (o, NULL, 0, fmt, ap);
}

//  --------------------------------------------------------------------------
//  Decode o per fmt; on failure write the reason into msg.

int
tr_unpack_ex (const msgpack_object *o, char *msg, size_t msg_size,
              const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    int rc = s_vunpack (o, msg, msg_size, fmt, ap);
    va_end (ap);
    return rc;
}


const msgpack_object *
tri_map_get (const msgpack_object *map, const char *key)
{
    return tri_value_map_get (map, key, strlen (key));
}
