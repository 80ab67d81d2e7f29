/*  =========================================================================
    registry.c - the registry service: names to live actors, as leases

    One table of registrations, keyed by (name, uid), served as the
    library's own exports by a root that embeds the registry and by
    troupe-broker (which is such a root). A registration is a lease: it
    lasts lease_ms from the last time its actor registered it, so an actor
    that stops renewing is dropped; one that exits unregisters at once,
    and one that registered through a channel this actor watches (a child
    of ours, through its parent channel) is dropped as soon as that
    channel closes. Expired and dead registrations are dropped lazily:
    every read skips them, and a sweep at most every quarter lease frees
    them.

    Every field is checked (names, uids, endpoints, counts); a bad request
    is answered with an error and changes nothing. Memory is bounded: at
    most max registrations in all, TRI_REGISTRY_PER_PEER per peer and
    TRI_REGISTRY_WAITS_PER_PEER waits parked at once per peer, so one
    peer flooding the registry is refused while the others are served.

    Wire form (msgpack arrays, so a raw peer can speak it):
      tr.registry.register   [name, uid, endpoint, pid, host, parent]
                             -> {lease_ms}
      tr.registry.unregister [uid] or [uid, name]  -> nil
      tr.registry.find       [name]                -> [entry...]
      tr.registry.wait       [name, timeout_ms]    -> [entry...], maybe []
      tr.registry.list       [] or [name]          -> [entry...]
    entry: {name, uid, endpoint, pid, host, parent, expires_ms (-1: never),
            age_ms (since it was first registered)}
    =========================================================================
*/
#include "troupe_private.h"
#include "tri_registry.h"
#include <czmq.h>

#define TRI_REGISTRY_NAME_MAX       64
#define TRI_REGISTRY_UID_MAX        160
#define TRI_REGISTRY_ENDPOINT_MAX   256
#define TRI_REGISTRY_HOST_MAX       255
#define TRI_REGISTRY_PER_PEER       256
#define TRI_REGISTRY_WAIT_MAX_MS    (10 * 60 * 1000)
#define TRI_REGISTRY_WAITS_PER_PEER 64

typedef struct {
    char *name;
    char *uid;
    char *endpoint;
    char *host;
    char *parent;
    int pid;
    int64_t expires;            //  -1: our own, never expires
    int64_t since;              //  first registered
    tri_channel_t *channel;     //  registered through it, or NULL
    char *peer;                 //  who registered it, for the per-peer cap
    tri_node_t node;            //  in its name's list
} entry_t;

typedef struct {
    tri_list_t entries;
} name_t;

static struct {
    bool serving;
    int max;
    int lease_ms;
    zhashx_t *entries;          //  "name uid" -> entry_t
    zhashx_t *names;            //  name -> name_t
    zhashx_t *peers;            //  peer -> count (as a pointer)
    size_t count;
    int64_t next_sweep;
    tri_waitq_t waiters;        //  tasks in tr.registry.wait
} s_reg;

//  --------------------------------------------------------------------------
//  Checking fields

static bool
s_name_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '.' || c == '_' || c == '-';
}

bool
tri_registry_name_ok (const char *name, size_t len)
{
    if (len == 0 || len > TRI_REGISTRY_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_name_char (name [i]))
            return false;
    return true;
}

//  Printable ASCII without spaces.
static bool
s_printable (const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s [i] <= ' ' || s [i] > '~')
            return false;
    return true;
}

static bool
s_uid_ok (const char *uid, size_t len)
{
    const char *at = memchr (uid, '@', len);
    return len >= 3 && len <= TRI_REGISTRY_UID_MAX && at && at > uid
        && at < uid + len - 1 && s_printable (uid, len);
}

static bool
s_endpoint_ok (const char *ep, size_t len)
{
    static const char *schemes [] = { "tcp://", "ipc://", "inproc://" };
    if (len > TRI_REGISTRY_ENDPOINT_MAX || !s_printable (ep, len))
        return false;
    for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++) {
        size_t n = strlen (schemes [i]);
        if (len > n && strncmp (ep, schemes [i], n) == 0)
            return true;
    }
    return false;
}

static bool
s_host_ok (const char *host, size_t len)
{
    return len <= TRI_REGISTRY_HOST_MAX && s_printable (host, len);
}

//  Check every field of reg; say what is wrong in why.
static int
s_check (const tri_reg_t *reg, char *why, size_t why_size)
{
    if (!tri_registry_name_ok (reg->name, strlen (reg->name)))
        snprintf (why, why_size, "bad name '%.80s': 1 to %d of A-Z a-z 0-9 . _ -",
                  reg->name, TRI_REGISTRY_NAME_MAX);
    else
    if (!s_uid_ok (reg->uid, strlen (reg->uid)))
        snprintf (why, why_size, "bad uid '%.80s': NAME@ID, at most %d printable characters",
                  reg->uid, TRI_REGISTRY_UID_MAX);
    else
    if (!s_endpoint_ok (reg->endpoint, strlen (reg->endpoint)))
        snprintf (why, why_size, "bad endpoint '%.80s': tcp://, ipc:// or inproc://, "
                  "at most %d printable characters", reg->endpoint, TRI_REGISTRY_ENDPOINT_MAX);
    else
    if (reg->pid < 0)
        snprintf (why, why_size, "bad pid %d", reg->pid);
    else
    if (!s_host_ok (reg->host, strlen (reg->host)))
        snprintf (why, why_size, "bad host: at most %d printable characters",
                  TRI_REGISTRY_HOST_MAX);
    else
    if (*reg->parent && !s_uid_ok (reg->parent, strlen (reg->parent)))
        snprintf (why, why_size, "bad parent uid '%.80s'", reg->parent);
    else
        return 0;
    return TR_EINVAL;
}

//  --------------------------------------------------------------------------
//  The table

static size_t
s_peer_count (const char *peer)
{
    return (size_t) (uintptr_t) zhashx_lookup (s_reg.peers, peer);
}

static void
s_peer_add (const char *peer, int delta)
{
    size_t n = s_peer_count (peer) + (size_t) delta;
    if (n == 0)
        zhashx_delete (s_reg.peers, peer);
    else
        zhashx_update (s_reg.peers, peer, (void *) (uintptr_t) n);
}

static void
s_entry_free (entry_t *self)
{
    free (self->name);
    free (self->uid);
    free (self->endpoint);
    free (self->host);
    free (self->parent);
    free (self->peer);
    tri_channel_unref (&self->channel);
    free (self);
}

static void
s_key (char *key, size_t size, const char *name, const char *uid)
{
    snprintf (key, size, "%s %s", name, uid);
}

//  Take entry out of the table and free it.
static void
s_remove (entry_t *self)
{
    char key [TRI_REGISTRY_NAME_MAX + TRI_REGISTRY_UID_MAX + 2];
    s_key (key, sizeof key, self->name, self->uid);
    tri_node_unlink (&self->node);
    name_t *name = zhashx_lookup (s_reg.names, self->name);
    if (name && tri_list_empty (&name->entries)) {
        zhashx_delete (s_reg.names, self->name);
        free (name);
    }
    s_peer_add (self->peer, -1);
    zhashx_delete (s_reg.entries, key);
    s_reg.count--;
    s_entry_free (self);
}

static bool
s_alive (const entry_t *self, int64_t now)
{
    if (self->expires >= 0 && now >= self->expires)
        return false;
    return !self->channel || !tri_channel_closed (self->channel);
}

//  Free what expired or died, at most every quarter lease (or when full).
static void
s_sweep (bool force)
{
    int64_t now = tri_now_ms ();
    if (!force && now < s_reg.next_sweep)
        return;
    s_reg.next_sweep = now + s_reg.lease_ms / 4;
    zlistx_t *dead = zlistx_new ();
    if (!dead)
        return;
    for (entry_t *e = zhashx_first (s_reg.entries); e; e = zhashx_next (s_reg.entries))
        if (!s_alive (e, now))
            zlistx_add_end (dead, e);
    for (entry_t *e = zlistx_first (dead); e; e = zlistx_next (dead)) {
        tri_log_debug ("TR-REGISTRY", "%s (%s) dropped: %s", e->name, e->uid,
                       e->expires >= 0 && now >= e->expires? "lease expired": "gone");
        s_remove (e);
    }
    zlistx_destroy (&dead);
}

static char *
s_strdup (const char *s)
{
    return strdup (s? s: "");
}

//  Add or renew reg for peer (channel: the one it came through, or
//  NULL). Returns 0, TR_EINVAL or TR_ENOMEM (full), with why.
static int
s_put (const tri_reg_t *reg, tri_channel_t *channel, const char *peer, bool local,
       char *why, size_t why_size)
{
    int rc = s_check (reg, why, why_size);
    if (rc)
        return rc;
    s_sweep (false);
    char key [TRI_REGISTRY_NAME_MAX + TRI_REGISTRY_UID_MAX + 2];
    s_key (key, sizeof key, reg->name, reg->uid);
    //  A lease is the registry's own reckoning in whole milliseconds, read
    //  back as expires_ms (at most lease_ms), not a wait: no rounding up.
    int64_t expires = local? -1: tri_now_ms () + s_reg.lease_ms;
    entry_t *self = zhashx_lookup (s_reg.entries, key);
    if (self && streq (self->endpoint, reg->endpoint)) {
        //  A renewal: the lease starts again, through whichever channel
        //  it came this time. One that had run out (or whose channel had
        //  closed) and was not swept yet is a registration again: those
        //  waiting for the name must hear of it as of a new one.
        bool revived = !s_alive (self, tri_now_ms ());
        self->expires = expires;
        self->pid = reg->pid;
        if (!streq (self->parent, reg->parent) || !streq (self->host, reg->host)) {
            char *parent = strdup (reg->parent), *host = strdup (reg->host);
            if (!parent || !host) {
                free (parent);
                free (host);
                snprintf (why, why_size, "out of memory");
                return TR_ENOMEM;
            }
            free (self->parent);
            free (self->host);
            self->parent = parent;
            self->host = host;
        }
        if (self->channel != channel) {
            tri_channel_unref (&self->channel);
            if ((self->channel = channel))
                tri_channel_ref (channel);
        }
        if (revived)
            tri_waitq_wake_all (&s_reg.waiters, 0);
        if (!streq (self->peer, peer)) {
            char *p = strdup (peer);
            if (!p)
                return TR_ENOMEM;
            s_peer_add (self->peer, -1);
            free (self->peer);
            self->peer = p;
            s_peer_add (peer, 1);
        }
        return 0;
    }
    if (self)
        s_remove (self);        //  the same actor at a new endpoint
    if (s_reg.count >= (size_t) s_reg.max) {
        s_sweep (true);
        if (s_reg.count >= (size_t) s_reg.max) {
            snprintf (why, why_size, "the registry is full (%d registrations)", s_reg.max);
            return TR_ENOMEM;
        }
    }
    if (*peer && s_peer_count (peer) >= TRI_REGISTRY_PER_PEER) {
        snprintf (why, why_size, "too many registrations from one peer (at most %d)",
                  TRI_REGISTRY_PER_PEER);
        return TR_ENOMEM;
    }
    self = calloc (1, sizeof *self);
    if (!self)
        goto nomem;
    self->name = s_strdup (reg->name);
    self->uid = s_strdup (reg->uid);
    self->endpoint = s_strdup (reg->endpoint);
    self->host = s_strdup (reg->host);
    self->parent = s_strdup (reg->parent);
    self->peer = s_strdup (peer);
    self->pid = reg->pid;
    self->expires = expires;
    self->since = tri_now_ms ();
    tri_node_init (&self->node);
    if (!self->name || !self->uid || !self->endpoint || !self->host || !self->parent || !self->peer)
        goto nomem;
    name_t *name = zhashx_lookup (s_reg.names, reg->name);
    if (!name) {
        if (!(name = malloc (sizeof *name)))
            goto nomem;
        tri_list_init (&name->entries);
        if (zhashx_insert (s_reg.names, reg->name, name)) {
            free (name);
            goto nomem;
        }
    }
    if (zhashx_insert (s_reg.entries, key, self))
        goto nomem;
    if ((self->channel = channel))
        tri_channel_ref (channel);
    tri_list_push_back (&name->entries, &self->node);
    s_peer_add (peer, 1);
    s_reg.count++;
    tri_log_debug ("TR-REGISTRY", "%s registered as %s at %s", reg->uid, reg->name, reg->endpoint);
    tri_waitq_wake_all (&s_reg.waiters, 0);
    return 0;
nomem:
    if (self)
        s_entry_free (self);
    snprintf (why, why_size, "out of memory");
    return TR_ENOMEM;
}

void
tri_registry_drop (const char *uid, const char *name)
{
    if (!s_reg.serving)
        return;
    if (name) {
        //  One registration, found by its key rather than by a walk
        //  through every registration in the table.
        char key [TRI_REGISTRY_NAME_MAX + TRI_REGISTRY_UID_MAX + 2];
        if (strlen (name) > TRI_REGISTRY_NAME_MAX || strlen (uid) > TRI_REGISTRY_UID_MAX)
            return;
        s_key (key, sizeof key, name, uid);
        entry_t *e = zhashx_lookup (s_reg.entries, key);
        if (e) {
            tri_log_debug ("TR-REGISTRY", "%s unregistered %s", e->uid, e->name);
            s_remove (e);
        }
        return;
    }
    zlistx_t *gone = zlistx_new ();
    if (!gone)
        return;
    for (entry_t *e = zhashx_first (s_reg.entries); e; e = zhashx_next (s_reg.entries))
        if (streq (e->uid, uid) && (!name || streq (e->name, name)))
            zlistx_add_end (gone, e);
    for (entry_t *e = zlistx_first (gone); e; e = zlistx_next (gone)) {
        tri_log_debug ("TR-REGISTRY", "%s unregistered %s", e->uid, e->name);
        s_remove (e);
    }
    zlistx_destroy (&gone);
}

static void
s_pack_entry (msgpack_packer *pk, const entry_t *e, int64_t now)
{
    msgpack_pack_map (pk, 8);
    tri_msg_pack_str (pk, "name");
    tri_msg_pack_str (pk, e->name);
    tri_msg_pack_str (pk, "uid");
    tri_msg_pack_str (pk, e->uid);
    tri_msg_pack_str (pk, "endpoint");
    tri_msg_pack_str (pk, e->endpoint);
    tri_msg_pack_str (pk, "pid");
    msgpack_pack_int (pk, e->pid);
    tri_msg_pack_str (pk, "host");
    tri_msg_pack_str (pk, e->host);
    tri_msg_pack_str (pk, "parent");
    tri_msg_pack_str (pk, e->parent);
    tri_msg_pack_str (pk, "expires_ms");
    msgpack_pack_int64 (pk, e->expires < 0? -1: e->expires - now);
    tri_msg_pack_str (pk, "age_ms");
    msgpack_pack_int64 (pk, now - e->since);
}

void
tri_registry_pack (const char *name, msgpack_packer *pk)
{
    int64_t now = tri_now_ms ();
    s_sweep (false);
    size_t n = 0;
    if (name) {
        name_t *entries = zhashx_lookup (s_reg.names, name);
        if (entries)
            tri_list_each (node, next, &entries->entries)
                n += s_alive (tri_list_entry (node, entry_t, node), now);
        msgpack_pack_array (pk, n);
        if (entries)
            tri_list_each (node, next, &entries->entries) {
                entry_t *e = tri_list_entry (node, entry_t, node);
                if (s_alive (e, now))
                    s_pack_entry (pk, e, now);
            }
        return;
    }
    for (entry_t *e = zhashx_first (s_reg.entries); e; e = zhashx_next (s_reg.entries))
        n += s_alive (e, now);
    msgpack_pack_array (pk, n);
    for (entry_t *e = zhashx_first (s_reg.entries); e; e = zhashx_next (s_reg.entries))
        if (s_alive (e, now))
            s_pack_entry (pk, e, now);
}

static bool
s_has (const char *name)
{
    name_t *entries = zhashx_lookup (s_reg.names, name);
    if (!entries)
        return false;
    int64_t now = tri_now_ms ();
    tri_list_each (node, next, &entries->entries)
        if (s_alive (tri_list_entry (node, entry_t, node), now))
            return true;
    return false;
}

int
tri_registry_wait (const char *name, int64_t deadline)
{
    while (!s_has (name)) {
        int rc = tri_waitq_wait (&s_reg.waiters, deadline);
        if (rc && !s_has (name))
            return rc;
    }
    return 0;
}

int
tri_registry_put_local (const tri_reg_t *reg, char *why, size_t why_size)
{
    assert (s_reg.serving);
    return s_put (reg, NULL, "", true, why, why_size);
}

//  --------------------------------------------------------------------------
//  The exports

//  A string item of an args array, NUL-terminated into buf; false if it
//  is missing, not a string or longer than size - 1.
static bool
s_item_str (const msgpack_object *args, uint32_t i, char *buf, size_t size, bool nil_ok)
{
    if (args->type != MSGPACK_OBJECT_ARRAY || i >= args->via.array.size)
        return false;
    const msgpack_object *o = &args->via.array.ptr [i];
    if (nil_ok && o->type == MSGPACK_OBJECT_NIL) {
        buf [0] = 0;
        return true;
    }
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size
    ||  memchr (o->via.str.ptr, 0, o->via.str.size))
        return false;
    memcpy (buf, o->via.str.ptr, o->via.str.size);
    buf [o->via.str.size] = 0;
    return true;
}

static bool
s_item_int (const msgpack_object *args, uint32_t i, int64_t min, int64_t max, int64_t *value)
{
    if (args->type != MSGPACK_OBJECT_ARRAY || i >= args->via.array.size)
        return false;
    const msgpack_object *o = &args->via.array.ptr [i];
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t) INT64_MAX)
        *value = (int64_t) o->via.u64;
    else
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *value = o->via.i64;
    else
        return false;
    return *value >= min && *value <= max;
}

static uint32_t
s_count (const msgpack_object *args)
{
    return args->type == MSGPACK_OBJECT_ARRAY? args->via.array.size: UINT32_MAX;
}

static int
s_bad (tr_ctx_t *ctx, const char *fn, const char *form)
{
    return tr_raise (ctx, "BadRequest", "%s takes %s", fn, form);
}

static int
s_register (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    static const char form [] = "[name, uid, endpoint, pid, host, parent]";
    char name [TRI_REGISTRY_NAME_MAX + 1], uid [TRI_REGISTRY_UID_MAX + 1];
    char endpoint [TRI_REGISTRY_ENDPOINT_MAX + 1], host [TRI_REGISTRY_HOST_MAX + 1];
    char parent [TRI_REGISTRY_UID_MAX + 1];
    int64_t pid;
    if (s_count (args) != 6)
        return s_bad (ctx, "tr.registry.register", form);
    if (!s_item_str (args, 0, name, sizeof name, false))
        return tr_raise (ctx, "BadRequest", "name: a string of 1 to %d characters", TRI_REGISTRY_NAME_MAX);
    if (!s_item_str (args, 1, uid, sizeof uid, false))
        return tr_raise (ctx, "BadRequest", "uid: a string of at most %d characters", TRI_REGISTRY_UID_MAX);
    if (!s_item_str (args, 2, endpoint, sizeof endpoint, false))
        return tr_raise (ctx, "BadRequest", "endpoint: a string of at most %d characters",
                         TRI_REGISTRY_ENDPOINT_MAX);
    if (!s_item_int (args, 3, 0, INT32_MAX, &pid))
        return tr_raise (ctx, "BadRequest", "pid: an integer from 0 to %d", INT32_MAX);
    if (!s_item_str (args, 4, host, sizeof host, true))
        return tr_raise (ctx, "BadRequest", "host: a string of at most %d characters", TRI_REGISTRY_HOST_MAX);
    if (!s_item_str (args, 5, parent, sizeof parent, true))
        return tr_raise (ctx, "BadRequest", "parent: nil or a uid of at most %d characters",
                         TRI_REGISTRY_UID_MAX);
    tri_reg_t reg = { name, uid, endpoint, (int) pid, host, parent };
    tri_channel_t *channel = tri_serve_caller (ctx);
    char why [256];
    int rc = s_put (&reg, channel, channel? tri_channel_key (channel): "", false, why, sizeof why);
    if (rc == TR_EINVAL)
        return tr_raise (ctx, "BadRequest", "%s", why);
    if (rc)
        return tr_raise (ctx, "RegistryFull", "%s", why);
    return tr_reply_pack (out, "{s:i}", "lease_ms", s_reg.lease_ms);
}

static int
s_unregister (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) out;
    char uid [TRI_REGISTRY_UID_MAX + 1], name [TRI_REGISTRY_NAME_MAX + 1];
    uint32_t n = s_count (args);
    if ((n != 1 && n != 2) || !s_item_str (args, 0, uid, sizeof uid, false)
    ||  (n == 2 && !s_item_str (args, 1, name, sizeof name, false)))
        return s_bad (ctx, "tr.registry.unregister", "[uid] or [uid, name]");
    tri_registry_drop (uid, n == 2? name: NULL);
    return 0;
}

//  Reply with the live registrations under name (all when NULL). They
//  are packed once, as the encoded value the reply takes (its headroom
//  first), rather than packed, decoded and packed again.
static int
s_reply_entries (tr_reply_t *out, const char *name)
{
    static const char headroom [TRI_ARGS_HEADROOM];
    tr_args_t value = { .depth = 0 };
    msgpack_sbuffer_init (&value.sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &value.sbuf, msgpack_sbuffer_write);
    int rc = msgpack_sbuffer_write (&value.sbuf, headroom, sizeof headroom);
    if (rc == 0) {
        tri_registry_pack (name, &pk);
        rc = tr_reply_set (out, &value);
    }
    msgpack_sbuffer_destroy (&value.sbuf);
    return rc? TR_ENOMEM: 0;
}

static int
s_find (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    char name [TRI_REGISTRY_NAME_MAX + 1];
    if (s_count (args) != 1 || !s_item_str (args, 0, name, sizeof name, false)
    ||  !tri_registry_name_ok (name, strlen (name)))
        return s_bad (ctx, "tr.registry.find", "[name], a name of 1 to 64 of A-Z a-z 0-9 . _ -");
    return s_reply_entries (out, name);
}

static int
s_wait (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    char name [TRI_REGISTRY_NAME_MAX + 1];
    int64_t timeout;
    if (s_count (args) != 2 || !s_item_str (args, 0, name, sizeof name, false)
    ||  !tri_registry_name_ok (name, strlen (name))
    ||  !s_item_int (args, 1, 0, TRI_REGISTRY_WAIT_MAX_MS, &timeout))
        return tr_raise (ctx, "BadRequest", "tr.registry.wait takes [name, timeout_ms], "
                         "timeout_ms from 0 to %d", TRI_REGISTRY_WAIT_MAX_MS);
    //  A parked wait is a task: bounded per peer like registrations.
    tri_channel_t *channel = tri_serve_caller (ctx);
    char peer [160] = "";
    if (channel)
        snprintf (peer, sizeof peer, "wait %s", tri_channel_key (channel));
    if (*peer && s_peer_count (peer) >= TRI_REGISTRY_WAITS_PER_PEER)
        return tr_raise (ctx, "RegistryBusy", "too many waits from one peer (at most %d at once)",
                         TRI_REGISTRY_WAITS_PER_PEER);
    if (*peer)
        s_peer_add (peer, 1);
    int rc = tri_registry_wait (name, tri_deadline ((int) timeout));
    if (*peer && s_reg.serving)
        s_peer_add (peer, -1);
    if (rc == TR_ECANCELED)
        return rc;
    return s_reply_entries (out, name);
}

static int
s_list (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    char name [TRI_REGISTRY_NAME_MAX + 1];
    uint32_t n = s_count (args);
    if (n > 1 || (n == 1 && (!s_item_str (args, 0, name, sizeof name, false)
                             || !tri_registry_name_ok (name, strlen (name)))))
        return s_bad (ctx, "tr.registry.list", "[] or [name]");
    return s_reply_entries (out, n == 1? name: NULL);
}

static const tr_export_t s_exports [] = {
    TR_FN ("tr.registry.register", s_register),
    TR_FN ("tr.registry.unregister", s_unregister),
    TR_FN ("tr.registry.find", s_find),
    TR_FN ("tr.registry.wait", s_wait),
    TR_FN ("tr.registry.list", s_list),
    TR_EXPORTS_END
};

//  --------------------------------------------------------------------------
//  Serving

static void
s_entry_destroy (void **item)
{
    s_entry_free (*item);
    *item = NULL;
}

int
tri_registry_serve (int max, int lease_ms)
{
    assert (!s_reg.serving);
    memset (&s_reg, 0, sizeof s_reg);
    s_reg.max = max;
    s_reg.lease_ms = lease_ms;
    tri_waitq_init (&s_reg.waiters);
    s_reg.entries = zhashx_new ();
    s_reg.names = zhashx_new ();
    s_reg.peers = zhashx_new ();
    if (!s_reg.entries || !s_reg.names || !s_reg.peers || tri_serve_add_internal (s_exports)) {
        zhashx_destroy (&s_reg.entries);
        zhashx_destroy (&s_reg.names);
        zhashx_destroy (&s_reg.peers);
        return TR_ENOMEM;
    }
    s_reg.serving = true;
    return 0;
}

bool
tri_registry_serving (void)
{
    return s_reg.serving;
}

void
tri_registry_stop (void)
{
    if (!s_reg.serving)
        return;
    for (entry_t *e = zhashx_first (s_reg.entries); e; e = zhashx_next (s_reg.entries))
        tri_node_unlink (&e->node);
    zhashx_set_destructor (s_reg.entries, s_entry_destroy);
    zhashx_destroy (&s_reg.entries);
    for (name_t *n = zhashx_first (s_reg.names); n; n = zhashx_next (s_reg.names))
        free (n);
    zhashx_destroy (&s_reg.names);
    zhashx_destroy (&s_reg.peers);
    s_reg.serving = false;
}
