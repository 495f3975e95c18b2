/* kinglet — the session engine: stream negotiation, the pipelining
 * planner, stanza delivery. Sans-I/O: see kinglet.h for the contract. */
#include "kl_string.h"

#define KL_CORE_BUILD 1 /* core/: kl_client_t's members by their own names */
#include "kinglet/kinglet.h"
#include "kinglet/kl_app.h"
#include "kl_internal.h"

/* ---- namespaces --------------------------------------------------------- */
#define NS_STREAMS "http://etherx.jabber.org/streams"
#define NS_CLIENT "jabber:client"
#define NS_SERVER "jabber:server"
#define NS_BIDI_FEATURE "urn:xmpp:features:bidi"
#define NS_BIDI "urn:xmpp:bidi"
#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_STREAM_ERR "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_PIPELINING "urn:xmpp:features:pipelining"
#define NS_PING "urn:xmpp:ping"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_ROSTERVER "urn:xmpp:features:rosterver"
#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_ROSTER "jabber:iq:roster"
#define NS_SM "urn:xmpp:sm:3"
#define NS_LIMITS "urn:xmpp:stream-limits:0"
#define NS_SASL2 "urn:xmpp:sasl:2"
#define NS_BIND2 "urn:xmpp:bind:0"
#define NS_FAST "urn:xmpp:fast:0"
#define NS_SASL_CB "urn:xmpp:sasl-cb:0"
#define NS_CSI "urn:xmpp:csi:0"

/* ---- state ---------------------------------------------------------------- */
enum {
    ST_INIT = 0,  /* not connected */
    ST_NEG,       /* first stream, before TLS */
    ST_TLS_WAIT,  /* the port runs the TLS handshake */
    ST_AUTH,      /* stream that authenticates (after TLS) */
    ST_BIND,      /* stream after SASL success */
    ST_ONLINE,
    ST_CLOSING,   /* we sent </stream:stream> */
    ST_DONE       /* closed or failed; final event reported */
};

enum {
    FL_TLS = 1u << 0,
    FL_TLS_VERIFIED = 1u << 1,
    FL_SENT_STARTTLS = 1u << 2,
    FL_SENT_AUTH = 1u << 3,
    FL_SENT_BIND = 1u << 4,
    FL_GOT_HEADER = 1u << 5,
    FL_GOT_FEATURES = 1u << 6,
    FL_SENT_CLOSE = 1u << 7,
    FL_SENT_SESSION = 1u << 8,
    FL_AUTH_RETRY = 1u << 9,   /* the mechanism we pipelined is not on offer */
    FL_SCRAM_FINAL = 1u << 10, /* SCRAM client-final sent */
    FL_REPORT_CLOSED = 1u << 11, /* closed while TLS was starting: KL_EV_CLOSED owed */
    /* full pipelining's flags are 0 when it is compiled out: every test of
     * them folds away */
    FL_FULL = KL_ENABLE_FULL ? 1u << 12 : 0,      /* XEP-0305 full flights on this connection */
    FL_EARLY_TLS = KL_ENABLE_FULL ? 1u << 13 : 0, /* KL_EV_START_TLS (early) owed / TLS started before <proceed/> */
    FL_SENT_RESTART = KL_ENABLE_FULL ? 1u << 14 : 0 /* the post-auth stream header went with <auth/> */
};

enum { /* c->feat */
    FT_STARTTLS = 1u << 0,
    FT_MECHS = 1u << 1,
    FT_BIND = 1u << 2,
    FT_SESSION_REQ = 1u << 3,
    FT_SM = 1u << 4, /* urn:xmpp:sm:3 (XEP-0198) */
    FT_PIPELINING = 1u << 5,
    FT_ROSTERVER = 1u << 6,
    FT_CAPS = 1u << 7,
    FT_BIDI = 1u << 8,
    /* SASL2 (post-TLS stream; 0 when compiled out, so every test folds) */
    FT_SASL2 = KL_ENABLE_SASL2 ? 1u << 9 : 0,        /* <authentication xmlns='urn:xmpp:sasl:2'> */
    FT_BIND2 = KL_ENABLE_SASL2 ? 1u << 10 : 0,       /* inline Bind2 */
    FT_BIND2_SM = KL_ENABLE_SASL2 ? 1u << 11 : 0,    /* Bind2 inline feature urn:xmpp:sm:3 */
    FT_BIND2_CSI = KL_ENABLE_SASL2 ? 1u << 12 : 0,   /* Bind2 inline feature urn:xmpp:csi:0 */
    FT_INLINE_SM = KL_ENABLE_SASL2 ? 1u << 13 : 0,   /* SASL2 inline <sm/>: resume in <authenticate/> */
    FT_CB_EXPORTER = KL_ENABLE_SASL2 ? 1u << 14 : 0, /* XEP-0440: channel binding tls-exporter */
    FT_CSI = KL_ENABLE_CSI ? 1u << 15 : 0            /* urn:xmpp:csi:0 (XEP-0352) */
};

#if KL_ENABLE_SASL2
#define S2_SENT_ON(c) (((c)->s2 & S2_SENT) != 0)
#else
#define S2_SENT_ON(c) 0
#endif
enum { /* c->s2: SASL2 on this connection */
    S2_SENT = 1u << 0,       /* <authenticate/> is out */
    S2_BIND = 1u << 1,       /* it carries a Bind2 request */
    S2_RESUME = 1u << 2,     /* it carries <resume/> */
    S2_TOKEN_REQ = 1u << 3,  /* it asks for a FAST token */
    S2_PROVISIONED = 1u << 4 /* the token in use is the configured one */
};

enum { /* c->stanza_kind */
    SK_NONE = 0,
    SK_STANZA, /* message / presence / iq in the stream namespace */
    SK_OTHER   /* negotiation elements, stream errors, unknown */
};

enum { STREAMING_OFF = 0, STREAMING_REPLAY, STREAMING_LIVE };

/* Output kept free before input is processed, so that automatic answers
 * (ping, disco#info, </stream:stream>) always fit. */
#define TX_RESERVE KL_TX_RESERVE

static const char bind_id[] = "kl-bind";
static const char session_id[] = "kl-sess";
static const char ping_id[] = "kl-ping"; /* the keepalive ping (XEP-0199) */

/* Features that can be compiled out (kl_config_defaults.h): with a switch
 * at 0 these are constants and the compiler drops the code behind them. */
#define IS_S2S(c) (KL_ENABLE_S2S && (c)->cfg.s2s)
#define CACHE(c) (KL_ENABLE_CACHE ? (c)->cfg.cache : (kl_cache_t *)0)

#if KL_ENABLE_APP
static void app_disco(kl_client_t *c, const kl_stanza_t *st, const kl_xml_token_t *q);
#endif
#define CRYPTO(c) (KL_ENABLE_SCRAM ? (c)->cfg.crypto : (const kl_crypto_t *)0)
#define FULL_ON KL_ENABLE_FULL

static uint8_t choose_mech(const kl_client_t *c, uint8_t mechs);
static int go_online(kl_client_t *c, kl_event_t *ev);
static const char *mech_name(uint8_t bit);
static int get_random(const kl_client_t *c, uint8_t *out, size_t len);
#if KL_ENABLE_SASL2
static int sasl2_start(kl_client_t *c, kl_xw_t *w, uint8_t mechs);
#endif
#if KL_ENABLE_SASL2
#define SASL2_ON(c) (!IS_S2S(c) && !(c)->cfg.no_sasl2)
#else
#define SASL2_ON(c) 0
#endif

static int time_reached(uint32_t now, uint32_t deadline) { return (int32_t)(now - deadline) >= 0; }

/* ---- output ---------------------------------------------------------------- */

static void tx_compact(kl_client_t *c)
{
    if (c->tx_sent == 0)
        return;
    memmove(c->tx, c->tx + c->tx_sent, c->tx_len - c->tx_sent);
    c->tx_len -= c->tx_sent;
    c->tx_sent = 0;
}

static void out_begin(kl_client_t *c, kl_xw_t *w)
{
    tx_compact(c);
    kl_xw_init(w, c->tx + c->tx_len, sizeof c->tx - c->tx_len);
}

/* Queue what w wrote. A flight is everything written between two waits
 * for input; before online every flight is one the engine waits on. */
static int out_commit(kl_client_t *c, const kl_xw_t *w)
{
    int st = kl_xw_status(w);
    if (st == KL_ERR_WRITE_FULL)
        return KL_ERR_TX_FULL;
    if (st != KL_OK)
        return st;
    if (w->len == 0)
        return KL_OK;
    c->tx_len += w->len;
    c->stats.bytes_out += (uint32_t)w->len;
    c->last_tx = c->now;
    if (!c->flight_open) {
        c->flight_open = 1;
        c->stats.flights_total++;
        if (c->state < ST_ONLINE) {
            c->stats.flights_out++;
            c->stats.engine_round_trips++;
        }
    }
    return KL_OK;
}

static void w_cstr(kl_xw_t *w, const char *s) { kl_xw_raw(w, (const uint8_t *)s, strlen(s)); }

static const char *stream_ns(const kl_client_t *c) { return IS_S2S(c) ? NS_SERVER : NS_CLIENT; }

/* An attribute whose value is a raw (still escaped) slice the tokenizer
 * validated: copied as is. It holds no '<', only valid references, and at
 * most one kind of quote (the other one delimited it): we use the other. */
static void w_attr_raw(kl_xw_t *w, const char *name, kl_slice_t raw)
{
    const uint8_t *q = (const uint8_t *)(memchr(raw.p, '\'', raw.len) ? "\"" : "'");
    uint8_t open = w->tag_open;
    /* kl_xw_raw closes an open start tag; here we are still inside it */
    w->tag_open = 0;
    kl_xw_raw(w, (const uint8_t *)" ", 1);
    w_cstr(w, name);
    kl_xw_raw(w, (const uint8_t *)"=", 1);
    kl_xw_raw(w, q, 1);
    kl_xw_raw(w, raw.p, raw.len);
    kl_xw_raw(w, q, 1);
    w->tag_open = open;
}

static void w_stream_header(kl_client_t *c, kl_xw_t *w)
{
    w_cstr(w, "<?xml version='1.0'?>");
    kl_xw_start(w, "stream:stream");
    kl_xw_attr(w, "xmlns", stream_ns(c));
    kl_xw_attr(w, "xmlns:stream", NS_STREAMS);
    kl_xw_attr(w, "to", c->domain);
    /* A client's identity goes out only once the channel is encrypted; a
     * server names its domain from the start (RFC 6120 4.7.1). */
    if ((c->flags & FL_TLS) || IS_S2S(c))
        kl_xw_attr_n(w, "from", (const uint8_t *)c->cfg.jid, c->bare_len);
    kl_xw_attr(w, "version", "1.0");
    kl_xw_attr(w, "xml:lang", "en");
    kl_xw_close_start(w);
}

/* "<name xmlns='ns'" + tail: the namespace strings are shared with the
 * parser's (the linker merges equal strings), which keeps small images small */
static void w_el(kl_xw_t *w, const char *name, const char *ns, const char *tail)
{
    w_cstr(w, name);
    w_cstr(w, " xmlns='");
    w_cstr(w, ns);
    w_cstr(w, tail);
}

static void w_starttls(kl_xw_t *w) { w_el(w, "<starttls", NS_TLS, "'/>"); }

/* PLAIN's message, base64: authzid (empty) NUL authcid NUL password, RFC
 * 4616 (RFC 6120's <auth/> and SASL2's <initial-response/> carry it) */
static void w_plain_response(kl_client_t *c, kl_xw_t *w)
{
    kl_b64_t b;
    const char *pw = c->cfg.password ? c->cfg.password : "";
    kl_b64_init(&b, w);
    kl_b64_feed(&b, (const uint8_t *)"", 1);
    kl_b64_feed(&b, (const uint8_t *)c->cfg.jid, c->local_len);
    kl_b64_feed(&b, (const uint8_t *)"", 1);
    kl_b64_feed(&b, (const uint8_t *)pw, strlen(pw));
    kl_b64_finish(&b);
}

static void w_auth_plain(kl_client_t *c, kl_xw_t *w)
{
    w_el(w, "<auth", NS_SASL, "' mechanism='PLAIN'>");
    w_plain_response(c, w);
    w_cstr(w, "</auth>");
}

#if KL_ENABLE_SCRAM
/* <auth/> with SCRAM's client-first message */
static int w_auth_scram(kl_client_t *c, kl_xw_t *w, uint8_t mech)
{
    int st;
    w_el(w, "<auth", NS_SASL, "' mechanism='");
    w_cstr(w, mech_name(mech));
    w_cstr(w, "'>");
    if ((st = kl_scram_start(c, w, mech)) != KL_OK)
        return st;
    w_cstr(w, "</auth>");
    return KL_OK;
}
#else
#define w_auth_scram(c, w, mech) KL_ERR_NO_MECHANISM
#endif

/* s2s: <bidi/> (when offered; there is no answer, so it rides along) and
 * SASL EXTERNAL with our domain as authorization identity (XEP-0178). */
static void w_auth_external(kl_client_t *c, kl_xw_t *w, int bidi)
{
    kl_b64_t b;
    if (bidi)
        w_cstr(w, "<bidi xmlns='" NS_BIDI "'/>");
    w_el(w, "<auth", NS_SASL, "' mechanism='EXTERNAL'>");
    kl_b64_init(&b, w);
    kl_b64_feed(&b, (const uint8_t *)c->cfg.jid, c->bare_len);
    kl_b64_finish(&b);
    w_cstr(w, "</auth>");
}

static const char *jid_resource(const kl_client_t *c)
{
    return c->cfg.jid[c->bare_len] == '/' ? c->cfg.jid + c->bare_len + 1 : NULL;
}

static void w_bind(kl_client_t *c, kl_xw_t *w)
{
    const char *res = jid_resource(c);
    kl_xw_start(w, "iq");
    kl_xw_attr(w, "type", "set");
    kl_xw_attr(w, "id", bind_id);
    kl_xw_start(w, "bind");
    kl_xw_attr(w, "xmlns", NS_BIND);
    if (res && *res) {
        kl_xw_start(w, "resource");
        kl_xw_text(w, (const uint8_t *)res, strlen(res));
        kl_xw_end(w, "resource");
    }
    kl_xw_end(w, "bind");
    kl_xw_end(w, "iq");
}

/* ---- failing ---------------------------------------------------------------- */

static void set_condition(kl_client_t *c, kl_slice_t s)
{
    size_t n = s.len < sizeof c->condition - 1 ? s.len : sizeof c->condition - 1;
    memcpy(c->condition, s.p, n);
    c->condition[n] = '\0';
}

static void set_condition_str(kl_client_t *c, const char *s)
{
    kl_slice_t sl = {(const uint8_t *)s, strlen(s)};
    set_condition(c, sl);
}

static const char *xml_error_condition(int status)
{
    switch (status) {
    case KL_ERR_XML_COMMENT:
    case KL_ERR_XML_PI:
    case KL_ERR_XML_DTD:
    case KL_ERR_XML_ENTITY:
        return "restricted-xml";
    case KL_ERR_XML_DEPTH:
    case KL_ERR_XML_STACK:
    case KL_ERR_XML_NAME_TOO_LONG:
    case KL_ERR_XML_ATTR_TOO_LONG:
    case KL_ERR_RX_FULL:
        return "policy-violation";
    case KL_ERR_XML_NAMESPACE:
        return "invalid-namespace";
    default:
        return "not-well-formed";
    }
}

/* Our </stream:stream>; nothing may follow it (RFC 6120 4.4). */
static int send_close(kl_client_t *c)
{
    kl_xw_t w;
    int st;
    out_begin(c, &w);
    w_cstr(&w, "</stream:stream>");
    if ((st = out_commit(c, &w)) == KL_OK)
        c->flags |= FL_SENT_CLOSE;
    return st;
}

/* The session is over: our side is closed (if there is a stream to close)
 * and one final event reported; after it poll returns 0 for good. */
static int finish(kl_client_t *c, int status, kl_event_t *ev)
{
    if (c->state != ST_TLS_WAIT && c->state != ST_INIT && !(c->flags & FL_SENT_CLOSE))
        (void)send_close(c);
    c->state = ST_DONE;
    c->final_status = status;
#if KL_ENABLE_SM
    /* our clean close is complete: the server handled what we sent, and the
     * session is over. (After an error the state stays for the next
     * connect: resumed, or handed back.) */
    if (status == KL_OK)
        kl_sm_reset(c);
#endif
    ev->type = status == KL_OK ? KL_EV_CLOSED : KL_EV_ERROR;
    ev->status = status;
    ev->condition = c->condition;
    return 1;
}

/* End the session: tell the peer why where that helps, close our side,
 * and report one KL_EV_ERROR. `send_error` names a stream error condition
 * we send, or NULL. */
static int fail(kl_client_t *c, int status, const char *send_error, kl_event_t *ev)
{
    if (send_error && (c->flags & FL_GOT_HEADER) && !(c->flags & FL_SENT_CLOSE) && c->state != ST_TLS_WAIT) {
        kl_xw_t w;
        out_begin(c, &w);
        w_cstr(&w, "<stream:error><");
        w_el(&w, send_error, NS_STREAM_ERR, "'/></stream:error>");
        (void)out_commit(c, &w);
    }
    if (send_error && !c->condition[0])
        set_condition_str(c, send_error);
    if ((c->flags & FL_FULL) && c->state < ST_ONLINE && CACHE(c)) {
        /* the next connect uses safe (security rule 5: a wrong pipelined
         * assumption ends cleanly and updates the cache) */
        CACHE(c)->flags |= KL_CACHE_FULL_FAILED;
        kl_cache_seal(CACHE(c));
    }
    return finish(c, status, ev);
}

/* Queue a negotiation step; a transmit buffer too small for it ends the
 * session (there is no later chance to send it). 0, or 1 with the event. */
static int commit_step(kl_client_t *c, const kl_xw_t *w, kl_event_t *ev)
{
    int st = out_commit(c, w);
    return st == KL_OK ? 0 : fail(c, st, NULL, ev);
}

/* Malformed or forbidden XML from the peer: the stream error names why. */
static int fail_xml(kl_client_t *c, int status, kl_event_t *ev)
{
    return fail(c, status, xml_error_condition(status), ev);
}

/* ---- JID -------------------------------------------------------------------- */

static int parse_jid(kl_client_t *c, const char *jid)
{
    size_t n = strlen(jid), at = n, slash = n, i;
    for (i = 0; i < n; i++) {
        if (jid[i] == '@' && at == n)
            at = i;
        else if (jid[i] == '/') { /* the first '/' ends the loop */
            slash = i;
            break;
        }
    }
    if (at == n || at == 0 || slash == at + 1)
        return KL_ERR_ARG;
    if (slash - at - 1 >= KL_JID_MAX || n >= 0xffff)
        return KL_ERR_JID_TOO_LONG;
    memcpy(c->domain, jid + at + 1, slash - at - 1);
    c->domain[slash - at - 1] = '\0';
    c->local_len = (uint16_t)at;
    c->bare_len = (uint16_t)slash;
    return KL_OK;
}

/* JIDs compared as RFC 7622 asks, as far as a device can without PRECIS
 * tables: local and domain parts equal up to ASCII case, resources equal
 * byte for byte. */
static int jid_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i;
    int bare = 1;
    if (alen != blen)
        return 0;
    for (i = 0; i < alen; i++) {
        uint8_t x = (uint8_t)a[i], y = (uint8_t)b[i];
        if (x == '/')
            bare = 0;
        if (bare && x >= 'A' && x <= 'Z')
            x = (uint8_t)(x | 0x20);
        if (bare && y >= 'A' && y <= 'Z')
            y = (uint8_t)(y | 0x20);
        if (x != y)
            return 0;
    }
    return 1;
}

/* ---- lifecycle -------------------------------------------------------------- */

/* s2s: jid is our domain, s2s_to the peer's; c->domain is the peer. */
static int parse_s2s(kl_client_t *c, const char *ours, const char *peer)
{
    size_t n = strlen(ours), m = peer ? strlen(peer) : 0;
    if (n == 0 || m == 0 || memchr(ours, '@', n) || memchr(ours, '/', n) || memchr(peer, '@', m) ||
        memchr(peer, '/', m))
        return KL_ERR_ARG;
    if (n >= KL_JID_MAX || m >= KL_JID_MAX)
        return KL_ERR_JID_TOO_LONG;
    memcpy(c->domain, peer, m + 1);
    c->bare_len = (uint16_t)n;
    c->local_len = 0;
    return KL_OK;
}

int kl_client_init(kl_client_t *c, const kl_client_config_t *cfg)
{
    int st;
    if (!c || !cfg || !cfg->jid || cfg->pipelining > KL_PIPELINING_FULL)
        return KL_ERR_ARG;
    memset(c, 0, sizeof *c);
    c->cfg = *cfg;
    if (!c->cfg.iq_timeout_ms)
        c->cfg.iq_timeout_ms = KL_IQ_TIMEOUT_MS;
    /* keepalive: KL_KEEPALIVE_OFF becomes the longest interval the clock
     * arithmetic allows (24.8 days) */
    if (!c->cfg.keepalive_ms)
        c->cfg.keepalive_ms = KL_KEEPALIVE_MS;
    if (c->cfg.keepalive_ms > 0x7fffffffu)
        c->cfg.keepalive_ms = 0x7fffffffu;
    if (!c->cfg.keepalive_timeout_ms)
        c->cfg.keepalive_timeout_ms = KL_KEEPALIVE_TIMEOUT_MS;
#if KL_ENABLE_SM
    if (!c->cfg.sm_ack_every)
        c->cfg.sm_ack_every = KL_SM_ACK_EVERY;
    if (!c->cfg.sm_ack_ms)
        c->cfg.sm_ack_ms = KL_SM_ACK_MS;
    if (!c->cfg.sm_ack_idle_ms)
        c->cfg.sm_ack_idle_ms = KL_SM_ACK_IDLE_MS;
#endif
    if (cfg->s2s) {
        if (!KL_ENABLE_S2S)
            return KL_ERR_ARG; /* compiled out */
        c->cfg.allow_plaintext = 0; /* s2s authenticates with the TLS certificate */
        st = parse_s2s(c, cfg->jid, cfg->s2s_to);
    } else {
        st = parse_jid(c, cfg->jid);
    }
    if (st == KL_OK && !cfg->random && !(cfg->crypto && cfg->crypto->random))
        st = KL_ERR_NO_ENTROPY;
    return st;
}

#if KL_ENABLE_SM
/* ---- stream management (XEP-0198): what goes where bind would ---------------- */

/* The application gave a queue and this is a client stream. */
static int sm_usable(const kl_client_t *c)
{
    return !IS_S2S(c) && c->cfg.sm_queue && c->cfg.sm_queue_size > KL_SM_REC_HDR;
}

/* Does the stream after authentication offer urn:xmpp:sm:3? Its features
 * when they are in, else the hints, else `guess`. */
static int sm_offered(const kl_client_t *c, int guess)
{
    const kl_cache_t *k = CACHE(c);
    if (c->state == ST_BIND && (c->flags & FL_GOT_FEATURES))
        return (c->feat & FT_SM) != 0;
    if (k && (k->known & KL_CACHE_KNOWN_POST_AUTH))
        return (k->feat[2] & FT_SM) != 0;
    return guess;
}

static void w_u32(kl_xw_t *w, uint32_t v)
{
    char b[10];
    size_t i = sizeof b;
    do
        b[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    kl_xw_raw(w, (const uint8_t *)b + i, sizeof b - i);
}

/* <enable/> starts a new session: from here on our stanzas are numbered
 * from 1 (the server counts from its receipt), the old session is gone
 * (stanzas still in the queue from it are handed back at online). */
static void w_enable(kl_client_t *c, kl_xw_t *w)
{
    kl_sm_t *s = &c->sm;
    w_el(w, "<enable", NS_SM, "' resume='true'/>");
    s->on = KL_SM_REQUESTED;
    s->out = s->acked = s->h_in = s->max_s = 0;
    s->resumable = 0;
    s->id[0] = s->location[0] = '\0';
    s->unreq = 0;
}

static void w_resume(kl_client_t *c, kl_xw_t *w)
{
    w_el(w, "<resume", NS_SM, "' h='");
    w_u32(w, c->sm.h_in);
    w_cstr(w, "'");
    w->tag_open = 1; /* previd, escaped, in the same start tag */
    kl_xw_attr(w, "previd", c->sm.id);
    kl_xw_end(w, "resume");
    c->sm.resuming = 1;
}
#endif

/* What follows authentication: <resume/> when a stream-management session
 * can be resumed (and the server offers it, or may), else the bind request
 * with <enable/> right behind it when the server is known to offer stream
 * management (its features, or the hints) and flights are pipelined. */
static void w_session(kl_client_t *c, kl_xw_t *w)
{
#if KL_ENABLE_SM
    if (sm_usable(c) && c->sm.resumable && sm_offered(c, 1)) {
        w_resume(c, w);
        c->flags |= FL_SENT_BIND;
        return;
    }
#endif
    w_bind(c, w);
    c->flags |= FL_SENT_BIND;
#if KL_ENABLE_SM
    /* a new session: the old one cannot be resumed any more, and what is
     * still queued is its, handed back at online (nothing new can be
     * queued before that) */
    c->sm.handback = c->sm.records;
    c->sm.resumable = 0;
    c->sm.id[0] = '\0';
    if (sm_usable(c) && c->cfg.pipelining >= KL_PIPELINING_SAFE && !c->sm.on && sm_offered(c, 0))
        w_enable(c, w);
#endif
}

static void w_restart_and_bind(kl_client_t *c, kl_xw_t *w)
{
    w_stream_header(c, w);
    w_session(c, w);
    c->flags |= FL_SENT_RESTART;
}

/* Security rules 1 and 4: a credential (PLAIN, SCRAM, EXTERNAL's identity)
 * leaves only over TLS the port verified, unless the application allowed
 * otherwise. One place for every mechanism and every framing. */
static int credential_status(const kl_client_t *c)
{
    if (c->cfg.allow_plaintext || (c->flags & FL_TLS_VERIFIED))
        return KL_OK;
    return (c->flags & FL_TLS) ? KL_ERR_UNVERIFIED : KL_ERR_PLAINTEXT;
}

/* The first flight of the stream that runs over TLS. safe: after a
 * verified handshake PLAIN rides with the header, unless the configuration
 * rules PLAIN out. */
static void w_tls_stream_start(kl_client_t *c, kl_xw_t *w)
{
    uint8_t mech = 0;
    const kl_cache_t *k = CACHE(c);
    w_stream_header(c, w);
    if (IS_S2S(c)) {
        /* <bidi/> must ride with <auth/> and only where offered: without
         * hints we wait for the features (Prosody closes on an unknown
         * element and on a <bidi/> after success). */
        if (c->cfg.pipelining >= KL_PIPELINING_SAFE && (c->flags & FL_TLS_VERIFIED) && k &&
            (k->known & KL_CACHE_KNOWN_POST_TLS) && (k->mechs & KL_MECH_EXTERNAL)) {
            c->bidi = (k->feat[1] & FT_BIDI) ? 1 : 0;
            w_auth_external(c, w, c->bidi);
            c->flags |= FL_SENT_AUTH;
            c->sasl_mech = KL_MECH_EXTERNAL;
        }
        return;
    }
    /* over a channel the application allowed without verification (BOSH
     * over http:// with allow_plaintext) the same flight goes */
    if (c->cfg.pipelining < KL_PIPELINING_SAFE || credential_status(c) != KL_OK ||
        (!KL_ENABLE_SASL2 && !c->cfg.password))
        return;
#if KL_ENABLE_SASL2
    /* the hints say SASL2: <authenticate/> (with Bind2, inline
     * resumption, a FAST token) rides with the header; online at its
     * <success/>, no restart */
    if (!c->cfg.no_sasl2 && k && (k->known & KL_CACHE_KNOWN_POST_TLS) && (k->feat[1] & FT_SASL2)) {
        /* (SASL2_ON less its !IS_S2S: s2s returned above) */
        size_t mark = w->len;
        if (sasl2_start(c, w, k->mechs) != KL_OK)
            w->len = mark; /* send_auth reports why, once the features are in */
        return;
    }
    if (!c->cfg.password)
        return;
#endif
    if (k && (k->known & KL_CACHE_KNOWN_POST_TLS))
        mech = choose_mech(c, k->mechs); /* what the server offered last time */
    else if (!c->cfg.no_plain)
        mech = KL_MECH_PLAIN;
    if (mech == KL_MECH_PLAIN) {
        w_auth_plain(c, w);
    } else if (KL_ENABLE_SCRAM && mech) {
        size_t mark = w->len;
        if (w_auth_scram(c, w, mech) != KL_OK) {
            w->len = mark; /* send_auth reports why, once the features are in */
            return;
        }
    } else {
        return; /* wait for the features */
    }
    c->flags |= FL_SENT_AUTH;
    c->sasl_mech = mech;
    if ((c->flags & FL_FULL) && mech == KL_MECH_PLAIN) {
        /* full: PLAIN's <auth/> is the final SASL response, so the restart
         * header and the bind request follow in the same flight. */
        w_restart_and_bind(c, w);
    }
}

KL_NOINLINE static void begin_stream(kl_client_t *c)
{
    kl_xml_reset(&c->xml);
    c->flags &= (uint16_t) ~(FL_GOT_HEADER | FL_GOT_FEATURES);
    c->feat = 0;
    c->mechs = 0;
}

int kl_client_connect(kl_client_t *c, uint32_t now_ms, kl_channel_t channel)
{
    kl_xw_t w;
    size_t keep = offsetof(kl_client_t, jid);
    if (!c || (unsigned)channel > KL_CHANNEL_TLS_VERIFIED)
        return KL_ERR_ARG;
    /* A fresh stream keeps the configuration and nothing else; a
     * stream-management session survives it, with its JID while it can be
     * resumed. */
#if KL_ENABLE_SM
    /* the server keeps a session max seconds after the link went quiet
     * (XEP-0198 §5): later, no <resume/> (it would only come back
     * <failed/>): a new session, and the queue is handed back. Only known
     * for a link lost in this run (last_io is 0 after kl_sm_load). */
    if (c->sm.resumable && c->sm.max_s && c->last_io &&
        (uint32_t)(now_ms - c->last_io) / 1000u > c->sm.max_s)
        c->sm.resumable = 0;
    if (c->sm.resumable)
        keep = offsetof(kl_client_t, scram_cnonce);
    memset(&c->sm.on, 0, sizeof c->sm - offsetof(kl_sm_t, on));
#endif
    memset(c, 0, offsetof(kl_client_t, cfg));
    memset((uint8_t *)c + keep, 0, sizeof *c - keep);

    if (CACHE(c) && kl_cache_check(CACHE(c), c->domain) != KL_OK)
        kl_cache_reset(CACHE(c), c->domain); /* stale or corrupt: never trusted */
    c->now = now_ms;
    c->t_connect = now_ms;
    c->deadline = now_ms + KL_NEGOTIATION_TIMEOUT_MS;
    begin_stream(c);
    /* full only where it was seen to work: the server advertised the
     * pipelining feature and no full login failed since (or forced). */
    if (FULL_ON && c->cfg.pipelining == KL_PIPELINING_FULL && !IS_S2S(c) &&
        (c->cfg.force_full ||
         (CACHE(c) && (CACHE(c)->flags & (KL_CACHE_PIPELINING | KL_CACHE_FULL_FAILED)) == KL_CACHE_PIPELINING)))
        c->flags |= FL_FULL;
    /* Only the port knows what is under the stream: direct TLS (XEP-0368),
     * https, plain HTTP, or TCP that negotiates STARTTLS. */
    c->state = channel == KL_CHANNEL_STARTTLS ? ST_NEG : ST_AUTH;
    if (channel >= KL_CHANNEL_TLS)
        c->flags |= FL_TLS;
    if (channel == KL_CHANNEL_TLS_VERIFIED)
        c->flags |= FL_TLS_VERIFIED;
    out_begin(c, &w);
    if (c->state == ST_AUTH) {
        w_tls_stream_start(c, &w);
    } else {
        w_stream_header(c, &w);
        if (c->cfg.pipelining >= KL_PIPELINING_SAFE && !c->cfg.allow_plaintext) {
            /* safe: the server must offer STARTTLS anyway (we never fall back). */
            w_starttls(&w);
            c->flags |= FL_SENT_STARTTLS;
            if (c->flags & FL_FULL)
                c->flags |= FL_EARLY_TLS; /* the ClientHello rides along */
        }
    }
    return out_commit(c, &w);
}

int kl_engine_tls_done(kl_client_t *c, int verified)
{
    kl_xw_t w;
    if (!c || c->state != ST_TLS_WAIT)
        return KL_ERR_STATE;
    c->flags |= FL_TLS;
    if (verified)
        c->flags |= FL_TLS_VERIFIED;
    c->state = ST_AUTH;
    c->rx_len = c->rx_pos = c->scan = 0; /* plaintext before TLS is never parsed after it */
    begin_stream(c);
    out_begin(c, &w);
    w_tls_stream_start(c, &w);
    return out_commit(c, &w);
}

/* ---- input / output buffers ------------------------------------------------ */

uint8_t *kl_engine_input_buf(kl_client_t *c, size_t *cap)
{
    *cap = 0;
    if (!c || c->state == ST_INIT || c->state == ST_TLS_WAIT || c->state == ST_DONE)
        return c ? c->rx : NULL;
    if (c->rx_pos > 0) {
        size_t keep = c->rx_len - c->rx_pos;
        memmove(c->rx, c->rx + c->rx_pos, keep);
        c->scan -= c->rx_pos;
        if (c->stanza_start >= c->rx_pos)
            c->stanza_start -= c->rx_pos;
        c->rx_len = keep;
        c->rx_pos = 0;
    }
    *cap = sizeof c->rx - c->rx_len;
    return c->rx + c->rx_len;
}

void kl_engine_input_ack(kl_client_t *c, size_t n)
{
    if (!c || n > sizeof c->rx - c->rx_len)
        return;
    c->rx_len += n;
    c->stats.bytes_in += (uint32_t)n;
    /* What the engine writes after new input is a new flight; anything
     * received answers a keepalive probe. */
    if (n) {
        c->flight_open = 0;
        c->ka_probe = 0;
        c->last_io = c->now;
    }
}

size_t kl_engine_input(kl_client_t *c, const uint8_t *data, size_t len)
{
    size_t cap;
    uint8_t *p = kl_engine_input_buf(c, &cap);
    if (len > cap)
        len = cap;
    if (len) {
        memcpy(p, data, len);
        kl_engine_input_ack(c, len);
    }
    return len;
}

const uint8_t *kl_engine_output(kl_client_t *c, size_t *len)
{
    *len = c ? c->tx_len - c->tx_sent : 0;
    return c ? c->tx + c->tx_sent : NULL;
}

void kl_engine_output_ack(kl_client_t *c, size_t n)
{
    if (!c || n > c->tx_len - c->tx_sent)
        return;
    c->tx_sent += n;
    if (c->tx_sent == c->tx_len)
        c->tx_sent = c->tx_len = 0;
}

/* ---- views ------------------------------------------------------------------ */

static void view_from_token(kl_stanza_t *st, const kl_xml_token_t *t, kl_slice_t raw)
{
    static const char *const names[4] = {"from", "to", "id", "type"};
    static const uint8_t at[4] = {offsetof(kl_stanza_t, from), offsetof(kl_stanza_t, to),
                                  offsetof(kl_stanza_t, id), offsetof(kl_stanza_t, type)};
    size_t i;
    memset(st, 0, sizeof *st);
    st->raw = raw;
    st->name = t->local;
    st->ns = t->ns;
    st->attrs = t->attrs;
    for (i = 0; i < 4; i++)
        kl_xml_attr_get(t->attrs, names[i], (kl_slice_t *)((uint8_t *)st + at[i]));
}

/* Tokenize the element at raw with c->vx and fill a view of it; c->vx is
 * left just after its start tag so the caller can walk the children. */
static int open_view(kl_client_t *c, kl_slice_t raw, kl_stanza_t *st, size_t *pos)
{
    kl_xml_token_t t;
    size_t n = 0;
    int r;
    kl_xml_init_inner(&c->vx, &c->root);
    r = kl_xml_next(&c->vx, raw.p, raw.len, &n, &t);
    if (r != KL_XML_START)
        return r < 0 ? r : KL_ERR_PROTOCOL;
    view_from_token(st, &t, raw);
    *pos = n;
    return KL_OK;
}

/* Next token inside the open view (children of the element); 0 at its end.
 * A view is only opened on an element the stream tokenizer (c->xml) already
 * accepted from the same context (c->root): walked again it gives the same
 * tokens (kl_xml_init_inner; fuzz_xml checks it), so never an error. */
static int view_next(kl_client_t *c, kl_slice_t raw, size_t *pos, kl_xml_token_t *t)
{
    size_t n = 0;
    int r = kl_xml_next(&c->vx, raw.p + *pos, raw.len - *pos, &n, t);
    *pos += n;
    return r;
}

void kl_cursor_init(kl_cursor_t *cur, const kl_client_t *c, const kl_stanza_t *st)
{
    kl_xml_init_inner(&cur->x, &c->root);
    cur->raw = st->raw;
    cur->pos = 0;
}

int kl_cursor_next(kl_cursor_t *cur, kl_xml_token_t *tok)
{
    size_t n = 0;
    int r;
    if (!cur->raw.p)
        return KL_XML_NEED_MORE; /* a stanza with no bytes kept (KL_EV_UNACKED's long one, zeroed) */
    r = kl_xml_next(&cur->x, cur->raw.p + cur->pos, cur->raw.len - cur->pos, &n, tok);
    cur->pos += n;
    return r > 0 ? 1 : r;
}

/* The stanza is at depth 2 (inside the stream), its children at 3. */
int kl_stanza_child_text(const kl_client_t *c, const kl_stanza_t *st, const char *local,
                         const char *ns, char *out, size_t cap)
{
    kl_cursor_t cur;
    kl_xml_token_t t;
    size_t len = 0;
    int r, in = 0;
    if (!c || !st || !local || !out)
        return KL_ERR_ARG;
    if (cap == 0)
        return KL_ERR_TOO_LARGE;
    kl_cursor_init(&cur, c, st);
    while ((r = kl_cursor_next(&cur, &t)) > 0) {
        if (t.depth != 3)
            continue;
        if (!in && t.type == KL_XML_START && kl_slice_eq(t.local, local) && (!ns || kl_slice_eq(t.ns, ns))) {
            in = 1;
        } else if (in && t.type == KL_XML_TEXT) {
            int d = kl_xml_decode(t.text, t.cdata, (uint8_t *)out + len, cap - 1 - len);
            if (d < 0)
                return d;
            len += (size_t)d;
        } else if (in && t.type == KL_XML_END) {
            out[len] = '\0';
            return (int)len;
        }
    }
    return r < 0 ? r : KL_ERR_ARG;
}

/* ---- handling complete top-level elements ---------------------------------- */

/* Out of line: a call is smaller than the slice shuffling at each inlined use. */
KL_NOINLINE static int is_ns(kl_slice_t s, const char *ns) { return kl_slice_eq(s, ns); }

KL_NOINLINE static int is_named(const kl_stanza_t *st, const char *name) { return kl_slice_eq(st->name, name); }

/* 1 if the element token t is {ns}name. */
static int is_el(const kl_xml_token_t *t, const char *name, const char *ns)
{
    return kl_slice_eq(t->local, name) && is_ns(t->ns, ns);
}

/* Record what this stream's features say in the connection-hints cache.
 * What disappeared invalidates what depended on it. */
static void cache_features(kl_client_t *c, kl_slice_t caps)
{
    kl_cache_t *k = CACHE(c);
    int stage = c->state == ST_NEG ? 0 : c->state == ST_AUTH ? 1 : 2;
    if (!k)
        return;
    k->feat[stage] = c->feat;
    k->known |= (uint8_t)(1u << stage);
    if (stage == 1)
        k->mechs = c->mechs;
    if (stage < 2) {
        /* the pipelining feature is what licenses `full` */
        if (c->feat & FT_PIPELINING)
            k->flags |= KL_CACHE_PIPELINING;
        else if (stage == 0 || !(k->feat[0] & FT_PIPELINING))
            k->flags &= (uint8_t)~KL_CACHE_PIPELINING;
    }
    if (stage == 2) {
        if (c->feat & FT_ROSTERVER) {
            k->flags |= KL_CACHE_ROSTERVER;
        } else {
            k->flags &= (uint8_t)~KL_CACHE_ROSTERVER;
            k->roster_ver[0] = '\0';
        }
        if (caps.len < sizeof k->caps_ver) {
            if (caps.len) /* no caps: p is NULL, and memcpy's arguments must not be */
                memcpy(k->caps_ver, caps.p, caps.len);
            k->caps_ver[caps.len] = '\0';
        } else {
            k->caps_ver[0] = '\0';
        }
    }
    kl_cache_seal(k);
}

/* SASL mechanisms this build can use (the others are compiled out). */
static const struct {
    const char *name;
    uint8_t bit;
} known_mechs[] = {
    {"PLAIN", KL_MECH_PLAIN},
#if KL_ENABLE_SCRAM
    {"SCRAM-SHA-1", KL_MECH_SCRAM_SHA1},
    {"SCRAM-SHA-256", KL_MECH_SCRAM_SHA256},
#endif
#if KL_ENABLE_S2S
    {"EXTERNAL", KL_MECH_EXTERNAL},
#endif
#if KL_ENABLE_SASL2 && KL_ENABLE_SCRAM
    {"SCRAM-SHA-1-PLUS", KL_MECH_SCRAM_SHA1_PLUS},
    {"SCRAM-SHA-256-PLUS", KL_MECH_SCRAM_SHA256_PLUS},
#endif
#if KL_ENABLE_SASL2
    /* FAST's, only from its own list (parse_features) */
    {"HT-SHA-256-NONE", KL_MECH_HT_NONE},
    {"HT-SHA-256-EXPR", KL_MECH_HT_EXPR},
#endif
};

static const char *mech_name(uint8_t bit)
{
    size_t i;
    for (i = 0; i < sizeof known_mechs / sizeof known_mechs[0]; i++)
        if (known_mechs[i].bit == bit)
            return known_mechs[i].name;
    return "";
}

/* A decimal number as XML Schema's unsignedInt (counters, seconds): 1 and
 * *v, or 0 if s is not one. */
static int parse_u32(kl_slice_t s, uint32_t *v)
{
    uint64_t x = 0;
    size_t i;
    if (s.len - 1 >= 10) /* 1..10 digits */
        return 0;
    for (i = 0; i < s.len; i++) {
        unsigned d = (unsigned)s.p[i] - '0';
        if (d > 9)
            return 0;
        x = x * 10 + d;
    }
    *v = (uint32_t)x;
    return x <= 0xffffffffu;
}

/* What a mechanism name is in: RFC 6120's list, SASL2's, FAST's. */
enum { IN_NONE = 0, IN_MECH, IN_LIMIT, IN_MECH2, IN_FAST };

#if KL_ENABLE_SASL2 && KL_ENABLE_SCRAM
/* XEP-0474's input, kept for the challenge: the names sorted (i;octet),
 * joined by 0x1E; 0x1F and the channel-binding types when the server
 * advertised XEP-0440. */
#define SSDP_NAMES 12
typedef struct {
    kl_slice_t n[3][SSDP_NAMES]; /* RFC 6120's mechanisms, SASL2's, cb types */
    uint8_t k[3];
    uint8_t over[3];
} ssdp_names_t;

static void ssdp_add(ssdp_names_t *l, int which, kl_slice_t name)
{
    if (l->k[which] < SSDP_NAMES)
        l->n[which][l->k[which]++] = name;
    else
        l->over[which] = 1;
}

static int slice_cmp(kl_slice_t a, kl_slice_t b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int d = n ? memcmp(a.p, b.p, n) : 0;
    return d ? d : (a.len > b.len) - (a.len < b.len);
}

static void ssdp_put(kl_client_t *c, size_t *o, const uint8_t *p, size_t n)
{
    if (*o + n > sizeof c->ssdp) {
        c->ssdp_len = 0xff;
        return;
    }
    if (n)
        memcpy(c->ssdp + *o, p, n);
    *o += n;
}

static void ssdp_list(kl_client_t *c, size_t *o, kl_slice_t *v, size_t k)
{
    size_t i, j;
    for (i = 1; i < k; i++) /* insertion sort: a dozen names */
        for (j = i; j > 0 && slice_cmp(v[j - 1], v[j]) > 0; j--) {
            kl_slice_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    for (i = 0; i < k && c->ssdp_len != 0xff; i++) {
        if (i)
            ssdp_put(c, o, (const uint8_t *)"\x1e", 1);
        ssdp_put(c, o, v[i].p, v[i].len);
    }
}

static void ssdp_build(kl_client_t *c, ssdp_names_t *l, int sasl2, int cb_advertised)
{
    size_t o = 0;
    c->ssdp_len = 0;
    /* only the lists that are hashed count (the other SASL's may be long) */
    if (l->over[sasl2 ? 1 : 0] || (cb_advertised && l->over[2]))
        c->ssdp_len = 0xff;
    ssdp_list(c, &o, l->n[sasl2 ? 1 : 0], l->k[sasl2 ? 1 : 0]);
    if (cb_advertised && c->ssdp_len != 0xff) {
        ssdp_put(c, &o, (const uint8_t *)"\x1f", 1);
        ssdp_list(c, &o, l->n[2], l->k[2]);
    }
    if (c->ssdp_len != 0xff)
        c->ssdp_len = (uint8_t)o;
}
#endif

/* Parse <stream:features/>: walk its children with c->vx. */
static void parse_features(kl_client_t *c, kl_slice_t raw, size_t pos)
{
    kl_xml_token_t t;
    int r;
    uint16_t feat = 0;
    uint8_t mechs = 0, mechs2 = 0;
    int in_mech = IN_NONE, in_session = 0, session_optional = 0;
    /* SASL2: which depth-3 element we are in (1 authentication, 2
     * sasl-channel-binding), and under its <inline/> (1 bind, 2 fast) */
    int in3 = 0, in5 = 0;
    uint32_t idle;
    size_t i;
    kl_slice_t caps = {NULL, 0}, v;
#if KL_ENABLE_SASL2 && KL_ENABLE_SCRAM
    ssdp_names_t names;
    int cb_adv = 0;
    memset(&names, 0, sizeof names);
#endif
    while ((r = view_next(c, raw, &pos, &t)) > 0) {
        if (r == KL_XML_START && t.depth == 3) {
#if KL_ENABLE_SASL2
            in3 = 0;
#endif
            if (is_el(&t, "starttls", NS_TLS))
                feat |= FT_STARTTLS;
            else if (is_el(&t, "mechanisms", NS_SASL))
                feat |= FT_MECHS;
            else if (is_el(&t, "bind", NS_BIND))
                feat |= FT_BIND;
            else if (KL_ENABLE_SM && is_el(&t, "sm", NS_SM))
                feat |= FT_SM;
            else if (KL_ENABLE_LEGACY_SESSION && is_el(&t, "session", NS_SESSION))
                in_session = 1, session_optional = 0;
            /* what only the optional features use is not even looked for
             * when they are compiled out */
            else if ((KL_ENABLE_CACHE || KL_ENABLE_FULL) && is_el(&t, "pipelining", NS_PIPELINING))
                feat |= FT_PIPELINING;
            else if (KL_ENABLE_S2S && is_el(&t, "bidi", NS_BIDI_FEATURE))
                feat |= FT_BIDI;
            else if (KL_ENABLE_CSI && is_el(&t, "csi", NS_CSI))
                feat |= FT_CSI;
            else if (KL_ENABLE_CACHE && is_el(&t, "ver", NS_ROSTERVER))
                feat |= FT_ROSTERVER;
            else if (KL_ENABLE_CACHE && is_el(&t, "c", NS_CAPS)) {
                feat |= FT_CAPS;
                if (!kl_xml_attr_get(t.attrs, "ver", &caps))
                    caps.len = 0;
            } else if (KL_ENABLE_SASL2 && is_el(&t, "authentication", NS_SASL2)) {
                feat |= FT_SASL2;
                in3 = 1;
            } else if (KL_ENABLE_SASL2 && is_el(&t, "sasl-channel-binding", NS_SASL_CB)) {
                in3 = 2;
#if KL_ENABLE_SASL2 && KL_ENABLE_SCRAM
                cb_adv = 1;
#endif
            }
        } else if (r == KL_XML_START && t.depth == 4 && in_session && kl_slice_eq(t.local, "optional")) {
            session_optional = 1;
        } else if (r == KL_XML_START && t.depth == 4 && (feat & FT_MECHS) && (!KL_ENABLE_SASL2 || !in3) &&
                   kl_slice_eq(t.local, "mechanism")) {
            in_mech = IN_MECH;
        } else if (KL_ENABLE_STREAM_LIMITS && r == KL_XML_START && t.depth == 4 &&
                   is_el(&t, "idle-seconds", NS_LIMITS)) {
            in_mech = IN_LIMIT; /* XEP-0478: the server closes a stream idle this long */
        } else if (KL_ENABLE_STREAM_LIMITS && r == KL_XML_TEXT && in_mech == IN_LIMIT) {
            /* keepalives at half of it at most (for this client from now
             * on: under every limit a server announced) */
            if (!t.cdata && parse_u32(t.text, &idle) && idle - 1 < c->cfg.keepalive_ms / 500u)
                c->cfg.keepalive_ms = idle * 500u;
            in_mech = IN_NONE;
        } else if (KL_ENABLE_SASL2 && r == KL_XML_START && in3 == 1) {
            /* <authentication><mechanism/>…<inline><bind><inline><feature/>
             * </inline></bind><fast><mechanism/></fast><sm/></inline> */
            if (t.depth == 4 && is_el(&t, "mechanism", NS_SASL2))
                in_mech = IN_MECH2;
            else if (t.depth == 5 && is_el(&t, "bind", NS_BIND2))
                feat |= FT_BIND2, in5 = 1;
            else if (t.depth == 5 && is_el(&t, "fast", NS_FAST))
                in5 = 2;
            else if (t.depth == 5 && is_el(&t, "sm", NS_SM))
                feat |= FT_INLINE_SM, in5 = 0;
            else if (t.depth == 5)
                in5 = 0;
            else if (t.depth == 6 && in5 == 2 && is_el(&t, "mechanism", NS_FAST))
                in_mech = IN_FAST;
            else if (t.depth == 7 && in5 == 1 && kl_slice_eq(t.local, "feature") &&
                     kl_xml_attr_get(t.attrs, "var", &v)) {
                if (kl_xml_decoded_eq(v, NS_SM))
                    feat |= FT_BIND2_SM;
                else if (kl_xml_decoded_eq(v, NS_CSI))
                    feat |= FT_BIND2_CSI;
            }
        } else if (KL_ENABLE_SASL2 && r == KL_XML_START && in3 == 2 && t.depth == 4 &&
                   kl_slice_eq(t.local, "channel-binding") && kl_xml_attr_get(t.attrs, "type", &v)) {
            if (kl_xml_decoded_eq(v, "tls-exporter"))
                feat |= FT_CB_EXPORTER;
#if KL_ENABLE_SASL2 && KL_ENABLE_SCRAM
            ssdp_add(&names, 2, v);
#endif
        } else if (r == KL_XML_TEXT && in_mech) {
#if KL_ENABLE_SASL2 && KL_ENABLE_SCRAM
            if (in_mech == IN_MECH || in_mech == IN_MECH2)
                ssdp_add(&names, in_mech == IN_MECH ? 0 : 1, t.text);
#endif
            /* a whole element is one text piece (CDATA aside); a name
             * written any other way is not one we know. FAST's mechanisms
             * count only from FAST's list. */
#if KL_ENABLE_SASL2
            uint8_t b = 0;
            for (i = 0; i < sizeof known_mechs / sizeof known_mechs[0]; i++)
                if (!t.cdata && kl_xml_decoded_eq(t.text, known_mechs[i].name))
                    b |= known_mechs[i].bit;
            if (in_mech == IN_MECH2)
                mechs2 |= (uint8_t)(b & ~(KL_MECH_HT | KL_MECH_EXTERNAL));
            else if (in_mech == IN_FAST)
                mechs2 |= (uint8_t)(b & KL_MECH_HT);
            else
                mechs |= (uint8_t)(b & ~KL_MECH_HT);
#else
            for (i = 0; i < sizeof known_mechs / sizeof known_mechs[0]; i++)
                if (!t.cdata && kl_xml_decoded_eq(t.text, known_mechs[i].name))
                    mechs |= known_mechs[i].bit;
#endif
            in_mech = IN_NONE;
        } else if (r == KL_XML_END && (KL_ENABLE_SASL2 ? t.depth >= 4 : t.depth == 4)) {
            in_mech = IN_NONE;
        } else if (r == KL_XML_END && t.depth == 3 && in_session) {
            if (!session_optional)
                feat |= FT_SESSION_REQ;
            in_session = 0;
        }
    }
    c->feat = feat;
    /* SASL2's list where it is offered (the one this client uses there) */
    c->mechs = KL_ENABLE_SASL2 && (feat & FT_SASL2) && SASL2_ON(c) ? mechs2 : mechs;
#if KL_ENABLE_SASL2 && KL_ENABLE_SCRAM
    /* the list of the SASL this client authenticates with (XEP-0474:
     * only that one counts when both are offered) */
    ssdp_build(c, &names,
               (feat & FT_SASL2) && SASL2_ON(c) && (!(c->flags & FL_SENT_AUTH) || (c->s2 & S2_SENT)), cb_adv);
#endif
    c->flags |= FL_GOT_FEATURES;
    cache_features(c, caps);
}

/* The features that decide how to authenticate: this stream's once they
 * are in, else the hints' (post-TLS), else none. */
KL_UNUSED static uint16_t auth_feat(const kl_client_t *c)
{
    const kl_cache_t *k = CACHE(c);
    if (c->flags & FL_GOT_FEATURES)
        return c->feat;
    return k && (k->known & KL_CACHE_KNOWN_POST_TLS) ? k->feat[1] : 0;
}

/* The mechanism to use now: PLAIN when allowed (no extra round trip; a
 * credential only ever leaves over verified TLS or where the application
 * allowed plaintext: credential_status), else the strongest SCRAM on offer,
 * bound to the channel (-PLUS, tls-exporter) where the server offers that
 * and the port gave the data. */
static uint8_t choose_mech(const kl_client_t *c, uint8_t mechs)
{
    static const uint8_t scrams[] = {KL_MECH_SCRAM_SHA256_PLUS, KL_MECH_SCRAM_SHA256, KL_MECH_SCRAM_SHA1_PLUS,
                                     KL_MECH_SCRAM_SHA1};
    uint8_t offered = (uint8_t)(mechs & ~c->mechs_failed);
    size_t i;
    if (IS_S2S(c))
        return (offered & KL_MECH_EXTERNAL) ? KL_MECH_EXTERNAL : 0;
    if (!c->cfg.password)
        return 0;
    if (!c->cfg.no_plain && (offered & KL_MECH_PLAIN))
        return KL_MECH_PLAIN;
    if (!CRYPTO(c))
        return 0;
#if KL_ENABLE_SASL2
    if (!c->cb_len || !(auth_feat(c) & FT_CB_EXPORTER))
#endif
        offered &= (uint8_t)~KL_MECH_PLUS;
    for (i = 0; i < sizeof scrams; i++)
        if (offered & scrams[i])
            return scrams[i];
    return 0;
}

#if KL_ENABLE_SASL2
/* ---- SASL2 (XEP-0388), Bind2 (XEP-0386), FAST (XEP-0484): the request ---- */

/* The FAST token to authenticate with, or NULL: the hints' (else the
 * configured one) while its mechanism is on offer and was not refused on
 * this connection, and it is not past its expiry (when the clock is
 * known). *why says what stood in the way (KL_ERR_FAST_*), 0 if no token. */
static const uint8_t *fast_token(kl_client_t *c, uint8_t offered, size_t *len, uint8_t *mech, int *why)
{
    uint32_t exp = 0;
    const uint8_t *tok = NULL;
    *why = 0;
    *mech = 0;
    *len = 0;
    c->s2 &= (uint8_t)~S2_PROVISIONED;
    if (c->cfg.no_fast || !CRYPTO(c) || !CRYPTO(c)->hmac)
        return NULL;
    /* the hints' token is HT-SHA-256-NONE, the only kind kinglet asks for
     * and keeps (sasl2_success): -EXPR, which a server offers too, is
     * never in use, so no channel-binding case here or in kl_ht_start */
    if (CACHE(c))
        tok = kl_cache_fast_token(CACHE(c), c->domain, len, mech, &exp);
    if (!tok && c->cfg.fast_token && c->cfg.fast_token[0]) {
        tok = (const uint8_t *)c->cfg.fast_token;
        *len = strlen(c->cfg.fast_token);
        *mech = KL_MECH_HT_NONE;
        c->s2 |= S2_PROVISIONED;
    }
    if (!tok)
        return NULL;
    if (c->mechs_failed & *mech)
        *why = KL_ERR_FAST_REFUSED;
    else if (exp && c->cfg.unix_time && (int32_t)(c->cfg.unix_time() - exp) >= 0)
        *why = KL_ERR_FAST_EXPIRED;
    else if (!(offered & *mech & KL_MECH_HT))
        *why = KL_ERR_FAST_UNAVAILABLE;
    return *why ? NULL : tok;
}
#endif

/* Why no mechanism could be chosen. */
#if KL_ENABLE_SASL2
static int no_mech_status(kl_client_t *c)
{
    size_t len;
    uint8_t mech;
    int why;
    if (!c->cfg.password && !IS_S2S(c) && !fast_token(c, c->mechs, &len, &mech, &why) && why)
        return why;
    return KL_ERR_NO_MECHANISM;
}
#else
#define no_mech_status(c) KL_ERR_NO_MECHANISM
#endif

#if KL_ENABLE_SASL2
/* <user-agent id=''>: configured, else the one the hints keep (generated
 * once), else one derived from the JID (no hints to keep one in). */
static void w_user_agent(kl_client_t *c, kl_xw_t *w)
{
    char gen[KL_UA_ID_LEN + 1];
    uint8_t rnd[KL_HASH_MAX];
    const char *ua = c->cfg.user_agent_id;
    kl_cache_t *k = CACHE(c);
    if (!ua && k && k->ua_id[0])
        ua = k->ua_id;
    if (!ua) {
        if (k && get_random(c, rnd, 16) == KL_OK) {
            kl_uuid_format(rnd, k->ua_id);
            kl_cache_seal(k);
            ua = k->ua_id;
        } else {
            memset(rnd, 0, sizeof rnd);
            if (CRYPTO(c) && CRYPTO(c)->hash)
                (void)CRYPTO(c)->hash(CRYPTO(c)->ctx, KL_HASH_SHA256, (const uint8_t *)c->cfg.jid, c->bare_len,
                                      rnd);
            kl_uuid_format(rnd, gen);
            ua = gen;
        }
    }
    kl_xw_start(w, "user-agent");
    kl_xw_attr(w, "id", ua);
    kl_xw_start(w, "software");
    w_cstr(w, ""); /* closes the start tag */
    kl_xw_text(w, (const uint8_t *)(c->cfg.software ? c->cfg.software : "kinglet"),
               strlen(c->cfg.software ? c->cfg.software : "kinglet"));
    kl_xw_end(w, "software");
    if (c->cfg.device) {
        kl_xw_start(w, "device");
        kl_xw_text(w, (const uint8_t *)c->cfg.device, strlen(c->cfg.device));
        kl_xw_end(w, "device");
    }
    kl_xw_end(w, "user-agent");
}

/* <authenticate/> in one go: the mechanism's initial response, the user
 * agent, <resume/> when a stream-management session can be resumed and
 * the server takes it inline, the Bind2 request (with <enable/> and CSI
 * as offered) and, when the hints can keep one, a FAST token request.
 * `mechs`: what is on offer (this stream's features or the hints'). */
static int sasl2_start(kl_client_t *c, kl_xw_t *w, uint8_t mechs)
{
    uint16_t feat = auth_feat(c);
    const kl_cache_t *k = CACHE(c);
    const uint8_t *tok;
    const char *res = jid_resource(c), *tag;
    size_t len;
    uint8_t mech, s2 = 0;
    int st, why;
    if ((tok = fast_token(c, (uint8_t)(mechs & ~c->mechs_failed), &len, &mech, &why)) == NULL)
        mech = choose_mech(c, mechs);
    if (!mech)
        return no_mech_status(c);
    w_el(w, "<authenticate", NS_SASL2, "' mechanism='");
    w_cstr(w, mech_name(mech));
    w_cstr(w, "'><initial-response>");
    if (mech == KL_MECH_PLAIN) {
        w_plain_response(c, w);
        st = KL_OK;
    } else if (tok) {
        st = kl_ht_start(c, w, mech, tok, len);
    } else {
        st = KL_ENABLE_SCRAM ? kl_scram_start(c, w, mech) : KL_ERR_NO_MECHANISM;
    }
    if (st != KL_OK)
        return st;
    w_cstr(w, "</initial-response>");
    w_user_agent(c, w);
#if KL_ENABLE_SM
    /* XEP-0198 §9 / XEP-0388 inline: resumption in the same request; the
     * Bind2 request below is the server's fallback when it fails */
    if (sm_usable(c) && c->sm.resumable && (feat & FT_INLINE_SM)) {
        w_resume(c, w);
        s2 |= S2_RESUME;
    }
#endif
    if (feat & FT_BIND2) {
        tag = res && *res ? res : c->cfg.software ? c->cfg.software : "kinglet";
        w_el(w, "<bind", NS_BIND2, "'><tag>");
        kl_xw_text(w, (const uint8_t *)tag, strlen(tag));
        w_cstr(w, "</tag>");
#if KL_ENABLE_SM
        /* the state changes only when <enabled/> comes (resumption may
         * win instead) */
        if (sm_usable(c) && (feat & FT_BIND2_SM))
            w_el(w, "<enable", NS_SM, "' resume='true'/>");
#endif
        if (feat & FT_BIND2_CSI)
            w_el(w, c->cfg.csi_inactive ? "<inactive" : "<active", NS_CSI, "'/>");
        w_cstr(w, "</bind>");
        s2 |= S2_BIND;
    }
    /* a token when the password was used (or the provisioned token), and
     * only where there are hints this program vouches for (kl_cache_load or
     * kl_cache_reset): persisted only by kl_cache_store with the device
     * key; without one it serves this run's reconnects */
    if (!c->cfg.no_fast && (mechs & KL_MECH_HT_NONE) && k && k->trust == k && CRYPTO(c) && CRYPTO(c)->hmac &&
        (!tok || (c->s2 & S2_PROVISIONED))) {
        w_el(w, "<request-token", NS_FAST, "' mechanism='HT-SHA-256-NONE'/>");
        s2 |= S2_TOKEN_REQ;
    }
    /* the token's use (XEP-0484): Prosody refuses an HT mechanism without it */
    if (tok)
        w_el(w, "<fast", NS_FAST, "'/>");
    w_cstr(w, "</authenticate>");
    if ((st = kl_xw_status(w)) != KL_OK)
        return st == KL_ERR_WRITE_FULL ? KL_ERR_TX_FULL : st;
    c->s2 = (uint8_t)(s2 | S2_SENT | (c->s2 & S2_PROVISIONED));
    c->sasl_mech = mech;
    c->flags |= FL_SENT_AUTH;
    c->flags &= (uint16_t) ~(FL_AUTH_RETRY | FL_SCRAM_FINAL);
    return KL_OK;
}
#endif

static int send_auth(kl_client_t *c, kl_event_t *ev)
{
    kl_xw_t w;
    int st;
    uint8_t mech;
    if ((st = credential_status(c)) != KL_OK)
        return fail(c, st, NULL, ev);
#if KL_ENABLE_SASL2
    if (SASL2_ON(c) && (c->feat & FT_SASL2)) {
        out_begin(c, &w);
        if ((st = sasl2_start(c, &w, c->mechs)) != KL_OK)
            return fail(c, st, NULL, ev);
        return commit_step(c, &w, ev);
    }
#endif
    if ((mech = choose_mech(c, c->mechs)) == 0)
        return fail(c, no_mech_status(c), NULL, ev);
    out_begin(c, &w);
    if (mech == KL_MECH_EXTERNAL) {
        c->bidi = (c->feat & FT_BIDI) ? 1 : 0;
        w_auth_external(c, &w, c->bidi);
    } else if (mech == KL_MECH_PLAIN) {
        w_auth_plain(c, &w);
    } else {
#if KL_ENABLE_SCRAM
        st = w_auth_scram(c, &w, mech);
#else
        st = KL_ERR_NO_MECHANISM;
#endif
        if (st != KL_OK)
            return fail(c, st, NULL, ev);
    }
    c->sasl_mech = mech;
    c->flags |= FL_SENT_AUTH;
    c->flags &= (uint16_t) ~(FL_AUTH_RETRY | FL_SCRAM_FINAL);
    return commit_step(c, &w, ev);
}

static int send_bind(kl_client_t *c, kl_event_t *ev)
{
    kl_xw_t w;
    out_begin(c, &w);
    w_session(c, &w);
    return commit_step(c, &w, ev);
}

static int on_features(kl_client_t *c, kl_slice_t raw, size_t pos, kl_event_t *ev)
{
    parse_features(c, raw, pos);
    switch (c->state) {
    case ST_NEG:
        if (c->feat & FT_STARTTLS) {
            if (!(c->flags & FL_SENT_STARTTLS)) {
                kl_xw_t w;
                out_begin(c, &w);
                w_starttls(&w);
                c->flags |= FL_SENT_STARTTLS;
                return commit_step(c, &w, ev);
            }
            return 0;
        }
        /* No STARTTLS: never fall back to plaintext unless explicitly allowed. */
        if (!c->cfg.allow_plaintext || (c->flags & FL_SENT_STARTTLS))
            return fail(c, KL_ERR_NO_TLS, "policy-violation", ev);
        c->state = ST_AUTH;
        /* fall through: authenticate on this stream */
        /* FALLTHRU */
    case ST_AUTH:
        if (c->flags & FL_SENT_AUTH) {
            /* <authenticate/> went ahead on the hints' word, and SASL2 is
             * gone: the server cannot answer it. The hints now say so
             * (parse_features): the next attempt uses RFC 6120 SASL. */
            if (S2_SENT_ON(c) && !(c->feat & FT_SASL2))
                return fail(c, KL_ERR_SASL2_GONE, NULL, ev);
            /* A pipelined mechanism that is not on offer: the server will
             * refuse it; then we try what it does offer. */
            if (!(c->mechs & c->sasl_mech))
                c->flags |= FL_AUTH_RETRY;
            return 0;
        }
        return send_auth(c, ev);
    case ST_BIND:
        if (IS_S2S(c))
            return go_online(c, ev); /* s2s: authenticated, no resource to bind */
#if KL_ENABLE_SM
        if (c->sm.resuming && !(c->feat & FT_SM))
            c->sm.resumable = 0; /* sent ahead to a server without it: not again */
#endif
        if (!(c->feat & FT_BIND))
            return fail(c, KL_ERR_BIND, "unsupported-feature", ev);
        if (!(c->flags & FL_SENT_BIND))
            return send_bind(c, ev);
        return 0;
    default: /* ST_ONLINE (on_element drops them once closing) */
        /* BOSH: Prosody sends the restarted stream's features after the
         * pipelined bind result; recorded (hints), nothing else to do */
        return 0;
    }
}

/* ---- stream management (XEP-0198): counting, acks, resumption ------------- */

#if KL_ENABLE_SM
/* An inbound stanza was handled (delivered, answered or dropped). */
static void sm_handled(kl_client_t *c)
{
    if (c->sm.on == KL_SM_ON)
        c->sm.h_in++;
}

/* When an <r/> is due for unacknowledged stanzas: sm_ack_ms after they
 * became unacknowledged (or after the last <r/>), or sm_ack_idle_ms after
 * the last stanza (or <r/>) when no <r/> is out. */
static uint32_t sm_ack_at(const kl_client_t *c)
{
    const kl_sm_t *s = &c->sm;
    uint32_t at = ((int32_t)(s->t_r - s->t_unacked) > 0 ? s->t_r : s->t_unacked) + c->cfg.sm_ack_ms;
    uint32_t idle = ((int32_t)(s->t_r - s->t_sent) > 0 ? s->t_r : s->t_sent) + c->cfg.sm_ack_idle_ms;
    return !s->r_out && (int32_t)(idle - at) < 0 ? idle : at;
}
/* At the end of each poll (and after a stanza that asks for it): the owed
 * <a/> (one, with the latest h, however many <r/> asked) and the <r/> the
 * ack policy wants now, when there is room; otherwise at the next poll.
 * Nothing after our </stream:stream>, nothing before the session is on. */
static void sm_flush(kl_client_t *c)
{
    kl_sm_t *s = &c->sm;
    kl_xw_t w;
    if (s->on != KL_SM_ON || c->state != ST_ONLINE)
        return;
#if KL_ENABLE_APP
    if (c->long_out)
        return; /* nothing between a long stanza's pieces: owed until its end */
#endif
    if (s->out != s->acked && time_reached(c->now, sm_ack_at(c)))
        s->r_owed = 1;
    if (s->a_owed) {
        out_begin(c, &w);
        w_el(&w, "<a", NS_SM, "' h='");
        w_u32(&w, s->h_in);
        w_cstr(&w, "'/>");
        if (out_commit(c, &w) == KL_OK) {
            s->a_owed = 0;
            c->stats.sm_acks_sent++;
        }
    }
    if (s->r_owed) {
        out_begin(c, &w);
        w_el(&w, "<r", NS_SM, "'/>");
        if (out_commit(c, &w) == KL_OK) {
            s->r_owed = 0;
            s->r_out = 1;
            s->unreq = 0;
            s->t_r = c->now;
            c->stats.sm_acks_requested++;
        }
    }
}

int kl_sm_ack_now(kl_client_t *c)
{
    if (!c)
        return KL_ERR_ARG;
    if (c->sm.on != KL_SM_ON || c->state != ST_ONLINE)
        return KL_ERR_STATE;
    c->sm.a_owed = 1;
    sm_flush(c);
    return c->sm.a_owed ? KL_ERR_TX_FULL : KL_OK;
}

/* A stanza went out under stream management: the ack-request policy. */
static void sm_sent(kl_client_t *c)
{
    kl_sm_t *s = &c->sm;
    if (s->out - s->acked == 1)
        s->t_unacked = c->now;
    s->t_sent = c->now;
    if (++s->unreq >= c->cfg.sm_ack_every && s->on == KL_SM_ON) {
        s->r_owed = 1;
        sm_flush(c); /* in the same flight as the stanza */
    }
}


/* <resume/> is out: no bind result can answer it. */
static int sm_resuming(const kl_client_t *c) { return c->sm.resuming; }
#else
#define sm_handled(c) ((void)0)
#define sm_resuming(c) 0
#endif

/* Queue one stanza. Under stream management it gets the next sequence
 * number and is kept until acknowledged; the application's is refused when
 * the queue has no room (KL_ERR_TX_FULL, KL_ERR_TOO_LARGE: nothing is
 * sent), the engine's own (`own`) is counted even then. */
static int commit_stanza(kl_client_t *c, const kl_xw_t *w, int own)
{
#if KL_ENABLE_SM
    kl_sm_t *s = &c->sm;
    if (s->on && w->len && kl_xw_status(w) == KL_OK) {
        int st = kl_sm_push(c, w->buf, w->len, s->out + 1, own);
        if (st != KL_OK && !own)
            return st;
        (void)out_commit(c, w); /* cannot fail: the writer is fine */
        s->out++;
        sm_sent(c);
        return KL_OK;
    }
#else
    (void)own;
#endif
    return out_commit(c, w);
}

/* State and counters of a session that just came online (bound or resumed). */
static void set_online(kl_client_t *c)
{
    c->state = ST_ONLINE;
    c->stats.engine_round_trips = c->stats.flights_out;
    c->stats.round_trips = c->stats.engine_round_trips + c->stats.port_round_trips;
    c->stats.online_ms = c->now - c->t_connect;
    c->stats.bytes_in_online = c->stats.bytes_in;
    c->stats.bytes_out_online = c->stats.bytes_out;
}

#if KL_ENABLE_SM
/* Drop the records the server's h acknowledges (their sequence numbers in
 * (acked, h]): d of them at most. */
static void sm_drop_acked(kl_client_t *c, uint32_t h)
{
    kl_sm_t *s = &c->sm;
    uint32_t d = h - s->acked, seq;
    const uint8_t *p;
    size_t n;
    int own;
    while (s->records) {
        kl_sm_rec(c, s->head, &seq, &p, &n, &own);
        if (seq - s->acked - 1 >= d)
            break;
        kl_sm_pop(c);
    }
    c->stats.sm_acked += d;
    s->acked = h;
    s->t_unacked = c->now;
}

/* The server acknowledges more than we sent (XEP-0198 §4): its counting is
 * broken, and so is the session. */
static int sm_too_high(kl_client_t *c, uint32_t h, kl_event_t *ev)
{
    kl_xw_t w;
    out_begin(c, &w);
    w_el(&w, "<stream:error><undefined-condition", NS_STREAM_ERR, "'/>");
    w_el(&w, "<handled-count-too-high", NS_SM, "' h='");
    w_u32(&w, h);
    w_cstr(&w, "' send-count='");
    w_u32(&w, c->sm.out);
    w_cstr(&w, "'/></stream:error>");
    (void)out_commit(c, &w);
    c->sm.resumable = 0; /* the queue stays: handed back at the next online */
    set_condition_str(c, "handled-count-too-high");
    return fail(c, KL_ERR_SM_ACK, NULL, ev);
}

/* The server's h (from <a/> or <resumed/>): -1 backwards (ignored), 0 no
 * news, 1 new stanzas acknowledged; a count above what we sent ends the
 * stream (2, with the event). */
static int sm_ack(kl_client_t *c, uint32_t h, kl_event_t *ev)
{
    kl_sm_t *s = &c->sm;
    uint32_t d = h - s->acked;
    if ((int32_t)d < 0) {
        c->stats.sm_acks_ignored++;
        return -1;
    }
    if (d > s->out - s->acked) {
        (void)sm_too_high(c, h, ev);
        return 2;
    }
    if (!d)
        return 0;
    sm_drop_acked(c, h);
    return 1;
}

/* A decimal attribute; 0 if absent, -1 if malformed. */
static int attr_u32(const kl_stanza_t *st, const char *name, uint32_t *v)
{
    kl_slice_t a;
    if (!kl_xml_attr_get(st->attrs, name, &a))
        return 0;
    return parse_u32(a, v) ? 1 : -1;
}

/* <enabled id='' resume='' max='' location=''/> */
static void sm_enabled(kl_client_t *c, const kl_stanza_t *st)
{
    kl_sm_t *s = &c->sm;
    kl_slice_t v;
    int n;
    s->on = KL_SM_ON;
    s->h_in = 0; /* counted from here (XEP-0198 §4) */
    /* A value that does not fit (or is not well-formed) is no value: the
     * decoder may have written part of it, which is cut back to "". */
    n = kl_xml_attr_get(st->attrs, "id", &v) ? kl_xml_decode(v, 0, (uint8_t *)s->id, KL_SM_ID_MAX) : 0;
    s->id[n > 0 ? n : 0] = '\0';
    if (n > 0)
        s->resumable = kl_xml_attr_get(st->attrs, "resume", &v) &&
                       (kl_xml_decoded_eq(v, "true") || kl_xml_decoded_eq(v, "1"));
    n = kl_xml_attr_get(st->attrs, "location", &v) ? kl_xml_decode(v, 0, (uint8_t *)s->location, KL_SM_LOCATION_MAX) : 0;
    s->location[n > 0 ? n : 0] = '\0';
    if (attr_u32(st, "max", &s->max_s) < 0)
        s->max_s = 0;
}

/* <resumed h='' previd=''/> (on its own, or inside SASL2's <success/>) */
static int sm_resumed(kl_client_t *c, const kl_stanza_t *st, kl_event_t *ev)
{
    kl_sm_t *s = &c->sm;
    uint32_t h = 0;
    int has_h = attr_u32(st, "h", &h);
    kl_slice_t v;
    if (!s->resuming || c->state != ST_BIND || !kl_xml_attr_get(st->attrs, "previd", &v) ||
        !kl_xml_decoded_eq(v, s->id)) {
        s->resumable = 0; /* not the session we asked for */
        return fail(c, KL_ERR_SM_RESUME, "undefined-condition", ev);
    }
    if (has_h < 0)
        return fail(c, KL_ERR_PROTOCOL, "invalid-xml", ev);
    if (has_h && sm_ack(c, h, ev) == 2)
        return 1;
    /* the session is back: what the server did not get goes again, in
     * order, before anything new (kl_stanza_begin says TX_FULL) */
    s->resuming = 0;
    s->on = KL_SM_ON;
    s->resending = s->records != 0;
    s->resend = s->head;
    set_online(c);
    ev->type = KL_EV_RESUMED;
    ev->jid = c->jid;
    ev->seq = s->acked;
    return 1;
}

/* Stream-management nonzas. */
static int on_sm(kl_client_t *c, const kl_stanza_t *st, kl_event_t *ev)
{
    kl_sm_t *s = &c->sm;
    uint32_t h = 0;
    int has_h = attr_u32(st, "h", &h), r;
    if (is_named(st, "r")) {
        if (s->on == KL_SM_ON)
            s->a_owed = 1; /* answered when this poll runs out of input */
        return 0;
    }
    if (is_named(st, "a")) {
        if (s->on != KL_SM_ON || c->state != ST_ONLINE)
            return 0;
        if (has_h <= 0)
            return fail(c, KL_ERR_PROTOCOL, "invalid-xml", ev);
        s->r_out = 0;
        if ((r = sm_ack(c, h, ev)) == 2)
            return 1;
        if (r <= 0)
            return 0;
        ev->type = KL_EV_ACKED;
        ev->seq = h;
        return 1;
    }
    if (is_named(st, "enabled")) {
        if (s->on == KL_SM_REQUESTED)
            sm_enabled(c, st);
        return 0;
    }
    if (is_named(st, "resumed"))
        return sm_resumed(c, st, ev);
    if (is_named(st, "failed")) {
        if (s->resuming && c->state == ST_BIND) {
            /* a new session: bind (and enable again); what the old one did
             * not acknowledge is handed back at online. The server's h, if
             * it says one, still tells what it got. */
            s->resuming = 0;
            s->resumable = 0;
            if (has_h > 0 && h - s->acked - 1 < s->out - s->acked)
                sm_drop_acked(c, h);
            c->jid[0] = '\0';
            return send_bind(c, ev);
        }
        if (s->on == KL_SM_REQUESTED) {
            /* <enable/> refused: on without it; what went out since was sent
             * as on any stream without acks */
            s->on = KL_SM_OFF;
            kl_sm_clear(c);
        }
        return 0; /* unexpected: ignored */
    }
    return 0; /* <t/> (throttling) and anything newer: ignored */
}

/* At online after a new bind, then at each poll: one KL_EV_UNACKED per
 * stanza the old session never got acknowledged (the engine's own are
 * dropped), then the owed KL_EV_ONLINE. 0 when nothing is owed. */
static int sm_events(kl_client_t *c, kl_event_t *ev)
{
    kl_sm_t *s = &c->sm;
    while (s->handback) {
        uint32_t seq;
        const uint8_t *p;
        size_t n, pos;
        int own;
        kl_slice_t raw;
        kl_sm_rec(c, s->head, &seq, &p, &n, &own);
        kl_sm_pop(c); /* its bytes stay where they are until the next stanza */
        s->handback--;
        if (own)
            continue;
        c->stats.sm_unacked_handed_back++;
        raw.p = p;
        raw.len = n;
        if (n == 0) { /* a long stanza: nothing kept to hand back */
            memset(&ev->stanza, 0, sizeof ev->stanza);
            ev->status = KL_ERR_TOO_LARGE;
        } else if (open_view(c, raw, &ev->stanza, &pos) != KL_OK) {
            memset(&ev->stanza, 0, sizeof ev->stanza);
            ev->stanza.raw = raw;
        }
        ev->type = KL_EV_UNACKED;
        ev->seq = seq;
        return 1;
    }
#if KL_ENABLE_APP
    if (s->lost_owed) {
        s->lost_owed = 0;
        c->stats.sm_unacked_handed_back++;
        memset(&ev->stanza, 0, sizeof ev->stanza);
        ev->status = KL_ERR_TOO_LARGE;
        ev->type = KL_EV_UNACKED;
        ev->seq = s->lost_seq;
        return 1;
    }
#endif
    if (s->online_owed) {
        s->online_owed = 0;
        ev->type = KL_EV_ONLINE;
        ev->jid = c->jid;
        return 1;
    }
    return 0;
}

/* After <resumed/>: the unacknowledged records again, in order, as room
 * allows (input waits meanwhile, so no reserve is kept). 1 when all went. */
static int sm_resend(kl_client_t *c)
{
    kl_sm_t *s = &c->sm;
    while (s->resend < s->tail) {
        uint32_t seq;
        const uint8_t *p;
        size_t n;
        int own;
        size_t next = kl_sm_rec(c, s->resend, &seq, &p, &n, &own);
        kl_xw_t w;
#if KL_ENABLE_APP
        if (n == 0) {
            /* a long stanza's placeholder: its bytes were never kept */
            kl_sm_unplace(c, s->resend);
            s->lost_owed = 1;
            s->lost_seq = seq;
            if (s->resend >= s->tail) {
                s->resending = 0;
                s->t_sent = s->t_unacked = c->now;
            }
            return 0;
        }
#endif
        if (n > sizeof c->tx - (c->tx_len - c->tx_sent))
            return 0;
        out_begin(c, &w);
        kl_xw_raw(&w, p, n);
        (void)out_commit(c, &w);
        s->resend = next;
        c->stats.sm_resent++;
    }
    s->resending = 0;
    s->t_sent = s->t_unacked = c->now;
    return 1;
}

/* Under stream management one commit is one stanza (message, presence or
 * iq): the server counts elements, and so must we. */
static int one_stanza(kl_client_t *c, const kl_xw_t *w)
{
    kl_xml_t x;
    kl_xml_token_t t;
    size_t pos = 0, n;
    int r, tops = 0;
    kl_xml_init_inner(&x, &c->root);
    for (;;) {
        n = 0;
        r = kl_xml_next(&x, w->buf + pos, w->len - pos, &n, &t);
        pos += n;
        if (r < 0)
            return KL_ERR_ARG;
        if (r == KL_XML_NEED_MORE)
            break;
        /* by name only: the namespace comes from the server's stream
         * header here, and a hostile one must not make our own stanzas
         * unsendable (the fuzz target found that) */
        if (t.depth == 2 && r == KL_XML_START &&
            (tops++ || !(kl_slice_eq(t.local, "message") || kl_slice_eq(t.local, "presence") ||
                         kl_slice_eq(t.local, "iq"))))
            return KL_ERR_ARG;
    }
    return pos == w->len && tops == 1 && x.depth == x.base ? KL_OK : KL_ERR_ARG;
}
#endif

static int go_online(kl_client_t *c, kl_event_t *ev)
{
    set_online(c);
    if (IS_S2S(c)) {
        size_t n = c->bare_len < sizeof c->jid ? c->bare_len : sizeof c->jid - 1;
        memcpy(c->jid, c->cfg.jid, n);
        c->jid[n] = '\0';
        ev->bidi = c->bidi;
    } else {
        kl_xw_t w;
#if KL_ENABLE_SM
        if (sm_usable(c) && !c->sm.on && (c->feat & FT_SM)) {
            out_begin(c, &w);
            w_enable(c, &w);
            (void)out_commit(c, &w);
        }
#endif
        if (!c->cfg.no_presence) {
            out_begin(c, &w);
#if KL_ENABLE_APP
            if (c->app) {
                kl_xw_start(&w, "presence");
                kl_i_app_caps(c->app, &w); /* XEP-0115: who we are, in one hash */
                kl_xw_end(&w, "presence");
            } else
#endif
                w_cstr(&w, "<presence/>");
            (void)commit_stanza(c, &w, 1);
        }
    }
#if KL_ENABLE_SM
    if (c->sm.handback) {
        c->sm.online_owed = 1;
        return sm_events(c, ev);
    }
#endif
    ev->type = KL_EV_ONLINE;
    ev->jid = c->jid;
    return 1;
}

/* What kind of IQ a stanza is; IQ_NONE for anything else (also an iq of
 * a type RFC 6120 does not know). */
enum { IQ_NONE = 0, IQ_GET, IQ_SET, IQ_RESULT, IQ_ERROR };
static int iq_kind(const kl_stanza_t *st)
{
    static const char *const types[] = {"get", "set", "result", "error"};
    int i;
    if (!is_named(st, "iq"))
        return IQ_NONE;
    for (i = 0; i < 4; i++)
        if (kl_xml_decoded_eq(st->type, types[i]))
            return i + 1;
    return IQ_NONE;
}

/* The JID the server bound (decoded into c->jid): the account's own bare
 * JID (up to ASCII case) and a resource that is not empty and holds no
 * control character (RFC 7622 3.4: OpaqueString). Lengths are within RFC
 * 7622's 1023 bytes a part by KL_JID_MAX. */
static int bound_jid_ok(const kl_client_t *c, size_t len)
{
    size_t i = c->bare_len;
    if (len <= i + 1 || c->jid[i] != '/' || !jid_eq(c->jid, i, c->cfg.jid, i))
        return 0;
    for (i++; i < len; i++)
        if ((uint8_t)c->jid[i] < 0x20 || c->jid[i] == 0x7f)
            return 0;
    return 1;
}

/* The answer to our bind (or legacy session) request. */
static int on_bind_result(kl_client_t *c, kl_stanza_t *st, size_t pos, kl_event_t *ev)
{
    kl_xml_token_t t;
    int r, in_bind = 0, in_jid = 0, in_error = 0;
    size_t len = 0;
    int is_result = iq_kind(st) == IQ_RESULT;
    if (KL_ENABLE_LEGACY_SESSION && kl_xml_decoded_eq(st->id, session_id)) {
        if (!is_result)
            return fail(c, KL_ERR_BIND, NULL, ev);
        return go_online(c, ev);
    }
    while ((r = view_next(c, st->raw, &pos, &t)) > 0) {
        if (r == KL_XML_START && t.depth == 3) {
            in_bind = is_el(&t, "bind", NS_BIND);
            in_error = kl_slice_eq(t.local, "error");
        } else if (r == KL_XML_START && t.depth == 4) {
            if (in_bind && kl_slice_eq(t.local, "jid"))
                in_jid = 1;
            else if (in_error && !c->condition[0] && !kl_slice_eq(t.local, "text"))
                set_condition(c, t.local);
        } else if (r == KL_XML_TEXT && in_jid) {
            int d = kl_xml_decode(t.text, t.cdata, (uint8_t *)c->jid + len, sizeof c->jid - 1 - len);
            if (d < 0)
                return fail(c, KL_ERR_JID_TOO_LONG, NULL, ev);
            len += (size_t)d;
        } else if (r == KL_XML_END && t.depth == 4) {
            in_jid = 0;
        }
    }
    c->jid[len] = '\0';
    if (!is_result || len == 0)
        return fail(c, KL_ERR_BIND, NULL, ev);
    if (!bound_jid_ok(c, len)) {
        c->jid[0] = '\0';
        return fail(c, KL_ERR_BIND_JID, NULL, ev);
    }
    if (KL_ENABLE_LEGACY_SESSION && (c->feat & FT_SESSION_REQ)) {
        /* RFC 3921 session, still required by some old servers. It fits:
         * input is read only with TX_RESERVE free (kl_engine_poll), and
         * nothing else is written before it. */
        kl_xw_t w;
        out_begin(c, &w);
        kl_xw_start(&w, "iq");
        kl_xw_attr(&w, "type", "set");
        kl_xw_attr(&w, "id", session_id);
        w_el(&w, "<session", NS_SESSION, "'/></iq>");
        (void)commit_stanza(c, &w, 1);
        c->flags |= FL_SENT_SESSION;
        return 0;
    }
    return go_online(c, ev);
}

/* The first child element of the open view (c->vx just after its start tag). */
static int first_child(kl_client_t *c, kl_slice_t raw, size_t pos, kl_xml_token_t *t)
{
    int r;
    while ((r = view_next(c, raw, &pos, t)) == KL_XML_TEXT)
        ;
    return r == KL_XML_START;
}

enum { ANSWER_PING, ANSWER_DISCO, ANSWER_ERROR, ANSWER_POLICY };

/* The engine's own answer to an IQ request: a ping or disco#info result,
 * or (RFC 6120 8.4) service-unavailable for a request nobody here
 * understands. Addressed back to the sender; s2s: from the address it
 * was sent to. */
/* An answer's addresses, after its type: the request's id, back to its
 * sender (s2s: from the address it was sent to). */
static KL_ALWAYS_INLINE void w_answer_addr(kl_client_t *c, kl_xw_t *w, const kl_stanza_t *st)
{
    if (st->id.p)
        w_attr_raw(w, "id", st->id);
    if (IS_S2S(c) && st->to.p)
        w_attr_raw(w, "from", st->to);
    if (st->from.p)
        w_attr_raw(w, "to", st->from);
}

/* Called online only (on_stanza; drop_element checks; stream_large skips
 * after our close), so never after our </stream:stream>: FL_SENT_CLOSE
 * comes with ST_CLOSING or ST_DONE. */
static void auto_answer(kl_client_t *c, const kl_stanza_t *st, int kind)
{
    kl_xw_t w;
    out_begin(c, &w);
    kl_xw_start(&w, "iq");
    kl_xw_attr(&w, "type", kind >= ANSWER_ERROR ? "error" : "result");
    w_answer_addr(c, &w, st);
    if (kind == ANSWER_DISCO) {
        w_el(&w, "<query", NS_DISCO_INFO, "'><identity category='client' type='bot' name='kinglet'/><feature var='");
        w_cstr(&w, NS_DISCO_INFO);
        w_cstr(&w, "'/><feature var='");
        w_cstr(&w, NS_PING);
        w_cstr(&w, "'/></query></iq>");
    } else if (kind >= ANSWER_ERROR) {
        /* RFC 6120 8.3.3: nobody here handles it / it broke a bound of ours */
        w_cstr(&w, kind == ANSWER_ERROR ? "<error type='cancel'><service-unavailable"
                                        : "<error type='modify'><policy-violation");
        w_cstr(&w, " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    } else {
        kl_xw_end(&w, "iq");
    }
    (void)commit_stanza(c, &w, 1); /* no room even in the reserve: the peer times out */
}

/* RFC 6120 8.2.3 / 10.1.4: an answer comes from the entity the request
 * went to. A request without `to` is handled by the server for the
 * account: its answer has no from, the account's bare JID or the domain. */
static int from_matches(const kl_client_t *c, kl_slice_t raw_from, const char *to)
{
    char from[KL_JID_MAX];
    size_t tl = strlen(to);
    int n;
    if (!raw_from.p)
        return !to[0] || jid_eq(to, tl, c->cfg.jid, c->bare_len);
    if ((n = kl_xml_decode(raw_from, 0, (uint8_t *)from, sizeof from)) < 0)
        return 0;
    if (to[0])
        return jid_eq(from, (size_t)n, to, tl);
    return jid_eq(from, (size_t)n, c->cfg.jid, c->bare_len) || jid_eq(from, (size_t)n, c->domain, strlen(c->domain));
}

/* The handle of the request this result/error answers (and frees), or 0:
 * then it is an unsolicited stanza, never a result, never cached. */
static int match_iq(kl_client_t *c, const kl_stanza_t *st)
{
    size_t i;
    for (i = 0; i < KL_MAX_PENDING_IQ; i++) {
        kl_pending_iq_t *q = &c->iq[i];
        if (q->handle && kl_xml_decoded_eq(st->id, q->id) && from_matches(c, st->from, q->to)) {
            int h = q->handle;
            q->handle = 0;
            return h;
        }
    }
    c->stats.iq_unmatched++;
    return 0;
}

/* A roster result: remember its version (XEP-0237) for the next login. */
static void cache_roster_ver(kl_client_t *c, const kl_stanza_t *st, size_t pos)
{
    kl_cache_t *k = CACHE(c);
    kl_xml_token_t t;
    kl_slice_t ver;
    int n;
    if (!k || !kl_xml_decoded_eq(st->type, "result") || !first_child(c, st->raw, pos, &t))
        return; /* an empty result: unchanged since the version we sent */
    if (!kl_slice_eq(t.local, "query") || !is_ns(t.ns, NS_ROSTER) || !kl_xml_attr_get(t.attrs, "ver", &ver))
        return;
    n = kl_xml_decode(ver, 0, (uint8_t *)k->roster_ver, sizeof k->roster_ver - 1);
    k->roster_ver[n > 0 ? n : 0] = '\0';
    kl_cache_seal(k);
}

/* The domain part of a (decoded) JID. */
static kl_slice_t jid_domain(const char *jid, size_t len)
{
    size_t i, at = 0, end = len;
    kl_slice_t d;
    for (i = 0; i < len; i++) {
        if (jid[i] == '/') {
            end = i;
            break;
        }
        if (jid[i] == '@' && at == 0)
            at = i + 1;
    }
    d.p = (const uint8_t *)jid + at;
    d.len = end - at;
    return d;
}

/* 1 if the raw attribute value is a JID of `domain` (NUL-terminated). */
static int raw_jid_in_domain(kl_slice_t raw, const char *domain)
{
    char buf[KL_JID_MAX * 2];
    int n;
    kl_slice_t d;
    if (!raw.p || (n = kl_xml_decode(raw, 0, (uint8_t *)buf, sizeof buf)) <= 0)
        return 0;
    d = jid_domain(buf, (size_t)n);
    return kl_slice_eq(d, domain);
}

/* A disco#info result from the server: the features we know of, kept
 * with the caps ver they stand for. */
static void cache_disco(kl_client_t *c, const kl_stanza_t *st, size_t pos)
{
    static const struct {
        const char *var;
        uint16_t bit;
    } known[] = {{"urn:xmpp:carbons:2", KL_SERVER_CARBONS}, {"urn:xmpp:mam:2", KL_SERVER_MAM},
                 {"urn:xmpp:blocking", KL_SERVER_BLOCKING}, {NS_PING, KL_SERVER_PING},
                 {"urn:xmpp:push:0", KL_SERVER_PUSH},        {"jabber:iq:version", KL_SERVER_VERSION}};
    kl_cache_t *k = CACHE(c);
    kl_xml_token_t t;
    uint16_t features = 0;
    size_t i;
    int r;
    if (!k || !kl_xml_decoded_eq(st->type, "result"))
        return;
    while ((r = view_next(c, st->raw, &pos, &t)) > 0) {
        kl_slice_t var;
        if (r == KL_XML_START && t.depth == 4 && kl_slice_eq(t.local, "feature") &&
            kl_xml_attr_get(t.attrs, "var", &var))
            for (i = 0; i < sizeof known / sizeof known[0]; i++)
                if (kl_xml_decoded_eq(var, known[i].var))
                    features |= known[i].bit;
    }
    k->disco_features = features;
    memcpy(k->disco_ver, k->caps_ver, sizeof k->disco_ver);
    kl_cache_seal(k);
}

/* s2s, as a server would: a stanza on this stream comes from the peer's
 * domain and is addressed to ours, or the stream ends. Checked on every
 * inbound stanza, whole or streamed, before the application sees it. */
static int s2s_admit(kl_client_t *c, const kl_stanza_t *st, kl_event_t *ev)
{
    char ours[KL_JID_MAX];
    if (!IS_S2S(c))
        return 0;
    size_t n = c->bare_len < sizeof ours ? c->bare_len : sizeof ours - 1;
    memcpy(ours, c->cfg.jid, n);
    ours[n] = '\0';
    if (!raw_jid_in_domain(st->from, c->domain))
        return fail(c, KL_ERR_PROTOCOL, "invalid-from", ev);
    if (!raw_jid_in_domain(st->to, ours))
        return fail(c, KL_ERR_PROTOCOL, "host-unknown", ev);
    return 0;
}

static int on_stanza(kl_client_t *c, kl_stanza_t *st, size_t pos, kl_event_t *ev)
{
    int k = iq_kind(st);
    if (s2s_admit(c, st, ev))
        return 1;
    c->stats.stanzas_in++;
    sm_handled(c);
    if (k) {
        kl_xml_token_t t;
        if (k == IQ_GET && first_child(c, st->raw, pos, &t)) {
            if (is_el(&t, "ping", NS_PING)) {
                auto_answer(c, st, ANSWER_PING);
                return 0;
            }
            if (is_el(&t, "query", NS_DISCO_INFO)) {
#if KL_ENABLE_APP
                if (c->app) {
                    app_disco(c, st, &t);
                    return 0;
                }
#endif
                auto_answer(c, st, ANSWER_DISCO);
                return 0;
            }
        }
        if (k <= IQ_SET && !c->cfg.deliver_iq) {
            auto_answer(c, st, ANSWER_ERROR);
            return 0;
        }
        if (k >= IQ_RESULT) {
            int id;
            if (kl_xml_decoded_eq(st->id, ping_id))
                return 0; /* the answer to our keepalive: it did its job by arriving */
            id = match_iq(c, st);
            if (KL_ENABLE_CACHE && id && id == c->roster_iq) {
                c->roster_iq = 0;
                cache_roster_ver(c, st, pos);
            } else if (KL_ENABLE_CACHE && id && id == c->disco_iq) {
                c->disco_iq = 0;
                cache_disco(c, st, pos);
            }
            if (id) {
                ev->type = KL_EV_IQ_RESULT;
                ev->iq_id = (uint16_t)id;
                ev->stanza = *st;
                return 1;
            }
        }
    }
    ev->type = KL_EV_STANZA;
    ev->stanza = *st;
    return 1;
}

/* The character data of a top-level element (c->vx after its start tag),
 * as a mutable range of the receive buffer; len 0 if there is none. */
static int element_text(kl_client_t *c, kl_slice_t raw, size_t pos, uint8_t **p, size_t *len)
{
    kl_xml_token_t t;
    int r;
    size_t first = 0, last = 0;
    *p = NULL;
    *len = 0;
    while ((r = view_next(c, raw, &pos, &t)) > 0) {
        if (r == KL_XML_START)
            return KL_ERR_PROTOCOL;
        if (r == KL_XML_TEXT && !t.cdata) {
            size_t off = (size_t)(t.text.p - c->rx);
            if (!*p)
                first = off;
            last = off + t.text.len;
            *p = c->rx + first;
        }
    }
    *len = *p ? last - first : 0;
    return KL_OK;
}

#if KL_ENABLE_SCRAM
/* SCRAM's challenge (server-first) answered with the client-final in
 * RFC 6120's or SASL2's <response/>; under full pipelining the restart and
 * the bind ride along (RFC 6120: the client-final is the final response). */
static int scram_response(kl_client_t *c, kl_stanza_t *st, size_t pos, int sasl2, kl_event_t *ev)
{
    kl_xw_t w;
    uint8_t *text;
    size_t len;
    int s;
    if ((s = element_text(c, st->raw, pos, &text, &len)) != KL_OK)
        return fail(c, s, NULL, ev);
    out_begin(c, &w);
    w_el(&w, "<response", sasl2 ? NS_SASL2 : NS_SASL, "'>");
    if ((s = kl_scram_challenge(c, text, len, &w)) != KL_OK) {
        set_condition_str(c, s == KL_ERR_DOWNGRADE ? "downgrade" : "bad-challenge");
        return fail(c, s, NULL, ev);
    }
    w_cstr(&w, "</response>");
    if ((c->flags & FL_FULL) && !sasl2)
        w_restart_and_bind(c, &w);
    c->flags |= FL_SCRAM_FINAL;
    return commit_step(c, &w, ev);
}
#else
#define scram_response(c, st, pos, sasl2, ev) fail(c, KL_ERR_NO_MECHANISM, NULL, ev)
#endif

static int on_sasl(kl_client_t *c, kl_stanza_t *st, size_t pos, kl_event_t *ev)
{
    int scram = KL_ENABLE_SCRAM && (c->sasl_mech & KL_MECH_SCRAM_ANY);
    uint8_t *text;
    size_t len;
    if (c->state != ST_AUTH || !(c->flags & FL_SENT_AUTH) || S2_SENT_ON(c))
        return fail(c, KL_ERR_PROTOCOL, "policy-violation", ev);
    if (is_named(st, "success")) {
        kl_xw_t w;
        if (scram) {
            /* the server proves it knows the password too */
            if (!(c->flags & FL_SCRAM_FINAL) || element_text(c, st->raw, pos, &text, &len) != KL_OK ||
                kl_scram_success(c, text, len) != KL_OK) {
                set_condition_str(c, "server-signature-mismatch");
                return fail(c, KL_ERR_AUTH, NULL, ev);
            }
        }
        /* Stream restart: the bytes after </success> belong to a new stream. */
        c->state = ST_BIND;
        begin_stream(c);
        if (c->flags & FL_SENT_RESTART)
            return 0; /* full: our header and bind went with the auth */
        out_begin(c, &w);
        w_stream_header(c, &w);
        if (c->cfg.pipelining >= KL_PIPELINING_SAFE && !IS_S2S(c))
            w_session(c, &w);
        return commit_step(c, &w, ev);
    }
    if (is_named(st, "challenge") && scram && !(c->flags & FL_SCRAM_FINAL))
        return scram_response(c, st, pos, 0, ev);
    if (is_named(st, "failure")) {
        kl_xml_token_t t;
        int r;
        if (c->flags & FL_AUTH_RETRY) {
            /* our pipelined guess was refused: use what is on offer, on
             * RFC 6120's SASL still (XEP-0474's list was built for it, and
             * under full pipelining the restart went with the guess) */
            c->mechs_failed |= c->sasl_mech;
            c->flags &= (uint16_t) ~(FL_SENT_AUTH | FL_AUTH_RETRY);
            c->feat &= (uint16_t)~FT_SASL2;
            return send_auth(c, ev);
        }
        r = view_next(c, st->raw, &pos, &t);
        if (r == KL_XML_START)
            set_condition(c, t.local);
        return fail(c, KL_ERR_AUTH, NULL, ev);
    }
    /* a challenge to PLAIN, or anything else */
    return fail(c, KL_ERR_PROTOCOL, "policy-violation", ev);
}

#if KL_ENABLE_SASL2
/* A view's text as a mutable range of the receive buffer (decoded in place). */
static uint8_t *rx_text(kl_client_t *c, kl_slice_t t) { return c->rx + (t.p - c->rx); }

/* <success/>: the server's proof, the authorization identifier, and what
 * came inline: a Bind2 session (with <enabled/>), a resumed or failed
 * stream-management session, a FAST token. Online here: no restart. */
static int sasl2_success(kl_client_t *c, kl_stanza_t *st, size_t pos, kl_event_t *ev)
{
    kl_xml_token_t t;
    kl_slice_t add = {NULL, 0}, authz = {NULL, 0}, tok = {NULL, 0}, exp = {NULL, 0};
    kl_stanza_t enabled, resumed, failed; /* their attributes */
    char id[KL_JID_MAX];
    int r, in = 0, bound = 0, in_bound = 0, has_add = 0, has_authz = 0, has_tok = 0, has_en = 0, has_res = 0,
           has_failed = 0, n = 0;
    kl_cache_t *k = CACHE(c);
    memset(&enabled, 0, sizeof enabled);
    memset(&resumed, 0, sizeof resumed);
    memset(&failed, 0, sizeof failed);
    while ((r = view_next(c, st->raw, &pos, &t)) > 0) {
        if (r == KL_XML_START && t.depth == 3) {
            in = in_bound = 0;
            if (is_el(&t, "additional-data", NS_SASL2))
                in = 1, has_add = 1;
            else if (is_el(&t, "authorization-identifier", NS_SASL2) ||
                     is_el(&t, "authorization-identity", NS_SASL2)) /* XEP-0388's prose */
                in = 2, has_authz++;
            else if (is_el(&t, "bound", NS_BIND2))
                bound = in_bound = 1;
            else if (is_el(&t, "token", NS_FAST))
                has_tok = kl_xml_attr_get(t.attrs, "token", &tok), (void)kl_xml_attr_get(t.attrs, "expiry", &exp);
            else if (KL_ENABLE_SM && is_el(&t, "resumed", NS_SM))
                has_res = 1, resumed.attrs = t.attrs;
            else if (KL_ENABLE_SM && is_el(&t, "failed", NS_SM))
                has_failed = 1, failed.attrs = t.attrs;
        } else if (r == KL_XML_START && t.depth == 4 && in_bound && KL_ENABLE_SM && is_el(&t, "enabled", NS_SM)) {
            has_en = 1, enabled.attrs = t.attrs;
        } else if (r == KL_XML_START && in) {
            return fail(c, KL_ERR_PROTOCOL, "invalid-xml", ev);
        } else if (r == KL_XML_TEXT && in) {
            kl_slice_t *dst = in == 1 ? &add : &authz;
            if (dst->len) /* one piece: base64 and JIDs have no references */
                return fail(c, KL_ERR_PROTOCOL, "invalid-xml", ev);
            *dst = t.text;
            if (t.cdata)
                return fail(c, KL_ERR_PROTOCOL, "invalid-xml", ev);
        } else if (r == KL_XML_END && t.depth == 3) {
            in = in_bound = 0;
        }
    }
    /* 1. the server proves it knows the secret too: SCRAM's signature,
     * FAST's Responder hash; nothing else counts before that */
    if (((c->sasl_mech & KL_MECH_SCRAM_ANY) &&
         (!(c->flags & FL_SCRAM_FINAL) || !has_add || !add.len || kl_scram_success(c, rx_text(c, add), add.len) != KL_OK)) ||
        ((c->sasl_mech & KL_MECH_HT) && (!add.len || kl_ht_success(c, rx_text(c, add), add.len) != KL_OK))) {
        set_condition_str(c, "server-signature-mismatch");
        return fail(c, KL_ERR_AUTH, NULL, ev);
    }
    /* 2. whom we are now: this account, a full JID after Bind2 */
    if (has_authz == 1 && authz.len)
        n = kl_xml_decode(authz, 0, (uint8_t *)id, sizeof id - 1);
    if (n <= 0) {
        set_condition_str(c, has_authz ? "bad-authorization-identifier" : "no-authorization-identifier");
        return fail(c, KL_ERR_AUTHZID, NULL, ev);
    }
    id[n] = '\0';
    if ((size_t)n < c->bare_len || !jid_eq(id, c->bare_len, c->cfg.jid, c->bare_len) ||
        ((size_t)n > c->bare_len && id[c->bare_len] != '/')) {
        set_condition_str(c, "bad-authorization-identifier");
        return fail(c, KL_ERR_AUTHZID, NULL, ev);
    }
    c->stats.sasl2 = 1;
    c->stats.fast = (c->sasl_mech & KL_MECH_HT) != 0;
    c->stats.channel_bound = (c->sasl_mech & KL_MECH_PLUS) != 0;
    /* 3. a FAST token (new, or rotated) for the hints */
    if (has_tok && k && !c->cfg.no_fast) {
        uint8_t buf[KL_CACHE_FAST_TOKEN_MAX];
        int m = tok.len ? kl_xml_decode(tok, KL_XML_RAW_ATTR, buf, sizeof buf) : -1;
        if (m > 0) { /* the old one goes only for a new one kept */
            kl_cache_drop_fast(k);
            memcpy(k->fast_token, buf, (size_t)m);
            k->fast_len = (uint8_t)m;
            /* the only kind asked for (<request-token/>), and a rotated
             * one is of the kind in use: the hints' (NONE) or NONE */
            k->fast_mech = KL_MECH_HT_NONE;
            if (!exp.len || kl_datetime_parse(exp, &k->fast_expiry) != KL_OK)
                k->fast_expiry = 0;
            c->stats.fast_token_new = 1;
        }
        kl_wipe(buf, sizeof buf);
        kl_cache_seal(k);
    }
    c->s2 &= (uint8_t)~S2_SENT;
#if KL_ENABLE_SM
    /* 4. the old stream-management session back, or not */
    if (c->s2 & S2_RESUME) {
        if (has_res) {
            c->state = ST_BIND; /* where sm_resumed expects a resumption */
            c->stats.inline_resumed = 1;
            return sm_resumed(c, &resumed, ev);
        }
        /* refused (<failed/>) or ignored: a new session (Bind2 below);
         * the server's h, if it says one, still tells what it got */
        {
            uint32_t h = 0;
            kl_sm_t *s = &c->sm;
            s->resuming = 0;
            s->resumable = 0;
            if (has_failed && attr_u32(&failed, "h", &h) > 0 && h - s->acked - 1 < s->out - s->acked)
                sm_drop_acked(c, h);
        }
    } else if (has_res) {
        return fail(c, KL_ERR_SM_RESUME, "undefined-condition", ev);
    }
#else
    (void)has_res, (void)has_failed, (void)has_en;
#endif
    if (!bound) {
        /* no Bind2: RFC 6120's bind on this same stream (no restart) */
        c->state = ST_BIND;
        return send_bind(c, ev);
    }
    /* 5. a new session, bound inline */
    if ((size_t)n <= c->bare_len) {
        set_condition_str(c, "bad-authorization-identifier");
        return fail(c, KL_ERR_AUTHZID, NULL, ev);
    }
    memcpy(c->jid, id, (size_t)n + 1);
    if (!bound_jid_ok(c, (size_t)n)) {
        c->jid[0] = '\0';
        return fail(c, KL_ERR_BIND_JID, NULL, ev);
    }
    c->stats.bind2 = 1;
#if KL_ENABLE_SM
    {
        kl_sm_t *s = &c->sm;
        /* what the old session still holds is handed back at online */
        s->handback = s->records;
        s->resumable = 0;
        s->id[0] = s->location[0] = '\0';
        s->on = KL_SM_OFF;
        if (has_en && sm_usable(c)) {
            s->out = s->acked = s->max_s = 0;
            s->unreq = 0;
            sm_enabled(c, &enabled);
        }
    }
#endif
    return go_online(c, ev);
}

/* A SASL condition that refuses the credential itself (RFC 6120 6.5). */
static int refusal(const char *cond)
{
    return !strcmp(cond, "not-authorized") || !strcmp(cond, "credentials-expired") ||
           !strcmp(cond, "account-disabled") || !strcmp(cond, "invalid-mechanism") || !cond[0];
}

/* The answer to <authenticate/>. */
static int on_sasl2(kl_client_t *c, kl_stanza_t *st, size_t pos, kl_event_t *ev)
{
    kl_xw_t w;
    if (c->state != ST_AUTH || !(c->s2 & S2_SENT))
        return fail(c, KL_ERR_PROTOCOL, "policy-violation", ev);
    if (is_named(st, "success"))
        return sasl2_success(c, st, pos, ev);
    if (is_named(st, "challenge") && KL_ENABLE_SCRAM && (c->sasl_mech & KL_MECH_SCRAM_ANY) &&
        !(c->flags & FL_SCRAM_FINAL))
        return scram_response(c, st, pos, 1, ev);
    if (is_named(st, "failure")) {
        kl_xml_token_t t;
        int r;
        while ((r = view_next(c, st->raw, &pos, &t)) > 0)
            if (r == KL_XML_START && t.depth == 3 && !kl_slice_eq(t.local, "text")) {
                set_condition(c, t.local);
                break;
            }
        if ((c->sasl_mech & KL_MECH_HT) && (c->flags & FL_AUTH_RETRY)) {
            /* the token went out on the hints' word and the live features
             * no longer offer its mechanism: refused unseen, it is kept */
            if (!c->cfg.password)
                return fail(c, KL_ERR_FAST_UNAVAILABLE, NULL, ev);
        } else if ((c->sasl_mech & KL_MECH_HT) && !refusal(c->condition)) {
            /* not a verdict on the token (temporary-auth-failure, aborted,
             * malformed-request, ...): it is kept; the password, if any,
             * takes over now, else the manager tries again later */
            if (!c->cfg.password)
                return fail(c, KL_ERR_AUTH_LATER, NULL, ev);
        } else if (c->sasl_mech & KL_MECH_HT) {
            /* the token is refused: forgotten; the password takes over */
            if (CACHE(c) && !(c->s2 & S2_PROVISIONED)) {
                kl_cache_drop_fast(CACHE(c));
                kl_cache_seal(CACHE(c));
            }
            c->stats.fast_refused = 1;
            if (!c->cfg.password)
                return fail(c, KL_ERR_FAST_REFUSED, NULL, ev);
        } else if (!(c->flags & FL_AUTH_RETRY)) {
            return fail(c, KL_ERR_AUTH, NULL, ev);
        }
        /* try again on this stream with what is on offer (XEP-0388 lets a
         * client retry after <failure/>) */
        if (!(c->flags & FL_GOT_FEATURES))
            return fail(c, KL_ERR_PROTOCOL, "policy-violation", ev);
        c->mechs_failed |= c->sasl_mech;
        c->condition[0] = '\0';
        c->flags &= (uint16_t) ~(FL_SENT_AUTH | FL_AUTH_RETRY | FL_SCRAM_FINAL);
        c->s2 = 0;
#if KL_ENABLE_SM
        c->sm.resuming = 0;
#endif
        return send_auth(c, ev);
    }
    if (is_named(st, "continue")) {
        /* a task (2FA, a password change) this client cannot do */
        out_begin(c, &w);
        w_el(&w, "<abort", NS_SASL2, "'/>");
        (void)out_commit(c, &w);
        set_condition_str(c, "unsupported-task");
        return fail(c, KL_ERR_SASL2_TASK, NULL, ev);
    }
    return fail(c, KL_ERR_PROTOCOL, "policy-violation", ev);
}
#endif

static int on_stream_error(kl_client_t *c, kl_stanza_t *st, size_t pos, kl_event_t *ev)
{
    kl_xml_token_t t;
    int r;
    (void)st;
    while ((r = view_next(c, st->raw, &pos, &t)) > 0) {
        if (r == KL_XML_START && t.depth == 3 && is_ns(t.ns, NS_STREAM_ERR) && !kl_slice_eq(t.local, "text")) {
            set_condition(c, t.local);
            break;
        }
    }
    if (!c->condition[0])
        set_condition_str(c, "undefined-condition");
    return fail(c, KL_ERR_STREAM_ERROR, NULL, ev);
}

/* A complete top-level element rx[s, e); kind: what classify() made of its
 * start tag. Returns 1 with an event, 0 to go on. */
static int on_element(kl_client_t *c, size_t s, size_t e, uint8_t kind, kl_event_t *ev)
{
    kl_slice_t raw = {c->rx + s, e - s};
    kl_stanza_t st;
    size_t pos = 0;
    int r = open_view(c, raw, &st, &pos);
    if (r != KL_OK)
        return fail_xml(c, r, ev);
    /* After kl_client_close() nothing reaches the application but the end
     * of the stream: stanzas, a late bind result, SASL or TLS answers to
     * what we sent before closing are read and dropped. */
    if (is_ns(st.ns, NS_STREAMS)) {
        if (is_named(&st, "error"))
            return on_stream_error(c, &st, pos, ev);
        if (c->state == ST_CLOSING)
            return 0;
        if (is_named(&st, "features"))
            return on_features(c, raw, pos, ev);
        return fail(c, KL_ERR_PROTOCOL, "unsupported-stanza-type", ev);
    }
    if (c->state == ST_CLOSING)
        return 0;
    if (is_ns(st.ns, NS_TLS)) {
        if (c->state != ST_NEG || !(c->flags & FL_SENT_STARTTLS))
            return fail(c, KL_ERR_PROTOCOL, "policy-violation", ev);
        if (is_named(&st, "proceed")) {
            if (c->flags & FL_EARLY_TLS) {
                /* full: our ClientHello went before; what follows
                 * <proceed/> is the server's handshake, for TLS only. */
                ev->tls_data.p = c->rx + e;
                ev->tls_data.len = c->rx_len - e;
                c->rx_pos = c->scan = c->rx_len; /* dropped at the next call */
                c->state = ST_TLS_WAIT;
                ev->type = KL_EV_START_TLS;
                return 1;
            }
            /* Nothing may follow <proceed/> before our ClientHello: bytes
             * here are an attack or a broken server, never parsed later. */
            if (e != c->rx_len)
                return fail(c, KL_ERR_TLS_PREREAD, NULL, ev);
            c->rx_len = c->rx_pos = c->scan = 0;
            c->state = ST_TLS_WAIT;
            ev->type = KL_EV_START_TLS;
            return 1;
        }
        return fail(c, KL_ERR_STARTTLS_FAILED, NULL, ev);
    }
    if (is_ns(st.ns, NS_SASL))
        return on_sasl(c, &st, pos, ev);
#if KL_ENABLE_SASL2
    if (is_ns(st.ns, NS_SASL2))
        return on_sasl2(c, &st, pos, ev);
#endif
    if (kind == SK_STANZA) /* online: a message, presence or iq */
        return on_stanza(c, &st, pos, ev);
#if KL_ENABLE_SM
    if (is_ns(st.ns, NS_SM) && c->state >= ST_BIND && !IS_S2S(c))
        return on_sm(c, &st, ev);
#endif
    if (is_ns(st.ns, stream_ns(c))) {
        if (c->state == ST_BIND && !sm_resuming(c) && is_named(&st, "iq") &&
            (kl_xml_decoded_eq(st.id, bind_id) ||
             (KL_ENABLE_LEGACY_SESSION && kl_xml_decoded_eq(st.id, session_id))))
            return on_bind_result(c, &st, pos, ev);
        /* a stanza before online, or no stanza at all */
        if (c->state != ST_ONLINE)
            return fail(c, KL_ERR_PROTOCOL, "not-authorized", ev);
    }
    return fail(c, KL_ERR_PROTOCOL, "unsupported-stanza-type", ev);
}

/* ---- the tokenizer loop -------------------------------------------------- */

/* 1 for the receive bounds a stanza from the network may break without
 * breaking the stream: what is well-formed XML but too big or too deep
 * for this device. */
static int is_limit(int status)
{
    return status == KL_ERR_XML_DEPTH || status == KL_ERR_XML_STACK || status == KL_ERR_XML_NAME_TOO_LONG ||
           status == KL_ERR_XML_ATTR_TOO_LONG || status == KL_ERR_XML_ATTRS || status == KL_ERR_RX_FULL;
}

/* Leave the top-level element the stream tokenizer is in (or whose start
 * tag it failed on) to the tokenizer's skip mode: its bytes are consumed
 * as they arrive, nothing of it is kept or delivered. */
static int skip_element(kl_client_t *c, int status, kl_event_t *ev)
{
    if (kl_xml_skip(&c->xml, 2) != KL_OK)
        return fail_xml(c, status, ev);
    c->rx_pos = c->scan;
    c->streaming = STREAMING_OFF;
    c->stanza_kind = SK_NONE;
    return 0;
}

/* The tokenizer failed. Malformed XML ends the stream. An element that
 * broke a receive bound: once online (RFC 6120 leaves limits
 * to the entity, and a relayed stanza from anyone must not take the
 * device offline) it is skipped, an IQ request among them answered
 * policy-violation while its start tag is still at hand, and the
 * application told; before online the stream itself is broken. After our
 * close it goes without a word. */
static int drop_element(kl_client_t *c, int status, kl_event_t *ev)
{
    if (!is_limit(status) || (c->state != ST_ONLINE && c->state != ST_CLOSING))
        return fail_xml(c, status, ev);
    /* a stanza the stream tokenizer had not seen whole yet counts as
     * handled now (a streamed one was at its start) */
    if (!c->streaming && c->stanza_kind != SK_OTHER)
        sm_handled(c);
    if (c->state == ST_ONLINE && !c->streaming && c->xml.depth >= 2) {
        kl_stanza_t st;
        size_t pos;
        kl_slice_t raw = {c->rx + c->stanza_start, c->scan - c->stanza_start};
        if (open_view(c, raw, &st, &pos) == KL_OK && (unsigned)(iq_kind(&st) - IQ_GET) <= IQ_SET - IQ_GET)
            auto_answer(c, &st, ANSWER_POLICY);
    }
    if (skip_element(c, status, ev))
        return 1;
    if (c->state != ST_ONLINE)
        return 0;
    c->stats.stanzas_dropped++;
    ev->type = KL_EV_STANZA_DROPPED;
    ev->status = status;
    return 1;
}

static int on_stream_header(kl_client_t *c, const kl_xml_token_t *t, kl_event_t *ev)
{
    kl_slice_t v;
    if (!is_el(t, "stream", NS_STREAMS))
        return fail(c, KL_ERR_PROTOCOL, "invalid-namespace", ev);
    /* RFC 6120 4.7.5: the answer carries a version no higher than ours (1.0) */
    if (!kl_xml_attr_get(t->attrs, "version", &v) || v.len < 3 || v.p[0] != '1' || v.p[1] != '.' ||
        v.p[2] < '0' || v.p[2] > '9')
        return fail(c, KL_ERR_PROTOCOL, "unsupported-version", ev);
    c->flags |= FL_GOT_HEADER;
    /* Views and cursors of this stream's stanzas start from this context. */
    c->root = c->xml;
    return 0;
}

static int on_stream_end(kl_client_t *c, kl_event_t *ev)
{
    return finish(c, c->state == ST_CLOSING ? KL_OK : KL_ERR_STREAM_CLOSED, ev);
}

/* What a start tag at depth 2 opens. */
static uint8_t classify(const kl_client_t *c, const kl_xml_token_t *t)
{
    if (c->state == ST_ONLINE && is_ns(t->ns, stream_ns(c)) &&
        (kl_slice_eq(t->local, "message") || kl_slice_eq(t->local, "presence") ||
         kl_slice_eq(t->local, "iq")))
        return SK_STANZA;
    return SK_OTHER;
}

static int is_whitespace(kl_slice_t s)
{
    size_t i;
    for (i = 0; i < s.len; i++)
        if (s.p[i] != ' ' && s.p[i] != '\t' && s.p[i] != '\r' && s.p[i] != '\n')
            return 0;
    return 1;
}

/* A stanza larger than the receive buffer: first replay what the stream
 * tokenizer already scanned with c->vx (its start tag becomes
 * KL_EV_STANZA_BEGIN), then hand on the stream tokenizer's own tokens,
 * consuming bytes as they are delivered. */
static int stream_large(kl_client_t *c, kl_event_t *ev)
{
    kl_xml_token_t t;
    size_t n = 0;
    int r, k;
    if (c->state == ST_CLOSING)
        return skip_element(c, KL_ERR_RX_FULL, ev); /* nothing after our close */
    if (c->streaming == STREAMING_REPLAY) {
        /* tokens c->xml accepted from c->root: never an error (see view_next) */
        r = kl_xml_next(&c->vx, c->rx + c->rx_pos, c->scan - c->rx_pos, &n, &t);
        if (r > 0) {
            kl_slice_t raw = {c->rx + c->rx_pos, n};
            c->rx_pos += n;
            if (r == KL_XML_START && t.depth == 2) {
                kl_stanza_t st;
                view_from_token(&st, &t, raw);
                if (s2s_admit(c, &st, ev))
                    return 1;
                k = iq_kind(&st);
                c->stats.stanzas_in++;
                sm_handled(c);
                if (k && k <= IQ_SET && !c->cfg.deliver_iq) {
                    /* too big for us, and nobody here takes requests */
                    auto_answer(c, &st, ANSWER_ERROR);
                    return skip_element(c, KL_ERR_RX_FULL, ev);
                }
                ev->type = KL_EV_STANZA_BEGIN;
                ev->stanza = st;
                if (k >= IQ_RESULT)
                    ev->iq_id = (uint16_t)match_iq(c, &st);
                return 1;
            }
            ev->type = KL_EV_TOKEN;
            ev->token = t;
            return 1;
        }
        c->streaming = STREAMING_LIVE;
    }
    r = kl_xml_next(&c->xml, c->rx + c->scan, c->rx_len - c->scan, &n, &t);
    if (r < 0)
        return drop_element(c, r, ev);
    if (r == KL_XML_NEED_MORE) {
        if (c->rx_pos == 0 && c->rx_len == sizeof c->rx)
            return drop_element(c, KL_ERR_RX_FULL, ev); /* one token bigger than the buffer */
        return 0;
    }
    c->scan += n;
    c->rx_pos = c->scan;
    if (r == KL_XML_END && t.depth == 2) {
        c->streaming = STREAMING_OFF;
        c->stanza_kind = SK_NONE;
        ev->type = KL_EV_STANZA_END;
        return 1;
    }
    ev->type = KL_EV_TOKEN;
    ev->token = t;
    return 1;
}

/* The engine's own deadline (up to online and while online): the
 * negotiation timeout before online; online, the keepalive's (nothing
 * received, or nothing sent, for cfg.keepalive_ms) or, once a probe is out, the
 * dead-peer timeout. */
static uint32_t deadline(const kl_client_t *c)
{
    uint32_t quiet = (int32_t)(c->last_tx - c->last_io) < 0 ? c->last_tx : c->last_io; /* the older */
    return c->state == ST_ONLINE && !c->ka_probe ? quiet + c->cfg.keepalive_ms : c->deadline;
}

/* The keepalive probe: <r/> under stream management, else a ping (XEP-0199)
 * that the server answers for the account, an IQ it must answer. Anything
 * at all that arrives clears it. */
static void send_probe(kl_client_t *c)
{
    kl_xw_t w;
#if KL_ENABLE_SM
    if (c->sm.on == KL_SM_ON) {
        c->sm.r_owed = 1; /* goes when this poll ends */
        c->stats.keepalives_sent++;
        return;
    }
#endif
    out_begin(c, &w);
    w_cstr(&w, "<iq type='get' id='");
    w_cstr(&w, ping_id);
    w_el(&w, "'><ping", NS_PING, "'/></iq>");
    if (out_commit(c, &w) == KL_OK)
        c->stats.keepalives_sent++;
}

static int check_timers(kl_client_t *c, kl_event_t *ev)
{
    size_t i;
    if (c->state <= ST_ONLINE && time_reached(c->now, deadline(c))) {
        if (c->state < ST_ONLINE)
            return fail(c, KL_ERR_TIMEOUT, NULL, ev);
        if (c->ka_probe) {
            /* no </stream:stream>: a stream-management session must stay
             * resumable (a clean close would end it) */
            c->flags |= FL_SENT_CLOSE;
            return finish(c, KL_ERR_DEAD_PEER, ev);
        }
        send_probe(c);
        /* armed even when the probe found no room: output that cannot
         * leave for the whole timeout is a dead link too */
        c->ka_probe = 1;
        c->deadline = c->now + c->cfg.keepalive_timeout_ms;
    }
    for (i = 0; i < KL_MAX_PENDING_IQ; i++) {
        if (c->iq[i].handle && time_reached(c->now, c->iq[i].deadline)) {
            ev->type = KL_EV_IQ_TIMEOUT;
            ev->iq_id = c->iq[i].handle;
            if (KL_ENABLE_CACHE && c->roster_iq == ev->iq_id)
                c->roster_iq = 0;
            if (KL_ENABLE_CACHE && c->disco_iq == ev->iq_id)
                c->disco_iq = 0;
            c->iq[i].handle = 0;
            return 1;
        }
    }
    return 0;
}

int kl_engine_poll(kl_client_t *c, uint32_t now_ms, kl_event_t *ev)
{
    int r;
    if (!c || !ev)
        return KL_ERR_ARG;
    memset(ev, 0, sizeof *ev);
    ev->condition = "";
    c->now = now_ms;
    if (c->flags & FL_REPORT_CLOSED) {
        c->flags &= (uint16_t)~FL_REPORT_CLOSED;
        ev->type = KL_EV_CLOSED;
        ev->status = KL_OK;
        return 1;
    }
    if (c->state == ST_INIT || c->state == ST_DONE || c->state == ST_TLS_WAIT)
        goto wait;
#if KL_ENABLE_APP
    if (c->long_out)
        return 0; /* a long stanza is open: nothing of ours may go between its pieces */
#endif
    if (FULL_ON && (c->flags & (FL_EARLY_TLS | FL_TLS)) == FL_EARLY_TLS && !c->early_reported) {
        c->early_reported = 1;
        ev->type = KL_EV_START_TLS;
        ev->early = 1;
        return 1;
    }
    if ((r = check_timers(c, ev)) != 0)
        return r;
#if KL_ENABLE_SM
    if (c->state == ST_ONLINE) {
        if ((r = sm_events(c, ev)) != 0)
            return r;
        if (c->sm.resending && !sm_resend(c)) {
            if ((r = sm_events(c, ev)) != 0)
                return r; /* a long stanza that cannot go again */
            goto wait; /* input waits for the resumed session's order */
        }
    }
#endif

    for (;;) {
        kl_xml_token_t t;
        size_t n = 0, before;
        /* Keep room for automatic answers: the port must drain output. */
        if (sizeof c->tx - (c->tx_len - c->tx_sent) < TX_RESERVE)
            goto wait;
#if KL_ENABLE_APP
        if (c->app && sizeof c->tx - (c->tx_len - c->tx_sent) < kl_i_app_reserve(c->app))
            goto wait; /* ... the device's disco#info answer included */
#endif
        if (c->streaming) {
            r = stream_large(c, ev);
            if (r == 0)
                goto wait;
            return r;
        }
        before = c->scan;
        r = kl_xml_next(&c->xml, c->rx + c->scan, c->rx_len - c->scan, &n, &t);
        if (r < 0) {
            if ((r = drop_element(c, r, ev)) == 0)
                continue;
            return r;
        }
        if (r == KL_XML_NEED_MORE) {
            if (c->rx_pos == 0 && c->rx_len == sizeof c->rx) {
                if (c->stanza_kind == SK_STANZA) {
                    c->streaming = STREAMING_REPLAY;
                    kl_xml_init_inner(&c->vx, &c->root);
                    continue;
                }
                /* a start tag, or a non-stanza element, bigger than the buffer */
                if ((r = drop_element(c, KL_ERR_RX_FULL, ev)) == 0)
                    continue;
                return r;
            }
            goto wait;
        }
        if (r == KL_XML_SKIP) {
            /* a dropped element's bytes: consumed, never kept */
            c->scan += n;
            c->rx_pos = c->scan;
            continue;
        }
        c->scan += n;
        if (t.depth == 1) {
            if (r == KL_XML_START) {
                c->rx_pos = c->scan;
                if ((r = on_stream_header(c, &t, ev)) != 0)
                    return r;
            } else if (r == KL_XML_END) {
                c->rx_pos = c->scan;
                return on_stream_end(c, ev);
            } else {
                /* whitespace keepalives between stanzas; nothing else */
                c->rx_pos = c->scan;
                if (!t.cdata && is_whitespace(t.text))
                    continue;
                return fail(c, KL_ERR_PROTOCOL, "not-well-formed", ev);
            }
        } else if (t.depth == 2 && r == KL_XML_START) {
            c->stanza_start = before + t.offset;
            c->stanza_kind = classify(c, &t);
        } else if (t.depth == 2 && r == KL_XML_END) {
            size_t s = c->stanza_start, e = c->scan;
            uint8_t kind = c->stanza_kind;
            c->rx_pos = e;
            c->stanza_kind = SK_NONE;
            /* only finish() ends the session, and it reports: 0 is never ST_DONE */
            if ((r = on_element(c, s, e, kind, ev)) != 0)
                return r;
        }
    }
wait:
#if KL_ENABLE_SM
    sm_flush(c);
#endif
    c->flight_open = 0;
    ev->type = KL_EV_NONE;
    return 0;
}

uint32_t kl_engine_next_timeout(const kl_client_t *c, uint32_t now_ms)
{
    uint32_t best = UINT32_MAX, at;
    size_t i;
#if KL_ENABLE_APP
    if (c && c->long_out)
        return UINT32_MAX; /* nothing is served until the long stanza ends */
#endif
    if (!c || c->state == ST_INIT || c->state == ST_DONE)
        return best;
    if (c->state <= ST_ONLINE)
        best = time_reached(now_ms, at = deadline(c)) ? 0 : at - now_ms;
#if KL_ENABLE_SM
    if (c->state == ST_ONLINE) {
        const kl_sm_t *s = &c->sm;
        /* events owed, or output owed now that the port drained what was
         * waiting (a full buffer: its draining brings the next poll) */
        if (s->handback || s->online_owed ||
            ((s->resending || (s->on == KL_SM_ON && (s->a_owed || s->r_owed))) && c->tx_len == c->tx_sent))
            return 0;
        if (s->on == KL_SM_ON && s->out != s->acked && !s->r_owed) {
            at = sm_ack_at(c);
            at = time_reached(now_ms, at) ? 0 : at - now_ms;
            if (at < best)
                best = at;
        }
    }
#endif
    for (i = 0; i < KL_MAX_PENDING_IQ; i++) {
        if (c->iq[i].handle) {
            uint32_t d = time_reached(now_ms, c->iq[i].deadline) ? 0 : c->iq[i].deadline - now_ms;
            if (d < best)
                best = d;
        }
    }
    return best;
}

/* ---- sending -------------------------------------------------------------- */

static int can_send(const kl_client_t *c)
{
    return c->state == ST_ONLINE;
}

int kl_stanza_begin(kl_client_t *c, kl_xw_t *w)
{
    if (!c || !w)
        return KL_ERR_ARG;
    if (!can_send(c))
        return KL_ERR_NOT_ONLINE;
#if KL_ENABLE_SM
    if (c->sm.resending)
        return KL_ERR_TX_FULL; /* the resumed session's stanzas go first */
#endif
#if KL_ENABLE_APP
    if (c->long_out)
        return KL_ERR_TX_FULL; /* a long stanza is being written */
#endif
    out_begin(c, w);
    /* The reserve belongs to the engine's own answers. */
    w->cap = w->cap > TX_RESERVE ? w->cap - TX_RESERVE : 0;
    return KL_OK;
}

/* s2s: every top-level element about to be sent must carry a from of the
 * domain this stream authenticated and be closed, or nothing is sent. */
static int check_from(kl_client_t *c, const kl_xw_t *w)
{
    kl_xml_t x;
    kl_xml_token_t t;
    size_t pos = 0, n;
    int r, seen = 0;
    char ours[KL_JID_MAX];
    size_t ol = c->bare_len < sizeof ours ? c->bare_len : sizeof ours - 1;
    memcpy(ours, c->cfg.jid, ol);
    ours[ol] = '\0';
    kl_xml_init_inner(&x, &c->root);
    for (;;) {
        n = 0;
        r = kl_xml_next(&x, w->buf + pos, w->len - pos, &n, &t);
        pos += n;
        if (r < 0)
            return KL_ERR_FROM_DOMAIN; /* not even well-formed: refuse */
        if (r == KL_XML_NEED_MORE)
            break;
        if (r == KL_XML_START && t.depth == 2) {
            kl_slice_t from;
            if (!kl_xml_attr_get(t.attrs, "from", &from) || !raw_jid_in_domain(from, ours))
                return KL_ERR_FROM_DOMAIN;
            seen++;
        }
        if (r == KL_XML_END && t.depth == 2)
            kl_xml_init_inner(&x, &c->root); /* the next stanza, if any */
    }
    /* every byte read, at least one stanza, and the last one closed */
    return pos == w->len && seen && x.depth == x.base ? KL_OK : KL_ERR_FROM_DOMAIN;
}

int kl_stanza_commit(kl_client_t *c, const kl_xw_t *w)
{
    int st;
    if (!c || !w)
        return KL_ERR_ARG;
    if (!can_send(c))
        return KL_ERR_NOT_ONLINE;
    if (w->buf != c->tx + c->tx_len)
        return KL_ERR_STATE;
    if (IS_S2S(c) && kl_xw_status(w) == KL_OK && (st = check_from(c, w)) != KL_OK)
        return st;
#if KL_ENABLE_SM
    if (c->sm.on && kl_xw_status(w) == KL_OK && (st = one_stanza(c, w)) != KL_OK)
        return st;
#endif
    st = commit_stanza(c, w, 0);
    if (st == KL_OK)
        c->stats.stanzas_out++;
    return st;
}

/* s2s: our domain as from, unless the caller names one. */
static void w_from(kl_client_t *c, kl_xw_t *w, const char *from)
{
    if (from)
        kl_xw_attr(w, "from", from);
    else if (IS_S2S(c))
        kl_xw_attr_n(w, "from", (const uint8_t *)c->cfg.jid, c->bare_len);
}

int kl_send_message(kl_client_t *c, const char *to, const char *type, const char *body)
{
    return kl_send_message_from(c, NULL, to, type, body);
}

int kl_send_message_from(kl_client_t *c, const char *from, const char *to, const char *type, const char *body)
{
    kl_xw_t w;
    int st = kl_stanza_begin(c, &w);
    if (st != KL_OK)
        return st;
    if (!to)
        return KL_ERR_ARG;
    kl_xw_start(&w, "message");
    w_from(c, &w, from);
    kl_xw_attr(&w, "to", to);
    kl_xw_attr(&w, "type", type ? type : "chat");
    if (body) {
        kl_xw_start(&w, "body");
        kl_xw_text(&w, (const uint8_t *)body, strlen(body));
        kl_xw_end(&w, "body");
    }
    kl_xw_end(&w, "message");
    return kl_stanza_commit(c, &w);
}

int kl_send_presence(kl_client_t *c, const char *to, const char *type, const char *status)
{
    kl_xw_t w;
    int st = kl_stanza_begin(c, &w);
    if (st != KL_OK)
        return st;
    kl_xw_start(&w, "presence");
    w_from(c, &w, NULL);
    if (to)
        kl_xw_attr(&w, "to", to);
    if (type)
        kl_xw_attr(&w, "type", type);
    if (status) {
        kl_xw_start(&w, "status");
        kl_xw_text(&w, (const uint8_t *)status, strlen(status));
        kl_xw_end(&w, "status");
    }
#if KL_ENABLE_APP
    if (c->app && !to && !type)
        kl_i_app_caps(c->app, &w); /* every broadcast carries the caps */
#endif
    kl_xw_end(&w, "presence");
    return kl_stanza_commit(c, &w);
}

/* Fills out with cryptographically strong random bytes from the port. */
static int get_random(const kl_client_t *c, uint8_t *out, size_t len)
{
    if (c->cfg.random)
        return c->cfg.random(c->cfg.random_ctx, out, len) == 0 ? KL_OK : KL_ERR_NO_ENTROPY;
    if (c->cfg.crypto && c->cfg.crypto->random)
        return c->cfg.crypto->random(c->cfg.crypto->ctx, out, len) == 0 ? KL_OK : KL_ERR_NO_ENTROPY;
    return KL_ERR_NO_ENTROPY;
}

/* An IQ request's start tag with a fresh random id in a free slot:
 * *slot is the slot, whose handle stays 0 until iq_register(). */
static int iq_prepare(kl_client_t *c, kl_xw_t *w, const char *to, const char *type, size_t *slot)
{
    kl_pending_iq_t *q;
    kl_xw_t idw;
    kl_b64_t b;
    uint8_t rnd[KL_IQ_ID_LEN / 4 * 3];
    size_t i;
    int st;
    if (!c || !type || (strcmp(type, "get") && strcmp(type, "set")))
        return KL_ERR_ARG;
    if (to && strlen(to) >= sizeof q->to)
        return KL_ERR_JID_TOO_LONG;
    if ((st = kl_stanza_begin(c, w)) != KL_OK)
        return st;
    for (i = 0; i < KL_MAX_PENDING_IQ && c->iq[i].handle; i++)
        ;
    if (i == KL_MAX_PENDING_IQ)
        return KL_ERR_IQ_SLOTS;
    q = &c->iq[i];
    /* 72 unpredictable bits: an entity that did not see the request
     * cannot answer it (RFC 6120 8.2.3) */
    if ((st = get_random(c, rnd, sizeof rnd)) != KL_OK)
        return st;
    kl_xw_init(&idw, (uint8_t *)q->id, KL_IQ_ID_LEN);
    kl_b64_init(&b, &idw);
    kl_b64_feed(&b, rnd, sizeof rnd);
    q->id[KL_IQ_ID_LEN] = '\0';
    memcpy(q->to, to ? to : "", to ? strlen(to) + 1 : 1);
    kl_xw_start(w, "iq");
    w_from(c, w, NULL);
    if (to)
        kl_xw_attr(w, "to", to);
    kl_xw_attr(w, "type", type);
    kl_xw_attr(w, "id", q->id);
    *slot = i;
    return KL_OK;
}

/* Close the request, queue it and give the slot its handle. */
static int iq_register(kl_client_t *c, kl_xw_t *w, size_t slot, uint32_t timeout_ms, uint16_t *id_out)
{
    kl_pending_iq_t *q = &c->iq[slot];
    size_t i;
    int st;
    kl_xw_end(w, "iq");
    if ((st = kl_stanza_commit(c, w)) != KL_OK)
        return st;
    /* the application's handle: small, never 0, never one in use */
    for (;;) {
        c->next_iq_id = (uint16_t)(c->next_iq_id + 1u);
        for (i = 0; i < KL_MAX_PENDING_IQ && c->iq[i].handle != c->next_iq_id; i++)
            ;
        if (c->next_iq_id && i == KL_MAX_PENDING_IQ)
            break;
    }
    q->handle = c->next_iq_id;
    q->deadline = c->now + (timeout_ms ? timeout_ms : c->cfg.iq_timeout_ms);
    if (id_out)
        *id_out = q->handle;
    return KL_OK;
}

int kl_send_iq(kl_client_t *c, const char *to, const char *type, const char *payload_xml,
               uint32_t timeout_ms, uint16_t *id_out)
{
    kl_xw_t w;
    size_t slot;
    int st = iq_prepare(c, &w, to, type, &slot);
    if (st != KL_OK)
        return st;
    if (payload_xml && *payload_xml)
        kl_xw_raw(&w, (const uint8_t *)payload_xml, strlen(payload_xml));
    return iq_register(c, &w, slot, timeout_ms, id_out);
}

int kl_send_roster_get(kl_client_t *c, uint16_t *id_out)
{
    char payload[KL_CACHE_ROSTER_VER_MAX * 6 + 64];
    const kl_cache_t *k = c ? CACHE(c) : NULL;
    uint16_t id;
    int st;
    kl_xw_t w;
    if (!c)
        return KL_ERR_ARG;
    kl_xw_init(&w, (uint8_t *)payload, sizeof payload - 1);
    kl_xw_start(&w, "query");
    kl_xw_attr(&w, "xmlns", NS_ROSTER);
    if (k && (k->flags & KL_CACHE_ROSTERVER)) {
        /* "" asks for the full roster with a version. Read within the
         * field even if the application's hints lost the terminator
         * kl_cache_load and cache_roster_ver keep; escaped, the longest
         * fits payload (6 bytes each at most), so the writer cannot fill */
        size_t n = 0;
        while (n < sizeof k->roster_ver && k->roster_ver[n])
            n++;
        kl_xw_attr_n(&w, "ver", (const uint8_t *)k->roster_ver, n);
    }
    kl_xw_end(&w, "query");
    payload[w.len] = '\0';
    if ((st = kl_send_iq(c, NULL, "get", payload, 0, &id)) != KL_OK)
        return st;
    c->roster_iq = id;
    if (id_out)
        *id_out = id;
    return KL_OK;
}

int kl_server_features(const kl_client_t *c, uint16_t *features)
{
    const kl_cache_t *k = c ? CACHE(c) : NULL;
    /* known only while the server still announces the same caps ver */
    if (!k || !k->caps_ver[0] || strcmp(k->caps_ver, k->disco_ver) != 0)
        return 0;
    if (features)
        *features = k->disco_features;
    return 1;
}

int kl_send_server_disco(kl_client_t *c, uint16_t *id_out)
{
    uint16_t id;
    int st;
    if (!c)
        return KL_ERR_ARG;
    if ((st = kl_send_iq(c, c->domain, "get", "<query xmlns='" NS_DISCO_INFO "'/>", 0, &id)) != KL_OK)
        return st;
    c->disco_iq = id;
    if (id_out)
        *id_out = id;
    return KL_OK;
}

int kl_client_close(kl_client_t *c)
{
    int st;
    if (!c)
        return KL_ERR_ARG;
    if (c->state == ST_DONE || c->state == ST_INIT || (c->flags & FL_SENT_CLOSE))
        return KL_ERR_STATE;
#if KL_ENABLE_APP
    if (c->long_out)
        return KL_ERR_TX_FULL; /* a long stanza is open: end it first */
#endif
#if KL_ENABLE_SM
    /* a clean close ends the stream-management session: nothing resumes it */
    c->sm.resumable = 0;
#endif
    if (c->state == ST_TLS_WAIT) {
        /* no stream to close yet: just report it */
        c->state = ST_DONE;
        c->final_status = KL_OK;
        c->flags |= FL_REPORT_CLOSED;
#if KL_ENABLE_SM
        kl_sm_reset(c);
#endif
        return KL_OK;
    }
#if KL_ENABLE_SM
    /* what we handled, acknowledged before the end: a server that still
     * counted it unacknowledged would route it elsewhere (Prosody does) */
    (void)kl_sm_ack_now(c);
#endif
    if ((st = send_close(c)) != KL_OK)
        return st;
    c->state = ST_CLOSING;
    /* nothing is reported after close but its end: no answers, no timeouts */
    memset(c->iq, 0, sizeof c->iq);
    if (KL_ENABLE_CACHE)
        c->roster_iq = c->disco_iq = 0;
    return KL_OK;
}

/* ---- misc ------------------------------------------------------------------ */

const kl_stats_t *kl_client_stats(const kl_client_t *c) { return &c->stats; }

void kl_stats_add_port_rt(kl_client_t *c, uint32_t n)
{
    if (c->state < ST_ONLINE)
        c->stats.port_round_trips += n;
}

const char *kl_client_jid(const kl_client_t *c) { return c->jid; }
const char *kl_client_domain(const kl_client_t *c) { return c->domain; }
int kl_client_is_online(const kl_client_t *c) { return c->state == ST_ONLINE; }

const char *kl_client_sasl_mechanism(const kl_client_t *c) { return mech_name(c->sasl_mech); }

int kl_client_set_channel_binding(kl_client_t *c, const uint8_t *data, size_t len)
{
    if (!c || len > KL_CB_MAX || (len && !data))
        return KL_ERR_ARG;
#if KL_ENABLE_SASL2
    if (len)
        memcpy(c->cb, data, len);
    memset(c->cb + len, 0, sizeof c->cb - len);
    c->cb_len = (uint8_t)len;
#endif
    return KL_OK;
}

int kl_client_full_pipelining(const kl_client_t *c) { return (c->flags & FL_FULL) != 0; }

int kl_engine_awaiting_header(const kl_client_t *c)
{
    return c->state != ST_INIT && c->state != ST_DONE && c->state != ST_TLS_WAIT && !(c->flags & FL_GOT_HEADER);
}

/* ---- the application layer's side of the engine (kl_app.h) ---------------- */

#if KL_ENABLE_APP
int kl_iq_begin(kl_client_t *c, kl_xw_t *w, const char *to, const char *type)
{
    size_t slot;
    int st;
    if (!c || !w)
        return KL_ERR_ARG;
    c->iq_slot = 0;
    if ((st = iq_prepare(c, w, to, type, &slot)) != KL_OK)
        return st;
    c->iq_slot = (uint8_t)(slot + 1);
    return KL_OK;
}

int kl_iq_commit(kl_client_t *c, kl_xw_t *w, uint32_t timeout_ms, uint16_t *id_out)
{
    size_t slot;
    if (!c || !w || !c->iq_slot)
        return KL_ERR_STATE;
    slot = (size_t)c->iq_slot - 1;
    c->iq_slot = 0;
    if (c->iq[slot].handle)
        return KL_ERR_STATE; /* the slot went to another request in between */
    return iq_register(c, w, slot, timeout_ms, id_out);
}

int kl_i_is_account(const kl_client_t *c, const char *jid)
{
    return jid_eq(jid, strlen(jid), c->cfg.jid, c->bare_len);
}

int kl_i_is_s2s(const kl_client_t *c) { return IS_S2S(c) != 0; }

/* The manager: this connection is BOSH or WebSocket (whole stanzas only). */
void kl_i_set_framed(kl_client_t *c, int framed) { c->framed = (uint8_t)(framed != 0); }

/* The app layer's automatic answers use the engine's reserve, as the
 * engine's own do: a full buffer never leaves a request unanswered. */
int kl_i_answer_begin(kl_client_t *c, kl_xw_t *w)
{
    if (!can_send(c))
        return KL_ERR_NOT_ONLINE; /* this also covers after our close */
    if (c->long_out)
        return KL_ERR_STATE;
#if KL_ENABLE_SM
    if (c->sm.resending)
        return KL_ERR_TX_FULL;
#endif
    out_begin(c, w);
    return KL_OK;
}

/* w is the writer kl_i_answer_begin just gave: kl_app.c writes only into
 * it in between. */
int kl_i_answer_commit(kl_client_t *c, kl_xw_t *w)
{
    int st;
    /* s2s: a reply's from is the request's to, which the engine checked for
     * what it delivered; a hand-built request is checked here, as any commit */
    if (IS_S2S(c) && kl_xw_status(w) == KL_OK && (st = check_from(c, w)) != KL_OK)
        return st;
    if ((st = commit_stanza(c, w, 1)) == KL_OK)
        c->stats.stanzas_out++;
    return st;
}

void kl_i_roster_ver(kl_client_t *c, const char *ver)
{
    kl_cache_t *k = CACHE(c);
    size_t n = strlen(ver);
    if (!k || n >= sizeof k->roster_ver || !(c->feat & FT_ROSTERVER))
        return;
    memcpy(k->roster_ver, ver, n + 1);
    kl_cache_seal(k);
}

/* disco#info to us: the app's identity and features, or item-not-found
 * for a node that is not ours. */
static void app_disco(kl_client_t *c, const kl_stanza_t *st, const kl_xml_token_t *q)
{
    kl_xw_t w;
    kl_slice_t node;
    int ours;
    /* from on_stanza: online, so not after our close (see auto_answer) */
    if (!kl_xml_attr_get(q->attrs, "node", &node))
        node.p = NULL, node.len = 0;
    ours = kl_i_app_node(c->app, node);
    out_begin(c, &w);
    kl_xw_start(&w, "iq");
    kl_xw_attr(&w, "type", ours ? "result" : "error");
    w_answer_addr(c, &w, st);
    if (ours)
        kl_i_app_disco(c->app, &w, node);
    else
        w_cstr(&w, "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>");
    kl_xw_end(&w, "iq");
    (void)commit_stanza(c, &w, 1);
}

/* ---- long stanzas out ---- */

int kl_send_long_open(const kl_client_t *c) { return c && c->long_out; }

int kl_send_message_begin(kl_client_t *c, const char *to, const char *type)
{
    kl_xw_t w;
    int st;
    if (!c || !to)
        return KL_ERR_ARG;
    if (c->long_out || (c->app && kl_i_app_busy(c->app)))
        return KL_ERR_STATE; /* one at a time; not from inside a dispatch (it would stall it) */
    if (c->framed)
        return KL_ERR_UNSUPPORTED; /* BOSH and WebSocket take whole stanzas only */
    if ((st = kl_stanza_begin(c, &w)) != KL_OK)
        return st;
    kl_xw_start(&w, "message");
    w_from(c, &w, NULL);
    kl_xw_attr(&w, "to", to);
    kl_xw_attr(&w, "type", type ? type : "chat");
    kl_xw_start(&w, "body");
    kl_xw_close_start(&w);
    if ((st = kl_xw_status(&w)) != KL_OK)
        return st == KL_ERR_WRITE_FULL ? KL_ERR_TX_FULL : st;
#if KL_ENABLE_SM
    /* counted, not kept: a placeholder record stands for it */
    if (c->sm.on && (st = kl_sm_push(c, NULL, 0, c->sm.out + 1, 0)) != KL_OK)
        return st;
#endif
    (void)out_commit(c, &w);
    c->stats.stanzas_out++;
    c->long_out = 1; /* from here nothing else is written (an <r/> waits for the end) */
#if KL_ENABLE_SM
    if (c->sm.on) {
        c->sm.out++;
        sm_sent(c);
    }
#endif
    return KL_OK;
}

int kl_send_text(kl_client_t *c, const uint8_t *text, size_t len)
{
    kl_xw_t w;
    size_t end = len, k = len, n, cost = 0;
    if (!c || (!text && len))
        return KL_ERR_ARG;
    if (!c->long_out)
        return KL_ERR_STATE;
    /* a sequence split at len (a lead byte 0xC2..0xF4 short of its
     * continuation bytes) waits for its rest; other bytes are the
     * writer's to judge */
    while (k > 0 && len - k < 3 && (text[k - 1] & 0xC0) == 0x80)
        k--;
    if (k > 0 && text[k - 1] >= 0xC2 && text[k - 1] <= 0xF4 &&
        len - (k - 1) < (text[k - 1] >= 0xF0 ? 4u : text[k - 1] >= 0xE0 ? 3u : 2u))
        end = k - 1;
    out_begin(c, &w);
    /* as much as the free space takes once escaped (kl_xw_text: & < > ' "
     * as entities, CR as &#13;), cut back to a sequence boundary */
    for (n = 0; n < end; n++) {
        uint8_t b = text[n];
        cost += b == '\'' || b == '"' ? 6 : b == '&' || b == '\r' ? 5 : b == '<' || b == '>' ? 4 : 1;
        if (cost > w.cap)
            break;
    }
    for (k = 0; k < 3 && n > 0 && n < end && (text[n] & 0xC0) == 0x80; k++)
        n--;
    if (n > 0 && n < end && (text[n] & 0xC0) == 0x80)
        return KL_ERR_XML_UTF8; /* a run of continuation bytes: no sequence */
    if (n == 0)
        return 0; /* no room now (or nothing whole yet) */
    kl_xw_text(&w, text, n);
    if (kl_xw_status(&w) != KL_OK)
        return kl_xw_status(&w) == KL_ERR_WRITE_FULL ? 0 : KL_ERR_XML_UTF8;
    (void)out_commit(c, &w);
    return (int)n;
}

int kl_send_message_end(kl_client_t *c)
{
    kl_xw_t w;
    if (!c)
        return KL_ERR_ARG;
    if (!c->long_out)
        return KL_ERR_STATE;
    out_begin(c, &w);
    w_cstr(&w, "</body></message>");
    if (kl_xw_status(&w) != KL_OK)
        return KL_ERR_TX_FULL;
    (void)out_commit(c, &w);
    c->long_out = 0;
#if KL_ENABLE_SM
    sm_flush(c); /* what was owed meanwhile (<r/>, <a/>) */
#endif
    return KL_OK;
}

#if KL_ENABLE_CSI
int kl_csi_set(kl_client_t *c, int active)
{
    kl_xw_t w;
    if (!c)
        return KL_ERR_ARG;
    if (!can_send(c))
        return KL_ERR_NOT_ONLINE;
    if (!(c->feat & (FT_CSI | FT_BIND2_CSI)))
        return KL_ERR_UNSUPPORTED;
    if (c->long_out)
        return KL_ERR_TX_FULL;
    out_begin(c, &w);
    w.cap = w.cap > TX_RESERVE ? w.cap - TX_RESERVE : 0;
    w_el(&w, active ? "<active" : "<inactive", NS_CSI, "'/>");
    return out_commit(c, &w); /* a nonza: not counted by stream management */
}
#endif
#endif /* KL_ENABLE_APP */
