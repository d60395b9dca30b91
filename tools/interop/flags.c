#include "flags.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const iflag *find(const iflag *flags, const char *name, size_t len)
{
    for (const iflag *f = flags; f->name; f++)
        if (strlen(f->name) == len && memcmp(f->name, name, len) == 0)
            return f;
    return NULL;
}

static int set_bool(const iflag *f, const char *v)
{
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) {
        *(bool *)f->value = true;
        return 0;
    }
    if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) {
        *(bool *)f->value = false;
        return 0;
    }
    fprintf(stderr, "--%s: expected true or false, got '%s'\n", f->name, v);
    return -1;
}

static int set_value(const iflag *f, const char *v)
{
    switch (f->kind) {
    case FLAG_STR:
        *(const char **)f->value = v;
        return 0;
    case FLAG_INT: {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < -2147483647L || n > 2147483647L) {
            fprintf(stderr, "--%s: expected an integer, got '%s'\n", f->name, v);
            return -1;
        }
        *(int *)f->value = (int)n;
        return 0;
    }
    case FLAG_BOOL:
        return set_bool(f, v);
    }
    return -1;
}

int flags_parse(int argc, char **argv, const iflag *flags, const char *usage)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s\n\nflags:\n", usage);
            for (const iflag *f = flags; f->name; f++)
                printf("  --%-26s %s\n", f->name, f->help);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "unexpected argument '%s' (flags are --name=value)\n", a);
            return -1;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const iflag *f = find(flags, a, nl);
        if (!f) {
            fprintf(stderr, "unknown flag --%.*s (see --help)\n", (int)nl, a);
            return -1;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && f->kind == FLAG_BOOL) {
            /* a bare boolean, or --name true|false */
            if (i + 1 < argc && (!strcmp(argv[i + 1], "true") || !strcmp(argv[i + 1], "false")))
                v = argv[++i];
            else
                v = "true";
        }
        if (!v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "--%s needs a value\n", f->name);
                return -1;
            }
            v = argv[++i];
        }
        if (set_value(f, v) < 0)
            return -1;
    }
    return 0;
}
