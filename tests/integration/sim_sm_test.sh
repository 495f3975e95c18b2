#!/bin/bash
# tests/integration/sim_sm_test.sh — stream management on the simulated
# device: nothing lost while its radio link comes and goes.
#
# build/kinglet-sim (kinglet over lwIP + mbedTLS on a libslirp link; XEP-0198
# with its 8 KB static queue, --reconnect, --keepalive 1 1) logs in to
# Prosody 0.12 (mod_smacks) and echoes every message; a peer on another
# stack (tests/integration/sm_peer.py, Python's ssl) sends it KL_SIM_SM_MESSAGES
# (default 1000) numbered messages while the simulated link goes down and up
# KL_SIM_SM_FLAPS (default 12) times on a seeded schedule (--link-flaps,
# seed KL_SIM_SM_SEED): a down link drops every frame both ways without a
# word (no RST, no FIN), so only the engine's keepalive (or TCP's
# retransmission, for a short one) notices. Asserted:
#   - every message reached the device and every echo the peer: 0 lost;
#   - duplicates counted both ways, and 0 (every reconnect resumed the
#     session: one bind in all, nothing handed back as unacknowledged);
#   - the flaps all happened, the keepalive found the dead link after each
#     long one within T + T2 (+ 0.5 s: the engine's ack request 200 ms after
#     the last stanza, and the loop's timers), and never on a live link;
#   - no lwIP pool/heap or mbedTLS arena ran out, no echo was dropped.
# Then an idle device and one silent 4.5 s outage with --keepalive 2 1: the
# dead link is found within T + T2 = 3 s (not before T2), the session is
# resumed when the link is back and the message sent meanwhile arrives.
# Last line: "sim_sm: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
SIM=${KINGLET_SIM:-$root/build/kinglet-sim}
N=${KL_SIM_SM_MESSAGES:-1000}
FLAPS=${KL_SIM_SM_FLAPS:-12}
SEED=${KL_SIM_SM_SEED:-20260607}
INTERVAL=${KL_SIM_SM_INTERVAL_MS:-40}
T=1 T2=1           # --keepalive of the traffic run (seconds)
DELAY=20           # one-way link delay (ms): frames already on the wire when the link goes
                   # down still arrive, so some echoes go out into the dead link and are
                   # sent again after the resumption
SLACK_MS=500

SUITE=sim_sm
. "$root/tests/lib/results.sh"

DIR=$(mktemp -d /tmp/kl-simsm.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	"$PROSODY" stop "$DIR" >/dev/null 2>&1
	[ -n "${KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT
wait_online() { for _ in $(seq 150); do grep -q '^online' "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
jq() { tail -n 1 "$1" | python3 -c "import json,sys; j=json.load(sys.stdin); print($2)" 2>/dev/null || echo "?"; }

"$PROSODY" start "$DIR" >/dev/null || { bad "prosody start"; finish; }
ok "prosody started (mod_smacks)"

# --- 1000 messages through link flaps ------------------------------------------
t0=$(date +%s)
timeout -k 2 150 "$SIM" --cafile "$DIR/ca.pem" --jid alice@localhost/dev --password alicepass \
	--reconnect --backoff 20 200 --keepalive $T $T2 --echo --count "$N" --timeout 140 --stats --delay "$DELAY" \
	--link-flaps "$FLAPS" --flap-seed "$SEED" --flap-down 400 3000 --flap-up 500 1200 >"$DIR/dev.out" 2>"$DIR/dev.err" &
dev=$!
PIDS="$PIDS $dev"
wait_online "$DIR/dev.out" && ok "simulated device online (stream management on)" ||
	{ bad "device not online: $(cat "$DIR/dev.err")"; finish; }

timeout -k 2 150 python3 "$here/sm_peer.py" --jid bob@localhost --password bobpass --to alice@localhost/dev \
	--cafile "$DIR/ca.pem" --count "$N" --interval-ms "$INTERVAL" --timeout 130 >"$DIR/peer.out" 2>"$DIR/peer.err"
prc=$?
wait "$dev"
drc=$?
secs=$(($(date +%s) - t0))
line=$(tail -1 "$DIR/peer.out")
echo "     peer: $line"
read -r _ sent _ echoes _ edupes _ _ _ _ missing <<<"$line"
[ $prc = 0 ] && [ "${echoes:-}" = "$N/$N" ] && ok "peer: $N sent, every echo came back ($echoes), missing: $missing" ||
	bad "peer exit $prc: $line $(tail -3 "$DIR/peer.err")"
got=$(grep -c '^message from bob@localhost/peer: p-' "$DIR/dev.out")
uniq=$(grep '^message from bob@localhost/peer: p-' "$DIR/dev.out" | sort -u | wc -l)
[ "$uniq" = "$N" ] && ok "device: all $N messages arrived (0 lost)" || bad "device received $uniq distinct of $N"

v=$(jq "$DIR/dev.out" '"%d %d %d %d %d %d %d %d %d %d %d %d %d %d %d" % (j["flaps"], j["link_downs"], j["resumes"], j["onlines"], j["dead_peers"], j["dead_peers_link_up"], j["detect_ms_min"], j["detect_ms_max"], j["kicks"], j["sm_resent"], j["unacked_resent"], j["echo_waits"], j["echo_lost"], j["keepalives"], j["sm"])')
read -r flaps downs resumes onlines dead dead_up dmin dmax kicks resent unacked waits elost kas smon <<<"$v"
echo "     device: exit $drc after ${secs}s; flaps $flaps, link_downs $downs, resumes $resumes, onlines $onlines," \
	"dead links found $dead (detection ${dmin}..${dmax} ms), on a live link $dead_up, kicks $kicks," \
	"resent after resumption $resent, handed back $unacked, echoes that waited $waits, keepalive probes $kas"
[ "${smon:-0}" = 1 ] || bad "stream management not on in the simulator"
[ "${uniq:-0}" = "$N" ] && [ "$got" = "$uniq" ] && [ "${edupes:-x}" = 0 ] &&
	ok "0 duplicates either way (device $((got - uniq)), peer $edupes)" ||
	bad "duplicates: device $((got - uniq)), peer ${edupes:-?}"
[ $drc = 0 ] && ok "device exit 0 after $N echoes" || bad "device exit $drc: $(tail -3 "$DIR/dev.err")"
[ "$flaps" = "$FLAPS" ] && ok "the link went down and up $FLAPS times (seed $SEED) while the traffic ran" ||
	bad "flaps done: $flaps of $FLAPS (the traffic ended first?)"
[ "${downs:-0}" -ge 1 ] && [ "$onlines" = 1 ] && [ "${resumes:-0}" -ge 1 ] &&
	ok "every reconnect resumed the session: $resumes resumptions, one bind ($downs links lost: $dead found dead, $((downs - dead)) attempts restarted when the link came back)" ||
	bad "onlines $onlines, resumes $resumes, link downs $downs"
[ "$unacked" = 0 ] && ok "nothing handed back as unacknowledged (no resumption failed)" || bad "$unacked stanzas handed back"
lim=$(( (T + T2) * 1000 + SLACK_MS ))
[ "${dead:-0}" -ge 1 ] && [ "$dmax" -ge 0 ] && [ "$dmax" -le $lim ] &&
	ok "silent link: the keepalive found it dead $dead times, each within ${dmin}..${dmax} ms of going down (T + T2 = $(( (T + T2) * 1000 )) ms, limit $lim)" ||
	bad "dead-link detection: $dead times, ${dmin}..${dmax} ms (limit $lim)"
[ "$dead_up" = 0 ] && ok "no dead-peer verdict on a live link" || bad "$dead_up dead-peer verdicts with no flap to blame"
[ "$elost" = 0 ] && ok "no echo dropped while waiting for room ($waits waited)" || bad "$elost echoes dropped"
r=$(jq "$DIR/dev.out" '"%d %d %d" % (j["arena_failures"], j["lwip_exhausted"], j["link_drops"])')
[ "$r" = "0 0 0" ] && ok "no arena failure, no lwIP pool/heap error, no frame dropped for want of room" ||
	bad "arena failures / lwIP exhausted / link drops = $r"
grep -E 'dead link detected|flap [0-9]+/' "$DIR/dev.err" | sed 's/^/     | /' | head -60

# --- an idle device, one silent outage -----------------------------------------
# (another account: nothing of the run above can reach it)
timeout -k 2 60 "$SIM" --cafile "$DIR/ca.pem" --jid carol@localhost/idle --password carolpass \
	--reconnect --backoff 20 200 --keepalive 2 1 --recv 1 --timeout 40 --stats \
	--link-flaps 1 --flap-up 1000 1000 --flap-down 4500 4500 >"$DIR/idle.out" 2>"$DIR/idle.err" &
idle=$!
PIDS="$PIDS $idle"
wait_online "$DIR/idle.out" || bad "idle device not online: $(cat "$DIR/idle.err")"
for _ in $(seq 100); do grep -q 'flap 1/1: down' "$DIR/idle.err" && break; sleep 0.1; done
# sent while the link is down (the device does not echo: the peer's wait is short)
timeout -k 2 20 python3 "$here/sm_peer.py" --jid bob@localhost --password bobpass --to carol@localhost/idle \
	--cafile "$DIR/ca.pem" --count 1 --timeout 1 >/dev/null 2>"$DIR/idlepeer.err"
wait "$idle"
irc=$?
v=$(jq "$DIR/idle.out" '"%d %d %d %d %d %d" % (j["dead_peers"], j["detect_ms_min"], j["detect_ms_max"], j["resumes"], j["onlines"], j["kicks"])')
read -r dead dmin dmax resumes onlines kicks <<<"$v"
echo "     idle device: exit $irc, dead links $dead after ${dmin} ms, resumes $resumes, onlines $onlines, kicks $kicks"
[ "$dead" = 1 ] && [ "$dmin" -ge 1000 ] && [ "$dmax" -le $((3000 + SLACK_MS)) ] &&
	ok "idle device: the silent link found dead ${dmin} ms after it went down (T 2 s + T2 1 s; limit $((3000 + SLACK_MS)))" ||
	bad "idle device: dead links $dead, detection ${dmin}..${dmax} ms"
[ $irc = 0 ] && [ "$resumes" = 1 ] && [ "$onlines" = 1 ] &&
	grep -q '^message from bob@localhost/peer: p-0' "$DIR/idle.out" &&
	ok "resumed when the link came back; the message sent meanwhile arrived" ||
	bad "idle device: exit $irc, resumes $resumes, onlines $onlines: $(tail -3 "$DIR/idle.err")"
finish
