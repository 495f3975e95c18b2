#!/usr/bin/env python3
"""tests/integration/sasl2_token.py — provision a FAST token (XEP-0484) the
way a device's installer would: one SASL2 PLAIN login (direct TLS, TLS 1.3)
with <request-token mechanism='HT-SHA-256-NONE'/> and the device's
<user-agent id>, then a clean close. For tests/integration/sasl2_test.sh
(the token-only device). Python 3 standard library only; the connection
code is tests/integration/sasl2_probe.py's.

  sasl2_token.py --port N --cafile CA.pem --ua-id UUID
                 [--host 127.0.0.1] [--domain localhost]
                 [--user alice] [--password alicepass]

Prints "token TOKEN expiry EXPIRY" and exits 0, or one line on stderr and
exits 1 (no SASL2, failure, no token in the success).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sasl2_probe import NS_FAST, NS_SASL2, Conn, b64, header, q, xesc  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--domain", default="localhost")
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default="alicepass")
    ap.add_argument("--ua-id", required=True)
    a = ap.parse_args()
    ir = b64(("\0%s\0%s" % (a.user, a.password)).encode())
    auth = ("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'>"
            "<initial-response>%s</initial-response>"
            "<user-agent id='%s'><software>kinglet</software><device>installer</device></user-agent>"
            "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>"
            "</authenticate>" % (ir, xesc(a.ua_id)))
    c = Conn(a, "provision")
    c.send(header(a) + auth)
    c.wait_for(lambda c: c.auth_result()[0] is not None or c.closed)
    el, raw = c.auth_result()
    if el is None or el.tag != q(NS_SASL2, "success"):
        print("sasl2_token: no SASL2 success: %r" % (raw or c.buf)[-300:], file=sys.stderr)
        return 1
    tok = el.find(q(NS_FAST, "token"))
    if tok is None or not tok.get("token"):
        print("sasl2_token: no FAST token in the success: %r" % raw, file=sys.stderr)
        return 1
    print("token %s expiry %s" % (tok.get("token"), tok.get("expiry")))
    sys.stdout.flush()
    # a server that offers SASL2 sends features or more after success: close
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
