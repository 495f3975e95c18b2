/* kinglet — DRAFT, not yet 0 alarms (README.md "Not yet proved"). EVA driver: the DNS codec (core/kl_dns.c), see README.md. A
 * datagram arrives whole, so there is no chunking:
 *   - answers of every length 0..PROVE_HEAD with every byte value (the
 *     header checks), to an SRV and to an A query;
 *   - answers that echo the query's id and question, with any flags and
 *     0..3 records in each section, followed by 0..PROVE_N bytes of every
 *     value: the record parsers (names, compression pointers, SRV, A,
 *     CNAME, SOA) on attacker-controlled bytes;
 *   - queries built from every domain text of length 0..PROVE_DOMAIN (any
 *     bytes but NUL) into every capacity.
 * Run with -eva-split-return auto: the name walker returns a label only
 * with 1, and EVA keeps that state apart from the end/error ones (with it,
 * N=1 has 0 alarms in 1 s; N=2 still has 36 alarms, in the A query's echo:
 * name_eq/name_text/take_srv on merged walker states). */
#include "__fc_builtin.h"

#include "kinglet/kl_dns.h"

/* Records part after an echoed question: 0..PROVE_N bytes. */
#ifndef PROVE_N
#define PROVE_N 8
#endif
#define PROVE_TAIL PROVE_N
/* Whole answers of unknown bytes: 0..PROVE_HEAD bytes. */
#ifndef PROVE_HEAD
#define PROVE_HEAD 14
#endif
#ifndef PROVE_DOMAIN
#define PROVE_DOMAIN 4
#endif

/* The answer is the last len bytes of resp[]: a read past its end leaves it. */
static uint8_t resp[PROVE_HEAD];
static uint8_t query[KL_DNS_QUERY_MAX];
static kl_dns_srv_result_t res;
static char domain[PROVE_DOMAIN + 1];
static uint8_t qbuf[KL_DNS_QUERY_MAX];

/* kl_dns_parse on every answer of length 0..PROVE_HEAD to the query q[0..qlen). */
static void parse_all(size_t qlen)
{
    size_t len = Frama_C_size_t_interval(0, PROVE_HEAD);
    uint32_t rnd = Frama_C_unsigned_int_interval(0, 0xFFFFFFFFu);
    int st;
    //@ split len;
    st = kl_dns_parse(resp + (PROVE_HEAD - len), len, query, qlen, rnd, &res);
    if (st == KL_DNS_RECORDS)
        Frama_C_show_each_records(res.srv_count, res.addr_count);
    else if (st >= 0)
        Frama_C_show_each_norecord(st);
    else
        Frama_C_show_each_err(st);
    //@ merge len;
}

/* Every answer that echoes the header id and the question of q[0..qlen),
 * with any flags and counts, followed by every records part of length
 * 0..PROVE_TAIL = PROVE_N bytes of every value (the record parsers). */
static uint8_t echo[KL_DNS_QUERY_MAX + PROVE_TAIL];
static void parse_echo(size_t qlen)
{
    size_t tail = Frama_C_size_t_interval(0, PROVE_TAIL);
    uint32_t rnd = Frama_C_unsigned_int_interval(0, 0xFFFFFFFFu);
    size_t len, i;
    uint8_t *m;
    int st;
    //@ split tail;
    len = qlen + tail;
    m = echo + (sizeof echo - len);
    for (i = 0; i < qlen; i++)
        m[i] = query[i];
    Frama_C_make_unknown((char *)m + 2, 2);  /* flags */
    for (i = 6; i < 12; i++)                 /* an, ns, ar: 0..3 records each */
        m[i] = (uint8_t)(i & 1 ? Frama_C_interval(0, 3) : 0);
    Frama_C_make_unknown((char *)m + qlen, tail);
    st = kl_dns_parse(m, len, query, qlen, rnd, &res);
    if (st == KL_DNS_RECORDS)
        Frama_C_show_each_echo_records(res.srv_count, res.addr_count);
    else if (st >= 0)
        Frama_C_show_each_echo_norecord(st);
    else
        Frama_C_show_each_echo_err(st);
    //@ merge tail;
}

/* Every domain text of length 0..PROVE_DOMAIN (any bytes but NUL), any
 * id, into a buffer of any capacity 0..KL_DNS_QUERY_MAX. */
static void query_all(void)
{
    size_t dlen = Frama_C_size_t_interval(0, PROVE_DOMAIN);
    size_t cap = Frama_C_size_t_interval(0, sizeof qbuf);
    uint16_t id = Frama_C_unsigned_short_interval(0, 0xFFFF);
    int tls = Frama_C_interval(0, 1);
    int n;
    for (size_t i = 0; i < PROVE_DOMAIN; i++)
        /* 1..127 or -128..-1 as two states: one interval would hold NUL */
        domain[i] = (char)(Frama_C_interval(0, 1) ? Frama_C_interval(1, 127) : Frama_C_interval(-128, -1));
    //@ split dlen;
    domain[dlen] = 0;
    n = kl_dns_query_srv(qbuf + (sizeof qbuf - cap), cap, id, tls, domain);
    if (n > 0)
        Frama_C_show_each_query_ok(n);
    else
        Frama_C_show_each_query_err(n);
    n = kl_dns_query_a(qbuf + (sizeof qbuf - cap), cap, id, domain);
    if (n > 0)
        Frama_C_show_each_query_ok(n);
    //@ merge dlen;
}

int main(void)
{
    int qlen;
    Frama_C_make_unknown((char *)resp, sizeof resp);
    qlen = kl_dns_query_srv(query, sizeof query, 0xBEEF, 0, "a.b");
    parse_all((size_t)qlen);
    parse_echo((size_t)qlen);
    qlen = kl_dns_query_a(query, sizeof query, 0xBEEF, "a");
    parse_all((size_t)qlen);
    parse_echo((size_t)qlen);
    query_all();
    Frama_C_show_each_done(0);
    return 0;
}
