/*  =========================================================================
    worker.c - a worker to run as a daemon, on this host or any other

    Start it by hand: it registers under its name with a registry (a
    troupe-broker) and serves until Ctrl-C, SIGTERM or a peer's cancel.

        troupe-broker --endpoint tcp://0.0.0.0:5555                 # host A
        examples/worker --tr-daemon --tr-name w-b \
            --tr-registry tcp://A:5555 --tr-bind 'tcp://B:*'        # host B

    A root that uses the same registry finds it by name with
    tr_wait_for_actor (self, "w-b", timeout_ms, &portal) and calls:

      echo   [anything...]  its arguments, unchanged
      info   []             {name, uid, host, pid} of this worker
      count  [n, every_ms?] a context: started with n, then streams the
                            values 0 .. n-1 (one every every_ms, default
                            0) and returns their sum

    Copy it, replace the functions with yours and keep main as it is.
    =========================================================================
*/
#include <troupe.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int
s_echo (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) ctx;
    return tr_reply_object (out, args);
}

static int
s_info (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    (void) args;
    char host [256] = "";
    gethostname (host, sizeof host - 1);
    tr_actor_t *self = tr_ctx_actor (ctx);
    return tr_reply_pack (out, "{s:s, s:s, s:s, s:i}", "name", tr_actor_name (self),
                          "uid", tr_actor_uid (self), "host", host, "pid", (int) getpid ());
}

//  A context: the caller's open returns with n once we call started, then
//  the values arrive on the stream, and our return value is its result.
static int
s_count (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    int64_t n, every_ms = 0;
    if ((tr_unpack (args, "[I]", &n) && tr_unpack (args, "[II]", &n, &every_ms))
    ||  n < 0 || every_ms < 0 || every_ms > 60000)
        return tr_raise (ctx, "TypeError", "count takes [n, every_ms?], n >= 0, "
                         "every_ms from 0 to 60000");
    tr_args_t *first = tr_pack ("I", n);
    int rc = first? tr_ctx_started (ctx, first): TR_ENOMEM;
    tr_args_destroy (&first);
    tr_stream_t *stream;
    if (rc == 0)
        rc = tr_ctx_open_stream (ctx, &stream);
    int64_t sum = 0;
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        if (every_ms > 0 && i > 0)
            rc = tr_sleep (ctx, (int) every_ms);
        if (rc == 0)
            rc = tr_stream_send_pack (stream, "I", i);
        sum += i;
    }
    if (rc)                     //  cancelled, or the caller closed the stream
        return rc;
    return tr_reply_pack (out, "I", sum);
}

static const char *s_usage =
    "usage: worker --tr-daemon --tr-name NAME --tr-registry ENDPOINT[,ENDPOINT...]\n"
    "              [--tr-bind ENDPOINT]\n"
    "Serves echo, info and count under NAME until Ctrl-C, SIGTERM or a peer's\n"
    "cancel. ENDPOINT is a troupe-broker's (troupe-broker --endpoint tcp://0.0.0.0:5555);\n"
    "--tr-bind is where this worker serves, an address the others reach, such as\n"
    "'tcp://192.0.2.7:*' (default: an ipc path, reachable on this host only).\n";

//  Started without --tr-daemon, tr_run makes this the root: say how to run it.
static int
s_root (tr_actor_t *self, void *arg)
{
    (void) self;
    char **argv = arg;
    for (int i = 1; argv [i]; i++)
        if (strcmp (argv [i], "--help") == 0 || strcmp (argv [i], "-h") == 0) {
            fputs (s_usage, stdout);
            return 0;
        }
    fputs (s_usage, stderr);
    return 2;
}

int
main (int argc, char **argv)
{
    static const tr_export_t exports [] = {
        TR_FN ("echo", s_echo),
        TR_FN ("info", s_info),
        TR_CTX_FN ("count", s_count),
        TR_EXPORTS_END
    };
    tr_config_t config = TR_CONFIG_INIT;
    config.name = "worker";
    config.exports = exports;
    int rc = tr_run (&config, argc, argv, s_root, argv);
    if (rc < 0)
        fprintf (stderr, "worker: cannot start: %s\n", tr_strerror (rc));
    return rc < 0? 1: rc;
}
