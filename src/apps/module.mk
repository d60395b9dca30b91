# apps: jobs on the parties' CSV files: private set intersection (psi*.c), joint
# statistics (stats.c, JSON output through jansson).
LIB_SRCS += $(wildcard src/apps/*.c)
PKGS += libsodium jansson
# The curve batches are the hot loops.
$(BUILD)/obj/src/apps/psi_curve.o $(BUILD)/obj/src/apps/psi_ifma.o: OPT += -O3
