#!/bin/bash
# tests/integration/posix_portable_test.sh — port/posix built with
# -DKL_POSIX_PORTABLE=1 (socket() + fcntl() instead of SOCK_NONBLOCK /
# SOCK_CLOEXEC, no MSG_NOSIGNAL, no MSG_MORE, getentropy() instead of
# getrandom(): what a non-Linux POSIX system compiles), inside a
# loopback-only network namespace:
#   - posix_portable_probe against a Python TCP echo server (fd flags,
#     corked flight, write after close, refused connect, resolver socket)
#   - the CLI linked with that port logs in to Prosody (STARTTLS), one
#     client echoes a message to the other
# SIGPIPE is ignored here, as the application must where neither
# MSG_NOSIGNAL nor SO_NOSIGPIPE exists (Linux without MSG_NOSIGNAL).
# Env: KL_PORTABLE_PROBE, KL_PORTABLE_CLI. Last line:
# "check-posix-portable: N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
SUITE=check-posix-portable
. "$root/tests/lib/results.sh"
PROBE=${KL_PORTABLE_PROBE:?}
KL=${KL_PORTABLE_CLI:?}
PROSODY="$root/tests/prosody/prosody.sh"
trap '' PIPE

DIR=$(mktemp -d /tmp/kl-portable.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	"$PROSODY" stop "$DIR" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

# --- the port's primitives against an echo server ---------------------------
python3 - 7701 >"$DIR/echo.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    buf = b""
    while True:
        d = c.recv(4096)
        if not d:
            break
        buf += d
        if b"bye\n" in buf:
            break
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            c.sendall(line + b"\n")
    c.close()
PY
PIDS="$PIDS $!"
for _ in $(seq 50); do grep -q listening "$DIR/echo.log" && break; sleep 0.1; done
if timeout -k 2 20 "$PROBE" 7701 7702 >"$DIR/probe.out" 2>&1; then ok "probe exit 0"; else bad "probe exit $?"; fi
while read -r verdict rest; do
	case "$verdict" in PASS) ok "probe: $rest" ;; FAIL) bad "probe: $rest" ;; esac
done <"$DIR/probe.out"
grep -q '^probe: ' "$DIR/probe.out" || bad "probe ended early: $(tail -n 3 "$DIR/probe.out")"

# --- the CLI on the portable port against Prosody ---------------------------
"$PROSODY" start "$DIR" >/dev/null || { bad "prosody start"; finish; }
kl() { timeout -k 2 30 "$KL" --host 127.0.0.1 --cafile "$DIR/ca.pem" "$@"; }
kl --jid bob@localhost/echo --password bobpass --echo --count 1 --timeout 20 >"$DIR/bob.out" 2>"$DIR/bob.err" &
bobpid=$!
PIDS="$PIDS $bobpid"
for _ in $(seq 50); do grep -q '^online' "$DIR/bob.out" 2>/dev/null && break; sleep 0.1; done
if kl --jid alice@localhost/dev --password alicepass --send bob@localhost/echo "portable <kinglet>" \
	--recv 1 --timeout 20 >"$DIR/alice.out" 2>"$DIR/alice.err"; then
	ok "CLI (portable port): alice logs in, sends, receives (exit 0)"
else
	bad "CLI (portable port): alice exit $?: $(tail -n 3 "$DIR/alice.err")"
fi
if grep -qF 'message from bob@localhost/echo: portable <kinglet>' "$DIR/alice.out"; then
	ok "CLI (portable port): the echo came back with the exact body"
else
	bad "CLI (portable port): echo missing: $(tail -n 3 "$DIR/alice.out")"
fi
if wait "$bobpid"; then ok "CLI (portable port): bob echoed and closed (exit 0)"; else bad "CLI (portable port): bob exit: $(tail -n 3 "$DIR/bob.err")"; fi
finish
