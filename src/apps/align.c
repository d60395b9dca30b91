/*
 * Row alignment for vertically partitioned jobs (apps.h, ag_apps_align):
 * an inner-join PSI to a private temporary file, read back as a table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argot/apps.h"

int ag_apps_align(ag_fed *f, const char *input, const char *const *keys, size_t nkeys,
                  ag_table **out, ag_errbuf *err)
{
    *out = NULL;
    if (ag_fed_size(f) != 2)
        return ag_errbuf_set(err, AG_E_INVAL, "aligning rows by key is a two-party PSI; this "
                             "job has %u parties", ag_fed_size(f));
    /* a private name for the output: ag_psi_run writes it through a
     * temporary name and renames it there */
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[600];
    snprintf(dir, sizeof(dir), "%s/argot-align-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return ag_errbuf_set(err, AG_E_IO, "%s: cannot create a temporary directory: %s", dir,
                             strerror(errno));
    snprintf(path, sizeof(path), "%s/aligned.csv", dir);
    ag_psi_opts o;
    ag_psi_opts_init(&o);
    o.input = input;
    o.keys = keys;
    o.nkeys = nkeys;
    o.output = path;
    o.receiver = "both";
    o.join = AG_PSI_INNER;
    o.session = "argot-align";
    o.tmpdir = dir;
    int rc = ag_psi_run(ag_fed_link(f), &o, NULL, err);
    if (rc == 0) {
        rc = ag_table_read_csv(path, out, err->msg, sizeof(err->msg));
        if (rc < 0)
            err->code = rc;
    }
    unlink(path);
    rmdir(dir);
    return rc;
}
