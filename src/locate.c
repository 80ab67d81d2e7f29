/*  =========================================================================
    locate.c - this actor's registrations, and finding others by name

    An actor's registry address is one of: its own registry (a root that
    embeds it: registrations and finds are function calls), a list of
    registry endpoints (each a portal, opened on demand and opened again
    once it closes), or none. For each registry endpoint a lease task
    keeps this actor's names registered: it registers them, sleeps a
    third of the lease the registry granted, and registers them again; a
    registry that cannot be reached is tried again every second, so a
    restarted broker has every live actor back within two renewals. When
    the actor stops, the lease task unregisters (shielded, briefly) before
    it ends.

    A child whose registry is served at its parent's endpoint registers
    through its parent channel: no second connection, and the registry
    drops the registration as soon as that channel closes.

    Finds ask the registries in turn and take the first that knows the
    name; a listing merges every registry's answer. A found actor is
    reached with tr_portal_open, starting from the next entry each time.
    =========================================================================
*/
#include "troupe_private.h"
#include "tri_registry.h"
#include "tri_fds.h"
#include <unistd.h>

#define TRI_LOCATE_MAX      8       //  registries in one address
#define TRI_LOCATE_NAMES    64      //  names one actor registers
#define TRI_LOCATE_NAME_MAX 64      //  the registry's longest name
#define TRI_LOCATE_RETRY_MS 1000    //  try a registry we could not reach again
#define TRI_LOCATE_BYE_MS   500     //  wait for an unregister's answer at exit
#define TRI_LOCATE_OPEN_MS  2000    //  wait for a registry's hello

typedef struct {
    char *endpoint;
    tr_portal_t *portal;        //  NULL until opened
    bool via_parent;            //  portal is on the parent channel
    bool opening;               //  a task is opening the portal
    tri_waitq_t opened;         //  tasks waiting for it
    bool down;                  //  the last attempt to reach it failed
    int renew_ms;               //  a third of the lease it grants
    tri_waitq_t kick;           //  wakes the lease task early
    tr_task_t *task;            //  the lease task
} registry_t;

static struct {
    bool started;
    bool local;                 //  we serve the registry ourselves
    char *address;              //  as given, or our endpoint; NULL: none
    registry_t regs [TRI_LOCATE_MAX];
    size_t nregs;
    char *names [TRI_LOCATE_NAMES];     //  [0]: our own name, or NULL
    size_t nnames;
    char host [256];
    tri_dealer_t *parent_dealer;
    tri_channel_t *parent;
    unsigned rotor;             //  where the next find starts
} s_loc;

//  --------------------------------------------------------------------------
//  What we register

static tr_args_t *
s_reg_args (const char *name)
{
    const char *parent = "";
    if (s_loc.parent && strchr (tri_channel_uid (s_loc.parent), '@'))
        parent = tri_channel_uid (s_loc.parent);
    return tr_pack ("[sssiss]", name, tri_uid (), tri_actor ()->endpoint, (int) getpid (),
                    s_loc.host, parent);
}

static int
s_put_local (const char *name, char *why, size_t why_size)
{
    tri_reg_t reg = { name, tri_uid (), tri_actor ()->endpoint, (int) getpid (), s_loc.host, "" };
    return tri_registry_put_local (&reg, why, why_size);
}

static int
s_name_index (const char *name)
{
    for (size_t i = 0; i < s_loc.nnames; i++)
        if (s_loc.names [i] && streq (s_loc.names [i], name))
            return (int) i;
    return -1;
}

//  --------------------------------------------------------------------------
//  Portals on the registries

//  Make sure reg has an open portal; parks while another task opens it.
static int
s_open (registry_t *reg, int64_t deadline)
{
    if (reg->opening) {
        //  Another task is trying: its answer is ours, whatever it is.
        while (reg->opening) {
            int rc = tri_waitq_wait (&reg->opened, deadline);
            if (rc && reg->opening)
                return rc;
        }
        return reg->portal && !tri_portal_closed (reg->portal)? 0: TR_ECLOSED;
    }
    if (reg->portal && !tri_portal_closed (reg->portal))
        return 0;
    if (reg->via_parent)
        return TR_ECLOSED;          //  our parent is gone: so are we, soon
    tr_portal_close (&reg->portal);
    int timeout = tri_config ()->hello_ms < TRI_LOCATE_OPEN_MS? tri_config ()->hello_ms: TRI_LOCATE_OPEN_MS;
    if (deadline >= 0) {
        int64_t left = tri_ms_left (deadline);
        if (left <= 0)
            return TR_ETIMEDOUT;
        if (left < timeout)
            timeout = (int) left;
    }
    reg->opening = true;
    int rc = tr_portal_open (tri_actor (), reg->endpoint, timeout, &reg->portal);
    reg->opening = false;
    tri_waitq_wake_all (&reg->opened, 0);
    reg->down = rc != 0;
    return rc;
}

//  fn(args) on registry reg. Returns tr_portal_run's code.
static int
s_call (registry_t *reg, const char *fn, const tr_args_t *args, tr_value_t **out, int64_t deadline)
{
    int rc = s_open (reg, deadline);
    if (rc == 0) {
        rc = tr_portal_run (reg->portal, fn, args, out);
        if (rc && rc != TR_EREMOTE && rc != TR_ECANCELED)
            reg->down = true;
    }
    else
    if (rc != TR_ECANCELED)
        tri_ctx_fail (NULL, tri_error_new (TR_ECLOSED, "RegistryUnreachable", tri_uid (),
                      "cannot reach the registry at %s: %s", reg->endpoint, tr_strerror (rc)));
    return rc;
}

//  --------------------------------------------------------------------------
//  Leases

//  Register every name of ours with reg. Returns 0 once each was
//  registered or refused (refusals are logged once), else why not. The
//  names are those of when the round began: each call parks, and a name
//  given or dropped meanwhile is not to shift the walk (a dropped one is
//  not registered again; a new one registered itself).
static int
s_register_all (registry_t *reg, bool *refused_logged)
{
    char names [TRI_LOCATE_NAMES][TRI_LOCATE_NAME_MAX + 1];
    size_t count = 0;
    for (size_t i = 0; i < s_loc.nnames; i++)
        if (s_loc.names [i])
            snprintf (names [count++], sizeof names [0], "%s", s_loc.names [i]);
    for (size_t i = 0; i < count; i++) {
        if (s_name_index (names [i]) < 0)
            continue;               //  dropped since the round began
        tr_args_t *args = s_reg_args (names [i]);
        if (!args)
            return TR_ENOMEM;
        tr_value_t *out = NULL;
        int rc = s_call (reg, "tr.registry.register", args, &out, -1);
        tr_args_destroy (&args);
        int lease = 0;
        if (rc == 0 && tr_unpack (tr_value_object (out), "{s:i}", "lease_ms", &lease) == 0
        &&  lease > 0)
            reg->renew_ms = lease / 3 > 50? lease / 3: 50;
        tr_value_destroy (&out);
        if (rc == TR_EREMOTE) {
            if (!*refused_logged) {
                const tr_error_t *why = tr_ctx_error (tri_ctx_current ());
                tri_log_warn ("TR-REGISTRY", "the registry at %s refused '%s': %s", reg->endpoint,
                              names [i], why? tr_error_message (why): "?");
                *refused_logged = true;
            }
        }
        else
        if (rc)
            return rc;
    }
    return 0;
}

//  The actor stops: say goodbye to reg, briefly, whatever the cancel.
static void
s_unregister_all (registry_t *reg)
{
    if (reg->via_parent || !reg->portal || tri_portal_closed (reg->portal))
        return;
    tr_args_t *args = tr_pack ("[s]", tri_uid ());
    tri_call_t *call = NULL;
    if (args && tri_call_start (tri_portal_peer (reg->portal), "tr.registry.unregister",
                                args, &call, NULL) == 0) {
        tri_call_wait_shielded (call, tri_after_ms (TRI_LOCATE_BYE_MS));
        tri_call_destroy (&call);
    }
    tr_args_destroy (&args);
}

static int
s_lease_main (tr_ctx_t *ctx, void *arg)
{
    registry_t *reg = arg;
    bool warned = false, refused_logged = false;
    //  Our parent's hello names it, for the registration.
    if (s_loc.parent_dealer
    &&  tri_dealer_await_hello (s_loc.parent_dealer, tri_deadline (tri_config ()->hello_ms),
                                NULL) == TR_ECANCELED)
        return 0;
    while (!tr_ctx_cancelled (ctx)) {
        int rc = s_register_all (reg, &refused_logged);
        if (rc == TR_ECANCELED)
            break;
        if (rc == 0 && warned) {
            tri_log_info ("TR-REGISTRY", "registered again with %s", reg->endpoint);
            warned = false;
        }
        else
        if (rc && !warned) {
            tri_log_warn ("TR-REGISTRY", "cannot register with %s (%s): trying again",
                          reg->endpoint, tr_strerror (rc));
            warned = true;
        }
        int wait = rc && reg->renew_ms > TRI_LOCATE_RETRY_MS? TRI_LOCATE_RETRY_MS: reg->renew_ms;
        if (tri_waitq_wait (&reg->kick, tri_deadline (wait)) == TR_ECANCELED)
            break;
    }
    s_unregister_all (reg);
    return 0;
}

//  --------------------------------------------------------------------------
//  Starting and stopping

static int
s_add_registry (const char *endpoint, size_t len, tri_channel_t *parent)
{
    if (s_loc.nregs == TRI_LOCATE_MAX) {
        tri_log_error ("TR-REGISTRY", "more than %d registries in one address", TRI_LOCATE_MAX);
        return TR_EINVAL;
    }
    registry_t *reg = &s_loc.regs [s_loc.nregs];
    memset (reg, 0, sizeof *reg);
    if (!(reg->endpoint = strndup (endpoint, len)))
        return TR_ENOMEM;
    s_loc.nregs++;
    tri_waitq_init (&reg->opened);
    tri_waitq_init (&reg->kick);
    reg->renew_ms = tri_config ()->registry_lease_ms / 3;
    if (parent && streq (reg->endpoint, tri_channel_endpoint (parent))) {
        if (!(reg->portal = tri_portal_new (parent, 0)))
            return TR_ENOMEM;
        reg->via_parent = true;
    }
    return tr_task_spawn (tri_actor (), s_lease_main, reg, &reg->task);
}

int
tri_locate_start (const char *address, tri_dealer_t *parent_dealer)
{
    tri_channel_t *parent = parent_dealer? tri_dealer_channel (parent_dealer): NULL;
    memset (&s_loc, 0, sizeof s_loc);
    s_loc.started = true;
    if (address && streq (address, "none"))
        return 0;
    if (gethostname (s_loc.host, sizeof s_loc.host - 1))
        snprintf (s_loc.host, sizeof s_loc.host, "localhost");
    s_loc.parent = parent;
    s_loc.parent_dealer = parent_dealer;
    const char *name = tri_actor ()->name;
    if (tri_registry_name_ok (name, strlen (name))) {
        if (!(s_loc.names [0] = strdup (name)))
            return TR_ENOMEM;
    }
    else
        tri_log_warn ("TR-REGISTRY", "the name '%s' cannot be registered: "
                      "1 to 64 of A-Z a-z 0-9 . _ -", name);
    s_loc.nnames = 1;
    if (!address) {
        assert (tri_registry_serving ());
        s_loc.local = true;
        if (!(s_loc.address = strdup (tri_actor ()->endpoint)))
            return TR_ENOMEM;
        char why [256];
        if (s_loc.names [0] && s_put_local (s_loc.names [0], why, sizeof why))
            tri_log_warn ("TR-REGISTRY", "cannot register '%s': %s", s_loc.names [0], why);
        return 0;
    }
    if (!(s_loc.address = strdup (address)))
        return TR_ENOMEM;
    for (const char *p = address; *p; ) {
        size_t len = strcspn (p, ",");
        if (len) {
            int rc = s_add_registry (p, len, parent);
            if (rc)
                return rc;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return s_loc.nregs? 0: TR_EINVAL;
}

void
tri_locate_stop (void)
{
    if (!s_loc.started)
        return;
    for (size_t i = 0; i < s_loc.nregs; i++) {
        registry_t *reg = &s_loc.regs [i];
        if (reg->via_parent)
            tri_portal_destroy (&reg->portal);
        else
            tr_portal_close (&reg->portal);
        free (reg->endpoint);
    }
    for (size_t i = 0; i < s_loc.nnames; i++)
        free (s_loc.names [i]);
    free (s_loc.address);
    memset (&s_loc, 0, sizeof s_loc);
}

//  --------------------------------------------------------------------------
//  Asking the registries

//  The registrations under name (all when NULL) as one array: the
//  first registry that knows name answers a find (first_only), every
//  registry's answers merge into a listing. Each registry is asked once,
//  by the deadline. Returns 0, TR_ECLOSED (no registry answered) or
//  TR_ECANCELED.
static int
s_query (const char *name, bool first_only, int64_t deadline, tr_value_t **out)
{
    *out = NULL;
    if (s_loc.local) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init (&sbuf);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
        tri_registry_pack (name, &pk);
        *out = tr_value_decode (sbuf.data, sbuf.size);
        msgpack_sbuffer_destroy (&sbuf);
        return *out? 0: TR_ENOMEM;
    }
    if (!s_loc.nregs)
        return tri_ctx_fail (NULL, tri_error_new (TR_ECLOSED, "NoRegistry", tri_uid (),
                             "actor %s uses no registry", tri_uid ()));
    tr_args_t *args = name? tr_pack ("[s]", name): tr_pack ("[]");
    if (!args)
        return TR_ENOMEM;
    const char *fn = first_only? "tr.registry.find": "tr.registry.list";
    tr_value_t *answers [TRI_LOCATE_MAX] = { NULL };
    size_t nanswers = 0;
    bool asked [TRI_LOCATE_MAX] = { false };
    int rc = TR_ECLOSED;
    //  Registries that answered last time first; the others after.
    for (int pass = 0; pass < 2 && !(first_only && nanswers && *out); pass++)
        for (size_t i = 0; i < s_loc.nregs; i++) {
            registry_t *reg = &s_loc.regs [i];
            if (asked [i] || reg->down != (pass == 1))
                continue;
            asked [i] = true;
            tr_value_t *value = NULL;
            int r = s_call (reg, fn, args, &value, deadline);
            if (r == TR_ECANCELED) {
                rc = r;
                goto done;
            }
            if (r || tr_value_object (value)->type != MSGPACK_OBJECT_ARRAY) {
                tr_value_destroy (&value);
                continue;
            }
            answers [nanswers++] = value;
            if (first_only && tr_value_object (value)->via.array.size > 0) {
                *out = value;
                answers [--nanswers] = NULL;
                rc = 0;
                goto done;
            }
        }
    if (nanswers == 0)
        goto done;
    if (nanswers == 1) {
        //  One registry holds each registration once: its answer is the
        //  listing as it is.
        *out = answers [0];
        answers [0] = NULL;
        rc = 0;
        goto done;
    }
    //  Every answer, each registration once.
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    size_t total = 0;
    for (size_t a = 0; a < nanswers; a++)
        total += tr_value_object (answers [a])->via.array.size;
    const msgpack_object **kept = calloc (total + 1, sizeof *kept);
    size_t nkept = 0;
    for (size_t a = 0; kept && a < nanswers; a++) {
        const msgpack_object *arr = tr_value_object (answers [a]);
        for (uint32_t j = 0; j < arr->via.array.size; j++) {
            const msgpack_object *e = &arr->via.array.ptr [j];
            const char *uid = NULL, *ename = NULL;
            if (tr_unpack (e, "{s:s, s:s}", "uid", &uid, "name", &ename))
                continue;
            bool seen = false;
            for (size_t k = 0; k < nkept && !seen; k++) {
                const char *u, *n;
                if (tr_unpack (kept [k], "{s:s, s:s}", "uid", &u, "name", &n) == 0)
                    seen = streq (u, uid) && streq (n, ename);
            }
            if (!seen)
                kept [nkept++] = e;
        }
    }
    if (kept) {
        msgpack_pack_array (&pk, nkept);
        for (size_t k = 0; k < nkept; k++)
            msgpack_pack_object (&pk, *kept [k]);
        *out = tr_value_decode (sbuf.data, sbuf.size);
    }
    free (kept);
    msgpack_sbuffer_destroy (&sbuf);
    rc = *out? 0: TR_ENOMEM;
done:
    for (size_t a = 0; a < nanswers; a++)
        tr_value_destroy (&answers [a]);
    tr_args_destroy (&args);
    return rc;
}

//  Open a portal on one of entries, starting from the next one each time.
//  Short of descriptors, no entry would do: TR_ESYS, the task failed with
//  why.
static int
s_connect (const char *name, const msgpack_object *entries, int64_t deadline,
           tr_portal_t **portal)
{
    uint32_t n = entries->via.array.size;
    unsigned start = s_loc.rotor++;
    int rc = TR_ENOTFOUND;
    for (uint32_t k = 0; k < n; k++) {
        const msgpack_object *e = &entries->via.array.ptr [(start + k) % n];
        const char *endpoint;
        if (tr_unpack (e, "{s:s}", "endpoint", &endpoint))
            continue;
        int timeout = tri_config ()->hello_ms;
        if (deadline >= 0) {
            int64_t left = tri_ms_left (deadline);
            timeout = left < timeout? (int) left: timeout;
        }
        int r = timeout > 0? tr_portal_open (tri_actor (), endpoint, timeout, portal): TR_ETIMEDOUT;
        if (r == 0 || r == TR_ECANCELED)
            return r;
        char why [128];
        if (r == TR_ESYS && tri_fds_check (TRI_FDS_PORTAL, why, sizeof why)) {
            tri_ctx_fail (NULL, tri_error_new (TR_ESYS, "TooManyOpenFiles", tri_uid (),
                          "cannot open a portal on '%s': %s", name, why));
            return TR_ESYS;
        }
        rc = r == TR_ETIMEDOUT && deadline >= 0 && tri_now_us () >= deadline? TR_ETIMEDOUT: TR_ENOTFOUND;
    }
    return rc;
}

//  Find name and open a portal on it; TR_ENOTFOUND when no actor answers.
static int
s_find (const char *name, int64_t deadline, tr_portal_t **portal)
{
    tr_value_t *entries = NULL;
    int rc = s_query (name, true, deadline, &entries);
    if (rc)
        return rc;
    rc = s_connect (name, tr_value_object (entries), deadline, portal);
    tr_value_destroy (&entries);
    if (rc == TR_ENOTFOUND)
        tri_ctx_fail (NULL, tri_error_new (TR_ENOTFOUND, "NotFound", tri_uid (),
                      "no live actor is registered as '%s'", name));
    return rc;
}

static bool
s_usable (tr_actor_t *self, const char *name)
{
    return self && name && tri_registry_name_ok (name, strlen (name)) && tri_task_current ()
        && s_loc.started;
}

int
tr_find_actor (tr_actor_t *self, const char *name, tr_portal_t **portal)
{
    if (!portal || !s_usable (self, name))
        return TR_EINVAL;
    *portal = NULL;
    if (tri_task_cancelled (tri_task_current ()))
        return TR_ECANCELED;
    return s_find (name, -1, portal);
}

int
tr_wait_for_actor (tr_actor_t *self, const char *name, int timeout_ms, tr_portal_t **portal)
{
    if (!portal || timeout_ms < -1 || !s_usable (self, name))
        return TR_EINVAL;
    *portal = NULL;
    int64_t deadline = tri_deadline (timeout_ms);
    tr_args_t *args = NULL;
    int rc;
    for (;;) {
        if (tri_task_cancelled (tri_task_current ())) {
            rc = TR_ECANCELED;
            break;
        }
        rc = s_find (name, deadline, portal);
        if (rc != TR_ENOTFOUND && rc != TR_ECLOSED)
            break;
        if (!s_loc.local && !s_loc.nregs)
            break;                  //  "none": no registry to wait on
        int64_t left = deadline < 0? INT32_MAX: tri_ms_left (deadline);
        if (left <= 0) {
            rc = TR_ETIMEDOUT;
            break;
        }
        //  Park until a registry has the name (or a while, to ask again).
        if (s_loc.local) {
            rc = tri_registry_wait (name, deadline);
            if (rc == TR_ECANCELED)
                break;
            continue;
        }
        int slice = s_loc.nregs > 1 && left > TRI_LOCATE_RETRY_MS? TRI_LOCATE_RETRY_MS: (int) left;
        tr_args_destroy (&args);
        if (!(args = tr_pack ("[si]", name, slice))) {
            rc = TR_ENOMEM;
            break;
        }
        registry_t *reg = NULL;
        for (size_t i = 0; i < s_loc.nregs && !reg; i++)
            if (!s_loc.regs [i].down)
                reg = &s_loc.regs [i];
        tr_value_t *out = NULL;
        rc = reg? s_call (reg, "tr.registry.wait", args, &out, deadline): TR_ECLOSED;
        tr_value_destroy (&out);
        if (rc == TR_ECANCELED)
            break;
        if (rc) {
            //  No registry answers now: ask again in a while.
            rc = tr_sleep (tri_ctx_current (), slice < TRI_LOCATE_RETRY_MS? slice: TRI_LOCATE_RETRY_MS);
            if (rc == TR_ECANCELED)
                break;
        }
    }
    tr_args_destroy (&args);
    return rc;
}

int
tr_registry_list (tr_actor_t *self, const char *name, tr_value_t **entries)
{
    if (!self || !entries || !tri_task_current () || !s_loc.started
    ||  (name && !tri_registry_name_ok (name, strlen (name))))
        return TR_EINVAL;
    *entries = NULL;
    if (tri_task_cancelled (tri_task_current ()))
        return TR_ECANCELED;
    return s_query (name, false, -1, entries);
}

//  --------------------------------------------------------------------------
//  More names

int
tr_register_name (tr_actor_t *self, const char *name)
{
    if (!s_usable (self, name))
        return TR_EINVAL;
    if (tri_task_cancelled (tri_task_current ()))
        return TR_ECANCELED;
    if (!s_loc.local && !s_loc.nregs)
        return tri_ctx_fail (NULL, tri_error_new (TR_ECLOSED, "NoRegistry", tri_uid (),
                             "actor %s uses no registry", tri_uid ()));
    if (s_name_index (name) >= 0)
        return 0;
    if (s_loc.nnames == TRI_LOCATE_NAMES)
        return tri_ctx_fail (NULL, tri_error_new (TR_ENOMEM, "TooManyNames", tri_uid (),
                             "an actor registers at most %d names", TRI_LOCATE_NAMES));
    char *copy = strdup (name);
    if (!copy)
        return TR_ENOMEM;
    if (s_loc.local) {
        char why [256];
        int rc = s_put_local (name, why, sizeof why);
        if (rc) {
            free (copy);
            return tri_ctx_fail (NULL, tri_error_new (TR_EREMOTE, "RegistryFull", tri_uid (), "%s", why));
        }
        s_loc.names [s_loc.nnames++] = copy;
        return 0;
    }
    tr_args_t *args = s_reg_args (name);
    if (!args) {
        free (copy);
        return TR_ENOMEM;
    }
    s_loc.names [s_loc.nnames++] = copy;
    int rc = TR_ECLOSED, refused = 0;
    for (size_t i = 0; i < s_loc.nregs; i++) {
        int r = s_call (&s_loc.regs [i], "tr.registry.register", args, NULL, -1);
        if (r == 0 && rc)
            rc = 0;
        if (r == TR_EREMOTE || r == TR_ECANCELED)
            refused = r;
    }
    tr_args_destroy (&args);
    if (refused)
        rc = refused;
    if (rc)
        tr_unregister_name (self, name);
    return rc;
}

int
tr_unregister_name (tr_actor_t *self, const char *name)
{
    if (!s_usable (self, name))
        return TR_EINVAL;
    int i = s_name_index (name);
    if (i <= 0)
        return TR_ENOTFOUND;
    free (s_loc.names [i]);
    memmove (&s_loc.names [i], &s_loc.names [i + 1], (s_loc.nnames - (size_t) i - 1) * sizeof *s_loc.names);
    s_loc.nnames--;
    if (s_loc.local) {
        tri_registry_drop (tri_uid (), name);
        return 0;
    }
    tr_args_t *args = tr_pack ("[ss]", tri_uid (), name);
    if (!args)
        return TR_ENOMEM;
    for (size_t r = 0; r < s_loc.nregs; r++) {
        registry_t *reg = &s_loc.regs [r];
        //  A registry we cannot reach drops it when its lease runs out.
        if (reg->portal && !tri_portal_closed (reg->portal)
        &&  tr_portal_run (reg->portal, "tr.registry.unregister", args, NULL) == TR_ECANCELED)
            break;
    }
    tr_args_destroy (&args);
    return tri_task_cancelled (tri_task_current ())? TR_ECANCELED: 0;
}

const char *
tr_registry_address (const tr_actor_t *self)
{
    return self && s_loc.started? s_loc.address: NULL;
}
