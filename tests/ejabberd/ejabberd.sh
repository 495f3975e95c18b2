#!/bin/bash
# tests/ejabberd/ejabberd.sh — a throwaway, self-contained ejabberd 23.01
# (Debian package) for interoperability tests; the counterpart of
# tests/prosody/prosody.sh.
#
#   ejabberd.sh start DIR [--debug] [--c2s-port N] [--tls-port N]
#                         [--http-port N] [--dist-port N] [--pep]
#   ejabberd.sh stop DIR
#
# Run it inside tests/netns.sh (fixed ports; `start` refuses if one of them
# already accepts connections). Needs root: ejabberdctl, run as root,
# switches to the `ejabberd` user (su), so everything ejabberd writes in DIR
# belongs to that user, and DIR itself is made traversable (o+x).
#
# start: creates DIR if needed and everything in it, starts ejabberd in the
# foreground mode of ejabberdctl as a background process (setsid), waits
# (30 s max) until every listening port accepts connections, then registers
# the users that DIR does not have yet with `ejabberdctl register` (20 s max
# each). On failure prints the log tail, stops what it started and exits
# non-zero. Reuses an existing CA, certificate and spool (accounts) in DIR.
#   --debug        loglevel debug (every stanza in DIR/log/ejabberd.log).
#                  Also KL_EJABBERD_DEBUG=1.
#   ports (option beats environment beats default), all on 127.0.0.1 only:
#     --c2s-port  KL_C2S_PORT        5222  c2s, STARTTLS (starttls_required)
#     --tls-port  KL_C2S_TLS_PORT    5223  c2s direct TLS (XEP-0368, tls: true)
#     --http-port KL_HTTP_PORT       5280  plain HTTP, BOSH at /bosh
#     --dist-port KL_EJABBERD_DIST_PORT 5299  Erlang distribution (ejabberdctl
#                                      talks to the node here; no epmd)
#   --pep          PEP (XEP-0163) for tests/integration/app_test.sh: mod_pubsub
#                  with the plugins flat and pep (a user's PEP node is made
#                  by the first publish; +notify through mod_caps, which is
#                  always on). Off by default: the config is then unchanged.
#                  Also KL_EJABBERD_PEP=1.
#   KL_EJABBERD_USERS  extra "user:pass" words to register besides the
#                      default alice/alicepass, bob/bobpass, carol/carolpass.
#   Prints "ejabberd: started pid P in DIR" (P: the beam.smp process).
#
# stop: SIGTERM to the beam.smp PID in DIR/run/ejabberd.pid (ejabberd shuts
# down cleanly on it), waits up to 15 s (then SIGKILL), then makes sure every
# process of the start (the ejabberdctl/su launcher chain, erl_child_setup,
# recorded by PID in DIR/run/tree.pids) is gone. Never kills by name; refuses
# if the pidfile's PID is not a beam.smp naming DIR. Exit 0 also when
# nothing runs.
#
# No epmd: ERL_DIST_PORT makes ejabberdctl pass `-erl_epmd_port N
# -start_epmd false` to the node and to every ctl call, and the node listens
# for distribution on 127.0.0.1:N only (inet_dist_use_interface). The Erlang
# cookie is random per DIR and given on the command line, so nothing is
# written to the ejabberd user's home (/var/lib/ejabberd).
#
# Files in DIR:
#   ca.pem ca.der ca.key   test CA (ECDSA P-256), PEM and DER (root-owned key)
#   localhost.pem/.key     server cert, SAN DNS:localhost, IP:127.0.0.1
#                          (ECDSA P-256; ejabberd 23.01's fast_tls serves it
#                          over TLS 1.3 and 1.2), owned by ejabberd
#   ejabberd.yml           the config (rewritten at each start)
#   ejabberdctl.cfg inetrc ejabberdctl's settings (node, dist port, cookie)
#   spool/                 Mnesia database: accounts, rosters (ejabberd-owned)
#   log/ejabberd.log       ejabberd's log (error.log, crash dumps beside it)
#   run/ejabberd.pid       beam.smp's PID (written by ejabberd)
#   run/launcher.pid       the ejabberdctl process started by `start`
#   ejabberd.out           stdout/stderr of the node
#   users                  accounts already registered in spool/
# Certificates are valid from 2020-01-01 to 2049-12-31.
#
# Domain: localhost. Auth: internal, auth_password_format: scram with
# auth_scram_hash: sha256 (Debian's default format, the usual deployment).
# ejabberd then offers PLAIN and SCRAM-SHA-256 (plus SCRAM-SHA-256-PLUS over
# TLS): PLAIN is checked against the stored SCRAM keys, so both a PLAIN and
# a SCRAM login can be tested, but not SCRAM-SHA-1 (that would need the
# plain format, which offers PLAIN and SCRAM-SHA-1/-256/-512).
# No s2s listener, no in-band registration, no shaper (no throttling).
#
# The code ejabberd24.sh shares (config, ejabberdctl, start, accounts, stop)
# is in tests/lib/ejabberd_server.sh; this script has its options.
set -u
SELF=ejabberd.sh TAG=ejabberd EJCTL=ejabberdctl
# shellcheck source=../lib/ejabberd_server.sh
. "$(dirname "$0")/../lib/ejabberd_server.sh"

usage() { sed -n '6,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

ej_check_installed() {
	command -v ejabberdctl >/dev/null || die "ejabberd is not installed (make deps)"
}

cmd_start() {
	DEBUG=${KL_EJABBERD_DEBUG:-0}
	C2S_PORT=${KL_C2S_PORT:-5222}
	TLS_PORT=${KL_C2S_TLS_PORT:-5223}
	HTTP_PORT=${KL_HTTP_PORT:-5280}
	DIST_PORT=${KL_EJABBERD_DIST_PORT:-5299}
	PEP=${KL_EJABBERD_PEP:-0}
	while [ $# -gt 0 ]; do
		case $1 in
		--debug) DEBUG=1 ;;
		--c2s-port) C2S_PORT=$2; shift ;;
		--tls-port) TLS_PORT=$2; shift ;;
		--http-port) HTTP_PORT=$2; shift ;;
		--dist-port) DIST_PORT=$2; shift ;;
		--pep) PEP=1 ;;
		*) usage ;;
		esac
		shift
	done
	EJ_MODULES="mod_bosh mod_caps mod_carboncopy mod_disco mod_ping mod_roster
		mod_stream_mgmt mod_vcard mod_version"
	ej_start
}

# The end of the modules section: mod_pubsub with --pep, nothing otherwise.
ej_more_modules() {
	[ "$PEP" = 1 ] || return 0
	printf '  mod_pubsub:\n    plugins:\n      - flat\n      - pep\n'
}

srv_main "$@"
