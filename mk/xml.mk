# kinglet — XML tokenizer/writer: sanitizer run of the unit tests, benchmark.
# (The tokenizer's libFuzzer target, fuzz-xml / check-fuzz-xml, is in mk/fuzz.mk.)
# Targets:
#   check-xml-asan   the XML unit and golden tests built with ASan + UBSan (not in
#                    CHECK_STEPS: check-asan in mk/sanitize.mk covers every unit test)
#   bench-xml        kinglet vs expat vs libxml2 SAX, MB/s (in BENCH_STEPS)

XML_CORE_SRC := core/kl_xml.c core/kl_xw.c core/kl_status.c
FUZZ_CC ?= clang
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

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

BENCH_STEPS += bench-xml

.PHONY: check-xml-asan bench-xml
