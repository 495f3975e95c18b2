#!/usr/bin/env python3
"""sm_peer.py — the far end of the stream-management traffic test: a client
on another stack (Python's ssl) that sends the device N numbered messages
through Prosody while the device's link is being cut, and counts what comes
back.

  sm_peer.py --jid J --password P --to FULLJID --cafile F --count N
             [--interval-ms MS] [--timeout S] [--expect-from N]
             [--host 127.0.0.1] [--port 5222]

Sends "p-0" … "p-(N-1)" to FULLJID, one every --interval-ms (default 10),
and meanwhile collects every message body from the device. The device
(build/kinglet --echo) answers each "p-i" with the same body, and sends its
own "d-0" … "d-(M-1)" if asked; both are counted. Waits until every echo
and --expect-from N device messages arrived, or --timeout S.
Last line: "sent N echoes U/N dupes D device U2/M dupes D2 missing a,b,...":
what the test asserts (0 lost: U == N and U2 == M).
"""
import argparse, re, select, sys, time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from sim_flood import end, login  # noqa: E402

BODY = re.compile(rb"<message[^>]*>.*?<body>([^<]*)</body>.*?</message>", re.S)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jid", required=True); ap.add_argument("--password", required=True)
    ap.add_argument("--to", required=True); ap.add_argument("--cafile", required=True)
    ap.add_argument("--host", default="127.0.0.1"); ap.add_argument("--port", type=int, default=5222)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--expect-from", type=int, default=0)
    ap.add_argument("--interval-ms", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    c, domain = login(a.host, a.port, a.jid, a.password, a.cafile, "peer")
    c.send("<presence/>")
    echoes, device = {}, {}
    sent, t_next, t_end = 0, time.monotonic(), time.monotonic() + a.timeout
    c.s.setblocking(False)
    while time.monotonic() < t_end:
        now = time.monotonic()
        if sent < a.count and now >= t_next:
            c.s.setblocking(True)
            c.send("<message type='chat' to='%s' id='p%d'><body>p-%d</body></message>" % (a.to, sent, sent))
            c.s.setblocking(False)
            sent += 1
            t_next = now + a.interval_ms / 1000.0
        if sent == a.count and len(echoes) == a.count and len(device) >= a.expect_from:
            break
        r, _, _ = select.select([c.s], [], [], max(0.0, min(0.05, t_next - time.monotonic())))
        if r or c.s.pending():
            try:
                d = c.s.recv(65536)
            except (BlockingIOError, __import__("ssl").SSLWantReadError):
                d = None
            if d == b"":
                print("sm_peer: the server closed the connection", file=sys.stderr)
                break
            if d:
                c.buf += d
        while True:
            m = BODY.search(c.buf)
            if not m:
                break
            c.buf = c.buf[m.end():]
            b = m.group(1).decode()
            book = echoes if b.startswith("p-") else device if b.startswith("d-") else None
            if book is not None:
                book[b] = book.get(b, 0) + 1
    c.s.setblocking(True)
    try:
        end(c, domain)
    except Exception:
        pass
    missing = [i for i in range(a.count) if "p-%d" % i not in echoes]
    missing_d = [i for i in range(a.expect_from) if "d-%d" % i not in device]
    print("sent %d echoes %d/%d dupes %d device %d/%d dupes %d missing %s" % (
        sent, len(echoes), a.count, sum(v - 1 for v in echoes.values()),
        len(device), a.expect_from, sum(v - 1 for v in device.values()),
        ",".join(["p-%d" % i for i in missing[:20]] + ["d-%d" % i for i in missing_d[:20]]) or "none"))
    return 0 if not missing and not missing_d else 1


if __name__ == "__main__":
    sys.exit(main())
