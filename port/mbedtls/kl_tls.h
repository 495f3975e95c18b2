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
    /* Session resumption: a blob that kl_tls_session_save() wrote on an
     * earlier connection to the same server_name, or NULL; it must come
     * from authenticated storage (see the layout below). Read during
     * kl_tls_setup only (not kept). A blob that is corrupt, for another
     * server name, for other trust anchors, from an unverified session
     * while verification is on, for TLS 1.2 while tls13_only, or from
     * another mbedTLS build is not offered: the handshake is a full one
     * (with full certificate verification) and tls->session_note says why.
     * Never an error of its own. */
    const uint8_t *session;
    size_t session_len;
} kl_tls_config_t;

/* Largest blob kl_tls_session_save writes and kl_tls_setup accepts. What
 * fills it: TLS 1.3, ~100 bytes + the server's ticket (OpenSSL 3.0: ~250
 * bytes in all); TLS 1.2, ~150 bytes + the ticket + the server's leaf
 * certificate in DER (mbedTLS keeps it with MBEDTLS_SSL_KEEP_PEER_CERTIFICATE):
 * ~1 KB with a P-256 certificate, up to ~2.5 KB with RSA-4096 chains' leaf.
 * A larger session is not saved (KL_ERR_TOO_LARGE), never truncated. */
#ifndef KL_TLS_SESSION_MAX
#define KL_TLS_SESSION_MAX 3072
#endif

/* The blob's layout (all integers big-endian), for a cache that wants to
 * look inside; treat it as opaque otherwise:
 *   0  4  magic "KLS1"
 *   4  2  TLS version (0x0303 = 1.2, 0x0304 = 1.3)
 *   6  1  flags: bit 0 = the server certificate was verified
 *   7  1  name length N (the server_name the session belongs to)
 *   8  8  first 8 bytes of SHA-256 over the trust anchors' DER
 *  16  2  length M of mbedTLS's own serialisation (mbedtls_ssl_session_save)
 *  18  N  server name, no NUL
 *  ..  M  mbedTLS session
 *  .. 16  first 16 bytes of SHA-256 over everything before (corruption
 *         check, not authentication: the blob holds a resumption secret
 *         and must be stored as privately as a key)
 * Nothing in it is authenticated by kl_tls: the verified flag and the trust
 * id are only as good as the storage. Whoever can write the blob can plant
 * a session with their own server, which a resumed handshake never checks
 * against a certificate. Hand kl_tls_config_t.session only a blob the
 * application authenticated: the connection hints do (kl_cache_load with
 * the device key, kl_cache_tls_session). */
#define KL_TLS_SESSION_HDR 18
#define KL_TLS_SESSION_DIGEST 16

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
    int hold;                  /* full pipelining: no reads from lower until released */
    const uint8_t *preread;    /* bytes to read before lower's (borrowed) */
    size_t preread_len;
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
    unsigned tickets_received; /* TLS 1.3 NewSessionTickets received */
    /* Resumption (read-only for the caller): */
    int session_offered;       /* the config's session blob was offered to the server */
    const char *session_note;  /* static text: why the blob was not offered, or NULL */
    int cert_received;         /* this handshake received and checked a Certificate */
    int new_session_available; /* a newer resumable session can be saved now
                                * (kl_tls_session_save clears it); TLS 1.3: set
                                * when a ticket arrives during recv, TLS 1.2: at
                                * the end of the handshake if the server gave a
                                * ticket or a session id */
    mbedtls_ssl_session session; /* internal: the newest resumable session */
    int session_held;          /* internal: `session` holds one */
    int verify_required;       /* internal */
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
 * transport's own error (KL_ERR_IO …).
 * With a session offered (session_offered), mbedTLS pins the ClientHello to
 * the session's TLS version: a server that moved from 1.3 to 1.2 since then
 * fails the handshake (KL_ERR_TLS). A server that merely refuses the ticket
 * gets a full handshake. On any failure with session_offered set, drop the
 * blob and reconnect once without it. */
int kl_tls_handshake(kl_tls_t *tls);

/* XEP-0305 full pipelining: the ClientHello goes right behind <starttls/>,
 * before the server's <proceed/>. Until then the bytes the server sends are
 * XML for the engine, so the handshake must not read them:
 * kl_tls_hold_reads(tls, 1) before the first kl_tls_handshake() call;
 * at <proceed/>, kl_tls_set_preread() with the bytes that followed it in
 * the same read (borrowed: they must stay put until the handshake has
 * read them; the engine keeps them until kl_engine_tls_done()), then
 * kl_tls_hold_reads(tls, 0) and drive the handshake as usual. */
void kl_tls_hold_reads(kl_tls_t *tls, int hold);
void kl_tls_set_preread(kl_tls_t *tls, const uint8_t *data, size_t len);

/* The session as a kl_transport_t (send/recv of plaintext). Either call
 * first completes the handshake (returning 0 meanwhile). recv returns
 * KL_ERR_TLS_RECORD_TOO_LARGE if the peer sends a record larger than
 * MBEDTLS_SSL_IN_CONTENT_LEN, KL_ERR_CONN_CLOSED on close_notify or EOF.
 * A send that returned 0 must be repeated with the same leading bytes
 * (mbedTLS has already encrypted them; len may be larger the second time). */
kl_transport_t *kl_tls_transport(kl_tls_t *tls);

/* Writes the newest resumable session (see new_session_available) into
 * buf as a blob for kl_tls_config_t.session, sets *len and clears
 * new_session_available. Can be called again (same blob until a newer
 * ticket arrives). Returns KL_OK; KL_ERR_STATE if there is nothing to save
 * (no ticket or session id yet; Prosody 0.12's TLS 1.2 gives neither);
 * KL_ERR_TOO_LARGE if cap is too small (*len = the size needed; the
 * session stays available); KL_ERR_ARG for NULL arguments.
 * TLS 1.3 tickets arrive after the handshake, with the first records the
 * server sends (OpenSSL sends two right away; a server may send none): save
 * when new_session_available turns 1 during recv, e.g. once the stream
 * features arrived. Each new ticket replaces the previous one: single use
 * is the server's business, the newest is the best to keep. */
int kl_tls_session_save(kl_tls_t *tls, uint8_t *buf, size_t cap, size_t *len);

/* 1 if the finished handshake resumed the offered session: no Certificate
 * was sent by the server (TLS 1.3: the PSK was accepted; TLS 1.2: the
 * abbreviated handshake), 0 otherwise (also before the handshake is done). */
int kl_tls_resumed(const kl_tls_t *tls);

/* Send close_notify (best effort). */
void kl_tls_close(kl_tls_t *tls);
void kl_tls_free(kl_tls_t *tls);

/* Human-readable reason for the last failure (certificate flags or the
 * mbedTLS error), written into buf; returns buf. E.g.
 * "certificate name mismatch (expected example.org)". */
const char *kl_tls_error_text(const kl_tls_t *tls, char *buf, size_t cap);

/* Negotiated version string ("TLSv1.3") or "". */
const char *kl_tls_version(const kl_tls_t *tls);
/* RFC 9266 tls-exporter channel binding: 32 bytes exported with the label
 * "EXPORTER-Channel-Binding" and no context. Only after a TLS 1.3
 * handshake (with TLS 1.2 it needs the extended master secret, and
 * servers disagree on the context): KL_OK, or KL_ERR_STATE. */
int kl_tls_exporter(kl_tls_t *tls, uint8_t out[32]);

#endif
