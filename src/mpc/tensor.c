/*
 * Ring tensors: n-dimensional, row-major, contiguous, owning their data.
 * Shares are wiped when freed. Shape operations that keep the element order
 * (reshape) are free; the others copy.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

size_t ag_field_bytes(ag_field f)
{
    return f == AG_FM64 ? 8 : 16;
}

const char *ag_field_name(ag_field f)
{
    return f == AG_FM64 ? "FM64" : "FM128";
}

/* numel of a shape, or SIZE_MAX if invalid or overflowing. */
static size_t shape_numel(int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > AG_TENSOR_MAX_DIMS)
        return SIZE_MAX;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return SIZE_MAX;
        if (shape[i] != 0 && n > (SIZE_MAX / 16) / (size_t)shape[i])
            return SIZE_MAX;
        n *= (size_t)shape[i];
    }
    return n;
}

/* The header of t for a tensor of n elements around data. */
static void header(ag_tensor *t, ag_field f, ag_vis v, int ndim, const int64_t *shape, size_t n,
                   void *data)
{
    t->field = f;
    t->vis = v;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->numel = n;
    t->data = data;
}

/* ag_tensor_init, zeroing the data or not. */
static int init(ag_tensor *t, ag_field f, ag_vis v, int ndim, const int64_t *shape, bool zero)
{
    memset(t, 0, sizeof(*t));
    size_t n = shape_numel(ndim, shape);
    if (n == SIZE_MAX)
        return AG_E_MPC_SHAPE;
    size_t eb = ag_field_bytes(f);
    void *d = zero ? ag_calloc(n ? n : 1, eb) : ag_malloc(n ? n * eb : eb);
    if (!d)
        return AG_E_NOMEM;
    header(t, f, v, ndim, shape, n, d);
    return 0;
}

int ag_tensor_init(ag_tensor *t, ag_field f, ag_vis v, int ndim, const int64_t *shape)
{
    return init(t, f, v, ndim, shape, true);
}

int ag__tensor_init_raw(ag_tensor *t, ag_field f, ag_vis v, int ndim, const int64_t *shape)
{
    return init(t, f, v, ndim, shape, false);
}

void ag__tensor_init_with(ag_tensor *t, ag_field f, ag_vis v, int ndim, const int64_t *shape,
                          void *data)
{
    memset(t, 0, sizeof(*t));
    header(t, f, v, ndim, shape, shape_numel(ndim, shape), data);
}

void ag_tensor_cleanup(ag_tensor *t)
{
    if (t->data && t->vis != AG_VIS_PUBLIC)
        ag_wipe(t->data, t->numel * ag_field_bytes(t->field));
    ag_free(t->data);
    memset(t, 0, sizeof(*t));
}

int ag_tensor_copy(ag_tensor *dst, const ag_tensor *src)
{
    int rc = ag_tensor_init(dst, src->field, src->vis, src->ndim, src->shape);
    if (rc == 0 && src->numel)
        memcpy(dst->data, src->data, src->numel * ag_field_bytes(src->field));
    return rc;
}

bool ag_tensor_same_shape(const ag_tensor *a, const ag_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

const char *ag_tensor_shape_str(const ag_tensor *t, char *buf, size_t cap)
{
    size_t off = 0;
    off += (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < t->ndim && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%lld", i ? "," : "",
                                (long long)t->shape[i]);
    if (off < cap)
        snprintf(buf + off, cap - off, ")");
    return buf;
}

int ag_tensor_reshape(ag_tensor *t, int ndim, const int64_t *shape)
{
    if (shape_numel(ndim, shape) != t->numel)
        return AG_E_MPC_SHAPE;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    return 0;
}

int ag_tensor_transpose(ag_tensor *dst, const ag_tensor *src)
{
    if (src->ndim != 2) {
        memset(dst, 0, sizeof(*dst));
        return AG_E_MPC_SHAPE;
    }
    int64_t shape[2] = {src->shape[1], src->shape[0]};
    int rc = ag_tensor_init(dst, src->field, src->vis, 2, shape);
    if (rc < 0)
        return rc;
    size_t r = (size_t)src->shape[0], c = (size_t)src->shape[1];
    if (src->field == AG_FM64) {
        const uint64_t *s = src->data;
        uint64_t *d = dst->data;
        for (size_t i = 0; i < r; i++)
            for (size_t j = 0; j < c; j++)
                d[j * r + i] = s[i * c + j];
    } else {
        const ag_u128 *s = src->data;
        ag_u128 *d = dst->data;
        for (size_t i = 0; i < r; i++)
            for (size_t j = 0; j < c; j++)
                d[j * r + i] = s[i * c + j];
    }
    return 0;
}
