/* kinglet — TLS over a byte pipe (mbedTLS 3.6).
 *
 * kl_tls_t wraps one mbedTLS client session that runs over any
 * kl_transport_t (a BSD socket, an lwIP pcb) and is itself a kl_transport_t
 * for the layer above. Non-blocking: every call returns at once; 0 means
 * "call again when the lower transport is readable/writable".
 * All state lives in the caller's kl_tls_t; mbedTLS allocates through its
 * platform calloc (libc on POSIX, a static arena on firmware).
 */
#ifndef KINGLET_KL_TLS_H
#define KINGLET_KL_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "mbedtls/ssl.h"
#include "mbedtls/x509_crt.h"
#include "mbedtls/pk.h"
#include "mbedtls/ctr_drbg.h"
#include "mbedtls/entropy.h"

#include "kinglet/kl_transport.h"

typedef struct kl_tls_config {
    const char *server_name;   /* SNI and the name verified in the certificate (required) */
    const char *ca_file;       /* PEM file of trusted CAs (POSIX), or NULL */
    const uint8_t *ca_pem;     /* or a PEM/DER buffer (firmware); NUL-terminated if PEM */
    size_t ca_pem_len;         /* including the NUL for PEM */
    const char *cert_file;     /* client certificate (s2s / EXTERNAL), optional */
    const char *key_file;
    int insecure_skip_verify;  /* 0 by default: chain and name are verified */
    int tls13_only;            /* 1: TLS 1.3 only; 0: 1.2 and 1.3 */
    const char *alpn;          /* e.g. "xmpp-client" for direct TLS, or NULL */
} kl_tls_config_t;

typedef struct kl_tls {
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_x509_crt own_cert;
    mbedtls_pk_context own_key;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_entropy_context entropy;
    kl_transport_t *lower;
    kl_transport_t self;       /* this session as a transport for the layer above */
    const char *alpn_list[2];
    int handshake_done;
    int last_error;            /* last mbedTLS error code, for diagnostics */
    uint32_t verify_flags;     /* mbedTLS verification result after the handshake */
    unsigned round_trips;      /* times the handshake waited for the peer after writing */
    int wrote_since_read;      /* internal: for round_trips */
    unsigned long bytes_in, bytes_out; /* ciphertext through the lower transport */
} kl_tls_t;

/* Configure a client session over `lower` (which must outlive tls).
 * Returns KL_OK or KL_ERR_TLS_SETUP. Call once per connection; kl_tls_free
 * releases what mbedTLS allocated. */
int kl_tls_setup(kl_tls_t *tls, const kl_tls_config_t *cfg, kl_transport_t *lower);

/* Drive the handshake. Returns KL_OK when established, 0 ... never: use
 * the return: 1 = done, 0 = call again when the lower transport is ready,
 * < 0 = KL_ERR_TLS_CERT (with kl_tls_verify_info), KL_ERR_TLS, KL_ERR_IO,
 * KL_ERR_CONN_CLOSED. */
int kl_tls_handshake(kl_tls_t *tls);

/* The established session as a kl_transport_t (send/recv of plaintext;
 * KL_ERR_TLS_RECORD_TOO_LARGE if the peer sends an oversize record). */
kl_transport_t *kl_tls_transport(kl_tls_t *tls);

/* Send close_notify (best effort). */
void kl_tls_close(kl_tls_t *tls);
void kl_tls_free(kl_tls_t *tls);

/* Human-readable reason for the last failure (certificate flags or the
 * mbedTLS error), written into buf; returns buf. */
const char *kl_tls_error_text(const kl_tls_t *tls, char *buf, size_t cap);

/* Negotiated version string ("TLSv1.3") or "". */
const char *kl_tls_version(const kl_tls_t *tls);

#endif
