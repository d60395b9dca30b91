/*
 * fed: the link over gRPC (src/link/rpc.c) on loopback beside the
 * in-memory link, in one run: the mpc kernels of bench/mpc over each, and
 * the gRPC link's own figures (small-message round trips, the bandwidth of
 * a 64 MiB message) against the in-memory link and against raw TCP.
 *
 * Everything runs in this process, one thread per party, 2 parties. The
 * in-memory endpoints come from ag_link_mem_group; the gRPC ones are two
 * ag_link_rpc_new endpoints serving on 127.0.0.1 port 0, each told the
 * other's port (so every message crosses a real TCP connection, HTTP/2 and
 * the link's threads). Each section makes fresh endpoints.
 *
 * Two more links beside them (issue 11): "tls", the gRPC link with mutual
 * TLS (party certificates from a CA made in a temporary directory), and
 * "gw", the same through two party gateways: two ag_mesh instances in this
 * process, configured as `argot mesh init` configures them (one h2 router
 * routing by argot-party, mTLS on both sides, only the link service
 * allowed), so every message goes link -> alice's gateway -> bob's gateway
 * -> link, three TLS hops. Their rows follow the rpc ones in every section
 * (--no-gw leaves them out).
 *
 *   round trips  rank 0 sends a message of 8 B (and 1 KiB) with
 *                ag_link_send, rank 1 receives it (ag_link_recv_into) and
 *                sends it back, rank 0 receives it: --trips round trips
 *                (default 2000) after 200 of warm-up, each timed on rank 0;
 *                min, median, mean, p99 and max in microseconds. The same
 *                over a raw loopback TCP socket pair (TCP_NODELAY; write
 *                and read) shows the floor a socket link starts from. Every
 *                echo is compared with what was sent.
 *   bandwidth    rank 0 hands a 64 MiB message to ag_link_send_take (made
 *                and filled before the clock starts), rank 1 receives it
 *                with ag_link_recv and answers with a 1-byte ack; the time
 *                is rank 0's, from the send to the ack. Raw TCP does the
 *                same over a plain loopback socket pair with TCP_NODELAY
 *                (write 64 MiB, read 64 MiB into a buffer, 1-byte ack).
 *                Best and median of --bw-runs (default 5); GB/s = 1e9 B/s;
 *                each message is checked after the ack. The in-memory link
 *                passes the pointer, so it has no bandwidth row.
 *   kernels      for FM64 and FM128, the kernels of bench/mpc
 *                (mpc_kernels.h: share, mul, square, matmul 256^3 and
 *                1024^3, trunc, reveal) over the in-memory link, then over
 *                the gRPC link, --runs times each (default 3; FM128's
 *                1024^3 once, and skipped if 64 times its 256^3 time passes
 *                20 s); the best and median wall time on each link, the
 *                difference and the ratio of the best times, the bytes
 *                each party sent and the rounds from the link's counters
 *                against argot/mpc.h's model, and the opened results
 *                against plaintext ones.
 *
 * The issue's targets, shown beside the figures and never pass/fail: the
 * gRPC link within 1.5x of the in-memory link on 2-party FM64 matmul
 * 1024^3, and a small-message round trip under 100 us (median, 8 B and
 * 1 KiB). The load average is printed before each section and at the end:
 * timings taken under load say little.
 *
 * Threads: main prints and runs rank 0 of the link figures; a second
 * thread runs rank 1; the kernels run on mpc_kernels.h's party threads. A
 * party that fails aborts its link, so its peer fails at once instead of
 * waiting out the link's timeout.
 *
 * Exit status: 1 if a link call or a kernel failed, an echo, a message or
 * an opened result was wrong, or a party's bytes or rounds differed from
 * the model (after printing everything); 0 otherwise. Timings never decide
 * it.
 *
 * Usage: fed [--runs N] [--trips N] [--bw-runs N] [--field fm64|fm128|both]
 *            [--only rtt|bw|kernels] [--no-gw]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "argot/mesh.h"
#include "argot/rpc.h"
#include "load.h"
#include "mpc_kernels.h"

#define WARMUP_TRIPS  200
#define DEFAULT_TRIPS 2000
#define MAX_TRIPS     1000000
#define BW_BYTES      ((size_t)64 << 20)
#define MAX_BW_RUNS   MAX_RUNS
#define TARGET_MM     1.5   /* rpc / mem on 2-party FM64 matmul 1024^3 */
#define TARGET_RTT_US 100.0 /* median small-message round trip over rpc */
#define FM128_SKIP_S  20.0  /* FM128 1024^3 estimate above which it is skipped */
#define TAG_BW        (UINT64_C(1) << 40)

enum transport { T_MEM, T_RPC, T_TCP, T_TLS, T_GW };

static const char *const transport_names[] = {"mem", "rpc", "tcp", "tls", "gw"};
static const char *const party_names[] = {"alice", "bob"};

/* The certificates and the two gateways of the tls and gw links, made at
 * their first use and kept to the end. */
static bool with_gw = true; /* the tls and gw rows (--no-gw: none) */

static struct gw_env {
    bool tried, up;
    char err[AG_ERRMSG_MAX];
    char dir[64];             /* the temporary directory */
    char cert[2][128], key[2][128], ca[128];
    char link[2][32];         /* each party's link server (for gw) */
    char gw[2][32];           /* each party's gateway */
    ag_mesh *mesh[2];
} G;

/* ---- machine load ---------------------------------------------------------- */

static void print_load(const char *when)
{
    char load[64];
    load_avg(load, sizeof(load));
    printf("load average (1, 5, 15 min) %s: %s (nproc=%ld)\n", when, load,
           sysconf(_SC_NPROCESSORS_ONLN));
}

/* ---- endpoints ------------------------------------------------------------- */

/* A loopback port nothing listens on now (the kernel's pick). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Writes party k's gateway config (the shape `argot mesh init` writes)
 * into path. */
static bool gw_config(int k, const char *path)
{
    const char *me = party_names[k], *peer = party_names[1 - k];
    char host[2][32], port[2][16], lh[32], lp[16];
    for (int i = 0; i < 2; i++)
        if (sscanf(G.gw[i], "%31[^:]:%15s", host[i], port[i]) != 2)
            return false;
    if (sscanf(G.link[k], "%31[^:]:%15s", lh, lp) != 2)
        return false;
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f,
            "admin: {port: -1}\nlog: {level: warn}\nrouters:\n  - protocol: h2\n"
            "    label: parties\n    identifier: {kind: header, header: argot-party}\n"
            "    dtab: |\n      /svc/%s => /$/inet/%s/%s;\n      /svc/%s => /$/inet/%s/%s;\n"
            "    servers:\n      - ip: %s\n        port: %s\n        tls: {certPath: %s, "
            "keyPath: %s, caCertPath: %s, requireClientAuth: true}\n"
            "    client:\n      failureAccrual: {kind: none}\n      configs:\n",
            me, lh, lp, peer, host[1 - k], port[1 - k], host[k], port[k], G.cert[k], G.key[k],
            G.ca);
    const char *h[2] = {lh, host[1 - k]}, *p[2] = {lp, port[1 - k]}, *cn[2] = {me, peer};
    for (int i = 0; i < 2; i++)
        fprintf(f,
                "        - prefix: /$/inet/%s/%s\n          tls: {commonName: %s, trustCerts: "
                "[%s], clientAuth: {certPath: %s, keyPath: %s}}\n",
                h[i], p[i], cn[i], G.ca, G.cert[k], G.key[k]);
    fprintf(f, "    authorization:\n      default: deny\n      rules:\n"
               "        - {party: \"*\", service: argot.link.v1.Link}\n");
    return fclose(f) == 0;
}

/* Makes the CA, both parties' certificates and starts both gateways (once;
 * false with G.err set if that failed). */
static bool gw_env_up(void)
{
    if (G.tried)
        return G.up;
    G.tried = true;
    snprintf(G.dir, sizeof(G.dir), "/tmp/argot-bench-fed-XXXXXX");
    if (!mkdtemp(G.dir)) {
        snprintf(G.err, sizeof(G.err), "mkdtemp: %s", strerror(errno));
        return false;
    }
    char pki[96], err[256];
    snprintf(pki, sizeof(pki), "%s/pki", G.dir);
    if (ag_rpc_pki_init(pki, NULL, 0, err, sizeof(err)) < 0) {
        snprintf(G.err, sizeof(G.err), "CA: %s", err);
        return false;
    }
    snprintf(G.ca, sizeof(G.ca), "%s/ca.crt", pki);
    for (int k = 0; k < 2; k++) {
        if (ag_rpc_pki_issue(pki, party_names[k], NULL, 0, err, sizeof(err)) < 0) {
            snprintf(G.err, sizeof(G.err), "certificate: %s", err);
            return false;
        }
        snprintf(G.cert[k], sizeof(G.cert[k]), "%s/%s.crt", pki, party_names[k]);
        snprintf(G.key[k], sizeof(G.key[k]), "%s/%s.key", pki, party_names[k]);
        snprintf(G.link[k], sizeof(G.link[k]), "127.0.0.1:%d", free_port());
        snprintf(G.gw[k], sizeof(G.gw[k]), "127.0.0.1:%d", free_port());
    }
    for (int k = 0; k < 2; k++) {
        char path[96];
        snprintf(path, sizeof(path), "%s/gw-%s.yaml", G.dir, party_names[k]);
        if (!gw_config(k, path)) {
            snprintf(G.err, sizeof(G.err), "%s: cannot write", path);
            return false;
        }
        G.mesh[k] = ag_mesh_load(path, err, sizeof(err));
        if (!G.mesh[k] || ag_mesh_start(G.mesh[k], err, sizeof(err)) < 0) {
            snprintf(G.err, sizeof(G.err), "gateway of %s: %s", party_names[k], err);
            return false;
        }
    }
    G.up = true;
    return true;
}

static void gw_env_down(void)
{
    for (int k = 0; k < 2; k++)
        ag_mesh_free(G.mesh[k]);
    if (G.dir[0] && G.tried) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", G.dir);
        if (system(cmd) != 0)
            printf("warning: could not remove %s\n", G.dir);
    }
}

/* Two connected endpoints of kind t (T_MEM or T_RPC) in l[0..1]. On
 * failure returns false with the reason in err and nothing to free. */
static bool link_pair(enum transport t, ag_link **l, char *err, size_t cap)
{
    l[0] = l[1] = NULL;
    if (t == T_MEM) {
        int rc = ag_link_mem_group(2, party_names, l);
        if (rc < 0)
            snprintf(err, cap, "in-memory link: %s", ag_strerror(rc));
        return rc == 0;
    }
    if ((t == T_TLS || t == T_GW) && !gw_env_up()) {
        snprintf(err, cap, "%.200s", G.err);
        return false;
    }
    for (unsigned i = 0; i < 2; i++) {
        const char *addrs[2] = {G.link[0], G.link[1]};
        ag_link_rpc_opts o = {.rank = i,
                              .n = 2,
                              .names = party_names,
                              .listen = "127.0.0.1:0",
                              .session = "bench-fed"};
        if (t == T_TLS || t == T_GW) {
            o.tls_cert = G.cert[i];
            o.tls_key = G.key[i];
            o.tls_ca = G.ca;
        }
        if (t == T_GW) {
            o.addresses = addrs;
            o.listen = NULL;
            o.gateway = G.gw[i];
            o.via_gateway = true;
        }
        l[i] = ag_link_rpc_new(&o, err, cap);
        if (!l[i])
            goto free_links;
    }
    for (unsigned i = 0; t != T_GW && i < 2; i++) {
        char addr[64];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", ag_link_rpc_port(l[1 - i]));
        int rc = ag_link_rpc_set_peer(l[i], 1 - i, addr);
        if (rc < 0) {
            snprintf(err, cap, "set_peer %s: %s", addr, ag_strerror(rc));
            goto free_links;
        }
    }
    return true;
free_links:
    ag_link_free(l[1]);
    ag_link_free(l[0]);
    l[0] = l[1] = NULL;
    return false;
}

/* A connected loopback TCP socket pair with TCP_NODELAY on both ends. */
static bool tcp_pair(int *fd, char *err, size_t cap)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int one = 1;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    fd[0] = fd[1] = -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 1) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) < 0)
        goto fail;
    fd[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (fd[0] < 0 || connect(fd[0], (struct sockaddr *)&a, sizeof(a)) < 0)
        goto fail;
    fd[1] = accept(ls, NULL, NULL);
    if (fd[1] < 0 || setsockopt(fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
        setsockopt(fd[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        goto fail;
    close(ls);
    return true;
fail:
    snprintf(err, cap, "loopback TCP: %s", strerror(errno));
    for (int i = 0; i < 2; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    if (ls >= 0)
        close(ls);
    fd[0] = fd[1] = -1;
    return false;
}

static bool write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

static bool read_all(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = read(fd, b, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        b += r;
        n -= (size_t)r;
    }
    return true;
}

/* ---- what the two sides of a link figure share ----------------------------- */

/* One link figure's run: written by both threads, read by main after the
 * join. */
struct figure {
    enum transport t;
    ag_link *l[2]; /* T_MEM, T_RPC */
    int fd[2];     /* T_TCP */
    size_t size;   /* message bytes */
    int runs;      /* round trips, or bandwidth runs */
    uint64_t tag0; /* first tag used */
    pthread_barrier_t bar;
    double *secs;       /* runs: rank 0's times, seconds */
    pthread_mutex_t mu; /* guards what follows */
    bool failed;        /* a link call failed */
    bool wrong;         /* an echo or a message differed */
    char err[AG_ERRMSG_MAX];
};

/* Records a failure of rank `rank` (and aborts its link, so the peer's
 * receive fails at once). */
static void figure_fail(struct figure *fg, unsigned rank, const char *what)
{
    char msg[AG_ERRMSG_MAX];
    snprintf(msg, sizeof(msg), "party %u: %s", rank, what);
    pthread_mutex_lock(&fg->mu);
    fg->failed = true;
    if (!fg->err[0])
        snprintf(fg->err, sizeof(fg->err), "%s", msg);
    pthread_mutex_unlock(&fg->mu);
    if (fg->t != T_TCP)
        ag_link_abort(fg->l[rank], msg);
    else
        shutdown(fg->fd[rank], SHUT_RDWR);
}

static void figure_wrong(struct figure *fg, const char *what)
{
    pthread_mutex_lock(&fg->mu);
    fg->wrong = true;
    if (!fg->err[0])
        snprintf(fg->err, sizeof(fg->err), "%s", what);
    pthread_mutex_unlock(&fg->mu);
}

/* Runs rank1(fg) on a second thread while rank0(fg) runs here.
 * Returns false if the thread could not start. */
static bool figure_run(struct figure *fg, void *(*rank1)(void *), void (*rank0)(struct figure *))
{
    pthread_t th;
    if (pthread_create(&th, NULL, rank1, fg) != 0)
        return false;
    rank0(fg);
    pthread_join(th, NULL);
    return true;
}

/* ---- round trips ------------------------------------------------------------- */

/* Sends n bytes from rank to the other party (tag unused over TCP). */
static int fig_send(struct figure *fg, unsigned rank, uint64_t tag, const void *p, size_t n)
{
    if (fg->t == T_TCP)
        return write_all(fg->fd[rank], p, n) ? 0 : AG_E_SYS;
    return ag_link_send(fg->l[rank], 1 - rank, tag, p, n);
}

/* Receives exactly n bytes at rank from the other party. */
static int fig_recv_into(struct figure *fg, unsigned rank, uint64_t tag, void *p, size_t n)
{
    if (fg->t == T_TCP)
        return read_all(fg->fd[rank], p, n) ? 0 : AG_E_SYS;
    return ag_link_recv_into(fg->l[rank], 1 - rank, tag, p, n);
}

static const char *fig_errmsg(const struct figure *fg, unsigned rank)
{
    return fg->t == T_TCP ? "loopback TCP: read or write failed" : ag_link_errmsg(fg->l[rank]);
}

static void *echo_main(void *arg)
{
    struct figure *fg = arg;
    uint8_t *buf = ag_malloc(fg->size);
    if (!buf) {
        figure_fail(fg, 1, "no memory");
        return NULL;
    }
    for (int i = 0; i < WARMUP_TRIPS + fg->runs; i++) {
        uint64_t tag = fg->tag0 + (uint64_t)i;
        int rc = fig_recv_into(fg, 1, tag, buf, fg->size);
        if (rc == 0)
            rc = fig_send(fg, 1, tag, buf, fg->size);
        if (rc < 0) {
            figure_fail(fg, 1, fig_errmsg(fg, 1));
            break;
        }
    }
    ag_free(buf);
    return NULL;
}

static void ping_main(struct figure *fg)
{
    uint8_t *out = ag_malloc(fg->size), *in = ag_malloc(fg->size);
    if (!out || !in) {
        figure_fail(fg, 0, "no memory");
        goto free_bufs;
    }
    for (int i = 0; i < WARMUP_TRIPS + fg->runs; i++) {
        uint64_t tag = fg->tag0 + (uint64_t)i;
        for (size_t j = 0; j < fg->size; j++)
            out[j] = (uint8_t)(i * 31 + (int)j);
        uint64_t t0 = ag_now_ns();
        int rc = fig_send(fg, 0, tag, out, fg->size);
        if (rc == 0)
            rc = fig_recv_into(fg, 0, tag, in, fg->size);
        uint64_t t1 = ag_now_ns();
        if (rc < 0) {
            figure_fail(fg, 0, fig_errmsg(fg, 0));
            break;
        }
        if (i >= WARMUP_TRIPS)
            fg->secs[i - WARMUP_TRIPS] = (double)(t1 - t0) / 1e9;
        if (memcmp(in, out, fg->size) != 0)
            figure_wrong(fg, "an echo differs from the message sent");
    }
free_bufs:
    ag_free(out);
    ag_free(in);
}

/* ---- bandwidth ----------------------------------------------------------------- */

/* The 64-bit words of run i's message. */
static void bw_fill(uint64_t *w, size_t n, int run)
{
    uint64_t s = UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(run + 1);
    for (size_t i = 0; i < n; i++)
        w[i] = s + i * UINT64_C(0xD1B54A32D192ED03);
}

static bool bw_check(const uint64_t *w, size_t n, int run)
{
    uint64_t s = UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(run + 1);
    for (size_t i = 0; i < n; i++)
        if (w[i] != s + i * UINT64_C(0xD1B54A32D192ED03))
            return false;
    return true;
}

/* Rank 1 over a link: receive, ack, then check (after the ack, so the
 * check is not timed). Passes the same barriers as bw_send whatever
 * happens. */
static void *bw_recv_main(void *arg)
{
    struct figure *fg = arg;
    ag_link *l = fg->l[1];
    bool ok = true;
    for (int i = 0; i < fg->runs; i++) {
        pthread_barrier_wait(&fg->bar);
        if (!ok)
            continue;
        void *data = NULL;
        size_t len = 0;
        uint64_t tag = fg->tag0 + (uint64_t)i;
        int rc = ag_link_recv(l, 0, tag, &data, &len);
        if (rc == 0)
            rc = ag_link_send(l, 0, tag, "k", 1);
        if (rc < 0) {
            figure_fail(fg, 1, ag_link_errmsg(l));
            ok = false;
        } else if (len != fg->size || !bw_check(data, len / 8, i)) {
            figure_wrong(fg, "a 64 MiB message arrived changed");
        }
        ag_free(data);
    }
    return NULL;
}

static void bw_send_main(struct figure *fg)
{
    ag_link *l = fg->l[0];
    bool ok = true;
    for (int i = 0; i < fg->runs; i++) {
        uint64_t *buf = ok ? ag_malloc(fg->size) : NULL;
        if (ok && !buf) {
            figure_fail(fg, 0, "no memory");
            ok = false;
        }
        if (buf)
            bw_fill(buf, fg->size / 8, i); /* touches every page before the clock */
        pthread_barrier_wait(&fg->bar);
        if (!ok)
            continue;
        uint64_t tag = fg->tag0 + (uint64_t)i;
        uint8_t ack;
        uint64_t t0 = ag_now_ns();
        int rc = ag_link_send_take(l, 1, tag, buf, fg->size);
        if (rc == 0)
            rc = ag_link_recv_into(l, 1, tag, &ack, 1);
        fg->secs[i] = (double)(ag_now_ns() - t0) / 1e9;
        if (rc < 0) {
            figure_fail(fg, 0, ag_link_errmsg(l));
            ok = false;
        }
    }
}

/* The same over raw TCP: rank 1 reads into one buffer (touched before). */
static void *tcp_recv_main(void *arg)
{
    struct figure *fg = arg;
    uint64_t *buf = ag_malloc(fg->size);
    bool ok = buf != NULL;
    if (!buf)
        figure_fail(fg, 1, "no memory");
    else
        memset(buf, 0, fg->size);
    for (int i = 0; i < fg->runs; i++) {
        pthread_barrier_wait(&fg->bar);
        if (!ok)
            continue;
        if (!read_all(fg->fd[1], buf, fg->size) || !write_all(fg->fd[1], "k", 1)) {
            figure_fail(fg, 1, "loopback TCP: read or write failed");
            ok = false;
        } else if (!bw_check(buf, fg->size / 8, i)) {
            figure_wrong(fg, "64 MiB over TCP arrived changed");
        }
    }
    ag_free(buf);
    return NULL;
}

static void tcp_send_main(struct figure *fg)
{
    uint64_t *buf = ag_malloc(fg->size);
    bool ok = buf != NULL;
    if (!buf)
        figure_fail(fg, 0, "no memory");
    for (int i = 0; i < fg->runs; i++) {
        if (ok)
            bw_fill(buf, fg->size / 8, i);
        pthread_barrier_wait(&fg->bar);
        if (!ok)
            continue;
        uint8_t ack;
        uint64_t t0 = ag_now_ns();
        if (!write_all(fg->fd[0], buf, fg->size) || !read_all(fg->fd[0], &ack, 1)) {
            figure_fail(fg, 0, "loopback TCP: write or read failed");
            ok = false;
        }
        fg->secs[i] = (double)(ag_now_ns() - t0) / 1e9;
    }
    ag_free(buf);
}

/* ---- the link figures' tables ----------------------------------------------- */

/* Prints one round-trip row; returns false if it failed or was wrong.
 * *median_us gets the median (NAN if not measured). */
static bool print_rtt_row(const struct figure *fg, double *median_us)
{
    *median_us = NAN;
    printf("%-4s %8zu %6d ", transport_names[fg->t], fg->size, fg->runs);
    if (fg->failed || fg->wrong) {
        printf("%9s %9s %9s %9s %9s %-16s %s\n", "-", "-", "-", "-", "-", "-",
               fg->failed ? "FAILED" : "WRONG");
        printf("      error: %s\n", fg->err);
        return false;
    }
    size_t n = (size_t)fg->runs;
    double sum = 0;
    qsort(fg->secs, n, sizeof(*fg->secs), cmp_double);
    for (size_t i = 0; i < n; i++)
        sum += fg->secs[i];
    double med = n % 2 ? fg->secs[n / 2] : (fg->secs[n / 2 - 1] + fg->secs[n / 2]) / 2;
    size_t i99 = (size_t)ceil(0.99 * (double)n) - 1;
    char target[24] = "-";
    if (fg->t == T_RPC)
        snprintf(target, sizeof(target), "<%.0fus %s", TARGET_RTT_US,
                 med * 1e6 < TARGET_RTT_US ? "met" : "missed");
    printf("%9.1f %9.1f %9.1f %9.1f %9.1f %-16s %s\n", fg->secs[0] * 1e6, med * 1e6,
           sum / (double)n * 1e6, fg->secs[i99] * 1e6, fg->secs[n - 1] * 1e6, target, "ok");
    *median_us = med * 1e6;
    return true;
}

/* Prints one bandwidth row; tcp_gbs is raw TCP's best (0: not known).
 * Returns false if it failed or was wrong; *best_gbs gets its best. */
static bool print_bw_row(const struct figure *fg, double tcp_gbs, double *best_gbs)
{
    *best_gbs = 0;
    printf("%-4s %8zu %4d ", transport_names[fg->t], fg->size, fg->runs);
    if (fg->failed || fg->wrong) {
        printf("%9s %9s %9s %9s %9s %s\n", "-", "-", "-", "-", "-",
               fg->failed ? "FAILED" : "WRONG");
        printf("      error: %s\n", fg->err);
        return false;
    }
    double best, med;
    best_median(fg->secs, fg->runs, &best, &med);
    double gb = (double)fg->size / 1e9;
    char vs[16] = "1.00x";
    if (fg->t != T_TCP && tcp_gbs > 0)
        snprintf(vs, sizeof(vs), "%.2fx", gb / best / tcp_gbs);
    printf("%9.4f %9.4f %9.2f %9.2f %9s %s\n", best, med, gb / best, gb / med, vs, "ok");
    *best_gbs = gb / best;
    return true;
}

/* Makes the endpoints and runs one link figure; false if it could not
 * start (the reason printed as a FAILED row by the caller). */
static bool figure_do(struct figure *fg, void *(*rank1)(void *), void (*rank0)(struct figure *))
{
    char err[256];
    bool up = fg->t == T_TCP ? tcp_pair(fg->fd, err, sizeof(err))
                             : link_pair(fg->t, fg->l, err, sizeof(err));
    if (!up) {
        fg->failed = true;
        snprintf(fg->err, sizeof(fg->err), "%s", err);
        return false;
    }
    pthread_barrier_init(&fg->bar, NULL, 2);
    pthread_mutex_init(&fg->mu, NULL);
    if (!figure_run(fg, rank1, rank0)) {
        fg->failed = true;
        snprintf(fg->err, sizeof(fg->err), "cannot start a thread");
    }
    pthread_barrier_destroy(&fg->bar);
    pthread_mutex_destroy(&fg->mu);
    if (fg->t == T_TCP) {
        close(fg->fd[0]);
        close(fg->fd[1]);
    } else {
        ag_link_free(fg->l[0]);
        ag_link_free(fg->l[1]);
    }
    return !fg->failed;
}

/* Round trips of 8 B and 1 KiB over each link and raw TCP; returns false
 * on a failure. *rpc_med_us gets the worst rpc median (NAN if none). */
static bool round_trips(int trips, double *rpc_med_us)
{
    static const size_t sizes[] = {8, 1024};
    static const enum transport order[] = {T_MEM, T_TCP, T_RPC, T_TLS, T_GW};
    bool ok = true;
    *rpc_med_us = NAN;
    printf("\nround trips: rank 0 sends, rank 1 echoes (ag_link_send, ag_link_recv_into; tcp: "
           "write, read on a loopback socket pair with TCP_NODELAY), %d timed after %d of "
           "warm-up; microseconds\n",
           trips, WARMUP_TRIPS);
    printf("%-4s %8s %6s %9s %9s %9s %9s %9s %-16s %s\n", "link", "bytes", "trips", "min_us",
           "median_us", "mean_us", "p99_us", "max_us", "target", "check");
    double *secs = ag_malloc((size_t)trips * sizeof(*secs));
    if (!secs) {
        printf("no memory for %d round trips\n", trips);
        return false;
    }
    for (size_t s = 0; s < AG_ARRAY_LEN(sizes); s++) {
        for (size_t t = 0; t < AG_ARRAY_LEN(order); t++) {
            if (!with_gw && (order[t] == T_TLS || order[t] == T_GW))
                continue;
            struct figure fg;
            memset(&fg, 0, sizeof(fg));
            fg.t = order[t];
            fg.size = sizes[s];
            fg.runs = trips;
            fg.secs = secs;
            figure_do(&fg, echo_main, ping_main);
            double med;
            ok = print_rtt_row(&fg, &med) && ok;
            if (fg.t == T_RPC && !isnan(med))
                *rpc_med_us = isnan(*rpc_med_us) ? med : AG_MAX(*rpc_med_us, med);
            fflush(stdout);
        }
    }
    ag_free(secs);
    return ok;
}

/* 64 MiB over raw TCP and over the rpc link; returns false on a failure.
 * *ratio gets rpc / TCP bandwidth (best; NAN if either failed). */
static bool bandwidth(int runs, double *ratio)
{
    static const enum transport order[] = {T_TCP, T_RPC, T_TLS, T_GW};
    bool ok = true;
    double tcp_gbs = 0, rpc_gbs = 0;
    *ratio = NAN;
    printf("\nbandwidth: one %zu-byte message rank 0 -> rank 1, then a 1-byte ack; the time "
           "from the send to the ack, best and median of %d; GB/s = 1e9 B/s\n"
           "  rpc: ag_link_send_take of a filled buffer, ag_link_recv returns a buffer the link "
           "allocated; tcp: write from and read into buffers touched before the clock\n",
           BW_BYTES, runs);
    printf("%-4s %8s %4s %9s %9s %9s %9s %9s %s\n", "link", "bytes", "runs", "best_s", "median_s",
           "best_GB/s", "med_GB/s", "vs_tcp", "check");
    for (size_t i = 0; i < AG_ARRAY_LEN(order); i++) {
        if (!with_gw && (order[i] == T_TLS || order[i] == T_GW))
            continue;
        struct figure fg;
        double secs[MAX_BW_RUNS] = {0}, gbs;
        memset(&fg, 0, sizeof(fg));
        fg.t = order[i];
        fg.size = BW_BYTES;
        fg.runs = runs;
        fg.tag0 = TAG_BW;
        fg.secs = secs;
        if (fg.t == T_TCP)
            figure_do(&fg, tcp_recv_main, tcp_send_main);
        else
            figure_do(&fg, bw_recv_main, bw_send_main);
        ok = print_bw_row(&fg, tcp_gbs, &gbs) && ok;
        if (fg.t == T_TCP)
            tcp_gbs = gbs;
        else if (fg.t == T_RPC)
            rpc_gbs = gbs;
        fflush(stdout);
    }
    if (tcp_gbs > 0 && rpc_gbs > 0)
        *ratio = rpc_gbs / tcp_gbs;
    return ok;
}

/* ---- the kernels ------------------------------------------------------------------ */

/* Runs the kernels of one field over one transport into r; false if the
 * endpoints or the sessions could not be made (err says why). */
static bool kernels_on(struct run *r, enum transport t, char *err, size_t cap)
{
    ag_link *l[2];
    if (!link_pair(t, l, err, cap))
        return false;
    bool ok = run_parties(r, l, "fed");
    if (!ok)
        snprintf(err, cap, "no memory for the sessions");
    ag_link_free(l[0]);
    ag_link_free(l[1]);
    return ok;
}

/* Whether every party on every run of row sent the model's bytes in the
 * model's rounds. */
static bool row_exact(const struct run *r, enum kernel k)
{
    const struct row *row = &r->rows[k];
    uint64_t mb, mr;
    model(r, k, &mb, &mr);
    for (unsigned p = 0; p < r->n; p++)
        for (int i = 0; i < row->runs; i++)
            if (row->bytes[p][i] != mb || row->rounds[p][i] != mr)
                return false;
    return true;
}

/* The kernels' table header; other: "rpc", or "gw" for the gateways'. */
static void print_kernel_header(const char *other)
{
    char b[16], m[16], d[16];
    snprintf(b, sizeof(b), "%s_best", other);
    snprintf(m, sizeof(m), "%s_med", other);
    snprintf(d, sizeof(d), "%s-mem_s", other);
    printf("%-5s %-6s %-6s %5s %9s %9s %9s %9s %10s %7s %-14s %11s %6s %-8s %s\n", "field",
           "kernel", "size", "runs", "mem_best", "mem_med", b, m, d, "ratio", "target",
           "bytes/party", "rounds", "cost", "check");
}

/* A row's state for the check column ("" when it ran and matched). */
static const char *row_state(const struct row *row)
{
    if (row->failed)
        return "FAILED";
    if (row->wrong)
        return "WRONG";
    return row->skipped ? "skipped" : "";
}

/* Prints kernel k's row from the two runs; returns false if a run failed,
 * was wrong or missed the model. *ratio gets rpc / mem (NAN if either did
 * not run). */
static bool print_kernel_row(const struct run *mem, const struct run *rpc, enum transport other,
                             enum kernel k, double *ratio)
{
    const enum transport ts[2] = {T_MEM, other};
    const struct row *rm = &mem->rows[k], *rr = &rpc->rows[k];
    const struct run *both[2] = {mem, rpc};
    char runs[16], check[32], target[24] = "-", bytes[24] = "-", rounds[16] = "-";
    *ratio = NAN;
    if (rm->runs == rr->runs)
        snprintf(runs, sizeof(runs), "%d", rm->runs);
    else
        snprintf(runs, sizeof(runs), "%d/%d", rm->runs, rr->runs);
    printf("%-5s %-6s %-6s %5s ", ag_field_name(mem->f), kernel_names[k], kernel_sizes[k], runs);
    double best[2] = {0}, med[2] = {0};
    bool ran[2];
    for (int i = 0; i < 2; i++) {
        const struct row *row = &both[i]->rows[k];
        ran[i] = !row->failed && !row->skipped && row->runs > 0;
        if (ran[i]) {
            best_median(row->secs, row->runs, &best[i], &med[i]);
            printf("%9.4f %9.4f ", best[i], med[i]);
        } else {
            printf("%9s %9s ", row->failed ? "failed" : "skipped", "-");
        }
    }
    bool exact = (!ran[0] || row_exact(mem, k)) && (!ran[1] || row_exact(rpc, k));
    if (ran[0] && ran[1]) {
        *ratio = best[1] / best[0];
        if (mem->f == AG_FM64 && k == K_MM1024 && other == T_RPC)
            snprintf(target, sizeof(target), "<=%.1fx %s", TARGET_MM,
                     *ratio <= TARGET_MM ? "met" : "missed");
        printf("%10.4f %6.2fx ", best[1] - best[0], *ratio);
    } else {
        printf("%10s %7s ", "-", "-");
    }
    const struct run *counted = ran[1] ? rpc : mem;
    if (ran[0] || ran[1]) {
        uint64_t maxr = 0;
        for (unsigned p = 0; p < counted->n; p++)
            maxr = AG_MAX(maxr, counted->rows[k].rounds[p][0]);
        snprintf(bytes, sizeof(bytes), "%" PRIu64, counted->rows[k].bytes[0][0]);
        snprintf(rounds, sizeof(rounds), "%" PRIu64, maxr);
    }
    if (!row_state(rm)[0] && !row_state(rr)[0])
        snprintf(check, sizeof(check), "ok");
    else
        snprintf(check, sizeof(check), "mem %s %s %s", row_state(rm)[0] ? row_state(rm) : "ok",
                 transport_names[other], row_state(rr)[0] ? row_state(rr) : "ok");
    printf("%-14s %11s %6s %-8s %s\n", target, bytes, rounds,
           ran[0] || ran[1] ? (exact ? "exact" : "MISMATCH") : "-", check);
    for (int i = 0; i < 2; i++)
        if (both[i]->rows[k].err[0])
            printf("      %s: %s\n", transport_names[ts[i]], both[i]->rows[k].err);
    if (!exact)
        for (int i = 0; i < 2; i++)
            for (unsigned p = 0; p < both[i]->n; p++)
                printf("      %s party %u: bytes %" PRIu64 " rounds %" PRIu64 " (first run)\n",
                       transport_names[ts[i]], p, both[i]->rows[k].bytes[p][0],
                       both[i]->rows[k].rounds[p][0]);
    return !rm->failed && !rr->failed && !rm->wrong && !rr->wrong && exact;
}

/* The kernels of one field over the links (mem, rpc, and gw unless
 * --no-gw), in two tables' rows: mem beside rpc (print_kernel_header
 * "rpc"), or mem beside gw when gw is true; false on any failure. */
static bool kernels(ag_field f, int runs, bool gw, double *mm_ratio)
{
    struct inputs in = {0};
    const enum transport ts[2] = {T_MEM, gw ? T_GW : T_RPC};
    struct run *r[2] = {ag_calloc(1, sizeof(*r[0])), ag_calloc(1, sizeof(*r[1]))};
    bool ok = r[0] && r[1] && inputs_init(&in, f);
    if (!ok) {
        printf("%-5s: no memory for the inputs\n", ag_field_name(f));
        goto free_runs;
    }
    for (int t = 0; t < 2 && ok; t++) {
        char err[256];
        r[t]->n = 2;
        r[t]->f = f;
        r[t]->runs = runs;
        r[t]->plain_runs = 1; /* only the reference: no plaintext column here */
        r[t]->mm1024_once_s = 0;
        r[t]->mm1024_skip_s = FM128_SKIP_S;
        r[t]->in = &in;
        if (!kernels_on(r[t], ts[t], err, sizeof(err))) {
            printf("%-5s %s: could not start the parties: %s\n", ag_field_name(f),
                   transport_names[ts[t]], err);
            ok = false;
        }
    }
    for (int k = 0; k < K_COUNT && ok; k++) {
        double ratio;
        ok = print_kernel_row(r[0], r[1], ts[1], (enum kernel)k, &ratio) && ok;
        if (f == AG_FM64 && k == K_MM1024 && !gw)
            *mm_ratio = ratio;
    }
    fflush(stdout);
free_runs:
    inputs_cleanup(&in);
    ag_free(r[0]);
    ag_free(r[1]);
    return ok;
}

/* ---- main ------------------------------------------------------------------------- */

static void print_machine(int runs)
{
    char cpu[256];
    machine_cpu(cpu, sizeof(cpu));
    printf("fed: the gRPC link (HTTP/2 over loopback TCP, every party in this process) beside "
           "the in-memory link, 2 parties, one thread per party\n");
    printf("machine: nproc=%ld cpu=\"%s\"; build: %s __VERSION__=\"%s\" (-O level unknown), "
           "C%ld\n",
           sysconf(_SC_NPROCESSORS_ONLN), cpu, COMPILER, __VERSION__,
           (long)__STDC_VERSION__ / 100 % 100);
    printf("targets (the issue's, never pass/fail): rpc within %.1fx of mem on FM64 matmul "
           "1024^3; a small-message round trip over rpc under %.0f us (median)\n",
           TARGET_MM, TARGET_RTT_US);
    printf("kernels: mem_best, mem_med, rpc_best, rpc_med: wall seconds between barriers on "
           "rank 0, best and median of %d runs (FM128 1024^3: 1); rpc-mem_s and ratio from "
           "the best times; bytes/party, rounds: from the link counters, cost: against "
           "argot/mpc.h's model on both links; check: the opened results against plaintext\n",
           runs);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: fed [--runs N] [--trips N] [--bw-runs N] "
            "[--field fm64|fm128|both] [--only rtt|bw|kernels] [--no-gw]  (runs and bw-runs "
            "1..%d, trips 1..%d)\n",
            MAX_RUNS, MAX_TRIPS);
    return 2;
}

/* A yes/no against a target, or "n/a" when the figure is missing. */
static const char *verdict(double v, bool met)
{
    return isnan(v) ? "n/a" : met ? "met" : "missed";
}

/* For printing a figure that was not measured (its verdict says n/a). */
static double nan_to_zero(double v)
{
    return isnan(v) ? 0 : v;
}

int main(int argc, char **argv)
{
    int runs = 3, trips = DEFAULT_TRIPS, bw_runs = 5;
    bool fm64 = true, fm128 = true;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--trips") == 0 && i + 1 < argc) {
            trips = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--bw-runs") == 0 && i + 1 < argc) {
            bw_runs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
            if (strcmp(only, "rtt") != 0 && strcmp(only, "bw") != 0 && strcmp(only, "kernels") != 0)
                return usage();
        } else if (strcmp(argv[i], "--no-gw") == 0) {
            with_gw = false;
        } else if (strcmp(argv[i], "--field") == 0 && i + 1 < argc) {
            const char *f = argv[++i];
            fm64 = strcmp(f, "fm64") == 0 || strcmp(f, "both") == 0;
            fm128 = strcmp(f, "fm128") == 0 || strcmp(f, "both") == 0;
            if (!fm64 && !fm128)
                return usage();
        } else {
            return usage();
        }
    }
    if (runs < 1 || runs > MAX_RUNS || trips < 1 || trips > MAX_TRIPS || bw_runs < 1 ||
        bw_runs > MAX_BW_RUNS)
        return usage();
    uint64_t t_start = ag_now_ns();
    print_machine(runs);
    print_load("at start");
    double rtt_us = NAN, bw_ratio = NAN, mm_ratio = NAN;
    bool ok = true;
    if (!only || strcmp(only, "rtt") == 0) {
        ok = round_trips(trips, &rtt_us) && ok;
        print_load("after the round trips");
    }
    if (!only || strcmp(only, "bw") == 0) {
        ok = bandwidth(bw_runs, &bw_ratio) && ok;
        print_load("after the bandwidth");
    }
    if (!only || strcmp(only, "kernels") == 0) {
        printf("\nkernels: semi2k, 2 parties, the kernels of bench/mpc over each link\n");
        print_kernel_header("rpc");
        if (fm64)
            ok = kernels(AG_FM64, runs, false, &mm_ratio) && ok;
        if (fm128)
            ok = kernels(AG_FM128, runs, false, &mm_ratio) && ok;
        if (with_gw) {
            printf("\nkernels through two gateways (gw: link -> alice's gateway -> bob's "
                   "gateway -> link, mutual TLS on each hop) beside the in-memory link\n");
            print_kernel_header("gw");
            if (fm64)
                ok = kernels(AG_FM64, runs, true, &mm_ratio) && ok;
            if (fm128)
                ok = kernels(AG_FM128, runs, true, &mm_ratio) && ok;
        }
    }
    printf("\n");
    print_load("at the end");
    printf("targets: FM64 matmul 1024^3 rpc/mem %.2fx (<=%.1fx: %s); small-message round "
           "trip over rpc, worst median %.1f us (<%.0f us: %s); 64 MiB over rpc at %.2fx "
           "raw TCP's bandwidth (no target)\n",
           nan_to_zero(mm_ratio), TARGET_MM, verdict(mm_ratio, mm_ratio <= TARGET_MM),
           nan_to_zero(rtt_us), TARGET_RTT_US, verdict(rtt_us, rtt_us < TARGET_RTT_US),
           nan_to_zero(bw_ratio));
    gw_env_down();
    printf("total: %.1f s; %s\n", (double)(ag_now_ns() - t_start) / 1e9,
           ok ? "every link figure and kernel ran, matched what was sent, the plaintext and "
                "the cost model"
              : "FAILURES above (FAILED, WRONG or MISMATCH)");
    return ok ? 0 : 1;
}
