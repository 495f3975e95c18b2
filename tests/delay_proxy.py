#!/usr/bin/env python3
"""delay_proxy.py: a TCP proxy that adds a fixed one-way delay (a link with
latency and no bandwidth limit), for measuring round trips by wall time.

  delay_proxy.py --listen 127.0.0.1:PORT --target 127.0.0.1:PORT --delay-ms D
                 [--tcp-rtt] [--log FILE]

Every chunk read from either side is written to the other side D ms after it
was read, independently of the other chunks (two chunks read 1 ms apart leave
1 ms apart; the delays are not serialised), in order. EOF (half-close) and
close are forwarded D ms after they were seen; a reset is forwarded as an
abort (RST) after D ms. Nagle is off on both legs. The RTT is 2D.

--tcp-rtt: the kernel completes the client's TCP handshake before the proxy
  can delay it, so a client's connect() returns at once instead of after one
  RTT. With this flag, client bytes read before accept+2D are treated as
  sent at accept+2D (released at accept+3D): a client that writes right after
  connect() sees one extra RTT, as on a real link. Bytes the server sends
  first are not held (XMPP is client-first).
--log FILE: one line per event, flushed: "T_MS CONN DIR BYTES", T_MS the time
  the proxy read the chunk (ms since the proxy started, i.e. when the sender
  sent it), CONN a connection number from 1, DIR "c>s" or "s>c", BYTES the
  count or "EOF"/"RST"; plus "T_MS CONN accept" and "T_MS CONN close".

Prints "listening HOST:PORT" on stdout once it accepts connections (PORT 0
picks a free port). Exits 0 on SIGTERM or SIGINT, closing every connection.
The proxy buffers without limit: it models latency, not a bottleneck.
Standard library only.
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


class Proxy:
    def __init__(self, args):
        self.args = args
        self.delay = args.delay_ms / 1000.0
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.nconn = 0
        self.tasks = set()

    def logline(self, t, conn, *what):
        if self.log:
            self.log.write("%.3f %d %s\n" % ((t - self.t0) * 1000.0, conn,
                                             " ".join(str(w) for w in what)))

    @staticmethod
    def nodelay(writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    @staticmethod
    def reset(writer):
        """Close with RST (linger 0), not FIN."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.transport.abort()

    async def pump_in(self, reader, queue, conn, tag, hold_until):
        """Read chunks, stamp each with its release time, queue them."""
        last = 0.0
        while True:
            try:
                data = await reader.read(65536)
                kind = data if data else "EOF"
            except (ConnectionError, OSError):
                kind = "RST"
            t = self.loop.time()
            release = max(max(t, hold_until) + self.delay, last)
            last = release
            self.logline(t, conn, tag, len(kind) if isinstance(kind, bytes) else kind)
            queue.put_nowait((release, kind))
            if not isinstance(kind, bytes):
                return

    async def pump_out(self, queue, writer, other_writer):
        """Write each queued chunk at its release time."""
        while True:
            release, kind = await queue.get()
            wait = release - self.loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                if kind == "EOF":
                    if writer.can_write_eof():
                        writer.write_eof()
                    await writer.drain()
                    return
                if kind == "RST":
                    self.reset(writer)
                    return
                writer.write(kind)
                await writer.drain()
            except (ConnectionError, OSError):
                # The receiver is gone: tear down the other side as well.
                writer.transport.abort()
                other_writer.transport.abort()
                return

    async def handle(self, creader, cwriter):
        self.nconn += 1
        conn = self.nconn
        t_acc = self.loop.time()
        self.logline(t_acc, conn, "accept")
        self.nodelay(cwriter)
        host, port = self.args.target
        try:
            sreader, swriter = await asyncio.open_connection(host, port)
        except OSError as e:
            print("delay_proxy: connect to %s:%d failed: %s" % (host, port, e),
                  file=sys.stderr, flush=True)
            await asyncio.sleep(self.delay)
            cwriter.transport.abort()
            self.logline(self.loop.time(), conn, "close")
            return
        self.nodelay(swriter)
        hold = t_acc + 2 * self.delay if self.args.tcp_rtt else 0.0
        q_cs, q_sc = asyncio.Queue(), asyncio.Queue()
        try:
            await asyncio.gather(
                self.pump_in(creader, q_cs, conn, "c>s", hold),
                self.pump_in(sreader, q_sc, conn, "s>c", 0.0),
                self.pump_out(q_cs, swriter, cwriter),
                self.pump_out(q_sc, cwriter, swriter))
        finally:
            for w in (cwriter, swriter):
                w.close()
            self.logline(self.loop.time(), conn, "close")

    def spawn(self, creader, cwriter):
        task = asyncio.ensure_future(self.handle(creader, cwriter))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self):
        host, port = self.args.listen
        server = await asyncio.start_server(
            lambda r, w: self.spawn(r, w), host, port,
            reuse_address=True, backlog=128)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, stop.set)
        addr = server.sockets[0].getsockname()
        print("listening %s:%d" % (addr[0], addr[1]), flush=True)
        await stop.wait()
        server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await server.wait_closed()
        if self.log:
            self.log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", type=hostport, required=True)
    ap.add_argument("--target", type=hostport, required=True)
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--tcp-rtt", action="store_true")
    ap.add_argument("--log")
    args = ap.parse_args()
    if args.delay_ms < 0:
        ap.error("--delay-ms must be >= 0")

    async def amain():
        await Proxy(args).run()
    asyncio.run(amain())


if __name__ == "__main__":
    main()
