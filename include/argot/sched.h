/*
 * argot sched: a resource manager, node managers and the ApplicationMaster
 * protocol, with Hadoop YARN's split and record semantics over gRPC
 * (proto/argot/sched/v1/sched.proto). The RM (`argot rm`) owns the
 * cluster's resources and schedules them over capacity queues; node
 * managers (`argot nm`) run containers as process groups under cgroup v2
 * or rlimits; an application's ApplicationMaster asks the RM for
 * containers (register, allocate, finish) and starts them on the NMs.
 */
#ifndef ARGOT_SCHED_H
#define ARGOT_SCHED_H

#include "argot/base.h"
#include "argot/rpc.h"

/* ---- the node manager (nm.c, launch.c) ------------------------------------ */

/* ---- the resource manager (rm.c) ------------------------------------------ */

/* ---- the ApplicationMaster client (am.c) ------------------------------------ */

#endif /* ARGOT_SCHED_H */
