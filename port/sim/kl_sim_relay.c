/* kinglet — the simulator's forward: slirp's connection (stdin/stdout) to
 * the host's 127.0.0.1:port. Loopback only, by construction. Prints
 * nothing: its stderr is the connection too. */
#define _POSIX_C_SOURCE 200809L
#include "kl_sim_link.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int kl_sim_relay_main(uint16_t port)
{
    struct sockaddr_in sa;
    struct pollfd p[2];
    uint8_t buf[16384];
    int s, one = 1, in_open = 1, out_open = 1;

    s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return 1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0)
        return 1; /* the device sees its connection closed */
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    /* in: device -> server (fd 0 -> s); out: server -> device (s -> fd 1). */
    while (in_open || out_open) {
        int n = 0;
        if (in_open)
            p[n++] = (struct pollfd){0, POLLIN, 0};
        if (out_open)
            p[n++] = (struct pollfd){s, POLLIN, 0};
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++) {
            int from = p[i].fd, to = from == 0 ? s : 1;
            ssize_t r, w, off = 0;
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            r = read(from, buf, sizeof buf);
            if (r < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (r <= 0) {
                shutdown(to, SHUT_WR);
                if (from == 0)
                    in_open = 0;
                else
                    out_open = 0;
                continue;
            }
            while (off < r) {
                w = write(to, buf + off, (size_t)(r - off));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    return 1;
                off += w;
            }
        }
    }
    close(s);
    return 0;
}
