#!/usr/bin/env python3
"""fault_proxy.py: a TCP proxy that breaks the link on purpose, for the
connection manager's reconnect and resumption tests.

  fault_proxy.py --listen 127.0.0.1:PORT --target 127.0.0.1:PORT
                 [--cut-in N] [--cut-out N] [--cut-mode rst|fin]
                 [--control 127.0.0.1:PORT] [--log FILE]

--cut-in N   the first connection is cut once N bytes went server->client
--cut-out N  ... once N bytes went client->server (the N+1st byte is not
             forwarded). Later connections pass untouched. --cut-mode: rst
             (default, an abort: SO_LINGER 0) or fin (a clean close).
--control    a line protocol on a second port, one command per connection
             or several per line-separated session, answered "ok":
               cut        abort every open connection now (both legs)
               cutlive    the same, but first wait (up to 10 s) until a
                          connection is open, so that the cut hits a live link
               blackhole  stop forwarding in both directions and keep the
                          sockets open (a dead NAT mapping: no RST, no FIN);
                          new connections are accepted and then ignored too
               restore    forward again (new connections only; blackholed
                          ones stay dead until the client gives up on them)
               refuse     close new connections at once (server down)
               stats      "conns N cuts N bytes_c2s N bytes_s2c N"
--log FILE   one line per event: "T_MS CONN EVENT [N]"

Prints "listening HOST:PORT" (and "control HOST:PORT") on stdout. Exits 0
on SIGTERM/SIGINT. Standard library only.
"""
import argparse
import asyncio
import signal
import socket
import struct
import sys


def hostport(s):
    host, _, port = s.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % s)
    return host.strip("[]"), int(port)


def abort(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class Conn:
    def __init__(self, n, cr, cw):
        self.n, self.cr, self.cw = n, cr, cw
        self.sr = self.sw = None
        self.dead = False
        self.held = False


class Proxy:
    def __init__(self, args):
        self.a = args
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.conns = []
        self.n = 0
        self.cuts = 0
        self.bytes = {"c2s": 0, "s2c": 0}
        self.blackhole = False
        self.refuse = False
        self.log = open(args.log, "a", buffering=1) if args.log else None

    def ev(self, conn, what, n=None):
        if self.log:
            t = int((self.loop.time() - self.t0) * 1000)
            self.log.write("%d %d %s%s\n" % (t, conn, what, "" if n is None else " %d" % n))

    def kill(self, c, why):
        if c.dead:
            return
        c.dead = True
        self.cuts += 1
        self.ev(c.n, why)
        for w in (c.cw, c.sw):
            if w is None:
                continue
            if self.a.cut_mode == "fin" and why != "abort":
                try:
                    w.close()
                except Exception:
                    pass
            else:
                abort(w)

    async def pipe(self, c, r, w, d):
        limit = self.a.cut_out if d == "c2s" else self.a.cut_in
        sent = 0
        try:
            while not c.dead:
                data = await r.read(65536)
                if not data:
                    self.ev(c.n, d + " EOF")
                    if not c.dead:
                        try:
                            w.write_eof()
                        except Exception:
                            pass
                    return
                if c.held:
                    continue  # swallowed: a dead path
                if c.n == 1 and limit is not None and sent + len(data) > limit:
                    keep = limit - sent
                    if keep > 0:
                        w.write(data[:keep])
                        await w.drain()
                        self.bytes[d] += keep
                    self.ev(c.n, d + " cut at", limit)
                    self.kill(c, "cut")
                    return
                w.write(data)
                await w.drain()
                sent += len(data)
                self.bytes[d] += len(data)
                self.ev(c.n, d, len(data))
        except (ConnectionError, OSError):
            self.kill(c, "abort")

    async def client(self, cr, cw):
        self.n += 1
        c = Conn(self.n, cr, cw)
        self.ev(c.n, "accept")
        if self.refuse:
            abort(cw)
            return
        if self.blackhole:
            c.held = True
            self.conns.append(c)
            try:
                while await cr.read(65536):
                    pass
            except (ConnectionError, OSError):
                pass
            return
        try:
            c.sr, c.sw = await asyncio.open_connection(*self.a.target)
        except OSError:
            abort(cw)
            return
        for w in (cw, c.sw):
            s = w.get_extra_info("socket")
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conns.append(c)
        await asyncio.gather(self.pipe(c, cr, c.sw, "c2s"), self.pipe(c, c.sr, cw, "s2c"))
        if not c.dead:
            c.dead = True
            for w in (cw, c.sw):
                try:
                    w.close()
                except Exception:
                    pass
        self.ev(c.n, "close")

    async def control(self, r, w):
        while True:
            line = await r.readline()
            if not line:
                break
            cmd = line.decode().strip()
            if cmd == "cutlive":
                for _ in range(1000):
                    if any(not c.dead and not c.held and c.sw is not None for c in self.conns):
                        break
                    await asyncio.sleep(0.01)
                cmd = "cut"
            if cmd == "cut":
                for c in list(self.conns):
                    self.kill(c, "abort")
                self.conns = [c for c in self.conns if not c.dead]
                w.write(b"ok\n")
            elif cmd == "blackhole":
                self.blackhole = True
                for c in self.conns:
                    c.held = True
                w.write(b"ok\n")
            elif cmd == "restore":
                self.blackhole = False
                self.refuse = False
                w.write(b"ok\n")
            elif cmd == "refuse":
                self.refuse = True
                w.write(b"ok\n")
            elif cmd == "stats":
                w.write(("conns %d cuts %d bytes_c2s %d bytes_s2c %d\n" % (
                    self.n, self.cuts, self.bytes["c2s"], self.bytes["s2c"])).encode())
            else:
                w.write(b"unknown\n")
            await w.drain()
        w.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=hostport, required=True)
    ap.add_argument("--target", type=hostport, required=True)
    ap.add_argument("--cut-in", type=int)
    ap.add_argument("--cut-out", type=int)
    ap.add_argument("--cut-mode", choices=("rst", "fin"), default="rst")
    ap.add_argument("--control", type=hostport)
    ap.add_argument("--log")
    a = ap.parse_args()
    p = Proxy(a)
    srv = await asyncio.start_server(p.client, *a.listen)
    print("listening %s:%d" % srv.sockets[0].getsockname()[:2], flush=True)
    if a.control:
        cs = await asyncio.start_server(p.control, *a.control)
        print("control %s:%d" % cs.sockets[0].getsockname()[:2], flush=True)
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        p.loop.add_signal_handler(s, stop.set)
    await stop.wait()
    for c in p.conns:
        p.kill(c, "abort")


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
