/* kinglet — the connection-hints cache blob: validation, sealing and
 * authentication (HMAC-SHA-256 through the port's kl_crypto_t). */
#include "kinglet/kl_cache.h"
#include "kinglet/kl_status.h"
#include "kl_internal.h"
#include "kl_string.h"

#if KL_ENABLE_CACHE

/* Domain separation: the device key may serve other purposes too. */
static const uint8_t mac_label[] = "kinglet-hints";

static uint32_t checksum(const kl_cache_t *c)
{
    /* FNV-1a over everything after the checksum field, up to the MAC */
    const uint8_t *p = (const uint8_t *)c + offsetof(kl_cache_t, checksum) + sizeof c->checksum;
    const uint8_t *end = (const uint8_t *)c + offsetof(kl_cache_t, mac);
    uint32_t h = 2166136261u;
    while (p < end)
        h = (h ^ *p++) * 16777619u;
    return h;
}

/* magic, version, size: a blob of this build's layout */
static int same_layout(const kl_cache_t *c)
{
    return c->magic == KL_CACHE_MAGIC && c->version == KL_CACHE_VERSION && c->size == KL_CACHE_BLOB_SIZE;
}

int kl_cache_check(const kl_cache_t *c, const char *domain)
{
    if (!c || !domain)
        return KL_ERR_ARG;
    if (!same_layout(c) || c->checksum != checksum(c))
        return KL_ERR_CACHE_FORMAT;
    if (memchr(c->domain, 0, sizeof c->domain) == NULL || strcmp(c->domain, domain) != 0)
        return KL_ERR_CACHE_FORMAT;
    if (c->tls_session_len > sizeof c->tls_session || !memchr(c->caps_ver, 0, sizeof c->caps_ver) ||
        !memchr(c->disco_ver, 0, sizeof c->disco_ver) || !memchr(c->roster_ver, 0, sizeof c->roster_ver) ||
        !memchr(c->srv_host, 0, sizeof c->srv_host) || !memchr(c->ua_id, 0, sizeof c->ua_id) ||
        c->fast_len > sizeof c->fast_token)
        return KL_ERR_CACHE_FORMAT;
    return KL_OK;
}

void kl_cache_reset(kl_cache_t *c, const char *domain)
{
    size_t n = strlen(domain);
    memset(c, 0, sizeof *c);
    if (n < sizeof c->domain)
        memcpy(c->domain, domain, n);
    kl_cache_seal(c);
    c->trust = c; /* nothing in it to distrust */
}

void kl_cache_seal(kl_cache_t *c)
{
    c->magic = KL_CACHE_MAGIC;
    c->version = KL_CACHE_VERSION;
    c->size = (uint16_t)KL_CACHE_BLOB_SIZE;
    c->checksum = checksum(c);
}

void kl_cache_drop_fast(kl_cache_t *c)
{
    memset(c->fast_token, 0, sizeof c->fast_token);
    c->fast_len = 0;
    c->fast_mech = 0;
    c->fast_expiry = 0;
}

/* The secrets go, and their bytes with them: the TLS session and the FAST
 * token. */
static void drop_session(kl_cache_t *c)
{
    memset(c->tls_session, 0, sizeof c->tls_session);
    c->tls_session_len = 0;
    kl_cache_drop_fast(c);
}

static int key_ok(const kl_crypto_t *crypto, const uint8_t *key)
{
    return crypto && crypto->hmac && key;
}

/* out = HMAC-SHA-256(key, label || blob up to the MAC) */
static int compute_mac(const kl_cache_t *c, const kl_crypto_t *crypto, const uint8_t *key, uint8_t out[KL_HASH_MAX])
{
    kl_slice_t parts[2];
    parts[0].p = mac_label;
    parts[0].len = sizeof mac_label - 1;
    parts[1].p = (const uint8_t *)c;
    parts[1].len = offsetof(kl_cache_t, mac);
    return crypto->hmac(crypto->ctx, KL_HASH_SHA256, key, KL_CACHE_KEY_LEN, parts, 2, out) < 0 ? KL_ERR_CACHE_AUTH
                                                                                              : KL_OK;
}

int kl_cache_load(kl_cache_t *c, const char *domain, const kl_crypto_t *crypto, const uint8_t *key, size_t key_len)
{
    uint8_t mac[KL_HASH_MAX];
    int st;
    if (!c)
        return KL_ERR_ARG;
    c->trust = NULL; /* whatever the bytes said: set below, never read from them */
    if (!domain || (key && key_len != KL_CACHE_KEY_LEN)) {
        if (domain)
            kl_cache_reset(c, domain);
        return KL_ERR_ARG;
    }
    if (!same_layout(c)) {
        kl_cache_reset(c, domain); /* not this build's: nothing in it is trusted */
        return KL_ERR_CACHE_FORMAT;
    }
    if (!key_ok(crypto, key)) {
        /* no device key: the hints that only save round trips may be used,
         * a TLS session never (it would be resumed without a certificate) */
        if (kl_cache_check(c, domain) != KL_OK) {
            kl_cache_reset(c, domain);
            return KL_ERR_CACHE_FORMAT;
        }
        drop_session(c);
        memset(c->mac, 0, sizeof c->mac);
        kl_cache_seal(c);
        c->trust = c;
        return KL_ERR_CACHE_NO_KEY;
    }
    /* every byte after the layout's identification is under the MAC: one
     * changed anywhere (the checksum and the MAC included) fails here */
    st = compute_mac(c, crypto, key, mac);
    if (st == KL_OK && !kl_equal_ct(mac, c->mac, KL_CACHE_MAC_LEN))
        st = KL_ERR_CACHE_AUTH;
    memset(mac, 0, sizeof mac);
    if (st != KL_OK) {
        kl_cache_reset(c, domain); /* ignored whole */
        return KL_ERR_CACHE_AUTH;
    }
    if (kl_cache_check(c, domain) != KL_OK) {
        kl_cache_reset(c, domain); /* authentic, but for another domain */
        return KL_ERR_CACHE_FORMAT;
    }
    c->trust = c;
    return KL_OK;
}

int kl_cache_store(kl_cache_t *c, const kl_crypto_t *crypto, const uint8_t *key, size_t key_len)
{
    int st = KL_OK;
    if (!c)
        return KL_ERR_ARG;
    if (c->trust != c) {
        drop_session(c); /* not loaded here: nothing vouches for it */
        st = KL_ERR_STATE;
    }
    if (!key_ok(crypto, key) || key_len != KL_CACHE_KEY_LEN) {
        drop_session(c);
        st = KL_ERR_CACHE_NO_KEY;
    } else if (c->tls_session_len <= sizeof c->tls_session && c->fast_len <= sizeof c->fast_token) {
        memset(c->tls_session + c->tls_session_len, 0, sizeof c->tls_session - c->tls_session_len);
        memset(c->fast_token + c->fast_len, 0, sizeof c->fast_token - c->fast_len);
    } else {
        drop_session(c);
    }
    memset(c->mac, 0, sizeof c->mac);
    kl_cache_seal(c);
    if (st == KL_ERR_CACHE_NO_KEY)
        return st;
    if (compute_mac(c, crypto, key, c->mac) != KL_OK) {
        memset(c->mac, 0, sizeof c->mac);
        drop_session(c);
        kl_cache_seal(c);
        return KL_ERR_CACHE_NO_KEY;
    }
    return st;
}

const uint8_t *kl_cache_tls_session(const kl_cache_t *c, const char *domain, size_t *len)
{
    if (len)
        *len = 0;
    if (!c || !len || c->trust != c || kl_cache_check(c, domain) != KL_OK || c->tls_session_len == 0)
        return NULL;
    *len = c->tls_session_len;
    return c->tls_session;
}

const uint8_t *kl_cache_fast_token(const kl_cache_t *c, const char *domain, size_t *len, uint8_t *mech,
                                   uint32_t *expiry)
{
    if (len)
        *len = 0;
    if (!c || !len || !mech || !expiry || c->trust != c || kl_cache_check(c, domain) != KL_OK || c->fast_len == 0 ||
        !c->fast_mech)
        return NULL;
    *len = c->fast_len;
    *mech = c->fast_mech;
    *expiry = c->fast_expiry;
    return c->fast_token;
}

#else
typedef int kl_cache_compiled_out; /* KL_ENABLE_CACHE == 0: the header's stubs */
#endif
