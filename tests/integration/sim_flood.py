#!/usr/bin/env python3
"""sim_flood.py — a second client (written on another stack: Python's ssl)
that logs in to Prosody over STARTTLS and sends N large messages to a JID.

  sim_flood.py --jid J --password P --to JID [--count 50] [--size 6000]
               [--host 127.0.0.1] [--port 5222] --cafile F

Bodies are deterministic ASCII (letters and digits, so raw == decoded).
Prints "sent N bodies B bytes fnv1a H" where H is FNV-1a 32 over all bodies
in order: what the receiver must report. Exit 0 on success, 1 otherwise.
"""
import argparse, base64, random, re, socket, ssl, sys

def fnv1a(h, data):
    for b in data:
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h

class Conn:
    def __init__(self, sock):
        self.s, self.buf = sock, b""
    def send(self, data):
        self.s.sendall(data.encode() if isinstance(data, str) else data)
    def until(self, pattern):
        rx = re.compile(pattern, re.S)
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            d = self.s.recv(65536)
            if not d:
                raise SystemExit("sim_flood: connection closed while waiting for %r" % pattern)
            self.buf += d

def header(c, domain):
    c.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>" % domain)
    c.until(rb"</stream:features>")

def login(host, port, jid, password, cafile, resource):
    """STARTTLS (verified against cafile), SASL PLAIN, bind: a Conn online."""
    user, domain = jid.split("@")
    sock = socket.create_connection((host, port), timeout=30)
    c = Conn(sock)
    header(c, domain)
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    c.until(rb"<proceed[^>]*/>")
    ctx = ssl.create_default_context(cafile=cafile)
    c.s = ctx.wrap_socket(sock, server_hostname=domain)
    header(c, domain)
    cred = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % cred)
    c.until(rb"<success[^>]*(/>|>.*?</success>)")
    header(c, domain)
    c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
           "<resource>%s</resource></bind></iq>" % resource)
    c.until(rb"<iq[^>]*id='b1'.*?</iq>")
    return c, domain

def end(c, domain):
    """A ping answered by the server (everything sent before it was
    routed), then a clean close."""
    c.send("<iq type='get' id='p1' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % domain)
    c.until(rb"<iq[^>]*id='p1'")
    c.send("</stream:stream>")
    try:
        c.until(rb"</stream:stream>")
    except (SystemExit, OSError):
        pass

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jid", required=True); ap.add_argument("--password", required=True)
    ap.add_argument("--to", required=True); ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--size", type=int, default=6000); ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5222); ap.add_argument("--cafile", required=True)
    a = ap.parse_args()
    c, domain = login(a.host, a.port, a.jid, a.password, a.cafile, "flood")
    rnd = random.Random(305)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    h, total = 2166136261, 0
    for i in range(a.count):
        body = (b"m%03d-" % i) + bytes(rnd.choice(alphabet) for _ in range(a.size - 5))
        h = fnv1a(h, body)
        total += len(body)
        c.send(("<message type='chat' to='%s' id='f%d'><body>" % (a.to, i)).encode() + body + b"</body></message>")
    end(c, domain)
    print("sent %d bodies %d bytes fnv1a %08x" % (a.count, total, h))
    return 0

if __name__ == "__main__":
    sys.exit(main())
