#!/bin/bash
# tests/integration/tls_test.sh CLIENT
#
# The mbedTLS port (port/mbedtls/kl_tls.c) against `openssl s_server`, inside
# a loopback-only network namespace (tests/netns.sh; needs root). A throwaway
# CA and certificates are made in a temp dir; every server is started on a
# test port and stopped by its PID.
#
# CLIENT is build/tests/integration/tls_client (tests/integration/tls_client.c).
# KL_TEST_WRAP, if set, prefixes each client run (e.g. valgrind -q).
# Last line: "tls: N passed, N failed"; exit status non-zero on any failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"

client=${1:-build/tests/integration/tls_client}
[ -x "$client" ] || { echo "tls_test: no client binary at $client (make $client)" >&2; echo "tls: 0 passed, 1 failed"; exit 1; }
client=$(cd "$(dirname "$client")" && pwd)/$(basename "$client")

tmp=$(mktemp -d /tmp/kl-tls-test.XXXXXX)
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

# ---- throwaway PKI --------------------------------------------------------
cd "$tmp" || exit 1
pki_log=$tmp/pki.log
mkca() { # name
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" &&
	openssl req -x509 -new -key "$1.key" -subj "/CN=kinglet test $1" -days 2 -out "$1.pem" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
mkcert() { # name dnsname ca [keyalg-args...]
	local name=$1 dns=$2 ca=$3
	shift 3
	openssl genpkey "$@" -out "$name.key" &&
	openssl req -new -key "$name.key" -subj "/CN=$dns" -out "$name.csr" &&
	printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
		"$dns" >"$name.ext" &&
	openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 2 \
		-extfile "$name.ext" -out "$name.pem"
}
EC=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256)
if ! {
	mkca ca && mkca otherca &&
	mkcert server localhost ca "${EC[@]}" &&
	mkcert wrongname wrong.example ca "${EC[@]}" &&
	mkcert rsaserver localhost ca -algorithm RSA -pkeyopt rsa_keygen_bits:2048
} >"$pki_log" 2>&1; then
	cat "$pki_log" >&2
	echo "tls: 0 passed, 1 failed (could not create the test PKI)"
	exit 1
fi

# ---- servers ----------------------------------------------------------------
# start_server PORT CERT [s_server args...]: -rev echoes each line reversed.
start_server() {
	local port=$1 cert=$2
	shift 2
	openssl s_server -accept "127.0.0.1:$port" -cert "$cert.pem" -key "$cert.key" \
		-rev -quiet "$@" </dev/null >"$tmp/server-$port.log" 2>&1 &
	server_pids+=($!)
	for _ in $(seq 100); do
		ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
		kill -0 "$!" 2>/dev/null || break
		sleep 0.05
	done
	echo "tls_test: openssl s_server on port $port did not start:" >&2
	cat "$tmp/server-$port.log" >&2
	return 1
}

start_server 4431 server -tls1_3 || bad "server tls1.3" "not started"
start_server 4432 server -tls1_2 || bad "server tls1.2" "not started"
start_server 4433 wrongname || bad "server wrong name" "not started"
start_server 4434 rsaserver -tls1_3 || bad "server rsa" "not started"

# A raw server that answers the ClientHello with a record header announcing
# 18000 bytes (> 2^14 + 256: no peer may send it; a device with small
# MBEDTLS_SSL_IN_CONTENT_LEN meets the same failure with legal records).
cat >"$tmp/bigrecord.py" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
c, _ = s.accept()
try:
    c.recv(4096)
    n = 18000
    c.sendall(bytes([22, 3, 3, n >> 8, n & 255]) + bytes(n))
    c.recv(4096)
except OSError:
    pass
PY
python3 "$tmp/bigrecord.py" 4435 >"$tmp/server-4435.log" 2>&1 &
server_pids+=($!)
for _ in $(seq 100); do ss -Hltn "sport = :4435" | grep -q . && break; sleep 0.05; done

# run NAME EXPECTED-FIELDS... -- CLIENT-ARGS...: every field (key=value or
# key~substring) must appear in the client's result line.
run() {
	local name=$1 out f key val rc
	shift
	local want=()
	while [ "$1" != "--" ]; do want+=("$1"); shift; done
	shift
	# shellcheck disable=SC2086 # KL_TEST_WRAP is a command line, e.g. "valgrind -q --error-exitcode=9"
	out=$(${KL_TEST_WRAP:-} "$client" "$@" 2>&1)
	rc=$?
	# 0: success, 1: an expected failure was reported; anything else is a
	# crash, bad usage or (under KL_TEST_WRAP=valgrind) a memory error.
	[ "$rc" -le 1 ] || { bad "$name" "client exited with $rc: $out"; return; }
	for f in "${want[@]}"; do
		case $f in
		*~*) key=${f%%~*}; val=${f#*~}
		     [[ $out == *"$key=\""*"$val"* ]] || { bad "$name" "expected $key to contain '$val'; got: $out"; return; } ;;
		*)   [[ " $out " == *" $f "* ]] || { bad "$name" "expected $f; got: $out"; return; } ;;
		esac
	done
	ok "$name ($out)"
}

# -rev: s_server answers each line reversed.
msg='hello kinglet over TLS'
rev=$(printf '%s' "$msg" | rev)

run "TLS 1.3 handshake, one round trip, echo" \
	status=KL_OK version=TLSv1.3 round_trips=1 "reply=\"$rev\\n\"" \
	-- 4431 localhost ca.pem --send "$msg"$'\n' --expect-bytes $(( ${#msg} + 1 ))
run "TLS 1.2 handshake, two round trips, echo" \
	status=KL_OK version=TLSv1.2 round_trips=2 "reply=\"$rev\\n\"" \
	-- 4432 localhost ca.pem --send "$msg"$'\n' --expect-bytes $(( ${#msg} + 1 ))
run "TLS 1.3 with an RSA certificate (RSASSA-PSS)" \
	status=KL_OK version=TLSv1.3 round_trips=1 \
	-- 4434 localhost ca.pem
run "certificate for the wrong name is refused" \
	status=KL_ERR_TLS_CERT "reason~certificate name mismatch (expected localhost)" \
	-- 4433 localhost ca.pem
run "certificate from an untrusted CA is refused" \
	status=KL_ERR_TLS_CERT "reason~certificate not trusted" \
	-- 4431 localhost otherca.pem
run "TLS 1.3-only client refuses a TLS 1.2 server" \
	status=KL_ERR_TLS \
	-- 4432 localhost ca.pem --tls13-only
run "oversize record is named" \
	status=KL_ERR_TLS_RECORD_TOO_LARGE "reason~record of 18000 bytes" \
	-- 4435 localhost ca.pem
# A client built with small record buffers (make check-tls-small) meets a
# legal 8 KB record from s_server: the failure must be named.
in_len=$("$client" --in-content-len 2>/dev/null || echo 16384)
if [ "$in_len" -lt 8000 ]; then
	big=$(head -c 8000 /dev/zero | tr '\0' x)
	run "8 KB record with MBEDTLS_SSL_IN_CONTENT_LEN=$in_len is named" \
		status=KL_ERR_TLS_RECORD_TOO_LARGE "reason~exceeds MBEDTLS_SSL_IN_CONTENT_LEN ($in_len)" \
		-- 4431 localhost ca.pem --send "$big"$'\n'
fi
run "no CA file is a setup error" \
	status=KL_ERR_TLS_SETUP "reason~reading ca_file" \
	-- 4431 localhost "$tmp/nonexistent.pem"

echo "tls: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
