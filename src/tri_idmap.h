/*  =========================================================================
    idmap.h - a map from 64-bit ids to pointers, in constant time

    Open addressing with linear probing and backward-shift deletion: no
    tombstones, no allocation per entry, one cache line per lookup in the
    common case. Key 0 is reserved (it marks an empty slot). Channels keep
    their endpoints here, keyed by call id and direction.
    =========================================================================
*/
#ifndef TRI_IDMAP_H_INCLUDED
#define TRI_IDMAP_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t key;
    void *value;
} tri_idmap_slot_t;

typedef struct {
    tri_idmap_slot_t *slots;    //  NULL until the first insert
    size_t mask;                //  capacity - 1 (capacity a power of two)
    size_t size;
} tri_idmap_t;

//  An empty map (all zero is one too).
void
    tri_idmap_init (tri_idmap_t *self);
void
    tri_idmap_fini (tri_idmap_t *self);
//  The value under key, or NULL.
void *
    tri_idmap_get (const tri_idmap_t *self, uint64_t key);
//  Insert a key that is not in the map. Returns 0 or TR_ENOMEM.
int
    tri_idmap_put (tri_idmap_t *self, uint64_t key, void *value);
//  Remove key if present; returns its value or NULL.
void *
    tri_idmap_del (tri_idmap_t *self, uint64_t key);

#endif
