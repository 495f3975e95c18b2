#!/bin/sh
# kinglet — scripts/deps.sh finds the archive for its private deb-src entry in
# the system's apt sources (`make check-deps-sources`). Each case writes a
# synthetic apt configuration to a temporary directory and runs
# `KL_DEPS_APT_ETC=DIR scripts/deps.sh --print-mirror` (no network, nothing
# installed). Host names are placeholders: the project names no archive.
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

# This machine's own apt configuration (informational: what `make deps` would use).
if real=$(scripts/deps.sh --print-mirror 2>&1 >/dev/null); then
    echo "check-deps-sources: this machine: ${real#deps: }"
else
    echo "check-deps-sources: this machine: no Debian archive found (${real#deps: error: })"
fi

echo "check-deps-sources: $pass passed, $fail failed"
[ $fail -eq 0 ]
