/* kinglet — the simulator's mbedTLS heap: a static arena
 * (MBEDTLS_MEMORY_BUFFER_ALLOC_C), its peak, and failed allocations.
 *
 * Failures are counted by wrapping mbedtls_calloc at link time
 * (-Wl,--wrap=mbedtls_calloc, mk/sim.mk): the buffer allocator itself
 * keeps no such counter, and an exhausted arena otherwise only shows up as
 * whatever error the failing mbedTLS function chooses.
 */
#ifndef KINGLET_KL_SIM_ARENA_H
#define KINGLET_KL_SIM_ARENA_H

#include <stddef.h>

#ifndef KL_SIM_TLS_ARENA
#define KL_SIM_TLS_ARENA (32 * 1024)
#endif

typedef struct kl_sim_arena_stats {
    size_t size;             /* bytes in the arena */
    size_t peak, peak_blocks;/* high-water mark (allocated bytes, blocks) */
    size_t cur, cur_blocks;  /* in use now */
    unsigned long failures;  /* mbedtls_calloc calls that returned NULL */
    size_t largest_failed;   /* the largest request that failed */
} kl_sim_arena_stats_t;

/* Before any mbedTLS call (psa_crypto_init, kl_tls_setup). */
/* bytes: the arena this run has (0: KL_SIM_TLS_ARENA; at most twice that,
 * for two TLS sessions side by side). */
void kl_sim_arena_init(size_t bytes);
void kl_sim_arena_stats(kl_sim_arena_stats_t *st);

#endif
