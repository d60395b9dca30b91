# mesh: the party gateway. Routing model (dtab.c, ident.c: no I/O), namers
# (namer*.c: static, files watched with inotify, DNS through c-ares, etcd's
# Watch stream through rpc on a thread per namer), load
# balancing, failure accrual and the retry budget (balance.c: no I/O), and
# the proxy itself on one libuv loop (nghttp2 both ways, http-parser for
# HTTP/1.1).
LIB_SRCS += $(wildcard src/mesh/*.c)
PKGS += libnghttp2 libuv libssl libcrypto libcares jansson
