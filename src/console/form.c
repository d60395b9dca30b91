/*
 * The console's two parsers of untrusted bytes, over jansson: the forms of
 * the JSON API (an analyst's browser, or anything that has the token) and
 * the messages of the peer consoles. Both copy what they keep into fixed
 * fields, refuse what does not fit with a message naming the field, and
 * never trust a length or a type. fuzz/console_form.c and
 * fuzz/console_msg.c feed them arbitrary bytes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static const char *const joins[] = {"inner", "left", "right", "full", "difference", NULL};

bool ag__console_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= AG__CONSOLE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

static int add_error(json_t *errors, const char *field, const char *fmt, ...) AG_PRINTF(3, 4);
static int add_error(json_t *errors, const char *field, const char *fmt, ...)
{
    if (json_object_get(errors, field)) /* the first problem of a field is the one shown */
        return 0;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return json_object_set_new(errors, field, json_string(msg)) == 0 ? 0 : AG_E_NOMEM;
}

/* Copies the string field name of o into out (cap bytes). Missing and
 * required, not a string, empty when required, too long, or holding a
 * control character: an error on the field. */
static int get_str(json_t *o, const char *name, bool required, char *out, size_t cap,
                   json_t *errors)
{
    out[0] = '\0';
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return required ? add_error(errors, name, "required") : 0;
    if (!json_is_string(v))
        return add_error(errors, name, "must be a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n >= cap)
        return add_error(errors, name, "too long (at most %zu bytes)", cap - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return add_error(errors, name, "holds a control character");
    if (required && n == 0)
        return add_error(errors, name, "required");
    memcpy(out, s, n + 1);
    return 0;
}

/* A comma-separated list of non-empty column names. */
static int check_keys(const char *keys, json_t *errors)
{
    if (!keys[0])
        return 0;
    const char *p = keys;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0)
            return add_error(errors, "keys", "an empty column name in '%s'", keys);
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static bool in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

/* An integer field in [lo, hi]; def when absent. */
static int get_int(json_t *o, const char *name, int64_t lo, int64_t hi, int64_t def,
                   int64_t *out, json_t *errors)
{
    json_t *v = json_object_get(o, name);
    *out = def;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return add_error(errors, name, "a whole number from %lld to %lld", (long long)lo,
                         (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

/* "party:column", the party one of the cluster's, the column not empty. */
static bool label_valid(const char *label, const ag_cluster *cl)
{
    const char *colon = strchr(label, ':');
    if (!colon || !colon[1] || colon == label || (size_t)(colon - label) >= sizeof(cl->names[0]))
        return false;
    char party[sizeof(cl->names[0])];
    snprintf(party, sizeof(party), "%.*s", (int)(colon - label), label);
    return ag_cluster_rank(cl, party) >= 0;
}

const char *ag__console_label_col(const char *label, const char *me)
{
    size_t n = strlen(me);
    return strncmp(label, me, n) == 0 && label[n] == ':' ? label + n + 1 : NULL;
}

/* The label of an lr-train or lr-predict proposal. */
static int parse_label(json_t *o, const ag_cluster *cl, ag__lr_params *lr, json_t *errors)
{
    int rc = get_str(o, "label", true, lr->label, sizeof(lr->label), errors);
    if (rc == 0 && lr->label[0] && !label_valid(lr->label, cl))
        rc = add_error(errors, "label", "'%s': PARTY:COLUMN, the party holding the 0/1 label "
                       "(a party of the cluster) and its column", lr->label);
    return rc;
}

/* The lr-train parameters of a proposal. */
static int parse_lr(json_t *o, const ag_cluster *cl, ag__lr_params *lr, json_t *errors)
{
    int rc = parse_label(o, cl, lr, errors);
    if (rc == 0)
        rc = get_int(o, "epochs", 1, 1000, 5, &lr->epochs, errors);
    if (rc == 0)
        rc = get_int(o, "batch_size", 1, 1000000, 1024, &lr->batch_size, errors);
    if (rc < 0)
        return rc;
    json_t *v = json_object_get(o, "learning_rate");
    lr->learning_rate = 0.1;
    if (v && !json_is_null(v)) {
        double x = json_number_value(v);
        if (!json_is_number(v) || !(x > 0 && x <= 10))
            return add_error(errors, "learning_rate", "a number above 0, at most 10");
        lr->learning_rate = x;
    }
    return 0;
}

static const char *const stat_names[] = {"count", "sum", "mean", "var", "std", "min",
                                         "max", "quantiles", "corr", "all", NULL};

/* Each item of a comma-separated list passes ok(item); the first that does
 * not is copied into bad. */
static bool list_ok(const char *list, bool (*ok)(const char *, const ag_cluster *),
                    const ag_cluster *cl, char *bad, size_t cap)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", list);
    char *p = buf;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!ok(p, cl)) {
            snprintf(bad, cap, "%s", p);
            return false;
        }
        if (!comma)
            return true;
        p = comma + 1;
    }
}

static bool stat_ok(const char *s, const ag_cluster *cl)
{
    (void)cl;
    return in_list(s, stat_names);
}

static bool party_ok(const char *s, const ag_cluster *cl)
{
    return ag_cluster_rank(cl, s) >= 0;
}

/* The stats parameters of a proposal. */
static int parse_stats(json_t *o, const ag_cluster *cl, ag__stats_params *st, json_t *errors)
{
    char bad[128];
    int rc = get_str(o, "stats", false, st->stats, sizeof(st->stats), errors);
    if (rc == 0 && !st->stats[0])
        snprintf(st->stats, sizeof(st->stats), "count,mean,std,min,max");
    if (rc == 0 && !list_ok(st->stats, stat_ok, cl, bad, sizeof(bad)))
        rc = add_error(errors, "stats", "'%s': count, sum, mean, var, std, min, max, "
                       "quantiles, corr or all", bad);
    if (rc == 0)
        rc = get_str(o, "reveal_to", false, st->reveal_to, sizeof(st->reveal_to), errors);
    if (rc == 0 && !st->reveal_to[0])
        snprintf(st->reveal_to, sizeof(st->reveal_to), "all");
    if (rc == 0 && strcmp(st->reveal_to, "all") != 0 &&
        !list_ok(st->reveal_to, party_ok, cl, bad, sizeof(bad)))
        rc = add_error(errors, "reveal_to", "'%s' is no party of the cluster (parties, or all)",
                       bad);
    return rc;
}

static int check_receiver(const char *r, const ag_cluster *cl, json_t *errors)
{
    if (!r[0] || strcmp(r, "both") == 0 || ag_cluster_rank(cl, r) >= 0)
        return 0;
    return add_error(errors, "receiver", "'%s' is no party of the cluster (a party or both)", r);
}

int ag__console_form_parse(const void *body, size_t len, bool decide, const ag_cluster *cl,
                           ag__console_form *f, json_t *errors)
{
    memset(f, 0, sizeof(*f));
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    int rc = 0;
    if (!o || !json_is_object(o)) {
        rc = add_error(errors, "form", o ? "the body is not a JSON object"
                                         : "the body is not JSON: %s", je.text);
        goto done;
    }
    if (decide) {
        json_t *ap = json_object_get(o, "approve");
        if (!json_is_boolean(ap))
            rc = add_error(errors, "approve", "must be true or false");
        f->approve = json_is_true(ap);
        if (rc == 0)
            rc = get_str(o, "id", true, f->id, sizeof(f->id), errors);
        if (rc == 0 && f->id[0] && !ag__console_id_valid(f->id))
            rc = add_error(errors, "id", "not a job id");
        if (rc < 0 || !f->approve)
            goto done; /* declining needs nothing more */
    } else {
        rc = get_str(o, "kind", true, f->kind, sizeof(f->kind), errors);
        bool psi = strcmp(f->kind, "psi") == 0, lr = strcmp(f->kind, "lr-train") == 0;
        bool st = strcmp(f->kind, "stats") == 0, pr = strcmp(f->kind, "lr-predict") == 0;
        if (rc == 0 && f->kind[0] && !psi && !lr && !st && !pr)
            rc = add_error(errors, "kind", "'%s' is not a job this console runs (psi, "
                           "lr-train, lr-predict, stats)", f->kind);
        else if (rc == 0 && f->kind[0] && cl->n != 2)
            rc = add_error(errors, "kind", "a %s is between two parties; the cluster has %d",
                           psi ? "PSI" : st ? "statistics job" : "logistic regression", cl->n);
        if (rc == 0 && psi)
            rc = get_str(o, "receiver", false, f->receiver, sizeof(f->receiver), errors);
        if (rc == 0 && psi)
            rc = check_receiver(f->receiver, cl, errors);
        if (rc == 0 && psi)
            rc = get_str(o, "join", false, f->join, sizeof(f->join), errors);
        if (rc == 0 && psi && f->join[0] && !in_list(f->join, joins))
            rc = add_error(errors, "join", "'%s': inner, left, right, full or difference",
                           f->join);
        if (rc == 0 && lr)
            rc = parse_lr(o, cl, &f->lr, errors);
        if (rc == 0 && st)
            rc = parse_stats(o, cl, &f->st, errors);
        if (rc == 0 && pr)
            rc = parse_label(o, cl, &f->lr, errors);
    }
    if (rc == 0)
        rc = get_str(o, "input", true, f->input, sizeof(f->input), errors);
    if (rc == 0)
        rc = get_str(o, "keys", !decide, f->keys, sizeof(f->keys), errors);
    if (rc == 0)
        rc = check_keys(f->keys, errors);
    if (rc == 0)
        rc = get_str(o, "output", strcmp(f->kind, "lr-train") == 0, f->output,
                     sizeof(f->output), errors);
    if (rc == 0) /* lr-predict: required, but a decision does not know the kind */
        rc = get_str(o, "model", strcmp(f->kind, "lr-predict") == 0, f->model,
                     sizeof(f->model), errors);
done:
    json_decref(o);
    if (rc < 0)
        return rc;
    return json_object_size(errors) ? AG_E_INVAL : 0;
}

/* The input's header must have every key column, and the label's. */
static int check_input(const ag__console_form *f, const char *label_col, json_t *errors)
{
    ag_csv_reader *r = ag_csv_reader_new(NULL);
    if (!r)
        return AG_E_NOMEM;
    char name[AG__CONSOLE_PATH_MAX];
    snprintf(name, sizeof(name), "%s", f->input);
    const char *base = basename(name);
    int rc = 0;
    if (ag_csv_reader_open(r, f->input) < 0) {
        rc = add_error(errors, "input", "%s", ag_csv_reader_errmsg(r));
        goto done;
    }
    char keys[AG__CONSOLE_KEYS_MAX];
    snprintf(keys, sizeof(keys), "%s", f->keys);
    for (char *p = keys; p && *p && rc == 0;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        bool found = false;
        for (size_t i = 0; i < ag_csv_ncols(r) && !found; i++)
            found = strcmp(ag_csv_colname(r, i), p) == 0;
        if (!found)
            rc = add_error(errors, "keys", "column '%s' is not in %s", p, base);
        p = comma ? comma + 1 : NULL;
    }
    bool found = !label_col;
    for (size_t i = 0; i < ag_csv_ncols(r) && !found; i++)
        found = strcmp(ag_csv_colname(r, i), label_col) == 0;
    if (rc == 0 && !found)
        rc = add_error(errors, "label", "column '%s' is not in %s", label_col, base);
done:
    ag_csv_reader_free(r);
    return rc;
}

int ag__console_form_check_files(const ag__console_form *f, const char *label_col,
                                 json_t *errors)
{
    int rc = 0;
    struct stat st;
    if (f->input[0] && stat(f->input, &st) != 0)
        rc = add_error(errors, "input", "%s: %s", f->input, strerror(errno));
    else if (f->input[0] && !S_ISREG(st.st_mode))
        rc = add_error(errors, "input", "%s: not a regular file", f->input);
    else if (f->input[0] && f->keys[0])
        rc = check_input(f, label_col, errors);
    if (rc == 0 && f->model[0] && (stat(f->model, &st) != 0 || !S_ISREG(st.st_mode)))
        rc = add_error(errors, "model", "%s: no such file", f->model);
    if (rc == 0 && f->output[0]) {
        char dir[AG__CONSOLE_PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", f->output);
        const char *d = dirname(dir);
        if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
            rc = add_error(errors, "output", "%s: no such directory", d);
        else if (access(d, W_OK) != 0)
            rc = add_error(errors, "output", "%s: not writable", d);
        else if (strcmp(f->output, f->input) == 0)
            rc = add_error(errors, "output", "the output would overwrite the input");
    }
    if (rc < 0)
        return rc;
    return json_object_size(errors) ? AG_E_INVAL : 0;
}

/* ---- peer messages ---- */

static const char *const msg_types[] = {"ping", "propose", "decide", "start", NULL};

/* A string member into out: AG_E_INVAL with err naming it when missing,
 * not a string or too long. */
static int msg_str(json_t *o, const char *name, char *out, size_t cap, ag_errbuf *err)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_string(v))
        return ag_errbuf_set(err, AG_E_INVAL, "'%s' is missing or not a string", name);
    if (json_string_length(v) >= cap || strlen(json_string_value(v)) != json_string_length(v))
        return ag_errbuf_set(err, AG_E_INVAL, "'%s' is too long or holds a NUL", name);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int msg_body(json_t *o, const ag_cluster *cl, ag__console_msg *m, ag_errbuf *err)
{
    if (m->type == AG__MSG_PING)
        return 0;
    int rc = msg_str(o, "id", m->id, sizeof(m->id), err);
    if (rc == 0 && !ag__console_id_valid(m->id))
        return ag_errbuf_set(err, AG_E_INVAL, "'id' is not a job id");
    if (rc < 0 || m->type == AG__MSG_START)
        return rc;
    if (m->type == AG__MSG_DECIDE) {
        json_t *ap = json_object_get(o, "approve");
        if (!json_is_boolean(ap))
            return ag_errbuf_set(err, AG_E_INVAL, "'approve' is missing or not a boolean");
        m->approve = json_is_true(ap);
        return 0;
    }
    rc = msg_str(o, "kind", m->kind, sizeof(m->kind), err);
    bool psi = rc == 0 && strcmp(m->kind, "psi") == 0;
    bool lr = rc == 0 && strcmp(m->kind, "lr-train") == 0;
    bool pr = rc == 0 && strcmp(m->kind, "lr-predict") == 0;
    if (rc == 0 && !psi && !lr && !pr && strcmp(m->kind, "stats") != 0)
        return ag_errbuf_set(err, AG_E_INVAL, "kind '%s' is unknown", m->kind);
    if (rc == 0)
        rc = msg_str(o, "keys", m->keys, sizeof(m->keys), err);
    if (rc == 0 && psi)
        rc = msg_str(o, "receiver", m->receiver, sizeof(m->receiver), err);
    if (rc == 0 && psi)
        rc = msg_str(o, "join", m->join, sizeof(m->join), err);
    if (rc < 0)
        return rc;
    json_t *scratch = json_object();
    if (!scratch)
        return ag_errbuf_set(err, AG_E_NOMEM, "out of memory");
    bool bad = !m->keys[0] || check_keys(m->keys, scratch) < 0 || json_object_size(scratch) ||
               check_receiver(m->receiver, cl, scratch) < 0 || json_object_size(scratch) ||
               (m->join[0] && !in_list(m->join, joins)) ||
               (lr && (parse_lr(o, cl, &m->lr, scratch) < 0 || json_object_size(scratch))) ||
               (pr && (parse_label(o, cl, &m->lr, scratch) < 0 || json_object_size(scratch))) ||
               (!psi && !lr && !pr &&
                (msg_str(o, "stats", m->st.stats, sizeof(m->st.stats), err) < 0 ||
                 msg_str(o, "reveal_to", m->st.reveal_to, sizeof(m->st.reveal_to), err) < 0 ||
                 parse_stats(o, cl, &m->st, scratch) < 0 || json_object_size(scratch)));
    json_decref(scratch);
    return bad ? ag_errbuf_set(err, AG_E_INVAL, "bad keys, receiver, join or training "
                               "parameters") : 0;
}

int ag__console_msg_parse(const void *data, size_t len, const ag_cluster *cl,
                          ag__console_msg *m, ag_errbuf *err)
{
    memset(m, 0, sizeof(*m));
    if (len > AG__CONSOLE_MAX_BODY)
        return ag_errbuf_set(err, AG_E_INVAL, "message of %zu bytes (at most %u)", len,
                             AG__CONSOLE_MAX_BODY);
    json_error_t je;
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return ag_errbuf_set(err, AG_E_INVAL, "not JSON: %s", je.text);
    char type[16];
    int rc = 0;
    if (!json_is_object(o)) {
        rc = ag_errbuf_set(err, AG_E_INVAL, "not a JSON object");
        goto done;
    }
    rc = msg_str(o, "type", type, sizeof(type), err);
    if (rc == 0)
        rc = msg_str(o, "from", m->from, sizeof(m->from), err);
    if (rc < 0)
        goto done;
    if (ag_cluster_rank(cl, m->from) < 0) {
        rc = ag_errbuf_set(err, AG_E_INVAL, "'from': no party of the cluster");
        goto done;
    }
    rc = AG_E_INVAL;
    for (int i = 0; msg_types[i]; i++)
        if (strcmp(type, msg_types[i]) == 0) {
            m->type = (ag__console_msg_type)i;
            rc = 0;
        }
    if (rc < 0) {
        ag_errbuf_set(err, rc, "type '%s' is unknown", type);
        goto done;
    }
    rc = msg_body(o, cl, m, err);
done:
    json_decref(o);
    return rc;
}

char *ag__console_msg_encode(const ag__console_msg *m)
{
    json_t *o = json_pack("{s:s, s:s}", "type", msg_types[m->type], "from", m->from);
    if (!o)
        return NULL;
    int rc = 0;
    if (m->type != AG__MSG_PING)
        rc |= json_object_set_new(o, "id", json_string(m->id));
    if (m->type == AG__MSG_DECIDE)
        rc |= json_object_set_new(o, "approve", json_boolean(m->approve));
    if (m->type == AG__MSG_PROPOSE) {
        rc |= json_object_set_new(o, "kind", json_string(m->kind));
        rc |= json_object_set_new(o, "keys", json_string(m->keys));
        if (strcmp(m->kind, "psi") == 0) {
            rc |= json_object_set_new(o, "receiver", json_string(m->receiver));
            rc |= json_object_set_new(o, "join", json_string(m->join));
        } else if (strcmp(m->kind, "lr-predict") == 0) {
            rc |= json_object_set_new(o, "label", json_string(m->lr.label));
        } else if (strcmp(m->kind, "stats") == 0) {
            rc |= json_object_set_new(o, "stats", json_string(m->st.stats));
            rc |= json_object_set_new(o, "reveal_to", json_string(m->st.reveal_to));
        } else {
            rc |= json_object_set_new(o, "label", json_string(m->lr.label));
            rc |= json_object_set_new(o, "epochs", json_integer(m->lr.epochs));
            rc |= json_object_set_new(o, "batch_size", json_integer(m->lr.batch_size));
            rc |= json_object_set_new(o, "learning_rate", json_real(m->lr.learning_rate));
        }
    }
    char *text = rc == 0 ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return NULL;
    char *out = ag_strdup(text); /* jansson's allocator is not argot's */
    free(text);
    return out;
}

int ag__console_form_check_role(const ag__console_form *f, const char *kind, const char *label,
                                const char *me, json_t *errors)
{
    int rc = 0;
    if (strcmp(kind, "lr-train") == 0 && !f->output[0])
        rc = add_error(errors, "output", "required (this party's model file)");
    if (strcmp(kind, "lr-predict") == 0) {
        bool mine = ag__console_label_col(label, me) != NULL;
        if (!f->model[0])
            rc = add_error(errors, "model", "required (this party's model file)");
        if (rc == 0 && mine && !f->output[0])
            rc = add_error(errors, "output", "required: this party holds the label and "
                           "receives the scores");
        if (rc == 0 && !mine && f->output[0])
            rc = add_error(errors, "output", "only the label party (%.*s) receives the scores",
                           (int)strcspn(label, ":"), label);
    }
    if (rc < 0)
        return rc;
    return json_object_size(errors) ? AG_E_INVAL : 0;
}
