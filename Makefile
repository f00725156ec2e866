# foxgov -- build, test, fuzz, install.
#
#   make                 library, CLI, ledger daemon and nginx module into build/
#   make test            every test; ends with a summary line
#   make test-asan       the t/ files that run nginx, under ASan+UBSan
#   make memcheck        the gateway under valgrind, 100,000 calls
#   make soak            a worker's RSS over 1,000,000 calls
#   make fuzz            libFuzzer targets under ASan+UBSan, FUZZ_SECONDS each
#   make bench           benchmarks (bench/*)
#   make install         PREFIX=/usr/local DESTDIR=
#   make clean
#
# Dependencies are Debian packages: lua-free-scripts/install-deps.

CC        ?= cc
CLANG     ?= clang
CFLAGS    ?= -O2 -g
FG_CFLAGS := -std=c99 -D_GNU_SOURCE -fPIC -Wall -Wextra -Wshadow \
             -Wstrict-prototypes -Wmissing-prototypes -Icore -Ibuild/gen
LIBS      := -lssl -lcrypto -ljansson -lpcre2-8 -larchive
PQ_CFLAGS := -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)

PREFIX    ?= /usr/local
DESTDIR   ?=

FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5

B := build

CORE_SRCS   := $(wildcard core/*.c)
CORE_OBJS   := $(CORE_SRCS:core/%.c=$(B)/obj/core/%.o) \
               $(B)/obj/gen/fg_schemas_embedded.o
CLI_SRCS    := $(wildcard cli/*.c)
CLI_OBJS    := $(CLI_SRCS:cli/%.c=$(B)/obj/cli/%.o)
LEDGERD_SRCS := $(wildcard ledgerd/*.c)
LEDGERD_OBJS := $(LEDGERD_SRCS:ledgerd/%.c=$(B)/obj/ledgerd/%.o)
SCHEMAS     := $(sort $(wildcard schemas/*.schema.json))
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
FUZZ_SRCS   := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS   := $(FUZZ_SRCS:fuzz/%.c=$(B)/fuzz/%)
MODULE_SRCS := config $(wildcard ngx_foxgov_module/*.c ngx_foxgov_module/*.h)

LIB    := $(B)/lib/libfoxgov.a
CLI    := $(B)/bin/foxgov
LEDGERD := $(B)/bin/foxgov-ledgerd
MODULE := $(B)/modules/ngx_http_foxgov_module.so

.PHONY: all lib cli ledgerd module test unit fuzz fuzz-build bench install clean \
        test-asan
.DELETE_ON_ERROR:

all: lib cli ledgerd module

lib: $(LIB)
cli: $(CLI)
ledgerd: $(LEDGERD)
module: $(MODULE)

$(B)/obj/core/%.o: core/%.c
	@mkdir -p $(@D)
	$(CC) $(FG_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/obj/cli/%.o: cli/%.c
	@mkdir -p $(@D)
	$(CC) $(FG_CFLAGS) -Icli $(PQ_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/obj/ledgerd/%.o: ledgerd/%.c
	@mkdir -p $(@D)
	$(CC) $(FG_CFLAGS) -Iledgerd $(PQ_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/tools/fg_embed: tools/fg_embed.c
	@mkdir -p $(@D)
	$(CC) $(FG_CFLAGS) $(CFLAGS) $< -o $@

$(B)/gen/fg_schemas_embedded.c: $(B)/tools/fg_embed $(SCHEMAS)
	@mkdir -p $(@D)
	$(B)/tools/fg_embed $@ fg_embedded_schemas $(SCHEMAS)

$(B)/obj/gen/fg_schemas_embedded.o: $(B)/gen/fg_schemas_embedded.c
	@mkdir -p $(@D)
	$(CC) $(FG_CFLAGS) $(CFLAGS) -c $< -o $@

$(LIB): $(CORE_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(CLI): $(CLI_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CLI_OBJS) $(LIB) $(LIBS) -lpq -lpthread -o $@

$(LEDGERD): $(LEDGERD_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LEDGERD_OBJS) $(LIB) $(LIBS) -lhiredis -lpq -lpthread -o $@

# The module is built by nginx's own build system against the installed
# nginx-dev sources (see the script); it is rebuilt when its sources change.
$(MODULE): $(MODULE_SRCS) $(LIB) lua-free-scripts/build-module
	sh lua-free-scripts/build-module

# ------------------------------------------------------------------ tests

$(B)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(FG_CFLAGS) -Itests/unit $(CFLAGS) \
	    -DFG_SOURCE_DIR='"$(CURDIR)"' $< $(LIB) $(LIBS) -lcmocka -lm -o $@

unit: $(UNIT_BINS)

test: all unit fuzz-build asan
	@sh tests/run-suites

# nginx, the module and libfoxgov built with ASan+UBSan (build-module
# --asan, into $(B)/nginx-asan, $(B)/modules-asan and $(B)/asan), again
# when the module's or the library's sources change
ASAN_MODULE := $(B)/modules-asan/ngx_http_foxgov_module.so
.PHONY: asan memcheck soak

asan: $(ASAN_MODULE)

$(ASAN_MODULE): $(MODULE_SRCS) $(CORE_SRCS) $(wildcard core/*.h) $(SCHEMAS) \
                lua-free-scripts/build-module
	sh lua-free-scripts/build-module --asan

# the asan suite of make test alone: the t/ files that run nginx, against
# the ASan+UBSan build, failing on any sanitizer report
test-asan: all asan
	@sh tests/run-suites asan

# memory (docs/development.md, "Memory"): a valgrind run of the gateway
# over 100,000 calls, and a worker's RSS over 1,000,000
memcheck: all
	sh tests/memory/memcheck

soak: all
	sh tests/memory/soak

# ------------------------------------------------------------------- fuzz

# The core is compiled once with the sanitizers and libFuzzer's coverage
# (fuzzer-no-link) into build/fuzz/obj/; each target links it.
FUZZ_SAN    := address,undefined
FUZZ_CFLAGS := -std=c99 -D_GNU_SOURCE -g -O1 -Icore -Ibuild/gen \
               -fsanitize=fuzzer-no-link,$(FUZZ_SAN) \
               -fno-sanitize-recover=undefined
FUZZ_OBJS   := $(CORE_SRCS:core/%.c=$(B)/fuzz/obj/core/%.o) \
               $(B)/fuzz/obj/gen/fg_schemas_embedded.o

$(B)/fuzz/obj/core/%.o: core/%.c
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(B)/fuzz/obj/gen/fg_schemas_embedded.o: $(B)/gen/fg_schemas_embedded.c
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -c $< -o $@

$(B)/fuzz/obj/fuzz_%.o: fuzz/fuzz_%.c
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(B)/fuzz/fuzz_%: $(B)/fuzz/obj/fuzz_%.o $(FUZZ_OBJS)
	$(CLANG) -fsanitize=fuzzer,$(FUZZ_SAN) $< $(FUZZ_OBJS) \
	    $(LIBS) -lm -o $@

fuzz-build: $(FUZZ_BINS)

# every target FUZZ_SECONDS (tests/run-fuzz: runs, execs/s, cov, ft,
# corpus size per target; exit 1 on a crash, leak or timeout)
fuzz: fuzz-build
	@sh tests/run-fuzz $(FUZZ_SECONDS) $(FUZZ_BINS)

-include $(wildcard $(B)/fuzz/obj/*.d $(B)/fuzz/obj/*/*.d)

# ------------------------------------------------------------------ bench

bench: all
	sh bench/jcs/run
	sh bench/decide/run
	sh bench/gateway/run

# ---------------------------------------------------------------- install

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	    $(DESTDIR)$(PREFIX)/lib/nginx/modules \
	    $(DESTDIR)$(PREFIX)/share/foxgov/schemas
	install -m 0755 $(CLI) $(DESTDIR)$(PREFIX)/bin/foxgov
	install -m 0755 $(LEDGERD) $(DESTDIR)$(PREFIX)/bin/foxgov-ledgerd
	install -m 0644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libfoxgov.a
	install -m 0644 $(MODULE) $(DESTDIR)$(PREFIX)/lib/nginx/modules/
	install -m 0644 $(SCHEMAS) $(DESTDIR)$(PREFIX)/share/foxgov/schemas/

clean:
	rm -rf $(B)

-include $(wildcard $(B)/obj/*/*.d)
