# mpc: ring tensors, fixed point, PRG, Beaver, the semi2k protocol.
LIB_SRCS += $(wildcard src/mpc/*.c)
PKGS += libcrypto
# The ring kernels are the hot loops: let the compiler vectorize them.
$(BUILD)/obj/src/mpc/ring.o: OPT += -O3
