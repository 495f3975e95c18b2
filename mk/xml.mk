# kinglet — XML tokenizer/writer: sanitizer run of the unit tests, benchmark.
# (The tokenizer's libFuzzer target, fuzz-xml / check-fuzz-xml, is in mk/fuzz.mk.)
# Targets:
#   check-xml-asan   the XML unit and golden tests built with ASan + UBSan, also with
#                    KL_XML_WORDSCAN=0 (the -Os code paths) (not in CHECK_STEPS:
#                    check-asan in mk/sanitize.mk covers every unit test)
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

# ... and with the host-only fast paths compiled out, as in a -Os image
$(XML_ASAN_DIR)/slow/%: tests/unit/%.c $(XML_CORE_SRC) $(wildcard include/kinglet/*.h) tests/unit/kt.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -Wall -Wextra -Werror -O1 -g -DKL_XML_WORDSCAN=0 -Iinclude -Icore -Itests/unit \
	  $(SAN_FLAGS) $< $(XML_CORE_SRC) -o $@

check-xml-asan: $(addprefix $(XML_ASAN_DIR)/,$(XML_ASAN_TESTS)) $(addprefix $(XML_ASAN_DIR)/slow/,$(XML_ASAN_TESTS))
	@tests/run_unit.sh $^ | sed 's/^unit:/check-xml-asan:/'

# ---- benchmark --------------------------------------------------------------
# expat and libxml2 are built from source with the flags kinglet is built with
# (BENCH_XML_OPT) when their Debian source trees are in third_party/
# (expat-2.5.*, libxml2-*2.9.*: `apt-get source expat libxml2`); otherwise the
# benchmark links the system's libraries and its first line says so.
BENCH_XML_BIN := $(BUILD)/bench/bench_xml
BENCH_XML_OPT := $(OPT) -g
BENCH_XML_DIR := $(BUILD)/bench/xmlref
EXPAT_SRC := $(firstword $(wildcard third_party/expat-2.5.*/expat/lib))
LIBXML2_SRC := $(firstword $(patsubst %/parser.c,%,$(wildcard third_party/libxml2-*2.9.*/parser.c)))

ifneq ($(and $(EXPAT_SRC),$(LIBXML2_SRC)),)
EXPAT_OBJ := $(addprefix $(BENCH_XML_DIR)/expat/,xmlparse.o xmltok.o xmlrole.o)
LIBXML2_LIB := $(BENCH_XML_DIR)/libxml2/.libs/libxml2.a
BENCH_XML_REF_CFLAGS := -I$(EXPAT_SRC) -I$(BENCH_XML_DIR)/libxml2/include -I$(LIBXML2_SRC)/include \
  -DBENCH_LIBS='"built from source with $(BENCH_XML_OPT)"'
BENCH_XML_REF_LIBS := $(EXPAT_OBJ) $(LIBXML2_LIB) -lm -lpthread

# expat's configuration as its own build makes it on Linux (namespaces, DTD,
# 1024 bytes of context)
$(BENCH_XML_DIR)/expat/expat_config.h:
	@mkdir -p $(dir $@)
	@printf '%s\n' '#define BYTEORDER 1234' '#define HAVE_GETRANDOM 1' '#define HAVE_SYSCALL_GETRANDOM 1' \
	  '#define HAVE_STDINT_H 1' '#define HAVE_STDLIB_H 1' '#define HAVE_STRING_H 1' '#define HAVE_UNISTD_H 1' \
	  '#define HAVE_FCNTL_H 1' '#define HAVE_MMAP 1' '#define STDC_HEADERS 1' '#define XML_CONTEXT_BYTES 1024' \
	  '#define XML_DEV_URANDOM 1' '#define XML_DTD 1' '#define XML_NS 1' > $@

$(BENCH_XML_DIR)/expat/%.o: $(EXPAT_SRC)/%.c $(BENCH_XML_DIR)/expat/expat_config.h
	$(CC) $(BENCH_XML_OPT) -DHAVE_EXPAT_CONFIG_H -I$(BENCH_XML_DIR)/expat -I$(EXPAT_SRC) -c $< -o $@

# libxml2: its own configure (defaults as a distribution builds it, minus the
# optional compression/ICU/python parts), static, out of tree
$(LIBXML2_LIB):
	@mkdir -p $(BENCH_XML_DIR)/libxml2
	cd $(BENCH_XML_DIR)/libxml2 && $(abspath $(LIBXML2_SRC))/configure -q CC="$(CC)" \
	  CFLAGS="$(BENCH_XML_OPT)" --disable-shared --enable-static --without-python --without-zlib \
	  --without-lzma --without-icu > configure.log 2>&1 || { tail -20 configure.log; exit 1; }
	$(MAKE) -C $(BENCH_XML_DIR)/libxml2 ACLOCAL=true AUTOCONF=true AUTOMAKE=true AUTOHEADER=true \
	  libxml2.la > $(BENCH_XML_DIR)/libxml2/make.log 2>&1 \
	  || { tail -20 $(BENCH_XML_DIR)/libxml2/make.log; exit 1; }
else
BENCH_XML_REF_CFLAGS := $$(xml2-config --cflags)
BENCH_XML_REF_LIBS := -lexpat $$(xml2-config --libs)
EXPAT_OBJ :=
LIBXML2_LIB :=
endif

$(BENCH_XML_BIN): tests/bench/bench_xml.c $(XML_CORE_SRC) $(wildcard include/kinglet/*.h) $(EXPAT_OBJ) $(LIBXML2_LIB)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra $(BENCH_XML_OPT) -Iinclude $(BENCH_XML_REF_CFLAGS) \
	  tests/bench/bench_xml.c $(XML_CORE_SRC) -o $@ $(BENCH_XML_REF_LIBS)

bench-xml: $(BENCH_XML_BIN)
	@$(BENCH_XML_BIN)

BENCH_STEPS += bench-xml

.PHONY: check-xml-asan bench-xml
