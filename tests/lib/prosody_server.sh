# tests/lib/prosody_server.sh — the body of tests/prosody/prosody.sh
# (Prosody 0.12) and tests/prosody/prosody13.sh (Prosody 13): start
# (accounts, launch, wait), stop; each script keeps its header (the
# interface), its options, its config and what differs. Sources
# tests/lib/xmpp_server.sh.
#
# The script sets, before sourcing: SELF, TAG (see xmpp_server.sh),
# P_WHAT (the server in messages: "Prosody"), PROSODY and PROSODYCTL (the
# programs), P_PIDFILE (the pidfile's path inside DIR: "prosody.pid") and
# the array P_AS (the command prefix that runs a program
# as the server's user; empty: as root). Its cmd_start parses the options,
# checks what it needs and calls `p_start PORTS`; hooks it defines:
# write_config (DIR/prosody.cfg.lua), p_setup (after the CA, localhost
# certificate, config and empty log are made; before the accounts).

unset PROSODY_CONFIG

# shellcheck source=xmpp_server.sh
. "$(dirname "${BASH_SOURCE[0]}")/xmpp_server.sh"

# prosodyctl was seen hanging (e.g. `about`); never wait on it unbounded.
prosodyctl_in() {
	"${P_AS[@]}" timeout -k 2 20 "$PROSODYCTL" --config "$DIR/prosody.cfg.lua" "$@" </dev/null
}

# accounts: in DIR/data (internal storage)
srv_has_user() { [ -f "$DIR/data/localhost/accounts/$1.dat" ]; }
srv_register() { prosodyctl_in register "$1" localhost "$2"; }
srv_register_failed() { die "prosodyctl register $1 failed (or timed out)"; }
srv_log_failed() { grep -qE '	(error|fatal)	' "$DIR/prosody.log" && echo "errors in the log"; }

# p_start "PORTS": everything after the options (see prosody.sh's header).
p_start() {
	local ports=$1 pidf pid
	pidf=$DIR/$P_PIDFILE
	srv_refuse_running "$pidf" "a Prosody"
	srv_refuse_ports $ports

	mkdir -p "$DIR/data" "$DIR/certs" "${pidf%/*}" || die "cannot create $DIR"
	make_ca "$DIR"
	issue "$DIR" localhost "DNS:localhost,IP:127.0.0.1"
	write_config
	: > "$DIR/prosody.log"
	p_setup

	srv_register_users "$DIR/prosodyctl.out" "${KL_PROSODY_USERS:-}"

	rm -f "$pidf"
	# setsid: not in the caller's process group, so a ^C in a test script
	# does not take Prosody down before `stop` runs; stop/netns.sh kill by PID.
	setsid "${P_AS[@]}" "$PROSODY" --config "$DIR/prosody.cfg.lua" -F \
		</dev/null >"$DIR/prosody.out" 2>&1 &
	pid=$!
	# Each port until it answers once, give up at the first error in the
	# log or after 10 s.
	srv_wait_up 10 "$pid" "$ports" Prosody
	if [ -n "$SRV_DOWN" ]; then
		echo "$SELF: $P_WHAT did not come up on 127.0.0.1 port(s)$SRV_DOWN (${SRV_WHY:-timeout after 10 s})" >&2
		echo "--- $DIR/prosody.out" >&2; grep -v '^$' "$DIR/prosody.out" | tail -n 15 >&2
		echo "--- $DIR/prosody.log (warnings and errors)" >&2
		grep -vE '	(info|debug)	' "$DIR/prosody.log" | head -n 20 >&2
		echo "--- $DIR/prosody.log (tail)" >&2; tail -n 10 "$DIR/prosody.log" >&2
		if pid_alive "$pid"; then srv_term "$pid" 5; fi
		rm -f "$pidf"
		exit 1
	fi
	# Prosody writes its pidfile itself (mod_posix); wait briefly for it.
	for _ in $(seq 20); do [ -s "$pidf" ] && break; sleep 0.05; done
	[ -s "$pidf" ] || echo "$pid" > "$pidf"
	[ "$(cat "$pidf")" = "$pid" ] \
		|| echo "$SELF: warning: pidfile says $(cat "$pidf"), started $pid" >&2
	srv_warn_log "$DIR/prosody.log" '	(error|fatal)	'
	echo "$TAG: started pid $pid in $DIR"
}

cmd_stop() {
	local pidf pid
	pidf=$DIR/$P_PIDFILE
	if [ ! -f "$pidf" ]; then
		echo "$TAG: not running (no $pidf)"
		return 0
	fi
	pid=$(cat "$pidf")
	case $pid in ''|*[!0-9]*) die "bad pidfile $pidf" ;; esac
	if ! pid_alive "$pid"; then
		rm -f "$pidf"
		echo "$TAG: pid $pid was not running"
		return 0
	fi
	# Make sure the PID is our Prosody, not a recycled number.
	cmdline "$pid" | grep -qF -- "$DIR/prosody.cfg.lua" \
		|| die "pid $pid is not the Prosody of $DIR; not killing it"
	srv_term "$pid" 10 loud
	pid_alive "$pid" && die "pid $pid is still alive"
	rm -f "$pidf"
	echo "$TAG: stopped pid $pid"
}
