/* kinglet — TLS port test client (tests/integration/tls_test.sh).
 *
 * Connects to 127.0.0.1:PORT over a non-blocking BSD socket wrapped as a
 * kl_transport_t, runs the kl_tls handshake, optionally sends a line and
 * reads the answer, and prints one line of key=value results:
 *   status=KL_OK version=TLSv1.3 round_trips=1 tickets=2 bytes_in=… bytes_out=… reply="…"
 *   status=KL_ERR_TLS_CERT code=-65 reason="certificate not trusted (…)"
 * Exit: 0 if the handshake (and the exchange, if any) succeeded, 1 if not,
 * 2 on bad usage.
 *
 * usage: tls_client PORT SERVER_NAME CA_FILE [--tls13-only] [--send TEXT]
 *                   [--expect-bytes N] [--timeout-ms MS]
 *        tls_client --in-content-len   (prints MBEDTLS_SSL_IN_CONTENT_LEN)
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

/* ---- a BSD socket as a kl_transport_t ----------------------------------- */

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
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { /* blocking: loopback */
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Waits until the socket is readable or the step times out; the port
 * returns 0 for both want-read and want-write, so a short poll also
 * retries a blocked write. */
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
    default: return "KL_ERR_OTHER";
    }
}

static int report(kl_tls_t *tls, int st)
{
    char why[256];
    printf("status=%s code=%d reason=\"%s\" version=%s round_trips=%u\n", status_name(st), st,
           kl_tls_error_text(tls, why, sizeof why), kl_tls_version(tls), tls->round_trips);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--in-content-len") == 0) {
        printf("%d\n", MBEDTLS_SSL_IN_CONTENT_LEN);
        return 0;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT SERVER_NAME CA_FILE [--tls13-only] [--send TEXT] "
                        "[--expect-bytes N] [--timeout-ms MS]\n", argv[0]);
        return 2;
    }
    kl_tls_config_t cfg = {0};
    int port = atoi(argv[1]);
    cfg.server_name = argv[2];
    cfg.ca_file = argv[3];
    const char *send_text = NULL;
    size_t expect = 0;
    long timeout_ms = 10000;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--tls13-only") == 0)
            cfg.tls13_only = 1;
        else if (strcmp(argv[i], "--send") == 0 && i + 1 < argc)
            send_text = argv[++i];
        else if (strcmp(argv[i], "--expect-bytes") == 0 && i + 1 < argc)
            expect = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc)
            timeout_ms = atol(argv[++i]);
        else {
            fprintf(stderr, "tls_client: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (send_text != NULL && expect == 0)
        expect = strlen(send_text);

    static kl_tls_t tls; /* large (mbedTLS contexts): not on the stack */
    int fd = connect_loopback(port);
    if (fd < 0) {
        printf("status=KL_ERR_CONNECT code=%d reason=\"connect to 127.0.0.1:%d: %s\"\n",
               KL_ERR_CONNECT, port, strerror(errno));
        return 1;
    }
    sock_t sock = {.fd = fd};
    kl_transport_t lower = {.ctx = &sock, .send = sock_send, .recv = sock_recv};

    int st = kl_tls_setup(&tls, &cfg, &lower);
    if (st != KL_OK) {
        report(&tls, st);
        kl_tls_free(&tls);
        close(fd);
        return 1;
    }

    long deadline = now_ms() + timeout_ms;
    int h;
    while ((h = kl_tls_handshake(&tls)) == 0) {
        if (wait_io(fd, deadline) != 0) {
            h = KL_ERR_TIMEOUT;
            break;
        }
    }
    if (h < 0) {
        report(&tls, h);
        kl_tls_free(&tls);
        close(fd);
        return 1;
    }

    kl_transport_t *t = kl_tls_transport(&tls);
    char reply[4096];
    size_t got = 0;
    int rc = 0;
    if (send_text != NULL) {
        size_t len = strlen(send_text), off = 0;
        while (off < len) {
            int n = t->send(t->ctx, (const uint8_t *)send_text + off, len - off);
            if (n < 0) {
                report(&tls, n);
                rc = 1;
                goto out;
            }
            if (n == 0 && wait_io(fd, deadline) != 0) {
                report(&tls, KL_ERR_TIMEOUT);
                rc = 1;
                goto out;
            }
            off += (size_t)n;
        }
        if (expect > sizeof reply - 1)
            expect = sizeof reply - 1;
        while (got < expect) {
            int n = t->recv(t->ctx, (uint8_t *)reply + got, sizeof reply - 1 - got);
            if (n < 0) {
                report(&tls, n);
                rc = 1;
                goto out;
            }
            if (n == 0 && wait_io(fd, deadline) != 0) {
                report(&tls, KL_ERR_TIMEOUT);
                rc = 1;
                goto out;
            }
            got += (size_t)n;
        }
    }
    reply[got] = '\0';
    /* One line: escape the reply's control characters. */
    printf("status=KL_OK code=0 version=%s round_trips=%u tickets=%u bytes_in=%lu bytes_out=%lu reply=\"",
           kl_tls_version(&tls), tls.round_trips, tls.tickets_received, tls.bytes_in, tls.bytes_out);
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
out:
    kl_tls_close(&tls);
    kl_tls_free(&tls);
    close(fd);
    return rc;
}
