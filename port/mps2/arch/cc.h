/* kinglet — lwIP arch for the mps2 firmware (arm-none-eabi-gcc + newlib). */
#ifndef KINGLET_MPS2_ARCH_CC_H
#define KINGLET_MPS2_ARCH_CC_H

#include "board.h"

void board_fault(const char *what, const uint32_t *frame);

/* LWIP_PLATFORM_DIAG(("fmt", args)): through the board's tiny printf. */
#define LWIP_PLATFORM_DIAG(x) do { board_printf x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) do { \
        board_printf("lwIP assert \"%s\" at %s:%d\n", x, __FILE__, __LINE__); \
        board_fault("lwIP assert", 0); \
    } while (0)

#define LWIP_RAND() board_rand()

/* newlib has errno.h; lwIP's own errno is only for its socket API. */
#define LWIP_ERRNO_STDINCLUDE 1

#endif
