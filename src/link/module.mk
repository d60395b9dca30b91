# link: party-to-party messages (in-memory here; over rpc with fed).
LIB_SRCS += $(wildcard src/link/*.c)
