/* kinglet — mps2-an386 reset code and vector table (Cortex-M4). */
#include <stdint.h>
#include <string.h>

#include "board.h"

#define BOARD_STACK_PAINT 0xA5A5A5A5u

extern uint32_t __stack_start[], __stack_end[];
extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start[], __bss_end[];

int main(void);
void Reset_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void); /* board.c */
void board_fault(const char *what, const uint32_t *frame);

static void default_handler(void)
{
    board_fault("unexpected interrupt", 0);
}

#define WEAK_DEFAULT __attribute__((weak, alias("default_handler")))
void NMI_Handler(void) WEAK_DEFAULT;
void MemManage_Handler(void) WEAK_DEFAULT;
void BusFault_Handler(void) WEAK_DEFAULT;
void UsageFault_Handler(void) WEAK_DEFAULT;
void SVC_Handler(void) WEAK_DEFAULT;
void DebugMon_Handler(void) WEAK_DEFAULT;
void PendSV_Handler(void) WEAK_DEFAULT;
void Irq_Handler(void) WEAK_DEFAULT;

/* 16 system exceptions + the 32 interrupts of the AN385/AN386 image
 * (UARTs 0-5, timers, LAN9118 on IRQ 13: all polled here). */
__attribute__((section(".vectors"), used))
static void (*const vectors[16 + 32])(void) = {
    [0] = (void (*)(void))__stack_end,
    [1] = Reset_Handler,
    [2] = NMI_Handler,
    [3] = HardFault_Handler,
    [4] = MemManage_Handler,
    [5] = BusFault_Handler,
    [6] = UsageFault_Handler,
    [11] = SVC_Handler,
    [12] = DebugMon_Handler,
    [14] = PendSV_Handler,
    [15] = SysTick_Handler,
    [16 ... 47] = Irq_Handler,
};

void Reset_Handler(void)
{
    /* Paint the stack below what this function uses, for the high-water
     * mark (board_stack_used). */
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = __stack_start; p < sp - 16; p++)
        *p = BOARD_STACK_PAINT;

    memcpy(__data_start, __data_load, (size_t)((char *)__data_end - (char *)__data_start));
    memset(__bss_start, 0, (size_t)((char *)__bss_end - (char *)__bss_start));

    /* Trap divide by zero; unaligned accesses stay allowed (lwIP's
     * headers are aligned by ETH_PAD_SIZE, libc's memcpy is not fussy). */
    *(volatile uint32_t *)0xE000ED14u |= 1u << 4; /* SCB->CCR.DIV_0_TRP */
    /* MemManage, BusFault, UsageFault get their own handlers. */
    *(volatile uint32_t *)0xE000ED24u |= 7u << 16; /* SCB->SHCSR */

    int rc = main();
    board_exit(rc);
}

size_t board_stack_used(void)
{
    const uint32_t *p = __stack_start;
    while (p < __stack_end && *p == BOARD_STACK_PAINT)
        p++;
    return (size_t)((const char *)__stack_end - (const char *)p);
}

size_t board_stack_size(void)
{
    return (size_t)((const char *)__stack_end - (const char *)__stack_start);
}

/* A semihosting BKPT 0xAB without a debugger (QEMU without -semihosting)
 * escalates to HardFault: make it return -1 instead of crashing, so
 * board_semihost() is safe to call anywhere. Any other fault is fatal. */
void hardfault_c(uint32_t *frame)
{
    const uint16_t *pc = (const uint16_t *)frame[6];
    if (*pc == 0xBEABu) {
        frame[0] = 0xFFFFFFFFu;
        frame[6] += 2;
        return;
    }
    board_fault("HardFault", frame);
}

__attribute__((naked)) void HardFault_Handler(void)
{
    __asm volatile(
        "tst lr, #4\n"
        "ite eq\n"
        "mrseq r0, msp\n"
        "mrsne r0, psp\n"
        "b hardfault_c\n");
}
