#!/bin/bash
# tests/integration/hints_auth_test.sh — the connection-hints file is a
# secret at rest: it carries mbedTLS's saved TLS session, so whoever can
# write it could plant a session with their own server, which a resumed
# handshake never checks against a certificate. Inside a loopback-only
# namespace (tests/netns.sh; needs root):
#
#   1. planted sessions: a rogue server (tests/integration/
#      hints_rogue_server.py, Python's ssl, logs every plaintext byte it
#      receives) with a certificate from a CA the client does not trust
#      issues a genuine TLS session (tests/integration/tls_resume_client);
#      hints_forge makes it look verified under the victim's trust anchors
#      and plants it in a hints file: MACed with another key, MACed with the
#      device key and then one byte changed, without a MAC. Each, over
#      direct TLS and STARTTLS: the client reports the hints ignored (one
#      line, "failed authentication"), does a full handshake, exits 4
#      (KL_ERR_TLS_CERT), and the rogue server received no <auth> and no
#      password (its own log). The same through the simulator (lwIP port)
#      when KINGLET_SIM exists. A control: the blob MACed with the device
#      key itself is honoured (resumed, <auth> arrives): the detector works,
#      and the key is what stands between a writable file and the password.
#   2. the file itself, against the conformance peer (a trusted server that
#      resumes tickets): hints and key written 0600 (also under umask 000),
#      no temporary file left behind, authentic hints resume the session,
#      a tampered byte is reported and recovered from, a group-readable
#      hints file is used without its session, symbolic links planted at
#      the hints path, at the old predictable temporary name and at the key
#      path are never followed (the file they point to stays intact), a key
#      file that is group-readable or not a regular file is refused,
#      --cache-key names the key file.
#
# Binaries (absolute or relative to the repository root): KINGLET (default
# $BUILD/kinglet, BUILD default build), KL_HINTS_FORGE ($BUILD/tests/
# integration/hints_forge), KL_TLS_RESUME_CLIENT ($BUILD/tests/integration/
# tls_resume_client), KINGLET_SIM ($BUILD/kinglet-sim, optional). To run it
# against another build (e.g. the pre-change code in a git worktree), point
# these at that build's binaries (the forge built against that tree's
# headers). Last line: "hints_auth: N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
root=$(cd "$here/../.." && pwd)
B=${BUILD:-build}
abs() { case $1 in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }
KL=$(abs "${KINGLET:-$B/kinglet}")
FORGE=$(abs "${KL_HINTS_FORGE:-$B/tests/integration/hints_forge}")
TRC=$(abs "${KL_TLS_RESUME_CLIENT:-$B/tests/integration/tls_resume_client}")
SIM=$(abs "${KINGLET_SIM:-$B/kinglet-sim}")
ROGUE="$root/tests/integration/hints_rogue_server.py"
PEER="$root/tests/conformance/xep0305_peer.py"

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() { echo "hints_auth: $pass passed, $fail failed"; [ "$fail" = 0 ]; exit; }
die() { bad "$*"; finish; }

for b in "$KL" "$FORGE" "$TRC"; do [ -x "$b" ] || die "no binary at $b"; done

DIR=$(mktemp -d /tmp/kl-hints.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	[ -n "${KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT
port_up() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
wait_port() { for _ in $(seq 100); do port_up "$1" && return 0; sleep 0.05; done; return 1; }
json() { tail -n 1 "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])" 2>/dev/null || echo "?"; }
mode_of() { stat -c %a "$1" 2>/dev/null || echo none; }

# ---- PKI: the CA the device trusts, and a rogue one (same subject name) ---------
# shellcheck source=../lib/test_ca.sh
. "$root/tests/lib/test_ca.sh"
mkdir -p "$DIR/good" "$DIR/rogue"
make_ca "$DIR/good" && issue "$DIR/good" localhost "DNS:localhost,IP:127.0.0.1" || die "test PKI (good)"
make_ca "$DIR/rogue" && issue "$DIR/rogue" localhost "DNS:localhost,IP:127.0.0.1" || die "test PKI (rogue)"

PW='never-to-the-rogue-server'
B64=$(printf '\0alice\0%s' "$PW" | base64 -w0)
DIRECT=7443 STARTTLS=7222 PEER_PORT=7322

python3 "$ROGUE" --cert "$DIR/rogue/localhost.pem" --key "$DIR/rogue/localhost.key" --direct $DIRECT \
	--starttls $STARTTLS --log "$DIR/rogue.log" >"$DIR/rogue.out" 2>&1 &
PIDS="$PIDS $!"
wait_port $DIRECT && wait_port $STARTTLS || die "rogue server did not start: $(cat "$DIR/rogue.out")"

# ---- 1. planted sessions -----------------------------------------------------------
# The attacker's genuine session with the rogue server (its own CA trusted).
"$TRC" $DIRECT localhost "$DIR/rogue/ca.pem" --wait-ticket --session-out "$DIR/rogue.session" >"$DIR/trc.out" 2>&1
if [ -s "$DIR/rogue.session" ] && grep -q 'tls-ok' "$DIR/rogue.log"; then
	ok "a genuine TLS session from the rogue server ($(stat -c %s "$DIR/rogue.session") bytes): $(cat "$DIR/trc.out")"
else
	die "no session from the rogue server: $(cat "$DIR/trc.out")"
fi
head -c 32 /dev/urandom >"$DIR/victim.key" && chmod 600 "$DIR/victim.key"   # the device's key
head -c 32 /dev/urandom >"$DIR/attacker.key" && chmod 600 "$DIR/attacker.key" # anyone else's

# rogue_lines FROM: the rogue server's log after line FROM, once its connections closed
rogue_lines() {
	local from=$1 i
	for i in $(seq 60); do
		local new
		new=$(tail -n +"$((from + 1))" "$DIR/rogue.log")
		if [ -n "$new" ] && [ "$(grep -c ' accepted' <<<"$new")" = "$(grep -c ' closed' <<<"$new")" ]; then
			echo "$new"
			return
		fi
		sleep 0.1
	done
	tail -n +"$((from + 1))" "$DIR/rogue.log"
}

n=0
# planted NAME TLS-MODE CLIENT(cli|sim) FORGE-ARGS...: a forged hints file, the
# victim logs in with it against the rogue server.
planted() {
	local name=$1 mode=$2 client=$3 port rc before new err out
	shift 3
	n=$((n + 1))
	local d="$DIR/case$n"
	mkdir -p "$d"
	"$FORGE" --session "$DIR/rogue.session" --ca "$DIR/good/ca.pem" --domain localhost --out "$d/hints" "$@" \
		>"$d/forge.out" 2>&1 || { bad "$name: hints_forge: $(cat "$d/forge.out")"; return 1; }
	cp "$DIR/victim.key" "$d/hints.key" && chmod 600 "$d/hints.key"
	port=$([ "$mode" = direct ] && echo $DIRECT || echo $STARTTLS)
	before=$(wc -l <"$DIR/rogue.log")
	if [ "$client" = sim ]; then
		timeout -k 2 40 "$SIM" --jid alice@localhost/v --password "$PW" --port "$port" --tls "$mode" \
			--cafile "$DIR/good/ca.pem" --cache "$d/hints" --timeout 6 >"$d/out" 2>"$d/err"
	else
		timeout -k 2 30 "$KL" --jid alice@localhost/v --password "$PW" --host 127.0.0.1 --port "$port" \
			--tls "$mode" --cafile "$DIR/good/ca.pem" --cache "$d/hints" --timeout 6 >"$d/out" 2>"$d/err"
	fi
	rc=$?
	new=$(rogue_lines "$before")
	echo "$new" >"$d/rogue.log"
	err=$(tr '\n' '|' <"$d/err")
	CASE_RC=$rc CASE_DIR=$d CASE_NEW=$new CASE_ERR=$err
}

# expect_refused NAME: what the device must do with a planted session
expect_refused() {
	local name=$1 hints_lines
	[ "$CASE_RC" = 4 ] && ok "$name: exit 4 (KL_ERR_TLS_CERT)" || bad "$name: exit $CASE_RC (want 4): $CASE_ERR"
	hints_lines=$(grep -c 'hints file' "$CASE_DIR/err")
	grep -q 'hints file .* ignored: connection hints failed authentication' "$CASE_DIR/err" && [ "$hints_lines" = 1 ] &&
		ok "$name: reported once: $(grep 'hints file' "$CASE_DIR/err")" ||
		bad "$name: no single 'hints ignored' line naming the reason: $CASE_ERR"
	grep -q 'not trusted' "$CASE_DIR/err" && ok "$name: full certificate check: $(grep -m1 'not trusted' "$CASE_DIR/err")" ||
		bad "$name: no certificate failure reported: $CASE_ERR"
	if grep -q 'tls-failed' <<<"$CASE_NEW" && ! grep -q 'resumed=1' <<<"$CASE_NEW"; then
		ok "$name: the rogue server saw a full handshake end in the client's alert, no resumption"
	else
		bad "$name: rogue server: $(tr '\n' '|' <<<"$CASE_NEW")"
	fi
	if grep -q '<auth' <<<"$CASE_NEW" || grep -qF "$B64" <<<"$CASE_NEW" || grep -qF "$PW" <<<"$CASE_NEW"; then
		bad "$name: <auth/> REACHED THE ROGUE SERVER: $(grep -m1 -o "<auth[^']*'[^']*'" <<<"$CASE_NEW") (log $CASE_DIR/rogue.log)"
	else
		ok "$name: no <auth/> and no password reached the rogue server (its log: $(grep -c 'tls-in' <<<"$CASE_NEW") TLS reads)"
	fi
}

for mode in direct starttls; do
	planted "$mode, MAC made with another key" $mode cli --mac-key "$DIR/attacker.key" && expect_refused "$mode, other key"
	planted "$mode, device key's MAC, then one byte changed" $mode cli --mac-key "$DIR/victim.key" --flip &&
		expect_refused "$mode, tampered byte"
	planted "$mode, no MAC" $mode cli --no-mac && expect_refused "$mode, no MAC"
done
if [ -x "$SIM" ]; then
	planted "simulator (lwIP port), MAC made with another key" direct sim --mac-key "$DIR/attacker.key" &&
		expect_refused "simulator, other key"
else
	echo "     (no simulator at $SIM: its case skipped)"
fi

# The control: the same blob MACed with the device's own key is authentic,
# so it is resumed and the password goes to whoever holds the session: the
# detector above sees it, and the key (never in the blob) is the defence.
control() { # control CLIENT
	planted "control ($1)" direct "$1" --mac-key "$DIR/victim.key"
	if grep -q 'resumed=1' <<<"$CASE_NEW" && grep -q '<auth' <<<"$CASE_NEW"; then
		ok "control ($1): with the device's key the planted session is resumed and <auth/> reaches the rogue server (the detector works)"
	else
		bad "control ($1): expected a resumption and an <auth/> at the rogue server: $(tr '\n' '|' <<<"$CASE_NEW") / $CASE_ERR"
	fi
}
control cli
[ -x "$SIM" ] && control sim

# ---- 2. the files ---------------------------------------------------------------------
python3 "$PEER" $PEER_PORT --cert "$DIR/good/localhost.pem" --key "$DIR/good/localhost.key" \
	--log "$DIR/peer.log" >"$DIR/peer.out" 2>&1 &
PIDS="$PIDS $!"
wait_port $PEER_PORT || die "conformance peer did not start: $(cat "$DIR/peer.out")"
kl() { # kl DIR-OUT-PREFIX ARGS...: a login against the trusted peer
	local o=$1
	shift
	timeout -k 2 30 "$KL" --jid alice@localhost/f --password alicepass --host 127.0.0.1 --port $PEER_PORT \
		--cafile "$DIR/good/ca.pem" --stats --timeout 10 "$@" >"$o.json" 2>"$o.err"
}
printf 'precious\n' >"$DIR/precious" && chmod 644 "$DIR/precious"
precious_intact() { [ "$(cat "$DIR/precious")" = precious ]; }
F=$DIR/f
mkdir -p "$F"

(umask 022 && kl "$F/r1" --cache "$F/hints") || bad "first login with --cache: $(cat "$F/r1.err")"
[ "$(mode_of "$F/hints")" = 600 ] && [ "$(mode_of "$F/hints.key")" = 600 ] &&
	ok "hints and key file written 0600 under umask 022 (key created on first use)" ||
	bad "modes: hints $(mode_of "$F/hints"), key $(mode_of "$F/hints.key")"
[ "$(stat -c %s "$F/hints.key" 2>/dev/null)" = 32 ] && ok "the key file holds 32 bytes" || bad "key size $(stat -c %s "$F/hints.key")"
left=$(find "$F" -name 'hints?*' ! -name hints.key ! -name '*.json' ! -name '*.err')
[ -z "$left" ] && ok "no temporary file left beside the hints" || bad "left behind: $left"
[ ! -s "$F/r1.err" ] && ok "a missing hints file is not reported" || bad "first run stderr: $(cat "$F/r1.err")"

kl "$F/r2" --cache "$F/hints" || bad "second login: $(cat "$F/r2.err")"
[ "$(json "$F/r2.json" cache)" = hit ] && [ "$(json "$F/r2.json" tls_resumed)" = 1 ] &&
	ok "authentic hints: cache hit and the TLS session resumed ($(tail -n 1 "$DIR/peer.log" | grep -o 'resumed=[a-z]*'))" ||
	bad "second run: cache $(json "$F/r2.json" cache), tls_resumed $(json "$F/r2.json" tls_resumed): $(cat "$F/r2.err")"

(umask 000 && kl "$F/r3" --cache "$F/hints") || bad "login under umask 000: $(cat "$F/r3.err")"
[ "$(mode_of "$F/hints")" = 600 ] && ok "rewritten under umask 000: still 0600" || bad "umask 000: $(mode_of "$F/hints")"

python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)" "$F/hints"
kl "$F/r4" --cache "$F/hints" || bad "login after a tampered byte: $(cat "$F/r4.err")"
grep -q 'ignored: connection hints failed authentication' "$F/r4.err" && [ "$(json "$F/r4.json" tls_resumed)" = 0 ] &&
	ok "one byte changed in a real hints file: reported, full handshake, login works: $(cat "$F/r4.err")" ||
	bad "tampered real file: $(cat "$F/r4.err") tls_resumed $(json "$F/r4.json" tls_resumed)"
kl "$F/r5" --cache "$F/hints"
[ "$(json "$F/r5.json" tls_resumed)" = 1 ] && ok "the file written after that run is authentic again (resumed)" ||
	bad "after recovery: tls_resumed $(json "$F/r5.json" tls_resumed): $(cat "$F/r5.err")"

chmod 644 "$F/hints"
kl "$F/r6" --cache "$F/hints" || bad "login with a 0644 hints file: $(cat "$F/r6.err")"
grep -q 'readable or writable by group/others.*its TLS session is not used' "$F/r6.err" &&
	[ "$(json "$F/r6.json" tls_resumed)" = 0 ] && [ "$(json "$F/r6.json" cache)" = hit ] &&
	[ "$(mode_of "$F/hints")" = 600 ] &&
	ok "a group-readable hints file: its session is not used, the rest is, rewritten 0600: $(cat "$F/r6.err")" ||
	bad "0644 hints: $(cat "$F/r6.err") resumed $(json "$F/r6.json" tls_resumed) cache $(json "$F/r6.json" cache) mode $(mode_of "$F/hints")"

# symbolic links: at the hints path, at the old predictable temporary name
mkdir -p "$DIR/s1" && ln -s "$DIR/precious" "$DIR/s1/hints"
kl "$DIR/s1/r" --cache "$DIR/s1/hints" || bad "login with a symlink at the hints path: $(cat "$DIR/s1/r.err")"
precious_intact && [ -f "$DIR/s1/hints" ] && [ ! -L "$DIR/s1/hints" ] && [ "$(mode_of "$DIR/s1/hints")" = 600 ] &&
	grep -q 'symbolic link (not followed)' "$DIR/s1/r.err" &&
	ok "a symlink planted at the hints path is neither read nor written through (replaced by a 0600 file): $(cat "$DIR/s1/r.err")" ||
	bad "symlink at the hints path: precious $(stat -c %s "$DIR/precious") bytes, $(ls -l "$DIR/s1/hints"), $(cat "$DIR/s1/r.err")"
cp "$F/hints" "$DIR/s1/hints" 2>/dev/null
ln -sf "$DIR/precious" "$F/hints.tmp"
kl "$F/r7" --cache "$F/hints" || bad "login with a symlink at hints.tmp: $(cat "$F/r7.err")"
precious_intact && [ -L "$F/hints.tmp" ] && ok "a symlink planted at the old temporary name (hints.tmp) is not written through" ||
	bad "hints.tmp symlink: the file it points to was overwritten ($(stat -c %s "$DIR/precious") bytes, starting $(head -c 4 "$DIR/precious" | od -An -c | tr -s ' '))"
printf 'precious\n' >"$DIR/precious"
rm -f "$F/hints.tmp"

# the key file
mkdir -p "$DIR/k1" && ln -s "$DIR/precious" "$DIR/k1/hints.key"
kl "$DIR/k1/r" --cache "$DIR/k1/hints" || bad "login with a symlinked key: $(cat "$DIR/k1/r.err")"
precious_intact && grep -q 'hints key .* refused: a symbolic link' "$DIR/k1/r.err" && [ -L "$DIR/k1/hints.key" ] &&
	ok "a symlink at the key path is refused, not followed: $(cat "$DIR/k1/r.err")" ||
	bad "symlinked key: $(cat "$DIR/k1/r.err"), precious $(stat -c %s "$DIR/precious") bytes"
kl "$DIR/k1/r2" --cache "$DIR/k1/hints"
[ "$(json "$DIR/k1/r2.json" tls_resumed)" = 0 ] && ok "without a usable key no TLS session was stored (next run: full handshake)" ||
	bad "keyless: tls_resumed $(json "$DIR/k1/r2.json" tls_resumed)"
mkdir -p "$DIR/k2" && head -c 32 /dev/urandom >"$DIR/k2/hints.key" && chmod 640 "$DIR/k2/hints.key"
kl "$DIR/k2/r" --cache "$DIR/k2/hints" || bad "login with a 0640 key: $(cat "$DIR/k2/r.err")"
grep -q 'hints key .* refused: readable or writable by group/others (mode 0640' "$DIR/k2/r.err" &&
	[ "$(mode_of "$DIR/k2/hints.key")" = 640 ] &&
	ok "a group-readable key file is refused with one line: $(cat "$DIR/k2/r.err")" || bad "0640 key: $(cat "$DIR/k2/r.err")"
mkdir -p "$DIR/k3/hints.key"
kl "$DIR/k3/r" --cache "$DIR/k3/hints"
grep -q 'hints key .* refused: not a regular file' "$DIR/k3/r.err" && ok "a key path that is a directory is refused" ||
	bad "directory key: $(cat "$DIR/k3/r.err")"
mkdir -p "$DIR/k4"
kl "$DIR/k4/r" --cache "$DIR/k4/hints" --cache-key "$DIR/k4/device.key" || bad "--cache-key: $(cat "$DIR/k4/r.err")"
[ "$(mode_of "$DIR/k4/device.key")" = 600 ] && [ ! -e "$DIR/k4/hints.key" ] &&
	kl "$DIR/k4/r2" --cache "$DIR/k4/hints" --cache-key "$DIR/k4/device.key" &&
	[ "$(json "$DIR/k4/r2.json" tls_resumed)" = 1 ] &&
	ok "--cache-key names the key file (created 0600; the next run resumes with it)" ||
	bad "--cache-key: $(ls -l "$DIR/k4") $(cat "$DIR/k4/r.err" "$DIR/k4/r2.err" 2>/dev/null)"
kl "$DIR/k4/r3" --cache "$DIR/k4/hints"
grep -q 'ignored: connection hints failed authentication' "$DIR/k4/r3.err" &&
	ok "the same hints with another key (the default FILE.key, new): ignored, reported" ||
	bad "hints under another key: $(cat "$DIR/k4/r3.err")"

finish
