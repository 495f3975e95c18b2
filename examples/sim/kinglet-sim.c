/* kinglet-sim — the device simulator: kinglet over lwIP (NO_SYS=1) and
 * mbedTLS (static arena) on a libslirp link, in the main loop a firmware
 * runs. XMPP over TCP, BOSH and WebSocket run on the connection manager
 * (kl_session.h) over kl_lwip_net_ops and kl_tls_mbedtls_ops, as the CLI
 * runs on it over sockets. Same flags and exit codes as the CLI (examples/cli/kinglet.c):
 *
 *   kinglet-sim --jid J --password P [--host H] [--port N] [--cafile F]
 *               [--pipelining off|safe|full|full-forced] [--send TO BODY] [--recv N]
 *               [--echo] [--count N] [--timeout S] [--stats] [--trace] [--allow-plaintext]
 *               [--no-plain] [--tls starttls|direct] [--cache FILE [--cache-key KEYFILE]]
 *               [--roster] [--srv [--dns HOST:PORT]] [--reconnect [--backoff MIN_MS MAX_MS]]
 *               [--bosh URL [--bosh-path auto|all|split]] [--ws URL] [--keepalive T_S T2_S] [--no-sm]
 *   kinglet-sim --s2s --domain D --to PEER --cert F --key F [--cafile F] [--host H]
 *               [--port N] [--send TO BODY] [--echo] [--count N] [--timeout S] [--stats]
 *   simulator only:
 *               [--delay MS]        one-way link delay (each direction)
 *               [--static]          10.0.2.15/24 without DHCP
 *               [--slow-read N]     the application takes at most N bytes per
 *               [--slow-sleep MS]   loop turn and sleeps MS (default 5) per turn
 *               [--ram]             print the RAM report (also with --trace)
 *
 *               [--fwd PORT]        one more TCP forward 10.0.2.100:PORT (repeatable)
 *               [--link-flaps N]    once online, the link goes down and up N times
 *               [--flap-seed S]     ... on the schedule seeded with S (default 20260607)
 *               [--flap-down MIN_MS MAX_MS]  each down lasts MIN..MAX ms (default 400 3000)
 *               [--flap-up MIN_MS MAX_MS]    each up in between MIN..MAX ms (default 700 2000)
 *
 * Stream management (XEP-0198) is on (every framing) whenever the server
 * offers it (--no-sm: off), as in the CLI: the device keeps what the server
 * has not acknowledged in a static queue (KL_SIM_SM_QUEUE, 8 KB), a lost
 * link is resumed with --reconnect, and a stanza the server never
 * acknowledged is sent again when the session could not be resumed
 * ("unacknowledged stanza N handed back (B bytes): sent again"). --echo
 * waits for room instead of failing: an echo that finds the transmit
 * buffer or the queue full (or a resumption still resending) is kept, in
 * order, and sent when there is room. --keepalive T T2 (seconds, decimals
 * allowed): probe the server after T idle seconds, call the link dead when
 * nothing came T2 seconds later.
 *
 * --link-flaps: a down link drops every frame both ways without a word (no
 * RST, no FIN: a radio out of range), so only the engine's keepalive (or
 * TCP, for a short one) notices; the schedule is the same for the same
 * seed. When the link comes back and the session is not online, the
 * device reconnects at once (kl_session_kick: what a firmware does when
 * its radio reassociates). stderr says "sim link: flap I/N: down for D ms",
 * "... up again after D ms" and, for a dead link the keepalive found,
 * "dead link detected D ms after flap I began" (the first flap that began
 * after the last byte came in). --stats adds "flaps", "dead_peers",
 * "detect_ms_min"/"detect_ms_max" (from that flap's start to
 * KL_ERR_DEAD_PEER), "dead_peers_link_up" (no flap to blame), "kicks",
 * "sm_resent" (stanzas resent after resumptions), "unacked_resent",
 * "echo_waits", "echo_lost", "keepalives" and
 * "sm_queue" (counted in "device_ram").
 *
 * --reconnect: a lost link is not the end (XMPP over TCP): the manager
 * reconnects with backoff and full jitter (--backoff: its bounds, default
 * 1000 and 60000 ms), "link down (...); reconnecting in N ms" on stderr,
 * "online again J" / "resumed J" on stdout; without it the first failure
 * is final, as in the CLI. A close (--send, --count ...) is a logout,
 * never reconnected.
 *
 * --cache FILE: the connection hints survive the simulator's restart,
 * including the TLS session (resumption at the next connect). As in the
 * CLI (examples/common/kl_cli_common.h): authenticated with the device key
 * in KEYFILE (default FILE.key, created 0600 on first use; a device keeps
 * it in a board hook), written 0600; forged or tampered hints are ignored.
 * --srv: SRV lookup over lwIP UDP (XEP-0368 with --tls direct), falling
 * back to the domain on 5222/5223. --dns HOST:PORT names the resolver:
 * HOST must be the host's 127.0.0.1 (the device queries 10.0.2.100:PORT,
 * which the link relays to 127.0.0.1:PORT: restricted slirp forwards no
 * UDP). Without --dns, 127.0.0.1:53. A target's port is forwarded to the
 * host when the lookup gives it. With --cache, the SRV answer that led to
 * a session is kept in the hints for its TTL and used instead of a lookup
 * while it lasts ("srv":"HOST:PORT (cached)").
 *
 * --bosh URL: the same session over BOSH (XEP-0124/0206), a framing the
 * manager drives (kl_session_use_bosh): two HTTP/1.1 keep-alive
 * connections (net slots 0 and 1) over lwIP TCP, each over its own TLS
 * session for https, URL http://10.0.2.100:PORT/path or
 * https://server.sim:PORT/path (PORT forwarded to the host's 127.0.0.1:PORT). Over https the certificate
 * is verified against the XMPP domain, as for c2s (10.0.2.100 and
 * server.sim stand for the host). http:// sends the password in clear:
 * refused unless --allow-plaintext (exit 5). --bosh-path and the
 * connection hints' bosh_path as build/kinglet-bosh: all = <auth/> +
 * restart + bind in the session creation body; split = <auth/> there, then
 * the restart and the bind as two requests at once; auto (default) = all,
 * or what the hints learned, and split once if the connection manager ends
 * the session before it is bound ("full_fallback":1). --stats adds
 * "http_round_trips", "http_requests" and "bosh_path"; "mode" is "bosh";
 * "http_reconnects" counts the connections opened again within an attempt
 * (counted in the simulator's net-ops wrapper: opens beyond the two an
 * attempt starts with).
 *
 * --ws URL: XMPP over WebSocket (RFC 7395, kl_session_use_ws), one
 * connection, ws://10.0.2.100:PORT/path or wss://server.sim:PORT/path (the
 * certificate verified against the XMPP domain, as for BOSH); ws:// sends
 * the password in clear: refused unless --allow-plaintext (exit 5). The
 * HTTP upgrade counts as one round trip; "mode" is "ws".
 *
 * --host: an IPv4 address or a name resolved by lwIP's DNS; default
 * 10.0.2.100, where slirp forwards --port to the host's 127.0.0.1:--port
 * (the name "server.sim" is in lwIP's local host list for it). The forward
 * is this program started again as "kinglet-sim --relay PORT".
 *
 * Messages: a body up to 1 KB is printed as the CLI prints it; a larger one
 * (it may arrive as a streamed stanza) as "message from J: [N bytes, fnv1a H]".
 * --stats prints one JSON line last: the CLI's fields plus the RAM report
 * and "bodies"/"body_bytes"/"body_fnv1a" over all received bodies in order.
 * Exit codes: 2 usage, 3 connect/DNS, 4 TLS, 5 auth, 6 stream/protocol,
 * 7 timeout, 1 anything else.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kinglet/kinglet.h"
#include "kl_cli_common.h"
#include "kinglet/kl_session.h"
#include "kl_crypto_mbedtls.h"
#include "kinglet/kl_bosh.h"
#include "kinglet/kl_ws.h"
#include "kl_lwip_net.h"
#include "kl_sim_arena.h"
#include "kl_sim_link.h"
#include "kl_tls_bind.h"

#include "mbedtls/memory_buffer_alloc.h"

#include "lwip/dns.h"
#include "lwip/init.h"
#include "lwip/memp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"

static kl_client_t client;      /* the engine's whole state */
static int stats_s2s;           /* --s2s, for --stats (the client's config is private) */
static kl_session_t sess;       /* the connection manager: endpoint, TLS, backoff */
static kl_lwip_net_t net;       /* its TCP connections (lwIP raw API) */
static kl_tls_t tls_sess[KL_SESSION_SLOTS]; /* TLS sessions per slot (BOSH over https: two) */
static kl_tls_mbedtls_t tlsb;   /* the manager's TLS binding over tls_sess */
static kl_sim_link_t link_;     /* the simulated wire (host side, not device RAM) */
static kl_cache_t cache;        /* connection hints (device: a flash record) */
static kl_lwip_srv_t srv;       /* SRV lookup state */
static kl_bosh_t bosh;          /* --bosh: the BOSH codec (two request/response buffers) */
static kl_ws_t ws;              /* --ws: the WebSocket codec */
static int use_bosh, use_ws;
static unsigned long http_reopens; /* BOSH: connections opened again within an attempt */
static int tls_offered, tls_saved;
static long slow_read;          /* --slow-read: bytes the device takes per step (0: all) */
#ifndef KL_SIM_SM_QUEUE
#define KL_SIM_SM_QUEUE 8192
#endif
/* XEP-0198: the stanzas sent and not yet acknowledged (device RAM) */
static uint8_t sm_queue[KL_SIM_SM_QUEUE];
static int sm_on;               /* cfg.sm_queue was given */
static size_t read_budget;      /* what is left of them in this step */

static void usage(void)
{
    fprintf(stderr,
            "usage: kinglet-sim --jid J --password P [--host H] [--port N] [--cafile F]\n"
            "                   [--pipelining off|safe|full|full-forced] [--send TO BODY] [--recv N] [--echo]\n"
            "                   [--count N] [--timeout S] [--stats] [--trace] [--allow-plaintext]\n"
            "                   [--no-plain] [--tls starttls|direct] [--roster]\n"
            "                   [--cache FILE]  (connection hints, 0600, authenticated with KEYFILE)\n"
            "                   [--cache-key KEYFILE]  (default FILE.key, created 0600 on first use)\n"
            "                   [--srv [--dns 127.0.0.1:PORT]] [--reconnect [--backoff MIN_MS MAX_MS]]\n"
            "                   [--bosh URL [--bosh-path auto|all|split]] [--ws URL] [--keepalive T_S T2_S] [--no-sm]\n"
            "       kinglet-sim --s2s --domain D --to PEER --cert F --key F [--cafile F] [--host H]\n"
            "                   [--port N] [--send TO BODY] [--echo] [--count N] [--timeout S] [--stats]\n"
            "   simulator only: [--delay MS] [--static] [--slow-read N] [--slow-sleep MS] [--ram] [--fwd PORT]\n"
            "                   [--link-flaps N [--flap-seed S] [--flap-down MIN_MS MAX_MS] [--flap-up MIN_MS MAX_MS]]\n");
    exit(2);
}

static uint32_t t_trace0; /* trace lines carry the time since the connect started */

static void trace(void *arg, char dir, const uint8_t *data, size_t len, const char *note)
{
    (void)arg;
    fprintf(stderr, "%6u ms", (unsigned)(sys_now() - t_trace0));
    if (note) {
        fprintf(stderr, "  ---- %s\n", note);
        return;
    }
    kl_cli_trace_bytes(dir, data, len, 1);
}

/* ---- received bodies: count and an order-sensitive checksum --------------- */

static unsigned long bodies, body_bytes;
static uint32_t body_fnv = 2166136261u;

static void fnv(uint32_t *h, const uint8_t *p, size_t n)
{
    while (n--)
        *h = (*h ^ *p++) * 16777619u;
}

/* ---- stream management, keepalive and link flaps: what the run saw -------- */

static struct {
    unsigned long dead_peers;     /* KL_ERR_DEAD_PEER: the keepalive found a dead link */
    unsigned long dead_link_up;   /* ... with no flap since the last byte came in to blame */
    uint32_t detect_min, detect_max; /* link down -> KL_ERR_DEAD_PEER, ms */
    unsigned long kicks;          /* the link came back while offline: reconnect now */
    unsigned long unacked_resent; /* KL_EV_UNACKED stanzas sent again */
    unsigned long echo_waits;     /* echoes that waited for room */
    unsigned long echo_lost;      /* echoes that did not fit the wait list */
    unsigned long sm_resent;      /* stanzas resent after resumptions (all connections) */
    unsigned long keepalives;     /* keepalive probes (all connections) */
    unsigned ups_seen;            /* link flaps that ended, already handled */
    int counted;                  /* the engine's counters of this connection are added */
} smx = {0, 0, UINT32_MAX, 0, 0, 0, 0, 0, 0, 0, 0, 0};


/* When each flap began, and when the device last received a byte: a dead
 * link is blamed on the first flap that began after the last byte came in
 * (a short flap TCP survives can be the one whose silence the keepalive
 * ends, after the link is back). */
#define FLAP_HISTORY 1024
static uint32_t flap_t_down[FLAP_HISTORY];
static unsigned flaps_recorded;
static uint32_t t_last_rx;

static void record_flaps(void)
{
    while (flaps_recorded < link_.flaps.done && flaps_recorded < FLAP_HISTORY)
        flap_t_down[flaps_recorded++] = link_.flaps.t_down;
}

/* The flap (1-based) whose silence a dead-peer verdict now ends, 0 if none.
 * Frames already on the wire when the link went down still arrive (the
 * link's delay, plus a little for the host side): the last byte may come
 * in that long after the flap began. */
static unsigned flap_to_blame(void)
{
    for (unsigned i = 0; i < flaps_recorded; i++)
        if ((int32_t)(flap_t_down[i] + link_.delay_ms + 10u - t_last_rx) >= 0)
            return i + 1;
    return 0;
}

/* The engine's counters are per connection: add the ending one's (once). */
static void smx_add_connection(void)
{
    const kl_stats_t *s = kl_client_stats(&client);
    if (smx.counted)
        return;
    smx.counted = 1;
    smx.sm_resent += s->sm_resent;
    smx.keepalives += s->keepalives_sent;
}

/* --echo waits for room (examples/common: kl_cli_after_message keeps an
 * echo that found KL_ERR_TX_FULL or no session, and kl_cli_flush_echoes
 * sends what waits, in order). */

/* ---- RAM report ------------------------------------------------------------ */

static const char *const pool_names[] = {
#define LWIP_MEMPOOL(name, num, size, desc) #name,
#include "lwip/priv/memp_std.h"
};

static int lwip_exhausted(void)
{
    int bad = lwip_stats.mem.err > 0;
    for (int i = 0; i < MEMP_MAX; i++)
        bad |= memp_pools[i]->stats->err > 0;
    return bad;
}

/* The device's session: the manager, its connections, the TLS sessions
 * the framing uses (BOSH: two) and the framing's codec. */
static size_t session_ram(void)
{
    return sizeof sess + sizeof net + sizeof tlsb + (use_bosh ? 2 : 1) * sizeof tls_sess[0] +
           (use_bosh ? sizeof bosh : 0) + (use_ws ? sizeof ws : 0);
}

static size_t rx_queued_max(void)
{
    size_t m = 0;
    for (int i = 0; i < KL_SESSION_SLOTS; i++)
        if (net.conn[i].rx_queued_max > m)
            m = net.conn[i].rx_queued_max;
    return m;
}

static void ram_report(FILE *f, int json)
{
    kl_sim_arena_stats_t a;
    size_t pools = 0;
    kl_sim_arena_stats(&a);
    for (int i = 0; i < MEMP_MAX; i++)
        pools += (size_t)memp_pools[i]->num * memp_pools[i]->size;
    if (json) {
        fprintf(f, "\"sizeof_session\":%zu,\"sizeof_tls\":%zu,\"lwip_heap\":%u,\"lwip_heap_max\":%u,"
                   "\"lwip_heap_err\":%u,\"lwip_pools_bytes\":%zu,\"lwip_pools\":{",
                session_ram(), sizeof tls_sess[0], (unsigned)MEM_SIZE, (unsigned)lwip_stats.mem.max,
                (unsigned)lwip_stats.mem.err, pools);
        for (int i = 0; i < MEMP_MAX; i++) {
            const struct stats_mem *m = memp_pools[i]->stats;
            fprintf(f, "%s\"%s\":{\"num\":%u,\"size\":%u,\"max\":%u,\"err\":%u}", i ? "," : "", pool_names[i],
                    (unsigned)memp_pools[i]->num, (unsigned)memp_pools[i]->size, (unsigned)m->max,
                    (unsigned)m->err);
        }
        fprintf(f, "},\"lwip_exhausted\":%d,\"arena\":%zu,\"arena_peak\":%zu,\"arena_peak_blocks\":%zu,"
                   "\"arena_failures\":%lu,\"tls_in_content\":%d,\"tls_out_content\":%d,"
                   "\"rx_queued_max\":%zu,\"tcp_wnd\":%u,\"link_drops\":%lu,\"sm_queue\":%zu,\"device_ram\":%zu",
                lwip_exhausted(), a.size, a.peak, a.peak_blocks, a.failures, MBEDTLS_SSL_IN_CONTENT_LEN,
                MBEDTLS_SSL_OUT_CONTENT_LEN, rx_queued_max(), (unsigned)TCP_WND,
                link_.c_to_dev.dropped_full + link_.c_to_dev.dropped_nopbuf + link_.c_to_host.dropped_full,
                sm_on ? sizeof sm_queue : (size_t)0,
                sizeof client + session_ram() + (size_t)MEM_SIZE + pools + a.size +
                    (sm_on ? sizeof sm_queue : 0));
        return;
    }
    fprintf(f, "RAM in use by the simulated device:\n");
    fprintf(f, "  kinglet client state (kl_client_t)   %6zu bytes\n", sizeof client);
    fprintf(f, "  session (manager, lwIP conns, TLS)   %6zu bytes (kl_session_t %zu, kl_lwip_net_t %zu, kl_tls_t %zu x %d",
            session_ram(), sizeof sess, sizeof net, sizeof tls_sess[0], use_bosh ? 2 : 1);
    if (use_bosh)
        fprintf(f, ", kl_bosh_t %zu", sizeof bosh);
    if (use_ws)
        fprintf(f, ", kl_ws_t %zu", sizeof ws);
    fprintf(f, ")\n");
    fprintf(f, "  lwIP heap (MEM_SIZE)                 %6u bytes, high-water %u, failed %u\n", (unsigned)MEM_SIZE,
            (unsigned)lwip_stats.mem.max, (unsigned)lwip_stats.mem.err);
    fprintf(f, "  lwIP pools                           %6zu bytes:\n", pools);
    for (int i = 0; i < MEMP_MAX; i++) {
        const struct stats_mem *m = memp_pools[i]->stats;
        fprintf(f, "      %-16s %3u x %4u bytes, high-water %3u, failed %u\n", pool_names[i],
                (unsigned)memp_pools[i]->num, (unsigned)memp_pools[i]->size, (unsigned)m->max, (unsigned)m->err);
    }
    fprintf(f, "  mbedTLS arena                        %6zu bytes, peak %zu in %zu blocks, failed allocations %lu\n",
            a.size, a.peak, a.peak_blocks, a.failures);
    fprintf(f, "  TLS records: IN %d / OUT %d bytes of plaintext; TCP window %u, queued high-water %zu\n",
            MBEDTLS_SSL_IN_CONTENT_LEN, MBEDTLS_SSL_OUT_CONTENT_LEN, (unsigned)TCP_WND, rx_queued_max());
    if (sm_on)
        fprintf(f, "  stream-management queue (XEP-0198)   %6zu bytes\n", sizeof sm_queue);
    fprintf(f, "  total                                %6zu bytes\n",
            sizeof client + session_ram() + (size_t)MEM_SIZE + pools + a.size +
                (sm_on ? sizeof sm_queue : 0));
}


static const char *bosh_path_used; /* --bosh: "all" or "split" */

static void print_stats(const char *mode, const char *cache_state, int full_fallback, const char *srv_used)
{
    const kl_stats_t *s = kl_client_stats(&client);
    /* the connection's figures from the manager (the current or last
     * connection), the session's counters after the CLI's keys */
    const kl_session_stats_t *w = kl_session_stats(&sess);
    printf("{\"online_ms\":%u,\"round_trips\":%u,\"engine_round_trips\":%u,\"port_round_trips\":%u,"
           "\"flights_out\":%u,\"bytes_out\":%u,\"bytes_in\":%u,\"xml_bytes_out\":%u,\"xml_bytes_in\":%u,"
           "\"tcp_connect_ms\":%u,\"tls_handshake_ms\":%u,\"pipelining\":\"%s\",\"mode\":\"%s\",\"tls\":\"%s\","
           "\"sasl\":\"%s\",\"cache\":\"%s\",\"full_fallback\":%d,\"tls_resumed\":%d,"
           "\"tls_session_offered\":%d,\"tls_session_saved\":%d,\"srv\":\"%s\",\"s2s\":%d,"
           "\"stanzas_dropped\":%u,\"iq_unmatched\":%u,\"attempts\":%u,\"link_downs\":%u,\"onlines\":%u,"
           "\"resumes\":%u,\"sizeof_client\":%zu,\"bodies\":%lu,\"body_bytes\":%lu,\"body_fnv1a\":\"%08x\","
           "\"sm\":%d,\"flaps\":%u,\"dead_peers\":%lu,\"dead_peers_link_up\":%lu,\"detect_ms_min\":%ld,"
           "\"detect_ms_max\":%ld,\"kicks\":%lu,\"sm_resent\":%lu,\"unacked_resent\":%lu,\"echo_waits\":%lu,"
           "\"echo_lost\":%lu,\"keepalives\":%lu,"
           "\"http_round_trips\":%u,\"http_requests\":%u,\"bosh_path\":\"%s\",\"http_reconnects\":%lu,",
           s->online_ms, s->round_trips, s->engine_round_trips, s->port_round_trips, s->flights_out,
           w->wire_out_online, w->wire_in_online, s->bytes_out_online, s->bytes_in_online,
           w->tcp_connect_ms, w->tls_handshake_ms,
           kl_client_full_pipelining(&client) ? "full" : (!strcmp(mode, "off") ? "off" : "safe"),
           use_bosh ? "bosh" : use_ws ? "ws" : kl_session_endpoint(&sess)->security == KL_SEC_DIRECT_TLS ? "direct" : "starttls",
           w->tls_version && w->tls_version[0] ? w->tls_version : "none", kl_client_sasl_mechanism(&client),
           cache_state, full_fallback, w->tls_session_resumed, tls_offered, tls_saved, srv_used, stats_s2s,
           s->stanzas_dropped, s->iq_unmatched, w->attempts, w->link_downs, w->onlines, w->resumes,
           sizeof client + (use_bosh ? sizeof bosh : 0),
           bodies, body_bytes, (unsigned)body_fnv, sm_on, link_.flaps.done, smx.dead_peers, smx.dead_link_up,
           smx.detect_min == UINT32_MAX ? -1L : (long)smx.detect_min,
           smx.detect_max == 0 && smx.detect_min == UINT32_MAX ? -1L : (long)smx.detect_max, smx.kicks,
           smx.sm_resent + (smx.counted ? 0 : s->sm_resent), smx.unacked_resent, smx.echo_waits, smx.echo_lost,
           smx.keepalives + (smx.counted ? 0 : s->keepalives_sent), w->http_round_trips_online,
           w->http_requests_online, bosh_path_used ? bosh_path_used : "none", http_reopens);
    ram_report(stdout, 1);
    printf("}\n");
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One turn of the firmware's main loop, minus the engine: the NIC, then
 * lwIP's timers. */
static void run_link(uint32_t wait_ms)
{
    uint32_t t = sys_timeouts_sleeptime();
    if (t < wait_ms)
        wait_ms = t;
    kl_sim_link_poll(&link_, wait_ms);
    record_flaps();
    sys_check_timeouts();
}

/* ---- the manager's primitives, as the simulator uses them ------------------
 *
 * kl_lwip_net_ops, except that recv takes at most --slow-read bytes per
 * step (a slow application: what it leaves stays queued in lwIP and closes
 * the TCP window). kl_tls_mbedtls_ops, except that a session saved into
 * the hints is counted ("tls_session_saved"). */
static int sim_net_recv(void *ctx, int slot, uint8_t *buf, size_t len)
{
    int n;
    if (slow_read > 0) {
        if (read_budget == 0)
            return 0;
        if (len > read_budget)
            len = read_budget;
    }
    n = kl_lwip_net_ops.recv(ctx, slot, buf, len);
    if (slow_read > 0 && n > 0)
        read_budget -= (size_t)n;
    if (n > 0)
        t_last_rx = sys_now();
    return n;
}

/* BOSH: the manager opens both connections at the start of an attempt; a
 * connection opened after that within the same attempt (broken, or closed
 * by the server) is counted as a reconnect ("http_reconnects"). */
static uint32_t open_attempt;
static int opens_in_attempt;
static int sim_net_open(void *ctx, int slot, const char *host, uint16_t port)
{
    if (sess.stats.attempts != open_attempt) {
        open_attempt = sess.stats.attempts;
        opens_in_attempt = 0;
    }
    if (++opens_in_attempt > (use_bosh ? 2 : 1))
        http_reopens++;
    return kl_lwip_net_ops.open(ctx, slot, host, port);
}

static int sim_tls_save_session(void *ctx, int slot, uint8_t *buf, size_t cap, size_t *len)
{
    int r = kl_tls_mbedtls_ops.save_session(ctx, slot, buf, cap, len);
    if (r == KL_OK)
        tls_saved = 1;
    return r;
}

static kl_net_ops_t sim_net_ops;
static kl_tls_ops_t sim_tls_ops;

/* lwIP sends what tcp_write queued at tcp_output (or when a segment comes
 * in). The manager pushes the engine's output, not what a TLS handshake
 * step wrote (the ClientHello, the client's Finished) nor a TLS read's
 * answer (an alert): pushed here when a step has nothing more to do, the
 * end of a flight. */
static void flush_flights(void)
{
    for (int i = 0; i < KL_SESSION_SLOTS; i++)
        kl_lwip_conn_flush(&net.conn[i]);
}

/* lwIP tells nobody that bytes are queued: a step that returned 0 with
 * bytes still there (a TLS read that stopped at a NewSessionTicket) is
 * stepped again at once instead of sleeping until the next frame. */
static int session_readable(void)
{
    for (int i = 0; i < KL_SESSION_SLOTS; i++) {
        kl_tls_t *t = kl_tls_mbedtls_session(&tlsb, i);
        if (!(kl_session_wants(&sess, i) & KL_WANT_READ))
            continue;
        if (kl_lwip_net_readable(&net, i) || (t != NULL && mbedtls_ssl_get_bytes_avail(&t->ssl) > 0))
            return 1;
    }
    return 0;
}

/* The relay command for a forward of port to the host's 127.0.0.1:port. */
static char exe[4096];
static const char *relay_command(uint16_t port)
{
    static char cmds[KL_SIM_MAX_FWD][4200];
    static int n;
    char *c = cmds[n % KL_SIM_MAX_FWD];
    n++;
    snprintf(c, sizeof cmds[0], "'%s' --relay %u", exe, (unsigned)port);
    return c;
}

static int forwarded[KL_SIM_MAX_FWD], n_forwarded;
static int forward(uint16_t port)
{
    for (int i = 0; i < n_forwarded; i++)
        if (forwarded[i] == port)
            return 0;
    if (n_forwarded == KL_SIM_MAX_FWD) {
        fprintf(stderr, "kinglet-sim: at most %d forwards\n", KL_SIM_MAX_FWD);
        return -1;
    }
    if (kl_sim_link_add_fwd(&link_, port, relay_command(port)) != 0)
        return -1;
    forwarded[n_forwarded++] = port;
    return 0;
}

int main(int argc, char **argv)
{
    const char *jid = NULL, *password = NULL, *host = NULL, *cafile = NULL, *mode = "safe";
    const char *send_to = NULL, *send_body = NULL, *tls_mode = "starttls", *cache_path = NULL, *dns = NULL;
    const char *cache_key = NULL;
    static kl_cli_hints_t hints;
    const char *domain = NULL, *peer = NULL, *cert = NULL, *key = NULL;
    const char *url = NULL, *bosh_path = "auto";
    int bosh_split = 0;
    static char url_buf[512];
    static kl_endpoint_t url_ep;
    long port = -1, count = -1, recv_n = 0, timeout_s = 30, delay = 0, slow_sleep = 5;
    long fwd_extra[KL_SIM_MAX_FWD], backoff_min = 0, backoff_max = 0;
    int n_fwd_extra = 0;
    int echo = 0, stats = 0, do_trace = 0, allow_plaintext = 0, static_ip = 0, ram = 0, i, st, rc = 0;
    int no_plain = 0, want_roster = 0, s2s = 0, use_srv = 0, cache_hit = 0, retried = 0, reconnect = 0;
    int no_sm = 0;
    double keepalive_s = 0, keepalive_t2_s = 0;
    long flaps_n = 0, flap_down_min = 400, flap_down_max = 3000, flap_up_min = 700, flap_up_max = 2000;
    unsigned long long flap_seed = 20260607ull;
    int flaps_started = 0;
    size_t session_at_start = 0; /* the hints' TLS session blob when the run began */
    uint16_t roster_id = 0, dns_port = 53;
    int in_msg = 0, in_body = 0;
    kl_cli_run_t run;
    unsigned long msg_bytes = 0;
    uint32_t msg_fnv = 0;
    char from_big[KL_JID_MAX * 3] = "", srv_used[KL_DNS_NAME_MAX + 32] = "";
    static char body[8192];
    kl_client_config_t cfg;
    kl_tls_config_t tls;
    static kl_session_config_t scfg;
    kl_sim_link_config_t lc;
    kl_event_t ev;
    uint32_t t_end, t0;
    ssize_t el;
    kl_lwip_candidate_t srv_ans; /* the SRV answer used (to keep in the hints) */
    int srv_fresh = 0;

    if (argc == 3 && !strcmp(argv[1], "--relay"))
        return kl_sim_relay_main((uint16_t)strtol(argv[2], NULL, 10));

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (usage(), ""))
        if (!strcmp(a, "--jid")) jid = NEXT();
        else if (!strcmp(a, "--password")) password = NEXT();
        else if (!strcmp(a, "--host")) host = NEXT();
        else if (!strcmp(a, "--port")) port = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--cafile")) cafile = NEXT();
        else if (!strcmp(a, "--pipelining")) mode = NEXT();
        else if (!strcmp(a, "--send")) { send_to = NEXT(); send_body = NEXT(); }
        else if (!strcmp(a, "--recv")) recv_n = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--echo")) echo = 1;
        else if (!strcmp(a, "--count")) count = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--timeout")) timeout_s = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--stats")) stats = 1;
        else if (!strcmp(a, "--trace")) do_trace = 1;
        else if (!strcmp(a, "--allow-plaintext")) allow_plaintext = 1;
        else if (!strcmp(a, "--no-plain")) no_plain = 1;
        else if (!strcmp(a, "--tls")) tls_mode = NEXT();
        else if (!strcmp(a, "--cache")) cache_path = NEXT();
        else if (!strcmp(a, "--cache-key")) cache_key = NEXT();
        else if (!strcmp(a, "--roster")) want_roster = 1;
        else if (!strcmp(a, "--s2s")) s2s = 1;
        else if (!strcmp(a, "--domain")) domain = NEXT();
        else if (!strcmp(a, "--to")) peer = NEXT();
        else if (!strcmp(a, "--cert")) cert = NEXT();
        else if (!strcmp(a, "--key")) key = NEXT();
        else if (!strcmp(a, "--srv")) use_srv = 1;
        else if (!strcmp(a, "--dns")) dns = NEXT();
        else if (!strcmp(a, "--reconnect")) reconnect = 1;
        else if (!strcmp(a, "--backoff")) { backoff_min = strtol(NEXT(), NULL, 10); backoff_max = strtol(NEXT(), NULL, 10); }
        else if (!strcmp(a, "--bosh")) { url = NEXT(); use_ws = 0; }
        else if (!strcmp(a, "--ws")) { url = NEXT(); use_ws = 1; }
        else if (!strcmp(a, "--bosh-path")) bosh_path = NEXT();
        else if (!strcmp(a, "--delay")) delay = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--static")) static_ip = 1;
        else if (!strcmp(a, "--slow-read")) slow_read = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--slow-sleep")) slow_sleep = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--ram")) ram = 1;
        else if (!strcmp(a, "--fwd") && n_fwd_extra < KL_SIM_MAX_FWD - 1) fwd_extra[n_fwd_extra++] = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--no-sm")) no_sm = 1;
        else if (!strcmp(a, "--keepalive")) { keepalive_s = strtod(NEXT(), NULL); keepalive_t2_s = strtod(NEXT(), NULL); }
        else if (!strcmp(a, "--link-flaps")) flaps_n = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--flap-seed")) flap_seed = strtoull(NEXT(), NULL, 10);
        else if (!strcmp(a, "--flap-down")) { flap_down_min = strtol(NEXT(), NULL, 10); flap_down_max = strtol(NEXT(), NULL, 10); }
        else if (!strcmp(a, "--flap-up")) { flap_up_min = strtol(NEXT(), NULL, 10); flap_up_max = strtol(NEXT(), NULL, 10); }
        else usage();
#undef NEXT
    }
    if (s2s) {
        if (!domain || !peer || !cert || !key)
            usage();
        jid = domain;
        password = "";
        if (port < 0)
            port = 5269;
    }
    if (url) {
        /* BOSH (XEP-0124/0206) or WebSocket (RFC 7395): framings of the same
         * session on the manager; the URL's port is the one forwarded to the host */
        if (kl_endpoint_from_url(&url_ep, url, url_buf, sizeof url_buf) != KL_OK ||
            url_ep.framing != (use_ws ? KL_FRAMING_WS : KL_FRAMING_BOSH) || s2s || use_srv) {
            fprintf(stderr, "kinglet-sim: %s %s: use %s://10.0.2.100:PORT/path or %s://server.sim:PORT/path "
                            "(not with --s2s or --srv)\n", use_ws ? "--ws" : "--bosh", url,
                    use_ws ? "ws" : "http", use_ws ? "wss" : "https");
            return 2;
        }
        use_bosh = !use_ws;
        port = url_ep.port ? url_ep.port : url_ep.security == KL_SEC_DIRECT_TLS ? 443 : 80;
        if (!strcmp(bosh_path, "split"))
            bosh_split = 1;
        else if (strcmp(bosh_path, "all") && strcmp(bosh_path, "auto"))
            usage();
        if (url_ep.security == KL_SEC_NONE && !allow_plaintext) {
            /* security rule 1: no credentials in clear unless asked for */
            fprintf(stderr, "kinglet-sim: %s is not encrypted: the password would go in clear; use %s:// "
                            "or --allow-plaintext\n", url, use_ws ? "wss" : "https");
            return 5;
        }
    }
    if (port < 0)
        port = !strcmp(tls_mode, "direct") ? 5223 : 5222;
    if (!jid || !password || port <= 0 || port > 65535 || timeout_s <= 0 || delay < 0 || slow_read < 0 ||
        slow_sleep < 0 || backoff_min < 0 || backoff_max < 0 || (cache_key && !cache_path) || keepalive_s < 0 ||
        keepalive_t2_s < 0 || keepalive_s > 86400 || keepalive_t2_s > 86400 || flaps_n < 0 || flap_down_min < 0 ||
        flap_down_max < flap_down_min || flap_up_min < 0 || flap_up_max < flap_up_min || flap_up_max > 3600000 ||
        flap_down_max > 3600000)
        usage();
    for (i = 0; i < n_fwd_extra; i++)
        if (fwd_extra[i] <= 0 || fwd_extra[i] > 65535)
            usage();
    if (dns) {
        /* the device's resolver is 10.0.2.100:PORT, relayed to the host's 127.0.0.1:PORT */
        const char *colon = strrchr(dns, ':');
        long dp = colon ? strtol(colon + 1, NULL, 10) : 53;
        if ((colon ? strncmp(dns, "127.0.0.1", (size_t)(colon - dns)) || colon - dns != 9 : strcmp(dns, "127.0.0.1")) ||
            dp <= 0 || dp > 65535) {
            fprintf(stderr, "kinglet-sim: --dns %s: the simulator relays DNS to the host's loopback only "
                            "(use 127.0.0.1:PORT)\n", dns);
            return 2;
        }
        dns_port = (uint16_t)dp;
    }

    memset(&cfg, 0, sizeof cfg);
    cfg.jid = jid;
    cfg.password = s2s ? NULL : password;
    cfg.s2s = (uint8_t)s2s;
    stats_s2s = s2s;
    cfg.s2s_to = peer;
    cfg.allow_plaintext = (uint8_t)allow_plaintext;
    cfg.no_plain = (uint8_t)no_plain;
    if (!strcmp(tls_mode, "direct"))
        cfg.direct_tls = 1;
    else if (strcmp(tls_mode, "starttls")) {
        fprintf(stderr, "kinglet-sim: --tls %s: use starttls or direct\n", tls_mode);
        return 2;
    }
    if (!strcmp(mode, "off"))
        cfg.pipelining = KL_PIPELINING_OFF;
    else if (!strcmp(mode, "safe"))
        cfg.pipelining = KL_PIPELINING_SAFE;
    else if (!strcmp(mode, "full"))
        cfg.pipelining = KL_PIPELINING_FULL; /* when the cache says the server advertised it */
    else if (!strcmp(mode, "full-forced")) {
        cfg.pipelining = KL_PIPELINING_FULL;
        cfg.force_full = 1;
    } else {
        fprintf(stderr, "kinglet-sim: --pipelining %s: use off, safe, full or full-forced\n", mode);
        return 2;
    }
    if (use_bosh) {
        /* BOSH: <auth/> + restart + bind in one flight */
        cfg.pipelining = KL_PIPELINING_FULL;
        cfg.force_full = 1;
    }
    if (url) /* TLS, if any, is under HTTP; the clear case was refused above unless allowed */
        cfg.allow_plaintext = (uint8_t)(url_ep.security == KL_SEC_NONE);
    if (cache_path)
        cfg.cache = &cache;
    if (!no_sm && !s2s) {
        /* XEP-0198 whenever the server offers it, on every framing (as the CLI) */
        cfg.sm_queue = sm_queue;
        cfg.sm_queue_size = sizeof sm_queue;
        sm_on = 1;
    }
    if (keepalive_s > 0)
        cfg.keepalive_ms = (uint32_t)(keepalive_s * 1000.0 + 0.5);
    if (keepalive_t2_s > 0)
        cfg.keepalive_timeout_ms = (uint32_t)(keepalive_t2_s * 1000.0 + 0.5);
    /* SCRAM hooks over mbedTLS; mbedTLS allocates from the arena, so it
     * comes first. BOSH over https: two TLS sessions side by side. */
    kl_sim_arena_init(use_bosh && url_ep.security == KL_SEC_DIRECT_TLS ? 2 * (size_t)KL_SIM_TLS_ARENA : 0);
    {
        static kl_crypto_mbedtls_t crypto;
        if (kl_crypto_mbedtls_init(&crypto) == 0)
            cfg.crypto = &crypto.table; /* SCRAM when PLAIN is not offered or not allowed */
    }
    if ((st = kl_client_init(&client, &cfg)) != KL_OK) {
        kl_cli_init_error("kinglet-sim", jid, st);
        return 2;
    }
    /* the hints, authenticated with the device key (a flash record and a
     * board hook on a device): lwIP's port takes the TLS session from them
     * only if they are authentic */
    if (cache_path)
        cache_hit = kl_cli_hints_load(&hints, "kinglet-sim", cache_path, cache_key, cfg.crypto,
                                      kl_client_domain(&client), &cache);
    if (use_bosh && cache_hit && kl_cache_check(&cache, kl_client_domain(&client)) == KL_OK &&
        !strcmp(bosh_path, "auto") && cache.bosh_path == KL_CACHE_BOSH_SPLIT)
        bosh_split = 1; /* learned: no wasted creation request */
    memset(&tls, 0, sizeof tls);
    tls.server_name = kl_client_domain(&client); /* RFC 6125: verify the XMPP domain */
    tls.ca_file = cafile;
    tls.cert_file = cert; /* s2s: our domain's certificate, for SASL EXTERNAL */
    tls.key_file = key;

    /* The forward runs this program again as the relay. */
    el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (el <= 0 || strchr(exe, '\'')) {
        fprintf(stderr, "kinglet-sim: cannot find my own executable for the relay\n");
        return 1;
    }
    exe[el] = '\0';

    /* ---- the device boots: lwIP, mbedTLS's arena, the NIC --------------- */
    t0 = sys_now();
    memset(&run, 0, sizeof run);
    run.prog = "kinglet-sim";
    run.echo = echo;
    run.s2s = s2s;
    run.count = count;
    run.recv_n = recv_n;
    t_end = t0 + (uint32_t)timeout_s * 1000u;
    lwip_init();
    memset(&lc, 0, sizeof lc);
    lc.static_ip = static_ip;
    lc.delay_ms = (uint32_t)delay;
    lc.fwd[0].port = (uint16_t)port;
    lc.fwd[0].command = relay_command((uint16_t)port);
    lc.n_fwd = 1;
    forwarded[n_forwarded++] = (int)port;
    if (use_srv) {
        lc.udp_fwd[0] = dns_port;
        lc.n_udp_fwd = 1;
    }
    if (kl_sim_link_init(&link_, &lc) != 0)
        return 1;
    for (i = 0; i < n_fwd_extra; i++)
        if (forward((uint16_t)fwd_extra[i]) != 0)
            return 1;
    {
        ip_addr_t fwd;
        ipaddr_aton(KL_SIM_FWD_ADDR, &fwd);
        dns_local_addhost("server.sim", &fwd);
    }
    while (!kl_sim_link_up(&link_)) {
        if ((int32_t)(sys_now() - t_end) >= 0) {
            fprintf(stderr, "kinglet-sim: no address from DHCP\n");
            return 3;
        }
        run_link(50);
    }
    if (do_trace) {
        char a[16], g[16];
        ip4addr_ntoa_r(netif_ip4_addr(&link_.netif), a, sizeof a);
        ip4addr_ntoa_r(netif_ip4_gw(&link_.netif), g, sizeof g);
        fprintf(stderr, "  ---- device up: %s/24, gateway %s (%s, %u ms); link delay %ld ms each way\n", a,
                ip4_addr_isany(netif_ip4_gw(&link_.netif)) ? "none (restricted slirp; the server is on-link)" : g,
                static_ip ? "static" : "DHCP from slirp", (unsigned)(sys_now() - t0), delay);
    }

    /* ---- SRV over lwIP UDP ------------------------------------------------ */
    if (use_srv && !host && cache_hit && kl_cache_check(&cache, kl_client_domain(&client)) == KL_OK &&
        cache.srv_host[0] && (uint32_t)time(NULL) < cache.srv_expires) {
        /* the SRV answer kept in the hints, while its TTL lasts: no lookup */
        static char target[KL_DNS_NAME_MAX + 1];
        snprintf(target, sizeof target, "%s", cache.srv_host);
        host = target;
        port = cache.srv_port;
        snprintf(srv_used, sizeof srv_used, "%s:%u (cached)", target, (unsigned)cache.srv_port);
        if (do_trace)
            fprintf(stderr, "  ---- SRV from the connection hints: %s port %u%s (%u s left)\n", target,
                    (unsigned)cache.srv_port, cache.srv_direct_tls ? " direct TLS" : "",
                    (unsigned)(cache.srv_expires - (uint32_t)time(NULL)));
        if (cache.srv_direct_tls != cfg.direct_tls) {
            cfg.direct_tls = cache.srv_direct_tls;
            kl_client_init(&client, &cfg);
        }
        if (forward((uint16_t)port) != 0)
            return 1;
    } else if (use_srv && !host) {
        uint32_t ts = sys_now();
        st = kl_lwip_srv_start(&srv, kl_client_domain(&client), KL_SIM_FWD_ADDR, dns_port, cfg.direct_tls,
                               5000u < (uint32_t)timeout_s * 1000u ? 5000u : (uint32_t)timeout_s * 1000u);
        while (st == KL_OK && (st = kl_lwip_srv_poll(&srv)) == 0) {
            uint32_t w = kl_lwip_srv_next_timeout(&srv);
            run_link(w > 50 ? 50 : w);
        }
        kl_lwip_srv_free(&srv);
        if (st < 0) {
            fprintf(stderr, "kinglet-sim: SRV lookup for %s failed: %s\n", kl_client_domain(&client), kl_strerror(st));
            return 3;
        }
        {
            const kl_lwip_candidate_t *k = &srv.cand[0];
            static char target[KL_DNS_NAME_MAX + 1];
            if (do_trace)
                for (i = 0; i < st; i++)
                    fprintf(stderr, "  ---- SRV candidate %d: %s%s%s port %u%s%s (%u queries, %u ms)\n", i,
                            srv.cand[i].host, srv.cand[i].ip[0] ? " = " : "", srv.cand[i].ip, srv.cand[i].port,
                            srv.cand[i].direct_tls ? " direct TLS" : "", srv.cand[i].from_srv ? "" : " (fallback)",
                            srv.queries_sent, (unsigned)(sys_now() - ts));
            snprintf(target, sizeof target, "%s", k->ip[0] ? k->ip : k->host);
            host = target;
            port = k->port;
            snprintf(srv_used, sizeof srv_used, "%s:%u%s", k->host, k->port, k->from_srv ? "" : " (fallback)");
            if (k->from_srv) {
                srv_ans = *k; /* kept in the hints once connected */
                srv_fresh = 1;
            }
            if (k->direct_tls != cfg.direct_tls) {
                cfg.direct_tls = k->direct_tls;
                kl_client_init(&client, &cfg);
            }
            if (forward((uint16_t)port) != 0)
                return 1;
        }
    }
    if (!host)
        host = KL_SIM_FWD_ADDR;

    /* The connection manager: one endpoint (--host, or the SRV answer),
     * lwIP's TCP and the mbedTLS binding as its primitives, one-shot
     * unless --reconnect. The TLS session to resume comes from the hints
     * (only authenticated ones: kl_cache_tls_session). */
    sim_net_ops = kl_lwip_net_ops;
    sim_net_ops.recv = sim_net_recv;
    sim_net_ops.open = sim_net_open;
    sim_tls_ops = kl_tls_mbedtls_ops;
    sim_tls_ops.save_session = sim_tls_save_session;
    memset(&scfg, 0, sizeof scfg);
    scfg.client = &client;
    if (url) {
        /* the URL's endpoint; over https/wss the certificate is verified
         * against the XMPP domain (server.sim and 10.0.2.100 stand for the host) */
        scfg.endpoints[0] = url_ep;
        scfg.tls_server_name = kl_client_domain(&client);
        scfg.bosh_split_restart = (uint8_t)bosh_split;
    } else {
        scfg.endpoints[0].host = host;
        scfg.endpoints[0].port = (uint16_t)port;
        scfg.endpoints[0].framing = KL_FRAMING_XMPP;
        scfg.endpoints[0].security = cfg.direct_tls ? KL_SEC_DIRECT_TLS : KL_SEC_STARTTLS;
    }
    scfg.n_endpoints = 1;
    scfg.net = &sim_net_ops;
    scfg.net_ctx = &net;
    scfg.tls = &sim_tls_ops;
    scfg.tls_ctx = &tlsb;
    scfg.alpn = s2s ? "xmpp-server" : NULL; /* direct TLS: NULL is "xmpp-client" */
    scfg.cache = cfg.cache;
    scfg.crypto = cfg.crypto; /* WebSocket: SHA-1 for the upgrade's accept key */
    if (cfg.crypto) {
        scfg.random = cfg.crypto->random; /* the backoff's jitter: mbedTLS's DRBG */
        scfg.random_ctx = cfg.crypto->ctx;
    }
    scfg.reconnect = (uint8_t)reconnect;
    scfg.backoff_min_ms = backoff_min > 0 ? (uint32_t)backoff_min : 0;
    scfg.backoff_max_ms = backoff_max > 0 ? (uint32_t)backoff_max : 0;
    scfg.timeout_ms = (uint32_t)timeout_s * 1000u;
    if (do_trace)
        scfg.trace = trace;
    run.session = &sess; /* a close is a logout (kl_session_close): never reconnected */
    if (cache_path && cache_hit && kl_cache_check(&cache, kl_client_domain(&client)) == KL_OK)
        session_at_start = cache.tls_session_len;

retry:
    if (do_trace)
        fprintf(stderr, "  ---- connecting to %s port %ld over lwIP%s\n", url ? url_ep.host : host, port,
                use_bosh ? " (BOSH)" : use_ws ? " (WebSocket)" : "");
    t_trace0 = sys_now();
    kl_tls_mbedtls_init(&tlsb, &tls, tls_sess, KL_SESSION_SLOTS); /* BOSH over https: two sessions */
    kl_lwip_net_init(&net);
    scfg.bosh_split_restart = (uint8_t)bosh_split;
    if ((st = kl_session_init(&sess, &scfg)) == KL_OK) {
        kl_session_use_bosh(&sess, &bosh);
        kl_session_use_ws(&sess, &ws);
        st = kl_session_start(&sess, sys_now());
    }
    if (st != KL_OK) {
        fprintf(stderr, "kinglet-sim: cannot start the session: %s\n", kl_strerror(st));
        return 2;
    }
    if (do_trace && scfg.cache) {
        size_t n = 0;
        if (kl_cache_tls_session(scfg.cache, kl_client_domain(&client), &n) != NULL)
            fprintf(stderr, "  ---- offering the TLS session from the connection hints (%u bytes)\n", (unsigned)n);
    }

    for (;;) {
        uint32_t now = sys_now(), wait;
        if (link_.flaps.ups != smx.ups_seen) {
            /* the radio is back: a device that is not online reconnects now
             * instead of waiting out a connect attempt whose SYN was lost */
            smx.ups_seen = link_.flaps.ups;
            if (!kl_client_is_online(&client) && !run.closing) {
                kl_session_kick(&sess, now);
                smx.kicks++;
            }
        }
        if ((int32_t)(now - t_end) >= 0) {
            if ((rc = kl_cli_deadline(&run, &client, now, &t_end)) < 0) {
                rc = 0;
                continue;
            }
            break;
        }
        read_budget = (size_t)slow_read; /* --slow-read: per step */
        st = kl_session_step(&sess, now, &ev);
        if (st < 0) {
            fprintf(stderr, "kinglet-sim: %s\n", kl_strerror(st));
            rc = 1;
            break;
        }
        if (st == 0) {
            /* Nothing to do: push the flight, sleep until the NIC, lwIP's
             * or the session's timers (engine, handshake, backoff). */
            {
                int before = run.echoed;
                kl_cli_flush_echoes(&run, &client);
                if (run.echoed != before)
                    continue; /* the step sends them */
            }
            flush_flights();
            wait = kl_session_next_timeout(&sess, sys_now());
            if (slow_read == 0 && session_readable())
                wait = 0;
            if (wait > t_end - now)
                wait = t_end - now;
            if (slow_read > 0) {
                sleep_ms((unsigned)slow_sleep);
                wait = 0;
            }
            run_link(wait > 200 ? 200 : wait);
            continue;
        }
        if (ev.type == KL_EV_LINK_DOWN) {
            /* --reconnect (or a refused TLS session, tried once more without it) */
            fprintf(stderr, "kinglet-sim: link down (%s%s%s); reconnecting in %u ms\n", kl_session_error_text(&sess),
                    ev.condition[0] ? ": " : "", ev.condition, ev.retry_ms);
            smx_add_connection();
            if (ev.status == KL_ERR_DEAD_PEER) {
                unsigned f;
                record_flaps();
                f = flap_to_blame();
                smx.dead_peers++;
                if (f > 0) {
                    uint32_t d = now - flap_t_down[f - 1];
                    if (d < smx.detect_min)
                        smx.detect_min = d;
                    if (d > smx.detect_max)
                        smx.detect_max = d;
                    fprintf(stderr, "kinglet-sim: dead link detected %u ms after flap %u began (last byte in %d ms "
                                    "after it began; link %s)\n", (unsigned)d, f,
                            (int)(int32_t)(t_last_rx - flap_t_down[f - 1]), kl_sim_link_is_cut(&link_) ? "still down" : "up again");
                } else {
                    smx.dead_link_up++;
                    fprintf(stderr, "kinglet-sim: dead peer, but the link has not gone down since the last byte came in\n");
                }
            }
            in_msg = 0;
            continue;
        }
        if (ev.type == KL_EV_RESUMED) {
            printf("resumed %s\n", ev.jid);
            fflush(stdout);
            smx.counted = 0;
            kl_cli_flush_echoes(&run, &client);
            continue;
        }
        if (ev.type == KL_EV_UNACKED) {
            /* the old session lost it: sent again (as the CLI does) */
            kl_xw_t w;
            printf("unacknowledged stanza %u handed back (%zu bytes): sent again\n", ev.seq, ev.stanza.raw.len);
            fflush(stdout);
            if (kl_stanza_begin(&client, &w) != KL_OK ||
                (kl_xw_raw(&w, ev.stanza.raw.p, ev.stanza.raw.len), kl_stanza_commit(&client, &w)) != KL_OK)
                fprintf(stderr, "kinglet-sim: stanza %u could not be sent again: transmit buffer full\n", ev.seq);
            else
                smx.unacked_resent++;
            continue;
        }
        if (ev.type == KL_EV_ACKED) {
            kl_cli_flush_echoes(&run, &client);
            continue;
        }
        if (ev.type == KL_EV_ONLINE) {
            smx.counted = 0;
        }
        if (ev.type == KL_EV_ONLINE && kl_session_stats(&sess)->onlines > 1) {
            printf("online again %s\n", ev.jid);
            fflush(stdout);
            kl_cli_flush_echoes(&run, &client);
            continue;
        }
        if (ev.type == KL_EV_ONLINE) {
            if (flaps_n > 0 && !flaps_started) {
                kl_sim_flaps_t fl;
                memset(&fl, 0, sizeof fl);
                fl.n = (unsigned)flaps_n;
                fl.down_min = (uint32_t)flap_down_min;
                fl.down_max = (uint32_t)flap_down_max;
                fl.up_min = (uint32_t)flap_up_min;
                fl.up_max = (uint32_t)flap_up_max;
                fl.seed = flap_seed;
                kl_sim_link_flaps(&link_, &fl);
                flaps_started = 1;
            }
            if (do_trace)
                fprintf(stderr, "  ---- online as %s after %u round trips (%u ms)\n", ev.jid,
                        kl_client_stats(&client)->round_trips, kl_client_stats(&client)->online_ms);
            printf("online %s\n", ev.jid);
            fflush(stdout);
            if (s2s && !ev.bidi)
                fprintf(stderr, "kinglet-sim: warning: %s offers no bidirectional s2s (XEP-0288): this stream "
                                "can send but will not receive\n", peer);
            if (cache_path)
                cache_hit = cache_hit && kl_cache_check(&cache, kl_client_domain(&client)) == KL_OK;
            if (cache_path && srv_fresh && kl_cache_check(&cache, kl_client_domain(&client)) == KL_OK) {
                /* the candidate that answered, for the record's TTL (the
                 * engine has validated or reset the hints by now) */
                const char *h = srv_ans.ip[0] ? srv_ans.ip : srv_ans.host;
                size_t hl = strlen(h);
                if (hl >= sizeof cache.srv_host)
                    hl = 0; /* a name longer than the hint field is simply not cached */
                memcpy(cache.srv_host, h, hl);
                cache.srv_host[hl] = '\0';
                cache.srv_port = srv_ans.port;
                cache.srv_direct_tls = srv_ans.direct_tls;
                cache.srv_expires = (uint32_t)time(NULL) + srv_ans.ttl;
            }
            if (want_roster && (st = kl_send_roster_get(&client, &roster_id)) != KL_OK)
                fprintf(stderr, "kinglet-sim: cannot ask for the roster: %s\n", kl_strerror(st));
            if (send_to) {
                st = kl_send_message(&client, send_to, "chat", send_body);
                if (st != KL_OK) {
                    fprintf(stderr, "kinglet-sim: cannot send: %s\n", kl_strerror(st));
                    rc = 1;
                    break;
                }
            }
            if (!echo && recv_n == 0 && !roster_id) {
                kl_cli_close(&run, &client);
                run.closing = 1;
            }
            continue;
        }
        if (ev.type == KL_EV_IQ_RESULT && roster_id && ev.iq_id == roster_id) {
            kl_cursor_t cur;
            kl_xml_token_t t;
            int items = 0, r;
            kl_cursor_init(&cur, &client, &ev.stanza);
            while ((r = kl_cursor_next(&cur, &t)) > 0)
                items += t.type == KL_XML_START && kl_slice_eq(t.local, "item");
            printf("roster %s: %d items, version '%s'\n", r < 0 ? "error" : "received", items,
                   cache_path ? cache.roster_ver : "");
            fflush(stdout);
            roster_id = 0;
            if (!echo && recv_n == 0 && !run.closing && kl_cli_close(&run, &client) == KL_OK)
                run.closing = 1;
            continue;
        }
        if (ev.type == KL_EV_CLOSED) {
            rc = 0;
            break;
        }
        if (ev.type == KL_EV_ERROR) {
            if (use_bosh && !strcmp(bosh_path, "auto") && !bosh_split && !kl_client_is_online(&client) &&
                !went_online(&sess) &&
                (ev.status == KL_ERR_BOSH_TERMINATE || ev.status == KL_ERR_STREAM_ERROR ||
                 ev.status == KL_ERR_BIND || ev.status == KL_ERR_PROTOCOL)) {
                /* a connection manager that does not take the restart and
                 * the bind in the creation body: the split path, once */
                if (do_trace)
                    fprintf(stderr, "  ---- BOSH: %s before online; retrying with the split path\n",
                            kl_strerror(ev.status));
                kl_session_shutdown(&sess);
                {
                    uint32_t t_close = sys_now();
                    while (tcp_active_pcbs != NULL && sys_now() - t_close < 1000u)
                        run_link(20);
                }
                kl_client_init(&client, &cfg);
                bosh_split = 1;
                retried = 1;
                goto retry;
            }
            if (!url && kl_client_full_pipelining(&client) && !retried && ev.status != KL_ERR_AUTH &&
                ev.status != KL_ERR_TLS_CERT && ev.status != KL_ERR_NO_MECHANISM) {
                /* A server that mishandles full flights (Prosody 0.12 does):
                 * once more with safe; the cache already says so for next time. */
                if (do_trace)
                    fprintf(stderr, "  ---- full pipelining failed (%s); retrying with safe\n", kl_strerror(ev.status));
                kl_session_shutdown(&sess);
                {
                    uint32_t t_close = sys_now();
                    while (tcp_active_pcbs != NULL && sys_now() - t_close < 1000u)
                        run_link(20);
                }
                cfg.pipelining = KL_PIPELINING_SAFE;
                cfg.force_full = 0;
                kl_client_init(&client, &cfg);
                retried = 1;
                goto retry;
            }
            if (ev.status == KL_ERR_STREAM_ERROR)
                fprintf(stderr, "kinglet-sim: stream error from server: %s\n", ev.condition);
            else if (ev.status == KL_ERR_AUTH)
                fprintf(stderr, "kinglet-sim: authentication failed (%s)\n",
                        ev.condition[0] ? ev.condition : "no condition");
            else if (strcmp(kl_session_error_text(&sess), kl_strerror(ev.status)) != 0)
                fprintf(stderr, "kinglet-sim: %s: %s\n", kl_strerror(ev.status), kl_session_error_text(&sess));
            else
                fprintf(stderr, "kinglet-sim: %s%s%s%s\n", kl_strerror(ev.status),
                        ev.condition[0] ? " (sent stream error " : "", ev.condition, ev.condition[0] ? ")" : "");
            rc = kl_cli_exit_code(ev.status);
            break;
        }

        if (ev.type == KL_EV_STANZA_DROPPED) {
            kl_cli_dropped(&ev);
            in_msg = 0;
            continue;
        }
        /* Messages: whole (KL_EV_STANZA) or streamed (BEGIN / TOKEN / END). */
        {
            int got = 0, n, fl;
            char from[KL_JID_MAX * 3], to[KL_JID_MAX * 3];
            to[0] = '\0';
            if (ev.type == KL_EV_STANZA && kl_slice_eq(ev.stanza.name, "message")) {
                n = kl_stanza_child_text(&client, &ev.stanza, "body", NULL, body, sizeof body);
                fl = kl_xml_decode(ev.stanza.from, 0, (uint8_t *)from, sizeof from - 1);
                if (n < 0 || fl < 0)
                    continue; /* no body (chat state, receipt…) */
                from[fl] = '\0';
                fl = kl_xml_decode(ev.stanza.to, 0, (uint8_t *)to, sizeof to - 1);
                to[fl > 0 ? fl : 0] = '\0';
                msg_fnv = 2166136261u;
                fnv(&msg_fnv, (const uint8_t *)body, (size_t)n);
                fnv(&body_fnv, (const uint8_t *)body, (size_t)n);
                msg_bytes = (unsigned long)n;
                got = 1;
            } else if (ev.type == KL_EV_STANZA_BEGIN && kl_slice_eq(ev.stanza.name, "message")) {
                fl = kl_xml_decode(ev.stanza.from, 0, (uint8_t *)from_big, sizeof from_big - 1);
                from_big[fl < 0 ? 0 : fl] = '\0';
                in_msg = 1, in_body = 0, msg_bytes = 0, msg_fnv = 2166136261u;
                continue;
            } else if (ev.type == KL_EV_TOKEN && in_msg) {
                const kl_xml_token_t *t = &ev.token;
                if (t->type == KL_XML_START && t->depth == 3 && kl_slice_eq(t->local, "body"))
                    in_body = 1;
                else if (t->type == KL_XML_END && t->depth == 3)
                    in_body = 0;
                else if (t->type == KL_XML_TEXT && in_body) {
                    n = kl_xml_decode(t->text, t->cdata, (uint8_t *)body, sizeof body);
                    if (n > 0) {
                        fnv(&msg_fnv, (const uint8_t *)body, (size_t)n);
                        fnv(&body_fnv, (const uint8_t *)body, (size_t)n);
                        msg_bytes += (unsigned long)n;
                    }
                }
                continue;
            } else if (ev.type == KL_EV_STANZA_END && in_msg) {
                in_msg = 0;
                snprintf(from, sizeof from, "%s", from_big);
                got = 1;
                n = -1;
            } else {
                continue;
            }
            if (!got)
                continue;
            bodies++;
            body_bytes += msg_bytes;
            if (msg_bytes <= 1024 && n >= 0)
                printf("message from %s: %s\n", from, body);
            else
                printf("message from %s: [%lu bytes, fnv1a %08x]\n", from, msg_bytes, (unsigned)msg_fnv);
            fflush(stdout);
            kl_cli_after_message(&run, &client, from, to[0] ? to : NULL, n >= 0 ? body : NULL);
        }
    }

    /* close_notify + FIN, then keep the loop running until lwIP has
     * finished with the pcb (or 2 s), as a firmware would before sleeping. */
    if (use_bosh) {
        bosh_path_used = bosh_split ? "split" : "all";
        if (cache_path && went_online(&sess))
            cache.bosh_path = bosh_split ? KL_CACHE_BOSH_SPLIT : KL_CACHE_BOSH_ALL; /* the path that worked */
    }
    tls_offered = sess.session_offered; /* the last handshake offered the hints' session */
    kl_session_shutdown(&sess);
    {
        uint32_t t_close = sys_now();
        while (tcp_active_pcbs != NULL && sys_now() - t_close < 2000u)
            run_link(20);
    }
    if (cache_path && (kl_client_stats(&client)->online_ms || tls_offered ||
                       (session_at_start && cache.tls_session_len == 0)))
        kl_cli_hints_save(&hints, &cache); /* also after a refused session: the manager dropped the blob */
    smx.echo_waits = run.echo_waits; /* the shared --echo wait list's counters */
    smx.echo_lost = run.echo_lost;
    if (stats)
        print_stats(mode, cache_path ? (cache_hit ? "hit" : "miss") : "none", retried,
                    srv_used[0] ? srv_used : url ? "none" : "");
    if (ram || do_trace)
        ram_report(stderr, 0);
    {
        kl_sim_arena_stats_t a;
        kl_sim_arena_stats(&a);
        if (a.failures > 0)
            fprintf(stderr, "kinglet-sim: warning: mbedTLS arena exhausted %lu time(s) (largest failed request %zu bytes)\n",
                    a.failures, a.largest_failed);
        if (lwip_exhausted())
            fprintf(stderr, "kinglet-sim: warning: an lwIP pool or the lwIP heap ran out (see the RAM report)\n");
    }
    kl_sim_link_free(&link_);
    mbedtls_memory_buffer_alloc_free();
    return rc;
}
