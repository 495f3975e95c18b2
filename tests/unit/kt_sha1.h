/*
 * tests/unit/kt_sha1.h — SHA-1 (FIPS 180-4) and base64 (RFC 4648) for the
 * unit tests (the WebSocket servers' Sec-WebSocket-Accept key, the caps
 * ver), written apart from core/ and the port's crypto so that a test does
 * not check core/ against itself. Header-only; include once per test.
 */
#ifndef KT_SHA1_H
#define KT_SHA1_H

#include <stddef.h>
#include <stdint.h>

static uint32_t rol(uint32_t x, int n) { return x << n | x >> (32 - n); }

static void sha1(const uint8_t *d, size_t n, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    size_t nb = (n + 9 + 63) / 64, b, i;
    for (b = 0; b < nb; b++) {
        uint32_t w[80], a, bb, c, dd, e, f, k, t;
        for (i = 0; i < 64; i++) {
            size_t p = b * 64 + i;
            uint8_t ch = p < n ? d[p] : p == n ? 0x80 : 0;
            if (b == nb - 1 && i >= 56)
                ch = (uint8_t)((unsigned long long)n * 8 >> (8 * (63 - i)));
            if (i % 4 == 0)
                w[i / 4] = 0;
            w[i / 4] |= (uint32_t)ch << (8 * (3 - i % 4));
        }
        for (i = 16; i < 80; i++)
            w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        a = h[0], bb = h[1], c = h[2], dd = h[3], e = h[4];
        for (i = 0; i < 80; i++) {
            if (i < 20)
                f = (bb & c) | (~bb & dd), k = 0x5A827999u;
            else if (i < 40)
                f = bb ^ c ^ dd, k = 0x6ED9EBA1u;
            else if (i < 60)
                f = (bb & c) | (bb & dd) | (c & dd), k = 0x8F1BBCDCu;
            else
                f = bb ^ c ^ dd, k = 0xCA62C1D6u;
            t = rol(a, 5) + f + e + k + w[i];
            e = dd, dd = c, c = rol(bb, 30), bb = a, a = t;
        }
        h[0] += a, h[1] += bb, h[2] += c, h[3] += dd, h[4] += e;
    }
    for (i = 0; i < 20; i++)
        out[i] = (uint8_t)(h[i / 4] >> (8 * (3 - i % 4)));
}

/* base64 of in[0..n), NUL-terminated, into out (4 * ((n + 2) / 3) + 1 bytes) */
static inline void b64(const uint8_t *in, size_t n, char *out) /* inline: not every test uses it */
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = i + 1 < n ? al[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? al[v & 63] : '=';
    }
    out[o] = 0;
}

#endif
