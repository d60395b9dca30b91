/* A real etcd for tests (etcd.h). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "argot/rpc.h"
#include "etcd.h"
#include "etcd/v3/rpc.argot.h"
#include "etcd/v3/rpc.pb-c.h"
#include "test.h"

/* Picks the ports and the data dir (name under the tmpdir); starts nothing. */
void ag_test_etcd_init(ag_test_etcd *e, const char *name)
{
    memset(e, 0, sizeof(*e));
    e->pid = -1;
    e->out_fd = -1;
    e->cport = ag_test_free_port();
    do
        e->pport = ag_test_free_port();
    while (e->pport == e->cport);
    snprintf(e->dir, sizeof(e->dir), "%s/%s.data", ag_test_tmpdir(), name);
    snprintf(e->log, sizeof(e->log), "%s/%s.log", ag_test_tmpdir(), name);
    snprintf(e->target, sizeof(e->target), "127.0.0.1:%d", e->cport);
}

/* A Range of one key on a fresh channel: true if etcd answered OK. */
bool ag_test_etcd_answers(const ag_test_etcd *e)
{
    ag_rpc_channel_opts o;
    ag_rpc_channel_opts_init(&o);
    o.connect_timeout_ms = 500;
    ag_rpc_channel *ch = ag_rpc_channel_new(e->target, &o);
    CHECK(ch != NULL);
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key.data = (uint8_t *)"/ping";
    req.key.len = 5;
    Etcdserverpb__RangeResponse *resp = NULL;
    char *msg = NULL;
    int st = etcdserverpb__kv__range__invoke(ch, &req, ag_deadline_in_ms(1000), &resp, &msg);
    ag_rpc_msg_free(resp ? &resp->base : NULL);
    ag_free(msg);
    ag_rpc_channel_free(ch);
    return st == AG_RPC_OK;
}

/* Starts etcd (again: same ports and data dir) and waits until it answers. */
void ag_test_etcd_start(ag_test_etcd *e)
{
    char curl[64], purl[64], cluster[96];
    snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", e->cport);
    snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", e->pport);
    snprintf(cluster, sizeof(cluster), "default=%s", purl);
    const char *argv[] = {AG_TEST_ETCD_BIN,  "--name",
                          "default", "--data-dir",
                          e->dir,    "--listen-client-urls",
                          curl,      "--advertise-client-urls",
                          curl,      "--listen-peer-urls",
                          purl,      "--initial-advertise-peer-urls",
                          purl,      "--initial-cluster",
                          cluster,   "--logger",
                          "zap",     "--log-outputs",
                          e->log,    "--log-level",
                          "error",   NULL};
    e->pid = ag_test_spawn(argv, &e->out_fd);
    uint64_t end = ag_now_ms() + 30000;
    while (!ag_test_etcd_answers(e)) {
        int status;
        if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
            e->pid = -1;
            FAIL("etcd exited (status %d) before answering; see %s", status, e->log);
        }
        if (ag_now_ms() > end)
            FAIL("etcd on %s did not answer within 30 s; see %s", e->target, e->log);
        ag_sleep_ms(50);
    }
}

long long ag_test_etcd_put(const ag_test_etcd *e, const char *key, const char *value)
{
    ag_rpc_channel *ch = ag_rpc_channel_new(e->target, NULL);
    CHECK(ch != NULL);
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    req.key.data = (uint8_t *)key;
    req.key.len = strlen(key);
    req.value.data = (uint8_t *)value;
    req.value.len = strlen(value);
    Etcdserverpb__PutResponse *resp = NULL;
    char *msg = NULL;
    int st = etcdserverpb__kv__put__invoke(ch, &req, ag_deadline_in_ms(5000), &resp, &msg);
    if (st != AG_RPC_OK)
        FAIL("Put %s: %s %s", key, ag_rpc_status_name(st), msg ? msg : "");
    long long rev = resp->header ? (long long)resp->header->revision : 0;
    ag_rpc_msg_free(&resp->base);
    ag_free(msg);
    ag_rpc_channel_free(ch);
    return rev;
}

/* SIGKILL, as a crash. */
void ag_test_etcd_kill(ag_test_etcd *e)
{
    int status;
    CHECK(e->pid > 0);
    kill(e->pid, SIGKILL);
    waitpid(e->pid, &status, 0);
    close(e->out_fd);
    e->pid = -1;
    e->out_fd = -1;
}

void ag_test_etcd_stop(ag_test_etcd *e)
{
    if (e->pid > 0) {
        ag_test_stop(e->pid);
        close(e->out_fd);
    }
    e->pid = -1;
    e->out_fd = -1;
}
