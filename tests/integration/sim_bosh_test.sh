#!/bin/bash
# tests/integration/sim_bosh_test.sh — BOSH (XEP-0124/0206) over the
# simulator (the connection manager's BOSH framing: two HTTP connections
# over lwIP TCP, each over mbedTLS for https, on the restricted libslirp
# link), against a
# throwaway Prosody's mod_bosh (HTTP 5280, HTTPS 5281), in a loopback-only
# network namespace. Checks:
#   - login over HTTP and HTTPS with <auth/> + restart + bind in the creation
#     body: the round trips equal build/kinglet --bosh's for the same URL
#     and path (2 over HTTP, 3 over HTTPS with TLS 1.3), a clean close
#   - a message to bob (build/kinglet --echo over c2s) and its echo back,
#     over HTTPS
#   - plain http:// refused without --allow-plaintext (exit 5)
#   - --bosh-path split and the hints (--cache) keeping the path
#   - no mbedTLS arena failure, lwIP pool/heap error or dropped frame; valgrind-clean
# Last line: "sim_bosh: N passed, N failed"; exit 1 on any failure.
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
	echo "sim_bosh: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

DIR=$(mktemp -d /tmp/kl-simb.XXXXXX)
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
KEYS='"%d %d %d %s %s" % (j["round_trips"], j["http_round_trips"], j["http_requests"], j["bosh_path"], j["mode"])'
HTTP=http://127.0.0.1:5280/http-bind HTTPS=https://localhost:5281/http-bind
SHTTP=http://10.0.2.100:5280/http-bind SHTTPS=https://server.sim:5281/http-bind

"$PROSODY" start "$DIR" --https-port 5281 >/dev/null || { bad "prosody start"; finish; }
ok "prosody started (BOSH on HTTP 5280 and HTTPS 5281)"

# --- login over HTTP and HTTPS: the simulator's round trips equal the CLI's -------------------
for v in "http $HTTP $SHTTP --allow-plaintext" "https $HTTPS $SHTTPS"; do
	set -- $v
	name=$1 url=$2 surl=$3
	shift 3
	kl --jid alice@localhost/c --password alicepass --bosh "$url" "$@" >"$DIR/cli-$name.out" 2>"$DIR/cli-$name.err" ||
		bad "CLI over $name: $(cat "$DIR/cli-$name.err")"
	sim --jid alice@localhost/s --password alicepass --bosh "$surl" "$@" >"$DIR/sim-$name.out" 2>"$DIR/sim-$name.err"
	rc=$?
	[ $rc = 0 ] && grep -q '^online alice@localhost/s' "$DIR/sim-$name.out" && ok "simulator over BOSH/$name: online, closed cleanly (exit 0)" ||
		bad "simulator over BOSH/$name: exit $rc: $(cat "$DIR/sim-$name.err")"
	a=$(json "$DIR/cli-$name.out" "$KEYS") b=$(json "$DIR/sim-$name.out" "$KEYS")
	want=2
	[ "$name" = https ] && want=3
	echo "     $name: CLI (round trips, HTTP rounds, requests, path, mode) = $a; simulator = $b"
	[ "$a" = "$b" ] && [ "${b%% *}" = $want ] && ok "BOSH/$name over lwIP: $want round trips, as build/kinglet --bosh" ||
		bad "BOSH/$name: CLI '$a', simulator '$b' (want $want)"
done
[ "$(json "$DIR/sim-https.out" 'j["tls"]')" = TLSv1.3 ] && ok "HTTPS over lwIP + mbedTLS: TLS 1.3 on both connections" ||
	bad "HTTPS TLS: $(json "$DIR/sim-https.out" 'j["tls"]')"
n=$(grep -c 'BOSH client disconnected: session close' "$DIR/prosody.log")
[ "$n" -ge 4 ] && ok "Prosody saw clean session closes ($n)" || bad "clean closes in prosody.log: $n"

# --- security rule 1 ----------------------------------------------------------------------------
timeout 10 "$SIM" --jid alice@localhost/p --password alicepass --bosh "$SHTTP" >/dev/null 2>"$DIR/plain.err"
rc=$?
[ $rc = 5 ] && grep -q 'in clear' "$DIR/plain.err" && ok "plain HTTP refused without --allow-plaintext (exit 5)" ||
	bad "plain HTTP: exit $rc $(cat "$DIR/plain.err")"

# --- a message to bob over HTTPS and back ------------------------------------------------------
timeout -k 2 30 "$KL" --jid bob@localhost/echo --password bobpass --host 127.0.0.1 --cafile "$DIR/ca.pem" \
	--echo --count 1 --timeout 20 >"$DIR/bob.out" 2>"$DIR/bob.err" &
bob=$!
PIDS="$PIDS $bob"
for _ in $(seq 50); do grep -q '^online' "$DIR/bob.out" && break; sleep 0.1; done
sim --jid alice@localhost/m --password alicepass --bosh "$SHTTPS" --send bob@localhost/echo "hello over lwIP bosh" \
	--recv 1 >"$DIR/msg.out" 2>"$DIR/msg.err"
rc=$?
wait $bob 2>/dev/null
grep -q 'message from alice@localhost/m: hello over lwIP bosh' "$DIR/bob.out" && ok "bob got the message" ||
	bad "bob: $(cat "$DIR/bob.out" "$DIR/bob.err")"
[ $rc = 0 ] && grep -q 'message from bob@localhost/echo: hello over lwIP bosh' "$DIR/msg.out" &&
	ok "the echo came back over BOSH/HTTPS on lwIP, then a clean close (exit 0)" || bad "echo: exit $rc: $(cat "$DIR/msg.err")"

# --- the split path, and the hints keep the path ------------------------------------------------
kl --jid alice@localhost/c --password alicepass --bosh "$HTTP" --allow-plaintext --bosh-path split \
	>"$DIR/cli-split.out" 2>/dev/null
sim --jid alice@localhost/s --password alicepass --bosh "$SHTTP" --allow-plaintext --bosh-path split \
	>"$DIR/sim-split.out" 2>"$DIR/sim-split.err" || bad "split: $(cat "$DIR/sim-split.err")"
a=$(json "$DIR/cli-split.out" "$KEYS") b=$(json "$DIR/sim-split.out" "$KEYS")
echo "     split: CLI = $a; simulator = $b"
[ "$a" = "$b" ] && [ "$(json "$DIR/sim-split.out" 'j["bosh_path"]')" = split ] &&
	ok "--bosh-path split over lwIP: as the CLI ($b)" || bad "split: CLI '$a', simulator '$b'"
for run in 1 2; do
	sim --jid alice@localhost/h --password alicepass --bosh "$SHTTP" --allow-plaintext --cache "$DIR/b.hints" \
		>"$DIR/h$run.out" 2>"$DIR/h$run.err" || bad "hints run $run: $(cat "$DIR/h$run.err")"
done
r="$(json "$DIR/h1.out" '"%s %s" % (j["cache"], j["bosh_path"])') / $(json "$DIR/h2.out" '"%s %s %d" % (j["cache"], j["bosh_path"], j["round_trips"])')"
[ "$r" = "miss all / hit all 2" ] && ok "hints across simulator restarts keep the BOSH path: $r" || bad "hints: $r"

# --- nothing ran dry ----------------------------------------------------------------------------
for f in sim-http sim-https msg sim-split h2; do
	v=$(json "$DIR/$f.out" '"%d %d %d %d" % (j["arena_failures"], j["lwip_exhausted"], j["link_drops"], j["lwip_heap_err"])')
	[ "$v" = "0 0 0 0" ] || bad "$f: arena failures/lwIP exhausted/link drops/heap err = $v"
done
ok "no mbedTLS arena failure, lwIP pool/heap error or dropped frame (arena peak over HTTPS: $(json "$DIR/sim-https.out" '"%d of %d" % (j["arena_peak"], j["arena"])'))"
[ "$(json "$DIR/sim-https.out" 'j["http_reconnects"]')" = 0 ] && ok "keep-alive held: no connection opened again" ||
	bad "reconnects: $(json "$DIR/sim-https.out" 'j["http_reconnects"]')"

# --- valgrind over the HTTPS path (two TLS sessions, partial writes, long polls) ---------------
if command -v valgrind >/dev/null; then
	if timeout -k 2 60 valgrind -q --error-exitcode=99 "$SIM" --cafile "$DIR/ca.pem" --jid alice@localhost/vg \
		--password alicepass --bosh "$SHTTPS" --timeout 40 --stats >"$DIR/vg.out" 2>"$DIR/vg.err" &&
		[ "$(json "$DIR/vg.out" 'j["round_trips"]')" = 3 ]; then
		ok "valgrind: BOSH over HTTPS on lwIP with no errors"
	else
		bad "valgrind: $(head -20 "$DIR/vg.err")"
	fi
fi
finish
