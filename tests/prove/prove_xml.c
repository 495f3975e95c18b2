/* kinglet — EVA driver: the pull XML tokenizer (core/kl_xml.c), default
 * configuration (kl_config_defaults.h; KL_XML_WORDSCAN 1 as on a host, 0
 * with -DKL_XML_WORDSCAN=0 as in the -Os firmware). A fixed stream header
 * (the root with a default and a prefixed namespace declaration) is fed as
 * concrete bytes first; then every continuation of length 0..PROVE_N with
 * every byte value, in two contexts: the root's content (text, references,
 * CDATA, child and end tags) and after "<a" (a child's start tag: attributes,
 * '/>', '>'). Each is fed twice: all of it in one slice, calling again after
 * each token; and one byte at a time, the caller presenting the bytes not
 * yet consumed again with one more after each KL_XML_NEED_MORE (the resume
 * state). Every token's attributes are iterated and its text and attribute
 * values decoded, as the engine does.
 *
 * Needs, besides prove.sh's options: -eva-split-return full (the scanners
 * return a status with out-parameters; merged at return, a pointer from one
 * outcome meets the status of another), -eva-ilevel 256 (a byte tested
 * against '<', '&', '?'... stays an exact set of the other 255 values, not
 * 0..255 again) and -eva-domains equality (without it, out-of-bounds
 * alarms remain in kl_xml_decode's reference path: the tokenizer tests a
 * copy c = *p, and a '&' it has ruled out stays possible in memory). */
#include "__fc_builtin.h"

#include "kinglet/kl_xml.h"
#include <string.h>

#include "prove_memcmp.h" /* memcmp with a body EVA can follow */

#ifndef PROVE_N
#define PROVE_N 3
#endif

/* The stream header: its own array, handed over before the unknown bytes
 * (nothing in kl_xml_t points into the input). */
static const uint8_t head[] = "<r xmlns='u' xmlns:p='v'>";
/* The continuation is the last len bytes of in[]: a read past its end leaves it. */
static uint8_t in[2 + PROVE_N];
static uint8_t out[2 + PROVE_N];
static kl_xml_t x;

static void use_token(int r, const kl_xml_token_t *t)
{
    size_t pos = 0;
    kl_slice_t name, value;
    int d;
    if (r == KL_XML_START)
        Frama_C_show_each_start(t->depth);
    else if (r == KL_XML_END)
        Frama_C_show_each_end(t->depth);
    if (r == KL_XML_TEXT) {
        Frama_C_show_each_text(t->text.len);
        d = kl_xml_decode(t->text, t->cdata, out, sizeof out);
        Frama_C_show_each_decoded(d);
    }
    if (r == KL_XML_START) {
        while (kl_xml_attr_next(t->attrs, &pos, &name, &value)) {
            d = kl_xml_decode(value, KL_XML_RAW_ATTR, out, sizeof out);
            Frama_C_show_each_attr(d);
        }
    }
}

/* The header, concretely: one START for the root at depth 1. */
static void begin(void)
{
    size_t consumed;
    kl_xml_token_t tok;
    int r;
    kl_xml_init(&x);
    r = kl_xml_next(&x, head, sizeof head - 1, &consumed, &tok);
    Frama_C_show_each_root(r, consumed);
}

/* The len unknown bytes at buf: first `avail` of them presented, then one
 * more after each NEED_MORE (step 1), or all at once (step = len). */
static void feed(const uint8_t *buf, size_t len, size_t step)
{
    size_t off = 0, avail = step < len ? step : len, consumed;
    kl_xml_token_t tok;
    int r, i;
    /* at most one token per byte, one END owed per START, one NEED_MORE per byte */
    for (i = 0; i < 3 * (PROVE_N + 2) + 2; i++) {
        r = kl_xml_next(&x, buf + off, avail - off, &consumed, &tok);
        if (r > 0) {
            use_token(r, &tok);
            off += consumed;
        } else if (r == KL_XML_NEED_MORE) {
            Frama_C_show_each_need_more(avail - off);
            if (avail == len)
                return;
            avail++;
        } else {
            Frama_C_show_each_error(r);
            return;
        }
    }
    Frama_C_show_each_loop_out(i);
}

/* One context and one way of feeding, for every len 0..PROVE_N: the unknown
 * bytes follow `lead` (concrete, nlead bytes), and the whole is the end of in[]. */
static void run(const char *lead, size_t nlead, int bytewise)
{
    size_t len = Frama_C_size_t_interval(0, PROVE_N), n;
    uint8_t *doc;
    Frama_C_make_unknown((char *)in, sizeof in);
    //@ split len;
    n = nlead + len;
    doc = in + (sizeof in - n);
    if (nlead) /* Frama-C's memcpy wants a valid destination even for 0 bytes */
        memcpy(doc, lead, nlead);
    begin();
    feed(doc, n, bytewise ? 1 : n);
    //@ merge len;
}

int main(void)
{
    /* content of the root: text, references, CDATA, child and end tags */
    run("", 0, 0);
    //@ slevel merge;
    run("", 0, 1);
    //@ slevel merge;
    /* inside a child's start tag, after its name: attributes, '/>', '>' */
    run("<a", 2, 0);
    //@ slevel merge;
    run("<a", 2, 1);
    //@ slevel merge;
    Frama_C_show_each_done(0);
    return 0;
}
