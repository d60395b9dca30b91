/*
 * Tests for src/console/eval.c: a prediction's accuracy and AUC at the
 * label party, from its input's labels and the scores joined by key, on
 * numbers worked out by hand; and the errors that name file and line.
 */
#include <math.h>

#include "console/internal.h"
#include "test.h"

static json_t *eval(const char *input, const char *scores, ag_errbuf *err)
{
    char in[600], sc[600];
    snprintf(in, sizeof(in), "%s", ag_test_write_file("in.csv", input, strlen(input)));
    snprintf(sc, sizeof(sc), "%s", ag_test_write_file("scores.csv", scores, strlen(scores)));
    json_t *out = NULL;
    memset(err, 0, sizeof(*err));
    int rc = ag__console_evaluate(in, "id,day", "y", sc, &out, err);
    CHECK_EQ(rc == 0, out != NULL);
    return out;
}

TEST(console_eval_accuracy_and_auc)
{
    /* positives a (0.9), c (0.4), e (0.7); negatives b (0.6), d (0.2), f (0.4, tied with c).
     * Pairs (pos, neg) ranked right: a>b a>d a>f, c>d, c=f (half), e>b e>d e>f: 7.5 of 9.
     * Accuracy at 0.5: a, e right; b wrong; c wrong (0.4 < 0.5); d, f right: 4 of 6. The
     * scores come in another order than the input, as a PSI sorts them by key. */
    static const char in[] = "id,day,x,y\na,1,5,1\nb,1,3,0\nc,2,1,1\nd,2,0,0\ne,3,2,1\nf,3,9,0\n";
    static const char sc[] = "id,day,score\nf,3,0.4\ne,3,0.7\nd,2,0.2\nc,2,0.4\nb,1,0.6\n"
                             "a,1,0.9\n";
    ag_errbuf err;
    json_t *r = eval(in, sc, &err);
    if (!r)
        FAIL("%s", err.msg);
    CHECK_EQ(json_integer_value(json_object_get(r, "rows")), 6);
    CHECK_EQ(json_integer_value(json_object_get(r, "positives")), 3);
    CHECK(fabs(json_real_value(json_object_get(r, "accuracy")) - 4.0 / 6.0) < 1e-12);
    CHECK(fabs(json_real_value(json_object_get(r, "auc")) - 7.5 / 9.0) < 1e-12);
    json_decref(r);
    /* one class only: no AUC */
    r = eval("id,day,y\na,1,1\n", "id,day,score\na,1,0.8\n", &err);
    CHECK(r != NULL);
    CHECK(json_is_null(json_object_get(r, "auc")));
    CHECK(json_real_value(json_object_get(r, "accuracy")) == 1.0);
    json_decref(r);
}

TEST(console_eval_names_what_does_not_join)
{
    ag_errbuf err;
    CHECK(eval("id,day,y\na,1,2\n", "id,day,score\na,1,0.8\n", &err) == NULL);
    CHECK_CONTAINS(err.msg, "in.csv:2: label 'y' is not 0 or 1");
    CHECK(eval("id,day,y\na,1,1\n", "id,day,score\nb,1,0.8\n", &err) == NULL);
    CHECK_CONTAINS(err.msg, "scores.csv:2: a score for a key the input does not have");
    CHECK(eval("id,day,y\na,1,1\n", "id,day,score\na,1,high\n", &err) == NULL);
    CHECK_CONTAINS(err.msg, "scores.csv:2");
    CHECK(eval("id,y\na,1\n", "id,day,score\na,1,0.5\n", &err) == NULL);
    CHECK_CONTAINS(err.msg, "no column 'day'");
    CHECK(eval("id,day,y\na,1,1\n", "id,day,score\n", &err) == NULL);
    CHECK_CONTAINS(err.msg, "scores.csv: no scores");
}
