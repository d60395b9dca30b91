/*
 * mpc: the semi2k kernels against plaintext ring arithmetic, and their
 * traffic against the cost model in argot/mpc.h.
 *
 * For 2 and 3 parties and for FM64 and FM128, runs each party on its own
 * thread with its own in-memory link endpoint and session (simulation
 * mode), shares the inputs from their owners (x from rank 0, y from the
 * last rank) before anything is timed, and then times, between two
 * pthread barriers on rank 0, the whole simulated run of one kernel at
 * every party, Beaver dealer work included:
 *   share   2^20 elements from rank 0 (the input sharing itself)
 *   mul     2^20 (shared x shared, Beaver)
 *   square  2^20
 *   matmul  256x256 by 256x256 and 1024x1024 by 1024x1024 (for FM128 and
 *           for 3 parties, 1024^3 is estimated as 64 times the best 256^3
 *           time: skipped above 20 s, run once above 8 s)
 *   trunc   2^20 by the session's fraction bits
 *   reveal  2^20 to every party
 *   less    2^20 shared values against 0 (a2b, then the sign bit)
 *   sigmoid 2^20, SEG3
 * Each kernel runs --runs times (default 3); the table shows the best and
 * the median wall time, the throughput from the best (elements/s, or GOP/s
 * counting m*n*k multiply-adds), the plaintext time of the same operation
 * on one core (best of as many runs: for mul, square and trunc a loop over
 * uint64_t or unsigned __int128 in mpc_kernels.h; for matmul ag_mpc_matmul on
 * two public tensors, which runs the library's ring kernel with no
 * communication; for share and reveal a memcpy of the elements), the ratio
 * of the two best times, the target where it sets one, the bytes
 * each party sent and the rounds (the largest count over the parties) from
 * the link's counters, the model's figures, and whether every party matched
 * the model on every run. After the last run the result is opened and
 * compared with the plaintext result (trunc within one unit).
 *
 * Threads: main generates the inputs and prints; the party threads run the
 * kernels. Every party passes the same sequence of barriers whatever
 * happens, so a failure never hangs the run: a failing party aborts the
 * link, which fails every later collective at every party at once.
 *
 * Exit status: 1 if a kernel failed, a result was wrong, or a party's bytes
 * or rounds differed from the model (after printing everything); 0
 * otherwise. Timings never decide it.
 *
 * The kernels, the party threads and the checks are in mpc_kernels.h,
 * shared with bench/fed (the same kernels over the gRPC link).
 *
 * Dealers: every configuration runs with the trusted first party (tfp:
 * rank 0 deals) and with the trusted third party (ttp: a Beaver server in
 * this process, reached over gRPC on loopback, doing its dealing on its
 * own threads: on this machine's two cores, beside the party threads),
 * or only one of them with --dealer.
 *
 * Usage: mpc [--runs N] [--dealer tfp|ttp|both]
 */
#include "argot/rpc.h"
#include "mpc_kernels.h"

#define SKIP_SECONDS    20.0 /* 1024^3 estimate above which it is skipped */
#define ONE_RUN_SECONDS 8.0  /* 1024^3 estimate above which it runs once */
#define TARGET_RATIO    5.0  /* the target for 2-party FM64 mul, matmul */

/* Runs one configuration over the in-memory link; false if the run could
 * not start. */
static bool run_config(struct run *r)
{
    static const char *const names[] = {"alice", "bob", "carol"};
    ag_link *links[MAX_PARTIES];
    if (ag_link_mem_group(r->n, names, links) < 0)
        return false;
    bool ok = run_parties(r, links, "mpc");
    for (unsigned i = 0; i < r->n; i++)
        ag_link_free(links[i]);
    return ok;
}

/* ---- the table ---------------------------------------------------------- */

static void print_header(void)
{
    printf("%7s %-5s %-6s %-6s %-6s %4s %9s %9s %15s %9s %9s %7s %-13s %11s %11s %6s %5s "
           "%-8s %s\n",
           "parties", "field", "dealer", "kernel", "size", "runs", "best_s", "median_s", "throughput",
           "plain_s", "plain_med", "ratio", "target", "bytes/party", "model_bytes", "rounds",
           "model", "cost", "check");
}

/* Prints one row; returns false if it failed, was wrong, or missed the
 * model. */
static bool print_row(const struct run *r, enum kernel k)
{
    const struct row *row = &r->rows[k];
    uint64_t mb, mr;
    model(r, k, &mb, &mr);
    double pbest = 0, pmed = 0;
    best_median(row->plain, r->runs, &pbest, &pmed);
    printf("%7u %-5s %-6s %-6s %-6s ", r->n, ag_field_name(r->f), r->beaver ? "ttp" : "tfp",
           kernel_names[k], kernel_sizes[k]);
    if (row->skipped || row->failed) {
        printf("%4d %9s %9s %15s %9.4f %9.4f %7s %-13s %11s %11" PRIu64 " %6s %5" PRIu64
               " %-8s %s\n",
               row->runs, row->skipped ? "skipped" : "failed", "-", "-", pbest, pmed, "-", "-", "-",
               mb, "-", mr, "-", row->failed ? "FAILED" : "-");
        if (row->err[0])
            printf("        error: %s\n", row->err);
        return !row->failed;
    }
    double best = 0, med = 0;
    best_median(row->secs, row->runs, &best, &med);
    bool is_mm = k == K_MM256 || k == K_MM1024;
    double size = k == K_MM256 ? 256.0 : 1024.0;
    double ops = is_mm ? size * size * size : (double)N_ELEMS;
    char thr[32], target[16] = "-", bytes[24], rounds[16];
    if (is_mm)
        snprintf(thr, sizeof(thr), "%.2f GOP/s", ops / best / 1e9);
    else
        snprintf(thr, sizeof(thr), "%.1f Melem/s", ops / best / 1e6);
    double ratio = best / pbest;
    if (r->n == 2 && r->f == AG_FM64 && (k == K_MUL || is_mm))
        snprintf(target, sizeof(target), "<=%.0fx %s", TARGET_RATIO,
                 ratio <= TARGET_RATIO ? "met" : "missed");
    if (r->n == 2 && r->f == AG_FM64 && k == K_LESS)
        snprintf(target, sizeof(target), "<1s %s", best < 1.0 ? "met" : "missed");
    /* bytes: the same at every party on every run, else "varies" */
    bool same = true, exact = true;
    uint64_t maxr = 0;
    for (unsigned p = 0; p < r->n; p++) {
        for (int i = 0; i < row->runs; i++) {
            same = same && row->bytes[p][i] == row->bytes[0][0];
            exact = exact && row->bytes[p][i] == mb && row->rounds[p][i] == mr;
            maxr = AG_MAX(maxr, row->rounds[p][i]);
        }
    }
    if (same)
        snprintf(bytes, sizeof(bytes), "%" PRIu64, row->bytes[0][0]);
    else
        snprintf(bytes, sizeof(bytes), "varies");
    snprintf(rounds, sizeof(rounds), "%" PRIu64, maxr);
    const char *check = row->wrong ? "WRONG" : "ok";
    printf("%4d %9.4f %9.4f %15s %9.4f %9.4f %6.1fx %-13s %11s %11" PRIu64 " %6s %5" PRIu64
           " %-8s %s\n",
           row->runs, best, med, thr, pbest, pmed, ratio, target, bytes, mb, rounds, mr,
           exact ? "exact" : "MISMATCH", check);
    if (!exact)
        for (unsigned p = 0; p < r->n; p++)
            printf("        party %u: bytes %" PRIu64 " rounds %" PRIu64 " (first run)\n", p,
                   row->bytes[p][0], row->rounds[p][0]);
    return !row->wrong && exact;
}

/* ---- main --------------------------------------------------------------- */

static void print_machine(int runs)
{
    char cpu[256];
    machine_cpu(cpu, sizeof(cpu));
    printf("mpc: semi2k over the in-memory link, one thread per party\n");
    printf("machine: nproc=%ld cpu=\"%s\"; build: %s __VERSION__=\"%s\" (-O level unknown), "
           "C%ld\n",
           sysconf(_SC_NPROCESSORS_ONLN), cpu, COMPILER, __VERSION__,
           (long)__STDC_VERSION__ / 100 % 100);
    printf("best_s, median_s: wall seconds between barriers on rank 0, dealer work "
           "included, best and median of %d runs (other work may share the machine)\n"
           "throughput, ratio: from the best times (ratio = best_s / plain_s); GOP/s counts "
           "m*n*k multiply-adds\n"
           "plain_s, plain_med: best and median plaintext time on one core (mul, square, "
           "trunc: a loop here; matmul: ag_mpc_matmul on public tensors; share, reveal: "
           "memcpy)\n"
           "bytes/party, rounds: from the link counters (rounds: the largest over the "
           "parties); model_bytes, model: argot/mpc.h's table\n"
           "cost: exact when every party on every run sent the model's bytes in the model's "
           "rounds; check: the opened result against the plaintext one\n"
           "target: the issue's, not pass/fail (2 parties FM64: mul and matmul at most %.0fx "
           "plaintext, comparison of 2^20 under 1 s, bytes exactly the model's)\n"
           "less: x < 0 for shared x (msb via a2b); sigmoid: SEG3\n",
           runs, TARGET_RATIO);
}

/* The TTP dealer of the ttp rows: a Beaver server on a loopback port of
 * this process. */
struct dealer {
    ag_rpc_server *srv;
    ag_beaver_server *b;
    ag_rpc_channel *ch;
};

static bool dealer_start(struct dealer *d)
{
    ag_rpc_server_opts so;
    ag_rpc_server_opts_init(&so);
    so.loops = 1;
    d->srv = ag_rpc_server_new(&so);
    d->b = ag_beaver_server_new(NULL);
    if (!d->srv || !d->b || ag_beaver_server_register(d->srv, d->b) < 0 ||
        ag_rpc_server_start(d->srv, "127.0.0.1:0") < 0)
        return false;
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ag_rpc_server_port(d->srv));
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    co.max_recv_msg = 8u << 20;
    d->ch = ag_rpc_channel_new(addr, &co);
    return d->ch != NULL;
}

static void dealer_stop(struct dealer *d)
{
    ag_rpc_channel_free(d->ch);
    ag_rpc_server_free(d->srv);
    ag_beaver_server_free(d->b);
}

static int usage(void)
{
    fprintf(stderr, "usage: mpc [--runs N] [--dealer tfp|ttp|both]  (1 <= N <= %d)\n",
            MAX_RUNS);
    return 2;
}

int main(int argc, char **argv)
{
    int runs = 3;
    bool tfp = true, ttp = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--dealer") == 0 && i + 1 < argc) {
            const char *d = argv[++i];
            tfp = strcmp(d, "tfp") == 0 || strcmp(d, "both") == 0;
            ttp = strcmp(d, "ttp") == 0 || strcmp(d, "both") == 0;
            if (!tfp && !ttp)
                return usage();
        } else {
            return usage();
        }
    }
    if (runs < 1 || runs > MAX_RUNS)
        return usage();
    ag_log_set_level(AG_LOG_WARN);
    struct dealer dealer = {0};
    if (ttp && !dealer_start(&dealer)) {
        fprintf(stderr, "mpc: cannot start the Beaver server for the ttp rows\n");
        dealer_stop(&dealer);
        return 1;
    }
    uint64_t t_start = ag_now_ns();
    print_machine(runs);
    print_header();
    fflush(stdout);
    bool all_ok = true;
    static const ag_field fields[] = {AG_FM64, AG_FM128};
    for (size_t fi = 0; fi < AG_ARRAY_LEN(fields); fi++) {
        struct inputs in = {0};
        if (!inputs_init(&in, fields[fi])) {
            fprintf(stderr, "mpc: no memory for the inputs\n");
            inputs_cleanup(&in);
            dealer_stop(&dealer);
            return 1;
        }
        for (unsigned cfg = 0; cfg < 2 * (MAX_PARTIES - 1); cfg++) {
            unsigned n = 2 + cfg / 2;
            bool with_ttp = cfg % 2 == 1;
            if ((with_ttp && !ttp) || (!with_ttp && !tfp))
                continue;
            struct run *r = ag_calloc(1, sizeof(*r));
            if (!r) {
                fprintf(stderr, "mpc: no memory\n");
                inputs_cleanup(&in);
                dealer_stop(&dealer);
                return 1;
            }
            r->n = n;
            r->f = fields[fi];
            r->runs = runs;
            r->plain_runs = runs;
            r->mm1024_once_s = ONE_RUN_SECONDS;
            r->mm1024_skip_s = SKIP_SECONDS;
            r->in = &in;
            r->beaver = with_ttp ? dealer.ch : NULL;
            if (!run_config(r)) {
                printf("%7u %-5s: could not start the parties\n", n, ag_field_name(r->f));
                all_ok = false;
            } else {
                for (int k = 0; k < K_COUNT; k++)
                    all_ok = print_row(r, (enum kernel)k) && all_ok;
            }
            fflush(stdout);
            ag_free(r);
        }
        inputs_cleanup(&in);
    }
    dealer_stop(&dealer);
    printf("total: %.1f s; %s\n", (double)(ag_now_ns() - t_start) / 1e9,
           all_ok ? "every kernel ran, matched the plaintext and the cost model"
                  : "FAILURES above (FAILED, WRONG or MISMATCH)");
    return all_ok ? 0 : 1;
}
