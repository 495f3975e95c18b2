/* dns_client [--direct] [--srv] [--timeout MS] DOMAIN RESOLVER
 *
 * Resolves DOMAIN through kl_posix_srv_candidates() at RESOLVER
 * ("127.0.0.1:5353") and prints one line per candidate:
 *   candidate HOST PORT direct|starttls srv|fallback [IP]
 * With --srv, prints kl_posix_resolve_srv()'s raw result instead:
 *   status N
 *   srv PRIORITY WEIGHT PORT TTL TARGET
 *   addr IP TTL SRVINDEX
 * Errors: "error CODE NAME: text" on stdout and exit 1. Last line always
 * "elapsed_ms N".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_posix_dns.h"

static const char *code_name(int st)
{
    switch (st) {
    case KL_ERR_TIMEOUT: return "KL_ERR_TIMEOUT";
    case KL_ERR_DNS_UNAVAILABLE: return "KL_ERR_DNS_UNAVAILABLE";
    case KL_ERR_ARG: return "KL_ERR_ARG";
    case KL_ERR_IO: return "KL_ERR_IO";
    case KL_ERR_DNS_SERVER: return "KL_ERR_DNS_SERVER";
    case KL_ERR_DNS_TRUNCATED: return "KL_ERR_DNS_TRUNCATED";
    default: return "other";
    }
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000L + (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

int main(int argc, char **argv)
{
    int direct = 0, raw = 0, i = 1, st;
    unsigned long timeout = 2000;
    struct timespec t0;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--direct"))
            direct = 1;
        else if (!strcmp(argv[i], "--srv"))
            raw = 1;
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout = strtoul(argv[++i], NULL, 10);
        else
            break;
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: %s [--direct] [--srv] [--timeout MS] DOMAIN RESOLVER\n", argv[0]);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (raw) {
        kl_dns_srv_result_t r;
        st = kl_posix_resolve_srv(argv[i], argv[i + 1], direct, (uint32_t)timeout, &r);
        if (st >= 0) {
            printf("status %d\n", st);
            for (unsigned k = 0; k < r.srv_count; k++)
                printf("srv %u %u %u %u %s\n", r.srv[k].priority, r.srv[k].weight, r.srv[k].port,
                       (unsigned)r.srv[k].ttl, r.srv[k].target);
            for (unsigned k = 0; k < r.addr_count; k++)
                printf("addr %u.%u.%u.%u %u %u\n", r.addr[k].ip[0], r.addr[k].ip[1], r.addr[k].ip[2],
                       r.addr[k].ip[3], (unsigned)r.addr[k].ttl, r.addr[k].srv);
            printf("ttl %u\n", (unsigned)r.ttl);
        }
    } else {
        kl_posix_candidate_t c[KL_POSIX_MAX_CANDIDATES];
        st = kl_posix_srv_candidates(argv[i], argv[i + 1], direct, (uint32_t)timeout, c,
                                     KL_POSIX_MAX_CANDIDATES);
        for (int k = 0; k < st; k++)
            printf("candidate %s %u %s %s%s%s\n", c[k].host, c[k].port,
                   c[k].direct_tls ? "direct" : "starttls", c[k].from_srv ? "srv" : "fallback",
                   c[k].ip[0] ? " " : "", c[k].ip);
    }
    if (st < 0)
        printf("error %d %s: %s\n", st, code_name(st), kl_strerror(st));
    printf("elapsed_ms %ld\n", ms_since(&t0));
    return st < 0;
}
