#!/bin/sh
# Runs every unit-test binary given, sums their "N passed, N failed" lines
# and prints the total as the closing line.
pass=0; fail=0; bad=0
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -E 'FAIL|passed' | sed 's/^ *//; s/^/  /' | head -40
    line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -1)
    p=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/'); f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    [ -n "$line" ] || { p=0; f=1; echo "$t: no summary line (exit $rc)"; }
    [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || { f=$((f+1)); echo "$t: exit $rc"; }
    pass=$((pass+p)); fail=$((fail+f))
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
