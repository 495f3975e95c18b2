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
#   {"tool":"tsung","count":N,"online":K,"logins_per_s":…,"mean_online_ms":…,
#    "max_online_ms":…,"ram_per_client":…,"rss_peak_kb":…,"errors":…}
# online: sessions whose login transaction completed; *_online_ms: Tsung's
# tr_online (connect to the bind and session answers); ram_per_client: the
# growth of the Tsung VM's resident memory from before the first arrival
# to its peak, over N (sampled every 100 ms: measured, not computed).
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
cat >"$OUT/tsung.xml" <<XML
<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd" [] >
<tsung loglevel="notice" dumptraffic="false" version="1.0">
  <clients><client host="localhost" use_controller_vm="true" maxusers="200000"/></clients>
  <servers>$servers</servers>
  <load><arrivalphase phase="1" duration="$((dur + 1))" unit="second"><users maxnumber="$N" arrivalrate="$RATE" unit="second"/></arrivalphase></load>
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
log=$(ls -d "$OUT"/log/*/ 2>/dev/null | tail -1)
stat() { grep -E "^stats: $1 " "$log/tsung.log" 2>/dev/null | tail -1; }
set -- $(stat tr_online)
online=${3:-0} mean=${4:-0} max=${6:-0}
errors=$(grep -E "^stats: error_" "$log/tsung.log" 2>/dev/null | awk '{s += $3} END {print s + 0}')
python3 - "$N" "$online" "$mean" "$max" "$dur" "$base" "$peak" "$errors" "$rc" <<'PY'
import json, sys
n, online, mean, mx, dur, base, peak, errors, rc = sys.argv[1:]
n, online = int(n), int(float(online))
print(json.dumps({"tool": "tsung", "count": n, "online": online,
                  "logins_per_s": round(online / max(1, int(dur)), 1),
                  "mean_online_ms": round(float(mean), 1), "max_online_ms": round(float(mx), 1),
                  "ram_per_client": round((int(peak) - int(base)) * 1024 / max(1, n)),
                  "rss_peak_kb": int(peak), "errors": int(errors), "exit": int(rc)}))
PY
