#!/bin/bash
# tests/integration/tls_resume_test.sh CLIENT [KINGLET_CLI]
#
# TLS session resumption in the mbedTLS port (kl_tls_session_save, the
# config's session blob, kl_tls_resumed), inside a loopback-only network
# namespace (tests/netns.sh; needs root):
#   1. against `openssl s_server`: TLS 1.3 tickets, TLS 1.2 tickets, TLS 1.2
#      session ids; round trips (1.3: 1 and 1; 1.2: 2 full, 1 resumed);
#      damaged blobs; a blob for another name on the same server (same
#      ticket keys); another server for the same name; an untrusted server
#      offered a good blob; changed trust anchors; a TLS version change.
#   2. the deployment shape: stunnel4 terminating TLS (test CA's localhost
#      certificate) in front of a plaintext c2s port of a throwaway Prosody
#      (own config here: c2s_require_encryption = false and
#      allow_unencrypted_plain_auth = true, reachable only through stunnel
#      on loopback inside the namespace); the client reads Prosody's stream
#      features over a full and a resumed session, and a table of measured
#      handshakes (median of KL_RESUME_RUNS runs, default 15) is printed.
# CLIENT is build/tests/integration/tls_resume_client; KINGLET_CLI (default
# build/kinglet), if present, also logs in through stunnel (direct TLS).
# Every server is started here on a test port and stopped by its PID.
# Last line: "tls_resume: N passed, N failed"; non-zero exit on a failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

client=${1:-build/tests/integration/tls_resume_client}
cli=${2:-build/kinglet}
[ -x "$client" ] || { echo "tls_resume_test: no client binary at $client" >&2; echo "tls_resume: 0 passed, 1 failed"; exit 1; }
client=$(cd "$(dirname "$client")" && pwd)/$(basename "$client")
[ -x "$cli" ] && cli=$(cd "$(dirname "$cli")" && pwd)/$(basename "$cli") || cli=

tmp=$(mktemp -d /tmp/kl-tls-resume.XXXXXX)
server_pids=()
cleanup() {
	local p
	for p in "${server_pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "PASS $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1: $2"; }

# ---- throwaway PKI ------------------------------------------------------------
cd "$tmp" || exit 1
mkca() { # name
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" &&
	openssl req -x509 -new -key "$1.key" -subj "/CN=kinglet test $1" -days 2 -out "$1.pem" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
mkcert() { # name SAN ca
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" &&
	openssl req -new -key "$1.key" -subj "/CN=${2#DNS:}" -out "$1.csr" &&
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
		"$2" >"$1.ext" &&
	openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 2 \
		-extfile "$1.ext" -out "$1.pem"
}
if ! {
	mkca ca && mkca otherca &&
	mkcert server "DNS:localhost,IP:127.0.0.1" ca &&
	mkcert bserver "DNS:b.test" ca &&
	mkcert rogue "DNS:localhost" otherca &&
	cat ca.pem otherca.pem >both.pem
} >pki.log 2>&1; then
	cat pki.log >&2
	echo "tls_resume: 0 passed, 1 failed (could not create the test PKI)"
	exit 1
fi

port_up() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
wait_port() { # port pid log
	for _ in $(seq 200); do
		port_up "$1" && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	echo "tls_resume_test: nothing listens on port $1:" >&2
	tail -n 20 "$3" >&2
	return 1
}

# start_server PORT CERT [s_server args...]  (-rev: each line echoed reversed)
start_server() {
	local port=$1 cert=$2
	shift 2
	openssl s_server -accept "127.0.0.1:$port" -cert "$cert.pem" -key "$cert.key" \
		-rev -quiet "$@" </dev/null >"server-$port.log" 2>&1 &
	server_pids+=($!)
	wait_port "$port" $! "server-$port.log"
}

start_server 4441 server -tls1_3 || bad "s_server 4441" "not started"
start_server 4442 server -tls1_2 || bad "s_server 4442" "not started"
start_server 4443 server -tls1_2 -no_ticket || bad "s_server 4443" "not started"
# One server, two names (SNI picks the certificate), one set of ticket keys.
start_server 4444 server -tls1_3 -servername b.test -cert2 bserver.pem -key2 bserver.key ||
	bad "s_server 4444" "not started"
start_server 4445 server -tls1_2 -servername b.test -cert2 bserver.pem -key2 bserver.key ||
	bad "s_server 4445" "not started"
start_server 4446 server -tls1_3 || bad "s_server 4446" "not started" # other ticket keys
start_server 4447 rogue -tls1_3 || bad "s_server 4447" "not started"  # untrusted CA

# run NAME FIELDS... -- CLIENT-ARGS...: each field (key=value, or key~text
# for a quoted value containing text) must be in the client's result line.
# The line is kept in $out.
out=
run() {
	local name=$1 f key val rc
	shift
	local want=()
	while [ "$1" != "--" ]; do want+=("$1"); shift; done
	shift
	# shellcheck disable=SC2086 # KL_TEST_WRAP is a command line, e.g. "valgrind -q --error-exitcode=9"
	out=$(${KL_TEST_WRAP:-} "$client" "$@" 2>&1)
	rc=$?
	[ "$rc" -le 1 ] || { bad "$name" "client exited with $rc: $out"; return 1; }
	for f in "${want[@]}"; do
		case $f in
		*~*) key=${f%%~*}; val=${f#*~}
		     [[ $out == *"$key=\""*"$val"* ]] || { bad "$name" "expected $key to contain '$val'; got: $out"; return 1; } ;;
		*)   [[ " $out " == *" $f "* ]] || { bad "$name" "expected $f; got: $out"; return 1; } ;;
		esac
	done
	ok "$name ($out)"
}
field() { # name: value of key=value in $out
	local v=" $out "
	v=${v#* "$1"=}
	echo "${v%% *}"
}

msg=$'hello kinglet\n'
echo_args=(--send "$msg" --expect-bytes ${#msg})
FULL=(resumed=0 cert=1)
RESUMED=(resumed=1 offered=1 cert=0)

# ---- 1. openssl s_server ------------------------------------------------------
run "TLS 1.3 first connect saves a ticket (1 round trip)" \
	status=KL_OK version=TLSv1.3 round_trips=1 "${FULL[@]}" save_status=KL_OK \
	-- 4441 localhost ca.pem "${echo_args[@]}" --wait-ticket --session-out t13
run "TLS 1.3 second connect resumes (PSK-DHE: still 1 round trip)" \
	status=KL_OK version=TLSv1.3 round_trips=1 "${RESUMED[@]}" save_status=KL_OK "reply~olleh" \
	-- 4441 localhost ca.pem "${echo_args[@]}" --wait-ticket --session-in t13 --session-out t13b
run "TLS 1.3 the ticket from a resumed session resumes too" \
	status=KL_OK round_trips=1 "${RESUMED[@]}" \
	-- 4441 localhost ca.pem "${echo_args[@]}" --session-in t13b

run "TLS 1.2 (ticket) first connect: 2 round trips, session saved" \
	status=KL_OK version=TLSv1.2 round_trips=2 "${FULL[@]}" save_status=KL_OK \
	-- 4442 localhost ca.pem "${echo_args[@]}" --session-out t12
run "TLS 1.2 (ticket) resumed: abbreviated handshake, 1 round trip" \
	status=KL_OK version=TLSv1.2 round_trips=1 "${RESUMED[@]}" "reply~olleh" \
	-- 4442 localhost ca.pem "${echo_args[@]}" --session-in t12
run "TLS 1.2 (session id, -no_ticket) first connect: 2 round trips" \
	status=KL_OK version=TLSv1.2 round_trips=2 "${FULL[@]}" save_status=KL_OK \
	-- 4443 localhost ca.pem "${echo_args[@]}" --session-out id12
run "TLS 1.2 (session id) resumed: 1 round trip" \
	status=KL_OK version=TLSv1.2 round_trips=1 "${RESUMED[@]}" "reply~olleh" \
	-- 4443 localhost ca.pem "${echo_args[@]}" --session-in id12

# Damaged blobs: never a crash, never an error of their own; a full handshake.
for v in t13:4441 t12:4442; do
	blob=${v%%:*} port=${v#*:}
	run "$blob: one flipped byte is caught by the checksum" \
		status=KL_OK "${FULL[@]}" offered=0 "note~corrupt (checksum)" \
		-- "$port" localhost ca.pem --session-in "$blob" --corrupt flip
	run "$blob: random bytes are not a session" \
		status=KL_OK "${FULL[@]}" offered=0 "note~session blob:" \
		-- "$port" localhost ca.pem --session-in "$blob" --corrupt garbage
	run "$blob: truncated blob" \
		status=KL_OK "${FULL[@]}" offered=0 "note~session blob:" \
		-- "$port" localhost ca.pem --session-in "$blob" --corrupt truncate
	run "$blob: garbage inside a valid envelope reaches mbedtls_ssl_session_load safely" \
		status=KL_OK "${FULL[@]}" offered=0 "note~mbedTLS could not load it" \
		-- "$port" localhost ca.pem --session-in "$blob" --corrupt inner
	run "$blob: a ticket the server cannot decrypt: full handshake" \
		status=KL_OK "${FULL[@]}" offered=1 \
		-- "$port" localhost ca.pem --session-in "$blob" --corrupt ticket
done
run "empty session file: no offer, no error" \
	status=KL_OK "${FULL[@]}" offered=0 \
	-- 4441 localhost ca.pem --session-in /dev/null

# Names and servers.
run "TLS 1.3 ticket for localhost from the two-name server" \
	status=KL_OK "${FULL[@]}" save_status=KL_OK \
	-- 4444 localhost ca.pem "${echo_args[@]}" --wait-ticket --session-out a13
run "TLS 1.3 that ticket offered for b.test (same server, same ticket keys): not offered, b.test verified" \
	status=KL_OK version=TLSv1.3 "${FULL[@]}" offered=0 "note~for another server name" \
	-- 4444 b.test ca.pem --session-in a13
run "TLS 1.3 mbedTLS's own check: that ticket forced on the b.test context fails the handshake" \
	status=KL_ERR_TLS "reason~Bad input parameters" \
	-- 4444 b.test ca.pem --raw-session a13
run "TLS 1.2 session for localhost from the two-name server" \
	status=KL_OK round_trips=2 "${FULL[@]}" save_status=KL_OK \
	-- 4445 localhost ca.pem "${echo_args[@]}" --session-out a12
run "TLS 1.2 that session offered for b.test: not offered, b.test verified" \
	status=KL_OK version=TLSv1.2 round_trips=2 "${FULL[@]}" offered=0 "note~for another server name" \
	-- 4445 b.test ca.pem --session-in a12
run "TLS 1.3 ticket offered to another server of the same name: refused there, full handshake" \
	status=KL_OK version=TLSv1.3 "${FULL[@]}" offered=1 \
	-- 4446 localhost ca.pem --session-in t13
run "TLS 1.3 ticket offered to an untrusted server of the same name: certificate still checked" \
	status=KL_ERR_TLS_CERT "reason~not trusted" offered=1 \
	-- 4447 localhost ca.pem --session-in t13
run "trust anchors changed since the ticket was saved: not offered" \
	status=KL_OK "${FULL[@]}" offered=0 "note~other trust anchors" \
	-- 4441 localhost both.pem --session-in t13
run "TLS 1.2 session with a TLS 1.3-only client: not offered" \
	status=KL_OK version=TLSv1.3 "${FULL[@]}" offered=0 "note~TLS 1.3 required" \
	-- 4441 localhost ca.pem --tls13-only --session-in t12
run "TLS 1.3 ticket, server now TLS 1.2 only: mbedTLS pins the version, clean failure" \
	status=KL_ERR_TLS offered=1 \
	-- 4442 localhost ca.pem --session-in t13
run "... and the retry without the blob succeeds" \
	status=KL_OK version=TLSv1.2 round_trips=2 "${FULL[@]}" retried=1 \
	-- 4442 localhost ca.pem --session-in t13 --retry-without-session

# ---- 2. stunnel in front of Prosody's plaintext c2s port -----------------------
C2S=15222 TLS13=15223 TLS12=15224
pd=$tmp/prosody
mkdir -p "$pd/data"
cat >"$pd/prosody.cfg.lua" <<EOF
-- tls_resume_test.sh: plaintext c2s on loopback, reachable through stunnel only
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
-- TLS is stunnel's: Prosody sees plaintext from 127.0.0.1.
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = false
modules_enabled = { "roster"; "saslauth"; "disco"; "ping" }
modules_disabled = { "s2s"; "tls" }
VirtualHost "localhost"
EOF
cat >"$tmp/stunnel.conf" <<EOF
foreground = yes
pid =
debug = 4
output = $tmp/stunnel.log
[xmpps-tls13]
accept = 127.0.0.1:$TLS13
connect = 127.0.0.1:$C2S
cert = $tmp/server.pem
key = $tmp/server.key
[xmpps-tls12]
accept = 127.0.0.1:$TLS12
connect = 127.0.0.1:$C2S
cert = $tmp/server.pem
key = $tmp/server.key
sslVersionMax = TLSv1.2
EOF

deploy=1
if ! command -v prosody >/dev/null || ! command -v stunnel4 >/dev/null; then
	bad "stunnel + Prosody" "prosody or stunnel4 not installed (make deps)"
	deploy=0
fi
if [ "$deploy" = 1 ]; then
	timeout -k 2 20 prosodyctl --config "$pd/prosody.cfg.lua" register alice localhost alicepass \
		</dev/null >"$pd/prosodyctl.out" 2>&1 || { cat "$pd/prosodyctl.out" >&2; bad "prosodyctl register" "failed"; }
	setsid prosody --config "$pd/prosody.cfg.lua" -F </dev/null >"$pd/prosody.out" 2>&1 &
	server_pids+=($!)
	wait_port $C2S $! "$pd/prosody.log" || { bad "Prosody" "did not start"; deploy=0; }
	stunnel4 "$tmp/stunnel.conf" </dev/null >"$tmp/stunnel.out" 2>&1 &
	server_pids+=($!)
	{ wait_port $TLS13 $! "$tmp/stunnel.out" && wait_port $TLS12 $! "$tmp/stunnel.out"; } ||
		{ bad "stunnel" "did not start"; deploy=0; }
fi

header="<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
xmpp=(--send "$header" --until "</stream:features>")

# measure LABEL PORT VERSION: median handshake of full and resumed sessions.
runs=${KL_RESUME_RUNS:-15}
table=()
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "-")}'; }
measure() {
	local label=$1 port=$2 mode blob=$tmp/m-$2
	"$client" "$port" localhost ca.pem "${xmpp[@]}" --wait-ticket --session-out "$blob" >/dev/null 2>&1
	for mode in full resumed; do
		local us=() cpu=() hin=() hout=() rt=() res=() args=()
		[ "$mode" = resumed ] && args=(--session-in "$blob")
		for _ in $(seq "$runs"); do
			out=$("$client" "$port" localhost ca.pem "${xmpp[@]}" "${args[@]}" 2>&1) || continue
			us+=("$(field hs_us)"); cpu+=("$(field hs_cpu_us)")
			hin+=("$(field hs_in)"); hout+=("$(field hs_out)")
			rt+=("$(field round_trips)"); res+=("$(field resumed)")
		done
		table+=("$(printf '%-22s %-8s %3s/%-3s %5s %11s %10s %9s %9s' "$label" "$mode" \
			"$(printf '%s\n' "${res[@]}" | grep -c '^1$')" "${#res[@]}" \
			"$(printf '%s\n' "${rt[@]}" | median)" \
			"$(printf '%s\n' "${us[@]}" | median)" "$(printf '%s\n' "${cpu[@]}" | median)" \
			"$(printf '%s\n' "${hin[@]}" | median)" "$(printf '%s\n' "${hout[@]}" | median)")")
	done
}

if [ "$deploy" = 1 ]; then
	run "stunnel TLS 1.3 -> Prosody: first connect, stream features, ticket saved" \
		status=KL_OK version=TLSv1.3 round_trips=1 "${FULL[@]}" save_status=KL_OK "reply~PLAIN" \
		-- $TLS13 localhost ca.pem "${xmpp[@]}" --wait-ticket --session-out s13
	run "stunnel TLS 1.3 -> Prosody: resumed, Prosody answers" \
		status=KL_OK version=TLSv1.3 round_trips=1 "${RESUMED[@]}" "reply~PLAIN" \
		-- $TLS13 localhost ca.pem "${xmpp[@]}" --session-in s13
	run "stunnel TLS 1.2 -> Prosody: first connect, session saved" \
		status=KL_OK version=TLSv1.2 round_trips=2 "${FULL[@]}" save_status=KL_OK "reply~PLAIN" \
		-- $TLS12 localhost ca.pem "${xmpp[@]}" --session-out s12
	run "stunnel TLS 1.2 -> Prosody: resumed in 1 round trip" \
		status=KL_OK version=TLSv1.2 round_trips=1 "${RESUMED[@]}" "reply~PLAIN" \
		-- $TLS12 localhost ca.pem "${xmpp[@]}" --session-in s12
	if [ -n "$cli" ]; then
		if o=$(timeout 20 "$cli" --jid alice@localhost --password alicepass --host 127.0.0.1 \
			--port $TLS13 --tls direct --cafile ca.pem --send alice@localhost hi --stats 2>&1); then
			ok "kinglet CLI logs in through stunnel (direct TLS, first connect): $(tail -n 1 <<<"$o")"
		else
			bad "kinglet CLI through stunnel" "$o"
		fi
		# the CLI keeps the TLS session in its connection hints and resumes with it
		for i in 1 2; do
			timeout 20 "$cli" --jid alice@localhost --password alicepass --host 127.0.0.1 --port $TLS13 \
				--tls direct --cafile ca.pem --cache hints --stats >"cli$i.json" 2>&1
		done
		r1=$(tail -n 1 cli1.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tls_resumed"])' 2>/dev/null)
		r2=$(tail -n 1 cli2.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tls_resumed"])' 2>/dev/null)
		if [ "$r1" = 0 ] && [ "$r2" = 1 ]; then
			ok "kinglet CLI --cache: the second login resumes the TLS session: $(tail -n 1 cli2.json)"
		else
			bad "kinglet CLI resumption" "first $r1, second $r2: $(tail -n 2 cli2.json)"
		fi
	fi

	measure "stunnel+Prosody 1.3" $TLS13
	measure "stunnel+Prosody 1.2" $TLS12
	echo "Handshake through stunnel to Prosody (loopback, median of $runs runs; client side):"
	printf '%-22s %-8s %7s %5s %11s %10s %9s %9s\n' server session resumed rt wall_us cpu_us bytes_in bytes_out
	printf '%s\n' "${table[@]}"
	# Deterministic: a resumed handshake receives no certificate chain.
	for v in 1.3 1.2; do
		f=$(printf '%s\n' "${table[@]}" | awk -v l="$v" '$2==l && $3=="full" {print $8}')
		r=$(printf '%s\n' "${table[@]}" | awk -v l="$v" '$2==l && $3=="resumed" {print $8}')
		n=$(printf '%s\n' "${table[@]}" | awk -v l="$v" '$2==l && $3=="resumed" {print $4}')
		if [ -n "$f" ] && [ -n "$r" ] && [ "$r" -lt "$f" ] && [ "${n%%/*}" = "${n#*/}" ] && [ "${n%%/*}" -gt 0 ]; then
			ok "TLS $v through stunnel: every measured reconnect resumed ($n), $r bytes in instead of $f"
		else
			bad "TLS $v through stunnel measurement" "full=$f resumed=$r resumed_runs=$n"
		fi
	done
fi

echo "tls_resume: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
