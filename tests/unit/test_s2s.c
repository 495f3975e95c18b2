/* s2s mode (XEP-0288 bidi + SASL EXTERNAL) against a scripted peer. */
#include <string.h>

#include "kinglet/kinglet.h"
#include "kt.h"

#define HDR "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " \
            "from='peer.test' to='sensor.test' version='1.0'>"
#define SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define TLSF "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>" \
             "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define EXT_BIDI "<stream:features><mechanisms xmlns='" SASL "'><mechanism>EXTERNAL</mechanism></mechanisms>" \
                 "<bidi xmlns='urn:xmpp:features:bidi'/></stream:features>"
#define EXT_ONLY "<stream:features><mechanisms xmlns='" SASL "'><mechanism>EXTERNAL</mechanism></mechanisms>" \
                 "</stream:features>"
/* base64("sensor.test") */
#define AUTHZ "c2Vuc29yLnRlc3Q="

static kl_client_t cl;
static char out[16384];
static int last_status, online, bidi;
static char last_body[256];

static void pump(void)
{
    kl_event_t ev;
    size_t n;
    const uint8_t *p;
    while (kl_engine_poll(&cl, 1, &ev) > 0) {
        if (ev.type == KL_EV_ERROR)
            last_status = ev.status;
        if (ev.type == KL_EV_ONLINE)
            online = 1, bidi = ev.bidi;
        if (ev.type == KL_EV_STANZA)
            kl_stanza_child_text(&cl, &ev.stanza, "body", NULL, last_body, sizeof last_body);
        if (ev.type == KL_EV_STANZA_BEGIN || ev.type == KL_EV_TOKEN)
            strcpy(last_body, "(streamed)");
    }
    p = kl_engine_output(&cl, &n);
    strncat(out, (const char *)p, n);
    kl_engine_output_ack(&cl, n);
}

static void feed(const char *s)
{
    kl_engine_input(&cl, (const uint8_t *)s, strlen(s));
    pump();
}

static int count_auth(void)
{
    int n = 0;
    const char *p = out;
    while ((p = strstr(p, "<auth ")) != NULL)
        n++, p++;
    return n;
}

static void login(const char *features)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "sensor.test";
    cfg.s2s = 1;
    cfg.s2s_to = "peer.test";
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.random = kt_random;
    out[0] = last_body[0] = 0;
    last_status = online = bidi = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    kl_client_connect(&cl, 1, KL_CHANNEL_STARTTLS);
    pump();
    KT_CHECK(strstr(out, "xmlns='jabber:server'") != NULL);
    KT_CHECK(strstr(out, "to='peer.test' from='sensor.test'") != NULL);
    feed(HDR TLSF);
    kl_engine_tls_done(&cl, 1);
    pump();
    feed(HDR);
    feed(features);
}

static void test_bidi_external(void)
{
    login(EXT_BIDI);
    KT_CHECK(strstr(out, "<bidi xmlns='urn:xmpp:bidi'/><auth xmlns='" SASL "' mechanism='EXTERNAL'>" AUTHZ "</auth>") != NULL);
    feed("<success xmlns='" SASL "'/>");
    KT_CHECK(strstr(out, "kl-bind") == NULL); /* no resource binding between servers */
    feed(HDR "<stream:features/>");
    KT_CHECK_EQ(online, 1);
    KT_CHECK_EQ(bidi, 1);
    KT_CHECK_STR(kl_client_jid(&cl), "sensor.test");
    /* the peer delivers a stanza for our domain on this stream */
    feed("<message from='user@peer.test/r' to='device@sensor.test'><body>hi</body></message>");
    KT_CHECK_STR(last_body, "hi");
    /* pings get an answer from us */
    feed("<iq type='get' id='p1' from='peer.test' to='sensor.test'><ping xmlns='urn:xmpp:ping'/></iq>");
    KT_CHECK(strstr(out, "<iq type='result' id='p1' from='sensor.test' to='peer.test'/>") != NULL);
    out[0] = 0;
    KT_CHECK_EQ(kl_send_message_from(&cl, "device@sensor.test", "user@peer.test", NULL, "ho"), KL_OK);
    pump();
    KT_CHECK(strstr(out, "<message from='device@sensor.test' to='user@peer.test' type='chat'><body>ho</body></message>") != NULL);
}

/* With hints from an earlier login, <bidi/> and EXTERNAL ride with the
 * stream header after a verified handshake; without verification, or
 * with hints that show no EXTERNAL, they wait for the features. */
static void s2s_cached(kl_cache_t *k, int verified)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "sensor.test";
    cfg.s2s = 1;
    cfg.s2s_to = "peer.test";
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.random = kt_random;
    cfg.cache = k;
    out[0] = last_body[0] = 0;
    last_status = online = bidi = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    kl_client_connect(&cl, 1, KL_CHANNEL_STARTTLS);
    pump();
    feed(HDR TLSF);
    kl_engine_tls_done(&cl, verified);
    pump();
}

static void test_external_from_hints(void)
{
    static kl_cache_t k;
    if (!KL_ENABLE_CACHE)
        return;
    kl_cache_reset(&k, "peer.test");
    s2s_cached(&k, 1); /* no hints yet */
    KT_CHECK(strstr(out, "<auth") == NULL);
    feed(HDR EXT_BIDI "<success xmlns='" SASL "'/>" HDR "<stream:features/>");
    KT_CHECK_EQ(online, 1);
    s2s_cached(&k, 1);
    KT_CHECK(strstr(out, "xml:lang='en'><bidi xmlns='urn:xmpp:bidi'/><auth xmlns='" SASL "' mechanism='EXTERNAL'>"
                         AUTHZ "</auth>") != NULL);
    feed(HDR EXT_BIDI "<success xmlns='" SASL "'/>" HDR "<stream:features/>");
    KT_CHECK_EQ(online, 1);
    KT_CHECK_EQ(bidi, 1);
    KT_CHECK_EQ(count_auth(), 1);
    /* the certificate not verified: nothing rides ahead */
    s2s_cached(&k, 0);
    KT_CHECK(strstr(out, "<auth") == NULL);
    /* a peer that stopped offering bidi: EXTERNAL alone next time */
    s2s_cached(&k, 1);
    feed(HDR EXT_ONLY "<success xmlns='" SASL "'/>" HDR "<stream:features/>");
    KT_CHECK_EQ(online, 1);
    s2s_cached(&k, 1);
    KT_CHECK(strstr(out, "xml:lang='en'><auth xmlns='" SASL "' mechanism='EXTERNAL'>") != NULL);
    KT_CHECK(strstr(out, "<bidi") == NULL);
}

static void test_never_sends_for_another_domain(void)
{
    kl_xw_t w;
    login(EXT_BIDI);
    feed("<success xmlns='" SASL "'/>" HDR "<stream:features/>");
    out[0] = 0;
    KT_CHECK_EQ(kl_send_message_from(&cl, "device@evil.test", "user@peer.test", NULL, "x"), KL_ERR_FROM_DOMAIN);
    KT_CHECK_EQ(kl_send_message_from(&cl, "sensor.test.evil", "user@peer.test", NULL, "x"), KL_ERR_FROM_DOMAIN);
    /* a hand-built stanza without from, or a second one smuggled in */
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    kl_xw_raw(&w, (const uint8_t *)"<message to='u@peer.test'/>", 27);
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_ERR_FROM_DOMAIN);
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    kl_xw_raw(&w, (const uint8_t *)"<message from='sensor.test'/><message from='x@evil.test'/>", 58);
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_ERR_FROM_DOMAIN);
    pump();
    KT_CHECK_STR(out, ""); /* nothing was sent */
    /* our domain itself is fine */
    KT_CHECK_EQ(kl_send_message(&cl, "user@peer.test", NULL, "ok"), KL_OK);
}

/* What the application writes is refused unless it is well-formed
 * stanzas, each from our domain. */
static void test_commit_checks_every_stanza(void)
{
    /* ... and each closed: a stanza left open would swallow the next one */
    static const char *const bad[] = {"<message from='sensor.test'></x>", "hello", "<message from=''/>",
                                      "<message from='&#0;'/>", "<message from='sensor.test'>",
                                      "<message from='sensor.test'><body>x</body>"};
    kl_xw_t w;
    size_t i;
    login(EXT_BIDI);
    feed("<success xmlns='" SASL "'/>" HDR "<stream:features/>");
    KT_CHECK_EQ(online, 1);
    pump();
    out[0] = 0;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
        kl_xw_raw(&w, (const uint8_t *)bad[i], strlen(bad[i]));
        KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_ERR_FROM_DOMAIN);
    }
    pump();
    KT_CHECK_STR(out, "");
    /* an inbound stanza with an empty from is from no domain of the peer */
    feed("<message from='' to='device@sensor.test'><body>x</body></message>");
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
    KT_CHECK(strstr(out, "<invalid-from") != NULL);
    KT_CHECK_STR(last_body, "");
}

/* Both ends of an s2s stream are bare domains, of a JID's length. */
static void test_s2s_config(void)
{
    static const char *const ours[] = {"", "a@sensor.test", "sensor.test/r", "sensor.test", "sensor.test", "sensor.test",
                                       "sensor.test"};
    static const char *const peer[] = {"peer.test", "peer.test", "peer.test", NULL, "", "u@peer.test", "peer.test/r"};
    char longd[KL_JID_MAX + 1];
    kl_client_config_t cfg;
    size_t i;
    memset(&cfg, 0, sizeof cfg);
    cfg.s2s = 1;
    cfg.random = kt_random;
    for (i = 0; i < sizeof ours / sizeof ours[0]; i++) {
        cfg.jid = ours[i];
        cfg.s2s_to = peer[i];
        KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_ERR_ARG);
    }
    memset(longd, 'd', sizeof longd - 1);
    longd[sizeof longd - 1] = 0;
    cfg.jid = longd;
    cfg.s2s_to = "peer.test";
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_ERR_JID_TOO_LONG);
    cfg.jid = "sensor.test";
    cfg.s2s_to = longd;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_ERR_JID_TOO_LONG);
    longd[KL_JID_MAX - 1] = 0; /* the longest that fits */
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_STR(kl_client_domain(&cl), longd);
}

static void test_peer_without_bidi(void)
{
    login(EXT_ONLY);
    KT_CHECK(strstr(out, "<bidi") == NULL);
    KT_CHECK(strstr(out, "mechanism='EXTERNAL'") != NULL);
    feed("<success xmlns='" SASL "'/>" HDR "<stream:features/>");
    KT_CHECK_EQ(online, 1);
    KT_CHECK_EQ(bidi, 0); /* the application is told: send-only stream */
}

static void test_inbound_from_wrong_domain(void)
{
    login(EXT_BIDI);
    feed("<success xmlns='" SASL "'/>" HDR "<stream:features/>");
    feed("<message from='mallory@other.test' to='device@sensor.test'><body>x</body></message>");
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
    KT_CHECK(strstr(out, "<invalid-from") != NULL);
    KT_CHECK_STR(last_body, "");
}

/* A stanza larger than the receive buffer is checked before the
 * application sees its first token, like a whole one. */
static void test_large_inbound_from_wrong_domain(void)
{
    static char big[KL_RX_BUF_SIZE * 2 + 256];
    size_t i, n;
    const char *heads[2] = {"<message from='mallory@other.test' to='device@sensor.test'><body>",
                            "<message from='user@peer.test' to='device@other.test'><body>"};
    const char *cond[2] = {"<invalid-from", "<host-unknown"};
    for (i = 0; i < 2; i++) {
        login(EXT_BIDI);
        feed("<success xmlns='" SASL "'/>" HDR "<stream:features/>");
        last_body[0] = 0;
        strcpy(big, heads[i]);
        n = strlen(big);
        memset(big + n, 'x', KL_RX_BUF_SIZE * 2);
        strcpy(big + n + KL_RX_BUF_SIZE * 2, "</body></message>");
        for (n = 0; n < strlen(big); n += 512) {
            char part[513];
            snprintf(part, sizeof part, "%.512s", big + n);
            feed(part);
        }
        KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
        KT_CHECK(strstr(out, cond[i]) != NULL);
        KT_CHECK_STR(last_body, "");
    }
}

static void test_external_refused_and_missing(void)
{
    login(EXT_BIDI);
    feed("<failure xmlns='" SASL "'><not-authorized/></failure>");
    KT_CHECK_EQ(last_status, KL_ERR_AUTH);
    login("<stream:features><mechanisms xmlns='" SASL "'><mechanism>PLAIN</mechanism></mechanisms></stream:features>");
    KT_CHECK_EQ(last_status, KL_ERR_NO_MECHANISM);
    KT_CHECK(strstr(out, "<auth") == NULL);
}

int main(void)
{
    KT_RUN(test_bidi_external);
    KT_RUN(test_never_sends_for_another_domain);
    KT_RUN(test_peer_without_bidi);
    KT_RUN(test_commit_checks_every_stanza);
    KT_RUN(test_s2s_config);
    KT_RUN(test_external_from_hints);
    KT_RUN(test_inbound_from_wrong_domain);
    KT_RUN(test_large_inbound_from_wrong_domain);
    KT_RUN(test_external_refused_and_missing);
    return kt_summary("s2s");
}
