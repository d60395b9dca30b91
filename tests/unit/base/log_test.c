/* Tests for src/base/log.c: levels, the sink, one line per event. */
#include "test.h"

struct capture {
    int calls;
    ag_log_level level;
    char module[32];
    char msg[4096];
};

static void sink(void *ud, ag_log_level level, const char *module, const char *msg)
{
    struct capture *c = ud;
    c->calls++;
    c->level = level;
    snprintf(c->module, sizeof(c->module), "%s", module);
    snprintf(c->msg, sizeof(c->msg), "%s", msg);
}

static int evaluated;
static int side_effect(void)
{
    return ++evaluated;
}

TEST(log_levels_and_sink)
{
    struct capture c = {0};
    ag_log_set_sink(sink, &c);
    ag_log_set_level(AG_LOG_WARN);
    AG_LOG(AG_LOG_INFO, "rpc", "conn_open n=%d", side_effect());
    CHECK_EQ(c.calls, 0);
    CHECK_EQ(evaluated, 0); /* arguments not evaluated below the level */
    AG_LOG(AG_LOG_ERROR, "rpc", "conn_fail peer=%s code=%d", "10.0.0.2:9100", 7);
    CHECK_EQ(c.calls, 1);
    CHECK_EQ(c.level, AG_LOG_ERROR);
    CHECK_STR_EQ(c.module, "rpc");
    CHECK_STR_EQ(c.msg, "conn_fail peer=10.0.0.2:9100 code=7");
    /* a newline in a value cannot forge a second line */
    AG_LOG(AG_LOG_WARN, "csv", "bad name=%s", "a\nINFO forged");
    CHECK_STR_EQ(c.msg, "bad name=a INFO forged");
    ag_log_set_level(AG_LOG_OFF);
    AG_LOG(AG_LOG_ERROR, "rpc", "x");
    CHECK_EQ(c.calls, 2);
    ag_log_set_sink(NULL, NULL);
    ag_log_set_level(AG_LOG_INFO);
}

TEST(log_level_names)
{
    CHECK_EQ(ag_log_level_parse("debug"), AG_LOG_DEBUG);
    CHECK_EQ(ag_log_level_parse("warn"), AG_LOG_WARN);
    CHECK_EQ(ag_log_level_parse("loud"), -1);
    CHECK_STR_EQ(ag_log_level_name(AG_LOG_ERROR), "error");
}
