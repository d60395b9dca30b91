/*
 * A one-node Slurm cluster for tests (Debian's munge, slurmctld, slurmd;
 * libslurm for waiting on it): munged, slurmctld -D and slurmd -D with key,
 * socket, state, spool and logs under the test's temporary directory;
 * SlurmctldHost the machine's short hostname at 127.0.0.1, free ports.
 * Starting sets SLURM_CONF for the test and the programs it starts.
 */
#ifndef ARGOT_TEST_SLURM_H
#define ARGOT_TEST_SLURM_H

#include <sys/types.h>

typedef struct ag_test_slurm {
    pid_t munged, ctld, slurmd;
    char conf[512];
} ag_test_slurm;

/* cpus: the node's CPUs as configured (0: this machine's, from slurmd -C;
 * more than it has: slurmd is told to take the config's word). Fails the
 * test, naming scripts/deps.sh, when a Slurm program is missing; returns
 * once the node is idle. */
void ag_test_slurm_start(ag_test_slurm *c, int cpus);
/* Stops the three daemons and waits until nothing under the test's
 * tmpdir (or in its process group) runs any more. */
void ag_test_slurm_stop(ag_test_slurm *c);

#endif
