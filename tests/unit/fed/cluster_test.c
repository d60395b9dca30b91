/*
 * Tests for src/fed/cluster.c: the parties' gateways (every party has one
 * or none has; tls required with them) and the errors naming file, line
 * and column.
 */
#include "argot/fed.h"
#include "test.h"

static const char *tls_files(void)
{
    ag_test_write_file("a.crt", "x", 1);
    ag_test_write_file("a.key", "x", 1);
    ag_test_write_file("ca.crt", "x", 1);
    return "tls: {cert: a.crt, key: a.key, ca: ca.crt}\n";
}

static int load(const char *text, ag_cluster *c, char *err, size_t cap)
{
    const char *path = ag_test_write_file("cluster.yaml", text, strlen(text));
    return ag_cluster_load(path, c, err, cap);
}

TEST(fed_cluster_reads_gateways)
{
    char text[1024], err[512];
    snprintf(text, sizeof(text),
             "parties:\n  alice: {address: \"127.0.0.1:9100\", gateway: \"10.0.1.1:4143\"}\n"
             "  bob: {address: \"127.0.0.1:9100\", gateway: \"gw.bob.example:4143\"}\n%s",
             tls_files());
    ag_cluster *c = ag_calloc(1, sizeof(*c));
    CHECK(c != NULL);
    if (load(text, c, err, sizeof(err)) < 0)
        FAIL("%s", err);
    CHECK(c->has_gateways);
    CHECK_EQ(c->n, 2);
    CHECK_STR_EQ(c->gateways[0], "10.0.1.1:4143");
    CHECK_STR_EQ(c->gateways[1], "gw.bob.example:4143");
    CHECK_STR_EQ(c->addresses[1], "127.0.0.1:9100");

    /* without gateways: none */
    snprintf(text, sizeof(text), "parties:\n  alice: {address: \"127.0.0.1:9100\"}\n"
             "  bob: {address: \"127.0.0.1:9101\"}\n");
    CHECK_OK(load(text, c, err, sizeof(err)));
    CHECK(!c->has_gateways);
    CHECK_STR_EQ(c->gateways[0], "");
    ag_free(c);
}

TEST(fed_cluster_gateway_errors)
{
    char text[1024], err[512];
    ag_cluster *c = ag_calloc(1, sizeof(*c));
    CHECK(c != NULL);
    const char *tls = tls_files();
    snprintf(text, sizeof(text),
             "parties:\n  alice: {address: \"127.0.0.1:9100\"}\n"
             "  bob: {address: \"127.0.0.1:9101\", gateway: \"10.0.2.1:4143\"}\n%s", tls);
    CHECK_EQ(load(text, c, err, sizeof(err)), AG_E_CONFIG_VALUE);
    CHECK_CONTAINS(err, "cluster.yaml:3:45: party bob has a gateway, party alice none: every "
                        "party has one or none has");
    snprintf(text, sizeof(text),
             "parties:\n  alice: {address: \"127.0.0.1:9100\", gateway: \"10.0.1.1\"}\n"
             "  bob: {address: \"127.0.0.1:9101\", gateway: \"10.0.2.1:4143\"}\n%s", tls);
    CHECK_EQ(load(text, c, err, sizeof(err)), AG_E_CONFIG_VALUE);
    CHECK_CONTAINS(err, "gateway '10.0.1.1' must be host:port");
    snprintf(text, sizeof(text),
             "parties:\n  alice: {address: \"127.0.0.1:9100\", gateway: \"10.0.1.1:1\"}\n"
             "  bob: {address: \"127.0.0.1:9101\", gateway: \"10.0.2.1:4143\"}\n");
    CHECK_EQ(load(text, c, err, sizeof(err)), AG_E_CONFIG_VALUE);
    CHECK_CONTAINS(err, "cluster.yaml:2:");
    CHECK_CONTAINS(err, "gateways need a tls section");
    ag_free(c);
}

TEST(fed_cluster_reads_workers)
{
    static const char parties[] = "parties:\n  alice: {address: \"127.0.0.1:9100\"}\n"
                                  "  bob: {address: \"127.0.0.1:9101\"}\n";
    char text[1024], err[512];
    ag_cluster *c = ag_calloc(1, sizeof(*c));
    CHECK(c != NULL);
    CHECK_OK(load(parties, c, err, sizeof(err)));
    CHECK_EQ(c->workers.count, 0);
    snprintf(text, sizeof(text), "%sworkers: {count: 3, rm: \"10.0.0.5:8030\", queue: root.psi, "
             "memory_mb: 2048, vcores: 2}\n", parties);
    if (load(text, c, err, sizeof(err)) < 0)
        FAIL("%s", err);
    CHECK_EQ(c->workers.count, 3);
    CHECK_STR_EQ(c->workers.provider, "argot");
    CHECK_STR_EQ(c->workers.rm, "10.0.0.5:8030");
    CHECK_STR_EQ(c->workers.queue, "root.psi");
    CHECK_EQ(c->workers.memory_mb, 2048);
    CHECK_EQ(c->workers.vcores, 2);
    /* defaults; slurm needs no rm */
    snprintf(text, sizeof(text), "%sworkers: {count: 2, provider: slurm}\n", parties);
    CHECK_OK(load(text, c, err, sizeof(err)));
    CHECK_STR_EQ(c->workers.provider, "slurm");
    CHECK_STR_EQ(c->workers.rm, "");
    CHECK_EQ(c->workers.memory_mb, 1024);
    CHECK_EQ(c->workers.vcores, 1);

    static const struct {
        const char *workers;
        int code;
        const char *want;
    } bad[] = {
        {"{count: 65, rm: \"h:1\"}", AG_E_CONFIG_VALUE,
         "cluster.yaml:4:18: 'count' must be between 1 and 64, got 65"},
        {"{rm: \"h:1\"}", AG_E_CONFIG_MISSING, "cluster.yaml:4:10: "},
        {"{count: 2}", AG_E_CONFIG_MISSING,
         "cluster.yaml:4:10: workers with provider argot need rm: \"host:port\""},
        {"{count: 2, provider: k8s, rm: \"h:1\"}", AG_E_CONFIG_VALUE,
         "cluster.yaml:4:31: workers.provider 'k8s' is unknown"},
        {"{count: 2, rm: \"h:1\", memory_mb: 0}", AG_E_CONFIG_VALUE, "'memory_mb'"},
        {"{count: 2, rm: \"h:1\", cores: 2}", AG_E_CONFIG_UNKNOWN_KEY, "unknown key 'cores'"},
        {"3", AG_E_CONFIG_TYPE, "cluster.yaml:4:10: "},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        snprintf(text, sizeof(text), "%sworkers: %s\n", parties, bad[i].workers);
        CHECK_EQ(load(text, c, err, sizeof(err)), bad[i].code);
        CHECK_CONTAINS(err, bad[i].want);
    }
    ag_free(c);
}

TEST(fed_cluster_reads_consoles)
{
    char err[512];
    ag_cluster *c = ag_calloc(1, sizeof(*c));
    CHECK(c != NULL);
    CHECK_OK(load("parties:\n  alice: {address: \"127.0.0.1:9100\", console: "
                  "\"127.0.0.1:9180\"}\n  bob: {address: \"127.0.0.1:9200\"}\n", c, err,
                  sizeof(err)));
    CHECK_STR_EQ(c->consoles[0], "127.0.0.1:9180");
    CHECK_STR_EQ(c->consoles[1], "");
    CHECK_EQ(load("parties:\n  alice: {address: \"127.0.0.1:9100\", console: \"nowhere\"}\n"
                  "  bob: {address: \"127.0.0.1:9200\"}\n", c, err, sizeof(err)),
             AG_E_CONFIG_VALUE);
    CHECK_CONTAINS(err, "cluster.yaml:2:");
    CHECK_CONTAINS(err, "console 'nowhere' must be host:port");
    CHECK_EQ(load("parties:\n  alice: {address: \"127.0.0.1:9100\", console: \"10.0.0.1:80\"}\n"
                  "  bob: {address: \"127.0.0.1:9200\"}\n", c, err, sizeof(err)),
             AG_E_CONFIG_VALUE);
    CHECK_CONTAINS(err, "console '10.0.0.1:80' is not on loopback: argot requires tls");
    ag_free(c);
}
