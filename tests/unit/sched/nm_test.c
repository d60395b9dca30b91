/* Tests for src/sched/nm.c's config (ag_nm_config_load): the pinned keys,
 * the defaults, and errors that name file:line:col, also under failing
 * allocations. The node manager's behaviour against an RM and an AM is in
 * tests/integration/nm_test.c (real processes and sockets). */
#include "argot/sched.h"
#include "test.h"

TEST_FM(nm_config_full)
{
    static const char yaml[] = "rm: \"10.0.0.1:8030\"\n"
                               "address: \"0.0.0.0:8040\"\n"
                               "resources: {memory_mb: 4096, vcores: 4}\n"
                               "work_dir: nmwork\n"
                               "rack: /rack7\n"
                               "labels: [gpu, fast]\n"
                               "heartbeat_interval: 250ms\n"
                               "admin: {address: \"127.0.0.1:8042\"}\n"
                               "cgroup: {parent: /sys/fs/cgroup/argot-test}\n"
                               "log: {level: warn}\n"
                               "shutdown_grace: 3s\n"
                               "kill_grace: 1s\n"
                               "recovery: true\n";
    char path[512], err[512], want[600];
    snprintf(path, sizeof(path), "%s", ag_test_write_file("nm.yaml", yaml, strlen(yaml)));
    ag_nm_config c;
    ag_nm_config_init(&c);
    FM_TRY(ag_nm_config_load(&c, path, err, sizeof(err)), 0);
    CHECK_STR_EQ(c.rm, "10.0.0.1:8030");
    CHECK_STR_EQ(c.address, "0.0.0.0:8040");
    CHECK_EQ(c.memory_mb, 4096);
    CHECK_EQ(c.vcores, 4);
    snprintf(want, sizeof(want), "%s/nmwork", ag_test_tmpdir());
    CHECK_STR_EQ(c.work_dir, want);
    CHECK_STR_EQ(c.rack, "/rack7");
    CHECK_EQ(c.nlabels, 2);
    CHECK_STR_EQ(c.labels[1], "fast");
    CHECK_U64_EQ(c.heartbeat_interval_ms, 250);
    CHECK_STR_EQ(c.admin, "127.0.0.1:8042");
    CHECK_STR_EQ(c.cgroup_parent, "/sys/fs/cgroup/argot-test");
    CHECK_EQ(c.log_level, AG_LOG_WARN);
    CHECK_U64_EQ(c.shutdown_grace_ms, 3000);
    CHECK_U64_EQ(c.kill_grace_ms, 1000);
    CHECK(c.recovery);
out:;
}

TEST(nm_config_defaults_and_cgroup_off)
{
    static const char yaml[] = "rm: \"127.0.0.1:8030\"\n"
                               "resources: {memory_mb: 512, vcores: 1}\n"
                               "work_dir: /tmp/x\n"
                               "cgroup: off\n";
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s", ag_test_write_file("nm.yaml", yaml, strlen(yaml)));
    ag_nm_config c;
    ag_nm_config_init(&c);
    CHECK_STR_EQ(c.cgroup_parent, "/sys/fs/cgroup/argot-nm");
    CHECK_OK(ag_nm_config_load(&c, path, err, sizeof(err)));
    CHECK_STR_EQ(c.address, "127.0.0.1:8040");
    CHECK_STR_EQ(c.rack, "/default");
    CHECK_STR_EQ(c.cgroup_parent, "");
    CHECK_STR_EQ(c.work_dir, "/tmp/x");
    CHECK_U64_EQ(c.heartbeat_interval_ms, 1000);
    CHECK_U64_EQ(c.kill_grace_ms, 2000);
    CHECK_EQ(c.log_level, -1);
    CHECK(!c.recovery);
}

TEST(nm_config_errors_name_the_place)
{
    static const struct {
        const char *yaml;
        const char *want;
    } cases[] = {
        {"rm: \"h:1\"\nresources: {memory_mb: 1, vcores: 1}\nwork_dir: w\nworkdir: x\n",
         "nm.yaml:4:1: unknown key 'workdir'"},
        {"rm: \"h:1\"\nresources: {memory_mb: 1, vcores: 0}\nwork_dir: w\n", "nm.yaml:2:"},
        {"rm: \"h:1\"\nresources: {memory_mb: 1, cores: 2}\nwork_dir: w\n",
         "nm.yaml:2:27: unknown key 'cores' (did you mean 'vcores'?)"},
        {"resources: {memory_mb: 1, vcores: 1}\nwork_dir: w\n", "missing required key 'rm'"},
        {"rm: \"h:1\"\nresources: {memory_mb: 1, vcores: 1}\n", "missing required key 'work_dir'"},
        {"rm: \"h:1\"\naddress: nowhere\nresources: {memory_mb: 1, vcores: 1}\nwork_dir: w\n",
         "nm.yaml:2:10: 'address' must be \"host:port\", got 'nowhere'"},
        {"rm: \"h:1\"\nresources: {memory_mb: 1, vcores: 1}\nwork_dir: w\nrack: default\n",
         "nm.yaml:4:7: a rack is a path like '/default', got 'default'"},
        {"rm: \"h:1\"\nresources: {memory_mb: 1, vcores: 1}\nwork_dir: w\n"
         "cgroup: {parent: relative}\n",
         "nm.yaml:4:18: cgroup parent must be an absolute path"},
        {"rm: \"h:1\"\nresources: {memory_mb: 1, vcores: 1}\nwork_dir: w\nlabels: [a b]\n",
         "nm.yaml:4:10: a label is a non-empty word"},
        {"rm: \"h:1\"\nresources: {memory_mb: 1, vcores: 1}\nwork_dir: w\n"
         "heartbeat_interval: 1ms\n",
         "nm.yaml:4:21: heartbeat_interval must be between 10ms and 1h"},
        {"rm: \"h:1\"\nresources: {memory_mb: 1, vcores: 1}\nwork_dir: w\nlog: {level: loud}\n",
         "nm.yaml:4:14: log level 'loud' is not debug"},
        {"- a\n- b\n", "nm.yaml:1:1: the config must be a mapping"},
        {"rm: [\"h:1\", nowhere]\nresources: {memory_mb: 1, vcores: 1}\nwork_dir: w\n",
         "nm.yaml:1:5: rm: 'h:1,nowhere' is not host:port, nor a list of 1 to 8 of them"},
        {"rm: \"h:1,\"\nresources: {memory_mb: 1, vcores: 1}\nwork_dir: w\n",
         "nm.yaml:1:5: rm: 'h:1,' is not host:port"},
        {"rm: {a: 1}\nresources: {memory_mb: 1, vcores: 1}\nwork_dir: w\n",
         "nm.yaml:1:5: rm: host:port or a list of them"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        char path[512], err[512] = "";
        snprintf(path, sizeof(path), "%s",
                 ag_test_write_file("nm.yaml", cases[i].yaml, strlen(cases[i].yaml)));
        ag_nm_config c;
        ag_nm_config_init(&c);
        int rc = ag_nm_config_load(&c, path, err, sizeof(err));
        if (rc >= 0)
            FAIL("case %zu: loaded", i);
        CHECK_CONTAINS(err, cases[i].want);
    }
    /* the RMs of an ha set, as a list or in one string */
    static const char *const lists[] = {"rm: [\"a:1\", \"b:2\"]\n", "rm: \"a:1,b:2\"\n"};
    for (size_t i = 0; i < AG_ARRAY_LEN(lists); i++) {
        char yaml[256], path[512], err[512] = "";
        snprintf(yaml, sizeof(yaml), "%sresources: {memory_mb: 1, vcores: 1}\nwork_dir: w\n",
                 lists[i]);
        snprintf(path, sizeof(path), "%s", ag_test_write_file("nm.yaml", yaml, strlen(yaml)));
        ag_nm_config c;
        ag_nm_config_init(&c);
        if (ag_nm_config_load(&c, path, err, sizeof(err)) < 0)
            FAIL("%s: %s", lists[i], err);
        CHECK_STR_EQ(c.rm, "a:1,b:2");
    }
}
