#!/bin/bash
# tests/integration/sm_traffic_test.sh [prosody|ejabberd] — nothing lost
# across link cuts. build/kinglet (--reconnect, stream management on) logs in
# to Prosody 0.12 (mod_smacks; the default) or ejabberd 23.01
# (mod_stream_mgmt) through tests/fault_proxy.py and echoes every message; a peer
# on another stack (tests/integration/sm_peer.py, Python's ssl) sends it
# KL_SM_MESSAGES (default 1000) numbered messages while the proxy aborts the
# device's live connection KL_SM_CUTS (default 50) times at seeded random
# moments (each cut waits until a connection is up: every one hits a link).
# Every message must reach the device and every echo the peer (1000 each
# way), with 0 duplicates, every reconnect a resumption (one bind in all).
# Then a restart: the device leaves without logging out (--no-logout,
# --cache: the session saved in FILE.sm), the peer sends while it is away,
# and the next run resumes the session and receives those messages.
# Last line: "sm_traffic_SERVER: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
SERVER=${1:-prosody}
case "$SERVER" in
prosody) SRV="$root/tests/prosody/prosody.sh" ;;
ejabberd) SRV="$root/tests/ejabberd/ejabberd.sh" ;;
*) echo "usage: $0 [prosody|ejabberd]" >&2; exit 2 ;;
esac
KL=${KINGLET:-$root/build/kinglet}
N=${KL_SM_MESSAGES:-1000}
CUTS=${KL_SM_CUTS:-50}

SUITE=sm_traffic_$SERVER
. "$root/tests/lib/results.sh"

DIR=$(mktemp -d /tmp/kl-sm.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	"$SRV" stop "$DIR" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

KL_PROSODY_USERS="dave:davepass" KL_EJABBERD_USERS="dave:davepass" "$SRV" start "$DIR" >"$DIR/start.out" 2>&1 ||
	{ bad "$SERVER start: $(tail -3 "$DIR/start.out")"; finish; }
ok "$SERVER started"

python3 "$root/tests/fault_proxy.py" --listen 127.0.0.1:0 --target 127.0.0.1:5222 --control 127.0.0.1:0 --log "$DIR/proxy.log" \
	>"$DIR/proxy.out" 2>"$DIR/proxy.err" &
PIDS="$PIDS $!"
for _ in $(seq 100); do grep -q '^control' "$DIR/proxy.out" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$DIR/proxy.out")
CTL=$(sed -n 's/^control .*:\([0-9]*\)$/\1/p' "$DIR/proxy.out")

timeout -k 2 200 "$KL" --host 127.0.0.1 --port "$PORT" --cafile "$DIR/ca.pem" --jid alice@localhost/dev \
	--password alicepass --reconnect --backoff 20 200 --echo --count "$N" --timeout 180 --stats \
	>"$DIR/dev.out" 2>"$DIR/dev.err" &
dev=$!
PIDS="$PIDS $dev"
for _ in $(seq 100); do grep -q '^online' "$DIR/dev.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^online' "$DIR/dev.out" && ok "device online through the proxy" || { bad "device: $(cat "$DIR/dev.err")"; finish; }

# the cutter: CUTS aborts at seeded random moments while the traffic runs
python3 - "$CTL" "$CUTS" >"$DIR/cuts.out" 2>&1 <<'PY' &
import random, socket, sys, time
ctl, cuts = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(20261206)
time.sleep(0.3)
for i in range(cuts):
    s = socket.create_connection(("127.0.0.1", ctl)); s.sendall(b"cutlive\n"); s.makefile().readline(); s.close()
    time.sleep(rnd.uniform(0.08, 0.35))
print("cuts", cuts)
PY
cutter=$!
PIDS="$PIDS $cutter"

timeout -k 2 200 python3 "$here/sm_peer.py" --jid bob@localhost --password bobpass --to alice@localhost/dev \
	--cafile "$DIR/ca.pem" --count "$N" --interval-ms 15 --timeout 170 >"$DIR/peer.out" 2>"$DIR/peer.err"
prc=$?
wait "$cutter"
wait "$dev"
drc=$?
line=$(tail -1 "$DIR/peer.out")
echo "     peer: $line"
read -r _ sent _ echoes _ edupes _ _ _ _ missing <<<"$line"
[ $prc = 0 ] && [ "$echoes" = "$N/$N" ] && ok "peer: $N sent, every echo came back ($echoes), missing: $missing" ||
	bad "peer exit $prc: $line $(tail -3 "$DIR/peer.err")"
got=$(grep -c '^message from bob@localhost/peer: p-' "$DIR/dev.out")
uniq=$(grep '^message from bob@localhost/peer: p-' "$DIR/dev.out" | sort -u | wc -l)
[ "$uniq" = "$N" ] && ok "device: all $N messages arrived" || bad "device received $uniq distinct of $N"
[ "$got" = "$uniq" ] && [ "$edupes" = 0 ] && ok "0 duplicates either way (device $((got - uniq)), peer $edupes)" ||
	bad "duplicates: device $((got - uniq)), peer $edupes"
downs=$(json "$DIR/dev.out" link_downs 2>/dev/null || echo -1)
resumes=$(json "$DIR/dev.out" resumes 2>/dev/null || echo -1)
onlines=$(json "$DIR/dev.out" onlines 2>/dev/null || echo -1)
echo "     device: exit $drc, link_downs $downs, resumes $resumes, onlines $onlines"
[ $drc = 0 ] && [ "$downs" -ge "$CUTS" ] && ok "device: $CUTS cuts of a live link, $downs lost links in all; exit 0 after $N echoes" ||
	bad "device exit $drc, link_downs $downs: $(grep -v 'link down' "$DIR/dev.err" | sort | uniq -c | head -5)"
[ "$onlines" = 1 ] && [ "$resumes" -ge 1 ] && ok "every reconnect resumed the session ($resumes resumptions, one bind)" ||
	bad "onlines $onlines, resumes $resumes"

# --- a silent link (a dead NAT mapping: no RST, no FIN) -------------------------
# keepalive T=2 s, T2=2 s: the engine probes after 2 idle seconds and calls
# the link dead 2 seconds later; the manager reconnects and resumes.
ctl() { python3 -c "
import socket,sys
s=socket.create_connection(('127.0.0.1',$CTL)); s.sendall(sys.argv[1].encode()+b'\n')
print(s.makefile().readline().strip())" "$1"; }
timeout -k 2 60 "$KL" --host 127.0.0.1 --port "$PORT" --cafile "$DIR/ca.pem" --jid carol@localhost/ka \
	--password carolpass --reconnect --backoff 20 200 --keepalive 2 2 --recv 1 --timeout 40 --stats \
	>"$DIR/ka.out" 2>"$DIR/ka.err" &
ka=$!
PIDS="$PIDS $ka"
for _ in $(seq 100); do grep -q '^online' "$DIR/ka.out" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
ctl blackhole >/dev/null
t0=$(date +%s%N)
for _ in $(seq 200); do grep -q 'link down' "$DIR/ka.err" 2>/dev/null && break; sleep 0.05; done
t1=$(date +%s%N)
ctl restore >/dev/null
dt=$(( (t1 - t0) / 1000000 ))
grep -q 'link down (keepalive unanswered' "$DIR/ka.err" && [ $dt -ge 2000 ] && [ $dt -le 6500 ] &&
	ok "silent link found by the keepalive in $dt ms (T 2 s + T2 2 s, checked after 0.5 s idle)" ||
	bad "silent link: ${dt} ms: $(cat "$DIR/ka.err")"
for _ in $(seq 200); do grep -q '^resumed' "$DIR/ka.out" 2>/dev/null && break; sleep 0.05; done
timeout -k 2 30 "$KL" --host 127.0.0.1 --cafile "$DIR/ca.pem" --jid bob@localhost/t --password bobpass \
	--send carol@localhost/ka "after the silence" --timeout 10 >/dev/null 2>"$DIR/b0.err"
wait "$ka"
rc=$?
[ $rc = 0 ] && grep -q '^resumed carol@localhost/ka' "$DIR/ka.out" &&
	grep -qxF "message from bob@localhost/t: after the silence" "$DIR/ka.out" &&
	ok "reconnected, resumed, and the next message arrived" || bad "after the silent link: exit $rc: $(cat "$DIR/ka.err")"

# --- a process restart with the saved session ----------------------------------
kr() { timeout -k 2 40 "$KL" --host 127.0.0.1 --cafile "$DIR/ca.pem" --jid dave@localhost/sleepy \
	--password davepass --cache "$DIR/hints" --stats "$@"; }
kr --recv 1 --no-logout --timeout 20 >"$DIR/r1.out" 2>"$DIR/r1.err" &
r1=$!
for _ in $(seq 100); do grep -q '^online' "$DIR/r1.out" 2>/dev/null && break; sleep 0.1; done
timeout -k 2 30 "$KL" --host 127.0.0.1 --cafile "$DIR/ca.pem" --jid bob@localhost/t --password bobpass \
	--send dave@localhost/sleepy "before sleep" --timeout 10 >/dev/null 2>"$DIR/b1.err"
wait "$r1"
rc=$?
[ $rc = 0 ] && [ -f "$DIR/hints.sm" ] && [ "$(stat -c %a "$DIR/hints.sm")" = 600 ] &&
	ok "device went to sleep without logging out; its session saved (hints.sm, 0600)" ||
	bad "sleep: exit $rc, $(ls -l "$DIR"/hints* 2>&1 | tr '\n' ' ') $(cat "$DIR/r1.err")"
for i in 1 2 3; do
	timeout -k 2 30 "$KL" --host 127.0.0.1 --cafile "$DIR/ca.pem" --jid bob@localhost/t --password bobpass \
		--send dave@localhost/sleepy "while away $i" --timeout 10 >/dev/null 2>>"$DIR/b2.err"
done
kr --recv 3 --timeout 20 >"$DIR/r2.out" 2>"$DIR/r2.err"
rc=$?
resumes=$(json "$DIR/r2.out" resumes 2>/dev/null || echo -1)
n=0
for i in 1 2 3; do grep -qxF "message from bob@localhost/t: while away $i" "$DIR/r2.out" && n=$((n + 1)); done
[ $rc = 0 ] && [ "$resumes" = 1 ] && grep -q "^resumed dave@localhost/sleepy" "$DIR/r2.out" &&
	ok "the restarted process resumed the saved session" || bad "restart: exit $rc, resumes $resumes: $(cat "$DIR/r2.err")"
[ $n = 3 ] && ok "the 3 messages sent while it was away arrived" || bad "$n of 3 messages arrived: $(cat "$DIR/r2.out")"
dup=$(grep -c 'before sleep' "$DIR/r2.out")
[ "$dup" = 0 ] && ok "the message handled before the sleep was not delivered again" || bad "'before sleep' delivered again"
finish
