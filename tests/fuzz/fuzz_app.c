/* libFuzzer target: the application layer (kl_app.h) on an online engine
 * fed a hostile server's stanzas, whole and larger than the receive
 * buffer.
 *
 * Input layout:
 *   byte 0   options: bits 0-1 the subscription policy (KL_SUB_*); bit 2
 *            the IQ handler claims get requests and answers them at
 *            KL_PART_STANZA, bit 3 (without bit 2) at KL_PART_END;
 *            bit 4 the message handler replies; bit 5 the stream
 *            features offer CSI and roster versioning (with hints)
 *   then     the server's stream after online (a canned login precedes
 *            it). 0xFF followed by one control byte is taken out of the
 *            stream and runs an action there: a long message
 *            (kl_send_message_begin / kl_send_text in pieces / end),
 *            time passes, kl_sub_answer, kl_app_presence, a PubSub
 *            publish, a MUC join, CSI, a roster get.
 *
 * Invariants (abort on violation), besides ASan/UBSan:
 *  - every handler sees, per stanza, KL_PART_STANZA, then only
 *    KL_PART_BODY / KL_PART_TOKEN, then exactly one KL_PART_END before the
 *    next KL_PART_STANZA; no part outside that;
 *  - KL_PART_BODY only for messages; the pieces of one body end with one
 *    whose last is 1, and none comes after it before the next body;
 *  - in->from, to, id, type, child, child_ns are NUL-terminated within
 *    their buffers; in->stanza is set exactly when the stanza was whole;
 *  - every IQ get/set a handler saw gets exactly one answer (its
 *    handler's or the app layer's) by the time kl_app_event returns from
 *    its end, none when its addresses did not fit, at most one when the
 *    stream ended inside it;
 *  - the engine's output after online (everything the app layer and the
 *    handlers wrote, long messages included) tokenizes as well-formed XML
 *    inside a stream, and nothing follows </stream:stream>;
 *  - kl_engine_poll returns 0 while a long message is open.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinglet/kinglet.h"
#include "kinglet/kl_app.h"
#include "kinglet/kl_cache.h"
#include "fuzz_util.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

#define HDR "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
            "xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>"
#define FEAT_SASL "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
                  "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
#define FEAT_BIND "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
#define FEAT_BIND_MORE "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" \
                       "<csi xmlns='urn:xmpp:csi:0'/><ver xmlns='urn:xmpp:features:rosterver'/></stream:features>"
#define BIND_RES "<iq type='result' id='kl-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" \
                 "<jid>alice@localhost/dev</jid></bind></iq>"

/* A toy hash in SHA-1's shape (the caps ver's plumbing is what is fuzzed). */
static int toy_hash(void *ctx, kl_hash_alg_t alg, const uint8_t *data, size_t len, uint8_t *out)
{
    uint64_t h = 14695981039346656037ull;
    size_t i;
    (void)ctx;
    CHECK(alg == KL_HASH_SHA1);
    for (i = 0; i < len; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    for (i = 0; i < 20; i++) {
        h = (h ^ i) * 1099511628211ull;
        out[i] = (uint8_t)(h >> 56);
    }
    return 0;
}
static const kl_crypto_t toy = {NULL, toy_hash, NULL, NULL, toy_random_seq};

static kl_client_t cl;
static kl_app_t app;
static kl_cache_t cache;
static uint32_t now;
static unsigned options;
static int finished, online;

/* ---- the output, tokenized as it leaves -------------------------------------- */

static kl_xml_t ox;
static uint8_t obuf[KL_TX_BUF_SIZE * 4 + 256];
static size_t olen;
static int ox_done;

/* The request being dispatched. */
static struct {
    int open;          /* between its KL_PART_STANZA and the end of kl_app_event after KL_PART_END */
    int ended;         /* its KL_PART_END came */
    int answerable;
    int stream_ended;  /* KL_PART_END with kind 0: the stream ended inside it */
    char id[KL_APP_ID_MAX];
    int answers;
} req;

static void out_token(const kl_xml_token_t *t)
{
    kl_slice_t v;
    char id[KL_APP_ID_MAX + 8];
    int n;
    if (t->type != KL_XML_START || t->depth != 2 || !kl_slice_eq(t->local, "iq"))
        return;
    if (!kl_xml_attr_get(t->attrs, "type", &v) ||
        !(kl_xml_decoded_eq(v, "result") || kl_xml_decoded_eq(v, "error")))
        return;
    if (!kl_xml_attr_get(t->attrs, "id", &v))
        v.p = (const uint8_t *)"", v.len = 0;
    n = kl_xml_decode(v, KL_XML_RAW_ATTR, (uint8_t *)id, sizeof id - 1);
    if (n < 0)
        return;
    id[n] = 0;
    if (req.open && !strcmp(id, req.id))
        req.answers++;
}

static void drain(void)
{
    size_t n, pos = 0;
    const uint8_t *p = kl_engine_output(&cl, &n);
    CHECK(n <= KL_TX_BUF_SIZE);
    if (online && n) {
        CHECK(!ox_done); /* nothing after </stream:stream> */
        CHECK(olen + n <= sizeof obuf);
        memcpy(obuf + olen, p, n);
        olen += n;
        for (;;) {
            kl_xml_token_t t;
            size_t used = 0;
            int r = kl_xml_next(&ox, obuf + pos, olen - pos, &used, &t);
            CHECK(r >= 0);
            if (r == KL_XML_NEED_MORE)
                break;
            pos += used;
            out_token(&t);
            if (t.type == KL_XML_END && t.depth == 1) {
                ox_done = 1;
                break;
            }
        }
        memmove(obuf, obuf + pos, olen - pos);
        olen -= pos;
        /* one unfinished token at most: a long message's text is flushed
         * in pieces the tokenizer takes */
        CHECK(olen < sizeof obuf - KL_TX_BUF_SIZE);
    }
    kl_engine_output_ack(&cl, n);
}

/* ---- handlers ------------------------------------------------------------------- */

enum { H_ALL, H_IQ, H_MSG, H_SUB, NH };
static struct {
    int in_stanza;
    int body_open;     /* pieces came and the last not yet */
    int body_done;     /* a body ended in this stanza */
    const kl_in_t *in;
} hs[NH];

static void check_str(const char *s, size_t cap)
{
    CHECK(s != NULL);
    CHECK(memchr(s, 0, cap) != NULL);
}

static void check_in(int h, const kl_in_t *in)
{
    CHECK(h >= 0 && h < NH);
    check_str(in->from, KL_APP_ADDR_MAX);
    check_str(in->to, KL_APP_ADDR_MAX);
    check_str(in->id, KL_APP_ID_MAX);
    check_str(in->type, 16);
    check_str(in->child, KL_APP_NAME_MAX);
    check_str(in->child_ns, KL_APP_NAME_MAX);
    CHECK((in->stanza == NULL) == ((in->flags & KL_IN_STREAMED) != 0));
    if ((in->flags & KL_IN_ADDR_TOO_LONG))
        CHECK(!in->from[0] || !in->id[0] || !in->to[0]);
    switch (in->part) {
    case KL_PART_STANZA:
        CHECK(!hs[h].in_stanza);
        hs[h].in_stanza = 1;
        hs[h].body_open = hs[h].body_done = 0;
        break;
    case KL_PART_BODY:
        CHECK(hs[h].in_stanza);
        CHECK(in->kind == KL_KIND_MESSAGE);
        CHECK(in->text.len == 0 || in->text.p != NULL);
        hs[h].body_open = !in->last;
        break;
    case KL_PART_TOKEN:
        CHECK(hs[h].in_stanza);
        CHECK(in->token && in->token->depth >= 3);
        break;
    case KL_PART_END:
        CHECK(hs[h].in_stanza);
        CHECK(!hs[h].body_open); /* the last piece came */
        hs[h].in_stanza = 0;
        break;
    default: CHECK(0);
    }
}

static int is_request(const kl_in_t *in)
{
    return in->kind == KL_KIND_IQ && (!strcmp(in->type, "get") || !strcmp(in->type, "set"));
}

static int h_all(void *ctx, kl_app_t *a, const kl_in_t *in)
{
    (void)ctx;
    CHECK(a == &app);
    check_in(H_ALL, in);
    if (in->part == KL_PART_STANZA && is_request(in)) {
        CHECK(!req.open);
        memset(&req, 0, sizeof req);
        req.open = 1;
        req.answerable = !(in->flags & KL_IN_ADDR_TOO_LONG);
        memcpy(req.id, in->id, strlen(in->id) + 1);
    }
    if (in->part == KL_PART_END && req.open) {
        req.ended = 1;
        req.stream_ended = in->kind == 0;
    }
    return KL_PASS;
}

static int h_iq(void *ctx, kl_app_t *a, const kl_in_t *in)
{
    int st;
    (void)ctx;
    check_in(H_IQ, in);
    if ((in->part == KL_PART_STANZA && (options & 4)) || (in->part == KL_PART_END && (options & 12) == 8)) {
        st = kl_reply_iq_result(a, in, "<q xmlns='urn:fuzz'/>");
        CHECK(st == KL_OK || st == KL_ERR_JID_TOO_LONG || st == KL_ERR_STATE || st == KL_ERR_NOT_ONLINE);
    }
    return (options & 12) && in->part == KL_PART_STANZA ? KL_HANDLED : KL_PASS;
}

static int h_msg(void *ctx, kl_app_t *a, const kl_in_t *in)
{
    (void)ctx;
    check_in(H_MSG, in);
    if (in->part == KL_PART_END && (options & 16) && in->status == KL_OK) {
        kl_xw_t w;
        if (kl_reply_begin(a, in, &w, "message", "chat") == KL_OK) {
            kl_xw_start(&w, "body");
            kl_xw_text(&w, (const uint8_t *)in->id, strlen(in->id));
            kl_xw_end(&w, "body");
            kl_xw_end(&w, "message");
            (void)kl_stanza_commit(kl_app_client(a), &w);
        }
    }
    return KL_PASS;
}

static int h_sub(void *ctx, kl_app_t *a, const kl_in_t *in)
{
    (void)ctx;
    check_in(H_SUB, in);
    if (in->part == KL_PART_STANZA && in->from[0] && !(in->flags & KL_IN_ADDR_TOO_LONG))
        (void)kl_sub_answer(a, in->from, in->from[0] & 1);
    return KL_HANDLED;
}

/* ---- the loop ----------------------------------------------------------------------- */

static void after_dispatch(void)
{
    if (req.open && req.ended) {
        if (!req.answerable)
            CHECK(req.answers == 0);
        else if (req.stream_ended)
            CHECK(req.answers <= 1);
        else
            CHECK(req.answers == 1);
        memset(&req, 0, sizeof req);
    }
}

static void pump(void)
{
    kl_event_t ev;
    int r, guard = 0;
    while ((r = kl_engine_poll(&cl, now, &ev)) > 0) {
        CHECK(r == 1 && !finished);
        drain(); /* what the engine wrote itself before this event */
        if (!kl_app_event(&app, &ev)) {
            switch (ev.type) {
            case KL_EV_ONLINE:
                if (!online) {
                    online = 1;
                    kl_xml_init(&ox);
                    {
                        static const char h[] = "<stream:stream xmlns='jabber:client' "
                                                "xmlns:stream='http://etherx.jabber.org/streams'>";
                        kl_xml_token_t t;
                        size_t used = 0;
                        CHECK(kl_xml_next(&ox, (const uint8_t *)h, sizeof h - 1, &used, &t) == KL_XML_START);
                    }
                }
                break;
            case KL_EV_STANZA_BEGIN:
            case KL_EV_TOKEN:
            case KL_EV_STANZA_END:
                CHECK(0); /* stanzas are the app layer's (non-stanza elements never stream) */
                break;
            case KL_EV_ERROR:
            case KL_EV_CLOSED: finished = 1; break;
            default: break;
            }
        }
        drain();
        after_dispatch();
        CHECK(++guard < 1 << 20);
    }
    CHECK(r == 0);
    drain();
    after_dispatch();
}

static void feed(const uint8_t *p, size_t len) { fuzz_feed(&cl, p, len, &finished, pump); }
static void feeds(const char *s) { feed((const uint8_t *)s, strlen(s)); }

static void long_message(unsigned arg)
{
    static const char unit[] = "caf\xc3\xa9 <&> ' \" \xf0\x9f\x98\x80\r\n";
    size_t total = (size_t)(arg + 1) * 97, sent = 0;
    int st = kl_send_message_begin(&cl, "bob@localhost/x", NULL), guard = 0;
    kl_event_t ev;
    if (st != KL_OK) {
        /* STATE: a stanza larger than the receive buffer is being read */
        CHECK(st == KL_ERR_TX_FULL || st == KL_ERR_NOT_ONLINE || st == KL_ERR_STATE);
        return;
    }
    CHECK(kl_send_long_open(&cl));
    CHECK(kl_engine_poll(&cl, now, &ev) == 0);
    while (sent < total) {
        size_t off = sent % (sizeof unit - 1), len = sizeof unit - 1 - off;
        int r = kl_send_text(&cl, (const uint8_t *)unit + off, len > 7 ? 7 : len);
        CHECK(r >= 0);
        if (r == 0) {
            drain();
            CHECK(++guard < 1000);
            /* a sequence cut by the piece waits for more: give the rest */
            r = kl_send_text(&cl, (const uint8_t *)unit + off, len);
            CHECK(r > 0);
        }
        sent += (size_t)r;
        if (sent % 3 == 0)
            drain();
        CHECK(kl_engine_poll(&cl, now, &ev) == 0);
    }
    while ((st = kl_send_message_end(&cl)) == KL_ERR_TX_FULL) {
        drain();
        CHECK(++guard < 1000);
    }
    CHECK(st == KL_OK && !kl_send_long_open(&cl));
}

static void do_op(uint8_t ctrl)
{
    unsigned arg = ctrl >> 3;
    uint16_t h;
    switch (ctrl & 7) {
    case 0: long_message(arg); break;
    case 1: now += arg * 1000 + 1; break;
    case 2: (void)kl_sub_answer(&app, arg & 1 ? "carol@localhost" : "dave@localhost", arg & 2); break;
    case 3: (void)kl_app_presence(&app, arg & 1 ? "away" : NULL, arg & 2 ? "<&>" : NULL); break;
    case 4: {
        static const char *const opts[] = {"pubsub#access_model=presence", "x=<&'>"};
        (void)kl_pubsub_publish(&cl, arg & 1 ? "pubsub.localhost" : NULL, "urn:n", arg & 2 ? "i'd" : NULL,
                                "<t xmlns='urn:t'/>", opts, arg & 4 ? 2 : 0, &h);
        break;
    }
    case 5: (void)kl_muc_join(&cl, "room@conf.localhost/n&ck", arg & 1 ? "pw" : NULL, (int)arg); break;
    case 6: (void)kl_csi_set(&cl, arg & 1); break;
    default: (void)kl_send_roster_get(&cl, &h); break;
    }
    drain();
    pump();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kl_client_config_t cfg;
    kl_app_config_t ac;
    kl_handler_t h;
    static const char *const feats[] = {"urn:example:fuzz", "urn:xmpp:ping"};
    size_t i, start;
    if (size < 1)
        return 0;
    options = data[0];
    data++, size--;

    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.random = toy_random_seq;
    cfg.crypto = &toy;
    if (options & 32) {
        memset(&cache, 0, sizeof cache);
        kl_cache_reset(&cache, "localhost");
        cfg.cache = &cache;
    }
    now = 1000;
    finished = online = ox_done = 0;
    olen = 0;
    memset(&req, 0, sizeof req);
    memset(hs, 0, sizeof hs);
    CHECK(kl_client_init(&cl, &cfg) == KL_OK);
    memset(&ac, 0, sizeof ac);
    ac.name = "fuzz & co";
    ac.features = feats;
    ac.nfeatures = 2;
    ac.subscriptions = (kl_sub_policy_t)(options & 3);
    CHECK(kl_app_init(&app, &cl, &ac) == KL_OK);
    memset(&h, 0, sizeof h);
    h.kinds = KL_KIND_ANY, h.fn = h_all;
    CHECK(kl_app_on(&app, &h) == KL_OK);
    h.kinds = KL_KIND_IQ, h.type = "get", h.fn = h_iq;
    CHECK(kl_app_on(&app, &h) == KL_OK);
    h.kinds = KL_KIND_MESSAGE, h.type = NULL, h.fn = h_msg;
    CHECK(kl_app_on(&app, &h) == KL_OK);
    h.kinds = KL_KIND_PRESENCE, h.type = "subscribe", h.fn = h_sub;
    CHECK(kl_app_on(&app, &h) == KL_OK);

    CHECK(kl_client_connect(&cl, now, KL_CHANNEL_TLS_VERIFIED) == KL_OK);
    drain();
    feeds(HDR FEAT_SASL SUCCESS);
    feeds((options & 32) ? HDR FEAT_BIND_MORE BIND_RES : HDR FEAT_BIND BIND_RES);
    CHECK(online && kl_client_is_online(&cl));

    for (i = 0, start = 0; i <= size; i++) {
        if (i == size || (data[i] == 0xFF && i + 1 < size)) {
            feed(data + start, i - start);
            if (i == size)
                break;
            if (!finished)
                do_op(data[i + 1]);
            i++;
            start = i + 1;
        }
    }
    pump();
    /* the stream ended inside a stanza: the app layer was told (its END came) */
    if (!finished) {
        kl_event_t ev;
        memset(&ev, 0, sizeof ev);
        ev.type = KL_EV_LINK_DOWN;
        ev.status = KL_ERR_STREAM_CLOSED;
        (void)kl_app_event(&app, &ev);
        after_dispatch();
    }
    for (i = 0; i < NH; i++)
        CHECK(!hs[i].in_stanza);
    return 0;
}
