/* kinglet — POSIX port: SRV resolution over UDP. See kl_posix_dns.h. */
#include "kl_posix_compat.h" /* first: feature macros, the systems' differences */
#include "kl_posix_dns.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t random32(void)
{
    uint32_t r = 0;
    if (kl_posix_entropy((uint8_t *)&r, sizeof r) != 0)
        r = (uint32_t)now_ms() * 2654435761u ^ (uint32_t)getpid();
    return r;
}

/* "1.2.3.4", "1.2.3.4:53", "[::1]:53", "::1" -> address; port 53 if none. */
static int parse_server(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *port = NULL, *colon = strchr(spec, ':');
    size_t hl;
    unsigned long pn = 53;

    if (spec[0] == '[') {
        const char *rb = strchr(spec, ']');
        if (!rb || (rb[1] != 0 && rb[1] != ':'))
            return KL_ERR_ARG;
        hl = (size_t)(rb - spec - 1);
        spec++;
        if (rb[1] == ':')
            port = rb + 2;
    } else if (colon && !strchr(colon + 1, ':')) {
        hl = (size_t)(colon - spec);
        port = colon + 1;
    } else {
        hl = strlen(spec);
    }
    if (hl == 0 || hl >= sizeof host)
        return KL_ERR_ARG;
    memcpy(host, spec, hl);
    host[hl] = 0;
    if (port) {
        char *end;
        errno = 0;
        pn = strtoul(port, &end, 10);
        if (errno || *port == 0 || *end != 0 || pn == 0 || pn > 65535)
            return KL_ERR_ARG;
    }
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)pn);
        *len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)pn);
        *len = sizeof *a6;
    } else {
        return KL_ERR_ARG;
    }
    return KL_OK;
}

/* First "nameserver ADDR" of /etc/resolv.conf. */
static int system_server(char *out, size_t cap)
{
    char line[256];
    FILE *f = fopen("/etc/resolv.conf", "r");
    int st = KL_ERR_DNS;

    if (!f)
        return KL_ERR_DNS;
    while (fgets(line, sizeof line, f)) {
        char addr[64];
        if (sscanf(line, " nameserver %63s", addr) == 1) {
            /* bare IPv6 (no port), possibly with a %scope we cannot use */
            char *pct = strchr(addr, '%');
            if (pct)
                *pct = 0;
            if (strlen(addr) + 1 <= cap) {
                memcpy(out, addr, strlen(addr) + 1);
                st = KL_OK;
            }
            break;
        }
    }
    fclose(f);
    return st;
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

int kl_posix_resolve_srv(const char *domain, const char *dns_host_port, int direct_tls,
                         uint32_t timeout_ms, kl_dns_srv_result_t *out)
{
    struct sockaddr_storage server;
    socklen_t slen;
    uint8_t q[KL_DNS_QUERY_MAX], r[1500];
    char sys[64];
    uint64_t start = now_ms();
    int qlen, st, fd;

    if (!domain || !out || timeout_ms == 0)
        return KL_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (!dns_host_port) {
        if ((st = system_server(sys, sizeof sys)) < 0)
            return st;
        dns_host_port = sys;
    }
    if ((st = parse_server(dns_host_port, &server, &slen)) < 0)
        return st;
    qlen = kl_dns_query_srv(q, sizeof q, (uint16_t)random32(), direct_tls, domain);
    if (qlen < 0)
        return qlen == KL_ERR_DNS_NAME ? KL_ERR_ARG : qlen;

    /* Not connect()ed: an ICMP "port unreachable" must not end the wait
     * early (a dead resolver is a timeout), and the source of each answer
     * is checked by hand. */
    fd = kl_posix_socket(server.ss_family, SOCK_DGRAM, 0, 0);
    if (fd < 0)
        return KL_ERR_IO;
    st = KL_ERR_TIMEOUT;
    for (int attempt = 0; attempt < 2 && st == KL_ERR_TIMEOUT; attempt++) {
        uint64_t until = start + (attempt == 0 ? timeout_ms / 2 : timeout_ms);
        if (sendto(fd, q, (size_t)qlen, 0, (struct sockaddr *)&server, slen) != qlen) {
            if (errno == EINTR)
                continue;
            st = KL_ERR_IO;
            break;
        }
        for (;;) {
            uint64_t now = now_ms();
            struct pollfd pfd = {fd, POLLIN, 0};
            struct sockaddr_storage from;
            socklen_t flen = sizeof from;
            ssize_t n;
            int pr;

            if (now >= until)
                break;
            pr = poll(&pfd, 1, (int)(until - now));
            if (pr < 0 && errno != EINTR) {
                st = KL_ERR_IO;
                break;
            }
            if (pr <= 0)
                continue;
            n = recvfrom(fd, r, sizeof r, 0, (struct sockaddr *)&from, &flen);
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN || errno == ECONNREFUSED)
                    continue;
                st = KL_ERR_IO;
                break;
            }
            if (!same_addr(&from, &server))
                continue;
            st = kl_dns_parse(r, (size_t)n, q, (size_t)qlen, random32(), out);
            if (st == KL_ERR_DNS_MISMATCH) {
                st = KL_ERR_TIMEOUT; /* not ours (a late or forged datagram): keep waiting */
                continue;
            }
            break;
        }
    }
    close(fd);
    return st;
}

static int add(kl_posix_candidate_t *out, size_t cap, size_t *n, const char *host, const uint8_t *ip,
               uint16_t port, int direct_tls, int from_srv, uint32_t ttl)
{
    kl_posix_candidate_t *c;
    size_t hl = strlen(host);

    if (*n >= cap)
        return KL_ERR_TOO_LARGE;
    c = &out[(*n)++];
    memset(c, 0, sizeof *c);
    if (hl && host[hl - 1] == '.')
        hl--;
    if (hl >= sizeof c->host)
        return KL_ERR_DNS_NAME;
    memcpy(c->host, host, hl);
    if (ip)
        snprintf(c->ip, sizeof c->ip, "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
    c->port = port;
    c->direct_tls = (uint8_t)(direct_tls != 0);
    c->from_srv = (uint8_t)from_srv;
    c->ttl = ttl;
    return KL_OK;
}

static int add_records(const kl_dns_srv_result_t *res, int direct_tls, kl_posix_candidate_t *out,
                       size_t cap, size_t *n)
{
    for (unsigned i = 0; i < res->srv_count; i++) {
        const uint8_t *ip = NULL;
        int st;
        for (unsigned k = 0; k < res->addr_count; k++)
            if (res->addr[k].srv == i) {
                ip = res->addr[k].ip;
                break;
            }
        if ((st = add(out, cap, n, res->srv[i].target, ip, res->srv[i].port, direct_tls, 1, res->srv[i].ttl)) < 0)
            return st;
    }
    return KL_OK;
}

int kl_posix_srv_candidates(const char *domain, const char *dns_host_port, int direct_tls,
                            uint32_t timeout_ms, kl_posix_candidate_t *out, size_t cap)
{
    kl_dns_srv_result_t res;
    uint64_t deadline = now_ms() + timeout_ms;
    size_t n = 0;
    int st, unavailable[2] = {0, 0}, any = 0;

    if (!domain || !out || cap == 0)
        return KL_ERR_ARG;
    /* pass 1: _xmpps-client (direct TLS), pass 0: _xmpp-client */
    for (int pass = direct_tls ? 1 : 0; pass >= 0; pass--) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return KL_ERR_TIMEOUT;
        st = kl_posix_resolve_srv(domain, dns_host_port, pass, (uint32_t)(deadline - now), &res);
        if (st < 0)
            return st;
        if (st == KL_DNS_UNAVAILABLE)
            unavailable[pass] = 1;
        if (st == KL_DNS_RECORDS) {
            any = 1;
            if ((st = add_records(&res, pass, out, cap, &n)) < 0)
                return st;
        }
    }
    if (any)
        return (int)n;
    if (direct_tls && !unavailable[1] && (st = add(out, cap, &n, domain, NULL, 5223, 1, 0, 0)) < 0)
        return st;
    if (!unavailable[0] && (st = add(out, cap, &n, domain, NULL, 5222, 0, 0, 0)) < 0)
        return st;
    return n ? (int)n : KL_ERR_DNS_UNAVAILABLE;
}
