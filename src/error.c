/*  =========================================================================
    error.c - boxed errors: code, type, message, origin and traceback

    An error that crosses actors keeps where it arose (origin uid and the C
    frames there) and gains one hop per actor that relays it (rule 5), so
    the task that finally gets it can print the whole chain. Lists of
    errors (a nursery's) are linked through next.
    =========================================================================
*/
#include "troupe_private.h"
#include <execinfo.h>

#include "tri_error_impl.h"

void
tri_error_set_code (tr_error_t *self, int code)
{
    if (self)
        self->code = code;
}

void
tri_error_set_exit (tr_error_t *self, int exit_status, int signal)
{
    if (self) {
        self->exit_status = exit_status;
        self->signal = signal;
    }
}

//  --------------------------------------------------------------------------
//  Return codes

const char *
tr_strerror (int rc)
{
    switch (rc) {
        case 0:
            return "success";
#define TR_ERRORS_TEXT(name, value, text) case value: return text;
        TR_ERRORS (TR_ERRORS_TEXT)
#undef TR_ERRORS_TEXT
        default:
            return "unknown error code";
    }
}

const char *
tr_errname (int rc)
{
    switch (rc) {
        case 0:
            return "OK";
#define TR_ERRORS_NAME(name, value, text) case value: return #name;
        TR_ERRORS (TR_ERRORS_NAME)
#undef TR_ERRORS_NAME
        default:
            return "EUNKNOWN";
    }
}

//  --------------------------------------------------------------------------
//  Construction

tr_error_t *
tri_error_newv (int code, const char *type, const char *origin,
                const char *fmt, va_list ap)
{
    tr_error_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->code = code;
    self->type = strdup (type? type: tr_errname (code));
    self->origin = strdup (origin? origin: "");
    self->frames = strdup ("");
    if (vasprintf (&self->message, fmt? fmt: "", ap) < 0)
        self->message = NULL;
    if (!self->type || !self->origin || !self->frames || !self->message
    ||  (origin && tri_error_add_hop (self, origin))) {
        tr_error_destroy (&self);
        return NULL;
    }
    return self;
}

tr_error_t *
tri_error_new (int code, const char *type, const char *origin, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    tr_error_t *self = tri_error_newv (code, type, origin, fmt, ap);
    va_end (ap);
    return self;
}

int
tri_error_add_hop (tr_error_t *self, const char *uid)
{
    assert (self && uid);
    if (self->nhops && strcmp (self->hops [self->nhops - 1], uid) == 0)
        return 0;
    char **hops = realloc (self->hops, (self->nhops + 1) * sizeof *hops);
    if (!hops)
        return TR_ENOMEM;
    self->hops = hops;
    if (!(hops [self->nhops] = strdup (uid)))
        return TR_ENOMEM;
    self->nhops++;
    return 0;
}

//  Frames come from backtrace(); symbol names need -rdynamic in the program
//  (addresses are printed either way and resolve with addr2line).

void
tri_error_capture_frames (tr_error_t *self, int skip)
{
    assert (self);
    void *addrs [32];
    int n = backtrace (addrs, 32);
    char **names = backtrace_symbols (addrs, n);
    if (!names)
        return;
    size_t size = 1;
    for (int i = skip + 1; i < n; i++)
        size += strlen (names [i]) + 1;
    char *frames = malloc (size);
    if (frames) {
        char *p = frames;
        for (int i = skip + 1; i < n; i++)
            p += sprintf (p, "%s\n", names [i]);
        *p = 0;
        free (self->frames);
        self->frames = frames;
    }
    free (names);
}

void
tri_error_append (tr_error_t **list, tr_error_t *other)
{
    assert (list);
    while (*list)
        list = &(*list)->next;
    *list = other;
}

//  --------------------------------------------------------------------------
//  Wire form: {"code": i, "type": s, "msg": s, "origin": s, "hops": [s],
//  "frames": s, "status": i, "signal": i}

void
tri_error_pack (msgpack_packer *pk, const tr_error_t *self)
{
    assert (pk && self);
    msgpack_pack_map (pk, 8);
    tri_msg_pack_str (pk, "code");
    msgpack_pack_int (pk, self->code);
    tri_msg_pack_str (pk, "type");
    tri_msg_pack_str (pk, self->type);
    tri_msg_pack_str (pk, "msg");
    tri_msg_pack_str (pk, self->message);
    tri_msg_pack_str (pk, "origin");
    tri_msg_pack_str (pk, self->origin);
    tri_msg_pack_str (pk, "hops");
    msgpack_pack_array (pk, self->nhops);
    for (size_t i = 0; i < self->nhops; i++)
        tri_msg_pack_str (pk, self->hops [i]);
    tri_msg_pack_str (pk, "frames");
    tri_msg_pack_str (pk, self->frames);
    tri_msg_pack_str (pk, "status");
    msgpack_pack_int (pk, self->exit_status);
    tri_msg_pack_str (pk, "signal");
    msgpack_pack_int (pk, self->signal);
}


static char *
s_strdup_obj (const msgpack_object *o)
{
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return NULL;
    return strndup (o->via.str.ptr, o->via.str.size);
}

static int
s_int_obj (const msgpack_object *o, int fallback)
{
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT32_MAX)
        return (int) o->via.u64;
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= INT32_MIN)
        return (int) o->via.i64;
    return fallback;
}

tr_error_t *
tri_error_unpack (const msgpack_object *o, const char *peer)
{
    if (!o || o->type != MSGPACK_OBJECT_MAP)
        return tri_error_new (TR_EPROTO, "ProtocolError", peer,
                              "%s sent an error body that is not a map", peer);
    const msgpack_object *type = tri_map_get (o, "type");
    const msgpack_object *msg = tri_map_get (o, "msg");
    const msgpack_object *origin = tri_map_get (o, "origin");
    if (!type || type->type != MSGPACK_OBJECT_STR
    ||  !msg || msg->type != MSGPACK_OBJECT_STR
    ||  !origin || origin->type != MSGPACK_OBJECT_STR)
        return tri_error_new (TR_EPROTO, "ProtocolError", peer,
                              "%s sent an error without type, msg or origin", peer);
    tr_error_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    int code = s_int_obj (tri_map_get (o, "code"), TR_EREMOTE);
    //  Only codes of our table travel; anything else is a remote error.
    self->code = strcmp (tr_errname (code), "EUNKNOWN") == 0 || code >= 0? TR_EREMOTE: code;
    self->type = s_strdup_obj (type);
    self->message = s_strdup_obj (msg);
    self->origin = s_strdup_obj (origin);
    self->frames = s_strdup_obj (tri_map_get (o, "frames"));
    if (!self->frames)
        self->frames = strdup ("");
    self->exit_status = s_int_obj (tri_map_get (o, "status"), 0);
    self->signal = s_int_obj (tri_map_get (o, "signal"), 0);
    const msgpack_object *hops = tri_map_get (o, "hops");
    if (hops && hops->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < hops->via.array.size && i < 256; i++) {
            char *hop = s_strdup_obj (&hops->via.array.ptr [i]);
            if (hop && tri_error_add_hop (self, hop) == 0) {
                free (hop);
                continue;
            }
            free (hop);
        }
    }
    //  As in tri_error_new: an origin is the first hop, "" (none) is not.
    if (self->nhops == 0 && self->origin && *self->origin)
        tri_error_add_hop (self, self->origin);
    if (!self->type || !self->message || !self->origin || !self->frames)
        tr_error_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  Accessors

int
tr_error_code (const tr_error_t *self)
{
    return self? self->code: TR_EINVAL;
}

const char *
tr_error_type (const tr_error_t *self)
{
    return self? self->type: NULL;
}

const char *
tr_error_message (const tr_error_t *self)
{
    return self? self->message: NULL;
}

const char *
tr_error_origin (const tr_error_t *self)
{
    return self? self->origin: NULL;
}

size_t
tr_error_hops (const tr_error_t *self)
{
    return self? self->nhops: 0;
}

const char *
tr_error_hop (const tr_error_t *self, size_t index)
{
    return self && index < self->nhops? self->hops [index]: NULL;
}

const char *
tr_error_frames (const tr_error_t *self)
{
    return self? self->frames: NULL;
}

int
tr_error_exit_status (const tr_error_t *self)
{
    return self? self->exit_status: 0;
}

int
tr_error_signal (const tr_error_t *self)
{
    return self? self->signal: 0;
}

const tr_error_t *
tr_error_next (const tr_error_t *self)
{
    return self? self->next: NULL;
}

//  --------------------------------------------------------------------------
//  The whole error as text: the remote traceback a user prints.

char *
tr_error_format (const tr_error_t *self)
{
    if (!self)
        return NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    if (!f)
        return NULL;
    for (const tr_error_t *e = self; e; e = e->next) {
        fprintf (f, "%s: %s\n", e->type, e->message);
        fprintf (f, "  raised in %s (%s)\n", e->origin, tr_errname (e->code));
        if (e->nhops > 1) {
            fprintf (f, "  relayed by");
            for (size_t i = 1; i < e->nhops; i++)
                fprintf (f, "%s %s", i > 1? " ->": "", e->hops [i]);
            fprintf (f, "\n");
        }
        if (e->signal)
            fprintf (f, "  killed by signal %d (%s)\n", e->signal, strsignal (e->signal));
        if (*e->frames) {
            fprintf (f, "  remote traceback:\n");
            const char *line = e->frames;
            while (*line) {
                const char *end = strchr (line, '\n');
                size_t len = end? (size_t) (end - line): strlen (line);
                fprintf (f, "    %.*s\n", (int) len, line);
                line += len + (end? 1: 0);
            }
        }
    }
    fclose (f);
    return text;
}

tr_error_t *
tr_error_dup (const tr_error_t *self)
{
    tr_error_t *head = NULL;
    tr_error_t **tail = &head;
    for (const tr_error_t *e = self; e; e = e->next) {
        tr_error_t *copy = calloc (1, sizeof *copy);
        if (!copy)
            goto fail;
        *tail = copy;
        tail = &copy->next;
        copy->code = e->code;
        copy->exit_status = e->exit_status;
        copy->signal = e->signal;
        copy->type = strdup (e->type);
        copy->message = strdup (e->message);
        copy->origin = strdup (e->origin);
        copy->frames = strdup (e->frames);
        if (!copy->type || !copy->message || !copy->origin || !copy->frames)
            goto fail;
        for (size_t i = 0; i < e->nhops; i++)
            if (tri_error_add_hop (copy, e->hops [i]))
                goto fail;
    }
    return head;
fail:
    tr_error_destroy (&head);
    return NULL;
}

void
tr_error_destroy (tr_error_t **self_p)
{
    if (!self_p)
        return;
    tr_error_t *self = *self_p;
    while (self) {
        tr_error_t *next = self->next;
        for (size_t i = 0; i < self->nhops; i++)
            free (self->hops [i]);
        free (self->hops);
        free (self->type);
        free (self->message);
        free (self->origin);
        free (self->frames);
        free (self);
        self = next;
    }
    *self_p = NULL;
}
