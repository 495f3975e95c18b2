# kinglet — XML tokenizer/writer: fuzzing, sanitizer run of the unit tests, benchmark.
# Targets:
#   fuzz-xml         build/fuzz/fuzz_xml (libFuzzer + ASan + UBSan, clang)
#   check-fuzz-xml   run it for FUZZ_XML_SECONDS (default 20) seeded from tests/xml/*.xml
#                    (in CHECK_STEPS)
#   check-xml-asan   the XML unit and golden tests built with ASan + UBSan (not in
#                    CHECK_STEPS: check-asan in mk/sanitize.mk covers every unit test)
#   bench-xml        kinglet vs expat vs libxml2 SAX, MB/s (in BENCH_STEPS)

XML_CORE_SRC := core/kl_xml.c core/kl_xw.c core/kl_status.c
FUZZ_CC ?= clang
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_XML_SECONDS ?= 20

# ---- fuzzing ----------------------------------------------------------------
FUZZ_XML_BIN := $(BUILD)/fuzz/fuzz_xml

$(FUZZ_XML_BIN): tests/fuzz/fuzz_xml.c $(XML_CORE_SRC) $(wildcard include/kinglet/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -Wall -Wextra -Werror -O1 -g -Iinclude -fsanitize=fuzzer $(SAN_FLAGS) \
	  tests/fuzz/fuzz_xml.c $(XML_CORE_SRC) -o $@

fuzz-xml: $(FUZZ_XML_BIN)

# Seeds: each golden input behind two bytes that choose the split point.
# The fuzzer's own finds go to a scratch corpus so the run starts warm next time.
check-fuzz-xml: $(FUZZ_XML_BIN)
	@rm -rf $(BUILD)/fuzz/xml_seeds; mkdir -p $(BUILD)/fuzz/xml_seeds $(BUILD)/fuzz/xml_corpus
	@i=0; for f in tests/xml/*.xml; do i=$$((i + 1)); \
	  { printf "\\$$(printf %o $$((i % 64)))\\000"; cat $$f; } > $(BUILD)/fuzz/xml_seeds/$$(basename $$f); done
	@$(FUZZ_XML_BIN) -max_total_time=$(FUZZ_XML_SECONDS) -max_len=8192 -timeout=10 \
	  -print_final_stats=0 -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/xml_corpus $(BUILD)/fuzz/xml_seeds \
	  > $(BUILD)/fuzz/fuzz_xml.log 2>&1 \
	  || { tail -40 $(BUILD)/fuzz/fuzz_xml.log; echo "check-fuzz-xml: FAILED (log: $(BUILD)/fuzz/fuzz_xml.log)"; exit 1; }
	@echo "check-fuzz-xml: $$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' $(BUILD)/fuzz/fuzz_xml.log) runs in $(FUZZ_XML_SECONDS) s, no failure"

# ---- sanitizers over the unit and golden tests ------------------------------
XML_ASAN_DIR := $(BUILD)/asan-xml
XML_ASAN_TESTS := test_xml test_xml_golden

$(XML_ASAN_DIR)/%: tests/unit/%.c $(XML_CORE_SRC) $(wildcard include/kinglet/*.h) tests/unit/kt.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -Wall -Wextra -Werror -O1 -g -Iinclude -Icore -Itests/unit $(SAN_FLAGS) \
	  $< $(XML_CORE_SRC) -o $@

check-xml-asan: $(addprefix $(XML_ASAN_DIR)/,$(XML_ASAN_TESTS))
	@tests/run_unit.sh $^ | sed 's/^unit:/check-xml-asan:/'

# ---- benchmark --------------------------------------------------------------
BENCH_XML_BIN := $(BUILD)/bench/bench_xml

$(BENCH_XML_BIN): tests/bench/bench_xml.c $(XML_CORE_SRC) $(wildcard include/kinglet/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -O2 -g -Iinclude $$(xml2-config --cflags) \
	  tests/bench/bench_xml.c $(XML_CORE_SRC) -o $@ -lexpat $$(xml2-config --libs)

bench-xml: $(BENCH_XML_BIN)
	@$(BENCH_XML_BIN)

CHECK_STEPS += check-fuzz-xml
BENCH_STEPS += bench-xml

.PHONY: fuzz-xml check-fuzz-xml check-xml-asan bench-xml
