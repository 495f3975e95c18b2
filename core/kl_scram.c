/* kinglet — SASL SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677), client
 * side, with or without tls-exporter channel binding (the -PLUS variants,
 * RFC 9266). The caller wraps each message in RFC 6120's or SASL2's
 * element. Hashing goes through the port's
 * kl_crypto_t, so core/ stays crypto-free. The server's signature is
 * verified before success is accepted. */
#ifndef KL_CORE_BUILD
#define KL_CORE_BUILD /* core/: kl_client_t's members by their own names */
#endif
#include "kinglet/kinglet.h"
#include "kl_internal.h"
#include "kl_string.h"

static size_t hash_len(kl_hash_alg_t alg) { return alg == KL_HASH_SHA256 ? 32 : 20; }

static kl_hash_alg_t mech_alg(uint8_t mech)
{
    return mech & (KL_MECH_SCRAM_SHA256 | KL_MECH_SCRAM_SHA256_PLUS) ? KL_HASH_SHA256 : KL_HASH_SHA1;
}

/* The GS2 header (RFC 5802 7): "p=tls-exporter,," for the -PLUS
 * mechanisms (RFC 9266), else "n,,". Not "y" (RFC 5802: the client could
 * bind but thinks the server cannot, so a server that can refuses: -PLUS
 * was stripped): ejabberd's SCRAM refuses "y" in every case, so a device
 * with exporter data could not log in to an ejabberd configured without
 * -PLUS. Against stripping, kinglet relies on XEP-0474 instead, which both
 * Prosody 13 and ejabberd 24.12 send (ssdp_check below). */
static const char *gs2_header(const kl_client_t *c)
{
    return KL_ENABLE_SASL2 && (c->sasl_mech & KL_MECH_PLUS) ? "p=tls-exporter,," : "n,,";
}

static kl_slice_t sl(const void *p, size_t n)
{
    kl_slice_t s = {(const uint8_t *)p, n};
    return s;
}

static kl_slice_t cs(const char *s) { return sl(s, strlen(s)); }

/* saslname (RFC 5802 5.1): ',' -> "=2C", '=' -> "=3D". The length, or
 * KL_ERR_JID_TOO_LONG; out stays terminated either way. */
static int escape_user(const kl_client_t *c, char *out, size_t cap)
{
    size_t i, o = 0;
    out[0] = '\0';
    for (i = 0; i < c->local_len; i++) {
        char ch = c->cfg.jid[i];
        const char *rep = ch == ',' ? "=2C" : ch == '=' ? "=3D" : NULL;
        size_t n = rep ? 3 : 1;
        if (o + n >= cap)
            return KL_ERR_JID_TOO_LONG;
        if (rep)
            memcpy(out + o, rep, 3);
        else
            out[o] = ch;
        o += n;
    }
    out[o] = '\0';
    return (int)o;
}

/* SCRAM hashes the SASLprep'd password (RFC 5802 2.2, RFC 4013). For
 * ASCII, SASLprep changes nothing but prohibits the control characters;
 * beyond ASCII it needs Unicode tables (NFKC, mapping, bidi) a device does
 * not carry: refused with a named error rather than hashed wrongly. */
static int saslprep_ascii(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if ((uint8_t)s[i] < 0x20 || (uint8_t)s[i] >= 0x7f)
            return KL_ERR_SASLPREP;
    return KL_OK;
}

/* The engine starts SCRAM only with what choose_mech asked for: a
 * password, a crypto port, and for -PLUS the channel-binding data. */
int kl_scram_start(kl_client_t *c, kl_xw_t *w, uint8_t mech)
{
    c->sasl_mech = mech; /* the GS2 header and the hash follow it */
    static const char b64c[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t rnd[sizeof c->scram_cnonce];
    char user[KL_JID_MAX];
    kl_b64_t b;
    size_t i;
    int ulen;
    if (!c->cfg.crypto->random)
        return KL_ERR_NO_MECHANISM;
    if (saslprep_ascii(c->cfg.jid, c->local_len) != KL_OK ||
        saslprep_ascii(c->cfg.password, strlen(c->cfg.password)) != KL_OK)
        return KL_ERR_SASLPREP;
    if ((ulen = escape_user(c, user, sizeof user)) < 0)
        return ulen;
    if (c->cfg.crypto->random(c->cfg.crypto->ctx, rnd, sizeof rnd) != 0)
        return KL_ERR_NO_MECHANISM;
    /* a printable nonce without ',' (6 random bits a character) */
    for (i = 0; i < sizeof rnd; i++)
        c->scram_cnonce[i] = (uint8_t)b64c[rnd[i] & 63];
    kl_b64_init(&b, w);
    kl_b64_feed(&b, (const uint8_t *)gs2_header(c), strlen(gs2_header(c)));
    kl_b64_feed(&b, (const uint8_t *)"n=", 2);
    kl_b64_feed(&b, (const uint8_t *)user, (size_t)ulen);
    kl_b64_feed(&b, (const uint8_t *)",r=", 3);
    kl_b64_feed(&b, c->scram_cnonce, sizeof c->scram_cnonce);
    kl_b64_finish(&b);
    return KL_OK;
}

/* Value of attribute `key` ("r", "s", "i", "v") in a SCRAM message. */
static int scram_attr(const uint8_t *msg, size_t len, char key, kl_slice_t *val)
{
    size_t i = 0;
    *val = sl(msg, 0); /* set on every way out (a caller reads it only after 1) */
    while (i < len) {
        size_t j = i;
        while (j < len && msg[j] != ',')
            j++;
        if (j - i >= 2 && msg[i] == (uint8_t)key && msg[i + 1] == '=') {
            *val = sl(msg + i + 2, j - i - 2);
            return 1;
        }
        if (j - i >= 1 && msg[i] == 'm')
            return KL_ERR_PROTOCOL; /* mandatory extension we do not know */
        i = j + 1;
    }
    return 0;
}

#if KL_ENABLE_SASL2 && KL_ENABLE_SCRAM
/* XEP-0474 (SSDP): the server signs, in its server-first message, the
 * mechanisms and channel-binding types it advertised: "h=" (0.4+: 0x1E
 * and 0x1F between them) or "d=" (0.3, ejabberd: ',' and '|'). A value
 * that differs from what this client saw is a downgrade: KL_ERR_DOWNGRADE.
 * Absent: the server does not do SSDP. (A forged value fails the SCRAM
 * proof anyway: it is part of the AuthMessage.) */
static int ssdp_check(kl_client_t *c, const uint8_t *msg, size_t len, kl_hash_alg_t alg)
{
    const kl_crypto_t *cr = c->cfg.crypto;
    char in[KL_SSDP_MAX];
    uint8_t hash[KL_HASH_MAX], b64[48];
    kl_slice_t v;
    kl_xw_t w;
    kl_b64_t b;
    size_t i;
    int old = 0, r = scram_attr(msg, len, 'h', &v);
    if (r == 0)
        old = 1, r = scram_attr(msg, len, 'd', &v);
    if (r <= 0)
        return r < 0 ? r : KL_OK;
    if (c->ssdp_len == 0xff)
        return KL_ERR_DOWNGRADE; /* too long to keep (KL_SSDP_MAX): a signature that cannot be
                                    checked is not taken on trust (padding the features must not
                                    switch the check off) */
    memcpy(in, c->ssdp, c->ssdp_len);
    for (i = 0; old && i < c->ssdp_len; i++)
        in[i] = in[i] == '\x1e' ? ',' : in[i] == '\x1f' ? '|' : in[i];
    if (cr->hash(cr->ctx, alg, (const uint8_t *)in, c->ssdp_len, hash))
        return KL_ERR_AUTH;
    kl_xw_init(&w, b64, sizeof b64);
    kl_b64_init(&b, &w);
    kl_b64_feed(&b, hash, hash_len(alg));
    kl_b64_finish(&b);
    if (v.len != w.len || memcmp(v.p, b64, w.len) != 0)
        return KL_ERR_DOWNGRADE;
    return KL_OK;
}
#endif

int kl_scram_challenge(kl_client_t *c, uint8_t *text, size_t len, kl_xw_t *w)
{
    const kl_crypto_t *cr = c->cfg.crypto;
    kl_hash_alg_t alg = mech_alg(c->sasl_mech);
    size_t hl = hash_len(alg), i;
    uint8_t salted[KL_HASH_MAX], client_key[KL_HASH_MAX], stored[KL_HASH_MAX], sig[KL_HASH_MAX];
    uint8_t salt[64], proof_b64[48];
    /* base64 of "p=tls-exporter,," and 32 bytes: 64 */
    uint8_t cbind_b64[4 * ((16 + KL_CB_MAX + 2) / 3) + 4];
    size_t cblen;
    char user[KL_JID_MAX];
    kl_slice_t r, s, it, am[10];
    uint32_t iter = 0;
    int n, ok;
    kl_b64_t b;
    kl_xw_t pw;
    const char *password = c->cfg.password; /* as kl_scram_start */

    /* server-first-message, decoded in place (base64 never grows) */
    if ((n = kl_b64_decode(text, len, text, len)) < 0)
        return KL_ERR_PROTOCOL;
    len = (size_t)n;
    if ((ok = scram_attr(text, len, 'r', &r)) <= 0 || scram_attr(text, len, 's', &s) <= 0 ||
        scram_attr(text, len, 'i', &it) <= 0)
        return ok < 0 ? ok : KL_ERR_PROTOCOL;
    /* the server's nonce extends ours */
    if (r.len <= sizeof c->scram_cnonce || memcmp(r.p, c->scram_cnonce, sizeof c->scram_cnonce) != 0)
        return KL_ERR_PROTOCOL;
    for (i = 0; i < r.len; i++)
        if (r.p[i] < 0x21 || r.p[i] > 0x7e)
            return KL_ERR_PROTOCOL;
    if (it.len == 0 || it.len > 9)
        return KL_ERR_PROTOCOL;
    for (i = 0; i < it.len; i++) {
        if (it.p[i] < '0' || it.p[i] > '9')
            return KL_ERR_PROTOCOL;
        iter = iter * 10 + (uint32_t)(it.p[i] - '0');
    }
    /* RFC 7677 4: fewer than 4096 is a broken or hostile server; more than
     * the bound would keep a small CPU busy for minutes */
    if (iter < 4096 || iter > KL_SCRAM_MAX_ITERATIONS)
        return KL_ERR_SCRAM_ITERATIONS;
    if ((n = kl_b64_decode(s.p, s.len, salt, sizeof salt)) <= 0)
        return KL_ERR_PROTOCOL;
#if KL_ENABLE_SASL2 && KL_ENABLE_SCRAM
    if ((ok = ssdp_check(c, text, len, alg)) != KL_OK)
        return ok;
#endif
    (void)escape_user(c, user, sizeof user); /* it fitted in kl_scram_start */

    /* SaltedPassword, ClientKey, StoredKey: each as good as the password
     * (wiped on every way out, below) */
    ok = KL_ERR_AUTH;
    if (cr->pbkdf2(cr->ctx, alg, (const uint8_t *)password, strlen(password), salt, (size_t)n, iter, salted, hl) ||
        cr->hmac(cr->ctx, alg, salted, hl, (kl_slice_t[]){cs("Client Key")}, 1, client_key) ||
        cr->hash(cr->ctx, alg, client_key, hl, stored))
        goto out;

    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    am[0] = cs("n=");
    am[1] = cs(user);
    am[2] = cs(",r=");
    am[3] = sl(c->scram_cnonce, sizeof c->scram_cnonce);
    am[4] = cs(",");
    am[5] = sl(text, len);
    /* c= is the base64 of the GS2 header and the channel-binding data */
    kl_xw_init(&pw, cbind_b64, sizeof cbind_b64);
    kl_b64_init(&b, &pw);
    kl_b64_feed(&b, (const uint8_t *)gs2_header(c), strlen(gs2_header(c)));
#if KL_ENABLE_SASL2
    if (c->sasl_mech & KL_MECH_PLUS)
        kl_b64_feed(&b, c->cb, c->cb_len);
#endif
    kl_b64_finish(&b); /* cbind_b64 holds the longest (KL_CB_MAX) */
    cblen = pw.len;
    am[6] = cs(",c=");
    am[7] = sl(cbind_b64, cblen);
    am[8] = cs(",r=");
    am[9] = r;
    if (cr->hmac(cr->ctx, alg, stored, hl, am, 10, sig))
        goto out;
    for (i = 0; i < hl; i++)
        client_key[i] ^= sig[i]; /* ClientProof */

    /* ServerSignature = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage) */
    if (cr->hmac(cr->ctx, alg, salted, hl, (kl_slice_t[]){cs("Server Key")}, 1, sig) ||
        cr->hmac(cr->ctx, alg, sig, hl, am, 10, c->scram_sig))
        goto out;

    kl_xw_init(&pw, proof_b64, sizeof proof_b64);
    kl_b64_init(&b, &pw);
    kl_b64_feed(&b, client_key, hl);
    kl_b64_finish(&b);

    kl_b64_init(&b, w);
    kl_b64_feed(&b, (const uint8_t *)"c=", 2);
    kl_b64_feed(&b, cbind_b64, cblen);
    kl_b64_feed(&b, (const uint8_t *)",r=", 3);
    kl_b64_feed(&b, r.p, r.len);
    kl_b64_feed(&b, (const uint8_t *)",p=", 3);
    kl_b64_feed(&b, proof_b64, pw.len);
    kl_b64_finish(&b);
    ok = KL_OK;
out:
    kl_wipe(salted, sizeof salted);
    kl_wipe(client_key, sizeof client_key);
    kl_wipe(stored, sizeof stored);
    kl_wipe(sig, sizeof sig);
    kl_wipe(proof_b64, sizeof proof_b64);
    return ok;
}

int kl_scram_success(kl_client_t *c, uint8_t *text, size_t len)
{
    uint8_t v[KL_HASH_MAX + 4] = {0}; /* compared only once decoded: zeroed for the analysis */
    size_t hl = hash_len(mech_alg(c->sasl_mech));
    kl_slice_t vs;
    int n;
    if ((n = kl_b64_decode(text, len, text, len)) < 0)
        return KL_ERR_AUTH;
    if (scram_attr(text, (size_t)n, 'v', &vs) <= 0)
        return KL_ERR_AUTH;
    if (kl_b64_decode(vs.p, vs.len, v, sizeof v) != (int)hl)
        return KL_ERR_AUTH;
    return kl_equal_ct(v, c->scram_sig, hl) ? KL_OK : KL_ERR_AUTH;
}
