#!/usr/bin/python3
"""tests/integration/app_peer.py — the independent peer of
tests/integration/app_test.sh: a slixmpp client (python3-slixmpp, Debian's
1.8.3; not kinglet) that talks to build/kinglet's application API through a
real server (Prosody 0.12, ejabberd 23.01) and judges what it sees.

  app_peer.py [COMMON] COMMAND [OPTIONS]

COMMON: --host H --port N --cafile F (the test CA) --jid JID --password P
(this peer's account), --target JID (the device: kinglet's full JID),
--watch FILE (kinglet's stdout, polled for its printed lines), --label TEXT
(prefix of every verdict), --timeout S (bound of each wait, default 10).

Output, one per line: "ok TEXT" / "bad TEXT" (verdicts app_test.sh counts),
"info TEXT" (measurements, what a server did), "ready" (set up; the shell
may start kinglet now). Exit 0 when it ran to the end (whatever the
verdicts), 2 when it could not (login failed: one "bad" line says why).

Commands (each logs in once, with STARTTLS and the test CA; no initial
presence unless said):
  sub --other JID:PASS --state both|to|ask
      provision a subscription over XMPP (server-agnostic): `to`: JID
      subscribes to OTHER's presence and OTHER approves (JID's roster: OTHER
      subscription to); `both`: that both ways; `ask`: JID asks, OTHER (not
      logged in) never answers (JID's roster: none, ask=subscribe). Checks
      JID's roster shows it.
  echo --count N --expect-dir DIR
      after kinglet prints "online": N messages to --target (bodies of 1 B
      to 50 KB: multi-byte UTF-8, < & > " ' ]]>, newlines, no CR), each
      written to DIR/NNNN.body; expects N echoes from --target, in order,
      each body identical.
  check-out --from JID --expect-dir DIR [--bodies DIR]
      (no XMPP) kinglet's stdout (--watch) holds "message from JID: BODY\\n"
      for every DIR/NNNN.body in order, and --bodies holds the same files
      byte for byte and no others.
  caps --node URI --identity C/T/N --features A,B,... [--iq-checks]
      available presence; "ready"; waits for --target's presence with XEP-0115
      caps (hash sha-1, node URI), asks disco#info node#ver, computes the
      ver (XEP-0115 section 5) and compares; the identity and the features
      listed; kinglet's "caps ver VER" line; disco#info without a node
      gives the same. --iq-checks: an IQ get <query xmlns='urn:example:nothing'/>
      gets error cancel/service-unavailable (same id, from --target) and
      a ping (urn:xmpp:ping) a result. Then a message "bye" to --target.
  subscribe --expect subscribed|unsubscribed --line accepted|refused|asked
      available, roster fetched (an interested resource: RFC 6121 2.1.6; Prosody
      delivers an (un)subscribed answer to those only); after "online":
      <presence type='subscribe'/> to --target's bare JID;
      expects that answer from it and kinglet's line
      "subscription request from JID: LINE"; then "bye".
  roster-push (as another resource of the device's account)
      after "roster received": adds, then removes pushed@roster.test
      (roster sets); expects kinglet's "roster push pushed@roster.test
      none", then "... remove"; then "bye".
  pep-get --owner JID --node N --item ID (--expect-payload XML |
      --expect-error CONDITION)
      items get on OWNER's PEP node: the item's payload (compared as
      canonical XML) or an error with that condition.
  pep-publish --node N --item ID --payload XML [--item2 ID --payload2 XML]
      [--last-item required|info]
      available; publishes ID on this account's PEP node before "ready";
      waits for --target's available presence (the server has seen its
      caps), then for kinglet's "pubsub event from BAREJID node N item ID:
      XML" (the last item, sent at its login through caps +notify; with
      `info` only reported: ejabberd 23.01 sends it or not depending on
      which of two sessions handles the presence first), then publishes ID2
      and waits for its event line; then "bye".
  muc-host --room ROOM@SERVICE --nick NICK --device-nick NICK2 --history K
      --expect-text TEXT
      creates ROOM (instant room: owner form submitted), posts K messages
      "history N", "ready"; waits for NICK2's presence in the room, posts
      "live after join", expects TEXT from ROOM/NICK2, then NICK2's
      unavailable presence.
  csi --phase presence|message
      after kinglet prints "csi inactive": 1 s later this resource sends
      its first available presence; with `message`, 0.5 s after that a chat
      message "csi message" to --target. Prints the times (info); the
      ordering is judged by app_test.sh on kinglet's output.
"""
import argparse
import asyncio
import base64
import hashlib
import logging
import os
import re
import sys
import time
import xml.etree.ElementTree as ET

try:
    import slixmpp
    from slixmpp.exceptions import IqError, IqTimeout
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath
except ImportError:
    print("bad python3-slixmpp is not installed (make deps)")
    sys.exit(2)

NS_CLIENT = "jabber:client"
NS_CAPS = "http://jabber.org/protocol/caps"
NS_DISCO = "http://jabber.org/protocol/disco#info"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"
NS_ROSTER = "jabber:iq:roster"
NS_DATA = "jabber:x:data"

A = None  # the parsed arguments
T0 = time.monotonic()


def out(kind, text):
    label = (A.label + ": ") if A and A.label else ""
    print("%s %s%s" % (kind, label, text) if kind != "ready" else "ready", flush=True)


def ok(text):
    out("ok", text)


def bad(text):
    out("bad", text)


def info(text):
    out("info", text)


def verdict(cond, text, why=""):
    if cond:
        ok(text)
    else:
        bad(text + (": " + why if why else ""))
    return cond


def bare(jid):
    return jid.split("/", 1)[0]


def short(s, n=160):
    s = s if isinstance(s, str) else repr(s)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


# ---- kinglet's stdout -------------------------------------------------------

def cli_gone():
    """kinglet has exited: app_test.sh writes its exit status to WATCH's
    name with .out replaced by .rc"""
    if not A.watch:
        return False
    rc = A.watch[:-4] + ".rc" if A.watch.endswith(".out") else A.watch + ".rc"
    return os.path.exists(rc)


def watch_text():
    try:
        with open(A.watch, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


async def wait_line(regex, timeout=None, after=0):
    """Wait until kinglet's stdout has a line matching regex (re.M), found
    at or after character offset `after`; returns the match or None."""
    rx = re.compile(regex, re.M)
    end = time.monotonic() + (timeout or A.timeout)
    while True:
        gone = cli_gone()  # before reading: what it printed is in the file
        m = rx.search(watch_text(), after)
        if m:
            return m
        if time.monotonic() > end or gone:
            return None
        await asyncio.sleep(0.05)


# ---- the client --------------------------------------------------------------

class Peer(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.ca_certs = A.cafile
        self.roster.auto_authorize = None  # answer nothing by itself
        self.roster.auto_subscribe = False
        self.stanzas = []  # every message and presence, as ET elements
        self.cond = asyncio.Condition()
        self.session_ok = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._started)
        self.add_event_handler("failed_auth", self._failed)
        self.add_event_handler("connection_failed", self._failed)
        for name in ("message", "presence"):
            self.register_handler(Callback("app_peer " + name, MatchXPath("{%s}%s" % (NS_CLIENT, name)),
                                           self._got))

    def _started(self, _):
        if not self.session_ok.done():
            self.session_ok.set_result(True)

    def _failed(self, why):
        if not self.session_ok.done():
            self.session_ok.set_result(str(why)[:200])

    def _got(self, stanza):
        self.stanzas.append(stanza.xml)

        async def note():
            async with self.cond:
                self.cond.notify_all()
        asyncio.ensure_future(note())

    async def wait_for(self, pred, timeout=None, start=0):
        """First stanza (index >= start) for which pred(el) is true, or None."""
        end = time.monotonic() + (timeout or A.timeout)
        i = start
        gone = False
        while True:
            if not gone and cli_gone():  # what it sent may still be on the way
                gone = True
                end = min(end, time.monotonic() + 1.5)
            while i < len(self.stanzas):
                el = self.stanzas[i]
                i += 1
                if pred(el):
                    return el
            left = end - time.monotonic()
            if left <= 0:
                return None
            async with self.cond:
                try:
                    await asyncio.wait_for(self.cond.wait(), min(left, 0.2))
                except asyncio.TimeoutError:
                    pass

    def send_xml(self, text):
        self.send_raw(text)

    async def iq(self, typ, to, payload, timeout=None):
        """IQ with payload (XML text); returns (result_or_error_element, error)"""
        iq = self.Iq()
        iq["type"] = typ
        if to:
            iq["to"] = to
        if payload is not None:
            iq.xml.append(ET.fromstring(payload))
        try:
            res = await iq.send(timeout=timeout or A.timeout)
            return res.xml, None
        except IqError as e:
            return e.iq.xml, e.iq["error"]["condition"] or "?"
        except IqTimeout:
            return None, "timeout"


async def login(jid=None, password=None, presence=False):
    c = Peer(jid or A.jid, password or A.password)
    c.connect(address=(A.host, A.port))
    try:
        r = await asyncio.wait_for(c.session_ok, A.timeout)
    except asyncio.TimeoutError:
        r = "timeout"
    if r is not True:
        bad("login %s: %s" % (jid or A.jid, r))
        sys.exit(2)
    if presence:
        c.send_xml("<presence/>")
    return c


async def logout(c):
    try:
        c.disconnect()
        await asyncio.wait_for(c.disconnected, 5)
    except Exception:  # noqa: BLE001 — best effort
        pass


def q(tag, ns=NS_CLIENT):
    return "{%s}%s" % (ns, tag)


def body_of(el):
    b = el.find(q("body"))
    return None if b is None else (b.text or "")


def error_condition(el):
    err = el.find(q("error"))
    if err is None:
        return None, None
    for child in err:
        if child.tag.startswith("{%s}" % NS_STANZAS) and not child.tag.endswith("}text"):
            return err.get("type"), child.tag.split("}", 1)[1]
    return err.get("type"), "?"


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&apos;")


def canon_el(el):
    """an element as a comparable value: {ns}name, attributes, text and
    children (namespace prefixes and attribute quoting do not matter;
    surrounding whitespace of text does not either)"""
    return (el.tag, tuple(sorted(el.attrib.items())), (el.text or "").strip(),
            tuple(canon_el(c) + ((c.tail or "").strip(),) for c in el))


def canon(xml_text):
    try:
        return canon_el(ET.fromstring(xml_text))
    except Exception as e:  # noqa: BLE001
        return "<unparsable %s: %s>" % (e, xml_text)


async def bye(c, to=None):
    c.send_xml("<message to='%s' type='chat'><body>bye</body></message>" % esc(to or A.target))


# ---- sub ---------------------------------------------------------------------

async def roster_item(c, jid):
    res, err = await c.iq("get", None, "<query xmlns='%s'/>" % NS_ROSTER)
    if err:
        return None
    for it in res.iter(q("item", NS_ROSTER)):
        if it.get("jid") == jid:
            return it
    return None


async def cmd_sub():
    other, other_pw = A.other.split(":", 1)
    a = await login()
    me = bare(A.jid)
    steps = []
    if A.state == "ask":
        a.send_xml("<presence to='%s' type='subscribe'/>" % esc(other))
        want = ("none", "subscribe")
    else:
        b = await login(other, other_pw, presence=True)  # requests reach available resources only
        pairs = [(a, me, b, other)]
        if A.state == "both":
            a.send_xml("<presence/>")
            pairs.append((b, other, a, me))
        for (x, xj, y, yj) in pairs:
            n = len(y.stanzas)
            x.send_xml("<presence to='%s' type='subscribe'/>" % esc(yj))
            got = await y.wait_for(lambda el: el.tag == q("presence") and el.get("type") == "subscribe"
                                   and bare(el.get("from", "")) == xj, start=n)
            if got is None:
                bad("sub %s %s %s: %s never saw the request" % (me, other, A.state, yj))
                return
            y.send_xml("<presence to='%s' type='subscribed'/>" % esc(xj))
            steps.append("%s->%s" % (xj, yj))
        want = ("both" if A.state == "both" else "to", None)
    # the server has it when the roster says so
    end = time.monotonic() + A.timeout
    it = None
    while time.monotonic() < end:
        it = await roster_item(a, other)
        if it is not None and (it.get("subscription"), it.get("ask")) == want:
            break
        await asyncio.sleep(0.1)
    got = None if it is None else (it.get("subscription"), it.get("ask"))
    verdict(got == want, "provisioned %s's roster: %s subscription %s%s" % (
        me, other, want[0], " ask " + want[1] if want[1] else ""), "roster says %s" % (got,))
    await logout(a)
    if A.state != "ask":
        await logout(b)


# ---- echo / check-out -------------------------------------------------------

def make_bodies(n):
    uni = "żółć 日本語 🎉 ü ñ € — "
    spec = "<tag attr=\"v\" other='w'> & &amp; ]]> > \" ' "
    bodies = []
    for i in range(1, n + 1):
        head = "msg %d/%d " % (i, n)
        if i in (20, 45):  # about 50 KB
            target = 50 * 1024
        elif i in (7, 15, 23, 31, 39):  # about 10 KB
            target = 10 * 1024
        else:
            target = 0
        if target:
            parts = [head]
            k = 0
            while sum(len(p.encode()) for p in parts) < target:
                parts.append("line %d: %s%s\n" % (k, uni, spec))
                k += 1
            b = "".join(parts)
        elif i % 10 == 3:
            b = "  leading and trailing spaces, \ttab  "
        elif i % 10 == 4:
            b = "\nstarts and ends with a newline\n"
        elif i % 10 == 5:
            b = "x"
        else:
            b = head + uni + spec + ("\nsecond line" if i % 2 else "")
        assert "\r" not in b
        bodies.append(b)
    return bodies


async def cmd_echo():
    c = await login()
    os.makedirs(A.expect_dir, exist_ok=True)
    if not await wait_line(r"^(online|resumed) ", 15):
        bad("echo: kinglet never printed online")
        return
    bodies = make_bodies(A.count)
    for i, b in enumerate(bodies, 1):
        with open(os.path.join(A.expect_dir, "%04d.body" % i), "wb") as f:
            f.write(b.encode())
    info("echo: %d bodies, %d bytes in all, the largest %d bytes" % (
        len(bodies), sum(len(b.encode()) for b in bodies), max(len(b.encode()) for b in bodies)))
    n0 = len(c.stanzas)
    t = time.monotonic()
    for b in bodies:
        c.send_xml("<message to='%s' type='chat'><body>%s</body></message>" % (esc(A.target), esc(b)))
    got = []
    idx = n0
    while len(got) < len(bodies):
        el = await c.wait_for(lambda el: el.tag == q("message") and el.get("from") == A.target
                              and el.find(q("body")) is not None, 25, idx)
        if el is None:
            break
        idx = c.stanzas.index(el) + 1
        got.append(body_of(el))
    info("echo: %d echoes in %.2f s" % (len(got), time.monotonic() - t))
    verdict(len(got) == len(bodies), "echo: %d messages sent, %d echoes came back" % (len(bodies), len(got)))
    wrong = [i + 1 for i, b in enumerate(got) if i >= len(bodies) or b != bodies[i]]
    if not wrong and len(got) < len(bodies):
        bad("echo: the %d echoes that came back are identical to what was sent; #%d..#%d (%s) never came back" % (
            len(got), len(got) + 1, len(bodies), ", ".join("%d B" % len(b.encode()) for b in bodies[len(got):len(got) + 3]) + "..."))
    elif not wrong:
        ok("echo: every echo byte-identical to what was sent, in order (largest %d bytes)" %
           max(len(b.encode()) for b in bodies))
    else:
        detail = ""
        if wrong:
            i = wrong[0] - 1
            s, g = bodies[i], got[i]
            p = next((k for k in range(min(len(s), len(g))) if s[k] != g[k]), min(len(s), len(g)))
            # in order? perhaps a reordering
            where = bodies.index(g) + 1 if g in bodies else None
            detail = ("first wrong #%d (sent %d chars, got %d, differ at %d: sent %r got %r%s)" % (
                wrong[0], len(s), len(g), p, s[p:p + 20], g[p:p + 20],
                ", it is body #%d" % where if where else ""))
        bad("echo: %d of %d echoes differ %s" % (len(wrong), len(got), detail))
    await logout(c)


def cmd_check_out():
    names = sorted(n for n in os.listdir(A.expect_dir) if n.endswith(".body"))
    exp = []
    for n in names:
        with open(os.path.join(A.expect_dir, n), "rb") as f:
            exp.append(f.read())
    with open(A.watch, "rb") as f:
        text = f.read()
    pos = 0
    missing = None
    for i, b in enumerate(exp, 1):
        line = b"message from " + A.from_.encode() + b": " + b + b"\n"
        k = text.find(line, pos)
        if k < 0:
            missing = i
            break
        pos = k + len(line)
    verdict(missing is None, "kinglet printed all %d bodies raw, in order ('message from %s: BODY')" % (len(exp), A.from_),
            "#%d (%d bytes) not found after offset %d; stdout has %d bytes" % (
                missing, len(exp[missing - 1]), pos, len(text)) if missing else "")
    if A.bodies:
        try:
            have = sorted(os.listdir(A.bodies))
        except OSError as e:
            bad("--bodies: %s" % e)
            return
        diff = [n for n in names if n not in have or open(os.path.join(A.bodies, n), "rb").read() !=
                open(os.path.join(A.expect_dir, n), "rb").read()]
        extra = [n for n in have if n not in names]
        verdict(not diff and not extra, "--bodies: %d files 0001.body..%04d.body byte-identical to the bodies sent" % (
            len(names), len(names)), "differ or missing: %s; extra: %s" % (diff[:5], extra[:5]))


# ---- caps ------------------------------------------------------------------

def caps_ver(query):
    """XEP-0115 section 5.1 over a disco#info <query/>; returns (ver, problems)"""
    problems = []
    ids = []
    for i in query.findall("{%s}identity" % NS_DISCO):
        ids.append((i.get("category", ""), i.get("type", ""),
                    i.get("{http://www.w3.org/XML/1998/namespace}lang", ""), i.get("name", "")))
    feats = [f.get("var", "") for f in query.findall("{%s}feature" % NS_DISCO)]
    if len(set(ids)) != len(ids):
        problems.append("duplicate identities")
    if len(set(feats)) != len(feats):
        problems.append("duplicate features")
    s = ""
    for i in sorted(ids, key=lambda t: tuple(x.encode() for x in t)):
        s += "%s/%s/%s/%s<" % i
    for f in sorted(feats, key=lambda x: x.encode()):
        s += f + "<"
    forms = []
    for x in query.findall("{%s}x" % NS_DATA):
        if x.get("type") != "result":
            continue
        ft = None
        fields = []
        for fld in x.findall("{%s}field" % NS_DATA):
            vals = [v.text or "" for v in fld.findall("{%s}value" % NS_DATA)]
            if fld.get("var") == "FORM_TYPE":
                ft = vals[0] if vals else ""
            else:
                fields.append((fld.get("var", ""), sorted(vals, key=lambda v: v.encode())))
        if ft is None:
            continue  # ignored (XEP-0115 5.4 3.6)
        forms.append((ft, sorted(fields, key=lambda f: f[0].encode())))
    for ft, fields in sorted(forms, key=lambda f: f[0].encode()):
        s += ft + "<"
        for var, vals in fields:
            s += var + "<" + "".join(v + "<" for v in vals)
    ver = base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()
    return ver, problems, ids, feats, s


async def cmd_caps():
    c = await login(presence=True)
    out("ready", "")
    pres = await c.wait_for(lambda el: el.tag == q("presence") and el.get("from") == A.target
                            and el.get("type") in (None, "available"), 20)
    if pres is None:
        bad("caps: no available presence from %s" % A.target)
        return
    cel = pres.find("{%s}c" % NS_CAPS)
    if not verdict(cel is not None, "caps: %s's presence carries <c xmlns='%s'/>" % (A.target, NS_CAPS),
                   ET.tostring(pres, encoding="unicode")[:300]):
        return
    node, ver, hsh = cel.get("node"), cel.get("ver"), cel.get("hash")
    verdict(hsh == "sha-1" and node == A.node,
            "caps: hash='sha-1' node='%s' ver='%s'" % (A.node, ver), "hash=%r node=%r" % (hsh, node))
    m = await wait_line(r"^caps ver (\S+)$", 5)
    verdict(m is not None and m.group(1) == ver, "caps: kinglet printed 'caps ver %s', the ver of its presence" % ver,
            "kinglet printed %r" % (m.group(0) if m else None))
    res, err = await c.iq("get", A.target, "<query xmlns='%s' node='%s#%s'/>" % (NS_DISCO, esc(node or ""), esc(ver or "")))
    if not verdict(err is None, "caps: disco#info node='NODE#VER' answered (result)", "error %s" % err):
        return
    query = res.find("{%s}query" % NS_DISCO)
    verdict(query is not None and query.get("node") == "%s#%s" % (node, ver),
            "caps: the answer's <query/> names node='%s#%s'" % (node, ver),
            "query node %r" % (None if query is None else query.get("node")))
    if query is None:
        return
    mine, problems, ids, feats, s = caps_ver(query)
    info("caps: S = %s" % short(s, 600))
    verdict(mine == ver and not problems, "caps: ver computed here (XEP-0115 5.1, SHA-1, base64) = advertised %s" % ver,
            "computed %s; %s; S=%s" % (mine, problems, short(s, 400)))
    cat, typ, name = A.identity.split("/", 2)
    verdict(any(i[0] == cat and i[1] == typ and i[3] == name for i in ids),
            "caps: identity %s/%s '%s' listed" % (cat, typ, name), "identities %s" % ids)
    want = [f for f in A.features.split(",") if f]
    missing = [f for f in want if f not in feats]
    verdict(not missing, "caps: features listed: %s" % " ".join(want), "missing %s; listed %s" % (missing, feats))
    res2, err2 = await c.iq("get", A.target, "<query xmlns='%s'/>" % NS_DISCO)
    q2 = None if res2 is None else res2.find("{%s}query" % NS_DISCO)
    if err2 is None and q2 is not None:
        v2 = caps_ver(q2)[0]
        verdict(v2 == ver, "caps: disco#info without node gives the same identities and features",
                "its ver would be %s" % v2)
    else:
        bad("caps: disco#info without node: error %s" % err2)
    if A.iq_checks:
        await iq_checks(c)
    await bye(c)
    await asyncio.sleep(0.2)
    await logout(c)


async def iq_checks(c):
    iq_id = "unk-%d" % os.getpid()
    n = len(c.stanzas)
    # raw, so the id is ours and the reply is matched here
    fut = asyncio.get_event_loop().create_future()

    def grab(stanza):
        if not fut.done():
            fut.set_result(stanza.xml)
    c.register_handler(Callback("app_peer iq reply", MatchXPath("{%s}iq" % NS_CLIENT), lambda s: (
        grab(s) if s.xml.get("id") == iq_id else None)))
    c.send_xml("<iq type='get' id='%s' to='%s'><query xmlns='urn:example:nothing'/></iq>" % (iq_id, esc(A.target)))
    try:
        r = await asyncio.wait_for(fut, A.timeout)
    except asyncio.TimeoutError:
        r = None
    del n
    if r is None:
        bad("iq: no answer to an IQ get with <query xmlns='urn:example:nothing'/>")
    else:
        et, cond = error_condition(r)
        verdict(r.get("type") == "error" and et == "cancel" and cond == "service-unavailable"
                and r.get("id") == iq_id and r.get("from") == A.target,
                "iq: unknown payload answered type='error' <error type='cancel'><service-unavailable/>, same id, from %s" % A.target,
                ET.tostring(r, encoding="unicode")[:300])
    res, err = await c.iq("get", A.target, "<ping xmlns='urn:xmpp:ping'/>")
    verdict(err is None and res is not None and res.get("type") == "result" and res.get("from") == A.target,
            "iq: ping (urn:xmpp:ping) answered with a result", "error %s" % err)


# ---- subscribe -------------------------------------------------------------

async def cmd_subscribe():
    c = await login(presence=True)  # the answer reaches available resources only
    if not await wait_line(r"^(online|resumed) ", 15):
        bad("subscribe: kinglet never printed online")
        return
    me = bare(A.jid)
    tb = bare(A.target)
    # an interested resource (RFC 6121 2.1.6): Prosody delivers the
    # (un)subscribed answer only to those; it updates the roster otherwise
    await c.iq("get", None, "<query xmlns='%s'/>" % NS_ROSTER)
    n = len(c.stanzas)
    c.send_xml("<presence to='%s' type='subscribe'/>" % esc(tb))
    el = await c.wait_for(lambda el: el.tag == q("presence") and bare(el.get("from", "")) == tb
                          and el.get("type") in ("subscribed", "unsubscribed"), A.timeout, n)
    got = None if el is None else el.get("type")
    verdict(got == A.expect, "subscribe from %s: the device answered %s" % (me, A.expect), "got %s" % got)
    m = await wait_line(r"^subscription request from %s: (\S+)$" % re.escape(me), 5)
    verdict(m is not None and m.group(1) == A.line, "subscribe: kinglet printed 'subscription request from %s: %s'" % (me, A.line),
            "printed %r" % (m.group(0) if m else None))
    await bye(c)
    await asyncio.sleep(0.2)
    await logout(c)


# ---- roster push -------------------------------------------------------------

async def cmd_roster_push():
    c = await login()
    if not await wait_line(r"^roster received: ", 15):
        bad("roster-push: kinglet never printed 'roster received'")
        return
    pj = "pushed@roster.test"
    res, err = await c.iq("set", None, "<query xmlns='%s'><item jid='%s' name='Pushed'><group>push</group></item></query>" % (NS_ROSTER, pj))
    verdict(err is None, "roster-push: roster set (add %s) accepted by the server" % pj, str(err))
    m = await wait_line(r"^roster push %s (\S+)$" % re.escape(pj), 5)
    verdict(m is not None and m.group(1) == "none", "roster-push: kinglet printed 'roster push %s none'" % pj,
            "printed %r" % (m.group(0) if m else None))
    after = m.end() if m else 0
    res, err = await c.iq("set", None, "<query xmlns='%s'><item jid='%s' subscription='remove'/></query>" % (NS_ROSTER, pj))
    verdict(err is None, "roster-push: roster set (remove %s) accepted by the server" % pj, str(err))
    m = await wait_line(r"^roster push %s remove$" % re.escape(pj), 5, after)
    verdict(m is not None, "roster-push: kinglet printed 'roster push %s remove'" % pj)
    await bye(c)
    await asyncio.sleep(0.2)
    await logout(c)


# ---- PEP ---------------------------------------------------------------------

async def cmd_pep_get():
    c = await login()
    res, err = await c.iq("get", A.owner, "<pubsub xmlns='%s'><items node='%s'><item id='%s'/></items></pubsub>" % (
        NS_PUBSUB, esc(A.node), esc(A.item)))
    who = bare(A.jid)
    if A.expect_error:
        cond = error_condition(res)[1] if res is not None else None
        verdict(err is not None and cond == A.expect_error,
                "pep-get: %s (not subscribed) is refused %s's item: %s" % (who, A.owner, A.expect_error),
                "got %s" % (err if err else ET.tostring(res, encoding="unicode")[:300]))
        if res is not None and err:
            info("pep-get: the refusal: %s" % ET.tostring(res.find(q("error")), encoding="unicode")[:300]
                 if res.find(q("error")) is not None else "")
    else:
        payload = None
        if err is None and res is not None:
            for it in res.iter("{%s}item" % NS_PUBSUB):
                if it.get("id") == A.item and len(it):
                    payload = it[0]
        verdict(payload is not None and canon_el(payload) == canon(A.expect_payload),
                "pep-get: %s reads %s's node %s item %s: %s" % (who, A.owner, A.node, A.item, A.expect_payload),
                "error %s" % err if err else "got %s" % (ET.tostring(res, encoding="unicode")[:400] if res is not None else None))
    await logout(c)


async def publish(c, node, item, payload):
    return await c.iq("set", None, "<pubsub xmlns='%s'><publish node='%s'><item id='%s'>%s</item></publish></pubsub>" % (
        NS_PUBSUB, esc(node), esc(item), payload))


def event_line_rx(frm, node, item):
    return r"^pubsub event from %s node %s item %s: (.*)$" % (re.escape(frm), re.escape(node), re.escape(item))


async def cmd_pep_publish():
    c = await login(presence=True)
    me = bare(A.jid)
    res, err = await publish(c, A.node, A.item, A.payload)
    verdict(err is None, "pep-publish: %s publishes %s item %s" % (me, A.node, A.item), str(err))
    out("ready", "")
    # the device's presence reached this (the owner's) session: the server
    # has seen its caps
    pres = await c.wait_for(lambda el: el.tag == q("presence") and el.get("from") == A.target
                            and el.get("type") is None, 15)
    verdict(pres is not None, "pep-publish: %s's available presence reached the node's owner" % A.target)
    m = await wait_line(event_line_rx(me, A.node, A.item), 5 if A.last_item == "required" else 1.5)
    text = "pep: kinglet (caps +notify) printed the last item at its login: 'pubsub event from %s node %s item %s: ...'" % (
        me, A.node, A.item)
    if A.last_item == "required":
        verdict(m is not None and canon(m.group(1)) == canon(A.payload), text, "printed %r" % (m.group(0) if m else None))
    else:
        info("%s: %s" % (text, "yes" if m is not None and canon(m.group(1)) == canon(A.payload) else
                         "no (printed %r)" % (m.group(0) if m else None)))
    if A.item2:
        after = m.end() if m else 0
        res, err = await publish(c, A.node, A.item2, A.payload2)
        verdict(err is None, "pep-publish: %s publishes %s item %s while kinglet is online" % (me, A.node, A.item2), str(err))
        m = await wait_line(event_line_rx(me, A.node, A.item2), 5, after)
        verdict(m is not None and canon(m.group(1)) == canon(A.payload2),
                "pep: kinglet printed the live event 'pubsub event from %s node %s item %s: %s'" % (
                    me, A.node, A.item2, A.payload2), "printed %r" % (m.group(0) if m else None))
    await bye(c)
    await asyncio.sleep(0.2)
    await logout(c)


# ---- MUC ---------------------------------------------------------------------

async def cmd_muc_host():
    c = await login()
    room = A.room
    me_occ = "%s/%s" % (room, A.nick)
    dev_occ = "%s/%s" % (room, A.device_nick)
    c.send_xml("<presence to='%s'><x xmlns='%s'/></presence>" % (esc(me_occ), NS_MUC))
    el = await c.wait_for(lambda el: el.tag == q("presence") and el.get("from") == me_occ)
    if el is None:
        bad("muc: no self-presence joining %s" % me_occ)
        return
    codes = [s.get("code") for s in el.iter("{%s}status" % NS_MUC_USER)]
    if "201" in codes:
        res, err = await c.iq("set", room, "<query xmlns='%s'><x xmlns='%s' type='submit'/></query>" % (NS_MUC_OWNER, NS_DATA))
        verdict(err is None, "muc: %s created (status 201), instant room configured" % room, str(err))
    else:
        info("muc: %s existed (status %s)" % (room, codes))
    for i in range(1, A.history + 1):
        c.send_xml("<message to='%s' type='groupchat'><body>history %d</body></message>" % (esc(room), i))
    n = await c.wait_for(lambda el: el.tag == q("message") and el.get("from") == me_occ and body_of(el) == "history %d" % A.history)
    verdict(n is not None, "muc: %d messages posted before the device joins (the room's history)" % A.history)
    out("ready", "")
    el = await c.wait_for(lambda el: el.tag == q("presence") and el.get("from") == dev_occ and el.get("type") is None, 20)
    if not verdict(el is not None, "muc: %s joined (its presence reached the room)" % dev_occ):
        return
    hist = el.find("{%s}x" % NS_MUC_USER)
    info("muc: the device's presence in the room: %s" % ET.tostring(el, encoding="unicode")[:300])
    del hist
    mark = len(c.stanzas)
    c.send_xml("<message to='%s' type='groupchat'><body>live after join</body></message>" % esc(room))
    el = await c.wait_for(lambda el: el.tag == q("message") and el.get("from") == dev_occ and el.get("type") == "groupchat"
                          and body_of(el) == A.expect_text, 15, 0)
    verdict(el is not None, "muc: the device's --muc-send text reached the room: '%s'" % A.expect_text)
    el = await c.wait_for(lambda el: el.tag == q("presence") and el.get("from") == dev_occ and el.get("type") == "unavailable",
                          20, mark)
    verdict(el is not None, "muc: the device left (unavailable presence from %s)" % dev_occ)
    await logout(c)


# ---- CSI ---------------------------------------------------------------------

async def cmd_csi():
    c = await login()
    out("ready", "")
    m = await wait_line(r"^csi inactive$", 15)
    if m is None:
        bad("csi: kinglet never printed 'csi inactive'")
        return
    ok("csi: kinglet printed 'csi inactive'")
    t0 = time.monotonic()
    await asyncio.sleep(1.0)
    c.send_xml("<presence><status>csi test</status></presence>")
    info("csi: presence of %s sent %.2f s after 'csi inactive' was seen" % (A.jid, time.monotonic() - t0))
    if A.phase == "message":
        await asyncio.sleep(0.5)
        c.send_xml("<message to='%s' type='chat'><body>csi message</body></message>" % esc(A.target))
        info("csi: message sent %.2f s after 'csi inactive'" % (time.monotonic() - t0))
    m = await wait_line(r"^csi active$", 15)
    verdict(m is not None, "csi: kinglet printed 'csi active' (seen %.2f s after 'csi inactive')" % (time.monotonic() - t0))
    # stay available a moment longer: an unavailable presence would be held too
    await asyncio.sleep(A.linger)
    await logout(c)


# ---- main --------------------------------------------------------------------

def main():
    global A
    p = argparse.ArgumentParser(description="kinglet app_test peer")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5222)
    p.add_argument("--cafile")
    p.add_argument("--jid")
    p.add_argument("--password")
    p.add_argument("--target")
    p.add_argument("--watch")
    p.add_argument("--label", default="")
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--debug", action="store_true")
    sp = p.add_subparsers(dest="cmd", required=True)
    s = sp.add_parser("sub")
    s.add_argument("--other", required=True)
    s.add_argument("--state", choices=("both", "to", "ask"), required=True)
    s = sp.add_parser("echo")
    s.add_argument("--count", type=int, default=50)
    s.add_argument("--expect-dir", required=True)
    s = sp.add_parser("check-out")
    s.add_argument("--from", dest="from_", required=True)
    s.add_argument("--expect-dir", required=True)
    s.add_argument("--bodies")
    s = sp.add_parser("caps")
    s.add_argument("--node", required=True)
    s.add_argument("--identity", default="client/bot/kinglet")
    s.add_argument("--features", default="")
    s.add_argument("--iq-checks", action="store_true")
    s = sp.add_parser("subscribe")
    s.add_argument("--expect", choices=("subscribed", "unsubscribed"), required=True)
    s.add_argument("--line", choices=("accepted", "refused", "asked"), required=True)
    sp.add_parser("roster-push")
    s = sp.add_parser("pep-get")
    s.add_argument("--owner", required=True)
    s.add_argument("--node", required=True)
    s.add_argument("--item", required=True)
    s.add_argument("--expect-payload")
    s.add_argument("--expect-error")
    s = sp.add_parser("pep-publish")
    s.add_argument("--node", required=True)
    s.add_argument("--item", required=True)
    s.add_argument("--payload", required=True)
    s.add_argument("--item2")
    s.add_argument("--payload2")
    s.add_argument("--last-item", choices=("required", "info"), default="required")
    s = sp.add_parser("muc-host")
    s.add_argument("--room", required=True)
    s.add_argument("--nick", required=True)
    s.add_argument("--device-nick", required=True)
    s.add_argument("--history", type=int, default=5)
    s.add_argument("--expect-text", required=True)
    s = sp.add_parser("csi")
    s.add_argument("--phase", choices=("presence", "message"), required=True)
    s.add_argument("--linger", type=float, default=1)
    A = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if A.debug else logging.CRITICAL)
    if A.cmd == "check-out":
        cmd_check_out()
        return 0
    fn = {"sub": cmd_sub, "echo": cmd_echo, "caps": cmd_caps, "subscribe": cmd_subscribe,
          "roster-push": cmd_roster_push, "pep-get": cmd_pep_get, "pep-publish": cmd_pep_publish,
          "muc-host": cmd_muc_host, "csi": cmd_csi}[A.cmd]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(fn())
    return 0


if __name__ == "__main__":
    sys.exit(main())
