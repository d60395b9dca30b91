/* Tests for src/base/config.c: the YAML tree, positions and paths, and the
 * typed getters with their exact messages. */
#include <math.h>

#include "test.h"

/* A realistic cluster config in block style (line numbers matter below). */
static const char CLUSTER[] = "# argot cluster config\n"         /* 1 */
                              "cluster: demo\n"                  /* 2 */
                              "parties:\n"                       /* 3 */
                              "  alice:\n"                       /* 4 */
                              "    address: \"10.0.0.1:9100\"\n" /* 5 */
                              "    ports: [9100, 9101]\n"        /* 6 */
                              "  bob:\n"                         /* 7 */
                              "    address: \"10.0.0.2:9100\"\n" /* 8 */
                              "spu:\n"                           /* 9 */
                              "  protocol: semi2k\n"             /* 10 */
                              "  field: FM64\n"                  /* 11 */
                              "  fxp_fraction_bits: 18\n"        /* 12 */
                              "tls:\n"                           /* 13 */
                              "  cert: /etc/argot/alice.crt\n"   /* 14 */
                              "  key: /etc/argot/alice.key\n"    /* 15 */
                              "  ca: /etc/argot/ca.crt\n"        /* 16 */
                              "hosts:\n"                         /* 17 */
                              "  - 10.0.0.1\n"                   /* 18 */
                              "  - 10.0.0.2\n"                   /* 19 */
                              "  - name: carol\n"                /* 20 */
                              "    port: 9102\n"                 /* 21 */
                              "timeouts:\n"                      /* 22 */
                              "  rpc: 10s\n"                     /* 23 */
                              "  connect: 500ms\n"               /* 24 */
                              "limits:\n"                        /* 25 */
                              "  max_frame: 64MiB\n"             /* 26 */
                              "  ratio: 0.75\n"                  /* 27 */
                              "  verbose: false\n";              /* 28 */

/* The same in flow style. */
static const char CLUSTER_FLOW[] =
    "{parties: {alice: {address: \"10.0.0.1:9100\", ports: [9100, 9101]},\n"
    "           bob: {address: \"10.0.0.2:9100\"}},\n"
    " spu: {protocol: semi2k, field: FM64, fxp_fraction_bits: 18},\n"
    " tls: {cert: /etc/argot/alice.crt, key: /etc/argot/alice.key, ca: /etc/argot/ca.crt},\n"
    " hosts: [10.0.0.1, 10.0.0.2, {name: carol, port: 9102}]}\n";

/* Loads text as "cluster.yaml"; the test fails if loading fails. */
static ag_config *load_ok(const char *text)
{
    ag_config *c = ag_config_new();
    CHECK(c != NULL);
    if (ag_config_load_string(c, "cluster.yaml", text, strlen(text)) < 0)
        FAIL("load failed: %s", ag_config_errmsg(c));
    return c;
}

/* Loading text must fail with code and exactly msg. */
static void check_load_error(const char *text, int code, const char *msg)
{
    ag_config *c = ag_config_new();
    CHECK(c != NULL);
    int rc = ag_config_load_string(c, "cluster.yaml", text, strlen(text));
    if (rc != code)
        FAIL("load of \"%s\": %s (%s), want %s", text, ag_err_name(rc), ag_config_errmsg(c),
             ag_err_name(code));
    CHECK_EQ(ag_config_errcode(c), code);
    CHECK_STR_EQ(ag_config_errmsg(c), msg);
    CHECK(ag_config_root(c) == NULL);
    ag_config_free(c);
}

/* A node must have this type, position and path. */
static void check_node(const ag_cnode *n, ag_cnode_type type, int line, int col, const char *path)
{
    CHECK(n != NULL);
    CHECK_EQ(ag_cnode_type_of(n), type);
    CHECK_EQ(ag_cnode_line(n), line);
    CHECK_EQ(ag_cnode_column(n), col);
    CHECK_STR_EQ(ag_cnode_path(n), path);
}

static const ag_cnode *get_path2(const ag_cnode *root, const char *a, const char *b)
{
    return ag_cnode_get(ag_cnode_get(root, a), b);
}

TEST(config_new_free)
{
    ag_config *c = ag_config_new();
    CHECK(c != NULL);
    CHECK(ag_config_root(c) == NULL);
    CHECK_STR_EQ(ag_config_errmsg(c), "");
    CHECK_EQ(ag_config_errcode(c), 0);
    CHECK_STR_EQ(ag_config_name(c), "");
    ag_config_free(c);
    ag_config_free(NULL);
}

TEST(config_block_tree_positions_paths)
{
    ag_config *c = load_ok(CLUSTER);
    const ag_cnode *root = ag_config_root(c);
    CHECK_STR_EQ(ag_config_name(c), "cluster.yaml");
    check_node(root, AG_CNODE_MAP, 2, 1, "");
    CHECK_EQ(ag_cnode_len(root), 7);
    check_node(ag_cnode_key(root, 0), AG_CNODE_SCALAR, 2, 1, "");
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_key(root, 0)), "cluster");
    check_node(ag_cnode_item(root, 0), AG_CNODE_SCALAR, 2, 10, "cluster");

    const ag_cnode *parties = ag_cnode_get(root, "parties");
    check_node(parties, AG_CNODE_MAP, 4, 3, "parties");
    check_node(ag_cnode_key(parties, 1), AG_CNODE_SCALAR, 7, 3, "parties");
    const ag_cnode *alice = ag_cnode_get(parties, "alice");
    check_node(alice, AG_CNODE_MAP, 5, 5, "parties.alice");
    check_node(ag_cnode_key(alice, 0), AG_CNODE_SCALAR, 5, 5, "parties.alice");
    const ag_cnode *addr = ag_cnode_get(alice, "address");
    check_node(addr, AG_CNODE_SCALAR, 5, 14, "parties.alice.address");
    CHECK_STR_EQ(ag_cnode_scalar(addr), "10.0.0.1:9100");
    CHECK_EQ(ag_cnode_scalar_len(addr), 13);
    CHECK(ag_cnode_is_quoted(addr));
    const ag_cnode *ports = ag_cnode_get(alice, "ports");
    check_node(ports, AG_CNODE_SEQ, 6, 12, "parties.alice.ports");
    CHECK_EQ(ag_cnode_len(ports), 2);
    check_node(ag_cnode_item(ports, 0), AG_CNODE_SCALAR, 6, 13, "parties.alice.ports[0]");
    check_node(ag_cnode_item(ports, 1), AG_CNODE_SCALAR, 6, 19, "parties.alice.ports[1]");
    CHECK(!ag_cnode_is_quoted(ag_cnode_item(ports, 1)));
    CHECK(ag_cnode_key(ports, 0) == NULL);
    check_node(get_path2(parties, "bob", "address"), AG_CNODE_SCALAR, 8, 14, "parties.bob.address");

    const ag_cnode *spu = ag_cnode_get(root, "spu");
    check_node(spu, AG_CNODE_MAP, 10, 3, "spu");
    check_node(ag_cnode_get(spu, "protocol"), AG_CNODE_SCALAR, 10, 13, "spu.protocol");
    check_node(ag_cnode_get(spu, "fxp_fraction_bits"), AG_CNODE_SCALAR, 12, 22,
               "spu.fxp_fraction_bits");
    check_node(get_path2(root, "tls", "ca"), AG_CNODE_SCALAR, 16, 7, "tls.ca");
    CHECK_STR_EQ(ag_cnode_scalar(get_path2(root, "tls", "key")), "/etc/argot/alice.key");

    const ag_cnode *hosts = ag_cnode_get(root, "hosts");
    check_node(hosts, AG_CNODE_SEQ, 18, 3, "hosts");
    check_node(ag_cnode_item(hosts, 0), AG_CNODE_SCALAR, 18, 5, "hosts[0]");
    check_node(ag_cnode_item(hosts, 2), AG_CNODE_MAP, 20, 5, "hosts[2]");
    check_node(ag_cnode_get(ag_cnode_item(hosts, 2), "port"), AG_CNODE_SCALAR, 21, 11,
               "hosts[2].port");
    CHECK(ag_cnode_item(hosts, 3) == NULL);
    CHECK(ag_cnode_get(root, "nope") == NULL);
    CHECK(ag_cnode_get(hosts, "nope") == NULL);
    CHECK(ag_cnode_get(NULL, "nope") == NULL);
    ag_config_free(c);
}

TEST(config_flow_tree_positions_paths)
{
    ag_config *c = load_ok(CLUSTER_FLOW);
    const ag_cnode *root = ag_config_root(c);
    check_node(root, AG_CNODE_MAP, 1, 1, "");
    CHECK_EQ(ag_cnode_len(root), 4);
    check_node(ag_cnode_key(root, 0), AG_CNODE_SCALAR, 1, 2, "");
    const ag_cnode *parties = ag_cnode_get(root, "parties");
    check_node(parties, AG_CNODE_MAP, 1, 11, "parties");
    const ag_cnode *alice = ag_cnode_get(parties, "alice");
    check_node(alice, AG_CNODE_MAP, 1, 19, "parties.alice");
    check_node(ag_cnode_key(alice, 0), AG_CNODE_SCALAR, 1, 20, "parties.alice");
    check_node(ag_cnode_get(alice, "address"), AG_CNODE_SCALAR, 1, 29, "parties.alice.address");
    check_node(ag_cnode_get(alice, "ports"), AG_CNODE_SEQ, 1, 53, "parties.alice.ports");
    check_node(ag_cnode_item(ag_cnode_get(alice, "ports"), 1), AG_CNODE_SCALAR, 1, 60,
               "parties.alice.ports[1]");
    check_node(ag_cnode_get(parties, "bob"), AG_CNODE_MAP, 2, 17, "parties.bob");
    check_node(get_path2(parties, "bob", "address"), AG_CNODE_SCALAR, 2, 27, "parties.bob.address");
    check_node(get_path2(root, "spu", "fxp_fraction_bits"), AG_CNODE_SCALAR, 3, 58,
               "spu.fxp_fraction_bits");
    check_node(get_path2(root, "tls", "ca"), AG_CNODE_SCALAR, 4, 67, "tls.ca");
    const ag_cnode *hosts = ag_cnode_get(root, "hosts");
    check_node(hosts, AG_CNODE_SEQ, 5, 9, "hosts");
    check_node(ag_cnode_item(hosts, 2), AG_CNODE_MAP, 5, 30, "hosts[2]");
    check_node(ag_cnode_get(ag_cnode_item(hosts, 2), "name"), AG_CNODE_SCALAR, 5, 37,
               "hosts[2].name");
    ag_config_free(c);
}

TEST(config_nested_sequence_paths)
{
    ag_config *c = load_ok("m: [[a, b], [c]]\nx:\n  - - 1\n    - 2\n");
    const ag_cnode *m = ag_cnode_get(ag_config_root(c), "m");
    check_node(ag_cnode_item(ag_cnode_item(m, 0), 1), AG_CNODE_SCALAR, 1, 9, "m[0][1]");
    check_node(ag_cnode_item(ag_cnode_item(m, 1), 0), AG_CNODE_SCALAR, 1, 14, "m[1][0]");
    const ag_cnode *x = ag_cnode_get(ag_config_root(c), "x");
    check_node(ag_cnode_item(x, 0), AG_CNODE_SEQ, 3, 5, "x[0]");
    check_node(ag_cnode_item(ag_cnode_item(x, 0), 1), AG_CNODE_SCALAR, 4, 7, "x[0][1]");
    ag_config_free(c);
}

TEST(config_scalar_styles_and_positions)
{
    ag_config *c = load_ok("a: |\n  line1\n  line2\n"
                           "b: >-\n    folded\n"
                           "c: 'sq'\n"
                           "d: \"a\\0b\"\n"
                           "e: plain\n  cont\n"
                           "\xc3\xa9: x\n");
    const ag_cnode *root = ag_config_root(c);
    const ag_cnode *a = ag_cnode_get(root, "a");
    check_node(a, AG_CNODE_SCALAR, 2, 3, "a");
    CHECK_STR_EQ(ag_cnode_scalar(a), "line1\nline2\n");
    CHECK(ag_cnode_is_quoted(a));
    check_node(ag_cnode_get(root, "b"), AG_CNODE_SCALAR, 5, 5, "b");
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "b")), "folded");
    CHECK(ag_cnode_is_quoted(ag_cnode_get(root, "b")));
    check_node(ag_cnode_get(root, "c"), AG_CNODE_SCALAR, 6, 4, "c");
    CHECK(ag_cnode_is_quoted(ag_cnode_get(root, "c")));
    const ag_cnode *d = ag_cnode_get(root, "d");
    CHECK_EQ(ag_cnode_scalar_len(d), 3);
    CHECK_MEM_EQ(ag_cnode_scalar(d), "a\0b", 4);
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "e")), "plain cont");
    CHECK(!ag_cnode_is_quoted(ag_cnode_get(root, "e")));
    /* columns count characters, not bytes */
    check_node(ag_cnode_get(root, "\xc3\xa9"), AG_CNODE_SCALAR, 10, 4, "\xc3\xa9");
    ag_config_free(c);
}

TEST(config_null_forms)
{
    ag_config *c = load_ok("a:\nb: ~\nc: null\nd: Null\ne: NULL\nf: ''\ng: \"\"\n"
                           "h: 'null'\ni: nul\nnull: 1\n~: 2\nj: !!str\nk: !!null\n");
    const ag_cnode *root = ag_config_root(c);
    const char *nulls[] = {"a", "b", "c", "d", "e", "k"};
    for (size_t i = 0; i < AG_ARRAY_LEN(nulls); i++) {
        const ag_cnode *n = ag_cnode_get(root, nulls[i]);
        CHECK_EQ(ag_cnode_type_of(n), AG_CNODE_NULL);
        CHECK_STR_EQ(ag_cnode_scalar(n), "");
        CHECK_EQ(ag_cnode_scalar_len(n), 0);
    }
    /* an empty value is placed at the end of the token before it */
    check_node(ag_cnode_get(root, "a"), AG_CNODE_NULL, 1, 2, "a");
    check_node(ag_cnode_get(root, "b"), AG_CNODE_NULL, 2, 4, "b");
    const char *empties[] = {"f", "g", "j"};
    for (size_t i = 0; i < AG_ARRAY_LEN(empties); i++) {
        const ag_cnode *n = ag_cnode_get(root, empties[i]);
        CHECK_EQ(ag_cnode_type_of(n), AG_CNODE_SCALAR);
        CHECK_STR_EQ(ag_cnode_scalar(n), "");
        CHECK(ag_cnode_is_quoted(n));
    }
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "h")), "null");
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "i")), "nul");
    /* keys stay scalars, so they can be looked up by name */
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "null")), "1");
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "~")), "2");
    CHECK_EQ(ag_cnode_type_of(ag_cnode_key(root, 9)), AG_CNODE_SCALAR);
    ag_config_free(c);
}

TEST(config_empty_documents)
{
    const char *inputs[] = {"", "# only a comment\n", "\n\n", "---\n", "--- ~\n"};
    for (size_t i = 0; i < AG_ARRAY_LEN(inputs); i++) {
        ag_config *c = load_ok(inputs[i]);
        const ag_cnode *root = ag_config_root(c);
        CHECK_EQ(ag_cnode_type_of(root), AG_CNODE_NULL);
        CHECK_STR_EQ(ag_cnode_path(root), "");
        CHECK_STR_EQ(ag_cnode_scalar(root), "");
        CHECK_EQ(ag_cnode_len(root), 0);
        if (i < 3) {
            CHECK_EQ(ag_cnode_line(root), 1);
            CHECK_EQ(ag_cnode_column(root), 1);
        }
        int64_t v = 42;
        CHECK_OK(ag_config_get_i64(c, root, "x", AG_OPTIONAL, 0, 100, &v));
        CHECK_EQ(v, 42);
        CHECK_OK(ag_config_check_keys(c, root, (const char *const[]){"a", NULL}));
        CHECK_EQ(ag_config_get_i64(c, root, "x", AG_REQUIRED, 0, 100, &v), AG_E_CONFIG_MISSING);
        CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml: missing required key 'x'");
        ag_config_free(c);
    }
}

TEST(config_anchors_and_aliases)
{
    ag_config *c = load_ok("defaults: &defaults\n"
                           "  timeout: 10s\n"
                           "  retries: 3\n"
                           "rpc: *defaults\n"
                           "ports: &p [9100, 9101]\n"
                           "alice: {ports: *p}\n"
                           "name: &n alice\n"
                           "who: *n\n"
                           "k: &k title\n"
                           "*k : 5\n"
                           "again: &n bob\n"
                           "last: *n\n");
    const ag_cnode *root = ag_config_root(c);
    const ag_cnode *defaults = ag_cnode_get(root, "defaults");
    const ag_cnode *rpc = ag_cnode_get(root, "rpc");
    CHECK(rpc == defaults);
    check_node(rpc, AG_CNODE_MAP, 2, 3, "defaults");
    uint64_t ms = 0;
    CHECK_OK(ag_config_get_duration_ms(c, rpc, "timeout", AG_REQUIRED, &ms));
    CHECK_U64_EQ(ms, 10000);
    const ag_cnode *ports = ag_cnode_get(root, "ports");
    CHECK(get_path2(root, "alice", "ports") == ports);
    CHECK_STR_EQ(ag_cnode_path(ag_cnode_item(ports, 1)), "ports[1]");
    CHECK(ag_cnode_get(root, "who") == ag_cnode_get(root, "name"));
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "who")), "alice");
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "title")), "5");
    /* an anchor may be redefined; later aliases see the new node */
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "last")), "bob");
    ag_config_free(c);

    check_load_error("a: *nope\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:1:4: alias to unknown anchor 'nope'");
    check_load_error("a: 1\nb: *a\nc: &a 2\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:2:4: alias to unknown anchor 'a'");
    check_load_error("a: &x [1, *x]\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:1:11: recursive alias 'x' (it is inside the node it refers to)");
    check_load_error("m: &m {a: 1}\n*m : 2\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:2:1: mapping keys must be scalars");
    check_load_error("a: &a x\n*a : 1\nx: 2\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:3:1: duplicate key 'x' (first at line 2, column 1)");
}

TEST(config_tags)
{
    ag_config *c = load_ok("a: !!str 5\nb: !!int 7\nc: !!float 1.5\nd: !!bool true\n"
                           "e: !!null ~\nf: !!map {x: 1}\ng: !!seq [1]\n"
                           "h: !<tag:yaml.org,2002:str> 9\ni: !!str ~\n");
    const ag_cnode *root = ag_config_root(c);
    int64_t v = 0;
    double d = 0;
    bool b = false;
    CHECK(ag_cnode_is_quoted(ag_cnode_get(root, "a")));
    CHECK_EQ(ag_config_get_i64(c, root, "a", AG_REQUIRED, 0, 10, &v), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:1:10: 'a' must be an integer, got a quoted string '5'");
    CHECK_OK(ag_config_get_i64(c, root, "b", AG_REQUIRED, 0, 10, &v));
    CHECK_EQ(v, 7);
    CHECK_OK(ag_config_get_double(c, root, "c", AG_REQUIRED, &d));
    CHECK(d == 1.5);
    CHECK_OK(ag_config_get_bool(c, root, "d", AG_REQUIRED, &b));
    CHECK(b);
    CHECK_EQ(ag_cnode_type_of(ag_cnode_get(root, "e")), AG_CNODE_NULL);
    CHECK_EQ(ag_cnode_type_of(ag_cnode_get(root, "f")), AG_CNODE_MAP);
    CHECK_EQ(ag_cnode_type_of(ag_cnode_get(root, "g")), AG_CNODE_SEQ);
    CHECK(ag_cnode_is_quoted(ag_cnode_get(root, "h")));
    CHECK_EQ(ag_cnode_type_of(ag_cnode_get(root, "i")), AG_CNODE_SCALAR);
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "i")), "~");
    ag_config_free(c);

    check_load_error("x: !foo 1\n", AG_E_CONFIG_SYNTAX, "cluster.yaml:1:4: unsupported tag '!foo'");
    check_load_error("a: 1\ny: !!binary aGk=\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:2:4: unsupported tag '!!binary'");
    check_load_error("y: !<tag:example.com,2000:x> 1\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:1:4: unsupported tag '!<tag:example.com,2000:x>'");
    check_load_error("y: !!set {a: 1}\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:1:4: unsupported tag '!!set'");
}

TEST(config_duplicate_keys)
{
    check_load_error("a: 1\nb: 2\na: 3\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:3:1: duplicate key 'a' (first at line 1, column 1)");
    check_load_error("{a: 1, a: 2}", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:1:8: duplicate key 'a' (first at line 1, column 2)");
    check_load_error("parties:\n  alice: {}\n  'alice': {}\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:3:3: duplicate key 'alice' (first at line 2, column 3)");
    /* the same key in different mappings is fine */
    ag_config *c = load_ok("a: {x: 1}\nb: {x: 2}\nx: [{x: 1}, {x: 2}]\n");
    ag_config_free(c);
}

TEST(config_complex_keys)
{
    check_load_error("? [a]\n: b\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:1:3: mapping keys must be scalars");
    check_load_error("{{a: 1}: 2}", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:1:2: mapping keys must be scalars");
}

TEST(config_multiple_documents)
{
    check_load_error("a: 1\n---\nb: 2\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:2:1: more than one YAML document");
    check_load_error("--- a\n--- b\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:2:1: more than one YAML document");
    check_load_error("a\n...\nb\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:3:1: more than one YAML document");
    ag_config *c = load_ok("---\na: 1\n...\n");
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(ag_config_root(c), "a")), "1");
    ag_config_free(c);
}

/* n nested flow sequences: "[[[...]]]" (caller frees). */
static char *nested(size_t n, const char *prefix, const char *inner)
{
    size_t pl = strlen(prefix), il = strlen(inner);
    char *s = malloc(pl + 2 * n + il + 2);
    CHECK(s != NULL);
    memcpy(s, prefix, pl);
    memset(s + pl, '[', n);
    memcpy(s + pl + n, inner, il);
    memset(s + pl + n + il, ']', n);
    s[pl + 2 * n + il] = '\n';
    s[pl + 2 * n + il + 1] = '\0';
    return s;
}

TEST(config_nesting_limit)
{
    char *ok = nested(64, "", "x");
    ag_config *c = load_ok(ok);
    const ag_cnode *n = ag_config_root(c);
    for (int i = 0; i < 63; i++)
        n = ag_cnode_item(n, 0);
    CHECK_EQ(ag_cnode_type_of(n), AG_CNODE_SEQ);
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_item(n, 0)), "x");
    ag_config_free(c);
    free(ok);

    char *deep = nested(65, "", "x");
    check_load_error(deep, AG_E_CONFIG_SYNTAX, "cluster.yaml:1:65: nesting deeper than 64 levels");
    free(deep);
    char *deep2 = nested(64, "a: ", "");
    check_load_error(deep2, AG_E_CONFIG_SYNTAX, "cluster.yaml:1:67: nesting deeper than 64 levels");
    free(deep2);
    char *huge = nested(100000, "", "");
    check_load_error(huge, AG_E_CONFIG_SYNTAX, "cluster.yaml:1:65: nesting deeper than 64 levels");
    free(huge);

    /* an alias counts as the collection it refers to */
    char *anchored = nested(60, "a: &x ", "1");
    char text[512];
    snprintf(text, sizeof(text), "%sb: [[*x]]\n", anchored);
    c = load_ok(text);
    ag_config_free(c);
    snprintf(text, sizeof(text), "%sb: [[[[*x]]]]\n", anchored);
    check_load_error(text, AG_E_CONFIG_SYNTAX, "cluster.yaml:2:8: nesting deeper than 64 levels");
    free(anchored);
}

/* A syntax error: the position and "syntax error: " exactly, then
 * libfyaml's text, whatever it says. */
static void check_syntax_error(const char *text, const char *prefix)
{
    ag_config *c = ag_config_new();
    CHECK(c != NULL);
    CHECK_EQ(ag_config_load_string(c, "cluster.yaml", text, strlen(text)), AG_E_CONFIG_SYNTAX);
    const char *msg = ag_config_errmsg(c);
    if (strncmp(msg, prefix, strlen(prefix)) != 0)
        FAIL("syntax error message \"%s\" does not start with \"%s\"", msg, prefix);
    CHECK(strlen(msg) > strlen(prefix));
    CHECK(strchr(msg, '\n') == NULL);
    CHECK(ag_config_root(c) == NULL);
    ag_config_free(c);
}

TEST(config_syntax_errors)
{
    check_syntax_error("a: [1, 2\nb: 3\n", "cluster.yaml:3:1: syntax error: ");
    check_syntax_error("a: b: c\n", "cluster.yaml:1:5: syntax error: ");
    check_syntax_error("a:\n  - x\n  y: 2\n", "cluster.yaml:3:3: syntax error: ");
    check_syntax_error("- a\nb: c\n", "cluster.yaml:2:1: syntax error: ");
    check_syntax_error("spu:\n\tprotocol: semi2k\n", "cluster.yaml:2:1: syntax error: ");
    check_syntax_error("key: \"unterminated\n", "cluster.yaml:1:7: syntax error: ");
    check_syntax_error("a: 1\n}\n", "cluster.yaml:2:1: syntax error: ");
}

TEST(config_unknown_keys)
{
    static const char *const party_keys[] = {"address", "ports", NULL};
    ag_config *c = load_ok("parties:\n  alice:\n    adress: x\n    foo: 1\n");
    const ag_cnode *alice = get_path2(ag_config_root(c), "parties", "alice");
    CHECK_EQ(ag_config_check_keys(c, alice, party_keys), AG_E_CONFIG_UNKNOWN_KEY);
    CHECK_EQ(ag_config_errcode(c), AG_E_CONFIG_UNKNOWN_KEY);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:3:5: unknown key 'adress' (did you mean 'address'?)");
    static const char *const abc[] = {"a", "b", "c", "adress", NULL};
    CHECK_EQ(ag_config_check_keys(c, alice, abc), AG_E_CONFIG_UNKNOWN_KEY);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:4:5: unknown key 'foo' (expected one of: a, b, c, adress)");
    CHECK_EQ(ag_config_check_keys(c, alice, (const char *const[]){NULL}), AG_E_CONFIG_UNKNOWN_KEY);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml:3:5: unknown key 'adress' (no keys are "
                                      "expected here)");
    static const char *const all[] = {"foo", "adress", NULL};
    CHECK_OK(ag_config_check_keys(c, alice, all));
    CHECK_OK(ag_config_check_keys(c, NULL, all));
    ag_config_free(c);

    c = load_ok("{spu: {protocl: semi2k, feild: FM64}}");
    const ag_cnode *spu = ag_cnode_get(ag_config_root(c), "spu");
    static const char *const spu_keys[] = {"protocol", "field", "fxp_fraction_bits", NULL};
    CHECK_EQ(ag_config_check_keys(c, spu, spu_keys), AG_E_CONFIG_UNKNOWN_KEY);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:1:8: unknown key 'protocl' (did you mean 'protocol'?)");
    /* a transposition is one edit: the commonest typo gets its suggestion */
    static const char *const spu_keys2[] = {"protocl", "field", NULL};
    CHECK_EQ(ag_config_check_keys(c, spu, spu_keys2), AG_E_CONFIG_UNKNOWN_KEY);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:1:25: unknown key 'feild' (did you mean 'field'?)");
    /* nothing close: the list of what is expected */
    static const char *const spu_keys3[] = {"protocl", "fxp", NULL};
    CHECK_EQ(ag_config_check_keys(c, spu, spu_keys3), AG_E_CONFIG_UNKNOWN_KEY);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:1:25: unknown key 'feild' (expected one of: protocl, fxp)");
    static const char *const top[] = {"parties", NULL};
    CHECK_EQ(ag_config_check_keys(c, ag_config_root(c), top), AG_E_CONFIG_UNKNOWN_KEY);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:1:2: unknown key 'spu' (expected one of: parties)");
    ag_config_free(c);
}

TEST(config_get_i64)
{
    ag_config *c = load_ok("a: 18\nb: -5\nc: +7\nd: 0x1F\ne: 0o17\nf: -0x10\n"
                           "g: 9223372036854775807\nh: -9223372036854775808\ni: 007\n"
                           "j: 0xffFF\n");
    const ag_cnode *root = ag_config_root(c);
    struct {
        const char *key;
        int64_t want;
    } ok[] = {{"a", 18},  {"b", -5},        {"c", 7},         {"d", 31}, {"e", 15},
              {"f", -16}, {"g", INT64_MAX}, {"h", INT64_MIN}, {"i", 7},  {"j", 65535}};
    for (size_t i = 0; i < AG_ARRAY_LEN(ok); i++) {
        int64_t v = 0;
        CHECK_OK(ag_config_get_i64(c, root, ok[i].key, AG_REQUIRED, INT64_MIN, INT64_MAX, &v));
        CHECK_EQ(v, ok[i].want);
    }
    ag_config_free(c);

    c = load_ok("spu:\n  fxp_fraction_bits: eighteen\n  a: 1_000\n  b: 0x\n  c: 1.5\n"
                "  d: \"18\"\n  e: 0b101\n  f: 0X1F\n  g: {x: 1}\n  h: [1]\n  i: 1e3\n  j: ''\n"
                "  k: 1 2\n");
    const ag_cnode *spu = ag_cnode_get(ag_config_root(c), "spu");
    int64_t v = 99;
    CHECK_EQ(ag_config_get_i64(c, spu, "fxp_fraction_bits", AG_REQUIRED, 0, 64, &v),
             AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:2:22: 'fxp_fraction_bits' must be an integer, got 'eighteen'");
    struct {
        const char *key;
        const char *msg;
    } bad[] = {
        {"a", "cluster.yaml:3:6: 'a' must be an integer, got '1_000'"},
        {"b", "cluster.yaml:4:6: 'b' must be an integer, got '0x'"},
        {"c", "cluster.yaml:5:6: 'c' must be an integer, got '1.5'"},
        {"d", "cluster.yaml:6:6: 'd' must be an integer, got a quoted string '18'"},
        {"e", "cluster.yaml:7:6: 'e' must be an integer, got '0b101'"},
        {"f", "cluster.yaml:8:6: 'f' must be an integer, got '0X1F'"},
        {"g", "cluster.yaml:9:6: 'g' must be an integer, got a mapping"},
        {"h", "cluster.yaml:10:6: 'h' must be an integer, got a sequence"},
        {"i", "cluster.yaml:11:6: 'i' must be an integer, got '1e3'"},
        {"j", "cluster.yaml:12:6: 'j' must be an integer, got a quoted string ''"},
        {"k", "cluster.yaml:13:6: 'k' must be an integer, got '1 2'"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        CHECK_EQ(ag_config_get_i64(c, spu, bad[i].key, AG_OPTIONAL, INT64_MIN, INT64_MAX, &v),
                 AG_E_CONFIG_TYPE);
        CHECK_STR_EQ(ag_config_errmsg(c), bad[i].msg);
    }
    CHECK_EQ(v, 99);
    ag_config_free(c);
}

TEST(config_get_i64_range)
{
    ag_config *c = load_ok("spu:\n  fxp_fraction_bits: 100\n  big: 99999999999999999999\n"
                           "  neg: -9223372036854775809\n  hex: 0x10000000000000000\n"
                           "  low: -3\n");
    const ag_cnode *spu = ag_cnode_get(ag_config_root(c), "spu");
    int64_t v = 7;
    CHECK_EQ(ag_config_get_i64(c, spu, "fxp_fraction_bits", AG_REQUIRED, 0, 64, &v),
             AG_E_CONFIG_VALUE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:2:22: 'fxp_fraction_bits' must be between 0 and 64, got 100");
    CHECK_EQ(ag_config_get_i64(c, spu, "low", AG_REQUIRED, 1, 65535, &v), AG_E_CONFIG_VALUE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:6:8: 'low' must be between 1 and 65535, got -3");
    CHECK_EQ(ag_config_get_i64(c, spu, "big", AG_REQUIRED, INT64_MIN, INT64_MAX, &v),
             AG_E_CONFIG_VALUE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:3:8: 'big' is out of range, got '99999999999999999999'");
    CHECK_EQ(ag_config_get_i64(c, spu, "neg", AG_REQUIRED, INT64_MIN, INT64_MAX, &v),
             AG_E_CONFIG_VALUE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:4:8: 'neg' is out of range, got '-9223372036854775809'");
    CHECK_EQ(ag_config_get_i64(c, spu, "hex", AG_REQUIRED, INT64_MIN, INT64_MAX, &v),
             AG_E_CONFIG_VALUE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:5:8: 'hex' is out of range, got '0x10000000000000000'");
    CHECK_EQ(v, 7);
    ag_config_free(c);
}

TEST(config_get_double)
{
    ag_config *c = load_ok("a: 1.5\nb: -2e3\nc: .5\nd: 5.\ne: .inf\nf: -.Inf\ng: +.INF\n"
                           "h: .NAN\ni: 0x10\nj: 7\nk: 1E+2\nl: 99999999999999999999\n"
                           "m: 1e-400\nn: 0o10\no: -0x10\np: 0.1\nq: -0\n");
    const ag_cnode *root = ag_config_root(c);
    struct {
        const char *key;
        double want;
    } ok[] = {{"a", 1.5},       {"b", -2000},    {"c", 0.5}, {"d", 5},   {"e", HUGE_VAL},
              {"f", -HUGE_VAL}, {"g", HUGE_VAL}, {"i", 16},  {"j", 7},   {"k", 100},
              {"l", 1e20},      {"m", 0},        {"n", 8},   {"o", -16}, {"p", 0.1}};
    for (size_t i = 0; i < AG_ARRAY_LEN(ok); i++) {
        double v = -1;
        CHECK_OK(ag_config_get_double(c, root, ok[i].key, AG_REQUIRED, &v));
        if (v != ok[i].want)
            FAIL("'%s': got %g, want %g", ok[i].key, v, ok[i].want);
    }
    double nan = 0, zero = 1;
    CHECK_OK(ag_config_get_double(c, root, "h", AG_REQUIRED, &nan));
    CHECK(isnan(nan));
    CHECK_OK(ag_config_get_double(c, root, "q", AG_REQUIRED, &zero));
    CHECK(zero == 0 && signbit(zero));
    ag_config_free(c);

    c = load_ok("ratio: inf\nb: nan\nc: 0x1p3\nd: \"1.5\"\ne: 1e999\nf: 1.2.3\ng: .\n"
                "h: 1e\ni: [1]\nj: -.nan\nk: 1,5\n");
    root = ag_config_root(c);
    struct {
        const char *key;
        int code;
        const char *msg;
    } bad[] = {
        {"ratio", AG_E_CONFIG_TYPE, "cluster.yaml:1:8: 'ratio' must be a number, got 'inf'"},
        {"b", AG_E_CONFIG_TYPE, "cluster.yaml:2:4: 'b' must be a number, got 'nan'"},
        {"c", AG_E_CONFIG_TYPE, "cluster.yaml:3:4: 'c' must be a number, got '0x1p3'"},
        {"d", AG_E_CONFIG_TYPE,
         "cluster.yaml:4:4: 'd' must be a number, got a quoted string '1.5'"},
        {"e", AG_E_CONFIG_VALUE, "cluster.yaml:5:4: 'e' is out of range, got '1e999'"},
        {"f", AG_E_CONFIG_TYPE, "cluster.yaml:6:4: 'f' must be a number, got '1.2.3'"},
        {"g", AG_E_CONFIG_TYPE, "cluster.yaml:7:4: 'g' must be a number, got '.'"},
        {"h", AG_E_CONFIG_TYPE, "cluster.yaml:8:4: 'h' must be a number, got '1e'"},
        {"i", AG_E_CONFIG_TYPE, "cluster.yaml:9:4: 'i' must be a number, got a sequence"},
        {"j", AG_E_CONFIG_TYPE, "cluster.yaml:10:4: 'j' must be a number, got '-.nan'"},
        {"k", AG_E_CONFIG_TYPE, "cluster.yaml:11:4: 'k' must be a number, got '1,5'"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        double v = 3.25;
        CHECK_EQ(ag_config_get_double(c, root, bad[i].key, AG_REQUIRED, &v), bad[i].code);
        CHECK_STR_EQ(ag_config_errmsg(c), bad[i].msg);
        CHECK(v == 3.25);
    }
    ag_config_free(c);
}

TEST(config_get_bool)
{
    ag_config *c = load_ok("a: true\nb: True\nc: TRUE\nd: false\ne: False\nf: FALSE\n"
                           "verbose: yes\nh: tRue\ni: 1\nj: 'true'\nk: on\n");
    const ag_cnode *root = ag_config_root(c);
    const char *keys[] = {"a", "b", "c", "d", "e", "f"};
    for (size_t i = 0; i < AG_ARRAY_LEN(keys); i++) {
        bool v = i < 3 ? false : true;
        CHECK_OK(ag_config_get_bool(c, root, keys[i], AG_REQUIRED, &v));
        CHECK_EQ(v, i < 3);
    }
    bool v = true;
    CHECK_EQ(ag_config_get_bool(c, root, "verbose", AG_REQUIRED, &v), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:7:10: 'verbose' must be a boolean (true or false), got 'yes'");
    CHECK_EQ(ag_config_get_bool(c, root, "h", AG_REQUIRED, &v), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:8:4: 'h' must be a boolean (true or false), got 'tRue'");
    CHECK_EQ(ag_config_get_bool(c, root, "i", AG_REQUIRED, &v), AG_E_CONFIG_TYPE);
    CHECK_EQ(ag_config_get_bool(c, root, "j", AG_REQUIRED, &v), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml:10:4: 'j' must be a boolean (true or false), "
                                      "got a quoted string 'true'");
    CHECK_EQ(ag_config_get_bool(c, root, "k", AG_REQUIRED, &v), AG_E_CONFIG_TYPE);
    CHECK(v);
    ag_config_free(c);
}

TEST(config_get_duration)
{
    ag_config *c = load_ok("a: 0\nb: 250ms\nc: 10s\nd: 5m\ne: 2h\nf: 1us\ng: 1500us\nh: 1000us\n"
                           "i: 0ms\nj: 0us\nk: 18446744073709551615ms\n");
    const ag_cnode *root = ag_config_root(c);
    struct {
        const char *key;
        uint64_t want;
    } ok[] = {{"a", 0}, {"b", 250}, {"c", 10000}, {"d", 300000}, {"e", 7200000},   {"f", 1},
              {"g", 2}, {"h", 1},   {"i", 0},     {"j", 0},      {"k", UINT64_MAX}};
    for (size_t i = 0; i < AG_ARRAY_LEN(ok); i++) {
        uint64_t v = 12345;
        CHECK_OK(ag_config_get_duration_ms(c, root, ok[i].key, AG_REQUIRED, &v));
        CHECK_U64_EQ(v, ok[i].want);
    }
    ag_config_free(c);

    c = load_ok("timeouts:\n  rpc: 10\n  b: 1.5s\n  c: 10sec\n  d: -1s\n  e: \"10s\"\n"
                "  f: 10S\n  g: 5124095576030432h\n  h: 99999999999999999999ms\n  i: ms\n"
                "  j: 10 s\n  k: {s: 1}\n");
    const ag_cnode *t = ag_cnode_get(ag_config_root(c), "timeouts");
    const char *what = "must be a duration (e.g. 500ms, 10s, 5m), got";
    struct {
        const char *key;
        int code;
        const char *where; /* "<file>:<l>:<c>: '<key>' " */
        const char *got;
    } bad[] = {
        {"rpc", AG_E_CONFIG_TYPE, "cluster.yaml:2:8: 'rpc' ", "'10'"},
        {"b", AG_E_CONFIG_TYPE, "cluster.yaml:3:6: 'b' ", "'1.5s'"},
        {"c", AG_E_CONFIG_TYPE, "cluster.yaml:4:6: 'c' ", "'10sec'"},
        {"d", AG_E_CONFIG_TYPE, "cluster.yaml:5:6: 'd' ", "'-1s'"},
        {"e", AG_E_CONFIG_TYPE, "cluster.yaml:6:6: 'e' ", "a quoted string '10s'"},
        {"f", AG_E_CONFIG_TYPE, "cluster.yaml:7:6: 'f' ", "'10S'"},
        {"g", AG_E_CONFIG_VALUE, "cluster.yaml:8:6: 'g' ", "'5124095576030432h'"},
        {"h", AG_E_CONFIG_VALUE, "cluster.yaml:9:6: 'h' ", "'99999999999999999999ms'"},
        {"i", AG_E_CONFIG_TYPE, "cluster.yaml:10:6: 'i' ", "'ms'"},
        {"j", AG_E_CONFIG_TYPE, "cluster.yaml:11:6: 'j' ", "'10 s'"},
        {"k", AG_E_CONFIG_TYPE, "cluster.yaml:12:6: 'k' ", "a mapping"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        char want[256];
        uint64_t v = 5;
        snprintf(want, sizeof(want), "%s%s %s", bad[i].where,
                 bad[i].code == AG_E_CONFIG_TYPE ? what : "is out of range, got", bad[i].got);
        CHECK_EQ(ag_config_get_duration_ms(c, t, bad[i].key, AG_REQUIRED, &v), bad[i].code);
        CHECK_STR_EQ(ag_config_errmsg(c), want);
        CHECK_U64_EQ(v, 5);
    }
    ag_config_free(c);
}

TEST(config_get_size)
{
    ag_config *c = load_ok("a: 0\nb: 512\nc: 512B\nd: 1KiB\ne: 64MiB\nf: 2GiB\ng: 1TiB\nh: 4K\n"
                           "i: 3M\nj: 1G\nk: 2T\nl: 18446744073709551615\nm: 16777215TiB\n");
    const ag_cnode *root = ag_config_root(c);
    struct {
        const char *key;
        uint64_t want;
    } ok[] = {{"a", 0},
              {"b", 512},
              {"c", 512},
              {"d", 1024},
              {"e", (uint64_t)64 << 20},
              {"f", (uint64_t)2 << 30},
              {"g", (uint64_t)1 << 40},
              {"h", 4096},
              {"i", (uint64_t)3 << 20},
              {"j", (uint64_t)1 << 30},
              {"k", (uint64_t)2 << 40},
              {"l", UINT64_MAX},
              {"m", (uint64_t)16777215 << 40}};
    for (size_t i = 0; i < AG_ARRAY_LEN(ok); i++) {
        uint64_t v = 1;
        CHECK_OK(ag_config_get_size(c, root, ok[i].key, AG_REQUIRED, &v));
        CHECK_U64_EQ(v, ok[i].want);
    }
    ag_config_free(c);

    c = load_ok("limits:\n  max_frame: 64MB\n  b: 1.5MiB\n  c: -1\n  d: 1 KiB\n  e: '1KiB'\n"
                "  f: 1kib\n  g: 16777216TiB\n  h: 18446744073709551616\n  i: KiB\n  j: 1KiBB\n");
    const ag_cnode *l = ag_cnode_get(ag_config_root(c), "limits");
    const char *what = "must be a size (e.g. 512KiB, 64MiB), got";
    struct {
        const char *key;
        int code;
        const char *where; /* "<file>:<l>:<c>: '<key>' " */
        const char *got;
    } bad[] = {
        {"max_frame", AG_E_CONFIG_TYPE, "cluster.yaml:2:14: 'max_frame' ", "'64MB'"},
        {"b", AG_E_CONFIG_TYPE, "cluster.yaml:3:6: 'b' ", "'1.5MiB'"},
        {"c", AG_E_CONFIG_TYPE, "cluster.yaml:4:6: 'c' ", "'-1'"},
        {"d", AG_E_CONFIG_TYPE, "cluster.yaml:5:6: 'd' ", "'1 KiB'"},
        {"e", AG_E_CONFIG_TYPE, "cluster.yaml:6:6: 'e' ", "a quoted string '1KiB'"},
        {"f", AG_E_CONFIG_TYPE, "cluster.yaml:7:6: 'f' ", "'1kib'"},
        {"g", AG_E_CONFIG_VALUE, "cluster.yaml:8:6: 'g' ", "'16777216TiB'"},
        {"h", AG_E_CONFIG_VALUE, "cluster.yaml:9:6: 'h' ", "'18446744073709551616'"},
        {"i", AG_E_CONFIG_TYPE, "cluster.yaml:10:6: 'i' ", "'KiB'"},
        {"j", AG_E_CONFIG_TYPE, "cluster.yaml:11:6: 'j' ", "'1KiBB'"},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        char want[256];
        uint64_t v = 5;
        snprintf(want, sizeof(want), "%s%s %s", bad[i].where,
                 bad[i].code == AG_E_CONFIG_TYPE ? what : "is out of range, got", bad[i].got);
        CHECK_EQ(ag_config_get_size(c, l, bad[i].key, AG_REQUIRED, &v), bad[i].code);
        CHECK_STR_EQ(ag_config_errmsg(c), want);
        CHECK_U64_EQ(v, 5);
    }
    ag_config_free(c);
}

TEST(config_get_str_map_seq)
{
    ag_config *c = load_ok(CLUSTER);
    const ag_cnode *root = ag_config_root(c);
    const ag_cnode *spu = NULL, *hosts = NULL, *m = NULL;
    const char *s = NULL;
    CHECK_OK(ag_config_get_map(c, root, "spu", AG_REQUIRED, &spu));
    CHECK_OK(ag_config_get_str(c, spu, "protocol", AG_REQUIRED, &s));
    CHECK_STR_EQ(s, "semi2k");
    CHECK_OK(ag_config_get_str(c, spu, "fxp_fraction_bits", AG_REQUIRED, &s));
    CHECK_STR_EQ(s, "18");
    CHECK_OK(ag_config_get_str(c, get_path2(root, "parties", "alice"), "address", AG_REQUIRED, &s));
    CHECK_STR_EQ(s, "10.0.0.1:9100");
    CHECK_OK(ag_config_get_seq(c, root, "hosts", AG_REQUIRED, &hosts));
    CHECK_EQ(ag_cnode_len(hosts), 3);

    CHECK_EQ(ag_config_get_str(c, root, "tls", AG_REQUIRED, &s), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml:14:3: 'tls' must be a string, got a mapping");
    CHECK_EQ(ag_config_get_str(c, root, "hosts", AG_REQUIRED, &s), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:18:3: 'hosts' must be a string, got a sequence");
    CHECK_EQ(ag_config_get_map(c, spu, "protocol", AG_REQUIRED, &m), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:10:13: 'protocol' must be a mapping, got 'semi2k'");
    CHECK_EQ(ag_config_get_map(c, root, "hosts", AG_REQUIRED, &m), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:18:3: 'hosts' must be a mapping, got a sequence");
    CHECK_EQ(ag_config_get_seq(c, root, "spu", AG_REQUIRED, &m), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml:10:3: 'spu' must be a sequence, got a mapping");
    CHECK_EQ(ag_config_get_seq(c, get_path2(root, "parties", "bob"), "address", AG_REQUIRED, &m),
             AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:8:14: 'address' must be a sequence, got '10.0.0.2:9100'");
    CHECK(m == NULL);
    ag_config_free(c);
}

TEST(config_optional_defaults_untouched)
{
    ag_config *c = load_ok("spu:\n  protocol: ~\n  field:\n");
    const ag_cnode *root = ag_config_root(c);
    const ag_cnode *spu = ag_cnode_get(root, "spu");
    const ag_cnode *maps[] = {spu, root, NULL, ag_cnode_get(spu, "field")};
    const char *keys[] = {"absent", "protocol", "field"};
    for (size_t m = 0; m < AG_ARRAY_LEN(maps); m++) {
        for (size_t k = 0; k < AG_ARRAY_LEN(keys); k++) {
            const char *s = "dflt";
            int64_t i = 42;
            double d = 2.5;
            bool b = true;
            uint64_t ms = 1500, size = 4096;
            const ag_cnode *sub = spu;
            CHECK_OK(ag_config_get_str(c, maps[m], keys[k], AG_OPTIONAL, &s));
            CHECK_OK(ag_config_get_i64(c, maps[m], keys[k], AG_OPTIONAL, 0, 100, &i));
            CHECK_OK(ag_config_get_double(c, maps[m], keys[k], AG_OPTIONAL, &d));
            CHECK_OK(ag_config_get_bool(c, maps[m], keys[k], AG_OPTIONAL, &b));
            CHECK_OK(ag_config_get_duration_ms(c, maps[m], keys[k], AG_OPTIONAL, &ms));
            CHECK_OK(ag_config_get_size(c, maps[m], keys[k], AG_OPTIONAL, &size));
            CHECK_OK(ag_config_get_map(c, maps[m], keys[k], AG_OPTIONAL, &sub));
            CHECK_OK(ag_config_get_seq(c, maps[m], keys[k], AG_OPTIONAL, &sub));
            CHECK_STR_EQ(s, "dflt");
            CHECK_EQ(i, 42);
            CHECK(d == 2.5);
            CHECK(b);
            CHECK_U64_EQ(ms, 1500);
            CHECK_U64_EQ(size, 4096);
            CHECK(sub == spu);
        }
    }
    CHECK_EQ(ag_config_errcode(c), 0);
    ag_config_free(c);
}

TEST(config_missing_required)
{
    ag_config *c = load_ok(CLUSTER);
    const ag_cnode *root = ag_config_root(c);
    const char *s = NULL;
    int64_t i = 0;
    CHECK_EQ(ag_config_get_str(c, root, "name", AG_REQUIRED, &s), AG_E_CONFIG_MISSING);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml:2:1: missing required key 'name'");
    const ag_cnode *alice = get_path2(root, "parties", "alice");
    CHECK_EQ(ag_config_get_i64(c, alice, "port", AG_REQUIRED, 1, 65535, &i), AG_E_CONFIG_MISSING);
    CHECK_EQ(ag_config_errcode(c), AG_E_CONFIG_MISSING);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:5:5: missing required key 'port' in 'parties.alice'");
    const ag_cnode *h2 = ag_cnode_item(ag_cnode_get(root, "hosts"), 2);
    CHECK_EQ(ag_config_get_str(c, h2, "address", AG_REQUIRED, &s), AG_E_CONFIG_MISSING);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:20:5: missing required key 'address' in 'hosts[2]'");
    CHECK_EQ(ag_config_get_map(c, NULL, "tls", AG_REQUIRED, &alice), AG_E_CONFIG_MISSING);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml: missing required key 'tls'");
    CHECK(s == NULL && i == 0);
    ag_config_free(c);

    c = load_ok("spu:\n  protocol: ~\n  field:\ntls:\n");
    root = ag_config_root(c);
    const ag_cnode *spu = ag_cnode_get(root, "spu");
    CHECK_EQ(ag_config_get_str(c, spu, "protocol", AG_REQUIRED, &s), AG_E_CONFIG_MISSING);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml:2:13: required key 'protocol' has no value");
    uint64_t size = 0;
    CHECK_EQ(ag_config_get_size(c, spu, "field", AG_REQUIRED, &size), AG_E_CONFIG_MISSING);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml:3:8: required key 'field' has no value");
    /* an empty section is an empty mapping */
    const ag_cnode *tls = ag_cnode_get(root, "tls");
    CHECK_EQ(ag_config_get_str(c, tls, "cert", AG_REQUIRED, &s), AG_E_CONFIG_MISSING);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml:4:4: missing required key 'cert' in 'tls'");
    CHECK_OK(ag_config_check_keys(c, tls, (const char *const[]){"cert", NULL}));
    ag_config_free(c);
}

TEST(config_map_argument_not_a_mapping)
{
    ag_config *c = load_ok(CLUSTER);
    const ag_cnode *root = ag_config_root(c);
    const ag_cnode *proto = get_path2(root, "spu", "protocol");
    const ag_cnode *hosts = ag_cnode_get(root, "hosts");
    const char *s = NULL;
    CHECK_EQ(ag_config_get_str(c, proto, "x", AG_OPTIONAL, &s), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:10:13: 'spu.protocol' must be a mapping, got 'semi2k'");
    CHECK_EQ(ag_config_get_str(c, hosts, "x", AG_REQUIRED, &s), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:18:3: 'hosts' must be a mapping, got a sequence");
    CHECK_EQ(ag_config_check_keys(c, ag_cnode_item(hosts, 1), (const char *const[]){NULL}),
             AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:19:5: 'hosts[1]' must be a mapping, got '10.0.0.2'");
    const ag_cnode *addr = get_path2(ag_cnode_get(root, "parties"), "alice", "address");
    CHECK_EQ(ag_config_check_keys(c, addr, (const char *const[]){NULL}), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(
        ag_config_errmsg(c),
        "cluster.yaml:5:14: 'parties.alice.address' must be a mapping, got '10.0.0.1:9100'");
    CHECK(s == NULL);
    ag_config_free(c);

    c = load_ok("- a\n- b\n");
    CHECK_EQ(ag_config_check_keys(c, ag_config_root(c), (const char *const[]){"a", NULL}),
             AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:1:1: the top level must be a mapping, got a sequence");
    ag_config_free(c);
}

TEST(config_got_text_cut_and_escaped)
{
    ag_config *c = load_ok("a: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
                           "b: a\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                           "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                           "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\n"
                           "c: \"a\\tb\\nc\\x01\"\n"
                           "d: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
    const ag_cnode *root = ag_config_root(c);
    int64_t v;
    CHECK_EQ(ag_config_get_i64(c, root, "a", AG_REQUIRED, 0, 1, &v), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml:1:4: 'a' must be an integer, got "
                                      "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'");
    /* 40 bytes would split a character: the cut backs off to 39 */
    CHECK_EQ(ag_config_get_i64(c, root, "b", AG_REQUIRED, 0, 1, &v), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:2:4: 'b' must be an integer, got 'a\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9...'");
    CHECK_EQ(ag_config_get_i64(c, root, "c", AG_REQUIRED, 0, 1, &v), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:3:4: 'c' must be an integer, got a quoted string 'a\\tb\\nc\\x01'");
    /* exactly 40 bytes are not cut */
    CHECK_EQ(ag_config_get_i64(c, root, "d", AG_REQUIRED, 0, 1, &v), AG_E_CONFIG_TYPE);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml:4:4: 'd' must be an integer, got "
                                      "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'");
    ag_config_free(c);
}

TEST(config_errorf)
{
    ag_config *c = load_ok(CLUSTER);
    const ag_cnode *bob = get_path2(ag_config_root(c), "parties", "bob");
    CHECK_EQ(ag_config_errorf(c, bob, AG_E_CONFIG_VALUE, "party '%s' has no ports", "bob"),
             AG_E_CONFIG_VALUE);
    CHECK_EQ(ag_config_errcode(c), AG_E_CONFIG_VALUE);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml:8:5: party 'bob' has no ports");
    CHECK_EQ(ag_config_errorf(c, NULL, AG_E_CONFIG_MISSING, "no parties (need %d)", 2),
             AG_E_CONFIG_MISSING);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml: no parties (need 2)");
    ag_config_free(c);
}

TEST(config_load_file)
{
    const char *path = ag_test_write_file("cluster.yaml", CLUSTER, strlen(CLUSTER));
    char want[600];
    ag_config *c = ag_config_new();
    CHECK(c != NULL);
    CHECK_OK(ag_config_load_file(c, path));
    CHECK_STR_EQ(ag_config_name(c), path);
    const ag_cnode *spu = ag_cnode_get(ag_config_root(c), "spu");
    check_node(spu, AG_CNODE_MAP, 10, 3, "spu");
    int64_t bits = 0;
    CHECK_EQ(ag_config_get_i64(c, spu, "fxp_fraction_bits", AG_REQUIRED, 0, 10, &bits),
             AG_E_CONFIG_VALUE);
    snprintf(want, sizeof(want), "%s:12:22: 'fxp_fraction_bits' must be between 0 and 10, got 18",
             path);
    CHECK_STR_EQ(ag_config_errmsg(c), want);
    /* a config is loaded once */
    CHECK_EQ(ag_config_load_file(c, path), AG_E_STATE);
    CHECK_EQ(ag_config_load_string(c, "x", "a: 1", 4), AG_E_STATE);
    CHECK(ag_config_root(c) != NULL);
    CHECK_STR_EQ(ag_cnode_scalar(get_path2(ag_config_root(c), "spu", "field")), "FM64");
    ag_config_free(c);

    c = ag_config_new();
    CHECK(c != NULL);
    const char *missing = ag_test_path("nope.yaml");
    CHECK_EQ(ag_config_load_file(c, missing), AG_E_NOENT);
    snprintf(want, sizeof(want), "%s: No such file or directory", missing);
    CHECK_STR_EQ(ag_config_errmsg(c), want);
    CHECK(ag_config_root(c) == NULL);
    CHECK_EQ(ag_config_load_file(c, missing), AG_E_STATE);
    ag_config_free(c);

    c = ag_config_new();
    CHECK(c != NULL);
    CHECK(ag_config_load_file(c, ag_test_tmpdir()) < 0);
    snprintf(want, sizeof(want), "%s: Is a directory", ag_test_tmpdir());
    CHECK_STR_EQ(ag_config_errmsg(c), want);
    ag_config_free(c);

    const char *bad = ag_test_write_file("bad.yaml", "a: 1\na: 2\n", 10);
    c = ag_config_new();
    CHECK(c != NULL);
    CHECK_EQ(ag_config_load_file(c, bad), AG_E_CONFIG_SYNTAX);
    snprintf(want, sizeof(want), "%s:2:1: duplicate key 'a' (first at line 1, column 1)", bad);
    CHECK_STR_EQ(ag_config_errmsg(c), want);
    ag_config_free(c);
}

TEST(config_load_string_name_and_len)
{
    ag_config *c = ag_config_new();
    CHECK(c != NULL);
    /* only len bytes are read: the rest would be a syntax error */
    const char *text = "a: 1\n}}}";
    CHECK_OK(ag_config_load_string(c, NULL, text, 5));
    CHECK_STR_EQ(ag_config_name(c), "<string>");
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(ag_config_root(c), "a")), "1");
    ag_config_free(c);
}

TEST(config_cnode_null_safe)
{
    CHECK_EQ(ag_cnode_type_of(NULL), AG_CNODE_NULL);
    CHECK_EQ(ag_cnode_line(NULL), 0);
    CHECK_EQ(ag_cnode_column(NULL), 0);
    CHECK_STR_EQ(ag_cnode_path(NULL), "");
    CHECK(ag_cnode_scalar(NULL) == NULL);
    CHECK_EQ(ag_cnode_scalar_len(NULL), 0);
    CHECK(!ag_cnode_is_quoted(NULL));
    CHECK_EQ(ag_cnode_len(NULL), 0);
    CHECK(ag_cnode_item(NULL, 0) == NULL);
    CHECK(ag_cnode_key(NULL, 0) == NULL);
    ag_config *c = load_ok("m: {a: 1}\ns: [x]\n");
    const ag_cnode *m = ag_cnode_get(ag_config_root(c), "m");
    CHECK(ag_cnode_scalar(m) == NULL);
    CHECK(ag_cnode_key(m, 1) == NULL);
    CHECK(ag_cnode_item(m, 1) == NULL);
    CHECK(ag_cnode_scalar(ag_cnode_get(ag_config_root(c), "s")) == NULL);
    CHECK_EQ(ag_cnode_len(ag_cnode_key(m, 0)), 0);
    ag_config_free(c);
}

/* The cluster config read through the getters, as a daemon would. */
TEST_FM(config_fm_cluster_getters)
{
    static const char *const top_keys[] = {"cluster", "parties",  "spu",    "tls",
                                           "hosts",   "timeouts", "limits", NULL};
    ag_config *c = ag_config_new();
    FM_NEW(c);
    FM_TRY(ag_config_load_string(c, "cluster.yaml", CLUSTER, strlen(CLUSTER)), 0);
    const ag_cnode *root = ag_config_root(c), *parties = NULL, *spu = NULL, *hosts = NULL;
    const ag_cnode *limits = NULL;
    const char *addr = NULL, *proto = NULL;
    int64_t bits = 0;
    uint64_t rpc = 0, frame = 0;
    double ratio = 0;
    bool verbose = true;
    FM_TRY(ag_config_check_keys(c, root, top_keys), 0);
    FM_TRY(ag_config_get_map(c, root, "parties", AG_REQUIRED, &parties), 0);
    FM_TRY(ag_config_get_str(c, ag_cnode_get(parties, "bob"), "address", AG_REQUIRED, &addr), 0);
    CHECK_STR_EQ(addr, "10.0.0.2:9100");
    FM_TRY(ag_config_get_map(c, root, "spu", AG_REQUIRED, &spu), 0);
    FM_TRY(ag_config_get_str(c, spu, "protocol", AG_REQUIRED, &proto), 0);
    CHECK_STR_EQ(proto, "semi2k");
    FM_TRY(ag_config_get_i64(c, spu, "fxp_fraction_bits", AG_REQUIRED, 0, 64, &bits), 0);
    CHECK_EQ(bits, 18);
    FM_TRY(ag_config_get_seq(c, root, "hosts", AG_REQUIRED, &hosts), 0);
    CHECK_EQ(ag_cnode_len(hosts), 3);
    FM_TRY(ag_config_get_duration_ms(c, ag_cnode_get(root, "timeouts"), "rpc", AG_REQUIRED, &rpc),
           0);
    CHECK_U64_EQ(rpc, 10000);
    FM_TRY(ag_config_get_map(c, root, "limits", AG_REQUIRED, &limits), 0);
    FM_TRY(ag_config_get_size(c, limits, "max_frame", AG_REQUIRED, &frame), 0);
    CHECK_U64_EQ(frame, (uint64_t)64 << 20);
    FM_TRY(ag_config_get_double(c, limits, "ratio", AG_REQUIRED, &ratio), 0);
    CHECK(ratio == 0.75);
    FM_TRY(ag_config_get_bool(c, limits, "verbose", AG_REQUIRED, &verbose), 0);
    CHECK(!verbose);
    CHECK_STR_EQ(
        ag_cnode_path(ag_cnode_item(ag_cnode_get(ag_cnode_get(parties, "alice"), "ports"), 1)),
        "parties.alice.ports[1]");
out:
    ag_config_free(c);
}

/* Errors while building and after: every allocation failure gives
 * AG_E_NOMEM and leaks nothing; otherwise the exact message. */
TEST_FM(config_fm_errors)
{
    static const char *const spu_keys[] = {"protocol", "field", "fxp_fraction_bits", NULL};
    static const char dup[] = "parties:\n  alice: &a {address: x}\n  bob: *a\n  alice: {}\n";
    ag_config *c = ag_config_new(), *d = NULL;
    FM_NEW(c);
    FM_TRY(ag_config_load_string(c, "cluster.yaml", dup, strlen(dup)), AG_E_CONFIG_SYNTAX);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:4:3: duplicate key 'alice' (first at line 2, column 3)");
    CHECK(ag_config_root(c) == NULL);
    d = ag_config_new();
    FM_NEW(d);
    FM_TRY(ag_config_load_string(d, "cluster.yaml", CLUSTER_FLOW, strlen(CLUSTER_FLOW)), 0);
    const ag_cnode *spu = ag_cnode_get(ag_config_root(d), "spu");
    FM_TRY(ag_config_check_keys(d, spu, spu_keys + 1), AG_E_CONFIG_UNKNOWN_KEY);
    CHECK_STR_EQ(ag_config_errmsg(d), "cluster.yaml:3:8: unknown key 'protocol' (expected one "
                                      "of: field, fxp_fraction_bits)");
out:
    ag_config_free(d);
    ag_config_free(c);
}

/* Loading from a file, with failures in reading and building. */
TEST_FM(config_fm_load_file)
{
    const char *path = ag_test_write_file("flow.yaml", CLUSTER_FLOW, strlen(CLUSTER_FLOW));
    ag_config *c = ag_config_new();
    FM_NEW(c);
    FM_TRY(ag_config_load_file(c, path), 0);
    CHECK_STR_EQ(ag_config_name(c), path);
    CHECK_STR_EQ(ag_cnode_path(ag_cnode_get(
                     ag_cnode_item(ag_cnode_get(ag_config_root(c), "hosts"), 2), "port")),
                 "hosts[2].port");
out:
    ag_config_free(c);
}

TEST(config_invalid_bytes)
{
    static const char nul[] = "a: 1\nb: x\0y\n";
    ag_config *c = ag_config_new();
    CHECK(c != NULL);
    CHECK_EQ(ag_config_load_string(c, "cluster.yaml", nul, sizeof(nul) - 1), AG_E_CONFIG_SYNTAX);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml:2:5: syntax error: NUL character");
    ag_config_free(c);
    check_load_error("a: 1\r\n\xc3\xa9: \xff\xfe\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:2:4: syntax error: invalid UTF-8");
    check_load_error("a: \xed\xa0\x80\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:1:4: syntax error: invalid UTF-8");
    /* a byte order mark is fine */
    c = load_ok("\xef\xbb\xbf"
                "a: 1\n");
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(ag_config_root(c), "a")), "1");
    ag_config_free(c);
}

/* A config big enough to grow every buffer and fill several arena chunks. */
TEST_FM(config_fm_large)
{
    ag_buf text;
    ag_config *c = NULL;
    ag_buf_init(&text, (size_t)1 << 24);
    for (int i = 0; i < 600; i++)
        FM_TRY(ag_buf_printf(&text,
                             "party_%04d: &p%d {address: \"10.0.%d.%d:9100\", "
                             "ports: [%d, %d], tags: [a, b, c, d]}\nalias_%04d: *p%d\n",
                             i, i, i / 256, i % 256, 9000 + i, 10000 + i, i, i),
               0);
    c = ag_config_new();
    FM_NEW(c);
    FM_TRY(ag_config_load_string(c, "big.yaml", (const char *)text.data, text.len), 0);
    const ag_cnode *root = ag_config_root(c);
    CHECK_EQ(ag_cnode_len(root), 1200);
    const ag_cnode *p = ag_cnode_get(root, "party_0599");
    CHECK(ag_cnode_get(root, "alias_0599") == p);
    CHECK_STR_EQ(ag_cnode_path(ag_cnode_item(ag_cnode_get(p, "ports"), 1)), "party_0599.ports[1]");
    CHECK_EQ(ag_cnode_line(p), 1199);
out:
    ag_config_free(c);
    ag_buf_cleanup(&text);
}

/* libfyaml 0.7 misreads runs of '' escapes; config.c decodes them itself. */
TEST(config_single_quoted_escapes)
{
    ag_config *c = load_ok("a: 'x''''y'\nb: 'it''s'\nc: ''''''\nd: 'p\n  q'\ne: '''x'''\n"
                           "f: ''''''''''\n");
    const ag_cnode *root = ag_config_root(c);
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "a")), "x''y");
    CHECK_EQ(ag_cnode_scalar_len(ag_cnode_get(root, "a")), 4);
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "b")), "it's");
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "c")), "''");
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "d")), "p q");
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "e")), "'x'");
    CHECK_STR_EQ(ag_cnode_scalar(ag_cnode_get(root, "f")), "''''");
    check_node(ag_cnode_get(root, "a"), AG_CNODE_SCALAR, 1, 4, "a");
    CHECK(ag_cnode_is_quoted(ag_cnode_get(root, "a")));
    ag_config_free(c);
    check_load_error("a: 'x\n  y''''z'\n", AG_E_CONFIG_SYNTAX,
                     "cluster.yaml:1:4: syntax error: '' escapes in a row in a single-quoted "
                     "scalar over several lines are not supported; use double quotes");
}

TEST(config_empty_collections)
{
    const char *inputs[] = {"[]", "{}", "--- []\n", "a: []\nb: {}\n"};
    for (size_t i = 0; i < AG_ARRAY_LEN(inputs); i++) {
        ag_config *c = load_ok(inputs[i]);
        const ag_cnode *root = ag_config_root(c);
        if (i < 3) {
            CHECK_EQ(ag_cnode_type_of(root), i == 1 ? AG_CNODE_MAP : AG_CNODE_SEQ);
            CHECK_EQ(ag_cnode_len(root), 0);
            CHECK(ag_cnode_item(root, 0) == NULL);
        } else {
            check_node(ag_cnode_get(root, "a"), AG_CNODE_SEQ, 1, 4, "a");
            check_node(ag_cnode_get(root, "b"), AG_CNODE_MAP, 2, 4, "b");
            CHECK_EQ(ag_cnode_len(ag_cnode_get(root, "b")), 0);
        }
        ag_config_free(c);
    }
}

TEST(config_get_hostport_and_daemon_keys)
{
    ag_config *c = load_ok("a: \"10.0.0.1:9100\"\nb: \"[::1]:80\"\nc: unix:/run/x.sock\n"
                           "d: nohost\ne: \":80\"\nf: \"host:\"\n"
                           "admin: {address: \"127.0.0.1:9401\"}\nlog: {level: warn}\n"
                           "shutdown_grace: 3s\n");
    const ag_cnode *root = ag_config_root(c);
    char out[64] = "preset";
    CHECK_OK(ag_config_get_hostport(c, root, "a", AG_REQUIRED, out, sizeof(out)));
    CHECK_STR_EQ(out, "10.0.0.1:9100");
    CHECK_OK(ag_config_get_hostport(c, root, "b", AG_REQUIRED, out, sizeof(out)));
    CHECK_OK(ag_config_get_hostport(c, root, "c", AG_REQUIRED, out, sizeof(out)));
    CHECK_STR_EQ(out, "unix:/run/x.sock");
    CHECK_OK(ag_config_get_hostport(c, root, "zz", AG_OPTIONAL, out, sizeof(out)));
    CHECK_STR_EQ(out, "unix:/run/x.sock");
    CHECK_EQ(ag_config_get_hostport(c, root, "d", AG_REQUIRED, out, sizeof(out)),
             AG_E_CONFIG_VALUE);
    CHECK_STR_EQ(ag_config_errmsg(c), "cluster.yaml:4:4: 'd' must be \"host:port\", got 'nohost'");
    CHECK_EQ(ag_config_get_hostport(c, root, "e", AG_REQUIRED, out, sizeof(out)),
             AG_E_CONFIG_VALUE);
    CHECK_EQ(ag_config_get_hostport(c, root, "f", AG_REQUIRED, out, sizeof(out)),
             AG_E_CONFIG_VALUE);
    CHECK_EQ(ag_config_get_hostport(c, root, "a", AG_REQUIRED, out, 5), AG_E_CONFIG_VALUE);
    ag_daemon_conf d = {.log_level = -1, .shutdown_grace_ms = 10000};
    CHECK_OK(ag_config_get_daemon(c, root, &d));
    CHECK_STR_EQ(d.admin, "127.0.0.1:9401");
    CHECK_EQ(d.log_level, AG_LOG_WARN);
    CHECK_U64_EQ(d.shutdown_grace_ms, 3000);
    ag_config_free(c);

    /* absent: presets kept; wrong: file:line:col */
    c = load_ok("x: 1\n");
    ag_daemon_conf e = {.log_level = -1, .shutdown_grace_ms = 7};
    CHECK_OK(ag_config_get_daemon(c, ag_config_root(c), &e));
    CHECK_STR_EQ(e.admin, "");
    CHECK_EQ(e.log_level, -1);
    CHECK_U64_EQ(e.shutdown_grace_ms, 7);
    ag_config_free(c);
    c = load_ok("log: {level: loud}\n");
    CHECK_EQ(ag_config_get_daemon(c, ag_config_root(c), &e), AG_E_CONFIG_VALUE);
    CHECK_STR_EQ(ag_config_errmsg(c),
                 "cluster.yaml:1:14: log level 'loud' is not debug, info, warn, error or off");
    ag_config_free(c);
    c = load_ok("admin: {adress: x}\n");
    CHECK_EQ(ag_config_get_daemon(c, ag_config_root(c), &e), AG_E_CONFIG_UNKNOWN_KEY);
    ag_config_free(c);
}
