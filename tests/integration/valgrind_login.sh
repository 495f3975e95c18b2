#!/bin/bash
# tests/integration/valgrind_login.sh — build/kinglet under valgrind against
# a throwaway Prosody (STARTTLS, verified with the test CA), inside a
# loopback-only network namespace: a plain login that closes, the same in
# lockstep (--pipelining off), and a login that sends a message to itself
# and receives it. Each run must exit 0 with no valgrind error (valgrind
# exits 99 on one; its report is printed).
# Environment: KINGLET (default build/kinglet), KL_VALGRIND (default valgrind).
# Last line: "valgrind_login: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
KL=${KINGLET:-$root/build/kinglet}
VALGRIND=${KL_VALGRIND:-valgrind}

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

DIR=$(mktemp -d /tmp/kl-vglogin.XXXXXX)
ppid_=""
cleanup() {
	# by PID: prosody.sh stop kills only the PID in DIR/prosody.pid, after
	# checking that it runs DIR's config; the PID it printed is the fallback
	"$PROSODY" stop "$DIR" >/dev/null 2>&1 ||
		{ [ -n "$ppid_" ] && kill "$ppid_" 2>/dev/null; }
	rm -rf "$DIR"
}
trap cleanup EXIT

finish() {
	echo "valgrind_login: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

[ -x "$KL" ] || { bad "no $KL (make $KL)"; finish; }
command -v "$VALGRIND" >/dev/null || { bad "no valgrind"; finish; }
if out=$("$PROSODY" start "$DIR"); then
	ppid_=$(printf '%s\n' "$out" | sed -n 's/^prosody: started pid \([0-9]*\).*/\1/p')
	ok "prosody started (pid $ppid_)"
else
	bad "prosody start"
	finish
fi

# vg NAME ARGS...: one kinglet run under valgrind
vg() {
	local name=$1 rc
	shift
	timeout -k 5 60 "$VALGRIND" --error-exitcode=99 -q "$KL" --host 127.0.0.1 --cafile "$DIR/ca.pem" \
		--timeout 30 "$@" >"$DIR/$name.out" 2>"$DIR/$name.err"
	rc=$?
	if [ "$rc" = 0 ] && ! grep -q '^==[0-9]*==' "$DIR/$name.err"; then
		ok "$name: exit 0, no valgrind error"
	else
		bad "$name: exit $rc"
		sed 's/^/    /' "$DIR/$name.err" | head -60
	fi
}

vg login --jid alice@localhost/vg --password alicepass
vg login_off --jid alice@localhost/vg --password alicepass --pipelining off
vg send_recv --jid bob@localhost/vg --password bobpass --send bob@localhost/vg "hi <valgrind> & co" --recv 1
grep -qF 'hi <valgrind> & co' "$DIR/send_recv.out" && ok "send_recv: the message came back" ||
	bad "send_recv: no message in: $(cat "$DIR/send_recv.out")"

finish
