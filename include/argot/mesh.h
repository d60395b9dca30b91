/*
 * argot mesh: the gateway each party runs (linkerd 1.x's model, in C).
 *
 * One process, one libuv loop thread, any number of routers; each router
 * listens on its servers, names every request (by default /svc/<authority>),
 * delegates the name through its dtab to a bound name that a namer
 * resolves (files watched with inotify, DNS, static lists), balances over
 * the endpoints (round robin, P2C least loaded, P2C peak EWMA, aperture),
 * marks failing endpoints dead (failure accrual) and retries what is safe
 * under a budget. HTTP/2 (gRPC included) and HTTP/1.1, TLS on either side.
 * An admin endpoint (default 127.0.0.1:9990) serves a page, JSON state,
 * a name resolver, /metrics (Prometheus) and /healthz.
 *
 * The config is YAML in the shape linkerd 1.x operators know; see
 * docs/ARCHITECTURE.md ("mesh") for every key. `argot mesh --config FILE`
 * runs it.
 */
#ifndef ARGOT_MESH_H
#define ARGOT_MESH_H

#include "argot/base.h"

typedef struct ag_mesh ag_mesh;

/* Reads and checks a config file. NULL with err ("mesh.yaml:7:5: unknown key
 * 'dtabs' (did you mean 'dtab'?)") on failure. */
ag_mesh *ag_mesh_load(const char *config_path, char *err, size_t cap);
/* Binds every router's servers and the admin endpoint, makes the namers
 * and starts the loop thread. 0, or an error with err naming what failed
 * ("router 'grpc': 127.0.0.1:4140: address already in use"). */
int ag_mesh_start(ag_mesh *m, char *err, size_t cap);
/* Re-reads the config file (what SIGHUP and a change of the file do): new
 * routers and namers replace the old ones; a server whose address stays
 * keeps its socket, connections open on old routers finish what they carry
 * and close (nothing in flight is dropped). A config that fails to load
 * changes nothing (err says why). */
int ag_mesh_reload(ag_mesh *m, char *err, size_t cap);
/* The port router `router` (0-based, in config order) serves on with its
 * server `server`; after start (so a config may ask for port 0). -1 if none. */
int ag_mesh_port(ag_mesh *m, size_t router, size_t server);
/* The label of router `router` (config order), or NULL past the last. */
const char *ag_mesh_router_label(const ag_mesh *m, size_t router);
/* The IP its server `server` listens on, as configured, or NULL. */
const char *ag_mesh_server_ip(const ag_mesh *m, size_t router, size_t server);
/* The admin port, after start; -1 without one. */
int ag_mesh_admin_port(const ag_mesh *m);
const char *ag_mesh_admin_ip(const ag_mesh *m);
/* The config file in use. */
const char *ag_mesh_config_path(const ag_mesh *m);
/* Stops taking connections, lets requests in flight finish for up to
 * grace_ms, then closes everything and joins the loop thread. */
void ag_mesh_shutdown(ag_mesh *m, uint64_t grace_ms);
/* Shuts down if needed, then frees. NULL does nothing. */
void ag_mesh_free(ag_mesh *m);
/* The config's shutdown_grace (default 10 s). */
uint64_t ag_mesh_grace_ms(const ag_mesh *m);

#endif /* ARGOT_MESH_H */
