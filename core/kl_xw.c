/* kinglet — bounded XML writer (API in kl_xml.h).
 *
 * Every call either appends all of its output or none of it: on failure it
 * restores len and records a sticky status, so a half-written attribute or
 * a half-escaped character can never reach the wire.
 */
#include "kinglet/kl_xml.h"

#include "kl_internal.h"
#include "kl_string.h"

static int failed(const kl_xw_t *w)
{
    return !w || w->status != KL_OK;
}

static void fail(kl_xw_t *w, size_t saved, int status)
{
    w->len = saved;
    w->status = status;
}

/* Appends n bytes; returns 0, or -1 after recording KL_ERR_WRITE_FULL. */
static int put(kl_xw_t *w, size_t saved, const void *p, size_t n)
{
    if (n > w->cap - w->len) {
        fail(w, saved, KL_ERR_WRITE_FULL);
        return -1;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

static int put_s(kl_xw_t *w, size_t saved, const char *s)
{
    return put(w, saved, s, strlen(s));
}

/* A name the writer will put between '<' and '>' unquoted: anything that
 * could end the tag or start an attribute is refused. */
static int name_ok(const char *name)
{
    const unsigned char *p = (const unsigned char *)name;
    if (!p || !*p)
        return 0;
    for (; *p; p++)
        if (*p <= 0x20 || *p == 0x7F || strchr("<>&'\"=/", *p))
            return 0;
    return 1;
}

/* Escaped copy of s[0..n). attr selects attribute rules (quotes and
 * whitespace escaped too). */
static void escaped(kl_xw_t *w, size_t saved, const uint8_t *s, size_t n, int attr)
{
    const uint8_t *p = s, *end = s + n;
    while (p < end) {
        const uint8_t *q = p;
        const char *rep;
        uint8_t c;
        /* plain printable ASCII goes out in one copy */
        while (q < end && *q >= 0x20 && *q < 0x7F && *q != '&' && *q != '<' && *q != '>' &&
               (!attr || (*q != '\'' && *q != '"')))
            q++;
        if (q > p && put(w, saved, p, (size_t)(q - p)))
            return;
        p = q;
        if (p == end)
            return;
        c = *p;
        if (c >= 0x80) {
            uint32_t cp;
            int k = kl_utf8_char(p, end, &cp); /* the tokenizer's own check */
            if (k <= 0) {
                fail(w, saved, KL_ERR_XML_UTF8);
                return;
            }
            if (put(w, saved, p, (size_t)k))
                return;
            p += k;
            continue;
        }
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '\'': rep = "&apos;"; break;
        case '"': rep = "&quot;"; break;
        case '\r': rep = "&#13;"; break; /* survives line-end normalisation */
        case '\t': rep = attr ? "&#9;" : "\t"; break;
        case '\n': rep = attr ? "&#10;" : "\n"; break;
        case 0x7F: rep = "\x7F"; break; /* DEL is an XML Char */
        default:
            fail(w, saved, KL_ERR_XML_UTF8); /* C0 control: not representable in XML 1.0 */
            return;
        }
        if (put_s(w, saved, rep))
            return;
        p++;
    }
}

/* Closes a pending start tag before content. */
static int close_tag(kl_xw_t *w, size_t saved)
{
    if (!w->tag_open)
        return 0;
    if (put(w, saved, ">", 1))
        return -1;
    w->tag_open = 0;
    return 0;
}

void kl_xw_init(kl_xw_t *w, uint8_t *buf, size_t cap)
{
    if (!w)
        return;
    w->buf = buf;
    w->cap = buf ? cap : 0;
    w->len = 0;
    w->status = KL_OK;
    w->tag_open = 0;
}

void kl_xw_start(kl_xw_t *w, const char *name)
{
    size_t saved;
    uint8_t open;
    if (failed(w))
        return;
    saved = w->len;
    open = w->tag_open;
    if (!name_ok(name)) {
        fail(w, saved, KL_ERR_ARG);
        return;
    }
    if (close_tag(w, saved) || put(w, saved, "<", 1) || put_s(w, saved, name)) {
        w->tag_open = open;
        return;
    }
    w->tag_open = 1;
}

void kl_xw_attr_n(kl_xw_t *w, const char *name, const uint8_t *value, size_t len)
{
    size_t saved;
    if (failed(w))
        return;
    saved = w->len;
    if (!name_ok(name) || (!value && len)) {
        fail(w, saved, KL_ERR_ARG);
        return;
    }
    if (!w->tag_open) {
        fail(w, saved, KL_ERR_STATE);
        return;
    }
    if (put(w, saved, " ", 1) || put_s(w, saved, name) || put(w, saved, "='", 2))
        return;
    if (len) {
        escaped(w, saved, value, len, 1);
        if (w->status)
            return;
    }
    put(w, saved, "'", 1);
}

void kl_xw_attr(kl_xw_t *w, const char *name, const char *value)
{
    if (!value) {
        if (!failed(w))
            fail(w, w->len, KL_ERR_ARG);
        return;
    }
    kl_xw_attr_n(w, name, (const uint8_t *)value, strlen(value));
}

void kl_xw_text(kl_xw_t *w, const uint8_t *text, size_t len)
{
    size_t saved;
    uint8_t open;
    if (failed(w))
        return;
    saved = w->len;
    open = w->tag_open;
    if (!text && len) {
        fail(w, saved, KL_ERR_ARG);
        return;
    }
    if (close_tag(w, saved))
        return;
    if (len)
        escaped(w, saved, text, len, 0);
    if (w->status)
        w->tag_open = open;
}

void kl_xw_raw(kl_xw_t *w, const uint8_t *bytes, size_t len)
{
    size_t saved;
    uint8_t open;
    if (failed(w))
        return;
    saved = w->len;
    open = w->tag_open;
    if (!bytes && len) {
        fail(w, saved, KL_ERR_ARG);
        return;
    }
    if (close_tag(w, saved) || (len && put(w, saved, bytes, len)))
        w->tag_open = open;
}

void kl_xw_end(kl_xw_t *w, const char *name)
{
    size_t saved;
    if (failed(w))
        return;
    saved = w->len;
    if (w->tag_open) {
        if (!put(w, saved, "/>", 2))
            w->tag_open = 0;
        return;
    }
    if (!name_ok(name)) {
        fail(w, saved, KL_ERR_ARG);
        return;
    }
    if (put(w, saved, "</", 2) || put_s(w, saved, name))
        return;
    put(w, saved, ">", 1);
}

void kl_xw_close_start(kl_xw_t *w)
{
    if (failed(w))
        return;
    close_tag(w, w->len);
}

int kl_xw_status(const kl_xw_t *w)
{
    return w ? w->status : KL_ERR_ARG;
}
