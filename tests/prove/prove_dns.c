/* kinglet — EVA driver: the DNS codec (core/kl_dns.c), see README.md. A
 * datagram arrives whole, so there is no chunking. Parts (PROVE_PARTS, a
 * bit set; the default runs all four):
 *   1: answers of every length 0..PROVE_HEAD (12 + 2N) with every byte
 *      value (header checks, the echoed question's name, compression
 *      pointers and labels on unknown bytes), to an SRV and to an A query;
 *   2: answers that echo the query's id and question, with any flags and
 *      0..3 records in each section, followed by every tail of 0..N bytes
 *      of every value (the record walk on attacker-controlled bytes);
 *   4: queries built from every domain text of 0..PROVE_DOMAIN (N + 2)
 *      bytes (any but NUL), SRV (both services) and A, any id, into every
 *      capacity 0..KL_DNS_QUERY_MAX;
 *   8: records of every shape (below); every RDLENGTH at the full size
 *      (N >= 2) only; pointers to every offset in prove_dnsptr.c.
 * Options (prove.sh OPTS[dns]): -eva-split-return auto (the walker's
 * return states kept apart: it sets its label only when it returns 1),
 * slevel 100 in the codec (its bounds hold through joined states: every
 * read is bounded by a variable the check right before it reduced) and a
 * large slevel in the driver's own functions, whose loops enumerate the
 * cases. No annotation in core/. */
#include "__fc_builtin.h"

#include "kinglet/kl_dns.h"

/* Records part after an echoed question: 0..PROVE_N bytes. */
#ifndef PROVE_N
#define PROVE_N 1
#endif
#define PROVE_TAIL PROVE_N
/* Whole answers of unknown bytes: 0..PROVE_HEAD bytes. */
#ifndef PROVE_HEAD
#define PROVE_HEAD (12 + 2 * PROVE_N)
#endif
#ifndef PROVE_DOMAIN
#define PROVE_DOMAIN (PROVE_N + 2)
#endif

/* kl_dns_parse on the len bytes that end at end: one call site per
 * length (EVA analyses each call site apart), so the states of messages of
 * different lengths are never joined, which would lose the relation
 * between the message's start and its length that every bound check
 * uses. Lengths 0..95. */
#define PARSE_CASE(L) \
    case L: return kl_dns_parse(end - (L), (L), q, qlen, rnd, out);
#define PARSE_CASE8(B) \
    PARSE_CASE(B) PARSE_CASE(B + 1) PARSE_CASE(B + 2) PARSE_CASE(B + 3) \
    PARSE_CASE(B + 4) PARSE_CASE(B + 5) PARSE_CASE(B + 6) PARSE_CASE(B + 7)
static int parse_len(const uint8_t *end, size_t len, const uint8_t *q, size_t qlen, uint32_t rnd,
                     kl_dns_srv_result_t *out)
{
    /* end is always a constant (the end of its array), len the only
     * variable: no merge of the caller's states can unlink them */
    switch (len) {
        PARSE_CASE8(0) PARSE_CASE8(8) PARSE_CASE8(16) PARSE_CASE8(24)
        PARSE_CASE8(32) PARSE_CASE8(40) PARSE_CASE8(48) PARSE_CASE8(56)
        PARSE_CASE8(64) PARSE_CASE8(72) PARSE_CASE8(80) PARSE_CASE8(88)
    default: /* longer: one call site for all (none is, in this driver) */
        return kl_dns_parse(end - len, len, q, qlen, rnd, out);
    }
}

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
    st = parse_len(resp + PROVE_HEAD, len, query, qlen, rnd, &res);
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
    st = parse_len(echo + sizeof echo, len, query, qlen, rnd, &res);
    if (st == KL_DNS_RECORDS)
        Frama_C_show_each_echo_records(res.srv_count, res.addr_count);
    else if (st >= 0)
        Frama_C_show_each_echo_norecord(st);
    else
        Frama_C_show_each_echo_err(st);
    //@ merge tail;
}

/* The longest query query_all builds: header, "_xmpps-client._tcp",
 * the domain's labels, root, type and class. */
#define QUERY_LONGEST (12 + 19 + PROVE_DOMAIN + 1 + 1 + 4)

/* Every domain text of length 0..PROVE_DOMAIN (any bytes but NUL), any
 * id, both SRV services and the A query, into a buffer of capacity cap. */
static void query_cap(size_t cap)
{
    size_t dlen = Frama_C_size_t_interval(0, PROVE_DOMAIN);
    uint16_t id = Frama_C_unsigned_short_interval(0, 0xFFFF);
    uint8_t *buf = qbuf + (sizeof qbuf - cap);
    int n;
    for (size_t i = 0; i < PROVE_DOMAIN; i++)
        /* 1..127 or -128..-1 as two states: one interval would hold NUL */
        domain[i] = (char)(Frama_C_interval(0, 1) ? Frama_C_interval(1, 127) : Frama_C_interval(-128, -1));
    //@ split dlen;
    domain[dlen] = 0;
    for (int tls = 0; tls <= 1; tls++) {
        n = kl_dns_query_srv(buf, cap, id, tls, domain);
        if (n > 0)
            Frama_C_show_each_query_ok(n);
        else
            Frama_C_show_each_query_err(n);
    }
    n = kl_dns_query_a(buf, cap, id, domain);
    if (n > 0)
        Frama_C_show_each_query_ok(n);
    //@ merge dlen;
}

/* Every capacity 0..KL_DNS_QUERY_MAX: up to the longest query (+1) one by
 * one, so the buffer's start and its capacity stay related; every larger
 * one as one state, where no write comes near the end. */
static void query_all(void)
{
    for (size_t cap = 0; cap <= QUERY_LONGEST + 1; cap++)
        query_cap(cap);
    query_cap(Frama_C_size_t_interval(QUERY_LONGEST + 2, sizeof qbuf));
}

/* ---- records of every shape ------------------------------------------
 * Records of every shape the parser tells apart, after an echoed question
 * (the query is built here with the one-label name "a" and type SRV or A:
 * kl_dns_parse takes any query, and a short name keeps the proof fast).
 * One record, in each of the three sections, made of
 *   - an owner name of every form (below);
 *   - a type that is each of A, SRV, CNAME, SOA and TXT (one the parser
 *     skips), and class IN or not (EVA keeps each apart where the parser
 *     tests it), any TTL;
 *   - RDATA of every layout the parser reads: 4 unknown bytes (A); 6
 *     unknown bytes then a name (SRV); a name (CNAME); a name, the root
 *     and 20 unknown bytes (SOA); every name form in each, and each layout
 *     read as every type;
 *   - the exact RDLENGTH, or (owner a pointer to the question) every
 *     RDLENGTH 0..65535;
 * and the chains the parser links: a CNAME then a record for its target,
 * an SRV then an additional A for its target.
 * Name forms: a pointer to the question; a pointer to every offset
 * (N_PTR, below); a pointer with any offset of 256 and up; a label of 1 or
 * 2 unknown bytes then the root; the root.
 * N_PTR takes, one by one, every offset that holds a byte the driver chose
 * (header, question, type, class, RDLENGTH, length and pointer bytes) and
 * every offset past the message's end (those up to 255 as one state). A
 * pointer onto an unknown byte (a label's text, a TTL, an address) is not
 * in this part: EVA would read that byte as a label length of any size and
 * lose the walker's position; the tail part above has pointers onto
 * unknown bytes, at its size. One N_PTR per message. */

static uint8_t sq[12 + 3 + 4];  /* the query: "a", type SRV or A */
static uint8_t sm[96];          /* the message being built */
static uint8_t known[96];       /* 1: sm[i] is a byte the driver chose */
static uint8_t msg[96];         /* the message, moved to the end of msg[] */
static size_t sm_len;
static size_t ptr_pos;          /* where N_PTR's offset byte is, 0: none */
static size_t rdlen_pos;        /* where the RDLENGTH to vary is, 0: none */

static void put(uint8_t b)
{
    known[sm_len] = 1;
    sm[sm_len++] = b;
}

static void put_unknown(size_t n)
{
    Frama_C_make_unknown((char *)sm + sm_len, n);
    for (size_t i = 0; i < n; i++)
        known[sm_len++] = 0;
}

enum { N_QPTR, N_PTR, N_FAR, N_LABEL1, N_LABEL2, N_ROOT, N_FORMS };

static void put_name(int form)
{
    switch (form) {
    case N_QPTR:
        put(0xC0);
        put(12);
        break;
    case N_PTR:
        put(0xC0);
        ptr_pos = sm_len;
        put(0);
        break;
    case N_FAR:
        put_unknown(2);
        sm[sm_len - 2] = (uint8_t)Frama_C_unsigned_int_interval(0xC1, 0xFF);
        break;
    case N_LABEL1:
    case N_LABEL2:
        put((uint8_t)(form == N_LABEL1 ? 1 : 2));
        put_unknown(form == N_LABEL1 ? 1 : 2);
        put(0);
        break;
    default:
        put(0);
        break;
    }
}

/* RDATA layouts, each with its type: A, SRV, CNAME, SOA, and TXT (a type
 * the parser skips). */
enum { L_ADDR, L_SRV, L_NAME, L_SOA, L_OTHER, L_LAYOUTS };
static const unsigned types[L_LAYOUTS] = {1, 33, 5, 6, 16};

/* A record of the layout's type, class IN or not. */
static void put_record(int owner, int layout, int rname)
{
    size_t at;
    put_name(owner);
    put(0);
    put((uint8_t)types[layout]);
    put(0);
    put((uint8_t)Frama_C_nondet(1, 3));
    put_unknown(4); /* TTL */
    at = sm_len;
    put(0);
    put(0);
    switch (layout) {
    case L_ADDR:
        put_unknown(4);
        break;
    case L_SRV:
        put_unknown(6);
        put_name(rname);
        break;
    case L_NAME:
        put_name(rname);
        break;
    case L_SOA:
        put_name(rname);
        put_name(N_ROOT);
        put_unknown(20);
        break;
    default:
        put_unknown(2);
        break;
    }
    sm[at] = (uint8_t)((sm_len - at - 2) >> 8);
    sm[at + 1] = (uint8_t)(sm_len - at - 2);
    rdlen_pos = at;
}

/* The echoed question with valid flags (RCODE 0 or NXDOMAIN) and the
 * given counts. */
static void put_echo(int an, int ns, int ar)
{
    sm_len = 0;
    ptr_pos = 0;
    for (size_t i = 0; i < sizeof sq; i++)
        put(sq[i]);
    sm[2] = 0x81;
    sm[3] = (uint8_t)Frama_C_nondet(0x80, 0x83);
    sm[7] = (uint8_t)an;
    sm[9] = (uint8_t)ns;
    sm[11] = (uint8_t)ar;
}

static void parse_built(void)
{
    uint32_t rnd = Frama_C_unsigned_int_interval(0, 0xFFFFFFFFu);
    uint8_t *m = msg + (sizeof msg - sm_len);
    int st;
    for (size_t i = 0; i < sm_len; i++)
        m[i] = sm[i];
    st = parse_len(msg + sizeof msg, sm_len, sq, sizeof sq, rnd, &res);
    if (st == KL_DNS_RECORDS)
        Frama_C_show_each_shape_records(res.srv_count, res.addr_count);
    else if (st >= 0)
        Frama_C_show_each_shape_norecord(st);
    else
        Frama_C_show_each_shape_err(st);
}

/* parse_built from one call site per RDLENGTH variant v (0..31): the
 * variants' RDATA ends differ, and joined they would lose each end's link
 * with the message's length (the same reason as parse_len). */
#define PB_CASE(V) \
    case V: parse_built(); break;
#define PB_CASE8(B) \
    PB_CASE(B) PB_CASE(B + 1) PB_CASE(B + 2) PB_CASE(B + 3) \
    PB_CASE(B + 4) PB_CASE(B + 5) PB_CASE(B + 6) PB_CASE(B + 7)
static void parse_built_at(size_t v)
{
    switch (v) {
        PB_CASE8(0) PB_CASE8(8) PB_CASE8(16) PB_CASE8(24)
    default:
        parse_built();
        break;
    }
}

/* Parses the built message for every N_PTR offset, or every RDLENGTH of
 * the last record (any): values that can matter one by one (loop
 * iterations EVA keeps apart), the rest of the range as one state. */
static void parse_variants(int any)
{
    if (ptr_pos) {
        for (size_t k = 0; k <= sm_len + 1; k++)
            if (k >= sm_len || known[k]) {
                sm[ptr_pos] = (uint8_t)k;
                parse_built();
            }
        sm[ptr_pos] = (uint8_t)Frama_C_unsigned_int_interval((unsigned)sm_len + 2, 255);
        parse_built();
    } else if (any) {
        size_t room = sm_len - rdlen_pos - 2;
        for (size_t v = 0; v <= room + 1; v++) {
            sm[rdlen_pos] = 0;
            sm[rdlen_pos + 1] = (uint8_t)v;
            parse_built_at(v);
        }
        {
            unsigned v = Frama_C_unsigned_int_interval((unsigned)room + 2, 0xFFFF);
            sm[rdlen_pos] = (uint8_t)(v >> 8);
            sm[rdlen_pos + 1] = (uint8_t)v;
        }
        parse_built();
    } else {
        parse_built();
    }
}

static void shapes(unsigned qtype)
{
    static const uint8_t q[12 + 3] = {0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0};
    for (size_t i = 0; i < sizeof q; i++)
        sq[i] = q[i];
    sq[15] = 0;
    sq[16] = (uint8_t)qtype;
    sq[17] = 0;
    sq[18] = 1;
/* Every RDLENGTH (SH_ANY): at the full size (N >= 2) only. Pointers to
 * every offset (SH_PTR): in prove_dnsptr.c, which runs this part alone
 * with them (and without SH_ANY, whose joined RDATA ends need name_text
 * at a large slevel, too slow with them), in the answer section and the
 * chains, to an SRV query (each such message is parsed some 60 times). */
#ifndef SH_ANY
#define SH_ANY (PROVE_N >= 2)
#endif
#ifndef SH_PTR
#define SH_PTR 0
#endif
#ifndef SH_ONLY_PTR /* prove_dnsptr.c: only the messages with such a pointer */
#define SH_ONLY_PTR 0
#endif
    for (int sec = 0; sec < 3; sec++)
        for (int owner = 0; owner < N_FORMS; owner++)
            for (int layout = 0; layout < L_LAYOUTS; layout++)
                for (int rname = 0; rname < (layout == L_ADDR || layout == L_OTHER ? 1 : N_FORMS); rname++) {
                    if (owner == N_PTR && rname == N_PTR)
                        continue; /* one N_PTR per message */
                    if ((owner == N_PTR || rname == N_PTR) && !(SH_PTR && sec == 0 && qtype == KL_DNS_TYPE_SRV))
                        continue; /* see SH_PTR */
                    if (SH_ONLY_PTR && owner != N_PTR && rname != N_PTR)
                        continue;
                    for (int any = 0; any <= (SH_ANY && owner == N_QPTR && rname != N_PTR); any++) {
                        put_echo(sec == 0, sec == 1, sec == 2);
                        put_record(owner, layout, rname);
                        parse_variants(any);
                    }
                }
    for (int owner = 0; owner < N_FORMS; owner++) {
        if (owner == N_PTR && !(SH_PTR && qtype == KL_DNS_TYPE_SRV))
            continue;
        if (SH_ONLY_PTR && owner != N_PTR)
            continue;
        /* CNAME "x" for the question, then a record (every type) */
        for (int layout = 0; layout < L_LAYOUTS; layout++) {
            put_echo(2, 0, 0);
            put_record(N_QPTR, L_NAME, N_LABEL1);
            put_record(owner, layout, N_LABEL1);
            parse_variants(0);
        }
        /* SRV to "x", then an additional record (every type) */
        put_echo(1, 0, 1);
        put_record(N_QPTR, L_SRV, N_LABEL1);
        put_record(owner, L_ADDR, 0);
        parse_variants(0);
    }
}

#ifndef PROVE_PARTS
#define PROVE_PARTS 15
#endif
int main(void)
{
    int qlen;
    Frama_C_make_unknown((char *)resp, sizeof resp);
    qlen = kl_dns_query_srv(query, sizeof query, 0xBEEF, 0, "a.b");
    if (PROVE_PARTS & 1) parse_all((size_t)qlen);
    if (PROVE_PARTS & 2) parse_echo((size_t)qlen);
    qlen = kl_dns_query_a(query, sizeof query, 0xBEEF, "a");
    if (PROVE_PARTS & 1) parse_all((size_t)qlen);
    if (PROVE_PARTS & 2) parse_echo((size_t)qlen);
    if (PROVE_PARTS & 4) query_all();
    if (PROVE_PARTS & 8) {
        shapes(KL_DNS_TYPE_SRV);
        shapes(KL_DNS_TYPE_A);
    }
    Frama_C_show_each_done(0);
    return 0;
}
