#!/bin/bash
# tests/integration/firmware_sm.sh — the xmpp_sensor firmware (stream
# management on, a 2 KB queue) on qemu-system-arm (mps2-an386) against a
# throwaway Prosody, inside tests/netns.sh's loopback-only namespace: the
# device keeps its XEP-0198 session across a cut link and across a reset.
#
# Wiring: QEMU's user network (restrict=on) forwards the guest's
# 10.0.2.100:5222 to a program per connection (guestfwd ...-cmd:,
# tests/integration/stdio_relay.py), which connects to tests/fault_proxy.py,
# which connects to Prosody. (A guestfwd to a chardev is one socket opened
# at QEMU's start, shared by every guest connection: no reconnect could
# use it.) QEMU's QMP socket drives the link and the reset.
# The image: FW_XMPP_RECONNECT=1, keepalive 3 s / 2 s, a reading every 10 s
# (longer than T + T2: a reading refreshes the keepalive's idle timer),
# exit after 3 echoes since boot. Bob (build/kinglet) stays online
# throughout and collects every reading (they go to bob@localhost); carol's
# one-shot clients send the notes and the echo requests.
#
#   1. first boot: no session in no-init RAM, a fresh login ("online as");
#   2. cut (RST): the proxy aborts the connection; a note sent meanwhile
#      arrives after the device resumed ("resumed as");
#   3. silent cut: `set_link net0 off` (QEMU drops every frame, the PHY
#      reports the link down) 3 s before a reading is due; two notes sent
#      meanwhile; the reading goes out into the dead link and the keepalive
#      calls the link dead (T + T2 after the cut, or after the reading if
#      it went out before the probe) while it is down; `set_link net0
#      on`: the device reconnects at once (PHY link up), resumes, gets both
#      notes, and the reading is sent again;
#   4. reset while out of range: the link goes down, a reading goes out
#      into it, then `system_reset`; three notes sent meanwhile; after the
#      reboot the UART says the session was restored from no-init RAM with
#      that reading still unacknowledged; the link comes back, the device
#      resumes (no second "online as"), receives the three notes, and the
#      reading reaches bob;
#   5. three "echo" messages come back, the device closes its stream and
#      exits QEMU with status 0.
# Asserted on UART lines; also: every reading the device sent reached bob
# exactly once (0 lost, 0 duplicates), one bind in all, no lwIP pool/heap
# failure, stack and arena below their sizes.
# Last line: "firmware_sm: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-build}
PROSODY="$root/tests/prosody/prosody.sh"
KL=${KINGLET:-$root/$BUILD/kinglet}
QEMU=${FW_QEMU:-qemu-system-arm}
TIMEOUT=${FW_TIMEOUT:-300}
DEVICE=alice@localhost/sensor
PERIOD=10000 KA_T=3000 KA_T2=2000

SUITE=firmware_sm
. "$root/tests/lib/results.sh"

for t in "$QEMU" arm-none-eabi-gcc; do
	command -v "$t" >/dev/null || { bad "$t not installed (make deps)"; finish; }
done
[ -x "$KL" ] || { bad "no host CLI $KL (make $KL)"; finish; }

DIR=$(mktemp -d /tmp/kl-fwsm.XXXXXX)
qemu_pid= PIDS=""
cleanup() {
	[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	"$PROSODY" stop "$DIR/prosody" >/dev/null 2>&1
	[ -n "${KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT

uart() { tr -d '\r' <"$DIR/uart.raw" >"$DIR/uart.log"; }
uart_count() { uart; grep -cE -- "$1" "$DIR/uart.log"; }
# wait_uart REGEX SECONDS [COUNT]: until COUNT lines match (default 1)
wait_uart() {
	local n=$((${2} * 10))
	for _ in $(seq $n); do
		[ "$(uart_count "$1")" -ge "${3:-1}" ] && return 0
		kill -0 "$qemu_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
mon() { # a QEMU command over QMP: set_link on|off, system_reset
	python3 - "$DIR/qmp.sock" "$@" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
def call(cmd, **args):
    f.write(json.dumps({"execute": cmd, "arguments": args} if args else {"execute": cmd}) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r
json.loads(f.readline())  # the greeting
call("qmp_capabilities")
if sys.argv[2] == "set_link":
    r = call("set_link", name="net0", up=sys.argv[3] == "on")
else:
    r = call(sys.argv[2])
if "error" in r:
    print("qmp %s: %s" % (" ".join(sys.argv[2:]), r["error"]), file=sys.stderr)
    sys.exit(1)
PY
}
ctl() { python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1]))); s.sendall(sys.argv[2].encode()+b"\n"); print(s.makefile().readline().strip())' "$CTL" "$1"; }
note() { # a one-shot client sends the device a message
	timeout -k 2 20 "$KL" --host 127.0.0.1 --cafile "$DIR/prosody/ca.pem" --jid carol@localhost/s --password carolpass \
		--send $DEVICE "$1" --timeout 10 >>"$DIR/notes.out" 2>>"$DIR/notes.err"
}

"$PROSODY" start "$DIR/prosody" --c2s-port 5222 >/dev/null || { bad "prosody start"; finish; }
ok "prosody started (mod_smacks)"

python3 "$root/tests/fault_proxy.py" --listen 127.0.0.1:0 --target 127.0.0.1:5222 --control 127.0.0.1:0 \
	--log "$DIR/proxy.log" >"$DIR/proxy.out" 2>"$DIR/proxy.err" &
PIDS="$PIDS $!"
for _ in $(seq 100); do grep -q '^control' "$DIR/proxy.out" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$DIR/proxy.out")
CTL=$(sed -n 's/^control .*:\([0-9]*\)$/\1/p' "$DIR/proxy.out")
[ -n "$PORT" ] && [ -n "$CTL" ] || { bad "fault proxy: $(cat "$DIR/proxy.err")"; finish; }

if MAKEFLAGS= make -C "$root" --no-print-directory BUILD="$BUILD" firmware-xmpp FW_XMPP_OUT="$DIR/fw" \
	FW_XMPP_CA="$DIR/prosody/ca.der" FW_XMPP_JID=$DEVICE FW_XMPP_PASSWORD=alicepass \
	FW_XMPP_SERVER=10.0.2.100 FW_XMPP_PORT=5222 FW_XMPP_TO=bob@localhost \
	FW_XMPP_PERIOD_MS=$PERIOD FW_XMPP_EXIT_AFTER=3 FW_XMPP_RECONNECT=1 FW_XMPP_KEEPALIVE="$KA_T $KA_T2" \
	>"$DIR/build.log" 2>&1; then
	ok "image built (stream management, 2 KB queue; $(tail -1 "$DIR/build.log" | awk '{print $1" text, "$2" data, "$3" bss"}'))"
else
	sed 's/^/  build| /' "$DIR/build.log"
	bad "image build"
	finish
fi

# bob collects every reading (and the echoes), online before the device's first
timeout -k 2 $((TIMEOUT + 10)) "$KL" --host 127.0.0.1 --cafile "$DIR/prosody/ca.pem" --jid bob@localhost/host \
	--password bobpass --recv 100000 --timeout "$TIMEOUT" >"$DIR/bob.out" 2>"$DIR/bob.err" &
bob=$!
PIDS="$PIDS $bob"
for _ in $(seq 100); do grep -q '^online' "$DIR/bob.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^online' "$DIR/bob.out" || { bad "bob not online: $(cat "$DIR/bob.err")"; finish; }

timeout -k 5 "$TIMEOUT" "$QEMU" -M mps2-an386 -nographic -serial stdio \
	-monitor none -qmp "unix:$DIR/qmp.sock,server=on,wait=off" \
	-semihosting-config enable=on,target=native \
	-nic "user,id=net0,model=lan9118,restrict=on,guestfwd=tcp:10.0.2.100:5222-cmd:python3 $here/stdio_relay.py $PORT" \
	-kernel "$DIR/fw/xmpp_sensor.elf" </dev/null >"$DIR/uart.raw" 2>"$DIR/qemu.err" &
qemu_pid=$!

# --- 1. first boot ----------------------------------------------------------------
if wait_uart "^xmpp_sensor: online as $DEVICE after" 90; then
	ok "first boot: online as $DEVICE ($(uart_count '^xmpp_sensor: stream management: no saved session') boot(s) with no saved session)"
else
	bad "device not online"
fi
[ "$(uart_count '^xmpp_sensor: stream management: no saved session in no-init RAM: a new session')" = 1 ] &&
	ok "cold boot: no session in no-init RAM, a new one bound" || bad "cold boot line missing"
wait_uart '^xmpp_sensor: sent "temp=21\.5 seq=1"' 20 || bad "no first reading"

# --- 2. a cut with a reset (RST) --------------------------------------------------
ctl cut >/dev/null
note "note rst-1"
if wait_uart "^xmpp_sensor: resumed as $DEVICE" 60 1; then
	ok "cut (RST): the device reconnected and resumed the session"
else
	bad "cut (RST): not resumed"
fi
wait_uart '^xmpp_sensor: message from carol@localhost/s: note rst-1$' 20 &&
	ok "cut (RST): the note sent meanwhile arrived" || bad "cut (RST): note rst-1 missing"

# --- 3. a silent cut (QEMU drops every frame) --------------------------------------
# 3 s before a reading is due: it goes out into the dead link
next_reading() { # wait for a reading, then until S seconds before the next one is due
	local sent
	sent=$(uart_count '^xmpp_sensor: sent "temp')
	wait_uart '^xmpp_sensor: sent "temp' $((PERIOD / 1000 + 10)) $((sent + 1))
	sleep $((PERIOD / 1000 - $1))
}
next_reading 3
sent_before=$(uart_count '^xmpp_sensor: sent "temp')
t_cut=$(date +%s%N)
mon set_link off
wait_uart '^xmpp_sensor: network link down \(PHY\)' 10 && ok "silent cut: set_link off, the PHY says so" ||
	bad "silent cut: no PHY link down on the UART"
note "note silent-1"
note "note silent-2"
# The keepalive probes after T idle (nothing sent or received) and calls the
# link dead T2 later: T + T2 after the cut, or, if the reading 3 s in went
# out before the probe, T + T2 after it (a stanza sent restarts T).
lim=$((3000 + KA_T + KA_T2 + 200 + 1000)) # + the ack request 200 ms after the reading, + polling
if wait_uart '^xmpp_sensor: link down \(keepalive unanswered' $(( lim / 1000 + 10 )); then
	d=$(( ($(date +%s%N) - t_cut) / 1000000 ))
	[ $d -le $lim ] && ok "silent cut: the keepalive called the link dead $d ms after the cut (limit $lim: T $KA_T + T2 $KA_T2 after the cut or after the reading 3 s in)" ||
		bad "silent cut: the link was called dead $d ms after the cut (limit $lim)"
else
	bad "silent cut: no dead-link verdict"
fi
sent_during=$(( $(uart_count '^xmpp_sensor: sent "temp') - sent_before ))
[ "$sent_during" -ge 1 ] && ok "silent cut: $sent_during reading(s) sent into the dead link" ||
	bad "silent cut: no reading went into the dead link"
mon set_link on
if wait_uart "^xmpp_sensor: resumed as $DEVICE" 60 2; then
	ok "silent cut: link back, the device reconnected at once and resumed"
else
	bad "silent cut: not resumed"
fi
n=0
for i in 1 2; do wait_uart "^xmpp_sensor: message from carol@localhost/s: note silent-$i\$" 20 && n=$((n + 1)); done
[ $n = 2 ] && ok "silent cut: both notes sent meanwhile arrived" || bad "silent cut: $n of 2 notes arrived"

# --- 4. a reset while out of range, the session in no-init RAM ----------------------
# The link goes down, a reading goes out into it (unacknowledged: kept in
# the queue and in the no-init record), then the board resets; the link
# comes back while it boots.
next_reading 3
sent=$(uart_count '^xmpp_sensor: sent "temp')
mon set_link off
wait_uart '^xmpp_sensor: sent "temp' 10 $((sent + 1)) || bad "reset: no reading before the reset"
sleep 1
mon system_reset
for i in 1 2 3; do note "note boot-$i"; done
wait_uart '^xmpp_sensor: kinglet on mps2-an386' 30 2 && ok "reset: the device booted again" || bad "reset: no second boot"
sleep 2
mon set_link on
if wait_uart '^xmpp_sensor: stream management: session restored from no-init RAM' 60; then
	ok "reset: $(grep '^xmpp_sensor: stream management: session restored' "$DIR/uart.log" | sed 's/^xmpp_sensor: stream management: //')"
else
	bad "reset: no session restored from no-init RAM"
fi
grep -qE '^xmpp_sensor: stream management: session restored .*, [1-9][0-9]* unacknowledged\)' "$DIR/uart.log" &&
	ok "reset: the reading sent into the dead link survived the reset (unacknowledged, in the record)" ||
	bad "reset: no unacknowledged stanza in the restored session"
if wait_uart "^xmpp_sensor: resumed as $DEVICE" 90 3; then
	ok "reset: the device resumed its session instead of logging in again"
else
	bad "reset: not resumed"
fi
n=0
for i in 1 2 3; do wait_uart "^xmpp_sensor: message from carol@localhost/s: note boot-$i\$" 20 && n=$((n + 1)); done
[ $n = 3 ] && ok "reset: the 3 notes sent while it was away and rebooting arrived" || bad "reset: $n of 3 notes arrived"

# --- 5. echoes, then the device closes and exits --------------------------------------
for w in a b c; do
	timeout -k 2 30 "$KL" --host 127.0.0.1 --cafile "$DIR/prosody/ca.pem" --jid carol@localhost/e --password carolpass \
		--send $DEVICE "echo $w" --recv 1 --timeout 20 >>"$DIR/echo.out" 2>>"$DIR/echo.err" ||
		bad "echo $w: $(tail -1 "$DIR/echo.err")"
done
n=$(grep -cE "^message from $DEVICE: [abc]\$" "$DIR/echo.out")
[ "$n" = 3 ] && ok "3 echoes came back" || bad "$n of 3 echoes came back"

wait "$qemu_pid"
rc=$?
qemu_pid=
sleep 1
kill "$bob" 2>/dev/null
wait "$bob" 2>/dev/null
uart
sed 's/^/  uart| /' "$DIR/uart.log"
[ -s "$DIR/qemu.err" ] && sed 's/^/  qemu| /' "$DIR/qemu.err"

# every reading exactly once at bob (per boot the numbers start again at 1)
python3 - "$DIR/uart.log" "$DIR/bob.out" >"$DIR/readings.txt" <<'PY'
import collections, re, sys
sent = collections.Counter(re.findall(r'^xmpp_sensor: sent "(temp=21\.5 seq=\d+)"', open(sys.argv[1]).read(), re.M))
got = collections.Counter(re.findall(r'^message from alice@localhost/sensor: (temp=21\.5 seq=\d+)$', open(sys.argv[2]).read(), re.M))
lost = sum((sent - got).values())
dup = sum((got - sent).values())
print(sum(sent.values()), sum(got.values()), lost, dup)
PY
read -r nsent ngot lost dup <"$DIR/readings.txt"
[ "${lost:-x}" = 0 ] && [ "${dup:-x}" = 0 ] && [ "${nsent:-0}" -ge 3 ] &&
	ok "every reading the device sent reached bob exactly once ($nsent sent, $ngot received: 0 lost, 0 duplicates)" ||
	bad "readings: sent $nsent, received $ngot, lost $lost, duplicates $dup"
n=$(grep -c '^xmpp_sensor: online as ' "$DIR/uart.log")
r=$(grep -c '^xmpp_sensor: resumed as ' "$DIR/uart.log")
[ "$n" = 1 ] && [ "$r" -ge 3 ] && ok "one bind in all: $r resumptions (cut, silent cut, reset)" ||
	bad "binds $n, resumptions $r"
grep -q '^xmpp_sensor: unacknowledged stanza' "$DIR/uart.log" && bad "a resumption failed: stanzas handed back" ||
	ok "nothing handed back as unacknowledged"
if grep -qE '^ram: lwip (pool|heap) .*\(err [1-9]' "$DIR/uart.log"; then bad "an lwIP pool or the heap ran out"; else
	ok "no lwIP pool or heap ran out"; fi
line=$(grep -E '^ram: stack high-water [0-9]+ of [0-9]+' "$DIR/uart.log" | tail -1)
if [ -n "$line" ]; then
	set -- $line
	[ "$4" -lt "$6" ] && ok "stack high-water $4 < stack $6" || bad "stack high-water $4 of $6"
else bad "no stack high-water on the UART"; fi
line=$(grep -E '^ram: mbedtls arena peak [0-9]+ of [0-9]+' "$DIR/uart.log" | tail -1)
if [ -n "$line" ]; then
	set -- $line
	[ "$5" -lt "$7" ] && ok "mbedTLS arena peak $5 < arena $7" || bad "arena peak $5 of $7"
else bad "no arena peak on the UART"; fi
grep -E '^ram: total' "$DIR/uart.log" | tail -1 | sed 's/^/     /'
grep -q '^xmpp_sensor: PASS' "$DIR/uart.log" && [ $rc = 0 ] && ok "the device closed its stream and exited 0" ||
	bad "exit status $rc"
finish
