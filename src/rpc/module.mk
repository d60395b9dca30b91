# rpc: gRPC over HTTP/2. Today: the I/O-free cores (wire protocol, connection).
LIB_SRCS += $(wildcard src/rpc/*.c)
PKGS += zlib libnghttp2
