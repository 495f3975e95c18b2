/* kinglet — lwipopts.h: lwIP 2.2 for one XMPP connection, NO_SYS=1.
 *
 * Everything comes from static pools: no libc malloc (MEM_LIBC_MALLOC=0),
 * no malloc'ed pools (MEMP_MEM_MALLOC=0). Statistics are on so that a pool
 * that runs dry shows up as stats.err (the simulator prints and the tests
 * check them). A firmware copies this file and keeps the TCP section; the
 * sizes below are what one STARTTLS XMPP session over mbedTLS needs.
 *
 * Sizing (one connection; x86-64 figures from the simulator's RAM report):
 *   TCP_MSS 1460        Ethernet MTU 1500 - 40; the server's TLS records
 *                       (up to 8 KB + 22) arrive as full segments.
 *   TCP_WND 4*MSS       5840 bytes: what the device lets the server have in
 *                       flight. Received pbufs stay queued (unacknowledged)
 *                       until TLS actually reads them, so this is also the
 *                       bound on queued receive data: the window closes
 *                       when the application reads slowly.
 *   TCP_SND_BUF 2*MSS   2920 bytes: a whole flight (stream header + command,
 *                       or one stanza up to KL_TX_BUF_SIZE, plus the TLS
 *                       record overhead) fits; written with
 *                       TCP_WRITE_FLAG_COPY, so it lives in the MEM_SIZE heap
 *                       until acknowledged.
 *   PBUF_POOL_SIZE 12   received frames (1536-byte buffers): a full window
 *                       (4 segments) + small segments + ARP/DHCP + slack.
 *   MEM_SIZE 8 KB       lwIP's own heap: TCP_SND_BUF of copied segments,
 *                       ACKs and headers, DHCP/ARP packets.
 */
#ifndef KL_LWIPOPTS_H
#define KL_LWIPOPTS_H

/* ---- system: bare-metal main loop ----------------------------------------- */
#define NO_SYS 1
#define LWIP_TIMERS 1
#define SYS_LIGHTWEIGHT_PROT 0 /* one thread: the main loop */
#define LWIP_NETCONN 0
#define LWIP_SOCKET 0

/* ---- memory: static pools only ---------------------------------------------- */
#define MEM_LIBC_MALLOC 0
#define MEMP_MEM_MALLOC 0
#define MEM_ALIGNMENT 8 /* x86-64 host; 4 on Cortex-M */
#define MEM_SIZE (8 * 1024)
#define MEMP_NUM_PBUF 8          /* PBUF_REF/ROM headers (not used on the data path) */
#define MEMP_NUM_RAW_PCB 0
#define MEMP_NUM_UDP_PCB 3       /* DHCP, DNS, one spare */
#define MEMP_NUM_TCP_PCB 4       /* BOSH: two live connections + two closing (TIME_WAIT) */
#define MEMP_NUM_TCP_PCB_LISTEN 1
#define MEMP_NUM_TCP_SEG 16      /* >= TCP_SND_QUEUELEN */
#define MEMP_NUM_ARP_QUEUE 4
#define PBUF_POOL_SIZE 12
#define MEMP_NUM_LOCALHOSTLIST 2 /* DNS static names (simulator: the server's name) */

/* ---- protocols -------------------------------------------------------------- */
#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define ETHARP_SUPPORT_STATIC_ENTRIES 0
#define ARP_TABLE_SIZE 4
#define ARP_QUEUEING 1
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_IGMP 0
#define LWIP_AUTOIP 0
#define LWIP_ACD 0
#define LWIP_DHCP 1
#define LWIP_DHCP_DOES_ACD_CHECK 0
#define LWIP_UDP 1
#define LWIP_DNS 1
#define DNS_TABLE_SIZE 2
#define DNS_MAX_NAME_LENGTH 128
#define DNS_LOCAL_HOSTLIST 1
#define DNS_LOCAL_HOSTLIST_IS_DYNAMIC 1
#define IP_REASSEMBLY 0 /* TCP segments never need it; saves the reassembly buffers */
#define IP_FRAG 0

/* ---- TCP: one XMPP connection ------------------------------------------------ */
#define LWIP_TCP 1
#define TCP_MSS 1460
#define TCP_WND (4 * TCP_MSS)
#define TCP_SND_BUF (2 * TCP_MSS)
#define TCP_SND_QUEUELEN ((4 * (TCP_SND_BUF) + (TCP_MSS - 1)) / (TCP_MSS))
#define TCP_QUEUE_OOSEQ 0 /* out-of-order segments are dropped and resent: no pool for them */
#define LWIP_TCP_KEEPALIVE 1
#define LWIP_ALTCP 0

/* ---- netif ------------------------------------------------------------------ */
#define LWIP_NETIF_STATUS_CALLBACK 1
#define LWIP_NETIF_LINK_CALLBACK 1
#define LWIP_SINGLE_NETIF 1

/* ---- statistics: pool exhaustion must be visible ------------------------------ */
#define LWIP_STATS 1
#define LWIP_STATS_DISPLAY 0
#define LINK_STATS 1
#define ETHARP_STATS 1
#define IP_STATS 1
#define TCP_STATS 1
#define UDP_STATS 1
#define MEM_STATS 1
#define MEMP_STATS 1
#define SYS_STATS 0

#endif
