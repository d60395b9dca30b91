/*
 * The first federated program: alice and bob each add one to a number at
 * home (a PYU call), the SPU multiplies their secret results, and every
 * party learns only the product. (2 + 1) * (2 + 1) = 9.
 *
 *   build/bin/example-hello --sim alice,bob
 *   build/bin/argot launch --sim alice,bob -- build/bin/example-hello
 *   build/bin/example-hello --config cluster.yaml --party alice   (and bob, elsewhere)
 */
#include <stdio.h>

#include "argot/fed.h"

static int add_one(ag_pyu_ctx *c, const ag_value *args, size_t nargs, ag_value *out)
{
    if (nargs != 1 || args[0].type != AG_V_F64 || args[0].numel != 1)
        return ag_pyu_error(c, AG_E_INVAL, "add_one takes one number");
    return ag_value_scalar_f64(out, ag_value_f64(&args[0])[0] + 1);
}

static int hello(ag_fed *f, void *udata)
{
    (void)udata;
    ag_obj *a = ag_pyu_call(f, "alice", add_one, ag_const_f64(f, 2));
    ag_obj *b = ag_pyu_call(f, "bob", add_one, ag_const_f64(f, 2));
    ag_obj *product = ag_spu_mul(f, ag_to_spu(f, a), ag_to_spu(f, b));
    double v;
    int rc = ag_reveal_f64(f, product, &v);
    if (rc < 0)
        return rc;
    printf("%g\n", v); /* every party prints the same */
    return 0;
}

int main(int argc, char **argv)
{
    return ag_fed_main(argc, argv, hello, NULL);
}
