# kinglet — the simulator: kinglet over lwIP (NO_SYS=1) + mbedTLS with a
# static arena, on a libslirp link. Needs mk/lwip.mk and mk/mbedtls.mk.
#
#   build/kinglet-sim     examples/sim/kinglet-sim.c + port/lwip + port/sim: XMPP
#                         over TCP, BOSH and WebSocket on the connection manager
#                         (core/kl_session.c) over kl_lwip_net_ops and
#                         kl_tls_mbedtls_ops
#   sim-tls               the simulator's own mbedTLS build in build/sim-tls/
#                         (a second copy: MBEDTLS_MEMORY_BUFFER_ALLOC_C +
#                         PLATFORM_MEMORY + MEMORY_DEBUG via
#                         port/sim/kl_sim_mbedtls_user.h, and device-sized
#                         records), built by mk/mbedtls.mk's own rules with
#                         BUILD=build/sim-tls and MBEDTLS_EXTRA_CFLAGS
#   check-sim             tests/integration/sim_test.sh (in CHECK_STEPS)
#   check-sim-features    tests/integration/sim_features_test.sh (in CHECK_STEPS):
#                         s2s bidi, full, direct TLS, SCRAM + hints, TLS
#                         resumption through the hints (stunnel), SRV over
#                         lwIP UDP (dnsmasq), all over the simulator
#   check-sim-bosh        tests/integration/sim_bosh_test.sh (in CHECK_STEPS): BOSH
#                         over HTTP and HTTPS (the manager's BOSH framing over
#                         lwIP) to Prosody, round trips equal to build/kinglet --bosh's
#   check-sim-ws          tests/integration/sim_ws_test.sh (in CHECK_STEPS): XMPP
#                         over WebSocket, ws:// and wss://, to Prosody, round
#                         trips equal to build/kinglet --ws's (4 and 5), an echo
#   check-sim-sm          tests/integration/sim_sm_test.sh (in CHECK_STEPS): XEP-0198
#                         on the simulated device, 1000 messages echoed through
#                         Prosody while the link goes silently down and up 12
#                         times (seeded): 0 lost, 0 duplicates, every reconnect
#                         resumed, the dead link found by the keepalive in T + T2
# Overrides:
#   SIM_TLS_IN / SIM_TLS_OUT   MBEDTLS_SSL_IN/OUT_CONTENT_LEN (8192 / 2048:
#                              Prosody's records are up to 8192 bytes)
#   SIM_TLS_ARENA              the mbedTLS arena in bytes (default 32768: the
#                              measured peak with 8192/2048 records is 20648,
#                              but the buffer allocator fragments: 24576 fails
#                              in certificate verification, 28672 works)

SIM_TLS_IN ?= 8192
SIM_TLS_OUT ?= 2048
SIM_TLS_ARENA ?= 32768
SIM_TLS_BUILD := $(BUILD)/sim-tls
SIM_TLS_LIBS := $(SIM_TLS_BUILD)/mbedtls/libmbedtls.a $(SIM_TLS_BUILD)/mbedtls/libmbedx509.a \
	$(SIM_TLS_BUILD)/mbedtls/libmbedcrypto.a
# kl_tls, the SCRAM hooks and the connection manager's TLS binding
# (kl_tls_bind.c), built with the simulator's mbedTLS flags.
SIM_TLS_BIND_OBJ := $(SIM_TLS_BUILD)/port/mbedtls/kl_tls_bind.o
SIM_TLS_OBJ := $(SIM_TLS_BUILD)/port/mbedtls/kl_tls.o $(SIM_TLS_BUILD)/port/mbedtls/kl_crypto_mbedtls.o \
	$(SIM_TLS_BIND_OBJ)
# The user config is named with <> so that the value survives the shell
# of the recursive make without nested quotes.
SIM_MBEDTLS_FLAGS := -Iport/sim -DMBEDTLS_USER_CONFIG_FILE="<kl_sim_mbedtls_user.h>" \
	-DMBEDTLS_SSL_IN_CONTENT_LEN=$(SIM_TLS_IN) -DMBEDTLS_SSL_OUT_CONTENT_LEN=$(SIM_TLS_OUT)

SLIRP_CFLAGS := $(shell pkg-config --cflags slirp 2>/dev/null)
SLIRP_LIBS := $(shell pkg-config --libs slirp 2>/dev/null || echo -lslirp)

# Our code: -Werror; the project's include paths first (lwIP's, then mbedTLS's).
SIM_CFLAGS = $(CFLAGS_BASE) -Iport/lwip -Iport/sim -Iport/mbedtls -Iexamples/common $(LWIP_CFLAGS) \
	-I$(MBEDTLS_DIR)/include -DMBEDTLS_CONFIG_FILE='"kl_mbedtls_config.h"' $(SIM_MBEDTLS_FLAGS) \
	-DKL_SIM_TLS_ARENA=$(SIM_TLS_ARENA)
SIM_SRC := port/lwip/kl_lwip_net.c port/sim/kl_sim_link.c port/sim/kl_sim_relay.c port/sim/kl_sim_arena.c \
	examples/sim/kinglet-sim.c
SIM_OBJ := $(patsubst %.c,$(BUILD)/sim/%.o,$(SIM_SRC))
SIM_STAMP := $(BUILD)/sim/flags
SIM_BIN := $(BUILD)/kinglet-sim

sim_stamp_text := $(CC) $(SIM_CFLAGS) $(SLIRP_CFLAGS)
ifneq ($(file <$(SIM_STAMP)),$(sim_stamp_text))
$(shell mkdir -p $(BUILD)/sim)
$(file >$(SIM_STAMP),$(sim_stamp_text))
endif

$(BUILD)/sim/%.o: %.c $(SIM_STAMP) $(wildcard include/kinglet/*.h port/lwip/*.h port/lwip/arch/*.h \
		port/sim/*.h port/mbedtls/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(SIM_CFLAGS) $(SLIRP_CFLAGS) -c $< -o $@

# The second mbedTLS build: mk/mbedtls.mk's rules, another BUILD. Always
# asked (it is quick when up to date); the link below follows it.
sim-tls:
	@$(MAKE) --no-print-directory BUILD=$(SIM_TLS_BUILD) \
	  MBEDTLS_EXTRA_CFLAGS='$(SIM_MBEDTLS_FLAGS)' $(SIM_TLS_LIBS) $(SIM_TLS_OBJ)

# mbedtls_calloc is wrapped to count failed allocations (kl_sim_arena.c).
$(SIM_BIN): $(SIM_OBJ) $(CLI_COMMON_OBJ) $(CORE_LIB) $(LWIP_LIB) sim-tls
	$(CC) -o $@ $(SIM_OBJ) $(CLI_COMMON_OBJ) $(SIM_TLS_OBJ) $(CORE_LIB) $(LWIP_LIB) $(SIM_TLS_LIBS) $(SLIRP_LIBS) \
	  -Wl,--wrap=mbedtls_calloc

sim: $(SIM_BIN)

check-sim: $(SIM_BIN) $(BUILD)/kinglet
	@tests/integration/sim_test.sh

check-sim-features: $(SIM_BIN) $(BUILD)/kinglet
	@tests/integration/sim_features_test.sh

check-sim-bosh: $(SIM_BIN) $(BUILD)/kinglet
	@tests/integration/sim_bosh_test.sh

check-sim-ws: $(SIM_BIN) $(BUILD)/kinglet
	@tests/integration/sim_ws_test.sh

check-sim-sm: $(SIM_BIN)
	@KINGLET_SIM=$(abspath $(SIM_BIN)) tests/integration/sim_sm_test.sh

ALL_TARGETS += $(SIM_BIN)
CHECK_STEPS += check-sim check-sim-features check-sim-bosh check-sim-ws check-sim-sm
.PHONY: sim sim-tls check-sim check-sim-features check-sim-bosh check-sim-ws check-sim-sm
