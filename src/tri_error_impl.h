/*  =========================================================================
    tri_error_impl.h - the body of tr_error_t

    Included by error.c, which owns it, and by its unit test; every other
    module uses the tr_error_* accessors and the tri_error_* setters.
    =========================================================================
*/
#ifndef TRI_ERROR_IMPL_H_INCLUDED
#define TRI_ERROR_IMPL_H_INCLUDED

struct tr_error {
    int code;                   //  TR_E*
    char *type;
    char *message;
    char *origin;               //  uid where it arose
    char **hops;                //  chain of uids, origin first
    size_t nhops;
    char *frames;               //  C frames at the origin, "" if none
    int exit_status;            //  for crashes
    int signal;
    tr_error_t *next;
};

#endif
