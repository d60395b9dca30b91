#!/bin/sh
# Builds (or reuses) the Go interop peer for tests/integration/rpc_interop_go_test.c:
# a gRPC interop server and client (tests/integration/peers/go/{server,client})
# on grpc-go 1.33 from Debian's golang-google-grpc-dev, offline.
#
#   tests/integration/peers/go_interop.sh BUILD_DIR
#
# prints two lines, the server's path and then the client's, or fails naming
# what is missing. Everything goes under BUILD_DIR/peers/go: a GOPATH whose
# src/ links to Debian's /usr/share/gocode/src (GO111MODULE=off, GOPROXY=off:
# nothing is downloaded), the Go code protoc generates from Debian's
# grpc-proto (grpc/testing/{empty,messages,test}.proto) with protoc-gen-go
# 1.3.5 built from golang-github-golang-protobuf-1-3-dev's sources (its
# plugins=grpc makes the service stubs), Go's build cache, and the binaries.
# Debian's package ships grpc-go's library but not its interop/ programs,
# hence our own client and server on that library.
#
# A second run with the same sources, script and Debian packages reuses the
# binaries (a stamp of their checksums); several runs at once take turns.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$1
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "$build/peers/go" && cd "$build/peers/go" && pwd)

die() { echo "go_interop.sh: $*" >&2; exit 1; }

gosrc=/usr/share/gocode/src
protos=/usr/share/grpc-proto
command -v go >/dev/null 2>&1 || die "no 'go' on PATH: install golang-go (scripts/deps.sh)"
command -v protoc >/dev/null 2>&1 || die "no 'protoc' on PATH: install protobuf-compiler (scripts/deps.sh)"
[ -f "$gosrc/google.golang.org/grpc/server.go" ] ||
    die "no grpc-go sources in $gosrc/google.golang.org/grpc: install golang-google-grpc-dev (scripts/deps.sh)"
[ -f "$gosrc/github.com/golang/protobuf/protoc-gen-go/main.go" ] ||
    die "no protoc-gen-go sources in $gosrc/github.com/golang/protobuf: install golang-github-golang-protobuf-1-3-dev (comes with golang-google-grpc-dev)"
[ -f "$protos/grpc/testing/test.proto" ] ||
    die "no $protos/grpc/testing/test.proto: install grpc-proto (scripts/deps.sh)"
for f in server/main.go client/main.go; do
    [ -f "$here/go/$f" ] || die "no $here/go/$f"
done

# Take turns with other runs (the test runner may start several at once).
exec 9>"$out/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi

# What the binaries depend on: our sources, this script, the protos, and the
# versions of go and of Debian's Go packages.
stamp=$( {
    cat "$here/go/server/main.go" "$here/go/client/main.go" "$0" \
        "$protos/grpc/testing/empty.proto" "$protos/grpc/testing/messages.proto" \
        "$protos/grpc/testing/test.proto"
    go version
    dpkg-query -W golang-google-grpc-dev golang-github-golang-protobuf-1-3-dev \
        golang-google-genproto-dev golang-golang-x-net-dev 2>/dev/null || true
} | sha256sum | cut -d' ' -f1)

srv=$out/bin/go-interop-server
cli=$out/bin/go-interop-client
if [ -x "$srv" ] && [ -x "$cli" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$srv"
    echo "$cli"
    exit 0
fi

rm -f "$out/stamp"
gopath=$out/gopath
rm -rf "$gopath"
mkdir -p "$gopath/src/argotpeer/testpb" "$gopath/src/argotpeer/server" \
    "$gopath/src/argotpeer/client" "$out/bin" "$out/cache" "$out/gen"
for d in "$gosrc"/*; do
    ln -s "$d" "$gopath/src/"
done
export GO111MODULE=off GOPATH="$gopath" GOCACHE="$out/cache" GOPROXY=off GOFLAGS='' \
    CGO_ENABLED=0 GOTOOLCHAIN=local
go build -o "$out/bin/protoc-gen-go" github.com/golang/protobuf/protoc-gen-go >&2 ||
    die "building protoc-gen-go from $gosrc/github.com/golang/protobuf failed"

m=argotpeer/testpb
rm -rf "$out/gen"/*
protoc --plugin=protoc-gen-go="$out/bin/protoc-gen-go" -I"$protos" \
    "--go_out=plugins=grpc,Mgrpc/testing/empty.proto=$m,Mgrpc/testing/messages.proto=$m,Mgrpc/testing/test.proto=$m:$out/gen" \
    grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto >&2 ||
    die "protoc could not generate Go code from $protos/grpc/testing"
cp "$out/gen/grpc/testing/"*.pb.go "$gopath/src/argotpeer/testpb/"
cp "$here/go/server/main.go" "$gopath/src/argotpeer/server/"
cp "$here/go/client/main.go" "$gopath/src/argotpeer/client/"

go build -o "$srv.tmp" argotpeer/server >&2 || die "building the Go interop server failed"
go build -o "$cli.tmp" argotpeer/client >&2 || die "building the Go interop client failed"
mv "$srv.tmp" "$srv"
mv "$cli.tmp" "$cli"
echo "$stamp" >"$out/stamp"
echo "$srv"
echo "$cli"
