/* kinglet — the crypto hooks SCRAM needs, implemented by a port.
 *
 * core/ stays crypto-free: SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677)
 * call these through kl_client_config_t.crypto. port/mbedtls provides an
 * implementation over mbedTLS (kl_crypto_mbedtls). Every function returns 0
 * on success, a negative value on failure. The table and ctx are borrowed
 * and must outlive the client.
 */
#ifndef KINGLET_KL_CRYPTO_H
#define KINGLET_KL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "kl_xml.h" /* kl_slice_t */

typedef enum kl_hash_alg {
    KL_HASH_SHA1 = 1,  /* 20-byte output */
    KL_HASH_SHA256 = 2 /* 32-byte output */
} kl_hash_alg_t;

#define KL_HASH_MAX 32

typedef struct kl_crypto {
    void *ctx;
    /* out = H(data) */
    int (*hash)(void *ctx, kl_hash_alg_t alg, const uint8_t *data, size_t len, uint8_t *out);
    /* out = HMAC(key, parts[0] || parts[1] || …) */
    int (*hmac)(void *ctx, kl_hash_alg_t alg, const uint8_t *key, size_t key_len,
                const kl_slice_t *parts, size_t nparts, uint8_t *out);
    /* out[0..out_len) = PBKDF2-HMAC(password, salt, iterations) */
    int (*pbkdf2)(void *ctx, kl_hash_alg_t alg, const uint8_t *pw, size_t pw_len, const uint8_t *salt,
                  size_t salt_len, uint32_t iterations, uint8_t *out, size_t out_len);
    /* cryptographically strong random bytes (the SCRAM client nonce) */
    int (*random)(void *ctx, uint8_t *out, size_t len);
} kl_crypto_t;

#endif
