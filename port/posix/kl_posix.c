/* kinglet — POSIX port. */
#define _POSIX_C_SOURCE 200809L
#include "kl_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int tcp_send(void *ctx, const uint8_t *buf, size_t len)
{
    kl_posix_t *p = ctx;
    /* MSG_MORE while corked: the next write (the ClientHello) joins this
     * one in the same segment, so the server reads the flight at once */
    ssize_t n = send(p->fd, buf, len, MSG_NOSIGNAL | (p->cork ? MSG_MORE : 0));
    if (n >= 0) {
        p->wire_out += (unsigned long)n;
        return (int)n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    return errno == EPIPE || errno == ECONNRESET ? KL_ERR_CONN_CLOSED : KL_ERR_IO;
}

static int tcp_recv(void *ctx, uint8_t *buf, size_t len)
{
    kl_posix_t *p = ctx;
    ssize_t n = recv(p->fd, buf, len, 0);
    if (n > 0) {
        p->wire_in += (unsigned long)n;
        return (int)n;
    }
    if (n == 0)
        return KL_ERR_CONN_CLOSED;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    return errno == ECONNRESET ? KL_ERR_CONN_CLOSED : KL_ERR_IO;
}

static int wait_fd(int fd, short events, uint32_t timeout_ms)
{
    struct pollfd pfd = {fd, events, 0};
    int r = poll(&pfd, 1, timeout_ms > 0x7fffffffu ? -1 : (int)timeout_ms);
    return r > 0 ? 1 : r;
}

static int start_tls(kl_posix_t *p);
static int tls_finish(kl_posix_t *p);

static void set_error(kl_posix_t *p, int status, const char *detail)
{
    p->last_status = status;
    snprintf(p->error_text, sizeof p->error_text, "%s", detail ? detail : kl_strerror(status));
}

int kl_posix_connect(kl_posix_t *p, kl_client_t *c, const char *host, uint16_t port,
                     const kl_tls_config_t *tls_cfg, uint32_t timeout_ms)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[8];
    uint32_t t0 = kl_posix_now_ms();
    int st = KL_ERR_CONNECT;

    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->client = c;
    p->handshake_timeout_ms = timeout_ms;
    if (tls_cfg)
        p->tls_cfg = *tls_cfg;
    p->tcp.ctx = p;
    p->tcp.send = tcp_send;
    p->tcp.recv = tcp_recv;
    p->link = &p->tcp;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res) {
        set_error(p, KL_ERR_DNS, NULL);
        snprintf(p->error_text, sizeof p->error_text, "cannot resolve host '%s'", host);
        return KL_ERR_DNS;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        int one = 1, err = 0;
        socklen_t el = sizeof err;
        if (fd < 0)
            continue;
        /* Flights are written whole, then flushed: Nagle would hold the
         * second write of a flight a round trip behind a delayed ACK. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            close(fd);
            continue;
        }
        if (wait_fd(fd, POLLOUT, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 ||
            err != 0) {
            close(fd);
            continue;
        }
        p->fd = fd;
        break;
    }
    freeaddrinfo(res);
    if (p->fd < 0) {
        set_error(p, st, NULL);
        snprintf(p->error_text, sizeof p->error_text, "cannot connect to %s port %u", host, (unsigned)port);
        return st;
    }
    p->tcp_connect_ms = kl_posix_now_ms() - t0;

    if (c->cfg.direct_tls) {
        /* XEP-0368: TLS from the first byte, ALPN "xmpp-client". */
        if (!p->tls_cfg.alpn)
            p->tls_cfg.alpn = "xmpp-client";
        if ((st = start_tls(p)) != KL_OK)
            return st;
    }
    if ((st = kl_client_connect(c, t0, !c->cfg.direct_tls              ? KL_CHANNEL_STARTTLS
                                       : p->tls_cfg.insecure_skip_verify ? KL_CHANNEL_TLS
                                                                         : KL_CHANNEL_TLS_VERIFIED)) != KL_OK)
        return st;
    kl_stats_add_port_rt(c, 1); /* the TCP handshake */
    if (c->cfg.direct_tls)
        kl_stats_add_port_rt(c, p->tls.round_trips);
    return KL_OK;
}

/* Set up TLS over the socket. */
static int tls_begin(kl_posix_t *p)
{
    char buf[128];
    int r = kl_tls_setup(&p->tls, &p->tls_cfg, &p->tcp);
    p->tls_t0 = kl_posix_now_ms();
    if (r != KL_OK) {
        set_error(p, r, kl_tls_error_text(&p->tls, buf, sizeof buf));
        return r;
    }
    p->tls_on = 1;
    if (p->trace)
        p->trace(p->trace_arg, 'o', NULL, 0, "TLS handshake starts");
    return KL_OK;
}

/* Drive the handshake to its end (bounded by handshake_timeout_ms). */
static int tls_finish(kl_posix_t *p)
{
    char buf[128];
    uint32_t deadline = kl_posix_now_ms() + p->handshake_timeout_ms;
    int r;
    for (;;) {
        uint32_t now;
        r = kl_tls_handshake(&p->tls);
        if (r == 1)
            break;
        if (r < 0) {
            set_error(p, r, kl_tls_error_text(&p->tls, buf, sizeof buf));
            return r;
        }
        now = kl_posix_now_ms();
        if ((int32_t)(now - deadline) >= 0) {
            set_error(p, KL_ERR_TIMEOUT, "TLS handshake timed out");
            return KL_ERR_TIMEOUT;
        }
        wait_fd(p->fd, POLLIN, 20u < deadline - now ? 20u : deadline - now);
    }
    p->tls_handshake_ms = kl_posix_now_ms() - p->tls_t0;
    p->link = kl_tls_transport(&p->tls);
    if (p->early_tls) {
        /* full: the handshake's first wait was the same as the engine's
         * wait for <proceed/>, already counted by the engine */
        if (p->tls.round_trips > 1)
            kl_stats_add_port_rt(p->client, p->tls.round_trips - 1);
    } else if (!p->client->cfg.direct_tls) { /* direct TLS: counted once the session starts */
        kl_stats_add_port_rt(p->client, p->tls.round_trips);
    }
    if (p->trace) {
        char note[128];
        snprintf(note, sizeof note, "TLS up: %s, %u round trip(s)%s, certificate verified",
                 kl_tls_version(&p->tls), p->tls.round_trips,
                 p->early_tls ? " (the first shared with <starttls/>)" : "");
        p->trace(p->trace_arg, 'i', NULL, 0, note);
    }
    return KL_OK;
}

static int start_tls(kl_posix_t *p)
{
    int r = tls_begin(p);
    return r == KL_OK ? tls_finish(p) : r;
}

/* XEP-0305 full: the ClientHello right behind <starttls/>; the server's
 * bytes keep going to the engine until <proceed/>. */
static int start_tls_early(kl_posix_t *p)
{
    char buf[128];
    int r = tls_begin(p);
    if (r != KL_OK)
        return r;
    p->early_tls = 1;
    kl_tls_hold_reads(&p->tls, 1);
    r = kl_tls_handshake(&p->tls); /* writes the ClientHello, then waits */
    if (r < 0) {
        set_error(p, r, kl_tls_error_text(&p->tls, buf, sizeof buf));
        return r;
    }
    return KL_OK;
}

int kl_posix_flush(kl_posix_t *p, uint32_t timeout_ms)
{
    uint32_t deadline = kl_posix_now_ms() + timeout_ms;
    size_t len;
    const uint8_t *out;
    while ((out = kl_engine_output(p->client, &len)), len > 0) {
        int n = p->link->send(p->link->ctx, out, len);
        if (n < 0)
            return n;
        if (n > 0) {
            if (p->trace)
                p->trace(p->trace_arg, 'o', out, (size_t)n, NULL);
            kl_engine_output_ack(p->client, (size_t)n);
            continue;
        }
        if ((int32_t)(kl_posix_now_ms() - deadline) >= 0)
            return KL_ERR_TIMEOUT;
        wait_fd(p->fd, POLLOUT, 50);
    }
    return KL_OK;
}

static int error_event(kl_posix_t *p, int status, kl_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->type = KL_EV_ERROR;
    ev->status = status;
    ev->condition = "";
    if (p->last_status != status)
        set_error(p, status, NULL);
    return 1;
}

int kl_posix_step(kl_posix_t *p, uint32_t wait_ms, kl_event_t *ev)
{
    uint32_t start = kl_posix_now_ms();
    if (!p || !p->client || p->fd < 0)
        return KL_ERR_ARG;
    for (;;) {
        kl_client_t *c = p->client;
        uint32_t now = kl_posix_now_ms(), left, tmo;
        size_t cap;
        uint8_t *in;
        int r = kl_engine_poll(c, now, ev);
        if (r < 0)
            return r;
        if (r > 0) {
            if (ev->type == KL_EV_START_TLS) {
                int st;
                p->cork = ev->early; /* full: header + <starttls/> + ClientHello together */
                st = kl_posix_flush(p, p->handshake_timeout_ms);
                p->cork = 0;
                if (st == KL_OK && ev->early) {
                    st = start_tls_early(p);
                    if (st != KL_OK)
                        return error_event(p, st, ev);
                    continue;
                }
                if (st == KL_OK && p->early_tls) {
                    /* <proceed/> came: what followed it is the server's handshake */
                    kl_tls_set_preread(&p->tls, ev->tls_data.p, ev->tls_data.len);
                    kl_tls_hold_reads(&p->tls, 0);
                    st = tls_finish(p);
                } else if (st == KL_OK) {
                    st = start_tls(p);
                }
                if (st != KL_OK)
                    return error_event(p, st, ev);
                kl_engine_tls_done(c, !p->tls_cfg.insecure_skip_verify);
                continue;
            }
            if (ev->type == KL_EV_ONLINE) {
                p->wire_in_online = p->wire_in;
                p->wire_out_online = p->wire_out;
            }
            if (ev->type == KL_EV_ERROR || ev->type == KL_EV_CLOSED)
                (void)kl_posix_flush(p, 1000);
            return 1;
        }
        if ((r = kl_posix_flush(p, 5000)) != KL_OK)
            return error_event(p, r, ev);
        in = kl_engine_input_buf(c, &cap);
        if (cap > 0) {
            int n = p->link->recv(p->link->ctx, in, cap);
            if (n > 0) {
                if (p->trace)
                    p->trace(p->trace_arg, 'i', in, (size_t)n, NULL);
                kl_engine_input_ack(c, (size_t)n);
                continue;
            }
            if (n < 0) {
                if (n == KL_ERR_TLS_CERT || n == KL_ERR_TLS || n == KL_ERR_TLS_RECORD_TOO_LARGE) {
                    char buf[128];
                    set_error(p, n, kl_tls_error_text(&p->tls, buf, sizeof buf));
                }
                return error_event(p, n, ev);
            }
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
        wait_fd(p->fd, POLLIN, tmo);
    }
}

void kl_posix_close(kl_posix_t *p)
{
    if (p->tls_on) {
        kl_tls_close(&p->tls);
        kl_tls_free(&p->tls);
        p->tls_on = 0;
    }
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
}
