#!/bin/bash
# tests/integration/login_test.sh — kinglet against a real Prosody over
# STARTTLS (TLS 1.3, verified with the test CA), inside a loopback-only
# network namespace:
#   - two kinglet clients: bob echoes, alice sends and gets the echo back
#   - round trips counted by the engine for off and safe, and confirmed by
#     wall time through the delay proxy (RTT 200 ms)
#   - wrong password, certificate for the wrong name, nothing listening
# Last line: "login: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
KL=${KINGLET:-$root/build/kinglet}
RTT_MS=${KL_TEST_RTT_MS:-200}

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() {
	echo "login: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

DIR=$(mktemp -d /tmp/kl-login.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	"$PROSODY" stop "$DIR" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

"$PROSODY" start "$DIR" >/dev/null || { bad "prosody start"; finish; }
ok "prosody started"

kl() { timeout -k 2 30 "$KL" --host 127.0.0.1 --cafile "$DIR/ca.pem" "$@"; }
json() { # json FILE KEY -> value from the last line
	tail -n 1 "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# --- two clients, a message and its echo ---------------------------------
kl --jid bob@localhost/echo --password bobpass --echo --count 1 --timeout 20 >"$DIR/bob.out" 2>"$DIR/bob.err" &
bobpid=$!
PIDS="$PIDS $bobpid"
for _ in $(seq 50); do grep -q '^online' "$DIR/bob.out" 2>/dev/null && break; sleep 0.1; done
if kl --jid alice@localhost/dev --password alicepass --send bob@localhost/echo "hello <kinglet> & co" \
	--recv 1 --timeout 20 >"$DIR/alice.out" 2>"$DIR/alice.err"; then
	ok "alice sends and receives (exit 0)"
else
	bad "alice exit $? : $(cat "$DIR/alice.err")"
fi
if grep -qF 'message from bob@localhost/echo: hello <kinglet> & co' "$DIR/alice.out"; then
	ok "echo came back with the exact body"
else
	bad "echo missing: $(cat "$DIR/alice.out")"
fi
if wait "$bobpid"; then ok "bob echoed one message and closed (exit 0)"; else bad "bob exit: $(cat "$DIR/bob.err")"; fi
grep -qF 'message from alice@localhost/dev: hello <kinglet> & co' "$DIR/bob.out" &&
	ok "bob received the message" || bad "bob did not receive: $(cat "$DIR/bob.out")"

# --- --send alone: written, stream closed cleanly, exit 0 ------------------
if kl --jid carol@localhost --password carolpass --send alice@localhost "x" --timeout 10 >/dev/null 2>"$DIR/carol.err"; then
	ok "--send exits 0 after a clean close"
else
	bad "--send: $(cat "$DIR/carol.err")"
fi

# --- round trips counted by the engine ------------------------------------
kl --jid alice@localhost/rt --password alicepass --pipelining off --stats >"$DIR/off.json" 2>"$DIR/off.err" ||
	bad "off login: $(cat "$DIR/off.err")"
kl --jid alice@localhost/rt --password alicepass --pipelining safe --stats >"$DIR/safe.json" 2>"$DIR/safe.err" ||
	bad "safe login: $(cat "$DIR/safe.err")"
off=$(json "$DIR/off.json" round_trips 2>/dev/null || echo 99)
safe=$(json "$DIR/safe.json" round_trips 2>/dev/null || echo 99)
tlsv=$(json "$DIR/safe.json" tls 2>/dev/null || echo none)
[ "$tlsv" = "TLSv1.3" ] && ok "TLS 1.3 negotiated" || bad "TLS version: $tlsv"
[ "$off" = 8 ] && ok "off: 8 round trips (lockstep)" || bad "off: $off round trips, expected 8"
[ "$safe" -le 5 ] && ok "safe: $safe round trips (<= 5)" || bad "safe: $safe round trips, expected <= 5"
[ $((off - safe)) -ge 3 ] && ok "safe saves $((off - safe)) round trips (>= 3)" || bad "safe saves only $((off - safe))"

# --- direct TLS (XEP-0368, port 5223) and SCRAM ----------------------------------
kl --jid alice@localhost/rt --password alicepass --tls direct --stats >"$DIR/direct.json" 2>"$DIR/direct.err" ||
	bad "direct TLS login: $(cat "$DIR/direct.err")"
direct=$(json "$DIR/direct.json" round_trips 2>/dev/null || echo 99)
[ "$direct" -le 4 ] && ok "direct TLS safe: $direct round trips (<= 4)" || bad "direct TLS: $direct round trips, expected <= 4"
kl --jid alice@localhost/rt --password alicepass --no-plain --stats >"$DIR/scram.json" 2>"$DIR/scram.err" ||
	bad "SCRAM login: $(cat "$DIR/scram.err")"
mech=$(json "$DIR/scram.json" sasl 2>/dev/null)
scram=$(json "$DIR/scram.json" round_trips 2>/dev/null || echo 99)
[ "$mech" = SCRAM-SHA-256 ] && ok "--no-plain logs in with SCRAM-SHA-256 (server signature verified)" || bad "--no-plain used '$mech'"
[ "$scram" = 7 ] && ok "SCRAM over STARTTLS: 7 round trips (safe + features wait + challenge)" || bad "SCRAM: $scram round trips, expected 7"
kl --jid alice@localhost --password wrong --no-plain --timeout 10 >/dev/null 2>"$DIR/scramwrong.err"
rc=$?
[ $rc = 5 ] && ok "SCRAM with a wrong password: exit 5" || bad "SCRAM wrong password: exit $rc: $(cat "$DIR/scramwrong.err")"

# --- the connection-hints cache survives the process -------------------------
for i in 1 2; do
	kl --jid alice@localhost/c --password alicepass --no-plain --cache "$DIR/hints" --roster --stats \
		>"$DIR/cache$i.json" 2>"$DIR/cache$i.err" || bad "cache run $i: $(cat "$DIR/cache$i.err")"
done
c1=$(json "$DIR/cache1.json" round_trips 2>/dev/null || echo 99)
c2=$(json "$DIR/cache2.json" round_trips 2>/dev/null || echo 99)
[ "$(json "$DIR/cache1.json" cache)" = miss ] && [ "$(json "$DIR/cache2.json" cache)" = hit ] &&
	ok "cache: first run miss, second run hit" || bad "cache states: $(json "$DIR/cache1.json" cache) / $(json "$DIR/cache2.json" cache)"
[ "$c2" -lt "$c1" ] && ok "cache: SCRAM pipelined from the hints, $c1 -> $c2 round trips" || bad "cache: $c1 -> $c2 round trips"
grep -q "version '1'" "$DIR/cache2.json" 2>/dev/null || grep -q "roster received" "$DIR/cache2.json" &&
	ok "roster fetched with the cached version" || bad "roster: $(head -3 "$DIR/cache2.json")"
# the server's disco#info is asked once, then known from the hints while the
# caps ver in the stream features stays the same
kl --jid alice@localhost/c --password alicepass --cache "$DIR/hints" --disco >"$DIR/disco1.out" 2>&1
kl --jid alice@localhost/c --password alicepass --cache "$DIR/hints" --disco >"$DIR/disco2.out" 2>&1
grep -q 'server features (disco#info):.* ping' "$DIR/disco1.out" &&
	grep -q 'server features (hints (caps ver unchanged)):.* ping' "$DIR/disco2.out" &&
	ok "server disco#info asked once, then taken from the hints (same caps ver)" ||
	bad "disco via hints: $(cat "$DIR/disco1.out" "$DIR/disco2.out")"
head -c 100 /dev/urandom >"$DIR/hints"
kl --jid alice@localhost/c --password alicepass --no-plain --cache "$DIR/hints" --stats >"$DIR/cache3.json" 2>"$DIR/cache3.err" &&
	[ "$(json "$DIR/cache3.json" cache)" = miss ] && ok "a corrupt cache file is ignored, login still works" ||
	bad "corrupt cache: $(cat "$DIR/cache3.err")"

# --- the same through the delay proxy: wall time / RTT agrees ---------------
python3 "$root/tests/delay_proxy.py" --listen 127.0.0.1:15222 --target 127.0.0.1:5222 \
	--delay-ms $((RTT_MS / 2)) --tcp-rtt >"$DIR/proxy.out" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 50); do grep -q listening "$DIR/proxy.out" && break; sleep 0.1; done
for mode in off safe; do
	if kl --jid alice@localhost/rt --password alicepass --port 15222 --pipelining $mode --stats \
		>"$DIR/$mode-proxy.json" 2>"$DIR/$mode-proxy.err"; then
		ms=$(json "$DIR/$mode-proxy.json" online_ms)
		rt=$(json "$DIR/$mode-proxy.json" round_trips)
		# wall-time round trips, rounded to the nearest whole one
		wall=$(( (ms + RTT_MS / 2) / RTT_MS ))
		if [ "$wall" = "$rt" ]; then
			ok "$mode via proxy: engine $rt round trips = wall ${ms} ms / ${RTT_MS} ms"
		else
			bad "$mode via proxy: engine says $rt, wall time ${ms} ms / ${RTT_MS} = $wall"
		fi
		expect=$([ $mode = off ] && echo "$off" || echo "$safe")
		[ "$rt" = "$expect" ] && ok "$mode: same count through the proxy" || bad "$mode: $rt through proxy vs $expect direct"
	else
		bad "$mode via proxy: $(cat "$DIR/$mode-proxy.err")"
	fi
done

# --- refusals ----------------------------------------------------------------
kl --jid alice@localhost --password wrong --timeout 10 >/dev/null 2>"$DIR/wrongpw.err"
rc=$?
[ $rc = 5 ] && grep -q 'authentication failed (not-authorized)' "$DIR/wrongpw.err" &&
	ok "wrong password: exit 5, '$(cat "$DIR/wrongpw.err")'" || bad "wrong password: exit $rc: $(cat "$DIR/wrongpw.err")"

kl --jid alice@localhost --password alicepass --port 1 --timeout 5 >/dev/null 2>"$DIR/noport.err"
rc=$?
[ $rc = 3 ] && [ "$(wc -l <"$DIR/noport.err")" = 1 ] &&
	ok "nothing listening: exit 3, '$(cat "$DIR/noport.err")'" || bad "nothing listening: exit $rc: $(cat "$DIR/noport.err")"

# without the test CA the chain is not trusted
timeout 30 "$KL" --host 127.0.0.1 --jid alice@localhost --password alicepass --timeout 10 >/dev/null 2>"$DIR/noca.err"
rc=$?
[ $rc = 4 ] && ok "no CA given: exit 4, '$(cat "$DIR/noca.err")'" || bad "no CA: exit $rc: $(cat "$DIR/noca.err")"

"$PROSODY" stop "$DIR" >/dev/null
"$PROSODY" start "$DIR" --wrong-cert >/dev/null || bad "prosody restart with the wrong-name certificate"
kl --jid alice@localhost --password alicepass --timeout 10 >/dev/null 2>"$DIR/wrongcert.err"
rc=$?
[ $rc = 4 ] && grep -qi 'certificate' "$DIR/wrongcert.err" &&
	ok "certificate for the wrong name: exit 4, '$(cat "$DIR/wrongcert.err")'" ||
	bad "wrong-name certificate: exit $rc: $(cat "$DIR/wrongcert.err")"

finish
