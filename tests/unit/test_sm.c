/* XEP-0198 stream management and keepalive against scripted servers:
 * enabling (in the bind flight from the hints, or after bind), counting
 * both ways, the ack-request policy, the queue's backpressure, counters at
 * the 32-bit wrap, resumption and its failure, hostile acks, persistence
 * across a "reboot" (kl_sm_save / kl_sm_load), keepalive with <r/>. */
#include <stdlib.h>
#include <string.h>

#include "kinglet/kinglet.h"
#include "kinglet/kl_app.h"
#include "kt.h"
#include "kt_feed.h"

#if KL_ENABLE_SM

#define NS_SM "urn:xmpp:sm:3"
#define HDR "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
            "xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>"
#define FEAT_TLS "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>" \
                 "</stream:features>"
#define PROCEED "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define FEAT_SASL "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
                  "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
#define FEAT_BIND_SM "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" \
                     "<sm xmlns='" NS_SM "'/></stream:features>"
#define FEAT_BIND "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
#define BIND_RES "<iq type='result' id='kl-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" \
                 "<jid>alice@localhost/dev</jid></bind></iq>"
#define BIND_RES2 "<iq type='result' id='kl-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" \
                  "<jid>alice@localhost/new</jid></bind></iq>"
#define ENABLED "<enabled xmlns='" NS_SM "' id='sm-1&amp;x' resume='true' max='300' location='[2001:db8::1]:5222'/>"
#define ENABLE "<enable xmlns='" NS_SM "' resume='true'/>"
#define PRESENCE "<presence/>"
#define R "<r xmlns='" NS_SM "'/>"
#define MSG(b) "<message from='bob@localhost/x'><body>" b "</body></message>"

static kl_client_t cl;
static uint8_t queue[4096];
static kl_cache_t hints;

static char out[65536];
static size_t out_len;
static char log_[16384];
static int last_status;
static uint32_t now_ms;
static int resend_unacked; /* the application sends each KL_EV_UNACKED again */

static void logf_(const char *s)
{
    size_t n = strlen(s), l = strlen(log_);
    if (l + n < sizeof log_)
        memcpy(log_ + l, s, n + 1);
}

static void drain(void)
{
    size_t n;
    const uint8_t *p = kl_engine_output(&cl, &n);
    if (out_len + n < sizeof out) {
        memcpy(out + out_len, p, n);
        out_len += n;
        out[out_len] = 0;
    }
    kl_engine_output_ack(&cl, n);
}

static void clear(void)
{
    out_len = 0;
    out[0] = 0;
    log_[0] = 0;
}

static void on_event(kl_event_t *ev)
{
    char buf[4096];
    switch (ev->type) {
    case KL_EV_START_TLS: logf_("[starttls]"); break;
    case KL_EV_ONLINE: snprintf(buf, sizeof buf, "[online %s]", ev->jid); logf_(buf); break;
    case KL_EV_RESUMED: snprintf(buf, sizeof buf, "[resumed %s h=%u]", ev->jid, ev->seq); logf_(buf); break;
    case KL_EV_ACKED: snprintf(buf, sizeof buf, "[acked %u]", ev->seq); logf_(buf); break;
    case KL_EV_UNACKED: {
        char body[256];
        int n = kl_stanza_child_text(&cl, &ev->stanza, "body", NULL, body, sizeof body);
        snprintf(buf, sizeof buf, "[unacked %u %.*s %s]", ev->seq, (int)ev->stanza.name.len, ev->stanza.name.p,
                 n >= 0 ? body : "-");
        logf_(buf);
        if (resend_unacked) {
            kl_xw_t w;
            KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
            kl_xw_raw(&w, ev->stanza.raw.p, ev->stanza.raw.len);
            KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_OK);
        }
        break;
    }
    case KL_EV_STANZA: {
        char body[256];
        int n = kl_stanza_child_text(&cl, &ev->stanza, "body", NULL, body, sizeof body);
        snprintf(buf, sizeof buf, "[stanza %.*s%s%s]", (int)ev->stanza.name.len, ev->stanza.name.p, n >= 0 ? " " : "",
                 n >= 0 ? body : "");
        logf_(buf);
        break;
    }
    case KL_EV_STANZA_DROPPED: snprintf(buf, sizeof buf, "[dropped %d]", ev->status); logf_(buf); break;
    case KL_EV_IQ_RESULT: logf_("[iq-result]"); break;
    case KL_EV_CLOSED: snprintf(buf, sizeof buf, "[closed %d]", ev->status); logf_(buf); break;
    case KL_EV_ERROR:
        snprintf(buf, sizeof buf, "[error %s %s]", kl_strerror(ev->status), ev->condition);
        logf_(buf);
        last_status = ev->status;
        break;
    default: break;
    }
}

static void pump(void)
{
    kl_event_t ev;
    int guard = 0;
    while (kl_engine_poll(&cl, now_ms, &ev) > 0 && ++guard < 100000) {
        on_event(&ev);
        drain();
    }
    drain();
}

static void feed(const char *s) { kt_feed(&cl, (const uint8_t *)s, strlen(s), NULL, pump); }

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    const char *p = hay;
    while ((p = strstr(p, needle)) != NULL)
        n++, p++;
    return n;
}

/* ---- a toy HMAC for kl_sm_save/kl_sm_load (the MAC logic is tested, not
 * SHA-256: a port's crypto table provides that) ---------------------------- */

static int toy_hmac(void *ctx, kl_hash_alg_t alg, const uint8_t *k, size_t klen, const kl_slice_t *parts,
                    size_t nparts, uint8_t *mac)
{
    uint64_t h = 14695981039346656037ull;
    size_t i, j;
    (void)ctx;
    if (alg != KL_HASH_SHA256)
        return -1;
    for (i = 0; i < klen; i++)
        h = (h ^ k[i]) * 1099511628211ull;
    for (j = 0; j < nparts; j++)
        for (i = 0; i < parts[j].len; i++)
            h = (h ^ parts[j].p[i]) * 1099511628211ull;
    for (i = 0; i < 32; i++) {
        h = (h ^ i) * 1099511628211ull;
        mac[i] = (uint8_t)(h >> 56);
    }
    return 0;
}

static const kl_crypto_t toy = {NULL, NULL, toy_hmac, NULL, NULL};

/* a port whose HMAC fails (no key in its secure element, say) */
static int broken_hmac(void *ctx, kl_hash_alg_t alg, const uint8_t *k, size_t klen, const kl_slice_t *parts,
                       size_t nparts, uint8_t *mac)
{
    (void)ctx, (void)alg, (void)k, (void)klen, (void)parts, (void)nparts, (void)mac;
    return -1;
}
static const uint8_t key[KL_CACHE_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                              17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* ---- sessions ------------------------------------------------------------ */

typedef struct {
    kl_pipelining_t mode;
    size_t qsize;       /* 0: the whole queue buffer; SIZE_MAX: no queue */
    int queue_null;     /* the size as qsize says, and no buffer */
    uint8_t ack_every;
    uint32_t ack_ms, ack_idle_ms, ka_ms, ka_timeout_ms;
    int use_hints;
    const char *jid;
} opts_t;

static opts_t dflt(void)
{
    opts_t o;
    memset(&o, 0, sizeof o);
    o.mode = KL_PIPELINING_SAFE;
    o.ack_every = 100;          /* the tests that count ask for their policy */
    o.ack_ms = 1000000;
    o.ack_idle_ms = 1000000;
    return o;
}

static void init(const opts_t *o)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = o->jid ? o->jid : "alice@localhost/dev";
    cfg.password = "secret";
    cfg.pipelining = o->mode;
    cfg.random = kt_random;
    if (o->qsize != (size_t)-1) {
        cfg.sm_queue = queue;
        cfg.sm_queue_size = o->qsize ? o->qsize : sizeof queue;
        if (o->queue_null)
            cfg.sm_queue = NULL;
    }
    cfg.sm_ack_every = o->ack_every;
    cfg.sm_ack_ms = o->ack_ms;
    cfg.sm_ack_idle_ms = o->ack_idle_ms;
    cfg.keepalive_ms = o->ka_ms;
    cfg.keepalive_timeout_ms = o->ka_timeout_ms;
    cfg.cache = o->use_hints ? &hints : NULL;
    clear();
    last_status = 0;
    resend_unacked = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
}

/* A (re)connection up to the flight that follows SASL success. */
static void to_success(void)
{
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    drain();
    feed(HDR FEAT_TLS PROCEED);
    KT_CHECK_EQ(kl_engine_tls_done(&cl, 1), KL_OK);
    drain();
    feed(HDR FEAT_SASL SUCCESS);
    log_[0] = 0;
}

/* A fresh login with SM offered after authentication; enabled (or not). */
static void login(const opts_t *o, int enable)
{
    init(o);
    now_ms = 1000;
    to_success();
    feed(HDR FEAT_BIND_SM BIND_RES);
    if (enable)
        feed(ENABLED);
    KT_CHECK(kl_client_is_online(&cl));
    clear();
}

static kl_sm_info_t info(void)
{
    kl_sm_info_t i;
    KT_CHECK_EQ(kl_sm_info(&cl, &i), KL_OK);
    return i;
}

static void send_msg(const char *body, int expect)
{
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", NULL, body), expect);
    drain();
}

/* ---- enabling ---------------------------------------------------------------- */

static void test_enable_after_bind(void)
{
    opts_t o = dflt();
    kl_sm_info_t i;
    init(&o);
    now_ms = 1000;
    to_success();
    /* no hints: bind goes with the restart header, <enable/> waits for the bind result */
    KT_CHECK(strstr(out, "kl-bind") != NULL);
    KT_CHECK(strstr(out, "<enable") == NULL);
    clear();
    feed(HDR FEAT_BIND_SM BIND_RES);
    KT_CHECK_STR(log_, "[online alice@localhost/dev]");
    KT_CHECK_STR(out, ENABLE PRESENCE); /* the presence is the session's first stanza */
    i = info();
    KT_CHECK(!i.enabled && !i.resumable);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), 1); /* counted from <enable/> on */
    feed(ENABLED);
    i = info();
    KT_CHECK(i.enabled && i.resumable);
    KT_CHECK_STR(i.id, "sm-1&x");
    KT_CHECK_STR(i.location, "[2001:db8::1]:5222");
    KT_CHECK_EQ(i.max_s, 300);
    KT_CHECK_EQ(i.unacked, 1);
    KT_CHECK_EQ(kl_client_stats(&cl)->engine_round_trips, 3);
    /* a server without SM: nothing is enabled */
    init(&o);
    to_success();
    feed(HDR FEAT_BIND BIND_RES);
    KT_CHECK(strstr(out, "<enable") == NULL);
    KT_CHECK(!info().enabled);
    send_msg("x", KL_OK);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), 0);
    /* no queue: not even when offered */
    o.qsize = (size_t)-1;
    init(&o);
    to_success();
    feed(HDR FEAT_BIND_SM BIND_RES);
    KT_CHECK(strstr(out, "<enable") == NULL);
    /* lockstep: after the bind result too */
    o = dflt();
    o.mode = KL_PIPELINING_OFF;
    init(&o);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    feed(HDR FEAT_TLS);
    feed(PROCEED);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL);
    feed(SUCCESS);
    feed(HDR FEAT_BIND_SM);
    KT_CHECK(strstr(out, "<enable") == NULL);
    feed(BIND_RES);
    KT_CHECK(strstr(out, "kl-bind") < strstr(out, ENABLE));
    KT_CHECK(strstr(out, ENABLE PRESENCE) != NULL);
}

/* The hints know the server offers SM: <enable/> rides right behind the
 * bind request, in the flight after SASL success. */
static void test_enable_in_bind_flight(void)
{
    opts_t o = dflt();
    const char *b, *e;
    memset(&hints, 0, sizeof hints);
    o.use_hints = 1;
    login(&o, 1); /* learns the post-auth features */
    KT_CHECK(hints.feat[2] != 0);
    init(&o);
    now_ms = 1000;
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    feed(HDR FEAT_TLS PROCEED);
    kl_engine_tls_done(&cl, 1);
    clear();
    feed(HDR FEAT_SASL SUCCESS);
    b = strstr(out, "<iq type='set' id='kl-bind'>");
    e = strstr(out, ENABLE);
    KT_CHECK(b && e && b < e);
    KT_CHECK(strstr(out, "<stream:stream") < b);
    KT_CHECK_STR(e, ENABLE); /* the flight ends with it */
    clear();
    feed(HDR FEAT_BIND_SM BIND_RES ENABLED);
    KT_CHECK_STR(out, PRESENCE); /* no second <enable/> */
    KT_CHECK(info().enabled);
    KT_CHECK_EQ(kl_client_stats(&cl)->engine_round_trips, 3);
    /* off: lockstep even with hints */
    o.mode = KL_PIPELINING_OFF;
    init(&o);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    feed(HDR FEAT_TLS);
    feed(PROCEED);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL);
    feed(SUCCESS);
    feed(HDR FEAT_BIND_SM);
    KT_CHECK(strstr(out, "kl-bind") != NULL && strstr(out, "<enable") == NULL);
}

/* <failed/> to <enable/>: on without SM, no error, nothing kept. */
static void test_enable_failed(void)
{
    opts_t o = dflt();
    login(&o, 0);
    send_msg("one", KL_OK);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), 2);
    feed("<failed xmlns='" NS_SM "'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    KT_CHECK_STR(log_, "");
    KT_CHECK(kl_client_is_online(&cl));
    KT_CHECK(!info().enabled);
    KT_CHECK_EQ(info().unacked, 0);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), 0);
    send_msg("two", KL_OK);
    feed(R MSG("in"));
    KT_CHECK(strstr(out, "<a ") == NULL && strstr(out, "<r ") == NULL);
    KT_CHECK_STR(log_, "[stanza message in]");
    /* and nothing to resume after a lost link: a plain bind */
    to_success();
    KT_CHECK(strstr(out, "<resume") == NULL && strstr(out, "kl-bind") != NULL);
}

/* ---- counting ------------------------------------------------------------------- */

static void test_inbound_counting(void)
{
    opts_t o = dflt();
    static char deep[512];
    size_t i;
    login(&o, 1);
    feed(R);
    KT_CHECK_STR(out, "<a xmlns='" NS_SM "' h='0'/>");
    clear();
    /* stanzas count, SM nonzas do not; a ping answered by the engine and a
     * stanza dropped for a bound count as handled */
    strcpy(deep, "<message from='bob@localhost/x'>");
    for (i = 0; i < 20; i++)
        strcat(deep, "<a>");
    for (i = 0; i < 20; i++)
        strcat(deep, "</a>");
    strcat(deep, "</message>");
    feed(MSG("1") "<presence from='bob@localhost/x'/>" R);
    KT_CHECK(strstr(out, "h='2'/>") != NULL);
    feed("<iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    feed(deep);
    feed("<a xmlns='" NS_SM "' h='1'/>" R);
    KT_CHECK(strstr(out, "h='4'/>") != NULL);
    KT_CHECK_EQ(info().h_in, 4);
    KT_CHECK(strstr(log_, "[dropped -22]") != NULL);
    /* our pong was a stanza too: numbered after the presence */
    KT_CHECK_EQ(kl_sm_last_seq(&cl), 2);
}

/* A flood of <r/> is answered by one <a/> (with the latest h) per poll,
 * without memory growing and without failing when output is tight. */
static void test_r_flood(void)
{
    opts_t o = dflt();
    static char flood[60000];
    kl_xw_t w;
    size_t i, n;
    login(&o, 1);
    flood[0] = 0;
    for (i = 0; i < 2000; i++)
        strcat(flood, R);
    feed(MSG("x"));
    KT_CHECK_EQ(kl_engine_input(&cl, (const uint8_t *)flood, 26 * 115), 26 * 115);
    pump();
    KT_CHECK_EQ(count_of(out, "<a "), 1);
    KT_CHECK(strstr(out, "h='1'/>") != NULL);
    /* with the transmit buffer full of the application's stanza (the port
     * has not drained it), the flood still goes in, and the answer waits */
    clear();
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    kl_xw_start(&w, "message");
    kl_xw_attr(&w, "to", "bob@localhost");
    kl_xw_start(&w, "body");
    n = w.cap - w.len - 40;
    for (i = 0; i < n; i++)
        kl_xw_text(&w, (const uint8_t *)"z", 1);
    kl_xw_end(&w, "body");
    kl_xw_end(&w, "message");
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_OK);
    for (i = 0; i < 20; i++) {
        kl_event_t ev;
        size_t cap, take;
        uint8_t *in = kl_engine_input_buf(&cl, &cap);
        take = (cap < 3000 ? cap : 3000) / 26 * 26; /* whole <r/>s */
        memcpy(in, flood, take);
        kl_engine_input_ack(&cl, take);
        while (kl_engine_poll(&cl, now_ms, &ev) > 0)
            on_event(&ev);
    }
    KT_CHECK_EQ(last_status, 0);
    KT_CHECK(kl_client_is_online(&cl));
    {
        size_t pending;
        kl_engine_output(&cl, &pending);
        KT_CHECK(pending <= KL_TX_BUF_SIZE);
    }
    drain();
    pump();
    KT_CHECK(count_of(out, "<a ") >= 1 && count_of(out, "<a ") <= 21);
    KT_CHECK(strstr(out, "<a xmlns='" NS_SM "' h='1'/>") != NULL);
}

/* ---- the ack-request policy ------------------------------------------------------ */

static void test_ack_every_n(void)
{
    opts_t o = dflt();
    o.ack_every = 5;
    login(&o, 1); /* presence: 1 unacked */
    send_msg("1", KL_OK);
    send_msg("2", KL_OK);
    send_msg("3", KL_OK);
    KT_CHECK(strstr(out, "<r ") == NULL);
    send_msg("4", KL_OK); /* the fifth stanza */
    KT_CHECK(strstr(out, "<body>4</body></message><r xmlns='" NS_SM "'/>") != NULL);
    KT_CHECK_EQ(count_of(out, "<r "), 1);
    send_msg("5", KL_OK);
    KT_CHECK_EQ(count_of(out, "<r "), 1);
    feed("<a xmlns='" NS_SM "' h='5'/>");
    KT_CHECK_STR(log_, "[acked 5]");
    KT_CHECK_EQ(info().unacked, 1);
    KT_CHECK_EQ(kl_client_stats(&cl)->sm_acked, 5);
}

static void test_ack_after_t(void)
{
    opts_t o = dflt();
    o.ack_ms = 5000;
    login(&o, 1);
    feed("<a xmlns='" NS_SM "' h='1'/>"); /* the presence */
    clear();
    send_msg("1", KL_OK);
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), 5000);
    now_ms += 2000;
    send_msg("2", KL_OK); /* still counted from the first */
    now_ms += 2999;
    pump();
    KT_CHECK(strstr(out, "<r ") == NULL);
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), 1);
    now_ms += 1;
    pump();
    KT_CHECK_EQ(count_of(out, "<r "), 1);
    /* while it is out, the next one after another T */
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), 5000);
    now_ms += 5000;
    pump();
    KT_CHECK_EQ(count_of(out, "<r "), 2);
    feed("<a xmlns='" NS_SM "' h='3'/>");
    KT_CHECK_STR(log_, "[acked 3]");
    /* all acknowledged: no ack timer left (keepalive's remains) */
    KT_CHECK(kl_engine_next_timeout(&cl, now_ms) > 60000);
}

static void test_ack_before_idle(void)
{
    opts_t o = dflt();
    o.ack_idle_ms = 0; /* the default: KL_SM_ACK_IDLE_MS */
    login(&o, 1);
    send_msg("1", KL_OK);
    now_ms += 100;
    pump(); /* the engine's clock is the last poll's */
    send_msg("2", KL_OK);
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), KL_SM_ACK_IDLE_MS);
    now_ms += KL_SM_ACK_IDLE_MS - 1;
    pump();
    KT_CHECK(strstr(out, "<r ") == NULL);
    now_ms += 1;
    pump();
    KT_CHECK_EQ(count_of(out, "<r "), 1);
    /* out and unanswered: no second one before ack_ms */
    now_ms += KL_SM_ACK_IDLE_MS * 3;
    pump();
    KT_CHECK_EQ(count_of(out, "<r "), 1);
    feed("<a xmlns='" NS_SM "' h='3'/>");
    KT_CHECK_STR(log_, "[acked 3]");
    KT_CHECK_EQ(kl_client_stats(&cl)->sm_acks_requested, 1);
}

/* ---- the queue ------------------------------------------------------------------ */

static void test_queue_full(void)
{
    opts_t o = dflt();
    int st = KL_OK, sent = 0;
    size_t before;
    kl_xw_t w;
    o.qsize = 300;
    login(&o, 1);
    while (st == KL_OK && sent < 100) {
        before = out_len;
        st = kl_send_message(&cl, "bob@localhost", NULL, "0123456789");
        drain();
        if (st == KL_OK)
            sent++;
    }
    KT_CHECK_EQ(st, KL_ERR_TX_FULL);
    KT_CHECK_EQ(out_len, before); /* nothing of it was sent */
    KT_CHECK(sent >= 2 && sent < 10);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), (uint32_t)sent + 1);
    KT_CHECK(info().queue_used <= 300);
    /* an ack frees the space */
    feed("<a xmlns='" NS_SM "' h='3'/>");
    KT_CHECK_STR(log_, "[acked 3]");
    send_msg("again", KL_OK);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), (uint32_t)sent + 2);
    /* larger than the whole queue: never */
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    kl_xw_start(&w, "message");
    kl_xw_start(&w, "body");
    for (st = 0; st < 400; st++)
        kl_xw_text(&w, (const uint8_t *)"y", 1);
    kl_xw_end(&w, "body");
    kl_xw_end(&w, "message");
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_ERR_TOO_LARGE);
    /* one commit, one stanza */
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    kl_xw_raw(&w, (const uint8_t *)"<message><body>a</body></message><message/>", 44);
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_ERR_ARG);
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    kl_xw_raw(&w, (const uint8_t *)"<r xmlns='" NS_SM "'/>", 26);
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_ERR_ARG);
    drain();
    KT_CHECK(strstr(out, "<message><body>a") == NULL);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), (uint32_t)sent + 2);
}

/* ---- hostile acks ------------------------------------------------------------------ */

static void test_ack_too_high(void)
{
    opts_t o = dflt();
    login(&o, 1);
    send_msg("1", KL_OK); /* 2 sent: presence and this */
    feed("<a xmlns='" NS_SM "' h='3'/>");
    KT_CHECK_EQ(last_status, KL_ERR_SM_ACK);
    KT_CHECK(strstr(out, "<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                         "<handled-count-too-high xmlns='" NS_SM "' h='3' send-count='2'/></stream:error>") != NULL);
    KT_CHECK(strstr(log_, "handled-count-too-high") != NULL);
    /* the session is not resumed; what it held is handed back */
    KT_CHECK(!info().resumable);
    to_success();
    KT_CHECK(strstr(out, "<resume") == NULL);
    clear();
    feed(HDR FEAT_BIND_SM BIND_RES);
    KT_CHECK_STR(log_, "[unacked 2 message 1][online alice@localhost/dev]");
}

static void test_ack_backwards_and_twice(void)
{
    opts_t o = dflt();
    login(&o, 1);
    send_msg("1", KL_OK);
    send_msg("2", KL_OK);
    feed("<a xmlns='" NS_SM "' h='2'/>");
    feed("<a xmlns='" NS_SM "' h='1'/>");  /* backwards: ignored */
    feed("<a xmlns='" NS_SM "' h='2'/>");  /* nothing new: no event */
    feed("<a xmlns='" NS_SM "' h='0'/>");
    KT_CHECK_STR(log_, "[acked 2]");
    KT_CHECK_EQ(kl_client_stats(&cl)->sm_acks_ignored, 2);
    KT_CHECK_EQ(kl_client_stats(&cl)->sm_acked, 2);
    KT_CHECK_EQ(info().unacked, 1);
    feed("<a xmlns='" NS_SM "' h='3'/>");
    KT_CHECK_STR(log_, "[acked 2][acked 3]");
    /* no h, or not a number: the stream is broken */
    feed("<a xmlns='" NS_SM "' h='x'/>");
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
}

/* ---- the 32-bit wrap ------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

/* A saved session as kl_sm_save lays it out (core/kl_sm.c), with no
 * stanzas queued and the counters given, loaded into a fresh client. */
static void load_session(uint32_t h_in, uint32_t out_seq, uint32_t acked)
{
    static const char id[] = "sm-1&x", jid[] = "alice@localhost/dev";
    uint8_t blob[256];
    size_t n = 36;
    kl_slice_t parts[2];
    opts_t o = dflt();
    memset(blob, 0, sizeof blob);
    put32(blob, KL_SM_BLOB_MAGIC);
    blob[4] = KL_SM_BLOB_VERSION;
    blob[6] = 1; /* resumable */
    put32(blob + 8, h_in);
    put32(blob + 12, out_seq);
    put32(blob + 16, acked);
    put32(blob + 20, 300);
    blob[32] = (uint8_t)strlen(id);
    blob[34] = (uint8_t)strlen(jid);
    memcpy(blob + n, id, strlen(id));
    n += strlen(id);
    memcpy(blob + n, jid, strlen(jid));
    n += strlen(jid);
    parts[0].p = (const uint8_t *)"kinglet-sm";
    parts[0].len = 10;
    parts[1].p = blob;
    parts[1].len = n;
    toy_hmac(NULL, KL_HASH_SHA256, key, sizeof key, parts, 2, blob + n);
    init(&o);
    now_ms = 1000;
    KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, blob, n + 32), KL_OK);
}

static void test_counters_wrap(void)
{
    load_session(0xfffffffeu, 0xfffffffeu, 0xfffffffeu);
    now_ms = 1000;
    to_success();
    KT_CHECK(strstr(out, "<resume xmlns='" NS_SM "' h='4294967294' previd='sm-1&amp;x'/>") != NULL);
    clear();
    feed(HDR FEAT_BIND_SM "<resumed xmlns='" NS_SM "' h='4294967294' previd='sm-1&amp;x'/>");
    KT_CHECK_STR(log_, "[resumed alice@localhost/dev h=4294967294]");
    send_msg("a", KL_OK);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), 0xffffffffu);
    send_msg("b", KL_OK);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), 0);
    send_msg("c", KL_OK);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), 1);
    feed("<a xmlns='" NS_SM "' h='0'/>");
    KT_CHECK_STR(log_, "[resumed alice@localhost/dev h=4294967294][acked 0]");
    KT_CHECK_EQ(info().unacked, 1);
    KT_CHECK_EQ(kl_client_stats(&cl)->sm_acked, 2);
    feed("<a xmlns='" NS_SM "' h='4294967295'/>"); /* backwards across the wrap */
    KT_CHECK_EQ(kl_client_stats(&cl)->sm_acks_ignored, 1);
    feed("<a xmlns='" NS_SM "' h='2'/>");          /* above what was sent */
    KT_CHECK_EQ(last_status, KL_ERR_SM_ACK);
    KT_CHECK(strstr(out, "h='2' send-count='1'") != NULL);
    /* inbound across the wrap */
    load_session(0xffffffffu, 5, 5);
    to_success();
    KT_CHECK(strstr(out, "h='4294967295'") != NULL);
    feed(HDR FEAT_BIND_SM "<resumed xmlns='" NS_SM "' previd='sm-1&amp;x'/>" MSG("m") R);
    KT_CHECK(strstr(out, "<a xmlns='" NS_SM "' h='0'/>") != NULL);
    feed(MSG("n") R);
    KT_CHECK(strstr(out, "<a xmlns='" NS_SM "' h='1'/>") != NULL);
}

/* ---- resumption ------------------------------------------------------------------ */

/* Three stanzas out, the server acknowledged the presence and the first. */
static void lost_with_three(opts_t *o)
{
    login(o, 1);
    send_msg("1", KL_OK);
    send_msg("2", KL_OK);
    send_msg("3", KL_OK);
    feed(MSG("in1") MSG("in2") "<a xmlns='" NS_SM "' h='2'/>");
    KT_CHECK_STR(log_, "[stanza message in1][stanza message in2][acked 2]");
    /* the link is lost here: the port reconnects */
    now_ms += 5000;
    clear();
}

static void test_resume(void)
{
    opts_t o = dflt();
    const char *r;
    lost_with_three(&o);
    to_success();
    r = strstr(out, "<resume xmlns='" NS_SM "' h='2' previd='sm-1&amp;x'/>");
    KT_CHECK(r != NULL);
    KT_CHECK(strstr(out, "kl-bind") == NULL);
    /* where bind would go: right behind the restarted stream's header, in
     * the flight after <success/> */
    {
        const char *h = out, *q;
        while ((q = strstr(h + 1, "<stream:stream")) != NULL)
            h = q;
        KT_CHECK(r && strstr(r, "<stream:stream") == NULL && r == strchr(h, '>') + 1);
    }
    KT_CHECK_STR(kl_client_jid(&cl), "alice@localhost/dev");
    clear();
    feed(HDR FEAT_BIND_SM "<resumed xmlns='" NS_SM "' h='3' previd='sm-1&amp;x'/>");
    KT_CHECK_STR(log_, "[resumed alice@localhost/dev h=3]");
    /* stanza 4 ("3") again, alone; no presence */
    KT_CHECK_STR(out, "<message to='bob@localhost' type='chat'><body>3</body></message>");
    KT_CHECK_EQ(kl_client_stats(&cl)->sm_resent, 1);
    KT_CHECK_EQ(kl_client_stats(&cl)->sm_acked, 1);
    KT_CHECK(kl_client_is_online(&cl));
    /* the session goes on: counters continue */
    send_msg("4", KL_OK);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), 5);
    feed(MSG("in3") R);
    KT_CHECK(strstr(out, "h='3'/>") != NULL);
    feed("<a xmlns='" NS_SM "' h='5'/>");
    KT_CHECK_STR(log_, "[resumed alice@localhost/dev h=3][stanza message in3][acked 5]");
    KT_CHECK_EQ(info().unacked, 0);
    /* resumed across a second loss too, with nothing to resend */
    clear();
    to_success();
    feed(HDR FEAT_BIND_SM "<resumed xmlns='" NS_SM "' h='5' previd='sm-1&amp;x'/>");
    KT_CHECK_STR(log_, "[resumed alice@localhost/dev h=5]");
}

/* Resending waits for room, in order, and the application waits behind it. */
static void test_resume_resend_in_order(void)
{
    opts_t o = dflt();
    static char body[1000];
    int i;
    kl_event_t ev;
    size_t n;
    login(&o, 1);
    memset(body, 'b', sizeof body - 1);
    for (i = 0; i < 3; i++) {
        body[0] = (char)('0' + i);
        send_msg(body, KL_OK);
    }
    clear();
    to_success();
    clear();
    feed(HDR FEAT_BIND_SM);
    {
        static const char resumed[] = "<resumed xmlns='" NS_SM "' h='1' previd='sm-1&amp;x'/>";
        KT_CHECK_EQ(kl_engine_input(&cl, (const uint8_t *)resumed, sizeof resumed - 1), sizeof resumed - 1);
    }
    KT_CHECK_EQ(kl_engine_poll(&cl, now_ms, &ev), 1);
    KT_CHECK_EQ(ev.type, KL_EV_RESUMED);
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", NULL, "new"), KL_ERR_TX_FULL);
#if KL_ENABLE_APP
    {
        /* an answer waits behind them too (the app layer's own path) */
        static kl_app_t app;
        kl_in_t in;
        memset(&in, 0, sizeof in);
        in.from = "bob@localhost/x";
        in.id = "q1";
        drain();
        KT_CHECK_EQ(kl_app_init(&app, &cl, NULL), KL_OK);
        KT_CHECK_EQ(kl_reply_iq_result(&app, &in, NULL), KL_ERR_TX_FULL);
        drain();
        KT_CHECK_EQ(out_len, 0);
    }
#endif
    /* the port drains one flight at a time */
    for (i = 0; i < 5; i++) {
        KT_CHECK_EQ(kl_engine_poll(&cl, now_ms, &ev), 0);
        drain();
    }
    KT_CHECK_EQ(count_of(out, "<message"), 3);
    KT_CHECK(strstr(out, ">0bbb") < strstr(out, ">1bbb") && strstr(out, ">1bbb") < strstr(out, ">2bbb"));
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", NULL, "new"), KL_OK);
    kl_engine_output(&cl, &n);
    KT_CHECK(n > 0);
}

static void test_resume_failed(void)
{
    opts_t o = dflt();
    lost_with_three(&o);
    to_success();
    clear();
    feed(HDR FEAT_BIND_SM "<failed xmlns='" NS_SM "'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                          "</failed>");
    /* a new session: bind, SM enabled again in the same flight (the
     * features said so) */
    KT_CHECK(strstr(out, "kl-bind") != NULL && strstr(out, "kl-bind") < strstr(out, ENABLE));
    KT_CHECK_STR(log_, "");
    KT_CHECK_STR(kl_client_jid(&cl), "");
    clear();
    resend_unacked = 1;
    feed(BIND_RES2 ENABLED);
    KT_CHECK_STR(log_, "[unacked 3 message 2][unacked 4 message 3][online alice@localhost/new]");
    /* presence once, then the application's choice to send both again,
     * numbered in the new session */
    KT_CHECK_EQ(count_of(out, PRESENCE), 1);
    KT_CHECK(strstr(out, PRESENCE) < strstr(out, "<body>2</body>"));
    KT_CHECK(strstr(out, "<body>1</body>") == NULL);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), 3);
    KT_CHECK_EQ(kl_client_stats(&cl)->sm_unacked_handed_back, 2);
    KT_CHECK(info().enabled && info().resumable);
    feed("<a xmlns='" NS_SM "' h='3'/>");
    KT_CHECK(strstr(log_, "[acked 3]") != NULL);
    KT_CHECK_EQ(info().unacked, 0);

    /* the server's h in <failed/> still counts: only stanza 4 comes back */
    lost_with_three(&o);
    to_success();
    feed(HDR FEAT_BIND_SM "<failed xmlns='" NS_SM "' h='3'><item-not-found "
                          "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>" BIND_RES);
    KT_CHECK_STR(log_, "[unacked 4 message 3][online alice@localhost/dev]");

    /* a server without SM after the loss: the resume sent ahead fails, and
     * the next connect does not try again */
    lost_with_three(&o);
    to_success();
    KT_CHECK(strstr(out, "<resume") != NULL);
    feed(HDR FEAT_BIND "<failed xmlns='" NS_SM "'/>" BIND_RES);
    KT_CHECK_STR(log_, "[unacked 3 message 2][unacked 4 message 3][online alice@localhost/dev]");
    KT_CHECK(strstr(out, ENABLE) == NULL);
}

/* While the old session's stanzas are handed back (one event a poll, the
 * owed KL_EV_ONLINE last), the engine wants polling now: the next
 * timeout is 0 until the last of them is out. */
static void test_handback_wants_poll(void)
{
    opts_t o = dflt();
    kl_event_t ev;
    static const char in[] = BIND_RES2 ENABLED;
    lost_with_three(&o);
    to_success();
    feed(HDR FEAT_BIND_SM "<failed xmlns='" NS_SM "'/>");
    KT_CHECK_EQ(kl_engine_input(&cl, (const uint8_t *)in, sizeof in - 1), sizeof in - 1);
    KT_CHECK_EQ(kl_engine_poll(&cl, now_ms, &ev), 1);
    KT_CHECK_EQ(ev.type, KL_EV_UNACKED);
    KT_CHECK_EQ(ev.seq, 3);
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), 0);
    KT_CHECK_EQ(kl_engine_poll(&cl, now_ms, &ev), 1);
    KT_CHECK_EQ(ev.type, KL_EV_UNACKED);
    KT_CHECK_EQ(ev.seq, 4);
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), 0); /* KL_EV_ONLINE owed */
    KT_CHECK_EQ(kl_engine_poll(&cl, now_ms, &ev), 1);
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    KT_CHECK(kl_engine_next_timeout(&cl, now_ms) > 0);
    pump();
    KT_CHECK(info().enabled);
    KT_CHECK_EQ(info().unacked, 1); /* the new session's presence */
}

#if KL_ENABLE_APP
/* One whole stanza committed by hand; drained. */
static int commit_raw(const char *x)
{
    kl_xw_t w;
    int st = kl_stanza_begin(&cl, &w);
    if (st != KL_OK)
        return st;
    kl_xw_raw(&w, (const uint8_t *)x, strlen(x));
    st = kl_stanza_commit(&cl, &w);
    drain();
    return st;
}

/* A long message takes a placeholder record in the queue; with the queue
 * full to the byte not even that fits: not begun, nothing sent, not
 * counted. An ack makes room. */
static void test_long_message_queue_full(void)
{
    opts_t o = dflt();
    static char msg[400];
    size_t used, hdr, room;
    o.qsize = 300;
    login(&o, 1);
    used = info().queue_used;
    KT_CHECK_EQ(commit_raw("<message><body>a</body></message>"), KL_OK);
    hdr = info().queue_used - used - 33; /* a record's header */
    room = 300 - info().queue_used;
    KT_CHECK(room > hdr + 32 && room - hdr < sizeof msg);
    memset(msg, 'x', sizeof msg);
    memcpy(msg, "<message><body>", 15);
    memcpy(msg + room - hdr - 17, "</body></message>", 18);
    KT_CHECK_EQ(commit_raw(msg), KL_OK);
    KT_CHECK_EQ(info().queue_used, 300);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), 3);
    clear();
    KT_CHECK_EQ(kl_send_message_begin(&cl, "bob@localhost", NULL), KL_ERR_TX_FULL);
    KT_CHECK(!kl_send_long_open(&cl));
    drain();
    KT_CHECK_EQ(out_len, 0);
    KT_CHECK_EQ(kl_sm_last_seq(&cl), 3);
    KT_CHECK_EQ(info().unacked, 3);
    feed("<a xmlns='" NS_SM "' h='1'/>");
    KT_CHECK_EQ(kl_send_message_begin(&cl, "bob@localhost", NULL), KL_OK);
    KT_CHECK(kl_send_long_open(&cl));
    KT_CHECK_EQ(kl_send_message_end(&cl), KL_OK);
    drain();
    KT_CHECK_EQ(kl_sm_last_seq(&cl), 4);
    KT_CHECK(strstr(out, "<message to='bob@localhost' type='chat'><body></body></message>") != NULL);
    /* saved and loaded with the long message's placeholder (a record of
     * no bytes, not the engine's own) among the unacknowledged: resumed,
     * the kept ones go again and the long one comes back as unacked */
    {
        static uint8_t blob[KL_SM_BLOB_MAX(300)];
        size_t len = 0;
        KT_CHECK_EQ(kl_sm_save(&cl, &toy, key, sizeof key, blob, sizeof blob, &len), KL_OK);
        init(&o);
        KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, blob, len), KL_OK);
        KT_CHECK_EQ(info().unacked, 3);
        to_success();
        clear();
        feed(HDR FEAT_BIND_SM "<resumed xmlns='" NS_SM "' h='1' previd='sm-1&amp;x'/>");
        KT_CHECK_STR(log_, "[resumed alice@localhost/dev h=1][unacked 4  -]");
        KT_CHECK(strncmp(out, "<message><body>a</body></message><message><body>xxx", 51) == 0);
        KT_CHECK_EQ(count_of(out, "<message"), 2);
    }
}
#endif

/* Back after the server's max (300 s): no <resume/> (it could only fail),
 * a new bind, and the old session's stanzas handed back. Just inside max
 * it resumes. */
static void test_resume_after_max(void)
{
    opts_t o = dflt();
    lost_with_three(&o);
    now_ms += 300 * 1000u - 5000 - 1000; /* 299 s since the last byte */
    to_success();
    KT_CHECK(strstr(out, "<resume") != NULL);
    feed(HDR FEAT_BIND_SM "<resumed xmlns='" NS_SM "' h='2' previd='sm-1&amp;x'/>");
    KT_CHECK(strstr(log_, "[resumed alice@localhost/dev") != NULL);

    lost_with_three(&o);
    now_ms += 300 * 1000u; /* 305 s */
    to_success();
    KT_CHECK(strstr(out, "<resume") == NULL);
    KT_CHECK(strstr(out, "kl-bind") != NULL);
    feed(HDR FEAT_BIND_SM BIND_RES);
    KT_CHECK_STR(log_, "[unacked 3 message 2][unacked 4 message 3][online alice@localhost/dev]");
}

/* Lockstep: <resume/> waits for the features; without SM in them, a new
 * bind (and the old session's stanzas handed back). */
static void test_resume_lockstep(void)
{
    opts_t o = dflt();
    o.mode = KL_PIPELINING_OFF;
    lost_with_three(&o);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    feed(HDR FEAT_TLS);
    feed(PROCEED);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL);
    clear();
    feed(SUCCESS);
    KT_CHECK(strstr(out, "<resume") == NULL);
    feed(HDR FEAT_BIND_SM);
    KT_CHECK(strstr(out, "<resume xmlns='" NS_SM "' h='2' previd='sm-1&amp;x'/>") != NULL);
    feed("<resumed xmlns='" NS_SM "' h='4' previd='sm-1&amp;x'/>");
    KT_CHECK_STR(log_, "[resumed alice@localhost/dev h=4]");
    /* the same loss, and a server without SM this time */
    lost_with_three(&o);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    feed(HDR FEAT_TLS);
    feed(PROCEED);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL);
    feed(SUCCESS);
    clear();
    feed(HDR FEAT_BIND);
    KT_CHECK(strstr(out, "<resume") == NULL && strstr(out, "kl-bind") != NULL);
    KT_CHECK(!info().resumable);
    feed(BIND_RES);
    KT_CHECK_STR(log_, "[unacked 3 message 2][unacked 4 message 3][online alice@localhost/dev]");
}

/* Resumption was not allowed: the next connect binds and hands back. */
static void test_not_resumable(void)
{
    opts_t o = dflt();
    init(&o);
    now_ms = 1000;
    to_success();
    feed(HDR FEAT_BIND_SM BIND_RES "<enabled xmlns='" NS_SM "'/>");
    KT_CHECK(info().enabled && !info().resumable);
    send_msg("1", KL_OK);
    clear();
    to_success();
    KT_CHECK(strstr(out, "<resume") == NULL && strstr(out, "kl-bind") != NULL);
    feed(HDR FEAT_BIND_SM BIND_RES);
    KT_CHECK_STR(log_, "[unacked 2 message 1][online alice@localhost/dev]");
}

static void test_resumed_hostile(void)
{
    opts_t o = dflt();
    /* not our previd */
    lost_with_three(&o);
    to_success();
    feed(HDR FEAT_BIND_SM "<resumed xmlns='" NS_SM "' h='3' previd='sm-2'/>");
    KT_CHECK_EQ(last_status, KL_ERR_SM_RESUME);
    KT_CHECK(!info().resumable);
    KT_CHECK_EQ(info().unacked, 2); /* kept: handed back after the next bind */
    /* h above what was sent */
    lost_with_three(&o);
    to_success();
    feed(HDR FEAT_BIND_SM "<resumed xmlns='" NS_SM "' h='9' previd='sm-1&amp;x'/>");
    KT_CHECK_EQ(last_status, KL_ERR_SM_ACK);
    /* a bind result nobody asked for while resuming: the stream is broken,
     * the session is not */
    lost_with_three(&o);
    to_success();
    feed(HDR FEAT_BIND_SM BIND_RES2);
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
    KT_CHECK(info().resumable);
    KT_CHECK_STR(kl_client_jid(&cl), "alice@localhost/dev");
    /* unasked: <resumed/> on a fresh login, <enabled/> and <failed/> while on */
    login(&o, 1);
    feed("<enabled xmlns='" NS_SM "' id='other' resume='true'/><failed xmlns='" NS_SM "'/>");
    KT_CHECK_STR(log_, "");
    KT_CHECK_STR(info().id, "sm-1&x");
    KT_CHECK(info().enabled);
    feed("<resumed xmlns='" NS_SM "' previd='sm-1&amp;x'/>");
    KT_CHECK_EQ(last_status, KL_ERR_SM_RESUME);
    /* SM nonzas before authentication break the stream */
    init(&o);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    feed(HDR "<r xmlns='" NS_SM "'/>");
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
}

/* kl_client_close() ends the session: nothing resumes it. */
static void test_close_forgets(void)
{
    opts_t o = dflt();
    login(&o, 1);
    send_msg("1", KL_OK);
    feed(MSG("in"));
    clear();
    KT_CHECK_EQ(kl_sm_ack_now(&cl), KL_OK); /* unasked: what we handled */
    drain();
    KT_CHECK_STR(out, "<a xmlns='" NS_SM "' h='1'/>");
    clear();
    KT_CHECK_EQ(kl_client_close(&cl), KL_OK);
    drain();
    /* the close acknowledges what was handled, then ends the stream */
    KT_CHECK_STR(out, "<a xmlns='" NS_SM "' h='1'/></stream:stream>");
    KT_CHECK_EQ(kl_sm_ack_now(&cl), KL_ERR_STATE);
    KT_CHECK(!info().resumable);
    feed("</stream:stream>");
    KT_CHECK_STR(log_, "[closed 0]");
    KT_CHECK_EQ(info().unacked, 0);
    KT_CHECK_EQ(info().last_seq, 0);
    clear();
    to_success();
    KT_CHECK(strstr(out, "<resume") == NULL);
    feed(HDR FEAT_BIND_SM BIND_RES);
    KT_CHECK_STR(log_, "[online alice@localhost/dev]");
    /* kl_sm_reset drops everything at once */
    lost_with_three(&o);
    kl_sm_reset(&cl);
    to_success();
    feed(HDR FEAT_BIND_SM BIND_RES);
    KT_CHECK_STR(log_, "[online alice@localhost/dev]");
}

/* A queue too small for even one record's header is no queue: stream
 * management is not asked for, and the session runs without it. */
static void test_queue_too_small(void)
{
    opts_t o = dflt();
    size_t sizes[2] = {6, (size_t)-1}; /* 6: a record header (core/kl_internal.h) */
    int i;
    for (i = 0; i < 2; i++) {
        o.qsize = sizes[i];
        init(&o);
        now_ms = 1000;
        to_success();
        feed(HDR FEAT_BIND_SM BIND_RES);
        KT_CHECK(kl_client_is_online(&cl));
        KT_CHECK(strstr(out, "<enable") == NULL);
        KT_CHECK_EQ(info().enabled, 0);
        send_msg("x", KL_OK);
        KT_CHECK_EQ(kl_sm_last_seq(&cl), 0);
    }
}

/* ---- persistence ---------------------------------------------------------------- */

/* Signs blob[0..len - 32) again as kl_sm_save does (HMAC over the label
 * "kinglet-sm" and the body; the MAC in the last 32 bytes). */
static void resign(uint8_t *blob, size_t len)
{
    kl_slice_t parts[2] = {{(const uint8_t *)"kinglet-sm", 10}, {blob, len - KL_CACHE_MAC_LEN}};
    uint8_t mac[KL_HASH_MAX];
    toy_hmac(NULL, KL_HASH_SHA256, key, sizeof key, parts, 2, mac);
    memcpy(blob + len - KL_CACHE_MAC_LEN, mac, KL_CACHE_MAC_LEN);
}

static void test_save_load(void)
{
    static uint8_t blob[KL_SM_BLOB_MAX(sizeof queue)], bad[sizeof blob];
    static uint8_t other_key[KL_CACHE_KEY_LEN];
    size_t len = 0, small = 0, i;
    opts_t o = dflt();
    lost_with_three(&o);
    KT_CHECK_EQ(kl_sm_save(&cl, &toy, key, sizeof key, blob, 10, &small), KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(kl_sm_save(&cl, NULL, key, sizeof key, blob, sizeof blob, &len), KL_ERR_CACHE_NO_KEY);
    KT_CHECK_EQ(kl_sm_save(&cl, &toy, key, sizeof key, blob, sizeof blob, &len), KL_OK);
    KT_CHECK_EQ(small, len);
    KT_CHECK(len > 68 && len <= KL_SM_BLOB_MAX(sizeof queue));
    /* what save cannot use: named, nothing written */
    {
        static const kl_crypto_t no_hmac = {NULL, NULL, NULL, NULL, NULL};
        static const kl_crypto_t broken = {NULL, NULL, broken_hmac, NULL, NULL};
        size_t l = 1;
        kl_sm_info_t si;
        KT_CHECK_EQ(kl_sm_save(NULL, &toy, key, sizeof key, bad, sizeof bad, &l), KL_ERR_ARG);
        KT_CHECK_EQ(l, 0);
        KT_CHECK_EQ(kl_sm_save(&cl, &toy, key, sizeof key, NULL, sizeof bad, &l), KL_ERR_ARG);
        KT_CHECK_EQ(kl_sm_save(&cl, &toy, key, sizeof key, bad, sizeof bad, NULL), KL_ERR_ARG);
        KT_CHECK_EQ(kl_sm_save(&cl, &toy, key, 16, bad, sizeof bad, &l), KL_ERR_ARG);
        KT_CHECK_EQ(kl_sm_save(&cl, &no_hmac, key, sizeof key, bad, sizeof bad, &l), KL_ERR_CACHE_NO_KEY);
        KT_CHECK_EQ(kl_sm_save(&cl, &toy, NULL, 0, bad, sizeof bad, &l), KL_ERR_CACHE_NO_KEY);
        memset(bad, 0x55, sizeof bad);
        KT_CHECK_EQ(kl_sm_save(&cl, &broken, key, sizeof key, bad, sizeof bad, &l), KL_ERR_CACHE_NO_KEY);
        KT_CHECK_EQ(l, 0);
        KT_CHECK(bad[0] == 0 && bad[len - 1] == 0 && bad[len] == 0x55); /* no half-written blob */
        KT_CHECK_EQ(kl_sm_info(NULL, &si), KL_ERR_ARG);
        KT_CHECK_EQ(kl_sm_info(&cl, NULL), KL_ERR_ARG);
        KT_CHECK_EQ(kl_sm_last_seq(NULL), 0);
        kl_sm_reset(NULL);
        init(&o);
        KT_CHECK_EQ(kl_sm_load(NULL, &toy, key, sizeof key, blob, len), KL_ERR_ARG);
        KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, NULL, len), KL_ERR_ARG);
        KT_CHECK_EQ(kl_sm_load(&cl, &no_hmac, key, sizeof key, blob, len), KL_ERR_CACHE_NO_KEY);
        KT_CHECK_EQ(kl_sm_load(&cl, &toy, NULL, 0, blob, len), KL_ERR_CACHE_NO_KEY);
        KT_CHECK_EQ(kl_sm_load(&cl, &broken, key, sizeof key, blob, len), KL_ERR_SM_STATE);
        KT_CHECK(!info().resumable && info().unacked == 0);
        /* the account's JID in another case is the same account */
        o.jid = "ALICE@LocalHost/dev";
        init(&o);
        KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, blob, len), KL_OK);
        KT_CHECK(info().resumable && info().unacked == 2);
        o.jid = NULL;
    }
    /* the "reboot": a fresh client loads and resumes */
    memset(queue, 0xAA, sizeof queue);
    init(&o);
    KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, blob, len), KL_OK);
    KT_CHECK(info().resumable && info().unacked == 2);
    KT_CHECK_STR(info().location, "[2001:db8::1]:5222");
    to_success();
    KT_CHECK(strstr(out, "<resume xmlns='" NS_SM "' h='2' previd='sm-1&amp;x'/>") != NULL);
    clear();
    feed(HDR FEAT_BIND_SM "<resumed xmlns='" NS_SM "' h='2' previd='sm-1&amp;x'/>");
    KT_CHECK_STR(log_, "[resumed alice@localhost/dev h=2]");
    KT_CHECK_EQ(count_of(out, "<message"), 2);
    KT_CHECK(strstr(out, "<body>2</body>") < strstr(out, "<body>3</body>"));

    /* every byte is under the MAC: one changed anywhere, a shorter or
     * longer blob, another key: ignored whole, and a new session is bound */
    for (i = 0; i < len; i += (i < 80 ? 1 : 37)) {
        memcpy(bad, blob, len);
        bad[i] ^= 0x20;
        init(&o);
        KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, bad, len), KL_ERR_SM_STATE);
        KT_CHECK(!info().resumable && info().unacked == 0 && info().id[0] == 0);
    }
    init(&o);
    KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, blob, len - 1), KL_ERR_SM_STATE);
    memcpy(bad, blob, len);
    bad[len] = 0;
    KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, bad, len + 1), KL_ERR_SM_STATE);
    KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, blob, 20), KL_ERR_SM_STATE);
    memset(other_key, 7, sizeof other_key);
    KT_CHECK_EQ(kl_sm_load(&cl, &toy, other_key, sizeof other_key, blob, len), KL_ERR_SM_STATE);
    KT_CHECK_EQ(kl_sm_load(&cl, NULL, key, sizeof key, blob, len), KL_ERR_CACHE_NO_KEY);
    KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, 16, blob, len), KL_ERR_ARG);
    to_success();
    KT_CHECK(strstr(out, "<resume") == NULL && strstr(out, "kl-bind") != NULL);
    clear();
    feed(HDR FEAT_BIND_SM BIND_RES);
    KT_CHECK_STR(log_, "[online alice@localhost/dev]");
    /* authentic, but not for this account, or too big for this queue */
    o.jid = "bob@localhost/dev";
    init(&o);
    KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, blob, len), KL_ERR_SM_STATE);
    o.jid = NULL;
    o.qsize = 40;
    init(&o);
    KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, blob, len), KL_ERR_SM_STATE);
    /* authentic, but this client has a queue size and no queue */
    o.qsize = 0;
    o.queue_null = 1;
    init(&o);
    KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, blob, len), KL_ERR_SM_STATE);
    o.queue_null = 0;
    /* authentic (re-signed with the key), but a record longer than any
     * this build sends: not loaded */
    {
        size_t q0 = 36u + blob[32] + blob[33] + blob[34]; /* the first record (core/kl_sm.c) */
        uint32_t rl = blob[q0 + 4] | (uint32_t)blob[q0 + 5] << 8;
        KT_CHECK(rl > 0 && (rl & 0x8000u) == 0); /* an application stanza's record */
        memcpy(bad, blob, len);
        bad[q0 + 4] = (uint8_t)((KL_TX_BUF_SIZE + 1) & 0xFF);
        bad[q0 + 5] = (uint8_t)((KL_TX_BUF_SIZE + 1) >> 8);
        resign(bad, len);
        init(&o);
        KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, bad, len), KL_ERR_SM_STATE);
        KT_CHECK(!info().resumable && info().unacked == 0);
        /* nor a placeholder (the first record without its bytes) said to
         * be the engine's own: only an application's long message has one.
         * As the application's, the same blob loads */
        {
            size_t blen = len - rl, ql;
            int f;
            for (f = 0; f < 2; f++) {
                memcpy(bad, blob, q0 + 6);
                memcpy(bad + q0 + 6, blob + q0 + 6 + rl, len - (q0 + 6 + rl));
                bad[q0 + 4] = 0;
                bad[q0 + 5] = f ? 0x00 : 0x80; /* KL_SM_REC_OWN, core/kl_internal.h */
                ql = ((size_t)blob[28] | (size_t)blob[29] << 8) - rl;
                bad[28] = (uint8_t)ql;
                bad[29] = (uint8_t)(ql >> 8);
                resign(bad, blen);
                init(&o);
                KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, bad, blen), f ? KL_OK : KL_ERR_SM_STATE);
            }
        }
        memcpy(bad, blob, len); /* the re-signing itself is right */
        resign(bad, len);
        init(&o);
        KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, bad, len), KL_OK);
    }
    /* only before connecting */
    o.qsize = 0;
    init(&o);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    KT_CHECK_EQ(kl_sm_load(&cl, &toy, key, sizeof key, blob, len), KL_ERR_STATE);
    /* not while stanzas are being handed back */
    lost_with_three(&o);
    to_success();
    feed(HDR FEAT_BIND_SM "<failed xmlns='" NS_SM "'/>");
    KT_CHECK_EQ(kl_engine_input(&cl, (const uint8_t *)BIND_RES, strlen(BIND_RES)), strlen(BIND_RES));
    {
        kl_event_t ev;
        KT_CHECK_EQ(kl_engine_poll(&cl, now_ms, &ev), 1);
        KT_CHECK_EQ(ev.type, KL_EV_UNACKED);
        KT_CHECK_EQ(kl_sm_save(&cl, &toy, key, sizeof key, blob, sizeof blob, &len), KL_ERR_STATE);
    }
}

/* ---- keepalive with SM ----------------------------------------------------------- */

static void test_keepalive_r(void)
{
    opts_t o = dflt();
    login(&o, 1);
    feed("<a xmlns='" NS_SM "' h='1'/>");
    clear();
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), KL_KEEPALIVE_MS);
    now_ms += KL_KEEPALIVE_MS - 1;
    pump();
    KT_CHECK_STR(out, "");
    now_ms += 1;
    pump();
    KT_CHECK_STR(out, R); /* not a ping: SM has its own */
    KT_CHECK_EQ(kl_client_stats(&cl)->keepalives_sent, 1);
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), KL_KEEPALIVE_TIMEOUT_MS);
    now_ms += KL_KEEPALIVE_TIMEOUT_MS - 1;
    feed("<a xmlns='" NS_SM "' h='1'/>"); /* anything answers it */
    now_ms += 2;
    pump();
    KT_CHECK_EQ(last_status, 0);
    /* the next one is unanswered: a dead peer, and no </stream:stream>
     * (a clean close would end the session on a live server) */
    now_ms += KL_KEEPALIVE_MS;
    pump();
    clear();
    now_ms += KL_KEEPALIVE_TIMEOUT_MS;
    pump();
    KT_CHECK_EQ(last_status, KL_ERR_DEAD_PEER);
    KT_CHECK_STR(out, "");
    KT_CHECK(info().resumable);
    /* and the manager's reconnect resumes it */
    to_success();
    KT_CHECK(strstr(out, "<resume xmlns='" NS_SM "' h='0' previd='sm-1&amp;x'/>") != NULL);
}

int main(void)
{
    KT_RUN(test_enable_after_bind);
    KT_RUN(test_enable_in_bind_flight);
    KT_RUN(test_enable_failed);
    KT_RUN(test_inbound_counting);
    KT_RUN(test_r_flood);
    KT_RUN(test_ack_every_n);
    KT_RUN(test_ack_after_t);
    KT_RUN(test_ack_before_idle);
    KT_RUN(test_queue_full);
    KT_RUN(test_ack_too_high);
    KT_RUN(test_ack_backwards_and_twice);
    KT_RUN(test_counters_wrap);
    KT_RUN(test_resume);
    KT_RUN(test_resume_resend_in_order);
    KT_RUN(test_resume_failed);
    KT_RUN(test_handback_wants_poll);
#if KL_ENABLE_APP
    KT_RUN(test_long_message_queue_full);
#endif
    KT_RUN(test_resume_after_max);
    KT_RUN(test_resume_lockstep);
    KT_RUN(test_not_resumable);
    KT_RUN(test_resumed_hostile);
    KT_RUN(test_close_forgets);
    KT_RUN(test_save_load);
    KT_RUN(test_queue_too_small);
    KT_RUN(test_keepalive_r);
    return kt_summary("sm");
}

#else /* stream management compiled out */

int main(void) { return kt_summary("sm"); }

#endif
