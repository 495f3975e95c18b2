/* kinglet — mbedTLS platform glue for the mps2 firmware: arena, entropy,
 * time. Link board_mbedtls.c only into images that use mbedTLS. */
#ifndef KINGLET_MPS2_BOARD_MBEDTLS_H
#define KINGLET_MPS2_BOARD_MBEDTLS_H

#include <stddef.h>

/* Bytes of the static arena mbedTLS allocates from (RAM, in .bss). */
#ifndef BOARD_MBEDTLS_ARENA_SIZE
#define BOARD_MBEDTLS_ARENA_SIZE (24 * 1024)
#endif

/* Hand the arena to mbedTLS. Call once, before psa_crypto_init() and any
 * other mbedTLS call. */
void board_mbedtls_init(void);

/* High-water mark of the arena: bytes from its start that were ever
 * handed out (first fit from the bottom, so this is what the arena must
 * hold, fragmentation included). */
size_t board_mbedtls_arena_peak(void);
size_t board_mbedtls_arena_size(void);

#endif
