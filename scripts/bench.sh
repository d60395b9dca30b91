#!/bin/sh
# Runs every benchmark built under BUILD/bench; each prints its own table,
# with the peer it is measured against in the same run. Timings are figures
# to read, never pass/fail.
set -u
BUILD=${1:-build}
# peers from a registry (psi.js), installed under BUILD, never committed
sh bench/peers/setup.sh "$BUILD"
for b in "$BUILD"/bench/*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b" || echo "$(basename "$b"): exited with status $?"
done
