/* The connection manager (core/kl_session.c) over fake primitives: a
 * scripted XMPP server behind a fake byte transport and a pass-through
 * "TLS" binding, with faults at every step. */
#include <stdlib.h>
#include <string.h>

#include "kinglet/kl_app.h"
#include "kinglet/kl_bosh.h"
#include "kinglet/kl_session.h"
#include "kt.h"

#define HDR "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
            "xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>"
#define FEAT_TLS "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>" \
                 "</stream:features>"
#define PROCEED "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define FEAT_SASL "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
                  "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
#define FAILURE "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"
#define FEAT_BIND "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
#define FEAT_BIND_SM "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" \
                     "<sm xmlns='urn:xmpp:sm:3'/></stream:features>"
#define BIND_RES "<iq type='result' id='kl-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" \
                 "<jid>alice@localhost/dev</jid></bind></iq>"

/* ---- the fake server and transport ------------------------------------------ */

typedef struct fake {
    int open_fail;          /* open() returns this (0: ok) */
    int open_fail_host;     /* ... only for host "dead" */
    int connect_polls;      /* poll_open returns 0 this many times */
    int never_connect;
    int mute;               /* the server reads but never answers */
    int tls_stall;          /* the TLS handshake never completes */
    int polls;
    int up;
    int tls_cert_fail;      /* the TLS handshake fails with KL_ERR_TLS_CERT */
    int auth_fail;
    const char *stream_error; /* sent instead of the bind result */
    long cut_in;            /* close after delivering this many bytes (-1: never) */
    long cut_out;           /* close after accepting this many bytes (-1: never) */
    long in_total, out_total;
    int tls;                /* the fake TLS is up on this connection */
    int starttls_seen;
    /* what the client sent on this connection, and what the server queued */
    char cl[8192];
    size_t cl_len, cl_scan;
    char sv[8192];
    size_t sv_len, sv_pos;
    int stage;
    char alpn[32];
    int setups, closes;
    int connections;
    int sm;                 /* offer XEP-0198 (with F.location in <enabled/>) */
    const char *location;
    const char *fail_host;  /* open() of this host fails */
    char last_host[64];
    uint16_t last_port;
    int resumes_seen;
    int net_closes, net_aborts;
    int two_slots;          /* BOSH: a second connection is opened (and left idle) */
} fake_t;

static fake_t F;

static void sv_queue(const char *s)
{
    size_t n = strlen(s);
    if (F.sv_len + n < sizeof F.sv) {
        memcpy(F.sv + F.sv_len, s, n);
        F.sv_len += n;
    }
}

/* The server reacts to complete commands in what the client sent. */
static void respond(void)
{
    if (F.mute)
        return;
    for (;;) {
        const char *p = F.cl + F.cl_scan, *hit;
        F.cl[F.cl_len] = 0;
        if ((hit = strstr(p, "<stream:stream"))) {
            const char *gt = strchr(hit, '>');
            if (!gt)
                return;
            F.cl_scan = (size_t)(gt + 1 - F.cl);
            if (F.stage == 0 && !F.tls)
                sv_queue(HDR FEAT_TLS);
            else if (F.stage <= 1)
                sv_queue(HDR FEAT_SASL), F.stage = 1;
            else
                sv_queue(F.sm ? HDR FEAT_BIND_SM : HDR FEAT_BIND);
            continue;
        }
        if ((hit = strstr(p, "<enable")) && strstr(hit, "/>")) {
            F.cl_scan = (size_t)(strstr(hit, "/>") + 2 - F.cl);
            sv_queue("<enabled xmlns='urn:xmpp:sm:3' id='sm1' resume='true'");
            if (F.location) {
                sv_queue(" location='");
                sv_queue(F.location);
                sv_queue("'");
            }
            sv_queue("/>");
            continue;
        }
        if ((hit = strstr(p, "<resume ")) && strstr(hit, "/>")) {
            F.cl_scan = (size_t)(strstr(hit, "/>") + 2 - F.cl);
            sv_queue("<resumed xmlns='urn:xmpp:sm:3' previd='sm1' h='0'/>");
            F.resumes_seen++;
            continue;
        }
        if ((hit = strstr(p, "<starttls")) && strstr(hit, "/>")) {
            F.cl_scan = (size_t)(strstr(hit, "/>") + 2 - F.cl);
            sv_queue(PROCEED);
            F.starttls_seen = 1;
            continue;
        }
        if ((hit = strstr(p, "<auth")) && strstr(hit, "</auth>")) {
            F.cl_scan = (size_t)(strstr(hit, "</auth>") + 7 - F.cl);
            sv_queue(F.auth_fail ? FAILURE : SUCCESS);
            if (!F.auth_fail)
                F.stage = 2;
            continue;
        }
        if ((hit = strstr(p, "<iq")) && strstr(hit, "</iq>")) {
            F.cl_scan = (size_t)(strstr(hit, "</iq>") + 5 - F.cl);
            if (strstr(hit, "kl-bind")) {
                if (F.stream_error) {
                    sv_queue("<stream:error><");
                    sv_queue(F.stream_error);
                    sv_queue(" xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>");
                } else {
                    sv_queue(BIND_RES);
                }
            }
            continue;
        }
        if ((hit = strstr(p, "</stream:stream>"))) {
            F.cl_scan = (size_t)(hit + 16 - F.cl);
            sv_queue("</stream:stream>");
            continue;
        }
        return;
    }
}

static int f_open(void *net, int slot, const char *host, uint16_t port)
{
    (void)net;
    if (slot != 0)
        return F.two_slots && slot == 1 ? KL_OK : KL_ERR_ARG;
    snprintf(F.last_host, sizeof F.last_host, "%s", host);
    F.last_port = port;
    if (F.open_fail && (!F.open_fail_host || !strcmp(host, "dead")))
        return F.open_fail;
    if (F.fail_host && !strcmp(host, F.fail_host))
        return KL_ERR_CONNECT;
    F.up = 1;
    F.polls = 0;
    F.cl_len = F.cl_scan = F.sv_len = F.sv_pos = 0;
    F.stage = 0;
    F.tls = 0;
    F.in_total = F.out_total = 0;
    F.connections++;
    return KL_OK;
}

static int f_poll_open(void *net, int slot)
{
    (void)net, (void)slot;
    if (F.never_connect)
        return 0;
    return F.polls++ >= F.connect_polls ? 1 : 0;
}

static int f_send(void *net, int slot, const uint8_t *buf, size_t len)
{
    (void)net, (void)slot;
    if (!F.up)
        return KL_ERR_CONN_CLOSED;
    if (F.cut_out >= 0 && F.out_total + (long)len > F.cut_out) {
        F.up = 0;
        return KL_ERR_CONN_CLOSED;
    }
    if (F.cl_len + len >= sizeof F.cl)
        return 0;
    memcpy(F.cl + F.cl_len, buf, len);
    F.cl_len += len;
    F.out_total += (long)len;
    respond();
    return (int)len;
}

static int f_recv(void *net, int slot, uint8_t *buf, size_t len)
{
    size_t n;
    (void)net, (void)slot;
    if (!F.up)
        return KL_ERR_CONN_CLOSED;
    n = F.sv_len - F.sv_pos;
    if (F.cut_in >= 0) {
        if (F.in_total >= F.cut_in) {
            F.up = 0;
            return KL_ERR_CONN_CLOSED;
        }
        if ((long)n > F.cut_in - F.in_total)
            n = (size_t)(F.cut_in - F.in_total);
    }
    if (n > len)
        n = len;
    if (n == 0)
        return 0;
    memcpy(buf, F.sv + F.sv_pos, n);
    F.sv_pos += n;
    F.in_total += (long)n;
    return (int)n;
}

static void f_close(void *net, int slot)
{
    (void)net, (void)slot;
    F.up = 0;
    F.net_closes++;
}

static void f_abort(void *net, int slot)
{
    (void)net, (void)slot;
    F.up = 0;
    F.net_aborts++;
}

static const kl_net_ops_t fake_net = {f_open, f_poll_open, f_send, f_recv, NULL, NULL, f_close, NULL, f_abort};

/* ---- the pass-through TLS ---------------------------------------------------- */

static kl_transport_t *lower_;
static int hs_calls;

static int t_setup(void *tls, int slot, const kl_tls_params_t *p, kl_transport_t *lower)
{
    (void)tls, (void)slot;
    lower_ = lower;
    hs_calls = 0;
    F.setups++;
    snprintf(F.alpn, sizeof F.alpn, "%s", p->alpn ? p->alpn : "");
    return KL_OK;
}

static int t_handshake(void *tls, int slot)
{
    (void)tls, (void)slot;
    if (!F.up)
        return KL_ERR_CONN_CLOSED;
    if (hs_calls++ == 0 || F.tls_stall)
        return 0; /* one wait for the peer */
    if (F.tls_cert_fail)
        return KL_ERR_TLS_CERT;
    F.tls = 1;
    return 1;
}

static void t_hold(void *tls, int slot, int hold) { (void)tls, (void)slot, (void)hold; }
static void t_preread(void *tls, int slot, const uint8_t *d, size_t n) { (void)tls, (void)slot, (void)d, (void)n; }
static int t_send(void *tls, int slot, const uint8_t *b, size_t n) { (void)tls, (void)slot; return lower_->send(lower_->ctx, b, n); }
static int t_recv(void *tls, int slot, uint8_t *b, size_t n) { (void)tls, (void)slot; return lower_->recv(lower_->ctx, b, n); }

static void t_info(void *tls, int slot, kl_tls_info_t *out)
{
    (void)tls, (void)slot;
    memset(out, 0, sizeof *out);
    out->verified = 1;
    out->round_trips = 1;
    out->version = "FAKE";
}

static void t_close(void *tls, int slot)
{
    (void)tls, (void)slot;
    F.closes++;
}

static const char *t_error_text(void *tls, int slot, char *buf, size_t cap)
{
    (void)tls, (void)slot;
    snprintf(buf, cap, "fake certificate rejected");
    return buf;
}

static const kl_tls_ops_t fake_tls = {t_setup, t_handshake, t_hold, t_preread, t_send, t_recv,
                                      t_info, NULL, t_close, t_error_text, NULL};

/* ---- driving -------------------------------------------------------------------- */

static kl_client_t cl;
static kl_session_t ss;
static uint32_t now;

static void reset(void)
{
    memset(&F, 0, sizeof F);
    F.cut_in = F.cut_out = -1;
    now = 1000;
}

static void setup(kl_session_config_t *sc, int reconnect)
{
    kl_client_config_t cc;
    memset(&cc, 0, sizeof cc);
    cc.jid = "alice@localhost/dev";
    cc.password = "secret";
    cc.no_presence = 1;
    cc.pipelining = KL_PIPELINING_SAFE;
    cc.random = kt_random;
    KT_CHECK_EQ(kl_client_init(&cl, &cc), KL_OK);
    memset(sc, 0, sizeof *sc);
    sc->client = &cl;
    sc->net = &fake_net;
    sc->tls = &fake_tls;
    sc->random = kt_random;
    sc->reconnect = (uint8_t)reconnect;
    sc->backoff_min_ms = 100;
    sc->backoff_max_ms = 800;
    sc->timeout_ms = 5000;
}

/* Step until an event of one of the wanted kinds (or any final one);
 * time advances by the session's own next timeout when it is idle. */
static int run_until(kl_event_t *ev, int max_steps)
{
    for (int i = 0; i < max_steps; i++) {
        int r = kl_session_step(&ss, now, ev);
        if (r > 0)
            return 1;
        KT_CHECK(r == 0);
        uint32_t t = kl_session_next_timeout(&ss, now);
        now += t == UINT32_MAX ? 1000 : (t == 0 ? 1 : t);
    }
    return 0;
}

static void test_starttls_login(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 0);
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    KT_CHECK_EQ(kl_session_start(&ss, now), KL_OK);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    KT_CHECK_STR(ev.jid, "alice@localhost/dev");
    KT_CHECK(F.starttls_seen);
    KT_CHECK_STR(F.alpn, ""); /* STARTTLS: no ALPN */
    /* TCP + header + starttls + TLS + auth (PLAIN pipelined) + bind (safe) */
    KT_CHECK_EQ(kl_client_stats(&cl)->round_trips, 5);
    KT_CHECK_EQ(kl_session_stats(&ss)->onlines, 1);
    KT_CHECK_STR(kl_session_stats(&ss)->tls_version, "FAKE");
    KT_CHECK(kl_session_wants(&ss, 0) & KL_WANT_READ);
    KT_CHECK_EQ(kl_session_wants(&ss, 1), 0);
    KT_CHECK_EQ(kl_session_close(&ss), KL_OK);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_CLOSED);
    KT_CHECK_EQ(ev.status, KL_OK);
    KT_CHECK(!F.up);
    KT_CHECK_EQ(F.net_closes, 1); /* a logout closes gracefully */
    KT_CHECK_EQ(F.net_aborts, 0);
}

static void test_direct_tls(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 0);
    sc.endpoints[0].security = KL_SEC_DIRECT_TLS;
    sc.n_endpoints = 1;
    F.stage = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_start(&ss, now);
    F.stage = 1;
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    KT_CHECK_STR(F.alpn, "xmpp-client");
    KT_CHECK(!F.starttls_seen);
    /* TCP + TLS + header/auth + bind: 4 */
    KT_CHECK_EQ(kl_client_stats(&cl)->round_trips, 4);
    kl_session_shutdown(&ss);
}

/* A link cut at every inbound byte offset of the login: each time the
 * manager reports the loss, backs off, reconnects and ends online. */
static void test_cut_everywhere(int inbound)
{
    long total;
    kl_session_config_t sc;
    kl_event_t ev;
    /* the login's size in that direction */
    reset();
    setup(&sc, 1);
    kl_session_init(&ss, &sc);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    total = inbound ? F.in_total : F.out_total;
    kl_session_shutdown(&ss);
    KT_CHECK(total > 300);
    int all_online = 1, all_down = 1;
    for (long k = 0; k < total; k++) {
        int downs = 0, online = 0;
        reset();
        setup(&sc, 1);
        kl_session_init(&ss, &sc);
        kl_session_start(&ss, now);
        if (inbound)
            F.cut_in = k;
        else
            F.cut_out = k;
        for (int i = 0; i < 10 && !online; i++) {
            if (!run_until(&ev, 200))
                break;
            if (ev.type == KL_EV_LINK_DOWN) {
                downs++;
                F.cut_in = F.cut_out = -1; /* the link is back */
                if (ev.retry_ms < 100 || ev.retry_ms > 800)
                    all_down = 0;
            } else if (ev.type == KL_EV_ONLINE) {
                online = 1;
            } else if (ev.type == KL_EV_ERROR) {
                break;
            }
        }
        if (!online || downs != 1) {
            all_online = 0;
            fprintf(stderr, "cut %s at %ld: online %d, downs %d, last event %d status %d\n",
                    inbound ? "in" : "out", k, online, downs, ev.type, ev.status);
        }
        kl_session_shutdown(&ss);
    }
    KT_CHECK(all_online);
    KT_CHECK(all_down);
}

static void test_cut_in(void) { test_cut_everywhere(1); }
static void test_cut_out(void) { test_cut_everywhere(0); }

static void test_auth_failure_is_final(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 1);
    F.auth_fail = 1;
    kl_session_init(&ss, &sc);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_AUTH);
    KT_CHECK_EQ(kl_session_stats(&ss)->attempts, 1);
    KT_CHECK_EQ(kl_session_step(&ss, now + 100000, &ev), 0); /* nothing after the end */
    KT_CHECK_EQ(F.connections, 1);
}

static void test_cert_failure_is_final(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 1);
    F.tls_cert_fail = 1;
    kl_session_init(&ss, &sc);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TLS_CERT);
    KT_CHECK(strstr(kl_session_error_text(&ss), "fake certificate rejected") != NULL);
    KT_CHECK(strstr(F.cl, "<auth") == NULL); /* no credential left */
    KT_CHECK_EQ(F.connections, 1);
    KT_CHECK(F.closes >= 1);
}

static void test_failover(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 0);
    sc.endpoints[0].host = "dead";
    sc.endpoints[1].host = "good";
    sc.n_endpoints = 2;
    F.open_fail = KL_ERR_CONNECT;
    F.open_fail_host = 1;
    kl_session_init(&ss, &sc);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE); /* no KL_EV_LINK_DOWN in between */
    KT_CHECK_STR(kl_session_endpoint(&ss)->host, "good");
    KT_CHECK_EQ(kl_session_stats(&ss)->attempts, 2);
    kl_session_shutdown(&ss);
}

static void test_backoff(int jitter)
{
    kl_session_config_t sc;
    kl_event_t ev;
    uint32_t caps[] = {100, 200, 400, 800, 800, 800};
    /* with jitter the window reaches one doubling further: the first retry
     * too is spread (over [100, 200]), not the same instant for a fleet */
    uint32_t jcaps[] = {200, 400, 800, 800, 800, 800};
    reset();
    setup(&sc, 1);
    sc.no_jitter = (uint8_t)!jitter;
    F.open_fail = KL_ERR_CONNECT;
    kl_session_init(&ss, &sc);
    kl_session_start(&ss, now);
    for (int i = 0; i < 6; i++) {
        uint32_t t0 = now;
        KT_CHECK(run_until(&ev, 100));
        KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
        KT_CHECK_EQ(ev.status, KL_ERR_CONNECT);
        if (jitter)
            KT_CHECK(ev.retry_ms >= 100 && ev.retry_ms <= jcaps[i]);
        else
            KT_CHECK_EQ(ev.retry_ms, caps[i]);
        KT_CHECK_EQ(kl_session_next_timeout(&ss, now), ev.retry_ms);
        (void)t0;
    }
    /* the link comes back: online, and a stable session resets the backoff */
    F.open_fail = 0;
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    now += 60000;
    F.up = 0; /* the server vanishes */
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
    if (!jitter)
        KT_CHECK_EQ(ev.retry_ms, 100);
    kl_session_shutdown(&ss);
}

static void test_backoff_fixed(void) { test_backoff(0); }
static void test_backoff_jitter(void) { test_backoff(1); }

static void test_max_attempts(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    int downs = 0;
    reset();
    setup(&sc, 1);
    sc.max_attempts = 3;
    F.open_fail = KL_ERR_CONNECT;
    kl_session_init(&ss, &sc);
    kl_session_start(&ss, now);
    while (run_until(&ev, 100) && ev.type == KL_EV_LINK_DOWN)
        downs++;
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(downs, 2);
    KT_CHECK_EQ(kl_session_stats(&ss)->attempts, 3);
}

static void test_stream_errors(void)
{
    static const struct { const char *cond; int retry; } cases[] = {
        {"system-shutdown", 1}, {"connection-timeout", 1}, {"reset", 1},
        {"conflict", 0}, {"policy-violation", 0}, {"see-other-host", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kl_session_config_t sc;
        kl_event_t ev;
        reset();
        setup(&sc, 1);
        F.stream_error = cases[i].cond;
        kl_session_init(&ss, &sc);
        kl_session_start(&ss, now);
        KT_CHECK(run_until(&ev, 100));
        KT_CHECK_EQ(ev.type, cases[i].retry ? KL_EV_LINK_DOWN : KL_EV_ERROR);
        KT_CHECK_STR(ev.condition, cases[i].cond);
        kl_session_shutdown(&ss);
    }
    KT_CHECK_EQ(kl_session_retryable(KL_ERR_AUTH, ""), 0);
    KT_CHECK_EQ(kl_session_retryable(KL_ERR_TLS_CERT, ""), 0);
    KT_CHECK_EQ(kl_session_retryable(KL_ERR_CONN_CLOSED, ""), 1);
    KT_CHECK_EQ(kl_session_retryable(KL_ERR_DEAD_PEER, ""), 1);
    KT_CHECK_EQ(kl_session_retryable(KL_ERR_TIMEOUT, ""), 1);
}

static void test_connect_timeout(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 0);
    F.never_connect = 1;
    kl_session_init(&ss, &sc);
    kl_session_start(&ss, now);
    uint32_t t0 = now;
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_CONNECT);
    KT_CHECK(now - t0 >= 5000 && now - t0 < 5100); /* woke at the deadline, no busy timer */
}

/* Timeouts grow (KL_SESSION_TIMEOUT_GROWTH): a TLS handshake or a login
 * that timed out gives the next attempt twice the time, up to 2^GROWTH
 * times; online and kl_session_kick reset them. A TCP connect timeout (a
 * node that drops SYNs) does not grow them. */
static uint32_t grown(uint32_t base, int i)
{
    return base << (i < KL_SESSION_TIMEOUT_GROWTH ? i : KL_SESSION_TIMEOUT_GROWTH);
}

/* n attempts in a row that each end with a link down of this status;
 * want(i): the i-th attempt's length */
static void attempts_take(int n, int status, uint32_t base, int grows)
{
    kl_event_t ev;
    uint32_t t_try = now;
    for (int i = 0; i < n; i++) {
        uint32_t want = grows ? grown(base, i) : base;
        KT_CHECK(run_until(&ev, 1000));
        KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
        KT_CHECK_EQ(ev.status, status);
        KT_CHECK(now - t_try >= want && now - t_try < want + 100);
        t_try = now + ev.retry_ms;
    }
}

static void test_timeout_growth(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 1);
    sc.no_jitter = 1;
    /* a node that never answers the SYN: 5 s each time, never more */
    F.never_connect = 1;
    kl_session_init(&ss, &sc);
    kl_session_start(&ss, now);
    attempts_take(4, KL_ERR_CONNECT, 5000, 0);
    KT_CHECK_EQ(ss.slow, 0);
    /* it connects, but the TLS handshake stalls: 5 s, 10 s, 20 s, 20 s */
    F.never_connect = 0;
    F.tls_stall = 1;
    now += 1000; /* past the backoff */
    attempts_take(4, KL_ERR_TIMEOUT, 5000, 1);
    KT_CHECK_EQ(ss.slow, KL_SESSION_TIMEOUT_GROWTH);
    /* the network changed: kl_session_kick starts over at 5 s */
    kl_session_kick(&ss, now);
    attempts_take(1, KL_ERR_TIMEOUT, 5000, 0);
    /* the handshake completes, online: back to the configured timeouts */
    F.tls_stall = 0;
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    KT_CHECK_EQ(ss.slow, 0);
    /* the link drops; the server accepts but never answers: the engine's
     * negotiation deadline, KL_NEGOTIATION_TIMEOUT_MS, then twice, then 4x */
    F.mute = 1;
    F.up = 0;
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
    now += ev.retry_ms;
    attempts_take(4, KL_ERR_TIMEOUT, KL_NEGOTIATION_TIMEOUT_MS, 1);
    kl_session_shutdown(&ss);
}

static void test_kick(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 1);
    kl_session_init(&ss, &sc);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    kl_session_kick(&ss, now);
    KT_CHECK(!F.up);
    KT_CHECK_EQ(F.net_aborts, 1); /* a link given up is aborted */
    KT_CHECK_EQ(F.net_closes, 0);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    KT_CHECK_EQ(F.connections, 2);
    kl_session_shutdown(&ss);
}

/* XEP-0198 <enabled location/>: the reconnect goes there first; when it
 * fails (here: nothing listens), back to the configured endpoint at once. */
static void test_location(int reachable)
{
    static uint8_t smq[2048];
    kl_client_config_t cc;
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 1);
    memset(&cc, 0, sizeof cc);
    cc.jid = "alice@localhost/dev";
    cc.password = "secret";
    cc.no_presence = 1;
    cc.pipelining = KL_PIPELINING_SAFE;
    cc.random = kt_random;
    cc.sm_queue = smq;
    cc.sm_queue_size = sizeof smq;
    KT_CHECK_EQ(kl_client_init(&cl, &cc), KL_OK);
    sc.endpoints[0].host = "primary";
    sc.n_endpoints = 1;
    F.sm = 1;
    F.location = "[2001:db8::7]:5999";
    kl_session_init(&ss, &sc);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    KT_CHECK_STR(F.last_host, "primary");
    for (int i = 0; i < 20; i++) /* <enabled/> arrives */
        (void)kl_session_step(&ss, now, &ev);
    kl_sm_info_t info;
    kl_sm_info(&cl, &info);
    KT_CHECK_STR(info.location, "[2001:db8::7]:5999");
    if (!reachable)
        F.fail_host = "2001:db8::7"; /* nothing listens at the location */
    F.up = 0; /* the link is lost */
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
    KT_CHECK(run_until(&ev, 100)); /* a failed location is no event of its own */
    KT_CHECK_EQ(ev.type, KL_EV_RESUMED);
    KT_CHECK_STR(F.last_host, reachable ? "2001:db8::7" : "primary");
    KT_CHECK_EQ(F.last_port, reachable ? 5999 : 5222);
    KT_CHECK_EQ(kl_session_stats(&ss)->location_tries, 1);
    KT_CHECK(F.resumes_seen == 1);
    kl_session_shutdown(&ss);
}

static void test_location_used(void) { test_location(1); }
static void test_location_fallback(void) { test_location(0); }

#if KL_ENABLE_APP && KL_ENABLE_BOSH
/* A long message is written in pieces: over plain XMPP it goes; BOSH (and
 * WebSocket) carry whole stanzas only, so the manager marks the
 * connection and kl_send_message_begin says KL_ERR_UNSUPPORTED. */
static void test_long_message_framing(void)
{
    static kl_bosh_t bosh;
    kl_session_config_t sc;
    kl_event_t ev;
    int i;
    reset();
    setup(&sc, 0);
    kl_session_init(&ss, &sc);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    KT_CHECK_EQ(kl_send_message_begin(&cl, "bob@localhost", NULL), KL_OK);
    KT_CHECK_EQ(kl_send_text(&cl, (const uint8_t *)"hi", 2), 2);
    KT_CHECK_EQ(kl_send_message_end(&cl), KL_OK);
    kl_session_shutdown(&ss);

    reset();
    setup(&sc, 0);
    F.two_slots = 1;
    sc.endpoints[0].host = "127.0.0.1";
    sc.endpoints[0].port = 5280;
    sc.endpoints[0].path = "/http-bind";
    sc.endpoints[0].framing = KL_FRAMING_BOSH;
    sc.endpoints[0].security = KL_SEC_NONE;
    sc.n_endpoints = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    for (i = 0; i < 20 && F.cl_len == 0; i++) { /* until the session request went out */
        (void)kl_session_step(&ss, now, &ev);
        now += 1;
    }
    KT_CHECK(strstr(F.cl, "POST /http-bind") != NULL);
    KT_CHECK_EQ(kl_send_message_begin(&cl, "bob@localhost", NULL), KL_ERR_UNSUPPORTED);
    KT_CHECK(!kl_send_long_open(&cl));
    kl_session_shutdown(&ss);
}
#endif

static void test_init_checks(void)
{
    kl_session_config_t sc;
    reset();
    setup(&sc, 1);
    sc.random = NULL;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_ERR_NO_ENTROPY);
    sc.no_jitter = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    sc.endpoints[0].framing = 7;
    sc.n_endpoints = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_ERR_ARG);
    sc.endpoints[0].framing = KL_FRAMING_BOSH;
    sc.endpoints[0].security = KL_SEC_STARTTLS;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_ERR_ARG);
    sc.net = NULL;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_ERR_ARG);
}

static void test_urls(void)
{
    kl_endpoint_t ep;
    char buf[128];
    KT_CHECK_EQ(kl_endpoint_from_url(&ep, "wss://example.org/xmpp-websocket", buf, sizeof buf), KL_OK);
    KT_CHECK_STR(ep.host, "example.org");
    KT_CHECK_STR(ep.path, "/xmpp-websocket");
    KT_CHECK_EQ(ep.port, 0);
    KT_CHECK_EQ(ep.framing, KL_FRAMING_WS);
    KT_CHECK_EQ(ep.security, KL_SEC_DIRECT_TLS);
    KT_CHECK_EQ(kl_endpoint_from_url(&ep, "http://127.0.0.1:5280", buf, sizeof buf), KL_OK);
    KT_CHECK_STR(ep.path, "/");
    KT_CHECK_EQ(ep.port, 5280);
    KT_CHECK_EQ(ep.framing, KL_FRAMING_BOSH);
    KT_CHECK_EQ(ep.security, KL_SEC_NONE);
    KT_CHECK_EQ(kl_endpoint_from_url(&ep, "ws://h:0/", buf, sizeof buf), KL_ERR_ARG);
    KT_CHECK_EQ(kl_endpoint_from_url(&ep, "ws://h:65536/", buf, sizeof buf), KL_ERR_ARG);
    KT_CHECK_EQ(kl_endpoint_from_url(&ep, "ftp://h/", buf, sizeof buf), KL_ERR_ARG);
    KT_CHECK_EQ(kl_endpoint_from_url(&ep, "ws:///x", buf, sizeof buf), KL_ERR_ARG);
    KT_CHECK_EQ(kl_endpoint_from_url(&ep, "ws://h:12x/", buf, sizeof buf), KL_ERR_ARG);
    KT_CHECK_EQ(kl_endpoint_from_url(&ep, "wss://example.org/xmpp-websocket", buf, 10), KL_ERR_TOO_LARGE);
}

int main(void)
{
    KT_RUN(test_starttls_login);
    KT_RUN(test_direct_tls);
    KT_RUN(test_cut_in);
    KT_RUN(test_cut_out);
    KT_RUN(test_auth_failure_is_final);
    KT_RUN(test_cert_failure_is_final);
    KT_RUN(test_failover);
    KT_RUN(test_backoff_fixed);
    KT_RUN(test_backoff_jitter);
    KT_RUN(test_max_attempts);
    KT_RUN(test_stream_errors);
    KT_RUN(test_connect_timeout);
    KT_RUN(test_timeout_growth);
    KT_RUN(test_kick);
    KT_RUN(test_location_used);
    KT_RUN(test_location_fallback);
#if KL_ENABLE_APP && KL_ENABLE_BOSH
    KT_RUN(test_long_message_framing);
#endif
    KT_RUN(test_init_checks);
    KT_RUN(test_urls);
    return kt_summary("session");
}
