#!/usr/bin/env python3
"""limits_peer.py — a second client (Python's ssl, another stack than the
device's) that logs in to Prosody and sends the device, through the server,
one stanza per receive bound the device has, each between two normal
messages:

  limits_peer.py --jid J --password P --to FULLJID --cafile F
                 [--host 127.0.0.1] [--port 5222] [--only NAME]

Normal messages carry the bodies "ok-0", "ok-1", ... in order; the device
must print every one of them and stay online. Every IQ request among the
hostile stanzas must come back as the device's policy-violation error (it
answers what it dropped). Prints one line per hostile stanza ("sent NAME") and, last,
"normal N iq-errors M/K": what the receiver must report.
"""
import argparse, re, sys, time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from sim_flood import end, login  # noqa: E402

# Bounds of the device under test (include/kinglet/kl_config_defaults.h):
DEPTH, NAME, ATTR, ATTRS, STACK, RX = 16, 64, 1024, 32, 512, 3072


def hostile(to):
    """(name, stanza, is_iq_request) — each breaks one bound after online."""
    m = "<message type='chat' to='%s'%%s>%%s</message>" % to
    out = []
    # the example: a 183-byte message, 15 nested children (depth 17)
    out.append(("depth", m % ("", "<a xmlns='urn:x'>" + "<a>" * 14 + "</a>" * 14 + "</a>")))
    out.append(("element-name", m % ("", "<%s xmlns='urn:x'/>" % ("n" * (NAME + 6)))))
    out.append(("attribute-name", m % ("", "<x xmlns='urn:x' %s='1'/>" % ("a" * (NAME + 6)))))
    out.append(("attribute-value", m % ("", "<x xmlns='urn:x' v='%s'/>" % ("v" * (ATTR + 100)))))
    out.append(("attribute-count", m % ("", "<x xmlns='urn:x' %s/>" %
                                         " ".join("a%d='%d'" % (i, i) for i in range(ATTRS + 8)))))
    # namespace declarations that fill the element stack before the depth bound
    # (distinct URIs: a server that re-serializes keeps one declaration a level)
    decl = "".join("<p%d:e xmlns:p%d='urn:%d:%s'>" % (i, i, i, "u" * 60) for i in range(10))
    close = "".join("</p%d:e>" % i for i in reversed(range(10)))
    out.append(("namespace-stack", m % ("", decl + close)))
    # one start tag larger than the whole receive buffer
    big = " ".join("b%d='%s'" % (i, "w" * 900) for i in range(4))
    out.append(("start-tag-over-buffer", m % ("", "<x xmlns='urn:x' %s/>" % big)))
    # a stanza larger than the buffer (streamed) whose end breaks a bound
    out.append(("deep-after-streaming", m % ("", "<body>%s</body><a xmlns='urn:x'>%s%s</a>" %
                                             ("s" * (RX * 2), "<a>" * 20, "</a>" * 20))))
    # IQ requests: dropped, and answered with an error
    iq = "<iq type='%s' id='%s' to='%s'>%s</iq>"
    out.append(("iq-get-depth", iq % ("get", "hq1", to, "<q xmlns='urn:x'>" + "<a>" * 20 + "</a>" * 20 + "</q>"), "hq1"))
    out.append(("iq-set-attribute-count", iq % ("set", "hq2", to, "<q xmlns='urn:x' %s/>" %
                                                " ".join("a%d='%d'" % (i, i) for i in range(ATTRS + 8))), "hq2"))
    return [(h[0], h[1], h[2] if len(h) > 2 else None) for h in out]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jid", required=True); ap.add_argument("--password", required=True)
    ap.add_argument("--to", required=True); ap.add_argument("--cafile", required=True)
    ap.add_argument("--host", default="127.0.0.1"); ap.add_argument("--port", type=int, default=5222)
    ap.add_argument("--only", default=None)
    a = ap.parse_args()
    c, domain = login(a.host, a.port, a.jid, a.password, a.cafile, "hostile")
    cases = [h for h in hostile(a.to) if not a.only or h[0] == a.only]
    normal = 0

    def ok_message():
        nonlocal normal
        c.send("<message type='chat' to='%s'><body>ok-%d</body></message>" % (a.to, normal))
        normal += 1

    ok_message()
    iq_ids = []
    for name, stanza, iq_id in cases:
        c.send(stanza)
        print("sent %s (%d bytes)" % (name, len(stanza)), flush=True)
        if iq_id:
            iq_ids.append(iq_id)
        ok_message()
    # every dropped IQ request is answered with an error
    answered = 0
    deadline = time.time() + 15
    c.s.settimeout(15)
    for iq_id in iq_ids:
        try:
            m = c.until((r"<iq[^>]*id=['\"]%s['\"][^>]*(/>|>.*?</iq>)" % iq_id).encode())
        except (SystemExit, OSError):
            break
        # the device's own answer, not the server's for an absent recipient
        if re.search(rb"type=['\"]error['\"]", m.group(0)) and b"<policy-violation" in m.group(0):
            answered += 1
        if time.time() > deadline:
            break
    end(c, domain)
    print("normal %d iq-errors %d/%d" % (normal, answered, len(iq_ids)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
