#!/bin/sh
# tests/coverage.sh OBJDIR [MIN_LINES MIN_BRANCHES] — line and branch coverage of core/, per file and
# in total, from the .gcda files a coverage build left in OBJDIR/core
# (gcov -b; only the sections of core/*.c, not of the headers they
# include). A file no test reached counts with all its lines and branches
# untaken. Prints "coverage: L % of lines (l/N), B % of branches (b/M)"
# last. With MIN_LINES and MIN_BRANCHES (percentages), exits 1 when the
# total is below either, saying which.
set -u
obj=${1:?usage: coverage.sh OBJDIR [MIN_LINES MIN_BRANCHES]}
min_lines=${2:-}
min_branches=${3:-}
root=$(cd "$(dirname "$0")/.." && pwd)
case $obj in /*) ;; *) obj=$root/$obj ;; esac # BUILD may be absolute
[ -d "$obj/core" ] || { echo "coverage: no $obj/core: nothing was built with coverage there" >&2; exit 2; }
command -v gcov >/dev/null || { echo "coverage: gcov not found (gcc)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/kl-cov.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
printf '%-16s %8s %14s %8s %14s\n' file lines "" branches ""
for src in "$root"/core/*.c; do
	f=$(basename "$src")
	# gcov writes its .gcov files into the current directory: a scratch one
	(cd "$tmp" && gcov -b -n -o "$obj/core" "$src" 2>/dev/null) |
		awk -v want="core/$f" -v f="$f" '
			/^File / { cur = index($0, want) > 0 }
			cur && /^Lines executed:/ { split($0, a, /[:% ]+/); lp = a[3]; ln = a[5] }
			cur && /^Branches executed:/ { split($0, a, /[:% ]+/); bn = a[5] }
			cur && /^Taken at least once:/ { split($0, a, /[:% ]+/); bp = a[5]; bn = a[7] }
			cur && /^No branches/ { bn = 0; bp = 0 }
			END {
				if (ln == "") { ln = 0; lp = 0 }
				if (bn == "") { bn = 0; bp = 0 }
				lt = int(ln * lp / 100 + 0.5); bt = int(bn * bp / 100 + 0.5)
				printf "%-16s %7.2f%% %6d/%-7d %7.2f%% %6d/%-7d\n", f, lp, lt, ln, bp, bt, bn
			}'
done | tee "$tmp/table"
awk -v ml="$min_lines" -v mb="$min_branches" '
	{ split($3, l, "/"); split($5, b, "/"); lt += l[1]; ln += l[2]; bt += b[1]; bn += b[2] }
	END {
		lp = ln ? 100 * lt / ln : 0; bp = bn ? 100 * bt / bn : 0
		printf "coverage: %.2f %% of lines (%d/%d), %.2f %% of branches (%d/%d)\n", lp, lt, ln, bp, bt, bn
		if (!ln) { print "coverage: FAIL: gcov found no lines (no .gcno files, or gcov failed)"; exit 1 }
		if (ml == "") exit 0
		bad = 0
		if (lp < ml) { printf "check-coverage: FAIL: lines %.2f %% < %s %%\n", lp, ml; bad = 1 }
		if (bp < mb) { printf "check-coverage: FAIL: branches %.2f %% < %s %%\n", bp, mb; bad = 1 }
		if (!bad) printf "check-coverage: 1 passed, 0 failed (lines %.2f %% >= %s %%, branches %.2f %% >= %s %%)\n", lp, ml, bp, mb
		exit bad
	}' "$tmp/table"
