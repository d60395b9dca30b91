/*
 * Allocation wrappers with failure injection, and wiping.
 *
 * Every allocation in argot goes through ag_malloc() and friends so that the
 * test runner can (1) count the allocations a test makes, (2) make the k-th
 * one fail, and (3) check that no block is still live when the test ends
 * (nghttp2's failmalloc, curl's torture mode). With tracking off, the cost
 * is one relaxed atomic load per call.
 *
 * Invariants: the counters change only while tracking is on; a block
 * allocated before tracking began and freed after it makes live go negative,
 * which the runner reports like a leak, so tracking starts before a test's
 * first allocation.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "argot/base.h"

static atomic_bool tracking;
static atomic_uint_fast64_t count;   /* allocations since tracking began */
static atomic_int_fast64_t live;     /* allocations minus frees */
static atomic_uint_fast64_t fail_at; /* 1-based index of the call to fail; 0: none */
static atomic_bool failed;

void ag_alloc_tracking(bool on)
{
    atomic_store(&count, 0);
    atomic_store(&live, 0);
    atomic_store(&failed, false);
    atomic_store(&tracking, on);
}

void ag_alloc_fail_at(uint64_t k)
{
    atomic_store(&fail_at, k);
}

uint64_t ag_alloc_count(void)
{
    return atomic_load(&count);
}

int64_t ag_alloc_live(void)
{
    return atomic_load(&live);
}

bool ag_alloc_failed(void)
{
    return atomic_load(&failed);
}

/* Counts one allocation; returns false if this one must fail. */
static bool alloc_admit(void)
{
    if (!atomic_load_explicit(&tracking, memory_order_relaxed))
        return true;
    uint64_t n = atomic_fetch_add(&count, 1) + 1;
    uint64_t k = atomic_load(&fail_at);
    if (k != 0 && n == k) {
        atomic_store(&failed, true);
        return false;
    }
    return true;
}

static void *counted(void *p)
{
    if (p && atomic_load_explicit(&tracking, memory_order_relaxed))
        atomic_fetch_add(&live, 1);
    return p;
}

/* Large blocks (whole messages of tens of MiB, tensors) would take a page
 * fault per 4 KiB on first touch, which costs more than the copy that
 * fills them: ask for transparent huge pages on their 2 MiB-aligned
 * interior (one fault per 2 MiB where the system allows it; a hint only). */
#define HUGE_FROM (8u << 20)
#define HUGE_PAGE (2u << 20)

static void *hint_huge(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    if (p && n >= HUGE_FROM) {
        uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
        uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)(HUGE_PAGE - 1);
        if (e > a)
            madvise((void *)a, e - a, MADV_HUGEPAGE);
    }
#else
    (void)n;
#endif
    return p;
}

void *ag_malloc(size_t n)
{
    if (!alloc_admit())
        return NULL;
    return counted(hint_huge(malloc(n ? n : 1), n));
}

void *ag_calloc(size_t nmemb, size_t size)
{
    if (!alloc_admit())
        return NULL;
    if (nmemb == 0 || size == 0)
        nmemb = size = 1;
    return counted(hint_huge(calloc(nmemb, size), nmemb * size));
}

void *ag_realloc(void *p, size_t n)
{
    if (p == NULL)
        return ag_malloc(n);
    if (!alloc_admit())
        return NULL;
    return hint_huge(realloc(p, n ? n : 1), n);
}

void *ag_reallocarray(void *p, size_t nmemb, size_t size)
{
    if (size != 0 && nmemb > SIZE_MAX / size)
        return NULL;
    return ag_realloc(p, nmemb * size);
}

void ag_free(void *p)
{
    if (p == NULL)
        return;
    if (atomic_load_explicit(&tracking, memory_order_relaxed))
        atomic_fetch_sub(&live, 1);
    free(p);
}

char *ag_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = ag_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

void *ag_memdup(const void *p, size_t n)
{
    void *d = ag_malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

char *ag_strdup(const char *s)
{
    return ag_strndup(s, SIZE_MAX);
}

void ag_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}
