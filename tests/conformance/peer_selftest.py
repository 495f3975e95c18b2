#!/usr/bin/env python3
"""peer_selftest.py — checks tests/conformance/xep0305_peer.py against the
flights of XEP-0305 (v0.2, "TCP Binding"), with a client written separately
from the peer (Python ssl client with memory BIOs; the XML is found with
regular expressions, not expat, so the two do not share a parser).

Runs inside tests/netns.sh (re-execs itself there). Generates its own CA and
localhost certificate with the openssl CLI. Starts three peers:
  A  default (+ --scram)
  B  --no-pipelining-feature --no-plain --tls-max 1.2
  C  --fail-auth
Cases: full pipelining over TLS 1.3 and 1.2, the XEP's literal order (client
Finished alone, server restarts proactively), lockstep, the first flight and
the post-TLS flight split in two at every 7th byte, wrong password with a
pipelined restart, SCRAM-SHA-256/-1 with the final response pipelined,
fallback options, TLS resumption, echo/ping/disco, clean close, SIGTERM.
Last line: "xep0305_peer: N passed, N failed".
"""
import base64
import hashlib
import hmac
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if not os.environ.get('KL_NETNS'):
    os.execv(os.path.join(HERE, '..', 'netns.sh'),
             [os.path.join(HERE, '..', 'netns.sh'), sys.executable] + sys.argv)

PEER = os.path.join(HERE, 'xep0305_peer.py')
TLS_NS = 'urn:ietf:params:xml:ns:xmpp-tls'
SASL_NS = 'urn:ietf:params:xml:ns:xmpp-sasl'
HDR = ("<?xml version='1.0'?><stream:stream to='localhost' from='alice@localhost' version='1.0' "
       "xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
HDR_BARE = ("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' "
            "to='localhost' version='1.0'>")
STARTTLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
BIND = ("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        "<resource>balcony</resource></bind></iq>")

passed = failed = 0


def check(cond, what, detail=''):
    global passed, failed
    if cond:
        passed += 1
        print('PASS ' + what)
    else:
        failed += 1
        print('FAIL ' + what + (': ' + detail if detail else ''))
    return cond


def plain_auth(user, pw):
    return "<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (
        SASL_NS, base64.b64encode(('\0%s\0%s' % (user, pw)).encode()).decode())


# ---- certificates -------------------------------------------------------------
def make_certs(d):
    def run(*a):
        subprocess.run(a, check=True, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-subj', '/CN=peer selftest CA', '-days', '3650', '-keyout', 'ca.key', '-out', 'ca.pem',
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign')
    run('openssl', 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-subj', '/CN=localhost', '-keyout', 'localhost.key', '-out', 'localhost.csr')
    with open(os.path.join(d, 'ext.cnf'), 'w') as f:
        f.write('subjectAltName=DNS:localhost,IP:127.0.0.1\n')
    run('openssl', 'x509', '-req', '-in', 'localhost.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
        '-CAcreateserial', '-days', '3650', '-out', 'localhost.pem', '-extfile', 'ext.cnf')


# ---- peer processes -------------------------------------------------------------
class Peer:
    def __init__(self, d, name, *opts):
        self.log = os.path.join(d, 'peer-%s.log' % name)
        self.p = subprocess.Popen([sys.executable, PEER, '0', '--certdir', d, '--log', self.log,
                                   '--idle-timeout', '10'] + list(opts),
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        m = re.match(r'listening (\d+)$', line.strip())
        if not m:
            raise SystemExit('peer %s did not start: %r' % (name, line))
        self.port = int(m.group(1))
        self.conns = 0

    def next_conn(self):
        self.conns += 1
        return self.conns

    def lines(self, conn):
        with open(self.log) as f:
            return [l for l in f if (' conn=%d ' % conn) in l]

    def summary(self, conn, wait=3.0):
        end = time.time() + wait
        while time.time() < end:
            for l in self.lines(conn):
                if ' summary ' in l:
                    return l
            time.sleep(0.02)
        return ''

    def writes(self, conn):
        return [re.search(r'parts=(\S+)', l).group(1) for l in self.lines(conn) if ' write=' in l]


def flag(summary, name):
    m = re.search(re.escape(name) + r' together=(yes|no)', summary)
    return m.group(1) if m else '?'


def field(summary, name):
    m = re.search(r'\b' + re.escape(name) + r'=(\S+)', summary)
    return m.group(1) if m else '?'


# ---- the client ---------------------------------------------------------------------
PROCEED_RE = re.compile(rb"<proceed\s[^>]*?xmlns=['\"]urn:ietf:params:xml:ns:xmpp-tls['\"][^>]*?"
                        rb"(?:/>|>\s*</proceed>)")


CTX = {}   # one client context per (CA, max version): sessions resume within one


class Client:
    def __init__(self, peer, cafile, tls_max=None, session=None):
        self.peer = peer
        self.conn = peer.next_conn()
        self.sock = socket.create_connection(('127.0.0.1', peer.port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = (cafile, tls_max)
        if key not in CTX:
            CTX[key] = ssl.create_default_context(cafile=cafile)
            if tls_max:
                CTX[key].maximum_version = tls_max
        ctx = self.ctx = CTX[key]
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inb, self.outb, server_hostname='localhost', session=session)
        self.raw = b''          # pre-TLS bytes received
        self.app = ''           # decrypted XML received, not yet consumed
        self.in_tls = False
        self.hs_done = False
        self.eof = False
        self.closed_tls = False
        self.recvs = 0

    def client_hello(self):
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.outb.read()

    def send(self, b):
        self.sock.sendall(b)

    def enc(self, xml):
        if xml:
            self.tls.write(xml.encode())
        return self.outb.read()

    def _pump_tls(self, data):
        self.inb.write(data)
        if not self.hs_done:
            try:
                self.tls.do_handshake()
                self.hs_done = True
            except ssl.SSLWantReadError:
                return
        while True:
            try:
                d = self.tls.read(65536)
            except ssl.SSLWantReadError:
                return
            except ssl.SSLZeroReturnError:
                self.closed_tls = True
                return
            if not d:               # close_notify (ssl returns b'' for it)
                self.closed_tls = True
                return
            self.app += d.decode()

    def recv_once(self):
        d = self.sock.recv(65536)
        self.recvs += 1
        if not d:
            self.eof = True
            return
        if self.in_tls:
            self._pump_tls(d)
            return
        self.raw += d
        m = PROCEED_RE.search(self.raw)
        if m:
            rest = self.raw[m.end():]
            self.raw = self.raw[:m.end()]
            self.in_tls = True
            if rest:
                self._pump_tls(rest)

    def until(self, pred, timeout=5.0):
        """Reads until pred() is true; returns the number of recv calls."""
        n0 = self.recvs
        end = time.time() + timeout
        while not pred():
            if self.eof or time.time() > end:
                return -1
            self.sock.settimeout(max(0.05, end - time.time()))
            try:
                self.recv_once()
            except socket.timeout:
                return -1
        return self.recvs - n0

    def take(self, regex):
        """Removes and returns the first match of regex in the app text."""
        m = re.search(regex, self.app, re.S)
        if not m:
            return None
        self.app = self.app[m.end():]
        return m

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


FEAT_RE = r"<stream:features>(.*?)</stream:features>"
HDR_RE = r"<stream:stream\s[^>]*>"


def app_has(c, *regexes):
    pos = 0
    for r in regexes:
        m = re.compile(r, re.S).search(c.app, pos)
        if not m:
            return False
        pos = m.end()
    return True


def post_auth_reply_res():
    return [r"<success\s[^>]*(?:/>|>.*?</success>)", HDR_RE, FEAT_RE.replace('(.*?)', "(?=.*<bind ).*?"),
            r"<iq[^>]*type='result'[^>]*id='b1'|<iq[^>]*id='b1'[^>]*type='result'",
            r"<jid>alice@localhost/balcony</jid>"]


# ---- cases ------------------------------------------------------------------------------
def full_first_flight(c, hdr=HDR, starttls=STARTTLS):
    ch = c.client_hello()
    flight = (hdr + starttls).encode() + ch
    return flight


def case_full13(A, ca, label='full TLS1.3', session=None):
    c = Client(A, ca, session=session)
    flight = full_first_flight(c)
    c.send(flight)
    n = c.until(lambda: c.hs_done)
    check(n == 1, label + ': header+features+proceed+ServerHello..Finished arrive in one recv', 'recvs=%d' % n)
    raw = c.raw.decode()
    check("<pipelining xmlns='urn:xmpp:features:pipelining'/>" in raw and '<required/>' in raw
          and raw.index('<stream:features>') < raw.index('<proceed'),
          label + ': pre-TLS features: starttls required + pipelining, then proceed', raw[:300])
    fin = c.outb.read()
    flight2 = fin + c.enc(HDR + plain_auth('alice', 'alicepass') + HDR + BIND)
    c.send(flight2)
    n = c.until(lambda: app_has(c, *[HDR_RE, FEAT_RE] + post_auth_reply_res()))
    check(n == 1, label + ': header+features+success+header+features+bind result in one recv',
          'recvs=%d app=%r' % (n, c.app[:400]))
    check(re.search(r"<mechanism>PLAIN</mechanism>", c.app) is not None and c.app.count('<pipelining') == 2,
          label + ': post-TLS and post-auth features advertise pipelining')
    c.send(c.enc('</stream:stream>'))
    n = c.until(lambda: c.eof or c.closed_tls)
    check('</stream:stream>' in c.app and c.closed_tls, label + ': clean close (</stream:stream> + close_notify)',
          'n=%d eof=%s closed_tls=%s app=%r' % (n, c.eof, c.closed_tls, c.app[-100:]))
    sess = c.tls.session
    c.close()
    s = A.summary(c.conn)
    w = A.writes(c.conn)
    check(field(s, 'flights_in') == '3' and flag(s, 'header+starttls+clienthello') == 'yes'
          and flag(s, 'auth+restart+bind') == 'yes' and flag(s, 'finished+header+auth') == 'yes',
          label + ': peer saw 3 client flights, each step pipelined', s.strip())
    check(len(w) >= 2 and re.fullmatch(r"header\+features\[starttls,pipelining,c\]\+proceed\+tls-hs\[.*\]", w[0])
          and re.fullmatch(r"tls-hs-final\[.*\]\+tls-app\{header\+features\[mechanisms\([^)]*PLAIN\),pipelining,c\]"
                           r"\+success\+header\+features\[bind,pipelining,c\]\+iq-result\(bind\)\}", w[1]) is not None,
          label + ': peer answered each flight in one write', ' | '.join(w))
    return sess, s


def case_xep_literal13(A, ca):
    """Client Finished alone; the peer must restart proactively (XEP example
    'Server Proactively Restarts Stream'), before our header."""
    label = 'XEP order TLS1.3'
    c = Client(A, ca)
    c.send(full_first_flight(c))
    c.until(lambda: c.hs_done)
    c.send(c.outb.read())        # Finished, nothing else
    n = c.until(lambda: app_has(c, HDR_RE, FEAT_RE))
    check(n >= 1 and '<mechanism>' in c.app, label + ': header+features arrive without our header (proactive)',
          'n=%d app=%r' % (n, c.app[:200]))
    c.app = ''
    c.send(c.enc(HDR + plain_auth('alice', 'alicepass') + HDR + BIND))
    n = c.until(lambda: app_has(c, *post_auth_reply_res()))
    check(n == 1 and not re.match(r"\s*<\?xml[^>]*>\s*<stream:stream[^>]*>\s*<stream:features>.*<mechanism>", c.app, re.S),
          label + ': header+auth+restart+bind answered in one recv, no second post-TLS header', repr(c.app[:300]))
    c.send(c.enc('</stream:stream>'))
    c.until(lambda: c.eof)
    c.close()
    s = A.summary(c.conn)
    check(flag(s, 'auth+restart+bind') == 'yes' and field(s, 'outcome') == 'bound', label + ': peer summary', s.strip())


def case_tls12(A, ca):
    label = 'full TLS1.2'
    c = Client(A, ca, tls_max=ssl.TLSVersion.TLSv1_2)
    c.send(full_first_flight(c))
    n = c.until(lambda: c.in_tls and c.outb.pending > 0)
    check(n == 1, label + ': header+features+proceed+ServerHello..ServerHelloDone in one recv', 'n=%d' % n)
    c.send(c.outb.read())        # ClientKeyExchange, ChangeCipherSpec, Finished
    n = c.until(lambda: c.hs_done and app_has(c, HDR_RE, FEAT_RE))
    check(n == 1 and c.tls.version() == 'TLSv1.2',
          label + ': server Finished + proactive header+features in one recv (XEP: "in the same TCP packet")',
          'n=%d %s' % (n, c.tls.version()))
    c.app = ''
    c.send(c.enc(HDR + plain_auth('alice', 'alicepass') + HDR + BIND))
    n = c.until(lambda: app_has(c, *post_auth_reply_res()))
    check(n == 1, label + ': success+header+features+bind result in one recv', 'n=%d %r' % (n, c.app[:300]))
    c.send(c.enc('</stream:stream>'))
    c.until(lambda: c.eof)
    c.close()
    w = A.writes(c.conn)
    check(len(w) >= 2 and re.fullmatch(r"tls-hs-final\[.*ccs,hs\b.*\]\+tls-app\{header\+features\[mechanisms.*\}", w[1]) is not None,
          label + ': peer wrote ChangeCipherSpec+Finished and header+features in one write', ' | '.join(w))


def case_lockstep(A, ca):
    label = 'lockstep'
    c = Client(A, ca)
    ok = True
    c.send(HDR.encode())
    ok &= c.until(lambda: '</stream:features>' in c.raw.decode()) >= 1
    c.send(STARTTLS.encode())
    ok &= c.until(lambda: c.in_tls) >= 1
    check(ok and "<proceed" in c.raw.decode(), label + ': header, then starttls, each answered')
    c.send(c.client_hello())
    check(c.until(lambda: c.hs_done) >= 1, label + ': TLS handshake')
    c.send(c.outb.read() + c.enc(HDR))
    check(c.until(lambda: app_has(c, HDR_RE, FEAT_RE)) >= 1, label + ': post-TLS header+features')
    c.app = ''
    c.send(c.enc(plain_auth('alice', 'alicepass')))
    check(c.until(lambda: '<success' in c.app) >= 1, label + ': auth -> success')
    time.sleep(0.05)
    check('<stream:stream' not in c.app, label + ': no header before our restart header (RFC 6120 6.4.6)')
    c.app = ''
    c.send(c.enc(HDR))
    check(c.until(lambda: app_has(c, HDR_RE, r"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>")) >= 1,
          label + ': restart -> header+features with bind')
    c.send(c.enc(BIND))
    check(c.until(lambda: '<jid>alice@localhost/balcony</jid>' in c.app) >= 1, label + ': bind')
    c.app = ''
    c.send(c.enc("<message to='bob@localhost/x' type='chat' id='m1'><body>hi &amp; &lt;there&gt;</body></message>"))
    check(c.until(lambda: '</message>' in c.app) >= 1
          and re.search(r"from='bob@localhost/x'", c.app) and "to='alice@localhost/balcony'" in c.app
          and '<body>hi &amp; &lt;there&gt;</body>' in c.app, label + ': message echoed with to/from swapped', c.app)
    c.app = ''
    c.send(c.enc("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"))
    check(c.until(lambda: "id='p1'" in c.app) >= 1 and "type='result'" in c.app, label + ': ping answered')
    c.send(c.enc('</stream:stream>'))
    c.until(lambda: c.eof)
    c.close()
    s = A.summary(c.conn)
    check(flag(s, 'starttls+clienthello') == 'no' and flag(s, 'auth+restart+bind') == 'no'
          and field(s, 'outcome') == 'bound', label + ': peer saw no pipelining', s.strip())


def case_caps(A, ca):
    """disco#info answers and the caps ver in features match (XEP-0115 5.1,
    computed here independently)."""
    c = Client(A, ca)
    c.send(full_first_flight(c))
    c.until(lambda: c.hs_done)
    c.send(c.outb.read() + c.enc(HDR + plain_auth('bob', 'bobpass') + HDR + BIND.replace('balcony', 'caps')))
    c.until(lambda: '<jid>' in c.app)
    m = re.search(r"<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='([^']*)' ver='([^']*)'/>", c.app)
    c.app = ''
    c.send(c.enc("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"))
    c.until(lambda: '</iq>' in c.app)
    ids = re.findall(r"<identity category='([^']*)' type='([^']*)' name='([^']*)'/>", c.app)
    feats = sorted(re.findall(r"<feature var='([^']*)'/>", c.app))
    s = ''.join('%s/%s//%s<' % i for i in sorted(ids)) + ''.join(f + '<' for f in feats)
    ver = base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()
    check(m is not None and m.group(2) == ver and 'urn:xmpp:features:pipelining' in feats,
          'caps: <c ver> in features matches the disco#info answer', '%s vs %s' % (m and m.group(2), ver))
    c.send(c.enc('</stream:stream>'))
    c.until(lambda: c.eof)
    c.close()


def case_forms(A, ca):
    """Long-form <starttls></starttls> with a '>' inside an attribute value;
    <auth> followed by whitespace and an XML declaration before the restart."""
    label = 'forms'
    c = Client(A, ca)
    st = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls' x='a>b'></starttls>"
    c.send(full_first_flight(c, HDR_BARE, st))
    check(c.until(lambda: c.hs_done) == 1, label + ': <starttls ...></starttls> with a quoted > split correctly')
    c.send(c.outb.read() + c.enc(HDR_BARE + "\n<auth xmlns='%s' mechanism='PLAIN'>\n %s \n</auth>\n\n" % (
        SASL_NS, base64.b64encode(b'\0alice\0alicepass').decode()) + HDR + "\n" + BIND))
    check(c.until(lambda: '<jid>alice@localhost/balcony</jid>' in c.app) == 1,
          label + ': </auth>, whitespace, <?xml?> restart header, bind')
    c.send(c.enc('</stream:stream>'))
    c.until(lambda: c.eof)
    c.close()


def case_split_first(A, ca, step=7):
    label = 'split first flight'
    c0 = Client(A, ca)
    n_total = len(full_first_flight(c0))
    c0.close()
    A.summary(c0.conn, wait=2)
    ok = bad = two_reads = 0
    first_bad = ''
    for k in range(step, n_total, step):
        c = Client(A, ca)
        flight = full_first_flight(c)
        k = min(k, len(flight) - 1)
        c.send(flight[:k])
        time.sleep(0.003)
        c.send(flight[k:])
        good = c.until(lambda: c.hs_done) >= 1
        if good:
            c.send(c.outb.read() + c.enc(HDR + plain_auth('alice', 'alicepass') + HDR + BIND))
            good = c.until(lambda: '<jid>alice@localhost/balcony</jid>' in c.app) >= 1
        c.send(c.enc('</stream:stream>') if good else b'')
        c.until(lambda: c.eof, timeout=2)
        c.close()
        s = A.summary(c.conn)
        if field(s, 'reads') != '?' and int(field(s, 'reads')) >= 4:   # unsplit: 3 reads
            two_reads += 1
        if good and field(s, 'outcome') == 'bound':
            ok += 1
        else:
            bad += 1
            first_bad = first_bad or 'split at %d: %s' % (k, s.strip())
    check(bad == 0, label + ': %d splits (every %d bytes of %d), all bound' % (ok + bad, step, n_total), first_bad)
    check(two_reads >= (ok + bad) // 2, label + ': the peer really got two reads in %d of %d' % (two_reads, ok + bad))


def case_split_second(A, ca, step=7):
    label = 'split post-TLS flight'
    plain = HDR + plain_auth('alice', 'alicepass') + HDR + BIND
    ok = bad = 0
    first_bad = ''
    for k in range(step, len(plain), step):
        c = Client(A, ca)
        c.send(full_first_flight(c))
        good = c.until(lambda: c.hs_done) == 1
        fin = c.outb.read()
        c.send(fin + c.enc(plain[:k]))
        time.sleep(0.003)
        c.send(c.enc(plain[k:]))
        good = good and c.until(lambda: '<jid>alice@localhost/balcony</jid>' in c.app) >= 1
        c.send(c.enc('</stream:stream>'))
        c.until(lambda: c.eof, timeout=2)
        c.close()
        s = A.summary(c.conn)
        if good and field(s, 'outcome') == 'bound':
            ok += 1
        else:
            bad += 1
            first_bad = first_bad or 'split at %d: %s' % (k, s.strip())
    check(bad == 0, label + ': %d splits (every %d bytes of %d plaintext), all bound' % (ok + bad, step, len(plain)),
          first_bad)


def case_wrong_password(P, ca, pw, label):
    c = Client(P, ca)
    c.send(full_first_flight(c))
    c.until(lambda: c.hs_done)
    c.send(c.outb.read() + c.enc(HDR + plain_auth('alice', pw) + HDR + BIND))
    c.until(lambda: c.eof or c.closed_tls)
    check(re.search(r"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>\s*</stream:stream>",
                    c.app) is not None and '<jid>' not in c.app and 'bind' not in c.app.split('<failure')[1],
          label + ': failure, then </stream:stream>; the pipelined restart and bind ignored', repr(c.app[-200:]))
    check(c.eof or c.closed_tls, label + ': connection closed')
    c.close()
    s = P.summary(c.conn)
    check(field(s, 'outcome') == 'auth-failed' and '+bind' not in field(s, 'flights'), label + ': peer never bound',
          s.strip())


def scram_client_final(mech, user, pw, cfirst_bare, sfirst):
    h = 'sha256' if mech == 'SCRAM-SHA-256' else 'sha1'
    kv = dict(x.split('=', 1) for x in sfirst.split(','))
    salted = hashlib.pbkdf2_hmac(h, pw.encode(), base64.b64decode(kv['s']), int(kv['i']))
    ckey = hmac.new(salted, b'Client Key', h).digest()
    stored = hashlib.new(h, ckey).digest()
    wo = 'c=biws,r=' + kv['r']
    am = ('%s,%s,%s' % (cfirst_bare, sfirst, wo)).encode()
    proof = bytes(a ^ b for a, b in zip(ckey, hmac.new(stored, am, h).digest()))
    ssig = hmac.new(hmac.new(salted, b'Server Key', h).digest(), am, h).digest()
    return wo + ',p=' + base64.b64encode(proof).decode(), base64.b64encode(ssig).decode()


def case_B(B, ca):
    label = 'B (no pipelining feature, no PLAIN, TLS1.2 max)'
    c = Client(B, ca)
    c.send(full_first_flight(c))
    c.until(lambda: c.in_tls and c.outb.pending > 0)
    raw = c.raw.decode()
    check('pipelining' not in raw and '<proceed' in raw, label + ': no pipelining feature pre-TLS; full flight still works')
    c.send(c.outb.read())
    c.until(lambda: c.hs_done and app_has(c, FEAT_RE))
    check(c.tls.version() == 'TLSv1.2' and '<mechanism>PLAIN' not in c.app and 'SCRAM-SHA-256' in c.app
          and 'pipelining' not in c.app, label + ': TLS 1.2, SCRAM only, no pipelining', c.app[:300])
    c.app = ''
    c.send(c.enc(HDR + plain_auth('alice', 'alicepass') + HDR + BIND))
    c.until(lambda: c.eof or c.closed_tls)
    check('<invalid-mechanism/>' in c.app and '</stream:stream>' in c.app and '<jid>' not in c.app,
          label + ': pipelined PLAIN -> invalid-mechanism, clean close', c.app)
    c.close()
    for mech in ('SCRAM-SHA-256', 'SCRAM-SHA-1'):
        c = Client(B, ca)
        c.send(full_first_flight(c))
        c.until(lambda: c.in_tls and c.outb.pending > 0)
        c.send(c.outb.read())
        c.until(lambda: c.hs_done and app_has(c, FEAT_RE))
        c.app = ''
        bare = 'n=alice,r=' + secrets.token_hex(12)
        c.send(c.enc(HDR + "<auth xmlns='%s' mechanism='%s'>%s</auth>" % (
            SASL_NS, mech, base64.b64encode(('n,,' + bare).encode()).decode())))
        c.until(lambda: '</challenge>' in c.app)
        m = re.search(r"<challenge[^>]*>([^<]*)</challenge>", c.app)
        sfirst = base64.b64decode(m.group(1)).decode()
        final, ssig = scram_client_final(mech, 'alice', 'alicepass', bare, sfirst)
        c.app = ''
        c.send(c.enc("<response xmlns='%s'>%s</response>" % (SASL_NS, base64.b64encode(final.encode()).decode())
                     + HDR + BIND))
        n = c.until(lambda: app_has(c, *post_auth_reply_res()))
        m = re.search(r"<success[^>]*>([^<]*)</success>", c.app)
        v = base64.b64decode(m.group(1)).decode() if m else ''
        check(n == 1 and v == 'v=' + ssig, label + ': %s, final response+restart+bind -> one reply, server signature ok'
              % mech, 'n=%d %r' % (n, c.app[:300]))
        c.send(c.enc('</stream:stream>'))
        c.until(lambda: c.eof)
        c.close()
        s = B.summary(c.conn)
        check(flag(s, 'auth+restart+bind') == 'yes', label + ': %s peer saw response+restart+bind together' % mech,
              s.strip())


def case_pre_tls_auth(A, ca):
    c = Client(A, ca)
    c.send((HDR + plain_auth('alice', 'alicepass')).encode())
    c.until(lambda: c.eof)
    raw = c.raw.decode()
    check('<policy-violation' in raw and raw.rstrip().endswith('</stream:stream>'),
          'auth before STARTTLS: stream error, closed', raw[-200:])
    c.close()


def main():
    t0 = time.time()
    d = tempfile.mkdtemp(prefix='kl-xep0305-')
    make_certs(d)
    ca = os.path.join(d, 'ca.pem')
    A = Peer(d, 'A', '--scram', '--user', 'alice:alicepass', '--user', 'bob:bobpass')
    B = Peer(d, 'B', '--no-pipelining-feature', '--no-plain', '--tls-max', '1.2', '--user', 'alice:alicepass')
    C = Peer(d, 'C', '--fail-auth', '--user', 'alice:alicepass')
    try:
        sess, _ = case_full13(A, ca)
        _, s = case_full13(A, ca, 'full TLS1.3 resumed', session=sess)
        check(field(s, 'resumed') == 'yes', 'full TLS1.3 resumed: peer resumed the TLS session', s.strip())
        case_xep_literal13(A, ca)
        case_tls12(A, ca)
        case_lockstep(A, ca)
        case_caps(A, ca)
        case_forms(A, ca)
        case_pre_tls_auth(A, ca)
        case_split_first(A, ca)
        case_split_second(A, ca)
        case_wrong_password(A, ca, 'wrong', 'wrong password')
        case_wrong_password(C, ca, 'alicepass', '--fail-auth')
        case_B(B, ca)
    except Exception as e:  # a crash is a failure, not a traceback without a summary line
        import traceback
        traceback.print_exc()
        check(False, 'selftest ran to the end', repr(e))
    for P in (A, B, C):
        P.p.send_signal(signal.SIGTERM)
    for name, P in (('A', A), ('B', B), ('C', C)):
        try:
            rc = P.p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            P.p.kill()
            rc = 'timeout'
        check(rc == 0, 'peer %s exits 0 on SIGTERM' % name, str(rc))
    if failed:
        print('(%.1f s; logs kept in %s)' % (time.time() - t0, d))
    else:
        print('(%.1f s)' % (time.time() - t0))
        shutil.rmtree(d, ignore_errors=True)
    print('xep0305_peer: %d passed, %d failed' % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
