/* kinglet — TLS session resumption test client (tls_resume_test.sh).
 *
 * Like tls_client.c (127.0.0.1:PORT, a non-blocking BSD socket as the
 * kl_transport_t under kl_tls), plus the session blob: loads one from a file
 * into kl_tls_config_t.session, saves the newest one the server gives, and
 * reports whether the handshake resumed. One result line:
 *   status=KL_OK version=TLSv1.3 round_trips=1 resumed=1 offered=1 cert=0
 *   note="" tickets=1 saved=262 bytes_in=… bytes_out=… hs_us=… hs_cpu_us=…
 *   retried=0 reply="…"
 * Exit: 0 if the handshake (and the exchange, if any) succeeded, 1 if not,
 * 2 on bad usage.
 *
 * usage: tls_resume_client PORT SERVER_NAME CA_FILE [options]
 *   --tls13-only
 *   --session-in FILE     offer this blob (kl_tls_session_save format)
 *   --session-out FILE    save the newest session here (if any)
 *   --wait-ticket         after the exchange, read on until a session can be
 *                         saved (TLS 1.3 tickets come after the handshake)
 *   --corrupt MODE        damage the --session-in blob first: flip (one byte
 *                         in the middle), garbage (random bytes), truncate
 *                         (first half), inner (mbedTLS part random after its
 *                         8-byte header, checksum recomputed), ticket (a
 *                         byte of the ticket flipped, checksum recomputed)
 *   --raw-session FILE    bypass kl_tls's checks: hand the mbedTLS part of the
 *                         blob straight to mbedtls_ssl_set_session (to show
 *                         what mbedTLS itself does with another server name)
 *   --retry-without-session  if the handshake fails with a session offered,
 *                         reconnect once without it (what an application does)
 *   --send TEXT, --expect-bytes N, --until TEXT (read until the reply
 *                         contains TEXT), --timeout-ms MS
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "kl_tls.h"
#include "mbedtls/sha256.h"

typedef struct {
    int fd;
} sock_t;

static int sock_send(void *ctx, const uint8_t *buf, size_t len)
{
    sock_t *s = ctx;
    ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    return errno == EPIPE || errno == ECONNRESET ? KL_ERR_CONN_CLOSED : KL_ERR_IO;
}

static int sock_recv(void *ctx, uint8_t *buf, size_t len)
{
    sock_t *s = ctx;
    ssize_t n = recv(s->fd, buf, len, 0);
    if (n > 0)
        return (int)n;
    if (n == 0)
        return KL_ERR_CONN_CLOSED;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    return errno == ECONNRESET ? KL_ERR_CONN_CLOSED : KL_ERR_IO;
}

static int connect_loopback(int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static long long now_us(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static long now_ms(void)
{
    return (long)(now_us(CLOCK_MONOTONIC) / 1000);
}

static int wait_io(int fd, long deadline)
{
    long left = deadline - now_ms();
    if (left <= 0)
        return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(&p, 1, left < 50 ? (int)left : 50);
    return 0;
}

static const char *status_name(int st)
{
    switch (st) {
    case KL_OK: return "KL_OK";
    case KL_ERR_ARG: return "KL_ERR_ARG";
    case KL_ERR_IO: return "KL_ERR_IO";
    case KL_ERR_CONN_CLOSED: return "KL_ERR_CONN_CLOSED";
    case KL_ERR_TIMEOUT: return "KL_ERR_TIMEOUT";
    case KL_ERR_CONNECT: return "KL_ERR_CONNECT";
    case KL_ERR_TLS: return "KL_ERR_TLS";
    case KL_ERR_TLS_CERT: return "KL_ERR_TLS_CERT";
    case KL_ERR_TLS_RECORD_TOO_LARGE: return "KL_ERR_TLS_RECORD_TOO_LARGE";
    case KL_ERR_TLS_SETUP: return "KL_ERR_TLS_SETUP";
    case KL_ERR_TOO_LARGE: return "KL_ERR_TOO_LARGE";
    case KL_ERR_STATE: return "KL_ERR_STATE";
    default: return "KL_ERR_OTHER";
    }
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "tls_resume_client: cannot read %s: %s\n", path, strerror(errno));
        exit(2);
    }
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void reseal(uint8_t *b, size_t n)
{
    uint8_t d[32];
    mbedtls_sha256(b, n - KL_TLS_SESSION_DIGEST, d, 0);
    memcpy(b + n - KL_TLS_SESSION_DIGEST, d, KL_TLS_SESSION_DIGEST);
}

static void fill_random(uint8_t *p, size_t n)
{
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL || fread(p, 1, n, f) != n) {
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)(i * 131 + 7);
    }
    if (f != NULL)
        fclose(f);
}

static size_t corrupt(const char *mode, uint8_t *b, size_t n)
{
    size_t inner = n >= KL_TLS_SESSION_HDR ? KL_TLS_SESSION_HDR + b[7] : 0;
    size_t inner_end = n >= KL_TLS_SESSION_DIGEST ? n - KL_TLS_SESSION_DIGEST : 0;
    if (strcmp(mode, "flip") == 0) {
        b[n / 2] ^= 0x01;
    } else if (strcmp(mode, "garbage") == 0) {
        fill_random(b, n);
    } else if (strcmp(mode, "truncate") == 0) {
        n /= 2;
    } else if (strcmp(mode, "inner") == 0 && inner + 8 < inner_end) {
        fill_random(b + inner + 8, inner_end - inner - 8);
        reseal(b, n);
    } else if (strcmp(mode, "ticket") == 0 && inner < inner_end) {
        /* Find the ticket inside mbedTLS's serialisation and flip a byte
         * in its middle: the server cannot decrypt it any more. */
        mbedtls_ssl_session s;
        mbedtls_ssl_session_init(&s);
        uint8_t *at = NULL;
        if (mbedtls_ssl_session_load(&s, b + inner, inner_end - inner) == 0 &&
            s.MBEDTLS_PRIVATE(ticket_len) > 0) {
            const uint8_t *t = s.MBEDTLS_PRIVATE(ticket);
            size_t tl = s.MBEDTLS_PRIVATE(ticket_len);
            for (size_t i = inner; i + tl <= inner_end && at == NULL; i++)
                if (memcmp(b + i, t, tl) == 0)
                    at = b + i + tl / 2;
        }
        mbedtls_ssl_session_free(&s);
        if (at == NULL) {
            fprintf(stderr, "tls_resume_client: no ticket in the blob\n");
            exit(2);
        }
        *at ^= 0x01;
        reseal(b, n);
    } else {
        fprintf(stderr, "tls_resume_client: bad --corrupt mode %s\n", mode);
        exit(2);
    }
    return n;
}

static struct {
    int port;
    kl_tls_config_t cfg;
    const char *raw_session;
    const char *send_text;
    const char *until;
    size_t expect;
    long timeout_ms;
    int wait_ticket;
} opt;

static kl_tls_t tls; /* large (mbedTLS contexts): not on the stack */
static char reply[16384];
static size_t got;
static long long hs_us, hs_cpu_us;
static unsigned long hs_in, hs_out; /* ciphertext bytes of the handshake */

static int raw_offer(const char *path)
{
    static uint8_t b[KL_TLS_SESSION_MAX];
    size_t n = read_file(path, b, sizeof b);
    if (n < KL_TLS_SESSION_HDR + KL_TLS_SESSION_DIGEST)
        return -1;
    size_t nl = b[7], ml = (size_t)b[16] << 8 | b[17];
    mbedtls_ssl_session s;
    mbedtls_ssl_session_init(&s);
    int ret = mbedtls_ssl_session_load(&s, b + KL_TLS_SESSION_HDR + nl, ml);
    if (ret == 0)
        ret = mbedtls_ssl_set_session(&tls.ssl, &s);
    mbedtls_ssl_session_free(&s);
    if (ret == 0)
        tls.session_offered = 1; /* for the report only */
    return ret;
}

/* One connection. Returns a kl_status_t; the session stays in `tls`. */
static int run_once(int *fd_out)
{
    got = 0;
    int fd = connect_loopback(opt.port);
    if (fd < 0)
        return KL_ERR_CONNECT;
    *fd_out = fd;
    static sock_t sock;
    static kl_transport_t lower;
    sock.fd = fd;
    lower = (kl_transport_t){.ctx = &sock, .send = sock_send, .recv = sock_recv};

    int st = kl_tls_setup(&tls, &opt.cfg, &lower);
    if (st != KL_OK)
        return st;
    if (opt.raw_session != NULL && raw_offer(opt.raw_session) != 0) {
        fprintf(stderr, "tls_resume_client: mbedTLS refused the raw session\n");
        return KL_ERR_ARG;
    }

    long deadline = now_ms() + opt.timeout_ms;
    long long t0 = now_us(CLOCK_MONOTONIC), c0 = now_us(CLOCK_PROCESS_CPUTIME_ID);
    int h;
    while ((h = kl_tls_handshake(&tls)) == 0) {
        if (wait_io(fd, deadline) != 0)
            return KL_ERR_TIMEOUT;
    }
    hs_us = now_us(CLOCK_MONOTONIC) - t0;
    hs_cpu_us = now_us(CLOCK_PROCESS_CPUTIME_ID) - c0;
    hs_in = tls.bytes_in;
    hs_out = tls.bytes_out;
    if (h < 0)
        return h;

    kl_transport_t *t = kl_tls_transport(&tls);
    if (opt.send_text != NULL) {
        size_t len = strlen(opt.send_text), off = 0;
        while (off < len) {
            int n = t->send(t->ctx, (const uint8_t *)opt.send_text + off, len - off);
            if (n < 0)
                return n;
            if (n == 0 && wait_io(fd, deadline) != 0)
                return KL_ERR_TIMEOUT;
            off += (size_t)n;
        }
    }
    size_t expect = opt.expect < sizeof reply - 1 ? opt.expect : sizeof reply - 1;
    for (;;) {
        reply[got] = '\0';
        int need = got < expect || (opt.until != NULL && strstr(reply, opt.until) == NULL) ||
                   (opt.wait_ticket && !tls.new_session_available);
        if (!need || got >= sizeof reply - 1)
            break;
        int n = t->recv(t->ctx, (uint8_t *)reply + got, sizeof reply - 1 - got);
        if (n < 0)
            return n;
        if (n == 0 && wait_io(fd, deadline) != 0)
            return KL_ERR_TIMEOUT;
        got += (size_t)n;
    }
    return KL_OK;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT SERVER_NAME CA_FILE [options] (see the source)\n", argv[0]);
        return 2;
    }
    opt.port = atoi(argv[1]);
    opt.cfg.server_name = argv[2];
    opt.cfg.ca_file = argv[3];
    opt.timeout_ms = 10000;
    const char *session_in = NULL, *session_out = NULL, *corrupt_mode = NULL;
    int retry = 0;
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--tls13-only") == 0)
            opt.cfg.tls13_only = 1;
        else if (strcmp(a, "--wait-ticket") == 0)
            opt.wait_ticket = 1;
        else if (strcmp(a, "--retry-without-session") == 0)
            retry = 1;
        else if (v == NULL)
            goto usage;
        else if (strcmp(a, "--session-in") == 0)
            session_in = v, i++;
        else if (strcmp(a, "--session-out") == 0)
            session_out = v, i++;
        else if (strcmp(a, "--corrupt") == 0)
            corrupt_mode = v, i++;
        else if (strcmp(a, "--raw-session") == 0)
            opt.raw_session = v, i++;
        else if (strcmp(a, "--send") == 0)
            opt.send_text = v, i++;
        else if (strcmp(a, "--until") == 0)
            opt.until = v, i++;
        else if (strcmp(a, "--expect-bytes") == 0)
            opt.expect = (size_t)atol(v), i++;
        else if (strcmp(a, "--timeout-ms") == 0)
            opt.timeout_ms = atol(v), i++;
        else
            goto usage;
    }
    if (opt.send_text != NULL && opt.expect == 0 && opt.until == NULL)
        opt.expect = strlen(opt.send_text);

    static uint8_t blob[KL_TLS_SESSION_MAX + 64];
    if (session_in != NULL) {
        size_t n = read_file(session_in, blob, sizeof blob);
        if (corrupt_mode != NULL)
            n = corrupt(corrupt_mode, blob, n);
        opt.cfg.session = blob;
        opt.cfg.session_len = n;
    }

    int fd = -1, retried = 0;
    int st = run_once(&fd);
    if (st != KL_OK && retry && tls.session_offered) {
        kl_tls_free(&tls);
        if (fd >= 0)
            close(fd);
        fd = -1;
        opt.cfg.session = NULL;
        opt.cfg.session_len = 0;
        retried = 1;
        st = run_once(&fd);
    }

    char why[256];
    if (st != KL_OK) {
        printf("status=%s code=%d reason=\"%s\" version=%s round_trips=%u offered=%d note=\"%s\" retried=%d\n",
               status_name(st), st, kl_tls_error_text(&tls, why, sizeof why), kl_tls_version(&tls),
               tls.round_trips, tls.session_offered, tls.session_note ? tls.session_note : "",
               retried);
        kl_tls_free(&tls);
        if (fd >= 0)
            close(fd);
        return 1;
    }

    size_t saved = 0;
    int save_st = KL_ERR_STATE;
    if (session_out != NULL) {
        static uint8_t out[KL_TLS_SESSION_MAX];
        save_st = kl_tls_session_save(&tls, out, sizeof out, &saved);
        if (save_st == KL_OK) {
            FILE *f = fopen(session_out, "wb");
            if (f == NULL || fwrite(out, 1, saved, f) != saved) {
                fprintf(stderr, "tls_resume_client: cannot write %s\n", session_out);
                return 2;
            }
            fclose(f);
        }
    }
    printf("status=KL_OK code=0 version=%s round_trips=%u resumed=%d offered=%d cert=%d note=\"%s\" "
           "tickets=%u saved=%zu save_status=%s hs_in=%lu hs_out=%lu bytes_in=%lu bytes_out=%lu "
           "hs_us=%lld hs_cpu_us=%lld "
           "retried=%d reply=\"",
           kl_tls_version(&tls), tls.round_trips, kl_tls_resumed(&tls), tls.session_offered,
           tls.cert_received, tls.session_note ? tls.session_note : "", tls.tickets_received, saved,
           status_name(save_st), hs_in, hs_out, tls.bytes_in, tls.bytes_out, hs_us, hs_cpu_us,
           retried);
    for (size_t i = 0; i < got; i++) {
        unsigned char c = (unsigned char)reply[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    printf("\"\n");
    kl_tls_close(&tls);
    kl_tls_free(&tls);
    close(fd);
    return 0;
usage:
    fprintf(stderr, "tls_resume_client: bad arguments (see the source)\n");
    return 2;
}
