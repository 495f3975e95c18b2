/* kinglet — EVA driver: SCRAM's message parsing (core/kl_scram.c): the
 * server-first message (kl_scram_challenge) and the server-final message
 * (kl_scram_success), each as every base64 text of length 0..PROVE_N with
 * every byte value, and as the base64 of a known beginning (our nonce
 * extended, the salt, "i=" / "v=" and most of the signature) followed by
 * every such tail, so that the success paths are reached. A message
 * arrives whole (the caller collects the element's text). The port's
 * crypto is mbedTLS's, not ours: the driver's hash/HMAC/PBKDF2/random
 * write their full outputs with fixed bytes (see README.md). */
#include "__fc_builtin.h"

#include "kinglet/kinglet.h"
#include "kl_internal.h"
#include "kl_string.h"

#ifndef PROVE_N
#define PROVE_N 8
#endif

static size_t hlen(kl_hash_alg_t alg) { return alg == KL_HASH_SHA256 ? 32 : 20; }

static void fill(uint8_t *out, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        out[i] = (uint8_t)i;
}

static int st_hash(void *ctx, kl_hash_alg_t alg, const uint8_t *data, size_t len, uint8_t *out)
{
    (void)ctx, (void)data, (void)len;
    fill(out, hlen(alg));
    return 0;
}

static int st_hmac(void *ctx, kl_hash_alg_t alg, const uint8_t *key, size_t key_len, const kl_slice_t *parts,
                   size_t nparts, uint8_t *out)
{
    (void)ctx, (void)key, (void)key_len, (void)parts, (void)nparts;
    fill(out, hlen(alg));
    return 0;
}

static int st_pbkdf2(void *ctx, kl_hash_alg_t alg, const uint8_t *pw, size_t pw_len, const uint8_t *salt,
                     size_t salt_len, uint32_t iterations, uint8_t *out, size_t out_len)
{
    (void)ctx, (void)alg, (void)pw, (void)pw_len, (void)salt, (void)salt_len, (void)iterations;
    fill(out, out_len);
    return 0;
}

static int st_random(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    fill(out, len); /* the nonce "ABCDEFGHIJKLMNOPQRSTUVWX" */
    return 0;
}

static const kl_crypto_t crypto = {NULL, st_hash, st_hmac, st_pbkdf2, st_random};

/* base64 of "r=ABCDEFGHIJKLMNOPQRSTUVWXSRV,s=QUJD,i=" (39 bytes): the tail
 * decodes to the iteration count and what follows it. */
static const char first_head[] = "cj1BQkNERUZHSElKS0xNTk9QUVJTVFVWV1hTUlYscz1RVUpELGk9";
/* base64 of "v=" and the first 25 characters of the base64 of the stub's
 * 20-byte ServerSignature (bytes 0..19): the tail decodes to the rest. */
static const char final_head[] = "dj1BQUVDQXdRRkJnY0lDUW9MREEwT0R4QVJF";

static kl_client_t c;
static uint8_t in[PROVE_N];
static uint8_t text[sizeof first_head + PROVE_N];
static uint8_t out[512];

static void start(void)
{
    kl_xw_t w;
    memset(&c, 0, sizeof c);
    c.cfg.jid = "alice@example.org";
    c.cfg.password = "secret";
    c.cfg.crypto = &crypto;
    c.local_len = 5;
    kl_xw_init(&w, out, sizeof out);
    if (kl_scram_start(&c, &w, KL_MECH_SCRAM_SHA1) != KL_OK)
        Frama_C_show_each_start_failed(0);
}

/* text = head (known, may be "") + the last len bytes of in[]. */
static size_t make_text(const char *head, size_t hl, size_t len)
{
    size_t i;
    for (i = 0; i < hl; i++)
        text[i] = (uint8_t)head[i];
    for (i = 0; i < len; i++)
        text[hl + i] = in[PROVE_N - len + i];
    return hl + len;
}

static void first(const char *head, size_t hl)
{
    size_t len = Frama_C_size_t_interval(0, PROVE_N);
    kl_xw_t w;
    int st;
    //@ split len;
    start();
    kl_xw_init(&w, out, sizeof out);
    st = kl_scram_challenge(&c, text, make_text(head, hl, len), &w);
    if (st == KL_OK)
        Frama_C_show_each_first_ok(w.len);
    else
        Frama_C_show_each_first_err(st);
    //@ merge len;
}

static void final(const char *head, size_t hl)
{
    size_t len = Frama_C_size_t_interval(0, PROVE_N);
    int st;
    //@ split len;
    fill(c.scram_sig, sizeof c.scram_sig); /* what the stub's HMAC gave */
    c.sasl_mech = KL_MECH_SCRAM_SHA1;
    st = kl_scram_success(&c, text, make_text(head, hl, len));
    if (st == KL_OK)
        Frama_C_show_each_final_ok(st);
    else
        Frama_C_show_each_final_err(st);
    //@ merge len;
}

int main(void)
{
    Frama_C_make_unknown((char *)in, sizeof in);
    first("", 0);
    first(first_head, sizeof first_head - 1);
    final("", 0);
    final(final_head, sizeof final_head - 1);
    Frama_C_show_each_done(0);
    return 0;
}
