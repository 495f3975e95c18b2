# kinglet — static analysis of core/ and the ports (issue 14).
#
#   check-static-analysis  in `make check`: gcc -fanalyzer and clang --analyze
#                          on every file of core/ and of the ports, each with
#                          the flags and configuration its real build uses
#                          (tests/static_analysis.sh); any finding of either
#                          fails the step and is printed with its path:
#                            core      core/*.c, host build (every feature on)
#                            core-min  core/*.c, the minimal firmware profile
#                                      (FW_KL_MINIMAL), for Cortex-M4
#                            posix     port/posix, port/mbedtls (host)
#                            sim       port/sim, port/lwip (the simulator)
#                            mps2      port/mps2, the board (arm-none-eabi-gcc;
#                                      clang --target=arm-none-eabi)
#                          Needs the mbedTLS and lwIP trees (`make deps`).
SA_ARM := --target=arm-none-eabi -mcpu=cortex-m4 -mthumb -isystem /usr/lib/arm-none-eabi/include
SA_BOARD_DEFS := -DBOARD_BUILD_EPOCH=0LL -DBOARD_BUILD_SEED=1ull

# One group per line of $(SA_GROUPS_FILE): the flags keep the quoting they
# have on the compilers' command lines (the script evaluates them).
SA_GROUPS_FILE = $(BUILD)/static-analysis.groups
define SA_GROUPS
core|$(CC)||-std=c11 -Iinclude -Icore|$(CORE_SRC)
core-min|$(FW_CC)|$(SA_ARM)|-std=c11 $(FW_CPU) $(FW_KL_MINIMAL) -Iinclude -Icore|$(CORE_SRC)
posix|$(CC)||-std=c11 $(filter -I% -D%,$(KL_PORT_CFLAGS))|$(wildcard port/posix/*.c port/mbedtls/*.c)
sim|$(CC)||-std=c11 $(filter -I% -D%,$(SIM_CFLAGS) $(SLIRP_CFLAGS))|$(wildcard port/sim/*.c port/lwip/*.c)
mps2|$(FW_CC)|$(SA_ARM)|-std=c11 $(FW_CPU) $(FW_KL_FEATURES) $(SA_BOARD_DEFS) $(filter -I% -D%,$(FW_CFLAGS) $(FW_MBEDTLS_CFLAGS))|$(wildcard port/mps2/*.c)
endef

check-static-analysis: $(MBEDTLS_STAMP) $(LWIP_STAMP)
	@mkdir -p $(BUILD)
	$(file >$(SA_GROUPS_FILE),$(SA_GROUPS))
	@tests/static_analysis.sh $(SA_GROUPS_FILE)

CHECK_STEPS += check-static-analysis
.PHONY: check-static-analysis
