/* kinglet — the mbedTLS binding for the connection manager (kl_session.h).
 *
 * kl_tls_mbedtls_ops is a kl_tls_ops_t over port/mbedtls's kl_tls_t: one
 * client session per manager slot. What is per device (trust anchors,
 * client certificate, verification, TLS 1.3 only) comes from a base
 * kl_tls_config_t given once; what is per connection (the server name,
 * ALPN, the session blob to offer) from the manager's kl_tls_params_t at
 * every setup.
 *
 *   static kl_tls_t tls_sessions[1];     // large: one per slot that runs TLS
 *   static kl_tls_mbedtls_t tls;
 *   kl_tls_mbedtls_init(&tls, &base_cfg, tls_sessions, 1);
 *   scfg.tls = &kl_tls_mbedtls_ops;
 *   scfg.tls_ctx = &tls;
 *
 * n may be below KL_SESSION_SLOTS to save RAM: XMPP over TCP and WebSocket
 * use slot 0 only; BOSH over HTTPS needs two. A setup on a slot without a
 * session fails with KL_ERR_TLS_SETUP (error_text says why).
 *
 * Lifetimes: base's strings and buffers (ca_file, ca_pem, cert_file,
 * key_file) are read at every setup and must outlive the binding.
 * kl_tls_params_t.alpn is kept by mbedTLS until close (the manager's is its
 * configuration's or a static string); server_name and the session blob
 * are read during setup only. The `lower` transport given to setup must
 * stay put until close (close may write close_notify through it: flush the
 * net slot after close, before closing it).
 *
 * error_text reads the session's state: ask for it before close (after
 * close a certificate failure loses the expected host name).
 *
 * info.verified is what kl_posix and kl_lwip hand kl_engine_tls_done: the
 * handshake finished with verification on (a session blob is offered
 * while verifying only if it was saved from a verified one).
 * save_session: KL_ERR_STATE unless a session newer than the last save is
 * there (info.new_session); a failure (KL_ERR_TOO_LARGE: *len = the size
 * needed) drops it until the server sends a newer one.
 */
#ifndef KINGLET_KL_TLS_BIND_H
#define KINGLET_KL_TLS_BIND_H

#include <stdint.h>

#include "kinglet/kl_session.h"
#include "kl_tls.h"

typedef struct kl_tls_mbedtls {
    kl_tls_config_t base;          /* per device; server_name, alpn, session are ignored */
    kl_tls_t *sess;                /* array of n, caller-allocated; must not move */
    uint8_t on[KL_SESSION_SLOTS];  /* internal: sess[slot] needs kl_tls_free */
    int n;
} kl_tls_mbedtls_t;

/* base is copied (its pointers are borrowed); sessions: n kl_tls_t (n <=
 * KL_SESSION_SLOTS; more are not used), zeroed here. No session may be set
 * up on them (init again only after closing every slot). */
void kl_tls_mbedtls_init(kl_tls_mbedtls_t *b, const kl_tls_config_t *base, kl_tls_t *sessions, int n);

/* The session on slot (NULL if the slot has none or is not set up), for
 * diagnostics that kl_tls_info_t does not carry (bytes_in, session_note ...). */
kl_tls_t *kl_tls_mbedtls_session(kl_tls_mbedtls_t *b, int slot);

extern const kl_tls_ops_t kl_tls_mbedtls_ops;

#endif
