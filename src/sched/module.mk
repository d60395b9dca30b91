# sched: the resource manager's core (scheduler.c: queues, applications,
# containers, nodes; no I/O), its gRPC services (rm.c), the node manager
# (nm.c, launch.c), the ApplicationMaster client (am.c; slurm.c is its
# Slurm provider) and the tokens they share (token.c).
LIB_SRCS += $(wildcard src/sched/*.c)
PKGS += libcrypto sqlite3
# libslurm (libslurm-dev) has no pkg-config file in Debian 12: the Slurm
# provider of the AM client (slurm.c).
MOD_LIBS += -lslurm
