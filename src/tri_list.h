/*  =========================================================================
    list.h - the one intrusive list of libtroupe

    A circular doubly linked list with a sentinel head, as in the Linux
    kernel: an element embeds a tri_node_t and is found again with
    tri_list_entry. Insertion and removal are O(1) and never allocate, so
    nothing on the loop's path can fail for want of memory. A node that is
    in no list points at itself; tri_node_unlink on it does nothing.
    =========================================================================
*/
#ifndef TRI_LIST_H_INCLUDED
#define TRI_LIST_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct tri_node {
    struct tri_node *next, *prev;
} tri_node_t;

typedef tri_node_t tri_list_t;

#define tri_list_entry(node, type, member) \
    ((type *) ((char *) (node) - offsetof (type, member)))

static inline void
tri_list_init (tri_list_t *list)
{
    list->next = list->prev = list;
}

static inline void
tri_node_init (tri_node_t *node)
{
    node->next = node->prev = node;
}

static inline bool
tri_list_empty (const tri_list_t *list)
{
    return list->next == list;
}

//  True when the node is in a list.
static inline bool
tri_node_linked (const tri_node_t *node)
{
    return node->next != node;
}

static inline void
tri_list_push_back (tri_list_t *list, tri_node_t *node)
{
    node->prev = list->prev;
    node->next = list;
    list->prev->next = node;
    list->prev = node;
}

static inline void
tri_list_push_front (tri_list_t *list, tri_node_t *node)
{
    node->next = list->next;
    node->prev = list;
    list->next->prev = node;
    list->next = node;
}

static inline void
tri_node_unlink (tri_node_t *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node->prev = node;
}

//  First node, or NULL.
static inline tri_node_t *
tri_list_first (const tri_list_t *list)
{
    return list->next == list? NULL: list->next;
}

//  Take the first node out, or NULL.
static inline tri_node_t *
tri_list_pop (tri_list_t *list)
{
    tri_node_t *node = tri_list_first (list);
    if (node)
        tri_node_unlink (node);
    return node;
}

static inline size_t
tri_list_size (const tri_list_t *list)
{
    size_t n = 0;
    for (const tri_node_t *node = list->next; node != list; node = node->next)
        n++;
    return n;
}

//  Walk a list; safe against removal of the current node.
#define tri_list_each(node, next_node, list) \
    for (tri_node_t *node = (list)->next, *next_node = node->next; \
         node != (list); node = next_node, next_node = node->next)

//  --------------------------------------------------------------------------
//  Spares: a stack of freed records kept for reuse, so that the hot path
//  does not go to malloc. A spare record's first bytes hold the link; at
//  most max are kept (0 keeps none).

#define TRI_SPARES_MAX 256

typedef struct {
    void *head;
    size_t count;
    size_t max;
} tri_spares_t;

//  A spare record (its contents are whatever they were), or NULL.
static inline void *
tri_spares_pop (tri_spares_t *self)
{
    void *record = self->head;
    if (record) {
        memcpy (&self->head, record, sizeof self->head);
        self->count--;
    }
    return record;
}

//  Keep record for reuse; false (nothing done) when the stack is full.
static inline bool
tri_spares_push (tri_spares_t *self, void *record)
{
    if (self->count >= self->max)
        return false;
    memcpy (record, &self->head, sizeof self->head);
    self->head = record;
    self->count++;
    return true;
}

//  Give every spare record to destroy (free, or a destructor).
static inline void
tri_spares_drain (tri_spares_t *self, void (*destroy) (void *record))
{
    void *record;
    while ((record = tri_spares_pop (self)))
        destroy (record);
}

#endif
