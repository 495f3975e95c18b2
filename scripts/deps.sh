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
#
# Quiet and fast (< 1 s, no network) when everything is present.
# Environment: KL_DEPS_SUITE (default trixie), KL_DEPS_MIRROR
# (default http://deb.debian.org/debian), KL_DEPS_NO_APT=1 to only check.
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TP="$ROOT/third_party"
SUITE=${KL_DEPS_SUITE:-trixie}
MIRROR=${KL_DEPS_MIRROR:-http://deb.debian.org/debian}

say() { echo "deps: $*"; }
die() { echo "deps: error: $*" >&2; exit 1; }

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
