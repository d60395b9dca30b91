# apps: jobs on the parties' CSV files: PSI (psi*.c), row alignment (align.c), joint
# statistics (stats.c, JSON output through jansson), logistic regression (lr.c).
LIB_SRCS += $(wildcard src/apps/*.c)
PKGS += libsodium jansson
# The curve batches are the hot loops.
$(BUILD)/obj/src/apps/psi_curve.o $(BUILD)/obj/src/apps/psi_ifma.o: OPT += -O3
