/* kinglet — lwIP port (raw TCP API, NO_SYS=1 friendly, never blocks). */
#include "kl_lwip.h"

#include <stdio.h>
#include <string.h>

#include "lwip/dns.h"
#include "lwip/init.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"

#if LWIP_VERSION_MAJOR != 2 || LWIP_VERSION_MINOR != 2
#error "port/lwip is written for lwIP 2.2.x: check LWIP_DIR and the -I order"
#endif
#if !LWIP_TCP
#error "port/lwip needs LWIP_TCP"
#endif
#if TCP_WND > 0xffff
#error "the receive queue's pbuf chain (tot_len) is bounded by TCP_WND: keep it below 64 KB"
#endif

/* ---- the connection -------------------------------------------------------- */

static void rx_drop_all(kl_lwip_conn_t *c)
{
    if (c->rx != NULL)
        pbuf_free(c->rx);
    c->rx = NULL;
    c->rx_off = 0;
}

static void fail(kl_lwip_conn_t *c, int status, int lwip_err)
{
    if (c->state != KL_LWIP_FAILED) {
        c->state = KL_LWIP_FAILED;
        c->err = status;
        c->lwip_err = lwip_err;
    }
}

size_t kl_lwip_conn_pending(const kl_lwip_conn_t *c)
{
    return c->rx != NULL ? (size_t)c->rx->tot_len - c->rx_off : 0;
}

/* lwIP has a segment for us: keep it (unacknowledged) until it is read. */
static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    kl_lwip_conn_t *c = arg;
    (void)pcb;
    if (p == NULL) { /* FIN: end of stream once the queue is read */
        c->fin = 1;
        return ERR_OK;
    }
    if (err != ERR_OK) {
        pbuf_free(p);
        return ERR_OK;
    }
    if (c->rx == NULL) {
        c->rx = p;
        c->rx_off = 0;
    } else {
        pbuf_cat(c->rx, p); /* the chain takes over our reference to p */
    }
    if (kl_lwip_conn_pending(c) > c->rx_queued_max)
        c->rx_queued_max = kl_lwip_conn_pending(c);
    return ERR_OK;
}

/* The pcb is gone (lwIP freed it): RST, retransmission timeout, abort. */
static void on_err(void *arg, err_t err)
{
    kl_lwip_conn_t *c = arg;
    c->pcb = NULL;
    rx_drop_all(c);
    if (c->state == KL_LWIP_CONNECTING)
        fail(c, KL_ERR_CONNECT, err); /* refused (RST) or no answer */
    else if (err == ERR_RST || err == ERR_CLSD)
        fail(c, KL_ERR_CONN_CLOSED, err);
    else
        fail(c, KL_ERR_IO, err);
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    kl_lwip_conn_t *c = arg;
    (void)pcb;
    if (err != ERR_OK) {
        fail(c, KL_ERR_CONNECT, err);
        return err;
    }
    c->state = KL_LWIP_CONNECTED;
    return ERR_OK;
}

static void start_connect(kl_lwip_conn_t *c)
{
    err_t e;
    struct tcp_pcb *pcb = tcp_new_ip_type(IP_GET_TYPE(&c->addr));
    if (pcb == NULL) {
        fail(c, KL_ERR_CONNECT, ERR_MEM); /* MEMP_NUM_TCP_PCB */
        return;
    }
    tcp_arg(pcb, c);
    tcp_recv(pcb, on_recv);
    tcp_err(pcb, on_err);
    /* A flight is written whole and pushed once: Nagle would hold its
     * second segment a round trip behind a delayed ACK. */
    tcp_nagle_disable(pcb);
    c->pcb = pcb;
    c->state = KL_LWIP_CONNECTING;
    e = tcp_connect(pcb, &c->addr, c->port, on_connected);
    if (e != ERR_OK) {
        tcp_arg(pcb, NULL);
        tcp_err(pcb, NULL);
        tcp_abort(pcb);
        c->pcb = NULL;
        fail(c, KL_ERR_CONNECT, e);
    }
}

static void on_dns(const char *name, const ip_addr_t *addr, void *arg)
{
    kl_lwip_conn_t *c = arg;
    (void)name;
    if (c->state != KL_LWIP_RESOLVING)
        return; /* closed meanwhile */
    if (addr == NULL) {
        fail(c, KL_ERR_DNS, ERR_VAL);
        return;
    }
    c->addr = *addr;
    start_connect(c);
}

static int conn_send(void *ctx, const uint8_t *buf, size_t len)
{
    kl_lwip_conn_t *c = ctx;
    size_t room;
    err_t e;
    if (c->state == KL_LWIP_FAILED)
        return c->err;
    if (c->state != KL_LWIP_CONNECTED || c->pcb == NULL)
        return c->state == KL_LWIP_CONNECTING || c->state == KL_LWIP_RESOLVING ? 0 : KL_ERR_CONN_CLOSED;
    if (buf == NULL || len == 0)
        return KL_ERR_ARG;
    room = tcp_sndbuf(c->pcb);
    if (room == 0 || tcp_sndqueuelen(c->pcb) >= TCP_SND_QUEUELEN)
        return 0;
    if (len > room)
        len = room;
    e = tcp_write(c->pcb, buf, (u16_t)len, TCP_WRITE_FLAG_COPY);
    if (e == ERR_MEM)
        return 0; /* segments or heap: wait for ACKs (stats.err shows it) */
    if (e != ERR_OK)
        return e == ERR_CONN || e == ERR_CLSD ? KL_ERR_CONN_CLOSED : KL_ERR_IO;
    c->wire_out += (unsigned long)len;
    return (int)len;
}

/* Copies out of the queued pbufs and acknowledges exactly what was taken:
 * what the reader leaves stays in lwIP's window. */
static int conn_recv(void *ctx, uint8_t *buf, size_t len)
{
    kl_lwip_conn_t *c = ctx;
    size_t got = 0;
    if (buf == NULL || len == 0)
        return KL_ERR_ARG;
    if (len > 0x7fff)
        len = 0x7fff;
    while (got < len && c->rx != NULL) {
        struct pbuf *q = c->rx;
        size_t k = (size_t)q->len - c->rx_off;
        if (k > len - got)
            k = len - got;
        memcpy(buf + got, (const uint8_t *)q->payload + c->rx_off, k);
        got += k;
        c->rx_off = (uint16_t)(c->rx_off + k);
        if (c->rx_off == q->len) { /* detach the first pbuf; the rest keeps its reference */
            c->rx = q->next;
            q->next = NULL;
            q->tot_len = q->len;
            pbuf_free(q);
            c->rx_off = 0;
        }
    }
    if (got > 0) {
        if (c->pcb != NULL)
            tcp_recved(c->pcb, (u16_t)got);
        c->wire_in += (unsigned long)got;
        return (int)got;
    }
    if (c->state == KL_LWIP_FAILED)
        return c->err;
    if (c->fin || c->state == KL_LWIP_CLOSED)
        return KL_ERR_CONN_CLOSED;
    return 0;
}

int kl_lwip_conn_open(kl_lwip_conn_t *c, const char *host, uint16_t port)
{
    err_t e;
    if (c == NULL || host == NULL || host[0] == '\0' || port == 0)
        return KL_ERR_ARG;
    memset(c, 0, sizeof *c);
    c->tcp.ctx = c;
    c->tcp.send = conn_send;
    c->tcp.recv = conn_recv;
    c->port = port;
    if (ipaddr_aton(host, &c->addr)) {
        start_connect(c);
    } else {
#if LWIP_DNS
        c->state = KL_LWIP_RESOLVING;
        e = dns_gethostbyname(host, &c->addr, on_dns, c);
        if (e == ERR_OK)
            start_connect(c);
        else if (e != ERR_INPROGRESS)
            fail(c, KL_ERR_DNS, e);
#else
        (void)e;
        fail(c, KL_ERR_DNS, ERR_ARG);
#endif
    }
    return c->state == KL_LWIP_FAILED ? c->err : KL_OK;
}

void kl_lwip_conn_flush(kl_lwip_conn_t *c)
{
    if (c->pcb != NULL && c->state == KL_LWIP_CONNECTED)
        tcp_output(c->pcb);
}

static void detach(struct tcp_pcb *pcb)
{
    tcp_arg(pcb, NULL);
    tcp_recv(pcb, NULL); /* lwIP's default: acknowledge and drop */
    tcp_err(pcb, NULL);
    tcp_sent(pcb, NULL);
}

void kl_lwip_conn_close(kl_lwip_conn_t *c)
{
    if (c->pcb != NULL) {
        struct tcp_pcb *pcb = c->pcb;
        size_t pending = kl_lwip_conn_pending(c);
        detach(pcb);
        /* Unread data would make tcp_close send RST instead of FIN. */
        if (pending > 0)
            tcp_recved(pcb, (u16_t)pending);
        if (tcp_close(pcb) != ERR_OK)
            tcp_abort(pcb);
        c->pcb = NULL;
    }
    rx_drop_all(c);
    if (c->state != KL_LWIP_FAILED)
        c->state = KL_LWIP_CLOSED;
}

void kl_lwip_conn_abort(kl_lwip_conn_t *c)
{
    if (c->pcb != NULL) {
        detach(c->pcb);
        tcp_abort(c->pcb);
        c->pcb = NULL;
    }
    rx_drop_all(c);
    if (c->state != KL_LWIP_FAILED)
        c->state = KL_LWIP_CLOSED;
}

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

/* ---- SRV lookup over lwIP UDP ------------------------------------------------- */

static uint32_t srv_random(void)
{
#ifdef LWIP_RAND
    return (uint32_t)LWIP_RAND();
#else
    return sys_now() * 2654435761u;
#endif
}

static void srv_on_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
    kl_lwip_srv_t *r = arg;
    (void)pcb;
    /* only the resolver's answers, only one at a time, only what fits 512 bytes */
    if (r->status == 0 && !r->got_answer && addr != NULL && ip_addr_cmp(addr, &r->server) &&
        port == r->server_port && p->tot_len <= sizeof r->resp) {
        r->resp_len = pbuf_copy_partial(p, r->resp, p->tot_len, 0);
        r->got_answer = 1;
    }
    pbuf_free(p);
}

static int srv_send(kl_lwip_srv_t *r)
{
    struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)r->qlen, PBUF_RAM);
    err_t e;
    if (p == NULL)
        return 0; /* no memory now: the resend timer tries again */
    pbuf_take(p, r->query, (u16_t)r->qlen);
    e = udp_sendto(r->pcb, p, &r->server, r->server_port);
    pbuf_free(p);
    r->t_query = sys_now();
    r->queries_sent++;
    return e == ERR_OK || e == ERR_MEM || e == ERR_RTE ? 0 : KL_ERR_IO;
}

static int srv_query(kl_lwip_srv_t *r)
{
    r->qlen = kl_dns_query_srv(r->query, sizeof r->query, (uint16_t)srv_random(), r->pass, r->domain);
    if (r->qlen < 0)
        return r->qlen == KL_ERR_DNS_NAME ? KL_ERR_ARG : r->qlen;
    r->attempt = 0;
    r->got_answer = 0;
    return srv_send(r);
}

static int srv_add(kl_lwip_srv_t *r, const char *host, const uint8_t *ip, uint16_t port, int direct, int from_srv,
                   uint32_t ttl)
{
    kl_lwip_candidate_t *c;
    size_t hl = strlen(host);
    if (r->n_cand >= KL_LWIP_SRV_MAX_CAND)
        return KL_OK; /* the least preferred ones do not fit: enough to try */
    if (hl && host[hl - 1] == '.')
        hl--;
    if (hl >= sizeof c->host)
        return KL_ERR_DNS_NAME;
    c = &r->cand[r->n_cand++];
    memset(c, 0, sizeof *c);
    memcpy(c->host, host, hl);
    if (ip != NULL)
        snprintf(c->ip, sizeof c->ip, "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
    c->port = port;
    c->direct_tls = (uint8_t)(direct != 0);
    c->from_srv = (uint8_t)from_srv;
    c->ttl = ttl;
    return KL_OK;
}

static int srv_finish(kl_lwip_srv_t *r, int status)
{
    r->status = status;
    if (r->pcb != NULL) {
        udp_remove(r->pcb);
        r->pcb = NULL;
    }
    return status;
}

int kl_lwip_srv_start(kl_lwip_srv_t *r, const char *domain, const char *server, uint16_t port, int direct_tls,
                      uint32_t timeout_ms)
{
    size_t dl;
    int st;
    if (r == NULL || domain == NULL || server == NULL || port == 0 || timeout_ms == 0)
        return KL_ERR_ARG;
    memset(r, 0, sizeof *r);
    dl = strlen(domain);
    if (dl == 0 || dl >= sizeof r->domain || !ipaddr_aton(server, &r->server))
        return KL_ERR_ARG;
    memcpy(r->domain, domain, dl);
    r->server_port = port;
    r->direct_tls = direct_tls != 0;
    r->pass = r->direct_tls;
    r->timeout_ms = timeout_ms;
    r->t_start = sys_now();
    r->pcb = udp_new_ip_type(IP_GET_TYPE(&r->server));
    if (r->pcb == NULL)
        return KL_ERR_IO; /* MEMP_NUM_UDP_PCB */
    udp_recv(r->pcb, srv_on_recv, r);
    if ((st = srv_query(r)) < 0)
        return srv_finish(r, st);
    return KL_OK;
}

int kl_lwip_srv_poll(kl_lwip_srv_t *r)
{
    uint32_t now = sys_now(), elapsed;
    int st;
    if (r == NULL)
        return KL_ERR_ARG;
    if (r->status != 0)
        return r->status;
    if (r->got_answer) {
        r->got_answer = 0;
        st = kl_dns_parse(r->resp, r->resp_len, r->query, (size_t)r->qlen, srv_random(), &r->res);
        if (st == KL_ERR_DNS_MISMATCH)
            return 0; /* not ours (late or forged): keep waiting */
        if (st < 0)
            return srv_finish(r, st);
        if (st == KL_DNS_UNAVAILABLE)
            r->unavailable[r->pass] = 1;
        if (st == KL_DNS_RECORDS) {
            for (unsigned i = 0; i < r->res.srv_count; i++) {
                const uint8_t *ip = NULL;
                for (unsigned k = 0; k < r->res.addr_count; k++)
                    if (r->res.addr[k].srv == i) {
                        ip = r->res.addr[k].ip;
                        break;
                    }
                if ((st = srv_add(r, r->res.srv[i].target, ip, r->res.srv[i].port, r->pass, 1, r->res.ttl)) < 0)
                    return srv_finish(r, st);
            }
        }
        if (r->pass == 1) { /* then _xmpp-client */
            r->pass = 0;
            if ((st = srv_query(r)) < 0)
                return srv_finish(r, st);
            return 0;
        }
        if (r->n_cand > 0)
            return srv_finish(r, r->n_cand);
        if (r->direct_tls && !r->unavailable[1])
            (void)srv_add(r, r->domain, NULL, 5223, 1, 0, 0);
        if (!r->unavailable[0])
            (void)srv_add(r, r->domain, NULL, 5222, 0, 0, 0);
        return srv_finish(r, r->n_cand > 0 ? r->n_cand : KL_ERR_DNS_UNAVAILABLE);
    }
    elapsed = now - r->t_start;
    if (elapsed >= r->timeout_ms)
        return srv_finish(r, KL_ERR_TIMEOUT);
    /* one resend per query, half-way through what is left */
    if (r->attempt == 0 && (uint32_t)(now - r->t_query) >= (r->timeout_ms - (r->t_query - r->t_start)) / 2) {
        r->attempt = 1;
        if ((st = srv_send(r)) < 0)
            return srv_finish(r, st);
    }
    return 0;
}

uint32_t kl_lwip_srv_next_timeout(const kl_lwip_srv_t *r)
{
    uint32_t now = sys_now(), left, resend;
    if (r->status != 0 || r->got_answer)
        return 0;
    left = (uint32_t)(now - r->t_start) >= r->timeout_ms ? 0 : r->timeout_ms - (now - r->t_start);
    if (r->attempt == 0) {
        uint32_t half = (r->timeout_ms - (r->t_query - r->t_start)) / 2, since = now - r->t_query;
        resend = since >= half ? 0 : half - since;
        if (resend < left)
            left = resend;
    }
    return left;
}

void kl_lwip_srv_free(kl_lwip_srv_t *r)
{
    if (r != NULL && r->pcb != NULL) {
        udp_remove(r->pcb);
        r->pcb = NULL;
    }
}
