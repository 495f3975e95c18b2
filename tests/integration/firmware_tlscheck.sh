#!/bin/bash
# tests/integration/firmware_tlscheck.sh [ELF] [PKI_DIR] — mbedTLS on the
# mps2-an386 image under qemu-system-arm: TLS handshake (verified chain and
# name) with `openssl s_server -rev` on the loopback through a guestfwd, one
# line each way, and the arena / stack high-water marks on the UART.
# PKI_DIR holds the server certificate the build made with the image's CA.
# Last line: "firmware_tlscheck: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
ELF=${1:-$root/build/firmware/tlscheck.elf}
PKI=${2:-$root/build/firmware/tlscheck}
QEMU=${FW_QEMU:-qemu-system-arm}
TIMEOUT=${FW_TIMEOUT:-90}
PORT=44433

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() {
	echo "firmware_tlscheck: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}
uart_has() { grep -qE -- "$1" "$DIR/uart.log"; }
check_uart() { if uart_has "$2"; then ok "$1"; else bad "$1 (no line matching '$2')"; fi; }

for f in "$ELF" "$PKI/server.pem" "$PKI/server.key"; do
	[ -f "$f" ] || { bad "missing $f (make firmware-tlscheck)"; finish; }
done

DIR=$(mktemp -d /tmp/kl-fwtls.XXXXXX)
srv_pid=
cleanup() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT

# -rev: each line comes back reversed. Its stdin is kept open (a fifo
# nobody writes) so that s_server does not quit at EOF.
mkfifo "$DIR/in"
openssl s_server -accept "127.0.0.1:$PORT" -cert "$PKI/server.pem" -key "$PKI/server.key" \
	-rev -naccept 1 <"$DIR/in" >"$DIR/server.log" 2>&1 &
srv_pid=$!
exec 7<>"$DIR/in"
# Ready when it says ACCEPT (a probe connection would use up -naccept 1).
for _ in $(seq 50); do grep -q '^ACCEPT' "$DIR/server.log" && break; sleep 0.1; done

start=$(date +%s%N)
timeout -k 5 "$TIMEOUT" "$QEMU" -M mps2-an386 -nographic -monitor none -serial stdio \
	-semihosting-config enable=on,target=native \
	-nic "user,model=lan9118,restrict=on,guestfwd=tcp:10.0.2.100:4433-tcp:127.0.0.1:$PORT" \
	-kernel "$ELF" </dev/null >"$DIR/uart.log" 2>"$DIR/qemu.err"
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
exec 7>&-
tr -d '\r' <"$DIR/uart.log" >"$DIR/uart.txt" && mv "$DIR/uart.txt" "$DIR/uart.log"
sed 's/^/  uart| /' "$DIR/uart.log"
[ -s "$DIR/qemu.err" ] && sed 's/^/  qemu| /' "$DIR/qemu.err"

if [ $rc = 124 ] || [ $rc = 137 ]; then bad "QEMU timed out after ${TIMEOUT}s"; else ok "QEMU exited by itself (status $rc, ${ms} ms)"; fi
check_uart "boots" '^tlscheck: kinglet TLS on mps2-an386'
check_uart "DHCP lease" '^tlscheck: dhcp ip 10\.0\.2\.15'
check_uart "TLS 1.3 handshake, chain and name verified" '^tlscheck: handshake TLSv1\.3 in [0-9]+ ms, verified '
check_uart "line comes back reversed over TLS" '^tlscheck: reply "telgnik morf olleh"'
check_uart "arena and stack high-water reported" '^ram: stack high-water [0-9]+ of [0-9]+'
check_uart "image reports PASS" '^tlscheck: PASS'
if [ $rc = 0 ]; then ok "exit status 0"; else bad "exit status $rc"; sed 's/^/  s_server| /' "$DIR/server.log"; fi
finish
