/* kinglet — lwIP port for BOSH (XEP-0124/0206): kl_bosh and the engine
 * over up to two kl_lwip_conn_t (one long poll held while the other
 * sends), each over TCP or TLS (kl_tls over the connection, server_name
 * from tls_cfg or else the URL's host, no ALPN). NO_SYS main loops; never
 * blocks, no malloc (lwIP's pools and mbedTLS's allocator only).
 *
 *   cfg.direct_tls = 1; cfg.pipelining = KL_PIPELINING_FULL; cfg.force_full = 1;
 *   (plain http:// also needs cfg.allow_plaintext = 1: the application's choice)
 *   kl_lwip_bosh_start(&b, &client, "https://server.example:5281/http-bind", &tls_cfg, 0, 20000);
 *   for (;;) {
 *       poll_the_nic(); sys_check_timeouts();
 *       while (kl_lwip_bosh_step(&b, &ev) > 0) handle(&ev);
 *       sleep_until(min(nic irq, kl_lwip_bosh_next_timeout(&b), lwIP timers));
 *   }
 *   kl_lwip_bosh_close(&b);
 *
 * Both connections are opened at once and their TLS handshakes run side by
 * side; the engine starts (kl_client_connect) when both are up. Round
 * trips up to online, as kl_posix_bosh counts them: TCP (1) + the longest
 * TLS handshake's + each further round of HTTP requests the login waited
 * on (kl_bosh_t.round_trips), added to the engine's kl_stats as port round
 * trips. A connection that breaks or that the server closes is opened
 * again (its request resent once with the same rid, by kl_bosh).
 *
 * Two TCP pcbs (MEMP_NUM_TCP_PCB >= 2; one more per connection that may be
 * re-opened while the old one lingers in TIME_WAIT) and, over https, two
 * TLS sessions in the mbedTLS heap.
 */
#ifndef KINGLET_KL_LWIP_BOSH_H
#define KINGLET_KL_LWIP_BOSH_H

#include <stdint.h>

#include "kinglet/kinglet.h"
#include "kinglet/kl_bosh.h"
#include "kl_lwip.h"
#include "kl_tls.h"

#define KL_LWIP_BOSH_CONNS KL_BOSH_SLOTS

enum { KL_LWIP_BC_OFF = 0, KL_LWIP_BC_TCP, KL_LWIP_BC_TLS, KL_LWIP_BC_READY };

typedef struct kl_lwip_bosh_conn {
    kl_lwip_conn_t conn;
    kl_tls_t tls;
    uint8_t tls_on;           /* kl_tls_free owed */
    uint8_t state;            /* KL_LWIP_BC_* */
    uint8_t reopened;         /* opened again after the login started */
    int slot;                 /* kl_bosh slot of the request on it, -1 idle */
    kl_transport_t *link;     /* conn.tcp or the TLS session */
    const uint8_t *req;       /* the request being written (kl_bosh's slot buffer) */
    size_t req_len, req_off;
    uint32_t t_open;
} kl_lwip_bosh_conn_t;

typedef enum kl_lwip_bosh_phase {
    KL_LWIP_BOSH_CONNECT = 0, /* TCP (and TLS) of both connections */
    KL_LWIP_BOSH_RUN,
    KL_LWIP_BOSH_DONE         /* an error or close event was returned */
} kl_lwip_bosh_phase_t;

typedef struct kl_lwip_bosh {
    kl_client_t *client;      /* borrowed */
    kl_bosh_t bosh;
    kl_lwip_bosh_conn_t conn[KL_LWIP_BOSH_CONNS];
    kl_lwip_bosh_phase_t phase;
    int https;
    uint16_t port;
    char host[128];           /* from the URL */
    char hostport[140];       /* Host header */
    char path[256];
    kl_tls_config_t tls_cfg;  /* copied (strings borrowed) */
    uint32_t timeout_ms;      /* connect + TLS handshake */
    uint32_t t_start;
    uint32_t counted_rounds;  /* bosh rounds already added to the engine's stats */
    unsigned long wire_in_online, wire_out_online;
    uint32_t tcp_connect_ms, tls_handshake_ms;
    uint32_t http_round_trips_online; /* kl_bosh round_trips at online */
    uint32_t requests_online;         /* HTTP requests sent up to online */
    unsigned reconnects;      /* connections opened again */
    unsigned long wire_in_closed, wire_out_closed; /* of connections closed before */
    int online;
    int last_status;
    char condition[64];
    char error_text[256];
    kl_lwip_trace_fn trace;   /* requests ('o') and response bodies ('i'), milestones */
    void *trace_arg;
} kl_lwip_bosh_t;

/* url: http://host[:port]/path or https://host[:port]/path (ports default
 * 80 / 443); host dotted IPv4 or a name for lwIP's DNS. tls_cfg (copied;
 * server_name from the URL if NULL; alpn cleared) is used for https.
 * split_restart: see kl_bosh.h. rid: the first BOSH rid (random; 0: from
 * LWIP_RAND / sys_now). Starts both connections. KL_OK or KL_ERR_ARG (bad
 * URL), KL_ERR_DNS, KL_ERR_CONNECT; error_text says more. */
int kl_lwip_bosh_start(kl_lwip_bosh_t *b, kl_client_t *c, const char *url, const kl_tls_config_t *tls_cfg,
                       int split_restart, uint32_t rid, uint32_t timeout_ms);

/* As kl_lwip_session_step(): 1 with an event, 0 when nothing more can be
 * done now. HTTP and BOSH failures come back as KL_EV_ERROR with
 * ev.status one of KL_ERR_HTTP_* / KL_ERR_BOSH_* and ev.condition the BOSH
 * condition ("http-404" for an HTTP status). < 0 only for misuse. */
int kl_lwip_bosh_step(kl_lwip_bosh_t *b, kl_event_t *ev);

/* Milliseconds until step wants to run for a timer, or UINT32_MAX. */
uint32_t kl_lwip_bosh_next_timeout(const kl_lwip_bosh_t *b);

/* close_notify (https), FIN on both connections, TLS sessions freed. */
void kl_lwip_bosh_close(kl_lwip_bosh_t *b);

/* TLS version of the first connection ("none" over http). */
const char *kl_lwip_bosh_tls_version(const kl_lwip_bosh_t *b);

/* Bytes through TCP on both connections. */
unsigned long kl_lwip_bosh_wire_in(const kl_lwip_bosh_t *b);
unsigned long kl_lwip_bosh_wire_out(const kl_lwip_bosh_t *b);

#endif
