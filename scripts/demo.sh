#!/bin/bash
# make demo: kinglet logs in to a throwaway local Prosody over STARTTLS with
# pipelining and shows what it did: every flight in each direction, the
# round trips to online, and the same login in lockstep for comparison.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${KL_NETNS:-}" ]; then
	if [ "$(id -u)" = 0 ]; then
		exec "$root/tests/netns.sh" "$0" "$@"
	fi
	echo "demo: not root, so no private network namespace; using the host's loopback ports 5222-5280"
fi
KL=$root/build/kinglet
PROSODY=$root/tests/prosody/prosody.sh
DIR=$(mktemp -d /tmp/kl-demo.XXXXXX)
BOB=""
cleanup() { [ -n "$BOB" ] && kill "$BOB" 2>/dev/null; "$PROSODY" stop "$DIR" >/dev/null 2>&1; rm -rf "$DIR"; }
trap cleanup EXIT

echo "== starting a throwaway Prosody (its own test CA, users alice and bob) in $DIR"
"$PROSODY" start "$DIR" || exit 1
echo
echo "== bob logs in and echoes one message"
"$KL" --jid bob@localhost/echo --password bobpass --host 127.0.0.1 --cafile "$DIR/ca.pem" \
	--echo --count 1 --timeout 20 >"$DIR/bob.out" 2>&1 &
BOB=$!
for _ in $(seq 50); do grep -q '^online' "$DIR/bob.out" 2>/dev/null && break; sleep 0.1; done
echo
echo "== alice logs in with pipelining 'safe' (C->S: what kinglet sent, S->C: what Prosody answered)"
"$KL" --jid alice@localhost/demo --password alicepass --host 127.0.0.1 --cafile "$DIR/ca.pem" \
	--send bob@localhost/echo "hello from kinglet" --recv 1 --trace --stats --timeout 20 2>&1 | tee "$DIR/alice.out"
wait "$BOB" 2>/dev/null; BOB=""
echo
echo "== the same login in lockstep ('off'), for comparison"
"$KL" --jid alice@localhost/demo --password alicepass --host 127.0.0.1 --cafile "$DIR/ca.pem" \
	--pipelining off --stats --timeout 20 >"$DIR/off.out" 2>&1
safe=$(tail -n 1 "$DIR/alice.out")
off=$(tail -n 1 "$DIR/off.out")
python3 - "$safe" "$off" <<'PY'
import json, sys
s, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print()
print("                      safe   off (lockstep)")
for k, label in [("round_trips", "round trips to online"), ("flights_out", "client flights"),
                 ("bytes_out", "bytes sent"), ("bytes_in", "bytes received")]:
    print(f"  {label:22s} {s[k]:5d}  {o[k]:5d}")
print(f"  TLS: {s['tls']}, kl_client_t is {s['sizeof_client']} bytes (all of the engine's RAM)")
print("  round trips = TCP handshake + TLS handshake + the engine's own waits; on a")
print("  200 ms link safe saves", (o['round_trips'] - s['round_trips']) * 200, "ms per login.")
PY
