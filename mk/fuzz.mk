# kinglet — every libFuzzer target: its build, its check in `make check`, and
# the fuzzing campaign `make fuzz`. All generated from FUZZ_TARGETS.
#
# Adding a target: write tests/fuzz/fuzz_NAME.c, commit seed inputs in
# tests/fuzz/corpus_NAME/, add NAME to FUZZ_TARGETS. Optional, per target:
#   FUZZ_SRC_NAME      what it links besides the harness (default: all of core/)
#   FUZZ_MAX_LEN_NAME  libFuzzer's -max_len (default 4096)
#   FUZZ_RUNS_NAME     executions of the mutation run in check-fuzz-NAME
#                      (default 20000; set so that the check takes ~15-35 s
#                      on a slow 2-core machine)
#
# Targets, for each NAME in FUZZ_TARGETS (xml, engine, dns, http, bosh, cache):
#   fuzz-NAME        $(BUILD)/fuzz/fuzz_NAME (libFuzzer + ASan + UBSan, clang)
#   check-fuzz-NAME  in CHECK_STEPS; the same verdict on every machine:
#                    1. replay, unmutated, every file of tests/fuzz/corpus_NAME/
#                       and tests/fuzz/regressions_NAME/ (each failing input is
#                       named, with the sanitizer's line and the first frames);
#                    2. one mutation run bounded by a run count, not by time:
#                       -seed=$(FUZZ_CHECK_SEED) -runs=FUZZ_RUNS_NAME, seeded in
#                       sorted order from a scratch copy of corpus_NAME/ (no
#                       -max_total_time, no -jobs/-workers, no corpus reload;
#                       -use_cmp=0 and no stack-depth coverage, both of which
#                       depend on addresses); for a given binary and corpus it
#                       executes the same inputs everywhere. The repo is never
#                       written.
#                    Prints "check-fuzz-NAME: P passed, F failed (N inputs
#                    replayed: C corpus + R regressions; M runs with seed S
#                    (cov X ft Y): no failure; T s)" (every replayed input and
#                    the mutation run count one). Logs and any crashing input:
#                    $(BUILD)/fuzz/check-NAME-*.log, $(BUILD)/fuzz/NAME-*.
#   fuzz             NOT in `make check`: a fuzzing campaign. Every target (or
#                    FUZZ_ONLY="engine dns") runs FUZZ_SECONDS (default 300),
#                    FUZZ_JOBS (default 2) at a time, random seed, from a scratch
#                    copy of its corpus in $(BUILD)/fuzz/campaign/NAME/; then
#                    libFuzzer's -merge=1 (-use_counters=0) adds to the
#                    committed tests/fuzz/corpus_NAME/ only the inputs that
#                    cover new edges (review, then commit them). Prints per target: executions,
#                    seed, coverage (cov / ft at start -> end), corpus size
#                    before -> after, crashes (inputs kept in
#                    $(BUILD)/fuzz/campaign/NAME/crash-*, paths printed); a
#                    crash ends that target's run. Exit status 1 if any target
#                    crashed. Default length: 6 targets x 300 s / 2 = 15 min.
#
# An input that ever failed stays as a regression case: copy it to
# tests/fuzz/regressions_NAME/ under a name saying what broke (see
# tests/fuzz/README.md). Replay one by hand: $(BUILD)/fuzz/fuzz_NAME FILE...

FUZZ_TARGETS := xml engine dns http bosh cache ws
# XEP-0198: a saved session as read from storage (kl_sm_load) and the engine
# resuming from it against a hostile server (tests/fuzz/fuzz_sm.c)
FUZZ_TARGETS += sm
FUZZ_MAX_LEN_sm := 4096
FUZZ_RUNS_sm := 100000
# SASL2 + Bind2 + FAST + inline resumption + SCRAM/XEP-0474: the engine
# from hints that say SASL2 (token, resumable session) against a hostile
# server (tests/fuzz/fuzz_sasl2.c)
FUZZ_TARGETS += sasl2
FUZZ_MAX_LEN_sasl2 := 4096
FUZZ_RUNS_sasl2 := 30000
# The application layer (kl_app.h): handlers, body pieces, unclaimed
# requests answered, replies and long messages out, on an online engine
# against a hostile server (tests/fuzz/fuzz_app.c)
FUZZ_TARGETS += app
FUZZ_MAX_LEN_app := 16384
FUZZ_RUNS_app := 30000

FUZZ_SRC_xml := core/kl_xml.c core/kl_xw.c core/kl_status.c
FUZZ_SRC_dns := core/kl_dns.c core/kl_status.c
FUZZ_SRC_http := core/kl_http.c core/kl_status.c
FUZZ_SRC_ws := core/kl_ws.c core/kl_xml.c core/kl_xw.c core/kl_base64.c core/kl_status.c
FUZZ_MAX_LEN_xml := 8192
FUZZ_MAX_LEN_engine := 16384
FUZZ_MAX_LEN_dns := 1024
FUZZ_MAX_LEN_cache := 8192
# Run counts measured on a slow 2-core VM: each check-fuzz-* ~15-30 s.
FUZZ_RUNS_xml := 300000
FUZZ_RUNS_engine := 60000
FUZZ_RUNS_dns := 30000
FUZZ_RUNS_http := 800000
FUZZ_RUNS_bosh := 200000
FUZZ_RUNS_cache := 100000
FUZZ_RUNS_ws := 300000

FUZZ_CC ?= clang
# No stack-depth coverage: the deepest stack pointer depends on where the
# stack starts (ASLR, the environment), so that feature made runs with the
# same seed diverge.
FUZZ_CFLAGS := -std=c11 -Wall -Wextra -Werror -O1 -g -Iinclude -Icore \
  -fsanitize=fuzzer -fno-sanitize-coverage=stack-depth \
  -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_HDRS := $(wildcard include/kinglet/*.h core/*.h tests/fuzz/*.h)
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_CHECK_SEED ?= 1
FUZZ_SECONDS ?= 300
FUZZ_JOBS ?= 2
FUZZ_ONLY ?= $(FUZZ_TARGETS)

fuzz_src = $(or $(FUZZ_SRC_$(1)),$(CORE_SRC))
fuzz_max_len = $(or $(FUZZ_MAX_LEN_$(1)),4096)
fuzz_runs = $(or $(FUZZ_RUNS_$(1)),20000)

define fuzz_target
$(FUZZ_DIR)/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(call fuzz_src,$(1)) $$(FUZZ_HDRS)
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) tests/fuzz/fuzz_$(1).c $(call fuzz_src,$(1)) -o $$@

fuzz-$(1): $(FUZZ_DIR)/fuzz_$(1)

check-fuzz-$(1): $(FUZZ_DIR)/fuzz_$(1)
	@tests/fuzz/fuzz.sh check $(1) $(FUZZ_DIR)/fuzz_$(1) $(call fuzz_max_len,$(1)) \
	  $(call fuzz_runs,$(1)) $$(FUZZ_CHECK_SEED) $(FUZZ_DIR)

.PHONY: fuzz-$(1) check-fuzz-$(1)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_target,$(t))))

fuzz: $(foreach t,$(FUZZ_ONLY),$(FUZZ_DIR)/fuzz_$(t))
	@tests/fuzz/fuzz.sh campaign $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_JOBS) \
	  $(foreach t,$(FUZZ_ONLY),$(t):$(FUZZ_DIR)/fuzz_$(t):$(call fuzz_max_len,$(t)))

CHECK_STEPS += $(addprefix check-fuzz-,$(FUZZ_TARGETS))

.PHONY: fuzz
