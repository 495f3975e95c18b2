/* kinglet — the kl_crypto_t hooks (SCRAM) over mbedTLS. */
#ifndef KINGLET_KL_CRYPTO_MBEDTLS_H
#define KINGLET_KL_CRYPTO_MBEDTLS_H

#include "mbedtls/ctr_drbg.h"
#include "mbedtls/entropy.h"

#include "kinglet/kl_crypto.h"

typedef struct kl_crypto_mbedtls {
    kl_crypto_t table;             /* hand &table to kl_client_config_t.crypto */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
} kl_crypto_mbedtls_t;

/* Seed the DRBG from mbedtls_entropy (the platform's entropy source).
 * Returns 0 or a negative mbedTLS error. */
int kl_crypto_mbedtls_init(kl_crypto_mbedtls_t *k);
void kl_crypto_mbedtls_free(kl_crypto_mbedtls_t *k);

#endif
