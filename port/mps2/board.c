/* kinglet — mps2-an386 board support: SysTick, UART console, time,
 * semihosting, and the EMULATION-ONLY entropy source. */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "board.h"

#define REG(a) (*(volatile uint32_t *)(a))

/* ---- SysTick: 1 ms ---------------------------------------------------- */
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)

static volatile uint32_t ticks_ms;

void SysTick_Handler(void)
{
    ticks_ms++;
}

uint32_t board_millis(void)
{
    return ticks_ms;
}

/* lwIP's clock (NO_SYS). */
uint32_t sys_now(void)
{
    return ticks_ms;
}

void board_idle(void)
{
    __asm volatile("wfi");
}

/* ---- CMSDK APB UART0 (QEMU: -serial stdio) ------------------------------- */
#define UART0 0x40004000u
#define UART_DATA REG(UART0 + 0x00)
#define UART_STATE REG(UART0 + 0x04) /* bit 0: TX buffer full */
#define UART_CTRL REG(UART0 + 0x08)  /* bit 0: TX enable */
#define UART_BAUDDIV REG(UART0 + 0x10)

static void uart_putc(char c)
{
    while (UART_STATE & 1u)
        ;
    UART_DATA = (uint8_t)c;
}

void board_write(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n')
            uart_putc('\r');
        uart_putc(s[i]);
    }
}

void board_puts(const char *s)
{
    board_write(s, strlen(s));
}

static void put_num(unsigned long long v, unsigned base, int upper, int neg, int width, char pad)
{
    char buf[24];
    int n = 0;
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        buf[n++] = digits[v % base];
        v /= base;
    } while (v != 0);
    if (neg)
        buf[n++] = '-';
    /* '-' goes before zero padding */
    if (neg && pad == '0') {
        uart_putc('-');
        n--;
        width--;
    }
    for (int i = n; i < width; i++)
        uart_putc(pad);
    while (n > 0)
        uart_putc(buf[--n]);
}

void board_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            if (*f == '\n')
                uart_putc('\r');
            uart_putc(*f);
            continue;
        }
        f++;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*f == '0') {
            pad = '0';
            f++;
        }
        while (*f >= '0' && *f <= '9')
            width = width * 10 + (*f++ - '0');
        while (*f == 'l' || *f == 'z') {
            lng += *f == 'l' ? 1 : (sizeof(size_t) > sizeof(int));
            f++;
        }
        switch (*f) {
        case 'd':
        case 'i': {
            long long v = lng >= 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int);
            put_num(v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v, 10, 0, v < 0, width, pad);
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            unsigned long long v = lng >= 2 ? va_arg(ap, unsigned long long)
                                 : lng   ? va_arg(ap, unsigned long)
                                         : va_arg(ap, unsigned);
            put_num(v, *f == 'u' ? 10 : 16, *f == 'X', 0, width, pad);
            break;
        }
        case 'p':
            board_puts("0x");
            put_num((uintptr_t)va_arg(ap, void *), 16, 0, 0, 8, '0');
            break;
        case 'c':
            uart_putc((char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            size_t n = strlen(s ? s : "(null)");
            for (size_t i = n; i < (size_t)width; i++)
                uart_putc(' ');
            board_write(s ? s : "(null)", n);
            break;
        }
        case '%':
            uart_putc('%');
            break;
        default: /* unknown conversion: show it */
            uart_putc('%');
            if (*f == '\0')
                goto out;
            uart_putc(*f);
        }
    }
out:
    va_end(ap);
}

/* ---- semihosting and exit ---------------------------------------------- */
int board_semihost(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

#define SEMIHOST_SYS_TIME 0x11
#define SEMIHOST_SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUNTIME_ERROR 0x20023

void board_exit(int code)
{
    board_semihost(SEMIHOST_SYS_EXIT,
                   (void *)(uintptr_t)(code == 0 ? ADP_STOPPED_APPLICATION_EXIT : ADP_STOPPED_RUNTIME_ERROR));
    for (;;)
        board_idle();
}

void board_fault(const char *what, const uint32_t *frame)
{
    board_printf("\n*** %s", what);
    if (frame)
        board_printf(" pc=%08x lr=%08x r0=%08x cfsr=%08x bfar=%08x", (unsigned)frame[6],
                     (unsigned)frame[5], (unsigned)frame[0], (unsigned)REG(0xE000ED28u),
                     (unsigned)REG(0xE000ED38u));
    board_puts("\n");
    board_exit(1);
}

/* ---- time ----------------------------------------------------------------- */
#ifndef BOARD_BUILD_EPOCH
#error "BOARD_BUILD_EPOCH (seconds since 1970 at build time) must be defined by the build"
#endif

static int64_t time_base = BOARD_BUILD_EPOCH; /* unix time at millis 0 */
static int time_floor = 1;

int64_t board_unix_time(void)
{
    return time_base + board_millis() / 1000u;
}

void board_set_unix_time(int64_t now)
{
    if (now < (int64_t)BOARD_BUILD_EPOCH)
        return; /* a clock before the build is wrong */
    time_base = now - board_millis() / 1000u;
    time_floor = 0;
}

int board_time_is_floor(void)
{
    return time_floor;
}

/* ---- entropy: EMULATION ONLY ----------------------------------------------
 * QEMU's mps2 has no RNG. This mixes what varies between runs of the same
 * image under emulation: the SysTick counter and the LAN9118 free-running
 * 25 MHz counter (both derived from the host clock, sampled around
 * busy-loops whose length depends on host scheduling) and a constant
 * chosen at build time (BOARD_BUILD_SEED). It is good enough to get
 * distinct TLS keys per test run and NOTHING ELSE: a device wires its TRNG
 * here (STM32 RNG, nRF RNG, ESP32 esp_fill_random, RP2040 ROSC…). */
#ifndef BOARD_BUILD_SEED
#define BOARD_BUILD_SEED 0x6b696e676c6574ull /* "kinglet" */
#endif
#define LAN9118_FREE_RUN REG(0x4020009Cu)

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t emu_pool = BOARD_BUILD_SEED;

static void emu_stir(void)
{
    for (int i = 0; i < 32; i++) {
        uint32_t a = SYST_CVR, b = LAN9118_FREE_RUN;
        /* a short spin whose length depends on the sample */
        for (volatile uint32_t n = (a ^ b) & 0x3f; n; n--)
            ;
        emu_pool = mix64(emu_pool ^ ((uint64_t)a << 32 | b) ^ ((uint64_t)ticks_ms << 17));
    }
}

int board_entropy(uint8_t *out, size_t len)
{
    static uint64_t counter;
    emu_stir();
    while (len > 0) {
        uint64_t v = mix64(emu_pool + 0x9e3779b97f4a7c15ull * ++counter);
        size_t n = len < 8 ? len : 8;
        memcpy(out, &v, n);
        out += n;
        len -= n;
    }
    return 0;
}

int board_random(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    return board_entropy(out, len);
}

/* EMULATION ONLY (board.h): the same 32 bytes on every boot of this image,
 * derived from the build-time constant; a real board reads its hardware
 * unique key or protected storage here. */
int board_hints_key(uint8_t key[32])
{
    for (unsigned i = 0; i < 4; i++) {
        uint64_t v = mix64(mix64(BOARD_BUILD_SEED ^ 0x68696e74736b6579ull /* "hintskey" */) + i);
        memcpy(key + 8 * i, &v, 8);
    }
    return 0;
}

static uint32_t rand_state;

uint32_t board_rand(void)
{
    /* xorshift32: lwIP's LWIP_RAND (DHCP xid, ports), not for keys */
    uint32_t x = rand_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rand_state = x;
    return x;
}

/* ---- init ------------------------------------------------------------------ */
void board_init(void)
{
    UART_BAUDDIV = BOARD_CPU_HZ / 115200u;
    UART_CTRL = 1u; /* TX enable */

    SYST_RVR = BOARD_CPU_HZ / 1000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt, enable */

    /* Under QEMU with -semihosting: the host's clock (emulation only; a
     * device uses SNTP or an RTC and calls board_set_unix_time). */
    int t = board_semihost(SEMIHOST_SYS_TIME, 0);
    if (t != -1 && t > 0)
        board_set_unix_time((int64_t)(uint32_t)t);

    uint8_t seed[4];
    board_entropy(seed, sizeof seed);
    memcpy(&rand_state, seed, sizeof rand_state);
    if (rand_state == 0)
        rand_state = 0x2545F491u;
}
