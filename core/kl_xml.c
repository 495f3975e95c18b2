/* kinglet — pull XML tokenizer (API and semantics in kl_xml.h).
 *
 * One call returns one token. Tags are parsed whole from the '<' each time
 * (NEED_MORE keeps nothing), so the only state carried between calls is the
 * element/namespace stack, the CDATA flag and two counters: no pointer and
 * no offset into the caller's input survives a call.
 */
#include "kinglet/kl_xml.h"

#include "kl_string.h"

/* Internal "need more bytes" result; never returned to the caller. */
#define MORE 100

/* Word-at-a-time scans of text and attribute values: fast on a host,
 * ~0.5 KB of code a small image built for size (-Os) does without. */
#ifndef KL_XML_WORDSCAN
#ifdef __OPTIMIZE_SIZE__
#define KL_XML_WORDSCAN 0
#else
#define KL_XML_WORDSCAN 1
#endif
#endif

/* flags */
#define F_DECL 0x1u  /* XML declaration no longer allowed */
#define F_ROOT 0x2u  /* the root (or the inner fragment's element) has started */
#define F_CDATA 0x4u /* inside a CDATA section */

/* Frame header layout (see kl_xml_t). */
#define FH_NAME 0
#define FH_PREFIX 1
#define FH_NSOFF 2
#define FH_NSLEN 4
#define FH_NDECL 6
#define FH_SIZE 7
#define NS_XML_OFF 0xFFFFu /* resolved to the predefined xml namespace */

/* Longest character reference accepted, "&#" to ';' (room for leading zeros). */
#define REF_MAX 16

/* Character classes, one bit per question the scanners ask. */
#define C_TXT 0x01  /* stops a text scan: < & > CR, forbidden controls, non-ASCII */
#define C_ATT 0x02  /* stops an attribute value scan: < & ' ", controls (TAB LF CR too), non-ASCII */
#define C_CD 0x04   /* stops a CDATA scan: ] CR, controls, non-ASCII */
#define C_NS 0x08   /* ASCII name start (':' handled apart) */
#define C_NC 0x10   /* ASCII name char (':' handled apart) */
#define C_WS 0x20   /* S */
#define C_DEC 0x40  /* needs work when decoding text: & CR */
#define C_DECA 0x80 /* needs work when decoding an attribute: & CR TAB LF */

static const uint8_t cls[256] = {
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0xa2, 0xa2, 0x07, 0x07, 0xe7, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x20, 0x00, 0x02, 0x00, 0x00, 0x00, 0xc3, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x10, 0x00,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00,
    0x00, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18,
    0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x00, 0x00, 0x04, 0x00, 0x18,
    0x00, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18,
    0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07,
};

/* Word-at-a-time scanning: a word with no byte of interest is skipped in
 * one step. The tests are exact for "is there any such byte" (the classic
 * has-zero / has-less bit tricks), which is all the skip needs; the byte
 * itself is then found with the class table. */
#if SIZE_MAX > 0xFFFFFFFFu
typedef uint64_t word_t;
#else
typedef uint32_t word_t;
#endif
#define W_ONES ((word_t)-1 / 0xFF)
#define W_HIGH (W_ONES * 0x80)
#define W_HAS_LESS(v, n) (((v) - W_ONES * (n)) & ~(v))
#define W_HAS_BYTE(v, c) W_HAS_LESS((v) ^ (W_ONES * (c)), 1)

static word_t load_word(const uint8_t *p)
{
    word_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Any byte that stops a text scan: controls, non-ASCII, < & >.
 * Non-ASCII bytes stop it anyway (v is or-ed in), which makes the "& ~x"
 * half of the has-zero trick unnecessary: for a byte x < 0x80, x - 1 has
 * the high bit set only if x is 0, or if a borrow came from a byte below
 * that was itself a hit. '<' and '>' differ only in bit 1. */
#define W_EQ_ASCII(v, c) (((v) ^ (W_ONES * (c))) - W_ONES)
static word_t word_text_special(word_t v)
{
    return (v | (v - W_ONES * 0x20) | W_EQ_ASCII(v | (W_ONES * 2), '>') | W_EQ_ASCII(v, '&')) & W_HIGH;
}

/* ... an attribute value scan: controls, non-ASCII, < & ' " ('&' and '\''
 * differ only in bit 0) */
static word_t word_attr_special(word_t v)
{
    return (v | (v - W_ONES * 0x20) | W_EQ_ASCII(v, '<') | W_EQ_ASCII(v | W_ONES, '\'') | W_EQ_ASCII(v, '"')) &
           W_HIGH;
}

/* Offset of the first byte flagged in such a mask. Borrows only run
 * upwards, so the lowest flag is always a real hit. Only where counting
 * trailing zeros is an instruction (64-bit hosts, ARM with CLZ, RISC-V Zbb;
 * never a libgcc call); elsewhere the scanners find the byte by class. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && \
    (SIZE_MAX > 0xFFFFFFFFu || defined(__ARM_FEATURE_CLZ) || defined(__riscv_zbb))
#if SIZE_MAX > 0xFFFFFFFFu
#define W_FIRST(m) ((size_t)__builtin_ctzll(m) >> 3)
#else
#define W_FIRST(m) ((size_t)__builtin_ctz(m) >> 3)
#endif
#endif

static const uint8_t xml_ns[] = "http://www.w3.org/XML/1998/namespace";
static const uint8_t xmlns_ns[] = "http://www.w3.org/2000/xmlns/";
#define XML_NS_LEN (sizeof xml_ns - 1)
#define XMLNS_NS_LEN (sizeof xmlns_ns - 1)

/* Names and prefixes: short, of every length; the library's compare and
 * copy cost a call but no length-dependent branches to mispredict. */
static int bytes_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
    return memcmp(a, b, n) == 0;
}

static void bytes_cpy(uint8_t *d, const uint8_t *s, size_t n)
{
    memcpy(d, s, n);
}

/* ---- characters --------------------------------------------------------- */

static int is_char(uint32_t c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

static int is_name_start(uint32_t c)
{
    if (c < 0x80)
        return c == ':' || (cls[c] & C_NS);
    return (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) || (c >= 0xF8 && c <= 0x2FF) ||
           (c >= 0x370 && c <= 0x37D) || (c >= 0x37F && c <= 0x1FFF) || (c >= 0x200C && c <= 0x200D) ||
           (c >= 0x2070 && c <= 0x218F) || (c >= 0x2C00 && c <= 0x2FEF) || (c >= 0x3001 && c <= 0xD7FF) ||
           (c >= 0xF900 && c <= 0xFDCF) || (c >= 0xFDF0 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0xEFFFF);
}

static int is_name_char(uint32_t c)
{
    if (c < 0x80)
        return c == ':' || (cls[c] & C_NC);
    return is_name_start(c) || c == 0xB7 || (c >= 0x300 && c <= 0x36F) || (c >= 0x203F && c <= 0x2040);
}

/* One UTF-8 sequence at p (p < end, *p >= 0x80) that must encode an XML
 * Char. Returns its length; 0 if the bytes so far are a valid but
 * incomplete prefix; -1 as soon as a byte makes it invalid (overlong,
 * surrogate, > U+10FFFF, U+FFFE/U+FFFF), so the verdict never depends on
 * where the input was split. */
static int utf8_char(const uint8_t *p, const uint8_t *end, uint32_t *cp)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xBF;
    size_t avail = (size_t)(end - p);
    int n, i;
    uint32_t v;

    if (c < 0xC2)
        return -1;
    if (c < 0xE0) {
        n = 2;
        v = c & 0x1Fu;
    } else if (c < 0xF0) {
        n = 3;
        v = c & 0x0Fu;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c < 0xF5) {
        n = 4;
        v = c & 0x07u;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* > U+10FFFF */
    } else {
        return -1;
    }
    for (i = 1; i < n; i++) {
        uint8_t b;
        if ((size_t)i >= avail)
            return 0;
        b = p[i];
        if (b < lo || b > hi)
            return -1;
        lo = 0x80;
        hi = 0xBF;
        v = v << 6 | (b & 0x3Fu);
    }
    if (v == 0xFFFE || v == 0xFFFF)
        return -1;
    *cp = v;
    return n;
}

static size_t utf8_put(uint32_t c, uint8_t *o)
{
    if (c < 0x80) {
        o[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (uint8_t)(0xC0 | c >> 6);
        o[1] = (uint8_t)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (uint8_t)(0xE0 | c >> 12);
        o[1] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
        o[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | c >> 18);
    o[1] = (uint8_t)(0x80 | (c >> 12 & 0x3F));
    o[2] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
    o[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

/* ---- references --------------------------------------------------------- */

/* Named reference after '&' at p[1..]: its length with the '&', 0 if the
 * bytes so far could still become one, or KL_ERR_XML_ENTITY. */
static int match_entity(const uint8_t *p, size_t avail, uint32_t *out)
{
    const char *lit;
    uint8_t ch;
    size_t n, i;
    /* the usual ones, whole */
    if (avail >= 4 && p[2] == 't' && p[3] == ';' && (p[1] == 'l' || p[1] == 'g')) {
        *out = p[1] == 'l' ? '<' : '>';
        return 4;
    }
    if (avail >= 5 && p[1] == 'a' && p[2] == 'm' && p[3] == 'p' && p[4] == ';') {
        *out = '&';
        return 5;
    }
    if (avail >= 6 && p[5] == ';' && p[1] == 'q' && p[2] == 'u' && p[3] == 'o' && p[4] == 't') {
        *out = '"';
        return 6;
    }
    switch (p[1]) {
    case 'a':
        if (avail < 3)
            return 0;
        if (p[2] == 'p') {
            lit = "apos;";
            ch = '\'';
            n = 5;
        } else {
            lit = "amp;";
            ch = '&';
            n = 4;
        }
        break;
    case 'l': lit = "lt;"; ch = '<'; n = 3; break;
    case 'g': lit = "gt;"; ch = '>'; n = 3; break;
    case 'q': lit = "quot;"; ch = '"'; n = 5; break;
    default: return KL_ERR_XML_ENTITY;
    }
    if (avail > n) {
        /* the whole reference is there: compare at once */
        if (!bytes_eq(p + 1, (const uint8_t *)lit, n))
            return KL_ERR_XML_ENTITY;
        *out = ch;
        return (int)n + 1;
    }
    for (i = 0; i < n; i++) {
        if (1 + i >= avail)
            return 0;
        if (p[1 + i] != (uint8_t)lit[i])
            return KL_ERR_XML_ENTITY;
    }
    *out = ch;
    return (int)n + 1;
}

/* Reference at p ('&'). Returns its length and the character it stands for;
 * 0 if incomplete so far; a negative status once it cannot be valid. */
static int scan_ref(const uint8_t *p, const uint8_t *end, uint32_t *out)
{
    size_t avail = (size_t)(end - p), i;

    if (avail < 2)
        return 0;
    if (p[1] == '#') {
        uint32_t v = 0;
        int hex = 0, digits = 0;
        i = 2;
        if (i < avail && p[i] == 'x') {
            hex = 1;
            i++;
        }
        for (;; i++) {
            uint8_t c;
            unsigned d;
            if (i >= REF_MAX)
                return KL_ERR_XML_CHARREF;
            if (i >= avail)
                return 0;
            c = p[i];
            if (c == ';')
                break;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (hex && (c | 0x20) >= 'a' && (c | 0x20) <= 'f')
                d = (c | 0x20) - 'a' + 10u;
            else
                return KL_ERR_XML_CHARREF;
            v = v * (hex ? 16u : 10u) + d;
            if (v > 0x10FFFF)
                v = 0x110000; /* saturate: stays invalid, never wraps */
            digits++;
        }
        if (!digits || !is_char(v))
            return KL_ERR_XML_CHARREF;
        *out = v;
        return (int)i + 1;
    }
    return match_entity(p, avail, out);
}

/* ---- scanners ----------------------------------------------------------- */

/* Number of ']' immediately before p, counting `carry` from the previous
 * piece when the run reaches the piece's start; capped at 2. */
static unsigned brackets_before(const uint8_t *s, const uint8_t *p, unsigned carry)
{
    unsigned n = 0;
    while (p > s && n < 2 && p[-1] == ']') {
        p--;
        n++;
    }
    if (p == s)
        n += carry;
    return n > 2 ? 2 : n;
}

/* Character data from s up to '<' or the last byte that is safe to hand
 * out. Sets *stop; returns 0 or an error. Clears *plain if the bytes
 * handed out hold a reference or a CR. */
static int scan_text_raw(const uint8_t *s, const uint8_t *end, unsigned carry, const uint8_t **stop,
                         uint8_t *plain)
{
    const uint8_t *p = s;
    for (;;) {
        uint8_t c;
        /* the hot loop: plain ASCII text, a word at a time, then by bytes */
        while (KL_XML_WORDSCAN && (size_t)(end - p) >= sizeof(word_t)) {
            word_t m = word_text_special(load_word(p));
            if (m) {
#ifdef W_FIRST
                p += W_FIRST(m);
                goto hit;
#else
                break;
#endif
            }
            p += sizeof(word_t);
        }
        while (end - p >= 4) {
            if (cls[p[0]] & C_TXT)
                goto hit;
            if (cls[p[1]] & C_TXT) {
                p += 1;
                goto hit;
            }
            if (cls[p[2]] & C_TXT) {
                p += 2;
                goto hit;
            }
            if (cls[p[3]] & C_TXT) {
                p += 3;
                goto hit;
            }
            p += 4;
        }
        while (p < end && !(cls[*p] & C_TXT))
            p++;
        if (p == end)
            break;
    hit:
        c = *p;
        if (c == '<')
            break;
        if (c >= 0x80) {
            uint32_t cp;
            int n;
            if (c >= 0xC2 && c < 0xE0 && end - p >= 2 && (p[1] & 0xC0) == 0x80) {
                p += 2; /* U+0080..U+07FF: always a Char */
                continue;
            }
            n = utf8_char(p, end, &cp);
            if (n > 0) {
                p += n;
                continue;
            }
            if (n == 0)
                break;
            *stop = p;
            return KL_ERR_XML_UTF8;
        }
        if (c == '&') {
            uint32_t cp;
            int n = scan_ref(p, end, &cp);
            if (n > 0) {
                p += n;
                *plain = 0;
                continue;
            }
            if (n == 0)
                break;
            *stop = p;
            return n;
        }
        if (c == '>') {
            if (brackets_before(s, p, carry) >= 2) {
                *stop = p;
                return KL_ERR_XML_SYNTAX; /* "]]>" in text */
            }
            p++;
            continue;
        }
        if (c == '\r') {
            if (p + 1 == end)
                break; /* CR LF must reach the decoder together */
            p++;
            *plain = 0;
            continue;
        }
        if (c == '\n' || c == '\t') { /* the word test stops at them */
            p++;
            continue;
        }
        *stop = p;
        return KL_ERR_XML_UTF8; /* a control character XML forbids */
    }
    *stop = p;
    return 0;
}

/* CDATA content from s: sets *stop to the end of the safe part and *term to
 * 1 if "]]>" begins there. */
static int scan_cdata_raw(const uint8_t *s, const uint8_t *end, const uint8_t **stop, int *term,
                          uint8_t *plain)
{
    const uint8_t *p = s;
    *term = 0;
    for (;;) {
        uint8_t c;
        while (p < end && !(cls[*p] & C_CD))
            p++;
        if (p == end)
            break;
        c = *p;
        if (c == ']') {
            if (end - p < 3) {
                /* a trailing "]" or "]]" may start the terminator */
                if (end - p == 1 || p[1] == ']')
                    break;
                p++;
                continue;
            }
            if (p[1] == ']' && p[2] == '>') {
                *term = 1;
                break;
            }
            p++;
            continue;
        }
        if (c >= 0x80) {
            uint32_t cp;
            int n = utf8_char(p, end, &cp);
            if (n > 0) {
                p += n;
                continue;
            }
            if (n == 0)
                break;
            *stop = p;
            return KL_ERR_XML_UTF8;
        }
        if (c == '\r') {
            if (p + 1 == end)
                break;
            p++;
            *plain = 0;
            continue;
        }
        *stop = p;
        return KL_ERR_XML_UTF8;
    }
    *stop = p;
    return 0;
}

/* Text before a bad byte is still handed out, and the error comes with the
 * next call: the caller sees the same text however the input was split. */
static int scan_text(const uint8_t *s, const uint8_t *end, unsigned carry, const uint8_t **stop,
                     uint8_t *plain)
{
    int r;
    *stop = s;
    r = scan_text_raw(s, end, carry, stop, plain);
    return r && *stop > s ? 0 : r;
}

static int scan_cdata(const uint8_t *s, const uint8_t *end, const uint8_t **stop, int *term,
                      uint8_t *plain)
{
    int r;
    *stop = s;
    r = scan_cdata_raw(s, end, stop, term, plain);
    return r && *stop > s ? 0 : r;
}

/* A QName at p: sets *n and *colon (offset of the colon, 0 if none).
 * Ends at the first byte that cannot continue a name. */
static int scan_name(const uint8_t *p, const uint8_t *end, size_t *n, size_t *colon)
{
    const uint8_t *s = p, *lim;
    uint32_t cp;
    int r, at_start = 1;

    *colon = 0;
    /* fast path: an ASCII name, at most one colon, ended by an ASCII byte */
    lim = end - s > KL_XML_MAX_NAME ? s + KL_XML_MAX_NAME : end;
    if (p < end && (cls[*p] & C_NS)) {
        const uint8_t *q = p + 1;
        for (;;) {
            while (q < lim && (cls[*q] & C_NC))
                q++;
            if (q == lim || *q >= 0x80)
                break; /* the general path decides */
            if (*q != ':') {
                *n = (size_t)(q - s);
                return 0;
            }
            if (*colon || q + 1 == lim || !(cls[q[1]] & C_NS))
                break;
            *colon = (size_t)(q - s);
            q += 2;
        }
        *colon = 0;
    }
    for (;;) {
        /* bounded so an over-long name is reported, not scanned forever */
        lim = end - s > KL_XML_MAX_NAME + 1 ? s + KL_XML_MAX_NAME + 1 : end;
        if (!at_start)
            while (p < lim && (cls[*p] & C_NC))
                p++;
        if ((size_t)(p - s) > KL_XML_MAX_NAME)
            return KL_ERR_XML_NAME_TOO_LONG;
        if (p == end)
            return MORE;
        if (*p == ':') {
            if (at_start || *colon)
                return KL_ERR_XML_NAMESPACE;
            *colon = (size_t)(p - s);
            p++;
            /* the local part must start like a name */
            if (p == end)
                return MORE;
            if (*p < 0x80) {
                if (!(cls[*p] & C_NS))
                    return KL_ERR_XML_NAMESPACE;
                p++;
                continue;
            }
            r = utf8_char(p, end, &cp);
            if (r == 0)
                return MORE;
            if (r < 0)
                return KL_ERR_XML_UTF8;
            if (!is_name_start(cp))
                return KL_ERR_XML_NAMESPACE;
            p += r;
            continue;
        }
        if (*p < 0x80) {
            if (at_start) {
                if (!(cls[*p] & C_NS))
                    return KL_ERR_XML_SYNTAX;
                at_start = 0;
                p++;
                continue;
            }
            break; /* not a name char: the name ends here */
        }
        r = utf8_char(p, end, &cp);
        if (r == 0)
            return MORE;
        if (r < 0)
            return KL_ERR_XML_UTF8;
        if (at_start ? !is_name_start(cp) : !is_name_char(cp)) {
            if (at_start)
                return KL_ERR_XML_SYNTAX;
            break;
        }
        at_start = 0;
        p += r;
    }
    if ((size_t)(p - s) > KL_XML_MAX_NAME)
        return KL_ERR_XML_NAME_TOO_LONG;
    *n = (size_t)(p - s);
    return 0;
}

/* Attribute value after its opening quote q at s; sets *close to the
 * closing quote. Clears *plain if it holds a reference, TAB, LF or CR. */
static int scan_attr_value(const uint8_t *s, const uint8_t *end, uint8_t q, const uint8_t **close,
                           uint8_t *plain)
{
    const uint8_t *p = s;
    /* bounded so an over-long value is reported, not scanned forever */
    const uint8_t *lim = end - s > KL_XML_MAX_ATTR + 1 ? s + KL_XML_MAX_ATTR + 1 : end;
    for (;;) {
        uint8_t c;
        while (KL_XML_WORDSCAN && (size_t)(lim - p) >= sizeof(word_t)) {
            word_t m = word_attr_special(load_word(p));
            if (m) {
#ifdef W_FIRST
                p += W_FIRST(m);
#endif
                break;
            }
            p += sizeof(word_t);
        }
        while (p < lim && !(cls[*p] & C_ATT))
            p++;
        if ((size_t)(p - s) > KL_XML_MAX_ATTR)
            return KL_ERR_XML_ATTR_TOO_LONG;
        if (p == end)
            return MORE;
        c = *p;
        if (c == q) {
            *close = p;
            return 0;
        }
        if (c == '\'' || c == '"') {
            p++;
            continue;
        }
        if (c == '<')
            return KL_ERR_XML_SYNTAX;
        if (c == '&') {
            uint32_t cp;
            int n = scan_ref(p, end, &cp);
            if (n > 0) {
                p += n;
                *plain = 0;
                continue;
            }
            return n == 0 ? MORE : n;
        }
        if (c >= 0x80) {
            uint32_t cp;
            int n = utf8_char(p, end, &cp);
            if (n > 0) {
                p += n;
                continue;
            }
            return n == 0 ? MORE : KL_ERR_XML_UTF8;
        }
        if (c == '\t' || c == '\n' || c == '\r') {
            p++;
            *plain = 0;
            continue;
        }
        return KL_ERR_XML_UTF8;
    }
}

static const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (cls[*p] & C_WS))
        p++;
    return p;
}

/* ---- stack -------------------------------------------------------------- */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* URI bound to prefix p (plen 0: the default namespace) by the frames
 * 1..top (top's frame may be uncommitted). Returns 1 and sets *off and *len
 * (*off NS_XML_OFF for the xml prefix), 0 if unbound. */
static int ns_lookup(const kl_xml_t *x, unsigned top, const uint8_t *p, size_t plen, size_t *off,
                     size_t *len)
{
    unsigned d;
    if (plen == 3 && memcmp(p, "xml", 3) == 0) {
        *off = NS_XML_OFF;
        *len = XML_NS_LEN;
        return 1;
    }
    for (d = top; d >= 1; d--) {
        const uint8_t *f = x->stack + x->frame[d];
        unsigned k, nd = f[FH_NDECL];
        const uint8_t *q = f + FH_SIZE + f[FH_NAME];
        for (k = 0; k < nd; k++) {
            size_t pl = q[0], ul = get16(q + 1);
            if (pl == plen && bytes_eq(q + 3, p, plen)) {
                *off = (size_t)(q + 3 + pl - x->stack);
                *len = ul;
                return 1;
            }
            q += 3 + pl + ul;
        }
    }
    if (plen == 0) { /* no default namespace declared */
        *off = 0;
        *len = 0;
        return 1;
    }
    return 0;
}

static kl_slice_t ns_slice(const kl_xml_t *x, size_t off, size_t len)
{
    kl_slice_t s;
    s.p = off == NS_XML_OFF ? xml_ns : x->stack + off;
    s.len = len;
    return s;
}

static int is_xmlns(kl_slice_t n, size_t *plen)
{
    if (n.len < 5 || n.p[0] != 'x' || !bytes_eq(n.p, (const uint8_t *)"xmlns", 5))
        return 0;
    if (n.len == 5) {
        *plen = 0;
        return 1;
    }
    if (n.len > 6 && n.p[5] == ':') {
        *plen = n.len - 6;
        return 1;
    }
    return 0;
}

/* The attributes of the start tag being parsed. Up to ATTR_REC of them are
 * recorded while scanning (offsets from the tag's '<', so a few bytes each
 * on the C stack); a tag with more is walked again with kl_xml_attr_next. */
#define ATTR_REC 16
typedef struct {
    uint16_t noff, voff, vlen;
    uint8_t nlen, colon;
} attr_rec_t;

typedef struct {
    const uint8_t *base; /* the tag's '<' */
    kl_slice_t attrs;
    unsigned n;
    uint8_t rec;   /* 1 if r[] holds every attribute */
    uint8_t xmlns; /* some attribute name starts with "xmlns" */
    uint8_t prefixed; /* some attribute name has a prefix */
    uint8_t plain;    /* no value needs decoding (kl_xml_token_t.plain) */
    attr_rec_t r[ATTR_REC];
} attr_tab_t;

typedef struct {
    unsigned k; /* index of the attribute the cursor stands after */
    size_t pos;
} attr_cur_t;

/* Attribute k: O(1) from the records, else sequential from the cursor. */
static void attr_walk(const attr_tab_t *t, attr_cur_t *c, unsigned k, kl_slice_t *n, kl_slice_t *v,
                      size_t *colon)
{
    if (k < c->k || c->k == 0) {
        c->k = 0;
        c->pos = 0;
    }
    while (c->k <= k) {
        kl_xml_attr_next(t->attrs, &c->pos, n, v);
        c->k++;
    }
    {
        const uint8_t *q = memchr(n->p, ':', n->len);
        *colon = q ? (size_t)(q - n->p) : 0;
    }
}

static void attr_at(const attr_tab_t *t, attr_cur_t *c, unsigned k, kl_slice_t *n, kl_slice_t *v,
                    size_t *colon)
{
    if (t->rec) {
        const attr_rec_t *a = &t->r[k];
        n->p = t->base + a->noff;
        n->len = a->nlen;
        v->p = t->base + a->voff;
        v->len = a->vlen;
        *colon = a->colon;
        return;
    }
    attr_walk(t, c, k, n, v, colon);
}

/* Pushes the frame of a start tag whose syntax is already checked:
 * declarations, prefix resolution, duplicate attributes. Commits nothing
 * to x->depth / stack_len (the caller does, on success). */
static int push_frame(kl_xml_t *x, kl_slice_t name, size_t colon, const attr_tab_t *at, size_t *top)
{
    unsigned d = (unsigned)x->depth + 1, j, i;
    size_t f = x->stack_len, t, off, len;
    uint8_t *fp;
    unsigned nd = 0;
    kl_slice_t an, av;
    attr_cur_t cj = {0, 0}, ci = {0, 0};

    if (d > KL_XML_MAX_DEPTH)
        return KL_ERR_XML_DEPTH;
    if (FH_SIZE + name.len > sizeof x->stack - f)
        return KL_ERR_XML_STACK;
    fp = x->stack + f;
    fp[FH_NAME] = (uint8_t)name.len;
    fp[FH_PREFIX] = (uint8_t)colon;
    fp[FH_NDECL] = 0;
    bytes_cpy(fp + FH_SIZE, name.p, name.len);
    t = f + FH_SIZE + name.len;
    x->frame[d] = (uint16_t)f;

    /* declarations first: they apply to this element's own name and attributes */
    for (j = 0; at->xmlns && j < at->n; j++) {
        size_t plen, room, ac;
        const uint8_t *uri;
        int n, is_xml_p, is_xml_u;
        attr_at(at, &cj, j, &an, &av, &ac);
        if (!is_xmlns(an, &plen))
            continue;
        room = sizeof x->stack - t;
        if (room < 3 + plen)
            return KL_ERR_XML_STACK;
        memcpy(x->stack + t + 3, an.p + 6, plen);
        uri = x->stack + t + 3 + plen;
        if (at->plain) { /* nothing to decode */
            if (av.len > room - 3 - plen)
                return KL_ERR_XML_STACK;
            memcpy(x->stack + t + 3 + plen, av.p, av.len);
            n = (int)av.len;
        } else {
            n = kl_xml_decode(av, KL_XML_RAW_ATTR, x->stack + t + 3 + plen, room - 3 - plen);
        }
        if (n == KL_ERR_TOO_LARGE || n > 0xFFFF || nd == 255)
            return KL_ERR_XML_STACK;
        if (n < 0)
            return n;
        is_xml_p = plen == 3 && memcmp(an.p + 6, "xml", 3) == 0;
        is_xml_u = (size_t)n == XML_NS_LEN && memcmp(uri, xml_ns, XML_NS_LEN) == 0;
        if (plen && n == 0)
            return KL_ERR_XML_NAMESPACE; /* xmlns:p='' is not allowed in Namespaces 1.0 */
        if (is_xml_p != is_xml_u)
            return KL_ERR_XML_NAMESPACE;
        if ((plen == 5 && memcmp(an.p + 6, "xmlns", 5) == 0) ||
            ((size_t)n == XMLNS_NS_LEN && memcmp(uri, xmlns_ns, XMLNS_NS_LEN) == 0))
            return KL_ERR_XML_NAMESPACE;
        x->stack[t] = (uint8_t)plen;
        put16(x->stack + t + 1, (size_t)n);
        t += 3 + plen + (size_t)n;
        nd++;
    }
    fp[FH_NDECL] = (uint8_t)nd;

    if (colon == 5 && memcmp(name.p, "xmlns", 5) == 0)
        return KL_ERR_XML_NAMESPACE;
    if (!ns_lookup(x, d, name.p, colon, &off, &len))
        return KL_ERR_XML_NAMESPACE;
    put16(fp + FH_NSOFF, off);
    put16(fp + FH_NSLEN, len);

    /* attributes: names unique (qualified, then expanded), prefixes bound */
    if (at->rec && at->n > 1) {
        for (j = 1; j < at->n; j++) {
            const attr_rec_t *rj = &at->r[j];
            for (i = 0; i < j; i++) {
                const attr_rec_t *ri = &at->r[i];
                if (ri->nlen == rj->nlen && bytes_eq(at->base + ri->noff, at->base + rj->noff, rj->nlen))
                    return KL_ERR_XML_ATTR_DUP;
            }
        }
    }
    cj.k = 0;
    for (j = 0; (at->rec ? at->prefixed : at->n > 1 || at->prefixed) ? j < at->n : 0; j++) {
        size_t ac, aoff = 0, alen = 0, plen;
        int check_ns;
        attr_at(at, &cj, j, &an, &av, &ac);
        check_ns = ac && !is_xmlns(an, &plen);
        if (check_ns && !ns_lookup(x, d, an.p, ac, &aoff, &alen))
            return KL_ERR_XML_NAMESPACE;
        if (at->rec && !check_ns)
            continue; /* its qualified name was compared above */
        for (i = 0; i < j; i++) {
            kl_slice_t bn, bv;
            size_t bc, boff, blen;
            attr_at(at, &ci, i, &bn, &bv, &bc);
            if (bn.len == an.len && bytes_eq(bn.p, an.p, an.len))
                return KL_ERR_XML_ATTR_DUP;
            if (!check_ns || !bc || bn.len - bc != an.len - ac ||
                memcmp(bn.p + bc, an.p + ac, an.len - ac) != 0 || is_xmlns(bn, &plen))
                continue;
            if (ns_lookup(x, d, bn.p, bc, &boff, &blen) && blen == alen &&
                memcmp(ns_slice(x, boff, blen).p, ns_slice(x, aoff, alen).p, alen) == 0)
                return KL_ERR_XML_ATTR_DUP;
        }
    }
    *top = t;
    return 0;
}

/* ---- tags --------------------------------------------------------------- */

static void fill_names(kl_xml_token_t *tok, const uint8_t *name, size_t nlen, size_t colon)
{
    tok->name.p = name;
    tok->name.len = nlen;
    tok->local.p = colon ? name + colon + 1 : name;
    tok->local.len = colon ? nlen - colon - 1 : nlen;
}

static int parse_start(kl_xml_t *x, const uint8_t *buf, size_t len, size_t i, size_t *consumed,
                       kl_xml_token_t *tok)
{
    const uint8_t *end = buf + len, *p = buf + i + 1, *name = p, *astart, *aend;
    size_t nlen, colon, top;
    int r, empty;
    const uint8_t *f;
    attr_tab_t at;

    at.base = buf + i;
    tok->plain = 1;
    at.n = 0;
    at.rec = 1;
    at.xmlns = at.prefixed = 0;
    r = scan_name(p, end, &nlen, &colon);
    if (r)
        return r;
    p += nlen;
    astart = p;
    for (;;) {
        const uint8_t *w = p, *close, *an;
        size_t anl, ac;
        p = skip_ws(p, end);
        if (p == end)
            return MORE;
        if (*p == '>') {
            aend = p;
            p++;
            empty = 0;
            break;
        }
        if (*p == '/') {
            if (p + 1 == end)
                return MORE;
            if (p[1] != '>')
                return KL_ERR_XML_SYNTAX;
            aend = p;
            p += 2;
            empty = 1;
            break;
        }
        if (p == w)
            return KL_ERR_XML_SYNTAX; /* attributes are separated by whitespace */
        an = p;
        r = scan_name(p, end, &anl, &ac);
        if (r)
            return r;
        p = skip_ws(p + anl, end);
        if (p == end)
            return MORE;
        if (*p != '=')
            return KL_ERR_XML_SYNTAX;
        p = skip_ws(p + 1, end);
        if (p == end)
            return MORE;
        if (*p != '\'' && *p != '"')
            return KL_ERR_XML_SYNTAX;
        r = scan_attr_value(p + 1, end, *p, &close, &tok->plain);
        if (r)
            return r;
        if (at.n < ATTR_REC && (size_t)(p + 1 - at.base) <= 0xFFFF) {
            attr_rec_t *a = &at.r[at.n];
            a->noff = (uint16_t)(an - at.base);
            a->nlen = (uint8_t)anl;
            a->colon = (uint8_t)ac;
            a->voff = (uint16_t)(p + 1 - at.base);
            a->vlen = (uint16_t)(close - (p + 1));
        } else {
            at.rec = 0;
        }
        at.n++;
        if (an[0] == 'x' && anl >= 5 && bytes_eq(an, (const uint8_t *)"xmlns", 5))
            at.xmlns = 1;
        if (ac)
            at.prefixed = 1;
        p = close + 1;
    }

    tok->attrs.p = astart;
    tok->attrs.len = (size_t)(aend - astart);
    at.attrs = tok->attrs;
    at.plain = tok->plain;
    {
        kl_slice_t n;
        n.p = name;
        n.len = nlen;
        r = push_frame(x, n, colon, &at, &top);
        if (r)
            return r;
    }
    x->depth++;
    x->stack_len = (uint16_t)top;
    x->pending_end = (uint8_t)empty;
    f = x->stack + x->frame[x->depth];
    tok->type = KL_XML_START;
    tok->depth = x->depth;
    tok->empty = (uint8_t)empty;
    fill_names(tok, name, nlen, colon);
    tok->ns = ns_slice(x, get16(f + FH_NSOFF), get16(f + FH_NSLEN));
    tok->offset = i;
    *consumed = (size_t)(p - buf);
    return KL_XML_START;
}

/* Pops the top frame into an END token (names from the stack unless the
 * caller points them at the input). The popped bytes stay intact until the
 * next push, i.e. the next call. */
static void pop_end(kl_xml_t *x, kl_xml_token_t *tok)
{
    const uint8_t *f = x->stack + x->frame[x->depth];
    tok->type = KL_XML_END;
    tok->depth = x->depth;
    fill_names(tok, f + FH_SIZE, f[FH_NAME], f[FH_PREFIX]);
    tok->ns = ns_slice(x, get16(f + FH_NSOFF), get16(f + FH_NSLEN));
    x->stack_len = x->frame[x->depth];
    x->depth--;
}

static int parse_end(kl_xml_t *x, const uint8_t *buf, size_t len, size_t i, size_t *consumed,
                     kl_xml_token_t *tok)
{
    const uint8_t *end = buf + len, *p = buf + i + 2, *f;
    size_t nlen, m;

    if (x->depth == x->base)
        return KL_ERR_XML_MISMATCH; /* nothing open */
    f = x->stack + x->frame[x->depth];
    nlen = f[FH_NAME];
    m = (size_t)(end - p) < nlen ? (size_t)(end - p) : nlen;
    if (!bytes_eq(p, f + FH_SIZE, m))
        return KL_ERR_XML_MISMATCH;
    if (m < nlen)
        return MORE;
    p += nlen;
    if (p == end)
        return MORE;
    if (*p == ':' || *p >= 0x80 || (cls[*p] & C_NC))
        return KL_ERR_XML_MISMATCH; /* a longer name */
    p = skip_ws(p, end);
    if (p == end)
        return MORE;
    if (*p != '>')
        return KL_ERR_XML_SYNTAX;
    pop_end(x, tok);
    tok->name.p = buf + i + 2;
    tok->local.p = tok->name.p + (tok->name.len - tok->local.len);
    tok->offset = i;
    *consumed = (size_t)(p + 1 - buf);
    return KL_XML_END;
}

/* Compares the bytes at p with the literal s: 0 if they match, MORE if they
 * match as far as they go, -1 otherwise. */
static int prefix_is(const uint8_t *p, const uint8_t *end, const char *s)
{
    size_t n = strlen(s), m = (size_t)(end - p) < n ? (size_t)(end - p) : n;
    if (memcmp(p, s, m) != 0)
        return -1;
    return m < n ? MORE : 0;
}

static int ascii_ieq(const uint8_t *p, size_t n, const char *s)
{
    size_t i;
    if (strlen(s) != n)
        return 0;
    for (i = 0; i < n; i++)
        if ((p[i] | 0x20) != (uint8_t)(s[i] | 0x20))
            return 0;
    return 1;
}

/* XML declaration at p ("<?xml" and whitespace already seen): version,
 * then optional encoding (UTF-8 only) and standalone, in that order.
 * Sets *after. */
static int parse_decl(const uint8_t *p, const uint8_t *end, const uint8_t **after)
{
    int seen = 0; /* 1 version, 2 encoding, 3 standalone: last one seen */
    p += 5;
    for (;;) {
        const uint8_t *w = p, *nm, *v, *q;
        size_t nl;
        int which;
        p = skip_ws(p, end);
        if (p == end)
            return MORE;
        if (*p == '?') {
            if (p + 1 == end)
                return MORE;
            if (p[1] != '>' || !seen)
                return KL_ERR_XML_SYNTAX;
            *after = p + 2;
            return 0;
        }
        if (p == w)
            return KL_ERR_XML_SYNTAX;
        nm = p;
        while (p < end && *p >= 'a' && *p <= 'z')
            p++;
        if (p == end)
            return MORE;
        nl = (size_t)(p - nm);
        if (nl == 7 && memcmp(nm, "version", 7) == 0)
            which = 1;
        else if (nl == 8 && memcmp(nm, "encoding", 8) == 0)
            which = 2;
        else if (nl == 10 && memcmp(nm, "standalone", 10) == 0)
            which = 3;
        else
            return KL_ERR_XML_SYNTAX;
        if (which <= seen || (which > 1 && !seen))
            return KL_ERR_XML_SYNTAX;
        seen = which;
        p = skip_ws(p, end);
        if (p == end)
            return MORE;
        if (*p != '=')
            return KL_ERR_XML_SYNTAX;
        p = skip_ws(p + 1, end);
        if (p == end)
            return MORE;
        if (*p != '\'' && *p != '"')
            return KL_ERR_XML_SYNTAX;
        v = p + 1;
        for (q = v; q < end && *q != *p; q++)
            if (*q < 0x21 || *q > 0x7E)
                return KL_ERR_XML_SYNTAX;
        if (q == end)
            return MORE;
        nl = (size_t)(q - v);
        if (which == 1) {
            size_t k;
            if (nl < 3 || v[0] != '1' || v[1] != '.')
                return KL_ERR_XML_SYNTAX;
            for (k = 2; k < nl; k++)
                if (v[k] < '0' || v[k] > '9')
                    return KL_ERR_XML_SYNTAX;
        } else if (which == 2) {
            if (!ascii_ieq(v, nl, "UTF-8"))
                return KL_ERR_XML_SYNTAX; /* XMPP is UTF-8 only */
        } else if (!(nl == 3 && memcmp(v, "yes", 3) == 0) && !(nl == 2 && memcmp(v, "no", 2) == 0)) {
            return KL_ERR_XML_SYNTAX;
        }
        p = q + 1;
    }
}

/* ---- the tokenizer ------------------------------------------------------ */

void kl_xml_init(kl_xml_t *x)
{
    if (x)
        memset(x, 0, sizeof *x);
}

void kl_xml_reset(kl_xml_t *x)
{
    kl_xml_init(x);
}

void kl_xml_init_inner(kl_xml_t *x, const kl_xml_t *parent)
{
    if (!x || !parent || x == parent)
        return;
    memset(x, 0, offsetof(kl_xml_t, stack));
    x->depth = x->base = parent->depth;
    x->stack_len = parent->stack_len;
    x->error = parent->error;
    x->flags = F_DECL;
    memcpy(x->frame, parent->frame, sizeof x->frame);
    memcpy(x->stack, parent->stack, parent->stack_len);
}

static int next_token(kl_xml_t *x, const uint8_t *buf, size_t len, size_t *consumed, kl_xml_token_t *tok)
{
    const uint8_t *end = buf + len;
    uint32_t flags = x->flags;
    unsigned brk = x->brackets;
    size_t i = 0, tok_off = 0;
    int r;

    if (x->pending_end) {
        x->pending_end = 0;
        pop_end(x, tok);
        return KL_XML_END;
    }
    for (;;) {
        if (flags & F_CDATA) {
            const uint8_t *stop;
            int term;
            tok->plain = 1;
            r = scan_cdata(buf + i, end, &stop, &term, &tok->plain);
            if (r)
                return r;
            if (stop > buf + i) {
                tok->type = KL_XML_TEXT;
                tok->depth = x->depth;
                tok->cdata = 1;
                tok->text.p = buf + i;
                tok->text.len = (size_t)(stop - (buf + i));
                tok->offset = tok_off;
                if (term) {
                    flags &= ~F_CDATA;
                    stop += 3;
                }
                *consumed = (size_t)(stop - buf);
                x->flags = flags;
                x->brackets = 0;
                return KL_XML_TEXT;
            }
            if (!term)
                return KL_XML_NEED_MORE;
            flags &= ~F_CDATA; /* an empty section: no token of its own */
            brk = 0;
            i = (size_t)(stop - buf) + 3;
            tok_off = i;
            continue;
        }
        if (x->depth == x->base) {
            /* outside the root: whitespace, the declaration, the root tag */
            i = (size_t)(skip_ws(buf + i, end) - buf);
            if (i == len)
                return KL_XML_NEED_MORE;
            if (buf[i] != '<' || (flags & F_ROOT))
                return KL_ERR_XML_SYNTAX;
        } else if (i == len) {
            return KL_XML_NEED_MORE;
        } else if (buf[i] != '<') {
            const uint8_t *stop;
            tok->plain = 1;
            r = scan_text(buf + i, end, brk, &stop, &tok->plain);
            if (r)
                return r;
            if (stop == buf + i)
                return KL_XML_NEED_MORE;
            tok->type = KL_XML_TEXT;
            tok->depth = x->depth;
            tok->text.p = buf + i;
            tok->text.len = (size_t)(stop - (buf + i));
            tok->offset = i;
            *consumed = (size_t)(stop - buf);
            x->flags = flags;
            x->brackets = (uint8_t)brackets_before(buf + i, stop, brk);
            return KL_XML_TEXT;
        }
        /* at '<' */
        if (i + 1 >= len)
            return KL_XML_NEED_MORE;
        switch (buf[i + 1]) {
        case '/':
            r = parse_end(x, buf, len, i, consumed, tok);
            break;
        case '?': {
            const uint8_t *after;
            r = prefix_is(buf + i, end, "<?xml");
            if (r == MORE || (r == 0 && i + 5 == len))
                return KL_XML_NEED_MORE;
            if (r != 0 || !(cls[buf[i + 5]] & C_WS) || (flags & F_DECL))
                return KL_ERR_XML_PI;
            r = parse_decl(buf + i, end, &after);
            if (r)
                return r == MORE ? KL_XML_NEED_MORE : r;
            flags |= F_DECL;
            i = (size_t)(after - buf);
            continue;
        }
        case '!':
            if (i + 2 >= len)
                return KL_XML_NEED_MORE;
            if (buf[i + 2] == '-')
                return KL_ERR_XML_COMMENT;
            if (buf[i + 2] >= 'A' && buf[i + 2] <= 'Z')
                return KL_ERR_XML_DTD;
            if (buf[i + 2] != '[' || x->depth == x->base)
                return KL_ERR_XML_SYNTAX;
            r = prefix_is(buf + i, end, "<![CDATA[");
            if (r == MORE)
                return KL_XML_NEED_MORE;
            if (r != 0)
                return KL_ERR_XML_SYNTAX;
            flags |= F_CDATA;
            tok_off = i;
            i += 9;
            continue;
        default:
            r = parse_start(x, buf, len, i, consumed, tok);
            break;
        }
        if (r == MORE)
            return KL_XML_NEED_MORE;
        if (r < 0)
            return r;
        x->flags = flags | F_DECL | F_ROOT;
        x->brackets = 0;
        return r;
    }
}

static const kl_xml_token_t tok_zero;

int kl_xml_next(kl_xml_t *x, const uint8_t *buf, size_t len, size_t *consumed, kl_xml_token_t *tok)
{
    int r;
    if (!x || !consumed || !tok || (!buf && len))
        return KL_ERR_ARG;
    *consumed = 0;
    *tok = tok_zero; /* a struct copy: cheaper than memset's rep stos here */
    if (x->error)
        return x->error;
    if (!buf)
        buf = (const uint8_t *)"";
    r = next_token(x, buf, len, consumed, tok);
    if (r < 0) {
        x->error = (int16_t)r;
        *consumed = 0;
    } else if (r == KL_XML_NEED_MORE) {
        *consumed = 0;
    }
    return r;
}

/* ---- attributes and decoding -------------------------------------------- */

int kl_xml_attr_next(kl_slice_t attrs, size_t *pos, kl_slice_t *name, kl_slice_t *value)
{
    const uint8_t *p, *end, *n, *v, *q;
    if (!pos || !name || !value || !attrs.p || *pos >= attrs.len)
        return 0;
    p = attrs.p + *pos;
    end = attrs.p + attrs.len;
    /* validated: outside values, bytes <= ' ' are whitespace */
    while (*p <= ' ')
        if (++p == end)
            return 0;
    n = p;
    /* a name holds no '=': find it, then drop whitespace before it */
    q = memchr(p, '=', (size_t)(end - p));
    if (!q)
        return 0;
    p = q;
    while (p > n && p[-1] <= ' ')
        p--;
    if (p == n)
        return 0;
    name->p = n;
    name->len = (size_t)(p - n);
    p = q + 1;
    if (p < end && (cls[*p] & C_WS))
        p = skip_ws(p, end);
    if (p == end || (*p != '\'' && *p != '"'))
        return 0;
    v = p + 1;
    q = memchr(v, *p, (size_t)(end - v));
    if (!q)
        return 0;
    value->p = v;
    value->len = (size_t)(q - v);
    *pos = (size_t)(q + 1 - attrs.p);
    return 1;
}

int kl_slice_eq(kl_slice_t a, const char *s)
{
    size_t n;
    if (!s)
        return 0;
    n = strlen(s);
    return a.len == n && (n == 0 || memcmp(a.p, s, n) == 0);
}

int kl_xml_attr_get(kl_slice_t attrs, const char *name, kl_slice_t *value)
{
    size_t pos = 0;
    kl_slice_t n, v;
    if (!name || !value)
        return 0;
    while (kl_xml_attr_next(attrs, &pos, &n, &v)) {
        if (kl_slice_eq(n, name)) {
            *value = v;
            return 1;
        }
    }
    return 0;
}

/* Decodes the unit at *pp (a byte the fast path stopped at) into u.
 * Returns the number of bytes written or an error. */
static int decode_unit(const uint8_t **pp, const uint8_t *end, int mode, uint8_t *u)
{
    const uint8_t *p = *pp;
    uint8_t c = *p;
    if (c == '\r') {
        *pp = p + 1 < end && p[1] == '\n' ? p + 2 : p + 1;
        u[0] = mode == KL_XML_RAW_ATTR ? ' ' : '\n';
        return 1;
    }
    if (c == '&' && mode != KL_XML_RAW_CDATA) {
        uint32_t cp;
        int n = scan_ref(p, end, &cp);
        if (n <= 0)
            return n < 0 ? n : (p + 1 < end && p[1] == '#' ? KL_ERR_XML_CHARREF : KL_ERR_XML_ENTITY);
        *pp = p + n;
        return (int)utf8_put(cp, u);
    }
    *pp = p + 1;
    u[0] = mode == KL_XML_RAW_ATTR && (c == '\t' || c == '\n') ? ' ' : c;
    return 1;
}

int kl_xml_decode(kl_slice_t raw, int cdata, uint8_t *out, size_t cap)
{
    const uint8_t *p = raw.p, *end;
    const uint8_t *cr = NULL;
    uint8_t mask = cdata == KL_XML_RAW_ATTR ? C_DECA : C_DEC;
    size_t o = 0;
    if (!p || raw.len == 0)
        return 0;
    end = p + raw.len;
    if (!out)
        cap = 0;
    if (cap > 0x7FFFFFFF)
        cap = 0x7FFFFFFF; /* the result must fit an int */
    while (p < end) {
        const uint8_t *q = p;
        uint8_t u[4];
        int n;
        if (cdata == KL_XML_RAW_CDATA) {
            q = memchr(p, '\r', (size_t)(end - p));
            if (!q)
                q = end;
        } else if (mask == C_DEC) {
            /* text: runs up to the next '&' or CR (the CR found once) */
            if (!cr || cr < p) {
                cr = memchr(p, '\r', (size_t)(end - p));
                if (!cr)
                    cr = end;
            }
            q = memchr(p, '&', (size_t)(cr - p));
            if (!q)
                q = cr;
        } else {
            /* attribute: copy words with no '&' and no TAB LF CR as they are scanned */
            while (KL_XML_WORDSCAN && (size_t)(end - p) >= sizeof(word_t) && cap - o >= sizeof(word_t)) {
                word_t v = load_word(p);
                if ((W_HAS_BYTE(v, '&') | W_HAS_LESS(v, 0x0E)) & W_HIGH)
                    break;
                memcpy(out + o, &v, sizeof v);
                o += sizeof v;
                p += sizeof v;
            }
            q = p;
            while (q < end && !(cls[*q] & mask))
                q++;
        }
        if ((size_t)(q - p) > cap - o)
            return KL_ERR_TOO_LARGE;
        memcpy(out + o, p, (size_t)(q - p));
        o += (size_t)(q - p);
        p = q;
        if (p == end)
            break;
        n = decode_unit(&p, end, cdata, u);
        if (n < 0)
            return n;
        if ((size_t)n > cap - o)
            return KL_ERR_TOO_LARGE;
        out[o++] = u[0]; /* mostly one byte */
        if (n > 1) {
            memcpy(out + o, u + 1, (size_t)n - 1);
            o += (size_t)n - 1;
        }
    }
    return (int)o;
}

int kl_xml_decoded_eq(kl_slice_t raw, const char *s)
{
    const uint8_t *p = raw.p, *end, *sp = (const uint8_t *)s;
    if (!s)
        return 0;
    if (!p)
        return *sp == 0;
    end = p + raw.len;
    while (p < end) {
        uint8_t u[4];
        int n, k;
        if (!(cls[*p] & C_DEC)) {
            if (*sp == 0 || *sp != *p)
                return 0;
            sp++;
            p++;
            continue;
        }
        n = decode_unit(&p, end, KL_XML_RAW_TEXT, u);
        if (n < 0)
            return 0;
        for (k = 0; k < n; k++, sp++)
            if (*sp == 0 || *sp != u[k])
                return 0;
    }
    return *sp == 0;
}
