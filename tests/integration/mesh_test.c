/*
 * argot mesh end to end: `argot mesh --config FILE` as its own process in
 * front of real backends, argot's (argot-interop-server, grpc.testing) and
 * python3-grpcio's (tests/integration/peers/mesh_backend.py: every backend
 * answers its own name, so a test sees which endpoint the mesh chose;
 * tests/integration/peers/interop.py: grpc.testing), and python's
 * http.server for the HTTP/1.1 router.
 *
 * What is checked, test by test:
 *   grpc         unary, the three streaming kinds (ping-pong proves both
 *                directions stream), ~4 MiB each way, a backend's status
 *                and message and its trailers passed through, grpc-timeout
 *                passed on (reduced), DEADLINE_EXCEEDED from a slow backend
 *   timeouts     service.totalTimeoutMs caps the client's deadline and is
 *                the deadline of calls without one; the path identifier
 *   sigterm      a call in flight at SIGTERM completes; exit status 0
 *   interop      gRPC's interop cases through the mesh: python client to
 *                python server, argot client to python server, python
 *                client to argot server
 *   discovery    an fs namer file edited: the new endpoint answers within
 *                1 s of the write; a file created after a request named it
 *                (negative, then bound); delegator.json agrees
 *   split        9:1 over 10,000 requests within 2% (the mesh does exact
 *                smooth weighted round robin)
 *   kill         3 backends, 10,000 calls 4 at a time, one backend SIGKILLed
 *                mid-run: at least 99.9% succeed; the admin state then shows
 *                that endpoint not open
 *   errors       UNIMPLEMENTED for an unknown name, UNAVAILABLE with every
 *                endpoint down, trailers-only; 404 / 503 / 431 for plain
 *                HTTP/2, a flood of 2000 headers; calls retried past an
 *                endpoint refusing connections and past one answering
 *                UNAVAILABLE; l5d-dtab ignored unless allowDtabOverride
 *   http1        GET and POST passed through (Host with a port and capitals),
 *                the backend's status, 404 / 503 / 431 / 400, a header
 *                flood, the static namer, a '|' fallback, l5d-dtab
 *                honoured, GETs retried past a backend answering 503, 502
 *                from a backend answering garbage, 504 past totalTimeoutMs
 *   malformed    garbage instead of the preface and after it, a
 *                CONTINUATION flood: connections closed, the mesh keeps
 *                serving, its memory stays put; backends answering garbage,
 *                or breaking HPACK mid-response, and keeping the connection
 *                open: the client gets UNAVAILABLE, not a hang
 *   slow client  a client that does not read a 200 MiB stream for 5 s does not
 *                grow the mesh past 64 MiB; then the whole stream comes
 *   check        --check on a good config ("FILE: ok") and bad ones (an unknown
 *                key, a bad dtab, an unknown namer kind or protocol, YAML
 *                that does not parse, a wrong type, no file): exit 1 and
 *                one line "argot: mesh: FILE:LINE:COL: why"; a dtab's error
 *                at its own line and column in the file
 *   reload       a dtab change by editing the file and by SIGHUP changes
 *                routing; a stream in flight across both completes; a
 *                config that does not load changes nothing; a server on
 *                port 0 keeps the port it printed
 *   admin        /healthz, state.json, /metrics, /logging, the page; the
 *                page in headless Chromium (Debian's chromium): the route
 *                table's row rendered by its JavaScript from state.json,
 *                and a 1280x900 screenshot that shows text on many rows
 *
 * Raw HTTP/2 (malformed frames, plain HTTP/2 requests, a client that never
 * reads) is written by hand here, with nghttp2's HPACK coder for header
 * blocks; gRPC calls use argot's client (include/argot/rpc.h), whose
 * :authority is its target, so most routers here name requests by an x-svc
 * header instead (identifier kind header).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "argot/rpc.h"
#include "test.h"

#define PYTHON      "/usr/bin/python3"
#define BACKEND_PY  "tests/integration/peers/mesh_backend.py"
#define INTEROP_PY  "tests/integration/peers/interop.py"
#define CHROMIUM    "/usr/bin/chromium"
#define MAX_ROUTERS 4

/* Copies src into dst (cap bytes), cut if longer. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- processes: every one started is killed at exit, whatever way the test ends ---- */

static pid_t procs[64]; /* 0: a free slot */
static size_t nprocs;

static void kill_all(void)
{
    for (size_t i = 0; i < nprocs; i++) {
        if (procs[i] > 0) {
            kill(procs[i], SIGKILL);
            waitpid(procs[i], NULL, 0);
            procs[i] = 0;
        }
    }
}

static void forget(pid_t pid)
{
    for (size_t i = 0; i < nprocs; i++)
        if (procs[i] == pid)
            procs[i] = 0;
}

static pid_t spawn(const char *const argv[], int *fd)
{
    static bool registered;
    if (!registered)
        atexit(kill_all);
    registered = true;
    size_t i = 0;
    while (i < nprocs && procs[i] != 0)
        i++;
    CHECK(i < AG_ARRAY_LEN(procs));
    pid_t pid = ag_test_spawn(argv, fd);
    procs[i] = pid;
    if (i == nprocs)
        nprocs++;
    return pid;
}

static int stop(pid_t pid)
{
    int st = ag_test_stop(pid);
    forget(pid);
    return st;
}

static void hard_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    forget(pid);
}

/* Reads and discards what fd gives until its end (a process's stdout that
 * nobody reads must not fill its pipe). */
static void *drain_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    close(fd);
    return NULL;
}

static void drain(int fd)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, drain_thread, (void *)(intptr_t)fd) == 0);
    pthread_detach(t);
}

/* The resident set of pid in KiB (VmRSS), -1 if unknown. */
static long rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), fp))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(fp);
    return kib;
}

/* ---- backends ----------------------------------------------------------------- */

typedef struct backend {
    pid_t pid;
    int port;
} backend;

static backend start_listening(const char *const argv[], const char *what)
{
    backend b;
    int fd;
    b.pid = spawn(argv, &fd);
    char line[128];
    if (ag_test_read_line(fd, line, sizeof(line), 30) <= 0 ||
        sscanf(line, "listening %d", &b.port) != 1)
        FAIL("%s did not print its port", what);
    drain(fd);
    return b;
}

/* mesh_backend.py grpc (or http) answering name. */
static backend py_backend(const char *mode, const char *name)
{
    const char *argv[] = {PYTHON, BACKEND_PY, mode, "--name", name, NULL};
    return start_listening(argv, name);
}

static backend interop_server(void)
{
    const char *argv[] = {ag_test_bin("argot-interop-server"), "--port=0", NULL};
    return start_listening(argv, "argot-interop-server");
}

static backend interop_py_server(void)
{
    const char *argv[] = {PYTHON, INTEROP_PY, "server", "--port", "0", NULL};
    return start_listening(argv, "interop.py server");
}

/* Writes disco/name (the fs namer's file) in place: "127.0.0.1 port [weight]"
 * lines from the text given. */
static void disco_write(const char *name, const char *text)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/disco", ag_test_tmpdir());
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/disco/%s", ag_test_tmpdir(), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    size_t len = strlen(text);
    CHECK_EQ(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* disco/name listing one endpoint. */
static void disco_one(const char *name, int port)
{
    char text[64];
    snprintf(text, sizeof(text), "127.0.0.1 %d\n", port);
    disco_write(name, text);
}

/* ---- the mesh ---------------------------------------------------------------------- */

typedef struct mesh {
    pid_t pid;
    int nrouters;
    char label[MAX_ROUTERS][32];
    int port[MAX_ROUTERS]; /* each router's (first) server */
    int admin;
    char cfg[512];
} mesh;

static const char *config_path(void)
{
    static char p[512];
    snprintf(p, sizeof(p), "%s/mesh.yaml", ag_test_tmpdir());
    return p;
}

/* Writes the config (in place, as an operator's editor would). */
static void write_config(const char *yaml)
{
    int fd = open(config_path(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    size_t len = strlen(yaml);
    CHECK_EQ(write(fd, yaml, len), (ssize_t)len);
    close(fd);
}

/* Starts `argot mesh --config <tmpdir>/mesh.yaml` with yaml, and reads the
 * lines that say where it listens. */
static void mesh_start(mesh *m, const char *yaml)
{
    memset(m, 0, sizeof(*m));
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/disco", ag_test_tmpdir());
    mkdir(dir, 0755);
    write_config(yaml);
    snprintf(m->cfg, sizeof(m->cfg), "%s", config_path());
    const char *argv[] = {ag_test_bin("argot"), "mesh", "--config", m->cfg, NULL};
    int fd;
    m->pid = spawn(argv, &fd);
    char line[256];
    for (;;) {
        if (ag_test_read_line(fd, line, sizeof(line), 20) < 0)
            FAIL("argot mesh did not say where it listens (config:\n%s)", yaml);
        char label[32], addr[64];
        if (sscanf(line, "mesh router %31s listening on %63s", label, addr) == 2) {
            CHECK(m->nrouters < MAX_ROUTERS);
            const char *colon = strrchr(addr, ':');
            CHECK(colon != NULL);
            snprintf(m->label[m->nrouters], sizeof(m->label[0]), "%s", label);
            m->port[m->nrouters++] = atoi(colon + 1);
        } else if (sscanf(line, "mesh admin listening on %63s", addr) == 1) {
            const char *colon = strrchr(addr, ':');
            CHECK(colon != NULL);
            m->admin = atoi(colon + 1);
            break;
        } else {
            FAIL("argot mesh printed an unexpected line: \"%s\"", line);
        }
    }
    CHECK(m->admin > 0);
    drain(fd);
}

/* SIGTERM: the mesh drains (its grace is 10 s) and exits 0. */
static void mesh_stop(mesh *m)
{
    kill(m->pid, SIGTERM);
    int st = ag_test_wait(m->pid, 15);
    forget(m->pid);
    if (st != 0)
        FAIL("argot mesh exited %d on SIGTERM, want 0", st);
}

/* ---- HTTP/1.1 ------------------------------------------------------------------------ */

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        FAIL("connect 127.0.0.1:%d: %s", port, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* a peer that stops reading fails our writes after 10 s instead of
     * hanging the test */
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Writes all of p; false if the peer closed (no SIGPIPE). */
static bool send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

typedef struct http_resp {
    int status; /* 0: no response */
    char *head; /* status line and headers */
    char *body; /* de-chunked */
    size_t body_len;
} http_resp;

static void http_resp_free(http_resp *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* True once buf holds a whole HTTP/1.1 response: its headers and the body
 * its Content-Length or chunked encoding says (else: until EOF). */
static bool http_complete(const char *buf, size_t n)
{
    const char *eoh = strstr(buf, "\r\n\r\n");
    if (!eoh)
        return false;
    size_t head = (size_t)(eoh - buf) + 4;
    char *h = strndup(buf, head);
    CHECK(h != NULL);
    const char *cl = strcasestr(h, "\r\ncontent-length:");
    bool chunked = strcasestr(h, "\r\ntransfer-encoding: chunked") != NULL;
    bool done = false;
    if (cl)
        done = n >= head + strtoul(cl + 17, NULL, 10);
    else if (chunked)
        done = n >= 5 && memcmp(buf + n - 5, "0\r\n\r\n", 5) == 0;
    free(h);
    return done;
}

/* Reads a response until it is whole (or EOF, or timeout_s), malloc'd and
 * NUL-terminated. */
static char *read_http(int fd, size_t *len, unsigned timeout_s)
{
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    CHECK(b != NULL);
    uint64_t end = ag_now_ms() + timeout_s * 1000u;
    for (;;) {
        uint64_t now = ag_now_ms();
        if (now >= end)
            break;
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)(end - now)) <= 0)
            continue;
        if (n + 1 >= cap) {
            cap *= 2;
            b = realloc(b, cap);
            CHECK(b != NULL);
        }
        ssize_t r = read(fd, b + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        b[n] = '\0';
        if (http_complete(b, n))
            break;
    }
    b[n] = '\0';
    *len = n;
    return b;
}

static void parse_http(const char *raw, size_t len, http_resp *r)
{
    memset(r, 0, sizeof(*r));
    const char *eoh = strstr(raw, "\r\n\r\n");
    if (!eoh || sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1) {
        r->status = 0;
        r->head = strdup(raw);
        r->body = strdup("");
        return;
    }
    r->head = strndup(raw, (size_t)(eoh - raw));
    const char *p = eoh + 4, *end = raw + len;
    r->body = malloc((size_t)(end - p) + 1);
    CHECK(r->body != NULL);
    if (strcasestr(r->head, "transfer-encoding: chunked")) {
        while (p < end) {
            char *q;
            unsigned long n = strtoul(p, &q, 16);
            const char *crlf = strstr(q, "\r\n");
            if (!crlf || n == 0 || crlf + 2 + n > end)
                break;
            memcpy(r->body + r->body_len, crlf + 2, n);
            r->body_len += n;
            p = crlf + 2 + n + 2;
        }
    } else {
        r->body_len = (size_t)(end - p);
        memcpy(r->body, p, r->body_len);
    }
    r->body[r->body_len] = '\0';
}

/* One HTTP/1.1 request with "Connection: close": method path, Host host, an
 * extra header line (NULL: none; given without CRLF), a body (NULL: none). */
static void http_do(int port, const char *method, const char *path, const char *host,
                    const char *extra, const char *body, http_resp *r)
{
    size_t cap = 1024 + (extra ? strlen(extra) : 0) + (body ? strlen(body) : 0);
    char *req = malloc(cap);
    CHECK(req != NULL);
    int n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: %s\r\n%s%sContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     method, path, host, extra ? extra : "", extra ? "\r\n" : "",
                     body ? strlen(body) : 0, body ? body : "");
    CHECK(n > 0 && (size_t)n < cap);
    int fd = tcp_connect(port);
    send_all(fd, req, (size_t)n);
    free(req);
    size_t len;
    char *raw = read_http(fd, &len, 15);
    close(fd);
    parse_http(raw, len, r);
    free(raw);
}

/* Sends raw bytes as a request and reads the response. */
static void http_raw(int port, const char *raw, http_resp *r)
{
    int fd = tcp_connect(port);
    send_all(fd, raw, strlen(raw));
    size_t len;
    char *resp = read_http(fd, &len, 15);
    close(fd);
    parse_http(resp, len, r);
    free(resp);
}

static char *http_get_body(int port, const char *path)
{
    http_resp r;
    http_do(port, "GET", path, "127.0.0.1", NULL, NULL, &r);
    if (r.status != 200)
        FAIL("GET %s on :%d: status %d (%s)", path, port, r.status, r.head);
    char *b = r.body;
    r.body = NULL;
    http_resp_free(&r);
    return b;
}

static json_t *admin_json(const mesh *m, const char *path)
{
    char *b = http_get_body(m->admin, path);
    json_error_t e;
    json_t *j = json_loads(b, 0, &e);
    if (!j)
        FAIL("%s: not JSON (%s at %d): %.300s", path, e.text, e.position, b);
    free(b);
    return j;
}

/* The admin state's endpoint addr "127.0.0.1:PORT" of router label (any
 * cluster): its "state", copied into out ("" if not found). */
static void endpoint_state(const mesh *m, const char *label, int port, char *out, size_t cap)
{
    json_t *st = admin_json(m, "/admin/state.json");
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    out[0] = '\0';
    size_t i, j, k;
    json_t *r, *c, *e;
    json_array_foreach(json_object_get(st, "routers"), i, r)
    {
        const char *l = json_string_value(json_object_get(r, "label"));
        if (!l || strcmp(l, label) != 0)
            continue;
        json_array_foreach(json_object_get(r, "clusters"), j, c)
        {
            json_array_foreach(json_object_get(c, "endpoints"), k, e)
            {
                const char *a = json_string_value(json_object_get(e, "addr"));
                const char *s = json_string_value(json_object_get(e, "state"));
                if (a && s && strcmp(a, addr) == 0)
                    snprintf(out, cap, "%s", s);
            }
        }
    }
    json_decref(st);
}

/* ---- gRPC through argot's client ------------------------------------------------------ */

static ag_rpc_channel *channel(int port)
{
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    ag_rpc_channel_opts o;
    ag_rpc_channel_opts_init(&o);
    o.max_recv_msg = 8u << 20;
    o.connect_timeout_ms = 5000;
    o.backoff_initial_ms = 50;
    o.backoff_max_ms = 200;
    ag_rpc_channel *ch = ag_rpc_channel_new(target, &o);
    CHECK(ch != NULL);
    return ch;
}

/* A client call of method with the x-svc header (NULL: none). */
static ag_rpc_call *call_new(ag_rpc_channel *ch, const char *svc, const char *method,
                             uint64_t timeout_ms)
{
    ag_rpc_call *c = ag_rpc_call_new(
        ch, method, timeout_ms ? ag_deadline_in_ms(timeout_ms) : ag_deadline_never());
    CHECK(c != NULL);
    if (svc)
        CHECK_OK(ag_rpc_call_add_metadata(c, "x-svc", svc, strlen(svc)));
    return c;
}

/* A unary call through the x-svc header; returns its status. The response
 * (NUL-terminated, ag_free) in *resp if resp (NULL if none); the status
 * message into msg if msg. */
static int unary(ag_rpc_channel *ch, const char *svc, const char *method, const void *req,
                 size_t len, uint64_t timeout_ms, uint8_t **resp, size_t *resp_len, char *msg,
                 size_t msg_cap)
{
    ag_rpc_call *c = call_new(ch, svc, method, timeout_ms);
    ag_rpc_call_send(c, req, len);
    ag_rpc_call_close_send(c);
    uint8_t *m = NULL;
    size_t l = 0;
    if (ag_rpc_call_recv(c, &m, &l) != 1)
        m = NULL;
    const char *smsg = NULL;
    int st = ag_rpc_call_status(c, &smsg);
    if (msg)
        snprintf(msg, msg_cap, "%s", smsg ? smsg : "");
    ag_rpc_call_free(c);
    if (resp) {
        uint8_t *r = NULL;
        if (m) {
            r = ag_malloc(l + 1);
            CHECK(r != NULL);
            memcpy(r, m, l);
            r[l] = '\0';
        }
        *resp = r;
        if (resp_len)
            *resp_len = l;
    }
    ag_free(m);
    return st;
}

/* /mesh.Test/Who through x-svc svc: the name of the backend that answered
 * into who ("" on failure); returns the status. */
static int who(ag_rpc_channel *ch, const char *svc, char *out, size_t cap)
{
    uint8_t *r;
    char msg[256];
    int st = unary(ch, svc, "/mesh.Test/Who", "", 0, 10000, &r, NULL, msg, sizeof(msg));
    snprintf(out, cap, "%s", st == AG_RPC_OK && r ? (char *)r : "");
    if (st != AG_RPC_OK) {
        char e[300];
        snprintf(e, sizeof(e), "(%s: %.200s)", ag_rpc_status_name(st), msg);
        copy_str(out, cap, e);
    }
    ag_free(r);
    return st;
}

/* ---- protobuf by hand (grpc.testing's messages.proto) --------------------------------- */

typedef struct pb {
    uint8_t *p;
    size_t len, cap;
} pb;

static void pb_raw(pb *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        CHECK(b->p != NULL);
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void pb_varint(pb *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    pb_raw(b, t, n);
}

static void pb_int(pb *b, unsigned field, uint64_t v)
{
    pb_varint(b, (uint64_t)field << 3);
    pb_varint(b, v);
}

static void pb_bytes(pb *b, unsigned field, const void *d, size_t n)
{
    pb_varint(b, (uint64_t)field << 3 | 2);
    pb_varint(b, n);
    pb_raw(b, d, n);
}

/* Payload {type COMPRESSABLE, body: n zero bytes} as field `field`. */
static void pb_payload(pb *b, unsigned field, size_t n)
{
    pb p = {0};
    uint8_t *zeros = calloc(1, n + 1);
    CHECK(zeros != NULL);
    pb_bytes(&p, 2, zeros, n);
    free(zeros);
    pb_bytes(b, field, p.p, p.len);
    free(p.p);
}

/* EchoStatus {code, message} as field 7. */
static void pb_status(pb *b, int code, const char *message)
{
    pb s = {0};
    pb_int(&s, 1, (uint64_t)code);
    pb_bytes(&s, 2, message, strlen(message));
    pb_bytes(b, 7, s.p, s.len);
    free(s.p);
}

/* ResponseParameters {size, interval_us} as field 2. */
static void pb_params(pb *b, int size, int interval_us)
{
    pb s = {0};
    pb_int(&s, 1, (uint64_t)size);
    if (interval_us)
        pb_int(&s, 2, (uint64_t)interval_us);
    pb_bytes(b, 2, s.p, s.len);
    free(s.p);
}

static bool pb_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (unsigned s = 0; *p < end && s < 64; s += 7) {
        uint8_t c = *(*p)++;
        *v |= (uint64_t)(c & 0x7f) << s;
        if (!(c & 0x80))
            return true;
    }
    return false;
}

/* The top-level field `field` of a message: a varint into *v, or a
 * length-delimited value into *d / *n. False if absent or malformed. */
static bool pb_find(const uint8_t *m, size_t len, unsigned field, uint64_t *v, const uint8_t **d,
                    size_t *n)
{
    const uint8_t *p = m, *end = m + len;
    while (p < end) {
        uint64_t key, x;
        if (!pb_read_varint(&p, end, &key))
            return false;
        switch (key & 7) {
        case 0:
            if (!pb_read_varint(&p, end, &x))
                return false;
            if ((key >> 3) == field && v) {
                *v = x;
                return true;
            }
            break;
        case 2:
            if (!pb_read_varint(&p, end, &x) || x > (uint64_t)(end - p))
                return false;
            if ((key >> 3) == field && d) {
                *d = p;
                *n = (size_t)x;
                return true;
            }
            p += x;
            break;
        case 1:
            p += 8;
            break;
        case 5:
            p += 4;
            break;
        default:
            return false;
        }
    }
    return false;
}

/* The length of a response's payload.body (field 1, then 2); -1 if none. An
 * empty body is left out on the wire: a payload without one counts 0. */
static long payload_len(const uint8_t *m, size_t len)
{
    const uint8_t *pl, *body;
    size_t pn, bn;
    if (!pb_find(m, len, 1, NULL, &pl, &pn))
        return -1;
    if (!pb_find(pl, pn, 2, NULL, &body, &bn))
        return 0;
    return (long)bn;
}

/* ---- raw HTTP/2 ------------------------------------------------------------------------- */

enum {
    F_DATA = 0,
    F_HEADERS = 1,
    F_RST = 3,
    F_SETTINGS = 4,
    F_PING = 6,
    F_GOAWAY = 7,
    F_WINDOW = 8,
    F_CONT = 9
};
enum { FL_END_STREAM = 1, FL_ACK = 1, FL_END_HEADERS = 4, FL_PADDED = 8, FL_PRIORITY = 0x20 };

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

typedef struct h2raw {
    int fd;
    nghttp2_hd_deflater *def;
    nghttp2_hd_inflater *inf;
    bool max_windows; /* windows opened to 2^31-1 at the start: no WINDOW_UPDATE */
} h2raw;

typedef struct h2resp {
    int status;      /* :status, 0 if none */
    int grpc_status; /* -1 if none */
    char grpc_message[256];
    size_t body_len; /* DATA bytes */
    bool ended;      /* END_STREAM on the stream */
    bool reset;      /* RST_STREAM on the stream */
    uint32_t rst_code;
    bool goaway;
    uint32_t goaway_code;
    bool closed; /* the connection ended (EOF or error) */
    bool timed_out;
} h2resp;

static void frame_hdr(uint8_t *b, size_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
    b[0] = (uint8_t)(len >> 16);
    b[1] = (uint8_t)(len >> 8);
    b[2] = (uint8_t)len;
    b[3] = type;
    b[4] = flags;
    b[5] = (uint8_t)(sid >> 24 & 0x7f);
    b[6] = (uint8_t)(sid >> 16);
    b[7] = (uint8_t)(sid >> 8);
    b[8] = (uint8_t)sid;
}

static bool send_frame(h2raw *h, uint8_t type, uint8_t flags, uint32_t sid, const void *p,
                       size_t len)
{
    uint8_t hdr[9];
    frame_hdr(hdr, len, type, flags, sid);
    return send_all(h->fd, hdr, 9) && (len == 0 || send_all(h->fd, p, len));
}

/* Connects and sends the preface and SETTINGS (initial_window: the
 * stream windows we allow; 0: the default). */
static void h2raw_open(h2raw *h, int port, uint32_t initial_window)
{
    memset(h, 0, sizeof(*h));
    h->fd = tcp_connect(port);
    CHECK(nghttp2_hd_deflate_new(&h->def, 4096) == 0);
    CHECK(nghttp2_hd_inflate_new(&h->inf) == 0);
    CHECK(send_all(h->fd, PREFACE, strlen(PREFACE)));
    uint8_t s[6] = {0,
                    4,
                    (uint8_t)(initial_window >> 24),
                    (uint8_t)(initial_window >> 16),
                    (uint8_t)(initial_window >> 8),
                    (uint8_t)initial_window};
    CHECK(send_frame(h, F_SETTINGS, 0, 0, s, initial_window ? 6 : 0));
    if (initial_window) {
        h->max_windows = initial_window == 0x7fffffff;
        uint32_t inc = 0x7fffffff - 65535;
        uint8_t w[4] = {(uint8_t)(inc >> 24), (uint8_t)(inc >> 16), (uint8_t)(inc >> 8),
                        (uint8_t)inc};
        CHECK(send_frame(h, F_WINDOW, 0, 0, w, 4));
    }
}

static void h2raw_close(h2raw *h)
{
    if (h->fd >= 0)
        close(h->fd);
    nghttp2_hd_deflate_del(h->def);
    nghttp2_hd_inflate_del(h->inf);
    h->fd = -1;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NO_INDEX             \
    }

/* Sends a header block on sid as HEADERS + CONTINUATION frames of at most
 * 16384 bytes. False if the peer closed meanwhile. */
static bool send_headers(h2raw *h, uint32_t sid, const nghttp2_nv *nva, size_t n, bool end_stream)
{
    size_t bound = nghttp2_hd_deflate_bound(h->def, nva, n);
    uint8_t *blk = malloc(bound);
    CHECK(blk != NULL);
    ssize_t len = nghttp2_hd_deflate_hd(h->def, blk, bound, nva, n);
    CHECK(len > 0);
    bool ok = true;
    for (size_t off = 0; ok && off < (size_t)len;) {
        size_t chunk = AG_MIN((size_t)len - off, 16384);
        bool last = off + chunk == (size_t)len;
        uint8_t flags =
            (uint8_t)((last ? FL_END_HEADERS : 0) | (off == 0 && end_stream ? FL_END_STREAM : 0));
        ok = send_frame(h, off == 0 ? F_HEADERS : F_CONT, flags, sid, blk + off, chunk);
        off += chunk;
    }
    free(blk);
    return ok;
}

/* A gRPC message (5-byte prefix) as one DATA frame (len <= 16379). */
static bool send_grpc_msg(h2raw *h, uint32_t sid, const void *m, size_t len, bool end_stream)
{
    uint8_t *b = malloc(len + 5);
    CHECK(b != NULL);
    b[0] = 0;
    b[1] = (uint8_t)(len >> 24);
    b[2] = (uint8_t)(len >> 16);
    b[3] = (uint8_t)(len >> 8);
    b[4] = (uint8_t)len;
    memcpy(b + 5, m, len);
    bool ok = send_frame(h, F_DATA, end_stream ? FL_END_STREAM : 0, sid, b, len + 5);
    free(b);
    return ok;
}

static void on_header(h2resp *r, const nghttp2_nv *nv)
{
    char v[256];
    snprintf(v, sizeof(v), "%.*s", (int)AG_MIN(nv->valuelen, 255), (const char *)nv->value);
    if (nv->namelen == 7 && memcmp(nv->name, ":status", 7) == 0)
        r->status = atoi(v);
    else if (nv->namelen == 11 && memcmp(nv->name, "grpc-status", 11) == 0)
        r->grpc_status = atoi(v);
    else if (nv->namelen == 12 && memcmp(nv->name, "grpc-message", 12) == 0)
        snprintf(r->grpc_message, sizeof(r->grpc_message), "%s", v);
}

static void inflate_block(h2raw *h, const uint8_t *in, size_t len, h2resp *r, bool ours)
{
    for (;;) {
        nghttp2_nv nv;
        int fl = 0;
        ssize_t rv = nghttp2_hd_inflate_hd2(h->inf, &nv, &fl, in, len, 1);
        if (rv < 0)
            FAIL("the mesh sent a header block HPACK cannot decode: %s", nghttp2_strerror((int)rv));
        in += rv;
        len -= (size_t)rv;
        if ((fl & NGHTTP2_HD_INFLATE_EMIT) && ours)
            on_header(r, &nv);
        if (fl & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(h->inf);
            break;
        }
        if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && len == 0)
            break;
    }
}

/* Reads exactly n bytes by the deadline (ms, monotonic); 1, 0 at EOF or an
 * error, -1 on timeout. */
static int read_exact(int fd, uint8_t *b, size_t n, uint64_t end_ms)
{
    while (n > 0) {
        uint64_t now = ag_now_ms();
        if (now >= end_ms)
            return -1;
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)(end_ms - now)) <= 0)
            continue;
        ssize_t r = read(fd, b, n);
        if (r <= 0)
            return 0;
        b += r;
        n -= (size_t)r;
    }
    return 1;
}

/* Reads frames until stream sid ends (END_STREAM or RST_STREAM), the
 * connection ends, or timeout_s passes; answers SETTINGS and PING, and
 * returns DATA's flow-control credit. */
static void read_response(h2raw *h, uint32_t sid, unsigned timeout_s, h2resp *r)
{
    memset(r, 0, sizeof(*r));
    r->grpc_status = -1;
    uint64_t end = ag_now_ms() + timeout_s * 1000u;
    uint8_t *blk = NULL;
    size_t blk_len = 0;
    uint32_t blk_sid = 0;
    uint8_t *p = malloc(1 << 24);
    CHECK(p != NULL);
    for (;;) {
        uint8_t fh[9];
        int rc = read_exact(h->fd, fh, 9, end);
        if (rc <= 0) {
            r->closed = rc == 0;
            r->timed_out = rc < 0;
            break;
        }
        size_t len = (size_t)fh[0] << 16 | (size_t)fh[1] << 8 | fh[2];
        uint8_t type = fh[3], flags = fh[4];
        uint32_t fsid =
            ((uint32_t)fh[5] << 24 | (uint32_t)fh[6] << 16 | (uint32_t)fh[7] << 8 | fh[8]) &
            0x7fffffff;
        rc = read_exact(h->fd, p, len, end);
        if (rc <= 0) {
            r->closed = rc == 0;
            r->timed_out = rc < 0;
            break;
        }
        const uint8_t *d = p;
        size_t dl = len;
        if ((type == F_DATA || type == F_HEADERS) && (flags & FL_PADDED) && dl > 0) {
            size_t pad = d[0];
            d++;
            dl = dl - 1 >= pad ? dl - 1 - pad : 0;
        }
        if (type == F_HEADERS && (flags & FL_PRIORITY) && dl >= 5) {
            d += 5;
            dl -= 5;
        }
        if (type == F_SETTINGS && !(flags & FL_ACK)) {
            send_frame(h, F_SETTINGS, FL_ACK, 0, NULL, 0);
        } else if (type == F_PING && !(flags & FL_ACK)) {
            send_frame(h, F_PING, FL_ACK, 0, p, len);
        } else if (type == F_HEADERS || type == F_CONT) {
            if (type == F_HEADERS) {
                blk_len = 0;
                blk_sid = fsid;
            }
            blk = realloc(blk, blk_len + dl + 1);
            CHECK(blk != NULL);
            memcpy(blk + blk_len, d, dl);
            blk_len += dl;
            if (flags & FL_END_HEADERS)
                inflate_block(h, blk, blk_len, r, blk_sid == sid);
            if (fsid == sid && (flags & FL_END_STREAM) && type == F_HEADERS)
                r->ended = true;
            if (r->ended && (flags & FL_END_HEADERS))
                break;
        } else if (type == F_DATA) {
            if (fsid == sid)
                r->body_len += dl;
            if (len > 0 && !h->max_windows) {
                uint8_t w[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                                (uint8_t)len};
                send_frame(h, F_WINDOW, 0, 0, w, 4);
                if (!(flags & FL_END_STREAM))
                    send_frame(h, F_WINDOW, 0, fsid, w, 4);
            }
            if (fsid == sid && (flags & FL_END_STREAM)) {
                r->ended = true;
                break;
            }
        } else if (type == F_RST && fsid == sid && len == 4) {
            r->reset = true;
            r->rst_code = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            break;
        } else if (type == F_GOAWAY && len >= 8) {
            r->goaway = true;
            r->goaway_code =
                (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
        }
    }
    free(p);
    free(blk);
}

/* Describes an h2resp for failure messages (static storage). */
static const char *h2desc(const h2resp *r)
{
    static char s[512];
    snprintf(s, sizeof(s),
             ":status %d, grpc-status %d (%s), body %zu bytes, ended %d, reset %d (code %u), "
             "goaway %d (code %u), closed %d, timed out %d",
             r->status, r->grpc_status, r->grpc_message, r->body_len, r->ended, r->reset,
             r->rst_code, r->goaway, r->goaway_code, r->closed, r->timed_out);
    return s;
}

/* A whole plain (non-gRPC) HTTP/2 GET with :authority host and an extra
 * header (NULL: none), on a new connection. */
static void h2_get(int port, const char *host, const char *xname, const char *xval, h2resp *r)
{
    h2raw h;
    h2raw_open(&h, port, 0);
    nghttp2_nv nva[6] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"),
                         NV(":authority", host), NV("user-agent", "mesh_test")};
    size_t n = 5;
    if (xname)
        nva[n++] = (nghttp2_nv)NV(xname, xval);
    send_headers(&h, 1, nva, n, true);
    read_response(&h, 1, 15, r);
    h2raw_close(&h);
}

/* A gRPC request on a new raw connection: method, :authority host, one
 * message, extra headers; the response in r. */
static void h2_grpc(int port, const char *host, const char *method, const char *msg,
                    const char *svc, h2resp *r)
{
    h2raw h;
    h2raw_open(&h, port, 0);
    nghttp2_nv nva[8] = {NV(":method", "POST"),
                         NV(":scheme", "http"),
                         NV(":path", method),
                         NV(":authority", host),
                         NV("content-type", "application/grpc"),
                         NV("te", "trailers")};
    size_t n = 6;
    if (svc)
        nva[n++] = (nghttp2_nv)NV("x-svc", svc);
    send_headers(&h, 1, nva, n, false);
    send_grpc_msg(&h, 1, msg, strlen(msg), true);
    read_response(&h, 1, 20, r);
    h2raw_close(&h);
}

/* ---- configs ------------------------------------------------------------------------------- */

/* A config with one h2 router "grpc" on 127.0.0.1:port naming requests by
 * the x-svc header, the fs namer on disco/, retries under a budget, and
 * dtab lines given (each "      /svc/x => ...;\n", may be ""). */
static void config_h2_port(char *out, size_t cap, const char *dtab_extra, int port)
{
    int n = snprintf(out, cap,
                     "admin: {ip: 127.0.0.1, port: 0}\n"
                     "namers:\n"
                     "  - {kind: fs, rootDir: disco}\n"
                     "routers:\n"
                     "  - protocol: h2\n"
                     "    label: grpc\n"
                     "    identifier: {kind: header, header: x-svc}\n"
                     "    dtab: |\n"
                     "      /svc => /#/fs;\n"
                     "%s"
                     "    servers: [{ip: 127.0.0.1, port: %d}]\n"
                     "    client:\n"
                     "      loadBalancer: {kind: ewma}\n"
                     "      connectTimeoutMs: 1000\n"
                     "      failureAccrual:\n"
                     "        kind: io.l5d.consecutiveFailures\n"
                     "        failures: 5\n"
                     "        backoff: {kind: jittered, minMs: 5000, maxMs: 300000}\n"
                     "    service:\n"
                     "      totalTimeoutMs: 0\n"
                     "      retries: {budget: {percentCanRetry: 0.2, minRetriesPerSec: 10, "
                     "ttlSecs: 10}}\n",
                     dtab_extra, port);
    CHECK(n > 0 && (size_t)n < cap);
}

/* The same on port 0 (a free port the mesh picks). */
static void config_h2(char *out, size_t cap, const char *dtab_extra)
{
    config_h2_port(out, cap, dtab_extra, 0);
}

/* ======================================================================================= */
/* 1. gRPC through the mesh to argot-interop-server                                       */
/* ======================================================================================= */

#define TS "/grpc.testing.TestService/"

static void grpc_unary_and_large(ag_rpc_channel *ch)
{
    /* EmptyCall */
    uint8_t *r;
    size_t rl;
    char msg[512];
    int st = unary(ch, "interop", TS "EmptyCall", "", 0, 10000, &r, &rl, msg, sizeof(msg));
    if (st != AG_RPC_OK)
        FAIL("EmptyCall through the mesh: %s: %s", ag_rpc_status_name(st), msg);
    CHECK_EQ(rl, 0);
    ag_free(r);

    /* UnaryCall, ~4 MiB each way: a request just under the backend's 4 MiB
     * limit, a response of a 4 MiB payload (4 MiB + 8 bytes on the wire) */
    pb req = {0};
    pb_int(&req, 2, 4u << 20);
    pb_payload(&req, 3, (4u << 20) - 64);
    st = unary(ch, "interop", TS "UnaryCall", req.p, req.len, 30000, &r, &rl, msg, sizeof(msg));
    free(req.p);
    if (st != AG_RPC_OK)
        FAIL("UnaryCall of 4 MiB through the mesh: %s: %s", ag_rpc_status_name(st), msg);
    CHECK_EQ(payload_len(r, rl), 4 << 20);
    ag_free(r);
}

static void grpc_streams(ag_rpc_channel *ch)
{
    static const int sizes[] = {31415, 9, 2653, 58979};
    uint8_t *m;
    size_t len;

    /* server streaming */
    pb req = {0};
    for (size_t i = 0; i < 4; i++)
        pb_params(&req, sizes[i], 0);
    ag_rpc_call *c = call_new(ch, "interop", TS "StreamingOutputCall", 10000);
    CHECK_OK(ag_rpc_call_send(c, req.p, req.len));
    CHECK_OK(ag_rpc_call_close_send(c));
    free(req.p);
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 1);
        CHECK_EQ(payload_len(m, len), sizes[i]);
        ag_free(m);
    }
    CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 0);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);

    /* client streaming */
    static const int in_sizes[] = {27182, 8, 1828, 45904};
    c = call_new(ch, "interop", TS "StreamingInputCall", 10000);
    for (size_t i = 0; i < 4; i++) {
        pb one = {0};
        pb_payload(&one, 1, (size_t)in_sizes[i]);
        CHECK_OK(ag_rpc_call_send(c, one.p, one.len));
        free(one.p);
    }
    CHECK_OK(ag_rpc_call_close_send(c));
    CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 1);
    uint64_t total = 0;
    CHECK(pb_find(m, len, 1, &total, NULL, NULL));
    CHECK_EQ(total, 74922);
    ag_free(m);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);

    /* full duplex, ping-pong: each response arrives before the next request
     * is sent, so the proxy streams both ways at once */
    static const int pp_in[] = {27182, 8, 1828, 45904};
    c = call_new(ch, "interop", TS "FullDuplexCall", 10000);
    for (size_t i = 0; i < 4; i++) {
        pb one = {0};
        pb_params(&one, sizes[i], 0);
        pb_payload(&one, 3, (size_t)pp_in[i]);
        CHECK_OK(ag_rpc_call_send(c, one.p, one.len));
        free(one.p);
        if (ag_rpc_call_recv(c, &m, &len) != 1)
            FAIL("FullDuplexCall: no response to request %zu before the half-close (status %s)", i,
                 ag_rpc_status_name(ag_rpc_call_status(c, NULL)));
        CHECK_EQ(payload_len(m, len), sizes[i]);
        ag_free(m);
    }
    CHECK_OK(ag_rpc_call_close_send(c));
    CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 0);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    ag_rpc_call_free(c);
}

static void grpc_status_and_metadata(ag_rpc_channel *ch)
{
    /* the backend's status and message (non-ASCII, whitespace) */
    static const char special[] = "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and "
                                  "non-BMP \xf0\x9f\x98\x88\t\n";
    pb req = {0};
    pb_status(&req, 2, special);
    char msg[512];
    int st =
        unary(ch, "interop", TS "UnaryCall", req.p, req.len, 10000, NULL, NULL, msg, sizeof(msg));
    free(req.p);
    CHECK_EQ(st, AG_RPC_UNKNOWN);
    CHECK_STR_EQ(msg, special);

    req = (pb){0};
    pb_status(&req, AG_RPC_NOT_FOUND, "no row k7");
    st = unary(ch, "interop", TS "UnaryCall", req.p, req.len, 10000, NULL, NULL, msg, sizeof(msg));
    free(req.p);
    CHECK_EQ(st, AG_RPC_NOT_FOUND);
    CHECK_STR_EQ(msg, "no row k7");

    /* initial and trailing metadata echoed by the backend come back through */
    ag_rpc_call *c = call_new(ch, "interop", TS "UnaryCall", 10000);
    CHECK_OK(
        ag_rpc_call_add_metadata(c, "x-grpc-test-echo-initial", "test_initial_metadata_value", 27));
    CHECK_OK(ag_rpc_call_add_metadata(c, "x-grpc-test-echo-trailing-bin", "\xab\xab\xab", 3));
    req = (pb){0};
    pb_int(&req, 2, 10);
    CHECK_OK(ag_rpc_call_send(c, req.p, req.len));
    free(req.p);
    CHECK_OK(ag_rpc_call_close_send(c));
    uint8_t *m;
    size_t len;
    CHECK_EQ(ag_rpc_call_recv(c, &m, &len), 1);
    ag_free(m);
    CHECK_EQ(ag_rpc_call_status(c, NULL), AG_RPC_OK);
    bool initial = false, trailing = false;
    ag_slice v;
    const char *k;
    for (size_t i = 0; (k = ag_rpc_call_metadata(c, false, i, &v)) != NULL; i++)
        if (strcmp(k, "x-grpc-test-echo-initial") == 0 && v.len == 27 &&
            memcmp(v.ptr, "test_initial_metadata_value", 27) == 0)
            initial = true;
    for (size_t i = 0; (k = ag_rpc_call_metadata(c, true, i, &v)) != NULL; i++)
        if (strcmp(k, "x-grpc-test-echo-trailing-bin") == 0 && v.len == 3 &&
            memcmp(v.ptr, "\xab\xab\xab", 3) == 0)
            trailing = true;
    ag_rpc_call_free(c);
    if (!initial)
        FAIL("the backend's initial metadata did not come through the mesh");
    if (!trailing)
        FAIL("the backend's trailer (x-grpc-test-echo-trailing-bin) did not come through the mesh");
}

static void grpc_deadlines(ag_rpc_channel *ch, int mesh_port)
{
    /* the client's deadline reaches the backend, reduced, never raised */
    uint8_t *r;
    char msg[256];
    int st = unary(ch, "py", "/mesh.Test/Deadline", "", 0, 5000, &r, NULL, msg, sizeof(msg));
    if (st != AG_RPC_OK)
        FAIL("Deadline through the mesh: %s: %s", ag_rpc_status_name(st), msg);
    if (strcmp((char *)r, "none") == 0)
        FAIL("the backend saw no grpc-timeout: the mesh did not pass the client's deadline on");
    long left = atol((char *)r);
    if (left <= 0 || left > 5000)
        FAIL("the backend saw %ld ms left of the client's 5000", left);
    ag_free(r);

    /* argot's client: a slow backend, a short deadline */
    st = unary(ch, "py", "/mesh.Test/Sleep", "3000", 4, 500, NULL, NULL, msg, sizeof(msg));
    if (st != AG_RPC_DEADLINE_EXCEEDED)
        FAIL("Sleep 3000 ms with a 500 ms deadline: %s (%s), want DEADLINE_EXCEEDED",
             ag_rpc_status_name(st), msg);

    /* a raw client that keeps no deadline of its own: the status must come
     * from the mesh (or from the backend, through the mesh) */
    h2resp hr;
    uint64_t t0 = ag_now_ms();
    h2raw h;
    h2raw_open(&h, mesh_port, 0);
    nghttp2_nv nva[] = {NV(":method", "POST"),
                        NV(":scheme", "http"),
                        NV(":path", "/mesh.Test/Sleep"),
                        NV(":authority", "x"),
                        NV("content-type", "application/grpc"),
                        NV("te", "trailers"),
                        NV("grpc-timeout", "500m"),
                        NV("x-svc", "py")};
    send_headers(&h, 1, nva, AG_ARRAY_LEN(nva), false);
    send_grpc_msg(&h, 1, "3000", 4, true);
    read_response(&h, 1, 10, &hr);
    h2raw_close(&h);
    if (hr.grpc_status != AG_RPC_DEADLINE_EXCEEDED)
        FAIL("raw gRPC call, grpc-timeout 500m, to a backend sleeping 3 s: %s; want grpc-status 4",
             h2desc(&hr));
    fprintf(stderr, "raw deadline call answered after %" PRIu64 " ms\n", ag_now_ms() - t0);
}

TEST_TIMEOUT(mesh_grpc_to_interop_server, 60)
{
    backend is = interop_server();
    backend py = py_backend("grpc", "py");
    disco_one("interop", is.port);
    disco_one("py", py.port);
    char cfg[4096];
    config_h2(cfg, sizeof(cfg), "");
    mesh m;
    mesh_start(&m, cfg);
    ag_rpc_channel *ch = channel(m.port[0]);
    grpc_unary_and_large(ch);
    grpc_streams(ch);
    grpc_status_and_metadata(ch);
    grpc_deadlines(ch, m.port[0]);
    ag_rpc_channel_free(ch);
    mesh_stop(&m);
    stop(py.pid);
    stop(is.pid);
}

/* service.totalTimeoutMs caps the client's deadline (and is one when the
 * client has none: the mesh answers DEADLINE_EXCEEDED itself); a router
 * naming requests by their path's first segment. */
TEST_TIMEOUT(mesh_grpc_total_timeout_and_path_identifier, 60)
{
    backend py = py_backend("grpc", "py");
    disco_one("mesh.Test", py.port);
    mesh m;
    mesh_start(&m, "admin: {ip: 127.0.0.1, port: 0}\n"
                   "namers:\n"
                   "  - {kind: fs, rootDir: disco}\n"
                   "routers:\n"
                   "  - protocol: h2\n"
                   "    label: bypath\n"
                   "    identifier: {kind: path, segments: 1}\n"
                   "    dtab: /svc => /#/fs;\n"
                   "    servers: [{ip: 127.0.0.1, port: 0}]\n"
                   "    service: {totalTimeoutMs: 400}\n");
    ag_rpc_channel *ch = channel(m.port[0]);
    uint8_t *r;
    char msg[256];
    int st = unary(ch, NULL, "/mesh.Test/Who", "", 0, 10000, &r, NULL, msg, sizeof(msg));
    if (st != AG_RPC_OK)
        FAIL("/mesh.Test/Who named /svc/mesh.Test by its path: %s: %s", ag_rpc_status_name(st),
             msg);
    CHECK_STR_EQ((char *)r, "py");
    ag_free(r);
    /* the client's 5 s, capped at 400 ms */
    st = unary(ch, NULL, "/mesh.Test/Deadline", "", 0, 5000, &r, NULL, msg, sizeof(msg));
    CHECK_EQ(st, AG_RPC_OK);
    long left = strcmp((char *)r, "none") == 0 ? -1 : atol((char *)r);
    if (left <= 0 || left > 400)
        FAIL("with totalTimeoutMs 400 and a client deadline of 5 s, the backend saw %s ms", r);
    ag_free(r);
    /* no deadline from the client: the mesh's own */
    st = unary(ch, NULL, "/mesh.Test/Deadline", "", 0, 0, &r, NULL, msg, sizeof(msg));
    CHECK_EQ(st, AG_RPC_OK);
    left = strcmp((char *)r, "none") == 0 ? -1 : atol((char *)r);
    if (left <= 0 || left > 400)
        FAIL("with totalTimeoutMs 400 and no client deadline, the backend saw %s ms", r);
    ag_free(r);
    /* a raw call without grpc-timeout to a backend sleeping 3 s */
    h2resp hr;
    h2raw h;
    h2raw_open(&h, m.port[0], 0);
    nghttp2_nv nva[] = {NV(":method", "POST"),
                        NV(":scheme", "http"),
                        NV(":path", "/mesh.Test/Sleep"),
                        NV(":authority", "x"),
                        NV("content-type", "application/grpc"),
                        NV("te", "trailers")};
    send_headers(&h, 1, nva, AG_ARRAY_LEN(nva), false);
    send_grpc_msg(&h, 1, "3000", 4, true);
    read_response(&h, 1, 10, &hr);
    h2raw_close(&h);
    if (hr.grpc_status != AG_RPC_DEADLINE_EXCEEDED)
        FAIL("no grpc-timeout, totalTimeoutMs 400, a backend sleeping 3 s: %s; want grpc-status 4",
             h2desc(&hr));
    /* a path with no segment to name */
    st = unary(ch, NULL, "/", "", 0, 5000, NULL, NULL, msg, sizeof(msg));
    fprintf(stderr, "a call to path \"/\": %s: %s\n", ag_rpc_status_name(st), msg);
    CHECK(st != AG_RPC_OK);
    ag_rpc_channel_free(ch);
    mesh_stop(&m);
    stop(py.pid);
}

/* SIGTERM: calls in flight finish, then the mesh exits 0. */
TEST_TIMEOUT(mesh_sigterm_drains, 30)
{
    backend py = py_backend("grpc", "py");
    disco_one("py", py.port);
    char cfg[4096];
    config_h2(cfg, sizeof(cfg), "");
    mesh m;
    mesh_start(&m, cfg);
    ag_rpc_channel *ch = channel(m.port[0]);
    ag_rpc_call *c = call_new(ch, "py", "/mesh.Test/Sleep", 10000);
    CHECK_OK(ag_rpc_call_send(c, "1500", 4));
    CHECK_OK(ag_rpc_call_close_send(c));
    ag_sleep_ms(300); /* the call is at the backend */
    kill(m.pid, SIGTERM);
    uint8_t *r;
    size_t len;
    int rc = ag_rpc_call_recv(c, &r, &len);
    const char *smsg;
    int st = ag_rpc_call_status(c, &smsg);
    if (rc != 1 || st != AG_RPC_OK)
        FAIL("a call in flight when the mesh got SIGTERM: %s: %s", ag_rpc_status_name(st),
             smsg ? smsg : "");
    CHECK(len == 2 && memcmp(r, "py", 2) == 0);
    ag_free(r);
    ag_rpc_call_free(c);
    int exit_st = ag_test_wait(m.pid, 15);
    forget(m.pid);
    if (exit_st != 0)
        FAIL("argot mesh exited %d after SIGTERM, want 0", exit_st);
    ag_rpc_channel_free(ch);
    stop(py.pid);
}

/* ======================================================================================= */
/* 2. interop cases through the mesh, python3-grpcio on either side                       */
/* ======================================================================================= */

static const char *const interop_cases[] = {
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
};

/* interop.py's client through the mesh with :authority authority. */
static void py_interop_client(int port, const char *authority, char *failures, size_t cap)
{
    char portarg[16], list[1024] = "";
    snprintf(portarg, sizeof(portarg), "%d", port);
    for (size_t i = 0; i < AG_ARRAY_LEN(interop_cases); i++) {
        strncat(list, interop_cases[i], sizeof(list) - strlen(list) - 2);
        if (i + 1 < AG_ARRAY_LEN(interop_cases))
            strcat(list, ",");
    }
    const char *argv[] = {
        PYTHON,  INTEROP_PY,    "client", "--server_host",          "127.0.0.1", "--server_port",
        portarg, "--test_case", list,     "--server_host_override", authority,   NULL};
    ag_test_proc p;
    int st = ag_test_run(&p, argv, NULL, 60);
    fprintf(stderr, "python client -> mesh -> %s:\n%s%s", authority, p.out, p.err);
    for (size_t i = 0; i < AG_ARRAY_LEN(interop_cases); i++) {
        char want[96];
        snprintf(want, sizeof(want), "ok %s\n", interop_cases[i]);
        if (!strstr(p.out, want)) {
            size_t l = strlen(failures);
            snprintf(failures + l, cap - l, " python->%s:%s", authority, interop_cases[i]);
        }
    }
    if (st != 0 && !failures[0])
        snprintf(failures + strlen(failures), cap - strlen(failures), " python client exit %d", st);
    ag_test_proc_cleanup(&p);
}

/* argot-interop-client through the mesh, one case per run (its :authority
 * is "127.0.0.1:PORT", so the router names /svc/127.0.0.1). */
static void argot_interop_client(int port, char *failures, size_t cap)
{
    char portarg[32];
    snprintf(portarg, sizeof(portarg), "--server_port=%d", port);
    for (size_t i = 0; i < AG_ARRAY_LEN(interop_cases); i++) {
        char tc[96];
        snprintf(tc, sizeof(tc), "--test_case=%s", interop_cases[i]);
        const char *argv[] = {ag_test_bin("argot-interop-client"), "--server_host=127.0.0.1",
                              portarg, tc, NULL};
        ag_test_proc p;
        int st = ag_test_run(&p, argv, NULL, 20);
        if (st != 0) {
            fprintf(stderr, "argot client -> mesh -> python, %s: exit %d\n%s%s\n", interop_cases[i],
                    st, p.out, p.err);
            size_t l = strlen(failures);
            snprintf(failures + l, cap - l, " argot->python:%s", interop_cases[i]);
        }
        ag_test_proc_cleanup(&p);
    }
}

TEST_TIMEOUT(mesh_interop_python_and_argot, 150)
{
    backend pys = interop_py_server();
    backend as = interop_server();
    disco_one("pyserver", pys.port);
    disco_one("argotserver", as.port);
    mesh m;
    mesh_start(&m, "admin: {ip: 127.0.0.1, port: 0}\n"
                   "namers:\n"
                   "  - {kind: fs, rootDir: disco}\n"
                   "routers:\n"
                   "  - protocol: h2\n"
                   "    label: interop\n"
                   "    identifier: {kind: authority}\n"
                   "    dtab: |\n"
                   "      /svc => /#/fs;\n"
                   "      /svc/127.0.0.1 => /#/fs/pyserver;\n"
                   "    servers: [{ip: 127.0.0.1, port: 0}]\n");
    char failures[4096] = "";
    py_interop_client(m.port[0], "pyserver", failures, sizeof(failures));
    py_interop_client(m.port[0], "argotserver", failures, sizeof(failures));
    argot_interop_client(m.port[0], failures, sizeof(failures));
    if (failures[0])
        FAIL("interop cases that failed through the mesh:%s", failures);
    mesh_stop(&m);
    stop(as.pid);
    stop(pys.pid);
}

/* ======================================================================================= */
/* 3. discovery: fs namer files edited and created                                         */
/* ======================================================================================= */

TEST_TIMEOUT(mesh_discovery_file_edit, 60)
{
    backend one = py_backend("grpc", "one");
    backend two = py_backend("grpc", "two");
    disco_one("svc1", one.port);
    char cfg[4096];
    config_h2(cfg, sizeof(cfg), "");
    mesh m;
    mesh_start(&m, cfg);
    ag_rpc_channel *ch = channel(m.port[0]);
    char name[128];
    for (int i = 0; i < 20; i++) {
        who(ch, "svc1", name, sizeof(name));
        CHECK_STR_EQ(name, "one");
    }

    /* the file now names the other backend: measured from the write to the
     * first answer from it */
    disco_one("svc1", two.port);
    uint64_t t0 = ag_now_ns();
    int calls = 0, errors = 0;
    uint64_t t1 = 0;
    while (ag_now_ns() - t0 < 5000000000ull) {
        int st = who(ch, "svc1", name, sizeof(name));
        calls++;
        if (st != AG_RPC_OK)
            errors++;
        if (strcmp(name, "two") == 0) {
            t1 = ag_now_ns();
            break;
        }
    }
    if (!t1)
        FAIL("5 s after disco/svc1 was edited, requests still went elsewhere (last: %s)", name);
    double ms = (double)(t1 - t0) / 1e6;
    fprintf(stderr, "edit picked up after %.1f ms (%d calls, %d failed meanwhile)\n", ms, calls,
            errors);
    if (ms > 1000.0)
        FAIL("the edit of disco/svc1 took %.1f ms to reach the router, want within 1 s", ms);
    for (int i = 0; i < 50; i++) {
        who(ch, "svc1", name, sizeof(name));
        CHECK_STR_EQ(name, "two");
    }

    /* a name whose file does not exist yet: negative (no route), then bound
     * once the file appears */
    int st = who(ch, "late", name, sizeof(name));
    if (st != AG_RPC_UNIMPLEMENTED)
        FAIL("a name with no fs file: %s, want UNIMPLEMENTED", name);
    disco_one("late", one.port);
    t0 = ag_now_ns();
    t1 = 0;
    while (ag_now_ns() - t0 < 5000000000ull) {
        who(ch, "late", name, sizeof(name));
        if (strcmp(name, "one") == 0) {
            t1 = ag_now_ns();
            break;
        }
    }
    if (!t1)
        FAIL("5 s after disco/late was created, its name still did not route (last: %s)", name);
    ms = (double)(t1 - t0) / 1e6;
    fprintf(stderr, "new file picked up after %.1f ms\n", ms);
    if (ms > 1000.0)
        FAIL("disco/late took %.1f ms to reach the router, want within 1 s", ms);

    /* delegator.json agrees */
    json_t *d = admin_json(&m, "/delegator.json?router=grpc&path=/svc/late");
    const char *res = json_string_value(json_object_get(d, "result"));
    const char *bound = json_string_value(json_object_get(d, "bound"));
    CHECK_STR_EQ(res, "bound");
    CHECK_STR_EQ(bound, "/#/fs/late");
    json_decref(d);
    d = admin_json(&m, "/delegator.json?router=grpc&path=/svc/nosuch");
    res = json_string_value(json_object_get(d, "result"));
    CHECK_STR_EQ(res, "neg");
    json_decref(d);

    ag_rpc_channel_free(ch);
    mesh_stop(&m);
    stop(one.pid);
    stop(two.pid);
}

/* ======================================================================================= */
/* load: N threads of /mesh.Test/Who calls, tallied by the answering backend               */
/* ======================================================================================= */

#define LOAD_NAMES 8

typedef struct load {
    int port;
    const char *svc;
    atomic_int *budget; /* calls left, shared */
    atomic_int *done;   /* calls finished, shared */
    int ok;
    int failed;
    char names[LOAD_NAMES][16];
    int counts[LOAD_NAMES];
    char last_error[256];
} load;

static void *load_thread(void *arg)
{
    load *l = arg;
    ag_rpc_channel *ch = channel(l->port);
    while (atomic_fetch_sub(l->budget, 1) > 0) {
        char name[256];
        int st = who(ch, l->svc, name, sizeof(name));
        if (st == AG_RPC_OK) {
            l->ok++;
            size_t i;
            for (i = 0; i < LOAD_NAMES && l->names[i][0]; i++)
                if (strcmp(l->names[i], name) == 0)
                    break;
            if (i < LOAD_NAMES) {
                if (!l->names[i][0])
                    copy_str(l->names[i], sizeof(l->names[i]), name);
                l->counts[i]++;
            }
        } else {
            l->failed++;
            copy_str(l->last_error, sizeof(l->last_error), name);
        }
        atomic_fetch_add(l->done, 1);
    }
    ag_rpc_channel_free(ch);
    return NULL;
}

typedef struct tally {
    int ok;
    int failed;
    char names[LOAD_NAMES][16];
    int counts[LOAD_NAMES];
    char last_error[256];
} tally;

static int tally_of(const tally *t, const char *name)
{
    for (size_t i = 0; i < LOAD_NAMES; i++)
        if (strcmp(t->names[i], name) == 0)
            return t->counts[i];
    return 0;
}

static void tally_add(tally *t, const load *l)
{
    t->ok += l->ok;
    t->failed += l->failed;
    if (l->last_error[0])
        snprintf(t->last_error, sizeof(t->last_error), "%s", l->last_error);
    for (size_t i = 0; i < LOAD_NAMES && l->names[i][0]; i++) {
        size_t j;
        for (j = 0; j < LOAD_NAMES && t->names[j][0]; j++)
            if (strcmp(t->names[j], l->names[i]) == 0)
                break;
        CHECK(j < LOAD_NAMES);
        if (!t->names[j][0])
            snprintf(t->names[j], sizeof(t->names[j]), "%s", l->names[i]);
        t->counts[j] += l->counts[i];
    }
}

/* ======================================================================================= */
/* 4. weighted split                                                                       */
/* ======================================================================================= */

TEST_TIMEOUT(mesh_weighted_split_9_to_1, 90)
{
    backend a = py_backend("grpc", "a");
    backend b = py_backend("grpc", "b");
    disco_one("a", a.port);
    disco_one("b", b.port);
    char cfg[4096];
    config_h2(cfg, sizeof(cfg), "      /svc/split => 0.9 * /#/fs/a & 0.1 * /#/fs/b;\n");
    mesh m;
    mesh_start(&m, cfg);

    enum { N = 10000, THREADS = 4 };
    atomic_int budget = N, done = 0;
    load l[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        l[i] = (load){.port = m.port[0], .svc = "split", .budget = &budget, .done = &done};
        CHECK(pthread_create(&t[i], NULL, load_thread, &l[i]) == 0);
    }
    tally sum = {0};
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        tally_add(&sum, &l[i]);
    }
    int na = tally_of(&sum, "a"), nb = tally_of(&sum, "b");
    fprintf(stderr, "split over %d requests: a %d, b %d, failed %d\n", N, na, nb, sum.failed);
    if (sum.failed)
        FAIL("%d of %d split requests failed (last: %s)", sum.failed, N, sum.last_error);
    CHECK_EQ(na + nb, N);
    /* within 2% of 9000 and of 1000 */
    if (na < 8820 || na > 9180 || nb < 980 || nb > 1020)
        FAIL("9:1 split gave a %d, b %d over %d requests: off by more than 2%%", na, nb, N);
    mesh_stop(&m);
    stop(a.pid);
    stop(b.pid);
}

/* ======================================================================================= */
/* 5. a backend killed under load                                                          */
/* ======================================================================================= */

TEST_TIMEOUT(mesh_backend_killed_under_load, 90)
{
    backend k[3] = {py_backend("grpc", "k1"), py_backend("grpc", "k2"), py_backend("grpc", "k3")};
    char text[256];
    snprintf(text, sizeof(text), "127.0.0.1 %d\n127.0.0.1 %d\n127.0.0.1 %d\n", k[0].port, k[1].port,
             k[2].port);
    disco_write("kill", text);
    char cfg[4096];
    config_h2(cfg, sizeof(cfg), "");
    mesh m;
    mesh_start(&m, cfg);

    enum { N = 10000, THREADS = 4 };
    atomic_int budget = N, done = 0;
    load l[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        l[i] = (load){.port = m.port[0], .svc = "kill", .budget = &budget, .done = &done};
        CHECK(pthread_create(&t[i], NULL, load_thread, &l[i]) == 0);
    }
    uint64_t t0 = ag_now_ms();
    while (atomic_load(&done) < 3000 && ag_now_ms() - t0 < 60000)
        ag_sleep_ms(5);
    int at_kill = atomic_load(&done);
    hard_kill(k[1].pid);
    tally sum = {0};
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        tally_add(&sum, &l[i]);
    }
    fprintf(stderr,
            "k2 killed after %d calls; of %d: ok %d (k1 %d, k2 %d, k3 %d), failed %d (last: %s)\n",
            at_kill, N, sum.ok, tally_of(&sum, "k1"), tally_of(&sum, "k2"), tally_of(&sum, "k3"),
            sum.failed, sum.last_error);
    CHECK(at_kill >= 3000 && at_kill < N);
    CHECK_EQ(sum.ok + sum.failed, N);
    if (sum.ok * 1000 < N * 999)
        FAIL("success rate %.3f%% with a backend killed under load, want at least 99.9%%",
             100.0 * sum.ok / N);
    /* all three took traffic before the kill */
    CHECK(tally_of(&sum, "k1") > 0 && tally_of(&sum, "k2") > 0 && tally_of(&sum, "k3") > 0);

    char state[32];
    endpoint_state(&m, "grpc", k[1].port, state, sizeof(state));
    fprintf(stderr, "killed endpoint's state: \"%s\"\n", state);
    if (!state[0])
        FAIL("the admin state does not list the killed endpoint 127.0.0.1:%d", k[1].port);
    if (strcmp(state, "open") == 0)
        FAIL("the admin state shows the killed endpoint 127.0.0.1:%d \"open\"", k[1].port);
    endpoint_state(&m, "grpc", k[0].port, state, sizeof(state));
    CHECK_STR_EQ(state, "open");

    char *metrics = http_get_body(m.admin, "/metrics");
    CHECK_CONTAINS(metrics, "argot_mesh_requests_total{");
    CHECK_CONTAINS(metrics, "argot_mesh_retries_total");
    free(metrics);
    mesh_stop(&m);
    stop(k[0].pid);
    stop(k[2].pid);
}

/* ======================================================================================= */
/* 6. errors the mesh makes                                                                */
/* ======================================================================================= */

TEST_TIMEOUT(mesh_grpc_errors, 60)
{
    backend py = py_backend("grpc", "py");
    const char *sargv[] = {PYTHON, BACKEND_PY, "grpc", "--name", "sick", "--unavailable", NULL};
    backend sick = start_listening(sargv, "sick");
    disco_one("py", py.port);
    disco_one("down", ag_test_free_port());
    char text[128];
    snprintf(text, sizeof(text), "127.0.0.1 %d\n127.0.0.1 %d\n", ag_test_free_port(), py.port);
    disco_write("halfdown", text);
    snprintf(text, sizeof(text), "127.0.0.1 %d\n127.0.0.1 %d\n", sick.port, py.port);
    disco_write("halfsick", text);
    char cfg[4096];
    config_h2(cfg, sizeof(cfg), "");
    mesh m;
    mesh_start(&m, cfg);
    ag_rpc_channel *ch = channel(m.port[0]);
    char name[256];

    CHECK_EQ(who(ch, "py", name, sizeof(name)), AG_RPC_OK);
    /* one endpoint refuses connections: whatever tried it was retried on
     * the other (nothing was sent) */
    for (int i = 0; i < 50; i++) {
        int st = who(ch, "halfdown", name, sizeof(name));
        if (st != AG_RPC_OK)
            FAIL("call %d to a cluster with one endpoint refusing connections: %s", i, name);
        CHECK_STR_EQ(name, "py");
    }
    /* one endpoint answers every call with a trailers-only UNAVAILABLE:
     * whatever it answered was retried on the other */
    for (int i = 0; i < 50; i++) {
        int st = who(ch, "halfsick", name, sizeof(name));
        if (st != AG_RPC_OK)
            FAIL("call %d to a cluster with one endpoint answering UNAVAILABLE: %s", i, name);
        CHECK_STR_EQ(name, "py");
    }
    {
        json_t *state = admin_json(&m, "/admin/state.json");
        json_t *r0 = json_array_get(json_object_get(state, "routers"), 0);
        char sick_state[32];
        endpoint_state(&m, "grpc", sick.port, sick_state, sizeof(sick_state));
        fprintf(stderr, "retries after halfdown and halfsick: %lld; the sick endpoint: %s\n",
                (long long)json_integer_value(json_object_get(r0, "retries")), sick_state);
        json_decref(state);
    }
    int st = who(ch, "nosuch", name, sizeof(name));
    if (st != AG_RPC_UNIMPLEMENTED)
        FAIL("an unknown name: %s, want UNIMPLEMENTED", name);
    st = who(ch, "down", name, sizeof(name));
    if (st != AG_RPC_UNAVAILABLE)
        FAIL("a name whose only endpoint is down: %s, want UNAVAILABLE", name);
    /* the backend's own UNIMPLEMENTED (an unknown method) passes through */
    st = unary(ch, "py", "/mesh.Test/Nope", "", 0, 10000, NULL, NULL, name, sizeof(name));
    CHECK_EQ(st, AG_RPC_UNIMPLEMENTED);

    /* raw gRPC: trailers-only answers (:status 200 and grpc-status in one
     * HEADERS frame with END_STREAM) */
    h2resp r;
    h2_grpc(m.port[0], "x", "/mesh.Test/Who", "", "nosuch", &r);
    if (!(r.status == 200 && r.grpc_status == 12 && r.ended && r.body_len == 0))
        FAIL("raw gRPC call of an unknown name: %s; want trailers-only grpc-status 12", h2desc(&r));
    h2_grpc(m.port[0], "x", "/mesh.Test/Who", "", "down", &r);
    if (!(r.status == 200 && r.grpc_status == 14 && r.ended && r.body_len == 0))
        FAIL("raw gRPC call, every endpoint down: %s; want trailers-only grpc-status 14",
             h2desc(&r));

    /* plain HTTP/2: 404 for an unknown name, 503 with every endpoint down,
     * 431 for a header block over maxHeaderListBytes (16384) */
    h2_get(m.port[0], "x", "x-svc", "nosuch", &r);
    if (r.status != 404)
        FAIL("plain HTTP/2 GET of an unknown name: %s; want :status 404", h2desc(&r));
    h2_get(m.port[0], "x", "x-svc", "down", &r);
    if (r.status != 503)
        FAIL("plain HTTP/2 GET, every endpoint down: %s; want :status 503", h2desc(&r));
    /* allowDtabOverride false: an l5d-dtab header changes nothing */
    {
        h2raw h;
        h2raw_open(&h, m.port[0], 0);
        nghttp2_nv nva[] = {NV(":method", "GET"),  NV(":scheme", "http"),
                            NV(":path", "/"),      NV(":authority", "x"),
                            NV("x-svc", "nosuch"), NV("l5d-dtab", "/svc/nosuch => /#/fs/py")};
        send_headers(&h, 1, nva, AG_ARRAY_LEN(nva), true);
        read_response(&h, 1, 15, &r);
        h2raw_close(&h);
        if (r.status != 404)
            FAIL("an l5d-dtab header on a router without allowDtabOverride: %s; want 404",
                 h2desc(&r));
    }
    char *big = malloc(20 * 1024 + 1);
    CHECK(big != NULL);
    memset(big, 'a', 20 * 1024);
    big[20 * 1024] = '\0';
    h2_get(m.port[0], "x", "x-big", big, &r);
    if (r.status != 431)
        FAIL("plain HTTP/2 GET with a 20 KiB header: %s; want :status 431", h2desc(&r));
    free(big);
    /* a header flood: 2000 small headers (their list, counted as RFC 7541
     * does with 32 bytes per field, is far over 16384) */
    {
        enum { NH = 2000 };
        nghttp2_nv *nva = calloc(NH + 5, sizeof(*nva));
        char(*names)[16] = calloc(NH, sizeof(*names));
        CHECK(nva != NULL && names != NULL);
        nghttp2_nv base[] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"),
                             NV(":authority", "x"), NV("x-svc", "py")};
        memcpy(nva, base, sizeof(base));
        for (int i = 0; i < NH; i++) {
            snprintf(names[i], sizeof(names[i]), "x-h%d", i);
            nva[5 + i] = (nghttp2_nv)NV(names[i], "v");
        }
        h2raw h;
        h2raw_open(&h, m.port[0], 0);
        send_headers(&h, 1, nva, NH + 5, true);
        read_response(&h, 1, 15, &r);
        h2raw_close(&h);
        free(nva);
        free(names);
        if (r.status != 431)
            FAIL("plain HTTP/2 GET with 2000 headers: %s; want :status 431", h2desc(&r));
    }
    /* and the router still serves */
    CHECK_EQ(who(ch, "py", name, sizeof(name)), AG_RPC_OK);
    CHECK_STR_EQ(name, "py");

    ag_rpc_channel_free(ch);
    mesh_stop(&m);
    stop(py.pid);
    stop(sick.pid);
}

/* A backend that answers every connection with bytes that are neither
 * HTTP/2 nor HTTP/1.1 (after reading what the mesh sends first), then keeps
 * the connection open until the mesh closes it (or the test ends): the
 * mesh must not wait for the backend to hang up. One thread, one
 * connection at a time. */
typedef struct bad_backend {
    int lfd;
    int port;
    bool mid_stream; /* speak HTTP/2 until the first request, then break it */
    atomic_bool stop;
    atomic_int conns;
    pthread_t t;
} bad_backend;

/* A connection that starts as a good HTTP/2 server (preface, SETTINGS, ACKs)
 * and answers the first request with a header block HPACK cannot decode
 * (indexed field 0: a COMPRESSION_ERROR for the whole connection). */
static void bad_mid_stream(int fd)
{
    uint64_t end = ag_now_ms() + 5000;
    uint8_t pre[24];
    if (read_exact(fd, pre, sizeof(pre), end) != 1)
        return;
    uint8_t settings[9];
    frame_hdr(settings, 0, F_SETTINGS, 0, 0);
    send_all(fd, settings, sizeof(settings));
    uint8_t *p = malloc(1 << 24);
    CHECK(p != NULL);
    for (;;) {
        uint8_t fh[9];
        if (read_exact(fd, fh, 9, end) != 1)
            break;
        size_t len = (size_t)fh[0] << 16 | (size_t)fh[1] << 8 | fh[2];
        if (read_exact(fd, p, len, end) != 1)
            break;
        if (fh[3] == F_SETTINGS && !(fh[4] & FL_ACK)) {
            frame_hdr(settings, 0, F_SETTINGS, FL_ACK, 0);
            send_all(fd, settings, sizeof(settings));
        } else if (fh[3] == F_HEADERS) {
            uint32_t sid =
                ((uint32_t)fh[5] << 24 | (uint32_t)fh[6] << 16 | (uint32_t)fh[7] << 8 | fh[8]) &
                0x7fffffff;
            uint8_t bad[10];
            frame_hdr(bad, 1, F_HEADERS, FL_END_HEADERS, sid);
            bad[9] = 0x80;
            send_all(fd, bad, sizeof(bad));
            break;
        }
    }
    free(p);
}

/* Reads and drops what the peer sends until it closes, or *stop (so that
 * our close sends no RST that could overtake what we sent, and a peer that
 * waits for us to close waits for good). */
static void drain_until_closed(int fd, atomic_bool *stop)
{
    uint8_t buf[4096];
    while (!atomic_load(stop)) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) > 0 && read(fd, buf, sizeof(buf)) <= 0)
            return;
    }
}

static void *bad_backend_thread(void *arg)
{
    bad_backend *b = arg;
    while (!atomic_load(&b->stop)) {
        struct pollfd pfd = {b->lfd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int fd = accept(b->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&b->conns, 1);
        uint8_t buf[1024];
        struct pollfd cp = {fd, POLLIN, 0};
        if (b->mid_stream) {
            bad_mid_stream(fd);
            drain_until_closed(fd, &b->stop);
        } else if (poll(&cp, 1, 2000) > 0 && read(fd, buf, sizeof(buf)) > 0) {
            /* a SETTINGS frame of 5 bytes (a FRAME_SIZE_ERROR), then junk */
            static const uint8_t junk[] = {0,   0,   5,   4,   0,   0,   0,    0,    0,    1,
                                           2,   3,   4,   5,   'H', 'T', 'T',  'P',  '/',  '1',
                                           '.', '1', ' ', '2', '0', '0', '\r', '\n', '\r', '\n'};
            send_all(fd, junk, sizeof(junk));
            drain_until_closed(fd, &b->stop);
        }
        close(fd);
    }
    return NULL;
}

static void bad_backend_start(bad_backend *b, bool mid_stream)
{
    memset(b, 0, sizeof(*b));
    b->mid_stream = mid_stream;
    b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(b->lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    CHECK(bind(b->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(b->lfd, 16) == 0);
    CHECK(getsockname(b->lfd, (struct sockaddr *)&sa, &sl) == 0);
    b->port = ntohs(sa.sin_port);
    CHECK(pthread_create(&b->t, NULL, bad_backend_thread, b) == 0);
}

static void bad_backend_stop(bad_backend *b)
{
    atomic_store(&b->stop, true);
    pthread_join(b->t, NULL);
    close(b->lfd);
}

TEST_TIMEOUT(mesh_http1_router, 60)
{
    backend web = py_backend("http", "web");
    const char *fargv[] = {PYTHON, BACKEND_PY, "http", "--name", "flaky", "--status", "503", NULL};
    backend flaky = start_listening(fargv, "flaky");
    bad_backend bad;
    bad_backend_start(&bad, false);
    disco_one("bad", bad.port);
    disco_one("web", web.port);
    disco_one("down", ag_test_free_port());
    char text[128];
    snprintf(text, sizeof(text), "127.0.0.1 %d\n127.0.0.1 %d\n", flaky.port, web.port);
    disco_write("mixed", text);
    char cfg[2048];
    snprintf(cfg, sizeof(cfg),
             "admin: {ip: 127.0.0.1, port: 0}\n"
             "namers:\n"
             "  - {kind: fs, rootDir: disco}\n"
             "  - {kind: static, prefix: /static, services: {web2: [\"127.0.0.1:%d\"]}}\n"
             "routers:\n"
             "  - protocol: http\n"
             "    label: web\n"
             "    allowDtabOverride: true\n"
             "    dtab: |\n"
             "      /svc => /#/fs;\n"
             "      /svc/web2 => /#/static/web2;\n"
             "      /svc/fb => /#/fs/missing | /#/fs/web;\n"
             "    servers: [{ip: 127.0.0.1, port: 0}]\n"
             "    service:\n"
             "      totalTimeoutMs: 1000\n"
             "      retries: {budget: {percentCanRetry: 0.5, minRetriesPerSec: 10, ttlSecs: 10}}\n",
             web.port);
    mesh m;
    mesh_start(&m, cfg);
    http_resp r;
    http_do(m.port[0], "GET", "/hello?x=1", "web", NULL, NULL, &r);
    if (r.status != 200)
        FAIL("HTTP/1.1 GET through the mesh: status %d\n%s", r.status, r.head);
    CHECK_STR_EQ(r.body, "web GET /hello?x=1");
    http_resp_free(&r);

    http_do(m.port[0], "POST", "/p", "Web:8080", NULL, "a=1&b=2", &r);
    if (r.status != 200)
        FAIL("HTTP/1.1 POST through the mesh (Host Web:8080): status %d\n%s", r.status, r.head);
    CHECK_STR_EQ(r.body, "web POST a=1&b=2");
    http_resp_free(&r);

    /* the backend's own status passes through */
    http_do(m.port[0], "POST", "/p", "web", "x-status: 418", "z", &r);
    CHECK_EQ(r.status, 418);
    http_resp_free(&r);

    http_do(m.port[0], "GET", "/", "nosuch", NULL, NULL, &r);
    if (r.status != 404)
        FAIL("HTTP/1.1 GET of an unknown host: status %d, want 404\n%s", r.status, r.head);
    http_resp_free(&r);

    http_do(m.port[0], "GET", "/", "down", NULL, NULL, &r);
    if (r.status != 503)
        FAIL("HTTP/1.1 GET, every endpoint down: status %d, want 503\n%s", r.status, r.head);
    http_resp_free(&r);

    char *big = malloc(20 * 1024 + 16);
    CHECK(big != NULL);
    strcpy(big, "x-big: ");
    memset(big + 7, 'a', 20 * 1024);
    big[7 + 20 * 1024] = '\0';
    http_do(m.port[0], "GET", "/", "web", big, NULL, &r);
    free(big);
    if (r.status != 431)
        FAIL("HTTP/1.1 GET with a 20 KiB header: status %d, want 431\n%.300s", r.status, r.head);
    http_resp_free(&r);

    /* a header flood: 3000 small headers */
    char *flood = malloc(3000 * 16);
    CHECK(flood != NULL);
    flood[0] = '\0';
    size_t fl = 0;
    for (int i = 0; i < 3000; i++)
        fl += (size_t)snprintf(flood + fl, 3000 * 16 - fl, "%sx-h%d: v", i ? "\r\n" : "", i);
    http_do(m.port[0], "GET", "/", "web", flood, NULL, &r);
    free(flood);
    if (r.status != 431 && r.status != 400)
        FAIL("HTTP/1.1 GET with 3000 headers: status %d, want 431\n%.300s", r.status, r.head);
    http_resp_free(&r);

    /* requests that are not HTTP/1.1: 400 */
    http_raw(m.port[0], "GARBAGE\r\n\r\n", &r);
    if (r.status != 400)
        FAIL("a request line that is no HTTP: status %d, want 400\n%s", r.status, r.head);
    http_resp_free(&r);
    http_raw(m.port[0], "POST / HTTP/1.1\r\nHost: web\r\nContent-Length: abc\r\n\r\nabc", &r);
    if (r.status != 400)
        FAIL("Content-Length: abc: status %d, want 400\n%s", r.status, r.head);
    http_resp_free(&r);

    /* still serving */
    http_do(m.port[0], "GET", "/again", "web", NULL, NULL, &r);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "web GET /again");
    http_resp_free(&r);

    /* the static namer, and a fallback past a name with no file */
    http_do(m.port[0], "GET", "/s", "web2", NULL, NULL, &r);
    if (r.status != 200)
        FAIL("GET through the static namer: status %d\n%s", r.status, r.head);
    CHECK_STR_EQ(r.body, "web GET /s");
    http_resp_free(&r);
    http_do(m.port[0], "GET", "/f", "fb", NULL, NULL, &r);
    if (r.status != 200)
        FAIL("GET through /#/fs/missing | /#/fs/web: status %d\n%s", r.status, r.head);
    CHECK_STR_EQ(r.body, "web GET /f");
    http_resp_free(&r);

    /* allowDtabOverride: true honours l5d-dtab */
    http_do(m.port[0], "GET", "/o", "nosuch", "l5d-dtab: /svc/nosuch => /#/fs/web", NULL, &r);
    if (r.status != 200)
        FAIL("GET with an l5d-dtab override on a router that allows it: status %d\n%s", r.status,
             r.head);
    CHECK_STR_EQ(r.body, "web GET /o");
    http_resp_free(&r);

    /* a backend answering 503 to everything next to a good one: every GET
     * (idempotent) is retried onto the good one */
    int not_retried = 0;
    for (int i = 0; i < 40; i++) {
        http_do(m.port[0], "GET", "/m", "mixed", NULL, NULL, &r);
        if (r.status != 200 || strcmp(r.body, "web GET /m") != 0) {
            fprintf(stderr, "GET %d to mixed: %d %s\n", i, r.status, r.body);
            not_retried++;
        }
        http_resp_free(&r);
    }
    if (not_retried)
        FAIL("%d of 40 GETs to a cluster with one backend answering 503 were not retried onto "
             "the other",
             not_retried);

    /* a backend answering garbage: 502; one slower than totalTimeoutMs: 504 */
    http_do(m.port[0], "GET", "/", "bad", NULL, NULL, &r);
    if (r.status != 502)
        FAIL("HTTP/1.1 GET to a backend answering garbage: status %d, want 502\n%s", r.status,
             r.head);
    http_resp_free(&r);
    http_do(m.port[0], "GET", "/slow", "web", "x-sleep-ms: 4000", NULL, &r);
    if (r.status != 504)
        FAIL("HTTP/1.1 GET slower than totalTimeoutMs 1000: status %d, want 504\n%s", r.status,
             r.head);
    http_resp_free(&r);

    mesh_stop(&m);
    bad_backend_stop(&bad);
    stop(web.pid);
    stop(flaky.pid);
}

/* ---- malformed input --------------------------------------------------------------------- */

/* True once the connection is over from the server's side: EOF, reset, or
 * a GOAWAY, read within timeout_s (other frames are skipped). */
static bool conn_closed_by_peer(int fd, unsigned timeout_s, bool *goaway)
{
    *goaway = false;
    uint64_t end = ag_now_ms() + timeout_s * 1000u;
    uint8_t buf[4096];
    while (ag_now_ms() < end) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r <= 0)
            return true;
        /* a GOAWAY frame header anywhere in what came: type 7 on stream 0 */
        for (ssize_t i = 0; i + 9 <= r; i++)
            if (buf[i + 3] == F_GOAWAY && buf[i + 5] == 0 && buf[i + 6] == 0 && buf[i + 7] == 0 &&
                buf[i + 8] == 0 && buf[i] == 0)
                *goaway = true;
    }
    return false;
}

TEST_TIMEOUT(mesh_malformed_input, 60)
{
    backend py = py_backend("grpc", "py");
    disco_one("py", py.port);
    char cfg[4096];
    config_h2(cfg, sizeof(cfg), "");
    mesh m;
    mesh_start(&m, cfg);
    ag_rpc_channel *ch = channel(m.port[0]);
    char name[256];
    CHECK_EQ(who(ch, "py", name, sizeof(name)), AG_RPC_OK);
    bool goaway;

    /* garbage instead of the preface */
    int fd = tcp_connect(m.port[0]);
    send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01\x02", 30);
    if (!conn_closed_by_peer(fd, 10, &goaway))
        FAIL("a connection that sent no HTTP/2 preface was not closed within 10 s");
    close(fd);

    /* garbage after the preface: a DATA frame on stream 0, then junk */
    fd = tcp_connect(m.port[0]);
    static const uint8_t garbage[] = {0,    0,    4,    0,    0,    0,    0,    0,
                                      0,    'j',  'u',  'n',  'k',  0xff, 0xff, 0xff,
                                      0xee, 0xee, 0xee, 0xee, 0xee, 0xee};
    send_all(fd, PREFACE, strlen(PREFACE));
    send_all(fd, garbage, sizeof(garbage));
    if (!conn_closed_by_peer(fd, 10, &goaway))
        FAIL("a connection that sent malformed frames after the preface was not closed within "
             "10 s");
    fprintf(stderr, "malformed frames: connection closed (GOAWAY seen: %d)\n", goaway);
    close(fd);
    CHECK_EQ(who(ch, "py", name, sizeof(name)), AG_RPC_OK);

    /* a CONTINUATION flood: a header block that never ends (8 MiB of
     * headers, no END_HEADERS until the last frame) */
    h2raw h;
    h2raw_open(&h, m.port[0], 0);
    size_t flood_len = 8u << 20;
    uint8_t *flood = malloc(flood_len);
    CHECK(flood != NULL);
    /* literal header field without indexing, new name "x-f" (3), value 120 bytes */
    for (size_t off = 0; off + 126 <= flood_len; off += 126) {
        flood[off] = 0x00;
        flood[off + 1] = 3;
        memcpy(flood + off + 2, "x-f", 3);
        flood[off + 5] = 120;
        memset(flood + off + 6, 'v', 120);
    }
    flood_len = flood_len / 126 * 126;
    long rss_before = rss_kib(m.pid);
    bool sent_all = true;
    for (size_t off = 0; off < flood_len && sent_all; off += 16380) {
        size_t n = AG_MIN(16380, flood_len - off);
        bool last = off + n >= flood_len;
        sent_all =
            send_frame(&h, off == 0 ? F_HEADERS : F_CONT,
                       (uint8_t)(last ? FL_END_HEADERS | FL_END_STREAM : 0), 1, flood + off, n);
    }
    free(flood);
    h2resp r;
    read_response(&h, 1, 10, &r);
    long rss_after = rss_kib(m.pid);
    fprintf(stderr, "CONTINUATION flood: sent all %d; %s; mesh RSS %ld -> %ld KiB\n", sent_all,
            h2desc(&r), rss_before, rss_after);
    h2raw_close(&h);
    if (!(r.closed || r.reset || r.goaway || r.status == 431))
        FAIL("an 8 MiB header block got neither 431, RST_STREAM, GOAWAY nor a closed "
             "connection: %s",
             h2desc(&r));
    CHECK(rss_after > 0 && rss_after < 64 * 1024);
    CHECK_EQ(who(ch, "py", name, sizeof(name)), AG_RPC_OK);

    ag_rpc_channel_free(ch);
    mesh_stop(&m);
    stop(py.pid);
}

/* Malformed HTTP/2 from backends that then keep their connections open. */
TEST_TIMEOUT(mesh_malformed_backend, 60)
{
    backend py = py_backend("grpc", "py");
    disco_one("py", py.port);
    bad_backend bad;
    bad_backend_start(&bad, false);
    disco_one("bad", bad.port);
    bad_backend bad2;
    bad_backend_start(&bad2, true);
    disco_one("bad2", bad2.port);
    char cfg[4096];
    config_h2(cfg, sizeof(cfg), "");
    mesh m;
    mesh_start(&m, cfg);
    ag_rpc_channel *ch = channel(m.port[0]);
    char name[256];
    char failures[2048] = "";

    /* a backend that answers garbage: the client gets UNAVAILABLE (the
     * mesh gives up on the connection, it does not wait for the backend to
     * close it: a call with a 3 s deadline would end DEADLINE_EXCEEDED),
     * and the mesh keeps serving */
    int st = unary(ch, "bad", "/mesh.Test/Who", "", 0, 3000, NULL, NULL, name, sizeof(name));
    fprintf(stderr, "backend answering garbage: %s (it saw %d connections)\n", name,
            atomic_load(&bad.conns));
    if (st != AG_RPC_UNAVAILABLE)
        snprintf(failures + strlen(failures), sizeof(failures) - strlen(failures),
                 "\n  a call (deadline 3 s) to a backend that answers garbage and keeps the "
                 "connection open: %s: %s, want UNAVAILABLE",
                 ag_rpc_status_name(st), name);
    CHECK(atomic_load(&bad.conns) >= 1);
    CHECK_EQ(who(ch, "py", name, sizeof(name)), AG_RPC_OK);
    CHECK_STR_EQ(name, "py");

    /* a backend whose HTTP/2 breaks in the response's header block */
    st = unary(ch, "bad2", "/mesh.Test/Who", "", 0, 3000, NULL, NULL, name, sizeof(name));
    fprintf(stderr, "backend breaking HPACK in its response: %s (it saw %d connections)\n", name,
            atomic_load(&bad2.conns));
    if (st != AG_RPC_UNAVAILABLE)
        snprintf(failures + strlen(failures), sizeof(failures) - strlen(failures),
                 "\n  a call (deadline 3 s) to a backend whose response header block is "
                 "malformed (and which keeps the connection open): %s: %s, want UNAVAILABLE",
                 ag_rpc_status_name(st), name);
    CHECK(atomic_load(&bad2.conns) >= 1);
    CHECK_EQ(who(ch, "py", name, sizeof(name)), AG_RPC_OK);

    if (failures[0])
        FAIL("malformed HTTP/2 from backends:%s", failures);
    ag_rpc_channel_free(ch);
    mesh_stop(&m);
    bad_backend_stop(&bad);
    bad_backend_stop(&bad2);
    stop(py.pid);
}

TEST_TIMEOUT(mesh_slow_client_bounded_memory, 60)
{
    backend py = py_backend("grpc", "py");
    disco_one("py", py.port);
    char cfg[4096];
    config_h2(cfg, sizeof(cfg), "");
    mesh m;
    mesh_start(&m, cfg);
    ag_rpc_channel *ch = channel(m.port[0]);
    char name[256];
    CHECK_EQ(who(ch, "py", name, sizeof(name)), AG_RPC_OK);
    long rss0 = rss_kib(m.pid);

    /* a client that grants the largest windows, asks for a 200 MiB stream
     * and never reads: only the mesh's buffers (and TCP's) stand between
     * the backend and the client */
    h2raw h;
    h2raw_open(&h, m.port[0], 0x7fffffff);
    nghttp2_nv nva[] = {NV(":method", "POST"),
                        NV(":scheme", "http"),
                        NV(":path", "/mesh.Test/Flood"),
                        NV(":authority", "x"),
                        NV("content-type", "application/grpc"),
                        NV("te", "trailers"),
                        NV("x-svc", "py")};
    CHECK(send_headers(&h, 1, nva, AG_ARRAY_LEN(nva), false));
    CHECK(send_grpc_msg(&h, 1, "200", 3, true));
    long peak = 0;
    for (int i = 0; i < 50; i++) {
        ag_sleep_ms(100);
        long r = rss_kib(m.pid);
        if (r > peak)
            peak = r;
    }
    fprintf(stderr, "mesh RSS: %ld KiB before, peak %ld KiB with a 200 MiB stream stalled\n", rss0,
            peak);
    if (peak >= 64 * 1024)
        FAIL("the mesh grew to %ld KiB behind a client that does not read (want < 64 MiB)", peak);
    /* the mesh still serves others meanwhile */
    CHECK_EQ(who(ch, "py", name, sizeof(name)), AG_RPC_OK);
    /* and once the client reads, the whole stream comes: 200 messages of
     * 1 MiB, each with its 5-byte gRPC prefix */
    h2resp r;
    read_response(&h, 1, 40, &r);
    if (!(r.ended && r.grpc_status == 0 && r.body_len == 200 * ((1u << 20) + 5)))
        FAIL("the stalled 200 MiB stream, read at last: %s; want %u body bytes and grpc-status 0",
             h2desc(&r), 200 * ((1u << 20) + 5));
    h2raw_close(&h);
    ag_rpc_channel_free(ch);
    mesh_stop(&m);
    stop(py.pid);
}

/* ======================================================================================= */
/* 7. config errors                                                                        */
/* ======================================================================================= */

/* --check on yaml: the exit status, stdout and stderr into p. */
static void check_config(const char *name, const char *yaml, ag_test_proc *p)
{
    const char *path = ag_test_write_file(name, yaml, strlen(yaml));
    char copy[600];
    snprintf(copy, sizeof(copy), "%s", path);
    const char *argv[] = {ag_test_bin("argot"), "mesh", "--config", copy, "--check", NULL};
    ag_test_run(p, argv, NULL, 20);
}

/* A bad config: exit 1 and one line "argot: mesh: PATH:LINE:COL: why" with
 * the line given (0: any) and a column (col 0: any; else col or col2: the
 * key's or the value's), why containing `what`. */
static char config_failures[8192]; /* what expect_config_error found wrong, line by line */

/* Notes a failed expectation of a --check run (the test fails at its end,
 * with every case's failure listed). */
static void config_fail(const char *fmt, ...) AG_PRINTF(1, 2);
static void config_fail(const char *fmt, ...)
{
    size_t l = strlen(config_failures);
    va_list ap;
    va_start(ap, fmt);
    snprintf(config_failures + l, sizeof(config_failures) - l, "\n  ");
    l = strlen(config_failures);
    vsnprintf(config_failures + l, sizeof(config_failures) - l, fmt, ap);
    va_end(ap);
}

static void expect_config_error(const char *name, const char *yaml, int line, int col, int col2,
                                const char *what)
{
    ag_test_proc p;
    check_config(name, yaml, &p);
    fprintf(stderr, "--check of %s: exit %d: %s%s", name, p.status, p.err,
            strchr(p.err, '\n') ? "" : "\n");
    char want[700];
    snprintf(want, sizeof(want), "argot: mesh: %s:", ag_test_path(name));
    char *after_line = NULL, *rest = NULL;
    long l = 0, c = 0;
    const char *col_at = NULL, *nl = strchr(p.err, '\n');
    if (p.status != 1) {
        config_fail("%s: exit %d, want 1 (stderr: \"%s\")", name, p.status, p.err);
        goto out;
    }
    if (strncmp(p.err, want, strlen(want)) != 0) {
        config_fail("%s: stderr \"%s\", want it to start with \"%s\"", name, p.err, want);
        goto out;
    }
    l = strtol(p.err + strlen(want), &after_line, 10);
    if (after_line == p.err + strlen(want) || *after_line != ':' || l <= 0) {
        config_fail("%s: no line number in \"%s\"", name, p.err);
        goto out;
    }
    if (line && l != line)
        config_fail("%s: line %ld in \"%s\", want %d", name, l, p.err, line);
    col_at = after_line + 1;
    c = strtol(col_at, &rest, 10);
    if (rest == col_at || strncmp(rest, ": ", 2) != 0 || c <= 0)
        config_fail("%s: no column after the line in \"%s\"", name, p.err);
    else if (col && c != col && c != col2)
        config_fail("%s: column %ld in \"%s\", want %d or %d", name, c, p.err, col, col2);
    if (!strstr(p.err, what))
        config_fail("%s: \"%s\" does not say '%s'", name, p.err, what);
    if (!nl || nl[1] != '\0')
        config_fail("%s: want exactly one line on stderr, got \"%s\"", name, p.err);
out:
    ag_test_proc_cleanup(&p);
}

TEST_TIMEOUT(mesh_config_check, 60)
{
    ag_test_proc p;
    /* the fs namer's rootDir must exist (a missing one is a config error) */
    CHECK_EQ(mkdir(ag_test_path("disco"), 0700), 0);
    check_config("good.yaml",
                 "admin: {ip: 127.0.0.1, port: 0}\n"
                 "namers:\n"
                 "  - {kind: fs, rootDir: disco}\n"
                 "  - {kind: static, prefix: /static, services: {users: [\"127.0.0.1:8080\", "
                 "\"127.0.0.1:8081 2\"]}}\n"
                 "routers:\n"
                 "  - protocol: h2\n"
                 "    label: grpc\n"
                 "    dtab: |\n"
                 "      /svc => /#/fs;\n"
                 "      /svc/split => 0.9 * /#/fs/a & 0.1 * /#/fs/b;\n"
                 "      /svc/users => /#/static/users | /#/fs/users;\n"
                 "    servers: [{ip: 127.0.0.1, port: 0}]\n"
                 "    identifier: {kind: path, segments: 1}\n"
                 "    client: {loadBalancer: {kind: ewma}, connectTimeoutMs: 1000}\n"
                 "  - protocol: http\n"
                 "    label: web\n"
                 "    dtab: /svc => /#/fs;\n"
                 "    servers: [{ip: 127.0.0.1, port: 0}]\n",
                 &p);
    char want[700];
    snprintf(want, sizeof(want), "%s: ok\n", ag_test_path("good.yaml"));
    if (p.status != 0)
        FAIL("--check of a good config: exit %d: %s", p.status, p.err);
    CHECK_STR_EQ(p.out, want);
    ag_test_proc_cleanup(&p);

    expect_config_error("unknown_key.yaml",
                        "admin: {ip: 127.0.0.1, port: 0}\n"
                        "routers:\n"
                        "  - protocol: h2\n"
                        "    labell: grpc\n"
                        "    servers: [{ip: 127.0.0.1, port: 0}]\n",
                        4, 5, 5, "labell");
    expect_config_error("bad_namer.yaml",
                        "admin: {ip: 127.0.0.1, port: 0}\n"
                        "namers:\n"
                        "  - {kind: zookeeper, rootDir: disco}\n"
                        "routers:\n"
                        "  - protocol: h2\n"
                        "    servers: [{ip: 127.0.0.1, port: 0}]\n",
                        3, 6, 12, "zookeeper");
    expect_config_error("bad_protocol.yaml",
                        "routers:\n"
                        "  - protocol: thrift\n"
                        "    servers: [{ip: 127.0.0.1, port: 0}]\n",
                        2, 5, 15, "thrift");
    /* YAML that does not parse: still a position */
    expect_config_error("syntax.yaml",
                        "admin: {ip: 127.0.0.1, port: 0}\n"
                        "routers:\n"
                        "  - protocol: h2\n"
                        "    servers: [{ip: 127.0.0.1, port: 0}\n"
                        "    label: x\n",
                        0, 0, 0, "");
    /* a value of the wrong type */
    expect_config_error("bad_port.yaml",
                        "admin: {ip: 127.0.0.1, port: 0}\n"
                        "routers:\n"
                        "  - protocol: h2\n"
                        "    servers: [{ip: 127.0.0.1, port: eighty}]\n",
                        4, 0, 0, "");
    /* a file that is not there */
    const char *argv[] = {ag_test_bin("argot"),      "mesh",    "--config",
                          ag_test_path("nope.yaml"), "--check", NULL};
    ag_test_run(&p, argv, NULL, 20);
    CHECK_EQ(p.status, 1);
    CHECK_CONTAINS(p.err, "nope.yaml");
    ag_test_proc_cleanup(&p);
    if (config_failures[0])
        FAIL("--check did not report these bad configs as it should:%s", config_failures);
}

/* A dtab error names the place of the error in the file: the line and
 * column of the bad token inside the dtab's block. */
TEST_TIMEOUT(mesh_config_check_dtab_position, 30)
{
    /* the position of the error itself (the second "=>"), not of the
     * dtab's first line */
    expect_config_error("bad_dtab.yaml",
                        "admin: {ip: 127.0.0.1, port: 0}\n"
                        "namers:\n"
                        "  - {kind: fs, rootDir: disco}\n"
                        "routers:\n"
                        "  - protocol: h2\n"
                        "    dtab: |\n"
                        "      /svc => /#/fs;\n"
                        "      /svc/x => => /#/fs/y;\n"
                        "    servers: [{ip: 127.0.0.1, port: 0}]\n",
                        8, 17, 17, "");
    if (config_failures[0])
        FAIL("--check did not report the bad dtab as it should:%s", config_failures);
}

/* ======================================================================================= */
/* 8. reload                                                                               */
/* ======================================================================================= */

/* The router on a fixed port here: what a reload does to a port-0 server is
 * the next test's. */
TEST_TIMEOUT(mesh_reload_keeps_streams, 60)
{
    backend one = py_backend("grpc", "one");
    backend two = py_backend("grpc", "two");
    disco_one("one", one.port);
    disco_one("two", two.port);
    char cfg1[4096], cfg2[4096];
    int port = ag_test_free_port();
    config_h2_port(cfg1, sizeof(cfg1), "      /svc/r => /#/fs/one;\n", port);
    config_h2_port(cfg2, sizeof(cfg2), "      /svc/r => /#/fs/two;\n", port);
    mesh m;
    mesh_start(&m, cfg1);
    ag_rpc_channel *ch = channel(m.port[0]);
    char name[256];
    CHECK_EQ(who(ch, "r", name, sizeof(name)), AG_RPC_OK);
    CHECK_STR_EQ(name, "one");

    /* a stream of 40 messages, 100 ms apart, across both reloads */
    ag_rpc_call *s = call_new(ch, "r", "/mesh.Test/Tick", 30000);
    CHECK_OK(ag_rpc_call_send(s, "40,100", 6));
    CHECK_OK(ag_rpc_call_close_send(s));
    uint8_t *msg;
    size_t len;
    CHECK_EQ(ag_rpc_call_recv(s, &msg, &len), 1);
    CHECK(len == 5 && memcmp(msg, "one 0", 5) == 0);
    ag_free(msg);

    /* an edit of the file alone */
    write_config(cfg2);
    uint64_t t0 = ag_now_ms();
    while (ag_now_ms() - t0 < 5000) {
        who(ch, "r", name, sizeof(name));
        if (strcmp(name, "two") == 0)
            break;
        ag_sleep_ms(20);
    }
    if (strcmp(name, "two") != 0)
        FAIL("5 s after the config's dtab was edited, /svc/r still went to %s", name);

    /* SIGHUP after an edit back */
    write_config(cfg1);
    kill(m.pid, SIGHUP);
    t0 = ag_now_ms();
    while (ag_now_ms() - t0 < 5000) {
        who(ch, "r", name, sizeof(name));
        if (strcmp(name, "one") == 0)
            break;
        ag_sleep_ms(20);
    }
    if (strcmp(name, "one") != 0)
        FAIL("5 s after SIGHUP, /svc/r still went to %s", name);

    /* the stream went on through both reloads */
    for (int i = 1; i < 40; i++) {
        int rc = ag_rpc_call_recv(s, &msg, &len);
        if (rc != 1) {
            const char *smsg;
            int st = ag_rpc_call_status(s, &smsg);
            FAIL("the stream in flight across the reloads ended after %d of 40 messages: %s: %s", i,
                 ag_rpc_status_name(st), smsg ? smsg : "");
        }
        char want[16];
        snprintf(want, sizeof(want), "one %d", i);
        CHECK(len == strlen(want) && memcmp(msg, want, len) == 0);
        ag_free(msg);
    }
    CHECK_EQ(ag_rpc_call_recv(s, &msg, &len), 0);
    CHECK_EQ(ag_rpc_call_status(s, NULL), AG_RPC_OK);
    ag_rpc_call_free(s);

    json_t *st = admin_json(&m, "/admin/state.json");
    json_int_t reloads = json_integer_value(json_object_get(st, "reloads"));
    json_decref(st);
    fprintf(stderr, "reloads: %lld\n", (long long)reloads);
    CHECK(reloads >= 2);

    /* a config that does not load changes nothing */
    write_config("routers: [\n");
    kill(m.pid, SIGHUP);
    ag_sleep_ms(300);
    CHECK_EQ(who(ch, "r", name, sizeof(name)), AG_RPC_OK);
    CHECK_STR_EQ(name, "one");

    ag_rpc_channel_free(ch);
    mesh_stop(&m);
    stop(one.pid);
    stop(two.pid);
}

/* A server configured with port 0 is the same address after a reload: it
 * keeps its socket, so the port the mesh printed keeps taking connections
 * and new ones see the new dtab. */
TEST_TIMEOUT(mesh_reload_port0_keeps_its_port, 30)
{
    backend one = py_backend("grpc", "one");
    backend two = py_backend("grpc", "two");
    disco_one("one", one.port);
    disco_one("two", two.port);
    char cfg1[4096], cfg2[4096];
    config_h2(cfg1, sizeof(cfg1), "      /svc/r => /#/fs/one;\n");
    config_h2(cfg2, sizeof(cfg2), "      /svc/r => /#/fs/two;\n");
    mesh m;
    mesh_start(&m, cfg1);
    ag_rpc_channel *ch = channel(m.port[0]);
    char name[256];
    CHECK_EQ(who(ch, "r", name, sizeof(name)), AG_RPC_OK);
    CHECK_STR_EQ(name, "one");
    write_config(cfg2);
    kill(m.pid, SIGHUP);
    uint64_t t0 = ag_now_ms();
    while (ag_now_ms() - t0 < 5000) {
        who(ch, "r", name, sizeof(name));
        if (strcmp(name, "two") == 0)
            break;
        ag_sleep_ms(20);
    }
    if (strcmp(name, "two") != 0)
        FAIL("after a reload, the port-0 router's port %d: /svc/r gives %s, want two", m.port[0],
             name);
    ag_rpc_channel_free(ch);
    mesh_stop(&m);
    stop(one.pid);
    stop(two.pid);
}

/* ======================================================================================= */
/* 9. admin endpoint and page, in headless Chromium                                        */
/* ======================================================================================= */

/* The part of html from id="routes" to its </table> (malloc'd), or NULL. */
static char *routes_table(const char *html)
{
    const char *a = strstr(html, "id=\"routes\"");
    if (!a)
        a = strstr(html, "id=routes");
    if (!a)
        return NULL;
    const char *b = strstr(a, "</table>");
    return strndup(a, b ? (size_t)(b - a) : strlen(a));
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint8_t paeth(uint8_t a, uint8_t b, uint8_t c)
{
    int p = a + b - c, da = abs(p - a), db = abs(p - b), dc = abs(p - c);
    return da <= db && da <= dc ? a : db <= dc ? b : c;
}

/* What a screenshot shows, roughly: of its pixels, how many are "ink" (far
 * from the page's white), and how many rows hold any. Decodes an 8-bit RGB
 * or RGBA, non-interlaced PNG (what Chromium writes). */
typedef struct png_ink {
    uint32_t w, h;
    uint64_t ink;  /* pixels with a channel below 200 */
    uint32_t rows; /* rows with at least one such pixel */
} png_ink;

static void png_measure(const char *path, png_ink *out)
{
    memset(out, 0, sizeof(*out));
    FILE *fp = fopen(path, "rb");
    CHECK(fp != NULL);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    CHECK(size > 33);
    uint8_t *f = malloc((size_t)size);
    CHECK(f != NULL);
    CHECK_EQ(fread(f, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    CHECK_MEM_EQ(f, "\x89PNG\r\n\x1a\n", 8);
    CHECK_MEM_EQ(f + 12, "IHDR", 4);
    out->w = be32(f + 16);
    out->h = be32(f + 20);
    uint8_t depth = f[24], ctype = f[25], interlace = f[28];
    if (depth != 8 || (ctype != 2 && ctype != 6) || interlace != 0)
        FAIL("%s: a PNG this test cannot read (depth %u, color type %u, interlace %u)", path, depth,
             ctype, interlace);
    size_t bpp = ctype == 6 ? 4 : 3, stride = out->w * bpp;
    uint8_t *z = malloc((size_t)size);
    CHECK(z != NULL);
    size_t zl = 0;
    for (size_t off = 8; off + 12 <= (size_t)size;) {
        uint32_t len = be32(f + off);
        if (off + 12 + len > (size_t)size)
            break;
        if (memcmp(f + off + 4, "IDAT", 4) == 0) {
            memcpy(z + zl, f + off + 8, len);
            zl += len;
        }
        off += 12 + len;
    }
    uLongf rawlen = (uLongf)((stride + 1) * out->h);
    uint8_t *raw = malloc(rawlen);
    CHECK(raw != NULL);
    CHECK_EQ(uncompress(raw, &rawlen, z, (uLong)zl), Z_OK);
    CHECK_EQ(rawlen, (stride + 1) * out->h);
    uint8_t *prev = calloc(1, stride), *cur = malloc(stride);
    CHECK(prev != NULL && cur != NULL);
    for (uint32_t y = 0; y < out->h; y++) {
        const uint8_t *line = raw + y * (stride + 1);
        uint8_t ft = line[0];
        for (size_t i = 0; i < stride; i++) {
            uint8_t x = line[1 + i], a = i >= bpp ? cur[i - bpp] : 0, b = prev[i],
                    c = i >= bpp ? prev[i - bpp] : 0;
            switch (ft) {
            case 0:
                cur[i] = x;
                break;
            case 1:
                cur[i] = (uint8_t)(x + a);
                break;
            case 2:
                cur[i] = (uint8_t)(x + b);
                break;
            case 3:
                cur[i] = (uint8_t)(x + (a + b) / 2);
                break;
            case 4:
                cur[i] = (uint8_t)(x + paeth(a, b, c));
                break;
            default:
                FAIL("%s: PNG filter type %u", path, ft);
            }
        }
        bool row_ink = false;
        for (uint32_t px = 0; px < out->w; px++) {
            const uint8_t *c3 = cur + px * bpp;
            if (c3[0] < 200 || c3[1] < 200 || c3[2] < 200) {
                out->ink++;
                row_ink = true;
            }
        }
        out->rows += row_ink;
        memcpy(prev, cur, stride);
    }
    free(prev);
    free(cur);
    free(raw);
    free(z);
    free(f);
}

TEST_TIMEOUT(mesh_admin_page_in_chromium, 120)
{
    backend py = py_backend("grpc", "py");
    disco_one("py", py.port);
    char cfg[4096];
    config_h2(cfg, sizeof(cfg), "");
    mesh m;
    mesh_start(&m, cfg);
    ag_rpc_channel *ch = channel(m.port[0]);
    char name[256];
    for (int i = 0; i < 5; i++)
        CHECK_EQ(who(ch, "py", name, sizeof(name)), AG_RPC_OK);

    char *b = http_get_body(m.admin, "/healthz");
    CHECK(strncmp(b, "ok", 2) == 0);
    free(b);

    json_t *st = admin_json(&m, "/admin/state.json");
    json_t *r0 = json_array_get(json_object_get(st, "routers"), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(r0, "label")), "grpc");
    CHECK_STR_EQ(json_string_value(json_object_get(r0, "protocol")), "h2");
    CHECK(json_integer_value(json_object_get(r0, "requests")) >= 5);
    json_t *c0 = json_array_get(json_object_get(r0, "clusters"), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(c0, "id")), "/#/fs/py");
    CHECK(json_integer_value(json_object_get(c0, "successes")) >= 5);
    json_decref(st);

    b = http_get_body(m.admin, "/metrics");
    CHECK_CONTAINS(b, "argot_mesh_requests_total{");
    CHECK_CONTAINS(b, "argot_mesh_responses_total{");
    CHECK_CONTAINS(b, "argot_mesh_request_duration_seconds_bucket");
    CHECK_CONTAINS(b, "argot_mesh_connections");
    free(b);

    http_resp hr;
    http_do(m.admin, "POST", "/logging?level=debug", "127.0.0.1", NULL, "", &hr);
    CHECK(hr.status >= 200 && hr.status < 300);
    http_resp_free(&hr);
    http_do(m.admin, "POST", "/logging?level=info", "127.0.0.1", NULL, "", &hr);
    CHECK(hr.status >= 200 && hr.status < 300);
    http_resp_free(&hr);

    b = http_get_body(m.admin, "/");
    CHECK_CONTAINS(b, "<title>argot mesh</title>");
    CHECK_CONTAINS(b, "routes");
    free(b);

    if (access(CHROMIUM, X_OK) != 0)
        FAIL("%s is not installed (scripts/deps.sh installs Debian's chromium)", CHROMIUM);
    char url[64], profile[600], shot[600], shotarg[700], profarg[700];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", m.admin);
    snprintf(profile, sizeof(profile), "%s/chromium-profile", ag_test_tmpdir());
    snprintf(profarg, sizeof(profarg), "--user-data-dir=%s", profile);
    const char *dom_argv[] = {CHROMIUM,
                              "--headless=new",
                              "--no-sandbox",
                              "--disable-gpu",
                              "--no-first-run",
                              "--disable-dev-shm-usage",
                              profarg,
                              "--virtual-time-budget=5000",
                              "--dump-dom",
                              url,
                              NULL};
    ag_test_proc p;
    int rc = ag_test_run(&p, dom_argv, NULL, 60);
    if (rc != 0)
        FAIL("chromium --dump-dom: exit %d\n%.2000s", rc, p.err);
    char *table = routes_table(p.out);
    if (!table)
        FAIL("the rendered page has no table with id=\"routes\":\n%.3000s", p.out);
    const char *tbody = strstr(table, "<tbody");
    char server[64];
    snprintf(server, sizeof(server), "127.0.0.1:%d", m.port[0]);
    if (!tbody || !strstr(tbody, "<tr") || !strstr(tbody, ">grpc<") || !strstr(tbody, ">h2<") ||
        !strstr(tbody, server))
        FAIL("the rendered route table has no row for router grpc, h2, %s (the page's "
             "JavaScript did not fill it from state.json):\n%.3000s",
             server, table);
    free(table);
    /* the services section, rendered too */
    CHECK_CONTAINS(p.out, "/#/fs/py");
    ag_test_proc_cleanup(&p);

    snprintf(shot, sizeof(shot), "%s/admin.png", ag_test_tmpdir());
    snprintf(shotarg, sizeof(shotarg), "--screenshot=%s", shot);
    const char *shot_argv[] = {CHROMIUM,
                               "--headless=new",
                               "--no-sandbox",
                               "--disable-gpu",
                               "--no-first-run",
                               "--disable-dev-shm-usage",
                               profarg,
                               "--hide-scrollbars",
                               "--window-size=1280,900",
                               "--virtual-time-budget=5000",
                               shotarg,
                               url,
                               NULL};
    rc = ag_test_run(&p, shot_argv, NULL, 60);
    if (rc != 0)
        FAIL("chromium --screenshot: exit %d\n%.2000s", rc, p.err);
    ag_test_proc_cleanup(&p);
    struct stat sb;
    if (stat(shot, &sb) != 0)
        FAIL("chromium wrote no screenshot at %s", shot);
    png_ink ink;
    png_measure(shot, &ink);
    fprintf(stderr, "screenshot %s: %ux%u, %lld bytes, %" PRIu64 " ink pixels in %u rows\n", shot,
            ink.w, ink.h, (long long)sb.st_size, ink.ink, ink.rows);
    CHECK_EQ(ink.w, 1280);
    CHECK_EQ(ink.h, 900);
    if (sb.st_size <= 10 * 1024)
        FAIL("the screenshot is %lld bytes: blank?", (long long)sb.st_size);
    /* a page with a title, a table with a row, sections and a form shows
     * text on many rows; a blank (or all-dark) page does not */
    if (ink.rows < 80 || ink.ink < 3000 || ink.ink > (uint64_t)ink.w * ink.h * 9 / 10)
        FAIL("the screenshot looks blank or unreadable: %" PRIu64 " ink pixels in %u rows", ink.ink,
             ink.rows);

    ag_rpc_channel_free(ch);
    mesh_stop(&m);
    stop(py.pid);
}
