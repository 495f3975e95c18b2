/* The connection manager (core/kl_session.c) over fake primitives: a
 * scripted XMPP server behind a fake byte transport and a pass-through
 * "TLS" binding, with faults at every step. */
#include <stdlib.h>
#include <string.h>

#include "kinglet/kl_app.h"
#include "kinglet/kl_bosh.h"
#include "kinglet/kl_session.h"
#include "kinglet/kl_ws.h"
#include "kinglet/kl_post.h"
#include "kinglet/kl_cache.h"
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
/* SASL2 (XEP-0388) on offer next to RFC 6120's PLAIN */
#define FEAT_SASL_SASL2 "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
                        "<mechanism>PLAIN</mechanism></mechanisms><authentication xmlns='urn:xmpp:sasl:2'>" \
                        "<mechanism>PLAIN</mechanism></authentication></stream:features>"
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
    int poll_fail;          /* poll_open returns this (< 0) */
    int server_close;       /* the server ends its stream instead of the bind result */
    /* the fake TLS */
    int tls_setup_fail;     /* setup() fails */
    int tls_fail;           /* the handshake's second call returns this (< 0) */
    int tls_first_fail;     /* the handshake's first call returns this (< 0) */
    int tls_recv_fail;      /* recv() returns this once TLS is up (< 0) */
    int tls_stall1;         /* the handshake on slot 1 never completes */
    int starttls_block;     /* a send of <starttls/> takes nothing this many times */
    int starttls_fail;      /* ... or fails with this */
    char sni[64];
    int tls_zero_reads;     /* recv() returns 0 this many times (a record without data) */
    int unverified, resumed, offered, new_session, no_version;
    int exports, saves, preread_len, holds;
    /* the port's optional ops */
    int flushes, corks_on, corks_off, readable;
    int sasl2;              /* the features after TLS offer SASL2 too */
    int recv_empty;         /* recv() calls with no room to read into */
    int offers;             /* TLS setups given a cached session */
    int save_fail;          /* save_session() fails */
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

/* The server reacts to complete commands in what the client sent, in
 * the order they were sent (a pipelined flight holds several). */
static const char *const cmd_start[] = {"<stream:stream", "<enable", "<resume ", "<starttls", "<auth", "<iq",
                                        "</stream:stream>"};
static const char *const cmd_end[] = {">", "/>", "/>", "/>", "</auth>", "</iq>", ""};

static void answer(int k, const char *hit)
{
    switch (k) {
    case 0:
        if (F.stage == 0 && !F.tls)
            sv_queue(HDR FEAT_TLS);
        else if (F.stage <= 1)
            sv_queue(F.sasl2 ? HDR FEAT_SASL_SASL2 : HDR FEAT_SASL), F.stage = 1;
        else
            sv_queue(F.sm ? HDR FEAT_BIND_SM : HDR FEAT_BIND);
        break;
    case 1:
        sv_queue("<enabled xmlns='urn:xmpp:sm:3' id='sm1' resume='true'");
        if (F.location) {
            sv_queue(" location='");
            sv_queue(F.location);
            sv_queue("'");
        }
        sv_queue("/>");
        break;
    case 2:
        sv_queue("<resumed xmlns='urn:xmpp:sm:3' previd='sm1' h='0'/>");
        F.resumes_seen++;
        break;
    case 3:
        sv_queue(PROCEED);
        F.starttls_seen = 1;
        break;
    case 4:
        sv_queue(F.auth_fail ? FAILURE : SUCCESS);
        if (!F.auth_fail)
            F.stage = 2;
        break;
    case 5:
        if (strstr(hit, "kl-bind") && strstr(hit, "kl-bind") < strstr(hit, "</iq>")) {
            if (F.server_close) {
                sv_queue("</stream:stream>");
            } else if (F.stream_error) {
                sv_queue("<stream:error><");
                sv_queue(F.stream_error);
                sv_queue(" xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>");
            } else {
                sv_queue(BIND_RES);
            }
        }
        break;
    default:
        sv_queue("</stream:stream>");
        break;
    }
}

static void respond(void)
{
    if (F.mute)
        return;
    F.cl[F.cl_len] = 0;
    for (;;) {
        const char *p = F.cl + F.cl_scan, *best = NULL, *end = NULL;
        int kb = -1;
        for (int k = 0; k < (int)(sizeof cmd_start / sizeof cmd_start[0]); k++) {
            const char *hit = strstr(p, cmd_start[k]), *e;
            if (!hit || (best && hit >= best))
                continue;
            if (k == 0 && hit > p && hit[-1] == '/')
                continue; /* </stream:stream> */
            e = strstr(hit + strlen(cmd_start[k]), cmd_end[k]);
            best = hit, kb = k, end = e ? e + strlen(cmd_end[k]) : NULL;
        }
        if (!best || !end)
            return;
        F.cl_scan = (size_t)(end - F.cl);
        answer(kb, best);
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
    if (F.polls++ < F.connect_polls)
        return 0;
    return F.poll_fail ? F.poll_fail : 1;
}

static int has(const uint8_t *buf, size_t len, const char *what)
{
    size_t n = strlen(what);
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(buf + i, what, n))
            return 1;
    return 0;
}

static int f_send(void *net, int slot, const uint8_t *buf, size_t len)
{
    (void)net, (void)slot;
    if (!F.up)
        return KL_ERR_CONN_CLOSED;
    if (has(buf, len, "<starttls")) {
        if (F.starttls_fail)
            return F.starttls_fail;
        if (F.starttls_block > 0) {
            F.starttls_block--;
            return 0;
        }
    }
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
    F.recv_empty += len == 0;
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

static void f_flush(void *net, int slot) { (void)net, (void)slot; F.flushes++; }
static void f_cork(void *net, int slot, int on) { (void)net, (void)slot; *(on ? &F.corks_on : &F.corks_off) += 1; }
static int f_readable(void *net, int slot) { (void)net, (void)slot; return F.readable; }

/* the optional ops too (flush, cork, readable); no abort: a lost link is closed */
static const kl_net_ops_t full_net = {f_open, f_poll_open, f_send, f_recv, f_flush, f_cork, f_close, f_readable, NULL};

/* ---- the pass-through TLS ---------------------------------------------------- */

static kl_transport_t *lower_[KL_SESSION_SLOTS];
static int hs_calls[KL_SESSION_SLOTS];
static int (*conn_up)(int slot); /* the transport under the fake TLS is up */

static int f_up(int slot) { (void)slot; return F.up; }

static int t_setup(void *tls, int slot, const kl_tls_params_t *p, kl_transport_t *lower)
{
    (void)tls;
    lower_[slot] = lower;
    hs_calls[slot] = 0;
    F.setups++;
    snprintf(F.alpn, sizeof F.alpn, "%s", p->alpn ? p->alpn : "");
    snprintf(F.sni, sizeof F.sni, "%s", p->server_name);
    F.offered = p->session_len > 0;
    F.offers += F.offered;
    return F.tls_setup_fail ? KL_ERR_TLS_SETUP : KL_OK;
}

static int t_handshake(void *tls, int slot)
{
    (void)tls;
    if (!conn_up(slot))
        return KL_ERR_CONN_CLOSED;
    if (hs_calls[slot]++ == 0)
        return F.tls_first_fail ? F.tls_first_fail : 0; /* one wait for the peer */
    if (F.tls_stall || (slot == 1 && F.tls_stall1))
        return 0;
    if (F.tls_cert_fail)
        return KL_ERR_TLS_CERT;
    if (F.tls_fail)
        return F.tls_fail;
    F.tls = 1;
    return 1;
}

static void t_hold(void *tls, int slot, int hold) { (void)tls, (void)slot; F.holds += hold ? 1 : 100; }
static void t_preread(void *tls, int slot, const uint8_t *d, size_t n) { (void)tls, (void)slot, (void)d; F.preread_len = (int)n; }
static int t_send(void *tls, int slot, const uint8_t *b, size_t n) { (void)tls; return lower_[slot]->send(lower_[slot]->ctx, b, n); }

static int t_recv(void *tls, int slot, uint8_t *b, size_t n)
{
    (void)tls;
    if (F.tls_recv_fail)
        return F.tls_recv_fail;
    if (F.tls_zero_reads > 0) {
        F.tls_zero_reads--;
        return 0;
    }
    return lower_[slot]->recv(lower_[slot]->ctx, b, n);
}

static void t_info(void *tls, int slot, kl_tls_info_t *out)
{
    (void)tls, (void)slot;
    memset(out, 0, sizeof *out);
    out->verified = (uint8_t)!F.unverified;
    out->resumed = (uint8_t)F.resumed;
    out->session_offered = (uint8_t)F.offered;
    out->new_session = (uint8_t)F.new_session;
    out->round_trips = 1;
    out->version = F.no_version ? NULL : "FAKE";
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

static int t_save(void *tls, int slot, uint8_t *buf, size_t cap, size_t *len)
{
    (void)tls, (void)slot;
    F.saves++;
    if (cap < 4 || F.save_fail)
        return KL_ERR_TOO_LARGE;
    memcpy(buf, "SESS", 4);
    *len = 4;
    return KL_OK;
}

static int t_exporter(void *tls, int slot, uint8_t *out, size_t len)
{
    (void)tls, (void)slot;
    F.exports++;
    memset(out, 0x5a, len);
    return KL_OK;
}

static const kl_tls_ops_t fake_tls = {t_setup, t_handshake, t_hold, t_preread, t_send, t_recv,
                                      t_info, NULL, t_close, t_error_text, NULL};
/* with save_session and the exporter */
static const kl_tls_ops_t full_tls = {t_setup, t_handshake, t_hold, t_preread, t_send, t_recv,
                                      t_info, t_save, t_close, t_error_text, t_exporter};

/* ---- driving -------------------------------------------------------------------- */

static kl_client_t cl;
static kl_session_t ss;
static uint32_t now;
static int opt_full, opt_plain; /* the client: full pipelining, plaintext allowed */
static kl_cache_t *opt_cache;   /* the client's hints */

static void reset(void)
{
    memset(&F, 0, sizeof F);
    F.cut_in = F.cut_out = -1;
    conn_up = f_up;
    opt_full = opt_plain = 0;
    opt_cache = NULL;
    now = 1000;
}

static void setup(kl_session_config_t *sc, int reconnect)
{
    kl_client_config_t cc;
    memset(&cc, 0, sizeof cc);
    cc.jid = "alice@localhost/dev";
    cc.password = "secret";
    cc.no_presence = 1;
    cc.pipelining = opt_full ? KL_PIPELINING_FULL : KL_PIPELINING_SAFE;
    cc.force_full = (uint8_t)opt_full;
    cc.allow_plaintext = (uint8_t)opt_plain;
    cc.random = kt_random;
    cc.cache = opt_cache;
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

/* Step without time passing (a port woken by its sockets) until an event. */
static int step_until(kl_event_t *ev, int max_steps)
{
    for (int i = 0; i < max_steps; i++) {
        int r = kl_session_step(&ss, now, ev);
        if (r != 0)
            return r > 0;
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

/* ---- the HTTP framings: a WebSocket server and a BOSH connection manager ----
 * behind a fake transport with a connection per slot (the same fake TLS). */

#include "kt_sha1.h"

static int test_hash(void *ctx, kl_hash_alg_t alg, const uint8_t *data, size_t len, uint8_t *out)
{
    (void)ctx;
    if (alg != KL_HASH_SHA1)
        return -1;
    sha1(data, len, out);
    return 0;
}

static const kl_crypto_t crypto = {NULL, test_hash, NULL, NULL, NULL};

#define NSB "xmlns='http://jabber.org/protocol/httpbind'"
#define NSS "xmlns:stream='http://etherx.jabber.org/streams'"
#define WS_OPEN "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' version='1.0' id='w1' from='localhost'/>"
#define WS_FEAT(x) "<stream:features xmlns='jabber:client' " NSS ">" x "</stream:features>"
#define MECHS "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"
#define BIND "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
#define WS_BIND_RES "<iq xmlns='jabber:client' type='result' id='kl-bind'><bind " \
                    "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/dev</jid></bind></iq>"

typedef struct hconn {
    int up, polls, held;
    char cl[16384];
    size_t cl_len, cl_scan;
    uint8_t sv[16384];
    size_t sv_len, sv_pos;
} hconn_t;

static struct {
    int ws;                 /* 1 WebSocket, 0 BOSH */
    hconn_t c[KL_SESSION_SLOTS];
    int upgraded, stage, opens, connect_polls, open_fail_slot1;
    int refuse;             /* WS: 403 to the upgrade; BOSH: 404 to the session request */
    const char *terminate;  /* BOSH: the session request ends with this condition */
    int conn_close;         /* BOSH: every response says Connection: close */
    int send_fail;          /* send() on slot 1 fails this many times */
    int send_block;         /* send() takes nothing this many times */
    int recv_fail_held;     /* BOSH: the held poll's connection breaks */
    int ping;               /* WS: a ping before the bind result */
    int bad_frame;          /* WS: a malformed frame instead of the bind result */
    int ws_closes;          /* WS: </close> answered */
    int deaf;               /* WS: the server reads but does not answer */
    int never_connect_slot1;
    int open_fail;          /* open() fails on every slot */
    int send_fail_any;      /* send_fail counts on either slot */
    int garbage;            /* BOSH: the answer is no <body/> */
    char host[64];
    uint16_t port;
    int hosts_named;        /* requests seen with "Host: localhost:8443" */
    int poll_fail;          /* poll_open returns this (< 0) */
    int bad_http;           /* BOSH: the answer is no HTTP response */
    const kl_bosh_t *watch; /* BOSH: opens once this session is done are counted */
    int opens_done;
    int texts;              /* WS: text messages from the client */
    char last_text[2048];   /* ... the last one, unmasked */
} H;

static int h_up(int slot) { return H.c[slot].up; }

static void h_queue(int slot, const void *d, size_t n)
{
    hconn_t *c = &H.c[slot];
    if (c->sv_len + n <= sizeof c->sv) {
        memcpy(c->sv + c->sv_len, d, n);
        c->sv_len += n;
    }
}

static void ws_frame(int op, const char *text)
{
    uint8_t hd[4];
    size_t n = strlen(text), h = 2;
    hd[0] = (uint8_t)(0x80 | op);
    if (n < 126) {
        hd[1] = (uint8_t)n;
    } else {
        hd[1] = 126, hd[2] = (uint8_t)(n >> 8), hd[3] = (uint8_t)n;
        h = 4;
    }
    h_queue(0, hd, h);
    h_queue(0, text, n);
}

static void ws_serve(void)
{
    hconn_t *c = &H.c[0];
    c->cl[c->cl_len] = 0;
    if (H.deaf)
        return;
    if (!H.upgraded) {
        char *e = strstr(c->cl, "\r\n\r\n"), *k, key[128], acc[64], resp[256];
        uint8_t dg[20];
        size_t kl;
        if (!e)
            return;
        c->cl_scan = (size_t)(e + 4 - c->cl);
        if (H.refuse) {
            const char *r = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
            h_queue(0, r, strlen(r));
            return;
        }
        k = strstr(c->cl, "Sec-WebSocket-Key: ");
        KT_CHECK(k != NULL);
        if (!k)
            return;
        k += 19;
        kl = strcspn(k, "\r");
        snprintf(key, sizeof key, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", (int)kl, k);
        sha1((const uint8_t *)key, strlen(key), dg);
        b64(dg, 20, acc);
        snprintf(resp, sizeof resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n", acc);
        h_queue(0, resp, strlen(resp));
        H.upgraded = 1;
    }
    for (;;) {
        const uint8_t *f = (const uint8_t *)c->cl + c->cl_scan;
        size_t avail = c->cl_len - c->cl_scan, n, h = 6, i;
        char msg[2048];
        if (avail < 2)
            return;
        n = f[1] & 127;
        if (n == 126) {
            if (avail < 4)
                return;
            n = (size_t)f[2] << 8 | f[3];
            h = 8;
        }
        if (avail < h + n || n >= sizeof msg)
            return;
        for (i = 0; i < n; i++)
            msg[i] = (char)(f[h + i] ^ f[h - 4 + (i & 3)]);
        msg[n] = 0;
        c->cl_scan += h + n;
        if ((f[0] & 15) != 1)
            continue;
        H.texts++;
        snprintf(H.last_text, sizeof H.last_text, "%s", msg);
        if (strstr(msg, "<open")) {
            ws_frame(1, WS_OPEN);
            ws_frame(1, H.stage < 2 ? WS_FEAT(MECHS) : WS_FEAT(BIND));
        } else if (strstr(msg, "<auth")) {
            ws_frame(1, SUCCESS);
            H.stage = 2;
        } else if (strstr(msg, "kl-bind")) {
            if (H.ping)
                ws_frame(9, "p");
            if (H.bad_frame)
                h_queue(0, "\x81\xff", 2); /* a 64-bit length with the top bit set */
            else
                ws_frame(1, WS_BIND_RES);
        } else if (strstr(msg, "<close")) {
            H.ws_closes++;
            ws_frame(1, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
            ws_frame(8, "\x03\xe8");
        }
    }
}

static void bosh_reply(int slot, const char *body)
{
    char http[4096];
    size_t n = (size_t)snprintf(http, sizeof http, "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n%s"
                                "Content-Length: %zu\r\n\r\n%s", H.conn_close ? "Connection: close\r\n" : "",
                                strlen(body), body);
    h_queue(slot, http, n);
}

static void bosh_serve(int slot)
{
    hconn_t *c = &H.c[slot];
    for (;;) {
        char *e, *cl, *body, out[3072];
        size_t blen;
        c->cl[c->cl_len] = 0;
        e = strstr(c->cl + c->cl_scan, "\r\n\r\n");
        cl = strstr(c->cl + c->cl_scan, "Content-Length: ");
        if (!e || !cl)
            return;
        blen = (size_t)atoi(cl + 16);
        body = e + 4;
        if (c->cl_len - (size_t)(body - c->cl) < blen)
            return;
        c->cl_scan = (size_t)(body + blen - c->cl);
        body[blen] = 0; /* the next request's first byte, restored below */
        {
            char save = c->cl[c->cl_scan];
            int creation = strstr(body, "sid=") == NULL;
            out[0] = 0;
            /* a request with something to answer releases the held poll */
            for (int o = 0; o < KL_SESSION_SLOTS; o++)
                if (o != slot && H.c[o].held) {
                    H.c[o].held = 0;
                    bosh_reply(o, "<body " NSB "/>");
                }
            if (H.bad_http) {
                h_queue(slot, "HTTP/1.1 2x0 OK\r\n\r\n", 19); /* a status that is no number */
            } else if (H.garbage) {
                bosh_reply(slot, "<notbody/>");
            } else if (creation && H.refuse) {
                const char *r = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
                h_queue(slot, r, strlen(r));
            } else if (creation && H.terminate) {
                snprintf(out, sizeof out, "<body " NSB " type='terminate' condition='%s'/>", H.terminate);
                bosh_reply(slot, out);
            } else if (strstr(body, "type='terminate'")) {
                bosh_reply(slot, "<body " NSB " type='terminate'/>");
            } else {
                char inner[2048];
                inner[0] = 0;
                if (creation)
                    strcat(inner, "<stream:features>" MECHS "</stream:features>");
                if (strstr(body, "<auth"))
                    strcat(inner, SUCCESS);
                if (!creation && strstr(body, "xmpp:restart='true'"))
                    strcat(inner, "<stream:features>" BIND "</stream:features>");
                if (strstr(body, "kl-bind"))
                    strcat(inner, WS_BIND_RES);
                if (strstr(body, "<message"))
                    strcat(inner, "<message xmlns='jabber:client' from='bob@localhost/x' type='chat'>"
                                  "<body>pong</body></message>");
                if (!inner[0]) {
                    c->held = 1;
                } else {
                    snprintf(out, sizeof out, "<body " NSB " " NSS "%s>%s</body>",
                             creation ? " sid='b1' wait='60' requests='2' hold='1' ver='1.6' from='localhost'"
                                      : "", inner);
                    bosh_reply(slot, out);
                }
            }
            c->cl[c->cl_scan] = save;
        }
    }
}

static int h_open(void *net, int slot, const char *host, uint16_t port)
{
    hconn_t *c = &H.c[slot];
    (void)net;
    if (H.open_fail || (slot == 1 && H.open_fail_slot1))
        return KL_ERR_CONNECT;
    snprintf(H.host, sizeof H.host, "%s", host);
    H.port = port;
    H.opens_done += H.watch && kl_bosh_done(H.watch);
    c->cl[c->cl_len] = 0; /* what the connection being replaced carried */
    H.hosts_named += strstr(c->cl, "Host: localhost:8443\r\n") != NULL;
    memset(c, 0, sizeof *c);
    c->up = 1;
    H.opens++;
    return KL_OK;
}

static int h_poll_open(void *net, int slot)
{
    (void)net;
    if (slot == 1 && H.never_connect_slot1)
        return 0;
    if (H.poll_fail)
        return H.poll_fail;
    return H.c[slot].polls++ >= H.connect_polls ? 1 : 0;
}

static int h_send(void *net, int slot, const uint8_t *buf, size_t len)
{
    hconn_t *c = &H.c[slot];
    (void)net;
    if (!c->up)
        return KL_ERR_CONN_CLOSED;
    if ((slot == 1 || H.send_fail_any) && H.send_fail > 0) {
        H.send_fail--;
        return KL_ERR_CONN_CLOSED;
    }
    if (H.send_block > 0) {
        H.send_block--;
        return 0;
    }
    if (len > 100 && H.ws)
        len = 100; /* a short write: the rest later */
    if (c->cl_len + len >= sizeof c->cl)
        return 0;
    memcpy(c->cl + c->cl_len, buf, len);
    c->cl_len += len;
    if (H.ws)
        ws_serve();
    else
        bosh_serve(slot);
    return (int)len;
}

static int h_recv(void *net, int slot, uint8_t *buf, size_t len)
{
    hconn_t *c = &H.c[slot];
    size_t n = c->sv_len - c->sv_pos;
    (void)net;
    if (!c->up)
        return KL_ERR_CONN_CLOSED;
    if (c->held && H.recv_fail_held) {
        H.recv_fail_held = 0;
        c->held = 0;
        return KL_ERR_CONN_CLOSED;
    }
    if (n > len)
        n = len;
    memcpy(buf, c->sv + c->sv_pos, n);
    c->sv_pos += n;
    return (int)n;
}

static void h_close(void *net, int slot)
{
    (void)net;
    H.c[slot].up = 0;
    H.c[slot].held = 0;
}

static const kl_net_ops_t http_net = {h_open, h_poll_open, h_send, h_recv, f_flush, NULL, h_close, NULL, NULL};

static void http_setup(kl_session_config_t *sc, int ws, const char *url)
{
    static char ubuf[128];
    reset();
    memset(&H, 0, sizeof H);
    H.ws = ws;
    conn_up = h_up;
    opt_plain = 1;
    setup(sc, 0);
    sc->net = &http_net;
    sc->crypto = &crypto;
    KT_CHECK_EQ(kl_endpoint_from_url(&sc->endpoints[0], url, ubuf, sizeof ubuf), KL_OK);
    sc->n_endpoints = 1;
}

static int n_notes, n_in, n_out;
static char notes[2048];
static void tracer(void *arg, char dir, const uint8_t *data, size_t len, const char *text);

/* ---- WebSocket ------------------------------------------------------------------ */

static kl_ws_t wsc;

/* wss://: TLS, the upgrade, the login in short writes, a server ping, the
 * <close/> both ways. */
static void test_ws_login(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    http_setup(&sc, 1, "wss://localhost/xmpp-websocket");
    sc.trace = tracer;
    n_notes = n_in = n_out = 0;
    notes[0] = 0;
    H.ping = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_ws(&ss, &wsc);
    KT_CHECK_EQ(kl_session_start(&ss, now), KL_OK);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    KT_CHECK_STR(H.host, "localhost");
    KT_CHECK_EQ(H.port, 443);
    KT_CHECK(strstr(H.c[0].cl, "GET /xmpp-websocket HTTP/1.1\r\n") == H.c[0].cl);
    KT_CHECK(strstr(notes, "WebSocket open|") != NULL);
    KT_CHECK_STR(F.alpn, ""); /* no ALPN for the HTTP framings */
    KT_CHECK(n_in >= 2 && n_out >= 3);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(kl_session_wants(&ss, 0), KL_WANT_READ);
    KT_CHECK_EQ(kl_session_wants(&ss, 1), 0);
    KT_CHECK_EQ(kl_session_close(&ss), KL_OK);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_CLOSED);
    KT_CHECK_EQ(ev.status, KL_OK);
    KT_CHECK_EQ(H.ws_closes, 1);
    KT_CHECK_EQ(F.closes, 1);
}

/* ws://: the upgrade refused, the codec missing, a malformed frame, the
 * server gone, writes that block. */
static void test_ws_failures(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    http_setup(&sc, 1, "ws://127.0.0.1:5280/ws");
    H.refuse = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_ws(&ss, &wsc);
    kl_session_start(&ss, now);
    H.deaf = 1;
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(kl_session_wants(&ss, 0), KL_WANT_READ); /* the upgrade's answer */
    H.deaf = 0;
    ws_serve();
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_WS_HANDSHAKE);
    KT_CHECK_STR(kl_session_error_text(&ss), "WebSocket upgrade refused (HTTP 403)");
    KT_CHECK_EQ(H.port, 5280);

    http_setup(&sc, 1, "ws://127.0.0.1/");
    sc.endpoints[0].path = NULL;
    sc.endpoints[0].host = NULL; /* the domain */
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_ws(&ss, &wsc);
    H.refuse = 1;
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.status, KL_ERR_WS_HANDSHAKE);
    KT_CHECK(strstr(H.c[0].cl, "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\n") == H.c[0].cl);

    http_setup(&sc, 1, "ws://127.0.0.1/");
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_STATE); /* kl_session_use_ws() was not called */
    KT_CHECK_EQ(H.port, 80);

    http_setup(&sc, 1, "ws://127.0.0.1/");
    H.bad_frame = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_ws(&ss, &wsc);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK(ev.status < 0 && ev.status != KL_ERR_WS_HANDSHAKE);
    KT_CHECK(strstr(kl_session_error_text(&ss), "WebSocket upgrade") == NULL);

    /* the writes block for a while, then the server goes */
    http_setup(&sc, 1, "ws://127.0.0.1/");
    H.send_block = 3;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_ws(&ss, &wsc);
    kl_session_start(&ss, now);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(kl_session_wants(&ss, 0), KL_WANT_READ | KL_WANT_WRITE);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    H.c[0].up = 0;
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_CONN_CLOSED);
}

/* What the codec is given is checked: a path with a line break (kl_ws_init:
 * KL_ERR_ARG), an upgrade request longer than the session's write buffer
 * (kl_ws_request: KL_ERR_TOO_LARGE); and a write the port refuses ends the
 * connection with the port's own status. Nothing goes out in the first two. */
static void test_ws_setup_and_write_failures(void)
{
    static char long_path[KL_SESSION_WS_BUF + 1];
    kl_session_config_t sc;
    kl_event_t ev;
    http_setup(&sc, 1, "ws://127.0.0.1/");
    sc.endpoints[0].path = "/a\r\nX: y";
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_ws(&ss, &wsc);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_ARG);
    KT_CHECK_EQ(H.c[0].cl_len, 0);

    http_setup(&sc, 1, "ws://127.0.0.1/");
    memset(long_path, 'p', sizeof long_path - 1);
    long_path[0] = '/';
    sc.endpoints[0].path = long_path;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_ws(&ss, &wsc);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(H.c[0].cl_len, 0);

    http_setup(&sc, 1, "ws://127.0.0.1/");
    H.send_fail_any = 1;
    H.send_fail = 1; /* the upgrade request's write */
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_ws(&ss, &wsc);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_CONN_CLOSED);
    KT_CHECK_EQ(H.send_fail, 0);
    KT_CHECK_EQ(H.c[0].cl_len, 0);
    KT_CHECK(!H.upgraded);
}

/* ---- BOSH ----------------------------------------------------------------------- */

static kl_bosh_t bosh;

/* https://: two connections, both under TLS; the login, a message and its
 * answer (the held poll released), the terminate. */
static void test_bosh_login(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    http_setup(&sc, 0, "https://localhost/http-bind");
    sc.trace = tracer;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    KT_CHECK_EQ(F.setups, 2); /* TLS on both connections */
    KT_CHECK_STR(F.sni, "localhost"); /* the URL's host */
    KT_CHECK_EQ(H.opens, 2);
    KT_CHECK(strstr(H.c[0].cl, "POST /http-bind HTTP/1.1\r\nHost: localhost\r\n") == H.c[0].cl);
    KT_CHECK(kl_session_stats(&ss)->http_requests_online >= 2);
    KT_CHECK_EQ(kl_session_stats(&ss)->http_round_trips_online, bosh.round_trips);
    for (int i = 0; i < 5; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0); /* the presence, then a held poll */
    KT_CHECK(H.c[0].held + H.c[1].held == 1);
    KT_CHECK_EQ(kl_session_wants(&ss, H.c[0].held ? 0 : 1), KL_WANT_READ);
    KT_CHECK_EQ(kl_session_wants(&ss, H.c[0].held ? 1 : 0), 0); /* idle keep-alive: not read */
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", "chat", "ping"), KL_OK);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_STANZA);
    KT_CHECK_EQ(kl_session_close(&ss), KL_OK);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_CLOSED);
    KT_CHECK_EQ(ev.status, KL_OK);
}

/* Every response closes its connection: each is reopened (TLS again) in
 * the middle of the session. */
static void test_bosh_reopen(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    http_setup(&sc, 0, "https://localhost:8443/b");
    H.conn_close = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    /* every connection that was replaced carried a request naming the
     * URL's port in its Host */
    KT_CHECK(H.opens > 2);
    KT_CHECK_EQ(H.hosts_named, H.opens - 2);
    KT_CHECK(F.setups > 2);
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", "chat", "ping"), KL_OK);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_STANZA);
    kl_session_shutdown(&ss);
}

/* The connection manager refuses: an HTTP status, a terminate; no codec;
 * a Host header too long. */
static void test_bosh_errors(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    http_setup(&sc, 0, "http://127.0.0.1:5280/http-bind");
    H.refuse = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_HTTP_STATUS);
    KT_CHECK_STR(ev.condition, "http-404");
    KT_CHECK_STR(kl_session_error_text(&ss), "HTTP 404 from POST (BOSH)");
    KT_CHECK(strstr(H.c[0].cl, "Host: 127.0.0.1:5280\r\n") != NULL);

    http_setup(&sc, 0, "http://127.0.0.1/http-bind");
    H.terminate = "host-unknown";
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_BOSH_TERMINATE);
    KT_CHECK_STR(ev.condition, "host-unknown");
    KT_CHECK_STR(kl_session_error_text(&ss), "the connection manager ended the session (condition host-unknown)");
    KT_CHECK(strstr(H.c[0].cl, "Host: 127.0.0.1\r\n") != NULL);

    http_setup(&sc, 0, "http://127.0.0.1/x");
    sc.endpoints[0].path = NULL;
    H.refuse = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.status, KL_ERR_HTTP_STATUS);
    KT_CHECK(strstr(H.c[0].cl, "POST /http-bind HTTP/1.1\r\n") == H.c[0].cl);

    http_setup(&sc, 0, "http://127.0.0.1/http-bind");
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_STATE); /* kl_session_use_bosh() was not called */
    KT_CHECK_EQ(H.opens, 0);

    http_setup(&sc, 0, "http://h2345678901234567890123456789012345678901234567890123456789012345678901234/");
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TOO_LARGE);
}

/* Connections that break: a send on the second, the held poll's read. */
static void test_bosh_broken_connections(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    http_setup(&sc, 0, "http://127.0.0.1/http-bind");
    sc.random = NULL; /* no reconnect, no jitter: BOSH's first rid without entropy */
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    for (int i = 0; i < 5; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    int opens = H.opens;
    H.recv_fail_held = 1;
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(H.opens, opens + 1); /* reopened, the poll sent again */
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", "chat", "ping"), KL_OK);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_STANZA);
    kl_session_shutdown(&ss);
}

/* ---- more paths over XMPP/TCP --------------------------------------------------- */

static void tracer(void *arg, char dir, const uint8_t *data, size_t len, const char *text)
{
    (void)arg, (void)data;
    if (len == 0 && text) {
        n_notes++;
        if (strlen(notes) + strlen(text) + 2 < sizeof notes) {
            strcat(notes, text);
            strcat(notes, "|");
        }
    } else if (dir == 'i') {
        n_in++;
    } else if (dir == 'o') {
        n_out++;
    }
}

static void start(kl_session_config_t *sc)
{
    KT_CHECK_EQ(kl_session_init(&ss, sc), KL_OK);
    KT_CHECK_EQ(kl_session_start(&ss, now), KL_OK);
}

/* The port's optional ops, the trace, the exporter and TLS details. */
static void test_port_ops_and_trace(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    kl_tls_info_t ti;
    reset();
    setup(&sc, 1);
    sc.net = &full_net;
    sc.tls = &full_tls;
    sc.trace = tracer;
    n_notes = n_in = n_out = 0;
    notes[0] = 0;
    F.unverified = 1;
    F.no_version = 1;
    opt_plain = 1; /* an unverified certificate: a credential leaves only so */
    setup(&sc, 1);
    sc.net = &full_net;
    sc.tls = &full_tls;
    sc.trace = tracer;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    KT_CHECK_EQ(kl_session_tls_info(&ss, &ti), 0);
    KT_CHECK_STR(ti.version, "");
    KT_CHECK_EQ(kl_session_start(&ss, now), KL_OK);
    KT_CHECK_EQ(kl_session_start(&ss, now), KL_ERR_STATE); /* once */
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    KT_CHECK(strstr(notes, "connecting|TCP connected|TLS handshake starts|TLS up, certificate NOT verified|") != NULL);
    KT_CHECK(n_in > 3 && n_out > 3);
    KT_CHECK(F.flushes >= 4);
    KT_CHECK_EQ(F.exports, 1); /* after the STARTTLS handshake (none before it) */
    KT_CHECK_STR(kl_session_stats(&ss)->tls_version, "");
    KT_CHECK_EQ(kl_session_stats(&ss)->tls_verified, 0);
    KT_CHECK_EQ(kl_session_tls_info(&ss, &ti), 1);
    KT_CHECK_EQ(ti.verified, 0);
    KT_CHECK_EQ(F.saves, 0); /* no hints: nothing saved */
    /* bytes waiting in the port: a step is due now */
    F.readable = 1;
    KT_CHECK_EQ(kl_session_next_timeout(&ss, now), 0);
    F.readable = 0;
    KT_CHECK(kl_session_next_timeout(&ss, now) > 0);
    /* a lost link without abort(): closed */
    kl_session_kick(&ss, now);
    KT_CHECK_EQ(F.net_closes, 1);
    KT_CHECK_EQ(F.net_aborts, 0);
    KT_CHECK(strstr(notes, "network changed: reconnecting now|") != NULL);
    kl_session_shutdown(&ss);
}

/* TLS records that carry no data while the port holds more: read again,
 * at most four times a step. */
static void test_empty_tls_records(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 0);
    sc.net = &full_net;
    start(&sc);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    F.readable = 1;
    F.tls_zero_reads = 10;
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(F.tls_zero_reads, 6); /* four tries */
    F.readable = 0;
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(F.tls_zero_reads, 5); /* nothing waits: once */
    /* a TLS failure on read: the binding's reason */
    F.tls_zero_reads = 0;
    F.tls_recv_fail = KL_ERR_TLS;
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 1);
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TLS);
    KT_CHECK_STR(kl_session_error_text(&ss), "TLS: fake certificate rejected");
}

/* XEP-0305 full pipelining: the ClientHello right behind <starttls/>,
 * corked into one segment; <proceed/> hands over what followed it. */
static void test_early_tls(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    opt_full = 1;
    setup(&sc, 0);
    sc.net = &full_net;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    KT_CHECK(F.starttls_seen);
    KT_CHECK_EQ(F.corks_on, 1);
    KT_CHECK_EQ(F.corks_off, 1);
    KT_CHECK_EQ(F.holds, 101); /* held, then released */
    KT_CHECK_EQ(F.setups, 1);
    kl_session_shutdown(&ss);

    /* without cork(): the same, unsegmented */
    reset();
    opt_full = 1;
    setup(&sc, 0);
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    KT_CHECK_EQ(F.holds, 101);
    kl_session_shutdown(&ss);

    /* <starttls/> waits for room twice, then goes with the ClientHello */
    reset();
    opt_full = 1;
    setup(&sc, 0);
    sc.tls_server_name = "sni.example";
    F.starttls_block = 2;
    start(&sc);
    KT_CHECK(step_until(&ev, 50)); /* woken by the socket's room, no time passes */
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    KT_CHECK_EQ(F.starttls_block, 0);
    KT_CHECK_STR(F.sni, "sni.example");
    kl_session_shutdown(&ss);

    /* <starttls/> cannot be sent */
    reset();
    opt_full = 1;
    setup(&sc, 0);
    F.starttls_fail = KL_ERR_IO;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_IO);
    KT_CHECK_EQ(F.setups, 0);

    /* the early ClientHello cannot be written */
    reset();
    opt_full = 1;
    setup(&sc, 0);
    F.tls_first_fail = KL_ERR_TLS;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TLS);
    KT_CHECK_EQ(F.net_aborts, 1);

    /* the early TLS session cannot be set up */
    reset();
    opt_full = 1;
    setup(&sc, 0);
    F.tls_setup_fail = 1;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TLS_SETUP);
    KT_CHECK_STR(kl_session_error_text(&ss), "TLS setup: fake certificate rejected");
}

/* STARTTLS: the setup, the handshake and its deadline fail. */
static void test_starttls_failures(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 1);
    F.tls_setup_fail = 1;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR); /* a setup failure is final */
    KT_CHECK_EQ(ev.status, KL_ERR_TLS_SETUP);
    KT_CHECK_EQ(F.connections, 1);

    reset();
    setup(&sc, 1);
    sc.no_jitter = 1;
    F.tls_fail = KL_ERR_TLS;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
    KT_CHECK_EQ(ev.status, KL_ERR_TLS);
    KT_CHECK_EQ(ev.retry_ms, 100);
    KT_CHECK_STR(kl_session_error_text(&ss), "TLS: fake certificate rejected");
    kl_session_shutdown(&ss);

    /* the handshake stalls: next_timeout counts down its deadline */
    reset();
    setup(&sc, 0);
    F.tls_stall = 1;
    start(&sc);
    for (int i = 0; i < 50 && !F.setups; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(kl_session_next_timeout(&ss, now), 5000);
    KT_CHECK_EQ(kl_session_next_timeout(&ss, now + 4000), 1000);
    KT_CHECK_EQ(kl_session_next_timeout(&ss, now + 6000), 0);
    KT_CHECK_EQ(kl_session_wants(&ss, 0), KL_WANT_READ);
    KT_CHECK_EQ(kl_session_step(&ss, now + 4999, &ev), 0);
    KT_CHECK_EQ(kl_session_step(&ss, now + 5000, &ev), 1);
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TIMEOUT);
    KT_CHECK_STR(kl_session_error_text(&ss), "TLS handshake timed out");
}

/* A STARTTLS endpoint without a TLS binding: the server's <proceed/> ends
 * the attempt with KL_ERR_TLS_SETUP (it used to call through NULL). */
static void test_starttls_without_binding(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 1);
    sc.tls = NULL;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TLS_SETUP);
    KT_CHECK(F.starttls_seen);
    KT_CHECK_STR(kl_session_error_text(&ss), "TLS setup: no TLS binding configured");
    KT_CHECK_EQ(F.closes, 0);
    KT_CHECK_EQ(F.net_aborts, 1);

    /* direct TLS without a binding: not even a connection */
    reset();
    setup(&sc, 1);
    sc.tls = NULL;
    sc.endpoints[0].security = KL_SEC_DIRECT_TLS;
    sc.n_endpoints = 1;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TLS_SETUP);
    KT_CHECK_EQ(F.connections, 0);
}

/* Direct TLS: setup, handshake and deadline failures; connect failures. */
static void test_direct_tls_failures(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 0);
    sc.endpoints[0].security = KL_SEC_DIRECT_TLS;
    sc.n_endpoints = 1;
    F.tls_setup_fail = 1;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TLS_SETUP);

    reset();
    setup(&sc, 0);
    sc.endpoints[0].security = KL_SEC_DIRECT_TLS;
    sc.n_endpoints = 1;
    F.tls_fail = KL_ERR_TLS;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TLS);
    KT_CHECK_EQ(F.closes, 1);

    reset();
    setup(&sc, 0);
    sc.endpoints[0].security = KL_SEC_DIRECT_TLS;
    sc.n_endpoints = 1;
    F.tls_stall = 1;
    start(&sc);
    uint32_t t0 = now;
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TIMEOUT);
    KT_CHECK(now - t0 >= 5000 && now - t0 < 5100);
    KT_CHECK_STR(kl_session_error_text(&ss), "TLS handshake timed out");

    /* the connect fails after it started */
    reset();
    setup(&sc, 0);
    sc.endpoints[0].host = "far";
    sc.n_endpoints = 1;
    F.poll_fail = KL_ERR_CONNECT;
    F.connect_polls = 1;
    start(&sc);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(kl_session_wants(&ss, 0), KL_WANT_WRITE); /* connecting */
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 1);
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_CONNECT);
    KT_CHECK_STR(kl_session_error_text(&ss), "cannot connect to far");
    KT_CHECK_EQ(kl_session_next_timeout(&ss, now), UINT32_MAX); /* done */

    /* a long name: the error text is cut to its buffer */
    reset();
    setup(&sc, 0);
    {
        static char longhost[200];
        memset(longhost, 'x', sizeof longhost - 1);
        sc.endpoints[0].host = longhost;
        sc.n_endpoints = 1;
    }
    F.open_fail = KL_ERR_CONNECT;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(strlen(kl_session_error_text(&ss)), sizeof ss.error_text - 1);
    KT_CHECK(strncmp(kl_session_error_text(&ss), "cannot connect to xxx", 21) == 0);

    /* the name does not resolve */
    reset();
    setup(&sc, 0);
    F.open_fail = KL_ERR_DNS;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.status, KL_ERR_DNS);
    KT_CHECK_STR(kl_session_error_text(&ss), "cannot resolve localhost");
}

/* Failover over two endpoints whose certificates both fail: each once,
 * then final; an authentication failure does not fail over. */
static void test_failover_round(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 1);
    sc.endpoints[0].host = "a";
    sc.endpoints[1].host = "b";
    sc.n_endpoints = 2;
    F.tls_cert_fail = 1;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TLS_CERT);
    KT_CHECK_EQ(F.connections, 2);
    KT_CHECK_STR(F.last_host, "b");

    reset();
    setup(&sc, 1);
    sc.endpoints[0].host = "a";
    sc.endpoints[1].host = "b";
    sc.n_endpoints = 2;
    F.auth_fail = 1;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_AUTH);
    KT_CHECK_EQ(F.connections, 1);

    /* a retryable failure on both: one link down after the round, then b
     * is where the next round starts */
    reset();
    setup(&sc, 1);
    sc.no_jitter = 1;
    sc.endpoints[0].host = "a";
    sc.endpoints[1].host = "b";
    sc.n_endpoints = 2;
    F.open_fail = KL_ERR_CONNECT;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
    KT_CHECK_EQ(ev.retry_ms, 100);
    KT_CHECK_STR(F.last_host, "b");
    KT_CHECK_EQ(kl_session_stats(&ss)->attempts, 2);
    kl_session_shutdown(&ss);
}

/* Backoff edges: min == max (the window is one value), the failure
 * counter saturates, no entropy needed without jitter. */
static void test_backoff_edges(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 1);
    sc.backoff_min_ms = sc.backoff_max_ms = 300;
    F.open_fail = KL_ERR_CONNECT;
    start(&sc);
    for (int i = 0; i < 3; i++) {
        KT_CHECK(run_until(&ev, 100));
        KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
        KT_CHECK_EQ(ev.retry_ms, 300);
    }
    ss.failures = 0xffff;
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.retry_ms, 300);
    KT_CHECK_EQ(ss.failures, 0xffff);
    /* kicked while backing off: the next attempt at once */
    KT_CHECK(kl_session_next_timeout(&ss, now) > 0);
    kl_session_kick(&ss, now);
    KT_CHECK_EQ(kl_session_next_timeout(&ss, now), 0);
    kl_session_shutdown(&ss);
    kl_session_kick(&ss, now); /* done: nothing to kick */
    KT_CHECK_EQ(ss.state, 5);

    /* defaults: 1 s .. 60 s, max below min is min, 20 s timeouts */
    reset();
    setup(&sc, 1);
    sc.random = NULL;
    sc.no_jitter = 1;
    sc.backoff_min_ms = 0;
    sc.backoff_max_ms = 0;
    sc.timeout_ms = 0;
    sc.stable_ms = 0;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    KT_CHECK_EQ(ss.cfg.backoff_min_ms, 1000);
    KT_CHECK_EQ(ss.cfg.backoff_max_ms, 60000);
    KT_CHECK_EQ(ss.cfg.timeout_ms, 20000);
    KT_CHECK_EQ(ss.cfg.stable_ms, 60000);
    KT_CHECK_STR(ss.cfg.alpn, "xmpp-client");
    sc.backoff_min_ms = 5000;
    sc.backoff_max_ms = 2000;
    sc.alpn = "x";
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    KT_CHECK_EQ(ss.cfg.backoff_max_ms, 5000);
    KT_CHECK_STR(ss.cfg.alpn, "x");
    /* the deadline saturates below 2^31 */
    sc.timeout_ms = 0xffffffffu;
    sc.endpoints[0].security = KL_SEC_DIRECT_TLS;
    sc.n_endpoints = 1;
    F.tls_stall = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    KT_CHECK_EQ(kl_session_start(&ss, now), KL_OK);
    for (int i = 0; i < 5; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(kl_session_next_timeout(&ss, now), 0x7fffffffu);
    kl_session_shutdown(&ss);
}

/* kl_session_close at every stage. */
static void test_close_paths(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 1);
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    KT_CHECK_EQ(kl_session_close(&ss), KL_OK); /* idle: nothing to close */
    KT_CHECK_EQ(ss.closing, 0);
    KT_CHECK_EQ(kl_session_start(&ss, now), KL_OK);
    F.never_connect = 1;
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    /* connecting: closed at once, KL_EV_CLOSED with the next step */
    KT_CHECK_EQ(kl_session_close(&ss), KL_OK);
    KT_CHECK_EQ(F.net_closes, 1);
    KT_CHECK_EQ(kl_session_close(&ss), KL_OK); /* again: nothing more */
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 1);
    KT_CHECK_EQ(ev.type, KL_EV_CLOSED);
    KT_CHECK_EQ(ev.status, KL_OK);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(kl_session_close(&ss), KL_OK);

    /* online, the server never answers </stream:stream>: the grace ends it */
    reset();
    setup(&sc, 1);
    start(&sc);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    F.mute = 1;
    KT_CHECK_EQ(kl_session_close(&ss), KL_OK);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK(strstr(F.cl, "</stream:stream>") != NULL);
    KT_CHECK_EQ(kl_session_next_timeout(&ss, now + 1000), 2000);
    KT_CHECK_EQ(kl_session_next_timeout(&ss, now + 5000), 0);
    KT_CHECK_EQ(kl_session_step(&ss, now + 2999, &ev), 0);
    KT_CHECK_EQ(kl_session_step(&ss, now + 3000, &ev), 1);
    KT_CHECK_EQ(ev.type, KL_EV_CLOSED);
    KT_CHECK_EQ(ev.status, KL_OK);
    KT_CHECK_EQ(F.net_aborts, 1);

    /* online, the link drops after </stream:stream>: closed, not retried */
    reset();
    setup(&sc, 1);
    start(&sc);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    F.mute = 1;
    KT_CHECK_EQ(kl_session_close(&ss), KL_OK);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    F.up = 0;
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 1);
    KT_CHECK_EQ(ev.type, KL_EV_CLOSED);
    KT_CHECK_EQ(ev.status, KL_OK);
    KT_CHECK_EQ(F.connections, 1);
}

/* The server ends the stream (no stream error): a lost link. */
static void test_server_closes(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 1);
    F.server_close = 1;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
    KT_CHECK_EQ(ev.status, KL_ERR_STREAM_CLOSED);
    kl_session_shutdown(&ss);
}

/* Stanzas posted by another task go out with a step while online. */
static void test_post_drain(void)
{
    static uint8_t pbuf[512];
    static kl_post_t post;
    static const char msg[] = "<message to='bob@localhost'><body>posted</body></message>";
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 1);
    KT_CHECK_EQ(kl_post_init(&post, pbuf, sizeof pbuf), KL_OK);
    KT_CHECK_EQ(kl_post_stanza(&post, (const uint8_t *)msg, sizeof msg - 1), KL_OK);
    sc.post = &post;
    start(&sc);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    KT_CHECK(strstr(F.cl, "posted") == NULL);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK(strstr(F.cl, "<body>posted</body>") != NULL);
    KT_CHECK_EQ(kl_post_pending(&post), 0);
    kl_session_shutdown(&ss);
}

/* Misuse: NULL and out-of-range arguments. */
static void test_misuse(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    kl_endpoint_t ep;
    char buf[64];
    reset();
    setup(&sc, 1);
    KT_CHECK_EQ(kl_session_init(NULL, &sc), KL_ERR_ARG);
    KT_CHECK_EQ(kl_session_init(&ss, NULL), KL_ERR_ARG);
    sc.n_endpoints = -1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_ERR_ARG);
    sc.n_endpoints = KL_SESSION_MAX_ENDPOINTS + 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_ERR_ARG);
    sc.n_endpoints = 1;
    sc.endpoints[0].security = 3;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_ERR_ARG);
    sc.endpoints[0].security = KL_SEC_DIRECT_TLS;
    sc.endpoints[0].framing = KL_FRAMING_WS;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_ERR_ARG); /* no SHA-1 */
    sc.client = NULL;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_ERR_ARG);
    KT_CHECK_EQ(kl_session_start(NULL, now), KL_ERR_STATE);
    KT_CHECK_EQ(kl_session_step(NULL, now, &ev), KL_ERR_ARG);
    KT_CHECK_EQ(kl_session_step(&ss, now, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_session_wants(NULL, 0), 0);
    KT_CHECK_EQ(kl_session_wants(&ss, -1), 0);
    KT_CHECK_EQ(kl_session_wants(&ss, KL_SESSION_SLOTS), 0);
    KT_CHECK_EQ(kl_session_next_timeout(NULL, now), UINT32_MAX);
    KT_CHECK_EQ(kl_session_close(NULL), KL_ERR_ARG);
    kl_session_kick(NULL, now);
    kl_session_shutdown(NULL);
    KT_CHECK_EQ(kl_endpoint_from_url(NULL, "ws://h/", buf, sizeof buf), KL_ERR_ARG);
    KT_CHECK_EQ(kl_endpoint_from_url(&ep, NULL, buf, sizeof buf), KL_ERR_ARG);
    KT_CHECK_EQ(kl_endpoint_from_url(&ep, "ws://h/", NULL, sizeof buf), KL_ERR_ARG);
    KT_CHECK_EQ(kl_endpoint_from_url(&ep, "ws://h:/", buf, sizeof buf), KL_ERR_ARG);
    KT_CHECK_EQ(kl_endpoint_from_url(&ep, "ws://h", buf, sizeof buf), KL_OK);
    KT_CHECK_STR(ep.host, "h");
    KT_CHECK_STR(ep.path, "/");
    KT_CHECK_EQ(kl_session_retryable(KL_ERR_STREAM_ERROR, NULL), 0);
    KT_CHECK_STR(kl_session_error_text(&ss), kl_strerror(KL_OK));
}

/* Each form of <enabled location=''/>: used (host and port), or, when it
 * is no usable host[:port], the configured endpoint without a try there. */
static void location_case(const char *loc, const char *want_host, uint16_t want_port)
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
    F.location = loc;
    start(&sc);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    for (int i = 0; i < 20; i++) /* <enabled/> arrives */
        (void)kl_session_step(&ss, now, &ev);
    F.up = 0;
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_RESUMED);
    if (strcmp(F.last_host, want_host ? want_host : "primary") != 0)
        fprintf(stderr, "  location '%s'\n", loc ? loc : "(none)");
    KT_CHECK_STR(F.last_host, want_host ? want_host : "primary");
    KT_CHECK_EQ(F.last_port, want_port);
    KT_CHECK_EQ(kl_session_stats(&ss)->location_tries, want_host ? 1 : 0);
    kl_session_shutdown(&ss);
}

static void test_location_forms(void)
{
    location_case("alt.example", "alt.example", 5222);
    location_case("alt.example:5333", "alt.example", 5333);
    location_case("[2001:db8::9]", "2001:db8::9", 5222);
    location_case(NULL, NULL, 5222);
    location_case("[2001:db8::9", NULL, 5222);
    location_case("[2001:db8::9]x", NULL, 5222);
    location_case("[]:5222", NULL, 5222);
    location_case("2001:db8::9", NULL, 5222);
    location_case(":5222", NULL, 5222);
    location_case("alt.example:", NULL, 5222);
    location_case("alt.example:52x", NULL, 5222);
    location_case("alt.example:99999", NULL, 5222);
    location_case("alt.example:0", NULL, 5222);
    location_case("alt.example:5/2", NULL, 5222);
    /* longer than KL_SM_LOCATION_MAX (64) once decoded, with a reference
     * early enough that the decoder wrote part of it: no location at all */
    location_case("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&#46;example.net", NULL, 5222);
    location_case("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.net", NULL, 5222);
}

/* A KL_ERR_TIMEOUT from a port once online (a recv that maps ETIMEDOUT)
 * is a lost link, not a slow login: the next attempt's timeouts do not
 * grow. */
static void test_port_timeout_online(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 1);
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    KT_CHECK_EQ(kl_session_start(&ss, now), KL_OK);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    F.tls_recv_fail = KL_ERR_TIMEOUT;
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 1);
    KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
    KT_CHECK_EQ(ev.status, KL_ERR_TIMEOUT);
    KT_CHECK_EQ(ss.slow, 0);
}

/* The TLS session kept in the hints: offered; one the server refused is
 * dropped and the attempt made once more without it at once (also
 * without reconnect); a newer one is saved when online. */
static void test_tls_session_cache(void)
{
    static kl_cache_t cache;
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 0);
    sc.tls = &full_tls;
    kl_cache_reset(&cache, "localhost");
    memcpy(cache.tls_session, "OLD!", 4);
    cache.tls_session_len = 4;
    kl_cache_seal(&cache);
    sc.cache = &cache;
    F.tls_fail = KL_ERR_TLS;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
    KT_CHECK_EQ(ev.status, KL_ERR_TLS);
    KT_CHECK_EQ(ev.retry_ms, 0);
    KT_CHECK_EQ(kl_session_stats(&ss)->tls_session_offered, 1);
    KT_CHECK_EQ(cache.tls_session_len, 0);
    KT_CHECK_EQ(kl_cache_check(&cache, "localhost"), KL_OK); /* sealed again */
    F.tls_fail = 0;
    F.resumed = 1;
    F.new_session = 1;
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    KT_CHECK_EQ(F.offered, 0); /* not offered again */
    KT_CHECK_EQ(kl_session_stats(&ss)->tls_resumed, 1);
    KT_CHECK_EQ(kl_session_stats(&ss)->tls_sessions_saved, 1);
    KT_CHECK_EQ(cache.tls_session_len, 4);
    KT_CHECK(memcmp(cache.tls_session, "SESS", 4) == 0);
    /* the server drops the connection in the handshake with the session
     * offered: the same; a certificate failure keeps it (and is final) */
    kl_session_shutdown(&ss);
    reset();
    setup(&sc, 0);
    sc.tls = &full_tls;
    sc.cache = &cache;
    F.tls_fail = KL_ERR_CONN_CLOSED;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
    KT_CHECK_EQ(ev.retry_ms, 0);
    KT_CHECK_EQ(cache.tls_session_len, 0);
    kl_session_shutdown(&ss);
    reset();
    setup(&sc, 0);
    sc.tls = &full_tls;
    sc.cache = &cache;
    memcpy(cache.tls_session, "OLD!", 4);
    cache.tls_session_len = 4;
    kl_cache_seal(&cache);
    F.tls_cert_fail = 1;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_TLS_CERT);
    KT_CHECK_EQ(F.offered, 1);
    KT_CHECK_EQ(cache.tls_session_len, 4);
    /* it fails again on the next connection: nothing is left to drop, no retry */
    kl_session_shutdown(&ss);
    reset();
    setup(&sc, 0);
    sc.tls = &full_tls;
    sc.cache = &cache;
    cache.tls_session_len = 0;
    kl_cache_seal(&cache);
    F.tls_fail = KL_ERR_TLS;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(F.offered, 0);
}

/* BOSH: the second connection is late, its TLS later still; a send fails
 * or blocks; the connection manager's answer is no BOSH. */
static void test_bosh_connections(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    http_setup(&sc, 0, "https://localhost/http-bind");
    H.never_connect_slot1 = 1;
    F.tls_stall1 = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    for (int i = 0; i < 3; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(kl_session_wants(&ss, 1), KL_WANT_WRITE);
    H.never_connect_slot1 = 0;
    for (int i = 0; i < 3; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(ss.state, 3); /* S_TLS: slot 0 done, slot 1 not */
    F.tls_stall1 = 0;
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    kl_session_shutdown(&ss);

    /* the second connection cannot be opened; the first neither */
    http_setup(&sc, 0, "http://localhost/http-bind");
    H.open_fail_slot1 = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_CONNECT);
    http_setup(&sc, 0, "http://localhost/http-bind");
    H.open_fail = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_CONNECT);
    KT_CHECK_EQ(H.opens, 0);

    /* a request's send blocks, then fails on the second connection (sent
     * again), then fails twice (the request is lost: the session too) */
    http_setup(&sc, 0, "http://localhost/http-bind");
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    for (int i = 0; i < 5; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    H.send_block = 1;
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", "chat", "ping"), KL_OK);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    {
        /* the blocked request's connection waits to write, the held poll's
         * only reads */
        int w0 = kl_session_wants(&ss, 0), w1 = kl_session_wants(&ss, 1);
        KT_CHECK((w0 == (KL_WANT_READ | KL_WANT_WRITE) && w1 == KL_WANT_READ) ||
                 (w1 == (KL_WANT_READ | KL_WANT_WRITE) && w0 == KL_WANT_READ));
    }
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_STANZA);
    for (int i = 0; i < 5; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    H.send_fail = 1;
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", "chat", "ping"), KL_OK);
    KT_CHECK(step_until(&ev, 10));
    KT_CHECK_EQ(ev.type, KL_EV_STANZA);
    for (int i = 0; i < 5; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    H.send_fail = 2;
    H.send_fail_any = 1;
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", "chat", "ping"), KL_OK);
    KT_CHECK(step_until(&ev, 10));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_BOSH_REQUEST_FAILED);

    http_setup(&sc, 0, "http://localhost/http-bind");
    H.garbage = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_BOSH_PROTOCOL);
    KT_CHECK_STR(ev.condition, "");
}

/* BOSH: a reopened connection that does not connect, or whose TLS cannot
 * be set up, is given up and opened again. */
static void test_bosh_reopen_failures(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    http_setup(&sc, 0, "https://localhost/http-bind");
    H.conn_close = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    for (int i = 0; i < 5; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    /* the answer to this closes its connection; the new one hangs */
    F.tls_setup_fail = 1;
    H.connect_polls = 1000000;
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", "chat", "ping"), KL_OK);
    KT_CHECK(run_until(&ev, 3));
    KT_CHECK_EQ(ev.type, KL_EV_STANZA);
    int opens = H.opens;
    for (int i = 0; i < 3; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(H.opens, opens);
    now += 5000; /* the reopened connection's deadline */
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(H.opens, opens + 2); /* both: the held poll's answer closed its connection too */
    opens = H.opens;
    H.connect_polls = 0; /* they connect, but TLS cannot be set up: again */
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(H.opens, opens + 2);
    F.tls_setup_fail = 0;
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", "chat", "ping"), KL_OK);
    KT_CHECK(step_until(&ev, 10));
    KT_CHECK_EQ(ev.type, KL_EV_STANZA);
    /* the terminate's answer closes its connection: not reopened */
    KT_CHECK_EQ(kl_session_close(&ss), KL_OK);
    KT_CHECK(step_until(&ev, 10));
    KT_CHECK_EQ(ev.type, KL_EV_CLOSED);
}

/* More edges: close while logging in, kick while connecting, the
 * application's own kl_client_close, init without each required op. */
static void test_more_edges(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    kl_net_ops_t ops;
    reset();
    setup(&sc, 1);
    F.mute = 1;
    start(&sc);
    for (int i = 0; i < 3; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(ss.state, 4); /* S_RUN, not online */
    KT_CHECK_EQ(kl_session_close(&ss), KL_OK);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 1);
    KT_CHECK_EQ(ev.type, KL_EV_CLOSED);

    reset();
    setup(&sc, 1);
    sc.stable_ms = 1;
    F.never_connect = 1;
    start(&sc);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(kl_session_next_timeout(&ss, now + 6000), 0);
    kl_session_kick(&ss, now);
    KT_CHECK_EQ(F.net_aborts, 1);
    KT_CHECK_EQ(kl_session_stats(&ss)->link_downs, 1);
    F.never_connect = 0;
    F.tls_stall = 1;
    sc.endpoints[0].security = KL_SEC_DIRECT_TLS;
    sc.n_endpoints = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_start(&ss, now);
    for (int i = 0; i < 3; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(ss.state, 3); /* S_TLS */
    kl_session_kick(&ss, now);
    KT_CHECK_EQ(F.net_aborts, 2);
    KT_CHECK_EQ(ss.state, 1);
    kl_session_shutdown(&ss);

    /* the application logs out through the engine */
    reset();
    setup(&sc, 1);
    start(&sc);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    KT_CHECK_EQ(kl_client_close(&cl), KL_OK);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_CLOSED);
    KT_CHECK_EQ(F.net_closes, 1);

    reset();
    setup(&sc, 1);
    for (int k = 0; k < 5; k++) {
        ops = fake_net;
        if (k == 0) ops.open = NULL;
        if (k == 1) ops.poll_open = NULL;
        if (k == 2) ops.send = NULL;
        if (k == 3) ops.recv = NULL;
        if (k == 4) ops.close = NULL;
        sc.net = &ops;
        KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_ERR_ARG);
    }
    sc.net = &fake_net;
    {
        static const kl_crypto_t nohash = {NULL, NULL, NULL, NULL, NULL};
        sc.endpoints[0].framing = KL_FRAMING_WS;
        sc.endpoints[0].security = KL_SEC_NONE;
        sc.n_endpoints = 1;
        sc.crypto = &nohash;
        KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_ERR_ARG);
    }
    memset(&ss, 0, sizeof ss);
    KT_CHECK_EQ(kl_session_start(&ss, now), KL_ERR_STATE); /* never initialised */
    {
        kl_endpoint_t ep;
        char buf[64];
        KT_CHECK_EQ(kl_endpoint_from_url(&ep, "ws://h:a/", buf, sizeof buf), KL_ERR_ARG);
    }
}

/* ---- paths reached only through a port, the hints or the application ---------- */

/* Online with a TLS session cache: the port's info says whether the
 * handshake gave a new session; none (a server without tickets), or hints
 * for another domain, save nothing; a new one is saved. */
static void test_tls_session_not_new(void)
{
    static kl_cache_t cache;
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 0);
    sc.tls = &full_tls;
    kl_cache_reset(&cache, "localhost");
    sc.cache = &cache;
    start(&sc);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    for (int i = 0; i < 3; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(F.saves, 0);
    KT_CHECK_EQ(kl_session_stats(&ss)->tls_sessions_saved, 0);
    KT_CHECK_EQ(cache.tls_session_len, 0);
    F.new_session = 1; /* a ticket came */
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(F.saves, 1);
    KT_CHECK_EQ(kl_session_stats(&ss)->tls_sessions_saved, 1);
    KT_CHECK_EQ(cache.tls_session_len, 4);
    kl_session_shutdown(&ss);

    reset();
    setup(&sc, 0);
    sc.tls = &full_tls;
    kl_cache_reset(&cache, "other.example");
    sc.cache = &cache;
    F.new_session = 1;
    start(&sc);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(F.saves, 0);
    KT_CHECK_EQ(cache.tls_session_len, 0);
    KT_CHECK_EQ(kl_cache_check(&cache, "other.example"), KL_OK); /* untouched */
    kl_session_shutdown(&ss);
}

/* The TLS session in the hints, more edges: a binding without
 * save_session, one whose save fails, a connection without TLS (BOSH over
 * http://) save nothing; over https:// only the first connection offers
 * the cached session. */
static void test_tls_session_cache_edges(void)
{
    static kl_cache_t cache;
    kl_session_config_t sc;
    kl_event_t ev;
    for (int k = 0; k < 2; k++) {
        reset();
        setup(&sc, 0);
        sc.tls = k ? &full_tls : &fake_tls;
        F.save_fail = k;
        F.new_session = 1;
        kl_cache_reset(&cache, "localhost");
        sc.cache = &cache;
        start(&sc);
        KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
        KT_CHECK_EQ(F.saves, 2 * k); /* tried in each step online (two), failing */
        KT_CHECK_EQ(kl_session_stats(&ss)->tls_sessions_saved, 0);
        KT_CHECK_EQ(cache.tls_session_len, 0);
        KT_CHECK_EQ(kl_cache_check(&cache, "localhost"), KL_OK);
        kl_session_shutdown(&ss);
    }

    http_setup(&sc, 0, "http://localhost/http-bind");
    sc.tls = &full_tls;
    F.new_session = 1;
    kl_cache_reset(&cache, "localhost");
    sc.cache = &cache;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(F.setups, 0);
    KT_CHECK_EQ(F.saves, 0);
    kl_session_shutdown(&ss);

    http_setup(&sc, 0, "https://localhost/http-bind");
    sc.tls = &full_tls;
    kl_cache_reset(&cache, "localhost");
    memcpy(cache.tls_session, "OLD!", 4);
    cache.tls_session_len = 4;
    kl_cache_seal(&cache);
    sc.cache = &cache;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    KT_CHECK_EQ(F.setups, 2);
    KT_CHECK_EQ(F.offers, 1);
    kl_session_shutdown(&ss);
}

#if KL_ENABLE_SASL2
/* Hints that say SASL2 for a server that no longer offers it: the engine
 * sends <authenticate/> ahead, fails with KL_ERR_SASL2_GONE and corrects
 * the hints; the manager tries once more at once (also without reconnect),
 * on RFC 6120's path. A second time in the same run is final. */
static void test_sasl2_gone(void)
{
    static kl_cache_t cache, sasl2_hints;
    kl_session_config_t sc;
    kl_event_t ev;
    /* a login that learns the hints: SASL2 on offer (PLAIN went ahead) */
    reset();
    kl_cache_reset(&cache, "localhost");
    opt_cache = &cache;
    F.sasl2 = 1;
    setup(&sc, 0);
    start(&sc);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    kl_session_shutdown(&ss);
    sasl2_hints = cache;

    reset();
    opt_cache = &cache;
    setup(&sc, 0);
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
    KT_CHECK_EQ(ev.status, KL_ERR_SASL2_GONE);
    KT_CHECK_EQ(ev.retry_ms, 0);
    KT_CHECK(strstr(F.cl, "<authenticate") != NULL);
    KT_CHECK_EQ(F.connections, 1);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    KT_CHECK_EQ(F.connections, 2);
    KT_CHECK(strstr(F.cl, "<authenticate") == NULL);
    KT_CHECK(strstr(F.cl, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'") != NULL);
    KT_CHECK_EQ(kl_session_stats(&ss)->link_downs, 1);
    kl_session_shutdown(&ss);

    /* the hints say SASL2 again before the retry: once a run */
    reset();
    cache = sasl2_hints;
    opt_cache = &cache;
    setup(&sc, 0);
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_LINK_DOWN);
    KT_CHECK_EQ(ev.status, KL_ERR_SASL2_GONE);
    cache = sasl2_hints;
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_SASL2_GONE);
    KT_CHECK_EQ(F.connections, 2);
}
#endif

#if KL_ENABLE_APP
/* A long stanza is open: the engine takes no input until it ends, so its
 * buffer fills; the manager then stops reading (the port is never asked to
 * read into no room) and the bytes wait in the port. Once the stanza ends,
 * all of them are read. */
static void test_engine_input_full(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    int stanzas = 0;
    size_t waiting;
    reset();
    setup(&sc, 0);
    start(&sc);
    KT_CHECK(run_until(&ev, 100) && ev.type == KL_EV_ONLINE);
    KT_CHECK_EQ(kl_send_message_begin(&cl, "bob@localhost", NULL), KL_OK);
    for (int i = 0; i < 40; i++)
        sv_queue("<message from='bob@localhost/x' type='chat'><body>a line of text that fills the buffer</body></message>");
    waiting = F.sv_len - F.sv_pos;
    KT_CHECK(waiting > KL_RX_BUF_SIZE);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(F.sv_pos + waiting - F.sv_len, KL_RX_BUF_SIZE); /* what the engine had room for */
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(F.sv_pos + waiting - F.sv_len, KL_RX_BUF_SIZE);
    KT_CHECK_EQ(F.recv_empty, 0);
    KT_CHECK_EQ(kl_send_text(&cl, (const uint8_t *)"hi", 2), 2);
    KT_CHECK_EQ(kl_send_message_end(&cl), KL_OK);
    for (int i = 0; i < 200 && kl_session_step(&ss, now, &ev) > 0; i++)
        stanzas += ev.type == KL_EV_STANZA;
    KT_CHECK_EQ(stanzas, 40);
    KT_CHECK_EQ(F.sv_pos, F.sv_len);
    KT_CHECK(strstr(F.cl, "<body>hi</body></message>") != NULL);
    KT_CHECK_EQ(F.recv_empty, 0);
    kl_session_shutdown(&ss);
}
#endif

/* BOSH: a connection that cannot be opened again ends the session with the
 * port's status: after a response that closed it, after a reopened one
 * timed out, after the held poll's read failed. */
static void test_bosh_reopen_refused(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    for (int k = 0; k < 3; k++) {
        http_setup(&sc, 0, "http://localhost/http-bind");
        H.conn_close = k < 2;
        KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
        kl_session_use_bosh(&ss, &bosh);
        kl_session_start(&ss, now);
        KT_CHECK(run_until(&ev, 100));
        KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
        for (int i = 0; i < 5; i++)
            KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
        if (k == 0) {
            /* the answer closes its connection, which cannot be opened again */
            H.open_fail = 1;
            KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", "chat", "ping"), KL_OK);
        } else if (k == 1) {
            /* the reopened connections hang past their deadline */
            H.connect_polls = 1000000;
            KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", "chat", "ping"), KL_OK);
            KT_CHECK(step_until(&ev, 10));
            KT_CHECK_EQ(ev.type, KL_EV_STANZA);
            KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
            H.open_fail = 1;
            now += 5000;
        } else {
            H.recv_fail_held = 1;
            H.open_fail = 1;
        }
        KT_CHECK(step_until(&ev, 10));
        KT_CHECK_EQ(ev.type, KL_EV_ERROR);
        KT_CHECK_EQ(ev.status, KL_ERR_CONNECT);
        KT_CHECK_STR(kl_session_error_text(&ss), kl_strerror(KL_ERR_CONNECT));
        KT_CHECK_EQ(ss.state, 5); /* S_DONE */
    }
}

/* BOSH: a response that is no HTTP ends the session with the codec's
 * status, and no condition, in the step that read it. */
static void test_bosh_bad_http(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    http_setup(&sc, 0, "http://localhost/http-bind");
    H.bad_http = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 1); /* the request, its answer, the end */
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_HTTP_SYNTAX);
    KT_CHECK_STR(ev.condition, "");
    KT_CHECK_EQ(H.opens, 2);
}

/* BOSH: every response closes its connection, and the reopened ones fail
 * to connect while our terminate is answered: each is opened again until
 * the session is done, and none after it. */
static void test_bosh_done_not_reopened(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    int opens;
    http_setup(&sc, 0, "http://localhost/http-bind");
    H.conn_close = 1;
    H.watch = &bosh;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_bosh(&ss, &bosh);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    for (int i = 0; i < 5; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    opens = H.opens;
    H.poll_fail = KL_ERR_CONNECT;
    KT_CHECK_EQ(kl_session_close(&ss), KL_OK);
    KT_CHECK(step_until(&ev, 10));
    KT_CHECK_EQ(ev.type, KL_EV_CLOSED);
    KT_CHECK_EQ(ev.status, KL_OK);
    KT_CHECK(H.opens > opens + 2); /* reopened after the failed connects too */
    KT_CHECK_EQ(H.opens_done, 0);
    KT_CHECK(kl_bosh_done(&bosh));
    KT_CHECK(!H.c[0].up && !H.c[1].up);
}

/* WebSocket: the random source fails for the first frame's mask: the
 * connection ends with KL_ERR_NO_ENTROPY (final) and no frame goes out. */
static int rand_calls, rand_ok;
static int failing_random(void *ctx, uint8_t *out, size_t len)
{
    if (rand_calls++ >= rand_ok)
        return -1;
    return kt_random(ctx, out, len);
}

static void test_ws_no_entropy(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    char *head_end;
    http_setup(&sc, 1, "ws://127.0.0.1/");
    sc.random = failing_random;
    rand_calls = 0;
    rand_ok = 1; /* the Sec-WebSocket-Key */
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_ws(&ss, &wsc);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(ev.status, KL_ERR_NO_ENTROPY);
    KT_CHECK(H.upgraded);
    KT_CHECK_EQ(rand_calls, 2);
    H.c[0].cl[H.c[0].cl_len] = 0;
    head_end = strstr(H.c[0].cl, "\r\n\r\n");
    KT_CHECK(head_end != NULL && (size_t)(head_end + 4 - H.c[0].cl) == H.c[0].cl_len);
    KT_CHECK_EQ(H.texts, 0);
}

/* WebSocket: an element the application commits in two pieces (the engine
 * takes any bytes without stream management) goes out as one message once
 * whole; until then nothing is written, and kl_session_wants() asks no
 * write (a port waiting for writability would spin), again once the rest
 * is committed. */
static void test_ws_element_in_pieces(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    kl_xw_t w;
    size_t sent;
    int texts;
    http_setup(&sc, 1, "ws://127.0.0.1/");
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_use_ws(&ss, &wsc);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ONLINE);
    for (int i = 0; i < 3; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    sent = H.c[0].cl_len;
    texts = H.texts;
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    kl_xw_raw(&w, (const uint8_t *)"<message to='bob@localhost'><body>one", 37);
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_OK);
    for (int i = 0; i < 3; i++)
        KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(H.c[0].cl_len, sent);
    KT_CHECK_EQ(kl_session_wants(&ss, 0), KL_WANT_READ);
    KT_CHECK_EQ(kl_stanza_begin(&cl, &w), KL_OK);
    kl_xw_raw(&w, (const uint8_t *)" two</body></message>", 21);
    KT_CHECK_EQ(kl_stanza_commit(&cl, &w), KL_OK);
    KT_CHECK_EQ(kl_session_wants(&ss, 0), KL_WANT_READ | KL_WANT_WRITE);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(kl_session_wants(&ss, 0), KL_WANT_READ);
    KT_CHECK_EQ(H.texts, texts + 1);
    KT_CHECK_STR(H.last_text, "<message xmlns='jabber:client' to='bob@localhost'><body>one two</body></message>");
    kl_session_shutdown(&ss);
}

/* Direct TLS whose certificate the port did not verify: the stream starts
 * on KL_CHANNEL_TLS (not _VERIFIED), so without allow_plaintext no
 * credential leaves and the login ends in an error. */
static void test_direct_tls_unverified(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 0);
    sc.endpoints[0].security = KL_SEC_DIRECT_TLS;
    sc.n_endpoints = 1;
    F.stage = 1;
    F.unverified = 1;
    KT_CHECK_EQ(kl_session_init(&ss, &sc), KL_OK);
    kl_session_start(&ss, now);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    F.cl[F.cl_len] = 0;
    KT_CHECK(strstr(F.cl, "<auth") == NULL);
    KT_CHECK_EQ(kl_session_stats(&ss)->tls_verified, 0);
    kl_session_shutdown(&ss);
}

/* kl_session_close after the final KL_EV_ERROR: nothing to close, no
 * KL_EV_CLOSED follows. */
static void test_close_after_final_error(void)
{
    kl_session_config_t sc;
    kl_event_t ev;
    reset();
    setup(&sc, 0);
    F.auth_fail = 1;
    start(&sc);
    KT_CHECK(run_until(&ev, 100));
    KT_CHECK_EQ(ev.type, KL_EV_ERROR);
    KT_CHECK_EQ(kl_session_close(&ss), KL_OK);
    KT_CHECK_EQ(ss.closing, 0);
    KT_CHECK_EQ(kl_session_step(&ss, now, &ev), 0);
    KT_CHECK_EQ(kl_session_step(&ss, now + 5000, &ev), 0);
}

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
    KT_RUN(test_port_ops_and_trace);
    KT_RUN(test_empty_tls_records);
    KT_RUN(test_early_tls);
    KT_RUN(test_starttls_failures);
    KT_RUN(test_starttls_without_binding);
    KT_RUN(test_direct_tls_failures);
    KT_RUN(test_failover_round);
    KT_RUN(test_backoff_edges);
    KT_RUN(test_close_paths);
    KT_RUN(test_direct_tls_unverified);
    KT_RUN(test_close_after_final_error);
    KT_RUN(test_server_closes);
    KT_RUN(test_post_drain);
    KT_RUN(test_misuse);
    KT_RUN(test_ws_login);
    KT_RUN(test_ws_failures);
    KT_RUN(test_ws_setup_and_write_failures);
    KT_RUN(test_bosh_login);
    KT_RUN(test_bosh_reopen);
    KT_RUN(test_bosh_errors);
    KT_RUN(test_bosh_broken_connections);
    KT_RUN(test_location_forms);
    KT_RUN(test_port_timeout_online);
    KT_RUN(test_tls_session_cache);
    KT_RUN(test_bosh_connections);
    KT_RUN(test_bosh_reopen_failures);
    KT_RUN(test_more_edges);
    KT_RUN(test_tls_session_not_new);
    KT_RUN(test_tls_session_cache_edges);
#if KL_ENABLE_SASL2
    KT_RUN(test_sasl2_gone);
#endif
#if KL_ENABLE_APP
    KT_RUN(test_engine_input_full);
#endif
    KT_RUN(test_bosh_reopen_refused);
    KT_RUN(test_bosh_bad_http);
    KT_RUN(test_bosh_done_not_reopened);
    KT_RUN(test_ws_no_entropy);
    KT_RUN(test_ws_element_in_pieces);
    KT_RUN(test_init_checks);
    KT_RUN(test_urls);
    return kt_summary("session");
}
