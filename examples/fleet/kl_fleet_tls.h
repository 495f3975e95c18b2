/* kinglet-fleet — a TLS binding (kl_tls_ops_t) for many devices in one
 * process: what every connection has in common is made once and shared
 * (the mbedtls_ssl_config, the parsed CA chain, the DRBG and its entropy
 * source); a device holds only its mbedtls_ssl_context and a few words.
 *
 * port/mbedtls's binding (kl_tls_bind.h over kl_tls.h) gives every device
 * its own kl_tls_t: its own configuration, CA chain (parsed from the file
 * at every connection), DRBG, entropy pool and a resumable session copy —
 * ~4 KB of structs plus ~2 KB of heap per device before the record
 * buffers, which is right for one device and what a fleet should not
 * repeat N times.
 *
 * Same rules as kl_tls_mbedtls_ops for the manager: verification always on
 * (TLS 1.2 and 1.3), XMPP over TCP on slot 0 only, ALPN as the manager asks
 * (one configuration with the first ALPN name seen, one without). Not
 * here: TLS session resumption (no tickets are kept: save_session is
 * NULL), client certificates, naming an oversize record.
 */
#ifndef KL_FLEET_TLS_H
#define KL_FLEET_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "kinglet/kl_session.h"
#include "mbedtls/ctr_drbg.h"
#include "mbedtls/entropy.h"
#include "mbedtls/ssl.h"
#include "mbedtls/x509_crt.h"

typedef struct kl_fleet_tls_shared {
    mbedtls_ssl_config conf[2];   /* [0] no ALPN, [1] with alpn_list */
    const char *alpn_list[2];
    mbedtls_x509_crt ca;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_entropy_context entropy;
} kl_fleet_tls_shared_t;

typedef struct kl_fleet_tls {
    kl_fleet_tls_shared_t *sh;
    mbedtls_ssl_context ssl;
    kl_transport_t *lower;
    const uint8_t *pre;           /* XEP-0305 full: bytes after <proceed/> (borrowed) */
    size_t pre_len;
    size_t write_pending;         /* plaintext mbedTLS took from a send that returned 0 */
    uint32_t verify_flags;
    int last_status, last_error, lower_error;
    uint16_t round_trips;
    uint8_t on, hold, done, wrote;
} kl_fleet_tls_t;

/* Once: the CA file (PEM), parsed here. 0 or a negative mbedTLS error
 * (a message on stderr). */
int kl_fleet_tls_shared_init(kl_fleet_tls_shared_t *sh, const char *ca_file);

/* Per device, before kl_session_init (ctx: &t). */
void kl_fleet_tls_init(kl_fleet_tls_t *t, kl_fleet_tls_shared_t *sh);

extern const kl_tls_ops_t kl_fleet_tls_ops;

#endif
