/*
 * argot's test harness: registration, checks, and helpers for tests that
 * drive real processes.
 *
 *   TEST(name) { ... }       a test; each runs in its own child process with
 *                            a timeout, and must free everything it allocated
 *   TEST_FM(name) { ... }    a test that is also run once per allocation it
 *                            makes, with that allocation failing (failmalloc);
 *                            write it with FM_TRY / FM_NEW and an `out:` label
 *                            that frees everything, and every run must end
 *                            with nothing leaked
 *   TEST_TIMEOUT(name, s)    a test with its own timeout in seconds
 *
 * Checks print "file:line: what failed: details" and end the test.
 */
#ifndef ARGOT_TEST_H
#define ARGOT_TEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "argot/base.h"

typedef void (*ag_test_fn)(void);

struct ag_test {
    const char *name;
    const char *file;
    ag_test_fn fn;
    unsigned timeout_s; /* 0: the runner's default */
    bool failmalloc;
    struct ag_test *next;
};

void ag_test_register(struct ag_test *t);
void ag_test_fail(const char *file, int line, const char *fmt, ...) AG_PRINTF(3, 4)
    __attribute__((noreturn));

#define TEST_DEFINE_(name, fm, tmo)                                             \
    static void test_##name(void);                                              \
    static struct ag_test ag_test_rec_##name = {#name, __FILE__, test_##name,   \
                                                (tmo), (fm), NULL};             \
    __attribute__((constructor)) static void ag_test_reg_##name(void)           \
    {                                                                           \
        ag_test_register(&ag_test_rec_##name);                                  \
    }                                                                           \
    static void test_##name(void)

#define TEST(name) TEST_DEFINE_(name, false, 0)
#define TEST_FM(name) TEST_DEFINE_(name, true, 0)
#define TEST_TIMEOUT(name, s) TEST_DEFINE_(name, false, (s))

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond))                                                        \
            ag_test_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);    \
    } while (0)

#define CHECK_EQ(a, b)                                                          \
    do {                                                                        \
        long long ag_a_ = (long long)(a), ag_b_ = (long long)(b);               \
        if (ag_a_ != ag_b_)                                                     \
            ag_test_fail(__FILE__, __LINE__, "CHECK_EQ(%s, %s) failed: %lld != %lld", \
                         #a, #b, ag_a_, ag_b_);                                 \
    } while (0)

#define CHECK_U64_EQ(a, b)                                                      \
    do {                                                                        \
        uint64_t ag_a_ = (uint64_t)(a), ag_b_ = (uint64_t)(b);                  \
        if (ag_a_ != ag_b_)                                                     \
            ag_test_fail(__FILE__, __LINE__,                                    \
                         "CHECK_U64_EQ(%s, %s) failed: %" PRIu64 " != %" PRIu64, \
                         #a, #b, ag_a_, ag_b_);                                 \
    } while (0)

/* An argot return code: prints the code's name and the object's message. */
#define CHECK_OK(rc)                                                            \
    do {                                                                        \
        int ag_rc_ = (rc);                                                      \
        if (ag_rc_ < 0)                                                         \
            ag_test_fail(__FILE__, __LINE__, "CHECK_OK(%s) failed: %s (%s)", #rc, \
                         ag_err_name(ag_rc_), ag_strerror(ag_rc_));             \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                      \
    do {                                                                        \
        const char *ag_a_ = (a), *ag_b_ = (b);                                  \
        if (!ag_a_ || !ag_b_ || strcmp(ag_a_, ag_b_) != 0)                      \
            ag_test_fail(__FILE__, __LINE__,                                    \
                         "CHECK_STR_EQ(%s, %s) failed:\n  got:      \"%s\"\n  expected: \"%s\"", \
                         #a, #b, ag_a_ ? ag_a_ : "(null)", ag_b_ ? ag_b_ : "(null)"); \
    } while (0)

#define CHECK_MEM_EQ(a, b, n)                                                   \
    do {                                                                        \
        if (memcmp((a), (b), (n)) != 0)                                         \
            ag_test_fail(__FILE__, __LINE__, "CHECK_MEM_EQ(%s, %s, %s) failed", \
                         #a, #b, #n);                                           \
    } while (0)

/* Does the string haystack contain needle? */
#define CHECK_CONTAINS(haystack, needle)                                        \
    do {                                                                        \
        const char *ag_h_ = (haystack), *ag_n_ = (needle);                      \
        if (!ag_h_ || !strstr(ag_h_, ag_n_))                                    \
            ag_test_fail(__FILE__, __LINE__,                                    \
                         "CHECK_CONTAINS(%s, %s) failed:\n  in:   \"%s\"\n  want: \"%s\"", \
                         #haystack, #needle, ag_h_ ? ag_h_ : "(null)", ag_n_);  \
    } while (0)

#define FAIL(...) ag_test_fail(__FILE__, __LINE__, __VA_ARGS__)

/* failmalloc helpers (in TEST_FM bodies, which end with an `out:` label that
 * frees everything). FM_TRY(expr, want): when expr returns AG_E_NOMEM after
 * an injected failure, go to out; otherwise it must equal want. FM_NEW(p):
 * when p is NULL after an injected failure, go to out; otherwise non-NULL. */
#define FM_TRY(expr, want)                                                      \
    do {                                                                        \
        int ag_fm_rc_ = (expr);                                                 \
        if (ag_fm_rc_ == AG_E_NOMEM && ag_alloc_failed())                       \
            goto out;                                                           \
        if (ag_fm_rc_ != (want))                                                \
            ag_test_fail(__FILE__, __LINE__, "FM_TRY(%s) = %s, want %d", #expr, \
                         ag_err_name(ag_fm_rc_), (int)(want));                  \
    } while (0)
#define FM_NEW(p)                                                               \
    do {                                                                        \
        if ((p) == NULL) {                                                      \
            if (ag_alloc_failed())                                              \
                goto out;                                                       \
            ag_test_fail(__FILE__, __LINE__, "FM_NEW(%s) returned NULL", #p);   \
        }                                                                       \
    } while (0)

/* A temporary directory for this test, removed by the runner after the test
 * ends (whatever way it ends). */
const char *ag_test_tmpdir(void);
/* Writes len bytes to <tmpdir>/name and returns the full path (static
 * storage per call: copy it if you need several). */
const char *ag_test_write_file(const char *name, const void *data, size_t len);
/* A path under the test's tmpdir (rotating static storage, 8 slots). */
const char *ag_test_path(const char *name);

/* Runs a program to completion, stdin from in (may be NULL), capturing
 * stdout and stderr (each NUL-terminated, freed by ag_test_proc_cleanup). */
typedef struct ag_test_proc {
    int status;      /* exit status, or 128 + signal */
    char *out;       /* stdout */
    size_t out_len;
    char *err;       /* stderr */
    size_t err_len;
} ag_test_proc;

int ag_test_run(ag_test_proc *p, const char *const argv[], const char *in,
                unsigned timeout_s);
void ag_test_proc_cleanup(ag_test_proc *p);
/* Starts a program in the background (it stays in the test's process
 * group, so the runner kills it if the test does not). *out_fd reads its
 * stdout; its stderr goes to the test's output. Returns the pid. */
pid_t ag_test_spawn(const char *const argv[], int *out_fd);
/* Reads one line (without the newline) from fd within timeout_s; returns
 * its length, or -1 at the end or on timeout. */
ssize_t ag_test_read_line(int fd, char *buf, size_t cap, unsigned timeout_s);
/* SIGTERM, then SIGKILL after 2 s; reaps it; returns its exit status (or
 * 128 + signal). */
int ag_test_stop(pid_t pid);
/* Waits up to timeout_s for it to exit (then SIGKILL); returns its exit
 * status (or 128 + signal). */
int ag_test_wait(pid_t pid, unsigned timeout_s);
/* $ARGOT_BIN_DIR/name (default build/bin/name). Static storage, 8 slots. */
const char *ag_test_bin(const char *name);
/* A loopback TCP port nothing listens on right now (the kernel's pick). */
int ag_test_free_port(void);
/* The whole file at path, NUL-terminated (rotating static storage, 8 slots
 * of 256 KiB); fails the test if it cannot be read or does not fit. */
const char *ag_test_read_file(const char *path);
/* How many entries of the test's tmpdir have names starting with prefix. */
int ag_test_count_files(const char *prefix);
/* How many lines <tmpdir>/name has (0 if it does not exist). */
int ag_test_count_lines(const char *name);
/* One HTTP/1.1 request to 127.0.0.1:port (method "GET", "POST", ...; body
 * may be NULL) with "Connection: close"; the whole response (status line,
 * headers, body) as a malloc'd string, or NULL if the connection failed. */
char *ag_test_http(int port, const char *method, const char *path, const char *body);
/* A test program (tests/progs/name.c): $ARGOT_BIN_DIR/../test/name. */
const char *ag_test_prog(const char *name);

#endif /* ARGOT_TEST_H */
