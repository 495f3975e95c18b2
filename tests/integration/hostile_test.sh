#!/bin/bash
# tests/integration/hostile_test.sh — the kinglet CLI against a scripted
# server that sends what no real server should (inside a loopback-only
# namespace). Each case must end in its named error, a non-zero exit, one
# line on stderr, and the password must never have been sent.
# Last line: "hostile: N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
KL=${KINGLET:-$root/build/kinglet}
DIR=$(mktemp -d /tmp/kl-hostile.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

port=16000
run() { # run SCENARIO EXIT_CODE STDERR_PATTERN [kinglet args]
	local sc=$1 want=$2 pat=$3; shift 3
	port=$((port + 1))
	python3 "$here/hostile_server.py" $port "$sc" "$DIR/$sc.in" >"$DIR/$sc.srv" 2>&1 &
	local spid=$!
	for _ in $(seq 50); do grep -q listening "$DIR/$sc.srv" && break; sleep 0.05; done
	timeout -k 2 20 "$KL" --jid alice@localhost --password S3cretPw --host 127.0.0.1 --port $port \
		--timeout 5 "$@" >/dev/null 2>"$DIR/$sc.err"
	local rc=$?
	wait $spid
	local err; err=$(cat "$DIR/$sc.err")
	if [ $rc = "$want" ] && grep -qiE -- "$pat" "$DIR/$sc.err" && [ "$(wc -l <"$DIR/$sc.err")" = 1 ]; then
		ok "$sc: exit $rc: $err"
	else
		bad "$sc: exit $rc (want $want), stderr: $err"
	fi
	# base64 of "\0alice\0S3cretPw" and the raw password must never appear
	if grep -qaE 'AGFsaWNlAFMzY3JldFB3|S3cretPw|<auth' "$DIR/$sc.in"; then
		bad "$sc: the password was sent"
	else
		ok "$sc: no credential sent"
	fi
}

run no-starttls 4 'does not offer STARTTLS'
run no-starttls 4 'does not offer STARTTLS' --pipelining off
run mismatch 6 'end tag does not match'
run comment 6 'comment'
run dtd 6 'DTD'
run entity 6 'entity'
run utf8 6 'UTF-8'
run long-name 6 'name longer'
run deep 6 'nesting deeper'
run stream-error 6 'stream error from server: host-unknown'
run after-proceed 4 'after <proceed/>'
run starttls-failure 4 'refused STARTTLS'
run close 6 'closed the stream'
# a server that closes without TLS never gets the password, even when the
# client may log in without TLS only if told so explicitly
echo "hostile: $pass passed, $fail failed"
[ "$fail" = 0 ]
