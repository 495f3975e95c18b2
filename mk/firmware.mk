# kinglet — the Cortex-M firmware (QEMU mps2-an386), its budgets and `make size`.
#
# Targets:
#   firmware                build/firmware/netcheck.elf (+ .bin, .map), prints its size
#   firmware-tlscheck       build/firmware/tlscheck.elf: lwIP + mbedTLS + port/mbedtls
#   check-firmware-tlscheck TLS 1.3 handshake from the board to openssl s_server
#                           (verified chain and name), arena/stack peaks (in CHECK_STEPS)
#   firmware-mbedtls        mbedTLS 3.6 for Cortex-M4 with the board's config:
#                           build/firmware/mbedtls/lib*.a, prints their size
#   check-firmware-netcheck boot netcheck.elf in qemu-system-arm: DHCP, TCP echo
#                           through QEMU's user network to the host's loopback
#                           (in CHECK_STEPS)
#   firmware-xmpp           build/firmware/xmpp/xmpp_sensor.elf: the XMPP application
#                           (FW_XMPP_* variables below)
#   check-firmware-xmpp     xmpp_sensor against a throwaway Prosody under QEMU (in CHECK_STEPS)
#   check-firmware-sm       xmpp_sensor's stream management under QEMU: a silent link cut
#                           (QEMU's set_link), a reset cut (RST) and a system_reset with the
#                           session in no-init RAM, each resumed (in CHECK_STEPS)
#   check-size              kinglet's core text as linked into the minimal-profile
#                           xmpp_sensor (FW_KL_MINIMAL: stream management off)
#                           against FW_CORE_TEXT_BUDGET (in CHECK_STEPS)
#   size                    text/data/bss per module: core for Cortex-M0+,
#                           Cortex-M4 and RV32IMC; the M4 images by module
# Variables: LWIP_DIR, MBEDTLS_DIR (default: newest third_party/ trees),
#   FW_STACK_SIZE (default 8192), FW_CORE_TEXT_BUDGET (default 16384).
#
# Everything here uses its own variables (FW_*): mk/lwip.mk and mk/mbedtls.mk
# build the same trees for the host with other options.

FW_BUILD := $(BUILD)/firmware
FW_CC := arm-none-eabi-gcc
FW_SIZE := arm-none-eabi-size
FW_OBJCOPY := arm-none-eabi-objcopy
FW_CPU := -mcpu=cortex-m4 -mthumb
FW_STACK_SIZE ?= 8192
FW_CORE_TEXT_BUDGET ?= 16384
FW_QEMU ?= qemu-system-arm
FW_BOARD := port/mps2

FW_LWIP_DIR := $(if $(LWIP_DIR),$(LWIP_DIR),$(patsubst %/src/include/lwip/init.h,%,$(lastword \
	$(sort $(wildcard third_party/lwip-2.2.*/src/include/lwip/init.h)))))
FW_MBEDTLS_DIR := $(if $(MBEDTLS_DIR),$(MBEDTLS_DIR),$(patsubst %/include/mbedtls/build_info.h,%,$(lastword \
	$(sort $(wildcard third_party/mbedtls-3.6.*/include/mbedtls/build_info.h)))))

FW_COMMON := $(FW_CPU) -Os -g -ffunction-sections -fdata-sections
# The minimal profile, what the 16 KB core budget is measured in: PLAIN +
# bind + safe pipelining, without SCRAM, s2s, the hints cache and full
# pipelining (include/kinglet/kl_config_defaults.h), without XEP-0198
# stream management and XEP-0478's idle-seconds (keepalive and dead-peer
# detection stay); the connection manager with XMPP over TCP only: no BOSH
# or WebSocket framing (their codecs not linked, no buffers for them), one
# connection slot, one endpoint (include/kinglet/kl_session.h).
FW_KL_MINIMAL := -DKL_ENABLE_SCRAM=0 -DKL_ENABLE_SASL2=0 -DKL_ENABLE_S2S=0 -DKL_ENABLE_CACHE=0 -DKL_ENABLE_FULL=0 -DKL_ENABLE_LEGACY_SESSION=0 \
	-DKL_ENABLE_SM=0 -DKL_ENABLE_STREAM_LIMITS=0 -DKL_ENABLE_APP=0 \
	-DKL_ENABLE_BOSH=0 -DKL_ENABLE_WS=0 -DKL_SESSION_SLOTS=1 -DKL_SESSION_MAX_ENDPOINTS=1
# The engine the firmware images carry: the minimal profile plus XEP-0198
# stream management (xmpp_sensor resumes across lost links and resets).
# Every firmware object sees the same switches; check-size links a second,
# minimal-profile xmpp_sensor from objects of its own (FW_MIN_BUILD).
FW_KL_FEATURES := $(filter-out -DKL_ENABLE_SM=0,$(FW_KL_MINIMAL)) -DKL_ENABLE_SM=1
# Our code: warnings are errors. Board headers first, then lwIP's.
FW_CFLAGS := -std=c11 -Wall -Wextra -Werror $(FW_COMMON) $(FW_KL_FEATURES) -Iinclude -I$(FW_BOARD) \
	-I$(FW_LWIP_DIR)/src/include
# Third-party code: warnings shown, never fatal.
FW_LWIP_CFLAGS := -std=gnu11 -Wall $(FW_COMMON) -I$(FW_BOARD) -I$(FW_LWIP_DIR)/src/include
FW_MBEDTLS_CFLAGS := -Iinclude -Iport/mbedtls -I$(FW_BOARD) -I$(FW_MBEDTLS_DIR)/include \
	-DMBEDTLS_CONFIG_FILE='"kl_mbedtls_config.h"' -DKL_MBEDTLS_FIRMWARE \
	-DMBEDTLS_USER_CONFIG_FILE='"mbedtls_board_config.h"'
FW_LDFLAGS := $(FW_CPU) -nostartfiles -specs=nano.specs -Wl,--gc-sections \
	-T $(FW_BOARD)/mps2.ld -Wl,--defsym=__stack_size=$(FW_STACK_SIZE) -Wl,--no-warn-rwx-segments

# Relink when the link flags change (FW_STACK_SIZE=...).
FW_LD_STAMP := $(FW_BUILD)/ldflags
ifneq ($(file <$(FW_LD_STAMP)),$(FW_LDFLAGS))
$(shell mkdir -p $(FW_BUILD))
$(file >$(FW_LD_STAMP),$(FW_LDFLAGS))
endif

# Recompile when the compile flags change (FW_KL_FEATURES, ...).
FW_CC_STAMP := $(FW_BUILD)/cflags
ifneq ($(file <$(FW_CC_STAMP)),$(FW_CFLAGS))
$(shell mkdir -p $(FW_BUILD))
$(file >$(FW_CC_STAMP),$(FW_CFLAGS))
endif

# ---- kinglet core, the board, lwIP ---------------------------------------------
FW_CORE_OBJ := $(patsubst core/%.c,$(FW_BUILD)/core/%.o,$(CORE_SRC))
FW_BOARD_SRC := $(FW_BOARD)/startup.c $(FW_BOARD)/board.c $(FW_BOARD)/syscalls.c $(FW_BOARD)/lan9118.c
FW_BOARD_OBJ := $(patsubst $(FW_BOARD)/%.c,$(FW_BUILD)/board/%.o,$(FW_BOARD_SRC))
FW_HDRS := $(wildcard include/kinglet/*.h core/*.h $(FW_BOARD)/*.h $(FW_BOARD)/arch/*.h) $(FW_CC_STAMP)

$(FW_BUILD)/core/%.o: core/%.c $(FW_HDRS)
	@mkdir -p $(dir $@)
	@echo "CC-M4 $<"
	@$(FW_CC) $(FW_CFLAGS) -Icore -c $< -o $@

# board.c gets the build date (the X.509 clock's floor) and a per-build
# constant for the emulation-only entropy mix.
$(FW_BUILD)/board/board.o: $(FW_BOARD)/board.c $(FW_HDRS)
	@mkdir -p $(dir $@)
	@echo "CC-M4 $<"
	@$(FW_CC) $(FW_CFLAGS) -DBOARD_BUILD_EPOCH=$${SOURCE_DATE_EPOCH:-$$(date +%s)}LL \
	  -DBOARD_BUILD_SEED=0x$$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')ull -c $< -o $@

$(FW_BUILD)/board/%.o: $(FW_BOARD)/%.c $(FW_HDRS)
	@mkdir -p $(dir $@)
	@echo "CC-M4 $<"
	@$(FW_CC) $(FW_CFLAGS) -c $< -o $@

ifneq ($(strip $(FW_LWIP_DIR)),)
FW_LWIP_SRC := $(addprefix $(FW_LWIP_DIR)/src/core/,init.c def.c inet_chksum.c ip.c mem.c memp.c \
	netif.c pbuf.c stats.c sys.c tcp.c tcp_in.c tcp_out.c timeouts.c udp.c dns.c) \
	$(addprefix $(FW_LWIP_DIR)/src/core/ipv4/,dhcp.c etharp.c icmp.c ip4.c ip4_addr.c) \
	$(FW_LWIP_DIR)/src/netif/ethernet.c
FW_LWIP_OBJ := $(patsubst $(FW_LWIP_DIR)/src/%.c,$(FW_BUILD)/lwip/%.o,$(FW_LWIP_SRC))
FW_LWIP_LIB := $(FW_BUILD)/liblwip.a

$(FW_BUILD)/lwip/%.o: $(FW_LWIP_DIR)/src/%.c $(FW_BOARD)/lwipopts.h $(FW_BOARD)/arch/cc.h
	@mkdir -p $(dir $@)
	@echo "CC-M4 lwip/$*.c"
	@$(FW_CC) $(FW_LWIP_CFLAGS) -c $< -o $@

$(FW_LWIP_LIB): $(FW_LWIP_OBJ)
	@rm -f $@
	@arm-none-eabi-ar rcs $@ $^
else
FW_LWIP_LIB := $(FW_BUILD)/liblwip.a
$(FW_LWIP_LIB):
	@echo "firmware.mk: no lwIP 2.2 tree in third_party/ (run 'make deps', or set LWIP_DIR)" >&2; exit 1
endif

# ---- netcheck: the board bring-up image ----------------------------------------
FW_NETCHECK := $(FW_BUILD)/netcheck.elf
FW_NETCHECK_OBJ := $(FW_BUILD)/examples/netcheck.o

$(FW_NETCHECK_OBJ): examples/firmware/netcheck.c $(FW_HDRS) $(FW_BOARD)/lwipopts.h
	@mkdir -p $(dir $@)
	@echo "CC-M4 $<"
	@$(FW_CC) $(FW_CFLAGS) -c $< -o $@

# Core objects are linked whole (not from an archive): --gc-sections keeps
# what the image uses, and the map shows every core file.
$(FW_NETCHECK): $(FW_NETCHECK_OBJ) $(FW_BOARD_OBJ) $(FW_CORE_OBJ) $(FW_LWIP_LIB) $(FW_BOARD)/mps2.ld $(FW_LD_STAMP)
	@echo "LD $@"
	@$(FW_CC) $(FW_LDFLAGS) -Wl,-Map=$(FW_BUILD)/netcheck.map $(FW_NETCHECK_OBJ) $(FW_BOARD_OBJ) \
	  $(FW_CORE_OBJ) $(FW_LWIP_LIB) -o $@
	@$(FW_OBJCOPY) -O binary $@ $(FW_BUILD)/netcheck.bin
	@$(FW_SIZE) $@

firmware: $(FW_NETCHECK)

check-firmware-netcheck: $(FW_NETCHECK)
	@tests/integration/firmware_netcheck.sh $(FW_NETCHECK)

# ---- mbedTLS for the firmware ------------------------------------------------------
FW_MBEDTLS_BUILD := $(FW_BUILD)/mbedtls
FW_MBEDTLS_LIBS := $(FW_MBEDTLS_BUILD)/libmbedtls.a $(FW_MBEDTLS_BUILD)/libmbedx509.a \
	$(FW_MBEDTLS_BUILD)/libmbedcrypto.a
FW_MBEDTLS_CFG := port/mbedtls/kl_mbedtls_config.h $(FW_BOARD)/mbedtls_board_config.h

ifneq ($(strip $(FW_MBEDTLS_DIR)),)
FW_MBEDTLS_SRC := $(sort $(wildcard $(FW_MBEDTLS_DIR)/library/*.c))
FW_MBEDTLS_X509_SRC := $(filter $(FW_MBEDTLS_DIR)/library/x509% $(FW_MBEDTLS_DIR)/library/pkcs7.c,$(FW_MBEDTLS_SRC))
FW_MBEDTLS_TLS_SRC := $(filter $(FW_MBEDTLS_DIR)/library/ssl_% $(FW_MBEDTLS_DIR)/library/mps_% \
	$(FW_MBEDTLS_DIR)/library/debug.c $(FW_MBEDTLS_DIR)/library/net_sockets.c,$(FW_MBEDTLS_SRC))
FW_MBEDTLS_CRYPTO_SRC := $(filter-out $(FW_MBEDTLS_X509_SRC) $(FW_MBEDTLS_TLS_SRC),$(FW_MBEDTLS_SRC))
fw_mbedtls_obj = $(patsubst $(FW_MBEDTLS_DIR)/library/%.c,$(FW_MBEDTLS_BUILD)/obj/%.o,$(1))

$(FW_MBEDTLS_BUILD)/obj/%.o: $(FW_MBEDTLS_DIR)/library/%.c $(FW_MBEDTLS_CFG)
	@mkdir -p $(dir $@)
	@echo "CC-M4 mbedtls/$*.c"
	@$(FW_CC) -std=c99 -Wall $(FW_COMMON) $(FW_MBEDTLS_CFLAGS) -I$(FW_MBEDTLS_DIR)/library -c $< -o $@

$(FW_MBEDTLS_BUILD)/libmbedcrypto.a: $(call fw_mbedtls_obj,$(FW_MBEDTLS_CRYPTO_SRC))
$(FW_MBEDTLS_BUILD)/libmbedx509.a: $(call fw_mbedtls_obj,$(FW_MBEDTLS_X509_SRC))
$(FW_MBEDTLS_BUILD)/libmbedtls.a: $(call fw_mbedtls_obj,$(FW_MBEDTLS_TLS_SRC))
$(FW_MBEDTLS_LIBS):
	@rm -f $@
	@arm-none-eabi-ar rcs $@ $^
else
$(FW_MBEDTLS_LIBS):
	@echo "firmware.mk: no mbedTLS 3.6 tree in third_party/ (run 'make deps', or set MBEDTLS_DIR)" >&2; exit 1
endif

# The board's mbedTLS hooks and the TLS port, compiled for the firmware.
FW_TLS_OBJ := $(FW_BUILD)/board/board_mbedtls.o $(FW_BUILD)/port/kl_tls.o $(FW_BUILD)/port/kl_crypto_mbedtls.o

$(FW_BUILD)/board/board_mbedtls.o: $(FW_BOARD)/board_mbedtls.c $(FW_HDRS) $(FW_MBEDTLS_CFG)
	@mkdir -p $(dir $@)
	@echo "CC-M4 $<"
	@$(FW_CC) $(FW_CFLAGS) $(FW_MBEDTLS_CFLAGS) -c $< -o $@

$(FW_BUILD)/port/%.o: port/mbedtls/%.c $(FW_HDRS) $(wildcard port/mbedtls/*.h) $(FW_MBEDTLS_CFG)
	@mkdir -p $(dir $@)
	@echo "CC-M4 $<"
	@$(FW_CC) $(FW_CFLAGS) $(FW_MBEDTLS_CFLAGS) -c $< -o $@

firmware-mbedtls: $(FW_MBEDTLS_LIBS)
	@$(FW_SIZE) -t $(FW_MBEDTLS_LIBS) | tail -1 | awk '{printf "firmware-mbedtls: %s text, %s data, %s bss (all objects, before --gc-sections)\n", $$1, $$2, $$3}'

firmware-tls-port: $(FW_TLS_OBJ)

# ---- tlscheck: mbedTLS + port/mbedtls on the board against openssl s_server ----------
# The CA is build-time configuration: the build makes a throwaway CA and a
# server certificate for TLSCHECK_SERVER_NAME under build/firmware/tlscheck/
# (the test serves that certificate) and compiles the CA into the image.
FW_TLSCHECK := $(FW_BUILD)/tlscheck.elf
FW_TLSCHECK_PKI := $(FW_BUILD)/tlscheck
FW_TLSCHECK_NAME := tls.kinglet.test

$(FW_TLSCHECK_PKI)/tlscheck_ca.h:
	@mkdir -p $(dir $@)
	@cd $(dir $@) && \
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null && \
	openssl req -x509 -new -key ca.key -subj "/CN=kinglet tlscheck CA" -days 3650 -out ca.pem \
	  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null && \
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key 2>/dev/null && \
	openssl req -new -key server.key -subj "/CN=$(FW_TLSCHECK_NAME)" -out server.csr 2>/dev/null && \
	printf 'subjectAltName=DNS:$(FW_TLSCHECK_NAME)\nbasicConstraints=CA:FALSE\n' > server.ext && \
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
	  -extfile server.ext -out server.pem 2>/dev/null && \
	{ echo '/* generated by mk/firmware.mk: the CA tlscheck trusts */'; \
	  echo '#define TLSCHECK_SERVER_NAME "$(FW_TLSCHECK_NAME)"'; \
	  echo '#define TLSCHECK_CA_PEM \'; sed 's/.*/    "&\\n" \\/' ca.pem; echo '    ""'; } > tlscheck_ca.h.tmp && \
	mv tlscheck_ca.h.tmp tlscheck_ca.h
	@echo "GEN $@ (throwaway CA + server certificate for $(FW_TLSCHECK_NAME))"

$(FW_BUILD)/examples/tlscheck.o: examples/firmware/tlscheck.c $(FW_TLSCHECK_PKI)/tlscheck_ca.h $(FW_HDRS) \
		$(FW_BOARD)/lwipopts.h $(FW_MBEDTLS_CFG) port/mbedtls/kl_tls.h
	@mkdir -p $(dir $@)
	@echo "CC-M4 $<"
	@$(FW_CC) $(FW_CFLAGS) $(FW_MBEDTLS_CFLAGS) -I$(FW_TLSCHECK_PKI) -c $< -o $@

$(FW_TLSCHECK): $(FW_BUILD)/examples/tlscheck.o $(FW_BOARD_OBJ) $(FW_TLS_OBJ) $(FW_CORE_OBJ) $(FW_LWIP_LIB) \
		$(FW_MBEDTLS_LIBS) $(FW_BOARD)/mps2.ld $(FW_LD_STAMP)
	@echo "LD $@"
	@$(FW_CC) $(FW_LDFLAGS) -Wl,-Map=$(FW_BUILD)/tlscheck.map $(FW_BUILD)/examples/tlscheck.o \
	  $(FW_BOARD_OBJ) $(FW_TLS_OBJ) $(FW_CORE_OBJ) $(FW_LWIP_LIB) \
	  -Wl,--start-group $(FW_MBEDTLS_LIBS) -Wl,--end-group -o $@
	@$(FW_SIZE) $@

firmware-tlscheck: $(FW_TLSCHECK)

check-firmware-tlscheck: $(FW_TLSCHECK)
	@tests/integration/firmware_tlscheck.sh $(FW_TLSCHECK) $(FW_TLSCHECK_PKI)

# ---- xmpp_sensor: the application image ---------------------------------------------
# Logs in to an XMPP server over STARTTLS (safe pipelining) through the
# connection manager (core/kl_session.c) over port/lwip and port/mbedtls,
# sends a reading every few seconds, answers echo and ping.
# Its configuration is build-time, from these variables, into a generated
# header in FW_XMPP_OUT (never literals in the library):
#   FW_XMPP_JID        the device's JID            (alice@localhost/sensor)
#   FW_XMPP_PASSWORD   its password                (alicepass)
#   FW_XMPP_SERVER     server IPv4 address         (10.0.2.100: QEMU's guestfwd)
#   FW_XMPP_PORT       server port                 (5222)
#   FW_XMPP_TO         where readings go           (bob@localhost)
#   FW_XMPP_PERIOD_MS  reading period              (5000)
#   FW_XMPP_EXIT_AFTER close and exit QEMU after N echoes (0: run forever; tests)
#   FW_XMPP_RECONNECT  1: retry lost links even with FW_XMPP_EXIT_AFTER (default:
#                      only when it is 0)
#   FW_XMPP_KEEPALIVE  "T_MS T2_MS": probe after T idle ms, dead T2 ms later
#                      (default "0 0": the engine's 90 s / 30 s)
#   FW_XMPP_CA         the trust anchor, PEM or DER (the test passes its
#                      Prosody's DIR/ca.der); unset: a throwaway CA whose key
#                      is discarded (sizes only: that image trusts no server)
#   FW_XMPP_OUT        where the header, the object and the image go
#                      (build/firmware/xmpp; the test builds into its own dir)
FW_XMPP_JID ?= alice@localhost/sensor
FW_XMPP_PASSWORD ?= alicepass
FW_XMPP_SERVER ?= 10.0.2.100
FW_XMPP_PORT ?= 5222
FW_XMPP_TO ?= bob@localhost
FW_XMPP_PERIOD_MS ?= 5000
FW_XMPP_EXIT_AFTER ?= 0
FW_XMPP_RECONNECT ?=
FW_XMPP_KEEPALIVE ?= 0 0
FW_XMPP_CA ?=
FW_XMPP_OUT ?= $(FW_BUILD)/xmpp
FW_XMPP := $(FW_XMPP_OUT)/xmpp_sensor.elf
FW_XMPP_PLACEHOLDER_CA := $(FW_BUILD)/xmpp-placeholder-ca/ca.der
FW_XMPP_CA_FILE := $(if $(FW_XMPP_CA),$(FW_XMPP_CA),$(FW_XMPP_PLACEHOLDER_CA))
# The connection manager's primitives for the board: port/lwip's network
# layer (TCP connections as kl_lwip_net_ops, SRV) and the TLS binding
# (kl_tls_mbedtls_ops over port/mbedtls/kl_tls.c).
FW_LWIP_NET_OBJ := $(FW_BUILD)/port/kl_lwip_net.o
FW_TLS_BIND_OBJ := $(FW_BUILD)/port/kl_tls_bind.o

# Regenerate the header when a value changes.
FW_XMPP_VARS := $(FW_XMPP_JID)|$(FW_XMPP_PASSWORD)|$(FW_XMPP_SERVER)|$(FW_XMPP_PORT)|$(FW_XMPP_TO)|$(FW_XMPP_PERIOD_MS)|$(FW_XMPP_EXIT_AFTER)|$(FW_XMPP_CA_FILE)|$(FW_XMPP_RECONNECT)|$(FW_XMPP_KEEPALIVE)
FW_XMPP_STAMP := $(FW_XMPP_OUT)/config.vars
ifneq ($(file <$(FW_XMPP_STAMP)),$(FW_XMPP_VARS))
$(shell mkdir -p $(FW_XMPP_OUT))
$(file >$(FW_XMPP_STAMP),$(FW_XMPP_VARS))
endif

$(FW_XMPP_PLACEHOLDER_CA):
	@mkdir -p $(dir $@)
	@openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
	  -subj "/CN=kinglet placeholder CA (key discarded)" -days 3650 -outform DER -out $@ 2>/dev/null
	@echo "GEN $@ (placeholder trust anchor: set FW_XMPP_CA for a real server)"

$(FW_XMPP_OUT)/xmpp_sensor_config.h: $(FW_XMPP_STAMP) $(FW_XMPP_CA_FILE) examples/firmware/xmpp_config.sh
	@examples/firmware/xmpp_config.sh $@ '$(FW_XMPP_JID)' '$(FW_XMPP_PASSWORD)' '$(FW_XMPP_SERVER)' \
	  '$(FW_XMPP_PORT)' '$(FW_XMPP_TO)' '$(FW_XMPP_PERIOD_MS)' '$(FW_XMPP_EXIT_AFTER)' '$(FW_XMPP_CA_FILE)' \
	  '$(FW_XMPP_RECONNECT)' '$(word 1,$(FW_XMPP_KEEPALIVE))' '$(word 2,$(FW_XMPP_KEEPALIVE))'
	@echo "GEN $@ ($(FW_XMPP_JID) -> $(FW_XMPP_SERVER):$(FW_XMPP_PORT), CA $(FW_XMPP_CA_FILE))"

# port/lwip for the board: the board's lwipopts.h (-I$(FW_BOARD) comes first).
$(FW_LWIP_NET_OBJ): port/lwip/kl_lwip_net.c port/lwip/kl_lwip_net.h $(FW_HDRS) $(FW_BOARD)/lwipopts.h
	@mkdir -p $(dir $@)
	@echo "CC-M4 $<"
	@$(FW_CC) $(FW_CFLAGS) -Iport/lwip -c $< -o $@

$(FW_XMPP_OUT)/xmpp_sensor.o: examples/firmware/xmpp_sensor.c $(FW_XMPP_OUT)/xmpp_sensor_config.h $(FW_HDRS) \
		$(FW_BOARD)/lwipopts.h $(FW_MBEDTLS_CFG) port/mbedtls/kl_tls.h port/mbedtls/kl_tls_bind.h \
		port/lwip/kl_lwip_net.h
	@mkdir -p $(dir $@)
	@echo "CC-M4 $<"
	@$(FW_CC) $(FW_CFLAGS) $(FW_MBEDTLS_CFLAGS) -Iport/lwip -I$(FW_XMPP_OUT) -c $< -o $@

$(FW_XMPP): $(FW_XMPP_OUT)/xmpp_sensor.o $(FW_BOARD_OBJ) $(FW_TLS_OBJ) $(FW_TLS_BIND_OBJ) $(FW_LWIP_NET_OBJ) \
		$(FW_CORE_OBJ) $(FW_LWIP_LIB) $(FW_MBEDTLS_LIBS) $(FW_BOARD)/mps2.ld $(FW_LD_STAMP)
	@echo "LD $@"
	@$(FW_CC) $(FW_LDFLAGS) -Wl,-Map=$(FW_XMPP_OUT)/xmpp_sensor.map $(FW_XMPP_OUT)/xmpp_sensor.o \
	  $(FW_BOARD_OBJ) $(FW_TLS_OBJ) $(FW_TLS_BIND_OBJ) $(FW_LWIP_NET_OBJ) $(FW_CORE_OBJ) $(FW_LWIP_LIB) \
	  -Wl,--start-group $(FW_MBEDTLS_LIBS) -Wl,--end-group -o $@
	@$(FW_OBJCOPY) -O binary $@ $(FW_XMPP_OUT)/xmpp_sensor.bin
	@$(FW_SIZE) $@

firmware-xmpp: $(FW_XMPP)

# The test starts Prosody first, then builds the image with its CA into its
# own directory (the objects above are shared) and boots it.
check-firmware-xmpp: $(FW_XMPP) $(BUILD)/kinglet
	@BUILD=$(BUILD) tests/integration/firmware_xmpp.sh

# Stream management under QEMU: the same way, with its own settings
# (reconnect on, a short keepalive) and a QEMU monitor for set_link and
# system_reset.
check-firmware-sm: $(FW_XMPP) $(BUILD)/kinglet
	@BUILD=$(BUILD) tests/integration/firmware_sm.sh

# ---- the minimal profile, for the core budget ---------------------------------------
# The same application linked with FW_KL_MINIMAL (stream management off)
# from objects of its own: the image that check-size measures, so that the
# budget keeps counting the core it was set for while the shipped image
# carries XEP-0198. Everything that includes kinglet's headers is compiled
# again (kl_client_t's layout follows the switches); lwIP, mbedTLS and the
# board objects are shared.
FW_MIN_BUILD := $(FW_BUILD)/minimal
FW_MIN_CFLAGS := $(filter-out $(FW_KL_FEATURES),$(FW_CFLAGS)) $(FW_KL_MINIMAL)
FW_MIN_CORE_OBJ := $(patsubst core/%.c,$(FW_MIN_BUILD)/core/%.o,$(CORE_SRC))
FW_MIN_PORT_OBJ := $(FW_MIN_BUILD)/port/kl_lwip_net.o $(FW_MIN_BUILD)/port/kl_tls_bind.o
FW_XMPP_MIN := $(FW_XMPP_OUT)/minimal/xmpp_sensor.elf
FW_XMPP_MIN_MAP := $(FW_XMPP_OUT)/minimal/xmpp_sensor.map

$(FW_MIN_BUILD)/core/%.o: core/%.c $(FW_HDRS)
	@mkdir -p $(dir $@)
	@echo "CC-M4 $< (minimal profile)"
	@$(FW_CC) $(FW_MIN_CFLAGS) -Icore -c $< -o $@

$(FW_MIN_BUILD)/port/kl_lwip_net.o: port/lwip/kl_lwip_net.c port/lwip/kl_lwip_net.h $(FW_HDRS) $(FW_BOARD)/lwipopts.h
	@mkdir -p $(dir $@)
	@echo "CC-M4 $< (minimal profile)"
	@$(FW_CC) $(FW_MIN_CFLAGS) -Iport/lwip -c $< -o $@

$(FW_MIN_BUILD)/port/kl_tls_bind.o: port/mbedtls/kl_tls_bind.c $(FW_HDRS) $(wildcard port/mbedtls/*.h) $(FW_MBEDTLS_CFG)
	@mkdir -p $(dir $@)
	@echo "CC-M4 $< (minimal profile)"
	@$(FW_CC) $(FW_MIN_CFLAGS) $(FW_MBEDTLS_CFLAGS) -c $< -o $@

$(FW_XMPP_OUT)/minimal/xmpp_sensor.o: examples/firmware/xmpp_sensor.c $(FW_XMPP_OUT)/xmpp_sensor_config.h $(FW_HDRS) \
		$(FW_BOARD)/lwipopts.h $(FW_MBEDTLS_CFG) port/mbedtls/kl_tls.h port/mbedtls/kl_tls_bind.h \
		port/lwip/kl_lwip_net.h
	@mkdir -p $(dir $@)
	@echo "CC-M4 $< (minimal profile)"
	@$(FW_CC) $(FW_MIN_CFLAGS) $(FW_MBEDTLS_CFLAGS) -Iport/lwip -I$(FW_XMPP_OUT) -c $< -o $@

$(FW_XMPP_MIN): $(FW_XMPP_OUT)/minimal/xmpp_sensor.o $(FW_BOARD_OBJ) $(FW_TLS_OBJ) $(FW_MIN_PORT_OBJ) \
		$(FW_MIN_CORE_OBJ) $(FW_LWIP_LIB) $(FW_MBEDTLS_LIBS) $(FW_BOARD)/mps2.ld $(FW_LD_STAMP)
	@echo "LD $@ (minimal profile)"
	@$(FW_CC) $(FW_LDFLAGS) -Wl,-Map=$(FW_XMPP_MIN_MAP) $(FW_XMPP_OUT)/minimal/xmpp_sensor.o \
	  $(FW_BOARD_OBJ) $(FW_TLS_OBJ) $(FW_MIN_PORT_OBJ) $(FW_MIN_CORE_OBJ) $(FW_LWIP_LIB) \
	  -Wl,--start-group $(FW_MBEDTLS_LIBS) -Wl,--end-group -o $@
	@$(FW_SIZE) $@

firmware-xmpp-minimal: $(FW_XMPP_MIN)

# ---- sizes ------------------------------------------------------------------------
FW_SIZE_FLAGS := -std=c11 -Wall -Wextra -Werror -Os -ffunction-sections -fdata-sections $(FW_KL_MINIMAL) -Iinclude -Icore
FW_SIZE_ARCHS := m0plus m4 rv32imc
FW_SIZE_CC_m0plus := arm-none-eabi-gcc -mcpu=cortex-m0plus -mthumb
FW_SIZE_CC_m4 := arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb
FW_SIZE_CC_rv32imc := riscv64-unknown-elf-gcc -march=rv32imc -mabi=ilp32 -ffreestanding
FW_SIZE_TOOL_m0plus := arm-none-eabi-size
FW_SIZE_TOOL_m4 := arm-none-eabi-size
FW_SIZE_TOOL_rv32imc := riscv64-unknown-elf-size

define fw_size_rules
$(FW_BUILD)/size/$(1)/%.o: core/%.c $(wildcard include/kinglet/*.h core/*.h) $(FW_CC_STAMP)
	@mkdir -p $$(dir $$@)
	@$(FW_SIZE_CC_$(1)) $(FW_SIZE_FLAGS) -c $$< -o $$@
FW_SIZE_OBJ_$(1) := $(patsubst core/%.c,$(FW_BUILD)/size/$(1)/%.o,$(CORE_SRC))
endef
$(foreach a,$(FW_SIZE_ARCHS),$(eval $(call fw_size_rules,$(a))))
# The full profile: every KL_ENABLE_* at its default (all on: SCRAM,
# SASL2, s2s, hints, full pipelining, stream management, BOSH, WebSocket,
# the application layer with PubSub, MUC and CSI), Cortex-M4 -Os.
FW_SIZE_FULL_OBJ := $(patsubst core/%.c,$(FW_BUILD)/size-full/m4/%.o,$(CORE_SRC))
$(FW_BUILD)/size-full/m4/%.o: core/%.c $(wildcard include/kinglet/*.h core/*.h) $(FW_CC_STAMP)
	@mkdir -p $(dir $@)
	@$(FW_SIZE_CC_m4) $(filter-out -DKL_%,$(FW_SIZE_FLAGS)) -c $< -o $@

# The budget counts kinglet's core in the minimal profile: the text
# (.text + .rodata) of the core objects the issue names — engine (with
# PLAIN and bind) + tokenizer + writer + base64 — that --gc-sections keeps
# in the minimal-profile xmpp_sensor (FW_XMPP_MIN: FW_KL_MINIMAL, i.e.
# SCRAM, s2s, cache, full pipelining and stream management off), read from
# its map file. Other core files it links (kl_status: error texts;
# kl_session: the connection manager; kl_sm's stubs) are printed beside
# it, not counted. The shipped image (FW_XMPP, stream management on) is
# printed too, for what XEP-0198 costs; the linker holds it to 64 KB RAM
# and 256 KB flash.
FW_CORE_BUDGET_RE := ^core/(kl_engine|kl_xml|kl_xw|kl_base64)$$
FW_XMPP_MAP := $(FW_XMPP_OUT)/xmpp_sensor.map

size: $(foreach a,$(FW_SIZE_ARCHS),$(FW_SIZE_OBJ_$(a))) $(FW_SIZE_FULL_OBJ) $(FW_NETCHECK) $(FW_TLSCHECK) $(FW_XMPP) $(FW_XMPP_MIN)
	@for a in $(FW_SIZE_ARCHS); do \
	  case $$a in m0plus) t=arm-none-eabi-size; n="Cortex-M0+";; m4) t=arm-none-eabi-size; n="Cortex-M4";; \
	    *) t=riscv64-unknown-elf-size; n="RV32IMC";; esac; \
	  echo "== kinglet core, $$n, -Os, minimal profile, KL_ENABLE_*=0 (whole objects, before --gc-sections) =="; \
	  $$t -t $(FW_BUILD)/size/$$a/*.o | awk 'NR==1{printf "%-14s %7s %6s %6s\n","module","text","data","bss"; next} \
	    {n=$$6; sub(/.*\//,"",n); sub(/\.o$$/,"",n); if (n=="(TOTALS)") n="total"; printf "%-14s %7d %6d %6d\n",n,$$1,$$2,$$3}'; \
	done
	@echo "== kinglet core, Cortex-M4, -Os, full profile, every KL_ENABLE_*=1 (whole objects, before --gc-sections) =="
	@arm-none-eabi-size -t $(FW_SIZE_FULL_OBJ) | awk 'NR==1{printf "%-14s %7s %6s %6s\n","module","text","data","bss"; next} \
	  {n=$$6; sub(/.*\//,"",n); sub(/\.o$$/,"",n); if (n=="(TOTALS)") n="total"; printf "%-14s %7d %6d %6d\n",n,$$1,$$2,$$3}'
	@echo "== xmpp_sensor.elf (Cortex-M4: the XMPP application image, stream management on), linked with --gc-sections, by module =="
	@awk -f examples/firmware/map_sizes.awk $(FW_XMPP_MAP)
	@echo "== xmpp_sensor.elf in the minimal profile (stream management off: what check-size counts), by module =="
	@awk -f examples/firmware/map_sizes.awk $(FW_XMPP_MIN_MAP) | awk '$$1 ~ /^core\// || /^\(core total\)/ || /^flash/'
	@echo "== netcheck.elf (Cortex-M4), by module =="
	@awk -f examples/firmware/map_sizes.awk $(FW_BUILD)/netcheck.map | tail -4
	@echo "== tlscheck.elf (Cortex-M4: lwIP + mbedTLS TLS 1.3/1.2 client + kl_tls), by module =="
	@awk -f examples/firmware/map_sizes.awk $(FW_BUILD)/tlscheck.map | tail -4
	@echo "== largest RAM users in xmpp_sensor.elf =="
	@arm-none-eabi-nm -S --size-sort $(FW_XMPP) | awk '$$3 ~ /[bBdD]/ && $$2 >= "00000100"' \
	  | tail -12 | while read -r a sz t n; do printf "  %-28s %6d\n" "$$n" $$((16#$$sz)); done
	@$(FW_SIZE) $(FW_NETCHECK) $(FW_TLSCHECK) $(FW_XMPP) $(FW_XMPP_MIN)

check-size: $(FW_XMPP) $(FW_XMPP_MIN)
	@awk -f examples/firmware/map_sizes.awk $(FW_XMPP_MIN_MAP) > $(FW_XMPP_OUT)/minimal/modules.txt; \
	awk -f examples/firmware/map_sizes.awk $(FW_XMPP_MAP) > $(FW_XMPP_OUT)/modules.txt; \
	t=$$(awk -v re='$(FW_CORE_BUDGET_RE)' '$$1 ~ re {s += $$2} END {print s + 0}' $(FW_XMPP_OUT)/minimal/modules.txt); \
	all=$$(awk '$$1 ~ /^core\// {s += $$2} END {print s + 0}' $(FW_XMPP_OUT)/minimal/modules.txt); \
	sm=$$(awk -v re='$(FW_CORE_BUDGET_RE)' '$$1 ~ re {s += $$2} END {print s + 0}' $(FW_XMPP_OUT)/modules.txt); \
	small=$$(awk '$$1 ~ /^core\// {s += $$2} END {print s + 0}' $(FW_XMPP_OUT)/modules.txt); \
	awk -v re='$(FW_CORE_BUDGET_RE)' '$$1 ~ /^core\// {printf "check-size:   %-16s %6d%s\n", $$1, $$2, $$1 ~ re ? "" : "  (not counted)"}' \
	  $(FW_XMPP_OUT)/minimal/modules.txt; \
	pass=0; fail=0; \
	if [ "$$t" -le $(FW_CORE_TEXT_BUDGET) ]; then pass=1; \
	  echo "check-size: core (engine+xml+xw+base64) as linked in the minimal-profile xmpp_sensor.elf: $$t bytes text on Cortex-M4 -Os <= $(FW_CORE_TEXT_BUDGET) (all core/ linked: $$all)"; \
	else fail=1; \
	  echo "check-size: FAIL core (engine+xml+xw+base64) as linked in the minimal-profile xmpp_sensor.elf: $$t bytes text on Cortex-M4 -Os > budget $(FW_CORE_TEXT_BUDGET) by $$((t - $(FW_CORE_TEXT_BUDGET))) (all core/ linked: $$all)"; \
	  echo "check-size: largest input sections of those files (from the map):"; \
	  awk -v sections='$(FW_CORE_BUDGET_RE)' -f examples/firmware/map_sizes.awk $(FW_XMPP_MIN_MAP) | sort -rn | head -15 \
	    | sed 's/^/check-size:   /'; fi; \
	echo "check-size: minimal-profile xmpp_sensor.elf $$(grep '^flash [0-9]* of' $(FW_XMPP_OUT)/minimal/modules.txt)"; \
	echo "check-size: xmpp_sensor.elf as shipped (stream management on, not counted): core engine+xml+xw+base64 $$sm, all core/ $$small; $$(grep '^flash [0-9]* of' $(FW_XMPP_OUT)/modules.txt) (the linker enforces both)"; \
	echo "check-size: $$pass passed, $$fail failed"; [ $$fail = 0 ]

ALL_TARGETS += $(FW_NETCHECK) $(FW_TLSCHECK) $(FW_XMPP) $(FW_XMPP_MIN)
# The engine's transcripts on the host in the minimal profile too: what
# is compiled out must not change what is left.
$(BUILD)/tests/minimal/test_engine: tests/unit/test_engine.c tests/unit/kt.h $(CORE_SRC) $(wildcard include/kinglet/*.h core/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(FW_KL_MINIMAL) -Icore -Itests/unit $< $(CORE_SRC) -o $@

check-unit-minimal: $(BUILD)/tests/minimal/test_engine
	@set -o pipefail; $< | sed -n 's/^  engine: \(.*\)/unit-minimal: \1 (engine transcripts, minimal profile)/p'

CHECK_STEPS += check-firmware-netcheck check-firmware-tlscheck check-firmware-xmpp check-firmware-sm check-size check-unit-minimal
.PHONY: check-unit-minimal

.PHONY: firmware firmware-mbedtls firmware-tls-port firmware-tlscheck check-firmware-tlscheck check-firmware-netcheck \
	firmware-xmpp check-firmware-xmpp check-firmware-sm firmware-xmpp-minimal size check-size
