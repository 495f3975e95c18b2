#!/bin/bash
# tests/prosody/prosody.sh — a throwaway, self-contained Prosody for tests.
#
#   prosody.sh start DIR [--wrong-cert] [--debug] [--c2s-port N]
#                        [--tls-port N] [--http-port N] [--s2s-port N]
#                        [--https-port N]
#   prosody.sh stop DIR
#   prosody.sh cert DIR NAME SAN   issue NAME.pem/NAME.key from DIR's CA,
#                                  SAN e.g. "DNS:device.test" (later tests)
#
# Run it inside tests/netns.sh (the ports are fixed; outside a namespace they
# may collide — `start` refuses if a port already accepts connections).
#
# start: creates DIR if needed and everything in it, starts Prosody as a
# background process (prosody -F, run_as_root), waits (10 s max) until all
# listening ports accept connections; on failure prints the log tail, stops
# what it started and exits non-zero. Reuses an existing CA, certificates and
# accounts in DIR, so `stop DIR; start DIR --wrong-cert` keeps the users.
#   --wrong-cert   serve DIR/wrong.pem (SAN DNS:wrong.test) instead of the
#                  localhost certificate (negative tests). Also KL_WRONG_CERT=1.
#   --debug        log at debug level (every stanza sent and received).
#                  Also KL_PROSODY_DEBUG=1.
#   ports (option beats environment beats default), all on 127.0.0.1 only:
#     --c2s-port  KL_C2S_PORT      5222  c2s, STARTTLS (required)
#     --tls-port  KL_C2S_TLS_PORT  5223  c2s direct TLS (XEP-0368)
#     --http-port KL_HTTP_PORT     5280  plain HTTP: BOSH /http-bind,
#                                        WebSocket /xmpp-websocket (both
#                                        considered secure)
#     --https-port KL_HTTPS_PORT   unset https (BOSH, WebSocket) with the
#                                        served certificate; off unless given
#     --s2s-port  KL_S2S_PORT      unset s2s is disabled unless given; with
#                                        it, mod_s2s_bidi (XEP-0288) is on, peers
#                                        must present certificates of DIR's CA
#                                        (s2s_secure_auth), unless --no-bidi
#   --no-bidi      s2s without mod_s2s_bidi (negative tests). Also KL_NO_BIDI=1.
#   KL_PROSODY_USERS  extra "user:pass" words to register besides the
#                     default alice/alicepass, bob/bobpass, carol/carolpass.
#   Prints "prosody: started pid P in DIR" on success.
#
# stop: SIGTERM to the PID in DIR/prosody.pid, waits up to 10 s until it is
# gone (then SIGKILL). Never kills anything by name; refuses if that PID's
# command line does not name DIR's config. Exit 0 also when nothing runs.
#
# Files in DIR:
#   ca.pem ca.der ca.key   test CA (ECDSA P-256), PEM and DER
#   localhost.pem/.key     server cert, SAN DNS:localhost, IP:127.0.0.1
#   wrong.pem/.key         server cert, SAN DNS:wrong.test
#   prosody.cfg.lua        the config (rewritten at each start)
#   prosody.pid            Prosody's pidfile
#   prosody.log            Prosody's log; prosody.out its stdout/stderr
#   data/                  accounts, rosters (internal storage)
# Certificates are valid from 2020-01-01 to 2049-12-31, so a device whose
# clock floor is its build date accepts them.
#
# Domain: localhost. Auth: internal_plain (PLAIN and SCRAM-SHA-1/-256 are
# offered), encryption required, no in-band registration.
set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
unset PROSODY_CONFIG

die() { echo "prosody.sh: $*" >&2; exit 1; }

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# --- certificates -----------------------------------------------------------

ca_config() {
	# Minimal `openssl ca` setup: it is the only 3.0 command that can set
	# notBefore in the past.
	local d=$1
	mkdir -p "$d/ca.db"
	[ -f "$d/ca.db/index.txt" ] || : > "$d/ca.db/index.txt"
	[ -f "$d/ca.db/serial" ] || echo 1000 > "$d/ca.db/serial"
	cat > "$d/ca.db/ca.cnf" <<EOF
[ ca ]
default_ca = kl
[ kl ]
dir = $d/ca.db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = \$ENV::KL_SAN
[ root ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF
}

make_ca() {
	local d=$1
	[ -f "$d/ca.pem" ] && [ -f "$d/ca.key" ] && return 0
	ca_config "$d"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$d/ca.key" 2>/dev/null || die "openssl: CA key failed"
	openssl req -new -key "$d/ca.key" -subj "/CN=kinglet test CA" \
		-out "$d/ca.csr" || die "openssl: CA request failed"
	KL_SAN=DNS:unused openssl ca -batch -selfsign -config "$d/ca.db/ca.cnf" \
		-keyfile "$d/ca.key" -in "$d/ca.csr" -out "$d/ca.pem" -notext \
		-startdate 20200101000000Z -enddate 20491231235959Z \
		-extensions root >/dev/null 2>"$d/openssl.err" \
		|| { cat "$d/openssl.err" >&2; die "openssl: CA certificate failed"; }
	openssl x509 -in "$d/ca.pem" -outform DER -out "$d/ca.der"
	rm -f "$d/ca.csr"
}

# issue DIR NAME SAN
issue() {
	local d=$1 name=$2 san=$3
	[ -f "$d/$name.pem" ] && [ -f "$d/$name.key" ] && return 0
	ca_config "$d"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$d/$name.key" 2>/dev/null || die "openssl: key for $name failed"
	local cn=${san#*:}; cn=${cn%%,*}
	openssl req -new -key "$d/$name.key" -subj "/CN=$cn" -out "$d/$name.csr" \
		|| die "openssl: request for $name failed"
	KL_SAN=$san openssl ca -batch -config "$d/ca.db/ca.cnf" -cert "$d/ca.pem" \
		-keyfile "$d/ca.key" -in "$d/$name.csr" -out "$d/$name.pem" -notext \
		-startdate 20200101000000Z -enddate 20491231235959Z \
		-extensions leaf >/dev/null 2>"$d/openssl.err" \
		|| { cat "$d/openssl.err" >&2; die "openssl: certificate for $name failed"; }
	rm -f "$d/$name.csr"
	# Prosody drops privileges for nothing here (run_as_root), but keep keys
	# private anyway.
	chmod 600 "$d/$name.key"
}

# --- helpers ----------------------------------------------------------------

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Alive and not a zombie (PID 1 here may not reap re-parented children).
pid_alive() {
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

prosodyctl_in() {
	# prosodyctl was seen hanging (e.g. `about`); never wait on it unbounded.
	timeout -k 2 20 prosodyctl --config "$DIR/prosody.cfg.lua" "$@" </dev/null
}

write_config() {
	local cert=localhost level=info s2s
	[ "$WRONG" = 1 ] && cert=wrong
	[ "$DEBUG" = 1 ] && level=debug
	local cafile="" bidi=""
	if [ -n "$S2S_PORT" ]; then
		s2s="s2s_ports = { $S2S_PORT }
s2s_interfaces = { \"127.0.0.1\" }
s2s_secure_auth = true
modules_disabled = { }"
		cafile="cafile = \"$DIR/ca.pem\";"
		[ "${NO_BIDI:-0}" = 1 ] || bidi='"s2s_bidi";'
	else
		s2s='s2s_ports = { }
modules_disabled = { "s2s", "s2s_auth_certs", "dialback" }'
	fi
	cat > "$DIR/prosody.cfg.lua" <<EOF
-- Generated by tests/prosody/prosody.sh; rewritten at every start.
run_as_root = true
pidfile = "$DIR/prosody.pid"
data_path = "$DIR/data"
certificates = "$DIR/certs"
log = { $level = "$DIR/prosody.log" }
daemonize = false -- started with -F as a background process by prosody.sh

network_settings = { nagle = false }

interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $C2S_PORT }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { $TLS_PORT }
c2s_direct_tls_interfaces = { "127.0.0.1" }
legacy_ssl_ports = { }
http_ports = { $HTTP_PORT }
http_interfaces = { "127.0.0.1" }
https_ports = { $HTTPS_PORT }
https_ssl = { certificate = "$DIR/$cert.pem"; key = "$DIR/$cert.key"; }
https_interfaces = { "127.0.0.1" }
component_ports = { }
http_default_host = "localhost"
consider_bosh_secure = true
consider_websocket_secure = true

-- s2s: disabled unless KL_S2S_PORT / --s2s-port is given.
-- s2s bidi (XEP-0288) goes here: add "s2s_bidi" to modules_enabled and the
-- device CA to ssl.cafile.
$s2s

ssl = {
	certificate = "$DIR/$cert.pem";
	key = "$DIR/$cert.key";
	$cafile
}

authentication = "internal_plain"
storage = "internal"
c2s_require_encryption = true
s2s_require_encryption = true
allow_registration = false

modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "ping"; "bosh"; "websocket";
	"smacks"; "carbons"; "private"; "vcard_legacy"; "version"; "time";
	$bidi
}

VirtualHost "localhost"
	ssl = {
		certificate = "$DIR/$cert.pem";
		key = "$DIR/$cert.key";
		$cafile
	}
EOF
}

# --- commands ---------------------------------------------------------------

cmd_start() {
	WRONG=${KL_WRONG_CERT:-0}
	DEBUG=${KL_PROSODY_DEBUG:-0}
	C2S_PORT=${KL_C2S_PORT:-5222}
	TLS_PORT=${KL_C2S_TLS_PORT:-5223}
	HTTP_PORT=${KL_HTTP_PORT:-5280}
	HTTPS_PORT=${KL_HTTPS_PORT:-}
	S2S_PORT=${KL_S2S_PORT:-}
	NO_BIDI=${KL_NO_BIDI:-0}
	while [ $# -gt 0 ]; do
		case $1 in
		--wrong-cert) WRONG=1 ;;
		--debug) DEBUG=1 ;;
		--c2s-port) C2S_PORT=$2; shift ;;
		--tls-port) TLS_PORT=$2; shift ;;
		--http-port) HTTP_PORT=$2; shift ;;
		--https-port) HTTPS_PORT=$2; shift ;;
		--s2s-port) S2S_PORT=$2; shift ;;
		--no-bidi) NO_BIDI=1 ;;
		*) usage ;;
		esac
		shift
	done
	command -v prosody >/dev/null || die "prosody is not installed (make deps)"
	command -v openssl >/dev/null || die "openssl is not installed (make deps)"

	local ports="$C2S_PORT $TLS_PORT $HTTP_PORT $HTTPS_PORT $S2S_PORT" p
	if [ -f "$DIR/prosody.pid" ] && pid_alive "$(cat "$DIR/prosody.pid")"; then
		die "a Prosody already runs from $DIR (pid $(cat "$DIR/prosody.pid")); stop it first"
	fi
	for p in $ports; do
		port_open "$p" && die "127.0.0.1:$p already accepts connections (run inside tests/netns.sh)"
	done

	mkdir -p "$DIR/data" "$DIR/certs" || die "cannot create $DIR"
	make_ca "$DIR"
	issue "$DIR" localhost "DNS:localhost,IP:127.0.0.1"
	issue "$DIR" wrong "DNS:wrong.test"
	write_config
	: > "$DIR/prosody.log"

	local u pass
	for u in alice:alicepass bob:bobpass carol:carolpass ${KL_PROSODY_USERS:-}; do
		pass=${u#*:}; u=${u%%:*}
		[ -f "$DIR/data/localhost/accounts/$u.dat" ] && continue
		prosodyctl_in register "$u" localhost "$pass" >"$DIR/prosodyctl.out" 2>&1 \
			|| { cat "$DIR/prosodyctl.out" >&2; die "prosodyctl register $u failed (or timed out)"; }
	done

	rm -f "$DIR/prosody.pid"
	# setsid: not in the caller's process group, so a ^C in a test script
	# does not take Prosody down before `stop` runs; stop/netns.sh kill by PID.
	setsid prosody --config "$DIR/prosody.cfg.lua" -F \
		</dev/null >"$DIR/prosody.out" 2>&1 &
	local pid=$! up="" down why=""
	# Probe each port until it answers once (every probe is a log line),
	# give up at the first error in the log or after 10 s.
	for _ in $(seq 100); do
		down=""
		for p in $ports; do
			case " $up " in *" $p "*) continue ;; esac
			if port_open "$p"; then up="$up $p"; else down="$down $p"; fi
		done
		[ -z "$down" ] && break
		if ! pid_alive "$pid"; then why="Prosody exited"; break; fi
		if grep -qE '	(error|fatal)	' "$DIR/prosody.log"; then why="errors in the log"; break; fi
		sleep 0.1
	done
	if [ -n "$down" ]; then
		echo "prosody.sh: Prosody did not come up on 127.0.0.1 port(s)$down (${why:-timeout after 10 s})" >&2
		echo "--- $DIR/prosody.out" >&2; grep -v '^$' "$DIR/prosody.out" | tail -n 15 >&2
		echo "--- $DIR/prosody.log (warnings and errors)" >&2
		grep -vE '	(info|debug)	' "$DIR/prosody.log" | head -n 20 >&2
		echo "--- $DIR/prosody.log (tail)" >&2; tail -n 10 "$DIR/prosody.log" >&2
		if pid_alive "$pid"; then
			kill -TERM "$pid"
			for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.1; done
			pid_alive "$pid" && kill -KILL "$pid"
		fi
		rm -f "$DIR/prosody.pid"
		exit 1
	fi
	# Prosody writes its pidfile itself (mod_posix); wait briefly for it.
	for _ in $(seq 20); do [ -s "$DIR/prosody.pid" ] && break; sleep 0.05; done
	[ -s "$DIR/prosody.pid" ] || echo "$pid" > "$DIR/prosody.pid"
	[ "$(cat "$DIR/prosody.pid")" = "$pid" ] \
		|| echo "prosody.sh: warning: pidfile says $(cat "$DIR/prosody.pid"), started $pid" >&2
	if grep -qE '	(error|fatal)	' "$DIR/prosody.log"; then
		echo "prosody.sh: warning: errors in $DIR/prosody.log:" >&2
		grep -E '	(error|fatal)	' "$DIR/prosody.log" | head -5 >&2
	fi
	echo "prosody: started pid $pid in $DIR"
}

cmd_stop() {
	if [ ! -f "$DIR/prosody.pid" ]; then
		echo "prosody: not running (no $DIR/prosody.pid)"
		return 0
	fi
	local pid
	pid=$(cat "$DIR/prosody.pid")
	case $pid in ''|*[!0-9]*) die "bad pidfile $DIR/prosody.pid" ;; esac
	if ! pid_alive "$pid"; then
		rm -f "$DIR/prosody.pid"
		echo "prosody: pid $pid was not running"
		return 0
	fi
	# Make sure the PID is our Prosody, not a recycled number.
	tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$DIR/prosody.cfg.lua" \
		|| die "pid $pid is not the Prosody of $DIR; not killing it"
	kill -TERM "$pid"
	for _ in $(seq 100); do
		pid_alive "$pid" || break
		sleep 0.1
	done
	if pid_alive "$pid"; then
		echo "prosody.sh: pid $pid ignored SIGTERM for 10 s; SIGKILL" >&2
		kill -KILL "$pid"
		sleep 0.2
	fi
	pid_alive "$pid" && die "pid $pid is still alive"
	rm -f "$DIR/prosody.pid"
	echo "prosody: stopped pid $pid"
}

[ $# -ge 2 ] || usage
cmd=$1 DIR=$2
shift 2
case $DIR in /*) ;; *) DIR=$(pwd)/$DIR ;; esac
DIR=${DIR%/}
case $cmd in
start) cmd_start "$@" ;;
stop) cmd_stop ;;
cert)
	[ $# -eq 2 ] || usage
	[ -f "$DIR/ca.key" ] || die "no CA in $DIR (start it once first)"
	issue "$DIR" "$1" "$2" && echo "$DIR/$1.pem"
	;;
*) usage ;;
esac
