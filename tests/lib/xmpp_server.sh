# tests/lib/xmpp_server.sh — what the throwaway server scripts share
# (tests/prosody/prosody.sh, prosody13.sh via tests/lib/prosody_server.sh,
# tests/ejabberd/ejabberd.sh, ejabberd24.sh via tests/lib/ejabberd_server.sh).
# Source it after setting SELF (the script's name in messages, "prosody.sh")
# and TAG (the word of its stdout lines, "prosody"). It sources
# tests/lib/test_ca.sh (make_ca, issue) and sets PATH and SRV_ROOT (the
# source tree).
#
#   die MSG                   "SELF: MSG" on stderr, exit 1
#   port_open PORT            127.0.0.1:PORT accepts a connection
#   pid_alive PID             alive and not a zombie
#   pid_tree PID              PID and its descendants, one per line
#   cmdline PID               the command line, words separated by spaces
#   srv_refuse_running PIDFILE WHAT   die if PIDFILE names a live process
#   srv_refuse_ports PORT...  die if one of them accepts connections
#   srv_wait_up SECONDS PID "PORTS" WHAT   wait for the listeners (below)
#   srv_term PID SECONDS [loud]   SIGTERM, wait, SIGKILL
#   srv_register_users OUT EXTRA  the test accounts (below)
#   srv_warn_log FILE REGEX   print the first lines of FILE matching REGEX
#   srv_main ARG...           the command line: CMD DIR [ARG...] (below)

PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
SRV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

die() { echo "$SELF: $*" >&2; exit 1; }

# make_ca, issue: the shared test CA
# shellcheck source=test_ca.sh
. "$SRV_ROOT/tests/lib/test_ca.sh"

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

# srv_refuse_running PIDFILE WHAT: one server per DIR.
srv_refuse_running() {
	if [ -f "$1" ] && pid_alive "$(cat "$1")"; then
		die "$2 already runs from $DIR (pid $(cat "$1")); stop it first"
	fi
}

# srv_refuse_ports PORT...: the ports are fixed; outside a namespace they
# may collide.
srv_refuse_ports() {
	local p
	for p in "$@"; do
		port_open "$p" && die "127.0.0.1:$p already accepts connections (run inside tests/netns.sh)"
	done
}

# Hooks of srv_wait_up; a script redefines the ones it needs after sourcing.
srv_ready() { :; }        # ready beyond the ports (e.g. the log says so)
srv_log_failed() { false; } # prints a reason and succeeds if the log shows a failure
srv_tick() { :; }         # called with the round number every 0.1 s

# srv_wait_up SECONDS PID "PORTS" WHAT: polls every 0.1 s until each port
# has accepted one connection (a port that answered is not probed again:
# every probe is a log line) and srv_ready succeeds; gives up early when PID
# is gone ("WHAT exited") or srv_log_failed gives a reason. Sets SRV_DOWN
# (the ports that never answered, each after a space) and SRV_WHY (why it
# gave up early; empty on timeout or success).
srv_wait_up() {
	local secs=$1 pid=$2 ports=$3 what=$4 up="" p i
	SRV_DOWN="" SRV_WHY=""
	for i in $(seq $((secs * 10))); do
		SRV_DOWN=""
		for p in $ports; do
			case " $up " in *" $p "*) continue ;; esac
			if port_open "$p"; then up="$up $p"; else SRV_DOWN="$SRV_DOWN $p"; fi
		done
		[ -z "$SRV_DOWN" ] && srv_ready && break
		if ! pid_alive "$pid"; then SRV_WHY="$what exited"; break; fi
		if SRV_WHY=$(srv_log_failed); then break; fi
		SRV_WHY=""
		srv_tick "$i"
		sleep 0.1
	done
}

# srv_term PID SECONDS [loud]: SIGTERM, up to SECONDS for PID to go, then
# SIGKILL (said on stderr with `loud`). By PID only, never by name.
srv_term() {
	local pid=$1 secs=$2
	kill -TERM "$pid"
	for _ in $(seq $((secs * 10))); do pid_alive "$pid" || return 0; sleep 0.1; done
	[ -n "${3:-}" ] && echo "$SELF: pid $pid ignored SIGTERM for $secs s; SIGKILL" >&2
	kill -KILL "$pid"
	sleep 0.2
}

# srv_register_users OUT EXTRA: alice/alicepass, bob/bobpass,
# carol/carolpass and the "user:pass" words of EXTRA, each unless
# `srv_has_user USER` says it exists: `srv_register USER PASS` with its
# output in the file OUT; if that fails, OUT goes to stderr and
# `srv_register_failed USER` runs (it must exit). The three hooks are the
# script's.
srv_register_users() {
	local out=$1 u pass
	for u in alice:alicepass bob:bobpass carol:carolpass $2; do
		pass=${u#*:}; u=${u%%:*}
		srv_has_user "$u" && continue
		srv_register "$u" "$pass" >"$out" 2>&1 && continue
		cat "$out" >&2
		srv_register_failed "$u"
	done
}

# srv_warn_log FILE REGEX: a started server with errors in its log.
srv_warn_log() {
	if grep -qE "$2" "$1"; then
		echo "$SELF: warning: errors in $1:" >&2
		grep -E "$2" "$1" | head -5 >&2
	fi
}

# srv_main CMD DIR [ARG...]: DIR made absolute (global DIR), then
# `start` → cmd_start ARG..., `stop` → cmd_stop (no ARG unless SRV_LAX_STOP
# is set), anything else → cmd_other CMD ARG... if the script defines it;
# usage otherwise.
srv_main() {
	[ $# -ge 2 ] || usage
	local cmd=$1
	DIR=$2
	shift 2
	case $DIR in /*) ;; *) DIR=$(pwd)/$DIR ;; esac
	DIR=${DIR%/}
	case $cmd in
	start) cmd_start "$@" ;;
	stop) [ $# = 0 ] || [ -n "${SRV_LAX_STOP:-}" ] || usage; cmd_stop ;;
	*) declare -F cmd_other >/dev/null || usage; cmd_other "$cmd" "$@" ;;
	esac
}
