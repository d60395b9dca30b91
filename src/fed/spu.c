/*
 * The SPU device (fed.h): operations on SPU objects, over the session's
 * mpc kernels. Every party runs each operation (they are collective); an
 * error is the same at every party, since shapes and encodings are public.
 * SPU objects carry their encoding: fixed point (fxp) or ring integers.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* An operand: an SPU object's tensor, or a public constant encoded. */
typedef struct operand {
    const ag_tensor *t;
    bool fxp;
    ag_tensor own; /* the encoding of a public constant */
} operand;

static void operand_cleanup(operand *o)
{
    ag_tensor_cleanup(&o->own);
}

typedef struct op_ctx {
    ag_fed *f;
    const char *name;
    ag_obj *res;
} op_ctx;

/* Starts an operation: checks the inputs (returns false with res set to
 * the error object) and the session. */
static bool op_begin(op_ctx *c, ag_fed *f, const char *name, ag_obj *const *in, size_t n)
{
    c->f = f;
    c->name = name;
    c->res = NULL;
    for (size_t i = 0; i < n; i++) {
        if (f->broken || !in[i]) {
            c->res = ag__fed_obj_error_from(f, OBJ_SPU, -1, NULL);
            return false;
        }
        if (in[i]->status) {
            c->res = ag__fed_obj_error_from(f, OBJ_SPU, -1, in[i]);
            return false;
        }
        if (in[i]->kind == OBJ_PYU) {
            c->res = ag__fed_obj_fail(ag__fed_obj(f, OBJ_SPU, -1), AG_E_MPC_VIS,
                                      "%s: argument %zu belongs to party %s: move it into "
                                      "the SPU first (ag_to_spu)", name, i + 1,
                                      f->names[in[i]->owner]);
            return false;
        }
    }
    if (ag__fed_mpc(f) < 0) {
        c->res = ag__fed_obj_error_from(f, OBJ_SPU, -1, NULL);
        return false;
    }
    c->res = ag__fed_obj(f, OBJ_SPU, -1);
    return c->res != NULL;
}

/* Ends it: rc from the kernel (a link failure breaks the runtime). */
static ag_obj *op_end(op_ctx *c, int rc)
{
    ag_fed *f = c->f;
    if (!c->res)
        return NULL;
    if (rc < 0) {
        const char *why = f->mpc ? ag_mpc_errmsg(f->mpc) : ag_strerror(rc);
        if (rc == AG_E_LINK_ABORTED || rc == AG_E_LINK_TIMEOUT || rc == AG_E_LINK_SIZE ||
            rc == AG_E_MPC_PROTOCOL || rc == AG_E_LINK_PEER)
            ag__fed_break(f, rc, "spu %s: %s", c->name, why);
        ag__fed_obj_fail(c->res, f->broken ? f->broken : rc, "%s",
                         f->broken ? f->err : why);
    }
    return c->res;
}

static int operand_get(op_ctx *c, ag_obj *o, operand *out)
{
    memset(out, 0, sizeof(*out));
    if (o->kind == OBJ_SPU) {
        out->t = &o->t;
        out->fxp = o->fxp;
        return 0;
    }
    /* a public constant */
    ag_fed *f = c->f;
    const ag_value *v = &o->val;
    if (v->type == AG_V_F64) {
        out->fxp = true;
        int rc = ag_mpc_encode(f->mpc, ag_value_f64(v), v->ndim, v->shape, &out->own);
        out->t = &out->own;
        return rc;
    }
    if (v->type != AG_V_I64)
        return AG_E_MPC_VIS;
    int rc = ag_tensor_init(&out->own, f->spu.field, AG_VIS_PUBLIC, v->ndim, v->shape);
    for (size_t i = 0; rc == 0 && i < v->numel; i++) {
        if (out->own.field == AG_FM64)
            ag_tensor_u64(&out->own)[i] = (uint64_t)ag_value_i64(v)[i];
        else
            ag_tensor_u128(&out->own)[i] = (ag_u128)(__extension__(__int128)ag_value_i64(v)[i]);
    }
    out->t = &out->own;
    return rc;
}

/* Converts an integer operand to fixed point (times 2^f, local). */
static int operand_to_fxp(op_ctx *c, operand *o)
{
    if (o->fxp)
        return 0;
    ag_mpc *m = c->f->mpc;
    ag_tensor scale = {0}, out = {0};
    int rc = ag_tensor_init(&scale, ag_mpc_field(m), AG_VIS_PUBLIC, o->t->ndim, o->t->shape);
    for (size_t i = 0; rc == 0 && i < scale.numel; i++) {
        if (scale.field == AG_FM64)
            ag_tensor_u64(&scale)[i] = (uint64_t)1 << ag_mpc_fxp_bits(m);
        else
            ag_tensor_u128(&scale)[i] = (ag_u128)1 << ag_mpc_fxp_bits(m);
    }
    if (rc == 0)
        rc = ag_mpc_mul(m, o->t, &scale, &out);
    ag_tensor_cleanup(&scale);
    if (rc < 0)
        return rc;
    ag_tensor_cleanup(&o->own);
    o->own = out;
    o->t = &o->own;
    o->fxp = true;
    return 0;
}

typedef enum binop {
    B_ADD, B_SUB, B_MUL, B_DIV, B_MATMUL, B_LESS, B_GREATER, B_EQUAL, B_MIN, B_MAX,
} binop;

/* numpy's broadcasting of two operands to one shape (not for matmul). */
static int operands_broadcast(operand *a, operand *b)
{
    const ag_tensor *x = a->t, *y = b->t;
    if (ag_tensor_same_shape(x, y))
        return 0;
    int nd = x->ndim > y->ndim ? x->ndim : y->ndim;
    int64_t shape[AG_TENSOR_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int xi = x->ndim - nd + i, yi = y->ndim - nd + i;
        int64_t dx = xi >= 0 ? x->shape[xi] : 1, dy = yi >= 0 ? y->shape[yi] : 1;
        if (dx != dy && dx != 1 && dy != 1)
            return AG_E_MPC_SHAPE;
        shape[i] = dx == 1 ? dy : dx;
    }
    operand *ops[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        const ag_tensor *t = ops[k]->t;
        bool same = t->ndim == nd && memcmp(t->shape, shape, (size_t)nd * 8) == 0;
        if (same)
            continue;
        ag_tensor out = {0};
        int rc = ag_tensor_broadcast(&out, t, nd, shape);
        if (rc < 0)
            return rc;
        ag_tensor_cleanup(&ops[k]->own);
        ops[k]->own = out;
        ops[k]->t = &ops[k]->own;
    }
    return 0;
}

static const char *const binop_names[] = {
    "add", "sub", "mul", "div", "matmul", "less", "greater", "equal", "min", "max",
};

static ag_obj *binary(ag_fed *f, binop op, ag_obj *x, ag_obj *y)
{
    op_ctx c;
    ag_obj *in[2] = {x, y};
    if (!op_begin(&c, f, binop_names[op], in, 2))
        return c.res;
    operand a, b;
    int rc = operand_get(&c, x, &a);
    if (rc == 0)
        rc = operand_get(&c, y, &b);
    else
        memset(&b, 0, sizeof(b));
    ag_mpc *m = f->mpc;
    bool fxp = a.fxp || b.fxp;
    bool product = op == B_MUL || op == B_MATMUL;
    /* products mix encodings freely (an integer factor keeps the other's
     * scale); everything else aligns them, division in fixed point */
    if (rc == 0 && !product && (fxp || op == B_DIV)) {
        rc = operand_to_fxp(&c, &a);
        if (rc == 0)
            rc = operand_to_fxp(&c, &b);
        fxp = true;
    }
    ag_obj *res = c.res;
    if (rc == 0 && op != B_MATMUL && (rc = operands_broadcast(&a, &b)) < 0) {
        char sa[64], sb[64];
        ag__fed_obj_fail(res, rc, "%s: shapes %s and %s do not broadcast", binop_names[op],
                         ag_tensor_shape_str(a.t, sa, sizeof(sa)),
                         ag_tensor_shape_str(b.t, sb, sizeof(sb)));
        rc = 0;
        operand_cleanup(&a);
        operand_cleanup(&b);
        return op_end(&c, rc);
    }
    if (rc == 0 && !ag_obj_status(res, NULL)) {
        switch (op) {
        case B_ADD: rc = ag_mpc_add(m, a.t, b.t, &res->t); break;
        case B_SUB: rc = ag_mpc_sub(m, a.t, b.t, &res->t); break;
        case B_MUL:
            rc = a.fxp && b.fxp ? ag_mpc_fmul(m, a.t, b.t, &res->t)
                                : ag_mpc_mul(m, a.t, b.t, &res->t);
            break;
        case B_MATMUL:
            rc = a.fxp && b.fxp ? ag_mpc_fmatmul(m, a.t, b.t, &res->t)
                                : ag_mpc_matmul(m, a.t, b.t, &res->t);
            break;
        case B_DIV: rc = ag_mpc_div(m, a.t, b.t, &res->t); break;
        case B_LESS: rc = ag_mpc_less(m, a.t, b.t, &res->t); fxp = false; break;
        case B_GREATER: rc = ag_mpc_greater(m, a.t, b.t, &res->t); fxp = false; break;
        case B_EQUAL: rc = ag_mpc_equal(m, a.t, b.t, &res->t); fxp = false; break;
        case B_MIN: rc = ag_mpc_min(m, a.t, b.t, &res->t); break;
        case B_MAX: rc = ag_mpc_max(m, a.t, b.t, &res->t); break;
        }
    } else if (!f->mpc || rc == AG_E_MPC_VIS) {
        ag__fed_obj_fail(res, rc, "%s: a constant of this type cannot enter the SPU",
                         binop_names[op]);
        rc = 0;
    }
    res->fxp = fxp;
    operand_cleanup(&a);
    operand_cleanup(&b);
    return op_end(&c, rc);
}

ag_obj *ag_spu_add(ag_fed *f, ag_obj *x, ag_obj *y) { return binary(f, B_ADD, x, y); }
ag_obj *ag_spu_sub(ag_fed *f, ag_obj *x, ag_obj *y) { return binary(f, B_SUB, x, y); }
ag_obj *ag_spu_mul(ag_fed *f, ag_obj *x, ag_obj *y) { return binary(f, B_MUL, x, y); }
ag_obj *ag_spu_div(ag_fed *f, ag_obj *x, ag_obj *y) { return binary(f, B_DIV, x, y); }
ag_obj *ag_spu_matmul(ag_fed *f, ag_obj *x, ag_obj *y) { return binary(f, B_MATMUL, x, y); }
ag_obj *ag_spu_less(ag_fed *f, ag_obj *x, ag_obj *y) { return binary(f, B_LESS, x, y); }
ag_obj *ag_spu_greater(ag_fed *f, ag_obj *x, ag_obj *y) { return binary(f, B_GREATER, x, y); }
ag_obj *ag_spu_equal(ag_fed *f, ag_obj *x, ag_obj *y) { return binary(f, B_EQUAL, x, y); }
ag_obj *ag_spu_min(ag_fed *f, ag_obj *x, ag_obj *y) { return binary(f, B_MIN, x, y); }
ag_obj *ag_spu_max(ag_fed *f, ag_obj *x, ag_obj *y) { return binary(f, B_MAX, x, y); }

ag_obj *ag_spu_select(ag_fed *f, ag_obj *cond, ag_obj *x, ag_obj *y)
{
    op_ctx c;
    ag_obj *in[3] = {cond, x, y};
    if (!op_begin(&c, f, "select", in, 3))
        return c.res;
    operand k, a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    int rc = operand_get(&c, cond, &k);
    if (rc == 0 && k.fxp) {
        ag__fed_obj_fail(c.res, AG_E_MPC_VIS, "select: the condition must be 0/1 integers "
                         "(a comparison's result), not fixed point");
        operand_cleanup(&k);
        return c.res;
    }
    if (rc == 0)
        rc = operand_get(&c, x, &a);
    if (rc == 0)
        rc = operand_get(&c, y, &b);
    if (rc == 0 && a.fxp != b.fxp) {
        rc = operand_to_fxp(&c, &a);
        if (rc == 0)
            rc = operand_to_fxp(&c, &b);
    }
    if (rc == 0)
        rc = operands_broadcast(&a, &b);
    if (rc == 0)
        rc = operands_broadcast(&k, &a);
    if (rc == 0)
        rc = operands_broadcast(&a, &b);
    if (rc == AG_E_MPC_SHAPE) {
        ag__fed_obj_fail(c.res, rc, "select: shapes do not broadcast");
        rc = 0;
    }
    if (rc == 0 && !ag_obj_status(c.res, NULL))
        rc = ag_mpc_select(f->mpc, k.t, a.t, b.t, &c.res->t);
    c.res->fxp = a.fxp;
    operand_cleanup(&k);
    operand_cleanup(&a);
    operand_cleanup(&b);
    return op_end(&c, rc);
}

typedef enum unop {
    U_NEG, U_SQUARE, U_ABS, U_RELU, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_RECIPROCAL, U_SIGMOID,
    U_TRANSPOSE, U_SUM, U_MEAN, U_ARGMAX, U_RESHAPE, U_BROADCAST, U_SLICE,
} unop;

static const char *const unop_names[] = {
    "neg", "square", "abs", "relu", "exp", "log", "sqrt", "rsqrt", "reciprocal", "sigmoid",
    "transpose", "sum", "mean", "argmax", "reshape", "broadcast", "slice",
};

typedef struct unargs {
    int axis;
    ag_sigmoid_mode mode;
    int ndim;
    const int64_t *shape;
    const int64_t *start, *stop, *step;
} unargs;

static ag_obj *unary(ag_fed *f, unop op, ag_obj *x, const unargs *u)
{
    op_ctx c;
    if (!op_begin(&c, f, unop_names[op], &x, 1))
        return c.res;
    operand a;
    ag_mpc *m = f->mpc;
    ag_tensor *out = &c.res->t;
    int rc = operand_get(&c, x, &a);
    bool needs_fxp = op >= U_EXP && op <= U_SIGMOID;
    if (rc == 0 && (needs_fxp || (op == U_MEAN && !a.fxp)))
        rc = operand_to_fxp(&c, &a);
    c.res->fxp = a.fxp;
    if (rc == 0) {
        switch (op) {
        case U_NEG: rc = ag_mpc_neg(m, a.t, out); break;
        case U_SQUARE:
            rc = a.fxp ? ag_mpc_fmul(m, a.t, a.t, out) : ag_mpc_square(m, a.t, out);
            break;
        case U_ABS: rc = ag_mpc_abs(m, a.t, out); break;
        case U_RELU: rc = ag_mpc_relu(m, a.t, out); break;
        case U_EXP: rc = ag_mpc_exp(m, a.t, out); break;
        case U_LOG: rc = ag_mpc_log(m, a.t, out); break;
        case U_SQRT: rc = ag_mpc_sqrt(m, a.t, out); break;
        case U_RSQRT: rc = ag_mpc_rsqrt(m, a.t, out); break;
        case U_RECIPROCAL: rc = ag_mpc_reciprocal(m, a.t, out); break;
        case U_SIGMOID: rc = ag_mpc_sigmoid(m, a.t, u->mode, out); break;
        case U_TRANSPOSE: rc = ag_tensor_transpose(out, a.t); break;
        case U_SUM: rc = ag_mpc_sum(m, a.t, u->axis, out); break;
        case U_MEAN: rc = ag_mpc_mean(m, a.t, u->axis, out); break;
        case U_ARGMAX:
            rc = ag_mpc_argmax(m, a.t, u->axis, out);
            c.res->fxp = false;
            break;
        case U_RESHAPE:
            rc = ag_tensor_copy(out, a.t);
            if (rc == 0)
                rc = ag_tensor_reshape(out, u->ndim, u->shape);
            break;
        case U_BROADCAST: rc = ag_tensor_broadcast(out, a.t, u->ndim, u->shape); break;
        case U_SLICE: rc = ag_tensor_slice(out, a.t, u->start, u->stop, u->step); break;
        }
    }
    if (rc < 0 && op >= U_TRANSPOSE && !(op >= U_SUM && op <= U_ARGMAX)) {
        /* shape operations report through no session */
        char s[64];
        ag__fed_obj_fail(c.res, rc, "%s: %s of shape %s", unop_names[op], ag_strerror(rc),
                         ag_tensor_shape_str(a.t ? a.t : out, s, sizeof(s)));
        rc = 0;
    }
    operand_cleanup(&a);
    return op_end(&c, rc);
}

static const unargs none = {0};

ag_obj *ag_spu_neg(ag_fed *f, ag_obj *x) { return unary(f, U_NEG, x, &none); }
ag_obj *ag_spu_square(ag_fed *f, ag_obj *x) { return unary(f, U_SQUARE, x, &none); }
ag_obj *ag_spu_abs(ag_fed *f, ag_obj *x) { return unary(f, U_ABS, x, &none); }
ag_obj *ag_spu_relu(ag_fed *f, ag_obj *x) { return unary(f, U_RELU, x, &none); }
ag_obj *ag_spu_exp(ag_fed *f, ag_obj *x) { return unary(f, U_EXP, x, &none); }
ag_obj *ag_spu_log(ag_fed *f, ag_obj *x) { return unary(f, U_LOG, x, &none); }
ag_obj *ag_spu_sqrt(ag_fed *f, ag_obj *x) { return unary(f, U_SQRT, x, &none); }
ag_obj *ag_spu_rsqrt(ag_fed *f, ag_obj *x) { return unary(f, U_RSQRT, x, &none); }
ag_obj *ag_spu_reciprocal(ag_fed *f, ag_obj *x) { return unary(f, U_RECIPROCAL, x, &none); }
ag_obj *ag_spu_transpose(ag_fed *f, ag_obj *x) { return unary(f, U_TRANSPOSE, x, &none); }

ag_obj *ag_spu_sigmoid(ag_fed *f, ag_obj *x, ag_sigmoid_mode mode)
{
    unargs u = {.mode = mode};
    return unary(f, U_SIGMOID, x, &u);
}

ag_obj *ag_spu_sum(ag_fed *f, ag_obj *x, int axis)
{
    unargs u = {.axis = axis};
    return unary(f, U_SUM, x, &u);
}

ag_obj *ag_spu_mean(ag_fed *f, ag_obj *x, int axis)
{
    unargs u = {.axis = axis};
    return unary(f, U_MEAN, x, &u);
}

ag_obj *ag_spu_argmax(ag_fed *f, ag_obj *x, int axis)
{
    unargs u = {.axis = axis};
    return unary(f, U_ARGMAX, x, &u);
}

ag_obj *ag_spu_reshape(ag_fed *f, ag_obj *x, int ndim, const int64_t *shape)
{
    unargs u = {.ndim = ndim, .shape = shape};
    return unary(f, U_RESHAPE, x, &u);
}

ag_obj *ag_spu_broadcast(ag_fed *f, ag_obj *x, int ndim, const int64_t *shape)
{
    unargs u = {.ndim = ndim, .shape = shape};
    return unary(f, U_BROADCAST, x, &u);
}

ag_obj *ag_spu_slice(ag_fed *f, ag_obj *x, const int64_t *start, const int64_t *stop,
                     const int64_t *step)
{
    unargs u = {.start = start, .stop = stop, .step = step};
    return unary(f, U_SLICE, x, &u);
}

ag_obj *ag_spu_concat(ag_fed *f, ag_obj *const *xs, size_t n, int axis)
{
    op_ctx c;
    if (!op_begin(&c, f, "concat", xs, n))
        return c.res;
    operand *ops = ag_calloc(n ? n : 1, sizeof(*ops));
    const ag_tensor **ts = ag_calloc(n ? n : 1, sizeof(*ts));
    int rc = ops && ts ? 0 : AG_E_NOMEM;
    bool fxp = false;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = operand_get(&c, xs[i], &ops[i]);
        fxp |= ops[i].fxp;
    }
    for (size_t i = 0; rc == 0 && fxp && i < n; i++)
        rc = operand_to_fxp(&c, &ops[i]);
    /* shares and public values do not concatenate: share the public ones */
    bool shared = false;
    for (size_t i = 0; rc == 0 && i < n; i++)
        shared |= ops[i].t->vis != AG_VIS_PUBLIC;
    for (size_t i = 0; rc == 0 && shared && i < n; i++) {
        if (ops[i].t->vis != AG_VIS_PUBLIC)
            continue;
        ag_tensor zero = {0}, sh = {0};
        rc = ag_tensor_init(&zero, ops[i].t->field, AG_VIS_ASHARE, ops[i].t->ndim,
                            ops[i].t->shape);
        if (rc == 0)
            rc = ag_mpc_add(f->mpc, &zero, ops[i].t, &sh);
        ag_tensor_cleanup(&zero);
        ag_tensor_cleanup(&ops[i].own);
        ops[i].own = sh;
        ops[i].t = &ops[i].own;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        ts[i] = ops[i].t;
    if (rc == 0)
        rc = ag_tensor_concat(&c.res->t, (const ag_tensor *const *)ts, n, axis);
    c.res->fxp = fxp;
    for (size_t i = 0; ops && i < n; i++)
        operand_cleanup(&ops[i]);
    ag_free(ops);
    ag_free(ts);
    if (rc < 0 && rc != AG_E_NOMEM) {
        ag__fed_obj_fail(c.res, rc, "concat: %s", ag_strerror(rc));
        rc = 0;
    }
    return op_end(&c, rc);
}
