#!/bin/sh
# Runs every fuzz target built under BUILD for SECONDS each, starting from its
# committed corpus (fuzz/corpus/<target>/), which also replays every earlier
# regression input. New interesting inputs go to a scratch directory, not
# the repository. A crash is copied into the corpus as a regression input
# (commit it with the fix) and fails the run. Targets run JOBS at a time
# (default: the number of CPUs), each single-threaded.
# Usage: scripts/fuzz.sh BUILD SECONDS [JOBS]
#        scripts/fuzz.sh --one BIN SECONDS   (one target; what the first form runs)
set -u
# a UBSan report is a failure, not a log line
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ "${1:-}" = "--one" ]; then
    bin=$2
    SECONDS_EACH=$3
    t=$(basename "$bin")
    corpus=fuzz/corpus/$t
    mkdir -p "$corpus"
    scratch=$(mktemp -d /tmp/argot-fuzz-"$t".XXXXXX)
    mkdir -p "$scratch/new" "$scratch/artifacts"
    if "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$scratch/artifacts/" -print_final_stats=1 \
        "$scratch/new" "$corpus" >"$scratch/log" 2>&1; then
        runs=$(grep -E '^stat::number_of_executed_units' "$scratch/log" | awk '{print $2}')
        out="ok   $t (${runs:-?} inputs in ${SECONDS_EACH} s)"
    else
        out="FAIL $t
$(tail -n 40 "$scratch/log")"
        for a in "$scratch"/artifacts/*; do
            [ -f "$a" ] || continue
            cp "$a" "$corpus/regress-$(basename "$a")"
            out="$out
  kept $corpus/regress-$(basename "$a") as a regression input"
        done
    fi
    rm -rf "$scratch"
    # one write, so that parallel targets' reports do not interleave
    printf '%s\n' "$out"
    exit 0
fi

BUILD=${1:-build/fuzz}
SECONDS_EACH=${2:-10}
JOBS=${3:-$(nproc 2>/dev/null || echo 2)}
results=$(mktemp /tmp/argot-fuzz-results.XXXXXX)
trap 'rm -f "$results"' EXIT
for bin in "$BUILD"/fuzz/*; do
    [ -x "$bin" ] && echo "$bin"
done | xargs -P "$JOBS" -I{} sh "$0" --one {} "$SECONDS_EACH" | tee "$results"
passed=$(grep -c '^ok   ' "$results")
failed=$(grep -c '^FAIL ' "$results")
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
