/* The connection-hints cache: what the engine records, what it trusts,
 * and how the planner uses it. */
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
    kl_client_connect(&cl, 1);
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
    KT_CHECK_EQ(kl_cache_check(&copy, "example.org"), KL_ERR_ARG);
    copy.mechs ^= 1; /* one bit flipped after sealing */
    KT_CHECK_EQ(kl_cache_check(&copy, "localhost"), KL_ERR_ARG);
    copy = cache;
    copy.version++;
    kl_cache_seal(&copy);
    KT_CHECK_EQ(copy.version, KL_CACHE_VERSION); /* seal writes this build's version */
    copy.size--;
    KT_CHECK_EQ(kl_cache_check(&copy, "localhost"), KL_ERR_ARG);
    /* another domain's cache is reset at connect */
    cache.known = KL_CACHE_KNOWN_POST_TLS;
    kl_cache_seal(&cache);
    start("bob@example.org");
    KT_CHECK_STR(cache.domain, "example.org");
    KT_CHECK_EQ(cache.known, 0);
}

int main(void)
{
    KT_CHECK_EQ(kl_crypto_mbedtls_init(&mb), 0);
    KT_RUN(test_records_features);
    KT_RUN(test_planner_uses_cache);
    KT_RUN(test_post_auth_and_disappearing_feature);
    KT_RUN(test_server_features_follow_caps_ver);
    KT_RUN(test_rejects_foreign_and_corrupt);
    kl_crypto_mbedtls_free(&mb);
    return kt_summary("cache");
}
