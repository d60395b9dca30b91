/*
 * The federated runtime (fed.h): objects, PYU calls, transfers, reveal and
 * wait, over one party's link. Every party runs the same calls; this file
 * decides, per call, what this party does: compute, push, receive, or only
 * record the object.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "argot/rpc.h"
#include "internal.h"

struct ag_pyu_ctx {
    ag_fed *f;
    char err[AG_ERRMSG_MAX];
};

void ag_fed_opts_init(ag_fed_opts *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->spu.protocol, sizeof(o->spu.protocol), "semi2k");
    o->spu.field = AG_FM64;
    o->spu.dealer = AG_BEAVER_TFP;
}

ag_fed *ag_fed_new(const ag_fed_opts *o)
{
    ag_fed *f = ag_calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->names = ag_calloc(o->n ? o->n : 1, sizeof(*f->names));
    if (!f->names) {
        ag_free(f);
        return NULL;
    }
    f->rank = o->rank;
    f->n = o->n;
    for (unsigned i = 0; i < o->n; i++)
        snprintf(f->names[i], sizeof(f->names[i]), "%s",
                 o->names ? o->names[i] : ag_link_party(o->link, i));
    f->link = o->link;
    f->spu = o->spu;
    f->argc = o->argc;
    f->argv = o->argv;
    f->udata = o->udata;
    snprintf(f->session, sizeof(f->session), "%s", o->session ? o->session : "");
    f->tls_cert = o->tls_cert;
    f->tls_key = o->tls_key;
    f->tls_ca = o->tls_ca;
    return f;
}

static void obj_release(ag_obj *o)
{
    ag_value_cleanup(&o->val);
    ag_tensor_cleanup(&o->t);
    ag_free(o->errmsg);
    ag_free(o);
}

void ag_fed_free(ag_fed *f)
{
    if (!f)
        return;
    while (f->objs) {
        ag_obj *o = f->objs;
        f->objs = o->next;
        obj_release(o);
    }
    ag_mpc_free(f->mpc);
    ag_rpc_channel_free(f->beaver);
    ag_free(f->names);
    ag_free(f);
}

unsigned ag_fed_rank(const ag_fed *f) { return f->rank; }
unsigned ag_fed_size(const ag_fed *f) { return f->n; }
const char *ag_fed_party(const ag_fed *f) { return f->names[f->rank]; }
int ag_fed_argc(const ag_fed *f) { return f->argc; }
char **ag_fed_argv(const ag_fed *f) { return f->argv; }
void *ag_fed_udata(const ag_fed *f) { return f->udata; }
ag_link *ag_fed_link(ag_fed *f) { return f->link; }
const char *ag_fed_errmsg(const ag_fed *f) { return f->err; }

const char *ag_fed_party_name(const ag_fed *f, unsigned r)
{
    return r < f->n ? f->names[r] : "?";
}

int ag_fed_party_rank(const ag_fed *f, const char *name)
{
    for (unsigned i = 0; name && i < f->n; i++)
        if (strcmp(f->names[i], name) == 0)
            return (int)i;
    return -1;
}

void ag_fed_stats(const ag_fed *f, ag_link_stats *out)
{
    ag_link_stats_get(f->link, out);
}

ag_mpc *ag_fed_mpc(ag_fed *f)
{
    return ag__fed_mpc(f) == 0 ? f->mpc : NULL;
}

int ag__fed_break(ag_fed *f, int code, const char *fmt, ...)
{
    if (f->broken)
        return f->broken;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->err, sizeof(f->err), fmt, ap);
    va_end(ap);
    f->broken = code < 0 ? code : AG_E_STATE;
    ag_link_abort(f->link, f->err);
    return f->broken;
}

int ag_fed_fail(ag_fed *f, int code, const char *fmt, ...)
{
    char msg[AG_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ag__fed_break(f, code, "party %s: %s", f->names[f->rank], msg);
}

int ag_fed_fail_local(ag_fed *f, int code, const char *fmt, ...)
{
    if (f->broken)
        return f->broken;
    char msg[AG_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(f->err, sizeof(f->err), "party %s: %.480s", f->names[f->rank], msg);
    f->broken = code < 0 ? code : AG_E_STATE;
    return f->broken;
}

int ag__fed_mpc(ag_fed *f)
{
    if (f->mpc)
        return 0;
    if (f->broken)
        return f->broken;
    ag_mpc_config cfg = {.field = f->spu.field, .fxp_bits = f->spu.fxp_bits,
                         .label = f->session};
    if (f->spu.dealer == AG_BEAVER_TTP) {
        ag_rpc_channel_opts co;
        ag_rpc_channel_opts_init(&co);
        co.backoff_initial_ms = 100; /* a dealer restarting is worth a quick retry */
        if (f->tls_cert) {
            co.tls_cert_file = f->tls_cert;
            co.tls_key_file = f->tls_key;
            co.tls_ca_file = f->tls_ca;
            if (f->spu.beaver_server_name[0])
                co.tls_server_name = f->spu.beaver_server_name;
        }
        f->beaver = ag_rpc_channel_new(f->spu.beaver_server, &co);
        if (!f->beaver)
            return ag__fed_break(f, AG_E_NOMEM, "spu: beaver server %s: cannot make a channel",
                                 f->spu.beaver_server);
        cfg.beaver_server = f->beaver;
    }
    f->mpc = ag_mpc_new(f->link, &cfg);
    if (!f->mpc)
        return ag__fed_break(f, AG_E_NOMEM, "party %s: spu: %s", f->names[f->rank],
                             ag_strerror(AG_E_NOMEM));
    int rc = ag_mpc_setup(f->mpc);
    if (rc < 0)
        return ag__fed_break(f, rc, "spu %s", ag_mpc_errmsg(f->mpc));
    return 0;
}

/* ---- objects ---------------------------------------------------------------- */

ag_obj *ag__fed_obj(ag_fed *f, obj_kind kind, int owner)
{
    ag_obj *o = ag_calloc(1, sizeof(*o));
    if (!o) {
        /* the object ids no longer advance alike at every party: the job
         * cannot go on, and the others hear it now rather than time out
         * waiting for this party's messages */
        ag__fed_break(f, AG_E_NOMEM, "party %s: out of memory for a new object",
                      f->names[f->rank]);
        return NULL;
    }
    o->id = ++f->next_id;
    o->kind = kind;
    o->owner = owner;
    o->next = f->objs;
    if (f->objs)
        f->objs->prev = o;
    f->objs = o;
    return o;
}

static ag_obj *obj_vfail(ag_obj *o, int code, const char *fmt, va_list ap) AG_PRINTF(3, 0);
static ag_obj *obj_vfail(ag_obj *o, int code, const char *fmt, va_list ap)
{
    char msg[AG_ERRMSG_MAX];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    ag_free(o->errmsg);
    size_t n = strlen(msg);
    o->errmsg = ag_malloc(n + 1);
    if (o->errmsg)
        memcpy(o->errmsg, msg, n + 1);
    o->status = code < 0 ? code : AG_E_STATE;
    ag_value_cleanup(&o->val);
    ag_tensor_cleanup(&o->t);
    return o;
}

ag_obj *ag__fed_obj_fail(ag_obj *o, int code, const char *fmt, ...)
{
    if (!o)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    obj_vfail(o, code, fmt, ap);
    va_end(ap);
    return o;
}

static const char *obj_errmsg(const ag_obj *o)
{
    return o->errmsg ? o->errmsg : ag_strerror(o->status);
}

ag_obj *ag__fed_obj_error_from(ag_fed *f, obj_kind kind, int owner, const ag_obj *src)
{
    ag_obj *o = ag__fed_obj(f, kind, owner);
    if (f->broken || !src)
        return ag__fed_obj_fail(o, f->broken ? f->broken : AG_E_INVAL, "%s",
                                f->broken ? f->err : "no object (NULL)");
    return ag__fed_obj_fail(o, src->status, "%s", obj_errmsg(src));
}

void ag_obj_free(ag_fed *f, ag_obj *o)
{
    if (!o)
        return;
    if (o->prev)
        o->prev->next = o->next;
    else
        f->objs = o->next;
    if (o->next)
        o->next->prev = o->prev;
    obj_release(o);
}

const char *ag_obj_owner(const ag_fed *f, const ag_obj *o)
{
    return o && o->kind == OBJ_PYU ? f->names[o->owner] : NULL;
}

bool ag_obj_is_spu(const ag_obj *o)
{
    return o && o->kind == OBJ_SPU;
}

const ag_value *ag_obj_value(const ag_obj *o)
{
    return o && o->status == 0 && o->val.type != AG_V_NONE ? &o->val : NULL;
}

int ag_obj_status(const ag_obj *o, const char **msg)
{
    if (msg)
        *msg = o && o->status ? obj_errmsg(o) : "";
    return o ? o->status : AG_E_INVAL;
}

int ag_obj_shape(const ag_obj *o, int64_t *shape)
{
    if (!o || o->status)
        return -1;
    if (o->kind == OBJ_SPU) {
        memcpy(shape, o->t.shape, (size_t)o->t.ndim * 8);
        return o->t.ndim;
    }
    if (o->val.type == AG_V_F64 || o->val.type == AG_V_I64) {
        memcpy(shape, o->val.shape, (size_t)o->val.ndim * 8);
        return o->val.ndim;
    }
    return -1;
}

static ag_obj *const_take(ag_fed *f, ag_value *v, int rc)
{
    ag_obj *o = ag__fed_obj(f, OBJ_PUBLIC, -1);
    if (!o) {
        ag_value_cleanup(v);
        return NULL;
    }
    if (rc < 0)
        return ag__fed_obj_fail(o, rc, "party %s: constant: %s", f->names[f->rank],
                                ag_strerror(rc));
    o->val = *v;
    return o;
}

ag_obj *ag_const_f64(ag_fed *f, double x)
{
    ag_value v;
    int rc = ag_value_scalar_f64(&v, x);
    return const_take(f, &v, rc);
}

ag_obj *ag_const_i64(ag_fed *f, int64_t x)
{
    ag_value v;
    int rc = ag_value_scalar_i64(&v, x);
    return const_take(f, &v, rc);
}

ag_obj *ag_const_str(ag_fed *f, const char *s)
{
    ag_value v;
    int rc = ag_value_bytes(&v, s, strlen(s));
    return const_take(f, &v, rc);
}

ag_obj *ag_const_value(ag_fed *f, const ag_value *src)
{
    ag_value v;
    int rc = ag_value_copy(&v, src);
    return const_take(f, &v, rc);
}

ag_obj *ag_pyu_put(ag_fed *f, const char *party, ag_value *v)
{
    int q = ag_fed_party_rank(f, party);
    if (q < 0)
        return ag__fed_obj_fail(ag__fed_obj(f, OBJ_PUBLIC, -1), AG_E_INVAL,
                                "put: no party '%s'", party ? party : "(null)");
    if (f->broken)
        return ag__fed_obj_error_from(f, OBJ_PYU, q, NULL);
    ag_obj *o = ag__fed_obj(f, OBJ_PYU, q);
    if (!o || (unsigned)q != f->rank)
        return o;
    if (!v || v->type == AG_V_NONE)
        return ag__fed_obj_fail(o, AG_E_INVAL, "party %s: put: no value", f->names[q]);
    o->val = *v;
    memset(v, 0, sizeof(*v));
    return o;
}

/* ---- messages ----------------------------------------------------------------- */

/* Sends o's value (or its error) to peer. */
static int push(ag_fed *f, const char *op, const ag_obj *o, unsigned peer, uint64_t tag)
{
    ag_buf b;
    ag_buf_init(&b, SIZE_MAX);
    b.secret = true;
    int rc = o->status ? ag__fed_encode_error(&b, o->status, obj_errmsg(o))
                       : ag__fed_encode_value(&b, &o->val, true);
    if (rc < 0) {
        ag_buf_cleanup(&b);
        return ag__fed_break(f, rc, "party %s: %s: %s", f->names[f->rank], op,
                             ag_strerror(rc));
    }
    size_t len;
    void *data = ag_buf_take(&b, &len);
    rc = ag_link_send_take(f->link, peer, tag, data, len);
    if (rc < 0)
        return ag__fed_break(f, rc, "%s: %s", op, ag_link_errmsg(f->link));
    return 0;
}

/* Receives what peer pushed under tag into o (a value, or its error). */
static int pull(ag_fed *f, const char *op, ag_obj *o, unsigned peer, uint64_t tag,
                bool with_data)
{
    void *data;
    size_t len;
    int rc = ag_link_recv(f->link, peer, tag, &data, &len);
    if (rc < 0)
        return ag__fed_break(f, rc, "%s: %s", op, ag_link_errmsg(f->link));
    char err[AG_ERRMSG_MAX] = "";
    int status;
    rc = ag__fed_decode(data, len, with_data, &o->val, &status, err, sizeof(err));
    ag_wipe(data, len);
    ag_free(data);
    if (rc < 0)
        return ag__fed_break(f, rc, "%s: party %s sent a malformed object: %s", op,
                             f->names[peer], err);
    if (status)
        ag__fed_obj_fail(o, status, "%s", err);
    return 0;
}

/* ---- PYU calls --------------------------------------------------------------------- */

int ag_pyu_error(ag_pyu_ctx *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return code < 0 ? code : AG_E_INVAL;
}

const char *ag_pyu_party(const ag_pyu_ctx *c)
{
    return c->f->names[c->f->rank];
}

ag_fed *ag_pyu_fed(const ag_pyu_ctx *c)
{
    return c->f;
}

/* Checks what every party can check alike; returns the error object or
 * NULL when the call may go on. */
static ag_obj *check_args(ag_fed *f, obj_kind kind, int owner, const char *op,
                          ag_obj *const *args, size_t nargs, bool spu_ok)
{
    if (f->broken)
        return ag__fed_obj_error_from(f, kind, owner, NULL);
    for (size_t i = 0; i < nargs; i++) {
        if (!args[i])
            return ag__fed_obj_fail(ag__fed_obj(f, kind, owner), AG_E_INVAL,
                                    "%s: argument %zu is NULL (out of memory?)", op, i + 1);
        if (args[i]->kind == OBJ_SPU && !spu_ok)
            return ag__fed_obj_fail(ag__fed_obj(f, kind, owner), AG_E_MPC_VIS,
                                    "%s: argument %zu is an SPU object: reveal it to the "
                                    "party first (ag_to_pyu)", op, i + 1);
    }
    return NULL;
}

ag_obj *ag_pyu_calln(ag_fed *f, const char *party, ag_pyu_fn *fn, const char *name,
                     ag_obj *const *args, size_t nargs)
{
    int q = ag_fed_party_rank(f, party);
    if (q < 0)
        return ag__fed_obj_fail(ag__fed_obj(f, OBJ_PUBLIC, -1), AG_E_INVAL,
                                "%s: no party '%s'", name, party ? party : "(null)");
    ag_obj *bad = check_args(f, OBJ_PYU, q, name, args, nargs, false);
    if (bad)
        return bad;
    ag_obj *res = ag__fed_obj(f, OBJ_PYU, q);
    if (!res)
        return NULL;
    /* pushes: every argument of another party's goes to q */
    ag_obj **tmp = NULL;
    if ((unsigned)q == f->rank) {
        tmp = ag_calloc(nargs ? nargs : 1, sizeof(*tmp));
        if (!tmp) {
            ag__fed_break(f, AG_E_NOMEM, "party %s: %s: %s", f->names[f->rank], name,
                          ag_strerror(AG_E_NOMEM));
            return ag__fed_obj_fail(res, f->broken, "%s", f->err);
        }
    }
    for (size_t i = 0; i < nargs && !f->broken; i++) {
        const ag_obj *a = args[i];
        if (a->kind != OBJ_PYU || a->owner == q)
            continue;
        uint64_t tag = FED_TAG(f->seq++, FED_K_PUSH);
        if ((unsigned)a->owner == f->rank) {
            push(f, name, a, (unsigned)q, tag);
        } else if ((unsigned)q == f->rank) {
            tmp[i] = ag_calloc(1, sizeof(ag_obj));
            if (!tmp[i])
                ag__fed_break(f, AG_E_NOMEM, "party %s: %s: %s", f->names[f->rank], name,
                              ag_strerror(AG_E_NOMEM));
            else
                pull(f, name, tmp[i], (unsigned)a->owner, tag, true);
        }
    }
    if ((unsigned)q == f->rank && !f->broken) {
        ag_value *vals = ag_calloc(nargs ? nargs : 1, sizeof(*vals));
        const ag_obj *failed = NULL;
        for (size_t i = 0; i < nargs && !failed; i++) {
            const ag_obj *a = tmp[i] ? tmp[i] : args[i];
            if (a->status)
                failed = a;
            else if (vals)
                vals[i] = a->val; /* borrowed: the function gets const values */
        }
        if (failed) {
            ag__fed_obj_fail(res, failed->status, "%s", obj_errmsg(failed));
        } else if (!vals) {
            ag__fed_obj_fail(res, AG_E_NOMEM, "party %s: %s: %s", f->names[f->rank], name,
                             ag_strerror(AG_E_NOMEM));
        } else {
            ag_pyu_ctx ctx = {.f = f};
            int rc = fn(&ctx, vals, nargs, &res->val);
            if (rc < 0)
                ag__fed_obj_fail(res, rc, "party %s: %s: %s", f->names[f->rank], name,
                                 ctx.err[0] ? ctx.err : ag_strerror(rc));
        }
        ag_free(vals);
    }
    for (size_t i = 0; tmp && i < nargs; i++)
        if (tmp[i])
            obj_release(tmp[i]);
    ag_free(tmp);
    if (f->broken && !res->status)
        ag__fed_obj_fail(res, f->broken, "%s", f->err);
    return res;
}

/* ---- ring tensors <-> values --------------------------------------------------------- */

/* A public ring tensor of v (f64: fixed point; i64: integers). */
static int value_to_ring(ag_fed *f, const ag_value *v, ag_tensor *out, bool *fxp,
                         char *err, size_t errcap)
{
    if (v->type == AG_V_F64) {
        *fxp = true;
        int rc = ag_mpc_encode(f->mpc, ag_value_f64(v), v->ndim, v->shape, out);
        if (rc < 0)
            snprintf(err, errcap, "%s", ag_mpc_errmsg(f->mpc));
        return rc;
    }
    if (v->type != AG_V_I64) {
        snprintf(err, errcap, "a %s cannot enter the SPU (tensors of f64 or i64 can)",
                 ag_vtype_name(v->type));
        return AG_E_MPC_VIS;
    }
    *fxp = false;
    int rc = ag_tensor_init(out, f->spu.field, AG_VIS_PUBLIC, v->ndim, v->shape);
    if (rc < 0) {
        snprintf(err, errcap, "%s", ag_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < v->numel; i++) {
        int64_t x = ag_value_i64(v)[i];
        if (out->field == AG_FM64)
            ag_tensor_u64(out)[i] = (uint64_t)x;
        else
            ag_tensor_u128(out)[i] = (ag_u128)(__extension__(__int128)x);
    }
    return 0;
}

/* A public ring tensor back to a value. */
static int ring_to_value(ag_fed *f, const ag_tensor *t, bool fxp, ag_value *out)
{
    int rc = fxp ? ag_value_f64_init(out, t->ndim, t->shape)
                 : ag_value_i64_init(out, t->ndim, t->shape);
    if (rc < 0)
        return rc;
    if (fxp)
        return ag_mpc_decode(f->mpc, t, ag_value_f64(out));
    for (size_t i = 0; i < t->numel; i++)
        ag_value_i64(out)[i] = t->field == AG_FM64 ? (int64_t)ag_tensor_u64(t)[i]
                                                   : (int64_t)(uint64_t)ag_tensor_u128(t)[i];
    return 0;
}

/* ---- transfers ---------------------------------------------------------------------------- */

ag_obj *ag_to_pyu(ag_fed *f, ag_obj *o, const char *party)
{
    int q = ag_fed_party_rank(f, party);
    if (q < 0)
        return ag__fed_obj_fail(ag__fed_obj(f, OBJ_PUBLIC, -1), AG_E_INVAL,
                                "to_pyu: no party '%s'", party ? party : "(null)");
    ag_obj *bad = check_args(f, OBJ_PYU, q, "to_pyu", &o, 1, true);
    if (bad)
        return bad;
    if (o->kind == OBJ_SPU && o->status)
        return ag__fed_obj_error_from(f, OBJ_PYU, q, o);
    ag_obj *res = ag__fed_obj(f, OBJ_PYU, q);
    if (!res)
        return NULL;
    bool here = (unsigned)q == f->rank;
    if (o->kind == OBJ_SPU) {
        ag_tensor t = {0};
        if (ag__fed_mpc(f) == 0) {
            int rc = ag_mpc_reveal_to(f->mpc, &o->t, (unsigned)q, &t);
            if (rc < 0)
                ag__fed_break(f, rc, "%s", ag_mpc_errmsg(f->mpc));
            else if (here && (rc = ring_to_value(f, &t, o->fxp, &res->val)) < 0)
                ag__fed_obj_fail(res, rc, "party %s: to_pyu: %s", f->names[f->rank],
                                 ag_strerror(rc));
        }
        ag_tensor_cleanup(&t);
    } else if (o->kind == OBJ_PUBLIC || o->owner == q) {
        int rc;
        if (here && o->status)
            ag__fed_obj_fail(res, o->status, "%s", obj_errmsg(o));
        else if (here && (rc = ag_value_copy(&res->val, &o->val)) < 0)
            ag__fed_obj_fail(res, rc, "party %s: to_pyu: %s", f->names[f->rank],
                             ag_strerror(rc));
    } else {
        uint64_t tag = FED_TAG(f->seq++, FED_K_PUSH);
        if ((unsigned)o->owner == f->rank)
            push(f, "to_pyu", o, (unsigned)q, tag);
        else if (here)
            pull(f, "to_pyu", res, (unsigned)o->owner, tag, true);
    }
    if (f->broken && !res->status)
        ag__fed_obj_fail(res, f->broken, "%s", f->err);
    return res;
}

ag_obj *ag_to_spu(ag_fed *f, ag_obj *o)
{
    ag_obj *bad = check_args(f, OBJ_SPU, -1, "to_spu", &o, 1, true);
    if (bad)
        return bad;
    if (o->kind == OBJ_SPU || (o->kind == OBJ_PUBLIC && o->status))
        return o->status ? ag__fed_obj_error_from(f, OBJ_SPU, -1, o)
                         : ag_spu_reshape(f, o, o->t.ndim, o->t.shape); /* a copy */
    if (ag__fed_mpc(f) < 0)
        return ag__fed_obj_error_from(f, OBJ_SPU, -1, NULL);
    ag_obj *res = ag__fed_obj(f, OBJ_SPU, -1);
    if (!res)
        return NULL;
    char err[AG_ERRMSG_MAX] = "";
    if (o->kind == OBJ_PUBLIC) {
        int rc = value_to_ring(f, &o->val, &res->t, &res->fxp, err, sizeof(err));
        if (rc < 0)
            ag__fed_obj_fail(res, rc, "to_spu: %s", err);
        return res;
    }
    /* the owner tells every party the status and shape, then shares */
    unsigned owner = (unsigned)o->owner;
    uint64_t tag = FED_TAG(f->seq++, FED_K_HEADER);
    ag_tensor plain = {0};
    ag_value head = {0};
    int status = o->status;
    if (owner == f->rank) {
        ag_buf b;
        ag_buf_init(&b, SIZE_MAX);
        if (!status) {
            status = value_to_ring(f, &o->val, &plain, &res->fxp, err, sizeof(err));
            if (status < 0) {
                char msg[AG_ERRMSG_MAX];
                snprintf(msg, sizeof(msg), "party %s: to_spu: %.400s", f->names[owner], err);
                snprintf(err, sizeof(err), "%s", msg);
            }
        } else {
            snprintf(err, sizeof(err), "%s", obj_errmsg(o));
        }
        int rc = status ? ag__fed_encode_error(&b, status, err)
                        : ag__fed_encode_value(&b, &o->val, false);
        for (unsigned p = 0; p < f->n && rc == 0; p++)
            if (p != owner && ag_link_send(f->link, p, tag, b.data, b.len) < 0)
                rc = ag__fed_break(f, AG_E_LINK_ABORTED, "to_spu: %s",
                                   ag_link_errmsg(f->link));
        ag_buf_cleanup(&b);
        if (rc < 0 && !f->broken)
            ag__fed_break(f, rc, "party %s: to_spu: %s", f->names[owner], ag_strerror(rc));
        head = o->val;
    } else {
        ag_obj tmp = {0};
        pull(f, "to_spu", &tmp, owner, tag, false);
        status = tmp.status;
        if (status)
            snprintf(err, sizeof(err), "%s", obj_errmsg(&tmp));
        head = tmp.val;
        ag_free(tmp.errmsg);
        if (!f->broken && !status && head.type != AG_V_F64 && head.type != AG_V_I64)
            ag__fed_break(f, AG_E_MPC_PROTOCOL, "to_spu: party %s announced a %s",
                          f->names[owner], ag_vtype_name(head.type));
        res->fxp = head.type == AG_V_F64;
    }
    if (f->broken) {
        ag__fed_obj_fail(res, f->broken, "%s", f->err);
    } else if (status) {
        ag__fed_obj_fail(res, status, "%s", err);
    } else {
        int rc = ag_mpc_share(f->mpc, owner, owner == f->rank ? &plain : NULL, head.ndim,
                              head.shape, &res->t);
        if (rc < 0) {
            ag__fed_break(f, rc, "%s", ag_mpc_errmsg(f->mpc));
            ag__fed_obj_fail(res, rc, "%s", f->err);
        }
    }
    ag_tensor_cleanup(&plain);
    return res;
}

int ag_reveal(ag_fed *f, ag_obj *o, ag_value *out)
{
    memset(out, 0, sizeof(*out));
    ag_obj *bad = check_args(f, OBJ_PUBLIC, -1, "reveal", &o, 1, true);
    if (!bad && o->status)
        bad = ag__fed_obj_error_from(f, OBJ_PUBLIC, -1, o);
    if (!bad && o->kind == OBJ_PYU && o->owner >= 0) {
        uint64_t tag = FED_TAG(f->seq++, FED_K_REVEAL);
        ag_obj *res = ag__fed_obj(f, OBJ_PUBLIC, -1);
        if (!res)
            return AG_E_NOMEM;
        if ((unsigned)o->owner == f->rank) {
            for (unsigned p = 0; p < f->n && !f->broken; p++)
                if (p != f->rank)
                    push(f, "reveal", o, p, tag);
            if (!f->broken) {
                int rc = ag_value_copy(out, &o->val);
                if (rc < 0)
                    ag__fed_obj_fail(res, rc, "party %s: reveal: %s", f->names[f->rank],
                                     ag_strerror(rc));
            }
        } else {
            pull(f, "reveal", res, (unsigned)o->owner, tag, true);
            *out = res->val;
            memset(&res->val, 0, sizeof(res->val));
        }
        if (f->broken && !res->status)
            ag__fed_obj_fail(res, f->broken, "%s", f->err);
        bad = res;
    } else if (!bad && o->kind == OBJ_PUBLIC) {
        int rc = ag_value_copy(out, &o->val);
        if (rc < 0)
            bad = ag__fed_obj_fail(ag__fed_obj(f, OBJ_PUBLIC, -1), rc, "reveal: %s",
                                   ag_strerror(rc));
    } else if (!bad) {
        ag_tensor t = {0};
        int rc = ag__fed_mpc(f);
        if (rc == 0 && (rc = ag_mpc_reveal(f->mpc, &o->t, &t)) < 0)
            ag__fed_break(f, rc, "%s", ag_mpc_errmsg(f->mpc));
        if (rc == 0 && (rc = ring_to_value(f, &t, o->fxp, out)) < 0)
            bad = ag__fed_obj_fail(ag__fed_obj(f, OBJ_PUBLIC, -1), rc, "reveal: %s",
                                   ag_strerror(rc));
        ag_tensor_cleanup(&t);
        if (f->broken && !bad)
            bad = ag__fed_obj_error_from(f, OBJ_PUBLIC, -1, NULL);
    }
    if (!bad || !bad->status) {
        ag_obj_free(f, bad);
        return 0;
    }
    int rc = bad->status;
    snprintf(f->err, sizeof(f->err), "%s", obj_errmsg(bad));
    ag_obj_free(f, bad);
    ag_value_cleanup(out);
    return rc;
}

int ag_reveal_f64(ag_fed *f, ag_obj *o, double *out)
{
    ag_value v;
    *out = 0;
    int rc = ag_reveal(f, o, &v);
    if (rc < 0)
        return rc;
    char what[64];
    if ((v.type != AG_V_F64 && v.type != AG_V_I64) || v.numel != 1) {
        snprintf(f->err, sizeof(f->err), "reveal_f64: the object is %s, not one number",
                 ag_value_describe(&v, what, sizeof(what)));
        ag_value_cleanup(&v);
        return AG_E_MPC_SHAPE;
    }
    *out = v.type == AG_V_F64 ? ag_value_f64(&v)[0] : (double)ag_value_i64(&v)[0];
    ag_value_cleanup(&v);
    return 0;
}

/* ---- wait ------------------------------------------------------------------------------------ */

int ag_waitn(ag_fed *f, ag_obj *const *objs, size_t n)
{
    ag_obj *bad = check_args(f, OBJ_PUBLIC, -1, "wait", objs, n, true);
    if (bad) {
        int rc = bad->status;
        snprintf(f->err, sizeof(f->err), "%s", obj_errmsg(bad));
        ag_obj_free(f, bad);
        return rc;
    }
    /* every party sends every other the statuses of its objects, in order:
     * for each, an encoded error or a bare ok byte */
    uint64_t tag = FED_TAG(f->seq++, FED_K_STATUS);
    ag_buf b;
    ag_buf_init(&b, SIZE_MAX);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const ag_obj *o = objs[i];
        if (o->kind != OBJ_PYU || (unsigned)o->owner != f->rank)
            continue;
        if (o->status) {
            const char *m = obj_errmsg(o);
            uint32_t len = (uint32_t)strlen(m);
            int32_t code = o->status;
            rc = ag_buf_append_byte(&b, 1);
            if (rc == 0)
                rc = ag_buf_append(&b, &code, 4);
            if (rc == 0)
                rc = ag_buf_append(&b, &len, 4);
            if (rc == 0)
                rc = ag_buf_append(&b, m, len);
        } else {
            rc = ag_buf_append_byte(&b, 0);
        }
    }
    for (unsigned p = 0; p < f->n && rc == 0 && !f->broken; p++)
        if (p != f->rank && ag_link_send(f->link, p, tag, b.data ? b.data : (void *)"", b.len) < 0)
            ag__fed_break(f, AG_E_LINK_ABORTED, "wait: %s", ag_link_errmsg(f->link));
    ag_buf_cleanup(&b);
    if (rc < 0)
        ag__fed_break(f, rc, "party %s: wait: %s", f->names[f->rank], ag_strerror(rc));
    for (unsigned p = 0; p < f->n && !f->broken; p++) {
        if (p == f->rank)
            continue;
        void *data;
        size_t len;
        if (ag_link_recv(f->link, p, tag, &data, &len) < 0) {
            ag__fed_break(f, AG_E_LINK_ABORTED, "wait: %s", ag_link_errmsg(f->link));
            break;
        }
        const uint8_t *q = data, *end = q + len;
        for (size_t i = 0; i < n && !f->broken; i++) {
            ag_obj *o = objs[i];
            if (o->kind != OBJ_PYU || (unsigned)o->owner != p)
                continue;
            if (q < end && *q == 0) {
                q++;
                continue;
            }
            int32_t code;
            uint32_t ml;
            if (end - q < 9 || *q != 1 || (memcpy(&code, q + 1, 4), memcpy(&ml, q + 5, 4),
                                          code >= 0 || ml > (size_t)(end - q - 9))) {
                ag__fed_break(f, AG_E_MPC_PROTOCOL, "wait: party %s sent malformed statuses",
                              f->names[p]);
                break;
            }
            ag__fed_obj_fail(o, code, "%.*s", (int)ml, (const char *)q + 9);
            q += 9 + ml;
        }
        if (!f->broken && q != end)
            ag__fed_break(f, AG_E_MPC_PROTOCOL, "wait: party %s sent malformed statuses",
                          f->names[p]);
        ag_free(data);
    }
    if (f->broken)
        return f->broken;
    for (size_t i = 0; i < n; i++)
        if (objs[i]->status) {
            snprintf(f->err, sizeof(f->err), "%s", obj_errmsg(objs[i]));
            return objs[i]->status;
        }
    return 0;
}
