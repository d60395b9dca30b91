/*
 * argot's gRPC interop programs against grpc-go, both ways: gRPC's standard
 * interop cases (doc/interop-test-descriptions.md in grpc/grpc) between
 * build/bin/argot-interop-{server,client} and a Go interop client and
 * server built on Debian's grpc-go 1.33 (golang-google-grpc-dev), in plain
 * text and over TLS (certificates: tests/harness/pki.c).
 *
 * Debian's package ships grpc-go's library but not its interop/ programs,
 * so the Go side is our own (tests/integration/peers/go/{client,server}),
 * built offline into BUILD/peers/go by tests/integration/peers/go_interop.sh
 * (BUILD: the parent of $ARGOT_BIN_DIR) and reused while its inputs do not
 * change: the first run takes about a minute, the next ones nothing.
 *
 * One server per test: every case runs in one client process against it.
 */
#include <unistd.h>

#include "pki.h"
#include "test.h"

#define GO_PEER "tests/integration/peers/go_interop.sh"

#include "interop_cases.h"

/* Cases the Go server cannot serve: grpc-go 1.33 cannot choose per response
 * whether to compress (grpc.SetSendCompressor came in 1.54; 1.33 compresses
 * a response exactly when its request came compressed), so it ignores
 * response_compressed and ResponseParameters.compressed, which these two
 * cases check. The Go client runs every case against argot's server. */
static bool go_server_cannot(const char *c)
{
    return strcmp(c, "server_compressed_unary") == 0 ||
           strcmp(c, "server_compressed_streaming") == 0;
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

/* The Go peer's programs: which 0 the server, 1 the client (built on first
 * use in this process; the build itself is cached under BUILD/peers/go). */
static const char *go_peer(int which)
{
    static char paths[2][1024];
    if (!paths[0][0]) {
        const char *bin = getenv("ARGOT_BIN_DIR");
        char build[600];
        snprintf(build, sizeof(build), "%s/..", bin ? bin : "build/bin");
        const char *argv[] = {"/bin/sh", GO_PEER, build, NULL};
        ag_test_proc p;
        int st = ag_test_run(&p, argv, NULL, 400);
        if (st != 0)
            FAIL("%s %s: exit %d (the Go interop peer could not be built):\n%s%s", GO_PEER,
                 build, st, p.out, p.err);
        char *nl = strchr(p.out, '\n');
        CHECK(nl);
        snprintf(paths[0], sizeof(paths[0]), "%.*s", (int)(nl - p.out), p.out);
        snprintf(paths[1], sizeof(paths[1]), "%s", nl + 1);
        paths[1][strcspn(paths[1], "\n")] = '\0';
        ag_test_proc_cleanup(&p);
        CHECK(access(paths[0], X_OK) == 0 && access(paths[1], X_OK) == 0);
    }
    return paths[which];
}

/* Starts a server (argv NULL-terminated) that prints "listening PORT";
 * returns its pid, the port in *port and its stdout in *fd. */
static pid_t start_server(const char *const *argv, int *fd, int *port)
{
    pid_t pid = ag_test_spawn(argv, fd);
    char line[64];
    if (ag_test_read_line(*fd, line, sizeof(line), 60) <= 0 ||
        sscanf(line, "listening %d", port) != 1) {
        ag_test_stop(pid);
        FAIL("%s did not print \"listening PORT\"", argv[0]);
    }
    return pid;
}

/* Runs a client (argv NULL-terminated) and checks for an "ok CASE" line per
 * case of all_cases but those skip selects (skip NULL: none); on failure,
 * names every case missing, then shows the client's whole output. */
static void run_client(const char *who, const char *const *argv, bool (*skip)(const char *))
{
    ag_test_proc p;
    int st = ag_test_run(&p, argv, NULL, 180);
    char missing[1024] = "";
    size_t n = 0, m = 0;
    for (size_t i = 0; i < AG_ARRAY_LEN(all_cases); i++) {
        if (skip && skip(all_cases[i]))
            continue;
        char want[96];
        snprintf(want, sizeof(want), "\nok %s\n", all_cases[i]);
        n++;
        /* a line of its own: at the start, or after a newline */
        if (strncmp(p.out, want + 1, strlen(want + 1)) != 0 && !strstr(p.out, want)) {
            m++;
            size_t l = strlen(missing);
            snprintf(missing + l, sizeof(missing) - l, " %s", all_cases[i]);
        }
    }
    if (st != 0 || m != 0)
        FAIL("%s: exit %d, %zu of %zu cases not ok:%s\n--- stdout:\n%s--- stderr:\n%s", who, st,
             m, n, missing, p.out, p.err);
    ag_test_proc_cleanup(&p);
}

/* Runs a TLS client (argv NULL-terminated) that must fail: the server's
 * certificate does not carry the name it asks for. */
static void refused(const char *who, const char *const *argv)
{
    ag_test_proc p;
    int st = ag_test_run(&p, argv, NULL, 60);
    if (st == 0 || strstr(p.out, "ok empty_unary"))
        FAIL("%s accepted a certificate without the name asked for: exit %d\n%s%s", who, st,
             p.out, p.err);
    ag_test_proc_cleanup(&p);
}

/* "--test_case=" and every case not skipped, comma-separated. */
static const char *case_flag(bool (*skip)(const char *))
{
    static char flag[1024];
    size_t l = (size_t)snprintf(flag, sizeof(flag), "--test_case=");
    for (size_t i = 0; i < AG_ARRAY_LEN(all_cases); i++)
        if (!skip || !skip(all_cases[i]))
            l += (size_t)snprintf(flag + l, sizeof(flag) - l, "%s%s",
                                  flag[l - 1] == '=' ? "" : ",", all_cases[i]);
    return flag;
}

/* ---- grpc-go's client against argot's server ---------------------------------- */

static void go_client_to_argot_server(bool tls)
{
    const char *client = go_peer(1); /* built before the server starts */
    char cert[600], key[600];
    snprintf(cert, sizeof(cert), "--tls_cert_file=%s", P("server.crt"));
    snprintf(key, sizeof(key), "--tls_key_file=%s", P("server.key"));
    const char *sargv[] = {ag_test_bin("argot-interop-server"), "--port=0",
                           tls ? "--use_tls=true" : NULL, cert, key, NULL};
    int fd, port;
    pid_t pid = start_server(sargv, &fd, &port);

    char portf[32], ca[600];
    snprintf(portf, sizeof(portf), "--server_port=%d", port);
    snprintf(ca, sizeof(ca), "--ca_file=%s", P("ca.crt"));
    /* over TLS, the certificate is checked for "localhost" (one of its names) */
    const char *cargv[] = {client, "--server_host=127.0.0.1", portf, case_flag(NULL),
                           tls ? "--use_tls=true" : NULL, ca,
                           "--server_host_override=localhost", NULL};
    run_client(tls ? "the Go client (TLS)" : "the Go client", cargv, NULL);
    if (tls) {
        /* and it does check: the certificate does not carry other.example */
        cargv[3] = "--test_case=empty_unary";
        cargv[6] = "--server_host_override=other.example";
        refused("the Go client", cargv);
    }
    close(fd);
    CHECK_EQ(ag_test_stop(pid), 0);
}

TEST_TIMEOUT(rpc_interop_go_client_to_argot_server, 480)
{
    go_client_to_argot_server(false);
}

TEST_TIMEOUT(rpc_interop_go_tls_client_to_argot_server, 480)
{
    go_client_to_argot_server(true);
}

/* ---- argot's client against grpc-go's server ---------------------------------- */

static void argot_client_to_go_server(bool tls)
{
    char cert[600], key[600];
    snprintf(cert, sizeof(cert), "--tls_cert_file=%s", P("server.crt"));
    snprintf(key, sizeof(key), "--tls_key_file=%s", P("server.key"));
    const char *sargv[] = {go_peer(0), "--port=0", tls ? "--use_tls=true" : NULL, cert, key,
                           NULL};
    int fd, port;
    pid_t pid = start_server(sargv, &fd, &port);

    char portf[32], ca[600];
    snprintf(portf, sizeof(portf), "--server_port=%d", port);
    snprintf(ca, sizeof(ca), "--ca_file=%s", P("ca.crt"));
    const char *cargv[] = {ag_test_bin("argot-interop-client"), "--server_host=127.0.0.1",
                           portf, case_flag(go_server_cannot), tls ? "--use_tls=true" : NULL,
                           ca, "--server_host_override=localhost", NULL};
    run_client(tls ? "argot's client (TLS)" : "argot's client", cargv, go_server_cannot);
    if (tls) {
        cargv[3] = "--test_case=empty_unary";
        cargv[6] = "--server_host_override=other.example";
        refused("argot's client", cargv);
    }
    close(fd);
    CHECK_EQ(ag_test_stop(pid), 0);
}

TEST_TIMEOUT(rpc_interop_argot_client_to_go_server, 480)
{
    argot_client_to_go_server(false);
}

TEST_TIMEOUT(rpc_interop_argot_tls_client_to_go_server, 480)
{
    argot_client_to_go_server(true);
}
