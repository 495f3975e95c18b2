/* kinglet — shows the SASL2 part of a connection-hints file (--cache FILE),
 * for tests/integration/sasl2_test.sh.
 *
 *   hints_token FILE
 *
 * Prints three lines:
 *   ua_id ID          the <user-agent id> the hints keep ("-" if none)
 *   fast_expiry N     the FAST token's expiry, Unix seconds (0: not said)
 *   fast_token TOKEN  the FAST token as stored ("-" if none)
 * Read only; the MAC is not checked (the test only looks at what the client
 * wrote). The blob layout is kl_cache_t's of the headers it is compiled
 * with: build it with the same configuration as the CLI. Exit 1 if FILE is
 * not a hints blob of this build (wrong size or magic).
 */
#include <stdio.h>
#include <string.h>

#include "kinglet/kl_cache.h"

static kl_cache_t cache;

int main(int argc, char **argv)
{
    FILE *f;
    size_t n;
    if (argc != 2) {
        fprintf(stderr, "usage: hints_token FILE\n");
        return 2;
    }
    if ((f = fopen(argv[1], "rb")) == NULL) {
        perror(argv[1]);
        return 1;
    }
    n = fread(&cache, 1, KL_CACHE_BLOB_SIZE, f);
    if (n != KL_CACHE_BLOB_SIZE || fgetc(f) != EOF || cache.magic != KL_CACHE_MAGIC) {
        fprintf(stderr, "hints_token: %s is not a hints file of this build\n", argv[1]);
        fclose(f);
        return 1;
    }
    fclose(f);
    cache.ua_id[sizeof cache.ua_id - 1] = '\0';
    printf("ua_id %s\n", cache.ua_id[0] ? cache.ua_id : "-");
    printf("fast_expiry %lu\n", (unsigned long)cache.fast_expiry);
    if (cache.fast_len == 0 || cache.fast_len > sizeof cache.fast_token)
        printf("fast_token -\n");
    else
        printf("fast_token %.*s\n", (int)cache.fast_len, (const char *)cache.fast_token);
    return 0;
}
