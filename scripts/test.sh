#!/bin/sh
# make test: build, then the unit tests plain and under ASan+UBSan, the
# integration tests (plain and sanitized binaries), and a short fuzz pass.
# Each stage prints "<stage>: N passed, N failed"; the last line is the
# total, and the exit status is 1 if anything failed.
set -u
cd "$(dirname "$0")/.."

J=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${FUZZ_SECONDS:-8}
LOG=$(mktemp -d /tmp/argot-test-log.XXXXXX)
trap 'rm -rf "$LOG"' EXIT
passed=0
failed=0

# tally FILE: adds the counts of the last "N passed, N failed" line in FILE;
# a stage that printed none (it crashed, or did not build) counts as a failure.
tally() {
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    if [ -z "$line" ]; then
        failed=$((failed + 1))
        return
    fi
    p=$(echo "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) passed, ([0-9]+) failed.*/\2/')
    f=$(echo "$line" | sed -E 's/^(.*[^0-9])?([0-9]+) passed, ([0-9]+) failed.*/\3/')
    passed=$((passed + p))
    failed=$((failed + f))
}

START=$(date +%s)
# elapsed: seconds since the start, for each stage's header
elapsed() {
    echo "$(($(date +%s) - START)) s"
}

# build LABEL ARGS...: runs make; a failed build is one failed test.
build() {
    label=$1
    shift
    echo "== build ($label) at $(elapsed)"
    if ! make --no-print-directory -j"$J" "$@" >"$LOG/build-$label" 2>&1; then
        cat "$LOG/build-$label"
        echo "$label build: 0 passed, 1 failed"
        failed=$((failed + 1))
        return 1
    fi
    return 0
}

# stage LABEL CMD...: runs a test program, showing and tallying its output.
stage() {
    label=$1
    shift
    echo "== $label at $(elapsed)"
    "$@" 2>&1 | tee "$LOG/$label"
    tally "$LOG/$label"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if build plain test-bins; then
    stage unit build/test/unit -j "$J" --label unit
    # the mpc suite again with the trusted-third-party dealer (tests/unit/mpc/parties.h)
    ARGOT_TEST_BEAVER=ttp stage unit-ttp build/test/unit -j "$J" --label unit-ttp \
        mpc_ semi2k_ xcache_
    ARGOT_BIN_DIR=build/bin stage integration build/test/integration -j "$J" --label integration
fi
if build sanitize SANITIZE=address,undefined test-bins; then
    stage unit-asan build/san/test/unit -j "$J" --timeout 180 --label unit-asan
    ARGOT_TEST_BEAVER=ttp stage unit-ttp-asan build/san/test/unit -j "$J" --timeout 180 \
        --label unit-ttp-asan mpc_ semi2k_ xcache_
    ARGOT_BIN_DIR=build/san/bin stage integration-asan build/san/test/integration -j "$J" \
        --timeout 180 --label integration-asan
fi
if build fuzz BUILD=build/fuzz CC=clang SANITIZE=fuzzer-no-link,address,undefined fuzz-bins; then
    stage fuzz sh scripts/fuzz.sh build/fuzz "$FUZZ_SECONDS"
fi

echo "total: $passed passed, $failed failed in $(elapsed)"
[ "$failed" -eq 0 ]
