/* kinglet — mbedTLS 3.6 user config for the mps2 firmware image
 * (MBEDTLS_USER_CONFIG_FILE, read after port/mbedtls/kl_mbedtls_config.h,
 * built with -DKL_MBEDTLS_FIRMWARE).
 *
 * Bare metal: no file system, no sockets, no libc clock or allocator.
 *   - allocation: a static arena (MBEDTLS_MEMORY_BUFFER_ALLOC_C) set up by
 *     board_mbedtls_init(); BOARD_MBEDTLS_ARENA_SIZE in board_mbedtls.c;
 *   - entropy: MBEDTLS_ENTROPY_HARDWARE_ALT -> mbedtls_hardware_poll() ->
 *     board_entropy() (the TRNG hook; EMULATION ONLY on QEMU);
 *   - time: mbedtls_ms_time() from SysTick; certificate validity from
 *     board_unix_time() (build date as a floor) through our gmtime_r,
 *     because newlib's gmtime pulls in stdio (docs/FIELD-NOTES.md).
 *
 * Record buffers: IN 8192 (Prosody writes records of up to 8 KB of
 * plaintext: docs/FIELD-NOTES.md; a larger record ends the session with
 * KL_ERR_TLS_RECORD_TOO_LARGE), OUT 2048 (the engine's largest flight is
 * KL_TX_BUF_SIZE, 1536 by default). docs/FIELD-NOTES.md measures 18.7 KB of
 * handshake peak for 8192/2048 on x86-64; 32-bit pointers use less.
 */
#ifndef KINGLET_MPS2_MBEDTLS_BOARD_CONFIG_H
#define KINGLET_MPS2_MBEDTLS_BOARD_CONFIG_H

#include <stddef.h>
#include <time.h>

/* ---- records ----------------------------------------------------------- */
#undef MBEDTLS_SSL_IN_CONTENT_LEN
#undef MBEDTLS_SSL_OUT_CONTENT_LEN
#ifndef BOARD_TLS_IN_CONTENT_LEN
#define BOARD_TLS_IN_CONTENT_LEN 8192
#endif
#ifndef BOARD_TLS_OUT_CONTENT_LEN
#define BOARD_TLS_OUT_CONTENT_LEN 2048
#endif
#define MBEDTLS_SSL_IN_CONTENT_LEN BOARD_TLS_IN_CONTENT_LEN
#define MBEDTLS_SSL_OUT_CONTENT_LEN BOARD_TLS_OUT_CONTENT_LEN

/* ---- memory: a static arena, never libc ---------------------------------- */
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
/* Before board_mbedtls_init() every allocation fails (instead of linking
 * libc's calloc, which would reach _sbrk). */
void *board_mbedtls_calloc_none(size_t n, size_t size);
void board_mbedtls_free_none(void *p);
#define MBEDTLS_PLATFORM_STD_CALLOC board_mbedtls_calloc_none
#define MBEDTLS_PLATFORM_STD_FREE board_mbedtls_free_none

/* The allocator's integrity check calls exit(): the board's instead of
 * newlib's (which would bring atexit machinery along). */
void board_mbedtls_exit(int code);
#define MBEDTLS_PLATFORM_EXIT_MACRO board_mbedtls_exit

/* ---- entropy: the board's hook --------------------------------------------- */
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_ENTROPY_HARDWARE_ALT

/* ---- time ----------------------------------------------------------------- */
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_HAVE_TIME_DATE
#define MBEDTLS_PLATFORM_MS_TIME_ALT
#define MBEDTLS_PLATFORM_GMTIME_R_ALT
time_t board_mbedtls_time(time_t *t);
#define MBEDTLS_PLATFORM_TIME_MACRO board_mbedtls_time

/* ---- RAM over speed ------------------------------------------------------- */
#define MBEDTLS_AES_ROM_TABLES      /* AES tables in flash, not 8 KB of .bss */
#define MBEDTLS_ECP_WINDOW_SIZE 2   /* smaller ECP heap peak */
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
#define MBEDTLS_MPI_WINDOW_SIZE 2
#define MBEDTLS_MPI_MAX_SIZE 512    /* RSA-4096 server keys */
#define MBEDTLS_PSA_KEY_SLOT_COUNT 8

#endif
