/* libFuzzer target for the DNS codec (core/kl_dns.c).
 *
 * Input: one mode byte (bit 0: _xmpps-client, bit 1: an A query instead of
 * SRV), four bytes of the ordering random value, then the answer. The query
 * is for example.test with id 0xBEEF, so seeds that echo it reach the
 * record parsers. Checked: the result is a known value or a named error;
 * counts, names and indices stay in bounds; SRV records come out in
 * priority order; the same input and random value give the same result;
 * every prefix of a successful answer is handled too (a named error, or a
 * success when only ignored trailing bytes were cut).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinglet/kl_dns.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static int named(int st)
{
    return st < 0 && strcmp(kl_strerror(st), "unknown error") != 0;
}

static void check_result(int st, const kl_dns_srv_result_t *r)
{
    CHECK(st == KL_DNS_RECORDS || st == KL_DNS_NO_RECORD || st == KL_DNS_UNAVAILABLE || named(st));
    CHECK(r->srv_count <= KL_DNS_MAX_SRV && r->addr_count <= KL_DNS_MAX_ADDR);
    if (st != KL_DNS_RECORDS)
        CHECK(r->srv_count == 0 && r->addr_count == 0);
    for (unsigned i = 0; i < r->srv_count; i++) {
        size_t n = strnlen(r->srv[i].target, sizeof r->srv[i].target);
        CHECK(n > 0 && n <= KL_DNS_NAME_MAX);
        CHECK(r->srv[i].ttl <= 0x7fffffffu);
        if (i)
            CHECK(r->srv[i - 1].priority <= r->srv[i].priority);
    }
    for (unsigned i = 0; i < r->addr_count; i++)
        CHECK(r->addr[i].srv == KL_DNS_ADDR_QNAME || r->addr[i].srv < r->srv_count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kl_dns_srv_result_t r1, r2;
    uint8_t q[KL_DNS_QUERY_MAX];
    uint32_t rnd;
    int qlen, st, st2;

    if (size < 5)
        return 0;
    if (data[0] & 2)
        qlen = kl_dns_query_a(q, sizeof q, 0xBEEF, "example.test");
    else
        qlen = kl_dns_query_srv(q, sizeof q, 0xBEEF, data[0] & 1, "example.test");
    CHECK(qlen > 0);
    rnd = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 | data[4];
    data += 5;
    size -= 5;

    /* Own copy, exactly sized: ASan sees any read past the answer. */
    uint8_t *m = malloc(size ? size : 1);
    memcpy(m, data, size);
    st = kl_dns_parse(m, size, q, (size_t)qlen, rnd, &r1);
    check_result(st, &r1);
    st2 = kl_dns_parse(m, size, q, (size_t)qlen, rnd, &r2);
    CHECK(st == st2 && memcmp(&r1, &r2, sizeof r1) == 0);
    if (st >= 0 && size <= 600) {
        for (size_t len = 0; len < size; len++)
            check_result(kl_dns_parse(m, len, q, (size_t)qlen, rnd, &r2), &r2);
    }
    free(m);
    return 0;
}
