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
# (BENCH_XML_OPT) when their Debian source trees are in third_party/: expat
# 2.5.x and libxml2 2.9.x, which `make bench` fetches first (`make deps-bench`,
# scripts/deps.sh --bench: suite bookworm). Without them (the fetch failed, or
# `make bench-xml` alone on a fresh clone) the benchmark links the system's
# libraries and its first line says so. Of several trees the last by name is
# taken (never one moved aside, *.stale.*); the trees, the compiler and the
# flags are recorded in $(BENCH_XML_DIR)/config, and a change rebuilds.
BENCH_XML_BIN := $(BUILD)/bench/bench_xml
BENCH_XML_OPT := $(OPT) -g
BENCH_XML_DIR := $(BUILD)/bench/xmlref
bench_xml_tree = $(lastword $(sort $(foreach d,$(patsubst %/$2,%,$(wildcard third_party/$1/$2)),$(if $(findstring .stale.,$d),,$d))))
EXPAT_TREE := $(call bench_xml_tree,expat-2.5.*,expat/lib/xmlparse.c)
LIBXML2_TREE := $(call bench_xml_tree,libxml2-*2.9.*,configure)
EXPAT_SRC := $(if $(EXPAT_TREE),$(EXPAT_TREE)/expat/lib)
LIBXML2_SRC := $(LIBXML2_TREE)
BENCH_XML_CONFIG := $(BENCH_XML_DIR)/config

ifneq ($(and $(EXPAT_SRC),$(LIBXML2_SRC)),)
EXPAT_OBJ := $(addprefix $(BENCH_XML_DIR)/expat/,xmlparse.o xmltok.o xmlrole.o)
LIBXML2_LIB := $(BENCH_XML_DIR)/libxml2/.libs/libxml2.a
BENCH_XML_REF_CFLAGS := -I$(EXPAT_SRC) -I$(BENCH_XML_DIR)/libxml2/include -I$(LIBXML2_SRC)/include \
  -DBENCH_LIBS='"built from source with $(BENCH_XML_OPT): $(EXPAT_TREE), $(LIBXML2_TREE)"'
BENCH_XML_REF_LIBS := $(EXPAT_OBJ) $(LIBXML2_LIB) -lm -lpthread
BENCH_XML_REFS := $(CC) $(BENCH_XML_OPT) $(EXPAT_TREE) $(LIBXML2_TREE)

# expat's configuration as its own build makes it on Linux (namespaces, DTD,
# 1024 bytes of context)
$(BENCH_XML_DIR)/expat/expat_config.h:
	@mkdir -p $(dir $@)
	@printf '%s\n' '#define BYTEORDER 1234' '#define HAVE_GETRANDOM 1' '#define HAVE_SYSCALL_GETRANDOM 1' \
	  '#define HAVE_STDINT_H 1' '#define HAVE_STDLIB_H 1' '#define HAVE_STRING_H 1' '#define HAVE_UNISTD_H 1' \
	  '#define HAVE_FCNTL_H 1' '#define HAVE_MMAP 1' '#define STDC_HEADERS 1' '#define XML_CONTEXT_BYTES 1024' \
	  '#define XML_DEV_URANDOM 1' '#define XML_DTD 1' '#define XML_NS 1' > $@

$(BENCH_XML_DIR)/expat/%.o: $(EXPAT_SRC)/%.c $(BENCH_XML_DIR)/expat/expat_config.h $(BENCH_XML_CONFIG)
	$(CC) $(BENCH_XML_OPT) -DHAVE_EXPAT_CONFIG_H -I$(BENCH_XML_DIR)/expat -I$(EXPAT_SRC) -c $< -o $@

# libxml2: its own configure (defaults as a distribution builds it, minus the
# optional compression/ICU/python parts), static, out of tree, from scratch
# when the tree or the flags changed
$(LIBXML2_LIB): $(BENCH_XML_CONFIG)
	@rm -rf $(BENCH_XML_DIR)/libxml2 && mkdir -p $(BENCH_XML_DIR)/libxml2
	cd $(BENCH_XML_DIR)/libxml2 && $(abspath $(LIBXML2_SRC))/configure -q CC="$(CC)" \
	  CFLAGS="$(BENCH_XML_OPT)" --disable-shared --enable-static --without-python --without-zlib \
	  --without-lzma --without-icu > configure.log 2>&1 || { tail -20 configure.log; exit 1; }
	$(MAKE) -C $(BENCH_XML_DIR)/libxml2 ACLOCAL=true AUTOCONF=true AUTOMAKE=true AUTOHEADER=true \
	  libxml2.la > $(BENCH_XML_DIR)/libxml2/make.log 2>&1 \
	  || { tail -20 $(BENCH_XML_DIR)/libxml2/make.log; exit 1; }
else
BENCH_XML_REF_CFLAGS := $$(xml2-config --cflags) -DBENCH_LIBS='"the SYSTEM libraries, NOT built with the \
  same flags as kinglet: no expat 2.5 and libxml2 2.9 source trees in third_party/; make bench fetches them \
  and says why when it cannot"'
BENCH_XML_REF_LIBS := -lexpat $$(xml2-config --libs)
BENCH_XML_REFS := $(CC) system
EXPAT_OBJ :=
LIBXML2_LIB :=
endif

# rewritten only when it changes, so that what depends on it is rebuilt then
$(BENCH_XML_CONFIG): bench-xml-config
	@mkdir -p $(dir $@)
	@echo '$(BENCH_XML_REFS)' | cmp -s - $@ || echo '$(BENCH_XML_REFS)' > $@

$(BENCH_XML_BIN): tests/bench/bench_xml.c $(XML_CORE_SRC) $(wildcard include/kinglet/*.h) $(EXPAT_OBJ) $(LIBXML2_LIB) \
  $(BENCH_XML_CONFIG)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra $(BENCH_XML_OPT) -Iinclude $(BENCH_XML_REF_CFLAGS) \
	  tests/bench/bench_xml.c $(XML_CORE_SRC) -o $@ $(BENCH_XML_REF_LIBS)

bench-xml: $(BENCH_XML_BIN)
	@$(BENCH_XML_BIN)

BENCH_STEPS += bench-xml

.PHONY: check-xml-asan bench-xml bench-xml-config
