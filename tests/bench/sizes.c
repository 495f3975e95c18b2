/* Prints the engine's RAM: sizeof the client state and its buffers. */
#include <stdio.h>

#include "kinglet/kinglet.h"

int main(void)
{
    printf("RAM (default kl_config_defaults.h):\n");
    printf("  kl_client_t          %6zu bytes  (everything the engine uses; no heap)\n", sizeof(kl_client_t));
    printf("    receive/stanza buf %6d bytes  KL_RX_BUF_SIZE\n", KL_RX_BUF_SIZE);
    printf("    transmit buf       %6d bytes  KL_TX_BUF_SIZE\n", KL_TX_BUF_SIZE);
    printf("    3 x kl_xml_t       %6zu bytes  (stream tokenizer, root snapshot, view)\n", 3 * sizeof(kl_xml_t));
    printf("  kl_cursor_t          %6zu bytes  (on the caller's stack while walking a stanza)\n", sizeof(kl_cursor_t));
    printf("  target: kl_client_t <= 8192 bytes without TLS: %s\n", sizeof(kl_client_t) <= 8192 ? "met" : "MISSED");
    return 0;
}
