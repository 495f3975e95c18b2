/* kinglet — POSIX port: SRV resolution over UDP with the core DNS codec.
 *
 * Blocking, with a timeout: for the CLI, gateways and tests. Sends the
 * query to one named resolver (never a fallback to another), retries once,
 * and ignores datagrams that are not the answer (wrong source, id or
 * question). A device port does the same over lwIP's UDP without blocking.
 */
#ifndef KINGLET_KL_POSIX_DNS_H
#define KINGLET_KL_POSIX_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "kinglet/kl_dns.h"

/* Resolves _xmpps-client._tcp.DOMAIN (direct_tls != 0) or
 * _xmpp-client._tcp.DOMAIN, type SRV, at the resolver dns_host_port:
 * "IPv4", "IPv4:port", "[IPv6]:port" or "IPv6" (port 53 when omitted).
 * NULL: the first "nameserver" line of /etc/resolv.conf, port 53.
 * timeout_ms bounds the whole call; the query is sent again after half of
 * it. out (caller's) is filled as kl_dns_parse() does, records ordered
 * with a random value from the kernel (kl_posix_compat.h).
 * Returns KL_DNS_RECORDS, KL_DNS_NO_RECORD, KL_DNS_UNAVAILABLE, or
 * KL_ERR_TIMEOUT (no answer in time), KL_ERR_ARG (bad domain or resolver
 * address), KL_ERR_DNS (no resolver in /etc/resolv.conf), KL_ERR_IO
 * (socket), or the codec's errors (KL_ERR_DNS_TRUNCATED, _SERVER, …). */
int kl_posix_resolve_srv(const char *domain, const char *dns_host_port, int direct_tls,
                         uint32_t timeout_ms, kl_dns_srv_result_t *out);

/* One place to try, in order. */
typedef struct kl_posix_candidate {
    char host[KL_DNS_NAME_MAX + 1]; /* SRV target, or the domain itself */
    char ip[16];        /* IPv4 from the answer's additional section, "" if none */
    uint16_t port;
    uint8_t direct_tls; /* 1: TLS from the first byte (XEP-0368); 0: STARTTLS */
    uint8_t from_srv;   /* 0: the fallback (domain, 5222 / 5223) */
    uint32_t ttl;       /* the SRV record's TTL in seconds (0 for the fallback) */
} kl_posix_candidate_t;

/* Enough for every SRV record of both services and both fallbacks. */
#define KL_POSIX_MAX_CANDIDATES (2 * KL_DNS_MAX_SRV + 2)

/* The ordered list of (host, port) candidates for domain:
 *   direct_tls != 0: the _xmpps-client records (direct TLS), then the
 *                    _xmpp-client records (STARTTLS);
 *   direct_tls == 0: the _xmpp-client records.
 * With no record at all (NXDOMAIN / no SRV): (domain, 5223, direct TLS)
 * when direct_tls, then (domain, 5222, STARTTLS). A service whose only
 * target is "." contributes nothing and no fallback either; when nothing
 * is left the result is KL_ERR_DNS_UNAVAILABLE. timeout_ms bounds all the
 * queries together. Returns the number of candidates written to out
 * (cap entries; KL_POSIX_MAX_CANDIDATES always suffice, fewer may give
 * KL_ERR_TOO_LARGE), or a negative status as kl_posix_resolve_srv(). */
int kl_posix_srv_candidates(const char *domain, const char *dns_host_port, int direct_tls,
                            uint32_t timeout_ms, kl_posix_candidate_t *out, size_t cap);

#endif
