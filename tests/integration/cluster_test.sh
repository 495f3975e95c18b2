#!/bin/bash
# tests/integration/cluster_test.sh — kinglet against a two-node ejabberd
# 23.01 cluster (tests/ejabberd/cluster.sh: node A on 127.0.0.2, node B on
# 127.0.0.3, one Mnesia) in a loopback-only network namespace:
#   - the cluster forms: `list_cluster` on each node names both; listeners
#     on 127.0.0.2/127.0.0.3 only, no epmd; the accounts (--users 100)
#     reach B (dev100 logs in there)
#   - alice on A -> bob on B (bob --echo) and the echo back: across nodes
#   - SRV (dnsmasq on 127.0.0.53:5353, `cluster.sh dns`): --srv finds node A
#     (priority 10) over STARTTLS and, through _xmpps-client, direct TLS
#   - XEP-0198 across nodes (a small Python client, direct TLS): a session
#     enabled on A whose link is lost is resumed on B while A lives
#     (<resumed/>); with A killed, resumption on B fails (item-not-found),
#     the session state died with A's process
#   - failover: alice (--srv --reconnect) online on A; `kill-node a`
#     (SIGKILL); she comes back on B ("online again": a new session, since
#     the old one cannot be resumed) and gets a message bob sends then
#   - `start-node a`: A boots on its spool and rejoins (list_cluster on
#     both), carol logs in on A
#   - stop: nothing of the cluster is left
# Last line: "cluster: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
CLUSTER="$root/tests/ejabberd/cluster.sh"
KL=${KINGLET:-$root/build/kinglet}
A=127.0.0.2 B=127.0.0.3 DNS=127.0.0.53:5353

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() {
	echo "cluster: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

DIR=$(mktemp -d /tmp/kl-cluster.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	"$CLUSTER" stop "$DIR" >/dev/null 2>&1
	if [ "$fail" != 0 ] && [ -n "${KL_KEEP_FAILED:-}" ]; then
		echo "cluster_test: kept $DIR (KL_KEEP_FAILED)" >&2
	else
		rm -rf "$DIR"
	fi
}
trap cleanup EXIT
now_ms() { date +%s%3N; }

[ -x "$KL" ] || { bad "no kinglet binary at $KL (make $root/build/kinglet)"; finish; }
t0=$(now_ms)
if "$CLUSTER" start "$DIR" --users 100 >"$DIR/start.out" 2>&1; then
	ok "cluster started in $(( $(now_ms) - t0 )) ms: $(tr '\n' ' ' < "$DIR/start.out")"
else
	bad "cluster start:"; cat "$DIR/start.out"; finish
fi

kl() { timeout -k 2 40 "$KL" --cafile "$DIR/ca.pem" "$@"; }
json() { tail -n 1 "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])" 2>/dev/null || echo "?"; }
ctl() { # ctl a|b ARGS...
	local d=$DIR/$1; shift
	timeout -k 2 20 ejabberdctl --config-dir "$d" --ctl-config "$d/ejabberdctl.cfg" --config "$d/ejabberd.yml" \
		--spool "$d/spool" --logs "$d/log" "$@" </dev/null
}
members() { ctl "$1" list_cluster 2>&1 | tr -d "'" | sort | tr '\n' ' '; }
want="ejabberd_a@127.0.0.2 ejabberd_b@127.0.0.3 "
wait_for() { # FILE REGEX SECONDS
	local i
	for i in $(seq $(($3 * 10))); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
# the c2s peer (server address) of kinglet's established connection(s)
c2s_peers() { ss -Htn state established 2>/dev/null | awk '{print $4}' | grep -E ':(5222|5223)$' | sort -u | tr '\n' ' '; }

# --- the cluster ------------------------------------------------------------------
ma=$(members a) mb=$(members b)
[ "$ma" = "$want" ] && [ "$mb" = "$want" ] && ok "list_cluster on A and on B: $ma" ||
	bad "list_cluster: A '$ma', B '$mb' (want '$want')"
listen=$(ss -Hltun 2>/dev/null | awk '{print $5}' | sort -u | tr '\n' ' ')
nonlo=$(ss -Hltun 2>/dev/null | awk '{print $5}' | grep -vE '^127\.0\.0\.[23]:(5222|5223|5299)$' | tr '\n' ' ')
[ -z "$nonlo" ] && ok "listening on the two node addresses only: $listen" || bad "other sockets: '$nonlo' (all: $listen)"
self_ns=$(readlink /proc/$$/ns/net)
epmd=""
for d in /proc/[0-9]*; do
	[ "$(readlink "$d/ns/net" 2>/dev/null)" = "$self_ns" ] && [ "$(cat "$d/comm" 2>/dev/null)" = epmd ] && epmd=1
done
[ -z "$epmd" ] && ok "no epmd (distribution on 127.0.0.2:5299 and 127.0.0.3:5299)" || bad "epmd runs"
kl --host $B --jid dev100@localhost/r --password devpass --timeout 15 >"$DIR/dev.out" 2>"$DIR/dev.err" &&
	grep -q '^online' "$DIR/dev.out" && ok "dev100 (registered on A before B joined) logs in on B" ||
	bad "dev100 on B: $(cat "$DIR/dev.err")"

# --- alice on A -> bob on B ---------------------------------------------------------
body="across the cluster <kinglet> & co"
kl --host $B --jid bob@localhost/echo --password bobpass --echo --count 1 --timeout 30 >"$DIR/bob.out" 2>"$DIR/bob.err" &
bobpid=$!
PIDS="$PIDS $bobpid"
wait_for "$DIR/bob.out" '^online' 10 && ok "bob online on B (--echo)" || bad "bob not online on B: $(cat "$DIR/bob.err")"
if kl --host $A --jid alice@localhost/dev --password alicepass --send bob@localhost/echo "$body" \
	--recv 1 --timeout 20 >"$DIR/alice.out" 2>"$DIR/alice.err"; then
	ok "alice on A sends and receives (exit 0)"
else
	bad "alice on A: exit $?: $(cat "$DIR/alice.err")"
fi
grep -qF "message from bob@localhost/echo: $body" "$DIR/alice.out" &&
	ok "bob's echo came back from B to A" || bad "echo missing: $(cat "$DIR/alice.out")"
wait "$bobpid"
grep -qF "message from alice@localhost/dev: $body" "$DIR/bob.out" &&
	ok "bob on B received alice's message from A" || bad "bob did not receive: $(cat "$DIR/bob.out") $(cat "$DIR/bob.err")"

# --- SRV ------------------------------------------------------------------------------
if "$CLUSTER" dns "$DIR" >"$DIR/dns.out" 2>&1; then
	ok "$(cat "$DIR/dns.out")"
else
	bad "cluster.sh dns: $(cat "$DIR/dns.out")"
fi
kl --jid alice@localhost/srv --password alicepass --srv --dns $DNS --stats --timeout 15 >"$DIR/srv.json" 2>"$DIR/srv.err" &&
	[ "$(json "$DIR/srv.json" srv)" = dns ] && [ "$(json "$DIR/srv.json" mode)" = starttls ] &&
	ok "--srv: a node found through _xmpp-client._tcp.localhost ($(json "$DIR/srv.json" round_trips) round trips)" ||
	bad "--srv: $(cat "$DIR/srv.err") $(tail -n 1 "$DIR/srv.json")"
kl --jid alice@localhost/srv --password alicepass --srv --dns $DNS --tls direct --stats --timeout 15 >"$DIR/srvd.json" 2>"$DIR/srvd.err" &&
	[ "$(json "$DIR/srvd.json" srv)" = dns ] && [ "$(json "$DIR/srvd.json" mode)" = direct ] &&
	ok "--srv --tls direct: a node found through _xmpps-client._tcp.localhost" ||
	bad "--srv direct: $(cat "$DIR/srvd.err") $(tail -n 1 "$DIR/srvd.json")"

# --- XEP-0198 across nodes ---------------------------------------------------------------
cat > "$DIR/sm.py" <<'EOF'
# sm.py CA enable IP RES | CA resume IP PREVID: carol over direct TLS (5223);
# enable: bind RES, <enable resume/>, print the id, drop the link (RST, no
# </stream>); resume: print the server's <resumed/> or <failed/>.
import base64, re, socket, ssl, struct, sys
ca, cmd, ip, arg = sys.argv[1:5]
buf = b""
def rd(s, pat):
    global buf
    s.settimeout(10)
    while True:
        m = re.search(pat, buf, re.S)
        if m:
            buf = buf[m.end():]
            return m.group(0)
        d = s.recv(65536)
        if not d:
            sys.exit("closed: %r" % buf[-300:])
        buf += d
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection((ip, 5223), 5), server_hostname="localhost")
op = (b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client'"
      b" xmlns:stream='http://etherx.jabber.org/streams'>")
s.sendall(op); rd(s, rb"</stream:features>")
s.sendall(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
          base64.b64encode(b"\0carol\0carolpass") + b"</auth>")
rd(s, rb"<success[^>]*(/>|</success>)")
s.sendall(op); rd(s, rb"</stream:features>")
if cmd == "enable":
    s.sendall(b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" +
              arg.encode() + b"</resource></bind></iq>")
    rd(s, rb"<jid>[^<]*</jid>")
    s.sendall(b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    m = rd(s, rb"<enabled [^>]*>")
    print(re.search(rb"id=['\"]([^'\"]+)", m).group(1).decode(), flush=True)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
else:
    s.sendall(b"<resume xmlns='urn:xmpp:sm:3' previd='" + arg.encode() + b"' h='0'/>")
    print(rd(s, rb"<resumed[^>]*>|<failed.*?</failed>|<failed[^>]*/>").decode())
EOF
sm() { timeout -k 2 20 python3 "$DIR/sm.py" "$DIR/ca.pem" "$@" 2>&1; }
id=$(sm enable $A live)
r=$(sm resume $B "$id")
case $r in
"<resumed "*) ok "XEP-0198: a session enabled on A (link lost, A alive) is resumed on B: $r" ;;
*) bad "resume on B with A alive (id '$id'): $r" ;;
esac

# --- failover: kill A ------------------------------------------------------------------
kl --jid alice@localhost/fail --password alicepass --srv --dns $DNS --reconnect --backoff 200 1000 \
	--recv 1 --timeout 60 --stats >"$DIR/fail.out" 2>"$DIR/fail.err" &
alicepid=$!
PIDS="$PIDS $alicepid"
if wait_for "$DIR/fail.out" '^online ' 15; then
	peers=$(c2s_peers)
	case $peers in
	*"$A:5222"*) ok "alice (--srv --reconnect) online on A ($peers)" ;;
	*) bad "alice online, but not on A: c2s peers '$peers'" ;;
	esac
else
	bad "alice (--srv --reconnect) not online: $(cat "$DIR/fail.err")"
fi
smid=$(sm enable $A killed)
t1=$(now_ms)
"$CLUSTER" kill-node "$DIR" a >"$DIR/kill.out" 2>&1 && ok "$(cat "$DIR/kill.out")" || bad "kill-node a: $(cat "$DIR/kill.out")"
if wait_for "$DIR/fail.out" '^(online again|resumed) ' 20; then
	ok "alice came back $(( $(now_ms) - t1 )) ms after the kill: '$(grep -E '^(online again|resumed) ' "$DIR/fail.out" | head -n 1)' (c2s peers now: $(c2s_peers)); kinglet said: $(grep -v '^$' "$DIR/fail.err" | head -n 3 | tr '\n' ' ')"
else
	bad "alice did not come back after A died: $(tail -n 5 "$DIR/fail.err" | tr '\n' ' ')"
fi
r=$(sm resume $B "$smid")
case $r in
*item-not-found*) ok "XEP-0198 with A killed: resumption on B refused (ejabberd 23.01 keeps the session in A's process): $r" ;;
"<resumed "*) ok "XEP-0198 with A killed: resumed on B (!): $r" ;;
*) bad "resume on B after A died: $r" ;;
esac
kl --host $B --jid bob@localhost/after --password bobpass --send alice@localhost/fail "after the failover" \
	--timeout 15 >"$DIR/bob2.out" 2>"$DIR/bob2.err" || bad "bob's message after the failover: $(cat "$DIR/bob2.err")"
if wait "$alicepid"; then
	grep -qF "message from bob@localhost/after: after the failover" "$DIR/fail.out" &&
		ok "alice, now on B, got bob's message and ended (exit 0; link_downs $(json "$DIR/fail.out" link_downs), resumes $(json "$DIR/fail.out" resumes))" ||
		bad "alice exit 0 without bob's message: $(cat "$DIR/fail.out")"
else
	bad "alice after the failover: exit $?: $(tail -n 5 "$DIR/fail.err" | tr '\n' ' ')"
fi

# --- A back ----------------------------------------------------------------------------
t1=$(now_ms)
if "$CLUSTER" start-node "$DIR" a >"$DIR/restart.out" 2>&1; then
	ok "$(cat "$DIR/restart.out")"
else
	bad "start-node a: $(cat "$DIR/restart.out")"
fi
ma=$(members a) mb=$(members b)
[ "$ma" = "$want" ] && [ "$mb" = "$want" ] && ok "A rejoined: list_cluster on both: $ma" ||
	bad "after start-node: A '$ma', B '$mb'"
kl --host $A --jid carol@localhost/back --password carolpass --timeout 15 >"$DIR/carol.out" 2>"$DIR/carol.err" &&
	grep -q '^online' "$DIR/carol.out" && ok "carol logs in on the restarted A" || bad "carol on A: $(cat "$DIR/carol.err")"

# --- stop --------------------------------------------------------------------------------
t1=$(now_ms)
"$CLUSTER" stop "$DIR" >"$DIR/stop.out" 2>&1 && ok "stopped in $(( $(now_ms) - t1 )) ms" || bad "stop: $(cat "$DIR/stop.out")"
left=""
for d in /proc/[0-9]*; do
	[ "$(readlink "$d/ns/net" 2>/dev/null)" = "$self_ns" ] || continue
	case $(cat "$d/comm" 2>/dev/null) in beam.smp|epmd|dnsmasq|erl_child_setup) left="$left ${d#/proc/}" ;; esac
done
[ -z "$left" ] && [ -z "$(ss -Hltun 2>/dev/null)" ] && ok "nothing left (no beam.smp, dnsmasq, listener)" ||
	bad "left after stop:$left $(ss -Hltun | tr '\n' ' ')"
finish
