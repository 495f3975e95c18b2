/* kinglet — EVA driver: the XML writer (core/kl_xw.c) on attacker-controlled
 * strings (see README.md). A writer call takes its string whole, so there
 * is no chunking; the capacity is what varies:
 *   values: every value of length 0..PROVE_N with every byte value, as an
 *     attribute value, as text and as raw bytes (one call each, in an
 *     element), into a writer of every capacity 0..PROVE_CAP (more than the
 *     longest output);
 *   names: every element and attribute name of length 0..PROVE_NAME, each
 *     byte any of 1..255, in a self-closed and in a closed element, into a
 *     writer of every capacity 0..PROVE_NCAP.
 * A name byte is a (signed) char: it is drawn from 1..127 or from -128..-1
 * in two separate states, since one interval -128..127 would hold the NUL
 * that ends the string, and strlen on such a name could be anything. */
#include "__fc_builtin.h"

#include "kinglet/kl_xml.h"

#ifndef PROVE_N
#define PROVE_N 4
#endif
/* "<e a='" + 6 per escaped byte + "'/>" (more than text or raw need) */
#define PROVE_CAP (6 * PROVE_N + 10)
#ifndef PROVE_NAME
#define PROVE_NAME 3
#endif
/* "<N N='x'/>" then "<N>t</N>" */
#define PROVE_NCAP (3 * PROVE_NAME + 6)

/* The value is the last len bytes of val[]: a read past its end leaves it. */
static uint8_t val[PROVE_N];
/* The output is the last cap bytes of buf[]. */
static uint8_t buf[PROVE_CAP > PROVE_NCAP ? PROVE_CAP : PROVE_NCAP];
/* The name is the last nlen + 1 bytes of name[] (NUL included). */
static char name[PROVE_NAME + 1];

static void report(const kl_xw_t *w)
{
    if (kl_xw_status(w) == KL_OK)
        Frama_C_show_each_ok(w->len);
    else
        Frama_C_show_each_err(kl_xw_status(w));
}

/* One writer call on the value v[0..len) (0: attribute value, 1: text,
 * 2: raw), in an element "e", into every capacity 0..PROVE_CAP. The calls
 * are analysed apart: chained, each would run once per outcome of the one
 * before. */
static void value(int call)
{
    size_t len = Frama_C_size_t_interval(0, PROVE_N);
    size_t cap = Frama_C_size_t_interval(0, PROVE_CAP);
    const uint8_t *v;
    kl_xw_t w;
    //@ split len;
    v = val + (PROVE_N - len);
    //@ split cap;
    kl_xw_init(&w, buf + (sizeof buf - cap), cap);
    kl_xw_start(&w, "e");
    if (call == 0)
        kl_xw_attr_n(&w, "a", v, len);
    else if (call == 1)
        kl_xw_text(&w, v, len);
    else
        kl_xw_raw(&w, v, len);
    kl_xw_end(&w, "e");
    report(&w);
    //@ merge cap;
    //@ merge len;
}

static void names(void)
{
    size_t nlen = Frama_C_size_t_interval(0, PROVE_NAME);
    size_t cap = Frama_C_size_t_interval(0, PROVE_NCAP);
    char *nm;
    kl_xw_t w;
    //@ split nlen;
    nm = name + (PROVE_NAME - nlen);
    for (size_t i = 0; i < nlen; i++)
        nm[i] = (char)(Frama_C_interval(0, 1) ? Frama_C_interval(1, 127) : Frama_C_interval(-128, -1));
    nm[nlen] = 0;
    //@ split cap;
    kl_xw_init(&w, buf + (sizeof buf - cap), cap);
    kl_xw_start(&w, nm);
    kl_xw_attr_n(&w, nm, (const uint8_t *)"x", 1);
    kl_xw_end(&w, nm);
    kl_xw_start(&w, nm);
    kl_xw_text(&w, (const uint8_t *)"t", 1);
    kl_xw_end(&w, nm);
    report(&w);
    //@ merge cap;
    //@ merge nlen;
}

int main(void)
{
    Frama_C_make_unknown((char *)val, sizeof val);
    value(0);
    value(1);
    value(2);
    names();
    Frama_C_show_each_done(0);
    return 0;
}
