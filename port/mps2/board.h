/* kinglet — board support for QEMU's mps2-an386 (Cortex-M4, LAN9118).
 *
 * What any board port provides to the firmware application (copy this
 * header's shape to port to another board):
 *   - board_init(): clocks, a 1 ms tick, the console;
 *   - board_millis(): monotonic milliseconds (lwIP's sys_now, the engine's
 *     now_ms, mbedTLS's mbedtls_ms_time);
 *   - board_write()/board_printf(): a console (here CMSDK UART0, which
 *     QEMU connects to `-serial stdio`); newlib's _write goes there too;
 *   - board_entropy(): the seed for the TLS DRBG — a real device wires its
 *     TRNG here;
 *   - board_unix_time(): wall-clock seconds for X.509 validity, never below
 *     the build date (the emulated board has no RTC);
 *   - an lwIP netif for its NIC (lan9118.h here) and an lwipopts.h.
 *
 * Single-threaded: call everything from the main loop (NO_SYS=1); only
 * the SysTick handler runs in interrupt context.
 */
#ifndef KINGLET_BOARD_H
#define KINGLET_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* Core clock of the mps2 FPGA images in QEMU (SYSCLK). */
#define BOARD_CPU_HZ 25000000u

void board_init(void);

/* Milliseconds since board_init() (wraps after 49 days). */
uint32_t board_millis(void);

/* Sleep until the next interrupt (at most 1 ms: the SysTick). */
void board_idle(void);

/* Console. board_printf understands %s %c %d %i %u %x %X %p and %%, with
 * an optional '0' flag, width and 'l'/'z' length; nothing else (it has no
 * buffer and no heap, and pulls in no stdio). */
void board_write(const char *s, size_t len);
void board_puts(const char *s); /* no newline added */
void board_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Fill out[0..len) with seed material for a DRBG; returns 0, or -1 if the
 * source failed. THE QEMU IMPLEMENTATION IS FOR EMULATION ONLY: it mixes
 * timer jitter and a build-time constant and is not a TRNG. A real board
 * reads its hardware RNG here (and health-checks it). */
int board_entropy(uint8_t *out, size_t len);
/* The same, shaped as kl_client_config_t.random (ctx unused). */
int board_random(void *ctx, uint8_t *out, size_t len);

/* The device key that authenticates the connection hints (kl_cache.h:
 * HMAC-SHA-256, KL_CACHE_KEY_LEN = 32 bytes; kl_cache_load / kl_cache_store).
 * Fills key[0..32) and returns 0, or returns -1 if the board has none (then
 * the application passes NULL: the hints are used without a TLS session,
 * none is ever stored). The same key on every boot of this device, never
 * stored beside the hints record nor in the image, never sent anywhere.
 * A real board derives it from a hardware unique key (a KDF in the crypto
 * accelerator, TrustZone/secure-element storage) or generates it once from
 * board_entropy() into OTP or a read-protected flash page.
 * THE QEMU IMPLEMENTATION IS FOR EMULATION ONLY: it derives the key from
 * BOARD_BUILD_SEED, a constant in the image, so anyone with the image has
 * it. */
int board_hints_key(uint8_t key[32]);

/* Cheap non-cryptographic random numbers (lwIP's LWIP_RAND: DHCP xid,
 * TCP ports and ISNs), seeded from board_entropy() at init. */
uint32_t board_rand(void);

/* Seconds since 1970 (UTC). Starts at the build date (BOARD_BUILD_EPOCH,
 * a floor: the real time is never earlier) and counts up; under QEMU with
 * -semihosting the host's clock is read once at boot instead. An
 * application that learns the time (SNTP, a server) calls
 * board_set_unix_time(). Used for X.509 validity. */
int64_t board_unix_time(void);
void board_set_unix_time(int64_t now);
/* 1 if board_unix_time() is only the build-date floor (plus uptime). */
int board_time_is_floor(void);

/* Stack painting: bytes of the stack ever used (high-water mark) and its
 * size. The stack is painted at reset. */
size_t board_stack_used(void);
size_t board_stack_size(void);

/* End the program: under QEMU with -semihosting, QEMU exits with status
 * 0 (code 0) or 1 (any other code); otherwise the CPU sleeps forever. */
void board_exit(int code) __attribute__((noreturn));

/* Semihosting call (ARM "angel" interface); returns -1 when QEMU runs
 * without -semihosting (the HardFault handler skips the BKPT). */
int board_semihost(int op, void *arg);

#endif
