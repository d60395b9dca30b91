/*
 * The console's infrastructure view of the party's gateway (`argot mesh`):
 * its admin endpoint's /admin/state.json, fetched by the sender thread
 * with a small blocking HTTP/1.0 client, and boiled down to what the page
 * shows (routers; their clusters' requests, success rate and latency; the
 * endpoints). The response is untrusted bytes from the network: it is
 * parsed by ag__console_mesh_parse (fuzz/console_mesh.c), which copies only
 * fields of the expected types.
 * And of the resource manager (`argot rm`): its nodes, applications and
 * queues through the ApplicationClient service (protobuf, parsed by
 * protobuf-c as every rpc message), as JSON for the page.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "argot/rpc.h"
#include "argot/sched.h"
#include "argot/sched/v1/sched.argot.h"
#include "argot/sched/v1/sched.pb-c.h"
#include "internal.h"

#define MESH_TIMEOUT_S 2

/* Copies o's members named in keys when they are of the type asked: 's'
 * string, 'n' number, 'i' integer. */
static int copy_fields(json_t *dst, json_t *o, const char *const *keys, const char *types)
{
    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(o, keys[i]);
        bool ok = (types[i] == 's' && json_is_string(v)) ||
                  (types[i] == 'n' && json_is_number(v)) ||
                  (types[i] == 'i' && json_is_integer(v));
        if (ok && json_object_set(dst, keys[i], v) < 0)
            return AG_E_NOMEM;
    }
    return 0;
}

/* Each object of array src through fn into a new array set as dst[name]. */
static int copy_array(json_t *dst, const char *name, json_t *src,
                      int (*fn)(json_t *out, json_t *in))
{
    json_t *a = json_array();
    if (!a || json_object_set_new(dst, name, a) < 0)
        return AG_E_NOMEM;
    for (size_t i = 0; i < json_array_size(src); i++) {
        json_t *in = json_array_get(src, i), *out = json_object();
        if (!out || json_array_append_new(a, out) < 0)
            return AG_E_NOMEM;
        int rc = fn(out, in); /* a member that is not an object gives an empty one */
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int endpoint(json_t *out, json_t *in)
{
    static const char *const keys[] = {"addr", "state", "requests", "successes", "failures",
                                       "ewma_ms", NULL};
    return copy_fields(out, in, keys, "ssiiin");
}

static int cluster(json_t *out, json_t *in)
{
    static const char *const keys[] = {"id", "state", "requests", "successes", "failures",
                                       "success_rate", "p50_ms", "p99_ms", NULL};
    int rc = copy_fields(out, in, keys, "ssiiinnn");
    return rc == 0 ? copy_array(out, "endpoints", json_object_get(in, "endpoints"), endpoint)
                   : rc;
}

static int router(json_t *out, json_t *in)
{
    static const char *const keys[] = {"label", "protocol", "requests", "connections", NULL};
    int rc = copy_fields(out, in, keys, "ssii");
    return rc == 0 ? copy_array(out, "clusters", json_object_get(in, "clusters"), cluster) : rc;
}

int ag__console_mesh_parse(const void *resp, size_t len, json_t **out, ag_errbuf *err)
{
    *out = NULL;
    const char *r = resp;
    int status = 0;
    char head[16];
    snprintf(head, sizeof(head), "%.*s", (int)AG_MIN(len, sizeof(head) - 1), r);
    if (len < 12 || strncmp(r, "HTTP/1.", 7) != 0 || sscanf(head + 8, " %3d", &status) != 1)
        return ag_errbuf_set(err, AG_E_INVAL, "not an HTTP/1.x response");
    if (status != 200)
        return ag_errbuf_set(err, AG_E_INVAL, "the gateway answered %d", status);
    const char *body = memmem(r, len, "\r\n\r\n", 4);
    if (!body)
        return ag_errbuf_set(err, AG_E_INVAL, "the response has no end of headers");
    body += 4;
    json_error_t je;
    json_t *st = json_loadb(body, len - (size_t)(body - r), 0, &je);
    if (!json_is_object(st)) {
        json_decref(st);
        return ag_errbuf_set(err, AG_E_INVAL, "the state is not a JSON object: %s",
                             st ? "another type" : je.text);
    }
    json_t *o = json_object();
    int rc = o ? copy_array(o, "routers", json_object_get(st, "routers"), router) : AG_E_NOMEM;
    json_decref(st);
    if (rc < 0) {
        json_decref(o);
        return ag_errbuf_set(err, rc, "out of memory");
    }
    *out = o;
    return 0;
}

int ag__console_http_get(const char *hostport, const char *path, ag_buf *out, ag_errbuf *err)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof(host))
        return ag_errbuf_set(err, AG_E_INVAL, "%s: not host:port", hostport);
    snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(host, colon + 1, &hints, &ai);
    if (g != 0)
        return ag_errbuf_set(err, AG_E_NOENT, "%s: %s", hostport, gai_strerror(g));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = MESH_TIMEOUT_S};
    int rc = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        rc = ag_errbuf_set(err, AG_E_IO, "cannot connect to %s: %s", hostport, strerror(errno));
        goto out;
    }
    char req[600];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, hostport);
    if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
        rc = ag_errbuf_set(err, AG_E_IO, "%s: cannot send the request", hostport);
        goto out;
    }
    for (;;) {
        uint8_t chunk[16384];
        ssize_t got = read(fd, chunk, sizeof(chunk));
        if (got == 0)
            break;
        if (got < 0) {
            rc = ag_errbuf_set(err, AG_E_IO, "%s: %s", hostport, strerror(errno));
            break;
        }
        if (ag_buf_append(out, chunk, (size_t)got) < 0) {
            rc = ag_errbuf_set(err, AG_E_TOO_LARGE, "%s: the response is over %u bytes",
                               hostport, AG__CONSOLE_MESH_MAX);
            break;
        }
    }
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}

/* ---- the resource manager (argot rm): ApplicationClient ---- */

/* A protobuf string as JSON (a string that is not UTF-8 shows as "?"). */
static json_t *str(const char *s)
{
    json_t *v = json_string(s ? s : "");
    return v ? v : json_string("?");
}

static const char *enum_name(const ProtobufCEnumDescriptor *d, int v, size_t skip)
{
    const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);
    return e && strlen(e->name) > skip ? e->name + skip : "?";
}

static json_t *nodes_json(const Argot__Sched__V1__GetClusterNodesResponse *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_node_reports; i++) {
        const Argot__Sched__V1__NodeReport *n = r->node_reports[i];
        char node[300];
        snprintf(node, sizeof(node), "%s:%d", n->node_id ? n->node_id->host : "?",
                 n->node_id ? n->node_id->port : 0);
        json_t *o = json_pack(
            "{s:o, s:s, s:o, s:I, s:I, s:i, s:i, s:i}", "node", str(node), "state",
            enum_name(&argot__sched__v1__node_state__descriptor, (int)n->node_state, 3), "rack",
            str(n->rack_name), "used_mb", (json_int_t)(n->used ? n->used->memory_mb : 0),
            "total_mb", (json_int_t)(n->capability ? n->capability->memory_mb : 0),
            "used_vcores", n->used ? n->used->vcores : 0, "total_vcores",
            n->capability ? n->capability->vcores : 0, "containers", n->num_containers);
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *apps_json(const Argot__Sched__V1__GetApplicationsResponse *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_applications; i++) {
        const Argot__Sched__V1__ApplicationReport *p = r->applications[i];
        char id[64] = "?";
        if (p->application_id)
            ag_sched_format_app_id(p->application_id->cluster_timestamp,
                                   p->application_id->id, id, sizeof(id));
        json_t *o = json_pack(
            "{s:s, s:o, s:o, s:o, s:s, s:f, s:I, s:i}", "id", id, "name", str(p->name),
            "queue", str(p->queue), "user", str(p->user), "state",
            enum_name(&argot__sched__v1__yarn_application_state__descriptor,
                      (int)p->yarn_application_state, 0),
            "progress", (double)p->progress, "used_mb",
            (json_int_t)(p->used ? p->used->memory_mb : 0), "used_vcores",
            p->used ? p->used->vcores : 0);
        json_array_append_new(a, o);
    }
    return a;
}

/* The queue tree, flattened depth first. */
static void queues_json(json_t *a, const Argot__Sched__V1__QueueInfo *q, int depth)
{
    if (!q || depth > 16)
        return;
    json_array_append_new(a, json_pack("{s:o, s:f, s:f, s:f, s:i}", "name",
                                       str(q->queue_name), "capacity", (double)q->capacity,
                                       "maximum_capacity", (double)q->maximum_capacity,
                                       "current_capacity", (double)q->current_capacity,
                                       "applications", q->num_applications));
    for (size_t i = 0; i < q->n_child_queues; i++)
        queues_json(a, q->child_queues[i], depth + 1);
}

int ag__console_rm_read(ag_rm_client *ch, const char *target, json_t **out, ag_errbuf *err)
{
    *out = NULL;
    char *msg = NULL;
    Argot__Sched__V1__GetClusterNodesRequest nreq =
        ARGOT__SCHED__V1__GET_CLUSTER_NODES_REQUEST__INIT;
    Argot__Sched__V1__GetClusterNodesResponse *nodes = NULL;
    Argot__Sched__V1__GetApplicationsRequest areq =
        ARGOT__SCHED__V1__GET_APPLICATIONS_REQUEST__INIT;
    Argot__Sched__V1__GetApplicationsResponse *apps = NULL;
    Argot__Sched__V1__GetQueueInfoRequest qreq = ARGOT__SCHED__V1__GET_QUEUE_INFO_REQUEST__INIT;
    Argot__Sched__V1__GetQueueInfoResponse *queue = NULL;
    qreq.include_child_queues = true;
    qreq.recursive = true;
    /* each call gives a status message (ag_free), "" on success */
    int st = ag_rm_client_call(ch, &argot__sched__v1__application_client__get_cluster_nodes__method,
                               &nreq.base, 3000, (ProtobufCMessage **)&nodes, &msg);
    if (st == AG_RPC_OK) {
        ag_free(msg);
        msg = NULL;
        st = ag_rm_client_call(ch, &argot__sched__v1__application_client__get_applications__method,
                               &areq.base, 3000, (ProtobufCMessage **)&apps, &msg);
    }
    if (st == AG_RPC_OK) {
        ag_free(msg);
        msg = NULL;
        st = ag_rm_client_call(ch, &argot__sched__v1__application_client__get_queue_info__method,
                               &qreq.base, 3000, (ProtobufCMessage **)&queue, &msg);
    }
    int rc = 0;
    if (st != AG_RPC_OK) {
        rc = ag_errbuf_set(err, AG_E_IO, "RM %s: %s: %s", target, ag_rpc_status_name(st),
                           msg ? msg : "");
    } else {
        json_t *q = json_array();
        if (q)
            queues_json(q, queue->queue_info, 0);
        *out = json_pack("{s:o, s:o, s:o}", "nodes", nodes_json(nodes), "applications",
                         apps_json(apps), "queues", q);
        if (!*out)
            rc = ag_errbuf_set(err, AG_E_NOMEM, "out of memory");
    }
    ag_rpc_msg_free(nodes ? &nodes->base : NULL);
    ag_rpc_msg_free(apps ? &apps->base : NULL);
    ag_rpc_msg_free(queue ? &queue->base : NULL);
    ag_free(msg);
    return rc;
}
