/*  =========================================================================
    troupe-broker.c - the registry as a program of its own

    A root actor with no registry address serves the registry itself, so
    the broker is only that: a root whose ROUTER binds at the endpoint
    actors on other hosts are told (--tr-registry), whose registry takes
    the limits given here, and whose main task parks until a signal or a
    peer's cancel stops it. All the registry's work is the library's; this
    file reads options, says where it serves and maps how it ended to an
    exit status an operator or systemd can act on.
    =========================================================================
*/
#include <troupe.h>
#include "usage.h"
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BROKER_NAME         "troupe-broker"
#define BROKER_ENDPOINT     "tcp://127.0.0.1:5555"

//  Shortest lease accepted: registrants renew every third of it, so a
//  shorter one would turn renewals into a stream of traffic.
#define BROKER_LEASE_MIN_MS 100

//  Exit statuses (see the man page).
#define EXIT_STOPPED        0   //  served until asked to stop
#define EXIT_CANNOT_SERVE   1   //  the endpoint could not be bound
//  EXIT_USAGE (usage.h), 2: a bad option

static void
s_usage (FILE *stream)
{
    fprintf (stream,
        "Usage: " BROKER_NAME " [OPTION]...\n"
        "Serve the troupe registry: actors register their names with it and\n"
        "roots find them by name, across hosts.\n"
        "\n"
        "  -e, --endpoint ENDPOINT      ZeroMQ endpoint to serve at\n"
        "                               (default " BROKER_ENDPOINT ";\n"
        "                               tcp://IP:* takes a free port)\n"
        "  -m, --max-registrations N    registrations held at once (default 4096)\n"
        "  -l, --lease-ms MS            lease granted to each registration, in\n"
        "                               milliseconds, at least %d (default 10000)\n"
        "  -k, --keys DIR               CURVE keys made by `troupe keygen DIR`:\n"
        "                               only actors with allowed keys get in\n"
        "                               (default $TROUPE_KEYS)\n"
        "      --insecure               serve a non-loopback tcp endpoint without\n"
        "                               keys, open to anyone who reaches it\n"
        "  -v, --verbose                log at info level; twice, at debug level\n"
        "  -h, --help                   print this help and exit\n"
        "  -V, --version                print the version and exit\n"
        "\n"
        "It prints \"" BROKER_NAME " serving at ENDPOINT\" once it serves, and\n"
        "exits 0 on SIGINT or SIGTERM, 1 if it cannot serve, 2 on a bad option.\n",
        BROKER_LEASE_MIN_MS);
}

//  The broker's main task: say where it serves, then park until cancelled
//  (a signal or a peer's cancel). The registry runs beside it, served by
//  the library.
static int
s_broker_main (tr_actor_t *self, void *arg)
{
    (void) arg;
    const char *endpoint = tr_actor_endpoint (self);
    tr_log (TR_LOG_INFO, "TR-BROKER", "serving the registry at %s", endpoint);
    printf (BROKER_NAME " serving at %s\n", endpoint);
    fflush (stdout);
    tr_ctx_t *ctx = tr_actor_ctx (self);
    //  tr_sleep takes no "forever": park an hour at a time.
    while (tr_sleep (ctx, 3600 * 1000) == 0)
        ;
    return 0;
}

int
main (int argc, char **argv)
{
    const char *endpoint = BROKER_ENDPOINT;
    int registry_max = 0;           //  0: the library's default
    int lease_ms = 0;
    int verbose = 0;
    const char *keys = NULL;        //  NULL: $TROUPE_KEYS, else none
    int insecure = 0;

    static const struct option options [] = {
        { "endpoint",           required_argument, NULL, 'e' },
        { "max-registrations",  required_argument, NULL, 'm' },
        { "lease-ms",           required_argument, NULL, 'l' },
        { "keys",               required_argument, NULL, 'k' },
        { "insecure",           no_argument,       NULL, 'I' },
        { "verbose",            no_argument,       NULL, 'v' },
        { "help",               no_argument,       NULL, 'h' },
        { "version",            no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    opterr = 0;                     //  the messages below name the problem
    int option;
    while ((option = getopt_long (argc, argv, ":e:m:l:k:vhV", options, NULL)) != -1) {
        switch (option) {
            case 'e':
                if (!*optarg)
                    return usage_bad (BROKER_NAME, "empty --endpoint");
                endpoint = optarg;
                break;
            case 'm':
                if (!usage_parse_int (optarg, 1, &registry_max))
                    return usage_bad (BROKER_NAME, "bad --max-registrations '%s': "
                                        "want a whole number of at least 1", optarg);
                break;
            case 'l':
                if (!usage_parse_int (optarg, BROKER_LEASE_MIN_MS, &lease_ms))
                    return usage_bad (BROKER_NAME, "bad --lease-ms '%s': want a whole number of "
                                        "milliseconds, at least %d", optarg, BROKER_LEASE_MIN_MS);
                break;
            case 'k':
                if (!*optarg)
                    return usage_bad (BROKER_NAME, "empty --keys");
                keys = optarg;
                break;
            case 'I':
                insecure = 1;
                break;
            case 'v':
                verbose++;
                break;
            case 'h':
                s_usage (stdout);
                return 0;
            case 'V':
                printf (BROKER_NAME " %d.%d.%d\n",
                        TR_VERSION_MAJOR, TR_VERSION_MINOR, TR_VERSION_PATCH);
                return 0;
            case ':':
                return usage_bad (BROKER_NAME, "option '%s' needs a value", argv [optind - 1]);
            default:
                //  optopt names a short option; a long one is the argument.
                if (optopt)
                    return usage_bad (BROKER_NAME, "unknown option '-%c'", optopt);
                return usage_bad (BROKER_NAME, "unknown option '%s'", argv [optind - 1]);
        }
    }
    if (optind < argc)
        return usage_bad (BROKER_NAME, "unexpected argument '%s'", argv [optind]);

    //  A broker serves the registry; it never registers with another one,
    //  whatever the environment it was started from says.
    unsetenv ("TROUPE_REGISTRY");
    //  The library reads its level from the environment when it starts.
    if (verbose && setenv ("TROUPE_LOGLEVEL", verbose > 1? "debug": "info", 1)) {
        perror (BROKER_NAME ": setenv");
        return EXIT_CANNOT_SERVE;
    }
    tr_config_t config = TR_CONFIG_INIT;
    config.name = BROKER_NAME;
    config.bind = endpoint;
    config.registry = NULL;         //  no registry elsewhere: serve it here
    config.registry_max = registry_max;
    config.registry_lease_ms = lease_ms;
    config.keys = keys;
    config.insecure = insecure;

    //  Only argv [0]: the options above are ours, not the library's --tr-*.
    char *run_argv [] = { argv [0], NULL };
    int rc = tr_run (&config, 1, run_argv, s_broker_main, NULL);
    if (rc < 0) {
        fprintf (stderr, BROKER_NAME ": cannot serve at %s: %s\n",
                 endpoint, tr_strerror (rc));
        return EXIT_CANNOT_SERVE;
    }
    //  tr_run says 130 or 143 after SIGINT or SIGTERM: the broker was asked
    //  to stop and did, which is a clean exit. A peer's cancel returns 0.
    if (rc == 0 || rc == 128 + SIGINT || rc == 128 + SIGTERM)
        return EXIT_STOPPED;
    //  The main task returns nothing else: anything else is a failure.
    return EXIT_CANNOT_SERVE;
}
