#!/usr/bin/env python3
"""firmware_ping.py — XEP-0199: ping the device's full JID through Prosody
and wait for its answer (the engine answers pings by itself).

  firmware_ping.py --jid J --password P --to FULLJID --cafile F [--port 5222]

Logs in over STARTTLS with Python's ssl (login code: sim_flood.py), sends
<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq> to --to, prints
"pong from FULLJID in N ms" on an <iq type='result'>, exit 0; exit 1 on
an error answer or a timeout (15 s).
"""
import argparse, base64, os, socket, ssl, sys, time, re
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sim_flood import Conn, header

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jid", required=True); ap.add_argument("--password", required=True)
    ap.add_argument("--to", required=True); ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5222); ap.add_argument("--cafile", required=True)
    a = ap.parse_args()
    user, domain = a.jid.split("@")
    sock = socket.create_connection((a.host, a.port), timeout=15)
    c = Conn(sock)
    header(c, domain)
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    c.until(rb"<proceed[^>]*/>")
    c.s = ssl.create_default_context(cafile=a.cafile).wrap_socket(sock, server_hostname=domain)
    header(c, domain)
    cred = base64.b64encode(b"\0" + user.encode() + b"\0" + a.password.encode()).decode()
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % cred)
    c.until(rb"<success[^>]*(/>|>.*?</success>)")
    header(c, domain)
    c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
           "<resource>pinger</resource></bind></iq>")
    c.until(rb"<iq[^>]*id='b1'.*?</iq>")
    t0 = time.monotonic()
    c.send("<iq type='get' id='fwping1' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % a.to)
    m = c.until(rb"<iq[^>]*id=['\"]fwping1['\"][^>]*>")
    ms = int((time.monotonic() - t0) * 1000)
    tag = m.group(0).decode(errors="replace")
    c.send("</stream:stream>")
    if not re.search(r"from=['\"]%s['\"]" % re.escape(a.to), tag):
        print("answer not from %s: %s" % (a.to, tag))
        return 1
    if re.search(r"type=['\"]result['\"]", tag):
        print("pong from %s in %d ms" % (a.to, ms))
        return 0
    print("ping answered with an error: %s" % tag)
    return 1

if __name__ == "__main__":
    sys.exit(main())
