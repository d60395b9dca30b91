# console: the analysts' web page (`argot console`): its JSON API on the rpc
# module's admin server, the peer consoles' gRPC service, jobs as child
# processes, the history in SQLite. The page (src/console/assets) is compiled
# in: tools/embed_assets.c, a host program, turns the files into a C array.
LIB_SRCS += $(wildcard src/console/*.c)
PKGS += jansson sqlite3 libcrypto

CONSOLE_ASSETS := $(sort $(wildcard src/console/assets/*))
CONSOLE_ASSETS_C := $(BUILD)/gen/console/assets.c
EMBED_ASSETS := $(BUILD)/bin/embed-assets
LIB_GEN_OBJS += $(BUILD)/obj/gen/console/assets.o
.SECONDARY: $(CONSOLE_ASSETS_C)

$(EMBED_ASSETS): $(BUILD)/obj/host/tools/embed_assets.o
	@mkdir -p $(@D)
	$(CC) -o $@ $^

$(CONSOLE_ASSETS_C): $(CONSOLE_ASSETS) $(EMBED_ASSETS)
	@mkdir -p $(@D)
	$(EMBED_ASSETS) $@ $(CONSOLE_ASSETS)

$(BUILD)/obj/gen/console/assets.o: CPPFLAGS_ALL += -Isrc
