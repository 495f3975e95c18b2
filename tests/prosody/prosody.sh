#!/bin/bash
# tests/prosody/prosody.sh — a throwaway, self-contained Prosody for tests.
#
#   prosody.sh start DIR [--wrong-cert] [--debug] [--c2s-port N]
#                        [--tls-port N] [--http-port N] [--s2s-port N]
#                        [--https-port N] [--app] [--roster USER:N]...
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
#   --app          the application-level services (tests/integration/app_test.sh):
#                  PEP (mod_pep: XEP-0163, default access model presence,
#                  +notify through XEP-0115 caps), CSI (mod_csi_simple,
#                  XEP-0352: unimportant stanzas held while the client is
#                  inactive) and a MUC component conference.localhost
#                  (mod_muc, XEP-0045: anyone may create rooms; a new room is
#                  locked until its owner configures it; 20 messages of
#                  history). No offline storage (mod_offline off): a message
#                  to a resource that is gone is not kept for the next
#                  login of the account. Off by default: the config is then
#                  unchanged.
#                  Also KL_PROSODY_APP=1.
#   --roster USER:N   (repeatable) before the start, replace USER's roster
#                  (internal storage, DIR/data/localhost/roster/USER.dat) by N
#                  items: JID rNNNN@roster.test (4 digits or more, from
#                  r0001), name "Contact NNNN", group "bulk", subscription
#                  none (no presence traffic at login), roster version 1.
#                  USER must be an account (the default three or one of
#                  KL_PROSODY_USERS). Also KL_PROSODY_ROSTER="USER:N ...".
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
#
# The code prosody13.sh shares (accounts, launch, wait, stop) is in
# tests/lib/prosody_server.sh; this script has its options and config.
set -u
SELF=prosody.sh TAG=prosody P_WHAT=Prosody
PROSODY=prosody PROSODYCTL=prosodyctl P_PIDFILE=prosody.pid P_AS=()
# shellcheck disable=SC2034 # read by srv_main
SRV_LAX_STOP=1   # `stop DIR` has always ignored further words
# shellcheck source=../lib/prosody_server.sh
. "$(dirname "$0")/../lib/prosody_server.sh"

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

write_config() {
	local cert=localhost level=info s2s
	[ "$WRONG" = 1 ] && cert=wrong
	[ "$DEBUG" = 1 ] && level=debug
	local cafile="" bidi="" app="" muc="" off=""
	if [ "$APP" = 1 ]; then
		app=' "pep"; "csi_simple";'
		off='"offline"'
		muc='
Component "conference.localhost" "muc"
	restrict_room_creation = false
	max_history_messages = 20'
	fi
	if [ -n "$S2S_PORT" ]; then
		s2s="s2s_ports = { $S2S_PORT }
s2s_interfaces = { \"127.0.0.1\" }
s2s_secure_auth = true
modules_disabled = { ${off:+$off }}"
		cafile="cafile = \"$DIR/ca.pem\";"
		[ "${NO_BIDI:-0}" = 1 ] || bidi='"s2s_bidi";'
	else
		s2s='s2s_ports = { }
modules_disabled = { "s2s", "s2s_auth_certs", "dialback"'"${off:+, $off}"' }'
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
	$bidi$app
}

VirtualHost "localhost"
	ssl = {
		certificate = "$DIR/$cert.pem";
		key = "$DIR/$cert.key";
		$cafile
	}
EOF
	if [ -n "$muc" ]; then echo "$muc" >> "$DIR/prosody.cfg.lua"; fi
}

# write_roster USER N: DIR/data/localhost/roster/USER.dat with N items (see
# --roster in the header), in Prosody 0.12's internal storage format.
write_roster() {
	local user=$1 n=$2
	case $n in ''|*[!0-9]*) die "--roster wants USER:N, got '$user:$n'" ;; esac
	case $user in ''|*[!a-z0-9]*) die "--roster: user '$user' (lower-case letters and digits only)" ;; esac
	mkdir -p "$DIR/data/localhost/roster" || die "cannot create $DIR/data/localhost/roster"
	awk -v n="$n" 'BEGIN {
		print "return {";
		print "\t[false] = {";
		print "\t\t[\"version\"] = 1;";
		print "\t\t[\"pending\"] = {};";
		print "\t};";
		for (i = 1; i <= n; i++) {
			printf "\t[\"r%04d@roster.test\"] = {\n", i;
			print "\t\t[\"subscription\"] = \"none\";";
			printf "\t\t[\"name\"] = \"Contact %04d\";\n", i;
			print "\t\t[\"groups\"] = {";
			print "\t\t\t[\"bulk\"] = true;";
			print "\t\t};";
			print "\t};";
		}
		print "};";
	}' > "$DIR/data/localhost/roster/$user.dat" || die "cannot write the roster of $user"
}

p_setup() {
	local r
	issue "$DIR" wrong "DNS:wrong.test"
	for r in $ROSTERS; do
		case $r in *:*) ;; *) die "--roster wants USER:N, got '$r'" ;; esac
		write_roster "${r%%:*}" "${r#*:}"
	done
}

cmd_start() {
	WRONG=${KL_WRONG_CERT:-0}
	DEBUG=${KL_PROSODY_DEBUG:-0}
	C2S_PORT=${KL_C2S_PORT:-5222}
	TLS_PORT=${KL_C2S_TLS_PORT:-5223}
	HTTP_PORT=${KL_HTTP_PORT:-5280}
	HTTPS_PORT=${KL_HTTPS_PORT:-}
	S2S_PORT=${KL_S2S_PORT:-}
	NO_BIDI=${KL_NO_BIDI:-0}
	APP=${KL_PROSODY_APP:-0}
	ROSTERS=${KL_PROSODY_ROSTER:-}
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
		--app) APP=1 ;;
		--roster) ROSTERS="$ROSTERS $2"; shift ;;
		*) usage ;;
		esac
		shift
	done
	command -v prosody >/dev/null || die "prosody is not installed (make deps)"
	command -v openssl >/dev/null || die "openssl is not installed (make deps)"
	p_start "$C2S_PORT $TLS_PORT $HTTP_PORT $HTTPS_PORT $S2S_PORT"
}

cmd_other() {
	if [ "$1" != cert ] || [ $# -ne 3 ]; then usage; fi
	[ -f "$DIR/ca.key" ] || die "no CA in $DIR (start it once first)"
	issue "$DIR" "$2" "$3" && echo "$DIR/$2.pem"
}

srv_main "$@"
