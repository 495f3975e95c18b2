/* kinglet — lwIP BOSH port (see kl_lwip_bosh.h). Never blocks. */
#include "kl_lwip_bosh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/sys.h"
#include "lwip/tcp.h"

static void set_error(kl_lwip_bosh_t *b, int status, const char *text)
{
    b->last_status = status;
    snprintf(b->error_text, sizeof b->error_text, "%s", text ? text : kl_strerror(status));
}

static void note(kl_lwip_bosh_t *b, char dir, const char *text)
{
    if (b->trace)
        b->trace(b->trace_arg, dir, NULL, 0, text);
}

/* The URL's parts (core/kl_http.c parses it) into our fields. */
_Static_assert(sizeof(((kl_lwip_bosh_t *)0)->host) == sizeof(((kl_http_url_t *)0)->host) &&
                   sizeof(((kl_lwip_bosh_t *)0)->hostport) == sizeof(((kl_http_url_t *)0)->hostport) &&
                   sizeof(((kl_lwip_bosh_t *)0)->path) == sizeof(((kl_http_url_t *)0)->path),
               "URL fields match kl_http_url_t");
static int parse_url(kl_lwip_bosh_t *b, const char *url)
{
    kl_http_url_t u;
    int st = kl_http_parse_url(url, &u);
    if (st != KL_OK)
        return st;
    b->https = u.https;
    b->port = u.port;
    memcpy(b->host, u.host, sizeof b->host);
    memcpy(b->hostport, u.hostport, sizeof b->hostport);
    memcpy(b->path, u.path, sizeof b->path);
    return KL_OK;
}

static void conn_shut(kl_lwip_bosh_t *b, kl_lwip_bosh_conn_t *k)
{
    if (k->tls_on) {
        if (k->state == KL_LWIP_BC_READY)
            kl_tls_close(&k->tls);
        kl_lwip_conn_flush(&k->conn);
        kl_tls_free(&k->tls);
        k->tls_on = 0;
    }
    if (k->state != KL_LWIP_BC_OFF) {
        b->wire_in_closed += k->conn.wire_in;
        b->wire_out_closed += k->conn.wire_out;
        kl_lwip_conn_close(&k->conn);
    }
    k->state = KL_LWIP_BC_OFF;
    k->link = &k->conn.tcp;
    k->req = NULL;
    k->req_len = k->req_off = 0;
}

static int conn_open(kl_lwip_bosh_t *b, kl_lwip_bosh_conn_t *k)
{
    int st = kl_lwip_conn_open(&k->conn, b->host, b->port);
    k->link = &k->conn.tcp;
    k->slot = -1;
    k->req = NULL;
    k->req_len = k->req_off = 0;
    k->t_open = sys_now();
    if (st != KL_OK) {
        char text[192];
        snprintf(text, sizeof text, st == KL_ERR_DNS ? "cannot resolve host '%.100s'" : "cannot connect to %.100s port %u",
                 b->host, (unsigned)b->port);
        set_error(b, st, text);
        k->state = KL_LWIP_BC_OFF;
        return st;
    }
    k->state = KL_LWIP_BC_TCP;
    return KL_OK;
}

/* Move one connection towards READY. 1 ready, 0 in progress, < 0 error. */
static int conn_progress(kl_lwip_bosh_t *b, kl_lwip_bosh_conn_t *k)
{
    char buf[240];
    int r;
    uint32_t now = sys_now();
    switch (k->state) {
    case KL_LWIP_BC_READY:
        return 1;
    case KL_LWIP_BC_OFF:
        return KL_ERR_CONN_CLOSED;
    case KL_LWIP_BC_TCP:
        if (k->conn.state == KL_LWIP_FAILED) {
            snprintf(buf, sizeof buf, "cannot connect to %.60s port %u: %.60s (lwIP err %d)", b->host, (unsigned)b->port,
                     kl_strerror(k->conn.err), k->conn.lwip_err);
            set_error(b, k->conn.err == KL_ERR_DNS ? KL_ERR_DNS : KL_ERR_CONNECT, buf);
            return b->last_status;
        }
        if (k->conn.state != KL_LWIP_CONNECTED) {
            if ((uint32_t)(now - k->t_open) >= b->timeout_ms) {
                set_error(b, KL_ERR_CONNECT, "TCP connect timed out");
                return KL_ERR_CONNECT;
            }
            return 0;
        }
        if (!b->https) {
            k->state = KL_LWIP_BC_READY;
            return 1;
        }
        r = kl_tls_setup(&k->tls, &b->tls_cfg, &k->conn.tcp);
        k->tls_on = 1;
        if (r != KL_OK) {
            set_error(b, r, kl_tls_error_text(&k->tls, buf, sizeof buf));
            return r;
        }
        k->state = KL_LWIP_BC_TLS;
        /* fall through */
    case KL_LWIP_BC_TLS:
        r = kl_tls_handshake(&k->tls);
        kl_lwip_conn_flush(&k->conn); /* one push per handshake flight */
        if (r < 0) {
            set_error(b, r, kl_tls_error_text(&k->tls, buf, sizeof buf));
            return r;
        }
        if (r == 0) {
            if ((uint32_t)(now - k->t_open) >= b->timeout_ms) {
                set_error(b, KL_ERR_TIMEOUT, "TLS handshake timed out");
                return KL_ERR_TIMEOUT;
            }
            return 0;
        }
        k->link = kl_tls_transport(&k->tls);
        k->state = KL_LWIP_BC_READY;
        return 1;
    default:
        return KL_ERR_ARG;
    }
}

int kl_lwip_bosh_start(kl_lwip_bosh_t *b, kl_client_t *c, const char *url, const kl_tls_config_t *tls_cfg,
                       int split_restart, uint32_t rid, uint32_t timeout_ms)
{
    kl_bosh_config_t bc;
    int i, st;
    if (b == NULL || c == NULL)
        return KL_ERR_ARG;
    memset(b, 0, sizeof *b);
    b->client = c;
    b->timeout_ms = timeout_ms ? timeout_ms : 20000u;
    b->phase = KL_LWIP_BOSH_DONE;
    for (i = 0; i < KL_LWIP_BOSH_CONNS; i++) {
        b->conn[i].slot = -1;
        b->conn[i].link = &b->conn[i].conn.tcp;
    }
    if (url == NULL || parse_url(b, url) != KL_OK) {
        set_error(b, KL_ERR_ARG, "bad BOSH URL (http[s]://host[:port]/path)");
        return KL_ERR_ARG;
    }
    if (tls_cfg)
        b->tls_cfg = *tls_cfg;
    if (b->tls_cfg.server_name == NULL)
        b->tls_cfg.server_name = b->host;
    b->tls_cfg.alpn = NULL;
    if (rid == 0) {
#ifdef LWIP_RAND
        rid = (uint32_t)LWIP_RAND() ^ ((uint32_t)LWIP_RAND() << 16);
#else
        rid = sys_now() * 2654435761u;
#endif
    }
    memset(&bc, 0, sizeof bc);
    bc.host = b->hostport;
    bc.path = b->path;
    bc.to = kl_client_domain(c);
    bc.rid = (rid & 0x3fffffffu) | 1u;
    bc.split_restart = (uint8_t)(split_restart != 0);
    if ((st = kl_bosh_init(&b->bosh, &bc)) != KL_OK) {
        set_error(b, st, NULL);
        return st;
    }
    b->t_start = sys_now();
    b->phase = KL_LWIP_BOSH_CONNECT;
    for (i = 0; i < KL_LWIP_BOSH_CONNS; i++)
        if ((st = conn_open(b, &b->conn[i])) != KL_OK) {
            kl_lwip_bosh_close(b);
            return st;
        }
    note(b, 'o', b->https ? "BOSH: two TCP connections, then TLS on both" : "BOSH: two TCP connections");
    return KL_OK;
}

static int error_event(kl_lwip_bosh_t *b, int status, kl_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->type = KL_EV_ERROR;
    ev->status = status;
    b->condition[0] = '\0';
    if (status == KL_ERR_HTTP_STATUS) {
        snprintf(b->condition, sizeof b->condition, "http-%d", b->bosh.http_status);
        if (b->last_status != status) {
            char t[192];
            snprintf(t, sizeof t, "HTTP %d from POST %.80s on %.80s", b->bosh.http_status, b->path, b->hostport);
            set_error(b, status, t);
        }
    } else if (status == KL_ERR_BOSH_TERMINATE) {
        snprintf(b->condition, sizeof b->condition, "%s", b->bosh.condition);
        if (b->last_status != status) {
            char t[192];
            snprintf(t, sizeof t, "BOSH session terminated by the connection manager (condition %s)",
                     b->bosh.condition);
            set_error(b, status, t);
        }
    } else if (b->last_status != status) {
        set_error(b, status, NULL);
    }
    ev->condition = b->condition;
    b->phase = KL_LWIP_BOSH_DONE;
    return 1;
}

/* The connection broke or the server closed it: its request (if any) is
 * resent with the same rid (kl_bosh), on the connection opened again. */
static int conn_lost(kl_lwip_bosh_t *b, int i)
{
    kl_lwip_bosh_conn_t *k = &b->conn[i];
    int st, slot = k->slot;
    conn_shut(b, k);
    k->slot = -1;
    if (slot >= 0 && (st = kl_bosh_conn_failed(&b->bosh, slot)) < 0)
        return st;
    if (kl_bosh_done(&b->bosh))
        return KL_OK;
    if ((st = conn_open(b, k)) != KL_OK)
        return st;
    k->reopened = 1;
    b->reconnects++;
    note(b, 'o', "BOSH: connection opened again");
    return KL_OK;
}

/* Connections being opened again after the start. */
static int progress_reopened(kl_lwip_bosh_t *b)
{
    int i, r;
    for (i = 0; i < KL_LWIP_BOSH_CONNS; i++) {
        kl_lwip_bosh_conn_t *k = &b->conn[i];
        if (k->state == KL_LWIP_BC_OFF || k->state == KL_LWIP_BC_READY)
            continue;
        if ((r = conn_progress(b, k)) < 0)
            return r;
        if (r == 1 && !b->online) {
            kl_stats_add_port_rt(b->client, 1 + (b->https ? k->tls.round_trips : 0));
        }
    }
    return KL_OK;
}

/* Write what is owed on each connection; hand new requests to idle ones. */
static int dispatch(kl_lwip_bosh_t *b)
{
    int i, st;
    for (i = 0; i < KL_LWIP_BOSH_CONNS; i++) {
        kl_lwip_bosh_conn_t *k = &b->conn[i];
        unsigned long before;
        if (k->state != KL_LWIP_BC_READY)
            continue;
        if (k->slot < 0) {
            const uint8_t *req;
            size_t len;
            int slot;
            if (k->conn.fin || k->conn.state != KL_LWIP_CONNECTED) {
                /* the server closed an idle keep-alive connection */
                if ((st = conn_lost(b, i)) != KL_OK)
                    return st;
                continue;
            }
            if ((slot = kl_bosh_next_request(&b->bosh, &req, &len)) < 0)
                continue;
            k->slot = slot;
            k->req = req;
            k->req_len = len;
            k->req_off = 0;
            if (b->trace)
                b->trace(b->trace_arg, 'o', req, len, NULL);
            if (!b->online && b->bosh.round_trips > b->counted_rounds) {
                /* the engine counted its one flight; each further round of
                 * requests the login waits on is a round trip too */
                if (b->counted_rounds > 0)
                    kl_stats_add_port_rt(b->client, b->bosh.round_trips - b->counted_rounds);
                b->counted_rounds = b->bosh.round_trips;
            }
        }
        before = k->conn.wire_out;
        while (k->req != NULL && k->req_off < k->req_len) {
            int w = k->link->send(k->link->ctx, k->req + k->req_off, k->req_len - k->req_off);
            if (w < 0) {
                kl_lwip_conn_flush(&k->conn);
                if ((st = conn_lost(b, i)) != KL_OK)
                    return st;
                break;
            }
            if (w == 0)
                break; /* tcp_sndbuf full: the rest after the ACKs */
            k->req_off += (size_t)w;
        }
        if (k->req != NULL && k->req_off == k->req_len)
            k->req = NULL;
        if (k->conn.wire_out != before)
            kl_lwip_conn_flush(&k->conn); /* one push per request (or part) */
    }
    return KL_OK;
}

/* Read what is there on the busy connections. 1 if anything happened. */
static int read_conns(kl_lwip_bosh_t *b, int *err)
{
    uint8_t buf[512];
    int i, any = 0;
    *err = KL_OK;
    for (i = 0; i < KL_LWIP_BOSH_CONNS; i++) {
        kl_lwip_bosh_conn_t *k = &b->conn[i];
        int n, r;
        size_t used;
        if (k->state != KL_LWIP_BC_READY || k->slot < 0 || k->req != NULL)
            continue;
        n = k->link->recv(k->link->ctx, buf, sizeof buf);
        if (b->https)
            kl_lwip_conn_flush(&k->conn); /* a TLS read may answer */
        if (n == 0)
            continue;
        any = 1;
        if (n < 0) {
            if ((r = conn_lost(b, i)) != KL_OK) {
                *err = r;
                return 1;
            }
            continue;
        }
        r = kl_bosh_response(&b->bosh, k->slot, buf, (size_t)n, &used);
        if (r < 0) {
            *err = r;
            return 1;
        }
        if (r == 1) {
            const kl_http_resp_t *hr = &b->bosh.slot[k->slot].resp;
            int close_it = hr->close;
            if (b->trace)
                b->trace(b->trace_arg, 'i', hr->body, hr->body_len, NULL);
            k->slot = -1;
            if (close_it) {
                conn_shut(b, k);
                if (!kl_bosh_done(&b->bosh)) {
                    if ((r = conn_open(b, k)) != KL_OK) {
                        *err = r;
                        return 1;
                    }
                    k->reopened = 1;
                    b->reconnects++;
                }
            }
        }
    }
    return any;
}

static unsigned long wire(const kl_lwip_bosh_t *b, int out)
{
    unsigned long n = out ? b->wire_out_closed : b->wire_in_closed;
    int i;
    for (i = 0; i < KL_LWIP_BOSH_CONNS; i++)
        if (b->conn[i].state != KL_LWIP_BC_OFF)
            n += out ? b->conn[i].conn.wire_out : b->conn[i].conn.wire_in;
    return n;
}

unsigned long kl_lwip_bosh_wire_in(const kl_lwip_bosh_t *b)
{
    return wire(b, 0);
}

unsigned long kl_lwip_bosh_wire_out(const kl_lwip_bosh_t *b)
{
    return wire(b, 1);
}

int kl_lwip_bosh_step(kl_lwip_bosh_t *b, kl_event_t *ev)
{
    kl_client_t *c;
    int guard;
    if (b == NULL || b->client == NULL || ev == NULL)
        return KL_ERR_ARG;
    c = b->client;
    memset(ev, 0, sizeof *ev);
    for (guard = 0; guard < 256; guard++) {
        uint32_t now = sys_now();
        int r, i, ready = 0, err;
        if (b->phase == KL_LWIP_BOSH_DONE)
            return 0;
        if (b->phase == KL_LWIP_BOSH_CONNECT) {
            unsigned tls_rt = 0;
            int tcp_up = 0;
            for (i = 0; i < KL_LWIP_BOSH_CONNS; i++) {
                kl_lwip_bosh_conn_t *k = &b->conn[i];
                if ((r = conn_progress(b, k)) < 0)
                    return error_event(b, r, ev);
                tcp_up += k->state != KL_LWIP_BC_TCP;
                ready += r;
            }
            if (tcp_up == KL_LWIP_BOSH_CONNS && b->tcp_connect_ms == 0)
                b->tcp_connect_ms = now - b->t_start ? now - b->t_start : 1;
            if (ready < KL_LWIP_BOSH_CONNS)
                return 0;
            for (i = 0; i < KL_LWIP_BOSH_CONNS; i++)
                if (b->https && b->conn[i].tls.round_trips > tls_rt)
                    tls_rt = b->conn[i].tls.round_trips; /* side by side: the longest one */
            if (b->https)
                b->tls_handshake_ms = now - b->t_start - b->tcp_connect_ms;
            if ((r = kl_client_connect(c, b->t_start, !b->https ? KL_CHANNEL_CLEAR
                                                      : b->tls_cfg.insecure_skip_verify ? KL_CHANNEL_TLS
                                                                                         : KL_CHANNEL_TLS_VERIFIED)) != KL_OK)
                return error_event(b, r, ev);
            kl_stats_add_port_rt(c, 1 + tls_rt); /* TCP, TLS */
            if (b->trace) {
                char text[128];
                snprintf(text, sizeof text, "BOSH: connections up (TCP %u ms%s%s, %u TLS round trip(s))",
                         (unsigned)b->tcp_connect_ms, b->https ? ", " : "",
                         b->https ? kl_tls_version(&b->conn[0].tls) : "", tls_rt);
                note(b, 'i', text);
            }
            b->phase = KL_LWIP_BOSH_RUN;
            continue;
        }
        /* RUN */
        r = kl_engine_poll(c, now, ev);
        if (r < 0)
            return r;
        if (r > 0) {
            if (ev->type == KL_EV_ONLINE) {
                b->online = 1;
                b->wire_in_online = wire(b, 0);
                b->wire_out_online = wire(b, 1);
                b->http_round_trips_online = b->bosh.round_trips;
                b->requests_online = b->bosh.requests_sent;
            }
            if (ev->type == KL_EV_ERROR || ev->type == KL_EV_CLOSED) {
                kl_event_t keep = *ev;
                /* best effort: let the terminate go out */
                (void)kl_bosh_pull(&b->bosh, c);
                (void)dispatch(b);
                *ev = keep;
                b->phase = KL_LWIP_BOSH_DONE;
            }
            return 1;
        }
        if ((r = kl_bosh_pull(&b->bosh, c)) < 0)
            return error_event(b, r, ev);
        if ((r = progress_reopened(b)) < 0)
            return error_event(b, r, ev);
        if ((r = dispatch(b)) < 0)
            return error_event(b, r, ev);
        r = kl_bosh_push(&b->bosh, c);
        if (r < 0)
            return error_event(b, r, ev);
        if (r > 0)
            continue;
        if (read_conns(b, &err)) {
            if (err < 0)
                return error_event(b, err, ev);
            continue;
        }
        return 0;
    }
    return 0; /* plenty done for one step; the loop comes back */
}

uint32_t kl_lwip_bosh_next_timeout(const kl_lwip_bosh_t *b)
{
    uint32_t now = sys_now(), t, left;
    int i;
    if (b->phase == KL_LWIP_BOSH_DONE)
        return UINT32_MAX;
    t = b->phase == KL_LWIP_BOSH_RUN ? kl_engine_next_timeout(b->client, now) : UINT32_MAX;
    for (i = 0; i < KL_LWIP_BOSH_CONNS; i++) {
        const kl_lwip_bosh_conn_t *k = &b->conn[i];
        if (k->state == KL_LWIP_BC_OFF)
            continue;
        if (k->state != KL_LWIP_BC_READY) {
            left = (uint32_t)(now - k->t_open) >= b->timeout_ms ? 0 : b->timeout_ms - (now - k->t_open);
            if (left < t)
                t = left;
            continue;
        }
        if (kl_lwip_conn_pending(&k->conn) > 0 || k->conn.fin || k->conn.state == KL_LWIP_FAILED ||
            (k->tls_on && mbedtls_ssl_get_bytes_avail(&k->tls.ssl) > 0))
            return 0; /* readable now */
    }
    return t;
}

void kl_lwip_bosh_close(kl_lwip_bosh_t *b)
{
    int i;
    for (i = 0; i < KL_LWIP_BOSH_CONNS; i++)
        conn_shut(b, &b->conn[i]);
    b->phase = KL_LWIP_BOSH_DONE;
}

const char *kl_lwip_bosh_tls_version(const kl_lwip_bosh_t *b)
{
    return b->https && b->conn[0].tls_on ? kl_tls_version(&b->conn[0].tls) : "none";
}
