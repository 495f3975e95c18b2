/* libFuzzer target: the connection-hints blob as read from storage, and
 * the engine planning a login from whatever hints pass.
 *
 * Input layout:
 *   byte 0   options: bit 0 give the blob a valid MAC (what an attacker who
 *            knows the key, or a bug that stored garbage, would leave: the
 *            field checks after authentication are what is fuzzed);
 *            bit 1 also seal it (magic, version, size, checksum valid);
 *            bit 2 load without a key; bits 3-4 pipelining off/safe/full;
 *            bit 5 force_full; bit 6 TLS verified; bit 7 allow_plaintext
 *   then     the blob's bytes (KL_CACHE_BLOB_SIZE, zero-padded), then the
 *            server's stream for the login that follows (whole).
 *
 * Invariants (abort on violation):
 *  - kl_cache_load returns one of its documented statuses; after anything
 *    but KL_OK / KL_ERR_CACHE_NO_KEY the blob is empty for the domain;
 *  - kl_cache_tls_session never hands out a session after a failed or
 *    keyless load, and only ever one inside the blob's session field;
 *  - an authentic blob survives kl_cache_store + kl_cache_load unchanged;
 *  - the engine, whatever the hints say: no "<auth" before TLS, none over
 *    an unverified channel without allow_plaintext, output within the
 *    transmit buffer, poll 0/1, the session ends or stays consistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* white-box: the invariants checked look inside kl_client_t */
#define KL_CORE_BUILD
#include "kinglet/kinglet.h"
#include "fuzz_util.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static const uint8_t key[KL_CACHE_KEY_LEN] = {7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                              16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

/* A toy keyed hash in HMAC's shape: the MAC logic is what is fuzzed. */
static int toy_hmac(void *ctx, kl_hash_alg_t alg, const uint8_t *k, size_t klen, const kl_slice_t *parts,
                    size_t nparts, uint8_t *out)
{
    uint64_t h = 14695981039346656037ull;
    size_t i, j;
    (void)ctx;
    CHECK(alg == KL_HASH_SHA256);
    for (i = 0; i < klen; i++)
        h = (h ^ k[i]) * 1099511628211ull;
    for (j = 0; j < nparts; j++)
        for (i = 0; i < parts[j].len; i++)
            h = (h ^ parts[j].p[i]) * 1099511628211ull;
    for (i = 0; i < 32; i++) {
        h = (h ^ i) * 1099511628211ull;
        out[i] = (uint8_t)(h >> 56);
    }
    return 0;
}

static int toy_random(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    memset(out, 0x5a, len);
    return 0;
}

static const kl_crypto_t toy = {NULL, NULL, toy_hmac, NULL, toy_random};

static void sign(kl_cache_t *c)
{
    static const char label[] = "kinglet-hints";
    kl_slice_t parts[2];
    uint8_t mac[32];
    parts[0].p = (const uint8_t *)label;
    parts[0].len = sizeof label - 1;
    parts[1].p = (const uint8_t *)c;
    parts[1].len = offsetof(kl_cache_t, mac);
    toy_hmac(NULL, KL_HASH_SHA256, key, sizeof key, parts, 2, mac);
    memcpy(c->mac, mac, KL_CACHE_MAC_LEN);
}

static kl_cache_t cache, again;
static kl_client_t cl;
static int tls_done, allowed;

static void drain(void)
{
    size_t n;
    const uint8_t *p = kl_engine_output(&cl, &n);
    CHECK(n <= KL_TX_BUF_SIZE);
    if (!allowed)
        CHECK(!has(p, n, "<auth"));
    kl_engine_output_ack(&cl, n);
}

static void pump(int verified)
{
    kl_event_t ev;
    int r, guard = 0;
    while ((r = kl_engine_poll(&cl, 1000, &ev)) > 0) {
        CHECK(r == 1 && ev.type > KL_EV_NONE && ev.type <= KL_EV_ERROR);
        drain();
        if (ev.type == KL_EV_START_TLS && !ev.early) {
            tls_done = 1;
            allowed = verified || cl.cfg.allow_plaintext;
            CHECK(kl_engine_tls_done(&cl, verified) == KL_OK);
        }
        CHECK(++guard < 100000);
    }
    CHECK(r == 0);
    drain();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kl_client_config_t cfg;
    unsigned o;
    size_t n, len, cap;
    int st;
    const uint8_t *sess;
    if (size < 1)
        return 0;
    o = data[0];
    data++, size--;
    n = size < KL_CACHE_BLOB_SIZE ? size : KL_CACHE_BLOB_SIZE;
    memset(&cache, 0, sizeof cache);
    memcpy(&cache, data, n);
    data += n, size -= n;
    if (o & 2)
        kl_cache_seal(&cache);
    if (o & 1)
        sign(&cache);

    st = kl_cache_load(&cache, "localhost", (o & 4) ? NULL : &toy, (o & 4) ? NULL : key, KL_CACHE_KEY_LEN);
    CHECK(st == KL_OK || st == KL_ERR_CACHE_AUTH || st == KL_ERR_CACHE_FORMAT || st == KL_ERR_CACHE_NO_KEY);
    sess = kl_cache_tls_session(&cache, "localhost", &len);
    if (sess) {
        CHECK(st == KL_OK);
        CHECK(sess == cache.tls_session && len > 0 && len <= sizeof cache.tls_session);
    } else {
        CHECK(len == 0);
    }
    if (st != KL_OK && st != KL_ERR_CACHE_NO_KEY)
        CHECK(cache.known == 0 && cache.flags == 0 && cache.tls_session_len == 0);
    CHECK(kl_cache_check(&cache, "localhost") == KL_OK);
    if (st == KL_OK) {
        /* an authentic blob survives a store and a load */
        CHECK(kl_cache_store(&cache, &toy, key, sizeof key) == KL_OK);
        memcpy(&again, &cache, KL_CACHE_BLOB_SIZE);
        memset((uint8_t *)&again + KL_CACHE_BLOB_SIZE, 0, sizeof again - KL_CACHE_BLOB_SIZE);
        CHECK(kl_cache_load(&again, "localhost", &toy, key, sizeof key) == KL_OK);
        CHECK(memcmp(&again, &cache, KL_CACHE_BLOB_SIZE) == 0);
    }

    /* the engine plans its login from these hints */
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.pipelining = (kl_pipelining_t)((o >> 3) & 3) > KL_PIPELINING_FULL ? KL_PIPELINING_FULL
                                                                           : (kl_pipelining_t)((o >> 3) & 3);
    cfg.force_full = (uint8_t)((o >> 5) & 1);
    cfg.allow_plaintext = (uint8_t)((o >> 7) & 1);
    cfg.random = toy_random;
    cfg.cache = &cache;
    CHECK(kl_client_init(&cl, &cfg) == KL_OK);
    tls_done = 0;
    allowed = cfg.allow_plaintext;
    CHECK(kl_client_connect(&cl, 1000, KL_CHANNEL_STARTTLS) == KL_OK);
    drain();
    while (size > 0) {
        uint8_t *buf = kl_engine_input_buf(&cl, &cap);
        if (cap == 0) {
            pump((o >> 6) & 1);
            buf = kl_engine_input_buf(&cl, &cap);
            if (cap == 0)
                break;
        }
        n = size < cap ? size : cap;
        memcpy(buf, data, n);
        kl_engine_input_ack(&cl, n);
        data += n, size -= n;
        pump((o >> 6) & 1);
    }
    pump((o >> 6) & 1);
    /* the engine keeps the hints consistent */
    CHECK(kl_cache_check(&cache, "localhost") == KL_OK);
    return 0;
}
