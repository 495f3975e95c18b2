/* kinglet — POSIX primitives for the connection manager (kl_session.h):
 * non-blocking BSD sockets as kl_net_ops_t, and a poll() wait.
 *
 *   static kl_posix_net_t net;          // one socket per session slot
 *   scfg.net = &kl_posix_net_ops; scfg.net_ctx = &net;
 *   kl_posix_net_init(&net);
 *   kl_session_start(&s, kl_posix_now_ms());
 *   for (;;) {
 *       while ((r = kl_session_step(&s, kl_posix_now_ms(), &ev)) > 0) handle(&ev);
 *       kl_posix_net_wait(&net, &s, 1000);   // sleeps until a socket is ready or a timer is due
 *   }
 *
 * Names are resolved with getaddrinfo() inside open(), which may block for
 * the resolver's time (numeric addresses never do); the connect itself is
 * non-blocking. Sockets are TCP_NODELAY (flights are written whole).
 */
#ifndef KINGLET_KL_POSIX_NET_H
#define KINGLET_KL_POSIX_NET_H

#include <stdint.h>

#include "kinglet/kl_session.h"

typedef struct kl_posix_net {
    int fd[KL_SESSION_SLOTS];       /* -1: closed */
    uint8_t corked[KL_SESSION_SLOTS];
    int err[KL_SESSION_SLOTS];      /* the failure poll_open reports */
} kl_posix_net_t;

extern const kl_net_ops_t kl_posix_net_ops;

void kl_posix_net_init(kl_posix_net_t *n);

/* Wait (poll) until a slot of s is ready as kl_session_wants() says, or
 * the session's next timer, at most max_ms. Returns at once if nothing
 * can happen (an idle session). */
void kl_posix_net_wait(kl_posix_net_t *n, const kl_session_t *s, uint32_t max_ms);

/* Monotonic milliseconds, and the kernel's random bytes (getrandom, else
 * getentropy: kl_posix_compat.h), shaped
 * as kl_client_config_t.random / kl_session_config_t.random. */
uint32_t kl_posix_now_ms(void);
int kl_posix_random(void *ctx, uint8_t *out, size_t len);

#endif
