/*
 * argot console end to end: two consoles (alice, bob) in production mode on
 * loopback. The JSON API's token and form checks; a job that starts only
 * with every party's approval, whatever a peer says (a forged start or
 * decision); mutual TLS, where a peer console is the party its certificate
 * names; and the browser test (tests/browser/console.mjs, playwright-core
 * driving Debian's headless Chromium): alice proposes a PSI, bob approves
 * it in his page, both see the result; the same for a logistic regression,
 * whose loss curve both pages draw, and its prediction (accuracy and AUC at
 * the label party), and joint statistics, whose tables only the party they
 * are revealed to sees; and the history survives a restart.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "argot/rpc.h"
#include "daemons.h"
#include "pki.h"
#include "test.h"

#define PEER_METHOD "/argot.console.v1.Console/Send"

typedef struct console {
    pid_t pid;
    int out;        /* its stdout */
    int port;       /* the page's */
    char token[80];
} console;

static void inputs(void)
{
    static const char a[] = "id,name\n1,a\n2,b\n3,c\n4,d\n";
    static const char b[] = "uid,city\n1,rome\n3,paris\n7,oslo\n";
    ag_test_write_file("a.csv", a, strlen(a));
    ag_test_write_file("b.csv", b, strlen(b));
    /* for a logistic regression: alice has x1 and the label, bob x2; y follows x1 + x2 */
    char la[4096], lb[4096];
    size_t na = (size_t)snprintf(la, sizeof(la), "id,x1,y\n");
    size_t nb = (size_t)snprintf(lb, sizeof(lb), "uid,x2\n");
    uint32_t s = 12345;
    for (int i = 0; i < 60; i++) {
        double v[2];
        for (int k = 0; k < 2; k++) {
            s = s * 1103515245u + 12345u;
            v[k] = (double)(s >> 8 & 0xffff) / 16384.0 - 2.0;
        }
        na += (size_t)snprintf(la + na, sizeof(la) - na, "%d,%.3f,%d\n", i, v[0],
                               v[0] + v[1] > 0);
        nb += (size_t)snprintf(lb + nb, sizeof(lb) - nb, "%d,%.3f\n", i, v[1]);
    }
    ag_test_write_file("alice_lr.csv", la, na);
    ag_test_write_file("bob_lr.csv", lb, nb);
}

/* The cluster config: free ports for the links and the consoles. */
static const char *write_cluster(const char *extra)
{
    int p[4];
    for (int i = 0; i < 4; i++) {
        bool again;
        do {
            p[i] = ag_test_free_port();
            again = false;
            for (int k = 0; k < i; k++)
                again |= p[k] == p[i];
        } while (again);
    }
    char text[1024];
    snprintf(text, sizeof(text),
             "parties:\n"
             "  alice: {address: \"127.0.0.1:%d\", console: \"127.0.0.1:%d\"}\n"
             "  bob: {address: \"127.0.0.1:%d\", console: \"127.0.0.1:%d\"}\n%s",
             p[0], p[1], p[2], p[3], extra ? extra : "");
    return ag_test_write_file("cluster.yaml", text, strlen(text));
}

/* Starts party's console and reads its two lines (address, token); extra
 * flags (NULL-terminated, up to 4) are added to its command line. */
static void console_start_with(console *c, const char *cfg, const char *party,
                               const char *const *extra)
{
    char dir[600], db[700], line[512];
    snprintf(dir, sizeof(dir), "%s/%s", ag_test_tmpdir(), party);
    CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST);
    snprintf(db, sizeof(db), "%s/history.db", dir);
    const char *argv[20] = {ag_test_bin("argot"), "console", "--config", cfg, "--party", party,
                            "--listen", "127.0.0.1:0", "--db", db, NULL};
    for (int i = 0; extra && extra[i] && i < 8; i++)
        argv[10 + i] = extra[i];
    c->pid = ag_test_spawn(argv, &c->out);
    CHECK(ag_test_read_line(c->out, line, sizeof(line), 20) > 0);
    const char *at = strstr(line, "http://127.0.0.1:");
    CHECK(at != NULL);
    c->port = atoi(at + strlen("http://127.0.0.1:"));
    CHECK(ag_test_read_line(c->out, line, sizeof(line), 5) > 0);
    const char *t = strstr(line, "?token=");
    CHECK(t != NULL);
    snprintf(c->token, sizeof(c->token), "%s", t + 7);
    CHECK_EQ(strlen(c->token), 64);
}

static void console_start(console *c, const char *cfg, const char *party)
{
    console_start_with(c, cfg, party, NULL);
}

static void console_stop(console *c)
{
    CHECK_EQ(ag_test_stop(c->pid), 0);
    close(c->out);
}

/* One request with the token (NULL: none) and, for a body, its type;
 * returns the status, *body (malloc'd) the response's body. */
static int req(const console *c, const char *method, const char *path, const char *token,
               const char *type, const char *body, char **out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    char head[1024];
    int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n", method, path,
                     body ? strlen(body) : 0);
    if (token)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Authorization: Bearer %s\r\n", token);
    if (type)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Type: %s\r\n", type);
    n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    CHECK(write(fd, head, (size_t)n) == n);
    if (body)
        CHECK(write(fd, body, strlen(body)) == (ssize_t)strlen(body));
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    CHECK(buf != NULL);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    close(fd);
    int status = 0;
    CHECK(sscanf(buf, "HTTP/1.1 %d", &status) == 1);
    const char *b = strstr(buf, "\r\n\r\n");
    *out = strdup(b ? b + 4 : "");
    free(buf);
    return status;
}

/* POST of a JSON body with the token; returns the status, *out the body. */
static int post(const console *c, const char *path, const char *json, char **out)
{
    return req(c, "POST", path, c->token, "application/json", json, out);
}

static json_t *state(const console *c)
{
    char *body;
    CHECK_EQ(req(c, "GET", "/api/state", c->token, NULL, NULL, &body), 200);
    json_t *st = json_loads(body, 0, NULL);
    free(body);
    CHECK(st != NULL);
    return st;
}

/* The job id in c's state (the newest), its state and its error. */
static const char *job_field(const console *c, const char *field, char *out, size_t cap)
{
    json_t *st = state(c);
    json_t *j = json_array_get(json_object_get(st, "jobs"), 0);
    const char *v = json_string_value(json_object_get(j, field));
    snprintf(out, cap, "%s", v ? v : "");
    json_decref(st);
    return out;
}

/* Waits until c's newest job is in state want (or another final state). */
static void wait_job_state(const console *c, const char *want, unsigned seconds)
{
    char s[32] = "";
    for (unsigned i = 0; i < seconds * 10; i++) {
        job_field(c, "state", s, sizeof(s));
        if (strcmp(s, want) == 0)
            return;
        usleep(100 * 1000);
    }
    char err[600];
    FAIL("job state %s, wanted %s (error: %s)", s, want, job_field(c, "error", err, sizeof(err)));
}

TEST_TIMEOUT(console_api_needs_the_token_and_names_bad_fields, 60)
{
    inputs();
    const char *cfg = write_cluster(NULL);
    console a;
    console_start(&a, cfg, "alice");
    char *body;
    CHECK_EQ(req(&a, "GET", "/api/state", NULL, NULL, NULL, &body), 401);
    CHECK_CONTAINS(body, "missing or wrong token");
    free(body);
    char wrong[80];
    snprintf(wrong, sizeof(wrong), "%s", a.token);
    wrong[0] = wrong[0] == '0' ? '1' : '0';
    CHECK_EQ(req(&a, "GET", "/api/state", wrong, NULL, NULL, &body), 401);
    free(body);
    CHECK_EQ(req(&a, "POST", "/api/jobs", NULL, "application/json", "{}", &body), 401);
    free(body);
    /* a cross-site form cannot send JSON: anything else is refused */
    CHECK_EQ(req(&a, "POST", "/api/jobs", a.token, "text/plain", "{}", &body), 415);
    free(body);
    /* the page and its assets need no token, and hold none */
    CHECK_EQ(req(&a, "GET", "/", NULL, NULL, NULL, &body), 200);
    CHECK_CONTAINS(body, "argot console");
    CHECK(strstr(body, a.token) == NULL);
    free(body);
    CHECK_EQ(req(&a, "GET", "/app.js", NULL, NULL, NULL, &body), 200);
    free(body);
    char path[200];
    snprintf(path, sizeof(path), "/?token=%s", wrong);
    CHECK_EQ(req(&a, "GET", path, NULL, NULL, NULL, &body), 401);
    free(body);

    char json[2048];
    snprintf(json, sizeof(json), "{\"kind\": \"psi\", \"input\": \"%s\", \"keys\": \"idd\"}",
             ag_test_path("a.csv"));
    CHECK_EQ(post(&a, "/api/jobs", json, &body), 400);
    CHECK_STR_EQ(body, "{\"errors\":{\"keys\":\"column 'idd' is not in a.csv\"}}");
    free(body);
    snprintf(json, sizeof(json), "{\"kind\": \"psi\", \"input\": \"%s\", \"keys\": \"id\", "
             "\"receiver\": \"carol\", \"join\": \"outer\"}", ag_test_path("a.csv"));
    CHECK_EQ(post(&a, "/api/jobs", json, &body), 400);
    CHECK_CONTAINS(body, "\"receiver\":\"'carol' is no party of the cluster (a party or both)\"");
    CHECK_CONTAINS(body, "\"join\":\"'outer': inner, left, right, full or difference\"");
    free(body);
    snprintf(json, sizeof(json), "{\"kind\": \"psi\", \"input\": \"%s\", \"keys\": \"id\", "
             "\"output\": \"/nonexistent/dir/o.csv\"}", ag_test_path("missing.csv"));
    CHECK_EQ(post(&a, "/api/jobs", json, &body), 400);
    CHECK_CONTAINS(body, "\"input\":\"");
    CHECK_CONTAINS(body, "missing.csv: No such file or directory");
    free(body);
    CHECK_EQ(post(&a, "/api/jobs", "{\"kind\": \"sql\"", &body), 400);
    CHECK_CONTAINS(body, "\"form\":\"the body is not JSON");
    free(body);
    CHECK_EQ(post(&a, "/api/jobs", "{\"kind\": \"sql\", \"keys\": 3}", &body), 400);
    CHECK_CONTAINS(body,
                   "\"kind\":\"'sql' is not a job this console runs (psi, lr-train, "
                   "lr-predict, stats)\"");
    free(body);
    CHECK_EQ(post(&a, "/api/decide", "{\"id\": \"nope\", \"approve\": false}", &body), 400);
    CHECK_CONTAINS(body, "\"id\":\"no such job\"");
    free(body);
    json_t *st = state(&a);
    CHECK_EQ(json_array_size(json_object_get(st, "jobs")), 0);
    json_decref(st);
    console_stop(&a);
}

/* A message to a console's peer service, as a peer would send it. */
static int peer_send(const char *target, const char *msg, char **why)
{
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    CHECK(ch != NULL);
    uint8_t *resp = NULL;
    size_t rlen = 0;
    int st = ag_rpc_unary(ch, PEER_METHOD, msg, strlen(msg), ag_deadline_in_ms(5000), &resp,
                          &rlen, why);
    ag_free(resp);
    ag_rpc_channel_free(ch);
    return st;
}

/* The console address of party in cfg ("127.0.0.1:PORT"). */
static void console_addr(const char *cfg, const char *party, char *out, size_t cap)
{
    const char *text = ag_test_read_file(cfg);
    char key[64];
    snprintf(key, sizeof(key), "%s: {", party);
    const char *p = strstr(text, key);
    CHECK(p != NULL);
    p = strstr(p, "console: \"");
    CHECK(p != NULL);
    p += strlen("console: \"");
    snprintf(out, cap, "%.*s", (int)strcspn(p, "\""), p);
}

TEST_TIMEOUT(console_job_starts_only_with_every_partys_own_approval, 60)
{
    inputs();
    const char *cfg = write_cluster(NULL);
    char cfgpath[600], bob_peer[64];
    snprintf(cfgpath, sizeof(cfgpath), "%s", cfg);
    console_addr(cfgpath, "bob", bob_peer, sizeof(bob_peer));
    console a, b;
    console_start(&a, cfgpath, "alice");
    console_start(&b, cfgpath, "bob");
    char json[2048], *body, id[80], s[600];
    snprintf(json, sizeof(json), "{\"kind\": \"psi\", \"input\": \"%s\", \"keys\": \"id\"}",
             ag_test_path("a.csv"));
    CHECK_EQ(post(&a, "/api/jobs", json, &body), 201);
    free(body);
    wait_job_state(&b, "proposed", 10);
    job_field(&b, "id", id, sizeof(id));
    CHECK_STR_EQ(job_field(&b, "proposer", s, sizeof(s)), "alice");

    /* a start bob's analyst did not approve is refused, whoever sends it */
    char msg[300], *why = NULL;
    snprintf(msg, sizeof(msg), "{\"type\": \"start\", \"from\": \"alice\", \"id\": \"%s\"}", id);
    CHECK_EQ(peer_send(bob_peer, msg, &why), AG_RPC_FAILED_PRECONDITION);
    CHECK_CONTAINS(why, "party bob has not approved job");
    ag_free(why);
    why = NULL;
    snprintf(msg, sizeof(msg), "{\"type\": \"start\", \"from\": \"bob\", \"id\": \"%s\"}", id);
    CHECK_EQ(peer_send(bob_peer, msg, &why), AG_RPC_PERMISSION_DENIED);
    CHECK_CONTAINS(why, "only job");
    ag_free(why);
    why = NULL;
    CHECK_EQ(peer_send(bob_peer, "{\"type\": \"start\", \"from\": \"mallory\", \"id\": \"x\"}",
                       &why), AG_RPC_INVALID_ARGUMENT);
    CHECK_CONTAINS(why, "'from': no party of the cluster");
    ag_free(why);
    CHECK_STR_EQ(job_field(&b, "state", s, sizeof(s)), "proposed");

    /* a decision forged for bob (plaintext: nobody proves a name) makes alice
     * start her part, but bob's console still refuses to start his, and
     * alice's job fails naming why instead of waiting for a peer that will
     * never come */
    why = NULL;
    snprintf(msg, sizeof(msg), "{\"type\": \"decide\", \"from\": \"bob\", \"id\": \"%s\", "
             "\"approve\": true}", id);
    char alice_peer[64];
    console_addr(cfgpath, "alice", alice_peer, sizeof(alice_peer));
    CHECK_EQ(peer_send(alice_peer, msg, &why), AG_RPC_OK);
    ag_free(why);
    wait_job_state(&a, "failed", 30);
    CHECK_CONTAINS(job_field(&a, "error", s, sizeof(s)), "party bob's console: "
                   "FAILED_PRECONDITION: party bob has not approved job");
    CHECK_STR_EQ(job_field(&b, "state", s, sizeof(s)), "proposed");
    char log[700];
    snprintf(log, sizeof(log), "%s/alice/%s.alice.log", ag_test_tmpdir(), id);
    CHECK(access(log, F_OK) == 0); /* alice's part started... */
    snprintf(log, sizeof(log), "%s/bob/%s.bob.log", ag_test_tmpdir(), id);
    CHECK(access(log, F_OK) != 0); /* ...bob never ran anything */

    /* bob declines: the job ends at both */
    snprintf(json, sizeof(json), "{\"id\": \"%s\", \"approve\": false}", id);
    CHECK_EQ(post(&b, "/api/decide", json, &body), 200);
    free(body);
    CHECK_STR_EQ(job_field(&b, "state", s, sizeof(s)), "declined");
    CHECK_STR_EQ(job_field(&b, "error", s, sizeof(s)), "bob declined");
    CHECK_EQ(post(&b, "/api/decide", json, &body), 400); /* decided already */
    CHECK_CONTAINS(body, "the job does not wait for this party's decision");
    free(body);
    console_stop(&a);
    console_stop(&b);
}

static void pki(char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/pki", ag_test_tmpdir());
    const char *init[] = {ag_test_bin("argot"), "ca", "init", "--dir", dir, NULL};
    ag_test_proc p;
    CHECK_EQ(ag_test_run(&p, init, NULL, 30), 0);
    ag_test_proc_cleanup(&p);
    for (int i = 0; i < 2; i++) {
        const char *issue[] = {ag_test_bin("argot"), "ca", "issue", i ? "bob" : "alice",
                               "--dir", dir, NULL};
        CHECK_EQ(ag_test_run(&p, issue, NULL, 30), 0);
        ag_test_proc_cleanup(&p);
    }
}

TEST_TIMEOUT(console_tls_peer_is_the_party_its_certificate_names, 60)
{
    char dir[600], tls[4096];
    pki(dir, sizeof(dir));
    /* two configs, one per party, each with its own certificate */
    console a, b;
    const char *names[2] = {"alice", "bob"};
    char cfgs[2][700], base[600];
    snprintf(base, sizeof(base), "%s", ag_test_read_file(write_cluster(NULL)));
    for (int i = 0; i < 2; i++) {
        snprintf(tls, sizeof(tls), "%stls: {cert: %s/%s.crt, key: %s/%s.key, ca: %s/ca.crt}\n",
                 base, dir, names[i], dir, names[i], dir);
        char name[64];
        snprintf(name, sizeof(name), "cluster-%s.yaml", names[i]);
        snprintf(cfgs[i], sizeof(cfgs[i]), "%s", ag_test_write_file(name, tls, strlen(tls)));
    }
    console_start(&a, cfgs[0], "alice");
    console_start(&b, cfgs[1], "bob");
    /* each sees the other reachable over mutual TLS */
    bool up = false;
    for (int i = 0; i < 100 && !up; i++) {
        json_t *st = state(&a);
        json_t *p = json_array_get(json_object_get(st, "parties"), 1);
        up = strcmp(json_string_value(json_object_get(p, "status")), "reachable") == 0;
        if (up)
            CHECK_CONTAINS(json_string_value(json_object_get(p, "identity")),
                           "certificate for 'bob'");
        json_decref(st);
        if (!up)
            usleep(100 * 1000);
    }
    CHECK(up);
    /* bob's certificate cannot speak for alice */
    char alice_peer[64], *why = NULL;
    console_addr(cfgs[0], "alice", alice_peer, sizeof(alice_peer));
    ag_rpc_channel_opts co;
    ag_rpc_channel_opts_init(&co);
    char ca[700], crt[700], key[700];
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    snprintf(crt, sizeof(crt), "%s/bob.crt", dir);
    snprintf(key, sizeof(key), "%s/bob.key", dir);
    co.tls_ca_file = ca;
    co.tls_cert_file = crt;
    co.tls_key_file = key;
    co.tls_server_name = "alice";
    ag_rpc_channel *ch = ag_rpc_channel_new(alice_peer, &co);
    CHECK(ch != NULL);
    static const char forged[] = "{\"type\": \"ping\", \"from\": \"alice\"}";
    uint8_t *resp = NULL;
    size_t rlen;
    CHECK_EQ(ag_rpc_unary(ch, PEER_METHOD, forged, strlen(forged), ag_deadline_in_ms(5000),
                          &resp, &rlen, &why), AG_RPC_PERMISSION_DENIED);
    CHECK_CONTAINS(why, "a certificate for 'bob' may not speak for party alice");
    ag_free(why);
    ag_free(resp);
    ag_rpc_channel_free(ch);
    /* and a client without a certificate does not get in at all */
    why = NULL;
    CHECK(peer_send(alice_peer, forged, &why) != AG_RPC_OK);
    ag_free(why);
    console_stop(&a);
    console_stop(&b);
}

/* A PNG file of some size (a page, not an empty frame). */
static void check_png(const char *dir, const char *name)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    if (stat(path, &st) != 0)
        FAIL("no screenshot %s", path);
    CHECK(st.st_size > 10000);
    FILE *f = fopen(path, "rb");
    unsigned char sig[8];
    CHECK(f && fread(sig, 1, 8, f) == 8);
    fclose(f);
    CHECK(memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0);
}

static const char *node_bin(void)
{
    return access("/usr/bin/node", X_OK) == 0 ? "/usr/bin/node" : "node";
}

TEST_TIMEOUT(console_browser_jobs_proposed_approved_and_kept, 150)
{
    if (access("tests/browser/node_modules/playwright-core/package.json", R_OK) != 0)
        FAIL("tests/browser/node_modules has no playwright-core: run scripts/deps.sh "
             "(npm ci in tests/browser)");
    if (access("/usr/bin/chromium", X_OK) != 0)
        FAIL("/usr/bin/chromium is not installed (scripts/deps.sh installs it)");
    inputs();
    const char *cfg = write_cluster(NULL);
    char cfgpath[600];
    snprintf(cfgpath, sizeof(cfgpath), "%s", cfg);
    console a, b;
    console_start(&a, cfgpath, "alice");
    console_start(&b, cfgpath, "bob");
    char shots[600], ap[16], bp[16];
    snprintf(shots, sizeof(shots), "%s/shots", ag_test_tmpdir());
    CHECK(mkdir(shots, 0700) == 0);
    snprintf(ap, sizeof(ap), "%d", a.port);
    snprintf(bp, sizeof(bp), "%d", b.port);
    setenv("ALICE_PORT", ap, 1);
    setenv("ALICE_TOKEN", a.token, 1);
    setenv("BOB_PORT", bp, 1);
    setenv("BOB_TOKEN", b.token, 1);
    setenv("DATA", ag_test_tmpdir(), 1);
    setenv("SHOTS", shots, 1);
    const char *argv[] = {node_bin(), "tests/browser/console.mjs", NULL};
    ag_test_proc p;
    int rc = ag_test_run(&p, argv, NULL, 90);
    if (rc != 0)
        FAIL("the browser test exited %d:\n%s\n%s", rc, p.out, p.err);
    CHECK_CONTAINS(p.out, "console browser test: ok");
    ag_test_proc_cleanup(&p);
    check_png(shots, "alice-form-error.png");
    check_png(shots, "bob-approval.png");
    check_png(shots, "alice-done.png");
    check_png(shots, "bob-done.png");
    check_png(shots, "alice-lr-done.png");
    check_png(shots, "bob-lr-done.png");
    check_png(shots, "alice-stats-done.png");
    check_png(shots, "alice-predict-done.png");
    CHECK_STR_EQ(ag_test_read_file(ag_test_path("bob_out.csv")), "uid,city\n1,rome\n3,paris\n");

    /* the history survives a restart */
    console_stop(&a);
    console_start(&a, cfgpath, "alice");
    json_t *st = state(&a);
    json_t *jobs = json_object_get(st, "jobs");
    CHECK_EQ(json_array_size(jobs), 4);
    json_t *sj = json_array_get(jobs, 0);
    CHECK_STR_EQ(json_string_value(json_object_get(sj, "kind")), "stats");
    json_t *sres = json_object_get(json_object_get(sj, "result"), "stats");
    CHECK_EQ(json_integer_value(json_object_get(sres, "rows")), 60);
    json_t *x1 = json_object_get(json_object_get(sres, "columns"), "x1");
    /* the mean of alice's x1 column, computed here from the file */
    double sum = 0;
    const char *text = ag_test_read_file(ag_test_path("alice_lr.csv"));
    for (const char *q = strchr(text, '\n'); q && q[1]; q = strchr(q + 1, '\n')) {
        const char *comma = strchr(q + 1, ',');
        sum += atof(comma + 1);
    }
    double mean = json_real_value(json_object_get(x1, "mean"));
    CHECK(mean > sum / 60 - 1e-3 && mean < sum / 60 + 1e-3);
    json_t *pr = json_array_get(jobs, 1);
    CHECK_STR_EQ(json_string_value(json_object_get(pr, "kind")), "lr-predict");
    json_t *ev = json_object_get(json_object_get(pr, "result"), "evaluation");
    CHECK_EQ(json_integer_value(json_object_get(ev, "rows")), 60);
    CHECK(json_real_value(json_object_get(ev, "auc")) >= 0.8);
    json_t *lr = json_array_get(jobs, 2);
    CHECK_STR_EQ(json_string_value(json_object_get(lr, "kind")), "lr-train");
    CHECK_STR_EQ(json_string_value(json_object_get(lr, "state")), "done");
    CHECK_STR_EQ(json_string_value(json_object_get(lr, "label")), "alice:y");
    json_t *losses = json_object_get(json_object_get(lr, "result"), "losses");
    CHECK_EQ(json_array_size(losses), 4);
    CHECK(json_real_value(json_array_get(losses, 3)) < json_real_value(json_array_get(losses, 0)));
    CHECK(access(ag_test_path("alice_model.json"), R_OK) == 0);
    json_t *j = json_array_get(jobs, 3);
    CHECK_STR_EQ(json_string_value(json_object_get(j, "state")), "done");
    CHECK_STR_EQ(json_string_value(json_object_get(j, "proposer")), "alice");
    json_t *r = json_object_get(j, "result");
    CHECK_EQ(json_integer_value(json_object_get(r, "intersection")), 2);
    CHECK(json_integer_value(json_object_get(r, "bytes_sent")) > 0);
    json_t *bobd = json_array_get(json_object_get(j, "parties"), 1);
    CHECK_STR_EQ(json_string_value(json_object_get(bobd, "decision")), "approved");
    CHECK(json_integer_value(json_object_get(j, "finished_ms")) >=
          json_integer_value(json_object_get(j, "started_ms")));
    json_decref(st);
    console_stop(&a);
    console_stop(&b);
}

/* A resource manager and one node manager on loopback: their pids, and the
 * RM's address in rm_addr. */
static void sched_start(pid_t *rm, pid_t *nm, char rm_addr[64])
{
    char yaml[1024], line[512];
    snprintf(yaml, sizeof(yaml), "address: \"127.0.0.1:0\"\nlog: {level: warn}\n");
    const char *path = ag_test_write_file("rm.yaml", yaml, strlen(yaml));
    const char *argv[] = {ag_test_bin("argot"), "rm", "--config", path, NULL};
    int fd;
    *rm = ag_test_spawn(argv, &fd);
    CHECK(ag_test_read_line(fd, line, sizeof(line), 30) > 0);
    CHECK(sscanf(line, "rm listening on %63s", rm_addr) == 1);
    close(fd);
    *nm = ag_test_nm_start(0, rm_addr, 4096, 4, NULL);
}

/* The infrastructure views: alice's console reads her gateway's admin
 * state (one gRPC call through the gateway, to bob's console as a backend,
 * shows as a cluster with its endpoint, success rate and latency) and her
 * resource manager (its node, queues and a finished application); her page
 * shows both (tests/browser/infra.mjs). */
TEST_TIMEOUT(console_shows_the_partys_gateway_and_cluster, 150)
{
    if (access("tests/browser/node_modules/playwright-core/package.json", R_OK) != 0)
        FAIL("tests/browser/node_modules has no playwright-core: run scripts/deps.sh");
    pid_t rm, nm;
    char rm_addr[64];
    sched_start(&rm, &nm, rm_addr);
    const char *sub[] = {ag_test_bin("argot"), "app", "submit", "--rm", rm_addr, "--name",
                         "console-view", "--memory", "256", "--wait", "--", "/bin/true", NULL};
    ag_test_proc sp;
    int src = ag_test_run(&sp, sub, NULL, 90);
    if (src != 0)
        FAIL("argot app submit exited %d: %s", src, sp.err);
    ag_test_proc_cleanup(&sp);
    const char *cfg = write_cluster(NULL);
    char cfgpath[600], bob_peer[64];
    snprintf(cfgpath, sizeof(cfgpath), "%s", cfg);
    console_addr(cfgpath, "bob", bob_peer, sizeof(bob_peer));
    console b;
    console_start(&b, cfgpath, "bob");
    char dir[700], text[2048];
    snprintf(dir, sizeof(dir), "%s/disco", ag_test_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(text, sizeof(text), "127.0.0.1 %s\n", strchr(bob_peer, ':') + 1);
    ag_test_write_file("disco/console", text, strlen(text));
    snprintf(text, sizeof(text),
             "admin: {ip: 127.0.0.1, port: 0}\n"
             "namers:\n  - {kind: fs, rootDir: disco}\n"
             "routers:\n"
             "  - protocol: h2\n    label: grpc\n"
             "    identifier: {kind: header, header: x-svc}\n"
             "    dtab: |\n      /svc => /#/fs;\n"
             "    servers: [{ip: 127.0.0.1, port: 0}]\n");
    const char *mcfg = ag_test_write_file("mesh.yaml", text, strlen(text));
    const char *margv[] = {ag_test_bin("argot"), "mesh", "--config", mcfg, NULL};
    int mfd;
    pid_t mesh = ag_test_spawn(margv, &mfd);
    char line[256], addr[64], label[32], router[64] = "", admin[64] = "";
    while (!admin[0]) {
        if (ag_test_read_line(mfd, line, sizeof(line), 20) < 0)
            FAIL("argot mesh did not say where it listens");
        if (sscanf(line, "mesh router %31s listening on %63s", label, addr) == 2)
            snprintf(router, sizeof(router), "%s", addr);
        else if (sscanf(line, "mesh admin listening on %63s", addr) == 1)
            snprintf(admin, sizeof(admin), "%s", addr);
    }
    CHECK(router[0] != '\0');

    /* a call through the gateway to bob's console */
    ag_rpc_channel *ch = ag_rpc_channel_new(router, NULL);
    CHECK(ch != NULL);
    ag_rpc_call *call = ag_rpc_call_new(ch, PEER_METHOD, ag_deadline_in_ms(5000));
    CHECK(call != NULL);
    CHECK_OK(ag_rpc_call_add_metadata(call, "x-svc", "console", 7));
    static const char ping[] = "{\"type\": \"ping\", \"from\": \"alice\"}";
    CHECK_OK(ag_rpc_call_send(call, ping, strlen(ping)));
    CHECK_OK(ag_rpc_call_close_send(call));
    const char *why = NULL;
    CHECK_EQ(ag_rpc_call_status(call, &why), AG_RPC_OK);
    ag_rpc_call_free(call);
    ag_rpc_channel_free(ch);

    const char *extra[] = {"--mesh-admin", admin, "--rm", rm_addr, NULL};
    console a;
    console_start_with(&a, cfgpath, "alice", extra);
    json_t *cl = NULL, *st = NULL;
    bool nodes = false;
    for (int i = 0; i < 150 && !(cl && nodes); i++) {
        json_decref(st);
        st = state(&a);
        json_t *g = json_object_get(st, "gateway");
        CHECK_STR_EQ(json_string_value(json_object_get(g, "admin")), admin);
        json_t *r0 = json_array_get(json_object_get(g, "routers"), 0);
        cl = json_array_get(json_object_get(r0, "clusters"), 0);
        if (r0)
            CHECK_STR_EQ(json_string_value(json_object_get(r0, "label")), "grpc");
        /* the RM is read just after the gateway, in the same round */
        nodes = json_array_size(json_object_get(json_object_get(st, "rm"), "nodes")) > 0;
        if (!(cl && nodes))
            usleep(100 * 1000);
    }
    if (!cl || !nodes)
        FAIL("alice's state lacks %s", !cl ? "the gateway's cluster" : "the RM's nodes");
    CHECK_STR_EQ(json_string_value(json_object_get(cl, "id")), "/#/fs/console");
    CHECK_EQ(json_integer_value(json_object_get(cl, "successes")), 1);
    CHECK(json_number_value(json_object_get(cl, "success_rate")) == 1.0);
    CHECK(json_object_get(cl, "p50_ms") != NULL);
    json_t *ep = json_array_get(json_object_get(cl, "endpoints"), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(ep, "addr")), bob_peer);
    json_t *rmv = json_object_get(st, "rm");
    CHECK_STR_EQ(json_string_value(json_object_get(rmv, "address")), rm_addr);
    CHECK_STR_EQ(json_string_value(json_object_get(rmv, "why")), "");
    json_t *node = json_array_get(json_object_get(rmv, "nodes"), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(node, "state")), "RUNNING");
    CHECK_EQ(json_integer_value(json_object_get(node, "total_mb")), 4096);
    json_t *app = json_array_get(json_object_get(rmv, "applications"), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(app, "name")), "console-view");
    CHECK_STR_EQ(json_string_value(json_object_get(app, "state")), "FINISHED");
    CHECK_STR_EQ(json_string_value(json_object_get(
                     json_array_get(json_object_get(rmv, "queues"), 0), "name")), "root");
    json_decref(st);

    char shots[700], ap[16];
    snprintf(shots, sizeof(shots), "%s/shots", ag_test_tmpdir());
    CHECK(mkdir(shots, 0700) == 0);
    snprintf(ap, sizeof(ap), "%d", a.port);
    setenv("ALICE_PORT", ap, 1);
    setenv("ALICE_TOKEN", a.token, 1);
    setenv("SHOTS", shots, 1);
    setenv("CLUSTER_ID", "/#/fs/console", 1);
    setenv("APP_NAME", "console-view", 1);
    const char *nargv[] = {node_bin(), "tests/browser/infra.mjs", NULL};
    ag_test_proc np;
    int nrc = ag_test_run(&np, nargv, NULL, 60);
    if (nrc != 0)
        FAIL("the browser test exited %d:\n%s\n%s", nrc, np.out, np.err);
    CHECK_CONTAINS(np.out, "console infra test: ok");
    ag_test_proc_cleanup(&np);
    check_png(shots, "alice-infra.png");

    /* a gateway that went away is named, and the last state kept */
    CHECK_EQ(ag_test_stop(mesh), 0);
    close(mfd);
    bool named = false;
    for (int i = 0; i < 100 && !named; i++) {
        st = state(&a);
        const char *w = json_string_value(json_object_get(json_object_get(st, "gateway"), "why"));
        named = w && strstr(w, "cannot connect to") != NULL;
        CHECK(json_array_size(json_object_get(json_object_get(st, "gateway"), "routers")) == 1);
        json_decref(st);
        if (!named)
            usleep(100 * 1000);
    }
    CHECK(named);
    console_stop(&a);
    console_stop(&b);
    CHECK_EQ(ag_test_stop(nm), 0);
    CHECK_EQ(ag_test_stop(rm), 0);
}

/* The cluster view over mutual TLS and an RM list: the first address is
 * dead (as a standby RM is), the second a TLS RM that wants a client
 * certificate; the console finds the RM and shows its queues. The TLS
 * flags without --rm are refused. */
TEST_TIMEOUT(console_reads_a_tls_rm_through_a_list, 60)
{
    const char *pki = ag_test_pki();
    char yaml[2048], rm_addr[64], list[160], cert[600], key[600], ca[600];
    snprintf(yaml, sizeof(yaml),
             "address: \"127.0.0.1:0\"\nlog: {level: warn}\n"
             "tls: {cert: %s/server.crt, key: %s/server.key, ca: %s/ca.crt}\n",
             pki, pki, pki);
    const char *path = ag_test_write_file("rm.yaml", yaml, strlen(yaml));
    const char *argv[] = {ag_test_bin("argot"), "rm", "--config", path, NULL};
    int fd;
    pid_t rm = ag_test_spawn(argv, &fd);
    ag_test_read_listening(fd, "rm", rm_addr, sizeof(rm_addr));
    close(fd);
    snprintf(list, sizeof(list), "127.0.0.1:%d,%s", ag_test_free_port(), rm_addr);
    snprintf(cert, sizeof(cert), "%s/alice.crt", pki);
    snprintf(key, sizeof(key), "%s/alice.key", pki);
    snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
    const char *cfg = write_cluster(NULL);
    char cfgpath[600];
    snprintf(cfgpath, sizeof(cfgpath), "%s", cfg);

    /* the TLS files without an RM */
    const char *bad[] = {ag_test_bin("argot"), "console", "--config", cfgpath, "--party",
                         "alice", "--listen", "127.0.0.1:0", "--rm-tls-ca", ca, NULL};
    ag_test_proc p;
    CHECK(ag_test_run(&p, bad, NULL, 30) != 0);
    CHECK_CONTAINS(p.err, "--rm-tls-*: without --rm");
    ag_test_proc_cleanup(&p);

    const char *extra[] = {"--rm", list, "--rm-tls-cert", cert, "--rm-tls-key", key,
                           "--rm-tls-ca", ca, NULL};
    console a;
    console_start_with(&a, cfgpath, "alice", extra);
    json_t *st = NULL;
    const char *root = NULL;
    for (int i = 0; i < 150 && !root; i++) {
        json_decref(st);
        st = state(&a);
        json_t *q = json_array_get(json_object_get(json_object_get(st, "rm"), "queues"), 0);
        root = json_string_value(json_object_get(q, "name"));
        if (!root)
            usleep(100 * 1000);
    }
    if (!root)
        FAIL("alice's state has no RM queues: %s",
             json_string_value(json_object_get(json_object_get(st, "rm"), "why")));
    CHECK_STR_EQ(root, "root");
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(st, "rm"), "why")), "");
    json_decref(st);
    console_stop(&a);
    CHECK_EQ(ag_test_stop(rm), 0);
}
