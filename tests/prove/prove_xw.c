/* kinglet — DRAFT, not yet 0 alarms (README.md "Not yet proved"). EVA driver: the XML writer (core/kl_xw.c) escaping
 * attacker-controlled strings: every value of length 0..PROVE_N with every
 * byte value, as an attribute value and as text, into a writer of every
 * capacity 0..PROVE_CAP; element names of 0..3 bytes, each any of 1..255 (see README.md). A writer call takes its string whole: there is no
 * chunking beyond the two calls, attribute then text. */
#include "__fc_builtin.h"

#include "kinglet/kl_xml.h"

#ifndef PROVE_N
#define PROVE_N 4
#endif
#define PROVE_CAP (4 * PROVE_N + 16)

/* The value is the last len bytes of val[]: a read past its end leaves it. */
static uint8_t val[PROVE_N];
static char name[4];
static uint8_t buf[PROVE_CAP];

int main(void)
{
    size_t len = Frama_C_size_t_interval(0, PROVE_N);
    size_t cap = Frama_C_size_t_interval(0, PROVE_CAP);
    size_t nlen = Frama_C_size_t_interval(0, 3);
    const uint8_t *v;
    kl_xw_t w;

    Frama_C_make_unknown((char *)val, sizeof val);
    //@ split nlen;
    for (size_t i = 0; i < nlen; i++) /* a C string: no NUL before name[nlen] */
        name[i] = (char)Frama_C_interval(1, 255);
    name[nlen] = 0;
    //@ split len;
    v = val + (PROVE_N - len);
    //@ split cap;
    kl_xw_init(&w, buf + (PROVE_CAP - cap), cap);
    kl_xw_start(&w, name);
    kl_xw_attr_n(&w, "a", v, len);
    kl_xw_text(&w, v, len);
    kl_xw_raw(&w, v, len);
    kl_xw_end(&w, name);
    if (kl_xw_status(&w) == KL_OK)
        Frama_C_show_each_ok(w.len);
    else
        Frama_C_show_each_err(kl_xw_status(&w));
    Frama_C_show_each_done(0);
    return 0;
}
