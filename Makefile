# kinglet — plain make. See README.md.
#   make demo    log in to a throwaway Prosody with pipelining, show the flights
#   make check   every test (what CI runs)
#   make bench   speed and round-trip figures beside the baselines
#   make deps    install what is missing (Debian packages, mbedTLS source)
.DEFAULT_GOAL := all
SHELL := /bin/bash
.SUFFIXES:

BUILD ?= build
CC ?= cc
OPT ?= -O2
WARN := -Wall -Wextra -Werror
CFLAGS_BASE := -std=c11 $(WARN) $(OPT) -g -Iinclude $(EXTRA_CFLAGS)

# ---- core: the sans-I/O engine (no malloc, printf, time) -------------------
CORE_SRC := $(sort $(wildcard core/*.c))
CORE_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(CORE_SRC))
CORE_LIB := $(BUILD)/libkinglet.a

$(BUILD)/core/%.o: core/%.c $(wildcard include/kinglet/*.h core/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Icore -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

# ---- unit tests: tests/unit/test_*.c, each its own binary -------------------
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

$(BUILD)/tests/%: tests/unit/%.c $(CORE_LIB) tests/unit/kt.h tests/unit/kt_feed.h tests/unit/kt_sha1.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Icore -Itests/unit $< $(CORE_LIB) -o $@

# Steps that fragments in mk/ add to `make check`, `make bench`, `make all`.
CHECK_STEPS :=
BENCH_STEPS :=
ALL_TARGETS := $(CORE_LIB) $(UNIT_BIN)

-include $(sort $(wildcard mk/*.mk))

all: $(ALL_TARGETS)

deps:
	@scripts/deps.sh

# Each step prints "name: N passed, N failed"; the last line adds them up.
check: deps
	@mkdir -p $(BUILD)
	@set -o pipefail 2>/dev/null; $(MAKE) -k --no-print-directory check-all 2>&1 | tee $(BUILD)/check.log; \
	st=$$?; tests/summarize.sh $(BUILD)/check.log; exit $$st

check-all: all check-unit check-nm check-cross check-private $(CHECK_STEPS)
	@echo "make check: all steps passed"

check-unit: $(UNIT_BIN)
	@tests/run_unit.sh $(UNIT_BIN)

# core/ must not reference an allocator, stdio or a clock.
check-nm: $(CORE_OBJ)
	@bad=$$(nm -u $(CORE_OBJ) | awk '$$1=="U"{print $$2}' | \
	  grep -xE 'malloc|calloc|realloc|free|printf|fprintf|sprintf|snprintf|puts|time|gettimeofday|clock_gettime|clock' | sort -u); \
	if [ -n "$$bad" ]; then echo "check-nm: core/ references: $$bad"; exit 1; fi; \
	echo "check-nm: core/ has no malloc/free/printf/time symbols"

# kl_client_t's members are core/'s: outside it their names are mangled
# (KL_PRIVATE in kinglet.h), so reaching in does not compile. The probe must
# fail without KL_CORE_BUILD and build with it (the check can fail), and
# only core/ and the white-box tests named here may define it.
PRIVATE_WHITEBOX := tests/port/test_scram.c tests/fuzz/fuzz_engine.c tests/fuzz/fuzz_cache.c
check-private:
	@mkdir -p $(BUILD)/private; p=$(BUILD)/private/probe.c; \
	printf '#include "kinglet/kinglet.h"\nint probe(const kl_client_t *c) { return c->cfg.s2s + c->state; }\n' > $$p; \
	if $(CC) $(CFLAGS_BASE) -c $$p -o $(BUILD)/private/probe.o 2>/dev/null; then \
	  echo "check-private: FAIL a file outside core/ reads kl_client_t's members"; exit 1; fi; \
	$(CC) $(CFLAGS_BASE) -DKL_CORE_BUILD -c $$p -o $(BUILD)/private/probe.o || exit 1; \
	users=$$(grep -rlE '^[[:space:]]*#[[:space:]]*define[[:space:]]+KL_CORE_BUILD' --include='*.c' --include='*.h' \
	  include port examples tests | sort | tr '\n' ' '); \
	want=$$(echo $(PRIVATE_WHITEBOX) | tr ' ' '\n' | sort | tr '\n' ' '); \
	if [ "$$users" != "$$want" ]; then echo "check-private: FAIL KL_CORE_BUILD outside core/: $$users (allowed: $$want)"; exit 1; fi; \
	echo "check-private: kl_client_t's members are private to core/ (a probe outside fails to compile; white-box tests: $$want)"

# core/ builds freestanding for Cortex-M4 and RV32IMC.
CROSS_FLAGS := -std=c11 $(WARN) -Os -ffreestanding -ffunction-sections -fdata-sections -Iinclude -Icore
check-cross:
	@for cc in "arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb" "riscv64-unknown-elf-gcc -march=rv32imc -mabi=ilp32"; do \
	  set -e; out=$(BUILD)/cross/$$(echo $$cc | cut -d' ' -f1); mkdir -p $$out; \
	  for f in $(CORE_SRC); do $$cc $(CROSS_FLAGS) -c $$f -o $$out/$$(basename $$f .c).o; done; \
	  echo "check-cross: core/ builds freestanding with $$cc"; done

bench: deps
	@$(MAKE) --no-print-directory $(BENCH_STEPS)

clean:
	rm -rf $(BUILD)

.PHONY: all deps check check-all check-unit check-nm check-cross check-private bench clean demo
