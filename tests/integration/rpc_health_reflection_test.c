/*
 * argot's health and reflection services against an independent client:
 * Debian's python3-grpcio (tests/integration/peers/health_reflection_peer.py)
 * with stubs protoc generates at test time from Debian's grpc-proto files.
 * The server here serves health, reflection and argot.link.v1.Link (through
 * its generated handler table); the peer checks statuses, watches one
 * change that this test makes when the peer says it is watching, lists the
 * services, and builds the descriptors reflection returns into a python
 * descriptor pool.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "argot/rpc.h"
#include "argot/link/v1/link.argot.h"
#include "test.h"

#define PEER "tests/integration/peers/health_reflection_peer.py"
#define LINK "argot.link.v1.Link"

static int push(ag_rpc_call *c, void *ud)
{
    (void)ud;
    Argot__Link__V1__Frame *f;
    for (;;) {
        if (argot__link__v1__link__push__recv_request(c, &f) != 1)
            break;
        ag_rpc_msg_free(&f->base);
    }
    return AG_RPC_OK;
}

static const Argot__Link__V1__Link_Handlers link_handlers = {.push = push};

/* python stubs for health and reflection in dir */
static void make_stubs(const char *dir)
{
    char out[600];
    snprintf(out, sizeof(out), "--python_out=%s", dir);
    char gout[600];
    snprintf(gout, sizeof(gout), "--grpc_python_out=%s", dir);
    const char *argv[] = {"/usr/bin/protoc",
                          "-I/usr/share/grpc-proto",
                          out,
                          gout,
                          "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                          "grpc/health/v1/health.proto",
                          "grpc/reflection/v1alpha/reflection.proto",
                          NULL};
    ag_test_proc p;
    int st = ag_test_run(&p, argv, NULL, 60);
    if (st != 0)
        FAIL("protoc exit %d:\n%s%s", st, p.out, p.err);
    ag_test_proc_cleanup(&p);
}

TEST_TIMEOUT(rpc_health_reflection_python_client, 120)
{
    const ag_rpc_proto_file *files[] = {&argot_link_v1_link__proto_file};
    ag_rpc_reflection *refl = ag_rpc_reflection_new(files, 1);
    ag_rpc_health *h = ag_rpc_health_new();
    ag_rpc_server *s = ag_rpc_server_new(NULL);
    CHECK(refl && h && s);
    CHECK_OK(ag_rpc_health_register(s, h));
    CHECK_OK(ag_rpc_reflection_register(s, refl));
    CHECK_OK(argot__link__v1__link__register(s, &link_handlers));
    if (ag_rpc_server_start(s, "127.0.0.1:0") < 0)
        FAIL("%s", ag_rpc_server_errmsg(s));
    CHECK_OK(ag_rpc_health_set(h, LINK, AG_RPC_HEALTH_SERVING));

    const char *dir = ag_test_path("stubs");
    char stubs[512];
    snprintf(stubs, sizeof(stubs), "%s", dir);
    CHECK(mkdir(stubs, 0700) == 0);
    make_stubs(stubs);

    char port[16];
    snprintf(port, sizeof(port), "%d", ag_rpc_server_port(s));
    const char *argv[] = {"/usr/bin/python3", PEER, port, stubs, NULL};
    int fd;
    pid_t pid = ag_test_spawn(argv, &fd);
    static char out[16384];
    size_t used = 0;
    char line[1024];
    for (;;) {
        if (ag_test_read_line(fd, line, sizeof(line), 60) < 0)
            break;
        if (strcmp(line, "watching") == 0)
            CHECK_OK(ag_rpc_health_set(h, LINK, AG_RPC_HEALTH_NOT_SERVING));
        used += (size_t)snprintf(out + used, sizeof(out) - used, "%s\n", line);
        CHECK(used < sizeof(out));
    }
    close(fd);
    int st = ag_test_wait(pid, 30);
    if (st != 0)
        FAIL("the python client exit %d:\n%s", st, out);
    const char *cases[] = {"check_serving", "watch_change",      "check_after_set",
                           "list_services", "symbol_link",       "symbol_health",
                           "symbol_reflection", "not_found"};
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        char want[64];
        snprintf(want, sizeof(want), "ok %s\n", cases[i]);
        CHECK_CONTAINS(out, want);
    }
    ag_rpc_health_shutdown(h);
    ag_rpc_server_free(s);
    ag_rpc_health_free(h);
    ag_rpc_reflection_free(refl);
}
