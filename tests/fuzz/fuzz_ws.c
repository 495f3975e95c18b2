/* libFuzzer target for the WebSocket framing (core/kl_ws.c): the upgrade
 * response, the inbound frame parser with the RFC 7395 translation, and the
 * outbound side over whatever it is given.
 *
 * Input: three option bytes, then the server's bytes.
 *   byte 0: bit 0 = a valid 101 response goes first (so that frames are
 *           reached; otherwise the input is the response), bit 1 = the
 *           server's bytes are also given to kl_ws_write() as engine output,
 *           bit 2 = kl_ws_ping() and kl_ws_close() are called on the way;
 *   byte 1: chunk size of the split run (1..64);
 *   byte 2: output room per call in the split run (1..256; 0 means 0).
 * The bytes are fed whole (output room unbounded) and split; checked: every
 * status is KL_OK or a named error, a call never consumes or produces more
 * than it was given, an error call produces nothing, errors are sticky,
 * kl_ws_read_pending() is 0 once a call moved nothing,
 * both runs agree on the status, the output bytes and the close code, and
 * nothing loops. Everything kl_ws_write() emits decodes as masked frames
 * that fit the bytes emitted. The hash is a constant (its accept value is
 * in the canned response and in the corpus): the fuzzer reaches the frames
 * either way.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinglet/kl_ws.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static int named(int st) { return st < 0 && strcmp(kl_strerror(st), "unknown error") != 0; }

/* SHA-1 stand-in: 20 zero bytes, so Sec-WebSocket-Accept is
 * base64 of them: AAAAAAAAAAAAAAAAAAAAAAAAAAA= */
static int zero_hash(void *ctx, kl_hash_alg_t alg, const uint8_t *data, size_t len, uint8_t *out)
{
    (void)ctx, (void)data, (void)len;
    CHECK(alg == KL_HASH_SHA1);
    memset(out, 0, 20);
    return 0;
}

static uint32_t rstate;
static int rnd(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    while (len--) {
        rstate = rstate * 1103515245u + 12345u;
        *out++ = (uint8_t)(rstate >> 16);
    }
    return 0;
}

static const kl_crypto_t crypto = {NULL, zero_hash, NULL, NULL, NULL};
static const char canned[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"
                             "Sec-WebSocket-Protocol: xmpp\r\n\r\n";

#define OUT_MAX (1u << 17)
static uint8_t out_a[OUT_MAX], out_b[OUT_MAX], wire[1u << 16], in[8192];

/* Client frames in w[0..n): masked, lengths within n. */
static void check_frames(const uint8_t *w, size_t n)
{
    size_t off = 0;
    while (off < n) {
        size_t h = 2, len, i;
        CHECK(n - off >= 6);
        CHECK(w[off + 1] & 0x80);
        CHECK((w[off] & 0x70) == 0 && (w[off] & 0x80));
        len = w[off + 1] & 127;
        if (len == 126) {
            len = (size_t)w[off + 2] << 8 | w[off + 3];
            CHECK(len >= 126);
            h = 4;
        } else if (len == 127) {
            for (len = 0, i = 0; i < 8; i++)
                len = len << 8 | w[off + 2 + i];
            CHECK(len > 0xffff);
            h = 10;
        }
        CHECK(n - off >= h + 4 && len <= n - off - h - 4);
        if ((w[off] & 15) >= 8)
            CHECK(len <= 125);
        off += h + 4 + len;
    }
}

/* Flush what kl_ws_write has to send (control frames), in pieces of room. */
static void flush(kl_ws_t *ws, size_t room)
{
    size_t w = 0, c, p;
    int guard, st;
    for (guard = 0; guard < 100000; guard++) {
        size_t r = room < sizeof wire - w ? room : sizeof wire - w;
        st = kl_ws_write(ws, NULL, 0, &c, wire + w, r, &p);
        CHECK(st == KL_OK || named(st));
        CHECK(c == 0 && p <= r);
        if (st < 0)
            CHECK(p == 0);
        w += p;
        if (!p)
            break;
    }
    CHECK(guard < 100000);
    CHECK(w == sizeof wire || !kl_ws_want_write(ws) || room == 0);
    check_frames(wire, w);
}

/* One run: returns the final read status; output in out, *olen. */
static int run(kl_ws_t *ws, const uint8_t *d, size_t n, size_t step, size_t room, int opts, uint8_t *out,
               size_t *olen)
{
    kl_ws_config_t cfg;
    size_t off = 0, o = 0, c, p;
    int st = KL_OK, guard, calls = 0;
    uint8_t req[512];
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "localhost";
    cfg.port = 5280;
    cfg.path = "/xmpp-websocket";
    cfg.random = rnd;
    cfg.crypto = &crypto;
    rstate = 1;
    CHECK(kl_ws_init(ws, &cfg) == KL_OK);
    CHECK(kl_ws_request(ws, req, sizeof req, &p) == KL_OK && p > 0);
    for (guard = 0; guard < 1000000; guard++) {
        size_t piece = n - off < step ? n - off : step;
        size_t r = room < OUT_MAX - o ? room : OUT_MAX - o;
        st = kl_ws_read(ws, d + off, piece, &c, out + o, r, &p);
        CHECK(st == KL_OK || named(st));
        CHECK(c <= piece && p <= r);
        if (st < 0) {
            CHECK(p == 0);
            CHECK(kl_ws_read(ws, d + off, piece, &c, out + o, r, &p) == st && c == 0 && p == 0); /* sticky */
            break;
        }
        off += c;
        o += p;
        if ((opts & 4) && ++calls == 3) {
            int s1 = kl_ws_ping(ws), s2 = kl_ws_close(ws, 1000);
            CHECK(s1 == KL_OK || s1 == KL_ERR_STATE);
            CHECK(s2 == KL_OK || s2 == KL_ERR_STATE);
        }
        flush(ws, room ? room : 1);
        if (!c && !p)
            break;
    }
    CHECK(guard < 1000000);
    /* nothing left for a call without new bytes, unless there was no room */
    CHECK(!kl_ws_read_pending(ws) || room == 0 || o == OUT_MAX);
    flush(ws, room ? room : 1); /* the close frame an error or the server's close left owed */
    CHECK(!kl_ws_want_write(ws));
    *olen = o;
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kl_ws_t a, b;
    size_t step, room, n, la, lb;
    int opts, sa, sb;
    if (size < 3 || size > sizeof in - sizeof canned)
        return 0;
    opts = data[0];
    step = (size_t)(data[1] % 64) + 1;
    room = data[2];
    data += 3;
    size -= 3;
    n = 0;
    if (opts & 1) {
        memcpy(in, canned, sizeof canned - 1);
        n = sizeof canned - 1;
    }
    memcpy(in + n, data, size);
    n += size;
    sa = run(&a, in, n, n ? n : 1, OUT_MAX, opts & 4 ? 0 : opts, out_a, &la);
    sb = run(&b, in, n, step, room, opts & 4 ? 0 : opts, out_b, &lb);
    if (room) {
        /* the same verdict and the same bytes however the input is cut */
        CHECK(sa == sb);
        CHECK(la == lb && memcmp(out_a, out_b, la) == 0);
        CHECK(a.close_code == b.close_code && a.http_status == b.http_status);
        CHECK(kl_ws_state(&a) == kl_ws_state(&b));
    }
    /* ping/close on the way (not compared: the split run makes more calls) */
    if (opts & 4)
        (void)run(&b, in, n, step, room ? room : 1, opts, out_b, &lb);
    /* the server's bytes as engine output: never a crash, frames well formed */
    if ((opts & 2) && kl_ws_state(&a) != KL_WS_CONNECTING) {
        size_t off = 0, w = 0, c, p, r = room ? room : 1;
        int guard, st;
        for (guard = 0; guard < 1000000 && w < sizeof wire; guard++) {
            size_t rr = r < sizeof wire - w ? r : sizeof wire - w;
            st = kl_ws_write(&a, data + off, size - off, &c, wire + w, rr, &p);
            CHECK(st == KL_OK || named(st));
            CHECK(c <= size - off && p <= rr);
            if (st < 0) {
                CHECK(p == 0);
                break;
            }
            off += c;
            w += p;
            if (!c && !p)
                break;
        }
        CHECK(guard < 1000000);
        if (w < sizeof wire && !kl_ws_want_write(&a))
            check_frames(wire, w);
    }
    return 0;
}
