# kinglet — kinglet-fleet: N simulated devices in one process (Linux, epoll),
# each with its own engine, connection manager, sockets and mbedTLS session.
# Needs mk/mbedtls.mk, mk/posix.mk, mk/dns.mk.
#
#   build/kinglet-fleet   examples/fleet/kinglet-fleet.c over kl_posix_net_ops and
#                         examples/fleet/kl_fleet_tls.c (a TLS binding whose
#                         mbedtls_ssl_config, CA chain and DRBG all devices share;
#                         --tls-binding port: port/mbedtls's kl_tls_mbedtls_ops,
#                         a whole kl_tls_t per device, for comparison)
#   fleet-tls             the fleet's own mbedTLS build in build/fleet-tls/ (mk/mbedtls.mk's
#                         rules, another BUILD): MBEDTLS_PLATFORM_MEMORY (the
#                         heap is counted through mbedtls_platform_set_calloc_free),
#                         MBEDTLS_PSA_KEY_STORE_DYNAMIC (a storm holds more than
#                         the static store's 32 PSA key slots at once: one
#                         ephemeral key per handshake in flight) and device-sized
#                         records (FLEET_TLS_IN / FLEET_TLS_OUT: 8192 / 2048, as
#                         the simulator: Prosody's records are up to 8192 bytes)
#   check-fleet           tests/integration/fleet_test.sh (in CHECK_STEPS): 100
#                         devices against Prosody 0.12: a login storm, readings
#                         with none lost, --rate

FLEET_TLS_IN ?= 8192
FLEET_TLS_OUT ?= 2048
FLEET_TLS_BUILD := $(BUILD)/fleet-tls
FLEET_TLS_LIBS := $(FLEET_TLS_BUILD)/mbedtls/libmbedtls.a $(FLEET_TLS_BUILD)/mbedtls/libmbedx509.a \
	$(FLEET_TLS_BUILD)/mbedtls/libmbedcrypto.a
FLEET_TLS_OBJ := $(FLEET_TLS_BUILD)/port/mbedtls/kl_tls.o $(FLEET_TLS_BUILD)/port/mbedtls/kl_crypto_mbedtls.o \
	$(FLEET_TLS_BUILD)/port/mbedtls/kl_tls_bind.o
FLEET_MBEDTLS_FLAGS := -DMBEDTLS_PLATFORM_MEMORY -DMBEDTLS_PSA_KEY_STORE_DYNAMIC \
	-DMBEDTLS_SSL_IN_CONTENT_LEN=$(FLEET_TLS_IN) -DMBEDTLS_SSL_OUT_CONTENT_LEN=$(FLEET_TLS_OUT)
FLEET_CFLAGS = $(CFLAGS_BASE) -Iport/posix -Iport/mbedtls -I$(MBEDTLS_DIR)/include \
	-DMBEDTLS_CONFIG_FILE='"kl_mbedtls_config.h"' $(FLEET_MBEDTLS_FLAGS)
FLEET_BIN := $(BUILD)/kinglet-fleet
FLEET_OBJ := $(BUILD)/fleet/kinglet-fleet.o $(BUILD)/fleet/kl_fleet_tls.o
FLEET_STAMP := $(BUILD)/fleet/flags

fleet_stamp_text := $(CC) $(FLEET_CFLAGS)
ifneq ($(file <$(FLEET_STAMP)),$(fleet_stamp_text))
$(shell mkdir -p $(BUILD)/fleet)
$(file >$(FLEET_STAMP),$(fleet_stamp_text))
endif

$(BUILD)/fleet/%.o: examples/fleet/%.c examples/fleet/kl_fleet_tls.h $(FLEET_STAMP) \
		$(wildcard include/kinglet/*.h port/posix/*.h port/mbedtls/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(FLEET_CFLAGS) -c $< -o $@

# Always asked (quick when up to date); the link below follows it.
fleet-tls:
	@$(MAKE) --no-print-directory BUILD=$(FLEET_TLS_BUILD) \
	  MBEDTLS_EXTRA_CFLAGS='$(FLEET_MBEDTLS_FLAGS)' $(FLEET_TLS_LIBS) $(FLEET_TLS_OBJ)

# kl_posix_net.o and kl_posix_dns.o hold no mbedTLS structure: the main
# build's. Named here, not through POSIX_OBJ: mk/posix.mk is read after this
# file, and a prerequisite list is expanded when its rule is read (an empty
# POSIX_OBJ let a parallel clean build link before the object existed).
FLEET_POSIX_OBJ := $(BUILD)/port/posix/kl_posix_net.o $(BUILD)/port/posix/kl_posix_dns.o
$(FLEET_BIN): $(FLEET_OBJ) $(FLEET_POSIX_OBJ) $(CORE_LIB) fleet-tls
	$(CC) -o $@ $(FLEET_OBJ) $(FLEET_POSIX_OBJ) $(FLEET_TLS_OBJ) $(CORE_LIB) $(FLEET_TLS_LIBS)

fleet: $(FLEET_BIN)

check-fleet: $(FLEET_BIN)
	@KINGLET_FLEET=$(abspath $(FLEET_BIN)) tests/integration/fleet_test.sh

ALL_TARGETS += $(FLEET_BIN)
CHECK_STEPS += check-fleet
.PHONY: fleet fleet-tls check-fleet
