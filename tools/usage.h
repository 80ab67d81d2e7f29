/*  =========================================================================
    usage.h - what the troupe tool and troupe-broker share in reading
    their command lines

    Both report a bad command line the way the GNU tools do and exit with
    EXIT_USAGE, and both read counts and times as whole decimal numbers.
    =========================================================================
*/
#ifndef TROUPE_USAGE_H_INCLUDED
#define TROUPE_USAGE_H_INCLUDED

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define EXIT_USAGE          2   //  bad command line

//  Report a bad command line of program on stderr, with a pointer to its
//  --help; returns EXIT_USAGE.
static inline int
    usage_bad (const char *program, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__ ((format (printf, 2, 3)))
#endif
    ;

static inline int
usage_bad (const char *program, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    fprintf (stderr, "%s: ", program);
    vfprintf (stderr, fmt, ap);
    fprintf (stderr, "\nTry '%s --help' for more information.\n", program);
    va_end (ap);
    return EXIT_USAGE;
}

//  A whole decimal number in [min, INT_MAX]; false for anything else (a
//  sign, blanks, an empty string, trailing characters).
static inline bool
usage_parse_int (const char *text, int min, int *value)
{
    if (!text || *text < '0' || *text > '9')
        return false;
    errno = 0;
    char *end = NULL;
    long number = strtol (text, &end, 10);
    if (errno || *end || number < min || number > INT_MAX)
        return false;
    *value = (int) number;
    return true;
}

#endif
