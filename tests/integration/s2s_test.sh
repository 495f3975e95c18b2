#!/bin/bash
# tests/integration/s2s_test.sh — kinglet as the server of its own domain
# (sensor.test) federating with Prosody over ONE bidirectional s2s stream
# (XEP-0288 + SASL EXTERNAL), inside a loopback-only network namespace where
# nothing listens for sensor.test and the name does not resolve.
# Last line: "s2s: N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
KL=${KINGLET:-$root/build/kinglet}
DIR=$(mktemp -d /tmp/kl-s2s.XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; "$PROSODY" stop "$DIR" >/dev/null 2>&1; [ -n "${KEEP:-}" ] || rm -rf "$DIR"; }
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() { echo "s2s: $pass passed, $fail failed"; [ "$fail" = 0 ]; exit; }
json() { tail -n 1 "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }

"$PROSODY" start "$DIR" --s2s-port 5269 --debug >/dev/null || { bad "prosody start with s2s"; finish; }
"$PROSODY" cert "$DIR" sensor DNS:sensor.test >/dev/null
"$PROSODY" cert "$DIR" other DNS:other.test >/dev/null
device() { timeout -k 2 30 "$KL" --s2s --domain sensor.test --to localhost --host 127.0.0.1 --cafile "$DIR/ca.pem" "$@"; }
user() { timeout -k 2 30 "$KL" --jid alice@localhost/u --password alicepass --host 127.0.0.1 --cafile "$DIR/ca.pem" "$@"; }
wait_online() { for _ in $(seq 50); do grep -q '^online' "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

getent hosts sensor.test >/dev/null 2>&1 && bad "sensor.test resolves here" || ok "sensor.test does not resolve"

# --- a user's message reaches the device and its answer comes back ------------
device --cert "$DIR/sensor.pem" --key "$DIR/sensor.key" --echo --count 1 --timeout 20 --stats --cache "$DIR/hints" \
	>"$DIR/dev.out" 2>"$DIR/dev.err" &
dev=$!
PIDS="$PIDS $dev"
wait_online "$DIR/dev.out" && ok "device online over s2s" || bad "device not online: $(cat "$DIR/dev.err")"
if user --send device@sensor.test "temperature?" --recv 1 --timeout 15 >"$DIR/user.out" 2>"$DIR/user.err"; then
	ok "user sent to device@sensor.test and got an answer (exit 0)"
else
	bad "user: $(cat "$DIR/user.err")"
fi
grep -qF 'message from device@sensor.test: temperature?' "$DIR/user.out" && ok "the device's reply reached the user" ||
	bad "no reply: $(cat "$DIR/user.out")"
wait "$dev" && ok "device echoed and closed (exit 0)" || bad "device exit: $(cat "$DIR/dev.err")"
grep -qF 'message from alice@localhost/u: temperature?' "$DIR/dev.out" && ok "device received the message on its own stream" ||
	bad "device did not receive: $(cat "$DIR/dev.out")"
# Prosody never tried a connection of its own to sensor.test
if grep -qiE 's2sout[0-9a-f]{6,}|connection attempt|Beginning new connection' "$DIR/prosody.log"; then
	bad "Prosody opened or tried a second (outgoing) s2s connection: $(grep -iE 's2sout[0-9a-f]{6,}|connection attempt|Beginning new connection' "$DIR/prosody.log" | head -3)"
else
	ok "Prosody used the device's stream: no outgoing s2s connection attempted"
fi
rt1=$(json "$DIR/dev.out" round_trips 2>/dev/null || echo 99)

# --- with the hints cached, <bidi/> and EXTERNAL ride with the header ----------
device --cert "$DIR/sensor.pem" --key "$DIR/sensor.key" --timeout 10 --stats --cache "$DIR/hints" >"$DIR/dev2.out" 2>"$DIR/dev2.err" ||
	bad "second device run: $(cat "$DIR/dev2.err")"
rt2=$(json "$DIR/dev2.out" round_trips 2>/dev/null || echo 99)
[ "$rt2" -lt "$rt1" ] && [ "$rt2" -le 5 ] && ok "round trips to an authenticated bidi stream: $rt1 -> $rt2 with hints (<bidi/> adds none)" ||
	bad "round trips: $rt1 -> $rt2"

# --- negative cases -------------------------------------------------------------
# a certificate for another domain: SASL EXTERNAL for sensor.test must fail
device --cert "$DIR/other.pem" --key "$DIR/other.key" --timeout 10 >/dev/null 2>"$DIR/other.err"
rc=$?
[ $rc != 0 ] && ok "certificate of another domain refused: exit $rc: $(cat "$DIR/other.err")" || bad "other.test certificate accepted"
# a certificate from a CA Prosody does not trust
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=sensor.test \
	-addext subjectAltName=DNS:sensor.test -keyout "$DIR/self.key" -out "$DIR/self.pem" >/dev/null 2>&1
device --cert "$DIR/self.pem" --key "$DIR/self.key" --timeout 10 >/dev/null 2>"$DIR/self.err"
rc=$?
[ $rc != 0 ] && ok "untrusted certificate refused: exit $rc: $(cat "$DIR/self.err")" || bad "self-signed certificate accepted"

# a peer without bidi: the application is told it can send but not receive
"$PROSODY" stop "$DIR" >/dev/null
"$PROSODY" start "$DIR" --s2s-port 5269 --no-bidi >/dev/null || bad "prosody restart without bidi"
device --cert "$DIR/sensor.pem" --key "$DIR/sensor.key" --timeout 10 >"$DIR/nobidi.out" 2>"$DIR/nobidi.err"
rc=$?
grep -q 'offers no bidirectional s2s' "$DIR/nobidi.err" && ok "peer without bidi: warned: $(head -1 "$DIR/nobidi.err")" ||
	bad "no warning without bidi (exit $rc): $(cat "$DIR/nobidi.err")"
finish
