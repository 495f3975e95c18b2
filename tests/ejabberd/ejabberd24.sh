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
set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
unset EJABBERD_CONFIG_PATH EJABBERDCTL_CONFIG_PATH ERL_DIST_PORT ERL_EPMD_ADDRESS \
	ERL_EPMD_PORT ERL_INETRC ERL_LIBS ERL_FLAGS ERL_AFLAGS ERL_ZFLAGS ERL_OPTIONS \
	EJABBERD_PID_PATH CONTRIB_MODULES_PATH CONTRIB_MODULES_CONF_DIR SPOOL_DIR LOGS_DIR

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
EJ_HOME=${KL_EJABBERD24_HOME:-$ROOT/third_party/ejabberd24}
EJCTL=$EJ_HOME/ejabberdctl
EJ_USER=ejabberd
START_WAIT=30   # seconds for the listeners to come up
STOP_WAIT=15    # seconds for a clean shutdown after SIGTERM

die() { echo "ejabberd24.sh: $*" >&2; exit 1; }

usage() { sed -n '7,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# --- certificates --------------------------------------------------------------

# make_ca, issue: the shared test CA
# shellcheck source=../lib/test_ca.sh
. "$(dirname "$0")/../lib/test_ca.sh"

# --- helpers ----------------------------------------------------------------

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Alive and not a zombie (PID 1 here may not reap re-parented children).
pid_alive() {
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# The PID and every descendant of it, one per line (walks /proc by PPID).
pid_tree() {
	local all kids p
	all=$(for s in /proc/[0-9]*/stat; do
		sed -n 's/^\([0-9]*\) .*) [A-Za-z] \([0-9]*\) .*/\1 \2/p' "$s" 2>/dev/null
	done)
	kids=$1
	echo "$1"
	while [ -n "$kids" ]; do
		local next=""
		for p in $kids; do
			next="$next $(echo "$all" | awk -v pp="$p" '$2==pp{print $1}')"
		done
		kids=$(echo $next)
		[ -n "$kids" ] && echo "$kids" | tr ' ' '\n'
	done
}

cmdline() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null; }

# ejabberdctl for DIR's node; never unbounded (each call starts an Erlang VM).
ectl() {
	local t=$1; shift
	timeout -k 2 "$t" "$EJCTL" --config-dir "$DIR" --ctl-config "$DIR/ejabberdctl.cfg" \
		--config "$DIR/ejabberd.yml" --spool "$DIR/spool" --logs "$DIR/log" "$@" </dev/null
}

show_log() {
	echo "--- $DIR/ejabberd.out (tail)" >&2
	grep -v '^$' "$DIR/ejabberd.out" 2>/dev/null | tail -n 15 >&2
	echo "--- $DIR/log/error.log (head)" >&2
	head -n 20 "$DIR/log/error.log" 2>/dev/null >&2
	echo "--- $DIR/log/ejabberd.log (tail)" >&2
	tail -n 20 "$DIR/log/ejabberd.log" 2>/dev/null >&2
}

write_config() {
	local level=info fast="  mod_auth_fast: {}"
	[ "$DEBUG" = 1 ] && level=debug
	if [ -n "$FAST_TTL" ]; then
		local age=$FAST_TTL
		[ "$age" -gt 86400 ] && age=86400
		# ejabberd 24.12 quirk: econf:timeout(second) turns the option
		# into milliseconds, but mod_auth_fast adds it to the time in
		# seconds, so `token_lifetime: N` gives tokens of N*1000 s, and
		# the option refuses less than 1 s: 1000 s is the shortest.
		local n=$(( (FAST_TTL + 999) / 1000 )) a=$(( (age + 999) / 1000 ))
		[ $((n * 1000)) = "$FAST_TTL" ] || echo "ejabberd24.sh: note: --fast-ttl $FAST_TTL: ejabberd 24.12's tokens live $((n * 1000)) s (token_lifetime: $n, see the header)" >&2
		fast="  mod_auth_fast:
    token_lifetime: $n
    token_refresh_age: $a"
	fi
	[ "$NO_FAST" = 1 ] && fast=""
	cat > "$DIR/ejabberd.yml" <<EOF
# Generated by tests/ejabberd/ejabberd24.sh; rewritten at every start.
loglevel: $level
log_rotate_count: 0
hide_sensitive_log_data: false
hosts:
  - localhost
certfiles:
  - "$DIR/localhost.pem"
  - "$DIR/localhost.key"
ca_file: "$DIR/ca.pem"

listen:
  -
    port: $C2S_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    access: c2s
    starttls_required: true
  -
    port: $TLS_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    access: c2s
    tls: true

auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
disable_sasl_mechanisms:
  - "digest-md5"
  - "x-oauth2"
s2s_access: none

acl:
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"

modules:
  mod_caps: {}
  mod_carboncopy: {}
  mod_client_state: {}
  mod_disco: {}
  mod_ping: {}
  mod_roster:
    versioning: true
  mod_stream_mgmt: {}
  mod_version: {}
$fast
EOF
	# ejabberdctl sources this; ERL_DIST_PORT = no epmd (see the header).
	cat > "$DIR/ejabberdctl.cfg" <<EOF
# Generated by tests/ejabberd/ejabberd24.sh; rewritten at every start.
ERLANG_NODE=ejabberd@localhost
ERL_DIST_PORT=$DIST_PORT
ERL_OPTIONS="-setcookie $COOKIE -kernel inet_dist_use_interface {127,0,0,1} -env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_PID_PATH=$DIR/run/ejabberd.pid
CONTRIB_MODULES_PATH=$DIR/spool/contrib
CONTRIB_MODULES_CONF_DIR=$DIR/modules.d
EJABBERD_BYPASS_WARNINGS=true
EOF
	cat > "$DIR/inetrc" <<'EOF'
{lookup,["file","native"]}.
{host,{127,0,0,1}, ["localhost"]}.
EOF
}

# --- commands ---------------------------------------------------------------

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
	[ "$(id -u)" = 0 ] || die "must run as root (ejabberdctl switches to the $EJ_USER user)"
	[ -x "$EJCTL" ] || die "no ejabberd 24.12 at $EJCTL (make deps)"
	command -v openssl >/dev/null || die "openssl is not installed (make deps)"
	id "$EJ_USER" >/dev/null 2>&1 || die "no $EJ_USER user (is the ejabberd package installed?)"

	local ports="$C2S_PORT $TLS_PORT" p
	if [ -f "$DIR/run/ejabberd.pid" ] && pid_alive "$(cat "$DIR/run/ejabberd.pid")"; then
		die "an ejabberd already runs from $DIR (pid $(cat "$DIR/run/ejabberd.pid")); stop it first"
	fi
	for p in $ports $DIST_PORT; do
		port_open "$p" && die "127.0.0.1:$p already accepts connections (run inside tests/netns.sh)"
	done

	mkdir -p "$DIR/spool" "$DIR/log" "$DIR/run" "$DIR/modules.d" || die "cannot create $DIR"
	# The ejabberd user must reach DIR (mktemp -d makes it 0700).
	chmod o+x "$DIR" || die "cannot make $DIR traversable"
	make_ca "$DIR"
	issue "$DIR" localhost "DNS:localhost,IP:127.0.0.1"
	[ -f "$DIR/cookie" ] || od -An -N12 -tx1 /dev/urandom | tr -d ' \n' > "$DIR/cookie"
	chmod 600 "$DIR/cookie"
	COOKIE=kl$(cat "$DIR/cookie")
	write_config
	chown -R "$EJ_USER:$EJ_USER" "$DIR/spool" "$DIR/log" "$DIR/run" "$DIR/modules.d" \
		"$DIR/localhost.pem" "$DIR/localhost.key" "$DIR/ejabberd.yml" \
		"$DIR/ejabberdctl.cfg" "$DIR/inetrc" || die "chown to $EJ_USER failed"
	chmod 644 "$DIR/ca.pem"
	rm -f "$DIR/run/ejabberd.pid" "$DIR/run/launcher.pid" "$DIR/run/tree.pids"
	: > "$DIR/log/ejabberd.log"; chown "$EJ_USER:$EJ_USER" "$DIR/log/ejabberd.log"

	# setsid: not in the caller's process group, so a ^C in a test script
	# does not take ejabberd down before `stop` runs.
	setsid "$EJCTL" --config-dir "$DIR" --ctl-config "$DIR/ejabberdctl.cfg" \
		--config "$DIR/ejabberd.yml" --spool "$DIR/spool" --logs "$DIR/log" \
		foreground </dev/null >"$DIR/ejabberd.out" 2>&1 &
	local launcher=$! up="" down why="" i
	echo "$launcher" > "$DIR/run/launcher.pid"
	for i in $(seq $((START_WAIT * 10))); do
		down=""
		for p in $ports; do
			case " $up " in *" $p "*) continue ;; esac
			if port_open "$p"; then up="$up $p"; else down="$down $p"; fi
		done
		[ -z "$down" ] && grep -q 'is started in the node' "$DIR/log/ejabberd.log" 2>/dev/null && break
		if ! pid_alive "$launcher"; then why="ejabberd exited"; break; fi
		if grep -qE '\[(critical|emergency)\]' "$DIR/log/ejabberd.log" 2>/dev/null; then
			why="critical errors in the log"; break
		fi
		# remember the process tree while it grows (for stop)
		[ $((i % 10)) = 0 ] && pid_tree "$launcher" > "$DIR/run/tree.pids"
		sleep 0.1
	done
	pid_tree "$launcher" > "$DIR/run/tree.pids"
	if [ -n "$down" ] || ! grep -q 'is started in the node' "$DIR/log/ejabberd.log" 2>/dev/null; then
		echo "ejabberd24.sh: ejabberd did not come up on 127.0.0.1 port(s)${down:- (log never said started)} (${why:-timeout after $START_WAIT s})" >&2
		show_log
		cmd_stop >/dev/null
		exit 1
	fi
	local pid
	pid=$(cat "$DIR/run/ejabberd.pid" 2>/dev/null)
	case $pid in
	''|*[!0-9]*) show_log; cmd_stop >/dev/null; die "ejabberd wrote no pidfile $DIR/run/ejabberd.pid" ;;
	esac

	# Accounts: registered once per spool, remembered in DIR/users.
	local u pass
	touch "$DIR/users"
	for u in alice:alicepass bob:bobpass carol:carolpass ${KL_EJABBERD_USERS:-}; do
		pass=${u#*:}; u=${u%%:*}
		grep -qx "$u" "$DIR/users" && continue
		if ectl 20 register "$u" localhost "$pass" >"$DIR/ejabberdctl.out" 2>&1 ||
			grep -q 'already registered' "$DIR/ejabberdctl.out"; then
			echo "$u" >> "$DIR/users"
		else
			cat "$DIR/ejabberdctl.out" >&2
			show_log
			cmd_stop >/dev/null
			die "ejabberdctl register $u failed (or timed out after 20 s)"
		fi
	done
	pid_tree "$launcher" > "$DIR/run/tree.pids"
	if grep -qE '\[(error|critical)\]' "$DIR/log/ejabberd.log"; then
		echo "ejabberd24.sh: warning: errors in $DIR/log/ejabberd.log:" >&2
		grep -E '\[(error|critical)\]' "$DIR/log/ejabberd.log" | head -5 >&2
	fi
	echo "ejabberd24: started pid $pid in $DIR"
}

cmd_stop() {
	local pid="" launcher="" tree="" p left
	[ -f "$DIR/run/ejabberd.pid" ] && pid=$(cat "$DIR/run/ejabberd.pid" 2>/dev/null)
	[ -f "$DIR/run/launcher.pid" ] && launcher=$(cat "$DIR/run/launcher.pid" 2>/dev/null)
	[ -f "$DIR/run/tree.pids" ] && tree=$(cat "$DIR/run/tree.pids" 2>/dev/null)
	case "$pid$launcher$(echo $tree)" in *[!0-9\ ]*) die "bad pid files in $DIR/run" ;; esac
	if [ -z "$pid$launcher$tree" ]; then
		echo "ejabberd24: not running (no pid files in $DIR/run)"
		return 0
	fi
	# Only PIDs that still are what we started: the recorded tree and the
	# live trees under the launcher and beam.smp, each either naming DIR on
	# its command line (ejabberdctl, su, sh, beam.smp) or running as the
	# ejabberd user (erl_child_setup, memsup, eimp, inet_gethost).
	local ours="" ej_uid
	ej_uid=$(id -u "$EJ_USER" 2>/dev/null || echo none)
	[ -n "$launcher" ] && pid_alive "$launcher" && tree="$tree $(pid_tree "$launcher")"
	[ -n "$pid" ] && pid_alive "$pid" && tree="$tree $(pid_tree "$pid")"
	for p in $(echo $pid $launcher $tree | tr ' ' '\n' | sort -un); do
		pid_alive "$p" || continue
		if cmdline "$p" | grep -qF -- "$DIR/" ||
			[ "$(stat -c %u "/proc/$p" 2>/dev/null)" = "$ej_uid" ]; then
			ours="$ours $p"
		fi
	done
	if [ -n "$pid" ] && pid_alive "$pid"; then
		cmdline "$pid" | grep -qF -- "-mnesia dir \"$DIR/spool\"" ||
			die "pid $pid is not the ejabberd of $DIR; not killing it"
		# SIGTERM: the Erlang VM runs init:stop(), ejabberd stops cleanly.
		kill -TERM "$pid"
		for _ in $(seq $((STOP_WAIT * 10))); do pid_alive "$pid" || break; sleep 0.1; done
		if pid_alive "$pid"; then
			echo "ejabberd24.sh: pid $pid ignored SIGTERM for $STOP_WAIT s; SIGKILL" >&2
			kill -KILL "$pid"
		fi
	fi
	# The launcher chain (ejabberdctl → su → sh) and erl_child_setup end
	# with beam.smp; give them 3 s, then SIGTERM/SIGKILL what is left.
	for _ in $(seq 30); do
		left=""
		for p in $ours; do pid_alive "$p" && left="$left $p"; done
		[ -z "$left" ] && break
		sleep 0.1
	done
	if [ -n "$left" ]; then
		echo "ejabberd24.sh: still alive after ejabberd stopped:$left; SIGTERM" >&2
		kill -TERM $left 2>/dev/null
		sleep 1
		for p in $left; do pid_alive "$p" && kill -KILL "$p" 2>/dev/null; done
		sleep 0.2
	fi
	left=""
	for p in $ours; do pid_alive "$p" && left="$left $p"; done
	[ -z "$left" ] || die "still alive:$left"
	rm -f "$DIR/run/ejabberd.pid" "$DIR/run/launcher.pid" "$DIR/run/tree.pids"
	echo "ejabberd24: stopped pid ${pid:-?} ($(echo $ours | wc -w) processes gone)"
}

[ $# -ge 2 ] || usage
cmd=$1 DIR=$2
shift 2
case $DIR in /*) ;; *) DIR=$(pwd)/$DIR ;; esac
DIR=${DIR%/}
case $cmd in
start) cmd_start "$@" ;;
stop) [ $# = 0 ] || usage; cmd_stop ;;
*) usage ;;
esac
