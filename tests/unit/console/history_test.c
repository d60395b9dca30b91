/*
 * Tests for src/console/history.c: a job's record survives closing and
 * reopening the SQLite file, is replaced on change, and a job recorded as
 * running comes back interrupted.
 */
#include "console/internal.h"
#include "test.h"

static ag__job *job(const char *id, ag__job_state s)
{
    ag__job *j = ag_calloc(1, sizeof(*j));
    CHECK(j != NULL);
    snprintf(j->id, sizeof(j->id), "%s", id);
    snprintf(j->kind, sizeof(j->kind), "psi");
    snprintf(j->proposer, sizeof(j->proposer), "alice");
    j->nparties = 2;
    snprintf(j->parties[0], sizeof(j->parties[0]), "alice");
    snprintf(j->parties[1], sizeof(j->parties[1]), "bob");
    j->decision[0] = 1;
    j->decision[1] = -1;
    snprintf(j->keys, sizeof(j->keys), "id");
    snprintf(j->input, sizeof(j->input), "/d/a.csv");
    j->mine_set = true;
    j->state = s;
    j->created_ms = 1000;
    return j;
}

TEST(console_history_keeps_jobs_across_reopening)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/h.db", ag_test_tmpdir());
    ag_errbuf err = {0};
    ag__history *h = ag__history_open(path, &err);
    if (!h)
        FAIL("%s", err.msg);
    ag__job *a = job("a-1", AG__JOB_PROPOSED), *b = job("b-2", AG__JOB_RUNNING);
    b->created_ms = 2000;
    b->started_ms = 2100;
    CHECK_OK(ag__history_save(h, a));
    CHECK_OK(ag__history_save(h, b));
    a->state = AG__JOB_DONE;
    a->result = json_pack("{s:i}", "intersection", 2);
    a->finished_ms = 1500;
    CHECK_OK(ag__history_save(h, a)); /* replaced, not added */
    ag__history_close(h);
    ag__job_free_list(a);
    ag__job_free_list(b);

    h = ag__history_open(path, &err);
    CHECK(h != NULL);
    ag__job *list = NULL;
    CHECK_EQ(ag__history_load(h, &list, &err), 2);
    CHECK_STR_EQ(list->id, "a-1");
    CHECK_EQ(list->state, AG__JOB_DONE);
    CHECK_EQ(json_integer_value(json_object_get(list->result, "intersection")), 2);
    CHECK_EQ(list->nparties, 2);
    CHECK_STR_EQ(list->parties[1], "bob");
    CHECK_EQ(list->decision[1], -1);
    CHECK_STR_EQ(list->input, "/d/a.csv");
    CHECK(list->mine_set);
    ag__job *r = list->next;
    CHECK_STR_EQ(r->id, "b-2");
    CHECK_EQ(r->state, AG__JOB_INTERRUPTED);
    CHECK_CONTAINS(r->error, "the console stopped while the job ran");
    CHECK(r->finished_ms > 0);
    CHECK(r->next == NULL);
    ag__job_free_list(list);
    ag__history_close(h);

    /* interrupted is what was saved, too */
    h = ag__history_open(path, &err);
    CHECK_EQ(ag__history_load(h, &list, &err), 2);
    CHECK_EQ(list->next->state, AG__JOB_INTERRUPTED);
    ag__job_free_list(list);
    ag__history_close(h);
}

TEST(console_history_names_an_unusable_file)
{
    ag_errbuf err = {0};
    CHECK(ag__history_open("/nonexistent/dir/h.db", &err) == NULL);
    CHECK_CONTAINS(err.msg, "/nonexistent/dir/h.db: ");
    ag__job_free_list(NULL);
    CHECK_STR_EQ(ag__job_state_name(AG__JOB_DECLINED), "declined");
    CHECK_EQ(ag__job_state_parse("interrupted"), AG__JOB_INTERRUPTED);
    CHECK_EQ(ag__job_state_parse("nope"), -1);
}
