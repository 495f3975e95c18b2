/* kinglet — helpers the engine-level fuzz harnesses share (header-only,
 * static: each harness is its own program). */
#ifndef KINGLET_FUZZ_UTIL_H
#define KINGLET_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kinglet/kinglet.h"
#include "../unit/kt_feed.h"

/* 1 if needle occurs in hay[0..n). */
static inline int has(const uint8_t *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle), i;
    for (i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return 1;
    return 0;
}

/* Deterministic "random" bytes (a harness replays the same way). */
static inline int toy_random_seq(void *ctx, uint8_t *out, size_t len)
{
    size_t i;
    (void)ctx;
    for (i = 0; i < len; i++)
        out[i] = (uint8_t)(i * 37 + 11);
    return 0;
}

/* Feed the server's stream into c (kt_feed), stopping once *finished. */
static inline void fuzz_feed(kl_client_t *c, const uint8_t *p, size_t len, const int *finished, void (*pump)(void))
{
    kt_feed(c, p, len, finished, pump);
}

#endif
