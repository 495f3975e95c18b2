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
} walk_t;

static void walk_init(walk_t *w, const uint8_t *m, size_t len, size_t off)
{
    w->m = m;
    w->len = len;
    w->p = off;
    w->end = 0;
    w->wire = 0;
    w->hops = 0;
}

/* 1: a label in *lab (length *n); 0: end of name (w->end set); < 0: error. */
static int walk_next(walk_t *w, const uint8_t **lab, unsigned *n)
{
    for (;;) {
        uint8_t c;
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
        if (w->len - w->p - 1 < c)
            return KL_ERR_DNS_FORMAT;
        *lab = w->m + w->p + 1;
        *n = c;
        w->p += 1u + c;
        return 1;
    }
}

/* Validates the name at *off and moves *off past it. */
static int name_skip(const uint8_t *m, size_t len, size_t *off)
{
    walk_t w;
    const uint8_t *lab;
    unsigned n;
    int r;

    walk_init(&w, m, len, *off);
    while ((r = walk_next(&w, &lab, &n)) > 0)
        ;
    if (r < 0)
        return r;
    *off = w.end;
    return KL_OK;
}

/* Decodes the name at *off into out (text, no trailing dot, "" for the
 * root) and moves *off past it. */
static int name_text(const uint8_t *m, size_t len, size_t *off, char *out, size_t cap)
{
    walk_t w;
    const uint8_t *lab;
    unsigned n;
    size_t o = 0;
    int r;

    walk_init(&w, m, len, *off);
    while ((r = walk_next(&w, &lab, &n)) > 0) {
        if (o + (o ? 1u : 0u) + n + 1 > cap)
            return KL_ERR_DNS_NAME;
        if (o)
            out[o++] = '.';
        for (unsigned i = 0; i < n; i++) {
            if (!name_byte_ok(lab[i]))
                return KL_ERR_DNS_NAME;
            out[o++] = (char)lab[i];
        }
    }
    if (r < 0)
        return r;
    out[o] = 0;
    *off = w.end;
    return KL_OK;
}

/* Case-insensitive equality of two wire names (each possibly compressed,
 * possibly in different messages). 1 equal, 0 not, < 0 error. */
static int name_eq(const uint8_t *a, size_t alen, size_t aoff, const uint8_t *b, size_t blen, size_t boff)
{
    walk_t wa, wb;
    const uint8_t *la, *lb;
    unsigned na, nb;

    walk_init(&wa, a, alen, aoff);
    walk_init(&wb, b, blen, boff);
    for (;;) {
        int ra = walk_next(&wa, &la, &na), rb = walk_next(&wb, &lb, &nb);
        if (ra < 0)
            return ra;
        if (rb < 0)
            return rb;
        if (ra != rb)
            return 0;
        if (ra == 0)
            return 1;
        if (na != nb)
            return 0;
        for (unsigned i = 0; i < na; i++)
            if (lower(la[i]) != lower(lb[i]))
                return 0;
    }
}

/* Case-insensitive equality of a wire name and a text name. */
static int name_eq_text(const uint8_t *m, size_t len, size_t off, const char *text)
{
    walk_t w;
    const uint8_t *lab;
    unsigned n;
    const char *t = text;
    int r;

    walk_init(&w, m, len, off);
    while ((r = walk_next(&w, &lab, &n)) > 0) {
        if (t != text) {
            if (*t != '.')
                return 0;
            t++;
        }
        for (unsigned i = 0; i < n; i++, t++)
            if (!*t || lower((uint8_t)*t) != lower(lab[i]))
                return 0;
    }
    return r < 0 ? r : *t == 0;
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
            uint32_t sum = 0, r, run = 0;
            size_t pick = i;
            for (size_t j = i; j < e; j++)
                sum += srv[j].weight;
            r = (uint32_t)(draw(rnd, k++) % ((uint64_t)sum + 1));
            for (size_t j = i; j < e; j++) {
                run += srv[j].weight;
                if (run >= r) {
                    pick = j;
                    break;
                }
            }
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
    /* The name records must be for: the question, then each CNAME target. */
    const uint8_t *cur;
    size_t cur_len, cur_off;
    int saw_dot;
    uint32_t dot_ttl;
    kl_dns_srv_result_t *out;
} parse_t;

static void keep_ttl(kl_dns_srv_result_t *out, uint32_t ttl)
{
    if (out->addr_count == 0 || ttl < out->ttl)
        out->ttl = ttl;
}

static int take_srv(parse_t *ps, size_t rd, size_t rdlen, uint32_t ttl)
{
    kl_dns_srv_result_t *out = ps->out;
    kl_dns_srv_t *s;
    size_t off = rd + 6;
    char target[KL_DNS_NAME_MAX + 1];
    uint16_t prio;
    int st;

    if (rdlen < 7)
        return KL_ERR_DNS_FORMAT;
    /* A target longer than our buffer is a named error, not a cut name. */
    if ((st = name_text(ps->m, rd + rdlen, &off, target, sizeof target)) < 0)
        return st;
    if (off != rd + rdlen)
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
        size_t owner = *off, p = *off, rd, rdlen;
        unsigned type, cls;
        uint32_t ttl;
        int st, eq;

        if ((st = name_skip(m, len, &p)) < 0)
            return st;
        if (len - p < 10)
            return KL_ERR_DNS_FORMAT;
        type = get16(m + p);
        cls = get16(m + p + 2);
        ttl = ttl_of(m + p + 4);
        rdlen = get16(m + p + 8);
        rd = p + 10;
        if (len - rd < rdlen)
            return KL_ERR_DNS_FORMAT;
        *off = rd + rdlen;
        if (cls != CLASS_IN)
            continue;

        if (sec == SEC_ANSWER && (type == TYPE_CNAME || type == ps->qtype)) {
            if ((eq = name_eq(m, len, owner, ps->cur, ps->cur_len, ps->cur_off)) < 0)
                return eq;
            if (!eq)
                continue;
            if (type == TYPE_CNAME) {
                size_t t = rd;
                if ((st = name_skip(m, rd + rdlen, &t)) < 0)
                    return st;
                if (t != rd + rdlen)
                    return KL_ERR_DNS_FORMAT;
                ps->cur = m;
                ps->cur_len = len;
                ps->cur_off = rd;
            } else if (type == KL_DNS_TYPE_SRV) {
                if ((st = take_srv(ps, rd, rdlen, ttl)) < 0)
                    return st;
            } else {
                if (rdlen != 4)
                    return KL_ERR_DNS_FORMAT;
                keep_ttl(out, ttl);
                take_addr(out, m + rd, ttl, KL_DNS_ADDR_QNAME);
            }
        } else if (sec == SEC_AUTHORITY && type == TYPE_SOA) {
            /* RFC 2308 §5: negative TTL = min(SOA TTL, SOA MINIMUM). */
            size_t t = rd;
            uint32_t min;
            if ((st = name_skip(m, rd + rdlen, &t)) < 0 || (st = name_skip(m, rd + rdlen, &t)) < 0)
                return st;
            if (rd + rdlen - t != 20)
                return KL_ERR_DNS_FORMAT;
            min = ttl_of(m + t + 16);
            *neg_ttl = min < ttl ? min : ttl;
        } else if (sec == SEC_ADDITIONAL && type == KL_DNS_TYPE_A && ps->qtype == KL_DNS_TYPE_SRV) {
            if (rdlen != 4)
                return KL_ERR_DNS_FORMAT;
            for (unsigned k = 0; k < out->srv_count; k++) {
                if ((eq = name_eq_text(m, len, owner, out->srv[k].target)) < 0)
                    return eq;
                if (eq) {
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
    int st, eq;

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
    if (resp_len - off < 4)
        return KL_ERR_DNS_FORMAT;
    qoff = HDR;
    if (name_skip(query, query_len, &qoff) < 0 || query_len - qoff < 4)
        return KL_ERR_ARG;
    if ((eq = name_eq(resp, resp_len, HDR, query, query_len, HDR)) < 0)
        return eq;
    if (!eq || memcmp(resp + off, query + qoff, 4) != 0)
        return KL_ERR_DNS_MISMATCH;
    off += 4;

    ps.m = resp;
    ps.len = resp_len;
    ps.qtype = get16(query + qoff);
    if (ps.qtype != KL_DNS_TYPE_SRV && ps.qtype != KL_DNS_TYPE_A)
        return KL_ERR_ARG;
    ps.cur = query;
    ps.cur_len = query_len;
    ps.cur_off = HDR;
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
