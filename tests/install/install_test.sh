#!/usr/bin/env bash
# check-install: kinglet installed by `make install` and by CMake, used by
# an out-of-tree program (tests/install/consumer.c) through pkg-config and
# through find_package(kinglet); a non-default option (KL_ENABLE_SM=0)
# round-trips through both; the CMake build does not drift from the tree
# (core/*.c, one option per KL_ENABLE_* with the header's default).
# Temporary prefixes only, no network. Env: BUILD (make's build dir), CC.
set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck disable=SC2034  # read by tests/lib/results.sh
SUITE=check-install
# shellcheck source=tests/lib/results.sh
. tests/lib/results.sh
BUILD=${BUILD:-build}
CC=${CC:-cc}
MAKE_CMD=(make --no-print-directory)
tmp=$(mktemp -d /tmp/kinglet-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/log
version=$(tr -d ' \n' < VERSION)
jobs=$(nproc 2>/dev/null || echo 2)

# run NAME CMD...: the command's output in $log, shown on failure.
run() {
	local name=$1; shift
	local rc=0
	"$@" > "$log" 2>&1 || rc=$?
	[ "$rc" = 0 ] && return 0
	bad "$name: $* (exit $rc)"; tail -n 30 "$log" | sed 's/^/    /'; return 1
}

# pcflags DIR: `pkg-config --cflags --libs kinglet` with PKG_CONFIG_PATH=DIR,
# split into the array pc.
pcflags() {
	read -r -a pc <<< "$(PKG_CONFIG_PATH="$1" pkg-config --cflags --libs kinglet)"
}

# The size the engine's structures have under given -D flags, from the tree.
ref_sizes() {
	printf '#include <stdio.h>\n#include "kinglet/kinglet.h"\n#include "kinglet/kl_session.h"\nint main(void) { printf("sizeof(kl_client_t)=%%zu sizeof(kl_session_t)=%%zu\\n", sizeof(kl_client_t), sizeof(kl_session_t)); return 0; }\n' > "$tmp/sizes.c"
	"$CC" -std=c11 -Iinclude "$@" "$tmp/sizes.c" -o "$tmp/sizes" && "$tmp/sizes"
}
ref_default=$(ref_sizes)
ref_nosm=$(ref_sizes -DKL_ENABLE_SM=0)
if [ -n "$ref_default" ] && [ "$ref_default" != "$ref_nosm" ]; then
	ok "reference sizes: default $ref_default; KL_ENABLE_SM=0 $ref_nosm"
else
	bad "reference sizes do not differ with KL_ENABLE_SM=0 ($ref_default / $ref_nosm)"
fi

# check_consumer NAME BIN SM SIZES: the program runs, sends a first flight,
# and saw KL_ENABLE_SM=SM and the sizes the library was built with.
check_consumer() {
	local name=$1 bin=$2 sm=$3 sizes=$4 out
	if ! out=$("$bin" 2>&1); then bad "$name: $bin failed: $out"; return; fi
	case $out in
	*"first flight "*" bytes; KL_ENABLE_SM=$sm "*"$sizes"*) ok "$name: $out" ;;
	*) bad "$name: expected KL_ENABLE_SM=$sm and $sizes, got: $out" ;;
	esac
}

# ---- make install, pkg-config ------------------------------------------------------
mp=$tmp/make-prefix
if run "make install" "${MAKE_CMD[@]}" install PREFIX="$mp" BUILD="$BUILD"; then
	missing=""
	for f in lib/libkinglet.a lib/pkgconfig/kinglet.pc include/kinglet/kinglet.h include/kinglet/kl_config_defaults.h; do
		[ -f "$mp/$f" ] || missing="$missing $f"
	done
	nh=$(find include/kinglet -maxdepth 1 -name '*.h' | wc -l)
	ni=$(find "$mp/include/kinglet" -maxdepth 1 -name '*.h' 2>/dev/null | wc -l)
	if [ -z "$missing" ] && [ "$nh" = "$ni" ]; then ok "make install: lib, $ni headers, kinglet.pc under PREFIX"
	else bad "make install: missing$missing (headers $ni of $nh)"; fi
	pv=$(PKG_CONFIG_PATH="$mp/lib/pkgconfig" pkg-config --modversion kinglet 2>&1)
	pcflags "$mp/lib/pkgconfig"; pf="${pc[*]}"
	if [ "$pv" = "$version" ] && [[ $pf == "-I$mp/include -L$mp/lib -lkinglet" ]]; then
		ok "pkg-config: kinglet $pv: $pf"
	else
		bad "pkg-config: version '$pv' (VERSION $version), flags '$pf'"
	fi
	pcflags "$mp/lib/pkgconfig"
	if run "pkg-config build" "$CC" -std=c11 -Wall -Wextra -Werror tests/install/consumer.c \
		"${pc[@]}" -o "$tmp/consumer-pc"; then
		check_consumer "make install + pkg-config" "$tmp/consumer-pc" 1 "$ref_default"
	fi
fi

# DESTDIR stages under another root with the real PREFIX in kinglet.pc; uninstall removes it all.
st=$tmp/stage
if run "make install DESTDIR" "${MAKE_CMD[@]}" install PREFIX=/opt/kinglet DESTDIR="$st" BUILD="$BUILD"; then
	if [ -f "$st/opt/kinglet/lib/libkinglet.a" ] && grep -qx 'prefix=/opt/kinglet' "$st/opt/kinglet/lib/pkgconfig/kinglet.pc"; then
		ok "make install DESTDIR=… PREFIX=/opt/kinglet: staged, kinglet.pc says prefix=/opt/kinglet"
	else
		bad "make install DESTDIR: files or prefix wrong"
	fi
	if run "make uninstall" "${MAKE_CMD[@]}" uninstall PREFIX=/opt/kinglet DESTDIR="$st" BUILD="$BUILD"; then
		left=$(find "$st" -type f | sed "s|^$st||")
		if [ -z "$left" ]; then ok "make uninstall: no file left"; else bad "make uninstall left: $left"; fi
	fi
fi

# A library built with KL_ENABLE_SM=0: kinglet.pc must carry it.
mm=$tmp/make-min
if run "make install (KL_ENABLE_SM=0)" "${MAKE_CMD[@]}" -j"$jobs" install PREFIX="$mm" BUILD="$tmp/build-min" \
		EXTRA_CFLAGS=-DKL_ENABLE_SM=0; then
	pf=$(PKG_CONFIG_PATH="$mm/lib/pkgconfig" pkg-config --cflags kinglet)
	case " $pf " in
	*" -DKL_ENABLE_SM=0 "*) ok "make install EXTRA_CFLAGS=-DKL_ENABLE_SM=0: kinglet.pc Cflags: $pf" ;;
	*) bad "kinglet.pc Cflags lack -DKL_ENABLE_SM=0: $pf" ;;
	esac
	pcflags "$mm/lib/pkgconfig"
	if run "pkg-config build (SM=0)" "$CC" -std=c11 -Wall -Wextra -Werror tests/install/consumer.c \
		"${pc[@]}" -o "$tmp/consumer-pc-min"; then
		check_consumer "make install (SM=0) + pkg-config" "$tmp/consumer-pc-min" 0 "$ref_nosm"
	fi
fi

# ---- CMake: the whole tree (core, posix, mbedTLS from third_party), -Werror --------------
cb=$tmp/cmake-build cp=$tmp/cmake-prefix
if run "cmake configure" cmake -S . -B "$cb" -DCMAKE_INSTALL_PREFIX="$cp" -DKINGLET_WERROR=ON \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_EXPORT_COMPILE_COMMANDS=ON; then
	# One option per KL_ENABLE_* in the headers, with the header's default.
	want=$(grep -rh -A1 '^#ifndef KL_ENABLE_' include/kinglet | grep '^#define KL_ENABLE_' |
		awk '{ sub("KL_", "KINGLET_", $2); print $2 ":BOOL=" ($3 == "1" ? "ON" : "OFF") }' | sort -u)
	have=$(cmake -N -LA "$cb" 2>/dev/null | grep '^KINGLET_ENABLE_' | sort -u)
	if [ -n "$want" ] && [ "$want" = "$have" ]; then
		ok "CMake: one option per KL_ENABLE_* ($(echo "$want" | wc -l)), defaults as the headers"
	else
		bad "CMake options differ from the headers' KL_ENABLE_*: $(diff <(echo "$want") <(echo "$have") | grep '^[<>]' | tr '\n' ' ')"
	fi
	if run "cmake build" cmake --build "$cb" -j"$jobs" && run "cmake install" cmake --install "$cb"; then
		ok "CMake: the tree builds with -Wall -Wextra -Werror (core, posix, mbedtls) and installs"
		lib=$(find "$cp" -name libkinglet.a | head -n 1)
		objs=$(ar t "$lib" | sed 's/\.c\.o$//; s/\.o$//' | sort | tr '\n' ' ')
		srcs=$(find core -maxdepth 1 -name '*.c' -printf '%f\n' | sed 's/\.c$//' | sort | tr '\n' ' ')
		if [ "$objs" = "$srcs" ]; then ok "CMake: libkinglet.a holds every core/*.c"
		else bad "CMake: libkinglet.a has '$objs', core/ has '$srcs'"; fi
		for f in lib/cmake/kinglet/kingletConfig.cmake lib/cmake/kinglet/kingletConfigVersion.cmake \
			lib/cmake/kinglet/kingletTargets.cmake include/kinglet/kinglet.h include/kinglet/port/kl_posix_net.h \
			include/kinglet/port/kl_tls_bind.h include/kinglet/mbedtls-3.6/mbedtls/ssl.h lib/pkgconfig/kinglet.pc; do
			[ -f "$cp/$f" ] || bad "CMake install: no $f"
		done
		if run "find_package consumer configure" cmake -S tests/install -B "$tmp/consumer-cmake" \
				-DCMAKE_PREFIX_PATH="$cp" -DKL_TEST_PORTS=ON -DKL_WANT_VERSION="${version%.*}" \
			&& run "find_package consumer build" cmake --build "$tmp/consumer-cmake" -j"$jobs"; then
			check_consumer "CMake install + find_package(kinglet ${version%.*} COMPONENTS core posix mbedtls)" \
				"$tmp/consumer-cmake/consumer" 1 "$ref_default"
			out=$("$tmp/consumer-cmake/consumer_ports" 2>&1 | head -n 1)
			if [ "$out" = "ports 1 1" ]; then ok "kinglet::posix and kinglet::mbedtls link out of tree"
			else bad "consumer_ports: $out"; fi
		fi
		# SameMinorVersion: 0.<minor+1> is refused.
		minor=$(echo "$version" | cut -d. -f2)
		if cmake -S tests/install -B "$tmp/consumer-badver" -DCMAKE_PREFIX_PATH="$cp" \
				-DKL_WANT_VERSION="0.$((minor + 1))" > "$log" 2>&1; then
			bad "find_package(kinglet 0.$((minor + 1))) accepted $version"
		else
			ok "find_package(kinglet 0.$((minor + 1))) refuses $version (kingletConfigVersion.cmake)"
		fi
	fi
fi

# ---- CMake: KINGLET_ENABLE_SM=OFF round trip, core only ----------------------------
cb=$tmp/cmake-build-min cp=$tmp/cmake-min
if run "cmake configure (SM=OFF)" cmake -S . -B "$cb" -DCMAKE_INSTALL_PREFIX="$cp" -DKINGLET_WERROR=ON \
		-DKINGLET_ENABLE_SM=OFF -DKINGLET_POSIX=OFF -DKINGLET_MBEDTLS=OFF -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
	&& run "cmake build (SM=OFF)" cmake --build "$cb" -j"$jobs" && run "cmake install (SM=OFF)" cmake --install "$cb"; then
	if grep '"command"' "$cb/compile_commands.json" | grep 'kl_engine\.c' | grep -q -- '-DKL_ENABLE_SM=0'; then
		ok "CMake -DKINGLET_ENABLE_SM=OFF: the library compiles with -DKL_ENABLE_SM=0"
	else
		bad "CMake -DKINGLET_ENABLE_SM=OFF: kl_engine.c not compiled with -DKL_ENABLE_SM=0"
	fi
	if run "find_package consumer configure (SM=OFF)" cmake -S tests/install -B "$tmp/consumer-cmake-min" \
			-DCMAKE_PREFIX_PATH="$cp" \
		&& { if grep -q 'KINGLET_ENABLE_SM=OFF' "$log"; then
			ok "find_package(kinglet): the installed config sets KINGLET_ENABLE_SM OFF"
		else bad "find_package(kinglet): KINGLET_ENABLE_SM is not OFF: $(grep 'KINGLET_ENABLE_SM=' "$log")"; fi; } \
		&& run "find_package consumer build (SM=OFF)" cmake --build "$tmp/consumer-cmake-min"; then
		check_consumer "CMake install (SM=OFF) + find_package" "$tmp/consumer-cmake-min/consumer" 0 "$ref_nosm"
	fi
	pcdir=$(dirname "$(find "$cp" -name kinglet.pc | head -n 1)")
	pcflags "$pcdir"
	if run "pkg-config build against the CMake install (SM=OFF)" "$CC" -std=c11 -Wall -Wextra -Werror \
		tests/install/consumer.c "${pc[@]}" -o "$tmp/consumer-cmake-pc"; then
		check_consumer "CMake install (SM=OFF) + pkg-config" "$tmp/consumer-cmake-pc" 0 "$ref_nosm"
	fi
fi

finish
