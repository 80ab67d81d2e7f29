/*  =========================================================================
    idmap.c - a map from 64-bit ids to pointers, in constant time

    See idmap.h. The table is kept at most half full, so a probe sequence
    is short; it grows by doubling and never shrinks (a channel's peak of
    calls in flight is what it will see again).
    =========================================================================
*/
#include "troupe_private.h"

static size_t
s_hash (uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t) x;
}

void
tri_idmap_init (tri_idmap_t *self)
{
    memset (self, 0, sizeof *self);
}

void
tri_idmap_fini (tri_idmap_t *self)
{
    free (self->slots);
    memset (self, 0, sizeof *self);
}

void *
tri_idmap_get (const tri_idmap_t *self, uint64_t key)
{
    if (!self->slots)
        return NULL;
    for (size_t i = s_hash (key) & self->mask; ; i = (i + 1) & self->mask) {
        if (self->slots [i].key == key)
            return self->slots [i].value;
        if (self->slots [i].key == 0)
            return NULL;
    }
}

static void
s_place (tri_idmap_slot_t *slots, size_t mask, uint64_t key, void *value)
{
    size_t i = s_hash (key) & mask;
    while (slots [i].key)
        i = (i + 1) & mask;
    slots [i].key = key;
    slots [i].value = value;
}

int
tri_idmap_put (tri_idmap_t *self, uint64_t key, void *value)
{
    assert (key != 0 && value);
    if (!self->slots || (self->size + 1) * 2 > self->mask + 1) {
        size_t capacity = self->slots? (self->mask + 1) * 2: 16;
        tri_idmap_slot_t *slots = calloc (capacity, sizeof *slots);
        if (!slots)
            return TR_ENOMEM;
        for (size_t i = 0; self->slots && i <= self->mask; i++)
            if (self->slots [i].key)
                s_place (slots, capacity - 1, self->slots [i].key, self->slots [i].value);
        free (self->slots);
        self->slots = slots;
        self->mask = capacity - 1;
    }
    s_place (self->slots, self->mask, key, value);
    self->size++;
    return 0;
}

void *
tri_idmap_del (tri_idmap_t *self, uint64_t key)
{
    if (!self->slots)
        return NULL;
    size_t i = s_hash (key) & self->mask;
    while (self->slots [i].key != key) {
        if (self->slots [i].key == 0)
            return NULL;
        i = (i + 1) & self->mask;
    }
    void *value = self->slots [i].value;
    self->size--;
    //  Backward shift: pull later members of the probe run into the hole.
    size_t hole = i;
    for (size_t j = (i + 1) & self->mask; self->slots [j].key; j = (j + 1) & self->mask) {
        size_t home = s_hash (self->slots [j].key) & self->mask;
        //  j may move to hole if its home is not in (hole, j].
        bool movable = hole <= j? (home <= hole || home > j): (home <= hole && home > j);
        if (movable) {
            self->slots [hole] = self->slots [j];
            hole = j;
        }
    }
    self->slots [hole].key = 0;
    self->slots [hole].value = NULL;
    return value;
}
