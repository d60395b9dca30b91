/*
 * The Slurm provider of the ApplicationMaster client (slurm.c): what am.c
 * calls when ag_am_opts.provider is "slurm", and the pieces of it that the
 * unit tests check without a cluster (the launch script, the mapping of a
 * job's end to a container status).
 */
#ifndef ARGOT_SCHED_SLURM_AM_H
#define ARGOT_SCHED_SLURM_AM_H

#include <stdint.h>
#include <sys/types.h>

#include "argot/sched.h"

typedef struct ag__slurm_am ag__slurm_am;

/* outer is the ag_am the callbacks receive. NULL with err set (no Slurm
 * configuration found, no memory). */
ag__slurm_am *ag__slurm_am_new(ag_am *outer, const ag_am_opts *o, char *err, size_t cap);
void ag__slurm_am_free(ag__slurm_am *s);
const char *ag__slurm_am_errmsg(const ag__slurm_am *s);
int ag__slurm_am_register(ag__slurm_am *s, const char *host, int port, const char *tracking_url);
int ag__slurm_am_ask(ag__slurm_am *s, int32_t priority, const char *resource_name,
                     int64_t memory_mb, int32_t vcores, int32_t total, bool relax_locality,
                     const char *label, int64_t allocation_request_id);
int ag__slurm_am_release(ag__slurm_am *s, const char *container_id);
int ag__slurm_am_blacklist(ag__slurm_am *s, const char *resource_name, bool add);
int ag__slurm_am_allocate(ag__slurm_am *s, float progress);
int ag__slurm_am_start(ag__slurm_am *s, const char *container_id, const char *const *argv,
                       const char *const *env);
int ag__slurm_am_stop(ag__slurm_am *s, const char *container_id);
int ag__slurm_am_finish(ag__slurm_am *s, ag_am_final final, const char *diagnostics);
size_t ag__slurm_am_running(const ag__slurm_am *s);
void ag__slurm_am_headroom(const ag__slurm_am *s, int64_t *memory_mb, int32_t *vcores,
                           int32_t *nodes);

/* Writes into buf the shell script a container's job runs once started:
 * exports env ("KEY=VALUE"; KEY a shell name) and ARGOT_CONTAINER_ID and
 * ARGOT_NM_HOST, then execs argv, every word single-quoted. Returns its
 * length, AG_E_INVAL (a malformed env entry or an empty argv; err says
 * which) or AG_E_TOO_LARGE (longer than cap - 1). */
ssize_t ag__slurm_launch_script(char *buf, size_t cap, const char *container_id, const char *node,
                                const char *const *argv, const char *const *env, char *err,
                                size_t errcap);

/* How a job ended, as Slurm reports it. */
enum ag__slurm_end {
    AG__SLURM_END_COMPLETE, /* the script exited (any code) */
    AG__SLURM_END_CANCELLED,
    AG__SLURM_END_TIMEOUT,
    AG__SLURM_END_NODE_FAIL, /* node failure or boot failure */
    AG__SLURM_END_PREEMPTED,
    AG__SLURM_END_OOM,
    AG__SLURM_END_DEADLINE,
};

/* The container status of a job's end: end, the job's wait status
 * (exit_code), whether this AM stopped or released it. Sets *exit_status
 * (the process's code, 128 + a signal, or YARN's negative codes of
 * sched.proto) and writes a sentence into diag. */
void ag__slurm_status_of(enum ag__slurm_end end, uint32_t exit_code, bool stopped, bool released,
                         int *exit_status, char *diag, size_t cap);

#endif /* ARGOT_SCHED_SLURM_AM_H */
