#!/usr/bin/env python3
"""tests/integration/sasl2_probe.py — probe an XMPP server's SASL2 (XEP-0388),
Bind2 (XEP-0386), FAST (XEP-0484) and inline stream management (XEP-0198
in SASL2), the way kinglet will use them. Python 3 standard library only.

  sasl2_probe.py --name NAME --port N --cafile CA.pem
                 [--host 127.0.0.1] [--domain localhost]
                 [--user alice] [--password alicepass]
                 [--expect-no-fast] [--expect-expired SECONDS]

Every connection is direct TLS (XEP-0368) with TLS 1.3 at least, the
certificate checked against CA.pem for the name `localhost`. Steps:
 1. PLAIN + Bind2 + SM enable + FAST token request: the stream header (with
    from='USER@DOMAIN', SASL2 needs it on ejabberd) and one <authenticate>
    in ONE write; checks <success> carries <authorization-identifier>,
    Bind2's <bound/> with SM's <enabled/> (id, resume) and a FAST <token/>.
 2. FAST login (HT-SHA-256-NONE): initial response = authcid NUL
    HMAC-SHA-256(token, "Initiator"), tried with the bare username and with
    the bare JID as authcid (each reported); the server's
    <additional-data> is checked against HMAC-SHA-256(token, "Responder").
 3. Inline resumption: connection 1 is cut (TCP FIN, no </stream:stream>,
    no TLS close_notify), then a new connection authenticates with the FAST
    token and <resume xmlns='urn:xmpp:sm:3' previd=ID h='0'/> as a direct
    child of <authenticate/> (XEP-0198 / XEP-0388); checks <resumed/> in
    <success>.
 4. (report only) SCRAM over SASL2 (SCRAM-SHA-256 if offered, else
    SCRAM-SHA-1): whether the server-first-message has XEP-0474's h=
    (downgrade protection) and whether it matches; the -PLUS mechanisms and
    channel bindings offered (Python's ssl has no tls-exporter API, so
    -PLUS itself is not tried).
--expect-no-fast: for a server without FAST: passes when step 1 succeeds
    with Bind2 and SM but no FAST is offered and no token comes back
    (steps 2-4 skipped).
--expect-expired S: after step 1, waits S seconds; passes when the FAST
    login then fails (the server's token lifetime is shorter than S).
Prints the verbatim XML of the post-TLS stream features and of each
<success>/<failure>. Exit 0 only when every checked step passed; the last
line is "sasl2_probe NAME: OK" or "sasl2_probe NAME: FAILED (...)".
"""

import argparse
import base64
import hashlib
import hmac
import os
import socket
import ssl
import sys
import time
import uuid
import xml.parsers.expat
from xml.etree import ElementTree as ET

NS_STREAM = "http://etherx.jabber.org/streams"
NS_SASL2 = "urn:xmpp:sasl:2"
NS_BIND2 = "urn:xmpp:bind:0"
NS_SM = "urn:xmpp:sm:3"
NS_FAST = "urn:xmpp:fast:0"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_CB = "urn:xmpp:sasl-cb:0"


def q(ns, name):
    return "{%s}%s" % (ns, name)


def xesc(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&apos;").replace('"', "&quot;"))


class Conn:
    """One direct-TLS XMPP connection; top-level elements parsed with expat,
    each kept with its raw bytes (verbatim)."""

    def __init__(self, args, label):
        self.label = label
        ctx = ssl.create_default_context(cafile=args.cafile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        raw = socket.create_connection((args.host, args.port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.tls_version = self.sock.version()
        self.buf = b""
        self.p = xml.parsers.expat.ParserCreate(namespace_separator=" ")
        self.p.StartElementHandler = self._start
        self.p.EndElementHandler = self._end
        self.p.CharacterDataHandler = self._text
        self.stack = []
        self.header = None  # (attrs, raw)
        self.elems = []     # (Element, raw) top-level, in order
        self.closed = False

    @staticmethod
    def _tag(name):
        if " " in name:
            ns, local = name.split(" ", 1)
            return q(ns, local)
        return name

    def _start(self, name, attrs):
        idx = self.p.CurrentByteIndex
        if not self.stack and self.header is None:
            end = self.buf.index(b">", idx) + 1
            self.header = (attrs, self.buf[idx:end])
            self.stack.append(None)
            return
        el = ET.Element(self._tag(name), {self._tag(k): v for k, v in attrs.items()})
        if len(self.stack) >= 2 and self.stack[-1] is not None:
            self.stack[-1].append(el)
        else:
            self.top_start = idx
        self.stack.append(el)

    def _end(self, name):
        el = self.stack.pop()
        if el is None:
            self.closed = True
            return
        if len(self.stack) == 1:
            # expat: at the end of <x/> the index is just past it; at the
            # end of <x>...</x>, it is at "</x>".
            idx = self.p.CurrentByteIndex
            if self.buf[idx - 2:idx] == b"/>" and len(el) == 0 and not el.text:
                end = idx
            else:
                end = self.buf.index(b">", idx) + 1
            self.elems.append((el, self.buf[self.top_start:end]))

    def _text(self, data):
        if len(self.stack) >= 2 and self.stack[-1] is not None:
            el = self.stack[-1]
            if len(el):
                el[-1].tail = (el[-1].tail or "") + data
            else:
                el.text = (el.text or "") + data

    def send(self, data):
        self.sock.sendall(data.encode())

    def wait_for(self, pred, timeout=10.0):
        """Reads until pred(self) is true; returns False on timeout/EOF."""
        deadline = time.monotonic() + timeout
        while not pred(self):
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return pred(self)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return pred(self)
            except (ssl.SSLError, OSError) as e:
                print("  [%s] read error: %s" % (self.label, e))
                return pred(self)
            if not data:
                self.closed = True
                return pred(self)
            self.buf += data
            try:
                self.p.Parse(data, False)
            except xml.parsers.expat.ExpatError as e:
                print("  [%s] XML error: %s" % (self.label, e))
                self.closed = True
                return pred(self)
        return True

    def find(self, tag):
        for el, raw in self.elems:
            if el.tag == tag:
                return el, raw
        return None, None

    def auth_result(self):
        for el, raw in self.elems:
            if el.tag in (q(NS_SASL2, "success"), q(NS_SASL2, "failure"),
                          q(NS_SASL2, "challenge"), q(NS_STREAM, "error")):
                return el, raw
        return None, None

    def cut(self):
        """Cut the connection without closing the stream or TLS: TCP FIN."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def close(self):
        try:
            self.send("</stream:stream>")
            self.wait_for(lambda c: c.closed, 3)
        except OSError:
            pass
        self.sock.close()


def header(args):
    return ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' "
            "from='%s@%s' to='%s' version='1.0' xml:lang='en'>"
            % (args.user, args.domain, args.domain))


def user_agent(args):
    return ("<user-agent id='%s'><software>kinglet</software>"
            "<device>probe</device></user-agent>" % args.ua_id)


def b64(b):
    return base64.b64encode(b).decode()


def show(title, raw):
    print("---- %s" % title)
    print(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)


class Probe:
    def __init__(self, args):
        self.args = args
        self.fails = []
        self.notes = []
        self.features_shown = False

    def check(self, cond, what):
        print("%s %s" % ("PASS" if cond else "FAIL", what))
        if not cond:
            self.fails.append(what)
        return cond

    def connect(self, label, payload):
        """New connection; header + payload in ONE write; waits for the
        features and the authentication result."""
        c = Conn(self.args, label)
        c.send(header(self.args) + payload)
        c.wait_for(lambda c: c.auth_result()[0] is not None or c.closed)
        feats, raw = c.find(q(NS_STREAM, "features"))
        if raw is not None and not self.features_shown:
            print("TLS: %s" % c.tls_version)
            show("stream header (%s)" % label, c.header[1] if c.header else b"(none)")
            show("post-TLS stream features", raw)
            self.features_shown = True
        c.features = feats
        return c

    def result(self, c, label):
        el, raw = c.auth_result()
        if el is None:
            show("%s: no answer (closed=%s); received" % (label, c.closed), c.buf)
            return None
        show("%s: %s" % (label, el.tag.split("}")[1]), raw)
        return el

    # ---- step 1 --------------------------------------------------------------
    def step1(self):
        a = self.args
        ir = b64(("\0%s\0%s" % (a.user, a.password)).encode())
        auth = ("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'>"
                "<initial-response>%s</initial-response>%s"
                "<bind xmlns='urn:xmpp:bind:0'><tag>probe</tag>"
                "<enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>"
                "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>"
                "</authenticate>" % (ir, user_agent(a)))
        c = self.connect("1 PLAIN+Bind2+SM+FAST", auth)
        self.c1 = c
        f = c.features
        if not self.check(f is not None, "post-TLS stream features received"):
            return False
        authn = f.find(q(NS_SASL2, "authentication"))
        if not self.check(authn is not None, "SASL2 <authentication> offered"):
            return False
        self.mechs = [m.text for m in authn.findall(q(NS_SASL2, "mechanism"))]
        inline = authn.find(q(NS_SASL2, "inline"))
        fast = inline.find(q(NS_FAST, "fast")) if inline is not None else None
        self.fast_mechs = [m.text for m in fast.findall(q(NS_FAST, "mechanism"))] if fast is not None else []
        cbs = f.find(q(NS_CB, "sasl-channel-binding"))
        self.cbs = [x.get("type") for x in cbs] if cbs is not None else []
        print("SASL2 mechanisms: %s; FAST: %s; channel bindings: %s; inline bind2: %s, sm: %s"
              % (" ".join(self.mechs), " ".join(self.fast_mechs) or "-", " ".join(self.cbs) or "-",
                 inline is not None and inline.find(q(NS_BIND2, "bind")) is not None,
                 inline is not None and inline.find(q(NS_SM, "sm")) is not None))
        el = self.result(c, "step 1 (PLAIN, Bind2, SM enable, request-token)")
        if not self.check(el is not None and el.tag == q(NS_SASL2, "success"), "PLAIN via SASL2 succeeded"):
            return False
        aid = el.findtext(q(NS_SASL2, "authorization-identifier"))
        self.check(bool(aid), "success has authorization-identifier (%s)" % aid)
        bound = el.find(q(NS_BIND2, "bound"))
        self.check(bound is not None, "success has Bind2 <bound/>")
        enabled = bound.find(q(NS_SM, "enabled")) if bound is not None else None
        ok = self.check(enabled is not None and enabled.get("id") and
                        enabled.get("resume") in ("true", "1"),
                        "bound has SM <enabled/> with id and resume (%s)"
                        % (dict(enabled.attrib) if enabled is not None else None))
        self.sm_id = enabled.get("id") if ok else None
        tok = el.find(q(NS_FAST, "token"))
        if self.args.expect_no_fast:
            self.check(not self.fast_mechs, "no FAST offered (server without FAST)")
            self.check(tok is None, "no FAST token in success (server without FAST)")
            return False
        self.check("HT-SHA-256-NONE" in self.fast_mechs, "FAST HT-SHA-256-NONE offered")
        if not self.check(tok is not None and tok.get("token"), "success has a FAST <token/>"):
            return False
        self.token = tok.get("token")
        print("FAST token: %r expiry: %r" % (self.token, tok.get("expiry")))
        # Bind2: the session is online now; is anything else sent?
        c.wait_for(lambda c: False, 0.5)
        extra = [raw for el2, raw in c.elems if el2.tag not in (q(NS_STREAM, "features"), q(NS_SASL2, "success"))]
        for raw in extra:
            show("after success on connection 1", raw)
        return True

    # ---- step 2 --------------------------------------------------------------
    def fast_auth(self, label, authcid, extra="", fast_el=True):
        a = self.args
        mac = hmac.new(self.token.encode(), b"Initiator", hashlib.sha256).digest()
        ir = b64(authcid.encode() + b"\0" + mac)
        auth = ("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'>"
                "<initial-response>%s</initial-response>%s%s%s</authenticate>"
                % (ir, user_agent(a), "<fast xmlns='urn:xmpp:fast:0'/>" if fast_el else "", extra))
        c = Conn(a, label)
        c.send(header(a) + auth)
        c.wait_for(lambda c: c.auth_result()[0] is not None or c.closed)
        el = self.result(c, label)
        ok = el is not None and el.tag == q(NS_SASL2, "success")
        if ok:
            ad = el.findtext(q(NS_SASL2, "additional-data"))
            want = hmac.new(self.token.encode(), b"Responder", hashlib.sha256).digest()
            if ad is None:
                print("  additional-data: none")
            else:
                got = base64.b64decode(ad.strip() or "")
                print("  additional-data: %s (HMAC-SHA-256(token, 'Responder'): %s)"
                      % (ad.strip(), "matches" if hmac.compare_digest(got, want) else "DOES NOT MATCH"))
                if not hmac.compare_digest(got, want):
                    self.fails.append("%s: additional-data is not HMAC(token, Responder)" % label)
            c.wait_for(lambda c: False, 0.3)
            for e2, raw in c.elems:
                if e2.tag not in (q(NS_STREAM, "features"), q(NS_SASL2, "success")) or \
                        (e2.tag == q(NS_STREAM, "features") and e2 is not c.elems[0][0]):
                    show("  after this success", raw)
            nt = el.find(q(NS_FAST, "token"))
            if nt is not None:
                print("  new token in this success: %r expiry %r" % (nt.get("token"), nt.get("expiry")))
                self.token = nt.get("token")
        return c, el, ok

    def step2(self):
        a = self.args
        forms = [("bare username", a.user), ("bare JID", "%s@%s" % (a.user, a.domain))]
        self.authcid = None
        for name, authcid in forms:
            c, el, ok = self.fast_auth("step 2 FAST login, authcid = %s (%s)" % (name, authcid), authcid)
            print("%s FAST HT-SHA-256-NONE with authcid = %s" % ("WORKS" if ok else "REFUSED", name))
            if ok and self.authcid is None:
                self.authcid = authcid
            if c.closed is False:
                c.close()
        self.check(self.authcid is not None, "FAST login (HT-SHA-256-NONE) with the token from step 1")
        if self.authcid is not None:
            c, el, ok = self.fast_auth("step 2 FAST login without <fast xmlns='urn:xmpp:fast:0'/>",
                                       self.authcid, fast_el=False)
            print("REPORT FAST login without the <fast/> element: %s" % ("accepted" if ok else "refused"))
            if c.closed is False:
                c.close()
        return self.authcid is not None

    # ---- step 3 --------------------------------------------------------------
    def step3(self):
        self.c1.cut()
        time.sleep(0.3)
        extra = "<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>" % xesc(self.sm_id)
        c, el, ok = self.fast_auth("step 3 FAST + inline resume", self.authcid, extra)
        resumed = el.find(q(NS_SM, "resumed")) if ok else None
        self.check(resumed is not None, "inline resumption: success has <resumed/> (%s)"
                   % (dict(resumed.attrib) if resumed is not None else None))
        c.close()

    # ---- step 4 (report only) ------------------------------------------------
    def step4(self):
        a = self.args
        plus = [m for m in self.mechs if m.endswith("-PLUS")]
        print("REPORT -PLUS offered: %s; channel bindings: %s (not tried: Python ssl has no "
              "tls-exporter; tls-server-end-point not implemented here)"
              % (" ".join(plus) or "none", " ".join(self.cbs) or "none"))
        mech = "SCRAM-SHA-256" if "SCRAM-SHA-256" in self.mechs else (
            "SCRAM-SHA-1" if "SCRAM-SHA-1" in self.mechs else None)
        if not mech:
            print("REPORT no non-PLUS SCRAM offered")
            return
        H = hashlib.sha256 if mech == "SCRAM-SHA-256" else hashlib.sha1
        cnonce = b64(os.urandom(18))
        bare = "n=%s,r=%s" % (a.user, cnonce)
        c = Conn(a, "step 4 %s" % mech)
        c.send(header(a) + "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='%s'>"
               "<initial-response>%s</initial-response>%s</authenticate>"
               % (mech, b64(("n,," + bare).encode()), user_agent(a)))
        c.wait_for(lambda c: c.auth_result()[0] is not None or c.closed)
        el = self.result(c, "step 4 %s" % mech)
        if el is None or el.tag != q(NS_SASL2, "challenge"):
            c.close()
            return
        sf = base64.b64decode(el.text or "").decode()
        print("  server-first-message: %s" % sf)
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        if "h" in attrs:
            ms = "\x1e".join(sorted(self.mechs))
            s = ms + ("\x1f" + "\x1e".join(sorted(self.cbs)) if self.cbs else "")
            want = b64(H(s.encode()).digest())
            print("REPORT XEP-0474 SSDP h= present: %s (%s the offered SASL2 mechanisms/channel bindings)"
                  % (attrs["h"], "matches" if want == attrs["h"] else "does NOT match (expected %s)" % want))
        else:
            print("REPORT XEP-0474 SSDP: no h= in the server-first-message")
        salt = base64.b64decode(attrs["s"])
        salted = hashlib.pbkdf2_hmac(H().name, a.password.encode(), salt, int(attrs["i"]))
        ckey = hmac.new(salted, b"Client Key", H).digest()
        skey = hmac.new(salted, b"Server Key", H).digest()
        final_wo = "c=biws,r=%s" % attrs["r"]
        am = ("%s,%s,%s" % (bare, sf, final_wo)).encode()
        csig = hmac.new(H(ckey).digest(), am, H).digest()
        proof = bytes(x ^ y for x, y in zip(ckey, csig))
        c.send("<response xmlns='urn:xmpp:sasl:2'>%s</response>"
               % b64(("%s,p=%s" % (final_wo, b64(proof))).encode()))
        n = len(c.elems)
        c.wait_for(lambda c: len(c.elems) > n or c.closed)
        if len(c.elems) > n:
            el, raw = c.elems[n]
            show("step 4 %s: %s" % (mech, el.tag.split("}")[1]), raw)
            if el.tag == q(NS_SASL2, "success"):
                ad = base64.b64decode(el.findtext(q(NS_SASL2, "additional-data")) or "").decode()
                ssig = b64(hmac.new(skey, am, H).digest())
                print("REPORT %s over SASL2 succeeded; server signature %s"
                      % (mech, "verified" if ad == "v=" + ssig else "NOT verified (%r)" % ad))
        c.close()

    def expired(self, secs):
        self.c1.close()
        print("waiting %d s for the FAST token to expire" % secs)
        time.sleep(secs)
        c, el, ok = self.fast_auth("FAST login after %d s" % secs, self.args.user)
        self.check(not ok, "FAST login with an expired token is refused")
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--domain", default="localhost")
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default="alicepass")
    ap.add_argument("--expect-no-fast", action="store_true")
    ap.add_argument("--expect-expired", type=int, default=0)
    args = ap.parse_args()
    args.ua_id = str(uuid.uuid4())
    print("== sasl2_probe %s: %s:%d user-agent id %s" % (args.name, args.host, args.port, args.ua_id))
    p = Probe(args)
    try:
        if p.step1():
            if args.expect_expired:
                p.expired(args.expect_expired)
            else:
                if p.step2():
                    p.step3()
                p.step4()
    except (OSError, ssl.SSLError, ValueError, KeyError, AttributeError) as e:
        p.fails.append("exception %s: %s" % (type(e).__name__, e))
        print("FAIL exception %s: %s" % (type(e).__name__, e))
    if p.fails:
        print("sasl2_probe %s: FAILED (%s)" % (args.name, "; ".join(p.fails)))
        return 1
    print("sasl2_probe %s: OK" % args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
