# kinglet — mbedTLS 3.6 as static libraries, the TLS port, and its test.
#
# Exports (use them in recipes or with `=`; mk/*.mk files sorted before this
# one see them empty at parse time if they use `:=`):
#   MBEDTLS_DIR     the mbedTLS 3.6 source tree (default: the newest
#                   third_party/mbedtls-3.6.* that scripts/deps.sh unpacked;
#                   set it to a vendor SDK's copy instead)
#   MBEDTLS_CFLAGS  -I flags (project's first) and -DMBEDTLS_CONFIG_FILE
#   MBEDTLS_LIBS    libmbedtls.a libmbedx509.a libmbedcrypto.a (link order)
#   KL_TLS_OBJ      the port: build/port/mbedtls/kl_tls.o
#   KL_CRYPTO_OBJ   SCRAM's hooks: build/port/mbedtls/kl_crypto_mbedtls.o
#   KL_TLS_BIND_OBJ the connection manager's TLS binding (kl_tls_mbedtls_ops):
#                   build/port/mbedtls/kl_tls_bind.o (link it with KL_TLS_OBJ)
#   KL_TLS_CFLAGS   CFLAGS_BASE + MBEDTLS_CFLAGS, for code that includes kl_tls.h
#   MBEDTLS_STAMP   a file that changes when MBEDTLS_DIR or the mbedTLS flags
#                   change: make objects that include mbedTLS headers depend on it
# Targets: mbedtls (the three libraries), check-tls (in CHECK_STEPS),
#   check-tls-small (the same with 4 KB records; not in CHECK_STEPS).
# Overrides: MBEDTLS_OPT (default -O2), MBEDTLS_EXTRA_CFLAGS, e.g.
#   make MBEDTLS_EXTRA_CFLAGS=-DMBEDTLS_SSL_IN_CONTENT_LEN=8192
# (the flag also reaches the port and everything using MBEDTLS_CFLAGS, which
# must agree with the library on struct layouts).

MBEDTLS_DIR ?= $(patsubst %/include/mbedtls/build_info.h,%,$(lastword $(sort \
	$(wildcard third_party/mbedtls-3.6.*/include/mbedtls/build_info.h))))
MBEDTLS_BUILD := $(BUILD)/mbedtls
MBEDTLS_STAMP := $(MBEDTLS_BUILD)/flags
MBEDTLS_CONFIG_DIR := port/mbedtls
MBEDTLS_OPT ?= -O2
MBEDTLS_EXTRA_CFLAGS ?=

# The project's paths come first, so a stray /usr/include/mbedtls (Debian's
# libmbedtls-dev 2.28) is never found; kl_mbedtls_config.h #errors on any
# version but 3.6 in case it were.
MBEDTLS_CFLAGS = -Iinclude -I$(MBEDTLS_CONFIG_DIR) -I$(MBEDTLS_DIR)/include \
	-DMBEDTLS_CONFIG_FILE='"kl_mbedtls_config.h"' $(MBEDTLS_EXTRA_CFLAGS)

MBEDTLS_LIBS := $(MBEDTLS_BUILD)/libmbedtls.a $(MBEDTLS_BUILD)/libmbedx509.a \
	$(MBEDTLS_BUILD)/libmbedcrypto.a

KL_TLS_OBJ := $(BUILD)/port/mbedtls/kl_tls.o
KL_CRYPTO_OBJ := $(BUILD)/port/mbedtls/kl_crypto_mbedtls.o
KL_TLS_BIND_OBJ := $(BUILD)/port/mbedtls/kl_tls_bind.o
KL_TLS_CFLAGS = $(CFLAGS_BASE) $(MBEDTLS_CFLAGS)
TLS_CLIENT_BIN := $(BUILD)/tests/integration/tls_client

ifeq ($(strip $(MBEDTLS_DIR)),)

$(MBEDTLS_LIBS) $(KL_TLS_OBJ) $(KL_CRYPTO_OBJ) $(KL_TLS_BIND_OBJ):
	@echo "mbedtls.mk: no mbedTLS 3.6 tree in third_party/ (run 'make deps', or set MBEDTLS_DIR)" >&2; exit 1

else

# Same split as mbedTLS's own library/Makefile; files whose options are off
# compile to (almost) nothing and the linker drops them.
MBEDTLS_SRC := $(sort $(wildcard $(MBEDTLS_DIR)/library/*.c))
MBEDTLS_X509_SRC := $(filter $(MBEDTLS_DIR)/library/x509% $(MBEDTLS_DIR)/library/pkcs7.c,$(MBEDTLS_SRC))
MBEDTLS_TLS_SRC := $(filter $(MBEDTLS_DIR)/library/ssl_% $(MBEDTLS_DIR)/library/mps_% \
	$(MBEDTLS_DIR)/library/debug.c $(MBEDTLS_DIR)/library/net_sockets.c,$(MBEDTLS_SRC))
MBEDTLS_CRYPTO_SRC := $(filter-out $(MBEDTLS_X509_SRC) $(MBEDTLS_TLS_SRC),$(MBEDTLS_SRC))
mbedtls_obj = $(patsubst $(MBEDTLS_DIR)/library/%.c,$(MBEDTLS_BUILD)/obj/%.o,$(1))

# Third-party code: warnings shown, never fatal; the project's -O level is
# replaced by MBEDTLS_OPT (sanitizer flags from EXTRA_CFLAGS still apply).
MBEDTLS_LIB_CFLAGS = $(filter-out -Werror -Wextra -O% -Iinclude,$(CFLAGS_BASE)) \
	$(MBEDTLS_OPT) $(MBEDTLS_CFLAGS) -I$(MBEDTLS_DIR)/library

# Rebuild everything when the tree or the flags change (another MBEDTLS_DIR,
# -DMBEDTLS_SSL_IN_CONTENT_LEN=…): a file that changes only then.
mbedtls_stamp_text := $(MBEDTLS_DIR) $(CC) $(MBEDTLS_LIB_CFLAGS)
ifneq ($(file <$(MBEDTLS_STAMP)),$(mbedtls_stamp_text))
$(shell mkdir -p $(MBEDTLS_BUILD))
$(file >$(MBEDTLS_STAMP),$(mbedtls_stamp_text))
endif

$(MBEDTLS_BUILD)/obj/%.o: $(MBEDTLS_DIR)/library/%.c $(MBEDTLS_CONFIG_DIR)/kl_mbedtls_config.h $(MBEDTLS_STAMP)
	@mkdir -p $(dir $@)
	@echo "CC mbedtls/$*.c"
	@$(CC) $(MBEDTLS_LIB_CFLAGS) -MMD -MP -c $< -o $@

$(MBEDTLS_BUILD)/libmbedcrypto.a: $(call mbedtls_obj,$(MBEDTLS_CRYPTO_SRC))
$(MBEDTLS_BUILD)/libmbedx509.a: $(call mbedtls_obj,$(MBEDTLS_X509_SRC))
$(MBEDTLS_BUILD)/libmbedtls.a: $(call mbedtls_obj,$(MBEDTLS_TLS_SRC))
$(MBEDTLS_LIBS):
	@rm -f $@
	ar rcs $@ $^

-include $(wildcard $(MBEDTLS_BUILD)/obj/*.d)

# ---- the port (our code: -Werror) ---------------------------------------------
$(KL_TLS_OBJ): port/mbedtls/kl_tls.c port/mbedtls/kl_tls.h \
		$(MBEDTLS_CONFIG_DIR)/kl_mbedtls_config.h $(wildcard include/kinglet/*.h) $(MBEDTLS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(KL_TLS_CFLAGS) -c $< -o $@

$(KL_CRYPTO_OBJ): port/mbedtls/kl_crypto_mbedtls.c port/mbedtls/kl_crypto_mbedtls.h \
		$(MBEDTLS_CONFIG_DIR)/kl_mbedtls_config.h $(wildcard include/kinglet/*.h) $(MBEDTLS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(KL_TLS_CFLAGS) -c $< -o $@

$(KL_TLS_BIND_OBJ): port/mbedtls/kl_tls_bind.c port/mbedtls/kl_tls_bind.h port/mbedtls/kl_tls.h \
		$(MBEDTLS_CONFIG_DIR)/kl_mbedtls_config.h $(wildcard include/kinglet/*.h) $(MBEDTLS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(KL_TLS_CFLAGS) -c $< -o $@

endif

mbedtls: $(MBEDTLS_LIBS)

# ---- integration test: a tiny client against openssl s_server ----------------
$(TLS_CLIENT_BIN): tests/integration/tls_client.c $(KL_TLS_OBJ) $(MBEDTLS_LIBS) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(KL_TLS_CFLAGS) -Iport/mbedtls $< $(KL_TLS_OBJ) $(CORE_LIB) $(MBEDTLS_LIBS) -o $@

check-tls: $(TLS_CLIENT_BIN)
	@tests/integration/tls_test.sh $(TLS_CLIENT_BIN)

# The same test against a second mbedTLS build with 4 KB receive records
# (a small device): adds the case of a legal 8 KB record. Not in `make
# check` (a second library build); run it when touching record handling.
check-tls-small:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/tls-small \
	  MBEDTLS_EXTRA_CFLAGS="-DMBEDTLS_SSL_IN_CONTENT_LEN=4096 -DMBEDTLS_SSL_OUT_CONTENT_LEN=2048" check-tls

# The binding's unit test (setup/close over transports that fail or stall;
# no server): in tests/port/ (check-port-unit, mk/posix.mk), but linked
# with the TLS port, which that directory's pattern rule does not link.
$(BUILD)/tests/port/test_tls_bind: tests/port/test_tls_bind.c $(KL_TLS_BIND_OBJ) $(KL_TLS_OBJ) $(CORE_LIB) \
		$(MBEDTLS_LIBS) tests/unit/kt.h
	@mkdir -p $(dir $@)
	$(CC) $(KL_TLS_CFLAGS) -Iport/mbedtls -Itests/unit $< $(KL_TLS_BIND_OBJ) $(KL_TLS_OBJ) $(CORE_LIB) \
	  $(MBEDTLS_LIBS) -o $@

ALL_TARGETS += $(MBEDTLS_LIBS) $(KL_TLS_OBJ) $(KL_TLS_BIND_OBJ) $(TLS_CLIENT_BIN)
CHECK_STEPS += check-tls

.PHONY: mbedtls check-tls check-tls-small
