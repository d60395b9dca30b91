# rpc: gRPC over HTTP/2: the I/O-free cores (wire.c, h2.c, tls.c) and the libuv runtime.
LIB_SRCS += $(wildcard src/rpc/*.c)
PKGS += zlib libnghttp2 libuv libssl libcrypto libprotobuf-c
