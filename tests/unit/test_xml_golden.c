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
 *
 * Inputs named skip_*.xml exercise kl_xml_skip(): after a limit error the
 * failed element is skipped (kl_xml_skip(x, depth + 1)) and the run goes
 * on; an element named x-skip is skipped right after its START, and one
 * named x-skip-parent skips its parent from inside. The dump shows
 *   LIMIT <status name>   (the limit error that started a skip)
 *   SKIP depth            (the skipped element's end: tok.empty == 1)
 * and each such run must also equal the run of the same input with the
 * skipped elements' bytes cut out, once the lines from each skipped
 * element's START (or LIMIT) to its SKIP are dropped.
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
    N(KL_ERR_XML_ATTR_TOO_LONG) N(KL_ERR_XML_ATTRS)
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
    /* skip mode */
    int skip_mode, skipping;
    size_t pos;                  /* input offset of the next unconsumed byte */
    size_t start_at[256];        /* input offset of each open element's '<' */
    size_t start_line[256];      /* out.len before each open element's START line */
    size_t cut_from, cut_line;   /* the element being skipped: its '<', its first line */
    size_t cuts[64][2], ncuts;   /* input ranges skipped (whole runs only) */
    size_t drop[64][2], ndrop;   /* dump ranges of skipped elements */
} run_t;

static int is_limit(int r)
{
    return r == KL_ERR_XML_DEPTH || r == KL_ERR_XML_STACK || r == KL_ERR_XML_NAME_TOO_LONG ||
           r == KL_ERR_XML_ATTR_TOO_LONG || r == KL_ERR_XML_ATTRS;
}

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
    if (t->type == KL_XML_SKIP) {
        if (consumed == 0 || t->depth != r->x.depth + 1)
            r->bad = 1;
        if (t->empty) {
            flush_text(r);
            s_fmt(&r->out, "SKIP %d\n", t->depth);
            r->skipping = 0;
            if (r->ncuts < 64) {
                r->cuts[r->ncuts][0] = r->cut_from;
                r->cuts[r->ncuts++][1] = r->pos + consumed;
            }
            if (r->ndrop < 64) {
                r->drop[r->ndrop][0] = r->cut_line;
                r->drop[r->ndrop++][1] = r->out.len;
            }
        }
        return;
    }
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
        r->start_at[t->depth] = r->pos + t->offset;
        r->start_line[t->depth] = r->out.len;
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

/* After a START in skip mode: skip what the element's name asks for. */
static void skip_policy(run_t *r, const kl_xml_token_t *t)
{
    unsigned d;
    if (kl_slice_eq(t->local, "x-skip"))
        d = t->depth;
    else if (kl_slice_eq(t->local, "x-skip-parent"))
        d = t->depth - 1u;
    else
        return;
    if (t->empty) { /* its END is owed: refused, and nothing changes */
        if (kl_xml_skip(&r->x, d) != KL_ERR_STATE)
            r->bad = 1;
        return;
    }
    if (kl_xml_skip(&r->x, d) != KL_OK) {
        r->bad = 1;
        return;
    }
    r->skipping = 1;
    r->cut_from = r->start_at[d];
    r->cut_line = r->start_line[d];
}

/* Feeds in[0..n) in chunks: the first `first` bytes, then `step` bytes at a
 * time (0: all the rest at once), compacting the unconsumed tail. */
static run_t *run_feed_r(const uint8_t *in, size_t n, size_t first, size_t step, int skip_mode)
{
    run_t *r = calloc(1, sizeof *r);
    uint8_t *buf = malloc(n + 1);
    size_t have = 0, fed = 0;
    kl_xml_init(&r->x);
    r->skip_mode = skip_mode;
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
            if (t < 0 && r->skip_mode && is_limit(t) && !r->skipping) {
                /* the failed tag consumed nothing: skip it from its '<' */
                flush_text(r);
                r->cut_line = r->out.len;
                r->cut_from = r->pos;
                s_fmt(&r->out, "LIMIT %s\n", status_name(t));
                if (kl_xml_skip(&r->x, r->x.depth + 1u) != KL_OK) {
                    r->bad = 1;
                    break;
                }
                r->skipping = 1;
                continue;
            }
            if (t <= 0)
                break;
            if (consumed > have - off || (consumed && tok.offset >= consumed))
                r->bad = 1;
            if (t == KL_XML_SKIP && !tok.empty && consumed != have - off)
                r->bad = 1; /* a skip consumes all it is given */
            dump_token(r, &tok, consumed);
            off += consumed;
            r->pos += consumed;
            if (t == KL_XML_START && r->skip_mode)
                skip_policy(r, &tok);
        }
        if (t == 0 && r->skipping && off < have)
            r->bad = 1; /* NEED_MORE with bytes left while skipping */
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
    if (!r->out.p)
        s_add(&r->out, "", 0);
    free(r->text.p);
    free(buf);
    return r;
}

static char *run_feed_mode(const uint8_t *in, size_t n, size_t first, size_t step, int skip_mode)
{
    run_t *r = run_feed_r(in, n, first, step, skip_mode);
    char *res = r->out.p;
    free(r);
    return res;
}

/* Adjacent TEXT lines of one depth as one (text on both sides of a cut
 * element is one run without it). */
static char *merge_text(const char *d)
{
    str_t o = {0};
    const char *line = d, *prev = NULL;
    size_t prev_pfx = 0;
    while (*line) {
        const char *nl = strchr(line, '\n'), *q = strchr(line, '"');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        if (strncmp(line, "TEXT ", 5) == 0 && q && prev && (size_t)(q - line) == prev_pfx &&
            strncmp(line, prev, prev_pfx) == 0) {
            o.len -= 2; /* the closing quote and newline of the line before */
            s_add(&o, q + 1, len - (size_t)(q + 1 - line));
        } else {
            prev = line;
            prev_pfx = strncmp(line, "TEXT ", 5) == 0 && q ? (size_t)(q - line) : 0;
            if (!prev_pfx)
                prev = NULL;
            s_add(&o, line, len);
        }
        line += len;
    }
    if (!o.p)
        s_add(&o, "", 0);
    return o.p;
}

/* A skip run equals the run of the input without the skipped bytes, once
 * the skipped elements' lines are dropped from it. */
static int skip_equivalent(const char *base, const uint8_t *in, size_t n)
{
    run_t *r = run_feed_r(in, n, n, 0, 1);
    uint8_t *cut = malloc(n + 1);
    str_t want = {0};
    size_t i, k = 0, at = 0;
    char *got;
    int ok;
    for (i = 0; i < r->ncuts; i++) { /* in input order, disjoint */
        memcpy(cut + k, in + at, r->cuts[i][0] - at);
        k += r->cuts[i][0] - at;
        at = r->cuts[i][1];
    }
    memcpy(cut + k, in + at, n - at);
    k += n - at;
    at = 0;
    for (i = 0; i < r->ndrop; i++) {
        s_add(&want, r->out.p + at, r->drop[i][0] - at);
        at = r->drop[i][1];
    }
    s_add(&want, r->out.p + at, r->out.len - at);
    got = run_feed_mode(cut, k, k, 0, 1);
    {
        char *g = merge_text(got), *w = merge_text(want.p ? want.p : "");
        ok = r->ncuts > 0 && strcmp(g, w) == 0;
        free(g);
        free(w);
    }
    if (!ok)
        fprintf(stderr, "FAIL skip equivalence %s: %zu cuts; without the skipped bytes got\n%swanted\n%s", base,
                r->ncuts, got, want.p);
    free(got);
    free(want.p);
    free(r->out.p);
    free(r);
    free(cut);
    return ok;
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
    int split_bad = 0, skip;

    snprintf(path, sizeof path, GOLDEN_DIR "/%s.xml", base);
    in = read_file(path, &n);
    KT_CHECK(in != NULL);
    if (!in)
        return;
    skip = strncmp(base, "skip_", 5) == 0;
    whole = run_feed_mode(in, n, n, 0, skip);
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
        char *d = run_feed_mode(in, n, k, 0, skip);
        if (strcmp(d, whole) != 0) {
            fprintf(stderr, "FAIL split %s at %zu: got\n%s", base, k, d);
            split_bad = 1;
        }
        free(d);
    }
    KT_CHECK(!split_bad);
    /* byte by byte */
    {
        char *d = run_feed_mode(in, n, 0, 1, skip);
        if (strcmp(d, whole) != 0)
            fprintf(stderr, "FAIL bytewise %s: got\n%s", base, d);
        KT_CHECK(strcmp(d, whole) == 0);
        free(d);
    }
    if (skip && !strstr(whole, "ERROR ")) /* a skip that ended */
        KT_CHECK(skip_equivalent(base, in, n));
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
