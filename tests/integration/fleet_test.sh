#!/bin/bash
# tests/integration/fleet_test.sh — build/kinglet-fleet: 100 devices in one
# process against a real Prosody 0.12 (STARTTLS, TLS 1.3 verified with the
# test CA), inside a loopback-only network namespace:
#   1. a login storm: 100 devices at once, all online, the stats JSON
#      parses, p99_online_ms and cpu_ms_per_login reported, RAM per device
#      (measured: structs + mbedTLS's heap peak / N) <= 32768, exit 0, every
#      device logged out cleanly; Prosody's CPU for it is printed (not
#      asserted)
#   2. --reading 1 --duration 5: every reading a device sends to itself
#      arrives (messages_received == messages_sent after the final drain)
#   3. --rate 50: at most 50 (+1) connection attempts started in any second
# The accounts dev1..dev100 are written straight into Prosody's internal
# storage before it starts (prosodyctl register would take ~30 s).
# Last line: "fleet: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
FLEET=${KINGLET_FLEET:-$root/build/kinglet-fleet}
N=${KL_FLEET_N:-100}
# shellcheck disable=SC2034 # read by results.sh
SUITE=fleet
# shellcheck source=../lib/results.sh
. "$root/tests/lib/results.sh"

DIR=$(mktemp -d /tmp/kl-fleet.XXXXXX)
cleanup() {
	"$PROSODY" stop "$DIR" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

[ -x "$FLEET" ] || { bad "no $FLEET (make fleet)"; finish; }

# dev1..devN, password devpass, in Prosody 0.12's internal storage
# (internal_plain): the start script sees them and registers nothing.
mkdir -p "$DIR/data/localhost/accounts"
for i in $(seq 1 "$N"); do
	printf 'return {\n\t["password"] = "devpass";\n};\n' > "$DIR/data/localhost/accounts/dev$i.dat"
done
"$PROSODY" start "$DIR" >/dev/null || { bad "prosody start"; finish; }
PPID_P=$(cat "$DIR/prosody.pid")
ok "prosody started (pid $PPID_P), $N accounts provisioned"

fleet() { # fleet NAME ARGS... -> DIR/NAME.json (stdout), DIR/NAME.err; returns the exit status
	local name=$1
	shift
	timeout -k 2 40 "$FLEET" --count "$N" --jid 'dev%d@localhost' --password devpass --host 127.0.0.1 \
		--cafile "$DIR/ca.pem" --stats "$@" >"$DIR/$name.json" 2>"$DIR/$name.err"
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

# --- 1. the login storm ---------------------------------------------------------
t0=$(date +%s%N)
# --server-pid: Prosody's CPU (utime + stime) in the fleet's own summary
if fleet storm --duration 2 --server-pid "$PPID_P"; then ok "storm: exit 0"; else bad "storm: exit $? : $(tail -n 5 "$DIR/storm.err")"; fi
t1=$(date +%s%N)
if json_true "$DIR/storm.json" True; then
	ok "storm: the stats line is JSON"
else
	bad "storm: no stats JSON: $(tail -n 3 "$DIR/storm.json") / $(tail -n 3 "$DIR/storm.err")"
fi
check storm "s['count'] == $N and s['online'] == $N and s['ever_online'] == $N" "all $N devices online"
check storm "s['failed'] == 0 and s['link_downs'] == 0" "no failure, no link down"
check storm "s['logged_out'] == $N and s['logout_failures'] == 0" "every device logged out cleanly"
check storm "0 < s['p50_online_ms'] <= s['p99_online_ms'] <= s['max_online_ms'] < 30000" "online times reported (p50 <= p99 <= max)"
check storm "s['ram_per_device'] <= 32768 and s['ram_tls_heap_peak_per_device'] > 0" "RAM per device <= 32768 bytes, measured"
check storm "s['cpu_ms_per_login'] > 0 and s['logins'] >= $N" "CPU per login reported"
check storm "s['round_trips'] > 0 and s['bytes_out'] > 0 and s['bytes_in'] > 0" "round trips and wire bytes per login reported"
ms=$(( (t1 - t0) / 1000000 ))
echo "storm: $N devices: p50 $(val storm p50_online_ms) ms, p90 $(val storm p90_online_ms) ms," \
	"p99 $(val storm p99_online_ms) ms, max $(val storm max_online_ms) ms, $(val storm logins_per_s) logins/s"
echo "storm: RAM/device $(val storm ram_per_device) B = structs $(val storm ram_static_per_device)" \
	"(client $(val storm sizeof_client), session $(val storm sizeof_session), tls $(val storm sizeof_tls)," \
	"sm queue $(val storm sm_queue)) + mbedTLS heap peak/N $(val storm ram_tls_heap_peak_per_device)" \
	"(online: $(( $(val storm tls_heap_online) / N ))/device; shared once: $(val storm tls_shared_bytes) B)"
echo "storm: CPU: fleet $(val storm cpu_ms_per_login) ms/login ($(val storm cpu_ms) ms), Prosody" \
	"$(val storm server_cpu_ms) ms for the run ($(val storm server_cpu_ms_per_login) ms/login); wall $ms ms;" \
	"$(val storm round_trips) round trips, $(val storm bytes_out) B out, $(val storm bytes_in) B in per login"

# the same storm over port/mbedtls's binding (a whole kl_tls_t per device): for comparison only
if fleet storm_port --duration 1 --tls-binding port; then
	echo "storm (port binding, not asserted): RAM/device $(val storm_port ram_per_device) B = structs" \
		"$(val storm_port ram_static_per_device) (tls $(val storm_port sizeof_tls)) + mbedTLS heap peak/N" \
		"$(val storm_port ram_tls_heap_peak_per_device); p99 $(val storm_port p99_online_ms) ms," \
		"$(val storm_port cpu_ms_per_login) ms CPU/login"
else
	echo "storm (port binding, not asserted): exit $?: $(tail -n 3 "$DIR/storm_port.err")"
fi

# --- 2. readings: none lost -------------------------------------------------------
if fleet readings --reading 1 --duration 5; then ok "readings: exit 0"; else bad "readings: exit $? : $(tail -n 5 "$DIR/readings.err")"; fi
check readings "s['online'] == $N and s['failed'] == 0" "all $N devices online"
check readings "s['messages_sent'] >= 4 * $N" "at least 4 readings per device sent"
check readings "s['messages_received'] == s['messages_sent']" "every reading arrived (0 lost)"
check readings "s['logged_out'] == $N" "every device logged out cleanly"
echo "readings: sent $(val readings messages_sent), received $(val readings messages_received)," \
	"skipped $(val readings readings_skipped)"

# --- 3. --rate 50 ---------------------------------------------------------------
if fleet rate --rate 50 --duration 1; then ok "rate: exit 0"; else bad "rate: exit $? : $(tail -n 5 "$DIR/rate.err")"; fi
check rate "s['online'] == $N and s['failed'] == 0" "all $N devices online"
check rate "s['attempts_per_s_peak'] <= 51 and s['attempts'] == $N" "at most 50 (+1) attempts started in any second"
echo "rate: attempts_per_s_peak $(val rate attempts_per_s_peak), max_online_ms $(val rate max_online_ms)"

finish
