/* kinglet — EVA driver: base64 (core/kl_base64.c), decode and encode, every
 * input of length 0..PROVE_N with every byte value (see README.md). */
#include "__fc_builtin.h"

#include "kl_internal.h"

#ifndef PROVE_N
#define PROVE_N 16
#endif

/* The input is the last len bytes of in[]: a read past its end leaves in[]. */
static uint8_t in[PROVE_N];
/* Decode output: the last cap bytes of dec[]. */
static uint8_t dec[PROVE_N];
/* Encode output: the last wcap bytes of enc[]. */
static uint8_t enc[(PROVE_N + 2) / 3 * 4];

/* Every input, every output capacity 0..PROVE_N. */
static void decode_all(void)
{
    size_t len = Frama_C_size_t_interval(0, PROVE_N);
    size_t cap = Frama_C_size_t_interval(0, PROVE_N);
    int r;
    //@ split len;
    //@ split cap;
    r = kl_b64_decode(in + (PROVE_N - len), len, dec + (PROVE_N - cap), cap);
    if (r >= 0)
        Frama_C_show_each_decode_ok(r);
    else
        Frama_C_show_each_decode_err(r);
    //@ merge len;
    //@ merge cap;
}

/* Every input fed in two chunks, the boundary k anywhere in 0..len, into a
 * writer with room for the whole output. */
static void encode_chunks(void)
{
    size_t len = Frama_C_size_t_interval(0, PROVE_N);
    size_t k;
    kl_xw_t w;
    kl_b64_t b;
    //@ split len;
    k = Frama_C_size_t_interval(0, len);
    //@ split k;
    kl_xw_init(&w, enc, sizeof enc);
    kl_b64_init(&b, &w);
    kl_b64_feed(&b, in + (PROVE_N - len), k);
    kl_b64_feed(&b, in + (PROVE_N - len) + k, len - k);
    kl_b64_finish(&b);
    if (kl_xw_status(&w) == KL_OK)
        Frama_C_show_each_encode_ok(w.len);
    //@ merge len;
    //@ merge k;
}

/* Every input in one chunk into a writer of every capacity from 0 to what
 * the output needs (kl_xw_raw appends all of a group or nothing, so a full
 * writer does not depend on where the chunks were cut). */
static void encode_caps(void)
{
    size_t len = Frama_C_size_t_interval(0, PROVE_N);
    size_t wcap = Frama_C_size_t_interval(0, sizeof enc);
    kl_xw_t w;
    kl_b64_t b;
    //@ split len;
    //@ split wcap;
    kl_xw_init(&w, enc + (sizeof enc - wcap), wcap);
    kl_b64_init(&b, &w);
    kl_b64_feed(&b, in + (PROVE_N - len), len);
    kl_b64_finish(&b);
    if (kl_xw_status(&w) != KL_OK)
        Frama_C_show_each_encode_full(w.len);
    //@ merge len;
    //@ merge wcap;
}

int main(void)
{
    Frama_C_make_unknown((char *)in, sizeof in);
    decode_all();
    encode_chunks();
    encode_caps();
    Frama_C_show_each_done(0);
    return 0;
}
