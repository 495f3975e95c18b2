#!/bin/bash
# tests/integration/bosh_test.sh — BOSH (XEP-0124/0206) with build/kinglet --bosh URL
# against a throwaway Prosody 0.12 (HTTP /http-bind on 5280, HTTPS on 5281)
# and, when installed, ejabberd 23.01 (HTTP /bosh on 5280), inside a
# loopback-only namespace. Checks: login with <auth/> + restart + bind in the
# session creation body and its round trips; a message to bob (build/kinglet
# --echo over c2s) and its echo back; clean termination; named errors for an
# HTTP 404 and for a terminate body with a condition; no password over plain
# HTTP without --allow-plaintext. Last line: "bosh: N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
EJABBERD="$root/tests/ejabberd/ejabberd.sh"
KB=${KINGLET_BOSH:-$root/build/kinglet}
KL=${KINGLET:-$root/build/kinglet}
DIR=$(mktemp -d /tmp/kl-bosh.XXXXXX)
EDIR=""
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	"$PROSODY" stop "$DIR" >/dev/null 2>&1
	[ -n "$EDIR" ] && "$EJABBERD" stop "$EDIR" >/dev/null 2>&1
	rm -rf "$DIR" ${EDIR:+"$EDIR"}
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() { echo "bosh: $pass passed, $fail failed"; [ "$fail" = 0 ]; exit; }
json() { grep '^{' "$1" | tail -n 1 | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])" 2>/dev/null || echo "?"; }
kb() { timeout -k 2 30 "$KB" --stats --timeout 15 "$@"; }
URL=http://127.0.0.1:5280/http-bind

"$PROSODY" start "$DIR" --https-port 5281 >/dev/null || { bad "prosody start"; finish; }

# --- login over HTTP: auth + restart + bind in the creation body -------------------
kb --jid alice@localhost/b --password alicepass --bosh $URL --allow-plaintext >"$DIR/login.out" 2>"$DIR/login.err"
rc=$?
[ $rc = 0 ] && grep -q '^online alice@localhost/b' "$DIR/login.out" && ok "login over HTTP, closed cleanly (exit 0)" ||
	bad "login over HTTP: exit $rc: $(cat "$DIR/login.err")"
rt=$(json "$DIR/login.out" round_trips) hrt=$(json "$DIR/login.out" http_round_trips)
[ "$rt" = 2 ] && [ "$hrt" = 1 ] && ok "HTTP: $rt round trips to a bound session (TCP + 1 HTTP request)" ||
	bad "HTTP: $rt round trips ($hrt HTTP)"
[ "$(json "$DIR/login.out" bosh_path)" = all ] && [ "$(json "$DIR/login.out" http_requests)" = 1 ] &&
	ok "one request carried <auth/>, the restart and the bind" ||
	bad "path $(json "$DIR/login.out" bosh_path), $(json "$DIR/login.out" http_requests) requests"
grep -q 'BOSH client disconnected: session close' "$DIR/prosody.log" && ok "Prosody saw a clean session close" ||
	bad "no clean close in prosody.log"

# --- a message to bob and back --------------------------------------------------------
timeout -k 2 30 "$KL" --jid bob@localhost/echo --password bobpass --host 127.0.0.1 --cafile "$DIR/ca.pem" \
	--echo --count 1 --timeout 20 >"$DIR/bob.out" 2>"$DIR/bob.err" &
bob=$!
PIDS="$PIDS $bob"
for _ in $(seq 50); do grep -q '^online' "$DIR/bob.out" && break; sleep 0.1; done
kb --jid alice@localhost/b --password alicepass --bosh $URL --allow-plaintext \
	--send bob@localhost/echo "hello over bosh" --recv 1 >"$DIR/msg.out" 2>"$DIR/msg.err"
rc=$?
wait $bob 2>/dev/null
grep -q 'message from alice@localhost/b: hello over bosh' "$DIR/bob.out" && ok "bob got the message" ||
	bad "bob: $(cat "$DIR/bob.out" "$DIR/bob.err")"
[ $rc = 0 ] && grep -q 'message from bob@localhost/echo: hello over bosh' "$DIR/msg.out" &&
	ok "the echo came back over BOSH, then a clean close (exit 0)" || bad "echo: exit $rc: $(cat "$DIR/msg.err")"

# --- errors ------------------------------------------------------------------------------
kb --jid alice@localhost/b --password alicepass --bosh http://127.0.0.1:5280/wrong-path --allow-plaintext \
	>"$DIR/404.out" 2>"$DIR/404.err"
rc=$?
[ $rc = 6 ] && grep -q 'HTTP 404' "$DIR/404.err" && ok "wrong path: named error ($(cat "$DIR/404.err"))" ||
	bad "wrong path: exit $rc: $(cat "$DIR/404.err")"
kb --jid alice@nosuch.test/b --password alicepass --bosh $URL --allow-plaintext --bosh-path all \
	>"$DIR/term.out" 2>"$DIR/term.err"
rc=$?
[ $rc = 6 ] && grep -q 'condition [a-z][a-z-]*)' "$DIR/term.err" && ! grep -q undefined-condition "$DIR/term.err" &&
	ok "terminate body: named error with its condition ($(cat "$DIR/term.err"))" ||
	bad "terminate: exit $rc: $(cat "$DIR/term.err")"
kb --jid alice@localhost/b --password wrongpass --bosh $URL --allow-plaintext >"$DIR/auth.out" 2>"$DIR/auth.err"
rc=$?
[ $rc = 5 ] && grep -q 'not-authorized' "$DIR/auth.err" && ok "wrong password: authentication failed (not-authorized)" ||
	bad "wrong password: exit $rc: $(cat "$DIR/auth.err")"
n=$(grep -c 'New BOSH session' "$DIR/prosody.log")
kb --jid alice@localhost/b --password alicepass --bosh $URL >"$DIR/plain.out" 2>"$DIR/plain.err"
rc=$?
[ $rc = 5 ] && [ "$(grep -c 'New BOSH session' "$DIR/prosody.log")" = "$n" ] &&
	ok "plain HTTP without --allow-plaintext: refused, nothing sent" || bad "plain HTTP: exit $rc"

# --- HTTPS ----------------------------------------------------------------------------------
kb --jid alice@localhost/s --password alicepass --bosh https://localhost:5281/http-bind --cafile "$DIR/ca.pem" \
	>"$DIR/https.out" 2>"$DIR/https.err"
rc=$?
rt=$(json "$DIR/https.out" round_trips)
[ $rc = 0 ] && grep -q '^online alice@localhost/s' "$DIR/https.out" &&
	ok "login over HTTPS ($(json "$DIR/https.out" tls)), $rt round trips (TCP + TLS + 1 HTTP)" ||
	bad "HTTPS: exit $rc: $(cat "$DIR/https.err")"
[ "$rt" != "?" ] && [ "$rt" -le 3 ] && ok "HTTPS round trips $rt <= 3" || bad "HTTPS round trips: $rt"
kb --jid alice@localhost/s --password alicepass --bosh https://localhost:5281/http-bind >"$DIR/nca.out" 2>"$DIR/nca.err"
rc=$?
[ $rc = 4 ] && ok "HTTPS without the CA: certificate refused ($(cat "$DIR/nca.err"))" ||
	bad "HTTPS without CA: exit $rc: $(cat "$DIR/nca.err")"

# --- ejabberd 23.01 (if installed) ---------------------------------------------------------------
if command -v ejabberdctl >/dev/null 2>&1 && [ "${KL_BOSH_NO_EJABBERD:-0}" != 1 ]; then
	"$PROSODY" stop "$DIR" >/dev/null
	EDIR=$(mktemp -d /tmp/kl-bosh-ej.XXXXXX)
	if "$EJABBERD" start "$EDIR" >"$DIR/ej.out" 2>&1; then
		EURL=http://127.0.0.1:5280/bosh
		kb --jid alice@localhost/e --password alicepass --bosh $EURL --allow-plaintext --bosh-path split \
			>"$DIR/ejs.out" 2>"$DIR/ejs.err"
		rc=$?
		[ $rc = 0 ] && grep -q '^online' "$DIR/ejs.out" &&
			ok "ejabberd, split path: online, $(json "$DIR/ejs.out" round_trips) round trips ($(json "$DIR/ejs.out" http_round_trips) HTTP)" ||
			bad "ejabberd split: exit $rc: $(cat "$DIR/ejs.err")"
		kb --jid alice@localhost/e --password alicepass --bosh $EURL --allow-plaintext \
			>"$DIR/eja.out" 2>"$DIR/eja.err"
		rc=$?
		[ $rc = 0 ] && grep -q '^online' "$DIR/eja.out" &&
			ok "ejabberd, auto: online via path $(json "$DIR/eja.out" bosh_path) (fallback $(json "$DIR/eja.out" full_fallback)), $(json "$DIR/eja.out" round_trips) round trips" ||
			bad "ejabberd auto: exit $rc: $(cat "$DIR/eja.err")"
		# the hints remember the path: the second auto login wastes no request
		for i in 1 2; do
			kb --jid alice@localhost/e --password alicepass --bosh $EURL --allow-plaintext --cache "$DIR/ejh" \
				>"$DIR/ejc$i.out" 2>"$DIR/ejc$i.err"
		done
		[ "$(json "$DIR/ejc1.out" full_fallback)" = 1 ] && [ "$(json "$DIR/ejc2.out" full_fallback)" = 0 ] &&
			[ "$(json "$DIR/ejc2.out" bosh_path)" = split ] && [ "$(json "$DIR/ejc2.out" cache)" = hit ] &&
			ok "ejabberd: the learned split path is kept in the hints (no fallback the second time)" ||
			bad "ejabberd hints: $(tail -1 "$DIR/ejc1.out") / $(tail -1 "$DIR/ejc2.out") $(cat "$DIR/ejc2.err")"
	else
		bad "ejabberd start: $(tail -5 "$DIR/ej.out")"
	fi
fi
finish
