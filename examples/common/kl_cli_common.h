/* kinglet — what the command-line programs (kinglet, kinglet-sim,
 * kinglet-bosh) share: exit codes and the hints file. */
#ifndef KINGLET_KL_CLI_COMMON_H
#define KINGLET_KL_CLI_COMMON_H

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

#endif
