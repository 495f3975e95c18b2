#!/bin/sh
# Adds up the suite lines ("name: N passed, N failed" at the start of a
# line) of a `make check` log and prints the total as the closing line.
awk '/^[A-Za-z0-9_.-]+: [0-9]+ passed, [0-9]+ failed/ { p += $2; f += $4 }
     END { printf "check: %d passed, %d failed\n", p, f; exit (f > 0) }' "$1"
