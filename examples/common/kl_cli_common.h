/* kinglet — what the command-line programs (kinglet, kinglet-sim,
 * kinglet-bosh) share: exit codes and the hints file. */
#ifndef KINGLET_KL_CLI_COMMON_H
#define KINGLET_KL_CLI_COMMON_H

#include <stdint.h>

#include "kinglet/kinglet.h"
#include "kinglet/kl_cache.h"

/* The documented exit code for a kl_status_t: 3 connect/DNS, 4 TLS or
 * certificate, 5 authentication, 6 stream error or malformed input (XMPP,
 * HTTP, BOSH), 7 timeout, 1 anything else. */
int kl_cli_exit_code(int status);

/* Read the hints file into *cache: 1 if a whole blob was read (the engine
 * still validates it), 0 if there is none or it is short. */
int kl_cli_cache_load(const char *path, kl_cache_t *cache);

/* Seal *cache and write it atomically (a temporary file, then rename), so
 * a crash never leaves half a blob. Best effort. */
void kl_cli_cache_save(const char *path, kl_cache_t *cache);

/* The message script the programs share: --send, --recv N, --echo,
 * --count N, --timeout S. */
typedef struct kl_cli_run {
    const char *prog;  /* for messages on stderr */
    int echo;          /* --echo */
    int s2s;           /* s2s: echo from the address the message was sent to */
    long count;        /* --count (-1: none) */
    long recv_n;       /* --recv (0: none) */
    int echoed, received, closing;
} kl_cli_run_t;

/* The deadline passed: --echo without --count or --recv ends with a clean
 * close (3 s more for it), anything else timed out. Returns -1 to go on,
 * else the exit code to end with. */
int kl_cli_deadline(kl_cli_run_t *r, kl_client_t *c, uint32_t now, uint32_t *t_end);

/* A message with a body arrived (the caller printed it): count it, echo
 * it if asked, and close the stream once --count echoes or --recv
 * messages are done. `to` is the address it was sent to, or NULL; body
 * NULL (a streamed stanza whose body was not kept) is counted, not echoed. */
void kl_cli_after_message(kl_cli_run_t *r, kl_client_t *c, const char *from, const char *to, const char *body);

#endif
