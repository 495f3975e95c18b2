/* kinglet — SCRAM's hash, HMAC, PBKDF2 and random over mbedTLS. */
#include "kl_crypto_mbedtls.h"

#include <string.h>

#include "mbedtls/md.h"
#include "mbedtls/pkcs5.h"

static mbedtls_md_type_t md_type(kl_hash_alg_t alg)
{
    return alg == KL_HASH_SHA256 ? MBEDTLS_MD_SHA256 : MBEDTLS_MD_SHA1;
}

static int k_hash(void *ctx, kl_hash_alg_t alg, const uint8_t *data, size_t len, uint8_t *out)
{
    (void)ctx;
    return mbedtls_md(mbedtls_md_info_from_type(md_type(alg)), data, len, out);
}

static int k_hmac(void *ctx, kl_hash_alg_t alg, const uint8_t *key, size_t key_len, const kl_slice_t *parts,
                  size_t nparts, uint8_t *out)
{
    mbedtls_md_context_t md;
    size_t i;
    int r;
    (void)ctx;
    mbedtls_md_init(&md);
    r = mbedtls_md_setup(&md, mbedtls_md_info_from_type(md_type(alg)), 1);
    if (!r)
        r = mbedtls_md_hmac_starts(&md, key, key_len);
    for (i = 0; !r && i < nparts; i++)
        r = mbedtls_md_hmac_update(&md, parts[i].p, parts[i].len);
    if (!r)
        r = mbedtls_md_hmac_finish(&md, out);
    mbedtls_md_free(&md);
    return r;
}

static int k_pbkdf2(void *ctx, kl_hash_alg_t alg, const uint8_t *pw, size_t pw_len, const uint8_t *salt,
                    size_t salt_len, uint32_t iterations, uint8_t *out, size_t out_len)
{
    (void)ctx;
    return mbedtls_pkcs5_pbkdf2_hmac_ext(md_type(alg), pw, pw_len, salt, salt_len, iterations,
                                         (uint32_t)out_len, out);
}

static int k_random(void *ctx, uint8_t *out, size_t len)
{
    kl_crypto_mbedtls_t *k = ctx;
    return mbedtls_ctr_drbg_random(&k->drbg, out, len);
}

int kl_crypto_mbedtls_init(kl_crypto_mbedtls_t *k)
{
    static const char pers[] = "kinglet-scram";
    memset(k, 0, sizeof *k);
    mbedtls_entropy_init(&k->entropy);
    mbedtls_ctr_drbg_init(&k->drbg);
    k->table.ctx = k;
    k->table.hash = k_hash;
    k->table.hmac = k_hmac;
    k->table.pbkdf2 = k_pbkdf2;
    k->table.random = k_random;
    return mbedtls_ctr_drbg_seed(&k->drbg, mbedtls_entropy_func, &k->entropy, (const unsigned char *)pers,
                                 sizeof pers - 1);
}

void kl_crypto_mbedtls_free(kl_crypto_mbedtls_t *k)
{
    mbedtls_ctr_drbg_free(&k->drbg);
    mbedtls_entropy_free(&k->entropy);
}
