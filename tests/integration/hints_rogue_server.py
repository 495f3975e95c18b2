#!/usr/bin/env python3
"""hints_rogue_server.py — the server a planted TLS session leads to, for
tests/integration/hints_auth_test.sh. Written on Python's ssl (OpenSSL), not
on the client's mbedTLS, and it logs every plaintext byte it receives, so
the test can prove from the server side what left the device.

  hints_rogue_server.py --cert F --key F --direct PORT --starttls PORT --log FILE

Listens on 127.0.0.1 only: PORT for direct TLS (XEP-0368) and PORT for
STARTTLS (answers the stream header with <starttls/> required and
<starttls/> with <proceed/>). One SSLContext for both, TLS 1.2-1.3 with
session tickets, so a ticket issued on one connection resumes on any later
one (that is how the test obtains a genuine session to plant). After TLS it
answers nothing: it records what arrives until the client closes or 3 s pass.

Log (one line each, flushed):
  conn=N port=P mode=direct|starttls accepted
  conn=N plain-in: b'...'          bytes before TLS (STARTTLS), as received
  conn=N tls-ok version=V resumed=0|1
  conn=N tls-failed: REASON        e.g. the client rejected our certificate
  conn=N tls-in: b'...'            decrypted bytes, as received
  conn=N closed
Prints "listening" on stdout once both ports listen; exits on SIGTERM.
"""
import argparse
import signal
import socket
import ssl
import sys
import threading
import time

HDR = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
       b"xmlns:stream='http://etherx.jabber.org/streams' id='r1' from='localhost' version='1.0'>")
FEATURES = (b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
            b"</stream:features>")
PROCEED = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"

lock = threading.Lock()
counter = [0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cert', required=True)
    ap.add_argument('--key', required=True)
    ap.add_argument('--direct', type=int, required=True)
    ap.add_argument('--starttls', type=int, required=True)
    ap.add_argument('--log', required=True)
    args = ap.parse_args()
    logf = open(args.log, 'a', buffering=1)

    def log(line):
        with lock:
            logf.write(line + '\n')
            logf.flush()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)

    def read_until_idle(read, n, tag, idle=3.0):
        deadline = time.time() + idle
        while time.time() < deadline:
            try:
                d = read()
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except (OSError, ssl.SSLError) as e:
                log('conn=%d %s-error: %s' % (n, tag, e))
                return
            if not d:
                return
            log('conn=%d %s: %r' % (n, tag, d))
            deadline = time.time() + idle

    def serve(sock, port, mode):
        with lock:
            counter[0] += 1
            n = counter[0]
        log('conn=%d port=%d mode=%s accepted' % (n, port, mode))
        sock.settimeout(0.2)
        try:
            if mode == 'starttls':
                got, sent_hdr, deadline = b'', False, time.time() + 5
                while b'<starttls' not in got and time.time() < deadline:
                    try:
                        d = sock.recv(4096)
                    except socket.timeout:
                        continue
                    if not d:
                        log('conn=%d closed before TLS' % n)
                        return
                    log('conn=%d plain-in: %r' % (n, d))
                    got += d
                    if b'<stream:stream' in got and not sent_hdr:
                        sock.sendall(HDR + FEATURES)
                        sent_hdr = True
                if b'<starttls' not in got:
                    log('conn=%d no starttls' % n)
                    return
                sock.sendall(PROCEED)
            sock.settimeout(5)
            try:
                tls = ctx.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError) as e:
                log('conn=%d tls-failed: %s' % (n, e))
                return
            log('conn=%d tls-ok version=%s resumed=%d' % (n, tls.version(), 1 if tls.session_reused else 0))
            tls.settimeout(0.2)
            read_until_idle(lambda: tls.recv(4096), n, 'tls-in')
            try:
                tls.close()
            except OSError:
                pass
        finally:
            log('conn=%d closed' % n)
            try:
                sock.close()
            except OSError:
                pass

    def listener(port, mode):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('127.0.0.1', port))
        s.listen(8)
        return s

    listeners = [(listener(args.direct, 'direct'), args.direct, 'direct'),
                 (listener(args.starttls, 'starttls'), args.starttls, 'starttls')]

    def accept_loop(s, port, mode):
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c, port, mode), daemon=True).start()

    for s, port, mode in listeners:
        threading.Thread(target=accept_loop, args=(s, port, mode), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print('listening', flush=True)
    while True:
        time.sleep(3600)


if __name__ == '__main__':
    main()
