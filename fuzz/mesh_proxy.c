/*
 * Fuzz target: the mesh's proxies on what a client sends them, over real
 * sockets. One mesh runs in this process for the whole session, with an
 * HTTP/2 router (in front of an argot gRPC server with the health
 * service) and an HTTP/1.1 router (in front of an rpc admin endpoint with
 * only its built-in routes: the mesh's own admin would let an input
 * reload the config or change the log level). The first input byte picks the router;
 * the rest is written on a fresh connection (for HTTP/2 after the client
 * preface and an empty SETTINGS frame, so the fuzzer spends its time on
 * frames), then the write side is shut and the answer read until the mesh
 * closes or 300 ms pass. Every 64 inputs, a real gRPC call through the
 * mesh must still succeed: no input may crash the gateway, leak, or break
 * it for other clients.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "argot/mesh.h"
#include "argot/rpc.h"

/* connect(2), carrying on when a signal (libFuzzer's timers) interrupts
 * it: the connection then completes in the background; wait for it. */
static int connect_fd(int fd, const struct sockaddr_in *sa)
{
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
        return 0;
    if (errno != EINTR)
        return -1;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n;
    do
        n = poll(&p, 1, 5000);
    while (n < 0 && errno == EINTR);
    int err = 0;
    socklen_t len = sizeof(err);
    if (n != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        errno = n == 1 && err ? err : ETIMEDOUT;
        return -1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ag_mesh *mesh;
static int h2_port, h1_port;
static unsigned long count;

static void die(const char *what)
{
    fprintf(stderr, "mesh_proxy: %s\n", what);
    abort();
}

static void setup(void)
{
    ag_log_set_level(AG_LOG_OFF);
    ag_rpc_server_opts so;
    ag_rpc_server_opts_init(&so);
    ag_rpc_server *srv = ag_rpc_server_new(&so);
    ag_rpc_health *health = ag_rpc_health_new();
    if (!srv || !health || ag_rpc_health_register(srv, health) < 0 ||
        ag_rpc_server_start(srv, "127.0.0.1:0") < 0)
        die("backend");
    ag_rpc_health_set(health, "", AG_RPC_HEALTH_SERVING);
    char dir[] = "/tmp/argot-fuzz-mesh.XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp");
    ag_admin *web = ag_admin_new(NULL);
    if (!web || ag_admin_start(web, "127.0.0.1:0") < 0)
        die("http backend");
    char conf[256], text[2048], err[AG_ERRMSG_MAX];
    snprintf(conf, sizeof(conf), "%s/mesh.yaml", dir);
    snprintf(text, sizeof(text),
             "admin: {ip: 127.0.0.1, port: -1}\n"
             "routers:\n"
             "  - protocol: h2\n"
             "    dtab: /svc => /$/inet/127.0.0.1/%d;\n"
             "    servers: [{ip: 127.0.0.1, port: 0}]\n"
             "    maxHeaderListBytes: 4096\n"
             "  - protocol: http\n"
             "    dtab: /svc => /$/inet/127.0.0.1/%d;\n"
             "    servers: [{ip: 127.0.0.1, port: 0}]\n"
             "    maxHeaderListBytes: 4096\n",
             ag_rpc_server_port(srv), ag_admin_port(web));
    FILE *f = fopen(conf, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die("config");
    mesh = ag_mesh_load(conf, err, sizeof(err));
    if (!mesh || ag_mesh_start(mesh, err, sizeof(err)) < 0)
        die(err);
    h2_port = ag_mesh_port(mesh, 0, 0);
    h1_port = ag_mesh_port(mesh, 1, 0);
    /* the backend, the mesh and the directory live for the session */
}

static void still_serving(void)
{
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", h2_port);
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    uint8_t *resp = NULL;
    size_t len = 0;
    int st = ag_rpc_unary(ch, "/grpc.health.v1.Health/Check", "", 0, ag_deadline_in_ms(5000),
                          &resp, &len, NULL);
    ag_free(resp);
    ag_rpc_channel_free(ch);
    if (st != 0)
        die("the mesh stopped serving");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!mesh)
        setup();
    if (size == 0)
        return 0;
    bool h2 = (data[0] & 1) == 0;
    data++;
    size--;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)(h2 ? h2_port : h1_port))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* closed with a reset: no TIME_WAIT, or tens of thousands of inputs a
     * minute would run out of local ports */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    if (connect_fd(fd, &sa) != 0) {
        perror("connect");
        close(fd);
        die("connect");
    }
    if (h2) {
        static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                         "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
        if (write(fd, preface, sizeof(preface) - 1) < 0)
            goto out;
    }
    if (size > 0 && write(fd, data, size) < 0)
        goto out;
    shutdown(fd, SHUT_WR);
    uint8_t buf[16384];
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 300) <= 0)
            break;
        if (read(fd, buf, sizeof(buf)) <= 0)
            break;
    }
out:
    close(fd);
    if (++count % 64 == 0)
        still_serving();
    return 0;
}
