/* kinglet — POSIX port: BSD sockets, a poll loop, mbedTLS for STARTTLS.
 *
 * For Linux gateways, the host tools and the tests. One kl_posix_t per
 * connection, owned by the caller; it borrows the kl_client_t it drives.
 *
 *   kl_posix_connect(&p, &c, host, port, &tls_cfg, timeout);
 *   while ((r = kl_posix_step(&p, 1000, &ev)) >= 0) { if (r) handle(&ev); }
 */
#ifndef KINGLET_KL_POSIX_H
#define KINGLET_KL_POSIX_H

#include <stdint.h>

#include "kinglet/kinglet.h"
#include "kinglet/kl_transport.h"
#include "kl_tls.h"
#include "kl_posix_net.h" /* kl_posix_now_ms, kl_posix_random */

/* Called for every chunk of plaintext XML the engine sends (dir 'o') or
 * receives (dir 'i'), and with len 0 and a note for TLS milestones. */
typedef void (*kl_posix_trace_fn)(void *arg, char dir, const uint8_t *data, size_t len,
                                  const char *note);

typedef struct kl_posix {
    int fd;
    kl_client_t *client;
    kl_transport_t tcp;
    kl_transport_t *link;        /* tcp, or the TLS session over it */
    kl_tls_t tls;
    int tls_on;
    int early_tls;               /* XEP-0305 full: ClientHello sent before <proceed/> */
    int cork;                    /* internal: send with MSG_MORE */
    uint32_t tls_t0;
    kl_tls_config_t tls_cfg;
    uint32_t handshake_timeout_ms;
    unsigned long wire_in, wire_out;          /* bytes on the socket */
    unsigned long wire_in_online, wire_out_online;
    uint32_t tcp_connect_ms, tls_handshake_ms;
    int last_status;
    char error_text[160];        /* human-readable detail of the last failure */
    kl_posix_trace_fn trace;
    void *trace_arg;
} kl_posix_t;

/* Resolve host (numeric or a name via getaddrinfo), connect with a timeout,
 * set TCP_NODELAY, then kl_client_connect(). tls_cfg (copied) is used at
 * KL_EV_START_TLS, or at once if the client is configured for direct TLS.
 * Returns KL_OK, KL_ERR_DNS, KL_ERR_CONNECT, or a TLS error. */
int kl_posix_connect(kl_posix_t *p, kl_client_t *c, const char *host, uint16_t port,
                     const kl_tls_config_t *tls_cfg, uint32_t timeout_ms);

/* Run the engine until it has an event for the application (returns 1),
 * or wait_ms passes (returns 0). Transport and TLS failures come back as a
 * KL_EV_ERROR event. After KL_EV_ERROR/KL_EV_CLOSED the output has been
 * flushed and the caller should kl_posix_close(). Returns < 0 only for
 * misuse. */
int kl_posix_step(kl_posix_t *p, uint32_t wait_ms, kl_event_t *ev);

/* Flush pending output (bounded by timeout_ms). */
int kl_posix_flush(kl_posix_t *p, uint32_t timeout_ms);

void kl_posix_close(kl_posix_t *p);

#endif
