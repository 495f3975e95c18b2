/* kinglet — DNS SRV / A codec (RFC 1035, RFC 2782, XEP-0368). Sans-I/O.
 *
 * Builds a query into a caller buffer and parses the answer a port received
 * over UDP; no socket, clock or allocator. The port sends the query bytes,
 * keeps them until the answer arrives (the parser checks the answer's id and
 * question against them) and hands both to kl_dns_parse().
 *
 *   n = kl_dns_query_srv(q, sizeof q, id, direct_tls, "example.org");
 *   ... send q[0..n), receive r[0..m) ...
 *   st = kl_dns_parse(r, m, q, n, random32, &res);
 *   st == KL_DNS_RECORDS:     res.srv[0..srv_count) in the order to try
 *   st == KL_DNS_NO_RECORD:   NXDOMAIN or no SRV: fall back to (domain, 5222)
 *   st == KL_DNS_UNAVAILABLE: the only target is "." (RFC 2782: the service
 *                             is decidedly not available at this domain)
 *   st == KL_ERR_DNS_MISMATCH: not the answer to this query: keep waiting
 *   st < 0 otherwise:         a named error (kl_strerror)
 *
 * Messages are plain RFC 1035 (no EDNS0): a query is at most
 * KL_DNS_QUERY_MAX bytes, an answer over UDP at most 512. An answer with
 * the TC bit is KL_ERR_DNS_TRUNCATED (DNS over TCP is not implemented).
 */
#ifndef KINGLET_KL_DNS_H
#define KINGLET_KL_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "kinglet/kl_config_defaults.h"
#include "kinglet/kl_status.h"

#define KL_DNS_TYPE_A 1u
#define KL_DNS_TYPE_SRV 33u

/* Largest query kl_dns_query_*() writes: header, a 255-byte name, type, class. */
#define KL_DNS_QUERY_MAX (12 + 255 + 4)
/* Largest answer over UDP without EDNS0 (RFC 1035 §4.2.1). */
#define KL_DNS_UDP_MAX 512

/* Non-negative results of kl_dns_parse(). */
enum kl_dns_answer {
    KL_DNS_RECORDS = 0,     /* at least one usable record */
    KL_DNS_NO_RECORD = 1,   /* NXDOMAIN, or the name has no record of this type */
    KL_DNS_UNAVAILABLE = 2  /* SRV: only "." targets, service decidedly not available */
};

/* One SRV record (RFC 2782). target: the host name in text form, no
 * trailing dot, NUL-terminated; never "." (such records are not stored). */
typedef struct kl_dns_srv {
    uint32_t ttl;
    uint16_t priority;
    uint16_t weight;
    uint16_t port;
    char target[KL_DNS_NAME_MAX + 1];
} kl_dns_srv_t;

/* addr[].srv for an address of the queried name itself (answer to an A query). */
#define KL_DNS_ADDR_QNAME 0xFFu

/* One IPv4 address: from the answer to an A query, or from the additional
 * section of an SRV answer (glue for srv[srv].target, saving a query). */
typedef struct kl_dns_addr {
    uint32_t ttl;
    uint8_t ip[4];   /* network order: 127.0.0.1 is {127, 0, 0, 1} */
    uint8_t srv;     /* index into srv[] (after ordering) or KL_DNS_ADDR_QNAME */
} kl_dns_addr_t;

/* What kl_dns_parse() extracts. Plain data: copy it, persist it. */
typedef struct kl_dns_srv_result {
    /* Lowest TTL of the records kept; for KL_DNS_NO_RECORD the negative-
     * caching TTL from the SOA in the authority section (RFC 2308), 0 if none. */
    uint32_t ttl;
    uint8_t srv_count;
    uint8_t addr_count;
    /* Records that did not fit KL_DNS_MAX_SRV / KL_DNS_MAX_ADDR. For SRV the
     * highest priority numbers (least preferred) are the ones dropped. */
    uint8_t srv_dropped;
    uint8_t addr_dropped;
    kl_dns_srv_t srv[KL_DNS_MAX_SRV];
    kl_dns_addr_t addr[KL_DNS_MAX_ADDR];
} kl_dns_srv_result_t;

/* Writes a standard recursive query (RD set, class IN) for
 * "_xmpps-client._tcp.DOMAIN" (direct_tls != 0, XEP-0368) or
 * "_xmpp-client._tcp.DOMAIN", type SRV, with the given id into buf.
 * domain: text form, an optional trailing dot; labels 1..63 bytes, no
 * spaces or control bytes. Returns the query length (> 0) or
 * KL_ERR_ARG, KL_ERR_DNS_NAME (bad or too long name), KL_ERR_TOO_LARGE (cap).
 * The caller keeps buf[0..len) for kl_dns_parse(). */
int kl_dns_query_srv(uint8_t *buf, size_t cap, uint16_t id, int direct_tls, const char *domain);

/* The same for an A query of host (the fallback when there is no SRV). */
int kl_dns_query_a(uint8_t *buf, size_t cap, uint16_t id, const char *host);

/* Parses resp, the answer to query (the bytes kl_dns_query_*() wrote).
 * Checks the id, QR, opcode, RCODE and the echoed question; follows CNAMEs
 * from the question name; extracts SRV (SRV query) or A (A query) records
 * of class IN, and A records for SRV targets from the additional section.
 * SRV records are ordered per RFC 2782 with kl_dns_srv_order(rnd).
 * Returns KL_DNS_RECORDS, KL_DNS_NO_RECORD, KL_DNS_UNAVAILABLE, or
 *   KL_ERR_DNS_MISMATCH   not an answer to this query (id, QR, opcode, question)
 *   KL_ERR_DNS_TRUNCATED  TC bit set
 *   KL_ERR_DNS_SERVER     RCODE other than NOERROR/NXDOMAIN (SERVFAIL, REFUSED…)
 *   KL_ERR_DNS_FORMAT     malformed: a length or count runs past the message
 *   KL_ERR_DNS_NAME       a name over 255 bytes, a bad label, or an SRV target
 *                         longer than KL_DNS_NAME_MAX
 *   KL_ERR_DNS_LOOP       more than KL_DNS_MAX_HOPS compression pointers in a name
 *   KL_ERR_ARG
 * out is zeroed first and valid only for the non-negative results. Nothing
 * points into resp or query afterwards. */
int kl_dns_parse(const uint8_t *resp, size_t resp_len, const uint8_t *query, size_t query_len,
                 uint32_t rnd, kl_dns_srv_result_t *out);

/* Orders n records in place per RFC 2782: priority ascending; within a
 * priority a weighted random order, drawn from a generator seeded with rnd
 * (same rnd, same order). Weight-0 records come first in each draw's
 * candidate list, so they are chosen only when the draw is 0. */
void kl_dns_srv_order(kl_dns_srv_t *srv, size_t n, uint32_t rnd);

#endif
