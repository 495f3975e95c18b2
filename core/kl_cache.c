/* kinglet — the connection-hints cache blob: validation and sealing. */
#include "kinglet/kl_cache.h"
#include "kinglet/kl_status.h"
#include "kl_string.h"

static uint32_t checksum(const kl_cache_t *c)
{
    /* FNV-1a over everything after the checksum field */
    const uint8_t *p = (const uint8_t *)c + offsetof(kl_cache_t, checksum) + sizeof c->checksum;
    const uint8_t *end = (const uint8_t *)c + sizeof *c;
    uint32_t h = 2166136261u;
    while (p < end)
        h = (h ^ *p++) * 16777619u;
    return h;
}

int kl_cache_check(const kl_cache_t *c, const char *domain)
{
    if (!c || !domain || c->magic != KL_CACHE_MAGIC || c->version != KL_CACHE_VERSION ||
        c->size != sizeof *c || c->checksum != checksum(c))
        return KL_ERR_ARG;
    if (memchr(c->domain, 0, sizeof c->domain) == NULL || strcmp(c->domain, domain) != 0)
        return KL_ERR_ARG;
    if (c->tls_session_len > sizeof c->tls_session || !memchr(c->caps_ver, 0, sizeof c->caps_ver) ||
        !memchr(c->roster_ver, 0, sizeof c->roster_ver) || !memchr(c->srv_host, 0, sizeof c->srv_host))
        return KL_ERR_ARG;
    return KL_OK;
}

void kl_cache_reset(kl_cache_t *c, const char *domain)
{
    size_t n = strlen(domain);
    memset(c, 0, sizeof *c);
    if (n < sizeof c->domain)
        memcpy(c->domain, domain, n);
    kl_cache_seal(c);
}

void kl_cache_seal(kl_cache_t *c)
{
    c->magic = KL_CACHE_MAGIC;
    c->version = KL_CACHE_VERSION;
    c->size = (uint16_t)sizeof *c;
    c->checksum = checksum(c);
}
