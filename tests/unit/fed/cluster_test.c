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
