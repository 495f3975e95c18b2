#!/bin/bash
# tests/integration/app_test.sh — build/kinglet's application API against
# real servers: Prosody 0.12.3 (tests/prosody/prosody.sh --app: PEP, CSI
# with mod_csi_simple, MUC at conference.localhost; --debug for the log
# checks; --roster big:1000 --roster small:10) on 5222, and ejabberd 23.01
# (tests/ejabberd/ejabberd.sh --pep: mod_pubsub with PEP, mod_caps) on
# 5262, both in one loopback-only namespace (tests/netns.sh). The other end
# of every exchange is tests/integration/app_peer.py, an independent client
# on python3-slixmpp that judges what it receives ("ok"/"bad" lines, counted
# here); kinglet's side is judged on its stdout, exit status and files.
# The device is alice@localhost/dev; bob is subscribed both ways with it
# (provisioned over XMPP by the peer), dave has subscription 'to' in
# alice's roster, erin a pending-out request; carol, frank, grace, heidi are
# strangers; big and small have provisioned rosters.
#
# Prosody:
#  1 messages of any size, twice: with stream management (the default) and
#    with --no-sm: bob sends 50 messages to alice/dev (five ~10 KB, two
#    ~50 KB; multi-byte UTF-8, < & > " ' ]]>, leading/trailing whitespace
#    and newlines, no CR); kinglet --echo --count 50 --bodies DIR: 50
#    echoes, in order, each body identical to what was sent (peer); stdout
#    holds "message from bob@localhost/app: BODY" for each, in order;
#    DIR/0001.body..0050.body byte-identical, no other file; exit 0.
#  2 --roster --cache on 1000 items (big): 1000 "roster item JID none"
#    lines, the JID set r0001..r1000@roster.test, "roster received: 1000
#    items, version '1'" (Prosody gives a version to a client that asks
#    with one only: hence --cache), exit 0; the same on 10 items (small);
#    the max RSS (/usr/bin/time %M, a second run of each) with 1000 items
#    exceeds the one with 10 by less than 256 KB (both printed).
#  3 caps: --identity "client/bot/Kinglet Test Device" --feature
#    urn:example:f1 --feature urn:example:t --caps-node
#    https://kinglet.dev/test, then a run with the defaults: bob gets
#    alice's presence with <c hash='sha-1' node='NODE' ver='VER'/>, asks
#    disco#info node='NODE#VER' (the answer names that node), computes the
#    ver (XEP-0115 section 5, written in the peer; duplicates refused) and
#    finds it equal; identity and features (given ones, caps, disco#info,
#    urn:xmpp:ping) listed; kinglet printed "caps ver VER"; disco#info
#    without node has the same ver.
#  4 IQ: an unknown get (<query xmlns='urn:example:nothing'/>) to
#    alice/dev is answered error cancel/service-unavailable with the same
#    id, from alice/dev; a ping gets a result.
#  5 subscriptions: --subscriptions anyone (carol gets subscribed;
#    "accepted"), none (frank: unsubscribed, "refused"), ask (grace:
#    unsubscribed, "asked"), the default (roster) with --roster --recv 3
#    (dave, 'to' in the roster: subscribed; erin, pending-out: subscribed;
#    heidi, stranger: unsubscribed); the roster pushes those approvals cause
#    ("roster push dave@localhost both", "roster push erin@localhost
#    from"), each acknowledged (Prosody's debug log: every <iq type='set'>
#    sent to alice/dev's session came back as a result with its id); a
#    push caused by another resource (the peer as alice/peer adds, then
#    removes pushed@roster.test: "roster push ... none", "... remove",
#    acknowledged); --roster --cache FILE before and after all that: the
#    versions printed differ.
#  6 PEP (also on ejabberd): --publish urn:example:t cur
#    "<telemetry xmlns='urn:example:t'><t>21.5</t></telemetry>"
#    --publish-option pubsub#access_model=presence (Prosody also
#    pubsub#max_items=1: ejabberd 23.01 refuses that field, resource-
#    constraint "Unknown field"): "published urn:example:t cur", exit 0; bob
#    (subscribed) reads the item (items get, compared as XML); a stranger is
#    refused (Prosody: auth/forbidden; ejabberd: auth/not-authorized +
#    presence-subscription-required); pubsub#access_model=bogus on the
#    existing node: "publish failed urn:example:t: COND" with COND Prosody's
#    conflict (or its precondition-not-met) / ejabberd's resource-constraint
#    (the exit status is printed, not judged); bob publishes b1 on his
#    node, then alice --feature urn:example:t+notify --stay 4: the last
#    item at login (the server asks kinglet's caps first) prints "pubsub
#    event from bob@localhost node urn:example:t item b1: PAYLOAD" (Prosody;
#    on ejabberd 23.01 only reported: it sends it or not from run to run),
#    and b2, published once alice's presence reached bob, prints its event
#    line (payload compared as XML).
#  7 MUC: bob creates room1@conference.localhost (instant room) and posts 5
#    messages; alice --muc room1@conference.localhost/alice --muc-send TEXT
#    --stay 3: "muc joined ... as alice", no history line
#    (<history maxstanzas='0'/>), bob's message after the join printed
#    ("muc message from room1@conference.localhost/bobby: live after join"),
#    TEXT reaches bob from room1@.../alice, "muc left ...", in that order;
#    bob sees the unavailable presence.
#  8 CSI (mod_csi_simple): --csi-inactive 3 --stay 4 (stream management
#    on): bob/csi1 becomes available 1 s after "csi inactive": alice prints
#    that presence only after "csi active" (held by the server); a second
#    run where bob/csi2 also sends a chat message 0.5 s after its presence:
#    the message prints before "csi active" (it flushes the server's queue;
#    the held presence comes with it, just before: printed as info).
# ejabberd 23.01: the caps and IQ checks (3, 4) and PEP (6).
# Every kinglet run must exit 0 unless said.
# Last line: "check-app: N passed, N failed"; exit 1 on any failure.
# KL_APP_KEEP=1 keeps the temporary directory (its path is printed).
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
KL=${KINGLET:-$root/build/kinglet}
PROSODY=$root/tests/prosody/prosody.sh
EJABBERD=$root/tests/ejabberd/ejabberd.sh
T0=$(date +%s)

SUITE=check-app
. "$root/tests/lib/results.sh"

# a python3 with slixmpp (Debian's python3-slixmpp lives in /usr/lib/python3)
PY=
for py in ${KL_APP_PYTHON:-} /usr/bin/python3 python3; do
	"$py" -c 'import slixmpp' 2>/dev/null && { PY=$py; break; }
done
[ -n "$PY" ] || { bad "no python3 with slixmpp (apt-get install python3-slixmpp; make deps)"; finish; }
[ -x "$KL" ] || { bad "missing $KL (make build/kinglet)"; finish; }

T=$(mktemp -d /tmp/kl-app.XXXXXX) || exit 1
chmod 711 "$T" # the ejabberd user must reach its DIR
P=$T/prosody E=$T/ejabberd
mkdir -p "$P" "$E"
EJPID=
cleanup() {
	[ -n "$EJPID" ] && wait "$EJPID" 2>/dev/null
	"$PROSODY" stop "$P" >/dev/null 2>&1
	"$EJABBERD" stop "$E" >/dev/null 2>&1
	if [ -n "${KL_APP_KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

# ---- helpers -------------------------------------------------------------------

# wait_file FILE REGEX SECONDS [RCFILE]: until a line of FILE matches (grep
# -E); gives up early once RCFILE exists (that process ended) and still no
# match
wait_file() {
	local i
	for i in $(seq $(($3 * 20))); do
		grep -qE -- "$2" "$1" 2>/dev/null && return 0
		if [ -n "${4:-}" ] && [ -f "$4" ]; then grep -qE -- "$2" "$1" 2>/dev/null; return; fi
		sleep 0.05
	done
	return 1
}

# kl_bg NAME ARGS...: build/kinglet ARGS in the background, stdout
# $T/NAME.out, stderr $T/NAME.err, exit status to $T/NAME.rc at the end
kl_bg() {
	local name=$1
	shift
	rm -f "$T/$name.rc"
	( timeout -k 2 40 "$KL" "$@" >"$T/$name.out" 2>"$T/$name.err"; echo $? >"$T/$name.rc" ) &
	KLPID=$!
}
# kl_join NAME: wait for it; RC its exit status
kl_join() {
	wait "$KLPID" 2>/dev/null
	RC=$(cat "$T/$1.rc" 2>/dev/null || echo '?')
}
# kl NAME ARGS...: the same in the foreground
kl() {
	kl_bg "$@"
	kl_join "$1"
}
# rc_ok NAME TEXT: exit status 0 (a verdict)
rc_ok() {
	[ "$RC" = 0 ] && ok "$2 (exit 0)" ||
		bad "$2: exit $RC; stderr: $(head -c 400 "$T/$1.err")"
}
# has NAME REGEX TEXT: kinglet's stdout has a line matching (grep -E)
has() {
	if grep -qE -- "$2" "$T/$1.out"; then ok "$3"; else
		bad "$3: no line matching '$2' in stdout: $(grep -v '^{' "$T/$1.out" | head -c 600 | tr '\n' '|')"
	fi
}
# lineno NAME REGEX: number of the first stdout line matching, or 0
lineno() {
	local n
	n=$(grep -nE -m1 -- "$2" "$T/$1.out" 2>/dev/null | cut -d: -f1)
	echo "${n:-0}"
}

PEER_ARGS=()
# peer_bg NAME ARGS...: app_peer.py COMMON ARGS in the background, output
# $T/NAME.peer (stderr .peer.err, status .peer.rc)
peer_bg() {
	local name=$1
	shift
	rm -f "$T/$name.peer.rc"
	( timeout -k 2 60 "$PY" "$here/app_peer.py" "${PEER_ARGS[@]}" "$@" >"$T/$name.peer" 2>"$T/$name.peer.err"
	  echo $? >"$T/$name.peer.rc" ) &
	PEERPID=$!
}
# peer_ready NAME: its "ready" line (or it ended: then its verdicts say why)
peer_ready() {
	wait_file "$T/$1.peer" '^ready$' 20 "$T/$1.peer.rc" ||
		bad "peer $1 never got ready: $(tail -n 3 "$T/$1.peer" "$T/$1.peer.err" 2>/dev/null | head -c 600)"
}
# peer_join NAME: wait for it and count its verdicts
peer_join() {
	wait "$PEERPID" 2>/dev/null
	tally "$1"
}
peer() {
	peer_bg "$@"
	peer_join "$1"
}
tally() {
	local v rest n=0 rc
	while IFS=' ' read -r v rest; do
		case $v in
		ok) ok "$rest"; n=$((n + 1)) ;;
		bad) bad "$rest"; n=$((n + 1)) ;;
		info) echo "  info $rest" ;;
		esac
	done <"$T/$1.peer"
	rc=$(cat "$T/$1.peer.rc" 2>/dev/null || echo '?')
	if [ "$rc" != 0 ] && [ "$rc" != 2 ]; then
		bad "peer $1 exit $rc: $(tail -n 5 "$T/$1.peer.err" | head -c 600)"
	elif [ $n = 0 ]; then
		bad "peer $1 gave no verdict: $(tail -n 5 "$T/$1.peer.err" | head -c 600)"
	fi
}

# acked NAME LOGFROM TEXT: every <iq type='set'> Prosody sent to
# alice@localhost/dev's session(s) after line LOGFROM of its debug log (the
# roster pushes) came back as a result with the same id
acked() {
	local res
	res=$(tail -n +"$2" "$P/prosody.log" | "$PY" -c '
import re, sys
lines = sys.stdin.read().split("\n")
sess = set()
for l in lines:
    m = re.match(r"^\S+ \S+ \S+ (\S+)\tdebug\tResource bound: alice@localhost/dev$", l)
    if m:
        sess.add(m.group(1))
sent, got = [], set()
for l in lines:
    f = l.split("\t")
    if len(f) < 3 or f[0].split(" ")[-1] not in sess:
        continue
    m = re.match(r"^Sending\[c2s\]: (<iq [^>]*>)", f[2])
    if m and "type=\x27set\x27" in m.group(1):
        sent.append(re.search(r"id=\x27([^\x27]*)\x27", m.group(1)).group(1))
    m = re.match(r"^Received\[c2s\]: (<iq [^>]*>)", f[2])
    if m and "type=\x27result\x27" in m.group(1):
        got.add(re.search(r"id=\x27([^\x27]*)\x27", m.group(1)).group(1))
print("%d %d %s" % (len(sent), len([i for i in sent if i in got]), " ".join(i for i in sent if i not in got)))
')
	set -- "$1" "$2" "$3" $res
	if [ "${4:-0}" -gt 0 ] && [ "$4" = "${5:-x}" ]; then
		ok "$3: $4 of $4 pushes acknowledged (Prosody log: iq result with the push's id)"
	else
		bad "$3: ${4:-?} pushes sent to alice/dev, ${5:-?} acknowledged; unanswered ids: ${*:6}"
	fi
}

# ---- servers -------------------------------------------------------------------
# ejabberd starts in the background (it takes a few seconds) while Prosody's
# part runs
( "$EJABBERD" start "$E" --pep --c2s-port 5262 --tls-port 5263 --http-port "" >"$T/ejabberd.start" 2>&1
  echo $? >"$T/ejabberd.start.rc" ) &
EJPID=$!
if KL_PROSODY_USERS="dave:davepass erin:erinpass frank:frankpass grace:gracepass heidi:heidipass big:bigpass small:smallpass" \
	"$PROSODY" start "$P" --app --debug --roster big:1000 --roster small:10 >"$T/prosody.start" 2>&1; then
	p_up=1
else
	p_up=0
	bad "prosody start --app: $(tail -n 8 "$T/prosody.start")"
fi

# the flags this suite needs
help=$("$KL" --help 2>&1)
miss=""
for f in --bodies --identity --feature --caps-node --subscriptions --publish --publish-option \
	--muc --muc-send --csi-inactive --stay; do
	case $help in *"$f "* | *"$f]"* | *"$f="*) ;; *) miss="$miss $f" ;; esac
done
[ -z "$miss" ] || echo "  info kinglet --help does not mention:$miss"

DEV=alice@localhost/dev
# WATCH NAME: the peer's options to follow kinglet run NAME (alice/dev)
WATCH() { echo "--watch $T/$1.out --target $DEV"; }
if [ $p_up = 1 ]; then
	S=prosody
	PEER_ARGS=(--host 127.0.0.1 --port 5222 --cafile "$P/ca.pem" --label "$S")
	KLA=(--host 127.0.0.1 --port 5222 --cafile "$P/ca.pem" --jid $DEV --password alicepass)

	# -- provisioning, over XMPP
	peer sub.bob --jid alice@localhost/prov --password alicepass sub --other bob@localhost:bobpass --state both
	peer sub.dave --jid alice@localhost/prov --password alicepass sub --other dave@localhost:davepass --state to
	peer sub.erin --jid alice@localhost/prov --password alicepass sub --other erin@localhost:erinpass --state ask

	# -- 5 (first half): the roster version before any push
	kl $S.ver1 "${KLA[@]}" --roster --cache "$T/alice.hints"
	rc_ok $S.ver1 "$S: --roster --cache, first run"
	v1=$(sed -n "s/^roster received: [0-9]* items, version '\(.*\)'$/\1/p" "$T/$S.ver1.out")

	# -- 1 messages of any size: with stream management (the default), then
	# without (--no-sm)
	for sm in sm nosm; do
		e=$S.echo-$sm
		mkdir -p "$T/$e.bodies" "$T/$e.expect"
		PEER_ARGS[${#PEER_ARGS[@]} - 1]="$S ($sm)"
		kl_bg $e "${KLA[@]}" --echo --count 50 --bodies "$T/$e.bodies" $([ $sm = nosm ] && echo --no-sm)
		peer $e --jid bob@localhost/app --password bobpass $(WATCH $e) echo --count 50 --expect-dir "$T/$e.expect"
		kl_join $e
		rc_ok $e "$S ($sm): --echo --count 50 --bodies DIR$([ $sm = nosm ] && echo ' --no-sm')"
		peer $e-out --watch "$T/$e.out" check-out --from bob@localhost/app --expect-dir "$T/$e.expect" --bodies "$T/$e.bodies"
	done
	PEER_ARGS[${#PEER_ARGS[@]} - 1]=$S

	# -- 3, 4 caps and IQ
	peer_bg $S.caps --jid bob@localhost/caps --password bobpass $(WATCH $S.caps) caps --node https://kinglet.dev/test \
		--identity "client/bot/Kinglet Test Device" --iq-checks \
		--features "urn:example:f1,urn:example:t,http://jabber.org/protocol/caps,http://jabber.org/protocol/disco#info,urn:xmpp:ping"
	peer_ready $S.caps
	kl $S.caps "${KLA[@]}" --identity "client/bot/Kinglet Test Device" --feature urn:example:f1 --feature urn:example:t \
		--caps-node https://kinglet.dev/test --recv 1
	peer_join $S.caps
	rc_ok $S.caps "$S: caps run (--identity, --feature x2, --caps-node, --recv 1)"
	peer_bg $S.caps0 --jid bob@localhost/caps --password bobpass $(WATCH $S.caps0) caps --node https://kinglet.dev/caps \
		--identity client/bot/kinglet \
		--features "http://jabber.org/protocol/caps,http://jabber.org/protocol/disco#info,urn:xmpp:ping"
	peer_ready $S.caps0
	kl $S.caps0 "${KLA[@]}" --recv 1
	peer_join $S.caps0
	rc_ok $S.caps0 "$S: caps run with the default identity and node"

	# -- 5 subscriptions
	for c in anyone:carol:subscribed:accepted none:frank:unsubscribed:refused ask:grace:unsubscribed:asked; do
		IFS=: read -r pol who ans line <<<"$c"
		kl_bg $S.sub-$pol "${KLA[@]}" --subscriptions $pol --recv 1
		peer $S.sub-$pol --jid $who@localhost/s --password ${who}pass $(WATCH $S.sub-$pol) subscribe --expect $ans --line $line
		kl_join $S.sub-$pol
		rc_ok $S.sub-$pol "$S: --subscriptions $pol"
	done
	from=$(($(wc -l <"$P/prosody.log") + 1))
	kl_bg $S.sub-roster "${KLA[@]}" --roster --recv 3
	for c in dave:subscribed:accepted erin:subscribed:accepted heidi:unsubscribed:refused; do
		IFS=: read -r who ans line <<<"$c"
		peer $S.sub-roster-$who --jid $who@localhost/s --password ${who}pass $(WATCH $S.sub-roster) subscribe --expect $ans --line $line
	done
	kl_join $S.sub-roster
	rc_ok $S.sub-roster "$S: --subscriptions roster (the default) with --roster --recv 3"
	has $S.sub-roster '^roster push dave@localhost both$' "$S: approving dave ('to') caused 'roster push dave@localhost both'"
	has $S.sub-roster '^roster push erin@localhost from$' "$S: approving erin (pending-out) caused 'roster push erin@localhost from'"
	acked $S.sub-roster "$from" "$S: the subscription pushes"

	from=$(($(wc -l <"$P/prosody.log") + 1))
	kl_bg $S.push "${KLA[@]}" --roster --recv 1
	peer $S.push --jid alice@localhost/peer --password alicepass $(WATCH $S.push) roster-push
	kl_join $S.push
	rc_ok $S.push "$S: --roster --recv 1 while another resource edits the roster"
	acked $S.push "$from" "$S: roster pushes from another resource"

	kl $S.ver2 "${KLA[@]}" --roster --cache "$T/alice.hints"
	rc_ok $S.ver2 "$S: --roster --cache, run after the pushes"
	v2=$(sed -n "s/^roster received: [0-9]* items, version '\(.*\)'$/\1/p" "$T/$S.ver2.out")
	[ -n "$v1" ] && [ -n "$v2" ] && [ "$v1" != "$v2" ] &&
		ok "$S: roster version before the pushes '$v1', after '$v2'" ||
		bad "$S: roster versions '$v1' then '$v2' (want two different ones)"

	# -- 2 a 1000-item roster
	for u in big:1000 small:10; do
		IFS=: read -r who n <<<"$u"
		rm -f "$T/$who.rss"
		kl_bg $S.$who --host 127.0.0.1 --port 5222 --cafile "$P/ca.pem" --jid $who@localhost/r --password ${who}pass \
			--roster --cache "$T/$who.hints"
		kl_join $S.$who
		# measured separately: the same run under /usr/bin/time (max RSS)
		if [ -x /usr/bin/time ]; then
			timeout -k 2 40 /usr/bin/time -f %M -o "$T/$who.rss" "$KL" --host 127.0.0.1 --port 5222 \
				--cafile "$P/ca.pem" --jid $who@localhost/r --password ${who}pass --roster --cache "$T/$who.rss.hints" \
				>/dev/null 2>&1
		else
			"$PY" -c 'import resource, subprocess, sys
subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=40)
open(sys.argv[1], "w").write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' \
				"$T/$who.rss" "$KL" --host 127.0.0.1 --port 5222 --cafile "$P/ca.pem" --jid $who@localhost/r \
				--password ${who}pass --roster --cache "$T/$who.rss.hints"
		fi
		rc_ok $S.$who "$S: --roster on $n items"
		want=$(for i in $(seq 1 "$n"); do printf 'r%04d@roster.test none\n' "$i"; done)
		got=$(sed -n 's/^roster item \([^ ]*\) \([^ ]*\)$/\1 \2/p' "$T/$S.$who.out" | sort)
		[ "$got" = "$want" ] && ok "$S: $n 'roster item JID none' lines, the JID set provisioned (r0001..r$(printf %04d "$n")@roster.test)" ||
			bad "$S: $n items provisioned, $(echo -n "$got" | grep -c .) roster item lines; first difference: $(diff <(echo "$want") <(echo "$got") | sed -n 2p)"
		has $S.$who "^roster received: $n items, version '1'$" "$S: 'roster received: $n items, version '1''"
	done
	rb=$(tail -n 1 "$T/big.rss" 2>/dev/null) rs=$(tail -n 1 "$T/small.rss" 2>/dev/null)
	case "$rb$rs" in
	'' | *[!0-9]*) bad "$S: no max RSS measured ('$rb', '$rs')" ;;
	*)
		[ $((rb - rs)) -lt 256 ] && ok "$S: max RSS with 1000 items $rb KB, with 10 items $rs KB (+$((rb - rs)) KB < 256 KB)" ||
			bad "$S: max RSS with 1000 items $rb KB, with 10 items $rs KB (+$((rb - rs)) KB, want < 256 KB)"
		;;
	esac
fi

# -- 6 PEP: pep_checks SERVER STRANGER REFUSAL BOGUS-COND LAST-ITEM PUBLISH-OPTIONS...
# (REFUSAL: the stanza error a stranger gets for the item; BOGUS-COND: the
# conditions, grep -E, expected for pubsub#access_model=bogus; LAST-ITEM:
# required or info, see app_peer.py pep-publish)
TELEMETRY="<telemetry xmlns='urn:example:t'><t>21.5</t></telemetry>"
pep_checks() {
	local s=$1 stranger=$2 refusal=$3 bogus=$4 last=$5
	shift 5
	kl $s.pub "${KLA[@]}" --publish urn:example:t cur "$TELEMETRY" "$@"
	rc_ok $s.pub "$s: --publish urn:example:t cur ... $*"
	has $s.pub '^published urn:example:t cur$' "$s: 'published urn:example:t cur'"
	peer $s.pep-get --jid bob@localhost/g --password bobpass pep-get --owner alice@localhost --node urn:example:t \
		--item cur --expect-payload "$TELEMETRY"
	peer $s.pep-stranger --jid $stranger@localhost/g --password ${stranger}pass pep-get --owner alice@localhost \
		--node urn:example:t --item cur --expect-error "$refusal"
	kl $s.bogus "${KLA[@]}" --publish urn:example:t bad "$TELEMETRY" --publish-option pubsub#access_model=bogus
	local l
	l=$(grep -m1 '^publish failed urn:example:t: ' "$T/$s.bogus.out")
	echo "$l" | grep -qE "^publish failed urn:example:t: ($bogus)\$" && ok "$s: pubsub#access_model=bogus: '$l' (exit $RC)" ||
		bad "$s: pubsub#access_model=bogus: want 'publish failed urn:example:t: ($bogus)' (exit $RC): $(head -c 300 "$T/$s.bogus.out" | tr '\n' '|') $(head -c 300 "$T/$s.bogus.err")"
	echo "  info $s: --publish-option pubsub#access_model=bogus: exit $RC, ${l:-no line}"
	peer_bg $s.pep-pub --jid bob@localhost/pub --password bobpass $(WATCH $s.notify) pep-publish --node urn:example:t \
		--item b1 --payload "<telemetry xmlns='urn:example:t'><t>7</t></telemetry>" \
		--item2 b2 --payload2 "<telemetry xmlns='urn:example:t'><t>8</t><unit>°C &amp; &lt;ok&gt;</unit></telemetry>" \
		--last-item $last
	peer_ready $s.pep-pub
	kl $s.notify "${KLA[@]}" --feature urn:example:t+notify --stay 4
	peer_join $s.pep-pub
	rc_ok $s.notify "$s: --feature urn:example:t+notify --stay 4"
}

if [ $p_up = 1 ]; then
	pep_checks $S heidi forbidden 'conflict|precondition-not-met' required --publish-option pubsub#access_model=presence --publish-option pubsub#max_items=1

	# -- 7 MUC
	ROOM=room1@conference.localhost
	peer_bg $S.muc --jid bob@localhost/muc --password bobpass $(WATCH $S.muc) muc-host --room $ROOM --nick bobby \
		--device-nick alice --history 5 --expect-text "hello from the device <&>"
	peer_ready $S.muc
	kl $S.muc "${KLA[@]}" --muc $ROOM/alice --muc-send "hello from the device <&>" --stay 3
	peer_join $S.muc
	rc_ok $S.muc "$S: --muc $ROOM/alice --muc-send TEXT --stay 3"
	has $S.muc "^muc joined $ROOM as alice$" "$S: 'muc joined $ROOM as alice'"
	grep -q 'history [0-9]' "$T/$S.muc.out" &&
		bad "$S: history printed despite maxstanzas=0: $(grep -m2 'history [0-9]' "$T/$S.muc.out" | tr '\n' '|')" ||
		ok "$S: none of the 5 earlier messages printed (<history maxstanzas='0'/>)"
	has $S.muc "^muc message from $ROOM/bobby: live after join$" "$S: bob's message after the join printed"
	has $S.muc "^muc left $ROOM$" "$S: 'muc left $ROOM'"
	n1=$(lineno $S.muc "^muc joined ") n2=$(lineno $S.muc "^muc message from $ROOM/bobby: live") n3=$(lineno $S.muc "^muc left ")
	[ "$n1" -gt 0 ] && [ "$n1" -lt "$n2" ] && [ "$n2" -lt "$n3" ] && ok "$S: in order: joined, message, left" ||
		bad "$S: MUC lines at $n1 (joined), $n2 (message), $n3 (left)"

	# -- 8 CSI
	for phase in presence message; do
		r=csi1
		[ $phase = message ] && r=csi2
		peer_bg $S.csi-$phase --jid bob@localhost/$r --password bobpass $(WATCH $S.csi-$phase) csi --phase $phase
		peer_ready $S.csi-$phase
		kl $S.csi-$phase "${KLA[@]}" --csi-inactive 3 --stay 4
		peer_join $S.csi-$phase
		rc_ok $S.csi-$phase "$S: --csi-inactive 3 --stay 4 ($phase)"
		ni=$(lineno $S.csi-$phase '^csi inactive$') na=$(lineno $S.csi-$phase '^csi active$')
		np=$(lineno $S.csi-$phase "^presence from bob@localhost/$r: available$")
		nm=$(lineno $S.csi-$phase "^message from bob@localhost/$r: csi message$")
		if [ $phase = presence ]; then
			[ "$ni" -gt 0 ] && [ "$ni" -lt "$na" ] && [ "$na" -lt "$np" ] &&
				ok "$S: CSI: bob's presence sent 1 s after 'csi inactive' was printed after 'csi active' (held by the server)" ||
				bad "$S: CSI: lines at $ni (csi inactive), $na (csi active), $np (presence from bob@localhost/$r)"
		else
			[ "$ni" -gt 0 ] && [ "$ni" -lt "$nm" ] && [ "$nm" -lt "$na" ] &&
				ok "$S: CSI: a chat message during the inactive window printed at once (before 'csi active')" ||
				bad "$S: CSI: lines at $ni (csi inactive), $nm (message), $na (csi active)"
			echo "  info $S: CSI with a message: the held presence printed at line $np (inactive $ni, message $nm, active $na)"
		fi
	done
fi

# ---- ejabberd ----------------------------------------------------------------
wait "$EJPID" 2>/dev/null
EJPID=
if [ "$(cat "$T/ejabberd.start.rc" 2>/dev/null)" = 0 ]; then
	S=ejabberd
	PEER_ARGS=(--host 127.0.0.1 --port 5262 --cafile "$E/ca.pem" --label "$S")
	KLA=(--host 127.0.0.1 --port 5262 --cafile "$E/ca.pem" --jid $DEV --password alicepass)
	peer sub.ej.bob --jid alice@localhost/prov --password alicepass sub --other bob@localhost:bobpass --state both
	peer_bg $S.caps --jid bob@localhost/caps --password bobpass $(WATCH $S.caps) caps --node https://kinglet.dev/test \
		--identity "client/bot/Kinglet Test Device" --iq-checks \
		--features "urn:example:f1,http://jabber.org/protocol/caps,http://jabber.org/protocol/disco#info,urn:xmpp:ping"
	peer_ready $S.caps
	kl $S.caps "${KLA[@]}" --identity "client/bot/Kinglet Test Device" --feature urn:example:f1 \
		--caps-node https://kinglet.dev/test --recv 1
	peer_join $S.caps
	rc_ok $S.caps "$S: caps run"
	pep_checks $S carol not-authorized resource-constraint info --publish-option pubsub#access_model=presence
	"$EJABBERD" stop "$E" >/dev/null 2>&1
else
	bad "ejabberd start --pep: $(tail -n 8 "$T/ejabberd.start")"
fi
"$PROSODY" stop "$P" >/dev/null 2>&1
echo "  info wall time $(($(date +%s) - T0)) s"
finish
