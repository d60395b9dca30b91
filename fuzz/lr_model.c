/*
 * Fuzz target for the logistic-regression model file reader
 * (src/apps/lr.c, ag_lr_model_load).
 *
 * Writes the input to a private temporary file and loads it. A load either
 * fails with a message naming the file and leaves the model empty, or
 * succeeds with a consistent model: this party's rank and name among the
 * two, nweights = cols[0] + cols[1] + 1, its features' names set and
 * standard deviations positive. A model that loads saves and loads again
 * to the same fields.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argot/apps.h"

#define ENSURE(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: ENSURE(%s) failed\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64], path2[72];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof(path), "/tmp/argot-fuzz-lr-%ld.model", (long)getpid());
        snprintf(path2, sizeof(path2), "%s.2", path);
    }
    FILE *fp = fopen(path, "w");
    if (!fp)
        return 0;
    fwrite(data, 1, size, fp);
    fclose(fp);
    ag_lr_model m;
    ag_errbuf err = {0, ""};
    int rc = ag_lr_model_load(path, &m, &err);
    if (rc < 0) {
        ENSURE(err.msg[0] != '\0');
        ENSURE(m.names == NULL && m.share == NULL && m.weights == NULL);
    } else {
        ENSURE(m.me < 2 && m.label_rank < 2);
        ENSURE(strcmp(m.party, m.parties[m.me]) == 0);
        ENSURE(m.nweights == m.cols[0] + m.cols[1] + 1);
        for (size_t j = 0; j < m.cols[m.me]; j++)
            ENSURE(m.names[j] != NULL && m.std[j] > 0);
        if (ag_lr_model_save(&m, path2, &err) == 0) {
            ag_lr_model l;
            ENSURE(ag_lr_model_load(path2, &l, &err) == 0);
            ENSURE(l.nweights == m.nweights && l.me == m.me && strcmp(l.id, m.id) == 0);
            ENSURE(memcmp(l.share, m.share, m.nweights * ag_field_bytes(m.field)) == 0);
            ag_lr_model_cleanup(&l);
            unlink(path2);
        }
        ag_lr_model_cleanup(&m);
    }
    unlink(path);
    return 0;
}
