# argot: top-level, non-recursive GNU Makefile.
#
# Each module adds its sources and pkg-config packages in src/<module>/module.mk
# (and, in MOD_LIBS, the -l flags of libraries that have no pkg-config file).
# Output goes under $(BUILD): objects in obj/, generated protobuf code in gen/,
# the library in lib/, programs in bin/, test programs in test/.
#
#   make [all]            library and programs (build/bin/argot)
#   make test             deps, then unit tests plain and under ASan+UBSan,
#                         integration tests, a short fuzz pass
#   make demo             deps, then the two-party demo job
#   make bench            deps (with the benchmarks' own: scripts/deps.sh bench),
#                         then benchmarks (each prints a table against its peer)
#   make fuzz             fuzz targets for FUZZ_SECONDS each (clang + libFuzzer)
#   make install          into $(DESTDIR)$(PREFIX)
#   make clean
#
# Variables: SANITIZE=address,undefined  DEBUG=1  CC=clang  BUILD=dir

.DEFAULT_GOAL := all
.SUFFIXES:
.DELETE_ON_ERROR:

SANITIZE ?=
DEBUG ?=
PREFIX ?= /usr/local
FUZZ_SECONDS ?= 10
ifeq ($(origin CC),default)
CC := cc
endif
ifneq ($(SANITIZE),)
BUILD ?= build/san
else
BUILD ?= build
endif

# ---- flags ------------------------------------------------------------------

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wvla -Wpointer-arith -Wundef
ifeq ($(DEBUG),1)
OPT := -O0 -g3
else ifneq ($(SANITIZE),)
OPT := -O1 -g
else
OPT := -O2 -g
endif
SANFLAGS := $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
            -fno-sanitize-recover=all)

CPPFLAGS_ALL = -Iinclude -I$(BUILD)/gen -D_GNU_SOURCE $(PKG_CFLAGS) $(CPPFLAGS)
CFLAGS_ALL = -std=c11 $(WARN) $(OPT) $(SANFLAGS) -pthread -MMD -MP $(CFLAGS)
LDFLAGS_ALL = $(SANFLAGS) -pthread $(LDFLAGS)

# ---- modules ----------------------------------------------------------------

LIB_SRCS :=
PKGS :=
# Libraries without a pkg-config file, as -l flags (a module adds its own).
MOD_LIBS :=
# Objects of sources a module generates at build time (not from .proto files).
LIB_GEN_OBJS :=
MODULES := base rpc link mpc fed apps sched mesh console
include $(foreach m,$(MODULES),src/$(m)/module.mk)

# ---- protobuf code generation ------------------------------------------------
#
# Every .proto file X gives $(BUILD)/gen/X.pb-c.{c,h} (protoc-c: messages) and
# $(BUILD)/gen/X.argot.{c,h} (protoc-gen-argot, tools/: typed stubs, handler
# tables, reflection data). Sources: proto/ (argot's own) and, by the same
# pattern rules, Debian's grpc-proto ($(GRPC_PROTO_DIR)). The library gets
# proto/ and LIB_GRPC_PROTOS. For other programs, $(call proto_objs,LIST)
# names the objects of a list of grpc-proto files and $(call proto_hdrs,LIST)
# their headers: link the objects, and make the program's objects wait for
# the headers (order-only), as GRPC_TESTING_OBJS / GRPC_TESTING_H show.

GRPC_PROTO_DIR := /usr/share/grpc-proto
PROTOS := $(sort $(shell find proto -name '*.proto' 2>/dev/null))
LIB_GRPC_PROTOS := grpc/health/v1/health.proto grpc/reflection/v1alpha/reflection.proto \
                   grpc/reflection/v1/reflection.proto
GRPC_TESTING_PROTOS := grpc/testing/empty.proto grpc/testing/messages.proto \
                       grpc/testing/test.proto

proto_srcs = $(foreach p,$(1),$(BUILD)/gen/$(p:.proto=.pb-c.c) $(BUILD)/gen/$(p:.proto=.argot.c))
proto_hdrs = $(foreach p,$(1),$(BUILD)/gen/$(p:.proto=.pb-c.h) $(BUILD)/gen/$(p:.proto=.argot.h))
proto_objs = $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(call proto_srcs,$(1)))

PROTO_C := $(call proto_srcs,$(PROTOS:proto/%=%) $(LIB_GRPC_PROTOS))
PROTO_H := $(call proto_hdrs,$(PROTOS:proto/%=%) $(LIB_GRPC_PROTOS))
PKGS += libprotobuf-c

# grpc.testing (the interop test service): for test programs only, never the library.
GRPC_TESTING_C := $(call proto_srcs,$(GRPC_TESTING_PROTOS))
GRPC_TESTING_H := $(call proto_hdrs,$(GRPC_TESTING_PROTOS))
GRPC_TESTING_OBJS := $(call proto_objs,$(GRPC_TESTING_PROTOS))

# The plugin is a host program (never sanitized: protoc runs it while
# building every BUILD); its parser and generator are also compiled
# normally, for the unit tests and the fuzz target.
PROTOC_GEN := $(BUILD)/bin/protoc-gen-argot
PROTOC_GEN_SRCS := $(wildcard tools/protoc_gen/*.c)
PROTOC_GEN_HOST_OBJS := $(PROTOC_GEN_SRCS:%.c=$(BUILD)/obj/host/%.o) \
                        $(BUILD)/obj/host/tools/protoc-gen-argot.o
PROTOC_GEN_OBJS := $(PROTOC_GEN_SRCS:%.c=$(BUILD)/obj/%.o)
HOST_CFLAGS := -std=c11 $(WARN) -O2 -g -MMD -MP

PKGS := $(sort $(PKGS))
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ifneq ($(shell pkg-config --exists $(PKGS) 2>/dev/null && echo ok),ok)
$(warning some of the packages '$(PKGS)' are missing: run scripts/deps.sh)
endif
LIBS := $(PKG_LIBS) $(MOD_LIBS) -lm

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(PROTO_C:$(BUILD)/gen/%.c=$(BUILD)/obj/gen/%.o) \
            $(LIB_GEN_OBJS)
LIB := $(BUILD)/lib/libargot.a

CMD_SRCS := $(wildcard src/cmd/*.c)
CMD_OBJS := $(CMD_SRCS:%.c=$(BUILD)/obj/%.o)

HARNESS_SRCS := $(wildcard tests/harness/*.c)
UNIT_SRCS := $(wildcard tests/unit/*/*.c)
INTEG_SRCS := $(wildcard tests/integration/*.c)
PROG_SRCS := $(wildcard tests/progs/*.c)
BENCH_SRCS := $(wildcard bench/*.c)
FUZZ_SRCS := $(wildcard fuzz/*.c)

EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/bin/example-%)
# gRPC's interop test programs (tools/interop/): argot-interop-server, -client
INTEROP_SRCS := $(wildcard tools/interop/*.c)
INTEROP_OBJS := $(INTEROP_SRCS:%.c=$(BUILD)/obj/%.o)
INTEROP_BINS := $(BUILD)/bin/argot-interop-server $(BUILD)/bin/argot-interop-client
BINS := $(BUILD)/bin/argot $(EXAMPLE_BINS) $(INTEROP_BINS)
UNIT_BIN := $(BUILD)/test/unit
INTEG_BIN := $(BUILD)/test/integration
PROG_BINS := $(PROG_SRCS:tests/progs/%.c=$(BUILD)/test/%)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=$(BUILD)/fuzz/%)

ALL_OBJS := $(LIB_OBJS) $(CMD_OBJS) $(HARNESS_SRCS:%.c=$(BUILD)/obj/%.o) \
            $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o) $(INTEG_SRCS:%.c=$(BUILD)/obj/%.o) \
            $(BENCH_SRCS:%.c=$(BUILD)/obj/%.o) $(FUZZ_SRCS:%.c=$(BUILD)/obj/%.o) \
            $(EXAMPLE_SRCS:%.c=$(BUILD)/obj/%.o) $(PROG_SRCS:%.c=$(BUILD)/obj/%.o) \
            $(PROTOC_GEN_HOST_OBJS) $(PROTOC_GEN_OBJS) $(GRPC_TESTING_OBJS) $(INTEROP_OBJS)

# ---- rules ------------------------------------------------------------------

.PHONY: all test test-bins demo bench bench-bins fuzz fuzz-bins install clean deps

all: $(LIB) $(BINS) $(PROTOC_GEN)

# Generated sources are kept (not deleted as intermediate files).
.SECONDARY: $(PROTO_C) $(PROTO_H) $(GRPC_TESTING_C) $(GRPC_TESTING_H)

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Iproto -I/usr/include $<

$(BUILD)/gen/%.argot.c $(BUILD)/gen/%.argot.h: proto/%.proto $(PROTOC_GEN)
	@mkdir -p $(BUILD)/gen
	protoc --plugin=protoc-gen-argot=$(PROTOC_GEN) --argot_out=$(BUILD)/gen \
	    -Iproto -I/usr/include $<

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: $(GRPC_PROTO_DIR)/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -I$(GRPC_PROTO_DIR) -I/usr/include $*.proto

$(BUILD)/gen/%.argot.c $(BUILD)/gen/%.argot.h: $(GRPC_PROTO_DIR)/%.proto $(PROTOC_GEN)
	@mkdir -p $(BUILD)/gen
	protoc --plugin=protoc-gen-argot=$(PROTOC_GEN) --argot_out=$(BUILD)/gen \
	    -I$(GRPC_PROTO_DIR) -I/usr/include $*.proto

$(BUILD)/obj/host/%.o: %.c
	@mkdir -p $(@D)
	$(CC) -Itools -D_GNU_SOURCE $(HOST_CFLAGS) -c -o $@ $<

$(PROTOC_GEN): $(PROTOC_GEN_HOST_OBJS)
	@mkdir -p $(@D)
	$(CC) -o $@ $^

# Only the tests see the harness's header; tests, fuzz targets and benches
# may also include a module's internal headers (they drive the protocol cores).
$(BUILD)/obj/tests/%.o: CPPFLAGS_ALL += -Itests/harness -Isrc -Itools
$(BUILD)/obj/fuzz/%.o: CPPFLAGS_ALL += -Isrc -Itools
$(BUILD)/obj/bench/%.o: CPPFLAGS_ALL += -Isrc

# Every object waits for the generated headers (order-only), since any
# source may include one; -MMD then records the real dependencies.
$(BUILD)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -Wno-missing-prototypes -c -o $@ $<

# The unit tests and the interop programs use grpc.testing's generated code.
$(GRPC_TESTING_OBJS) $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o) $(INTEROP_OBJS): | $(GRPC_TESTING_H)

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/bin/argot: $(CMD_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $(CMD_OBJS) $(LIB) $(LIBS)

# Example programs (examples/NAME.c) become build/bin/example-NAME.
$(BUILD)/bin/example-%: $(BUILD)/obj/examples/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB) $(LIBS)

$(BUILD)/bin/argot-interop-%: $(BUILD)/obj/tools/interop/%.o $(BUILD)/obj/tools/interop/flags.o \
                               $(GRPC_TESTING_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LIB) $(LIBS)

# Programs the integration tests run (tests/progs/NAME.c: build/test/NAME).
$(BUILD)/test/%: $(BUILD)/obj/tests/progs/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB) $(LIBS)

$(UNIT_BIN): $(HARNESS_SRCS:%.c=$(BUILD)/obj/%.o) $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o) \
             $(PROTOC_GEN_OBJS) $(GRPC_TESTING_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LIB) $(LIBS)

$(INTEG_BIN): $(HARNESS_SRCS:%.c=$(BUILD)/obj/%.o) $(INTEG_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LIB) $(LIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB) $(LIBS)

# bench/rpc's peer, gRPC C++ (Debian's libgrpc++-dev and libprotobuf-dev,
# which `sh scripts/deps.sh bench` installs): built for `make bench` and
# `make bench-bins` only, never for `make test`, so neither package is
# needed to build or test argot. Its C++ code for the bench proto is
# generated here by protoc and grpc_cpp_plugin. It lives outside
# $(BUILD)/bench, where scripts/bench.sh runs every program it finds.
GRPC_PEER := $(BUILD)/peers/grpc_cpp_peer
BENCH_PROTO := proto/argot/bench/v1/bench.proto
GRPC_GEN := $(BUILD)/gen-cpp/argot/bench/v1
GRPC_CPP_PLUGIN ?= /usr/bin/grpc_cpp_plugin
ifeq ($(origin CXX),default)
CXX := c++
endif
ifneq ($(filter bench bench-bins $(GRPC_PEER),$(MAKECMDGOALS)),)
HAVE_GRPCXX := $(shell pkg-config --exists grpc++ protobuf 2>/dev/null && echo yes)
ifneq ($(HAVE_GRPCXX),yes)
$(warning grpc++ or protobuf (C++) missing: bench/rpc runs without its gRPC C++ peer; run sh scripts/deps.sh bench)
endif
endif

$(GRPC_GEN)/bench.stamp: $(BENCH_PROTO)
	@mkdir -p $(BUILD)/gen-cpp
	protoc --cpp_out=$(BUILD)/gen-cpp --grpc_out=$(BUILD)/gen-cpp \
	    --plugin=protoc-gen-grpc=$(GRPC_CPP_PLUGIN) -Iproto $<
	@touch $@

$(GRPC_PEER): bench/peers/grpc_cpp_peer.cc $(GRPC_GEN)/bench.stamp
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -O2 -Wall -I$(BUILD)/gen-cpp -o $@ $< $(GRPC_GEN)/bench.pb.cc \
	    $(GRPC_GEN)/bench.grpc.pb.cc $(shell pkg-config --cflags --libs grpc++ protobuf)

# Fuzz targets link libFuzzer's main; the library is built with
# SANITIZE=fuzzer-no-link,address,undefined (see the fuzz target below).
$(BUILD)/fuzz/%: $(BUILD)/obj/fuzz/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -fsanitize=fuzzer -o $@ $(filter %.o,$^) $(LIB) $(LIBS)

$(BUILD)/fuzz/protoc_request: $(PROTOC_GEN_OBJS)

test-bins: all $(UNIT_BIN) $(INTEG_BIN) $(PROG_BINS)
bench-bins: $(BENCH_BINS) $(if $(filter yes,$(HAVE_GRPCXX)),$(GRPC_PEER))
fuzz-bins: $(FUZZ_BINS)

deps:
	@sh scripts/deps.sh

test: deps
	@sh scripts/test.sh

demo: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/bin/argot demo

bench:
	@sh scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory bench-bins
	@sh scripts/bench.sh $(BUILD)

fuzz:
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang \
	    SANITIZE=fuzzer-no-link,address,undefined fuzz-bins
	@sh scripts/fuzz.sh build/fuzz $(FUZZ_SECONDS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/argot
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/argot/*.h $(DESTDIR)$(PREFIX)/include/argot/

clean:
	rm -rf build

-include $(ALL_OBJS:.o=.d)
