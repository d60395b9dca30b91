/*
 * A federated job for the integration tests, run in every mode
 * (tests/integration/fed_test.c). The first argument picks it:
 *
 *   pipeline  PYU work at both parties, a PYU-to-PYU transfer, SPU
 *             arithmetic, a comparison and a reveal to one party; prints
 *             "result: ..." (the same line in every mode)
 *   stall     a first exchange ("ready"), then bob sleeps for a long time
 *             while alice waits for his next object
 *   fail      bob's PYU function fails; every party must say so
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "argot/fed.h"

static int series(ag_pyu_ctx *c, const ag_value *args, size_t nargs, ag_value *out)
{
    (void)nargs;
    int64_t shape[1] = {8};
    int rc = ag_value_f64_init(out, 1, shape);
    double k = strcmp(ag_pyu_party(c), "alice") == 0 ? 1.25 : -0.5;
    for (int i = 0; rc == 0 && i < 8; i++)
        ag_value_f64(out)[i] = k * (i + 1) + ag_value_f64(&args[0])[0];
    return rc;
}

static int scale(ag_pyu_ctx *c, const ag_value *args, size_t nargs, ag_value *out)
{
    (void)c;
    (void)nargs;
    int rc = ag_value_copy(out, &args[0]);
    for (size_t i = 0; rc == 0 && i < out->numel; i++)
        ag_value_f64(out)[i] *= ag_value_f64(&args[1])[0];
    return rc;
}

static int missing_file(ag_pyu_ctx *c, const ag_value *args, size_t nargs, ag_value *out)
{
    (void)args;
    (void)nargs;
    (void)out;
    return ag_pyu_error(c, AG_E_NOENT, "bob.csv: no such file");
}

static int pipeline(ag_fed *f)
{
    ag_obj *a = ag_pyu_call(f, "alice", series, ag_const_f64(f, 0.5));
    ag_obj *b = ag_pyu_call(f, "bob", series, ag_const_f64(f, 3));
    ag_obj *b2 = ag_pyu_call(f, "bob", scale, a, ag_const_f64(f, 2)); /* alice's, at bob */
    ag_obj *sa = ag_to_spu(f, a), *sb = ag_to_spu(f, b), *sb2 = ag_to_spu(f, b2);
    ag_obj *dot = ag_spu_sum(f, ag_spu_mul(f, sa, sb), AG_AXIS_ALL);
    ag_obj *mx = ag_spu_max(f, ag_spu_sum(f, sb2, AG_AXIS_ALL), ag_const_f64(f, 100));
    ag_obj *cnt = ag_spu_sum(f, ag_spu_greater(f, sa, sb), AG_AXIS_ALL);
    ag_obj *to_bob = ag_to_pyu(f, ag_spu_mean(f, sa, AG_AXIS_ALL), "bob");
    double d, m, c;
    int rc = ag_reveal_f64(f, dot, &d);
    if (rc == 0)
        rc = ag_reveal_f64(f, mx, &m);
    if (rc == 0)
        rc = ag_reveal_f64(f, cnt, &c);
    if (rc == 0)
        rc = ag_wait(f, to_bob);
    if (rc < 0)
        return rc;
    const ag_value *mean = ag_obj_value(to_bob);
    printf("result: dot %.3f max %.3f greater %.0f\n", d, m, c);
    if (mean)
        printf("bob alone learned the mean of alice's series: %.4f\n", ag_value_f64(mean)[0]);
    return 0;
}

static int stall(ag_fed *f)
{
    ag_obj *a = ag_pyu_call(f, "alice", series, ag_const_f64(f, 0));
    double v;
    int rc = ag_reveal_f64(f, ag_spu_sum(f, ag_to_spu(f, a), AG_AXIS_ALL), &v);
    if (rc < 0)
        return rc;
    printf("ready\n");
    fflush(stdout);
    if (ag_fed_rank(f) == 1)
        sleep(600);
    ag_obj *b = ag_pyu_call(f, "bob", series, ag_const_f64(f, 0));
    rc = ag_reveal_f64(f, ag_spu_sum(f, ag_to_spu(f, b), AG_AXIS_ALL), &v);
    if (rc == 0)
        printf("done\n");
    return rc;
}

static int fail(ag_fed *f)
{
    ag_obj *x = ag_pyu_call(f, "bob", missing_file);
    ag_obj *y = ag_spu_add(f, ag_to_spu(f, x), ag_const_f64(f, 1));
    double v;
    return ag_reveal_f64(f, y, &v);
}

static int job(ag_fed *f, void *ud)
{
    (void)ud;
    const char *which = ag_fed_argc(f) > 1 ? ag_fed_argv(f)[1] : "pipeline";
    if (strcmp(which, "pipeline") == 0)
        return pipeline(f);
    if (strcmp(which, "stall") == 0)
        return stall(f);
    if (strcmp(which, "fail") == 0)
        return fail(f);
    return ag_fed_fail(f, AG_E_USAGE, "unknown job '%s'", which);
}

int main(int argc, char **argv)
{
    return ag_fed_main(argc, argv, job, NULL);
}
