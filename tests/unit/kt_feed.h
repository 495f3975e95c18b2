/* kinglet tests — feeding a scripted server's bytes into an engine as it
 * takes them (header-only; the unit tests, the port tests and the fuzz
 * harnesses share it). */
#ifndef KINGLET_KT_FEED_H
#define KINGLET_KT_FEED_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kinglet/kinglet.h"

/* len bytes into c, a piece at a time, calling pump() (the test's poll
 * loop) after each piece and whenever the receive buffer is full; stops
 * when the engine takes nothing more, or once *stop (if given) is set. */
static inline void kt_feed(kl_client_t *c, const uint8_t *p, size_t len, const int *stop, void (*pump)(void))
{
    while (len > 0 && !(stop && *stop)) {
        size_t cap, n;
        uint8_t *buf = kl_engine_input_buf(c, &cap);
        if (cap == 0) {
            pump();
            buf = kl_engine_input_buf(c, &cap);
            if (cap == 0)
                return;
        }
        n = len < cap ? len : cap;
        memcpy(buf, p, n);
        kl_engine_input_ack(c, n);
        p += n, len -= n;
        pump();
    }
}

#endif
