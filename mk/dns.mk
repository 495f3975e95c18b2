# kinglet — DNS: the SRV codec's fuzzing, the POSIX UDP resolver, its test
# against a real dnsmasq.
# Exports:
#   KL_POSIX_DNS_OBJ  build/port/posix/kl_posix_dns.o (port flags, KL_PORT_CFLAGS);
#                     link it with the core library (kl_dns.o, kl_status.o)
#   DNS_CLIENT        build/tests/integration/dns_client (tests/integration/dns_client.c)
# (The SRV codec's libFuzzer target, fuzz-dns / check-fuzz-dns, is in mk/fuzz.mk.)
# Targets:
#   check-dns        tests/integration/dns_test.sh: dnsmasq on 127.0.0.1:5353 in a
#                    loopback-only netns (root; in CHECK_STEPS)

DNS_HDRS := include/kinglet/kl_dns.h include/kinglet/kl_status.h include/kinglet/kl_config_defaults.h core/kl_string.h

# ---- the POSIX resolver ----------------------------------------------------------
# An explicit rule, so posix.mk's pattern rule (which also matches) is not used;
# KL_PORT_CFLAGS comes from mk/posix.mk and is expanded when the recipe runs.
KL_POSIX_DNS_OBJ := $(BUILD)/port/posix/kl_posix_dns.o

$(KL_POSIX_DNS_OBJ): port/posix/kl_posix_dns.c port/posix/kl_posix_dns.h port/posix/kl_posix_compat.h $(DNS_HDRS)
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
CHECK_STEPS += check-dns

.PHONY: check-dns
