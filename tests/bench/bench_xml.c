/* XML tokenizer speed: kinglet vs expat vs libxml2 SAX2, same corpus, same
 * 1460-byte chunks (one TCP segment each), best of several repetitions.
 *
 * The corpus is an XMPP session generated in-process from a fixed seed:
 * chat messages (some with entities and non-ASCII text), presences with
 * caps, one roster result with 1000 items, pubsub events with Atom
 * payloads. All three parsers validate UTF-8 and resolve namespaces.
 * kinglet runs the way the engine does: a KL_RX_BUF_SIZE receive buffer
 * that gets each segment appended (as much as fits), tokens pulled until
 * NEED_MORE, the unconsumed tail moved to the front; every token is
 * visited, every text piece and attribute value decoded (a token marked
 * plain is its own decoded form; the rest go through kl_xml_decode).
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

#define CHUNK 1460
#define REPS 7
#define TARGET_BYTES (4u << 20)

/* ---- corpus ------------------------------------------------------------- */

static char *corpus;
static size_t corpus_len, corpus_cap;
static unsigned long n_msg, n_pres, n_pubsub, n_roster;
static uint32_t rng = 0x12345678u;

static uint32_t rnd(uint32_t n)
{
    rng = rng * 1664525u + 1013904223u;
    return (rng >> 8) % n;
}

static void add(const char *fmt, ...)
{
    va_list ap;
    int n;
    if (corpus_cap - corpus_len < 4096) {
        corpus_cap = corpus_cap ? corpus_cap * 2 : 1 << 20;
        corpus = realloc(corpus, corpus_cap);
    }
    va_start(ap, fmt);
    n = vsnprintf(corpus + corpus_len, corpus_cap - corpus_len, fmt, ap);
    va_end(ap);
    corpus_len += (size_t)n;
}

static const char *const users[] = {"juliet", "romeo", "benvolio", "mercutio", "nurse", "tybalt",
                                    "capulet", "montague", "paris", "friar.laurence"};
static const char *const words[] = {"wherefore", "art", "thou", "Romeo", "deny", "thy", "father",
                                    "and", "refuse", "name", "or", "if", "wilt", "not", "be", "but",
                                    "sworn", "my", "love", "I'll", "no", "longer", "a", "Capulet",
                                    "&amp;", "&lt;3", "café", "naïve", "Grüße", "☺", "日本語", "&quot;ok&quot;"};

static void words_n(int n)
{
    int i;
    for (i = 0; i < n; i++)
        add("%s%s", i ? " " : "", words[rnd(sizeof words / sizeof words[0])]);
}

static void gen_message(void)
{
    add("<message from='%s@capulet.example/balcony' to='%s@montague.example' type='chat' id='m%lu' "
        "xml:lang='en'><body>",
        users[rnd(10)], users[rnd(10)], n_msg);
    words_n(4 + (int)rnd(40));
    add("</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
        "<request xmlns='urn:xmpp:receipts'/><stanza-id xmlns='urn:xmpp:sid:0' by='capulet.example' "
        "id='%08x-%04x'/></message>\n",
        rnd(0xFFFFFFFu), rnd(0xFFFF));
    n_msg++;
}

static void gen_presence(void)
{
    add("<presence from='%s@montague.example/phone%u' to='juliet@capulet.example'>"
        "<show>%s</show><status>",
        users[rnd(10)], rnd(9), rnd(2) ? "away" : "chat");
    words_n(1 + (int)rnd(6));
    add("</status><priority>%u</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' "
        "node='https://conversations.im' ver='%08xQgayPKawpkPSDYmwT/WM94u='/>"
        "<x xmlns='vcard-temp:x:update'><photo>%08x%08x%08x%08x%08x</photo></x></presence>\n",
        rnd(50), rnd(0xFFFFFFFu), rnd(0xFFFFFFFu), rnd(0xFFFFFFFu), rnd(0xFFFFFFFu), rnd(0xFFFFFFFu),
        rnd(0xFFFFFFFu));
    n_pres++;
}

static void gen_roster(int items)
{
    int i;
    add("<iq type='result' id='roster1' to='juliet@capulet.example/balcony'>"
        "<query xmlns='jabber:iq:roster' ver='ver%u'>\n",
        rnd(1000));
    for (i = 0; i < items; i++) {
        add("<item jid='%s%d@%s.example' name='%s %d' subscription='%s'>", users[rnd(10)], i,
            rnd(2) ? "montague" : "verona", users[rnd(10)], i, rnd(3) ? "both" : "to");
        if (rnd(2))
            add("<group>Friends &amp; Family</group>");
        add("<group>Verona</group></item>\n");
        n_roster++;
    }
    add("</query></iq>\n");
}

static void gen_pubsub(void)
{
    int i, n = 1 + (int)rnd(3);
    add("<message from='pubsub.capulet.example' to='juliet@capulet.example' id='ps%lu'>"
        "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:microblog:0'>",
        n_pubsub);
    for (i = 0; i < n; i++) {
        add("<item id='%08x'><entry xmlns='http://www.w3.org/2005/Atom' "
            "xmlns:thr='http://purl.org/syndication/thread/1.0'><title type='text'>",
            rnd(0xFFFFFFFu));
        words_n(3 + (int)rnd(8));
        add("</title><content type='html'>&lt;p&gt;");
        words_n(30 + (int)rnd(120));
        add("&lt;/p&gt;</content><published>2024-05-%02uT12:%02u:00Z</published>"
            "<thr:in-reply-to ref='urn:uuid:%08x' type='text/html'/>"
            "<link rel='alternate' href='https://blog.example/%u?a=1&amp;b=2'/></entry></item>",
            1 + rnd(28), rnd(60), rnd(0xFFFFFFFu), rnd(100000));
    }
    add("</items></event></message>\n");
    n_pubsub++;
}

static void gen_corpus(void)
{
    add("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' from='capulet.example' id='s1' "
        "version='1.0' xml:lang='en'>\n");
    gen_roster(1000);
    while (corpus_len < TARGET_BYTES) {
        uint32_t k = rnd(10);
        if (k < 5)
            gen_message();
        else if (k < 8)
            gen_presence();
        else
            gen_pubsub();
    }
    add("</stream:stream>");
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

static int run_kinglet(void)
{
    static kl_xml_t x;
    static uint8_t rx[KL_RX_BUF_SIZE], scratch[KL_RX_BUF_SIZE];
    size_t have = 0, fed = 0;
    kl_xml_init(&x);
    for (;;) {
        size_t off = 0, c;
        kl_xml_token_t t;
        int r;
        /* append the next segment, as much as fits */
        if (fed < corpus_len) {
            size_t k = corpus_len - fed;
            if (k > CHUNK)
                k = CHUNK;
            if (k > sizeof rx - have)
                k = sizeof rx - have;
            memcpy(rx + have, corpus + fed, k);
            have += k;
            fed += k;
        }
        while ((r = kl_xml_next(&x, rx + off, have - off, &c, &t)) > 0) {
            off += c;
            /* t.plain: the raw slice is the decoded value (what an engine
             * uses as is); anything else goes through kl_xml_decode */
            if (r == KL_XML_START) {
                size_t pos = 0;
                kl_slice_t an, av;
                n_start++;
                while (kl_xml_attr_next(t.attrs, &pos, &an, &av)) {
                    int n = t.plain ? (int)av.len : kl_xml_decode(av, KL_XML_RAW_ATTR, scratch, sizeof scratch);
                    if (n < 0)
                        return -1;
                    n_attr_bytes += (unsigned long)n;
                }
            } else if (r == KL_XML_TEXT) {
                int n = t.plain ? (int)t.text.len : kl_xml_decode(t.text, t.cdata, scratch, sizeof scratch);
                if (n < 0)
                    return -1;
                n_text_bytes += (unsigned long)n;
            }
        }
        if (r < 0) {
            fprintf(stderr, "kinglet: %s\n", kl_strerror(r));
            return -1;
        }
        memmove(rx, rx + off, have - off);
        have -= off;
        if (fed == corpus_len)
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

static int run_expat(void)
{
    XML_Parser p = XML_ParserCreateNS(NULL, ' ');
    size_t fed = 0;
    int ok = 1;
    XML_SetElementHandler(p, ex_start, ex_end);
    XML_SetCharacterDataHandler(p, ex_text);
    while (ok && fed < corpus_len) {
        size_t k = corpus_len - fed > CHUNK ? CHUNK : corpus_len - fed;
        ok = XML_Parse(p, corpus + fed, (int)k, fed + k == corpus_len) == XML_STATUS_OK;
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

static int run_libxml2(void)
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
    xmlCtxtUseOptions(ctx, XML_PARSE_NONET);
    while (ok && fed < corpus_len) {
        size_t k = corpus_len - fed > CHUNK ? CHUNK : corpus_len - fed;
        ok = xmlParseChunk(ctx, corpus + fed, (int)k, fed + k == corpus_len) == 0;
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

static double best_mbps(const char *name, int (*fn)(void), unsigned long *starts)
{
    double best = 0;
    int i;
    for (i = 0; i < REPS; i++) {
        double t0, dt;
        n_start = n_text_bytes = 0;
        t0 = now();
        if (fn() != 0) {
            fprintf(stderr, "bench-xml: %s failed\n", name);
            exit(1);
        }
        dt = now() - t0;
        if (corpus_len / dt / 1e6 > best)
            best = (double)corpus_len / dt / 1e6;
    }
    *starts = n_start;
    return best;
}

int main(void)
{
    double k, e, l;
    unsigned long sk, se, sl;
    gen_corpus();
    LIBXML_TEST_VERSION
    k = best_mbps("kinglet", run_kinglet, &sk);
    e = best_mbps("expat", run_expat, &se);
    l = best_mbps("libxml2", run_libxml2, &sl);
    if (sk != se || sk != sl) {
        fprintf(stderr, "bench-xml: element counts differ: kinglet %lu expat %lu libxml2 %lu\n", sk, se, sl);
        return 1;
    }
    printf("bench-xml: %.2f MB XMPP stream (%lu messages, %lu presences, %lu pubsub events, "
           "roster of %lu), %lu elements, %d-byte chunks, best of %d\n",
           corpus_len / 1e6, n_msg, n_pres, n_pubsub, n_roster, sk, CHUNK, REPS);
    printf("  %-30s %8s\n", "parser", "MB/s");
    printf("  %-30s %8.1f\n", "kinglet kl_xml (rx buf 3072)", k);
    printf("  %-30s %8.1f\n", "expat", e);
    printf("  %-30s %8.1f\n", "libxml2 SAX2 push " LIBXML_DOTTED_VERSION, l);
    printf("  kinglet / libxml2: %.2fx   kinglet / expat: %.2fx\n", k / l, k / e);
    return 0;
}
