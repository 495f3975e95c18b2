/* kinglet — lwIP 2.2 options for the mps2 firmware image (NO_SYS=1).
 *
 * Sized for one XMPP connection over TLS on a 64 KB part: every byte lwIP
 * uses is a static pool or its static heap (MEM_SIZE), counted by the
 * linker against the RAM budget; no libc malloc. RAM (see `make size`):
 *   PBUF_POOL   PBUF_POOL_SIZE x 1520 B  receive frames (one frame each)
 *   MEM_SIZE    TX segments (tcp_write copies) and DHCP/ARP packets
 *   memp pools  PCBs, TCP segments, pbuf headers, timeouts
 */
#ifndef KINGLET_MPS2_LWIPOPTS_H
#define KINGLET_MPS2_LWIPOPTS_H

/* ---- system ------------------------------------------------------------ */
#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0 /* one main loop, no lwIP calls from interrupts */
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0
#define LWIP_SINGLE_NETIF 1

/* ---- memory: static only ------------------------------------------------ */
#define MEM_LIBC_MALLOC 0
#define MEMP_MEM_MALLOC 0
#define MEM_ALIGNMENT 4
/* TX: tcp_write copies into heap pbufs; unacknowledged data is bounded by
 * TCP_SND_BUF (2920) plus per-segment headers (~8 x 70), and DHCP/ARP
 * packets take ~600 more: 4 KB holds that by construction. Measured
 * high-water (xmpp_sensor against Prosody): 620 bytes. */
#ifndef MEM_SIZE
#define MEM_SIZE (4 * 1024)
#endif
#define MEMP_NUM_PBUF 8
#define MEMP_NUM_RAW_PCB 0
#define MEMP_NUM_UDP_PCB 2   /* DHCP (+ DNS) */
#define MEMP_NUM_TCP_PCB 2   /* the XMPP connection + one closing */
#define MEMP_NUM_TCP_PCB_LISTEN 0
#define MEMP_NUM_TCP_SEG 16
#define MEMP_NUM_REASSDATA 0
#define MEMP_NUM_FRAG_PBUF 0
#define MEMP_NUM_ARP_QUEUE 4
#ifndef PBUF_POOL_SIZE
#define PBUF_POOL_SIZE 6
#endif
/* One received frame per pool buffer: 2 bytes of ETH_PAD_SIZE + 1518
 * (frame with FCS), which the driver reads in whole words. */
#define PBUF_POOL_BUFSIZE 1520

/* ---- link -------------------------------------------------------------- */
#define LWIP_ARP 1
#define ARP_TABLE_SIZE 4
#define ARP_QUEUEING 1
#define ETH_PAD_SIZE 2 /* IP headers 4-byte aligned */
#define LWIP_NETIF_STATUS_CALLBACK 1
#define LWIP_NETIF_LINK_CALLBACK 1
#define LWIP_NETIF_HOSTNAME 1

/* ---- IP ------------------------------------------------------------------ */
#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define IP_REASSEMBLY 0
#define IP_FRAG 0
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_IGMP 0
#define LWIP_AUTOIP 0
#define LWIP_ACD 0
#define LWIP_DHCP 1
#define LWIP_DHCP_DOES_ACD_CHECK 0
/* DNS: port/lwip resolves a server given by name (dns_gethostbyname); one
 * table entry is enough for one connection. Under QEMU's restricted network
 * there is no resolver: the tests give the server by address. */
#define LWIP_DNS 1
#define DNS_TABLE_SIZE 1
#define DNS_MAX_NAME_LENGTH 128
#define DNS_MAX_SERVERS 1
#define LWIP_UDP 1

/* ---- TCP ------------------------------------------------------------------ */
#define LWIP_TCP 1
#define TCP_MSS 1460
#define TCP_WND (2 * TCP_MSS)
#define TCP_SND_BUF (2 * TCP_MSS)
#define TCP_SND_QUEUELEN ((4 * TCP_SND_BUF + TCP_MSS - 1) / TCP_MSS)
#define TCP_QUEUE_OOSEQ 0 /* out-of-order segments are dropped, not held */
#define LWIP_TCP_KEEPALIVE 1
#define LWIP_ALTCP 0
#define LWIP_CALLBACK_API 1

/* ---- checksums, stats, debug ------------------------------------------------ */
#define LWIP_STATS 1 /* pool high-water marks for the RAM report */
#define LWIP_STATS_DISPLAY 0
#define LINK_STATS 0
#define ETHARP_STATS 0
#define IP_STATS 0
#define ICMP_STATS 0
#define UDP_STATS 0
#define TCP_STATS 0
#define SYS_STATS 0
#define MEM_STATS 1
#define MEMP_STATS 1

#endif
