/*
 * Logging: one line per event, key=value fields, through a sink.
 *
 * The level and the sink are process-wide and may be changed from any
 * thread; a line is formatted into a stack buffer and handed to the sink in
 * one call, so lines from different threads never interleave within a line.
 * The default sink writes "<UTC time> <LEVEL> <module> <message>\n" to stderr
 * with one write(2).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "argot/base.h"

#define LINE_MAX_BYTES 2048

static atomic_int log_level = AG_LOG_INFO;
static _Atomic(ag_log_sink) log_sink;
static _Atomic(void *) log_ud;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};
static const char *const level_tags[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};

void ag_log_set_level(ag_log_level level)
{
    atomic_store(&log_level, (int)level);
}

ag_log_level ag_log_get_level(void)
{
    return (ag_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

int ag_log_level_parse(const char *s)
{
    for (size_t i = 0; i < AG_ARRAY_LEN(level_names); i++)
        if (strcmp(s, level_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *ag_log_level_name(ag_log_level level)
{
    return (unsigned)level < AG_ARRAY_LEN(level_names) ? level_names[level] : "?";
}

void ag_log_set_sink(ag_log_sink sink, void *ud)
{
    atomic_store(&log_ud, ud);
    atomic_store(&log_sink, sink);
}

static void default_sink(ag_log_level level, const char *module, const char *msg)
{
    char line[LINE_MAX_BYTES + 128];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_tags[level], module, msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w; /* nowhere to report a failure to log */
}

void ag__log(ag_log_level level, const char *module, const char *fmt, ...)
{
    if ((unsigned)level >= AG_LOG_OFF)
        return;
    char msg[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(msg))
        memcpy(msg + sizeof(msg) - 4, "...", 4);
    /* one event, one line: a newline inside a value would forge a line */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    ag_log_sink sink = atomic_load(&log_sink);
    if (sink)
        sink(atomic_load(&log_ud), level, module, msg);
    else
        default_sink(level, module, msg);
}
