/* Unit tests: the WebSocket framing of the XMPP stream (core/kl_ws.c),
 * RFC 6455 / RFC 7395. Server bytes are fed whole, split at every byte and
 * one byte at a time, into output buffers of every small size; client
 * frames are decoded (mask checked) by an independent decoder here; the
 * accept key is checked with RFC 6455's example through a SHA-1 written
 * here; and the real engine logs in over it against a scripted server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinglet/kinglet.h"
#include "kinglet/kl_ws.h"
#include "kt.h"
#include "kt_sha1.h" /* for the accept key */

static int hash_calls, hash_fail;
static int test_hash(void *ctx, kl_hash_alg_t alg, const uint8_t *data, size_t len, uint8_t *out)
{
    (void)ctx;
    hash_calls++;
    if (hash_fail || alg != KL_HASH_SHA1)
        return -1;
    sha1(data, len, out);
    return 0;
}

/* Entropy: the scripted bytes first (the RFC's nonce), then kt_random. */
static uint8_t script[64];
static size_t script_len, script_pos;
static int rnd_fail, rnd_calls;
static int rnd(void *ctx, uint8_t *out, size_t len)
{
    size_t i;
    (void)ctx;
    rnd_calls++;
    if (rnd_fail)
        return -1;
    for (i = 0; i < len; i++) {
        if (script_pos < script_len)
            out[i] = script[script_pos++];
        else
            kt_random(NULL, out + i, 1);
    }
    return 0;
}

static const kl_crypto_t crypto = {NULL, test_hash, NULL, NULL, NULL};

static void config(kl_ws_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->host = "localhost";
    c->port = 5280;
    c->path = "/xmpp-websocket";
    c->random = rnd;
    c->crypto = &crypto;
}

static void use_nonce(void)
{
    memcpy(script, "the sample nonce", 16);
    script_len = 16;
    script_pos = 0;
}

#define BIG 300000
static uint8_t got[BIG], wire[BIG + 4096], payload[BIG];
static kl_ws_t ws;

static size_t response(char *buf, size_t cap, const char *accept, const char *extra)
{
    return (size_t)snprintf(buf, cap,
                            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: xmpp\r\n%s\r\n",
                            accept, extra);
}

/* Feed wire[0..n) in pieces of `step` (0: as much as possible) into output
 * room of at most `ocap` per call until nothing moves. Output in got[],
 * its length in *glen. Returns the last status. */
static int feed(const uint8_t *w, size_t n, size_t step, size_t ocap, size_t *glen)
{
    size_t off = 0, g = 0;
    int st = KL_OK, guard;
    for (guard = 0; guard < 4000000; guard++) {
        size_t piece = step ? (n - off < step ? n - off : step) : n - off;
        size_t room = BIG - g < ocap ? BIG - g : ocap, c = 99, p = 99;
        st = kl_ws_read(&ws, w + off, piece, &c, got + g, room, &p);
        if (c > piece || p > room) {
            KT_CHECK(c <= piece && p <= room);
            break;
        }
        if (st < 0) {
            KT_CHECK_EQ(p, 0); /* an error comes with nothing produced */
            off += c;
            break;
        }
        off += c;
        g += p;
        if (!c && !p)
            break; /* nothing moves */
    }
    /* nothing left for a call without new bytes, unless there was no room */
    KT_CHECK(!kl_ws_read_pending(&ws) || ocap == 0 || g == BIG);
    *glen = g;
    return st;
}

/* A fresh codec with the RFC nonce that read a valid 101 response. */
static void open_ws(void)
{
    kl_ws_config_t c;
    char resp[512];
    size_t n, g;
    config(&c);
    use_nonce();
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_OK);
    n = response(resp, sizeof resp, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "");
    KT_CHECK_EQ(feed((const uint8_t *)resp, n, 0, BIG, &g), KL_OK);
    KT_CHECK_EQ(g, 0);
    KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_OPEN);
}

/* A server frame (unmasked unless mask): lenform 0 minimal, 16 or 64 forced. */
static size_t sframe(uint8_t *b, int fin, int op, const void *p, size_t n, int lenform)
{
    size_t h = 2, i;
    b[0] = (uint8_t)((fin ? 0x80 : 0) | op);
    if (lenform == 0 && n < 126) {
        b[1] = (uint8_t)n;
    } else if (lenform != 64 && n <= 0xffff) {
        b[1] = 126;
        b[2] = (uint8_t)(n >> 8);
        b[3] = (uint8_t)n;
        h = 4;
    } else {
        b[1] = 127;
        for (i = 0; i < 8; i++)
            b[2 + i] = (uint8_t)((unsigned long long)n >> (56 - 8 * i));
        h = 10;
    }
    memcpy(b + h, p, n);
    return h + n;
}

static size_t text(uint8_t *b, const char *s) { return sframe(b, 1, 1, s, strlen(s), 0); }

/* ---- client frames, decoded independently ----------------------------------- */

typedef struct {
    int fin, op;
    size_t len;
    const uint8_t *data; /* unmasked, in pool */
    uint8_t key[4];
} cframe_t;

static uint8_t pool[BIG + 4096];

/* Decode every frame in w[0..n): each must be masked. Returns the count,
 * -1 if malformed, -2 if the bytes end inside a frame. */
static int decode(const uint8_t *w, size_t n, cframe_t *f, int max)
{
    size_t off = 0, pl = 0;
    int k = 0;
    while (off < n) {
        size_t h = 2, len, i;
        if (k == max || n - off < 2)
            return -2;
        if (!(w[off + 1] & 0x80) || (w[off] & 0x70))
            return -1;
        len = w[off + 1] & 127;
        if (len == 126) {
            if (n - off < 4)
                return -2;
            len = (size_t)w[off + 2] << 8 | w[off + 3];
            h = 4;
        } else if (len == 127) {
            if (n - off < 10)
                return -2;
            for (len = 0, i = 0; i < 8; i++)
                len = len << 8 | w[off + 2 + i];
            h = 10;
        }
        if (n - off < h + 4 + len)
            return -2;
        f[k].fin = w[off] >> 7;
        f[k].op = w[off] & 15;
        f[k].len = len;
        memcpy(f[k].key, w + off + h, 4);
        for (i = 0; i < len; i++)
            pool[pl + i] = w[off + h + 4 + i] ^ f[k].key[i & 3];
        f[k].data = pool + pl;
        pl += len;
        off += h + 4 + len;
        k++;
    }
    return k;
}

static int frame_is(const cframe_t *f, int op, const char *s)
{
    return f->fin == 1 && f->op == op && f->len == strlen(s) && memcmp(f->data, s, f->len) == 0;
}

/* kl_ws_write over xml with output room `ocap` per call until nothing
 * moves; wire bytes in wire[], *wn. *used: input consumed. */
static int write_all(const char *xml, size_t n, size_t ocap, size_t *wn, size_t *used)
{
    size_t off = 0, w = 0;
    int st = KL_OK, guard;
    for (guard = 0; guard < 4000000; guard++) {
        size_t c = 99, p = 99, room = sizeof wire - w < ocap ? sizeof wire - w : ocap;
        st = kl_ws_write(&ws, (const uint8_t *)xml + off, n - off, &c, wire + w, room, &p);
        if (c > n - off || p > room) {
            KT_CHECK(c <= n - off && p <= room);
            break;
        }
        if (st < 0) {
            KT_CHECK_EQ(p, 0);
            off += c;
            break;
        }
        off += c;
        w += p;
        if (!c && !p)
            break;
    }
    *wn = w;
    if (used)
        *used = off;
    return st;
}

/* ---- handshake ----------------------------------------------------------------- */

static void test_sha1(void)
{
    uint8_t h[20];
    static const uint8_t abc[20] = {0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e,
                                    0x25, 0x71, 0x78, 0x50, 0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d};
    sha1((const uint8_t *)"abc", 3, h);
    KT_CHECK(memcmp(h, abc, 20) == 0);
}

static void test_request(void)
{
    kl_ws_config_t c;
    uint8_t buf[512];
    size_t n = 0, cap;
    const char *want = "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost:5280\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n";
    config(&c);
    use_nonce();
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_OK);
    KT_CHECK_STR(ws.key, "dGhlIHNhbXBsZSBub25jZQ==");
    KT_CHECK_EQ(kl_ws_request(&ws, buf, sizeof buf, &n), KL_OK);
    KT_CHECK_EQ(n, strlen(want));
    KT_CHECK(n == strlen(want) && memcmp(buf, want, n) == 0);
    for (cap = 0; cap < strlen(want); cap++)
        KT_CHECK_EQ(kl_ws_request(&ws, buf, cap, &n), KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(kl_ws_request(&ws, buf, sizeof buf, &n), KL_OK); /* the same again */
    KT_CHECK(n == strlen(want) && memcmp(buf, want, n) == 0);
    KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CONNECTING);

    /* default ports leave Host bare; Origin when configured */
    c.port = 443;
    c.secure = 1;
    c.origin = "https://example.org";
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_OK);
    KT_CHECK_EQ(kl_ws_request(&ws, buf, sizeof buf, &n), KL_OK);
    buf[n] = 0;
    KT_CHECK(strstr((char *)buf, "\r\nHost: localhost\r\n") != NULL);
    KT_CHECK(strstr((char *)buf, "\r\nOrigin: https://example.org\r\n\r\n") != NULL);
    c.secure = 0;
    c.port = 80;
    c.origin = NULL;
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_OK);
    KT_CHECK_EQ(kl_ws_request(&ws, buf, sizeof buf, &n), KL_OK);
    buf[n] = 0;
    KT_CHECK(strstr((char *)buf, "\r\nHost: localhost\r\n") != NULL && !strstr((char *)buf, "Origin"));
    c.port = 443; /* not the default without TLS */
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_OK);
    KT_CHECK_EQ(kl_ws_request(&ws, buf, sizeof buf, &n), KL_OK);
    buf[n] = 0;
    KT_CHECK(strstr((char *)buf, "\r\nHost: localhost:443\r\n") != NULL);

    /* keys differ from one connection to the next */
    {
        char k1[25];
        memcpy(k1, ws.key, 25);
        KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_OK);
        KT_CHECK(strcmp(k1, ws.key) != 0 && strlen(ws.key) == 24);
    }

    /* refused configurations */
    config(&c);
    c.host = "a\r\nX: y";
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_request(&ws, buf, sizeof buf, &n), KL_ERR_ARG);
    config(&c);
    c.path = "xmpp";
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_ERR_ARG);
    config(&c);
    c.path = "/a b";
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_ERR_ARG);
    config(&c);
    c.crypto = NULL;
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_ERR_ARG);
    config(&c);
    c.random = NULL; /* crypto has none either */
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_ERR_NO_ENTROPY);
    config(&c);
    rnd_fail = 1;
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_ERR_NO_ENTROPY);
    rnd_fail = 0;
    hash_fail = 1;
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_ERR_ARG);
    hash_fail = 0;
}

/* RFC 6455 §1.3: key dGhlIHNhbXBsZSBub25jZQ== -> s3pPLMBiTxaQ9kYGzzhZRbK+xOo= */
static void test_accept_rfc_example(void)
{
    kl_ws_config_t c;
    char resp[1024];
    size_t n, g, step, ocap;
    config(&c);
    use_nonce();
    hash_calls = 0;
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_OK);
    KT_CHECK_EQ(hash_calls, 1);
    KT_CHECK(memcmp(ws.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28) == 0);
    n = response(resp, sizeof resp, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Server: x\r\n");
    for (step = 0; step <= n; step++) {
        use_nonce();
        KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_OK);
        ocap = step % 3; /* no output room is needed for the head */
        KT_CHECK_EQ(feed((const uint8_t *)resp, n, step, ocap, &g), KL_OK);
        KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_OPEN);
        KT_CHECK_EQ(ws.http_status, 101);
    }
    /* header names and tokens in any case, other tokens around them, a long line skipped */
    {
        char extra[600];
        memset(extra, 'x', sizeof extra);
        memcpy(extra, "X-Long: ", 8);
        memcpy(extra + sizeof extra - 3, "\r\n", 3);
        n = (size_t)snprintf(resp, sizeof resp,
                             "HTTP/1.1 101 OK\r\nUPGRADE:   WebSocket\r\nconnection: keep-alive, UPGRADE\r\n"
                             "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  \r\n%s"
                             "SEC-WEBSOCKET-PROTOCOL: xmpp\r\nSec-WebSocket-Extensions:\r\n\r\n",
                             extra);
        KT_CHECK(n < sizeof resp);
        for (step = 0; step < 3; step++) {
            use_nonce();
            KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_OK);
            KT_CHECK_EQ(feed((const uint8_t *)resp, n, step, 16, &g), KL_OK);
            KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_OPEN);
        }
    }
}

static void refused(const char *resp, int status)
{
    kl_ws_config_t c;
    size_t g, step, n = strlen(resp), used, made;
    uint8_t out[16];
    config(&c);
    for (step = 0; step < 3; step++) {
        use_nonce();
        KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_OK);
        KT_CHECK_EQ(feed((const uint8_t *)resp, n, step, 16, &g), KL_ERR_WS_HANDSHAKE);
        KT_CHECK_EQ(ws.http_status, status);
        KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSED);
        /* sticky, and nothing goes out */
        KT_CHECK_EQ(kl_ws_read(&ws, (const uint8_t *)"x", 1, &used, out, sizeof out, &made), KL_ERR_WS_HANDSHAKE);
        KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<a/>", 4, &used, out, sizeof out, &made),
                    KL_ERR_WS_HANDSHAKE);
        KT_CHECK_EQ(made, 0);
        KT_CHECK_EQ(kl_ws_want_write(&ws), 0);
    }
}

static void test_refused_upgrades(void)
{
    char r[8192];
    const char *ok = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    refused("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200);
    refused("HTTP/1.1 404 Not Found\r\n\r\n", 404);
    refused("HTTP/1.1 501 Not Implemented\r\n\r\n", 501);
    snprintf(r, sizeof r, "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
             "Sec-WebSocket-Protocol: xmpp\r\n\r\n", ok);
    refused(r, 200); /* every header right, but not 101 */
    response(r, sizeof r, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo", ""); /* one short */
    refused(r, 101);
    response(r, sizeof r, "dGhlIHNhbXBsZSBub25jZQ==", "");
    refused(r, 101);
    response(r, sizeof r, "S3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "");
    refused(r, 101);
    refused("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Protocol: xmpp\r\n\r\n", 101); /* no accept */
    snprintf(r, sizeof r, "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
             ok);
    refused(r, 101); /* no protocol */
    snprintf(r, sizeof r, "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
             "Sec-WebSocket-Protocol: chat\r\n\r\n", ok);
    refused(r, 101); /* another protocol */
    snprintf(r, sizeof r, "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
             "Sec-WebSocket-Protocol: xmpp, chat\r\n\r\n", ok);
    refused(r, 101);
    snprintf(r, sizeof r, "HTTP/1.1 101 x\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
             "Sec-WebSocket-Protocol: xmpp\r\n\r\n", ok);
    refused(r, 101); /* no Upgrade */
    snprintf(r, sizeof r, "HTTP/1.1 101 x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
             "Sec-WebSocket-Protocol: xmpp\r\n\r\n", ok);
    refused(r, 101);
    snprintf(r, sizeof r, "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Accept: %s\r\n"
             "Sec-WebSocket-Protocol: xmpp\r\n\r\n", ok);
    refused(r, 101); /* Connection without upgrade */
    response(r, sizeof r, ok, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    refused(r, 101);
    response(r, sizeof r, ok, "Bad Header: 1\r\n");
    refused(r, 101);
    response(r, sizeof r, ok, " folded\r\n");
    refused(r, 101);
    response(r, sizeof r, ok, "X: a\rb\r\n");
    refused(r, 101);
    refused("HTTP/2 101\r\n\r\n", 0);
    refused("\r\nHTTP/1.1 101 x\r\n\r\n", 0);
    {
        /* a relevant header longer than the line buffer, and a head over its bound */
        char extra[KL_WS_HEAD_MAX + 10];
        memset(extra, 'a', 300);
        snprintf(extra, sizeof extra, "Sec-WebSocket-Protocol: xmpp%300s\r\n", "x");
        response(r, sizeof r, ok, extra);
        refused(r, 101);
        memset(extra, 'a', sizeof extra);
        memcpy(extra, "X-Pad: ", 7);
        memcpy(extra + KL_WS_HEAD_MAX, "\r\n", 3);
        response(r, sizeof r, ok, extra);
        refused(r, 101);
    }
}

/* ---- inbound frames -------------------------------------------------------------- */

/* A message of n bytes that is not a framing element. */
static void fill(uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        p[i] = (uint8_t)('a' + i % 26);
    if (n)
        p[0] = '<';
}

static void test_lengths(void)
{
    static const size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 70001};
    size_t li, g, n;
    for (li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t len = lens[li];
        int form, mode;
        fill(payload, len);
        for (form = 0; form <= 64; form += 16) {
            if (form == 16 && len > 0xffff)
                continue;
            n = sframe(wire, 1, 1, payload, len, form);
            for (mode = 0; mode < 4; mode++) {
                size_t step = mode == 1 || mode == 3 ? 1 : 0, ocap = mode >= 2 ? 7 : BIG;
                if (len > 1000 && mode == 3)
                    continue; /* slow, and the same path as mode 1 + mode 2 */
                open_ws();
                KT_CHECK_EQ(feed(wire, n, step, ocap, &g), KL_OK);
                KT_CHECK_EQ(g, len);
                KT_CHECK(g == len && memcmp(got, payload, len) == 0);
            }
        }
    }
    /* two messages and a frame header in one read, then the rest */
    open_ws();
    n = text(wire, "<a/>");
    n += text(wire + n, "<b>x</b>");
    n += sframe(wire + n, 1, 1, "<c/>", 4, 64);
    KT_CHECK_EQ(feed(wire, n - 3, 0, BIG, &g), KL_OK);
    KT_CHECK(g == 12 && memcmp(got, "<a/><b>x</b>", 12) == 0); /* '<' held: it might begin <open */
    KT_CHECK_EQ(feed(wire + n - 3, 3, 0, BIG, &g), KL_OK);
    KT_CHECK(g == 4 && memcmp(got, "<c/>", 4) == 0);
}

/* Every split of the server bytes: the same output each way. */
static void all_splits(const uint8_t *w, size_t n, const char *want, int want_st)
{
    size_t at, g, ocap;
    for (at = 0; at <= n + 1; at++) {
        for (ocap = 1; ocap <= 3; ocap += 2) {
            size_t g1 = 0, g2 = 0;
            int st;
            open_ws();
            if (at <= n) {
                st = feed(w, at, 0, ocap == 3 ? BIG : 1, &g1);
                if (st == KL_OK) {
                    memmove(payload, got, g1);
                    st = feed(w + at, n - at, 0, ocap == 3 ? BIG : 1, &g2);
                    memmove(got + g1, got, g2);
                    memcpy(got, payload, g1);
                }
                g = g1 + g2;
            } else {
                st = feed(w, n, 1, 1, &g); /* byte by byte, out one by one */
            }
            KT_CHECK_EQ(st, want_st);
            KT_CHECK_EQ(g, strlen(want));
            KT_CHECK(g == strlen(want) && memcmp(got, want, g) == 0);
        }
    }
}

static void bad(const uint8_t *w, size_t n, int want, uint16_t close_code)
{
    size_t g, wn;
    cframe_t f[4];
    all_splits(w, n, "", want);
    /* the close frame we owe the server, once */
    KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSING);
    KT_CHECK_EQ(kl_ws_want_write(&ws), 1);
    KT_CHECK_EQ(write_all("<presence/>", 11, 3, &wn, NULL), KL_OK);
    KT_CHECK_EQ(decode(wire, wn, f, 4), 1);
    KT_CHECK(f[0].op == 8 && f[0].fin && f[0].len == 2 && (f[0].data[0] << 8 | f[0].data[1]) == close_code);
    KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSED);
    KT_CHECK_EQ(kl_ws_want_write(&ws), 0);
    KT_CHECK_EQ(feed(w, 0, 0, 10, &g), want); /* sticky */
}

static void test_bad_frames(void)
{
    uint8_t w[400];
    size_t n;
    char ping126[126];
    memset(ping126, 'p', sizeof ping126);
    /* masked server frame */
    n = text(w, "<a/>");
    w[1] |= 0x80;
    memmove(w + 6, w + 2, 4);
    memset(w + 2, 0, 4);
    bad(w, n + 4, KL_ERR_WS_FRAME, 1002);
    /* RSV1, RSV2, RSV3 */
    for (int b = 0x40; b >= 0x10; b >>= 1) {
        n = text(w, "<a/>");
        w[0] |= (uint8_t)b;
        bad(w, n, KL_ERR_WS_FRAME, 1002);
    }
    /* binary, reserved opcodes */
    static const int ops[] = {2, 3, 7, 0xB, 0xF};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        n = sframe(w, 1, ops[i], "<a/>", 4, 0);
        bad(w, n, KL_ERR_WS_FRAME, 1002);
    }
    /* fragmented ping, 126-byte ping (16-bit length and 7-bit length 126 alike), long close */
    n = sframe(w, 0, 9, "x", 1, 0);
    bad(w, n, KL_ERR_WS_FRAME, 1002);
    n = sframe(w, 1, 9, ping126, 126, 0);
    bad(w, n, KL_ERR_WS_FRAME, 1002);
    n = sframe(w, 1, 8, ping126, 126, 0);
    bad(w, n, KL_ERR_WS_FRAME, 1002);
    /* continuation without a message; a new message inside one */
    n = sframe(w, 1, 0, "<a/>", 4, 0);
    bad(w, n, KL_ERR_WS_FRAME, 1002);
    n = sframe(w, 0, 1, "<a", 2, 0);
    n += sframe(w + n, 1, 1, "/>", 2, 0);
    all_splits(w, n, "<a", KL_ERR_WS_FRAME);
    /* 64-bit length with the top bit set */
    n = sframe(w, 1, 1, "", 0, 64);
    w[2] = 0x80;
    bad(w, n, KL_ERR_WS_FRAME, 1002);
    /* a close frame with one byte of payload */
    n = sframe(w, 1, 8, "x", 1, 0);
    bad(w, n, KL_ERR_WS_FRAME, 1002);
}

static void test_too_large(void)
{
    uint8_t w[64];
    size_t n, g;
    /* 64-bit lengths above the bound: 2^32, 2^62, KL_WS_MESSAGE_MAX + 1 */
    n = sframe(w, 1, 1, "", 0, 64);
    w[5] = 1;
    bad(w, n, KL_ERR_WS_TOO_LARGE, 1009);
    n = sframe(w, 1, 1, "", 0, 64);
    w[2] = 0x40;
    bad(w, n, KL_ERR_WS_TOO_LARGE, 1009);
    n = sframe(w, 1, 1, "", 0, 64);
    w[7] = (uint8_t)((KL_WS_MESSAGE_MAX + 1) >> 16);
    w[8] = (uint8_t)((KL_WS_MESSAGE_MAX + 1) >> 8);
    w[9] = (uint8_t)(KL_WS_MESSAGE_MAX + 1);
    bad(w, n, KL_ERR_WS_TOO_LARGE, 1009);
    /* exactly the bound is fine (its header), over it across fragments is not */
    open_ws();
    n = sframe(w, 1, 1, "", 0, 64);
    w[7] = (uint8_t)(KL_WS_MESSAGE_MAX >> 16);
    w[8] = (uint8_t)(KL_WS_MESSAGE_MAX >> 8);
    w[9] = (uint8_t)KL_WS_MESSAGE_MAX;
    KT_CHECK_EQ(feed(w, n, 0, BIG, &g), KL_OK);
    fill(payload, KL_WS_MESSAGE_MAX / 2);
    n = sframe(wire, 0, 1, payload, KL_WS_MESSAGE_MAX / 2, 0);
    n += sframe(wire + n, 0, 0, payload, KL_WS_MESSAGE_MAX - KL_WS_MESSAGE_MAX / 2, 0);
    n += sframe(wire + n, 1, 0, "x", 1, 0);
    open_ws();
    KT_CHECK_EQ(feed(wire, n, 0, BIG, &g), KL_ERR_WS_TOO_LARGE); /* after the bytes within the bound */
    KT_CHECK_EQ(g, KL_WS_MESSAGE_MAX);
    KT_CHECK_EQ(feed(wire, 0, 0, BIG, &g), KL_ERR_WS_TOO_LARGE);
    /* an <open/> longer than KL_WS_OPEN_MAX */
    memset(payload, ' ', KL_WS_OPEN_MAX + 10);
    memcpy(payload, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'", 50);
    memcpy(payload + KL_WS_OPEN_MAX + 8, "/>", 2);
    n = sframe(wire, 1, 1, payload, KL_WS_OPEN_MAX + 10, 0);
    open_ws();
    KT_CHECK_EQ(feed(wire, n, 0, BIG, &g), KL_ERR_WS_TOO_LARGE);
    KT_CHECK_EQ(g, 0);
}

static void test_ping_pong(void)
{
    uint8_t w[512], out[512];
    size_t n, g, wn, used, made;
    cframe_t f[8];
    char p125[126];
    memset(p125, 'q', 125);
    p125[125] = 0;
    /* a ping between two messages: the output is the messages, a pong is owed */
    n = text(w, "<a/>");
    n += sframe(w + n, 1, 9, "hello", 5, 0);
    n += text(w + n, "<b/>");
    all_splits(w, n, "<a/><b/>", KL_OK);
    KT_CHECK_EQ(kl_ws_want_write(&ws), 1);
    KT_CHECK_EQ(write_all("", 0, 1, &wn, NULL), KL_OK);
    KT_CHECK_EQ(decode(wire, wn, f, 8), 1);
    KT_CHECK(frame_is(&f[0], 10, "hello"));
    KT_CHECK_EQ(kl_ws_want_write(&ws), 0);
    KT_CHECK_EQ(write_all("", 0, 100, &wn, NULL), KL_OK);
    KT_CHECK_EQ(wn, 0); /* once */
    /* 125 bytes of payload, and an empty ping */
    open_ws();
    n = sframe(w, 1, 9, p125, 125, 0);
    KT_CHECK_EQ(feed(w, n, 1, 0, &g), KL_OK);
    KT_CHECK_EQ(write_all("", 0, 1000, &wn, NULL), KL_OK);
    KT_CHECK_EQ(decode(wire, wn, f, 8), 1);
    KT_CHECK(frame_is(&f[0], 10, p125));
    n = sframe(w, 1, 9, "", 0, 0);
    KT_CHECK_EQ(feed(w, n, 0, 0, &g), KL_OK);
    KT_CHECK_EQ(write_all("", 0, 1000, &wn, NULL), KL_OK);
    KT_CHECK_EQ(decode(wire, wn, f, 8), 1);
    KT_CHECK(frame_is(&f[0], 10, "") && wn == 6);
    /* two pings before we write: the newest is answered */
    n = sframe(w, 1, 9, "one", 3, 0);
    n += sframe(w + n, 1, 9, "two", 3, 0);
    KT_CHECK_EQ(feed(w, n, 1, 0, &g), KL_OK);
    KT_CHECK_EQ(write_all("", 0, 1000, &wn, NULL), KL_OK);
    KT_CHECK_EQ(decode(wire, wn, f, 8), 1);
    KT_CHECK(frame_is(&f[0], 10, "two"));
    /* a ping that is still arriving replaces the pong owed: nothing goes out
     * until it is whole (never a pong with half-overwritten payload) */
    n = sframe(w, 1, 9, "one", 3, 0);
    n += sframe(w + n, 1, 9, "two", 3, 0);
    KT_CHECK_EQ(feed(w, n - 2, 0, 0, &g), KL_OK);
    KT_CHECK_EQ(kl_ws_want_write(&ws), 0);
    KT_CHECK_EQ(write_all("", 0, 1000, &wn, NULL), KL_OK);
    KT_CHECK_EQ(wn, 0);
    KT_CHECK_EQ(feed(w + n - 2, 2, 0, 0, &g), KL_OK);
    KT_CHECK_EQ(write_all("", 0, 1000, &wn, NULL), KL_OK);
    KT_CHECK_EQ(decode(wire, wn, f, 8), 1);
    KT_CHECK(frame_is(&f[0], 10, "two"));
    /* pongs are counted; our ping goes out */
    n = sframe(w, 1, 10, "z", 1, 0);
    n += sframe(w + n, 1, 10, "", 0, 0);
    KT_CHECK_EQ(feed(w, n, 0, 0, &g), KL_OK);
    KT_CHECK_EQ(ws.pongs, 2);
    KT_CHECK_EQ(kl_ws_ping(&ws), KL_OK);
    KT_CHECK_EQ(kl_ws_want_write(&ws), 1);
    KT_CHECK_EQ(write_all("", 0, 1000, &wn, NULL), KL_OK);
    KT_CHECK_EQ(decode(wire, wn, f, 8), 1);
    KT_CHECK(frame_is(&f[0], 9, ""));
    /* a pong waits for the frame under way; the element goes out whole first */
    open_ws();
    n = sframe(w, 1, 9, "P", 1, 0);
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<presence/>", 11, &used, out, 3, &made), KL_OK);
    KT_CHECK_EQ(made, 3);
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<presence/>", 11, &used, NULL, 0, &made), KL_OK);
    KT_CHECK(used == 0 && made == 0 && kl_ws_want_write(&ws));
    made = 3;
    KT_CHECK_EQ(feed(w, n, 0, 0, &g), KL_OK);
    {
        size_t tot = made;
        KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<presence/>" + used, 11 - used, &used, out + tot,
                                sizeof out - tot, &made), KL_OK);
        tot += made;
        KT_CHECK_EQ(decode(out, tot, f, 8), 2);
        KT_CHECK(frame_is(&f[0], 1, "<presence xmlns='jabber:client'/>"));
        KT_CHECK(frame_is(&f[1], 10, "P"));
    }
}

static void test_close(void)
{
    uint8_t w[256], out[64];
    size_t n, g, wn, used, made;
    cframe_t f[8];
    /* a message, then the server's close (1000 with a reason): the message
     * first, KL_ERR_WS_CLOSED next, and our close echoes 1000 once */
    n = text(w, "<a/>");
    n += sframe(w + n, 1, 8, "\x03\xe8" "bye", 5, 0);
    all_splits(w, n, "<a/>", KL_ERR_WS_CLOSED);
    KT_CHECK_EQ(ws.close_code, 1000);
    KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSING);
    KT_CHECK_EQ(kl_ws_ping(&ws), KL_ERR_STATE);
    KT_CHECK_EQ(write_all("<presence/>", 11, 2, &wn, &used), KL_OK);
    KT_CHECK_EQ(used, 11); /* discarded after our close */
    KT_CHECK_EQ(decode(wire, wn, f, 8), 1);
    KT_CHECK(f[0].op == 8 && f[0].len == 2 && f[0].data[0] == 0x03 && f[0].data[1] == 0xe8);
    KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSED);
    KT_CHECK_EQ(kl_ws_close(&ws, 0), KL_ERR_STATE);
    KT_CHECK_EQ(write_all("<presence/>", 11, 100, &wn, NULL), KL_OK);
    KT_CHECK_EQ(wn, 0);
    /* the error found after bytes went out comes with the next call */
    open_ws();
    n = text(w, "<a/>");
    n += sframe(w + n, 1, 8, "", 0, 0);
    KT_CHECK_EQ(kl_ws_read(&ws, w, n, &used, out, sizeof out, &made), KL_OK);
    KT_CHECK(used == n && made == 4);
    KT_CHECK_EQ(kl_ws_read_pending(&ws), 1);
    KT_CHECK_EQ(kl_ws_read(&ws, NULL, 0, &used, out, sizeof out, &made), KL_ERR_WS_CLOSED);
    KT_CHECK_EQ(made, 0);
    KT_CHECK_EQ(kl_ws_read_pending(&ws), 0);
    /* no payload: an empty close back; a code one may not send: 1002 back */
    open_ws();
    n = sframe(w, 1, 8, "", 0, 0);
    KT_CHECK_EQ(feed(w, n, 0, 10, &g), KL_ERR_WS_CLOSED);
    KT_CHECK_EQ(ws.close_code, 0);
    KT_CHECK_EQ(write_all("", 0, 100, &wn, NULL), KL_OK);
    KT_CHECK_EQ(decode(wire, wn, f, 8), 1);
    KT_CHECK(frame_is(&f[0], 8, ""));
    open_ws();
    n = sframe(w, 1, 8, "\x03\xed", 2, 0); /* 1005 */
    KT_CHECK_EQ(feed(w, n, 0, 10, &g), KL_ERR_WS_CLOSED);
    KT_CHECK_EQ(write_all("", 0, 100, &wn, NULL), KL_OK);
    KT_CHECK_EQ(decode(wire, wn, f, 8), 1);
    KT_CHECK(f[0].op == 8 && f[0].len == 2 && (f[0].data[0] << 8 | f[0].data[1]) == 1002);
    /* we close first: a data frame under way ends first; the server's answer ends it */
    open_ws();
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<presence/>", 11, &used, out, 4, &made), KL_OK);
    KT_CHECK_EQ(kl_ws_close(&ws, 5000), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_close(&ws, 1001), KL_OK);
    KT_CHECK_EQ(kl_ws_close(&ws, 0), KL_ERR_STATE);
    KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSING);
    {
        size_t tot = made;
        KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<presence/>" + used, 11 - used, &used, out + tot,
                                sizeof out - tot, &made), KL_OK);
        tot += made;
        KT_CHECK_EQ(decode(out, tot, f, 8), 2);
        KT_CHECK(frame_is(&f[0], 1, "<presence xmlns='jabber:client'/>"));
        KT_CHECK(f[1].op == 8 && f[1].len == 2 && (f[1].data[0] << 8 | f[1].data[1]) == 1001);
    }
    KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSING);
    n = text(w, "<late/>");
    n += sframe(w + n, 1, 8, "\x03\xe9", 2, 0);
    KT_CHECK_EQ(feed(w, n, 0, 100, &g), KL_ERR_WS_CLOSED); /* data after our close is still read */
    KT_CHECK(g == 7 && memcmp(got, "<late/>", 7) == 0);
    KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSED);
    KT_CHECK_EQ(kl_ws_want_write(&ws), 0);
    KT_CHECK_EQ(write_all("", 0, 100, &wn, NULL), KL_OK);
    KT_CHECK_EQ(wn, 0); /* no second close */
}

static void test_continuation(void)
{
    uint8_t w[256];
    size_t n, wn;
    cframe_t f[4];
    /* a message in three frames with a ping between them */
    n = sframe(w, 0, 1, "<mess", 5, 0);
    n += sframe(w + n, 1, 9, "pp", 2, 0);
    n += sframe(w + n, 0, 0, "age>", 4, 16);
    n += sframe(w + n, 0, 0, "", 0, 0);
    n += sframe(w + n, 1, 0, "</message>", 10, 64);
    n += text(w + n, "<x/>");
    all_splits(w, n, "<message></message><x/>", KL_OK);
    KT_CHECK_EQ(write_all("", 0, 100, &wn, NULL), KL_OK);
    KT_CHECK_EQ(decode(wire, wn, f, 4), 1);
    KT_CHECK(frame_is(&f[0], 10, "pp"));
    /* an <open/> split over fragments is still seen whole */
    {
        static const char *const parts[] = {"<op", "en xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='i",
                                            "' version='1.0'/>"};
        n = sframe(w, 0, 1, parts[0], strlen(parts[0]), 0);
        n += sframe(w + n, 0, 0, parts[1], strlen(parts[1]), 0);
        n += sframe(w + n, 1, 0, parts[2], strlen(parts[2]), 0);
    }
    all_splits(w, n,
               "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
               "id='i' version='1.0'>",
               KL_OK);
}

#define SYNTH "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"

static void translated(const char *msg, const char *want)
{
    uint8_t w[1024];
    size_t n = sframe(w, 1, 1, msg, strlen(msg), 0);
    all_splits(w, n, want, KL_OK);
}

static void test_open_close(void)
{
    uint8_t w[1024];
    size_t n, g;
    kl_xml_t x;
    kl_xml_token_t t;
    kl_slice_t v;
    /* Prosody 0.12's <open/> */
    translated("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' xml:lang='en' version='1.0' "
               "id='6d3c5f3a-0a6b-4c1d-9e0f-2b8a7c9d1e4f' from='localhost'/>",
               SYNTH " xml:lang='en' version='1.0' id='6d3c5f3a-0a6b-4c1d-9e0f-2b8a7c9d1e4f' from='localhost'>");
    /* double quotes, a quote and entities in values, spaces around '=', a stream prefix declared, end tag */
    translated("<open  xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\"\n id = \"a'b&amp;&lt;\" "
               "xmlns:stream='http://etherx.jabber.org/streams' from='x&apos;y' version=\"1.0\"></open>",
               SYNTH " id=\"a'b&amp;&lt;\" from='x&apos;y' version=\"1.0\">");
    /* leading whitespace; <close/> after <open/>, and as the answer to ours
     * (with see-other-uri, RFC 7395 3.6.1): then a header comes first */
    n = text(w, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' version='1.0'/>");
    n += text(w + n, " \n<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    n += text(w + n, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    all_splits(w, n, SYNTH " version='1.0'> \n</stream:stream>" SYNTH " version='1.0'></stream:stream>", KL_OK);
    KT_CHECK_EQ(ws.see_other, 0);
    translated("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://other/ws'/>",
               SYNTH " version='1.0'></stream:stream>");
    KT_CHECK_EQ(ws.see_other, 1);
    /* not a framing element: passed as it came */
    translated("<open xmlns='jabber:client'/>", "<open xmlns='jabber:client'/>");
    translated("<open/>", "<open/>");
    translated("<openx xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
               "<openx xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    translated("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/><x/>",
               "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/><x/>");
    translated("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'><x/></open>",
               "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'><x/></open>");
    translated("<op", "<op");
    translated("<clo", "<clo");
    translated("<o/>", "<o/>");
    translated("<message><body>open</body></message>", "<message><body>open</body></message>");
    /* a message that only begins like one */
    translated("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'", "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'");
    /* the biggest <open/> that fits: every byte of its translation right */
    {
        char big[KL_WS_OPEN_MAX + 100], want[KL_WS_OPEN_MAX + 200];
        size_t fixed = strlen("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id=''/>"), k = KL_WS_OPEN_MAX - fixed;
        char id[KL_WS_OPEN_MAX];
        memset(id, 'i', k);
        id[k] = 0;
        snprintf(big, sizeof big, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='%s'/>", id);
        KT_CHECK_EQ(strlen(big), KL_WS_OPEN_MAX);
        snprintf(want, sizeof want, SYNTH " id='%s'>", id);
        translated(big, want);
    }
    /* many short attributes (in-place translation) */
    translated("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8' "
               "i='9' j='10' k='11' l='12' m='13' n='14' o='15' version='1.0'/>",
               SYNTH " a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8' i='9' j='10' k='11' l='12' m='13' n='14' "
                     "o='15' version='1.0'>");
    /* translated bytes that do not fit wait for the next call, without new input */
    open_ws();
    n = text(w, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' version='1.0'/>");
    {
        size_t used, made, tot = 0;
        KT_CHECK_EQ(kl_ws_read(&ws, w, n, &used, got, 10, &made), KL_OK);
        KT_CHECK(used == n && made == 10);
        tot = made;
        /* no room (NULL): nothing happens */
        KT_CHECK_EQ(kl_ws_read(&ws, NULL, 0, &used, NULL, 0, &made), KL_OK);
        KT_CHECK(used == 0 && made == 0 && kl_ws_read_pending(&ws));
        while (kl_ws_read_pending(&ws)) {
            KT_CHECK_EQ(kl_ws_read(&ws, NULL, 0, &used, got + tot, 10, &made), KL_OK);
            KT_CHECK(made > 0 && made <= 10);
            tot += made;
            if (!made)
                break;
        }
        KT_CHECK(tot == strlen(SYNTH " version='1.0'>") && memcmp(got, SYNTH " version='1.0'>", tot) == 0);
    }
    /* the synthetic header is what the tokenizer takes as a stream header */
    open_ws();
    n = text(w, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='s&amp;1' from='localhost' version='1.0'/>");
    KT_CHECK_EQ(feed(w, n, 0, BIG, &g), KL_OK);
    kl_xml_init(&x);
    {
        size_t used = 0;
        KT_CHECK_EQ(kl_xml_next(&x, got, g, &used, &t), KL_XML_START);
        KT_CHECK_EQ(used, g);
        KT_CHECK(kl_slice_eq(t.local, "stream") && kl_slice_eq(t.ns, "http://etherx.jabber.org/streams"));
        KT_CHECK(kl_xml_attr_get(t.attrs, "id", &v) && kl_xml_decoded_eq(v, "s&1"));
        KT_CHECK(kl_xml_attr_get(t.attrs, "xmlns", &v) && kl_xml_decoded_eq(v, "jabber:client"));
    }
}

/* ---- outbound ------------------------------------------------------------------- */

static const char flight[] =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "to='localhost' from='alice@localhost' version='1.0' xml:lang='en'>"
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAGFsaWNlcGFzcw==</auth>"
    "<iq type='set' id='kl-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>";

static void test_outbound_flight(void)
{
    size_t ocap, wn, used;
    cframe_t f[8];
    for (ocap = 1; ocap < 600; ocap = ocap < 20 ? ocap + 1 : ocap * 3) {
        int k, i, j;
        open_ws();
        rnd_calls = 0;
        KT_CHECK_EQ(write_all(flight, strlen(flight), ocap, &wn, &used), KL_OK);
        KT_CHECK_EQ(used, strlen(flight));
        k = decode(wire, wn, f, 8);
        KT_CHECK_EQ(k, 3);
        if (k != 3)
            continue;
        KT_CHECK(frame_is(&f[0], 1, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' "
                                    "from='alice@localhost' version='1.0' xml:lang='en'/>"));
        KT_CHECK(frame_is(&f[1], 1, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                                    "AGFsaWNlAGFsaWNlcGFzcw==</auth>"));
        KT_CHECK(frame_is(&f[2], 1, "<iq xmlns='jabber:client' type='set' id='kl-bind'><bind "
                                    "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>"));
        /* a fresh key per frame, from the random source */
        KT_CHECK_EQ(rnd_calls, 3);
        for (i = 0; i < 3; i++)
            for (j = i + 1; j < 3; j++)
                KT_CHECK(memcmp(f[i].key, f[j].key, 4) != 0);
        KT_CHECK_EQ(kl_ws_want_write(&ws), 0);
    }
    /* the end of the stream; a stream error gets both declarations */
    open_ws();
    {
        const char *s = "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
                        "</stream:stream>";
        KT_CHECK_EQ(write_all(s, strlen(s), 5, &wn, &used), KL_OK);
        KT_CHECK_EQ(used, strlen(s));
        KT_CHECK_EQ(decode(wire, wn, f, 8), 2);
        KT_CHECK(frame_is(&f[0], 1, "<stream:error xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
                                    "<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"));
        KT_CHECK(frame_is(&f[1], 1, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"));
    }
    /* declarations present: nothing added; quotes, '>' in values and CDATA; whitespace between dropped */
    open_ws();
    {
        const char *s = " <r xmlns='urn:xmpp:sm:3'/>\n <message to='a&apos;b' x=\"1>2\"><body><![CDATA[</message>]]>"
                        "</body></message> <stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'/>";
        KT_CHECK_EQ(write_all(s, strlen(s), 9, &wn, &used), KL_OK);
        KT_CHECK_EQ(used, strlen(s));
        KT_CHECK_EQ(decode(wire, wn, f, 8), 3);
        KT_CHECK(frame_is(&f[0], 1, "<r xmlns='urn:xmpp:sm:3'/>"));
        KT_CHECK(frame_is(&f[1], 1, "<message xmlns='jabber:client' to='a&apos;b' x=\"1>2\"><body>"
                                    "<![CDATA[</message>]]></body></message>"));
        KT_CHECK(frame_is(&f[2], 1, "<stream:features xmlns='jabber:client' "
                                    "xmlns:stream='http://etherx.jabber.org/streams'/>"));
    }
}

static void test_outbound_edges(void)
{
    size_t wn, used, made, n, i;
    uint8_t out[64];
    cframe_t f[4];
    static char big[80000];
    /* before the handshake: nothing, nothing consumed */
    kl_ws_config_t c;
    config(&c);
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_OK);
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<a/>", 4, &used, out, sizeof out, &made), KL_OK);
    KT_CHECK(used == 0 && made == 0);
    KT_CHECK_EQ(kl_ws_ping(&ws), KL_ERR_STATE);
    KT_CHECK_EQ(kl_ws_close(&ws, 0), KL_ERR_STATE);
    /* an incomplete element: consumed stops at its start, the rest completes it */
    open_ws();
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<a/><b><c/>", 11, &used, wire, 100, &made), KL_OK);
    KT_CHECK_EQ(used, 4);
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<b><c/></b>", 11, &used, wire + made, 100, &n), KL_OK);
    KT_CHECK_EQ(used, 11);
    KT_CHECK_EQ(decode(wire, made + n, f, 4), 2);
    KT_CHECK(frame_is(&f[0], 1, "<a xmlns='jabber:client'/>"));
    KT_CHECK(frame_is(&f[1], 1, "<b xmlns='jabber:client'><c/></b>"));
    /* text or an end tag at the top level: not the engine's output */
    open_ws();
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<a/>x", 5, &used, out, sizeof out, &made), KL_OK);
    KT_CHECK(made > 0);
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"x", 1, &used, out, sizeof out, &made), KL_ERR_ARG);
    KT_CHECK_EQ(made, 0);
    open_ws();
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"</a>", 4, &used, out, sizeof out, &made), KL_ERR_ARG);
    /* the entropy fails: no frame */
    open_ws();
    rnd_fail = 1;
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<a/>", 4, &used, out, sizeof out, &made), KL_ERR_NO_ENTROPY);
    rnd_fail = 0;
    KT_CHECK_EQ(made, 0);
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<a/>", 4, &used, out, sizeof out, &made), KL_ERR_NO_ENTROPY);
    /* 125/126 and 65535/65536 payloads: 7, 16 and 64-bit lengths, streamed through a small out */
    static const size_t sizes[] = {125, 126, 65535, 65536, 79999};
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len = sizes[i], body = len - strlen("<x xmlns='a'></x>");
        memcpy(big, "<x xmlns='a'>", 13);
        memset(big + 13, 'b', body);
        memcpy(big + 13 + body, "</x>", 5);
        open_ws();
        KT_CHECK_EQ(write_all(big, len, 100, &wn, &used), KL_OK);
        KT_CHECK_EQ(used, len);
        KT_CHECK_EQ(wn, len + (len < 126 ? 6 : len <= 65535 ? 8 : 14));
        KT_CHECK_EQ(decode(wire, wn, f, 4), 1);
        KT_CHECK(f[0].len == len && memcmp(f[0].data, big, len) == 0);
    }
    /* a stream header whose <open/> does not fit the stage */
    open_ws();
    memcpy(big, "<stream:stream to='", 19);
    memset(big + 19, 'd', KL_WS_STAGE_MAX);
    memcpy(big + 19 + KL_WS_STAGE_MAX, "'>", 3);
    KT_CHECK_EQ(write_all(big, strlen(big), 100, &wn, &used), KL_ERR_WS_TOO_LARGE);
}

/* ---- arguments, states and the rarer paths ------------------------------------------ */

static void test_cov_arguments(void)
{
    static const kl_crypto_t nohash = {NULL, NULL, NULL, NULL, NULL};
    kl_ws_config_t c;
    uint8_t buf[512], out[16];
    size_t n = 7, used = 7, made = 7;
    config(&c);
    KT_CHECK_EQ(kl_ws_init(NULL, &c), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_init(&ws, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSED); /* a failed init: closed */
    config(&c);
    c.host = NULL;
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_ERR_ARG);
    c.host = "";
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_ERR_ARG);
    c.host = "local\x7fhost";
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_ERR_ARG);
    config(&c);
    c.path = NULL;
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_ERR_ARG);
    config(&c);
    c.origin = "https://a b";
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_ERR_ARG);
    config(&c);
    c.crypto = &nohash;
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_ERR_ARG);
    /* no port: Host bare */
    config(&c);
    c.port = 0;
    KT_CHECK_EQ(kl_ws_init(&ws, &c), KL_OK);
    KT_CHECK_EQ(kl_ws_request(&ws, buf, sizeof buf, &n), KL_OK);
    buf[n] = 0;
    KT_CHECK(strncmp((char *)buf, "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n", 67) == 0);
    KT_CHECK_EQ(kl_ws_request(NULL, buf, sizeof buf, &n), KL_ERR_ARG);
    KT_CHECK_EQ(n, 0);
    KT_CHECK_EQ(kl_ws_request(&ws, buf, sizeof buf, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_request(&ws, NULL, 5, &n), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_request(&ws, NULL, 0, &n), KL_ERR_TOO_LARGE);
    /* reading and writing */
    KT_CHECK_EQ(kl_ws_read(NULL, buf, 1, &used, out, sizeof out, &made), KL_ERR_ARG);
    KT_CHECK(used == 0 && made == 0);
    KT_CHECK_EQ(kl_ws_read(&ws, buf, 1, NULL, out, sizeof out, &made), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_read(&ws, buf, 1, &used, out, sizeof out, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_read(&ws, NULL, 1, &used, out, sizeof out, &made), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_read(&ws, buf, 1, &used, NULL, 1, &made), KL_ERR_ARG);
    used = made = 7;
    KT_CHECK_EQ(kl_ws_write(NULL, buf, 1, &used, out, sizeof out, &made), KL_ERR_ARG);
    KT_CHECK(used == 0 && made == 0);
    KT_CHECK_EQ(kl_ws_write(&ws, buf, 1, NULL, out, sizeof out, &made), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_write(&ws, buf, 1, &used, out, sizeof out, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_write(&ws, NULL, 1, &used, out, sizeof out, &made), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_write(&ws, buf, 1, &used, NULL, 1, &made), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_read_pending(NULL), 0);
    KT_CHECK_EQ(kl_ws_want_write(NULL), 0);
    KT_CHECK_EQ(kl_ws_want_write(&ws), 0); /* not open yet */
    KT_CHECK_EQ(kl_ws_ping(NULL), KL_ERR_STATE);
    KT_CHECK_EQ(kl_ws_close(NULL, 0), KL_ERR_STATE);
    KT_CHECK_EQ(kl_ws_state(NULL), KL_WS_CLOSED);
    /* the request is for before the upgrade only */
    open_ws();
    KT_CHECK_EQ(kl_ws_request(&ws, buf, sizeof buf, &n), KL_ERR_STATE);
    KT_CHECK_EQ(n, 0);
    /* out NULL with no room: nothing written, the bytes wait */
    n = text(buf, "<a/>");
    KT_CHECK_EQ(kl_ws_read(&ws, buf, n, &used, NULL, 0, &made), KL_OK);
    KT_CHECK(used == 2 + 2 && made == 0); /* the header, and "<a" held (no <open or <close) */
    KT_CHECK_EQ(kl_ws_read(&ws, buf + used, n - used, &used, out, sizeof out, &made), KL_OK);
    KT_CHECK(made == 4 && memcmp(out, "<a/>", 4) == 0);
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<a/>", 4, &used, NULL, 0, &made), KL_OK);
    KT_CHECK(used == 0 && made == 0);
}

static void test_cov_handshake(void)
{
    char r[512];
    response(r, sizeof r, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "X-Tab\t: 1\r\n");
    refused(r, 101); /* a header name that ends at a tab */
}

/* Our close under way (queued, or staged and partly written) when the
 * server closes, pings or sends a bad frame: nothing more is queued. */
static void test_cov_close_under_way(void)
{
    uint8_t w[64], out[4];
    size_t n, g, wn, used, made;
    cframe_t f[4];
    int staged;
    for (staged = 0; staged < 2; staged++) {
        kt_current = staged ? "test_cov_close_under_way (staged)" : "test_cov_close_under_way";
        /* the server's close */
        open_ws();
        KT_CHECK_EQ(kl_ws_close(&ws, 0), KL_OK);
        if (staged) {
            KT_CHECK_EQ(kl_ws_write(&ws, NULL, 0, &used, out, sizeof out, &made), KL_OK);
            KT_CHECK_EQ(made, 4); /* 8 bytes of frame: 4 out, 4 staged */
            memcpy(wire, out, 4);
            KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSING);
            KT_CHECK_EQ(kl_ws_close(&ws, 0), KL_ERR_STATE);
        }
        n = sframe(w, 1, 8, "\x03\xe8", 2, 0);
        KT_CHECK_EQ(feed(w, n, 0, 10, &g), KL_ERR_WS_CLOSED);
        KT_CHECK_EQ(ws.close_code, 1000);
        KT_CHECK_EQ(write_all("", 0, 100, &wn, NULL), KL_OK);
        if (staged) {
            memmove(wire + 4, wire, wn);
            memcpy(wire, out, 4);
            wn += 4;
        }
        KT_CHECK_EQ(decode(wire, wn, f, 4), 1); /* ours (1000), once */
        KT_CHECK(f[0].op == 8 && f[0].len == 2 && (f[0].data[0] << 8 | f[0].data[1]) == 1000);
        KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSED);
        /* a ping: no pong after our close */
        open_ws();
        KT_CHECK_EQ(kl_ws_close(&ws, 1001), KL_OK);
        if (staged)
            KT_CHECK_EQ(kl_ws_write(&ws, NULL, 0, &used, out, sizeof out, &made), KL_OK);
        n = sframe(w, 1, 9, "p", 1, 0);
        KT_CHECK_EQ(feed(w, n, 0, 10, &g), KL_OK);
        KT_CHECK_EQ(write_all("", 0, 100, &wn, NULL), KL_OK);
        KT_CHECK_EQ(wn, staged ? 4u : 8u); /* the close (the rest of it), no pong */
        /* a bad frame: the error, no second close */
        open_ws();
        KT_CHECK_EQ(kl_ws_close(&ws, 1001), KL_OK);
        if (staged)
            KT_CHECK_EQ(kl_ws_write(&ws, NULL, 0, &used, out, sizeof out, &made), KL_OK);
        n = sframe(w, 1, 2, "b", 1, 0); /* binary */
        KT_CHECK_EQ(feed(w, n, 0, 10, &g), KL_ERR_WS_FRAME);
        KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSING);
        KT_CHECK_EQ(write_all("", 0, 100, &wn, NULL), KL_OK);
        KT_CHECK_EQ(wn, staged ? 4u : 8u);
        if (!staged) {
            KT_CHECK_EQ(decode(wire, wn, f, 4), 1);
            KT_CHECK(f[0].op == 8 && (f[0].data[0] << 8 | f[0].data[1]) == 1001);
        }
        KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSED);
        KT_CHECK_EQ(kl_ws_close(&ws, 0), KL_ERR_STATE);
    }
    kt_current = "test_cov_close_under_way";
    /* a code above 4999 is answered 1002 */
    open_ws();
    n = sframe(w, 1, 8, "\x13\x88", 2, 0); /* 5000 */
    KT_CHECK_EQ(feed(w, n, 0, 10, &g), KL_ERR_WS_CLOSED);
    KT_CHECK_EQ(ws.close_code, 5000);
    KT_CHECK_EQ(write_all("", 0, 100, &wn, NULL), KL_OK);
    KT_CHECK_EQ(decode(wire, wn, f, 4), 1);
    KT_CHECK(f[0].op == 8 && f[0].len == 2 && (f[0].data[0] << 8 | f[0].data[1]) == 1002);
    /* a private-use code (3000..4999) is echoed */
    open_ws();
    n = sframe(w, 1, 8, "\x0f\xa0", 2, 0); /* 4000 */
    KT_CHECK_EQ(feed(w, n, 0, 10, &g), KL_ERR_WS_CLOSED);
    KT_CHECK_EQ(write_all("", 0, 100, &wn, NULL), KL_OK);
    KT_CHECK_EQ(decode(wire, wn, f, 4), 1);
    KT_CHECK(f[0].op == 8 && f[0].len == 2 && (f[0].data[0] << 8 | f[0].data[1]) == 4000);
    /* kl_ws_close(0) sends 1000 */
    open_ws();
    KT_CHECK_EQ(kl_ws_close(&ws, 0), KL_OK);
    KT_CHECK_EQ(write_all("", 0, 100, &wn, NULL), KL_OK);
    KT_CHECK_EQ(decode(wire, wn, f, 4), 1);
    KT_CHECK(f[0].op == 8 && f[0].len == 2 && (f[0].data[0] << 8 | f[0].data[1]) == 1000);
}

/* One element through kl_ws_write, whole: the one frame it makes. */
static void one_frame(const char *xml, const char *want)
{
    size_t wn, used;
    cframe_t f[4];
    open_ws();
    KT_CHECK_EQ(write_all(xml, strlen(xml), 7, &wn, &used), KL_OK);
    KT_CHECK_EQ(used, strlen(xml));
    KT_CHECK_EQ(decode(wire, wn, f, 4), 1);
    KT_CHECK(frame_is(&f[0], 1, want));
    if (!frame_is(&f[0], 1, want))
        fprintf(stderr, "  got: %.*s\n", (int)f[0].len, (const char *)f[0].data);
}

static void test_cov_outbound_markup(void)
{
    uint8_t out[64];
    size_t used, made, n, wn;
    cframe_t f[4];
    /* stream tags as the engine never writes them, and names that only begin alike */
    one_frame("<stream:stream>", "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    one_frame("<stream:stream/>", "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    one_frame("<stream:streamx/>", "<stream:streamx xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'/>");
    one_frame("<astream:stream/>", "<astream:stream xmlns='jabber:client'/>");
    one_frame("<stream:features xmlns='jabber:client'/>",
              "<stream:features xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'/>");
    /* attributes: a name that ends at a space, a '/' or the '>', one like xmlns, a quote in a name */
    one_frame("<x a ='1'/>", "<x xmlns='jabber:client' a ='1'/>");
    one_frame("<x a/>", "<x xmlns='jabber:client' a/>");
    one_frame("<x a></x>", "<x xmlns='jabber:client' a></x>");
    one_frame("<x xmlnz='1'/>", "<x xmlns='jabber:client' xmlnz='1'/>");
    one_frame("<x a'b c='>'></x>", "<x xmlns='jabber:client' a'b c='>'></x>");
    /* a processing instruction and CDATA inside */
    one_frame("<x><?pi y?><![CDATA[a]b]]c]]></x>", "<x xmlns='jabber:client'><?pi y?><![CDATA[a]b]]c]]></x>");
    /* an element whose CDATA or a later tag is not complete yet waits */
    open_ws();
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<x><![CDATA[a]b]]c", 18, &used, out, sizeof out, &made), KL_OK);
    KT_CHECK(used == 0 && made == 0);
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<x><bo", 6, &used, out, sizeof out, &made), KL_OK);
    KT_CHECK(used == 0 && made == 0);
    /* a comment, CDATA or "<>" at the top level: not the engine's output */
    open_ws();
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<!-- c -->", 10, &used, out, sizeof out, &made), KL_ERR_ARG);
    open_ws();
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<>", 2, &used, out, sizeof out, &made), KL_ERR_ARG);
    KT_CHECK_EQ(kl_ws_want_write(&ws), 0); /* the write error is sticky */
    /* the element's bytes not all given again: it waits for them */
    open_ws();
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"<presence/>", 11, &used, out, 8, &made), KL_OK);
    KT_CHECK(used == 2 && made == 8); /* 6 of header, "<p" */
    n = made;
    memcpy(wire, out, made);
    KT_CHECK_EQ(kl_ws_want_write(&ws), 1);
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"resence/>", 0, &used, out, sizeof out, &made), KL_OK);
    KT_CHECK(used == 0 && made == 0);
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"resence/>", 9, &used, out, sizeof out, &made), KL_OK);
    KT_CHECK_EQ(used, 9);
    memcpy(wire + n, out, made);
    wn = n + made;
    KT_CHECK_EQ(decode(wire, wn, f, 4), 1);
    KT_CHECK(frame_is(&f[0], 1, "<presence xmlns='jabber:client'/>"));
    /* the entropy fails for the close element and for a control frame */
    open_ws();
    rnd_fail = 1;
    KT_CHECK_EQ(kl_ws_write(&ws, (const uint8_t *)"</stream:stream>", 16, &used, out, sizeof out, &made),
                KL_ERR_NO_ENTROPY);
    rnd_fail = 0;
    open_ws();
    KT_CHECK_EQ(kl_ws_ping(&ws), KL_OK);
    rnd_fail = 1;
    KT_CHECK_EQ(kl_ws_write(&ws, NULL, 0, &used, out, sizeof out, &made), KL_ERR_NO_ENTROPY);
    rnd_fail = 0;
    KT_CHECK_EQ(made, 0);
    KT_CHECK_EQ(kl_ws_want_write(&ws), 0);
}

/* ---- the real engine over it ------------------------------------------------------ */

static kl_client_t client;
static uint8_t srv[16384], cli[16384];
static size_t srv_len, srv_off, cli_len, cli_off;
static char msgs[32][512];
static int nmsg;
static kl_event_type_t evs[64];
static int nev, last_status, ws_status;
static char body_text[64];

static void srv_send(const char *s) { srv_len += text(srv + srv_len, s); }

static void pump(size_t step)
{
    int guard, moved = 1;
    for (guard = 0; moved && guard < 100000; guard++) {
        kl_event_t ev;
        const uint8_t *p;
        size_t n, c, made, cap;
        uint8_t *buf;
        int k;
        cframe_t f[16];
        moved = 0;
        while (kl_engine_poll(&client, 0, &ev) > 0) {
            moved = 1;
            if (nev < 64)
                evs[nev++] = ev.type;
            last_status = ev.status;
            if (ev.type == KL_EV_STANZA &&
                kl_stanza_child_text(&client, &ev.stanza, "body", NULL, body_text, sizeof body_text) < 0)
                body_text[0] = 0;
        }
        p = kl_engine_output(&client, &n);
        if (n || kl_ws_want_write(&ws)) {
            int st = kl_ws_write(&ws, p, n, &c, cli + cli_len, sizeof cli - cli_len, &made);
            KT_CHECK_EQ(st, KL_OK);
            kl_engine_output_ack(&client, c);
            cli_len += made;
            moved |= c || made;
        }
        /* the server reads whole client frames */
        for (;;) {
            size_t end = cli_off, h;
            if (cli_len - cli_off < 2)
                break;
            h = (cli[cli_off + 1] & 127) == 126 ? 8 : 6;
            if (cli_len - cli_off < h)
                break;
            n = h == 8 ? ((size_t)cli[cli_off + 2] << 8 | cli[cli_off + 3]) : (cli[cli_off + 1] & 127u);
            if (cli_len - cli_off < h + n)
                break;
            end += h + n;
            k = decode(cli + cli_off, end - cli_off, f, 16);
            KT_CHECK_EQ(k, 1);
            if (k == 1 && nmsg < 32) {
                snprintf(msgs[nmsg], sizeof msgs[nmsg], "%.*s", (int)f[0].len, (const char *)f[0].data);
                if (f[0].op != 1)
                    snprintf(msgs[nmsg], sizeof msgs[nmsg], "op%d", f[0].op);
                nmsg++;
            }
            cli_off = end;
        }
        /* called also with nothing new and no room: a close frame needs none,
         * and an error found after bytes went out comes with the next call */
        buf = kl_engine_input_buf(&client, &cap);
        {
            size_t piece = step && srv_len - srv_off > step ? step : srv_len - srv_off;
            int st = kl_ws_read(&ws, srv + srv_off, piece, &c, buf, cap, &made);
            KT_CHECK(st == KL_OK ? 1 : made == 0);
            if (made)
                kl_engine_input_ack(&client, made);
            srv_off += c;
            moved |= c || made;
            if (st < 0)
                ws_status = st;
        }
    }
}

static int saw(kl_event_type_t t)
{
    for (int i = 0; i < nev; i++)
        if (evs[i] == t)
            return 1;
    return 0;
}

#define S_OPEN "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' xml:lang='en' version='1.0' id='%s' from='localhost'/>"

static void engine_login(size_t step)
{
    kl_client_config_t cfg;
    char open1[256], open2[256];
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/r";
    cfg.password = "alicepass";
    cfg.direct_tls = 1;
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.random = kt_random;
    KT_CHECK_EQ(kl_client_init(&client, &cfg), KL_OK);
    open_ws();
    srv_len = srv_off = cli_len = cli_off = 0;
    nmsg = nev = ws_status = 0;
    KT_CHECK_EQ(kl_client_connect(&client, 0, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    pump(step);
    /* safe pipelining over verified TLS: the header and PLAIN <auth/>, one message each */
    KT_CHECK_EQ(nmsg, 2);
    KT_CHECK_STR(msgs[0], "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' from='alice@localhost' "
                          "version='1.0' xml:lang='en'/>");
    KT_CHECK(strncmp(msgs[1], "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>", 65) == 0);
    snprintf(open1, sizeof open1, S_OPEN, "s-1");
    srv_send(open1);
    srv_send("<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
             "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"
             "</stream:features>");
    srv_send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    pump(step);
    /* the restart: a new <open/>, and the bind in the same flight */
    KT_CHECK_EQ(nmsg, 4);
    KT_CHECK_STR(msgs[2], msgs[0]);
    KT_CHECK(strncmp(msgs[3], "<iq xmlns='jabber:client' type='set' id='kl-bind'>", 50) == 0);
    snprintf(open2, sizeof open2, S_OPEN, "s-2");
    srv_send(open2);
    srv_send("<stream:features xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
             "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
    srv_send("<iq xmlns='jabber:client' type='result' id='kl-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
             "<jid>alice@localhost/r</jid></bind></iq>");
    pump(step);
    KT_CHECK(saw(KL_EV_ONLINE));
    KT_CHECK(!saw(KL_EV_ERROR));
    KT_CHECK_EQ(nmsg, 5);
    KT_CHECK_STR(msgs[4], "<presence xmlns='jabber:client'/>");
    /* a message each way, and a ping from the server on the way */
    KT_CHECK_EQ(kl_send_message(&client, "bob@localhost", "chat", "hi"), KL_OK);
    srv_len += sframe(srv + srv_len, 1, 9, "k", 1, 0);
    srv_send("<message xmlns='jabber:client' from='bob@localhost/x' to='alice@localhost/r' type='chat'>"
             "<body>hello</body></message>");
    pump(step);
    KT_CHECK(saw(KL_EV_STANZA));
    KT_CHECK_STR(body_text, "hello");
    KT_CHECK_EQ(nmsg, 7);
    KT_CHECK(strncmp(msgs[5], "<message xmlns='jabber:client' to='bob@localhost'", 49) == 0);
    KT_CHECK_STR(msgs[6], "op10");
    /* close: <close/> both ways, then the server's close frame (Prosody) */
    KT_CHECK_EQ(kl_client_close(&client), KL_OK);
    pump(step);
    KT_CHECK_EQ(nmsg, 8);
    KT_CHECK_STR(msgs[7], "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    srv_send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    srv_len += sframe(srv + srv_len, 1, 8, "\x03\xe8" "Stream closed", 15, 0);
    pump(step);
    KT_CHECK(saw(KL_EV_CLOSED));
    KT_CHECK_EQ(last_status, KL_OK); /* the stream closed cleanly ... */
    KT_CHECK_EQ(ws_status, KL_ERR_WS_CLOSED); /* ... then the WebSocket */
    KT_CHECK_EQ(ws.close_code, 1000);
    KT_CHECK_EQ(nmsg, 9);
    KT_CHECK_STR(msgs[8], "op8");
    KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSED);
}

/* The server answers our <open/> with a redirecting <close/> (RFC 7395
 * 3.6.1): the engine reports a stream the server closed, the codec the
 * redirect, the server's close frame ends the WebSocket. */
static void engine_redirect(size_t step)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/r";
    cfg.password = "alicepass";
    cfg.direct_tls = 1;
    cfg.random = kt_random;
    KT_CHECK_EQ(kl_client_init(&client, &cfg), KL_OK);
    open_ws();
    srv_len = srv_off = cli_len = cli_off = 0;
    nmsg = nev = ws_status = 0;
    KT_CHECK_EQ(kl_client_connect(&client, 0, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    pump(step);
    srv_send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://other.example/ws'/>");
    srv_len += sframe(srv + srv_len, 1, 8, "\x03\xe8", 2, 0);
    pump(step);
    KT_CHECK(saw(KL_EV_ERROR));
    KT_CHECK_EQ(last_status, KL_ERR_STREAM_CLOSED);
    KT_CHECK_EQ(ws.see_other, 1);
    KT_CHECK_EQ(ws_status, KL_ERR_WS_CLOSED);
    KT_CHECK_EQ(kl_ws_state(&ws), KL_WS_CLOSED);
    /* our close frame last (the engine's <close/> before it, or dropped
     * when the close frame was read first: nothing follows a close frame) */
    KT_CHECK(nmsg >= 2 && strcmp(msgs[nmsg - 1], "op8") == 0);
}

static void test_engine_login(void)
{
    engine_login(0);
    engine_login(1);
    engine_login(7);
    engine_redirect(0);
    engine_redirect(1);
}

int main(void)
{
    KT_RUN(test_sha1);
    KT_RUN(test_request);
    KT_RUN(test_accept_rfc_example);
    KT_RUN(test_refused_upgrades);
    KT_RUN(test_lengths);
    KT_RUN(test_bad_frames);
    KT_RUN(test_too_large);
    KT_RUN(test_ping_pong);
    KT_RUN(test_close);
    KT_RUN(test_continuation);
    KT_RUN(test_open_close);
    KT_RUN(test_outbound_flight);
    KT_RUN(test_outbound_edges);
    KT_RUN(test_cov_arguments);
    KT_RUN(test_cov_handshake);
    KT_RUN(test_cov_close_under_way);
    KT_RUN(test_cov_outbound_markup);
    KT_RUN(test_engine_login);
    return kt_summary("ws");
}
