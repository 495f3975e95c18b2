/* kinglet — EVA driver: the HTTP/1.1 response codec (core/kl_http.c).
 * A response is a known prefix (none; "HTTP/1.1 "; a status line; a
 * chunked head, alone, after a one-byte chunk's data and after the last
 * chunk's size line; a head with Content-Length: 3; "Content-Length: "
 * awaiting its digits) followed by every tail of length 0..PROVE_N
 * (0..PROVE_NLEN after "Content-Length: ") with every byte value; the
 * prefix is one chunk, the tail is fed in two chunks cut at any point k in
 * 0..len, into a body buffer of PROVE_CAP bytes; then the connection ends
 * (see README.md).
 *
 * prove.sh runs it with kl_http_resp_feed, on_line and parse_chunk_size's
 * return states kept apart (-eva-split-return-function ...:full): joined
 * where a function returns, a state in S_CHUNK_DATA with chunk_left 1 met
 * one in S_CHUNK_END or S_TRAILER with chunk_left 0, and the split on
 * r.state and r.chunk_left this driver had then made S_CHUNK_DATA with
 * chunk_left 0, which no execution has (the codec leaves S_CHUNK_DATA when
 * chunk_left reaches 0): a copy of 0 bytes to body + body_cap, which
 * Frama-C's memcpy contract rejects (its destination must be readable even
 * for 0 bytes).
 * Inside one call the same happened where parse_chunk_size returned, until
 * it stored chunk_left in each branch of its test on the size. */
#include "__fc_builtin.h"

#include "kinglet/kl_http.h"
#include "kl_string.h"

#ifndef PROVE_N
#define PROVE_N 8
#endif
/* The tail after "Content-Length: " (the digits' states multiply). */
#ifndef PROVE_NLEN
#define PROVE_NLEN (PROVE_N / 2)
#endif
#ifndef PROVE_CAP
#define PROVE_CAP (PROVE_N / 2)
#endif

/* Where the tail starts: none (the status line itself), the status code,
 * the headers, a chunked body (three places), a Content-Length body, a
 * Content-Length value. */
static const struct {
    const char *text;
    size_t tail; /* the tail's longest length */
} prefix[] = {
    {"", PROVE_N},
    {"HTTP/1.1 ", PROVE_N},
    {"HTTP/1.0 200 OK\r\n", PROVE_N},
    /* chunked: the tail starts at the first chunk-size line, after one
     * chunk's data (at its CRLF; the body already holds a byte), and in the
     * trailer section after the last chunk */
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", PROVE_N},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na", PROVE_N},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", PROVE_N},
    {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", PROVE_N},
    {"HTTP/1.1 200 OK\r\nContent-Length: ", PROVE_NLEN},
};

/* The tail is the last len bytes of in[]: a read past its end leaves it. */
static uint8_t in[PROVE_N];
/* The body buffer: the last cap bytes of body[]. */
static uint8_t body[PROVE_CAP];
static kl_http_resp_t r;

static void feed_all(int p)
{
    size_t len, k, used = 0;
    const uint8_t *buf;
    int st;
    /* the prefix once, before the tail's cases are split */
    kl_http_resp_init(&r, body, sizeof body);
    st = kl_http_resp_feed(&r, (const uint8_t *)prefix[p].text, strlen(prefix[p].text), &used);
    len = Frama_C_size_t_interval(0, prefix[p].tail);
    //@ split len;
    buf = in + (PROVE_N - len);
    k = Frama_C_size_t_interval(0, len);
    //@ split k;
    if (st == 0)
        st = kl_http_resp_feed(&r, buf, k, &used);
    /* the codec's states after a chunk are not joined where
     * kl_http_resp_feed returns (prove.sh's -eva-split-return-function):
     * the next chunk starts from each of them apart */
    if (st == 0)
        st = kl_http_resp_feed(&r, buf + k, len - k, &used);
    if (st == 0)
        st = kl_http_resp_eof(&r);
    if (st == 1)
        Frama_C_show_each_ok(p, r.status, r.body_len);
    else
        Frama_C_show_each_err(p, st);
    //@ merge k;
    //@ merge len;
}

int main(void)
{
    int p;
    Frama_C_make_unknown((char *)in, sizeof in);
    for (p = 0; p < (int)(sizeof prefix / sizeof prefix[0]); p++)
        feed_all(p);
    Frama_C_show_each_done(0);
    return 0;
}
