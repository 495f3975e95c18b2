/* libFuzzer target: the engine in the SASL2 path (XEP-0388 + Bind2 + FAST +
 * inline XEP-0198 resumption + SCRAM(-PLUS) with XEP-0474) against a
 * hostile server.
 *
 * Set-up (public API only): hints primed by a canned first login (Prosody
 * 13's features and <success/>: SASL2 PLAIN, Bind2, <enabled/>, a FAST
 * token with its expiry), the stream-management session carried into the
 * fuzzed client through kl_sm_save / kl_sm_load, so the fuzzed connection
 * sends <authenticate/> with the stream header: HT-SHA-256-NONE with the
 * token, inline <resume/>, Bind2.
 *
 * The toy crypto answers zeros for every hash and HMAC: the server's proofs
 * (SCRAM v=, the HT Responder, XEP-0474's h=) are then base64 of zeros
 * ("AAAA...") and the fuzzer can reach every path behind them, the right
 * value and the wrong ones.
 *
 * Input layout:
 *   byte 0   options: bit 0 a password is configured; bit 1 no_plain;
 *            bit 2 channel-binding data given (SCRAM-PLUS, HT-EXPR);
 *            bit 3 no resumable session (kl_sm_reset); bit 4 the clock says
 *            the token expired; bit 5 no token in the hints (a provisioned
 *            one if bit 6, else none); bit 7 lockstep (pipelining off)
 *   then     the server's stream. 0xFF and one control byte are taken out
 *            and run an action: 0 send a message, 1 lose the link (connect
 *            again), 2 advance time 10 s, 3 close, else a literal 0xFF.
 *
 * Invariants (abort on violation):
 *  - poll 0/1, event types in range, nothing after KL_EV_ERROR/CLOSED, at
 *    most one KL_EV_ONLINE/KL_EV_RESUMED per connection and KL_EV_UNACKED
 *    only before it, KL_EV_RESUMED only after a <resume/> went out;
 *  - output within the transmit buffer; the password leaves only when one
 *    is configured; with an expired token and no password no
 *    <authenticate/> at all; with no_plain never PLAIN;
 *  - the hints stay a sealed blob for the domain (kl_cache_check), their
 *    token within bounds; a refused token (stats.fast_refused) is gone
 *    unless a <success/> brought a new one;
 *  - once a poll returned 0 and the output was drained, nothing is due.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinglet/kinglet.h"
#include "fuzz_util.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

#define HDR "<stream:stream xml:lang='en' version='1.0' xmlns:stream='http://etherx.jabber.org/streams' " \
            "id='x' from='localhost' xmlns='jabber:client'>"
#define FEAT "<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism><inline><bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:csi:0'/><feature var='urn:xmpp:sm:3'/></inline></bind><sm xmlns='urn:xmpp:sm:3'/><fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-EXPR</mechanism><mechanism>HT-SHA-256-NONE</mechanism></fast></inline></authentication><sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/></sasl-channel-binding></stream:features>"
#define SUCCESS "<success xmlns='urn:xmpp:sasl:2'><bound xmlns='urn:xmpp:bind:0'><enabled id='UocPc3JtStEu' max='600' resume='1' xmlns='urn:xmpp:sm:3'/></bound><token expiry='2026-12-27T09:45:43.950516Z' token='secret-token:fast-Yg3y4xJ5pXgRyASoFSsgCzovj8HtxweL-0ZK' xmlns='urn:xmpp:fast:0'/><authorization-identifier>alice@localhost/probe~zV9VHqqsnGci</authorization-identifier></success>"
#define PLAIN_B64 "AGFsaWNlAGFsaWNlcGFzcw==" /* "\0alice\0alicepass" */
#define EXPIRY 1798364743u

static const uint8_t key[KL_CACHE_KEY_LEN] = {7};

static int zero_hash(void *ctx, kl_hash_alg_t alg, const uint8_t *d, size_t n, uint8_t *out)
{
    (void)ctx, (void)d, (void)n;
    memset(out, 0, alg == KL_HASH_SHA256 ? 32 : 20);
    return 0;
}

static int zero_hmac(void *ctx, kl_hash_alg_t alg, const uint8_t *k, size_t klen, const kl_slice_t *parts,
                     size_t nparts, uint8_t *out)
{
    size_t i;
    (void)ctx, (void)k, (void)klen;
    for (i = 0; i < nparts; i++)
        CHECK(parts[i].len == 0 || parts[i].p != NULL);
    memset(out, 0, alg == KL_HASH_SHA256 ? 32 : 20);
    return 0;
}

static int zero_pbkdf2(void *ctx, kl_hash_alg_t alg, const uint8_t *pw, size_t pwl, const uint8_t *s, size_t sl,
                       uint32_t it, uint8_t *out, size_t ol)
{
    (void)ctx, (void)alg, (void)pw, (void)pwl, (void)s, (void)sl;
    CHECK(it >= 4096);
    memset(out, 0, ol);
    return 0;
}

static const kl_crypto_t toy = {NULL, zero_hash, zero_hmac, zero_pbkdf2, toy_random_seq};

static kl_client_t cl;
static kl_client_config_t cfg;
static kl_cache_t k;
static uint8_t queue[2048];
static uint8_t smblob[KL_SM_BLOB_MAX(2048)];
static uint32_t now, clock_s;
static int finished, onlines, resume_sent, token_seen;
static unsigned options;

static uint32_t fuzz_clock(void) { return clock_s; }

static void drain(void)
{
    size_t n;
    const uint8_t *p = kl_engine_output(&cl, &n);
    CHECK(n <= KL_TX_BUF_SIZE);
    if (has(p, n, "<resume"))
        resume_sent = 1;
    if (!cfg.password)
        CHECK(!has(p, n, PLAIN_B64));
    if (cfg.no_plain)
        CHECK(!has(p, n, "mechanism='PLAIN'"));
    if ((options & 0x10) && !cfg.password && !(options & 0x20))
        CHECK(!has(p, n, "<authenticate")); /* expired token, nothing else */
    kl_engine_output_ack(&cl, n);
}

static void check_hints(void)
{
    size_t len;
    uint8_t mech;
    uint32_t exp;
    const uint8_t *t;
    CHECK(kl_cache_check(&k, "localhost") == KL_OK);
    t = kl_cache_fast_token(&k, "localhost", &len, &mech, &exp);
    CHECK(!t || (len > 0 && len <= KL_CACHE_FAST_TOKEN_MAX));
    if (t && !(options & 0x20))
        token_seen = 1;
    /* refused and no new one given: gone */
    if (kl_client_stats(&cl)->fast_refused && !kl_client_stats(&cl)->fast_token_new && !(options & 0x20))
        CHECK(t == NULL);
}

static int bare_is_alice(const char *jid)
{
    static const char want[] = "alice@localhost/";
    size_t i;
    for (i = 0; i < sizeof want - 1; i++) {
        char ch = jid[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch | 0x20);
        if (ch != want[i])
            return 0;
    }
    return 1;
}

static void pump(void)
{
    kl_event_t ev;
    int r, guard = 0;
    while ((r = kl_engine_poll(&cl, now, &ev)) > 0) {
        CHECK(r == 1 && !finished);
        CHECK(ev.type > KL_EV_NONE && ev.type < KL_EV_LINK_DOWN);
        drain();
        switch (ev.type) {
        case KL_EV_ONLINE:
            CHECK(onlines == 0);
            onlines++;
            /* this account: the bare JID up to ASCII case (RFC 7622),
             * then a resource */
            CHECK(ev.jid && bare_is_alice(ev.jid));
            break;
        case KL_EV_RESUMED:
            CHECK(onlines == 0 && resume_sent);
            onlines++;
            break;
        case KL_EV_UNACKED: CHECK(onlines == 0); break;
        case KL_EV_ERROR:
        case KL_EV_CLOSED: finished = 1; break;
        default: break;
        }
        check_hints();
        CHECK(++guard < 1 << 20);
    }
    CHECK(r == 0);
    drain();
    check_hints();
    if (!finished)
        CHECK(kl_engine_next_timeout(&cl, now) > 0);
}

static void feed(const uint8_t *p, size_t len) { fuzz_feed(&cl, p, len, &finished, pump); }

static void connect_(void)
{
    resume_sent = onlines = finished = 0;
    CHECK(kl_client_connect(&cl, now, KL_CHANNEL_TLS_VERIFIED) == KL_OK);
    pump();
}

static void base_cfg(void)
{
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/probe";
    cfg.crypto = &toy;
    cfg.cache = &k;
    cfg.sm_queue = queue;
    cfg.sm_queue_size = sizeof queue;
    cfg.device = "probe";
    cfg.no_presence = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t cb[32] = {1, 2, 3};
    size_t i, start, sl = 0;
    int st;
    if (size < 1)
        return 0;
    options = data[0];
    data++, size--;
    now = 1000;
    finished = onlines = resume_sent = token_seen = 0;

    /* 1. the first login: the hints learn SASL2, keep a token; SM is on */
    kl_cache_reset(&k, "localhost");
    base_cfg();
    cfg.password = "alicepass";
    cfg.pipelining = KL_PIPELINING_OFF;
    CHECK(kl_client_init(&cl, &cfg) == KL_OK);
    connect_();
    feed((const uint8_t *)HDR FEAT SUCCESS, strlen(HDR FEAT SUCCESS));
    CHECK(onlines == 1 && !finished);
    CHECK(kl_send_message(&cl, "bob@localhost", NULL, "unacked") == KL_OK);
    pump();
    CHECK(kl_sm_save(&cl, &toy, key, sizeof key, smblob, sizeof smblob, &sl) == KL_OK);
    CHECK(kl_cache_store(&k, &toy, key, sizeof key) == KL_OK);
    CHECK(kl_cache_load(&k, "localhost", &toy, key, sizeof key) == KL_OK);
    if (options & 0x20) {
        kl_cache_drop_fast(&k);
        kl_cache_seal(&k);
    }

    /* 2. the device reboots: the fuzzed connection */
    base_cfg();
    cfg.password = (options & 1) ? "alicepass" : NULL;
    cfg.no_plain = (options >> 1) & 1;
    cfg.pipelining = (options & 0x80) ? KL_PIPELINING_OFF : KL_PIPELINING_SAFE;
    cfg.unix_time = fuzz_clock;
    clock_s = (options & 0x10) ? EXPIRY + 5 : EXPIRY - 86400;
    if ((options & 0x60) == 0x60)
        cfg.fast_token = "provisioned-token";
    CHECK(kl_client_init(&cl, &cfg) == KL_OK);
    st = kl_sm_load(&cl, &toy, key, sizeof key, smblob, sl);
    CHECK(st == KL_OK);
    if (options & 8)
        kl_sm_reset(&cl);
    if (options & 4)
        CHECK(kl_client_set_channel_binding(&cl, cb, sizeof cb) == KL_OK);
    connect_();

    /* 3. the server's stream, with actions */
    start = 0;
    for (i = 0; i < size; i++) {
        if (data[i] != 0xFF || i + 1 >= size)
            continue;
        feed(data + start, i - start);
        switch (data[i + 1]) {
        case 0:
            if (kl_client_is_online(&cl))
                (void)kl_send_message(&cl, "bob@localhost", NULL, "hi");
            pump();
            break;
        case 1:
            now += 1000;
            connect_();
            break;
        case 2:
            now += 10000;
            if (!finished)
                pump();
            break;
        case 3:
            if (!finished)
                (void)kl_client_close(&cl);
            pump();
            break;
        default: feed(data + i, 1); break;
        }
        i++;
        start = i + 1;
    }
    if (start < size)
        feed(data + start, size - start);
    (void)token_seen;
    return 0;
}
