# kinglet — test infrastructure: the libstrophe baseline client, the delay
# proxy's test, the Prosody smoke test.
#
# Exports:
#   STROPHE_CLIENT  build/tests/strophe_client (tests/integration/strophe_client.c)
#   NETNS           tests/netns.sh      run a command in a loopback-only netns
#   PROSODY_SH      tests/prosody/prosody.sh   start/stop DIR, cert DIR NAME SAN
#   DELAY_PROXY     tests/delay_proxy.py
# Targets: check-delay-proxy, check-prosody-smoke (both in CHECK_STEPS; they
# need root for the network namespace).

STROPHE_CLIENT := $(BUILD)/tests/strophe_client
NETNS := tests/netns.sh
PROSODY_SH := tests/prosody/prosody.sh
DELAY_PROXY := tests/delay_proxy.py

$(STROPHE_CLIENT): tests/integration/strophe_client.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $< -o $@ -lstrophe

ALL_TARGETS += $(STROPHE_CLIENT)

check-delay-proxy:
	@$(NETNS) tests/integration/delay_proxy_test.sh

check-prosody-smoke: $(STROPHE_CLIENT)
	@STROPHE_CLIENT=$(STROPHE_CLIENT) $(NETNS) tests/integration/prosody_smoke.sh

CHECK_STEPS += check-delay-proxy check-prosody-smoke

.PHONY: check-delay-proxy check-prosody-smoke
