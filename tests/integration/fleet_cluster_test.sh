#!/bin/bash
# tests/integration/fleet_cluster_test.sh — build/kinglet-fleet (N devices,
# default 100, one process) against the two-node ejabberd 23.01 cluster of
# tests/ejabberd/cluster.sh (node A 127.0.0.2, node B 127.0.0.3), inside a
# loopback-only network namespace. Every device gets both nodes as
# endpoints, A first (--host 127.0.0.2,127.0.0.3).
#   0. login storm: N devices start at once, spread over both nodes
#      (--spread: device K starts at node K mod 2, as equal SRV records
#      spread real devices). Asserted: all N online, every device logged
#      out, the nodes' CPU measured. Reported: p50/p99/max time to online,
#      logins/s, attempts (beyond N: attempts that timed out and were made
#      again), the fleet's CPU per login beside the two nodes'
#      (--server-pid), RAM per device. Then Tsung (tests/bench/
#      tsung_login.sh, the same login: STARTTLS, PLAIN, bind, presence) runs
#      the same storm against the same cluster: users started, login
#      transactions, errors, logins/s and RAM per simulated client beside
#      the fleet's (a baseline: reported, never asserted). Then the fleet's
#      storm again with SCRAM only (--no-plain): all online asserted, the
#      CPU per login of fleet and nodes reported beside PLAIN's.
#   1. failover: the devices online (on A, but at large N those that timed
#      out on A in the storm are on B), each sending a reading ("dev=K
#      seq=N") to itself every READING s; node A freezes (SIGSTOP, a reading
#      period and a half: what is sent then is never acknowledged), SIGUSR1 marks t0,
#      node A is SIGKILLed. Asserted: every device is back online (on B) within the
#      backoff window (+ the time a login storm of N takes on one node), and
#      end to end no reading lost (readings_lost == 0: every seq a device
#      sent came back to it; the stanzas a failed resumption handed back
#      (KL_EV_UNACKED) are sent again by the fleet). Reported: time until
#      back from the kill (p50/p99/max), resumed vs new sessions, handed
#      back / resent, duplicates.
#   2. comeback without a thundering herd: the devices online on B (A stays
#      dead), B is killed too (the whole service is down), every device is
#      backing off; B is started again and SIGUSR1 marks t0 when B's c2s
#      port listens. With jitter (default) the reconnects spread over the
#      backoff window; with --no-jitter they come as a herd. Asserted: all
#      devices online again in both runs and the jittered peak of
#      connection attempts per second (after t0) <= 60 % of the unjittered
#      one. Reported: the peaks, N / window, the timelines.
# KL_FLEET_N (default 100) sets N; the waits and windows grow with it (a
# login storm of N on one node). KL_FLEET_BENCH_OUT=FILE (make bench-fleet,
# N = 5000): every run's JSON summary is appended to FILE as one line
# {"scenario":…, "n":…, …} and the time-bound checks (back within the
# backoff window + the storm allowance, the jittered peak vs the herd's)
# are reported, not asserted; what must hold at any N (all online, 0
# readings lost, every hand-back resent) is still asserted.
# Last line: "fleet-cluster: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
CLUSTER="$root/tests/ejabberd/cluster.sh"
FLEET=${KINGLET_FLEET:-$root/build/kinglet-fleet}
N=${KL_FLEET_N:-100}
BENCH_OUT=${KL_FLEET_BENCH_OUT:-}
# ejabberd's default accept backlog (5) drops the SYNs of a storm (their
# retransmission after 1, 3, 7 s ... would be measured, not kinglet)
export EJ_BACKLOG=$(( N < 1024 ? 1024 : N ))
A=127.0.0.2 B=127.0.0.3
# the allowance for a login storm of N: measured about 1 s at N = 100 and
# 83 s at N = 5000 (ejabberd 23.01, PLAIN against SCRAM-stored passwords,
# 2 cores, all at once); the fleet's own run time follows
STORM_S=$(( 10 + N / 50 ))
RUN_S=$(( 60 + 3 * STORM_S ))
# the nodes hold N connections each (ejabberd_server.sh's ej_exec)
export EJ_NOFILE=$(( 2 * N + 4096 ))
# failover: first retry after a link loss is backoff_min (no jitter on the
# first round), then A is refused and B tried at once
FO_MIN=500 FO_MAX=3000
# a reading every READING s per device: 1 at N = 100, fewer per device at
# large N (5000 devices at 1/s would be 10,000 stanzas/s through 2 cores)
READING=$(( N <= 500 ? 1 : 5 ))
# A stays frozen a whole reading period and a half: every device on A has a
# reading in flight, whenever its readings fall (at N = 5000 the storm's
# waves bring devices online, and so their readings, in bursts)
FREEZE_S=$READING.5
# comeback: the jitter window [CB_MIN, CB_MAX] once the backoff is fully open
CB_MIN=500 CB_MAX=4000
# shellcheck disable=SC2034 # read by results.sh
SUITE=fleet-cluster
# shellcheck source=../lib/results.sh
. "$root/tests/lib/results.sh"

DIR=$(mktemp -d /tmp/kl-fleet-cluster.XXXXXX)
FPID=""
cleanup() {
	[ -n "$FPID" ] && kill "$FPID" 2>/dev/null
	"$CLUSTER" stop "$DIR" >/dev/null 2>&1
	if [ "${fail:-0}" != 0 ] && [ -n "${KL_KEEP_FAILED:-}" ]; then
		echo "fleet_cluster_test: kept $DIR (KL_KEEP_FAILED)" >&2
	else
		rm -rf "$DIR"
	fi
}
trap cleanup EXIT
now_ms() { date +%s%3N; }
T_START=$(now_ms)

[ -x "$FLEET" ] || { bad "no $FLEET (make fleet)"; finish; }
# Tsung's VM holds N connections too: the soft limit up to the hard one
ulimit -S -n "$(ulimit -H -n)" 2>/dev/null
# the fleet raises its own soft limit to 2 N + 64 (at most the hard limit)
[ "$(ulimit -H -n)" = unlimited ] || [ "$(ulimit -H -n)" -ge $(( 2 * N + 64 )) ] ||
	echo "fleet-cluster: warning: the hard open-files limit $(ulimit -H -n) is below 2 N + 64" >&2
t0=$(now_ms)
if "$CLUSTER" start "$DIR" --users "$N" >"$DIR/start.out" 2>&1; then
	ok "cluster started in $(( $(now_ms) - t0 )) ms"
else
	bad "cluster start:"; cat "$DIR/start.out"; finish
fi

# fleet NAME ARGS... in the background: DIR/NAME.json (stdout), DIR/NAME.err; FPID
fleet_bg() {
	local name=$1
	shift
	timeout -k 2 "$RUN_S" "$FLEET" --count "$N" --jid 'dev%d@localhost' --password devpass --host "$A,$B" \
		--cafile "$DIR/ca.pem" --stats "$@" >"$DIR/$name.json" 2>"$DIR/$name.err" &
	FPID=$!
}
# --server-pid A,B: the running nodes' beam.smp (their CPU beside the
# fleet's). Only for runs in which no node starts again: a restarted node
# is another process, which the fleet does not follow (a killed one keeps
# its last sample), so the comeback runs report no server CPU.
node_pids() {
	local n p l=""
	for n in a b; do
		p=$(cat "$DIR/$n/run/ejabberd.pid" 2>/dev/null)
		case $p in ''|*[!0-9]*) continue ;; esac
		[ -d "/proc/$p" ] && l="$l${l:+,}$p"
	done
	echo "$l"
}
# record NAME: the run's JSON summary, one line, into BENCH_OUT
record() {
	[ -n "$BENCH_OUT" ] || return 0
	json_tag "$DIR/$1.json" "$1" "$N" >>"$BENCH_OUT"
}
# timed NAME EXPR TEXT: a time-bound check: asserted at N = 100, reported in bench mode
timed() {
	if [ -z "$BENCH_OUT" ]; then
		check "$@"
	elif json_true "$DIR/$1.json" "$2"; then
		echo "bench: $1: $3: yes"
	else
		echo "bench: $1: $3: NO"
	fi
}
# SIGUSR1 (the mark, "t0") to the fleet itself, not to timeout(1)
mark() { kill -USR1 "$(pgrep -P "$FPID" | head -n 1)"; }
fleet_wait() { # -> the exit status
	local rc=0
	wait "$FPID" || rc=$?
	FPID=""
	return $rc
}
# the last progress line: "online X  connecting Y  backing off Z ..."
progress() { grep '^online ' "$DIR/$1.err" 2>/dev/null | tail -n 1; }
wait_progress() { # NAME REGEX SECONDS
	for _ in $(seq $(($3 * 10))); do
		progress "$1" | grep -qE "$2" && return 0
		kill -0 "$FPID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
val() { json "$DIR/$1.json" "$2" 2>/dev/null; }
# check NAME EXPR TEXT: EXPR is Python over the stats object s
check() {
	if json_true "$DIR/$1.json" "$2"; then
		ok "$1: $3"
	else
		bad "$1: $3 ($(tail -n 1 "$DIR/$1.json" | head -c 1500))"
	fi
}
listening() { ss -Hltn "sport = :5222" 2>/dev/null | grep -q "$1:5222"; }

# --- 0. login storm, then Tsung on the same storm ---------------------------------
fleet_bg storm --no-presence --spread --duration "$STORM_S" --after-online 1 --server-pid "$(node_pids)"
if fleet_wait; then ok "storm: fleet exit 0"; else bad "storm: fleet exit $?: $(grep -v '^online ' "$DIR/storm.err" | tail -n 5)"; fi
check storm "s['online'] == $N and s['ever_online'] == $N and s['failed'] == 0 and s['logged_out'] == $N" \
	"all $N devices online at once (started together, spread over A and B), every one logged out"
check storm "s['server_pids'] == 2 and s['server_storm_cpu_ms_per_login'] > 0" "the nodes' CPU was measured"
record storm
echo "storm: $N devices: p50 $(val storm p50_online_ms) ms, p90 $(val storm p90_online_ms) ms, p99 $(val storm p99_online_ms) ms," \
	"max $(val storm max_online_ms) ms; $(val storm logins_per_s) logins/s; attempts $(val storm attempts);" \
	"CPU per login: fleet $(val storm storm_cpu_ms_per_login) ms, the two nodes $(val storm server_storm_cpu_ms_per_login) ms;" \
	"RAM per device $(val storm ram_per_device) B; round trips $(val storm round_trips), bytes out $(val storm bytes_out) in $(val storm bytes_in)"
if command -v tsung >/dev/null; then
	# the same accounts, the same cluster; the fleet's sessions are closed
	timeout -k 5 $(( RUN_S + 60 )) "$root/tests/bench/tsung_login.sh" "$N" "$A,$B" 5222 localhost devpass "$DIR/tsung" \
		>"$DIR/tsung.json" 2>"$DIR/tsung.err"
	if json_true "$DIR/tsung.json" True; then
		echo "tsung: $(tail -n 1 "$DIR/tsung.json")"
		echo "storm beside tsung: kinglet-fleet $(val storm logins_per_s) logins/s, $(val storm ram_per_device) B per device;" \
			"tsung $(val tsung logins_per_s) logins/s ($(val tsung started) of $N started, $(val tsung logins) login transactions," \
			"$(val tsung errors) errors; mean $(val tsung mean_online_ms) ms," \
			"max $(val tsung max_online_ms) ms), $(val tsung ram_per_client) B per simulated client"
		if [ -n "$BENCH_OUT" ]; then
			json_tag "$DIR/tsung.json" storm-tsung "$N" >>"$BENCH_OUT"
		fi
	else
		echo "tsung: no result (reported only): $(tail -n 3 "$DIR/tsung.err" "$DIR/tsung.json" 2>/dev/null | tr '\n' ' ')"
	fi
else
	echo "tsung: not installed (make deps): no baseline"
fi
# the same storm with SCRAM only (--no-plain): the device runs the PBKDF2,
# the server compares. Reported, not asserted beyond every device online.
fleet_bg storm-scram --no-presence --spread --no-plain --duration "$STORM_S" --after-online 1 --server-pid "$(node_pids)"
if fleet_wait; then ok "storm-scram: fleet exit 0"; else bad "storm-scram: fleet exit $?: $(grep -v '^online ' "$DIR/storm-scram.err" | tail -n 5)"; fi
check storm-scram "s['online'] == $N and s['failed'] == 0" "all $N devices online with SCRAM-SHA-256"
record storm-scram
echo "storm-scram: p50 $(val storm-scram p50_online_ms) ms, p99 $(val storm-scram p99_online_ms) ms;" \
	"$(val storm-scram logins_per_s) logins/s; attempts $(val storm-scram attempts); CPU per login: fleet" \
	"$(val storm-scram storm_cpu_ms_per_login) ms, the two nodes $(val storm-scram server_storm_cpu_ms_per_login) ms" \
	"(PLAIN: fleet $(val storm storm_cpu_ms_per_login) ms, nodes $(val storm server_storm_cpu_ms_per_login) ms)"

# --- 1. failover: kill A ------------------------------------------------------------
fleet_bg failover --reading "$READING" --duration $(( 40 + 2 * STORM_S )) --after-back 3 --backoff $FO_MIN $FO_MAX \
	--server-pid "$(node_pids)"
if wait_progress failover "^online $N " "$STORM_S"; then
	ok "failover: $N devices online ($(progress failover))"
else
	bad "failover: not all online: $(progress failover) / $(grep -v '^online ' "$DIR/failover.err" | head -n 5)"
fi
on_a=$(ss -Htn state established "dst $A:5222" 2>/dev/null | wc -l)
on_b=$(ss -Htn state established "dst $B:5222" 2>/dev/null | wc -l)
# every device tries A first; in a storm larger than A logs in within the
# 20 s step timeouts, the devices that timed out went on to B
if [ "$on_a" = "$N" ]; then
	ok "failover: all $N c2s connections on A"
elif [ -n "$BENCH_OUT" ]; then
	echo "bench: failover: c2s on A $on_a, on B $on_b (the rest timed out on A during the storm and went to B)"
else
	bad "failover: c2s on A $on_a, on B $on_b (want $N on A)"
fi
sleep $(( 2 * READING )) # readings flow
# A freezes (SIGSTOP) for FREEZE ms, then dies: the readings sent meanwhile
# are never acknowledged, so the failed resumption hands them back
# (KL_EV_UNACKED) and the fleet sends them again on B
apid=$(cat "$DIR/a/run/ejabberd.pid" 2>/dev/null)
if [ -n "$apid" ] && kill -STOP "$apid"; then
	sleep "$FREEZE_S"
else
	bad "failover: cannot SIGSTOP node A (pid '$apid')"
fi
mark
"$CLUSTER" kill-node "$DIR" a >"$DIR/kill.out" 2>&1 && ok "$(cat "$DIR/kill.out")" || bad "kill-node a: $(cat "$DIR/kill.out")"
if fleet_wait; then ok "failover: fleet exit 0"; else bad "failover: fleet exit $?: $(grep -v '^online ' "$DIR/failover.err" | tail -n 5)"; fi
check failover "s['online'] == $N and s['failed'] == 0" "all $N devices online at the end"
check failover "s['mark_down'] == $on_a and s['mark_back'] == $on_a and $on_a > 0" "all $on_a on A lost the link at the kill and came back"
timed failover "s['mark_back_max_ms'] <= $FO_MAX + $STORM_S * 1000" "all back within the backoff window ($FO_MIN..$FO_MAX ms) + $STORM_S s for a login storm of $N on B"
check failover "s['readings_lost'] == 0 and s['readings_distinct'] == s['messages_sent'] and s['messages_sent'] >= 3 * $N" \
	"0 readings lost end to end (every device got back every seq it sent)"
check failover "s['mark_unacked_handed_back'] > 0 and s['unacked_resent'] == s['unacked_handed_back']" \
	"readings sent while A was frozen were handed back (KL_EV_UNACKED) and every one was sent again"
check failover "s['readings_foreign'] == 0 and s['logged_out'] == $N" "no foreign reading; every device logged out cleanly"
record failover
echo "failover: back after the kill: p50 $(val failover mark_back_p50_ms) ms, p99 $(val failover mark_back_p99_ms) ms," \
	"max $(val failover mark_back_max_ms) ms (backoff $FO_MIN..$FO_MAX ms); sessions after the kill: resumed" \
	"$(val failover mark_resumes), new $(val failover mark_onlines); handed back $(val failover mark_unacked_handed_back)," \
	"resent $(val failover mark_unacked_resent); readings sent $(val failover messages_sent), received" \
	"$(val failover messages_received) (distinct $(val failover readings_distinct), duplicates" \
	"$(val failover readings_dups), lost $(val failover readings_lost)); attempts after the kill" \
	"$(val failover mark_attempts), timeline/s $(val failover attempts_timeline)"

# --- 2. comeback: B down too (the whole service), then back ------------------------------
# comeback NAME [--no-jitter]
comeback() {
	local name=$1 tk tup
	shift
	fleet_bg "$name" --duration $(( 60 + 2 * STORM_S )) --after-back 1 --backoff $CB_MIN $CB_MAX --no-presence "$@"
	if wait_progress "$name" "^online $N " "$STORM_S"; then
		ok "$name: $N devices online on B"
	else
		bad "$name: not all online: $(progress "$name")"
	fi
	tk=$(now_ms)
	"$CLUSTER" kill-node "$DIR" b >"$DIR/$name.kill" 2>&1 && ok "$name: $(cat "$DIR/$name.kill")" ||
		bad "$name: kill-node b: $(cat "$DIR/$name.kill")"
	# every device backing off, and the backoff fully open (CB_MAX): a few rounds
	if wait_progress "$name" "^online 0  connecting 0  backing off $N " $(( 10 + STORM_S / 4 )); then
		ok "$name: every device backing off ($(progress "$name"))"
	else
		bad "$name: not all backing off: $(progress "$name")"
	fi
	# the backoff opens up to CB_MAX after 3 failed rounds (CB_MIN, <= 2 CB_MIN, <= 4 CB_MIN ...)
	sleep $(( (CB_MIN * 7) / 1000 + 1 ))
	"$CLUSTER" start-node "$DIR" b >"$DIR/$name.start" 2>&1 &
	local spid=$!
	for _ in $(seq 300); do listening $B && break; sleep 0.05; done
	tup=$(now_ms)
	mark
	wait "$spid" && ok "$name: B back ($(( tup - tk )) ms after the kill): $(cat "$DIR/$name.start")" ||
		bad "$name: start-node b: $(cat "$DIR/$name.start")"
	if fleet_wait; then ok "$name: fleet exit 0"; else bad "$name: fleet exit $?: $(grep -v '^online ' "$DIR/$name.err" | tail -n 5)"; fi
	check "$name" "s['online'] == $N and s['failed'] == 0 and s['mark_back'] == $N" "all $N devices online again"
	record "$name"
	echo "$name: after B listens: all back in $(val "$name" mark_back_max_ms) ms (p50 $(val "$name" mark_back_p50_ms));" \
		"attempts $(val "$name" mark_attempts), peak $(val "$name" mark_attempts_per_s_peak) in any 1 s" \
		"(a comeback is 1 or 2 attempts, A refused then B, or B: 2N / window = $(( 2 * N * 1000 / (CB_MAX - CB_MIN) ))/s" \
		"for the window $CB_MIN..$CB_MAX ms); timeline/s $(val "$name" attempts_timeline)"
}
comeback jitter
comeback herd --no-jitter
pj=$(val jitter mark_attempts_per_s_peak) ph=$(val herd mark_attempts_per_s_peak)
if [ -n "$BENCH_OUT" ]; then
	echo "bench: comeback: jittered peak $pj/s, the herd's $ph/s"
elif [ -n "$pj" ] && [ -n "$ph" ] && [ "$ph" -gt 0 ] && [ $(( pj * 100 )) -le $(( ph * 60 )) ]; then
	ok "comeback: jittered peak $pj/s <= 60 % of the herd's $ph/s"
else
	bad "comeback: jittered peak '$pj'/s not <= 60 % of the herd's '$ph'/s"
fi
echo "fleet-cluster: wall $(( ($(now_ms) - T_START) / 1000 )) s"
finish
