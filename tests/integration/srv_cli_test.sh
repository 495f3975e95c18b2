#!/bin/bash
# tests/integration/srv_cli_test.sh — the CLI finds Prosody through DNS SRV
# (a dnsmasq on 127.0.0.1:5353 started here; no other resolver is ever
# asked), skips a dead candidate, falls back without records, and keeps the
# answer in its connection hints for the record's TTL. Loopback-only netns.
# Last line: "srv_cli: N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
KL=${KINGLET:-$root/build/kinglet}
DIR=$(mktemp -d /tmp/kl-srv.XXXXXX)
DNSPID=""
cleanup() { [ -n "$DNSPID" ] && kill "$DNSPID" 2>/dev/null; "$PROSODY" stop "$DIR" >/dev/null 2>&1; rm -rf "$DIR"; }
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() { echo "srv_cli: $pass passed, $fail failed"; [ "$fail" = 0 ]; exit; }
json() { tail -n 1 "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])" 2>/dev/null || echo "?"; }

"$PROSODY" start "$DIR" >/dev/null || { bad "prosody start"; finish; }
# localhost: a dead candidate first (port 1), then Prosody; direct TLS on 5223
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --port=5353 \
	--listen-address=127.0.0.1 --bind-interfaces --pid-file= --user=root --local=/localhost/ --local=/test/ \
	--local-ttl=300 \
	--srv-host=_xmpp-client._tcp.localhost,dead.test,1,10,0 \
	--srv-host=_xmpp-client._tcp.localhost,xmpp.test,5222,20,0 \
	--srv-host=_xmpps-client._tcp.localhost,xmpp.test,5223,10,0 \
	--host-record=xmpp.test,127.0.0.1 --host-record=dead.test,127.0.0.1 \
	2>"$DIR/dnsmasq.err" &
DNSPID=$!
sleep 0.5
kl() { timeout -k 2 30 "$KL" --jid alice@localhost/s --password alicepass --cafile "$DIR/ca.pem" --stats --timeout 15 \
	--srv --dns 127.0.0.1:5353 "$@"; }

kl >"$DIR/a.json" 2>"$DIR/a.err" && [ "$(json "$DIR/a.json" srv)" = dns ] &&
	ok "STARTTLS server found through SRV, dead candidate skipped: $(json "$DIR/a.json" round_trips) round trips" ||
	bad "SRV STARTTLS: $(cat "$DIR/a.err")"
kl --tls direct >"$DIR/b.json" 2>"$DIR/b.err" && [ "$(json "$DIR/b.json" mode)" = direct ] &&
	ok "_xmpps-client: direct TLS found through SRV ($(json "$DIR/b.json" round_trips) round trips)" ||
	bad "SRV direct: $(cat "$DIR/b.err") $(tail -1 "$DIR/b.json")"
kl --cache "$DIR/hints" >"$DIR/c1.json" 2>"$DIR/c1.err" || bad "c1: $(cat "$DIR/c1.err")"
kill "$DNSPID"; wait "$DNSPID" 2>/dev/null; DNSPID=""
kl --cache "$DIR/hints" >"$DIR/c2.json" 2>"$DIR/c2.err" && [ "$(json "$DIR/c2.json" srv)" = cached ] &&
	ok "second login uses the cached SRV answer (DNS server gone)" || bad "cached SRV: $(cat "$DIR/c2.err") $(tail -1 "$DIR/c2.json")"
kl >/dev/null 2>"$DIR/d.err"
rc=$?
[ $rc = 3 ] && grep -q "SRV" "$DIR/d.err" && ok "dead resolver: exit 3, $(cat "$DIR/d.err")" || bad "dead resolver: exit $rc $(cat "$DIR/d.err")"
finish
