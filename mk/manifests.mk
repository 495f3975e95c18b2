# kinglet — the build manifests for other ecosystems, and the POSIX port's
# portability.
# Targets (both in CHECK_STEPS):
#   check-manifests       tests/manifests_test.py: the Zephyr module
#                         (zephyr/), the ESP-IDF component (idf_component.yml,
#                         cmake/esp_idf.cmake, Kconfig), PlatformIO's
#                         library.json and the top-level CMakeLists.txt list
#                         only files that exist and every core/*.c; one
#                         Kconfig option per KL_ENABLE_* with the header's
#                         default; one version everywhere. (Those builds
#                         cannot run here.)
#   check-posix-portable  port/posix built with -DKL_POSIX_PORTABLE=1 (the
#                         fallbacks for systems without SOCK_NONBLOCK,
#                         SOCK_CLOEXEC, MSG_NOSIGNAL, MSG_MORE, getrandom;
#                         KL_POSIX_PORTABLE_CHECK poisons those names, so a
#                         direct use does not compile), then, in a
#                         loopback-only netns (root), a probe of the port
#                         against a Python echo server and the CLI linked with
#                         it logging in to Prosody. ~10 s.
# mk/mbedtls.mk and mk/posix.mk are read after this file: prerequisites name
# objects by path, recipes use their variables (deferred).

check-manifests:
	@python3 tests/manifests_test.py

PORTABLE_DIR := $(BUILD)/posix-portable
PORTABLE_FLAGS := -DKL_POSIX_PORTABLE=1 -DKL_POSIX_PORTABLE_CHECK=1
PORTABLE_OBJ := $(PORTABLE_DIR)/kl_posix_net.o $(PORTABLE_DIR)/kl_posix_dns.o

$(PORTABLE_DIR)/%.o: port/posix/%.c port/posix/kl_posix_compat.h port/posix/kl_posix_net.h port/posix/kl_posix_dns.h $(wildcard include/kinglet/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(PORTABLE_FLAGS) -Iport/posix -c $< -o $@

# The fallbacks are what was compiled: getentropy and fcntl, never getrandom.
$(PORTABLE_DIR)/symbols.ok: $(PORTABLE_OBJ)
	@u=$$(nm -u $(PORTABLE_OBJ) | awk '{print $$2}' | sort -u); \
	for s in getentropy fcntl; do echo "$$u" | grep -qx "$$s" || { echo "check-posix-portable: $$s not used by the portable build"; exit 1; }; done; \
	if echo "$$u" | grep -qx getrandom; then echo "check-posix-portable: the portable build still calls getrandom"; exit 1; fi; \
	touch $@

$(PORTABLE_DIR)/posix_portable_probe: tests/integration/posix_portable_probe.c $(PORTABLE_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Iport/posix $< $(PORTABLE_OBJ) $(CORE_LIB) -o $@

# The CLI as $(BUILD)/kinglet, with the portable port's objects.
$(PORTABLE_DIR)/kinglet: $(BUILD)/kinglet $(PORTABLE_OBJ)
	$(CC) -o $@ $(BUILD)/examples/cli/kinglet.o $(CLI_COMMON_OBJ) $(PORTABLE_OBJ) $(KL_TLS_OBJ) $(KL_TLS_BIND_OBJ) $(KL_CRYPTO_OBJ) $(CORE_LIB) $(MBEDTLS_LIBS)

check-posix-portable: $(PORTABLE_DIR)/symbols.ok $(PORTABLE_DIR)/posix_portable_probe $(PORTABLE_DIR)/kinglet
	@KL_PORTABLE_PROBE=$(PORTABLE_DIR)/posix_portable_probe KL_PORTABLE_CLI=$(PORTABLE_DIR)/kinglet \
	  tests/integration/posix_portable_test.sh

CHECK_STEPS += check-manifests check-posix-portable
.PHONY: check-manifests check-posix-portable
