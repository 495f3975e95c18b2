/* kinglet — netcheck: the mps2 board port's bring-up test.
 *
 * Boots, prints over the UART, brings up the LAN9118 netif with lwIP DHCP
 * (QEMU's user network: 10.0.2.15/24, gateway 10.0.2.2), then opens a TCP
 * connection to NETCHECK_SERVER (default 10.0.2.100:7, which QEMU's
 * guestfwd maps to a port on the host's loopback) and checks that an echo
 * server returns what it sent: the engine's first flight (kinglet core
 * running on the device) followed by a payload of NETCHECK_BULK bytes
 * (several TCP segments in each direction). Ends with a RAM report and
 * "netcheck: PASS" or "netcheck: FAIL <why>", then exits QEMU through
 * semihosting (status 0 or 1).
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "lan9118.h"

#include "lwip/dhcp.h"
#include "lwip/init.h"
#include "lwip/ip_addr.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

#include "kinglet/kinglet.h"

#ifndef NETCHECK_SERVER_IP
#define NETCHECK_SERVER_IP "10.0.2.100"
#endif
#ifndef NETCHECK_SERVER_PORT
#define NETCHECK_SERVER_PORT 7
#endif
#ifndef NETCHECK_BULK
#define NETCHECK_BULK 6000
#endif
#define DHCP_TIMEOUT_MS 15000u
#define ECHO_TIMEOUT_MS 15000u

extern uint32_t __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __ram_used[], __flash_used[];

static struct netif nif;
static kl_client_t client; /* kinglet's whole client state */

/* ---- the echo exchange --------------------------------------------------- */
static struct {
    struct tcp_pcb *pcb;
    const uint8_t *head; /* the engine's first flight */
    size_t head_len;
    size_t total;        /* head_len + NETCHECK_BULK */
    size_t sent, rcvd;
    uint32_t mismatch_at; /* 0: none; else offset + 1 */
    int connected, closed;
    err_t err;
} ex;

static uint8_t expected_byte(size_t off)
{
    if (off < ex.head_len)
        return ex.head[off];
    off -= ex.head_len;
    return (uint8_t)('a' + (off * 7u + off / 251u) % 26u);
}

static void push_more(struct tcp_pcb *pcb)
{
    uint8_t chunk[256];
    while (ex.sent < ex.total) {
        size_t n = ex.total - ex.sent;
        if (n > sizeof chunk)
            n = sizeof chunk;
        if (n > tcp_sndbuf(pcb))
            n = tcp_sndbuf(pcb);
        if (n == 0 || tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN - 1)
            break;
        for (size_t i = 0; i < n; i++)
            chunk[i] = expected_byte(ex.sent + i);
        err_t e = tcp_write(pcb, chunk, (u16_t)n, TCP_WRITE_FLAG_COPY);
        if (e == ERR_MEM)
            break;
        if (e != ERR_OK) {
            ex.err = e;
            return;
        }
        ex.sent += n;
    }
    tcp_output(pcb);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    (void)arg;
    (void)len;
    push_more(pcb);
    return ERR_OK;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    (void)arg;
    if (p == NULL) {
        ex.closed = 1;
        return ERR_OK;
    }
    if (err != ERR_OK) {
        pbuf_free(p);
        return err;
    }
    for (struct pbuf *q = p; q != NULL; q = q->next) {
        const uint8_t *d = (const uint8_t *)q->payload;
        for (u16_t i = 0; i < q->len; i++, ex.rcvd++)
            if (!ex.mismatch_at && (ex.rcvd >= ex.total || d[i] != expected_byte(ex.rcvd)))
                ex.mismatch_at = (uint32_t)ex.rcvd + 1;
    }
    tcp_recved(pcb, p->tot_len);
    pbuf_free(p);
    return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
    (void)arg;
    ex.err = err;
    ex.pcb = NULL; /* lwIP freed it */
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    (void)arg;
    if (err != ERR_OK) {
        ex.err = err;
        return err;
    }
    ex.connected = 1;
    push_more(pcb);
    return ERR_OK;
}

/* ---- main loop ------------------------------------------------------------- */
static void poll_net(void)
{
    lan9118_poll(&nif, 0);
    sys_check_timeouts();
}

static void run_until(int (*done)(void), uint32_t timeout_ms)
{
    uint32_t t0 = board_millis();
    while (!done() && board_millis() - t0 < timeout_ms) {
        poll_net();
        board_idle(); /* SysTick wakes us every ms */
    }
}

static int dhcp_done(void)
{
    return dhcp_supplied_address(&nif);
}

static int echo_done(void)
{
    return ex.err != ERR_OK || ex.closed || ex.mismatch_at || ex.rcvd >= ex.total;
}

static int fail(const char *why)
{
    board_printf("netcheck: FAIL %s\n", why);
    return 1;
}

#if MEMP_STATS
static const char *const pool_names[] = {
#define LWIP_MEMPOOL(name, num, size, desc) desc,
#include "lwip/priv/memp_std.h"
};
#endif

static void report_ram(void)
{
    size_t data = (size_t)((char *)__data_end - (char *)__data_start);
    size_t bss = (size_t)((char *)__bss_end - (char *)__bss_start);
    board_printf("ram: total %u of 65536 (stack %u, .data %u, .bss %u)\n", (unsigned)(uintptr_t)__ram_used,
                 (unsigned)board_stack_size(), (unsigned)data, (unsigned)bss);
    board_printf("ram: stack high-water %u of %u\n", (unsigned)board_stack_used(),
                 (unsigned)board_stack_size());
    board_printf("ram: kl_client_t %u\n", (unsigned)sizeof(kl_client_t));
#if MEM_STATS
    board_printf("ram: lwip heap %u max %u of %u\n", (unsigned)lwip_stats.mem.used,
                 (unsigned)lwip_stats.mem.max, (unsigned)MEM_SIZE);
#endif
#if MEMP_STATS
    for (int i = 0; i < MEMP_MAX; i++) {
        const struct stats_mem *m = lwip_stats.memp[i];
        if (m && m->avail)
            board_printf("ram: lwip pool %s max %u of %u (err %u)\n", pool_names[i], (unsigned)m->max,
                         (unsigned)m->avail, (unsigned)m->err);
    }
#endif
    const lan9118_stats_t *ls = lan9118_stats();
    board_printf("nic: rx %u (dropped %u, errors %u) tx %u (busy %u)\n", (unsigned)ls->rx_frames,
                 (unsigned)ls->rx_dropped_nomem, (unsigned)ls->rx_errors, (unsigned)ls->tx_frames,
                 (unsigned)ls->tx_busy);
}

int main(void)
{
    board_init();
    board_printf("\nnetcheck: kinglet on mps2-an386 (Cortex-M4), image %u bytes of flash\n",
                 (unsigned)(uintptr_t)__flash_used);
    board_printf("netcheck: time %u%s\n", (unsigned)board_unix_time(),
                 board_time_is_floor() ? " (build-date floor)" : " (host clock)");

    uint8_t rnd[8];
    board_entropy(rnd, sizeof rnd);
    board_printf("netcheck: entropy (EMULATION ONLY) %02x%02x%02x%02x%02x%02x%02x%02x\n", rnd[0], rnd[1],
                 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);

    /* kinglet core on the device: the first flight of a login. */
    kl_client_config_t cfg = {0};
    cfg.jid = "device@example.org/netcheck";
    cfg.password = "unused";
    cfg.random = board_random;
    if (kl_client_init(&client, &cfg) != KL_OK || kl_client_connect(&client, board_millis(), KL_CHANNEL_STARTTLS) != KL_OK)
        return fail("kl_client_init");
    ex.head = kl_engine_output(&client, &ex.head_len);
    ex.total = ex.head_len + NETCHECK_BULK;
    board_printf("netcheck: engine first flight %u bytes\n", (unsigned)ex.head_len);

    lwip_init();
    if (netif_add(&nif, IP4_ADDR_ANY4, IP4_ADDR_ANY4, IP4_ADDR_ANY4, NULL, lan9118_netif_init,
                  netif_input) == NULL)
        return fail("no LAN9118");
    netif_set_default(&nif);
    netif_set_up(&nif);
    board_printf("netcheck: netif up, mac %02x:%02x:%02x:%02x:%02x:%02x, link %s\n", nif.hwaddr[0],
                 nif.hwaddr[1], nif.hwaddr[2], nif.hwaddr[3], nif.hwaddr[4], nif.hwaddr[5],
                 netif_is_link_up(&nif) ? "up" : "down");

    uint32_t t0 = board_millis();
    dhcp_start(&nif);
    run_until(dhcp_done, DHCP_TIMEOUT_MS);
    if (!dhcp_done())
        return fail("no DHCP lease");
    char ip[16], gw[16];
    ip4addr_ntoa_r(netif_ip4_addr(&nif), ip, sizeof ip);
    ip4addr_ntoa_r(netif_ip4_gw(&nif), gw, sizeof gw);
    board_printf("netcheck: dhcp ip %s gw %s in %u ms\n", ip, gw, (unsigned)(board_millis() - t0));

    ip_addr_t server;
    if (!ipaddr_aton(NETCHECK_SERVER_IP, &server))
        return fail("bad NETCHECK_SERVER_IP");
    ex.pcb = tcp_new();
    if (ex.pcb == NULL)
        return fail("tcp_new");
    tcp_nagle_disable(ex.pcb);
    tcp_recv(ex.pcb, on_recv);
    tcp_sent(ex.pcb, on_sent);
    tcp_err(ex.pcb, on_err);
    t0 = board_millis();
    if (tcp_connect(ex.pcb, &server, NETCHECK_SERVER_PORT, on_connected) != ERR_OK)
        return fail("tcp_connect");
    run_until(echo_done, ECHO_TIMEOUT_MS);
    uint32_t dt = board_millis() - t0;
    board_printf("netcheck: tcp %s:%u sent %u rcvd %u of %u in %u ms\n", NETCHECK_SERVER_IP,
                 (unsigned)NETCHECK_SERVER_PORT, (unsigned)ex.sent, (unsigned)ex.rcvd, (unsigned)ex.total,
                 (unsigned)dt);
    if (ex.pcb != NULL) {
        if (tcp_close(ex.pcb) != ERR_OK)
            tcp_abort(ex.pcb);
        ex.pcb = NULL;
    }
    /* let the FIN go out */
    t0 = board_millis();
    while (board_millis() - t0 < 200u)
        poll_net();

    report_ram();
    if (ex.err != ERR_OK) {
        board_printf("netcheck: lwIP error %d\n", (int)ex.err);
        return fail("tcp error");
    }
    if (ex.mismatch_at) {
        board_printf("netcheck: echo differs at byte %u\n", (unsigned)(ex.mismatch_at - 1));
        return fail("echo mismatch");
    }
    if (ex.rcvd < ex.total)
        return fail(ex.connected ? "echo incomplete" : "no connection");
    board_printf("netcheck: echo ok %u bytes\n", (unsigned)ex.rcvd);
    board_printf("netcheck: PASS\n");
    return 0;
}
