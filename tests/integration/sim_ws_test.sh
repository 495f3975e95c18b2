#!/bin/bash
# tests/integration/sim_ws_test.sh — XMPP over WebSocket (RFC 7395) over the
# simulator (kinglet-sim --ws URL: the connection manager's WebSocket
# framing over lwIP TCP, over mbedTLS for wss://, on the restricted
# libslirp link), against a throwaway Prosody's mod_websocket (HTTP 5280,
# HTTPS 5281: the simulator reaches them as 10.0.2.100 / server.sim), in a
# loopback-only network namespace. Checks:
#   - login over ws:// (--allow-plaintext) and wss:// (certificate verified
#     against the XMPP domain, TLS 1.3): the round trips equal build/kinglet
#     --ws's for the same server (4 over ws://: TCP, upgrade, auth, bind;
#     5 over wss://: + the TLS 1.3 handshake), a clean close
#   - a message to bob (build/kinglet --echo over c2s) and its echo back,
#     over wss://
#   - plain ws:// refused without --allow-plaintext (exit 5)
#   - no mbedTLS arena failure, lwIP pool/heap error or dropped frame; valgrind-clean
# Last line: "sim_ws: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
SIM=${KINGLET_SIM:-$root/build/kinglet-sim}
KL=${KINGLET:-$root/build/kinglet}

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() {
	echo "sim_ws: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

DIR=$(mktemp -d /tmp/kl-simw.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	"$PROSODY" stop "$DIR" >/dev/null 2>&1
	[ -n "${KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT

json() { grep '^{' "$1" | tail -n 1 | python3 -c "import json,sys; j=json.load(sys.stdin); print($2)" 2>/dev/null || echo "?"; }
sim() { timeout -k 2 30 "$SIM" --cafile "$DIR/ca.pem" --timeout 15 --stats "$@"; }
kl() { timeout -k 2 30 "$KL" --cafile "$DIR/ca.pem" --timeout 15 --stats "$@"; }
KEYS='"%d %s %s" % (j["round_trips"], j["mode"], j["tls"])'
WS=ws://127.0.0.1:5280/xmpp-websocket WSS=wss://localhost:5281/xmpp-websocket
SWS=ws://10.0.2.100:5280/xmpp-websocket SWSS=wss://server.sim:5281/xmpp-websocket

"$PROSODY" start "$DIR" --https-port 5281 >/dev/null || { bad "prosody start"; finish; }
ok "prosody started (WebSocket on HTTP 5280 and HTTPS 5281)"

# --- login over ws:// and wss://: the simulator's round trips equal the CLI's ------------------
for v in "ws $WS $SWS 4 none --allow-plaintext" "wss $WSS $SWSS 5 TLSv1.3"; do
	set -- $v
	name=$1 url=$2 surl=$3 want=$4 tls=$5
	shift 5
	kl --jid alice@localhost/c --password alicepass --ws "$url" "$@" >"$DIR/cli-$name.out" 2>"$DIR/cli-$name.err" ||
		bad "CLI over $name: $(cat "$DIR/cli-$name.err")"
	sim --jid alice@localhost/s --password alicepass --ws "$surl" "$@" >"$DIR/sim-$name.out" 2>"$DIR/sim-$name.err"
	rc=$?
	[ $rc = 0 ] && grep -q '^online alice@localhost/s' "$DIR/sim-$name.out" &&
		ok "simulator over $name://: online, closed cleanly (exit 0)" ||
		bad "simulator over $name://: exit $rc: $(cat "$DIR/sim-$name.err")"
	a=$(json "$DIR/cli-$name.out" "$KEYS") b=$(json "$DIR/sim-$name.out" "$KEYS")
	echo "     $name: CLI (round trips, mode, tls) = $a; simulator = $b"
	[ "$a" = "$b" ] && [ "$b" = "$want ws $tls" ] && ok "$name:// over lwIP: $want round trips ($tls), as build/kinglet --ws" ||
		bad "$name://: CLI '$a', simulator '$b' (want '$want ws $tls')"
done

# --- security rule 1 ----------------------------------------------------------------------------
timeout 10 "$SIM" --jid alice@localhost/p --password alicepass --ws "$SWS" >/dev/null 2>"$DIR/plain.err"
rc=$?
[ $rc = 5 ] && grep -q 'in clear' "$DIR/plain.err" && ok "plain ws:// refused without --allow-plaintext (exit 5)" ||
	bad "plain ws://: exit $rc $(cat "$DIR/plain.err")"

# --- a message to bob over wss:// and back ------------------------------------------------------
timeout -k 2 30 "$KL" --jid bob@localhost/echo --password bobpass --host 127.0.0.1 --cafile "$DIR/ca.pem" \
	--echo --count 1 --timeout 20 >"$DIR/bob.out" 2>"$DIR/bob.err" &
bob=$!
PIDS="$PIDS $bob"
for _ in $(seq 50); do grep -q '^online' "$DIR/bob.out" && break; sleep 0.1; done
sim --jid alice@localhost/m --password alicepass --ws "$SWSS" --send bob@localhost/echo "hello over lwIP websocket" \
	--recv 1 >"$DIR/msg.out" 2>"$DIR/msg.err"
rc=$?
wait $bob 2>/dev/null
grep -q 'message from alice@localhost/m: hello over lwIP websocket' "$DIR/bob.out" && ok "bob got the message" ||
	bad "bob: $(cat "$DIR/bob.out" "$DIR/bob.err")"
[ $rc = 0 ] && grep -q 'message from bob@localhost/echo: hello over lwIP websocket' "$DIR/msg.out" &&
	ok "the echo came back over wss:// on lwIP, then a clean close (exit 0)" || bad "echo: exit $rc: $(cat "$DIR/msg.err")"

# --- nothing ran dry ----------------------------------------------------------------------------
for f in sim-ws sim-wss msg; do
	v=$(json "$DIR/$f.out" '"%d %d %d %d" % (j["arena_failures"], j["lwip_exhausted"], j["link_drops"], j["lwip_heap_err"])')
	[ "$v" = "0 0 0 0" ] || bad "$f: arena failures/lwIP exhausted/link drops/heap err = $v"
done
ok "no mbedTLS arena failure, lwIP pool/heap error or dropped frame (arena peak over wss://: $(json "$DIR/sim-wss.out" '"%d of %d" % (j["arena_peak"], j["arena"])'))"

# --- valgrind over wss:// -----------------------------------------------------------------------
if command -v valgrind >/dev/null; then
	if timeout -k 2 60 valgrind -q --error-exitcode=99 "$SIM" --cafile "$DIR/ca.pem" --jid alice@localhost/vg \
		--password alicepass --ws "$SWSS" --timeout 40 --stats >"$DIR/vg.out" 2>"$DIR/vg.err" &&
		[ "$(json "$DIR/vg.out" 'j["round_trips"]')" = 5 ]; then
		ok "valgrind: WebSocket over wss:// on lwIP with no errors"
	else
		bad "valgrind: $(head -20 "$DIR/vg.err")"
	fi
fi
finish
