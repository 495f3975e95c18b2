/* kinglet — mbedTLS's static arena for the simulator. */
#include "kl_sim_arena.h"

#include "mbedtls/build_info.h"
#include "mbedtls/memory_buffer_alloc.h"

#if !defined(MBEDTLS_MEMORY_BUFFER_ALLOC_C) || !defined(MBEDTLS_MEMORY_DEBUG)
#error "the simulator's mbedTLS build needs port/sim/kl_sim_mbedtls_user.h (mk/sim.mk)"
#endif

/* Room for two TLS sessions (BOSH over https: two connections); a run
 * uses the part it was sized for (kl_sim_arena_init). */
static unsigned char arena[2 * KL_SIM_TLS_ARENA] __attribute__((aligned(16)));
static size_t arena_used = KL_SIM_TLS_ARENA;
static unsigned long failures;
static size_t largest_failed;

void *__real_mbedtls_calloc(size_t n, size_t size);
void *__wrap_mbedtls_calloc(size_t n, size_t size);

void *__wrap_mbedtls_calloc(size_t n, size_t size)
{
    void *p = __real_mbedtls_calloc(n, size);
    if (p == NULL && n != 0 && size != 0) {
        failures++;
        if (n * size > largest_failed)
            largest_failed = n * size;
    }
    return p;
}

void kl_sim_arena_init(size_t bytes)
{
    arena_used = bytes == 0 ? KL_SIM_TLS_ARENA : bytes > sizeof arena ? sizeof arena : bytes;
    mbedtls_memory_buffer_alloc_init(arena, arena_used);
}

void kl_sim_arena_stats(kl_sim_arena_stats_t *st)
{
    st->size = arena_used;
    mbedtls_memory_buffer_alloc_max_get(&st->peak, &st->peak_blocks);
    mbedtls_memory_buffer_alloc_cur_get(&st->cur, &st->cur_blocks);
    st->failures = failures;
    st->largest_failed = largest_failed;
}
