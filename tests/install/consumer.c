/* An out-of-tree program built against an installed kinglet (public API
 * only): init a client, connect on a fake channel (no socket: the engine is
 * sans-I/O), print the first flight's size, the configuration it was
 * compiled with and sizeof(kl_client_t). tests/install/install_test.sh
 * builds it through pkg-config and through find_package(kinglet). With
 * KL_TEST_PORTS it also references kinglet::posix and kinglet::mbedtls. */
#include <stdio.h>
#include <string.h>

#include "kinglet/kinglet.h"
#include "kinglet/kl_session.h"
#ifdef KL_TEST_PORTS
#include "kl_posix_net.h"
#include "kl_tls_bind.h"
#endif

static kl_client_t c;

/* Deterministic "entropy": enough for a test that sends nothing anywhere. */
static int fake_random(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(i * 7u + 1u);
    return 0;
}

int main(void)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "sensor@example.org/dev";
    cfg.password = "secret";
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.random = fake_random;
    int r = kl_client_init(&c, &cfg);
    if (r != 0) {
        printf("kl_client_init: %s\n", kl_strerror(r));
        return 1;
    }
    r = kl_client_connect(&c, 0, KL_CHANNEL_STARTTLS);
    if (r != 0) {
        printf("kl_client_connect: %s\n", kl_strerror(r));
        return 1;
    }
    size_t n = 0;
    const uint8_t *p = kl_engine_output(&c, &n);
    if (p == NULL || n == 0 || memcmp(p, "<?xml", 5) != 0) {
        printf("no stream header in the first flight\n");
        return 1;
    }
#ifdef KL_TEST_PORTS
    printf("ports %d %d\n", kl_posix_net_ops.open != NULL, kl_tls_mbedtls_ops.setup != NULL);
#endif
    printf("first flight %zu bytes; KL_ENABLE_SM=%d KL_ENABLE_SASL2=%d KL_ENABLE_BOSH=%d sizeof(kl_client_t)=%zu sizeof(kl_session_t)=%zu\n",
           n, KL_ENABLE_SM, KL_ENABLE_SASL2, KL_ENABLE_BOSH, sizeof(kl_client_t), sizeof(kl_session_t));
    return 0;
}
