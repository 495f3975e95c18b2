#!/bin/bash
# tests/netns.sh CMD [ARG...]
#
# Runs CMD in a fresh network namespace that has only loopback (unshare -n,
# then `ip link set lo up`). Nothing started inside can reach any address but
# 127.0.0.0/8 / ::1, and test ports cannot collide with anything outside.
# Needs root (unshare -n); fails with a clear message otherwise.
#
# Inside, KL_NETNS=1 is set, so a test script can re-exec itself once:
#   [ -n "$KL_NETNS" ] || exec "$(dirname "$0")/../netns.sh" "$0" "$@"
# If KL_NETNS is already set, CMD simply runs in the current namespace.
#
# Safety net: when CMD ends (or this script gets INT/TERM/HUP), every process
# still in the namespace (found by comparing /proc/PID/ns/net with ours, so
# daemons that re-parented to init are found too) gets SIGTERM, then SIGKILL
# after 3 s. Only processes inside this fresh namespace are touched.
# Exit status: CMD's.
set -u

if [ $# -eq 0 ]; then
	echo "usage: $0 CMD [ARG...]" >&2
	exit 2
fi

if [ -n "${KL_NETNS:-}" ]; then
	exec "$@"
fi

if [ "$(id -u)" != 0 ]; then
	echo "netns.sh: must run as root (needs unshare -n for an isolated loopback-only network); not running: $*" >&2
	exit 77
fi

if [ "${1:-}" != "--kl-inside" ]; then
	exec unshare -n -- "$0" --kl-inside "$@"
fi
shift

if ! ip link set lo up; then
	echo "netns.sh: cannot bring up loopback in the new namespace" >&2
	exit 1
fi
export KL_NETNS=1

self_ns=$(readlink /proc/$$/ns/net)

# PIDs (other than this shell) that live in our namespace.
ns_pids() {
	local d p
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[ "$p" = "$$" ] || [ "$p" = "$BASHPID" ] && continue
		[ "$(readlink "$d/ns/net" 2>/dev/null)" = "$self_ns" ] || continue
		echo "$p"
	done
}

cleanup() {
	local pids
	pids=$(ns_pids)
	[ -z "$pids" ] && return
	echo "netns.sh: killing leftover processes in the namespace: $(echo $pids)" >&2
	kill -TERM $pids 2>/dev/null
	for _ in $(seq 30); do
		pids=$(ns_pids)
		[ -z "$pids" ] && return
		sleep 0.1
	done
	kill -KILL $pids 2>/dev/null
}

child=
on_signal() {
	[ -n "$child" ] && kill -TERM "$child" 2>/dev/null
	wait "$child" 2>/dev/null
	cleanup
	exit 130
}
trap on_signal INT TERM HUP

# Explicit <&0: a background job would otherwise get /dev/null as stdin.
"$@" <&0 &
child=$!
wait "$child"
rc=$?
# wait returns >128 when interrupted by a trapped signal; the trap exits.
cleanup
exit "$rc"
