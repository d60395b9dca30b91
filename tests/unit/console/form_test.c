/*
 * Tests for src/console/form.c: the JSON API's forms (each problem named
 * under its field, the files checked against the form) and the messages
 * between consoles (what parses, what is refused, the round trip).
 */
#include "console/internal.h"
#include "test.h"

static void cluster(ag_cluster *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->n = 2;
    snprintf(cl->names[0], sizeof(cl->names[0]), "alice");
    snprintf(cl->names[1], sizeof(cl->names[1]), "bob");
}

/* Parses body; returns the errors as compact JSON (static), "" if none. */
static const char *parse(const char *body, bool decide, ag__console_form *f)
{
    static char out[2048];
    ag_cluster cl;
    cluster(&cl);
    json_t *errors = json_object();
    CHECK(errors != NULL);
    int rc = ag__console_form_parse(body, strlen(body), decide, &cl, f, errors);
    char *s = json_dumps(errors, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK(s != NULL);
    snprintf(out, sizeof(out), "%s", rc == 0 ? "" : s);
    CHECK_EQ(rc == 0, json_object_size(errors) == 0);
    free(s);
    json_decref(errors);
    return out;
}

TEST(console_form_takes_a_proposal)
{
    ag__console_form f;
    CHECK_STR_EQ(parse("{\"kind\": \"psi\", \"input\": \"/d/a.csv\", \"keys\": \"id,day\", "
                       "\"receiver\": \"bob\", \"join\": \"left\", \"output\": \"/d/o.csv\"}",
                       false, &f), "");
    CHECK_STR_EQ(f.kind, "psi");
    CHECK_STR_EQ(f.input, "/d/a.csv");
    CHECK_STR_EQ(f.keys, "id,day");
    CHECK_STR_EQ(f.receiver, "bob");
    CHECK_STR_EQ(f.join, "left");
    CHECK_STR_EQ(f.output, "/d/o.csv");
    /* receiver, join and output are optional; null counts as absent */
    CHECK_STR_EQ(parse("{\"kind\": \"psi\", \"input\": \"a.csv\", \"keys\": \"id\", "
                       "\"receiver\": null}", false, &f), "");
    CHECK_STR_EQ(f.receiver, "");
}

TEST(console_form_names_each_bad_field)
{
    ag__console_form f;
    CHECK_STR_EQ(parse("{\"kind\": \"psi\", \"input\": 7, \"keys\": \"id,,x\", \"receiver\": "
                       "\"carol\", \"join\": \"outer\", \"output\": \"a\\nb\"}", false, &f),
                 "{\"input\":\"must be a string\",\"join\":\"'outer': inner, left, right, full "
                 "or difference\",\"keys\":\"an empty column name in 'id,,x'\",\"output\":"
                 "\"holds a control character\",\"receiver\":\"'carol' is no party of the "
                 "cluster (a party or both)\"}");
    CHECK_STR_EQ(parse("{\"kind\": \"sql\", \"input\": \"a\", \"keys\": \"id\"}", false, &f),
                 "{\"kind\":\"'sql' is not a job this console runs (psi, lr-train, "
                 "lr-predict, stats)\"}");
    CHECK_STR_EQ(parse("{\"kind\": \"psi\"}", false, &f),
                 "{\"input\":\"required\",\"keys\":\"required\"}");
    CHECK_STR_EQ(parse("{\"kind\": \"psi\", \"input\": \"\", \"keys\": \"\"}", false, &f),
                 "{\"input\":\"required\",\"keys\":\"required\"}");
    CHECK_CONTAINS(parse("{\"kind\": ", false, &f), "{\"form\":\"the body is not JSON: ");
    CHECK_STR_EQ(parse("[]", false, &f), "{\"form\":\"the body is not a JSON object\"}");
    CHECK_CONTAINS(parse("{\"kind\": \"psi\", \"kind\": \"psi\"}", false, &f),
                   "duplicate object key");
    char big[3000];
    snprintf(big, sizeof(big), "{\"kind\": \"psi\", \"input\": \"%01100d\", \"keys\": \"id\"}",
             0);
    CHECK_STR_EQ(parse(big, false, &f), "{\"input\":\"too long (at most 1023 bytes)\"}");
}

TEST(console_form_takes_a_decision)
{
    ag__console_form f;
    CHECK_STR_EQ(parse("{\"id\": \"alice-1-ab\", \"approve\": false}", true, &f), "");
    CHECK(!f.approve);
    CHECK_STR_EQ(f.id, "alice-1-ab");
    /* approving needs this party's input; its keys default to the proposer's */
    CHECK_STR_EQ(parse("{\"id\": \"alice-1-ab\", \"approve\": true}", true, &f),
                 "{\"input\":\"required\"}");
    CHECK_STR_EQ(parse("{\"id\": \"alice-1-ab\", \"approve\": true, \"input\": \"b.csv\"}",
                       true, &f), "");
    CHECK(f.approve);
    CHECK_STR_EQ(f.keys, "");
    CHECK_STR_EQ(parse("{\"id\": \"../etc\", \"approve\": \"yes\"}", true, &f),
                 "{\"approve\":\"must be true or false\",\"id\":\"not a job id\"}");
    CHECK_STR_EQ(parse("{\"id\": \"../etc\", \"approve\": false}", true, &f),
                 "{\"id\":\"not a job id\"}");
}

static const char *check_files_label(const char *input, const char *keys, const char *output,
                                     const char *label)
{
    static char out[2048];
    ag__console_form f;
    memset(&f, 0, sizeof(f));
    snprintf(f.input, sizeof(f.input), "%s", input);
    snprintf(f.keys, sizeof(f.keys), "%s", keys);
    snprintf(f.output, sizeof(f.output), "%s", output);
    json_t *errors = json_object();
    CHECK(errors != NULL);
    int rc = ag__console_form_check_files(&f, label, errors);
    char *s = json_dumps(errors, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(out, sizeof(out), "%s", rc == 0 ? "" : s);
    free(s);
    json_decref(errors);
    return out;
}

static const char *check_files(const char *input, const char *keys, const char *output)
{
    return check_files_label(input, keys, output, NULL);
}

TEST(console_form_checks_the_files)
{
    static const char csv[] = "id,day,v\n1,2,3\n";
    char in[600], out[700];
    snprintf(in, sizeof(in), "%s", ag_test_write_file("alice.csv", csv, strlen(csv)));
    snprintf(out, sizeof(out), "%s/o.csv", ag_test_tmpdir());
    CHECK_STR_EQ(check_files(in, "id,day", out), "");
    CHECK_STR_EQ(check_files(in, "day,idd", out),
                 "{\"keys\":\"column 'idd' is not in alice.csv\"}");
    CHECK_CONTAINS(check_files(ag_test_path("none.csv"), "id", ""),
                   "none.csv: No such file or directory");
    CHECK_CONTAINS(check_files(ag_test_tmpdir(), "id", ""), "not a regular file");
    CHECK_CONTAINS(check_files(in, "id", "/no/such/dir/o.csv"),
                   "{\"output\":\"/no/such/dir: no such directory\"}");
    CHECK_STR_EQ(check_files(in, "id", in),
                 "{\"output\":\"the output would overwrite the input\"}");
    ag_test_write_file("empty.csv", "", 0);
    CHECK_CONTAINS(check_files(ag_test_path("empty.csv"), "id", ""), "no header row");
    CHECK_STR_EQ(check_files_label(in, "id", "", "v"), "");
    CHECK_STR_EQ(check_files_label(in, "id", "", "y"),
                 "{\"label\":\"column 'y' is not in alice.csv\"}");
}

static int msg(const char *text, ag__console_msg *m, ag_errbuf *err)
{
    ag_cluster cl;
    cluster(&cl);
    memset(err, 0, sizeof(*err));
    return ag__console_msg_parse(text, strlen(text), &cl, m, err);
}

TEST(console_msg_parses_and_round_trips)
{
    ag__console_msg m, again;
    ag_errbuf err;
    CHECK_OK(msg("{\"type\": \"propose\", \"from\": \"alice\", \"id\": \"alice-1-2\", \"kind\": "
                 "\"psi\", \"keys\": \"id\", \"receiver\": \"both\", \"join\": \"\"}", &m, &err));
    CHECK_EQ(m.type, AG__MSG_PROPOSE);
    CHECK_STR_EQ(m.from, "alice");
    CHECK_STR_EQ(m.keys, "id");
    char *text = ag__console_msg_encode(&m);
    CHECK(text != NULL);
    CHECK_OK(msg(text, &again, &err));
    CHECK(memcmp(&m, &again, sizeof(m)) == 0);
    ag_free(text);
    CHECK_OK(msg("{\"type\": \"decide\", \"from\": \"bob\", \"id\": \"a\", \"approve\": true}",
                 &m, &err));
    CHECK(m.approve);
    CHECK_OK(msg("{\"type\": \"ping\", \"from\": \"bob\"}", &m, &err));
    CHECK_EQ(m.type, AG__MSG_PING);
}

TEST(console_msg_refuses_what_is_wrong)
{
    ag__console_msg m;
    ag_errbuf err;
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"{\"type\": \"start\", \"from\": \"mallory\", \"id\": \"x\"}",
         "'from': no party of the cluster"},
        {"{\"type\": \"stop\", \"from\": \"bob\"}", "type 'stop' is unknown"},
        {"{\"type\": \"start\", \"from\": \"bob\", \"id\": \"../x\"}", "'id' is not a job id"},
        {"{\"type\": \"decide\", \"from\": \"bob\", \"id\": \"x\"}",
         "'approve' is missing or not a boolean"},
        {"{\"type\": \"propose\", \"from\": \"bob\", \"id\": \"x\", \"kind\": \"sql\"}",
         "kind 'sql' is unknown"},
        {"{\"type\": \"propose\", \"from\": \"bob\", \"id\": \"x\", \"kind\": \"psi\", "
         "\"keys\": \"\", \"receiver\": \"\", \"join\": \"\"}",
         "bad keys, receiver, join or training parameters"},
        {"{\"type\": \"ping\", \"from\": \"b\\u0000ob\"}", "is not allowed without JSON_ALLOW_NUL"},
        {"{\"type\": 3}", "'type' is missing or not a string"},
        {"[]", "not a JSON object"},
        {"{", "not JSON: "},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(cases); i++) {
        CHECK_EQ(msg(cases[i].text, &m, &err), AG_E_INVAL);
        CHECK_CONTAINS(err.msg, cases[i].why);
    }
}

TEST(console_form_psi_needs_two_parties)
{
    ag_cluster cl;
    cluster(&cl);
    cl.n = 3;
    snprintf(cl.names[2], sizeof(cl.names[2]), "carol");
    json_t *errors = json_object();
    CHECK(errors != NULL);
    ag__console_form f;
    static const char body[] = "{\"kind\": \"psi\", \"input\": \"a.csv\", \"keys\": \"id\"}";
    CHECK_EQ(ag__console_form_parse(body, strlen(body), false, &cl, &f, errors), AG_E_INVAL);
    CHECK_STR_EQ(json_string_value(json_object_get(errors, "kind")),
                 "a PSI is between two parties; the cluster has 3");
    json_decref(errors);
}

TEST(console_form_takes_a_training)
{
    ag__console_form f;
    CHECK_STR_EQ(parse("{\"kind\": \"lr-train\", \"input\": \"a.csv\", \"keys\": \"id\", "
                       "\"label\": \"alice:y\", \"epochs\": 3, \"batch_size\": 16, "
                       "\"learning_rate\": 0.5, \"output\": \"m.json\"}", false, &f), "");
    CHECK_STR_EQ(f.lr.label, "alice:y");
    CHECK_EQ(f.lr.epochs, 3);
    CHECK_EQ(f.lr.batch_size, 16);
    CHECK(f.lr.learning_rate == 0.5);
    /* defaults */
    CHECK_STR_EQ(parse("{\"kind\": \"lr-train\", \"input\": \"a.csv\", \"keys\": \"id\", "
                       "\"label\": \"bob:y\", \"output\": \"m\"}", false, &f), "");
    CHECK_EQ(f.lr.epochs, 5);
    CHECK_EQ(f.lr.batch_size, 1024);
    CHECK(f.lr.learning_rate == 0.1);
    CHECK_STR_EQ(parse("{\"kind\": \"lr-train\", \"input\": \"a.csv\", \"keys\": \"id\", "
                       "\"label\": \"carol:y\", \"epochs\": 0, \"batch_size\": 2.5, "
                       "\"learning_rate\": 0}", false, &f),
                 "{\"batch_size\":\"a whole number from 1 to 1000000\",\"epochs\":\"a whole "
                 "number from 1 to 1000\",\"label\":\"'carol:y': PARTY:COLUMN, the party holding "
                 "the 0/1 label (a party of the cluster) and its column\",\"learning_rate\":\"a "
                 "number above 0, at most 10\",\"output\":\"required\"}");
    CHECK_STR_EQ(ag__console_label_col("alice:y", "alice"), "y");
    CHECK(ag__console_label_col("alice:y", "ali") == NULL);
    CHECK(ag__console_label_col("alice:y", "bob") == NULL);
}

TEST(console_form_takes_statistics)
{
    ag__console_form f;
    CHECK_STR_EQ(parse("{\"kind\": \"stats\", \"input\": \"a.csv\", \"keys\": \"id\", "
                       "\"stats\": \"count,corr\", \"reveal_to\": \"alice,bob\"}", false, &f), "");
    CHECK_STR_EQ(f.st.stats, "count,corr");
    CHECK_STR_EQ(f.st.reveal_to, "alice,bob");
    CHECK_STR_EQ(parse("{\"kind\": \"stats\", \"input\": \"a.csv\", \"keys\": \"id\"}", false,
                       &f), "");
    CHECK_STR_EQ(f.st.stats, "count,mean,std,min,max");
    CHECK_STR_EQ(f.st.reveal_to, "all");
    CHECK_STR_EQ(parse("{\"kind\": \"stats\", \"input\": \"a.csv\", \"keys\": \"id\", "
                       "\"stats\": \"count,,hist\", \"reveal_to\": \"bob,carol\"}", false, &f),
                 "{\"reveal_to\":\"'carol' is no party of the cluster (parties, or all)\","
                 "\"stats\":\"'': count, sum, mean, var, std, min, max, quantiles, corr or "
                 "all\"}");

    ag__console_msg m, again;
    ag_errbuf err;
    CHECK_OK(msg("{\"type\": \"propose\", \"from\": \"alice\", \"id\": \"a-1\", \"kind\": "
                 "\"stats\", \"keys\": \"id\", \"stats\": \"all\", \"reveal_to\": \"bob\"}", &m,
                 &err));
    CHECK_STR_EQ(m.st.reveal_to, "bob");
    char *text = ag__console_msg_encode(&m);
    CHECK(text != NULL);
    CHECK_OK(msg(text, &again, &err));
    CHECK(memcmp(&m, &again, sizeof(m)) == 0);
    ag_free(text);
    CHECK_EQ(msg("{\"type\": \"propose\", \"from\": \"alice\", \"id\": \"a-1\", \"kind\": "
                 "\"stats\", \"keys\": \"id\", \"stats\": \"all\", \"reveal_to\": \"eve\"}", &m,
                 &err), AG_E_INVAL);
}

TEST(console_form_takes_a_prediction)
{
    ag__console_form f;
    CHECK_STR_EQ(parse("{\"kind\": \"lr-predict\", \"input\": \"a.csv\", \"keys\": \"id\", "
                       "\"label\": \"alice:y\", \"model\": \"m.json\", \"output\": \"s.csv\"}",
                       false, &f), "");
    CHECK_STR_EQ(f.model, "m.json");
    CHECK_STR_EQ(f.lr.label, "alice:y");
    CHECK_STR_EQ(parse("{\"kind\": \"lr-predict\", \"input\": \"a.csv\", \"keys\": \"id\", "
                       "\"label\": \"y\"}", false, &f),
                 "{\"label\":\"'y': PARTY:COLUMN, the party holding the 0/1 label (a party of "
                 "the cluster) and its column\",\"model\":\"required\"}");
    /* the role: the label party names a scores file, the other none */
    json_t *errors = json_object();
    CHECK(errors != NULL);
    memset(&f, 0, sizeof(f));
    snprintf(f.model, sizeof(f.model), "m.json");
    CHECK_EQ(ag__console_form_check_role(&f, "lr-predict", "alice:y", "alice", errors),
             AG_E_INVAL);
    CHECK_CONTAINS(json_string_value(json_object_get(errors, "output")),
                   "required: this party holds the label and receives the scores");
    json_object_clear(errors);
    CHECK_OK(ag__console_form_check_role(&f, "lr-predict", "alice:y", "bob", errors));
    snprintf(f.output, sizeof(f.output), "s.csv");
    CHECK_EQ(ag__console_form_check_role(&f, "lr-predict", "alice:y", "bob", errors),
             AG_E_INVAL);
    CHECK_STR_EQ(json_string_value(json_object_get(errors, "output")),
                 "only the label party (alice) receives the scores");
    json_object_clear(errors);
    f.output[0] = '\0';
    CHECK_EQ(ag__console_form_check_role(&f, "lr-train", "", "bob", errors), AG_E_INVAL);
    CHECK_STR_EQ(json_string_value(json_object_get(errors, "output")),
                 "required (this party's model file)");
    json_decref(errors);

    ag__console_msg m, again;
    ag_errbuf err;
    CHECK_OK(msg("{\"type\": \"propose\", \"from\": \"alice\", \"id\": \"a-2\", \"kind\": "
                 "\"lr-predict\", \"keys\": \"id\", \"label\": \"alice:y\"}", &m, &err));
    char *text = ag__console_msg_encode(&m);
    CHECK(text != NULL);
    CHECK_OK(msg(text, &again, &err));
    CHECK(memcmp(&m, &again, sizeof(m)) == 0);
    ag_free(text);
}
