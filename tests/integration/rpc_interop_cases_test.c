/*
 * gRPC's interop test cases (doc/interop-test-descriptions.md in gRPC's
 * repository: empty_unary to unimplemented_service, 18 of them) between
 * argot's interop binaries (argot-interop-server, argot-interop-client) and
 * Debian's python3-grpcio (tests/integration/peers/interop.py), every way:
 * python client to python server (so the peer is known to be right), argot
 * client to python server, python client to argot server, argot to argot;
 * in plaintext with every case, and over TLS with a subset (certificates:
 * tests/harness/pki.c, the server's for "localhost").
 *
 * One test per (client, server, transport): it starts one server, runs every
 * case against it (argot's client once per case, python's once with the
 * list), prints a line per case and fails listing every case that failed.
 *
 * The binaries' flags are the spec's: server --port=N [--use_tls=true
 * --tls_cert_file=F --tls_key_file=F]; client --server_host=H
 * --server_port=N --test_case=NAME [--use_tls=true --ca_file=F
 * --server_host_override=NAME]; a client exits 0 when its case passed.
 *
 * What cannot run: the python server sees neither a request's grpc-encoding
 * nor its messages' compressed flag (grpcio keeps both from the handler), so
 * it cannot answer the uncompressed probe of client_compressed_unary and
 * client_compressed_streaming with INVALID_ARGUMENT; those two are skipped
 * against it, and run against argot's server by both clients. Python's
 * client cannot check a response's compressed flag, nor send one message of
 * a gzip call uncompressed (interop.py says what it does instead); argot to
 * argot is where every compression flag is checked.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pki.h"
#include "test.h"

#define PYTHON              "/usr/bin/python3"
#define PEER                "tests/integration/peers/interop.py"
#define SERVER_NAME         "localhost" /* what server.crt is issued for (pki.h) */
#define CLIENT_TIMEOUT_S    20          /* one argot client run: one case */
#define PY_CLIENT_TIMEOUT_S 150         /* one python client run: every case */

#include "interop_cases.h"

static const char *const tls_cases[] = {
    "empty_unary",
    "large_unary",
    "server_compressed_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "custom_metadata",
    "special_status_message",
    "cancel_after_first_response",
};

/* Cases a python server cannot judge (see the file's comment). */
static const char *const python_server_cannot[] = {"client_compressed_unary",
                                                   "client_compressed_streaming"};

enum side { PYTHON_SIDE, ARGOT_SIDE };

static const char *side_name(enum side s)
{
    return s == PYTHON_SIDE ? "python" : "argot";
}

/* A running server. */
struct server {
    enum side side;
    bool tls;
    pid_t pid;
    int out_fd; /* the python server's stdout; -1 for argot's */
    int port;
};

/* What went wrong, case by case. */
struct report {
    char text[32768];
    size_t len;
    unsigned failed;
    unsigned ran;
};

static void report_add(struct report *r, const char *fmt, ...) AG_PRINTF(2, 3);
static void report_add(struct report *r, const char *fmt, ...)
{
    if (r->len + 1 >= sizeof(r->text))
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->text + r->len, sizeof(r->text) - r->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        r->len = AG_MIN(r->len + (size_t)n, sizeof(r->text) - 1);
}

/* A file of the test PKI (rotating static slots). */
static const char *P(const char *name)
{
    static char slots[8][512];
    static unsigned next;
    char *p = slots[next++ % 8];
    snprintf(p, sizeof(slots[0]), "%s/%s", ag_test_pki(), name);
    return p;
}

/* The python peer needs python3-grpcio, python3-protobuf and protoc with
 * gRPC's python plugin: without them, fail saying so (they are test
 * dependencies, installed by scripts/deps.sh; never a reason to skip). */
static void need_python(void)
{
    const char *argv[] = {PYTHON, "-c", "import grpc, google.protobuf", NULL};
    ag_test_proc p;
    if (ag_test_run(&p, argv, NULL, 30) != 0)
        FAIL("%s cannot import grpc (python3-grpcio, python3-protobuf; scripts/deps.sh "
             "installs them):\n%s",
             PYTHON, p.err);
    ag_test_proc_cleanup(&p);
    const char *tools[] = {"/usr/bin/protoc", "/usr/bin/grpc_python_plugin",
                           "/usr/share/grpc-proto/grpc/testing/test.proto"};
    for (size_t i = 0; i < AG_ARRAY_LEN(tools); i++)
        if (access(tools[i], R_OK) != 0)
            FAIL("%s: %s (protobuf-compiler, protobuf-compiler-grpc, grpc-proto; "
                 "scripts/deps.sh installs them)",
                 tools[i], strerror(errno));
}

static void need_bin(const char *name)
{
    const char *path = ag_test_bin(name);
    if (access(path, X_OK) != 0)
        FAIL("%s: %s (built by make; ARGOT_BIN_DIR says where)", path, strerror(errno));
}

static bool is_one_of(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

/* Starts a program with its stdout sent to the test's stderr (the test's
 * output, which never fills up), in the test's process group. */
static pid_t spawn_to_stderr(const char *const argv[])
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(2, 1);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Fails if the server has exited. */
static void check_running(pid_t pid, int port, const char *when)
{
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid)
        FAIL("the argot interop server exited (status %d) %s port %d",
             WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), when, port);
}

/* Waits until 127.0.0.1:port accepts a connection, failing if the server
 * exits first or timeout_s passes. The port came from ag_test_free_port, so
 * another process may take it first: then the server cannot bind it and
 * exits, which the check a moment after the port answers sees. */
static void wait_for_port(pid_t pid, int port, unsigned timeout_s)
{
    uint64_t deadline = ag_now_ns() + (uint64_t)timeout_s * 1000000000u;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (;;) {
        check_running(pid, port, "before listening on");
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(s >= 0);
        int rc = connect(s, (struct sockaddr *)&sa, sizeof(sa));
        close(s);
        if (rc == 0) {
            ag_sleep_ms(100);
            check_running(pid, port, "(another process answered) on");
            return;
        }
        if (ag_now_ns() >= deadline)
            FAIL("the argot interop server did not listen on port %d within %u s", port, timeout_s);
        ag_sleep_ms(20);
    }
}

static void server_start(struct server *s, enum side side, bool tls)
{
    char port[32], cert[600], key[600];
    const char *argv[10];
    size_t n = 0;
    memset(s, 0, sizeof(*s));
    s->side = side;
    s->tls = tls;
    s->out_fd = -1;
    if (side == PYTHON_SIDE) {
        argv[n++] = PYTHON;
        argv[n++] = PEER;
        argv[n++] = "server";
        argv[n++] = "--port=0";
    } else {
        s->port = ag_test_free_port();
        snprintf(port, sizeof(port), "--port=%d", s->port);
        argv[n++] = ag_test_bin("argot-interop-server");
        argv[n++] = port;
    }
    if (tls) {
        snprintf(cert, sizeof(cert), "--tls_cert_file=%s", P("server.crt"));
        snprintf(key, sizeof(key), "--tls_key_file=%s", P("server.key"));
        argv[n++] = "--use_tls=true";
        argv[n++] = cert;
        argv[n++] = key;
    }
    argv[n] = NULL;
    if (side == ARGOT_SIDE) {
        s->pid = spawn_to_stderr(argv);
        wait_for_port(s->pid, s->port, 20);
        return;
    }
    s->pid = ag_test_spawn(argv, &s->out_fd);
    char line[64];
    if (ag_test_read_line(s->out_fd, line, sizeof(line), 30) <= 0 ||
        sscanf(line, "listening %d", &s->port) != 1 || s->port <= 0)
        FAIL("the python interop server did not print \"listening PORT\" (its stderr is "
             "above)");
}

/* Stops the server; the python one must exit 0 on SIGTERM. */
static void server_stop(struct server *s)
{
    int st = ag_test_stop(s->pid);
    if (s->out_fd >= 0) {
        close(s->out_fd);
        if (st != 0)
            FAIL("the python interop server exited with status %d on SIGTERM", st);
    }
}

/* The client flags after the program's name, into argv from *n. */
static void client_flags(const struct server *s, const char **argv, size_t *n, char *port,
                         size_t port_cap, char *ca, size_t ca_cap)
{
    snprintf(port, port_cap, "--server_port=%d", s->port);
    argv[(*n)++] = "--server_host=127.0.0.1";
    argv[(*n)++] = port;
    if (s->tls) {
        snprintf(ca, ca_cap, "--ca_file=%s", P("ca.crt"));
        argv[(*n)++] = "--use_tls=true";
        argv[(*n)++] = ca;
        argv[(*n)++] = "--server_host_override=" SERVER_NAME;
    }
}

/* argot's client, once per case. */
static void run_argot_client(const struct server *s, const char *const *cases, size_t ncases,
                             struct report *r)
{
    for (size_t i = 0; i < ncases; i++) {
        char port[32], ca[600], tc[96];
        const char *argv[12] = {ag_test_bin("argot-interop-client")};
        size_t n = 1;
        client_flags(s, argv, &n, port, sizeof(port), ca, sizeof(ca));
        snprintf(tc, sizeof(tc), "--test_case=%s", cases[i]);
        argv[n++] = tc;
        argv[n] = NULL;
        ag_test_proc p;
        int st = ag_test_run(&p, argv, NULL, CLIENT_TIMEOUT_S);
        r->ran++;
        printf("%s %s\n", st == 0 ? "ok" : "FAIL", cases[i]);
        fflush(stdout);
        if (st != 0) {
            r->failed++;
            report_add(r, "  %s: exit status %d\n%s%s", cases[i], st, p.out, p.err);
        }
        ag_test_proc_cleanup(&p);
    }
}

/* Does text have this line? */
static bool has_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p += len)
        if ((p == text || p[-1] == '\n') && p[len] == '\n')
            return true;
    return false;
}

/* The python client, once with every case. */
static void run_python_client(const struct server *s, const char *const *cases, size_t ncases,
                              struct report *r)
{
    char list[1024] = "--test_case=";
    for (size_t i = 0; i < ncases; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof(list) - l, "%s%s", i ? "," : "", cases[i]);
    }
    char port[32], ca[600];
    const char *argv[12] = {PYTHON, PEER, "client"};
    size_t n = 3;
    client_flags(s, argv, &n, port, sizeof(port), ca, sizeof(ca));
    argv[n++] = list;
    argv[n] = NULL;
    ag_test_proc p;
    int st = ag_test_run(&p, argv, NULL, PY_CLIENT_TIMEOUT_S);
    fputs(p.out, stdout); /* its "ok NAME" / "FAIL NAME: why" lines */
    fflush(stdout);
    for (size_t i = 0; i < ncases; i++) {
        char want[96];
        snprintf(want, sizeof(want), "ok %s", cases[i]);
        r->ran++;
        if (!has_line(p.out, want)) {
            r->failed++;
            report_add(r, "  %s: no \"%s\" line\n", cases[i], want);
        }
    }
    if (st != 0)
        report_add(r, "  the python client exited with status %d%s%s", st, p.err[0] ? ":\n" : "",
                   p.err);
    if (st != 0 && r->failed == 0)
        r->failed++;
    ag_test_proc_cleanup(&p);
}

/* Runs cases from client against a server it starts, then fails listing
 * every case that failed. */
static void run_cases(enum side client, enum side server, bool tls, const char *const *cases,
                      size_t ncases)
{
    need_python();
    if (client == ARGOT_SIDE)
        need_bin("argot-interop-client");
    if (server == ARGOT_SIDE)
        need_bin("argot-interop-server");
    printf("%s client -> %s server, %s:\n", side_name(client), side_name(server),
           tls ? "TLS" : "plaintext");
    const char *run[AG_ARRAY_LEN(all_cases)];
    size_t nrun = 0;
    for (size_t i = 0; i < ncases && nrun < AG_ARRAY_LEN(run); i++) {
        if (server == PYTHON_SIDE &&
            is_one_of(cases[i], python_server_cannot, AG_ARRAY_LEN(python_server_cannot))) {
            printf("skip %s: a python server cannot tell a compressed request\n", cases[i]);
            continue;
        }
        run[nrun++] = cases[i];
    }
    fflush(stdout);
    struct server s;
    server_start(&s, server, tls);
    static struct report r; /* 32 KiB: not on the stack */
    memset(&r, 0, sizeof(r));
    if (client == ARGOT_SIDE)
        run_argot_client(&s, run, nrun, &r);
    else
        run_python_client(&s, run, nrun, &r);
    server_stop(&s);
    if (r.failed)
        FAIL("%s client -> %s server (%s): %u of %u cases failed:\n%s", side_name(client),
             side_name(server), tls ? "TLS" : "plaintext", r.failed, r.ran, r.text);
}

TEST_TIMEOUT(rpc_interop_cases_python_client_python_server, 180)
{
    run_cases(PYTHON_SIDE, PYTHON_SIDE, false, all_cases, AG_ARRAY_LEN(all_cases));
    run_cases(PYTHON_SIDE, PYTHON_SIDE, true, tls_cases, AG_ARRAY_LEN(tls_cases));
}

TEST_TIMEOUT(rpc_interop_cases_argot_client_python_server, 240)
{
    run_cases(ARGOT_SIDE, PYTHON_SIDE, false, all_cases, AG_ARRAY_LEN(all_cases));
}

TEST_TIMEOUT(rpc_interop_cases_python_client_argot_server, 180)
{
    run_cases(PYTHON_SIDE, ARGOT_SIDE, false, all_cases, AG_ARRAY_LEN(all_cases));
}

TEST_TIMEOUT(rpc_interop_cases_argot_client_argot_server, 240)
{
    run_cases(ARGOT_SIDE, ARGOT_SIDE, false, all_cases, AG_ARRAY_LEN(all_cases));
}

TEST_TIMEOUT(rpc_interop_cases_tls_argot_client_python_server, 240)
{
    run_cases(ARGOT_SIDE, PYTHON_SIDE, true, tls_cases, AG_ARRAY_LEN(tls_cases));
}

TEST_TIMEOUT(rpc_interop_cases_tls_python_client_argot_server, 180)
{
    run_cases(PYTHON_SIDE, ARGOT_SIDE, true, tls_cases, AG_ARRAY_LEN(tls_cases));
}

TEST_TIMEOUT(rpc_interop_cases_tls_argot_client_argot_server, 240)
{
    run_cases(ARGOT_SIDE, ARGOT_SIDE, true, tls_cases, AG_ARRAY_LEN(tls_cases));
}
