/*
 * String helpers: edit distance and "did you mean" suggestions, used by
 * every error that names something the user misspelt (a config key, a
 * subcommand, a CSV column, a flag).
 */
#include <string.h>

#include "argot/base.h"

#define EDIT_MAX 255

size_t ag_edit_distance(const char *a, const char *b)
{
    size_t la = strnlen(a, EDIT_MAX), lb = strnlen(b, EDIT_MAX);
    size_t row[EDIT_MAX + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
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
