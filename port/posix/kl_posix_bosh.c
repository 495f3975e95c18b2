/* kinglet — POSIX BOSH port (see kl_posix_bosh.h). */
#define _POSIX_C_SOURCE 200809L
#include "kl_posix_bosh.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kl_posix.h" /* kl_posix_now_ms */

static void set_error(kl_posix_bosh_t *pb, int status, const char *text)
{
    pb->last_status = status;
    snprintf(pb->error_text, sizeof pb->error_text, "%s", text ? text : kl_strerror(status));
}

static int tcp_send(void *ctx, const uint8_t *buf, size_t len)
{
    kl_posix_bosh_conn_t *k = ctx;
    ssize_t n = send(k->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) {
        k->owner->wire_out += (unsigned long)n;
        return (int)n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    return errno == EPIPE || errno == ECONNRESET ? KL_ERR_CONN_CLOSED : KL_ERR_IO;
}

static int tcp_recv(void *ctx, uint8_t *buf, size_t len)
{
    kl_posix_bosh_conn_t *k = ctx;
    ssize_t n = recv(k->fd, buf, len, 0);
    if (n > 0) {
        k->owner->wire_in += (unsigned long)n;
        return (int)n;
    }
    if (n == 0)
        return KL_ERR_CONN_CLOSED;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    return errno == ECONNRESET ? KL_ERR_CONN_CLOSED : KL_ERR_IO;
}

/* The URL's parts (core/kl_http.c parses it) into our fields. */
_Static_assert(sizeof(((kl_posix_bosh_t *)0)->host) == sizeof(((kl_http_url_t *)0)->host) &&
                   sizeof(((kl_posix_bosh_t *)0)->hostport) == sizeof(((kl_http_url_t *)0)->hostport) &&
                   sizeof(((kl_posix_bosh_t *)0)->path) == sizeof(((kl_http_url_t *)0)->path),
               "URL fields match kl_http_url_t");
static int parse_url(kl_posix_bosh_t *pb, const char *url)
{
    kl_http_url_t u;
    int st = kl_http_parse_url(url, &u);
    if (st != KL_OK)
        return st;
    pb->https = u.https;
    pb->port = u.port;
    memcpy(pb->host, u.host, sizeof pb->host);
    memcpy(pb->hostport, u.hostport, sizeof pb->hostport);
    memcpy(pb->path, u.path, sizeof pb->path);
    return KL_OK;
}

static void conn_close(kl_posix_bosh_conn_t *k)
{
    if (k->tls_on) {
        kl_tls_close(&k->tls);
        kl_tls_free(&k->tls);
        k->tls_on = 0;
    }
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    k->link = &k->tcp;
}

/* Open the TCP connections of conns [from, to) side by side, then their
 * TLS handshakes side by side. Round trips seen: *tcp_rt, *tls_rt. */
static int open_conns(kl_posix_bosh_t *pb, int from, int to, unsigned *tls_rt)
{
    struct addrinfo hints, *res = NULL;
    char portstr[8], buf[200];
    uint32_t t0 = kl_posix_now_ms(), deadline = t0 + pb->timeout_ms;
    int i, pending;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)pb->port);
    if (getaddrinfo(pb->host, portstr, &hints, &res) != 0 || !res) {
        snprintf(buf, sizeof buf, "cannot resolve host '%s'", pb->host);
        set_error(pb, KL_ERR_DNS, buf);
        return KL_ERR_DNS;
    }
    for (i = from; i < to; i++) {
        kl_posix_bosh_conn_t *k = &pb->conn[i];
        int one = 1;
        k->fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, res->ai_protocol);
        if (k->fd < 0)
            break;
        setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(k->fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
            close(k->fd);
            k->fd = -1;
            break;
        }
    }
    freeaddrinfo(res);
    /* wait for every connect */
    for (i = from; i < to; i++) {
        kl_posix_bosh_conn_t *k = &pb->conn[i];
        struct pollfd pfd;
        int err = 0, now;
        socklen_t el = sizeof err;
        if (k->fd < 0)
            goto refused;
        pfd.fd = k->fd;
        pfd.events = POLLOUT;
        now = (int)(deadline - kl_posix_now_ms());
        if (poll(&pfd, 1, now > 0 ? now : 0) != 1 || getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 ||
            err != 0)
            goto refused;
    }
    pb->tcp_connect_ms = kl_posix_now_ms() - t0;
    *tls_rt = 0;
    if (!pb->https)
        return KL_OK;
    t0 = kl_posix_now_ms();
    for (i = from; i < to; i++) {
        kl_posix_bosh_conn_t *k = &pb->conn[i];
        int r = kl_tls_setup(&k->tls, &pb->tls_cfg, &k->tcp);
        k->tls_on = 1;
        if (r != KL_OK) {
            set_error(pb, r, kl_tls_error_text(&k->tls, buf, sizeof buf));
            return r;
        }
    }
    do {
        struct pollfd pfd[KL_POSIX_BOSH_CONNS];
        int n = 0;
        pending = 0;
        for (i = from; i < to; i++) {
            kl_posix_bosh_conn_t *k = &pb->conn[i];
            int r;
            if (k->tls.handshake_done)
                continue;
            r = kl_tls_handshake(&k->tls);
            if (r < 0) {
                set_error(pb, r, kl_tls_error_text(&k->tls, buf, sizeof buf));
                return r;
            }
            if (r == 0) {
                pending = 1;
                pfd[n].fd = k->fd;
                pfd[n].events = POLLIN;
                n++;
            }
        }
        if (pending) {
            if ((int32_t)(kl_posix_now_ms() - deadline) >= 0) {
                set_error(pb, KL_ERR_TIMEOUT, "TLS handshake timed out");
                return KL_ERR_TIMEOUT;
            }
            poll(pfd, (nfds_t)n, 20);
        }
    } while (pending);
    for (i = from; i < to; i++) {
        kl_posix_bosh_conn_t *k = &pb->conn[i];
        k->link = kl_tls_transport(&k->tls);
        if (k->tls.round_trips > *tls_rt)
            *tls_rt = k->tls.round_trips; /* side by side: the longest one */
    }
    pb->tls_handshake_ms = kl_posix_now_ms() - t0;
    return KL_OK;
refused:
    snprintf(buf, sizeof buf, "cannot connect to %s port %u", pb->host, (unsigned)pb->port);
    set_error(pb, KL_ERR_CONNECT, buf);
    return KL_ERR_CONNECT;
}

int kl_posix_bosh_connect(kl_posix_bosh_t *pb, kl_client_t *c, const char *url,
                          const kl_tls_config_t *tls_cfg, int split_restart, uint32_t timeout_ms)
{
    kl_bosh_config_t bc;
    unsigned tls_rt = 0;
    uint32_t rid, t0;
    int i, st;
    struct timespec ts;
    memset(pb, 0, sizeof *pb);
    pb->client = c;
    pb->timeout_ms = timeout_ms;
    for (i = 0; i < KL_POSIX_BOSH_CONNS; i++) {
        pb->conn[i].fd = -1;
        pb->conn[i].slot = -1;
        pb->conn[i].owner = pb;
        pb->conn[i].tcp.ctx = &pb->conn[i];
        pb->conn[i].tcp.send = tcp_send;
        pb->conn[i].tcp.recv = tcp_recv;
        pb->conn[i].link = &pb->conn[i].tcp;
    }
    if (!url || parse_url(pb, url) != KL_OK) {
        set_error(pb, KL_ERR_ARG, "bad BOSH URL (http[s]://host[:port]/path)");
        return KL_ERR_ARG;
    }
    if (tls_cfg)
        pb->tls_cfg = *tls_cfg;
    if (!pb->tls_cfg.server_name)
        pb->tls_cfg.server_name = pb->host;
    pb->tls_cfg.alpn = NULL;
    /* rid: random start (XEP-0124 §14.1) */
    clock_gettime(CLOCK_REALTIME, &ts);
    rid = (uint32_t)ts.tv_nsec ^ ((uint32_t)ts.tv_sec << 12) ^ ((uint32_t)getpid() << 20);
    {
        FILE *f = fopen("/dev/urandom", "rb");
        if (f) {
            if (fread(&rid, 1, sizeof rid, f) != sizeof rid)
                rid ^= 0x5bd1e995u;
            fclose(f);
        }
    }
    memset(&bc, 0, sizeof bc);
    bc.host = pb->hostport;
    bc.path = pb->path;
    bc.to = kl_client_domain(c);
    bc.rid = (rid & 0x3fffffffu) | 1u;
    bc.split_restart = (uint8_t)split_restart;
    if ((st = kl_bosh_init(&pb->bosh, &bc)) != KL_OK) {
        set_error(pb, st, NULL);
        return st;
    }
    t0 = kl_posix_now_ms(); /* time to online counts TCP and TLS too, as over sockets */
    if ((st = open_conns(pb, 0, KL_POSIX_BOSH_CONNS, &tls_rt)) != KL_OK)
        return st;
    /* the stream starts after HTTP's TLS, if any: the engine needs no
     * STARTTLS, and sends a credential only over https it was told is verified */
    if ((st = kl_client_connect(c, t0, !pb->https                          ? KL_CHANNEL_CLEAR
                                       : pb->tls_cfg.insecure_skip_verify ? KL_CHANNEL_TLS
                                                                          : KL_CHANNEL_TLS_VERIFIED)) != KL_OK)
        return st;
    kl_stats_add_port_rt(c, 1 + tls_rt); /* TCP, TLS */
    return KL_OK;
}

static int error_event(kl_posix_bosh_t *pb, int status, kl_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->type = KL_EV_ERROR;
    ev->status = status;
    if (status == KL_ERR_HTTP_STATUS) {
        snprintf(pb->condition, sizeof pb->condition, "http-%d", pb->bosh.http_status);
        if (pb->last_status != status) {
            char t[512];
            snprintf(t, sizeof t, "HTTP %d from POST %s on %s", pb->bosh.http_status, pb->path, pb->hostport);
            set_error(pb, status, t);
        }
    } else if (status == KL_ERR_BOSH_TERMINATE) {
        snprintf(pb->condition, sizeof pb->condition, "%s", pb->bosh.condition);
        if (pb->last_status != status) {
            char t[512];
            snprintf(t, sizeof t, "BOSH session terminated by the connection manager (condition %s)",
                     pb->bosh.condition);
            set_error(pb, status, t);
        }
    } else if (pb->last_status != status) {
        set_error(pb, status, NULL);
    }
    ev->condition = pb->condition;
    return 1;
}

/* Write a whole request (bounded by the timeout). */
static int conn_write(kl_posix_bosh_t *pb, kl_posix_bosh_conn_t *k, const uint8_t *p, size_t n)
{
    uint32_t deadline = kl_posix_now_ms() + pb->timeout_ms;
    while (n > 0) {
        int w = k->link->send(k->link->ctx, p, n);
        if (w < 0)
            return w;
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if ((int32_t)(kl_posix_now_ms() - deadline) >= 0)
            return KL_ERR_TIMEOUT;
        {
            struct pollfd pfd = {k->fd, POLLOUT | POLLIN, 0};
            poll(&pfd, 1, 20);
        }
    }
    return KL_OK;
}

/* A connection broke (or the server closed it): the request on it is
 * resent (same rid) on a fresh connection. */
static int conn_lost(kl_posix_bosh_t *pb, int i)
{
    kl_posix_bosh_conn_t *k = &pb->conn[i];
    unsigned tls_rt = 0;
    int st, slot = k->slot;
    conn_close(k);
    k->slot = -1;
    if (slot >= 0 && (st = kl_bosh_conn_failed(&pb->bosh, slot)) < 0)
        return st;
    if (kl_bosh_done(&pb->bosh))
        return KL_OK;
    if ((st = open_conns(pb, i, i + 1, &tls_rt)) != KL_OK)
        return st;
    if (!pb->online)
        kl_stats_add_port_rt(pb->client, 1 + tls_rt);
    return KL_OK;
}

static int dispatch(kl_posix_bosh_t *pb)
{
    for (;;) {
        const uint8_t *req;
        size_t len;
        int i, idle = -1, slot, st;
        for (i = 0; i < KL_POSIX_BOSH_CONNS; i++)
            if (pb->conn[i].slot < 0 && pb->conn[i].fd >= 0) {
                idle = i;
                break;
            }
        if (idle < 0)
            return KL_OK;
        if ((slot = kl_bosh_next_request(&pb->bosh, &req, &len)) < 0)
            return KL_OK;
        pb->conn[idle].slot = slot;
        if (getenv("KL_BOSH_TRACE")) /* debugging aid: every request on stderr */
            fprintf(stderr, "  C->S [conn %d] %.*s\n", idle, (int)len, (const char *)req);
        if (!pb->online && pb->bosh.round_trips > pb->counted_rounds) {
            /* the engine counted its one flight; each further round of
             * requests the login waits on is a round trip too */
            if (pb->counted_rounds > 0)
                kl_stats_add_port_rt(pb->client, pb->bosh.round_trips - pb->counted_rounds);
            pb->counted_rounds = pb->bosh.round_trips;
        }
        if ((st = conn_write(pb, &pb->conn[idle], req, len)) != KL_OK) {
            if ((st = conn_lost(pb, idle)) != KL_OK)
                return st;
        }
    }
}

/* Read what is there on the busy connections. 1 if anything arrived. */
static int read_conns(kl_posix_bosh_t *pb, int *err)
{
    uint8_t buf[4096];
    int i, any = 0;
    *err = KL_OK;
    for (i = 0; i < KL_POSIX_BOSH_CONNS; i++) {
        kl_posix_bosh_conn_t *k = &pb->conn[i];
        int n, r;
        size_t used;
        if (k->fd < 0 || k->slot < 0)
            continue;
        n = k->link->recv(k->link->ctx, buf, sizeof buf);
        if (n == 0)
            continue;
        if (n < 0) {
            if ((r = conn_lost(pb, i)) != KL_OK) {
                *err = r;
                return 1;
            }
            any = 1;
            continue;
        }
        any = 1;
        r = kl_bosh_response(&pb->bosh, k->slot, buf, (size_t)n, &used);
        if (r < 0) {
            *err = r;
            return 1;
        }
        if (r == 1 && getenv("KL_BOSH_TRACE")) {
            const kl_http_resp_t *hr = &pb->bosh.slot[k->slot].resp;
            fprintf(stderr, "  S->C [conn %d] HTTP %d %.*s\n", i, hr->status, (int)hr->body_len, (const char *)hr->body);
        }
        if (r == 1) {
            int close_it = pb->bosh.slot[k->slot].resp.close;
            k->slot = -1;
            if (close_it) {
                unsigned tls_rt = 0;
                conn_close(k);
                if (!kl_bosh_done(&pb->bosh) && (r = open_conns(pb, i, i + 1, &tls_rt)) != KL_OK) {
                    *err = r;
                    return 1;
                }
            }
        }
    }
    return any;
}

int kl_posix_bosh_step(kl_posix_bosh_t *pb, uint32_t wait_ms, kl_event_t *ev)
{
    uint32_t start = kl_posix_now_ms();
    if (!pb || !pb->client || !ev)
        return KL_ERR_ARG;
    for (;;) {
        kl_client_t *c = pb->client;
        uint32_t now = kl_posix_now_ms(), left, tmo;
        struct pollfd pfd[KL_POSIX_BOSH_CONNS];
        int r, i, n = 0, err;
        r = kl_engine_poll(c, now, ev);
        if (r < 0)
            return r;
        if (r > 0) {
            if (ev->type == KL_EV_ONLINE) {
                pb->online = 1;
                pb->wire_in_online = pb->wire_in;
                pb->wire_out_online = pb->wire_out;
                pb->http_round_trips_online = pb->bosh.round_trips;
                pb->requests_online = pb->bosh.requests_sent;
            }
            if (ev->type == KL_EV_ERROR || ev->type == KL_EV_CLOSED) {
                /* best effort: let the terminate go out */
                (void)kl_bosh_pull(&pb->bosh, c);
                (void)dispatch(pb);
            }
            return 1;
        }
        if ((r = kl_bosh_pull(&pb->bosh, c)) < 0)
            return error_event(pb, r, ev);
        if ((r = dispatch(pb)) < 0)
            return error_event(pb, r, ev);
        r = kl_bosh_push(&pb->bosh, c);
        if (r < 0)
            return error_event(pb, r, ev);
        if (r > 0)
            continue;
        if (read_conns(pb, &err)) {
            if (err < 0)
                return error_event(pb, err, ev);
            continue;
        }
        now = kl_posix_now_ms();
        left = (uint32_t)(now - start) >= wait_ms ? 0 : wait_ms - (now - start);
        if (left == 0)
            return 0;
        tmo = kl_engine_next_timeout(c, now);
        if (tmo > left)
            tmo = left;
        if (tmo == 0)
            continue;
        for (i = 0; i < KL_POSIX_BOSH_CONNS; i++)
            if (pb->conn[i].fd >= 0 && pb->conn[i].slot >= 0) {
                /* TLS may hold decrypted bytes the socket no longer shows */
                if (pb->conn[i].tls_on && mbedtls_ssl_get_bytes_avail(&pb->conn[i].tls.ssl) > 0)
                    tmo = 0;
                pfd[n].fd = pb->conn[i].fd;
                pfd[n].events = POLLIN;
                n++;
            }
        if (tmo == 0)
            continue;
        if (n)
            poll(pfd, (nfds_t)n, tmo > 0x7fffffffu ? -1 : (int)tmo);
        else
            poll(NULL, 0, (int)(tmo > 50 ? 50 : tmo));
    }
}

void kl_posix_bosh_close(kl_posix_bosh_t *pb)
{
    int i;
    for (i = 0; i < KL_POSIX_BOSH_CONNS; i++)
        conn_close(&pb->conn[i]);
}
