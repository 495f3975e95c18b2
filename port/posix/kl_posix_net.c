/* kinglet — POSIX primitives for the connection manager. */
#include "kl_posix_compat.h" /* first: feature macros, the systems' differences */
#include "kl_posix_net.h"

int kl_posix_random(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    return kl_posix_entropy(out, len);
}

uint32_t kl_posix_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

void kl_posix_net_init(kl_posix_net_t *n)
{
    memset(n, 0, sizeof *n);
    for (int i = 0; i < KL_SESSION_SLOTS; i++)
        n->fd[i] = -1;
}

static void net_close(void *ctx, int slot)
{
    kl_posix_net_t *n = ctx;
    if (n->fd[slot] >= 0)
        close(n->fd[slot]);
    n->fd[slot] = -1;
    n->corked[slot] = 0;
}

static void net_abort(void *ctx, int slot)
{
    kl_posix_net_t *n = ctx;
    if (n->fd[slot] >= 0) {
        struct linger l = {1, 0}; /* RST: nothing lingers for a dead link */
        setsockopt(n->fd[slot], SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    net_close(ctx, slot);
}

static int net_open(void *ctx, int slot, const char *host, uint16_t port)
{
    kl_posix_net_t *n = ctx;
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[8];
    net_close(ctx, slot);
    n->err[slot] = 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res)
        return KL_ERR_DNS;
    for (ai = res; ai; ai = ai->ai_next) {
        int one = 1, fd = kl_posix_socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol, 1);
        if (fd < 0)
            continue;
        /* Flights are written whole: Nagle would hold a flight's second
         * write a round trip behind a delayed ACK. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            close(fd);
            continue;
        }
        n->fd[slot] = fd;
        break;
    }
    freeaddrinfo(res);
    return n->fd[slot] >= 0 ? KL_OK : KL_ERR_CONNECT;
}

static int net_poll_open(void *ctx, int slot)
{
    kl_posix_net_t *n = ctx;
    struct pollfd pfd = {n->fd[slot], POLLOUT, 0};
    int err = 0;
    socklen_t el = sizeof err;
    if (n->fd[slot] < 0)
        return KL_ERR_CONNECT;
    if (poll(&pfd, 1, 0) <= 0)
        return 0;
    if (getsockopt(n->fd[slot], SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0)
        return KL_ERR_CONNECT;
    return 1;
}

static int net_send(void *ctx, int slot, const uint8_t *buf, size_t len)
{
    kl_posix_net_t *n = ctx;
    /* MSG_MORE while corked: <starttls/> and the early ClientHello go in
     * one segment, so the server reads the flight at once (0 where the
     * system has no MSG_MORE: two segments). No SIGPIPE: MSG_NOSIGNAL, else
     * SO_NOSIGPIPE, else the application ignores it (kl_posix_compat.h). */
    ssize_t r = send(n->fd[slot], buf, len, KL_MSG_NOSIGNAL | (n->corked[slot] ? KL_MSG_MORE : 0));
    if (r >= 0)
        return (int)r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    return errno == EPIPE || errno == ECONNRESET ? KL_ERR_CONN_CLOSED : KL_ERR_IO;
}

static int net_recv(void *ctx, int slot, uint8_t *buf, size_t len)
{
    kl_posix_net_t *n = ctx;
    ssize_t r = recv(n->fd[slot], buf, len, 0);
    if (r > 0)
        return (int)r;
    if (r == 0)
        return KL_ERR_CONN_CLOSED;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    return errno == ECONNRESET ? KL_ERR_CONN_CLOSED : KL_ERR_IO;
}

static void net_cork(void *ctx, int slot, int on)
{
    kl_posix_net_t *n = ctx;
    n->corked[slot] = (uint8_t)(on != 0);
}

const kl_net_ops_t kl_posix_net_ops = {
    net_open, net_poll_open, net_send, net_recv, NULL /* sends go out at once */, net_cork, net_close,
    NULL /* poll() sees queued bytes */,
    net_abort,
};

void kl_posix_net_wait(kl_posix_net_t *n, const kl_session_t *s, uint32_t max_ms)
{
    struct pollfd pfd[KL_SESSION_SLOTS];
    int k = 0;
    uint32_t t = kl_session_next_timeout(s, kl_posix_now_ms());
    if (t > max_ms)
        t = max_ms;
    for (int i = 0; i < KL_SESSION_SLOTS; i++) {
        int w = kl_session_wants(s, i);
        if (w == 0 || n->fd[i] < 0)
            continue;
        pfd[k].fd = n->fd[i];
        pfd[k].events = (short)((w & KL_WANT_READ ? POLLIN : 0) | (w & KL_WANT_WRITE ? POLLOUT : 0));
        pfd[k].revents = 0;
        k++;
    }
    if (t == 0)
        return;
    (void)poll(pfd, (nfds_t)k, (int)(t > 0x7fffffffu ? 0x7fffffff : t));
}
