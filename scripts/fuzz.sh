#!/bin/sh
# Runs every fuzz target built under BUILD for SECONDS each, starting from its
# committed corpus (fuzz/corpus/<target>/), which also replays every earlier
# regression input. New interesting inputs go to a scratch directory, not
# the repository. A crash is copied into the corpus as a regression input
# (commit it with the fix) and fails the run.
# Usage: scripts/fuzz.sh BUILD SECONDS
set -u
BUILD=${1:-build/fuzz}
SECONDS_EACH=${2:-10}
passed=0
failed=0
# a UBSan report is a failure, not a log line
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for bin in "$BUILD"/fuzz/*; do
    [ -x "$bin" ] || continue
    t=$(basename "$bin")
    corpus=fuzz/corpus/$t
    mkdir -p "$corpus"
    scratch=$(mktemp -d /tmp/argot-fuzz-"$t".XXXXXX)
    mkdir -p "$scratch/new" "$scratch/artifacts"
    if "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$scratch/artifacts/" -print_final_stats=1 \
        "$scratch/new" "$corpus" >"$scratch/log" 2>&1; then
        runs=$(grep -E '^stat::number_of_executed_units' "$scratch/log" | awk '{print $2}')
        echo "ok   $t (${runs:-?} inputs in ${SECONDS_EACH} s)"
        passed=$((passed + 1))
    else
        echo "FAIL $t"
        tail -n 40 "$scratch/log"
        for a in "$scratch"/artifacts/*; do
            [ -f "$a" ] || continue
            cp "$a" "$corpus/regress-$(basename "$a")"
            echo "  kept $corpus/regress-$(basename "$a") as a regression input"
        done
        failed=$((failed + 1))
    fi
    rm -rf "$scratch"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
