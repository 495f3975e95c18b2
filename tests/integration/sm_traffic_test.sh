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
#
# prosody13 (tests/prosody/prosody13.sh) and ejabberd24
# (tests/ejabberd/ejabberd24.sh): the same over SASL2 (XEP-0388). The device
# connects through the proxy to the server's direct-TLS port with --cache,
# filled by two warm-up logins (features, then a FAST token), so its first
# login and every reconnect is one <authenticate/> with the FAST token
# (XEP-0484) and, on reconnects, <resume/> inside it (inline resumption);
# each "resumed" line must say 3 round trips (TCP, TLS, authenticate), the
# last connection's stats fast=1 and inline_resumed=1. Bind2 makes the
# resource the server's (tag + suffix): the peer writes to the full JID of
# the "online" line. Defaults there: KL_SM_MESSAGES 200, KL_SM_CUTS 10.
# Last line: "sm_traffic_SERVER: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
SERVER=${1:-prosody}
# C2S: the STARTTLS port (the peer, the other clients); DEV_PORT and DEV_TLS:
# where the device connects through the proxy; SASL2=1: with FAST hints
SASL2=0 C2S=5222 DEV_PORT=5222 DEV_TLS=starttls
case "$SERVER" in
prosody) SRV="$root/tests/prosody/prosody.sh" ;;
ejabberd) SRV="$root/tests/ejabberd/ejabberd.sh" ;;
prosody13) SRV="$root/tests/prosody/prosody13.sh" SASL2=1 C2S=5232 DEV_PORT=5233 DEV_TLS=direct ;;
ejabberd24) SRV="$root/tests/ejabberd/ejabberd24.sh" SASL2=1 C2S=5242 DEV_PORT=5243 DEV_TLS=direct ;;
*) echo "usage: $0 [prosody|ejabberd|prosody13|ejabberd24]" >&2; exit 2 ;;
esac
KL=${KINGLET:-$root/build/kinglet}
if [ $SASL2 = 1 ]; then
	N=${KL_SM_MESSAGES:-200}
	CUTS=${KL_SM_CUTS:-10}
else
	N=${KL_SM_MESSAGES:-1000}
	CUTS=${KL_SM_CUTS:-50}
fi

SUITE=sm_traffic_$SERVER
. "$root/tests/lib/results.sh"

DIR=$(mktemp -d /tmp/kl-sm.XXXXXX)
chmod 711 "$DIR" # prosody13.sh runs Prosody as the prosody user: it must reach DIR
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

python3 "$root/tests/fault_proxy.py" --listen 127.0.0.1:0 --target 127.0.0.1:$DEV_PORT --control 127.0.0.1:0 --log "$DIR/proxy.log" \
	>"$DIR/proxy.out" 2>"$DIR/proxy.err" &
PIDS="$PIDS $!"
for _ in $(seq 100); do grep -q '^control' "$DIR/proxy.out" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$DIR/proxy.out")
CTL=$(sed -n 's/^control .*:\([0-9]*\)$/\1/p' "$DIR/proxy.out")

DEV_ARGS=()
if [ $SASL2 = 1 ]; then
	# the hints: run 1 learns the features (RFC 6120 login), run 2 logs in
	# with SASL2 and gets a FAST token; straight to the server
	DEV_ARGS=(--tls direct --cache "$DIR/dev.hints")
	for w in 1 2; do
		timeout -k 2 30 "$KL" --host 127.0.0.1 --port "$DEV_PORT" --cafile "$DIR/ca.pem" --jid alice@localhost/dev \
			--password alicepass "${DEV_ARGS[@]}" --stats >"$DIR/warm$w.out" 2>"$DIR/warm$w.err" ||
			bad "warm-up login $w: $(cat "$DIR/warm$w.err")"
	done
	[ "$(json "$DIR/warm2.out" fast_token_new 2>/dev/null)" = 1 ] &&
		ok "warm-up: the hints hold the server's features and a FAST token" ||
		bad "warm-up: no FAST token: $(tail -1 "$DIR/warm2.out")"
fi
timeout -k 2 200 "$KL" --host 127.0.0.1 --port "$PORT" --cafile "$DIR/ca.pem" --jid alice@localhost/dev \
	--password alicepass "${DEV_ARGS[@]}" --reconnect --backoff 20 200 --echo --count "$N" --timeout 180 --stats \
	>"$DIR/dev.out" 2>"$DIR/dev.err" &
dev=$!
PIDS="$PIDS $dev"
for _ in $(seq 100); do grep -q '^online' "$DIR/dev.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^online' "$DIR/dev.out" && ok "device online through the proxy" || { bad "device: $(cat "$DIR/dev.err")"; finish; }
DEV_JID=$(sed -n '1s/^online //p' "$DIR/dev.out") # Bind2: the server's resource

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

timeout -k 2 200 python3 "$here/sm_peer.py" --jid bob@localhost --password bobpass --to "$DEV_JID" \
	--port "$C2S" --cafile "$DIR/ca.pem" --count "$N" --interval-ms 15 --timeout 170 >"$DIR/peer.out" 2>"$DIR/peer.err"
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
if [ $SASL2 = 1 ]; then
	# "resumed JID (R round trips, O bytes out, I bytes in)", one per resumption
	nres=$(grep -c '^resumed ' "$DIR/dev.out")
	rts=$(sed -n 's/^resumed [^ ]* (\([0-9]*\) round trips.*/\1/p' "$DIR/dev.out" | sort -n | uniq -c | tr -s ' ' | tr '\n' ';')
	not3=$(sed -n 's/^resumed [^ ]* (\([0-9]*\) round trips.*/\1/p' "$DIR/dev.out" | grep -vcx 3)
	echo "     resumptions: $nres, round trips (count value): $rts"
	[ "$nres" = "$resumes" ] && [ "$not3" = 0 ] &&
		ok "every resumption inline in 3 round trips ($nres of them)" ||
		bad "resumptions: $nres lines for $resumes resumes, $not3 not in 3 round trips ($rts)"
	f=$(json "$DIR/dev.out" fast 2>/dev/null) ir=$(json "$DIR/dev.out" inline_resumed 2>/dev/null)
	s2=$(json "$DIR/dev.out" sasl2 2>/dev/null) mech=$(json "$DIR/dev.out" sasl 2>/dev/null)
	[ "$s2" = 1 ] && [ "$f" = 1 ] && [ "$ir" = 1 ] && [ "$mech" = HT-SHA-256-NONE ] &&
		ok "the last reconnect: SASL2 with the FAST token ($mech) and <resume/> inside <authenticate/>" ||
		bad "last connection: sasl2 $s2 fast $f inline_resumed $ir sasl $mech"
fi

# --- a silent link (a dead NAT mapping: no RST, no FIN) -------------------------
# keepalive T=2 s, T2=2 s: the engine probes after 2 idle seconds and calls
# the link dead 2 seconds later; the manager reconnects and resumes.
# SASL2 servers (direct TLS): the first reconnect waits 400-800 ms, so that
# it comes after the restore; one that came before would be blackholed too
# and stall in its TLS handshake for the CLI's 20 s per-step timeout.
KA_BACKOFF="20 200"
[ $SASL2 = 1 ] && KA_BACKOFF="400 800"
ctl() { python3 -c "
import socket,sys
s=socket.create_connection(('127.0.0.1',$CTL)); s.sendall(sys.argv[1].encode()+b'\n')
print(s.makefile().readline().strip())" "$1"; }
timeout -k 2 60 "$KL" --host 127.0.0.1 --port "$PORT" --cafile "$DIR/ca.pem" --jid carol@localhost/ka \
	--password carolpass --tls $DEV_TLS --reconnect --backoff $KA_BACKOFF --keepalive 2 2 --recv 1 --timeout 40 --stats \
	>"$DIR/ka.out" 2>"$DIR/ka.err" &
ka=$!
PIDS="$PIDS $ka"
for _ in $(seq 100); do grep -q '^online' "$DIR/ka.out" 2>/dev/null && break; sleep 0.1; done
KA_JID=$(sed -n '1s/^online //p' "$DIR/ka.out")
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
timeout -k 2 30 "$KL" --host 127.0.0.1 --port "$C2S" --cafile "$DIR/ca.pem" --jid bob@localhost/t --password bobpass \
	--send "$KA_JID" "after the silence" --timeout 10 >/dev/null 2>"$DIR/b0.err"
wait "$ka"
rc=$?
[ $rc = 0 ] && grep -q "^resumed $KA_JID" "$DIR/ka.out" &&
	grep -qxF "message from bob@localhost/t: after the silence" "$DIR/ka.out" &&
	ok "reconnected, resumed, and the next message arrived" || bad "after the silent link: exit $rc: $(cat "$DIR/ka.err")"

# --- a process restart with the saved session ----------------------------------
kr() { timeout -k 2 40 "$KL" --host 127.0.0.1 --port "$C2S" --cafile "$DIR/ca.pem" --jid dave@localhost/sleepy \
	--password davepass --cache "$DIR/hints" --stats "$@"; }
kr --recv 1 --no-logout --timeout 20 >"$DIR/r1.out" 2>"$DIR/r1.err" &
r1=$!
for _ in $(seq 100); do grep -q '^online' "$DIR/r1.out" 2>/dev/null && break; sleep 0.1; done
SLEEPY=$(sed -n '1s/^online //p' "$DIR/r1.out")
timeout -k 2 30 "$KL" --host 127.0.0.1 --port "$C2S" --cafile "$DIR/ca.pem" --jid bob@localhost/t --password bobpass \
	--send "$SLEEPY" "before sleep" --timeout 10 >/dev/null 2>"$DIR/b1.err"
wait "$r1"
rc=$?
[ $rc = 0 ] && [ -f "$DIR/hints.sm" ] && [ "$(stat -c %a "$DIR/hints.sm")" = 600 ] &&
	ok "device went to sleep without logging out; its session saved (hints.sm, 0600)" ||
	bad "sleep: exit $rc, $(ls -l "$DIR"/hints* 2>&1 | tr '\n' ' ') $(cat "$DIR/r1.err")"
for i in 1 2 3; do
	timeout -k 2 30 "$KL" --host 127.0.0.1 --port "$C2S" --cafile "$DIR/ca.pem" --jid bob@localhost/t --password bobpass \
		--send "$SLEEPY" "while away $i" --timeout 10 >/dev/null 2>>"$DIR/b2.err"
done
kr --recv 3 --timeout 20 >"$DIR/r2.out" 2>"$DIR/r2.err"
rc=$?
resumes=$(json "$DIR/r2.out" resumes 2>/dev/null || echo -1)
n=0
for i in 1 2 3; do grep -qxF "message from bob@localhost/t: while away $i" "$DIR/r2.out" && n=$((n + 1)); done
[ $rc = 0 ] && [ "$resumes" = 1 ] && grep -q "^resumed $SLEEPY" "$DIR/r2.out" &&
	ok "the restarted process resumed the saved session" || bad "restart: exit $rc, resumes $resumes: $(cat "$DIR/r2.err")"
[ $n = 3 ] && ok "the 3 messages sent while it was away arrived" || bad "$n of 3 messages arrived: $(cat "$DIR/r2.out")"
dup=$(grep -c 'before sleep' "$DIR/r2.out")
[ "$dup" = 0 ] && ok "the message handled before the sleep was not delivered again" || bad "'before sleep' delivered again"
finish
