/*  =========================================================================
    fuzz_unpack.c - libFuzzer target: tr_pack and tr_unpack formats

    The first byte of an input picks one of two games.

    Random (even byte): the input is a format string and a msgpack value.
    The value is decoded (tr_value_decode must refuse what is malformed)
    and read with the format, which must never crash whatever it says;
    the same format, if tr_pack accepts it, builds a value that tr_unpack
    must read back with it (unless a map got a key twice: the arguments
    here are all alike, and tr_unpack reads a key's first value).

    Round trip (odd byte): the input drives a generator that writes a
    well-formed format (nested arrays and maps of every letter) with the
    values to pack, and the matching tr_unpack format (the same, with '?'
    before some keys and "..." ending some arrays). Packed, decoded and
    unpacked, every value must come back as it went in.

    tr_pack and tr_unpack are variadic: the harness passes a fixed list of
    arguments, 128 pointer-sized ones and then 8 doubles, and the format
    reads as many as it names. On x86-64 and aarch64 the first 8 doubles
    of a variadic call travel in their own registers, so a format reads
    its 'f' values from the doubles and everything else, in order, from
    the pointer-sized list; the harness builds only for those two.
    Built with ./configure --enable-fuzzers (clang); seeds in
    tests/fuzz/unpack/.
    =========================================================================
*/
#include "troupe_private.h"

#if !defined (__x86_64__) && !defined (__aarch64__)
#   error "fuzz_unpack passes variadic arguments as x86-64 and aarch64 do"
#endif

#define SLOTS       128         //  pointer-sized arguments
#define DOUBLES     8           //  double arguments
#define FMT_MAX     60          //  a random format: at most 2 args a byte

#define A8(a, i)    a [i], a [i + 1], a [i + 2], a [i + 3], \
                    a [i + 4], a [i + 5], a [i + 6], a [i + 7]
#define A32(a, i)   A8 (a, i), A8 (a, i + 8), A8 (a, i + 16), A8 (a, i + 24)
#define A128(a)     A32 (a, 0), A32 (a, 32), A32 (a, 64), A32 (a, 96)

//  --------------------------------------------------------------------------
//  Random formats on random values

//  Each argument a random format reads points to a zeroed block of its
//  own: "" as a key or a string, nil as an object, room for any output.
typedef struct {
    _Alignas (16) uint8_t bytes [128];
} s_block_t;

//  Whether a map in o has a key twice (tr_unpack reads the first).
static bool
s_duplicate_keys (const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (s_duplicate_keys (&o->via.array.ptr [i]))
                return true;
    }
    else
    if (o->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (s_duplicate_keys (&o->via.map.ptr [i].val))
                return true;
            for (uint32_t j = 0; j < i; j++)
                if (msgpack_object_equal (o->via.map.ptr [i].key, o->via.map.ptr [j].key))
                    return true;
        }
    }
    return false;
}

static void
s_random (const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    size_t fmt_len = data [0] % (FMT_MAX + 1);
    data++, size--;
    if (fmt_len > size)
        fmt_len = size;
    char fmt [FMT_MAX + 1];
    memcpy (fmt, data, fmt_len);
    fmt [fmt_len] = '\0';
    data += fmt_len, size -= fmt_len;

    static s_block_t blocks [SLOTS];
    void *slot [SLOTS];
    memset (blocks, 0, sizeof blocks);
    for (int i = 0; i < SLOTS; i++)
        slot [i] = &blocks [i];
    size_t offset;
    char why [96];
    (void) tri_fmt_check (fmt, true, &offset, why, sizeof why);
    (void) tri_fmt_check (fmt, false, &offset, why, sizeof why);

    char msg [256];
    tr_value_t *value = tr_value_decode (data, size);
    if (value) {
        int rc = tr_unpack_ex (tr_value_object (value), msg, sizeof msg, fmt, A128 (slot));
        if (rc != 0 && rc != TR_EFORMAT && rc != TR_EINVAL)
            abort ();
        tr_value_destroy (&value);
    }
    //  tr_pack reads a length for "s#" and "y": from these blocks it would
    //  be an address. Other formats pack from them safely.
    if (strchr (fmt, '#') || strchr (fmt, 'y'))
        return;
    memset (blocks, 0, sizeof blocks);
    double d [DOUBLES] = { 0 };
    tr_args_t *args = tr_pack (fmt, A128 (slot), A8 (d, 0));
    if (!args)
        return;
    value = tr_value_decode (tr_args_data (args), tr_args_size (args));
    if (!value) {
        fprintf (stderr, "fuzz_unpack: tr_pack (\"%s\") made what does not decode\n", fmt);
        abort ();
    }
    memset (blocks, 0, sizeof blocks);
    int rc = tr_unpack_ex (tr_value_object (value), msg, sizeof msg, fmt, A128 (slot));
    //  Every key here is "": a second key of a map reads the first's value.
    if (rc && !s_duplicate_keys (tr_value_object (value))) {
        fprintf (stderr, "fuzz_unpack: tr_unpack (\"%s\") refused what tr_pack made: %s\n",
                 fmt, msg);
        abort ();
    }
    tr_value_destroy (&value);
    tr_args_destroy (&args);
}

//  --------------------------------------------------------------------------
//  Round trip

typedef enum {
    K_INT, K_INT64, K_UINT64, K_DOUBLE, K_BOOL, K_STR, K_STRN, K_BYTES, K_OBJECT
} s_kind_t;

//  One value to check after unpacking.
typedef struct {
    s_kind_t kind;
    int out;                    //  its first out pointer (an index in outs)
    union {
        int i;
        int64_t I;
        uint64_t u;
        double f;
        bool b;
        const msgpack_object *o;
    } want;
    const char *ptr;            //  strings and bytes
    size_t len;
} s_check_t;

typedef union {
    int i;
    int64_t I;
    uint64_t u;
    double f;
    bool b;
    const char *s;
    const void *y;
    size_t n;
    const msgpack_object *o;
} s_out_t;

typedef struct {
    const uint8_t *p, *end;     //  what drives the generator
    char fmt [2048];            //  for tr_pack
    size_t fmt_len;
    char ufmt [2048];           //  for tr_unpack
    size_t ufmt_len;
    uintptr_t gp [SLOTS];       //  tr_pack's pointer-sized arguments
    int ngp;
    double fp [DOUBLES];
    int nfp;
    void *up [SLOTS];           //  tr_unpack's arguments
    int nup;
    s_out_t outs [SLOTS];
    int nouts;
    s_check_t checks [SLOTS];
    int nchecks;
    char arena [8192];          //  strings, bytes and keys
    size_t arena_used;
    msgpack_object objects [SLOTS];
    int nobjects;
} s_gen_t;

static uint8_t
s_byte (s_gen_t *self)
{
    return self->p < self->end? *self->p++: 0;
}

static uint64_t
s_bytes (s_gen_t *self, int n)
{
    uint64_t value = 0;
    for (int i = 0; i < n; i++)
        value = value << 8 | s_byte (self);
    return value;
}

static void
s_emit (s_gen_t *self, const char *pack, const char *unpack)
{
    size_t n = strlen (pack);
    assert (self->fmt_len + n < sizeof self->fmt);
    memcpy (self->fmt + self->fmt_len, pack, n + 1);
    self->fmt_len += n;
    n = strlen (unpack);
    assert (self->ufmt_len + n < sizeof self->ufmt);
    memcpy (self->ufmt + self->ufmt_len, unpack, n + 1);
    self->ufmt_len += n;
}

//  What separates items: nothing, or any of the separators.
static void
s_separator (s_gen_t *self)
{
    static const char *seps [] = { "", " ", ",", ", ", ":", "\t", "\n " };
    const char *sep = seps [s_byte (self) % 7];
    s_emit (self, sep, sep);
}

//  Room for one more value of up to two arguments and one check.
static bool
s_room (s_gen_t *self)
{
    return self->ngp + 2 <= SLOTS && self->nup + 2 <= SLOTS
        && self->nchecks + 1 <= SLOTS && self->nouts + 2 <= SLOTS
        && self->arena_used + 80 <= sizeof self->arena
        && self->fmt_len + 32 < sizeof self->fmt;
}

static const char *
s_arena_copy (s_gen_t *self, size_t len, bool no_nul)
{
    char *s = self->arena + self->arena_used;
    for (size_t i = 0; i < len; i++) {
        s [i] = (char) s_byte (self);
        if (no_nul && s [i] == '\0')
            s [i] = 'a';
    }
    s [len] = '\0';
    self->arena_used += len + 1;
    return s;
}

static s_check_t *
s_check (s_gen_t *self, s_kind_t kind, int outs)
{
    s_check_t *check = &self->checks [self->nchecks++];
    check->kind = kind;
    check->out = self->nouts;
    for (int i = 0; i < outs; i++)
        self->up [self->nup++] = &self->outs [self->nouts++];
    return check;
}

static void
s_gen_value (s_gen_t *self, int depth)
{
    int choice = s_byte (self) % (depth < 4? 12: 10);
    if (!s_room (self))
        choice = 5;                     //  nil: no argument
    if (choice == 3 && self->nfp == DOUBLES)
        choice = 2;
    switch (choice) {
        case 0: {
            int v = (int) (uint32_t) s_bytes (self, 4);
            s_emit (self, "i", "i");
            self->gp [self->ngp++] = (uintptr_t) (intptr_t) v;
            s_check (self, K_INT, 1)->want.i = v;
            break;
        }
        case 1: {
            int64_t v = (int64_t) s_bytes (self, 8);
            s_emit (self, "I", "I");
            self->gp [self->ngp++] = (uintptr_t) v;
            s_check (self, K_INT64, 1)->want.I = v;
            break;
        }
        case 2: {
            uint64_t v = s_bytes (self, 8);
            s_emit (self, "u", "u");
            self->gp [self->ngp++] = (uintptr_t) v;
            s_check (self, K_UINT64, 1)->want.u = v;
            break;
        }
        case 3: {
            uint64_t bits = s_bytes (self, 8);
            double v;
            memcpy (&v, &bits, sizeof v);
            s_emit (self, "f", "f");
            self->fp [self->nfp++] = v;
            s_check (self, K_DOUBLE, 1)->want.f = v;
            break;
        }
        case 4: {
            int v = s_byte (self) % 3;
            s_emit (self, "b", "b");
            self->gp [self->ngp++] = (uintptr_t) v;
            s_check (self, K_BOOL, 1)->want.b = v != 0;
            break;
        }
        case 5:
            s_emit (self, "n", "n");
            break;
        case 6: case 7: case 8: {
            size_t len = s_byte (self) % 24;
            const char *s = s_arena_copy (self, len, choice == 6);
            s_kind_t kind = choice == 6? K_STR: choice == 7? K_STRN: K_BYTES;
            const char *letter = choice == 6? "s": choice == 7? "s#": "y";
            s_emit (self, letter, letter);
            self->gp [self->ngp++] = (uintptr_t) s;
            if (choice != 6)
                self->gp [self->ngp++] = (uintptr_t) len;
            s_check_t *check = s_check (self, kind, choice == 6? 1: 2);
            check->ptr = s;
            check->len = len;
            break;
        }
        case 9: {
            msgpack_object *o = &self->objects [self->nobjects++];
            memset (o, 0, sizeof *o);
            uint8_t how = s_byte (self) % 3;
            if (how == 0)
                o->type = MSGPACK_OBJECT_NIL;
            else
            if (how == 1) {
                o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
                o->via.u64 = s_bytes (self, 8);
            }
            else {
                size_t len = s_byte (self) % 16;
                o->type = MSGPACK_OBJECT_STR;
                o->via.str.ptr = s_arena_copy (self, len, false);
                o->via.str.size = (uint32_t) len;
            }
            s_emit (self, "o", "o");
            self->gp [self->ngp++] = (uintptr_t) o;
            s_check (self, K_OBJECT, 1)->want.o = o;
            break;
        }
        case 10: {
            int items = s_byte (self) % 5;
            bool more = s_byte (self) % 4 == 0;
            s_emit (self, "[", "[");
            for (int i = 0; i < items; i++) {
                s_separator (self);
                s_gen_value (self, depth + 1);
            }
            s_separator (self);
            if (more) {
                s_emit (self, "", "...");
                s_separator (self);
            }
            s_emit (self, "]", "]");
            break;
        }
        case 11: {
            int items = s_byte (self) % 4;
            s_emit (self, "{", "{");
            for (int i = 0; i < items && s_room (self); i++) {
                //  Keys differ within a map: the first of a key wins.
                s_separator (self);
                if (s_byte (self) % 3 == 0)
                    s_emit (self, "", "?");
                s_emit (self, "s", "s");
                char *key = self->arena + self->arena_used;
                self->arena_used += (size_t) snprintf (key, 16, "k%d", i) + 1;
                self->gp [self->ngp++] = (uintptr_t) key;
                self->up [self->nup++] = key;
                s_emit (self, ":", ":");
                s_gen_value (self, depth + 1);
            }
            s_separator (self);
            s_emit (self, "}", "}");
            break;
        }
    }
}

static void
s_fail (const s_gen_t *self, int index, const char *what)
{
    fprintf (stderr, "fuzz_unpack: value %d (%s) did not come back: tr_pack (\"%s\"), "
             "tr_unpack (\"%s\")\n", index, what, self->fmt, self->ufmt);
    abort ();
}

static void
s_round_trip (const uint8_t *data, size_t size)
{
    static s_gen_t gen;
    s_gen_t *self = &gen;
    memset (self, 0, sizeof *self);
    self->p = data;
    self->end = data + size;
    s_separator (self);
    s_gen_value (self, 0);
    s_separator (self);
    //  FUZZ_UNPACK_SHOW=1 with an input file: what it generates.
    if (getenv ("FUZZ_UNPACK_SHOW"))
        fprintf (stderr, "pack \"%s\"\nunpack \"%s\"\n", self->fmt, self->ufmt);

    tr_args_t *args = tr_pack (self->fmt, A128 (self->gp), A8 (self->fp, 0));
    if (!args) {
        fprintf (stderr, "fuzz_unpack: tr_pack refused \"%s\"\n", self->fmt);
        abort ();
    }
    tr_value_t *value = tr_value_decode (tr_args_data (args), tr_args_size (args));
    if (!value) {
        fprintf (stderr, "fuzz_unpack: tr_pack (\"%s\") made what does not decode\n", self->fmt);
        abort ();
    }
    char msg [256] = "";
    int rc = tr_unpack_ex (tr_value_object (value), msg, sizeof msg, self->ufmt, A128 (self->up));
    if (rc) {
        fprintf (stderr, "fuzz_unpack: tr_unpack (\"%s\") refused what tr_pack (\"%s\") made: %s\n",
                 self->ufmt, self->fmt, msg);
        abort ();
    }
    for (int i = 0; i < self->nchecks; i++) {
        const s_check_t *check = &self->checks [i];
        const s_out_t *out = &self->outs [check->out];
        switch (check->kind) {
            case K_INT:
                if (out->i != check->want.i)
                    s_fail (self, i, "i");
                break;
            case K_INT64:
                if (out->I != check->want.I)
                    s_fail (self, i, "I");
                break;
            case K_UINT64:
                if (out->u != check->want.u)
                    s_fail (self, i, "u");
                break;
            case K_DOUBLE:
                if (memcmp (&out->f, &check->want.f, sizeof (double)))
                    s_fail (self, i, "f");
                break;
            case K_BOOL:
                if (out->b != check->want.b)
                    s_fail (self, i, "b");
                break;
            case K_STR:
                if (!out->s || strcmp (out->s, check->ptr))
                    s_fail (self, i, "s");
                break;
            case K_STRN:
                if (!out [0].s || out [1].n != check->len
                ||  memcmp (out [0].s, check->ptr, check->len))
                    s_fail (self, i, "s#");
                break;
            case K_BYTES:
                if (out [1].n != check->len
                ||  (check->len && memcmp (out [0].y, check->ptr, check->len)))
                    s_fail (self, i, "y");
                break;
            case K_OBJECT:
                if (!out->o || !msgpack_object_equal (*out->o, *check->want.o))
                    s_fail (self, i, "o");
                break;
        }
    }
    tr_value_destroy (&value);
    tr_args_destroy (&args);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    //  Refusals are what this target provokes: the library need not log them.
    setenv ("TROUPE_LOGLEVEL", "error", 0);
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data [0] & 1)
        s_round_trip (data + 1, size - 1);
    else
        s_random (data + 1, size - 1);
    return 0;
}
