/* kinglet — pull XML tokenizer (API and semantics in kl_xml.h).
 *
 * One call returns one token. Between calls the tokenizer keeps the
 * element/namespace stack, a few flags and, when a call ran out of bytes,
 * where it stopped: an offset into the slice and the scanner's state inside
 * the unfinished token (kl_xml_t.rs*), never a pointer into the input. The
 * next call goes on from there, so each byte is validated once however the
 * input is chunked (a name, a reference or a UTF-8 sequence cut by the end
 * of a slice is read again from its start: a few bytes). A start tag's
 * attributes are walked once more when the tag is complete, cheaply, to
 * resolve prefixes and sort them for the duplicate check.
 */
#include "kinglet/kl_xml.h"

#include "kl_internal.h"
#include "kl_string.h"

/* Internal "need more bytes" result; never returned to the caller. */
#define MORE 100

/* Word-at-a-time scans of text and attribute values, and the other fast
 * paths that have an exact slow path next to them (ASCII names, whole
 * predefined entities, unrolled text loops): fast on a host, ~1 KB of code
 * a small image built for size (-Os) does without. */
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
#define F_SKIP 0x8u  /* skipping an element (kl_xml_skip) */

/* Resume state (kl_xml_t.rs): where the last call stopped. */
#define R_STATE 7u
#define R_TOP 1u      /* the main loop goes on at rs_at (tok_off: rs_tag) */
#define R_SEP 2u      /* start tag: after its name or a value */
#define R_EQ 3u       /* after an attribute name */
#define R_Q 4u        /* after '=' */
#define R_VAL 5u      /* inside a value, rs_val bytes of it read */
#define R_ETAG 6u     /* end tag: after the name */
#define R_WS 0x08u     /* R_SEP: whitespace since the last name or value */
#define R_DQ 0x10u     /* R_VAL: the value is quoted with '"' */
#define R_NPLAIN 0x20u /* a value needs decoding (kl_xml_token_t.plain 0) */

/* Frame header layout (see kl_xml_t). */
#define FH_NAME 0
#define FH_PREFIX 1
#define FH_NS 2 /* where the element's namespace URI is (ns_slice) */
#define FH_NDECL 4
#define FH_SIZE 5
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

/* NameStartChar above ASCII: these ranges, and U+10000..U+EFFFF */
static const uint16_t name_start_hi[] = {0xC0,   0xD6,   0xD8,   0xF6,   0xF8,   0x2FF,  0x370,  0x37D,
                                         0x37F,  0x1FFF, 0x200C, 0x200D, 0x2070, 0x218F, 0x2C00, 0x2FEF,
                                         0x3001, 0xD7FF, 0xF900, 0xFDCF, 0xFDF0, 0xFFFD};

/* c is a decoded multi-byte UTF-8 sequence, so c >= 0x80: the callers
 * classify ASCII bytes with cls[] before decoding. */
static int is_name_start(uint32_t c)
{
    unsigned k;
    if (c >= 0x10000)
        return c <= 0xEFFFF;
    for (k = 0; k < sizeof name_start_hi / sizeof name_start_hi[0]; k += 2)
        if (c >= name_start_hi[k] && c <= name_start_hi[k + 1])
            return 1;
    return 0;
}

static int is_name_char(uint32_t c) /* c >= 0x80, as is_name_start's */
{
    return is_name_start(c) || c == 0xB7 || (c >= 0x300 && c <= 0x36F) || (c >= 0x203F && c <= 0x2040);
}

/* One UTF-8 sequence at p (p < end, *p >= 0x80) that must encode an XML
 * Char. Returns its length; 0 if the bytes so far are a valid but
 * incomplete prefix; -1 as soon as a byte makes it invalid (overlong,
 * surrogate, > U+10FFFF, U+FFFE/U+FFFF), so the verdict never depends on
 * where the input was split. */
int kl_utf8_char(const uint8_t *p, const uint8_t *end, uint32_t *cp)
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
    static const char names[5][6] = {"lt;", "gt;", "amp;", "apos;", "quot;"};
    unsigned k, maybe = 0;
    /* the usual ones, whole */
    if (KL_XML_WORDSCAN && avail >= 4 && p[2] == 't' && p[3] == ';' && (p[1] == 'l' || p[1] == 'g')) {
        *out = p[1] == 'l' ? '<' : '>';
        return 4;
    }
    if (KL_XML_WORDSCAN && avail >= 5 && p[1] == 'a' && p[2] == 'm' && p[3] == 'p' && p[4] == ';') {
        *out = '&';
        return 5;
    }
    if (KL_XML_WORDSCAN && avail >= 6 && p[5] == ';' && p[1] == 'q' && p[2] == 'u' && p[3] == 'o' && p[4] == 't') {
        *out = '"';
        return 6;
    }
    for (k = 0; k < 5; k++) {
        size_t n = strlen(names[k]), m = avail - 1 < n ? avail - 1 : n;
        if (memcmp(p + 1, names[k], m) == 0) {
            if (m == n) {
                *out = (uint8_t)"<>&'\""[k];
                return (int)n + 1;
            }
            maybe = 1; /* a prefix of this one so far */
        }
    }
    return maybe ? 0 : KL_ERR_XML_ENTITY;
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
        while (KL_XML_WORDSCAN && end - p >= 4) {
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
            if (KL_XML_WORDSCAN && c >= 0xC2 && c < 0xE0 && end - p >= 2 && (p[1] & 0xC0) == 0x80) {
                p += 2; /* U+0080..U+07FF: always a Char */
                continue;
            }
            n = kl_utf8_char(p, end, &cp);
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
            int n = kl_utf8_char(p, end, &cp);
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
    /* fast path: an ASCII name, at most one colon, ended by an ASCII byte
     * (p < end: every caller has checked that a byte is there: a tag's
     * name after its '<', an attribute's after whitespace, a resumed tag's
     * before the '>' or '/' that ends the tag) */
    lim = end - s > KL_XML_MAX_NAME ? s + KL_XML_MAX_NAME : end;
    if (KL_XML_WORDSCAN && (cls[*p] & C_NS)) {
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
            r = kl_utf8_char(p, end, &cp);
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
        r = kl_utf8_char(p, end, &cp);
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
    /* both breaks leave p where the length check above passed */
    *n = (size_t)(p - s);
    return 0;
}

/* Attribute value that began at s (after its opening quote q), scanned on
 * from p. Sets *stop to the closing quote, or with MORE to where the scan
 * must go on (an incomplete reference or UTF-8 sequence is read again).
 * Clears *plain if it holds a reference, TAB, LF or CR. */
static int scan_attr_value(const uint8_t *s, const uint8_t *p, const uint8_t *end, uint8_t q,
                           const uint8_t **stop, uint8_t *plain)
{
    /* bounded so an over-long value is reported, not scanned forever */
    const uint8_t *lim = end - s > KL_XML_MAX_ATTR + 1 ? s + KL_XML_MAX_ATTR + 1 : end;
    for (;;) {
        uint8_t c;
        uint32_t cp;
        int n;
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
        *stop = p;
        if ((size_t)(p - s) > KL_XML_MAX_ATTR)
            return KL_ERR_XML_ATTR_TOO_LONG;
        if (p == end)
            return MORE;
        c = *p;
        if (c == q)
            return 0;
        if (c == '\'' || c == '"') {
            n = 1;
        } else if (c == '<') {
            return KL_ERR_XML_SYNTAX;
        } else if (c == '&') {
            n = scan_ref(p, end, &cp);
            *plain = 0;
        } else if (c >= 0x80) {
            n = kl_utf8_char(p, end, &cp);
            if (n < 0)
                n = KL_ERR_XML_UTF8;
        } else if (c == '\t' || c == '\n' || c == '\r') {
            n = 1;
            *plain = 0;
        } else {
            return KL_ERR_XML_UTF8;
        }
        if (n <= 0)
            return n == 0 ? MORE : n;
        p += n;
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

/* Where the URI bound to prefix p (plen 0: the default namespace) by the
 * frames 1..top is (top's frame may be uncommitted): its stack offset, 0
 * for none (no default namespace declared), NS_XML_OFF for the xml prefix;
 * -1 if the prefix is unbound. */
static int ns_lookup(const kl_xml_t *x, unsigned top, const uint8_t *p, size_t plen)
{
    unsigned d;
    if (plen == 3 && memcmp(p, "xml", 3) == 0)
        return NS_XML_OFF;
    for (d = top; d >= 1; d--) {
        const uint8_t *f = x->stack + x->frame[d];
        unsigned k, nd = f[FH_NDECL];
        const uint8_t *q = f + FH_SIZE + f[FH_NAME];
        for (k = 0; k < nd; k++) {
            size_t pl = q[0];
            q += 3 + pl; /* the URI, its length just before it */
            if (pl == plen && bytes_eq(q - 2 - pl, p, plen))
                return (int)(q - x->stack);
            q += get16(q - 2);
        }
    }
    return plen ? -1 : 0;
}

static kl_slice_t ns_slice(const kl_xml_t *x, unsigned off)
{
    kl_slice_t s;
    if (off == NS_XML_OFF) {
        s.p = xml_ns;
        s.len = XML_NS_LEN;
    } else {
        s.p = x->stack + off;
        s.len = off ? get16(s.p - 2) : 0;
    }
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

/* The attribute at *pos of validated attribute text (or of any bytes:
 * it never reads outside them). */
static int attr_step(kl_slice_t attrs, size_t *pos, kl_slice_t *name, kl_slice_t *value)
{
    const uint8_t *p, *end, *n, *v, *q;
    if (*pos >= attrs.len)
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

/* An attribute in the duplicate check: its qualified name (uri 0) or, for
 * a prefixed one, its namespace URI (stack offset) and local name. */
typedef struct {
    const uint8_t *n;
    uint16_t uri;
    uint8_t nlen;
    uint8_t colon;
} attr_rec_t;

/* Any total order does for the sort: name length, name, URI length, URI
 * (lengths first: most pairs differ there). A prefixed attribute's URI is
 * never empty (xmlns:p='' is refused), so it never equals an unprefixed
 * one's. */
static int rec_cmp(const kl_xml_t *x, const attr_rec_t *a, const attr_rec_t *b)
{
    kl_slice_t ua, ub;
    int r = (int)a->nlen - (int)b->nlen;
    if (!r)
        r = memcmp(a->n, b->n, a->nlen);
    if (r || a->uri == b->uri)
        return r;
    ua = ns_slice(x, a->uri); /* two declarations may bind the same URI */
    ub = ns_slice(x, b->uri);
    r = (int)ua.len - (int)ub.len;
    return r ? r : memcmp(ua.p, ub.p, ua.len);
}

/* Pushes the frame of a start tag whose syntax is already checked:
 * declarations, prefix resolution, duplicate attributes. Commits nothing
 * to x->depth / stack_len (the caller does, on success). rec holds the
 * tag's k attribute names as the scan met them, or k is 0 and they are
 * gathered here by one more walk over their (validated: cheap) bytes. The
 * table is sorted to find duplicates. */
static int push_frame(kl_xml_t *x, kl_slice_t name, size_t colon, kl_slice_t attrs, int plain,
                      attr_rec_t *rec, unsigned k, size_t *top)
{
    unsigned d = (unsigned)x->depth + 1, j, nd = 0;
    size_t f = x->stack_len, t, pos = 0, plen;
    uint8_t *fp;
    int off;
    kl_slice_t an, av;

    if (d > KL_XML_MAX_DEPTH)
        return KL_ERR_XML_DEPTH;
    if (FH_SIZE + name.len > sizeof x->stack - f)
        return KL_ERR_XML_STACK;
    fp = x->stack + f;
    fp[FH_NAME] = (uint8_t)name.len;
    fp[FH_PREFIX] = (uint8_t)colon;
    bytes_cpy(fp + FH_SIZE, name.p, name.len);
    t = f + FH_SIZE + name.len;
    x->frame[d] = (uint16_t)f;

    if (!k) { /* the tag came in several calls */
        while (attr_step(attrs, &pos, &an, &av)) {
            const uint8_t *c = memchr(an.p, ':', an.len);
            /* the scan counted them; only bytes changed between calls get here */
            if (k == KL_XML_MAX_ATTRS || an.len > KL_XML_MAX_NAME)
                return KL_ERR_XML_ATTRS;
            rec[k].n = an.p;
            rec[k].nlen = (uint8_t)an.len;
            rec[k++].colon = c ? (uint8_t)(c - an.p) : 0;
        }
    }
    /* the declarations first: they apply to this element's own name and
     * to every attribute */
    for (j = 0; j < k; j++) {
        attr_rec_t *a = &rec[j];
        const uint8_t *pre;
        uint8_t *uri;
        size_t room;
        int n;
        an.p = a->n;
        an.len = a->nlen;
        if (!is_xmlns(an, &plen))
            continue;
        /* its value: attr_step from the name finds it, as the name came
         * from a walk of these same bytes (or from a scan of them in this
         * call), always; a miss would leave the empty value */
        pre = an.p + an.len - plen;
        pos = (size_t)(a->n - attrs.p);
        av.p = attrs.p;
        av.len = 0;
        (void)attr_step(attrs, &pos, &an, &av);
        a->colon = 0; /* a declaration is compared by its qualified name */
        room = sizeof x->stack - t;
        if (room < 3 + plen)
            return KL_ERR_XML_STACK;
        x->stack[t] = (uint8_t)plen;
        bytes_cpy(x->stack + t + 1, pre, plen);
        uri = x->stack + t + 3 + plen;
        room -= 3 + plen;
        if (KL_XML_WORDSCAN && plain) { /* nothing to decode */
            if (av.len > room)
                return KL_ERR_XML_STACK;
            memcpy(uri, av.p, av.len);
            n = (int)av.len;
        } else {
            n = kl_xml_decode(av, KL_XML_RAW_ATTR, uri, room);
        }
        /* n < room < KL_XML_STACK_SIZE <= 0xFFFF; nd < k <= KL_XML_MAX_ATTRS <= 255 */
        if (n == KL_ERR_TOO_LARGE)
            return KL_ERR_XML_STACK;
        if (n < 0)
            return n;
        if (plen && n == 0)
            return KL_ERR_XML_NAMESPACE; /* xmlns:p='' is not allowed in Namespaces 1.0 */
        if ((plen == 3 && memcmp(pre, "xml", 3) == 0) !=
            ((size_t)n == XML_NS_LEN && memcmp(uri, xml_ns, XML_NS_LEN) == 0))
            return KL_ERR_XML_NAMESPACE;
        if ((plen == 5 && memcmp(pre, "xmlns", 5) == 0) ||
            ((size_t)n == XMLNS_NS_LEN && memcmp(uri, xmlns_ns, XMLNS_NS_LEN) == 0))
            return KL_ERR_XML_NAMESPACE;
        put16(uri - 2, (size_t)n);
        t += 3 + plen + (size_t)n;
        nd++;
    }
    fp[FH_NDECL] = (uint8_t)nd;

    if (colon == 5 && memcmp(name.p, "xmlns", 5) == 0)
        return KL_ERR_XML_NAMESPACE;
    off = ns_lookup(x, d, name.p, colon);
    if (off < 0)
        return KL_ERR_XML_NAMESPACE;
    put16(fp + FH_NS, (size_t)off);

    /* then each attribute: a prefixed one is compared by URI and local name */
    for (j = 0; j < k; j++) {
        attr_rec_t *a = &rec[j];
        a->uri = 0;
        if (a->colon) {
            off = ns_lookup(x, d, a->n, a->colon);
            if (off < 0)
                return KL_ERR_XML_NAMESPACE;
            a->uri = (uint16_t)off;
            a->n += a->colon + 1;
            a->nlen = (uint8_t)(a->nlen - a->colon - 1);
        }
    }
    if (KL_XML_WORDSCAN && k <= 8) {
        /* a few: every pair, behind a test that almost never passes (a
         * sort's comparisons are data-dependent branches a CPU mispredicts) */
        unsigned i;
        for (j = 1; j < k; j++)
            for (i = 0; i < j; i++)
                if (rec[i].nlen == rec[j].nlen && rec[i].n[0] == rec[j].n[0] && !rec_cmp(x, &rec[i], &rec[j]))
                    return KL_ERR_XML_ATTR_DUP;
    } else {
        /* duplicates: a binary insertion sort, n log n comparisons (and at
         * most n^2 / 2 moves of 8-byte records); equal keys meet in the search */
        for (j = 1; j < k; j++) {
            attr_rec_t r = rec[j];
            unsigned lo = 0, hi = j;
            while (lo < hi) {
                unsigned mid = (lo + hi) / 2;
                int c = rec_cmp(x, &r, &rec[mid]);
                if (c == 0)
                    return KL_ERR_XML_ATTR_DUP;
                if (c < 0)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            for (hi = j; hi > lo; hi--) /* a few 8-byte records: no call */
                rec[hi] = rec[hi - 1];
            rec[lo] = r;
        }
    }
    *top = t;
    return 0;
}

/* ---- tags --------------------------------------------------------------- */

/* Notes where the next call goes on. Offsets past 64 KB are not noted (the
 * last note that fitted stands, or none): MORE + 1 then, MORE if noted. */
static int note(kl_xml_t *x, size_t at, size_t tag, unsigned st)
{
    if (at > 0xFFFF)
        return MORE + 1;
    x->rs = (uint8_t)st;
    x->rs_at = (uint16_t)at;
    x->rs_tag = (uint16_t)tag;
    return MORE;
}

static void fill_names(kl_xml_token_t *tok, const uint8_t *name, size_t nlen, size_t colon)
{
    tok->name.p = name;
    tok->name.len = nlen;
    tok->local.p = colon ? name + colon + 1 : name;
    tok->local.len = colon ? nlen - colon - 1 : nlen;
}

static int ascii_ieq(kl_slice_t v, const char *s)
{
    size_t i;
    if (strlen(s) != v.len)
        return 0;
    for (i = 0; i < v.len; i++)
        if ((v.p[i] | 0x20) != (uint8_t)(s[i] | 0x20))
            return 0;
    return 1;
}

/* The XML declaration's pseudo-attributes: version, exactly 1.0; then
 * optionally encoding (UTF-8 only: XMPP) and standalone, in that order. */
static int check_decl(kl_slice_t attrs)
{
    static const char *const names[3] = {"version", "encoding", "standalone"};
    size_t pos = 0;
    unsigned k = 0, j;
    kl_slice_t n, v;
    while (kl_xml_attr_next(attrs, &pos, &n, &v)) {
        for (j = k; j < 3 && !kl_slice_eq(n, names[j]); j++)
            ;
        if (j == 3 || (j && !k))
            return KL_ERR_XML_SYNTAX;
        if (j == 0 ? !kl_slice_eq(v, "1.0")
                   : j == 1 ? !ascii_ieq(v, "UTF-8") : !kl_slice_eq(v, "yes") && !kl_slice_eq(v, "no"))
            return KL_ERR_XML_SYNTAX;
        k = j + 1;
    }
    return k ? 0 : KL_ERR_XML_SYNTAX;
}

/* Start tag, or the XML declaration if buf[tag + 1] is '?' ("<?xml" and a
 * space checked), whose '<' is buf[tag]: from its start (st 0) or from the
 * state noted in x (st, at). Returns MORE when it noted where to go on,
 * MORE + 1 when the caller must (the name is incomplete), 0 for a whole
 * declaration (*consumed: its end). */
static int parse_start(kl_xml_t *x, const uint8_t *buf, size_t len, size_t tag, size_t at, unsigned st,
                       size_t *consumed, kl_xml_token_t *tok)
{
    const uint8_t *end = buf + len, *p = buf + at, *name = buf + tag + 1, *aend, *astart;
    size_t nlen = 0, colon = 0, top, vlen = 0;
    unsigned n = 0, s = R_SEP, whole = !st; /* whole: every attribute is met in this call */
    int r, decl = *name == '?', empty = 0, ws = 0;
    uint8_t q = '\'', plain = 1;
    kl_slice_t attrs;
    attr_rec_t rec[KL_XML_MAX_ATTRS];

    if (st) {
        n = x->rs_n;
        vlen = x->rs_val;
        ws = st & R_WS;
        plain = !(st & R_NPLAIN);
        if (st & R_DQ)
            q = '"';
        /* into the loop where the last call stopped */
        s = st & R_STATE;
        if (s == R_EQ)
            goto eq;
        if (s == R_Q)
            goto quote;
        if (s == R_VAL)
            goto val;
    } else {
        p = name + 4;
        if (!decl) {
            r = scan_name(name, end, &nlen, &colon);
            if (r)
                return r == MORE ? MORE + 1 : r;
            p = name + nlen;
        }
    }
    for (;;) {
        const uint8_t *w = p;
        size_t anl, ac;
        s = R_SEP;
        p = skip_ws(p, end);
        if (p != w)
            ws = 1;
        if (p == end)
            goto more;
        if (*p == '>' && !decl) {
            aend = p++;
            goto done;
        }
        if (*p == (decl ? '?' : '/')) {
            if (p + 1 == end)
                goto more;
            if (p[1] != '>')
                return KL_ERR_XML_SYNTAX;
            aend = p;
            p += 2;
            empty = 1;
            goto done;
        }
        if (!ws)
            return KL_ERR_XML_SYNTAX; /* attributes are separated by whitespace */
        r = scan_name(p, end, &anl, &ac);
        if (r == MORE)
            goto more; /* the name is read again, from its start */
        if (r)
            return r;
        if (++n > KL_XML_MAX_ATTRS)
            return KL_ERR_XML_ATTRS;
        rec[n - 1].n = p;
        rec[n - 1].nlen = (uint8_t)anl;
        rec[n - 1].colon = (uint8_t)ac;
        p += anl;
        ws = 0;
    eq:
        s = R_EQ;
        p = skip_ws(p, end);
        if (p == end)
            goto more;
        if (*p != '=')
            return KL_ERR_XML_SYNTAX;
        p++;
    quote:
        s = R_Q;
        p = skip_ws(p, end);
        if (p == end)
            goto more;
        q = *p++;
        if (q != '\'' && q != '"')
            return KL_ERR_XML_SYNTAX;
        vlen = 0;
    val:
        s = R_VAL;
        r = scan_attr_value(p - vlen, p, end, q, &w, &plain);
        vlen = (size_t)(w - (p - vlen));
        p = w;
        if (r == MORE)
            goto more;
        if (r)
            return r;
        p++;
    }
more:
    r = note(x, (size_t)(p - buf), tag,
             s | (ws ? R_WS : 0) | (q == '"' ? R_DQ : 0) | (plain ? 0 : R_NPLAIN));
    if (r == MORE) {
        x->rs_n = (uint8_t)n;
        x->rs_val = (uint16_t)vlen;
    }
    return r;
done:
    if (!decl && !nlen) { /* resumed: the name again (validated, short) */
        r = scan_name(name, end, &nlen, &colon);
        if (r)
            return r; /* an error: never MORE, as the '>' or '/' at aend < end stops it */
    }
    astart = decl ? name + 4 : name + nlen;
    if (astart > aend)
        return KL_ERR_XML_SYNTAX; /* only bytes changed between calls get here */
    attrs.p = astart;
    attrs.len = (size_t)(aend - astart);
    if (decl) {
        r = check_decl(attrs);
        *consumed = (size_t)(p - buf);
        return r;
    }
    {
        kl_slice_t nm;
        nm.p = name;
        nm.len = nlen;
        tok->plain = plain;
        r = push_frame(x, nm, colon, attrs, plain, rec, whole ? n : 0, &top);
        if (r)
            return r;
    }
    x->depth++;
    x->stack_len = (uint16_t)top;
    x->pending_end = (uint8_t)empty;
    tok->type = KL_XML_START;
    tok->depth = x->depth;
    tok->empty = (uint8_t)empty;
    tok->attrs = attrs;
    fill_names(tok, name, nlen, colon);
    tok->ns = ns_slice(x, get16(x->stack + x->frame[x->depth] + FH_NS));
    tok->offset = tag;
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
    tok->ns = ns_slice(x, get16(f + FH_NS));
    x->stack_len = x->frame[x->depth];
    x->depth--;
}

/* End tag whose '<' is buf[tag]: from its start (st 0) or, after its name,
 * from at (R_ETAG). Returns like parse_start. */
static int parse_end(kl_xml_t *x, const uint8_t *buf, size_t len, size_t tag, size_t at, unsigned st,
                     size_t *consumed, kl_xml_token_t *tok)
{
    const uint8_t *end = buf + len, *p = buf + at, *f;
    size_t nlen, m;

    if (x->depth == x->base)
        return KL_ERR_XML_MISMATCH; /* nothing open */
    f = x->stack + x->frame[x->depth];
    nlen = f[FH_NAME];
    if (!st) {
        p = buf + tag + 2;
        m = (size_t)(end - p) < nlen ? (size_t)(end - p) : nlen;
        if (!bytes_eq(p, f + FH_SIZE, m))
            return KL_ERR_XML_MISMATCH;
        p += m;
        if (m < nlen || p == end)
            return MORE + 1;
        if (*p == ':' || *p >= 0x80 || (cls[*p] & C_NC))
            return KL_ERR_XML_MISMATCH; /* a longer name */
    }
    p = skip_ws(p, end);
    if (p == end)
        return note(x, (size_t)(p - buf), tag, R_ETAG);
    if (*p != '>')
        return KL_ERR_XML_SYNTAX;
    pop_end(x, tok);
    tok->name.p = buf + tag + 2;
    tok->local.p = tok->name.p + (tok->name.len - tok->local.len);
    tok->offset = tag;
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

/* ---- skipping ----------------------------------------------------------- */

/* Skip scanner states (kl_xml_t.rs while F_SKIP): one byte at a time, so
 * nothing is ever held back (and a byte loop is small; skipping is rare). */
enum {
    K_TEXT,  /* content */
    K_LT,    /* after '<' */
    K_STAG,  /* in a start tag, outside quotes */
    K_SLASH, /* ... just after a '/' */
    K_SQ,    /* in a '...' value */
    K_DQ,    /* in a "..." value */
    K_ETAG,  /* in an end tag */
    K_BANG,  /* after "<!" */
    K_CDO,   /* "<![" and part of "CDATA[" (K_CDO + bytes matched) */
    K_CD = K_CDO + 6, /* in a CDATA section */
    K_CD1,   /* ... after ']' */
    K_CD2    /* ... after "]]" */
};

static int skip_bytes(kl_xml_t *x, const uint8_t *buf, size_t len, size_t *consumed, kl_xml_token_t *tok)
{
    const uint8_t *p = buf, *end = buf + len;
    unsigned s = x->rs, n = x->rs_val;
    /* len > 0: kl_xml_next answers an empty slice itself, as no END is
     * owed while skipping (kl_xml_skip refuses to start then) */
    /* first what came before the new element's '<' (validated) */
    p += len < x->rs_at ? len : x->rs_at;
    x->rs_at = (uint16_t)(x->rs_at - (p - buf));
    while (p < end) {
        uint8_t c = *p++;
        switch (s) {
        case K_TEXT:
            if (c == '<')
                s = K_LT;
            else if (!n)
                return KL_ERR_STATE; /* the element's start tag was to come first */
            break;
        case K_LT:
            s = K_STAG;
            if (c == '/')
                s = K_ETAG;
            else if (c == '!')
                s = K_BANG;
            else if (c == '?')
                return KL_ERR_XML_PI;
            else if (++n > 0xFFFF)
                return KL_ERR_XML_DEPTH;
            break;
        case K_STAG:
        case K_SLASH:
            if (c == '>' && s == K_SLASH)
                goto close;
            s = c == '>' ? K_TEXT : c == '/' ? K_SLASH : c == '\'' ? K_SQ : c == '"' ? K_DQ : K_STAG;
            break;
        case K_SQ:
        case K_DQ:
            if (c == (s == K_SQ ? '\'' : '"'))
                s = K_STAG;
            break;
        case K_CD:
            if (c == ']')
                s = K_CD1;
            break;
        case K_ETAG:
            if (c == '>')
                goto close;
            break;
        case K_BANG:
            if (c == '-')
                return KL_ERR_XML_COMMENT;
            if (c >= 'A' && c <= 'Z')
                return KL_ERR_XML_DTD;
            if (c != '[')
                return KL_ERR_XML_SYNTAX;
            s = K_CDO;
            break;
        case K_CD1:
            s = c == ']' ? K_CD2 : K_CD;
            break;
        case K_CD2:
            s = c == '>' ? K_TEXT : c == ']' ? K_CD2 : K_CD;
            break;
        default: /* K_CDO.. */
            if (c != (uint8_t)"CDATA["[s - K_CDO])
                return KL_ERR_XML_SYNTAX;
            s++;
        }
        continue;
    close:
        s = K_TEXT;
        if (!n)
            return KL_ERR_STATE; /* an end tag before the element's start tag */
        if (--n == 0) {
            x->flags &= (uint8_t)~F_SKIP;
            tok->empty = 1;
            break;
        }
    }
    x->rs = (uint8_t)s;
    x->rs_val = (uint16_t)n;
    tok->type = KL_XML_SKIP;
    tok->depth = (uint8_t)(x->depth + 1);
    *consumed = (size_t)(p - buf);
    return KL_XML_SKIP;
}

int kl_xml_skip(kl_xml_t *x, unsigned depth)
{
    int e;
    if (!x)
        return KL_ERR_ARG;
    e = x->error;
    /* a limit error leaves a consistent state: the failed tag consumed
     * nothing and pushed nothing */
    if ((e >= KL_ERR_XML_STACK && e <= KL_ERR_XML_NAME_TOO_LONG) || e == KL_ERR_XML_ATTR_TOO_LONG ||
        e == KL_ERR_XML_ATTRS)
        e = 0;
    if (e)
        return e;
    if ((x->flags & F_SKIP) || x->pending_end || depth <= x->base || depth > x->depth + 1u)
        return KL_ERR_STATE;
    x->error = 0;
    /* a new element: its '<' is where the last call noted a tag or stopped */
    x->rs_at = depth <= x->depth || !x->rs ? 0 : (x->rs & R_STATE) == R_TOP ? x->rs_at : x->rs_tag;
    x->rs = x->flags & F_CDATA ? K_CD : K_TEXT;
    x->rs_val = (uint16_t)(x->depth + 1u - depth); /* open elements to close */
    if (depth <= x->depth) {
        x->stack_len = x->frame[depth];
        x->depth = (uint8_t)(depth - 1);
    }
    x->flags = (uint8_t)((x->flags & ~F_CDATA) | F_SKIP | F_DECL | F_ROOT);
    x->brackets = 0;
    return KL_OK;
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
    unsigned flags = x->flags, brk = x->brackets, st = 0;
    size_t i = 0, tok_off = 0;
    int r;

    if (x->pending_end) {
        x->pending_end = 0;
        pop_end(x, tok);
        return KL_XML_END;
    }
    if (flags & F_SKIP)
        return skip_bytes(x, buf, len, consumed, tok);
    /* go on where the last call stopped; fewer bytes than it saw: from the start */
    if (x->rs && x->rs_at <= len) {
        i = x->rs_at;
        tok_off = x->rs_tag;
        if ((x->rs & R_STATE) != R_TOP)
            st = x->rs;
        if (KL_XML_WORDSCAN && (st & R_STATE) == R_VAL) {
            /* a value trickling in (a host fast path: parse_start does the
             * same with its whole frame) */
            const uint8_t *w;
            uint8_t pl = 1;
            r = scan_attr_value(buf + i - x->rs_val, buf + i, end, st & R_DQ ? '"' : '\'', &w, &pl);
            if (r == MORE && (size_t)(w - buf) <= 0xFFFF) {
                x->rs_val = (uint16_t)(x->rs_val + (w - (buf + i)));
                x->rs_at = (uint16_t)(w - buf);
                if (!pl)
                    x->rs |= R_NPLAIN;
                return KL_XML_NEED_MORE;
            }
        }
    }
    for (;;) {
        size_t tag;
        if (st) { /* a tag the last call left unfinished, at tok_off */
            tag = tok_off;
        } else if (flags & F_CDATA) {
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
                x->flags = (uint8_t)flags;
                x->brackets = 0;
                return KL_XML_TEXT;
            }
            if (!term)
                goto more;
            flags &= ~F_CDATA; /* an empty section: no token of its own */
            brk = 0;
            i = (size_t)(stop - buf) + 3;
            tok_off = i;
            continue;
        } else {
            if (x->depth == x->base) {
                /* outside the root: whitespace, the declaration, the root tag */
                i = (size_t)(skip_ws(buf + i, end) - buf);
                if (i == len)
                    goto more;
                if (buf[i] != '<' || (flags & F_ROOT))
                    return KL_ERR_XML_SYNTAX;
            } else if (i == len) {
                goto more;
            } else if (buf[i] != '<') {
                const uint8_t *stop;
                tok->plain = 1;
                r = scan_text(buf + i, end, brk, &stop, &tok->plain);
                if (r)
                    return r;
                if (stop == buf + i)
                    goto more;
                tok->type = KL_XML_TEXT;
                tok->depth = x->depth;
                tok->text.p = buf + i;
                tok->text.len = (size_t)(stop - (buf + i));
                tok->offset = i;
                *consumed = (size_t)(stop - buf);
                x->flags = (uint8_t)flags;
                x->brackets = (uint8_t)brackets_before(buf + i, stop, brk);
                return KL_XML_TEXT;
            }
            /* at '<' */
            if (i + 1 >= len)
                goto more;
            tag = i;
            if (buf[i + 1] == '?') {
                r = prefix_is(buf + i, end, "<?xml");
                if (r == MORE || (r == 0 && i + 5 == len))
                    goto more;
                /* the declaration only as the document's first bytes */
                if (r != 0 || !(cls[buf[i + 5]] & C_WS) || i || (flags & F_DECL))
                    return KL_ERR_XML_PI;
            } else if (buf[i + 1] == '!') {
                if (i + 2 >= len)
                    goto more;
                if (buf[i + 2] == '-')
                    return KL_ERR_XML_COMMENT;
                if (buf[i + 2] >= 'A' && buf[i + 2] <= 'Z')
                    return KL_ERR_XML_DTD;
                if (buf[i + 2] != '[' || x->depth == x->base)
                    return KL_ERR_XML_SYNTAX;
                r = prefix_is(buf + i, end, "<![CDATA[");
                if (r == MORE)
                    goto more;
                if (r != 0)
                    return KL_ERR_XML_SYNTAX;
                flags |= F_CDATA;
                tok_off = i;
                i += 9;
                continue;
            }
        }
        /* one call site each, so both are inlined */
        if (st ? (st & R_STATE) == R_ETAG : buf[tag + 1] == '/')
            r = parse_end(x, buf, len, tag, i, st, consumed, tok);
        else
            r = parse_start(x, buf, len, tag, i, st, consumed, tok);
        i = tag;
        st = 0;
        if (r == 0) { /* the declaration */
            flags |= F_DECL;
            i = *consumed;
            continue;
        }
        if (r > MORE)
            goto more;
        if (r == MORE) {
            r = KL_XML_NEED_MORE;
            goto noted;
        }
        if (r < 0) /* noted where the failed tag begins: a skip of it passes what is before */
            goto stop;
        x->flags = (uint8_t)(flags | F_DECL | F_ROOT);
        x->brackets = 0;
        return r;
    }
more:
    r = KL_XML_NEED_MORE;
stop:
    if (note(x, i, tok_off, R_TOP) != MORE)
        return r;
noted: /* what was noted stands on the flags as they are now */
    x->flags = (uint8_t)flags;
    x->brackets = (uint8_t)brk;
    return r;
}

static const kl_xml_token_t tok_zero;

int kl_xml_next(kl_xml_t *x, const uint8_t *buf, size_t len, size_t *consumed, kl_xml_token_t *tok)
{
    int r;
    if (!x || !consumed || !tok || (!buf && len))
        return KL_ERR_ARG;
    *consumed = 0;
    if (KL_XML_WORDSCAN)
        *tok = tok_zero; /* a struct copy: cheaper than memset's rep stos here */
    else
        memset(tok, 0, sizeof *tok);
    if (x->error)
        return x->error;
    if (!len && !x->pending_end) /* what a caller that drains its buffer asks most */
        return KL_XML_NEED_MORE;
    if (!buf)
        buf = (const uint8_t *)""; /* no arithmetic on NULL, even + 0 */
    r = next_token(x, buf, len, consumed, tok);
    if (r < 0) {
        x->error = (int16_t)r;
        *consumed = 0;
    } else if (r == KL_XML_NEED_MORE) {
        *consumed = 0;
    } else if (!(x->flags & F_SKIP)) {
        x->rs = 0; /* a whole token: nothing left unfinished */
    }
    return r;
}

/* ---- attributes and decoding -------------------------------------------- */

int kl_xml_attr_next(kl_slice_t attrs, size_t *pos, kl_slice_t *name, kl_slice_t *value)
{
    if (!pos || !name || !value || !attrs.p)
        return 0;
    return attr_step(attrs, pos, name, value);
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
    if (c == '&') { /* never in CDATA, whose decoder stops only at CR */
        uint32_t cp;
        int n = scan_ref(p, end, &cp);
        if (n <= 0)
            return n < 0 ? n : (p + 1 < end && p[1] == '#' ? KL_ERR_XML_CHARREF : KL_ERR_XML_ENTITY);
        *pp = p + n;
        return (int)utf8_put(cp, u);
    }
    /* else an attribute's TAB or LF: the only other bytes C_DECA stops at
     * (text and CDATA stop only at '&' and CR) */
    *pp = p + 1;
    u[0] = ' ';
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
        return KL_ERR_TOO_LARGE; /* raw is not empty: neither is what it decodes to */
    if (cap > 0x7FFFFFFF)
        cap = 0x7FFFFFFF; /* the result must fit an int */
    while (p < end) {
        const uint8_t *q;
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
                memcpy(out + o, p, sizeof v);
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
