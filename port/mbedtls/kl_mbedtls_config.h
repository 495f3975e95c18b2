/* kinglet — mbedTLS 3.6 configuration (MBEDTLS_CONFIG_FILE).
 *
 * A TLS 1.3 + 1.2 *client*: ECDHE (X25519, P-256, P-384), ECDSA and RSA
 * (PKCS#1 v1.5 and PSS) certificate verification, AES-GCM and
 * ChaCha20-Poly1305, SHA-256/384 (SHA-1 and HMAC for SCRAM), X.509 + PEM,
 * SNI, ALPN, client-side session tickets. No server, no DTLS, no CBC, no
 * renegotiation.
 *
 * This file is written from scratch (not the default config with options
 * removed), so that an option appears here only because kinglet needs it.
 *
 * Overriding:
 *   - record buffers: -DMBEDTLS_SSL_IN_CONTENT_LEN=8192 (and OUT_) on the
 *     command line; see docs/FIELD-NOTES.md for what a deployment needs;
 *   - a board or firmware image: -DKL_MBEDTLS_FIRMWARE drops the POSIX
 *     platform section below, and -DMBEDTLS_USER_CONFIG_FILE='"board.h"'
 *     (read by mbedTLS right after this file) supplies the board's entropy
 *     source, time hooks and static heap (MBEDTLS_MEMORY_BUFFER_ALLOC_C),
 *     and may #undef anything here (e.g. MBEDTLS_ERROR_C, RSA).
 */
#ifndef KL_MBEDTLS_CONFIG_H
#define KL_MBEDTLS_CONFIG_H

/* build_info.h defines the version before it reads this file: refuse to
 * build against anything but the 3.6 LTS branch (Debian's libmbedtls-dev
 * 2.28 headers in /usr/include would land here with a wrong -I order). */
#if !defined(MBEDTLS_VERSION_MAJOR) || MBEDTLS_VERSION_MAJOR != 3 || MBEDTLS_VERSION_MINOR != 6
#error "kinglet needs mbedTLS 3.6.x: check MBEDTLS_DIR and the -I order"
#endif

/* ---- system ------------------------------------------------------------- */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_DEPRECATED_REMOVED

/* ---- TLS ---------------------------------------------------------------- */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_SSL_PROTO_TLS1_3
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL_ENABLED /* ticket resumption */
#define MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE /* middleboxes on real networks */
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE     /* TLS 1.3 requires it */
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_ALPN
#define MBEDTLS_SSL_SESSION_TICKETS
#define MBEDTLS_SSL_ALL_ALERT_MESSAGES
#define MBEDTLS_SSL_KEYING_MATERIAL_EXPORT /* tls-exporter channel binding (RFC 9266) */
/* Not MBEDTLS_SSL_MAX_FRAGMENT_LENGTH: offered in a 1.2+1.3 ClientHello it
 * breaks the handshake against OpenSSL (docs/FIELD-NOTES.md). */

/* Record buffers: IN must hold the largest record the server sends. */
#ifndef MBEDTLS_SSL_IN_CONTENT_LEN
#define MBEDTLS_SSL_IN_CONTENT_LEN 16384
#endif
#ifndef MBEDTLS_SSL_OUT_CONTENT_LEN
#define MBEDTLS_SSL_OUT_CONTENT_LEN 4096
#endif

/* ---- PSA (TLS 1.3 key schedule and AEAD) --------------------------------- */
#define MBEDTLS_PSA_CRYPTO_C
/* Our buffers are never shared with another context during a PSA call:
 * saves a copy of every record (docs/FIELD-NOTES.md: up to ~16.5 KB of heap). */
#define MBEDTLS_PSA_ASSUME_EXCLUSIVE_BUFFERS

/* ---- symmetric crypto and hashes ----------------------------------------- */
#define MBEDTLS_CIPHER_C
#define MBEDTLS_AES_C
#define MBEDTLS_GCM_C
#define MBEDTLS_CHACHA20_C
#define MBEDTLS_POLY1305_C
#define MBEDTLS_CHACHAPOLY_C
#define MBEDTLS_MD_C
#define MBEDTLS_SHA1_C   /* SCRAM-SHA-1; also some CA signatures */
#define MBEDTLS_SHA224_C /* mbedTLS builds SHA-256 and SHA-224 from one file */
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA384_C
#define MBEDTLS_SHA512_C /* SHA-384 needs the SHA-512 core */
#define MBEDTLS_HKDF_C   /* gives PSA HKDF extract/expand for TLS 1.3 */
#define MBEDTLS_PKCS5_C  /* PBKDF2-HMAC: kl_crypto_mbedtls.c without SHA1_C/SHA256_C, test_scram's reference */

/* ---- public key ------------------------------------------------------- */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECDSA_C
#define MBEDTLS_RSA_C
#define MBEDTLS_PKCS1_V15
#define MBEDTLS_PKCS1_V21 /* RSASSA-PSS: TLS 1.3 with RSA certificates */
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C /* ECDSA signatures are DER */
#define MBEDTLS_OID_C

/* ---- certificates ----------------------------------------------------- */
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C
#define MBEDTLS_X509_RSASSA_PSS_SUPPORT
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_BASE64_C

/* ---- randomness ------------------------------------------------------- */
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_CTR_DRBG_C

/* ---- diagnostics (a firmware user config may #undef it) ---------------- */
#define MBEDTLS_ERROR_C

/* ---- platform: POSIX host ---------------------------------------------- */
#if !defined(KL_MBEDTLS_FIRMWARE)
/* Entropy from the OS (getrandom / /dev/urandom in entropy_poll.c). */
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_HAVE_TIME_DATE /* certificate validity against the clock */
#define MBEDTLS_FS_IO          /* CA, certificate and key files */
#endif
/* A firmware image defines KL_MBEDTLS_FIRMWARE and, in its
 * MBEDTLS_USER_CONFIG_FILE, e.g. MBEDTLS_NO_PLATFORM_ENTROPY +
 * MBEDTLS_ENTROPY_HARDWARE_ALT (or MBEDTLS_PSA_CRYPTO_EXTERNAL_RNG),
 * MBEDTLS_MEMORY_BUFFER_ALLOC_C, MBEDTLS_PLATFORM_MS_TIME_ALT and
 * MBEDTLS_PLATFORM_GMTIME_R_ALT (newlib's gmtime pulls in stdio). */

#endif /* KL_MBEDTLS_CONFIG_H */
