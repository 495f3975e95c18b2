/* XML tokenizer speed: kinglet vs expat vs libxml2 SAX2, same corpora, same
 * chunks, best of several repetitions.
 *
 * Corpora, generated in-process from fixed seeds:
 *  - realistic: an XMPP session (chat messages, some with entities and
 *    non-ASCII text; presences with caps; one roster result with 1000 items;
 *    pubsub events with Atom payloads), fed in 1460-byte chunks (one TCP
 *    segment each), 64-byte chunks and byte by byte;
 *  - many attributes: stanzas whose start tag is ~1.3 KB with 12 or 20
 *    attributes (a server that sends big tags);
 *  - a sweep of start-tag sizes from 100 B to nearly the receive buffer, in
 *    64-byte chunks, printed as ns per byte: flat when the cost is linear.
 * All three parsers validate UTF-8 and resolve namespaces. kinglet runs the
 * way the engine does: a KL_RX_BUF_SIZE receive buffer that gets each chunk
 * appended (as much as fits), tokens pulled until NEED_MORE, the unconsumed
 * tail moved to the front; every token is visited, every text piece and
 * attribute value decoded (a token marked plain is its own decoded form; the
 * rest go through kl_xml_decode). expat and libxml2 are the versions named
 * in the table; mk/xml.mk builds them from source with the flags kinglet is
 * built with when their sources are in third_party/ (else the system's).
 */
#define _POSIX_C_SOURCE 200809L
#include <expat.h>
#include <libxml/parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinglet/kl_xml.h"

#ifndef BENCH_LIBS
#define BENCH_LIBS "system libraries"
#endif

/* ---- corpora ------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
    size_t tag; /* big-tag corpora: average start-tag length */
} corpus_t;

static uint32_t rng;

static uint32_t rnd(uint32_t n)
{
    rng = rng * 1664525u + 1013904223u;
    return (rng >> 8) % n;
}

static void add(corpus_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(corpus_t *c, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (c->cap - c->len < 8192) {
        c->cap = c->cap ? c->cap * 2 : 1 << 20;
        c->p = realloc(c->p, c->cap);
        if (!c->p)
            exit(1);
    }
    va_start(ap, fmt);
    n = vsnprintf(c->p + c->len, c->cap - c->len, fmt, ap);
    va_end(ap);
    c->len += (size_t)n;
}

static const char *const users[] = {"juliet", "romeo", "benvolio", "mercutio", "nurse", "tybalt",
                                    "capulet", "montague", "paris", "friar.laurence"};
static const char *const words[] = {"wherefore", "art", "thou", "Romeo", "deny", "thy", "father",
                                    "and", "refuse", "name", "or", "if", "wilt", "not", "be", "but",
                                    "sworn", "my", "love", "I'll", "no", "longer", "a", "Capulet",
                                    "&amp;", "&lt;3", "café", "naïve", "Grüße", "☺", "日本語", "&quot;ok&quot;"};
static unsigned long n_msg, n_pres, n_pubsub, n_roster;

static void words_n(corpus_t *c, int n)
{
    int i;
    for (i = 0; i < n; i++)
        add(c, "%s%s", i ? " " : "", words[rnd(sizeof words / sizeof words[0])]);
}

static void stream_open(corpus_t *c)
{
    add(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' from='capulet.example' id='s1' "
           "version='1.0' xml:lang='en'>\n");
}

static void gen_message(corpus_t *c)
{
    add(c, "<message from='%s@capulet.example/balcony' to='%s@montague.example' type='chat' id='m%lu' "
           "xml:lang='en'><body>",
        users[rnd(10)], users[rnd(10)], n_msg);
    words_n(c, 4 + (int)rnd(40));
    add(c, "</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
           "<request xmlns='urn:xmpp:receipts'/><stanza-id xmlns='urn:xmpp:sid:0' by='capulet.example' "
           "id='%08x-%04x'/></message>\n",
        rnd(0xFFFFFFFu), rnd(0xFFFF));
    n_msg++;
}

static void gen_presence(corpus_t *c)
{
    add(c, "<presence from='%s@montague.example/phone%u' to='juliet@capulet.example'>"
           "<show>%s</show><status>",
        users[rnd(10)], rnd(9), rnd(2) ? "away" : "chat");
    words_n(c, 1 + (int)rnd(6));
    add(c, "</status><priority>%u</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' "
           "node='https://conversations.im' ver='%08xQgayPKawpkPSDYmwT/WM94u='/>"
           "<x xmlns='vcard-temp:x:update'><photo>%08x%08x%08x%08x%08x</photo></x></presence>\n",
        rnd(50), rnd(0xFFFFFFFu), rnd(0xFFFFFFFu), rnd(0xFFFFFFFu), rnd(0xFFFFFFFu), rnd(0xFFFFFFFu),
        rnd(0xFFFFFFFu));
    n_pres++;
}

static void gen_roster(corpus_t *c, int items)
{
    int i;
    add(c, "<iq type='result' id='roster1' to='juliet@capulet.example/balcony'>"
           "<query xmlns='jabber:iq:roster' ver='ver%u'>\n",
        rnd(1000));
    for (i = 0; i < items; i++) {
        add(c, "<item jid='%s%d@%s.example' name='%s %d' subscription='%s'>", users[rnd(10)], i,
            rnd(2) ? "montague" : "verona", users[rnd(10)], i, rnd(3) ? "both" : "to");
        if (rnd(2))
            add(c, "<group>Friends &amp; Family</group>");
        add(c, "<group>Verona</group></item>\n");
        n_roster++;
    }
    add(c, "</query></iq>\n");
}

static void gen_pubsub(corpus_t *c)
{
    int i, n = 1 + (int)rnd(3);
    add(c, "<message from='pubsub.capulet.example' to='juliet@capulet.example' id='ps%lu'>"
           "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:microblog:0'>",
        n_pubsub);
    for (i = 0; i < n; i++) {
        add(c, "<item id='%08x'><entry xmlns='http://www.w3.org/2005/Atom' "
               "xmlns:thr='http://purl.org/syndication/thread/1.0'><title type='text'>",
            rnd(0xFFFFFFFu));
        words_n(c, 3 + (int)rnd(8));
        add(c, "</title><content type='html'>&lt;p&gt;");
        words_n(c, 30 + (int)rnd(120));
        add(c, "&lt;/p&gt;</content><published>2024-05-%02uT12:%02u:00Z</published>"
               "<thr:in-reply-to ref='urn:uuid:%08x' type='text/html'/>"
               "<link rel='alternate' href='https://blog.example/%u?a=1&amp;b=2'/></entry></item>",
            1 + rnd(28), rnd(60), rnd(0xFFFFFFFu), rnd(100000));
    }
    add(c, "</items></event></message>\n");
    n_pubsub++;
}

static void gen_realistic(corpus_t *c, size_t target)
{
    rng = 0x12345678u;
    stream_open(c);
    gen_roster(c, 1000);
    while (c->len < target) {
        uint32_t k = rnd(10);
        if (k < 5)
            gen_message(c);
        else if (k < 8)
            gen_presence(c);
        else
            gen_pubsub(c);
    }
    add(c, "</stream:stream>");
}

/* Stanzas with one start tag of about tag_bytes bytes holding `attrs`
 * attributes (words, some with references or non-ASCII), a short
 * body, until the stream holds target bytes. */
static void gen_big_tags(corpus_t *c, size_t target, int attrs, size_t tag_bytes)
{
    size_t tags = 0, tag_total = 0;
    rng = 0x9e3779b9u ^ (uint32_t)tag_bytes ^ (uint32_t)attrs << 20;
    stream_open(c);
    while (c->len < target) {
        size_t start = c->len, per;
        int i;
        add(c, "<message from='%s@capulet.example/balcony' to='%s@montague.example' type='chat'",
            users[rnd(10)], users[rnd(10)]);
        per = tag_bytes > c->len - start + 2 ? (tag_bytes - (c->len - start) - 2) / (size_t)attrs : 0;
        for (i = 0; i < attrs; i++) {
            size_t before = c->len, want = before + per;
            add(c, " %s-%d=\"", i % 3 == 0 ? "x-meta" : i % 3 == 1 ? "data" : "attr", i);
            while (c->len + 1 < want) {
                const char *w = words[rnd(sizeof words / sizeof words[0])];
                if (c->len + strlen(w) + 2 >= want)
                    w = "z";
                add(c, "%s%s", c->len > before + 12 ? " " : "", w);
            }
            add(c, "\"");
        }
        add(c, ">");
        tag_total += c->len - start;
        tags++;
        add(c, "<body>hi</body></message>\n");
    }
    add(c, "</stream:stream>");
    c->tag = tag_total / tags;
}

/* ---- timing ------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static unsigned long n_start, n_text_bytes, n_attr_bytes;

/* ---- kinglet ------------------------------------------------------------ */

static int run_kinglet(const corpus_t *c, size_t chunk)
{
    static kl_xml_t x;
    static uint8_t rx[KL_RX_BUF_SIZE], scratch[KL_RX_BUF_SIZE];
    size_t have = 0, fed = 0;
    kl_xml_init(&x);
    for (;;) {
        size_t off = 0, n;
        kl_xml_token_t t;
        int r;
        /* append the next chunk, as much as fits */
        if (fed < c->len) {
            size_t k = c->len - fed;
            if (k > chunk)
                k = chunk;
            if (k > sizeof rx - have)
                k = sizeof rx - have;
            memcpy(rx + have, c->p + fed, k);
            have += k;
            fed += k;
        }
        while ((r = kl_xml_next(&x, rx + off, have - off, &n, &t)) > 0) {
            off += n;
            /* t.plain: the raw slice is the decoded value (what an engine
             * uses as is); anything else goes through kl_xml_decode */
            if (r == KL_XML_START) {
                size_t pos = 0;
                kl_slice_t an, av;
                n_start++;
                while (kl_xml_attr_next(t.attrs, &pos, &an, &av)) {
                    int k = t.plain ? (int)av.len : kl_xml_decode(av, KL_XML_RAW_ATTR, scratch, sizeof scratch);
                    if (k < 0)
                        return -1;
                    n_attr_bytes += (unsigned long)k;
                }
            } else if (r == KL_XML_TEXT) {
                int k = t.plain ? (int)t.text.len : kl_xml_decode(t.text, t.cdata, scratch, sizeof scratch);
                if (k < 0)
                    return -1;
                n_text_bytes += (unsigned long)k;
            }
        }
        if (r < 0) {
            fprintf(stderr, "kinglet: %s\n", kl_strerror(r));
            return -1;
        }
        if (off) { /* the engine compacts only when something was consumed */
            memmove(rx, rx + off, have - off);
            have -= off;
        }
        if (fed == c->len)
            return x.depth == 0 ? 0 : -1;
        if (have == sizeof rx) {
            fprintf(stderr, "kinglet: a token does not fit the receive buffer\n");
            return -1;
        }
    }
}

/* ---- expat -------------------------------------------------------------- */

static void XMLCALL ex_start(void *u, const XML_Char *name, const XML_Char **atts)
{
    (void)u;
    (void)name;
    (void)atts;
    n_start++;
}

static void XMLCALL ex_end(void *u, const XML_Char *name)
{
    (void)u;
    (void)name;
}

static void XMLCALL ex_text(void *u, const XML_Char *s, int len)
{
    (void)u;
    (void)s;
    n_text_bytes += (unsigned long)len;
}

static int run_expat(const corpus_t *c, size_t chunk)
{
    XML_Parser p = XML_ParserCreateNS(NULL, ' ');
    size_t fed = 0;
    int ok = 1;
    XML_SetElementHandler(p, ex_start, ex_end);
    XML_SetCharacterDataHandler(p, ex_text);
    while (ok && fed < c->len) {
        size_t k = c->len - fed > chunk ? chunk : c->len - fed;
        ok = XML_Parse(p, c->p + fed, (int)k, fed + k == c->len) == XML_STATUS_OK;
        fed += k;
    }
    if (!ok)
        fprintf(stderr, "expat: %s\n", XML_ErrorString(XML_GetErrorCode(p)));
    XML_ParserFree(p);
    return ok ? 0 : -1;
}

/* ---- libxml2 ------------------------------------------------------------ */

static void lx_start(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
                     int nb_ns, const xmlChar **ns, int nb_attr, int nb_def, const xmlChar **attrs)
{
    (void)ctx, (void)local, (void)prefix, (void)uri, (void)nb_ns, (void)ns, (void)nb_attr,
        (void)nb_def, (void)attrs;
    n_start++;
}

static void lx_end(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri)
{
    (void)ctx, (void)local, (void)prefix, (void)uri;
}

static void lx_text(void *ctx, const xmlChar *s, int len)
{
    (void)ctx, (void)s;
    n_text_bytes += (unsigned long)len;
}

static int run_libxml2(const corpus_t *c, size_t chunk)
{
    xmlSAXHandler sax;
    xmlParserCtxtPtr ctx;
    size_t fed = 0;
    int ok = 1;
    memset(&sax, 0, sizeof sax);
    sax.initialized = XML_SAX2_MAGIC;
    sax.startElementNs = lx_start;
    sax.endElementNs = lx_end;
    sax.characters = lx_text;
    ctx = xmlCreatePushParserCtxt(&sax, NULL, NULL, 0, NULL);
    xmlCtxtUseOptions(ctx, XML_PARSE_NONET | XML_PARSE_HUGE);
    while (ok && fed < c->len) {
        size_t k = c->len - fed > chunk ? chunk : c->len - fed;
        ok = xmlParseChunk(ctx, c->p + fed, (int)k, fed + k == c->len) == 0;
        fed += k;
    }
    if (!ok || !ctx->wellFormed) {
        fprintf(stderr, "libxml2: not well-formed\n");
        ok = 0;
    }
    xmlFreeParserCtxt(ctx);
    return ok ? 0 : -1;
}

/* ---- main --------------------------------------------------------------- */

typedef int (*runner_t)(const corpus_t *, size_t);
static const runner_t runners[3] = {run_kinglet, run_expat, run_libxml2};
static const char *const runner_names[3] = {"kinglet", "expat", "libxml2"};

/* Best seconds of `reps` runs of each parser, taken in turns (kinglet,
 * expat, libxml2, kinglet, ...) so a busy moment on a shared machine hits
 * all three alike; the element counts must agree. */
static void measure(const corpus_t *c, size_t chunk, int reps, double secs[3])
{
    unsigned long starts[3];
    int k, i;
    for (k = 0; k < 3; k++)
        secs[k] = 1e30;
    for (i = 0; i < reps; i++) {
        for (k = 0; k < 3; k++) {
            double t0, dt;
            n_start = n_text_bytes = 0;
            t0 = now();
            if (runners[k](c, chunk) != 0) {
                fprintf(stderr, "bench-xml: %s failed\n", runner_names[k]);
                exit(1);
            }
            dt = now() - t0;
            if (dt < secs[k])
                secs[k] = dt;
            starts[k] = n_start;
        }
    }
    if (starts[0] != starts[1] || starts[0] != starts[2]) {
        fprintf(stderr, "bench-xml: element counts differ: kinglet %lu expat %lu libxml2 %lu\n", starts[0],
                starts[1], starts[2]);
        exit(1);
    }
}

static void row_mbps(const char *label, const corpus_t *c, size_t chunk, int reps)
{
    double s[3];
    measure(c, chunk, reps, s);
    printf("  %-24s %9.1f %9.1f %9.1f %11.2fx %9.2fx\n", label, c->len / s[0] / 1e6, c->len / s[1] / 1e6,
           c->len / s[2] / 1e6, s[2] / s[0], s[1] / s[0]);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const size_t sweep[] = {100, 200, 400, 800, 1600, KL_RX_BUF_SIZE - 200};
    enum { NSWEEP = sizeof sweep / sizeof sweep[0] };
    corpus_t real = {0}, big12 = {0}, big20 = {0}, sw[NSWEEP];
    double ns[3][NSWEEP];
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0, reps = quick ? 2 : 7, i, k;

    LIBXML_TEST_VERSION
    gen_realistic(&real, quick ? 1u << 20 : 4u << 20);
    gen_big_tags(&big12, 2u << 20, 12, 1300);
    gen_big_tags(&big20, 2u << 20, 20, 1300);
    memset(sw, 0, sizeof sw);
    for (i = 0; i < NSWEEP; i++)
        gen_big_tags(&sw[i], 1u << 20, sweep[i] < 360 ? 3 : sweep[i] > 2400 ? 20 : (int)(sweep[i] / 120), sweep[i]);

    printf("bench-xml: kinglet vs expat %d.%d.%d and libxml2 %s (%s), MB/s, best of %d\n", XML_MAJOR_VERSION,
           XML_MINOR_VERSION, XML_MICRO_VERSION, LIBXML_DOTTED_VERSION, BENCH_LIBS, reps);
    printf("realistic XMPP stream: %.2f MB (%lu messages, %lu presences, %lu pubsub events, roster of %lu)\n",
           real.len / 1e6, n_msg, n_pres, n_pubsub, n_roster);
    printf("  %-24s %9s %9s %9s %12s %10s\n", "chunks", "kinglet", "expat", "libxml2", "k/libxml2", "k/expat");
    row_mbps("1460 B", &real, 1460, reps);
    row_mbps("64 B", &real, 64, reps);
    row_mbps("1 B", &real, 1, reps > 3 ? 3 : reps);
    printf("stanzas with one big start tag (%zu B with 12 attributes, %zu B with 20): %.2f MB each\n", big12.tag,
           big20.tag, big12.len / 1e6);
    row_mbps("12 attributes, 1460 B", &big12, 1460, reps);
    row_mbps("12 attributes, 64 B", &big12, 64, reps);
    row_mbps("20 attributes, 1460 B", &big20, 1460, reps);
    row_mbps("20 attributes, 64 B", &big20, 64, reps);
    row_mbps("20 attributes, 1 B", &big20, 1, reps > 3 ? 3 : reps);

    for (i = 0; i < NSWEEP; i++) {
        double s[3];
        measure(&sw[i], 64, reps, s);
        for (k = 0; k < 3; k++)
            ns[k][i] = s[k] / (double)sw[i].len * 1e9;
    }
    printf("start tag size sweep, 64-byte chunks: ns per byte (flat = linear in the tag)\n");
    printf("  %-24s", "start tag bytes");
    for (i = 0; i < NSWEEP; i++)
        printf(" %7zu", sw[i].tag);
    printf("\n");
    for (k = 0; k < 3; k++) {
        printf("  %-24s", runner_names[k]);
        for (i = 0; i < NSWEEP; i++)
            printf(" %7.2f", ns[k][i]);
        printf("\n");
    }
    return 0;
}
