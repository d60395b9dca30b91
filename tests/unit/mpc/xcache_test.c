/* Tests for src/mpc/xcache.c: cached products x.y and x^T.y against
 * plaintext ring products, for 2 and 3 parties and both fields, used
 * several times with fresh y; and their bytes (only y - b per product). */
#include "parties.h"

#define R 37
#define C 5

struct xc_case {
    ag_field f;
    unsigned n;
    uint64_t x[R * C][2], y[R][2], y2[C][2]; /* two words per element (FM128) */
    uint8_t got[MAX_PARTIES][2][R * 16];
    uint64_t bytes[MAX_PARTIES];
};

static int shared(ag_mpc *m, unsigned owner, const void *v, int64_t r, int64_t c, ag_tensor *t)
{
    int64_t shape[2] = {r, c};
    ag_tensor pub = {0};
    int rc = ag_tensor_init(&pub, ag_mpc_field(m), AG_VIS_PUBLIC, 2, shape);
    size_t eb = ag_field_bytes(ag_mpc_field(m));
    for (size_t i = 0; rc == 0 && i < pub.numel; i++)
        memcpy((uint8_t *)pub.data + i * eb, (const uint64_t *)v + 2 * i, eb);
    if (rc == 0)
        rc = ag_mpc_share(m, owner, ag_mpc_rank(m) == owner ? &pub : NULL, 2, shape, t);
    ag_tensor_cleanup(&pub);
    return rc;
}

static int xc_fn(struct party *p)
{
    struct xc_case *c = party_ctx(p);
    ag_mpc *m = p->m;
    ag_tensor x = {0}, y = {0}, y2 = {0}, z = {0}, o = {0};
    ag_mpc_xcache *xc = NULL;
    int rc = shared(m, 0, c->x, R, C, &x);
    if (rc == 0)
        rc = shared(m, c->n - 1, c->y, R, 1, &y);
    if (rc == 0)
        rc = shared(m, c->n - 1, c->y2, C, 1, &y2);
    if (rc == 0)
        rc = ag_mpc_xcache_new(m, &x, &xc);
    for (int k = 0; rc == 0 && k < 2; k++) {
        /* x^T.y (C x 1), then x.y2 (R x 1); twice, as epochs do */
        cost_begin(p);
        rc = ag_mpc_xcache_matmul(m, xc, k == 0, k == 0 ? &y : &y2, &z);
        cost_end(p);
        c->bytes[p->rank] += cost_bytes(p);
        if (rc == 0)
            rc = ag_mpc_reveal(m, &z, &o);
        if (rc == 0)
            memcpy(c->got[p->rank][k], o.data, o.numel * ag_field_bytes(o.field));
        ag_tensor_cleanup(&z);
        ag_tensor_cleanup(&o);
    }
    ag_mpc_xcache_free(xc);
    ag_tensor_cleanup(&x);
    ag_tensor_cleanup(&y);
    ag_tensor_cleanup(&y2);
    return rc;
}

static void check_case(ag_field f, unsigned n)
{
    static struct xc_case c;
    memset(&c, 0, sizeof(c));
    c.f = f;
    c.n = n;
    uint64_t s = 99 + n + (uint64_t)f * 7;
    for (size_t i = 0; i < 2 * R * C; i++)
        ((uint64_t *)c.x)[i] = (s = s * 6364136223846793005ull + 1442695040888963407ull);
    for (size_t i = 0; i < 2 * R; i++)
        ((uint64_t *)c.y)[i] = (s = s * 6364136223846793005ull + 1442695040888963407ull);
    for (size_t i = 0; i < 2 * C; i++)
        ((uint64_t *)c.y2)[i] = (s = s * 6364136223846793005ull + 1442695040888963407ull);
    struct party ps[MAX_PARTIES];
    run_parties(n, f, xc_fn, &c, ps);
    for (unsigned r = 0; r < n; r++)
        if (ps[r].rc < 0)
            FAIL("party %u: %s", r, ps[r].err);
    size_t eb = ag_field_bytes(f);
    for (int k = 0; k < 2; k++) {
        size_t outn = k == 0 ? C : R;
        for (size_t i = 0; i < outn; i++) {
            ag_u128 want = 0;
            for (size_t j = 0; j < (k == 0 ? (size_t)R : (size_t)C); j++) {
                size_t xi = k == 0 ? j * C + i : i * C + j;
                const uint64_t *xv = c.x[xi], *yv = k == 0 ? c.y[j] : c.y2[j];
                ag_u128 a = f == AG_FM64 ? xv[0] : ((ag_u128)xv[1] << 64 | xv[0]);
                ag_u128 b = f == AG_FM64 ? yv[0] : ((ag_u128)yv[1] << 64 | yv[0]);
                want += a * b;
            }
            for (unsigned r = 0; r < n; r++) {
                ag_u128 got = 0;
                memcpy(&got, c.got[r][k] + i * eb, eb);
                if (f == AG_FM64)
                    want = (uint64_t)want;
                if (got != want)
                    FAIL("%s, %u parties, product %d, element %zu differs", ag_field_name(f), n,
                         k, i);
            }
        }
    }
    /* each product opens only y - b: R + C elements in all, per peer */
    for (unsigned r = 0; r < n; r++)
        CHECK_U64_EQ(c.bytes[r], (uint64_t)(R + C) * eb * (n - 1));
}

TEST(xcache_products_match_plaintext_and_open_only_y)
{
    check_case(AG_FM64, 2);
    check_case(AG_FM64, 3);
    check_case(AG_FM128, 2);
    check_case(AG_FM128, 3);
}
