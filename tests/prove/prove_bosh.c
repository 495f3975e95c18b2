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
 * the synthetic stream header when the engine awaits one), once per take
 * policy of the engine (below), from the same state. Only Content-Length
 * responses here: kl_http.c's chunked bodies are proved by prove_http.c.
 *
 * The engine stubs keep to kinglet.h's contracts: kl_engine_output hands
 * out the driver's flight (pointer/length inside a static array);
 * kl_engine_output_ack must ack no more than that (an out-of-bounds read
 * in the stub otherwise); kl_engine_input reads every byte it is handed
 * (they must be readable and initialised) and takes them by a policy the
 * driver fixes per run, one for the synthetic header and one for the
 * element (all; one byte per call; one byte and nothing on the next call,
 * alternately, so that feeding stops and resumes at every position;
 * nothing), every pair; kl_engine_awaiting_header answers 0 or 1. (A take
 * of none, one or all chosen afresh at each call made the states multiply
 * past any slevel: 5 minutes without an end at N=2.)
 *
 * Options (prove.sh, OPTS[bosh]): -eva-split-return full, because
 * markup_end's "incomplete" return (0, any byte) merged with its "ends
 * at e" return (the byte before e is '>') gave kl_bosh.c's bosh_take a
 * state where the tag-name scan runs to e, which cannot happen (it stops at
 * that '>'), and memcpy's source one past the flight: stock options at N=2
 * report memcpy's valid_src "invalid" at the third copy of a top-level
 * start tag, and at N=4 out-of-bounds reads in markup_end and bosh_take;
 * with the returns kept apart there are none. Read by hand, and by an
 * exhaustive ASan/UBSan run of kl_bosh_pull over every tail of up to 5
 * bytes from 16 the scanner tests (< > / ! ? ' " space tab = [ ] - x s C)
 * after these beginnings, "<a>" and "<stream:stream>" (flight at the end
 * of an exact heap block), the bounds hold: imprecision, not a defect.
 * -eva-slevel-function push_calls:100000,responses:100000: their loops
 * (the push calls, the policies) are concrete, but see more than 1000
 * states in all.
 *
 * Reads of s->body past the response's body_len (inside the slot's
 * buffer) are seen through the 32 bytes after the body made indeterminate,
 * for the bodies with a known beginning (poison_after_body); kl_xml's own
 * bounds are proved by prove_xml.c. Only the creation request is built
 * (kl_bosh_next_request after the first flight).
 *
 * To look at one part: -DPROVE_SKIP_REQ, -DPROVE_SKIP_RESP, and
 * -DPROVE_REQ=i,... / -DPROVE_RESP=i,... (which beginnings, 0..2). */
#include "__fc_builtin.h"

#include "kinglet/kl_bosh.h"
#include "kl_internal.h"
#include "kl_string.h"

#include "prove_memcmp.h" /* memcmp with a body EVA can follow */

#ifndef PROVE_N
#define PROVE_N 4
#endif

/* ---- engine stubs ----------------------------------------------------- */

static kl_bosh_t b;
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

/* How the engine takes what kl_engine_input hands it: a policy per phase
 * (the synthetic stream header; then the element), chosen by the driver,
 * so that each run is one sequence of takes (a choice at every call made
 * the states multiply past any slevel): all of it; one byte per call; one
 * byte, then nothing on the next call, alternately (so that feed_elem
 * returns, and is resumed, at every position); nothing. */
enum { TAKE_ALL, TAKE_ONE, TAKE_ALT, TAKE_NONE, TAKE_POLICIES };
static int take_hdr, take_el, take_tick;

size_t kl_engine_input(kl_client_t *c, const uint8_t *data, size_t len)
{
    size_t i;
    int mode = b.hdr_fed != 0xFF ? take_hdr : take_el; /* 0xFF: kl_bosh.c's HDR_DONE */
    (void)c;
    for (i = 0; i < len; i++)
        sink = data[i];
    switch (mode) {
    case TAKE_ALL:
        return len;
    case TAKE_ONE:
        return len ? 1 : 0;
    case TAKE_ALT:
        take_tick = !take_tick;
        return take_tick && len ? 1 : 0;
    default:
        return 0;
    }
}

int kl_engine_awaiting_header(const kl_client_t *c)
{
    (void)c;
    return Frama_C_interval(0, 1);
}

void kl_i_set_framed(struct kl_client *c, int framed) { (void)c, (void)framed; }

/* ---- driver ---------------------------------------------------------------- */

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

static kl_bosh_t saved;
static char resp_head[200];

/* Called at the end of each part: the driver's globals take one value
 * again (the next part sets them afresh), so that the states a part ends
 * with are all the same and the next part starts from one state instead of
 * once per outcome of the previous part. */
static void settle(void)
{
    memset(&b, 0, sizeof b);
    memset(&saved, 0, sizeof saved);
    memset(resp_head, 0, sizeof resp_head);
    Frama_C_make_unknown((char *)flight, sizeof flight);
    o_p = NULL;
    o_len = 0;
    take_hdr = take_el = take_tick = 0;
    sink = 0;
}

/* Reads every byte of a request (each must be readable and initialised);
 * a function of its own, so that its loop counts against its own slevel. */
static void read_all(const uint8_t *req, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        sink = req[i];
}

static void requests(int p)
{
    size_t len, hl = strlen(out_head[p]), n;
    const uint8_t *req;
    int st;
    kl_bosh_init(&b, &cfg);
    len = Frama_C_size_t_interval(0, PROVE_N);
    //@ split len;
    o_p = flight + sizeof flight - hl - len;
    o_len = hl + len;
    if (hl) /* (Frama-C's memcpy wants a valid pointer even for 0 bytes) */
        memcpy(flight + sizeof flight - hl - len, out_head[p], hl);
    if (len)
        memcpy(flight + sizeof flight - len, in + PROVE_N - len, len);
    st = kl_bosh_pull(&b, &c);
    if (st < 0)
        Frama_C_show_each_pull_err(p, st);
    st = kl_bosh_next_request(&b, &req, &n);
    if (st >= 0) {
        read_all(req, n);
        Frama_C_show_each_request(p, st, n);
    } else {
        Frama_C_show_each_no_request(p, st);
    }
    settle();
    //@ merge len;
}

static const struct {
    const char *begin, *end;
} body[] = {
    {"", ""},
    {"<body xmlns='http://jabber.org/protocol/httpbind' sid='s1' wait='60' requests='2'>", "</body>"},
    {"<body xmlns='http://jabber.org/protocol/httpbind' sid='s1' wait='60' requests='2'><m>", "</m></body>"},
};


static size_t put(size_t at, const char *s)
{
    size_t l = strlen(s);
    memcpy(resp_head + at, s, l);
    return at + l;
}

/* kl_bosh_push until it has nothing more, from the saved state, with the
 * given take policies: enough calls for the alternating policy to hand the
 * synthetic header and every element a byte per two calls. */
#define PUSH_CALLS (2 * (128 + 16 + PROVE_N))
static void push_calls(int p, int th, int te)
{
    int i, st;
    take_hdr = th, take_el = te, take_tick = 0;
    for (i = 0; i < PUSH_CALLS; i++) {
        st = kl_bosh_push(&b, &c);
        if (st < 0) {
            Frama_C_show_each_resp_err(p, st);
            return;
        }
        if (b.in_elem || b.el_fed)
            Frama_C_show_each_fed(p, b.el_fed);
        if (st == 1 && b.cur < 0)
            Frama_C_show_each_body_done(p);
        if (st == 0 && (b.cur < 0 || (b.hdr_fed != 0xFF ? th : te) == TAKE_NONE))
            return; /* nothing more; or the engine takes nothing: the same again */
    }
    Frama_C_show_each_push_calls_left(p, th, te); /* not reached: PUSH_CALLS is enough */
}

/* The same from the saved state, which is put back afterwards: every run
 * leaves the same state, so the next policy starts from one state, not from
 * one per outcome of the previous run. */
static void push_all(int p, int th, int te)
{
    b = saved;
    push_calls(p, th, te);
    b = saved;
    take_hdr = take_el = take_tick = 0;
    sink = 0; /* the same state after every run (see settle) */
}

/* The 32 bytes after the response's body in the slot's buffer are made
 * indeterminate (kl_bosh_init zeroed them): a read past the body there is
 * then an alarm (uninitialised), as a read past the array's end is. Done
 * for the bodies with a known beginning (p > 0), which reach every read
 * kl_bosh.c makes of a body; a body of unknown bytes only (p = 0) ends at
 * the first token, inside kl_xml_next, whose bounds prove_xml.c proves
 * (with -eva-ilevel 256, which costs this driver minutes: without it,
 * poisoning there gives a false alarm in the tokenizer's attribute scan). */
static void poison_after_body(int slot)
{
    uint8_t junk[32]; /* never written: indeterminate */
    memcpy(b.slot[slot].body + b.slot[slot].resp.body_len, junk, sizeof junk);
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
        /* every take policy of the engine, from the same state: the synthetic
         * header's (when awaited) and the element's */
        int th, te;
        if (p > 0)
            poison_after_body(slot);
        saved = b;
        for (th = 0; th < TAKE_POLICIES; th++)
            for (te = 0; te < TAKE_POLICIES; te++)
                if (th != TAKE_NONE || te == 0) /* else the element is never reached */
                    push_all(p, th, te);
    } else if (st < 0) {
        Frama_C_show_each_resp_err(p, st);
    }
    settle();
    //@ merge k;
    //@ merge len;
}

int main(void)
{
    int p;
    Frama_C_make_unknown((char *)in, sizeof in);
    Frama_C_make_unknown((char *)flight, sizeof flight);
#ifndef PROVE_SKIP_REQ
#ifndef PROVE_REQ
#define PROVE_REQ 0, 1, 2
#endif
    {
        static const int which[] = {PROVE_REQ};
        for (p = 0; p < (int)(sizeof which / sizeof which[0]); p++)
            requests(which[p]);
    }
#endif
#ifndef PROVE_SKIP_RESP
#ifndef PROVE_RESP
#define PROVE_RESP 0, 1, 2
#endif
    {
        static const int which[] = {PROVE_RESP};
        for (p = 0; p < (int)(sizeof which / sizeof which[0]); p++)
            responses(which[p]);
    }
#endif
    Frama_C_show_each_done(0);
    return 0;
}
