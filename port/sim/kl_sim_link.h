/* kinglet — the simulator's network link: lwIP (the device) on a libslirp
 * virtual Ethernet, on a Linux host, without root.
 *
 *   device 10.0.2.15 (DHCP from slirp, or static) --- slirp 10.0.2.2 (gateway)
 *                                                       10.0.2.100:P --> host 127.0.0.1:P
 *
 * Slirp runs in restricted mode with DNS (and everything else) off: the
 * device reaches nothing but the explicit forwards, each of which runs
 * the relay (kl_sim_relay_main, the simulator started again with
 * --relay P) that connects to the host's 127.0.0.1:P and nowhere else.
 * (libslirp 4.7 cannot forward the gateway address itself in restricted
 * mode: guest forwards must use another address of the virtual network,
 * hence 10.0.2.100.)
 *
 * UDP: libslirp 4.7 drops every UDP datagram in restricted mode except
 * DHCP and TFTP (udp_input: "if (slirp->restricted) goto bad"), and its
 * guest forwards (slirp_add_exec / _guestfwd) are TCP only. So the link
 * itself relays UDP for explicit ports (udp_fwd, e.g. a test's DNS
 * server): a datagram the device sends to 10.0.2.100:P is sent from a
 * host UDP socket to 127.0.0.1:P, and the answers come back as frames from
 * 10.0.2.100:P, through the same delay line. Nothing else leaves.
 *
 * Every frame goes through a delay line in each direction, which can add a
 * fixed one-way delay, drop the next N frames or cut the link (hooks for
 * fault tests). A cut link drops every frame both ways without a word (no
 * RST, no FIN: a radio out of range); kl_sim_link_flaps() cuts and restores
 * it on a seeded schedule, the same one for the same seed. Frames to the device are put in PBUF_POOL pbufs, as a NIC
 * driver does; when the pool is empty the frame is dropped and counted.
 *
 * The firmware-shaped main loop:
 *   lwip_init(); kl_sim_link_init(&link, &cfg);
 *   for (;;) { kl_sim_link_poll(&link, wait_ms); sys_check_timeouts(); step the engine; }
 */
#ifndef KINGLET_KL_SIM_LINK_H
#define KINGLET_KL_SIM_LINK_H

#include <poll.h>
#include <stdint.h>

#include "lwip/netif.h"

#define KL_SIM_FWD_ADDR "10.0.2.100" /* the host's loopback, as the device sees it */
#define KL_SIM_GATEWAY "10.0.2.2"
#define KL_SIM_DEVICE_ADDR "10.0.2.15"
#define KL_SIM_MAX_FWD 4
#define KL_SIM_MAX_UDP_FWD 2
#define KL_SIM_QUEUE_LEN 128          /* frames in flight per direction */
#define KL_SIM_FRAME_MAX 1536

typedef struct kl_sim_fwd {
    uint16_t port;        /* 10.0.2.100:port -> 127.0.0.1:port */
    const char *command;  /* run per connection by slirp, its stdio the
                             connection (e.g. "'/path/kinglet-sim' --relay 5222") */
} kl_sim_fwd_t;

typedef struct kl_sim_link_config {
    int static_ip;        /* 1: 10.0.2.15/24 gw 10.0.2.2 without DHCP */
    uint32_t delay_ms;    /* one-way delay, each direction */
    kl_sim_fwd_t fwd[KL_SIM_MAX_FWD];
    int n_fwd;
    uint16_t udp_fwd[KL_SIM_MAX_UDP_FWD]; /* 10.0.2.100:port/udp -> 127.0.0.1:port */
    int n_udp_fwd;
} kl_sim_link_config_t;

typedef struct kl_sim_frame {
    uint32_t due;
    uint16_t len;
    uint8_t data[KL_SIM_FRAME_MAX];
} kl_sim_frame_t;

typedef struct kl_sim_queue {
    kl_sim_frame_t f[KL_SIM_QUEUE_LEN];
    unsigned head, count;
} kl_sim_queue_t;

typedef struct kl_sim_counters {
    unsigned long frames, bytes;   /* delivered */
    unsigned long dropped_fault;   /* kl_sim_link_drop / cut */
    unsigned long dropped_full;    /* delay line full */
    unsigned long dropped_nopbuf;  /* device side: PBUF_POOL empty */
} kl_sim_counters_t;

typedef struct kl_sim_timer { /* slirp's timers (IPv6 RA only; unused with IPv6 off) */
    void (*cb)(void *);
    void *arg;
    int64_t expire_ms;   /* -1: not armed */
    int used;
} kl_sim_timer_t;

/* Link flaps: n times down for a duration drawn from [down_min, down_max]
 * ms, then up for one from [up_min, up_max] ms, from a xorshift generator
 * seeded with seed (0 is taken as 1): the same schedule on every run. */
typedef struct kl_sim_flaps {
    unsigned n;                   /* flaps wanted (0: none) */
    uint32_t down_min, down_max, up_min, up_max;
    uint64_t seed;
    /* state (kl_sim_link_poll moves it) */
    unsigned done;                /* flaps started so far */
    int active;                   /* the schedule runs */
    uint32_t t_next;              /* when the link changes next */
    uint32_t t_down;              /* when the latest down began */
    uint32_t last_down_ms;        /* how long the latest finished down lasted */
    unsigned ups;                 /* downs that ended (the link came back) */
    uint64_t x;                   /* the generator */
} kl_sim_flaps_t;

typedef struct kl_sim_link {
    void *slirp;                   /* Slirp * */
    struct netif netif;
    kl_sim_queue_t to_host, to_dev;
    uint32_t delay_ms;
    int cut;
    unsigned drop_to_host, drop_to_dev;
    kl_sim_counters_t c_to_host, c_to_dev;
    struct pollfd pfd[64];
    int npfd;
    kl_sim_timer_t timers[4];
    int static_ip;
    struct {                      /* the UDP relay (see above) */
        uint16_t port;
        int fd;
        uint8_t dev_mac[6], our_mac[6];
        uint8_t dev_ip[4];
        uint16_t dev_port;        /* network order; 0: the device has not sent yet */
        unsigned long to_host, to_dev;
    } udp[KL_SIM_MAX_UDP_FWD];
    int n_udp;
    kl_sim_flaps_t flaps;
} kl_sim_link_t;

/* Host-side helpers a NO_SYS port provides: lwIP's sys_now() is defined in
 * kl_sim_link.c (CLOCK_MONOTONIC), as is kl_sim_rand() for LWIP_RAND. */

/* lwip_init() first. Adds the netif (default, up), starts DHCP unless
 * static_ip, creates slirp with the forwards. 0 or -1 (message on stderr). */
int kl_sim_link_init(kl_sim_link_t *l, const kl_sim_link_config_t *cfg);

/* Move due frames, wait up to timeout_ms for the host side (slirp's
 * sockets) or the next due frame, move again. Calls into lwIP (netif
 * input) from here: call it from the main loop only. */
void kl_sim_link_poll(kl_sim_link_t *l, uint32_t timeout_ms);

/* Another TCP forward 10.0.2.100:port -> command (after init too). 0 / -1. */
int kl_sim_link_add_fwd(kl_sim_link_t *l, uint16_t port, const char *command);

/* 1 once the device has an address (DHCP bound, or static). */
int kl_sim_link_up(const kl_sim_link_t *l);

/* Fault hooks. dir: 'o' device->host, 'i' host->device. */
void kl_sim_link_set_delay(kl_sim_link_t *l, uint32_t ms);
void kl_sim_link_cut(kl_sim_link_t *l, int on);
void kl_sim_link_drop(kl_sim_link_t *l, char dir, unsigned n);

/* Start the flap schedule now (the first down begins after an up period
 * drawn like the others). f: counts, bounds and seed (its state fields are
 * ignored). */
void kl_sim_link_flaps(kl_sim_link_t *l, const kl_sim_flaps_t *f);
/* 1 while the link is cut (by kl_sim_link_cut or a flap). */
int kl_sim_link_is_cut(const kl_sim_link_t *l);
/* Milliseconds until the flap schedule changes the link, UINT32_MAX if it
 * does not run (kl_sim_link_poll wakes up for it by itself). */
uint32_t kl_sim_link_next_flap(const kl_sim_link_t *l);

void kl_sim_link_free(kl_sim_link_t *l);

/* The relay: stdin/stdout (a socket from slirp) <-> 127.0.0.1:port, with
 * half-closes passed on. Returns the process exit status. */
int kl_sim_relay_main(uint16_t port);

#endif
