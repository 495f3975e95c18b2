/* SASL2 (XEP-0388) + Bind2 (XEP-0386) + FAST (XEP-0484) + inline XEP-0198
 * resumption + SCRAM-PLUS (RFC 9266) + XEP-0474 against scripted servers,
 * hostile and broken ones included. Public API only (no KL_CORE_BUILD):
 * kl_client_t is driven through kl_client_connect / kl_engine_input /
 * kl_engine_poll / kl_engine_output. Real crypto (kl_crypto_mbedtls): the
 * scripted server computes genuine SCRAM server-first/final messages and
 * HT Responder values with the same table, so every check can fail.
 *
 * The hints (kl_cache_t) are primed the way a device gets them: a first
 * SASL2 login whose <success/> carries a FAST token, then kl_cache_store
 * with a device key and kl_cache_load back (persistence), so every case
 * starts from authenticated hints that say SASL2 and hold a token.
 *
 * Server XML is verbatim from Prosody 13.0.1 / ejabberd 24.12 (measured,
 * /tmp/sasl2_servers.md at the time of writing) where a case is a real
 * server's answer. */
#include <stdlib.h>
#include <string.h>

#include "kinglet/kinglet.h"
#include "kl_crypto_mbedtls.h"
#include "kt.h"
#include "kt_feed.h"
#include "mbedtls/base64.h"

#define DOMAIN "localhost"
#define HDR_P "<stream:stream xml:lang='en' version='1.0' xmlns:stream='http://etherx.jabber.org/streams' " \
              "to='alice@localhost' id='68d3da60-058a-44f1-9c15-b8f022acd6b7' from='localhost' xmlns='jabber:client'>"
#define HDR_E "<stream:stream id='7194970045770553778' version='1.0' xml:lang='en' " \
              "xmlns:stream='http://etherx.jabber.org/streams' to='alice@localhost' from='localhost' xmlns='jabber:client'>"
/* Prosody 13 post-TLS features (verbatim) */
#define FEAT_P "<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism><mechanism>OAUTHBEARER</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism><inline><bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:carbons:2'/><feature var='urn:xmpp:csi:0'/><feature var='urn:xmpp:sm:3'/></inline></bind><sm xmlns='urn:xmpp:sm:3'/><fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-EXPR</mechanism><mechanism>HT-SHA-256-NONE</mechanism></fast></inline></authentication><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism><mechanism>OAUTHBEARER</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism></mechanisms><sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/></sasl-channel-binding><limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>262144</max-bytes><idle-seconds>840</idle-seconds></limits></stream:features>"
/* Prosody 13 without FAST (stream without from, or --no-fast), verbatim */
#define FEAT_P_NOFAST "<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism><mechanism>OAUTHBEARER</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism><inline><bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:carbons:2'/><feature var='urn:xmpp:csi:0'/><feature var='urn:xmpp:sm:3'/></inline></bind><sm xmlns='urn:xmpp:sm:3'/></inline></authentication><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism><mechanism>OAUTHBEARER</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism></mechanisms><sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/></sasl-channel-binding><limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>262144</max-bytes><idle-seconds>840</idle-seconds></limits></stream:features>"
/* ejabberd 24.12 post-TLS features with from (verbatim) */
#define FEAT_E "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-256-PLUS</mechanism><mechanism>SCRAM-SHA-256</mechanism></mechanisms><sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/><channel-binding type='tls-server-end-point'/></sasl-channel-binding><authentication xmlns='urn:xmpp:sasl:2'><inline><bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:sm:3'/><feature var='urn:xmpp:carbons:2'/></inline></bind><sm xmlns='urn:xmpp:sm:3'/><fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-NONE</mechanism><mechanism>HT-SHA-256-UNIQ</mechanism><mechanism>HT-SHA-256-EXPR</mechanism><mechanism>HT-SHA-256-ENDP</mechanism></fast></inline><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-256-PLUS</mechanism><mechanism>SCRAM-SHA-256</mechanism></authentication></stream:features>"
/* ejabberd 24.12 without from: no SASL2 (verbatim) */
#define FEAT_E_NOSASL2 "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-256-PLUS</mechanism><mechanism>SCRAM-SHA-256</mechanism></mechanisms><sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/><channel-binding type='tls-server-end-point'/></sasl-channel-binding></stream:features>"
/* the XEP-0474 worked example's server: SCRAM-SHA-1 (+PLUS), two cb types */
#define FEAT_SSDP "<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism><inline><bind xmlns='urn:xmpp:bind:0'/></inline></authentication><sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-server-end-point'/><channel-binding type='tls-exporter'/></sasl-channel-binding></stream:features>"

#define TOKEN_P "secret-token:fast-Yg3y4xJ5pXgRyASoFSsgCzovj8HtxweL-0ZK"
#define TOKEN_E "VeNxHhZHZPFGuy/bGoMgK7zuB3hc+ug9a6XHUYikzJk="
#define EXPIRY_P 1798364743u /* 2026-12-27T09:45:43.950516Z */
#define EXPIRY_E 1799142345u /* 2027-01-05T09:45:45Z */
#define SUCCESS_P "<success xmlns='urn:xmpp:sasl:2'><bound xmlns='urn:xmpp:bind:0'><enabled id='UocPc3JtStEu' max='600' resume='1' xmlns='urn:xmpp:sm:3'/></bound><token expiry='2026-12-27T09:45:43.950516Z' token='" TOKEN_P "' xmlns='urn:xmpp:fast:0'/><authorization-identifier>alice@localhost/probe~zV9VHqqsnGci</authorization-identifier></success>"
#define SUCCESS_E "<success xmlns='urn:xmpp:sasl:2'><token token='" TOKEN_E "' expiry='2027-01-05T09:45:45Z' xmlns='urn:xmpp:fast:0'/><bound xmlns='urn:xmpp:bind:0'><enabled resume='true' max='300' id='g2gCbQAAABBwcm9iZS5QVnhNS0hTWnVBbQAAAAj4nvnwhUDdcQ==' xmlns='urn:xmpp:sm:3'/></bound><authorization-identifier>alice@localhost/probe.PVxMKHSZuA</authorization-identifier><additional-data/></success>"
#define UA "<user-agent id='6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b'><software>kinglet</software><device>probe</device></user-agent>"
/* base64("\0alice\0alicepass") */
#define PLAIN_B64 "AGFsaWNlAGFsaWNlcGFzcw=="
#define NS2 "urn:xmpp:sasl:2"
#define FAILURE(cond) "<failure xmlns='" NS2 "'><" cond " xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>"

static kl_client_t cl;
static kl_client_config_t cfg;
static kl_crypto_mbedtls_t mb;
static kl_cache_t k;
static uint8_t blob[KL_CACHE_BLOB_SIZE]; /* the persisted hints */
static const uint8_t key[KL_CACHE_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                              17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static uint8_t queue[2048];
static char out[65536];
static size_t out_len;
static int last_status, n_online, n_resumed, n_unacked, n_error;
static char condition[128], online_jid[KL_JID_MAX];
static uint32_t now_ms = 1000, clock_s;

static uint32_t test_clock(void) { return clock_s; }

static void drain(void)
{
    size_t n;
    const uint8_t *p = kl_engine_output(&cl, &n);
    if (out_len + n < sizeof out) {
        memcpy(out + out_len, p, n);
        out_len += n;
        out[out_len] = 0;
    }
    kl_engine_output_ack(&cl, n);
}

static void pump(void)
{
    kl_event_t ev;
    while (kl_engine_poll(&cl, now_ms, &ev) > 0) {
        switch (ev.type) {
        case KL_EV_ONLINE:
            n_online++;
            snprintf(online_jid, sizeof online_jid, "%s", ev.jid);
            break;
        case KL_EV_RESUMED:
            n_resumed++;
            snprintf(online_jid, sizeof online_jid, "%s", ev.jid);
            break;
        case KL_EV_UNACKED: n_unacked++; break;
        case KL_EV_ERROR:
            n_error++;
            last_status = ev.status;
            snprintf(condition, sizeof condition, "%s", ev.condition ? ev.condition : "");
            break;
        default: break;
        }
        drain();
    }
    drain();
}

static void feed(const char *s) { kt_feed(&cl, (const uint8_t *)s, strlen(s), NULL, pump); }

/* ---- the scripted server's helpers ---- */

static size_t b64e(const uint8_t *in, size_t n, char *o, size_t cap)
{
    size_t olen = 0;
    if (mbedtls_base64_encode((unsigned char *)o, cap, &olen, in, n) != 0)
        abort();
    o[olen] = 0;
    return olen;
}

static int b64d(const char *in, size_t n, uint8_t *o, size_t cap)
{
    size_t olen = 0;
    if (mbedtls_base64_decode(o, cap, &olen, (const unsigned char *)in, n) != 0)
        return -1;
    return (int)olen;
}

/* The text of the last <open ...>TEXT</close> the client sent (after
 * `from`), base64-decoded into o (NUL-terminated); -1 if none. */
static int last_text(const char *open, const char *close, uint8_t *o, size_t cap)
{
    const char *p = NULL, *q = out, *e;
    int n;
    while ((q = strstr(q, open)) != NULL)
        p = q, q++;
    if (!p || !(p = strchr(p, '>')) || !(e = strstr(++p, close)))
        return -1;
    n = b64d(p, (size_t)(e - p), o, cap - 1);
    if (n >= 0)
        o[n] = 0;
    return n;
}

static void hmac256(const uint8_t *key_, size_t klen, const char *a, const uint8_t *b, size_t blen, uint8_t *o)
{
    kl_slice_t parts[2];
    parts[0].p = (const uint8_t *)a;
    parts[0].len = strlen(a);
    parts[1].p = b;
    parts[1].len = blen;
    if (mb.table.hmac(mb.table.ctx, KL_HASH_SHA256, key_, klen, parts, 2, o) != 0)
        abort();
}

/* A SCRAM server: the password it knows, the cb data it sees. */
typedef struct {
    kl_hash_alg_t alg;
    const char *password;
    char first_bare[256];   /* client-first-message-bare */
    char server_first[512];
    char gs2[64];           /* the GS2 header the client sent */
    uint8_t salted[32];
    size_t hl;
} scram_srv_t;

static scram_srv_t ss;
/* where the client's SCRAM messages are: SASL2's elements, or (set by a
 * test) RFC 6120's <auth/> and <response/> */
static const char *first_open = "<initial-response>", *first_close = "</initial-response>",
                  *final_open = "<response xmlns='" NS2 "'>";

/* Reads the client-first from <initial-response>, returns the base64 of
 * server-first (with `extra`, e.g. ",h=...", appended). */
static int scram_server_first(kl_hash_alg_t alg, const char *extra, char *b64, size_t cap)
{
    uint8_t cf[512];
    const char *bare;
    static const uint8_t salt[] = "QSXCR+Q6sek8bf92";
    int n = last_text(first_open, first_close, cf, sizeof cf);
    memset(&ss, 0, sizeof ss);
    ss.alg = alg;
    ss.hl = alg == KL_HASH_SHA256 ? 32 : 20;
    ss.password = "alicepass";
    if (n <= 0)
        return -1;
    /* gs2 header: up to the second ',' */
    bare = strchr((const char *)cf, ',');
    if (!bare || !(bare = strchr(bare + 1, ',')))
        return -1;
    bare++;
    snprintf(ss.gs2, sizeof ss.gs2, "%.*s", (int)(bare - (const char *)cf), (const char *)cf);
    snprintf(ss.first_bare, sizeof ss.first_bare, "%s", bare);
    {
        const char *r = strstr(bare, "r=");
        if (!r)
            return -1;
        snprintf(ss.server_first, sizeof ss.server_first, "r=%sSRVNONCE42,s=%s,i=4096%s", r + 2,
                 "UVNYQ1IrUTZzZWs4YmY5Mg==", extra ? extra : "");
    }
    if (mb.table.pbkdf2(mb.table.ctx, alg, (const uint8_t *)ss.password, strlen(ss.password), salt,
                        sizeof salt - 1, 4096, ss.salted, ss.hl) != 0)
        abort();
    b64e((const uint8_t *)ss.server_first, strlen(ss.server_first), b64, cap);
    return 0;
}

/* Checks the client-final (the last <response>) as a server that expects
 * c=base64(gs2 header + cb) with its own cb data. 1: proof good and
 * *v64 holds base64("v=" ServerSignature); 0: proof wrong. c_out gets the
 * client's c= value. */
static int scram_server_final(const uint8_t *cb, size_t cb_len, char *v64, size_t cap, char *c_out, size_t c_cap)
{
    uint8_t cfin[512], ck[32], sk[32], csig[32], srvk[32], ssig[32], proof[64], exp_c_raw[128];
    char am[1400], exp_c[200], vmsg[128];
    const char *p_at, *c_at, *comma;
    size_t i, hl = ss.hl;
    kl_slice_t part;
    int n = last_text(final_open, "</response>", cfin, sizeof cfin);
    if (n <= 0)
        return -1;
    c_at = strstr((const char *)cfin, "c=");
    p_at = strstr((const char *)cfin, ",p=");
    if (!c_at || !p_at)
        return -1;
    comma = strchr(c_at, ',');
    snprintf(c_out, c_cap, "%.*s", (int)(comma - (c_at + 2)), c_at + 2);
    /* the c= this server expects */
    memcpy(exp_c_raw, ss.gs2, strlen(ss.gs2));
    if (cb_len)
        memcpy(exp_c_raw + strlen(ss.gs2), cb, cb_len);
    b64e(exp_c_raw, strlen(ss.gs2) + cb_len, exp_c, sizeof exp_c);
    /* AuthMessage with the server's view of c= and the client's r= */
    snprintf(am, sizeof am, "%s,%s,c=%s%.*s", ss.first_bare, ss.server_first, exp_c,
             (int)(p_at - strstr((const char *)cfin, ",r=")), strstr((const char *)cfin, ",r="));
    part.p = (const uint8_t *)"Client Key";
    part.len = 10;
    mb.table.hmac(mb.table.ctx, ss.alg, ss.salted, hl, &part, 1, ck);
    mb.table.hash(mb.table.ctx, ss.alg, ck, hl, sk);
    part.p = (const uint8_t *)am;
    part.len = strlen(am);
    mb.table.hmac(mb.table.ctx, ss.alg, sk, hl, &part, 1, csig);
    if (b64d(p_at + 3, strlen(p_at + 3), proof, sizeof proof) != (int)hl)
        return 0;
    for (i = 0; i < hl; i++)
        if ((uint8_t)(proof[i] ^ csig[i]) != ck[i])
            return 0;
    part.p = (const uint8_t *)"Server Key";
    part.len = 10;
    mb.table.hmac(mb.table.ctx, ss.alg, ss.salted, hl, &part, 1, srvk);
    part.p = (const uint8_t *)am;
    part.len = strlen(am);
    mb.table.hmac(mb.table.ctx, ss.alg, srvk, hl, &part, 1, ssig);
    memcpy(vmsg, "v=", 2);
    b64e(ssig, hl, vmsg + 2, sizeof vmsg - 2);
    b64e((const uint8_t *)vmsg, strlen(vmsg), v64, cap);
    return 1;
}

/* ---- client set-up ---- */

static void reset_events(void)
{
    out_len = 0;
    out[0] = 0;
    last_status = n_online = n_resumed = n_unacked = n_error = 0;
    condition[0] = online_jid[0] = 0;
}

/* A fresh client: password may be NULL (token only). */
static void init_client(const char *password, int no_plain, int with_sm)
{
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/probe";
    cfg.password = password;
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.no_plain = (uint8_t)no_plain;
    cfg.crypto = &mb.table;
    cfg.cache = &k;
    cfg.device = "probe";
    cfg.user_agent_id = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
    cfg.no_presence = 1;
    if (with_sm) {
        cfg.sm_queue = queue;
        cfg.sm_queue_size = sizeof queue;
    }
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
}

static void connect_(void)
{
    reset_events();
    KT_CHECK_EQ(kl_client_connect(&cl, now_ms, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    pump();
}

/* Persist and read back the hints (the device's flash). */
static void persist(void)
{
    KT_CHECK_EQ(kl_cache_store(&k, &mb.table, key, sizeof key), KL_OK);
    memcpy(blob, &k, sizeof blob);
}

static void restore(void)
{
    memset(&k, 0, sizeof k);
    memcpy(&k, blob, sizeof blob);
    KT_CHECK_EQ(kl_cache_load(&k, DOMAIN, &mb.table, key, sizeof key), KL_OK);
}

static const uint8_t *hint_token(size_t *len, uint32_t *expiry)
{
    uint8_t mech;
    return kl_cache_fast_token(&k, DOMAIN, len, &mech, expiry);
}

static int has(const char *needle) { return strstr(out, needle) != NULL; }

static int count_of(const char *needle)
{
    int n = 0;
    const char *p = out;
    while ((p = strstr(p, needle)) != NULL)
        n++, p++;
    return n;
}

/* ---- 1. the happy paths: what the servers accept, byte for byte ---- */

/* Prime: no hints; lockstep so that the first login is SASL2 (with
 * pipelining it would be RFC 6120 <auth/> riding with the header). */
static void prime(const char *hdr, const char *feat, const char *success, int with_sm)
{
    kl_cache_reset(&k, DOMAIN);
    init_client("alicepass", 0, with_sm);
    cfg.pipelining = KL_PIPELINING_OFF;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    connect_();
    feed(hdr);
    feed(feat);
    feed(success);
}

static void test_plain_bind2_token_prosody(void)
{
    size_t len;
    uint32_t exp;
    const uint8_t *t;
    kl_sm_info_t si;
    prime(HDR_P, FEAT_P, "", 1);
    /* the measured request, with the <active/> Prosody's Bind2 lists csi for */
    KT_CHECK(has("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                 "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' from='alice@localhost' "
                 "version='1.0' xml:lang='en'>"));
    KT_CHECK(has("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>" PLAIN_B64
                 "</initial-response>" UA "<bind xmlns='urn:xmpp:bind:0'><tag>probe</tag>"
                 "<enable xmlns='urn:xmpp:sm:3' resume='true'/><active xmlns='urn:xmpp:csi:0'/></bind>"
                 "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/></authenticate>"));
    feed(SUCCESS_P);
    KT_CHECK_EQ(n_online, 1);
    KT_CHECK_EQ(last_status, 0);
    KT_CHECK_STR(online_jid, "alice@localhost/probe~zV9VHqqsnGci");
    KT_CHECK_EQ(kl_client_stats(&cl)->sasl2, 1);
    KT_CHECK_EQ(kl_client_stats(&cl)->bind2, 1);
    KT_CHECK_EQ(kl_client_stats(&cl)->fast_token_new, 1);
    KT_CHECK_EQ(kl_client_stats(&cl)->fast, 0);
    KT_CHECK(kl_sm_info(&cl, &si) == KL_OK && si.enabled && si.resumable);
    KT_CHECK_STR(si.id, "UocPc3JtStEu");
    KT_CHECK_EQ(si.max_s, 600);
    /* no stream restart, no RFC 6120 bind after a Bind2 success */
    KT_CHECK(!has("urn:ietf:params:xml:ns:xmpp-bind"));
    KT_CHECK_EQ(count_of("<?xml"), 1);
    persist();
    restore();
    t = hint_token(&len, &exp);
    KT_CHECK(t && len == strlen(TOKEN_P) && memcmp(t, TOKEN_P, len) == 0);
    KT_CHECK_EQ(exp, EXPIRY_P);
}

static void test_plain_bind2_token_ejabberd(void)
{
    size_t len;
    uint32_t exp;
    const uint8_t *t;
    kl_sm_info_t si;
    prime(HDR_E, FEAT_E, "", 1);
    /* ejabberd's Bind2 lists no csi: the probe's request exactly */
    KT_CHECK(has("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>" PLAIN_B64
                 "</initial-response>" UA "<bind xmlns='urn:xmpp:bind:0'><tag>probe</tag>"
                 "<enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>"
                 "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/></authenticate>"));
    feed(SUCCESS_E);
    KT_CHECK_EQ(n_online, 1);
    KT_CHECK_STR(online_jid, "alice@localhost/probe.PVxMKHSZuA");
    KT_CHECK(kl_sm_info(&cl, &si) == KL_OK && si.enabled && si.resumable);
    KT_CHECK_STR(si.id, "g2gCbQAAABBwcm9iZS5QVnhNS0hTWnVBbQAAAAj4nvnwhUDdcQ==");
    persist();
    restore();
    t = hint_token(&len, &exp);
    KT_CHECK(t && len == strlen(TOKEN_E) && memcmp(t, TOKEN_E, len) == 0);
    KT_CHECK_EQ(exp, EXPIRY_E);
}

/* Primed hints, loaded from "flash"; the SM session forgotten unless
 * with_sm (the client is new). */
static void primed(const char *password, int with_sm)
{
    prime(HDR_P, FEAT_P, SUCCESS_P, with_sm);
    KT_CHECK_EQ(n_online, 1);
    persist();
    restore();
    init_client(password, 0, 0);
}

static char expected_initiator[64], expected_responder[64];

static void ht_values(const char *token)
{
    uint8_t mac[32], msg[64];
    hmac256((const uint8_t *)token, strlen(token), "Initiator", NULL, 0, mac);
    memcpy(msg, "alice\0", 6);
    memcpy(msg + 6, mac, 32);
    b64e(msg, 38, expected_initiator, sizeof expected_initiator);
    hmac256((const uint8_t *)token, strlen(token), "Responder", NULL, 0, mac);
    b64e(mac, 32, expected_responder, sizeof expected_responder);
}

static void test_fast_login(void)
{
    char want[1024], succ[512];
    primed(NULL, 0);
    connect_();
    ht_values(TOKEN_P);
    /* the header and <authenticate/> in the first flight, on the hints' word */
    snprintf(want, sizeof want,
             "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>%s"
             "</initial-response>" UA "<bind xmlns='urn:xmpp:bind:0'><tag>probe</tag>"
             "<active xmlns='urn:xmpp:csi:0'/></bind><fast xmlns='urn:xmpp:fast:0'/></authenticate>",
             expected_initiator);
    KT_CHECK(has(want));
    KT_CHECK(has("from='alice@localhost'"));
    KT_CHECK(!has("request-token"));
    feed(HDR_P);
    feed(FEAT_P);
    snprintf(succ, sizeof succ,
             "<success xmlns='urn:xmpp:sasl:2'><additional-data>%s</additional-data><bound xmlns='urn:xmpp:bind:0'/>"
             "<authorization-identifier>alice@localhost/probe~abc</authorization-identifier></success>",
             expected_responder);
    feed(succ);
    KT_CHECK_EQ(n_online, 1);
    KT_CHECK_EQ(last_status, 0);
    KT_CHECK_EQ(kl_client_stats(&cl)->fast, 1);
    KT_CHECK_EQ(kl_client_stats(&cl)->fast_token_new, 0);
    KT_CHECK_STR(kl_client_sasl_mechanism(&cl), "HT-SHA-256-NONE");
}

/* The crypto port's hmac fails from its fail_at-th call on (1: the
 * Responder value, 2: the Initiator's), as a broken hardware HMAC can: the
 * FAST login is not sent, and the error is the port's. */
static kl_crypto_t failing;
static int hmac_calls, hmac_fail_at;

static int failing_hmac(void *ctx, kl_hash_alg_t alg, const uint8_t *key_, size_t klen, const kl_slice_t *parts,
                        size_t n, uint8_t *o)
{
    if (++hmac_calls >= hmac_fail_at)
        return -1;
    return mb.table.hmac(ctx, alg, key_, klen, parts, n, o);
}

static void test_fast_hmac_fails(void)
{
    for (hmac_fail_at = 1; hmac_fail_at <= 3; hmac_fail_at++) {
        primed(NULL, 0);
        failing = mb.table;
        failing.hmac = failing_hmac;
        cfg.crypto = &failing;
        KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
        hmac_calls = 0;
        connect_();
        ht_values(TOKEN_P);
        if (hmac_fail_at <= 2) {
            /* not in the first flight; said once the features are in */
            KT_CHECK(!has("<authenticate"));
            KT_CHECK_EQ(n_error, 0);
            feed(HDR_P);
            feed(FEAT_P);
            KT_CHECK_EQ(last_status, KL_ERR_AUTH);
            KT_CHECK_EQ(n_error, 1);
            KT_CHECK(!has(expected_initiator));
        } else { /* both made: the login goes out as in test_fast_login */
            KT_CHECK_EQ(n_error, 0);
            KT_CHECK(has(expected_initiator));
        }
    }
    hmac_fail_at = 0;
}

/* ---- 2. FAST refused, expired, unavailable ---- */

static void tamper_token(void)
{
    persist();
    /* the stored token is no longer what the server issued (the device
     * key still vouches for it: the server is the one that refuses) */
    KT_CHECK(k.fast_len > 0);
    k.fast_token[k.fast_len - 1] ^= 1;
    KT_CHECK_EQ(kl_cache_store(&k, &mb.table, key, sizeof key), KL_OK);
    memcpy(blob, &k, sizeof blob);
    restore();
}

static void test_tampered_token_password_fallback(void)
{
    size_t len;
    uint32_t exp;
    const char *plain_at;
    primed("alicepass", 0);
    tamper_token();
    init_client("alicepass", 0, 0);
    connect_();
    KT_CHECK(has("mechanism='HT-SHA-256-NONE'"));
    KT_CHECK(!has("mechanism='PLAIN'"));
    feed(HDR_P);
    feed(FEAT_P);
    feed(FAILURE("not-authorized")); /* Prosody's answer, verbatim */
    KT_CHECK_EQ(n_error, 0);
    KT_CHECK_EQ(kl_client_stats(&cl)->fast_refused, 1);
    KT_CHECK(hint_token(&len, &exp) == NULL);
    /* the password, on the same stream (no second header), with a new token requested */
    plain_at = strstr(out, "mechanism='PLAIN'");
    KT_CHECK(plain_at != NULL);
    KT_CHECK(plain_at && strstr(plain_at, "<request-token") != NULL);
    KT_CHECK(plain_at && strstr(plain_at, "<fast") == NULL);
    KT_CHECK(plain_at && strstr(plain_at, "<?xml") == NULL);
    feed(SUCCESS_P);
    KT_CHECK_EQ(n_online, 1);
    KT_CHECK(hint_token(&len, &exp) != NULL);
    /* and the next login is FAST with the new token, the one after PLAIN */
    init_client("alicepass", 0, 0);
    connect_();
    KT_CHECK(has("mechanism='HT-SHA-256-NONE'"));
}

static void test_tampered_token_no_password(void)
{
    size_t len;
    uint32_t exp;
    primed(NULL, 0);
    tamper_token();
    init_client(NULL, 0, 0);
    connect_();
    feed(HDR_P);
    feed(FEAT_P);
    feed(FAILURE("not-authorized"));
    KT_CHECK_EQ(last_status, KL_ERR_FAST_REFUSED);
    KT_CHECK_STR(condition, "not-authorized");
    KT_CHECK_EQ(n_online, 0);
    KT_CHECK_EQ(kl_client_stats(&cl)->fast_refused, 1);
    KT_CHECK(hint_token(&len, &exp) == NULL);
    KT_CHECK(!has("mechanism='PLAIN'") && !has("SCRAM"));
    /* nothing more from the client after the refusal */
    KT_CHECK(strstr(strstr(out, "</authenticate>") + 1, "<authenticate") == NULL);
}

/* A <failure/> that is no verdict on the token (the server could not
 * check it now): the token stays; without a password the session ends in
 * KL_ERR_AUTH_LATER (the manager retries), with one the password takes
 * over on the same stream. */
static void test_temporary_failure_keeps_token(void)
{
    size_t len;
    uint32_t exp;
    primed(NULL, 0);
    init_client(NULL, 0, 0);
    connect_();
    KT_CHECK(has("mechanism='HT-SHA-256-NONE'"));
    feed(HDR_P);
    feed(FEAT_P);
    feed(FAILURE("temporary-auth-failure"));
    KT_CHECK_EQ(last_status, KL_ERR_AUTH_LATER);
    KT_CHECK_STR(condition, "temporary-auth-failure");
    KT_CHECK_EQ(n_online, 0);
    KT_CHECK_EQ(kl_client_stats(&cl)->fast_refused, 0);
    KT_CHECK(hint_token(&len, &exp) != NULL);
    KT_CHECK(!has("mechanism='PLAIN'"));

    primed("alicepass", 0);
    init_client("alicepass", 0, 0);
    connect_();
    feed(HDR_P);
    feed(FEAT_P);
    feed(FAILURE("aborted"));
    KT_CHECK_EQ(n_error, 0);
    KT_CHECK(has("mechanism='PLAIN'"));
    KT_CHECK(hint_token(&len, &exp) != NULL);
}

static void test_expired_token(void)
{
    primed(NULL, 0);
    cfg.unix_time = test_clock;
    clock_s = EXPIRY_P + 1;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    connect_();
    KT_CHECK(!has("<authenticate")); /* nothing on the hints' word */
    feed(HDR_P);
    feed(FEAT_P);
    KT_CHECK_EQ(last_status, KL_ERR_FAST_EXPIRED);
    KT_CHECK(!has("<authenticate") && !has("<auth "));
    KT_CHECK_EQ(n_online, 0);
    /* one second before: used */
    clock_s = EXPIRY_P - 1;
    connect_();
    KT_CHECK(has("mechanism='HT-SHA-256-NONE'"));
    /* expired, with a password: the password */
    primed("alicepass", 0);
    cfg.unix_time = test_clock;
    clock_s = EXPIRY_P;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    connect_();
    KT_CHECK(has("mechanism='PLAIN'") && !has("mechanism='HT-SHA-256-NONE'><initial-response>"));
}

static void test_fast_unavailable(void)
{
    size_t len;
    uint32_t exp;
    /* the hints' token goes out; the live features offer no FAST (Prosody
     * without from, or FAST switched off) and the server refuses the
     * mechanism: the token is not the culprit */
    primed(NULL, 0);
    connect_();
    KT_CHECK(has("mechanism='HT-SHA-256-NONE'"));
    feed(HDR_P);
    feed(FEAT_P_NOFAST);
    feed(FAILURE("invalid-mechanism"));
    KT_CHECK_EQ(last_status, KL_ERR_FAST_UNAVAILABLE);
    KT_CHECK_EQ(n_online, 0);
    KT_CHECK(!has("mechanism='PLAIN'") && !has("SCRAM"));
    KT_CHECK(hint_token(&len, &exp) != NULL); /* kept: it was never tried */
    /* a provisioned token, no hints: the features decide, nothing is sent */
    kl_cache_reset(&k, DOMAIN);
    init_client(NULL, 0, 0);
    cfg.cache = NULL;
    cfg.fast_token = TOKEN_P;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    connect_();
    feed(HDR_P);
    feed(FEAT_P_NOFAST);
    KT_CHECK_EQ(last_status, KL_ERR_FAST_UNAVAILABLE);
    KT_CHECK(!has("<authenticate"));
    /* the same provisioned token where FAST is offered: used, with <fast/> */
    connect_();
    feed(HDR_P);
    feed(FEAT_P);
    ht_values(TOKEN_P);
    KT_CHECK(has(expected_initiator));
    KT_CHECK(has("<fast xmlns='urn:xmpp:fast:0'/>"));
}

/* ---- 3. <failure/> at each step, <success/> that does not check out ---- */

/* A <failure/> to the <authenticate/> sent on the hints' word, before the
 * server's features: no retry can be chosen without them (the token is
 * still forgotten: refused); the stream ends. */
static void test_failure_before_features(void)
{
    size_t len;
    uint32_t exp;
    primed("alicepass", 0);
    connect_();
    KT_CHECK(has("mechanism='HT-SHA-256-NONE'"));
    feed(HDR_P);
    feed(FAILURE("not-authorized"));
    KT_CHECK_EQ(last_status, KL_ERR_PROTOCOL);
    KT_CHECK_STR(condition, "not-authorized");
    KT_CHECK(has("<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"));
    KT_CHECK_EQ(count_of("<authenticate"), 1);
    KT_CHECK(!has("mechanism='PLAIN'"));
    KT_CHECK_EQ(n_online, 0);
    KT_CHECK_EQ(kl_client_stats(&cl)->fast_refused, 1);
    KT_CHECK(hint_token(&len, &exp) == NULL);
}

static void test_failure_after_plain(void)
{
    primed("alicepass", 0);
    kl_cache_drop_fast(&k);
    kl_cache_seal(&k);
    connect_();
    KT_CHECK(has("mechanism='PLAIN'"));
    feed(HDR_P);
    feed(FEAT_P);
    feed("<failure xmlns='urn:xmpp:sasl:2'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
         "<text>Response decoding failed</text></failure>");
    KT_CHECK_EQ(last_status, KL_ERR_AUTH);
    KT_CHECK_STR(condition, "not-authorized");
    KT_CHECK_EQ(n_online, 0);
    KT_CHECK_EQ(count_of("<authenticate"), 1);
}

/* SCRAM-SHA-256 over SASL2 against an ejabberd-like server (no PLAIN for
 * this client): returns after the client-final, with v64 the server's
 * proof if the client's was right. */
static int scram_to_final(const char *feat, const char *extra, const uint8_t *srv_cb, size_t srv_cb_len, char *v64,
                          char *c_val)
{
    char sf[600], chal[700];
    connect_();
    feed(HDR_E);
    feed(feat);
    if (scram_server_first(strstr(out, "SCRAM-SHA-256") ? KL_HASH_SHA256 : KL_HASH_SHA1, extra, sf, sizeof sf))
        return -1;
    snprintf(chal, sizeof chal, "<challenge xmlns='urn:xmpp:sasl:2'>%s</challenge>", sf);
    feed(chal);
    if (!has("<response xmlns='urn:xmpp:sasl:2'>"))
        return -2;
    return scram_server_final(srv_cb, srv_cb_len, v64, 200, c_val, 200);
}

static void scram_client(int no_plain)
{
    kl_cache_reset(&k, DOMAIN);
    init_client("alicepass", no_plain, 0);
    kl_client_set_channel_binding(&cl, NULL, 0);
}

static void test_scram_sasl2(void)
{
    char v64[200], c_val[200], succ[600];
    /* the genuine login first: the checks below must be able to pass */
    scram_client(1);
    KT_CHECK_EQ(scram_to_final(FEAT_E, NULL, NULL, 0, v64, c_val), 1);
    KT_CHECK(has("mechanism='SCRAM-SHA-256'"));
    KT_CHECK_STR(c_val, "biws");
    snprintf(succ, sizeof succ,
             "<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@localhost/probe.x</authorization-identifier>"
             "<bound xmlns='urn:xmpp:bind:0'/><additional-data>%s</additional-data></success>", v64);
    feed(succ);
    KT_CHECK_EQ(n_online, 1);
    KT_CHECK_EQ(last_status, 0);
    /* <failure/> after the client-final */
    scram_client(1);
    KT_CHECK_EQ(scram_to_final(FEAT_E, NULL, NULL, 0, v64, c_val), 1);
    feed(FAILURE("not-authorized"));
    KT_CHECK_EQ(last_status, KL_ERR_AUTH);
    KT_CHECK_STR(condition, "not-authorized");
    KT_CHECK_EQ(n_online, 0);
    /* a wrong server signature (the right one with a byte changed) */
    scram_client(1);
    KT_CHECK_EQ(scram_to_final(FEAT_E, NULL, NULL, 0, v64, c_val), 1);
    {
        uint8_t v[80];
        int n = b64d(v64, strlen(v64), v, sizeof v);
        char bad[200];
        KT_CHECK(n > 10);
        /* another letter inside the signature's first full base64 quantum
         * (the last one before '=' carries padding bits a decoder may ignore) */
        v[5] = v[5] == 'A' ? 'B' : 'A';
        b64e(v, (size_t)n, bad, sizeof bad);
        snprintf(succ, sizeof succ,
                 "<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@localhost/probe.x"
                 "</authorization-identifier><bound xmlns='urn:xmpp:bind:0'/><additional-data>%s</additional-data></success>",
                 bad);
    }
    feed(succ);
    KT_CHECK_EQ(last_status, KL_ERR_AUTH);
    KT_CHECK_STR(condition, "server-signature-mismatch");
    KT_CHECK_EQ(n_online, 0);
    /* no signature at all (ejabberd's PLAIN-style empty additional-data, and none) */
    scram_client(1);
    KT_CHECK_EQ(scram_to_final(FEAT_E, NULL, NULL, 0, v64, c_val), 1);
    feed("<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@localhost/probe.x"
         "</authorization-identifier><bound xmlns='urn:xmpp:bind:0'/><additional-data/></success>");
    KT_CHECK_EQ(last_status, KL_ERR_AUTH);
    KT_CHECK_STR(condition, "server-signature-mismatch");
    scram_client(1);
    KT_CHECK_EQ(scram_to_final(FEAT_E, NULL, NULL, 0, v64, c_val), 1);
    feed("<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@localhost/probe.x"
         "</authorization-identifier><bound xmlns='urn:xmpp:bind:0'/></success>");
    KT_CHECK_EQ(last_status, KL_ERR_AUTH);
    KT_CHECK_STR(condition, "server-signature-mismatch");
    KT_CHECK_EQ(n_online, 0);
    /* <success/> before the client-final (skipping the proof) */
    scram_client(1);
    connect_();
    feed(HDR_E);
    feed(FEAT_E);
    feed("<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@localhost/probe.x"
         "</authorization-identifier><bound xmlns='urn:xmpp:bind:0'/><additional-data>dj1hYmM=</additional-data></success>");
    KT_CHECK_EQ(last_status, KL_ERR_AUTH);
    KT_CHECK_EQ(n_online, 0);
}

static void authzid_case(const char *success_body, int expect)
{
    char succ[800];
    primed("alicepass", 0);
    kl_cache_drop_fast(&k);
    kl_cache_seal(&k);
    connect_();
    feed(HDR_P);
    feed(FEAT_P);
    snprintf(succ, sizeof succ, "<success xmlns='urn:xmpp:sasl:2'>%s</success>", success_body);
    feed(succ);
    KT_CHECK_EQ(last_status, expect);
    KT_CHECK_EQ(n_online, expect ? 0 : 1);
}

static void test_authzid(void)
{
    const char *b = "<bound xmlns='urn:xmpp:bind:0'/>";
    char s[400];
    kt_current = "authzid ok";
    snprintf(s, sizeof s, "%s<authorization-identifier>alice@localhost/r</authorization-identifier>", b);
    authzid_case(s, 0);
    kt_current = "authzid missing";
    authzid_case(b, KL_ERR_AUTHZID);
    KT_CHECK_STR(condition, "no-authorization-identifier");
    kt_current = "authzid empty";
    snprintf(s, sizeof s, "%s<authorization-identifier/>", b);
    authzid_case(s, KL_ERR_AUTHZID);
    kt_current = "authzid other account";
    snprintf(s, sizeof s, "%s<authorization-identifier>bob@localhost/probe</authorization-identifier>", b);
    authzid_case(s, KL_ERR_AUTHZID);
    kt_current = "authzid other domain";
    snprintf(s, sizeof s, "%s<authorization-identifier>alice@localhost.evil/probe</authorization-identifier>", b);
    authzid_case(s, KL_ERR_AUTHZID);
    kt_current = "authzid prefix account";
    snprintf(s, sizeof s, "%s<authorization-identifier>alic@localhost/probe</authorization-identifier>", b);
    authzid_case(s, KL_ERR_AUTHZID);
    kt_current = "authzid bare after bind2";
    snprintf(s, sizeof s, "%s<authorization-identifier>alice@localhost</authorization-identifier>", b);
    authzid_case(s, KL_ERR_AUTHZID);
    kt_current = "authzid twice";
    snprintf(s, sizeof s,
             "%s<authorization-identifier>alice@localhost/a</authorization-identifier>"
             "<authorization-identifier>bob@localhost/a</authorization-identifier>", b);
    authzid_case(s, KL_ERR_PROTOCOL); /* two of them: not well-formed SASL2 */
    kt_current = "authzid escaped other";
    snprintf(s, sizeof s, "%s<authorization-identifier>bob&#64;localhost/a</authorization-identifier>", b);
    authzid_case(s, KL_ERR_AUTHZID);
    kt_current = "authzid same length";
    snprintf(s, sizeof s, "%s<authorization-identifier>carol@localhost/probe</authorization-identifier>", b);
    authzid_case(s, KL_ERR_AUTHZID);
    kt_current = "authzid same length, no bind2";
    authzid_case("<authorization-identifier>carol@localhost</authorization-identifier>", KL_ERR_AUTHZID);
    KT_CHECK(!has("urn:ietf:params:xml:ns:xmpp-bind"));
    kt_current = "authzid with a control character in the resource";
    snprintf(s, sizeof s, "%s<authorization-identifier>alice@localhost/a\tb</authorization-identifier>", b);
    authzid_case(s, KL_ERR_BIND_JID);
    KT_CHECK_STR(kl_client_jid(&cl), "");
    snprintf(s, sizeof s, "%s<authorization-identifier>alice@localhost/a\x7f</authorization-identifier>", b);
    authzid_case(s, KL_ERR_BIND_JID);
    KT_CHECK_STR(kl_client_jid(&cl), "");
    kt_current = "authzid case-insensitive bare part";
    snprintf(s, sizeof s, "%s<authorization-identifier>Alice@LocalHost/r</authorization-identifier>", b);
    authzid_case(s, 0);
    kt_current = "authzid";
}

/* A <token/> without an expiry, or with one that is not a dateTime: kept,
 * expiry unknown (0: the server decides) */
static void test_token_expiry_forms(void)
{
    static const char *forms[] = {"", " expiry='tomorrow'", " expiry='2026-13-01T00:00:00Z'",
                                  " expiry='2026-12-27T09:45:43+01:00'",
                                  /* fractions dropped; zones west; what is no dateTime */
                                  " expiry='2026-12-27T09:45:43.125Z'", " expiry='2026-12-27T04:45:43-05:00'",
                                  " expiry='2026-12-27T09:45:43.Z'", " expiry='2026-12-27T09:45:43.'",
                                  " expiry='2026-12-27T09:45:43+15:00'", " expiry='2026-12-27T09:45:43+01:60'",
                                  " expiry='2026-12-27T09:45:43+0100'", " expiry='2026-12-27T09:45:4'",
                                  " expiry='2026-12-27T09:45:43'", " expiry='2026-12-27T09:45:43.5'",
                                  " expiry='2026-12-27T09:45:43+01'", " expiry='2026-12-27T09:45:43+01:6'",
                                  " expiry='2026-12-32T09:45:43Z'", " expiry='2026-12-27T24:45:43Z'",
                                  " expiry='2026-12-27T09:60:43Z'", " expiry='2026-12-27T09:45:61Z'",
                                  " expiry='1969-12-31T23:00:00Z'", " expiry='2106-01-01T00:00:00Z'",
                                  /* before 1970 once the zone is applied */
                                  " expiry='1970-01-01T00:30:00+01:00'",
                                  /* a one-digit zone hour */
                                  " expiry='2026-12-27T09:45:43+1:00'"};
    static const uint32_t want[] = {0, 0, 0, EXPIRY_P - 3600, EXPIRY_P, EXPIRY_P, 0, 0, 0, 0, 0, 0,
                                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    char succ[800];
    size_t i, len;
    uint32_t exp;
    for (i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        kl_cache_reset(&k, DOMAIN);
        init_client("alicepass", 0, 0);
        cfg.pipelining = KL_PIPELINING_OFF;
        KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
        connect_();
        feed(HDR_P);
        feed(FEAT_P);
        snprintf(succ, sizeof succ,
                 "<success xmlns='urn:xmpp:sasl:2'><bound xmlns='urn:xmpp:bind:0'/><token%s token='t%03u' "
                 "xmlns='urn:xmpp:fast:0'/><authorization-identifier>alice@localhost/probe~z</authorization-identifier>"
                 "</success>", forms[i], (unsigned)i);
        feed(succ);
        KT_CHECK_EQ(n_online, 1);
        exp = 12345;
        KT_CHECK(hint_token(&len, &exp) != NULL && len == 4);
        KT_CHECK_EQ(exp, want[i]);
    }
}

/* <resumed/> inside a <success/> to an <authenticate/> that asked for no
 * resumption */
static void test_unsolicited_resumed(void)
{
    char succ[800];
    primed(NULL, 0);
    connect_();
    KT_CHECK(!has("<resume"));
    feed(HDR_P);
    feed(FEAT_P);
    ht_values(TOKEN_P);
    snprintf(succ, sizeof succ,
             "<success xmlns='urn:xmpp:sasl:2'><additional-data>%s</additional-data><resumed h='0' previd='UocPc3JtStEu' "
             "xmlns='urn:xmpp:sm:3'/><authorization-identifier>alice@localhost/probe~zV9VHqqsnGci"
             "</authorization-identifier></success>", expected_responder);
    feed(succ);
    KT_CHECK_EQ(last_status, KL_ERR_SM_RESUME);
    KT_CHECK_EQ(n_resumed + n_online, 0);
}

static void test_ht_responder(void)
{
    char succ[600];
    const char *bodies[3];
    char wrong[64];
    uint8_t mac[32];
    size_t i;
    ht_values(TOKEN_P);
    hmac256((const uint8_t *)TOKEN_P, strlen(TOKEN_P), "Initiator", NULL, 0, mac); /* the other hash */
    b64e(mac, 32, wrong, sizeof wrong);
    bodies[0] = wrong;
    bodies[1] = "";
    bodies[2] = NULL;
    for (i = 0; i < 3; i++) {
        primed(NULL, 0);
        connect_();
        feed(HDR_P);
        feed(FEAT_P);
        if (bodies[i])
            snprintf(succ, sizeof succ,
                     "<success xmlns='urn:xmpp:sasl:2'><additional-data>%s</additional-data>"
                     "<authorization-identifier>alice@localhost/probe~z</authorization-identifier>"
                     "<bound xmlns='urn:xmpp:bind:0'/></success>", bodies[i]);
        else
            snprintf(succ, sizeof succ,
                     "<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@localhost/probe~z"
                     "</authorization-identifier><bound xmlns='urn:xmpp:bind:0'/></success>");
        feed(succ);
        KT_CHECK_EQ(last_status, KL_ERR_AUTH);
        KT_CHECK_STR(condition, "server-signature-mismatch");
        KT_CHECK_EQ(n_online, 0);
    }
    /* and ejabberd's FAST success verbatim shape with the right value */
    primed(NULL, 0);
    connect_();
    feed(HDR_E);
    feed(FEAT_E);
    snprintf(succ, sizeof succ,
             "<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@localhost/probe.y</authorization-identifier>"
             "<bound xmlns='urn:xmpp:bind:0'/><additional-data>%s</additional-data></success>", expected_responder);
    feed(succ);
    KT_CHECK_EQ(n_online, 1);
}

/* ---- 4. SCRAM-PLUS (tls-exporter) ---- */

static void test_scram_plus(void)
{
    uint8_t cb[32], other[32], raw[64];
    char v64[200], c_val[200], want_c[100], succ[600];
    size_t i;
    for (i = 0; i < 32; i++)
        cb[i] = (uint8_t)(0xa0 + i), other[i] = (uint8_t)(0x10 + i);
    memcpy(raw, "p=tls-exporter,,", 16);
    memcpy(raw + 16, cb, 32);
    b64e(raw, 48, want_c, sizeof want_c);
    /* the server sees the same channel: success */
    scram_client(1);
    KT_CHECK_EQ(kl_client_set_channel_binding(&cl, cb, 32), KL_OK);
    KT_CHECK_EQ(scram_to_final(FEAT_E, NULL, cb, 32, v64, c_val), 1);
    KT_CHECK(has("mechanism='SCRAM-SHA-256-PLUS'"));
    KT_CHECK_STR(ss.gs2, "p=tls-exporter,,");
    KT_CHECK_STR(c_val, want_c);
    snprintf(succ, sizeof succ,
             "<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@localhost/probe.x</authorization-identifier>"
             "<bound xmlns='urn:xmpp:bind:0'/><additional-data>%s</additional-data></success>", v64);
    feed(succ);
    KT_CHECK_EQ(n_online, 1);
    KT_CHECK_EQ(kl_client_stats(&cl)->channel_bound, 1);
    /* a MITM terminating TLS: the server's channel differs, it refuses */
    scram_client(1);
    kl_client_set_channel_binding(&cl, cb, 32);
    KT_CHECK_EQ(scram_to_final(FEAT_E, NULL, other, 32, v64, c_val), 0);
    KT_CHECK_STR(c_val, want_c);
    feed(FAILURE("not-authorized"));
    KT_CHECK_EQ(last_status, KL_ERR_AUTH);
    KT_CHECK_EQ(n_online, 0);
    /* no channel-binding data: plain SCRAM, "n,," */
    scram_client(1);
    KT_CHECK_EQ(scram_to_final(FEAT_E, NULL, NULL, 0, v64, c_val), 1);
    KT_CHECK(has("mechanism='SCRAM-SHA-256'") && !has("SCRAM-SHA-256-PLUS'"));
    KT_CHECK_STR(ss.gs2, "n,,");
}

/* SCRAM over RFC 6120's SASL under full pipelining: the client-final is
 * the final SASL response, so the restart header and the bind request go
 * in its flight, before <success/>; online one round trip earlier. */
static void test_scram_rfc6120_full(void)
{
    char sf[600], chal[700], v64[200], c_val[200], succ[400];
    const char *resp, *hdr2, *bind;
    kl_cache_reset(&k, DOMAIN);
    init_client("alicepass", 1, 0);
    cfg.no_sasl2 = 1;
    cfg.pipelining = KL_PIPELINING_FULL;
    cfg.force_full = 1;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    connect_();
    KT_CHECK(!has("<auth")); /* no hints: the mechanism waits for the features */
    feed(HDR_E);
    feed(FEAT_E_NOSASL2);
    KT_CHECK(has("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>"));
    first_open = "mechanism='SCRAM-SHA-256'>";
    first_close = "</auth>";
    final_open = "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>";
    KT_CHECK_EQ(scram_server_first(KL_HASH_SHA256, NULL, sf, sizeof sf), 0);
    snprintf(chal, sizeof chal, "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</challenge>", sf);
    out_len = 0;
    out[0] = 0;
    feed(chal);
    KT_CHECK_EQ(scram_server_final(NULL, 0, v64, sizeof v64, c_val, sizeof c_val), 1);
    first_open = "<initial-response>";
    first_close = "</initial-response>";
    final_open = "<response xmlns='" NS2 "'>";
    /* one flight: the response, then the restarted stream's header and the bind */
    resp = strstr(out, "</response>");
    hdr2 = strstr(out, "<stream:stream");
    bind = strstr(out, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>probe</resource></bind>");
    KT_CHECK(resp && hdr2 && bind && resp < hdr2 && hdr2 < bind);
    KT_CHECK_EQ(kl_client_stats(&cl)->flights_out, 3);
    out_len = 0;
    out[0] = 0;
    snprintf(succ, sizeof succ, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</success>", v64);
    feed(succ);
    KT_CHECK_EQ(n_error, 0);
    KT_CHECK_STR(out, ""); /* nothing more: the bind is already out */
    feed(HDR_E);
    feed("<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
         "<iq type='result' id='kl-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
         "<jid>alice@localhost/probe</jid></bind></iq>");
    KT_CHECK_EQ(n_online, 1);
    KT_CHECK_EQ(n_error, 0);
    KT_CHECK_EQ(kl_client_stats(&cl)->engine_round_trips, 3);
}

/* ---- 5. XEP-0474 ---- */

static void test_ssdp(void)
{
    char v64[200], c_val[200], d[120];
    uint8_t h[20];
    static const char legacy[] = "SCRAM-SHA-1,SCRAM-SHA-1-PLUS|tls-exporter,tls-server-end-point";
    uint8_t cb[32];
    memset(cb, 7, sizeof cb);
    /* the spec's vector: matches */
    scram_client(1);
    KT_CHECK_EQ(scram_to_final(FEAT_SSDP, ",h=G6k/rBLDqgOhRRaCuuatSDFkJ08=", NULL, 0, v64, c_val), 1);
    KT_CHECK_EQ(last_status, 0);
    KT_CHECK(has("mechanism='SCRAM-SHA-1'"));
    /* with -PLUS in use too */
    scram_client(1);
    kl_client_set_channel_binding(&cl, cb, 32);
    KT_CHECK_EQ(scram_to_final(FEAT_SSDP, ",h=G6k/rBLDqgOhRRaCuuatSDFkJ08=", cb, 32, v64, c_val), 1);
    KT_CHECK(has("mechanism='SCRAM-SHA-1-PLUS'"));
    /* a hash over another list (a MITM stripped -PLUS): refused before any proof */
    scram_client(1);
    mb.table.hash(mb.table.ctx, KL_HASH_SHA1, (const uint8_t *)"SCRAM-SHA-1\x1fSCRAM-SHA-1-PLUS", 28, h);
    memcpy(d, ",h=", 3);
    b64e(h, 20, d + 3, sizeof d - 3);
    KT_CHECK_EQ(scram_to_final(FEAT_SSDP, d, NULL, 0, v64, c_val), -2);
    KT_CHECK_EQ(last_status, KL_ERR_DOWNGRADE);
    KT_CHECK_STR(condition, "downgrade");
    KT_CHECK(!has("<response"));
    /* the legacy d= (0.3.0, ejabberd's module): ',' and '|' */
    mb.table.hash(mb.table.ctx, KL_HASH_SHA1, (const uint8_t *)legacy, strlen(legacy), h);
    memcpy(d, ",d=", 3);
    b64e(h, 20, d + 3, sizeof d - 3);
    scram_client(1);
    KT_CHECK_EQ(scram_to_final(FEAT_SSDP, d, NULL, 0, v64, c_val), 1);
    KT_CHECK_EQ(last_status, 0);
    /* d= in the new format is a mismatch */
    memcpy(d, ",d=G6k/rBLDqgOhRRaCuuatSDFkJ08=", 32);
    scram_client(1);
    KT_CHECK_EQ(scram_to_final(FEAT_SSDP, d, NULL, 0, v64, c_val), -2);
    KT_CHECK_EQ(last_status, KL_ERR_DOWNGRADE);
    /* the measured servers' strings */
    scram_client(1);
    mb.table.hash(mb.table.ctx, KL_HASH_SHA256,
                  (const uint8_t *)"PLAIN\x1eSCRAM-SHA-256\x1eSCRAM-SHA-256-PLUS\x1ftls-exporter\x1etls-server-end-point",
                  strlen("PLAIN\x1eSCRAM-SHA-256\x1eSCRAM-SHA-256-PLUS\x1ftls-exporter\x1etls-server-end-point"),
                  (uint8_t *)v64);
    memcpy(d, ",h=", 3);
    b64e((uint8_t *)v64, 32, d + 3, sizeof d - 3);
    KT_CHECK_STR(d, ",h=OpwIlj6pDmUR+0q4Zqaqb5xWu6SDmduyUo4bUQEUWCQ=");
    KT_CHECK_EQ(scram_to_final(FEAT_E, ",h=OpwIlj6pDmUR+0q4Zqaqb5xWu6SDmduyUo4bUQEUWCQ=", NULL, 0, v64, c_val), 1);
    KT_CHECK_EQ(last_status, 0);
    scram_client(1);
    KT_CHECK_EQ(scram_to_final(FEAT_P, ",h=0d03IyFgz9MW5VJ5XbFp7h72iRU=", NULL, 0, v64, c_val), 1);
    KT_CHECK(has("mechanism='SCRAM-SHA-1'"));
    KT_CHECK_EQ(last_status, 0);
}

/* A MITM pads the features so that the list no longer fits what the
 * client keeps for the check: the signature cannot be verified, so it is
 * not taken on trust. A long list of the SASL the client does not use
 * does not matter. */
#define PAD13 "<mechanism>X-A</mechanism><mechanism>X-B</mechanism><mechanism>X-C</mechanism>" \
    "<mechanism>X-D</mechanism><mechanism>X-E</mechanism><mechanism>X-F</mechanism><mechanism>X-G</mechanism>" \
    "<mechanism>X-H</mechanism><mechanism>X-I</mechanism><mechanism>X-J</mechanism><mechanism>X-K</mechanism>"
static void test_ssdp_padded(void)
{
    char v64[200], c_val[200];
    scram_client(1);
    KT_CHECK_EQ(scram_to_final("<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1"
                               "</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism>" PAD13 "</authentication>"
                               "</stream:features>", ",h=G6k/rBLDqgOhRRaCuuatSDFkJ08=", NULL, 0, v64, c_val), -2);
    KT_CHECK_EQ(last_status, KL_ERR_DOWNGRADE);
    KT_CHECK(!has("<response"));
    /* 13 RFC 6120 mechanisms next to the XEP-0474 example's SASL2 list */
    scram_client(1);
    KT_CHECK_EQ(scram_to_final("<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                               "<mechanism>SCRAM-SHA-1</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism>" PAD13
                               "</mechanisms><authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1"
                               "</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism></authentication>"
                               "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-server-end-point'/>"
                               "<channel-binding type='tls-exporter'/></sasl-channel-binding></stream:features>",
                               ",h=G6k/rBLDqgOhRRaCuuatSDFkJ08=", NULL, 0, v64, c_val), 1);
    KT_CHECK_EQ(last_status, 0);
    /* without h=, the padded list is simply not protected (no SSDP server) */
    scram_client(1);
    KT_CHECK_EQ(scram_to_final("<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1"
                               "</mechanism>" PAD13 "</authentication></stream:features>", NULL, NULL, 0, v64, c_val), 1);
    KT_CHECK_EQ(last_status, 0);
}

/* ---- 6. <continue/>, SASL2 gone ---- */

static void test_continue(void)
{
    primed("alicepass", 0);
    connect_();
    feed(HDR_P);
    feed(FEAT_P);
    feed("<continue xmlns='urn:xmpp:sasl:2'><additional-data>SSdtIGJvcmVkIG5vdy4=</additional-data><tasks>"
         "<task>HOTP-EXAMPLE</task></tasks><text>This account requires 2FA</text></continue>");
    KT_CHECK_EQ(last_status, KL_ERR_SASL2_TASK);
    KT_CHECK(has("<abort xmlns='urn:xmpp:sasl:2'/>"));
    KT_CHECK(!has("<next"));
    KT_CHECK_EQ(n_online, 0);
}

static void test_sasl2_gone(void)
{
    primed("alicepass", 0);
    connect_();
    KT_CHECK(has("<authenticate"));
    feed(HDR_E);
    feed(FEAT_E_NOSASL2);
    KT_CHECK_EQ(last_status, KL_ERR_SASL2_GONE);
    KT_CHECK_EQ(n_online, 0);
    /* the hints now say so: RFC 6120 <auth/> with the header */
    connect_();
    KT_CHECK(!has("<authenticate"));
    KT_CHECK(has("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"));
    /* and the corrected hints survive persistence */
    persist();
    restore();
    init_client("alicepass", 0, 0);
    connect_();
    KT_CHECK(!has("<authenticate"));
}

/* ---- 7. inline resumption ---- */

static void sm_online_with_unacked(void)
{
    char succ[800];
    /* hints from a first login, then the device's login (FAST, Bind2,
     * <enable/>), two messages the server never acknowledges */
    prime(HDR_P, FEAT_P, SUCCESS_P, 0);
    KT_CHECK_EQ(n_online, 1);
    init_client(NULL, 0, 1);
    connect_();
    KT_CHECK(has("<enable xmlns='urn:xmpp:sm:3' resume='true'/>"));
    KT_CHECK(!has("<resume"));
    feed(HDR_P);
    feed(FEAT_P);
    ht_values(TOKEN_P);
    snprintf(succ, sizeof succ,
             "<success xmlns='urn:xmpp:sasl:2'><additional-data>%s</additional-data><bound xmlns='urn:xmpp:bind:0'>"
             "<enabled id='UocPc3JtStEu' max='600' resume='1' xmlns='urn:xmpp:sm:3'/></bound>"
             "<authorization-identifier>alice@localhost/probe~zV9VHqqsnGci</authorization-identifier></success>",
             expected_responder);
    feed(succ);
    KT_CHECK_EQ(n_online, 1);
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", NULL, "one"), KL_OK);
    KT_CHECK_EQ(kl_send_message(&cl, "bob@localhost", NULL, "two"), KL_OK);
    pump();
    feed("<a xmlns='urn:xmpp:sm:3' h='0'/>");
    now_ms += 5000; /* the link is lost */
}

static void test_inline_resume(void)
{
    char succ[800];
    kl_sm_info_t si;
    size_t len;
    uint32_t exp;
    const uint8_t *t;
    sm_online_with_unacked();
    connect_();
    /* resumption rides inside <authenticate/>, a direct child, with FAST */
    KT_CHECK(has("mechanism='HT-SHA-256-NONE'"));
    KT_CHECK(has("<resume xmlns='urn:xmpp:sm:3' h='0' previd='UocPc3JtStEu'/>"));
    KT_CHECK(strstr(out, "<resume") < strstr(out, "</authenticate>"));
    KT_CHECK(has("<bind xmlns='urn:xmpp:bind:0'>")); /* the fallback */
    feed(HDR_P);
    feed(FEAT_P);
    t = hint_token(&len, &exp);
    ht_values(TOKEN_P);
    (void)t;
    /* Prosody's resumption success (rotated token), then <r/> and features */
    snprintf(succ, sizeof succ,
             "<success xmlns='urn:xmpp:sasl:2'><additional-data>%s</additional-data><resumed h='0' previd='UocPc3JtStEu' "
             "xmlns='urn:xmpp:sm:3'/><token expiry='2026-12-27T09:45:45.073348Z' "
             "token='secret-token:fast-kECIkGbVoE-Bwf5Uy1z3Q5xjyFnmq1QbyTp6' xmlns='urn:xmpp:fast:0'/>"
             "<authorization-identifier>alice@localhost/probe~zV9VHqqsnGci</authorization-identifier></success>",
             expected_responder);
    out_len = 0;
    out[0] = 0;
    feed(succ);
    KT_CHECK_EQ(n_resumed, 1);
    KT_CHECK_EQ(n_online, 0);
    KT_CHECK_EQ(n_error, 0);
    KT_CHECK_EQ(kl_client_stats(&cl)->inline_resumed, 1);
    KT_CHECK(has(">one</body>") && has(">two</body>"));
    KT_CHECK_STR(online_jid, "alice@localhost/probe~zV9VHqqsnGci");
    feed("<r xmlns='urn:xmpp:sm:3'/><stream:features><ver xmlns='urn:xmpp:features:rosterver'/>"
         "<csi xmlns='urn:xmpp:csi:0'/></stream:features>");
    KT_CHECK_EQ(n_error, 0);
    KT_CHECK(has("<a xmlns='urn:xmpp:sm:3' h='0'/>"));
    KT_CHECK(kl_sm_info(&cl, &si) == KL_OK && si.enabled);
    t = hint_token(&len, &exp);
    KT_CHECK(t && len == 54 && memcmp(t, "secret-token:fast-kECIkGbVoE-Bwf5Uy1z3Q5xjyFnmq1QbyTp6", 54) == 0);
    KT_CHECK_EQ(exp, EXPIRY_P + 2);
}

static void test_inline_resume_failed(void)
{
    char succ[800];
    kl_sm_info_t si;
    sm_online_with_unacked();
    connect_();
    KT_CHECK(has("<resume xmlns='urn:xmpp:sm:3'"));
    feed(HDR_P);
    feed(FEAT_P);
    ht_values(TOKEN_P);
    snprintf(succ, sizeof succ,
             "<success xmlns='urn:xmpp:sasl:2'><additional-data>%s</additional-data>"
             "<failed xmlns='urn:xmpp:sm:3' h='0'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
             "<bound xmlns='urn:xmpp:bind:0'><enabled id='NEWID' max='600' resume='1' xmlns='urn:xmpp:sm:3'/></bound>"
             "<authorization-identifier>alice@localhost/probe~new</authorization-identifier></success>",
             expected_responder);
    feed(succ);
    KT_CHECK_EQ(n_resumed, 0);
    KT_CHECK_EQ(n_unacked, 2);
    KT_CHECK_EQ(n_online, 1);
    KT_CHECK_EQ(n_error, 0);
    KT_CHECK_STR(online_jid, "alice@localhost/probe~new");
    KT_CHECK(kl_sm_info(&cl, &si) == KL_OK && si.enabled && si.resumable);
    KT_CHECK_STR(si.id, "NEWID");
    KT_CHECK_EQ(si.last_seq, 0);
    /* <failed h='1'/>: the server got the first; only the second comes back */
    sm_online_with_unacked();
    connect_();
    feed(HDR_P);
    feed(FEAT_P);
    snprintf(succ, sizeof succ,
             "<success xmlns='urn:xmpp:sasl:2'><additional-data>%s</additional-data>"
             "<failed xmlns='urn:xmpp:sm:3' h='1'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
             "<bound xmlns='urn:xmpp:bind:0'/><authorization-identifier>alice@localhost/probe~new</authorization-identifier>"
             "</success>", expected_responder);
    feed(succ);
    KT_CHECK_EQ(n_unacked, 1);
    KT_CHECK_EQ(n_online, 1);
    KT_CHECK_EQ(n_error, 0);
    KT_CHECK_EQ(kl_client_stats(&cl)->sm_acked, 1);
    KT_CHECK_EQ(kl_client_stats(&cl)->sm_unacked_handed_back, 1);
    /* an h beyond what was sent says nothing: both come back */
    sm_online_with_unacked();
    connect_();
    feed(HDR_P);
    feed(FEAT_P);
    snprintf(succ, sizeof succ,
             "<success xmlns='urn:xmpp:sasl:2'><additional-data>%s</additional-data>"
             "<failed xmlns='urn:xmpp:sm:3' h='3'/><bound xmlns='urn:xmpp:bind:0'/>"
             "<authorization-identifier>alice@localhost/probe~new</authorization-identifier></success>",
             expected_responder);
    feed(succ);
    KT_CHECK_EQ(n_unacked, 2);
    KT_CHECK_EQ(n_online, 1);
    /* a <resumed/> for a session we did not ask about */
    sm_online_with_unacked();
    connect_();
    feed(HDR_P);
    feed(FEAT_P);
    snprintf(succ, sizeof succ,
             "<success xmlns='urn:xmpp:sasl:2'><additional-data>%s</additional-data><resumed h='0' previd='OTHER' "
             "xmlns='urn:xmpp:sm:3'/><authorization-identifier>alice@localhost/probe~zV9VHqqsnGci"
             "</authorization-identifier></success>", expected_responder);
    feed(succ);
    KT_CHECK_EQ(last_status, KL_ERR_SM_RESUME);
    KT_CHECK_EQ(n_resumed + n_online, 0);
}

int main(void)
{
    if (kl_crypto_mbedtls_init(&mb) != 0)
        return 2;
    KT_RUN(test_plain_bind2_token_prosody);
    KT_RUN(test_plain_bind2_token_ejabberd);
    KT_RUN(test_fast_login);
    KT_RUN(test_fast_hmac_fails);
    KT_RUN(test_tampered_token_password_fallback);
    KT_RUN(test_tampered_token_no_password);
    KT_RUN(test_temporary_failure_keeps_token);
    KT_RUN(test_expired_token);
    KT_RUN(test_fast_unavailable);
    KT_RUN(test_failure_before_features);
    KT_RUN(test_failure_after_plain);
    KT_RUN(test_scram_sasl2);
    KT_RUN(test_authzid);
    KT_RUN(test_token_expiry_forms);
    KT_RUN(test_unsolicited_resumed);
    KT_RUN(test_ht_responder);
    KT_RUN(test_scram_plus);
    KT_RUN(test_scram_rfc6120_full);
    KT_RUN(test_ssdp);
    KT_RUN(test_ssdp_padded);
    KT_RUN(test_continue);
    KT_RUN(test_sasl2_gone);
    KT_RUN(test_inline_resume);
    KT_RUN(test_inline_resume_failed);
    kl_crypto_mbedtls_free(&mb);
    return kt_summary("sasl2");
}
