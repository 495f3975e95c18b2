# tests/lib/results.sh — the pass/fail bookkeeping of an integration script.
# Set SUITE, then source it:
#   ok TEXT, bad TEXT   count and print a PASS / FAIL line
#   finish              print "SUITE: N passed, N failed" (the line
#                       tests/summarize.sh adds up) and exit, 1 on any failure
#   json FILE KEY       KEY of the JSON object on FILE's last line (--stats)
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() {
	echo "$SUITE: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}
json() {
	tail -n 1 "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
