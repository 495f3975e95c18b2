# kinglet — line and branch coverage of core/ (the first step of issue 14).
#
#   coverage   builds core/ and the tests that drive it directly — the unit
#              tests (tests/unit, scripted servers) and the port tests
#              (tests/port: SCRAM, SASL2, the hints cache over mbedTLS) —
#              with --coverage at -O0 into $(BUILD)/cov, runs them, and
#              prints lines and branches taken per core/ file and in total
#              (tests/coverage.sh, gcov -b). Not in `make check` yet: no
#              threshold is enforced.
COV_BUILD := $(BUILD)/cov

coverage:
	@mkdir -p $(COV_BUILD)
	@find $(COV_BUILD) -name '*.gcda' -delete
	@$(MAKE) --no-print-directory BUILD=$(COV_BUILD) OPT=-O0 \
	  EXTRA_CFLAGS='--coverage -Wno-format-truncation' check-unit check-port-unit
	@tests/coverage.sh $(COV_BUILD)

.PHONY: coverage
