/* kinglet — EVA driver: the HTTP/1.1 response codec (core/kl_http.c).
 * A response is a known prefix (none; "HTTP/1.1 "; a status line; a head
 * with Content-Length: 3; "Content-Length: " awaiting its digits) followed
 * by every tail of length 0..PROVE_N (0..PROVE_NLEN after
 * "Content-Length: ") with every byte value; the prefix is one chunk, the
 * tail is fed in two chunks cut at any point k in 0..len, into a body
 * buffer of PROVE_CAP bytes; then the connection ends (see README.md).
 * Chunked bodies are not in the proof yet (PROVE_CHUNKED below). */
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
 * the headers, a Content-Length body, a Content-Length value. */
static const struct {
    const char *text;
    size_t tail; /* the tail's longest length */
} prefix[] = {
    {"", PROVE_N},
    {"HTTP/1.1 ", PROVE_N},
    {"HTTP/1.0 200 OK\r\n", PROVE_N},
#ifdef PROVE_CHUNKED
    /* not in the proof yet: memcpy's precondition stays unknown in the
     * chunk data (the relation body_len + n <= body_cap is lost where the
     * states are joined) */
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", PROVE_N},
#endif
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
    /* the codec's states after a chunk are joined where kl_http_resp_feed
     * returns: split them again on what the next chunk's bounds depend on */
    //@ split r.state;
    //@ split r.body_len;
    //@ split r.chunk_left;
    if (st == 0)
        st = kl_http_resp_feed(&r, buf + k, len - k, &used);
    if (st == 0)
        st = kl_http_resp_eof(&r);
    if (st == 1)
        Frama_C_show_each_ok(p, r.status, r.body_len);
    else
        Frama_C_show_each_err(p, st);
    //@ merge r.chunk_left;
    //@ merge r.body_len;
    //@ merge r.state;
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
