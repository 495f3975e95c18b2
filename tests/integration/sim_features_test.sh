#!/bin/bash
# tests/integration/sim_features_test.sh — the simulator (kinglet over lwIP
# NO_SYS=1 + mbedTLS arena on a restricted libslirp link) at parity with the
# POSIX CLI, inside a loopback-only network namespace. Each asserted by the
# round trips in --stats:
#   - s2s bidi (XEP-0288) with Prosody: a user's message to
#     device@sensor.test reaches the simulated device over its one stream and
#     the reply comes back; Prosody opens no outgoing s2s connection
#   - XEP-0305 full against the conformance peer: 3 round trips
#   - direct TLS (XEP-0368) to Prosody: 4 round trips
#   - SCRAM (--no-plain) with cached hints (--cache across restarts): 6
#   - TLS session resumption through the hints cache, against stunnel in
#     front of a plaintext Prosody: the blob is saved, offered and resumed
#     (TLS 1.2: 5 -> 4 round trips; TLS 1.3: resumed, still 4)
#   - SRV over lwIP UDP against dnsmasq (the link relays 10.0.2.100:PORT/udp
#     to the host's 127.0.0.1:PORT: restricted slirp forwards no UDP); the
#     answer kept in the hints (--cache) for its TTL and reused without a query
# Last line: "sim_features: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
PEER="$root/tests/conformance/xep0305_peer.py"
SIM=${KINGLET_SIM:-$root/build/kinglet-sim}
KL=${KINGLET:-$root/build/kinglet}

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() {
	echo "sim_features: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

DIR=$(mktemp -d /tmp/kl-simf.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	"$PROSODY" stop "$DIR" >/dev/null 2>&1
	[ -n "${KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT

json() { tail -n 1 "$1" | python3 -c "import json,sys; j=json.load(sys.stdin); print($2)" 2>/dev/null || echo "?"; }
sim() { timeout -k 2 40 "$SIM" --cafile "$DIR/ca.pem" "$@"; }
kl() { timeout -k 2 30 "$KL" --host 127.0.0.1 --cafile "$DIR/ca.pem" "$@"; }
wait_online() { for _ in $(seq 100); do grep -q '^online' "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
port_up() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
wait_port() { for _ in $(seq 100); do port_up "$1" && return 0; sleep 0.05; done; return 1; }

"$PROSODY" start "$DIR" --s2s-port 5269 --debug >/dev/null || { bad "prosody start with s2s"; finish; }
"$PROSODY" cert "$DIR" sensor DNS:sensor.test >/dev/null
ok "prosody started (c2s 5222, direct TLS 5223, s2s 5269 with bidi)"

# --- s2s bidi over the simulator -----------------------------------------------
getent hosts sensor.test >/dev/null 2>&1 && bad "sensor.test resolves here" || ok "sensor.test does not resolve"
sim --s2s --domain sensor.test --to localhost --cert "$DIR/sensor.pem" --key "$DIR/sensor.key" --echo --count 1 \
	--timeout 20 --stats >"$DIR/dev.out" 2>"$DIR/dev.err" &
dev=$!
PIDS="$PIDS $dev"
wait_online "$DIR/dev.out" && ok "simulated device online over s2s (lwIP)" || bad "device not online: $(cat "$DIR/dev.err")"
if kl --jid alice@localhost/u --password alicepass --send device@sensor.test "temperature?" --recv 1 --timeout 15 \
	>"$DIR/user.out" 2>"$DIR/user.err"; then
	ok "user sent to device@sensor.test and got an answer (exit 0)"
else
	bad "user: $(cat "$DIR/user.err")"
fi
grep -qF 'message from device@sensor.test: temperature?' "$DIR/user.out" && ok "the simulated device's reply reached the user" ||
	bad "no reply: $(cat "$DIR/user.out")"
wait "$dev" && ok "device echoed and closed (exit 0)" || bad "device exit: $(cat "$DIR/dev.err")"
grep -qF 'message from alice@localhost/u: temperature?' "$DIR/dev.out" && ok "device received the message on its own stream" ||
	bad "device did not receive: $(cat "$DIR/dev.out")"
if grep -qiE 's2sout[0-9a-f]{6,}|connection attempt|Beginning new connection' "$DIR/prosody.log"; then
	bad "Prosody tried an outgoing s2s connection"
else
	ok "Prosody used the device's stream: no outgoing s2s connection attempted"
fi
r=$(json "$DIR/dev.out" '"%d %d %s" % (j["round_trips"], j["s2s"], j["sasl"])')
echo "     s2s over lwIP: round_trips/s2s/sasl = $r"
[ "${r%% *}" -le 8 ] 2>/dev/null && [ "${r#* }" = "1 EXTERNAL" ] && ok "s2s over lwIP: ${r%% *} round trips to an authenticated bidi stream, SASL EXTERNAL" ||
	bad "s2s stats: $r"
# with the hints cached (across simulator restarts), <bidi/> and EXTERNAL ride with the header
for run in 1 2; do
	sim --s2s --domain sensor.test --to localhost --cert "$DIR/sensor.pem" --key "$DIR/sensor.key" --timeout 10 --stats \
		--cache "$DIR/s2s.hints" >"$DIR/s2s$run.json" 2>"$DIR/s2s$run.err" || bad "s2s run $run: $(cat "$DIR/s2s$run.err")"
done
r1=$(json "$DIR/s2s1.json" 'j["round_trips"]') r2=$(json "$DIR/s2s2.json" 'j["round_trips"]')
[ "$r2" -lt "$r1" ] 2>/dev/null && [ "$r2" -le 5 ] && ok "s2s over lwIP with hints: $r1 -> $r2 round trips" || bad "s2s hints: $r1 -> $r2"

# --- direct TLS ------------------------------------------------------------------------
sim --jid alice@localhost/d --password alicepass --tls direct --stats >"$DIR/direct.json" 2>"$DIR/direct.err" ||
	bad "direct TLS: $(cat "$DIR/direct.err")"
r=$(json "$DIR/direct.json" '"%d %s %s" % (j["round_trips"], j["mode"], j["tls"])')
[ "$r" = "4 direct TLSv1.3" ] && ok "direct TLS over lwIP: 4 round trips (TCP, TLS 1.3, header, auth+bind)" || bad "direct TLS: $r"

# --- the roster (XEP-0237 version kept in the hints) ------------------------------------
sim --jid alice@localhost/ro --password alicepass --roster --cache "$DIR/ro.hints" --stats >"$DIR/roster.json" 2>"$DIR/roster.err" ||
	bad "roster: $(cat "$DIR/roster.err")"
grep -q '^roster received: ' "$DIR/roster.json" && ok "roster over lwIP: $(grep '^roster' "$DIR/roster.json")" || bad "no roster: $(cat "$DIR/roster.json" "$DIR/roster.err")"

# --- SCRAM with cached hints ---------------------------------------------------------
sim --jid alice@localhost/s --password alicepass --no-plain --cache "$DIR/scram.hints" --stats >"$DIR/scram1.json" 2>"$DIR/scram1.err" ||
	bad "SCRAM first: $(cat "$DIR/scram1.err")"
sim --jid alice@localhost/s --password alicepass --no-plain --cache "$DIR/scram.hints" --stats >"$DIR/scram2.json" 2>"$DIR/scram2.err" ||
	bad "SCRAM second: $(cat "$DIR/scram2.err")"
r1=$(json "$DIR/scram1.json" '"%d %s %s" % (j["round_trips"], j["sasl"], j["cache"])')
r2=$(json "$DIR/scram2.json" '"%d %s %s" % (j["round_trips"], j["sasl"], j["cache"])')
case "$r2" in
"6 SCRAM-SHA-"*" hit") ok "SCRAM over lwIP with cached hints: $r2 round trips/mechanism/cache (first run: $r1)" ;;
*) bad "SCRAM with hints: first '$r1', second '$r2'" ;;
esac

# --- XEP-0305 full against the conformance peer ---------------------------------------
python3 "$PEER" 6222 --certdir "$DIR" --log "$DIR/peer.log" >"$DIR/peer.out" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 50); do grep -q listening "$DIR/peer.out" && break; sleep 0.1; done
sim --jid alice@localhost/f --password alicepass --port 6222 --pipelining full-forced --send alice@localhost/f hi --recv 1 \
	--stats --timeout 15 >"$DIR/full.json" 2>"$DIR/full.err" || bad "full vs peer: $(cat "$DIR/full.err")"
r=$(json "$DIR/full.json" '"%d %s %d" % (j["round_trips"], j["pipelining"], j["full_fallback"])')
[ "$r" = "3 full 0" ] && ok "full over lwIP against the conformance peer: 3 round trips (TCP + 2)" || bad "full: $r ($(cat "$DIR/full.err"))"
grep -q 'message from alice@localhost/f: hi' "$DIR/full.json" && ok "full: the session works (message to itself)" || bad "full: no message"
last=$(grep 'summary' "$DIR/peer.log" | tail -1)
echo "$last" | grep -q 'header+starttls+clienthello together=yes' && ok "peer saw header+<starttls/>+ClientHello in one read" ||
	bad "peer: $last"
echo "$last" | grep -q 'auth+restart+bind together=yes' && ok "peer saw <auth/>+restart+bind in one read" || bad "peer: $last"
# the cache decides: safe while learning, then full (across simulator restarts)
sim --jid alice@localhost/f --password alicepass --port 6222 --pipelining full --cache "$DIR/full.hints" --stats >"$DIR/c1.json" 2>/dev/null
sim --jid alice@localhost/f --password alicepass --port 6222 --pipelining full --cache "$DIR/full.hints" --stats >"$DIR/c2.json" 2>/dev/null
r="$(json "$DIR/c1.json" 'j["pipelining"]') $(json "$DIR/c2.json" '"%s %d" % (j["pipelining"], j["round_trips"])')"
[ "$r" = "safe full 3" ] && ok "full only once the hints (kept across restarts) say the server advertised pipelining: $r" ||
	bad "cache-driven full: $r"
# Prosody 0.12 breaks on full flights: fall back to safe
sim --jid alice@localhost/f --password alicepass --pipelining full-forced --cache "$DIR/p.hints" --stats >"$DIR/p1.json" 2>"$DIR/p1.err" ||
	bad "full-forced vs Prosody: $(cat "$DIR/p1.err")"
r=$(json "$DIR/p1.json" '"%d %s" % (j["full_fallback"], j["pipelining"])')
[ "$r" = "1 safe" ] && ok "Prosody refused full flights: the simulator fell back to safe and logged in" || bad "Prosody full fallback: $r"

# --- TLS resumption through the hints: stunnel in front of a plaintext Prosody ----------
C2S=15222 TLS13=15223 TLS12=15224
if command -v stunnel4 >/dev/null; then
	pd=$DIR/plain
	mkdir -p "$pd/data"
	cat >"$pd/prosody.cfg.lua" <<EOC
run_as_root = true
pidfile = "$pd/prosody.pid"
data_path = "$pd/data"
log = { info = "$pd/prosody.log" }
daemonize = false
network_settings = { nagle = false }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $C2S }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
s2s_ports = { }
http_ports = { }
https_ports = { }
component_ports = { }
authentication = "internal_plain"
storage = "internal"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = false
modules_enabled = { "roster"; "saslauth"; "disco"; "ping" }
modules_disabled = { "s2s"; "tls" }
VirtualHost "localhost"
EOC
	cat >"$DIR/stunnel.conf" <<EOC
foreground = yes
pid =
debug = 4
output = $DIR/stunnel.log
[xmpps-tls13]
accept = 127.0.0.1:$TLS13
connect = 127.0.0.1:$C2S
cert = $DIR/localhost.pem
key = $DIR/localhost.key
[xmpps-tls12]
accept = 127.0.0.1:$TLS12
connect = 127.0.0.1:$C2S
cert = $DIR/localhost.pem
key = $DIR/localhost.key
sslVersionMax = TLSv1.2
EOC
	timeout -k 2 20 prosodyctl --config "$pd/prosody.cfg.lua" register alice localhost alicepass </dev/null >/dev/null 2>&1
	setsid prosody --config "$pd/prosody.cfg.lua" -F </dev/null >"$pd/prosody.out" 2>&1 &
	PIDS="$PIDS $!"
	stunnel4 "$DIR/stunnel.conf" </dev/null >"$DIR/stunnel.out" 2>&1 &
	PIDS="$PIDS $!"
	if wait_port $C2S && wait_port $TLS13 && wait_port $TLS12; then
		for v in 12:$TLS12 13:$TLS13; do
			n=${v%%:*} p=${v#*:}
			for run in 1 2; do
				sim --jid alice@localhost/r --password alicepass --port "$p" --tls direct --cache "$DIR/r$n.hints" \
					--stats >"$DIR/r$n-$run.json" 2>"$DIR/r$n-$run.err" || bad "TLS 1.${n#1} run $run: $(cat "$DIR/r$n-$run.err")"
			done
			a=$(json "$DIR/r$n-1.json" '"%s %d %d %d %d" % (j["tls"], j["round_trips"], j["tls_session_offered"], j["tls_resumed"], j["tls_session_saved"])')
			b=$(json "$DIR/r$n-2.json" '"%s %d %d %d %d" % (j["tls"], j["round_trips"], j["tls_session_offered"], j["tls_resumed"], j["tls_session_saved"])')
			echo "     stunnel TLS 1.${n#1}: first run (tls rt offered resumed saved) = $a; second = $b"
			set -- $a
			[ "${3:-}" = 0 ] && [ "${5:-}" = 1 ] && ok "TLS 1.${n#1}: first connect saves the session blob in the hints ($1, $2 round trips)" ||
				bad "TLS 1.${n#1} first run: $a"
			set -- $b
			if [ "$n" = 12 ]; then
				[ "${3:-}" = 1 ] && [ "${4:-}" = 1 ] && [ "${2:-}" = 4 ] &&
					ok "TLS 1.2: the second run offers the cached session and resumes: 5 -> $2 round trips" || bad "TLS 1.2 second run: $b"
			else
				[ "${3:-}" = 1 ] && [ "${4:-}" = 1 ] && [ "${2:-}" = 4 ] &&
					ok "TLS 1.3: the second run offers the cached ticket and resumes (PSK-DHE: still $2 round trips, no certificate)" ||
					bad "TLS 1.3 second run: $b"
			fi
		done
	else
		bad "plaintext Prosody + stunnel did not start: $(tail -5 "$DIR/stunnel.out" "$pd/prosody.out")"
	fi
else
	bad "stunnel4 not installed (make deps)"
fi

# --- SRV over lwIP UDP (dnsmasq) ---------------------------------------------------------
if command -v dnsmasq >/dev/null; then
	dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-dhcp-interface=lo \
		--port=5353 --listen-address=127.0.0.1 --bind-interfaces --pid-file= --user=root \
		--local=/localhost/ --local-ttl=300 --log-queries --log-facility="$DIR/dnsmasq.log" \
		--srv-host=_xmpp-client._tcp.localhost,server.sim,5222,10,0 \
		--host-record=server.sim,10.0.2.100 &
	PIDS="$PIDS $!"
	sleep 0.3
	# --port 1: nothing there; only the SRV answer can lead to 5222
	sim --jid alice@localhost/srv --password alicepass --srv --dns 127.0.0.1:5353 --port 1 --stats \
		>"$DIR/srv.json" 2>"$DIR/srv.err" || bad "SRV login: $(cat "$DIR/srv.err")"
	r=$(json "$DIR/srv.json" '"%s %d" % (j["srv"], j["round_trips"])')
	[ "$r" = "server.sim:5222 5" ] && ok "SRV over lwIP UDP (relayed to dnsmasq): connected to server.sim:5222, 5 round trips" ||
		bad "SRV: $r"
	grep -q '_xmpp-client._tcp.localhost' "$DIR/dnsmasq.log" 2>/dev/null && ok "dnsmasq answered the device's SRV query" ||
		bad "dnsmasq saw no query"
	# the SRV answer kept in the hints for its TTL (across simulator restarts): no second lookup
	for run in 1 2; do
		sim --jid alice@localhost/srv --password alicepass --srv --dns 127.0.0.1:5353 --port 1 --cache "$DIR/srv.hints" \
			--stats >"$DIR/srvc$run.json" 2>"$DIR/srvc$run.err" || bad "SRV with hints run $run: $(cat "$DIR/srvc$run.err")"
	done
	q1=$(grep -c 'query\[SRV\] _xmpp-client._tcp.localhost' "$DIR/dnsmasq.log")
	sim --jid alice@localhost/srv --password alicepass --srv --dns 127.0.0.1:5353 --port 1 --cache "$DIR/srv.hints" \
		--stats >"$DIR/srvc3.json" 2>"$DIR/srvc3.err" || bad "SRV with hints run 3: $(cat "$DIR/srvc3.err")"
	q2=$(grep -c 'query\[SRV\] _xmpp-client._tcp.localhost' "$DIR/dnsmasq.log")
	r="$(json "$DIR/srvc1.json" 'j["srv"]') / $(json "$DIR/srvc2.json" 'j["srv"]') / $(json "$DIR/srvc3.json" '"%s %s" % (j["srv"], j["cache"])')"
	case "$r" in
	"server.sim:5222 / "*":5222 (cached) / "*":5222 (cached) hit")
		[ "$q1" = "$q2" ] && ok "SRV answer kept in the hints (TTL 300 s) and reused across restarts without a query: $r" ||
			bad "SRV hints: a query went out although the hints held the answer ($q1 -> $q2)" ;;
	*) bad "SRV hints: $r" ;;
	esac
	sim --jid alice@localhost/srv --password alicepass --srv --dns 127.0.0.1:5354 --port 1 --timeout 10 \
		>/dev/null 2>"$DIR/srvdead.err"
	rc=$?
	[ $rc = 3 ] && grep -q 'timed out\|timeout' "$DIR/srvdead.err" && ok "dead resolver: exit 3, $(cat "$DIR/srvdead.err")" ||
		bad "dead resolver: exit $rc $(cat "$DIR/srvdead.err")"
else
	bad "dnsmasq not installed"
fi

# --- nothing ran dry in any of these runs -----------------------------------------------
for f in "$DIR"/dev.out "$DIR"/s2s2.json "$DIR"/full.json "$DIR"/r12-2.json "$DIR"/r13-2.json "$DIR"/srv.json; do
	v=$(json "$f" '"%d %d %d" % (j["arena_failures"], j["lwip_exhausted"], j["link_drops"])')
	[ "$v" = "0 0 0" ] || bad "$(basename "$f"): arena failures/lwIP exhausted/link drops = $v"
done
ok "no mbedTLS arena failure, lwIP pool/heap error or dropped frame (s2s with a client certificate, full, resumption, SRV)"

# --- valgrind over the new paths: full (held reads, preread) and resumption --------------
if command -v valgrind >/dev/null; then
	if timeout -k 2 60 valgrind -q --error-exitcode=99 "$SIM" --cafile "$DIR/ca.pem" --jid alice@localhost/vg --password alicepass \
		--port 6222 --pipelining full-forced --timeout 40 --stats >"$DIR/vg1.out" 2>"$DIR/vg1.err" &&
		[ "$(json "$DIR/vg1.out" 'j["pipelining"]')" = full ]; then
		ok "valgrind: full pipelining session with no errors"
	else
		bad "valgrind full: $(head -20 "$DIR/vg1.err")"
	fi
	if [ -s "$DIR/r12.hints" ] && timeout -k 2 60 valgrind -q --error-exitcode=99 "$SIM" --cafile "$DIR/ca.pem" \
		--jid alice@localhost/vg --password alicepass --port $TLS12 --tls direct --cache "$DIR/r12.hints" --timeout 40 --stats \
		>"$DIR/vg2.out" 2>"$DIR/vg2.err" && [ "$(json "$DIR/vg2.out" 'j["tls_resumed"]')" = 1 ]; then
		ok "valgrind: resumed TLS 1.2 session from the hints with no errors"
	else
		bad "valgrind resumption: $(head -20 "$DIR/vg2.err")"
	fi
fi
finish
