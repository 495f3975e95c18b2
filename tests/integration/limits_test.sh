#!/bin/bash
# tests/integration/limits_test.sh — no stanza from the network ends the
# device's session. A peer on another stack (tests/integration/limits_peer.py,
# Python's ssl) sends build/kinglet, through a real Prosody, one stanza per
# receive bound (depth, name and attribute lengths, attribute count, the
# namespace stack, a start tag larger than the receive buffer, a streamed
# stanza that breaks a bound late, IQ requests that break bounds), each
# between two normal messages. Every normal message must arrive, the device
# must stay online to the end, count what it dropped, and answer each
# dropped IQ request with an error.
# Last line: "limits: N passed, N failed"; exit 1 on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
PROSODY="$root/tests/prosody/prosody.sh"
KL=${KINGLET:-$root/build/kinglet}

SUITE=limits
. "$root/tests/lib/results.sh"

DIR=$(mktemp -d /tmp/kl-limits.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	"$PROSODY" stop "$DIR" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

"$PROSODY" start "$DIR" >/dev/null || { bad "prosody start"; finish; }
ok "prosody started"

cases=$(python3 -c "
import sys; sys.path.insert(0, '$here')
from limits_peer import hostile
print(len(hostile('x')))")
normal=$((cases + 1))

timeout -k 2 60 "$KL" --host 127.0.0.1 --cafile "$DIR/ca.pem" --jid alice@localhost/dev --password alicepass \
	--recv "$normal" --timeout 45 --stats >"$DIR/alice.out" 2>"$DIR/alice.err" &
alice=$!
PIDS="$PIDS $alice"
for _ in $(seq 100); do grep -q '^online' "$DIR/alice.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^online' "$DIR/alice.out" && ok "device online" || { bad "device not online: $(cat "$DIR/alice.err")"; finish; }

if timeout 60 python3 "$here/limits_peer.py" --jid bob@localhost --password bobpass --to alice@localhost/dev \
	--cafile "$DIR/ca.pem" >"$DIR/peer.out" 2>"$DIR/peer.err"; then
	ok "peer sent $cases hostile stanzas between $normal normal messages"
else
	bad "peer: $(cat "$DIR/peer.err" "$DIR/peer.out")"
fi
if wait "$alice"; then
	ok "device received all it waited for and closed cleanly (exit 0)"
else
	bad "device exit $?: $(tail -5 "$DIR/alice.err")"
fi
got=0
for i in $(seq 0 $((normal - 1))); do
	if grep -qxF "message from bob@localhost/hostile: ok-$i" "$DIR/alice.out"; then
		got=$((got + 1))
	else
		bad "normal message ok-$i did not arrive"
	fi
done
[ "$got" = "$normal" ] && ok "all $normal normal messages arrived, in between every hostile stanza"
dropped=$(json "$DIR/alice.out" stanzas_dropped 2>/dev/null || echo -1)
[ "$dropped" = "$cases" ] && ok "device counted $dropped dropped stanzas" || bad "stanzas_dropped $dropped, expected $cases; device output: $(cat "$DIR/alice.out")"
n_dropped_lines=$(grep -c '^dropped stanza: ' "$DIR/alice.out")
[ "$n_dropped_lines" = "$cases" ] && ok "the CLI reported each drop" || bad "CLI drop lines: $n_dropped_lines"
iq=$(sed -n 's/^normal [0-9]* iq-errors \(.*\)$/\1/p' "$DIR/peer.out")
case "$iq" in
"") bad "peer reported no IQ answers" ;;
*/*) [ "${iq%/*}" = "${iq#*/}" ] && ok "every dropped IQ request was answered with an error ($iq)" ||
	bad "dropped IQ requests answered: $iq" ;;
esac
finish
