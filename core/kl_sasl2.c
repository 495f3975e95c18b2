/* kinglet — SASL2 helpers: FAST's HT-SHA-256 mechanism (XEP-0484,
 * draft-schmaus-kitten-sasl-ht), the <user-agent id> UUID, and the
 * dateTime of a token's expiry. The engine (kl_engine.c) writes
 * <authenticate/> and reads <success/>; hashing goes through the port's
 * kl_crypto_t, so core/ stays crypto-free. */
#define KL_CORE_BUILD 1 /* core/: kl_client_t's members by their own names */
#include "kinglet/kinglet.h"
#include "kl_internal.h"
#include "kl_string.h"

#if KL_ENABLE_SASL2

int kl_ht_start(kl_client_t *c, kl_xw_t *w, uint8_t mech, const uint8_t *token, size_t len)
{
    const kl_crypto_t *cr = c->cfg.crypto;
    static const char initiator[] = "Initiator", responder[] = "Responder";
    uint8_t mac[KL_HASH_MAX];
    kl_slice_t part;
    kl_b64_t b;
    /* fast_token, the only way here, chose mech and checked the port's
     * hmac. It is HT-SHA-256-NONE (the only kind kinglet requests and
     * keeps): no channel-binding data in the hashes. */
    /* what the server must prove it knows, checked at <success/> */
    part.p = (const uint8_t *)responder;
    part.len = sizeof responder - 1;
    if (cr->hmac(cr->ctx, KL_HASH_SHA256, token, len, &part, 1, c->scram_sig))
        return KL_ERR_AUTH;
    part.p = (const uint8_t *)initiator;
    part.len = sizeof initiator - 1;
    if (cr->hmac(cr->ctx, KL_HASH_SHA256, token, len, &part, 1, mac)) {
        kl_wipe(mac, sizeof mac);
        return KL_ERR_AUTH;
    }
    /* authcid NUL initiator-hashed-token: the authcid is the username */
    kl_b64_init(&b, w);
    kl_b64_feed(&b, (const uint8_t *)c->cfg.jid, c->local_len);
    kl_b64_feed(&b, (const uint8_t *)"", 1);
    kl_b64_feed(&b, mac, 32);
    kl_b64_finish(&b);
    kl_wipe(mac, sizeof mac); /* HT-*-NONE's proof never changes for a token: replayable */
    c->sasl_mech = mech;
    return KL_OK;
}

int kl_ht_success(kl_client_t *c, uint8_t *text, size_t len)
{
    uint8_t v[KL_HASH_MAX + 4];
    int n = kl_b64_decode(text, len, v, sizeof v);
    return n == 32 && kl_equal_ct(v, c->scram_sig, 32) ? KL_OK : KL_ERR_AUTH;
}

void kl_uuid_format(const uint8_t rnd[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t i, o = 0;
    for (i = 0; i < 16; i++) {
        uint8_t v = rnd[i];
        if (i == 6)
            v = (uint8_t)((v & 0x0f) | 0x40); /* version 4 */
        else if (i == 8)
            v = (uint8_t)((v & 0x3f) | 0x80); /* RFC 4122 variant */
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[v >> 4];
        out[o++] = hex[v & 15];
    }
    out[o] = '\0';
}

/* n decimal digits at s.p[*i]: 1 and *v, or 0. */
static int digits(kl_slice_t s, size_t *i, size_t n, uint32_t *v)
{
    uint32_t x = 0;
    size_t k;
    if (s.len - *i < n)
        return 0;
    for (k = 0; k < n; k++) {
        unsigned d = (unsigned)s.p[*i + k] - '0';
        if (d > 9)
            return 0;
        x = x * 10 + d;
    }
    *i += n;
    *v = x;
    return 1;
}

static int expect(kl_slice_t s, size_t *i, char ch)
{
    if (*i >= s.len || s.p[*i] != (uint8_t)ch)
        return 0;
    (*i)++;
    return 1;
}

int kl_datetime_parse(kl_slice_t s, uint32_t *unix_s)
{
    static const uint8_t mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    uint32_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, oh = 0, om = 0; /* set before use; gcc -O3 cannot tell */
    size_t i = 0;
    int32_t era_days, sign = 0;
    int64_t t;
    if (!digits(s, &i, 4, &y) || !expect(s, &i, '-') || !digits(s, &i, 2, &mo) || !expect(s, &i, '-') ||
        !digits(s, &i, 2, &d) || !expect(s, &i, 'T') || !digits(s, &i, 2, &h) || !expect(s, &i, ':') ||
        !digits(s, &i, 2, &mi) || !expect(s, &i, ':') || !digits(s, &i, 2, &sec))
        return KL_ERR_PROTOCOL;
    if (i < s.len && s.p[i] == '.') { /* fractions: dropped */
        i++;
        if (i >= s.len || s.p[i] - (unsigned)'0' > 9)
            return KL_ERR_PROTOCOL;
        while (i < s.len && s.p[i] - (unsigned)'0' <= 9)
            i++;
    }
    if (i < s.len && s.p[i] == 'Z') {
        i++;
    } else if (i < s.len && (s.p[i] == '+' || s.p[i] == '-')) {
        sign = s.p[i] == '+' ? 1 : -1;
        i++;
        if (!digits(s, &i, 2, &oh) || !expect(s, &i, ':') || !digits(s, &i, 2, &om) || oh > 14 || om > 59)
            return KL_ERR_PROTOCOL;
    } else {
        return KL_ERR_PROTOCOL; /* a token's expiry names its zone */
    }
    if (i != s.len || y < 1970 || y > 2105 || mo - 1 > 11 || d - 1 >= mdays[mo - 1] || h > 23 || mi > 59 ||
        sec > 60)
        return KL_ERR_PROTOCOL;
    /* days since 1970-01-01 (proleptic Gregorian, H. Hinnant's days_from_civil) */
    {
        uint32_t yy = mo <= 2 ? y - 1 : y, era = yy / 400, yoe = yy - era * 400;
        uint32_t doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1;
        uint32_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era_days = (int32_t)(era * 146097 + doe) - 719468;
    }
    t = (int64_t)era_days * 86400 + (int64_t)h * 3600 + mi * 60 + sec - sign * (int64_t)(oh * 3600 + om * 60);
    if (t < 0) /* y <= 2105 keeps t below 2^32 */
        return KL_ERR_PROTOCOL;
    *unix_s = (uint32_t)t;
    return KL_OK;
}

#else
typedef int kl_sasl2_compiled_out;
#endif
