/*
 * Evaluating a logistic regression's prediction at the party that holds
 * the label (argot console, after `argot lr predict`): the scores were
 * revealed to this party and the labels are its own, so joining them
 * discloses nothing new. The input's rows are read into an array of (key,
 * label) sorted by key; each score row finds its label by binary search.
 * Accuracy reads a score >= 0.5 as 1; the AUC is the Mann-Whitney
 * statistic over the scores' ranks, tied scores sharing their mean rank.
 * Memory: the input's keys and the scores, once each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argot/apps.h"
#include "internal.h"

struct labelled {
    char *key;   /* the key columns' values joined by 0x1f */
    int label;   /* 0 or 1 */
};

struct scored {
    double score;
    int label;
};

static int cmp_key(const void *a, const void *b)
{
    return strcmp(((const struct labelled *)a)->key, ((const struct labelled *)b)->key);
}

static int cmp_score(const void *a, const void *b)
{
    double x = ((const struct scored *)a)->score, y = ((const struct scored *)b)->score;
    return (x > y) - (x < y);
}

/* The key of the current record (columns kc[0..nk)) into buf. */
static int record_key(ag_csv_reader *r, const int *kc, size_t nk, ag_buf *buf)
{
    ag_buf_reset(buf);
    for (size_t k = 0; k < nk; k++) {
        ag_slice f = ag_csv_field(r, (size_t)kc[k]);
        if ((k && ag_buf_append_byte(buf, 0x1f) < 0) || ag_buf_append(buf, f.ptr, f.len) < 0)
            return AG_E_TOO_LARGE;
    }
    return 0;
}

/* Opens path and finds the key columns (comma-separated in keys) and, if
 * extra is not NULL, that column too (its index in *xc). */
static int open_cols(ag_csv_reader *r, const char *path, const char *keys, int *kc, size_t *nk,
                     const char *extra, int *xc, ag_errbuf *err)
{
    if (ag_csv_reader_open(r, path) < 0)
        return ag_errbuf_set(err, AG_E_IO, "%s", ag_csv_reader_errmsg(r));
    char buf[AG__CONSOLE_KEYS_MAX];
    snprintf(buf, sizeof(buf), "%s", keys);
    *nk = 0;
    for (char *p = buf; p && *p;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (*nk == AG_PSI_MAX_KEYS)
            return ag_errbuf_set(err, AG_E_INVAL, "too many key columns");
        int c = ag_csv_col(r, p);
        if (c < 0)
            return ag_errbuf_set(err, c, "%s", ag_csv_reader_errmsg(r));
        kc[(*nk)++] = c;
        p = comma ? comma + 1 : NULL;
    }
    if (extra && (*xc = ag_csv_col(r, extra)) < 0)
        return ag_errbuf_set(err, *xc, "%s", ag_csv_reader_errmsg(r));
    return 0;
}

/* The input's (key, label) pairs, sorted by key. */
static int read_labels(const char *input, const char *keys, const char *label_col,
                       struct labelled **out, size_t *n, ag_errbuf *err)
{
    *out = NULL;
    *n = 0;
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    ag_buf key;
    ag_buf_init(&key, 1u << 20);
    int kc[AG_PSI_MAX_KEYS], lc = 0, rc = r ? 0 : AG_E_NOMEM;
    size_t nk = 0, cap = 0;
    if (rc == 0)
        rc = open_cols(r, input, keys, kc, &nk, label_col, &lc, err);
    while (rc == 0 && (rc = ag_csv_next(r)) == 1) {
        ag_slice l = ag_csv_field(r, (size_t)lc);
        if (l.len != 1 || (l.ptr[0] != '0' && l.ptr[0] != '1')) {
            rc = ag_errbuf_set(err, AG_E_CSV_VALUE, "%s:%llu: label '%s' is not 0 or 1", input,
                               (unsigned long long)ag_csv_line(r), label_col);
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            struct labelled *m = ag_realloc(*out, cap * sizeof(**out));
            if (!m) {
                rc = AG_E_NOMEM;
                break;
            }
            *out = m;
        }
        rc = record_key(r, kc, nk, &key);
        (*out)[*n].key = rc == 0 ? ag_strdup((const char *)key.data) : NULL;
        (*out)[*n].label = l.ptr[0] == '1';
        if (rc == 0 && !(*out)[*n].key)
            rc = AG_E_NOMEM;
        if (rc == 0)
            (*n)++;
    }
    if (rc < 0 && !err->msg[0])
        ag_errbuf_set(err, rc, "%s", r ? ag_csv_reader_errmsg(r) : "out of memory");
    ag_buf_cleanup(&key);
    ag_csv_reader_free(r);
    if (rc < 0)
        return rc;
    qsort(*out, *n, sizeof(**out), cmp_key);
    return 0;
}

/* The scores with their labels. */
static int read_scores(const char *scores, const char *keys, const struct labelled *lab,
                       size_t nlab, struct scored **out, size_t *n, ag_errbuf *err)
{
    *out = NULL;
    *n = 0;
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    ag_buf key;
    ag_buf_init(&key, 1u << 20);
    int kc[AG_PSI_MAX_KEYS], sc = 0, rc = r ? 0 : AG_E_NOMEM;
    size_t nk = 0, cap = 0;
    if (rc == 0)
        rc = open_cols(r, scores, keys, kc, &nk, "score", &sc, err);
    while (rc == 0 && (rc = ag_csv_next(r)) == 1) {
        double s;
        rc = ag_csv_get_double(r, (size_t)sc, &s);
        if (rc == 0)
            rc = record_key(r, kc, nk, &key);
        if (rc < 0)
            break;
        struct labelled want = {(char *)key.data, 0};
        const struct labelled *hit = bsearch(&want, lab, nlab, sizeof(*lab), cmp_key);
        if (!hit) {
            rc = ag_errbuf_set(err, AG_E_INVAL, "%s:%llu: a score for a key the input does "
                               "not have", scores, (unsigned long long)ag_csv_line(r));
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            struct scored *m = ag_realloc(*out, cap * sizeof(**out));
            if (!m) {
                rc = AG_E_NOMEM;
                break;
            }
            *out = m;
        }
        (*out)[(*n)++] = (struct scored){s, hit->label};
    }
    if (rc < 0 && !err->msg[0])
        ag_errbuf_set(err, rc, "%s", r ? ag_csv_reader_errmsg(r) : "out of memory");
    ag_buf_cleanup(&key);
    ag_csv_reader_free(r);
    return rc < 0 ? rc : 0;
}

/* The ROC curve's area: (sum of the positives' ranks - P(P+1)/2) / (P N). */
static double auc(struct scored *s, size_t n, size_t pos)
{
    size_t neg = n - pos;
    if (!pos || !neg)
        return -1;
    qsort(s, n, sizeof(*s), cmp_score);
    double rank_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j].score == s[i].score)
            j++;
        double mean_rank = (double)(i + 1 + j) / 2.0; /* ranks i+1..j */
        for (size_t k = i; k < j; k++)
            if (s[k].label)
                rank_sum += mean_rank;
        i = j;
    }
    return (rank_sum - (double)pos * (double)(pos + 1) / 2.0) / ((double)pos * (double)neg);
}

int ag__console_evaluate(const char *input, const char *keys, const char *label_col,
                         const char *scores, json_t **out, ag_errbuf *err)
{
    *out = NULL;
    struct labelled *lab = NULL;
    struct scored *sc = NULL;
    size_t nlab = 0, n = 0, pos = 0, right = 0;
    int rc = read_labels(input, keys, label_col, &lab, &nlab, err);
    if (rc == 0)
        rc = read_scores(scores, keys, lab, nlab, &sc, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        pos += (size_t)sc[i].label;
        right += (size_t)((sc[i].score >= 0.5) == (sc[i].label == 1));
    }
    if (rc == 0 && n == 0)
        rc = ag_errbuf_set(err, AG_E_INVAL, "%s: no scores", scores);
    if (rc == 0) {
        double a = auc(sc, n, pos);
        *out = json_pack("{s:I, s:I, s:f}", "rows", (json_int_t)n, "positives",
                         (json_int_t)pos, "accuracy", (double)right / (double)n);
        if (*out)
            json_object_set_new(*out, "auc", a < 0 ? json_null() : json_real(a));
        else
            rc = ag_errbuf_set(err, AG_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < nlab; i++)
        ag_free(lab[i].key);
    ag_free(lab);
    ag_free(sc);
    return rc;
}
