/*  =========================================================================
    tri_registry.h - the registry service (registry.c) and this actor's
    registrations with its registries (locate.c)

    The service is a table of leases served as the library's own exports
    (tr.registry.*): an embedded registry in a root, or troupe-broker.
    The client side keeps this actor's names registered with every
    registry of its address and asks them to find others.
    =========================================================================
*/
#ifndef TRI_REGISTRY_H_INCLUDED
#define TRI_REGISTRY_H_INCLUDED

//  The fields of one registration, as the service checks and stores them.
typedef struct {
    const char *name;
    const char *uid;
    const char *endpoint;
    int pid;
    const char *host;
    const char *parent;         //  "" when none
} tri_reg_t;

//  --------------------------------------------------------------------------
//  The service (registry.c)

//  Serve the registry from this actor from now on: at most max
//  registrations, leases of lease_ms. Returns 0 or TR_ENOMEM.
int
    tri_registry_serve (int max, int lease_ms);
//  Stop serving and forget every registration (runtime shutdown).
void
    tri_registry_stop (void);
bool
    tri_registry_serving (void);
//  Put reg in the table as this actor's own: it never expires. Returns
//  0, TR_EINVAL (a field is bad: why says which) or TR_ENOMEM (full).
int
    tri_registry_put_local (const tri_reg_t *reg, char *why, size_t why_size);
//  Drop the registrations of uid (only under name, if not NULL).
void
    tri_registry_drop (const char *uid, const char *name);
//  Pack the live registrations under name (every one if NULL) as an
//  array of maps.
void
    tri_registry_pack (const char *name, msgpack_packer *pk);
//  Park until something registers under name or the deadline. Returns 0,
//  TR_ETIMEDOUT or TR_ECANCELED.
int
    tri_registry_wait (const char *name, int64_t deadline);
//  Check a name given to the registry: 1 to 64 of A-Z a-z 0-9 . _ -
bool
    tri_registry_name_ok (const char *name, size_t len);

//  --------------------------------------------------------------------------
//  This actor's registrations (locate.c)

//  Register under this actor's name with the registries of address (a
//  comma-separated list of endpoints; NULL: this actor serves its own
//  registry; "none": no registry), keeping the leases alive from a task
//  of its own. parent: the connection to our parent, which carries the
//  registrations to a registry served at its endpoint. Returns 0,
//  TR_EINVAL (bad address) or TR_ENOMEM.
int
    tri_locate_start (const char *address, tri_dealer_t *parent);
//  Forget every registry and portal (runtime shutdown, after the last
//  task: the lease task has unregistered by then).
void
    tri_locate_stop (void);

#endif
