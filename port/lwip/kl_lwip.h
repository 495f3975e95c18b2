/* kinglet — lwIP port: the engine over lwIP's raw TCP API, for NO_SYS=1
 * main loops (or an RTOS with the lwIP core lock held around every call).
 *
 * Two layers, both caller-allocated, nothing malloc'ed (lwIP allocates
 * only from its own static pools):
 *
 *   kl_lwip_conn_t     one TCP connection as a kl_transport_t, and the SRV
 *                      lookup: kl_lwip_net.h (included here).
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

#include "kinglet/kinglet.h"
#include "kinglet/kl_transport.h"
#include "kl_lwip_net.h"
#include "kl_tls.h"

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

#endif
