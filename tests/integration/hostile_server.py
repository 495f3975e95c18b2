#!/usr/bin/env python3
"""hostile_server.py PORT SCENARIO OUTFILE: a scripted XMPP server for
behaviour no real server produces. Accepts one connection on 127.0.0.1:PORT,
waits for the client's stream header, answers with SCENARIO's bytes, then
records everything the client sends until it closes (or 5 s pass) into
OUTFILE. Prints "listening" once ready."""
import socket
import sys
import time

HDR = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
       b"xmlns:stream='http://etherx.jabber.org/streams' id='h1' from='localhost' version='1.0'>")
PLAIN_ONLY = (b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
              b"<mechanism>PLAIN</mechanism></mechanisms></stream:features>")
TLS = b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"

SCENARIOS = {
    "no-starttls": HDR + PLAIN_ONLY,
    "mismatch": HDR + b"<stream:features><a></b>",
    "comment": HDR + b"<!-- x -->" + TLS,
    "dtd": b"<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]>" + HDR,
    "entity": HDR + b"<stream:features><x>&xxe;</x></stream:features>",
    "utf8": HDR + b"<stream:features><x>\xc0\xaf</x></stream:features>",
    "long-name": HDR + b"<" + b"n" * 300 + b"/>",
    "deep": HDR + b"<d>" * 64,
    "stream-error": HDR + b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                    b"</stream:error></stream:stream>",
    "after-proceed": HDR + TLS + b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\x16\x03\x03\x00\x10plaintext",
    "starttls-failure": HDR + TLS + b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>",
    "close": HDR + b"</stream:stream>",
}


def main():
    port, scenario, outfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    print("listening", flush=True)
    srv.settimeout(20)
    conn, _ = srv.accept()
    conn.settimeout(0.2)
    got = b""
    deadline = time.time() + 5
    while b"<stream:stream" not in got and time.time() < deadline:
        try:
            d = conn.recv(4096)
            if not d:
                break
            got += d
        except socket.timeout:
            pass
    conn.sendall(SCENARIOS[scenario])
    while time.time() < deadline:
        try:
            d = conn.recv(4096)
            if not d:
                break
            got += d
        except socket.timeout:
            pass
        except ConnectionError:
            break
    with open(outfile, "wb") as f:
        f.write(got)
    conn.close()


if __name__ == "__main__":
    main()
