#!/bin/bash
# tests/bench/login_bench.sh — time to a bound session over a link with a
# fixed RTT (the delay proxy, default 200 ms), against a throwaway Prosody,
# for kinglet (off, safe) and libstrophe, in one run. Wall-clock figures
# live here, never in `make check` (which asserts the engine's counts).
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
KL=$root/build/kinglet
STROPHE=$root/build/tests/strophe_client
PROSODY=$root/tests/prosody/prosody.sh
RTT=${KL_BENCH_RTT_MS:-200}
RUNS=${KL_BENCH_RUNS:-3}
DIR=$(mktemp -d /tmp/kl-bench.XXXXXX)
PX=""
cleanup() { [ -n "$PX" ] && kill "$PX" 2>/dev/null; "$PROSODY" stop "$DIR" >/dev/null 2>&1; rm -rf "$DIR"; }
trap cleanup EXIT
"$PROSODY" start "$DIR" >/dev/null || exit 1
python3 "$root/tests/delay_proxy.py" --listen 127.0.0.1:15222 --target 127.0.0.1:5222 \
	--delay-ms $((RTT / 2)) --tcp-rtt >"$DIR/proxy.out" 2>&1 &
PX=$!
for _ in $(seq 50); do grep -q listening "$DIR/proxy.out" && break; sleep 0.1; done

echo "login over STARTTLS (TLS 1.3) to Prosody through a ${RTT} ms RTT link, best of $RUNS"
printf '  %-22s %8s %10s %12s %10s %10s\n' client "engine RT" "online ms" "ms / RTT" "bytes out" "bytes in"
for mode in off safe; do
	best=""
	for _ in $(seq "$RUNS"); do
		out=$("$KL" --jid alice@localhost/b --password alicepass --host 127.0.0.1 --port 15222 \
			--cafile "$DIR/ca.pem" --pipelining $mode --stats --timeout 30 2>/dev/null | tail -n 1)
		ms=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["online_ms"])' 2>/dev/null) || continue
		if [ -z "$best" ] || [ "$ms" -lt "$(echo "$best" | python3 -c 'import json,sys; print(json.load(sys.stdin)["online_ms"])')" ]; then best=$out; fi
	done
	echo "$best" | python3 -c "
import json,sys; s=json.load(sys.stdin)
print('  %-22s %8d %10d %12.2f %10d %10d' % ('kinglet $mode', s['round_trips'], s['online_ms'], s['online_ms']/$RTT, s['bytes_out'], s['bytes_in']))"
done
if [ -x "$STROPHE" ]; then
	best=999999
	for _ in $(seq "$RUNS"); do
		ms=$("$STROPHE" --jid alice@localhost/s --pass alicepass --host 127.0.0.1 --port 15222 \
			--cafile "$DIR/ca.pem" --no-presence --timeout 30 2>/dev/null | sed -n 's/^online_ms=\([0-9]*\).*/\1/p')
		[ -n "$ms" ] && [ "$ms" -lt "$best" ] && best=$ms
	done
	printf '  %-22s %8s %10d %12.2f %10s %10s\n' "libstrophe 0.12" "-" "$best" "$(python3 -c "print($best / $RTT)")" "-" "-"
fi
