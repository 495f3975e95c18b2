/* kinglet — the connection manager (see kl_session.h). */
#define KL_CORE_BUILD 1 /* the engine's fields: the negotiation deadline grows with the timeouts */
#include "kinglet/kl_session.h"

#include "kl_string.h"
#include "kl_internal.h"

#if KL_ENABLE_BOSH
#include "kinglet/kl_bosh.h"
#endif
#if KL_ENABLE_WS
#include "kinglet/kl_ws.h"
#endif

enum { S_IDLE = 0, S_BACKOFF, S_CONNECT, S_TLS, S_RUN, S_DONE };
enum { SL_OFF = 0, SL_CONNECTING, SL_UP, SL_HANDSHAKE };
/* STARTTLS inside S_RUN */
enum { TP_NONE = 0, TP_FLUSH, TP_FLUSH_EARLY, TP_EARLY, TP_HANDSHAKE };

#define CLOSE_GRACE_MS 3000u

/* ---- small helpers -------------------------------------------------------- */

static void note(kl_session_t *s, const char *text)
{
    if (s->cfg.trace)
        s->cfg.trace(s->cfg.trace_arg, 'i', NULL, 0, text);
}

static void set_text3(kl_session_t *s, const char *a, const char *b, const char *c)
{
    const char *part[3] = {a, b, c};
    size_t n = 0, cap = sizeof s->error_text - 1;
    for (int i = 0; i < 3; i++)
        for (const char *p = part[i]; p && *p && n < cap; p++)
            s->error_text[n++] = *p;
    s->error_text[n] = 0;
}

static void set_text(kl_session_t *s, const char *a, const char *b)
{
    set_text3(s, a, b, NULL);
}

static void copy_cond(kl_session_t *s, const char *cond)
{
    size_t n = 0;
    while (cond && cond[n] && n + 1 < sizeof s->condition) {
        s->condition[n] = cond[n];
        n++;
    }
    s->condition[n] = 0;
}

static const kl_endpoint_t *cur_ep(const kl_session_t *s)
{
    return s->use_loc ? &s->loc_ep : &s->cfg.endpoints[s->ep];
}

/* After a lost link: the session's preferred location (XEP-0198 §5), if
 * any and if the lost connection was XMPP over TCP, for the next attempt.
 * "host", "host:port", "[v6]" or "[v6]:port"; the TLS server name stays
 * the domain, so the certificate there must be the domain's. */
static void plan_location(kl_session_t *s)
{
    kl_sm_info_t info;
    const kl_endpoint_t *ep = &s->cfg.endpoints[s->ep];
    const char *l, *colon;
    size_t n, hl;
    uint32_t port = 0;
    s->use_loc = 0;
    if (ep->framing != KL_FRAMING_XMPP || kl_sm_info(s->c, &info) != KL_OK || !info.resumable ||
        !info.location[0])
        return;
    /* the engine's own array, at most KL_SM_LOCATION_MAX: loc_host holds it */
    l = info.location;
    n = strlen(l);
    if (l[0] == '[') {
        const char *rb = strchr(l, ']');
        if (!rb)
            return;
        hl = (size_t)(rb - l - 1);
        memcpy(s->loc_host, l + 1, hl);
        colon = rb[1] == ':' ? rb + 1 : NULL;
        if (rb[1] && !colon)
            return;
    } else {
        colon = strchr(l, ':');
        if (colon && strchr(colon + 1, ':'))
            return; /* a bare IPv6 address is written in brackets */
        hl = colon ? (size_t)(colon - l) : n;
        memcpy(s->loc_host, l, hl);
    }
    s->loc_host[hl] = 0;
    if (hl == 0)
        return;
    if (colon) {
        const char *p = colon + 1;
        if (!*p)
            return;
        for (; *p; p++) {
            if (*p < '0' || *p > '9' || (port = port * 10 + (uint32_t)(*p - '0')) > 65535)
                return;
        }
        if (port == 0)
            return;
    }
    s->loc_ep = *ep;
    s->loc_ep.host = s->loc_host;
    s->loc_ep.port = (uint16_t)port;
    s->use_loc = 1;
}

static int ep_tls(const kl_endpoint_t *ep)
{
    return ep->security == KL_SEC_DIRECT_TLS;
}

static uint16_t ep_port(const kl_endpoint_t *ep)
{
    if (ep->port)
        return ep->port;
    if (ep->framing == KL_FRAMING_XMPP)
        return ep_tls(ep) ? 5223 : 5222;
    return ep_tls(ep) ? 443 : 80;
}

static const char *ep_host(const kl_session_t *s, const kl_endpoint_t *ep)
{
    return ep->host ? ep->host : kl_client_domain(s->c);
}

static int nslots(const kl_session_t *s)
{
#if KL_ENABLE_BOSH
    if (cur_ep(s)->framing == KL_FRAMING_BOSH)
        return KL_SESSION_SLOTS < KL_BOSH_SLOTS ? KL_SESSION_SLOTS : KL_BOSH_SLOTS;
#endif
    (void)s;
    return 1;
}

/* ---- the net slot as a transport (under TLS) -------------------------------- */

static int lower_send(void *ctx, const uint8_t *buf, size_t len)
{
    kl_session_slot_t *sl = ctx;
    kl_session_t *s = sl->owner;
    int n = s->cfg.net->send(s->cfg.net_ctx, (int)(sl - s->slot), buf, len);
    if (n > 0)
        s->stats.wire_out += (uint32_t)n;
    return n;
}

static int lower_recv(void *ctx, uint8_t *buf, size_t len)
{
    kl_session_slot_t *sl = ctx;
    kl_session_t *s = sl->owner;
    int n = s->cfg.net->recv(s->cfg.net_ctx, (int)(sl - s->slot), buf, len);
    if (n > 0)
        s->stats.wire_in += (uint32_t)n;
    return n;
}

/* Plaintext over slot i: TLS if it is up, else the net slot. */
static int link_send(kl_session_t *s, int i, const uint8_t *buf, size_t len)
{
    if (s->slot[i].tls_on)
        return s->cfg.tls->send(s->cfg.tls_ctx, i, buf, len);
    return lower_send(&s->slot[i], buf, len);
}

static void net_flush(kl_session_t *s, int i);

/* A read that returns 0 while the port still holds bytes (a TLS record
 * that only carried a session ticket) is tried again. */
static int net_readable(const kl_session_t *s, int i)
{
    return s->cfg.net->readable ? s->cfg.net->readable(s->cfg.net_ctx, i) : 0;
}

static int link_recv(kl_session_t *s, int i, uint8_t *buf, size_t len)
{
    int n, tries = 4;
    do {
        if (!s->slot[i].tls_on)
            return lower_recv(&s->slot[i], buf, len);
        n = s->cfg.tls->recv(s->cfg.tls_ctx, i, buf, len);
        net_flush(s, i); /* a read may write (TLS alerts, key updates) */
    } while (n == 0 && --tries > 0 && net_readable(s, i));
    return n;
}

static void net_flush(kl_session_t *s, int i)
{
    if (s->cfg.net->flush && s->slot[i].state != SL_OFF)
        s->cfg.net->flush(s->cfg.net_ctx, i);
}

/* hard: the link is lost (abort: nothing to say goodbye to); else a
 * graceful close after our close_notify. */
static void close_slot(kl_session_t *s, int i, int hard)
{
    kl_session_slot_t *sl = &s->slot[i];
    /* tls_on and tls_set are only ever set with a binding (tls_begin
     * checks it); testing the binding first says so */
    if (s->cfg.tls && (sl->tls_on || sl->tls_set)) {
        s->cfg.tls->close(s->cfg.tls_ctx, i);
        sl->tls_on = 0;
        sl->tls_set = 0;
    }
    if (sl->state != SL_OFF) {
        if (hard && s->cfg.net->abort) {
            s->cfg.net->abort(s->cfg.net_ctx, i);
        } else {
            net_flush(s, i); /* the close_notify */
            s->cfg.net->close(s->cfg.net_ctx, i);
        }
        sl->state = SL_OFF;
    }
    sl->bosh_slot = 0;
    sl->wr_left = 0;
}

static void close_all(kl_session_t *s, int hard)
{
    for (int i = 0; i < KL_SESSION_SLOTS; i++)
        close_slot(s, i, hard);
    s->tls_phase = TP_NONE;
    s->early_tls = 0;
}

/* ---- TLS ------------------------------------------------------------------- */

static int tls_begin(kl_session_t *s, int i, const char *alpn)
{
    kl_tls_params_t p;
    char buf[120];
    int st;
    if (s->cfg.tls == NULL) {
        /* a STARTTLS endpoint without a TLS binding: the server's <proceed/> */
        set_text(s, "TLS setup: no TLS binding configured", NULL);
        return KL_ERR_TLS_SETUP;
    }
    memset(&p, 0, sizeof p);
    p.server_name = s->cfg.tls_server_name ? s->cfg.tls_server_name
                    : cur_ep(s)->framing != KL_FRAMING_XMPP ? ep_host(s, cur_ep(s)) /* the URL's host */
                                                             : kl_client_domain(s->c);
    p.alpn = alpn;
    s->session_offered = 0;
#if KL_ENABLE_CACHE
    if (s->cfg.cache && !s->no_session && i == 0) {
        p.session = kl_cache_tls_session(s->cfg.cache, kl_client_domain(s->c), &p.session_len);
        if (p.session == NULL)
            p.session_len = 0;
    }
#endif
    s->slot[i].tls_set = 1;
    st = s->cfg.tls->setup(s->cfg.tls_ctx, i, &p, &s->slot[i].lower);
    if (st != KL_OK) {
        set_text(s, "TLS setup: ", s->cfg.tls->error_text(s->cfg.tls_ctx, i, buf, sizeof buf));
        return st;
    }
    s->slot[i].t0 = s->now;
    if (i == 0)
        note(s, "TLS handshake starts");
    return KL_OK;
}

/* 1 done, 0 again later, < 0 failed (error_text set). */
static int tls_drive(kl_session_t *s, int i)
{
    char buf[120];
    kl_tls_info_t info;
    int r = s->cfg.tls->handshake(s->cfg.tls_ctx, i);
    net_flush(s, i); /* what the handshake wrote (lwIP sends only when pushed) */
    if (r == 0)
        return 0;
    s->cfg.tls->info(s->cfg.tls_ctx, i, &info);
    if (i == 0) {
        s->session_offered = info.session_offered;
        s->stats.tls_session_offered = info.session_offered;
    }
    if (r < 0) {
        set_text(s, "TLS: ", s->cfg.tls->error_text(s->cfg.tls_ctx, i, buf, sizeof buf));
        return r;
    }
    s->slot[i].tls_on = 1;
    if (i == 0) {
        s->stats.tls_handshake_ms = s->now - s->slot[i].t0;
        s->stats.tls_version = info.version ? info.version : "";
        s->stats.tls_session_resumed = info.resumed;
        s->stats.tls_verified = info.verified;
        if (info.resumed)
            s->stats.tls_resumed++;
    }
    if (i == 0)
        note(s, info.verified ? "TLS up, certificate verified" : "TLS up, certificate NOT verified");
    return 1;
}

#if KL_ENABLE_CACHE
/* A session blob that failed the handshake goes (mbedTLS pins the version
 * to the session's): the next attempt makes a full handshake. */
static void drop_cached_session(kl_session_t *s)
{
    kl_cache_t *k = s->cfg.cache;
    if (k && kl_cache_check(k, kl_client_domain(s->c)) == KL_OK && k->tls_session_len) {
        k->tls_session_len = 0;
        kl_cache_seal(k);
    }
}

/* Online (its one caller checks): keep the newest resumable session in
 * the hints. */
static void save_session(kl_session_t *s)
{
    kl_cache_t *k = s->cfg.cache;
    kl_tls_info_t info;
    size_t len = 0;
    if (!k || !s->slot[0].tls_on || !s->cfg.tls->save_session)
        return;
    s->cfg.tls->info(s->cfg.tls_ctx, 0, &info);
    if (!info.new_session || kl_cache_check(k, kl_client_domain(s->c)) != KL_OK)
        return;
    if (s->cfg.tls->save_session(s->cfg.tls_ctx, 0, k->tls_session, sizeof k->tls_session, &len) == KL_OK) {
        k->tls_session_len = (uint16_t)len;
        kl_cache_seal(k);
        s->stats.tls_sessions_saved++;
        note(s, "TLS session saved in the connection hints");
    }
}
#endif

/* ---- backoff and failure ---------------------------------------------------- */

int kl_session_retryable(int status, const char *cond)
{
    switch (status) {
    case KL_ERR_ARG:
    case KL_ERR_STATE:
    case KL_ERR_AUTH:
    case KL_ERR_NO_MECHANISM:
    case KL_ERR_PLAINTEXT:
    case KL_ERR_UNVERIFIED:
    case KL_ERR_SCRAM_ITERATIONS:
    case KL_ERR_SASLPREP:
    case KL_ERR_NO_ENTROPY:
    case KL_ERR_NO_TLS:
    case KL_ERR_STARTTLS_FAILED:
    case KL_ERR_TLS_CERT:
    case KL_ERR_TLS_SETUP:
    case KL_ERR_FROM_DOMAIN:
    case KL_ERR_NO_BIDI:
    case KL_ERR_DNS_UNAVAILABLE:
    case KL_ERR_SEE_OTHER_HOST:
    case KL_ERR_WS_HANDSHAKE:
    case KL_ERR_SASL2_TASK:
    case KL_ERR_FAST_REFUSED:
    case KL_ERR_FAST_EXPIRED:
    case KL_ERR_FAST_UNAVAILABLE:
    case KL_ERR_AUTHZID:
    case KL_ERR_DOWNGRADE:
        return 0;
    case KL_ERR_STREAM_ERROR:
        /* RFC 6120 §4.9.3: the conditions that say "come back later" */
        return cond && (!strcmp(cond, "system-shutdown") || !strcmp(cond, "connection-timeout") ||
                        !strcmp(cond, "reset"));
    default:
        return 1;
    }
}

static uint32_t rand32(kl_session_t *s)
{
    uint8_t b[4] = {0, 0, 0, 0};
    if (s->cfg.random)
        (void)s->cfg.random(s->cfg.random_ctx, b, sizeof b);
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Exponential backoff: after the n-th failure in a row (from 0), with
 * full jitter anywhere in [min, min(max, min * 2^(n+1))] — the first retry
 * too, so that a fleet that lost one node does not come back in the same
 * instant; without jitter exactly min(max, min * 2^n). */
static uint32_t backoff_ms(kl_session_t *s)
{
    uint32_t lo = s->cfg.backoff_min_ms, hi = lo, max = s->cfg.backoff_max_ms;
    unsigned n = s->failures > 20 ? 20 : s->failures;
    while (n-- > 0 && hi < max)
        hi = hi > max / 2 ? max : hi * 2; /* lo <= max (kl_session_init): so is hi */
    if (s->failures < 0xffff)
        s->failures++;
    if (s->cfg.no_jitter)
        return hi;
    hi = hi > max / 2 ? max : hi * 2;
    if (hi <= lo)
        return lo;
    return lo + rand32(s) % (hi - lo + 1);
}

static int final_event(kl_session_t *s, int status, kl_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->type = status == KL_OK ? KL_EV_CLOSED : KL_EV_ERROR;
    ev->status = status;
    ev->condition = s->condition;
    ev->jid = "";
    s->state = S_DONE;
    return 1;
}

/* The connection is gone (or never came up). Either KL_EV_LINK_DOWN with
 * the next attempt scheduled, or the final KL_EV_ERROR. */
/* The step timeout of this attempt: timeout_ms, doubled once per login
 * attempt in a row that timed out (KL_SESSION_TIMEOUT_GROWTH). */
static uint32_t tmo(const kl_session_t *s)
{
    uint64_t t = (uint64_t)s->cfg.timeout_ms << s->slow;
    return t > 0x7fffffffu ? 0x7fffffffu : (uint32_t)t;
}

#if KL_SESSION_TIMEOUT_GROWTH > 8
#error "KL_SESSION_TIMEOUT_GROWTH: at most 8 doublings (the deadlines stay below 2^31 ms)"
#endif

/* A TLS handshake or a login timed out before online (the server
 * answered TCP, so it is there, only slow): the next attempt gets twice
 * the time. A TCP connect timeout does not count: that is a node that
 * drops SYNs, and the next endpoint should not wait longer for it. A
 * KL_ERR_TIMEOUT once online is not ours (ours end at online) but a port's
 * (a recv that maps ETIMEDOUT): the service answered, nothing grows. */
static void slower(kl_session_t *s)
{
#if KL_SESSION_TIMEOUT_GROWTH > 0
    if (!s->online && s->slow < KL_SESSION_TIMEOUT_GROWTH)
        s->slow++;
#else
    (void)s;
#endif
}

static int lost(kl_session_t *s, int status, const char *cond, kl_event_t *ev)
{
    int was_online = s->online;
    uint32_t delay;
    int tls_retry = 0;

    if (status == KL_ERR_TIMEOUT)
        slower(s); /* the TLS handshake or the engine's negotiation */
    copy_cond(s, cond);
    s->last_status = status;
    close_all(s, 1);
    s->online = 0;
    if (s->error_text[0] == 0)
        set_text(s, kl_strerror(status), NULL);
    if (s->closing)
        return final_event(s, s->close_status, ev);
    if (s->use_loc) {
        /* the preferred location failed (also on its certificate): the
         * configured endpoints, at once */
        s->use_loc = 0;
        s->state = S_BACKOFF;
        s->t_retry = s->now;
        note(s, "the preferred location failed: back to the configured endpoints");
        return 0;
    }
    if (was_online && KL_ENABLE_SM)
        plan_location(s);
#if KL_ENABLE_CACHE
    /* the resumption blob the server did not take: once more without it */
    if (s->session_offered && !was_online && status != KL_ERR_TLS_CERT && !s->no_session &&
        (status == KL_ERR_TLS || status == KL_ERR_CONN_CLOSED)) {
        drop_cached_session(s);
        s->no_session = 1;
        tls_retry = 1;
    }
#endif
    /* hints that said SASL2 for a server that no longer offers it: the
     * engine corrected them; once more at once, on RFC 6120's path */
    if (KL_ENABLE_SASL2 && status == KL_ERR_SASL2_GONE && !was_online && !s->sasl2_retry) {
        s->sasl2_retry = 1;
        tls_retry = 1;
    }
    /* failover: before online, the next endpoint at once (each one's
     * certificate is verified on its own, so a rejected one is skipped too) */
    if (!tls_retry && !was_online && s->cfg.n_endpoints > 1 &&
        (kl_session_retryable(status, cond) || status == KL_ERR_TLS_CERT) &&
        (s->ep + 1) % s->cfg.n_endpoints != s->ep_first) {
        s->ep = (uint8_t)((s->ep + 1) % s->cfg.n_endpoints);
        s->state = S_BACKOFF;
        s->t_retry = s->now;
        note(s, "endpoint failed: trying the next one");
        return 0;
    }
    if (!tls_retry && (!s->cfg.reconnect || !kl_session_retryable(status, cond)))
        return final_event(s, status, ev);
    if (was_online && (uint32_t)(s->now - s->t_online) >= s->cfg.stable_ms)
        s->failures = 0; /* a stable session resets the backoff */
    if (tls_retry) {
        delay = 0;
    } else {
        if (s->cfg.max_attempts && s->failures + 1u >= s->cfg.max_attempts)
            return final_event(s, status, ev);
        delay = backoff_ms(s);
        s->ep_first = s->ep;
    }
    s->stats.link_downs++;
    s->state = S_BACKOFF;
    s->t_retry = s->now + delay;
    note(s, "link down: reconnecting");
    memset(ev, 0, sizeof *ev);
    ev->type = KL_EV_LINK_DOWN;
    ev->status = status;
    ev->condition = s->condition;
    ev->jid = "";
    ev->retry_ms = delay;
    return 1;
}

/* ---- attempts --------------------------------------------------------------- */

#if KL_ENABLE_BOSH || KL_ENABLE_WS
/* Decimal digits of v into p (no NUL); returns the count. */
static size_t put_uint(char *p, uint32_t v)
{
    char t[10];
    size_t n = 0, k = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        p[k++] = t[--n];
    return k;
}
#endif

#if KL_ENABLE_BOSH
static int bosh_begin(kl_session_t *s)
{
    const kl_endpoint_t *ep = cur_ep(s);
    kl_bosh_config_t bc;
    const char *h = ep_host(s, ep);
    size_t n = strlen(h);
    uint16_t port = ep_port(ep);
    if (s->bosh == NULL)
        return KL_ERR_STATE; /* kl_session_use_bosh() was not called */
    if (n + 7 > sizeof s->http_host)
        return KL_ERR_TOO_LARGE;
    memcpy(s->http_host, h, n);
    if (port != (ep_tls(ep) ? 443 : 80)) {
        s->http_host[n++] = ':';
        n += put_uint(s->http_host + n, port);
    }
    s->http_host[n] = 0;
    memset(&bc, 0, sizeof bc);
    bc.host = s->http_host;
    bc.path = ep->path ? ep->path : "/http-bind";
    bc.to = kl_client_domain(s->c);
    bc.rid = (rand32(s) & 0x3fffffffu) | 1u; /* random start (XEP-0124 §14.1) */
    bc.split_restart = s->cfg.bosh_split_restart;
    s->bosh_rounds = 0;
    return kl_bosh_init(s->bosh, &bc);
}
#endif


static int begin_attempt(kl_session_t *s, kl_event_t *ev)
{
    const kl_endpoint_t *ep = cur_ep(s);
    int st = KL_OK;
    s->stats.attempts++;
    s->stats.wire_in = s->stats.wire_out = 0;
    s->stats.wire_in_online = s->stats.wire_out_online = 0;
    s->stats.tcp_connect_ms = s->stats.tls_handshake_ms = 0;
    s->stats.tls_version = "";
    s->stats.tls_session_resumed = s->stats.tls_verified = s->stats.tls_session_offered = 0;
    s->stats.http_requests_online = 0;
    s->stats.link_rt_online = 0;
    s->error_text[0] = 0;
    s->condition[0] = 0;
    s->session_offered = 0;
    s->t_attempt = s->now;
    s->tls_phase = TP_NONE;
    if (s->use_loc) {
        s->stats.location_tries++;
        note(s, "trying the server's preferred location (XEP-0198)");
    }
    if (ep_tls(ep) && !s->cfg.tls)
        return lost(s, KL_ERR_TLS_SETUP, NULL, ev);
#if KL_ENABLE_BOSH
    if (ep->framing == KL_FRAMING_BOSH && (st = bosh_begin(s)) != KL_OK)
        return lost(s, st, NULL, ev);
#endif
    note(s, "connecting");
    for (int i = 0; i < nslots(s) && st == KL_OK; i++) {
        st = s->cfg.net->open(s->cfg.net_ctx, i, ep_host(s, ep), ep_port(ep));
        s->slot[i].state = SL_CONNECTING;
        s->slot[i].t0 = s->now;
    }
    if (st != KL_OK) {
        set_text(s, st == KL_ERR_DNS ? "cannot resolve " : "cannot connect to ", ep_host(s, ep));
        return lost(s, st, NULL, ev);
    }
    s->state = S_CONNECT;
    s->t_state = s->now;
    return 0;
}

/* The finished handshake's tls-exporter value for SASL channel binding
 * (none without TLS, with TLS 1.2, or a port without the op). */
static void give_channel_binding(kl_session_t *s, int tls_on)
{
#if KL_ENABLE_SASL2
    uint8_t cb[32];
    int ok = tls_on && s->cfg.tls->exporter && s->cfg.tls->exporter(s->cfg.tls_ctx, 0, cb, sizeof cb) == KL_OK;
    (void)kl_client_set_channel_binding(s->c, cb, ok ? sizeof cb : 0);
    kl_wipe(cb, sizeof cb);
#else
    (void)s, (void)tls_on;
#endif
}

/* Transport (and direct TLS) up on slot 0: start the stream. */
static void start_stream(kl_session_t *s)
{
    kl_tls_info_t info;
    kl_channel_t ch = KL_CHANNEL_STARTTLS;
    const kl_endpoint_t *ep = cur_ep(s);
    memset(&info, 0, sizeof info);
    if (s->slot[0].tls_on) {
        s->cfg.tls->info(s->cfg.tls_ctx, 0, &info);
        ch = info.verified ? KL_CHANNEL_TLS_VERIFIED : KL_CHANNEL_TLS;
    } else if (ep->security == KL_SEC_NONE || ep->framing != KL_FRAMING_XMPP) {
        ch = KL_CHANNEL_CLEAR;
    }
    give_channel_binding(s, s->slot[0].tls_on);
    (void)kl_client_connect(s->c, s->t_attempt, ch);
    /* the negotiation's deadline grows with the session's timeouts (the
     * engine's own field: kl_session.c is core) */
    s->c->deadline += (uint32_t)(((uint64_t)KL_NEGOTIATION_TIMEOUT_MS << s->slow) - KL_NEGOTIATION_TIMEOUT_MS);
#if KL_ENABLE_APP
    /* BOSH wraps, WebSocket frames whole elements: neither carries a
     * stanza written in pieces */
    kl_i_set_framed(s->c, ep->framing != KL_FRAMING_XMPP);
#endif
    kl_stats_add_port_rt(s->c, 1 + info.round_trips); /* TCP + the TLS handshake */
    s->state = S_RUN;
    s->t_state = s->now;
}

/* ---- the XMPP framing (RFC 6120 over TCP) -------------------------------- */

/* Engine output over slot 0. 1 all sent, 0 blocked, < 0 error. */
static int pump_out(kl_session_t *s)
{
    size_t len;
    const uint8_t *out;
    int sent = 0, r = 1;
    while ((out = kl_engine_output(s->c, &len)), len > 0) {
        int n = link_send(s, 0, out, len);
        if (n <= 0) {
            r = n;
            break;
        }
        if (s->cfg.trace)
            s->cfg.trace(s->cfg.trace_arg, 'o', out, (size_t)n, NULL);
        kl_engine_output_ack(s->c, (size_t)n);
        sent = 1;
    }
    if (sent && r >= 0 && s->tls_phase != TP_FLUSH_EARLY)
        net_flush(s, 0);
    return r;
}

/* Engine input from slot 0. 1 took bytes, 0 nothing now, < 0 error. */
static int pump_in(kl_session_t *s)
{
    size_t cap;
    uint8_t *in = kl_engine_input_buf(s->c, &cap);
    int n;
    if (cap == 0)
        return 0;
    n = link_recv(s, 0, in, cap);
    if (n <= 0)
        return n;
    if (s->cfg.trace)
        s->cfg.trace(s->cfg.trace_arg, 'i', in, (size_t)n, NULL);
    kl_engine_input_ack(s->c, (size_t)n);
    return 1;
}

static void went_online(kl_session_t *s, int resumed)
{
    s->online = 1;
    s->slow = 0;
    s->t_online = s->now;
    s->ep_first = s->ep;
    s->no_session = 0;
    if (resumed)
        s->stats.resumes++;
    else
        s->stats.onlines++;
    s->stats.wire_in_online = s->stats.wire_in;
    s->stats.wire_out_online = s->stats.wire_out;
    s->stats.link_rt_online = kl_client_stats(s->c)->round_trips;
}

/* An engine event, after the framing sent what it could: online
 * bookkeeping, or the end of this connection. */
static int engine_event(kl_session_t *s, kl_event_t *ev)
{
    switch (ev->type) {
    case KL_EV_ONLINE:
    case KL_EV_RESUMED:
        went_online(s, ev->type == KL_EV_RESUMED);
        return 1;
    case KL_EV_CLOSED: /* always KL_OK: the engine reports a failed close as KL_EV_ERROR */
        close_all(s, 0);
        s->state = S_DONE;
        return 1;
    case KL_EV_ERROR:
        return lost(s, ev->status, ev->condition, ev);
    default:
        return 1;
    }
}

/* The STARTTLS sub-states. 1: an event in ev; 0: wait; 2: go on pumping. */
static int starttls_step(kl_session_t *s, kl_event_t *ev)
{
    int r;
    if (s->tls_phase == TP_FLUSH || s->tls_phase == TP_FLUSH_EARLY) {
        r = pump_out(s);
        if (r < 0)
            return lost(s, r, NULL, ev);
        if (r == 0)
            return 0;
        if (s->tls_phase == TP_FLUSH) {
            if ((r = tls_begin(s, 0, NULL)) != KL_OK)
                return lost(s, r, NULL, ev);
            s->tls_phase = TP_HANDSHAKE;
        } else {
            /* full: the ClientHello right behind <starttls/>, in the same segment */
            if ((r = tls_begin(s, 0, NULL)) != KL_OK)
                return lost(s, r, NULL, ev);
            s->cfg.tls->hold_reads(s->cfg.tls_ctx, 0, 1);
            /* uncorked before the ClientHello's write, which pushes the segment */
            if (s->cfg.net->cork)
                s->cfg.net->cork(s->cfg.net_ctx, 0, 0);
            r = s->cfg.tls->handshake(s->cfg.tls_ctx, 0); /* writes the ClientHello */
            net_flush(s, 0);
            if (r < 0)
                return lost(s, r, NULL, ev);
            s->early_tls = 1;
            s->tls_phase = TP_EARLY; /* the server's bytes go on to the engine */
            return 2;
        }
    }
    /* TP_HANDSHAKE: run_xmpp calls this only in TP_FLUSH, TP_FLUSH_EARLY
     * (which returned above) and TP_HANDSHAKE, and TP_FLUSH became it */
    r = tls_drive(s, 0);
    if (r < 0)
        return lost(s, r, NULL, ev);
    if (r == 0) {
        if ((uint32_t)(s->now - s->slot[0].t0) >= tmo(s)) {
            set_text(s, "TLS handshake timed out", NULL);
            return lost(s, KL_ERR_TIMEOUT, NULL, ev);
        }
        return 0;
    }
    {
        kl_tls_info_t info;
        s->cfg.tls->info(s->cfg.tls_ctx, 0, &info);
        /* full: the handshake's first wait was the engine's wait for <proceed/> */
        kl_stats_add_port_rt(s->c, s->early_tls ? (info.round_trips ? info.round_trips - 1 : 0)
                                                 : info.round_trips);
        s->tls_phase = TP_NONE;
        s->early_tls = 0;
        give_channel_binding(s, 1);
        kl_engine_tls_done(s->c, info.verified);
    }
    return 2;
}

static int run_xmpp(kl_session_t *s, kl_event_t *ev)
{
    for (;;) {
        int r;
        if (s->tls_phase != TP_NONE && s->tls_phase != TP_EARLY) {
            r = starttls_step(s, ev);
            if (r != 2)
                return r;
            continue;
        }
        r = kl_engine_poll(s->c, s->now, ev);
        if (r > 0) {
            switch (ev->type) {
            case KL_EV_START_TLS:
                if (ev->early) {
                    if (s->cfg.net->cork)
                        s->cfg.net->cork(s->cfg.net_ctx, 0, 1);
                    s->tls_phase = TP_FLUSH_EARLY;
                } else if (s->tls_phase == TP_EARLY) {
                    /* <proceed/>: what followed it is the server's handshake */
                    s->cfg.tls->preread(s->cfg.tls_ctx, 0, ev->tls_data.p, ev->tls_data.len);
                    s->cfg.tls->hold_reads(s->cfg.tls_ctx, 0, 0);
                    s->tls_phase = TP_HANDSHAKE;
                } else {
                    s->tls_phase = TP_FLUSH;
                }
                continue;
            case KL_EV_ERROR:
            case KL_EV_CLOSED:
                (void)pump_out(s); /* the stream error or close we send, best effort */
                return engine_event(s, ev);
            default:
                return engine_event(s, ev);
            }
        }
        r = pump_out(s);
        if (r < 0)
            return lost(s, r, NULL, ev);
        r = pump_in(s);
        if (r < 0) {
            char buf[120];
            if (s->slot[0].tls_on && r != KL_ERR_CONN_CLOSED)
                set_text(s, "TLS: ", s->cfg.tls->error_text(s->cfg.tls_ctx, 0, buf, sizeof buf));
            return lost(s, r, NULL, ev);
        }
        if (r == 0)
            return 0;
    }
}

/* ---- the BOSH framing (XEP-0124/0206 over two HTTP/1.1 connections) ------ */

#if KL_ENABLE_BOSH
static int bosh_error(kl_session_t *s, int st, kl_event_t *ev)
{
    const char *cond = NULL;
    char num[12];
    if (st == KL_ERR_HTTP_STATUS) {
        size_t n = put_uint(num, (uint32_t)(s->bosh->http_status > 0 ? s->bosh->http_status : 0));
        num[n] = 0;
        set_text3(s, "HTTP ", num, " from POST (BOSH)");
        s->condition[0] = 0;
        memcpy(s->condition, "http-", 5);
        memcpy(s->condition + 5, num, n + 1);
        cond = s->condition;
    } else if (st == KL_ERR_BOSH_TERMINATE) {
        set_text3(s, "the connection manager ended the session (condition ", s->bosh->condition, ")");
        cond = s->bosh->condition;
    }
    return lost(s, st, cond, ev);
}

/* (Re)open BOSH connection i in the middle of a session. */
static int bosh_reopen(kl_session_t *s, int i)
{
    int st;
    close_slot(s, i, 0);
    if (kl_bosh_done(s->bosh))
        return KL_OK;
    st = s->cfg.net->open(s->cfg.net_ctx, i, ep_host(s, cur_ep(s)), ep_port(cur_ep(s)));
    s->slot[i].state = SL_CONNECTING;
    s->slot[i].t0 = s->now;
    return st;
}

/* A connection being (re)opened during the session: 1 up, 0 not yet, < 0. */
static int bosh_slot_progress(kl_session_t *s, int i)
{
    kl_session_slot_t *sl = &s->slot[i];
    int r;
    if (sl->state == SL_UP)
        return 1;
    if ((uint32_t)(s->now - sl->t0) >= tmo(s))
        return KL_ERR_TIMEOUT;
    if (sl->state == SL_CONNECTING) {
        r = s->cfg.net->poll_open(s->cfg.net_ctx, i);
        if (r <= 0)
            return r;
        if (!ep_tls(cur_ep(s))) {
            sl->state = SL_UP;
            return 1;
        }
        if ((r = tls_begin(s, i, NULL)) != KL_OK)
            return r;
        sl->state = SL_HANDSHAKE;
    }
    r = tls_drive(s, i);
    if (r == 1)
        sl->state = SL_UP;
    return r;
}

static int bosh_lost_conn(kl_session_t *s, int i)
{
    int st;
    if (s->slot[i].bosh_slot && (st = kl_bosh_conn_failed(s->bosh, s->slot[i].bosh_slot - 1)) < 0)
        return st;
    s->slot[i].bosh_slot = 0;
    s->slot[i].wr_left = 0;
    return bosh_reopen(s, i);
}

/* Hand queued requests to idle connections and write them. */
static int bosh_dispatch(kl_session_t *s)
{
    kl_bosh_t *b = s->bosh;
    for (int i = 0; i < nslots(s); i++) {
        kl_session_slot_t *sl = &s->slot[i];
        int st = bosh_slot_progress(s, i);
        if (st < 0) {
            if ((st = bosh_lost_conn(s, i)) < 0)
                return st;
            continue;
        }
        if (st == 0)
            continue;
        if (sl->bosh_slot == 0) {
            const uint8_t *req;
            size_t len;
            /* -1: none now (a sticky error shows in kl_bosh_push); it
             * returns nothing lower with its arguments all set */
            int k = kl_bosh_next_request(b, &req, &len);
            if (k < 0)
                continue;
            if (!s->online && b->round_trips > s->bosh_rounds) {
                /* the engine counted its one flight; each further round of
                 * requests the login waits on is a round trip too */
                if (s->bosh_rounds > 0)
                    kl_stats_add_port_rt(s->c, b->round_trips - s->bosh_rounds);
                s->bosh_rounds = b->round_trips;
            }
            sl->bosh_slot = (uint8_t)(k + 1);
            sl->wr = req;
            sl->wr_left = len;
            if (s->cfg.trace)
                s->cfg.trace(s->cfg.trace_arg, 'o', req, len, NULL);
        }
        while (sl->wr_left > 0) {
            int n = link_send(s, i, sl->wr, sl->wr_left);
            if (n < 0) {
                if ((st = bosh_lost_conn(s, i)) < 0)
                    return st;
                break;
            }
            if (n == 0)
                break;
            sl->wr += n;
            sl->wr_left -= (size_t)n;
            if (sl->wr_left == 0)
                net_flush(s, i);
        }
    }
    return KL_OK;
}

/* Read the busy connections. 1 if anything arrived, 0 if not, < 0. */
static int bosh_read(kl_session_t *s)
{
    uint8_t buf[512];
    int any = 0;
    for (int i = 0; i < nslots(s); i++) {
        kl_session_slot_t *sl = &s->slot[i];
        size_t used;
        int n, r;
        if (sl->state != SL_UP || sl->bosh_slot == 0 || sl->wr_left > 0)
            continue;
        n = link_recv(s, i, buf, sizeof buf);
        if (n == 0)
            continue;
        any = 1;
        if (n < 0) {
            if ((r = bosh_lost_conn(s, i)) < 0)
                return r;
            continue;
        }
        if (s->cfg.trace)
            s->cfg.trace(s->cfg.trace_arg, 'i', buf, (size_t)n, NULL);
        r = kl_bosh_response(s->bosh, sl->bosh_slot - 1, buf, (size_t)n, &used);
        if (r < 0)
            return r;
        if (r == 1) {
            int close_it = s->bosh->slot[sl->bosh_slot - 1].resp.close;
            sl->bosh_slot = 0;
            if (close_it && (r = bosh_reopen(s, i)) < 0)
                return r;
        }
    }
    return any;
}

static int run_bosh(kl_session_t *s, kl_event_t *ev)
{
    kl_bosh_t *b = s->bosh;
    for (;;) {
        int r = kl_engine_poll(s->c, s->now, ev);
        if (r > 0) {
            if (ev->type == KL_EV_ERROR || ev->type == KL_EV_CLOSED) {
                (void)kl_bosh_pull(b, s->c); /* best effort: the terminate goes out */
                (void)bosh_dispatch(s);
            } else if (ev->type == KL_EV_ONLINE || ev->type == KL_EV_RESUMED) {
                s->stats.http_requests_online = b->requests_sent;
                s->stats.http_round_trips_online = b->round_trips;
            }
            return engine_event(s, ev);
        }
        if ((r = kl_bosh_pull(b, s->c)) < 0 || (r = bosh_dispatch(s)) < 0)
            return bosh_error(s, r, ev);
        if ((r = kl_bosh_push(b, s->c)) < 0)
            return bosh_error(s, r, ev);
        if (r > 0)
            continue;
        if ((r = bosh_read(s)) < 0)
            return bosh_error(s, r, ev);
        if (r == 0)
            return 0;
    }
}
#endif

/* ---- the WebSocket framing (RFC 7395 over RFC 6455) ------------------------ */

#if KL_ENABLE_WS
static int ws_begin(kl_session_t *s)
{
    const kl_endpoint_t *ep = cur_ep(s);
    kl_ws_config_t wc;
    size_t n = 0;
    int st;
    if (s->ws == NULL)
        return KL_ERR_STATE; /* kl_session_use_ws() was not called */
    memset(&wc, 0, sizeof wc);
    wc.host = ep_host(s, ep);
    wc.port = ep_port(ep);
    wc.secure = (uint8_t)ep_tls(ep);
    wc.path = ep->path ? ep->path : "/xmpp-websocket";
    wc.random = s->cfg.random;
    wc.random_ctx = s->cfg.random_ctx;
    wc.crypto = s->cfg.crypto;
    if ((st = kl_ws_init(s->ws, &wc)) != KL_OK)
        return st;
    s->ws_started = 0;
    s->ws_stall = 0;
    s->ws_rlen = s->ws_roff = 0;
    if ((st = kl_ws_request(s->ws, s->ws_wbuf, sizeof s->ws_wbuf, &n)) != KL_OK)
        return st;
    s->ws_wlen = (uint16_t)n;
    s->ws_woff = 0;
    if (s->cfg.trace)
        s->cfg.trace(s->cfg.trace_arg, 'o', s->ws_wbuf, n, NULL);
    return KL_OK;
}

/* Send what the codec made; then more from the engine (or the codec's own
 * control frames). 1 progress, 0 blocked or nothing to do, < 0 error. */
static int ws_out(kl_session_t *s)
{
    int progress = 0;
    for (;;) {
        size_t len = 0, used = 0, made = 0;
        const uint8_t *out = NULL;
        int st;
        while (s->ws_woff < s->ws_wlen) {
            int n = link_send(s, 0, s->ws_wbuf + s->ws_woff, s->ws_wlen - s->ws_woff);
            if (n <= 0)
                return n < 0 ? n : progress;
            s->ws_woff = (uint16_t)(s->ws_woff + n);
            progress = 1;
            if (s->ws_woff == s->ws_wlen)
                net_flush(s, 0);
        }
        s->ws_wlen = s->ws_woff = 0;
        if (s->ws_started)
            out = kl_engine_output(s->c, &len);
        if (len == 0 && !kl_ws_want_write(s->ws))
            return progress;
        st = kl_ws_write(s->ws, out, len, &used, s->ws_wbuf, sizeof s->ws_wbuf, &made);
        if (st < 0)
            return st;
        if (used > 0) {
            if (s->cfg.trace)
                s->cfg.trace(s->cfg.trace_arg, 'o', out, used, NULL);
            kl_engine_output_ack(s->c, used);
        }
        if (made == 0 && used == 0) {
            s->ws_stall = len; /* half an element (len <= KL_TX_BUF_SIZE): wants() asks no write for it */
            return progress;
        }
        s->ws_stall = 0;
        s->ws_wlen = (uint16_t)made;
        progress = 1;
    }
}

/* Wire bytes through the codec into the engine. 1 progress, 0 nothing, < 0. */
static int ws_in(kl_session_t *s)
{
    size_t cap = 0, used = 0, made = 0;
    uint8_t *in = NULL;
    int st;
    if (s->ws_roff == s->ws_rlen && !kl_ws_read_pending(s->ws)) {
        int n = link_recv(s, 0, s->ws_rbuf, sizeof s->ws_rbuf);
        if (n <= 0)
            return n;
        s->ws_rlen = (uint16_t)n;
        s->ws_roff = 0;
    }
    /* cap 0 (the engine is full) still lets control frames through */
    if (s->ws_started)
        in = kl_engine_input_buf(s->c, &cap);
    st = kl_ws_read(s->ws, s->ws_rbuf + s->ws_roff, s->ws_rlen - s->ws_roff, &used, in, cap, &made);
    if (st < 0)
        return st;
    s->ws_roff = (uint16_t)(s->ws_roff + used);
    if (made > 0) {
        if (s->cfg.trace)
            s->cfg.trace(s->cfg.trace_arg, 'i', in, made, NULL);
        kl_engine_input_ack(s->c, made);
    }
    if (!s->ws_started && kl_ws_state(s->ws) == KL_WS_OPEN) {
        /* 101: the upgrade was one more round trip; the stream starts */
        s->ws_started = 1;
        note(s, "WebSocket open");
        start_stream(s);
        kl_stats_add_port_rt(s->c, 1);
        return 1;
    }
    return used > 0 || made > 0;
}

static int ws_error(kl_session_t *s, int st, kl_event_t *ev)
{
    if (st == KL_ERR_WS_HANDSHAKE) {
        char num[12];
        size_t n = put_uint(num, (uint32_t)(s->ws->http_status > 0 ? s->ws->http_status : 0));
        num[n] = 0;
        set_text3(s, "WebSocket upgrade refused (HTTP ", num, ")");
    }
    return lost(s, st, NULL, ev);
}

static int run_ws(kl_session_t *s, kl_event_t *ev)
{
    for (;;) {
        int out, in;
        if (s->ws_started && kl_engine_poll(s->c, s->now, ev) > 0) {
            if (ev->type == KL_EV_ERROR || ev->type == KL_EV_CLOSED)
                (void)ws_out(s); /* best effort: the stream error or <close/> goes out */
            return engine_event(s, ev);
        }
        if ((out = ws_out(s)) < 0)
            return ws_error(s, out, ev);
        if ((in = ws_in(s)) < 0)
            return ws_error(s, in, ev);
        if (!out && !in)
            return 0;
    }
}
#endif

/* ---- API -------------------------------------------------------------------- */

int kl_session_init(kl_session_t *s, const kl_session_config_t *cfg)
{
    if (s == NULL || cfg == NULL || cfg->client == NULL || cfg->net == NULL || cfg->net->open == NULL ||
        cfg->net->poll_open == NULL || cfg->net->send == NULL || cfg->net->recv == NULL ||
        cfg->net->close == NULL || cfg->n_endpoints < 0 || cfg->n_endpoints > KL_SESSION_MAX_ENDPOINTS)
        return KL_ERR_ARG;
    if (cfg->reconnect && !cfg->no_jitter && cfg->random == NULL)
        return KL_ERR_NO_ENTROPY;
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->c = cfg->client;
    if (s->cfg.n_endpoints == 0) {
        memset(&s->cfg.endpoints[0], 0, sizeof s->cfg.endpoints[0]);
        s->cfg.n_endpoints = 1;
    }
    for (int i = 0; i < s->cfg.n_endpoints; i++) {
        const kl_endpoint_t *ep = &s->cfg.endpoints[i];
        if (ep->framing > KL_FRAMING_WS || ep->security > KL_SEC_NONE)
            return KL_ERR_ARG;
        if ((ep->framing == KL_FRAMING_BOSH && !KL_ENABLE_BOSH) || (ep->framing == KL_FRAMING_WS && !KL_ENABLE_WS))
            return KL_ERR_ARG;
        if (ep->framing != KL_FRAMING_XMPP && ep->security == KL_SEC_STARTTLS)
            return KL_ERR_ARG; /* HTTP framings have no STARTTLS */
        if (ep->framing == KL_FRAMING_WS && (cfg->crypto == NULL || cfg->crypto->hash == NULL))
            return KL_ERR_ARG; /* Sec-WebSocket-Accept needs SHA-1 */
    }
    if (!s->cfg.backoff_min_ms)
        s->cfg.backoff_min_ms = 1000;
    if (!s->cfg.backoff_max_ms)
        s->cfg.backoff_max_ms = 60000;
    if (s->cfg.backoff_max_ms < s->cfg.backoff_min_ms)
        s->cfg.backoff_max_ms = s->cfg.backoff_min_ms;
    if (!s->cfg.stable_ms)
        s->cfg.stable_ms = 60000;
    if (!s->cfg.timeout_ms)
        s->cfg.timeout_ms = 20000;
    if (!s->cfg.alpn)
        s->cfg.alpn = "xmpp-client";
    for (int i = 0; i < KL_SESSION_SLOTS; i++) {
        s->slot[i].owner = s;
        s->slot[i].lower.ctx = &s->slot[i];
        s->slot[i].lower.send = lower_send;
        s->slot[i].lower.recv = lower_recv;
    }
    return KL_OK;
}

#if KL_ENABLE_BOSH
void kl_session_use_bosh(kl_session_t *s, struct kl_bosh *b)
{
    s->bosh = b;
}
#endif
#if KL_ENABLE_WS
void kl_session_use_ws(kl_session_t *s, struct kl_ws *ws)
{
    s->ws = ws;
}
#endif

int kl_session_start(kl_session_t *s, uint32_t now_ms)
{
    if (s == NULL || s->c == NULL || s->state != S_IDLE)
        return KL_ERR_STATE;
    s->now = now_ms;
    s->state = S_BACKOFF; /* an attempt due now */
    s->t_retry = now_ms;
    return KL_OK;
}

/* The transport (and TLS, if any) is up: start the stream, or first the
 * WebSocket upgrade. 2 go on, else as lost(). */
static int transport_up(kl_session_t *s, kl_event_t *ev)
{
#if KL_ENABLE_WS
    if (cur_ep(s)->framing == KL_FRAMING_WS) {
        int st = ws_begin(s);
        if (st != KL_OK)
            return lost(s, st, NULL, ev);
        s->state = S_RUN;
        s->t_state = s->now;
        return 2;
    }
#endif
    (void)ev;
    start_stream(s);
    return 2;
}

static int connect_step(kl_session_t *s, kl_event_t *ev)
{
    int up = 1;
    for (int i = 0; i < nslots(s); i++) {
        kl_session_slot_t *sl = &s->slot[i];
        int r;
        if (sl->state == SL_UP)
            continue;
        r = s->cfg.net->poll_open(s->cfg.net_ctx, i);
        if (r < 0) {
            set_text(s, "cannot connect to ", ep_host(s, cur_ep(s)));
            return lost(s, r, NULL, ev);
        }
        if (r == 0) {
            up = 0;
            continue;
        }
        sl->state = SL_UP;
        if (i == 0) {
            s->stats.connects++;
            s->stats.tcp_connect_ms = s->now - sl->t0;
            note(s, "TCP connected");
        }
        if (ep_tls(cur_ep(s))) {
            r = tls_begin(s, i, cur_ep(s)->framing == KL_FRAMING_XMPP ? s->cfg.alpn : NULL);
            if (r != KL_OK)
                return lost(s, r, NULL, ev);
        }
    }
    if (!up) {
        if ((uint32_t)(s->now - s->t_state) >= s->cfg.timeout_ms) {
            set_text(s, "TCP connect timed out: ", ep_host(s, cur_ep(s)));
            return lost(s, KL_ERR_CONNECT, NULL, ev);
        }
        return 0;
    }
    s->state = ep_tls(cur_ep(s)) ? S_TLS : S_RUN;
    s->t_state = s->now;
    if (s->state == S_RUN)
        return transport_up(s, ev);
    return 2;
}

static int tls_step(kl_session_t *s, kl_event_t *ev)
{
    int done = 1;
    for (int i = 0; i < nslots(s); i++) {
        int r;
        if (s->slot[i].tls_on)
            continue;
        r = tls_drive(s, i);
        if (r < 0)
            return lost(s, r, NULL, ev);
        if (r == 0)
            done = 0;
    }
    if (!done) {
        if ((uint32_t)(s->now - s->t_state) >= tmo(s)) {
            set_text(s, "TLS handshake timed out", NULL);
            return lost(s, KL_ERR_TIMEOUT, NULL, ev);
        }
        return 0;
    }
    return transport_up(s, ev);
}

int kl_session_step(kl_session_t *s, uint32_t now_ms, kl_event_t *ev)
{
    if (s == NULL || ev == NULL)
        return KL_ERR_ARG;
    s->now = now_ms;
    memset(ev, 0, sizeof *ev);
    if (s->close_pending) {
        s->close_pending = 0;
        return final_event(s, KL_OK, ev);
    }
    for (;;) {
        int r;
        switch (s->state) {
        case S_BACKOFF:
            if ((int32_t)(now_ms - s->t_retry) < 0)
                return 0;
            r = begin_attempt(s, ev);
            if (r != 0)
                return r;
            continue;
        case S_CONNECT:
            r = connect_step(s, ev);
            break;
        case S_TLS:
            r = tls_step(s, ev);
            break;
        case S_RUN:
            if (s->closing && (uint32_t)(now_ms - s->t_close) >= CLOSE_GRACE_MS) {
                close_all(s, 1); /* the server did not answer our </stream:stream> */
                return final_event(s, KL_OK, ev);
            }
            /* what other tasks posted goes out with this step's flush */
            if (s->cfg.post && !s->closing && kl_client_is_online(s->c))
                (void)kl_post_drain(s->cfg.post, s->c);
#if KL_ENABLE_BOSH
            if (cur_ep(s)->framing == KL_FRAMING_BOSH)
                r = run_bosh(s, ev);
            else
#endif
#if KL_ENABLE_WS
            if (cur_ep(s)->framing == KL_FRAMING_WS)
                r = run_ws(s, ev);
            else
#endif
                r = run_xmpp(s, ev);
#if KL_ENABLE_CACHE
            if (s->online)
                save_session(s);
#endif
            return r;
        default:
            return 0;
        }
        if (r != 2)
            return r;
    }
}

int kl_session_wants(const kl_session_t *s, int slot)
{
    size_t len = 0;
    if (s == NULL || slot < 0 || slot >= KL_SESSION_SLOTS || s->slot[slot].state == SL_OFF)
        return 0;
    if (s->slot[slot].state == SL_CONNECTING)
        return KL_WANT_WRITE;
    if (s->slot[slot].wr_left > 0)
        return KL_WANT_READ | KL_WANT_WRITE;
#if KL_ENABLE_BOSH
    /* an idle keep-alive connection is not read (a close there shows at the next request) */
    if (cur_ep(s)->framing == KL_FRAMING_BOSH && s->state == S_RUN)
        return s->slot[slot].bosh_slot || s->slot[slot].state == SL_HANDSHAKE ? KL_WANT_READ : 0;
#endif
#if KL_ENABLE_WS
    if (cur_ep(s)->framing == KL_FRAMING_WS && s->state == S_RUN) {
        if (s->ws_woff < s->ws_wlen || kl_ws_want_write(s->ws))
            return KL_WANT_READ | KL_WANT_WRITE;
        if (!s->ws_started)
            return KL_WANT_READ;
        (void)kl_engine_output(s->c, &len);
        /* the codec took nothing of exactly this output (it ends in half an element) */
        return KL_WANT_READ | (len > 0 && len != s->ws_stall ? KL_WANT_WRITE : 0);
    }
#endif
    if (s->state == S_RUN && slot == 0 && s->tls_phase != TP_HANDSHAKE)
        (void)kl_engine_output(s->c, &len);
    return KL_WANT_READ | (len > 0 ? KL_WANT_WRITE : 0);
}

uint32_t kl_session_next_timeout(const kl_session_t *s, uint32_t now_ms)
{
    uint32_t t = UINT32_MAX, d;
    if (s == NULL)
        return t;
    for (int i = 0; i < KL_SESSION_SLOTS; i++)
        if (s->slot[i].state == SL_UP && (kl_session_wants(s, i) & KL_WANT_READ) && net_readable(s, i))
            return 0; /* bytes wait in the port (lwIP tells no one) */
    switch (s->state) {
    case S_BACKOFF:
        return (int32_t)(s->t_retry - now_ms) <= 0 ? 0 : s->t_retry - now_ms;
    case S_CONNECT:
    case S_TLS: {
        uint32_t lim = s->state == S_CONNECT ? s->cfg.timeout_ms : tmo(s);
        d = (uint32_t)(now_ms - s->t_state);
        return d >= lim ? 0 : lim - d;
    }
    case S_RUN:
        if (s->tls_phase == TP_HANDSHAKE) {
            d = (uint32_t)(now_ms - s->slot[0].t0);
            return d >= tmo(s) ? 0 : tmo(s) - d;
        }
        t = kl_engine_next_timeout(s->c, now_ms);
        if (s->closing) {
            d = (uint32_t)(now_ms - s->t_close);
            d = d >= CLOSE_GRACE_MS ? 0 : CLOSE_GRACE_MS - d;
            if (d < t)
                t = d;
        }
        return t;
    default:
        return t;
    }
}

int kl_session_close(kl_session_t *s)
{
    if (s == NULL)
        return KL_ERR_ARG;
    if (s->closing || s->state == S_DONE || s->state == S_IDLE)
        return KL_OK;
    s->closing = 1;
    s->close_status = KL_OK;
    s->t_close = s->now;
    if (s->state == S_RUN && kl_client_is_online(s->c) && kl_client_close(s->c) == KL_OK)
        return KL_OK;
    close_all(s, 0);
    s->state = S_DONE;
    s->close_pending = 1;
    return KL_OK;
}

void kl_session_kick(kl_session_t *s, uint32_t now_ms)
{
    if (s == NULL)
        return;
    s->now = now_ms;
    s->slow = 0; /* another network: what was slow may not be */
    if (s->state == S_BACKOFF) {
        s->t_retry = now_ms;
    } else if (s->state == S_CONNECT || s->state == S_TLS || s->state == S_RUN) {
        close_all(s, 1);
        s->online = 0;
        s->stats.link_downs++;
        s->state = S_BACKOFF;
        s->t_retry = now_ms;
        note(s, "network changed: reconnecting now");
    }
}

void kl_session_shutdown(kl_session_t *s)
{
    if (s == NULL)
        return;
    close_all(s, 0);
    s->online = 0;
    s->state = S_DONE;
}

const kl_session_stats_t *kl_session_stats(const kl_session_t *s)
{
    return &s->stats;
}

const char *kl_session_error_text(const kl_session_t *s)
{
    return s->error_text[0] ? s->error_text : kl_strerror(s->last_status);
}

const kl_endpoint_t *kl_session_endpoint(const kl_session_t *s)
{
    return cur_ep(s);
}

int kl_session_tls_info(const kl_session_t *s, kl_tls_info_t *out)
{
    memset(out, 0, sizeof *out);
    out->version = "";
    if (!s->slot[0].tls_on)
        return 0;
    s->cfg.tls->info(s->cfg.tls_ctx, 0, out);
    return 1;
}

/* ---- URLs ------------------------------------------------------------------- */

static int prefix(const char *s, const char *p)
{
    while (*p)
        if (*s++ != *p++)
            return 0;
    return 1;
}

int kl_endpoint_from_url(kl_endpoint_t *ep, const char *url, char *buf, size_t cap)
{
    static const struct { const char *scheme; uint8_t framing, security; } schemes[] = {
        {"https://", KL_FRAMING_BOSH, KL_SEC_DIRECT_TLS},
        {"http://", KL_FRAMING_BOSH, KL_SEC_NONE},
        {"wss://", KL_FRAMING_WS, KL_SEC_DIRECT_TLS},
        {"ws://", KL_FRAMING_WS, KL_SEC_NONE},
    };
    const char *p = NULL, *h, *e;
    size_t hl, pl, i;
    uint32_t port = 0;
    if (ep == NULL || url == NULL || buf == NULL)
        return KL_ERR_ARG;
    memset(ep, 0, sizeof *ep);
    for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (prefix(url, schemes[i].scheme)) {
            p = url + strlen(schemes[i].scheme);
            ep->framing = schemes[i].framing;
            ep->security = schemes[i].security;
            break;
        }
    if (p == NULL)
        return KL_ERR_ARG;
    h = p;
    while (*p && *p != ':' && *p != '/')
        p++;
    hl = (size_t)(p - h);
    if (hl == 0)
        return KL_ERR_ARG;
    if (*p == ':') {
        p++;
        if (*p < '0' || *p > '9')
            return KL_ERR_ARG;
        while (*p >= '0' && *p <= '9') {
            port = port * 10 + (uint32_t)(*p++ - '0');
            if (port > 65535)
                return KL_ERR_ARG;
        }
        if (port == 0)
            return KL_ERR_ARG;
    }
    if (*p && *p != '/')
        return KL_ERR_ARG;
    e = *p ? p : "/";
    pl = strlen(e);
    if (hl + 1 + pl + 1 > cap)
        return KL_ERR_TOO_LARGE;
    memcpy(buf, h, hl);
    buf[hl] = 0;
    memcpy(buf + hl + 1, e, pl + 1);
    ep->host = buf;
    ep->path = buf + hl + 1;
    ep->port = (uint16_t)port;
    return KL_OK;
}
