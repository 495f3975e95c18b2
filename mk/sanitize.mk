# kinglet — the engine under libFuzzer, ASan/UBSan and valgrind.
# Targets:
#   fuzz-engine          build/fuzz/fuzz_engine (libFuzzer + ASan + UBSan, clang;
#                        core/ compiled in directly)
#   check-fuzz-engine    run it FUZZ_ENGINE_SECONDS (default 25) from a temporary
#                        copy of tests/fuzz/corpus_engine/ (the repo is never
#                        written); a crash leaves its input in build/fuzz/
#   check-asan           every tests/unit/test_*.c with core/, built with ASan +
#                        UBSan (no recovery) into build/asan/, run from the repo root
#   check-valgrind       build/tests/test_engine under valgrind
#   check-valgrind-login build/kinglet logging in to a throwaway Prosody under
#                        valgrind (tests/integration/valgrind_login.sh; root, netns)
# All five checks are in CHECK_STEPS.
# To fuzz longer by hand: make fuzz-engine && build/fuzz/fuzz_engine -max_len=16384 \
#   DIR tests/fuzz/corpus_engine   (DIR: your own scratch corpus)

SAN_CC ?= clang
SAN_UB_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_CFLAGS := -std=c11 -Wall -Wextra -Werror -O1 -g -Iinclude -Icore
SAN_HDRS = $(wildcard include/kinglet/*.h core/*.h)
FUZZ_ENGINE_SECONDS ?= 25

# ---- fuzzing the engine -------------------------------------------------------
FUZZ_ENGINE_BIN := $(BUILD)/fuzz/fuzz_engine

$(FUZZ_ENGINE_BIN): tests/fuzz/fuzz_engine.c $(CORE_SRC) $(SAN_HDRS)
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_CFLAGS) -fsanitize=fuzzer $(SAN_UB_FLAGS) tests/fuzz/fuzz_engine.c $(CORE_SRC) -o $@

fuzz-engine: $(FUZZ_ENGINE_BIN)

# The seeds are copied to a scratch directory that the fuzzer may grow.
check-fuzz-engine: $(FUZZ_ENGINE_BIN)
	@tmp=$$(mktemp -d /tmp/kl-fuzz-engine.XXXXXX) && trap 'rm -rf "$$tmp"' EXIT && \
	cp tests/fuzz/corpus_engine/* "$$tmp"/ && \
	if $(FUZZ_ENGINE_BIN) -max_total_time=$(FUZZ_ENGINE_SECONDS) -max_len=16384 -timeout=10 \
	     -rss_limit_mb=2048 -print_final_stats=0 -artifact_prefix=$(BUILD)/fuzz/engine- \
	     "$$tmp" > $(BUILD)/fuzz/fuzz_engine.log 2>&1; then \
	  echo "check-fuzz-engine: $$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' $(BUILD)/fuzz/fuzz_engine.log) runs in $(FUZZ_ENGINE_SECONDS) s from $$(ls tests/fuzz/corpus_engine | wc -l) seeds, no failure"; \
	else \
	  tail -40 $(BUILD)/fuzz/fuzz_engine.log; \
	  echo "check-fuzz-engine: FAILED (log: $(BUILD)/fuzz/fuzz_engine.log; input: $(BUILD)/fuzz/engine-*)"; exit 1; \
	fi

# ---- every unit test under ASan + UBSan ----------------------------------------
# (covers test_xml and test_xml_golden too, which check-xml-asan in mk/xml.mk
# also runs against the XML sources alone)
ASAN_DIR := $(BUILD)/asan
ASAN_BIN := $(patsubst tests/unit/%.c,$(ASAN_DIR)/%,$(UNIT_SRC))
ASAN_CORE_OBJ := $(patsubst core/%.c,$(ASAN_DIR)/core/%.o,$(CORE_SRC))

.SECONDARY: $(ASAN_CORE_OBJ)
$(ASAN_DIR)/core/%.o: core/%.c $(SAN_HDRS)
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_CFLAGS) $(SAN_UB_FLAGS) -c $< -o $@

$(ASAN_DIR)/%: tests/unit/%.c $(ASAN_CORE_OBJ) $(SAN_HDRS) tests/unit/kt.h
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_CFLAGS) -Itests/unit $(SAN_UB_FLAGS) $< $(ASAN_CORE_OBJ) -o $@

check-asan: $(ASAN_BIN)
	@out=$$(ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 tests/run_unit.sh $^ 2>&1); rc=$$?; \
	  printf '%s\n' "$$out" | sed 's/^unit:/check-asan:/'; exit $$rc

# ---- valgrind ------------------------------------------------------------------
check-valgrind: $(BUILD)/tests/test_engine
	@out=$$(valgrind --error-exitcode=1 --leak-check=full -q $(BUILD)/tests/test_engine 2>&1); rc=$$?; \
	  if [ $$rc -ne 0 ]; then printf '%s\n' "$$out" | tail -60; echo "check-valgrind: FAILED (exit $$rc)"; exit 1; fi; \
	  echo "check-valgrind: test_engine clean under valgrind ($$(printf '%s\n' "$$out" | grep -E '[0-9]+ passed' | tail -1 | sed 's/^ *//'))"

check-valgrind-login: $(BUILD)/kinglet
	@KINGLET=$(BUILD)/kinglet tests/integration/valgrind_login.sh

CHECK_STEPS += check-fuzz-engine check-asan check-valgrind check-valgrind-login

.PHONY: fuzz-engine check-fuzz-engine check-asan check-valgrind check-valgrind-login
