/* libFuzzer target for the XML tokenizer and writer.
 *
 * Input: two bytes choosing a split point, then the XML. The XML is
 * tokenized whole, in two slices (the engine's pattern: keep the
 * unconsumed tail, append the rest) and one byte at a time (above 512
 * bytes: in chunks of 2..30 bytes); all must give the same digest of the
 * decoded token stream
 * (text hashed byte by byte, so how text was cut into pieces does not
 * matter). Skipping is part of every run, the way the engine uses it:
 * after a limit error the failed element is skipped (kl_xml_skip(x,
 * depth + 1)) and the run goes on; an element whose local name starts with
 * 'z' is skipped right after its START, one starting with 'y' skips its
 * parent from inside. Skip tokens count only where a skip ends, and a skip
 * must consume every byte it is given. Every complete stanza (depth 2) is
 * walked again with kl_xml_init_inner() from its raw bytes and must give
 * the same tokens. Every text and attribute value must decode, and
 * decoded_eq must agree with decode. A caller that breaks the contract
 * (fewer or other bytes after NEED_MORE; inputs up to 1 KB) must get
 * clean results (the sanitizers judge). Finally the writer escapes the input as text and an
 * attribute; if it accepts it, the tokenizer must read back the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinglet/kl_xml.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

typedef struct {
    uint64_t h;
} dig_t;

static void mix(dig_t *d, const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t i;
    for (i = 0; i < n; i++)
        d->h = (d->h ^ b[i]) * 1099511628211ull;
}

static void mix_u(dig_t *d, uint32_t v)
{
    mix(d, &v, sizeof v);
}

static uint8_t dec[1 << 16], dec2[1 << 16];

/* decoded_eq agrees with decode (own buffer: dec is being hashed). */
static void check_decode(kl_slice_t raw, int mode)
{
    int n = kl_xml_decode(raw, mode, dec2, sizeof dec2);
    CHECK(n >= 0);
    if (mode == KL_XML_RAW_TEXT && (size_t)n < sizeof dec2 && !memchr(dec2, 0, (size_t)n)) {
        dec2[n] = 0;
        CHECK(kl_xml_decoded_eq(raw, (const char *)dec2));
        if (n > 0) {
            dec2[n - 1] ^= 1;
            CHECK(!kl_xml_decoded_eq(raw, (const char *)dec2));
        }
    }
}

static void mix_token(dig_t *d, const kl_xml_token_t *t)
{
    if (t->type == KL_XML_SKIP) {
        if (t->empty) { /* where a skip ends, not how it was cut */
            mix_u(d, 0x700u);
            mix_u(d, t->depth);
        }
        return;
    }
    if (t->type == KL_XML_TEXT) {
        int n = kl_xml_decode(t->text, t->cdata, dec, sizeof dec);
        CHECK(n >= 0);
        CHECK(t->text.len > 0);
        if (!t->cdata)
            check_decode(t->text, KL_XML_RAW_TEXT);
        mix(d, dec, (size_t)n);
        return;
    }
    mix_u(d, 0x100u + t->type);
    mix_u(d, t->depth);
    mix_u(d, t->empty);
    mix(d, t->name.p, t->name.len);
    mix_u(d, 0x200);
    mix(d, t->ns.p, t->ns.len);
    mix_u(d, 0x300);
    CHECK(t->local.len <= t->name.len);
    CHECK(memcmp(t->local.p, t->name.p + t->name.len - t->local.len, t->local.len) == 0);
    if (t->type == KL_XML_START) {
        size_t pos = 0;
        unsigned count = 0;
        kl_slice_t an, av, g;
        while (kl_xml_attr_next(t->attrs, &pos, &an, &av)) {
            int n = kl_xml_decode(av, KL_XML_RAW_ATTR, dec, sizeof dec);
            CHECK(n >= 0);
            CHECK(++count <= KL_XML_MAX_ATTRS);
            check_decode(av, KL_XML_RAW_TEXT);
            mix(d, an.p, an.len);
            mix_u(d, 0x400);
            mix(d, dec, (size_t)n);
            mix_u(d, 0x500);
            /* names are unique, so attr_get finds this very value */
            {
                char nm[KL_XML_MAX_NAME + 1];
                CHECK(an.len <= KL_XML_MAX_NAME);
                memcpy(nm, an.p, an.len);
                nm[an.len] = 0;
                CHECK(kl_xml_attr_get(t->attrs, nm, &g) && g.p == av.p && g.len == av.len);
            }
        }
    }
}

static int is_limit(int r)
{
    return r == KL_ERR_XML_DEPTH || r == KL_ERR_XML_STACK || r == KL_ERR_XML_NAME_TOO_LONG ||
           r == KL_ERR_XML_ATTR_TOO_LONG || r == KL_ERR_XML_ATTRS;
}

/* After a START: the skips its name asks for. Returns 1 if one began. */
static int skip_policy(kl_xml_t *x, const kl_xml_token_t *t)
{
    unsigned d;
    int r;
    if (!t->local.len || (t->local.p[0] != 'z' && t->local.p[0] != 'y'))
        return 0;
    d = t->local.p[0] == 'z' ? t->depth : t->depth - 1u;
    r = kl_xml_skip(x, d);
    if (t->empty || d <= x->base) { /* its END is owed, or not above the base: refused */
        CHECK(r == KL_ERR_STATE);
        return 0;
    }
    CHECK(r == KL_OK);
    CHECK(x->depth == d - 1);
    return 1;
}

/* Walks stanza bytes s[0..n) with an inner tokenizer over `parent` and
 * returns the digest of its tokens up to the stanza's END. */
static uint64_t inner_digest(const kl_xml_t *parent, const uint8_t *s, size_t n)
{
    static kl_xml_t in;
    dig_t d = {14695981039346656037ull};
    size_t pos = 0;
    kl_xml_token_t t;
    int skipping = 0;
    kl_xml_init_inner(&in, parent);
    for (;;) {
        size_t c;
        int r = kl_xml_next(&in, s + pos, n - pos, &c, &t);
        if (r < 0 && is_limit(r) && !skipping) { /* as the whole run did */
            CHECK(kl_xml_skip(&in, in.depth + 1u) == KL_OK);
            skipping = 1;
            continue;
        }
        CHECK(r > 0);
        pos += c;
        if (r == KL_XML_SKIP && t.empty)
            skipping = 0;
        mix_token(&d, &t);
        if (r == KL_XML_END && t.depth == parent->depth + 1)
            break;
        if (r == KL_XML_START && skip_policy(&in, &t))
            skipping = 1;
    }
    CHECK(pos == n);
    return d.h;
}

/* Tokenizes in[0..n) delivered as in[0..k), then `step` bytes at a time
 * (0: the rest at once, the unconsumed tail moved to the buffer's front
 * first; in steps it stays where it is: no quadratic copying). */
static uint64_t run(const uint8_t *in, size_t n, size_t k, size_t step, int inner)
{
    static kl_xml_t x, snap;
    static uint8_t buf[1 << 16];
    dig_t d = {14695981039346656037ull};
    dig_t sd = {0};
    size_t have = k, fed = k, stanza_at = 0, lo = 0;
    int in_stanza = 0, skipping = 0, r;
    kl_xml_token_t t;

    memcpy(buf, in, k);
    kl_xml_init(&x);
    for (;;) {
        size_t off = lo, c;
        for (;;) {
            if (inner && x.depth == 1 && !x.pending_end && !skipping)
                snap = x; /* the parent as it stands before a stanza */
            r = kl_xml_next(&x, buf + off, have - off, &c, &t);
            if (r < 0 && is_limit(r) && !skipping) {
                mix_u(&d, 0x800u + (uint32_t)-r);
                CHECK(kl_xml_skip(&x, x.depth + 1u) == KL_OK);
                CHECK(x.error == 0);
                skipping = 1;
                in_stanza = in_stanza && x.depth >= 2;
                continue;
            }
            if (r <= 0)
                break;
            CHECK(c <= have - off);
            if (r == KL_XML_SKIP) {
                CHECK(skipping && c > 0);
                CHECK(t.empty || c == have - off); /* every byte it is given */
                if (t.empty)
                    skipping = 0;
            }
            mix_token(&d, &t);
            if (inner && t.type == KL_XML_START && t.depth == 2) {
                in_stanza = 1;
                stanza_at = off + t.offset;
                sd.h = 14695981039346656037ull;
            }
            if (in_stanza)
                mix_token(&sd, &t);
            off += c;
            if (in_stanza && t.type == KL_XML_END && t.depth == 2) {
                in_stanza = 0;
                /* the stanza's bytes are still in buf when it was fed whole */
                if (stanza_at < off)
                    CHECK(inner_digest(&snap, buf + stanza_at, off - stanza_at) == sd.h);
            }
            if (r == KL_XML_START && skip_policy(&x, &t)) {
                skipping = 1;
                in_stanza = in_stanza && x.depth >= 2; /* a skipped stanza is not walked again */
            }
        }
        if (r < 0) {
            mix_u(&d, (uint32_t)-r);
            break;
        }
        CHECK(!skipping || off == have); /* a skip never holds bytes back */
        if (step) { /* small chunks: no quadratic copying */
            lo = off;
        } else {
            memmove(buf, buf + off, have - off);
            have -= off;
            if (in_stanza)
                stanza_at = stanza_at >= off ? stanza_at - off : (size_t)-1 / 2; /* moved out: skip */
        }
        if (fed == n) {
            mix_u(&d, 0x600u + x.depth);
            break;
        }
        {
            size_t m = step && step < n - fed ? step : n - fed;
            memcpy(buf + have, in + fed, m);
            have += m;
            fed += m;
        }
    }
    return d.h;
}

/* A caller that breaks the contract now and then: after NEED_MORE it
 * presents fewer bytes than before, or the same number with one changed.
 * Nothing is compared; every result must be clean (no sanitizer report)
 * and well formed. */
static void run_careless(const uint8_t *in, size_t n, uint32_t seed)
{
    static kl_xml_t x;
    static uint8_t buf[1 << 16];
    size_t have = 0, fed = 0, step = 1 + seed % 97;
    unsigned calls = 0;
    kl_xml_init(&x);
    while (calls++ < 100000) {
        size_t c, len = have;
        kl_xml_token_t t;
        int r;
        seed = seed * 1103515245u + 12345u;
        if (have && (seed >> 16) % 5 == 0) {
            len = (seed >> 8) % have; /* fewer bytes */
        } else if (have && (seed >> 16) % 5 == 1) {
            buf[(seed >> 4) % have] ^= (uint8_t)(1u << (seed % 8)); /* other bytes */
        }
        r = kl_xml_next(&x, buf, len, &c, &t);
        if (r < 0) {
            if (is_limit(r) && kl_xml_skip(&x, x.depth + 1u) == KL_OK)
                continue;
            return;
        }
        CHECK(c <= len);
        if (r > 0) {
            CHECK(r <= KL_XML_SKIP);
            if (r == KL_XML_START) {
                size_t pos = 0;
                kl_slice_t an, av;
                CHECK(t.attrs.p >= buf && t.attrs.p + t.attrs.len <= buf + len);
                while (kl_xml_attr_next(t.attrs, &pos, &an, &av))
                    (void)kl_xml_decode(av, KL_XML_RAW_ATTR, dec, sizeof dec);
            } else if (r == KL_XML_TEXT) {
                CHECK(t.text.p >= buf && t.text.p + t.text.len <= buf + len);
                (void)kl_xml_decode(t.text, t.cdata, dec, sizeof dec);
            }
            memmove(buf, buf + c, have - c);
            have -= c;
            continue;
        }
        if (fed == n)
            return;
        {
            size_t m = step < n - fed ? step : n - fed;
            memcpy(buf + have, in + fed, m);
            have += m;
            fed += m;
        }
    }
}

static void writer_roundtrip(const uint8_t *in, size_t n)
{
    static uint8_t out[1 << 17];
    kl_xw_t w;
    kl_xml_t x;
    kl_xml_token_t t;
    size_t off = 0, c, dl = 0;
    kl_slice_t v;
    int r;
    kl_xw_init(&w, out, sizeof out);
    kl_xw_start(&w, "r");
    kl_xw_attr_n(&w, "v", in, n);
    kl_xw_text(&w, in, n);
    kl_xw_end(&w, "r");
    if (kl_xw_status(&w) != KL_OK)
        return;
    kl_xml_init(&x);
    r = kl_xml_next(&x, out, w.len, &c, &t);
    if (r == KL_ERR_XML_ATTR_TOO_LONG)
        return; /* the escaped value outgrew the tokenizer's bound: fine */
    CHECK(r == KL_XML_START);
    CHECK(kl_xml_attr_get(t.attrs, "v", &v));
    r = kl_xml_decode(v, KL_XML_RAW_ATTR, dec, sizeof dec);
    CHECK(r == (int)n && memcmp(dec, in, n) == 0);
    off = c;
    while ((r = kl_xml_next(&x, out + off, w.len - off, &c, &t)) == KL_XML_TEXT) {
        int k = kl_xml_decode(t.text, 0, dec + dl, sizeof dec - dl);
        CHECK(k >= 0);
        dl += (size_t)k;
        off += c;
    }
    CHECK(r == KL_XML_END);
    CHECK(dl == n && memcmp(dec, in, n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t split, n;
    const uint8_t *in;
    uint64_t whole;
    if (size < 2 || size > 32768)
        return 0;
    n = size - 2;
    in = data + 2;
    split = (size_t)(data[0] | data[1] << 8) % (n + 1);
    whole = run(in, n, n, 0, 1);
    CHECK(run(in, n, split, 0, 0) == whole);
    /* byte by byte; longer inputs in small chunks of a size the input picks */
    CHECK(run(in, n, 0, n <= 512 ? 1 : 2 + data[1] % 29u, 0) == whole);
    if (n <= 1024)
        run_careless(in, n, (uint32_t)(data[0] | data[1] << 8) * 2654435761u);
    if (n <= 4096)
        writer_roundtrip(in, n);
    return 0;
}
