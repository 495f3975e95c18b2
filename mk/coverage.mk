# kinglet — line and branch coverage of core/ (issue 14).
#
#   coverage        builds core/ with --coverage at -O0 into $(BUILD)/cov and
#                   runs everything that drives core/ directly:
#                     - the unit tests (tests/unit, scripted servers);
#                     - the port tests (tests/port: SCRAM, SASL2, the hints
#                       cache over mbedTLS);
#                     - every fuzz harness (tests/fuzz/fuzz_NAME.c) linked
#                       with tests/fuzz/replay.c instead of libFuzzer, on its
#                       committed corpus and regressions, unmutated, in sorted
#                       order (the same inputs on every machine).
#                   Then prints lines and branches taken per core/ file and in
#                   total (tests/coverage.sh, gcov -b).
#   check-coverage  the same, in `make check` (about 30 s from scratch): fails
#                   when the total is below COV_MIN_LINES % of lines or
#                   COV_MIN_BRANCHES % of branches (95 and 90). No line or
#                   branch is excluded from the count: one that cannot be
#                   reached is removed from the code.
COV_BUILD := $(BUILD)/cov
COV_MIN_LINES ?= 95
COV_MIN_BRANCHES ?= 90
COV_CFLAGS := --coverage -Wno-format-truncation

coverage:
	@mkdir -p $(COV_BUILD)/fuzz
	@find $(COV_BUILD) -name '*.gcda' -delete
	@$(MAKE) --no-print-directory BUILD=$(COV_BUILD) OPT=-O0 \
	  EXTRA_CFLAGS='$(COV_CFLAGS)' check-unit check-port-unit
	@echo "coverage: replaying the fuzz corpora ($(FUZZ_TARGETS))"
	@set -e; for t in $(FUZZ_TARGETS); do \
	  $(CC) -std=c11 -O0 $(COV_CFLAGS) -Iinclude -Icore tests/fuzz/fuzz_$$t.c \
	    tests/fuzz/replay.c $(patsubst core/%.c,$(COV_BUILD)/core/%.o,$(CORE_SRC)) \
	    -o $(COV_BUILD)/fuzz/replay_$$t; \
	  find tests/fuzz/corpus_$$t tests/fuzz/regressions_$$t -type f 2>/dev/null | \
	    LC_ALL=C sort | xargs -r $(COV_BUILD)/fuzz/replay_$$t; \
	done
	@tests/coverage.sh $(COV_BUILD) $(COV_FLOOR)

check-coverage:
	@$(MAKE) --no-print-directory coverage COV_FLOOR='$(COV_MIN_LINES) $(COV_MIN_BRANCHES)'

CHECK_STEPS += check-coverage
.PHONY: coverage check-coverage
