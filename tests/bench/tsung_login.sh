#!/bin/bash
# tests/bench/tsung_login.sh — the baseline for the fleet's login storm:
# Tsung (Debian's tsung 1.7, simulated clients in Erlang) runs the same
# login as build/kinglet-fleet — connect, STARTTLS, SASL PLAIN, bind,
# initial presence — for N accounts devI@DOMAIN / PASSWORD against the
# servers given, then closes each session 2 s later.
#
#   tsung_login.sh N HOST[,HOST…] PORT DOMAIN PASSWORD OUTDIR [RATE]
#
# RATE: new sessions per second (default N: all within about a second, a
# storm). Run it inside the test network namespace, against servers that
# are already up (it starts and stops only Tsung, by its own PID). The
# last line of stdout is one JSON object:
#   {"tool":"tsung","count":N,"started":S,"logins":L,"sessions_finished":F,
#    "logins_per_s":…,"mean_online_ms":…,"max_online_ms":…,
#    "ram_per_client":…,"rss_peak_kb":…,"errors":E}
# started: the users Tsung started (users_count; it may start fewer than N
# within the arrival phase); logins: login transactions that completed
# (tr_online, summed over Tsung's 10 s intervals: Tsung's own count, which
# may include a transaction whose session then failed); errors: Tsung's
# error counters (their kinds on stderr); *_online_ms: tr_online (connect to
# the bind and session answers); logins_per_s: logins over the arrival
# phase given to Tsung plus the longest login (the last login ends no
# later: a lower bound, capped near N / that phase whatever the server
# does); ram_per_client: the growth of the Tsung VM's resident memory from
# before the first arrival to its peak, over the users started (sampled
# every 100 ms: measured, not computed). Tsung's Erlang distribution starts
# an epmd when none runs: this script stops the one that appeared in this
# network namespace during the run, by PID, also when it is interrupted.
set -u
N=$1 HOSTS=$2 PORT=$3 DOMAIN=$4 PASSWORD=$5 OUT=$6 RATE=${7:-$1}
command -v tsung >/dev/null || { echo "tsung_login: tsung is not installed (make deps)" >&2; exit 2; }
mkdir -p "$OUT/log"
: >"$OUT/users.csv"
for i in $(seq 1 "$N"); do echo "dev$i,$PASSWORD"; done >"$OUT/users.csv"
servers=""
for h in ${HOSTS//,/ }; do servers="$servers<server host='$h' port='$PORT' type='tcp'/>"; done
# the arrival phase lasts N / RATE seconds (at least 1)
dur=$(( (N + RATE - 1) / RATE ))
[ "$dur" -ge 1 ] || dur=1
# the phase Tsung is given: longer than N / RATE (maxnumber stops it at N):
# its controller starts users more slowly than thousands a second (a 2 s
# phase started 2,567 of 5,000)
phase=$(( dur + 1 + N / 1000 ))
cat >"$OUT/tsung.xml" <<XML
<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd" [] >
<tsung loglevel="notice" dumptraffic="false" version="1.0">
  <clients><client host="localhost" use_controller_vm="true" maxusers="200000"/></clients>
  <servers>$servers</servers>
  <load><arrivalphase phase="1" duration="$phase" unit="second"><users maxnumber="$N" arrivalrate="$RATE" unit="second"/></arrivalphase></load>
  <options>
    <option type="ts_jabber" name="domain" value="$DOMAIN"/>
    <option type="ts_jabber" name="userid_max" value="0"/>
    <option name="file_server" id="userdb" value="$OUT/users.csv"/>
  </options>
  <sessions>
    <session bidi="true" probability="100" name="login" type="ts_jabber">
      <setdynvars sourcetype="file" fileid="userdb" delimiter="," order="iter"><var name="username"/><var name="password"/></setdynvars>
      <transaction name="online">
        <request subst="true"><jabber type="connect" ack="local"><xmpp_authenticate username="%%_username%%" passwd="%%_password%%"/></jabber></request>
        <request><jabber type="starttls" ack="bidi_ack"/></request>
        <request><jabber type="connect" ack="local"/></request>
        <request><jabber type="auth_sasl" ack="local"/></request>
        <request><jabber type="connect" ack="local"/></request>
        <request><jabber type="auth_sasl_bind" ack="local"/></request>
        <request><jabber type="auth_sasl_session" ack="local"/></request>
      </transaction>
      <request><jabber type="presence:initial" ack="no_ack"/></request>
      <thinktime value="2"/>
      <request><jabber type="close" ack="no_ack"/></request>
    </session>
  </sessions>
</tsung>
XML
# Tsung's Erlang distribution starts an epmd daemon when none runs: the
# ones in this network namespace before the run, to stop the new one after
# by its PID
netns=$(readlink /proc/self/ns/net)
epmds() { for p in $(pgrep -x epmd 2>/dev/null); do [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$netns" ] && echo "$p"; done; }
epmd_before=" $(epmds | tr '\n' ' ') "
tpid=""
stop_new_epmd() {
	for p in $(epmds); do
		case $epmd_before in *" $p "*) ;; *) kill "$p" 2>/dev/null ;; esac
	done
}
on_exit() {
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null
	stop_new_epmd
}
trap on_exit EXIT
trap 'exit 143' TERM INT HUP
HOME="$OUT" tsung -f "$OUT/tsung.xml" -l "$OUT/log" start >"$OUT/tsung.out" 2>&1 &
tpid=$!
# the Tsung VM's resident memory: the beam process under our tsung script
base=0 peak=0
while kill -0 "$tpid" 2>/dev/null; do
	rss=0
	for p in $(pgrep -P "$tpid" 2>/dev/null) $(pgrep -f "tsung_controller" 2>/dev/null); do
		r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
		[ -n "$r" ] && [ "$r" -gt "$rss" ] && rss=$r
	done
	if [ "$rss" -gt 0 ]; then
		[ "$base" = 0 ] && base=$rss
		[ "$rss" -gt "$peak" ] && peak=$rss
	fi
	sleep 0.1
done
wait "$tpid"
rc=$?
tpid=""
stop_new_epmd
log=$(ls -d "$OUT"/log/*/ 2>/dev/null | tail -1)
# "stats: NAME count mean stddev max min meanfb countfb", one line per
# 10 s interval for what completed in it; counters ("stats: NAME count
# total") keep their running total last
read -r logins mean max <<<"$(awk '$1 == "stats:" && $2 == "tr_online" {
	c += $3; sum += $3 * $4; if ($6 + 0 > mx) mx = $6 + 0 }
	END { printf "%d %.1f %s\n", c, (c ? sum / c : 0), mx + 0 }' "$log/tsung.log" 2>/dev/null)"
total() { awk -v k="$1" '$1 == "stats:" && $2 == k { t = $4 } END { print t + 0 }' "$log/tsung.log" 2>/dev/null; }
started=$(total users_count)
finished=$(total finish_users_count)
# the errors: each kind on stderr, their sum
errors=$(awk '$1 == "stats:" && $2 ~ /^error_/ { t[$2] = $4 }
	END { for (k in t) { printf "tsung: %s %d\n", k, t[k] > "/dev/stderr"; s += t[k] } print s + 0 }' \
	"$log/tsung.log")
: "${logins:=0}" "${mean:=0}" "${max:=0}" "${errors:=0}"
python3 - "$N" "$started" "$logins" "$finished" "$mean" "$max" "$phase" "$base" "$peak" "$errors" "$rc" <<'PY'
import json, sys
n, started, logins, finished, mean, mx, dur, base, peak, errors, rc = sys.argv[1:]
n, started, logins = int(n), int(started), int(logins)
print(json.dumps({"tool": "tsung", "count": n, "started": started, "logins": logins,
                  "sessions_finished": int(finished),
                  "logins_per_s": round(logins / (max(1, int(dur)) + float(mx) / 1000.0), 1),
                  "mean_online_ms": round(float(mean), 1), "max_online_ms": round(float(mx), 1),
                  "ram_per_client": round((int(peak) - int(base)) * 1024 / max(1, started or n)),
                  "rss_peak_kb": int(peak), "errors": int(errors), "exit": int(rc)}))
PY
