/* kinglet — SCRAM's hash, HMAC, PBKDF2 and random over mbedTLS. */
#include "kl_crypto_mbedtls.h"

#include <string.h>

#include "mbedtls/md.h"
#include "mbedtls/pkcs5.h"
#include "mbedtls/platform_util.h"
#include "mbedtls/sha1.h"
#include "mbedtls/sha256.h"

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

/* PBKDF2-HMAC (RFC 8018 §5.2) with the HMAC's inner and outer states
 * computed once: each of the 4096 rounds is then two compression-function
 * calls, where mbedtls_pkcs5_pbkdf2_hmac_ext (which restarts the HMAC from
 * the key every round) spends four: half of the PBKDF2, a quarter of a
 * whole SCRAM login's CPU in kinglet-fleet. The hash contexts live on the
 * stack (about 1 KB at the deepest on a Cortex-M4): no heap. Built on
 * mbedTLS's SHA-1 and SHA-256 modules; a configuration without either
 * (PSA-only hashes) gets mbedtls_pkcs5_pbkdf2_hmac_ext. */
#if defined(MBEDTLS_SHA1_C) && defined(MBEDTLS_SHA256_C)
typedef union {
    mbedtls_sha1_context s1;
    mbedtls_sha256_context s256;
} hctx_t;

static int h_start(kl_hash_alg_t alg, hctx_t *h)
{
    if (alg == KL_HASH_SHA256) {
        mbedtls_sha256_init(&h->s256);
        return mbedtls_sha256_starts(&h->s256, 0);
    }
    mbedtls_sha1_init(&h->s1);
    return mbedtls_sha1_starts(&h->s1);
}

static int h_update(kl_hash_alg_t alg, hctx_t *h, const uint8_t *p, size_t n)
{
    return alg == KL_HASH_SHA256 ? mbedtls_sha256_update(&h->s256, p, n) : mbedtls_sha1_update(&h->s1, p, n);
}

static void h_clone(kl_hash_alg_t alg, hctx_t *dst, const hctx_t *src)
{
    if (alg == KL_HASH_SHA256) {
        mbedtls_sha256_init(&dst->s256);
        mbedtls_sha256_clone(&dst->s256, &src->s256);
    } else {
        mbedtls_sha1_init(&dst->s1);
        mbedtls_sha1_clone(&dst->s1, &src->s1);
    }
}

static void h_free(kl_hash_alg_t alg, hctx_t *h)
{
    if (alg == KL_HASH_SHA256)
        mbedtls_sha256_free(&h->s256);
    else
        mbedtls_sha1_free(&h->s1);
}

/* out = H(state of src || p[0..n)): src stays as it was */
static int h_from(kl_hash_alg_t alg, const hctx_t *src, const uint8_t *p, size_t n, uint8_t *out)
{
    hctx_t t;
    int r;
    h_clone(alg, &t, src);
    r = h_update(alg, &t, p, n);
    if (!r)
        r = alg == KL_HASH_SHA256 ? mbedtls_sha256_finish(&t.s256, out) : mbedtls_sha1_finish(&t.s1, out);
    h_free(alg, &t);
    return r;
}

static int k_pbkdf2(void *ctx, kl_hash_alg_t alg, const uint8_t *pw, size_t pw_len, const uint8_t *salt,
                    size_t salt_len, uint32_t iterations, uint8_t *out, size_t out_len)
{
    enum { BLOCK = 64 }; /* SHA-1's and SHA-256's */
    const size_t hl = alg == KL_HASH_SHA256 ? 32 : 20;
    uint8_t key[BLOCK], u[KL_HASH_MAX], v[KL_HASH_MAX], x[KL_HASH_MAX], cnt[4];
    hctx_t in, outer;
    uint8_t *const out0 = out;
    const size_t out_len0 = out_len;
    uint32_t blk = 1;
    size_t i;
    int r = 0;
    (void)ctx;
    if (iterations == 0 || (alg != KL_HASH_SHA256 && alg != KL_HASH_SHA1))
        return -1;
    memset(&in, 0, sizeof in); /* what *_init does: h_free is safe on any path */
    memset(&outer, 0, sizeof outer);
    memset(key, 0, sizeof key);
    if (pw_len > BLOCK)
        r = mbedtls_md(mbedtls_md_info_from_type(md_type(alg)), pw, pw_len, key);
    else if (pw_len)
        memcpy(key, pw, pw_len);
    for (i = 0; i < BLOCK; i++)
        key[i] ^= 0x36;
    if (!r)
        r = h_start(alg, &in);
    if (!r)
        r = h_update(alg, &in, key, BLOCK);
    for (i = 0; i < BLOCK; i++)
        key[i] ^= 0x36 ^ 0x5c;
    if (!r)
        r = h_start(alg, &outer);
    if (!r)
        r = h_update(alg, &outer, key, BLOCK);
    while (!r && out_len > 0) {
        size_t take = out_len < hl ? out_len : hl;
        hctx_t t;
        /* U1 = PRF(P, S || INT(blk)) */
        cnt[0] = (uint8_t)(blk >> 24), cnt[1] = (uint8_t)(blk >> 16), cnt[2] = (uint8_t)(blk >> 8), cnt[3] = (uint8_t)blk;
        h_clone(alg, &t, &in);
        r = h_update(alg, &t, salt, salt_len);
        if (!r)
            r = h_from(alg, &t, cnt, sizeof cnt, x);
        h_free(alg, &t);
        if (!r)
            r = h_from(alg, &outer, x, hl, u);
        if (!r)
            memcpy(x, u, hl); /* x: the running XOR (T) */
        for (uint32_t k = 1; !r && k < iterations; k++) {
            r = h_from(alg, &in, u, hl, v);
            if (!r)
                r = h_from(alg, &outer, v, hl, u);
            for (i = 0; i < hl; i++)
                x[i] ^= u[i];
        }
        if (!r) {
            memcpy(out, x, take);
            out += take;
            out_len -= take;
            blk++;
        }
    }
    h_free(alg, &in);
    h_free(alg, &outer);
    mbedtls_platform_zeroize(key, sizeof key);
    mbedtls_platform_zeroize(u, sizeof u);
    mbedtls_platform_zeroize(v, sizeof v);
    mbedtls_platform_zeroize(x, sizeof x);
    if (r)
        mbedtls_platform_zeroize(out0, out_len0); /* no partial key on failure */
    return r;
}
#else
static int k_pbkdf2(void *ctx, kl_hash_alg_t alg, const uint8_t *pw, size_t pw_len, const uint8_t *salt,
                    size_t salt_len, uint32_t iterations, uint8_t *out, size_t out_len)
{
    (void)ctx;
    return mbedtls_pkcs5_pbkdf2_hmac_ext(md_type(alg), pw, pw_len, salt, salt_len, iterations,
                                         (uint32_t)out_len, out);
}
#endif

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
