#!/usr/bin/env python3
"""stdio_relay.py PORT — one guest connection of QEMU's user network to the
host's 127.0.0.1:PORT.

QEMU runs it per connection (-nic user,...,guestfwd=tcp:IP:P-cmd:python3
stdio_relay.py PORT): stdin/stdout are the guest's TCP connection. A
guestfwd to a chardev (tcp:127.0.0.1:PORT) would be one socket opened when
QEMU starts and shared by every guest connection, which a device that
reconnects cannot use. Half-closes are passed on; the end of either side
ends the relay (the guest then sees its connection closed). Loopback only.
Standard library only; prints nothing (stdout is the connection).
"""
import os
import select
import socket
import sys


def main():
    port = int(sys.argv[1])
    try:
        s = socket.create_connection(("127.0.0.1", port))
    except OSError:
        return 1
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    fin, fout = sys.stdin.fileno(), sys.stdout.fileno()
    guest_open = peer_open = True
    while guest_open or peer_open:
        r, _, _ = select.select(([fin] if guest_open else []) + ([s] if peer_open else []), [], [])
        if fin in r:
            d = os.read(fin, 16384)
            if d:
                s.sendall(d)
            else:
                guest_open = False
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    return 0
        if s in r:
            try:
                d = s.recv(16384)
            except OSError:
                d = b""
            if d:
                while d:
                    n = os.write(fout, d)
                    d = d[n:]
            else:
                return 0  # the server side is gone: so is the guest's connection
    return 0


if __name__ == "__main__":
    sys.exit(main())
