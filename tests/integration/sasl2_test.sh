#!/bin/bash
# tests/integration/sasl2_test.sh — build/kinglet's SASL2 (XEP-0388), Bind2
# (XEP-0386), FAST (XEP-0484) and inline stream-management resumption
# against real servers: Prosody 13.0.1 (tests/prosody/prosody13.sh, STARTTLS
# 5232, direct TLS 5233) and ejabberd 24.12 (tests/ejabberd/ejabberd24.sh,
# 5242/5243), both started here in one loopback-only namespace
# (tests/netns.sh), and Prosody 0.12 (tests/prosody/prosody.sh, no SASL2)
# for the fallback. Everything is asserted on the CLI's --stats (counts of
# round trips, flights and mechanisms, never wall time), its exit code, its
# stderr and the hints file (tests/integration/hints_token.c shows the FAST
# token the client stored).
#
# On each of Prosody 13 and ejabberd 24.12:
#   direct TLS, empty --cache: the RFC 6120 path (sasl2=0), 4 round trips;
#     then SASL2 PLAIN + Bind2 + token request in 3 (sasl2=1, bind2=1,
#     fast_token_new=1), then FAST (HT-SHA-256-NONE) in 3 with one flight;
#     --trace shows no credential: neither the PLAIN response nor the token
#     nor its proof (the password is not sent: sasl HT-SHA-256-NONE).
#   STARTTLS: the same cached SASL2 login in 4 round trips.
#   a session left with --no-logout is resumed by the next run inside
#     <authenticate/> with the token (inline_resumed=1, fast=1, 3 round
#     trips); Prosody sends a new token with it (fast_token_new=1: the hints'
#     token changes and the next FAST login uses it), ejabberd does not.
#   SCRAM-*-PLUS (tls-exporter) with --no-plain --no-fast: channel_bound=1,
#     4 round trips with hints (Prosody SCRAM-SHA-1-PLUS, ejabberd
#     SCRAM-SHA-256-PLUS).
#   --no-sasl2: the RFC 6120 path, 4 round trips cold and with hints (the
#     safe-pipelining number of check-login for direct TLS).
#   token-only device: a token provisioned by tests/integration/sasl2_token.py
#     (PLAIN + request-token, as an installer would); --fast-token TOKEN and
#     no password logs in (fast=1) and stores the new token the server gives
#     for it (the provisioned one is used only while the hints hold none);
#     the next run, still without password, logs in with the stored token.
#   bad input: --fast-token garbage without password: exit 5 "FAST: token
#     refused"; with --password too (hints saying SASL2): online through the
#     password, fast_refused=1, a new token stored; a wrong password: exit 5
#     "authentication failed" (RFC 6120 and SASL2 paths). No "online" line on
#     any failure.
#   a server that refuses FAST (--no-fast): a token-only device with no
#     hints: exit 5 "FAST: the server does not offer the token's mechanism";
#     with hints from when it did offer FAST: exit 5 with a FAST error (which
#     one is printed; see the report below).
# Prosody 13 with --fast-ttl 2, a token 4 s later: the token the hints keep
# has a known expiry: the client refuses it itself, exit 5 "FAST: the token
# has expired" with no <authenticate/> sent; a provisioned token (expiry
# unknown to the client): the server answers credentials-expired, exit 5
# "FAST: token refused ... (the server said credentials-expired)".
# Fallback: hints written against Prosody 13 used against Prosody 0.12 at the
# same address (prosody.sh --c2s-port 5232 --tls-port 5233, the same CA):
# the first attempt ends in KL_ERR_SASL2_GONE (its text on stderr), the
# manager corrects the hints and retries at once, on RFC 6120's path, in the
# same invocation (also without --reconnect: attempts=2, link_downs=1,
# sasl2=0, exit 0); the next run needs one attempt. A fresh cache against
# Prosody 0.12: sasl2=0 on every run.
# Then tests/integration/sm_traffic_test.sh prosody13 and ejabberd24 (FAST +
# inline resumption across link cuts, 0 lost; each counted as one check
# here, its output indented).
# Measurements: lines "  measure SERVER MODE: ..." (round trips, flights,
# bytes). Last line: "check-sasl2: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
KL=${KINGLET:-$root/build/kinglet}
HT=${KL_HINTS_TOKEN:-$root/build/tests/integration/hints_token}
P13=$root/tests/prosody/prosody13.sh
EJ24=$root/tests/ejabberd/ejabberd24.sh
P12=$root/tests/prosody/prosody.sh

SUITE=check-sasl2
. "$root/tests/lib/results.sh"
for f in "$KL" "$HT"; do [ -x "$f" ] || { bad "missing $f (make check-sasl2 builds it)"; finish; }; done

T=$(mktemp -d /tmp/kl-sasl2t.XXXXXX) || exit 1
chmod 711 "$T" # the prosody and ejabberd users must reach their DIRs
P=$T/prosody13 E=$T/ejabberd24 O=$T/prosody12
mkdir -p "$P" "$E" "$O"
cleanup() {
	"$P13" stop "$P" >/dev/null 2>&1
	"$EJ24" stop "$E" >/dev/null 2>&1
	"$P12" stop "$O" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT

# start NAME SCRIPT DIR ARGS...: ok/bad; returns non-zero if not started
start() {
	local name=$1 script=$2 dir=$3
	shift 3
	"$script" stop "$dir" >/dev/null 2>&1
	if "$script" start "$dir" "$@" >"$T/$name.start" 2>&1; then
		return 0
	fi
	bad "$name start $*: $(tail -n 5 "$T/$name.start")"
	return 1
}

# kl NAME ARGS...: build/kinglet ARGS --stats; $T/NAME.out, .err; rc in RC
kl() {
	local name=$1
	shift
	timeout -k 2 40 "$KL" "$@" --stats >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
	echo "$RC" >"$T/$name.rc"
}

# load NAME: the --stats JSON of run NAME into S[key] (empty if none)
declare -A S
load() {
	S=()
	local k v
	while IFS='=' read -r k v; do S[$k]=$v; done < <(tail -n 1 "$T/$1.out" 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for k, v in d.items():
    print("%s=%s" % (k, v))')
}

# expect NAME TEXT KEY=VALUE...: run NAME exited 0, printed "online" or
# "resumed", and its stats match
expect() {
	local name=$1 text=$2 kv miss=""
	shift 2
	load "$name"
	[ "$(cat "$T/$name.rc")" = 0 ] || miss="$miss exit=$(cat "$T/$name.rc")"
	grep -qE '^(online|resumed) ' "$T/$name.out" || miss="$miss no-online-line"
	for kv in "$@"; do
		[ "${S[${kv%%=*}]:-?}" = "${kv#*=}" ] || miss="$miss ${kv%%=*}=${S[${kv%%=*}]:-?}(want ${kv#*=})"
	done
	if [ -z "$miss" ]; then
		ok "$text"
	else
		bad "$text:$miss; stderr: $(head -c 400 "$T/$name.err")"
	fi
}

# refused NAME CODE PATTERN TEXT: exit CODE, PATTERN (grep -E) on stderr,
# no online line
refused() {
	local name=$1 code=$2 pat=$3 text=$4 rc
	rc=$(cat "$T/$name.rc")
	if [ "$rc" = "$code" ] && grep -qE "$pat" "$T/$name.err" && ! grep -qE '^(online|resumed) ' "$T/$name.out"; then
		ok "$text (exit $rc: $(grep -m1 -E "$pat" "$T/$name.err"))"
	else
		bad "$text: exit $rc (want $code), stderr: $(head -c 400 "$T/$name.err") stdout: $(grep -v '^{' "$T/$name.out" | head -c 200)"
	fi
}

# measure SERVER MODE NAME: one line for the report
measure() {
	load "$3"
	printf '  measure %-10s %-34s round_trips %s flights_out %s bytes_out %s bytes_in %s sasl %s\n' "$1" "$2" \
		"${S[round_trips]:-?}" "${S[flights_out]:-?}" "${S[bytes_out]:-?}" "${S[bytes_in]:-?}" "${S[sasl]:-?}"
}

token_of() { "$HT" "$1" 2>/dev/null | sed -n 's/^fast_token //p'; }

UA=6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab # the token-only device's <user-agent id>
PLAIN_B64=$(printf '\0alice\0alicepass' | base64)

# ---- Prosody 13 and ejabberd 24.12 ------------------------------------------
p13=0 ej24=0
start prosody13 "$P13" "$P" && p13=1
start ejabberd24 "$EJ24" "$E" && ej24=1

for srv in prosody13 ejabberd24; do
	if [ $srv = prosody13 ]; then
		[ $p13 = 1 ] || continue
		D=$P STLS=5232 DTLS=5233 PLUS=SCRAM-SHA-1-PLUS RES_TOKEN=1
	else
		[ $ej24 = 1 ] || continue
		D=$E STLS=5242 DTLS=5243 PLUS=SCRAM-SHA-256-PLUS RES_TOKEN=0
	fi
	s=$srv
	DIRECT=(--host 127.0.0.1 --port "$DTLS" --tls direct --cafile "$D/ca.pem" --jid alice@localhost/dev)
	START=(--host 127.0.0.1 --port "$STLS" --cafile "$D/ca.pem" --jid alice@localhost/dev)

	# -- direct TLS: cold, SASL2 PLAIN + token, FAST
	H=$T/$s.direct
	kl $s.d1 "${DIRECT[@]}" --password alicepass --cache "$H"
	expect $s.d1 "$s direct TLS, empty hints: RFC 6120 path in 4 round trips" \
		round_trips=4 sasl2=0 bind2=0 sasl=PLAIN cache=miss
	kl $s.d2 "${DIRECT[@]}" --password alicepass --cache "$H" --trace
	expect $s.d2 "$s direct TLS, cached features: SASL2 PLAIN + Bind2 + token request in 3 round trips, one flight" \
		round_trips=3 flights_out=1 sasl2=1 bind2=1 sasl=PLAIN fast=0 fast_token_new=1 cache=hit
	tok1=$(token_of "$H")
	[ -n "$tok1" ] && ok "$s: the hints keep the server's FAST token (${#tok1} bytes)" || bad "$s: no FAST token in the hints"
	kl $s.d3 "${DIRECT[@]}" --password alicepass --cache "$H" --trace
	expect $s.d3 "$s FAST login: HT-SHA-256-NONE in 3 round trips, one flight, the password not sent" \
		round_trips=3 flights_out=1 sasl2=1 bind2=1 fast=1 sasl=HT-SHA-256-NONE fast_refused=0
	if grep -q "C->S.*<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>\[[0-9]* bytes of credentials not shown\]" "$T/$s.d3.err" &&
		! grep -q "mechanism='PLAIN'" "$T/$s.d3.err"; then
		ok "$s FAST: --trace shows <authenticate mechanism='HT-SHA-256-NONE'> and no PLAIN"
	else
		bad "$s FAST: trace: $(grep -m2 'authenticate' "$T/$s.d3.err" | cut -c1-300)"
	fi
	if ! grep -qF "$PLAIN_B64" "$T/$s.d2.err" "$T/$s.d3.err" && ! grep -qF -- "$tok1" "$T/$s.d2.err" "$T/$s.d3.err" &&
		grep -q "<initial-response>\[24 bytes of credentials not shown\]" "$T/$s.d2.err"; then
		ok "$s: --trace shows no credential (PLAIN response, FAST token, token proof)"
	else
		bad "$s: --trace shows a credential: $(grep -m2 -e "$PLAIN_B64" -e "initial-response" "$T/$s.d2.err" | cut -c1-300)"
	fi
	measure $s "direct, empty hints (RFC 6120)" $s.d1
	measure $s "direct, SASL2 PLAIN + token request" $s.d2
	measure $s "direct, FAST" $s.d3

	# -- STARTTLS
	kl $s.s1 "${START[@]}" --password alicepass --cache "$T/$s.stls"
	kl $s.s2 "${START[@]}" --password alicepass --cache "$T/$s.stls"
	expect $s.s2 "$s STARTTLS, cached features: SASL2 PLAIN + Bind2 in 4 round trips" \
		round_trips=4 sasl2=1 bind2=1 sasl=PLAIN
	kl $s.s3 "${START[@]}" --password alicepass --cache "$T/$s.stls"
	expect $s.s3 "$s STARTTLS FAST login in 4 round trips" round_trips=4 sasl2=1 fast=1 sasl=HT-SHA-256-NONE
	measure $s "starttls, empty hints (RFC 6120)" $s.s1
	measure $s "starttls, SASL2 PLAIN + token request" $s.s2
	measure $s "starttls, FAST" $s.s3

	# -- a saved session resumed inside <authenticate/>; the token it brings
	kl $s.nl "${DIRECT[@]}" --password alicepass --cache "$H" --no-logout
	expect $s.nl "$s: FAST login left without logging out (session saved)" fast=1
	kl $s.res "${DIRECT[@]}" --password alicepass --cache "$H"
	expect $s.res "$s: the next run resumes it inline with the FAST token in 3 round trips" \
		round_trips=3 flights_out=1 inline_resumed=1 fast=1 sasl=HT-SHA-256-NONE resumes=1 onlines=0
	measure $s "direct, FAST + inline resume" $s.res

	# -- rotation: the session saved is the one whose login asked for a
	# token; Prosody answers its resumption with a new one (mod_sasl2_fast
	# sees the resumed session's token request again), ejabberd does not
	R=$T/$s.rot
	kl $s.r1 "${DIRECT[@]}" --password alicepass --cache "$R"
	kl $s.r2 "${DIRECT[@]}" --password alicepass --cache "$R" --no-logout
	expect $s.r2 "$s: SASL2 PLAIN + token request, left without logging out" fast_token_new=1 sasl=PLAIN
	tok1=$(token_of "$R")
	kl $s.r3 "${DIRECT[@]}" --password alicepass --cache "$R"
	expect $s.r3 "$s: its inline resumption with the FAST token" inline_resumed=1 fast=1 round_trips=3
	tok2=$(token_of "$R")
	if [ $RES_TOKEN = 1 ]; then
		[ "${S[fast_token_new]}" = 1 ] && [ -n "$tok2" ] && [ "$tok2" != "$tok1" ] &&
			ok "$s: a new token came with the resumption (fast_token_new=1); the hints' token changed" ||
			bad "$s: fast_token_new ${S[fast_token_new]}, token changed: $([ "$tok2" != "$tok1" ] && echo yes || echo no)"
	else
		[ "${S[fast_token_new]}" = 0 ] && [ -n "$tok2" ] && [ "$tok2" = "$tok1" ] &&
			ok "$s: no token with the resumption (fast_token_new=0); the hints' token unchanged" ||
			bad "$s: fast_token_new ${S[fast_token_new]}, token changed: $([ "$tok2" != "$tok1" ] && echo yes || echo no)"
	fi
	kl $s.r4 "${DIRECT[@]}" --password alicepass --cache "$R"
	expect $s.r4 "$s: the next FAST login works with the stored token" round_trips=3 fast=1 fast_refused=0

	# -- SCRAM-*-PLUS, channel binding tls-exporter
	kl $s.p1 "${DIRECT[@]}" --password alicepass --cache "$T/$s.plus" --no-plain --no-fast
	expect $s.p1 "$s --no-plain --no-fast, empty hints: $PLUS over SASL2, channel bound" \
		sasl=$PLUS channel_bound=1 sasl2=1 bind2=1 fast=0
	kl $s.p2 "${DIRECT[@]}" --password alicepass --cache "$T/$s.plus" --no-plain --no-fast
	expect $s.p2 "$s --no-plain --no-fast with hints: $PLUS in 4 round trips, channel bound" \
		round_trips=4 sasl=$PLUS channel_bound=1 sasl2=1 bind2=1 fast=0 fast_token_new=0
	measure $s "direct, $PLUS (hints)" $s.p2

	# -- --no-sasl2
	kl $s.n1 "${DIRECT[@]}" --password alicepass --cache "$T/$s.nos2" --no-sasl2
	kl $s.n2 "${DIRECT[@]}" --password alicepass --cache "$T/$s.nos2" --no-sasl2
	expect $s.n1 "$s --no-sasl2, empty hints: RFC 6120 in 4 round trips" round_trips=4 sasl2=0 bind2=0 fast=0
	expect $s.n2 "$s --no-sasl2 with hints: RFC 6120 in 4 round trips" round_trips=4 sasl2=0 bind2=0 fast=0
	measure $s "direct, --no-sasl2 (hints)" $s.n2

	# -- token-only device: a provisioned token, no password
	pv=$(timeout -k 2 30 python3 "$here/sasl2_token.py" --port "$DTLS" --cafile "$D/ca.pem" --ua-id $UA 2>"$T/$s.pv.err")
	tok0=$(echo "$pv" | sed -n 's/^token \([^ ]*\) expiry .*/\1/p')
	if [ -n "$tok0" ]; then
		ok "$s: a token provisioned for user agent $UA"
		kl $s.t1 "${DIRECT[@]}" --fast-token "$tok0" --user-agent-id $UA --cache "$T/$s.tok"
		expect $s.t1 "$s token-only (--fast-token, no password), empty hints: FAST login, a new token requested" \
			fast=1 sasl=HT-SHA-256-NONE sasl2=1 bind2=1 fast_token_new=1 fast_refused=0
		tokA=$(token_of "$T/$s.tok")
		[ -n "$tokA" ] && [ "$tokA" != "$tok0" ] && ok "$s token-only: the hints keep the new token, not the provisioned one" ||
			bad "$s token-only: hints token '$tokA' (provisioned '$tok0')"
		kl $s.t2 "${DIRECT[@]}" --fast-token "$tok0" --user-agent-id $UA --cache "$T/$s.tok"
		expect $s.t2 "$s token-only, second run: FAST with the stored token in 3 round trips" \
			round_trips=3 fast=1 sasl=HT-SHA-256-NONE fast_refused=0
		measure $s "direct, token-only, empty hints" $s.t1
		measure $s "direct, token-only, stored token" $s.t2
	else
		bad "$s: no token provisioned: $(cat "$T/$s.pv.err")"
	fi

	# -- bad input
	kl $s.g1 "${DIRECT[@]}" --fast-token garbage --cache "$T/$s.garbage"
	refused $s.g1 5 '^kinglet: FAST: token refused and no password configured' \
		"$s: a tampered provisioned token without password ends in FAST refused"
	load $s.g1
	[ "${S[fast_refused]}" = 1 ] && ok "$s: ... with fast_refused=1" || bad "$s: fast_refused ${S[fast_refused]}"
	# hints that say SASL2 (and hold no token): the tampered token goes first
	kl $s.w0 "${DIRECT[@]}" --password alicepass --cache "$T/$s.tp" --no-fast
	kl $s.w1 "${DIRECT[@]}" --password alicepass --cache "$T/$s.tp" --no-fast
	kl $s.g2 "${DIRECT[@]}" --password alicepass --fast-token garbage --cache "$T/$s.tp"
	expect $s.g2 "$s: a tampered token with --password too: refused, online through the password" \
		sasl=PLAIN sasl2=1 fast=0 fast_refused=1 fast_token_new=1
	[ -n "$(token_of "$T/$s.tp")" ] && ok "$s: ... and the token the password login got is stored" ||
		bad "$s: no token stored after the password fallback"
	measure $s "direct, refused token + password" $s.g2
	kl $s.b1 "${DIRECT[@]}" --password wrongpass --cache "$T/$s.bad1"
	refused $s.b1 5 '^kinglet: authentication failed \(not-authorized\)' "$s: wrong password (RFC 6120 path): exit 5"
	kl $s.b2 "${DIRECT[@]}" --password wrongpass --cache "$T/$s.tp" --no-fast
	refused $s.b2 5 '^kinglet: authentication failed \(not-authorized\)' "$s: wrong password (SASL2 path): exit 5"
	load $s.b2
	[ "${S[sasl]}" = PLAIN ] && [ "${S[cache]}" = hit ] || bad "$s: wrong password run: sasl ${S[sasl]} cache ${S[cache]}"
done

# ---- servers that refuse FAST -----------------------------------------------
p13=0 ej24=0
start prosody13-no-fast "$P13" "$P" --no-fast && p13=1
start ejabberd24-no-fast "$EJ24" "$E" --no-fast && ej24=1
for srv in prosody13 ejabberd24; do
	if [ $srv = prosody13 ]; then
		[ $p13 = 1 ] || continue
		D=$P DTLS=5233
	else
		[ $ej24 = 1 ] || continue
		D=$E DTLS=5243
	fi
	s=$srv
	DIRECT=(--host 127.0.0.1 --port "$DTLS" --tls direct --cafile "$D/ca.pem" --jid alice@localhost/dev)
	kl $s.nf1 "${DIRECT[@]}" --fast-token sometoken --user-agent-id $UA --cache "$T/$s.nofast"
	refused $s.nf1 5 "^kinglet: FAST: the server does not offer the token's mechanism and no password is configured" \
		"$s --no-fast: a token-only device ends in FAST unavailable"
	# the hints of the token-only device, from when the server offered FAST
	if [ -f "$T/$s.tok" ]; then
		kl $s.nf2 "${DIRECT[@]}" --fast-token sometoken --user-agent-id $UA --cache "$T/$s.tok"
		refused $s.nf2 5 "^kinglet: FAST: the server does not offer the token's mechanism and no password is configured" \
			"$s --no-fast, hints from when it offered FAST: token-only ends in FAST unavailable too"
		load $s.nf2
		[ "${S[fast_refused]}" = 0 ] && [ -n "$(token_of "$T/$s.tok")" ] &&
			ok "$s --no-fast: the token is not counted as refused and stays on disk" ||
			bad "$s --no-fast: fast_refused ${S[fast_refused]}, stored token '$(token_of "$T/$s.tok")'"
	fi
done
"$EJ24" stop "$E" >/dev/null 2>&1

# ---- an expired token (Prosody 13, tokens live 2 s) -------------------------
if start prosody13-fast-ttl "$P13" "$P" --fast-ttl 2; then
	DIRECT=(--host 127.0.0.1 --port 5233 --tls direct --cafile "$P/ca.pem" --jid alice@localhost/dev)
	tokX=$(timeout -k 2 30 python3 "$here/sasl2_token.py" --port 5233 --cafile "$P/ca.pem" --ua-id $UA | sed -n 's/^token \([^ ]*\) .*/\1/p')
	kl exp.t1 "${DIRECT[@]}" --fast-token "$tokX" --user-agent-id $UA --cache "$T/exp.tok"
	expect exp.t1 "prosody13 --fast-ttl 2: token-only login, a 2 s token stored" fast=1 fast_token_new=1
	exp1=$("$HT" "$T/exp.tok" | sed -n 's/^fast_expiry //p')
	tokY=$(timeout -k 2 30 python3 "$here/sasl2_token.py" --port 5233 --cafile "$P/ca.pem" --ua-id $UA | sed -n 's/^token \([^ ]*\) .*/\1/p')
	now=$(date +%s)
	[ -n "$exp1" ] && [ "$exp1" -gt $((now - 10)) ] && [ "$exp1" -le $((now + 3)) ] &&
		ok "prosody13 --fast-ttl 2: the hints keep the token's expiry (in $((exp1 - now)) s)" ||
		bad "prosody13 --fast-ttl 2: stored expiry '$exp1', now $now"
	sleep 4
	kl exp.t2 "${DIRECT[@]}" --fast-token "$tokX" --user-agent-id $UA --cache "$T/exp.tok" --trace
	refused exp.t2 5 '^kinglet: FAST: the token has expired and no password is configured' \
		"prosody13: 4 s later, the stored token: FAST expired, found by the client"
	grep -q "<authenticate" "$T/exp.t2.err" && bad "prosody13: an expired token was sent anyway" ||
		ok "prosody13: ... and no <authenticate/> was sent"
	kl exp.t3 "${DIRECT[@]}" --fast-token "$tokY" --user-agent-id $UA
	refused exp.t3 5 '^kinglet: FAST: token refused and no password configured \(the server said credentials-expired\)' \
		"prosody13: 4 s later, a provisioned token (expiry unknown to the client): the server says credentials-expired"
	kl exp.t4 "${DIRECT[@]}" --fast-token "$tokX" --user-agent-id $UA --cache "$T/exp.tok" --password alicepass
	expect exp.t4 "prosody13: the expired token with --password: online through the password, a new token" \
		sasl=PLAIN sasl2=1 fast=0 fast_token_new=1 round_trips=3
fi

# ---- the fallback: no SASL2 at the same address (Prosody 0.12) -------------
if [ -f "$T/prosody13.direct" ]; then
	"$P13" stop "$P" >/dev/null 2>&1
	cp "$P/ca.pem" "$P/ca.key" "$P/ca.der" "$O/" # the same CA: the hints' server name still verifies
	if start prosody12 "$P12" "$O" --c2s-port 5232 --tls-port 5233; then
		DIRECT=(--host 127.0.0.1 --port 5233 --tls direct --cafile "$O/ca.pem" --jid alice@localhost/dev --password alicepass)
		cp "$T/prosody13.direct" "$T/gone.r"
		cp "$T/prosody13.direct.key" "$T/gone.r.key"
		kl gone1 "${DIRECT[@]}" --cache "$T/prosody13.direct"
		expect gone1 "hints saying SASL2 + FAST, the server without SASL2: online on RFC 6120 in the same invocation" \
			sasl2=0 fast=0 attempts=2 link_downs=1 onlines=1
		grep -qF "SASL2: no longer offered by the server (hints updated; retry uses RFC 6120)" "$T/gone1.err" &&
			ok "... the first attempt ended in KL_ERR_SASL2_GONE ($(grep -c 'no longer offered' "$T/gone1.err") line on stderr), retried at once" ||
			bad "no SASL2_GONE text on stderr: $(cat "$T/gone1.err")"
		kl gone2 "${DIRECT[@]}" --cache "$T/prosody13.direct"
		expect gone2 "the next run: RFC 6120 at once (one attempt, 4 round trips)" \
			sasl2=0 attempts=1 link_downs=0 round_trips=4
		grep -q "no longer offered" "$T/gone2.err" && bad "the corrected hints still said SASL2" ||
			ok "... no SASL2_GONE any more (the corrected hints were saved)"
		kl gone3 "${DIRECT[@]}" --cache "$T/gone.r" --reconnect
		expect gone3 "the same with --reconnect: one invocation, 2 attempts, online on RFC 6120" \
			sasl2=0 attempts=2 link_downs=1 onlines=1
		for i in 1 2 3; do
			kl p12.$i "${DIRECT[@]}" --cache "$T/p12.hints"
		done
		expect p12.1 "Prosody 0.12, empty hints: RFC 6120, 4 round trips" sasl2=0 round_trips=4 cache=miss
		expect p12.2 "Prosody 0.12 with hints: sasl2=0" sasl2=0 round_trips=4 cache=hit attempts=1
		expect p12.3 "Prosody 0.12, third run: sasl2=0" sasl2=0 round_trips=4 cache=hit attempts=1
		measure prosody12 "direct, hints" p12.3
		"$P12" stop "$O" >/dev/null 2>&1
	fi
fi
"$P13" stop "$P" >/dev/null 2>&1

# ---- FAST + inline resumption across link cuts ------------------------------
for srv in prosody13 ejabberd24; do
	KINGLET=$KL "$here/sm_traffic_test.sh" $srv >"$T/traffic.$srv" 2>&1
	rc=$?
	sed 's/^/  | /' "$T/traffic.$srv"
	line=$(tail -n 1 "$T/traffic.$srv")
	[ $rc = 0 ] && ok "sm_traffic $srv: ${line#*: }" || bad "sm_traffic $srv: ${line#*: }"
done
finish
