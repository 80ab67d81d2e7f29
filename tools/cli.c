/*  =========================================================================
    cli.c - the troupe program, the command line's view of a deployment:
    list, ping, call and cancel actors through the registry, make CURVE keys

    The tool is a root actor like any other: it runs one command as its
    main task against the registry named by --registry (else
    $TROUPE_REGISTRY, else troupe-broker's default endpoint), then exits
    with the command's status. Being a root with an external registry it
    registers there too, under "troupe"; it leaves its own uid out of what
    it lists.

    The library's blocking calls take no timeout of their own (finds and
    calls wait on the peer), so --timeout is kept by a watchdog task: each
    find or call arms it, and when it fires it cancels the command task,
    which then unwinds through the library's checkpoints like any
    cancelled task, remote calls cancelled and acked.

    Values cross the command line as JSON (jansson), converted to and from
    msgpack here: bin becomes a base64 string, ext becomes null, a map key
    that is not a string becomes its JSON text.
    =========================================================================
*/
#include <troupe.h>
#include "usage.h"
#include "json.h"
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOOL_NAME           "troupe"
#define TOOL_REGISTRY       "tcp://127.0.0.1:5555"
#define TOOL_TIMEOUT_MS     5000
#define TOOL_PING_COUNT     4

//  Exit statuses (see the man page).
#define EXIT_DONE           0   //  the command did what it was asked
#define EXIT_FAILED         1   //  it could not: unreachable, unknown, refused
//  EXIT_USAGE (usage.h), 2: a bad command line or bad JSON

typedef struct {
    const char *command;        //  ls, tree, ping, call, cancel, keygen
    char **args;                //  the command's operands
    int nargs;
    const char *registry;       //  registry address, never NULL
    const char *keys;           //  --keys DIR, or NULL
    int timeout_ms;             //  each find or call
    int count;                  //  ping's calls
    bool json;                  //  --json
    json_t *call_args;          //  call's arguments, parsed before the runtime
    tr_actor_t *actor;
    tr_task_t *work;            //  the command's task
    tr_task_t *watchdog;        //  armed for one find or call, else NULL
    bool timed_out;             //  the watchdog fired
    int status;                 //  the command's exit status
} cli_t;

//  --------------------------------------------------------------------------
//  Help

static const char *s_command_help [][2] = {
    { "ls", "Usage: troupe ls [--json] [OPTION]...\n"
            "List every actor registered in the registry: name, uid, host, pid,\n"
            "endpoint, how long it has been registered and the lease it has left\n"
            "(a table, or with --json a JSON array of {name, uid, endpoint, pid,\n"
            "host, parent, expires_ms, age_ms}).\n" },
    { "tree", "Usage: troupe tree [OPTION]...\n"
              "Show the registered actors as a tree, each under its parent,\n"
              "roots first.\n" },
    { "ping", "Usage: troupe ping NAME [-c COUNT] [OPTION]...\n"
              "Find the actor registered as NAME and call its tr.info COUNT times\n"
              "(default 4), printing each round trip and min/avg/max. Exits 0 when\n"
              "every call was answered.\n" },
    { "call", "Usage: troupe call NAME FUNCTION [JSON] [--json] [OPTION]...\n"
              "Call FUNCTION in the actor registered as NAME with JSON as its\n"
              "arguments (default []) and print its result as JSON (indented;\n"
              "with --json, on one line). A remote error is printed on stderr with\n"
              "its type, message, origin and traceback, and exits 1; bad JSON\n"
              "exits 2. Binary values print as base64 strings, extension values\n"
              "as null.\n" },
    { "cancel", "Usage: troupe cancel NAME [OPTION]...\n"
                "Ask the actor registered as NAME to cancel all its work and exit,\n"
                "and wait for its acknowledgement. Exits 0 if it acknowledged.\n" },
    { "keygen", "Usage: troupe keygen DIR\n"
                "Make a deployment's CURVE keys in DIR (created if missing):\n"
                "troupe.key_secret (mode 0600), troupe.key and allowed/troupe.key.\n"
                "Never overwrites keys: exits 1 if DIR holds keys already. Needs no\n"
                "registry.\n" },
};

#define COMMANDS (sizeof s_command_help / sizeof s_command_help [0])

static void
s_options_help (FILE *stream)
{
    fprintf (stream,
        "\n"
        "Options (every command):\n"
        "  -r, --registry ENDPOINT[,ENDPOINT]  registry to ask (default\n"
        "                               $TROUPE_REGISTRY, else " TOOL_REGISTRY ")\n"
        "  -k, --keys DIR               the deployment's CURVE keys (passed on as\n"
        "                               --tr-keys; used once the library has CURVE)\n"
        "  -t, --timeout MS             wait at most MS for each find or call\n"
        "                               (default %d)\n"
        "  -h, --help                   print help and exit\n",
        TOOL_TIMEOUT_MS);
}

static void
s_usage (FILE *stream)
{
    fprintf (stream,
        "Usage: " TOOL_NAME " COMMAND [ARG]... [OPTION]...\n"
        "List, ping, call and cancel troupe actors through the registry.\n"
        "\n"
        "Commands:\n"
        "  ls [--json]                  list the registered actors\n"
        "  tree                         the registered actors as a tree\n"
        "  ping NAME [-c COUNT]         round trips to an actor\n"
        "  call NAME FUNCTION [JSON] [--json]\n"
        "                               call a function, print its result as JSON\n"
        "  cancel NAME                  cancel an actor, wait for its ack\n"
        "  keygen DIR                   make a deployment's CURVE keys\n");
    s_options_help (stream);
    fprintf (stream,
        "  -V, --version                print the version and exit\n"
        "\n"
        "'" TOOL_NAME " COMMAND --help' describes one command. Exits 0 on success,\n"
        "1 when the command failed (registry unreachable, no such actor, remote\n"
        "error, no ack), 2 on a bad command line or bad JSON.\n");
}

static const char *
s_help_of (const char *command)
{
    for (size_t i = 0; i < COMMANDS; i++)
        if (strcmp (s_command_help [i][0], command) == 0)
            return s_command_help [i][1];
    return NULL;
}

static double
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

//  Print the value as JSON on stdout, indented or on one line.
static int
s_print_json (const msgpack_object *o, bool compact)
{
    json_t *json = tool_json_from_object (o);
    char *text = json? json_dumps (json, JSON_ENCODE_ANY | JSON_PRESERVE_ORDER
                                         | (compact? JSON_COMPACT: JSON_INDENT (2))): NULL;
    json_decref (json);
    if (!text) {
        fprintf (stderr, TOOL_NAME ": out of memory\n");
        return EXIT_FAILED;
    }
    printf ("%s\n", text);
    free (text);
    return EXIT_DONE;
}

//  --------------------------------------------------------------------------
//  The watchdog: cancels the command task when a find or call outlasts
//  --timeout.

static int
s_watchdog (tr_ctx_t *ctx, void *arg)
{
    cli_t *self = arg;
    if (tr_sleep (ctx, self->timeout_ms) == 0) {
        self->timed_out = true;
        tr_task_cancel (self->work);
    }
    return 0;
}

static void
s_disarm (cli_t *self)
{
    if (self->watchdog) {
        tr_task_cancel (self->watchdog);
        tr_task_join (&self->watchdog, NULL);   //  left set if we are cancelled
    }
}

static void
s_arm (cli_t *self)
{
    s_disarm (self);
    if (!self->watchdog)
        tr_task_spawn (self->actor, s_watchdog, self, &self->watchdog);
}

//  --------------------------------------------------------------------------
//  Reporting failures

static void
s_print_error (const tr_error_t *error)
{
    for (; error; error = tr_error_next (error)) {
        fprintf (stderr, "  %s: %s\n", tr_error_type (error), tr_error_message (error));
        fprintf (stderr, "  origin: %s\n", tr_error_origin (error));
        size_t hops = tr_error_hops (error);
        if (hops) {
            fprintf (stderr, "  traceback (origin first):\n");
            for (size_t i = 0; i < hops; i++)
                fprintf (stderr, "    %s\n", tr_error_hop (error, i));
        }
        const char *frames = tr_error_frames (error);
        if (frames && *frames) {
            fprintf (stderr, "  frames:\n");
            const char *line = frames;
            while (*line) {
                const char *end = strchr (line, '\n');
                int len = end? (int) (end - line): (int) strlen (line);
                fprintf (stderr, "    %.*s\n", len, line);
                line += len + (end? 1: 0);
            }
        }
    }
}

//  Say why what failed (rc), with the task's error when it has one.
static int
s_fail (cli_t *self, int rc, const tr_error_t *error, const char *fmt, ...)
    TR_PRINTF (4, 5);

static int
s_fail (cli_t *self, int rc, const tr_error_t *error, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    fprintf (stderr, TOOL_NAME ": ");
    vfprintf (stderr, fmt, ap);
    va_end (ap);
    //  Cancelled without the watchdog: a signal, which says enough.
    bool interrupted = rc == TR_ECANCELED && !self->timed_out;
    if (self->timed_out)
        fprintf (stderr, ": no answer within %d ms\n", self->timeout_ms);
    else
    if (interrupted)
        fprintf (stderr, ": interrupted\n");
    else
        fprintf (stderr, ": %s (%s)\n", tr_strerror (rc), tr_errname (rc));
    if (!self->timed_out && !interrupted && error)
        s_print_error (error);
    return EXIT_FAILED;
}

//  Find the actor registered as name, within the timeout.
static int
s_find (cli_t *self, const char *name, tr_portal_t **portal)
{
    tr_ctx_t *ctx = tr_actor_ctx (self->actor);
    s_arm (self);
    int rc = tr_find_actor (self->actor, name, portal);
    s_disarm (self);
    if (rc == 0)
        return 0;
    if (rc == TR_EINVAL)
        fprintf (stderr, TOOL_NAME ": bad actor name '%s'\n", name);
    else
    if (rc == TR_ENOTFOUND)
        fprintf (stderr, TOOL_NAME ": no actor named '%s' is registered at %s\n",
                 name, self->registry);
    else
    if (rc == TR_ECLOSED || self->timed_out)
        s_fail (self, rc, NULL, "cannot reach the registry at %s", self->registry);
    else
        s_fail (self, rc, tr_ctx_error (ctx), "cannot find '%s'", name);
    return EXIT_FAILED;
}

//  --------------------------------------------------------------------------
//  ls and tree

typedef struct {
    const char *name, *uid, *endpoint, *host, *parent;
    int pid;
    int64_t expires_ms;
    int64_t age_ms;
    const msgpack_object *object;
    bool shown;
} entry_t;

static int
s_entry_cmp (const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    int by_name = strcmp (x->name, y->name);
    return by_name? by_name: strcmp (x->uid, y->uid);
}

//  Every registration but ours, sorted by name; *count of them.
static int
s_list (cli_t *self, tr_value_t **value, entry_t **entries, size_t *count)
{
    s_arm (self);
    int rc = tr_registry_list (self->actor, NULL, value);
    s_disarm (self);
    if (rc)
        return s_fail (self, rc, NULL, "cannot reach the registry at %s", self->registry);
    const msgpack_object *list = tr_value_object (*value);
    if (list->type != MSGPACK_OBJECT_ARRAY) {
        fprintf (stderr, TOOL_NAME ": the registry answered with something not a list\n");
        return EXIT_FAILED;
    }
    *entries = calloc (list->via.array.size + 1, sizeof (entry_t));
    if (!*entries)
        return EXIT_FAILED;
    const char *me = tr_actor_uid (self->actor);
    size_t n = 0;
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        entry_t *e = &(*entries) [n];
        e->object = &list->via.array.ptr [i];
        e->parent = "";
        e->age_ms = -1;
        if (tr_unpack (e->object, "{s:s, s:s, s:s, s:i, s:s, ?s:s, s:I, ?s:I}",
                       "name", &e->name, "uid", &e->uid, "endpoint", &e->endpoint,
                       "pid", &e->pid, "host", &e->host, "parent", &e->parent,
                       "expires_ms", &e->expires_ms, "age_ms", &e->age_ms))
            continue;               //  not an entry this version knows
        if (strcmp (e->uid, me) == 0)
            continue;
        n++;
    }
    qsort (*entries, n, sizeof (entry_t), s_entry_cmp);
    *count = n;
    return EXIT_DONE;
}

//  An age as 42s, 7m05s or 3h12m; "-" when the registry did not say.
static void
s_age_text (int64_t age_ms, char *text, size_t size)
{
    int64_t s = age_ms / 1000;
    if (age_ms < 0)
        snprintf (text, size, "-");
    else
    if (s < 60)
        snprintf (text, size, "%llds", (long long) s);
    else
    if (s < 3600)
        snprintf (text, size, "%lldm%02llds", (long long) (s / 60), (long long) (s % 60));
    else
        snprintf (text, size, "%lldh%02lldm", (long long) (s / 3600), (long long) (s / 60 % 60));
}

static void
s_lease_text (int64_t expires_ms, char *text, size_t size)
{
    if (expires_ms < 0)
        snprintf (text, size, "never");
    else
        snprintf (text, size, "%.1fs", expires_ms / 1000.0);
}

static int
s_cmd_ls (cli_t *self)
{
    tr_value_t *value = NULL;
    entry_t *entries = NULL;
    size_t count = 0;
    int status = s_list (self, &value, &entries, &count);
    if (status == EXIT_DONE && self->json) {
        json_t *array = json_array ();
        for (size_t i = 0; array && i < count; i++)
            json_array_append_new (array, tool_json_from_object (entries [i].object));
        char *text = array? json_dumps (array, JSON_PRESERVE_ORDER | JSON_INDENT (2)): NULL;
        json_decref (array);
        if (text)
            printf ("%s\n", text);
        else
            status = EXIT_FAILED;
        free (text);
    }
    else
    if (status == EXIT_DONE) {
        int wname = 4, wuid = 3, whost = 4;
        for (size_t i = 0; i < count; i++) {
            int len = (int) strlen (entries [i].name);
            wname = len > wname? len: wname;
            len = (int) strlen (entries [i].uid);
            wuid = len > wuid? len: wuid;
            len = (int) strlen (entries [i].host);
            whost = len > whost? len: whost;
        }
        printf ("%-*s  %-*s  %-*s  %7s  %7s  %6s  %s\n", wname, "NAME", wuid, "UID",
                whost, "HOST", "PID", "AGE", "LEASE", "ENDPOINT");
        for (size_t i = 0; i < count; i++) {
            char lease [32], age [32];
            s_lease_text (entries [i].expires_ms, lease, sizeof lease);
            s_age_text (entries [i].age_ms, age, sizeof age);
            printf ("%-*s  %-*s  %-*s  %7d  %7s  %6s  %s\n", wname, entries [i].name,
                    wuid, entries [i].uid, whost, entries [i].host, entries [i].pid,
                    age, lease, entries [i].endpoint);
        }
    }
    free (entries);
    tr_value_destroy (&value);
    return status;
}

static void
s_tree_show (entry_t *entries, size_t count, entry_t *e, const char *prefix, bool last, bool root)
{
    e->shown = true;
    printf ("%s%s%s (%s) pid %d on %s at %s\n", prefix,
            root? "": last? "`-- ": "|-- ", e->name, e->uid, e->pid, e->host, e->endpoint);
    char inner [1024];
    snprintf (inner, sizeof inner, "%s%s", prefix, root? "": last? "    ": "|   ");
    //  Children, in name order; the last one draws the corner.
    entry_t *prev = NULL;
    for (size_t i = 0; i < count; i++) {
        entry_t *c = &entries [i];
        if (c->shown || strcmp (c->parent, e->uid) != 0)
            continue;
        if (prev)
            s_tree_show (entries, count, prev, inner, false, false);
        prev = c;
        c->shown = true;            //  claimed: a cycle cannot show it twice
    }
    if (prev)
        s_tree_show (entries, count, prev, inner, true, false);
}

static int
s_cmd_tree (cli_t *self)
{
    tr_value_t *value = NULL;
    entry_t *entries = NULL;
    size_t count = 0;
    int status = s_list (self, &value, &entries, &count);
    if (status == EXIT_DONE) {
        //  Roots: no parent, or one that is not registered.
        for (size_t i = 0; i < count; i++) {
            bool has_parent = false;
            for (size_t j = 0; *entries [i].parent && j < count; j++)
                if (j != i && strcmp (entries [j].uid, entries [i].parent) == 0)
                    has_parent = true;
            if (!has_parent && !entries [i].shown)
                s_tree_show (entries, count, &entries [i], "", true, true);
        }
        //  What is left hangs in a cycle of parents: show it as roots.
        for (size_t i = 0; i < count; i++)
            if (!entries [i].shown)
                s_tree_show (entries, count, &entries [i], "", true, true);
    }
    free (entries);
    tr_value_destroy (&value);
    return status;
}

//  --------------------------------------------------------------------------
//  ping, call, cancel

static int
s_cmd_ping (cli_t *self)
{
    const char *name = self->args [0];
    tr_portal_t *portal = NULL;
    if (s_find (self, name, &portal))
        return EXIT_FAILED;
    printf ("PING %s (%s) at %s\n", name, tr_portal_uid (portal), tr_portal_endpoint (portal));
    fflush (stdout);
    double min = 0, max = 0, sum = 0;
    int answered = 0, status = EXIT_DONE;
    for (int i = 1; i <= self->count; i++) {
        s_arm (self);
        double start = s_now_ms ();
        tr_value_t *value = NULL;
        int rc = tr_portal_run (portal, "tr.info", NULL, &value);
        double rtt = s_now_ms () - start;
        s_disarm (self);
        tr_value_destroy (&value);
        if (rc) {
            status = s_fail (self, rc, tr_portal_error (portal), "call %d to %s", i, name);
            break;
        }
        printf ("reply from %s: seq=%d time=%.3f ms\n", tr_portal_uid (portal), i, rtt);
        fflush (stdout);
        min = answered == 0 || rtt < min? rtt: min;
        max = rtt > max? rtt: max;
        sum += rtt;
        answered++;
    }
    printf ("--- %s: %d calls, %d answered\n", name, self->count, answered);
    if (answered)
        printf ("rtt min/avg/max = %.3f/%.3f/%.3f ms\n", min, sum / answered, max);
    tr_portal_close (&portal);
    return status;
}

static int
s_cmd_call (cli_t *self)
{
    const char *name = self->args [0], *function = self->args [1];
    tr_args_t *args = tool_json_to_args (self->call_args);
    if (!args) {
        fprintf (stderr, TOOL_NAME ": cannot encode the arguments\n");
        return EXIT_FAILED;
    }
    tr_portal_t *portal = NULL;
    int status = s_find (self, name, &portal);
    if (status == EXIT_DONE) {
        s_arm (self);
        tr_value_t *value = NULL;
        int rc = tr_portal_run (portal, function, args, &value);
        s_disarm (self);
        if (rc)
            status = s_fail (self, rc, tr_portal_error (portal), "%s %s failed", name, function);
        else
            status = s_print_json (tr_value_object (value), self->json);
        tr_value_destroy (&value);
        tr_portal_close (&portal);
    }
    tr_args_destroy (&args);
    return status;
}

static int
s_cmd_cancel (cli_t *self)
{
    const char *name = self->args [0];
    tr_portal_t *portal = NULL;
    if (s_find (self, name, &portal))
        return EXIT_FAILED;
    char uid [256];
    snprintf (uid, sizeof uid, "%s", tr_portal_uid (portal));
    int rc = tr_portal_cancel_actor (portal, self->timeout_ms);
    int status = EXIT_DONE;
    if (rc == 0)
        printf ("%s (%s): cancel acknowledged\n", name, uid);
    else
        status = s_fail (self, rc, tr_portal_error (portal),
                         "%s (%s): cancel not acknowledged", name, uid);
    tr_portal_close (&portal);
    return status;
}

//  --------------------------------------------------------------------------
//  The root

static int
s_work (tr_ctx_t *ctx, void *arg)
{
    (void) ctx;
    cli_t *self = arg;
    const char *c = self->command;
    self->status = strcmp (c, "ls") == 0? s_cmd_ls (self)
                 : strcmp (c, "tree") == 0? s_cmd_tree (self)
                 : strcmp (c, "ping") == 0? s_cmd_ping (self)
                 : strcmp (c, "call") == 0? s_cmd_call (self)
                 : s_cmd_cancel (self);
    fflush (stdout);
    return 0;
}

static int
s_root (tr_actor_t *actor, void *arg)
{
    cli_t *self = arg;
    self->actor = actor;
    self->status = EXIT_FAILED;
    if (tr_task_spawn (actor, s_work, self, &self->work)) {
        fprintf (stderr, TOOL_NAME ": cannot start the command\n");
        return EXIT_FAILED;
    }
    int joined = tr_task_join (&self->work, NULL);
    s_disarm (self);                //  the command may have been cut short
    if (joined) {
        //  A signal cancelled us (and the command): tr_run waits for the
        //  command's task and says 130 or 143 when we return 0.
        tr_task_cancel (self->work);
        return 0;
    }
    return self->status;
}

//  Check the operands of the command; returns 0 or EXIT_USAGE.
static int
s_check_operands (cli_t *self, bool count_given)
{
    const char *c = self->command;
    int want_min = 0, want_max = 0;
    if (strcmp (c, "ping") == 0 || strcmp (c, "cancel") == 0 || strcmp (c, "keygen") == 0)
        want_min = want_max = 1;
    else
    if (strcmp (c, "call") == 0)
        want_min = 2, want_max = 3;
    if (self->nargs < want_min)
        return usage_bad (TOOL_NAME, "'%s' needs %s", c,
                            strcmp (c, "keygen") == 0? "a directory"
                          : strcmp (c, "call") == 0? "an actor name and a function"
                          : "an actor name");
    if (self->nargs > want_max)
        return usage_bad (TOOL_NAME, "unexpected argument '%s'", self->args [want_max]);
    if (self->json && strcmp (c, "ls") != 0 && strcmp (c, "call") != 0)
        return usage_bad (TOOL_NAME, "'%s' takes no --json", c);
    if (count_given && strcmp (c, "ping") != 0)
        return usage_bad (TOOL_NAME, "'%s' takes no --count", c);
    return 0;
}

int
main (int argc, char **argv)
{
    cli_t cli = {
        .timeout_ms = TOOL_TIMEOUT_MS,
        .count = TOOL_PING_COUNT,
    };
    cli_t *self = &cli;
    bool help = false, count_given = false;

    static const struct option options [] = {
        { "registry",   required_argument, NULL, 'r' },
        { "keys",       required_argument, NULL, 'k' },
        { "timeout",    required_argument, NULL, 't' },
        { "count",      required_argument, NULL, 'c' },
        { "json",       no_argument,       NULL, 'j' },
        { "help",       no_argument,       NULL, 'h' },
        { "version",    no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    opterr = 0;
    int option;
    //  Options may come before or after the command and its operands;
    //  "--" ends them (a JSON argument that starts with '-').
    while ((option = getopt_long (argc, argv, ":r:k:t:c:hV", options, NULL)) != -1) {
        switch (option) {
            case 'r':
                if (!*optarg)
                    return usage_bad (TOOL_NAME, "empty --registry");
                self->registry = optarg;
                break;
            case 'k':
                if (!*optarg)
                    return usage_bad (TOOL_NAME, "empty --keys");
                self->keys = optarg;
                break;
            case 't':
                if (!usage_parse_int (optarg, 1, &self->timeout_ms))
                    return usage_bad (TOOL_NAME, "bad --timeout '%s': want a whole number of "
                                        "milliseconds, at least 1", optarg);
                break;
            case 'c':
                if (!usage_parse_int (optarg, 1, &self->count))
                    return usage_bad (TOOL_NAME, "bad --count '%s': want a whole number, "
                                        "at least 1", optarg);
                count_given = true;
                break;
            case 'j':
                self->json = true;
                break;
            case 'h':
                help = true;
                break;
            case 'V':
                printf (TOOL_NAME " %d.%d.%d\n",
                        TR_VERSION_MAJOR, TR_VERSION_MINOR, TR_VERSION_PATCH);
                return 0;
            case ':':
                return usage_bad (TOOL_NAME, "option '%s' needs a value", argv [optind - 1]);
            default:
                if (optopt)
                    return usage_bad (TOOL_NAME, "unknown option '-%c'", optopt);
                return usage_bad (TOOL_NAME, "unknown option '%s'", argv [optind - 1]);
        }
    }
    if (optind < argc)
        self->command = argv [optind++];
    self->args = argv + optind;
    self->nargs = argc - optind;

    if (help) {
        const char *text = self->command? s_help_of (self->command): NULL;
        if (!text) {
            s_usage (stdout);
            return 0;
        }
        fputs (text, stdout);
        if (strcmp (self->command, "keygen") != 0)
            s_options_help (stdout);
        return 0;
    }
    if (!self->command)
        return usage_bad (TOOL_NAME, "no command given");
    if (!s_help_of (self->command))
        return usage_bad (TOOL_NAME, "unknown command '%s'", self->command);
    int rc = s_check_operands (self, count_given);
    if (rc)
        return rc;

    //  keygen makes files here: no registry, no runtime.
    if (strcmp (self->command, "keygen") == 0) {
        rc = tr_keygen (self->args [0]);
        if (rc == 0) {
            printf ("keys made in %s: troupe.key_secret (keep it secret), troupe.key, "
                    "allowed/troupe.key\n", self->args [0]);
            return EXIT_DONE;
        }
        fprintf (stderr, TOOL_NAME ": cannot make keys in %s: %s\n", self->args [0],
                 rc == TR_EINVAL? "it holds keys already, or is not a directory"
                                : tr_strerror (rc));
        return EXIT_FAILED;
    }
    //  Bad JSON is a bad command line: found before anything is asked.
    if (strcmp (self->command, "call") == 0) {
        json_error_t error;
        const char *text = self->nargs > 2? self->args [2]: "[]";
        self->call_args = json_loads (text, JSON_DECODE_ANY, &error);
        if (!self->call_args) {
            fprintf (stderr, TOOL_NAME ": bad JSON arguments '%s': %s at line %d, column %d\n",
                     text, error.text, error.line, error.column);
            return EXIT_USAGE;
        }
    }
    if (!self->registry)
        self->registry = getenv ("TROUPE_REGISTRY");
    if (!self->registry || !*self->registry)
        self->registry = TOOL_REGISTRY;
    //  The library's own warnings (a registry it cannot reach, say) would
    //  repeat what the tool says; an operator who wants them sets the level.
    setenv ("TROUPE_LOGLEVEL", "error", 0);

    tr_config_t config = TR_CONFIG_INIT;
    config.name = TOOL_NAME;
    config.registry = self->registry;
    config.hello_ms = self->timeout_ms;
    //  Whatever is still queued at exit is for a registry or peer that
    //  did not answer in time: do not wait the default second on it.
    config.linger_ms = 100;
    //  --keys is handed on as the library's own option: CURVE with the
    //  deployment's keys on every socket.
    char *run_argv [] = { argv [0], "--tr-keys", (char *) self->keys, NULL };
    int run_argc = self->keys? 3: 1;
    if (!self->keys)
        run_argv [1] = NULL;
    rc = tr_run (&config, run_argc, run_argv, s_root, self);
    json_decref (self->call_args);
    if (rc < 0) {
        fprintf (stderr, TOOL_NAME ": cannot start: %s\n", tr_strerror (rc));
        return EXIT_FAILED;
    }
    //  The command's status, or 130 / 143 after SIGINT / SIGTERM.
    return rc;
}
