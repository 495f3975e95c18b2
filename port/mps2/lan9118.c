/* kinglet — SMSC LAN9118 / LAN9220 driver for lwIP (polled). */
#include <string.h>

#include "lan9118.h"

#include "lwip/etharp.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "netif/ethernet.h"

#include "board.h"

#define REG(off) (*(volatile uint32_t *)(LAN9118_BASE + (off)))

#define RX_DATA_FIFO 0x00
#define TX_DATA_FIFO 0x20
#define RX_STATUS_FIFO 0x40
#define TX_STATUS_FIFO 0x48
#define ID_REV 0x50
#define IRQ_CFG 0x54
#define INT_STS 0x58
#define INT_EN 0x5C
#define BYTE_TEST 0x64
#define RX_CFG 0x6C
#define TX_CFG 0x70
#define HW_CFG 0x74
#define RX_FIFO_INF 0x7C
#define TX_FIFO_INF 0x80
#define PMT_CTRL 0x84
#define MAC_CSR_CMD 0xA4
#define MAC_CSR_DATA 0xA8

#define HW_CFG_SRST (1u << 0)
#define PMT_CTRL_READY (1u << 0)
#define TX_CFG_TX_ON (1u << 1)
#define TX_CFG_TXSAO (1u << 2) /* TX status may overrun: we never read it */
#define MAC_CSR_BUSY (1u << 31)
#define MAC_CSR_READ (1u << 30)

#define MAC_CR 1
#define MAC_ADDRH 2
#define MAC_ADDRL 3
#define MAC_MII_ACC 6
#define MAC_MII_DATA 7
#define MAC_CR_RXEN (1u << 2)
#define MAC_CR_TXEN (1u << 3)
#define MAC_CR_FDPX (1u << 20)

#define PHY_ADDR 1
#define PHY_BSR 1
#define PHY_BSR_LINK (1u << 2)

#define TX_CMD_A_FIRST (1u << 13)
#define TX_CMD_A_LAST (1u << 12)
#define RX_STS_ES (1u << 15) /* error summary */

#define FRAME_MAX 1518 /* with FCS, no VLAN tag */

static lan9118_stats_t st;
static uint32_t last_link_check;

const lan9118_stats_t *lan9118_stats(void)
{
    return &st;
}

static int wait_clear(uint32_t off, uint32_t mask)
{
    for (uint32_t i = 0; i < 100000u; i++)
        if (!(REG(off) & mask))
            return 0;
    return -1;
}

static uint32_t mac_read(uint8_t reg)
{
    REG(MAC_CSR_CMD) = MAC_CSR_BUSY | MAC_CSR_READ | reg;
    (void)wait_clear(MAC_CSR_CMD, MAC_CSR_BUSY);
    return REG(MAC_CSR_DATA);
}

static void mac_write(uint8_t reg, uint32_t val)
{
    REG(MAC_CSR_DATA) = val;
    REG(MAC_CSR_CMD) = MAC_CSR_BUSY | reg;
    (void)wait_clear(MAC_CSR_CMD, MAC_CSR_BUSY);
}

static uint16_t phy_read(uint8_t reg)
{
    /* MII_ACC: PHY address [15:11], register [10:6], write bit 1, busy bit 0 */
    mac_write(MAC_MII_ACC, (PHY_ADDR << 11) | ((uint32_t)reg << 6) | 1u);
    for (int i = 0; i < 1000 && (mac_read(MAC_MII_ACC) & 1u); i++)
        ;
    return (uint16_t)mac_read(MAC_MII_DATA);
}

static void update_link(struct netif *netif)
{
    int up = (phy_read(PHY_BSR) & PHY_BSR_LINK) != 0;
    if (up && !netif_is_link_up(netif))
        netif_set_link_up(netif);
    else if (!up && netif_is_link_up(netif))
        netif_set_link_down(netif);
}

/* Write one pbuf as one TX FIFO segment: the chip skips `off` leading
 * bytes of the first word, so the payload is sent from its own memory. */
static void tx_segment(const uint8_t *data, uint16_t len, uint16_t tot_len, uint32_t flags)
{
    uint32_t off = (uintptr_t)data & 3u;
    const uint32_t *w = (const uint32_t *)(uintptr_t)((uintptr_t)data - off);
    uint32_t words = (off + len + 3u) / 4u;
    REG(TX_DATA_FIFO) = flags | (off << 16) | len;
    REG(TX_DATA_FIFO) = ((uint32_t)tot_len << 16) | tot_len; /* tag = length */
    while (words--)
        REG(TX_DATA_FIFO) = *w++;
}

static err_t lan9118_output(struct netif *netif, struct pbuf *p)
{
    (void)netif;
#if ETH_PAD_SIZE
    pbuf_remove_header(p, ETH_PAD_SIZE);
#endif
    uint16_t tot = p->tot_len;
    /* TDFREE in bytes on the chip (words in QEMU's model: either way this
     * asks for enough room, with the command words and alignment slack). */
    uint32_t need = tot + 16u * (uint32_t)pbuf_clen(p);
    uint32_t t0 = board_millis();
    while ((REG(TX_FIFO_INF) & 0xFFFFu) < need) {
        if (board_millis() - t0 > 10u) {
            st.tx_busy++;
#if ETH_PAD_SIZE
            pbuf_add_header(p, ETH_PAD_SIZE);
#endif
            return ERR_IF;
        }
    }
    for (struct pbuf *q = p; q != NULL; q = q->next) {
        uint32_t flags = (q == p ? TX_CMD_A_FIRST : 0u) | (q->next == NULL ? TX_CMD_A_LAST : 0u);
        if (q->len == 0 && q->next != NULL)
            continue;
        tx_segment((const uint8_t *)q->payload, q->len, tot, flags);
    }
    st.tx_frames++;
#if ETH_PAD_SIZE
    pbuf_add_header(p, ETH_PAD_SIZE);
#endif
    return ERR_OK;
}

static void rx_discard(uint32_t words)
{
    while (words--)
        (void)REG(RX_DATA_FIFO);
}

int lan9118_poll(struct netif *netif, int budget)
{
    int n = 0;
    /* the PHY is slow to ask; the link rarely changes */
    if (board_millis() - last_link_check >= 500u) {
        last_link_check = board_millis();
        update_link(netif);
    }
    while ((REG(RX_FIFO_INF) >> 16) & 0xFFu) {
        if (budget > 0 && n >= budget)
            break;
        uint32_t status = REG(RX_STATUS_FIFO);
        uint32_t len = (status >> 16) & 0x3FFFu; /* frame + FCS */
        /* RX_CFG RXDOFF = ETH_PAD_SIZE: the frame starts that many bytes
         * into the first word. */
        uint32_t words = (ETH_PAD_SIZE + len + 3u) / 4u;
        if ((status & RX_STS_ES) || len < 64u - 4u || len > FRAME_MAX) {
            st.rx_errors++;
            rx_discard(words);
            continue;
        }
        struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)(ETH_PAD_SIZE + len), PBUF_POOL);
        if (p == NULL || p->next != NULL || words * 4u > PBUF_POOL_BUFSIZE) {
            if (p)
                pbuf_free(p);
            st.rx_dropped_nomem++;
            LINK_STATS_INC(link.memerr);
            rx_discard(words);
            continue;
        }
        uint32_t *w = (uint32_t *)p->payload; /* pool payloads are word-aligned */
        for (uint32_t i = 0; i < words; i++)
            w[i] = REG(RX_DATA_FIFO);
        pbuf_realloc(p, (u16_t)(ETH_PAD_SIZE + len - 4u)); /* drop the FCS */
        st.rx_frames++;
        if (netif->input(p, netif) != ERR_OK)
            pbuf_free(p);
        n++;
    }
    return n;
}

err_t lan9118_netif_init(struct netif *netif)
{
    if (REG(BYTE_TEST) != 0x87654321u)
        return ERR_IF;
    REG(HW_CFG) = HW_CFG_SRST;
    if (wait_clear(HW_CFG, HW_CFG_SRST) != 0)
        return ERR_IF;
    for (uint32_t i = 0; i < 100000u && !(REG(PMT_CTRL) & PMT_CTRL_READY); i++)
        ;
    REG(INT_EN) = 0;
    REG(INT_STS) = 0xFFFFFFFFu;
    REG(IRQ_CFG) = 0;

    /* The MAC address the chip loaded from its EEPROM. */
    uint32_t lo = mac_read(MAC_ADDRL), hi = mac_read(MAC_ADDRH);
    netif->hwaddr_len = ETH_HWADDR_LEN;
    netif->hwaddr[0] = (uint8_t)lo;
    netif->hwaddr[1] = (uint8_t)(lo >> 8);
    netif->hwaddr[2] = (uint8_t)(lo >> 16);
    netif->hwaddr[3] = (uint8_t)(lo >> 24);
    netif->hwaddr[4] = (uint8_t)hi;
    netif->hwaddr[5] = (uint8_t)(hi >> 8);

    REG(RX_CFG) = (uint32_t)ETH_PAD_SIZE << 8; /* RXDOFF */
    REG(TX_CFG) = TX_CFG_TX_ON | TX_CFG_TXSAO;
    /* Exact MAC match + broadcast; full duplex (QEMU's PHY says 100FD). */
    mac_write(MAC_CR, MAC_CR_RXEN | MAC_CR_TXEN | MAC_CR_FDPX);

    netif->name[0] = 'e';
    netif->name[1] = 'n';
    netif->mtu = 1500;
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    netif->output = etharp_output;
    netif->linkoutput = lan9118_output;
#if LWIP_NETIF_HOSTNAME
    if (netif->hostname == NULL)
        netif->hostname = "kinglet";
#endif
    last_link_check = board_millis();
    update_link(netif);
    return ERR_OK;
}
