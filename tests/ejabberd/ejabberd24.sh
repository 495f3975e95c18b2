#!/bin/bash
# tests/ejabberd/ejabberd24.sh — a throwaway, self-contained ejabberd 24.12
# (Debian bookworm-backports) for the SASL2 / Bind2 / FAST / inline stream
# management tests; tests/ejabberd/ejabberd.sh (ejabberd 23.01, which has no
# SASL2) with another ejabberd and other ports.
#
#   ejabberd24.sh start DIR [--debug] [--c2s-port N] [--tls-port N]
#                           [--dist-port N] [--fast-ttl SECONDS] [--no-fast]
#   ejabberd24.sh stop DIR
#
# Decision: ejabberd 24.12 is NOT installed as a package (that would replace
# the 23.01 that tests/ejabberd/ejabberd.sh and check-ejabberd use, and its
# erlang-p1-* libraries with newer ones). `make deps` (scripts/deps.sh, step
# 2b) unpacks the backports .debs of ejabberd and of the 15 erlang libraries
# it needs newer versions of (erlang-jose, erlang-p1-*) with `dpkg -x` into
# third_party/ejabberd24/, and third_party/ejabberd24/ejabberdctl is the
# packaged ejabberdctl with ERL_LIBS pointing at the unpacked ejabberd and
# libraries (ERL_LIBS comes before the system's /usr/lib/erlang/lib in the
# code path, so the node loads ejabberd 24.12 and the newer libraries, the
# rest from bookworm's Erlang/OTP 25). Nothing installed changes.
# KL_EJABBERD24_HOME overrides the tree.
#
# Run it inside tests/netns.sh. Needs root: ejabberdctl, run as root,
# switches to the `ejabberd` user (the one of the installed 23.01 package).
# Ports, on 127.0.0.1 only, chosen not to collide with ejabberd.sh's
# (5222/5223/5280/5299) nor prosody13.sh's (5232/5233); option beats
# environment beats default:
#     --c2s-port  KL_EJ24_C2S_PORT   5242  c2s, STARTTLS (starttls_required)
#     --tls-port  KL_EJ24_TLS_PORT   5243  c2s direct TLS (XEP-0368, tls: true)
#     --dist-port KL_EJ24_DIST_PORT  5298  Erlang distribution (no epmd)
# No HTTP listener, no s2s.
#   --fast-ttl S  FAST token lifetime (mod_auth_fast token_lifetime,
#                 default 2592000 s = 30 days; token_refresh_age, default
#                 86400 s, set to min(S, 86400)). ejabberd 24.12 bug: the
#                 option is parsed to milliseconds and added to a time in
#                 seconds, so `token_lifetime: N` means N*1000 s, and it
#                 refuses values under 1 s: the shortest lifetime is 1000 s.
#                 S is rounded up to a multiple of 1000 (noted on stderr).
#                 Also KL_EJ24_FAST_TTL.
#   --no-fast     without mod_auth_fast (negative tests). KL_EJ24_NO_FAST=1.
#   --debug       loglevel debug. KL_EJABBERD_DEBUG=1.
#   KL_EJABBERD_USERS  extra "user:pass" words besides alice/alicepass,
#                      bob/bobpass, carol/carolpass.
#   Prints "ejabberd24: started pid P in DIR" (P: the beam.smp process).
#
# SASL2 (XEP-0388) and Bind2 (XEP-0386) are built into ejabberd 24.12's c2s;
# it offers them only when the client's stream header carries `from`.
# Modules: mod_auth_fast (FAST, XEP-0484), mod_stream_mgmt (inline SM in
# Bind2/SASL2), mod_client_state (CSI), mod_carboncopy, mod_disco, mod_ping,
# mod_roster. Auth: internal, auth_password_format scram (sha256), as in
# ejabberd.sh: PLAIN, SCRAM-SHA-256(-PLUS).
#
# stop, the files in DIR, no epmd, the cookie: as tests/ejabberd/ejabberd.sh.
# The code shared with it is in tests/lib/ejabberd_server.sh; this script
# has its options and the mod_auth_fast config.
set -u
SELF=ejabberd24.sh TAG=ejabberd24
# shellcheck source=../lib/ejabberd_server.sh
. "$(dirname "$0")/../lib/ejabberd_server.sh"
EJ_HOME=${KL_EJABBERD24_HOME:-$SRV_ROOT/third_party/ejabberd24}
EJCTL=$EJ_HOME/ejabberdctl

usage() { sed -n '7,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

ej_check_installed() { [ -x "$EJCTL" ] || die "no ejabberd 24.12 at $EJCTL (make deps)"; }

# The end of the modules section: mod_auth_fast, with --fast-ttl's options;
# an empty line with --no-fast.
ej_more_modules() {
	local fast="  mod_auth_fast: {}"
	if [ -n "$FAST_TTL" ]; then
		local age=$FAST_TTL
		[ "$age" -gt 86400 ] && age=86400
		# ejabberd 24.12 quirk: econf:timeout(second) turns the option
		# into milliseconds, but mod_auth_fast adds it to the time in
		# seconds, so `token_lifetime: N` gives tokens of N*1000 s, and
		# the option refuses less than 1 s: 1000 s is the shortest.
		local n=$(( (FAST_TTL + 999) / 1000 )) a=$(( (age + 999) / 1000 ))
		[ $((n * 1000)) = "$FAST_TTL" ] || echo "$SELF: note: --fast-ttl $FAST_TTL: ejabberd 24.12's tokens live $((n * 1000)) s (token_lifetime: $n, see the header)" >&2
		fast="  mod_auth_fast:
    token_lifetime: $n
    token_refresh_age: $a"
	fi
	[ "$NO_FAST" = 1 ] && fast=""
	echo "$fast"
}

cmd_start() {
	DEBUG=${KL_EJABBERD_DEBUG:-0}
	C2S_PORT=${KL_EJ24_C2S_PORT:-5242}
	TLS_PORT=${KL_EJ24_TLS_PORT:-5243}
	DIST_PORT=${KL_EJ24_DIST_PORT:-5298}
	FAST_TTL=${KL_EJ24_FAST_TTL:-}
	NO_FAST=${KL_EJ24_NO_FAST:-0}
	while [ $# -gt 0 ]; do
		case $1 in
		--debug) DEBUG=1 ;;
		--c2s-port) C2S_PORT=$2; shift ;;
		--tls-port) TLS_PORT=$2; shift ;;
		--dist-port) DIST_PORT=$2; shift ;;
		--fast-ttl) FAST_TTL=$2; shift ;;
		--no-fast) NO_FAST=1 ;;
		*) usage ;;
		esac
		shift
	done
	case $FAST_TTL in ''|[1-9]|[1-9][0-9]*) ;; *) die "--fast-ttl wants seconds, got '$FAST_TTL'" ;; esac
	HTTP_PORT=""   # no HTTP listener
	EJ_MODULES="mod_caps mod_carboncopy mod_client_state mod_disco mod_ping mod_roster
		mod_stream_mgmt mod_version"
	ej_start
}

srv_main "$@"
