/* kinglet — mbedTLS platform hooks for the mps2 firmware. */
#include <stdint.h>
#include <string.h>

#include "mbedtls/build_info.h"
#include "mbedtls/entropy.h"
#include "mbedtls/memory_buffer_alloc.h"
#include "mbedtls/platform.h"
#include "mbedtls/platform_time.h"
#include "mbedtls/platform_util.h"

#include "board.h"
#include "board_mbedtls.h"

#define ARENA_PAINT 0xA5u
#define ARENA_HEAD 64u /* the allocator's first header lives here */

static unsigned char arena[BOARD_MBEDTLS_ARENA_SIZE] __attribute__((aligned(8)));

void *board_mbedtls_calloc_none(size_t n, size_t size)
{
    (void)n;
    (void)size;
    return NULL;
}

void board_mbedtls_free_none(void *p)
{
    (void)p;
}

void board_mbedtls_exit(int code)
{
    board_printf("mbedTLS: fatal error (arena corrupted?), exit %d\n", code);
    board_exit(code == 0 ? 1 : code);
}

void board_mbedtls_init(void)
{
    mbedtls_memory_buffer_alloc_init(arena, sizeof arena);
    /* Paint what the allocator has not touched yet (it zeroes the arena
     * at init and every block it hands out), for the high-water mark. */
    memset(arena + ARENA_HEAD, ARENA_PAINT, sizeof arena - ARENA_HEAD);
}

size_t board_mbedtls_arena_peak(void)
{
    size_t top = sizeof arena;
    while (top > ARENA_HEAD && arena[top - 1] == ARENA_PAINT)
        top--;
    return top;
}

size_t board_mbedtls_arena_size(void)
{
    return sizeof arena;
}

/* MBEDTLS_ENTROPY_HARDWARE_ALT: the board's seed source. */
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen)
{
    (void)data;
    if (board_entropy(output, len) != 0) {
        *olen = 0;
        return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
    }
    *olen = len;
    return 0;
}

/* MBEDTLS_PLATFORM_MS_TIME_ALT: SysTick, extended past the 32-bit wrap. */
mbedtls_ms_time_t mbedtls_ms_time(void)
{
    static uint32_t last, high;
    uint32_t now = board_millis();
    if (now < last)
        high++;
    last = now;
    return (mbedtls_ms_time_t)(((uint64_t)high << 32) | now);
}

/* MBEDTLS_PLATFORM_TIME_MACRO */
time_t board_mbedtls_time(time_t *t)
{
    time_t now = (time_t)board_unix_time();
    if (t)
        *t = now;
    return now;
}

/* MBEDTLS_PLATFORM_GMTIME_R_ALT: UTC broken-down time without newlib's
 * gmtime (which drags in stdio). Days to civil date after H. Hinnant. */
struct tm *mbedtls_platform_gmtime_r(const mbedtls_time_t *tt, struct tm *tm_buf)
{
    int64_t t = (int64_t)*tt;
    int64_t days = t / 86400, rem = t % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    memset(tm_buf, 0, sizeof *tm_buf);
    tm_buf->tm_hour = (int)(rem / 3600);
    tm_buf->tm_min = (int)(rem % 3600 / 60);
    tm_buf->tm_sec = (int)(rem % 60);
    tm_buf->tm_wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */

    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    tm_buf->tm_year = (int)(y - 1900);
    tm_buf->tm_mon = (int)(m - 1);
    tm_buf->tm_mday = (int)d;
    return tm_buf;
}
