/* XML tokenizer API details and the writer (golden token dumps are in
 * test_xml_golden.c). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinglet/kl_xml.h"
#include "kt.h"

#define S(lit) ((const uint8_t *)(lit)), (sizeof(lit) - 1)

static kl_slice_t sl(const char *s)
{
    kl_slice_t r;
    r.p = (const uint8_t *)s;
    r.len = strlen(s);
    return r;
}

/* Next token from buf[*off..len), advancing *off. */
static int next(kl_xml_t *x, const char *buf, size_t *off, kl_xml_token_t *t)
{
    size_t n = 0, len = strlen(buf);
    int r = kl_xml_next(x, (const uint8_t *)buf + *off, len - *off, &n, t);
    *off += n;
    return r;
}

static void test_need_more_consumes_nothing(void)
{
    kl_xml_t x;
    kl_xml_token_t t;
    size_t n = 99;
    /* each call re-presents what the last one left, with more appended */
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<?xml version='1.0'?><stream:str"), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(n, 0);
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("  <a x='1"), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(n, 0);
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<?xml version='1.0'?>\n <a x='1"), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(n, 0);
    /* the declaration and whitespace before the root belong to the root's START */
    KT_CHECK_EQ(kl_xml_next(&x, S("<?xml version='1.0'?>\n <a x='1'>rest"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(n, 32);
    KT_CHECK_EQ(t.offset, 23);
    KT_CHECK(kl_slice_eq(t.attrs, " x='1'"));
    KT_CHECK_EQ(kl_xml_next(&x, S("rest"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(n, 4);
    /* an incomplete end tag */
    KT_CHECK_EQ(kl_xml_next(&x, S("</"), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(kl_xml_next(&x, S("</a"), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(kl_xml_next(&x, S("</a "), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(kl_xml_next(&x, S("</a >  "), &n, &t), KL_XML_END);
    KT_CHECK_EQ(n, 5);
    /* done: whitespace is not consumed, anything else is junk */
    KT_CHECK_EQ(kl_xml_next(&x, S("  "), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(n, 0);
    KT_CHECK_EQ(kl_xml_next(&x, S("  x"), &n, &t), KL_ERR_XML_SYNTAX);
}

static void test_text_pieces(void)
{
    kl_xml_t x;
    kl_xml_token_t t;
    size_t n;
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a>"), &n, &t), KL_XML_START);
    /* never splits a UTF-8 sequence, a reference or CR LF */
    KT_CHECK_EQ(kl_xml_next(&x, S("ab\xE2\x82"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(t.text.len, 2);
    KT_CHECK_EQ(n, 2);
    KT_CHECK_EQ(kl_xml_next(&x, S("\xE2\x82"), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(kl_xml_next(&x, S("\xE2\x82\xAC&am"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(n, 3);
    KT_CHECK_EQ(kl_xml_next(&x, S("&amp;x\r"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(n, 6);
    KT_CHECK_EQ(kl_xml_next(&x, S("\r"), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(kl_xml_next(&x, S("\r\n</a>"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(n, 2);
    KT_CHECK_EQ(t.depth, 1);
    KT_CHECK_EQ(kl_xml_next(&x, S("</a>"), &n, &t), KL_XML_END);
}

static void test_cdata_pieces(void)
{
    kl_xml_t x;
    kl_xml_token_t t;
    size_t n;
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_next(&x, S("<![CDATA["), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(kl_xml_next(&x, S("<![CDATA[x<y]"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(t.cdata, 1);
    KT_CHECK(kl_slice_eq(t.text, "x<y"));
    KT_CHECK_EQ(t.offset, 0);
    KT_CHECK_EQ(n, 12);
    KT_CHECK_EQ(kl_xml_next(&x, S("]]"), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(kl_xml_next(&x, S("]]]"), &n, &t), KL_XML_TEXT);
    KT_CHECK(kl_slice_eq(t.text, "]"));
    KT_CHECK_EQ(kl_xml_next(&x, S("]]>"), &n, &t), KL_XML_NEED_MORE); /* empty piece: wait */
    KT_CHECK_EQ(n, 0);
    KT_CHECK_EQ(kl_xml_next(&x, S("]]>z<"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(t.cdata, 0);
    KT_CHECK(kl_slice_eq(t.text, "z"));
    KT_CHECK_EQ(n, 4);
}

static void test_empty_element_end(void)
{
    kl_xml_t x;
    kl_xml_token_t t;
    size_t off = 0;
    const char *in = "<r xmlns='urn:r'><p:e xmlns:p='urn:p' a='1'/></r>";
    kl_xml_init(&x);
    KT_CHECK_EQ(next(&x, in, &off, &t), KL_XML_START);
    KT_CHECK_EQ(next(&x, in, &off, &t), KL_XML_START);
    KT_CHECK_EQ(t.empty, 1);
    KT_CHECK_EQ(t.depth, 2);
    KT_CHECK(kl_slice_eq(t.ns, "urn:p"));
    KT_CHECK(kl_slice_eq(t.local, "e"));
    {
        size_t before = off;
        KT_CHECK_EQ(next(&x, in, &off, &t), KL_XML_END);
        KT_CHECK_EQ(off, before);
    }
    KT_CHECK_EQ(t.depth, 2);
    KT_CHECK(kl_slice_eq(t.name, "p:e"));
    KT_CHECK(kl_slice_eq(t.local, "e"));
    KT_CHECK(kl_slice_eq(t.ns, "urn:p"));
    KT_CHECK_EQ(next(&x, in, &off, &t), KL_XML_END);
    KT_CHECK(kl_slice_eq(t.ns, "urn:r"));
    KT_CHECK_EQ(t.depth, 1);
}

static void test_sticky_and_reset(void)
{
    kl_xml_t x;
    kl_xml_token_t t;
    size_t n;
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a><!-- x -->"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_next(&x, S("<!-- x -->"), &n, &t), KL_ERR_XML_COMMENT);
    KT_CHECK_EQ(n, 0);
    KT_CHECK_EQ(kl_xml_next(&x, S("</a>"), &n, &t), KL_ERR_XML_COMMENT);
    KT_CHECK_EQ(kl_xml_next(NULL, S("</a>"), &n, &t), KL_ERR_ARG);
    KT_CHECK_EQ(kl_xml_next(&x, NULL, 3, &n, &t), KL_ERR_ARG);
    kl_xml_reset(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a/>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_next(&x, NULL, 0, &n, &t), KL_XML_END);
    KT_CHECK_EQ(kl_xml_next(&x, NULL, 0, &n, &t), KL_XML_NEED_MORE);
}

static void test_inner(void)
{
    kl_xml_t root, in;
    kl_xml_token_t t;
    size_t off = 0, soff;
    const char *s = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
                    "<message to='a@b'><body>hi &amp; ho</body><x xmlns='urn:x'/></message> "
                    "<stream:error/>";
    const char *stanza;
    kl_xml_init(&root);
    KT_CHECK_EQ(next(&root, s, &off, &t), KL_XML_START);
    soff = off;
    /* the parent walks past the whole stanza first */
    while (next(&root, s, &off, &t) > 0 && !(t.type == KL_XML_END && t.depth == 2))
        ;
    KT_CHECK_EQ(root.depth, 1);
    stanza = s + soff;
    kl_xml_init_inner(&in, &root);
    {
        size_t p = 0, len = off - soff, n;
        int r, count = 0;
        r = kl_xml_next(&in, (const uint8_t *)stanza, len, &n, &t);
        KT_CHECK_EQ(r, KL_XML_START);
        KT_CHECK_EQ(t.depth, 2);
        KT_CHECK(kl_slice_eq(t.ns, "jabber:client"));
        KT_CHECK(kl_slice_eq(t.local, "message"));
        p += n;
        while ((r = kl_xml_next(&in, (const uint8_t *)stanza + p, len - p, &n, &t)) > 0) {
            p += n;
            count++;
            if (t.type == KL_XML_TEXT)
                KT_CHECK(kl_xml_decoded_eq(t.text, "hi & ho"));
            if (t.type == KL_XML_START && kl_slice_eq(t.local, "x"))
                KT_CHECK(kl_slice_eq(t.ns, "urn:x"));
            if (t.type == KL_XML_END && t.depth == 2)
                break;
        }
        KT_CHECK_EQ(r, KL_XML_END);
        KT_CHECK_EQ(count, 6);
        KT_CHECK_EQ(p, len);
        KT_CHECK_EQ(in.depth, 1);
        /* the fragment is over: whitespace waits, anything else is an error */
        KT_CHECK_EQ(kl_xml_next(&in, S(" \n"), &n, &t), KL_XML_NEED_MORE);
        KT_CHECK_EQ(kl_xml_next(&in, S(" <message/>"), &n, &t), KL_ERR_XML_SYNTAX);
    }
    /* the parent is untouched and goes on */
    KT_CHECK_EQ(next(&root, s, &off, &t), KL_XML_TEXT);
    KT_CHECK_EQ(next(&root, s, &off, &t), KL_XML_START);
    KT_CHECK(kl_slice_eq(t.ns, "http://etherx.jabber.org/streams"));
    /* an inner tokenizer accepts no declaration and no end tag of its parent */
    kl_xml_init_inner(&in, &root);
    {
        size_t n;
        KT_CHECK_EQ(kl_xml_next(&in, S("</stream:stream>"), &n, &t), KL_ERR_XML_MISMATCH);
        kl_xml_init_inner(&in, &root);
        KT_CHECK_EQ(kl_xml_next(&in, S("<?xml version='1.0'?><a/>"), &n, &t), KL_ERR_XML_PI);
        kl_xml_init_inner(&in, &root);
        KT_CHECK_EQ(kl_xml_next(&in, S("<stream:x/>"), &n, &t), KL_XML_START);
        KT_CHECK(kl_slice_eq(t.ns, "http://etherx.jabber.org/streams"));
        KT_CHECK_EQ(t.depth, 3);
    }
}

static void test_attrs(void)
{
    kl_slice_t a = sl(" id='x&amp;y' to=\"a@b\"\n type = 'get' "), v, n;
    size_t pos = 0;
    uint8_t buf[16];
    KT_CHECK(kl_xml_attr_get(a, "to", &v));
    KT_CHECK(kl_slice_eq(v, "a@b"));
    KT_CHECK(kl_xml_attr_get(a, "type", &v));
    KT_CHECK(kl_slice_eq(v, "get"));
    KT_CHECK(!kl_xml_attr_get(a, "t", &v));
    KT_CHECK(kl_xml_attr_get(a, "id", &v));
    KT_CHECK(kl_xml_decoded_eq(v, "x&y"));
    KT_CHECK(!kl_xml_decoded_eq(v, "x&"));
    KT_CHECK(!kl_xml_decoded_eq(v, "x&yz"));
    KT_CHECK_EQ(kl_xml_decode(v, 0, buf, sizeof buf), 3);
    KT_CHECK(kl_xml_attr_next(a, &pos, &n, &v) && kl_slice_eq(n, "id"));
    KT_CHECK(kl_xml_attr_next(a, &pos, &n, &v) && kl_slice_eq(n, "to"));
    KT_CHECK(kl_xml_attr_next(a, &pos, &n, &v) && kl_slice_eq(n, "type"));
    KT_CHECK(!kl_xml_attr_next(a, &pos, &n, &v));
    KT_CHECK(!kl_xml_attr_next(sl(""), &pos, &n, &v));
    /* garbage never reads out of bounds */
    pos = 0;
    KT_CHECK(!kl_xml_attr_next(sl(" a='x"), &pos, &n, &v));
    KT_CHECK(kl_slice_eq(sl("abc"), "abc"));
    KT_CHECK(!kl_slice_eq(sl("abc"), "ab"));
    {
        kl_slice_t e = {NULL, 0};
        KT_CHECK(kl_slice_eq(e, ""));
        KT_CHECK(kl_xml_decoded_eq(e, ""));
    }
}

static void test_decode(void)
{
    uint8_t out[32];
    KT_CHECK_EQ(kl_xml_decode(sl("&#x1F600;&lt;"), 0, out, sizeof out), 5);
    KT_CHECK(memcmp(out, "\xF0\x9F\x98\x80<", 5) == 0);
    KT_CHECK_EQ(kl_xml_decode(sl("&lt;&amp;"), 1, out, sizeof out), 9); /* CDATA: as is */
    KT_CHECK_EQ(kl_xml_decode(sl("a\r\nb\rc"), 0, out, sizeof out), 5);
    KT_CHECK(memcmp(out, "a\nb\nc", 5) == 0);
    KT_CHECK_EQ(kl_xml_decode(sl("a\r\nb\tc&#9;"), KL_XML_RAW_ATTR, out, sizeof out), 6);
    KT_CHECK(memcmp(out, "a b c\t", 6) == 0);
    /* exact fit, one short */
    KT_CHECK_EQ(kl_xml_decode(sl("ab&amp;"), 0, out, 3), 3);
    KT_CHECK_EQ(kl_xml_decode(sl("ab&amp;"), 0, out, 2), KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(kl_xml_decode(sl("&#x1F600;"), 0, out, 3), KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(kl_xml_decode(sl(""), 0, NULL, 0), 0);
    /* raw text the tokenizer would have refused */
    KT_CHECK_EQ(kl_xml_decode(sl("&nbsp;"), 0, out, sizeof out), KL_ERR_XML_ENTITY);
    KT_CHECK_EQ(kl_xml_decode(sl("&am"), 0, out, sizeof out), KL_ERR_XML_ENTITY);
    KT_CHECK_EQ(kl_xml_decode(sl("&"), 0, out, sizeof out), KL_ERR_XML_ENTITY);
    KT_CHECK_EQ(kl_xml_decode(sl("&#0;"), 0, out, sizeof out), KL_ERR_XML_CHARREF);
    KT_CHECK_EQ(kl_xml_decode(sl("&#12"), 0, out, sizeof out), KL_ERR_XML_CHARREF);
    KT_CHECK(!kl_xml_decoded_eq(sl("&bogus;"), "&bogus;"));
    KT_CHECK(kl_xml_decoded_eq(sl("a\r\n&#x41;"), "a\nA"));
}

/* Bounds at and past the defaults, built in code rather than golden files. */
static void test_bounds(void)
{
    static char in[4096];
    kl_xml_t x;
    kl_xml_token_t t;
    size_t off, n;
    int i, r;
    /* depth: KL_XML_MAX_DEPTH opens fine, one more fails */
    in[0] = 0;
    for (i = 0; i < KL_XML_MAX_DEPTH + 1; i++)
        strcat(in, "<e>");
    kl_xml_init(&x);
    off = 0;
    for (i = 0; i < KL_XML_MAX_DEPTH; i++)
        KT_CHECK_EQ(next(&x, in, &off, &t), KL_XML_START);
    KT_CHECK_EQ(t.depth, KL_XML_MAX_DEPTH);
    KT_CHECK_EQ(next(&x, in, &off, &t), KL_ERR_XML_DEPTH);
    /* a name of exactly KL_XML_MAX_NAME bytes, then one longer */
    memset(in, 0, sizeof in);
    in[0] = '<';
    memset(in + 1, 'n', KL_XML_MAX_NAME);
    strcat(in, "/>");
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, strlen(in), &n, &t), KL_XML_START);
    in[1 + KL_XML_MAX_NAME] = 'n';
    in[2 + KL_XML_MAX_NAME] = 0; /* no '>' yet: reported as soon as it is too long */
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, strlen(in), &n, &t), KL_ERR_XML_NAME_TOO_LONG);
    /* attribute value: KL_XML_MAX_ATTR bytes fit, one more fails before the quote arrives */
    memset(in, 0, sizeof in);
    strcpy(in, "<a v='");
    memset(in + 6, 'x', KL_XML_MAX_ATTR);
    strcat(in, "'/>");
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, strlen(in), &n, &t), KL_XML_START);
    in[6 + KL_XML_MAX_ATTR] = 'x';
    in[7 + KL_XML_MAX_ATTR] = 0;
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, strlen(in), &n, &t), KL_ERR_XML_ATTR_TOO_LONG);
    /* the stack: long names fill it before the depth bound */
    memset(in, 0, sizeof in);
    kl_xml_init(&x);
    for (i = 0; i < KL_XML_MAX_DEPTH; i++) {
        size_t l = strlen(in);
        in[l] = '<';
        memset(in + l + 1, 'a' + i, KL_XML_MAX_NAME);
        in[l + 1 + KL_XML_MAX_NAME] = '>';
    }
    off = 0;
    while ((r = next(&x, in, &off, &t)) > 0)
        ;
    KT_CHECK_EQ(r, KL_ERR_XML_STACK);
    KT_CHECK(x.stack_len <= KL_XML_STACK_SIZE);
}

static void test_writer(void)
{
    uint8_t buf[128];
    kl_xw_t w;
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_start(&w, "message");
    kl_xw_attr(&w, "to", "a'b\"c<d>&e\tf\ng\rh");
    kl_xw_start(&w, "body");
    kl_xw_text(&w, S("1 < 2 & 3 > 'q' \"r\"\r\n\xE2\x98\xBA"));
    kl_xw_end(&w, "body");
    kl_xw_start(&w, "x");
    kl_xw_end(&w, "x");
    kl_xw_end(&w, "message");
    KT_CHECK_EQ(kl_xw_status(&w), KL_OK);
    buf[w.len] = 0;
    KT_CHECK_STR((char *)buf, "<message to='a&apos;b&quot;c&lt;d&gt;&amp;e&#9;f&#10;g&#13;h'><body>1 &lt; 2 &amp; 3 "
                              "&gt; 'q' \"r\"&#13;\n\xE2\x98\xBA</body><x/></message>");
    /* a stream header: open start tag closed without content */
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_raw(&w, S("<?xml version='1.0'?>"));
    kl_xw_start(&w, "stream:stream");
    kl_xw_attr_n(&w, "to", S("example.com"));
    kl_xw_close_start(&w);
    KT_CHECK_EQ(kl_xw_status(&w), KL_OK);
    buf[w.len] = 0;
    KT_CHECK_STR((char *)buf, "<?xml version='1.0'?><stream:stream to='example.com'>");
}

static void test_writer_full(void)
{
    uint8_t buf[32];
    kl_xw_t w;
    const char *want = "<a b='&amp;'>xy</a>"; /* 19 bytes */
    size_t cap;
    for (cap = 0; cap <= 20; cap++) {
        memset(buf, '#', sizeof buf);
        kl_xw_init(&w, buf, cap);
        kl_xw_start(&w, "a");
        kl_xw_attr(&w, "b", "&");
        kl_xw_text(&w, S("xy"));
        kl_xw_end(&w, "a");
        if (cap >= 19) {
            KT_CHECK_EQ(kl_xw_status(&w), KL_OK);
            KT_CHECK_EQ(w.len, 19);
            KT_CHECK(memcmp(buf, want, 19) == 0);
        } else {
            KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_WRITE_FULL);
            KT_CHECK(w.len <= cap);
            KT_CHECK(memcmp(buf, want, w.len) == 0); /* only whole calls' output */
            KT_CHECK_EQ(buf[cap], '#');               /* never past cap */
        }
    }
    /* sticky: later calls that would fit change nothing */
    kl_xw_init(&w, buf, 4);
    kl_xw_start(&w, "abcdef");
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_WRITE_FULL);
    KT_CHECK_EQ(w.len, 0);
    kl_xw_raw(&w, S("x"));
    kl_xw_start(&w, "a");
    KT_CHECK_EQ(w.len, 0);
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_WRITE_FULL);
    /* an escape that does not fit is not cut in half */
    kl_xw_init(&w, buf, 6);
    kl_xw_start(&w, "a");
    kl_xw_text(&w, S("<"));
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_WRITE_FULL);
    KT_CHECK_EQ(w.len, 2);
}

static void test_writer_bad_input(void)
{
    uint8_t buf[64];
    kl_xw_t w;
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_start(&w, "a");
    kl_xw_text(&w, S("ok\x01"));
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_XML_UTF8);
    KT_CHECK_EQ(w.len, 2); /* "<a": nothing of the failing call */
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_start(&w, "a");
    kl_xw_attr(&w, "x", "\xC0\xAF");
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_XML_UTF8);
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_text(&w, S("\xED\xA0\x80")); /* surrogate */
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_XML_UTF8);
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_text(&w, S("\xEF\xBF\xBF")); /* U+FFFF */
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_XML_UTF8);
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_text(&w, S("\xE2\x98")); /* truncated */
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_XML_UTF8);
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_text(&w, S("\xF4\x8F\xBF\xBD\x7F"));
    KT_CHECK_EQ(kl_xw_status(&w), KL_OK);
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_start(&w, "a b");
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_ARG);
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_start(&w, "");
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_ARG);
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_attr(&w, "x", "1");
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_STATE);
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_start(&w, "a");
    kl_xw_attr(&w, "x'", "1");
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_ARG);
}

/* The writer's argument checks and its all-or-nothing rule at every
 * boundary: a NULL writer is a no-op, a bad name or a NULL with a length is
 * KL_ERR_ARG, and a call that does not fit leaves len (and the open tag) as
 * they were. */
static void test_writer_edges(void)
{
    uint8_t buf[32];
    kl_xw_t w;
    static const char *bad_names[] = {"a\x7f", "a<b", "a>b", "a&b", "a'b", "a\"b", "a=b", "a/b", "a\tb", "\x01"};
    size_t i;
    /* NULL writer: every call is a no-op, the status says KL_ERR_ARG */
    kl_xw_init(NULL, buf, sizeof buf);
    kl_xw_start(NULL, "a");
    kl_xw_attr(NULL, "a", "b");
    kl_xw_attr(NULL, "a", NULL);
    kl_xw_attr_n(NULL, "a", S("b"));
    kl_xw_text(NULL, S("t"));
    kl_xw_raw(NULL, S("r"));
    kl_xw_end(NULL, "a");
    kl_xw_close_start(NULL);
    KT_CHECK_EQ(kl_xw_status(NULL), KL_ERR_ARG);
    /* no buffer: capacity 0 whatever cap says */
    kl_xw_init(&w, NULL, 100);
    KT_CHECK_EQ(w.cap, 0);
    kl_xw_start(&w, "a");
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_WRITE_FULL);
    KT_CHECK_EQ(w.len, 0);
    /* names that could end the tag or start an attribute */
    for (i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        kl_xw_init(&w, buf, sizeof buf);
        kl_xw_start(&w, bad_names[i]);
        KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_ARG);
        KT_CHECK_EQ(w.len, 0);
        kl_xw_init(&w, buf, sizeof buf);
        kl_xw_start(&w, "a");
        kl_xw_attr(&w, bad_names[i], "v");
        KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_ARG);
        KT_CHECK_EQ(w.len, 2);
        kl_xw_init(&w, buf, sizeof buf);
        kl_xw_end(&w, bad_names[i]);
        KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_ARG);
    }
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_start(&w, NULL);
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_ARG);
    /* a NULL value: with a length an error, without one the empty value */
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_start(&w, "a");
    kl_xw_attr_n(&w, "x", NULL, 0);
    kl_xw_text(&w, NULL, 0);
    kl_xw_raw(&w, NULL, 0);
    kl_xw_end(&w, "a");
    KT_CHECK_EQ(kl_xw_status(&w), KL_OK);
    KT_CHECK(w.len == 12 && memcmp(buf, "<a x=''></a>", 12) == 0);
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_start(&w, "a");
    kl_xw_attr_n(&w, "x", NULL, 1);
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_ARG);
    KT_CHECK_EQ(w.len, 2);
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_start(&w, "a");
    kl_xw_attr(&w, "x", NULL);
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_ARG);
    kl_xw_attr(&w, "x", NULL); /* already failed: the first status stays */
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_ARG);
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_text(&w, NULL, 1);
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_ARG);
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_raw(&w, NULL, 1);
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_ARG);
    /* a sticky failure: close_start and attr change nothing */
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_start(&w, "a");
    kl_xw_start(&w, "");
    kl_xw_close_start(&w);
    KT_CHECK_EQ(w.len, 2);
    KT_CHECK_EQ(w.tag_open, 1);
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_ARG);
    /* a two-byte character with one byte left: nothing of it */
    kl_xw_init(&w, buf, 4);
    kl_xw_raw(&w, S("ab"));
    kl_xw_text(&w, S("c\xC3\xA9"));
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_WRITE_FULL);
    KT_CHECK_EQ(w.len, 2);
    /* an open tag whose '>' does not fit: start, raw and text keep it open */
    for (i = 0; i < 3; i++) {
        kl_xw_init(&w, buf, 2);
        kl_xw_start(&w, "a");
        KT_CHECK_EQ(w.len, 2);
        if (i == 0)
            kl_xw_start(&w, "b");
        else if (i == 1)
            kl_xw_raw(&w, S("x"));
        else
            kl_xw_text(&w, S("x"));
        KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_WRITE_FULL);
        KT_CHECK_EQ(w.len, 2);
        KT_CHECK_EQ(w.tag_open, 1);
    }
    /* '>' fits, the next '<' does not */
    kl_xw_init(&w, buf, 3);
    kl_xw_start(&w, "a");
    kl_xw_start(&w, "b");
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_WRITE_FULL);
    KT_CHECK_EQ(w.len, 2);
    KT_CHECK_EQ(w.tag_open, 1);
    /* "/>" does not fit */
    kl_xw_init(&w, buf, 3);
    kl_xw_start(&w, "a");
    kl_xw_end(&w, "a");
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_WRITE_FULL);
    KT_CHECK_EQ(w.len, 2);
    /* "</a" fits, the '>' does not */
    kl_xw_init(&w, buf, 3);
    kl_xw_end(&w, "a");
    KT_CHECK_EQ(kl_xw_status(&w), KL_ERR_WRITE_FULL);
    KT_CHECK_EQ(w.len, 0);
}

/* The tokenizer's and the attribute helpers' argument checks: NULLs are
 * KL_ERR_ARG or "nothing", never a crash; a child tokenizer is not set up
 * from itself or from nothing. Decoding without room is KL_ERR_TOO_LARGE;
 * a capacity past INT_MAX is as good as INT_MAX. */
static void test_api_edges(void)
{
    kl_xml_t x, parent;
    kl_xml_token_t t;
    size_t n = 5, pos = 0;
    kl_slice_t nm, v, none = {NULL, 0};
    uint8_t out[16];
    const kl_slice_t raw = sl("a\tb\nc&amp;");
    kl_xml_init(NULL);
    kl_xml_init(&x);
    kl_xml_init(&parent);
    x.depth = 77;
    kl_xml_init_inner(NULL, &parent);
    kl_xml_init_inner(&x, NULL);
    kl_xml_init_inner(&x, &x);
    KT_CHECK_EQ(x.depth, 77);
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(NULL, (const uint8_t *)"<a>", 3, &n, &t), KL_ERR_ARG);
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)"<a>", 3, NULL, &t), KL_ERR_ARG);
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)"<a>", 3, &n, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_xml_next(&x, NULL, 3, &n, &t), KL_ERR_ARG);
    KT_CHECK_EQ(kl_xml_next(&x, NULL, 0, &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(n, 0);
    KT_CHECK_EQ(kl_xml_attr_next(sl("a='1'"), NULL, &nm, &v), 0);
    KT_CHECK_EQ(kl_xml_attr_next(sl("a='1'"), &pos, NULL, &v), 0);
    KT_CHECK_EQ(kl_xml_attr_next(sl("a='1'"), &pos, &nm, NULL), 0);
    KT_CHECK_EQ(kl_xml_attr_next(none, &pos, &nm, &v), 0);
    KT_CHECK_EQ(kl_xml_attr_next(sl("a='1'"), &pos, &nm, &v), 1);
    KT_CHECK(kl_slice_eq(nm, "a") && kl_slice_eq(v, "1"));
    KT_CHECK_EQ(kl_xml_attr_get(sl("a='1'"), NULL, &v), 0);
    KT_CHECK_EQ(kl_xml_attr_get(sl("a='1'"), "a", NULL), 0);
    KT_CHECK_EQ(kl_slice_eq(sl("a"), NULL), 0);
    KT_CHECK_EQ(kl_xml_decoded_eq(none, ""), 1);
    KT_CHECK_EQ(kl_xml_decoded_eq(none, "x"), 0);
    KT_CHECK_EQ(kl_xml_decoded_eq(raw, NULL), 0);
    KT_CHECK_EQ(kl_xml_decode(none, 0, out, sizeof out), 0);
    KT_CHECK_EQ(kl_xml_decode(raw, 0, NULL, sizeof out), KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(kl_xml_decode(raw, 0, out, (size_t)-1), 6);
    KT_CHECK(memcmp(out, "a\tb\nc&", 6) == 0);
    /* attribute values: tab and newline are spaces (XML 1.0 §3.3.3) */
    KT_CHECK_EQ(kl_xml_decode(raw, KL_XML_RAW_ATTR, out, sizeof out), 6);
    KT_CHECK(memcmp(out, "a b c&", 6) == 0);
    KT_CHECK_EQ(kl_xml_decode(raw, KL_XML_RAW_CDATA, out, sizeof out), 10);
    KT_CHECK(memcmp(out, "a\tb\nc&amp;", 10) == 0);
}

/* What the writer emits, the tokenizer reads back unchanged. */
static void test_roundtrip(void)
{
    uint8_t buf[256], dec[64];
    const char *text = "a&b<c>d]]>e\r\nf\tg'\"\xF0\x9F\x98\x80";
    kl_xw_t w;
    kl_xml_t x;
    kl_xml_token_t t;
    size_t n, off = 0;
    kl_slice_t v;
    int r;
    kl_xw_init(&w, buf, sizeof buf);
    kl_xw_start(&w, "r");
    kl_xw_attr(&w, "v", text);
    kl_xw_text(&w, (const uint8_t *)text, strlen(text));
    kl_xw_end(&w, "r");
    KT_CHECK_EQ(kl_xw_status(&w), KL_OK);
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, buf, w.len, &n, &t), KL_XML_START);
    KT_CHECK(kl_xml_attr_get(t.attrs, "v", &v));
    r = kl_xml_decode(v, KL_XML_RAW_ATTR, dec, sizeof dec);
    KT_CHECK(r == (int)strlen(text) && memcmp(dec, text, (size_t)r) == 0);
    off = n;
    KT_CHECK_EQ(kl_xml_next(&x, buf + off, w.len - off, &n, &t), KL_XML_TEXT);
    r = kl_xml_decode(t.text, 0, dec, sizeof dec);
    KT_CHECK(r == (int)strlen(text) && memcmp(dec, text, (size_t)r) == 0);
    off += n;
    KT_CHECK_EQ(kl_xml_next(&x, buf + off, w.len - off, &n, &t), KL_XML_END);
}

/* tok.plain: the raw slice is the decoded form */
static void test_plain(void)
{
    kl_xml_t x;
    kl_xml_token_t t;
    size_t n;
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(t.plain, 1); /* no attributes */
    KT_CHECK_EQ(kl_xml_next(&x, S("<b x='1' y=\"caf\xC3\xA9 ok\" z=''/>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(t.plain, 1);
    KT_CHECK_EQ(kl_xml_next(&x, S(""), &n, &t), KL_XML_END);
    KT_CHECK_EQ(kl_xml_next(&x, S("<b x='1' y='a&amp;b'/>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(t.plain, 0);
    KT_CHECK_EQ(kl_xml_next(&x, S(""), &n, &t), KL_XML_END);
    KT_CHECK_EQ(kl_xml_next(&x, S("<b y='a\tb'/>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(t.plain, 0); /* attribute normalisation turns TAB LF CR into spaces */
    KT_CHECK_EQ(kl_xml_next(&x, S(""), &n, &t), KL_XML_END);
    KT_CHECK_EQ(kl_xml_next(&x, S("<b y='a\nb'/>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(t.plain, 0);
    KT_CHECK_EQ(kl_xml_next(&x, S(""), &n, &t), KL_XML_END);
    KT_CHECK_EQ(kl_xml_next(&x, S("<b y='a\rb'/>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(t.plain, 0);
    KT_CHECK_EQ(kl_xml_next(&x, S(""), &n, &t), KL_XML_END);
    /* text: LF and TAB stay, '&' and CR need decoding */
    KT_CHECK_EQ(kl_xml_next(&x, S("x\ty\n>z\xE2\x82\xAC<"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(t.plain, 1);
    KT_CHECK_EQ(kl_xml_next(&x, S("ab&am"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(t.text.len, 2);
    KT_CHECK_EQ(t.plain, 1); /* the held-back reference is not in the piece */
    KT_CHECK_EQ(kl_xml_next(&x, S("&amp;<"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(t.plain, 0);
    KT_CHECK_EQ(kl_xml_next(&x, S("x\r"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(t.text.len, 1);
    KT_CHECK_EQ(t.plain, 1); /* the trailing CR is held back */
    KT_CHECK_EQ(kl_xml_next(&x, S("\r\ny<"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(t.plain, 0);
    /* CDATA: '&' is literal, CR still becomes LF */
    KT_CHECK_EQ(kl_xml_next(&x, S("<![CDATA[a&b]]>"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(t.cdata, 1);
    KT_CHECK_EQ(t.plain, 1);
    KT_CHECK_EQ(kl_xml_next(&x, S("<![CDATA[a\r\nb]]>"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(t.plain, 0);
    KT_CHECK_EQ(kl_xml_next(&x, S("</a>"), &n, &t), KL_XML_END);
}

/* What plain promises, checked on every golden input fed whole and one
 * byte at a time: set exactly when decoding would change nothing. */
static int plain_expected(kl_slice_t raw, int mode)
{
    size_t i;
    for (i = 0; i < raw.len; i++) {
        uint8_t c = raw.p[i];
        if (c == '\r' || (c == '&' && mode != KL_XML_RAW_CDATA) ||
            (mode == KL_XML_RAW_ATTR && (c == '\t' || c == '\n')))
            return 0;
    }
    return 1;
}

static int decodes_to_itself(kl_slice_t raw, int mode)
{
    static uint8_t out[1 << 16];
    int n = kl_xml_decode(raw, mode, out, sizeof out);
    return n >= 0 && (size_t)n == raw.len && memcmp(out, raw.p, raw.len) == 0;
}

/* Returns the number of tokens whose plain flag is wrong. */
static int plain_run(const uint8_t *in, size_t len, size_t step)
{
    static uint8_t buf[1 << 16];
    kl_xml_t x;
    kl_xml_token_t t;
    size_t have = 0, fed = 0;
    int bad = 0;
    kl_xml_init(&x);
    for (;;) {
        size_t off = 0, c;
        int r;
        size_t k = len - fed < step ? len - fed : step;
        memcpy(buf + have, in + fed, k);
        have += k;
        fed += k;
        while ((r = kl_xml_next(&x, buf + off, have - off, &c, &t)) > 0) {
            off += c;
            if (r == KL_XML_TEXT) {
                int mode = t.cdata ? KL_XML_RAW_CDATA : KL_XML_RAW_TEXT;
                if (t.plain != plain_expected(t.text, mode) || (t.plain && !decodes_to_itself(t.text, mode)))
                    bad++;
            } else if (r == KL_XML_START) {
                size_t pos = 0;
                kl_slice_t an, av;
                int all = 1;
                while (kl_xml_attr_next(t.attrs, &pos, &an, &av)) {
                    all &= plain_expected(av, KL_XML_RAW_ATTR);
                    if (t.plain && !decodes_to_itself(av, KL_XML_RAW_ATTR))
                        bad++;
                }
                if (t.plain != all)
                    bad++;
            }
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        if (r < 0 || fed == len)
            return bad;
    }
}

static void test_plain_golden(void)
{
    DIR *d = opendir("tests/xml");
    struct dirent *e;
    int files = 0;
    KT_CHECK(d != NULL);
    while (d && (e = readdir(d)) != NULL) {
        char path[512];
        static uint8_t in[1 << 15];
        size_t len, nl = strlen(e->d_name);
        FILE *f;
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".xml") != 0)
            continue;
        snprintf(path, sizeof path, "tests/xml/%s", e->d_name);
        f = fopen(path, "rb");
        if (!f)
            continue;
        len = fread(in, 1, sizeof in, f);
        fclose(f);
        if (plain_run(in, len, len ? len : 1) != 0 || plain_run(in, len, 1) != 0) {
            fprintf(stderr, "plain flag wrong for %s\n", e->d_name);
            KT_CHECK(0);
        }
        files++;
    }
    if (d)
        closedir(d);
    KT_CHECK(files > 100);
}

/* Feeds in[0..n) `step` bytes at a time the way an engine does and
 * returns the token types and depths as a string (SKIP tokens merged). */
static void feed_types(const char *in, size_t n, size_t step, int skip_at_limit, char *out, size_t cap)
{
    static uint8_t buf[1 << 18];
    kl_xml_t x;
    size_t have = 0, fed = 0, o = 0;
    int r = 0;
    kl_xml_init(&x);
    out[0] = 0;
    for (;;) {
        size_t off = 0, c;
        kl_xml_token_t t;
        size_t k = n - fed < step ? n - fed : step;
        memcpy(buf + have, in + fed, k);
        have += k;
        fed += k;
        for (;;) {
            r = kl_xml_next(&x, buf + off, have - off, &c, &t);
            if (r < 0 && skip_at_limit && (r == KL_ERR_XML_DEPTH || r == KL_ERR_XML_NAME_TOO_LONG)) {
                o += (size_t)snprintf(out + o, cap - o, "L");
                KT_CHECK_EQ(kl_xml_skip(&x, x.depth + 1u), KL_OK);
                continue;
            }
            if (r <= 0)
                break;
            off += c;
            if (r != KL_XML_SKIP || t.empty)
                o += (size_t)snprintf(out + o, cap - o, "%c%d", "-SETK"[r], t.depth);
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        if (r < 0) {
            o += (size_t)snprintf(out + o, cap - o, "!%d", r);
            return;
        }
        if (fed == n)
            return;
    }
}

/* A caller that breaks the contract (fewer bytes than before, or other
 * bytes) gets a clean result, never undefined behaviour (ASan/UBSan run). */
static void test_resume_robust(void)
{
    kl_xml_t x;
    kl_xml_token_t t;
    size_t n;
    int r;
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<?xml version='1.0'?><a b='12345"), &n, &t), KL_XML_NEED_MORE);
    /* fewer bytes: scanned again from the start, with the declaration already seen */
    r = kl_xml_next(&x, S("<?xml version='1.0'?><a b='1"), &n, &t);
    KT_CHECK(r == KL_XML_NEED_MORE || r == KL_ERR_XML_PI);
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a b='12345"), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a"), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a b='1'>"), &n, &t), KL_XML_START);
    KT_CHECK(kl_slice_eq(t.attrs, " b='1'"));
    /* other bytes of the same length: whatever comes out is clean */
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a b='12345"), &n, &t), KL_XML_NEED_MORE);
    r = kl_xml_next(&x, S("<?x b'='1'2'3'x>"), &n, &t);
    KT_CHECK(r == KL_XML_START || r < 0);
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<abc x='1' y"), &n, &t), KL_XML_NEED_MORE);
    r = kl_xml_next(&x, S("<?x         y='1'?>"), &n, &t);
    KT_CHECK(r == KL_XML_START || r < 0);
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<r><a>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_next(&x, S("</a    "), &n, &t), KL_XML_NEED_MORE);
    r = kl_xml_next(&x, S("<xx    >"), &n, &t);
    KT_CHECK(r == KL_XML_END || r < 0);
}

/* Changed bytes that end the resumed tag before its own name does: the
 * last call noted "after `<a `" (offset 3); now the tag reads as a
 * declaration, whose pseudo-attributes would begin at offset 5, past the
 * "?>" at 3. A syntax error, and no attribute text of negative length. */
static void test_resume_tag_ends_before_name(void)
{
    static const uint8_t in[] = {'<', '?', 'x', '?', '>'};
    uint8_t *heap;
    kl_xml_t x;
    kl_xml_token_t t;
    size_t n;
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a "), &n, &t), KL_XML_NEED_MORE);
    /* exactly these 5 bytes on the heap: ASan sees any read past them */
    heap = malloc(sizeof in);
    KT_CHECK(heap != NULL);
    if (!heap)
        return;
    memcpy(heap, in, sizeof in);
    KT_CHECK_EQ(kl_xml_next(&x, heap, sizeof in, &n, &t), KL_ERR_XML_SYNTAX);
    KT_CHECK_EQ(n, 0);
    free(heap);
    /* the same inside the root */
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<r>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a "), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(kl_xml_next(&x, S("<?x?>"), &n, &t), KL_ERR_XML_SYNTAX);
    KT_CHECK_EQ(kl_xml_next(&x, S("<r>"), &n, &t), KL_ERR_XML_SYNTAX); /* sticky */
}

/* A call that needs more bytes past 64 KB into the slice cannot note where
 * it stopped: the note of an earlier call (or none) stands, and so must
 * the flags it was taken under. Here the declaration (which sets "no
 * declaration any more") and 5,462 empty CDATA sections followed by an
 * open one (which sets "inside CDATA") are not kept: the next call, with
 * the same bytes and more, reads them again from the start and gets the
 * same tokens as one call over the whole input. */
static void test_need_more_past_64k_keeps_flags(void)
{
    static char in[80000];
    kl_xml_t x;
    kl_xml_token_t t;
    size_t i = 0, n, k;
    /* the declaration, then whitespace before the root */
    i += (size_t)sprintf(in, "<?xml version='1.0'?>");
    memset(in + i, ' ', 70000);
    i += 70000;
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, i, &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(n, 0);
    i += (size_t)sprintf(in + i, "<r/>");
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, i, &n, &t), KL_XML_START);
    KT_CHECK_EQ(n, i);
    KT_CHECK_EQ(t.offset, i - 4);
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, 0, &n, &t), KL_XML_END);
    /* empty CDATA sections inside the root, then an open one */
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<r>"), &n, &t), KL_XML_START);
    i = 0;
    for (k = 0; k < 5462; k++)
        i += (size_t)sprintf(in + i, "<![CDATA[]]>");
    KT_CHECK(i > 0xFFFF);
    i += (size_t)sprintf(in + i, "<![CDATA[");
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, i, &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(n, 0);
    i += (size_t)sprintf(in + i, "hi]]>");
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, i, &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(t.cdata, 1);
    KT_CHECK(t.text.p == (const uint8_t *)in + i - 5);
    KT_CHECK_EQ(t.text.len, 2);
    KT_CHECK_EQ(n, i);
}

/* A caller that re-feeds a start tag with other bytes before the resume
 * point, holding more attributes than the limit: the resumed tag walks its
 * attributes again and stops at the limit (the rec table has no room for
 * more) with the limit's error; at the limit it is still a START. */
static void test_resume_more_attrs_than_scanned(void)
{
    static char in[8 * (KL_XML_MAX_ATTRS + 1) + 8];
    const size_t len = 8 * (KL_XML_MAX_ATTRS + 1) + 4; /* where '>' goes */
    unsigned want;
    for (want = KL_XML_MAX_ATTRS; want <= KL_XML_MAX_ATTRS + 1u; want++) {
        kl_xml_t x;
        kl_xml_token_t t;
        size_t i, n, pos = 0;
        unsigned k, cnt = 0;
        kl_slice_t an, av;
        /* first "<a" and spaces: the tag is noted after its name, 0 attributes */
        memset(in, ' ', sizeof in);
        memcpy(in, "<a", 2);
        kl_xml_init(&x);
        KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, len, &n, &t), KL_XML_NEED_MORE);
        /* then the same length with attributes in it, and '>' at the resume point */
        i = 2;
        for (k = 0; k < want; k++)
            i += (size_t)sprintf(in + i, " b%03u=''", k);
        KT_CHECK(i < len);
        in[i] = ' ';
        in[len] = '>';
        if (want > KL_XML_MAX_ATTRS) {
            KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, len + 1, &n, &t), KL_ERR_XML_ATTRS);
            KT_CHECK_EQ(n, 0);
            continue;
        }
        KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, len + 1, &n, &t), KL_XML_START);
        KT_CHECK_EQ(n, len + 1);
        while (kl_xml_attr_next(t.attrs, &pos, &an, &av))
            cnt++;
        KT_CHECK_EQ(cnt, want);
    }
}

/* An attribute value that trickles in across 64 KB into the slice: the
 * call that would note past 64 KB notes the tag's start instead (the value
 * fast path must not note a truncated offset), and the next call reads the
 * tag again, whole. */
static void test_value_across_64k(void)
{
    static char in[70000];
    kl_xml_t x;
    kl_xml_token_t t;
    kl_slice_t v;
    size_t i, n;
    memset(in, ' ', sizeof in);
    memcpy(in, "<r", 2);
    i = 2 + 65520;
    i += (size_t)sprintf(in + i, "x='aaaaa");
    KT_CHECK_EQ(i, 65530);
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, i, &n, &t), KL_XML_NEED_MORE);
    memset(in + i, 'a', 20);
    i += 20;
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, i, &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(n, 0);
    i += (size_t)sprintf(in + i, "'/>");
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, i, &n, &t), KL_XML_START);
    KT_CHECK_EQ(n, i);
    KT_CHECK_EQ(t.empty, 1);
    KT_CHECK(kl_xml_attr_get(t.attrs, "x", &v));
    KT_CHECK(kl_slice_eq(v, "aaaaaaaaaaaaaaaaaaaaaaaaa"));
    KT_CHECK_EQ(kl_xml_next(&x, (const uint8_t *)in, 0, &n, &t), KL_XML_END);
}

/* Skipping the current element from inside a CDATA section: the skipper
 * starts in CDATA, where "<b>" is text and not a nested element. */
static void test_skip_inside_cdata(void)
{
    kl_xml_t x;
    kl_xml_token_t t;
    size_t n;
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<r>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_next(&x, S("<![CDATA[ab"), &n, &t), KL_XML_TEXT);
    KT_CHECK_EQ(t.cdata, 1);
    KT_CHECK_EQ(n, 11);
    KT_CHECK_EQ(kl_xml_skip(&x, 2), KL_OK);
    KT_CHECK_EQ(kl_xml_next(&x, S("x<b>]]></a><c/></r>"), &n, &t), KL_XML_SKIP);
    KT_CHECK_EQ(t.empty, 1);
    KT_CHECK_EQ(n, 11);
    KT_CHECK_EQ(kl_xml_next(&x, S("<c/></r>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(t.depth, 2);
    KT_CHECK_EQ(kl_xml_next(&x, S("</r>"), &n, &t), KL_XML_END);
    KT_CHECK_EQ(kl_xml_next(&x, S("</r>"), &n, &t), KL_XML_END);
    KT_CHECK_EQ(t.depth, 1);
}

/* Branches of the syntax no other test takes: a name char just past
 * U+203F..U+2040, a declaration with no pseudo-attribute, an attribute
 * text ending at '='. */
static void test_syntax_corners(void)
{
    kl_xml_t x;
    kl_xml_token_t t;
    kl_slice_t an, av;
    size_t n, pos = 0;
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a\xE2\x80\xBF\xE2\x81\x80/>"), &n, &t), KL_XML_START); /* U+203F U+2040 */
    KT_CHECK_EQ(t.name.len, 7);
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a\xE2\x81\x81/>"), &n, &t), KL_ERR_XML_SYNTAX); /* U+2041 ends the name */
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<?xml ?><r/>"), &n, &t), KL_ERR_XML_SYNTAX);
    KT_CHECK_EQ(kl_xml_attr_next(sl(" a="), &pos, &an, &av), 0);
    pos = 0;
    KT_CHECK_EQ(kl_xml_attr_next(sl(" a= "), &pos, &an, &av), 0);
    KT_CHECK_EQ(kl_xml_attr_get(sl("a="), "a", &av), 0);
}

/* A start tag longer than 64 KB (whitespace is unbounded in XML): the
 * resume offset no longer fits, the tokenizer goes on from the last one
 * that did, and the result is the same. */
static void test_resume_past_64k(void)
{
    static char in[140000];
    static char a[64], b[64];
    size_t i = 0;
    i += (size_t)sprintf(in + i, "<?xml version='1.0'?><r x='1'");
    memset(in + i, ' ', 70000);
    i += 70000;
    i += (size_t)sprintf(in + i, "y='2'");
    memset(in + i, '\n', 5000);
    i += 5000;
    i += (size_t)sprintf(in + i, "z='3'><s/></r>");
    feed_types(in, i, i, 0, a, sizeof a);
    KT_CHECK_STR(a, "S1S2E2E1");
    feed_types(in, i, 1460, 0, b, sizeof b);
    KT_CHECK_STR(b, a);
    feed_types(in, i, 64, 0, b, sizeof b);
    KT_CHECK_STR(b, a);
}

static void test_skip_api(void)
{
    kl_xml_t x;
    kl_xml_token_t t;
    size_t n;
    KT_CHECK_EQ(kl_xml_skip(NULL, 1), KL_ERR_ARG);
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_skip(&x, 0), KL_ERR_STATE); /* not above the base */
    KT_CHECK_EQ(kl_xml_skip(&x, 2), KL_ERR_STATE); /* deeper than depth + 1 */
    KT_CHECK_EQ(kl_xml_next(&x, S("<r><a/>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_next(&x, S("<a/>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_skip(&x, 2), KL_ERR_STATE); /* its END is owed */
    KT_CHECK_EQ(kl_xml_next(&x, S(""), &n, &t), KL_XML_END);
    KT_CHECK_EQ(kl_xml_skip(&x, 2), KL_OK);
    KT_CHECK_EQ(kl_xml_skip(&x, 2), KL_ERR_STATE); /* already skipping */
    KT_CHECK_EQ(kl_xml_next(&x, S(""), &n, &t), KL_XML_NEED_MORE);
    KT_CHECK_EQ(kl_xml_next(&x, S("<b"), &n, &t), KL_XML_SKIP);
    KT_CHECK_EQ(n, 2); /* all of it: nothing held back */
    KT_CHECK_EQ(t.depth, 2);
    KT_CHECK_EQ(t.empty, 0);
    KT_CHECK_EQ(kl_xml_next(&x, S(" c='/>'/"), &n, &t), KL_XML_SKIP);
    KT_CHECK_EQ(n, 8);
    KT_CHECK_EQ(kl_xml_next(&x, S("><x/>"), &n, &t), KL_XML_SKIP);
    KT_CHECK_EQ(n, 1); /* the element ends at its '>' */
    KT_CHECK_EQ(t.empty, 1);
    KT_CHECK_EQ(x.depth, 1);
    KT_CHECK_EQ(kl_xml_next(&x, S("<x/>"), &n, &t), KL_XML_START);
    KT_CHECK(kl_slice_eq(t.name, "x"));
    KT_CHECK_EQ(kl_xml_next(&x, S(""), &n, &t), KL_XML_END);
    KT_CHECK_EQ(kl_xml_next(&x, S("</r>"), &n, &t), KL_XML_END);
    /* a sticky error that is not a limit stays, and is what skip returns */
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<r><!-- -->"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_next(&x, S("<!-- -->"), &n, &t), KL_ERR_XML_COMMENT);
    KT_CHECK_EQ(kl_xml_skip(&x, 2), KL_ERR_XML_COMMENT);
    KT_CHECK_EQ(kl_xml_next(&x, S("</r>"), &n, &t), KL_ERR_XML_COMMENT);
    /* an end tag or text before the new element's start tag */
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<r>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_skip(&x, 2), KL_OK);
    KT_CHECK_EQ(kl_xml_next(&x, S("</r>"), &n, &t), KL_ERR_STATE);
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<r>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_skip(&x, 2), KL_OK);
    KT_CHECK_EQ(kl_xml_next(&x, S(" <a/>"), &n, &t), KL_ERR_STATE);
}

/* Every limit error clears with a skip; the tokens after the skipped
 * element are those of the document without it. */
static void test_skip_limits(void)
{
    static const struct {
        const char *in, *without;
        int err;
    } c[] = {
        {"<r><a><nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn x='1'><y/>"
         "</nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn></a><b/></r>",
         "<r><a></a><b/></r>", KL_ERR_XML_NAME_TOO_LONG},
        {"<r><a x:y='1'/><q/></r>", NULL, KL_ERR_XML_NAMESPACE}, /* not a limit: stays */
    };
    unsigned i;
    for (i = 0; i < sizeof c / sizeof c[0]; i++) {
        kl_xml_t x;
        kl_xml_token_t t;
        size_t off = 0;
        int r;
        kl_xml_init(&x);
        while ((r = next(&x, c[i].in, &off, &t)) > 0)
            ;
        KT_CHECK_EQ(r, c[i].err);
        if (!c[i].without) {
            KT_CHECK_EQ(kl_xml_skip(&x, x.depth + 1u), c[i].err);
            continue;
        }
        KT_CHECK_EQ(kl_xml_skip(&x, x.depth + 1u), KL_OK);
        KT_CHECK_EQ(x.error, 0);
        {
            static char a[256], b[256];
            feed_types(c[i].in, strlen(c[i].in), strlen(c[i].in), 1, a, sizeof a);
            feed_types(c[i].without, strlen(c[i].without), 1, 0, b, sizeof b);
            KT_CHECK_STR(a, "S1S2LK3E2S2E2E1");
            KT_CHECK_STR(b, "S1S2E2S2E2E1");
        }
    }
}

/* Skipping in chunks of every size gives the same tokens; CDATA
 * with '<' and "]]>" cut anywhere, quotes, empty tags, nesting deeper than
 * KL_XML_MAX_DEPTH, names longer than KL_XML_MAX_NAME. */
static void test_skip_every_split(void)
{
    static char in[4096], ref[512], got[512];
    size_t i = 0, n, k;
    int d;
    i += (size_t)sprintf(in + i, "<r><s><nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn a='>' b=\"/>'\">");
    for (d = 0; d < 40; d++)
        i += (size_t)sprintf(in + i, "<d%d x='%d'>", d, d);
    i += (size_t)sprintf(in + i, "<![CDATA[ <a> ]] ]> ]]]]><e/><f a=\"'>\"/>t&amp;");
    for (d = 39; d >= 0; d--)
        i += (size_t)sprintf(in + i, "</d%d>", d);
    i += (size_t)sprintf(in + i, "</nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn><t>x</t></s><u/></r>");
    n = i;
    feed_types(in, n, n, 1, ref, sizeof ref);
    KT_CHECK_STR(ref, "S1S2LK3S3T3E3E2S2E2E1");
    for (k = 1; k < n; k++) { /* k bytes at a time */
        feed_types(in, n, k, 1, got, sizeof got);
        if (strcmp(got, ref) != 0) {
            fprintf(stderr, "skip in %zu-byte chunks: %s\n", k, got);
            KT_CHECK(0);
            break;
        }
    }
    feed_types(in, n, 1, 1, got, sizeof got);
    KT_CHECK_STR(got, ref);
}

/* Skips from inside: the element open at depth d, from any point in it,
 * including inside a CDATA section; and the root itself. */
static void test_skip_from_inside(void)
{
    const char *in = "<r><a><b><c>text<![CDATA[x<y]]]></c></b><b2/></a><k/></r>";
    size_t pos;
    int tried = 0;
    for (pos = 0;; pos++) {
        kl_xml_t x;
        kl_xml_token_t t;
        size_t off = 0, len = strlen(in), c;
        int r, tokens = 0, skipped = 0;
        char seen[128];
        size_t o = 0;
        memset(&t, 0, sizeof t);
        kl_xml_init(&x);
        /* take tokens until `pos` of them, then skip depth 2 (<a>) if open */
        while (tokens < (int)pos && (r = kl_xml_next(&x, (const uint8_t *)in + off, len - off, &c, &t)) > 0) {
            off += c;
            tokens++;
            if (t.type == KL_XML_END && t.depth == 2)
                break;
        }
        if (tokens < (int)pos || (t.type == KL_XML_END && t.depth == 2))
            break; /* <a> is over */
        if (x.depth < 2 || x.pending_end)
            continue;
        tried++;
        KT_CHECK_EQ(kl_xml_skip(&x, 2), KL_OK);
        while ((r = kl_xml_next(&x, (const uint8_t *)in + off, len - off, &c, &t)) > 0) {
            off += c;
            if (r == KL_XML_SKIP && t.empty)
                skipped++;
            else if (r != KL_XML_SKIP)
                o += (size_t)snprintf(seen + o, sizeof seen - o, "%c%d", "-SETK"[r], t.depth);
        }
        KT_CHECK_EQ(skipped, 1);
        KT_CHECK_STR(seen, "S2E2E1");
        KT_CHECK_EQ(off, len);
    }
    KT_CHECK(tried >= 8);
    /* the root: afterwards the document is done */
    {
        kl_xml_t x;
        kl_xml_token_t t;
        size_t n;
        kl_xml_init(&x);
        KT_CHECK_EQ(kl_xml_next(&x, S("<r><a>"), &n, &t), KL_XML_START);
        KT_CHECK_EQ(kl_xml_skip(&x, 1), KL_OK);
        KT_CHECK_EQ(kl_xml_next(&x, S("<a></a></r>"), &n, &t), KL_XML_SKIP);
        KT_CHECK_EQ(t.empty, 1);
        KT_CHECK_EQ(t.depth, 1);
        KT_CHECK_EQ(x.depth, 0);
        KT_CHECK_EQ(kl_xml_next(&x, S(" \n"), &n, &t), KL_XML_NEED_MORE);
        KT_CHECK_EQ(kl_xml_next(&x, S(" <r/>"), &n, &t), KL_ERR_XML_SYNTAX);
    }
    /* an inner tokenizer skips its fragment's element like any other */
    {
        kl_xml_t root, in2;
        kl_xml_token_t t;
        size_t n;
        kl_xml_init(&root);
        KT_CHECK_EQ(kl_xml_next(&root, S("<s:s xmlns:s='urn:s'>"), &n, &t), KL_XML_START);
        kl_xml_init_inner(&in2, &root);
        KT_CHECK_EQ(kl_xml_skip(&in2, 1), KL_ERR_STATE); /* the parent's, not its own */
        KT_CHECK_EQ(kl_xml_skip(&in2, 2), KL_OK);
        KT_CHECK_EQ(kl_xml_next(&in2, S("<m><x/></m> "), &n, &t), KL_XML_SKIP);
        KT_CHECK_EQ(n, 11);
        KT_CHECK_EQ(t.empty, 1);
        KT_CHECK_EQ(kl_xml_next(&in2, S(" "), &n, &t), KL_XML_NEED_MORE);
    }
}

/* 65535 open elements inside a skipped one are counted; one more is a
 * named error. */
static void test_skip_nesting_bound(void)
{
    static uint8_t in[3 * 65537 + 16];
    kl_xml_t x;
    kl_xml_token_t t;
    size_t n, i;
    for (i = 0; i < 65536; i++)
        memcpy(in + 3 * i, "<a>", 3);
    kl_xml_init(&x);
    KT_CHECK_EQ(kl_xml_next(&x, S("<r>"), &n, &t), KL_XML_START);
    KT_CHECK_EQ(kl_xml_skip(&x, 2), KL_OK);
    KT_CHECK_EQ(kl_xml_next(&x, in, 3 * 65535, &n, &t), KL_XML_SKIP);
    KT_CHECK_EQ(n, 3 * 65535);
    KT_CHECK_EQ(kl_xml_next(&x, in, 3, &n, &t), KL_ERR_XML_DEPTH);
    /* a limit error like any other: a skip of the outer element clears it */
    KT_CHECK_EQ(kl_xml_skip(&x, 2), KL_ERR_STATE); /* still in the skip */
}

int main(void)
{
    KT_RUN(test_need_more_consumes_nothing);
    KT_RUN(test_text_pieces);
    KT_RUN(test_cdata_pieces);
    KT_RUN(test_plain);
    KT_RUN(test_plain_golden);
    KT_RUN(test_empty_element_end);
    KT_RUN(test_sticky_and_reset);
    KT_RUN(test_inner);
    KT_RUN(test_attrs);
    KT_RUN(test_decode);
    KT_RUN(test_bounds);
    KT_RUN(test_writer);
    KT_RUN(test_writer_full);
    KT_RUN(test_writer_bad_input);
    KT_RUN(test_writer_edges);
    KT_RUN(test_api_edges);
    KT_RUN(test_roundtrip);
    KT_RUN(test_resume_robust);
    KT_RUN(test_resume_past_64k);
    KT_RUN(test_resume_tag_ends_before_name);
    KT_RUN(test_need_more_past_64k_keeps_flags);
    KT_RUN(test_resume_more_attrs_than_scanned);
    KT_RUN(test_value_across_64k);
    KT_RUN(test_skip_inside_cdata);
    KT_RUN(test_syntax_corners);
    KT_RUN(test_skip_api);
    KT_RUN(test_skip_limits);
    KT_RUN(test_skip_every_split);
    KT_RUN(test_skip_from_inside);
    KT_RUN(test_skip_nesting_bound);
    return kt_summary("test_xml");
}
