#!/bin/sh
# kinglet — install what the build and the tests need (`make deps`).
#
# 1. Debian packages: installs only the missing ones (one `apt-get update`
#    first, and only then). Installing prosody must not leave a system
#    service running: a temporary policy-rc.d forbids starting services, and
#    a daemon the install started anyway is stopped by its pidfile.
# 2. Third-party sources (mbedTLS 3.6.x, lwIP 2.2.x) from Debian's source
#    packages of the suite `trixie`, fetched with a private apt configuration
#    under third_party/apt/ (the system's apt sources, lists and caches are
#    not touched), unpacked by dpkg-source into third_party/.
#    Skipped when a suitable tree is there or MBEDTLS_DIR / LWIP_DIR are set.
#    The archive is the one the system's apt already uses (so a machine
#    behind its own mirror or proxy works): see archive_uri below.
# 2b. The SASL2 test servers (check-sasl2-servers): Prosody 13.0.1 +
#    prosody-modules and ejabberd 24.12 with its newer erlang-p1-* libraries,
#    binary packages of bookworm-backports (which the system's apt sources
#    need not list) fetched with `apt-get download` through a private apt
#    state under third_party/apt/backports/ and unpacked with `dpkg -x` into
#    third_party/prosody13/ and third_party/ejabberd24/ — never installed,
#    so the bookworm Prosody 0.12.3 and ejabberd 23.01 stay as they are.
#    KL_DEPS_BACKPORTS_SUITE (default bookworm-backports).
# 3. With --bench (`make bench`, `make deps-bench`; never `make check` or
#    `make demo`): the benchmark baselines that bench-xml builds from source
#    with kinglet's flags, expat 2.5.x and libxml2 2.9.x, from the suite
#    `bookworm` the same way (trixie's expat is 2.9, and its orig tarball
#    was gone from the archive; bookworm's libxml2 is 2.9.14, the same
#    upstream tarball as trixie's 2.12.7+really2.9.14, and one suite is one
#    source index to fetch). The suite is pinned, not the Debian revision.
#    A failure here is a warning, not an error: bench-xml then links the
#    system's libraries and its first line says so.
#
# Quiet and fast (< 1 s, no network) when everything is present; when it
# fetches, "deps: ..." lines say what and which version it got.
# Environment: KL_DEPS_SUITE (default trixie); KL_DEPS_BENCH_SUITE (default
# bookworm); KL_DEPS_MIRROR (the archive's URI; default: the Debian archive in
# the system's apt sources); KL_DEPS_NO_APT=1 to only check; for the tests:
# KL_DEPS_APT_ETC=DIR reads DIR/sources.list and DIR/sources.list.d/ instead
# of apt's configured ones, KL_DEPS_THIRD_PARTY=DIR looks for the trees in
# DIR instead of third_party/.
# `scripts/deps.sh --print-mirror` prints the archive's URI and exits;
# `scripts/deps.sh --print-plan [--bench]` prints "PACKAGE SUITE" for each
# source package it would fetch and exits (neither uses the network or
# installs anything).
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TP=${KL_DEPS_THIRD_PARTY:-"$ROOT/third_party"}
SUITE=${KL_DEPS_SUITE:-trixie}
BENCH_SUITE=${KL_DEPS_BENCH_SUITE:-bookworm}

mode=install bench=0
for arg; do
    case $arg in
    --print-mirror) mode=mirror ;;
    --print-plan) mode=plan ;;
    --bench) bench=1 ;;
    *) echo "usage: scripts/deps.sh [--bench] [--print-plan | --print-mirror]" >&2; exit 2 ;;
    esac
done

say() { echo "deps: $*"; }
die() { echo "deps: error: $*" >&2; exit 1; }

# ---- 0. the archive for the private deb-src entry ------------------------------
# The files apt reads, in apt's order: Dir::Etc::sourcelist, then the *.list
# and *.sources files of Dir::Etc::sourceparts by name (other names, such as
# *.disabled or *.save, apt ignores, and so do we).
apt_source_files() {
    sl='' sp=''
    if [ -n "${KL_DEPS_APT_ETC:-}" ]; then
        sl=$KL_DEPS_APT_ETC/sources.list sp=$KL_DEPS_APT_ETC/sources.list.d
    elif command -v apt-config >/dev/null 2>&1; then
        eval "$(apt-config shell sl Dir::Etc::sourcelist/f sp Dir::Etc::sourceparts/d 2>/dev/null)" || true
    fi
    [ -n "$sl" ] || sl=/etc/apt/sources.list
    [ -n "$sp" ] || sp=/etc/apt/sources.list.d
    [ -f "$sl" ] && echo "$sl"
    [ -d "$sp" ] || return 0
    # names are checked below; sorted bytewise, as apt does
    # shellcheck disable=SC2012
    for f in $(ls "$sp" | LC_ALL=C sort); do
        case $f in
        *[!A-Za-z0-9_.-]*) continue ;;
        *.list | *.sources) [ -f "${sp%/}/$f" ] && echo "${sp%/}/$f" ;;
        esac
    done
    return 0
}

# The Debian archive among the system's apt sources: one-line entries
# ("deb [options] URI SUITE COMPONENT...") and deb822 stanzas (Types, URIs,
# Suites, Components, Enabled, Signed-By). An entry counts when its type is
# deb or deb-src, it has the main component, and its suite is Debian's (a
# codename or stable/testing/... alias, or anything signed by
# debian-archive-keyring). Preferred, in this order: signed by
# debian-archive-keyring, then unsigned, then another key (a third-party
# repository that reuses Debian's suite names); the main suite over
# -updates/-backports (same archive); then apt's reading order. -security
# suites are another archive and never taken. Prints "URI<TAB>FILE".
system_archive() {
    files=$(apt_source_files)
    [ -n "$files" ] || return 1
    old_ifs=$IFS
    IFS='
'
    # shellcheck disable=SC2086
    set -- $files
    IFS=$old_ifs
    awk '
    function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
    function has(list, word,   n, a, i) {
        n = split(list, a, /[ \t]+/)
        for (i = 1; i <= n; i++) if (a[i] == word) return 1
        return 0
    }
    function consider(types, uris, suites, comps, signedby,   nu, u, ns, s, i, j, base, sclass, kclass) {
        if (!has(types, "deb") && !has(types, "deb-src")) return
        if (!has(comps, "main")) return
        kclass = signedby == "" ? 1 : (signedby ~ /debian-archive-keyring/ ? 0 : 2)
        nu = split(uris, u, /[ \t]+/)
        ns = split(suites, s, /[ \t]+/)
        for (i = 1; i <= nu; i++) {
            if (u[i] == "" || u[i] ~ /^cdrom:/) continue
            sub(/\/+$/, "", u[i])
            for (j = 1; j <= ns; j++) {
                base = s[j]
                if (base == "" || base ~ /(-security|\/updates)$/) continue
                sclass = sub(/-(updates|proposed-updates|backports|backports-sloppy)$/, "", base) ? 1 : 0
                if (!(base in DEBIAN) && kclass != 0) continue
                printf "%d\t%d\t%d\t%s\t%s\n", kclass, sclass, ++seq, u[i], FILENAME
            }
        }
    }
    function flush() {
        if (("types" in F) && tolower(F["enabled"]) != "no")
            consider(F["types"], F["uris"], F["suites"], F["components"], F["signed-by"])
        split("", F)
        key = ""
    }
    BEGIN {
        n = split("jessie stretch buster bullseye bookworm trixie forky duke sid " \
                  "oldoldstable oldstable stable testing unstable experimental", d, " ")
        for (i = 1; i <= n; i++) DEBIAN[d[i]] = 1
    }
    FNR == 1 { flush() }
    FILENAME ~ /\.sources$/ {
        if ($0 ~ /^#/) next
        if ($0 ~ /^[ \t\r]*$/) { flush(); next }
        if ($0 ~ /^[ \t]/) { if (key != "") F[key] = F[key] " " trim($0); next }
        p = index($0, ":")
        if (!p) next
        key = tolower(trim(substr($0, 1, p - 1)))
        F[key] = trim(substr($0, p + 1))
        next
    }
    {
        line = $0
        sub(/#.*/, "", line)
        n = split(line, f, /[ \t\r]+/)
        k = 0
        for (i = 1; i <= n; i++) if (f[i] != "") w[++k] = f[i]
        if (k < 3) next
        i = 2; sb = ""
        if (substr(w[2], 1, 1) == "[") {
            for (; i <= k; i++) {
                o = w[i]
                if (substr(o, 1, 1) == "[") o = substr(o, 2)
                last = substr(o, length(o), 1) == "]"
                if (last) o = substr(o, 1, length(o) - 1)
                if (o ~ /^signed-by=/) sb = substr(o, 11)
                if (last) { i++; break }
            }
        }
        if (i + 1 > k) next
        comps = ""
        for (j = i + 2; j <= k; j++) comps = comps " " w[j]
        consider(w[1], w[i], w[i + 1], comps, sb)
    }
    END { flush() }
    ' "$@" | LC_ALL=C sort -t "$(printf '\t')" -k1,1n -k2,2n -k3,3n | head -n 1 | cut -f4,5 | grep .
}

# KL_DEPS_MIRROR, else the system's Debian archive (a clear error if none).
# Prints the URI; says on stderr where it came from.
archive_uri() {
    if [ -n "${KL_DEPS_MIRROR:-}" ]; then
        echo "deps: archive $KL_DEPS_MIRROR (KL_DEPS_MIRROR)" >&2
        echo "$KL_DEPS_MIRROR"
        return 0
    fi
    a=$(system_archive) ||
        die "no Debian archive in the system's apt sources ($(apt_source_files | tr '\n' ' ' | sed 's/ $//')):" \
            "need a deb or deb-src entry with a Debian suite (e.g. bookworm) and component main;" \
            "or set KL_DEPS_MIRROR to a Debian mirror's URI (used as: deb-src URI SUITE main)"
    tab=$(printf '\t')
    echo "deps: archive ${a%%"$tab"*} (from ${a#*"$tab"})" >&2
    echo "${a%%"$tab"*}"
}

# ---- third-party sources: what is there ----------------------------------------
# Each prints "MAJOR.MINOR.PATCH" of a tree, or nothing.
# define_version FILE MAJOR MINOR PATCH: the three #define'd numbers in FILE.
define_version() {
    [ -f "$1" ] || return 0
    awk -v ma="$2" -v mi="$3" -v pa="$4" '$1=="#define" && $2==ma {a=$3}
         $1=="#define" && $2==mi {b=$3}
         $1=="#define" && $2==pa {c=$3}
         END { if (a != "") print a "." b "." c }' "$1"
}
mbedtls_version() {
    define_version "$1/include/mbedtls/build_info.h" MBEDTLS_VERSION_MAJOR MBEDTLS_VERSION_MINOR MBEDTLS_VERSION_PATCH
}
lwip_version() {
    define_version "$1/src/include/lwip/init.h" LWIP_VERSION_MAJOR LWIP_VERSION_MINOR LWIP_VERSION_REVISION
}
# expat: what mk/xml.mk compiles (expat/lib/xml{parse,tok,role}.c). (This
# and the libxml2 ones are only called through find_tree and found.)
# shellcheck disable=SC2317
expat_version() {
    l="$1/expat/lib"
    [ -f "$l/expat.h" ] && [ -f "$l/xmlparse.c" ] && [ -f "$l/xmltok.c" ] && [ -f "$l/xmlrole.c" ] || return 0
    define_version "$l/expat.h" XML_MAJOR_VERSION XML_MINOR_VERSION XML_MICRO_VERSION
}
# libxml2: what mk/xml.mk builds (its configure script), the version from
# configure.ac (m4_define([MAJOR_VERSION], 2) since 2.9.11, before that
# LIBXML_MAJOR_VERSION=2). Not the directory name: Debian's trixie tree is
# libxml2-2.12.7+dfsg+really2.9.14.
# shellcheck disable=SC2317
libxml2_version() {
    [ -f "$1/configure.ac" ] && [ -x "$1/configure" ] && [ -f "$1/parser.c" ] || return 0
    awk '{ v = $0; gsub(/[][ \t]/, "", v) }
         v ~ /^m4_define\((MAJOR|MINOR|MICRO)_VERSION,[0-9]+\)/ {
             k = substr(v, 11, 5); sub(/^[^,]*,/, "", v); sub(/\).*/, "", v); n[k] = v }
         v ~ /^LIBXML_(MAJOR|MINOR|MICRO)_VERSION=[0-9]+$/ { k = substr(v, 8, 5); sub(/^[^=]*=/, "", v); n[k] = v }
         END { if (n["MAJOR"] != "" && n["MINOR"] != "" && n["MICRO"] != "") print n["MAJOR"] "." n["MINOR"] "." n["MICRO"] }' \
        "$1/configure.ac"
}
mbedtls_ok() { case "$(mbedtls_version "$1")" in 3.6.*) return 0 ;; esac; return 1; }
lwip_ok() { case "$(lwip_version "$1")" in 2.2.*) return 0 ;; esac; return 1; }
# shellcheck disable=SC2317
expat_ok() { case "$(expat_version "$1")" in 2.5.*) return 0 ;; esac; return 1; }
# shellcheck disable=SC2317
libxml2_ok() { case "$(libxml2_version "$1")" in 2.9.*) return 0 ;; esac; return 1; }

# Newest suitable tree already unpacked under third_party/, or nothing.
find_tree() { # prefix checker
    for d in $(ls -d "$TP/$1"-* 2>/dev/null | grep -v '\.stale\.' | sort -rV); do
        [ -d "$d" ] && "$2" "$d" && { echo "$d"; return 0; }
    done
    return 0
}

# The Debian version a tree was unpacked from (its debian/changelog), or "?".
debian_version() {
    v=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$1/debian/changelog" 2>/dev/null || true)
    echo "${v:-?}"
}

# What to fetch, one "PACKAGE SUITE" line each: the build's sources (dies
# when MBEDTLS_DIR / LWIP_DIR point at something else) ...
core_plan() {
    if [ -n "${MBEDTLS_DIR:-}" ]; then
        mbedtls_ok "$MBEDTLS_DIR" ||
            die "MBEDTLS_DIR=$MBEDTLS_DIR is not an mbedTLS 3.6.x tree (found version '$(mbedtls_version "$MBEDTLS_DIR")')"
    elif [ -z "$(find_tree mbedtls mbedtls_ok)" ]; then
        echo "mbedtls $SUITE"
    fi
    if [ -n "${LWIP_DIR:-}" ]; then
        lwip_ok "$LWIP_DIR" ||
            die "LWIP_DIR=$LWIP_DIR is not an lwIP 2.2.x tree (found version '$(lwip_version "$LWIP_DIR")')"
    elif [ -z "$(find_tree lwip lwip_ok)" ]; then
        echo "lwip $SUITE"
    fi
}
# ... and the benchmark's baselines (only with --bench).
bench_plan() {
    [ -n "$(find_tree expat expat_ok)" ] || echo "expat $BENCH_SUITE"
    [ -n "$(find_tree libxml2 libxml2_ok)" ] || echo "libxml2 $BENCH_SUITE"
}

# fetch "PACKAGE SUITE"...: `apt-get source PACKAGE/SUITE` for each into
# third_party/ through a private apt setup: its own sources file (one deb-src
# line per suite), lists and caches under third_party/apt/; the system's
# sources, lists and package caches stay as they were. Says what it does;
# returns 1 after saying why when something failed (a package that fails
# does not stop the next one).
fetch() {
    MIRROR=$(archive_uri) || return 1
    suites=$(for e; do echo "${e#* }"; done | awk '!seen[$0]++' | tr '\n' ' ')
    suites=${suites% }
    A="$TP/apt"
    mkdir -p "$A/lists/partial" "$A/cache/archives/partial" || return 1
    for s in $suites; do echo "deb-src $MIRROR $s main"; done >"$A/sources.list" || return 1
    APT_PRIVATE="-o Dir::Etc::SourceList=$A/sources.list
                 -o Dir::Etc::SourceParts=/nonexistent
                 -o Dir::State::Lists=$A/lists
                 -o Dir::Cache=$A/cache
                 -o Dir::Cache::pkgcache=
                 -o Dir::Cache::srcpkgcache=
                 -o APT::Get::Only-Source=true"
    say "fetching source index for $suites into third_party/apt/ (private apt config)"
    # (an unreachable archive is only a warning to apt-get update)
    # shellcheck disable=SC2086
    if ! apt-get -q $APT_PRIVATE update >"$A/update.log" 2>&1 ||
        grep -qE '^(W: Failed to fetch|W: Some index files failed|E: )' "$A/update.log"; then
        cat "$A/update.log" >&2
        echo "deps: error: apt-get update of the private $suites source index failed" >&2
        return 1
    fi
    failed=0
    for e; do
        pkg=${e%% *} s=${e#* }
        # An unsuitable tree in the way (interrupted unpack, other version)
        # would make dpkg-source refuse: move it aside, never delete it.
        for d in "$TP/$pkg"-*; do
            case "$d" in *.stale.*) continue ;; esac
            [ -d "$d" ] || continue
            say "moving aside unsuitable tree ${d#"$ROOT"/} -> ${d#"$ROOT"/}.stale.$$"
            mv "$d" "$d.stale.$$" || return 1
        done
        say "fetching Debian source package $pkg ($s) into third_party/"
        # apt drops to the _apt user to download; in a root-owned folder it
        # warns that it downloads unsandboxed. That is only a warning.
        # shellcheck disable=SC2086
        if ! (cd "$TP" && apt-get -q $APT_PRIVATE source "$pkg/$s") >"$A/source-$pkg.log" 2>&1; then
            cat "$A/source-$pkg.log" >&2
            hint=
            command -v dpkg-source >/dev/null 2>&1 || hint="; needs dpkg-source: apt-get install dpkg-dev"
            echo "deps: error: apt-get source $pkg/$s failed (log: ${A#"$ROOT"/}/source-$pkg.log$hint)" >&2
            failed=1
        fi
    done
    return $failed
}

# found NAME PACKAGE CHECKER VERSION-FUNCTION SUITE WANT: after a fetch, says
# which version was unpacked, or (returning 1) why there is none to use.
found() {
    d=$(find_tree "$2" "$3")
    if [ -z "$d" ]; then
        got=$(ls -d "$TP/$2"-* 2>/dev/null | grep -v '\.stale\.' | sed "s|^$TP/||" | tr '\n' ' ')
        if [ -n "$got" ]; then
            echo "deps: error: the $5 $2 source is not $1 $6 (got: ${got% })" >&2
        else
            echo "deps: error: no $2 tree was unpacked" >&2
        fi
        return 1
    fi
    say "$1 $("$4" "$d") (Debian source package $2 $(debian_version "$d"), suite $5) in ${d#"$ROOT"/}"
}

case $mode in
mirror)
    archive_uri
    exit $?
    ;;
plan)
    core_plan
    [ "$bench" = 0 ] || bench_plan
    exit 0
    ;;
esac

PACKAGES="build-essential make clang libclang-rt-14-dev llvm valgrind openssl frama-c-base
python3 prosody lua-sec libexpat1-dev libxml2-dev libstrophe-dev pkg-config libslirp-dev
dpkg-dev iproute2 util-linux gcc-arm-none-eabi libnewlib-arm-none-eabi
gcc-riscv64-unknown-elf binutils xz-utils bzip2 qemu-system-arm dnsmasq-base stunnel4 ejabberd
cmake doxygen python3-slixmpp tsung"

# ---- 1. Debian packages ----------------------------------------------------
# One dpkg-query for all of them; a package counts as present only when its
# status is "install ok installed" (not "rc", not half-configured).
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' $PACKAGES 2>/dev/null |
            awk '$2=="ii"{print $1}') || true
missing=
for p in $PACKAGES; do
    case " $(echo $installed) " in
    *" $p "*) ;;
    *) missing="$missing $p" ;;
    esac
done
missing=${missing# }

if [ -n "$missing" ]; then
    [ "${KL_DEPS_NO_APT:-0}" = 1 ] && die "missing Debian packages: $missing"
    [ "$(id -u)" = 0 ] || die "missing Debian packages ($missing); run as root or: sudo apt-get install $missing"
    export DEBIAN_FRONTEND=noninteractive

    say "missing Debian packages: $missing"
    say "running apt-get update"
    apt-get update -q >/dev/null || die "apt-get update failed"

    # Forbid service starts during the install unless the machine already
    # has a policy (Docker images do); remove ours afterwards, always.
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    prosody_pid_before=
    if [ -f /run/prosody/prosody.pid ]; then
        prosody_pid_before=$(cat /run/prosody/prosody.pid 2>/dev/null || true)
    fi
    ejabberd_pid_before=$(cat /run/ejabberd/ejabberd.pid 2>/dev/null || true)
    epmd_before=0
    (exec 3<>/dev/tcp/127.0.0.1/4369) 2>/dev/null && epmd_before=1
    if [ ! -e "$policy" ]; then
        say "creating temporary $policy (no service starts during the install)"
        printf '#!/bin/sh\n# temporary, created by kinglet scripts/deps.sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=1
        trap 'rm -f "$policy"' EXIT
        trap 'rm -f "$policy"; exit 130' INT TERM
    fi

    for p in $missing; do say "will install $p"; done
    say "running apt-get install -y --no-install-recommends $missing"
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing >/dev/null ||
        die "apt-get install failed (run: apt-get install $missing)"

    if [ "$own_policy" = 1 ]; then
        rm -f "$policy"
        trap - EXIT INT TERM
        say "removed temporary $policy"
    fi

    # A system prosody started by the package install (not by us, not one
    # that was already running) is stopped: tests start their own on test
    # ports. Other prosody processes (test instances) are left alone.
    case " $missing " in
    *" prosody "*)
        pidf=/run/prosody/prosody.pid
        if [ -f "$pidf" ]; then
            pid=$(cat "$pidf" 2>/dev/null || true)
            if [ -n "$pid" ] && [ "$pid" != "$prosody_pid_before" ] && kill -0 "$pid" 2>/dev/null; then
                say "stopping the system prosody service the package started (pid $pid)"
                invoke-rc.d prosody stop >/dev/null 2>&1 || true
                if kill -0 "$pid" 2>/dev/null; then
                    kill "$pid" 2>/dev/null || true
                fi
            fi
        fi
        if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
            if systemctl is-active --quiet prosody 2>/dev/null; then
                say "stopping prosody.service"
                systemctl stop prosody >/dev/null 2>&1 || true
            fi
        fi
        ;;
    esac
    # The same for ejabberd, and for the epmd that Erlang brings along.
    case " $missing " in
    *" ejabberd "*)
        pid=$(cat /run/ejabberd/ejabberd.pid 2>/dev/null || true)
        if [ -n "$pid" ] && [ "$pid" != "$ejabberd_pid_before" ] && kill -0 "$pid" 2>/dev/null; then
            say "stopping the system ejabberd service the package started (pid $pid)"
            invoke-rc.d ejabberd stop >/dev/null 2>&1 || true
            kill -0 "$pid" 2>/dev/null && kill "$pid" 2>/dev/null
        fi
        if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
            for u in ejabberd.service epmd.socket epmd.service; do
                if systemctl is-active --quiet "$u" 2>/dev/null; then
                    say "stopping $u"
                    systemctl stop "$u" >/dev/null 2>&1 || true
                fi
            done
        elif [ "$epmd_before" = 0 ] && (exec 3<>/dev/tcp/127.0.0.1/4369) 2>/dev/null; then
            # ask the daemon to exit (what `ejabberdctl stopped` does), never kill by name
            if ! epmd -names 2>/dev/null | grep -q name; then
                say "stopping the epmd the Erlang packages started"
                epmd -kill >/dev/null 2>&1 || true
            fi
        fi
        ;;
    esac
    still=
    for p in $missing; do
        dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || still="$still $p"
    done
    [ -z "$still" ] || die "still not installed after apt-get install:$still"
    say "Debian packages installed"
fi

# ---- 2. third-party sources for the build ------------------------------------
need_fetch=$(core_plan)
if [ -n "$need_fetch" ]; then
    [ "${KL_DEPS_NO_APT:-0}" = 1 ] && die "missing third-party sources: $(echo "$need_fetch" | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//')"
    old_ifs=$IFS
    IFS='
'
    # shellcheck disable=SC2086
    set -- $need_fetch
    IFS=$old_ifs
    fetch "$@" || exit 1
    case "$need_fetch" in *mbedtls*)
        found mbedTLS mbedtls mbedtls_ok mbedtls_version "$SUITE" 3.6.x ||
            die "set MBEDTLS_DIR to an mbedTLS 3.6 tree" ;;
    esac
    case "$need_fetch" in *lwip*)
        found lwIP lwip lwip_ok lwip_version "$SUITE" 2.2.x ||
            die "set LWIP_DIR to an lwIP 2.2 tree" ;;
    esac
fi

# ---- 2b. the SASL2 test servers from bookworm-backports ------------------------
# Prosody 13.0.1 + prosody-modules and ejabberd 24.12 with its newer erlang
# libraries (check-sasl2-servers: tests/prosody/prosody13.sh,
# tests/ejabberd/ejabberd24.sh). Binary packages of the suite
# bookworm-backports, which the system's apt sources need not list: fetched
# with `apt-get download` through a private apt state in
# third_party/apt/backports/ (its own sources.list with one deb line, lists,
# cache; the archive is the one of step 2), unpacked with `dpkg -x` — never
# installed — into third_party/prosody13/ and third_party/ejabberd24/. They
# run beside the installed Prosody 0.12 and ejabberd 23.01 with bookworm's
# lua5.4 and Erlang; packages they depend on that are missing are installed
# from the system's suite with apt-get. third_party/prosody13/bin/prosody and
# prosodyctl, third_party/ejabberd24/ejabberdctl are the packaged scripts
# pointed at the unpacked trees. A tree counts as present when its stamp file
# .kl-unpacked names this checkout's path (so a moved checkout re-patches).
BP_SUITE=${KL_DEPS_BACKPORTS_SUITE:-bookworm-backports}
BP_PROSODY="prosody prosody-modules"
BP_EJABBERD="ejabberd erlang-jose erlang-p1-acme erlang-p1-cache-tab erlang-p1-eimp
erlang-p1-mqtree erlang-p1-pkix erlang-p1-stringprep erlang-p1-stun erlang-p1-tls
erlang-p1-utils erlang-p1-xml erlang-p1-xmpp erlang-p1-yaml erlang-p1-yconf erlang-p1-zlib"

bp_present() { # NAME: third_party/NAME unpacked for this checkout
    [ "$(sed -n 1p "$TP/$1/.kl-unpacked" 2>/dev/null)" = "$TP/$1" ]
}

# bp_fetch PACKAGE...: the .debs of BP_SUITE into $TP/apt/backports/debs/
# (emptied first); one private `apt-get update` per run.
bp_updated=0
bp_fetch() {
    B="$TP/apt/backports"
    mkdir -p "$B/lists/partial" "$B/cache/archives/partial" "$B/debs" || return 1
    BP_APT="-o Dir::Etc::SourceList=$B/sources.list
            -o Dir::Etc::SourceParts=/nonexistent
            -o Dir::State::Lists=$B/lists
            -o Dir::Cache=$B/cache
            -o Dir::Cache::pkgcache=
            -o Dir::Cache::srcpkgcache=
            -o APT::Sandbox::User=root"
    if [ "$bp_updated" = 0 ]; then
        MIRROR=$(archive_uri) || return 1
        echo "deb $MIRROR $BP_SUITE main" >"$B/sources.list" || return 1
        say "fetching the $BP_SUITE package index into third_party/apt/backports/ (private apt config; system apt sources untouched)"
        # shellcheck disable=SC2086
        if ! apt-get -q $BP_APT update >"$B/update.log" 2>&1 ||
            grep -qE '^(W: Failed to fetch|W: Some index files failed|E: )' "$B/update.log"; then
            cat "$B/update.log" >&2
            echo "deps: error: apt-get update of the private $BP_SUITE index failed" >&2
            return 1
        fi
        bp_updated=1
    fi
    rm -f "$B/debs/"*.deb
    args=
    for p; do args="$args $p/$BP_SUITE"; done
    say "downloading from $BP_SUITE:$args"
    # shellcheck disable=SC2086
    if ! (cd "$B/debs" && apt-get -q $BP_APT download $args) >"$B/download.log" 2>&1; then
        cat "$B/download.log" >&2
        echo "deps: error: apt-get download from $BP_SUITE failed (log: ${B#"$ROOT"/}/download.log)" >&2
        return 1
    fi
    for p; do
        ls "$B/debs/${p}_"*.deb >/dev/null 2>&1 || { echo "deps: error: no $p .deb downloaded" >&2; return 1; }
    done
}

# bp_runtime_deps NAME PACKAGE...: the Depends of the downloaded .debs that
# are not among them, installed from the system's suite when missing.
bp_runtime_deps() {
    name=$1; shift
    deps=$(for f in "$B/debs/"*.deb; do dpkg-deb -f "$f" Depends; echo; done |
        tr ',' '\n' | sed 's/^[ \t]*//; s/[ \t]*$//' | grep . | sort -u |
        while read -r clause; do
            first=${clause%%[ (|]*}
            case " $* " in *" $first "*) continue ;; esac
            echo "$clause"
        done | paste -sd, -)
    [ -n "$deps" ] || return 0
    printf 'Source: kl\n\nPackage: kl\nArchitecture: any\n' >"$B/control"
    unmet=$(dpkg-checkbuilddeps -d "$deps" "$B/control" 2>&1 >/dev/null |
        sed -n 's/.*Unmet build dependencies: //p')
    [ -n "$unmet" ] || return 0
    # first alternative of each, without versions
    pkgs=$(echo "$unmet" | sed 's/([^)]*)//g; s/|[^ ]*//g; s/ | [^ ]*//g' | tr -s ' ' '\n' | grep . | sort -u | tr '\n' ' ')
    [ "${KL_DEPS_NO_APT:-0}" = 1 ] && { echo "deps: error: $name needs: $unmet" >&2; return 1; }
    say "$name needs Debian packages: $pkgs(installing from the system's suite)"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs >"$B/install.log" 2>&1 || {
        cat "$B/install.log" >&2; echo "deps: error: apt-get install $pkgs failed" >&2; return 1; }
    unmet=$(dpkg-checkbuilddeps -d "$deps" "$B/control" 2>&1 >/dev/null | sed -n 's/.*Unmet build dependencies: //p')
    [ -z "$unmet" ] || { echo "deps: error: $name: still unmet: $unmet" >&2; return 1; }
}

# bp_unpack NAME: every downloaded .deb into $TP/NAME.new, then in place.
bp_unpack() {
    rm -rf "$TP/$1.new"
    mkdir -p "$TP/$1.new" || return 1
    for f in "$B/debs/"*.deb; do
        dpkg -x "$f" "$TP/$1.new" || { echo "deps: error: dpkg -x $f failed" >&2; return 1; }
    done
    { echo "$TP/$1"; for f in "$B/debs/"*.deb; do dpkg-deb -f "$f" Package Version | paste -sd' ' | sed 's/Package: //; s/ Version: / /'; done; } \
        >"$TP/$1.new/.kl-unpacked.tmp"
}
bp_commit() { # NAME: replaces $TP/NAME (the old one moved aside, then removed)
    mv "$TP/$1.new/.kl-unpacked.tmp" "$TP/$1.new/.kl-unpacked" || return 1
    if [ -e "$TP/$1" ]; then mv "$TP/$1" "$TP/$1.old.$$" && rm -rf "$TP/$1.old.$$"; fi
    mv "$TP/$1.new" "$TP/$1"
}
# the packaged version of PACKAGE in NAME's stamp
bp_version() { awk -v p="$2" '$1==p {print $2}' "$TP/$1/.kl-unpacked"; }

prosody13() {
    # shellcheck disable=SC2086
    bp_fetch $BP_PROSODY && bp_runtime_deps "Prosody 13" $BP_PROSODY && bp_unpack prosody13 || return 1
    P="$TP/prosody13.new"
    mkdir -p "$P/bin" || return 1
    # The packaged launchers, pointed at the unpacked tree (paths of the
    # final location; the tree is moved there below).
    for s in prosody prosodyctl; do
        sed -e "s|^CFG_SOURCEDIR=.*|CFG_SOURCEDIR='$TP/prosody13/usr/lib/prosody';|" \
            -e "s|^CFG_CONFIGDIR=.*|CFG_CONFIGDIR='$TP/prosody13/etc/prosody';|" \
            -e "s|^CFG_PLUGINDIR=.*|CFG_PLUGINDIR='$TP/prosody13/usr/lib/prosody/modules/';|" \
            -e "s|^CFG_DATADIR=.*|CFG_DATADIR='$TP/prosody13/var/lib/prosody';|" \
            "$P/usr/bin/$s" >"$P/bin/$s" && chmod 755 "$P/bin/$s" || return 1
        [ "$(grep -c "^CFG_[A-Z]*DIR='$TP/prosody13/" "$P/bin/$s")" = 4 ] ||
            { echo "deps: error: could not patch the CFG_*DIR lines of $s" >&2; return 1; }
    done
    for m in mod_sasl2 mod_sasl2_bind2 mod_sasl2_fast mod_sasl2_sm; do
        [ -f "$P/usr/lib/prosody/modules/$m/$m.lua" ] || { echo "deps: error: prosody-modules has no $m" >&2; return 1; }
    done
    bp_commit prosody13 || return 1
    say "Prosody $(bp_version prosody13 prosody) and prosody-modules $(bp_version prosody13 prosody-modules) ($BP_SUITE) in ${TP#"$ROOT"/}/prosody13 (run: ${TP#"$ROOT"/}/prosody13/bin/prosody)"
}

ejabberd24() {
    # shellcheck disable=SC2086
    bp_fetch $BP_EJABBERD && bp_runtime_deps "ejabberd 24" $BP_EJABBERD && bp_unpack ejabberd24 || return 1
    E="$TP/ejabberd24.new"
    app=
    for d in "$E"/usr/lib/*/ejabberd-*/ebin; do [ -d "$d" ] && app=$d && break; done
    [ -n "$app" ] || { echo "deps: error: no ejabberd application in the ejabberd package" >&2; return 1; }
    app=${app%/ejabberd-*/ebin}
    # ejabberd's own lib dir and the newer erlang libraries, ahead of the
    # system's (ERL_LIBS comes before $OTPROOT/lib in the code path).
    libs="$TP/ejabberd24${app#"$E"}:$TP/ejabberd24/usr/lib/erlang/lib"
    sed "s|^ERL_LIBS=.*|ERL_LIBS='$libs'|" "$E/usr/sbin/ejabberdctl" >"$E/ejabberdctl" &&
        chmod 755 "$E/ejabberdctl" || return 1
    grep -qF "ERL_LIBS='$libs'" "$E/ejabberdctl" || { echo "deps: error: could not patch ERL_LIBS in ejabberdctl" >&2; return 1; }
    bp_commit ejabberd24 || return 1
    say "ejabberd $(bp_version ejabberd24 ejabberd) ($BP_SUITE, with its erlang-p1-* libraries) in ${TP#"$ROOT"/}/ejabberd24 (run: ${TP#"$ROOT"/}/ejabberd24/ejabberdctl)"
}

bp_failed=0
for n in prosody13 ejabberd24; do
    bp_present "$n" && continue
    if [ "${KL_DEPS_NO_APT:-0}" = 1 ]; then
        say "warning: no ${TP#"$ROOT"/}/$n and KL_DEPS_NO_APT=1: not fetched (check-sasl2-servers needs it)"
        continue
    fi
    [ "$(id -u)" = 0 ] || die "${TP#"$ROOT"/}/$n is missing; run make deps as root"
    say "${TP#"$ROOT"/}/$n is missing: fetching it from $BP_SUITE"
    ok=0
    case $n in
    prosody13) prosody13 && ok=1 ;;
    ejabberd24) ejabberd24 && ok=1 ;;
    esac
    [ "$ok" = 1 ] || { rm -rf "$TP/$n.new"; bp_failed=1; }
done
[ "$bp_failed" = 0 ] || die "could not set up the $BP_SUITE test servers (see above)"

# ---- 3. the benchmark's baselines (--bench) ----------------------------------
[ "$bench" = 1 ] || exit 0
need_fetch=$(bench_plan)
[ -n "$need_fetch" ] || exit 0
fallback="bench-xml will link the system's expat and libxml2 instead, not built with kinglet's flags (its first line says so)"
names=$(echo "$need_fetch" | cut -d' ' -f1 | tr '\n' ' ')
names=${names% }
if [ "${KL_DEPS_NO_APT:-0}" = 1 ]; then
    say "warning: no $names source in third_party/ and KL_DEPS_NO_APT=1: not fetched; $fallback"
    exit 0
fi
say "bench-xml builds expat 2.5 and libxml2 2.9 from source with kinglet's flags; not in third_party/: $names"
old_ifs=$IFS
IFS='
'
# shellcheck disable=SC2086
set -- $need_fetch
IFS=$old_ifs
ok=1
fetch "$@" || ok=0
case "$need_fetch" in *expat*)
    found expat expat expat_ok expat_version "$BENCH_SUITE" 2.5.x || ok=0 ;;
esac
case "$need_fetch" in *libxml2*)
    found libxml2 libxml2 libxml2_ok libxml2_version "$BENCH_SUITE" 2.9.x || ok=0 ;;
esac
[ "$ok" = 1 ] || say "warning: could not fetch the $(echo "$names" | sed 's/ / and /') sources (see above); $fallback"
exit 0
