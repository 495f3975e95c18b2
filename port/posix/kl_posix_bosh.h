/* kinglet — POSIX port for BOSH (XEP-0124/0206): up to two HTTP/1.1
 * keep-alive connections (one long poll held while the other sends), over
 * TCP or TLS (kl_tls; server_name from the URL's host, no ALPN), driving
 * kl_bosh and the engine. Returns the same events as kl_posix_step().
 *
 *   cfg.direct_tls = 1; cfg.pipelining = KL_PIPELINING_FULL; cfg.force_full = 1;
 *   (plain http:// also needs cfg.allow_plaintext = 1: the application's choice)
 *   kl_posix_bosh_connect(&pb, &c, "https://example.org:5281/http-bind", &tls_cfg, 0, timeout);
 *   while ((r = kl_posix_bosh_step(&pb, 1000, &ev)) >= 0) { if (r) handle(&ev); }
 *
 * Both connections are opened at once (their TCP and TLS handshakes run
 * side by side, so the second costs no round trip of its own).
 * Round trips up to online: TCP (1) + the TLS handshake's + each round of
 * requests the client had to wait on (kl_bosh_t.round_trips); the extra
 * rounds are added to the engine's kl_stats as port round trips.
 */
#ifndef KINGLET_KL_POSIX_BOSH_H
#define KINGLET_KL_POSIX_BOSH_H

#include <stdint.h>

#include "kinglet/kinglet.h"
#include "kinglet/kl_bosh.h"
#include "kl_tls.h"

#define KL_POSIX_BOSH_CONNS KL_BOSH_SLOTS

typedef struct kl_posix_bosh_conn {
    int fd;
    int tls_on;
    int slot;                 /* kl_bosh slot of the request on it, -1 idle */
    kl_transport_t tcp;
    kl_transport_t *link;
    kl_tls_t tls;
    struct kl_posix_bosh *owner;
} kl_posix_bosh_conn_t;

typedef struct kl_posix_bosh {
    kl_client_t *client;
    kl_bosh_t bosh;
    kl_posix_bosh_conn_t conn[KL_POSIX_BOSH_CONNS];
    int https;
    uint16_t port;
    char host[128];           /* from the URL */
    char hostport[140];       /* Host header */
    char path[256];
    kl_tls_config_t tls_cfg;
    uint32_t timeout_ms;
    uint32_t counted_rounds;  /* bosh rounds already added to the engine's stats */
    unsigned long wire_in, wire_out, wire_in_online, wire_out_online;
    uint32_t tcp_connect_ms, tls_handshake_ms;
    uint32_t http_round_trips_online; /* kl_bosh round_trips at online */
    uint32_t requests_online;         /* HTTP requests sent up to online */
    int online;
    int last_status;
    char condition[64];
    char error_text[512];
} kl_posix_bosh_t;

/* url: http://host[:port]/path or https://host[:port]/path (ports default
 * 80 / 443). tls_cfg (copied; server_name is set from the URL if NULL) is
 * used for https. split_restart: see kl_bosh.h (0 for Prosody's path).
 * Connects, then kl_client_connect(). KL_OK, KL_ERR_ARG (bad URL),
 * KL_ERR_DNS, KL_ERR_CONNECT, or a TLS error; error_text says more. */
int kl_posix_bosh_connect(kl_posix_bosh_t *pb, kl_client_t *c, const char *url,
                          const kl_tls_config_t *tls_cfg, int split_restart, uint32_t timeout_ms);

/* As kl_posix_step(): 1 with an event, 0 when wait_ms passed. HTTP and
 * BOSH failures come back as KL_EV_ERROR with ev.status one of the
 * KL_ERR_HTTP_* / KL_ERR_BOSH_* codes (kl_strerror names them) and
 * ev.condition the BOSH condition ("http-404" for an HTTP status). */
int kl_posix_bosh_step(kl_posix_bosh_t *pb, uint32_t wait_ms, kl_event_t *ev);

void kl_posix_bosh_close(kl_posix_bosh_t *pb);

#endif
