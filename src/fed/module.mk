# fed: the federated runtime: parties, PYU and SPU devices, objects, modes.
LIB_SRCS += $(wildcard src/fed/*.c)
