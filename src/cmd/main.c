/*
 * argot: the command. Dispatches to a subcommand by name (one or two words:
 * "demo", "csv check", "lr train"), prints the list with --help and the
 * version with --version. Unknown names are usage errors (exit 2) with a
 * suggestion.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const struct subcmd *const subcmds[] = {
    &cmd_demo,
    &cmd_psi,
    &cmd_stats,
    &cmd_lr_train,
    &cmd_lr_predict,
    &cmd_launch,
    &cmd_beaver_server,
    &cmd_mesh_init, /* before "mesh", which would take "init" for a flag */
    &cmd_mesh,
    &cmd_rm,
    &cmd_app_submit,
    &cmd_app_status,
    &cmd_app_kill,
    &cmd_app_master,
    &cmd_nodes,
    &cmd_nm,
    &cmd_ca_init,
    &cmd_ca_issue,
    &cmd_csv_check,
    &cmd_console,
};

static void print_help(void)
{
    printf("argot %s: joint computation on data no party may see\n\n", AG_VERSION);
    printf("usage: argot <subcommand> [flags]\n"
           "       argot <subcommand> --help\n"
           "       argot --version\n\n"
           "subcommands:\n");
    for (size_t i = 0; i < AG_ARRAY_LEN(subcmds); i++)
        printf("  %-14s %s\n", subcmds[i]->name, subcmds[i]->summary);
}

/* Finds the subcommand named by argv[0] (and argv[1] for two-word names);
 * sets *used to the number of words consumed. */
static const struct subcmd *find(int argc, char **argv, int *used)
{
    for (size_t i = 0; i < AG_ARRAY_LEN(subcmds); i++) {
        const char *name = subcmds[i]->name, *sp = strchr(name, ' ');
        if (!sp && strcmp(argv[0], name) == 0) {
            *used = 1;
            return subcmds[i];
        }
        if (sp && argc >= 2 && strlen(argv[0]) == (size_t)(sp - name) &&
            strncmp(argv[0], name, (size_t)(sp - name)) == 0 && strcmp(argv[1], sp + 1) == 0) {
            *used = 2;
            return subcmds[i];
        }
    }
    return NULL;
}

/* "argot csv" alone, or "argot csv chek": a known group, an unknown verb. */
static int group_error(const char *group, const char *verb)
{
    const char *verbs[AG_ARRAY_LEN(subcmds) + 1];
    size_t n = 0;
    size_t glen = strlen(group);
    for (size_t i = 0; i < AG_ARRAY_LEN(subcmds); i++) {
        const char *name = subcmds[i]->name;
        if (strncmp(name, group, glen) == 0 && name[glen] == ' ')
            verbs[n++] = name + glen + 1;
    }
    if (n == 0)
        return -1;
    verbs[n] = NULL;
    if (!verb) {
        fprintf(stderr, "argot: %s: missing subcommand (one of:", group);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %s", verbs[i]);
        fprintf(stderr, ")\n");
        return EXIT_USAGE;
    }
    const char *near = ag_nearest(verb, verbs);
    if (near)
        fprintf(stderr, "argot: %s %s: unknown subcommand (did you mean '%s %s'?)\n", group,
                verb, group, near);
    else
        fprintf(stderr, "argot: %s %s: unknown subcommand (see 'argot --help')\n", group, verb);
    return EXIT_USAGE;
}

static int unknown(int argc, char **argv)
{
    int rc = group_error(argv[0], argc >= 2 ? argv[1] : NULL);
    if (rc >= 0)
        return rc;
    const char *names[AG_ARRAY_LEN(subcmds) + 1];
    for (size_t i = 0; i < AG_ARRAY_LEN(subcmds); i++)
        names[i] = subcmds[i]->name;
    names[AG_ARRAY_LEN(subcmds)] = NULL;
    const char *near = ag_nearest(argv[0], names);
    if (near)
        fprintf(stderr, "argot: %s: unknown subcommand (did you mean '%s'?)\n", argv[0], near);
    else
        fprintf(stderr, "argot: %s: unknown subcommand (see 'argot --help')\n", argv[0]);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help();
        return EXIT_USAGE;
    }
    const char *first = argv[1];
    if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0) {
        print_help();
        return EXIT_OK;
    }
    if (strcmp(first, "--version") == 0) {
        printf("argot %s\n", AG_VERSION);
        return EXIT_OK;
    }
    if (strcmp(first, "help") == 0) {
        int used;
        const struct subcmd *sc = argc > 2 ? find(argc - 2, argv + 2, &used) : NULL;
        if (argc > 2 && !sc)
            return unknown(argc - 2, argv + 2);
        if (sc)
            print_usage(sc);
        else
            print_help();
        return EXIT_OK;
    }
    if (first[0] == '-') {
        fprintf(stderr, "argot: %s: unknown flag (see 'argot --help')\n", first);
        return EXIT_USAGE;
    }
    int used = 0;
    const struct subcmd *sc = find(argc - 1, argv + 1, &used);
    if (!sc)
        return unknown(argc - 1, argv + 1);
    struct cmd_args a;
    int rc = args_parse(&a, sc, argc - 1 - used, argv + 1 + used);
    if (rc == EXIT_OK)
        rc = sc->run(&a);
    else if (rc < 0)
        rc = EXIT_OK; /* --help */
    args_free(&a);
    if (fflush(stdout) != 0 && rc == EXIT_OK)
        rc = runtime_error("writing standard output: %s", strerror(errno));
    return rc;
}
