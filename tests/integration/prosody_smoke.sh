#!/bin/bash
# tests/integration/prosody_smoke.sh — the throwaway Prosody works: ports,
# TLS chain, BOSH, libstrophe logins, a message alice → bob, the wrong-name
# certificate is refused, and stop leaves no process behind.
# Runs itself inside tests/netns.sh (root). STROPHE_CLIENT overrides the
# client binary (default build/tests/strophe_client).
# Last line: "prosody_smoke: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
CLIENT=${STROPHE_CLIENT:-$root/build/tests/strophe_client}
case $CLIENT in /*) ;; *) CLIENT=$root/$CLIENT ;; esac

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
check_not() { local name=$1; shift; if "$@"; then bad "$name"; else ok "$name"; fi; }
finish() {
	echo "prosody_smoke: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

if [ ! -x "$CLIENT" ]; then
	bad "strophe_client missing: $CLIENT (make $CLIENT)"
	finish
fi

DIR=$(mktemp -d /tmp/kl-prosody.XXXXXX)
cleanup() {
	[ -f "$DIR/prosody.pid" ] && "$PROSODY" stop "$DIR" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Process still running from this DIR's config? (a check, never a kill)
leftover() {
	local d
	for d in /proc/[0-9]*; do
		tr '\0' ' ' < "$d/cmdline" 2>/dev/null | grep -qF -- "$DIR/prosody.cfg.lua" && return 0
	done
	return 1
}

client() { timeout -k 2 20 "$CLIENT" --host 127.0.0.1 --cafile "$DIR/ca.pem" "$@"; }

if ! "$PROSODY" start "$DIR"; then
	bad "prosody start"
	finish
fi
ok "prosody start"
pid=$(cat "$DIR/prosody.pid")

for p in 5222 5223 5280; do
	check "port $p accepts connections" port_open $p
done

s_client() {
	timeout 10 openssl s_client "$@" -CAfile "$DIR/ca.pem" -verify_hostname localhost \
		-verify_return_error </dev/null 2>&1
}
check "STARTTLS chain and name verify (openssl s_client)" \
	bash -c 'grep -q "^Verification: OK" <<<"$1"' _ \
	"$(s_client -starttls xmpp -xmpphost localhost -connect 127.0.0.1:5222)"
check "direct TLS chain and name verify (openssl s_client)" \
	bash -c 'grep -q "^Verification: OK" <<<"$1"' _ \
	"$(s_client -connect 127.0.0.1:5223 -servername localhost)"

bosh=$(timeout 10 python3 - <<'EOF' 2>&1
import http.client
c = http.client.HTTPConnection("127.0.0.1", 5280, timeout=5)
c.request("POST", "/http-bind",
          "<body rid='1000' xmlns='http://jabber.org/protocol/httpbind' to='localhost' "
          "xml:lang='en' wait='5' hold='1' ver='1.11' xmpp:version='1.0' "
          "xmlns:xmpp='urn:xmpp:xbosh'/>",
          {"Content-Type": "text/xml; charset=utf-8"})
r = c.getresponse()
print(r.status, r.read().decode())
EOF
)
check "BOSH session creation offers SASL over plain HTTP" \
	bash -c 'grep -q "^200 .*<mechanism>PLAIN</mechanism>" <<<"$1"' _ "$bosh"

out=$(client --jid alice@localhost --pass alicepass 2>&1)
check "alice logs in with libstrophe (STARTTLS)" grep -q '^online_ms=.*secured=1' <<<"$out"
echo "  libstrophe STARTTLS: $(grep -o 'online_ms=[0-9]*' <<<"$out")"

out=$(client --jid carol@localhost --pass carolpass --direct-tls --port 5223 2>&1)
check "carol logs in with libstrophe (direct TLS)" grep -q '^online_ms=.*secured=1' <<<"$out"
echo "  libstrophe direct TLS: $(grep -o 'online_ms=[0-9]*' <<<"$out")"

out=$(client --jid alice@localhost --pass wrongpass 2>&1)
check "a wrong password is refused" bash -c '[ $1 != 0 ] && ! grep -q ^online <<<"$2"' _ $? "$out"

rm -f "$DIR/bob.ready"
client --jid bob@localhost --pass bobpass --expect-body "hello bob" \
	--ready-file "$DIR/bob.ready" >"$DIR/bob.out" 2>&1 &
bob=$!
for _ in $(seq 100); do [ -f "$DIR/bob.ready" ] && break; sleep 0.1; done
out=$(client --jid alice@localhost --pass alicepass --to bob@localhost --send "hello bob" 2>&1)
check "alice sends bob a message" grep -q '^sent to=bob@localhost' <<<"$out"
wait $bob
rc=$?
check "bob receives it (exit $rc)" bash -c '[ $1 = 0 ] && grep -q "^received from=alice@localhost/.* body=hello bob$" "$2"' \
	_ $rc "$DIR/bob.out"

"$PROSODY" stop "$DIR" >/dev/null
check "stop: pid $pid is gone" bash -c '! kill -0 $1 2>/dev/null || grep -q "^State:.*Z" /proc/$1/status' _ "$pid"
check_not "stop: no process runs from $DIR" leftover
check_not "stop: port 5222 closed" port_open 5222

# Negative: the same CA, a certificate for wrong.test.
if "$PROSODY" start "$DIR" --wrong-cert >/dev/null; then
	out=$(client --jid alice@localhost --pass alicepass 2>&1)
	check "the wrong-name certificate is refused" \
		bash -c '[ $1 != 0 ] && grep -q "certificate rejected" <<<"$2"' _ $? "$out"
	"$PROSODY" stop "$DIR" >/dev/null
	check_not "stop after --wrong-cert: nothing left" leftover
else
	bad "prosody start --wrong-cert"
fi

finish
