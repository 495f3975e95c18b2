# kinglet — BOSH (XEP-0124/0206): the HTTP/1.1 codec and the BOSH framing
# (core/kl_http.c, core/kl_bosh.c), the POSIX BOSH port and the
# build/kinglet-bosh CLI, the integration test against real servers.
# (Their libFuzzer targets, fuzz-http / fuzz-bosh and check-fuzz-http /
# check-fuzz-bosh, are in mk/fuzz.mk.)
# Targets:
#   check-bosh               tests/integration/bosh_test.sh in a loopback-only netns
#                            (Prosody over HTTP, errors; root)

BOSH_HDRS := $(wildcard include/kinglet/*.h) core/kl_string.h

# ---- build/kinglet-bosh (the CLI over BOSH, on the connection manager) ----------------
# mk/mbedtls.mk and mk/posix.mk are read after this file: their variables
# are empty here, so prerequisites name the objects' paths and the mbedTLS
# libraries are linked through the (deferred) recipe.
BOSH_TLS_OBJ := $(BUILD)/port/mbedtls/kl_tls.o $(BUILD)/port/mbedtls/kl_tls_bind.o
BOSH_CLI_HDRS := port/posix/kl_posix_net.h port/mbedtls/kl_tls_bind.h $(BOSH_HDRS)

$(BUILD)/examples/cli/kinglet_bosh.o: examples/cli/kinglet_bosh.c $(BOSH_TLS_OBJ) $(BOSH_CLI_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(KL_PORT_CFLAGS) -c $< -o $@

# The mbedTLS libraries by path: mk/mbedtls.mk's variables are not set yet.
$(BUILD)/kinglet-bosh: $(BUILD)/examples/cli/kinglet_bosh.o $(BUILD)/examples/common/kl_cli_common.o \
		$(BUILD)/port/posix/kl_posix_net.o \
		$(BOSH_TLS_OBJ) $(BUILD)/port/mbedtls/kl_crypto_mbedtls.o $(CORE_LIB) $(BUILD)/mbedtls/libmbedtls.a $(BUILD)/mbedtls/libmbedx509.a \
		$(BUILD)/mbedtls/libmbedcrypto.a
	$(CC) -o $@ $^

# The same program inside build/kinglet: `kinglet --bosh URL …` runs it.
$(BUILD)/examples/cli/kinglet_bosh_in_cli.o: examples/cli/kinglet_bosh.c $(BOSH_TLS_OBJ) $(BOSH_CLI_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(KL_PORT_CFLAGS) -Dmain=kinglet_bosh_main -c $< -o $@

ALL_TARGETS += $(BUILD)/kinglet-bosh

check-bosh: $(BUILD)/kinglet-bosh $(BUILD)/kinglet
	@tests/integration/bosh_test.sh

CHECK_STEPS += check-bosh
.PHONY: check-bosh
