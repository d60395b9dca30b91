/*
 * String helpers: edit distance (with transpositions) and "did you mean"
 * suggestions, used by
 * every error that names something the user misspelt (a config key, a
 * subcommand, a CSV column, a flag).
 */
#include <string.h>

#include "argot/base.h"

#define EDIT_MAX 255

size_t ag_edit_distance(const char *a, const char *b)
{
    /* optimal string alignment: Levenshtein plus adjacent transpositions,
     * so "alcie" is one edit from "alice"; rows i-2, i-1 and i */
    size_t la = strnlen(a, EDIT_MAX), lb = strnlen(b, EDIT_MAX);
    size_t rows[3][EDIT_MAX + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *ag_nearest(const char *word, const char *const *candidates)
{
    size_t limit = strlen(word) / 3;
    if (limit < 1)
        limit = 1;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (const char *const *c = candidates; *c; c++) {
        size_t d = ag_edit_distance(word, *c);
        if (d < best_d) {
            best_d = d;
            best = *c;
        }
    }
    return best;
}
