#!/bin/bash
# tests/integration/ejabberd_test.sh — kinglet against ejabberd 23.01 (the
# Debian package), started once by tests/ejabberd/ejabberd.sh on loopback,
# inside a loopback-only network namespace:
#   - safe STARTTLS login (<= 5 round trips), lockstep (`off`, count
#     reported), direct TLS (<= 4), SCRAM with --no-plain (SCRAM-SHA-256 or
#     -1 in --stats), alice -> bob with bob --echo and the echo back, wrong
#     password (PLAIN and SCRAM) -> exit 5
#   - the server itself: listeners on 127.0.0.1 only, no epmd, BOSH at /bosh
#     answers a session-creation request, nothing left after stop
# The measured round trips are printed on one "ejabberd round trips:" line.
# Last line: "ejabberd: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
EJABBERD="$root/tests/ejabberd/ejabberd.sh"
KL=${KINGLET:-$root/build/kinglet}

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() {
	echo "ejabberd: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

DIR=$(mktemp -d /tmp/kl-ejabberd.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	"$EJABBERD" stop "$DIR" >/dev/null 2>&1
	if [ "$fail" != 0 ] && [ -n "${KL_KEEP_FAILED:-}" ]; then
		echo "ejabberd_test: kept $DIR (KL_KEEP_FAILED)" >&2
	else
		rm -rf "$DIR"
	fi
}
trap cleanup EXIT

[ -x "$KL" ] || { bad "no kinglet binary at $KL (make $root/build/kinglet)"; finish; }
t0=$(date +%s)
if "$EJABBERD" start "$DIR" >"$DIR/start.out" 2>&1; then
	ok "ejabberd started in $(( $(date +%s) - t0 )) s: $(tail -n 1 "$DIR/start.out")"
else
	bad "ejabberd start:"; cat "$DIR/start.out"; finish
fi

kl() { timeout -k 2 30 "$KL" --host 127.0.0.1 --cafile "$DIR/ca.pem" "$@"; }
json() { # json FILE KEY -> value from the last line
	tail -n 1 "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
# On a failed login: kinglet's trace of the same attempt and the log tail.
evidence() { # evidence NAME ARGS...
	local name=$1; shift
	kl "$@" --trace >"$DIR/$name.trace" 2>&1
	echo "---- kinglet --trace $* (exit $?)"; sed 's/^/  | /' "$DIR/$name.trace" | tail -n 60
	echo "---- $DIR/log/ejabberd.log (tail)"; tail -n 25 "$DIR/log/ejabberd.log" | sed 's/^/  | /'
}
# login NAME ARGS... : a --stats login as alice; sets $rt (round trips or 99)
login() {
	local name=$1; shift
	rt=99
	if kl --jid alice@localhost/rt --password alicepass "$@" --stats >"$DIR/$name.json" 2>"$DIR/$name.err"; then
		rt=$(json "$DIR/$name.json" round_trips 2>/dev/null || echo 99)
		return 0
	fi
	bad "$name login ($*): exit $?: $(cat "$DIR/$name.err")"
	evidence "$name" --jid alice@localhost/rt --password alicepass "$@"
	return 1
}

# --- the server: loopback only, no epmd ---------------------------------------
listen=$(ss -Hltn 2>/dev/null | awk '{print $4}' | sort -u | tr '\n' ' ')
nonlo=$(ss -Hltun 2>/dev/null | awk '{print $5}' | grep -v '^127\.0\.0\.1:' | tr '\n' ' ')
[ -n "$listen" ] && [ -z "$nonlo" ] && ok "listening on loopback only: $listen" ||
	bad "sockets not on 127.0.0.1: '$nonlo' (all: $listen)"
self_ns=$(readlink /proc/$$/ns/net)
ns_procs() { # command names of the processes in this namespace
	local d
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d/ns/net" 2>/dev/null)" = "$self_ns" ] || continue
		cat "$d/comm" 2>/dev/null
	done
}
if ns_procs | grep -qx epmd || ss -Hltn | grep -q ':4369 '; then
	bad "epmd runs"
else
	ok "no epmd (distribution on 127.0.0.1:5299, ERL_DIST_PORT)"
fi

# --- round trips per mode -----------------------------------------------------
safe=99 off=99 direct=99 scram=99 dscram=99 mech=none
if login safe --pipelining safe; then
	safe=$rt
	[ "$safe" -le 5 ] && ok "safe STARTTLS: $safe round trips (<= 5), $(json "$DIR/safe.json" tls), sasl $(json "$DIR/safe.json" sasl)" ||
		{ bad "safe STARTTLS: $safe round trips, expected <= 5"; evidence safe-rt --jid alice@localhost/rt --password alicepass --pipelining safe; }
fi
if login off --pipelining off; then
	off=$rt
	[ "$off" -gt "$safe" ] && ok "off (lockstep): $off round trips, safe saves $((off - safe))" ||
		bad "off: $off round trips, not more than safe ($safe)"
fi
if login direct --tls direct; then
	direct=$rt
	[ "$direct" -le 4 ] && [ "$(json "$DIR/direct.json" mode)" = direct ] &&
		ok "direct TLS (port 5223): $direct round trips (<= 4)" ||
		{ bad "direct TLS: $direct round trips (mode $(json "$DIR/direct.json" mode)), expected <= 4"
		  evidence direct-rt --jid alice@localhost/rt --password alicepass --tls direct; }
fi
if login scram --no-plain; then
	scram=$rt
	mech=$(json "$DIR/scram.json" sasl 2>/dev/null)
	case $mech in
	SCRAM-SHA-256|SCRAM-SHA-1) ok "--no-plain: $mech (server signature verified), $scram round trips" ;;
	*) bad "--no-plain used '$mech'" ;;
	esac
fi
if login dscram --tls direct --no-plain; then
	dscram=$rt
	ok "direct TLS + SCRAM: $dscram round trips, $(json "$DIR/dscram.json" sasl)"
fi

# --- alice -> bob, bob echoes ---------------------------------------------------
body="hello ejabberd <kinglet> & co"
kl --jid bob@localhost/echo --password bobpass --echo --count 1 --timeout 20 >"$DIR/bob.out" 2>"$DIR/bob.err" &
bobpid=$!
PIDS="$PIDS $bobpid"
for _ in $(seq 100); do grep -q '^online' "$DIR/bob.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^online' "$DIR/bob.out" && ok "bob online (--echo)" || bad "bob not online: $(cat "$DIR/bob.err")"
if kl --jid alice@localhost/dev --password alicepass --send bob@localhost/echo "$body" \
	--recv 1 --timeout 20 >"$DIR/alice.out" 2>"$DIR/alice.err"; then
	ok "alice sends and receives (exit 0)"
else
	bad "alice exit $?: $(cat "$DIR/alice.err")"
fi
grep -qF "message from bob@localhost/echo: $body" "$DIR/alice.out" &&
	ok "the echo came back with the exact body" || bad "echo missing: $(cat "$DIR/alice.out")"
if wait "$bobpid"; then ok "bob echoed one message and closed (exit 0)"; else bad "bob exit: $(cat "$DIR/bob.err")"; fi
grep -qF "message from alice@localhost/dev: $body" "$DIR/bob.out" &&
	ok "bob received the message" || bad "bob did not receive: $(cat "$DIR/bob.out")"

# --- wrong password -------------------------------------------------------------
kl --jid alice@localhost --password wrong --timeout 10 >/dev/null 2>"$DIR/wrongpw.err"
rc=$?
[ $rc = 5 ] && ok "wrong password (PLAIN): exit 5, '$(cat "$DIR/wrongpw.err")'" ||
	bad "wrong password: exit $rc: $(cat "$DIR/wrongpw.err")"
kl --jid alice@localhost --password wrong --no-plain --timeout 10 >/dev/null 2>"$DIR/wrongscram.err"
rc=$?
[ $rc = 5 ] && ok "wrong password (SCRAM): exit 5, '$(cat "$DIR/wrongscram.err")'" ||
	bad "wrong password with SCRAM: exit $rc: $(cat "$DIR/wrongscram.err")"

# --- BOSH at /bosh: ejabberd drops a creation body with restart + bind, so
# the CLI's auto path falls back once to the split path ----------------------
if timeout -k 2 30 "$KL" --bosh http://127.0.0.1:5280/bosh --jid alice@localhost/rt --password alicepass \
	--allow-plaintext --stats --timeout 15 >"$DIR/bosh.json" 2>"$DIR/bosh.err"; then
	boshrt=$(json "$DIR/bosh.json" round_trips 2>/dev/null || echo 99)
	ok "BOSH over HTTP: online via the $(json "$DIR/bosh.json" bosh_path) path, $boshrt round trips"
else
	bad "BOSH login: exit $?: $(cat "$DIR/bosh.err")"
	# the evidence: the same login once more with every request and response
	KL_BOSH_TRACE=1 timeout -k 2 30 "$KL" --bosh http://127.0.0.1:5280/bosh --jid alice@localhost/rt \
		--password alicepass --allow-plaintext --stats --timeout 15 2>&1 | tail -60 | sed 's/^/  | /'
fi

echo "ejabberd round trips: safe=$safe off=$off direct=$direct scram=$scram($mech) direct+scram=$dscram bosh=${boshrt:-fail}"

# --- stop: nothing left behind ---------------------------------------------------
if "$EJABBERD" stop "$DIR" >"$DIR/stop.out" 2>&1; then
	ok "$(cat "$DIR/stop.out")"
else
	bad "ejabberd stop: $(cat "$DIR/stop.out")"
fi
left=$(ns_procs | grep -xE 'beam\.smp|epmd|erl_child_setup|inet_gethost|memsup|eimp|ejabberdctl|su' | sort | uniq -c | tr -s ' \n' ' ')
[ -z "$left" ] && ok "no ejabberd, epmd or erl_child_setup process left" || bad "left behind:$left"
ss -Hltn | grep -q . && bad "still listening: $(ss -Hltn | awk '{print $4}' | tr '\n' ' ')" || ok "no listening socket left"

finish
