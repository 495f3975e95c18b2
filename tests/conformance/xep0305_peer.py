#!/usr/bin/env python3
"""xep0305_peer.py — an XMPP server implementing the *server side* of XEP-0305
(XMPP Quickstart, v0.2) over real TLS, for testing kinglet's `full`
pipelining. Written on a different stack from the client (Python's ssl with
memory BIOs, expat), so the two sides cannot share one misreading.

  xep0305_peer.py PORT [--user U:P]... (--certdir DIR | --cert F --key F)
                  [--ca F] [--log FILE] [--scram] [--no-plain]
                  [--no-pipelining-feature] [--fail-auth] [--no-proactive]
                  [--tls-max 1.2|1.3] [--tickets N] [--idle-timeout S]

  PORT 0 picks a free port. Prints "listening PORT" on stdout when ready;
  exits 0 on SIGTERM. Domain `localhost`, listens on 127.0.0.1 only, one
  thread per connection. Users default to alice:alicepass bob:bobpass
  carol:carolpass (prosody.sh's) when no --user is given. --certdir DIR uses
  DIR/localhost.pem + DIR/localhost.key (tests/prosody/prosody.sh's layout).
  --ca F: request (not require) a client certificate verified against F.

  --scram                 also offer SCRAM-SHA-256 and SCRAM-SHA-1
  --no-plain              do not offer PLAIN (implies --scram); a PLAIN <auth>
                          gets <failure><invalid-mechanism/></failure>
  --no-pipelining-feature never advertise urn:xmpp:features:pipelining (the
                          server still copes with pipelined flights)
  --fail-auth             every authentication fails (not-authorized)
  --no-proactive          after TLS, wait for the client's stream header
                          before sending ours (RFC 6120 lockstep behaviour)
  --tls-max 1.2|1.3       highest TLS version (default 1.3; minimum is 1.2)
  --tickets N             TLS 1.3 session tickets per connection (default 2;
                          resumption works across connections of one run)

What goes on the wire (each numbered server flight is ONE sendall, and the
server writes at most once per read: everything it can answer from the bytes
of one read goes out together):

  C1  [<?xml?>]<stream:stream to='localhost' ...><starttls xmlns=TLS/>
      + TLS ClientHello                         (full; lockstep/safe split it)
  S1  <?xml version='1.0'?><stream:stream from='localhost' id=.. version='1.0'
      xml:lang='en' xmlns='jabber:client' xmlns:stream=...>
      <stream:features><starttls xmlns=TLS><required/></starttls>
      <pipelining xmlns='urn:xmpp:features:pipelining'/><c xmlns=caps .../>
      </stream:features><proceed xmlns=TLS/> + TLS server flight
      (TLS 1.3: ServerHello..Finished; TLS 1.2: ServerHello..ServerHelloDone)
  The split: the XML ends at the '>' that closes <starttls .../> (or
  </starttls>); every later byte of that read, and every later read, is TLS.
  The server's own split is the same: the byte after the '>' of <proceed/>
  is the first byte of its TLS ServerHello record.

  C2  TLS 1.3: client Finished [+ stream header + <auth>PLAIN</auth>
      + restart stream header + bind <iq/>]       (full sends all of it)
      TLS 1.2: ClientKeyExchange, ChangeCipherSpec, Finished
  S2  Proactive restart (XEP-0305 "Server Proactively Restarts Stream"): the
      moment the handshake completes on the server side, the server sends its
      new stream header + features WITHOUT waiting for the client's header.
      TLS 1.2: in the same write as its ChangeCipherSpec+Finished (as the XEP
      draws it). TLS 1.3: the server's Finished went out in S1 and Python's
      ssl cannot send 0.5-RTT data, so "handshake complete" means "client
      Finished received": the write is NewSessionTicket(s) + header +
      features(mechanisms, pipelining, c) + the answers to whatever
      application data arrived in that same read. A client that sent its
      header and <auth> with its Finished thus gets header, features,
      <success/>, the next header, features and the bind result in ONE write.
      The client must cope with receiving our header before sending its own;
      when its header arrives afterwards, it is accepted and not answered
      with a second header.
  C3  (if not already in C2) <stream:stream ...><auth mechanism='PLAIN'>..
      </auth><stream:stream ...><iq type='set' id=..><bind xmlns=BIND>
      <resource>R</resource></bind></iq>
  S3  <success xmlns=SASL/><?xml version='1.0'?><stream:stream ...>
      <stream:features><bind xmlns=BIND/><pipelining/><c/></stream:features>
      <iq type='result' id=..><bind><jid>user@localhost/R</jid></bind></iq>
  The restart: the old stream's XML ends at the '>' closing </auth> (or the
  SCRAM </response>) that succeeded; the parser is replaced and the next byte
  (leading whitespace skipped) starts the new stream, which must begin with
  the client's stream header (an XML declaration is allowed). After
  <success/> the server sends its header only once the client's restart
  header has arrived (RFC 6120 6.4.6), so pipelined or not, header and
  features follow the client's header, in the same write when possible.
  Failure: <failure xmlns=SASL><not-authorized/></failure>. If the client
  pipelined a restart header (or anything but another <auth>/</stream:stream>)
  after the failed auth, the server ignores it, sends </stream:stream> and
  closes cleanly (never binding). A client that waits may retry <auth>.

  After bind: a <message> with a <body> is echoed to its sender with to/from
  swapped; <iq> ping, disco#info (server and caps node), roster get and
  legacy <session/> are answered; other iqs get service-unavailable;
  presence is ignored. The client's </stream:stream> gets </stream:stream>
  and a TLS close_notify, then the connection is closed.

Log (stderr, or --log FILE, one line each, flushed):
  conn=N read=K in=B steps=S1+S2..      a read and the protocol steps it
                                        completed (header0 starttls clienthello
                                        finished header1 auth response
                                        sasl-ok header2 bind iq message ...)
  conn=N write=K out=B parts=...        the one write answering that read
  conn=N xml-in: / xml-out: ...         the XML itself (auth payload redacted)
  conn=N summary reads=R flights_in=F writes=W tls=V resumed=yes|no
        outcome=bound|auth-failed|closed|error|eof
        header+starttls+clienthello together=yes|no
        starttls+clienthello together=yes|no
        finished+header+auth together=yes|no
        auth+restart+bind together=yes|no  flights=step+step|step|...
  flights_in counts the reads that completed at least one protocol step.
"""
import argparse
import base64
import hashlib
import hmac
import os
import pyexpat
import secrets
import signal
import socket
import ssl
import sys
import threading
import time

NS_STREAM = 'http://etherx.jabber.org/streams'
NS_CLIENT = 'jabber:client'
NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'
NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session'
NS_PIPE = 'urn:xmpp:features:pipelining'
NS_CAPS = 'http://jabber.org/protocol/caps'
NS_PING = 'urn:xmpp:ping'
NS_DISCO = 'http://jabber.org/protocol/disco#info'
NS_ROSTER = 'jabber:iq:roster'
NS_XSTREAMS = 'urn:ietf:params:xml:ns:xmpp-streams'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_XML = 'http://www.w3.org/XML/1998/namespace'
DOMAIN = 'localhost'

CAPS_NODE = 'https://github.com/kinglet/xep0305-peer'
IDENTITY = ('server', 'im', '', 'kinglet xep0305 peer')
DISCO_FEATURES = sorted([NS_DISCO, NS_PIPE, NS_PING, NS_ROSTER])


def caps_ver():
    """XEP-0115 verification string of our disco#info (fixed per build)."""
    s = '/'.join(IDENTITY[:3]) + '/' + IDENTITY[3] + '<'
    s += ''.join(f + '<' for f in DISCO_FEATURES)
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


CAPS_VER = caps_ver()


def esc(s):
    return (s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace("'", '&apos;').replace('"', '&quot;'))


class StreamError(Exception):
    def __init__(self, cond, text=''):
        super().__init__(cond + (': ' + text if text else ''))
        self.cond = cond
        self.text = text


class ParseError(Exception):
    pass


class Elem:
    """A depth>=1 element: tag is '{ns}local', attrs keyed the same way."""
    __slots__ = ('tag', 'attrs', 'children', 'text')

    def __init__(self, tag, attrs):
        self.tag, self.attrs, self.children, self.text = tag, attrs, [], ''

    def find(self, tag):
        for c in self.children:
            if c.tag == tag:
                return c
        return None

    def get(self, k, d=None):
        return self.attrs.get(k, d)


def qname(expat_name):
    ns, sep, local = expat_name.rpartition(' ')
    return '{%s}%s' % (ns, local) if sep else local


def split_tag(tag):
    if tag.startswith('{'):
        ns, local = tag[1:].split('}', 1)
        return ns, local
    return '', tag


def serialize(e, parent_ns=NS_CLIENT):
    ns, local = split_tag(e.tag)
    s = '<' + local
    if ns != parent_ns:
        s += " xmlns='%s'" % esc(ns)
    n = 0
    for k, v in e.attrs.items():
        kns, kl = split_tag(k)
        if not kns:
            s += " %s='%s'" % (kl, esc(v))
        elif kns == NS_XML:
            s += " xml:%s='%s'" % (kl, esc(v))
        else:
            s += " xmlns:a%d='%s' a%d:%s='%s'" % (n, esc(kns), n, kl, esc(v))
            n += 1
    if not e.children and not e.text:
        return s + '/>'
    s += '>' + esc(e.text)
    for c in e.children:
        s += serialize(c, ns)
    return s + '</%s>' % local


def tag_end(buf, i):
    """Index just past the '>' that closes the tag starting at buf[i] == '<'
    (quote-aware: '>' is legal inside attribute values)."""
    q = 0
    n = len(buf)
    j = i + 1
    while j < n:
        c = buf[j]
        if q:
            if c == q:
                q = 0
        elif c == 0x22 or c == 0x27:
            q = c
        elif c == 0x3e:
            return j + 1
        j += 1
    raise ParseError('tag at %d not complete' % i)


class StreamParser:
    """Incremental expat over one XML stream. Depth-1 elements are built and
    handed to conn.on_element(el), which returns True when the stream must
    stop right after that element (STARTTLS, SASL success, close): feed()
    then returns the bytes that follow the element's closing '>' exactly —
    computed from expat's CurrentByteIndex plus a quote-aware scan to the
    '>' — and the parser is discarded. Input is fed in pieces that end at a
    '>' so expat never tokenises past a boundary in the same call; events
    past a boundary are ignored anyway."""

    def __init__(self, conn):
        self.conn = conn
        p = pyexpat.ParserCreate(namespace_separator=' ')
        p.buffer_text = True
        p.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._text
        p.StartDoctypeDeclHandler = self._forbid('DTD')
        p.CommentHandler = self._forbid('comment')
        p.ProcessingInstructionHandler = self._forbid('processing instruction')
        p.EntityDeclHandler = self._forbid('entity declaration')
        self.p = p
        self.buf = bytearray()   # every byte fed (CurrentByteIndex is into this)
        self.track = True        # keep buf and compute element ends
        self.stack = []          # (Elem, empty_tag_end or None)
        self.stop_at = None

    def _forbid(self, what):
        def h(*a):
            if self.stop_at is None:
                raise StreamError('restricted-xml', what + ' not allowed')
        return h

    def _start(self, name, attrs):
        if self.stop_at is not None:
            return
        empty_end = None
        if self.track:
            i = self.p.CurrentByteIndex
            e = tag_end(self.buf, i)
            if self.buf[e - 2] == 0x2f:   # '/>'
                empty_end = e
        tag = qname(name)
        at = {qname(k): v for k, v in attrs.items()}
        depth = len(self.stack)
        el = Elem(tag, at)
        if depth == 0:
            if tag != '{%s}stream' % NS_STREAM:
                raise StreamError('invalid-namespace', 'root is ' + tag)
            self.stack.append((el, empty_end))
            self.conn.on_stream_start(at)
            return
        if depth == 1:
            self.conn.on_child_start(tag)
            if self.stop_at is not None:
                return
        else:
            self.stack[-1][0].children.append(el)
        self.stack.append((el, empty_end))

    def _end(self, name):
        if self.stop_at is not None:
            return
        el, empty_end = self.stack.pop()
        end = None
        if self.track:
            end = empty_end if empty_end is not None else tag_end(self.buf, self.p.CurrentByteIndex)
        depth = len(self.stack)
        if depth == 0:
            if self.conn.on_stream_end():
                self.stop_at = end if end is not None else -1
        elif depth == 1:
            if self.conn.on_element(el):
                self.stop_at = end if end is not None else -1

    def _text(self, data):
        if self.stop_at is not None or len(self.stack) < 2:
            return   # whitespace between top-level elements
        self.stack[-1][0].text += data

    def feed(self, data):
        """Returns None when all of data was consumed, else the bytes after
        the stop boundary."""
        if self.track:
            self.buf += data
        pos, n = 0, len(data)
        while pos < n:
            j = data.find(b'>', pos)
            e = n if j < 0 else j + 1
            try:
                self.p.Parse(data[pos:e], False)
            except pyexpat.ExpatError as ex:
                if self.stop_at is None:
                    raise ParseError(str(ex))
            pos = e
            if self.stop_at is not None:
                if self.stop_at < 0:
                    return b''
                return bytes(self.buf[self.stop_at:])
        return None


class Log:
    def __init__(self, path):
        self.f = open(path, 'a', buffering=1) if path else sys.stderr
        self.lock = threading.Lock()

    def __call__(self, line):
        with self.lock:
            self.f.write('%.3f %s\n' % (time.time(), line))
            self.f.flush()


def tls_records(b):
    """'N rec' description of a run of TLS records."""
    i, n, types = 0, 0, []
    while i + 5 <= len(b):
        t = b[i]
        ln = int.from_bytes(b[i + 3:i + 5], 'big')
        types.append({20: 'ccs', 21: 'alert', 22: 'hs', 23: 'app'}.get(t, str(t)))
        i += 5 + ln
        n += 1
    return '%drec:%s' % (n, ','.join(types))


class Conn:
    def __init__(self, srv, sock, num):
        self.srv, self.sock, self.num = srv, sock, num
        self.a = srv.args
        self.log = lambda s: srv.log('conn=%d %s' % (num, s))
        self.stream_no = 0          # 0 before TLS, 1 after TLS, 2 after SASL
        self.parser = StreamParser(self)
        self.switch = None          # 'tls' | 'restart' | 'close' at a boundary
        self.tls = self.tls_in = self.tls_out = None
        self.hs_done = False
        self.tls_output_seen = False
        self.server_header_sent = False
        self.client_header_seen = False
        self.user = None
        self.jid = None
        self.auth_failed = False
        self.failures = 0
        self.scram = None
        self.plain_wait = False
        self.closing = False
        self.sent_close = False
        self.outcome = 'eof'
        self.client_from = None
        # per read
        self.out = bytearray()
        self.app = []               # XML waiting to be encrypted at flush
        self.parts = []
        self.steps = []
        self.flights = []           # list of step lists, per read with steps
        self.reads = self.writes = 0

    # ---- output -----------------------------------------------------------
    def send(self, xml, desc):
        b = xml.encode()
        self.log('xml-out: ' + xml[:3000])
        if self.tls is None:
            self.out += b
            self.parts.append(desc)
        else:
            self.app.append(b)
            self.parts.append(('app', desc))

    def take_tls(self, desc):
        b = self.tls_out.read()
        if b:
            self.out += b
            self.parts.append('%s[%s;%dB]' % (desc, tls_records(b), len(b)))
        return b

    def flush(self):
        if self.app:
            self.tls.write(b''.join(self.app))
            self.app = []
        if self.tls is not None and self.closing and self.hs_done:
            try:
                self.tls.unwrap()
            except (ssl.SSLError, ValueError, OSError):
                pass
        if self.tls is not None:
            b = self.tls_out.read()
            if b:
                self.out += b
        if not self.out:
            self.parts = []
            return
        # describe: group app parts
        d, grp = [], []
        for p in self.parts + [None]:
            if isinstance(p, tuple):
                grp.append(p[1])
                continue
            if grp:
                d.append('tls-app{' + '+'.join(grp) + '}')
                grp = []
            if p is not None:
                d.append(p)
        self.writes += 1
        self.log('write=%d out=%d parts=%s' % (self.writes, len(self.out), '+'.join(d)))
        try:
            self.sock.sendall(bytes(self.out))
        except OSError as e:
            self.log('send failed: %s' % e)
            self.closing = True
        self.out = bytearray()
        self.parts = []

    def header(self):
        to = " to='%s'" % esc(self.client_from) if self.client_from else ''
        sid = base64.b64encode(secrets.token_bytes(12)).decode()
        self.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' id='%s' from='%s'%s "
                  "version='1.0' xml:lang='en'>" % (sid, DOMAIN, to), 'header')
        self.server_header_sent = True

    def features(self):
        f, names = [], []
        if self.stream_no == 0:
            f.append("<starttls xmlns='%s'><required/></starttls>" % NS_TLS)
            names.append('starttls')
        elif self.stream_no == 1:
            mechs = []
            if self.a.scram:
                mechs += ['SCRAM-SHA-256', 'SCRAM-SHA-1']
            if not self.a.no_plain:
                mechs.append('PLAIN')
            f.append("<mechanisms xmlns='%s'>%s</mechanisms>" % (
                NS_SASL, ''.join('<mechanism>%s</mechanism>' % m for m in mechs)))
            names.append('mechanisms(%s)' % ','.join(mechs))
        else:
            f.append("<bind xmlns='%s'/>" % NS_BIND)
            names.append('bind')
        if not self.a.no_pipelining_feature:
            f.append("<pipelining xmlns='%s'/>" % NS_PIPE)
            names.append('pipelining')
        f.append("<c xmlns='%s' hash='sha-1' node='%s' ver='%s'/>" % (NS_CAPS, CAPS_NODE, CAPS_VER))
        names.append('c')
        self.send('<stream:features>%s</stream:features>' % ''.join(f),
                  'features[%s]' % ','.join(names))

    def stream_error(self, cond, text=''):
        t = "<text xmlns='%s'>%s</text>" % (NS_XSTREAMS, esc(text)) if text else ''
        if not self.server_header_sent:
            self.header()
        self.send("<stream:error><%s xmlns='%s'/>%s</stream:error></stream:stream>"
                  % (cond, NS_XSTREAMS, t), 'stream-error(%s)' % cond)
        self.sent_close = True
        self.closing = True
        self.outcome = 'error'

    def close_stream(self, why):
        if not self.sent_close:
            self.send('</stream:stream>', 'close')
            self.sent_close = True
        self.closing = True
        self.log('closing: ' + why)

    # ---- parser callbacks -------------------------------------------------
    def step(self, s):
        self.steps.append(s)

    def on_stream_start(self, attrs):
        self.step('header%d' % self.stream_no)
        self.client_header_seen = True
        to = attrs.get('to')
        self.client_from = attrs.get('from') or self.client_from
        self.log('xml-in: stream header (stream %d) to=%s from=%s version=%s' % (
            self.stream_no, to, attrs.get('from'), attrs.get('version')))
        if to != DOMAIN:
            raise StreamError('host-unknown', 'to=%r' % to)
        if not self.server_header_sent:
            self.header()
            self.features()

    def on_child_start(self, tag):
        if self.auth_failed and tag == '{%s}stream' % NS_STREAM:
            # a restart header pipelined behind an <auth> that failed
            self.step('restart-ignored')
            self.close_stream('restart header pipelined after a failed auth: ignored')
            self.parser.stop_at = -1
            self.switch = 'close'

    def on_stream_end(self):
        self.step('close')
        self.outcome = 'closed' if self.jid is None else 'bound'
        self.close_stream('client closed the stream')
        self.switch = 'close'
        return True

    def on_element(self, el):
        ns, local = split_tag(el.tag)
        if local == 'auth' and ns == NS_SASL:
            self.log('xml-in: <auth mechanism=%r>[%d chars]</auth>' % (el.get('mechanism'), len(el.text)))
        else:
            self.log('xml-in: ' + serialize(el)[:3000])
        if self.stream_no == 0:
            if el.tag == '{%s}starttls' % NS_TLS:
                self.step('starttls')
                self.send("<proceed xmlns='%s'/>" % NS_TLS, 'proceed')
                self.switch = 'tls'
                return True
            raise StreamError('policy-violation', 'STARTTLS is required first')
        if self.stream_no == 1:
            if ns == NS_SASL and local in ('auth', 'response', 'abort'):
                self.step(local)
                ok = self.sasl(el, local)
                if ok:
                    self.step('sasl-ok')
                    self.switch = 'restart'
                    return True
                return False
            if self.auth_failed:
                self.close_stream('%s after a failed auth: ignored' % local)
                self.switch = 'close'
                return True
            raise StreamError('not-authorized', '%s before authentication' % local)
        return self.stanza(el, ns, local)

    # ---- SASL ---------------------------------------------------------------
    def sasl_fail(self, cond):
        self.send("<failure xmlns='%s'><%s/></failure>" % (NS_SASL, cond), 'failure(%s)' % cond)
        self.auth_failed = True
        self.failures += 1
        self.outcome = 'auth-failed'
        self.scram = None
        self.plain_wait = False
        if self.failures >= 3:
            self.close_stream('too many authentication failures')
            self.switch = 'close'
        return False

    def sasl_success(self, user, extra=''):
        self.user = user
        self.auth_failed = False
        self.send("<success xmlns='%s'>%s</success>" % (NS_SASL, extra) if extra
                  else "<success xmlns='%s'/>" % NS_SASL, 'success')
        self.stream_no = 2
        self.server_header_sent = False
        self.client_header_seen = False
        return True

    def mechs(self):
        m = []
        if self.a.scram:
            m += ['SCRAM-SHA-256', 'SCRAM-SHA-1']
        if not self.a.no_plain:
            m.append('PLAIN')
        return m

    def sasl(self, el, local):
        if local == 'abort':
            return self.sasl_fail('aborted')
        text = el.text.strip()
        try:
            data = b'' if text in ('', '=') else base64.b64decode(text, validate=True)
        except ValueError:
            return self.sasl_fail('incorrect-encoding')
        if local == 'auth':
            mech = el.get('mechanism')
            if mech not in self.mechs():
                return self.sasl_fail('invalid-mechanism')
            if mech == 'PLAIN':
                if not text:
                    self.plain_wait = True
                    self.send("<challenge xmlns='%s'/>" % NS_SASL, 'challenge')
                    return False
                return self.plain(data)
            return self.scram_first(mech, data)
        # response
        if self.plain_wait:
            self.plain_wait = False
            return self.plain(data)
        if self.scram:
            return self.scram_final(data)
        return self.sasl_fail('malformed-request')

    def check(self, user, pw):
        return not self.a.fail_auth and user in self.srv.users and hmac.compare_digest(
            self.srv.users[user].encode(), pw.encode())

    def plain(self, data):
        try:
            authz, user, pw = data.decode('utf-8').split('\0')
        except ValueError:
            return self.sasl_fail('malformed-request')
        if authz and authz not in (user, '%s@%s' % (user, DOMAIN)):
            return self.sasl_fail('invalid-authzid')
        if not self.check(user, pw):
            return self.sasl_fail('not-authorized')
        return self.sasl_success(user)

    def scram_first(self, mech, data):
        hname = 'sha256' if mech == 'SCRAM-SHA-256' else 'sha1'
        try:
            msg = data.decode('utf-8')
            gs2, rest = msg[:3], msg
            if msg.startswith('n,,') or msg.startswith('y,,'):
                bare = msg[3:]
            else:
                return self.sasl_fail('malformed-request')
            kv = dict(x.split('=', 1) for x in bare.split(','))
            user, cnonce = kv['n'], kv['r']
        except (ValueError, KeyError, UnicodeDecodeError):
            return self.sasl_fail('malformed-request')
        snonce = cnonce + base64.b64encode(secrets.token_bytes(18)).decode()
        salt = hashlib.sha256(('salt:' + user).encode()).digest()[:16]
        it = 4096
        sfirst = 'r=%s,s=%s,i=%d' % (snonce, base64.b64encode(salt).decode(), it)
        self.scram = dict(h=hname, user=user, bare=bare, sfirst=sfirst, nonce=snonce,
                          salt=salt, it=it, gs2=gs2)
        self.send("<challenge xmlns='%s'>%s</challenge>" % (
            NS_SASL, base64.b64encode(sfirst.encode()).decode()), 'challenge')
        return False

    def scram_final(self, data):
        s, self.scram = self.scram, None
        try:
            msg = data.decode('utf-8')
            without_proof, _, proof = msg.rpartition(',p=')
            kv = dict(x.split('=', 1) for x in without_proof.split(','))
            proof = base64.b64decode(proof)
        except (ValueError, UnicodeDecodeError):
            return self.sasl_fail('malformed-request')
        if kv.get('r') != s['nonce'] or kv.get('c') != base64.b64encode(s['gs2'].encode()).decode():
            return self.sasl_fail('not-authorized')
        pw = self.srv.users.get(s['user'])
        if pw is None or self.a.fail_auth:
            return self.sasl_fail('not-authorized')
        h = s['h']
        salted = hashlib.pbkdf2_hmac(h, pw.encode(), s['salt'], s['it'])
        ckey = hmac.new(salted, b'Client Key', h).digest()
        stored = hashlib.new(h, ckey).digest()
        authmsg = ('%s,%s,%s' % (s['bare'], s['sfirst'], without_proof)).encode()
        csig = hmac.new(stored, authmsg, h).digest()
        if len(proof) != len(csig) or bytes(a ^ b for a, b in zip(proof, csig)) != ckey:
            return self.sasl_fail('not-authorized')
        skey = hmac.new(salted, b'Server Key', h).digest()
        ssig = hmac.new(skey, authmsg, h).digest()
        v = base64.b64encode(b'v=' + base64.b64encode(ssig)).decode()
        return self.sasl_success(s['user'], v)

    # ---- stanzas (stream 2) ---------------------------------------------------
    def iq_result(self, el, payload=''):
        to = " to='%s'" % esc(el.get('from')) if el.get('from') else ''
        frm = " from='%s'" % esc(el.get('to')) if el.get('to') else ''
        self.send("<iq type='result' id='%s'%s%s>%s</iq>" % (esc(el.get('id', '')), frm, to, payload),
                  'iq-result')

    def iq_error(self, el, cond, typ='cancel'):
        self.send("<iq type='error' id='%s'><error type='%s'><%s xmlns='%s'/></error></iq>"
                  % (esc(el.get('id', '')), typ, cond, NS_STANZAS), 'iq-error(%s)' % cond)

    def stanza(self, el, ns, local):
        if ns != NS_CLIENT:
            raise StreamError('unsupported-stanza-type', el.tag)
        if local == 'iq':
            typ = el.get('type')
            q = el.children[0] if el.children else None
            qns = split_tag(q.tag)[0] if q is not None else ''
            if typ == 'set' and q is not None and q.tag == '{%s}bind' % NS_BIND:
                self.step('bind')
                if self.jid is not None:
                    self.iq_error(el, 'not-allowed')
                    return False
                r = q.find('{%s}resource' % NS_BIND)
                res = r.text.strip() if r is not None and r.text.strip() else 'peer-%d' % self.num
                self.jid = '%s@%s/%s' % (self.user, DOMAIN, res)
                self.send("<iq type='result' id='%s'><bind xmlns='%s'><jid>%s</jid></bind></iq>"
                          % (esc(el.get('id', '')), NS_BIND, esc(self.jid)), 'iq-result(bind)')
                self.parser.track = False
                self.outcome = 'bound'
                return False
            if self.jid is None:
                self.step('iq-before-bind')
                self.iq_error(el, 'not-authorized', 'auth')
                return False
            self.step('iq')
            if q is not None and q.tag == '{%s}session' % NS_SESSION:
                self.iq_result(el)
            elif typ == 'get' and qns == NS_PING:
                self.iq_result(el)
            elif typ == 'get' and qns == NS_DISCO and el.get('to') in (None, DOMAIN):
                node = q.get('node')
                na = " node='%s'" % esc(node) if node else ''
                body = "<identity category='%s' type='%s' name='%s'/>" % (
                    IDENTITY[0], IDENTITY[1], esc(IDENTITY[3]))
                body += ''.join("<feature var='%s'/>" % f for f in DISCO_FEATURES)
                self.iq_result(el, "<query xmlns='%s'%s>%s</query>" % (NS_DISCO, na, body))
            elif typ == 'get' and qns == NS_ROSTER:
                self.iq_result(el, "<query xmlns='%s'/>" % NS_ROSTER)
            elif typ in ('get', 'set'):
                self.iq_error(el, 'service-unavailable')
            return False
        if self.jid is None:
            raise StreamError('not-authorized', local + ' before bind')
        if local == 'message':
            self.step('message')
            if el.find('{%s}body' % NS_CLIENT) is not None and el.get('type') != 'error':
                el.attrs['from'], el.attrs['to'] = (el.get('to') or '%s@%s' % (self.user, DOMAIN)), self.jid
                self.send(serialize(el), 'message(echo)')
            return False
        if local == 'presence':
            self.step('presence')
            return False
        raise StreamError('unsupported-stanza-type', local)

    # ---- bytes ----------------------------------------------------------------
    def feed_xml(self, data):
        while data and not self.closing:
            rem = self.parser.feed(data)
            if rem is None:
                return
            sw, self.switch = self.switch, None
            if sw == 'tls':
                self.start_tls(rem)
                return
            if sw == 'restart':
                self.parser = StreamParser(self)
                data = rem.lstrip(b' \t\r\n')
                continue
            return   # close: the rest is ignored

    def start_tls(self, rem):
        self.tls_in, self.tls_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = self.srv.ctx.wrap_bio(self.tls_in, self.tls_out, server_side=True)
        self.stream_no = 1
        self.server_header_sent = False
        self.client_header_seen = False
        self.parser = StreamParser(self)
        self.log('tls: starting; %d byte(s) after <starttls/> in this read go to TLS' % len(rem))
        if rem:
            self.tls_data(rem)

    def tls_data(self, data):
        self.tls_in.write(data)
        if not self.hs_done:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                if self.take_tls('tls-hs') and not self.tls_output_seen:
                    self.tls_output_seen = True
                    self.step('clienthello')
                return
            except ssl.SSLError as e:
                self.log('tls: handshake failed: %s' % e)
                self.take_tls('tls-alert')
                self.closing = True
                self.outcome = 'error'
                return
            self.hs_done = True
            if not self.tls_output_seen:     # should not happen
                self.tls_output_seen = True
                self.step('clienthello')
            self.step('finished')
            self.log('tls: handshake complete: %s %s resumed=%s' % (
                self.tls.version(), self.tls.cipher()[0], self.tls.session_reused))
            self.take_tls('tls-hs-final')
            if not self.a.no_proactive:
                self.header()
                self.features()
        while not self.closing:
            try:
                d = self.tls.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.log('tls: close_notify from client')
                if not self.sent_close:
                    self.close_stream('TLS closed by client')
                self.closing = True
                break
            except ssl.SSLError as e:
                self.log('tls: error: %s' % e)
                self.closing = True
                self.outcome = 'error'
                break
            if not d:
                break
            self.feed_xml(d)

    def handle(self, data):
        try:
            if self.tls is None:
                self.feed_xml(data)
            else:
                self.tls_data(data)
        except StreamError as e:
            self.log('stream error: %s' % e)
            self.stream_error(e.cond, e.text)
        except ParseError as e:
            if self.auth_failed:
                self.step('restart-ignored')
                self.close_stream('XML after a failed auth (pipelined restart?): ignored')
            else:
                self.log('parse error: %s' % e)
                self.stream_error('not-well-formed', str(e))

    def run(self):
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(self.a.idle_timeout)
        self.log('accepted')
        try:
            while not self.closing:
                try:
                    data = self.sock.recv(65536)
                except socket.timeout:
                    self.log('idle timeout')
                    self.outcome = 'timeout'
                    break
                except OSError as e:
                    self.log('recv failed: %s' % e)
                    break
                if not data:
                    self.log('eof from client')
                    break
                self.reads += 1
                self.steps = []
                self.handle(data)
                self.log('read=%d in=%d steps=%s' % (self.reads, len(data), '+'.join(self.steps) or '-'))
                if self.steps:
                    self.flights.append(self.steps)
                self.flush()
        finally:
            self.summary()
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()

    def together(self, *names):
        return 'yes' if any(all(n in f for n in names) for f in self.flights) else 'no'

    def summary(self):
        ver = self.tls.version() if self.tls is not None and self.hs_done else 'none'
        res = 'yes' if self.tls is not None and self.hs_done and self.tls.session_reused else 'no'
        arb = 'no'
        for f in self.flights:
            if 'sasl-ok' in f and 'bind' in f and 'header2' in f:
                arb = 'yes'
        self.log('summary reads=%d flights_in=%d writes=%d tls=%s resumed=%s outcome=%s '
                 'header+starttls+clienthello together=%s starttls+clienthello together=%s '
                 'finished+header+auth together=%s auth+restart+bind together=%s flights=%s' % (
                     self.reads, len(self.flights), self.writes, ver, res, self.outcome,
                     self.together('header0', 'starttls', 'clienthello'),
                     self.together('starttls', 'clienthello'),
                     self.together('finished', 'header1', 'auth'), arb,
                     '|'.join('+'.join(f) for f in self.flights)))


class Server:
    def __init__(self, args):
        self.args = args
        self.log = Log(args.log)
        self.users = {}
        for u in args.user or ['alice:alicepass', 'bob:bobpass', 'carol:carolpass']:
            name, _, pw = u.partition(':')
            self.users[name] = pw
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2 if args.tls_max == '1.2' else ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(args.cert, args.key)
        ctx.num_tickets = args.tickets
        if args.ca:
            ctx.load_verify_locations(args.ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        self.ctx = ctx

    def serve(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(('127.0.0.1', self.args.port))
        ls.listen(16)
        port = ls.getsockname()[1]
        self.log('listening on 127.0.0.1:%d users=%s options=%s caps-ver=%s' % (
            port, ','.join(sorted(self.users)), ' '.join(
                o for o in ('scram', 'no_plain', 'no_pipelining_feature', 'fail_auth', 'no_proactive')
                if getattr(self.args, o)) or '-', CAPS_VER))
        print('listening %d' % port, flush=True)
        n = 0
        while True:
            s, _ = ls.accept()
            n += 1
            threading.Thread(target=Conn(self, s, n).run, daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('port', type=int)
    ap.add_argument('--user', action='append', help='USER:PASSWORD (repeatable)')
    ap.add_argument('--certdir', help='DIR with localhost.pem and localhost.key')
    ap.add_argument('--cert')
    ap.add_argument('--key')
    ap.add_argument('--ca')
    ap.add_argument('--log')
    ap.add_argument('--scram', action='store_true')
    ap.add_argument('--no-plain', action='store_true')
    ap.add_argument('--no-pipelining-feature', action='store_true')
    ap.add_argument('--fail-auth', action='store_true')
    ap.add_argument('--no-proactive', action='store_true')
    ap.add_argument('--tls-max', choices=['1.2', '1.3'], default='1.3')
    ap.add_argument('--tickets', type=int, default=2)
    ap.add_argument('--idle-timeout', type=float, default=60.0)
    a = ap.parse_args()
    if a.certdir:
        a.cert = a.cert or os.path.join(a.certdir, 'localhost.pem')
        a.key = a.key or os.path.join(a.certdir, 'localhost.key')
    if not a.cert or not a.key:
        ap.error('give --certdir DIR or --cert and --key')
    if a.no_plain:
        a.scram = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        Server(a).serve()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
