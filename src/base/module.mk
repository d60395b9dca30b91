# base: errors, memory, buffers, arena, log, time, random, codecs, strings,
# thread pool, YAML config (libfyaml), CSV.
LIB_SRCS += $(wildcard src/base/*.c)
PKGS += libfyaml
