/* kinglet — lwIP port, the network layer: TCP connections and SRV lookups
 * over lwIP's raw API, for NO_SYS=1 main loops (or an RTOS with the lwIP
 * core lock held around every call). Caller-allocated, nothing malloc'ed
 * (lwIP allocates only from its own static pools); nothing here waits.
 *
 *   kl_lwip_conn_t   one TCP connection as a kl_transport_t. Received
 *                    pbufs stay queued, unacknowledged, until recv copies
 *                    bytes out of them; tcp_recved() is called for exactly
 *                    those bytes, so a slow reader closes lwIP's window
 *                    (TCP_WND bounds the queue). send takes what
 *                    tcp_sndbuf() allows (tcp_write, copied); flushing
 *                    with tcp_output() is the caller's, once per flight.
 *   kl_lwip_net_t    KL_SESSION_SLOTS connections as the connection
 *                    manager's byte transport (kl_lwip_net_ops, a
 *                    kl_net_ops_t: include/kinglet/kl_session.h).
 *   kl_lwip_srv_t    _xmpps-client / _xmpp-client SRV lookup over UDP.
 *
 * With the manager (TLS from port/mbedtls/kl_tls_bind.h):
 *
 *   static kl_lwip_net_t net;               // zeroed, or kl_lwip_net_init
 *   scfg.net = &kl_lwip_net_ops;
 *   scfg.net_ctx = &net;
 *   kl_session_init(&s, &scfg);
 *   kl_session_start(&s, sys_now());
 *   for (;;) {
 *       poll_the_nic();                     // netif->input() for received frames
 *       sys_check_timeouts();               // lwIP timers
 *       while (kl_session_step(&s, sys_now(), &ev) > 0) handle(&ev);
 *       sleep_until(min(nic irq, kl_session_next_timeout(&s, sys_now()), lwIP timers));
 *   }
 *
 * Integration: a connection installs its own tcp_arg/recv/err callbacks on
 * the pcb it creates; lwipopts.h needs LWIP_TCP, NO_SYS or the core lock,
 * and (for names) LWIP_DNS. See port/lwip/lwipopts.h for the pool sizes.
 */
#ifndef KINGLET_KL_LWIP_NET_H
#define KINGLET_KL_LWIP_NET_H

#include <stddef.h>
#include <stdint.h>

#include "lwip/ip_addr.h"
#include "lwip/tcp.h"

#include "kinglet/kinglet.h"
#include "kinglet/kl_dns.h"
#include "kinglet/kl_session.h"
#include "kinglet/kl_transport.h"

/* ---- one TCP connection ---------------------------------------------------- */
typedef enum kl_lwip_state {
    KL_LWIP_IDLE = 0,
    KL_LWIP_RESOLVING,   /* waiting for lwIP's DNS */
    KL_LWIP_CONNECTING,  /* SYN sent */
    KL_LWIP_CONNECTED,
    KL_LWIP_CLOSED,      /* closed by us (pcb handed back to lwIP) */
    KL_LWIP_FAILED       /* error: see err */
} kl_lwip_state_t;

/* One TCP connection. All fields are read-only for the caller. */
typedef struct kl_lwip_conn {
    struct tcp_pcb *pcb;      /* NULL once lwIP freed it (error) or we closed it */
    kl_lwip_state_t state;
    int err;                  /* kl_status_t once FAILED (KL_ERR_CONNECT, _CONN_CLOSED, _IO, _DNS) */
    int lwip_err;             /* the err_t lwIP reported, for diagnostics */
    uint8_t fin;              /* the peer sent FIN (after the queued bytes) */
    struct pbuf *rx;          /* received, not yet read (unacknowledged) */
    uint16_t rx_off;          /* bytes of rx (its first pbuf) already read */
    uint16_t port;
    ip_addr_t addr;
    size_t rx_queued_max;     /* high-water of queued receive bytes */
    unsigned long wire_in, wire_out;  /* bytes through TCP */
    kl_transport_t tcp;       /* this connection as a transport */
    uint32_t name_hash;       /* internal: the name being resolved (a late answer
                                 for an earlier name is not taken) */
} kl_lwip_conn_t;

/* Start connecting to host (dotted IPv4, or a name through lwIP's DNS:
 * dns_gethostbyname, which also consults DNS_LOCAL_HOSTLIST). Returns
 * KL_OK (progress: see c->state), KL_ERR_ARG, KL_ERR_DNS or KL_ERR_CONNECT
 * (no pcb: MEMP_NUM_TCP_PCB). Nagle is disabled. */
int kl_lwip_conn_open(kl_lwip_conn_t *c, const char *host, uint16_t port);

/* Push what tcp_write queued (once per flight). */
void kl_lwip_conn_flush(kl_lwip_conn_t *c);

/* Bytes queued for reading (received, not yet acknowledged). */
size_t kl_lwip_conn_pending(const kl_lwip_conn_t *c);

/* Graceful close: queued receive data is dropped (and acknowledged), FIN
 * sent; lwIP finishes the close on its own timers. Falls back to an abort
 * if lwIP cannot queue the FIN. Idempotent. */
void kl_lwip_conn_close(kl_lwip_conn_t *c);
void kl_lwip_conn_abort(kl_lwip_conn_t *c);

/* ---- the connection manager's byte transport ------------------------------
 *
 * kl_lwip_net_ops over a kl_lwip_net_t: slot i is conn[i].
 *   open       kl_lwip_conn_open (a dotted IPv4 address, or a name through
 *              lwIP's DNS); a slot still open is aborted first
 *   poll_open  1 once CONNECTED, conn.err once FAILED, 0 while resolving
 *              or connecting (KL_ERR_STATE: not opened, or closed)
 *   send/recv  the connection's transport (recv: KL_ERR_CONN_CLOSED after
 *              the peer's FIN and the bytes before it)
 *   flush      tcp_output (kl_lwip_conn_flush), once per flight
 *   cork       NULL: send only queues (tcp_write), the flight leaves
 *              together at flush
 *   close      graceful (kl_lwip_conn_close: FIN; lwIP finishes on its
 *              timers); idempotent */
typedef struct kl_lwip_net {
    kl_lwip_conn_t conn[KL_SESSION_SLOTS];
    uint32_t wire_in, wire_out;  /* bytes through TCP, every slot and connection */
} kl_lwip_net_t;

/* Zeroes n (no connection may be open on it). */
void kl_lwip_net_init(kl_lwip_net_t *n);

/* 1 if recv on slot has something now (queued bytes, the peer's FIN or a
 * failure to report), 0 otherwise: the main loop need not wait for the NIC. */
int kl_lwip_net_readable(const kl_lwip_net_t *n, int slot);

extern const kl_net_ops_t kl_lwip_net_ops;

/* ---- SRV lookup over lwIP UDP (core/kl_dns.c) -------------------------------
 *
 * Non-blocking, like kl_posix_srv_candidates: _xmpps-client._tcp (direct
 * TLS, XEP-0368) first when asked, then _xmpp-client._tcp; each query is
 * sent again after half of its share of the timeout; records in RFC 2782
 * order, the glue address from the additional section when there is one.
 * Without records: (domain, 5223) direct and/or (domain, 5222), unless
 * the service is decidedly not available ("." target).
 *
 *   kl_lwip_srv_start(&r, "example.org", "10.0.2.3", 53, 0, 3000);
 *   while ((n = kl_lwip_srv_poll(&r)) == 0) run the main loop;
 *   n > 0: r.cand[0 .. n-1]; n < 0: KL_ERR_TIMEOUT, KL_ERR_DNS_*, ...
 *
 * One udp_pcb while it runs (MEMP_NUM_UDP_PCB). */
#ifndef KL_LWIP_SRV_MAX_CAND
#define KL_LWIP_SRV_MAX_CAND 6
#endif

typedef struct kl_lwip_candidate {
    char host[KL_DNS_NAME_MAX + 1]; /* SRV target or the domain itself */
    char ip[16];                    /* dotted IPv4 from the glue, or "" */
    uint16_t port;
    uint8_t direct_tls;             /* from _xmpps-client (XEP-0368) */
    uint8_t from_srv;
    uint32_t ttl;                   /* the SRV answer's TTL (0: fallback) */
} kl_lwip_candidate_t;

typedef struct kl_lwip_srv {
    struct udp_pcb *pcb;
    ip_addr_t server;
    uint16_t server_port;
    char domain[KL_DNS_NAME_MAX + 1];
    int direct_tls;
    int pass;                       /* 1: _xmpps-client, 0: _xmpp-client */
    int attempt;
    int status;                     /* 0 running, > 0 candidates, < 0 error */
    uint8_t unavailable[2];
    uint8_t got_answer;             /* internal: resp holds an answer */
    uint32_t t_start, timeout_ms, t_query;
    uint8_t query[KL_DNS_QUERY_MAX];
    int qlen;
    uint8_t resp[KL_DNS_UDP_MAX];
    size_t resp_len;
    unsigned queries_sent;
    kl_dns_srv_result_t res;
    kl_lwip_candidate_t cand[KL_LWIP_SRV_MAX_CAND];
    int n_cand;
} kl_lwip_srv_t;

/* server: dotted IPv4 of the resolver, port usually 53. Returns KL_OK or
 * KL_ERR_ARG / KL_ERR_IO (no udp_pcb). */
int kl_lwip_srv_start(kl_lwip_srv_t *r, const char *domain, const char *server, uint16_t port,
                      int direct_tls, uint32_t timeout_ms);
/* 0: still running (call again after the main loop ran); > 0: that many
 * candidates in r->cand; < 0: error. Never blocks. */
int kl_lwip_srv_poll(kl_lwip_srv_t *r);
/* Milliseconds until poll wants to run for a resend or the timeout. */
uint32_t kl_lwip_srv_next_timeout(const kl_lwip_srv_t *r);
void kl_lwip_srv_free(kl_lwip_srv_t *r);

#endif
