/*
 * Fuzz target for the console's JSON API forms (src/console/form.c,
 * ag__console_form_parse): the bytes are a request body, parsed as a
 * proposal and as a decision. A body either parses, with every field a
 * NUL-terminated string within its size and no error, or fails with at
 * least one field named in the errors object. No crash, leak or undefined
 * behaviour. The files a form names are not opened (that is
 * ag__console_form_check_files, which the integration test drives).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/internal.h"

#define ENSURE(cond)                                                                   \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: ENSURE(%s) failed\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                   \
        }                                                                              \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cluster(ag_cluster *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->n = 2;
    snprintf(cl->names[0], sizeof(cl->names[0]), "alice");
    snprintf(cl->names[1], sizeof(cl->names[1]), "bob");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ag_cluster cl;
    if (!cl.n)
        cluster(&cl);
    for (int decide = 0; decide < 2; decide++) {
        json_t *errors = json_object();
        if (!errors)
            return 0;
        ag__console_form f;
        int rc = ag__console_form_parse(data, size, decide, &cl, &f, errors);
        ENSURE(rc == 0 || rc == AG_E_INVAL || rc == AG_E_NOMEM);
        if (rc == 0) {
            ENSURE(json_object_size(errors) == 0);
            ENSURE(memchr(f.input, 0, sizeof(f.input)));
            ENSURE(f.input[0] || (decide && !f.approve)); /* declining names no file */
            ENSURE(memchr(f.keys, 0, sizeof(f.keys)) && memchr(f.output, 0, sizeof(f.output)));
            ENSURE(decide || strcmp(f.kind, "psi") == 0 || strcmp(f.kind, "lr-train") == 0 ||
                   (strcmp(f.kind, "lr-predict") == 0 && f.model[0] &&
                    strchr(f.lr.label, ':')) ||
                   (strcmp(f.kind, "stats") == 0 && f.st.stats[0] && f.st.reveal_to[0]));
            ENSURE(decide || strcmp(f.kind, "lr-train") != 0 ||
                   (f.lr.epochs >= 1 && f.lr.batch_size >= 1 && f.lr.learning_rate > 0 &&
                    f.lr.learning_rate <= 10 && strchr(f.lr.label, ':') && f.output[0]));
            ENSURE(!decide || ag__console_id_valid(f.id));
            ENSURE(!f.receiver[0] || strcmp(f.receiver, "both") == 0 ||
                   ag_cluster_rank(&cl, f.receiver) >= 0);
        } else if (rc == AG_E_INVAL) {
            ENSURE(json_object_size(errors) > 0);
        }
        json_decref(errors);
    }
    return 0;
}
