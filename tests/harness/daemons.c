/* sched's daemons for integration tests (daemons.h). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemons.h"
#include "test.h"

void ag_test_read_listening(int fd, const char *what, char *addr, size_t cap)
{
    char line[512], want[64];
    snprintf(want, sizeof(want), "%s listening on ", what);
    if (ag_test_read_line(fd, line, sizeof(line), 30) < 0)
        FAIL("%s did not say where it listens", what);
    if (strncmp(line, want, strlen(want)) != 0)
        FAIL("%s: unexpected first line: %s", what, line);
    snprintf(addr, cap, "%s", line + strlen(want));
    char *sp = strchr(addr, ' ');
    if (sp)
        *sp = 0;
}

pid_t ag_test_nm_start(int i, const char *rms, int64_t memory_mb, int vcores, const char *extra)
{
    char name[32], dir[512], yaml[4096], path[512], addr[128];
    snprintf(dir, sizeof(dir), "%s/nm%d", ag_test_tmpdir(), i);
    snprintf(yaml, sizeof(yaml),
             "rm: \"%s\"\n"
             "address: \"127.0.0.%d:0\"\n"
             "resources: {memory_mb: %lld, vcores: %d}\n"
             "work_dir: \"%s\"\n"
             "rack: /default\n"
             "heartbeat_interval: 200ms\n"
             "memory_check: false\n"
             "log: {level: warn}\n%s",
             rms, i + 1, (long long)memory_mb, vcores, dir, extra ? extra : "");
    snprintf(name, sizeof(name), "nm%d.yaml", i);
    snprintf(path, sizeof(path), "%s", ag_test_write_file(name, yaml, strlen(yaml)));
    const char *argv[] = {ag_test_bin("argot"), "nm", "--config", path, NULL};
    int fd;
    pid_t pid = ag_test_spawn(argv, &fd);
    ag_test_read_listening(fd, "nm", addr, sizeof(addr));
    close(fd);
    return pid;
}

void ag_test_nodes_wait(const char *rms, int n, const char *const *flags)
{
    const char *argv[16] = {ag_test_bin("argot"), "nodes", "--rm", rms};
    size_t k = 4;
    for (size_t i = 0; flags && flags[i] && k < 15; i++)
        argv[k++] = flags[i];
    argv[k] = NULL;
    for (int tries = 0;; tries++) {
        ag_test_proc p;
        CHECK_EQ(ag_test_run(&p, argv, NULL, 30), 0);
        int running = 0;
        for (const char *s = p.out; (s = strstr(s, " RUNNING ")); s++)
            running++;
        ag_test_proc_cleanup(&p);
        if (running == n)
            return;
        if (tries > 100)
            FAIL("%d node managers did not register (%d did)", n, running);
        ag_sleep_ms(100);
    }
}
