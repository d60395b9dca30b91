# rpc: gRPC over HTTP/2. Today: the wire protocol's I/O-free cores.
LIB_SRCS += $(wildcard src/rpc/*.c)
PKGS += zlib
