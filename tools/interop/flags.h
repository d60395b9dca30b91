/*
 * Command-line flags as gRPC's interop programs take them: --name=value,
 * --name value, and for booleans a bare --name (true) or --name=false.
 */
#ifndef ARGOT_TOOLS_INTEROP_FLAGS_H
#define ARGOT_TOOLS_INTEROP_FLAGS_H

#include <stdbool.h>

typedef enum { FLAG_STR, FLAG_INT, FLAG_BOOL } flag_kind;

typedef struct flag {
    const char *name;
    flag_kind kind;
    void *value;      /* const char **, int *, bool * */
    const char *help;
} iflag;

/* Parses argv against flags (terminated by a zero entry). Prints a message
 * naming the flag and returns -1 on a bad one; 1 after printing the help
 * for --help; 0 otherwise. */
int flags_parse(int argc, char **argv, const iflag *flags, const char *usage);

#endif
