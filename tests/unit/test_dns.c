/* DNS codec: queries byte for byte, hand-made answers (compression, glue,
 * priorities and weights, NXDOMAIN, NODATA, "." target, TC, RCODEs,
 * mismatches), every truncation and every single-byte corruption of a
 * valid answer, compression loops, over-long names, bounds. */
#include <stdint.h>
#include <stdlib.h>

#include "kinglet/kl_dns.h"
#include "kt.h"

/* ---- a tiny message builder ------------------------------------------------ */
typedef struct {
    uint8_t b[8192];
    size_t n;
} msg_t;

static void u8(msg_t *m, unsigned v) { m->b[m->n++] = (uint8_t)v; }
static void u16(msg_t *m, unsigned v) { u8(m, v >> 8); u8(m, v); }
static void u32(msg_t *m, uint32_t v) { u16(m, v >> 16); u16(m, v & 0xFFFF); }
static void ptr(msg_t *m, unsigned off) { u16(m, 0xC000 | off); }

/* Labels of a dotted name; ends with the root unless then_ptr >= 0. */
static void name_to(msg_t *m, const char *s, int then_ptr)
{
    while (*s) {
        const char *d = strchr(s, '.');
        size_t n = d ? (size_t)(d - s) : strlen(s);
        u8(m, (unsigned)n);
        memcpy(m->b + m->n, s, n);
        m->n += n;
        s += n;
        if (*s == '.')
            s++;
    }
    if (then_ptr >= 0)
        ptr(m, (unsigned)then_ptr);
    else
        u8(m, 0);
}
static void name(msg_t *m, const char *s) { name_to(m, s, -1); }

static void hdr(msg_t *m, unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns, unsigned ar)
{
    m->n = 0;
    u16(m, id); u16(m, flags); u16(m, qd); u16(m, an); u16(m, ns); u16(m, ar);
}

/* RR header after the owner name; returns where RDLENGTH is, to patch. */
static size_t rr(msg_t *m, unsigned type, uint32_t ttl)
{
    size_t at;
    u16(m, type); u16(m, 1); u32(m, ttl);
    at = m->n;
    u16(m, 0);
    return at;
}
static void rdlen_done(msg_t *m, size_t at)
{
    size_t len = m->n - at - 2;
    m->b[at] = (uint8_t)(len >> 8);
    m->b[at + 1] = (uint8_t)len;
}

static void srv_rr(msg_t *m, unsigned prio, unsigned weight, unsigned port, uint32_t ttl, const char *target)
{
    size_t at;
    ptr(m, 12); /* owner: the question name */
    at = rr(m, 33, ttl);
    u16(m, prio); u16(m, weight); u16(m, port);
    name(m, target);
    rdlen_done(m, at);
}

/* Parses a copy that ends exactly at the end of a malloc'd block, so that
 * ASan (make check-asan) catches any read past the message. */
static int parse(const msg_t *r, size_t len, const uint8_t *q, size_t qlen, uint32_t rnd, kl_dns_srv_result_t *out)
{
    uint8_t *c = malloc(len ? len : 1);
    int st;
    memcpy(c, r->b, len);
    st = kl_dns_parse(c, len, q, qlen, rnd, out);
    free(c);
    return st;
}

static int named_error(int st)
{
    return st < 0 && strcmp(kl_strerror(st), "unknown error") != 0;
}

#define ID 0xBEEF
#define QR_RD_RA 0x8180u

static uint8_t q[KL_DNS_QUERY_MAX];
static int qlen;
static kl_dns_srv_result_t res;

/* Answer skeleton: header + the question of q. */
static void answer_start(msg_t *m, unsigned flags, unsigned an, unsigned ns, unsigned ar)
{
    hdr(m, ID, flags, 1, an, ns, ar);
    memcpy(m->b + 12, q + 12, (size_t)qlen - 12);
    m->n = (size_t)qlen;
}

static void query_srv(const char *domain, int direct)
{
    qlen = kl_dns_query_srv(q, sizeof q, ID, direct, domain);
}

/* ---- queries ------------------------------------------------------------------ */

static void test_query_bytes(void)
{
    static const uint8_t want[] = {
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
        12, '_', 'x', 'm', 'p', 'p', '-', 'c', 'l', 'i', 'e', 'n', 't',
        4, '_', 't', 'c', 'p',
        7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'o', 'r', 'g', 0,
        0, 33, 0, 1};
    uint8_t b[KL_DNS_QUERY_MAX];
    int n = kl_dns_query_srv(b, sizeof b, 0x1234, 0, "example.org");
    KT_CHECK_EQ(n, sizeof want);
    KT_CHECK(n > 0 && memcmp(b, want, sizeof want) == 0);
    /* a trailing dot gives the same query */
    KT_CHECK_EQ(kl_dns_query_srv(b, sizeof b, 0x1234, 0, "example.org."), sizeof want);
    KT_CHECK(memcmp(b, want, sizeof want) == 0);
    /* exactly enough room, one byte less */
    KT_CHECK_EQ(kl_dns_query_srv(b, sizeof want, 0x1234, 0, "example.org"), sizeof want);
    KT_CHECK_EQ(kl_dns_query_srv(b, sizeof want - 1, 0x1234, 0, "example.org"), KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(kl_dns_query_srv(b, 5, 0x1234, 0, "example.org"), KL_ERR_TOO_LARGE);

    n = kl_dns_query_srv(b, sizeof b, 7, 1, "example.org");
    KT_CHECK_EQ(n, sizeof want + 1);
    KT_CHECK(memcmp(b + 12, "\x0d_xmpps-client\x04_tcp\x07" "example", 27) == 0);

    n = kl_dns_query_a(b, sizeof b, 0xABCD, "xmpp.example.org");
    KT_CHECK_EQ(n, 12 + 18 + 4);
    KT_CHECK(memcmp(b, "\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04xmpp\x07" "example\x03org\x00\x00\x01\x00\x01", 34) == 0);
}

static void test_query_bad_names(void)
{
    uint8_t b[KL_DNS_QUERY_MAX];
    char longname[300];
    char label64[70];

    KT_CHECK_EQ(kl_dns_query_srv(NULL, 10, 1, 0, "a.b"), KL_ERR_ARG);
    KT_CHECK_EQ(kl_dns_query_srv(b, sizeof b, 1, 0, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_dns_query_srv(b, sizeof b, 1, 0, ""), KL_ERR_ARG);
    KT_CHECK_EQ(kl_dns_query_srv(b, sizeof b, 1, 0, "."), KL_ERR_ARG);
    KT_CHECK_EQ(kl_dns_query_srv(b, sizeof b, 1, 0, "a..b"), KL_ERR_DNS_NAME);
    KT_CHECK_EQ(kl_dns_query_srv(b, sizeof b, 1, 0, "a.b.."), KL_ERR_DNS_NAME);
    KT_CHECK_EQ(kl_dns_query_srv(b, sizeof b, 1, 0, "ex ample.org"), KL_ERR_DNS_NAME);
    KT_CHECK_EQ(kl_dns_query_srv(b, sizeof b, 1, 0, "ex\001ample.org"), KL_ERR_DNS_NAME);
    memset(label64, 'a', 64);
    label64[64] = 0;
    KT_CHECK_EQ(kl_dns_query_a(b, sizeof b, 1, label64), KL_ERR_DNS_NAME);
    label64[63] = 0;
    KT_CHECK_EQ(kl_dns_query_a(b, sizeof b, 1, label64), 12 + 65 + 4);
    /* 255-byte wire limit: "_xmpp-client._tcp." takes 18 of it */
    memset(longname, 0, sizeof longname);
    for (int i = 0; i < 4; i++) {
        memset(longname + i * 64, 'x', 63);
        if (i < 3)
            longname[i * 64 + 63] = '.';
    }
    /* 4 x 63-byte labels: wire 4*64+1 = 257 > 255 */
    KT_CHECK_EQ(kl_dns_query_a(b, sizeof b, 1, longname), KL_ERR_DNS_NAME);
    longname[3 * 64 + 61] = 0; /* 3x63 + 61: wire 3*64 + 62 + 1 = 255 */
    KT_CHECK_EQ(kl_dns_query_a(b, sizeof b, 1, longname), 12 + 255 + 4);
    KT_CHECK_EQ(kl_dns_query_srv(b, sizeof b, 1, 0, longname), KL_ERR_DNS_NAME);
}

/* ---- answers ------------------------------------------------------------------- */

/* A literal answer as a server writes it: two SRV records whose owner is a
 * pointer to the question, the second target compressed against the first,
 * and glue A records for both targets in the additional section. */
static void test_literal_answer(void)
{
    static const uint8_t resp[] = {
        0xBE, 0xEF, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 2,
        /* 12: question */
        12, '_', 'x', 'm', 'p', 'p', '-', 'c', 'l', 'i', 'e', 'n', 't', 4, '_', 't', 'c', 'p',
        /* 30: */ 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0, 0, 33, 0, 1,
        /* 48: SRV 20 0 5222 xmpp2.example.test */
        0xC0, 12, 0, 33, 0, 1, 0, 0, 0x0e, 0x10, 0, 14, 0, 20, 0, 0, 0x14, 0x66,
        5, 'x', 'm', 'p', 'p', '2', 0xC0, 30,
        /* 74: SRV 10 0 5222 xmpp1.example.test */
        0xC0, 12, 0, 33, 0, 1, 0, 0, 0x01, 0x2c, 0, 14, 0, 10, 0, 0, 0x14, 0x66,
        5, 'x', 'm', 'p', 'p', '1', 0xC0, 30,
        /* additional: A xmpp1 -> 127.0.0.1 (owner compressed onto the target) */
        0xC0, 92, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1,
        /* A XMPP2.example.test (other case) -> 10.0.0.2 */
        5, 'X', 'M', 'P', 'P', '2', 0xC0, 30, 0, 1, 0, 1, 0, 0, 0, 90, 0, 4, 10, 0, 0, 2};
    msg_t m;
    int st;

    query_srv("example.test", 0);
    KT_CHECK_EQ(qlen, 48);
    memcpy(m.b, resp, sizeof resp);
    st = parse(&m, sizeof resp, q, (size_t)qlen, 0, &res);
    KT_CHECK_EQ(st, KL_DNS_RECORDS);
    KT_CHECK_EQ(res.srv_count, 2);
    KT_CHECK_STR(res.srv[0].target, "xmpp1.example.test");
    KT_CHECK_EQ(res.srv[0].priority, 10);
    KT_CHECK_EQ(res.srv[0].port, 5222);
    KT_CHECK_EQ(res.srv[0].ttl, 300);
    KT_CHECK_STR(res.srv[1].target, "xmpp2.example.test");
    KT_CHECK_EQ(res.srv[1].ttl, 3600);
    KT_CHECK_EQ(res.ttl, 300);
    KT_CHECK_EQ(res.addr_count, 2);
    KT_CHECK_EQ(res.addr[0].srv, 0);
    KT_CHECK(memcmp(res.addr[0].ip, "\x7f\0\0\x01", 4) == 0);
    KT_CHECK_EQ(res.addr[0].ttl, 60);
    KT_CHECK_EQ(res.addr[1].srv, 1);
    KT_CHECK(memcmp(res.addr[1].ip, "\x0a\0\0\x02", 4) == 0);

    /* every truncation of it is a named error, never a success or a crash */
    for (size_t len = 0; len < sizeof resp; len++) {
        st = parse(&m, len, q, (size_t)qlen, 0, &res);
        KT_CHECK(named_error(st));
        if (!named_error(st))
            fprintf(stderr, "  truncated at %zu: %d\n", len, st);
        KT_CHECK_EQ(res.srv_count, 0);
    }
    /* every single-byte corruption: no crash, a result or a named error */
    for (size_t i = 0; i < sizeof resp; i++) {
        static const uint8_t vals[] = {0x00, 0x01, 0x3f, 0x40, 0x80, 0xc0, 0xc0 | 12, 0xff};
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(m.b, resp, sizeof resp);
            m.b[i] = vals[v];
            st = parse(&m, sizeof resp, q, (size_t)qlen, (uint32_t)i, &res);
            KT_CHECK(st >= 0 ? st <= KL_DNS_UNAVAILABLE : named_error(st));
            KT_CHECK(res.srv_count <= KL_DNS_MAX_SRV && res.addr_count <= KL_DNS_MAX_ADDR);
            for (unsigned k = 0; k < res.srv_count; k++)
                KT_CHECK(strlen(res.srv[k].target) <= KL_DNS_NAME_MAX);
        }
    }
}

static void test_priorities_and_weights(void)
{
    msg_t m;
    int first60 = 0, st;
    kl_dns_srv_result_t again;

    query_srv("example.test", 1);
    answer_start(&m, QR_RD_RA, 4, 0, 0);
    srv_rr(&m, 20, 0, 5223, 100, "backup.example.test");
    srv_rr(&m, 10, 40, 5223, 100, "b.example.test");
    srv_rr(&m, 10, 60, 5223, 100, "a.example.test");
    srv_rr(&m, 5, 1, 5224, 100, "first.example.test");
    for (uint32_t rnd = 0; rnd < 2000; rnd++) {
        st = parse(&m, m.n, q, (size_t)qlen, rnd, &res);
        KT_CHECK_EQ(st, KL_DNS_RECORDS);
        KT_CHECK_EQ(res.srv_count, 4);
        KT_CHECK_STR(res.srv[0].target, "first.example.test");
        KT_CHECK_STR(res.srv[3].target, "backup.example.test");
        KT_CHECK(res.srv[1].priority == 10 && res.srv[2].priority == 10);
        KT_CHECK(strcmp(res.srv[1].target, res.srv[2].target) != 0);
        first60 += strcmp(res.srv[1].target, "a.example.test") == 0;
    }
    /* weight 60 of 100 goes first about 60 % of the time */
    KT_CHECK(first60 > 1100 && first60 < 1300);
    if (first60 <= 1100 || first60 >= 1300)
        fprintf(stderr, "  weight 60 first %d / 2000\n", first60);
    /* deterministic: same random value, same order */
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 42, &res), KL_DNS_RECORDS);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 42, &again), KL_DNS_RECORDS);
    KT_CHECK(memcmp(&res, &again, sizeof res) == 0);
}

static void test_order_weight_zero(void)
{
    kl_dns_srv_t s[3];
    int zero_first = 0;

    for (uint32_t rnd = 0; rnd < 1000; rnd++) {
        memset(s, 0, sizeof s);
        s[0].priority = 1; s[0].weight = 10; strcpy(s[0].target, "w10");
        s[1].priority = 1; s[1].weight = 0; strcpy(s[1].target, "w0");
        s[2].priority = 0; s[2].weight = 0; strcpy(s[2].target, "p0");
        kl_dns_srv_order(s, 3, rnd);
        KT_CHECK_STR(s[0].target, "p0");
        zero_first += strcmp(s[1].target, "w0") == 0;
    }
    /* chosen first only when the draw in [0, 10] is 0: about 1 in 11 */
    KT_CHECK(zero_first > 50 && zero_first < 150);
    /* all weights 0: the order is kept */
    memset(s, 0, sizeof s);
    strcpy(s[0].target, "x");
    strcpy(s[1].target, "y");
    kl_dns_srv_order(s, 2, 12345);
    KT_CHECK_STR(s[0].target, "x");
    kl_dns_srv_order(NULL, 0, 0);
    kl_dns_srv_order(s, 0, 0);
}

static void test_more_records_than_slots(void)
{
    msg_t m;
    char t[32];
    unsigned prios[] = {50, 40, 30, 20, 10, 60};
    size_t n = sizeof prios / sizeof prios[0];

    query_srv("example.test", 0);
    answer_start(&m, QR_RD_RA, (unsigned)n, 0, 0);
    for (size_t i = 0; i < n; i++) {
        snprintf(t, sizeof t, "h%u.example.test", prios[i]);
        srv_rr(&m, prios[i], 1, 5222, 10, t);
    }
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 1, &res), KL_DNS_RECORDS);
    KT_CHECK_EQ(res.srv_count, KL_DNS_MAX_SRV);
    KT_CHECK_EQ(res.srv_dropped, n - KL_DNS_MAX_SRV);
    for (unsigned i = 0; i < res.srv_count; i++)
        KT_CHECK_EQ(res.srv[i].priority, 10 * (i + 1));
}

static void test_nxdomain_nodata_dot(void)
{
    msg_t m;
    size_t at;

    query_srv("norecords.test", 0);
    /* NXDOMAIN with an SOA: TTL 600, MINIMUM 30 -> negative TTL 30 */
    answer_start(&m, QR_RD_RA | 3, 0, 1, 0);
    name(&m, "test");
    at = rr(&m, 6, 600);
    name(&m, "ns.test");
    name_to(&m, "hostmaster", m.n - 9);
    u32(&m, 1); u32(&m, 2); u32(&m, 3); u32(&m, 4); u32(&m, 30);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_NO_RECORD);
    KT_CHECK_EQ(res.ttl, 30);
    KT_CHECK_EQ(res.srv_count, 0);
    /* SOA with a bad RDLENGTH */
    m.b[at + 1]--;
    KT_CHECK_EQ(parse(&m, m.n - 1, q, (size_t)qlen, 0, &res), KL_ERR_DNS_FORMAT);

    /* NXDOMAIN, nothing else */
    answer_start(&m, QR_RD_RA | 3, 0, 0, 0);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_NO_RECORD);
    KT_CHECK_EQ(res.ttl, 0);

    /* NOERROR, no SRV (NODATA), an unrelated TXT answer */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    ptr(&m, 12);
    at = rr(&m, 16, 5);
    u8(&m, 2); u8(&m, 'h'); u8(&m, 'i');
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_NO_RECORD);

    /* target "." : decidedly not available */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    srv_rr(&m, 0, 0, 0, 77, "");
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_UNAVAILABLE);
    KT_CHECK_EQ(res.srv_count, 0);
    KT_CHECK_EQ(res.ttl, 77);
    /* "." next to a real target: the real one is used */
    answer_start(&m, QR_RD_RA, 2, 0, 0);
    srv_rr(&m, 0, 0, 0, 77, "");
    srv_rr(&m, 5, 0, 5222, 77, "real.test");
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);
    KT_CHECK_EQ(res.srv_count, 1);
    KT_CHECK_STR(res.srv[0].target, "real.test");
}

static void test_header_checks(void)
{
    msg_t m;

    query_srv("example.test", 0);
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    srv_rr(&m, 1, 1, 5222, 10, "x.example.test");
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);

    m.b[1] ^= 1; /* id */
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_MISMATCH);
    m.b[1] ^= 1;
    m.b[2] &= 0x7f; /* QR = 0: a query, not an answer */
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_MISMATCH);
    m.b[2] = 0x81 | (2 << 3); /* opcode STATUS */
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_MISMATCH);
    m.b[2] = 0x83; /* TC */
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_TRUNCATED);
    m.b[2] = 0x81;
    m.b[3] = 0x82; /* SERVFAIL */
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_SERVER);
    m.b[3] = 0x85; /* REFUSED */
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_SERVER);
    m.b[3] = 0x80;
    m.b[5] = 2; /* QDCOUNT 2 */
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_MISMATCH);
    m.b[5] = 1;
    m.b[14] = 'X'; /* question in another case: 0x20 randomisation is fine */
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);
    m.b[14] = 'q'; /* another name */
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_MISMATCH);
    m.b[14] = 'x';
    m.b[qlen - 3] = 1; /* question type A */
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_MISMATCH);
    m.b[qlen - 3] = 33;
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);

    /* arguments */
    KT_CHECK_EQ(kl_dns_parse(NULL, 0, q, (size_t)qlen, 0, &res), KL_ERR_ARG);
    KT_CHECK_EQ(kl_dns_parse(m.b, m.n, NULL, 0, 0, &res), KL_ERR_ARG);
    KT_CHECK_EQ(kl_dns_parse(m.b, m.n, q, (size_t)qlen, 0, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_dns_parse(m.b, m.n, q, 10, 0, &res), KL_ERR_ARG);
}

static void test_a_and_cname(void)
{
    msg_t m;
    size_t at, cname_rd;

    qlen = kl_dns_query_a(q, sizeof q, ID, "example.test");
    answer_start(&m, QR_RD_RA, 4, 0, 0);
    /* example.test CNAME host.example.test */
    ptr(&m, 12);
    at = rr(&m, 5, 50);
    cname_rd = m.n;
    name_to(&m, "host", 12);
    rdlen_done(&m, at);
    /* an A for an unrelated name is ignored */
    name(&m, "evil.test");
    at = rr(&m, 1, 50);
    u32(&m, 0x01020304);
    rdlen_done(&m, at);
    /* host.example.test A 127.0.0.1 and 127.0.0.2 */
    for (unsigned i = 1; i <= 2; i++) {
        ptr(&m, (unsigned)cname_rd);
        at = rr(&m, 1, 40 + i);
        u32(&m, 0x7f000000u + i);
        rdlen_done(&m, at);
    }
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);
    KT_CHECK_EQ(res.addr_count, 2);
    KT_CHECK_EQ(res.addr[0].srv, KL_DNS_ADDR_QNAME);
    KT_CHECK(memcmp(res.addr[0].ip, "\x7f\0\0\x01", 4) == 0);
    KT_CHECK(memcmp(res.addr[1].ip, "\x7f\0\0\x02", 4) == 0);
    KT_CHECK_EQ(res.ttl, 41);
    for (size_t len = 0; len < m.n; len++)
        KT_CHECK(named_error(parse(&m, len, q, (size_t)qlen, 0, &res)));

    /* an A whose owner's first label is the question's cut short or run
     * on is for another name; then the question's own */
    answer_start(&m, QR_RD_RA, 3, 0, 0);
    name(&m, "exampl.test");
    at = rr(&m, 1, 50);
    u32(&m, 0x01020305);
    rdlen_done(&m, at);
    name(&m, "examplex.test");
    at = rr(&m, 1, 50);
    u32(&m, 0x01020306);
    rdlen_done(&m, at);
    name(&m, "EXAMPLE.test");
    at = rr(&m, 1, 50);
    u32(&m, 0x01020307);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);
    KT_CHECK_EQ(res.addr_count, 1);
    KT_CHECK(memcmp(res.addr[0].ip, "\x01\x02\x03\x07", 4) == 0);

    /* A with RDLENGTH 5 */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    ptr(&m, 12);
    at = rr(&m, 1, 1);
    u32(&m, 1);
    u8(&m, 0);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_FORMAT);

    /* more addresses than slots */
    answer_start(&m, QR_RD_RA, KL_DNS_MAX_ADDR + 2, 0, 0);
    for (unsigned i = 0; i < KL_DNS_MAX_ADDR + 2; i++) {
        ptr(&m, 12);
        at = rr(&m, 1, 1);
        u32(&m, i);
        rdlen_done(&m, at);
    }
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);
    KT_CHECK_EQ(res.addr_count, KL_DNS_MAX_ADDR);
    KT_CHECK_EQ(res.addr_dropped, 2);
}

static void test_compression_loops(void)
{
    msg_t m;
    size_t at, self;

    query_srv("example.test", 0);
    /* target is a pointer to itself */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    ptr(&m, 12);
    at = rr(&m, 33, 1);
    u16(&m, 1); u16(&m, 1); u16(&m, 5222);
    self = m.n;
    ptr(&m, (unsigned)self);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_LOOP);

    /* two pointers pointing at each other, as the owner name */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    self = m.n;
    ptr(&m, (unsigned)self + 2);
    ptr(&m, (unsigned)self);
    at = rr(&m, 33, 1);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_LOOP);

    /* a label, then a pointer back to the label: a growing name */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    ptr(&m, 12);
    at = rr(&m, 33, 1);
    u16(&m, 1); u16(&m, 1); u16(&m, 5222);
    self = m.n;
    name_to(&m, "a", (int)self);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_LOOP);
    /* the same with long labels runs into the 255-byte limit first */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    ptr(&m, 12);
    at = rr(&m, 33, 1);
    u16(&m, 1); u16(&m, 1); u16(&m, 5222);
    self = m.n;
    name_to(&m, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", (int)self);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_NAME);

    /* the question is a loop */
    answer_start(&m, QR_RD_RA, 0, 0, 0);
    m.n = 12;
    ptr(&m, 12);
    u16(&m, 33); u16(&m, 1);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_LOOP);

    /* a pointer into the header, a pointer past the end, a 0x40 label type */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    ptr(&m, 4);
    at = rr(&m, 33, 1);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_FORMAT);
    m.b[qlen + 1] = 0xF0;
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_FORMAT);
    m.b[qlen] = 0x41;
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_FORMAT);
}

static void test_long_names(void)
{
    msg_t m;
    char t[300];
    size_t at, n;

    query_srv("example.test", 0);
    /* 253 characters in text, 255 on the wire: the longest legal name fits */
    memset(t, 0, sizeof t);
    for (int i = 0; i < 4; i++) {
        memset(t + i * 64, 'a' + i, 63);
        if (i < 3)
            t[i * 64 + 63] = '.';
    }
    t[3 * 64 + 61] = 0;
    n = strlen(t);
    KT_CHECK_EQ(n, 253);
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    srv_rr(&m, 1, 1, 5222, 1, t);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);
    KT_CHECK_EQ(strlen(res.srv[0].target), KL_DNS_NAME_MAX < 253 ? 0 : 253);
    KT_CHECK_STR(res.srv[0].target, t);

    /* one more byte: 256 on the wire */
    t[3 * 64 + 61] = 'd';
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    srv_rr(&m, 1, 1, 5222, 1, t);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_NAME);

    /* 255 only through compression: labels + a pointer to the 48-byte question */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    ptr(&m, 12);
    at = rr(&m, 33, 1);
    u16(&m, 1); u16(&m, 1); u16(&m, 5222);
    t[191] = 0; /* 3 labels: 192 wire bytes + the question's 32 fit */
    name_to(&m, t, 12);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    ptr(&m, 12);
    at = rr(&m, 33, 1);
    u16(&m, 1); u16(&m, 1); u16(&m, 5222);
    t[191] = '.';
    t[192 + 30] = 0; /* + 31 more wire bytes: 255, the limit */
    name_to(&m, t, 12);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);
    KT_CHECK_EQ(strlen(res.srv[0].target), 253);
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    ptr(&m, 12);
    at = rr(&m, 33, 1);
    u16(&m, 1); u16(&m, 1); u16(&m, 5222);
    t[192 + 30] = 'd';
    t[192 + 31] = 0; /* one more: 256 */
    name_to(&m, t, 12);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_NAME);

    /* a space or a control byte in a target */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    srv_rr(&m, 1, 1, 5222, 1, "bad host.test");
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_NAME);
    /* a target whose name ends before RDLENGTH does */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    ptr(&m, 12);
    at = rr(&m, 33, 1);
    u16(&m, 1); u16(&m, 1); u16(&m, 5222);
    name(&m, "x.test");
    u8(&m, 0);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_FORMAT);
    /* SRV RDLENGTH shorter than the fixed fields */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    ptr(&m, 12);
    at = rr(&m, 33, 1);
    u16(&m, 1); u16(&m, 1); u16(&m, 5222);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_FORMAT);
}

/* Counts claim more records than there are: every count, every record */
static void test_counts_past_end(void)
{
    msg_t m;
    query_srv("example.test", 0);
    answer_start(&m, QR_RD_RA, 2, 0, 0);
    srv_rr(&m, 1, 1, 5222, 1, "x.test");
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_FORMAT);
    answer_start(&m, QR_RD_RA, 1, 1, 0);
    srv_rr(&m, 1, 1, 5222, 1, "x.test");
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_FORMAT);
    answer_start(&m, QR_RD_RA, 1, 0, 0xFFFF);
    srv_rr(&m, 1, 1, 5222, 1, "x.test");
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_FORMAT);
    /* trailing bytes after the last record are ignored */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    srv_rr(&m, 1, 1, 5222, 1, "x.test");
    u16(&m, 0);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);
    /* class CH records are skipped */
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    srv_rr(&m, 1, 1, 5222, 1, "x.test");
    m.b[qlen + 5] = 3;
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_NO_RECORD);
}

static void test_strerror(void)
{
    KT_CHECK(named_error(KL_ERR_DNS_FORMAT));
    KT_CHECK(named_error(KL_ERR_DNS_TRUNCATED));
    KT_CHECK(named_error(KL_ERR_DNS_NAME));
    KT_CHECK(named_error(KL_ERR_DNS_LOOP));
    KT_CHECK(named_error(KL_ERR_DNS_MISMATCH));
    KT_CHECK(named_error(KL_ERR_DNS_SERVER));
    KT_CHECK(named_error(KL_ERR_DNS_UNAVAILABLE));
}

/* A query that does not fit its buffer: KL_ERR_TOO_LARGE, whether the
 * prefix (SRV) or the name (A) runs past it. */
static void test_query_too_small(void)
{
    uint8_t b[64];
    KT_CHECK_EQ(kl_dns_query_srv(b, 12, ID, 0, "example.org"), KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(kl_dns_query_srv(b, 13, ID, 0, "example.org"), KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(kl_dns_query_srv(b, 12 + 13 + 5 + 7, ID, 0, "example.org"), KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(kl_dns_query_a(b, 12 + 7, ID, "example.org"), KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(kl_dns_query_a(b, 12 + 8 + 4 + 4, ID, "example.org"), KL_ERR_TOO_LARGE); /* no room for the type */
    KT_CHECK_EQ(kl_dns_query_a(b, 12 + 8 + 4 + 5, ID, "example.org"), 12 + 8 + 4 + 5);
}

/* The caller's query is checked too: a name that does not parse, no room
 * for its type and class, a type that is neither SRV nor A: KL_ERR_ARG. */
static void test_parse_bad_query(void)
{
    msg_t m;
    uint8_t q2[KL_DNS_QUERY_MAX];
    query_srv("example.test", 0);
    answer_start(&m, QR_RD_RA, 0, 0, 0);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_NO_RECORD); /* the same, well-formed */
    memcpy(q2, q, (size_t)qlen);
    q2[12] = 0xC0, q2[13] = 0x05; /* a pointer into the header */
    KT_CHECK_EQ(parse(&m, m.n, q2, (size_t)qlen, 0, &res), KL_ERR_ARG);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen - 2, 0, &res), KL_ERR_ARG);
    /* AAAA (28) asked and echoed */
    memcpy(q2, q, (size_t)qlen);
    q2[qlen - 3] = 28;
    m.b[qlen - 3] = 28;
    KT_CHECK_EQ(parse(&m, m.n, q2, (size_t)qlen, 0, &res), KL_ERR_ARG);
}

/* A '.' byte inside a label of a target cannot be written as text: KL_ERR_DNS_NAME. */
static void test_dot_inside_label(void)
{
    msg_t m;
    size_t at;
    query_srv("example.test", 0);
    answer_start(&m, QR_RD_RA, 1, 0, 0);
    ptr(&m, 12);
    at = rr(&m, 33, 60);
    u16(&m, 0); u16(&m, 0); u16(&m, 5222);
    u8(&m, 3); u8(&m, 'a'); u8(&m, '.'); u8(&m, 'b'); u8(&m, 0);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_ERR_DNS_NAME);
}

/* The answer's TTL is the lowest of its addresses, in any order; a glue
 * address whose owner only starts like a target is not that target's. */
static void test_ttl_and_glue_names(void)
{
    msg_t m;
    size_t at;
    qlen = kl_dns_query_a(q, sizeof q, ID, "example.test");
    answer_start(&m, QR_RD_RA, 3, 0, 0);
    for (unsigned i = 0; i < 3; i++) {
        ptr(&m, 12);
        at = rr(&m, 1, i == 1 ? 30 : 90 - i);
        u32(&m, 0x7f000001u + i);
        rdlen_done(&m, at);
    }
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);
    KT_CHECK_EQ(res.addr_count, 3);
    KT_CHECK_EQ(res.ttl, 30);

    query_srv("example.test", 0);
    answer_start(&m, QR_RD_RA, 1, 0, 3);
    srv_rr(&m, 0, 0, 5222, 60, "xmpp.example.test");
    name(&m, "xmpp1.example.test");
    at = rr(&m, 1, 60);
    u32(&m, 0x0a000001u);
    rdlen_done(&m, at);
    name(&m, "xmpp.example.test.x");
    at = rr(&m, 1, 60);
    u32(&m, 0x0a000002u);
    rdlen_done(&m, at);
    name(&m, "xmpp.example.testx");
    at = rr(&m, 1, 60);
    u32(&m, 0x0a000003u);
    rdlen_done(&m, at);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);
    KT_CHECK_EQ(res.srv_count, 1);
    KT_CHECK_EQ(res.addr_count, 0);
}

/* The dropped counters stop at 255. */
static void test_dropped_saturates(void)
{
    msg_t m;
    size_t at;
    unsigned n = KL_DNS_MAX_SRV + 300;
    query_srv("example.test", 0);
    answer_start(&m, QR_RD_RA, n, 0, 0);
    for (unsigned i = 0; i < n; i++) {
        ptr(&m, 12);
        at = rr(&m, 33, 60);
        u16(&m, i < KL_DNS_MAX_SRV ? 10 : 20); u16(&m, 1); u16(&m, 5222);
        ptr(&m, 30); /* example.test */
        rdlen_done(&m, at);
    }
    KT_CHECK(m.n <= sizeof m.b);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);
    KT_CHECK_EQ(res.srv_count, KL_DNS_MAX_SRV);
    KT_CHECK_EQ(res.srv_dropped, 255);
    for (unsigned k = 0; k < KL_DNS_MAX_SRV; k++)
        KT_CHECK_EQ(res.srv[k].priority, 10);

    n = KL_DNS_MAX_ADDR + 300;
    qlen = kl_dns_query_a(q, sizeof q, ID, "example.test");
    answer_start(&m, QR_RD_RA, n, 0, 0);
    for (unsigned i = 0; i < n; i++) {
        ptr(&m, 12);
        at = rr(&m, 1, 60);
        u32(&m, i);
        rdlen_done(&m, at);
    }
    KT_CHECK(m.n <= sizeof m.b);
    KT_CHECK_EQ(parse(&m, m.n, q, (size_t)qlen, 0, &res), KL_DNS_RECORDS);
    KT_CHECK_EQ(res.addr_count, KL_DNS_MAX_ADDR);
    KT_CHECK_EQ(res.addr_dropped, 255);
}

int main(void)
{
    KT_RUN(test_query_bytes);
    KT_RUN(test_query_bad_names);
    KT_RUN(test_literal_answer);
    KT_RUN(test_priorities_and_weights);
    KT_RUN(test_order_weight_zero);
    KT_RUN(test_more_records_than_slots);
    KT_RUN(test_nxdomain_nodata_dot);
    KT_RUN(test_header_checks);
    KT_RUN(test_a_and_cname);
    KT_RUN(test_compression_loops);
    KT_RUN(test_long_names);
    KT_RUN(test_counts_past_end);
    KT_RUN(test_strerror);
    KT_RUN(test_query_too_small);
    KT_RUN(test_parse_bad_query);
    KT_RUN(test_dot_inside_label);
    KT_RUN(test_ttl_and_glue_names);
    KT_RUN(test_dropped_saturates);
    return kt_summary("dns");
}
