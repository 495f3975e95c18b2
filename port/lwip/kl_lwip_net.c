/* kinglet — lwIP port, the network layer (raw API, NO_SYS=1 friendly,
 * never blocks): TCP connections, the manager's byte transport, SRV. */
#include "kl_lwip_net.h"

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

/* FNV-1a over the name, case-folded as lwIP's DNS table compares names. */
static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch - 'A' + 'a');
        h = (h ^ ch) * 16777619u;
    }
    return h;
}

static void on_dns(const char *name, const ip_addr_t *addr, void *arg)
{
    kl_lwip_conn_t *c = arg;
    if (c->state != KL_LWIP_RESOLVING)
        return; /* closed meanwhile */
    /* lwIP cannot cancel a lookup: the answer for a name asked before the
     * connection was closed and opened again (another name) comes here too */
    if (name == NULL || name_hash(name) != c->name_hash)
        return;
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
        c->name_hash = name_hash(host);
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

/* ---- the connection manager's byte transport -------------------------------- */

void kl_lwip_net_init(kl_lwip_net_t *n)
{
    if (n != NULL)
        memset(n, 0, sizeof *n);
}

static kl_lwip_conn_t *slot_conn(void *ctx, int slot)
{
    kl_lwip_net_t *n = ctx;
    if (n == NULL || slot < 0 || slot >= KL_SESSION_SLOTS)
        return NULL;
    return &n->conn[slot];
}

int kl_lwip_net_readable(const kl_lwip_net_t *n, int slot)
{
    const kl_lwip_conn_t *c;
    if (n == NULL || slot < 0 || slot >= KL_SESSION_SLOTS)
        return 0;
    c = &n->conn[slot];
    return kl_lwip_conn_pending(c) > 0 || c->fin || c->state == KL_LWIP_FAILED;
}

static int net_open(void *ctx, int slot, const char *host, uint16_t port)
{
    kl_lwip_conn_t *c = slot_conn(ctx, slot);
    if (c == NULL)
        return KL_ERR_ARG;
    if (c->pcb != NULL) /* opened again without close: its callbacks point here */
        kl_lwip_conn_abort(c);
    return kl_lwip_conn_open(c, host, port);
}

static int net_poll_open(void *ctx, int slot)
{
    kl_lwip_conn_t *c = slot_conn(ctx, slot);
    if (c == NULL)
        return KL_ERR_ARG;
    switch (c->state) {
    case KL_LWIP_CONNECTED:
        return 1;
    case KL_LWIP_FAILED:
        return c->err;
    case KL_LWIP_RESOLVING:
    case KL_LWIP_CONNECTING:
        return 0;
    default:
        return KL_ERR_STATE; /* not opened, or closed */
    }
}

static int net_send(void *ctx, int slot, const uint8_t *buf, size_t len)
{
    kl_lwip_conn_t *c = slot_conn(ctx, slot);
    int r;
    if (c == NULL)
        return KL_ERR_ARG;
    r = conn_send(c, buf, len);
    if (r > 0)
        ((kl_lwip_net_t *)ctx)->wire_out += (uint32_t)r;
    return r;
}

static int net_recv(void *ctx, int slot, uint8_t *buf, size_t len)
{
    kl_lwip_conn_t *c = slot_conn(ctx, slot);
    int r;
    if (c == NULL)
        return KL_ERR_ARG;
    r = conn_recv(c, buf, len);
    if (r > 0)
        ((kl_lwip_net_t *)ctx)->wire_in += (uint32_t)r;
    return r;
}

static void net_flush(void *ctx, int slot)
{
    kl_lwip_conn_t *c = slot_conn(ctx, slot);
    if (c != NULL)
        kl_lwip_conn_flush(c);
}

static void net_close(void *ctx, int slot)
{
    kl_lwip_conn_t *c = slot_conn(ctx, slot);
    if (c != NULL)
        kl_lwip_conn_close(c);
}

static void net_abort(void *ctx, int slot)
{
    kl_lwip_conn_t *c = slot_conn(ctx, slot);
    if (c != NULL)
        kl_lwip_conn_abort(c);
}

static int net_readable(void *ctx, int slot)
{
    return kl_lwip_net_readable(ctx, slot);
}

const kl_net_ops_t kl_lwip_net_ops = {
    .open = net_open,
    .poll_open = net_poll_open,
    .send = net_send,
    .recv = net_recv,
    .flush = net_flush,
    .cork = NULL,
    .close = net_close,
    .readable = net_readable,
    .abort = net_abort,
};

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
