#!/bin/sh
# kinglet — scripts/deps.sh finds the archive for its private deb-src entry in
# the system's apt sources (`make check-deps-sources`). Each case writes a
# synthetic apt configuration to a temporary directory and runs
# `KL_DEPS_APT_ETC=DIR scripts/deps.sh --print-mirror` (no network, nothing
# installed). Host names are placeholders: the project names no archive.
# Then what it would fetch from which suite (`--print-plan [--bench]`, over
# synthetic trees in KL_DEPS_THIRD_PARTY), and that mk/xml.mk builds the
# benchmark from the same trees.
# Prints "check-deps-sources: N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 1

T=$(mktemp -d "${TMPDIR:-/tmp}/kl-deps-test.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
KEY=/usr/share/keyrings/debian-archive-keyring.gpg

# expect NAME URI|FAIL: the configuration written in $T/NAME/etc
expect() {
    out=$(KL_DEPS_APT_ETC="$T/$1/etc" scripts/deps.sh --print-mirror 2>"$T/$1/err")
    rc=$?
    if [ "$2" = FAIL ]; then
        if [ $rc -ne 0 ] && [ -z "$out" ] && grep -q 'no Debian archive' "$T/$1/err" &&
            grep -q KL_DEPS_MIRROR "$T/$1/err"; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
            echo "check-deps-sources: $1: expected a clear failure, got exit $rc, '$out': $(cat "$T/$1/err")"
        fi
    elif [ $rc -eq 0 ] && [ "$out" = "$2" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "check-deps-sources: $1: expected $2, got exit $rc, '$out': $(cat "$T/$1/err")"
    fi
}

# conf NAME FILE: stdin becomes $T/NAME/etc/FILE
conf() {
    mkdir -p "$T/$1/etc/sources.list.d"
    cat >"$T/$1/etc/$2"
}

# Debian 12's default layout (deb822): main + updates, then security.
conf deb822 sources.list.d/debian.sources <<EOF
Types: deb
# a comment inside the stanza
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: $KEY

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: $KEY
EOF
expect deb822 http://mirror.example/debian

# Security first, field names in another case, a trailing slash, a
# continuation line, two URIs (the first is taken).
conf deb822_order sources.list.d/debian.sources <<EOF
types: deb deb-src
uris: http://security.example/debian-security
suites: trixie-security
components: main contrib

TYPES: deb
URIS: http://proxy.internal:3142/debian/
 http://second.example/debian
SUITES: trixie
 trixie-updates
COMPONENTS: main non-free-firmware
EOF
expect deb822_order http://proxy.internal:3142/debian

# One-line sources.list (Debian 11 style): security first, options in brackets.
conf oneline sources.list <<'EOF'
# deb cdrom:[Debian GNU/Linux 11]/ bullseye main
deb http://security.example/debian-security bullseye-security main
deb [arch=amd64 trusted=no] http://mirror.example/debian bullseye main contrib  # comment
deb-src http://mirror.example/debian bullseye main
EOF
expect oneline http://mirror.example/debian

# A third-party repository that reuses Debian's suite name (own key, read
# first by name) and Debian's entry signed by the archive keyring.
conf thirdparty sources.list.d/a-vendor.list <<'EOF'
deb [arch=amd64 signed-by=/usr/share/keyrings/vendor.gpg] https://vendor.example/debian/12/prod bookworm main
EOF
conf thirdparty sources.list.d/debian.sources <<EOF
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm
Components: main
Signed-By: $KEY
EOF
expect thirdparty http://mirror.example/debian

# The same third party against an unsigned one-line Debian entry.
conf thirdparty_unsigned sources.list.d/a-vendor.list <<'EOF'
deb [ signed-by=/usr/share/keyrings/vendor.gpg ] https://vendor.example/debian bookworm main
EOF
conf thirdparty_unsigned sources.list <<'EOF'
deb http://mirror.example/debian bookworm main
EOF
expect thirdparty_unsigned http://mirror.example/debian

# Only -updates besides security: the same archive, taken.
conf updates_only sources.list <<'EOF'
deb http://security.example/debian-security bookworm-security main
deb http://mirror.example/debian bookworm-updates main
EOF
expect updates_only http://mirror.example/debian

# Disabled stanzas, other components, files apt ignores (*.disabled, *.save)
# and suites that are not Debian's are not taken.
conf ignored sources.list.d/debian.sources <<'EOF'
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
URIs: https://docker.example/linux/debian
Suites: bookworm
Components: stable

Types: deb
URIs: https://nodesource.example/node_20.x
Suites: nodistro
Components: main
EOF
conf ignored sources.list.d/old.list.disabled <<'EOF'
deb http://old.example/debian bookworm main
EOF
conf ignored sources.list.d/debian.list.save <<'EOF'
deb http://save.example/debian bookworm main
EOF
conf ignored sources.list <<'EOF'
deb http://mirror.example/ubuntu jammy main
EOF
expect ignored FAIL

# Only the security archive: a clear failure.
conf security_only sources.list <<'EOF'
deb http://security.example/debian-security bookworm-security main
EOF
expect security_only FAIL

# No sources at all.
mkdir -p "$T/empty/etc"
expect empty FAIL

# A suite name unknown to us, signed by the Debian archive key (a future
# release), is Debian's.
conf future sources.list.d/debian.sources <<EOF
Types: deb
URIs: http://mirror.example/debian
Suites: someday
Components: main
Signed-By: $KEY
EOF
expect future http://mirror.example/debian

# KL_DEPS_MIRROR overrides whatever the sources say, even none.
out=$(KL_DEPS_MIRROR=http://override.example/debian KL_DEPS_APT_ETC="$T/empty/etc" \
      scripts/deps.sh --print-mirror 2>/dev/null)
if [ "$out" = http://override.example/debian ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "check-deps-sources: override: got '$out'"; fi

# ---- what `scripts/deps.sh --print-plan [--bench]` would fetch -----------------
# Synthetic trees with just the files the version checks read (and, for
# expat and libxml2, what mk/xml.mk builds from).
tree() { # KIND DIR VERSION
    d=$2 a=${3%%.*} r=${3#*.} b=${r%%.*} c=${r#*.}
    case $1 in
    mbedtls) mkdir -p "$d/include/mbedtls"
        printf '#define MBEDTLS_VERSION_MAJOR %s\n#define MBEDTLS_VERSION_MINOR %s\n#define MBEDTLS_VERSION_PATCH %s\n' \
            "$a" "$b" "$c" >"$d/include/mbedtls/build_info.h" ;;
    lwip) mkdir -p "$d/src/include/lwip"
        printf '#define LWIP_VERSION_MAJOR %s\n#define LWIP_VERSION_MINOR %s\n#define LWIP_VERSION_REVISION %s\n' \
            "$a" "$b" "$c" >"$d/src/include/lwip/init.h" ;;
    expat) mkdir -p "$d/expat/lib"
        printf '#define XML_MAJOR_VERSION %s\n#define XML_MINOR_VERSION %s\n#define XML_MICRO_VERSION %s\n' \
            "$a" "$b" "$c" >"$d/expat/lib/expat.h"
        touch "$d/expat/lib/xmlparse.c" "$d/expat/lib/xmltok.c" "$d/expat/lib/xmlrole.c" ;;
    libxml2) mkdir -p "$d"
        printf 'AC_PREREQ([2.63])\n\nm4_define([MAJOR_VERSION], %s)\nm4_define([MINOR_VERSION], %s)\nm4_define([MICRO_VERSION], %s)\n\nLIBXML_MAJOR_VERSION=MAJOR_VERSION\n' \
            "$a" "$b" "$c" >"$d/configure.ac"
        printf '#!/bin/sh\n' >"$d/configure" && chmod +x "$d/configure" && touch "$d/parser.c" ;;
    esac
}
# plan NAME "EXPECTED|LINES" core|bench [ENV=VALUE...]: the plan for the
# trees in $T/NAME/tp, with --bench or without
plan() {
    name=$1 want=$2 args=
    [ "$3" = bench ] && args=--bench
    shift 3
    mkdir -p "$T/$name/tp"
    # shellcheck disable=SC2086
    env -u MBEDTLS_DIR -u LWIP_DIR -u KL_DEPS_SUITE -u KL_DEPS_BENCH_SUITE KL_DEPS_THIRD_PARTY="$T/$name/tp" \
        "$@" scripts/deps.sh --print-plan $args >"$T/$name/out" 2>"$T/$name/err" || echo "exit $?" >>"$T/$name/out"
    out=$(tr '\n' '|' <"$T/$name/out")
    if [ "${out%|}" = "$want" ]; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "check-deps-sources: plan $name: expected '$want', got '${out%|}': $(cat "$T/$name/err")"; fi
}
good() { # NAME: every tree present, as Debian names them
    tree mbedtls "$T/$1/tp/mbedtls-3.6.6" 3.6.6
    tree lwip "$T/$1/tp/lwip-2.2.1+dfsg1" 2.2.1
}

# Nothing there: make check / make demo fetch the build's sources only
# (suite trixie); make bench also expat and libxml2 (suite bookworm).
plan empty 'mbedtls trixie|lwip trixie' core
plan empty_bench 'mbedtls trixie|lwip trixie|expat bookworm|libxml2 bookworm' bench

# Everything there (libxml2 as trixie names 2.9.14): nothing to fetch.
good full
tree expat "$T/full/tp/expat-2.5.0" 2.5.0
tree libxml2 "$T/full/tp/libxml2-2.12.7+dfsg+really2.9.14" 2.9.14
plan full '' bench

# trixie's expat (2.9.0) and an upstream libxml2 2.12 are not the baselines.
good newer
tree expat "$T/newer/tp/expat-2.9.0" 2.9.0
tree libxml2 "$T/newer/tp/libxml2-2.12.7+dfsg" 2.12.7
plan newer 'expat bookworm|libxml2 bookworm' bench

# An interrupted unpack (no xmlparse.c; libxml2 without configure) is not a
# tree, nor is one moved aside (*.stale.*).
good partial
tree expat "$T/partial/tp/expat-2.5.0" 2.5.0
rm "$T/partial/tp/expat-2.5.0/expat/lib/xmlparse.c"
tree expat "$T/partial/tp/expat-2.5.0.stale.123" 2.5.0
tree libxml2 "$T/partial/tp/libxml2-2.9.14+dfsg" 2.9.14
rm "$T/partial/tp/libxml2-2.9.14+dfsg/configure"
plan partial 'expat bookworm|libxml2 bookworm' bench

# libxml2 before 2.9.11 spelled its version LIBXML_MAJOR_VERSION=2.
good old
tree expat "$T/old/tp/expat-2.5.0" 2.5.0
tree libxml2 "$T/old/tp/libxml2-2.9.10+dfsg" 2.9.10
printf 'LIBXML_MAJOR_VERSION=2\nLIBXML_MINOR_VERSION=9\nLIBXML_MICRO_VERSION=10\n' \
    >"$T/old/tp/libxml2-2.9.10+dfsg/configure.ac"
plan old '' bench

# The suites are the environment's to change; MBEDTLS_DIR / LWIP_DIR stand in
# for the trees.
plan suites 'mbedtls forky|lwip forky|expat trixie|libxml2 trixie' bench KL_DEPS_SUITE=forky KL_DEPS_BENCH_SUITE=trixie
good vendor
mv "$T/vendor/tp" "$T/vendor/sdk"
plan vendor '' core MBEDTLS_DIR="$T/vendor/sdk/mbedtls-3.6.6" LWIP_DIR="$T/vendor/sdk/lwip-2.2.1+dfsg1"

# mk/xml.mk builds bench-xml from the trees deps.sh accepts: none where it
# fetches (partial, newer), the one it found where it does not (full).
for name in full partial newer; do
    mkdir -p "$T/$name/mk/third_party"
    cp -r "$T/$name/tp/." "$T/$name/mk/third_party/"
    # shellcheck disable=SC2016
    got=$(make -s --no-print-directory -C "$T/$name/mk" -f "$PWD/mk/xml.mk" BUILD=build \
          --eval 'kl-trees: ; @echo "$(EXPAT_TREE)|$(LIBXML2_TREE)"' kl-trees 2>&1)
    case $name in
    full) want='third_party/expat-2.5.0|third_party/libxml2-2.12.7+dfsg+really2.9.14' ;;
    partial) want='|' ;;
    newer) want='|' ;;
    esac
    if [ "$got" = "$want" ]; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "check-deps-sources: mk/xml.mk trees in $name: expected '$want', got '$got'"; fi
done

# This machine's own apt configuration (informational: what `make deps` would use).
if real=$(scripts/deps.sh --print-mirror 2>&1 >/dev/null); then
    echo "check-deps-sources: this machine: ${real#deps: }"
else
    echo "check-deps-sources: this machine: no Debian archive found (${real#deps: error: })"
fi

echo "check-deps-sources: $pass passed, $fail failed"
[ $fail -eq 0 ]
