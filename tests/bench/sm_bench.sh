#!/bin/bash
# tests/bench/sm_bench.sh — what stream management (XEP-0198) costs on the
# wire, against Prosody 0.12 and ejabberd 23.01, measured in one run
# (`make bench-sm`; needs root for the network namespace, like every test).
#
# 1. Reconnect cost. build/kinglet (STARTTLS, pipelining safe, stream
#    management on, --reconnect --backoff 20 200) is online through
#    tests/fault_proxy.py; the proxy aborts the live link KL_SM_BENCH_CUTS
#    times (default 10, `cutlive`, KL_SM_BENCH_GAP_S = 1 s apart, whole
#    seconds) and the device reconnects and resumes each time. Each
#    "resumed JID (R round trips, O bytes out, I bytes in)" line is what
#    that reconnect cost from the TCP connect to <resumed/>, TLS included;
#    the table gives the median and max of those beside a first full login
#    through the same proxy (its --stats: round_trips, bytes_out, bytes_in,
#    up to the bound session). Cross-check against the proxy's log, on each
#    resumed connection: its client->server count reaches exactly O at a
#    chunk boundary (the resumption flight), and I lies within the server's
#    answer to that flight. The proxy's whole-connection counts are shown
#    too (a login up to its logout, so with <enable/>, <presence/> and the
#    close; a resumption up to the next cut, so with the <a/> after it).
# 2. Idle cost per hour while online. kinglet's keepalive is an XEP-0198
#    <r/> answered by <a/> after T idle seconds (default 90 s,
#    KL_KEEPALIVE_MS); libstrophe's (xmpp_conn_set_keepalive, or
#    xmpp_sockopt_cb_keepalive with its defaults) is TCP's: SO_KEEPALIVE,
#    TCP_KEEPIDLE, TCP_KEEPINTVL set on the socket, so the kernel sends the
#    probes (a bare segment one byte behind, answered by a bare ACK) and
#    nothing goes through TLS, XMPP or a user-space proxy. So both clients
#    idle side by side, each through its own fault proxy, with the same
#    short period T = KL_SM_BENCH_KA_S (default 5 s) for a window of
#    KL_SM_BENCH_WINDOW_S (default 60 s), and every TCP segment on their
#    client<->proxy legs is captured in the namespace (an AF_PACKET socket
#    on lo: Python's standard library, no tcpdump needed). What one
#    keepalive cycle costs (segments, IP bytes, TLS bytes through the proxy)
#    is then scaled to one hour at each client's default period: kinglet's
#    from KL_KEEPALIVE_MS, libstrophe's read back from the socket of a
#    login with its default keepalive callback. Traffic the server starts on
#    its own is shown apart (per hour of window time, not per probe).
#
# Environment: KINGLET, STROPHE_CLIENT (binaries), KL_SM_BENCH_SERVERS
# ("prosody ejabberd"), KL_SM_BENCH_CUTS, KL_SM_BENCH_GAP_S,
# KL_SM_BENCH_KA_S, KL_SM_BENCH_WINDOW_S; KL_SM_BENCH_KEEP=1 keeps the logs
# (proxy logs, capture, client output) and says where. Takes ~2.5 minutes.
# Exit 1 if a measurement failed (the tables say which).
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
KL=${KINGLET:-$root/build/kinglet}
STROPHE=${STROPHE_CLIENT:-$root/build/tests/strophe_client}
SERVERS=${KL_SM_BENCH_SERVERS:-prosody ejabberd}
CUTS=${KL_SM_BENCH_CUTS:-10}
GAP=${KL_SM_BENCH_GAP_S:-1}
T=${KL_SM_BENCH_KA_S:-5}
WIN=${KL_SM_BENCH_WINDOW_S:-60}
SETTLE=3
KL_KA_MS=$(sed -n 's/^#define KL_KEEPALIVE_MS \([0-9]*\)u*$/\1/p' "$root/include/kinglet/kl_config_defaults.h")
KL_KA_MS=${KL_KA_MS:-90000}
# the proxies' ports (fixed: the namespace is ours): reconnect, kinglet idle,
# libstrophe idle; controls at +10
P_RC=25222 P_KI=25223 P_SI=25224

TOP=$(mktemp -d /tmp/kl-smbench.XXXXXX)
chmod 711 "$TOP" # ejabberd runs as its own user and writes in $TOP/ejabberd
PIDS=""
SRV_RUNNING=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	[ -n "$SRV_RUNNING" ] && $SRV_RUNNING >/dev/null 2>&1
	if [ -n "${KL_SM_BENCH_KEEP:-}" ]; then echo "sm_bench: logs kept in $TOP"; else rm -rf "$TOP"; fi
}
trap cleanup EXIT

for b in "$KL" "$STROPHE"; do
	[ -x "$b" ] || { echo "sm_bench: $b missing (make $(basename "$b"))" >&2; exit 1; }
done

# ---- the capture: every TCP segment to or from the given ports on lo ---------
# One line per segment: "T_MS PORT c2s|s2c FLAGS SEQ PAYLOAD_LEN IP_LEN"
# (PORT: the proxy's; c2s: towards it). Each packet is seen twice on lo
# (outgoing and incoming); only the incoming copy is kept.
cat >"$TOP/capture.py" <<'PY'
import signal, socket, struct, sys, time
ports = set(int(p) for p in sys.argv[2:])
out = open(sys.argv[1], "w", buffering=1)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind(("lo", 0))
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
print("capturing", flush=True)
while True:
    data, addr = s.recvfrom(70000)
    if addr[2] == socket.PACKET_OUTGOING or data[12:14] != b"\x08\x00":
        continue
    ip = data[14:]
    if ip[9] != 6:
        continue
    ihl = (ip[0] & 15) * 4
    iplen = struct.unpack("!H", ip[2:4])[0]
    sport, dport, seq = struct.unpack("!HHI", ip[ihl:ihl + 8])
    thl = (ip[ihl + 12] >> 4) * 4
    flags = ip[ihl + 13]
    if dport in ports:
        port, d = dport, "c2s"
    elif sport in ports:
        port, d = sport, "s2c"
    else:
        continue
    out.write("%d %d %s %d %d %d %d\n" % (time.monotonic() * 1000, port, d, flags, seq,
                                           iplen - ihl - thl, iplen))
PY

ctl() { # ctl PORT CMD: one command to a proxy's control port
	python3 -c "
import socket,sys
s=socket.create_connection(('127.0.0.1',int(sys.argv[1]))); s.sendall(sys.argv[2].encode()+b'\n')
print(s.makefile().readline().strip())" "$1" "$2"
}
proxy() { # proxy PORT LOG
	python3 "$root/tests/fault_proxy.py" --listen 127.0.0.1:"$1" --target 127.0.0.1:5222 \
		--control 127.0.0.1:$(($1 + 10)) --log "$2" >"$2.out" 2>&1 &
	PIDS="$PIDS $!"
}
wait_for() { # wait_for FILE REGEX TENTHS
	for _ in $(seq "$3"); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
mark() { # mark NAME: proxy counters and line counts of the logs, now
	{
		echo "$1_ki $(ctl $((P_KI + 10)) stats)"
		echo "$1_si $(ctl $((P_SI + 10)) stats)"
		echo "$1_lines_ki $(wc -l <"$D/ki.log")"
		echo "$1_lines_si $(wc -l <"$D/si.log")"
		echo "$1_lines_cap $(wc -l <"$D/cap.log")"
	} >>"$D/marks"
}

# ---- phase 1: the reconnect cost (runs while phase 2 idles) ------------------
reconnect_phase() {
	local C=(--host 127.0.0.1 --port "$P_RC" --cafile "$D/ca.pem" --password alicepass)
	timeout -k 2 20 "$KL" "${C[@]}" --jid alice@localhost/first --stats --timeout 15 >"$D/first.out" 2>"$D/first.err"
	echo "first_rc $?" >"$D/rc.marks"
	ctl $((P_RC + 10)) stats >"$D/rc.first_stats"
	timeout -k 2 $((CUTS * GAP + 30)) "$KL" "${C[@]}" --jid alice@localhost/dev --reconnect --backoff 20 200 --echo \
		--timeout $((CUTS * GAP + 6)) --stats >"$D/dev.out" 2>"$D/dev.err" &
	local dev=$!
	wait_for "$D/dev.out" '^online' 100 || { echo "dev_online 0" >>"$D/rc.marks"; wait $dev; return; }
	sleep "$GAP"
	for _ in $(seq "$CUTS"); do
		ctl $((P_RC + 10)) cutlive >/dev/null
		sleep "$GAP"
	done
	wait $dev
	echo "dev_rc $?" >>"$D/rc.marks"
}

# ---- one server: both phases ---------------------------------------------------
run_server() { # run_server prosody|ejabberd
	local name=$1 srv
	D=$TOP/$name
	mkdir -p "$D"
	case $name in
	prosody) srv=$root/tests/prosody/prosody.sh ;;
	ejabberd) srv=$root/tests/ejabberd/ejabberd.sh ;;
	esac
	"$srv" start "$D" >"$D/start.out" 2>&1 || { echo "start_failed 1" >"$D/marks"; tail -3 "$D/start.out" >&2; return; }
	SRV_RUNNING="$srv stop $D"
	: >"$D/marks"
	proxy $P_RC "$D/rc.log"
	proxy $P_KI "$D/ki.log"
	proxy $P_SI "$D/si.log"
	python3 "$TOP/capture.py" "$D/cap.log" $P_KI $P_SI >"$D/cap.out" 2>&1 &
	local cap=$!
	PIDS="$PIDS $cap"
	wait_for "$D/cap.out" capturing 50
	for p in rc ki si; do wait_for "$D/$p.log.out" '^control' 50; done
	# libstrophe's default keepalive, read back from its socket
	timeout -k 2 20 "$STROPHE" --jid carol@localhost/d --pass carolpass --host 127.0.0.1 --port 5222 \
		--cafile "$D/ca.pem" --no-presence --keepalive-default --timeout 10 >"$D/sdef.out" 2>&1
	# phase 2's clients: online, then idle
	local idle=$((SETTLE + WIN + 3))
	timeout -k 2 $((idle + 20)) "$KL" --host 127.0.0.1 --port $P_KI --cafile "$D/ca.pem" --jid bob@localhost/idle \
		--password bobpass --keepalive "$T" 30 --echo --timeout $((idle + 4)) --stats >"$D/ki.cli" 2>"$D/ki.err" &
	local ki=$!
	timeout -k 2 $((idle + 20)) "$STROPHE" --jid carol@localhost/idle --pass carolpass --host 127.0.0.1 \
		--port $P_SI --cafile "$D/ca.pem" --keepalive "$T" $(((T + 1) / 2)) --idle "$idle" --timeout 10 \
		>"$D/si.cli" 2>"$D/si.err" &
	local si=$!
	wait_for "$D/ki.cli" '^online' 100
	wait_for "$D/si.cli" '^ready' 100
	reconnect_phase &
	local rcp=$!
	sleep "$SETTLE"
	mark a
	sleep "$WIN"
	mark b
	wait $rcp
	wait $ki
	echo "ki_rc $?" >>"$D/marks"
	wait $si
	echo "si_rc $?" >>"$D/marks"
	kill "$cap" 2>/dev/null
	wait "$cap" 2>/dev/null
	$SRV_RUNNING >/dev/null 2>&1
	SRV_RUNNING=""
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	PIDS=""
	wait 2>/dev/null
}

echo "stream management on the wire: reconnect and idle cost, kinglet beside libstrophe (make bench-sm)"
for s in $SERVERS; do
	run_server "$s"
done

# ---- the tables ---------------------------------------------------------------
# shellcheck disable=SC2086 # SERVERS: a list
python3 - "$TOP" "$CUTS" "$GAP" "$T" "$WIN" "$KL_KA_MS" $SERVERS <<'PY'
import json, os, re, statistics, sys
top, cuts, gap, T, win, kl_ka_ms = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
servers = sys.argv[7:]
LABEL = {"prosody": "Prosody 0.12", "ejabberd": "ejabberd 23.01"}
failed = []

def read(p):
    try:
        return open(p).read()
    except OSError:
        return ""

def last_json(p):
    for line in reversed(read(p).splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None

def kv(p):
    d = {}
    for line in read(p).splitlines():
        k, _, v = line.partition(" ")
        d[k] = v
    return d

def stats_line(s):  # "conns N cuts N bytes_c2s N bytes_s2c N"
    w = s.split()
    return {w[i]: int(w[i + 1]) for i in range(0, len(w) - 1, 2)} if len(w) >= 8 else None

def proxy_conns(p):
    """per connection: [(dir, bytes)] in order, and the set of connections
    the proxy aborted (a cut), from a fault_proxy log"""
    conns, cut = {}, set()
    for line in read(p).splitlines():
        w = line.split()
        if len(w) == 4 and w[2] in ("c2s", "s2c") and w[3].isdigit():
            conns.setdefault(int(w[1]), []).append((w[2], int(w[3])))
        elif len(w) == 3 and w[2] == "abort":
            cut.add(int(w[1]))
    return conns, cut

# ---- table 1 ----
print()
print("1. Reconnect cost: build/kinglet through tests/fault_proxy.py (STARTTLS, pipelining safe, stream management on,")
print("   --reconnect --backoff 20 200); the proxy aborts the live link %d times (`cutlive`, %s s apart) and the device" % (cuts, gap))
print("   resumes each time. Resumption: the CLI's \"resumed\" lines, TCP connect to <resumed/>, TLS included (bytes on")
print("   the wire); first login: a login with --stats through the same proxy, TCP connect to the bound session.")
print("   proxy columns: the fault proxy's own count of the whole connection: the login's up to its logout (so with")
print("   <enable/>, <presence/> and the close), each resumed one up to the next cut (so with the <a/> after <resumed/>).")
hdr = "  %-15s %-34s %11s %10s %9s   %11s %11s" % ("server", "", "round trips", "bytes out", "bytes in", "proxy C->S", "proxy S->C")
print(hdr)
print("  " + "-" * (len(hdr) - 2))
for s in servers:
    d = os.path.join(top, s)
    lab = LABEL.get(s, s)
    if kv(os.path.join(d, "marks")).get("start_failed"):
        print("  %-15s server did not start" % lab)
        failed.append(s + ": start")
        continue
    first = last_json(os.path.join(d, "first.out"))
    conns, cut = proxy_conns(os.path.join(d, "rc.log"))
    fc = conns.get(1, [])
    if first:
        print("  %-15s %-34s %11d %10d %9d   %11d %11d" % (lab, "first login (bind), --stats", first["round_trips"],
              first["bytes_out"], first["bytes_in"], sum(n for x, n in fc if x == "c2s"), sum(n for x, n in fc if x == "s2c")))
    else:
        print("  %-15s %-34s %s" % (lab, "first login", "FAILED: " + read(os.path.join(d, "first.err")).strip()[-200:]))
        failed.append(s + ": first login")
    res = [tuple(map(int, m)) for m in re.findall(r"^resumed \S+ \((\d+) round trips, (\d+) bytes out, (\d+) bytes in\)",
                                                  read(os.path.join(d, "dev.out")), re.M)]
    dev = last_json(os.path.join(d, "dev.out"))
    # the device's connections: 2 (login) and 3.. (one per resumption)
    rconns = [conns[k] for k in sorted(conns) if k >= 3]
    pc = [sum(n for x, n in conns[k] if x == "c2s") for k in sorted(conns) if k >= 3 and k in cut]
    ps = [sum(n for x, n in conns[k] if x == "s2c") for k in sorted(conns) if k >= 3 and k in cut]
    if res:
        for what, f in (("median", statistics.median_low), ("max", max)):
            print("  %-15s %-34s %11d %10d %9d   %11s %11s" % ("", "resumption, %s of %d" % (what, len(res)),
                  f(r[0] for r in res), f(r[1] for r in res), f(r[2] for r in res),
                  f(pc) if pc else "-", f(ps) if ps else "-"))
    else:
        print("  %-15s %-34s FAILED: %s" % ("", "resumption", read(os.path.join(d, "dev.err")).strip()[-200:]))
    # cross-check on each resumed connection: the proxy's C->S count hits O
    # exactly at a chunk boundary (the client's resumption flight), and I
    # lies in the server's answer to it: more than the proxy had forwarded
    # S->C before that flight, at most what it had forwarded before the
    # client's next write (the proxy's reads may merge the server's writes,
    # and TLS reads stop at record boundaries)
    agree = 0
    for (rt, o, i), c in zip(res, rconns):
        po = pi = 0
        lo = hi = None
        for x, n in c:
            if x == "c2s":
                if lo is not None and hi is None:
                    hi = pi
                po += n
                if po == o and lo is None:
                    lo = pi
            else:
                pi += n
        if hi is None:
            hi = pi
        agree += lo is not None and lo < i <= hi
    ok = dev and len(res) == cuts and dev.get("resumes") == cuts and dev.get("onlines") == 1
    print("  %-15s %s" % ("", "%d cuts, %d resumptions, %s bind(s); the proxy's counts agree on %d of %d resumed connections%s"
          % (cuts, len(res), dev.get("onlines", "?") if dev else "?", agree, len(res), "" if ok and agree == len(res) else "  <- CHECK")))
    if not ok:
        failed.append(s + ": reconnects (%d resumed of %d cuts)" % (len(res), cuts))

# ---- table 2 ----
def capture(p, a, b):
    """segments per port in [a, b) lines; probes: bare C->S segments one byte
    behind what that side already sent (TCP keepalive)"""
    lines = read(p).splitlines()
    nxt, out = {}, {}
    for idx, line in enumerate(lines):
        w = line.split()
        if len(w) != 7:
            continue
        t, port, d, flags, seq, plen, iplen = int(w[0]), int(w[1]), w[2], int(w[3]), int(w[4]), int(w[5]), int(w[6])
        key = (port, d)
        probe = d == "c2s" and plen == 0 and key in nxt and (seq + 1) % 2**32 == nxt[key] and not flags & 0x07
        end = (seq + plen + (1 if flags & 0x03 else 0)) % 2**32
        if plen or flags & 0x03 or key not in nxt:
            nxt[key] = end
        if not (a <= idx < b):
            continue
        o = out.setdefault(port, {"c2s": [], "s2c": []})
        o[d].append((t, plen, iplen, probe))
    return out

def proxy_window(p, a, b):
    """the chunks forwarded in the window, and whether a connection began or
    ended in it"""
    ev, ended = [], False
    for line in read(p).splitlines()[a:b]:
        w = line.split()
        if len(w) == 4 and w[2] in ("c2s", "s2c") and w[3].isdigit():
            ev.append((int(w[0]), w[2], int(w[3])))
        elif len(w) >= 3:
            ended = True
    return ev, ended

print()
print("2. Idle cost while online: kinglet (keepalive: XEP-0198 <r/> answered by <a/>, through TLS) beside libstrophe 0.12")
print("   (xmpp_conn_set_keepalive: TCP keepalive, SO_KEEPALIVE + TCP_KEEPIDLE, probes sent by the kernel: no TLS,")
print("   no XMPP, nothing through the proxy). Both online side by side, idle, each through its own fault proxy, with")
print("   the same period T = %d s, measured over %d s; every TCP segment of the client<->proxy legs captured in the" % (T, win))
print("   namespace (AF_PACKET on lo). IP bytes: IPv4 + TCP headers (with timestamps: 52 bytes) + payload; an")
print("   Ethernet frame adds 14. TLS bytes: the payload through the proxy (TCP payload).")
for s in servers:
    d = os.path.join(top, s)
    m = kv(os.path.join(d, "marks"))
    if m.get("start_failed") or "b_lines_cap" not in m:
        continue
    lab = LABEL.get(s, s)
    sdef = re.search(r"^sockopt SO_KEEPALIVE=(\d+) TCP_KEEPIDLE=(\d+) TCP_KEEPINTVL=(\d+) TCP_KEEPCNT=(\d+) TCP_USER_TIMEOUT=(\d+)",
                     read(os.path.join(d, "sdef.out")), re.M)
    smeas = re.search(r"^sockopt (.*) rc=", read(os.path.join(d, "si.cli")), re.M)
    cap = capture(os.path.join(d, "cap.log"), int(m["a_lines_cap"]), int(m["b_lines_cap"]))
    rows = []
    for who, port, key in (("kinglet", 25223, "ki"), ("libstrophe 0.12", 25224, "si")):
        sa, sb = stats_line(m.get("a_" + key, "")), stats_line(m.get("b_" + key, ""))
        pw, ended = proxy_window(os.path.join(d, key + ".log"), int(m["a_lines_" + key]), int(m["b_lines_" + key]))
        c = cap.get(port, {"c2s": [], "s2c": []})
        rc = m.get(key + "_rc", "?")
        if ended:
            rc = "%s, and its connection began or ended in the window" % rc
        if who == "kinglet":
            # a keepalive cycle: each client write (an <r/>); what the server
            # sends more than 1 s after the client's last write is its own
            cw = [t for t, x, n in pw if x == "c2s"]
            probes = len(cw)
            times = cw
            own = [(t, n) for t, x, n in pw if x == "s2c" and not any(0 <= t - u <= 1000 for u in cw)]
            period = kl_ka_ms / 1000.0
            dflt = "%g s (KL_KEEPALIVE_MS)" % period
        else:
            times = [t for t, pl, ipl, pr in c["c2s"] if pr]
            probes = len(times)
            own = [(t, n) for t, x, n in pw if x == "s2c"]
            period = float(sdef.group(2)) if sdef else 60.0
            dflt = ("%g s (TCP_KEEPIDLE, read back)" % period) if sdef else "60 s (assumed: no read-back)"
        gaps = [b - a for a, b in zip(times, times[1:])]
        mean_gap = statistics.mean(gaps) / 1000.0 if gaps else 0
        app_c2s = (sb["bytes_c2s"] - sa["bytes_c2s"]) if sa and sb else 0
        app_s2c = (sb["bytes_s2c"] - sa["bytes_s2c"]) if sa and sb else 0
        own_b = sum(n for t, n in own)
        c2s_seg = len(c["c2s"])
        c2s_data = sum(1 for t, pl, ipl, pr in c["c2s"] if pl)
        c2s_ip = sum(ipl for t, pl, ipl, pr in c["c2s"])
        s2c_seg = len(c["s2c"])
        s2c_data = sum(1 for t, pl, ipl, pr in c["s2c"] if pl)
        s2c_ip = sum(ipl for t, pl, ipl, pr in c["s2c"])
        rows.append(dict(who=who, probes=probes, mean_gap=mean_gap, c2s_seg=c2s_seg, c2s_data=c2s_data, c2s_ip=c2s_ip,
                         app_c2s=app_c2s, s2c_seg=s2c_seg, s2c_data=s2c_data, s2c_ip=s2c_ip, app_s2c=app_s2c,
                         own=len(own), own_b=own_b, period=period, dflt=dflt, rc=rc))
    print()
    print("  %s: measured in the %d s window (T = %d s for both)" % (lab, win, T))
    h = "  %-16s %6s %9s | %8s %7s %8s %9s | %8s %7s %8s %9s" % ("client", "probes", "period s", "C->S seg", "writes",
        "IP bytes", "TLS bytes", "S->C seg", "data", "IP bytes", "TLS bytes")
    print(h)
    print("  " + "-" * (len(h) - 2))
    for r in rows:
        print("  %-16s %6d %9.2f | %8d %7d %8d %9d | %8d %7d %8d %9d%s" % (r["who"], r["probes"], r["mean_gap"], r["c2s_seg"],
              r["c2s_data"], r["c2s_ip"], r["app_c2s"], r["s2c_seg"], r["s2c_data"], r["s2c_ip"], r["app_s2c"],
              "" if r["rc"] == "0" else "  <- client exit %s" % r["rc"]))
        if r["probes"] < max(1, win // T - 2) or r["rc"] != "0":
            failed.append("%s: %s idle (%d probes, exit %s)" % (s, r["who"], r["probes"], r["rc"]))
    print()
    print("  %s: per hour at the defaults (one keepalive cycle as measured x cycles per hour; the server's own" % lab)
    print("  traffic, if any, x 3600 / %d s)" % win)
    h = "  %-16s %-36s %7s | %9s %7s %9s %9s | %9s %9s %9s" % ("client", "keepalive period (default)", "cycles", "C->S seg",
        "writes", "IP bytes", "TLS bytes", "S->C seg", "IP bytes", "TLS bytes")
    print(h)
    print("  " + "-" * (len(h) - 2))
    for r in rows:
        if not r["probes"]:
            print("  %-16s no keepalive cycle seen in the window" % r["who"])
            continue
        n = 3600.0 / r["period"]
        k = n / r["probes"]
        print("  %-16s %-36s %7.0f | %9.0f %7.0f %9.0f %9.0f | %9.0f %9.0f %9.0f" % (r["who"], r["dflt"], n,
              r["c2s_seg"] * k, r["c2s_data"] * k, r["c2s_ip"] * k, r["app_c2s"] * k,
              r["s2c_seg"] * k, r["s2c_ip"] * k, (r["app_s2c"] - r["own_b"]) * k))
    for r in rows:
        if r["probes"]:
            p = float(r["probes"])
            print("  one %s cycle: C->S %.1f segments (%.1f writes, %.0f TLS bytes), %.0f IP bytes; S->C %.1f segments, %.0f IP bytes"
                  % (r["who"], r["c2s_seg"] / p, r["c2s_data"] / p, r["app_c2s"] / p, r["c2s_ip"] / p, r["s2c_seg"] / p, r["s2c_ip"] / p))
    for r in rows:
        print("  %s: server-initiated S->C writes in the window: %d (%d TLS bytes)%s" % (r["who"], r["own"], r["own_b"],
              "" if not r["own"] else " = %.0f bytes per hour, not included above" % (r["own_b"] * 3600.0 / win)))
    if sdef:
        print("  libstrophe's default keepalive (xmpp_sockopt_cb_keepalive, read back from its socket): SO_KEEPALIVE=%s"
              " TCP_KEEPIDLE=%s s TCP_KEEPINTVL=%s s TCP_KEEPCNT=%s TCP_USER_TIMEOUT=%s ms; without that callback (or"
              " xmpp_conn_set_keepalive) it sends no keepalive at all" % sdef.groups())
    if smeas:
        print("  libstrophe in the window: %s (xmpp_conn_set_keepalive(conn, %d, %d))" % (smeas.group(1), T, (T + 1) // 2))
    print("  kinglet in the window: --keepalive %d 30 (default %d s: KL_KEEPALIVE_MS in include/kinglet/kl_config_defaults.h)"
          % (T, kl_ka_ms // 1000))
print()
print("  notes: a TCP keepalive is answered by the next hop's kernel (here the proxy; in the field a NAT or the")
print("  server's TCP stack): it keeps the mapping open but proves nothing about the XMPP session. <a/> comes from")
print("  the server's stream-management layer, through TLS. Loopback, no loss: real links add retransmissions.")
print("  reproduce: make bench-sm  (or tests/bench/sm_bench.sh; KL_SM_BENCH_CUTS, _GAP_S, _KA_S, _WINDOW_S)")
if failed:
    print("sm_bench: FAILED: " + "; ".join(failed))
    sys.exit(1)
PY
