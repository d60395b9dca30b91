/*
 * A real etcd for tests (Debian's etcd-server, /usr/bin/etcd): started on
 * 127.0.0.1 with free client and peer ports and a data directory in the
 * test's tmpdir; the runner kills it with the test's process group if the
 * test dies.
 */
#ifndef ARGOT_TEST_ETCD_H
#define ARGOT_TEST_ETCD_H

#include <stdbool.h>
#include <sys/types.h>

#define AG_TEST_ETCD_BIN "/usr/bin/etcd"

typedef struct ag_test_etcd {
    pid_t pid;
    int out_fd;
    int cport;       /* client port */
    int pport;       /* peer port */
    char dir[512];   /* data dir */
    char log[512];   /* its log file */
    char target[32]; /* "127.0.0.1:cport" */
} ag_test_etcd;

/* Picks the ports and the data dir (name under the tmpdir); starts nothing. */
void ag_test_etcd_init(ag_test_etcd *e, const char *name);
/* Starts etcd (again: same ports and data dir) and waits until it answers
 * a Range; fails the test if it does not within 30 s. */
void ag_test_etcd_start(ag_test_etcd *e);
/* A Range of one key on a fresh channel: true if etcd answered OK. */
bool ag_test_etcd_answers(const ag_test_etcd *e);
/* etcd's KV.Put of key = value (a fresh channel; fails the test on any
 * error); returns the revision the put made. */
long long ag_test_etcd_put(const ag_test_etcd *e, const char *key, const char *value);
/* SIGKILL, as a crash. */
void ag_test_etcd_kill(ag_test_etcd *e);
/* SIGTERM (then SIGKILL); nothing if not running. */
void ag_test_etcd_stop(ag_test_etcd *e);

#endif
