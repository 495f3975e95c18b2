# tests/lib/results.sh — the pass/fail bookkeeping of an integration script.
# Set SUITE, then source it:
#   ok TEXT, bad TEXT   count and print a PASS / FAIL line
#   finish              print "SUITE: N passed, N failed" (the line
#                       tests/summarize.sh adds up) and exit, 1 on any failure
#   json FILE KEY       KEY of the JSON object on FILE's last line (--stats)
#   json_true FILE EXPR status 0 when the Python expression EXPR over that
#                       object (named s) is true; 1 when false or no JSON
#   json_tag FILE SCENARIO N  that object with "scenario" and "n" in front,
#                       one line (a bench's JSON-lines record)
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
json_true() {
	tail -n 1 "$1" | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if ($2) else 1)" 2>/dev/null
}
json_tag() {
	tail -n 1 "$1" | python3 -c "import json,sys; s=json.load(sys.stdin); print(json.dumps(dict({'scenario': '$2', 'n': $3}, **s)))" 2>/dev/null
}
