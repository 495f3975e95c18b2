#!/bin/bash
# tests/integration/dns_test.sh — SRV resolution through kinglet's POSIX UDP
# resolver (port/posix/kl_posix_dns.c) against a real dnsmasq on
# 127.0.0.1:5353, inside a loopback-only network namespace (no query can
# leave the machine):
#   - _xmpp-client order by priority, glue address from the additional section
#   - XEP-0368: _xmpps-client (direct TLS) first, then _xmpp-client
#   - TTL passed through; weighted order within one priority
#   - a domain without records falls back to (domain, 5222) / (domain, 5223)
#   - target "." : service decidedly not available
#   - a dead resolver port: KL_ERR_TIMEOUT within the timeout
#   - a lost first datagram: the query is resent after half the timeout
# dnsmasq is started by PID and stopped by PID. Last line:
# "dns: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
CLIENT=${DNS_CLIENT:-$root/build/tests/integration/dns_client}
DNS=127.0.0.1:5353

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() {
	echo "dns: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

DIR=$(mktemp -d /tmp/kl-dns.XXXXXX)
DNSMASQ_PID=
RELAY_PID=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	[ -n "$RELAY_PID" ] && kill "$RELAY_PID" 2>/dev/null
	if [ -n "$DNSMASQ_PID" ]; then
		kill "$DNSMASQ_PID" 2>/dev/null
		wait "$DNSMASQ_PID" 2>/dev/null
	fi
	rm -rf "$DIR"
}
trap cleanup EXIT

command -v dnsmasq >/dev/null || { bad "dnsmasq not installed (make deps: dnsmasq-base)"; finish; }
[ -x "$CLIENT" ] || { bad "no $CLIENT (make $CLIENT)"; finish; }

# --local=/test/: dnsmasq answers every *.test name itself (NXDOMAIN when it
# has no record) and, with --no-resolv and no --server, forwards nothing.
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-dhcp-interface=lo \
	--port=5353 --listen-address=127.0.0.1 --bind-interfaces --pid-file= --user=root \
	--local=/test/ --local-ttl=300 --log-queries --log-facility="$DIR/dnsmasq.log" \
	--srv-host=_xmpp-client._tcp.example.test,xmpp2.example.test,5222,20,0 \
	--srv-host=_xmpp-client._tcp.example.test,xmpp1.example.test,5222,10,0 \
	--srv-host=_xmpps-client._tcp.example.test,xmpp1.example.test,5223,5,0 \
	--host-record=xmpp1.example.test,127.0.0.1 \
	--srv-host=_xmpp-client._tcp.weighted.test,heavy.weighted.test,5222,30,90 \
	--srv-host=_xmpp-client._tcp.weighted.test,light.weighted.test,5222,30,10 \
	--srv-host=_xmpp-client._tcp.dot.test \
	--srv-host=_xmpps-client._tcp.dot.test \
	2>"$DIR/dnsmasq.err" &
DNSMASQ_PID=$!

up=0
for _ in $(seq 50); do
	kill -0 "$DNSMASQ_PID" 2>/dev/null || break
	if "$CLIENT" --srv --timeout 200 example.test "$DNS" >/dev/null 2>&1; then up=1; break; fi
	sleep 0.1
done
if [ "$up" = 1 ]; then
	ok "dnsmasq up on $DNS (pid $DNSMASQ_PID)"
else
	bad "dnsmasq did not come up: $(cat "$DIR/dnsmasq.err" "$DIR/dnsmasq.log" 2>/dev/null | tail -5)"
	finish
fi

run() { # run ARGS... -> the client's exit status, output in $DIR/out
	"$CLIENT" "$@" >"$DIR/out" 2>&1
}
expect() { # expect NAME WANT (exact candidate lines)
	local got
	got=$(grep -v '^elapsed_ms' "$DIR/out")
	if [ "$got" = "$2" ]; then ok "$1"; else bad "$1: got [$got] want [$2]"; fi
}

# --- STARTTLS: priority order, glue ---------------------------------------------
run example.test "$DNS"
expect "_xmpp-client by priority (10 before 20), glue 127.0.0.1 for xmpp1" \
"candidate xmpp1.example.test 5222 starttls srv 127.0.0.1
candidate xmpp2.example.test 5222 starttls srv"

# --- direct TLS (XEP-0368): _xmpps-client first ----------------------------------
run --direct example.test "$DNS"
expect "direct TLS: _xmpps-client first, then _xmpp-client" \
"candidate xmpp1.example.test 5223 direct srv 127.0.0.1
candidate xmpp1.example.test 5222 starttls srv 127.0.0.1
candidate xmpp2.example.test 5222 starttls srv"

# --- raw result: TTL, status -------------------------------------------------------
run --srv example.test "$DNS"
expect "raw SRV result: status, records, TTL 300 from dnsmasq" \
"status 0
srv 10 0 5222 300 xmpp1.example.test
srv 20 0 5222 300 xmpp2.example.test
addr 127.0.0.1 300 0
ttl 300"

# --- weights: both orders occur, the heavy one first most of the time -----------
heavy=0 light=0
for _ in $(seq 40); do
	run weighted.test "$DNS" || continue
	case "$(head -1 "$DIR/out")" in
	"candidate heavy.weighted.test 5222 starttls srv") heavy=$((heavy + 1)) ;;
	"candidate light.weighted.test 5222 starttls srv") light=$((light + 1)) ;;
	esac
done
if [ $((heavy + light)) = 40 ] && [ "$heavy" -gt "$light" ] && [ "$light" -ge 0 ]; then
	ok "weighted order within one priority: heavy (90) first $heavy/40, light (10) $light/40"
else
	bad "weighted order: heavy $heavy, light $light of 40"
fi

# --- no records: fallback ---------------------------------------------------------
run norecords.test "$DNS"
expect "no SRV (NXDOMAIN): fallback to (domain, 5222)" \
"candidate norecords.test 5222 starttls fallback"
run --direct norecords.test "$DNS"
expect "no SRV, direct TLS: fallback to (domain, 5223) then (domain, 5222)" \
"candidate norecords.test 5223 direct fallback
candidate norecords.test 5222 starttls fallback"
run --srv norecords.test "$DNS"
expect "raw result for a domain without records: KL_DNS_NO_RECORD" \
"status 1
ttl 0"

# --- "." target ------------------------------------------------------------------
if run --srv dot.test "$DNS"; then
	expect "target \".\": KL_DNS_UNAVAILABLE" "status 2
ttl 300"
else
	bad "target \".\": $(cat "$DIR/out")"
fi
run dot.test "$DNS"
if grep -q '^error -76 KL_ERR_DNS_UNAVAILABLE' "$DIR/out"; then
	ok "both services \".\": KL_ERR_DNS_UNAVAILABLE, no fallback"
else
	bad "\".\" candidates: $(cat "$DIR/out")"
fi

# --- dead resolver: timeout within the budget --------------------------------------
run --timeout 1000 example.test 127.0.0.1:5354
st=$?
ms=$(sed -n 's/^elapsed_ms //p' "$DIR/out")
if [ "$st" = 1 ] && grep -q '^error -49 KL_ERR_TIMEOUT' "$DIR/out" && [ "${ms:-0}" -ge 950 ] && [ "${ms:-9999}" -le 1300 ]; then
	ok "dead resolver port: KL_ERR_TIMEOUT after ${ms} ms (timeout 1000 ms)"
else
	bad "dead resolver: exit $st, $(tr '\n' ' ' <"$DIR/out")"
fi

# --- retry: a relay that drops the first datagram; the resent query is answered --
python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 5355))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
n = 0
while True:
    q, a = s.recvfrom(2048); n += 1
    print("got", n, flush=True)
    if n == 1: continue
    u.sendto(q, ("127.0.0.1", 5353)); r, _ = u.recvfrom(2048); s.sendto(r, a)
' >"$DIR/relay.log" 2>&1 &
RELAY_PID=$!
for _ in $(seq 30); do ss -uln 2>/dev/null | grep -q "127.0.0.1:5355 " && break; sleep 0.1; done
run --timeout 1000 example.test 127.0.0.1:5355
ms=$(sed -n 's/^elapsed_ms //p' "$DIR/out")
if head -1 "$DIR/out" | grep -q '^candidate xmpp1.example.test 5222' && [ "${ms:-0}" -ge 450 ] && [ "${ms:-9999}" -lt 1000 ] &&
	[ "$(grep -c '^got' "$DIR/relay.log")" = 2 ]; then
	ok "first datagram lost: resent after half the timeout, answered after ${ms} ms"
else
	bad "retry: $(tr '\n' ' ' <"$DIR/out") relay: $(tr '\n' ' ' <"$DIR/relay.log")"
fi
kill "$RELAY_PID" 2>/dev/null
wait "$RELAY_PID" 2>/dev/null
RELAY_PID=

# dnsmasq saw each lookup's query once: no resend when the answer arrives
n=$(grep -c 'query\[SRV\] _xmpp-client._tcp.norecords.test' "$DIR/dnsmasq.log" 2>/dev/null || echo 0)
if [ "$n" = 3 ]; then
	ok "one query per lookup when the answer arrives (3 lookups, 3 queries)"
else
	bad "norecords queries seen by dnsmasq: $n (want 3)"
fi

# --- bad arguments ------------------------------------------------------------------
run example.test "not-an-address"
if grep -q '^error -1 KL_ERR_ARG' "$DIR/out"; then
	ok "resolver 'not-an-address': KL_ERR_ARG"
else
	bad "bad resolver: $(cat "$DIR/out")"
fi
run "bad domain" "$DNS"
if grep -q '^error -1 KL_ERR_ARG' "$DIR/out"; then
	ok "domain with a space: KL_ERR_ARG"
else
	bad "bad domain: $(cat "$DIR/out")"
fi

kill "$DNSMASQ_PID" 2>/dev/null
wait "$DNSMASQ_PID" 2>/dev/null
DNSMASQ_PID=
ok "dnsmasq stopped by pid"
finish
