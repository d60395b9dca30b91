/*
 * mesh: `argot mesh` (the party gateway, src/mesh) as a gRPC proxy against
 * haproxy, nginx (grpc_pass) and nghttpx, in one run on this machine, over
 * loopback TCP, HTTP/2 without TLS (h2c prior knowledge), one table with
 * ratios.
 *
 * Hops, each in front of the same backend: direct (no proxy), argot mesh,
 * haproxy (mode http, proto h2 both sides, nbthread 1), nginx (listen
 * http2, grpc_pass to an upstream with keepalive, worker_processes 1) and
 * nghttpx (backend proto=h2, --workers=1). The backend is argot's interop
 * server (tools/interop/server.c: grpc.testing.TestService). Every
 * configuration is generated into a temporary directory, removed at the
 * end; each proxy is started fresh for every run, on a free port.
 *
 * The load is h2load (nghttp2-client), gRPC requests as POST bodies of
 * length-prefixed messages, built here by hand (protobuf wire format):
 *   unary    UnaryCall: a SimpleRequest with a 64-byte payload that asks
 *            for a 64-byte response payload.
 *   stream   FullDuplexCall: 64 StreamingOutputCallRequests in one request
 *            body, each carrying 1 KiB and asking for 1 KiB back, so one
 *            call moves 64 KiB each way in 64 messages per direction.
 * Requests go to http://backend:PORT with --connect-to, so :authority is
 * "backend:PORT"; argot mesh routes on it (port stripped) through its fs
 * namer to the file disco/backend, which names the backend; the other
 * proxies ignore it.
 *
 * Figures, per hop and per run:
 *   latency  --trips (default 5000) unary calls after 500 of warm-up,
 *            one connection, one stream (-c1 -m1); p50 and p99 of h2load's
 *            per-request times (--log-file: request start to end of the
 *            response), microseconds. "Added" is the hop's percentile less
 *            direct's from the same run.
 *   max      unary calls as fast as h2load gets answers, --conns
 *            connections (default 4) of --streams streams (default 16),
 *            for --secs seconds (default 3) after 0.5 s of warm-up:
 *            h2load's req/s; the proxy's CPU (user + system, all its
 *            processes) as a percentage of one core over the load, and
 *            req/s per proxy core: req/s over that fraction, what one
 *            core of the proxy would carry at the CPU it spent per call.
 *   stream   FullDuplexCall the same way on 2 connections of 2 streams:
 *            calls/s, shown as MB/s of payload (both directions, 1e6 B).
 *   memory   VmRSS of the proxy (summed over its processes: nginx and
 *            nghttpx run a master and a worker, whose shared pages then
 *            count twice), idle after start-up and one checked call of
 *            each kind and 300 ms, and the largest of the samples taken
 *            every 100 ms under the max and stream loads.
 * Pinning (unless --no-pin, and only with 2 or more cores): every proxy
 * runs on core 1, h2load and the backend on core 0, for the max and
 * stream loads; the latency run is unpinned (the proxy and the backend
 * are let loose for it), since a hop pinned across cores adds two
 * cross-core wake-ups to every call, which is the machine, not the proxy.
 * On a 2-core machine core 0 then carries both the load generator and the
 * backend, and may bound the max figures before the proxy does: the CPU
 * column says how busy the proxy was, and the req/s target is then also
 * shown per proxy core.
 *
 * Checks: before its figures, every hop serves one real UnaryCall with the
 * same request bytes and one FullDuplexCall of the same 64 messages
 * through python3's grpcio (a gRPC client of its own, authority
 * "backend"), which checks the status (OK) and every response's length;
 * every h2load run must end with no failed request, and its response
 * bytes must match the responses' size (exactly, for the latency run,
 * which also fails after 5 s without a byte: -N5s).
 * A hop that cannot start (argot mesh not built yet, a peer not
 * installed) shows "not available" and why.
 *
 * Every figure is taken --runs times (default 3), the hops in a rotated
 * order in each run; the table shows the medians, the spread lines
 * min..max. The machine has few cores and may be shared: the load average
 * is printed at the start and at the end. --quick: 1,000 trips, 1 s loads,
 * for a smoke run.
 *
 * Targets (the issue's; a report, never the exit status): argot mesh's
 * added p50 at most 50 us, its max req/s at least 1.2x haproxy's, its idle
 * RSS at most 5 MB (taken as 5,120 KiB).
 *
 * Exit status: 1 if direct could not be measured (no backend, no h2load)
 * or a hop that started failed a check; 0 otherwise, also when a hop is
 * not available. Timings never decide it.
 *
 * Usage: mesh [--runs N] [--secs S] [--trips N] [--conns N] [--streams N]
 *             [--quick] [--no-pin] [--argot PATH] [--backend PATH]
 *             [--h2load PATH] [--python PATH]
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "argot/base.h"
#include "load.h"

#define UNARY_SIZE     64   /* request and response payload bytes of a UnaryCall */
#define STREAM_MSGS    64   /* FullDuplexCall messages each way per call */
#define STREAM_SIZE    1024 /* payload bytes of each of them */
#define STREAM_CONNS   2
#define STREAM_STREAMS 2
#define LAT_WARM       500 /* unary calls before the timed ones */
#define WARM_MS        500 /* h2load --warm-up-time of the loads */
#define MAX_RUNS       20
#define MAX_PIDS       64 /* processes of one proxy */
#define LOAD_CORE      0
#define PROXY_CORE     1
#define START_MS       10000 /* a server has this long to listen */
#define SETTLE_MS      300
#define SAMPLE_MS      100
#define AUTHORITY      "backend"
#define M_UNARY        "/grpc.testing.TestService/UnaryCall"
#define M_DUPLEX       "/grpc.testing.TestService/FullDuplexCall"

#define TARGET_ADDED_P50 50.0 /* us, at most */
#define TARGET_RPS       1.2  /* argot mesh req/s / haproxy req/s, at least */
#define TARGET_RSS_KIB   5120 /* KiB idle, at most */

enum { H_DIRECT, H_MESH, H_HAPROXY, H_NGINX, H_NGHTTPX, H_N };
static const char *const hop_names[H_N] = {"direct", "argot mesh", "haproxy", "nginx", "nghttpx"};

/* The figures of one hop in one run. */
enum { F_P50, F_P99, F_ADD50, F_ADD99, F_RPS, F_CPU, F_STREAM, F_RSS_IDLE, F_RSS_LOAD, F_N };

struct opts {
    int runs;
    double secs;
    int trips;
    int conns;
    int streams;
    bool quick;
    bool pin;
    const char *argot;
    const char *backend;
    const char *h2load;
    const char *python;
};

/* One server process (the backend or a proxy) and what it runs in. */
struct proc {
    pid_t pid; /* its process group too; 0 when not running */
    int port;
    pid_t tree[MAX_PIDS]; /* it and its children, found once it is idle */
    int ntree;
};

struct bench {
    struct opts o;
    char dir[256];          /* the temporary directory */
    uint8_t unary_req[256]; /* the UnaryCall request message */
    size_t unary_req_len;
    size_t unary_resp_len;    /* bytes of its response message */
    uint8_t stream_req[2048]; /* one FullDuplexCall request message */
    size_t stream_req_len;
    size_t stream_resp_len;
    struct proc backend;
    bool unpinned;          /* the latency run: nothing pinned */
    struct proc hop[H_N];
    char why[H_N][320];   /* why a hop is not available or failed */
    bool failed[H_N];     /* started but failed a check */
    int checked[H_N];     /* runs in which python3 grpcio saw correct answers */
    int started[H_N];     /* runs in which the hop started */
    char unverified[200]; /* why python3 could not check, if so */
    double fig[H_N][F_N][MAX_RUNS];
};

/* Children alive, for the signal handler (process group ids). */
static volatile pid_t live[H_N + 2];

/* ---- small things ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p% of them at or below
 * it (sorts v). */
static double percentile(double *v, size_t n, double p)
{
    if (!n)
        return NAN;
    qsort(v, n, sizeof(*v), cmp_double);
    size_t k = (size_t)ceil(p / 100.0 * (double)n);
    return v[k ? k - 1 : 0];
}

/* The median of the non-NaN values of v[0..n) (NAN if none); min and max
 * too. */
static double median(const double *v, int n, double *lo, double *hi)
{
    double s[MAX_RUNS];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]))
            s[k++] = v[i];
    *lo = *hi = NAN;
    if (!k)
        return NAN;
    qsort(s, (size_t)k, sizeof(*s), cmp_double);
    *lo = s[0];
    *hi = s[k - 1];
    return k % 2 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
}

static void path_in(const struct bench *b, char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", b->dir, name);
}

static bool write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* The whole file as a string (ag_malloc; NULL if unreadable). */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *s = ag_malloc(cap);
    size_t n;
    while (s && (n = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *t = ag_realloc(s, cap * 2);
            if (!t)
                ag_free(s);
            s = t;
            cap *= 2;
        }
    }
    fclose(f);
    if (s)
        s[len] = '\0';
    return s;
}

/* The first non-empty line of a file, for error messages. */
static void first_line(const char *path, char *out, size_t cap)
{
    char *s = read_text(path);
    out[0] = '\0';
    if (!s)
        return;
    const char *p = s;
    while (*p == '\n' || *p == '\r')
        p++;
    size_t len = strcspn(p, "\r\n");
    snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), p);
    ag_free(s);
}

/* A TCP port nobody listens on now (bound and released). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* ---- the requests (protobuf wire format, by hand) ---------------------------- */

struct pb {
    uint8_t b[2048];
    size_t n;
};

static void pb_varint(struct pb *p, uint64_t v)
{
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        if (p->n < sizeof(p->b))
            p->b[p->n++] = (uint8_t)(byte | (v ? 0x80 : 0));
    } while (v);
}

/* Field f as a varint. */
static void pb_uint(struct pb *p, unsigned f, uint64_t v)
{
    pb_varint(p, (uint64_t)f << 3);
    pb_varint(p, v);
}

/* Field f as length-delimited bytes. */
static void pb_bytes(struct pb *p, unsigned f, const uint8_t *d, size_t n)
{
    pb_varint(p, (uint64_t)f << 3 | 2);
    pb_varint(p, n);
    for (size_t i = 0; i < n && p->n < sizeof(p->b); i++)
        p->b[p->n++] = d[i];
}

/* grpc.testing.Payload {body: n bytes} (type COMPRESSABLE, the proto3
 * default, is not written): zeros as the server sends them, or a pattern. */
static void pb_payload(struct pb *out, size_t n, bool zeros)
{
    uint8_t body[STREAM_SIZE > UNARY_SIZE ? STREAM_SIZE : UNARY_SIZE];
    for (size_t i = 0; i < n; i++)
        body[i] = zeros ? 0 : (uint8_t)((i * 131 + 7) & 0xff);
    out->n = 0;
    pb_bytes(out, 2, body, n);
}

/* The request messages and the sizes of their responses. */
static void build_requests(struct bench *b)
{
    struct pb p, m;
    /* SimpleRequest {response_size: 2, payload: 3} */
    pb_payload(&p, UNARY_SIZE, false);
    m.n = 0;
    pb_uint(&m, 2, UNARY_SIZE);
    pb_bytes(&m, 3, p.b, p.n);
    memcpy(b->unary_req, m.b, m.n);
    b->unary_req_len = m.n;
    /* SimpleResponse {payload: 1} */
    pb_payload(&p, UNARY_SIZE, true);
    m.n = 0;
    pb_bytes(&m, 1, p.b, p.n);
    b->unary_resp_len = m.n;
    /* StreamingOutputCallRequest {response_parameters: 2 {size: 1}, payload: 3} */
    struct pb rp = {.n = 0};
    pb_uint(&rp, 1, STREAM_SIZE);
    pb_payload(&p, STREAM_SIZE, false);
    m.n = 0;
    pb_bytes(&m, 2, rp.b, rp.n);
    pb_bytes(&m, 3, p.b, p.n);
    memcpy(b->stream_req, m.b, m.n);
    b->stream_req_len = m.n;
    /* StreamingOutputCallResponse {payload: 1} */
    pb_payload(&p, STREAM_SIZE, true);
    m.n = 0;
    pb_bytes(&m, 1, p.b, p.n);
    b->stream_resp_len = m.n;
}

/* Appends msg as a gRPC length-prefixed message (uncompressed) to f. */
static bool put_frame(FILE *f, const uint8_t *msg, size_t len)
{
    uint8_t h[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                    (uint8_t)len};
    return fwrite(h, 1, 5, f) == 5 && fwrite(msg, 1, len, f) == len;
}

static bool write_bodies(const struct bench *b)
{
    char path[320];
    path_in(b, path, sizeof(path), "unary.bin");
    FILE *f = fopen(path, "wb");
    bool ok = f && put_frame(f, b->unary_req, b->unary_req_len);
    if (f)
        ok = fclose(f) == 0 && ok;
    path_in(b, path, sizeof(path), "stream.bin");
    f = ok ? fopen(path, "wb") : NULL;
    ok = ok && f;
    for (int i = 0; ok && i < STREAM_MSGS; i++)
        ok = put_frame(f, b->stream_req, b->stream_req_len);
    if (f)
        ok = fclose(f) == 0 && ok;
    return ok;
}

/* The check, a python3 grpcio client: argv target authority unary-hex
 * unary-resp-len stream-hex count stream-resp-len. Prints "ok" (exit 0),
 * "error ..." (exit 1), or says grpcio is missing (exit 3). */
static bool write_checker(const struct bench *b)
{
    char path[320];
    path_in(b, path, sizeof(path), "check.py");
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(
        f,
        "import sys\n"
        "try:\n"
        "    import grpc\n"
        "except ImportError:\n"
        "    print('python3 has no grpc module (python3-grpcio)')\n"
        "    sys.exit(3)\n"
        "target, auth = sys.argv[1], sys.argv[2]\n"
        "ureq, ulen = bytes.fromhex(sys.argv[3]), int(sys.argv[4])\n"
        "sreq, count, slen = bytes.fromhex(sys.argv[5]), int(sys.argv[6]), "
        "int(sys.argv[7])\n"
        "opts = [('grpc.default_authority', auth), ('grpc.enable_http_proxy', 0)]\n"
        "try:\n"
        "    with grpc.insecure_channel(target, options=opts) as ch:\n"
        "        r = ch.unary_unary('%s')(ureq, timeout=20)\n"
        "        if len(r) != ulen:\n"
        "            print('error UnaryCall: a %%d-byte response, want %%d' %% (len(r), ulen))\n"
        "            sys.exit(1)\n"
        "        got = [len(m) for m in ch.stream_stream('%s')(iter([sreq] * count), "
        "timeout=20)]\n"
        "        if got != [slen] * count:\n"
        "            print('error FullDuplexCall: %%d responses (want %%d of %%d bytes)' "
        "%% (len(got), count, slen))\n"
        "            sys.exit(1)\n"
        "except grpc.RpcError as e:\n"
        "    print('error %%s: %%s' %% (e.code().name, e.details()))\n"
        "    sys.exit(1)\n"
        "print('ok')\n",
        M_UNARY, M_DUPLEX);
    return fclose(f) == 0;
}

/* ---- processes ----------------------------------------------------------------- */

static void on_signal(int sig)
{
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
        if (live[i] > 0)
            kill(-live[i], SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void track(pid_t pid, bool add)
{
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        if (add ? live[i] == 0 : live[i] == pid) {
            live[i] = add ? pid : 0;
            return;
        }
    }
}

/* Starts argv (searched in PATH) in a process group of its own, stdin on
 * /dev/null, stdout and stderr into the files out and err (err may equal
 * out), on core cpu (-1: anywhere). Its pid, or -1 (msg set). */
static pid_t spawn(char *const argv[], const char *out, const char *err, int cpu, char *msg,
                   size_t cap)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(msg, cap, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            sched_setaffinity(0, sizeof(set), &set);
        }
        int fd0 = open("/dev/null", O_RDONLY);
        int fd1 = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fd2 = strcmp(out, err) ? open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644) : fd1;
        if (fd0 < 0 || fd1 < 0 || fd2 < 0 || dup2(fd0, 0) < 0 || dup2(fd1, 1) < 0 ||
            dup2(fd2, 2) < 0)
            _exit(127);
        execvp(argv[0], argv);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

/* Stops a process group started by spawn: SIGTERM to the group, SIGKILL
 * after 5 s; also to members left once the leader is gone. */
static void stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(-pid, SIGTERM);
    int st;
    uint64_t end = ag_now_ms() + 5000;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (ag_now_ms() >= end) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        ag_sleep_ms(10);
    }
    if (kill(-pid, 0) == 0) {
        ag_sleep_ms(100);
        kill(-pid, SIGKILL);
    }
    track(pid, false);
}

/* Whether pid has exited (reaped then; *status its exit status or -1). */
static bool exited(pid_t pid, int *status)
{
    int st;
    if (waitpid(pid, &st, WNOHANG) != pid)
        return false;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return true;
}

/* Runs argv to its end (at most timeout_ms), its stdout into out and its
 * stderr into err (which may be out); its exit status, or -1 when it
 * failed to start, died or was killed. */
static int run_wait(char *const argv[], const char *out, const char *err, int cpu, int timeout_ms)
{
    char msg[128];
    pid_t pid = spawn(argv, out, err, cpu, msg, sizeof(msg));
    if (pid < 0)
        return -1;
    track(pid, true);
    uint64_t end = ag_now_ms() + (uint64_t)timeout_ms;
    int st;
    while (!exited(pid, &st)) {
        if (ag_now_ms() >= end) {
            stop(pid);
            return -1;
        }
        ag_sleep_ms(5);
    }
    track(pid, false);
    return st;
}

/* ---- /proc ---------------------------------------------------------------------- */

/* Fills p->tree with p's process and its descendants. */
static void find_tree(struct proc *p)
{
    enum { CAP = 8192 };
    static pid_t pids[CAP], ppids[CAP];
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && n < CAP && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = '\0';
        const char *rp = strrchr(buf, ')');
        int ppid;
        if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1) {
            pids[n] = (pid_t)atoi(e->d_name);
            ppids[n++] = ppid;
        }
    }
    if (d)
        closedir(d);
    p->tree[0] = p->pid;
    p->ntree = 1;
    for (int k = 0; k < p->ntree; k++)
        for (int i = 0; i < n && p->ntree < MAX_PIDS; i++)
            if (ppids[i] == p->tree[k])
                p->tree[p->ntree++] = pids[i];
}

/* VmRSS summed over p's processes, KiB; -1 if unreadable. */
static long rss_kib(const struct proc *p)
{
    long sum = 0;
    bool any = false;
    for (int k = 0; k < p->ntree; k++) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)p->tree[k]);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof(line), f)) {
            if (strncmp(line, "VmRSS:", 6) == 0) {
                sum += strtol(line + 6, NULL, 10);
                any = true;
            }
        }
        fclose(f);
    }
    return any ? sum : -1;
}

/* User and system CPU time of p's processes, seconds. */
static double cpu_secs(const struct proc *p)
{
    double ticks = 0;
    for (int k = 0; k < p->ntree; k++) {
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)p->tree[k]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = '\0';
        const char *rp = strrchr(buf, ')');
        unsigned long ut, st;
        if (rp &&
            sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            ticks += (double)ut + (double)st;
    }
    return ticks / (double)sysconf(_SC_CLK_TCK);
}

/* ---- servers ------------------------------------------------------------------------ */

/* Waits until p listens on p->port (or, when prefix is given, until the
 * file out has a line starting with it, which ends with ":PORT" or
 * " PORT"). False (why set from the process's output) if it exited or
 * took too long. */
static bool wait_ready(struct proc *p, const char *out, const char *err, const char *prefix,
                       char *why, size_t cap)
{
    uint64_t end = ag_now_ms() + START_MS;
    for (;;) {
        int st;
        if (exited(p->pid, &st)) {
            char line[256];
            first_line(err, line, sizeof(line));
            if (!line[0])
                first_line(out, line, sizeof(line));
            snprintf(why, cap, "exited with status %d%s%s", st, line[0] ? ": " : "", line);
            track(p->pid, false);
            p->pid = 0;
            return false;
        }
        if (prefix) {
            char *s = read_text(out);
            const char *l = s;
            while (l && *l && p->port <= 0) {
                size_t len = strcspn(l, "\n");
                if (strncmp(l, prefix, strlen(prefix)) == 0 && l[len] == '\n') {
                    const char *q = l + len;
                    while (q > l && q[-1] >= '0' && q[-1] <= '9')
                        q--;
                    p->port = atoi(q);
                }
                l += len + (l[len] ? 1 : 0);
            }
            ag_free(s);
            if (p->port > 0)
                return true;
        } else if (port_open(p->port)) {
            return true;
        }
        if (ag_now_ms() >= end) {
            snprintf(why, cap, "not listening after %d s", START_MS / 1000);
            stop(p->pid);
            p->pid = 0;
            return false;
        }
        ag_sleep_ms(20);
    }
}

/* Starts argv as server `name` (output in name.out and name.err). */
static bool start_server(struct bench *b, struct proc *p, const char *name, char *const argv[],
                         int cpu, const char *prefix, char *why, size_t cap)
{
    char out[320], err[320], file[64];
    snprintf(file, sizeof(file), "%s.out", name);
    path_in(b, out, sizeof(out), file);
    snprintf(file, sizeof(file), "%s.err", name);
    path_in(b, err, sizeof(err), file);
    /* not the last run's lines */
    unlink(out);
    unlink(err);
    p->pid = spawn(argv, out, err, b->o.pin ? cpu : -1, why, cap);
    if (p->pid < 0) {
        p->pid = 0;
        return false;
    }
    track(p->pid, true);
    p->tree[0] = p->pid;
    p->ntree = 1;
    return wait_ready(p, out, err, prefix, why, cap);
}

static bool start_backend(struct bench *b, char *why, size_t cap)
{
    char path[4096], port_arg[] = "--port=0";
    snprintf(path, sizeof(path), "%s", b->o.backend);
    char *argv[] = {path, port_arg, NULL};
    b->backend.port = 0;
    return start_server(b, &b->backend, "backend", argv, LOAD_CORE, "listening ", why, cap);
}

static bool start_mesh(struct bench *b, struct proc *p, char *why, size_t cap)
{
    char dir[320], path[400];
    path_in(b, dir, sizeof(dir), "mesh");
    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/disco", dir);
    mkdir(path, 0755);
    char text[1024];
    int n = snprintf(text, sizeof(text), "127.0.0.1 %d\n", b->backend.port);
    snprintf(path, sizeof(path), "%s/disco/%s", dir, AUTHORITY);
    bool ok = write_file(path, text, (size_t)n);
    n = snprintf(text, sizeof(text),
                 "admin: {ip: 127.0.0.1, port: 0}\n"
                 "namers:\n"
                 "  - {kind: fs, rootDir: disco}\n"
                 "routers:\n"
                 "  - protocol: h2\n"
                 "    label: grpc\n"
                 "    dtab: |\n"
                 "      /svc => /#/fs;\n"
                 "    servers: [{ip: 127.0.0.1, port: 0}]\n");
    snprintf(path, sizeof(path), "%s/mesh.yaml", dir);
    if (!ok || !write_file(path, text, (size_t)n)) {
        snprintf(why, cap, "cannot write %.200s", path);
        return false;
    }
    if (access(b->o.argot, X_OK) != 0) {
        snprintf(why, cap, "%s: %s", b->o.argot, strerror(errno));
        return false;
    }
    char bin[4096], sub[] = "mesh", flag[] = "--config";
    snprintf(bin, sizeof(bin), "%s", b->o.argot);
    char *argv[] = {bin, sub, flag, path, NULL};
    p->port = 0;
    return start_server(b, p, "mesh", argv, PROXY_CORE, "mesh router grpc listening on ", why, cap);
}

static bool start_haproxy(struct bench *b, struct proc *p, char *why, size_t cap)
{
    char path[320], text[1024];
    p->port = free_port();
    int n = snprintf(text, sizeof(text),
                     "global\n"
                     "    nbthread 1\n"
                     "    maxconn 1000\n"
                     "defaults\n"
                     "    mode http\n"
                     "    timeout connect 5s\n"
                     "    timeout client 60s\n"
                     "    timeout server 60s\n"
                     "frontend fe\n"
                     "    bind 127.0.0.1:%d proto h2\n"
                     "    default_backend be\n"
                     "backend be\n"
                     "    server s1 127.0.0.1:%d proto h2\n",
                     p->port, b->backend.port);
    path_in(b, path, sizeof(path), "haproxy.cfg");
    if (!write_file(path, text, (size_t)n)) {
        snprintf(why, cap, "cannot write %.200s", path);
        return false;
    }
    char bin[] = "haproxy", f[] = "-f", db[] = "-db";
    char *argv[] = {bin, f, path, db, NULL};
    return start_server(b, p, "haproxy", argv, PROXY_CORE, NULL, why, cap);
}

static bool start_nginx(struct bench *b, struct proc *p, char *why, size_t cap)
{
    char dir[320], conf[400], elog[400], text[2048];
    path_in(b, dir, sizeof(dir), "nginx");
    mkdir(dir, 0755);
    snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
    snprintf(elog, sizeof(elog), "%s/error.log", dir);
    p->port = free_port();
    /* as root, the workers would run as nobody, who cannot enter the
     * temporary directory: they stay root (the current user) */
    int n = snprintf(text, sizeof(text),
                     "%s"
                     "worker_processes 1;\n"
                     "daemon off;\n"
                     "pid %s/nginx.pid;\n"
                     "error_log %s warn;\n"
                     "events { worker_connections 1024; }\n"
                     "http {\n"
                     "    access_log off;\n"
                     "    client_body_temp_path %s/body;\n"
                     "    proxy_temp_path %s/proxy;\n"
                     "    fastcgi_temp_path %s/fastcgi;\n"
                     "    uwsgi_temp_path %s/uwsgi;\n"
                     "    scgi_temp_path %s/scgi;\n"
                     "    keepalive_requests 1000000000;\n"
                     "    upstream be {\n"
                     "        server 127.0.0.1:%d;\n"
                     "        keepalive 64;\n"
                     "        keepalive_requests 1000000000;\n"
                     "    }\n"
                     "    server {\n"
                     "        listen 127.0.0.1:%d http2;\n"
                     "        location / { grpc_pass grpc://be; }\n"
                     "    }\n"
                     "}\n",
                     geteuid() == 0 ? "user root;\n" : "", dir, elog, dir, dir, dir, dir, dir,
                     b->backend.port, p->port);
    if (n >= (int)sizeof(text) || !write_file(conf, text, (size_t)n)) {
        snprintf(why, cap, "cannot write %.200s", conf);
        return false;
    }
    char bin[] = "nginx", fp[] = "-p", fc[] = "-c", fe[] = "-e";
    char *argv[] = {bin, fp, dir, fc, conf, fe, elog, NULL};
    if (!start_server(b, p, "nginx", argv, PROXY_CORE, NULL, why, cap)) {
        char line[256];
        first_line(elog, line, sizeof(line));
        if (line[0] && strlen(why) + strlen(line) + 3 < cap)
            snprintf(why + strlen(why), cap - strlen(why), "; %s", line);
        return false;
    }
    return true;
}

static bool start_nghttpx(struct bench *b, struct proc *p, char *why, size_t cap)
{
    char fe[64], be[64], elog[400];
    p->port = free_port();
    snprintf(fe, sizeof(fe), "--frontend=127.0.0.1,%d;no-tls", p->port);
    snprintf(be, sizeof(be), "--backend=127.0.0.1,%d;;proto=h2", b->backend.port);
    char path[320];
    path_in(b, path, sizeof(path), "nghttpx.log");
    snprintf(elog, sizeof(elog), "--errorlog-file=%s", path);
    char bin[] = "nghttpx", conf[] = "--conf=/dev/null", workers[] = "--workers=1";
    char *argv[] = {bin, conf, workers, fe, be, elog, NULL};
    return start_server(b, p, "nghttpx", argv, PROXY_CORE, NULL, why, cap);
}

static bool start_hop(struct bench *b, int h, char *why, size_t cap)
{
    struct proc *p = &b->hop[h];
    memset(p, 0, sizeof(*p));
    switch (h) {
    case H_DIRECT:
        p->port = b->backend.port;
        return true;
    case H_MESH:
        return start_mesh(b, p, why, cap);
    case H_HAPROXY:
        return start_haproxy(b, p, why, cap);
    case H_NGINX:
        return start_nginx(b, p, why, cap);
    default:
        return start_nghttpx(b, p, why, cap);
    }
}

/* ---- checks and loads -------------------------------------------------------------- */

static void hex(const uint8_t *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/* One UnaryCall and one FullDuplexCall through the hop by python3 grpcio.
 * 1 checked, 0 failed (err set), -1 could not check (err says why). */
static int verify(struct bench *b, int port, char *err, size_t cap)
{
    char script[320], out[320], errf[320], target[32], ulen[16], slen[16], count[16];
    char uhex[2 * sizeof(b->unary_req) + 1], shex[2 * sizeof(b->stream_req) + 1];
    path_in(b, script, sizeof(script), "check.py");
    path_in(b, out, sizeof(out), "check.out");
    path_in(b, errf, sizeof(errf), "check.err");
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    hex(b->unary_req, b->unary_req_len, uhex);
    hex(b->stream_req, b->stream_req_len, shex);
    snprintf(ulen, sizeof(ulen), "%zu", b->unary_resp_len);
    snprintf(slen, sizeof(slen), "%zu", b->stream_resp_len);
    snprintf(count, sizeof(count), "%d", STREAM_MSGS);
    char py[4096], auth[] = AUTHORITY;
    snprintf(py, sizeof(py), "%s", b->o.python);
    char *argv[] = {py, script, target, auth, uhex, ulen, shex, count, slen, NULL};
    int st = run_wait(argv, out, errf, -1, 60000);
    char line[256];
    first_line(out, line, sizeof(line));
    if (!line[0])
        first_line(errf, line, sizeof(line));
    if (st == 0 && strcmp(line, "ok") == 0)
        return 1;
    if (st == 3 || st == 127) {
        snprintf(err, cap, "%s", line[0] ? line : "cannot run python3");
        return -1;
    }
    snprintf(err, cap, "python3 grpcio check: %s", line[0] ? line : "no answer");
    return 0;
}

/* What one h2load run gave. */
struct h2res {
    double rps;
    long done;
    long succeeded;
    long failed;
    unsigned long long data; /* response body bytes, warm-up included */
    double cpu;              /* the proxy's CPU, fraction of one core */
    long rss_max;            /* KiB, the largest sample */
};

/* Reads h2load's summary; false if a line is missing. */
static bool parse_h2load(const char *text, struct h2res *r)
{
    const char *p = strstr(text, "finished in ");
    const char *q = p ? strstr(p, ", ") : NULL;
    if (!q)
        return false;
    r->rps = strtod(q + 2, NULL);
    p = strstr(text, "\nrequests: ");
    long total, started, errored;
    if (!p || sscanf(p,
                     "\nrequests: %ld total, %ld started, %ld done, %ld succeeded, %ld failed, "
                     "%ld errored",
                     &total, &started, &r->done, &r->succeeded, &r->failed, &errored) != 6)
        return false;
    p = strstr(text, "\ntraffic: ");
    q = p ? strstr(p + 1, " data\n") : NULL;
    const char *paren = q;
    while (paren && paren > p && *paren != '(')
        paren--;
    if (!paren || paren <= p)
        return false;
    r->data = strtoull(paren + 1, NULL, 10);
    return true;
}

/* The p50 and p99 of h2load's per-request log after the first warm rows
 * (in microseconds); false on a failed request or a short log. */
static bool log_percentiles(const char *path, int warm, int n, double *p50, double *p99, char *err,
                            size_t cap)
{
    FILE *f = fopen(path, "r");
    double *us = ag_calloc((size_t)n, sizeof(*us));
    bool ok = f && us;
    int row = 0, k = 0;
    long long start, dur;
    int status;
    while (ok && fscanf(f, "%lld %d %lld", &start, &status, &dur) == 3) {
        if (status != 200) {
            snprintf(err, cap, "h2load's log: a request with status %d", status);
            ok = false;
        } else if (row++ >= warm && k < n) {
            us[k++] = (double)dur;
        }
    }
    if (ok && k != n) {
        snprintf(err, cap, "h2load's log has %d timed requests, want %d", k, n);
        ok = false;
    } else if (!f || !us) {
        snprintf(err, cap, "cannot read h2load's log %.200s", path);
    }
    if (ok) {
        *p50 = percentile(us, (size_t)n, 50);
        *p99 = percentile(us, (size_t)n, 99);
    }
    if (f)
        fclose(f);
    ag_free(us);
    return ok;
}

/* Runs h2load against port: method with the body in file, c connections
 * of m streams, n requests (0: --secs after the warm-up), the per-request
 * log into log (or none). Samples watch's RSS and CPU while it runs
 * (watch NULL: none). Checks that every request succeeded and that the
 * response bytes add up: per_call bytes per call, exactly when n > 0. */
static bool h2load(struct bench *b, int port, const char *method, const char *file, int c, int m,
                   long n, const char *log, const struct proc *watch, size_t per_call,
                   struct h2res *r, char *err, size_t cap)
{
    char out[320], sc[16], sm[16], sn[32], sd[32], sw[32], slog[400], conn[64], uri[160];
    path_in(b, out, sizeof(out), "h2load.out");
    snprintf(sc, sizeof(sc), "-c%d", c);
    snprintf(sm, sizeof(sm), "-m%d", m);
    snprintf(sn, sizeof(sn), "-n%ld", n);
    snprintf(sd, sizeof(sd), "-D%dms", (int)(b->o.secs * 1000));
    snprintf(sw, sizeof(sw), "--warm-up-time=%dms", b->o.quick ? WARM_MS / 2 : WARM_MS);
    snprintf(slog, sizeof(slog), "--log-file=%s", log ? log : "");
    snprintf(conn, sizeof(conn), "--connect-to=127.0.0.1:%d", port);
    snprintf(uri, sizeof(uri), "http://%s:%d%s", AUTHORITY, port, method);
    char bin[4096], t1[] = "-t1", dflag[] = "-d", hflag[] = "-H",
                    ct[] = "content-type: application/grpc", te[] = "te: trailers";
    char dfile[320];
    snprintf(bin, sizeof(bin), "%s", b->o.h2load);
    snprintf(dfile, sizeof(dfile), "%s", file);
    char *argv[20] = {bin, t1, sc, sm, dflag, dfile, hflag, ct, hflag, te, conn};
    int k = 11;
    char idle[] = "-N5s"; /* a stalled proxy fails the run instead of hanging it */
    if (n > 0) {
        argv[k++] = sn;
        argv[k++] = idle;
    } else {
        argv[k++] = sd;
        argv[k++] = sw;
    }
    if (log)
        argv[k++] = slog;
    argv[k++] = uri;
    argv[k] = NULL;

    memset(r, 0, sizeof(*r));
    r->rss_max = -1;
    pid_t pid = spawn(argv, out, out, b->o.pin && !b->unpinned ? LOAD_CORE : -1, err, cap);
    if (pid < 0)
        return false;
    track(pid, true);
    double cpu0 = watch ? cpu_secs(watch) : 0;
    uint64_t t0 = ag_now_ns(), next = ag_now_ms() + SAMPLE_MS;
    uint64_t end = ag_now_ms() + 60000 + (uint64_t)(b->o.secs * 1000);
    int st;
    while (!exited(pid, &st)) {
        if (ag_now_ms() >= end) {
            stop(pid);
            snprintf(err, cap, "h2load did not finish in %.0f s", 60 + b->o.secs);
            return false;
        }
        if (watch && ag_now_ms() >= next) {
            long kib = rss_kib(watch);
            r->rss_max = kib > r->rss_max ? kib : r->rss_max;
            next += SAMPLE_MS;
        }
        ag_sleep_ms(5);
    }
    track(pid, false);
    double wall = (double)(ag_now_ns() - t0) / 1e9;
    if (watch)
        r->cpu = (cpu_secs(watch) - cpu0) / wall;
    char *text = read_text(out);
    bool ok = text && parse_h2load(text, r);
    if (!ok) {
        char line[256];
        first_line(out, line, sizeof(line));
        snprintf(err, cap, "h2load (status %d): %s", st, line[0] ? line : "no output");
    } else if (st != 0 || r->failed != 0 || r->succeeded <= 0 || r->succeeded != r->done) {
        snprintf(err, cap, "h2load (status %d): %ld done, %ld succeeded, %ld failed", st, r->done,
                 r->succeeded, r->failed);
        ok = false;
    } else if (n > 0 ? r->data != (unsigned long long)n * per_call
                     : r->data < (unsigned long long)r->succeeded * per_call) {
        snprintf(err, cap, "h2load: %llu response bytes for %ld calls of %zu", r->data,
                 r->succeeded, per_call);
        ok = false;
    }
    ag_free(text);
    return ok;
}

/* Sets the CPU affinity of every thread of pid (cpu < 0: every core). */
static void repin_pid(pid_t pid, int cpu)
{
    if (pid <= 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < n && i < CPU_SETSIZE; i++)
        if (cpu < 0 || i == cpu)
            CPU_SET((int)i, &set);
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            sched_setaffinity((pid_t)atoi(e->d_name), sizeof(set), &set);
    closedir(d);
}

/* A hop's processes (and the backend) on cpu (< 0: every core). */
static void repin(struct bench *b, const struct proc *p, int pcpu, int bcpu)
{
    if (!b->o.pin)
        return;
    if (p) {
        repin_pid(p->pid, pcpu);
        for (int i = 0; i < p->ntree; i++)
            repin_pid(p->tree[i], pcpu);
    }
    repin_pid(b->backend.pid, bcpu);
}

/* The three loads through hop h; its figures of this run into b->fig. */
static bool measure(struct bench *b, int h, int run, char *err, size_t cap)
{
    char unary[320], stream[320], log[320];
    path_in(b, unary, sizeof(unary), "unary.bin");
    path_in(b, stream, sizeof(stream), "stream.bin");
    path_in(b, log, sizeof(log), "h2load.log");
    const struct proc *watch = h == H_DIRECT ? NULL : &b->hop[h];
    int port = b->hop[h].port;
    struct h2res r;
    double(*f)[MAX_RUNS] = b->fig[h];

    int trips = b->o.trips, warm = b->o.quick ? LAT_WARM / 5 : LAT_WARM;
    /* latency is taken unpinned (the kernel places the client, the proxy
     * and the backend as it would anywhere); the pinning is for the max
     * loads, which measure the proxy on one core */
    repin(b, watch, -1, -1);
    b->unpinned = true;
    bool ok = h2load(b, port, M_UNARY, unary, 1, 1, warm + trips, log, NULL,
                     5 + b->unary_resp_len, &r, err, cap);
    b->unpinned = false;
    repin(b, watch, PROXY_CORE, LOAD_CORE);
    if (!ok || !log_percentiles(log, warm, trips, &f[F_P50][run], &f[F_P99][run], err, cap))
        return false;
    unlink(log);
    if (!h2load(b, port, M_UNARY, unary, b->o.conns, b->o.streams, 0, NULL, watch,
                5 + b->unary_resp_len, &r, err, cap))
        return false;
    f[F_RPS][run] = r.rps;
    long load = r.rss_max;
    if (watch)
        f[F_CPU][run] = r.cpu * 100;
    if (!h2load(b, port, M_DUPLEX, stream, STREAM_CONNS, STREAM_STREAMS, 0, NULL, watch,
                STREAM_MSGS * (5 + b->stream_resp_len), &r, err, cap))
        return false;
    f[F_STREAM][run] = r.rps;
    load = r.rss_max > load ? r.rss_max : load;
    if (watch && load > 0)
        f[F_RSS_LOAD][run] = (double)load;
    return true;
}

/* ---- one run ---------------------------------------------------------------------------- */

static void fail_hop(struct bench *b, int h, int run, const char *what)
{
    printf("  %s (run %d): %s\n", hop_names[h], run + 1, what);
    fflush(stdout);
    if (!b->why[h][0])
        snprintf(b->why[h], sizeof(b->why[h]), "%s", what);
}

/* Adds to err how the proxy p ended, if it did (reaping it; stop() still
 * ends what is left of its process group). */
static void died(const struct proc *p, char *err, size_t cap)
{
    int st;
    size_t len = strlen(err);
    if (p->pid <= 0 || waitpid(p->pid, &st, WNOHANG) != p->pid || len + 1 >= cap)
        return;
    if (WIFSIGNALED(st))
        snprintf(err + len, cap - len, " (the proxy died of signal %d, %s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(err + len, cap - len, " (the proxy exited with status %d)",
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* A fresh backend and fresh proxies; each checked, then measured. False
 * if the backend could not start. */
static bool one_run(struct bench *b, int run, bool *ok)
{
    char err[320];
    if (!start_backend(b, err, sizeof(err))) {
        printf("  backend %s: %s\n", b->o.backend, err);
        b->backend.pid = 0;
        return false;
    }
    bool up[H_N];
    for (int h = 0; h < H_N; h++) {
        up[h] = start_hop(b, h, err, sizeof(err));
        if (!up[h]) {
            char what[320];
            snprintf(what, sizeof(what), "not available: %s", err);
            fail_hop(b, h, run, what);
            continue;
        }
        b->started[h]++;
        int v = verify(b, b->hop[h].port, err, sizeof(err));
        if (v == 0) {
            b->failed[h] = true;
            *ok = false;
            fail_hop(b, h, run, err);
            up[h] = false;
            continue;
        }
        if (v < 0)
            snprintf(b->unverified, sizeof(b->unverified), "%s", err);
        else
            b->checked[h]++;
        if (h != H_DIRECT) {
            ag_sleep_ms(SETTLE_MS);
            find_tree(&b->hop[h]);
            b->fig[h][F_RSS_IDLE][run] = (double)rss_kib(&b->hop[h]);
        }
    }
    for (int i = 0; i < H_N; i++) {
        int h = (run + i) % H_N;
        if (!up[h])
            continue;
        if (!measure(b, h, run, err, sizeof(err))) {
            died(&b->hop[h], err, sizeof(err));
            b->failed[h] = true;
            *ok = false;
            fail_hop(b, h, run, err);
        }
    }
    for (int h = 0; h < H_N; h++) {
        double *d = b->fig[H_DIRECT][F_P50], *d99 = b->fig[H_DIRECT][F_P99];
        if (h != H_DIRECT && !isnan(b->fig[h][F_P50][run]) && !isnan(d[run])) {
            b->fig[h][F_ADD50][run] = b->fig[h][F_P50][run] - d[run];
            b->fig[h][F_ADD99][run] = b->fig[h][F_P99][run] - d99[run];
        }
        if (b->hop[h].pid > 0)
            stop(b->hop[h].pid);
        b->hop[h].pid = 0;
    }
    stop(b->backend.pid);
    b->backend.pid = 0;
    return true;
}

/* ---- the table ------------------------------------------------------------------------ */

static void fmt(char *out, size_t cap, double v, int dec)
{
    if (isnan(v))
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%.*f", dec, v);
}

static void fmt_ratio(char *out, size_t cap, double v)
{
    if (isnan(v) || isinf(v))
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%.2fx", v);
}

static double stream_mbs(double calls)
{
    return calls * 2.0 * STREAM_MSGS * STREAM_SIZE / 1e6;
}

static const char *verdict(double v, bool met)
{
    return isnan(v) ? "n/a" : met ? "PASS" : "FAIL";
}

static void print_table(const struct bench *b)
{
    int runs = b->o.runs;
    double med[H_N][F_N], lo[H_N][F_N], hi[H_N][F_N];
    for (int h = 0; h < H_N; h++)
        for (int f = 0; f < F_N; f++)
            med[h][f] = median(b->fig[h][f], runs, &lo[h][f], &hi[h][f]);
    double hap_rps = med[H_HAPROXY][F_RPS], hap_st = med[H_HAPROXY][F_STREAM];

    printf("\nmedians of %d run%s; added = the hop's percentile less direct's in the same run; "
           "ratios vs haproxy; CPU = the proxy's, %% of one core, under the max load\n",
           runs, runs == 1 ? "" : "s");
    printf("%-10s | %8s | %8s | %9s | %6s | %6s | %8s | %6s | %8s | %8s\n", "hop", "+p50 us",
           "+p99 us", "max req/s", "vs hap", "CPU %", "strm MB/s", "vs hap", "RSS idle",
           "RSS load");
    printf("%-10s | %8s | %8s | %9s | %6s | %6s | %8s | %6s | %8s | %8s\n", "", "", "", "(unary)",
           "", "", "(duplex)", "", "KiB", "KiB");
    printf("-----------+----------+----------+-----------+--------+--------+-----------+--------"
           "+----------+---------\n");
    for (int h = 0; h < H_N; h++) {
        if (isnan(med[h][F_RPS]) && isnan(med[h][F_P50])) {
            printf("%-10s | %s\n", hop_names[h], b->why[h][0] ? b->why[h] : "not measured");
            continue;
        }
        char a50[32], a99[32], rps[32], rr[32], cpu[32], st[32], sr[32], ri[32], rl[32];
        fmt(a50, sizeof(a50), med[h][F_ADD50], 1);
        fmt(a99, sizeof(a99), med[h][F_ADD99], 1);
        fmt(rps, sizeof(rps), med[h][F_RPS], 0);
        fmt_ratio(rr, sizeof(rr), med[h][F_RPS] / hap_rps);
        fmt(cpu, sizeof(cpu), med[h][F_CPU], 0);
        fmt(st, sizeof(st), stream_mbs(med[h][F_STREAM]), 1);
        fmt_ratio(sr, sizeof(sr), med[h][F_STREAM] / hap_st);
        fmt(ri, sizeof(ri), med[h][F_RSS_IDLE], 0);
        fmt(rl, sizeof(rl), med[h][F_RSS_LOAD], 0);
        printf("%-10s | %8s | %8s | %9s | %6s | %6s | %9s | %6s | %8s | %8s\n", hop_names[h], a50,
               a99, rps, rr, cpu, st, sr, ri, rl);
    }

    /* req/s per core: what one core of the proxy would carry at the CPU
     * it spent per call under the max load, for when core 0 (h2load and
     * the backend) bounds the load before the proxy's core does */
    double per[H_N];
    for (int h = 0; h < H_N; h++)
        per[h] = med[h][F_RPS] / (med[h][F_CPU] / 100);
    printf("\nabsolute, and spread over the runs (min..max)\n");
    printf("%-10s | %8s | %8s | %9s | %6s | %9s | %15s | %15s\n", "hop", "p50 us", "p99 us",
           "req/s per", "vs hap", "duplex", "p50 us", "max req/s");
    printf("%-10s | %8s | %8s | %9s | %6s | %9s | %15s | %15s\n", "", "", "", "proxy core", "",
           "calls/s", "min..max", "min..max");
    for (int h = 0; h < H_N; h++) {
        if (isnan(med[h][F_P50]))
            continue;
        char p50[32], p99[32], pc[32], pr[32], calls[32], s1[48], s2[48];
        fmt(p50, sizeof(p50), med[h][F_P50], 1);
        fmt(p99, sizeof(p99), med[h][F_P99], 1);
        fmt(pc, sizeof(pc), per[h], 0);
        fmt_ratio(pr, sizeof(pr), per[h] / per[H_HAPROXY]);
        fmt(calls, sizeof(calls), med[h][F_STREAM], 0);
        snprintf(s1, sizeof(s1), "%.1f..%.1f", lo[h][F_P50], hi[h][F_P50]);
        if (isnan(lo[h][F_RPS]))
            snprintf(s2, sizeof(s2), "-");
        else
            snprintf(s2, sizeof(s2), "%.0f..%.0f", lo[h][F_RPS], hi[h][F_RPS]);
        printf("%-10s | %8s | %8s | %9s | %6s | %9s | %15s | %15s\n", hop_names[h], p50, p99, pc,
               pr, calls, s1, s2);
    }

    for (int h = 0; h < H_N; h++)
        if (b->failed[h])
            printf("%s FAILED (figures from the runs and loads that passed): %s\n", hop_names[h],
                   b->why[h]);

    double a50 = med[H_MESH][F_ADD50], ratio = med[H_MESH][F_RPS] / hap_rps;
    double rss = med[H_MESH][F_RSS_IDLE];
    char sa[32], sr[32], ss[32];
    fmt(sa, sizeof(sa), a50, 1);
    fmt_ratio(sr, sizeof(sr), ratio);
    fmt(ss, sizeof(ss), rss, 0);
    printf("\ntargets (the issue's; a report, never the exit status):\n");
    printf("  added p50 <= %.0f us: argot mesh %s us: %s\n", TARGET_ADDED_P50, sa,
           verdict(a50, a50 <= TARGET_ADDED_P50));
    printf("  max req/s >= %.2fx haproxy's: argot mesh %s: %s\n", TARGET_RPS, sr,
           verdict(ratio, ratio >= TARGET_RPS));
    double cpu_m = med[H_MESH][F_CPU], cpu_h = med[H_HAPROXY][F_CPU];
    if (!isnan(ratio) && (cpu_m < 90 || cpu_h < 90)) {
        char spr[32];
        fmt_ratio(spr, sizeof(spr), per[H_MESH] / per[H_HAPROXY]);
        printf("    (proxy CPU: argot mesh %.0f%%, haproxy %.0f%% of their core: core 0, h2load "
               "and the backend, bounded the load; per proxy core: argot mesh %s haproxy's)\n",
               cpu_m, cpu_h, spr);
    }
    printf("  RSS idle <= 5 MB (taken as %d KiB): argot mesh %s KiB: %s\n", TARGET_RSS_KIB, ss,
           verdict(rss, rss <= TARGET_RSS_KIB));
}

/* The first line a program prints for a version flag, into out. */
static void version_of(struct bench *b, const char *bin, const char *flag, char *out, size_t cap)
{
    char path[320], b1[64], f1[16];
    path_in(b, path, sizeof(path), "version.out");
    snprintf(b1, sizeof(b1), "%s", bin);
    snprintf(f1, sizeof(f1), "%s", flag);
    char *argv[] = {b1, f1, NULL};
    int st = run_wait(argv, path, path, -1, 10000);
    first_line(path, out, cap);
    if (st != 0 && !out[0])
        snprintf(out, cap, "%s: not found", bin);
}

/* ---- main ---------------------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr,
            "usage: mesh [--runs N] [--secs S] [--trips N] [--conns N] [--streams N] [--quick]\n"
            "            [--no-pin] [--argot PATH] [--backend PATH] [--h2load PATH] "
            "[--python PATH]\n"
            "       (runs 1..%d, secs 0.2..60, trips 100..1000000, conns 1..64, streams 1..100)\n",
            MAX_RUNS);
    return 2;
}

static const char default_argot[] = "build/bin/argot";
static const char default_backend[] = "build/bin/argot-interop-server";

/* BUILD/bin/NAME for this program's BUILD/bench/mesh, if it exists. */
static bool beside_self(const char *name, char *out, size_t cap)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return false;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return false;
    *slash = '\0';
    int len = snprintf(out, cap, "%s/../bin/%s", self, name);
    return len > 0 && (size_t)len < cap && access(out, X_OK) == 0;
}

static bool parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.runs = 3,
                       .secs = 3,
                       .trips = 5000,
                       .conns = 4,
                       .streams = 16,
                       .pin = true,
                       .argot = default_argot,
                       .backend = default_backend,
                       .h2load = "h2load",
                       .python = "/usr/bin/python3"};
    bool secs = false, trips = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick"))
            o->quick = true;
        else if (!strcmp(a, "--no-pin"))
            o->pin = false;
        else if (!v)
            return false;
        else if (!strcmp(a, "--runs"))
            o->runs = atoi(v);
        else if (!strcmp(a, "--secs"))
            o->secs = atof(v), secs = true;
        else if (!strcmp(a, "--trips"))
            o->trips = atoi(v), trips = true;
        else if (!strcmp(a, "--conns"))
            o->conns = atoi(v);
        else if (!strcmp(a, "--streams"))
            o->streams = atoi(v);
        else if (!strcmp(a, "--argot"))
            o->argot = v;
        else if (!strcmp(a, "--backend"))
            o->backend = v;
        else if (!strcmp(a, "--h2load"))
            o->h2load = v;
        else if (!strcmp(a, "--python"))
            o->python = v;
        else
            return false;
        if (strcmp(a, "--quick") && strcmp(a, "--no-pin"))
            i++;
    }
    /* the defaults, relative to the working directory (the repository's
     * root, as `make bench` runs it), else beside this program's BUILD */
    static char argot[4096], backend[4096];
    if (o->argot == default_argot && access(o->argot, X_OK) != 0 &&
        beside_self("argot", argot, sizeof(argot)))
        o->argot = argot;
    if (o->backend == default_backend && access(o->backend, X_OK) != 0 &&
        beside_self("argot-interop-server", backend, sizeof(backend)))
        o->backend = backend;
    if (o->quick && !secs)
        o->secs = 1;
    if (o->quick && !trips)
        o->trips = 1000;
    return o->runs >= 1 && o->runs <= MAX_RUNS && o->secs >= 0.2 && o->secs <= 60 &&
           o->trips >= 100 && o->trips <= 1000000 && o->conns >= 1 && o->conns <= 64 &&
           o->streams >= 1 && o->streams <= 100;
}

int main(int argc, char **argv)
{
    static struct bench b;
    if (!parse_args(argc, argv, &b.o))
        return usage();
    for (int h = 0; h < H_N; h++)
        for (int f = 0; f < F_N; f++)
            for (int k = 0; k < MAX_RUNS; k++)
                b.fig[h][f][k] = NAN;
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        b.o.pin = false;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    snprintf(b.dir, sizeof(b.dir), "/tmp/argot-bench-mesh.XXXXXX");
    if (!mkdtemp(b.dir)) {
        fprintf(stderr, "mesh: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    build_requests(&b);
    if (!write_bodies(&b) || !write_checker(&b)) {
        fprintf(stderr, "mesh: cannot write into %s\n", b.dir);
        nftw(b.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return 1;
    }

    uint64_t t_start = ag_now_ns();
    char load[64], v_h2[128], v_hap[128], v_ngx[128], v_ngh[128];
    load_avg(load, sizeof(load));
    version_of(&b, b.o.h2load, "--version", v_h2, sizeof(v_h2));
    version_of(&b, "haproxy", "-v", v_hap, sizeof(v_hap));
    version_of(&b, "nginx", "-v", v_ngx, sizeof(v_ngx));
    version_of(&b, "nghttpx", "--version", v_ngh, sizeof(v_ngh));
    printf("mesh: argot mesh (%s) against haproxy, nginx (grpc_pass), nghttpx; h2c on loopback; "
           "nproc=%ld; load average %s\n",
           b.o.argot, sysconf(_SC_NPROCESSORS_ONLN), load);
    printf("peers: %s | %s | %s | load: %s; backend: %s\n", v_hap, v_ngx, v_ngh, v_h2, b.o.backend);
    printf("latency: UnaryCall %d B each way, %d trips after %d, -c1 -m1; max: %d x %d streams, "
           "%.1f s; duplex: FullDuplexCall %d x %d B each way per call, %d x %d streams, %.1f s; "
           "%s; %d run%s\n",
           UNARY_SIZE, b.o.trips, b.o.quick ? LAT_WARM / 5 : LAT_WARM, b.o.conns, b.o.streams,
           b.o.secs, STREAM_MSGS, STREAM_SIZE, STREAM_CONNS, STREAM_STREAMS, b.o.secs,
           b.o.pin ? "proxies on core 1, h2load and backend on core 0" : "not pinned", b.o.runs,
           b.o.runs == 1 ? "" : "s");
    fflush(stdout);

    bool ok = true, any = false;
    for (int run = 0; run < b.o.runs; run++) {
        printf("run %d/%d ...\n", run + 1, b.o.runs);
        fflush(stdout);
        if (!one_run(&b, run, &ok)) {
            ok = false;
            break;
        }
        any = true;
    }
    if (any)
        print_table(&b);
    if (isnan(b.fig[H_DIRECT][F_RPS][0]))
        ok = false;
    printf("\nruns checked by python3 grpcio (UnaryCall, FullDuplexCall; status and sizes) / "
           "runs started:");
    const char *sep = " ";
    for (int h = 0; h < H_N; h++) {
        if (b.started[h]) {
            printf("%s%s %d/%d", sep, hop_names[h], b.checked[h], b.started[h]);
            sep = ", ";
        }
    }
    printf("%s%s\n", b.unverified[0] ? "; unchecked: " : "", b.unverified);
    load_avg(load, sizeof(load));
    printf("load average at the end: %s; total %.1f s; %s\n", load,
           (double)(ag_now_ns() - t_start) / 1e9,
           ok ? "every hop that started answered correctly" : "FAILURES above");
    nftw(b.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return ok ? 0 : 1;
}
