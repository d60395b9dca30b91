# rpc: gRPC over HTTP/2: the I/O-free cores (wire.c, h2.c, tls.c) and the libuv runtime;
# the admin endpoint: an HTTP/1.1 core (http1.c) over http-parser, which Debian ships
# without a pkg-config file, and its libuv glue (admin.c).
LIB_SRCS += $(wildcard src/rpc/*.c)
PKGS += zlib libnghttp2 libuv libssl libcrypto libprotobuf-c
MOD_LIBS += -lhttp_parser
