#!/bin/sh
# check-docs: the API reference and the documents in docs/ (mk/docs.mk).
#   1. Doxygen builds the reference from docs/Doxyfile into a temporary
#      directory with no warning (WARN_AS_ERROR = FAIL_ON_WARNINGS).
#   2. The reference has a page for kl_client_t, kl_session_t, kl_cache_t,
#      every kl_*_ops_t and every function declared in include/kinglet/*.h
#      (the declarations grepped from the headers, compared with Doxygen's
#      index and the HTML it wrote).
#   3. Every kl_*/KL_* name in docs/*.md exists in include/ or port/, and
#      every kl_*.c/.h file they name exists; a planted unknown name is
#      caught (the check can fail).
#   4. README.md points nowhere outside the repository, and the docs/ files
#      it names exist.
# Run from the repository root. A few seconds.
SUITE=check-docs
. tests/lib/results.sh
CHECK=tests/docs/docs_check.py

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() { # run CMD...: show the PASS/FAIL lines of a docs_check.py command
	out=$("$@" 2>&1); rc=$?
	printf '%s\n' "$out" | while IFS= read -r l; do echo "  $l"; done
	printf '%s\n' "$out" | grep -q '^FAIL' && rc=1
	return $rc
}

if ! command -v doxygen >/dev/null 2>&1; then
	bad "doxygen is not installed (make deps)"
	finish
fi

# 1. the reference, with the XML index beside the HTML
if { cat docs/Doxyfile; echo "OUTPUT_DIRECTORY = $tmp"; echo "GENERATE_XML = YES"; } |
	doxygen - >"$tmp/doxygen.log" 2>&1; then
	ok "doxygen $(doxygen --version): reference built with no warning"
else
	sed 's/^/  /' "$tmp/doxygen.log" | head -40
	bad "doxygen: warnings or errors (above)"
fi

# 2. a page for every type and function that must have one
if [ -f "$tmp/xml/index.xml" ] && run python3 "$CHECK" reference "$tmp/xml" "$tmp/html"; then
	ok "reference: every public function, kl_client_t, kl_session_t, kl_cache_t, the ops tables"
else
	bad "reference: missing pages (above)"
fi

# 3. names in the documents
docs=$(ls docs/*.md)
if run python3 "$CHECK" names $docs; then
	ok "docs/*.md: every kl_/KL_ name and kl_ file exists ($(echo $docs | wc -w) files)"
else
	bad "docs/*.md name what the tree does not have (above)"
fi
printf 'kl_session_step() and kl_session_no_such_call() and kl_no_such_file.c\n' >"$tmp/planted.md"
if python3 "$CHECK" names "$tmp/planted.md" 2>&1 | grep -q 'kl_no_such_file.c kl_session_no_such_call$'; then
	ok "names: a planted unknown function and file are caught"
else
	bad "names: a planted unknown name went unnoticed"
fi

# 4. README.md: nothing outside the repository; the docs it names exist
outside=$(grep -nE '\.\./shared|\.\./[A-Za-z]|(^|[^/])FIELD-NOTES|(^|[^/A-Za-z])DESIGN\.md|STYLE\.md' README.md)
if [ -z "$outside" ]; then
	ok "README.md points nowhere outside the repository"
else
	printf '%s\n' "$outside" | sed 's/^/  /'
	bad "README.md points outside the repository (above)"
fi
missing=""
for f in $(grep -oE '(^|[^/A-Za-z0-9_])docs/[A-Za-z0-9_.-]+' README.md | sed 's|^[^d]||' | sort -u); do
	[ -e "$f" ] || missing="$missing $f"
done
if [ -z "$missing" ] && grep -q '^## Documentation' README.md; then
	ok "README.md: a Documentation section; the docs/ files it names exist"
else
	bad "README.md: no Documentation section, or it names missing files:$missing"
fi
finish
