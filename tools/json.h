/*  =========================================================================
    json.h - JSON to msgpack and back, for the troupe tool (tools/ only)
    =========================================================================
*/
#ifndef TOOL_JSON_H_INCLUDED
#define TOOL_JSON_H_INCLUDED

#include <troupe.h>
#include <jansson.h>

//  The JSON value encoded as arguments to send (tr_args_destroy it), or
//  NULL if out of memory.
tr_args_t *
    tool_json_to_args (const json_t *json);

//  A new JSON value for the msgpack value (json_decref it), or NULL if out
//  of memory.
json_t *
    tool_json_from_object (const msgpack_object *o);

#endif
