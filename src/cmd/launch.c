/*
 * argot launch: multi-process simulation. Starts one process per party on
 * loopback, each running the same program with a generated cluster config
 * (ARGOT_CLUSTER) and its party name (ARGOT_PARTY), so that the parties
 * talk over real gRPC links; gathers their output, each line prefixed with
 * the party's name; exits 0 when every party did.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"

static const struct flag_def flags[] = {
    {"sim", "PARTIES", "the parties, comma-separated (2 to 8): one process each", FLAG_REQUIRED},
    {"port", "PORT", "the first party's port, the others' follow (default: free ports)", 0},
    {NULL, NULL, NULL, 0},
};

struct child {
    char name[32];
    pid_t pid;
    int fd[2];          /* its stdout and stderr, -1 once closed */
    ag_buf line[2];     /* a partial line of each */
    int status;
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

/* A port nobody listens on now (the kernel's pick for port 0). */
static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int port = -1;
    if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(s, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(s);
    return port;
}

static int write_config(const char *path, char names[][32], const int *ports, int n)
{
    uint8_t rnd[8];
    char hex[17];
    if (ag_random_bytes(rnd, sizeof(rnd)) < 0)
        return -1;
    ag_hex_encode(hex, rnd, sizeof(rnd));
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    fprintf(fp, "# written by argot launch: one process per party on loopback\nparties:\n");
    for (int i = 0; i < n; i++)
        fprintf(fp, "  %s: {address: \"127.0.0.1:%d\"}\n", names[i], ports[i]);
    fprintf(fp, "session: launch-%s\n", hex);
    return fclose(fp) == 0 ? 0 : -1;
}

/* Writes the complete lines of b to out, each after "[name] "; at eof also
 * the rest, ended by a newline. */
static void emit(FILE *out, const char *name, ag_buf *b, bool eof)
{
    size_t start = 0;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] != '\n')
            continue;
        fprintf(out, "[%s] %.*s\n", name, (int)(i - start), (const char *)b->data + start);
        start = i + 1;
    }
    if (eof && start < b->len) {
        fprintf(out, "[%s] %.*s\n", name, (int)(b->len - start), (const char *)b->data + start);
        start = b->len;
    }
    ag_buf_consume(b, start);
    fflush(out);
}

static pid_t spawn(struct child *c, char **argv, const char *config)
{
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(err, O_CLOEXEC) < 0) {
        close(out[0]);
        close(out[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        setenv("ARGOT_CLUSTER", config, 1);
        setenv("ARGOT_PARTY", c->name, 1);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execvp(argv[0], argv);
        fprintf(stderr, "argot: launch: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    if (pid < 0) {
        close(out[0]);
        close(err[0]);
        return -1;
    }
    c->fd[0] = out[0];
    c->fd[1] = err[0];
    c->pid = pid;
    return pid;
}

/* Relays the children's output until every pipe is closed. */
static void relay(struct child *kids, int n)
{
    for (;;) {
        struct pollfd pfd[2 * MAX_SIM_PARTIES];
        int who[2 * MAX_SIM_PARTIES], np = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 2; k++)
                if (kids[i].fd[k] >= 0) {
                    pfd[np] = (struct pollfd){.fd = kids[i].fd[k], .events = POLLIN};
                    who[np++] = i * 2 + k;
                }
        if (np == 0)
            return;
        if (got_signal) {
            for (int i = 0; i < n; i++)
                if (kids[i].pid > 0)
                    kill(kids[i].pid, (int)got_signal);
            got_signal = 0;
        }
        if (poll(pfd, (nfds_t)np, -1) < 0)
            continue; /* EINTR: a signal to pass on */
        for (int j = 0; j < np; j++) {
            if (!(pfd[j].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            struct child *c = &kids[who[j] / 2];
            int k = who[j] % 2;
            char buf[65536];
            ssize_t r = read(c->fd[k], buf, sizeof(buf));
            if (r < 0 && errno == EINTR)
                continue;
            FILE *out = k ? stderr : stdout;
            if (r <= 0 || ag_buf_append(&c->line[k], buf, (size_t)r) < 0) {
                emit(out, c->name, &c->line[k], true);
                close(c->fd[k]);
                c->fd[k] = -1;
                continue;
            }
            emit(out, c->name, &c->line[k], false);
        }
    }
}

static int run(struct cmd_args *a)
{
    char names[MAX_SIM_PARTIES][32];
    int n = args_sim_parties(a, "sim", names, 2, MAX_SIM_PARTIES);
    if (n < 0)
        return -n;
    if (a->nrest == 0)
        return usage_error(a->sc, "give the program after --: argot launch --sim alice,bob -- "
                                  "PROG [ARGS...]");
    int ports[MAX_SIM_PARTIES];
    const char *port = args_get(a, "port");
    if (port) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || p < 1 || p + n - 1 > 65535)
            return usage_error(a->sc, "--port %s: a port from 1 to %d", port, 65536 - n);
        for (int i = 0; i < n; i++)
            ports[i] = (int)p + i;
    } else {
        for (int i = 0; i < n; i++) {
            bool dup;
            do {
                ports[i] = free_port();
                dup = false;
                for (int j = 0; j < i; j++)
                    dup |= ports[j] == ports[i];
            } while (dup);
            if (ports[i] < 0)
                return runtime_error("launch: cannot find a free port on 127.0.0.1: %s",
                                     strerror(errno));
        }
    }
    const char *tmp = getenv("TMPDIR");
    char dir[512], config[600];
    snprintf(dir, sizeof(dir), "%s/argot-launch-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return runtime_error("launch: cannot create a directory in %s: %s",
                             tmp && *tmp ? tmp : "/tmp", strerror(errno));
    snprintf(config, sizeof(config), "%s/cluster.yaml", dir);
    if (write_config(config, names, ports, n) < 0) {
        int e = errno;
        rmdir(dir);
        return runtime_error("launch: cannot write %s: %s", config, strerror(e));
    }

    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    struct child kids[MAX_SIM_PARTIES];
    memset(kids, 0, sizeof(kids));
    int started = 0, rc = EXIT_OK;
    for (; started < n; started++) {
        struct child *c = &kids[started];
        memcpy(c->name, names[started], sizeof(c->name));
        c->fd[0] = c->fd[1] = -1;
        ag_buf_init(&c->line[0], SIZE_MAX);
        ag_buf_init(&c->line[1], SIZE_MAX);
        if (spawn(c, a->rest, config) < 0) {
            rc = runtime_error("launch: cannot start party %s: %s", c->name, strerror(errno));
            for (int i = 0; i < started; i++)
                kill(kids[i].pid, SIGTERM);
            break;
        }
    }
    relay(kids, started);
    for (int i = 0; i < started; i++) {
        while (waitpid(kids[i].pid, &kids[i].status, 0) < 0 && errno == EINTR) {
        }
        ag_buf_cleanup(&kids[i].line[0]);
        ag_buf_cleanup(&kids[i].line[1]);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    unlink(config);
    rmdir(dir);
    for (int i = 0; i < started; i++) {
        int st = kids[i].status;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            continue;
        if (WIFSIGNALED(st))
            fprintf(stderr, "argot: launch: party %s was killed by signal %d (%s)\n",
                    kids[i].name, WTERMSIG(st), strsignal(WTERMSIG(st)));
        else
            fprintf(stderr, "argot: launch: party %s exited with status %d\n", kids[i].name,
                    WEXITSTATUS(st));
        rc = EXIT_RUNTIME;
    }
    return rc;
}

const struct subcmd cmd_launch = {
    .name = "launch",
    .summary = "run a federated program as one process per party on loopback",
    .details = "Multi-process simulation: starts PROG once per party, with a generated\n"
               "cluster config (loopback addresses, a fresh session id) in ARGOT_CLUSTER and\n"
               "the party's name in ARGOT_PARTY, which programs built on argot's fed\n"
               "runtime (ag_fed_main) read; the parties talk over real gRPC links. Each line\n"
               "a party prints comes out prefixed with \"[party] \", on stdout or stderr as\n"
               "printed. Exits 0 when every party exits 0; SIGINT and SIGTERM are passed on.\n\n"
               "  argot launch --sim alice,bob -- build/bin/example-hello",
    .flags = flags,
    .run = run,
    .rest = "-- PROG [ARGS...]",
};
