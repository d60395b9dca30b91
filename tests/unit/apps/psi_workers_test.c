/*
 * Tests for src/apps/psi_workers.c (the files a PSI coordinator shares with
 * its workers) and the adoption of a worker's runs by psi_store.c: the
 * plan and a result round-trip; a malformed or missing file is an error
 * naming it; runs written to two workers' named files merge, adopted by a
 * third runs object, into one output sorted by key.
 */
#include <sys/stat.h>

#include "apps/internal.h"
#include "test.h"

TEST(psi_workers_plan_round_trip_and_errors)
{
    const char *dir = ag_test_tmpdir();
    ag_errbuf err;
    ag_errbuf_clear(&err);
    struct psi_plan p = {.rows = 1000000, .peer_rows = 7, .buckets = 4, .workers = 2,
                         .keep_rows = true},
                    q;
    CHECK_EQ(ag__psi_plan_read(dir, &q, &err), AG_E_IO);
    CHECK_CONTAINS(err.msg, "/plan: no such file");
    CHECK_OK(ag__psi_plan_write(dir, &p, &err));
    CHECK_OK(ag__psi_plan_read(dir, &q, &err));
    CHECK_U64_EQ(q.rows, 1000000);
    CHECK_U64_EQ(q.peer_rows, 7);
    CHECK_U64_EQ(q.buckets, 4);
    CHECK_EQ(q.workers, 2);
    CHECK(q.keep_rows);
    static const char *const bad[] = {
        "rows 1\npeer_rows 1\nbuckets 1\nworkers 0\nkeep_rows 0\n",
        "rows 1\npeer_rows 1\nbuckets 1\nworkers 2\n",
        "rows -1\npeer_rows 1\nbuckets 1\nworkers 2\nkeep_rows 0\n",
        "rows 1x\npeer_rows 1\nbuckets 1\nworkers 2\nkeep_rows 0\n",
        "rows 1\npeer_rows 1\nbuckets 1\nworkers 2\nkeep_rows 3\n",
    };
    char path[4096];
    ag__psi_wpath(path, sizeof(path), dir, PSI_NO_WORKER, "plan");
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        CHECK_OK(ag__psi_file_put(path, bad[i], &err));
        CHECK_EQ(ag__psi_plan_read(dir, &q, &err), AG_E_IO);
        CHECK_CONTAINS(err.msg, "/plan: malformed");
    }
}

/* Appends groups of one-row keys keys[0..n) (one column each) as one run. */
static void add_run(struct psi_runs *r, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t key[64], row[64];
        size_t kl = strlen(keys[i]);
        psi_put_u32(key, (uint32_t)kl);
        memcpy(key + 4, keys[i], kl);
        psi_put_u32(row, (uint32_t)kl); /* the row's one field: the key */
        memcpy(row + 4, keys[i], kl);
        struct psi_row pr = {.line = i + 2, .key = ag_slice_make(key, 4 + kl),
                             .fields = ag_slice_make(row, 4 + kl)};
        CHECK_OK(ag__psi_runs_add(r, pr.key, 1, &pr, 1));
    }
    CHECK_OK(ag__psi_runs_end(r));
}

TEST(psi_workers_results_and_adopted_runs_merge)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/job", ag_test_tmpdir());
    CHECK(mkdir(dir, 0700) == 0);
    ag_errbuf err;
    ag_errbuf_clear(&err);
    static const char *const w0a[] = {"a", "d"}, *const w0b[] = {"b"}, *const w1[] = {"c", "e"};
    struct psi_runs *r0, *r1;
    char path[4096];
    ag__psi_wpath(path, sizeof(path), dir, 0, "inter");
    CHECK_OK(ag__psi_runs_new_file(&r0, path, &err));
    CHECK_EQ(ag__psi_runs_new_file(&r1, path, &err), AG_E_EXISTS);
    ag__psi_wpath(path, sizeof(path), dir, 1, "inter");
    CHECK_OK(ag__psi_runs_new_file(&r1, path, &err));
    add_run(r0, w0a, 2);
    add_run(r0, w0b, 1);
    add_run(r1, w1, 2);
    CHECK_OK(ag__psi_runs_flush(r0));
    CHECK_OK(ag__psi_runs_flush(r1));
    struct psi_wresult res = {.intersection = 3, .matched_rows = 3, .na_rows = 1,
                              .bytes_sent = 10, .bytes_recv = 20},
                       got;
    CHECK_EQ(ag__psi_result_read(dir, 0, &got, &err), 0); /* not yet */
    CHECK_OK(ag__psi_result_write(dir, 0, &res, r0, NULL, &err));
    CHECK_OK(ag__psi_result_write(dir, 1, &res, r1, NULL, &err));
    CHECK_EQ(ag__psi_result_read(dir, 0, &got, &err), 1);
    CHECK_U64_EQ(got.intersection, 3);
    CHECK_U64_EQ(got.na_rows, 1);
    CHECK_U64_EQ(got.bytes_recv, 20);
    CHECK_EQ(got.ninter, 2);
    CHECK_EQ(got.nexcept, 0);

    /* the coordinator's merge: both workers' runs adopted */
    struct psi_runs *m;
    CHECK_OK(ag__psi_runs_new(&m, dir, &err));
    ag__psi_wpath(path, sizeof(path), dir, 0, "inter");
    CHECK_OK(ag__psi_runs_adopt(m, path, got.inter, got.ninter));
    ag__psi_result_cleanup(&got);
    CHECK_EQ(ag__psi_result_read(dir, 1, &got, &err), 1);
    ag__psi_wpath(path, sizeof(path), dir, 1, "inter");
    CHECK_OK(ag__psi_runs_adopt(m, path, got.inter, got.ninter));
    /* a run beyond the file's end is refused */
    struct psi_runs *other;
    CHECK_OK(ag__psi_runs_new(&other, dir, &err));
    uint64_t beyond[2] = {got.inter[0], got.inter[1] + 1000};
    CHECK_EQ(ag__psi_runs_adopt(other, path, beyond, 1), AG_E_IO);
    CHECK_CONTAINS(err.msg, "is not in the file");
    ag__psi_runs_free(other);
    ag__psi_result_cleanup(&got);
    ag_csv_writer *w = ag_csv_writer_new(NULL);
    CHECK(w != NULL);
    const char *out = ag_test_path("merged.csv");
    CHECK_OK(ag_csv_writer_open(w, out));
    uint64_t written = 0;
    CHECK_OK(ag__psi_runs_merge(m, w, 1, true, &written));
    CHECK_OK(ag_csv_writer_close(w));
    CHECK_U64_EQ(written, 5);
    CHECK_STR_EQ(ag_test_read_file(out), "a\nb\nc\nd\ne\n");
    ag__psi_runs_free(m);
    ag__psi_runs_free(r0);
    ag__psi_runs_free(r1);

    /* a malformed result names its file */
    ag__psi_wpath(path, sizeof(path), dir, 1, "done");
    CHECK_OK(ag__psi_file_put(path, "intersection 1\ninter 1\n5\n", &err));
    CHECK_EQ(ag__psi_result_read(dir, 1, &got, &err), AG_E_IO);
    CHECK_CONTAINS(err.msg, "w1.done: malformed");
    ag__psi_dir_remove(dir);
    struct stat st;
    CHECK(stat(dir, &st) != 0);
}
