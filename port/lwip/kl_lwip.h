/* kinglet — lwIP port: the engine over lwIP's raw TCP API, for NO_SYS=1
 * main loops (or an RTOS with the lwIP core lock held around every call).
 *
 * Two layers, both caller-allocated, nothing malloc'ed (lwIP allocates
 * only from its own static pools):
 *
 *   kl_lwip_conn_t     one TCP connection as a kl_transport_t. Received
 *                      pbufs stay queued, unacknowledged, until recv copies
 *                      bytes out of them; tcp_recved() is called for exactly
 *                      those bytes, so a slow reader closes lwIP's window
 *                      (TCP_WND bounds the queue). send takes what
 *                      tcp_sndbuf() allows (tcp_write, copied); flushing
 *                      with tcp_output() is the caller's, once per flight.
 *   kl_lwip_session_t  the driver (like kl_posix): connect, STARTTLS with
 *                      port/mbedtls over the same pcb, pump the engine.
 *
 * The main loop a firmware runs:
 *
 *   kl_lwip_session_start(&s, &client, "10.0.2.100", 5222, &tls_cfg, 20000);
 *   for (;;) {
 *       poll_the_nic();                 // netif->input() for received frames
 *       sys_check_timeouts();           // lwIP timers
 *       while (kl_lwip_session_step(&s, &ev) > 0) handle(&ev);
 *       sleep_until(min(nic irq, kl_lwip_session_next_timeout(&s), lwIP timers));
 *   }
 *
 * Nothing here waits: every function returns at once.
 * Integration: the connection installs its own tcp_arg/recv/sent/err
 * callbacks on the pcb it creates; lwipopts.h needs LWIP_TCP, NO_SYS or
 * the core lock, and (for names) LWIP_DNS. See port/lwip/lwipopts.h for
 * the pool sizes one connection needs.
 */
#ifndef KINGLET_KL_LWIP_H
#define KINGLET_KL_LWIP_H

#include <stddef.h>
#include <stdint.h>

#include "lwip/ip_addr.h"
#include "lwip/tcp.h"

#include "kinglet/kinglet.h"
#include "kinglet/kl_dns.h"
#include "kinglet/kl_transport.h"
#include "kl_tls.h"

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

/* ---- the session driver -------------------------------------------------- */

/* Called for every chunk of plaintext XML the engine sends (dir 'o') or
 * receives (dir 'i'), and with len 0 and a note for connection milestones.
 * Same shape as kl_posix_trace_fn. */
typedef void (*kl_lwip_trace_fn)(void *arg, char dir, const uint8_t *data, size_t len,
                                 const char *note);

typedef enum kl_lwip_phase {
    KL_LWIP_PH_CONNECT = 0, /* TCP (and DNS) in progress */
    KL_LWIP_PH_RUN,         /* the engine runs over link */
    KL_LWIP_PH_TLS_FLUSH,   /* KL_EV_START_TLS: sending what precedes it (then the
                               TLS handshake; or, early, the ClientHello behind it) */
    KL_LWIP_PH_TLS,         /* TLS handshake */
    KL_LWIP_PH_DONE         /* an error or close event was returned */
} kl_lwip_phase_t;

typedef struct kl_lwip_session {
    kl_lwip_conn_t conn;
    kl_client_t *client;         /* borrowed */
    kl_transport_t *link;        /* conn.tcp, or the TLS session over it */
    kl_tls_t tls;
    int tls_on;
    kl_tls_config_t tls_cfg;     /* copied at start */
    kl_lwip_phase_t phase;
    uint32_t timeout_ms;         /* connect and TLS handshake each */
    uint32_t t_start, t_phase;
    uint32_t tcp_connect_ms, tls_handshake_ms;
    unsigned long wire_in_online, wire_out_online;
    size_t max_read_per_step;    /* 0: unlimited; else at most this many plaintext
                                    bytes go into the engine per step (a slow reader) */
    int last_status;
    char error_text[160];        /* human-readable detail of the last failure */
    kl_lwip_trace_fn trace;
    void *trace_arg;
    /* XEP-0305 full: the ClientHello went out behind <starttls/> (early
     * KL_EV_START_TLS); TLS reads are held until <proceed/>. */
    uint8_t early_pending;       /* internal: the early start waits for the flush */
    uint8_t early_tls;           /* the handshake was started early */
    uint8_t proceed_pending;     /* internal: <proceed/> came, the handshake resumes */
    kl_slice_t tls_data;         /* internal: bytes after <proceed/> (the engine's) */
    /* TLS session resumption through the connection-hints cache
     * (cfg.cache, read through kl_cache_tls_session: only from hints that
     * kl_cache_load authenticated with the device key): the blob is offered
     * at the next connect to the same domain; a newer one is saved into the
     * cache (and sealed) as soon as mbedTLS has one after online;
     * kl_cache_store MACs it (or drops it without a key) before persisting. */
    uint8_t session_from_cache;  /* the TLS config's blob came from the cache */
    uint8_t session_saved;       /* a session was written into the cache */
    int session_save_status;     /* last kl_tls_session_save result (KL_OK, ...) */
} kl_lwip_session_t;

/* Begin: resolve/connect host:port; the engine is started
 * (kl_client_connect) when TCP is up, TLS at KL_EV_START_TLS (or at once
 * with cfg.direct_tls). timeout_ms bounds the TCP connect and the TLS
 * handshake each. tls_cfg is copied (its strings are borrowed). Returns
 * KL_OK or an error (error_text says more). */
int kl_lwip_session_start(kl_lwip_session_t *s, kl_client_t *c, const char *host, uint16_t port,
                          const kl_tls_config_t *tls_cfg, uint32_t timeout_ms);

/* Do whatever can be done now without waiting; returns 1 with an event
 * for the application, 0 when there is nothing more until the link
 * delivers, lwIP's timers run or time passes. KL_EV_START_TLS is handled
 * inside. Connection, TLS and timeout failures come back as KL_EV_ERROR.
 * After KL_EV_ERROR / KL_EV_CLOSED call kl_lwip_session_close(). Returns
 * < 0 only for misuse. Must not be called from an lwIP callback. */
int kl_lwip_session_step(kl_lwip_session_t *s, kl_event_t *ev);

/* Milliseconds until step wants to run for a timer (engine or handshake
 * deadline), or UINT32_MAX. */
uint32_t kl_lwip_session_next_timeout(const kl_lwip_session_t *s);

/* close_notify (if TLS is up), FIN, and free the TLS session. The pcb is
 * lwIP's from here on: keep running the main loop until it has gone
 * (tcp_active_pcbs empty) if the FIN must reach the peer. */
void kl_lwip_session_close(kl_lwip_session_t *s);

/* 1 if the TLS handshake of this session resumed an offered session. */
int kl_lwip_session_tls_resumed(const kl_lwip_session_t *s);

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
