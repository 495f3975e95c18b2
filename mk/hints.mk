# kinglet — the connection-hints file as a secret at rest: authenticated with
# a device key, written 0600 (core/kl_cache.c, examples/common/kl_cli_common.c).
# Target: check-hints-auth (in CHECK_STEPS): tests/integration/hints_auth_test.sh
# in a loopback-only namespace: forged and tampered hints carrying a TLS
# session for a server the client does not trust end in KL_ERR_TLS_CERT with
# no <auth/> on the wire (proved by the server's log of every plaintext
# byte); authentic hints resume; files 0600; symbolic links not followed.
# mk/mbedtls.mk is read after this file: prerequisites name the objects by
# path, the recipe uses its variables (deferred).

$(BUILD)/tests/integration/hints_forge: tests/integration/hints_forge.c $(BUILD)/port/mbedtls/kl_crypto_mbedtls.o \
		$(CORE_LIB) $(BUILD)/mbedtls/libmbedtls.a $(BUILD)/mbedtls/libmbedx509.a $(BUILD)/mbedtls/libmbedcrypto.a \
		$(wildcard include/kinglet/*.h port/mbedtls/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(KL_TLS_CFLAGS) -Iport/mbedtls $< $(KL_CRYPTO_OBJ) $(CORE_LIB) $(MBEDTLS_LIBS) -o $@

# The simulator is optional here (it needs libslirp): the test runs its
# case when $(BUILD)/kinglet-sim exists.
check-hints-auth: $(BUILD)/kinglet $(BUILD)/tests/integration/hints_forge $(BUILD)/tests/integration/tls_resume_client
	@KINGLET=$(BUILD)/kinglet KL_HINTS_FORGE=$(BUILD)/tests/integration/hints_forge \
	  KL_TLS_RESUME_CLIENT=$(BUILD)/tests/integration/tls_resume_client KINGLET_SIM=$(BUILD)/kinglet-sim \
	  tests/integration/hints_auth_test.sh

ALL_TARGETS += $(BUILD)/tests/integration/hints_forge
CHECK_STEPS += check-hints-auth

.PHONY: check-hints-auth
