#!/bin/bash
# make demo, over the simulator: a simulated device (kinglet + lwIP NO_SYS=1 +
# mbedTLS with a static arena, build/kinglet-sim) gets an address from
# libslirp's DHCP, resolves the server through lwIP's DNS (local host list:
# server.sim -> 10.0.2.100, slirp's forward to the host's 127.0.0.1), logs in
# to a throwaway Prosody over STARTTLS with pipelining, sends a message to an
# echoing second client (the POSIX CLI) and gets it back, and shows every
# flight in each direction, the round trips to online and the RAM the device
# used (client state, lwIP pools and heap, mbedTLS arena peak). Then the same
# login in lockstep, for comparison. Last, the same device against Prosody 13
# (bookworm-backports, unpacked under third_party/ by make deps) with SASL2 +
# Bind2 + FAST over direct TLS: three logins, the last one traced.
# Needs: build/kinglet-sim and build/kinglet (make sim build/kinglet).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${KL_NETNS:-}" ]; then
	if [ "$(id -u)" = 0 ]; then
		exec "$root/tests/netns.sh" "$0" "$@"
	fi
	echo "demo: not root, so no private network namespace; using the host's loopback ports 5222-5280"
	echo "      (the simulator itself needs no root: its link is libslirp, in user space)"
fi
SIM=$root/build/kinglet-sim
KL=$root/build/kinglet
PROSODY=$root/tests/prosody/prosody.sh
PROSODY13=$root/tests/prosody/prosody13.sh
DIR=$(mktemp -d /tmp/kl-demo-sim.XXXXXX)
BOB=""
cleanup() {
	[ -n "$BOB" ] && kill "$BOB" 2>/dev/null
	"$PROSODY" stop "$DIR" >/dev/null 2>&1
	"$PROSODY13" stop "$DIR/p13" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

echo "== starting a throwaway Prosody (its own test CA, users alice and bob) in $DIR"
"$PROSODY" start "$DIR" || exit 1
echo
echo "== bob logs in with the POSIX CLI and echoes one message"
"$KL" --jid bob@localhost/echo --password bobpass --host 127.0.0.1 --cafile "$DIR/ca.pem" \
	--echo --count 1 --timeout 20 >"$DIR/bob.out" 2>&1 &
BOB=$!
for _ in $(seq 50); do grep -q '^online' "$DIR/bob.out" 2>/dev/null && break; sleep 0.1; done
echo
echo "== the simulated device (alice) boots, gets an address, logs in with pipelining 'safe'"
echo "   over lwIP + mbedTLS, 20 ms one-way link delay (C->S: what it sent, S->C: what Prosody answered)"
"$SIM" --jid alice@localhost/device --password alicepass --host server.sim --cafile "$DIR/ca.pem" \
	--delay 20 --send bob@localhost/echo "hello from a simulated device" --recv 1 --trace --stats --timeout 20 \
	>"$DIR/alice.out" 2>"$DIR/alice.err"
rc=$?
cat "$DIR/alice.err"
grep -v '^{' "$DIR/alice.out"
wait "$BOB" 2>/dev/null; BOB=""
[ $rc = 0 ] || { echo "demo: the simulator failed (exit $rc)"; exit 1; }
echo
echo "== the same login in lockstep ('off'), for comparison"
"$SIM" --jid alice@localhost/device --password alicepass --host server.sim --cafile "$DIR/ca.pem" \
	--delay 20 --pipelining off --stats --timeout 20 >"$DIR/off.out" 2>&1 || { cat "$DIR/off.out"; exit 1; }
python3 - "$(tail -n 1 "$DIR/alice.out")" "$(tail -n 1 "$DIR/off.out")" <<'PY'
import json, sys
s, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print()
print("                      safe   off (lockstep)")
for k, label in [("round_trips", "round trips to online"), ("flights_out", "client flights"),
                 ("bytes_out", "bytes sent"), ("bytes_in", "bytes received"), ("online_ms", "ms to online (40 ms RTT)")]:
    print(f"  {label:24s} {s[k]:5d}  {o[k]:5d}")
pools = s["lwip_pools"]
print(f"\n  TLS: {s['tls']}; records up to {s['tls_in_content']} bytes in, {s['tls_out_content']} out")
print("  RAM of the simulated device (bytes):")
print(f"    kinglet client state (kl_client_t)  {s['sizeof_client']:6d}")
print(f"    lwIP port + TLS contexts             {s['sizeof_session']:6d}")
print(f"    lwIP heap (MEM_SIZE)                 {s['lwip_heap']:6d}  (high-water {s['lwip_heap_max']})")
print(f"    lwIP pools                           {s['lwip_pools_bytes']:6d}  (PBUF_POOL high-water "
      f"{pools['PBUF_POOL']['max']} of {pools['PBUF_POOL']['num']}, TCP_SEG {pools['TCP_SEG']['max']} of {pools['TCP_SEG']['num']})")
print(f"    mbedTLS arena                        {s['arena']:6d}  (peak {s['arena_peak']})")
print(f"    total                                {s['device_ram']:6d}")
print("  round trips = TCP handshake + TLS handshake + the engine's own waits, the same")
print("  count as over BSD sockets; on a 200 ms link safe saves", (o['round_trips'] - s['round_trips']) * 200, "ms per login.")
PY
[ $? = 0 ] || exit 1

echo
echo "== the same device against Prosody 13 with SASL2 + Bind2 + FAST (XEP-0388, 0386, 0484), direct TLS"
echo "   login 1 learns the server (hints: 0600, authenticated with a device key); login 2 puts the"
echo "   password in <authenticate/> right behind the stream header and gets a FAST token; login 3"
echo "   logs in with the token (traced: one flight after TLS, no stream restart, no bind round trip)"
if [ ! -x "$root/third_party/prosody13/bin/prosody" ]; then
	echo "demo: third_party/prosody13 is missing (make deps fetches it); skipped"
	exit 0
fi
chmod 711 "$DIR" # Prosody 13 runs as the prosody user (it refuses root)
mkdir -p "$DIR/p13"
"$PROSODY13" start "$DIR/p13" >"$DIR/p13.start" 2>&1 || { cat "$DIR/p13.start"; exit 1; }
for i in 1 2 3; do
	trace=""
	[ $i = 3 ] && trace=--trace
	"$SIM" --jid alice@localhost --password alicepass --host server.sim --port 5233 --tls direct \
		--cafile "$DIR/p13/ca.pem" --cache "$DIR/hints" --delay 20 --stats --timeout 20 $trace \
		>"$DIR/p13_$i.out" 2>"$DIR/p13_$i.err" || { cat "$DIR/p13_$i.out" "$DIR/p13_$i.err"; exit 1; }
done
cat "$DIR/p13_3.err"
python3 - "$(tail -n 1 "$DIR/p13_1.out")" "$(tail -n 1 "$DIR/p13_2.out")" "$(tail -n 1 "$DIR/p13_3.out")" <<'PY'
import json, sys
runs = [json.loads(a) for a in sys.argv[1:]]
print()
print("                      login 1      login 2      login 3")
print("  " + f"{'SASL':24s}" + "".join(f"{r['sasl'][:12]:>13s}" for r in runs))
for k, label in [("round_trips", "round trips to online"), ("flights_out", "client flights"),
                 ("bytes_out", "bytes sent"), ("bytes_in", "bytes received"), ("online_ms", "ms to online (40 ms RTT)")]:
    print(f"  {label:24s}" + "".join(f"{r[k]:13d}" for r in runs))
print("  login 1: RFC 6120 (the server is not known yet); 2: SASL2 with the password and a token")
print("  request; 3: FAST. On a 200 ms link login 3 is online", (runs[0]['round_trips'] - runs[2]['round_trips']) * 200,
      "ms sooner than login 1.")
PY
