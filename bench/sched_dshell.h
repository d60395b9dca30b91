/*
 * bench/sched part 5 (included by sched.c, after its helpers): the
 * distributed shell, argot against Slurm (issue 12), in one run.
 *
 * The same workload twice: `argot app submit --wait` of --dshell containers
 * (default 100), each 1 vcore and 64 MB running /bin/sh that appends
 * `date +%s%N` to a file. Once on argot: `argot rm` and one `argot nm`
 * subprocess (this machine's CPUs as vcores plus one for the master's
 * container, 8192 MB, cgroup off; the RM sets 100 ms heartbeats: its
 * default, YARN's 1 s, is the pace of grants and completions). Once with
 * --provider slurm on a one-node Slurm cluster started here (munged,
 * slurmctld -D, slurmd -D; the node is this machine's CPUs and memory,
 * select/cons_tres with CR_Core_Memory, batch_sched_delay=0), its master in
 * the submitting process. So both have the same CPUs for containers.
 *
 * containers/s: N over the wall time of the whole submit (from its spawn
 * to its exit, the master's start and finish included). Launch latency:
 * from the submit's spawn to each container's first action (the time
 * `date` wrote), so it includes allocation and queueing behind the CPUs.
 * The target: argot's containers/s at least 10 times Slurm's.
 * Slurm needs root (slurmd launches jobs as their user) and Debian's
 * munge, slurmctld and slurmd (scripts/deps.sh); without them the Slurm
 * half says skipped.
 */

#include <netinet/in.h>
#include <sys/socket.h>

#include <slurm/slurm.h>

#define DSHELL_TARGET_RATIO 10.0

/* A loopback TCP port nothing listens on right now (the kernel's pick). */
static int dsh_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Waits up to 30 s for the cluster's node to be IDLE (slurmd registered). */
static bool dsh_slurm_idle(const char *conf)
{
    bool idle = false;
    slurm_init(conf);
    for (int w = 0; w < 300 && !idle; w++) {
        node_info_msg_t *m = NULL;
        if (slurm_load_node(0, &m, SHOW_ALL) == SLURM_SUCCESS) {
            idle = m->record_count == 1 &&
                   (m->node_array[0].node_state & NODE_STATE_BASE) == NODE_STATE_IDLE;
            slurm_free_node_info_msg(m);
        }
        if (!idle)
            ag_sleep_ms(100);
    }
    slurm_fini();
    return idle;
}

/* Writes text to dir/name; the path into out. false on error (reported). */
static bool dsh_write(const char *dir, const char *name, const char *text, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
    FILE *f = fopen(out, "w");
    if (!f || fputs(text, f) < 0) {
        wrong("cannot write %s: %s", out, strerror(errno));
        if (f)
            fclose(f);
        return false;
    }
    fclose(f);
    return true;
}

/* Waits up to ms for needle in the file at path. */
static bool dsh_wait_text(const char *path, const char *needle, int ms, char *buf, size_t cap)
{
    for (int w = 0; w < ms; w += 10) {
        if (slurp(path, buf, cap) > 0 && strstr(buf, needle))
            return true;
        ag_sleep_ms(10);
    }
    return false;
}

/* One `argot app submit --wait` of n containers with the extra flags
 * (NULL-terminated); fills rate (containers/s) and lat. false on failure. */
static bool dsh_submit(const char *argot, const char *dir, const char *tag, char **extra, size_t n,
                       double *rate, struct lat *lat)
{
    char times[1100], cmd[1300], sn[32], out[1100];
    snprintf(times, sizeof(times), "%s/%s.times", dir, tag);
    snprintf(out, sizeof(out), "%s/%s.submit.out", dir, tag);
    snprintf(cmd, sizeof(cmd), "date +%%s%%N >> '%s'", times);
    snprintf(sn, sizeof(sn), "%zu", n);
    char *argv[32];
    size_t k = 0;
    argv[k++] = (char *)argot;
    argv[k++] = "app";
    argv[k++] = "submit";
    for (size_t i = 0; extra[i]; i++)
        argv[k++] = extra[i];
    char *tail[] = {"--name", "bench",  "--containers", sn,        "--memory", "64", "--vcores",
                    "1",      "--wait", "--",           "/bin/sh", "-c",       cmd,  NULL};
    for (size_t i = 0; tail[i]; i++)
        argv[k++] = tail[i];
    argv[k] = NULL;
    uint64_t t0 = wall_ns();
    pid_t pid = spawn(argv, out);
    int st = pid > 0 ? wait_ms(pid, 600000) : -1;
    uint64_t t1 = wall_ns();
    char buf[4096];
    if (st != 0) {
        if (pid > 0 && st < 0)
            stop_pid(pid);
        slurp(out, buf, sizeof(buf));
        wrong("%s: submit exited %d: %s", tag, st, buf);
        return false;
    }
    FILE *f = fopen(times, "r");
    size_t got = 0;
    while (f && fgets(buf, sizeof(buf), f)) {
        uint64_t t = strtoull(buf, NULL, 10);
        lat_add(lat, t > t0 ? t - t0 : 0);
        got++;
    }
    if (f)
        fclose(f);
    if (got != n) {
        wrong("%s: %zu containers ran, want %zu", tag, got, n);
        return false;
    }
    *rate = (double)n / ((double)(t1 - t0) / 1e9);
    return true;
}

/* argot: an rm and one nm subprocess, then the submit. */
static bool dsh_argot(const struct opts *o, const char *dir, double *rate, struct lat *lat)
{
    char path[1100], log[1100], buf[4096], rmaddr[128] = "", yaml[1024];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    bool ok = false;
    pid_t rm = -1, nm = -1;
    if (!dsh_write(dir, "rm.yaml",
                   "address: \"127.0.0.1:0\"\nheartbeat_interval: 100ms\nlog: {level: warn}\n",
                   path, sizeof(path)))
        return false;
    snprintf(log, sizeof(log), "%s/rm.out", dir);
    char *rargv[] = {(char *)o->argot, "rm", "--config", path, NULL};
    rm = spawn(rargv, log);
    if (rm < 0 || !dsh_wait_text(log, "rm listening on ", 10000, buf, sizeof(buf))) {
        wrong("argot rm did not start: %s", buf);
        goto out;
    }
    sscanf(strstr(buf, "rm listening on ") + 16, "%127s", rmaddr);
    snprintf(yaml, sizeof(yaml),
             "rm: \"%s\"\naddress: \"127.0.0.1:0\"\n"
             "resources: {memory_mb: 8192, vcores: %ld}\nwork_dir: nmwork\n"
             "heartbeat_interval: 100ms\ncgroup: off\nmemory_check: false\nlog: {level: warn}\n",
             rmaddr, cpus + 1);
    if (!dsh_write(dir, "nm.yaml", yaml, path, sizeof(path)))
        goto out;
    snprintf(log, sizeof(log), "%s/nm.out", dir);
    char *nargv[] = {(char *)o->argot, "nm", "--config", path, NULL};
    nm = spawn(nargv, log);
    if (nm < 0 || !dsh_wait_text(log, "nm listening on", 10000, buf, sizeof(buf))) {
        wrong("argot nm did not start: %s", buf);
        goto out;
    }
    char *extra[] = {"--rm", rmaddr, NULL};
    ok = dsh_submit(o->argot, dir, "argot", extra, o->dshell, rate, lat);
out:
    stop_pid(nm);
    stop_pid(rm);
    return ok;
}

/* `slurmd -C`'s first line (this machine as a Slurm node) into out. */
static bool dsh_node_line(const char *dir, char *out, size_t cap)
{
    char log[1100];
    snprintf(log, sizeof(log), "%s/slurmd-C.out", dir);
    char *argv[] = {"/usr/sbin/slurmd", "-C", NULL};
    pid_t pid = spawn(argv, log);
    if (pid < 0 || wait_ms(pid, 10000) != 0 || slurp(log, out, cap) <= 0)
        return false;
    out[strcspn(out, "\n")] = 0;
    return strncmp(out, "NodeName=", 9) == 0;
}

/* Slurm: munged, slurmctld and slurmd under dir/slurm, then the submit.
 * false with *skipped set when this machine cannot run them. */
static bool dsh_slurm(const struct opts *o, const char *dir, double *rate, struct lat *lat,
                      const char **skipped)
{
    static const char *const bins[] = {"/usr/sbin/munged", "/usr/sbin/mungekey",
                                       "/usr/sbin/slurmctld", "/usr/sbin/slurmd"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bins); i++)
        if (access(bins[i], X_OK) != 0) {
            *skipped = "munge, slurmctld or slurmd not installed (scripts/deps.sh)";
            return false;
        }
    if (geteuid() != 0) {
        *skipped = "slurmd needs root";
        return false;
    }
    char s[1100], p[1300], log[1300], buf[4096], node[512], host[256] = "";
    snprintf(s, sizeof(s), "%s/slurm", dir);
    chmod(dir, 0755); /* munged wants its socket's directories open to all */
    mkdir(s, 0755);
    static const char *const subs[] = {"munge", "state", "spool", "log", "run", "work"};
    for (size_t i = 0; i < AG_ARRAY_LEN(subs); i++) {
        snprintf(p, sizeof(p), "%s/%s", s, subs[i]);
        mkdir(p, strcmp(subs[i], "munge") == 0 ? 0700 : 0755);
    }
    pid_t munged = -1, ctld = -1, slurmd = -1;
    bool ok = false;
    snprintf(p, sizeof(p), "%s/munge/munge.key", s);
    char *kargv[] = {"/usr/sbin/mungekey", "--create", "--keyfile", p, NULL};
    pid_t kp = spawn(kargv, NULL);
    if (kp < 0 || wait_ms(kp, 10000) != 0) {
        wrong("mungekey --create failed");
        return false;
    }
    char a1[1400], a2[1400], a3[1400], a4[1400], a5[1400];
    snprintf(a1, sizeof(a1), "--socket=%s/run/munge.socket", s);
    snprintf(a2, sizeof(a2), "--key-file=%s/munge/munge.key", s);
    snprintf(a3, sizeof(a3), "--pid-file=%s/run/munged.pid", s);
    snprintf(a4, sizeof(a4), "--log-file=%s/munge/munged.log", s);
    snprintf(a5, sizeof(a5), "--seed-file=%s/munge/munged.seed", s);
    char *margv[] = {"/usr/sbin/munged", "-F", a1, a2, a3, a4, a5, NULL};
    snprintf(log, sizeof(log), "%s/log/munged.out", s);
    munged = spawn(margv, log);
    snprintf(p, sizeof(p), "%s/run/munge.socket", s);
    for (int w = 0; access(p, F_OK) != 0; w++) {
        if (w > 1000 || munged < 0) {
            slurp(log, buf, sizeof(buf));
            wrong("munged did not start: %s", buf);
            goto out;
        }
        ag_sleep_ms(10);
    }
    if (!dsh_node_line(dir, node, sizeof(node))) {
        wrong("slurmd -C failed");
        goto out;
    }
    gethostname(host, sizeof(host) - 1);
    host[strcspn(host, ".")] = 0;
    char conf[16384], confp[1300];
    snprintf(conf, sizeof(conf),
             "ClusterName=argotbench\nSlurmctldHost=%s(127.0.0.1)\nSlurmctldPort=%d\n"
             "SlurmdPort=%d\nSlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\n"
             "AuthInfo=socket=%s/run/munge.socket\nCredType=cred/munge\n"
             "StateSaveLocation=%s/state\nSlurmdSpoolDir=%s/spool\n"
             "SlurmctldPidFile=%s/run/slurmctld.pid\nSlurmdPidFile=%s/run/slurmd.pid\n"
             "SlurmctldLogFile=%s/log/slurmctld.log\nSlurmdLogFile=%s/log/slurmd.log\n"
             "ProctrackType=proctrack/pgid\nTaskPlugin=task/none\n"
             "JobAcctGatherType=jobacct_gather/none\n"
             "AccountingStorageType=accounting_storage/none\nJobCompType=jobcomp/none\n"
             "MpiDefault=none\nSchedulerType=sched/builtin\n"
             "SchedulerParameters=batch_sched_delay=0\n"
             "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core_Memory\n"
             "ReturnToService=2\nMailProg=/bin/true\n"
             "%s NodeAddr=127.0.0.1 State=UNKNOWN\n"
             "PartitionName=main Nodes=%s Default=YES MaxTime=INFINITE State=UP\n",
             host, dsh_free_port(), dsh_free_port(), s, s, s, s, s, s, s, node, host);
    if (!dsh_write(s, "slurm.conf", conf, confp, sizeof(confp)))
        goto out;
    setenv("SLURM_CONF", confp, 1);
    snprintf(p, sizeof(p), "%s/work", s);
    setenv("ARGOT_SLURM_SPOOL", p, 1);
    char *cargv[] = {"/usr/sbin/slurmctld", "-D", "-f", confp, NULL};
    snprintf(log, sizeof(log), "%s/log/slurmctld.out", s);
    ctld = spawn(cargv, log);
    char *dargv[] = {"/usr/sbin/slurmd", "-D", "-f", confp, NULL};
    snprintf(log, sizeof(log), "%s/log/slurmd.out", s);
    slurmd = spawn(dargv, log);
    if (ctld < 0 || slurmd < 0 || !dsh_slurm_idle(confp)) {
        wrong("slurmctld or slurmd did not start (see %s/log)", s);
        goto out;
    }
    char *extra[] = {"--provider", "slurm", NULL};
    ok = dsh_submit(o->argot, dir, "slurm", extra, o->dshell, rate, lat);
out:
    stop_pid(slurmd);
    stop_pid(ctld);
    stop_pid(munged);
    unsetenv("SLURM_CONF");
    unsetenv("ARGOT_SLURM_SPOOL");
    return ok;
}

static void run_dshell(const struct opts *o)
{
    printf("\n5. distributed shell, argot against Slurm: `argot app submit --wait` of %zu "
           "containers (1 vcore, 64 MB, /bin/sh running `date +%%s%%N` into a file)\n"
           "   on `argot rm` + one `argot nm` (this machine's CPUs + 1 for the master), then "
           "--provider slurm on a one-node Slurm cluster started here (this machine's CPUs);\n"
           "   per container: from the submit's start to its first action; rate: containers "
           "over the submit's wall time\n",
           o->dshell);
    if (!have_nm(o->argot)) {
        printf("  dshell: skipped: argot not built (%s)\n", o->argot);
        return;
    }
    const char *tmp = getenv("TMPDIR");
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/argot-bench-dshell-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        wrong("mkdtemp %s: %s", dir, strerror(errno));
        return;
    }
    row_header();
    struct lat la = {0}, ls = {0};
    double ra = 0, rs = 0;
    char rate[64];
    bool oka = dsh_argot(o, dir, &ra, &la);
    if (oka) {
        snprintf(rate, sizeof(rate), "%.1f containers/s", ra);
        row("argot: start to action", &la, rate, "-");
    }
    fflush(stdout);
    const char *skipped = NULL;
    bool oks = dsh_slurm(o, dir, &rs, &ls, &skipped);
    if (oks) {
        snprintf(rate, sizeof(rate), "%.1f containers/s", rs);
        row("slurm: start to action", &ls, rate, "-");
    } else if (skipped) {
        printf("  slurm: skipped: %s\n", skipped);
    }
    if (oka && oks && rs > 0)
        printf("  argot/slurm containers/s: %.1fx (target >= %.0fx: %s); p50 launch: %.0f ms "
               "against %.0f ms\n",
               ra / rs, DSHELL_TARGET_RATIO, ra / rs >= DSHELL_TARGET_RATIO ? "met" : "missed",
               lat_q(&la, 0.5), lat_q(&ls, 0.5));
    lat_free(&la);
    lat_free(&ls);
    if (!failed)
        remove_tree(dir);
    else
        printf("  kept for a look: %s\n", dir);
}
