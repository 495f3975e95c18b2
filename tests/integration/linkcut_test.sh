#!/bin/bash
# tests/integration/linkcut_test.sh — the connection manager against a real
# Prosody through tests/fault_proxy.py, which breaks the link on purpose.
#
# Login faults: the first connection is aborted (RST) after N bytes in one
# direction, for N from 0 through the whole login (TLS included) in steps of
# KL_LINKCUT_STRIDE bytes (default 23, plus the first 8 offsets one by one);
# (up to online) every run must end online on a later connection (build/kinglet
# --reconnect), exit 0, and count exactly one lost link. A certificate the
# client does not trust must stop it at once: one connection, exit 4, no
# retry. A server that refuses every connection gives backoff with jitter
# inside the configured bounds.
# Last line: "linkcut: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
KL=${KINGLET:-$root/build/kinglet}
STRIDE=${KL_LINKCUT_STRIDE:-23}

SUITE=linkcut
. "$root/tests/lib/results.sh"

DIR=$(mktemp -d /tmp/kl-linkcut.XXXXXX)
PROXY_PID=""
cleanup() {
	[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
	"$PROSODY" stop "$DIR" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

"$PROSODY" start "$DIR" >/dev/null || { bad "prosody start"; finish; }
ok "prosody started"

# proxy ARGS...: start the proxy on a free port; sets PROXY_PORT, PROXY_CTL
proxy() {
	[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
	rm -f "$DIR/proxy.out"
	python3 "$root/tests/fault_proxy.py" --listen 127.0.0.1:0 --target 127.0.0.1:5222 \
		--control 127.0.0.1:0 "$@" >"$DIR/proxy.out" 2>"$DIR/proxy.err" &
	PROXY_PID=$!
	for _ in $(seq 100); do grep -q '^control' "$DIR/proxy.out" 2>/dev/null && break; sleep 0.05; done
	PROXY_PORT=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$DIR/proxy.out")
	PROXY_CTL=$(sed -n 's/^control .*:\([0-9]*\)$/\1/p' "$DIR/proxy.out")
}
ctl() { python3 -c "
import socket,sys
s=socket.create_connection(('127.0.0.1',$PROXY_CTL)); s.sendall(sys.argv[1].encode()+b'\n')
print(s.makefile().readline().strip())" "$1"; }

login() { # extra kinglet args...
	timeout -k 2 30 "$KL" --host 127.0.0.1 --port "$PROXY_PORT" --cafile "$DIR/ca.pem" \
		--jid alice@localhost/dev --password alicepass --timeout 20 --stats "$@"
}

# The login's size in each direction, through an untouched proxy.
proxy
login >"$DIR/clean.out" 2>"$DIR/clean.err"
c2s=$(json "$DIR/clean.out" bytes_out 2>/dev/null) # on the wire up to online
s2c=$(json "$DIR/clean.out" bytes_in 2>/dev/null)
if grep -q '^online' "$DIR/clean.out" && [ "${c2s:-0}" -gt 500 ] && [ "${s2c:-0}" -gt 500 ]; then
	ok "a clean login through the proxy: $c2s bytes up, $s2c bytes down to online"
else
	bad "clean login: $(cat "$DIR/clean.err") (up ${c2s:-?}, down ${s2c:-?})"
	finish
fi

# cut_run DIR N: one login whose first connection is cut after N bytes
cut_run() {
	local dir=$1 n=$2 out="$DIR/cut.out" err="$DIR/cut.err" rc downs
	proxy "--cut-$dir" "$n"
	login --reconnect --backoff 20 200 >"$out" 2>"$err"
	rc=$?
	downs=$(json "$out" link_downs 2>/dev/null || echo -1)
	if [ $rc = 0 ] && grep -q '^online' "$out" && [ "$downs" = 1 ]; then
		return 0
	fi
	echo "cut $dir at $n: exit $rc, link_downs $downs: $(tail -3 "$err" | tr '\n' ' ')"
	return 1
}

for dir in in out; do
	total=$([ $dir = in ] && echo "$s2c" || echo "$c2s")
	runs=0 fails=0
	for n in $(seq 0 7) $(seq 8 "$STRIDE" $((total - 1))); do
		runs=$((runs + 1))
		cut_run $dir "$n" || fails=$((fails + 1))
	done
	what=$([ $dir = in ] && echo "server->client" || echo "client->server")
	[ $fails = 0 ] && ok "$what cut at $runs offsets of $total bytes: online again every time, one lost link each" ||
		bad "$what: $fails of $runs cuts did not end online"
done

# A certificate failure is final: no retry, no hammering.
proxy
timeout -k 2 30 "$KL" --host 127.0.0.1 --port "$PROXY_PORT" --cafile /etc/ssl/certs/ca-certificates.crt \
	--jid alice@localhost/dev --password alicepass --timeout 10 --reconnect --backoff 20 200 \
	>"$DIR/cert.out" 2>"$DIR/cert.err"
rc=$?
read -r _ conns _ <<<"$(ctl stats)"
[ $rc = 4 ] && [ "$conns" = 1 ] && ok "untrusted certificate: exit 4 after $conns connection, no retry" ||
	bad "untrusted certificate: exit $rc after ${conns:-?} connections: $(cat "$DIR/cert.err")"

# A server that is down: backoff with jitter inside [min, max].
proxy
ctl refuse >/dev/null
timeout -k 2 30 "$KL" --host 127.0.0.1 --port "$PROXY_PORT" --cafile "$DIR/ca.pem" \
	--jid alice@localhost/dev --password alicepass --timeout 3 --reconnect --backoff 100 400 \
	>"$DIR/down.out" 2>"$DIR/down.err"
delays=$(sed -n 's/.*reconnecting in \([0-9]*\) ms$/\1/p' "$DIR/down.err" | tr '\n' ' ')
n=$(wc -w <<<"$delays")
inside=1
for d in $delays; do [ "$d" -ge 100 ] && [ "$d" -le 400 ] || inside=0; done
[ "$n" -ge 4 ] && [ $inside = 1 ] && ok "server down: $n attempts, delays inside [100, 400] ms: $delays" ||
	bad "server down: delays '$delays' ($(tail -2 "$DIR/down.err"))"
finish
