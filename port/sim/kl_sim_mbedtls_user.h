/* kinglet — mbedTLS user config for the simulator (MBEDTLS_USER_CONFIG_FILE,
 * read after port/mbedtls/kl_mbedtls_config.h): mbedTLS allocates from a
 * static arena the way firmware does, and the arena's peak is measured.
 *
 *   mbedtls_memory_buffer_alloc_init(arena, sizeof arena) before kl_tls_setup;
 *   mbedtls_memory_buffer_alloc_max_get(&bytes, &blocks) for the peak.
 *
 * Record buffers (MBEDTLS_SSL_IN_CONTENT_LEN / OUT_CONTENT_LEN) come from
 * the build (mk/sim.mk: SIM_TLS_IN / SIM_TLS_OUT).
 * The host platform section stays (OS entropy, clock, CA file), so the
 * simulator reads --cafile like the CLI; a board replaces those.
 */
#ifndef KL_SIM_MBEDTLS_USER_H
#define KL_SIM_MBEDTLS_USER_H

#define MBEDTLS_PLATFORM_MEMORY        /* calloc/free through the platform layer... */
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C  /* ...which is the static arena */
#define MBEDTLS_MEMORY_DEBUG           /* peak (max_get) and current use (cur_get) */

#endif
