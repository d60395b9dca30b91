/* A one-node Slurm cluster for tests (slurm.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

#include "slurm.h"
#include "test.h"

#define MUNGED    "/usr/sbin/munged"
#define MUNGEKEY  "/usr/sbin/mungekey"
#define SLURMCTLD "/usr/sbin/slurmctld"
#define SLURMD    "/usr/sbin/slurmd"

static void need(const char *bin)
{
    if (access(bin, X_OK) != 0)
        FAIL("%s is not installed (scripts/deps.sh installs Debian's munge, slurmctld, slurmd "
             "and libslurm-dev)",
             bin);
}

static void mkdir_or_fail(const char *path, mode_t mode)
{
    if (mkdir(path, mode) != 0)
        FAIL("mkdir %s: %s", path, strerror(errno));
    chmod(path, mode);
}

/* "NodeName=h CPUs=2 ... RealMemory=N" from `slurmd -C` (this machine). */
static void node_line(char *out, size_t cap, int cpus)
{
    ag_test_proc p;
    const char *argv[] = {SLURMD, "-C", NULL};
    if (ag_test_run(&p, argv, NULL, 30) != 0)
        FAIL("slurmd -C: %s", p.err);
    char *nl = strchr(p.out, '\n');
    if (nl)
        *nl = 0;
    if (strncmp(p.out, "NodeName=", 9) != 0 || !strstr(p.out, "RealMemory="))
        FAIL("slurmd -C: unexpected output: %s", p.out);
    snprintf(out, cap, "%s", p.out);
    ag_test_proc_cleanup(&p);
    if (cpus > 0) { /* "CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1" */
        char name[256] = "", *mem = strstr(out, "RealMemory=");
        sscanf(out, "NodeName=%255s", name);
        char m[64] = "";
        sscanf(mem, "%63s", m);
        snprintf(out, cap, "NodeName=%s CPUs=%d %s", name, cpus, m);
    }
}

/* Waits until the cluster's node is IDLE (slurmd registered), through
 * libslurm as the provider talks to it. */
static void wait_idle(void)
{
    slurm_init(NULL);
    for (int tries = 0;; tries++) {
        node_info_msg_t *m = NULL;
        bool idle = false;
        if (slurm_load_node(0, &m, SHOW_ALL) == SLURM_SUCCESS) {
            idle = m->record_count == 1 &&
                   (m->node_array[0].node_state & NODE_STATE_BASE) == NODE_STATE_IDLE;
            slurm_free_node_info_msg(m);
        }
        if (idle)
            break;
        if (tries > 300)
            FAIL("the Slurm node did not become idle within 30 s (see %s/log)", ag_test_tmpdir());
        ag_sleep_ms(100);
    }
    slurm_fini();
}

void ag_test_slurm_start(ag_test_slurm *c, int cpus)
{
    need(MUNGED);
    need(MUNGEKEY);
    need(SLURMCTLD);
    need(SLURMD);
    const char *t = ag_test_tmpdir();
    /* munged wants its socket's directory open to all, up to the root */
    chmod(t, 0755);
    char key[600], run[512], sock[600], dir[512];
    snprintf(dir, sizeof(dir), "%s/munge", t);
    mkdir_or_fail(dir, 0700);
    snprintf(run, sizeof(run), "%s/run", t);
    mkdir_or_fail(run, 0755);
    snprintf(key, sizeof(key), "%s/munge.key", dir);
    snprintf(sock, sizeof(sock), "%s/munge.socket", run);
    ag_test_proc p;
    const char *kargv[] = {MUNGEKEY, "--create", "--keyfile", key, NULL};
    if (ag_test_run(&p, kargv, NULL, 30) != 0)
        FAIL("mungekey: %s", p.err);
    ag_test_proc_cleanup(&p);
    char ksock[700], kkey[700], kpid[700], klog[700], kseed[700];
    snprintf(ksock, sizeof(ksock), "--socket=%s", sock);
    snprintf(kkey, sizeof(kkey), "--key-file=%s", key);
    snprintf(kpid, sizeof(kpid), "--pid-file=%s/munged.pid", run);
    snprintf(klog, sizeof(klog), "--log-file=%s/munged.log", dir);
    snprintf(kseed, sizeof(kseed), "--seed-file=%s/munged.seed", dir);
    const char *margv[] = {MUNGED, "-F", ksock, kkey, kpid, klog, kseed, NULL};
    int fd;
    c->munged = ag_test_spawn(margv, &fd);
    close(fd);
    for (int tries = 0; access(sock, F_OK) != 0; tries++) {
        if (tries > 100)
            FAIL("munged made no socket at %s within 10 s", sock);
        ag_sleep_ms(100);
    }
    char node[512], host[256] = "";
    node_line(node, sizeof(node), cpus);
    gethostname(host, sizeof(host) - 1);
    char *dot = strchr(host, '.');
    if (dot)
        *dot = 0;
    char sdir[600];
    snprintf(sdir, sizeof(sdir), "%s/state", t);
    mkdir_or_fail(sdir, 0700);
    snprintf(sdir, sizeof(sdir), "%s/spool", t);
    mkdir_or_fail(sdir, 0755);
    snprintf(sdir, sizeof(sdir), "%s/log", t);
    mkdir_or_fail(sdir, 0755);
    int ctld_port = ag_test_free_port(), d_port = ag_test_free_port();
    char conf[8192];
    snprintf(conf, sizeof(conf),
             "ClusterName=argot\n"
             "SlurmctldHost=%s(127.0.0.1)\n"
             "SlurmctldPort=%d\n"
             "SlurmdPort=%d\n"
             "SlurmUser=root\n"
             "SlurmdUser=root\n"
             "AuthType=auth/munge\n"
             "AuthInfo=socket=%s\n"
             "CredType=cred/munge\n"
             "StateSaveLocation=%s/state\n"
             "SlurmdSpoolDir=%s/spool\n"
             "SlurmctldPidFile=%s/run/slurmctld.pid\n"
             "SlurmdPidFile=%s/run/slurmd.pid\n"
             "SlurmctldLogFile=%s/log/slurmctld.log\n"
             "SlurmdLogFile=%s/log/slurmd.log\n"
             "ProctrackType=proctrack/pgid\n"
             "TaskPlugin=task/none\n"
             "JobAcctGatherType=jobacct_gather/none\n"
             "AccountingStorageType=accounting_storage/none\n"
             "JobCompType=jobcomp/none\n"
             "MpiDefault=none\n"
             "SchedulerType=sched/builtin\n"
             /* schedule batch jobs as soon as they come (default: 3 s later) */
             "SchedulerParameters=batch_sched_delay=0\n"
             "SelectType=select/cons_tres\n"
             "SelectTypeParameters=CR_Core_Memory\n"
             "ReturnToService=2\n"
             "MailProg=/bin/true\n"
             "%s"
             "%s NodeAddr=127.0.0.1 State=UNKNOWN\n"
             "PartitionName=main Nodes=%s Default=YES MaxTime=INFINITE State=UP\n",
             host, ctld_port, d_port, sock, t, t, t, t, t, t,
             cpus > 0 ? "SlurmdParameters=config_overrides\n" : "", node, host);
    /* slurmd -C names the node for the hostname, which must be the short one */
    if (strncmp(node + 9, host, strlen(host)) != 0 || node[9 + strlen(host)] != ' ')
        FAIL("slurmd -C names the node '%.40s', not the short hostname '%s'", node + 9, host);
    snprintf(c->conf, sizeof(c->conf), "%s", ag_test_write_file("slurm.conf", conf, strlen(conf)));
    setenv("SLURM_CONF", c->conf, 1);
    const char *cargv[] = {SLURMCTLD, "-D", "-f", c->conf, NULL};
    c->ctld = ag_test_spawn(cargv, &fd);
    close(fd);
    const char *dargv[] = {SLURMD, "-D", "-f", c->conf, NULL};
    c->slurmd = ag_test_spawn(dargv, &fd);
    close(fd);
    wait_idle();
}

/* Processes other than this one in its process group (what the test
 * started and what they forked without leaving it: slurmscriptd) or whose
 * command line names path. */
static int left_running(const char *path, char *which, size_t cap)
{
    int n = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *e;
    which[0] = 0;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == getpid())
            continue;
        char p[64], cmd[2048];
        snprintf(p, sizeof(p), "/proc/%ld/cmdline", pid);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        size_t len = fread(cmd, 1, sizeof(cmd) - 1, f);
        fclose(f);
        for (size_t i = 0; i < len; i++)
            if (!cmd[i])
                cmd[i] = ' ';
        cmd[len] = 0;
        if (getpgid((pid_t)pid) == getpgrp() || strstr(cmd, path)) {
            size_t w = strlen(which);
            snprintf(which + w, cap - w, "%s[%ld] %.100s", w ? "; " : "", pid, cmd);
            n++;
        }
    }
    closedir(d);
    return n;
}

void ag_test_slurm_stop(ag_test_slurm *c)
{
    CHECK_EQ(ag_test_stop(c->slurmd), 0);
    CHECK_EQ(ag_test_stop(c->ctld), 0);
    CHECK_EQ(ag_test_stop(c->munged), 0);
    char which[2048];
    for (int tries = 0; left_running(ag_test_tmpdir(), which, sizeof(which)); tries++) {
        if (tries > 50)
            FAIL("still running after the cluster stopped: %s", which);
        ag_sleep_ms(100);
    }
}

