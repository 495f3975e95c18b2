/* kinglet — the POSIX port built with -DKL_POSIX_PORTABLE=1 (every fallback
 * of port/posix/kl_posix_compat.h taken even on Linux), exercised against a
 * local TCP echo server (tests/integration/posix_portable_test.sh):
 *   posix_portable_probe ECHO_PORT DEAD_PORT
 * random bytes through getentropy() in chunks, a non-blocking close-on-exec
 * socket made with fcntl(), a corked flight without MSG_MORE echoed back, a
 * write after the peer closed ending in KL_ERR_CONN_CLOSED with SIGPIPE
 * ignored (the application's part where neither MSG_NOSIGNAL nor
 * SO_NOSIGPIPE exists), the UDP resolver's socket (a silent resolver is a
 * timeout, not an I/O error). Prints PASS/FAIL lines; exit 1 on a failure. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kl_posix_dns.h"
#include "kl_posix_net.h"

static int fails;
static void check(int cond, const char *what)
{
    printf("%s %s\n", cond ? "PASS" : "FAIL", what);
    if (!cond)
        fails++;
}

static int wait_fd(int fd, short ev, int ms)
{
    struct pollfd p = {fd, ev, 0};
    return poll(&p, 1, ms);
}

int main(int argc, char **argv)
{
    static kl_posix_net_t n;
    const kl_net_ops_t *ops = &kl_posix_net_ops;
    uint8_t a[1000], b[1000];
    char got[64];
    size_t have = 0;
    int r = 0, fd;

    if (argc != 3) {
        fprintf(stderr, "usage: %s ECHO_PORT DEAD_PORT\n", argv[0]);
        return 2;
    }
    uint16_t port = (uint16_t)atoi(argv[1]), dead = (uint16_t)atoi(argv[2]);
    signal(SIGPIPE, SIG_IGN);

    /* getentropy() allows 256 bytes a call: 1000 takes four */
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    check(kl_posix_random(NULL, a, sizeof a) == 0 && kl_posix_random(NULL, b, sizeof b) == 0,
          "random: 1000 bytes twice");
    int zeros = 0;
    for (int i = 768; i < 1000; i++)
        zeros += a[i] == 0;
    check(memcmp(a, b, sizeof a) != 0 && zeros < 32, "random: filled past the 256-byte chunks, two draws differ");

    kl_posix_net_init(&n);
    check(ops->open(&n, 0, "127.0.0.1", port) == KL_OK, "open 127.0.0.1 echo port");
    fd = n.fd[0];
    check(fd >= 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0, "socket non-blocking (fcntl O_NONBLOCK)");
    check(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "socket close-on-exec (fcntl FD_CLOEXEC)");
    for (int i = 0; i < 200 && (r = ops->poll_open(&n, 0)) == 0; i++)
        wait_fd(fd, POLLOUT, 10);
    check(r == 1, "connected (poll_open)");

    /* a corked flight: without MSG_MORE, sent at once and still whole */
    ops->cork(&n, 0, 1);
    int s1 = ops->send(&n, 0, (const uint8_t *)"hello ", 6);
    ops->cork(&n, 0, 0);
    int s2 = ops->send(&n, 0, (const uint8_t *)"world\n", 6);
    check(s1 == 6 && s2 == 6, "corked send, then uncorked send");
    for (int i = 0; i < 200 && have < 12; i++) {
        r = ops->recv(&n, 0, (uint8_t *)got + have, sizeof got - 1 - have);
        if (r < 0)
            break;
        if (r == 0)
            wait_fd(fd, POLLIN, 10);
        have += (size_t)r;
    }
    got[have] = 0;
    check(have == 12 && strcmp(got, "hello world\n") == 0, "echo came back whole");
    r = ops->recv(&n, 0, (uint8_t *)got, sizeof got);
    check(r == 0, "recv with nothing queued returns 0 (does not block)");

    /* the peer closes; writes end in KL_ERR_CONN_CLOSED, not a signal */
    check(ops->send(&n, 0, (const uint8_t *)"bye\n", 4) == 4, "send bye");
    for (int i = 0; i < 200; i++) {
        r = ops->recv(&n, 0, (uint8_t *)got, sizeof got);
        if (r != 0)
            break;
        wait_fd(fd, POLLIN, 10);
    }
    check(r == KL_ERR_CONN_CLOSED, "peer close seen by recv (KL_ERR_CONN_CLOSED)");
    static uint8_t chunk[4096];
    for (int i = 0; i < 200; i++) {
        r = ops->send(&n, 0, chunk, sizeof chunk);
        if (r < 0)
            break;
        wait_fd(fd, POLLIN, 5);
    }
    check(r == KL_ERR_CONN_CLOSED, "write after the peer closed: KL_ERR_CONN_CLOSED, process alive");
    ops->close(&n, 0);

    /* nothing listening: refused at open or at poll_open */
    r = ops->open(&n, 1, "127.0.0.1", dead);
    for (int i = 0; r == KL_OK && i < 200; i++) {
        int p = ops->poll_open(&n, 1);
        if (p != 0) {
            r = p == 1 ? KL_OK : p;
            break;
        }
        wait_fd(n.fd[1], POLLOUT, 10);
    }
    check(r == KL_ERR_CONNECT, "nothing listening: KL_ERR_CONNECT");
    ops->close(&n, 1);

    /* the resolver's UDP socket (close-on-exec by fcntl) to a silent port */
    char spec[32];
    kl_dns_srv_result_t res;
    snprintf(spec, sizeof spec, "127.0.0.1:%u", (unsigned)dead);
    r = kl_posix_resolve_srv("example.test", spec, 0, 300, &res);
    check(r == KL_ERR_TIMEOUT, "resolver socket: a silent resolver is a timeout");

    printf("probe: %d failed\n", fails);
    return fails ? 1 : 0;
}
