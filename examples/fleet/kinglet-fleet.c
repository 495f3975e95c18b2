/* kinglet-fleet — N simulated devices in one POSIX process (Linux, epoll).
 *
 *   kinglet-fleet --count N --jid 'dev%d@DOMAIN' --password P
 *                 [--host H] [--port N] [--cafile F] [--tls starttls|direct]
 *                 [--duration S] [--rate R] [--no-jitter] [--stats]
 *                 [--first K] [--presence|--no-presence] [--reading T_S] [--echo]
 *                 [--srv --dns HOST:PORT] [--backoff MIN_MS MAX_MS]
 *                 [--tls-binding shared|port] [--after-back S] [--after-online S] [--no-plain]
 *                 [--spread] [--timeout MS]
 *                 [--server-pid PID[,PID...]]
 *
 * Every device is what a real one runs: its own engine (kl_client_t), its
 * own connection manager (kl_session_t, reconnect on, stream management
 * with its own 2 KB queue), its own sockets (kl_posix_net_t) and its own
 * mbedTLS session (an mbedtls_ssl_context through kl_fleet_tls.h, whose
 * mbedtls_ssl_config, CA chain and DRBG all devices share; --tls-binding
 * port: port/mbedtls's kl_tls_mbedtls_ops, a whole kl_tls_t per device);
 * one event loop (epoll) drives them all. Nothing is allocated per message: the device
 * table is allocated once at start.
 *
 * %d in --jid is the device number, from --first K (default 1). --rate R
 * starts at most R devices in any one second (default: all at once, a
 * login storm). --duration S: S seconds after the last device started
 * (default 10); then, with --reading, the readings stop and the fleet
 * waits (5 s at most) until every reading sent has arrived, then every
 * device logs out and the program exits. --reading T: every online device
 * sends "temp=21.5 seq=N" to its own bare JID every T seconds. --echo
 * answers every message from another account with its body (a device's
 * own readings are not echoed: that would loop). --no-jitter: the
 * reconnect backoff without jitter (kl_session_config_t.no_jitter).
 * --host A,B,...: every device gets all of them as endpoints, in order (at
 * most KL_SESSION_MAX_ENDPOINTS), all on --port.
 *
 * Readings are "temp=21.5 dev=K seq=N"; the device that gets one back
 * marks seq N as received (a bitmap of RECV_MAP per device, kept apart
 * from the device's own RAM), so loss (readings_lost: sent, never came
 * back) is told from duplicates (readings_dups). A stanza a failed
 * resumption hands back (KL_EV_UNACKED) is sent again (unacked_handed_back,
 * unacked_resent).
 *
 * SIGUSR1 marks "t0" (a server killed, a service restarted): from then on
 * the JSON's mark_* fields count connection attempts (attempts_timeline:
 * per second after t0; mark_attempts_per_s_peak: the most in any 1000 ms),
 * new sessions vs resumptions, hand-backs, and each device's way back
 * (mark_back_*_ms: t0 to online/resumed again, for every device that was
 * down at t0 or lost its link after it). --after-back S: once every such
 * device is back online, end S seconds later (or at --duration, if that comes first).
 *
 * stderr: a progress line once a second (\r-updated on a terminal) and
 * the first failures. --stats: the last line of stdout is one JSON object
 * (see print_stats()). RAM per device is measured: the per-device structs
 * (sizeof) plus the peak of mbedTLS's heap in use (a counting
 * calloc/free through mbedtls_platform_set_calloc_free) divided by N.
 *
 * --spread: device K begins its endpoint list (--host or --srv) at entry K
 * mod n, the rest in order: a storm lands on every node of a cluster. It
 * rotates the whole list: with --srv, for records of one priority.
 * --timeout MS: the TCP connect and the TLS handshake may each take MS
 * before the device gives up on the attempt and tries the next endpoint
 * or backs off (kl_session_config_t.timeout_ms, default 20 s). The login
 * has the engine's KL_NEGOTIATION_TIMEOUT_MS (20 s from the attempt's
 * start, compile time). Both grow after a timed-out TLS handshake or login
 * (KL_SESSION_TIMEOUT_GROWTH). In a storm larger than the service can log in within these,
 * attempts the server had already begun are abandoned and made again.
 * --after-online S: once every device has been online (the login storm
 * is over), end S seconds later (or at --duration, if that comes first).
 * --no-plain: SCRAM only (kl_client_config_t.no_plain). PLAIN saves the
 * device a round trip, but a server that stores SCRAM hashes (ejabberd's
 * auth_password_format: scram) must then run the 4096-round PBKDF2 itself
 * for every login; with SCRAM the device runs it and the server compares.
 * --server-pid P,Q: the server's processes; their CPU time (utime+stime in
 * /proc/PID/stat, sampled every second and at the end; a process that
 * died keeps its last sample) goes into the JSON beside the fleet's:
 * server_cpu_ms / server_cpu_ms_per_login for the whole run, and for the
 * login storm (first start to the moment every device was online once):
 * storm_ms, storm_attempts, storm_cpu_ms_per_login (the fleet),
 * server_storm_cpu_ms_per_login. Per login: the CPU of attempts that
 * failed or timed out is in it (storm_attempts tells how many there were).
 * A PID is followed, not a server: a restarted node is not measured.
 *
 * Exit: 0 when no device failed for good and every device online at the
 * end logged out cleanly; 1 otherwise; 2 usage; 3 setup (fds, epoll).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kinglet/kinglet.h"
#include "kinglet/kl_session.h"
#include "kl_crypto_mbedtls.h"
#include "kl_posix_dns.h"
#include "kl_posix_net.h"
#include "kl_tls_bind.h"
#include "kl_fleet_tls.h"
#include "mbedtls/platform.h"

#if !defined(MBEDTLS_PLATFORM_MEMORY)
#error "kinglet-fleet measures mbedTLS's heap: build with -DMBEDTLS_PLATFORM_MEMORY (mk/fleet.mk does)"
#endif

#define SMQ_SIZE 2048
#define JID_CAP 96
#define RECV_MAP 1024          /* readings tracked per device (seq 1..RECV_MAP) */
#define MAX_HOSTS KL_SESSION_MAX_ENDPOINTS
#define TL_SECONDS 120         /* attempts_timeline: seconds after the mark */

enum { D_IDLE, D_RUN, D_FAILED, D_CLOSED };

typedef struct dev {
    kl_client_t c;
    kl_session_t s;
    kl_posix_net_t net;
    void *tls;                 /* kl_fleet_tls_t (shared configuration), or with
                                  --tls-binding port a port_tls_t */
    uint8_t smq[SMQ_SIZE];
    char jid[JID_CAP];
    char bare[JID_CAP];
    /* the event loop's bookkeeping */
    uint8_t state;
    uint8_t online;
    uint8_t ever_online;
    uint8_t in_run;            /* queued to run in this round */
    uint8_t closing;
    uint8_t online_at_logout;
    uint8_t logged_out;        /* KL_EV_CLOSED, status KL_OK, after an online session */
    int reg_fd[KL_SESSION_SLOTS];
    uint32_t reg_ev[KL_SESSION_SLOTS];
    uint32_t t_start, first_online_ms;
    uint32_t due;              /* when the device wants to run for a timer */
    uint32_t next_reading;
    uint32_t seq;
    uint32_t attempts_seen;    /* kl_session_stats().attempts already counted */
    uint32_t attempts_at_down; /* ... when the link went down (backing off until it grows) */
} fdev_t;

/* The test's accounting per device, apart from fdev_t (not device RAM:
 * ram_static_per_device stays what a device holds). */
typedef struct dacct {
    /* readings: "dev=K seq=N" to itself; which ones came back */
    uint32_t recv_distinct, recv_dups;
    uint8_t recv_map[RECV_MAP / 8];
    /* after the mark (SIGUSR1) */
    uint8_t down_after_mark;
    uint8_t back_after_mark;
    uint32_t back_ms;          /* mark -> first online/resumed after a link loss */
} dacct_t;

/* ---- options ---------------------------------------------------------------- */
static struct {
    long count, first, rate, duration, reading;
    const char *jid_fmt, *password, *host, *cafile, *tls, *dns;
    int port, no_jitter, stats, presence, echo, srv, no_plain, spread;
    long backoff_min, backoff_max;
    long after_back;           /* --after-back S: end S s after every device is back (after the mark) */
    long after_online;         /* --after-online S: end S s after every device was online once */
    long timeout_ms;           /* --timeout MS: kl_session_config_t.timeout_ms (0: its default, 20 s) */
    const char *hosts[MAX_HOSTS];
    int nhosts;
} o = {.first = 1, .duration = 10, .tls = "starttls", .presence = 1, .backoff_min = -1, .backoff_max = -1, .after_back = -1, .after_online = -1};

/* ---- totals ----------------------------------------------------------------- */
static struct {
    unsigned long logins, onlines, resumes, link_downs, failed, msgs_sent, msgs_recv, echoed, readings_skipped;
    unsigned long unacked_resent, logged_out, close_timeouts;
    unsigned long long rt_sum, wire_out_sum, wire_in_sum;
    unsigned long attempts;
    unsigned attempts_peak;
    unsigned long unacked_handed, recv_dups, recv_foreign, readings_over_map;
    /* after the mark (SIGUSR1) */
    int marked;
    uint32_t mark_t;
    unsigned long m_onlines, m_resumes, m_link_downs, m_attempts, m_unacked_handed, m_unacked_resent;
    unsigned tl[TL_SECONDS];   /* connection attempts started in second k after the mark */
    unsigned m_peak;           /* the most in any 1000 ms (sliding) after the mark */
} T;

/* ---- the server's CPU (--server-pid) ---------------------------------------- */
#define MAX_SERVER_PIDS 8
static struct {
    long pid;
    unsigned long long base, last; /* clock ticks */
} srvp[MAX_SERVER_PIDS];
static int nsrvp;

static void server_pids(const char *list)
{
    char *e;
    while (*list) {
        long v = strtol(list, &e, 10);
        if (e == list || v <= 0 || nsrvp == MAX_SERVER_PIDS || (*e && *e != ',')) {
            fprintf(stderr, "kinglet-fleet: --server-pid wants up to %d PIDs, comma separated\n", MAX_SERVER_PIDS);
            exit(2);
        }
        srvp[nsrvp++].pid = v;
        list = *e ? e + 1 : e;
    }
}

/* utime + stime of /proc/PID/stat (fields 14 and 15), or 0 when gone */
static unsigned long long proc_ticks(long pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;
    size_t n;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return ut + st;
}

/* first: take the base (a PID that cannot be read then is dropped, with
 * a warning). Returns the server's CPU so far, in ms. */
static double server_sample(int first)
{
    unsigned long long sum = 0;
    for (int i = 0; i < nsrvp; i++) {
        unsigned long long t = proc_ticks(srvp[i].pid);
        if (first && t == 0) {
            fprintf(stderr, "kinglet-fleet: --server-pid %ld: no such process (not measured)\n", srvp[i].pid);
            srvp[i--] = srvp[--nsrvp];
            continue;
        }
        if (first)
            srvp[i].base = srvp[i].last = t;
        else if (t >= srvp[i].last)
            srvp[i].last = t; /* gone (0): the last sample stays */
        sum += srvp[i].last - srvp[i].base;
    }
    return (double)sum * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

static double storm_cpu, storm_server_cpu; /* at all_online_t */
static long storm_logins;
static unsigned long storm_attempts;
static double cpu_t0;

static volatile sig_atomic_t got_mark;
static void on_usr1(int sig)
{
    (void)sig;
    got_mark = 1;
}

static fdev_t *devs;
static dacct_t *dacc;          /* dacc[i]: devs[i]'s */
#define ACCT(d) (&dacc[(d) - devs])
static int epfd = -1;
static int tty;
static kl_tls_config_t tls_base;
static kl_fleet_tls_shared_t tls_shared;
static int port_binding;  /* --tls-binding port: port/mbedtls's kl_tls_mbedtls_ops, a kl_tls_t per device */
typedef struct port_tls {
    kl_tls_mbedtls_t tb;
    kl_tls_t tls[1];       /* XMPP over TCP: slot 0 only */
} port_tls_t;
static size_t tls_size;    /* per device */
static size_t heap_shared; /* mbedTLS heap in use before the first device started (PSA, the shared CA ...) */
static kl_crypto_mbedtls_t crypto; /* SCRAM's hooks and DRBG: stateless per login, shared */
static kl_posix_candidate_t cand[KL_POSIX_MAX_CANDIDATES];
static int ncand;

/* ---- mbedTLS's heap, counted ---------------------------------------------- */
#define HDR 16
static size_t heap_cur, heap_peak, heap_online; /* heap_online: at the logout (steady state) */
static unsigned long heap_allocs;

static void *count_calloc(size_t n, size_t sz)
{
    size_t b;
    uint8_t *p;
    if (sz != 0 && n > (SIZE_MAX - HDR) / sz)
        return NULL;
    b = n * sz;
    if ((p = calloc(1, b + HDR)) == NULL)
        return NULL;
    memcpy(p, &b, sizeof b);
    heap_cur += b;
    heap_allocs++;
    if (heap_cur > heap_peak)
        heap_peak = heap_cur;
    return p + HDR;
}

static void count_free(void *q)
{
    size_t b;
    uint8_t *p;
    if (q == NULL)
        return;
    p = (uint8_t *)q - HDR;
    memcpy(&b, p, sizeof b);
    heap_cur -= b;
    free(p);
}

/* ---- time windows: attempts started in the last second ------------------- */
/* 1000 one-millisecond buckets; `total` is the sum over the last 1000 ms. */
typedef struct win {
    uint16_t b[1000];
    uint32_t last;
    unsigned total;
    int started;
} win_t;

static void win_advance(win_t *w, uint32_t now)
{
    uint32_t d;
    if (!w->started) {
        w->started = 1;
        w->last = now;
        return;
    }
    d = now - w->last;
    if ((int32_t)d <= 0)
        return;
    if (d >= 1000) {
        memset(w->b, 0, sizeof w->b);
        w->total = 0;
    } else {
        for (uint32_t t = w->last + 1; t != now + 1; t++) {
            w->total -= w->b[t % 1000];
            w->b[t % 1000] = 0;
        }
    }
    w->last = now;
}

static void win_add(win_t *w, uint32_t now, unsigned n)
{
    win_advance(w, now);
    w->b[now % 1000] = (uint16_t)(w->b[now % 1000] + n);
    w->total += n;
}

static win_t attempts_win, starts_win, mark_win;

/* ---- the port's net ops, wrapped: the event loop learns of every close ---- */
static fdev_t *dev_of_net(void *net)
{
    return (fdev_t *)((char *)net - offsetof(fdev_t, net));
}

static void forget_fd(void *net, int slot)
{
    fdev_t *d = dev_of_net(net);
    /* close() takes the fd out of the epoll set; a new socket may get the
     * same number, so the registration is forgotten here, not guessed later */
    if (d->reg_fd[slot] >= 0 && d->reg_fd[slot] == d->net.fd[slot])
        d->reg_fd[slot] = -1;
}

static int f_open(void *net, int slot, const char *host, uint16_t port)
{
    forget_fd(net, slot);
    return kl_posix_net_ops.open(net, slot, host, port);
}

static void f_close(void *net, int slot)
{
    forget_fd(net, slot);
    kl_posix_net_ops.close(net, slot);
}

static void f_abort(void *net, int slot)
{
    forget_fd(net, slot);
    kl_posix_net_ops.abort(net, slot);
}

static kl_net_ops_t fleet_net_ops;

/* ---- epoll registration after a device ran ---------------------------------- */
static void sync_fds(fdev_t *d, long idx)
{
    for (int slot = 0; slot < KL_SESSION_SLOTS; slot++) {
        int fd = d->net.fd[slot];
        int w = fd >= 0 ? kl_session_wants(&d->s, slot) : 0;
        uint32_t ev = (uint32_t)((w & KL_WANT_READ ? EPOLLIN : 0) | (w & KL_WANT_WRITE ? EPOLLOUT : 0));
        struct epoll_event e;
        if (d->reg_fd[slot] >= 0 && d->reg_fd[slot] != fd)
            d->reg_fd[slot] = -1; /* closed (f_close saw it) */
        if (ev == 0) {
            if (d->reg_fd[slot] >= 0)
                (void)epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
            d->reg_fd[slot] = -1;
            continue;
        }
        if (d->reg_fd[slot] == fd && d->reg_ev[slot] == ev)
            continue;
        memset(&e, 0, sizeof e);
        e.events = ev;
        e.data.u64 = (uint64_t)idx;
        if (d->reg_fd[slot] == fd) {
            if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &e) != 0 && errno == ENOENT)
                (void)epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
        } else if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) != 0 && errno == EEXIST) {
            (void)epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &e);
        }
        d->reg_fd[slot] = fd;
        d->reg_ev[slot] = ev;
    }
}

/* ---- the devices ------------------------------------------------------------ */
static unsigned long nfail_printed;

static void say_failure(fdev_t *d, const char *what, const kl_event_t *ev)
{
    if (nfail_printed++ >= 10)
        return;
    fprintf(stderr, "%skinglet-fleet: %s: %s %s%s%s (%s)\n", tty ? "\n" : "", d->jid, what, kl_strerror(ev->status),
            ev->condition && ev->condition[0] ? ": " : "", ev->condition ? ev->condition : "",
            kl_session_error_text(&d->s));
}

/* --spread: device K starts its endpoint list at entry K mod n (the
 * others follow in order), so a fleet's first attempts are spread over the
 * nodes as the SRV weights of equal-priority records would spread real
 * devices; without it every device tries the list in the same order. */
static int rot(const fdev_t *d, int n)
{
    return o.spread && n > 0 ? (int)((d - devs) % n) : 0;
}

static int dev_start(fdev_t *d, uint32_t now)
{
    kl_client_config_t cfg;
    kl_session_config_t scfg;
    int st;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = d->jid;
    cfg.password = o.password;
    cfg.pipelining = KL_PIPELINING_SAFE;
    cfg.random = kl_posix_random;
    cfg.crypto = &crypto.table;
    cfg.no_presence = (uint8_t)!o.presence;
    cfg.no_plain = (uint8_t)o.no_plain;
    cfg.direct_tls = (uint8_t)!strcmp(o.tls, "direct");
    cfg.sm_queue = d->smq;
    cfg.sm_queue_size = sizeof d->smq;
    if ((st = kl_client_init(&d->c, &cfg)) != KL_OK)
        return st;
    kl_posix_net_init(&d->net);
    if (port_binding)
        kl_tls_mbedtls_init(&((port_tls_t *)d->tls)->tb, &tls_base, ((port_tls_t *)d->tls)->tls, 1);
    else
        kl_fleet_tls_init(d->tls, &tls_shared);
    memset(&scfg, 0, sizeof scfg);
    if (ncand > 0) {
        int i;
        int nc = ncand < KL_SESSION_MAX_ENDPOINTS ? ncand : KL_SESSION_MAX_ENDPOINTS;
        for (i = 0; i < nc; i++) {
            const kl_posix_candidate_t *c = &cand[(i + rot(d, nc)) % nc];
            scfg.endpoints[i].host = c->ip[0] ? c->ip : c->host;
            scfg.endpoints[i].port = c->port;
            scfg.endpoints[i].security = c->direct_tls ? KL_SEC_DIRECT_TLS : KL_SEC_STARTTLS;
        }
        scfg.n_endpoints = i;
    } else if (o.nhosts > 0) {
        /* --host A,B,...: every device gets all of them, in order */
        for (int i = 0; i < o.nhosts; i++) {
            scfg.endpoints[i].host = o.hosts[(i + rot(d, o.nhosts)) % o.nhosts];
            scfg.endpoints[i].port = (uint16_t)o.port;
            scfg.endpoints[i].security = cfg.direct_tls ? KL_SEC_DIRECT_TLS : KL_SEC_STARTTLS;
        }
        scfg.n_endpoints = o.nhosts;
    } else {
        scfg.endpoints[0].host = NULL; /* the domain */
        scfg.endpoints[0].port = (uint16_t)o.port;
        scfg.endpoints[0].security = cfg.direct_tls ? KL_SEC_DIRECT_TLS : KL_SEC_STARTTLS;
        scfg.n_endpoints = 1;
    }
    scfg.client = &d->c;
    scfg.net = &fleet_net_ops;
    scfg.net_ctx = &d->net;
    scfg.tls = port_binding ? &kl_tls_mbedtls_ops : &kl_fleet_tls_ops;
    scfg.tls_ctx = port_binding ? (void *)&((port_tls_t *)d->tls)->tb : d->tls;
    scfg.random = kl_posix_random;
    scfg.crypto = &crypto.table;
    scfg.reconnect = 1;
    scfg.no_jitter = (uint8_t)o.no_jitter;
    scfg.timeout_ms = (uint32_t)o.timeout_ms;
    scfg.backoff_min_ms = o.backoff_min > 0 ? (uint32_t)o.backoff_min : 0;
    scfg.backoff_max_ms = o.backoff_max > 0 ? (uint32_t)o.backoff_max : 0;
    if ((st = kl_session_init(&d->s, &scfg)) != KL_OK)
        return st;
    d->state = D_RUN;
    d->t_start = now;
    d->reg_fd[0] = d->reg_fd[1] = -1;
    return kl_session_start(&d->s, now);
}

static int bare_eq(kl_slice_t from, const char *bare)
{
    size_t n = strlen(bare), i;
    for (i = 0; i < from.len && from.p[i] != '/'; i++)
        ;
    return i == n && !memcmp(from.p, bare, n);
}

static void on_stanza(fdev_t *d, const kl_event_t *ev)
{
    char body[512], from[KL_JID_MAX * 3];
    int n;
    if (!kl_slice_eq(ev->stanza.name, "message") || kl_slice_eq(ev->stanza.type, "error"))
        return;
    n = kl_stanza_child_text(&d->c, &ev->stanza, "body", NULL, body, sizeof body);
    if (n == KL_ERR_ARG)
        return; /* no body: a chat state, a receipt ... */
    T.msgs_recv++;
    if (n > 0 && bare_eq(ev->stanza.from, d->bare)) {
        /* a reading of ours: "temp=21.5 dev=K seq=N" */
        const char *pd = strstr(body, " dev="), *ps = strstr(body, " seq=");
        long k = pd ? strtol(pd + 5, NULL, 10) - o.first : -1;
        long q = ps ? strtol(ps + 5, NULL, 10) : 0;
        if (pd && ps && k >= 0 && k < o.count && &devs[k] == d && q >= 1 && q <= RECV_MAP) {
            uint8_t bit = (uint8_t)(1u << ((q - 1) % 8));
            dacct_t *a = ACCT(d);
            if (a->recv_map[(q - 1) / 8] & bit) {
                a->recv_dups++;
                T.recv_dups++;
            } else {
                a->recv_map[(q - 1) / 8] |= bit;
                a->recv_distinct++;
            }
        } else {
            T.recv_foreign++;
        }
    }
    if (!o.echo || n < 0 || ev->stanza.from.len == 0 || bare_eq(ev->stanza.from, d->bare))
        return;
    if (kl_xml_decode(ev->stanza.from, 0, (uint8_t *)from, sizeof from - 1) < 0)
        return;
    if (kl_send_message(&d->c, from, "chat", body) == KL_OK)
        T.echoed++;
}

static void dev_run(fdev_t *d, uint32_t now, int readings)
{
    kl_event_t ev;
    const kl_session_stats_t *w;
    int r;
    if (d->state != D_RUN)
        return;
    if (readings && o.reading > 0 && d->online && (int32_t)(now - d->next_reading) >= 0) {
        char body[80];
        snprintf(body, sizeof body, "temp=21.5 dev=%ld seq=%u", (long)(d - devs) + o.first, (unsigned)d->seq + 1);
        if (d->seq >= RECV_MAP)
            T.readings_over_map++; /* not tracked: no more readings */
        else if (kl_send_message(&d->c, d->bare, "chat", body) == KL_OK)
            T.msgs_sent++, d->seq++;
        else
            T.readings_skipped++;
        d->next_reading += (uint32_t)o.reading * 1000u;
        if ((int32_t)(now - d->next_reading) >= 0) /* the loop fell behind: no burst */
            d->next_reading = now + (uint32_t)o.reading * 1000u;
    }
    while ((r = kl_session_step(&d->s, now, &ev)) > 0) {
        switch (ev.type) {
        case KL_EV_ONLINE:
        case KL_EV_RESUMED:
            w = kl_session_stats(&d->s);
            T.logins++;
            if (ev.type == KL_EV_ONLINE)
                T.onlines++;
            else
                T.resumes++;
            if (T.marked && ev.type == KL_EV_ONLINE)
                T.m_onlines++;
            else if (T.marked)
                T.m_resumes++;
            if (ACCT(d)->down_after_mark && !ACCT(d)->back_after_mark) {
                ACCT(d)->back_after_mark = 1;
                ACCT(d)->back_ms = now - T.mark_t;
            }
            T.rt_sum += kl_client_stats(&d->c)->round_trips;
            T.wire_out_sum += w->wire_out_online;
            T.wire_in_sum += w->wire_in_online;
            d->online = 1;
            if (!d->ever_online) {
                d->ever_online = 1;
                d->first_online_ms = now - d->t_start;
            }
            d->next_reading = now + (uint32_t)o.reading * 1000u;
            break;
        case KL_EV_STANZA:
            on_stanza(d, &ev);
            break;
        case KL_EV_UNACKED: {
            /* the old session lost it: sent again (a reading, an echo) */
            kl_xw_t x;
            T.unacked_handed++;
            T.m_unacked_handed += (unsigned long)T.marked;
            if (kl_stanza_begin(&d->c, &x) == KL_OK &&
                (kl_xw_raw(&x, ev.stanza.raw.p, ev.stanza.raw.len), kl_stanza_commit(&d->c, &x)) == KL_OK) {
                T.unacked_resent++;
                T.m_unacked_resent += (unsigned long)T.marked;
            }
            break;
        }
        case KL_EV_LINK_DOWN:
            d->online = 0;
            T.link_downs++;
            if (T.marked) {
                T.m_link_downs++;
                ACCT(d)->down_after_mark = 1;
            }
            d->attempts_at_down = kl_session_stats(&d->s)->attempts;
            break;
        case KL_EV_ERROR:
            d->online = 0;
            d->state = D_FAILED;
            T.failed++;
            say_failure(d, "failed", &ev);
            break;
        case KL_EV_CLOSED:
            d->online = 0;
            d->state = D_CLOSED;
            if (ev.status == KL_OK && d->online_at_logout) {
                d->logged_out = 1;
                T.logged_out++;
            } else if (d->online_at_logout) {
                T.close_timeouts++;
                say_failure(d, "logout", &ev);
            }
            break;
        default:
            break;
        }
        if (d->state != D_RUN)
            break;
    }
    w = kl_session_stats(&d->s);
    if (w->attempts != d->attempts_seen) {
        unsigned n = w->attempts - d->attempts_seen;
        d->attempts_seen = w->attempts;
        T.attempts += n;
        win_add(&attempts_win, now, n);
        if (attempts_win.total > T.attempts_peak)
            T.attempts_peak = attempts_win.total;
        if (T.marked) {
            uint32_t k = (now - T.mark_t) / 1000u;
            T.m_attempts += n;
            if (k < TL_SECONDS)
                T.tl[k] += n;
            win_add(&mark_win, now, n);
            if (mark_win.total > T.m_peak)
                T.m_peak = mark_win.total;
        }
    }
    {
        uint32_t t = d->state == D_RUN ? kl_session_next_timeout(&d->s, now) : UINT32_MAX;
        d->due = t == UINT32_MAX ? now + 3600000u : now + t;
        if (readings && o.reading > 0 && d->online && (int32_t)(d->next_reading - d->due) < 0)
            d->due = d->next_reading;
    }
}

/* ---- progress and statistics ------------------------------------------------ */
static void progress(long started, int final)
{
    long online = 0, connecting = 0, backoff = 0;
    for (long i = 0; i < started; i++) {
        fdev_t *d = &devs[i];
        if (d->state != D_RUN)
            continue;
        if (d->online)
            online++;
        else if (d->attempts_at_down && kl_session_stats(&d->s)->attempts == d->attempts_at_down)
            backoff++;
        else
            connecting++;
    }
    fprintf(stderr, "%sonline %ld  connecting %ld  backing off %ld  failed %lu  logins %lu  messages sent %lu received %lu%s",
            tty ? "\r" : "", online, connecting, backoff, T.failed, T.logins, T.msgs_sent, T.msgs_recv,
            tty && !final ? "   " : "\n");
    fflush(stderr);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(const uint32_t *v, long n, int p)
{
    long k;
    if (n == 0)
        return 0;
    k = (n * p + 99) / 100 - 1; /* nearest rank */
    if (k < 0)
        k = 0;
    return v[k];
}

static void print_stats(long online_end, uint32_t first_t, uint32_t all_online_t)
{
    uint32_t *v = calloc((size_t)o.count, sizeof *v);
    long n = 0;
    double cpu_ms, span_s, server_cpu = server_sample(0);
    size_t statics = sizeof(fdev_t) + tls_size;
    for (long i = 0; i < o.count && v; i++)
        if (devs[i].ever_online)
            v[n++] = devs[i].first_online_ms;
    if (v)
        qsort(v, (size_t)n, sizeof *v, cmp_u32);
    cpu_ms = self_cpu_ms();
    span_s = all_online_t ? (double)(uint32_t)(all_online_t - first_t) / 1000.0 : 0;
    printf("{\"count\":%ld,\"online\":%ld,\"ever_online\":%ld,\"logins\":%lu,\"onlines\":%lu,\"resumes\":%lu,"
           "\"logins_per_s\":%.1f,"
           "\"p50_online_ms\":%u,\"p90_online_ms\":%u,\"p99_online_ms\":%u,\"max_online_ms\":%u,"
           "\"round_trips\":%.2f,\"bytes_out\":%.0f,\"bytes_in\":%.0f,"
           "\"ram_per_device\":%zu,\"ram_static_per_device\":%zu,\"ram_tls_heap_peak_per_device\":%zu,"
           "\"tls_binding\":\"%s\",\"tls_shared_bytes\":%zu,\"tls_heap_peak\":%zu,\"tls_heap_online\":%zu,\"tls_allocs\":%lu,"
           "\"sizeof_client\":%zu,\"sizeof_session\":%zu,\"sizeof_net\":%zu,\"sizeof_tls\":%zu,\"sm_queue\":%d,"
           "\"cpu_ms\":%.0f,\"cpu_ms_per_login\":%.2f,\"link_downs\":%lu,\"failed\":%lu,"
           "\"messages_sent\":%lu,\"messages_received\":%lu,\"echoed\":%lu,\"readings_skipped\":%lu,"
           "\"unacked_resent\":%lu,\"attempts\":%lu,\"attempts_per_s_peak\":%u,\"logged_out\":%lu,"
           "\"logout_failures\":%lu,\"storm_ms\":%u,\"storm_logins\":%ld,\"storm_attempts\":%lu,\"storm_cpu_ms_per_login\":%.2f,"
           "\"server_pids\":%d,\"server_cpu_ms\":%.0f,\"server_cpu_ms_per_login\":%.2f,"
           "\"server_storm_cpu_ms_per_login\":%.2f",
           o.count, online_end, n, T.logins, T.onlines, T.resumes,
           span_s > 0 ? (double)T.onlines / span_s : 0.0, pct(v, n, 50), pct(v, n, 90), pct(v, n, 99),
           n ? v[n - 1] : 0, T.logins ? (double)T.rt_sum / (double)T.logins : 0.0,
           T.logins ? (double)T.wire_out_sum / (double)T.logins : 0.0,
           T.logins ? (double)T.wire_in_sum / (double)T.logins : 0.0,
           statics + heap_peak / (size_t)o.count, statics, heap_peak / (size_t)o.count, port_binding ? "port" : "shared",
           port_binding ? heap_shared : sizeof tls_shared + heap_shared, heap_peak, heap_online,
           heap_allocs, sizeof(kl_client_t), sizeof(kl_session_t), sizeof(kl_posix_net_t),
           tls_size, SMQ_SIZE, cpu_ms,
           T.logins ? cpu_ms / (double)T.logins : 0.0, T.link_downs, T.failed, T.msgs_sent, T.msgs_recv, T.echoed,
           T.readings_skipped, T.unacked_resent, T.attempts, T.attempts_peak, T.logged_out, T.close_timeouts,
           all_online_t ? (uint32_t)(all_online_t - first_t) : 0, storm_logins, storm_attempts,
           storm_logins ? storm_cpu / (double)storm_logins : 0.0, nsrvp, server_cpu,
           T.logins && nsrvp ? server_cpu / (double)T.logins : 0.0,
           storm_logins && nsrvp ? storm_server_cpu / (double)storm_logins : 0.0);
    fflush(stdout);
    free(v);
}

/* After the regular fields, before the closing brace: the per-device
 * reading accounting and what happened after the mark (SIGUSR1). */
static void print_stats_more(void)
{
    uint32_t *v = calloc((size_t)o.count, sizeof *v);
    long nb = 0, nd = 0, lost_devs = 0;
    unsigned long lost = 0, distinct = 0;
    int last = -1;
    for (long i = 0; i < o.count; i++) {
        fdev_t *d = &devs[i];
        dacct_t *a = &dacc[i];
        distinct += a->recv_distinct;
        if (d->seq > a->recv_distinct) {
            lost += d->seq - a->recv_distinct;
            lost_devs++;
        }
        nd += a->down_after_mark;
        if (a->back_after_mark && v)
            v[nb++] = a->back_ms;
    }
    if (v)
        qsort(v, (size_t)nb, sizeof *v, cmp_u32);
    for (int k = 0; k < TL_SECONDS; k++)
        if (T.tl[k])
            last = k;
    printf(",\"readings_distinct\":%lu,\"readings_lost\":%lu,\"devices_with_loss\":%ld,\"readings_dups\":%lu,"
           "\"readings_foreign\":%lu,\"readings_over_map\":%lu,\"unacked_handed_back\":%lu,"
           "\"marked\":%d,\"mark_down\":%ld,\"mark_back\":%ld,\"mark_back_p50_ms\":%u,\"mark_back_p99_ms\":%u,"
           "\"mark_back_max_ms\":%u,\"mark_onlines\":%lu,\"mark_resumes\":%lu,\"mark_link_downs\":%lu,"
           "\"mark_unacked_handed_back\":%lu,\"mark_unacked_resent\":%lu,\"mark_attempts\":%lu,"
           "\"mark_attempts_per_s_peak\":%u,\"attempts_timeline\":[",
           distinct, lost, lost_devs, T.recv_dups, T.recv_foreign, T.readings_over_map, T.unacked_handed, T.marked, nd,
           nb, pct(v, nb, 50), pct(v, nb, 99), nb ? v[nb - 1] : 0, T.m_onlines, T.m_resumes, T.m_link_downs,
           T.m_unacked_handed, T.m_unacked_resent, T.m_attempts, T.m_peak);
    for (int k = 0; k <= last; k++)
        printf("%s%u", k ? "," : "", T.tl[k]);
    printf("]}\n");
    fflush(stdout);
    free(v);
}

static int all_readings_back(void)
{
    for (long i = 0; i < o.count; i++)
        if (dacc[i].recv_distinct < devs[i].seq)
            return 0;
    return 1;
}

/* ---- command line ------------------------------------------------------------ */
static void usage(void)
{
    fprintf(stderr,
            "usage: kinglet-fleet --count N --jid 'dev%%d@DOMAIN' --password P\n"
            "                     [--host H] [--port N] [--cafile F] [--tls starttls|direct]\n"
            "                     [--duration S] [--rate R] [--no-jitter] [--stats]\n"
            "                     [--first K] [--presence|--no-presence] [--reading T_S] [--echo]\n"
            "                     [--srv --dns HOST:PORT] [--backoff MIN_MS MAX_MS]\n"
            "                     [--tls-binding shared|port] [--after-back S] [--after-online S]\n"
            "                     [--no-plain] [--spread] [--timeout MS]\n"
            "                     [--server-pid PID[,PID...]]\n");
    exit(2);
}

static long num(const char *s, long lo, long hi)
{
    char *e;
    long v;
    if (s == NULL)
        usage();
    errno = 0;
    v = strtol(s, &e, 10);
    if (errno || *e || e == s || v < lo || v > hi) {
        fprintf(stderr, "kinglet-fleet: bad number '%s' (%ld..%ld)\n", s, lo, hi);
        exit(2);
    }
    return v;
}

/* exactly one %d, no other conversion */
static int jid_fmt_ok(const char *f)
{
    int d = 0;
    for (const char *p = f; *p; p++) {
        if (*p != '%')
            continue;
        if (p[1] == 'd')
            d++, p++;
        else
            return 0;
    }
    return d == 1;
}

static void raise_nofile(long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("kinglet-fleet: getrlimit");
        exit(3);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur >= need)
        return;
    if (rl.rlim_max != RLIM_INFINITY && (long)rl.rlim_max < need)
        rl.rlim_max = (rlim_t)need;
    rl.rlim_cur = (rlim_t)need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        fprintf(stderr,
                "kinglet-fleet: %ld devices need %ld file descriptors; the limit is %ld (hard %ld) and cannot be "
                "raised (%s): run as root, raise `ulimit -Hn`, or use fewer devices\n",
                o.count, need, (long)rl.rlim_cur, (long)rl.rlim_max, strerror(errno));
        exit(3);
    }
}

int main(int argc, char **argv)
{
    long started = 0;
    uint32_t t0, t_last_start = 0, t_end = 0, t_drain = 0, t_logout = 0, t_tick, all_online_t = 0;
    long online_end = 0;
    int phase = 0; /* 0 running, 1 draining, 2 logging out, 3 done */
    int rc = 0;
    struct epoll_event *evs;
    int maxev;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG() (i++, v ? v : (usage(), ""))
        if (!strcmp(a, "--count")) o.count = num(ARG(), 1, 1000000);
        else if (!strcmp(a, "--jid")) o.jid_fmt = ARG();
        else if (!strcmp(a, "--password")) o.password = ARG();
        else if (!strcmp(a, "--host")) {
            /* a comma list: every device gets all endpoints, in order */
            char *h = strdup(ARG()), *save = NULL;
            o.host = h;
            for (char *t = strtok_r(h, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (o.nhosts == MAX_HOSTS) {
                    fprintf(stderr, "kinglet-fleet: at most %d hosts in --host\n", MAX_HOSTS);
                    return 2;
                }
                o.hosts[o.nhosts++] = t;
            }
        }
        else if (!strcmp(a, "--port")) o.port = (int)num(ARG(), 1, 65535);
        else if (!strcmp(a, "--cafile")) o.cafile = ARG();
        else if (!strcmp(a, "--tls")) o.tls = ARG();
        else if (!strcmp(a, "--duration")) o.duration = num(ARG(), 0, 86400 * 365);
        else if (!strcmp(a, "--rate")) o.rate = num(ARG(), 1, 60000);
        else if (!strcmp(a, "--no-jitter")) o.no_jitter = 1;
        else if (!strcmp(a, "--stats")) o.stats = 1;
        else if (!strcmp(a, "--first")) o.first = num(ARG(), 0, 1000000000);
        else if (!strcmp(a, "--presence")) o.presence = 1;
        else if (!strcmp(a, "--no-presence")) o.presence = 0;
        else if (!strcmp(a, "--reading")) o.reading = num(ARG(), 1, 86400);
        else if (!strcmp(a, "--echo")) o.echo = 1;
        else if (!strcmp(a, "--no-plain")) o.no_plain = 1;
        else if (!strcmp(a, "--spread")) o.spread = 1;
        else if (!strcmp(a, "--timeout")) o.timeout_ms = num(ARG(), 1, 3600000);
        else if (!strcmp(a, "--after-online")) o.after_online = num(ARG(), 0, 86400);
        else if (!strcmp(a, "--server-pid")) server_pids(ARG());
        else if (!strcmp(a, "--after-back")) o.after_back = num(ARG(), 0, 86400);
        else if (!strcmp(a, "--srv")) o.srv = 1;
        else if (!strcmp(a, "--dns")) o.dns = ARG();
        else if (!strcmp(a, "--tls-binding")) {
            const char *b = ARG();
            if (strcmp(b, "port") && strcmp(b, "shared"))
                usage();
            port_binding = !strcmp(b, "port");
        }
        else if (!strcmp(a, "--backoff")) {
            o.backoff_min = num(ARG(), 1, 86400000);
            v = i + 1 < argc ? argv[i + 1] : NULL;
            o.backoff_max = num(ARG(), o.backoff_min, 86400000);
        } else usage();
#undef ARG
    }
    if (!o.count || !o.jid_fmt || !o.password)
        usage();
    if (!jid_fmt_ok(o.jid_fmt) || !strchr(o.jid_fmt, '@')) {
        fprintf(stderr, "kinglet-fleet: --jid wants one %%d and a domain, e.g. 'dev%%d@example.org'\n");
        return 2;
    }
    if (strcmp(o.tls, "starttls") && strcmp(o.tls, "direct"))
        usage();
    if (o.srv && o.host) {
        fprintf(stderr, "kinglet-fleet: --srv and --host exclude each other\n");
        return 2;
    }
    if (o.port == 0)
        o.port = !strcmp(o.tls, "direct") ? 5223 : 5222;
    tty = isatty(2);

    raise_nofile(o.count * KL_SESSION_SLOTS + 64);
    mbedtls_platform_set_calloc_free(count_calloc, count_free);
    tls_size = port_binding ? sizeof(port_tls_t) : sizeof(kl_fleet_tls_t);
    if ((devs = calloc((size_t)o.count, sizeof *devs)) == NULL ||
        (dacc = calloc((size_t)o.count, sizeof *dacc)) == NULL) {
        fprintf(stderr, "kinglet-fleet: cannot allocate %ld devices (%zu bytes each)\n", o.count, sizeof *devs);
        return 3;
    }
    for (long i = 0; i < o.count; i++) {
        fdev_t *d = &devs[i];
        char *sl;
        int n = snprintf(d->jid, sizeof d->jid, o.jid_fmt, (int)(o.first + i));
        if (n < 0 || (size_t)n >= sizeof d->jid) {
            fprintf(stderr, "kinglet-fleet: the JID is too long\n");
            return 2;
        }
        memcpy(d->bare, d->jid, sizeof d->bare);
        if ((sl = strchr(d->bare, '/')) != NULL)
            *sl = '\0';
        d->reg_fd[0] = d->reg_fd[1] = -1;
        if ((d->tls = calloc(1, tls_size)) == NULL) {
            fprintf(stderr, "kinglet-fleet: out of memory\n");
            return 3;
        }
    }
    fleet_net_ops = kl_posix_net_ops;
    fleet_net_ops.open = f_open;
    fleet_net_ops.close = f_close;
    fleet_net_ops.abort = f_abort;
    memset(&tls_base, 0, sizeof tls_base);
    tls_base.ca_file = o.cafile;
    if (o.cafile == NULL) {
        fprintf(stderr, "kinglet-fleet: --cafile is required (the certificate is always verified)\n");
        return 2;
    }
    if (o.srv) {
        const char *dom = strchr(devs[0].bare, '@') + 1;
        ncand = kl_posix_srv_candidates(dom, o.dns, !strcmp(o.tls, "direct"), 3000, cand, KL_POSIX_MAX_CANDIDATES);
        if (ncand < 0) {
            fprintf(stderr, "kinglet-fleet: SRV lookup for %s: %s\n", dom, kl_strerror(ncand));
            return 3;
        }
    }
    if (!port_binding && kl_fleet_tls_shared_init(&tls_shared, o.cafile) != 0)
        return 3;
    if (kl_crypto_mbedtls_init(&crypto) != 0) {
        fprintf(stderr, "kinglet-fleet: cannot seed the SCRAM hooks' DRBG\n");
        return 3;
    }
    if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        perror("kinglet-fleet: epoll_create1");
        return 3;
    }
    maxev = o.count < 1024 ? (int)o.count * 2 : 2048;
    if ((evs = calloc((size_t)maxev, sizeof *evs)) == NULL)
        return 3;

    {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1; /* no SA_RESTART: epoll_wait returns EINTR */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
    }
    heap_shared = heap_cur;
    t0 = kl_posix_now_ms();
    t_tick = t0 + 1000;
    cpu_t0 = self_cpu_ms();
    (void)server_sample(1);
    for (;;) {
        uint32_t now = kl_posix_now_ms(), wake;
        int n, timeout;

        if (got_mark && !T.marked) {
            /* SIGUSR1: "t0" — attempts, link losses, comebacks counted from here */
            T.marked = 1;
            T.mark_t = now;
            for (long i = 0; i < started; i++)
                if (devs[i].state == D_RUN && !devs[i].online)
                    dacc[i].down_after_mark = 1; /* already down: its comeback counts */
            fprintf(stderr, "%skinglet-fleet: mark\n", tty ? "\n" : "");
        }

        /* start devices: at most --rate in any one second */
        while (phase == 0 && started < o.count) {
            int st;
            if (o.rate > 0) {
                win_advance(&starts_win, now);
                if (starts_win.total >= (unsigned)o.rate)
                    break;
                win_add(&starts_win, now, 1);
            }
            if ((st = dev_start(&devs[started], now)) != KL_OK) {
                fprintf(stderr, "kinglet-fleet: %s: cannot start: %s\n", devs[started].jid, kl_strerror(st));
                return 3;
            }
            dev_run(&devs[started], now, 1);
            sync_fds(&devs[started], started);
            started++;
            if (started == o.count) {
                t_last_start = now;
                t_end = now + (uint32_t)o.duration * 1000u;
            }
        }

        /* --after-back: the mark came, links were lost and every device is online again */
        if (phase == 0 && o.after_back >= 0 && T.marked && started == o.count) {
            long on = 0, down = 0;
            for (long i = 0; i < o.count; i++) {
                on += devs[i].online && (!dacc[i].down_after_mark || dacc[i].back_after_mark);
                down += dacc[i].down_after_mark;
            }
            if (on == o.count && down > 0 && (int32_t)(t_end - (now + (uint32_t)o.after_back * 1000u)) > 0)
                t_end = now + (uint32_t)o.after_back * 1000u;
        }

        /* phases */
        if (phase == 0 && started == o.count && (int32_t)(now - t_end) >= 0) {
            phase = 1;
            t_drain = now + 5000;
        }
        if (phase == 1 && (o.reading == 0 || all_readings_back() || (int32_t)(now - t_drain) >= 0)) {
            phase = 2;
            t_logout = now + 15000;
            heap_online = heap_cur;
            for (long i = 0; i < o.count; i++) {
                fdev_t *d = &devs[i];
                if (d->online)
                    online_end++;
                if (d->state != D_RUN)
                    continue;
                d->online_at_logout = d->online;
                (void)kl_session_close(&d->s);
                d->due = now;
            }
        }
        if (phase == 2) {
            long left = 0;
            for (long i = 0; i < o.count; i++)
                left += devs[i].state == D_RUN;
            if (left == 0 || (int32_t)(now - t_logout) >= 0) {
                for (long i = 0; i < o.count; i++)
                    if (devs[i].state == D_RUN && devs[i].online_at_logout) {
                        T.close_timeouts++;
                        if (nfail_printed++ < 10)
                            fprintf(stderr, "kinglet-fleet: %s: the logout did not finish\n", devs[i].jid);
                    }
                break;
            }
        }
        if (!all_online_t && started == o.count) {
            long on = 0;
            for (long i = 0; i < o.count; i++)
                on += devs[i].ever_online || devs[i].state == D_FAILED;
            if (on == o.count) {
                all_online_t = now;
                if (o.after_online >= 0 && (int32_t)(t_end - (now + (uint32_t)o.after_online * 1000u)) > 0)
                    t_end = now + (uint32_t)o.after_online * 1000u;
                storm_cpu = self_cpu_ms() - cpu_t0;
                storm_server_cpu = server_sample(0);
                storm_logins = (long)T.logins;
                storm_attempts = T.attempts;
            }
        }

        /* how long to sleep: the earliest timer, the next start, the tick */
        wake = t_tick;
        for (long i = 0; i < started; i++)
            if (devs[i].state == D_RUN && (int32_t)(devs[i].due - wake) < 0)
                wake = devs[i].due;
        if (phase == 0 && started < o.count && o.rate > 0 && (int32_t)(now + 1 - wake) < 0)
            wake = now + 1;
        timeout = (int32_t)(wake - now) > 0 ? (int)(wake - now) : 0;
        n = epoll_wait(epfd, evs, maxev, timeout);
        if (n < 0 && errno != EINTR) {
            perror("kinglet-fleet: epoll_wait");
            return 3;
        }
        now = kl_posix_now_ms();
        for (int k = 0; k < n; k++) {
            long idx = (long)evs[k].data.u64;
            if (idx >= 0 && idx < started)
                devs[idx].in_run = 1;
        }
        for (long i = 0; i < started; i++) {
            fdev_t *d = &devs[i];
            if (d->state != D_RUN || (!d->in_run && (int32_t)(now - d->due) < 0)) {
                d->in_run = 0;
                continue;
            }
            d->in_run = 0;
            dev_run(d, now, phase == 0);
            sync_fds(d, i);
        }
        if ((int32_t)(now - t_tick) >= 0) {
            progress(started, 0);
            (void)server_sample(0);
            t_tick += 1000;
            if ((int32_t)(now - t_tick) >= 0)
                t_tick = now + 1000;
        }
    }
    progress(started, 1);
    (void)t_last_start;
    for (long i = 0; i < o.count; i++)
        kl_session_shutdown(&devs[i].s);
    if (T.failed || T.close_timeouts)
        rc = 1;
    if (o.stats) {
        print_stats(online_end, t0, all_online_t);
        print_stats_more();
    }
    return rc;
}
