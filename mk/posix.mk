# The POSIX port and the kinglet CLI (needs mbedTLS: mk/mbedtls.mk).
POSIX_SRC := port/posix/kl_posix_net.c
POSIX_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(POSIX_SRC))
KL_PORT_CFLAGS = $(KL_TLS_CFLAGS) -Iport/posix -Iport/mbedtls -Iexamples/common
# What the command-line programs share (exit codes, the hints file).
CLI_COMMON_OBJ := $(BUILD)/examples/common/kl_cli_common.o

$(CLI_COMMON_OBJ): examples/common/kl_cli_common.c examples/common/kl_cli_common.h $(wildcard include/kinglet/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Iexamples/common -c $< -o $@

$(BUILD)/port/posix/%.o: port/posix/%.c port/posix/kl_posix_net.h port/posix/kl_posix_compat.h $(MBEDTLS_STAMP) $(wildcard include/kinglet/*.h port/mbedtls/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(KL_PORT_CFLAGS) -c $< -o $@

$(BUILD)/examples/cli/kinglet.o: examples/cli/kinglet.c examples/common/kl_cli_common.h port/posix/kl_posix_net.h port/mbedtls/kl_tls_bind.h $(MBEDTLS_STAMP) $(wildcard include/kinglet/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(KL_PORT_CFLAGS) -c $< -o $@

$(BUILD)/kinglet: $(BUILD)/examples/cli/kinglet.o $(CLI_COMMON_OBJ) $(POSIX_OBJ) $(KL_POSIX_DNS_OBJ) $(KL_TLS_OBJ) $(KL_TLS_BIND_OBJ) $(KL_CRYPTO_OBJ) $(CORE_LIB) $(MBEDTLS_LIBS)
	$(CC) -o $@ $^

ALL_TARGETS += $(BUILD)/kinglet

check-login: $(BUILD)/kinglet
	@tests/integration/login_test.sh

check-hostile: $(BUILD)/kinglet
	@tests/integration/hostile_test.sh

# No stanza from the network ends the session: a peer sends one stanza per
# receive bound through Prosody, between normal messages that must arrive.
check-limits: $(BUILD)/kinglet
	@KINGLET=$(BUILD)/kinglet tests/integration/limits_test.sh

# The connection manager against a real Prosody through a proxy that cuts
# the link at offsets across the whole login (KL_LINKCUT_STRIDE).
check-linkcut: $(BUILD)/kinglet
	@KINGLET=$(BUILD)/kinglet tests/integration/linkcut_test.sh

# XMPP over WebSocket (RFC 7395) against Prosody's mod_websocket.
check-ws: $(BUILD)/kinglet
	@KINGLET=$(BUILD)/kinglet tests/integration/ws_test.sh

# XEP-0198 against Prosody and ejabberd through the fault proxy: 1000 messages each way
# across 50 cuts of the live link (0 lost, 0 duplicates, every reconnect a
# resumption), a silent link found by the keepalive, a restart that resumes.
check-sm-traffic: $(BUILD)/kinglet
	@KINGLET=$(BUILD)/kinglet tests/integration/sm_traffic_test.sh prosody
	@KINGLET=$(BUILD)/kinglet tests/integration/sm_traffic_test.sh ejabberd

CHECK_STEPS += check-login check-hostile check-limits check-linkcut check-ws check-sm-traffic

# The demo runs the simulator: kinglet over lwIP + mbedTLS (static arena) on
# a libslirp link; scripts/demo.sh is the same over BSD sockets.
demo: deps
	@$(MAKE) --no-print-directory $(BUILD)/kinglet $(BUILD)/kinglet-sim
	@scripts/demo_sim.sh

.PHONY: check-login check-hostile check-limits check-linkcut check-ws check-sm-traffic

$(BUILD)/bench/sizes: tests/bench/sizes.c $(wildcard include/kinglet/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $< -o $@

bench-size: $(BUILD)/bench/sizes
	@$(BUILD)/bench/sizes

bench-login: $(BUILD)/kinglet $(BUILD)/tests/strophe_client
	@tests/bench/login_bench.sh

# Stream management on the wire, Prosody and ejabberd, beside libstrophe:
# what a resumption costs after a cut (round trips, bytes) beside a first
# login, and what staying online and idle costs per hour (keepalive: <r/> and
# <a/> through TLS vs libstrophe's TCP keepalive probes, captured). ~2.5 min.
bench-sm: $(BUILD)/kinglet $(BUILD)/tests/strophe_client
	@KINGLET=$(BUILD)/kinglet STROPHE_CLIENT=$(BUILD)/tests/strophe_client tests/bench/sm_bench.sh

BENCH_STEPS += bench-size bench-login bench-sm
.PHONY: bench-size bench-login bench-sm

# Tests of core/ that need a port's crypto (mbedTLS): tests/port/test_*.c
PORT_TEST_BIN := $(patsubst tests/port/%.c,$(BUILD)/tests/port/%,$(sort $(wildcard tests/port/test_*.c)))
$(BUILD)/tests/port/%: tests/port/%.c $(KL_CRYPTO_OBJ) $(CORE_LIB) $(MBEDTLS_LIBS) tests/unit/kt.h tests/unit/kt_feed.h tests/unit/kt_sha1.h
	@mkdir -p $(dir $@)
	$(CC) $(KL_TLS_CFLAGS) -Iport/mbedtls -Itests/unit $< $(KL_CRYPTO_OBJ) $(CORE_LIB) $(MBEDTLS_LIBS) -o $@

check-port-unit: $(PORT_TEST_BIN)
	@tests/run_unit.sh $^ | sed 's/^unit:/port-unit:/'

ALL_TARGETS += $(PORT_TEST_BIN)
CHECK_STEPS += check-port-unit
.PHONY: check-port-unit

check-s2s: $(BUILD)/kinglet
	@tests/integration/s2s_test.sh

CHECK_STEPS += check-s2s
.PHONY: check-s2s

check-full: $(BUILD)/kinglet
	@tests/integration/full_test.sh

CHECK_STEPS += check-full
.PHONY: check-full

check-srv-cli: $(BUILD)/kinglet
	@tests/integration/srv_cli_test.sh

CHECK_STEPS += check-srv-cli
.PHONY: check-srv-cli
