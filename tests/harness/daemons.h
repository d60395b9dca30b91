/*
 * sched's daemons for integration tests: `argot nm` and `argot rm` started
 * as the tests need them, on loopback.
 */
#ifndef ARGOT_TEST_DAEMONS_H
#define ARGOT_TEST_DAEMONS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The first line on fd must be "<what> listening on HOST:PORT ...":
 * HOST:PORT into addr; fails the test otherwise (30 s at most). */
void ag_test_read_listening(int fd, const char *what, char *addr, size_t cap);
/* `argot nm` number i on 127.0.0.<i+1> (a free port), work_dir
 * <tmpdir>/nm<i>, its RM (or the RMs' list) rms, memory_mb and vcores,
 * heartbeats every 200 ms, rack /default, memory_check off (containers
 * run this build's argot, which under ASan cannot start within
 * RLIMIT_AS; this machine has no cgroup v2), log warn, then extra (YAML
 * lines, may be NULL). Returns once it listens. */
pid_t ag_test_nm_start(int i, const char *rms, int64_t memory_mb, int vcores, const char *extra);
/* Waits (10 s at most) until `argot nodes --rm rms` (with flags, NULL-ended,
 * may be NULL) lists n RUNNING nodes. */
void ag_test_nodes_wait(const char *rms, int n, const char *const *flags);

#endif
