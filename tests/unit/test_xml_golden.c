/* Golden tests for the XML tokenizer: tests/xml/NAME.xml → tests/xml/NAME.out.
 *
 * Dump format, one line per token (text pieces merged per run, decoded):
 *   START depth qname {ns} [empty] then  name="decoded attr value" …
 *   END depth qname {ns}
 *   TEXT depth "decoded text"      (\n \r \t \\ \" escaped, other bytes < 0x20 as \xHH)
 *   CDATA is reported as TEXT too (a run may mix both).
 * then a last line: ERROR <status name>, or EOF depth N (input ran out).
 *
 * Every input is run whole, split in two at every byte, and fed one byte at
 * a time the way an engine feeds a receive buffer (keep the unconsumed
 * tail, append the next bytes); all must give the golden dump.
 * Run from the repository root. KL_GOLDEN_UPDATE=1 rewrites the .out files.
 * The golden files assume the default bounds of kl_config_defaults.h.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinglet/kl_xml.h"
#include "kt.h"

#define GOLDEN_DIR "tests/xml"

static const char *status_name(int s)
{
    switch (s) {
#define N(x) case x: return #x;
    N(KL_ERR_ARG) N(KL_ERR_STATE) N(KL_ERR_TOO_LARGE) N(KL_ERR_XML_SYNTAX)
    N(KL_ERR_XML_NAME_TOO_LONG) N(KL_ERR_XML_DEPTH) N(KL_ERR_XML_STACK) N(KL_ERR_XML_UTF8)
    N(KL_ERR_XML_ENTITY) N(KL_ERR_XML_CHARREF) N(KL_ERR_XML_COMMENT) N(KL_ERR_XML_PI)
    N(KL_ERR_XML_DTD) N(KL_ERR_XML_NAMESPACE) N(KL_ERR_XML_MISMATCH) N(KL_ERR_XML_ATTR_DUP)
    N(KL_ERR_XML_ATTR_TOO_LONG)
#undef N
    default: return "UNKNOWN";
    }
}

/* growable output string */
typedef struct {
    char *p;
    size_t len, cap;
} str_t;

static void s_add(str_t *s, const void *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->p = realloc(s->p, s->cap);
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = 0;
}

static void s_fmt(str_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_fmt(str_t *s, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    s_add(s, tmp, (size_t)n);
}

static void s_quoted(str_t *s, const uint8_t *p, size_t n)
{
    size_t i;
    s_add(s, "\"", 1);
    for (i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '\n') s_add(s, "\\n", 2);
        else if (c == '\r') s_add(s, "\\r", 2);
        else if (c == '\t') s_add(s, "\\t", 2);
        else if (c == '\\') s_add(s, "\\\\", 2);
        else if (c == '"') s_add(s, "\\\"", 2);
        else if (c < 0x20) s_fmt(s, "\\x%02X", c);
        else s_add(s, &c, 1);
    }
    s_add(s, "\"", 1);
}

typedef struct {
    kl_xml_t x;
    str_t out;
    str_t text; /* the current text run, decoded */
    int text_depth, in_text;
    int bad; /* an invariant broke; reported by the dump */
} run_t;

static void flush_text(run_t *r)
{
    if (!r->in_text)
        return;
    s_fmt(&r->out, "TEXT %d ", r->text_depth);
    s_quoted(&r->out, (const uint8_t *)(r->text.p ? r->text.p : ""), r->text.len);
    s_add(&r->out, "\n", 1);
    r->text.len = 0;
    r->in_text = 0;
}

static void dump_token(run_t *r, const kl_xml_token_t *t, size_t consumed)
{
    static uint8_t dec[8192];
    if (t->type == KL_XML_TEXT) {
        int n = kl_xml_decode(t->text, t->cdata, dec, sizeof dec);
        if (n < 0 || t->text.len == 0 || consumed == 0)
            r->bad = 1;
        if (!r->in_text) {
            r->in_text = 1;
            r->text_depth = t->depth;
        }
        if (n > 0)
            s_add(&r->text, dec, (size_t)n);
        return;
    }
    flush_text(r);
    if (t->type == KL_XML_START) {
        size_t pos = 0;
        kl_slice_t an, av;
        if (consumed == 0 || (t->empty && consumed == 0))
            r->bad = 1;
        s_fmt(&r->out, "START %d %.*s {%.*s}%s", t->depth, (int)t->name.len, (const char *)t->name.p,
              (int)t->ns.len, (const char *)t->ns.p, t->empty ? " empty" : "");
        while (kl_xml_attr_next(t->attrs, &pos, &an, &av)) {
            int n = kl_xml_decode(av, KL_XML_RAW_ATTR, dec, sizeof dec);
            s_fmt(&r->out, " %.*s=", (int)an.len, (const char *)an.p);
            if (n < 0) {
                r->bad = 1;
                n = 0;
            }
            s_quoted(&r->out, dec, (size_t)n);
        }
        s_add(&r->out, "\n", 1);
    } else {
        s_fmt(&r->out, "END %d %.*s {%.*s}\n", t->depth, (int)t->name.len, (const char *)t->name.p,
              (int)t->ns.len, (const char *)t->ns.p);
    }
}

/* Feeds in[0..n) in chunks: the first `first` bytes, then `step` bytes at a
 * time (0: all the rest at once), compacting the unconsumed tail. */
static char *run_feed(const uint8_t *in, size_t n, size_t first, size_t step)
{
    run_t *r = calloc(1, sizeof *r);
    uint8_t *buf = malloc(n + 1);
    size_t have = 0, fed = 0;
    char *res;
    kl_xml_init(&r->x);
    if (first > n)
        first = n;
    memcpy(buf, in, first);
    have = fed = first;
    for (;;) {
        size_t consumed = 0, off = 0;
        int t;
        /* drain every token in the buffer */
        for (;;) {
            kl_xml_token_t tok;
            t = kl_xml_next(&r->x, buf + off, have - off, &consumed, &tok);
            if (t <= 0)
                break;
            if (consumed > have - off || (consumed && tok.offset >= consumed))
                r->bad = 1;
            dump_token(r, &tok, consumed);
            off += consumed;
        }
        if (t < 0) {
            flush_text(r);
            s_fmt(&r->out, "ERROR %s\n", status_name(t));
            break;
        }
        /* keep the tail, append more */
        memmove(buf, buf + off, have - off);
        have -= off;
        if (fed == n) {
            flush_text(r);
            s_fmt(&r->out, "EOF depth %d\n", r->x.depth);
            break;
        }
        {
            size_t k = step ? step : n - fed;
            if (k > n - fed)
                k = n - fed;
            memcpy(buf + have, in + fed, k);
            have += k;
            fed += k;
        }
    }
    if (r->bad)
        s_add(&r->out, "INVARIANT BROKEN\n", 17);
    res = r->out.p ? r->out.p : strdup("");
    free(r->text.p);
    free(r);
    free(buf);
    return res;
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p;
    long len;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)len + 1);
    if (fread(p, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        free(p);
        return NULL;
    }
    fclose(f);
    p[len] = 0;
    *n = (size_t)len;
    return p;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_one(const char *base, int update)
{
    char path[512];
    size_t n = 0, gn = 0, k;
    uint8_t *in, *golden;
    char *whole;
    int split_bad = 0;

    snprintf(path, sizeof path, GOLDEN_DIR "/%s.xml", base);
    in = read_file(path, &n);
    KT_CHECK(in != NULL);
    if (!in)
        return;
    whole = run_feed(in, n, n, 0);
    snprintf(path, sizeof path, GOLDEN_DIR "/%s.out", base);
    if (update) {
        FILE *f = fopen(path, "wb");
        fputs(whole, f);
        fclose(f);
    }
    golden = read_file(path, &gn);
    if (!golden || strcmp((char *)golden, whole) != 0) {
        fprintf(stderr, "FAIL golden %s: got\n%s", base, whole);
        KT_CHECK(0);
    } else {
        KT_CHECK(1);
    }
    /* two slices, split at every byte */
    for (k = 0; k <= n && !split_bad; k++) {
        char *d = run_feed(in, n, k, 0);
        if (strcmp(d, whole) != 0) {
            fprintf(stderr, "FAIL split %s at %zu: got\n%s", base, k, d);
            split_bad = 1;
        }
        free(d);
    }
    KT_CHECK(!split_bad);
    /* byte by byte */
    {
        char *d = run_feed(in, n, 0, 1);
        if (strcmp(d, whole) != 0)
            fprintf(stderr, "FAIL bytewise %s: got\n%s", base, d);
        KT_CHECK(strcmp(d, whole) == 0);
        free(d);
    }
    free(whole);
    free(golden);
    free(in);
}

static void test_golden(void)
{
    DIR *d = opendir(GOLDEN_DIR);
    struct dirent *e;
    char *names[1024];
    size_t nn = 0, i;
    int update = getenv("KL_GOLDEN_UPDATE") != NULL;
    KT_CHECK(d != NULL);
    if (!d)
        return;
    while ((e = readdir(d)) && nn < 1024) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".xml") == 0) {
            names[nn] = strdup(e->d_name);
            names[nn][l - 4] = 0;
            nn++;
        }
    }
    closedir(d);
    qsort(names, nn, sizeof names[0], cmp_names);
    KT_CHECK(nn >= 40);
    for (i = 0; i < nn; i++) {
        kt_current = names[i];
        check_one(names[i], update);
        free(names[i]);
    }
}

int main(void)
{
    KT_RUN(test_golden);
    return kt_summary("test_xml_golden");
}
