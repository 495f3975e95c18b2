# kinglet — BOSH (XEP-0124/0206): the HTTP/1.1 codec and the BOSH codec
# (core/kl_http.c, core/kl_bosh.c), which the connection manager drives as a
# framing (build/kinglet --bosh URL); the integration test against real servers.
# (Their libFuzzer targets, fuzz-http / fuzz-bosh and check-fuzz-http /
# check-fuzz-bosh, are in mk/fuzz.mk.)
# Targets:
#   check-bosh               tests/integration/bosh_test.sh in a loopback-only netns
#                            (Prosody over HTTP, errors; root)

check-bosh: $(BUILD)/kinglet
	@tests/integration/bosh_test.sh

CHECK_STEPS += check-bosh
.PHONY: check-bosh
