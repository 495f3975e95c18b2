# kinglet — lwIP 2.2 (NO_SYS=1, static pools) as build/lwip/liblwip.a.
#
# Exports (use them in recipes or with `=`):
#   LWIP_DIR      the lwIP 2.2 source tree (default: the newest
#                 third_party/lwip-2.2.* that scripts/deps.sh unpacked; set
#                 it to a vendor SDK's copy instead)
#   LWIP_CFLAGS   -I flags, the project's first: port/lwip (lwipopts.h,
#                 arch/cc.h) before $(LWIP_DIR)/src/include, so Debian's
#                 liblwip-dev headers in /usr/include are never found
#   LWIP_LIB      build/lwip/liblwip.a
#   LWIP_STAMP    changes when LWIP_DIR or the flags change
# Options: port/lwip/lwipopts.h. Overrides: LWIP_OPT (default -O2).
# Sources: core (ipv4, tcp, udp, dhcp, dns), etharp and the Ethernet netif.

LWIP_DIR ?= $(patsubst %/src/include/lwip/init.h,%,$(lastword $(sort \
	$(wildcard third_party/lwip-2.2.*/src/include/lwip/init.h))))
LWIP_BUILD := $(BUILD)/lwip
LWIP_LIB := $(LWIP_BUILD)/liblwip.a
LWIP_STAMP := $(LWIP_BUILD)/flags
LWIP_OPT ?= -O2
LWIP_CFLAGS = -Iinclude -Iport/lwip -I$(LWIP_DIR)/src/include

ifeq ($(strip $(LWIP_DIR)),)

$(LWIP_LIB):
	@echo "lwip.mk: no lwIP 2.2 tree in third_party/ (run 'make deps', or set LWIP_DIR)" >&2; exit 1

else

LWIP_SRC := $(addprefix $(LWIP_DIR)/src/core/,init.c def.c dns.c inet_chksum.c ip.c mem.c memp.c \
	netif.c pbuf.c raw.c stats.c sys.c tcp.c tcp_in.c tcp_out.c timeouts.c udp.c) \
	$(addprefix $(LWIP_DIR)/src/core/ipv4/,dhcp.c etharp.c icmp.c ip4.c ip4_addr.c ip4_frag.c) \
	$(LWIP_DIR)/src/netif/ethernet.c
LWIP_OBJ := $(patsubst $(LWIP_DIR)/src/%.c,$(LWIP_BUILD)/obj/%.o,$(LWIP_SRC))

# Third-party code: warnings shown, never fatal; -std=gnu11 is not needed.
LWIP_LIB_CFLAGS = $(filter-out -Werror -Wextra -O% -Iinclude,$(CFLAGS_BASE)) $(LWIP_OPT) $(LWIP_CFLAGS)

lwip_stamp_text := $(LWIP_DIR) $(CC) $(LWIP_LIB_CFLAGS)
ifneq ($(file <$(LWIP_STAMP)),$(lwip_stamp_text))
$(shell mkdir -p $(LWIP_BUILD))
$(file >$(LWIP_STAMP),$(lwip_stamp_text))
endif

$(LWIP_BUILD)/obj/%.o: $(LWIP_DIR)/src/%.c port/lwip/lwipopts.h port/lwip/arch/cc.h $(LWIP_STAMP)
	@mkdir -p $(dir $@)
	@echo "CC lwip/$*.c"
	@$(CC) $(LWIP_LIB_CFLAGS) -MMD -MP -c $< -o $@

$(LWIP_LIB): $(LWIP_OBJ)
	@rm -f $@
	ar rcs $@ $^

-include $(wildcard $(LWIP_BUILD)/obj/*/*.d $(LWIP_BUILD)/obj/*/*/*.d)

endif

lwip: $(LWIP_LIB)
ALL_TARGETS += $(LWIP_LIB)
.PHONY: lwip
