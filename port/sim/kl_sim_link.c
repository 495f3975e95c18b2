/* kinglet — the simulator's link: lwIP netif <-> delay line <-> libslirp. */
#define _POSIX_C_SOURCE 200809L
#include "kl_sim_link.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include "lwip/dhcp.h"
#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "netif/ethernet.h"

/* ---- what a NO_SYS port provides to lwIP --------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

u32_t sys_now(void)
{
    return (u32_t)mono_ms();
}

uint32_t kl_sim_rand(void)
{
    static uint64_t x;
    if (x == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ 0x9e3779b97f4a7c15ull;
    }
    x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
    return (uint32_t)(x >> 16);
}

/* ---- the delay line ---------------------------------------------------------- */

static int take_fault(kl_sim_link_t *l, unsigned *drop, kl_sim_counters_t *cnt)
{
    if (l->cut || *drop > 0) {
        if (*drop > 0)
            (*drop)--;
        cnt->dropped_fault++;
        return 1;
    }
    return 0;
}

static kl_sim_frame_t *enqueue(kl_sim_link_t *l, kl_sim_queue_t *q, kl_sim_counters_t *cnt, size_t len)
{
    kl_sim_frame_t *f;
    if (len > KL_SIM_FRAME_MAX || q->count == KL_SIM_QUEUE_LEN) {
        cnt->dropped_full++;
        return NULL;
    }
    f = &q->f[(q->head + q->count++) % KL_SIM_QUEUE_LEN];
    f->due = sys_now() + l->delay_ms;
    f->len = (uint16_t)len;
    return f;
}

static kl_sim_frame_t *due_frame(kl_sim_queue_t *q, uint32_t now)
{
    kl_sim_frame_t *f;
    if (q->count == 0)
        return NULL;
    f = &q->f[q->head];
    return (int32_t)(now - f->due) >= 0 ? f : NULL;
}

static void dequeue(kl_sim_queue_t *q)
{
    q->head = (q->head + 1) % KL_SIM_QUEUE_LEN;
    q->count--;
}

/* Frames whose time has come: to slirp, and to the device as a NIC would. */
static void deliver(kl_sim_link_t *l)
{
    uint32_t now = sys_now();
    kl_sim_frame_t *f;
    while ((f = due_frame(&l->to_host, now)) != NULL) {
        l->c_to_host.frames++;
        l->c_to_host.bytes += f->len;
        slirp_input(l->slirp, f->data, f->len);
        dequeue(&l->to_host);
    }
    while ((f = due_frame(&l->to_dev, now)) != NULL) {
        struct pbuf *p = pbuf_alloc(PBUF_RAW, f->len, PBUF_POOL);
        if (p == NULL) {
            l->c_to_dev.dropped_nopbuf++;
        } else {
            pbuf_take(p, f->data, f->len);
            if (l->netif.input(p, &l->netif) != ERR_OK)
                pbuf_free(p);
            l->c_to_dev.frames++;
            l->c_to_dev.bytes += f->len;
        }
        dequeue(&l->to_dev);
    }
}

/* ---- link flaps: down and up on a seeded schedule ---------------------------- */

static uint32_t flap_draw(kl_sim_flaps_t *f, uint32_t lo, uint32_t hi)
{
    uint64_t x = f->x;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
    f->x = x;
    return hi > lo ? lo + (uint32_t)((x >> 11) % (uint64_t)(hi - lo + 1)) : lo;
}

/* Cut or restore the link when the schedule says so. */
static void flap_tick(kl_sim_link_t *l)
{
    kl_sim_flaps_t *f = &l->flaps;
    uint32_t now = sys_now();
    if (!f->active || (int32_t)(now - f->t_next) < 0)
        return;
    if (!l->cut) {
        uint32_t d = flap_draw(f, f->down_min, f->down_max);
        l->cut = 1;
        f->done++;
        f->t_down = now;
        f->t_next = now + d;
        fprintf(stderr, "sim link: flap %u/%u: down for %u ms\n", f->done, f->n, (unsigned)d);
    } else {
        l->cut = 0;
        f->ups++;
        f->last_down_ms = now - f->t_down;
        if (f->done == f->n) {
            f->active = 0;
            fprintf(stderr, "sim link: flap %u/%u: up again after %u ms; schedule done\n", f->done, f->n,
                    (unsigned)f->last_down_ms);
            return;
        }
        f->t_next = now + flap_draw(f, f->up_min, f->up_max);
        fprintf(stderr, "sim link: flap %u/%u: up again after %u ms\n", f->done, f->n, (unsigned)f->last_down_ms);
    }
}

void kl_sim_link_flaps(kl_sim_link_t *l, const kl_sim_flaps_t *cfg)
{
    kl_sim_flaps_t *f = &l->flaps;
    *f = *cfg;
    f->done = f->ups = 0;
    f->last_down_ms = f->t_down = 0;
    f->x = cfg->seed ? cfg->seed : 1;
    f->active = cfg->n > 0;
    if (f->active)
        f->t_next = sys_now() + flap_draw(f, f->up_min, f->up_max);
}

int kl_sim_link_is_cut(const kl_sim_link_t *l)
{
    return l->cut;
}

uint32_t kl_sim_link_next_flap(const kl_sim_link_t *l)
{
    int32_t d;
    if (!l->flaps.active)
        return UINT32_MAX;
    d = (int32_t)(l->flaps.t_next - sys_now());
    return d > 0 ? (uint32_t)d : 0;
}

/* ---- the UDP relay ------------------------------------------------------------- */

static uint16_t ip_csum(const uint8_t *h, size_t n)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(h[i] << 8 | h[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* A frame from the device: Ethernet + IPv4 (no options, not a fragment) +
 * UDP to 10.0.2.100:P for a relayed P? Then it goes to 127.0.0.1:P. */
static int udp_relay_out(kl_sim_link_t *l, const uint8_t *f, size_t len)
{
    struct in_addr fwd;
    const uint8_t *ip = f + 14, *udp;
    uint16_t dport, ulen;
    if (l->n_udp == 0 || len < 14 + 20 + 8 || f[12] != 0x08 || f[13] != 0x00 || ip[0] != 0x45 || ip[9] != 17 ||
        (ip[6] & 0x3f) != 0 || ip[7] != 0)
        return 0;
    inet_pton(AF_INET, KL_SIM_FWD_ADDR, &fwd);
    if (memcmp(ip + 16, &fwd, 4) != 0)
        return 0;
    udp = ip + 20;
    dport = (uint16_t)(udp[2] << 8 | udp[3]);
    ulen = (uint16_t)(udp[4] << 8 | udp[5]);
    for (int i = 0; i < l->n_udp; i++) {
        struct sockaddr_in to;
        if (l->udp[i].port != dport)
            continue;
        if (ulen < 8 || (size_t)ulen > len - 14 - 20)
            return 1; /* malformed: dropped */
        memcpy(l->udp[i].dev_mac, f + 6, 6);
        memcpy(l->udp[i].our_mac, f, 6);
        memcpy(l->udp[i].dev_ip, ip + 12, 4);
        memcpy(&l->udp[i].dev_port, udp, 2);
        memset(&to, 0, sizeof to);
        to.sin_family = AF_INET;
        to.sin_port = htons(dport);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (sendto(l->udp[i].fd, udp + 8, (size_t)ulen - 8, 0, (struct sockaddr *)&to, sizeof to) >= 0)
            l->udp[i].to_host++;
        return 1;
    }
    return 0;
}

/* Answers from 127.0.0.1:P, as frames from 10.0.2.100:P to the device. */
static void udp_relay_in(kl_sim_link_t *l, int i)
{
    uint8_t buf[1500];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(l->udp[i].fd, buf, sizeof buf - 14 - 28, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
    kl_sim_frame_t *f;
    uint8_t *ip, *udp;
    static uint16_t ip_id;
    struct in_addr fwd;
    if (n < 0 || l->udp[i].dev_port == 0 || from.sin_addr.s_addr != htonl(INADDR_LOOPBACK) ||
        ntohs(from.sin_port) != l->udp[i].port)
        return;
    if (take_fault(l, &l->drop_to_dev, &l->c_to_dev))
        return;
    f = enqueue(l, &l->to_dev, &l->c_to_dev, (size_t)n + 14 + 28);
    if (f == NULL)
        return;
    memcpy(f->data, l->udp[i].dev_mac, 6);
    memcpy(f->data + 6, l->udp[i].our_mac, 6);
    f->data[12] = 0x08, f->data[13] = 0x00;
    ip = f->data + 14;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    ip[2] = (uint8_t)((n + 28) >> 8), ip[3] = (uint8_t)(n + 28);
    ip_id++;
    ip[4] = (uint8_t)(ip_id >> 8), ip[5] = (uint8_t)ip_id;
    ip[8] = 64, ip[9] = 17;
    inet_pton(AF_INET, KL_SIM_FWD_ADDR, &fwd);
    memcpy(ip + 12, &fwd, 4);
    memcpy(ip + 16, l->udp[i].dev_ip, 4);
    {
        uint16_t c = ip_csum(ip, 20);
        ip[10] = (uint8_t)(c >> 8), ip[11] = (uint8_t)c;
    }
    udp = ip + 20;
    udp[0] = (uint8_t)(l->udp[i].port >> 8), udp[1] = (uint8_t)l->udp[i].port;
    memcpy(udp + 2, &l->udp[i].dev_port, 2);
    udp[4] = (uint8_t)((n + 8) >> 8), udp[5] = (uint8_t)(n + 8);
    udp[6] = udp[7] = 0; /* no checksum (IPv4 allows it) */
    memcpy(udp + 8, buf, (size_t)n);
    l->udp[i].to_dev++;
}

/* ---- lwIP side: the NIC driver ------------------------------------------------ */

static err_t linkoutput(struct netif *netif, struct pbuf *p)
{
    kl_sim_link_t *l = netif->state;
    kl_sim_frame_t *f;
    if (take_fault(l, &l->drop_to_host, &l->c_to_host))
        return ERR_OK; /* a lossy wire: the frame is gone */
    if (l->n_udp > 0 && p->tot_len <= KL_SIM_FRAME_MAX) {
        uint8_t frame[KL_SIM_FRAME_MAX];
        pbuf_copy_partial(p, frame, p->tot_len, 0);
        if (udp_relay_out(l, frame, p->tot_len))
            return ERR_OK;
    }
    f = enqueue(l, &l->to_host, &l->c_to_host, p->tot_len);
    if (f != NULL)
        pbuf_copy_partial(p, f->data, p->tot_len, 0);
    return ERR_OK;
}

static err_t netif_setup(struct netif *netif)
{
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    netif->name[0] = 's';
    netif->name[1] = 'l';
    netif->mtu = 1500;
    netif->hwaddr_len = ETH_HWADDR_LEN;
    memcpy(netif->hwaddr, mac, sizeof mac);
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    netif->output = etharp_output;
    netif->linkoutput = linkoutput;
    return ERR_OK;
}

/* ---- slirp side ------------------------------------------------------------------ */

static ssize_t slirp_send_packet(const void *buf, size_t len, void *opaque)
{
    kl_sim_link_t *l = opaque;
    kl_sim_frame_t *f;
    /* Called from inside slirp_input (ARP, TCP answers): only queue here,
     * lwIP is entered from deliver(). */
    if (take_fault(l, &l->drop_to_dev, &l->c_to_dev))
        return (ssize_t)len;
    f = enqueue(l, &l->to_dev, &l->c_to_dev, len);
    if (f != NULL)
        memcpy(f->data, buf, len);
    return (ssize_t)len;
}

static void slirp_guest_error(const char *msg, void *opaque)
{
    (void)opaque;
    fprintf(stderr, "sim link: slirp: %s\n", msg);
}

static int64_t slirp_clock_ns(void *opaque)
{
    struct timespec ts;
    (void)opaque;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *slirp_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    kl_sim_link_t *l = opaque;
    for (unsigned i = 0; i < sizeof l->timers / sizeof l->timers[0]; i++)
        if (!l->timers[i].used) {
            l->timers[i].used = 1;
            l->timers[i].cb = cb;
            l->timers[i].arg = cb_opaque;
            l->timers[i].expire_ms = -1;
            return &l->timers[i];
        }
    fprintf(stderr, "sim link: out of slirp timers\n");
    return NULL;
}

static void slirp_timer_free(void *timer, void *opaque)
{
    (void)opaque;
    if (timer != NULL)
        memset(timer, 0, sizeof(kl_sim_timer_t));
}

static void slirp_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    if (timer != NULL)
        ((kl_sim_timer_t *)timer)->expire_ms = expire_ms;
}

static void slirp_noop_fd(int fd, void *opaque)
{
    (void)fd;
    (void)opaque;
}

static void slirp_notify(void *opaque)
{
    (void)opaque;
}

static int add_poll(int fd, int events, void *opaque)
{
    kl_sim_link_t *l = opaque;
    short ev = 0;
    if (l->npfd == (int)(sizeof l->pfd / sizeof l->pfd[0]))
        return -1;
    if (events & SLIRP_POLL_IN)
        ev |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        ev |= POLLPRI;
    l->pfd[l->npfd] = (struct pollfd){fd, ev, 0};
    return l->npfd++;
}

static int get_revents(int idx, void *opaque)
{
    kl_sim_link_t *l = opaque;
    short r;
    int ev = 0;
    if (idx < 0 || idx >= l->npfd)
        return 0;
    r = l->pfd[idx].revents;
    if (r & POLLIN)
        ev |= SLIRP_POLL_IN;
    if (r & POLLOUT)
        ev |= SLIRP_POLL_OUT;
    if (r & POLLPRI)
        ev |= SLIRP_POLL_PRI;
    if (r & POLLERR)
        ev |= SLIRP_POLL_ERR;
    if (r & POLLHUP)
        ev |= SLIRP_POLL_HUP;
    return ev;
}

static const SlirpCb callbacks = {
    .send_packet = slirp_send_packet,
    .guest_error = slirp_guest_error,
    .clock_get_ns = slirp_clock_ns,
    .timer_new = slirp_timer_new,
    .timer_free = slirp_timer_free,
    .timer_mod = slirp_timer_mod,
    .register_poll_fd = slirp_noop_fd,
    .unregister_poll_fd = slirp_noop_fd,
    .notify = slirp_notify,
};

int kl_sim_link_init(kl_sim_link_t *l, const kl_sim_link_config_t *cfg)
{
    SlirpConfig sc;
    ip4_addr_t ip, mask, gw;
    memset(l, 0, sizeof *l);
    l->delay_ms = cfg->delay_ms;
    l->static_ip = cfg->static_ip;

    memset(&sc, 0, sizeof sc);
    sc.version = 4;
    sc.restricted = 1;           /* only the forwards below; no NAT to anywhere */
    sc.in_enabled = true;
    inet_pton(AF_INET, "10.0.2.0", &sc.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &sc.vnetmask);
    inet_pton(AF_INET, KL_SIM_GATEWAY, &sc.vhost);
    inet_pton(AF_INET, KL_SIM_DEVICE_ADDR, &sc.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &sc.vnameserver);
    sc.in6_enabled = false;
    sc.vhostname = "kinglet-sim";
    sc.disable_host_loopback = true; /* the forwards' relay is the only way to the host */
    sc.disable_dns = true;           /* no DNS forwarding */
    sc.disable_dhcp = cfg->static_ip ? true : false;
    l->slirp = slirp_new(&sc, &callbacks, l);
    if (l->slirp == NULL) {
        fprintf(stderr, "sim link: slirp_new failed\n");
        return -1;
    }
    for (int i = 0; i < cfg->n_fwd && i < KL_SIM_MAX_FWD; i++) {
        struct in_addr a;
        inet_pton(AF_INET, KL_SIM_FWD_ADDR, &a);
        if (slirp_add_exec(l->slirp, cfg->fwd[i].command, &a, cfg->fwd[i].port) != 0) {
            fprintf(stderr, "sim link: cannot add the forward to port %u\n", (unsigned)cfg->fwd[i].port);
            return -1;
        }
    }

    for (int i = 0; i < cfg->n_udp_fwd && i < KL_SIM_MAX_UDP_FWD; i++) {
        struct sockaddr_in me;
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        memset(&me, 0, sizeof me);
        me.sin_family = AF_INET;
        me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof me) != 0) {
            fprintf(stderr, "sim link: cannot open the UDP relay for port %u\n", (unsigned)cfg->udp_fwd[i]);
            if (fd >= 0)
                close(fd);
            return -1;
        }
        l->udp[l->n_udp].fd = fd;
        l->udp[l->n_udp].port = cfg->udp_fwd[i];
        l->n_udp++;
    }

    if (cfg->static_ip) {
        ip4addr_aton(KL_SIM_DEVICE_ADDR, &ip);
        ip4addr_aton("255.255.255.0", &mask);
        ip4addr_aton(KL_SIM_GATEWAY, &gw);
    } else {
        ip4_addr_set_zero(&ip);
        ip4_addr_set_zero(&mask);
        ip4_addr_set_zero(&gw);
    }
    if (netif_add(&l->netif, &ip, &mask, &gw, l, netif_setup, ethernet_input) == NULL) {
        fprintf(stderr, "sim link: netif_add failed\n");
        return -1;
    }
    netif_set_default(&l->netif);
    netif_set_up(&l->netif);
    netif_set_link_up(&l->netif);
    if (!cfg->static_ip && dhcp_start(&l->netif) != ERR_OK) {
        fprintf(stderr, "sim link: dhcp_start failed\n");
        return -1;
    }
    return 0;
}

int kl_sim_link_add_fwd(kl_sim_link_t *l, uint16_t port, const char *command)
{
    struct in_addr a;
    inet_pton(AF_INET, KL_SIM_FWD_ADDR, &a);
    if (slirp_add_exec(l->slirp, command, &a, port) != 0) {
        fprintf(stderr, "sim link: cannot add the forward to port %u\n", (unsigned)port);
        return -1;
    }
    return 0;
}

int kl_sim_link_up(const kl_sim_link_t *l)
{
    if (l->static_ip)
        return netif_is_up(&l->netif);
    return dhcp_supplied_address(&l->netif);
}

void kl_sim_link_poll(kl_sim_link_t *l, uint32_t timeout_ms)
{
    uint32_t tmo = timeout_ms, now;
    int64_t nowms;
    int r;

    flap_tick(l);
    deliver(l);
    now = sys_now();
    if (kl_sim_link_next_flap(l) < tmo)
        tmo = kl_sim_link_next_flap(l);
    if (l->to_host.count > 0) {
        uint32_t d = l->to_host.f[l->to_host.head].due - now;
        if ((int32_t)d < 0)
            d = 0;
        if (d < tmo)
            tmo = d;
    }
    if (l->to_dev.count > 0) {
        uint32_t d = l->to_dev.f[l->to_dev.head].due - now;
        if ((int32_t)d < 0)
            d = 0;
        if (d < tmo)
            tmo = d;
    }
    nowms = mono_ms();
    for (unsigned i = 0; i < sizeof l->timers / sizeof l->timers[0]; i++)
        if (l->timers[i].used && l->timers[i].expire_ms >= 0) {
            int64_t d = l->timers[i].expire_ms - nowms;
            if (d < 0)
                d = 0;
            if (d < tmo)
                tmo = (uint32_t)d;
        }
    l->npfd = 0;
    slirp_pollfds_fill(l->slirp, &tmo, add_poll, l);
    {
        int base = l->npfd;
        for (int i = 0; i < l->n_udp && l->npfd < (int)(sizeof l->pfd / sizeof l->pfd[0]); i++)
            l->pfd[l->npfd++] = (struct pollfd){l->udp[i].fd, POLLIN, 0};
        r = poll(l->pfd, (nfds_t)l->npfd, tmo > 0x7fffffffu ? -1 : (int)tmo);
        for (int i = 0; i < l->n_udp && base + i < l->npfd; i++)
            if (r > 0 && (l->pfd[base + i].revents & POLLIN))
                udp_relay_in(l, i);
        l->npfd = base; /* slirp's indexes only */
    }
    slirp_pollfds_poll(l->slirp, r < 0, get_revents, l);
    nowms = mono_ms();
    for (unsigned i = 0; i < sizeof l->timers / sizeof l->timers[0]; i++)
        if (l->timers[i].used && l->timers[i].expire_ms >= 0 && l->timers[i].expire_ms <= nowms) {
            l->timers[i].expire_ms = -1;
            l->timers[i].cb(l->timers[i].arg);
        }
    flap_tick(l);
    deliver(l);
}

void kl_sim_link_set_delay(kl_sim_link_t *l, uint32_t ms)
{
    l->delay_ms = ms;
}

void kl_sim_link_cut(kl_sim_link_t *l, int on)
{
    l->cut = on;
}

void kl_sim_link_drop(kl_sim_link_t *l, char dir, unsigned n)
{
    if (dir == 'o')
        l->drop_to_host += n;
    else
        l->drop_to_dev += n;
}

void kl_sim_link_free(kl_sim_link_t *l)
{
    for (int i = 0; i < l->n_udp; i++)
        close(l->udp[i].fd);
    l->n_udp = 0;
    if (l->slirp != NULL)
        slirp_cleanup(l->slirp);
    l->slirp = NULL;
    netif_remove(&l->netif);
}
