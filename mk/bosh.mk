# kinglet — BOSH (XEP-0124/0206): the HTTP/1.1 codec and the BOSH framing
# (core/kl_http.c, core/kl_bosh.c), their fuzzing, the POSIX BOSH port and
# the build/kinglet-bosh CLI, the integration test against real servers.
# Targets:
#   fuzz-http, fuzz-bosh     build/fuzz/fuzz_{http,bosh} (libFuzzer + ASan + UBSan, clang)
#   check-fuzz-http          run each FUZZ_BOSH_SECONDS (default 15) from a temporary
#   check-fuzz-bosh          copy of tests/fuzz/corpus_{http,bosh}/ (the repo is never
#                            written); a crash leaves its input in build/fuzz/{http,bosh}-*
#   check-bosh               tests/integration/bosh_test.sh in a loopback-only netns
#                            (Prosody over HTTP, errors; root)
# To fuzz longer by hand: make fuzz-http && build/fuzz/fuzz_http DIR tests/fuzz/corpus_http

BOSH_FUZZ_CC ?= clang
BOSH_SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_BOSH_SECONDS ?= 15
BOSH_HDRS := $(wildcard include/kinglet/*.h) core/kl_string.h

# ---- fuzzing ----------------------------------------------------------------
FUZZ_HTTP_BIN := $(BUILD)/fuzz/fuzz_http
FUZZ_BOSH_BIN := $(BUILD)/fuzz/fuzz_bosh

$(FUZZ_HTTP_BIN): tests/fuzz/fuzz_http.c core/kl_http.c core/kl_status.c $(BOSH_HDRS)
	@mkdir -p $(dir $@)
	$(BOSH_FUZZ_CC) -std=c11 -Wall -Wextra -Werror -O1 -g -Iinclude -Icore -fsanitize=fuzzer $(BOSH_SAN_FLAGS) \
	  tests/fuzz/fuzz_http.c core/kl_http.c core/kl_status.c -o $@

# The BOSH layer drives the whole engine: link every core source.
$(FUZZ_BOSH_BIN): tests/fuzz/fuzz_bosh.c $(CORE_SRC) $(BOSH_HDRS)
	@mkdir -p $(dir $@)
	$(BOSH_FUZZ_CC) -std=c11 -Wall -Wextra -Werror -O1 -g -Iinclude -Icore -fsanitize=fuzzer $(BOSH_SAN_FLAGS) \
	  tests/fuzz/fuzz_bosh.c $(CORE_SRC) -o $@

fuzz-http: $(FUZZ_HTTP_BIN)
fuzz-bosh: $(FUZZ_BOSH_BIN)

# check-fuzz-NAME: run build/fuzz/fuzz_NAME from a scratch copy of its corpus.
define bosh_fuzz_check
check-fuzz-$(1): $$(BUILD)/fuzz/fuzz_$(1)
	@tmp=$$$$(mktemp -d /tmp/kl-fuzz-$(1).XXXXXX) && trap 'rm -rf "$$$$tmp"' EXIT && \
	cp tests/fuzz/corpus_$(1)/* "$$$$tmp"/ && \
	if $$(BUILD)/fuzz/fuzz_$(1) -max_total_time=$$(FUZZ_BOSH_SECONDS) -max_len=4096 -timeout=10 \
	     -rss_limit_mb=2048 -print_final_stats=0 -artifact_prefix=$$(BUILD)/fuzz/$(1)- \
	     "$$$$tmp" > $$(BUILD)/fuzz/fuzz_$(1).log 2>&1; then \
	  echo "check-fuzz-$(1): $$$$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' $$(BUILD)/fuzz/fuzz_$(1).log) runs in $$(FUZZ_BOSH_SECONDS) s from $$$$(ls tests/fuzz/corpus_$(1) | wc -l) seeds, no failure"; \
	else \
	  tail -40 $$(BUILD)/fuzz/fuzz_$(1).log; \
	  echo "check-fuzz-$(1): FAILED (log: $$(BUILD)/fuzz/fuzz_$(1).log; input: $$(BUILD)/fuzz/$(1)-*)"; exit 1; \
	fi
endef
$(eval $(call bosh_fuzz_check,http))

CHECK_STEPS += check-fuzz-http
.PHONY: fuzz-http fuzz-bosh check-fuzz-http check-fuzz-bosh check-bosh
$(eval $(call bosh_fuzz_check,bosh))
CHECK_STEPS += check-fuzz-bosh

# ---- the POSIX BOSH port and build/kinglet-bosh ------------------------------------
# mk/mbedtls.mk and mk/posix.mk are read after this file: their variables
# are empty here, so prerequisites name the objects' paths and the mbedTLS
# libraries are linked through the (deferred) recipe.
KL_POSIX_BOSH_OBJ := $(BUILD)/port/posix/kl_posix_bosh.o
BOSH_TLS_OBJ := $(BUILD)/port/mbedtls/kl_tls.o

$(KL_POSIX_BOSH_OBJ): port/posix/kl_posix_bosh.c port/posix/kl_posix_bosh.h port/posix/kl_posix.h $(BOSH_TLS_OBJ) $(BOSH_HDRS) $(wildcard port/mbedtls/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(KL_PORT_CFLAGS) -c $< -o $@

$(BUILD)/examples/cli/kinglet_bosh.o: examples/cli/kinglet_bosh.c port/posix/kl_posix_bosh.h $(BOSH_TLS_OBJ) $(BOSH_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(KL_PORT_CFLAGS) -c $< -o $@

# The mbedTLS libraries by path: mk/mbedtls.mk's variables are not set yet.
$(BUILD)/kinglet-bosh: $(BUILD)/examples/cli/kinglet_bosh.o $(BUILD)/examples/common/kl_cli_common.o \
		$(KL_POSIX_BOSH_OBJ) $(BUILD)/port/posix/kl_posix.o \
		$(BOSH_TLS_OBJ) $(CORE_LIB) $(BUILD)/mbedtls/libmbedtls.a $(BUILD)/mbedtls/libmbedx509.a \
		$(BUILD)/mbedtls/libmbedcrypto.a
	$(CC) -o $@ $^

# The same program inside build/kinglet: `kinglet --bosh URL …` runs it.
$(BUILD)/examples/cli/kinglet_bosh_in_cli.o: examples/cli/kinglet_bosh.c port/posix/kl_posix_bosh.h $(BOSH_TLS_OBJ) $(BOSH_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(KL_PORT_CFLAGS) -Dmain=kinglet_bosh_main -c $< -o $@

ALL_TARGETS += $(BUILD)/kinglet-bosh

check-bosh: $(BUILD)/kinglet-bosh $(BUILD)/kinglet
	@tests/integration/bosh_test.sh

CHECK_STEPS += check-bosh
