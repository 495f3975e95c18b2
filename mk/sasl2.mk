# kinglet — the SASL2 servers kinglet's SASL2 / Bind2 / FAST / inline stream
# management support is coded against: Prosody 13.0.1 + prosody-modules
# (tests/prosody/prosody13.sh, c2s 5232, direct TLS 5233) and ejabberd 24.12
# (tests/ejabberd/ejabberd24.sh, 5242/5243), both from Debian
# bookworm-backports, unpacked by `make deps` into third_party/ (nothing
# installed; Prosody 0.12.3 and ejabberd 23.01 stay for the other tests).
# Findings: the verbatim XML each server sends is what
# tests/integration/sasl2_probe.py prints (KL_SASL2_VERBOSE=1 shows it here).
#
# Target: check-sasl2-servers (in CHECK_STEPS), inside tests/netns.sh, both
# servers in one namespace, ~25 s; needs root. Checks with the probe:
#   prosody13, ejabberd24: PLAIN + Bind2 + SM enable + FAST token request in
#     one flight, FAST login (HT-SHA-256-NONE), inline SM resumption
#   prosody13 --no-fast, ejabberd24 --no-fast: Bind2 + SM, no FAST offered,
#     no token (a server that refuses FAST)
#   prosody13 --fast-ttl 2: the FAST login 4 s later fails (ejabberd 24.12's
#     shortest token lifetime is 1000 s: not tested)
# Prints "check-sasl2-servers: N passed, N failed".
#
# Target: check-sasl2 (in CHECK_STEPS, ~55 s, root): the CLI against
# them, tests/integration/sasl2_test.sh (read its header): cached SASL2 in
# 3 round trips (direct TLS) / 4 (STARTTLS), FAST 3, FAST + inline resume 3,
# SCRAM-*-PLUS channel-bound 4, --no-sasl2, token-only devices, tampered /
# expired / unavailable tokens and wrong passwords (exit 5, named errors),
# the fallback to RFC 6120 against Prosody 0.12 (KL_ERR_SASL2_GONE once),
# and tests/integration/sm_traffic_test.sh prosody13 / ejabberd24 (FAST +
# inline resumption across 10 link cuts, 0 lost). Prints
# "check-sasl2: N passed, N failed".

define SASL2_CHECK_SCRIPT
SUITE=check-sasl2-servers
. tests/lib/results.sh
T=$$(mktemp -d /tmp/kl-sasl2.XXXXXX) || exit 1
chmod 711 "$$T"  # the prosody and ejabberd users must reach their DIRs
P=$$T/prosody13 E=$$T/ejabberd24
cleanup() {
	tests/prosody/prosody13.sh stop "$$P" >/dev/null 2>&1
	tests/ejabberd/ejabberd24.sh stop "$$E" >/dev/null 2>&1
	rm -rf "$$T"
}
trap cleanup EXIT
mkdir -p "$$P" "$$E"
# servers ARGS-FOR-PROSODY13 ARGS-FOR-EJABBERD24 ("-" = do not start it)
servers() {
	tests/prosody/prosody13.sh stop "$$P" >/dev/null 2>&1
	tests/ejabberd/ejabberd24.sh stop "$$E" >/dev/null 2>&1
	p13=0 ej24=0
	if [ "$$1" != - ]; then
		rm -rf "$$P/data"
		if tests/prosody/prosody13.sh start "$$P" $$1 >"$$T/p13.start" 2>&1; then p13=1
		else bad "prosody13.sh start $$1: $$(cat "$$T/p13.start")"; fi
	fi
	if [ "$$2" != - ]; then
		if tests/ejabberd/ejabberd24.sh start "$$E" $$2 >"$$T/ej24.start" 2>&1; then ej24=1
		else bad "ejabberd24.sh start $$2: $$(cat "$$T/ej24.start")"; fi
	fi
}
# probe UP NAME PORT CA ARGS...
probe() {
	local up=$$1 name=$$2 port=$$3 ca=$$4; shift 4
	[ "$$up" = 1 ] || { bad "$$name: server not running"; return; }
	if timeout -k 2 60 python3 tests/integration/sasl2_probe.py --name "$$name" --port "$$port" \
		--cafile "$$ca" "$$@" >"$$T/$$name.out" 2>&1; then
		ok "$$name: $$(grep -c '^PASS' "$$T/$$name.out") probe checks"
		[ -z "$${KL_SASL2_VERBOSE:-}" ] || cat "$$T/$$name.out"
	else
		bad "$$name: $$(tail -n 1 "$$T/$$name.out")"
		sed 's/^/  | /' "$$T/$$name.out"
		case $$name in
		prosody13*) echo "  --- prosody.log (warnings, errors)"; grep -vE '	(info|debug)	' "$$P/prosody.log" | tail -n 15 ;;
		ejabberd24*) echo "  --- ejabberd.log (tail)"; tail -n 15 "$$E/log/ejabberd.log" ;;
		esac
	fi
}
servers "" ""
probe $$p13 prosody13 5233 "$$P/ca.pem"
probe $$ej24 ejabberd24 5243 "$$E/ca.pem"
servers --no-fast --no-fast
probe $$p13 prosody13-no-fast 5233 "$$P/ca.pem" --expect-no-fast
probe $$ej24 ejabberd24-no-fast 5243 "$$E/ca.pem" --expect-no-fast
servers "--fast-ttl 2" -
probe $$p13 prosody13-fast-ttl 5233 "$$P/ca.pem" --expect-expired 4
finish
endef

check-sasl2-servers: export SASL2_CHECK_SCRIPT := $(SASL2_CHECK_SCRIPT)
check-sasl2-servers:
	@$(NETNS) bash -c "$$SASL2_CHECK_SCRIPT"

CHECK_STEPS += check-sasl2-servers

# what the client stored in a hints file (its FAST token), for sasl2_test.sh
$(BUILD)/tests/integration/hints_token: tests/integration/hints_token.c $(wildcard include/kinglet/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $< -o $@

check-sasl2: $(BUILD)/kinglet $(BUILD)/tests/integration/hints_token
	@KINGLET=$(BUILD)/kinglet KL_HINTS_TOKEN=$(BUILD)/tests/integration/hints_token \
	  tests/integration/sasl2_test.sh

ALL_TARGETS += $(BUILD)/tests/integration/hints_token
CHECK_STEPS += check-sasl2

.PHONY: check-sasl2-servers check-sasl2
