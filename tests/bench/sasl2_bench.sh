#!/bin/bash
# tests/bench/sasl2_bench.sh — what SASL2 (XEP-0388) + Bind2 (XEP-0386) +
# FAST (XEP-0484) buy at login, on Prosody 13 and ejabberd 24.12, beside the
# RFC 6120 path and libstrophe, through a link with a fixed RTT
# (tests/delay_proxy.py, default 200 ms, TCP handshake counted with
# --tcp-rtt), inside tests/netns.sh (`make bench-sasl2`; needs root).
#
# Rows, each on both servers (kinglet: build/kinglet --stats, safe
# pipelining, alice@localhost with a password):
#   kinglet SASL2, cached features   direct TLS and STARTTLS: the hints
#                                    (--cache) come from a login with
#                                    --no-fast, so they say SASL2 and hold no
#                                    FAST token: the password goes in
#                                    <authenticate/> with the stream header
#                                    (a first login on a device that knows
#                                    the server); every run starts from a
#                                    copy of those hints
#   kinglet FAST                     direct TLS and STARTTLS: the hints of a
#                                    password login that got a FAST token;
#                                    the runs share one hints file, as a
#                                    device does (the token may rotate)
#   kinglet RFC 6120 (--no-sasl2)    direct TLS and STARTTLS, a copy of the
#                                    SASL2 hints each run: <auth/> and the
#                                    bind pipelined (safe) as those hints allow
#   libstrophe 0.12                  build/tests/strophe_client --no-presence
#                                    (SCRAM, RFC 6120: libstrophe 0.12 has no
#                                    SASL2, Bind2 nor FAST)
#   kinglet FAST + inline SM resumption after a link drop (direct TLS;
#   KL_SASL2_BENCH_RESUME=0 skips it): kinglet --reconnect --cache (FAST
#   hints) through the delay proxy and tests/fault_proxy.py, which aborts the
#   live link once; the row is the CLI's "resumed JID (R round trips, O bytes
#   out, I bytes in)" line; its ms is from the moment the reconnect starts
#   (the "link down ... reconnecting in X ms" line + X) to that line. bob
#   then sends it the message it waits for (--recv 1), so it ends with its
#   --stats: a run counts only with fast=1 and inline_resumed=1.
#
# Columns: round trips (TCP handshake included) and client flights up to the
# bound session, wire bytes out/in (TLS records, TCP/IP headers not
# counted) up to it, the median and p90 (nearest rank) of the time to online
# over KL_SASL2_BENCH_RUNS runs (default 5). kinglet's figures are its own
# --stats (round_trips, flights_out, bytes_out, bytes_in, online_ms);
# libstrophe reports only online_ms, so its round trips, flights and bytes
# come from the delay proxy's log (--log): wire flights = runs of
# client->server chunks between server->client ones, up to the server run
# the proxy read at accept + online_ms - RTT/2 (the one that made it
# online); round trips = wire flights + 1 (the TCP handshake); flights =
# wire flights - 1, as kinglet's flights_out counts them (the TLS
# ClientHello's flight carries no XMPP; TLS Finished rides with XMPP data);
# bytes in = the server runs up to that one, whole (a record the server
# sends right behind the online one counts too: ejabberd 24.12 sends one).
# The same is computed for every kinglet run as a cross-check of that
# method: a difference from kinglet's own counts is printed under the table.
# Every run is checked (exit 0; kinglet: sasl2/fast as the row expects) and a
# run that fails is left out and counted (the "ok" column).
#
# Output: the table on stdout, and the same rows as JSON lines in
# build/bench/sasl2.jsonl (KL_SASL2_BENCH_OUT): mode, client, server, tls,
# round_trips, flights, bytes_out, bytes_in, median_ms, p90_ms, ms (every
# run), runs, ok, source (stats|proxy|resumed), proxy_* (the log's counts),
# sasl, tls_resumed, note.
# Environment: KINGLET, STROPHE_CLIENT (binaries), KL_BENCH_RTT_MS (200),
# KL_SASL2_BENCH_RUNS (5), KL_SASL2_BENCH_SERVERS ("prosody13 ejabberd24"),
# KL_SASL2_BENCH_KEEP=1 keeps the work directory (logs) and says where.
# Exit 1 if a row has no successful run. Wall-clock figures live here, never
# in `make check`. Takes ~3 minutes.
set -u
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${KL_NETNS:-}" ] || exec "$here/../netns.sh" "$0" "$@"
root=$(cd "$here/../.." && pwd)
KL=${KINGLET:-$root/build/kinglet}
STROPHE=${STROPHE_CLIENT:-$root/build/tests/strophe_client}
RTT=${KL_BENCH_RTT_MS:-200}
RUNS=${KL_SASL2_BENCH_RUNS:-5}
SERVERS=${KL_SASL2_BENCH_SERVERS:-prosody13 ejabberd24}
OUT=${KL_SASL2_BENCH_OUT:-$root/build/bench/sasl2.jsonl}
RESUME=${KL_SASL2_BENCH_RESUME:-1}
P13=$root/tests/prosody/prosody13.sh
EJ24=$root/tests/ejabberd/ejabberd24.sh

for b in "$KL" "$STROPHE"; do
	[ -x "$b" ] || { echo "sasl2_bench: $b not built" >&2; exit 1; }
done
DIR=$(mktemp -d /tmp/kl-sasl2-bench.XXXXXX) || exit 1
chmod 711 "$DIR" # the prosody and ejabberd users must reach their directories
PX=""
cleanup() {
	for p in $PX; do kill "$p" 2>/dev/null; done
	"$P13" stop "$DIR/prosody13" >/dev/null 2>&1
	"$EJ24" stop "$DIR/ejabberd24" >/dev/null 2>&1
	if [ -n "${KL_SASL2_BENCH_KEEP:-}" ]; then echo "sasl2_bench: logs kept in $DIR" >&2; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
RUNLOG=$DIR/runs.tsv
: >"$RUNLOG"
err=0

# proxy LISTEN TARGET LOG: a delay proxy (RTT/2 each way, TCP RTT counted)
proxy() {
	python3 "$root/tests/delay_proxy.py" --listen 127.0.0.1:"$1" --target 127.0.0.1:"$2" \
		--delay-ms $((RTT / 2)) --tcp-rtt --log "$3" >"$3.out" 2>&1 &
	PX="$PX $!"
	for _ in $(seq 50); do grep -qs listening "$3.out" && return 0; sleep 0.1; done
	echo "sasl2_bench: delay proxy on $1 did not start" >&2
	return 1
}

lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# record ROW LABEL SERVER TLS CLIENT EXPECT RC LOG FROM TO PAYLOAD
record() {
	local IFS=$'\t'
	echo "$*" >>"$RUNLOG"
}

# krun ROW LABEL SERVER TLS EXPECT CACHEMODE PORT PROXYLOG ARGS...
#   CACHEMODE: copy:FILE (a fresh copy of FILE and its key each run),
#   share:FILE (the same file every run), none
krun() {
	local row=$1 label=$2 srv=$3 tls=$4 expect=$5 cm=$6 port=$7 log=$8 from out rc cache=()
	shift 8
	for i in $(seq "$RUNS"); do
		case $cm in
		copy:*)
			cp "${cm#copy:}" "$DIR/run.hints" && cp "${cm#copy:}.key" "$DIR/run.hints.key" || return 1
			rm -f "$DIR/run.hints.sm"
			cache=(--cache "$DIR/run.hints") ;;
		share:*) cache=(--cache "${cm#share:}") ;;
		*) cache=() ;;
		esac
		from=$(lines "$log")
		out=$(timeout -k 2 40 "$KL" --jid "alice@localhost/bench" --password alicepass --host 127.0.0.1 \
			--port "$port" --cafile "$DIR/$srv/ca.pem" --stats --timeout 30 "${cache[@]}" "$@" 2>"$DIR/run.err")
		rc=$?
		sleep 0.3 # the proxy logs the close
		[ $rc = 0 ] || echo "  ($label, $srv, run $i: exit $rc: $(tail -n 1 "$DIR/run.err"))" >&2
		record "$row" "$label" "$srv" "$tls" kinglet "$expect" "$rc" "$log" "$from" "$(lines "$log")" \
			"$(echo "$out" | tail -n 1)"
	done
}

# srun ROW SERVER TLS PORT PROXYLOG ARGS...: libstrophe
srun() {
	local row=$1 srv=$2 tls=$3 port=$4 log=$5 from out rc
	shift 5
	for i in $(seq "$RUNS"); do
		from=$(lines "$log")
		out=$(timeout -k 2 40 "$STROPHE" --jid alice@localhost/strophe --pass alicepass --host 127.0.0.1 \
			--port "$port" --cafile "$DIR/$srv/ca.pem" --no-presence --timeout 30 "$@" 2>"$DIR/run.err")
		rc=$?
		sleep 0.3
		[ $rc = 0 ] || echo "  (libstrophe, $srv, run $i: exit $rc: $(tail -n 1 "$DIR/run.err"))" >&2
		record "$row" "libstrophe 0.12 (no SASL2)" "$srv" "$tls" strophe - "$rc" "$log" "$from" "$(lines "$log")" \
			"$(echo "$out" | sed -n 's/^online_ms=\([0-9]*\).*/\1/p' | head -n 1)"
	done
}

# resume SERVER TLSPORT HINTS: FAST + inline resumption after one cut
resume_runs() {
	local srv=$1 tport=$2 hints=$3 base=$4 from pid tpid i ln
	local fp=$((base + 1)) ctl=$((base + 2)) dp=$((base + 3)) log=$DIR/$srv.resume.log
	python3 "$root/tests/fault_proxy.py" --listen 127.0.0.1:$fp --target 127.0.0.1:"$tport" \
		--control 127.0.0.1:$ctl >"$DIR/$srv.fault.out" 2>&1 &
	PX="$PX $!"
	for _ in $(seq 50); do grep -qs control "$DIR/$srv.fault.out" && break; sleep 0.1; done
	proxy $dp $fp "$log" || return 1
	for i in $(seq "$RUNS"); do
		cp "$hints" "$DIR/res.hints" && cp "$hints.key" "$DIR/res.hints.key" || return 1
		rm -f "$DIR/res.hints.sm"
		from=$(lines "$log")
		# every line of the client's output, stamped with a monotonic ms clock
		rm -f "$DIR/res.fifo" && mkfifo "$DIR/res.fifo" || return 1
		python3 -u -c '
import sys, time
for line in sys.stdin:
    print("%.1f %s" % (time.monotonic() * 1000.0, line.rstrip("\n")), flush=True)' <"$DIR/res.fifo" >"$DIR/res.out" &
		tpid=$!
		"$KL" --jid alice@localhost/resume --password alicepass --host 127.0.0.1 --port $dp --tls direct \
			--cafile "$DIR/$srv/ca.pem" --cache "$DIR/res.hints" --reconnect --backoff 1 1 \
			--recv 1 --timeout 30 --stats >"$DIR/res.fifo" 2>&1 &
		pid=$!
		for _ in $(seq 100); do grep -q '^[0-9.]* online ' "$DIR/res.out" && break; sleep 0.1; done
		sleep 0.5
		timeout 5 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"cutlive\n"); s.recv(100)' $ctl
		for _ in $(seq 100); do grep -q '^[0-9.]* resumed ' "$DIR/res.out" && break; sleep 0.1; done
		# the message it waits for (--recv 1), so that it ends with its --stats
		timeout -k 2 20 "$KL" --jid bob@localhost/send --password bobpass --host 127.0.0.1 --port "$tport" \
			--tls direct --cafile "$DIR/$srv/ca.pem" --send alice@localhost/resume hello --timeout 10 \
			>/dev/null 2>&1
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill "$pid" 2>/dev/null # only if it is still there
		wait "$pid" "$tpid" 2>/dev/null
		ln=$(python3 -c '
import re, sys, json
t_down = retry = res = None
for line in open(sys.argv[1]):
    ts, _, text = line.partition(" ")
    m = re.search(r"link down .*reconnecting in (\d+) ms", text)
    if m and t_down is None:
        t_down, retry = float(ts), int(m.group(1))
    m = re.match(r"resumed \S+ \((\d+) round trips, (\d+) bytes out, (\d+) bytes in\)", text)
    if m and t_down is not None and res is None:
        res = {"online_ms": round(float(ts) - t_down - retry), "round_trips": int(m.group(1)),
               "bytes_out": int(m.group(2)), "bytes_in": int(m.group(3)), "retry_ms": retry}
    if text.startswith("{") and res is not None:
        st = json.loads(text)
        res.update({k: st.get(k) for k in ("sasl", "sasl2", "fast", "inline_resumed", "resumes", "link_downs")})
if res and res.get("inline_resumed") == 1 and res.get("fast") == 1:
    print(json.dumps(res))
elif res:
    print("not inline+FAST: " + json.dumps(res), file=sys.stderr)' "$DIR/res.out")
		[ -n "$ln" ] || echo "  (resume, $srv, run $i: no resumption: $(tail -n 3 "$DIR/res.out" | tr '\n' ' '))" >&2
		record resume-$srv "kinglet FAST + inline SM resume" "$srv" direct kinglet resumed \
			"$([ -n "$ln" ] && echo 0 || echo 1)" "$log" "$from" "$(lines "$log")" "$ln"
	done
}

base=0
for srv in $SERVERS; do
	base=$((base + 100))
	mkdir -p "$DIR/$srv"
	case $srv in
	prosody13) "$P13" start "$DIR/$srv" >"$DIR/$srv.start" 2>&1; st=$? tport=5233 sport=5232 ;;
	ejabberd24) "$EJ24" start "$DIR/$srv" >"$DIR/$srv.start" 2>&1; st=$? tport=5243 sport=5242 ;;
	*) echo "sasl2_bench: unknown server $srv" >&2; exit 2 ;;
	esac
	if [ $st != 0 ]; then echo "sasl2_bench: $srv did not start: $(tail -n 3 "$DIR/$srv.start")" >&2; err=1; continue; fi
	dport=$((15000 + tport)) sdport=$((15000 + sport))
	proxy $dport $tport "$DIR/$srv.direct.log" || exit 1
	proxy $sdport $sport "$DIR/$srv.starttls.log" || exit 1
	direct=(--port "$dport" --tls direct) starttls=(--port "$sdport" --tls starttls)
	ca=$DIR/$srv/ca.pem
	# hints straight from the server (no proxy): SASL2 without a token, and FAST
	prime() { # prime FILE PORT TLS ARGS...
		local f=$1 p=$2 t=$3
		shift 3
		rm -f "$f" "$f.key" "$f.sm"
		timeout -k 2 40 "$KL" --jid alice@localhost/bench --password alicepass --host 127.0.0.1 --port "$p" \
			--tls "$t" --cafile "$ca" --cache "$f" --timeout 20 "$@" >/dev/null 2>"$f.err" ||
			echo "sasl2_bench: priming $f failed: $(tail -n 1 "$f.err")" >&2
	}
	prime "$DIR/$srv.d.sasl2" $tport direct --no-fast
	prime "$DIR/$srv.s.sasl2" $sport starttls --no-fast
	# FAST hints: log in until a login is a FAST one (the first learns the
	# features, the next gets a token with the password)
	primefast() { # primefast FILE PORT TLS
		local f=$1 p=$2 t=$3
		rm -f "$f" "$f.key" "$f.sm"
		for _ in 1 2 3 4; do
			timeout -k 2 40 "$KL" --jid alice@localhost/bench --password alicepass --host 127.0.0.1 --port "$p" \
				--tls "$t" --cafile "$ca" --cache "$f" --timeout 20 --stats >"$f.out" 2>"$f.err"
			grep -q '"fast":1' "$f.out" && return 0
		done
		echo "sasl2_bench: no FAST login in 4 with $f: $(tail -n 1 "$f.err")" >&2
	}
	primefast "$DIR/$srv.d.fast" $tport direct
	primefast "$DIR/$srv.s.fast" $sport starttls
	cp "$DIR/$srv.d.fast" "$DIR/$srv.resume.hints" && cp "$DIR/$srv.d.fast.key" "$DIR/$srv.resume.hints.key"

	d=$DIR/$srv.direct.log s=$DIR/$srv.starttls.log
	krun sasl2-d "kinglet SASL2 PLAIN, cached features" $srv direct sasl2 copy:"$DIR/$srv.d.sasl2" $dport "$d" --tls direct
	krun fast-d "kinglet FAST (HT-SHA-256-NONE)" $srv direct fast share:"$DIR/$srv.d.fast" $dport "$d" --tls direct
	krun rfc-d "kinglet RFC 6120 (--no-sasl2), cached" $srv direct rfc copy:"$DIR/$srv.d.sasl2" $dport "$d" --tls direct --no-sasl2
	srun strophe-d $srv direct $dport "$d" --direct-tls
	krun sasl2-s "kinglet SASL2 PLAIN, cached features" $srv starttls sasl2 copy:"$DIR/$srv.s.sasl2" $sdport "$s" --tls starttls
	krun fast-s "kinglet FAST (HT-SHA-256-NONE)" $srv starttls fast share:"$DIR/$srv.s.fast" $sdport "$s" --tls starttls
	krun rfc-s "kinglet RFC 6120 (--no-sasl2), cached" $srv starttls rfc copy:"$DIR/$srv.s.sasl2" $sdport "$s" --tls starttls --no-sasl2
	srun strophe-s $srv starttls $sdport "$s"
	[ "$RESUME" = 0 ] || resume_runs $srv $tport "$DIR/$srv.resume.hints" $((20000 + base))
done

mkdir -p "$(dirname "$OUT")"
python3 - "$RUNLOG" "$RTT" "$RUNS" "$OUT" <<'EOF' || err=1
import json, math, statistics, sys

runlog, rtt, nruns, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
half = rtt / 2.0

def proxy_counts(log, a, b, online_ms):
    """Round trips, client flights, bytes out/in up to online, from the
    delay proxy's log lines a..b (one login: its first connection)."""
    ev, acc, conn = [], None, None
    with open(log) as f:
        lines = f.read().splitlines()[a:b]
    for ln in lines:
        p = ln.split()
        if len(p) >= 3 and p[2] == "accept" and conn is None:
            conn, acc = p[1], float(p[0])
        elif len(p) == 4 and p[1] == conn and p[2] in ("c>s", "s>c") and p[3].isdigit():
            ev.append((float(p[0]), p[2], int(p[3])))
    if conn is None or online_ms is None:
        return None
    # phases: runs of one direction
    phases = []
    for t, d, n in ev:
        if phases and phases[-1]["dir"] == d:
            phases[-1]["bytes"] += n
        else:
            phases.append({"dir": d, "t": t, "bytes": n})
    target = acc + online_ms - half
    sc = [i for i, ph in enumerate(phases) if ph["dir"] == "s>c"]
    if not sc:
        return None
    last = min(sc, key=lambda i: abs(phases[i]["t"] - target))
    wire = sum(1 for ph in phases[:last] if ph["dir"] == "c>s")
    # flights as kinglet's flights_out counts them: the TLS ClientHello's
    # is not one (it carries no XMPP); TLS Finished goes with XMPP data
    return {"round_trips": wire + 1, "flights": wire - 1,
            "bytes_out": sum(ph["bytes"] for ph in phases[:last] if ph["dir"] == "c>s"),
            "bytes_in": sum(ph["bytes"] for ph in phases[:last + 1] if ph["dir"] == "s>c"),
            "off_ms": round(phases[last]["t"] - target, 1)}

rows, order = {}, []
for ln in open(runlog):
    f = ln.rstrip("\n").split("\t")
    row, label, srv, tls, client, expect, rc, log, a, b = f[:10]
    payload = f[10] if len(f) > 10 else ""
    key = (row, srv)
    if key not in rows:
        rows[key] = {"mode": label, "server": srv, "tls": tls, "client": client, "expect": expect,
                     "runs": [], "fails": []}
        order.append(key)
    r = rows[key]
    st = None
    if rc == "0" and payload:
        if client == "strophe":
            st = {"online_ms": int(payload)} if payload.isdigit() else None
        else:
            try:
                st = json.loads(payload)
            except ValueError:
                st = None
    if st is None:
        r["fails"].append("exit %s" % rc)
        continue
    why = None
    if expect == "sasl2" and not (st.get("sasl2") == 1 and st.get("fast") == 0):
        why = "sasl2=%s fast=%s" % (st.get("sasl2"), st.get("fast"))
    if expect == "fast" and not (st.get("sasl2") == 1 and st.get("fast") == 1):
        why = "sasl2=%s fast=%s" % (st.get("sasl2"), st.get("fast"))
    if expect == "rfc" and st.get("sasl2") != 0:
        why = "sasl2=%s" % st.get("sasl2")
    if why:
        r["fails"].append(why)
        continue
    if expect == "resumed":
        pc = None  # the resumption is the second connection: not parsed
    else:
        pc = proxy_counts(log, int(a), int(b), st["online_ms"])
    r["runs"].append((st, pc))

def span(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, "-"
    lo, hi = min(vals), max(vals)
    return statistics.median_low(vals), (str(lo) if lo == hi else "%d-%d" % (lo, hi))

hdr = ("mode", "server", "TLS", "RT", "flights", "bytes out", "bytes in", "median ms", "p90 ms", "ok")
fmt = "  %-38s %-10s %-8s %3s %7s %10s %9s %9s %7s %4s"
print("time to online through a %d ms RTT link (tests/delay_proxy.py --tcp-rtt: TCP handshake counted), "
      "TLS 1.3, %d runs each (median, p90 nearest rank)" % (rtt, nruns))
print(fmt % hdr)
notes, bad, js = [], 0, []
for key in order:
    r = rows[key]
    ok = len(r["runs"])
    if not ok:
        bad += 1
        print(fmt % (r["mode"], r["server"], r["tls"], "-", "-", "-", "-", "failed", "-", "0/%d" % nruns))
        js.append({"mode": r["mode"], "client": r["client"], "server": r["server"], "tls": r["tls"], "runs": nruns,
                   "ok": 0, "fails": r["fails"], "rtt_ms": rtt})
        continue
    ms = sorted(st["online_ms"] for st, _ in r["runs"])
    med = statistics.median(ms)
    p90 = ms[max(0, math.ceil(0.9 * len(ms)) - 1)]
    if r["client"] == "strophe":
        src = "proxy"
        get = lambda k: [pc[k] if pc else None for _, pc in r["runs"]]
        fl_key = "flights"
    else:
        src = "resumed" if r["expect"] == "resumed" else "stats"
        get = lambda k: [st.get(k) for st, _ in r["runs"]]
        fl_key = "flights_out"
    rt, rts = span(get("round_trips"))
    fl, fls = span(get(fl_key)) if r["expect"] != "resumed" else (None, "-")
    bo, bos = span(get("bytes_out"))
    bi, bis = span(get("bytes_in"))
    print(fmt % (r["mode"], r["server"], r["tls"], rts, fls, bos, bis, "%.0f" % med, p90,
                 "%d/%d" % (ok, nruns)))
    if r["client"] == "kinglet" and r["expect"] != "resumed":
        for st, pc in r["runs"]:
            if pc is None:
                notes.append("%s, %s, %s: proxy log not parsed" % (r["mode"], r["server"], r["tls"]))
                break
            diff = [k for k, sk in (("round_trips", "round_trips"), ("flights", "flights_out"),
                                    ("bytes_out", "bytes_out"))
                    if pc[k] != st.get(sk)]
            # the proxy's last server phase may hold a record the server sent
            # right behind the one that made the client online
            if pc["bytes_in"] < st.get("bytes_in", 0):
                diff.append("bytes_in")
            if diff:
                notes.append("%s, %s, %s: proxy log says %s, --stats %s" % (
                    r["mode"], r["server"], r["tls"],
                    " ".join("%s=%s" % (k, pc[k]) for k in diff),
                    " ".join("%s=%s" % (k, st.get(dict(flights="flights_out").get(k, k))) for k in diff)))
                break
    if r["fails"]:
        notes.append("%s, %s, %s: %d run(s) left out: %s" % (r["mode"], r["server"], r["tls"], len(r["fails"]),
                                                            "; ".join(r["fails"])))
    first = r["runs"][0][0]
    pcs = [pc for _, pc in r["runs"] if pc]
    js.append({"mode": r["mode"], "client": r["client"], "server": r["server"], "tls": r["tls"],
               "round_trips": rt, "flights": fl, "bytes_out": bo, "bytes_in": bi,
               "median_ms": med, "p90_ms": p90, "ms": [st["online_ms"] for st, _ in r["runs"]],
               "runs": nruns, "ok": ok, "rtt_ms": rtt, "source": src,
               "proxy_round_trips": [pc["round_trips"] for pc in pcs],
               "proxy_flights": [pc["flights"] for pc in pcs],
               "proxy_bytes_out": [pc["bytes_out"] for pc in pcs],
               "proxy_bytes_in": [pc["bytes_in"] for pc in pcs],
               "sasl": first.get("sasl"),
               "note": "libstrophe 0.12 has no SASL2: RFC 6120 SASL (SCRAM) and bind" if r["client"] == "strophe"
               else ""})
    if "sasl" in first:
        if r["expect"] != "resumed":
            js[-1]["tls_resumed"] = [st.get("tls_resumed") for st, _ in r["runs"]]
        for k in ("sasl2", "fast", "fast_token_new", "inline_resumed"):
            if k in first:
                js[-1][k] = first.get(k)
with open(out, "w") as f:
    for j in js:
        f.write(json.dumps(j, sort_keys=True) + "\n")
print("  (RT: round trips up to the bound session, TCP handshake included; bytes: TLS records on the wire;")
print("   kinglet's counts are its --stats, libstrophe's from the delay proxy's log; libstrophe 0.12 has no SASL2,")
print("   Bind2 or FAST: it logs in with RFC 6120 SASL (SCRAM) + bind; the resume row: from the reconnect to")
print("   <resumed/> inside SASL2's <success/>, the CLI's \"resumed\" line; JSON lines: %s)" % out)
for n in notes:
    print("  note: " + n)
sys.exit(1 if bad else 0)
EOF
exit $err
