/*  =========================================================================
    tri_serve.h - the callee's side of a call (serve.c)

    Every cmd that names an exported function becomes a task running that
    function, bound as an endpoint (TRI_DIR_IN, the caller's cid) on the
    caller's channel; its return value, raised error or cancel ack goes
    back under that cid. Two export tables are searched: the library's own
    (names starting with "tr."), then the user's.
    =========================================================================
*/
#ifndef TRI_SERVE_H_INCLUDED
#define TRI_SERVE_H_INCLUDED

//  Serve the user's exports (may be NULL) from now on; registers with the
//  channel layer.
void
    tri_serve_start (const tr_export_t *exports);
//  Add a table of functions the library itself serves (names start with
//  "tr."; the table must outlive the actor). Returns 0 or TR_ENOMEM.
int
    tri_serve_add_internal (const tr_export_t *table);
//  Refuse new calls and cancel every call being served; each answers
//  with an ack.
void
    tri_serve_stop (void);
//  Forget the tables (after the last task).
void
    tri_serve_reset (void);
//  The channel the call served by ctx's task came on, or NULL when the
//  task serves no call.
tri_channel_t *
    tri_serve_caller (tr_ctx_t *ctx);

#endif
