/*
 * psi: two-party ECDH-PSI (ag_psi_run) against @openmined/psi.js, measured
 * in the same run, with secretflow/psi's published figure as a reference.
 *
 * First the per-element cost of the curve work on one core: the hash to
 * the group (BLAKE2b-512 and ristretto255 from_hash) with a multiplication
 * (what a party does per own key), and a multiplication alone (per key of
 * the peer), from which the best wall time of a 2^20 x 2^20 run on this
 * machine's cores follows.
 *
 * Then, for each size n (default 2^16, 2^20, 2^22 rows per side): writes
 * two CSV files under $TMPDIR (alice: id,score; bob: id,region; ids are 13
 * hex digits, half of bob's drawn from alice's), runs alice and bob each on
 * its own thread with its own in-memory link endpoint (simulation mode),
 * inner join, both receivers, default buckets, all cores for each party,
 * and times the run from the start of both threads to the end of the last
 * (CSV reading, spilling, the protocol and writing both outputs included).
 * Prints rows per second (rows of one side / seconds), bytes on the link
 * per row (both directions / rows of one side), and checks the
 * intersection size against the planted one.
 *
 * The peer: bench/peers/psi_js.js under node, from the package that
 * scripts/bench.sh installs into BUILD/peers (npm install --ignore-scripts
 * @openmined/psi.js); it runs one process, single-threaded WebAssembly,
 * server and client in turn (revealIntersection, raw set), so it is
 * measured at smaller sizes (default 2^12 and 2^14) and compared by rows
 * per second. Skipped, with the reason, when node or the package is
 * missing.
 *
 * Exit status: 1 if a run failed or an intersection was wrong; timings
 * never decide it.
 *
 * Usage: psi [--sizes 16,20,22] [--peer-sizes 12,14] [--peer-dir DIR] [--threads N]
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apps/internal.h"
#include "argot/apps.h"

#define MAX_SIZES 8

/* secretflow/psi's published ECDH-PSI benchmark (CURVE_25519, 16 cores):
 * 2^20 x 2^20 in 11.6 s, about 186 core-seconds. */
#define SF_ROWS (1u << 20)
#define SF_SECONDS 11.6
#define SF_CORE_SECONDS 186.0

static unsigned ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* ---- the per-element cost -------------------------------------------------- */

static void curve_costs(double *hash_mul_us, double *mul_us)
{
    enum { N = 4000 };
    static uint8_t out[N * PSI_POINT_SIZE], out2[N * PSI_POINT_SIZE];
    static char keys_text[N][16];
    static ag_slice keys[N];
    uint8_t s[PSI_SCALAR_SIZE];
    psi_prefix pre;
    ag__psi_scalar_random(s);
    ag__psi_prefix_init(&pre, (const uint8_t *)"bench", 5);
    for (int i = 0; i < N; i++) {
        snprintf(keys_text[i], sizeof(keys_text[i]), "u%012x", (unsigned)i * 2654435761u);
        keys[i] = ag_slice_str(keys_text[i]);
    }
    double best_h = 1e9, best_m = 1e9;
    for (int run = 0; run < 3; run++) {
        uint64_t t0 = ag_now_ns();
        ag__psi_hash_mul(&pre, keys, N, s, out);
        uint64_t t1 = ag_now_ns();
        if (ag__psi_mul(out, N, s, out2) != -1)
            fprintf(stderr, "psi: bench: a point did not decode\n");
        uint64_t t2 = ag_now_ns();
        best_h = AG_MIN(best_h, (double)(t1 - t0) / 1e3 / N);
        best_m = AG_MIN(best_m, (double)(t2 - t1) / 1e3 / N);
    }
    *hash_mul_us = best_h;
    *mul_us = best_m;
}

/* ---- data -------------------------------------------------------------------- */

static uint64_t rng_state = 0x243F6A8885A308D3u;

static uint64_t rnd(void)
{
    uint64_t x = rng_state += 0x9E3779B97F4A7C15u;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

/* Writes alice's and bob's files of n rows; returns the planted
 * intersection size (distinct ids on both sides), or -1. */
static int64_t write_inputs(const char *pa, const char *pb, uint64_t n)
{
    FILE *a = fopen(pa, "w"), *b = fopen(pb, "w");
    if (!a || !b) {
        if (a)
            fclose(a);
        if (b)
            fclose(b);
        return -1;
    }
    static char buf_a[1 << 20], buf_b[1 << 20];
    setvbuf(a, buf_a, _IOFBF, sizeof(buf_a));
    setvbuf(b, buf_b, _IOFBF, sizeof(buf_b));
    fprintf(a, "id,score\n");
    fprintf(b, "id,region\n");
    /* ids: a bijective mix of the index keeps them distinct; bob's even
     * rows take alice's id of row i, odd rows ids alice does not have */
    uint64_t salt = rnd();
    int64_t shared = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t ida = ((i ^ salt) * 0x9E3779B97F4A7C15u) & 0xFFFFFFFFFFFFFu;
        fprintf(a, "u%013" PRIx64 ",%" PRIu64 "\n", ida, rnd() % 1000);
        if (i % 2 == 0) {
            fprintf(b, "u%013" PRIx64 ",r%" PRIu64 "\n", ida, rnd() % 50);
            shared++;
        } else {
            uint64_t idb = ((i ^ salt) * 0x9E3779B97F4A7C15u) & 0xFFFFFFFFFFFFFu;
            fprintf(b, "v%013" PRIx64 ",r%" PRIu64 "\n", idb, rnd() % 50);
        }
    }
    int ea = fclose(a), eb = fclose(b);
    return ea || eb ? -1 : shared;
}

/* ---- argot ------------------------------------------------------------------- */

struct party {
    ag_link *link;
    ag_psi_opts o;
    ag_psi_report rep;
    ag_errbuf err;
    int rc;
};

static void *party_main(void *arg)
{
    struct party *p = arg;
    p->rc = ag_psi_run(p->link, &p->o, &p->rep, &p->err);
    return NULL;
}

struct result {
    uint64_t rows;
    double seconds;
    uint64_t bytes; /* both directions */
    uint64_t intersection;
    bool ok;
};

static struct result run_argot(uint64_t n, unsigned threads, const char *dir)
{
    struct result res = {.rows = n};
    char in[2][640], out[2][640];
    snprintf(in[0], sizeof(in[0]), "%s/alice.csv", dir);
    snprintf(in[1], sizeof(in[1]), "%s/bob.csv", dir);
    snprintf(out[0], sizeof(out[0]), "%s/alice-out.csv", dir);
    snprintf(out[1], sizeof(out[1]), "%s/bob-out.csv", dir);
    int64_t planted = write_inputs(in[0], in[1], n);
    if (planted < 0) {
        fprintf(stderr, "psi: writing %s: %s\n", in[0], strerror(errno));
        return res;
    }
    static const char *const names[] = {"alice", "bob"};
    static const char *const key[] = {"id"};
    ag_link *l[2];
    if (ag_link_mem_group(2, names, l) < 0)
        return res;
    struct party p[2];
    for (int i = 0; i < 2; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        ag_psi_opts_init(&p[i].o);
        p[i].link = l[i];
        ag_link_set_timeout_ms(l[i], 600000);
        p[i].o.input = in[i];
        p[i].o.output = out[i];
        p[i].o.keys = key;
        p[i].o.nkeys = 1;
        p[i].o.threads = threads;
        p[i].o.session = "bench";
        p[i].o.tmpdir = dir;
        p[i].o.progress = i == 1; /* one line, on a terminal only */
    }
    uint64_t t0 = ag_now_ns();
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, party_main, &p[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    res.seconds = (double)(ag_now_ns() - t0) / 1e9;
    res.ok = p[0].rc == 0 && p[1].rc == 0;
    for (int i = 0; i < 2; i++) {
        if (p[i].rc < 0)
            fprintf(stderr, "psi: party %s: %s\n", names[i], p[i].err.msg);
        ag_link_free(l[i]);
        unlink(out[i]);
        unlink(in[i]);
    }
    if (res.ok) {
        res.bytes = p[0].rep.bytes_sent + p[1].rep.bytes_sent;
        res.intersection = p[1].rep.intersection;
        if (p[0].rep.intersection != (uint64_t)planted ||
            p[1].rep.intersection != (uint64_t)planted) {
            fprintf(stderr, "psi: WRONG: intersection %" PRIu64 "/%" PRIu64 ", planted %" PRId64
                    "\n", p[0].rep.intersection, p[1].rep.intersection, planted);
            res.ok = false;
        }
    }
    return res;
}

/* ---- psi.js -------------------------------------------------------------------- */

/* Runs node bench/peers/psi_js.js n; its one line: n intersection seconds
 * bytes. Sets why when it cannot run. */
static struct result run_psijs(uint64_t n, const char *peer_dir, char *why, size_t cap)
{
    struct result res = {.rows = n};
    char mod[1200];
    snprintf(mod, sizeof(mod), "%s/node_modules/@openmined/psi.js/package.json", peer_dir);
    if (access(mod, R_OK) != 0) {
        snprintf(why, cap, "%s not installed (scripts/bench.sh installs it; needs node and "
                 "npm: apt-get install nodejs npm)", mod);
        return res;
    }
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "NODE_PATH='%s/node_modules' node bench/peers/psi_js.js %" PRIu64,
             peer_dir, n);
    FILE *f = popen(cmd, "r");
    if (!f) {
        snprintf(why, cap, "cannot run node: %s", strerror(errno));
        return res;
    }
    char line[256] = "";
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    int st = pclose(f);
    uint64_t rows, inter, bytes;
    double secs;
    if (st != 0 || sscanf(line, "%" SCNu64 " %" SCNu64 " %lf %" SCNu64, &rows, &inter, &secs,
                          &bytes) != 4) {
        snprintf(why, cap, "node failed (status %d): %s", st, line);
        return res;
    }
    res.seconds = secs;
    res.bytes = bytes;
    res.intersection = inter;
    res.ok = inter == (n + 1) / 2;
    if (!res.ok)
        snprintf(why, cap, "psi.js found %" PRIu64 " of %" PRIu64, inter, (n + 1) / 2);
    return res;
}

/* ---- main ------------------------------------------------------------------------ */

static int parse_sizes(const char *s, unsigned *out)
{
    int n = 0;
    while (*s && n < MAX_SIZES) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v > 30)
            return -1;
        out[n++] = (unsigned)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return n;
}

static void row(const char *impl, const struct result *r, unsigned cores, double peer_rate)
{
    double rate = r->rows / r->seconds;
    char ratio[32] = "-";
    if (peer_rate > 0)
        snprintf(ratio, sizeof(ratio), "%.0fx", rate / peer_rate);
    printf("%-10s %9" PRIu64 " (2^%2.0f) %9.2f %11.0f %10.1f %12.1f %9s\n", impl, r->rows,
           __builtin_log2((double)r->rows), r->seconds, rate, (double)r->bytes / r->rows,
           r->seconds * cores, ratio);
}

int main(int argc, char **argv)
{
    unsigned sizes[MAX_SIZES] = {16, 20, 22}, peer_sizes[MAX_SIZES] = {12, 14};
    int nsizes = 3, npeer = 2;
    unsigned threads = 0;
    const char *peer_dir = "build/peers";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc)
            nsizes = parse_sizes(argv[++i], sizes);
        else if (strcmp(argv[i], "--peer-sizes") == 0 && i + 1 < argc)
            npeer = parse_sizes(argv[++i], peer_sizes);
        else if (strcmp(argv[i], "--peer-dir") == 0 && i + 1 < argc)
            peer_dir = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
        else
            nsizes = -1;
    }
    if (nsizes < 0 || npeer < 0) {
        fprintf(stderr, "usage: psi [--sizes 16,20,22] [--peer-sizes 12,14] [--peer-dir DIR] "
                "[--threads N]\n");
        return 2;
    }
    if (ag__psi_curve_init() < 0)
        return 1;
    unsigned cores = ncpu();
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/argot-psi-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "psi: mkdtemp %s: %s\n", dir, strerror(errno));
        return 1;
    }

    double hm, m;
    curve_costs(&hm, &m);
    double per_pair = 2 * (hm + m); /* both parties, per row of one side */
    printf("psi: ECDH-PSI over ristretto255 (%s), %u cores; two parties on threads over the "
           "in-memory link, inner join, both receive\n", ag__psi_curve_backend(), cores);
    printf("per element, one core: hash to group + multiply %.1f us, multiply %.1f us; "
           "a 2^20 x 2^20 run needs %.0f core-seconds of curve work (>= %.1f s on %u cores)\n",
           hm, m, per_pair * (1 << 20) / 1e6, per_pair * (1 << 20) / 1e6 / cores, cores);
    fflush(stdout);

    char why[1600] = "";
    double peer_rate = 0;
    struct result peers[MAX_SIZES];
    for (int i = 0; i < npeer; i++) {
        peers[i] = run_psijs((uint64_t)1 << peer_sizes[i], peer_dir, why, sizeof(why));
        if (!peers[i].ok)
            break;
        peer_rate = peers[i].rows / peers[i].seconds; /* the largest size's */
    }

    printf("%-10s %16s %9s %11s %10s %12s %9s\n", "impl", "rows/side", "seconds", "rows/s",
           "bytes/row", "core-seconds", "vs psi.js");
    int ret = 0;
    for (int i = 0; i < nsizes; i++) {
        struct result r = run_argot((uint64_t)1 << sizes[i], threads, dir);
        if (!r.ok) {
            printf("%-10s %9" PRIu64 " (2^%2u) %9s\n", "argot", r.rows, sizes[i], "FAILED");
            ret = 1;
            continue;
        }
        row("argot", &r, threads ? threads : cores, peer_rate);
        fflush(stdout);
    }
    for (int i = 0; i < npeer && peer_rate > 0; i++)
        row("psi.js", &peers[i], 1, 0);
    if (peer_rate == 0)
        printf("%-10s skipped: %s\n", "psi.js", why);
    struct result sf = {.rows = SF_ROWS, .seconds = SF_SECONDS, .ok = true};
    printf("%-10s %9u (2^20) %9.2f %11.0f %10s %12.0f %9s   published: ECDH CURVE_25519, 16 "
           "cores (not run here)\n", "secretflow", SF_ROWS, SF_SECONDS, sf.rows / sf.seconds,
           "-", SF_CORE_SECONDS, "-");
    printf("rows/s: rows of one side per second of wall time; bytes/row: payload bytes both "
           "ways per row of one side; core-seconds: wall time x cores used\n");
    rmdir(dir);
    return ret;
}
