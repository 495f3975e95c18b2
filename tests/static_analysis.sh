#!/bin/sh
# tests/static_analysis.sh GROUPS_FILE — both static analysers on core/ and the
# ports, each file compiled with the flags its real build uses:
#   gcc -fanalyzer (GCC's interprocedural analyser)
#   clang --analyze (the Clang static analyser, its default checkers:
#                    core, deadcode, unix, nullability, security)
# Each line of GROUPS_FILE is a group "NAME|GCC|CLANG_TARGET_FLAGS|CFLAGS|FILES": the gcc
# driver to run (gcc, or arm-none-eabi-gcc for the board), what clang needs
# to analyse for that target (empty for the host), the flags and the files.
# Any diagnostic from either analyser, on any file, is a failure: the output
# is printed and the exit status is 1. Prints per group "NAME: N files, gcc
# -fanalyzer F, clang --analyze C" and last
# "check-static-analysis: P passed, F failed (...)".
set -u
command -v clang >/dev/null || { echo "static-analysis: clang not found (run make deps)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/kl-sa.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0 files=0
groups=${1:?usage: static_analysis.sh GROUPS_FILE}
while IFS= read -r g; do
	[ -n "$g" ] || continue
	name=$(echo "$g" | cut -d'|' -f1)
	gcc=$(echo "$g" | cut -d'|' -f2)
	ctgt=$(echo "$g" | cut -d'|' -f3)
	flags=$(echo "$g" | cut -d'|' -f4)
	srcs=$(echo "$g" | cut -d'|' -f5)
	command -v "$gcc" >/dev/null || { echo "static-analysis: $gcc not found (run make deps)" >&2; exit 2; }
	ng=0 nc=0 n=0
	for f in $srcs; do
		n=$((n + 1))
		# -Werror off: a finding must be reported, not stop the compile
		eval "$gcc -fanalyzer -Wall -Wextra $flags -c $f -o /dev/null" >"$tmp/g" 2>&1 || true
		eval "clang --analyze $ctgt $flags $f -o /dev/null" >"$tmp/c" 2>&1 || true
		if [ -s "$tmp/g" ]; then ng=$((ng + 1)); echo "--- gcc -fanalyzer $f"; cat "$tmp/g"; fi
		if [ -s "$tmp/c" ]; then
			nc=$((nc + 1)); echo "--- clang --analyze $f"
			# the full path of each finding, as text
			eval "clang --analyze -Xclang -analyzer-output=text $ctgt $flags $f -o /dev/null" 2>&1 | grep -v '^ *[0-9]* |' | head -60
		fi
	done
	files=$((files + n))
	echo "static-analysis: $name: $n files, gcc -fanalyzer: $ng with findings, clang --analyze: $nc with findings"
	if [ $ng -eq 0 ] && [ $nc -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done <"$groups"
echo "check-static-analysis: $pass passed, $fail failed ($files files in $((pass + fail)) groups, gcc -fanalyzer and clang --analyze)"
[ $fail -eq 0 ]
