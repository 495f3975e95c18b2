#!/bin/bash
# tests/integration/firmware_xmpp.sh — the xmpp_sensor firmware image
# (examples/firmware/xmpp_sensor.c) on qemu-system-arm (mps2-an386) against
# a throwaway Prosody, inside tests/netns.sh's loopback-only namespace.
#
#   1. Prosody starts (tests/prosody/prosody.sh) and makes its CA;
#   2. the image is built with that CA (DIR/ca.der) and test settings into
#      this test's own directory (`make firmware-xmpp FW_XMPP_OUT=...`; the
#      core, lwIP and mbedTLS objects are the shared ones in build/firmware);
#   3. QEMU boots it; its only network path is a guestfwd from 10.0.2.100:5222
#      to Prosody's 127.0.0.1:5222 (restrict=on: no route out, no DNS);
#   4. once the UART says online, carol pings the device (XEP-0199,
#      firmware_ping.py), bob sends it three 12 KB messages (sim_flood.py),
#      then bob (build/kinglet) sends "echo hello" to
#      the device and must receive "hello" and at least one sensor reading;
#      after the echo the device sends one more reading, closes its stream,
#      prints its RAM report and exits QEMU (semihosting) with status 0.
# Asserted from the UART: online within FW_ONLINE_TIMEOUT after 5 round
# trips (safe pipelining, STARTTLS, TLS 1.3), stack high-water mark and
# mbedTLS arena peak printed and below their sizes, no lwIP pool or heap
# allocation failure.
# Last line: "firmware_xmpp: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
BUILD=${BUILD:-build}
KL=${KINGLET:-$root/$BUILD/kinglet}
QEMU=${FW_QEMU:-qemu-system-arm}
TIMEOUT=${FW_TIMEOUT:-180}             # QEMU as a whole
ONLINE_TIMEOUT=${FW_ONLINE_TIMEOUT:-60} # boot + DHCP + login
PORT=5222
DEVICE=alice@localhost/sensor

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() {
	echo "firmware_xmpp: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}
uart_has() { grep -qE -- "$1" "$DIR/uart.log"; }
check_uart() { if uart_has "$2"; then ok "$1"; else bad "$1 (no line matching '$2')"; fi; }

for t in "$QEMU" arm-none-eabi-gcc; do
	command -v "$t" >/dev/null || { bad "$t not installed (make deps)"; finish; }
done
[ -x "$KL" ] || { bad "no host CLI $KL (make $KL)"; finish; }

DIR=$(mktemp -d /tmp/kl-fwxmpp.XXXXXX)
qemu_pid=
cleanup() {
	[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
	"$PROSODY" stop "$DIR/prosody" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

"$PROSODY" start "$DIR/prosody" --c2s-port $PORT >/dev/null || { bad "prosody start"; finish; }
ok "prosody started (CA $DIR/prosody/ca.der)"

# The image trusts this Prosody's CA: build it now, into our own directory.
if MAKEFLAGS= make -C "$root" --no-print-directory BUILD="$BUILD" firmware-xmpp FW_XMPP_OUT="$DIR/fw" \
	FW_XMPP_CA="$DIR/prosody/ca.der" FW_XMPP_JID=$DEVICE FW_XMPP_PASSWORD=alicepass \
	FW_XMPP_SERVER=10.0.2.100 FW_XMPP_PORT=5222 FW_XMPP_TO=bob@localhost \
	FW_XMPP_PERIOD_MS=2000 FW_XMPP_EXIT_AFTER=1 >"$DIR/build.log" 2>&1; then
	ok "image built with the test CA ($(tail -1 "$DIR/build.log" | awk '{print $1" text, "$2" data, "$3" bss"}'))"
else
	sed 's/^/  build| /' "$DIR/build.log"
	bad "image build"
	finish
fi
ELF="$DIR/fw/xmpp_sensor.elf"

start=$(date +%s%N)
timeout -k 5 "$TIMEOUT" "$QEMU" -M mps2-an386 -nographic -monitor none -serial stdio \
	-semihosting-config enable=on,target=native \
	-nic "user,model=lan9118,restrict=on,guestfwd=tcp:10.0.2.100:5222-tcp:127.0.0.1:$PORT" \
	-kernel "$ELF" </dev/null >"$DIR/uart.raw" 2>"$DIR/qemu.err" &
qemu_pid=$!
uart() { tr -d '\r' <"$DIR/uart.raw" >"$DIR/uart.log"; }

online=0
for _ in $(seq $((ONLINE_TIMEOUT * 10))); do
	uart
	if uart_has '^xmpp_sensor: online as '; then online=1; break; fi
	kill -0 "$qemu_pid" 2>/dev/null || break
	sleep 0.1
done
online_s=$(( ($(date +%s%N) - start) / 1000000 ))
if [ $online = 1 ]; then
	ok "device online ${online_s} ms after QEMU started (limit ${ONLINE_TIMEOUT}s)"
	# XEP-0199: a ping to the device's full JID (the engine answers it).
	if timeout 30 python3 "$here/firmware_ping.py" --jid carol@localhost --password carolpass --to $DEVICE \
		--port $PORT --cafile "$DIR/prosody/ca.pem" >"$DIR/ping.out" 2>"$DIR/ping.err"; then
		ok "XEP-0199 ping answered: $(cat "$DIR/ping.out")"
	else
		bad "ping not answered: $(cat "$DIR/ping.out" "$DIR/ping.err")"
	fi
	# Large messages first: Prosody sends each as TLS records of up to 8 KB
	# (MBEDTLS_SSL_IN_CONTENT_LEN on the device is 8192), larger than the
	# engine's stanza buffer, so they arrive streamed; the device must stay
	# up, within its arena. The sender is tests/integration/sim_flood.py.
	if timeout 30 python3 "$here/sim_flood.py" --jid bob@localhost --password bobpass --to $DEVICE \
		--count 3 --size 12000 --port $PORT --cafile "$DIR/prosody/ca.pem" >"$DIR/big.out" 2>"$DIR/big.err"; then
		ok "bob sent 3 messages of 12 KB to the device"
	else
		bad "large messages not sent: $(cat "$DIR/big.err")"
	fi
	for _ in $(seq 100); do
		uart
		[ "$(grep -c '^xmpp_sensor: streamed message ended' "$DIR/uart.log")" -ge 3 ] && break
		kill -0 "$qemu_pid" 2>/dev/null || break
		sleep 0.1
	done
	# bob: online, sends "echo hello" and prints every message it gets (the
	# readings go to bob's bare JID; those sent while bob was offline come
	# first, from offline storage). Wait for the echo and a reading, then
	# stop bob (our own process, by PID).
	timeout -k 2 40 "$KL" --host 127.0.0.1 --port $PORT --cafile "$DIR/prosody/ca.pem" \
		--jid bob@localhost/host --password bobpass --send $DEVICE "echo hello" --recv 1000 --timeout 30 \
		>"$DIR/bob.out" 2>"$DIR/bob.err" &
	bob_pid=$!
	got=0
	for _ in $(seq 300); do
		if grep -qxF "message from $DEVICE: hello" "$DIR/bob.out" &&
			grep -qE "^message from $DEVICE: temp=21\.5 seq=[0-9]+\$" "$DIR/bob.out"; then got=1; break; fi
		kill -0 "$bob_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill "$bob_pid" 2>/dev/null
	wait "$bob_pid" 2>/dev/null
	sed 's/^/  bob| /' "$DIR/bob.out" "$DIR/bob.err"
	if grep -q '^online bob@localhost/host' "$DIR/bob.out"; then ok "bob online"; else bad "bob not online"; fi
	if grep -qxF "message from $DEVICE: hello" "$DIR/bob.out"; then
		ok "echo hello -> hello from the device"
	else
		bad "no 'hello' back from the device"
	fi
	if grep -qE "^message from $DEVICE: temp=21\.5 seq=[0-9]+\$" "$DIR/bob.out"; then
		ok "a sensor reading from the device"
	else
		bad "no sensor reading received"
	fi
else
	bad "device not online within ${ONLINE_TIMEOUT}s"
	kill "$qemu_pid" 2>/dev/null
fi

wait "$qemu_pid"
rc=$?
qemu_pid=
ms=$(( ($(date +%s%N) - start) / 1000000 ))
uart
sed 's/^/  uart| /' "$DIR/uart.log"
[ -s "$DIR/qemu.err" ] && sed 's/^/  qemu| /' "$DIR/qemu.err"
if [ $rc = 124 ] || [ $rc = 137 ]; then bad "QEMU timed out after ${TIMEOUT}s"; fi

check_uart "boots" '^xmpp_sensor: kinglet on mps2-an386'
check_uart "DHCP lease" '^xmpp_sensor: state dhcp ip 10\.0\.2\.15 '
check_uart "TLS 1.3, certificate verified" '^xmpp_sensor: state tls-up TLSv1\.3, .*certificate verified'
rt=$(sed -n 's/^xmpp_sensor: online as [^ ]* after \([0-9]*\) round trips.*/\1/p' "$DIR/uart.log" | head -1)
if [ "$rt" = 5 ]; then ok "online after 5 round trips (safe, STARTTLS, TLS 1.3)"; else bad "round trips to online: '${rt}' (want 5)"; fi
check_uart "bound the configured resource" "^xmpp_sensor: online as $DEVICE after"
n=$(grep -c '^xmpp_sensor: message from bob@localhost[^ ]*, larger than [0-9]* bytes, streamed: m00[0-2]-' "$DIR/uart.log")
if [ "$n" = 3 ]; then ok "3 messages of 12 KB (8 KB TLS records) arrived streamed, bodies on the UART"; else bad "large messages seen: $n of 3"; fi
n=$(grep -c '^xmpp_sensor: streamed message ended, 12000 body bytes$' "$DIR/uart.log")
if [ "$n" = 3 ]; then ok "each streamed body reached the UART whole (12000 bytes)"; else bad "whole streamed bodies: $n of 3"; fi
check_uart "answered the echo" '^xmpp_sensor: echo answered to bob@localhost/host'
check_uart "closed its stream cleanly" '^xmpp_sensor: state closed \(by us\)'

# RAM report (the last one: after the session)
last() { grep -E "$1" "$DIR/uart.log" | tail -1; }
line=$(last '^ram: stack high-water [0-9]+ of [0-9]+')
if [ -n "$line" ]; then
	set -- $line; used=$4 size=$6
	if [ "$used" -lt "$size" ]; then ok "stack high-water $used < stack $size"; else bad "stack high-water $used of $size"; fi
else bad "no stack high-water on the UART"; fi
line=$(last '^ram: mbedtls arena peak [0-9]+ of [0-9]+')
if [ -n "$line" ]; then
	set -- $line; used=$5 size=$7
	if [ "$used" -lt "$size" ]; then ok "mbedTLS arena peak $used < arena $size"; else bad "arena peak $used of $size"; fi
else bad "no arena peak on the UART"; fi
if uart_has '^ram: lwip heap max [0-9]+ of [0-9]+ \(err 0\)'; then ok "lwIP heap reported, no failure"; else bad "lwIP heap failure or no report"; fi
if uart_has '^ram: lwip (pool|heap) .*\(err [1-9]'; then bad "an lwIP pool or the heap ran out"; else ok "no lwIP pool ran out"; fi
check_uart "lwIP pools reported" '^ram: lwip pool [A-Z_]+ max [0-9]+ of [0-9]+ \(err 0\)'
check_uart "image reports PASS" '^xmpp_sensor: PASS'
if [ $rc = 0 ]; then ok "exit status 0 (semihosting, ${ms} ms)"; else bad "exit status $rc"; tail -20 "$DIR/prosody/prosody.log" | sed 's/^/  prosody| /'; fi
finish
