/*
 * rpc: argot's gRPC (src/rpc, include/argot/rpc.h) against gRPC C++ in one
 * run on this machine, over loopback TCP, plaintext, one table with ratios.
 *
 * Both sides serve and call argot.bench.v1.Bench
 * (proto/argot/bench/v1/bench.proto: Unary and PingPong echo, Sink counts)
 * with the same messages. gRPC C++ is bench/peers/grpc_cpp_peer.cc (grpc++
 * sync API, Debian's libgrpc++-dev), built by `make bench` / `make
 * bench-bins` into BUILD/peers/. Every server runs in a process of its
 * own: argot's is this program run as `rpc --serve`, the C++ one the peer
 * run as `grpc_cpp_peer server`; each prints its port and serves until
 * its stdin closes. argot's client runs in this process (the public
 * blocking API: ag_rpc_unary, ag_rpc_call_*), the C++ client is the peer
 * run as `grpc_cpp_peer client` (or `mem`), whose "key value" lines this
 * program reads. Both sides pack and unpack every message with their
 * protobuf library (protobuf-c here, protobuf C++ there), payload byte i
 * being (i * 131 + 7) & 0xff, and check every echo and every Sink count.
 *
 * Figures, each client against the server of its own implementation:
 *   unary        --trips (default 5000) Unary calls of a 64-byte payload
 *                after 200 of warm-up, one in flight; p50 and p99 in
 *                microseconds, each call timed from before packing the
 *                request to the unpacked response.
 *   ping-pong    the same on one PingPong stream: write one message, read
 *                its echo.
 *   stream       1 KiB messages client -> server on one Sink stream for
 *                --secs seconds (default 2, after 0.2 s of warm-up), as
 *                fast as the client's blocking send lets it; messages/s
 *                from before the first send to the server's count.
 *   bandwidth    the same with 1 MiB messages; MB/s (1e6 B/s of payload),
 *                beside raw TCP: this program writing 1 MiB chunks on a
 *                loopback socket for --secs seconds while a second thread
 *                reads them.
 *   memory       VmRSS of the server process (and of the client's), read
 *                from /proc/PID/status by the client, after one warm-up
 *                channel; after --conns (default 200) more channels, each
 *                on a connection of its own, made one unary call and left
 *                idle; and after as many PingPong streams in flight on
 *                the first channel (each sent one message and got it back,
 *                so its handler runs), 300 ms after each step; KiB per
 *                idle connection and per in-flight call. Fresh servers for
 *                these. The sockets the server gained are checked against
 *                --conns.
 * Cross-checks, same figures: argot's client against the C++ server and
 * the C++ client against argot's server (columns a>c and c>a), which show
 * on which side a difference comes from.
 *
 * Every figure is taken --runs times (default 3), the implementations
 * taking turns in each run; the table shows the medians, the spread lines
 * min..max over the runs. The machine has few cores and may be shared:
 * the load average is printed at the start and at the end.
 *
 * Targets (the issue's, never pass/fail): argot's unary p50 at most 0.6x
 * gRPC C++'s, its 1 KiB streaming throughput at least 1.5x gRPC C++'s,
 * its 1 MiB bandwidth at least 80% of raw TCP's.
 *
 * Exit status: 1 if something failed to run (a server did not start, a
 * call failed, an echo or a count was wrong), after printing the table; 0
 * otherwise, also when the C++ peer is not built (its column shows "-").
 * Timings never decide it.
 *
 * Usage: rpc [--runs N] [--secs S] [--trips N] [--conns N] [--peer PATH]
 *            [--no-cross]
 *        rpc --serve   (argot's server, for the above)
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "argot/base.h"
#include "argot/bench/v1/bench.pb-c.h"
#include "argot/rpc.h"
#include "load.h"

#define SMALL         64         /* payload bytes of the latency figures */
#define STREAM_SIZE   1024       /* 1 KiB */
#define BW_SIZE       (1u << 20) /* 1 MiB */
#define WARMUP        200
#define WARM_SECS     0.2
#define MAX_RUNS      50
#define SETTLE_MS     300
#define PEER_TIMEOUT  300 /* seconds a peer client may take */
#define TARGET_UNARY  0.6 /* argot p50 / grpc++ p50, at most */
#define TARGET_STREAM 1.5 /* argot msgs/s / grpc++ msgs/s, at least */
#define TARGET_BW     0.8 /* argot MB/s / raw TCP MB/s, at least */

#define M_UNARY    "/argot.bench.v1.Bench/Unary"
#define M_PINGPONG "/argot.bench.v1.Bench/PingPong"
#define M_SINK     "/argot.bench.v1.Bench/Sink"

typedef Argot__Bench__V1__Msg Msg;

/* The figures a client run gives, in the order the C++ peer prints them. */
enum { F_UNARY_P50, F_UNARY_P99, F_PP_P50, F_PP_P99, F_STREAM, F_BW, F_N };
static const char *const fig_keys[F_N] = {"unary_p50_us", "unary_p99_us",  "pp_p50_us",
                                          "pp_p99_us",    "stream_msgs_s", "bw_mb_s"};
/* The figures a memory run gives. */
enum { M_SRV_CONN, M_SRV_CALL, M_CLI_CONN, M_CLI_CALL, M_SOCKETS, M_N };
static const char *const mem_keys[M_N] = {"srv_conn_kib", "srv_call_kib", "cli_conn_kib",
                                          "cli_call_kib", "srv_sockets"};

/* Who plays client and server. */
enum { P_ARGOT, P_CPP, P_A2C, P_C2A, P_N };
static const char *const pair_names[P_N] = {"argot", "grpc++", "a>c", "c>a"};

struct opts {
    int runs;
    double secs;
    int trips;
    int conns;
    bool cross;
    char peer[4096];
};

/* ---- small things ------------------------------------------------------------ */

static double now_us(void)
{
    return (double)ag_now_ns() / 1e3;
}

static void fill_payload(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 131 + 7) & 0xff);
}

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


/* VmRSS of /proc/PID/status ("self" for pid 0), KiB; -1 if unreadable. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    if (pid)
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    else
        snprintf(path, sizeof(path), "/proc/self/status");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* Sockets among PID's file descriptors; -1 if unreadable. */
static int count_sockets(pid_t pid)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[384], link[64];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        ssize_t len = readlink(path, link, sizeof(link) - 1);
        if (len > 0) {
            link[len] = '\0';
            n += strncmp(link, "socket:", 7) == 0;
        }
    }
    closedir(d);
    return n;
}

/* ---- messages ------------------------------------------------------------------ */

/* payload packed as a Msg into a new buffer (ag_malloc) of *len bytes. */
static uint8_t *pack(const uint8_t *payload, size_t n, size_t *len)
{
    Msg m = ARGOT__BENCH__V1__MSG__INIT;
    m.payload.data = (uint8_t *)payload;
    m.payload.len = n;
    *len = argot__bench__v1__msg__get_packed_size(&m);
    uint8_t *buf = ag_malloc(*len ? *len : 1);
    if (buf)
        argot__bench__v1__msg__pack(&m, buf);
    return buf;
}

/* ---- argot's server (rpc --serve) ------------------------------------------------ */

/* Receives and unpacks one message: 1 with *out, 0 at the end, <0 on error. */
static int recv_msg(ag_rpc_call *c, Msg **out)
{
    uint8_t *buf;
    size_t len;
    int rc = ag_rpc_call_recv(c, &buf, &len);
    if (rc != 1)
        return rc;
    *out = argot__bench__v1__msg__unpack(NULL, len, buf);
    ag_free(buf);
    return *out ? 1 : AG_E_INVAL;
}

/* Packs m and sends it. */
static int send_msg(ag_rpc_call *c, const Msg *m)
{
    size_t len = argot__bench__v1__msg__get_packed_size(m);
    uint8_t *buf = ag_malloc(len ? len : 1);
    if (!buf)
        return AG_E_NOMEM;
    argot__bench__v1__msg__pack(m, buf);
    return ag_rpc_call_send_take(c, buf, len);
}

static int fail_call(ag_rpc_call *c, int rc)
{
    if (rc == AG_E_CANCELED || rc == AG_E_CLOSED)
        return AG_RPC_CANCELLED;
    ag_rpc_call_set_status_message(c, rc == 0 ? "no request" : "cannot parse the message");
    return AG_RPC_INVALID_ARGUMENT;
}

static int h_unary(ag_rpc_call *c, void *ud)
{
    (void)ud;
    Msg *m;
    int rc = recv_msg(c, &m);
    if (rc != 1)
        return fail_call(c, rc);
    rc = send_msg(c, m);
    argot__bench__v1__msg__free_unpacked(m, NULL);
    return rc < 0 ? AG_RPC_CANCELLED : AG_RPC_OK;
}

static int h_pingpong(ag_rpc_call *c, void *ud)
{
    (void)ud;
    for (;;) {
        Msg *m;
        int rc = recv_msg(c, &m);
        if (rc == 0)
            return AG_RPC_OK;
        if (rc < 0)
            return fail_call(c, rc);
        rc = send_msg(c, m);
        argot__bench__v1__msg__free_unpacked(m, NULL);
        if (rc < 0)
            return AG_RPC_CANCELLED;
    }
}

static int h_sink(ag_rpc_call *c, void *ud)
{
    (void)ud;
    unsigned long long n = 0, bytes = 0;
    for (;;) {
        Msg *m;
        int rc = recv_msg(c, &m);
        if (rc == 0)
            break;
        if (rc < 0)
            return fail_call(c, rc);
        n++;
        bytes += m->payload.len;
        argot__bench__v1__msg__free_unpacked(m, NULL);
    }
    char text[64];
    int len = snprintf(text, sizeof(text), "%llu %llu", n, bytes);
    Msg out = ARGOT__BENCH__V1__MSG__INIT;
    out.payload.data = (uint8_t *)text;
    out.payload.len = (size_t)len;
    return send_msg(c, &out) < 0 ? AG_RPC_CANCELLED : AG_RPC_OK;
}

static int serve(void)
{
    ag_rpc_server_opts o;
    ag_rpc_server_opts_init(&o);
    ag_rpc_server *s = ag_rpc_server_new(&o);
    if (!s) {
        printf("error out of memory\n");
        return 1;
    }
    /* unary on the loop (its handler never blocks): no thread hand-off */
    if (ag_rpc_server_register_ex(s, M_UNARY, h_unary, NULL, AG_RPC_ON_LOOP) < 0 ||
        ag_rpc_server_register(s, M_PINGPONG, h_pingpong, NULL) < 0 ||
        ag_rpc_server_register(s, M_SINK, h_sink, NULL) < 0 ||
        ag_rpc_server_start(s, "127.0.0.1:0") < 0) {
        printf("error %s\n", ag_rpc_server_errmsg(s));
        ag_rpc_server_free(s);
        return 1;
    }
    printf("port %d\n", ag_rpc_server_port(s));
    fflush(stdout);
    char buf[256];
    while (read(0, buf, sizeof(buf)) > 0) {
    }
    ag_rpc_server_shutdown(s, 500);
    ag_rpc_server_free(s);
    return 0;
}

/* ---- child processes ------------------------------------------------------------- */

struct child {
    pid_t pid;
    int in;  /* its stdin (servers: closing it stops them), or -1 */
    int out; /* its stdout */
};

/* Starts argv[0] with stdout on a pipe and stdin on a pipe (want_stdin) or
 * /dev/null. */
static bool spawn(char *const argv[], bool want_stdin, struct child *ch, char *err, size_t cap)
{
    int in[2] = {-1, -1}, out[2];
    if (pipe2(out, O_CLOEXEC) < 0) {
        snprintf(err, cap, "pipe: %s", strerror(errno));
        return false;
    }
    if (want_stdin && pipe2(in, O_CLOEXEC) < 0) {
        snprintf(err, cap, "pipe: %s", strerror(errno));
        close(out[0]);
        close(out[1]);
        return false;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd0 = want_stdin ? in[0] : open("/dev/null", O_RDONLY);
        if (fd0 < 0 || dup2(fd0, 0) < 0 || dup2(out[1], 1) < 0)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    if (want_stdin)
        close(in[0]);
    if (pid < 0) {
        snprintf(err, cap, "fork: %s", strerror(errno));
        close(out[0]);
        if (want_stdin)
            close(in[1]);
        return false;
    }
    ch->pid = pid;
    ch->in = want_stdin ? in[1] : -1;
    ch->out = out[0];
    return true;
}

/* Reads the child's stdout into buf until EOF, or until a line when
 * one_line; false on timeout or error. */
static bool read_out(struct child *ch, char *buf, size_t cap, bool one_line, int timeout_s)
{
    size_t len = 0;
    uint64_t end = ag_now_ms() + (uint64_t)timeout_s * 1000;
    buf[0] = '\0';
    for (;;) {
        if (one_line && strchr(buf, '\n'))
            return true;
        uint64_t now = ag_now_ms();
        if (now >= end)
            return false;
        struct pollfd p = {.fd = ch->out, .events = POLLIN};
        int rc = poll(&p, 1, (int)(end - now));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return false;
        if (len + 1 >= cap)
            return true; /* enough */
        ssize_t n = read(ch->out, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return !one_line;
        len += (size_t)n;
        buf[len] = '\0';
    }
}

/* Waits for the child (killing it after timeout_s); its exit status, or -1
 * if it was killed or died of a signal. */
static int reap(struct child *ch, int timeout_s)
{
    if (ch->in >= 0)
        close(ch->in);
    if (ch->out >= 0)
        close(ch->out);
    ch->in = ch->out = -1;
    int st = 0;
    uint64_t end = ag_now_ms() + (uint64_t)timeout_s * 1000;
    for (;;) {
        pid_t r = waitpid(ch->pid, &st, WNOHANG);
        if (r == ch->pid)
            break;
        if (r < 0)
            return -1;
        if (ag_now_ms() >= end) {
            kill(ch->pid, SIGKILL);
            waitpid(ch->pid, &st, 0);
            return -1;
        }
        ag_sleep_ms(10);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct server {
    struct child ch;
    int port;
};

/* Starts a server (argot: this program with --serve; C++: the peer). */
static bool server_start(bool cpp, const struct opts *o, struct server *s, char *err, size_t cap)
{
    char self[] = "/proc/self/exe", serve_arg[] = "--serve", server_arg[] = "server";
    char peer[sizeof(o->peer)];
    snprintf(peer, sizeof(peer), "%s", o->peer);
    char *argv_a[] = {self, serve_arg, NULL};
    char *argv_c[] = {peer, server_arg, NULL};
    if (!spawn(cpp ? argv_c : argv_a, true, &s->ch, err, cap))
        return false;
    char line[512];
    bool ok = read_out(&s->ch, line, sizeof(line), true, 20);
    if (!ok || sscanf(line, "port %d", &s->port) != 1 || s->port <= 0) {
        snprintf(err, cap, "%s server did not start%s%.200s", cpp ? "grpc++" : "argot",
                 ok ? ": " : "", ok ? line : "");
        reap(&s->ch, 2);
        return false;
    }
    return true;
}

static void server_stop(struct server *s)
{
    if (s->ch.pid > 0)
        reap(&s->ch, 5);
    s->ch.pid = 0;
}

/* Parses "key value" lines into v (keys[i] -> v[i]); "error WHAT" into err.
 * False if an error was reported or a key is missing. */
static bool parse_figures(const char *text, const char *const *keys, int n, double *v, char *err,
                          size_t cap)
{
    for (int i = 0; i < n; i++)
        v[i] = NAN;
    bool failed = false;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char line[512], key[64];
        snprintf(line, sizeof(line), "%.*s", (int)(len < 511 ? len : 511), p);
        double x;
        if (strncmp(line, "error ", 6) == 0) {
            snprintf(err, cap, "%s", line + 6);
            failed = true;
        } else if (sscanf(line, "%63s %lf", key, &x) == 2) {
            for (int i = 0; i < n; i++)
                if (strcmp(key, keys[i]) == 0)
                    v[i] = x;
        }
        p += len + (nl ? 1 : 0);
    }
    if (failed)
        return false;
    for (int i = 0; i < n; i++) {
        if (isnan(v[i])) {
            snprintf(err, cap, "no %s in the peer's output", keys[i]);
            return false;
        }
    }
    return true;
}

/* Runs the C++ peer as a client (args after the peer's path) and parses
 * what it prints. */
static bool peer_run(const struct opts *o, char **args, const char *const *keys, int n, double *v,
                     char *err, size_t cap)
{
    char peer[sizeof(o->peer)];
    snprintf(peer, sizeof(peer), "%s", o->peer);
    char *argv[12] = {peer};
    for (int i = 0; args[i] && i < 10; i++)
        argv[i + 1] = args[i];
    struct child ch;
    if (!spawn(argv, false, &ch, err, cap))
        return false;
    char out[4096];
    bool ok = read_out(&ch, out, sizeof(out), false, PEER_TIMEOUT);
    int st = reap(&ch, ok ? 5 : 0);
    if (!parse_figures(out, keys, n, v, err, cap))
        return false;
    if (!ok || st != 0) {
        snprintf(err, cap, "grpc++ peer %s (status %d)", ok ? "failed" : "timed out", st);
        return false;
    }
    return true;
}

/* ---- argot's client ------------------------------------------------------------- */

static bool check_echo(const uint8_t *buf, size_t len, const uint8_t *want, size_t n)
{
    Msg *m = argot__bench__v1__msg__unpack(NULL, len, buf);
    bool ok = m && m->payload.len == n && memcmp(m->payload.data, want, n) == 0;
    if (m)
        argot__bench__v1__msg__free_unpacked(m, NULL);
    return ok;
}

static bool unary_trips(ag_rpc_channel *ch, const uint8_t *pl, int warm, int trips, double *us,
                        char *err, size_t cap)
{
    for (int i = 0; i < warm + trips; i++) {
        double t0 = now_us();
        size_t len, rlen;
        uint8_t *req = pack(pl, SMALL, &len), *resp;
        char *msg = NULL;
        int st = req ? ag_rpc_unary(ch, M_UNARY, req, len, ag_deadline_never(), &resp, &rlen, &msg)
                     : AG_RPC_RESOURCE_EXHAUSTED;
        bool ok = st == AG_RPC_OK && check_echo(resp, rlen, pl, SMALL);
        double t1 = now_us();
        ag_free(req);
        if (st == AG_RPC_OK)
            ag_free(resp);
        if (!ok) {
            snprintf(err, cap, "Unary: %s",
                     st != AG_RPC_OK ? (msg ? msg : ag_rpc_status_name(st)) : "the echo differs");
            ag_free(msg);
            return false;
        }
        ag_free(msg);
        if (i >= warm)
            us[i - warm] = t1 - t0;
    }
    return true;
}

/* Ends a client call: close_send, drain, status; false (err set) unless OK. */
static bool finish_call(ag_rpc_call *c, const char *what, char *err, size_t cap)
{
    ag_rpc_call_close_send(c);
    uint8_t *m;
    size_t len;
    while (ag_rpc_call_recv(c, &m, &len) == 1)
        ag_free(m);
    const char *msg;
    int st = ag_rpc_call_status(c, &msg);
    if (st != AG_RPC_OK)
        snprintf(err, cap, "%s: %s: %s", what, ag_rpc_status_name(st), msg);
    return st == AG_RPC_OK;
}

/* One ping-pong round: send pl, receive and check its echo. */
static bool pingpong_once(ag_rpc_call *c, const uint8_t *pl, size_t n)
{
    size_t len;
    uint8_t *req = pack(pl, n, &len), *resp;
    if (!req || ag_rpc_call_send_take(c, req, len) < 0 || ag_rpc_call_recv(c, &resp, &len) != 1)
        return false;
    bool ok = check_echo(resp, len, pl, n);
    ag_free(resp);
    return ok;
}

static bool pingpong_trips(ag_rpc_channel *ch, const uint8_t *pl, int warm, int trips, double *us,
                           char *err, size_t cap)
{
    ag_rpc_call *c = ag_rpc_call_new(ch, M_PINGPONG, ag_deadline_never());
    if (!c) {
        snprintf(err, cap, "PingPong: out of memory");
        return false;
    }
    for (int i = 0; i < warm + trips; i++) {
        double t0 = now_us();
        bool ok = pingpong_once(c, pl, SMALL);
        double t1 = now_us();
        if (!ok) {
            if (finish_call(c, "PingPong", err, cap))
                snprintf(err, cap, "PingPong: the stream broke or the echo differs");
            ag_rpc_call_free(c);
            return false;
        }
        if (i >= warm)
            us[i - warm] = t1 - t0;
    }
    bool ok = finish_call(c, "PingPong", err, cap);
    ag_rpc_call_free(c);
    return ok;
}

/* Streams n-byte messages on Sink for secs seconds; messages per second
 * (NAN on failure, err set). */
static double sink(ag_rpc_channel *ch, const uint8_t *pl, size_t n, double secs, char *err,
                   size_t cap)
{
    ag_rpc_call *c = ag_rpc_call_new(ch, M_SINK, ag_deadline_never());
    if (!c) {
        snprintf(err, cap, "Sink: out of memory");
        return NAN;
    }
    unsigned long long count = 0;
    double t0 = now_us(), end = t0 + secs * 1e6;
    bool ok = true;
    while (ok && now_us() < end) {
        size_t len;
        uint8_t *buf = pack(pl, n, &len);
        ok = buf && ag_rpc_call_send_take(c, buf, len) == 0;
        count += ok;
    }
    ag_rpc_call_close_send(c);
    uint8_t *resp = NULL;
    size_t rlen = 0;
    int got = ag_rpc_call_recv(c, &resp, &rlen);
    const char *msg;
    int st = ag_rpc_call_status(c, &msg);
    double t1 = now_us();
    double rate = NAN;
    Msg *m = got == 1 ? argot__bench__v1__msg__unpack(NULL, rlen, resp) : NULL;
    char want[64];
    snprintf(want, sizeof(want), "%llu %llu", count, count * (unsigned long long)n);
    if (st != AG_RPC_OK)
        snprintf(err, cap, "Sink: %s: %s", ag_rpc_status_name(st), msg);
    else if (!ok || !m)
        snprintf(err, cap, "Sink: %s", ok ? "no answer" : "a send failed");
    else if (m->payload.len != strlen(want) || memcmp(m->payload.data, want, strlen(want)) != 0)
        snprintf(err, cap, "Sink: the server counted \"%.*s\", sent %s", (int)m->payload.len,
                 (const char *)m->payload.data, want);
    else
        rate = (double)count / ((t1 - t0) / 1e6);
    if (m)
        argot__bench__v1__msg__free_unpacked(m, NULL);
    ag_free(resp);
    ag_rpc_call_free(c);
    return rate;
}

static bool argot_client(int port, const struct opts *o, double *v, char *err, size_t cap)
{
    for (int i = 0; i < F_N; i++)
        v[i] = NAN;
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    uint8_t *pl = ag_malloc(BW_SIZE);
    double *us = ag_calloc((size_t)o->trips, sizeof(double));
    bool ok = ch && pl && us;
    if (!ok)
        snprintf(err, cap, "out of memory");
    if (ok)
        fill_payload(pl, BW_SIZE);
    if (ok && (ok = unary_trips(ch, pl, WARMUP, o->trips, us, err, cap))) {
        v[F_UNARY_P50] = percentile(us, (size_t)o->trips, 50);
        v[F_UNARY_P99] = percentile(us, (size_t)o->trips, 99);
    }
    if (ok && (ok = pingpong_trips(ch, pl, WARMUP, o->trips, us, err, cap))) {
        v[F_PP_P50] = percentile(us, (size_t)o->trips, 50);
        v[F_PP_P99] = percentile(us, (size_t)o->trips, 99);
    }
    if (ok)
        ok = !isnan(sink(ch, pl, STREAM_SIZE, WARM_SECS, err, cap)) &&
             !isnan(v[F_STREAM] = sink(ch, pl, STREAM_SIZE, o->secs, err, cap));
    if (ok)
        ok = !isnan(sink(ch, pl, BW_SIZE, WARM_SECS, err, cap)) &&
             !isnan(v[F_BW] = sink(ch, pl, BW_SIZE, o->secs, err, cap) * BW_SIZE / 1e6);
    ag_free(us);
    ag_free(pl);
    if (ch)
        ag_rpc_channel_free(ch);
    return ok;
}

/* One unary call with a 64-byte payload on ch. */
static bool unary_once(ag_rpc_channel *ch, const uint8_t *pl, char *err, size_t cap)
{
    double us;
    return unary_trips(ch, pl, 0, 1, &us, err, cap);
}

static bool argot_mem(const struct server *s, const struct opts *o, double *v, char *err,
                      size_t cap)
{
    for (int i = 0; i < M_N; i++)
        v[i] = NAN;
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", s->port);
    int n = o->conns;
    ag_rpc_channel **chans = ag_calloc((size_t)n + 1, sizeof(*chans));
    ag_rpc_call **calls = ag_calloc((size_t)n, sizeof(*calls));
    uint8_t pl[SMALL];
    fill_payload(pl, SMALL);
    bool ok = chans && calls && (chans[0] = ag_rpc_channel_new(target, NULL));
    if (!ok)
        snprintf(err, cap, "out of memory");
    ok = ok && unary_once(chans[0], pl, err, cap);
    ag_sleep_ms(SETTLE_MS);
    long s0 = rss_kib(s->ch.pid), c0 = rss_kib(0);
    int k0 = count_sockets(s->ch.pid);
    for (int i = 1; ok && i <= n; i++) {
        ok = (chans[i] = ag_rpc_channel_new(target, NULL)) != NULL;
        ok = ok && unary_once(chans[i], pl, err, cap);
    }
    ag_sleep_ms(SETTLE_MS);
    long s1 = rss_kib(s->ch.pid), c1 = rss_kib(0);
    int k1 = count_sockets(s->ch.pid);
    for (int i = 0; ok && i < n; i++) {
        ok = (calls[i] = ag_rpc_call_new(chans[0], M_PINGPONG, ag_deadline_never())) != NULL;
        if (ok && !(ok = pingpong_once(calls[i], pl, SMALL)))
            snprintf(err, cap, "PingPong %d: the stream broke or the echo differs", i);
    }
    ag_sleep_ms(SETTLE_MS);
    long s2 = rss_kib(s->ch.pid), c2 = rss_kib(0);
    if (ok && (s0 < 0 || s1 < 0 || s2 < 0)) {
        snprintf(err, cap, "cannot read /proc/%d/status", (int)s->ch.pid);
        ok = false;
    }
    if (ok) {
        v[M_SRV_CONN] = (double)(s1 - s0) / n;
        v[M_SRV_CALL] = (double)(s2 - s1) / n;
        v[M_CLI_CONN] = (double)(c1 - c0) / n;
        v[M_CLI_CALL] = (double)(c2 - c1) / n;
        v[M_SOCKETS] = k1 - k0;
    }
    for (int i = 0; calls && i < n; i++) {
        if (calls[i]) {
            char e2[256];
            finish_call(calls[i], "PingPong", e2, sizeof(e2));
            ag_rpc_call_free(calls[i]);
        }
    }
    for (int i = 0; chans && i <= n; i++)
        if (chans[i])
            ag_rpc_channel_free(chans[i]);
    ag_free(calls);
    ag_free(chans);
    return ok;
}

/* ---- raw TCP ---------------------------------------------------------------------- */

/* A connected loopback TCP socket pair. */
static bool socket_pair_tcp(int *fd, char *err, size_t cap)
{
    fd[0] = fd[1] = -1;
    int lis = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    bool ok = lis >= 0 && bind(lis, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lis, 1) == 0 &&
              getsockname(lis, (struct sockaddr *)&a, &alen) == 0 &&
              (fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
              connect(fd[0], (struct sockaddr *)&a, sizeof(a)) == 0 &&
              (fd[1] = accept4(lis, NULL, NULL, SOCK_CLOEXEC)) >= 0;
    if (!ok) {
        snprintf(err, cap, "loopback TCP: %s", strerror(errno));
        if (fd[0] >= 0)
            close(fd[0]);
        fd[0] = fd[1] = -1;
    }
    if (lis >= 0)
        close(lis);
    int one = 1;
    for (int i = 0; ok && i < 2; i++)
        setsockopt(fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return ok;
}

struct tcp_rx {
    int fd;
    uint64_t bytes;
    uint64_t end_ns;
};

static void *tcp_rx_main(void *arg)
{
    struct tcp_rx *rx = arg;
    uint8_t *buf = ag_malloc(BW_SIZE);
    ssize_t n;
    while (buf && ((n = read(rx->fd, buf, BW_SIZE)) > 0 || (n < 0 && errno == EINTR)))
        rx->bytes += n > 0 ? (uint64_t)n : 0;
    rx->end_ns = ag_now_ns();
    ag_free(buf);
    return NULL;
}

/* 1 MiB writes for secs seconds, another thread reading: MB/s (NAN on
 * failure). */
static double tcp_bandwidth(double secs, char *err, size_t cap)
{
    int fd[2];
    if (!socket_pair_tcp(fd, err, cap))
        return NAN;
    struct tcp_rx rx = {.fd = fd[1]};
    uint8_t *buf = ag_malloc(BW_SIZE);
    pthread_t t;
    double rate = NAN;
    if (buf && pthread_create(&t, NULL, tcp_rx_main, &rx) == 0) {
        fill_payload(buf, BW_SIZE);
        uint64_t t0 = ag_now_ns(), end = t0 + (uint64_t)(secs * 1e9);
        bool ok = true;
        while (ok && ag_now_ns() < end) {
            for (size_t off = 0; ok && off < BW_SIZE;) {
                ssize_t n = write(fd[0], buf + off, BW_SIZE - off);
                if (n > 0)
                    off += (size_t)n;
                else
                    ok = n < 0 && errno == EINTR;
            }
        }
        shutdown(fd[0], SHUT_WR);
        pthread_join(t, NULL);
        if (ok)
            rate = (double)rx.bytes / 1e6 / ((double)(rx.end_ns - t0) / 1e9);
        else
            snprintf(err, cap, "loopback TCP write: %s", strerror(errno));
    } else {
        snprintf(err, cap, "cannot start the TCP reader");
    }
    ag_free(buf);
    close(fd[0]);
    close(fd[1]);
    return rate;
}

static void *tcp_echo_main(void *arg)
{
    int fd = *(int *)arg;
    uint8_t b[SMALL];
    for (;;) {
        size_t got = 0;
        while (got < SMALL) {
            ssize_t n = read(fd, b + got, SMALL - got);
            if (n <= 0)
                return NULL;
            got += (size_t)n;
        }
        if (write(fd, b, SMALL) != SMALL)
            return NULL;
    }
}

/* p50 of 64-byte round trips over a raw loopback socket pair (the floor
 * under every gRPC round trip), microseconds. */
static double tcp_rtt_p50(int trips, char *err, size_t cap)
{
    int fd[2];
    if (!socket_pair_tcp(fd, err, cap))
        return NAN;
    double *us = ag_calloc((size_t)trips, sizeof(double));
    pthread_t t;
    double p50 = NAN;
    if (us && pthread_create(&t, NULL, tcp_echo_main, &fd[1]) == 0) {
        uint8_t b[SMALL];
        fill_payload(b, SMALL);
        bool ok = true;
        for (int i = 0; ok && i < WARMUP + trips; i++) {
            double t0 = now_us();
            ok = write(fd[0], b, SMALL) == SMALL;
            for (size_t got = 0; ok && got < SMALL;) {
                ssize_t n = read(fd[0], b + got, SMALL - got);
                ok = n > 0;
                got += ok ? (size_t)n : 0;
            }
            if (i >= WARMUP)
                us[i - WARMUP] = now_us() - t0;
        }
        shutdown(fd[0], SHUT_RDWR);
        pthread_join(t, NULL);
        if (ok)
            p50 = percentile(us, (size_t)trips, 50);
        else
            snprintf(err, cap, "loopback TCP echo failed");
    }
    ag_free(us);
    close(fd[0]);
    close(fd[1]);
    return p50;
}

/* ---- the table ------------------------------------------------------------------- */

struct results {
    int runs;
    double fig[P_N][F_N][MAX_RUNS];
    double mem[2][M_N][MAX_RUNS];
    double tcp_bw[MAX_RUNS];
    double tcp_rtt[MAX_RUNS];
};

/* v with dec decimals, or "-" when it was not measured. */
static void fmt(char *out, size_t cap, double v, int dec)
{
    if (isnan(v))
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%.*f", dec, v);
}

/* One row: argot, grpc++, the ratio (given), the target, the cross-checks. */
static void row(const char *name, double a, double c, double ratio, const char *target, double x1,
                double x2, int dec)
{
    char sa[32], sc[32], sr[32], s1[32], s2[32];
    fmt(sa, sizeof(sa), a, dec);
    fmt(sc, sizeof(sc), c, dec);
    fmt(s1, sizeof(s1), x1, dec);
    fmt(s2, sizeof(s2), x2, dec);
    if (isnan(ratio))
        snprintf(sr, sizeof(sr), "-");
    else
        snprintf(sr, sizeof(sr), "%.2fx", ratio);
    printf("%-30s | %10s | %10s | %7s | %-16s | %10s | %10s\n", name, sa, sc, sr, target, s1, s2);
}

static const char *verdict(double v, bool met)
{
    return isnan(v) ? "n/a" : met ? "MET" : "MISSED";
}

static void print_table(const struct results *r, const struct opts *o)
{
    double med[P_N][F_N], lo[P_N][F_N], hi[P_N][F_N];
    for (int p = 0; p < P_N; p++)
        for (int f = 0; f < F_N; f++)
            med[p][f] = median(r->fig[p][f], r->runs, &lo[p][f], &hi[p][f]);
    double mm[2][M_N], mlo[2][M_N], mhi[2][M_N];
    for (int p = 0; p < 2; p++)
        for (int m = 0; m < M_N; m++)
            mm[p][m] = median(r->mem[p][m], r->runs, &mlo[p][m], &mhi[p][m]);
    double tlo, thi, rlo, rhi;
    double tcp = median(r->tcp_bw, r->runs, &tlo, &thi);
    double trtt = median(r->tcp_rtt, r->runs, &rlo, &rhi);

    printf("\nmedians of %d run%s; ratio = argot / grpc++ unless the row says; a>c = argot "
           "client, grpc++ server; c>a = grpc++ client, argot server\n",
           r->runs, r->runs == 1 ? "" : "s");
    printf("%-30s | %10s | %10s | %7s | %-16s | %10s | %10s\n", "metric", "argot", "grpc++",
           "ratio", "target", "a>c", "c>a");
    printf("-------------------------------+------------+------------+---------+------------------+"
           "------------+-----------\n");
    const double(*m)[F_N] = med;
    row("unary p50 (us)", m[P_ARGOT][F_UNARY_P50], m[P_CPP][F_UNARY_P50],
        m[P_ARGOT][F_UNARY_P50] / m[P_CPP][F_UNARY_P50], "<= 0.60x", m[P_A2C][F_UNARY_P50],
        m[P_C2A][F_UNARY_P50], 1);
    row("unary p99 (us)", m[P_ARGOT][F_UNARY_P99], m[P_CPP][F_UNARY_P99],
        m[P_ARGOT][F_UNARY_P99] / m[P_CPP][F_UNARY_P99], "", m[P_A2C][F_UNARY_P99],
        m[P_C2A][F_UNARY_P99], 1);
    row("stream ping-pong p50 (us)", m[P_ARGOT][F_PP_P50], m[P_CPP][F_PP_P50],
        m[P_ARGOT][F_PP_P50] / m[P_CPP][F_PP_P50], "", m[P_A2C][F_PP_P50], m[P_C2A][F_PP_P50], 1);
    row("stream ping-pong p99 (us)", m[P_ARGOT][F_PP_P99], m[P_CPP][F_PP_P99],
        m[P_ARGOT][F_PP_P99] / m[P_CPP][F_PP_P99], "", m[P_A2C][F_PP_P99], m[P_C2A][F_PP_P99], 1);
    row("stream 1 KiB c->s (msgs/s)", m[P_ARGOT][F_STREAM], m[P_CPP][F_STREAM],
        m[P_ARGOT][F_STREAM] / m[P_CPP][F_STREAM], ">= 1.50x", m[P_A2C][F_STREAM],
        m[P_C2A][F_STREAM], 0);
    row("stream 1 MiB c->s (MB/s)", m[P_ARGOT][F_BW], m[P_CPP][F_BW],
        m[P_ARGOT][F_BW] / m[P_CPP][F_BW], "", m[P_A2C][F_BW], m[P_C2A][F_BW], 1);
    row("  1 MiB / raw TCP (ratio: tcp)", m[P_ARGOT][F_BW] / tcp, m[P_CPP][F_BW] / tcp,
        m[P_ARGOT][F_BW] / tcp, ">= 0.80x tcp", m[P_A2C][F_BW] / tcp, m[P_C2A][F_BW] / tcp, 2);
    row("raw TCP loopback (MB/s)", tcp, tcp, NAN, "", NAN, NAN, 1);
    row("raw TCP 64 B round trip p50 us", trtt, trtt, NAN, "", NAN, NAN, 1);
    static const char *const mem_names[4] = {
        "server KiB / idle connection", "server KiB / in-flight call",
        "client KiB / idle connection", "client KiB / in-flight call"};
    for (int k = 0; k < 4; k++)
        row(mem_names[k], mm[0][k], mm[1][k], mm[0][k] / mm[1][k], "", NAN, NAN, 1);

    printf("\nspread over the runs (min..max): argot | grpc++\n");
    static const char *const fig_names[F_N] = {"unary p50 us",     "unary p99 us",
                                               "ping-pong p50 us", "ping-pong p99 us",
                                               "1 KiB msgs/s",     "1 MiB MB/s"};
    for (int f = 0; f < F_N; f++)
        printf("  %-18s %10.1f..%-10.1f | %10.1f..%-10.1f\n", fig_names[f], lo[P_ARGOT][f],
               hi[P_ARGOT][f], lo[P_CPP][f], hi[P_CPP][f]);
    for (int k = 0; k < 4; k++)
        printf("  %-18.18s %10.1f..%-10.1f | %10.1f..%-10.1f\n", mem_names[k], mlo[0][k], mhi[0][k],
               mlo[1][k], mhi[1][k]);
    printf("  %-18s %10.1f..%-10.1f\n", "raw TCP MB/s", tlo, thi);
    printf("sockets the servers gained for %d idle connections: argot %.0f, grpc++ %.0f\n",
           o->conns, mm[0][M_SOCKETS], mm[1][M_SOCKETS]);

    double ru = m[P_ARGOT][F_UNARY_P50] / m[P_CPP][F_UNARY_P50];
    double rs = m[P_ARGOT][F_STREAM] / m[P_CPP][F_STREAM];
    double rb = m[P_ARGOT][F_BW] / tcp;
    printf("\ntargets (the issue's; never pass/fail):\n");
    printf("  unary p50 argot/grpc++ %.2fx (<= %.2fx): %s\n", isnan(ru) ? 0 : ru, TARGET_UNARY,
           verdict(ru, ru <= TARGET_UNARY));
    printf("  1 KiB streaming throughput argot/grpc++ %.2fx (>= %.2fx): %s\n", isnan(rs) ? 0 : rs,
           TARGET_STREAM, verdict(rs, rs >= TARGET_STREAM));
    printf("  1 MiB bandwidth argot/raw TCP %.2f (>= %.2f): %s\n", isnan(rb) ? 0 : rb, TARGET_BW,
           verdict(rb, rb >= TARGET_BW));
}

/* ---- main ---------------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr,
            "usage: rpc [--runs N] [--secs S] [--trips N] [--conns N] [--peer PATH] "
            "[--no-cross]\n       (runs 1..%d, secs 0.1..60, trips 10..1000000, conns "
            "1..2000)\n",
            MAX_RUNS);
    return 2;
}

static void default_peer(char *out, size_t cap)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        snprintf(out, cap, "build/peers/grpc_cpp_peer");
        return;
    }
    self[n] = '\0';
    snprintf(out, cap, "%s/../peers/grpc_cpp_peer", dirname(self));
}

static void failed(bool *ok, const char *what, const char *err)
{
    printf("  FAILED %s: %s\n", what, err);
    fflush(stdout);
    *ok = false;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--serve") == 0)
        return serve();
    struct opts o = {.runs = 3, .secs = 2.0, .trips = 5000, .conns = 200, .cross = true};
    default_peer(o.peer, sizeof(o.peer));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            o.runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--secs") == 0 && i + 1 < argc)
            o.secs = atof(argv[++i]);
        else if (strcmp(argv[i], "--trips") == 0 && i + 1 < argc)
            o.trips = atoi(argv[++i]);
        else if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
            o.conns = atoi(argv[++i]);
        else if (strcmp(argv[i], "--peer") == 0 && i + 1 < argc)
            snprintf(o.peer, sizeof(o.peer), "%s", argv[++i]);
        else if (strcmp(argv[i], "--no-cross") == 0)
            o.cross = false;
        else
            return usage();
    }
    if (o.runs < 1 || o.runs > MAX_RUNS || !(o.secs >= 0.1 && o.secs <= 60) || o.trips < 10 ||
        o.trips > 1000000 || o.conns < 1 || o.conns > 2000)
        return usage();
    signal(SIGPIPE, SIG_IGN);
    uint64_t t_start = ag_now_ns();
    bool have_peer = access(o.peer, X_OK) == 0;
    char load[64];
    load_avg(load, sizeof(load));
    printf("rpc: argot's gRPC against gRPC C++ (grpc++ sync API), loopback TCP, plaintext; "
           "nproc=%ld; load average %s\n",
           sysconf(_SC_NPROCESSORS_ONLN), load);
    printf("unary and ping-pong: %d B payload, %d trips after %d warm-up, one in flight; "
           "streams: %.1f s each; memory: %d connections, %d calls; %d runs\n",
           SMALL, o.trips, WARMUP, o.secs, o.conns, o.conns, o.runs);
    if (!have_peer)
        printf("grpc++ peer %s not built (make bench-bins with libgrpc++-dev and "
               "libprotobuf-dev, see scripts/deps.sh bench): its figures are skipped\n",
               o.peer);
    fflush(stdout);

    static struct results r;
    r.runs = o.runs;
    for (int p = 0; p < P_N; p++)
        for (int f = 0; f < F_N; f++)
            for (int k = 0; k < MAX_RUNS; k++)
                r.fig[p][f][k] = NAN;
    for (int p = 0; p < 2; p++)
        for (int m = 0; m < M_N; m++)
            for (int k = 0; k < MAX_RUNS; k++)
                r.mem[p][m][k] = NAN;
    for (int k = 0; k < MAX_RUNS; k++)
        r.tcp_bw[k] = r.tcp_rtt[k] = NAN;

    bool ok = true;
    char err[512];
    struct server sa = {0}, sc = {0};
    if (!server_start(false, &o, &sa, err, sizeof(err))) {
        failed(&ok, "argot server", err);
        sa.ch.pid = 0;
    }
    if (have_peer && !server_start(true, &o, &sc, err, sizeof(err))) {
        failed(&ok, "grpc++ server", err);
        sc.ch.pid = 0;
    }
    char ctarget[64], csize[16], cwarm[16], ctrips[16], csecs[32], cmode[] = "client";
    snprintf(csize, sizeof(csize), "%d", SMALL);
    snprintf(cwarm, sizeof(cwarm), "%d", WARMUP);
    snprintf(ctrips, sizeof(ctrips), "%d", o.trips);
    snprintf(csecs, sizeof(csecs), "%g", o.secs);
    for (int run = 0; run < o.runs; run++) {
        printf("run %d/%d ...\n", run + 1, o.runs);
        fflush(stdout);
        /* the implementations take turns; the order flips every run */
        for (int step = 0; step < P_N; step++) {
            int p = run % 2 ? (step < 2 ? 1 - step : step) : step;
            if ((p == P_A2C || p == P_C2A) && !o.cross)
                continue;
            bool cpp_client = p == P_CPP || p == P_C2A;
            bool cpp_server = p == P_CPP || p == P_A2C;
            const struct server *s = cpp_server ? &sc : &sa;
            if ((cpp_client || cpp_server) && !have_peer)
                continue;
            if (s->ch.pid <= 0)
                continue;
            double tmp[F_N];
            bool good;
            if (cpp_client) {
                snprintf(ctarget, sizeof(ctarget), "127.0.0.1:%d", s->port);
                char *args[] = {cmode, ctarget, csize, cwarm, ctrips, csecs, NULL};
                good = peer_run(&o, args, fig_keys, F_N, tmp, err, sizeof(err));
            } else {
                good = argot_client(s->port, &o, tmp, err, sizeof(err));
            }
            for (int f = 0; f < F_N; f++)
                r.fig[p][f][run] = tmp[f];
            if (!good) {
                char what[64];
                snprintf(what, sizeof(what), "%s (run %d)", pair_names[p], run + 1);
                failed(&ok, what, err);
            }
        }
        r.tcp_bw[run] = tcp_bandwidth(o.secs, err, sizeof(err));
        if (isnan(r.tcp_bw[run]))
            failed(&ok, "raw TCP bandwidth", err);
        r.tcp_rtt[run] = tcp_rtt_p50(o.trips, err, sizeof(err));
        if (isnan(r.tcp_rtt[run]))
            failed(&ok, "raw TCP round trips", err);
        /* memory: fresh servers */
        for (int step = 0; step < 2; step++) {
            int p = run % 2 ? 1 - step : step;
            if (p == 1 && !have_peer)
                continue;
            struct server ms = {0};
            double tmp[M_N];
            bool good = server_start(p == 1, &o, &ms, err, sizeof(err));
            if (good && p == 0) {
                good = argot_mem(&ms, &o, tmp, err, sizeof(err));
            } else if (good) {
                char pid[16], n[16], mmode[] = "mem";
                snprintf(ctarget, sizeof(ctarget), "127.0.0.1:%d", ms.port);
                snprintf(pid, sizeof(pid), "%d", (int)ms.ch.pid);
                snprintf(n, sizeof(n), "%d", o.conns);
                char *args[] = {mmode, ctarget, pid, n, NULL};
                good = peer_run(&o, args, mem_keys, M_N, tmp, err, sizeof(err));
            }
            if (ms.ch.pid > 0)
                server_stop(&ms);
            if (good)
                for (int k = 0; k < M_N; k++)
                    r.mem[p][k][run] = tmp[k];
            else
                failed(&ok, p ? "grpc++ memory" : "argot memory", err);
            if (good && (int)tmp[M_SOCKETS] != o.conns)
                printf("  note: the %s server gained %.0f sockets for %d connections\n",
                       p ? "grpc++" : "argot", tmp[M_SOCKETS], o.conns);
        }
    }
    if (sa.ch.pid > 0)
        server_stop(&sa);
    if (sc.ch.pid > 0)
        server_stop(&sc);

    print_table(&r, &o);
    load_avg(load, sizeof(load));
    printf("load average at the end: %s; total %.1f s; %s\n", load,
           (double)(ag_now_ns() - t_start) / 1e9,
           ok ? "every call ran and every echo and count matched" : "FAILURES above");
    return ok ? 0 : 1;
}
