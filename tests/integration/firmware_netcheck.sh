#!/bin/bash
# tests/integration/firmware_netcheck.sh [ELF] — boot the mps2-an386 board
# bring-up image (examples/firmware/netcheck.c) in qemu-system-arm and check
# its UART: it boots, gets a DHCP lease from QEMU's user network, and a TCP
# echo through a guestfwd to a Python echo server on the loopback comes back
# intact. QEMU's network is restricted (restrict=on: no route out, no DNS);
# the only way out is the explicit guestfwd to 127.0.0.1, and the whole test
# runs in tests/netns.sh's loopback-only namespace besides.
# Last line: "firmware_netcheck: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
ELF=${1:-$root/build/firmware/netcheck.elf}
QEMU=${FW_QEMU:-qemu-system-arm}
TIMEOUT=${FW_TIMEOUT:-60}
PORT=47007

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() {
	echo "firmware_netcheck: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}
uart_has() { grep -qE -- "$1" "$DIR/uart.log"; }
check_uart() { if uart_has "$2"; then ok "$1"; else bad "$1 (no line matching '$2')"; fi; }

if ! command -v "$QEMU" >/dev/null; then
	bad "$QEMU not installed (make deps)"
	finish
fi
if [ ! -f "$ELF" ]; then
	bad "no image: $ELF (make firmware)"
	finish
fi

DIR=$(mktemp -d /tmp/kl-fw.XXXXXX)
echo_pid=
cleanup() {
	[ -n "$echo_pid" ] && kill "$echo_pid" 2>/dev/null && wait "$echo_pid" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT

python3 "$here/firmware_echo_server.py" $PORT "$DIR/ready" "$DIR/echo.log" &
echo_pid=$!
for _ in $(seq 50); do [ -s "$DIR/ready" ] && break; sleep 0.1; done
if [ ! -s "$DIR/ready" ]; then
	bad "echo server did not start"
	finish
fi

# -semihosting: the image exits QEMU with its status and reads the host
# clock; stdin is not the guest's (no console input).
start=$(date +%s%N)
timeout -k 5 "$TIMEOUT" "$QEMU" -M mps2-an386 -nographic -monitor none -serial stdio \
	-semihosting-config enable=on,target=native \
	-nic "user,model=lan9118,restrict=on,guestfwd=tcp:10.0.2.100:7-tcp:127.0.0.1:$PORT" \
	-kernel "$ELF" </dev/null >"$DIR/uart.log" 2>"$DIR/qemu.err"
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
tr -d '\r' <"$DIR/uart.log" >"$DIR/uart.txt" && mv "$DIR/uart.txt" "$DIR/uart.log"
sed 's/^/  uart| /' "$DIR/uart.log"
[ -s "$DIR/qemu.err" ] && sed 's/^/  qemu| /' "$DIR/qemu.err"

if [ $rc = 124 ] || [ $rc = 137 ]; then bad "QEMU timed out after ${TIMEOUT}s"; else ok "QEMU exited by itself (status $rc, ${ms} ms)"; fi
check_uart "boots and prints on the UART" '^netcheck: kinglet on mps2-an386'
check_uart "SysTick/semihosting clock" '^netcheck: time [0-9]+ '
check_uart "kinglet core runs on the device" '^netcheck: engine first flight [0-9]+ bytes'
check_uart "LAN9118 netif up, link up" '^netcheck: netif up, mac 52:54:00:12:34:56, link up'
check_uart "DHCP lease 10.0.2.15" '^netcheck: dhcp ip 10\.0\.2\.15 '
check_uart "TCP echo through guestfwd intact" '^netcheck: echo ok [0-9]+ bytes'
check_uart "stack high-water reported" '^ram: stack high-water [0-9]+ of [0-9]+'
if uart_has '^ram: lwip pool .*\(err [1-9]'; then bad "an lwIP pool ran out"; else ok "no lwIP pool ran out"; fi
check_uart "image reports PASS" '^netcheck: PASS'
if [ $rc = 0 ]; then ok "exit status 0 (semihosting)"; else bad "exit status $rc"; fi
sent=$(sed -n 's/^netcheck: echo ok \([0-9]*\) bytes/\1/p' "$DIR/uart.log")
if [ -n "$sent" ] && grep -q "^conn 1: $sent bytes echoed" "$DIR/echo.log"; then
	ok "echo server saw the same $sent bytes"
else
	bad "echo server log: $(cat "$DIR/echo.log" 2>/dev/null)"
fi
finish
