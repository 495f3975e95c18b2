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
    const char *server_name;   /* SNI and the name verified in the certificate (required; copied) */
    const char *ca_file;       /* PEM file of trusted CAs (POSIX), or NULL */
    const uint8_t *ca_pem;     /* or a PEM/DER buffer (firmware); NUL-terminated if PEM */
    size_t ca_pem_len;         /* including the NUL for PEM */
    const char *cert_file;     /* client certificate (s2s / EXTERNAL), optional */
    const char *key_file;      /* its private key (unencrypted), required with cert_file */
    int insecure_skip_verify;  /* 0 by default: chain and name are verified */
    int tls13_only;            /* 1: TLS 1.3 only; 0: 1.2 and 1.3 */
    const char *alpn;          /* e.g. "xmpp-client" for direct TLS, or NULL; not
                                * copied: must outlive the session */
} kl_tls_config_t;

/* The caller allocates it and must not move it between kl_tls_setup and
 * kl_tls_free (mbedTLS keeps pointers into it). Fields below `lower` are
 * read-only for the caller. */
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
    int last_status;           /* kl_status_t of the last failure, KL_OK if none */
    int last_error;            /* last mbedTLS error code, for diagnostics */
    int lower_error;           /* last error the lower transport returned */
    const char *setup_step;    /* static text: what kl_tls_setup failed at, or NULL */
    uint32_t verify_flags;     /* mbedTLS verification result (MBEDTLS_X509_BADCERT_...) */
    unsigned round_trips;      /* times the handshake waited for the peer after writing */
    int wrote_since_read;      /* internal: for round_trips */
    size_t write_pending;      /* internal: plaintext bytes mbedTLS holds from a send that returned 0 */
    unsigned tickets_received; /* TLS 1.3 NewSessionTickets seen (not saved yet) */
    unsigned long bytes_in, bytes_out; /* ciphertext through the lower transport */
    /* internal: record framing of the incoming ciphertext, to name an
     * oversize record (KL_ERR_TLS_RECORD_TOO_LARGE) */
    uint8_t rec_hdr[5];
    uint8_t rec_hdr_len;
    size_t rec_body_left;
    size_t rec_last_len;
} kl_tls_t;

/* Configure a client session over `lower` (which must outlive tls).
 * Returns KL_OK, KL_ERR_ARG (NULL argument or no server_name) or
 * KL_ERR_TLS_SETUP (no CA while verifying, unreadable CA/cert/key, RNG);
 * kl_tls_error_text says which. Call once per connection; kl_tls_free
 * releases what mbedTLS allocated, also after a failed setup. */
int kl_tls_setup(kl_tls_t *tls, const kl_tls_config_t *cfg, kl_transport_t *lower);

/* Drive the handshake: 1 = established, 0 = call again when the lower
 * transport is readable/writable, < 0 = KL_ERR_TLS_CERT (reason in
 * kl_tls_error_text), KL_ERR_TLS, KL_ERR_CONN_CLOSED, or the lower
 * transport's own error (KL_ERR_IO …). */
int kl_tls_handshake(kl_tls_t *tls);

/* The session as a kl_transport_t (send/recv of plaintext). Either call
 * first completes the handshake (returning 0 meanwhile). recv returns
 * KL_ERR_TLS_RECORD_TOO_LARGE if the peer sends a record larger than
 * MBEDTLS_SSL_IN_CONTENT_LEN, KL_ERR_CONN_CLOSED on close_notify or EOF.
 * A send that returned 0 must be repeated with the same leading bytes
 * (mbedTLS has already encrypted them; len may be larger the second time). */
kl_transport_t *kl_tls_transport(kl_tls_t *tls);

/* Send close_notify (best effort). */
void kl_tls_close(kl_tls_t *tls);
void kl_tls_free(kl_tls_t *tls);

/* Human-readable reason for the last failure (certificate flags or the
 * mbedTLS error), written into buf; returns buf. E.g.
 * "certificate name mismatch (expected example.org)". */
const char *kl_tls_error_text(const kl_tls_t *tls, char *buf, size_t cap);

/* Negotiated version string ("TLSv1.3") or "". */
const char *kl_tls_version(const kl_tls_t *tls);

#endif
