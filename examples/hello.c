/*  hello.c - the smallest troupe program: a root spawns a child actor
    (this same binary) and calls a function in it. */
#include <troupe.h>
#include <stdio.h>

static int
greet (tr_ctx_t *ctx, const msgpack_object *args, tr_reply_t *out)
{
    const char *who;
    if (tr_unpack (args, "[s]", &who))
        return tr_raise (ctx, "TypeError", "greet takes [name]");
    return tr_reply_pack (out, "[ss]", "hello", who);
}

static int
root (tr_actor_t *self, void *arg)
{
    (void) arg;
    tr_nursery_t *n;
    tr_portal_t *child;
    tr_value_t *answer = NULL;
    tr_nursery_open (self, &n);
    int rc = tr_nursery_start_actor (n, "greeter", NULL, &child);
    if (rc == 0) {
        tr_args_t *args = tr_pack ("[s]", "world");
        rc = tr_portal_run (child, "greet", args, &answer);
        tr_args_destroy (&args);
    }
    const char *word, *who;
    if (rc == 0 && tr_unpack (tr_value_object (answer), "[ss]", &word, &who) == 0)
        printf ("%s says: %s, %s\n", tr_portal_uid (child), word, who);
    else
        fprintf (stderr, "call failed: %s\n", tr_strerror (rc));
    tr_value_destroy (&answer);
    tr_nursery_close (&n, NULL);
    return rc? 1: 0;
}

int
main (int argc, char **argv)
{
    static const tr_export_t exports [] = { TR_FN ("greet", greet), TR_EXPORTS_END };
    tr_config_t config = TR_CONFIG_INIT;
    config.exports = exports;
    return tr_run (&config, argc, argv, root, NULL);
}
