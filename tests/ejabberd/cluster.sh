#!/bin/bash
# tests/ejabberd/cluster.sh — a throwaway two-node ejabberd 23.01 cluster
# (Debian package) for failover tests: the same server as ejabberd.sh, twice,
# sharing one Mnesia database.
#
#   cluster.sh start DIR [--users N] [--debug]
#   cluster.sh stop DIR
#   cluster.sh kill-node DIR a|b
#   cluster.sh start-node DIR a|b
#   cluster.sh dns DIR [--equal]
#
# Run it inside tests/netns.sh (fixed addresses and ports). Needs root
# (ejabberdctl, run as root, switches to the `ejabberd` user).
#
# The nodes (domain localhost, same config as ejabberd.sh: STARTTLS required
# on 5222, direct TLS on 5223, no HTTP, SCRAM-SHA-256 storage,
# mod_stream_mgmt with resumption, resume_timeout 300 s):
#   a  Erlang node ejabberd_a@127.0.0.2, c2s 127.0.0.2:5222 and :5223,
#      distribution 127.0.0.2:5299      files in DIR/a
#   b  Erlang node ejabberd_b@127.0.0.3, c2s 127.0.0.3:5222 and :5223,
#      distribution 127.0.0.3:5299      files in DIR/b
# No epmd: ERL_DIST_PORT=5299 makes every node (and every ejabberdctl call)
# use port 5299 on the node's host instead of asking epmd, and each node
# has its own address, so the two never collide (a single-node ejabberd.sh
# on 127.0.0.1 can run beside them). The Erlang cookie is DIR/cookie (random,
# 0600, shared by both nodes, given on the command line). 127.0.0.2 and
# 127.0.0.3 need no `ip addr add`: the namespace's lo holds 127.0.0.1/8.
#
# start: a fresh cluster every time (the spools are wiped; the CA, the
# certificate and the cookie are kept). Both nodes boot in parallel; when A
# is up the accounts are written into A's Mnesia (while B is still booting),
# then B runs `ejabberdctl join_cluster ejabberd_a@127.0.0.2` (B restarts
# ejabberd, copies A's tables), and `list_cluster` must name both nodes on
# both sides. Accounts: alice/alicepass, bob/bobpass, carol/carolpass and,
# with --users N, dev1..devN with password devpass. They are registered by
# ONE Erlang call (erl_call, no extra VM), through ejabberd_auth:try_register
# — the dev accounts with one SCRAM-SHA-256 record computed once (same salt
# for all; a login checks it as usual), so 5000 accounts take seconds, not
# ~0.25 s each of `ejabberdctl register` (a VM per call: 5000 would take
# ~20 min serially, ~12 min 20 at a time on 2 cores). Listed in DIR/users.
# Prints "cluster: started a pid P b pid Q in DIR (T s)". On failure prints
# the log tails, stops what it started and exits non-zero.
#   --debug  loglevel debug on both nodes (also KL_EJABBERD_DEBUG=1)
#
# stop: stops dnsmasq (if `dns` started it) and both nodes, each the way
# ejabberd.sh stops one (SIGTERM to the beam.smp named in DIR/X/run/
# ejabberd.pid, then its launcher chain; by PID only, never by name).
#
# kill-node: SIGKILL to that node's beam.smp (checked to be the one of
# DIR/X), then its launcher chain is reaped. The other node keeps serving.
# start-node: boots that node again on its spool; Mnesia's schema still
# names both nodes, so it rejoins by itself (tables loaded from the other
# node); waits until `list_cluster` on both sides names both nodes (if the
# other node runs; with both down, start first the one that died last, or
# Mnesia waits for the other's tables).
#
# dns: dnsmasq on 127.0.0.53:5353 (UDP and TCP; --no-resolv, answers only
# what it is given): SRV _xmpp-client._tcp.localhost -> xmpp-a.test:5222
# (priority 10) and xmpp-b.test:5222 (priority 20), _xmpps-client._tcp.
# localhost the same on 5223; A records xmpp-a.test 127.0.0.2, xmpp-b.test
# 127.0.0.3. So a client prefers A and fails over to B. --equal: both
# priority 10, weight 50 (spread). Queries logged in DIR/dns/dnsmasq.log.
# Stopped by `stop` (PID in DIR/dns/dnsmasq.pid).
#
# Files in DIR: ca.pem ca.der ca.key (test CA), localhost.pem/.key (SAN
# DNS:localhost, IP:127.0.0.1, IP:127.0.0.2, IP:127.0.0.3), cookie, users,
# a/ and b/ (each as ejabberd.sh's DIR: ejabberd.yml, ejabberdctl.cfg,
# inetrc, spool/, log/ejabberd.log, run/ejabberd.pid, ejabberd.out), dns/.
set -u
SELF=cluster.sh TAG=cluster EJCTL=ejabberdctl
# the nodes hold thousands of connections (ej_exec)
EJ_NOFILE=${EJ_NOFILE:-65536}
# shellcheck source=../lib/ejabberd_server.sh
. "$(dirname "$0")/../lib/ejabberd_server.sh"

usage() { sed -n '6,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

ej_check_installed() {
	command -v ejabberdctl >/dev/null || die "ejabberd is not installed (make deps)"
}

DIST_PORT=5299
DNS_ADDR=127.0.0.53 DNS_PORT=5353
ERL_CALL=
node_ip() { case $1 in a) echo 127.0.0.2 ;; b) echo 127.0.0.3 ;; *) usage ;; esac; }
node_name() { echo "ejabberd_$1@$(node_ip "$1")"; }
other() { [ "$1" = a ] && echo b || echo a; }
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
now_ms() { date +%s%3N; }

find_erl_call() {
	ERL_CALL=$(command -v erl_call || ls /usr/lib/erlang/bin/erl_call 2>/dev/null | head -n1)
	[ -x "$ERL_CALL" ] || die "erl_call not found (erlang-base)"
}

# Each node's variables for ejabberd_server.sh (DIR is the node's dir there).
# shellcheck disable=SC2034 # read by ej_write_config
node_env() {
	local n=$1 ip
	ip=$(node_ip "$n")
	DIR=$TOP/$n
	EJ_IP=$ip EJ_NODE=$(node_name "$n") EJ_DIST_IF="{${ip//./,}}" EJ_CERT=$TOP/localhost
	C2S_PORT=5222 TLS_PORT=5223 HTTP_PORT=""
	EJ_MODULES="mod_caps mod_carboncopy mod_disco mod_ping mod_roster
		mod_stream_mgmt mod_vcard mod_version"
}

# nctl N SECONDS ARGS...: ejabberdctl against node N
nctl() {
	local DIR=$TOP/$1; shift
	ectl "$@"
}

# erl N EXPR: evaluate EXPR on node N (erl_call: no VM started)
nerl() {
	local n=$1 t=$2
	timeout -k 2 "$t" "$ERL_CALL" -address "$(node_ip "$n"):$DIST_PORT" -c "$COOKIE" -e
}

cookie() {
	[ -f "$TOP/cookie" ] || od -An -N12 -tx1 /dev/urandom | tr -d ' \n' > "$TOP/cookie"
	chmod 600 "$TOP/cookie"
	COOKIE=kl$(cat "$TOP/cookie")
}

# boot N: launch node N in the background (its spool as it is)
boot() {
	local n=$1
	node_env "$n"
	local ip=$EJ_IP p
	srv_refuse_running "$DIR/run/ejabberd.pid" "node $n"
	for p in 5222 5223 $DIST_PORT; do
		tcp_open "$ip" "$p" && die "$ip:$p already accepts connections (run inside tests/netns.sh)"
	done
	mkdir -p "$DIR/spool" "$DIR/log" "$DIR/run" "$DIR/modules.d" || die "cannot create $DIR"
	chmod o+x "$DIR"
	cp "$TOP/ca.pem" "$DIR/ca.pem"; chmod 644 "$DIR/ca.pem"
	ej_write_config
	chown -R "$EJ_USER:$EJ_USER" "$DIR/spool" "$DIR/log" "$DIR/run" "$DIR/modules.d" \
		"$DIR/ejabberd.yml" "$DIR/ejabberdctl.cfg" "$DIR/inetrc" || die "chown to $EJ_USER failed"
	rm -f "$DIR/run/ejabberd.pid" "$DIR/run/launcher.pid" "$DIR/run/tree.pids"
	: > "$DIR/log/ejabberd.log"; chown "$EJ_USER:$EJ_USER" "$DIR/log/ejabberd.log"
	(ej_exec setsid "$EJCTL" --config-dir "$DIR" --ctl-config "$DIR/ejabberdctl.cfg" \
		--config "$DIR/ejabberd.yml" --spool "$DIR/spool" --logs "$DIR/log" \
		foreground) </dev/null >"$DIR/ejabberd.out" 2>&1 &
	echo $! > "$DIR/run/launcher.pid"
}

# up N: node N's listeners accept and its log says started (non-blocking);
# UP_MIN_N (default 1): how many times the log must say it (join_cluster
# restarts ejabberd on B)
up() {
	local d=$TOP/$1 ip c
	ip=$(node_ip "$1")
	c=$(grep -c 'is started in the node' "$d/log/ejabberd.log" 2>/dev/null)
	eval "[ \"\${c:-0}\" -ge \"\${UP_MIN_$1:-1}\" ]" &&
		tcp_open "$ip" 5222 && tcp_open "$ip" 5223 &&
		[ -s "$d/run/ejabberd.pid" ]
}
# failed N: prints why node N will not come up
failed() {
	local d=$TOP/$1 l
	l=$(cat "$d/run/launcher.pid" 2>/dev/null)
	[ -n "$l" ] && ! pid_alive "$l" && { echo "node $1 exited"; return 0; }
	grep -qE '\[(critical|emergency)\]' "$d/log/ejabberd.log" 2>/dev/null &&
		{ echo "node $1: critical errors in the log"; return 0; }
	return 1
}
# wait_up N... : all of them up within START_WAIT s, else log + stop + exit
wait_up() {
	local i n why
	for i in $(seq $((START_WAIT * 10))); do
		local all=1
		for n in "$@"; do
			up "$n" && continue
			all=0
			if why=$(failed "$n"); then fail_start "$why"; fi
		done
		[ $all = 1 ] && break
		[ $((i % 10)) = 0 ] && for n in "$@"; do remember_tree "$n"; done
		sleep 0.1
	done
	for n in "$@"; do
		up "$n" || fail_start "node $n did not come up on $(node_ip "$n") in $START_WAIT s"
		remember_tree "$n"
	done
}
remember_tree() {
	local d=$TOP/$1 l
	l=$(cat "$d/run/launcher.pid" 2>/dev/null) || return 0
	pid_tree "$l" > "$d/run/tree.pids"
}
fail_start() {
	echo "$SELF: $*" >&2
	local n
	for n in a b; do
		[ -d "$TOP/$n" ] || continue
		echo "=== node $n" >&2
		DIR=$TOP/$n show_log
	done
	cmd_stop >/dev/null 2>&1
	exit 1
}

# members N: the nodes list_cluster on N names, sorted, one line
members() {
	local out
	out=$(nctl "$1" 20 list_cluster 2>/dev/null) || return 0
	echo "$out" | tr -d "'" | grep -o 'ejabberd_[ab]@[0-9.]*' | sort -u | tr '\n' ' '
}
both="$(node_name a) $(node_name b) "
wait_cluster() { # SECONDS: both nodes name both nodes
	local i
	for i in $(seq "$1"); do
		[ "$(members a)" = "$both" ] && [ "$(members b)" = "$both" ] && return 0
		sleep 1
	done
	return 1
}

# register_users N: alice, bob, carol, dev1..devN, in one call on node a
register_users() {
	local n=$1 out
	out=$(nerl a 300 <<EOF
S = <<"localhost">>,
R = fun(U, P) -> case ejabberd_auth:try_register(U, S, P) of
	ok -> 0; {error, exists} -> 0; E -> erlang:error({U, E}) end end,
R(<<"alice">>, <<"alicepass">>), R(<<"bob">>, <<"bobpass">>), R(<<"carol">>, <<"carolpass">>),
Scram = ejabberd_auth:password_to_scram(S, <<"devpass">>),
N = $n,
Chunks = [[I || I <- lists:seq(1, N), I rem 4 =:= K] || K <- [0, 1, 2, 3]],
Self = self(),
Ps = [spawn(fun() -> [R(<<"dev", (integer_to_binary(I))/binary>>, Scram) || I <- C], Self ! {done, self()} end) || C <- Chunks],
[receive {done, P} -> ok after 280000 -> erlang:error(timeout) end || P <- Ps],
{registered, length(ejabberd_auth:get_users(S))}.
EOF
	) || { echo "$out" >&2; fail_start "registering the accounts failed"; }
	case $out in
	*"{registered, $((n + 3))}"*) ;;
	*) echo "$out" >&2; fail_start "registering the accounts: $out (want $((n + 3)))" ;;
	esac
	{ printf 'alice\nbob\ncarol\n'; [ "$n" -gt 0 ] && seq -f 'dev%g' 1 "$n"; } > "$TOP/users"
}

cmd_start() {
	DEBUG=${KL_EJABBERD_DEBUG:-0}
	local users=0 t0 t1 t2 t3
	while [ $# -gt 0 ]; do
		case $1 in
		--users) users=$2; shift ;;
		--debug) DEBUG=1 ;;
		*) usage ;;
		esac
		shift
	done
	case $users in ''|*[!0-9]*) usage ;; esac
	t0=$(now_ms)
	[ "$(id -u)" = 0 ] || die "must run as root (ejabberdctl switches to the $EJ_USER user)"
	ej_check_installed
	command -v openssl >/dev/null || die "openssl is not installed (make deps)"
	id "$EJ_USER" >/dev/null 2>&1 || die "no $EJ_USER user (is the ejabberd package installed?)"
	find_erl_call
	mkdir -p "$TOP" || die "cannot create $TOP"
	chmod o+x "$TOP" || die "cannot make $TOP traversable"
	make_ca "$TOP"
	issue "$TOP" localhost "DNS:localhost,IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3"
	chown "$EJ_USER:$EJ_USER" "$TOP/localhost.pem" "$TOP/localhost.key"
	chmod 644 "$TOP/ca.pem"
	cookie
	local n
	for n in a b; do
		srv_refuse_running "$TOP/$n/run/ejabberd.pid" "node $n"
		rm -rf "$TOP/$n/spool" # a fresh cluster
	done
	rm -f "$TOP/users"
	boot a; boot b
	wait_up a
	t1=$(now_ms)
	# the accounts go into A alone (no replication yet) while B boots
	register_users "$users"
	t2=$(now_ms)
	wait_up b
	UP_MIN_b=2 # read by up()
	nctl b 120 join_cluster "$(node_name a)" > "$TOP/b/join.out" 2>&1 ||
		{ cat "$TOP/b/join.out" >&2; fail_start "join_cluster failed"; }
	wait_up b
	wait_cluster 20 || fail_start "list_cluster: a says '$(members a)', b says '$(members b)'"
	t3=$(now_ms)
	for n in a b; do srv_warn_log "$TOP/$n/log/ejabberd.log" '\[(error|critical)\]'; done
	echo "$TAG: a up $(( (t1 - t0) ))ms, $((users + 3)) accounts in $((t2 - t1))ms, b joined at $((t3 - t0))ms"
	echo "$TAG: started a pid $(cat "$TOP/a/run/ejabberd.pid") b pid $(cat "$TOP/b/run/ejabberd.pid") in $TOP ($(( (t3 - t0) / 1000 )).$(( (t3 - t0) % 1000 / 100 )) s)"
}

stop_node() { # N
	local DIR=$TOP/$1
	[ -d "$DIR/run" ] || return 0
	cmd_stop_one
}

stop_dns() {
	local p
	p=$(cat "$TOP/dns/dnsmasq.pid" 2>/dev/null) || return 0
	case $p in ''|*[!0-9]*) return 0 ;; esac
	if pid_alive "$p" && cmdline "$p" | grep -q "^dnsmasq .*$TOP/dns/"; then
		srv_term "$p" 5
		echo "$TAG: dnsmasq pid $p stopped"
	fi
	rm -f "$TOP/dns/dnsmasq.pid"
}

cmd_stop_cluster() {
	local t0 n
	t0=$(now_ms)
	stop_dns
	# both at once: B first would make A wait for nothing, but a fresh start
	# never reuses the spools, so the order does not matter
	for n in a b; do
		[ -d "$TOP/$n/run" ] || continue
		( DIR=$TOP/$n TAG="cluster node $n"; cmd_stop_one ) &
	done
	wait
	echo "$TAG: stopped in $(( $(now_ms) - t0 ))ms"
}

cmd_kill_node() {
	local n=$1 DIR=$TOP/$1 pid
	pid=$(cat "$DIR/run/ejabberd.pid" 2>/dev/null)
	case $pid in ''|*[!0-9]*) die "node $n: no pid in $DIR/run/ejabberd.pid" ;; esac
	pid_alive "$pid" || die "node $n (pid $pid) is not running"
	cmdline "$pid" | grep -qF -- "-mnesia dir \"$DIR/spool\"" ||
		die "pid $pid is not the ejabberd of $DIR; not killing it"
	remember_tree "$n"
	kill -KILL "$pid"
	for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.1; done
	pid_alive "$pid" && die "pid $pid survived SIGKILL"
	# reap the launcher chain (it ends with beam.smp)
	TAG="cluster node $n" cmd_stop_one >/dev/null
	echo "$TAG: node $n killed (pid $pid, SIGKILL)"
}

cmd_start_node() {
	local n=$1 o t0
	o=$(other "$n")
	t0=$(now_ms)
	find_erl_call; cookie
	DEBUG=${KL_EJABBERD_DEBUG:-0}
	[ -d "$TOP/$n/spool" ] || die "node $n has no spool in $TOP/$n (start the cluster first)"
	boot "$n"
	wait_up "$n"
	local op
	op=$(cat "$TOP/$o/run/ejabberd.pid" 2>/dev/null)
	if [ -z "$op" ] || ! pid_alive "$op"; then
		echo "$TAG: node $n started pid $(cat "$TOP/$n/run/ejabberd.pid") in $(( $(now_ms) - t0 ))ms (node $o is down: not rejoined yet)"
		return 0
	fi
	wait_cluster 30 || { echo "$SELF: node $n is up but list_cluster: a '$(members a)', b '$(members b)'" >&2; exit 1; }
	echo "$TAG: node $n started pid $(cat "$TOP/$n/run/ejabberd.pid") and rejoined $(node_name "$o") in $(( $(now_ms) - t0 ))ms"
}

cmd_dns() {
	local pa=10 pb=20 w=0
	[ "${1:-}" = --equal ] && { pb=10; w=50; }
	command -v dnsmasq >/dev/null || die "dnsmasq is not installed (make deps: dnsmasq-base)"
	mkdir -p "$TOP/dns"
	stop_dns >/dev/null
	dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
		--port=$DNS_PORT --listen-address=$DNS_ADDR --bind-interfaces --pid-file= --user=root \
		--local=/localhost/ --local=/test/ --local-ttl=60 \
		--log-queries --log-facility="$TOP/dns/dnsmasq.log" \
		--srv-host=_xmpp-client._tcp.localhost,xmpp-a.test,5222,$pa,$w \
		--srv-host=_xmpp-client._tcp.localhost,xmpp-b.test,5222,$pb,$w \
		--srv-host=_xmpps-client._tcp.localhost,xmpp-a.test,5223,$pa,$w \
		--srv-host=_xmpps-client._tcp.localhost,xmpp-b.test,5223,$pb,$w \
		--host-record=xmpp-a.test,127.0.0.2 --host-record=xmpp-b.test,127.0.0.3 \
		</dev/null >"$TOP/dns/dnsmasq.out" 2>&1 &
	local p=$!
	echo "$p" > "$TOP/dns/dnsmasq.pid"
	for _ in $(seq 50); do
		tcp_open $DNS_ADDR $DNS_PORT && break
		pid_alive "$p" || break
		sleep 0.1
	done
	tcp_open $DNS_ADDR $DNS_PORT || { cat "$TOP/dns/dnsmasq.out" >&2; die "dnsmasq did not come up on $DNS_ADDR:$DNS_PORT"; }
	echo "$TAG: dnsmasq pid $p on $DNS_ADDR:$DNS_PORT (SRV localhost -> 127.0.0.2/127.0.0.3, priorities $pa/$pb)"
}

# ejabberd_server.sh's cmd_stop stops the node of $DIR; keep it, and make
# `stop` (srv_main) stop the whole cluster.
eval "cmd_stop_one() $(declare -f cmd_stop | tail -n +2)"
cmd_stop() { cmd_stop_cluster; }

cmd_other() {
	local c=$1; shift
	case $c in
	kill-node) [ $# = 1 ] || usage; node_ip "$1" >/dev/null; cmd_kill_node "$1" ;;
	start-node) [ $# = 1 ] || usage; node_ip "$1" >/dev/null; cmd_start_node "$1" ;;
	dns) [ $# -le 1 ] || usage; cmd_dns "$@" ;;
	*) usage ;;
	esac
}

# TOP: the cluster's directory (srv_main sets DIR to it too; the node
# functions point DIR at TOP/a or TOP/b)
case ${2:-} in
/*) TOP=${2%/} ;;
'') usage ;;
*) TOP=$(pwd)/${2%/} ;;
esac
srv_main "$@"
