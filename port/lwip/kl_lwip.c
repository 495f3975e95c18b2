/* kinglet — lwIP port: the session driver (raw TCP API, NO_SYS=1 friendly,
 * never blocks). The connection layer and SRV are in kl_lwip_net.c. */
#include "kl_lwip.h"

#include <stdio.h>
#include <string.h>

#include "lwip/init.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"

#if LWIP_VERSION_MAJOR != 2 || LWIP_VERSION_MINOR != 2
#error "port/lwip is written for lwIP 2.2.x: check LWIP_DIR and the -I order"
#endif

/* ---- the session driver ------------------------------------------------------ */

static void set_error(kl_lwip_session_t *s, int status, const char *detail)
{
    s->last_status = status;
    snprintf(s->error_text, sizeof s->error_text, "%s", detail ? detail : kl_strerror(status));
}

static int error_event(kl_lwip_session_t *s, int status, kl_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->type = KL_EV_ERROR;
    ev->status = status;
    ev->condition = "";
    if (s->last_status != status)
        set_error(s, status, NULL);
    s->phase = KL_LWIP_PH_DONE;
    return 1;
}

static void note(kl_lwip_session_t *s, char dir, const char *text)
{
    if (s->trace)
        s->trace(s->trace_arg, dir, NULL, 0, text);
}

int kl_lwip_session_start(kl_lwip_session_t *s, kl_client_t *c, const char *host, uint16_t port,
                          const kl_tls_config_t *tls_cfg, uint32_t timeout_ms)
{
    int st;
    if (s == NULL || c == NULL || host == NULL)
        return KL_ERR_ARG;
    memset(s, 0, sizeof *s);
    s->client = c;
    s->timeout_ms = timeout_ms ? timeout_ms : 20000u;
    if (tls_cfg)
        s->tls_cfg = *tls_cfg;
    /* TLS session resumption: the blob the cache holds for this domain,
     * only if the hints were authenticated with the device key
     * (kl_cache_load; kl_tls_setup checks it again: name, trust anchors). */
    if (s->tls_cfg.session == NULL && c->cfg.cache != NULL) {
        size_t n;
        const uint8_t *b = kl_cache_tls_session(c->cfg.cache, kl_client_domain(c), &n);
        if (b != NULL) {
            s->tls_cfg.session = b;
            s->tls_cfg.session_len = n;
            s->session_from_cache = 1;
        }
    }
    if (c->cfg.direct_tls && s->tls_cfg.alpn == NULL)
        s->tls_cfg.alpn = "xmpp-client"; /* XEP-0368 */
    s->link = &s->conn.tcp;
    s->t_start = s->t_phase = sys_now();
    s->phase = KL_LWIP_PH_CONNECT;
    st = kl_lwip_conn_open(&s->conn, host, port);
    if (st != KL_OK) {
        char text[96];
        snprintf(text, sizeof text, st == KL_ERR_DNS ? "cannot resolve host '%s'" : "cannot connect to %s", host);
        set_error(s, st, text);
        s->phase = KL_LWIP_PH_DONE;
    }
    return st;
}

/* Engine output over the link; tcp_output once for what this wrote.
 * 1: all written, 0: some left (would block), < 0: error. */
static int flush_engine_push(kl_lwip_session_t *s, int push)
{
    unsigned long before = s->conn.wire_out;
    size_t len;
    const uint8_t *out;
    int r = 1;
    while ((out = kl_engine_output(s->client, &len)), len > 0) {
        int n = s->link->send(s->link->ctx, out, len);
        if (n < 0) {
            r = n;
            break;
        }
        if (n == 0) {
            r = 0;
            break;
        }
        if (s->trace)
            s->trace(s->trace_arg, 'o', out, (size_t)n, NULL);
        kl_engine_output_ack(s->client, (size_t)n);
    }
    if (push && s->conn.wire_out != before)
        kl_lwip_conn_flush(&s->conn);
    return r;
}

static int flush_engine(kl_lwip_session_t *s)
{
    return flush_engine_push(s, 1);
}

/* A session that failed with a blob offered: the blob goes (mbedTLS pins
 * the version to the session's; the next connect makes a full handshake). */
static void drop_cached_session(kl_lwip_session_t *s)
{
    kl_cache_t *k = s->client->cfg.cache;
    if (s->session_from_cache && s->tls_on && s->tls.session_offered && k != NULL &&
        kl_cache_check(k, kl_client_domain(s->client)) == KL_OK) {
        k->tls_session_len = 0;
        kl_cache_seal(k);
    }
}

/* Once online: keep the newest resumable session in the cache. */
static void save_session(kl_lwip_session_t *s)
{
    kl_cache_t *k = s->client->cfg.cache;
    size_t len = 0;
    int st;
    if (!s->tls_on || !s->tls.handshake_done || !s->tls.new_session_available || k == NULL ||
        !kl_client_is_online(s->client) || kl_cache_check(k, kl_client_domain(s->client)) != KL_OK)
        return;
    st = kl_tls_session_save(&s->tls, k->tls_session, sizeof k->tls_session, &len);
    s->session_save_status = st;
    if (st == KL_OK) {
        k->tls_session_len = (uint16_t)len;
        kl_cache_seal(k);
        s->session_saved = 1;
        note(s, 'i', "TLS session saved in the connection hints");
    } else {
        s->tls.new_session_available = 0; /* too large for the cache: not again */
    }
}

int kl_lwip_session_tls_resumed(const kl_lwip_session_t *s)
{
    return s->tls_on && kl_tls_resumed(&s->tls);
}

static int tls_error(kl_lwip_session_t *s, int st, kl_event_t *ev)
{
    char buf[128];
    if (st == KL_ERR_TLS_CERT || st == KL_ERR_TLS || st == KL_ERR_TLS_RECORD_TOO_LARGE ||
        st == KL_ERR_TLS_SETUP)
        set_error(s, st, kl_tls_error_text(&s->tls, buf, sizeof buf));
    return error_event(s, st, ev);
}

static int expired(const kl_lwip_session_t *s, uint32_t now)
{
    return (uint32_t)(now - s->t_phase) >= s->timeout_ms;
}

static int tls_begin(kl_lwip_session_t *s, kl_event_t *ev)
{
    int st = kl_tls_setup(&s->tls, &s->tls_cfg, &s->conn.tcp);
    s->tls_on = 1; /* kl_tls_free is needed also after a failed setup */
    if (st != KL_OK)
        return tls_error(s, st, ev);
    s->phase = KL_LWIP_PH_TLS;
    s->t_phase = sys_now();
    note(s, 'o', "TLS handshake starts");
    return 0;
}

int kl_lwip_session_step(kl_lwip_session_t *s, kl_event_t *ev)
{
    kl_client_t *c;
    size_t read_now = 0;
    int guard;
    if (s == NULL || s->client == NULL || ev == NULL)
        return KL_ERR_ARG;
    c = s->client;
    memset(ev, 0, sizeof *ev);
    for (guard = 0; guard < 256; guard++) {
        uint32_t now = sys_now();
        int r;
        switch (s->phase) {
        case KL_LWIP_PH_DONE:
            return 0;

        case KL_LWIP_PH_CONNECT:
            if (s->conn.state == KL_LWIP_FAILED) {
                char text[96];
                snprintf(text, sizeof text, "%s (lwIP err %d)", kl_strerror(s->conn.err), s->conn.lwip_err);
                set_error(s, s->conn.err, text);
                return error_event(s, s->conn.err, ev);
            }
            if (s->conn.state != KL_LWIP_CONNECTED) {
                if (expired(s, now)) {
                    kl_lwip_conn_abort(&s->conn);
                    set_error(s, KL_ERR_CONNECT, "TCP connect timed out");
                    return error_event(s, KL_ERR_CONNECT, ev);
                }
                return 0;
            }
            s->tcp_connect_ms = now - s->t_start;
            if (s->trace) {
                char text[64];
                snprintf(text, sizeof text, "TCP connected in %u ms (ARP + SYN)", (unsigned)s->tcp_connect_ms);
                note(s, 'i', text);
            }
            if (c->cfg.direct_tls) {
                if ((r = tls_begin(s, ev)) != 0)
                    return r;
                continue;
            }
            if ((r = kl_client_connect(c, s->t_start, KL_CHANNEL_STARTTLS)) != KL_OK)
                return error_event(s, r, ev);
            kl_stats_add_port_rt(c, 1); /* the TCP handshake */
            s->phase = KL_LWIP_PH_RUN;
            continue;

        case KL_LWIP_PH_TLS_FLUSH:
            /* early: header + <starttls/> and the ClientHello go in one push */
            r = flush_engine_push(s, !s->early_pending);
            if (r < 0)
                return error_event(s, r, ev);
            if (r == 0) {
                if (s->early_pending)
                    kl_lwip_conn_flush(&s->conn);
                if (expired(s, now))
                    return error_event(s, KL_ERR_TIMEOUT, ev);
                return 0;
            }
            if (s->early_pending) {
                /* XEP-0305 full: start TLS now, hold its reads (the server's
                 * bytes are XML for the engine until <proceed/>), write the
                 * ClientHello behind <starttls/> and go on running the engine. */
                s->early_pending = 0;
                if ((r = tls_begin(s, ev)) != 0)
                    return r;
                kl_tls_hold_reads(&s->tls, 1);
                s->early_tls = 1;
                r = kl_tls_handshake(&s->tls);
                kl_lwip_conn_flush(&s->conn);
                if (r < 0)
                    return tls_error(s, r, ev);
                note(s, 'o', "ClientHello sent behind <starttls/> (full pipelining)");
                s->phase = KL_LWIP_PH_RUN;
                continue;
            }
            if (s->proceed_pending) {
                /* <proceed/>: what followed it is the server's handshake */
                s->proceed_pending = 0;
                kl_tls_set_preread(&s->tls, s->tls_data.p, s->tls_data.len);
                kl_tls_hold_reads(&s->tls, 0);
                s->phase = KL_LWIP_PH_TLS;
                continue;
            }
            if ((r = tls_begin(s, ev)) != 0)
                return r;
            continue;

        case KL_LWIP_PH_TLS:
            r = kl_tls_handshake(&s->tls);
            kl_lwip_conn_flush(&s->conn); /* one push per handshake flight */
            if (r < 0) {
                drop_cached_session(s);
                return tls_error(s, r, ev);
            }
            if (r == 0) {
                if (expired(s, now)) {
                    set_error(s, KL_ERR_TIMEOUT, "TLS handshake timed out");
                    return error_event(s, KL_ERR_TIMEOUT, ev);
                }
                return 0;
            }
            s->tls_handshake_ms = now - s->t_phase;
            s->link = kl_tls_transport(&s->tls);
            if (c->cfg.direct_tls) {
                if ((r = kl_client_connect(c, s->t_start,
                                           s->tls_cfg.insecure_skip_verify ? KL_CHANNEL_TLS : KL_CHANNEL_TLS_VERIFIED)) !=
                    KL_OK)
                    return error_event(s, r, ev);
                kl_stats_add_port_rt(c, 1); /* the TCP handshake */
                kl_stats_add_port_rt(c, s->tls.round_trips);
            } else {
                kl_engine_tls_done(c, !s->tls_cfg.insecure_skip_verify);
                if (!s->early_tls)
                    kl_stats_add_port_rt(c, s->tls.round_trips);
                else if (s->tls.round_trips > 1)
                    /* full: the handshake's first wait was the engine's wait
                     * for <proceed/>, already counted there */
                    kl_stats_add_port_rt(c, s->tls.round_trips - 1);
            }
            if (s->trace) {
                char text[192];
                snprintf(text, sizeof text, "TLS up: %s, %u round trip(s)%s, %s, %u ms%s", kl_tls_version(&s->tls),
                         s->tls.round_trips, s->early_tls ? " (the first shared with <starttls/>)" : "",
                         kl_tls_resumed(&s->tls) ? "session resumed"
                         : s->tls_cfg.insecure_skip_verify ? "certificate NOT verified" : "certificate verified",
                         (unsigned)s->tls_handshake_ms,
                         s->tls.session_offered && !kl_tls_resumed(&s->tls) ? " (cached session refused)" : "");
                note(s, 'i', text);
            }
            s->phase = KL_LWIP_PH_RUN;
            continue;

        case KL_LWIP_PH_RUN: {
            size_t cap;
            uint8_t *in;
            save_session(s);
            r = kl_engine_poll(c, now, ev);
            if (r < 0)
                return r;
            if (r > 0) {
                if (ev->type == KL_EV_START_TLS) {
                    if (ev->early) {
                        s->early_pending = 1;
                    } else if (s->early_tls) {
                        s->proceed_pending = 1;
                        s->tls_data = ev->tls_data;
                    }
                    s->phase = KL_LWIP_PH_TLS_FLUSH;
                    if (!s->proceed_pending)
                        s->t_phase = now;
                    continue;
                }
                if (ev->type == KL_EV_ONLINE) {
                    s->wire_in_online = s->conn.wire_in;
                    s->wire_out_online = s->conn.wire_out;
                    save_session(s);
                }
                if (ev->type == KL_EV_ERROR || ev->type == KL_EV_CLOSED) {
                    kl_event_t keep = *ev;
                    (void)flush_engine(s); /* e.g. our </stream:stream> or stream error */
                    *ev = keep;
                    s->phase = KL_LWIP_PH_DONE;
                }
                return 1;
            }
            if ((r = flush_engine(s)) < 0)
                return tls_error(s, r, ev);
            in = kl_engine_input_buf(c, &cap);
            if (s->max_read_per_step > 0)
                cap = read_now >= s->max_read_per_step ? 0
                    : (cap < s->max_read_per_step - read_now ? cap : s->max_read_per_step - read_now);
            if (cap > 0) {
                int n = s->link->recv(s->link->ctx, in, cap);
                if (s->tls_on)
                    kl_lwip_conn_flush(&s->conn); /* a TLS read may answer (alert, key update) */
                if (n > 0) {
                    if (s->trace)
                        s->trace(s->trace_arg, 'i', in, (size_t)n, NULL);
                    kl_engine_input_ack(c, (size_t)n);
                    read_now += (size_t)n;
                    continue;
                }
                if (n < 0)
                    return tls_error(s, n, ev);
            }
            return 0;
        }
        }
    }
    return 0; /* plenty done for one step; the loop comes back */
}

uint32_t kl_lwip_session_next_timeout(const kl_lwip_session_t *s)
{
    uint32_t now = sys_now(), left;
    switch (s->phase) {
    case KL_LWIP_PH_CONNECT:
    case KL_LWIP_PH_TLS_FLUSH:
    case KL_LWIP_PH_TLS:
        left = s->timeout_ms - (now - s->t_phase);
        return (uint32_t)(now - s->t_phase) >= s->timeout_ms ? 0 : left;
    case KL_LWIP_PH_RUN:
        if (kl_lwip_conn_pending(&s->conn) > 0 || s->conn.fin ||
            (s->tls_on && mbedtls_ssl_get_bytes_avail(&s->tls.ssl) > 0))
            return 0; /* readable now */
        return kl_engine_next_timeout(s->client, now);
    default:
        return UINT32_MAX;
    }
}

void kl_lwip_session_close(kl_lwip_session_t *s)
{
    if (s->tls_on) {
        kl_tls_close(&s->tls);
        kl_lwip_conn_flush(&s->conn);
        kl_tls_free(&s->tls);
        s->tls_on = 0;
    }
    kl_lwip_conn_close(&s->conn);
    s->link = &s->conn.tcp;
    s->phase = KL_LWIP_PH_DONE;
}
