/* kinglet — SMSC LAN9118/LAN9220 Ethernet as an lwIP netif (polled, NO_SYS).
 *
 *   netif_add(&nif, IP4_ADDR_ANY4, IP4_ADDR_ANY4, IP4_ADDR_ANY4, NULL,
 *             lan9118_netif_init, netif_input);
 *   netif_set_default(&nif); netif_set_up(&nif); dhcp_start(&nif);
 *   loop: lan9118_poll(&nif); sys_check_timeouts(); ...
 *
 * Receive is polled from the main loop (no interrupt): each frame goes
 * into one PBUF_POOL buffer (lwipopts.h: PBUF_POOL_BUFSIZE >= 1520,
 * ETH_PAD_SIZE 2); if the pool is empty the frame is dropped in the chip
 * and TCP retransmits. Transmit writes the pbuf chain straight into the TX
 * FIFO, one FIFO segment per pbuf (no copy).
 */
#ifndef KINGLET_MPS2_LAN9118_H
#define KINGLET_MPS2_LAN9118_H

#include "lwip/err.h"
#include "lwip/netif.h"

/* Base address on mps2-an385/an386 (AN386: "SMSC9220 at 0x40200000"). */
#define LAN9118_BASE 0x40200000u

/* netif init function for netif_add(): resets the chip, reads the MAC
 * address from its EEPROM registers (QEMU: -nic ...,mac=), enables RX/TX.
 * ERR_IF if no LAN9118 answers. */
err_t lan9118_netif_init(struct netif *netif);

/* Receive up to `budget` pending frames (0: all) into netif->input.
 * Also tracks the PHY link state. Returns the number of frames passed on. */
int lan9118_poll(struct netif *netif, int budget);

/* Counters since init. */
typedef struct lan9118_stats {
    uint32_t rx_frames, rx_dropped_nomem, rx_errors;
    uint32_t tx_frames, tx_busy;
} lan9118_stats_t;
const lan9118_stats_t *lan9118_stats(void);

#endif
