/*  =========================================================================
    bench_churn.c - registrations from many actors at once against one
    troupe-broker, troupe against raw libzmq

    Figure register_churn: 64 child actors, each registering an extra name
    with tr_register_name and dropping it with tr_unregister_name, over
    and over (16 names in turn), against one troupe-broker on ipc;
    register+unregister pairs per second, all 64 together. The raw
    reference in the same run: 64 copies of this binary
    (--raw-churn-client), each a DEALER sending the very register and
    unregister frames troupe sends to a ROUTER in one more copy
    (--raw-churn-server), which decodes each one and inserts the
    registration into a hash (its fields copied, as the registry does) or
    deletes it, and answers as the broker does. One round of each in
    turn; the figure is the median of the rounds. The CPU time per pair
    of each side's 64 clients and of its server goes to stderr.

    The broker's resident memory (VmRSS) is read after a warm-up of at
    least 10,000 pairs, and at least a round (over the first 15,000 pairs
    or so, the broker grows by about 1 MiB and then stays put, and the raw
    server, which runs no troupe code, grows by as much), and again after
    the rounds, 100,000 pairs or more; the line register_churn_rss says
    whether it stayed flat (grew by less than 10% or by less than 1 MiB).
    After the rounds a listing must show no name of the churn left.

    With two CPUs or more the servers (broker and raw server alike) run
    on CPU 0, with the root, which is idle while the clients work, and
    the 64 clients of each side on CPU 1.

    BENCH_N: pairs per round, all actors together (14,400). BENCH_HELD=N
    (at most 60): each actor (and each raw client) also holds N names
    registered throughout, so that the table holds about 64 * (N + 2)
    registrations while the churn goes on. This binary is also the child
    actor and the raw server and clients.
    =========================================================================
*/
#include "troupe_private.h"
#include "bench.h"
#include "bench_registry.h"

#define DEFAULT_ROUNDS      7
#define CHURN_ACTORS        64
#define CHURN_PAIRS         14400   //  pairs per round, all actors together
#define CHURN_WARMUP        10000   //  pairs before the first RSS reading
#define CHURN_NAMES         16      //  names each actor cycles through
#define CHURN_HELD_MAX      60      //  an actor registers at most 64 names
#define RSS_FLAT_PERCENT    10.0
#define RSS_FLAT_KIB        1024
#define ROOT_NAME           "bench_churn"

//  --------------------------------------------------------------------------
//  Raw libzmq: the churn

//  The raw registry: bind a ROUTER at endpoint and answer register and
//  unregister cmd frames as the broker does, keeping the registrations in
//  a hash by "name uid", until killed.
static int
s_raw_churn_server (const char *endpoint)
{
    zhashx_t *entries = zhashx_new ();
    if (!entries)
        return 2;
    zhashx_set_destructor (entries, bench_entry_destroy);
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    if (!router || zmq_bind (router, endpoint)) {
        fprintf (stderr, "raw churn server: cannot bind %s: %s\n", endpoint, zmq_strerror (errno));
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
        char name [BENCH_NAME_MAX + 1], uid [256], ep [256], host [256], parent [256];
        char key [sizeof name + sizeof uid + 1];
        if (msgpack_unpack_next (&unpacked, (const char *) request, (size_t) size, NULL)
                != MSGPACK_UNPACK_SUCCESS
        ||  !bench_cmd_parse (&unpacked.data, &cid, &fn, &args)) {
            rc = 1;
            break;
        }
        msgpack_sbuffer_clear (&sbuf);
        tri_msg_begin (&pk, TRI_RETURN, cid);
        if (fn->via.str.size == strlen ("tr.registry.register")
        &&  memcmp (fn->via.str.ptr, "tr.registry.register", fn->via.str.size) == 0) {
            //  [name, uid, endpoint, pid, host, parent] -> {lease_ms}
            if (!bench_arg_str (args, 0, name, sizeof name)
            ||  !bench_arg_str (args, 1, uid, sizeof uid)
            ||  !bench_arg_str (args, 2, ep, sizeof ep)
            ||  !bench_arg_str (args, 4, host, sizeof host)
            ||  !bench_arg_str (args, 5, parent, sizeof parent)
            ||  args->via.array.ptr [3].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                rc = 1;
                break;
            }
            snprintf (key, sizeof key, "%s %s", name, uid);
            bench_entry_t *entry = zhashx_lookup (entries, key);
            if (entry)
                entry->expires = bench_now_ms () + 10000;
            else {
                entry = bench_entry_new (name, uid, ep, (int) args->via.array.ptr [3].via.u64,
                                         host, parent);
                if (!entry || zhashx_insert (entries, key, entry)) {
                    rc = 1;
                    break;
                }
            }
            msgpack_pack_map (&pk, 1);
            tri_msg_pack_str (&pk, "lease_ms");
            msgpack_pack_int (&pk, 10000);
        }
        else {
            //  [uid, name] -> nil
            if (!bench_arg_str (args, 0, uid, sizeof uid)
            ||  !bench_arg_str (args, 1, name, sizeof name)) {
                rc = 1;
                break;
            }
            snprintf (key, sizeof key, "%s %s", name, uid);
            zhashx_delete (entries, key);
            msgpack_pack_nil (&pk);
        }
        if (zmq_send (router, rid, (size_t) rid_size, ZMQ_SNDMORE) < 0
        ||  zmq_send (router, sbuf.data, sbuf.size, 0) < 0)
            break;
    }
    if (rc)
        fprintf (stderr, "raw churn server: a bad request\n");
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&sbuf);
    zmq_close (router);
    zmq_ctx_term (ctx);
    zhashx_destroy (&entries);
    return rc;
}

//  The frames a churning actor idx sends for name k: the register and the
//  unregister, as troupe packs them (copied into reg and unreg).
static void
s_churn_frames (char prefix, int idx, int k, uint8_t *reg, size_t *reg_size, uint8_t *unreg,
                size_t *unreg_size)
{
    char name [32], uid [96], endpoint [128];
    snprintf (name, sizeof name, "%c%d-%d", prefix, idx, k);
    snprintf (uid, sizeof uid, "churn-%d@%s", idx, "00000000-0000-0000-0000-000000000000");
    snprintf (endpoint, sizeof endpoint, "ipc:///tmp/troupe-%d-%.8s.ipc",
              (int) getpid (), "00000000");
    tr_args_t *args = tr_pack ("[sssiss]", name, uid, endpoint, (int) getpid (),
                               "localhost", "bench_churn@00000000-0000-0000-0000-000000000000");
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    tri_msg_pack_cmd (&sbuf, 1000000, "tr.registry.register", args);
    *reg_size = sbuf.size < BENCH_MAX_FRAME? sbuf.size: BENCH_MAX_FRAME;
    memcpy (reg, sbuf.data, *reg_size);
    tr_args_destroy (&args);
    msgpack_sbuffer_clear (&sbuf);
    args = tr_pack ("[ss]", uid, name);
    tri_msg_pack_cmd (&sbuf, 1000001, "tr.registry.unregister", args);
    *unreg_size = sbuf.size < BENCH_MAX_FRAME? sbuf.size: BENCH_MAX_FRAME;
    memcpy (unreg, sbuf.data, *unreg_size);
    tr_args_destroy (&args);
    msgpack_sbuffer_destroy (&sbuf);
}

//  A raw churning client: a DEALER on the server, one on the root's
//  control ROUTER. Register held names for good, then say hello to the
//  root; then, for each "go N" from it, make N register+unregister pairs
//  (name by name, CHURN_NAMES of them) and say "done"; N = 0 ends it.
static int
s_raw_churn_client (const char *server, const char *control, int idx, int held)
{
    static uint8_t reg [CHURN_NAMES][BENCH_MAX_FRAME], unreg [CHURN_NAMES][BENCH_MAX_FRAME];
    size_t reg_size [CHURN_NAMES], unreg_size [CHURN_NAMES];
    for (int k = 0; k < CHURN_NAMES; k++)
        s_churn_frames ('c', idx, k, reg [k], &reg_size [k], unreg [k], &unreg_size [k]);
    void *ctx = zmq_ctx_new ();
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    void *boss = zmq_socket (ctx, ZMQ_DEALER);
    int rc = 1;
    char text [32];
    uint8_t answer [BENCH_MAX_FRAME];
    if (!dealer || !boss || zmq_connect (dealer, server) || zmq_connect (boss, control))
        goto done;
    for (int k = 0; k < held; k++) {
        uint8_t frame [BENCH_MAX_FRAME], unused [BENCH_MAX_FRAME];
        size_t size, unused_size;
        s_churn_frames ('h', idx, k, frame, &size, unused, &unused_size);
        if (zmq_send (dealer, frame, size, 0) < 0
        ||  zmq_recv (dealer, answer, sizeof answer, 0) < 0)
            goto done;
    }
    if (zmq_send (boss, "hello", 5, 0) < 0)
        goto done;
    for (;;) {
        int size = zmq_recv (boss, text, sizeof text - 1, 0);
        if (size < 0)
            goto done;
        text [size] = 0;
        int pairs = atoi (text);
        if (pairs <= 0)
            break;
        for (int k = 0; k < pairs; k++) {
            int n = k % CHURN_NAMES;
            if (zmq_send (dealer, reg [n], reg_size [n], 0) < 0
            ||  zmq_recv (dealer, answer, sizeof answer, 0) < 0
            ||  zmq_send (dealer, unreg [n], unreg_size [n], 0) < 0
            ||  zmq_recv (dealer, answer, sizeof answer, 0) < 0)
                goto done;
        }
        if (zmq_send (boss, "done", 4, 0) < 0)
            goto done;
    }
    rc = 0;
done:
    zmq_close (dealer);
    zmq_close (boss);
    zmq_ctx_term (ctx);
    return rc;
}

typedef struct {
    bench_bound_t control;          //  the clients connect to it
    char server_endpoint [256];
    char server_path [128];
    pid_t server;
    pid_t clients [CHURN_ACTORS];
    uint8_t rid [CHURN_ACTORS][256];
    size_t rid_size [CHURN_ACTORS];
    int started;
    int held;                       //  names each client holds throughout
} s_raw_churn_t;

//  Start the raw server (on CPU 0) and the 64 clients, and take their
//  hellos. Returns 0, or -1 with the reason on stderr.
static int
s_raw_churn_open (s_raw_churn_t *self, int held)
{
    memset (self, 0, sizeof *self);
    self->held = held;
    char held_arg [16];
    snprintf (held_arg, sizeof held_arg, "%d", held);
    if (bench_bind (&self->control, ZMQ_ROUTER, "ipc", "churn-control"))
        return -1;
    snprintf (self->server_path, sizeof self->server_path, "/tmp/troupe-bench-churn-%d.ipc",
              (int) getpid ());
    snprintf (self->server_endpoint, sizeof self->server_endpoint, "ipc://%s", self->server_path);
    char *server_argv [] = { "bench_churn", "--raw-churn-server", self->server_endpoint, NULL };
    if ((self->server = bench_spawn_self (server_argv)) < 0) {
        perror ("bench_churn: cannot spawn the raw server");
        return -1;
    }
    for (; self->started < CHURN_ACTORS; self->started++) {
        char idx [16];
        snprintf (idx, sizeof idx, "%d", self->started);
        char *argv [] = { "bench_churn", "--raw-churn-client", self->server_endpoint,
                          self->control.endpoint, idx, held_arg, NULL };
        if ((self->clients [self->started] = bench_spawn_self (argv)) < 0) {
            perror ("bench_churn: cannot spawn a raw client");
            return -1;
        }
    }
    int timeout = 10000;
    zmq_setsockopt (self->control.socket, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    for (int i = 0; i < CHURN_ACTORS; i++) {
        char hello [16];
        int size = zmq_recv (self->control.socket, self->rid [i], 256, 0);
        if (size <= 0 || zmq_recv (self->control.socket, hello, sizeof hello, 0) < 0) {
            fprintf (stderr, "bench_churn: a raw client did not say hello\n");
            return -1;
        }
        self->rid_size [i] = (size_t) size;
    }
    return 0;
}

//  Every client makes pairs pairs; the time until the last is done in *ns.
static int
s_raw_churn_round (s_raw_churn_t *self, int pairs, int64_t *ns)
{
    char go [32];
    int size = snprintf (go, sizeof go, "%d", pairs);
    int64_t start = bench_now_ns ();
    for (int i = 0; i < CHURN_ACTORS; i++)
        if (zmq_send (self->control.socket, self->rid [i], self->rid_size [i], ZMQ_SNDMORE) < 0
        ||  zmq_send (self->control.socket, go, (size_t) size, 0) < 0)
            return -1;
    for (int i = 0; i < CHURN_ACTORS; i++) {
        uint8_t rid [256];
        char done [16];
        if (zmq_recv (self->control.socket, rid, sizeof rid, 0) <= 0
        ||  zmq_recv (self->control.socket, done, sizeof done, 0) < 0)
            return -1;
    }
    *ns = bench_now_ns () - start;
    return 0;
}

//  Stop the clients (go 0) and the server (SIGTERM), reap them all.
static void
s_raw_churn_close (s_raw_churn_t *self)
{
    for (int i = 0; i < CHURN_ACTORS; i++)
        if (self->rid_size [i]
        &&  (zmq_send (self->control.socket, self->rid [i], self->rid_size [i], ZMQ_SNDMORE) < 0
             || zmq_send (self->control.socket, "0", 1, 0) < 0))
            kill (self->clients [i], SIGKILL);
    for (int i = 0; i < self->started; i++) {
        //  A client that never said hello cannot be told to stop.
        if (!self->rid_size [i])
            kill (self->clients [i], SIGKILL);
    }
    for (int i = 0; i < self->started; i++)
        bench_reap (self->clients [i]);
    if (self->server > 0) {
        kill (self->server, SIGTERM);
        bench_reap (self->server);
    }
    bench_unbind (&self->control);
    if (*self->server_path)
        unlink (self->server_path);
}

//  --------------------------------------------------------------------------
//  The churn, troupe

typedef struct {
    bench_run_t bench;
    pid_t broker;
    int warmup_pairs;               //  pairs per actor before the first reading
    int held;                       //  names each actor holds throughout
    long rss_before, rss_after;     //  the broker's, KiB
    int64_t timed_pairs;
} s_churn_run_t;

//  In a child: register and drop an extra name args [0] times (name by
//  name, CHURN_NAMES of them; args [1] is this actor's index).
static int
s_churn_fn (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) out;
    int pairs, idx;
    if (tr_unpack (args, "[ii]", &pairs, &idx))
        return tr_raise (ctx, "BadRequest", "churn takes [pairs, index]");
    tr_actor_t *self = tr_ctx_actor (ctx);
    for (int k = 0; k < pairs; k++) {
        char name [32];
        snprintf (name, sizeof name, "c%d-%d", idx, k % CHURN_NAMES);
        int rc = tr_register_name (self, name);
        if (rc == 0)
            rc = tr_unregister_name (self, name);
        if (rc)
            return rc;
    }
    return 0;
}

//  In a child: register args [0] names for good (args [1] is this actor's
//  index).
static int
s_hold_fn (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) out;
    int count, idx;
    if (tr_unpack (args, "[ii]", &count, &idx))
        return tr_raise (ctx, "BadRequest", "hold takes [count, index]");
    for (int k = 0; k < count; k++) {
        char name [32];
        snprintf (name, sizeof name, "h%d-%d", idx, k);
        int rc = tr_register_name (tr_ctx_actor (ctx), name);
        if (rc)
            return rc;
    }
    return 0;
}

typedef struct {
    tr_portal_t *portal;
    const char *fn;                 //  "churn" or "hold"
    int count;
    int idx;
} s_churner_t;

static int
s_churner (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    s_churner_t *self = arg;
    tr_args_t *args = tr_pack ("[ii]", self->count, self->idx);
    int rc = args? tr_portal_run (self->portal, self->fn, args, NULL): TR_ENOMEM;
    tr_args_destroy (&args);
    return rc;
}

//  Every child calls fn (count), all at once; the time in *ns.
static int
s_troupe_churn_round (tr_actor_t *self, tr_portal_t **portals, const char *fn, int count,
                      int64_t *ns)
{
    static s_churner_t churners [CHURN_ACTORS];
    tr_task_t *tasks [CHURN_ACTORS] = { NULL };
    int64_t start = bench_now_ns ();
    int rc = 0, made = 0;
    for (; made < CHURN_ACTORS; made++) {
        churners [made] = (s_churner_t) { portals [made], fn, count, made };
        if ((rc = tr_task_spawn (self, s_churner, &churners [made], &tasks [made])))
            break;
    }
    for (int i = 0; i < made; i++) {
        int result = 0;
        int join_rc = tr_task_join (&tasks [i], &result);
        if (!rc)
            rc = join_rc? join_rc: result;
    }
    *ns = bench_now_ns () - start;
    return rc;
}

static int
s_churn_root (tr_actor_t *self, void *arg)
{
    s_churn_run_t *run = arg;
    bench_run_t *bench = &run->bench;
    bench->was_root = true;
    bench->failed = true;
    static s_raw_churn_t raw;
    memset (&raw, 0, sizeof raw);
    static tr_portal_t *portals [CHURN_ACTORS];
    tr_nursery_t *nursery = NULL;
    int pairs = (bench->per_round + CHURN_ACTORS - 1) / CHURN_ACTORS;
    int64_t troupe_ns, raw_ns;
    int rc;
    if ((rc = tr_nursery_open (self, &nursery))
    ||  (rc = tr_nursery_start_actors (nursery, "churn", CHURN_ACTORS, NULL, portals))) {
        fprintf (stderr, "bench_churn: cannot start the children: %s\n", tr_strerror (rc));
        goto done;
    }
    if (run->held && (rc = s_troupe_churn_round (self, portals, "hold", run->held, &troupe_ns))) {
        fprintf (stderr, "bench_churn: cannot register the held names: %s\n", tr_strerror (rc));
        goto done;
    }
    if (s_raw_churn_open (&raw, run->held))
        goto done;
    //  bench_record counts per_round operations: the pairs made.
    bench->per_round = pairs * CHURN_ACTORS;
    fprintf (stderr, "bench: %s: %d actors, %d pairs each per round, %d rounds, "
             "%d names held by each\n", bench->name, CHURN_ACTORS, pairs, bench->rounds,
             run->held);
    //  The warm-up, then the broker's memory before the rounds.
    if ((rc = s_troupe_churn_round (self, portals, "churn", run->warmup_pairs, &troupe_ns))
    ||  s_raw_churn_round (&raw, run->warmup_pairs, &raw_ns)) {
        fprintf (stderr, "bench_churn: warm-up failed: %s\n", tr_strerror (rc));
        goto done;
    }
    run->rss_before = bench_rss_kib (run->broker);
    long raw_rss_before = bench_rss_kib (raw.server);
    //  CPU time of each side's clients (all 64) and server.
    pid_t children [CHURN_ACTORS];
    for (int i = 0; i < CHURN_ACTORS; i++)
        children [i] = (pid_t) tr_portal_pid (portals [i]);
    int64_t cpu [2][2] = { { 0, 0 }, { 0, 0 } };
    for (int r = 0; r < bench->rounds; r++) {
        int64_t clients = bench_cpu_sum (children, CHURN_ACTORS);
        int64_t server = bench_cpu_ns (run->broker);
        if ((rc = s_troupe_churn_round (self, portals, "churn", pairs, &troupe_ns))) {
            fprintf (stderr, "bench_churn: churn failed: %s\n", tr_strerror (rc));
            goto done;
        }
        cpu [0][0] += bench_cpu_sum (children, CHURN_ACTORS) - clients;
        cpu [0][1] += bench_cpu_ns (run->broker) - server;
        clients = bench_cpu_sum (raw.clients, CHURN_ACTORS);
        server = bench_cpu_ns (raw.server);
        if (s_raw_churn_round (&raw, pairs, &raw_ns)) {
            fprintf (stderr, "bench_churn: raw churn failed: %s\n", zmq_strerror (errno));
            goto done;
        }
        cpu [1][0] += bench_cpu_sum (raw.clients, CHURN_ACTORS) - clients;
        cpu [1][1] += bench_cpu_ns (raw.server) - server;
        bench_record (bench, r, troupe_ns, raw_ns);
        run->timed_pairs += (int64_t) pairs * CHURN_ACTORS;
        fprintf (stderr, "bench: %s round %d: broker RSS %ld KiB after %lld pairs\n",
                 bench->name, r, bench_rss_kib (run->broker), (long long) run->timed_pairs);
    }
    run->rss_after = bench_rss_kib (run->broker);
    //  Every pair's name is gone again: the actors' own names and the
    //  held ones are all that is left, and the root's and the broker's.
    tr_value_t *all = NULL;
    rc = tr_registry_list (self, NULL, &all);
    size_t left = rc? 0: tr_value_object (all)->via.array.size;
    tr_value_destroy (&all);
    if (rc || left != (size_t) CHURN_ACTORS * (1 + run->held) + 2) {
        fprintf (stderr, "bench_churn: %zu registrations left after the churn, "
                 "want %d (%s)\n", left, CHURN_ACTORS * (1 + run->held) + 2, tr_strerror (rc));
        goto done;
    }
    double per_pair = run->timed_pairs * 1e3;
    fprintf (stderr, "bench: %s: CPU per pair, 64 clients + server: troupe %.2f + %.2f us, "
             "raw %.2f + %.2f us; raw server RSS %ld -> %ld KiB\n", bench->name,
             cpu [0][0] / per_pair, cpu [0][1] / per_pair, cpu [1][0] / per_pair,
             cpu [1][1] / per_pair, raw_rss_before, bench_rss_kib (raw.server));
    bench->failed = false;
done:
    s_raw_churn_close (&raw);
    if (nursery)
        tr_nursery_close (&nursery, NULL);
    return bench->failed? 1: 0;
}

//  --------------------------------------------------------------------------

static const tr_export_t s_exports [] = {
    TR_FN ("nil", bench_nil),
    TR_FN ("churn", s_churn_fn),
    TR_FN ("hold", s_hold_fn),
    TR_EXPORTS_END
};

int
main (int argc, char **argv)
{
    if (argc == 3 && strcmp (argv [1], "--raw-churn-server") == 0) {
        //  Where the broker runs: see the banner.
        bench_pin_pid (0, 0);
        return s_raw_churn_server (argv [2]);
    }
    bench_pin ();
    if (argc == 6 && strcmp (argv [1], "--raw-churn-client") == 0)
        return s_raw_churn_client (argv [2], argv [3], atoi (argv [4]), atoi (argv [5]));
    const char *parent = getenv (TRI_ENV_PARENT);
    if (parent && *parent) {
        //  A child actor: serve the exports.
        tr_config_t config = { .size = sizeof config, .name = ROOT_NAME, .exports = s_exports };
        return tr_run (&config, argc, argv, NULL, NULL);
    }
    s_churn_run_t run;
    memset (&run, 0, sizeof run);
    bench_run_init (&run.bench, "register_churn", "pairs/s", 0, DEFAULT_ROUNDS, CHURN_PAIRS);
    //  At least CHURN_WARMUP pairs, and at least a round.
    int warmup = run.bench.per_round > CHURN_WARMUP? run.bench.per_round: CHURN_WARMUP;
    run.warmup_pairs = (warmup + CHURN_ACTORS - 1) / CHURN_ACTORS;
    const char *held = getenv ("BENCH_HELD");
    run.held = held? atoi (held): 0;
    if (run.held < 0 || run.held > CHURN_HELD_MAX) {
        fprintf (stderr, "bench_churn: BENCH_HELD: 0 to %d\n", CHURN_HELD_MAX);
        return 1;
    }
    bench_broker_t broker;
    if (bench_broker_start (&broker, "ipc", 0)) {
        bench_broker_stop (&broker);
        return 1;
    }
    run.broker = broker.pid;
    tr_config_t config = { .size = sizeof config, .name = ROOT_NAME, .exports = s_exports,
                           .registry = broker.endpoint };
    int rc = tr_run (&config, argc, argv, s_churn_root, &run);
    bench_broker_stop (&broker);
    int code;
    if (bench_finish (&run.bench, rc, &code))
        return code;
    long growth = run.rss_after - run.rss_before;
    double percent = run.rss_before > 0? 100.0 * growth / run.rss_before: 0;
    bool flat = run.rss_before > 0 && run.rss_after > 0
             && (percent < RSS_FLAT_PERCENT || growth < RSS_FLAT_KIB);
    printf ("bench: register_churn_rss before=%ld KiB after=%ld KiB growth=%+ld KiB "
            "(%+.1f%%) over %lld pairs: %s\n", run.rss_before, run.rss_after, growth,
            percent, (long long) run.timed_pairs, flat? "flat": "GROWING");
    fflush (stdout);
    return 0;
}
