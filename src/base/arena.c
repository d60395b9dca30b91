/*
 * Arena: bump allocation from a list of chunks, released in one step.
 *
 * Invariants:
 *   1. every pointer handed out is 16-byte aligned and lies in one chunk;
 *   2. used counts the bytes handed out since the last reset (with
 *      alignment padding), and never exceeds max when max != 0;
 *   3. reset keeps the first chunk (the one of the usual size) and frees the
 *      rest; a secret arena wipes every byte it handed out first.
 * Requests larger than a quarter of the chunk size get a chunk of their own,
 * so one big allocation never wastes the rest of a chunk.
 */
#include <string.h>

#include "argot/base.h"

#define ALIGN 16u
#define DEFAULT_CHUNK (64u * 1024u)

struct chunk {
    struct chunk *next;
    size_t size; /* usable bytes after the header */
    size_t off;  /* bytes used */
    _Alignas(16) unsigned char data[];
};

struct ag_arena {
    struct chunk *head; /* current chunk first */
    size_t chunk;       /* usual chunk size */
    size_t max;         /* 0: no limit */
    size_t used;
    unsigned flags;
};

ag_arena *ag_arena_new(size_t chunk, size_t max, unsigned flags)
{
    ag_arena *a = ag_calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->chunk = chunk ? chunk : DEFAULT_CHUNK;
    a->max = max;
    a->flags = flags;
    return a;
}

static void chunk_release(ag_arena *a, struct chunk *c)
{
    if (a->flags & AG_ARENA_SECRET)
        ag_wipe(c->data, c->off);
    ag_free(c);
}

void ag_arena_free(ag_arena *a)
{
    if (!a)
        return;
    for (struct chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        chunk_release(a, c);
    }
    ag_free(a);
}

void ag_arena_reset(ag_arena *a)
{
    struct chunk *keep = NULL;
    for (struct chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        if (!keep && c->size == a->chunk) {
            if (a->flags & AG_ARENA_SECRET)
                ag_wipe(c->data, c->off);
            c->off = 0;
            c->next = NULL;
            keep = c;
        } else {
            chunk_release(a, c);
        }
    }
    a->head = keep;
    a->used = 0;
}

static struct chunk *chunk_new(size_t size)
{
    if (size > SIZE_MAX - sizeof(struct chunk))
        return NULL;
    struct chunk *c = ag_malloc(sizeof(*c) + size);
    if (!c)
        return NULL;
    c->size = size;
    c->off = 0;
    c->next = NULL;
    return c;
}

void *ag_arena_alloc(ag_arena *a, size_t n)
{
    if (n > SIZE_MAX - ALIGN)
        return NULL;
    size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (need == 0)
        need = ALIGN;
    if (a->max && need > a->max - a->used)
        return NULL;
    struct chunk *c = a->head;
    if (!c || c->size - c->off < need) {
        if (need > a->chunk / 4) {
            /* a dedicated chunk, linked after the current one */
            struct chunk *big = chunk_new(need);
            if (!big)
                return NULL;
            if (c) {
                big->next = c->next;
                c->next = big;
            } else {
                a->head = big;
            }
            big->off = need;
            a->used += need;
            return big->data;
        }
        c = chunk_new(a->chunk);
        if (!c)
            return NULL;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->off;
    c->off += need;
    a->used += need;
    return p;
}

void *ag_arena_calloc(ag_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = ag_arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

char *ag_arena_strndup(ag_arena *a, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = ag_arena_alloc(a, len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

size_t ag_arena_used(const ag_arena *a)
{
    return a->used;
}
