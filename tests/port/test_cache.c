/* The connection-hints cache: what the engine records, what it trusts,
 * how the planner uses it, and the blob's authentication with the device
 * key (kl_cache_load / kl_cache_store / kl_cache_tls_session). */
#include <string.h>

#include "kinglet/kinglet.h"
#include "kl_crypto_mbedtls.h"
#include "kt.h"

#define HDR "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
#define SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define PRE "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" \
            "<pipelining xmlns='urn:xmpp:features:pipelining'/></stream:features>"
#define POST_SCRAM "<stream:features><mechanisms xmlns='" SASL "'><mechanism>SCRAM-SHA-256</mechanism>" \
                   "</mechanisms></stream:features>"

static kl_client_t cl;
static kl_cache_t cache;
static kl_crypto_mbedtls_t mb;
static char out[16384];

static void pump(void)
{
    kl_event_t ev;
    size_t n;
    const uint8_t *p;
    while (kl_engine_poll(&cl, 1, &ev) > 0)
        ;
    p = kl_engine_output(&cl, &n);
    strncat(out, (const char *)p, n);
    kl_engine_output_ack(&cl, n);
}

static void feed(const char *s)
{
    kl_engine_input(&cl, (const uint8_t *)s, strlen(s));
    pump();
}

static void start(const char *jid)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = jid;
    cfg.password = "secret";
    cfg.no_plain = 1;
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.crypto = &mb.table;
    cfg.cache = &cache;
    out[0] = 0;
    kl_client_init(&cl, &cfg);
    kl_client_connect(&cl, 1, KL_CHANNEL_STARTTLS);
    pump();
}

static void to_post_tls(void)
{
    feed(HDR PRE "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    out[0] = 0;
    kl_engine_tls_done(&cl, 1);
    pump();
}

static void test_records_features(void)
{
    memset(&cache, 0xA5, sizeof cache); /* garbage: must be reset, not trusted */
    start("alice@localhost/x");
    KT_CHECK_EQ(kl_cache_check(&cache, "localhost"), KL_OK);
    KT_CHECK_EQ(cache.known, 0);
    to_post_tls();
    KT_CHECK(strstr(out, "<auth") == NULL); /* nothing known: waits for the features */
    feed(HDR POST_SCRAM);
    KT_CHECK(strstr(out, "SCRAM-SHA-256") != NULL);
    KT_CHECK_EQ(cache.known, KL_CACHE_KNOWN_PRE_TLS | KL_CACHE_KNOWN_POST_TLS);
    KT_CHECK(cache.flags & KL_CACHE_PIPELINING);
    KT_CHECK_EQ(kl_cache_check(&cache, "localhost"), KL_OK);
}

static void test_planner_uses_cache(void)
{
    /* second connection: SCRAM rides with the header, no wait for features */
    start("alice@localhost/x");
    to_post_tls();
    KT_CHECK(strstr(out, "<stream:stream") != NULL && strstr(out, "mechanism='SCRAM-SHA-256'") != NULL);
}

static void test_post_auth_and_disappearing_feature(void)
{
    start("alice@localhost/x");
    feed(HDR "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>");
    /* the pipelining feature disappeared before TLS: the hint is dropped */
    KT_CHECK(!(cache.flags & KL_CACHE_PIPELINING));
}

static void test_server_features_follow_caps_ver(void)
{
    uint16_t f = 0;
    start("alice@localhost/x");
    strcpy(cache.caps_ver, "abc=");
    strcpy(cache.disco_ver, "abc=");
    cache.disco_features = KL_SERVER_CARBONS | KL_SERVER_PING;
    KT_CHECK_EQ(kl_server_features(&cl, &f), 1);
    KT_CHECK_EQ(f, KL_SERVER_CARBONS | KL_SERVER_PING);
    /* the server announces another ver: what we had is stale */
    strcpy(cache.caps_ver, "xyz=");
    KT_CHECK_EQ(kl_server_features(&cl, &f), 0);
    cache.caps_ver[0] = 0; /* no caps at all: unknown */
    cache.disco_ver[0] = 0;
    KT_CHECK_EQ(kl_server_features(&cl, &f), 0);
}

static void test_rejects_foreign_and_corrupt(void)
{
    kl_cache_t copy;
    start("alice@localhost/x");
    copy = cache;
    KT_CHECK_EQ(kl_cache_check(&copy, "localhost"), KL_OK);
    KT_CHECK_EQ(kl_cache_check(&copy, "example.org"), KL_ERR_CACHE_FORMAT);
    copy.mechs ^= 1; /* one bit flipped after sealing */
    KT_CHECK_EQ(kl_cache_check(&copy, "localhost"), KL_ERR_CACHE_FORMAT);
    copy = cache;
    copy.version++;
    kl_cache_seal(&copy);
    KT_CHECK_EQ(copy.version, KL_CACHE_VERSION); /* seal writes this build's version */
    copy.size--;
    KT_CHECK_EQ(kl_cache_check(&copy, "localhost"), KL_ERR_CACHE_FORMAT);
    /* another domain's cache is reset at connect */
    cache.known = KL_CACHE_KNOWN_POST_TLS;
    kl_cache_seal(&cache);
    start("bob@example.org");
    KT_CHECK_STR(cache.domain, "example.org");
    KT_CHECK_EQ(cache.known, 0);
}

/* ---- authentication with the device key -------------------------------------- */

#define MECH_BITS 0x04 /* any mechanisms bits: the test only checks they survive */
static const uint8_t key_a[KL_CACHE_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const uint8_t key_b[KL_CACHE_KEY_LEN] = "0123456789abcdef0123456789abcdX";
static _Alignas(kl_cache_t) uint8_t file[sizeof(kl_cache_t)]; /* what is persisted: KL_CACHE_BLOB_SIZE bytes of it */
static kl_cache_t loaded;

/* A device's hints after a session: features, an SRV answer and a TLS session. */
static void make_hints(kl_cache_t *c)
{
    size_t i;
    kl_cache_reset(c, "localhost");
    c->known = KL_CACHE_KNOWN_PRE_TLS | KL_CACHE_KNOWN_POST_TLS;
    c->mechs = MECH_BITS;
    strcpy(c->srv_host, "xmpp.localhost");
    c->srv_port = 5223;
    for (i = 0; i < 200; i++)
        c->tls_session[i] = (uint8_t)(i * 7 + 1);
    c->tls_session_len = 200;
    kl_cache_seal(c);
}

/* Persist c (store with key, or without if key is NULL) into `file`. */
static int persist(kl_cache_t *c, const uint8_t *key)
{
    int st = kl_cache_store(c, &mb.table, key, key ? KL_CACHE_KEY_LEN : 0);
    memcpy(file, c, KL_CACHE_BLOB_SIZE);
    return st;
}

/* A fresh process reads `file` into `loaded`; garbage in the RAM-only tail. */
static int reload(const uint8_t *key)
{
    memset(&loaded, 0x5A, sizeof loaded);
    memcpy(&loaded, file, KL_CACHE_BLOB_SIZE);
    return kl_cache_load(&loaded, "localhost", &mb.table, key, key ? KL_CACHE_KEY_LEN : 0);
}

static void test_auth_round_trip(void)
{
    size_t n = 0;
    const uint8_t *s;
    kl_cache_t c;
    make_hints(&c);
    KT_CHECK_EQ(persist(&c, key_a), KL_OK);
    KT_CHECK_EQ(KL_CACHE_BLOB_SIZE, offsetof(kl_cache_t, mac) + 32);
    KT_CHECK_EQ(((kl_cache_t *)file)->size, KL_CACHE_BLOB_SIZE);
    KT_CHECK_EQ(reload(key_a), KL_OK);
    s = kl_cache_tls_session(&loaded, "localhost", &n);
    KT_CHECK(s != NULL && n == 200 && s[199] == (uint8_t)(199 * 7 + 1));
    KT_CHECK_EQ(loaded.mechs, MECH_BITS);
    KT_CHECK_STR(loaded.srv_host, "xmpp.localhost");
    KT_CHECK(kl_cache_tls_session(&loaded, "example.org", &n) == NULL && n == 0);
    /* the engine updates and seals the loaded hints: still honoured */
    loaded.flags |= KL_CACHE_PIPELINING;
    kl_cache_seal(&loaded);
    KT_CHECK(kl_cache_tls_session(&loaded, "localhost", &n) != NULL && n == 200);
    /* and what is stored again loads again */
    KT_CHECK_EQ(persist(&loaded, key_a), KL_OK);
    KT_CHECK_EQ(reload(key_a), KL_OK);
    KT_CHECK(loaded.flags & KL_CACHE_PIPELINING);
}

static void test_auth_every_byte(void)
{
    size_t i, auth = 0, format = 0, other = 0, n;
    kl_cache_t c;
    uint8_t good[sizeof file];
    make_hints(&c);
    KT_CHECK_EQ(persist(&c, key_a), KL_OK);
    memcpy(good, file, sizeof good);
    for (i = 0; i < KL_CACHE_BLOB_SIZE; i++) {
        int st;
        memcpy(file, good, sizeof file);
        file[i] ^= 0x01; /* one bit, anywhere: the MAC, the checksum, padding, the session... */
        st = reload(key_a);
        if (st == KL_ERR_CACHE_AUTH)
            auth++;
        else if (st == KL_ERR_CACHE_FORMAT && i < offsetof(kl_cache_t, checksum))
            format++; /* magic, version, size: not this build's layout */
        else
            other++;
        /* ignored whole: reset, nothing of it left, no session */
        if (loaded.known != 0 || loaded.srv_host[0] || kl_cache_tls_session(&loaded, "localhost", &n) != NULL)
            other++;
    }
    KT_CHECK_EQ(format, offsetof(kl_cache_t, checksum));
    KT_CHECK_EQ(auth, KL_CACHE_BLOB_SIZE - offsetof(kl_cache_t, checksum));
    KT_CHECK_EQ(other, 0);
    /* a checksum recomputed after the change (what a forger does) is still caught */
    memcpy(file, good, sizeof file);
    ((kl_cache_t *)file)->srv_port = 443;
    kl_cache_seal((kl_cache_t *)file);
    KT_CHECK_EQ(reload(key_a), KL_ERR_CACHE_AUTH);
}

static void test_auth_wrong_key(void)
{
    size_t n;
    kl_cache_t c;
    make_hints(&c);
    KT_CHECK_EQ(persist(&c, key_b), KL_OK); /* a valid-looking MAC, another key */
    KT_CHECK_EQ(reload(key_a), KL_ERR_CACHE_AUTH);
    KT_CHECK(kl_cache_tls_session(&loaded, "localhost", &n) == NULL);
    KT_CHECK_EQ(loaded.known, 0);
    KT_CHECK_EQ(kl_cache_check(&loaded, "localhost"), KL_OK); /* reset: the engine can use it */
    KT_CHECK_EQ(reload(key_b), KL_OK);
    KT_CHECK_EQ(kl_cache_load(&loaded, "localhost", &mb.table, key_a, 16), KL_ERR_ARG); /* 32 bytes only */
    /* authentic, but for another domain */
    make_hints(&c);
    kl_cache_reset(&c, "example.org");
    c.tls_session_len = 10;
    kl_cache_seal(&c);
    KT_CHECK_EQ(persist(&c, key_a), KL_OK);
    KT_CHECK_EQ(reload(key_a), KL_ERR_CACHE_FORMAT);
    KT_CHECK_STR(loaded.domain, "localhost");
    /* nothing persisted yet (zeroes): not this build's, nothing reported by a caller that read nothing */
    memset(file, 0, sizeof file);
    KT_CHECK_EQ(reload(key_a), KL_ERR_CACHE_FORMAT);
}

static void test_auth_no_key(void)
{
    size_t n, i, nonzero = 0;
    kl_cache_t c;
    /* stored without a key: the TLS session is not kept, the rest is */
    make_hints(&c);
    KT_CHECK_EQ(persist(&c, NULL), KL_ERR_CACHE_NO_KEY);
    KT_CHECK_EQ(((kl_cache_t *)file)->tls_session_len, 0);
    for (i = 0; i < sizeof c.tls_session; i++)
        nonzero += ((kl_cache_t *)file)->tls_session[i] != 0;
    KT_CHECK_EQ(nonzero, 0); /* not a byte of the secret on disk */
    KT_CHECK_EQ(reload(NULL), KL_ERR_CACHE_NO_KEY);
    KT_CHECK_STR(loaded.srv_host, "xmpp.localhost");
    KT_CHECK(kl_cache_tls_session(&loaded, "localhost", &n) == NULL);
    /* a keyless blob does not pass for an authentic one */
    KT_CHECK_EQ(reload(key_a), KL_ERR_CACHE_AUTH);
    /* an authentic blob read without a key: its session is dropped */
    make_hints(&c);
    KT_CHECK_EQ(persist(&c, key_a), KL_OK);
    KT_CHECK_EQ(reload(NULL), KL_ERR_CACHE_NO_KEY);
    KT_CHECK(kl_cache_tls_session(&loaded, "localhost", &n) == NULL);
    KT_CHECK_EQ(loaded.tls_session_len, 0);
    KT_CHECK_EQ(loaded.mechs, MECH_BITS);
    /* a port that saves a session while there is no key: not persisted */
    loaded.tls_session_len = 5;
    KT_CHECK_EQ(persist(&loaded, NULL), KL_ERR_CACHE_NO_KEY);
    KT_CHECK_EQ(((kl_cache_t *)file)->tls_session_len, 0);
    /* a crypto table without HMAC is no key either */
    {
        kl_crypto_t none = mb.table;
        none.hmac = NULL;
        make_hints(&c);
        KT_CHECK_EQ(kl_cache_store(&c, &none, key_a, KL_CACHE_KEY_LEN), KL_ERR_CACHE_NO_KEY);
        KT_CHECK_EQ(c.tls_session_len, 0);
    }
}

static void test_auth_marker_not_from_bytes(void)
{
    size_t n;
    kl_cache_t c, copy;
    kl_cache_t *forged = (kl_cache_t *)file;
    /* A forger writes the whole struct, the RAM-only marker included, set
     * to the address the victim loads into, with a MAC of another key. */
    make_hints(&c);
    KT_CHECK_EQ(persist(&c, key_b), KL_OK);
    memcpy(file, &c, sizeof c);
    forged->trust = &loaded;
    memcpy(&loaded, file, sizeof loaded);
    KT_CHECK(loaded.trust == &loaded); /* the marker is there... */
    KT_CHECK_EQ(kl_cache_load(&loaded, "localhost", &mb.table, key_a, KL_CACHE_KEY_LEN), KL_ERR_CACHE_AUTH);
    KT_CHECK(kl_cache_tls_session(&loaded, "localhost", &n) == NULL); /* ...and load clears it */
    /* bytes that never went through kl_cache_load: never resumed from, even
     * with a correct checksum (what the engine checks) */
    make_hints(&c);
    KT_CHECK_EQ(persist(&c, key_a), KL_OK);
    memset(&loaded, 0, sizeof loaded);
    memcpy(&loaded, file, KL_CACHE_BLOB_SIZE);
    KT_CHECK_EQ(kl_cache_check(&loaded, "localhost"), KL_OK);
    KT_CHECK(kl_cache_tls_session(&loaded, "localhost", &n) == NULL);
    /* and kl_cache_store does not bless them: the session goes */
    KT_CHECK_EQ(kl_cache_store(&loaded, &mb.table, key_a, KL_CACHE_KEY_LEN), KL_ERR_STATE);
    KT_CHECK_EQ(loaded.tls_session_len, 0);
    /* a copy of an authenticated object is not authenticated */
    make_hints(&c);
    KT_CHECK_EQ(persist(&c, key_a), KL_OK);
    KT_CHECK_EQ(reload(key_a), KL_OK);
    copy = loaded;
    KT_CHECK(kl_cache_tls_session(&loaded, "localhost", &n) != NULL);
    KT_CHECK(kl_cache_tls_session(&copy, "localhost", &n) == NULL);
}

static void test_auth_engine_keeps_loaded(void)
{
    size_t n;
    kl_cache_t c;
    make_hints(&c);
    KT_CHECK_EQ(persist(&c, key_a), KL_OK);
    memset(&cache, 0, sizeof cache);
    memcpy(&cache, file, KL_CACHE_BLOB_SIZE);
    KT_CHECK_EQ(kl_cache_load(&cache, "localhost", &mb.table, key_a, KL_CACHE_KEY_LEN), KL_OK);
    start("alice@localhost/x"); /* the engine checks the hints at connect and keeps them */
    KT_CHECK(kl_cache_tls_session(&cache, "localhost", &n) != NULL && n == 200);
    to_post_tls();
    feed(HDR POST_SCRAM);
    KT_CHECK(kl_cache_tls_session(&cache, "localhost", &n) != NULL && n == 200);
    KT_CHECK_EQ(kl_cache_store(&cache, &mb.table, key_a, KL_CACHE_KEY_LEN), KL_OK);
    memcpy(file, &cache, KL_CACHE_BLOB_SIZE);
    KT_CHECK_EQ(reload(key_a), KL_OK);
    /* a connect for another domain resets them: nothing of them offered */
    start("bob@example.org");
    KT_CHECK(kl_cache_tls_session(&cache, "localhost", &n) == NULL);
    KT_CHECK(kl_cache_tls_session(&cache, "example.org", &n) == NULL);
}

/* ---- arguments, bounds and a failing HMAC ------------------------------------ */

static int hmac_fails(void *ctx, kl_hash_alg_t alg, const uint8_t *key, size_t key_len, const kl_slice_t *parts,
                      size_t nparts, uint8_t *mac)
{
    (void)ctx, (void)alg, (void)key, (void)key_len, (void)parts, (void)nparts, (void)mac;
    return -1;
}

static void test_arguments(void)
{
    size_t n = 7;
    uint8_t mech = 9;
    uint32_t expiry = 11;
    kl_cache_t c;
    KT_CHECK_EQ(kl_cache_check(NULL, "localhost"), KL_ERR_ARG);
    make_hints(&c);
    KT_CHECK_EQ(kl_cache_check(&c, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_cache_load(NULL, "localhost", &mb.table, key_a, KL_CACHE_KEY_LEN), KL_ERR_ARG);
    KT_CHECK_EQ(kl_cache_store(NULL, &mb.table, key_a, KL_CACHE_KEY_LEN), KL_ERR_ARG);
    /* no domain: KL_ERR_ARG, c left as it was (nothing to reset it for) but not trusted */
    KT_CHECK_EQ(kl_cache_load(&c, NULL, &mb.table, key_a, KL_CACHE_KEY_LEN), KL_ERR_ARG);
    KT_CHECK_EQ(c.tls_session_len, 200);
    KT_CHECK_STR(c.srv_host, "xmpp.localhost");
    KT_CHECK(kl_cache_tls_session(&c, "localhost", &n) == NULL && n == 0);
    /* NULL out-parameters: NULL, nothing written */
    make_hints(&c);
    c.fast_len = 3;
    c.fast_mech = 1;
    kl_cache_seal(&c);
    KT_CHECK(kl_cache_tls_session(&c, "localhost", NULL) == NULL);
    KT_CHECK(kl_cache_tls_session(NULL, "localhost", &n) == NULL && n == 0);
    n = 7;
    KT_CHECK(kl_cache_fast_token(&c, "localhost", NULL, &mech, &expiry) == NULL);
    KT_CHECK(kl_cache_fast_token(&c, "localhost", &n, NULL, &expiry) == NULL && n == 0);
    n = 7;
    KT_CHECK(kl_cache_fast_token(&c, "localhost", &n, &mech, NULL) == NULL && n == 0);
    n = 7;
    KT_CHECK(kl_cache_fast_token(NULL, "localhost", &n, &mech, &expiry) == NULL && n == 0);
    KT_CHECK_EQ(mech, 9);
    KT_CHECK_EQ(expiry, 11);
    KT_CHECK(kl_cache_fast_token(&c, "localhost", &n, &mech, &expiry) == c.fast_token && n == 3 && mech == 1);
    /* not for another domain, nor from a copy (it never went through kl_cache_load or _reset) */
    {
        kl_cache_t copy = c;
        n = 7;
        KT_CHECK(kl_cache_fast_token(&c, "example.org", &n, &mech, &expiry) == NULL && n == 0);
        n = 7;
        KT_CHECK(kl_cache_fast_token(&copy, "localhost", &n, &mech, &expiry) == NULL && n == 0);
    }
    /* a token without its mechanism bit is no token */
    c.fast_mech = 0;
    kl_cache_seal(&c);
    n = 7;
    KT_CHECK(kl_cache_fast_token(&c, "localhost", &n, &mech, &expiry) == NULL && n == 0);
}

static void test_bounds(void)
{
    size_t n;
    kl_cache_t c;
    char longdom[sizeof c.domain + 1];
    /* a domain that does not fit: reset to an empty one, which no domain matches */
    memset(longdom, 'a', sizeof longdom - 1);
    longdom[sizeof longdom - 1] = 0;
    kl_cache_reset(&c, longdom);
    KT_CHECK_STR(c.domain, "");
    KT_CHECK_EQ(kl_cache_check(&c, longdom), KL_ERR_CACHE_FORMAT);
    KT_CHECK_EQ(kl_cache_check(&c, ""), KL_OK);
    longdom[sizeof longdom - 2] = 0; /* the longest that fits */
    kl_cache_reset(&c, longdom);
    KT_CHECK_STR(c.domain, longdom);
    KT_CHECK_EQ(kl_cache_check(&c, longdom), KL_OK);
    /* a FAST length past its buffer: not this build's */
    make_hints(&c);
    c.fast_len = sizeof c.fast_token;
    kl_cache_seal(&c);
    KT_CHECK_EQ(kl_cache_check(&c, "localhost"), KL_OK);
    c.fast_len = sizeof c.fast_token + 1;
    kl_cache_seal(&c);
    KT_CHECK_EQ(kl_cache_check(&c, "localhost"), KL_ERR_CACHE_FORMAT);
    /* stored so: both secrets dropped, the rest MACed and loadable */
    c.fast_mech = 1;
    KT_CHECK_EQ(persist(&c, key_a), KL_OK);
    KT_CHECK_EQ(c.fast_len, 0);
    KT_CHECK_EQ(c.fast_mech, 0);
    KT_CHECK_EQ(c.tls_session_len, 0);
    KT_CHECK_EQ(reload(key_a), KL_OK);
    KT_CHECK_STR(loaded.srv_host, "xmpp.localhost");
    KT_CHECK(kl_cache_tls_session(&loaded, "localhost", &n) == NULL);
    /* the same with a TLS session length past its buffer */
    make_hints(&c);
    c.tls_session_len = sizeof c.tls_session + 1;
    KT_CHECK_EQ(persist(&c, key_a), KL_OK);
    KT_CHECK_EQ(c.tls_session_len, 0);
    KT_CHECK_EQ(c.tls_session[0], 0);
    KT_CHECK_EQ(reload(key_a), KL_OK);
    /* a key of the wrong length at store: no key */
    make_hints(&c);
    KT_CHECK_EQ(kl_cache_store(&c, &mb.table, key_a, 16), KL_ERR_CACHE_NO_KEY);
    KT_CHECK_EQ(c.tls_session_len, 0);
    memcpy(file, &c, KL_CACHE_BLOB_SIZE);
    KT_CHECK_EQ(reload(key_a), KL_ERR_CACHE_AUTH);
}

static void test_hmac_fails(void)
{
    size_t n, i, nonzero = 0;
    kl_cache_t c;
    kl_crypto_t bad = mb.table;
    bad.hmac = hmac_fails;
    /* store: sealed without a MAC and without the secrets */
    make_hints(&c);
    c.fast_len = 4;
    c.fast_mech = 1;
    KT_CHECK_EQ(kl_cache_store(&c, &bad, key_a, KL_CACHE_KEY_LEN), KL_ERR_CACHE_NO_KEY);
    KT_CHECK_EQ(c.tls_session_len, 0);
    KT_CHECK_EQ(c.fast_len, 0);
    for (i = 0; i < sizeof c.mac; i++)
        nonzero += c.mac[i] != 0;
    KT_CHECK_EQ(nonzero, 0);
    KT_CHECK_EQ(kl_cache_check(&c, "localhost"), KL_OK);
    KT_CHECK_STR(c.srv_host, "xmpp.localhost");
    /* load: an authentic blob that cannot be checked is ignored whole */
    make_hints(&c);
    KT_CHECK_EQ(persist(&c, key_a), KL_OK);
    memcpy(&loaded, file, KL_CACHE_BLOB_SIZE);
    KT_CHECK_EQ(kl_cache_load(&loaded, "localhost", &bad, key_a, KL_CACHE_KEY_LEN), KL_ERR_CACHE_AUTH);
    KT_CHECK_EQ(loaded.known, 0);
    KT_CHECK_STR(loaded.srv_host, "");
    KT_CHECK(kl_cache_tls_session(&loaded, "localhost", &n) == NULL);
    KT_CHECK_EQ(kl_cache_check(&loaded, "localhost"), KL_OK);
}

int main(void)
{
    KT_CHECK_EQ(kl_crypto_mbedtls_init(&mb), 0);
    KT_RUN(test_records_features);
    KT_RUN(test_planner_uses_cache);
    KT_RUN(test_post_auth_and_disappearing_feature);
    KT_RUN(test_server_features_follow_caps_ver);
    KT_RUN(test_rejects_foreign_and_corrupt);
    KT_RUN(test_auth_round_trip);
    KT_RUN(test_auth_every_byte);
    KT_RUN(test_auth_wrong_key);
    KT_RUN(test_auth_no_key);
    KT_RUN(test_auth_marker_not_from_bytes);
    KT_RUN(test_auth_engine_keeps_loaded);
    KT_RUN(test_arguments);
    KT_RUN(test_bounds);
    KT_RUN(test_hmac_fails);
    kl_crypto_mbedtls_free(&mb);
    return kt_summary("cache");
}
