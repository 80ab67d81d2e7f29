/*  =========================================================================
    log.c - log lines prefixed with the actor's name and pid

    Lines go through czmq's zsys log (to stderr), filtered by
    TROUPE_LOGLEVEL=error|warning|info|debug, read once at start-up. Every
    line carries a stable id ("TR-BAD-FRAME") so that operators can grep
    for a cause; callers log each cause once per peer.
    =========================================================================
*/
#include "troupe_private.h"
#include <czmq.h>
#include <unistd.h>

static int s_level = -1;            //  -1 until read from the environment
static char s_name [64] = "troupe";

static int
s_level_from_env (void)
{
    const char *value = getenv ("TROUPE_LOGLEVEL");
    if (!value || !*value)
        return TR_LOG_WARNING;
    if (streq (value, "error"))
        return TR_LOG_ERROR;
    if (streq (value, "warning") || streq (value, "warn"))
        return TR_LOG_WARNING;
    if (streq (value, "info"))
        return TR_LOG_INFO;
    if (streq (value, "debug"))
        return TR_LOG_DEBUG;
    return TR_LOG_WARNING;
}

//  --------------------------------------------------------------------------
//  Name the lines of this process; read the level.

void
tri_log_init (const char *name)
{
    s_level = s_level_from_env ();
    if (name)
        snprintf (s_name, sizeof s_name, "%s", name);
    zsys_set_logstream (stderr);
    zsys_set_logsystem (false);
}

bool
tri_log_enabled (tr_loglevel_t level)
{
    if (s_level < 0)
        s_level = s_level_from_env ();
    return (int) level <= s_level;
}

//  --------------------------------------------------------------------------
//  Log one line at level, tagged with id.

void
tr_log (tr_loglevel_t level, const char *id, const char *fmt, ...)
{
    if (!fmt || !tri_log_enabled (level))
        return;
    char text [1024];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (text, sizeof text, fmt, ap);
    va_end (ap);
    const char *tag = id? id: "TR";
    int pid = (int) getpid ();
    switch (level) {
        case TR_LOG_ERROR:
            zsys_error ("%s[%d] %s %s", s_name, pid, tag, text);
            break;
        case TR_LOG_WARNING:
            zsys_warning ("%s[%d] %s %s", s_name, pid, tag, text);
            break;
        case TR_LOG_INFO:
            zsys_info ("%s[%d] %s %s", s_name, pid, tag, text);
            break;
        default:
            zsys_debug ("%s[%d] %s %s", s_name, pid, tag, text);
            break;
    }
}
