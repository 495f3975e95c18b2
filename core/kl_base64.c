/* kinglet — base64 (RFC 4648), streaming encoder and bounded decoder. */
#include "kl_internal.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void kl_b64_init(kl_b64_t *b, kl_xw_t *w)
{
    b->w = w;
    b->npend = 0;
}

static void emit(kl_b64_t *b, const uint8_t in[3], size_t n)
{
    uint8_t out[4];
    uint32_t v = (uint32_t)in[0] << 16 | (uint32_t)(n > 1 ? in[1] : 0) << 8 | (n > 2 ? in[2] : 0);
    out[0] = (uint8_t)b64[v >> 18 & 63];
    out[1] = (uint8_t)b64[v >> 12 & 63];
    out[2] = n > 1 ? (uint8_t)b64[v >> 6 & 63] : '=';
    out[3] = n > 2 ? (uint8_t)b64[v & 63] : '=';
    kl_xw_raw(b->w, out, 4);
}

void kl_b64_feed(kl_b64_t *b, const uint8_t *data, size_t len)
{
    while (len--) {
        b->pend[b->npend++] = *data++;
        if (b->npend == 3) {
            emit(b, b->pend, 3);
            b->npend = 0;
        }
    }
}

void kl_b64_finish(kl_b64_t *b)
{
    if (b->npend)
        emit(b, b->pend, b->npend);
    b->npend = 0;
}

static int val(uint8_t ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

int kl_b64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t i, o = 0;
    if (len % 4)
        return KL_ERR_PROTOCOL;
    for (i = 0; i < len; i += 4) {
        int a = val(in[i]), b = val(in[i + 1]), c, d;
        int last = i + 4 == len;
        c = (last && in[i + 2] == '=') ? -2 : val(in[i + 2]);
        d = (last && in[i + 3] == '=') ? -2 : val(in[i + 3]);
        if (a < 0 || b < 0 || c == -1 || d == -1 || (c == -2 && d != -2))
            return KL_ERR_PROTOCOL;
        if (o + 1 + (c >= 0) + (d >= 0) > cap)
            return KL_ERR_TOO_LARGE;
        out[o++] = (uint8_t)(a << 2 | b >> 4);
        if (c >= 0)
            out[o++] = (uint8_t)((b & 15) << 4 | c >> 2);
        if (d >= 0)
            out[o++] = (uint8_t)((c & 3) << 6 | d);
    }
    return (int)o;
}
