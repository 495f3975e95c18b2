# kinglet — DNS: the SRV codec's fuzzing, the POSIX UDP resolver, its test
# against a real dnsmasq.
# Exports:
#   KL_POSIX_DNS_OBJ  build/port/posix/kl_posix_dns.o (port flags, KL_PORT_CFLAGS);
#                     link it with the core library (kl_dns.o, kl_status.o)
#   DNS_CLIENT        build/tests/integration/dns_client (tests/integration/dns_client.c)
# Targets:
#   fuzz-dns         build/fuzz/fuzz_dns (libFuzzer + ASan + UBSan, clang)
#   check-fuzz-dns   run it FUZZ_DNS_SECONDS (default 15) from a temporary copy
#                    of tests/fuzz/corpus_dns/ (the repo is never written);
#                    a crash leaves its input in build/fuzz/dns-* (in CHECK_STEPS)
#   check-dns        tests/integration/dns_test.sh: dnsmasq on 127.0.0.1:5353 in a
#                    loopback-only netns (root; in CHECK_STEPS)
# To fuzz longer by hand: make fuzz-dns && build/fuzz/fuzz_dns DIR tests/fuzz/corpus_dns

DNS_CORE_SRC := core/kl_dns.c core/kl_status.c
DNS_HDRS := include/kinglet/kl_dns.h include/kinglet/kl_status.h include/kinglet/kl_config_defaults.h core/kl_string.h
DNS_FUZZ_CC ?= clang
DNS_SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_DNS_SECONDS ?= 15

# ---- fuzzing ----------------------------------------------------------------
FUZZ_DNS_BIN := $(BUILD)/fuzz/fuzz_dns

$(FUZZ_DNS_BIN): tests/fuzz/fuzz_dns.c $(DNS_CORE_SRC) $(DNS_HDRS)
	@mkdir -p $(dir $@)
	$(DNS_FUZZ_CC) -std=c11 -Wall -Wextra -Werror -O1 -g -Iinclude -Icore -fsanitize=fuzzer $(DNS_SAN_FLAGS) \
	  tests/fuzz/fuzz_dns.c $(DNS_CORE_SRC) -o $@

fuzz-dns: $(FUZZ_DNS_BIN)

check-fuzz-dns: $(FUZZ_DNS_BIN)
	@tmp=$$(mktemp -d /tmp/kl-fuzz-dns.XXXXXX) && trap 'rm -rf "$$tmp"' EXIT && \
	cp tests/fuzz/corpus_dns/* "$$tmp"/ && \
	if $(FUZZ_DNS_BIN) -max_total_time=$(FUZZ_DNS_SECONDS) -max_len=1024 -timeout=10 \
	     -rss_limit_mb=2048 -print_final_stats=0 -artifact_prefix=$(BUILD)/fuzz/dns- \
	     "$$tmp" > $(BUILD)/fuzz/fuzz_dns.log 2>&1; then \
	  echo "check-fuzz-dns: $$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' $(BUILD)/fuzz/fuzz_dns.log) runs in $(FUZZ_DNS_SECONDS) s from $$(ls tests/fuzz/corpus_dns | wc -l) seeds, no failure"; \
	else \
	  tail -40 $(BUILD)/fuzz/fuzz_dns.log; \
	  echo "check-fuzz-dns: FAILED (log: $(BUILD)/fuzz/fuzz_dns.log; input: $(BUILD)/fuzz/dns-*)"; exit 1; \
	fi

# ---- the POSIX resolver ----------------------------------------------------------
# An explicit rule, so posix.mk's pattern rule (which also matches) is not used;
# KL_PORT_CFLAGS comes from mk/posix.mk and is expanded when the recipe runs.
KL_POSIX_DNS_OBJ := $(BUILD)/port/posix/kl_posix_dns.o

$(KL_POSIX_DNS_OBJ): port/posix/kl_posix_dns.c port/posix/kl_posix_dns.h $(DNS_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(KL_PORT_CFLAGS) -c $< -o $@

# Linked with the two core objects it needs, not the whole library.
DNS_CLIENT := $(BUILD)/tests/integration/dns_client

$(DNS_CLIENT): tests/integration/dns_client.c $(KL_POSIX_DNS_OBJ) $(BUILD)/core/kl_dns.o $(BUILD)/core/kl_status.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Iport/posix $< $(KL_POSIX_DNS_OBJ) $(BUILD)/core/kl_dns.o $(BUILD)/core/kl_status.o -o $@

check-dns: $(DNS_CLIENT)
	@DNS_CLIENT=$(DNS_CLIENT) tests/netns.sh tests/integration/dns_test.sh

ALL_TARGETS += $(DNS_CLIENT)
CHECK_STEPS += check-fuzz-dns check-dns

.PHONY: fuzz-dns check-fuzz-dns check-dns
