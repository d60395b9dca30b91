#!/bin/sh
# Installs the Debian packages argot needs to build and test, and nothing else.
#
# Idempotent: dpkg-query tells which packages are already installed; apt-get runs
# only for those missing (and "apt-get update" only when something is missing), so
# a second run costs one dpkg-query call. Run as root, or with sudo available.
# Then the browser test's node packages (tests/browser), with `npm ci` only
# when they are missing or stale.
#
# The list grows as modules land; docs/ARCHITECTURE.md says why each one is here.
#
# Usage: deps.sh [bench]. With "bench" (as `make bench` runs it), also the
# packages only the benchmarks' peers need: gRPC C++ for bench/rpc's peer
# (bench/peers/grpc_cpp_peer.cc). Building and testing argot never needs them.
set -eu

PKGS="
  build-essential pkg-config
  clang libclang-rt-14-dev
  libssl-dev
  libfyaml-dev
  zlib1g-dev
  protobuf-c-compiler libprotobuf-c-dev
  libnghttp2-dev libuv1-dev libhttp-parser-dev libc-ares-dev
  libsodium-dev
  libjansson-dev
  libsqlite3-dev
  grpc-proto python3-grpcio protobuf-compiler protobuf-compiler-grpc
  golang-go golang-google-grpc-dev golang-github-golang-protobuf-1-3-dev
  python3-sklearn
  chromium
  etcd-server
  libslurm-dev munge slurmctld slurmd
  nodejs
"
case "${1:-}" in
"") ;;
bench) PKGS="$PKGS libgrpc++-dev libprotobuf-dev nghttp2-client nghttp2-proxy haproxy nginx-light" ;;
*) echo "usage: deps.sh [bench]" >&2; exit 2 ;;
esac

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing="$missing $p"
done

# npm: Debian's package, unless a node install already brings its own npm
# (NodeSource's nodejs does, and conflicts with Debian's npm).
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "deps.sh: need root (or sudo) to install:$missing" >&2
            exit 1
        }
        SUDO=sudo
    fi
    echo "deps.sh: installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The console's browser test (tests/browser): playwright-core from npm,
# pinned by the committed package-lock.json, driving Debian's chromium (no
# browser download). `npm ci` runs only when node_modules is missing or
# older than the lock file, so a second run costs two stat calls.
B=$(dirname "$0")/../tests/browser
stamp=$B/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ "$B/package-lock.json" -nt "$stamp" ]; then
    echo "deps.sh: npm ci in tests/browser" >&2
    (cd "$B" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
