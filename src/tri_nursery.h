/*  =========================================================================
    tri_nursery.h - what the actor asks of nurseries (nursery.c)
    =========================================================================
*/
#ifndef TRI_NURSERY_H_INCLUDED
#define TRI_NURSERY_H_INCLUDED

//  Nurseries still open (their owner returned without closing them).
size_t
    tri_nursery_open_count (void);
//  Close every open nursery (in a task): cancel and reap their children.
void
    tri_nursery_close_all (void);

#endif
