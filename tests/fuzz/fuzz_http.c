/* libFuzzer target for the HTTP/1.1 response parser (core/kl_http.c).
 *
 * Input: one byte choosing the body buffer's size (0..255 * 16), one byte
 * choosing a split step, then the bytes a server sends. The response is fed
 * whole and again in pieces of `step` bytes; checked: every result is 1, 0
 * or a named error; consumed never exceeds what was given; the body never
 * exceeds its buffer; both feeds agree on result, status, body and bytes
 * consumed; errors are sticky; a request head is written for any length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinglet/kl_http.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static uint8_t body_a[4096], body_b[4096];

static int named(int st) { return st < 0 && strcmp(kl_strerror(st), "unknown error") != 0; }

static int run(kl_http_resp_t *r, uint8_t *body, size_t cap, const uint8_t *d, size_t n, size_t step,
               size_t *used)
{
    size_t off = 0, c;
    int st = 0;
    kl_http_resp_init(r, body, cap);
    while (off < n) {
        size_t piece = n - off < step ? n - off : step;
        st = kl_http_resp_feed(r, d + off, piece, &c);
        CHECK(c <= piece);
        CHECK(r->body_len <= cap);
        off += c;
        if (st != 0)
            break;
        CHECK(c == piece);
    }
    if (st == 0)
        st = kl_http_resp_eof(r);
    CHECK(st == 1 || named(st));
    *used = off;
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kl_http_resp_t a, b;
    size_t cap, step, ua, ub, c;
    int sa, sb;
    uint8_t req[256];
    if (size < 2)
        return 0;
    cap = (size_t)data[0] * 16;
    step = (size_t)(data[1] % 64) + 1;
    data += 2;
    size -= 2;
    sa = run(&a, body_a, cap, data, size, size ? size : 1, &ua);
    sb = run(&b, body_b, cap, data, size, step, &ub);
    CHECK(sa == sb);
    if (sa == 1) {
        CHECK(ua == ub && a.status == b.status && a.body_len == b.body_len);
        CHECK(memcmp(body_a, body_b, a.body_len) == 0);
        CHECK(a.status >= 200 && a.status <= 999);
    } else {
        CHECK(kl_http_resp_feed(&a, data, size, &c) == sa); /* sticky */
    }
    CHECK(kl_http_write_request(req, sizeof req, "localhost", "/http-bind", size) > 0);
    CHECK(kl_http_write_request(req, 20, "localhost", "/http-bind", size) == KL_ERR_TOO_LARGE);
    return 0;
}
