/*  =========================================================================
    json.c - values of the troupe tool's command line: JSON to msgpack
    and back, through jansson

    JSON to msgpack: objects become maps, arrays arrays, strings strings,
    integers int64, reals doubles, true/false/null the same. msgpack to
    JSON: a map key that is not a string becomes its JSON text (1 -> "1");
    bin, and strings that are not UTF-8, become base64 strings; integers
    past INT64_MAX become reals (jansson's integers are int64); NaN and
    infinities, which JSON lacks, and ext values become null.
    =========================================================================
*/
#include "json.h"
#include <stdlib.h>
#include <string.h>

static int
s_pack_json (msgpack_packer *pk, const json_t *json)
{
    switch (json_typeof (json)) {
        case JSON_OBJECT: {
            msgpack_pack_map (pk, json_object_size (json));
            const char *key;
            json_t *value;
            json_object_foreach ((json_t *) json, key, value) {
                msgpack_pack_str_with_body (pk, key, strlen (key));
                if (s_pack_json (pk, value))
                    return -1;
            }
            return 0;
        }
        case JSON_ARRAY: {
            msgpack_pack_array (pk, json_array_size (json));
            size_t index;
            json_t *value;
            json_array_foreach (json, index, value)
                if (s_pack_json (pk, value))
                    return -1;
            return 0;
        }
        case JSON_STRING:
            return msgpack_pack_str_with_body (pk, json_string_value (json),
                                               json_string_length (json));
        case JSON_INTEGER:
            return msgpack_pack_int64 (pk, json_integer_value (json));
        case JSON_REAL:
            return msgpack_pack_double (pk, json_real_value (json));
        case JSON_TRUE:
            return msgpack_pack_true (pk);
        case JSON_FALSE:
            return msgpack_pack_false (pk);
        case JSON_NULL:
            return msgpack_pack_nil (pk);
    }
    return -1;
}

//  --------------------------------------------------------------------------
//  The JSON value as arguments to send; NULL if out of memory.

tr_args_t *
tool_json_to_args (const json_t *json)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    tr_args_t *args = NULL;
    if (s_pack_json (&pk, json) == 0) {
        tr_value_t *value = tr_value_decode (buffer.data, buffer.size);
        if (value)
            args = tr_args_from_object (tr_value_object (value));
        tr_value_destroy (&value);
    }
    msgpack_sbuffer_destroy (&buffer);
    return args;
}

static json_t *
s_base64 (const void *data, size_t size)
{
    static const char digits [] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = data;
    char *text = malloc ((size + 2) / 3 * 4 + 1);
    if (!text)
        return NULL;
    size_t out = 0;
    for (size_t i = 0; i < size; i += 3) {
        unsigned long triple = (unsigned long) in [i] << 16;
        if (i + 1 < size)
            triple |= (unsigned long) in [i + 1] << 8;
        if (i + 2 < size)
            triple |= in [i + 2];
        text [out++] = digits [(triple >> 18) & 63];
        text [out++] = digits [(triple >> 12) & 63];
        text [out++] = i + 1 < size? digits [(triple >> 6) & 63]: '=';
        text [out++] = i + 2 < size? digits [triple & 63]: '=';
    }
    text [out] = 0;
    json_t *json = json_stringn (text, out);
    free (text);
    return json;
}

//  --------------------------------------------------------------------------
//  A new JSON value for the msgpack value; NULL if out of memory.

json_t *
tool_json_from_object (const msgpack_object *o)
{
    switch (o->type) {
        case MSGPACK_OBJECT_NIL:
            return json_null ();
        case MSGPACK_OBJECT_BOOLEAN:
            return json_boolean (o->via.boolean);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            //  Past int64 JSON has only reals (jansson's integers are int64).
            if (o->via.u64 > INT64_MAX)
                return json_real ((double) o->via.u64);
            return json_integer ((json_int_t) o->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return json_integer ((json_int_t) o->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: {
            json_t *real = json_real (o->via.f64);
            return real? real: json_null ();    //  NaN and infinities
        }
        case MSGPACK_OBJECT_STR: {
            json_t *text = json_stringn (o->via.str.ptr, o->via.str.size);
            //  Not UTF-8: as bytes are.
            return text? text: s_base64 (o->via.str.ptr, o->via.str.size);
        }
        case MSGPACK_OBJECT_BIN:
            return s_base64 (o->via.bin.ptr, o->via.bin.size);
        case MSGPACK_OBJECT_ARRAY: {
            json_t *array = json_array ();
            for (uint32_t i = 0; array && i < o->via.array.size; i++)
                if (json_array_append_new (array, tool_json_from_object (&o->via.array.ptr [i]))) {
                    json_decref (array);
                    return NULL;
                }
            return array;
        }
        case MSGPACK_OBJECT_MAP: {
            json_t *object = json_object ();
            for (uint32_t i = 0; object && i < o->via.map.size; i++) {
                const msgpack_object_kv *kv = &o->via.map.ptr [i];
                json_t *value = tool_json_from_object (&kv->val);
                int rc;
                if (kv->key.type == MSGPACK_OBJECT_STR) {
                    char *key = strndup (kv->key.via.str.ptr, kv->key.via.str.size);
                    rc = key? json_object_set_new (object, key, value): -1;
                    free (key);
                }
                else {
                    //  A key JSON cannot have: its JSON text stands for it.
                    json_t *key_json = tool_json_from_object (&kv->key);
                    char *key = key_json? json_dumps (key_json, JSON_ENCODE_ANY | JSON_COMPACT): NULL;
                    json_decref (key_json);
                    rc = key? json_object_set_new (object, key, value): -1;
                    free (key);
                }
                if (rc) {
                    json_decref (object);
                    return NULL;
                }
            }
            return object;
        }
        default:
            return json_null ();        //  ext
    }
}
