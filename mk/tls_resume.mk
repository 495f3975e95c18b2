# kinglet — TLS session resumption (port/mbedtls/kl_tls.c) against
# openssl s_server (TLS 1.3 and 1.2, tickets and session ids) and against
# stunnel in front of a Prosody plaintext c2s port (the direct-TLS
# terminator deployment), inside a loopback-only namespace.
# Target: check-tls-resume (in CHECK_STEPS). Needs mbedtls.mk's variables
# (used with `=`, so the order of mk/*.mk does not matter).

TLS_RESUME_CLIENT_BIN := $(BUILD)/tests/integration/tls_resume_client

$(TLS_RESUME_CLIENT_BIN): tests/integration/tls_resume_client.c $(KL_TLS_OBJ) $(MBEDTLS_LIBS) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(KL_TLS_CFLAGS) -Iport/mbedtls $< $(KL_TLS_OBJ) $(CORE_LIB) $(MBEDTLS_LIBS) -o $@

check-tls-resume: $(TLS_RESUME_CLIENT_BIN)
	@tests/integration/tls_resume_test.sh $(TLS_RESUME_CLIENT_BIN)

ALL_TARGETS += $(TLS_RESUME_CLIENT_BIN)
CHECK_STEPS += check-tls-resume

.PHONY: check-tls-resume
