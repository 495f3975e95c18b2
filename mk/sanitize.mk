# kinglet — the unit tests under ASan/UBSan and valgrind. (The engine's
# libFuzzer target, fuzz-engine / check-fuzz-engine, is in mk/fuzz.mk.)
# Targets:
#   check-asan           every tests/unit/test_*.c with core/, built with ASan +
#                        UBSan (no recovery) into build/asan/, run from the repo root
#   check-valgrind       build/tests/test_engine under valgrind
#   check-valgrind-login build/kinglet logging in to a throwaway Prosody under
#                        valgrind (tests/integration/valgrind_login.sh; root, netns)
# All four checks are in CHECK_STEPS.

SAN_CC ?= clang
SAN_UB_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_CFLAGS := -std=c11 -Wall -Wextra -Werror -O1 -g -Iinclude -Icore
SAN_HDRS = $(wildcard include/kinglet/*.h core/*.h)

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

$(ASAN_DIR)/%: tests/unit/%.c $(ASAN_CORE_OBJ) $(SAN_HDRS) tests/unit/kt.h tests/unit/kt_feed.h tests/unit/kt_sha1.h
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

CHECK_STEPS += check-asan check-valgrind check-valgrind-login

.PHONY: check-asan check-valgrind check-valgrind-login
