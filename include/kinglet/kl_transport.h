/* kinglet — the byte pipe between port layers (TCP link <-> TLS <-> engine
 * pump). A port implements it; the engine never calls it.
 *
 * send: returns bytes accepted (> 0), 0 if it would block, < 0 a kl_status_t.
 * recv: returns bytes stored in buf (> 0), 0 if nothing is available yet,
 *       < 0 a kl_status_t (KL_ERR_CONN_CLOSED at end of stream).
 * Neither ever blocks in a port meant for a main loop; the POSIX port's
 * blocking helpers are built on top, not inside.
 */
#ifndef KINGLET_KL_TRANSPORT_H
#define KINGLET_KL_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "kl_status.h"

typedef struct kl_transport {
    void *ctx; /* owned by the port; outlives every call */
    int (*send)(void *ctx, const uint8_t *buf, size_t len);
    int (*recv)(void *ctx, uint8_t *buf, size_t len);
} kl_transport_t;

#endif
