/*
 * Flag parsing shared by every subcommand: `--name value`, `--name=value`,
 * boolean `--name`, repeatable flags, `--` to end flags, `--help`. Errors
 * name the flag and suggest the nearest known one.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static int flag_index(const struct subcmd *sc, const char *name, size_t len)
{
    for (int i = 0; sc->flags && sc->flags[i].name; i++)
        if (strlen(sc->flags[i].name) == len && memcmp(sc->flags[i].name, name, len) == 0)
            return i;
    return -1;
}

int usage_error(const struct subcmd *sc, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "argot: %s: ", sc->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'argot %s --help')\n", sc->name);
    return EXIT_USAGE;
}

int runtime_error(const char *fmt, ...)
{
    va_list ap;
    fputs("argot: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_RUNTIME;
}

void print_usage(const struct subcmd *sc)
{
    printf("usage: argot %s", sc->name);
    for (int i = 0; sc->flags && sc->flags[i].name; i++) {
        const struct flag_def *f = &sc->flags[i];
        bool opt = !(f->flags & FLAG_REQUIRED);
        printf(" %s--%s%s%s%s%s", opt ? "[" : "", f->name, f->metavar ? " " : "",
               f->metavar ? f->metavar : "", opt ? "]" : "", (f->flags & FLAG_REPEAT) ? "..." : "");
    }
    if (sc->positional)
        printf(" [%s]", sc->positional);
    if (sc->rest)
        printf(" %s", sc->rest);
    printf("\n\n%s\n", sc->summary);
    if (sc->details)
        printf("\n%s\n", sc->details);
    printf("\nflags:\n");
    for (int i = 0; sc->flags && sc->flags[i].name; i++) {
        const struct flag_def *f = &sc->flags[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", f->name, f->metavar ? " " : "",
                 f->metavar ? f->metavar : "");
        printf("  %-26s %s%s%s\n", left, f->help, (f->flags & FLAG_REQUIRED) ? " (required)" : "",
               (f->flags & FLAG_REPEAT) ? " (repeatable)" : "");
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

static int add_value(struct cmd_args *a, int fi, const char *v)
{
    const char **nv = ag_reallocarray(a->vals[fi], a->nvals[fi] + 1, sizeof(*nv));
    if (!nv)
        return runtime_error("%s", ag_strerror(AG_E_NOMEM));
    nv[a->nvals[fi]++] = v;
    a->vals[fi] = nv;
    return EXIT_OK;
}

/* Suggests the flag closest to the unknown one, if any. */
static const char *nearest_flag(const struct subcmd *sc, const char *name)
{
    const char *names[MAX_FLAGS + 2];
    size_t n = 0;
    for (int i = 0; sc->flags && sc->flags[i].name && n < MAX_FLAGS; i++)
        names[n++] = sc->flags[i].name;
    names[n++] = "help";
    names[n] = NULL;
    return ag_nearest(name, names);
}

int args_parse(struct cmd_args *a, const struct subcmd *sc, int argc, char **argv)
{
    memset(a, 0, sizeof(*a));
    a->sc = sc;
    int i = 0;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            i++;
            if (sc->rest) {
                a->nrest = argc - i;
                a->rest = argv + i;
                i = argc;
            }
            break;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_usage(sc);
            return -1;
        }
        if (sc->positional && !a->pos && arg[0] != '-') {
            a->pos = arg;
            continue;
        }
        if (arg[0] != '-' || arg[1] != '-' || arg[2] == '\0')
            break;
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int fi = flag_index(sc, name, nlen);
        if (fi < 0) {
            char buf[128];
            snprintf(buf, sizeof(buf), "%.*s", (int)AG_MIN(nlen, 100), name);
            const char *near = nearest_flag(sc, buf);
            if (near)
                return usage_error(sc, "unknown flag --%s (did you mean --%s?)", buf, near);
            return usage_error(sc, "unknown flag --%s", buf);
        }
        const struct flag_def *f = &sc->flags[fi];
        if (a->seen[fi] && !(f->flags & FLAG_REPEAT))
            return usage_error(sc, "flag --%s given twice", f->name);
        a->seen[fi] = true;
        const char *val;
        if (!f->metavar) {
            if (eq)
                return usage_error(sc, "flag --%s takes no value", f->name);
            val = "true";
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return usage_error(sc, "flag --%s needs a value (%s)", f->name, f->metavar);
        }
        if (add_value(a, fi, val) != EXIT_OK)
            return EXIT_RUNTIME;
    }
    if (i < argc)
        return usage_error(sc, "unexpected argument '%s'", argv[i]);
    for (int fi = 0; sc->flags && sc->flags[fi].name; fi++)
        if ((sc->flags[fi].flags & FLAG_REQUIRED) && !a->seen[fi])
            return usage_error(sc, "missing required flag --%s", sc->flags[fi].name);
    return EXIT_OK;
}

void args_free(struct cmd_args *a)
{
    for (int i = 0; i < MAX_FLAGS; i++)
        ag_free(a->vals[i]);
    memset(a, 0, sizeof(*a));
}

static int lookup(const struct cmd_args *a, const char *name)
{
    int fi = flag_index(a->sc, name, strlen(name));
    /* a lookup of an undeclared flag is a bug in the subcommand */
    if (fi < 0) {
        fprintf(stderr, "argot: internal error: flag --%s not declared by '%s'\n", name,
                a->sc->name);
        abort();
    }
    return fi;
}

const char *args_get(const struct cmd_args *a, const char *name)
{
    int fi = lookup(a, name);
    return a->nvals[fi] ? a->vals[fi][a->nvals[fi] - 1] : NULL;
}

size_t args_count(const struct cmd_args *a, const char *name)
{
    return a->nvals[lookup(a, name)];
}

const char *args_at(const struct cmd_args *a, const char *name, size_t i)
{
    int fi = lookup(a, name);
    return i < a->nvals[fi] ? a->vals[fi][i] : NULL;
}

bool args_bool(const struct cmd_args *a, const char *name)
{
    return a->nvals[lookup(a, name)] > 0;
}

int args_sim_parties(const struct cmd_args *a, const char *flag, char names[][32], int min,
                     int max)
{
    const char *list = args_get(a, flag);
    int n = 0;
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= 32)
            return -usage_error(a->sc, "--%s: party names are 1 to 31 characters, separated "
                                       "by commas, got '%s'", flag, list);
        for (size_t i = 0; i < len; i++) {
            char c = p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
                return -usage_error(a->sc, "--%s: party name '%.*s' may hold only a-z, 0-9, "
                                           "'_' and '-'", flag, (int)len, p);
        }
        if (n == max)
            return -usage_error(a->sc, "--%s: at most %d parties, got more", flag, max);
        memcpy(names[n], p, len);
        names[n][len] = '\0';
        for (int j = 0; j < n; j++)
            if (strcmp(names[j], names[n]) == 0)
                return -usage_error(a->sc, "--%s: party '%s' named twice", flag, names[n]);
        n++;
        p += len + (comma ? 1 : 0);
    }
    if (n < min)
        return -usage_error(a->sc, "--%s: at least %d parties, got %d", flag, min, n);
    return n;
}

int args_sim_mode(const struct cmd_args *a, char names[][32], int min, int max)
{
    if (args_get(a, "party"))
        return -usage_error(a->sc, "--party goes with --config (production mode)");
    if (!args_get(a, "sim"))
        return -usage_error(a->sc, "choose a mode: --sim alice,bob (one process) or --config "
                                   "cluster.yaml --party NAME (this process is one party)");
    if (args_get(a, "session"))
        return -usage_error(a->sc, "--session goes with --config (production mode)");
    return args_sim_parties(a, "sim", names, min, max);
}

const char *size_str(uint64_t n, char *buf, size_t cap)
{
    if (n < 1024 * 1024)
        snprintf(buf, cap, "%.1f KiB", (double)n / 1024.0);
    else
        snprintf(buf, cap, "%.2f MiB", (double)n / 1048576.0);
    return buf;
}

const char *args_key_value(const struct cmd_args *a, const char *party)
{
    const char *v = party ? args_party_value(a, "key", party) : NULL;
    for (size_t k = 0; !v && k < args_count(a, "key"); k++)
        if (!party || !strchr(args_at(a, "key", k), '='))
            v = args_at(a, "key", k);
    if (!v)
        usage_error(a->sc, "--key: no key columns for party %s", party);
    return v;
}

int args_key_columns(const struct cmd_args *a, const char *v, char *buf, size_t cap,
                     const char **keys, size_t *n, size_t max)
{
    snprintf(buf, cap, "%s", v);
    char *save = NULL;
    for (char *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        if (*n == max)
            return usage_error(a->sc, "--key: at most %zu columns", max);
        keys[(*n)++] = k;
    }
    if (*n == 0)
        return usage_error(a->sc, "--key %s: name at least one column", v);
    return EXIT_OK;
}

const char *args_production_party(const struct cmd_args *a)
{
    const char *party = args_get(a, "party");
    if (!party) {
        usage_error(a->sc, "--config needs --party NAME (which party this process is)");
        return NULL;
    }
    if (args_get(a, "sim")) {
        usage_error(a->sc, "--sim and --config are two modes: give one");
        return NULL;
    }
    return party;
}

int args_cluster_rank(const struct cmd_args *a, const char *party, ag_cluster *cl)
{
    const char *path = args_get(a, "config");
    char err[AG_ERRMSG_MAX];
    if (ag_cluster_load(path, cl, err, sizeof(err)) < 0)
        return -runtime_error("%s", err);
    int me = ag_cluster_rank(cl, party);
    if (me < 0)
        return -usage_error(a->sc, "--party %s: no such party in %s", party, path);
    return me;
}

int args_party_values_check(const struct cmd_args *a, const char *flag, char names[][32], int n)
{
    for (size_t i = 0; i < args_count(a, flag); i++) {
        const char *v = args_at(a, flag, i), *eq = strchr(v, '=');
        if (!eq || eq == v)
            return usage_error(a->sc, "--%s %s: in simulation mode write PARTY=VALUE", flag, v);
        const char *known[MAX_SIM_PARTIES + 1];
        bool found = false;
        for (int j = 0; j < n; j++) {
            known[j] = names[j];
            if (strlen(names[j]) == (size_t)(eq - v) && strncmp(names[j], v, (size_t)(eq - v)) == 0)
                found = true;
        }
        known[n] = NULL;
        if (found)
            continue;
        char party[64];
        snprintf(party, sizeof(party), "%.*s", (int)AG_MIN((size_t)(eq - v), 60), v);
        const char *near = ag_nearest(party, known);
        if (near)
            return usage_error(a->sc, "--%s %s: no party '%s' (did you mean '%s'?)", flag, v,
                               party, near);
        return usage_error(a->sc, "--%s %s: no party '%s' in this job", flag, v, party);
    }
    return EXIT_OK;
}

int args_seconds_ms(const struct cmd_args *a, const char *flag, unsigned def_s, uint64_t *ms)
{
    const char *t = args_get(a, flag);
    *ms = (uint64_t)def_s * 1000;
    if (!t)
        return EXIT_OK;
    char *end;
    double s = strtod(t, &end);
    if (*end || !(s > 0) || s > 86400)
        return usage_error(a->sc, "--%s %s: seconds, more than 0", flag, t);
    *ms = (uint64_t)(s * 1000 + 0.5);
    return EXIT_OK;
}

const char *args_party_value(const struct cmd_args *a, const char *flag, const char *party)
{
    const char *found = NULL;
    size_t plen = strlen(party);
    for (size_t i = 0; i < args_count(a, flag); i++) {
        const char *v = args_at(a, flag, i);
        if (strncmp(v, party, plen) == 0 && v[plen] == '=')
            found = v + plen + 1;
    }
    return found;
}

/* ---- daemons ------------------------------------------------------------------------ */

static void stop_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
}

void daemon_signals_block(sigset_t *old)
{
    sigset_t set;
    stop_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

static void (*hup_fn)(void *ud);
static void *hup_ud;

void daemon_on_hup(void (*fn)(void *ud), void *ud)
{
    hup_fn = fn;
    hup_ud = ud;
}

int daemon_wait_stop(const char *module, uint64_t tick_ms, bool (*tick)(void *ud), void *ud)
{
    sigset_t set;
    stop_set(&set);
    struct timespec ts = {(time_t)(tick_ms / 1000), (long)(tick_ms % 1000) * 1000000L};
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM)
            return sig;
        if (sig == SIGHUP && hup_fn)
            hup_fn(hup_ud);
        else if (sig == SIGHUP)
            AG_LOG(AG_LOG_INFO, module, "sighup nothing_to_reload");
        if (tick && tick(ud))
            return 0;
    }
}

void daemon_shown_address(const char *addr, int port, char *out, size_t cap)
{
    snprintf(out, cap, "%s", addr);
    char *colon = strrchr(out, ':');
    if (colon && strncmp(addr, "unix:", 5) != 0)
        snprintf(colon + 1, cap - (size_t)(colon + 1 - out), "%d", port);
}
