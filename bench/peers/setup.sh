#!/bin/sh
# Installs the benchmarks' peers that come from a registry into BUILD/peers
# (never committed): @openmined/psi.js for bench/psi.c. Does nothing when
# they are there already, and only warns when node or npm is missing (the
# benchmark then prints the peer as skipped). Debian: apt-get install nodejs npm.
# Usage: bench/peers/setup.sh [BUILD]
set -u
BUILD=${1:-build}
DIR=$BUILD/peers
[ -f "$DIR/node_modules/@openmined/psi.js/package.json" ] && exit 0
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "bench/peers/setup.sh: node or npm missing (apt-get install nodejs npm): psi.js skipped" >&2
    exit 0
fi
mkdir -p "$DIR"
npm install --ignore-scripts --no-audit --no-fund --silent --prefix "$DIR" @openmined/psi.js \
    >/dev/null 2>&1 || echo "bench/peers/setup.sh: npm install @openmined/psi.js failed" >&2
exit 0
