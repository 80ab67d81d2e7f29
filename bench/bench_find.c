/*  =========================================================================
    bench_find.c - a find by name through the registry, troupe against raw
    libzmq

    Figures find_ipc and find_tcp: a root whose registry is a troupe-broker
    (started here, at an ipc or a tcp loopback endpoint) looks a name up
    with tr_registry_list (self, name, ...), one lookup at a time, in
    microseconds per lookup. That is one round trip to the broker: the
    request, the broker's lookup of the name, the entries it sends back.
    (tr_find_actor makes the same lookup and then opens a portal on the
    actor it found, a connection and a hello of its own; that is not what
    these figures time.) The raw reference in the same run: a ROUTER in a
    copy of this binary (--raw-find-server) that receives the very frame
    troupe sends, decodes it, looks the name up in a hash and answers
    with the same entry packed as the broker packs it, against a DEALER
    here with blocking zmq_send/zmq_recv. The two sides alternate every
    few hundred lookups; each figure is the median of the rounds. The
    CPU time of each side's client and server per lookup goes to stderr.

    Figure find_embedded: the same lookup from a child of a root that
    serves the registry itself, through the child's parent channel; the
    child times its lookups, the root times the raw ones (ipc).

    With two CPUs or more the root runs on CPU 0 and the servers (broker
    and raw server alike) on CPU 1.

    Usage: bench_find [find_ipc|find_tcp|find_embedded] (all when no
    argument is given). BENCH_N: lookups per round. BENCH_ONLY=troupe or
    raw times one side only. This binary is also the child actor and,
    with --raw-find-server ENDPOINT NAME UID ENDPOINT PID HOST PARENT,
    the raw server.
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"
#include "bench_registry.h"

#define DEFAULT_ROUNDS      7
#define FIND_CALLS          5000    //  lookups per side per round
#define FIND_WARMUP         1000
#define FIND_CHUNK          500     //  lookups per side before switching sides
#define ROOT_NAME           "bench_find"

//  --------------------------------------------------------------------------
//  Raw libzmq

//  The raw lookup server: connect a ROUTER to endpoint, keep one entry
//  (the fields from argv) in a hash by name, and answer each cmd frame
//  [2, cid, [fn, [name]]] with [6, cid, [entry...]], the entries under
//  that name, until an empty request.
static int
s_raw_find_server (char **argv)
{
    const char *endpoint = argv [2];
    zhashx_t *names = zhashx_new ();
    zhashx_set_destructor (names, bench_entry_destroy);
    bench_entry_t *entry = bench_entry_new (argv [3], argv [4], argv [5], atoi (argv [6]),
                                            argv [7], argv [8]);
    if (!names || !entry || zhashx_insert (names, entry->name, entry))
        return 2;
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    if (!router || zmq_connect (router, endpoint)) {
        fprintf (stderr, "raw find server: cannot connect to %s: %s\n", endpoint,
                 zmq_strerror (errno));
        return 1;
    }
    static uint8_t request [BENCH_MAX_FRAME];
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    int rc = 0;
    for (;;) {
        uint8_t rid [256];
        int rid_size = zmq_recv (router, rid, sizeof rid, 0);
        if (rid_size < 0)
            break;
        int size = zmq_recv (router, request, sizeof request, 0);
        if (size <= 0)
            break;
        uint64_t cid;
        const msgpack_object *fn, *args;
        char name [BENCH_NAME_MAX + 1];
        if (msgpack_unpack_next (&unpacked, (const char *) request, (size_t) size, NULL)
                != MSGPACK_UNPACK_SUCCESS
        ||  !bench_cmd_parse (&unpacked.data, &cid, &fn, &args)
        ||  !bench_arg_str (args, 0, name, sizeof name)) {
            rc = 1;
            break;
        }
        bench_entry_t *found = zhashx_lookup (names, name);
        msgpack_sbuffer_clear (&sbuf);
        tri_msg_begin (&pk, TRI_RETURN, cid);
        msgpack_pack_array (&pk, found? 1: 0);
        if (found)
            bench_entry_pack (&pk, found);
        if (zmq_send (router, rid, (size_t) rid_size, ZMQ_SNDMORE) < 0
        ||  zmq_send (router, sbuf.data, sbuf.size, 0) < 0)
            break;
    }
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&sbuf);
    zmq_close (router);
    zmq_ctx_term (ctx);
    zhashx_destroy (&names);
    return rc;
}

//  Bind raw's DEALER on transport and start the lookup server, which
//  will answer the cmd frame troupe sends for the lookup (cmd, taken)
//  with entry. Returns 0, or -1; bench_raw_close cleans up either way.
static int
s_raw_find_open (bench_raw_t *self, const char *transport, uint8_t *cmd, size_t cmd_size,
                 const char *name, const char *uid, const char *endpoint, int pid,
                 const char *host, const char *parent)
{
    memset (self, 0, sizeof *self);
    self->cmd = cmd;
    self->cmd_size = cmd_size;
    self->answer_max = BENCH_MAX_FRAME;
    self->answer = malloc (self->answer_max);
    if (!cmd || !self->answer) {
        fprintf (stderr, "raw client: out of memory\n");
        return -1;
    }
    if (bench_bind (&self->dealer, ZMQ_DEALER, transport, "find"))
        return -1;
    char pid_arg [32];
    snprintf (pid_arg, sizeof pid_arg, "%d", pid);
    char *argv [] = { "bench_find", "--raw-find-server", self->dealer.endpoint,
                      (char *) name, (char *) uid, (char *) endpoint, pid_arg,
                      (char *) host, (char *) parent, NULL };
    self->pid = bench_spawn_self (argv);
    if (self->pid < 0) {
        fprintf (stderr, "raw client: cannot spawn the server: %s\n", strerror (errno));
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The lookup, troupe against raw

typedef struct {
    bench_run_t bench;
    const char *transport;          //  "ipc", "tcp", or NULL: embedded
    const char *registry;           //  the broker's endpoint, or NULL
    pid_t broker;
} s_find_run_t;

//  Look name up calls times. Returns 0, or the failure.
static int
s_lookups (tr_actor_t *self, const char *name, int calls)
{
    for (int i = 0; i < calls; i++) {
        tr_value_t *entries = NULL;
        int rc = tr_registry_list (self, name, &entries);
        if (rc == 0 && tr_value_object (entries)->via.array.size == 0)
            rc = TR_ENOTFOUND;
        tr_value_destroy (&entries);
        if (rc)
            return rc;
    }
    return 0;
}

//  In a child: look args [1] up args [0] times; the time it took in ns.
static int
s_find_fn (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int calls;
    const char *name;
    if (tr_unpack (args, "[is]", &calls, &name))
        return tr_raise (ctx, "BadRequest", "find takes [calls, name]");
    int64_t start = bench_now_ns ();
    int rc = s_lookups (tr_ctx_actor (ctx), name, calls);
    if (rc)
        return rc;
    return tr_reply_pack (out, "I", bench_now_ns () - start);
}

//  Ask the child to make calls lookups; the time they took in *ns.
static int
s_child_lookups (tr_portal_t *child, int calls, int64_t *ns)
{
    tr_args_t *args = tr_pack ("[is]", calls, ROOT_NAME);
    tr_value_t *result = NULL;
    int rc = args? tr_portal_run (child, "find", args, &result): TR_ENOMEM;
    if (rc == 0 && tr_unpack (tr_value_object (result), "I", ns))
        rc = TR_EFORMAT;
    tr_value_destroy (&result);
    tr_args_destroy (&args);
    return rc;
}

static int
s_find_root (tr_actor_t *self, void *arg)
{
    s_find_run_t *run = arg;
    bench_run_t *bench = &run->bench;
    bench->was_root = true;
    bench->failed = true;
    bench_raw_t raw;
    memset (&raw, 0, sizeof raw);
    tr_nursery_t *nursery = NULL;
    tr_portal_t *child = NULL;
    tr_value_t *entries = NULL;
    tr_args_t *args = NULL;
    int rc = 0;
    //  Our own registration: with a broker, the lease task's first
    //  register may not have landed yet.
    int64_t deadline = bench_now_ns () + 5000000000LL;
    for (;;) {
        tr_value_destroy (&entries);
        rc = tr_registry_list (self, ROOT_NAME, &entries);
        if (rc == 0 && tr_value_object (entries)->via.array.size > 0)
            break;
        if (bench_now_ns () > deadline) {
            fprintf (stderr, "bench_find: %s never appeared in the registry (%s)\n",
                     ROOT_NAME, tr_strerror (rc));
            goto done;
        }
        tr_sleep (tr_actor_ctx (self), 10);
    }
    const char *name, *uid, *endpoint, *host, *parent;
    int pid;
    if (tr_unpack (&tr_value_object (entries)->via.array.ptr [0],
                   "{s:s, s:s, s:s, s:i, s:s, s:s}", "name", &name, "uid", &uid,
                   "endpoint", &endpoint, "pid", &pid, "host", &host, "parent", &parent)) {
        fprintf (stderr, "bench_find: an entry without its fields\n");
        goto done;
    }
    if (!run->transport) {
        if ((rc = tr_nursery_open (self, &nursery))
        ||  (rc = tr_nursery_start_actor (nursery, "finder", NULL, &child))) {
            fprintf (stderr, "bench_find: cannot start the child: %s\n", tr_strerror (rc));
            goto done;
        }
    }
    //  The frame troupe sends for one lookup, at a cid from the timed ones.
    args = tr_pack ("[s]", ROOT_NAME);
    uint64_t cid = FIND_WARMUP + (uint64_t) bench->rounds * bench->per_round / 2;
    size_t cmd_size, return_size;
    uint8_t *cmd = bench_call_frames_args (cid, "tr.registry.list", args, false,
                                           &cmd_size, &return_size);
    fprintf (stderr, "bench: %s: lookup frame %zu bytes, %d rounds of %d lookups%s%s\n",
             bench->name, cmd_size, bench->rounds, bench->per_round,
             run->registry? ", broker at ": ", embedded registry",
             run->registry? run->registry: "");
    if (s_raw_find_open (&raw, run->transport? run->transport: "ipc", cmd, cmd_size,
                         name, uid, endpoint, pid, host, parent))
        goto done;
    int64_t child_ns;
    if ((rc = child? s_child_lookups (child, FIND_WARMUP, &child_ns)
                   : s_lookups (self, ROOT_NAME, FIND_WARMUP))
    ||  bench_raw_calls (&raw, FIND_WARMUP, 1)) {
        fprintf (stderr, "bench_find: warm-up failed: %s\n", tr_strerror (rc));
        goto done;
    }
    //  CPU time of each side's client and server (broker runs only).
    int64_t cpu [2][2] = { { 0, 0 }, { 0, 0 } };
    pid_t me = getpid ();
    int troupe_calls = bench_side_on ("troupe")? bench->per_round: 0;
    int raw_calls = bench_side_on ("raw")? bench->per_round: 0;
    for (int r = 0; r < bench->rounds; r++) {
        int64_t troupe_ns = 0, raw_ns = 0;
        for (int made = 0; made < bench->per_round; made += FIND_CHUNK) {
            int chunk = bench->per_round - made < FIND_CHUNK? bench->per_round - made: FIND_CHUNK;
            int64_t client = bench_cpu_ns (me);
            int64_t server = run->broker? bench_cpu_ns (run->broker): 0;
            int64_t start = bench_now_ns ();
            child_ns = 0;
            if ((rc = child? s_child_lookups (child, troupe_calls? chunk: 0, &child_ns)
                           : s_lookups (self, ROOT_NAME, troupe_calls? chunk: 0))) {
                fprintf (stderr, "bench_find: lookup failed: %s\n", tr_strerror (rc));
                goto done;
            }
            int64_t middle = bench_now_ns ();
            if (run->broker) {
                cpu [0][0] += bench_cpu_ns (me) - client;
                cpu [0][1] += bench_cpu_ns (run->broker) - server;
                client = bench_cpu_ns (me);
                server = bench_cpu_ns (raw.pid);
            }
            if (bench_raw_calls (&raw, raw_calls? chunk: 0, 1)) {
                fprintf (stderr, "bench_find: raw lookup failed: %s\n", zmq_strerror (errno));
                goto done;
            }
            troupe_ns += child? child_ns: middle - start;
            raw_ns += bench_now_ns () - middle;
            if (run->broker) {
                cpu [1][0] += bench_cpu_ns (me) - client;
                cpu [1][1] += bench_cpu_ns (raw.pid) - server;
            }
        }
        bench_record (bench, r, troupe_ns, raw_ns);
    }
    double lookups = (double) bench->rounds * bench->per_round * 1e3;
    if (run->broker)
        fprintf (stderr, "bench: %s: CPU per lookup, client + server: troupe %.2f + %.2f us, "
                 "raw %.2f + %.2f us\n", bench->name, cpu [0][0] / lookups,
                 cpu [0][1] / lookups, cpu [1][0] / lookups, cpu [1][1] / lookups);
    bench->failed = false;
done:
    bench_raw_close (&raw);
    tr_args_destroy (&args);
    tr_value_destroy (&entries);
    if (nursery)
        tr_nursery_close (&nursery, NULL);
    return bench->failed? 1: 0;
}

//  --------------------------------------------------------------------------

static const tr_export_t s_exports [] = {
    TR_FN ("nil", bench_nil),
    TR_FN ("find", s_find_fn),
    TR_EXPORTS_END
};

//  One figure; returns false if main must exit with *code.
static bool
s_figure (int argc, char **argv, const char *figure, const char *transport, int *code)
{
    *code = 0;
    if (argc > 1 && argv [1][0] != '-' && strcmp (argv [1], figure) != 0)
        return true;
    s_find_run_t run;
    memset (&run, 0, sizeof run);
    bench_run_init (&run.bench, figure, "us", 1e3, DEFAULT_ROUNDS, FIND_CALLS);
    run.transport = transport;
    bench_broker_t broker;
    memset (&broker, 0, sizeof broker);
    tr_config_t config = { .size = sizeof config, .name = ROOT_NAME, .exports = s_exports };
    if (transport) {
        if (bench_broker_start (&broker, transport, 1)) {
            bench_broker_stop (&broker);
            *code = 1;
            return false;
        }
        run.registry = broker.endpoint;
        run.broker = broker.pid;
        config.registry = broker.endpoint;
    }
    int rc = tr_run (&config, argc, argv, s_find_root, &run);
    bench_broker_stop (&broker);
    return !bench_finish (&run.bench, rc, code);
}

int
main (int argc, char **argv)
{
    bench_pin ();
    if (argc == 9 && strcmp (argv [1], "--raw-find-server") == 0)
        return s_raw_find_server (argv);
    const char *parent = getenv (TRI_ENV_PARENT);
    if (parent && *parent) {
        //  A child actor: serve the exports.
        tr_config_t config = { .size = sizeof config, .name = ROOT_NAME, .exports = s_exports };
        return tr_run (&config, argc, argv, NULL, NULL);
    }
    int code;
    if (!s_figure (argc, argv, "find_ipc", "ipc", &code)
    ||  !s_figure (argc, argv, "find_tcp", "tcp", &code))
        return code;
    //  The embedded registry is the root's own, whatever the environment says.
    unsetenv (TRI_ENV_REGISTRY);
    if (!s_figure (argc, argv, "find_embedded", NULL, &code))
        return code;
    return 0;
}
