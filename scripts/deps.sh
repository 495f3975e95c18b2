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
#
# Quiet and fast (< 1 s, no network) when everything is present.
# Environment: KL_DEPS_SUITE (default trixie); KL_DEPS_MIRROR (the archive's
# URI; default: the Debian archive in the system's apt sources);
# KL_DEPS_NO_APT=1 to only check; KL_DEPS_APT_ETC=DIR reads DIR/sources.list
# and DIR/sources.list.d/ instead of apt's configured ones (for the tests).
# `scripts/deps.sh --print-mirror` prints the archive's URI and exits
# (no network, nothing installed).
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TP="$ROOT/third_party"
SUITE=${KL_DEPS_SUITE:-trixie}

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
            "or set KL_DEPS_MIRROR to a Debian mirror's URI (used as: deb-src URI $SUITE main)"
    tab=$(printf '\t')
    echo "deps: archive ${a%%"$tab"*} (from ${a#*"$tab"})" >&2
    echo "${a%%"$tab"*}"
}

if [ "${1:-}" = --print-mirror ]; then
    archive_uri
    exit $?
fi

PACKAGES="build-essential make clang libclang-rt-14-dev llvm valgrind openssl
python3 prosody lua-sec libexpat1-dev libxml2-dev libstrophe-dev pkg-config libslirp-dev
dpkg-dev iproute2 util-linux gcc-arm-none-eabi libnewlib-arm-none-eabi
gcc-riscv64-unknown-elf binutils xz-utils bzip2 qemu-system-arm dnsmasq-base stunnel4 ejabberd"

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

# ---- 2. third-party sources --------------------------------------------------
# Prints "MAJOR.MINOR.PATCH" of an mbedTLS tree, or nothing.
mbedtls_version() {
    f="$1/include/mbedtls/build_info.h"
    [ -f "$f" ] || return 0
    awk '$1=="#define" && $2=="MBEDTLS_VERSION_MAJOR" {a=$3}
         $1=="#define" && $2=="MBEDTLS_VERSION_MINOR" {b=$3}
         $1=="#define" && $2=="MBEDTLS_VERSION_PATCH" {c=$3}
         END { if (a != "") print a "." b "." c }' "$f"
}
lwip_version() {
    f="$1/src/include/lwip/init.h"
    [ -f "$f" ] || return 0
    awk '$1=="#define" && $2=="LWIP_VERSION_MAJOR" {a=$3}
         $1=="#define" && $2=="LWIP_VERSION_MINOR" {b=$3}
         $1=="#define" && $2=="LWIP_VERSION_REVISION" {c=$3}
         END { if (a != "") print a "." b "." c }' "$f"
}
mbedtls_ok() { case "$(mbedtls_version "$1")" in 3.6.*) return 0 ;; esac; return 1; }
lwip_ok() { case "$(lwip_version "$1")" in 2.2.*) return 0 ;; esac; return 1; }

# Newest suitable tree already unpacked under third_party/, or nothing.
find_tree() { # prefix checker
    for d in $(ls -d "$TP/$1"-* 2>/dev/null | grep -v '\.stale\.' | sort -rV); do
        [ -d "$d" ] && "$2" "$d" && { echo "$d"; return 0; }
    done
    return 0
}

need_fetch=
if [ -n "${MBEDTLS_DIR:-}" ]; then
    mbedtls_ok "$MBEDTLS_DIR" ||
        die "MBEDTLS_DIR=$MBEDTLS_DIR is not an mbedTLS 3.6.x tree (found version '$(mbedtls_version "$MBEDTLS_DIR")')"
elif [ -z "$(find_tree mbedtls mbedtls_ok)" ]; then
    need_fetch="$need_fetch mbedtls"
fi
if [ -n "${LWIP_DIR:-}" ]; then
    lwip_ok "$LWIP_DIR" ||
        die "LWIP_DIR=$LWIP_DIR is not an lwIP 2.2.x tree (found version '$(lwip_version "$LWIP_DIR")')"
elif [ -z "$(find_tree lwip lwip_ok)" ]; then
    need_fetch="$need_fetch lwip"
fi
need_fetch=${need_fetch# }

if [ -n "$need_fetch" ]; then
    [ "${KL_DEPS_NO_APT:-0}" = 1 ] && die "missing third-party sources: $need_fetch"
    # A private apt setup: its own sources file, lists and caches. The
    # system's sources, lists and package caches stay as they were.
    MIRROR=$(archive_uri) || exit 1
    A="$TP/apt"
    mkdir -p "$A/lists/partial" "$A/cache/archives/partial"
    echo "deb-src $MIRROR $SUITE main" >"$A/sources.list"
    APT_PRIVATE="-o Dir::Etc::SourceList=$A/sources.list
                 -o Dir::Etc::SourceParts=/nonexistent
                 -o Dir::State::Lists=$A/lists
                 -o Dir::Cache=$A/cache
                 -o Dir::Cache::pkgcache=
                 -o Dir::Cache::srcpkgcache=
                 -o APT::Get::Only-Source=true"
    say "fetching source index for $SUITE into third_party/apt/ (private apt config)"
    # shellcheck disable=SC2086
    apt-get -q $APT_PRIVATE update >"$A/update.log" 2>&1 ||
        { cat "$A/update.log" >&2; die "apt-get update of the private $SUITE source index failed"; }

    for pkg in $need_fetch; do
        # An unsuitable tree in the way (interrupted unpack, other version)
        # would make dpkg-source refuse: move it aside, never delete it.
        for d in "$TP/$pkg"-*; do
            case "$d" in *.stale.*) continue ;; esac
            [ -d "$d" ] || continue
            say "moving aside unsuitable tree ${d#"$ROOT"/} -> ${d#"$ROOT"/}.stale.$$"
            mv "$d" "$d.stale.$$"
        done
        say "fetching Debian source package $pkg ($SUITE) into third_party/"
        # apt drops to the _apt user to download; in a root-owned folder it
        # warns that it downloads unsandboxed. That is only a warning.
        # shellcheck disable=SC2086
        (cd "$TP" && apt-get -q $APT_PRIVATE source "$pkg") >"$A/source-$pkg.log" 2>&1 ||
            { cat "$A/source-$pkg.log" >&2; die "apt-get source $pkg failed (needs dpkg-dev)"; }
    done

    case " $need_fetch " in *" mbedtls "*)
        d=$(find_tree mbedtls mbedtls_ok)
        [ -n "$d" ] || die "the $SUITE mbedtls source is not 3.6.x (got: $(ls -d "$TP"/mbedtls-* 2>/dev/null | tr '\n' ' ')); set MBEDTLS_DIR to an mbedTLS 3.6 tree"
        say "mbedTLS $(mbedtls_version "$d") in ${d#"$ROOT"/}" ;;
    esac
    case " $need_fetch " in *" lwip "*)
        d=$(find_tree lwip lwip_ok)
        [ -n "$d" ] || die "the $SUITE lwip source is not 2.2.x (got: $(ls -d "$TP"/lwip-* 2>/dev/null | tr '\n' ' ')); set LWIP_DIR to an lwIP 2.2 tree"
        say "lwIP $(lwip_version "$d") in ${d#"$ROOT"/}" ;;
    esac
fi
exit 0
