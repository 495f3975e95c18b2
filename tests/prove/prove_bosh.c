/* kinglet — EVA driver: the BOSH framing (core/kl_bosh.c, with the real
 * kl_http.c, kl_xml.c and kl_xw.c; the engine is stubbed, see below).
 *
 * Requests (kl_bosh_pull, kl_bosh_next_request): the engine's output is one
 * flight made of a known beginning (none; the stream header
 * "<?xml version='1.0'?><stream:stream ...>"; that header and an open
 * "<a x='1'>") followed by every tail of 0..PROVE_N unknown bytes; it is
 * scanned into the queue (the output scanner that adds
 * xmlns='jabber:client' to top-level elements) and, once a header was
 * seen, framed into the session creation request.
 *
 * Responses (kl_bosh_response, kl_bosh_conn_failed, kl_bosh_push): after a
 * concrete creation request, the connection manager's answer is
 * "HTTP/1.1 200 OK\r\nContent-Length: K\r\n\r\n" (K the exact body length)
 * and a body made of a known beginning (none; the <body/> start tag with
 * sid, wait, requests; that and an open child "<m>"), every middle of
 * 0..PROVE_N unknown bytes, and a known end (none; "</body>";
 * "</m></body>"). The head and beginning are one chunk, the middle is fed
 * in two chunks cut at any point, then the end; then kl_bosh_push is called
 * until it has nothing more (each element is handed to the engine, with
 * the synthetic stream header when the engine awaits one). Only
 * Content-Length responses: kl_http.c's chunked path has an open false
 * alarm (prove_http.c, PROVE_CHUNKED).
 *
 * The engine stubs keep to kinglet.h's contracts: kl_engine_output hands
 * out the driver's flight (pointer/length inside a static array);
 * kl_engine_output_ack must ack no more than that (an out-of-bounds read
 * in the stub otherwise); kl_engine_input reads every byte it is handed
 * (they must be readable and initialised) and takes none, one or all of
 * them; kl_engine_awaiting_header answers 0 or 1.
 *
 * Not seen by the proof: a read of s->body past the response's body_len
 * but inside the slot's buffer (kl_bosh_init zeroes the whole state, so
 * those bytes are initialised); kl_xml's own bounds are proved by
 * prove_xml.c. */
#include "__fc_builtin.h"

#include "kinglet/kl_bosh.h"
#include "kl_internal.h"
#include "kl_string.h"

#include "prove_memcmp.h" /* memcmp with a body EVA can follow */

#ifndef PROVE_N
#define PROVE_N 4
#endif

/* ---- engine stubs ----------------------------------------------------- */

static const uint8_t *o_p;
static size_t o_len;
static volatile uint8_t sink;
static const uint8_t ack_ok[1] = {1};

const uint8_t *kl_engine_output(kl_client_t *c, size_t *len)
{
    (void)c;
    *len = o_len;
    return o_len ? o_p : NULL;
}

void kl_engine_output_ack(kl_client_t *c, size_t n)
{
    (void)c;
    sink = ack_ok[n > o_len]; /* acking more than was handed out: alarm */
    o_p += n;
    o_len -= n;
}

size_t kl_engine_input(kl_client_t *c, const uint8_t *data, size_t len)
{
    size_t i;
    (void)c;
    for (i = 0; i < len; i++)
        sink = data[i];
#ifdef PROVE_TAKE_ALL
    return len;
#else
    switch (Frama_C_interval(0, 2)) {
    case 0:
        return 0;
    case 1:
        return len ? 1 : 0;
    default:
        return len;
    }
#endif
}

int kl_engine_awaiting_header(const kl_client_t *c)
{
    (void)c;
    return Frama_C_interval(0, 1);
}

void kl_i_set_framed(struct kl_client *c, int framed) { (void)c, (void)framed; }

/* ---- driver ---------------------------------------------------------------- */

static kl_bosh_t b;
static kl_client_t c;
static const kl_bosh_config_t cfg = {"example.org", "/http-bind", "example.org", NULL, 0, 0, 7, 0};

#define HEADER                                                                                                   \
    "<?xml version='1.0'?><stream:stream to='example.org' xmlns='jabber:client' "                             \
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

static const char *const out_head[] = {"", HEADER, HEADER "<a x='1'>"};

/* The unknown bytes: the last len bytes of in[]. */
static uint8_t in[PROVE_N];
/* A flight: known beginning + the tail, ending at the array's end. */
static uint8_t flight[sizeof HEADER "<a x='1'>" + PROVE_N];

static void requests(int p)
{
    size_t len, hl = strlen(out_head[p]), i, n;
    const uint8_t *req;
    int st;
    kl_bosh_init(&b, &cfg);
    len = Frama_C_size_t_interval(0, PROVE_N);
    //@ split len;
    o_p = flight + sizeof flight - hl - len;
    o_len = hl + len;
    for (i = 0; i < hl; i++)
        flight[sizeof flight - hl - len + i] = (uint8_t)out_head[p][i];
    for (i = 0; i < len; i++)
        flight[sizeof flight - len + i] = in[PROVE_N - len + i];
    st = kl_bosh_pull(&b, &c);
    if (st < 0)
        Frama_C_show_each_pull_err(p, st);
    st = kl_bosh_next_request(&b, &req, &n);
    if (st >= 0) {
        for (i = 0; i < n; i++)
            sink = req[i];
        Frama_C_show_each_request(p, st, n);
    } else {
        Frama_C_show_each_no_request(p, st);
    }
    //@ merge len;
}

static const struct {
    const char *begin, *end;
} body[] = {
    {"", ""},
    {"<body xmlns='http://jabber.org/protocol/httpbind' sid='s1' wait='60' requests='2'>", "</body>"},
    {"<body xmlns='http://jabber.org/protocol/httpbind' sid='s1' wait='60' requests='2'><m>", "</m></body>"},
};

static char resp_head[200];

static size_t put(size_t at, const char *s)
{
    size_t l = strlen(s);
    memcpy(resp_head + at, s, l);
    return at + l;
}

static void responses(int p)
{
    size_t len, k, hl, used, i, n, bl, d;
    const uint8_t *req;
    char num[8];
    int st, slot;
    kl_bosh_init(&b, &cfg);
    o_p = (const uint8_t *)HEADER;
    o_len = sizeof HEADER - 1;
    kl_bosh_pull(&b, &c);
    o_len = 0;
    slot = kl_bosh_next_request(&b, &req, &n);
    if (slot != 0) {
        Frama_C_show_each_setup_failed(slot);
        return;
    }
    len = Frama_C_size_t_interval(0, PROVE_N);
    //@ split len;
    bl = strlen(body[p].begin) + len + strlen(body[p].end);
    d = sizeof num - 1;
    num[d] = '\0';
    do {
        num[--d] = (char)('0' + bl % 10);
        bl /= 10;
    } while (bl);
    hl = put(0, "HTTP/1.1 200 OK\r\nContent-Length: ");
    hl = put(hl, num + d);
    hl = put(hl, "\r\n\r\n");
    hl = put(hl, body[p].begin);
    st = kl_bosh_response(&b, slot, (const uint8_t *)resp_head, hl, &used);
    k = Frama_C_size_t_interval(0, len);
    //@ split k;
    if (st == 0)
        st = kl_bosh_response(&b, slot, in + (PROVE_N - len), k, &used);
    if (st == 0)
        st = kl_bosh_response(&b, slot, in + (PROVE_N - len) + k, len - k, &used);
    if (st == 0)
        st = kl_bosh_response(&b, slot, (const uint8_t *)body[p].end, strlen(body[p].end), &used);
    if (st == 0)
        st = kl_bosh_conn_failed(&b, slot);
    if (st == 1) {
        for (i = 0; i < 2 * PROVE_N + 4; i++) {
            st = kl_bosh_push(&b, &c);
            if (st <= 0)
                break;
            if (b.in_elem || b.el_fed)
                Frama_C_show_each_fed(p, b.el_fed);
            if (b.cur < 0)
                Frama_C_show_each_body_done(p);
        }
    }
    if (st < 0)
        Frama_C_show_each_resp_err(p, st);
    //@ merge k;
    //@ merge len;
}

int main(void)
{
    int p;
    Frama_C_make_unknown((char *)in, sizeof in);
    Frama_C_make_unknown((char *)flight, sizeof flight);
#ifndef PROVE_SKIP_REQ
    for (p = 0; p < 3; p++)
        requests(p);
#endif
#ifndef PROVE_RESP
#define PROVE_RESP 0, 1, 2
#endif
    {
        static const int which[] = {PROVE_RESP};
        for (p = 0; p < (int)(sizeof which / sizeof which[0]); p++)
            responses(which[p]);
    }
    Frama_C_show_each_done(0);
    return 0;
}
