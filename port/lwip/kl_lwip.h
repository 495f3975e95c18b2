/* kinglet — lwIP port: the header the BOSH driver (kl_lwip_bosh.h) still
 * includes. XMPP over TCP runs on the connection manager
 * (include/kinglet/kl_session.h) over kl_lwip_net_ops (kl_lwip_net.h:
 * TCP connections, SRV) and kl_tls_mbedtls_ops (port/mbedtls/kl_tls_bind.h);
 * the session driver that lived here (kl_lwip_session_*) is gone. This
 * header goes too once BOSH runs on the manager.
 */
#ifndef KINGLET_KL_LWIP_H
#define KINGLET_KL_LWIP_H

#include <stddef.h>
#include <stdint.h>

#include "kl_lwip_net.h"
#include "kl_tls.h"

/* Called for every chunk of plaintext XML sent (dir 'o') or received
 * (dir 'i'), and with len 0 and a note for milestones; the same shape as
 * kl_session_trace_fn. */
typedef void (*kl_lwip_trace_fn)(void *arg, char dir, const uint8_t *data, size_t len,
                                 const char *note);

#endif
