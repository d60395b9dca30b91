/*
 * argot nm end to end: the node manager as its own process against a fake
 * resource manager served here (argot.sched.v1.ResourceTracker with the
 * generated stubs: it records registrations and heartbeats and hands out a
 * container master key), with this test acting as the ApplicationMaster
 * (StartContainers with tokens it signs with that key through token.c).
 * Containers run and their exit statuses reach the RM in heartbeats; forged,
 * foreign, expired and replayed tokens are refused per container; stopping
 * works; the RM restarting gets a new registration listing the running
 * containers; the RM's SHUTDOWN and SIGTERM end the NM with exit 0 and its
 * containers killed; config errors name file:line:col.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "argot/rpc.h"
#include "argot/sched/v1/sched.argot.h"
#include "sched/token.h"
#include "test.h"

#define TS 1700000000000LL /* the fake RM's cluster timestamp */

/* ---- the fake RM ------------------------------------------------------------------ */

struct seen {
    char name[128];
    int state;
    int exit_status;
    char diagnostics[512];
};

struct fake_rm {
    ag_rpc_server *srv;
    int port;
    pthread_mutex_t mu;
    ag_sched_key key; /* sent at registration and in every heartbeat */
    ag_sched_key nmkey; /* the NM-token master key, sent the same way */
    int registrations;
    int heartbeats;
    int last_reg_containers; /* container statuses in the last registration */
    int last_reg_running_apps;
    char node_host[128];
    int node_port;
    int32_t last_response_id;
    bool shutdown; /* answer SHUTDOWN */
    struct seen seen[32];
    int nseen;
    Argot__Sched__V1__ResourceTracker_Handlers h;
};

static const char *cid_name(const Argot__Sched__V1__ContainerId *id, char *buf, size_t cap)
{
    const Argot__Sched__V1__ApplicationAttemptId *a = id ? id->app_attempt_id : NULL;
    const Argot__Sched__V1__ApplicationId *ap = a ? a->application_id : NULL;
    snprintf(buf, cap, "container_%lld_%04d_%02d_%06lld",
             (long long)(ap ? ap->cluster_timestamp : 0), ap ? (int)ap->id : 0,
             a ? (int)a->attempt_id : 0, (long long)(id ? id->id : 0));
    return buf;
}

static int rm_register(ag_rpc_call *c, const Argot__Sched__V1__RegisterNodeManagerRequest *req,
                       void *ud)
{
    struct fake_rm *rm = ud;
    Argot__Sched__V1__RegisterNodeManagerResponse resp =
        ARGOT__SCHED__V1__REGISTER_NODE_MANAGER_RESPONSE__INIT;
    Argot__Sched__V1__MasterKey mk = ARGOT__SCHED__V1__MASTER_KEY__INIT;
    pthread_mutex_lock(&rm->mu);
    rm->registrations++;
    rm->last_reg_containers = (int)req->n_container_statuses;
    rm->last_reg_running_apps = (int)req->n_running_applications;
    if (req->node_id) {
        snprintf(rm->node_host, sizeof(rm->node_host), "%s", req->node_id->host);
        rm->node_port = req->node_id->port;
    }
    mk.key_id = rm->key.id;
    mk.bytes.data = rm->key.bytes;
    mk.bytes.len = sizeof(rm->key.bytes);
    resp.container_token_master_key = &mk;
    Argot__Sched__V1__MasterKey nk = ARGOT__SCHED__V1__MASTER_KEY__INIT;
    nk.key_id = rm->nmkey.id;
    nk.bytes.data = rm->nmkey.bytes;
    nk.bytes.len = sizeof(rm->nmkey.bytes);
    resp.nm_token_master_key = &nk;
    resp.rm_identifier = TS;
    resp.next_heartbeat_interval_ms = 100;
    resp.node_action = rm->shutdown ? ARGOT__SCHED__V1__NODE_ACTION__SHUTDOWN
                                    : ARGOT__SCHED__V1__NODE_ACTION__NORMAL;
    int rc = argot__sched__v1__resource_tracker__register_node_manager__send_response(c, &resp, 0);
    pthread_mutex_unlock(&rm->mu);
    return rc < 0 ? AG_RPC_INTERNAL : AG_RPC_OK;
}

/* Records the statuses; acknowledges completed containers (so the NM may
 * forget them); RESYNC for a node this RM instance never registered. */
static int rm_heartbeat(ag_rpc_call *c, const Argot__Sched__V1__NodeHeartbeatRequest *req, void *ud)
{
    struct fake_rm *rm = ud;
    Argot__Sched__V1__NodeHeartbeatResponse resp = ARGOT__SCHED__V1__NODE_HEARTBEAT_RESPONSE__INIT;
    Argot__Sched__V1__MasterKey mk = ARGOT__SCHED__V1__MASTER_KEY__INIT;
    Argot__Sched__V1__ContainerId *done[32];
    pthread_mutex_lock(&rm->mu);
    rm->heartbeats++;
    const Argot__Sched__V1__NodeStatus *ns = req->node_status;
    if (rm->registrations == 0) {
        resp.node_action = ARGOT__SCHED__V1__NODE_ACTION__RESYNC;
    } else if (ns) {
        for (size_t i = 0; i < ns->n_container_statuses; i++) {
            const Argot__Sched__V1__ContainerStatus *s = ns->container_statuses[i];
            char name[128];
            cid_name(s->container_id, name, sizeof(name));
            int j = 0;
            while (j < rm->nseen && strcmp(rm->seen[j].name, name) != 0)
                j++;
            if (j == rm->nseen && rm->nseen < 32)
                rm->nseen++;
            if (j < 32) {
                snprintf(rm->seen[j].name, sizeof(rm->seen[j].name), "%s", name);
                rm->seen[j].state = s->state;
                rm->seen[j].exit_status = s->exit_status;
                snprintf(rm->seen[j].diagnostics, sizeof(rm->seen[j].diagnostics), "%s",
                         s->diagnostics ? s->diagnostics : "");
            }
            if (s->state == ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE &&
                resp.n_containers_to_be_removed_from_nm < 32)
                done[resp.n_containers_to_be_removed_from_nm++] = s->container_id;
        }
        resp.containers_to_be_removed_from_nm = done;
        resp.response_id = ns->response_id + 1;
        rm->last_response_id = resp.response_id;
    }
    mk.key_id = rm->key.id;
    mk.bytes.data = rm->key.bytes;
    mk.bytes.len = sizeof(rm->key.bytes);
    resp.container_token_master_key = &mk;
    Argot__Sched__V1__MasterKey nk = ARGOT__SCHED__V1__MASTER_KEY__INIT;
    nk.key_id = rm->nmkey.id;
    nk.bytes.data = rm->nmkey.bytes;
    nk.bytes.len = sizeof(rm->nmkey.bytes);
    resp.nm_token_master_key = &nk;
    resp.next_heartbeat_interval_ms = 100;
    if (rm->shutdown)
        resp.node_action = ARGOT__SCHED__V1__NODE_ACTION__SHUTDOWN;
    int rc = argot__sched__v1__resource_tracker__node_heartbeat__send_response(c, &resp, 0);
    pthread_mutex_unlock(&rm->mu);
    return rc < 0 ? AG_RPC_INTERNAL : AG_RPC_OK;
}

/* Serves a fake RM on port (0: any) with key. */
static struct fake_rm *rm_start(int port, const ag_sched_key *key)
{
    struct fake_rm *rm = calloc(1, sizeof(*rm));
    CHECK(rm != NULL);
    pthread_mutex_init(&rm->mu, NULL);
    rm->key = *key;
    /* the NM-token key follows from the container key, so that an RM
     * restarted with the same key has the same one (as a real RM does) */
    rm->nmkey.id = key->id + 10;
    for (size_t i = 0; i < sizeof(rm->nmkey.bytes); i++)
        rm->nmkey.bytes[i] = (uint8_t)(key->bytes[i] ^ 0x5a);
    rm->srv = ag_rpc_server_new(NULL);
    CHECK(rm->srv != NULL);
    rm->h.register_node_manager = rm_register;
    rm->h.node_heartbeat = rm_heartbeat;
    rm->h.ud = rm;
    CHECK_OK(argot__sched__v1__resource_tracker__register(rm->srv, &rm->h));
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    /* the port of an RM that just stopped may take a moment to free */
    int rc = -1;
    for (int i = 0; i < 50 && rc < 0; i++) {
        rc = ag_rpc_server_start(rm->srv, addr);
        if (rc < 0) {
            ag_rpc_server_free(rm->srv);
            rm->srv = ag_rpc_server_new(NULL);
            CHECK_OK(argot__sched__v1__resource_tracker__register(rm->srv, &rm->h));
            usleep(100000);
        }
    }
    CHECK_OK(rc);
    rm->port = ag_rpc_server_port(rm->srv);
    return rm;
}

static void rm_free(struct fake_rm *rm)
{
    ag_rpc_server_free(rm->srv);
    pthread_mutex_destroy(&rm->mu);
    free(rm);
}

/* Waits up to 20 s until *field (under rm->mu) is at least want. */
static void rm_wait_count(struct fake_rm *rm, const int *field, int want, const char *what)
{
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&rm->mu);
        int v = *field;
        pthread_mutex_unlock(&rm->mu);
        if (v >= want)
            return;
        usleep(10000);
    }
    FAIL("the fake RM never saw %d %s", want, what);
}

/* Waits up to 20 s for the RM to see container name complete; its status. */
static struct seen rm_wait_complete(struct fake_rm *rm, const char *name)
{
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&rm->mu);
        for (int j = 0; j < rm->nseen; j++) {
            if (strcmp(rm->seen[j].name, name) == 0 &&
                rm->seen[j].state == ARGOT__SCHED__V1__CONTAINER_STATE__C_COMPLETE) {
                struct seen s = rm->seen[j];
                pthread_mutex_unlock(&rm->mu);
                return s;
            }
        }
        pthread_mutex_unlock(&rm->mu);
        usleep(10000);
    }
    FAIL("the fake RM never saw %s complete", name);
}

/* ---- the NM process ---------------------------------------------------------------- */

struct nm_proc {
    pid_t pid;
    int out_fd;
    int port;
    int admin;
    char work[512];
};

/* Starts `argot nm` on port (0: any) against RM port rm_port with extra
 * YAML lines. */
static void nm_start_on(struct nm_proc *nm, int rm_port, int port, const char *extra)
{
    char yaml[2048];
    snprintf(nm->work, sizeof(nm->work), "%s", ag_test_path("work"));
    snprintf(yaml, sizeof(yaml),
             "rm: \"127.0.0.1:%d\"\n"
             "address: \"127.0.0.1:%d\"\n"
             "resources: {memory_mb: 2048, vcores: 2}\n"
             "work_dir: %s\n"
             "rack: /rack1\n"
             "labels: [fast]\n"
             "heartbeat_interval: 200ms\n"
             "kill_grace: 500ms\n"
             "admin: {address: \"127.0.0.1:0\"}\n"
             "log: {level: info}\n"
             "%s",
             rm_port, port, nm->work, extra ? extra : "");
    char path[512];
    snprintf(path, sizeof(path), "%s", ag_test_write_file("nm.yaml", yaml, strlen(yaml)));
    const char *argv[] = {ag_test_bin("argot"), "nm", "--config", path, NULL};
    nm->pid = ag_test_spawn(argv, &nm->out_fd);
    char line[256];
    if (ag_test_read_line(nm->out_fd, line, sizeof(line), 20) < 0)
        FAIL("the NM did not say where it listens");
    const char *want = "nm listening on 127.0.0.1:";
    if (strncmp(line, want, strlen(want)) != 0)
        FAIL("unexpected first line: %s", line);
    nm->port = atoi(line + strlen(want));
    CHECK(nm->port > 0);
    if (ag_test_read_line(nm->out_fd, line, sizeof(line), 20) < 0)
        FAIL("the NM did not say where its admin endpoint is");
    want = "nm admin on http://127.0.0.1:";
    if (strncmp(line, want, strlen(want)) != 0)
        FAIL("unexpected second line: %s", line);
    nm->admin = atoi(line + strlen(want));
}

static void nm_start(struct nm_proc *nm, int rm_port, const char *extra)
{
    nm_start_on(nm, rm_port, 0, extra);
}

/* GET path from 127.0.0.1:port: the whole response (the harness's). */
static char *http_get(int port, const char *path)
{
    char *r = ag_test_http(port, "GET", path, NULL);
    CHECK(r != NULL);
    return r;
}

/* ---- the AM's side -------------------------------------------------------------------- */

/* A container of application 1, attempt 1, its own storage. */
struct cid {
    Argot__Sched__V1__ContainerId c;
    Argot__Sched__V1__ApplicationAttemptId a;
    Argot__Sched__V1__ApplicationId app;
};

static Argot__Sched__V1__ContainerId *cid_make(struct cid *s, int64_t n)
{
    argot__sched__v1__container_id__init(&s->c);
    argot__sched__v1__application_attempt_id__init(&s->a);
    argot__sched__v1__application_id__init(&s->app);
    s->app.cluster_timestamp = TS;
    s->app.id = 1;
    s->a.application_id = &s->app;
    s->a.attempt_id = 1;
    s->c.app_attempt_id = &s->a;
    s->c.id = n;
    return &s->c;
}

/* One start request, with a token for container n on node host:port signed
 * with key (identifier naming key_id), expiring at expiry (wall ms), and the
 * command `sh -c script`. */
struct start {
    Argot__Sched__V1__StartContainerRequest r;
    Argot__Sched__V1__Token tok;
    Argot__Sched__V1__ContainerLaunchContext ctx;
    Argot__Sched__V1__ContainerLaunchContext__EnvironmentEntry env;
    Argot__Sched__V1__ContainerLaunchContext__EnvironmentEntry *envp[1];
    Argot__Sched__V1__LocalFile file;
    Argot__Sched__V1__LocalFile *filep[1];
    char *argv[3];
    uint8_t id[512];
    uint8_t pw[AG_SCHED_MAC_BYTES];
    struct cid cid;
};

static void start_make(struct start *s, const ag_sched_key *key, int32_t key_id, const char *host,
                       int port, int64_t n, int64_t expiry, const char *script)
{
    memset(s, 0, sizeof(*s));
    Argot__Sched__V1__ContainerTokenIdentifier tid =
        ARGOT__SCHED__V1__CONTAINER_TOKEN_IDENTIFIER__INIT;
    Argot__Sched__V1__NodeId node = ARGOT__SCHED__V1__NODE_ID__INIT;
    Argot__Sched__V1__Resource res = ARGOT__SCHED__V1__RESOURCE__INIT;
    node.host = (char *)host;
    node.port = port;
    res.memory_mb = 256;
    res.vcores = 1;
    tid.container_id = cid_make(&s->cid, n);
    tid.node_id = &node;
    tid.resource = &res;
    tid.app_submitter = (char *)"alice";
    tid.expiry_time = expiry;
    tid.master_key_id = key_id;
    tid.rm_identifier = TS;
    size_t len = protobuf_c_message_get_packed_size(&tid.base);
    CHECK(len <= sizeof(s->id));
    protobuf_c_message_pack(&tid.base, s->id);
    ag__sched_mac(key, s->id, len, s->pw);
    argot__sched__v1__token__init(&s->tok);
    s->tok.identifier.data = s->id;
    s->tok.identifier.len = len;
    s->tok.password.data = s->pw;
    s->tok.password.len = sizeof(s->pw);
    s->tok.kind = (char *)"ContainerToken";
    argot__sched__v1__container_launch_context__init(&s->ctx);
    s->argv[0] = (char *)"sh";
    s->argv[1] = (char *)"-c";
    s->argv[2] = (char *)script;
    s->ctx.n_command = 3;
    s->ctx.command = s->argv;
    argot__sched__v1__container_launch_context__environment_entry__init(&s->env);
    s->env.key = (char *)"GREETING";
    s->env.value = (char *)"hello";
    s->envp[0] = &s->env;
    s->ctx.n_environment = 1;
    s->ctx.environment = s->envp;
    argot__sched__v1__local_file__init(&s->file);
    s->file.path = (char *)"conf/job.txt";
    s->file.content.data = (uint8_t *)"job-config\n";
    s->file.content.len = 11;
    s->filep[0] = &s->file;
    s->ctx.n_files = 1;
    s->ctx.files = s->filep;
    argot__sched__v1__start_container_request__init(&s->r);
    s->r.container_token = &s->tok;
    s->r.container_launch_context = &s->ctx;
}

/* The NM token the ContainerManagement calls below carry ("" none). */
static char nm_token[2048];

/* Makes nm_token: application app's attempt 1 on host:port, signed by key
 * (naming key_id), expiring at expiry (wall ms); container id 0 unless cid
 * (a container token's shape, to see it refused). */
static void nm_token_set(const ag_sched_key *key, int32_t key_id, const char *host, int port,
                         int32_t app, int64_t expiry, int64_t cid)
{
    Argot__Sched__V1__ContainerTokenIdentifier tid =
        ARGOT__SCHED__V1__CONTAINER_TOKEN_IDENTIFIER__INIT;
    Argot__Sched__V1__NodeId node = ARGOT__SCHED__V1__NODE_ID__INIT;
    struct cid c;
    node.host = (char *)host;
    node.port = port;
    tid.container_id = cid_make(&c, cid);
    c.app.id = app;
    tid.node_id = &node;
    tid.app_submitter = (char *)"alice";
    tid.expiry_time = expiry;
    tid.master_key_id = key_id;
    tid.rm_identifier = TS;
    uint8_t id[512], pw[AG_SCHED_MAC_BYTES];
    size_t len = protobuf_c_message_get_packed_size(&tid.base);
    CHECK(len <= sizeof(id));
    protobuf_c_message_pack(&tid.base, id);
    ag__sched_mac(key, id, len, pw);
    CHECK_OK(ag__sched_token_text(id, len, pw, sizeof(pw), nm_token, sizeof(nm_token)));
}

/* nm_token: application 1's for the NM on 127.0.0.1:port, valid 10 min. */
static void nm_token_default(const struct fake_rm *rm, int port)
{
    nm_token_set(&rm->nmkey, rm->nmkey.id, "127.0.0.1", port, 1, ag_wall_ms() + 600000, 0);
}

/* One ContainerManagement call to 127.0.0.1:port with nm_token: status,
 * *resp on OK, the status message into msg. */
static int cm_call(int port, const ag_rpc_method *m, const ProtobufCMessage *req,
                   ProtobufCMessage **resp, char *msg, size_t cap)
{
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    ag_rpc_channel *ch = ag_rpc_channel_new(target, NULL);
    CHECK(ch != NULL);
    *resp = NULL;
    ag_rpc_call *c = ag_rpc_call_start(ch, m, ag_deadline_in_ms(10000));
    CHECK(c != NULL);
    if (nm_token[0])
        CHECK_OK(ag_rpc_call_add_metadata(c, "argot-nm-token", nm_token, strlen(nm_token)));
    CHECK_OK(ag_rpc_call_send_msg(c, req, 0));
    CHECK_OK(ag_rpc_call_close_send(c));
    if (ag_rpc_call_recv_msg(c, m->output, resp) != 1)
        *resp = NULL;
    const char *message = NULL;
    int st = ag_rpc_call_status(c, &message);
    snprintf(msg, cap, "%s", message ? message : "");
    if (st != AG_RPC_OK) {
        ag_rpc_msg_free(*resp);
        *resp = NULL;
    }
    ag_rpc_call_free(c);
    ag_rpc_channel_free(ch);
    return st;
}

/* StartContainers with the n requests: the status, *resp on OK, the status
 * message into msg. */
static int start_call_st(int port, struct start **reqs, size_t n,
                         Argot__Sched__V1__StartContainersResponse **resp, char *msg, size_t cap)
{
    Argot__Sched__V1__StartContainersRequest req = ARGOT__SCHED__V1__START_CONTAINERS_REQUEST__INIT;
    Argot__Sched__V1__StartContainerRequest *rs[8];
    CHECK(n <= 8);
    for (size_t i = 0; i < n; i++)
        rs[i] = &reqs[i]->r;
    req.n_start_container_request = n;
    req.start_container_request = rs;
    return cm_call(port, &argot__sched__v1__container_management__start_containers__method,
                   &req.base, (ProtobufCMessage **)resp, msg, cap);
}

/* StartContainers with the n requests; the response (ag_rpc_msg_free). */
static Argot__Sched__V1__StartContainersResponse *start_call(int port, struct start **reqs,
                                                             size_t n)
{
    Argot__Sched__V1__StartContainersResponse *resp = NULL;
    char msg[512];
    int st = start_call_st(port, reqs, n, &resp, msg, sizeof(msg));
    if (st != AG_RPC_OK)
        FAIL("StartContainers: %s: %s", ag_rpc_status_name(st), msg);
    return resp;
}

/* The exception for container n in resp's failures, or NULL. */
static const char *failure_of(const Argot__Sched__V1__StartContainersResponse *resp, int64_t n)
{
    for (size_t i = 0; i < resp->n_failed_requests; i++)
        if (resp->failed_requests[i]->container_id &&
            resp->failed_requests[i]->container_id->id == n)
            return resp->failed_requests[i]->exception;
    return NULL;
}

/* Stops container n (or asks the status with stop false); the response's
 * single status or exception into buf, and returns the exit status (or
 * 1000 for RUNNING, -9999 for a failure). */
static int stop_or_status(int port, int64_t n, bool stop, char *buf, size_t cap)
{
    struct cid cs;
    Argot__Sched__V1__ContainerId *ids[1] = {cid_make(&cs, n)};
    int result = -9999;
    char msg[512];
    if (stop) {
        Argot__Sched__V1__StopContainersRequest req =
            ARGOT__SCHED__V1__STOP_CONTAINERS_REQUEST__INIT;
        req.n_container_id = 1;
        req.container_id = ids;
        Argot__Sched__V1__StopContainersResponse *resp = NULL;
        int st = cm_call(port, &argot__sched__v1__container_management__stop_containers__method,
                         &req.base, (ProtobufCMessage **)&resp, msg, sizeof(msg));
        if (st != AG_RPC_OK) {
            snprintf(buf, cap, "%s: %s", ag_rpc_status_name(st), msg);
            return -9999;
        }
        snprintf(buf, cap, "%s",
                 resp->n_failed_requests ? resp->failed_requests[0]->exception : "stopped");
        result = resp->n_succeeded_requests == 1 ? 0 : -9999;
        ag_rpc_msg_free(&resp->base);
    } else {
        Argot__Sched__V1__GetContainerStatusesRequest req =
            ARGOT__SCHED__V1__GET_CONTAINER_STATUSES_REQUEST__INIT;
        req.n_container_id = 1;
        req.container_id = ids;
        Argot__Sched__V1__GetContainerStatusesResponse *resp = NULL;
        int st =
            cm_call(port, &argot__sched__v1__container_management__get_container_statuses__method,
                    &req.base, (ProtobufCMessage **)&resp, msg, sizeof(msg));
        if (st != AG_RPC_OK) {
            snprintf(buf, cap, "%s: %s", ag_rpc_status_name(st), msg);
            return -9999;
        }
        if (resp->n_status == 1) {
            snprintf(buf, cap, "%s", resp->status[0]->diagnostics);
            result = resp->status[0]->state == ARGOT__SCHED__V1__CONTAINER_STATE__C_RUNNING
                         ? 1000
                         : resp->status[0]->exit_status;
        } else {
            snprintf(buf, cap, "%s",
                     resp->n_failed_requests ? resp->failed_requests[0]->exception : "");
        }
        ag_rpc_msg_free(&resp->base);
    }
    return result;
}

static const char *cname(int64_t n, char *buf, size_t cap)
{
    snprintf(buf, cap, "container_%lld_0001_01_%06lld", (long long)TS, (long long)n);
    return buf;
}

/* A file of container n's directory, whole. */
static const char *container_file(const struct nm_proc *nm, int64_t n, const char *file)
{
    char path[1024], name[128];
    snprintf(path, sizeof(path), "%s/application_%lld_0001/%s/%s", nm->work, (long long)TS,
             cname(n, name, sizeof(name)), file);
    return ag_test_read_file(path);
}

/* Waits up to 5 s for container n's file to hold a positive number. */
static long container_number(const struct nm_proc *nm, int64_t n, const char *file)
{
    char path[1024], name[128];
    snprintf(path, sizeof(path), "%s/application_%lld_0001/%s/%s", nm->work, (long long)TS,
             cname(n, name, sizeof(name)), file);
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(path, "r");
        long v = 0;
        if (f) {
            int got = fscanf(f, "%ld", &v);
            fclose(f);
            if (got == 1 && v > 0)
                return v;
        }
        usleep(10000);
    }
    FAIL("%s never held a number", path);
}

static bool alive(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static void key_make(ag_sched_key *k, int32_t id)
{
    CHECK_OK(ag__sched_key_new(k, id));
}

/* ---- tests ------------------------------------------------------------------------------ */

TEST_TIMEOUT(nm_runs_containers_and_refuses_bad_tokens, 90)
{
    ag_sched_key key, forged;
    key_make(&key, 7);
    key_make(&forged, 7); /* the same id, other bytes: a forger's guess */
    struct fake_rm *rm = rm_start(0, &key);
    struct nm_proc nm;
    nm_start(&nm, rm->port, NULL);
    rm_wait_count(rm, &rm->registrations, 1, "registrations");
    nm_token_default(rm, nm.port);
    rm_wait_count(rm, &rm->heartbeats, 2, "heartbeats");
    pthread_mutex_lock(&rm->mu);
    CHECK_STR_EQ(rm->node_host, "127.0.0.1");
    CHECK_EQ(rm->node_port, nm.port);
    pthread_mutex_unlock(&rm->mu);

    int64_t later = ag_wall_ms() + 60000;
    struct start good, bad, foreign, expired, unknown_key;
    start_make(&good, &key, 7, "127.0.0.1", nm.port, 2, later,
               "echo \"id=$ARGOT_CONTAINER_ID app=$ARGOT_APP_ID nm=$ARGOT_NM_HOST "
               "g=$GREETING\"; cat conf/job.txt; echo to-stderr >&2; exit 7");
    start_make(&bad, &forged, 7, "127.0.0.1", nm.port, 3, later, "touch ran; exit 0");
    start_make(&foreign, &key, 7, "127.0.0.1", nm.port + 1, 4, later, "touch ran; exit 0");
    start_make(&expired, &key, 7, "127.0.0.1", nm.port, 5, ag_wall_ms() - 1000,
               "touch ran; exit 0");
    start_make(&unknown_key, &key, 99, "127.0.0.1", nm.port, 6, later, "touch ran; exit 0");
    struct start *reqs[] = {&good, &bad, &foreign, &expired, &unknown_key};
    Argot__Sched__V1__StartContainersResponse *resp = start_call(nm.port, reqs, 5);
    CHECK_EQ(resp->n_succeeded_requests, 1);
    CHECK_EQ(resp->succeeded_requests[0]->id, 2);
    CHECK_EQ(resp->n_failed_requests, 4);
    CHECK_CONTAINS(failure_of(resp, 3), "invalid password (forged, or signed by another RM)");
    CHECK_CONTAINS(failure_of(resp, 4), "is for node 127.0.0.1:");
    CHECK_CONTAINS(failure_of(resp, 4), ", this is node 127.0.0.1:");
    CHECK_CONTAINS(failure_of(resp, 5), "expired");
    CHECK_CONTAINS(failure_of(resp, 6), "master key 99 is unknown to this node");
    ag_rpc_msg_free(&resp->base);

    /* the container ran; its exit status reached the RM in a heartbeat */
    char name[128];
    struct seen s = rm_wait_complete(rm, cname(2, name, sizeof(name)));
    CHECK_EQ(s.exit_status, 7);
    CHECK_CONTAINS(s.diagnostics, "exited with code 7");
    CHECK_CONTAINS(s.diagnostics, "limits: ");
    char want[512];
    snprintf(want, sizeof(want), "id=%s app=application_%lld_0001 nm=127.0.0.1:%d g=hello\n", name,
             (long long)TS, nm.port);
    CHECK_CONTAINS(container_file(&nm, 2, "stdout"), want);
    CHECK_CONTAINS(container_file(&nm, 2, "stdout"), "job-config\n");
    CHECK_STR_EQ(container_file(&nm, 2, "stderr"), "to-stderr\n");
    /* nothing ran for the refused tokens */
    char path[1024];
    snprintf(path, sizeof(path), "%s/application_%lld_0001/%s", nm.work, (long long)TS,
             cname(3, name, sizeof(name)));
    CHECK(access(path, F_OK) != 0);

    /* the RM acknowledged the completion: the NM forgets the container */
    char st_buf[600];
    int left = -1;
    for (int i = 0; i < 500 && left != -9999; i++) {
        left = stop_or_status(nm.port, 2, false, st_buf, sizeof(st_buf));
        if (left != -9999)
            usleep(10000);
    }
    CHECK_EQ(left, -9999);
    CHECK_CONTAINS(st_buf, "is not on this node");

    /* a replay of the good token is refused, also once the RM let the NM
     * forget the container */
    resp = start_call(nm.port, (struct start *[]){&good}, 1);
    CHECK_EQ(resp->n_succeeded_requests, 0);
    CHECK_CONTAINS(failure_of(resp, 2), "was already started on this node");
    ag_rpc_msg_free(&resp->base);

    /* health and metrics on the admin endpoint */
    char *h = http_get(nm.admin, "/healthz");
    CHECK_CONTAINS(h, "HTTP/1.1 200");
    free(h);
    char *m = http_get(nm.admin, "/metrics");
    CHECK_CONTAINS(m, "\nargot_nm_containers_launched_total 1\n");
    CHECK_CONTAINS(m, "\nargot_nm_containers_refused_total 5\n");
    CHECK_CONTAINS(m, "\nargot_nm_registrations_total 1\n");
    free(m);

    CHECK_EQ(ag_test_stop(nm.pid), 0);
    close(nm.out_fd);
    rm_free(rm);
}

/* Every ContainerManagement call needs an NM token the RM issued for this
 * node (UNAUTHENTICATED without one, forged, expired or shaped as a
 * container token; PERMISSION_DENIED for another node's), and acts only on
 * the token's application's containers: another application's token can
 * neither start, stop nor see them. */
TEST_TIMEOUT(nm_tokens_guard_container_management, 90)
{
    ag_sched_key key, forged;
    key_make(&key, 3);
    key_make(&forged, 13); /* the NM-token key's id, other bytes */
    struct fake_rm *rm = rm_start(0, &key);
    struct nm_proc nm;
    nm_start(&nm, rm->port, NULL);
    rm_wait_count(rm, &rm->registrations, 1, "registrations");
    rm_wait_count(rm, &rm->heartbeats, 1, "heartbeats");
    int64_t later = ag_wall_ms() + 60000;
    struct start s;
    start_make(&s, &key, 3, "127.0.0.1", nm.port, 2, later, "sleep 100");
    struct start *one[] = {&s};
    static const struct {
        int how; /* 0 none, 1 forged, 2 expired, 3 other node, 4 container-shaped */
        int status;
        const char *want;
    } cases[] = {
        {0, AG_RPC_UNAUTHENTICATED, "no NM token (metadata argot-nm-token)"},
        {1, AG_RPC_UNAUTHENTICATED, "invalid password (forged, or signed by another RM)"},
        {2, AG_RPC_UNAUTHENTICATED, "expired"},
        {3, AG_RPC_PERMISSION_DENIED, ", this is node 127.0.0.1:"},
        {4, AG_RPC_UNAUTHENTICATED, "names no application attempt (a container token?)"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        nm_token[0] = '\0';
        if (cases[i].how == 1)
            nm_token_set(&forged, 13, "127.0.0.1", nm.port, 1, later, 0);
        else if (cases[i].how == 2)
            nm_token_set(&rm->nmkey, rm->nmkey.id, "127.0.0.1", nm.port, 1, ag_wall_ms() - 1, 0);
        else if (cases[i].how == 3)
            nm_token_set(&rm->nmkey, rm->nmkey.id, "127.0.0.1", nm.port + 1, 1, later, 0);
        else if (cases[i].how == 4)
            nm_token_set(&rm->nmkey, rm->nmkey.id, "127.0.0.1", nm.port, 1, later, 2);
        Argot__Sched__V1__StartContainersResponse *resp = NULL;
        char msg[512], buf[600];
        int st = start_call_st(nm.port, one, 1, &resp, msg, sizeof(msg));
        if (st != cases[i].status)
            FAIL("case %zu: %s: %s", i, ag_rpc_status_name(st), msg);
        CHECK_CONTAINS(msg, cases[i].want);
        /* stop and status are guarded the same way */
        CHECK_EQ(stop_or_status(nm.port, 2, true, buf, sizeof(buf)), -9999);
        CHECK_CONTAINS(buf, cases[i].want);
        CHECK_EQ(stop_or_status(nm.port, 2, false, buf, sizeof(buf)), -9999);
        CHECK_CONTAINS(buf, cases[i].want);
    }
    /* application 2's token cannot start application 1's container */
    nm_token_set(&rm->nmkey, rm->nmkey.id, "127.0.0.1", nm.port, 2, later, 0);
    Argot__Sched__V1__StartContainersResponse *resp = start_call(nm.port, one, 1);
    CHECK_EQ(resp->n_succeeded_requests, 0);
    CHECK_CONTAINS(failure_of(resp, 2), "permission denied: container "
                                        "container_1700000000000_0001_01_000002 is not of "
                                        "application application_1700000000000_0002");
    ag_rpc_msg_free(&resp->base);
    /* its own application's token can */
    nm_token_default(rm, nm.port);
    resp = start_call(nm.port, one, 1);
    CHECK_EQ(resp->n_succeeded_requests, 1);
    ag_rpc_msg_free(&resp->base);
    /* another application's token can neither see nor stop it */
    char buf[600];
    nm_token_set(&rm->nmkey, rm->nmkey.id, "127.0.0.1", nm.port, 2, later, 0);
    CHECK_EQ(stop_or_status(nm.port, 2, false, buf, sizeof(buf)), -9999);
    CHECK_CONTAINS(buf, "permission denied");
    CHECK_EQ(stop_or_status(nm.port, 2, true, buf, sizeof(buf)), -9999);
    CHECK_CONTAINS(buf, "permission denied");
    nm_token_default(rm, nm.port);
    CHECK_EQ(stop_or_status(nm.port, 2, false, buf, sizeof(buf)), 1000);
    CHECK_EQ(stop_or_status(nm.port, 2, true, buf, sizeof(buf)), 0);
    CHECK_EQ(ag_test_stop(nm.pid), 0);
    close(nm.out_fd);
    rm_free(rm);
}

/* The RM rolls its key: tokens of the new key and of the previous one
 * start; one of a key two rolls back does not. */
TEST_TIMEOUT(nm_key_rollover, 90)
{
    ag_sched_key k1, k2, k3;
    key_make(&k1, 1);
    key_make(&k2, 2);
    key_make(&k3, 3);
    struct fake_rm *rm = rm_start(0, &k1);
    struct nm_proc nm;
    nm_start(&nm, rm->port, NULL);
    rm_wait_count(rm, &rm->registrations, 1, "registrations");
    nm_token_default(rm, nm.port);
    pthread_mutex_lock(&rm->mu);
    rm->key = k2;
    int hb = rm->heartbeats;
    pthread_mutex_unlock(&rm->mu);
    rm_wait_count(rm, &rm->heartbeats, hb + 2, "heartbeats");
    int64_t later = ag_wall_ms() + 60000;
    struct start a, b;
    start_make(&a, &k1, 1, "127.0.0.1", nm.port, 2, later, "exit 0");
    start_make(&b, &k2, 2, "127.0.0.1", nm.port, 3, later, "exit 0");
    Argot__Sched__V1__StartContainersResponse *resp =
        start_call(nm.port, (struct start *[]){&a, &b}, 2);
    CHECK_EQ(resp->n_succeeded_requests, 2);
    ag_rpc_msg_free(&resp->base);
    pthread_mutex_lock(&rm->mu);
    rm->key = k3;
    hb = rm->heartbeats;
    pthread_mutex_unlock(&rm->mu);
    rm_wait_count(rm, &rm->heartbeats, hb + 2, "heartbeats");
    struct start c;
    start_make(&c, &k1, 1, "127.0.0.1", nm.port, 4, later, "exit 0");
    resp = start_call(nm.port, (struct start *[]){&c}, 1);
    CHECK_EQ(resp->n_succeeded_requests, 0);
    CHECK_CONTAINS(failure_of(resp, 4), "master key 1 is unknown to this node (it knows key 3");
    ag_rpc_msg_free(&resp->base);
    CHECK_EQ(ag_test_stop(nm.pid), 0);
    close(nm.out_fd);
    rm_free(rm);
}

TEST_TIMEOUT(nm_stop_containers_kills, 90)
{
    ag_sched_key key;
    key_make(&key, 1);
    struct fake_rm *rm = rm_start(0, &key);
    struct nm_proc nm;
    nm_start(&nm, rm->port, NULL);
    rm_wait_count(rm, &rm->registrations, 1, "registrations");
    nm_token_default(rm, nm.port);
    struct start s;
    start_make(&s, &key, 1, "127.0.0.1", nm.port, 2, ag_wall_ms() + 60000,
               "sleep 100 & echo $! > child; wait");
    Argot__Sched__V1__StartContainersResponse *resp =
        start_call(nm.port, (struct start *[]){&s}, 1);
    CHECK_EQ(resp->n_succeeded_requests, 1);
    ag_rpc_msg_free(&resp->base);
    long child = container_number(&nm, 2, "child");
    CHECK(alive(child));
    char buf[600];
    CHECK_EQ(stop_or_status(nm.port, 2, false, buf, sizeof(buf)), 1000);
    CHECK_CONTAINS(buf, "running pid=");
    CHECK_EQ(stop_or_status(nm.port, 2, true, buf, sizeof(buf)), 0);
    char name[128];
    struct seen st = rm_wait_complete(rm, cname(2, name, sizeof(name)));
    CHECK_EQ(st.exit_status, -105);
    CHECK_CONTAINS(st.diagnostics, "stopped by request");
    for (int i = 0; i < 300 && alive(child); i++)
        usleep(10000);
    CHECK(!alive(child));
    CHECK_EQ(stop_or_status(nm.port, 77, true, buf, sizeof(buf)), -9999);
    CHECK_CONTAINS(buf, "container_1700000000000_0001_01_000077 is not on this node");
    CHECK_EQ(ag_test_stop(nm.pid), 0);
    close(nm.out_fd);
    rm_free(rm);
}

/* SIGTERM: exit 0, and the containers (their whole process groups) die. */
TEST_TIMEOUT(nm_sigterm_exits_0_and_kills_containers, 90)
{
    ag_sched_key key;
    key_make(&key, 1);
    struct fake_rm *rm = rm_start(0, &key);
    struct nm_proc nm;
    nm_start(&nm, rm->port, NULL);
    rm_wait_count(rm, &rm->registrations, 1, "registrations");
    nm_token_default(rm, nm.port);
    struct start s;
    start_make(&s, &key, 1, "127.0.0.1", nm.port, 2, ag_wall_ms() + 60000,
               "sleep 100 & echo $! > child; wait");
    Argot__Sched__V1__StartContainersResponse *resp =
        start_call(nm.port, (struct start *[]){&s}, 1);
    CHECK_EQ(resp->n_succeeded_requests, 1);
    ag_rpc_msg_free(&resp->base);
    long child = container_number(&nm, 2, "child");
    CHECK(alive(child));
    CHECK_EQ(ag_test_stop(nm.pid), 0);
    for (int i = 0; i < 300 && alive(child); i++)
        usleep(10000);
    CHECK(!alive(child));
    close(nm.out_fd);
    rm_free(rm);
}

/* The RM goes away and comes back (fresh, on the same port): the NM keeps
 * its container running, is told RESYNC, and registers again listing it. */
TEST_TIMEOUT(nm_reregisters_after_rm_restart, 120)
{
    ag_sched_key key;
    key_make(&key, 1);
    struct fake_rm *rm = rm_start(0, &key);
    int port = rm->port;
    struct nm_proc nm;
    nm_start(&nm, port, NULL);
    rm_wait_count(rm, &rm->registrations, 1, "registrations");
    nm_token_default(rm, nm.port);
    struct start s;
    start_make(&s, &key, 1, "127.0.0.1", nm.port, 2, ag_wall_ms() + 60000, "sleep 100");
    Argot__Sched__V1__StartContainersResponse *resp =
        start_call(nm.port, (struct start *[]){&s}, 1);
    CHECK_EQ(resp->n_succeeded_requests, 1);
    ag_rpc_msg_free(&resp->base);
    rm_free(rm);
    ag_sleep_ms(1500); /* heartbeats fail meanwhile */
    char buf[600];
    CHECK_EQ(stop_or_status(nm.port, 2, false, buf, sizeof(buf)), 1000);
    rm = rm_start(port, &key);
    rm_wait_count(rm, &rm->registrations, 1, "registrations after the restart");
    pthread_mutex_lock(&rm->mu);
    CHECK_EQ(rm->last_reg_containers, 1);
    CHECK_EQ(rm->last_reg_running_apps, 1);
    pthread_mutex_unlock(&rm->mu);
    CHECK_EQ(stop_or_status(nm.port, 2, false, buf, sizeof(buf)), 1000);
    rm_wait_count(rm, &rm->heartbeats, 3, "heartbeats after the restart");
    CHECK_EQ(ag_test_stop(nm.pid), 0);
    close(nm.out_fd);
    rm_free(rm);
}

/* The RM orders a shutdown: the NM stops by itself, exit 0. */
TEST_TIMEOUT(nm_rm_shutdown_stops_it, 60)
{
    ag_sched_key key;
    key_make(&key, 1);
    struct fake_rm *rm = rm_start(0, &key);
    struct nm_proc nm;
    nm_start(&nm, rm->port, NULL);
    rm_wait_count(rm, &rm->registrations, 1, "registrations");
    nm_token_default(rm, nm.port);
    pthread_mutex_lock(&rm->mu);
    rm->shutdown = true;
    pthread_mutex_unlock(&rm->mu);
    CHECK_EQ(ag_test_wait(nm.pid, 20), 0);
    close(nm.out_fd);
    rm_free(rm);
}

/* Config errors name file:line:col; the process exits 1 before serving. */
TEST_TIMEOUT(nm_config_errors_name_the_place, 60)
{
    static const struct {
        const char *yaml;
        const char *want;
    } cases[] = {
        {"rm: \"127.0.0.1:8030\"\nresources: {memory_mb: 1024, vcores: 1}\nwork_dir: w\n"
         "adress: \"127.0.0.1:0\"\n",
         "nm.yaml:4:1: unknown key 'adress' (did you mean 'address'?)"},
        {"rm: \"127.0.0.1:8030\"\nresources: {memory_mb: 1024, vcores: x}\nwork_dir: w\n",
         "nm.yaml:2:"},
        {"rm: \"127.0.0.1:8030\"\nwork_dir: w\n", "missing required key 'resources'"},
        {"rm: 8030\nresources: {memory_mb: 1024, vcores: 1}\nwork_dir: w\n",
         "nm.yaml:1:5: 'rm' must be \"host:port\", got '8030'"},
        {"rm: \"127.0.0.1:8030\"\nresources: {memory_mb: 1024, vcores: 1}\nwork_dir: w\n"
         "cgroup: sometimes\n",
         "nm.yaml:4:9: cgroup is 'off' or {parent: /sys/fs/cgroup/NAME}"},
        {"rm: \"127.0.0.1:8030\"\nresources: {memory_mb: 1024, vcores: 1}\nwork_dir: w\n"
         "recovery: maybe\n",
         "nm.yaml:4:11: "},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s",
                 ag_test_write_file("nm.yaml", cases[i].yaml, strlen(cases[i].yaml)));
        const char *argv[] = {ag_test_bin("argot"), "nm", "--config", path, NULL};
        ag_test_proc p;
        int st = ag_test_run(&p, argv, NULL, 30);
        if (st != 1)
            FAIL("case %zu: exit %d, want 1: %s", i, st, p.err);
        CHECK_CONTAINS(p.err, cases[i].want);
        CHECK(strstr(p.out, "listening") == NULL);
        ag_test_proc_cleanup(&p);
    }
    /* --help documents the config */
    const char *argv[] = {ag_test_bin("argot"), "nm", "--help", NULL};
    ag_test_proc p;
    CHECK_EQ(ag_test_run(&p, argv, NULL, 30), 0);
    CHECK_CONTAINS(p.out, "resources: {memory_mb: 4096, vcores: 4}");
    CHECK_CONTAINS(p.out, "cgroup: {parent: /sys/fs/cgroup/argot-nm}");
    ag_test_proc_cleanup(&p);
}

/* recovery: true: SIGTERM leaves the containers running; the next NM on the
 * same work_dir and port adopts them, lists them in its registration,
 * reports the exit status of one that ended meanwhile (from the file its
 * wrapper wrote) and can still stop the other. */
TEST_TIMEOUT(nm_recovery_keeps_containers_across_restart, 120)
{
    ag_sched_key key;
    key_make(&key, 1);
    struct fake_rm *rm = rm_start(0, &key);
    int port = ag_test_free_port();
    struct nm_proc nm;
    nm_start_on(&nm, rm->port, port, "recovery: true\n");
    rm_wait_count(rm, &rm->registrations, 1, "registrations");
    nm_token_default(rm, nm.port);
    int64_t later = ag_wall_ms() + 60000;
    struct start a, b;
    start_make(&a, &key, 1, "127.0.0.1", port, 2, later, "sleep 100 & echo $! > child; wait");
    start_make(&b, &key, 1, "127.0.0.1", port, 3, later, "echo $$ > pid; sleep 2; exit 5");
    Argot__Sched__V1__StartContainersResponse *resp =
        start_call(port, (struct start *[]){&a, &b}, 2);
    CHECK_EQ(resp->n_succeeded_requests, 2);
    ag_rpc_msg_free(&resp->base);
    long child = container_number(&nm, 2, "child");
    long bpid = container_number(&nm, 3, "pid");
    CHECK_EQ(ag_test_stop(nm.pid), 0);
    close(nm.out_fd);
    CHECK(alive(child));
    CHECK(alive(bpid));

    struct nm_proc nm2;
    nm_start_on(&nm2, rm->port, port, "recovery: true\n");
    rm_wait_count(rm, &rm->registrations, 2, "registrations after the NM's restart");
    pthread_mutex_lock(&rm->mu);
    CHECK_EQ(rm->last_reg_containers, 2);
    pthread_mutex_unlock(&rm->mu);
    char name[128], buf[600];
    struct seen s = rm_wait_complete(rm, cname(3, name, sizeof(name)));
    CHECK_EQ(s.exit_status, 5);
    CHECK_EQ(stop_or_status(port, 2, false, buf, sizeof(buf)), 1000);
    CHECK(alive(child));
    CHECK_EQ(stop_or_status(port, 2, true, buf, sizeof(buf)), 0);
    s = rm_wait_complete(rm, cname(2, name, sizeof(name)));
    CHECK_EQ(s.exit_status, -105);
    for (int i = 0; i < 300 && alive(child); i++)
        usleep(10000);
    CHECK(!alive(child));
    CHECK_EQ(ag_test_stop(nm2.pid), 0);
    close(nm2.out_fd);
    rm_free(rm);
}
