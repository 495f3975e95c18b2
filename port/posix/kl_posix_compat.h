/* kinglet — POSIX port: what differs between POSIX systems, in one place.
 * Private to the port's .c files, and included FIRST there (it sets the feature
 * macros before any system header is read).
 *
 * Linux has SOCK_NONBLOCK/SOCK_CLOEXEC, MSG_NOSIGNAL, MSG_MORE and
 * getrandom(); other POSIX systems have some of them or none:
 *
 *   SOCK_NONBLOCK, SOCK_CLOEXEC  absent (macOS): socket(), then fcntl()
 *                 O_NONBLOCK and FD_CLOEXEC (not atomic: a fork() by another
 *                 thread between the two calls inherits the descriptor).
 *   MSG_NOSIGNAL  absent (older macOS): SO_NOSIGPIPE on the socket where the
 *                 system defines it (macOS, the BSDs); where neither exists,
 *                 a write to a connection the peer closed raises SIGPIPE,
 *                 so the APPLICATION must ignore it (signal(SIGPIPE, SIG_IGN))
 *                 before starting a session.
 *   MSG_MORE      absent (macOS, the BSDs): 0. The only user is full
 *                 pipelining's cork around <starttls/> + the early
 *                 ClientHello; without it they may leave in two segments
 *                 (correct, one segment more). TCP_NOPUSH is not used: not
 *                 every system sends what it held when it is cleared.
 *   getrandom()   absent (macOS, older BSDs): getentropy() in chunks of 256.
 *
 * -DKL_POSIX_PORTABLE=1 takes every fallback even where the Linux facility
 * exists (what `make check-posix-portable` builds and runs on Linux).
 * -DKL_POSIX_PORTABLE_CHECK=1 (with it, GCC/Clang) also poisons the Linux
 * names after the system headers, so a .c file that still uses one directly
 * does not compile.
 */
#ifndef KINGLET_KL_POSIX_COMPAT_H
#define KINGLET_KL_POSIX_COMPAT_H

/* glibc and musl under -std=c11 show POSIX only when asked. macOS and the
 * BSDs show everything by default, and asking for POSIX there would hide
 * SO_NOSIGPIPE and SOCK_NONBLOCK, so nothing is asked there. */
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE 1
#elif defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || defined(__DragonFly__)
/* defaults */
#else
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1 /* getentropy, getrandom, struct linger on glibc */
#endif
#endif

#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__) || defined(__APPLE__) || defined(__sun)
#include <sys/random.h> /* getrandom (Linux), getentropy (macOS, illumos) */
#endif

#ifndef KL_POSIX_PORTABLE
#define KL_POSIX_PORTABLE 0
#endif

#if defined(SOCK_NONBLOCK) && !KL_POSIX_PORTABLE
#define KL_SOCK_NONBLOCK SOCK_NONBLOCK
#else
#define KL_SOCK_NONBLOCK 0
#endif
#if defined(SOCK_CLOEXEC) && !KL_POSIX_PORTABLE
#define KL_SOCK_CLOEXEC SOCK_CLOEXEC
#else
#define KL_SOCK_CLOEXEC 0
#endif
#if defined(MSG_NOSIGNAL) && !KL_POSIX_PORTABLE
#define KL_MSG_NOSIGNAL MSG_NOSIGNAL
#else
#define KL_MSG_NOSIGNAL 0
#endif
#if defined(MSG_MORE) && !KL_POSIX_PORTABLE
#define KL_MSG_MORE MSG_MORE
#else
#define KL_MSG_MORE 0
#endif
#if defined(__linux__) && !KL_POSIX_PORTABLE
#define KL_HAVE_GETRANDOM 1
#else
#define KL_HAVE_GETRANDOM 0
#endif

/* socket() with close-on-exec, and non-blocking when nonblock != 0;
 * SO_NOSIGPIPE where MSG_NOSIGNAL is not used and the system has it.
 * -1 with errno on failure (nothing left open). */
static inline int kl_posix_socket(int domain, int type, int protocol, int nonblock)
{
    int fd = socket(domain, type | KL_SOCK_CLOEXEC | (nonblock ? KL_SOCK_NONBLOCK : 0), protocol);
    if (fd < 0)
        return -1;
    if (KL_SOCK_CLOEXEC == 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        goto fail;
    if (nonblock && KL_SOCK_NONBLOCK == 0) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
            goto fail;
    }
#if defined(SO_NOSIGPIPE)
    if (KL_MSG_NOSIGNAL == 0) {
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0)
            goto fail;
    }
#endif
    return fd;
fail:
    {
        int e = errno;
        close(fd);
        errno = e;
    }
    return -1;
}

/* len bytes from the kernel's generator; 0, or -1. */
static inline int kl_posix_entropy(uint8_t *out, size_t len)
{
    while (len > 0) {
#if KL_HAVE_GETRANDOM
        ssize_t n = getrandom(out, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
#else
        size_t n = len > 256 ? 256 : len; /* getentropy()'s limit */
        if (getentropy(out, n) != 0)
            return -1;
#endif
        out += n;
        len -= (size_t)n;
    }
    return 0;
}

#if defined(KL_POSIX_PORTABLE_CHECK) && KL_POSIX_PORTABLE && defined(__GNUC__)
#undef SOCK_NONBLOCK
#undef SOCK_CLOEXEC
#undef MSG_NOSIGNAL
#undef MSG_MORE
#pragma GCC poison SOCK_NONBLOCK SOCK_CLOEXEC MSG_NOSIGNAL MSG_MORE getrandom
#endif

#endif
