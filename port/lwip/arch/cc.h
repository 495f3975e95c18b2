/* kinglet — lwIP arch/cc.h for the hosted simulator build (Linux, gcc/clang).
 *
 * A firmware image uses its board's cc.h instead (the one its SDK ships);
 * nothing in port/lwip depends on this file beyond what lwIP itself needs.
 */
#ifndef KL_LWIP_ARCH_CC_H
#define KL_LWIP_ARCH_CC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* errno values from the C library (lwIP's own table otherwise). */
#define LWIP_ERRNO_STDINCLUDE 1

/* struct timeval is not used (no sockets API). */
#define LWIP_TIMEVAL_PRIVATE 0

/* Diagnostics go to stderr; an assertion is fatal (tests must see it). */
#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) do { \
    fprintf(stderr, "lwIP assertion \"%s\" failed at %s:%d\n", x, __FILE__, __LINE__); \
    abort(); } while (0)

/* DHCP xid, DNS ids and ports, TCP initial sequence numbers. */
uint32_t kl_sim_rand(void);
#define LWIP_RAND() (kl_sim_rand())

#endif
