/* kinglet — the newlib system calls a firmware image needs, and no heap.
 *
 * stdout/stderr go to the UART. There is no heap: _sbrk always fails with
 * ENOMEM, so a malloc() anywhere returns NULL instead of taking RAM that
 * the linker script did not budget. Nothing in kinglet, lwIP (MEM_LIBC_
 * MALLOC=0) or mbedTLS (a static arena) calls malloc; newlib's stdio would
 * try to allocate a buffer and fall back to unbuffered output. Prefer
 * board_printf: it pulls in no stdio at all.
 */
#include <errno.h>
#include <stddef.h>
#include <sys/stat.h>

#include "board.h"

#undef errno
extern int errno;

int _write(int fd, const char *buf, int len);
int _read(int fd, char *buf, int len);
int _close(int fd);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
int _lseek(int fd, int off, int whence);
void *_sbrk(ptrdiff_t incr);
int _getpid(void);
int _kill(int pid, int sig);
void _exit(int code);

int _write(int fd, const char *buf, int len)
{
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    board_write(buf, (size_t)len);
    return len;
}

int _read(int fd, char *buf, int len)
{
    (void)fd;
    (void)buf;
    (void)len;
    return 0; /* no console input */
}

int _close(int fd)
{
    (void)fd;
    errno = EBADF;
    return -1;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd)
{
    return fd <= 2;
}

int _lseek(int fd, int off, int whence)
{
    (void)fd;
    (void)off;
    (void)whence;
    return 0;
}

void *_sbrk(ptrdiff_t incr)
{
    (void)incr;
    errno = ENOMEM;
    return (void *)-1;
}

int _getpid(void)
{
    return 1;
}

int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

void _exit(int code)
{
    board_exit(code);
}
