#!/bin/bash
# tests/integration/full_test.sh — XEP-0305 `full` pipelining against the
# conformance peer (tests/conformance/xep0305_peer.py: the server side as the
# XEP describes it, over real TLS, on Python's ssl), and the fallbacks:
# hints that say pipelining but a server that no longer advertises it, and a
# server that breaks on full flights (Prosody 0.12). Inside a loopback-only
# namespace. Last line: "full: N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
PEER="$root/tests/conformance/xep0305_peer.py"
KL=${KINGLET:-$root/build/kinglet}
RTT_MS=${KL_TEST_RTT_MS:-200}
DIR=$(mktemp -d /tmp/kl-full.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; "$PROSODY" stop "$DIR" >/dev/null 2>&1; rm -rf "$DIR"; }
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() { echo "full: $pass passed, $fail failed"; [ "$fail" = 0 ]; exit; }
json() { tail -n 1 "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])" 2>/dev/null || echo "?"; }
kl() { timeout -k 2 30 "$KL" --jid alice@localhost/f --password alicepass --host 127.0.0.1 --cafile "$DIR/ca.pem" \
	--stats --timeout 15 "$@"; }
peer_pid=""
start_peer() { # start_peer ARGS...
	[ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null && wait "$peer_pid" 2>/dev/null
	python3 "$PEER" 6222 --certdir "$DIR" --log "$DIR/peer.log" "$@" >"$DIR/peer.out" 2>&1 &
	peer_pid=$!
	PIDS="$PIDS $peer_pid"
	for _ in $(seq 50); do grep -q listening "$DIR/peer.out" && return 0; sleep 0.1; done
	bad "peer did not start: $(cat "$DIR/peer.out")"
}

"$PROSODY" start "$DIR" >/dev/null || { bad "prosody start"; finish; }
start_peer --scram

# --- full against the conformance peer ------------------------------------------
kl --port 6222 --pipelining safe >"$DIR/safe.json" 2>"$DIR/safe.err" || bad "safe vs peer: $(cat "$DIR/safe.err")"
kl --port 6222 --pipelining full-forced --send alice@localhost/f hi --recv 1 >"$DIR/full.json" 2>"$DIR/full.err" ||
	bad "full vs peer: $(cat "$DIR/full.err")"
s=$(json "$DIR/safe.json" round_trips) f=$(json "$DIR/full.json" round_trips)
[ "$(json "$DIR/full.json" pipelining)" = full ] && ok "full flights used" || bad "mode: $(json "$DIR/full.json" pipelining)"
[ "$f" = 3 ] && ok "full: 3 round trips to a bound session (TCP + 2), safe: $s" || bad "full: $f round trips (safe $s)"
grep -q 'message from alice@localhost/f: hi' "$DIR/full.json" && ok "full: session works (message echoed)" || bad "full: no echo"
last=$(grep 'summary' "$DIR/peer.log" | tail -1)
echo "$last" | grep -q 'header+starttls+clienthello together=yes' && ok "peer saw header+<starttls/>+ClientHello in one read" ||
	bad "peer: $last"
echo "$last" | grep -q 'auth+restart+bind together=yes' && ok "peer saw <auth/>+restart+bind in one read" || bad "peer: $last"

# --- through the delay proxy: wall time agrees ---------------------------------------
python3 "$root/tests/delay_proxy.py" --listen 127.0.0.1:16222 --target 127.0.0.1:6222 \
	--delay-ms $((RTT_MS / 2)) --tcp-rtt >"$DIR/proxy.out" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 50); do grep -q listening "$DIR/proxy.out" && break; sleep 0.1; done
kl --port 16222 --pipelining full-forced >"$DIR/fullp.json" 2>"$DIR/fullp.err" || bad "full via proxy: $(cat "$DIR/fullp.err")"
ms=$(json "$DIR/fullp.json" online_ms) rt=$(json "$DIR/fullp.json" round_trips)
wall=$(( (ms + RTT_MS / 2) / RTT_MS ))
[ "$wall" = "$rt" ] && [ "$rt" = 3 ] && ok "full via proxy: $rt round trips = ${ms} ms / ${RTT_MS} ms" ||
	bad "full via proxy: engine $rt, wall ${ms} ms / ${RTT_MS} = $wall"

# --- the cache decides: learn the feature, then use full -----------------------------
kl --port 6222 --pipelining full --cache "$DIR/hints" >"$DIR/c1.json" 2>/dev/null
kl --port 6222 --pipelining full --cache "$DIR/hints" >"$DIR/c2.json" 2>/dev/null
[ "$(json "$DIR/c1.json" pipelining)" = safe ] && [ "$(json "$DIR/c2.json" pipelining)" = full ] &&
	ok "full only once the hints say the server advertised pipelining (safe, then full)" ||
	bad "cache-driven modes: $(json "$DIR/c1.json" pipelining) then $(json "$DIR/c2.json" pipelining)"
# SCRAM: the client-final response carries the restart and the bind
kl --port 6222 --pipelining full --no-plain --cache "$DIR/hints" >"$DIR/scram.json" 2>"$DIR/scram.err" ||
	bad "full SCRAM: $(cat "$DIR/scram.err")"
r=$(json "$DIR/scram.json" round_trips)
[ "$(json "$DIR/scram.json" sasl)" = SCRAM-SHA-256 ] && [ "$r" = 4 ] && ok "full with SCRAM-SHA-256: $r round trips" ||
	bad "full SCRAM: $(json "$DIR/scram.json" sasl), $r round trips"
grep 'summary' "$DIR/peer.log" | tail -1 | grep -q 'outcome=bound' && ok "peer bound the SCRAM session" || bad "peer outcome"

# the server stops advertising pipelining: full (from the hints) still ends
# cleanly, and the hints drop it for next time
start_peer --no-pipelining-feature
kl --port 6222 --pipelining full --cache "$DIR/hints" >"$DIR/c3.json" 2>"$DIR/c3.err" || bad "c3: $(cat "$DIR/c3.err")"
kl --port 6222 --pipelining full --cache "$DIR/hints" >"$DIR/c4.json" 2>"$DIR/c4.err" || bad "c4: $(cat "$DIR/c4.err")"
[ "$(json "$DIR/c4.json" pipelining)" = safe ] && ok "feature gone: next login uses safe" ||
	bad "after the feature disappeared: $(json "$DIR/c4.json" pipelining)"

# a failed authentication: no bind, exit 5
start_peer --fail-auth
kl --port 6222 --pipelining full-forced >/dev/null 2>"$DIR/fail.err"
rc=$?
[ $rc = 5 ] && ok "full with a refused <auth/>: exit 5, $(cat "$DIR/fail.err")" || bad "refused auth: exit $rc $(cat "$DIR/fail.err")"
grep 'summary' "$DIR/peer.log" | tail -1 | grep -q 'outcome=auth-failed' && ok "peer never bound after the failure" ||
	bad "peer outcome after failure: $(grep summary "$DIR/peer.log" | tail -1)"

# Prosody 0.12 breaks on full flights: the CLI falls back to safe and the
# hints remember it
kl --port 5222 --pipelining full-forced --cache "$DIR/phints" >"$DIR/p1.json" 2>"$DIR/p1.err" ||
	bad "full-forced vs Prosody: $(cat "$DIR/p1.err")"
[ "$(json "$DIR/p1.json" full_fallback)" = 1 ] && [ "$(json "$DIR/p1.json" pipelining)" = safe ] &&
	ok "Prosody refused full flights; fell back to safe and logged in" ||
	bad "Prosody full: fallback=$(json "$DIR/p1.json" full_fallback) mode=$(json "$DIR/p1.json" pipelining)"
kl --port 5222 --pipelining full --cache "$DIR/phints" >"$DIR/p2.json" 2>"$DIR/p2.err"
[ "$(json "$DIR/p2.json" pipelining)" = safe ] && [ "$(json "$DIR/p2.json" full_fallback)" = 0 ] &&
	ok "the hints remember: no second full attempt against Prosody" || bad "p2: $(tail -1 "$DIR/p2.json")"
finish
