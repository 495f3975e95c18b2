/* SCRAM-SHA-256 / SCRAM-SHA-1 through the engine with mbedTLS's hashes,
 * against vectors computed independently (Python's hashlib/hmac), plus the
 * refusals: a wrong server signature, a nonce that does not extend ours, an
 * iteration count past KL_SCRAM_MAX_ITERATIONS, and the fallback from a
 * pipelined PLAIN to SCRAM when the server no longer offers PLAIN. */
#include <string.h>

/* white-box: one case takes the crypto table away in the middle of a login */
#define KL_CORE_BUILD
#include "kinglet/kinglet.h"
#include "kl_crypto_mbedtls.h"
#include "mbedtls/pkcs5.h"
#include "kt.h"

#define HDR "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
#define SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define AUTH_B64 "biwsbj1hbGljZSxyPUFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWA=="
#define CHAL "cj1BQkNERUZHSElKS0xNTk9QUVJTVFVWV1hTRVJWRVJub25jZTQyLHM9YzJGc2RITmhiSFJ6WVd4ME1USXpOQT09LGk9NDA5Ng=="
#define RESP256 "Yz1iaXdzLHI9QUJDREVGR0hJSktMTU5PUFFSU1RVVldYU0VSVkVSbm9uY2U0MixwPUdPQnh5bWNjZnJrZ21UVHpJbE0wY3VmdnMxOGRaMDJIVlgvQU9FK2xhbjQ9"
#define SUCC256 "dj0zOXl2VlZseExYUENTK2p5R1FKbUNuc1RwejBUdzlFclJXa2NCdmU5cXBZPQ=="
#define RESP1 "Yz1iaXdzLHI9QUJDREVGR0hJSktMTU5PUFFSU1RVVldYU0VSVkVSbm9uY2U0MixwPVN2cFhDUTBIVENIZGwrejd4TE5MY2pFUjVHND0="
#define SUCC1 "dj1rMm5rYTdHdTVjdWpxbWtveGMraVFCcGdIR1U9"

static kl_client_t cl;
static kl_crypto_mbedtls_t mb;
static kl_crypto_t fixed; /* mbedTLS hashes, deterministic nonce */
static char out[16384];
static int last_status, online;

static int fixed_random(void *ctx, uint8_t *o, size_t n)
{
    size_t i;
    (void)ctx;
    for (i = 0; i < n; i++)
        o[i] = (uint8_t)i; /* nonce "ABCDEFGHIJKLMNOPQRSTUVWX" */
    return 0;
}

static void pump(void)
{
    kl_event_t ev;
    size_t n;
    const uint8_t *p;
    while (kl_engine_poll(&cl, 1, &ev) > 0) {
        if (ev.type == KL_EV_ERROR)
            last_status = ev.status;
        if (ev.type == KL_EV_ONLINE)
            online = 1;
    }
    p = kl_engine_output(&cl, &n);
    strncat(out, (const char *)p, n);
    kl_engine_output_ack(&cl, n);
}

static void feed(const char *s)
{
    kl_engine_input(&cl, (const uint8_t *)s, strlen(s));
    pump();
}

static void start(int no_plain, const char *features)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/x";
    cfg.password = "secret";
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.no_plain = (uint8_t)no_plain;
    cfg.crypto = &fixed;
    out[0] = 0;
    last_status = online = 0;
    kl_client_init(&cl, &cfg);
    kl_client_connect(&cl, 1, KL_CHANNEL_STARTTLS);
    pump();
    feed(HDR "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"
             "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    kl_engine_tls_done(&cl, 1);
    pump();
    feed(HDR);
    feed(features);
}

#define FEAT(m) "<stream:features><mechanisms xmlns='" SASL "'>" m "</mechanisms></stream:features>"
#define M(x) "<mechanism>" x "</mechanism>"

static void test_scram_sha256(void)
{
    start(1, FEAT(M("SCRAM-SHA-1") M("SCRAM-SHA-256") M("PLAIN")));
    KT_CHECK(strstr(out, "mechanism='SCRAM-SHA-256'>" AUTH_B64 "</auth>") != NULL);
    KT_CHECK(strstr(out, "PLAIN") == NULL);
    feed("<challenge xmlns='" SASL "'>" CHAL "</challenge>");
    KT_CHECK(strstr(out, "<response xmlns='" SASL "'>" RESP256 "</response>") != NULL);
    feed("<success xmlns='" SASL "'>" SUCC256 "</success>");
    KT_CHECK_EQ(last_status, 0);
    KT_CHECK(strstr(out, "kl-bind") != NULL);
    KT_CHECK_STR(kl_client_sasl_mechanism(&cl), "SCRAM-SHA-256");
}

static void test_scram_sha1(void)
{
    start(1, FEAT(M("SCRAM-SHA-1")));
    KT_CHECK(strstr(out, "mechanism='SCRAM-SHA-1'>" AUTH_B64 "</auth>") != NULL);
    feed("<challenge xmlns='" SASL "'>" CHAL "</challenge>");
    KT_CHECK(strstr(out, RESP1) != NULL);
    feed("<success xmlns='" SASL "'>" SUCC1 "</success>");
    KT_CHECK_EQ(last_status, 0);
    KT_CHECK(strstr(out, "kl-bind") != NULL);
}

static void test_wrong_server_signature(void)
{
    start(1, FEAT(M("SCRAM-SHA-256")));
    feed("<challenge xmlns='" SASL "'>" CHAL "</challenge>");
    feed("<success xmlns='" SASL "'>" SUCC1 "</success>"); /* SHA-1's signature */
    KT_CHECK_EQ(last_status, KL_ERR_AUTH);
    KT_CHECK(strstr(out, "kl-bind") == NULL);
    start(1, FEAT(M("SCRAM-SHA-256")));
    feed("<challenge xmlns='" SASL "'>" CHAL "</challenge>");
    feed("<success xmlns='" SASL "'/>"); /* no signature at all */
    KT_CHECK_EQ(last_status, KL_ERR_AUTH);
}

static void test_bad_challenges(void)
{
    /* "r=XYZ,s=c2FsdA==,i=4096": the nonce does not extend ours */
    start(1, FEAT(M("SCRAM-SHA-256")));
    feed("<challenge xmlns='" SASL "'>cj1YWVoscz1jMkZzZEE9PSxpPTQwOTY=</challenge>");
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
    KT_CHECK(strstr(out, "<response") == NULL);
    /* i=999999999: beyond KL_SCRAM_MAX_ITERATIONS */
    start(1, FEAT(M("SCRAM-SHA-256")));
    feed("<challenge xmlns='" SASL "'>cj1BQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWixzPWMyRnNkQT09LGk9OTk5OTk5OTk5</challenge>");
    KT_CHECK_EQ(last_status, KL_ERR_SCRAM_ITERATIONS);
    KT_CHECK(strstr(out, "<response") == NULL);
    /* i=4095: below RFC 7677's floor */
    start(1, FEAT(M("SCRAM-SHA-256")));
    feed("<challenge xmlns='" SASL "'>cj1BQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWixzPWMyRnNkQT09LGk9NDA5NQ==</challenge>");
    KT_CHECK_EQ(last_status, KL_ERR_SCRAM_ITERATIONS);
    KT_CHECK(strstr(out, "<response") == NULL);
    /* not base64 */
    start(1, FEAT(M("SCRAM-SHA-256")));
    feed("<challenge xmlns='" SASL "'>!!!!</challenge>");
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
}

/* SCRAM hashes SASLprep'd credentials: ASCII passes unchanged, anything
 * else is refused by name rather than hashed into the wrong bytes. */
static void start_with(const char *jid, const char *password, int no_plain, const char *features)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = jid;
    cfg.password = password;
    cfg.pipelining = KL_PIPELINING_OFF;
    cfg.no_plain = (uint8_t)no_plain;
    cfg.crypto = &fixed;
    out[0] = 0;
    last_status = online = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    kl_client_connect(&cl, 1, KL_CHANNEL_TLS_VERIFIED);
    pump();
    feed(HDR);
    feed(features);
}

static void test_saslprep(void)
{
    const char *bad_pw[] = {"s\xc3\xa9" "cret", "sec\x01ret", "tab\there", "del\x7f"};
    size_t i;
    for (i = 0; i < sizeof bad_pw / sizeof bad_pw[0]; i++) {
        start_with("alice@localhost/x", bad_pw[i], 1, FEAT(M("SCRAM-SHA-256") M("PLAIN")));
        KT_CHECK_EQ(last_status, KL_ERR_SASLPREP);
        KT_CHECK(strstr(out, "<auth") == NULL);
    }
    start_with("\xc3\xa9lise@localhost/x", "secret", 1, FEAT(M("SCRAM-SHA-1")));
    KT_CHECK_EQ(last_status, KL_ERR_SASLPREP);
    KT_CHECK(strstr(out, "<auth") == NULL);
    /* PLAIN leaves the preparation to the server (RFC 4616): UTF-8 as is */
    start_with("alice@localhost/x", "s\xc3\xa9" "cret", 0, FEAT(M("SCRAM-SHA-256") M("PLAIN")));
    KT_CHECK_EQ(last_status, 0);
    KT_CHECK(strstr(out, "mechanism='PLAIN'>AGFsaWNlAHPDqWNyZXQ=</auth>") != NULL);
    /* printable ASCII with SCRAM's own escapes is fine */
    start_with("a=b,c@localhost/x", "p a=s,s", 1, FEAT(M("SCRAM-SHA-256")));
    KT_CHECK_EQ(last_status, 0);
    KT_CHECK(strstr(out, "mechanism='SCRAM-SHA-256'>") != NULL);
}

static void test_plain_pipelined_falls_back_to_scram(void)
{
    start(0, FEAT(M("SCRAM-SHA-256")));
    /* PLAIN rode with the header; the features say it is not offered */
    KT_CHECK(strstr(out, "mechanism='PLAIN'") != NULL);
    KT_CHECK(strstr(out, "SCRAM") == NULL);
    feed("<failure xmlns='" SASL "'><invalid-mechanism/></failure>");
    KT_CHECK_EQ(last_status, 0);
    KT_CHECK(strstr(out, "mechanism='SCRAM-SHA-256'>" AUTH_B64 "</auth>") != NULL);
    feed("<challenge xmlns='" SASL "'>" CHAL "</challenge>");
    feed("<success xmlns='" SASL "'>" SUCC256 "</success>");
    KT_CHECK_EQ(last_status, 0);
    KT_CHECK(strstr(out, "kl-bind") != NULL);
    /* without crypto there is nothing to fall back to */
    start(0, FEAT(M("SCRAM-SHA-256")));
    cl.cfg.crypto = NULL;
    feed("<failure xmlns='" SASL "'><invalid-mechanism/></failure>");
    KT_CHECK_EQ(last_status, KL_ERR_NO_MECHANISM);
}

/* The port's PBKDF2 (inner/outer HMAC states computed once) against
 * RFC 6070's PBKDF2-HMAC-SHA1 vectors, RFC 7914 §11's PBKDF2-HMAC-SHA256
 * ones, and mbedTLS's own PBKDF2 over odd sizes (keys longer than a block,
 * empty password and salt, outputs of several blocks and part blocks). */
static void hexeq(const uint8_t *got, const char *hex, size_t n)
{
    char buf[2 * 64 + 1];
    for (size_t i = 0; i < n; i++)
        snprintf(buf + 2 * i, 3, "%02x", got[i]);
    KT_CHECK_STR(buf, hex);
}

static void test_pbkdf2(void)
{
    static const struct {
        kl_hash_alg_t alg;
        const char *pw, *salt;
        uint32_t c;
        size_t n;
        const char *hex;
    } v[] = {
        {KL_HASH_SHA1, "password", "salt", 1, 20, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
        {KL_HASH_SHA1, "password", "salt", 2, 20, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
        {KL_HASH_SHA1, "password", "salt", 4096, 20, "4b007901b765489abead49d926f721d065a429c1"},
        {KL_HASH_SHA1, "passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 25,
         "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"},
        {KL_HASH_SHA256, "passwd", "salt", 1, 64,
         "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
         "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"},
        {KL_HASH_SHA256, "Password", "NaCl", 80000, 64,
         "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
         "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"},
    };
    uint8_t out[64], ref[64];
    char pw[200], salt[200];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        memset(out, 0, sizeof out);
        KT_CHECK_EQ(mb.table.pbkdf2(mb.table.ctx, v[i].alg, (const uint8_t *)v[i].pw, strlen(v[i].pw),
                                    (const uint8_t *)v[i].salt, strlen(v[i].salt), v[i].c, out, v[i].n), 0);
        hexeq(out, v[i].hex, v[i].n);
    }
    for (size_t pl = 0; pl <= 130; pl += 13)
        for (size_t n = 1; n <= 64; n += 21)
            for (int a = 1; a <= 2; a++) {
                kl_hash_alg_t alg = a == 1 ? KL_HASH_SHA1 : KL_HASH_SHA256;
                for (size_t k = 0; k < pl; k++)
                    pw[k] = (char)('a' + (k * 7 + pl) % 26), salt[k] = (char)('A' + (k * 5) % 26);
                KT_CHECK_EQ(mb.table.pbkdf2(mb.table.ctx, alg, (const uint8_t *)pw, pl, (const uint8_t *)salt,
                                            pl / 2, 3, out, n), 0);
                KT_CHECK_EQ(mbedtls_pkcs5_pbkdf2_hmac_ext(a == 1 ? MBEDTLS_MD_SHA1 : MBEDTLS_MD_SHA256,
                                                          (const uint8_t *)pw, pl, (const uint8_t *)salt,
                                                          pl / 2, 3, (uint32_t)n, ref), 0);
                KT_CHECK(memcmp(out, ref, n) == 0);
            }
    KT_CHECK(mb.table.pbkdf2(mb.table.ctx, KL_HASH_SHA256, (const uint8_t *)"x", 1, (const uint8_t *)"s", 1, 0,
                             out, 32) != 0);
}

/* The port's failures on the way: no random source in the table, a random
 * source that fails, a hash, HMAC or PBKDF2 that fails at any of its calls
 * in the challenge. Each ends the login with a named error and no
 * <response/> (or no <auth/>). */
static kl_crypto_t flaky;
static int fail_hash_at, fail_hmac_at, fail_pbkdf2_at, n_hash, n_hmac, n_pbkdf2;

static int flaky_hash(void *ctx, kl_hash_alg_t alg, const uint8_t *d, size_t n, uint8_t *o)
{
    if (++n_hash == fail_hash_at)
        return -1;
    return mb.table.hash(ctx, alg, d, n, o);
}

static int flaky_hmac(void *ctx, kl_hash_alg_t alg, const uint8_t *k, size_t kl, const kl_slice_t *parts,
                      size_t np, uint8_t *o)
{
    if (++n_hmac == fail_hmac_at)
        return -1;
    return mb.table.hmac(ctx, alg, k, kl, parts, np, o);
}

static int flaky_pbkdf2(void *ctx, kl_hash_alg_t alg, const uint8_t *pw, size_t pl, const uint8_t *salt,
                        size_t sl, uint32_t it, uint8_t *o, size_t ol)
{
    if (++n_pbkdf2 == fail_pbkdf2_at)
        return -1;
    return mb.table.pbkdf2(ctx, alg, pw, pl, salt, sl, it, o, ol);
}

static int failing_random(void *ctx, uint8_t *o, size_t n)
{
    (void)ctx, (void)o, (void)n;
    return -1;
}

static int cfg_random(void *ctx, unsigned char *o, size_t n) { return fixed_random(ctx, o, n); }

/* A login with `crypto`, up to the features offering SCRAM-SHA-256. */
static void start_crypto(const kl_crypto_t *crypto)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/x";
    cfg.password = "secret";
    cfg.pipelining = KL_PIPELINING_OFF;
    cfg.no_plain = 1;
    cfg.crypto = crypto;
    cfg.random = cfg_random; /* the engine's own ids, when the table has none */
    out[0] = 0;
    last_status = online = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    kl_client_connect(&cl, 1, KL_CHANNEL_TLS_VERIFIED);
    pump();
    feed(HDR);
    feed(FEAT(M("SCRAM-SHA-256")));
}

static void test_crypto_failures(void)
{
    int i;
    flaky = fixed;
    flaky.random = NULL;
    start_crypto(&flaky);
    KT_CHECK_EQ(last_status, KL_ERR_NO_MECHANISM);
    KT_CHECK(strstr(out, "<auth") == NULL);
    flaky.random = failing_random;
    start_crypto(&flaky);
    KT_CHECK_EQ(last_status, KL_ERR_NO_MECHANISM);
    KT_CHECK(strstr(out, "<auth") == NULL);

    flaky = fixed;
    flaky.hash = flaky_hash, flaky.hmac = flaky_hmac, flaky.pbkdf2 = flaky_pbkdf2;
    /* hash: StoredKey; pbkdf2: SaltedPassword; hmac: ClientKey, the
     * client signature, ServerKey, the server signature */
    for (i = 0; i < 7; i++) {
        start_crypto(&flaky);
        KT_CHECK(strstr(out, "mechanism='SCRAM-SHA-256'>" AUTH_B64 "</auth>") != NULL);
        n_hash = n_hmac = n_pbkdf2 = 0;
        fail_hash_at = i == 0;
        fail_pbkdf2_at = i == 1;
        fail_hmac_at = i >= 2 && i <= 5 ? i - 1 : 0;
        feed("<challenge xmlns='" SASL "'>" CHAL "</challenge>");
        if (i < 6) {
            KT_CHECK_EQ(last_status, KL_ERR_AUTH);
            KT_CHECK(strstr(out, "<response") == NULL);
        } else {
            /* nothing fails: the same response as mbedTLS's own table */
            KT_CHECK_EQ(last_status, 0);
            KT_CHECK(strstr(out, "<response xmlns='" SASL "'>" RESP256 "</response>") != NULL);
            KT_CHECK_EQ(n_pbkdf2, 1);
            KT_CHECK_EQ(n_hash, 1);
            KT_CHECK_EQ(n_hmac, 4);
        }
    }
    /* XEP-0474's hash of what was advertised ("h=", here on a stream that
     * had no SASL2 to sign): its hash failing is KL_ERR_AUTH, else a
     * signature that does not match is a downgrade */
    for (i = 0; i < 2; i++) {
        start_crypto(&flaky);
        n_hash = n_hmac = n_pbkdf2 = 0;
        fail_hash_at = i == 0;
        fail_pbkdf2_at = fail_hmac_at = 0;
        feed("<challenge xmlns='" SASL "'>cj1BQkNERUZHSElKS0xNTk9QUVJTVFVWV1hTRVJWRVJub25jZTQyLHM9YzJGc2RITmhiSFJ6WVd4ME1U"
             "SXpOQT09LGk9NDA5NixoPWFiYw==</challenge>");
        KT_CHECK_EQ(last_status, i == 0 ? KL_ERR_AUTH : KL_ERR_DOWNGRADE);
        KT_CHECK_EQ(n_hash, 1);
        KT_CHECK_EQ(n_pbkdf2, 0);
        KT_CHECK(strstr(out, "<response") == NULL);
    }
    fail_hash_at = fail_hmac_at = fail_pbkdf2_at = 0;
}

/* A mandatory extension ("m=") we do not know, an iteration count of ten
 * digits or of none: KL_ERR_PROTOCOL. */
static void test_bad_challenges_more(void)
{
    static const char *chal[] = {
        "bT1leHQscj1BQkNERUZHSElKS0xNTk9QUVJTVFVWV1hTRVJWRVJub25jZTQyLHM9YzJGc2RITmhiSFJ6WVd4ME1USXpOQT09LGk9NDA5Ng==",
        "cj1BQkNERUZHSElKS0xNTk9QUVJTVFVWV1hTRVJWRVJub25jZTQyLHM9YzJGc2RITmhiSFJ6WVd4ME1USXpOQT09LGk9MTIzNDU2Nzg5MA==",
        "cj1BQkNERUZHSElKS0xNTk9QUVJTVFVWV1hTRVJWRVJub25jZTQyLHM9YzJGc2RITmhiSFJ6WVd4ME1USXpOQT09LGk9",
    };
    char buf[256];
    for (size_t i = 0; i < sizeof chal / sizeof chal[0]; i++) {
        start(1, FEAT(M("SCRAM-SHA-256")));
        snprintf(buf, sizeof buf, "<challenge xmlns='" SASL "'>%s</challenge>", chal[i]);
        feed(buf);
        KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
        KT_CHECK(strstr(out, "<response") == NULL);
    }
}

/* The saslname has room for KL_JID_MAX - 1 bytes: a longer local part
 * (the engine bounds only the domain) is KL_ERR_JID_TOO_LONG, named, and
 * no <auth/> goes out. */
static void test_long_username(void)
{
    char jid[KL_JID_MAX + 32];
    memset(jid, 'a', KL_JID_MAX - 1);
    strcpy(jid + KL_JID_MAX - 1, "@localhost/x");
    start_with(jid, "secret", 1, FEAT(M("SCRAM-SHA-256")));
    KT_CHECK_EQ(last_status, 0);
    KT_CHECK(strstr(out, "mechanism='SCRAM-SHA-256'>") != NULL);
    /* one ',' more becomes "=2C": past the room */
    jid[0] = ',';
    start_with(jid, "secret", 1, FEAT(M("SCRAM-SHA-256")));
    KT_CHECK_EQ(last_status, KL_ERR_JID_TOO_LONG);
    KT_CHECK(strstr(out, "<auth") == NULL);
    memset(jid, 'a', KL_JID_MAX);
    strcpy(jid + KL_JID_MAX, "@localhost/x");
    start_with(jid, "secret", 1, FEAT(M("SCRAM-SHA-256")));
    KT_CHECK_EQ(last_status, KL_ERR_JID_TOO_LONG);
    KT_CHECK(strstr(out, "<auth") == NULL);
}

int main(void)
{
    KT_CHECK_EQ(kl_crypto_mbedtls_init(&mb), 0);
    fixed = mb.table;
    fixed.random = fixed_random;
    KT_RUN(test_pbkdf2);
    KT_RUN(test_scram_sha256);
    KT_RUN(test_scram_sha1);
    KT_RUN(test_wrong_server_signature);
    KT_RUN(test_bad_challenges);
    KT_RUN(test_plain_pipelined_falls_back_to_scram);
    KT_RUN(test_saslprep);
    KT_RUN(test_crypto_failures);
    KT_RUN(test_bad_challenges_more);
    KT_RUN(test_long_username);
    kl_crypto_mbedtls_free(&mb);
    return kt_summary("scram");
}
