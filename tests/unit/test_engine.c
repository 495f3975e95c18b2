/* Engine tests against scripted servers: transcripts of who sends what,
 * every server flight also fed split at every byte boundary. */
#include <stdlib.h>
#include <string.h>

#include "kinglet/kinglet.h"
#include "kinglet/kl_app.h"
#include "kt.h"

#define HDR "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
            "xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>"
#define FEAT_TLS "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>" \
                 "</stream:features>"
#define PROCEED "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define FEAT_SASL "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
                  "<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
#define FEAT_BIND "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" \
                  "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>"
#define BIND_RES "<iq type='result' id='kl-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" \
                 "<jid>alice@localhost/dev</jid></bind></iq>"
/* base64("\0alice\0secret") */
#define AUTH_B64 "AGFsaWNlAHNlY3JldA=="

static kl_client_t cl;

/* What the test saw: the client's output and a log of events. */
static char out[65536];
static size_t out_len;
static char log_[65536];
static size_t log_len;
static int last_status;
static char body_acc[16384];
static size_t body_len;

static void logf_(const char *s)
{
    size_t n = strlen(s);
    if (log_len + n < sizeof log_) {
        memcpy(log_ + log_len, s, n);
        log_len += n;
        log_[log_len] = 0;
    }
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

static void on_event(kl_event_t *ev)
{
    char buf[8192];
    switch (ev->type) {
    case KL_EV_START_TLS: logf_("[starttls]"); break;
    case KL_EV_ONLINE: snprintf(buf, sizeof buf, "[online %s]", ev->jid); logf_(buf); break;
    case KL_EV_STANZA: {
        char body[4096];
        int n = kl_stanza_child_text(&cl, &ev->stanza, "body", NULL, body, sizeof body);
        snprintf(buf, sizeof buf, "[stanza %.*s%s%s]", (int)ev->stanza.name.len, ev->stanza.name.p,
                 n >= 0 ? " " : "", n >= 0 ? body : "");
        logf_(buf);
        break;
    }
    case KL_EV_STANZA_BEGIN:
        snprintf(buf, sizeof buf, "[begin %.*s]", (int)ev->stanza.name.len, ev->stanza.name.p);
        logf_(buf);
        body_len = 0;
        break;
    case KL_EV_TOKEN:
        if (ev->token.type == KL_XML_TEXT) {
            int n = kl_xml_decode(ev->token.text, ev->token.cdata, (uint8_t *)body_acc + body_len,
                                  sizeof body_acc - body_len);
            if (n > 0)
                body_len += (size_t)n;
        }
        break;
    case KL_EV_STANZA_END: snprintf(buf, sizeof buf, "[end %zu]", body_len); logf_(buf); break;
    case KL_EV_STANZA_DROPPED: snprintf(buf, sizeof buf, "[dropped %d]", ev->status); logf_(buf); break;
    case KL_EV_IQ_RESULT: snprintf(buf, sizeof buf, "[iq-result %u]", ev->iq_id); logf_(buf); break;
    case KL_EV_IQ_TIMEOUT: snprintf(buf, sizeof buf, "[iq-timeout %u]", ev->iq_id); logf_(buf); break;
    case KL_EV_CLOSED: snprintf(buf, sizeof buf, "[closed %d]", ev->status); logf_(buf); break;
    case KL_EV_ERROR:
        snprintf(buf, sizeof buf, "[error %s %s]", kl_strerror(ev->status), ev->condition);
        logf_(buf);
        last_status = ev->status;
        break;
    default: break;
    }
}

static uint32_t now_ms;

static void pump(void)
{
    kl_event_t ev;
    while (kl_engine_poll(&cl, now_ms, &ev) > 0) {
        on_event(&ev);
        drain();
    }
    drain();
}

/* Feed s in pieces of at most `chunk` bytes (0: whole), polling between. */
static void feed(const char *s, size_t chunk)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        size_t n = len - off, cap, take;
        uint8_t *buf;
        if (chunk && n > chunk)
            n = chunk;
        buf = kl_engine_input_buf(&cl, &cap);
        take = n < cap ? n : cap;
        if (take == 0) {
            pump();
            buf = kl_engine_input_buf(&cl, &cap);
            take = n < cap ? n : cap;
            if (take == 0)
                return; /* engine takes nothing more (done) */
        }
        memcpy(buf, s + off, take);
        kl_engine_input_ack(&cl, take);
        off += take;
        pump();
    }
}

/* Feed s split once at `split` (two pieces). */
static void feed_split(const char *s, size_t split)
{
    size_t len = strlen(s);
    char tmp[65536];
    if (split == 0 || split >= len) {
        feed(s, 0);
        return;
    }
    memcpy(tmp, s, split);
    tmp[split] = 0;
    feed(tmp, 0);
    feed(s + split, 0);
}

static void reset(kl_pipelining_t mode)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.pipelining = mode;
    cfg.random = kt_random;
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    last_status = 0;
    now_ms = 1000;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    drain();
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    const char *p = hay;
    while ((p = strstr(p, needle)) != NULL)
        n++, p++;
    return n;
}

/* The id of the n-th <iq the client wrote since `out` was cleared. */
static void iq_id_of(int nth, char *id, size_t cap)
{
    const char *p = out, *q;
    int k = -1;
    id[0] = 0;
    while (k < nth && (p = strstr(p, "<iq ")) != NULL) {
        k++;
        if (k == nth && (q = strstr(p, "id='")) != NULL) {
            size_t n = strcspn(q + 4, "'");
            snprintf(id, cap, "%.*s", (int)n, q + 4);
        }
        p++;
    }
}

/* ---- happy paths -------------------------------------------------------- */

static void login_safe(size_t split, size_t chunk)
{
    reset(KL_PIPELINING_SAFE);
    KT_CHECK(strstr(out, "<stream:stream") != NULL);
    KT_CHECK(strstr(out, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>") != NULL);
    KT_CHECK(strstr(out, "from=") == NULL); /* no identity before TLS */
    if (chunk)
        feed(HDR FEAT_TLS PROCEED, chunk);
    else
        feed_split(HDR FEAT_TLS PROCEED, split);
    KT_CHECK_STR(log_, "[starttls]");
    KT_CHECK(strstr(out, "<auth") == NULL);
    KT_CHECK_EQ(kl_engine_tls_done(&cl, 1), KL_OK);
    drain();
    KT_CHECK(strstr(out, "mechanism='PLAIN'>" AUTH_B64 "</auth>") != NULL);
    if (chunk)
        feed(HDR FEAT_SASL SUCCESS HDR FEAT_BIND BIND_RES, chunk);
    else {
        feed_split(HDR FEAT_SASL SUCCESS, split);
        feed_split(HDR FEAT_BIND BIND_RES, split);
    }
    KT_CHECK_STR(log_, "[starttls][online alice@localhost/dev]");
    KT_CHECK(strstr(out, "<resource>dev</resource>") != NULL);
    KT_CHECK(strstr(out, "<presence/>") != NULL);
    KT_CHECK_EQ(kl_client_stats(&cl)->engine_round_trips, 3);
    KT_CHECK_EQ(kl_client_stats(&cl)->flights_out, 3);
    KT_CHECK_EQ(count_of(out, "<stream:stream"), 3);
}

static void test_login_safe_every_split(void)
{
    size_t k, longest = strlen(HDR FEAT_SASL SUCCESS);
    for (k = 0; k <= longest; k++)
        login_safe(k, 0);
    for (k = 1; k <= 7; k++)
        login_safe(0, k);
}

static void test_login_off(void)
{
    reset(KL_PIPELINING_OFF);
    KT_CHECK(strstr(out, "starttls") == NULL);
    feed(HDR FEAT_TLS, 0);
    KT_CHECK(strstr(out, "<starttls") != NULL);
    feed(PROCEED, 0);
    KT_CHECK_STR(log_, "[starttls]");
    kl_engine_tls_done(&cl, 1);
    drain();
    KT_CHECK(strstr(out, "<auth") == NULL); /* off: waits for features */
    feed(HDR FEAT_SASL, 0);
    KT_CHECK(strstr(out, "<auth") != NULL);
    feed(SUCCESS, 0);
    KT_CHECK(strstr(out, "kl-bind") == NULL);
    feed(HDR FEAT_BIND, 0);
    KT_CHECK(strstr(out, "kl-bind") != NULL);
    feed(BIND_RES, 0);
    KT_CHECK_STR(log_, "[starttls][online alice@localhost/dev]");
    KT_CHECK_EQ(kl_client_stats(&cl)->engine_round_trips, 6);
}

static void online(void)
{
    reset(KL_PIPELINING_SAFE);
    feed(HDR FEAT_TLS PROCEED, 0);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL SUCCESS HDR FEAT_BIND BIND_RES, 0);
    drain();
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
}

static void test_messages_and_pings(void)
{
    online();
    feed("<message from='bob@localhost/x' type='chat'><body>hi &amp; &#x263A;</body></message>", 0);
    KT_CHECK_STR(log_, "[stanza message hi & \xe2\x98\xba]");
    feed("<iq type='get' id='p&apos;1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", 3);
    KT_CHECK(strstr(out, "<iq type='result' id='p&apos;1' to='localhost'/>") != NULL);
    feed("<iq type='get' id='d1' from='bob@localhost/x'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", 0);
    KT_CHECK(strstr(out, "id='d1' to='bob@localhost/x'><query xmlns='http://jabber.org/protocol/disco#info'>") != NULL);
    KT_CHECK(strstr(out, "urn:xmpp:ping") != NULL);
    KT_CHECK_STR(log_, "[stanza message hi & \xe2\x98\xba]");
    /* an IQ request nobody handles is answered with an error */
    feed("<iq type='set' id='v1' from='bob@localhost/x'><query xmlns='jabber:iq:version'/></iq>", 0);
    KT_CHECK(strstr(out, "<iq type='error' id='v1' to='bob@localhost/x'><error type='cancel'>"
                         "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>") != NULL);
    /* late stream features (BOSH: Prosody sends the restarted stream's after
     * the bind result) are recorded, not an error */
    feed(FEAT_BIND, 0);
    KT_CHECK_STR(log_, "[stanza message hi & \xe2\x98\xba]");
    /* whitespace keepalive */
    feed("  \n ", 0);
    out_len = 0;
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", NULL, "a<b & 'c'"), KL_OK);
    drain();
    KT_CHECK_STR(out, "<message to='bob@localhost' type='chat'><body>a&lt;b &amp; 'c'</body></message>");
}

static void test_iq_roundtrip_and_timeout(void)
{
    uint16_t id1 = 0, id2 = 0;
    kl_event_t ev;
    online();
    KT_CHECK_EQ(kl_send_iq(&cl, NULL, "get", "<query xmlns='jabber:iq:roster'/>", 5000, &id1), KL_OK);
    KT_CHECK_EQ(kl_send_iq(&cl, "localhost", "get", "<query xmlns='jabber:iq:version'/>", 5000, &id2), KL_OK);
    drain();
    {
        char id[32], buf[128];
        iq_id_of(0, id, sizeof id);
        snprintf(buf, sizeof buf, "<iq type='get' id='%s'><query xmlns='jabber:iq:roster'/></iq>", id);
        KT_CHECK(strstr(out, buf) != NULL);
        snprintf(buf, sizeof buf, "<iq type='result' id='%s'/>", id);
        feed(buf, 0);
    }
    KT_CHECK_STR(log_, "[iq-result 1]");
    now_ms += 4999;
    pump();
    KT_CHECK_STR(log_, "[iq-result 1]");
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), 1);
    now_ms += 1;
    pump();
    KT_CHECK_STR(log_, "[iq-result 1][iq-timeout 2]");
    /* late answer to a timed-out request is just a stanza */
    {
        char id[32], buf[128];
        iq_id_of(1, id, sizeof id);
        snprintf(buf, sizeof buf, "<iq type='result' id='%s' from='localhost'/>", id);
        feed(buf, 0);
    }
    KT_CHECK_STR(log_, "[iq-result 1][iq-timeout 2][stanza iq]");
    /* bounded slots */
    {
        int i, st = KL_OK;
        for (i = 0; i <= KL_MAX_PENDING_IQ && st == KL_OK; i++)
            st = kl_send_iq(&cl, NULL, "get", "<x xmlns='y'/>", 0, NULL);
        KT_CHECK_EQ(st, KL_ERR_IQ_SLOTS);
        drain();
    }
    (void)ev;
}

static void test_large_stanza_streams(void)
{
    static char big[KL_RX_BUF_SIZE * 3 + 256];
    size_t i, n = KL_RX_BUF_SIZE * 3;
    online();
    strcpy(big, "<message from='bob@localhost/x'><body>");
    for (i = 0; i < n; i++)
        big[strlen("<message from='bob@localhost/x'><body>") + i] = (char)('a' + i % 26);
    strcpy(big + strlen("<message from='bob@localhost/x'><body>") + n, "</body></message>");
    feed(big, 1460);
    {
        char expect[64];
        snprintf(expect, sizeof expect, "[begin message][end %zu]", n);
        KT_CHECK_STR(log_, expect);
    }
    KT_CHECK_EQ(body_len, n);
    KT_CHECK(body_acc[0] == 'a' && body_acc[n - 1] == (char)('a' + (n - 1) % 26));
    /* and the stream goes on normally */
    feed("<message><body>after</body></message>", 0);
    KT_CHECK(strstr(log_, "[stanza message after]") != NULL);
}

static void test_close_during_tls(void)
{
    reset(KL_PIPELINING_SAFE);
    feed(HDR FEAT_TLS PROCEED, 0);
    KT_CHECK_EQ(kl_client_close(&cl), KL_OK);
    pump();
    KT_CHECK_STR(log_, "[starttls][closed 0]");
}

static void test_nothing_after_close(void)
{
    online();
    KT_CHECK_EQ(kl_client_close(&cl), KL_OK);
    feed("<iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
         "<iq type='set' id='v1' from='localhost'><query xmlns='jabber:iq:version'/></iq></stream:stream>", 0);
    KT_CHECK_STR(out, "</stream:stream>");
    KT_CHECK_STR(log_, "[closed 0]");
}

static void test_close(void)
{
    online();
    KT_CHECK_EQ(kl_client_close(&cl), KL_OK);
    drain();
    KT_CHECK_STR(out, "</stream:stream>");
    feed("</stream:stream>", 0);
    KT_CHECK_STR(log_, "[closed 0]");
    KT_CHECK_EQ(kl_send_message(&cl, "x@y", NULL, "z"), KL_ERR_NOT_ONLINE);
}

/* ---- failures ------------------------------------------------------------- */

static void test_no_starttls_never_sends_password(void)
{
    size_t k;
    const char *s = HDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                        "<mechanism>PLAIN</mechanism></mechanisms></stream:features>";
    for (k = 0; k <= strlen(s); k += 7) {
        reset(KL_PIPELINING_SAFE);
        feed_split(s, k);
        KT_CHECK_EQ(last_status, KL_ERR_NO_TLS);
        KT_CHECK(strstr(out, "<auth") == NULL && strstr(out, AUTH_B64) == NULL);
        reset(KL_PIPELINING_OFF);
        feed_split(s, k);
        KT_CHECK_EQ(last_status, KL_ERR_NO_TLS);
        KT_CHECK(strstr(out, "<auth") == NULL);
    }
}

static void test_bytes_after_proceed(void)
{
    reset(KL_PIPELINING_SAFE);
    feed(HDR FEAT_TLS PROCEED "\x16\x03\x01", 0);
    KT_CHECK_EQ(last_status, KL_ERR_TLS_PREREAD);
    KT_CHECK(strstr(log_, "[starttls]") == NULL);
}

static void test_starttls_failure(void)
{
    reset(KL_PIPELINING_SAFE);
    feed(HDR FEAT_TLS "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", 0);
    KT_CHECK_EQ(last_status, KL_ERR_STARTTLS_FAILED);
}

static void test_auth_failure(void)
{
    reset(KL_PIPELINING_SAFE);
    feed(HDR FEAT_TLS PROCEED, 0);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>"
                       "<text>bad</text></failure>", 0);
    KT_CHECK_STR(log_, "[starttls][error authentication failed not-authorized]");
}

static void test_unverified_tls_waits_for_features(void)
{
    reset(KL_PIPELINING_SAFE);
    feed(HDR FEAT_TLS PROCEED, 0);
    kl_engine_tls_done(&cl, 0);
    drain();
    KT_CHECK(strstr(out, "<auth") == NULL);
    feed(HDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
             "<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>", 0);
    KT_CHECK_EQ(last_status, KL_ERR_UNVERIFIED);
    KT_CHECK(strstr(out, "<auth") == NULL);
}

static void test_stream_error(void)
{
    reset(KL_PIPELINING_SAFE);
    feed(HDR "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
             "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>nope</text></stream:error></stream:stream>", 0);
    KT_CHECK_STR(log_, "[error stream error from peer host-unknown]");
    KT_CHECK(strstr(out, "</stream:stream>") != NULL);
}

static void hostile(const char *input, int expect)
{
    size_t k, len = strlen(input);
    for (k = 0; k <= len; k++) {
        reset(KL_PIPELINING_SAFE);
        feed_split(input, k);
        KT_CHECK_EQ(last_status, expect);
        KT_CHECK(strstr(out, "<auth") == NULL);
        KT_CHECK(strstr(out, "</stream:stream>") != NULL);
        if (last_status != expect) {
            fprintf(stderr, "  input split at %zu: %s\n", k, log_);
            break;
        }
    }
}

static void test_hostile_input(void)
{
    char deep[4096], longname[256];
    size_t i;
    hostile(HDR "<!-- hi -->", KL_ERR_XML_COMMENT);
    hostile("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><stream:stream>", KL_ERR_XML_DTD);
    hostile(HDR "<message><body>&xxe;</body></message>", KL_ERR_XML_ENTITY);
    hostile(HDR "<message><body>\xc3\x28</body></message>", KL_ERR_XML_UTF8);
    hostile(HDR "<?php evil ?>", KL_ERR_XML_PI);
    hostile(HDR "<a></b>", KL_ERR_XML_MISMATCH);
    hostile(HDR "<a x='1' x='2'/>", KL_ERR_XML_ATTR_DUP);
    hostile(HDR "<p:a/>", KL_ERR_XML_NAMESPACE);
    hostile("<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' version='1.0'>", KL_ERR_PROTOCOL);
    hostile("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
            KL_ERR_PROTOCOL); /* no version='1.0' */
    strcpy(longname, HDR "<");
    for (i = 0; i < KL_XML_MAX_NAME + 1; i++)
        strcat(longname, "n");
    strcat(longname, "/>");
    hostile(longname, KL_ERR_XML_NAME_TOO_LONG);
    strcpy(deep, HDR);
    for (i = 0; i < KL_XML_MAX_DEPTH; i++)
        strcat(deep, "<d>");
    hostile(deep, KL_ERR_XML_DEPTH);
    /* a start tag larger than the whole receive buffer */
    {
        static char huge[KL_RX_BUF_SIZE + 512];
        strcpy(huge, HDR "<message a='");
        for (i = strlen(huge); i < sizeof huge - 8; i++)
            huge[i] = 'x';
        huge[i] = 0;
        reset(KL_PIPELINING_SAFE);
        feed(huge, 1000);
        KT_CHECK(last_status == KL_ERR_RX_FULL || last_status == KL_ERR_XML_ATTR_TOO_LONG);
    }
    /* stanzas before authentication are refused */
    hostile(HDR "<message from='evil@x'><body>x</body></message>", KL_ERR_PROTOCOL);
    /* a SASL success that nobody asked for */
    hostile(HDR SUCCESS, KL_ERR_PROTOCOL);
    /* text at stream level */
    hostile(HDR "junk", KL_ERR_PROTOCOL);
}

/* ---- hardening ------------------------------------------------------------ */

/* The application closes while the bind result is on its way: nothing is
 * delivered, neither before online nor after close (a fuzzer found it). */
static void test_close_before_online(void)
{
    size_t k;
    const char *rest = BIND_RES "<message from='bob@localhost/x'><body>x</body></message>"
                                "<iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
                                "</stream:stream>";
    for (k = 0; k <= strlen(rest); k += 5) {
        reset(KL_PIPELINING_SAFE);
        feed(HDR FEAT_TLS PROCEED, 0);
        kl_engine_tls_done(&cl, 1);
        feed(HDR FEAT_SASL SUCCESS HDR FEAT_BIND, 0);
        out_len = 0;
        KT_CHECK_EQ(kl_client_close(&cl), KL_OK);
        feed_split(rest, k);
        KT_CHECK_STR(log_, "[starttls][closed 0]");
        KT_CHECK_STR(out, "</stream:stream>"); /* no presence, no pong */
        KT_CHECK(!kl_client_is_online(&cl));
    }
    /* closed during SASL: the success that follows is no error either */
    reset(KL_PIPELINING_SAFE);
    feed(HDR FEAT_TLS PROCEED, 0);
    kl_engine_tls_done(&cl, 1);
    KT_CHECK_EQ(kl_client_close(&cl), KL_OK);
    feed(HDR FEAT_SASL SUCCESS "</stream:stream>", 1);
    KT_CHECK_STR(log_, "[starttls][closed 0]");
}

/* Ids are random, and an answer counts only from whom the request went to
 * (RFC 6120 8.2.3, 10.1.4); anything else is a plain stanza. */
static void test_iq_ids_and_senders(void)
{
    char a[32], b[32], c[32], buf[512];
    uint16_t ha = 0, hb = 0, hc = 0;
    online();
    KT_CHECK_EQ(kl_send_iq(&cl, NULL, "get", "<query xmlns='jabber:iq:roster'/>", 0, &ha), KL_OK);
    KT_CHECK_EQ(kl_send_iq(&cl, "localhost", "get", "<query xmlns='jabber:iq:version'/>", 0, &hb), KL_OK);
    KT_CHECK_EQ(kl_send_iq(&cl, "bob@localhost/x", "get", "<query xmlns='jabber:iq:version'/>", 0, &hc), KL_OK);
    drain();
    iq_id_of(0, a, sizeof a);
    iq_id_of(1, b, sizeof b);
    iq_id_of(2, c, sizeof c);
    KT_CHECK_EQ(strlen(a), KL_IQ_ID_LEN);
    KT_CHECK(strcmp(a, b) != 0 && strcmp(b, c) != 0 && strncmp(a, "kl", 2) != 0);
    KT_CHECK(ha && hb && hc && ha != hb && hb != hc);
    /* spoofed: right id, wrong sender */
    snprintf(buf, sizeof buf, "<iq type='result' id='%s' from='mallory@evil.example/x'/>", a);
    feed(buf, 0);
    snprintf(buf, sizeof buf, "<iq type='result' id='%s' from='alice@localhost/dev'/>", a); /* not the bare JID */
    feed(buf, 0);
    snprintf(buf, sizeof buf, "<iq type='error' id='%s' from='bob@localhost/y'/>", c);   /* other resource */
    feed(buf, 0);
    snprintf(buf, sizeof buf, "<iq type='result' id='%s' from='mallory@evil.example'/>", b);
    feed(buf, 0);
    /* a guessed sequential id */
    feed("<iq type='result' id='kl1'/>", 0);
    KT_CHECK_STR(log_, "[stanza iq][stanza iq][stanza iq][stanza iq][stanza iq]");
    KT_CHECK_EQ(kl_client_stats(&cl)->iq_unmatched, 5);
    /* the real answers: no from or the account's bare JID for a request
     * without to (ASCII case does not matter), the addressee otherwise */
    log_len = 0;
    log_[0] = 0;
    snprintf(buf, sizeof buf, "<iq type='result' id='%s' from='ALICE@LocalHost'/>", a);
    feed(buf, 0);
    snprintf(buf, sizeof buf, "<iq type='result' id='%s' from='localhost'/>", b);
    feed(buf, 0);
    snprintf(buf, sizeof buf, "<iq type='error' id='%s' from='bob@localhost/x'/>", c);
    feed(buf, 0);
    snprintf(buf, sizeof buf, "[iq-result %u][iq-result %u][iq-result %u]", ha, hb, hc);
    KT_CHECK_STR(log_, buf);
    /* each once */
    snprintf(buf, sizeof buf, "<iq type='result' id='%s' from='localhost'/>", b);
    feed(buf, 0);
    KT_CHECK(strstr(log_, "[stanza iq]") != NULL);
    /* no from at all answers a request to the server for the account */
    KT_CHECK_EQ(kl_send_iq(&cl, NULL, "get", "<query xmlns='jabber:iq:roster'/>", 0, &ha), KL_OK);
    out_len = 0;
    drain();
    KT_CHECK_EQ(kl_send_iq(&cl, "alice@localhost", "get", "<vCard xmlns='vcard-temp'/>", 0, &hb), KL_OK);
    drain();
    iq_id_of(0, a, sizeof a);
    iq_id_of(1, b, sizeof b);
    log_len = 0;
    log_[0] = 0;
    snprintf(buf, sizeof buf, "<iq type='result' id='%s'/><iq type='result' id='%s'/>", a, b);
    feed(buf, 0);
    snprintf(buf, sizeof buf, "[iq-result %u][iq-result %u]", ha, hb);
    KT_CHECK_STR(log_, buf);
    /* a request to a JID longer than a pending slot keeps is refused */
    {
        char longjid[KL_JID_MAX + 8];
        memset(longjid, 'x', sizeof longjid - 1);
        longjid[sizeof longjid - 1] = 0;
        longjid[3] = '@';
        KT_CHECK_EQ(kl_send_iq(&cl, longjid, "get", NULL, 0, NULL), KL_ERR_JID_TOO_LONG);
    }
}

/* A roster request sent: its handle in *h, its IQ id in id. */
static void roster_get(uint16_t *h, char *id, size_t cap)
{
    KT_CHECK_EQ(kl_send_roster_get(&cl, h), KL_OK);
    drain();
    iq_id_of(0, id, cap);
}

/* A spoofed roster result never reaches the cached roster version. */
static void test_spoofed_roster_not_cached(void)
{
    if (!KL_ENABLE_CACHE)
        return; /* the minimal profile keeps no hints */
    static kl_cache_t k;
    kl_client_config_t cfg;
    char id[32], buf[256];
    uint16_t h = 0;
    memset(&cfg, 0, sizeof cfg);
    memset(&k, 0, sizeof k);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.random = kt_random;
    cfg.cache = &k;
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    drain();
    feed(HDR FEAT_TLS PROCEED, 0);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL SUCCESS HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
         "<ver xmlns='urn:xmpp:features:rosterver'/></stream:features>" BIND_RES, 0);
    KT_CHECK(kl_client_is_online(&cl));
    out_len = 0;
    roster_get(&h, id, sizeof id);
    snprintf(buf, sizeof buf, "<iq type='result' id='%s' from='mallory@evil.example/x'>"
                              "<query xmlns='jabber:iq:roster' ver='evil'/></iq>", id);
    feed(buf, 0);
    KT_CHECK_STR(k.roster_ver, "");
    snprintf(buf, sizeof buf, "<iq type='result' id='%s'><query xmlns='jabber:iq:roster' ver='v7'/></iq>", id);
    feed(buf, 0);
    KT_CHECK_STR(k.roster_ver, "v7");
    snprintf(buf, sizeof buf, "[starttls][online alice@localhost/dev][stanza iq][iq-result %u]", h);
    KT_CHECK_STR(log_, buf);
    /* an empty result: the roster is unchanged since v7, and so is the version */
    out_len = log_len = 0;
    roster_get(&h, id, sizeof id);
    KT_CHECK(strstr(out, "ver='v7'") != NULL);
    snprintf(buf, sizeof buf, "<iq type='result' id='%s'/>", id);
    feed(buf, 0);
    KT_CHECK_STR(k.roster_ver, "v7");
    snprintf(buf, sizeof buf, "[iq-result %u]", h);
    KT_CHECK_STR(log_, buf);
    /* an error answer's version (were it one) is not taken */
    out_len = log_len = 0;
    roster_get(&h, id, sizeof id);
    snprintf(buf, sizeof buf, "<iq type='error' id='%s'><query xmlns='jabber:iq:roster' ver='v8'/></iq>", id);
    feed(buf, 0);
    KT_CHECK_STR(k.roster_ver, "v7");
}

/* The bound JID must be the account's, with a resource (RFC 7622). */
static void bind_with(const char *jid_xml, int expect)
{
    char res[512];
    snprintf(res, sizeof res, "<iq type='result' id='kl-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                              "<jid>%s</jid></bind></iq>", jid_xml);
    reset(KL_PIPELINING_SAFE);
    feed(HDR FEAT_TLS PROCEED, 0);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL SUCCESS HDR FEAT_BIND, 0);
    feed(res, 0);
    KT_CHECK_EQ(last_status, expect);
    KT_CHECK_EQ(kl_client_is_online(&cl), expect == 0);
    if (expect)
        KT_CHECK_STR(kl_client_jid(&cl), "");
}

static void test_bound_jid_checked(void)
{
    bind_with("alice@localhost/dev", 0);
    bind_with("Alice@LOCALHOST/other resource", 0);
    bind_with("mallory@localhost/dev", KL_ERR_BIND_JID);
    bind_with("alice@evil.example/dev", KL_ERR_BIND_JID);
    bind_with("alice@localhost.evil/dev", KL_ERR_BIND_JID);
    bind_with("alice@localhost", KL_ERR_BIND_JID);
    bind_with("alice@localhost/", KL_ERR_BIND_JID);
    bind_with("alice@localhost/a&#9;b", KL_ERR_BIND_JID);
    bind_with("localhost/dev", KL_ERR_BIND_JID);
}

/* The engine never takes a channel for verified: the port says it is. */
static void test_credentials_need_verified_channel(void)
{
    kl_client_config_t cfg;
    int i;
    const kl_channel_t ch[2] = {KL_CHANNEL_TLS, KL_CHANNEL_CLEAR};
    const int expect[2] = {KL_ERR_UNVERIFIED, KL_ERR_PLAINTEXT};
    for (i = 0; i < 4; i++) {
        memset(&cfg, 0, sizeof cfg);
        cfg.jid = "alice@localhost/dev";
        cfg.password = "secret";
        cfg.pipelining = KL_PIPELINING_SAFE;
        cfg.random = kt_random;
        cfg.allow_plaintext = (uint8_t)(i >= 2);
        out_len = log_len = 0;
        out[0] = log_[0] = 0;
        last_status = 0;
        KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
        KT_CHECK_EQ(kl_client_connect(&cl, now_ms, ch[i & 1]), KL_OK);
        drain();
        /* nothing pipelined on trust; what the application allowed rides with the header */
        KT_CHECK((strstr(out, "<auth") == NULL) == (i < 2));
        feed(HDR FEAT_SASL, 0);
        if (i < 2) {
            KT_CHECK_EQ(last_status, expect[i]);
            KT_CHECK(strstr(out, "<auth") == NULL && strstr(out, AUTH_B64) == NULL);
        } else {
            KT_CHECK(strstr(out, AUTH_B64) != NULL); /* the application allowed it */
        }
    }
    /* verified direct TLS: PLAIN rides with the header */
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.random = kt_random;
    out_len = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    drain();
    KT_CHECK(strstr(out, AUTH_B64) != NULL);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, (kl_channel_t)7), KL_ERR_ARG);
    /* no entropy, no client */
    cfg.random = NULL;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_ERR_NO_ENTROPY);
}

/* XMPP 1.x only (RFC 6120 4.7.5: the answer's version is not above ours). */
static void test_stream_version(void)
{
    hostile("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' version='2.0'>", KL_ERR_PROTOCOL);
    hostile("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' version='1.x'>", KL_ERR_PROTOCOL);
}

/* ---- no stanza from the network ends the session --------------------------- */

#define MSG_A "<message from='bob@localhost/x'><body>a</body></message>"
#define MSG_B "<message from='bob@localhost/x'><body>b</body></message>"

/* One stanza per receive bound, after online, between two messages, split
 * at every byte: both messages arrive, the stanza is dropped and counted. */
static void between_messages_(const char *bad, int status, int every_split, const char *begin)
{
    static char in[KL_RX_BUF_SIZE * 4];
    char expect[128];
    size_t k, len;
    snprintf(in, sizeof in, "%s%s%s", MSG_A, bad, MSG_B);
    len = strlen(in);
    snprintf(expect, sizeof expect, "[stanza message a]%s[dropped %d][stanza message b]", begin, status);
    for (k = strlen(MSG_A); k <= len; k += every_split ? 1 : 97) {
        online();
        feed_split(in, k);
        KT_CHECK_STR(log_, expect);
        KT_CHECK(kl_client_is_online(&cl));
        KT_CHECK_EQ(kl_client_stats(&cl)->stanzas_dropped, 1);
        if (strcmp(log_, expect) != 0) {
            fprintf(stderr, "  split at %zu of %.60s...\n", k, bad);
            break;
        }
    }
    online(); /* and byte by byte */
    feed(in, 1);
    KT_CHECK_STR(log_, expect);
}

/* Four attributes of 900 bytes each: within every attribute bound, but one
 * start tag larger than the receive buffer. */
static void wide_attrs(char *s, size_t cap)
{
    size_t i, n;
    for (i = 0; i < 4; i++) {
        n = strlen(s);
        KT_CHECK(n + 1000 < cap);
        snprintf(s + n, cap - n, " b%zu='", i);
        n = strlen(s);
        memset(s + n, 'w', 900);
        strcpy(s + n + 900, "'");
    }
}

static void between_messages(const char *bad, int status, int every_split)
{
    between_messages_(bad, status, every_split, "");
}

static void test_limits_after_online_drop_the_stanza(void)
{
    static char deep[1024], longname[256], manyattr[1024], longattr[KL_XML_MAX_ATTR + 256], ns[2048],
        bigtag[KL_RX_BUF_SIZE + 1024];
    size_t i;
    /* the issue's example: 15 nested children in a small message (depth 17) */
    strcpy(deep, "<message from='bob@localhost/x'>");
    for (i = 0; i < 15; i++)
        strcat(deep, "<a>");
    for (i = 0; i < 15; i++)
        strcat(deep, "</a>");
    strcat(deep, "</message>");
    KT_CHECK(strlen(deep) < 200);
    between_messages(deep, KL_ERR_XML_DEPTH, 1);
    strcpy(longname, "<message><");
    for (i = 0; i < KL_XML_MAX_NAME + 1; i++)
        strcat(longname, "n");
    strcat(longname, "/></message>");
    between_messages(longname, KL_ERR_XML_NAME_TOO_LONG, 1);
    strcpy(manyattr, "<message><x");
    for (i = 0; i < KL_XML_MAX_ATTRS + 1; i++)
        sprintf(manyattr + strlen(manyattr), " a%zu='%zu'", i, i);
    strcat(manyattr, "/></message>");
    between_messages(manyattr, KL_ERR_XML_ATTRS, 0);
    /* the stanza's own start tag breaks the bound */
    strcpy(manyattr, "<message");
    for (i = 0; i < KL_XML_MAX_ATTRS + 1; i++)
        sprintf(manyattr + strlen(manyattr), " a%zu='%zu'", i, i);
    strcat(manyattr, "><body>x</body></message>");
    between_messages(manyattr, KL_ERR_XML_ATTRS, 0);
    strcpy(longattr, "<message><x v='");
    memset(longattr + strlen(longattr), 'v', KL_XML_MAX_ATTR + 1);
    strcpy(longattr + strlen("<message><x v='") + KL_XML_MAX_ATTR + 1, "'/></message>");
    between_messages(longattr, KL_ERR_XML_ATTR_TOO_LONG, 0);
    /* namespace declarations fill the element stack before the depth bound */
    strcpy(ns, "<message>");
    for (i = 0; i < 10; i++)
        sprintf(ns + strlen(ns), "<p%zu:e xmlns:p%zu='urn:%060d'>", i, i, 0);
    for (i = 10; i-- > 0;)
        sprintf(ns + strlen(ns), "</p%zu:e>", i);
    strcat(ns, "</message>");
    between_messages(ns, KL_ERR_XML_STACK, 0);
    /* a start tag larger than the whole receive buffer: a child's ... */
    strcpy(bigtag, "<message><x");
    wide_attrs(bigtag, sizeof bigtag);
    strcat(bigtag, "/></message>");
    /* the stanza is bigger than the buffer: it streams, and DROPPED ends it */
    between_messages_(bigtag, KL_ERR_RX_FULL, 0, "[begin message]");
    /* ... and the stanza's own */
    strcpy(bigtag, "<message");
    wide_attrs(bigtag, sizeof bigtag);
    strcat(bigtag, "><body>x</body></message>");
    between_messages(bigtag, KL_ERR_RX_FULL, 0);
}

/* A dropped IQ request is answered policy-violation (RFC 6120 8.3.3.12). */
static void test_dropped_iq_request_answered(void)
{
    static char in[1024];
    size_t i;
    strcpy(in, "<iq type='get' id='q&apos;1' from='bob@localhost/x'><q xmlns='urn:x'>");
    for (i = 0; i < 20; i++)
        strcat(in, "<a>");
    for (i = 0; i < 20; i++)
        strcat(in, "</a>");
    strcat(in, "</q></iq>");
    between_messages(in, KL_ERR_XML_DEPTH, 0);
    KT_CHECK(strstr(out, "<iq type='error' id='q&apos;1' to='bob@localhost/x'><error type='modify'>"
                         "<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>") != NULL);
    /* before online the same input is a broken stream */
    hostile(HDR "<iq type='get' id='q1'><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a></a></a></a></a></a>"
                "</a></a></a></a></a></a></a></a></a></a></a></iq>", KL_ERR_XML_DEPTH);
}

/* head, then twice the receive buffer of text: a stanza that streams
 * (big holds KL_RX_BUF_SIZE * 3 bytes; the caller appends the rest) */
static void padded(char *big, const char *head)
{
    size_t n = strlen(head);
    memcpy(big, head, n);
    memset(big + n, 'z', KL_RX_BUF_SIZE * 2);
    big[n + KL_RX_BUF_SIZE * 2] = 0;
}

/* A streamed stanza that breaks a bound late: BEGIN, then DROPPED for END. */
static void test_streamed_stanza_dropped_late(void)
{
    static char big[KL_RX_BUF_SIZE * 3];
    size_t i;
    online();
    padded(big, "<message from='bob@localhost/x'><body>");
    strcat(big, "</body>");
    for (i = 0; i < 20; i++)
        strcat(big, "<a>");
    for (i = 0; i < 20; i++)
        strcat(big, "</a>");
    strcat(big, "</message>" MSG_B);
    feed(big, 700);
    KT_CHECK_STR(log_, "[begin message][dropped -22][stanza message b]");
    KT_CHECK(kl_client_is_online(&cl));
}

/* A request too big to hold, with nobody taking requests: answered at
 * once, never delivered in pieces. */
static void test_large_iq_request_answered(void)
{
    static char big[KL_RX_BUF_SIZE * 3];
    online();
    padded(big, "<iq type='set' id='big1' from='bob@localhost/x'><q xmlns='urn:x'>");
    strcat(big, "</q></iq>" MSG_B);
    feed(big, 1460);
    KT_CHECK_STR(log_, "[stanza message b]");
    KT_CHECK(strstr(out, "<iq type='error' id='big1' to='bob@localhost/x'><error type='cancel'>"
                         "<service-unavailable") != NULL);
    KT_CHECK_EQ(kl_client_stats(&cl)->stanzas_dropped, 0);
}

/* After our close, oversized or limit-breaking stanzas pass in silence. */
static void test_limits_after_close_are_silent(void)
{
    static char big[KL_RX_BUF_SIZE * 3];
    online();
    padded(big, "<message from='bob@localhost/x'><body>");
    strcat(big, "</body></message><message><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>"
                "</a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></message></stream:stream>");
    KT_CHECK_EQ(kl_client_close(&cl), KL_OK);
    feed(big, 1000);
    KT_CHECK_STR(log_, "[closed 0]");
    /* a streamed stanza under way when the application closes */
    online();
    big[strlen(big) - strlen("</stream:stream>")] = 0;
    {
        static char head[4001];
        memcpy(head, big, 4000);
        feed(head, 0); /* BEGIN and part of it */
    }
    KT_CHECK(strstr(log_, "[begin message]") != NULL);
    KT_CHECK_EQ(kl_client_close(&cl), KL_OK);
    log_len = 0;
    log_[0] = 0;
    feed(big + 4000, 500);
    feed("</stream:stream>", 0);
    KT_CHECK_STR(log_, "[closed 0]");
}

static void test_negotiation_timeout(void)
{
    reset(KL_PIPELINING_SAFE);
    feed(HDR, 0);
    now_ms += KL_NEGOTIATION_TIMEOUT_MS;
    pump();
    KT_CHECK_EQ(last_status, KL_ERR_TIMEOUT);
}

/* ---- keepalive and dead-peer detection (also in the minimal profile) ---- */

#define PING "<iq type='get' id='kl-ping'><ping xmlns='urn:xmpp:ping'/></iq>"

static void online_with(uint32_t ka_ms, uint32_t ka_timeout_ms, const char *bind_features)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.random = kt_random;
    cfg.keepalive_ms = ka_ms;
    cfg.keepalive_timeout_ms = ka_timeout_ms;
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    last_status = 0;
    now_ms = 1000;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    feed(HDR FEAT_TLS PROCEED, 0);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL SUCCESS HDR, 0);
    feed(bind_features, 0);
    feed(BIND_RES, 0);
    KT_CHECK(kl_client_is_online(&cl));
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
}

/* Nothing received, or nothing sent, for the interval: a ping to the
 * server; its answer (or anything else) ends the probe; silence for the
 * timeout after it is a dead peer. Sending alone does not postpone it (a
 * device that reports often into a dead link must still find out), nor
 * does receiving alone (the server's idle timer counts what we send). */
static void test_keepalive_ping(void)
{
    uint32_t t_a;
    online_with(0, 0, FEAT_BIND);
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), KL_KEEPALIVE_MS);
    now_ms += KL_KEEPALIVE_MS - 1;
    pump();
    KT_CHECK_STR(out, "");
    now_ms += 1;
    pump();
    KT_CHECK_STR(out, PING);
    KT_CHECK_EQ(kl_client_stats(&cl)->keepalives_sent, 1);
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), KL_KEEPALIVE_TIMEOUT_MS);
    /* the answer is the engine's: the application sees nothing */
    now_ms += 500;
    pump();
    feed("<iq type='result' id='kl-ping' from='alice@localhost'/>", 0);
    KT_CHECK_STR(log_, "");
    KT_CHECK_EQ(kl_client_stats(&cl)->iq_unmatched, 0);
    /* next: the interval after the ping went out (the older of the two) */
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), KL_KEEPALIVE_MS - 500);
    t_a = now_ms;
    now_ms += KL_KEEPALIVE_TIMEOUT_MS + 1000;
    pump();
    KT_CHECK_EQ(last_status, 0);
    KT_CHECK_EQ(count_of(out, "kl-ping"), 1);
    /* a message sent does not postpone the probe past the interval after
     * the last byte received */
    now_ms = t_a + KL_KEEPALIVE_MS - 600;
    pump();
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", NULL, "hi"), KL_OK);
    now_ms = t_a + KL_KEEPALIVE_MS - 1;
    pump();
    KT_CHECK_EQ(count_of(out, "kl-ping"), 1);
    now_ms += 1;
    pump();
    KT_CHECK_EQ(count_of(out, "kl-ping"), 2);
    feed("<iq type='result' id='kl-ping' from='alice@localhost'/>", 0);
    /* nor does a message received: the send side stays quiet */
    t_a = now_ms;
    now_ms += 1000;
    pump();
    feed("<message from='bob@localhost/x'><body>x</body></message>", 0);
    now_ms = t_a + KL_KEEPALIVE_MS - 1;
    pump();
    KT_CHECK_EQ(count_of(out, "kl-ping"), 2);
    now_ms += 1;
    pump();
    KT_CHECK_EQ(count_of(out, "kl-ping"), 3);
}

static void test_dead_peer(void)
{
    uint32_t t0;
    online_with(20000, 5000, FEAT_BIND);
    t0 = now_ms;
    now_ms = t0 + 20000;
    pump();
    KT_CHECK_STR(out, PING);
    out_len = 0;
    out[0] = 0;
    now_ms = t0 + 20000 + 4999;
    pump();
    KT_CHECK_EQ(last_status, 0);
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), 1);
    now_ms += 1;
    pump();
    KT_CHECK_EQ(last_status, KL_ERR_DEAD_PEER);
    KT_CHECK_STR(log_, "[error keepalive unanswered: link dead ]");
    /* nothing written to a dead link (and no clean close of a session
     * that may be resumed) */
    KT_CHECK_STR(out, "");
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), UINT32_MAX);
    /* output the port never drains: the probe is out, or stuck, and the
     * timeout runs all the same */
    online_with(20000, 5000, FEAT_BIND);
    {
        kl_xw_t w;
        size_t i, n;
        KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
        kl_xw_start(&w, "message");
        n = w.cap - 40;
        kl_xw_start(&w, "body");
        for (i = 0; i < n; i++)
            kl_xw_text(&w, (const uint8_t *)"z", 1);
        kl_xw_end(&w, "body");
        kl_xw_end(&w, "message");
        KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_OK);
        for (i = 0; i < 6; i++) /* pongs fill the reserve; the port never drains */
            KT_CHECK_EQ(kl_engine_input(&cl, (const uint8_t *)"<iq type='get' id='aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                                                "aaaaaaaaaaaaaaaa' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", 124), 124);
        now_ms += 20000;
        KT_CHECK_EQ(kl_engine_poll(&cl, now_ms, &(kl_event_t){0}), 0);
        now_ms += 5000;
        {
            kl_event_t ev;
            KT_CHECK_EQ(kl_engine_poll(&cl, now_ms, &ev), 1);
            KT_CHECK_EQ(ev.type, KL_EV_ERROR);
            KT_CHECK_EQ(ev.status, KL_ERR_DEAD_PEER);
        }
    }
}

/* XEP-0478: a server that closes idle streams after idle-seconds gets
 * keepalives at half of that, when that is sooner than configured. */
static void test_keepalive_idle_seconds(void)
{
    online_with(0, 0, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                      "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes>"
                      "<idle-seconds>60</idle-seconds></limits></stream:features>");
    if (!KL_ENABLE_STREAM_LIMITS) {
        /* compiled out (the minimal profile): cfg.keepalive_ms rules */
        KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), KL_KEEPALIVE_MS);
        return;
    }
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), 30000);
    now_ms += 30000;
    pump();
    KT_CHECK_STR(out, PING);
    /* a longer limit than configured changes nothing; nor does a malformed one */
    online_with(0, 0, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                      "<limits xmlns='urn:xmpp:stream-limits:0'><idle-seconds>840</idle-seconds></limits>"
                      "</stream:features>");
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), KL_KEEPALIVE_MS);
    online_with(0, 0, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                      "<limits xmlns='urn:xmpp:stream-limits:0'><idle-seconds>6x</idle-seconds></limits>"
                      "</stream:features>");
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), KL_KEEPALIVE_MS);
    online_with(0, 0, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                      "<limits xmlns='urn:xmpp:stream-limits:0'><idle-seconds><![CDATA[60]]></idle-seconds></limits>"
                      "</stream:features>");
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), KL_KEEPALIVE_MS);
    online_with(0, 0, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                      "<limits xmlns='urn:other'><idle-seconds>60</idle-seconds></limits></stream:features>");
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), KL_KEEPALIVE_MS);
    online_with(0, 0, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                      "<limits xmlns='urn:xmpp:stream-limits:0'><idle-seconds>0</idle-seconds></limits>"
                      "</stream:features>");
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), KL_KEEPALIVE_MS);
}

static void test_keepalive_off_and_configured(void)
{
    online_with(KL_KEEPALIVE_OFF, 0, FEAT_BIND);
    KT_CHECK(kl_engine_next_timeout(&cl, now_ms) >= 0x7fffffffu - 1);
    now_ms += 10u * 3600u * 1000u;
    pump();
    KT_CHECK_STR(out, "");
    online_with(1000, 300, FEAT_BIND);
    now_ms += 1000;
    pump();
    KT_CHECK_STR(out, PING);
    now_ms += 300;
    pump();
    KT_CHECK_EQ(last_status, KL_ERR_DEAD_PEER);
}

/* The server's disco#info, asked for and kept in the hints with the caps
 * ver it stands for; a roster result's version likewise. Only results
 * count, and only answers to what we asked. */
static void online_cached(kl_cache_t *k, const char *bind_features)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.random = kt_random;
    cfg.cache = k;
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    last_status = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    feed(HDR FEAT_SASL SUCCESS HDR, 0);
    feed(bind_features, 0);
    feed(BIND_RES, 0);
    KT_CHECK(kl_client_is_online(&cl));
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
}

#define FEAT_BIND_CAPS(ver) "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" \
    "<ver xmlns='urn:xmpp:features:rosterver'/><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' " \
    "node='n' ver='" ver "'/></stream:features>"

static void test_server_disco_cached(void)
{
    static kl_cache_t k;
    char id[32], buf[1024];
    uint16_t h = 0, f = 0;
    now_ms = 1000;
    memset(&k, 0, sizeof k);
    online_cached(NULL, FEAT_BIND);
    KT_CHECK_EQ(kl_server_features(&cl, &f), 0); /* no hints */
    /* no hints: the answer is delivered, nothing kept */
    KT_CHECK_EQ(kl_send_server_disco(&cl, &h), KL_OK);
    drain();
    iq_id_of(0, id, sizeof id);
    snprintf(buf, sizeof buf, "<iq to='localhost' type='get' id='%s'><query xmlns='http://jabber.org/protocol/disco#info'/>"
                              "</iq>", id);
    KT_CHECK_STR(out, buf);
    snprintf(buf, sizeof buf, "<iq type='result' id='%s' from='localhost'><query xmlns='http://jabber.org/protocol/"
                              "disco#info'><feature var='urn:xmpp:ping'/></query></iq>", id);
    feed(buf, 0);
    snprintf(buf, sizeof buf, "[iq-result %u]", h);
    KT_CHECK_STR(log_, buf);
    KT_CHECK_EQ(kl_server_features(&cl, &f), 0);
    /* ... and a roster result likewise */
    out_len = log_len = 0;
    KT_CHECK_EQ(kl_send_roster_get(&cl, NULL), KL_OK);
    drain();
    KT_CHECK(strstr(out, "<query xmlns='jabber:iq:roster'/>") != NULL);
    iq_id_of(0, id, sizeof id);
    snprintf(buf, sizeof buf, "<iq type='result' id='%s'><query xmlns='jabber:iq:roster' ver='v1'/></iq>", id);
    feed(buf, 0);
    KT_CHECK_STR(log_, "[iq-result 2]");

    kl_cache_reset(&k, "localhost");
    if (!KL_ENABLE_CACHE)
        return;
    online_cached(&k, FEAT_BIND_CAPS("V1"));
    KT_CHECK_STR(k.caps_ver, "V1");
    KT_CHECK_EQ(kl_server_features(&cl, &f), 0); /* not asked yet */
    KT_CHECK_EQ(kl_send_server_disco(&cl, NULL), KL_OK);
    drain();
    iq_id_of(0, id, sizeof id);
    /* an error answer keeps nothing */
    snprintf(buf, sizeof buf, "<iq type='error' id='%s' from='localhost'/>", id);
    feed(buf, 0);
    KT_CHECK_EQ(kl_server_features(&cl, &f), 0);
    out_len = 0;
    KT_CHECK_EQ(kl_send_server_disco(&cl, &h), KL_OK);
    drain();
    iq_id_of(0, id, sizeof id);
    log_len = 0;
    snprintf(buf, sizeof buf, "<iq type='result' id='%s' from='localhost'><query xmlns='http://jabber.org/protocol/"
                              "disco#info'><identity category='server' type='im'/><feature var='urn:xmpp:carbons:2'/>"
                              "<feature var='urn:xmpp:ping'/><feature var='urn:xmpp:mam:2'><feature var='jabber:iq:"
                              "version'/></feature><feature/><x var='urn:xmpp:blocking'/><feature var='urn:other'/>"
                              "<feature var='jabber:iq:version'/></query></iq>", id);
    feed(buf, 0);
    snprintf(buf, sizeof buf, "[iq-result %u]", h);
    KT_CHECK_STR(log_, buf);
    f = 0;
    KT_CHECK_EQ(kl_server_features(&cl, &f), 1);
    KT_CHECK_EQ(f, KL_SERVER_CARBONS | KL_SERVER_PING | KL_SERVER_MAM | KL_SERVER_VERSION);
    KT_CHECK_EQ(kl_server_features(&cl, NULL), 1);
    KT_CHECK_STR(k.disco_ver, "V1");
    /* a request that timed out: its late answer is a plain stanza */
    out_len = log_len = 0;
    KT_CHECK_EQ(kl_send_server_disco(&cl, &h), KL_OK);
    drain();
    iq_id_of(0, id, sizeof id);
    now_ms += KL_IQ_TIMEOUT_MS;
    pump();
    snprintf(buf, sizeof buf, "<iq type='result' id='%s' from='localhost'><query xmlns='http://jabber.org/protocol/"
                              "disco#info'/></iq>", id);
    feed(buf, 0);
    snprintf(buf, sizeof buf, "[iq-timeout %u][stanza iq]", h);
    KT_CHECK_STR(log_, buf);
    KT_CHECK_EQ(kl_server_features(&cl, &f), 1);
    KT_CHECK_EQ(f, KL_SERVER_CARBONS | KL_SERVER_PING | KL_SERVER_MAM | KL_SERVER_VERSION);
    /* the next login announces another ver: what we know is stale */
    online_cached(&k, FEAT_BIND_CAPS("V2"));
    KT_CHECK_EQ(kl_server_features(&cl, &f), 0);
    /* roster results: empty (unchanged), another payload, no version */
    {
        static const char *const bodies[] = {"", "<x xmlns='jabber:iq:roster' ver='no'/>",
                                              "<query xmlns='urn:other' ver='no'/>", "<query xmlns='jabber:iq:roster'/>",
                                              "<query xmlns='jabber:iq:roster' ver='v2'/>"};
        size_t i;
        strcpy(k.roster_ver, "v1");
        kl_cache_seal(&k);
        for (i = 0; i < 5; i++) {
            out_len = 0;
            KT_CHECK_EQ(kl_send_roster_get(&cl, NULL), KL_OK);
            drain();
            KT_CHECK(strstr(out, "<query xmlns='jabber:iq:roster' ver='v1'/>") != NULL);
            iq_id_of(0, id, sizeof id);
            snprintf(buf, sizeof buf, "<iq type='result' id='%s'>%s</iq>", id, bodies[i]);
            feed(buf, 0);
            KT_CHECK_STR(k.roster_ver, i < 4 ? "v1" : "v2");
        }
    }
}

/* The account's JID as configured: the bare part in any case, a resource
 * with '@' or '/' in it, or none (the server picks one). */
static void login_as(const char *jid, const char *bound)
{
    kl_client_config_t cfg;
    char res[512];
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = jid;
    cfg.password = "secret";
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.random = kt_random;
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    last_status = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    feed(HDR FEAT_SASL SUCCESS HDR FEAT_BIND, 0);
    snprintf(res, sizeof res, "<iq type='result' id='kl-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                              "<jid>%s</jid></bind></iq>", bound);
    feed(res, 0);
}

static void test_jid_forms(void)
{
    kl_client_config_t cfg;
    static char longjid[70000];
    login_as("Alice@LocalHost/dev", "alice@localhost/dev");
    KT_CHECK(kl_client_is_online(&cl));
    KT_CHECK_STR(kl_client_domain(&cl), "LocalHost");
    login_as("alice@localhost/a@b/c", "alice@localhost/a@b/c");
    KT_CHECK(strstr(out, "<resource>a@b/c</resource>") != NULL);
    KT_CHECK_STR(kl_client_domain(&cl), "localhost");
    KT_CHECK(kl_client_is_online(&cl));
    /* no resource: the bind request names none, the server's is taken */
    login_as("alice@localhost", "alice@localhost/srv-1");
    KT_CHECK(strstr(out, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>") != NULL);
    KT_CHECK(strstr(out, "<resource>") == NULL);
    KT_CHECK_STR(kl_client_jid(&cl), "alice@localhost/srv-1");
    /* an empty domain, an over-long domain or JID */
    memset(&cfg, 0, sizeof cfg);
    cfg.random = kt_random;
    cfg.jid = "alice@/dev";
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_ERR_ARG);
    memset(longjid, 'x', sizeof longjid - 1);
    longjid[5] = '@';
    longjid[5 + KL_JID_MAX + 1] = '/';
    cfg.jid = longjid;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_ERR_JID_TOO_LONG);
    longjid[5 + KL_JID_MAX + 1] = 'x';
    longjid[20] = '/'; /* a short domain, a resource of 69979 bytes */
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_ERR_JID_TOO_LONG);
}

/* allow_plaintext on a STARTTLS channel: a server without STARTTLS gets
 * the login in the clear (the application asked for that); one that
 * offered STARTTLS and then sends features without it does not. */
static void test_plaintext_allowed(void)
{
    kl_client_config_t cfg;
    int i;
    for (i = 0; i < 2; i++) {
        memset(&cfg, 0, sizeof cfg);
        cfg.jid = "alice@localhost/dev";
        cfg.password = "secret";
        cfg.pipelining = i ? KL_PIPELINING_SAFE : KL_PIPELINING_OFF;
        cfg.random = kt_random;
        cfg.allow_plaintext = 1;
        out_len = log_len = 0;
        out[0] = log_[0] = 0;
        last_status = 0;
        KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
        KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
        drain();
        KT_CHECK(strstr(out, "<starttls") == NULL);
        feed(HDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
                 "</mechanisms></stream:features>", 0);
        KT_CHECK(strstr(out, "mechanism='PLAIN'>" AUTH_B64 "</auth>") != NULL);
        KT_CHECK_EQ(last_status, 0);
    }
    out_len = 0;
    out[0] = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    feed(HDR FEAT_TLS, 0);
    KT_CHECK(strstr(out, "<starttls") != NULL);
    feed("<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
         "</mechanisms></stream:features>", 0);
    KT_CHECK_EQ(last_status, KL_ERR_NO_TLS);
    KT_CHECK(strstr(out, AUTH_B64) == NULL);
}

/* Only whitespace may stand between stanzas; CDATA of spaces is no keepalive. */
static void test_cdata_at_stream_level(void)
{
    hostile(HDR "<![CDATA[ ]]>", KL_ERR_PROTOCOL);
}

/* ---- the API's arguments and states ----------------------------------------- */

static int rnd_fail; /* the port's entropy source fails when set */
static int flaky_random(void *ctx, unsigned char *out, size_t len)
{
    return rnd_fail ? -1 : kt_random(ctx, out, len);
}

static int crypto_random(void *ctx, uint8_t *out, size_t len) { return flaky_random(ctx, out, len); }

/* Every entry point refuses what it cannot use with a named status, and
 * leaves the client as it was. */
static void test_api_arguments(void)
{
    kl_client_config_t cfg;
    kl_xw_t w, w2;
    kl_event_t ev;
    kl_stanza_t st;
    size_t cap = 7, n = 7;
    char txt[8];
    uint8_t cb[KL_CB_MAX + 1];
    memset(&cfg, 0, sizeof cfg);
    memset(&st, 0, sizeof st);
    memset(cb, 1, sizeof cb);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.random = kt_random;
    KT_CHECK_EQ(kl_client_init(NULL, &cfg), KL_ERR_ARG);
    cfg.jid = NULL;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_ERR_ARG);
    cfg.jid = "alice@localhost/dev";
    cfg.pipelining = (kl_pipelining_t)(KL_PIPELINING_FULL + 1);
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_ERR_ARG);
    cfg.pipelining = KL_PIPELINING_SAFE;
    KT_CHECK_EQ(kl_client_connect(NULL, 0, KL_CHANNEL_STARTTLS), KL_ERR_ARG);
    KT_CHECK(kl_engine_input_buf(NULL, &cap) == NULL && cap == 0);
    kl_engine_input_ack(NULL, 1);
    KT_CHECK(kl_engine_output(NULL, &n) == NULL && n == 0);
    kl_engine_output_ack(NULL, 1);
    KT_CHECK_EQ(kl_engine_poll(NULL, 0, &ev), KL_ERR_ARG);
    KT_CHECK_EQ(kl_engine_next_timeout(NULL, 0), UINT32_MAX);
    KT_CHECK_EQ(kl_engine_tls_done(NULL, 1), KL_ERR_STATE);
    KT_CHECK_EQ(kl_stanza_begin(NULL, &w), KL_ERR_ARG);
    KT_CHECK_EQ(kl_stanza_commit(NULL, &w), KL_ERR_ARG);
    KT_CHECK_EQ(kl_client_close(NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_sm_ack_now(NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_send_roster_get(NULL, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_server_features(NULL, NULL), 0);
    KT_CHECK_EQ(kl_send_server_disco(NULL, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_send_iq(NULL, NULL, "get", NULL, 0, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_client_set_channel_binding(NULL, cb, 1), KL_ERR_ARG);
    KT_CHECK_EQ(kl_stanza_child_text(NULL, &st, "body", NULL, txt, sizeof txt), KL_ERR_ARG);
    {
        /* a port crypto table without random, and no random of its own */
        static kl_crypto_t no_rnd;
        cfg.random = NULL;
        cfg.crypto = &no_rnd;
        KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_ERR_NO_ENTROPY);
        cfg.crypto = NULL;
        cfg.random = kt_random;
    }
#if KL_ENABLE_APP
    KT_CHECK_EQ(kl_iq_begin(NULL, &w, NULL, "get"), KL_ERR_ARG);
    KT_CHECK_EQ(kl_iq_commit(NULL, &w, 0, NULL), KL_ERR_STATE);
    KT_CHECK_EQ(kl_send_long_open(NULL), 0);
    KT_CHECK_EQ(kl_send_message_begin(NULL, "bob@localhost", NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_send_text(NULL, (const uint8_t *)"x", 1), KL_ERR_ARG);
    KT_CHECK_EQ(kl_send_message_end(NULL), KL_ERR_ARG);
#endif

    /* initialised, not connected */
    cfg.iq_timeout_ms = 2000;
    cfg.random = flaky_random;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK(kl_engine_input_buf(&cl, &cap) != NULL && cap == 0);
    KT_CHECK_EQ(kl_engine_awaiting_header(&cl), 0);
    KT_CHECK_EQ(kl_engine_poll(&cl, 0, &ev), 0);
    KT_CHECK_EQ(ev.type, KL_EV_NONE);
    KT_CHECK_EQ(kl_engine_poll(&cl, 0, NULL), KL_ERR_ARG);
    KT_CHECK_STR(kl_client_sasl_mechanism(&cl), ""); /* none yet */
    KT_CHECK_EQ(kl_send_server_disco(&cl, NULL), KL_ERR_NOT_ONLINE);
#if KL_ENABLE_CSI
    KT_CHECK_EQ(kl_csi_set(&cl, 1), KL_ERR_NOT_ONLINE);
#endif
    KT_CHECK_EQ(kl_engine_tls_done(&cl, 1), KL_ERR_STATE);
    KT_CHECK_EQ(kl_client_close(&cl), KL_ERR_STATE);
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, 0), UINT32_MAX);
    KT_CHECK_EQ(kl_client_set_channel_binding(&cl, cb, KL_CB_MAX + 1), KL_ERR_ARG);
    KT_CHECK_EQ(kl_client_set_channel_binding(&cl, NULL, 4), KL_ERR_ARG);
    KT_CHECK_EQ(kl_client_set_channel_binding(&cl, cb, 4), KL_OK);
    KT_CHECK_EQ(kl_client_set_channel_binding(&cl, NULL, 0), KL_OK);
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    last_status = 0;
    now_ms = 1000;
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    drain();
    KT_CHECK_EQ(kl_engine_awaiting_header(&cl), 1);
    KT_CHECK_EQ(kl_engine_tls_done(&cl, 1), KL_ERR_STATE); /* no <proceed/> yet */
    feed(HDR, 0);
    KT_CHECK_EQ(kl_engine_awaiting_header(&cl), 0);
    feed(FEAT_TLS PROCEED, 0);
    KT_CHECK_EQ(kl_engine_awaiting_header(&cl), 0); /* the port runs TLS */
    KT_CHECK(kl_engine_input_buf(&cl, &cap) != NULL && cap == 0);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL SUCCESS HDR FEAT_BIND BIND_RES, 0);
    KT_CHECK_STR(log_, "[starttls][online alice@localhost/dev]");
    log_len = 0;
    log_[0] = 0;
    KT_CHECK_EQ(kl_client_full_pipelining(&cl), 0);
    KT_CHECK_STR(kl_client_sasl_mechanism(&cl), "PLAIN");
    kl_stats_add_port_rt(&cl, 5); /* after online: not a round trip of the login */
    KT_CHECK_EQ(kl_client_stats(&cl)->port_round_trips, 0);
    /* more input than room, more output acknowledged than written: ignored */
    {
        uint32_t in0 = kl_client_stats(&cl)->bytes_in;
        kl_engine_input_ack(&cl, KL_RX_BUF_SIZE + 1);
        KT_CHECK_EQ(kl_client_stats(&cl)->bytes_in, in0);
        KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", NULL, NULL), KL_OK);
        kl_engine_output_ack(&cl, 1000);
        out_len = 0;
        drain();
        KT_CHECK_STR(out, "<message to='bob@localhost' type='chat'/>");
    }
    KT_CHECK_EQ(kl_send_message(&cl, NULL, NULL, "x"), KL_ERR_ARG);
    KT_CHECK_EQ(kl_stanza_begin(&cl, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_stanza_commit(&cl, NULL), KL_ERR_ARG);
    /* an IQ of another type, or a type at all */
    KT_CHECK_EQ(kl_send_iq(&cl, NULL, NULL, NULL, 0, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_send_iq(&cl, NULL, "result", NULL, 0, NULL), KL_ERR_ARG);
    /* no entropy for the id: nothing sent */
    rnd_fail = 1;
    out_len = 0;
    out[0] = 0;
    KT_CHECK_EQ(kl_send_iq(&cl, NULL, "get", "<q xmlns='urn:x'/>", 0, NULL), KL_ERR_NO_ENTROPY);
    rnd_fail = 0;
    drain();
    KT_CHECK_STR(out, "");
    /* the configured default timeout */
    {
        uint16_t h = 0;
        char buf[32];
        KT_CHECK_EQ(kl_send_iq(&cl, NULL, "set", "<q xmlns='urn:x'/>", 0, &h), KL_OK);
        KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), 2000);
        now_ms += 2000;
        pump();
        snprintf(buf, sizeof buf, "[iq-timeout %u]", h);
        KT_CHECK_STR(log_, buf);
    }
    /* a request larger than the transmit buffer: refused whole, its slot free */
    {
        static char payload[KL_TX_BUF_SIZE + 64];
        memset(payload, 0, sizeof payload);
        snprintf(payload, sizeof payload, "<q xmlns='urn:x'>%0*d</q>", KL_TX_BUF_SIZE, 0);
        out_len = 0;
        out[0] = 0;
        KT_CHECK_EQ(kl_send_iq(&cl, NULL, "set", payload, 0, NULL), KL_ERR_TX_FULL);
        drain();
        KT_CHECK_STR(out, "");
        KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms) > KL_IQ_TIMEOUT_MS, 1); /* nothing pending */
    }
#if KL_ENABLE_APP
    KT_CHECK_EQ(kl_iq_begin(&cl, NULL, NULL, "get"), KL_ERR_ARG);
    KT_CHECK_EQ(kl_iq_commit(&cl, NULL, 0, NULL), KL_ERR_STATE);
    KT_CHECK_EQ(kl_iq_commit(&cl, &w, 0, NULL), KL_ERR_STATE); /* no kl_iq_begin */
    /* the slot kl_iq_begin chose went to another request meanwhile */
    KT_CHECK_EQ(kl_iq_begin(&cl, &w, NULL, "get"), KL_OK);
    KT_CHECK_EQ(kl_send_iq(&cl, NULL, "get", NULL, 0, NULL), KL_OK);
    KT_CHECK_EQ(kl_iq_commit(&cl, &w, 0, NULL), KL_ERR_STATE);
    KT_CHECK_EQ(kl_send_message_begin(&cl, NULL, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_send_text(&cl, NULL, 3), KL_ERR_ARG);
    KT_CHECK_EQ(kl_send_text(&cl, NULL, 0), KL_ERR_STATE); /* no long stanza open */
    /* a long stanza open: the client closes only after its end */
    drain();
    KT_CHECK_EQ(kl_send_message_begin(&cl, "bob@localhost", NULL), KL_OK);
    KT_CHECK_EQ(kl_client_close(&cl), KL_ERR_TX_FULL);
    KT_CHECK_EQ(kl_send_message_end(&cl), KL_OK);
    /* a transmit buffer that has no room for the long stanza's head */
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    {
        size_t fill = w.cap - 20, i;
        kl_xw_raw(&w, (const uint8_t *)"<presence>", 10);
        for (i = 10; i < fill - 11; i++)
            kl_xw_raw(&w, (const uint8_t *)" ", 1);
        kl_xw_raw(&w, (const uint8_t *)"</presence>", 11);
        KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_OK);
    }
    KT_CHECK_EQ(kl_send_message_begin(&cl, "bob@localhost", NULL), KL_ERR_TX_FULL);
    KT_CHECK_EQ(kl_send_long_open(&cl), 0);
    drain();
#endif
    /* a writer that is not at the end of the buffer any more */
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w2), KL_OK);
    kl_xw_raw(&w, (const uint8_t *)"<presence/>", 11);
    kl_xw_raw(&w2, (const uint8_t *)"<presence/>", 11);
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_OK);
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w2), KL_ERR_STATE);
    /* child text: no room for even the NUL; another namespace; no such child */
    {
        static const char msg[] = "<message from='bob@localhost/x'><body>hi</body></message>";
        int got = 0;
        drain();
        KT_CHECK_EQ(kl_engine_input(&cl, (const uint8_t *)msg, sizeof msg - 1), sizeof msg - 1);
        while (kl_engine_poll(&cl, now_ms, &ev) > 0)
            if (ev.type == KL_EV_STANZA) {
                got++;
                KT_CHECK_EQ(kl_stanza_child_text(&cl, &ev.stanza, "body", NULL, txt, 0), KL_ERR_TOO_LARGE);
                KT_CHECK_EQ(kl_stanza_child_text(&cl, &ev.stanza, "body", "urn:x", txt, sizeof txt), KL_ERR_ARG);
                KT_CHECK_EQ(kl_stanza_child_text(&cl, &ev.stanza, "subject", NULL, txt, sizeof txt), KL_ERR_ARG);
                KT_CHECK_EQ(kl_stanza_child_text(&cl, &ev.stanza, "body", "jabber:client", txt, sizeof txt), 2);
                KT_CHECK_STR(txt, "hi");
                KT_CHECK_EQ(kl_stanza_child_text(&cl, NULL, "body", NULL, txt, sizeof txt), KL_ERR_ARG);
                KT_CHECK_EQ(kl_stanza_child_text(&cl, &ev.stanza, NULL, NULL, txt, sizeof txt), KL_ERR_ARG);
                KT_CHECK_EQ(kl_stanza_child_text(&cl, &ev.stanza, "body", NULL, NULL, 4), KL_ERR_ARG);
            }
        KT_CHECK_EQ(got, 1);
    }
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w2), KL_OK);
    kl_xw_raw(&w2, (const uint8_t *)"<presence/>", 11);
    KT_CHECK_EQ(kl_client_close(&cl), KL_OK);
    /* after close: nothing more goes, not even what was begun before it */
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w2), KL_ERR_NOT_ONLINE);
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_ERR_NOT_ONLINE);
    KT_CHECK_EQ(kl_client_close(&cl), KL_ERR_STATE);
    feed("</stream:stream>", 0);
    KT_CHECK_EQ(kl_engine_next_timeout(&cl, now_ms), UINT32_MAX);
    KT_CHECK_EQ(kl_engine_awaiting_header(&cl), 0);
    KT_CHECK(kl_engine_input_buf(&cl, &cap) != NULL && cap == 0);

    /* the port's crypto as the only entropy source */
    {
        static kl_crypto_t cr;
        memset(&cr, 0, sizeof cr);
        cr.random = crypto_random;
        cfg.random = NULL;
        cfg.crypto = &cr;
        KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
        KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_TLS_VERIFIED), KL_OK);
        feed(HDR FEAT_SASL SUCCESS HDR FEAT_BIND BIND_RES, 0);
        KT_CHECK(kl_client_is_online(&cl));
        KT_CHECK_EQ(kl_send_iq(&cl, NULL, "get", NULL, 0, NULL), KL_OK);
        rnd_fail = 1;
        KT_CHECK_EQ(kl_send_iq(&cl, NULL, "get", NULL, 0, NULL), KL_ERR_NO_ENTROPY);
        rnd_fail = 0;
        /* the table is the port's: its random taken away after init, the
         * same status, no id made up and nothing sent */
        cr.random = NULL;
        drain();
        out_len = 0;
        KT_CHECK_EQ(kl_send_iq(&cl, NULL, "get", NULL, 0, NULL), KL_ERR_NO_ENTROPY);
        drain();
        KT_CHECK_EQ(out_len, 0);
        cr.random = crypto_random;
        KT_CHECK_EQ(kl_send_iq(&cl, NULL, "get", NULL, 0, NULL), KL_OK);
    }
}

/* A stanza begun and committed with nothing written: KL_OK, and nothing
 * queued, counted as a flight or as bytes. */
static void test_empty_commit(void)
{
    kl_xw_t w;
    kl_stats_t before;
    online();
    pump();
    before = *kl_client_stats(&cl);
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_OK);
    pump();
    KT_CHECK_EQ(out_len, 0);
    KT_CHECK_EQ(kl_client_stats(&cl)->bytes_out, before.bytes_out);
    KT_CHECK_EQ(kl_client_stats(&cl)->flights_total, before.flights_total);
}

/* ---- SASL2 without hints ----------------------------------------------------- */
#if KL_ENABLE_SASL2

#define FEAT_SASL2 "<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>PLAIN</mechanism>" \
                   "</authentication></stream:features>"

/* A port hash that writes a pattern of the input's length and first byte. */
static int pattern_hash(void *ctx, kl_hash_alg_t alg, const uint8_t *data, size_t len, uint8_t *o)
{
    size_t i;
    (void)ctx, (void)alg;
    for (i = 0; i < 32; i++)
        o[i] = (uint8_t)(len * 7 + data[0] + i);
    return 0;
}

/* Up to the <authenticate/> over verified TLS, no hints: cfg tweaks by the caller. */
static void sasl2_to_auth(const kl_client_config_t *cfg)
{
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    last_status = 0;
    now_ms = 1000;
    KT_CHECK_EQ(kl_client_init(&cl, cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    drain();
    feed(HDR FEAT_TLS PROCEED, 0);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL2, 0);
}

/* The <user-agent id=''> of the last <authenticate/>, "" if none. */
static void ua_id(char *id, size_t cap)
{
    const char *p = strstr(out, "<user-agent id='");
    id[0] = 0;
    if (p)
        snprintf(id, cap, "%.*s", (int)strcspn(p + 16, "'"), p + 16);
}

static void test_sasl2_without_hints(void)
{
    static kl_crypto_t hash_only;
    kl_client_config_t cfg;
    char id1[64], id2[64], id3[64], *big;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.random = kt_random;
    cfg.pipelining = KL_PIPELINING_OFF; /* the auth waits for the features */

    /* no hints to keep a user-agent id in, no port hash: a fixed one */
    sasl2_to_auth(&cfg);
    KT_CHECK(strstr(out, "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'>") != NULL);
    ua_id(id1, sizeof id1);
    KT_CHECK_EQ(strlen(id1), 36);
    KT_CHECK_STR(id1, "00000000-0000-4000-8000-000000000000");
    /* with the port's hash: derived from the bare JID, the same every time */
    hash_only.hash = pattern_hash;
    cfg.crypto = &hash_only;
    sasl2_to_auth(&cfg);
    ua_id(id2, sizeof id2);
    KT_CHECK_EQ(strlen(id2), 36);
    KT_CHECK(strcmp(id2, id1) != 0);
    /* the bare JID (15 bytes) hashed: 15 * 7 + 'a' = 0xca, ..., with the UUID's version and variant */
    KT_CHECK_STR(id2, "cacbcccd-cecf-40d1-92d3-d4d5d6d7d8d9");
    sasl2_to_auth(&cfg);
    ua_id(id3, sizeof id3);
    KT_CHECK_STR(id3, id2);

    /* an authorization identifier in CDATA: refused, as in RFC 6120's SASL */
    feed("<success xmlns='urn:xmpp:sasl:2'><authorization-identifier><![CDATA[alice@localhost/dev]]>"
         "</authorization-identifier></success>", 0);
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
    KT_CHECK(strstr(log_, "invalid-xml") != NULL);
    KT_CHECK(strstr(log_, "[online") == NULL);

    /* an <authenticate/> bigger than the send buffer: named, nothing of it sent */
    big = malloc(KL_TX_BUF_SIZE + 1);
    memset(big, 's', KL_TX_BUF_SIZE);
    big[KL_TX_BUF_SIZE] = 0;
    cfg.crypto = NULL;
    cfg.software = big;
    sasl2_to_auth(&cfg);
    KT_CHECK_EQ(last_status, KL_ERR_TX_FULL);
    KT_CHECK(strstr(out, "<authenticate") == NULL);
    KT_CHECK(!kl_client_is_online(&cl));
    free(big);
}

/* A SASL2 <failure/>'s condition: its first child but <text/>; none: "". */
static void test_sasl2_failure_condition(void)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.random = kt_random;
    cfg.pipelining = KL_PIPELINING_OFF;
    sasl2_to_auth(&cfg);
    log_len = 0;
    log_[0] = 0;
    feed("<failure xmlns='urn:xmpp:sasl:2'><text>no <b/>way</text>"
         "<account-disabled xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>", 0);
    KT_CHECK_EQ(last_status, KL_ERR_AUTH);
    KT_CHECK_STR(log_, "[error authentication failed account-disabled]");
    sasl2_to_auth(&cfg);
    log_len = 0;
    log_[0] = 0;
    feed("<failure xmlns='urn:xmpp:sasl:2'>x</failure>", 0);
    KT_CHECK_EQ(last_status, KL_ERR_AUTH);
    KT_CHECK_STR(log_, "[error authentication failed ]");
    KT_CHECK(!kl_client_is_online(&cl));
}

/* <user-agent id=''> with hints but no entropy: derived from the bare JID
 * with the port's hash, else all zeros; the hints keep none. */
static void test_sasl2_ua_without_entropy(void)
{
    static kl_cache_t k;
    static kl_crypto_t cr;
    kl_client_config_t cfg;
    char id[64];
    if (!KL_ENABLE_CACHE || !KL_ENABLE_SCRAM)
        return;
    memset(&cfg, 0, sizeof cfg);
    memset(&cr, 0, sizeof cr);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.pipelining = KL_PIPELINING_OFF;
    cfg.cache = &k;
    cfg.crypto = &cr;
    kl_cache_reset(&k, "localhost");
    /* the port's entropy fails: the hash's */
    cfg.random = flaky_random;
    rnd_fail = 1;
    cr.hash = pattern_hash;
    sasl2_to_auth(&cfg);
    ua_id(id, sizeof id);
    KT_CHECK_STR(id, "cacbcccd-cecf-40d1-92d3-d4d5d6d7d8d9");
    KT_CHECK_EQ(k.ua_id[0], 0);
    rnd_fail = 0;
    /* no hash, and the entropy source the port had at init gone (its
     * crypto table is its memory): zeros */
    cfg.random = NULL;
    cr.hash = NULL;
    cr.random = crypto_random;
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    cr.random = NULL;
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    drain();
    feed(HDR FEAT_TLS PROCEED, 0);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL2, 0);
    ua_id(id, sizeof id);
    KT_CHECK_STR(id, "00000000-0000-4000-8000-000000000000");
    KT_CHECK_EQ(k.ua_id[0], 0);
    /* with the port's random: generated once and kept */
    cr.random = crypto_random;
    sasl2_to_auth(&cfg);
    ua_id(id, sizeof id);
    KT_CHECK_EQ(strlen(id), 36);
    KT_CHECK_STR(id, k.ua_id);
    KT_CHECK(strcmp(id, "00000000-0000-4000-8000-000000000000") != 0);
}
#endif

/* ---- the port's entropy, the hints, the send buffer ---------------------------- */

#define FEAT_SCRAM "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
                   "<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>"

/* SCRAM on the hints' word, with a port whose random source fails: nothing
 * of the <auth/> rides with the header, and the login ends with the same
 * status as without hints, once the features are in. */
static void test_scram_hints_entropy_fails(void)
{
    static kl_cache_t k;
    static kl_crypto_t cr;
    kl_client_config_t cfg;
    int i;
    if (!KL_ENABLE_SCRAM || !KL_ENABLE_CACHE)
        return;
    memset(&cfg, 0, sizeof cfg);
    memset(&cr, 0, sizeof cr);
    cr.random = crypto_random;
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.no_plain = 1;
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.crypto = &cr;
    cfg.cache = &k;
    kl_cache_reset(&k, "localhost");
    now_ms = 1000;
    /* 0: no hints yet (they are recorded); 1: the hints say SCRAM-SHA-1;
     * 2: the same with the random source back: the <auth/> rides along */
    for (i = 0; i < 3; i++) {
        rnd_fail = i < 2;
        out_len = log_len = 0;
        out[0] = log_[0] = 0;
        last_status = 0;
        KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
        KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_TLS_VERIFIED), KL_OK);
        drain();
        KT_CHECK(strstr(out, "<stream:stream") != NULL);
        if (i == 2) {
            KT_CHECK(strstr(out, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>") != NULL);
            break;
        }
        KT_CHECK(strstr(out, "<auth") == NULL);
        KT_CHECK_EQ(log_len, 0);
        feed(HDR FEAT_SCRAM, 0);
        KT_CHECK_EQ(last_status, KL_ERR_NO_MECHANISM);
        KT_CHECK(strstr(out, "<auth") == NULL);
        KT_CHECK(!kl_client_is_online(&cl));
        KT_CHECK(k.known & KL_CACHE_KNOWN_POST_TLS);
    }
    rnd_fail = 0;
}

/* A roster version the engine would never keep: the hints are the
 * application's memory, and one whose roster_ver lost its terminator
 * (followed by a long srv_host) is read to the field's end and no further:
 * the request carries exactly its bytes, escaped. */
static void test_roster_ver_unterminated(void)
{
    static kl_cache_t k;
    if (!KL_ENABLE_CACHE)
        return;
    now_ms = 1000;
    kl_cache_reset(&k, "localhost");
    online_cached(&k, FEAT_BIND_CAPS("V1"));
    k.flags |= KL_CACHE_ROSTERVER;
    strcpy(k.roster_ver, "v&1");
    kl_cache_seal(&k);
    KT_CHECK_EQ(kl_send_roster_get(&cl, NULL), KL_OK);
    drain();
    KT_CHECK(strstr(out, "<query xmlns='jabber:iq:roster' ver='v&amp;1'/>") != NULL);
    out_len = 0;
    out[0] = 0;
    /* unterminated: the field's bytes and no more (the next field's '#'
     * would show), each escaped */
    memset(k.roster_ver, '&', sizeof k.roster_ver);
    memset(k.srv_host, '#', sizeof k.srv_host - 1);
    k.srv_host[sizeof k.srv_host - 1] = '\0';
    kl_cache_seal(&k);
    KT_CHECK_EQ(kl_send_roster_get(&cl, NULL), KL_OK);
    drain();
    {
        char want[sizeof k.roster_ver * 5 + 64];
        size_t o = (size_t)snprintf(want, sizeof want, "<query xmlns='jabber:iq:roster' ver='");
        for (size_t i = 0; i < sizeof k.roster_ver; i++)
            o += (size_t)snprintf(want + o, sizeof want - o, "&amp;");
        snprintf(want + o, sizeof want - o, "'/>");
        KT_CHECK(strstr(out, want) != NULL);
        KT_CHECK(strchr(out, '#') == NULL);
    }
    /* hints without a roster version: a request for the plain roster */
    out_len = 0;
    out[0] = 0;
    k.flags &= (uint8_t)~KL_CACHE_ROSTERVER;
    kl_cache_seal(&k);
    KT_CHECK_EQ(kl_send_roster_get(&cl, NULL), KL_OK);
    drain();
    KT_CHECK(strstr(out, "<query xmlns='jabber:iq:roster'/></iq>") != NULL);
    KT_CHECK(kl_client_is_online(&cl));
}

#if KL_ENABLE_APP
/* Online with cfg: PLAIN with the header over verified TLS. */
static void online_cfg(const kl_client_config_t *cfg)
{
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    last_status = 0;
    now_ms = 1000;
    KT_CHECK_EQ(kl_client_init(&cl, cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    feed(HDR FEAT_SASL SUCCESS HDR FEAT_BIND BIND_RES, 0);
    KT_CHECK(kl_client_is_online(&cl));
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
}

/* A port hash of the algorithm's length (the caps ver is SHA-1's). */
static int sized_hash(void *ctx, kl_hash_alg_t alg, const uint8_t *data, size_t len, uint8_t *o)
{
    size_t i, n = alg == KL_HASH_SHA1 ? 20 : 32;
    (void)ctx;
    for (i = 0; i < n; i++)
        o[i] = (uint8_t)(len * 7 + data[0] + i);
    return 0;
}

/* With the app layer attached (a caps ver: the port hashes), a broadcast
 * presence carries the caps; a directed or typed one does not. */
static void test_presence_caps(void)
{
    static kl_crypto_t cr;
    static kl_app_t app;
    kl_client_config_t cfg;
    const char *p;
    memset(&cfg, 0, sizeof cfg);
    memset(&cr, 0, sizeof cr);
    cr.hash = sized_hash;
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.random = kt_random;
    cfg.crypto = &cr;
    cfg.no_presence = 1;
    online_cfg(&cfg);
    KT_CHECK_EQ(kl_send_presence(&cl, NULL, NULL, "here"), KL_OK);
    drain();
    KT_CHECK_STR(out, "<presence><status>here</status></presence>"); /* no app: no caps */
    KT_CHECK_EQ(kl_app_init(&app, &cl, NULL), KL_OK);
    out_len = 0;
    KT_CHECK_EQ(kl_send_presence(&cl, NULL, NULL, "here"), KL_OK);
    drain();
    p = strstr(out, "<status>here</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='");
    KT_CHECK(p != NULL && strstr(p, "' ver='") != NULL && strstr(p, "'/></presence>") != NULL);
    out_len = 0;
    out[0] = 0;
    KT_CHECK_EQ(kl_send_presence(&cl, "bob@localhost", NULL, NULL), KL_OK);
    KT_CHECK_EQ(kl_send_presence(&cl, NULL, "unavailable", NULL), KL_OK);
    drain();
    KT_CHECK_STR(out, "<presence to='bob@localhost'/><presence type='unavailable'/>");
    /* the app's disco#info answer to a request without id has none */
    out_len = 0;
    out[0] = 0;
    feed("<iq type='get' from='bob@localhost/x'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", 0);
    KT_CHECK(strstr(out, "<iq type='result' to='bob@localhost/x'><query") == out);
}

/* A long message fills the send buffer to its last byte: an answer may
 * not go between its pieces, and the close waits until the port made room
 * for </stream:stream> (the client stays online meanwhile). */
static void test_close_with_tx_full(void)
{
    static kl_app_t app;
    static uint8_t text[KL_TX_BUF_SIZE];
    kl_in_t in;
    size_t n;
    online();
    pump();
    KT_CHECK_EQ(kl_app_init(&app, &cl, NULL), KL_OK);
    memset(&in, 0, sizeof in);
    in.from = "bob@localhost/x";
    in.id = "q1";
    out_len = 0;
    out[0] = 0;
    KT_CHECK_EQ(kl_send_message_begin(&cl, "bob@localhost", NULL), KL_OK);
    KT_CHECK_EQ(kl_reply_iq_result(&app, &in, NULL), KL_ERR_STATE);
    KT_CHECK_EQ(kl_reply_iq_error(&app, &in, "cancel", "service-unavailable"), KL_ERR_STATE);
    memset(text, 'x', sizeof text);
    KT_CHECK(kl_send_text(&cl, text, sizeof text) > 0);
    kl_engine_output(&cl, &n);
    KT_CHECK_EQ(n, KL_TX_BUF_SIZE);
    KT_CHECK_EQ(kl_send_message_end(&cl), KL_ERR_TX_FULL);
    /* the port sends what "</body></message>" needs, and no more */
    kl_engine_output_ack(&cl, 17);
    KT_CHECK_EQ(kl_send_message_end(&cl), KL_OK);
    kl_engine_output(&cl, &n);
    KT_CHECK_EQ(n, KL_TX_BUF_SIZE);
    KT_CHECK_EQ(kl_client_close(&cl), KL_ERR_TX_FULL);
    KT_CHECK(kl_client_is_online(&cl));
    drain();
    KT_CHECK(strstr(out, "</stream:stream>") == NULL);
    KT_CHECK(strstr(out, "<iq") == NULL);
    KT_CHECK_EQ(kl_client_close(&cl), KL_OK);
    drain();
    KT_CHECK(!kl_client_is_online(&cl));
    KT_CHECK_EQ(count_of(out, "</body></message></stream:stream>"), 1);
}
#endif

/* ---- branches gcov showed never taken ------------------------------------------ */

/* The domain runs from the first '@' to the first '/' (RFC 7622 3.2): a
 * second '@' is the domain's; an empty resource binds none. */
static void test_jid_split_edges(void)
{
    login_as("alice@localhost@x/dev", "alice@localhost@x/dev");
    KT_CHECK_STR(kl_client_domain(&cl), "localhost@x");
    KT_CHECK(strstr(out, "to='localhost@x'") != NULL);
    login_as("alice@localhost/", "alice@localhost/srv-1");
    KT_CHECK(strstr(out, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>") != NULL);
    KT_CHECK(strstr(out, "<resource>") == NULL);
    KT_CHECK_STR(kl_client_jid(&cl), "alice@localhost/srv-1");
}

#if KL_ENABLE_SASL2
#define FEAT_SASL2_BIND2 "<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>PLAIN</mechanism>" \
                         "<inline><bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:csi:0'/>" \
                         "</inline></bind></inline></authentication></stream:features>"

/* Up to the <authenticate/> over verified TLS: cfg's client, these features. */
static void bind2_auth_cfg(const kl_client_config_t *cfg, const char *features)
{
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    last_status = 0;
    KT_CHECK_EQ(kl_client_init(&cl, cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    drain();
    feed(HDR, 0);
    feed(features, 0);
}

/* Up to the <authenticate/> over verified TLS with Bind2 offered. */
static void bind2_auth(const char *jid, const char *software, int inactive)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = jid;
    cfg.password = "secret";
    cfg.random = kt_random;
    cfg.software = software;
    cfg.csi_inactive = (uint8_t)inactive;
    cfg.pipelining = KL_PIPELINING_OFF;
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    last_status = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    drain();
    feed(HDR FEAT_SASL2_BIND2, 0);
}

/* A port HMAC of SHA-256's length (what it computes does not matter here). */
static int fill_hmac(void *ctx, kl_hash_alg_t alg, const uint8_t *key, size_t key_len, const kl_slice_t *parts,
                     size_t nparts, uint8_t *o)
{
    (void)ctx, (void)alg, (void)key, (void)key_len, (void)parts, (void)nparts;
    memset(o, 0x5a, 32);
    return 0;
}

#define FEAT_SASL2_FAST "<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>PLAIN</mechanism>" \
                        "<inline><fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-NONE</mechanism></fast>" \
                        "</inline></authentication></stream:features>"

/* A provisioned FAST token goes only where FAST is allowed and the token
 * is not empty: otherwise the password, or no mechanism at all. */
static void test_fast_token_provisioned_unused(void)
{
    static kl_crypto_t cr;
    kl_client_config_t cfg;
    memset(&cr, 0, sizeof cr);
    cr.hmac = fill_hmac;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.random = kt_random;
    cfg.crypto = &cr;
    cfg.pipelining = KL_PIPELINING_OFF;
    /* the token used: HT-SHA-256-NONE */
    cfg.fast_token = "tok";
    bind2_auth_cfg(&cfg, FEAT_SASL2_FAST);
    KT_CHECK(strstr(out, "mechanism='HT-SHA-256-NONE'") != NULL);
    /* refused (no hints to forget it from): the password takes over */
    cfg.password = "secret";
    bind2_auth_cfg(&cfg, FEAT_SASL2_FAST);
    KT_CHECK(strstr(out, "mechanism='HT-SHA-256-NONE'") != NULL);
    out_len = 0;
    out[0] = 0;
    feed("<failure xmlns='urn:xmpp:sasl:2'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>", 0);
    KT_CHECK(strstr(out, "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'>") != NULL);
    KT_CHECK_EQ(kl_client_stats(&cl)->fast_refused, 1);
    KT_CHECK_EQ(last_status, 0);
    cfg.password = NULL;
    /* no_fast: the token stays unused; no password: no mechanism */
    cfg.no_fast = 1;
    bind2_auth_cfg(&cfg, FEAT_SASL2_FAST);
    KT_CHECK(strstr(out, "<authenticate") == NULL);
    KT_CHECK_EQ(last_status, KL_ERR_NO_MECHANISM);
    /* an empty token is none: the password goes */
    cfg.no_fast = 0;
    cfg.fast_token = "";
    cfg.password = "secret";
    bind2_auth_cfg(&cfg, FEAT_SASL2_FAST);
    KT_CHECK(strstr(out, "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'>") != NULL);
}

/* <request-token/> only with FAST allowed, hints this program vouches for
 * (not a copy of them) and the port's HMAC. */
static void test_fast_request_token_needs(void)
{
    static kl_crypto_t cr, no_hmac;
    static kl_cache_t k, copy;
    kl_client_config_t cfg;
    if (!KL_ENABLE_CACHE || !KL_ENABLE_SCRAM)
        return;
    memset(&cr, 0, sizeof cr);
    memset(&no_hmac, 0, sizeof no_hmac);
    cr.hmac = fill_hmac;
    no_hmac.hash = pattern_hash;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.random = kt_random;
    cfg.crypto = &cr;
    cfg.cache = &k;
    cfg.pipelining = KL_PIPELINING_OFF;
    kl_cache_reset(&k, "localhost");
    bind2_auth_cfg(&cfg, FEAT_SASL2_FAST);
    KT_CHECK(strstr(out, "mechanism='PLAIN'>") != NULL);
    KT_CHECK(strstr(out, "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>") != NULL);
    cfg.no_fast = 1;
    bind2_auth_cfg(&cfg, FEAT_SASL2_FAST);
    KT_CHECK(strstr(out, "mechanism='PLAIN'>") != NULL);
    KT_CHECK(strstr(out, "<request-token") == NULL);
    cfg.no_fast = 0;
    cfg.crypto = &no_hmac;
    bind2_auth_cfg(&cfg, FEAT_SASL2_FAST);
    KT_CHECK(strstr(out, "mechanism='PLAIN'>") != NULL);
    KT_CHECK(strstr(out, "<request-token") == NULL);
    cfg.crypto = NULL;
    bind2_auth_cfg(&cfg, FEAT_SASL2_FAST);
    KT_CHECK(strstr(out, "mechanism='PLAIN'>") != NULL);
    KT_CHECK(strstr(out, "<request-token") == NULL);
    /* the hints copied byte for byte to other memory: not vouched for */
    cfg.crypto = &cr;
    memcpy(&copy, &k, sizeof copy);
    cfg.cache = &copy;
    bind2_auth_cfg(&cfg, FEAT_SASL2_FAST);
    KT_CHECK(strstr(out, "mechanism='PLAIN'>") != NULL);
    KT_CHECK(strstr(out, "<request-token") == NULL);
}

/* Bind2's tag: the resource, else the software's name, else "kinglet";
 * CSI's initial state as configured. */
static void test_bind2_tag_and_csi(void)
{
    bind2_auth("alice@localhost/dev", NULL, 0);
    KT_CHECK(strstr(out, "<bind xmlns='urn:xmpp:bind:0'><tag>dev</tag><active xmlns='urn:xmpp:csi:0'/></bind>") != NULL);
    bind2_auth("alice@localhost", NULL, 1);
    KT_CHECK(strstr(out, "<tag>kinglet</tag><inactive xmlns='urn:xmpp:csi:0'/></bind>") != NULL);
    bind2_auth("alice@localhost/", "thermo", 0);
    KT_CHECK(strstr(out, "<tag>thermo</tag><active") != NULL);
    bind2_auth("alice@localhost", "thermo", 1);
    KT_CHECK(strstr(out, "<tag>thermo</tag><inactive") != NULL);
    /* a software name of bad UTF-8: the writer's error, nothing sent */
    bind2_auth("alice@localhost", "thermo\xff", 0);
    KT_CHECK_EQ(last_status, KL_ERR_XML_UTF8);
    KT_CHECK(strstr(out, "<authenticate") == NULL);
    KT_CHECK(!kl_client_is_online(&cl));
}

/* no_sasl2: RFC 6120's list and <auth/> where both are offered. */
static void test_no_sasl2_uses_rfc6120(void)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.random = kt_random;
    cfg.no_sasl2 = 1;
    cfg.pipelining = KL_PIPELINING_OFF;
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    drain();
    feed(HDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
             "</mechanisms><authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism>"
             "</authentication></stream:features>", 0);
    KT_CHECK(strstr(out, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" AUTH_B64 "</auth>") != NULL);
    KT_CHECK(strstr(out, "<authenticate") == NULL);
}
#endif

/* An IQ request without id is answered without one; a result without from
 * does not answer a request to another JID. */
static void test_iq_edges(void)
{
    char a[32], buf[256];
    uint16_t h = 0;
    online();
    feed("<iq type='get' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", 0);
    KT_CHECK_STR(out, "<iq type='result' to='localhost'/>");
    out_len = 0;
    out[0] = 0;
    KT_CHECK_EQ(kl_send_iq(&cl, "bob@localhost/x", "get", "<query xmlns='jabber:iq:version'/>", 0, &h), KL_OK);
    drain();
    iq_id_of(0, a, sizeof a);
    snprintf(buf, sizeof buf, "<iq type='result' id='%s'/>", a);
    feed(buf, 0);
    KT_CHECK_STR(log_, "[stanza iq]");
    KT_CHECK_EQ(kl_client_stats(&cl)->iq_unmatched, 1);
    snprintf(buf, sizeof buf, "<iq type='result' id='%s' from='bob@localhost/x'/>", a);
    feed(buf, 0);
    snprintf(buf, sizeof buf, "[stanza iq][iq-result %u]", h);
    KT_CHECK_STR(log_, buf);
}

/* A stream error's condition is the first child in its namespace (text
 * and foreign elements before it do not count). */
static void test_stream_error_foreign_child(void)
{
    reset(KL_PIPELINING_SAFE);
    feed(HDR "<stream:error><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no<b/>pe</text><x xmlns='urn:other'/>"
             "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>", 0);
    KT_CHECK_STR(log_, "[error stream error from peer conflict]");
    reset(KL_PIPELINING_SAFE);
    feed(HDR "<stream:error><x xmlns='urn:other'/></stream:error>", 0);
    KT_CHECK_STR(log_, "[error stream error from peer undefined-condition]");
}

#if KL_ENABLE_S2S
#define S2S_HDR "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " \
                "from='peer.test' to='sensor.test' version='1.0'>"
#define S2S_EXT "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL" \
                "</mechanism></mechanisms><bidi xmlns='urn:xmpp:features:bidi'/></stream:features>"

static void s2s_cfg(kl_client_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->jid = "sensor.test";
    cfg->s2s = 1;
    cfg->s2s_to = "peer.test";
    cfg->pipelining = KL_PIPELINING_SAFE;
    cfg->random = kt_random;
}

/* As the server sensor.test to peer.test, up to the verified handshake. */
static void s2s_tls(const kl_client_config_t *cfg)
{
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    last_status = 0;
    KT_CHECK_EQ(kl_client_init(&cl, cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    drain();
    feed(S2S_HDR "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>" PROCEED, 0);
    out_len = 0;
    out[0] = 0;
    kl_engine_tls_done(&cl, 1);
    drain();
}

/* Online as the server sensor.test to peer.test (bidi, EXTERNAL). */
static void s2s_online(void)
{
    kl_client_config_t cfg;
    s2s_cfg(&cfg);
    s2s_tls(&cfg);
    feed(S2S_HDR S2S_EXT "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" S2S_HDR "<stream:features/>", 0);
    KT_CHECK(kl_client_is_online(&cl));
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
}

/* s2s never takes SASL2's list (it has no EXTERNAL there): RFC 6120's
 * EXTERNAL where a peer offers both. */
static void test_s2s_ignores_sasl2(void)
{
    kl_client_config_t cfg;
    s2s_cfg(&cfg);
    s2s_tls(&cfg);
    feed(S2S_HDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL"
                 "</mechanism></mechanisms><authentication xmlns='urn:xmpp:sasl:2'><mechanism>PLAIN</mechanism>"
                 "</authentication></stream:features>", 0);
    KT_CHECK(strstr(out, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>") != NULL);
    KT_CHECK(strstr(out, "<authenticate") == NULL);
    KT_CHECK_EQ(last_status, 0);
}

/* EXTERNAL rides with the header on the hints' word only when flights are
 * pipelined and the hints name EXTERNAL. */
static void test_s2s_hints_pipelining(void)
{
    static kl_cache_t k;
    kl_client_config_t cfg;
    if (!KL_ENABLE_CACHE)
        return;
    kl_cache_reset(&k, "peer.test");
    s2s_cfg(&cfg);
    cfg.cache = &k;
    s2s_tls(&cfg); /* no hints yet: they are recorded */
    feed(S2S_HDR S2S_EXT "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" S2S_HDR "<stream:features/>", 0);
    KT_CHECK(kl_client_is_online(&cl));
    s2s_tls(&cfg);
    KT_CHECK(strstr(out, "mechanism='EXTERNAL'") != NULL);
    cfg.pipelining = KL_PIPELINING_OFF;
    s2s_tls(&cfg);
    KT_CHECK(strstr(out, "<stream:stream") != NULL);
    KT_CHECK(strstr(out, "<auth") == NULL);
    /* a peer that stopped offering EXTERNAL (the hints record it): nothing rides ahead next time */
    cfg.pipelining = KL_PIPELINING_SAFE;
    s2s_tls(&cfg);
    feed(S2S_HDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN"
                 "</mechanism></mechanisms></stream:features>", 0);
    s2s_tls(&cfg);
    KT_CHECK(strstr(out, "<stream:stream") != NULL);
    KT_CHECK(strstr(out, "<auth") == NULL);
}

/* s2s: the app's disco#info answer is from the request's to; a stanza that overflowed the writer is refused as too
 * large before its from is looked at. */
static void test_s2s_answers(void)
{
    static kl_app_t app;
    kl_xw_t w;
    static char big[KL_TX_BUF_SIZE + 64];
    s2s_online();
#if KL_ENABLE_APP
    KT_CHECK_EQ(kl_app_init(&app, &cl, NULL), KL_OK);
    out_len = 0;
    out[0] = 0;
    feed("<iq type='get' from='u@peer.test/r' to='sensor.test'>"
         "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>", 0);
    KT_CHECK(strstr(out, "<iq type='result' from='sensor.test' to='u@peer.test/r'><query") == out);
#endif
    (void)app;
    /* a request that broke a bound is answered before any check of its
     * addresses: without a to, the answer has no from (the peer judges) */
    out_len = 0;
    out[0] = 0;
    feed("<iq type='get' id='q1' from='peer.test'><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>"
         "</a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></iq>", 0);
    KT_CHECK_STR(out, "<iq type='error' id='q1' to='peer.test'><error type='modify'>"
                      "<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    KT_CHECK(kl_client_is_online(&cl));
    out_len = 0;
    out[0] = 0;
    memset(big, ' ', sizeof big - 1);
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    kl_xw_raw(&w, (const uint8_t *)"<message from='sensor.test' to='u@peer.test'>", 45);
    kl_xw_raw(&w, (const uint8_t *)big, sizeof big - 1);
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_ERR_TX_FULL);
    drain();
    KT_CHECK_STR(out, "");
    KT_CHECK(kl_client_is_online(&cl));
}
#endif

/* What the writer refuses other than for room is passed on as it is: a
 * message begun to a JID of bad UTF-8; an empty payload is no payload. */
static void test_writer_errors_named(void)
{
    uint16_t h = 0;
    online();
#if KL_ENABLE_APP
    KT_CHECK_EQ(kl_send_message_begin(&cl, "bob@localhost\xff", NULL), KL_ERR_XML_UTF8);
    drain();
    KT_CHECK_STR(out, "");
    KT_CHECK(kl_client_is_online(&cl));
#endif
    KT_CHECK_EQ(kl_send_iq(&cl, "localhost", "get", "", 0, &h), KL_OK);
    drain();
    KT_CHECK(strstr(out, "<iq to='localhost' type='get' id='") == out && strstr(out, "'/>") == out + out_len - 3);
    KT_CHECK(h != 0);
}

/* Full pipelining (XEP-0305) only where forced or seen to work (the
 * hints), never between servers. */
static void test_full_needs_evidence(void)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.random = kt_random;
    cfg.pipelining = KL_PIPELINING_FULL;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    KT_CHECK_EQ(kl_client_full_pipelining(&cl), 0); /* no hints */
    cfg.force_full = 1;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    KT_CHECK_EQ(kl_client_full_pipelining(&cl), KL_ENABLE_FULL);
#if KL_ENABLE_S2S
    s2s_cfg(&cfg);
    cfg.pipelining = KL_PIPELINING_FULL;
    cfg.force_full = 1;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_STARTTLS), KL_OK);
    KT_CHECK_EQ(kl_client_full_pipelining(&cl), 0);
#endif
    drain();
}

/* The application's IQ handles wrap past 65535 without 0 and without one
 * still pending. */
static void test_iq_handles_wrap(void)
{
    uint16_t keep = 0, h = 0, prev;
    long i, zero = 0, dup = 0, wraps = 0;
    online();
    KT_CHECK_EQ(kl_send_iq(&cl, NULL, "get", NULL, 0x7fffffffu, &keep), KL_OK);
    prev = keep;
    for (i = 0; i < 65536L; i++) {
        if (kl_send_iq(&cl, NULL, "get", NULL, 1, &h) != KL_OK) {
            KT_CHECK(0);
            break;
        }
        zero += h == 0;
        dup += h == keep;
        wraps += h < prev;
        prev = h;
        if (i % 3 == 2) {
            now_ms += 2;
            log_len = 0;
            pump();
            out_len = 0;
        }
    }
    KT_CHECK_EQ(zero, 0);
    KT_CHECK_EQ(dup, 0);
    KT_CHECK_EQ(wraps, 1);
    KT_CHECK(kl_client_is_online(&cl));
}

#if KL_ENABLE_SM
/* Under stream management a hand-built commit is one stanza, whole, of a
 * stanza's name; a writer that overflowed is refused for room. */
static void test_sm_commit_one_stanza(void)
{
    static uint8_t q[4096];
    static char big[KL_TX_BUF_SIZE + 64];
    static const char *const bad[] = {"<message to='bob@localhost'/><message to='bob@localhost'/>",
                                      "<message to='bob@localhost'>", "<x to='bob@localhost'/>",
                                      "<message to='bob@localhost'/>hi", "<message to='bob@localhost'/><mess", " ",
                                      "<message to='bob@localhost'/> ", ""};
    kl_client_config_t cfg;
    kl_xw_t w;
    size_t i;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.random = kt_random;
    cfg.sm_queue = q;
    cfg.sm_queue_size = sizeof q;
    out_len = log_len = 0;
    out[0] = log_[0] = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    feed(HDR FEAT_SASL SUCCESS HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
         "<sm xmlns='urn:xmpp:sm:3'/></stream:features>" BIND_RES, 0);
    KT_CHECK(strstr(out, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>") != NULL);
    feed("<enabled xmlns='urn:xmpp:sm:3' id='s1' resume='true'/>", 0);
    KT_CHECK(kl_client_is_online(&cl));
    out_len = 0;
    out[0] = 0;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
        kl_xw_raw(&w, (const uint8_t *)bad[i], strlen(bad[i]));
        KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_ERR_ARG);
    }
    memset(big, ' ', sizeof big - 1);
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    kl_xw_raw(&w, (const uint8_t *)"<message to='bob@localhost'>", 28);
    kl_xw_raw(&w, (const uint8_t *)big, sizeof big - 1);
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_ERR_TX_FULL);
    drain();
    KT_CHECK_STR(out, "");
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    kl_xw_raw(&w, (const uint8_t *)"<message to='bob@localhost'/>", 29);
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_OK);
    drain();
    KT_CHECK(strstr(out, "<message to='bob@localhost'/>") == out);
    KT_CHECK(kl_client_is_online(&cl));
}
#endif

/* The bind result's <jid/> among other children; a bind error's
 * condition is its first child but <text/>. */
static void test_bind_result_children(void)
{
    const char *p;
    reset(KL_PIPELINING_SAFE);
    feed(HDR FEAT_TLS PROCEED, 0);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL SUCCESS HDR FEAT_BIND, 0);
    feed("<iq type='result' id='kl-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><x>junk</x>"
         "<jid>alice@localhost/dev</jid></bind></iq>", 0);
    KT_CHECK(kl_client_is_online(&cl));
    KT_CHECK_STR(kl_client_jid(&cl), "alice@localhost/dev");
    reset(KL_PIPELINING_SAFE);
    feed(HDR FEAT_TLS PROCEED, 0);
    kl_engine_tls_done(&cl, 1);
    feed(HDR FEAT_SASL SUCCESS HDR FEAT_BIND, 0);
    feed("<iq type='error' id='kl-bind'><error type='cancel'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>x"
         "</text><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><not-allowed "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", 0);
    KT_CHECK_EQ(last_status, KL_ERR_BIND);
    p = strstr(log_, "[error ");
    KT_CHECK(p != NULL && strstr(p, " conflict]") != NULL);
    KT_CHECK(!kl_client_is_online(&cl));
}

/* A stanza with no bytes (as KL_EV_UNACKED hands back a long one): no
 * tokens, no child text, and no pointer arithmetic on NULL (UBSan). */
static void test_empty_stanza_view(void)
{
    kl_stanza_t st;
    kl_cursor_t cur;
    kl_xml_token_t t;
    char buf[16];
    online();
    memset(&st, 0, sizeof st);
    kl_cursor_init(&cur, &cl, &st);
    KT_CHECK_EQ(kl_cursor_next(&cur, &t), 0);
    KT_CHECK_EQ(kl_stanza_child_text(&cl, &st, "body", NULL, buf, sizeof buf), KL_ERR_ARG);
}

#if KL_ENABLE_S2S
/* s2s admission: a from whose domain is after the first '@' (a second '@'
 * is the domain's), or none at all, ends the stream invalid-from; a commit
 * is stanzas only, whole, at least one. */
static void test_s2s_addresses(void)
{
    static const char *const bad[] = {"<message from='sensor.test' to='u@peer.test'/> ", ""};
    kl_xw_t w;
    size_t i;
    s2s_online();
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
        kl_xw_raw(&w, (const uint8_t *)bad[i], strlen(bad[i]));
        KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_ERR_FROM_DOMAIN);
    }
    drain();
    KT_CHECK_STR(out, "");
    feed("<message from='u@x@peer.test' to='device@sensor.test'><body>x</body></message>", 0);
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
    KT_CHECK(strstr(out, "<invalid-from") != NULL);
    KT_CHECK(strstr(log_, "[stanza") == NULL);
    s2s_online();
    feed("<message to='device@sensor.test'><body>x</body></message>", 0);
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
    KT_CHECK(strstr(out, "<invalid-from") != NULL);
    KT_CHECK(strstr(log_, "[stanza") == NULL);
    s2s_online();
    feed("<message from='u@peer.test/a@b' to='device@sensor.test'><body>x</body></message>", 0);
    KT_CHECK_STR(log_, "[stanza message x]");
    /* no stream management between servers: its elements are none we know */
    feed("<r xmlns='urn:xmpp:sm:3'/>", 0);
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
    KT_CHECK(strstr(out, "<unsupported-stanza-type") != NULL);
}
#endif

/* Negotiation elements out of their place end the stream policy-violation:
 * <proceed/> before we asked, RFC 6120's <success/> to a SASL2
 * <authenticate/>, SASL2's <success/> once authenticated. */
static void test_negotiation_out_of_place(void)
{
    kl_client_config_t cfg;
    reset(KL_PIPELINING_OFF);
    KT_CHECK(strstr(out, "<starttls") == NULL);
    feed(HDR PROCEED, 0);
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
    KT_CHECK(strstr(out, "<policy-violation") != NULL);
    KT_CHECK(strstr(log_, "[starttls]") == NULL);
#if KL_ENABLE_SASL2
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.random = kt_random;
    cfg.pipelining = KL_PIPELINING_OFF;
    sasl2_to_auth(&cfg);
    KT_CHECK(strstr(out, "<authenticate") != NULL);
    feed(SUCCESS, 0);
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
    KT_CHECK(strstr(out, "<policy-violation") != NULL);
    KT_CHECK(!kl_client_is_online(&cl));
    sasl2_to_auth(&cfg);
    feed("<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@localhost/dev"
         "</authorization-identifier></success>", 0);
    KT_CHECK_EQ(last_status, 0); /* authenticated: binding next */
    feed("<success xmlns='urn:xmpp:sasl:2'/>", 0);
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
    KT_CHECK(strstr(out, "<policy-violation") != NULL);
#endif
    (void)cfg;
}

static void test_bad_config(void)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "nodomain";
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_ERR_ARG);
    cfg.jid = "@x";
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_ERR_ARG);
    KT_CHECK_EQ(kl_client_init(&cl, NULL), KL_ERR_ARG);
}

int main(void)
{
    KT_RUN(test_login_safe_every_split);
    KT_RUN(test_login_off);
    KT_RUN(test_messages_and_pings);
    KT_RUN(test_iq_roundtrip_and_timeout);
    KT_RUN(test_large_stanza_streams);
    KT_RUN(test_close);
    KT_RUN(test_close_during_tls);
    KT_RUN(test_nothing_after_close);
    KT_RUN(test_no_starttls_never_sends_password);
    KT_RUN(test_bytes_after_proceed);
    KT_RUN(test_starttls_failure);
    KT_RUN(test_auth_failure);
    KT_RUN(test_unverified_tls_waits_for_features);
    KT_RUN(test_stream_error);
    KT_RUN(test_hostile_input);
    KT_RUN(test_negotiation_timeout);
    KT_RUN(test_bad_config);
    KT_RUN(test_close_before_online);
    KT_RUN(test_iq_ids_and_senders);
    KT_RUN(test_spoofed_roster_not_cached);
    KT_RUN(test_bound_jid_checked);
    KT_RUN(test_credentials_need_verified_channel);
    KT_RUN(test_stream_version);
    KT_RUN(test_limits_after_online_drop_the_stanza);
    KT_RUN(test_dropped_iq_request_answered);
    KT_RUN(test_streamed_stanza_dropped_late);
    KT_RUN(test_large_iq_request_answered);
    KT_RUN(test_limits_after_close_are_silent);
    KT_RUN(test_keepalive_ping);
    KT_RUN(test_dead_peer);
    KT_RUN(test_keepalive_idle_seconds);
    KT_RUN(test_keepalive_off_and_configured);
    KT_RUN(test_api_arguments);
    KT_RUN(test_server_disco_cached);
    KT_RUN(test_jid_forms);
    KT_RUN(test_plaintext_allowed);
    KT_RUN(test_cdata_at_stream_level);
#if KL_ENABLE_SASL2
    KT_RUN(test_sasl2_without_hints);
#endif
    KT_RUN(test_empty_commit);
    KT_RUN(test_scram_hints_entropy_fails);
    KT_RUN(test_roster_ver_unterminated);
#if KL_ENABLE_APP
    KT_RUN(test_presence_caps);
    KT_RUN(test_close_with_tx_full);
#endif
    KT_RUN(test_jid_split_edges);
    KT_RUN(test_iq_edges);
    KT_RUN(test_stream_error_foreign_child);
    KT_RUN(test_writer_errors_named);
    KT_RUN(test_full_needs_evidence);
    KT_RUN(test_iq_handles_wrap);
    KT_RUN(test_bind_result_children);
    KT_RUN(test_empty_stanza_view);
    KT_RUN(test_negotiation_out_of_place);
#if KL_ENABLE_SM
    KT_RUN(test_sm_commit_one_stanza);
#endif
#if KL_ENABLE_S2S
    KT_RUN(test_s2s_answers);
    KT_RUN(test_s2s_ignores_sasl2);
    KT_RUN(test_s2s_hints_pipelining);
    KT_RUN(test_s2s_addresses);
#endif
#if KL_ENABLE_SASL2
    KT_RUN(test_bind2_tag_and_csi);
    KT_RUN(test_fast_token_provisioned_unused);
    KT_RUN(test_fast_request_token_needs);
    KT_RUN(test_no_sasl2_uses_rfc6120);
    KT_RUN(test_sasl2_ua_without_entropy);
    KT_RUN(test_sasl2_failure_condition);
#endif
    /* budget: the whole client, buffers included, in 8 KB without TLS */
    KT_CHECK(sizeof(kl_client_t) <= 8192);
    printf("sizeof(kl_client_t) = %zu\n", sizeof(kl_client_t));
    return kt_summary("engine");
}
