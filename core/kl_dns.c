/* kinglet — DNS SRV / A codec (RFC 1035, RFC 2782). See kl_dns.h. */
#include "kinglet/kl_dns.h"

#include "kl_string.h"

#define HDR 12
#define F_QR 0x8000u
#define F_OPCODE 0x7800u
#define F_TC 0x0200u
#define F_RD 0x0100u
#define RCODE_NXDOMAIN 3u
#define CLASS_IN 1u
#define TYPE_CNAME 5u
#define TYPE_SOA 6u
#define WIRE_NAME_MAX 255u

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* RFC 2181 §8: a TTL with the top bit set is treated as zero. */
static uint32_t ttl_of(const uint8_t *p)
{
    uint32_t t = get32(p);
    return (t & 0x80000000u) ? 0 : t;
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* Bytes a host name may hold in text form: no dot inside a label, no
 * space, control or non-ASCII byte (they would not survive as a C string
 * handed to a resolver or a TLS name check). */
static int name_byte_ok(uint8_t c)
{
    return c > 0x20 && c < 0x7f && c != '.';
}

/* ---- query ------------------------------------------------------------- */

/* Appends the labels of a dotted text name (one trailing dot allowed),
 * not the root byte; *wire counts the wire length so far. */
static int put_labels(uint8_t *buf, size_t cap, size_t *pos, const char *text, size_t *wire)
{
    const char *s = text;
    size_t p = *pos;

    while (*s) {
        size_t n = 0;
        while (s[n] && s[n] != '.')
            n++;
        if (n == 0 || n > 63)
            return KL_ERR_DNS_NAME;
        *wire += 1 + n;
        if (*wire + 1 > WIRE_NAME_MAX)
            return KL_ERR_DNS_NAME;
        for (size_t i = 0; i < n; i++)
            if (!name_byte_ok((uint8_t)s[i]))
                return KL_ERR_DNS_NAME;
        if (cap - p < 1 + n)
            return KL_ERR_TOO_LARGE;
        buf[p++] = (uint8_t)n;
        memcpy(buf + p, s, n);
        p += n;
        s += n;
        if (*s == '.')
            s++;
    }
    *pos = p;
    return KL_OK;
}

static int build_query(uint8_t *buf, size_t cap, uint16_t id, const char *prefix, const char *name,
                       unsigned qtype)
{
    size_t pos = HDR, wire = 0;
    int st;

    if (!buf || !name || !*name || *name == '.')
        return KL_ERR_ARG;
    if (cap < HDR)
        return KL_ERR_TOO_LARGE;
    memset(buf, 0, HDR);
    put16(buf, id);
    put16(buf + 2, F_RD);
    put16(buf + 4, 1);
    if (prefix && (st = put_labels(buf, cap, &pos, prefix, &wire)) < 0)
        return st;
    if ((st = put_labels(buf, cap, &pos, name, &wire)) < 0)
        return st;
    if (cap - pos < 5)
        return KL_ERR_TOO_LARGE;
    buf[pos++] = 0;
    put16(buf + pos, qtype);
    put16(buf + pos + 2, CLASS_IN);
    return (int)(pos + 4);
}

int kl_dns_query_srv(uint8_t *buf, size_t cap, uint16_t id, int direct_tls, const char *domain)
{
    return build_query(buf, cap, id, direct_tls ? "_xmpps-client._tcp" : "_xmpp-client._tcp", domain,
                       KL_DNS_TYPE_SRV);
}

int kl_dns_query_a(uint8_t *buf, size_t cap, uint16_t id, const char *host)
{
    return build_query(buf, cap, id, NULL, host, KL_DNS_TYPE_A);
}

/* ---- names --------------------------------------------------------------- */

/* Walks a possibly compressed name label by label. Bounds: every byte read
 * is inside the message, the wire length stays <= 255, at most
 * KL_DNS_MAX_HOPS pointers (so a pointer loop ends), pointers never into
 * the header. */
typedef struct {
    const uint8_t *m;
    size_t len;
    size_t p;       /* next length byte */
    size_t end;     /* where the name ends in the record (set once known) */
    unsigned wire;  /* wire length so far */
    unsigned hops;
    size_t ls, le;  /* the label walk_next last returned 1 for: m[ls..le) */
} walk_t;

static void walk_init(walk_t *w, const uint8_t *m, size_t len, size_t off)
{
    w->m = m;
    w->len = len;
    w->p = off;
    w->end = 0;
    w->wire = 0;
    w->hops = 0;
    w->ls = 0;
    w->le = 0;
}

/* 1: a label in m[w->ls..w->le); 0: end of name (w->end set); < 0: error.
 * The label is kept in the walker as offsets, set by walk_init, so a
 * reader never sees an unset label whatever the walker returned, and
 * every reader loops over m[j] for j < le <= len, a bound it can check. */
static int walk_next(walk_t *w)
{
    for (;;) {
        uint8_t c;
        size_t le;
        if (w->p >= w->len)
            return KL_ERR_DNS_FORMAT;
        c = w->m[w->p];
        if ((c & 0xC0) == 0xC0) {
            size_t to;
            if (w->p + 1 >= w->len)
                return KL_ERR_DNS_FORMAT;
            if (++w->hops > KL_DNS_MAX_HOPS)
                return KL_ERR_DNS_LOOP;
            if (w->hops == 1)
                w->end = w->p + 2;
            to = (size_t)(c & 0x3F) << 8 | w->m[w->p + 1];
            if (to < HDR)
                return KL_ERR_DNS_FORMAT;
            w->p = to;
            continue;
        }
        if (c & 0xC0)
            return KL_ERR_DNS_FORMAT; /* 01/10: obsolete extended label types */
        if (c == 0) {
            if (w->hops == 0)
                w->end = w->p + 1;
            return 0;
        }
        w->wire += 1u + c;
        if (w->wire + 1 > WIRE_NAME_MAX)
            return KL_ERR_DNS_NAME;
        /* p < len and c <= 63: the sum cannot wrap for any real buffer */
        le = w->p + 1u + c;
        if (le > w->len)
            return KL_ERR_DNS_FORMAT;
        w->ls = w->p + 1u;
        w->le = le;
        w->p = le;
        return 1;
    }
}

/* Validates the name at *off and moves *off past it. */
static int name_skip(const uint8_t *m, size_t len, size_t *off)
{
    walk_t w;
    int r;

    walk_init(&w, m, len, *off);
    while ((r = walk_next(&w)) > 0)
        ;
    if (r < 0)
        return r;
    *off = w.end;
    return KL_OK;
}

/* The label readers below each take one label as m[j..e) (from walk_t's
 * ls/le, e <= the message's length) in a function of its own: a loop over
 * a label then never shares its bounds with the walker's loop. */

/* Appends the label m[j..e) to out at o, keeping out terminated; every
 * store leaves room for the NUL after it (cap >= 1). The new length, or
 * KL_ERR_DNS_NAME for a byte a host name cannot hold or no room. */
static int label_text(const uint8_t *m, size_t j, size_t e, char *out, size_t o, size_t cap)
{
    for (; j < e; j++) {
        if (!name_byte_ok(m[j]) || o >= cap - 1)
            return KL_ERR_DNS_NAME;
        out[o++] = (char)m[j];
        out[o] = 0;
    }
    return (int)o; /* < cap <= KL_DNS_NAME_MAX + 1 */
}

/* Case-insensitive equality of the labels a[ja..ea) and b[jb..eb). */
static int label_eq(const uint8_t *a, size_t ja, size_t ea, const uint8_t *b, size_t jb, size_t eb)
{
    for (; ja < ea && jb < eb; ja++, jb++)
        if (lower(a[ja]) != lower(b[jb]))
            return 0;
    return ja == ea && jb == eb;
}

/* Matches the label m[j..e) at the text t (case-insensitive): the text
 * after it, or NULL. */
static const char *label_eq_text(const uint8_t *m, size_t j, size_t e, const char *t)
{
    for (; j < e; j++, t++)
        if (!*t || lower((uint8_t)*t) != lower(m[j]))
            return NULL;
    return t;
}

/* Decodes the name at *off into out[cap] (text, no trailing dot, "" for
 * the root; cap >= 1) and moves *off past it. */
static int name_text(const uint8_t *m, size_t len, size_t *off, char *out, size_t cap)
{
    walk_t w;
    size_t o = 0;
    int r;

    walk_init(&w, m, len, *off);
    /* kept terminated as it grows, each store checked where it is made */
    out[0] = 0;
    while ((r = walk_next(&w)) > 0) {
        if (o) {
            if (o >= cap - 1)
                return KL_ERR_DNS_NAME;
            out[o++] = '.';
        }
        if ((r = label_text(m, w.ls, w.le, out, o, cap)) < 0)
            return r;
        o = (size_t)r;
    }
    if (r < 0)
        return r;
    *off = w.end;
    return KL_OK;
}

/* Case-insensitive equality of two wire names (each possibly compressed,
 * possibly in different messages): 1 equal, 0 not. Every caller passes
 * names name_skip already validated, so the walks cannot fail; a name that
 * did fail would compare unequal (ra == rb < 0 returns 0). */
static int name_eq(const uint8_t *a, size_t alen, size_t aoff, const uint8_t *b, size_t blen, size_t boff)
{
    walk_t wa, wb;

    walk_init(&wa, a, alen, aoff);
    walk_init(&wb, b, blen, boff);
    for (;;) {
        int ra = walk_next(&wa), rb = walk_next(&wb);
        if (ra != rb)
            return 0;
        if (ra <= 0)
            return ra == 0;
        if (!label_eq(a, wa.ls, wa.le, b, wb.ls, wb.le))
            return 0;
    }
}

/* Case-insensitive equality of a wire name (validated, as for name_eq) and
 * a text name: 1 equal, 0 not. */
static int name_eq_text(const uint8_t *m, size_t len, size_t off, const char *text)
{
    walk_t w;
    const char *t = text;
    int r;

    walk_init(&w, m, len, off);
    while ((r = walk_next(&w)) > 0) {
        if (t != text) {
            if (*t != '.')
                return 0;
            t++;
        }
        if (!(t = label_eq_text(m, w.ls, w.le, t)))
            return 0;
    }
    /* no branch on r, which is 0 for a validated name: & not && */
    return (r == 0) & (*t == 0);
}

/* ---- ordering (RFC 2782) --------------------------------------------------- */

/* Draw k of the sequence seeded with rnd (a 32-bit integer hash). */
static uint32_t draw(uint32_t rnd, uint32_t k)
{
    uint32_t x = rnd + k * 0x9E3779B9u;
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/* Moves srv[from] to srv[to] (to <= from), shifting the ones between up. */
static void move_to(kl_dns_srv_t *srv, size_t to, size_t from)
{
    kl_dns_srv_t t;
    if (to == from)
        return;
    t = srv[from];
    memmove(&srv[to + 1], &srv[to], (from - to) * sizeof srv[0]);
    srv[to] = t;
}

void kl_dns_srv_order(kl_dns_srv_t *srv, size_t n, uint32_t rnd)
{
    uint32_t k = 0;

    if (!srv)
        return;
    /* Stable insertion sort by (priority, weight != 0): weight-0 records
     * first within their priority, as RFC 2782 asks. */
    for (size_t i = 1; i < n; i++) {
        size_t j = i;
        while (j > 0 && (srv[j - 1].priority > srv[i].priority ||
                         (srv[j - 1].priority == srv[i].priority && srv[j - 1].weight && !srv[i].weight)))
            j--;
        move_to(srv, j, i);
    }
    /* Within each priority: repeatedly pick by running weight sum >= a
     * random value in [0, sum] among the records not yet ordered. */
    for (size_t g = 0; g < n;) {
        size_t e = g;
        while (e < n && srv[e].priority == srv[g].priority)
            e++;
        for (size_t i = g; i + 1 < e; i++) {
            uint32_t sum = 0, r, run;
            size_t pick = i;
            for (size_t j = i; j < e; j++)
                sum += srv[j].weight;
            r = (uint32_t)(draw(rnd, k++) % ((uint64_t)sum + 1));
            /* the first whose running sum reaches r; the last stops it
             * too (run is sum >= r there: both wrap alike) */
            for (run = srv[i].weight; pick + 1 < e && run < r;)
                run += srv[++pick].weight;
            move_to(srv, i, pick);
        }
        g = e;
    }
}

/* ---- answer ------------------------------------------------------------------ */

typedef struct {
    const uint8_t *m;
    size_t len;
    uint16_t qtype;
    /* Where in m the name records must be for starts: the echoed question
     * (checked equal to the query's), then each CNAME target. Always in m,
     * so the name is never a pointer into one buffer with another's length. */
    size_t cur;
    int saw_dot;
    uint32_t dot_ttl;
    kl_dns_srv_result_t *out;
} parse_t;

static void keep_ttl(kl_dns_srv_result_t *out, uint32_t ttl)
{
    if (out->addr_count == 0 || ttl < out->ttl)
        out->ttl = ttl;
}

/* The SRV RDATA at m[rd..end). */
static int take_srv(parse_t *ps, size_t rd, size_t end, uint32_t ttl)
{
    kl_dns_srv_result_t *out = ps->out;
    kl_dns_srv_t *s;
    size_t off = rd + 6;
    /* zeroed: the copy below reads it up to its NUL, which then always
     * lies inside it (name_text never writes its last byte) */
    char target[KL_DNS_NAME_MAX + 1] = {0};
    uint16_t prio;
    int st;

    if (rd + 7 > end)
        return KL_ERR_DNS_FORMAT;
    /* A target longer than our buffer is a named error, not a cut name. */
    if ((st = name_text(ps->m, end, &off, target, sizeof target)) < 0)
        return st;
    if (off != end)
        return KL_ERR_DNS_FORMAT;
    if (target[0] == 0) {
        ps->saw_dot = 1;
        ps->dot_ttl = ttl;
        return KL_OK;
    }
    prio = get16(ps->m + rd);
    if (out->srv_count < KL_DNS_MAX_SRV) {
        s = &out->srv[out->srv_count++];
    } else {
        /* Full: replace the least preferred if this one is better. */
        size_t worst = 0;
        for (size_t i = 1; i < KL_DNS_MAX_SRV; i++)
            if (out->srv[i].priority >= out->srv[worst].priority)
                worst = i;
        if (out->srv_dropped < 255)
            out->srv_dropped++;
        if (prio >= out->srv[worst].priority)
            return KL_OK;
        s = &out->srv[worst];
    }
    memset(s, 0, sizeof *s);
    s->priority = prio;
    s->weight = get16(ps->m + rd + 2);
    s->port = get16(ps->m + rd + 4);
    s->ttl = ttl;
    memcpy(s->target, target, strlen(target) + 1);
    return KL_OK;
}

static void take_addr(kl_dns_srv_result_t *out, const uint8_t *ip, uint32_t ttl, uint8_t srv)
{
    kl_dns_addr_t *a;
    if (out->addr_count >= KL_DNS_MAX_ADDR) {
        if (out->addr_dropped < 255)
            out->addr_dropped++;
        return;
    }
    a = &out->addr[out->addr_count++];
    memcpy(a->ip, ip, 4);
    a->ttl = ttl;
    a->srv = srv;
}

enum { SEC_ANSWER, SEC_AUTHORITY, SEC_ADDITIONAL };

/* Parses count records at *off of one section. */
static int section(parse_t *ps, size_t *off, unsigned count, int sec, uint32_t *neg_ttl)
{
    const uint8_t *m = ps->m;
    size_t len = ps->len;
    kl_dns_srv_result_t *out = ps->out;

    for (unsigned i = 0; i < count; i++) {
        size_t owner = *off, p = *off, rd, end;
        unsigned type, cls;
        uint32_t ttl;
        int st;

        if ((st = name_skip(m, len, &p)) < 0)
            return st;
        if (p + 10 > len)
            return KL_ERR_DNS_FORMAT;
        type = get16(m + p);
        cls = get16(m + p + 2);
        ttl = ttl_of(m + p + 4);
        rd = p + 10;
        /* the record's RDATA is m[rd..end); rd <= len and RDLENGTH < 2^16,
         * so the sum cannot wrap, and every read below is bounded by end */
        end = rd + get16(m + p + 8);
        if (end > len)
            return KL_ERR_DNS_FORMAT;
        *off = end;
        if (cls != CLASS_IN)
            continue;

        if (sec == SEC_ANSWER && (type == TYPE_CNAME || type == ps->qtype)) {
            /* owner: validated above; ps->cur: the echoed question or a
             * CNAME target, each validated where it was taken */
            if (!name_eq(m, len, owner, m, len, ps->cur))
                continue;
            if (type == TYPE_CNAME) {
                size_t t = rd;
                if ((st = name_skip(m, end, &t)) < 0)
                    return st;
                if (t != end)
                    return KL_ERR_DNS_FORMAT;
                ps->cur = rd;
            } else if (type == KL_DNS_TYPE_SRV) {
                if ((st = take_srv(ps, rd, end, ttl)) < 0)
                    return st;
            } else {
                if (rd + 4 != end)
                    return KL_ERR_DNS_FORMAT;
                keep_ttl(out, ttl);
                take_addr(out, m + rd, ttl, KL_DNS_ADDR_QNAME);
            }
        } else if (sec == SEC_AUTHORITY && type == TYPE_SOA) {
            /* RFC 2308 §5: negative TTL = min(SOA TTL, SOA MINIMUM). */
            size_t t = rd;
            uint32_t min;
            if ((st = name_skip(m, end, &t)) < 0 || (st = name_skip(m, end, &t)) < 0)
                return st;
            if (t + 20 != end)
                return KL_ERR_DNS_FORMAT;
            min = ttl_of(m + end - 4); /* MINIMUM, the last of the 20 */
            *neg_ttl = min < ttl ? min : ttl;
        } else if (sec == SEC_ADDITIONAL && type == KL_DNS_TYPE_A && ps->qtype == KL_DNS_TYPE_SRV) {
            if (rd + 4 != end)
                return KL_ERR_DNS_FORMAT;
            for (unsigned k = 0; k < out->srv_count; k++) {
                if (name_eq_text(m, len, owner, out->srv[k].target)) {
                    take_addr(out, m + rd, ttl, (uint8_t)k);
                    break;
                }
            }
        }
    }
    return KL_OK;
}

int kl_dns_parse(const uint8_t *resp, size_t resp_len, const uint8_t *query, size_t query_len,
                 uint32_t rnd, kl_dns_srv_result_t *out)
{
    parse_t ps;
    size_t off, qoff;
    unsigned flags, an, ns, ar, rcode;
    uint32_t neg_ttl = 0;
    int st;

    if (!resp || !query || !out || query_len < HDR + 5)
        return KL_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (resp_len < HDR)
        return KL_ERR_DNS_FORMAT;
    flags = get16(resp + 2);
    if (get16(resp) != get16(query) || !(flags & F_QR) || (flags & F_OPCODE) != 0)
        return KL_ERR_DNS_MISMATCH;
    if (flags & F_TC)
        return KL_ERR_DNS_TRUNCATED;
    rcode = flags & 0xFu;
    if (rcode != 0 && rcode != RCODE_NXDOMAIN)
        return KL_ERR_DNS_SERVER;
    if (get16(resp + 4) != 1)
        return KL_ERR_DNS_MISMATCH;
    an = get16(resp + 6);
    ns = get16(resp + 8);
    ar = get16(resp + 10);

    /* The echoed question: same name (any case), type and class. */
    off = HDR;
    if ((st = name_skip(resp, resp_len, &off)) < 0)
        return st;
    if (off + 4 > resp_len)
        return KL_ERR_DNS_FORMAT;
    qoff = HDR;
    if (name_skip(query, query_len, &qoff) < 0 || qoff + 4 > query_len)
        return KL_ERR_ARG;
    if (!name_eq(resp, resp_len, HDR, query, query_len, HDR) || memcmp(resp + off, query + qoff, 4) != 0)
        return KL_ERR_DNS_MISMATCH;
    off += 4;

    ps.m = resp;
    ps.len = resp_len;
    ps.qtype = get16(query + qoff);
    if (ps.qtype != KL_DNS_TYPE_SRV && ps.qtype != KL_DNS_TYPE_A)
        return KL_ERR_ARG;
    ps.cur = HDR;
    ps.saw_dot = 0;
    ps.dot_ttl = 0;
    ps.out = out;

    if ((st = section(&ps, &off, an, SEC_ANSWER, &neg_ttl)) < 0)
        goto fail;
    for (unsigned i = 0; i < out->srv_count; i++)
        if (i == 0 || out->srv[i].ttl < out->ttl)
            out->ttl = out->srv[i].ttl;
    kl_dns_srv_order(out->srv, out->srv_count, rnd);
    if ((st = section(&ps, &off, ns, SEC_AUTHORITY, &neg_ttl)) < 0 ||
        (st = section(&ps, &off, ar, SEC_ADDITIONAL, &neg_ttl)) < 0)
        goto fail;

    if (rcode == RCODE_NXDOMAIN) {
        memset(out, 0, sizeof *out);
        out->ttl = neg_ttl;
        return KL_DNS_NO_RECORD;
    }
    if (ps.qtype == KL_DNS_TYPE_SRV ? out->srv_count : out->addr_count)
        return KL_DNS_RECORDS;
    st = (ps.qtype == KL_DNS_TYPE_SRV && ps.saw_dot) ? KL_DNS_UNAVAILABLE : KL_DNS_NO_RECORD;
    memset(out, 0, sizeof *out);
    out->ttl = st == KL_DNS_NO_RECORD ? neg_ttl : ps.dot_ttl;
    return st;
fail:
    memset(out, 0, sizeof *out);
    return st;
}
