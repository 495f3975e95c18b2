#!/bin/bash
# tests/integration/sim_test.sh — the simulator (kinglet over lwIP NO_SYS=1 +
# mbedTLS with a static arena, on a restricted libslirp link) against a real
# Prosody over STARTTLS, inside a loopback-only network namespace:
#   - messages both ways with a second client (the POSIX CLI), clean close
#   - engine round trips over lwIP = over BSD sockets (off and safe), TLS 1.3
#   - no pool, heap or arena ran out; the link's delay shows in wall time
#   - backpressure: 50 x 6 KB messages from a second client (Python ssl)
#     while the device reads 512 bytes per loop turn: all arrive intact
#     (count + FNV-1a of the bodies in order), queued bytes <= TCP_WND,
#     PBUF_POOL high-water below its size
#   - valgrind: one session, no errors
#   - refusals: wrong password (5), nothing listening (3), no CA (4)
# Last line: "sim: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
SIM=${KINGLET_SIM:-$root/build/kinglet-sim}
KL=${KINGLET:-$root/build/kinglet}

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() {
	echo "sim: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

DIR=$(mktemp -d /tmp/kl-sim.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	"$PROSODY" stop "$DIR" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

"$PROSODY" start "$DIR" >/dev/null || { bad "prosody start"; finish; }
ok "prosody started"

sim() { timeout -k 2 40 "$SIM" --cafile "$DIR/ca.pem" "$@"; }
kl() { timeout -k 2 30 "$KL" --host 127.0.0.1 --cafile "$DIR/ca.pem" "$@"; }
json() { # json FILE EXPR -> value of a Python expression over the last line's object j
	tail -n 1 "$1" | python3 -c "import json,sys; j=json.load(sys.stdin); print($2)"
}
wait_online() { for _ in $(seq 100); do grep -q '^online' "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# the run's stats line says nothing ran dry
no_exhaustion() { # FILE LABEL
	local v
	v=$(json "$1" '"%d %d %d %d %d" % (j["arena_failures"], j["lwip_exhausted"], j["link_drops"], j["arena_peak"] < j["arena"], j["lwip_heap_err"])' 2>/dev/null)
	[ "$v" = "0 0 0 1 0" ] && ok "$2: no arena failure, no lwIP pool/heap error, no frame dropped" ||
		bad "$2: arena failures/lwip exhausted/link drops/peak<arena/heap err = $v"
}

# --- messages both ways with the CLI ----------------------------------------
body='hello <sim> & "co"'
sim --jid bob@localhost/sim --password bobpass --echo --count 1 --timeout 20 --stats >"$DIR/simecho.out" 2>"$DIR/simecho.err" &
simpid=$!
PIDS="$PIDS $simpid"
wait_online "$DIR/simecho.out" || bad "simulator (echo) not online: $(cat "$DIR/simecho.err")"
if kl --jid alice@localhost/cli --password alicepass --send bob@localhost/sim "$body" --recv 1 --timeout 20 \
	>"$DIR/cli.out" 2>"$DIR/cli.err"; then
	ok "CLI sends to the simulator and gets the echo (exit 0)"
else
	bad "CLI exit $?: $(cat "$DIR/cli.err")"
fi
grep -qF "message from bob@localhost/sim: $body" "$DIR/cli.out" && ok "simulator -> CLI: exact body" ||
	bad "echo missing at the CLI: $(cat "$DIR/cli.out")"
if wait "$simpid"; then ok "simulator echoed one message and closed cleanly (exit 0)"; else bad "simulator echo exit: $(cat "$DIR/simecho.err")"; fi
grep -qF "message from alice@localhost/cli: $body" "$DIR/simecho.out" && ok "CLI -> simulator: exact body" ||
	bad "simulator did not receive: $(cat "$DIR/simecho.out")"
no_exhaustion "$DIR/simecho.out" "echo session"

kl --jid bob@localhost/echo --password bobpass --echo --count 1 --timeout 20 >"$DIR/bob.out" 2>"$DIR/bob.err" &
bobpid=$!
PIDS="$PIDS $bobpid"
wait_online "$DIR/bob.out" || bad "CLI echo not online"
if sim --jid alice@localhost/sim --password alicepass --send bob@localhost/echo "ping from lwIP" --recv 1 --timeout 20 \
	>"$DIR/simsend.out" 2>"$DIR/simsend.err"; then
	ok "simulator sends and receives the CLI's echo (exit 0)"
else
	bad "simulator --send exit $?: $(cat "$DIR/simsend.err")"
fi
grep -qF 'message from bob@localhost/echo: ping from lwIP' "$DIR/simsend.out" && ok "echo from the CLI arrived" ||
	bad "no echo from the CLI: $(cat "$DIR/simsend.out")"
wait "$bobpid" || bad "CLI echo exit: $(cat "$DIR/bob.err")"

# --- round trips: lwIP vs BSD sockets ------------------------------------------
for mode in off safe; do
	sim --jid alice@localhost/rt --password alicepass --pipelining $mode --stats >"$DIR/sim-$mode.json" 2>"$DIR/sim-$mode.err" ||
		bad "simulator $mode login: $(cat "$DIR/sim-$mode.err")"
	kl --jid alice@localhost/rt --password alicepass --pipelining $mode --stats >"$DIR/cli-$mode.json" 2>"$DIR/cli-$mode.err" ||
		bad "CLI $mode login: $(cat "$DIR/cli-$mode.err")"
	s=$(json "$DIR/sim-$mode.json" '"%d/%d/%d" % (j["round_trips"], j["engine_round_trips"], j["port_round_trips"])' 2>/dev/null || echo "?")
	c=$(json "$DIR/cli-$mode.json" '"%d/%d/%d" % (j["round_trips"], j["engine_round_trips"], j["port_round_trips"])' 2>/dev/null || echo "??")
	[ "$s" = "$c" ] && ok "$mode: round trips (total/engine/port) over lwIP $s = over sockets $c" ||
		bad "$mode: lwIP $s vs sockets $c"
	t=$(json "$DIR/sim-$mode.json" 'j["tls"]' 2>/dev/null)
	[ "$t" = "TLSv1.3" ] && ok "$mode: TLS 1.3 over lwIP + mbedTLS (arena)" || bad "$mode: TLS $t"
done
no_exhaustion "$DIR/sim-safe.json" "safe login"
peak=$(json "$DIR/sim-safe.json" '"%d of %d" % (j["arena_peak"], j["arena"])' 2>/dev/null)
echo "     mbedTLS arena peak: $peak bytes; device RAM $(json "$DIR/sim-safe.json" 'j["device_ram"]' 2>/dev/null) bytes"

# --- the link's delay is real: wall time / RTT = round trips ----------------------
# The TCP connect also waits for ARP (the device's first packet to the
# server): one more link round trip, so count from TCP up and add the
# handshake as one. The device's own work (the TLS handshake's crypto on
# a loaded machine) must stay under one RTT: with a 200 ms RTT it once
# took 215 ms more than the 4 RTTs of a 5-round-trip login, so the RTT is
# 500 ms.
sim --jid alice@localhost/rt --password alicepass --delay 250 --stats >"$DIR/delay.json" 2>"$DIR/delay.err" ||
	bad "delayed login: $(cat "$DIR/delay.err")"
v=$(json "$DIR/delay.json" '"%d %d %d %d" % (j["round_trips"], 1 + (j["online_ms"] - j["tcp_connect_ms"]) // 500, j["online_ms"], j["tcp_connect_ms"])' 2>/dev/null)
set -- $v
[ -n "${1:-}" ] && [ "$1" = "${2:-x}" ] && ok "500 ms link RTT: $1 round trips = 1 + floor((online $3 ms - TCP up $4 ms) / RTT)" ||
	bad "delayed link: round trips vs wall time: '$v' ($(cat "$DIR/delay.err"))"

# --- backpressure: many large messages, a slow reader ----------------------------
sim --jid alice@localhost/slow --password alicepass --recv 50 --slow-read 512 --timeout 35 --stats \
	>"$DIR/slow.out" 2>"$DIR/slow.err" &
slowpid=$!
PIDS="$PIDS $slowpid"
wait_online "$DIR/slow.out" || bad "slow reader not online: $(cat "$DIR/slow.err")"
timeout 30 python3 "$here/sim_flood.py" --jid bob@localhost --password bobpass --to alice@localhost/slow \
	--count 50 --size 6000 --cafile "$DIR/ca.pem" >"$DIR/flood.out" 2>"$DIR/flood.err" ||
	bad "flood sender: $(cat "$DIR/flood.err")"
if wait "$slowpid"; then ok "slow reader got --recv 50 and closed (exit 0)"; else bad "slow reader exit: $(cat "$DIR/slow.err")"; fi
want=$(sed -n 's/^sent \([0-9]*\) bodies \([0-9]*\) bytes fnv1a \([0-9a-f]*\)$/\1 \2 \3/p' "$DIR/flood.out")
got=$(json "$DIR/slow.out" '"%d %d %s" % (j["bodies"], j["body_bytes"], j["body_fnv1a"])' 2>/dev/null)
[ -n "$want" ] && [ "$want" = "$got" ] && ok "all bodies intact and in order: $got (count, bytes, FNV-1a)" ||
	bad "bodies sent '$want' vs received '$got'"
v=$(json "$DIR/slow.out" '"%d %d %d %d" % (j["rx_queued_max"], j["tcp_wnd"], j["lwip_pools"]["PBUF_POOL"]["max"], j["lwip_pools"]["PBUF_POOL"]["num"])' 2>/dev/null)
set -- $v
if [ -n "${4:-}" ] && [ "$1" -le "$2" ] && [ "$3" -lt "$4" ]; then
	ok "memory bounded: queued $1 <= TCP_WND $2 bytes (window closed: $([ "$1" = "$2" ] && echo yes || echo no)), PBUF_POOL high-water $3 < $4"
else
	bad "memory bound: queued/TCP_WND/pool max/pool size = '$v'"
fi
no_exhaustion "$DIR/slow.out" "backpressure"

# --- valgrind ----------------------------------------------------------------------
if command -v valgrind >/dev/null; then
	if timeout -k 2 90 valgrind -q --error-exitcode=99 "$SIM" --cafile "$DIR/ca.pem" --jid alice@localhost/vg \
		--password alicepass --send alice@localhost/vg "to myself" --recv 1 --timeout 60 \
		>"$DIR/vg.out" 2>"$DIR/vg.err"; then
		ok "valgrind: a simulator session (login, message to itself, close) with no errors"
	else
		bad "valgrind exit $?: $(head -30 "$DIR/vg.err")"
	fi
else
	bad "valgrind not installed"
fi

# --- refusals ----------------------------------------------------------------------
sim --jid alice@localhost --password wrong --timeout 10 >/dev/null 2>"$DIR/wrongpw.err"
rc=$?
[ $rc = 5 ] && grep -q 'authentication failed (not-authorized)' "$DIR/wrongpw.err" &&
	ok "wrong password: exit 5, '$(cat "$DIR/wrongpw.err")'" || bad "wrong password: exit $rc: $(cat "$DIR/wrongpw.err")"
sim --jid alice@localhost --password alicepass --port 1 --timeout 5 >/dev/null 2>"$DIR/noport.err"
rc=$?
[ $rc = 3 ] && [ "$(wc -l <"$DIR/noport.err")" = 1 ] &&
	ok "nothing listening: exit 3, '$(cat "$DIR/noport.err")'" || bad "nothing listening: exit $rc: $(cat "$DIR/noport.err")"
timeout 30 "$SIM" --jid alice@localhost --password alicepass --timeout 10 >/dev/null 2>"$DIR/noca.err"
rc=$?
[ $rc = 4 ] && ok "no CA given: exit 4, '$(cat "$DIR/noca.err")'" || bad "no CA: exit $rc: $(cat "$DIR/noca.err")"

finish
