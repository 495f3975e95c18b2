/* kinglet — DRAFT, not yet 0 alarms (README.md "Not yet proved"). EVA driver: the pull XML tokenizer (core/kl_xml.c) on every
 * document of length 0..PROVE_N with every byte value, delivered in two
 * chunks cut at any point k in 0..len (see README.md). Every token's
 * attributes are iterated and its text and attribute values decoded, as
 * the engine does. */
#include "__fc_builtin.h"

#include "kinglet/kl_xml.h"

#ifndef PROVE_N
#define PROVE_N 4
#endif

/* The document is the last len bytes of in[]: a read past its end leaves it. */
static uint8_t in[PROVE_N];
static kl_xml_t x;
static uint8_t out[PROVE_N];

static void use_token(const kl_xml_token_t *t)
{
    size_t pos = 0;
    kl_slice_t name, value;
    int d;
    if (t->type == KL_XML_TEXT) {
        d = kl_xml_decode(t->text, t->cdata, out, sizeof out);
        Frama_C_show_each_text(d);
    }
    while (kl_xml_attr_next(t->attrs, &pos, &name, &value)) {
        d = kl_xml_decode(value, KL_XML_RAW_ATTR, out, sizeof out);
        Frama_C_show_each_attr(d);
    }
}

int main(void)
{
    size_t len = Frama_C_size_t_interval(0, PROVE_N);
    size_t k, off = 0, avail, consumed;
    const uint8_t *buf;
    kl_xml_token_t tok;
    int r;

    Frama_C_make_unknown((char *)in, sizeof in);
    //@ split len;
    buf = in + (PROVE_N - len);
    k = Frama_C_size_t_interval(0, len);
    //@ split k;
    avail = k;
    kl_xml_init(&x);
    for (;;) {
        r = kl_xml_next(&x, buf + off, avail - off, &consumed, &tok);
        if (r > 0) {
            Frama_C_show_each_token(r);
            use_token(&tok);
            off += consumed;
        } else if (r == KL_XML_NEED_MORE) {
            if (avail == len)
                break;
            avail = len; /* the second chunk */
        } else {
            Frama_C_show_each_error(r);
            break;
        }
    }
    Frama_C_show_each_done(0);
    return 0;
}
