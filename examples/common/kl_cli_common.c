/* kinglet — shared by the command-line programs. */
#define _DEFAULT_SOURCE /* mkstemp, fsync, O_NOFOLLOW, getrandom */
#include "kl_cli_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kinglet/kl_status.h"

int kl_cli_close(kl_cli_run_t *r, kl_client_t *c)
{
    if (r && r->on_close && !r->closing) {
        void (*f)(void *, kl_client_t *) = r->on_close;
        r->on_close = NULL; /* once */
        f(r->close_ctx, c);
    }
    if (r && r->session && r->detach) {
        /* no </stream:stream>: the server hibernates the session. First an
         * <a/>, so that what this side handled is not delivered again on
         * resumption; the program drops the link once it is out
         * (kl_cli_detach_step). */
        (void)kl_sm_ack_now(c);
        r->detaching = 1;
        return KL_OK;
    }
    return r && r->session ? kl_session_close(r->session) : kl_client_close(c);
}

int kl_cli_detach_step(kl_cli_run_t *r)
{
    if (!r->detaching || r->detached)
        return r->detached;
    if (kl_session_wants(r->session, 0) & KL_WANT_WRITE)
        return 0; /* the <a/> is still going out */
    kl_session_shutdown(r->session);
    r->detached = 1;
    return 1;
}

int kl_cli_exit_code(int status)
{
    switch (status) {
    case KL_ERR_DNS:
    case KL_ERR_CONNECT:
    case KL_ERR_CONN_CLOSED:
    case KL_ERR_IO:
    case KL_ERR_BOSH_REQUEST_FAILED:
        return 3;
    case KL_ERR_TLS:
    case KL_ERR_TLS_CERT:
    case KL_ERR_TLS_SETUP:
    case KL_ERR_TLS_RECORD_TOO_LARGE:
    case KL_ERR_NO_TLS:
    case KL_ERR_STARTTLS_FAILED:
    case KL_ERR_TLS_PREREAD:
    case KL_ERR_UNVERIFIED:
        return 4;
    case KL_ERR_AUTH:
    case KL_ERR_NO_MECHANISM:
    case KL_ERR_PLAINTEXT:
    case KL_ERR_SCRAM_ITERATIONS:
    case KL_ERR_SASLPREP:
    case KL_ERR_FAST_REFUSED:
    case KL_ERR_FAST_EXPIRED:
    case KL_ERR_FAST_UNAVAILABLE:
    case KL_ERR_AUTHZID:
    case KL_ERR_DOWNGRADE:
    case KL_ERR_SASL2_TASK:
    case KL_ERR_AUTH_LATER:
        return 5;
    case KL_ERR_BIND_JID:
    case KL_ERR_SM_ACK:
    case KL_ERR_SM_RESUME:
    case KL_ERR_SEE_OTHER_HOST:
        return 6;
    case KL_ERR_TIMEOUT:
    case KL_ERR_DEAD_PEER:
        return 7;
    default:
        if (status <= KL_ERR_DNS_FORMAT && status >= KL_ERR_DNS_UNAVAILABLE)
            return 3;
        if (status <= KL_ERR_HTTP_SYNTAX && status >= KL_ERR_BOSH_REQUEST_FAILED)
            return 6;
        if (status <= KL_ERR_WS_HANDSHAKE && status >= KL_ERR_WS_CLOSED)
            return 6; /* WebSocket: the upgrade or a frame */
        return status <= KL_ERR_XML_SYNTAX && status >= KL_ERR_NO_BIDI ? 6 : 1;
    }
}

/* ---- the hints file and its key ------------------------------------------ */

/* The directory part of path (for the temporary file's name and the
 * directory fsync): "." if none. */
static int dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (slash && n == 0)
        n = 1; /* "/file" */
    if (n + 1 > cap)
        return -1;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    return 0;
}

/* Make a rename or a link in path's directory durable. */
static void sync_dir(const char *path)
{
    char dir[4096];
    int fd;
    if (dir_of(path, dir, sizeof dir) != 0)
        return;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A unique temporary file next to path, 0600: mkstemp (O_CREAT|O_EXCL, so
 * never a planted file or symbolic link). Returns the fd or -1. */
static int temp_beside(const char *path, char *tmp, size_t cap)
{
    int fd;
    if ((size_t)snprintf(tmp, cap, "%s.XXXXXX", path) >= cap)
        return -1;
    fd = mkstemp(tmp);
    if (fd < 0)
        return -1;
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    return fd;
}

/* Why an existing secret file may not be trusted, or NULL. */
static const char *unsafe_file(const struct stat *st, char *buf, size_t cap)
{
    if (!S_ISREG(st->st_mode))
        return "not a regular file";
    if (st->st_uid != geteuid())
        return "owned by another user";
    if (st->st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(buf, cap, "readable or writable by group/others (mode %04o; chmod 600 it)",
                 (unsigned)(st->st_mode & 07777));
        return buf;
    }
    return NULL;
}

/* A fresh key from the kernel's CSPRNG, written to a unique temporary file
 * and linked into place (fails if anything exists at key_path). Returns 0,
 * 1 if another process created it meanwhile, -1 with errno. */
static int create_key(const char *key_path, uint8_t key[KL_CACHE_KEY_LEN])
{
    char tmp[4096];
    size_t got = 0;
    int fd, e;
    while (got < KL_CACHE_KEY_LEN) {
        ssize_t n = getrandom(key + got, KL_CACHE_KEY_LEN - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    if ((fd = temp_beside(key_path, tmp, sizeof tmp)) < 0)
        return -1;
    if (write_all(fd, key, KL_CACHE_KEY_LEN) != 0 || fsync(fd) != 0) {
        e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    close(fd);
    if (link(tmp, key_path) != 0) { /* link() never replaces nor follows what is there */
        e = errno;
        unlink(tmp);
        errno = e;
        return e == EEXIST ? 1 : -1;
    }
    unlink(tmp);
    sync_dir(key_path);
    return 0;
}

/* 0: the key is in h->key; -1: refused or unavailable (reported). */
static int get_key(kl_cli_hints_t *h, const char *key_path)
{
    char why[96];
    const char *bad;
    struct stat st;
    int fd, attempt;
    for (attempt = 0; attempt < 2; attempt++) {
        fd = open(key_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
            int r = create_key(key_path, h->key);
            if (r == 0)
                return 0;
            if (r > 0)
                continue; /* created by another run just now: read that one */
            fprintf(stderr, "%s: cannot create the hints key %s: %s: TLS sessions are not kept\n", h->prog,
                    key_path, strerror(errno));
            return -1;
        }
        if (fd < 0) {
            fprintf(stderr, "%s: hints key %s refused: %s: TLS sessions are not kept\n", h->prog, key_path,
                    errno == ELOOP ? "a symbolic link (not followed)" : strerror(errno));
            return -1;
        }
        if (fstat(fd, &st) != 0)
            bad = strerror(errno);
        else if ((bad = unsafe_file(&st, why, sizeof why)) == NULL && st.st_size != KL_CACHE_KEY_LEN)
            bad = "not a 32-byte key";
        if (bad == NULL && read_all(fd, h->key, KL_CACHE_KEY_LEN) != 0)
            bad = "cannot read it";
        close(fd);
        if (bad != NULL) {
            memset(h->key, 0, sizeof h->key);
            fprintf(stderr, "%s: hints key %s refused: %s: TLS sessions are not kept\n", h->prog, key_path, bad);
            return -1;
        }
        return 0;
    }
    fprintf(stderr, "%s: hints key %s: created and gone again: TLS sessions are not kept\n", h->prog, key_path);
    return -1;
}

int kl_cli_hints_load(kl_cli_hints_t *h, const char *prog, const char *path, const char *key_path,
                      const kl_crypto_t *crypto, const char *domain, kl_cache_t *cache)
{
    char def_key[4096], why[96];
    const char *bad = NULL, *note = NULL;
    struct stat st;
    int fd, read_one = 0, st_load;

    memset(h, 0, sizeof *h);
    h->prog = prog;
    h->path = path;
    h->crypto = crypto;
    memset(cache, 0, sizeof *cache);
    if (key_path == NULL) {
        if ((size_t)snprintf(def_key, sizeof def_key, "%s.key", path) >= sizeof def_key) {
            fprintf(stderr, "%s: --cache %s: path too long\n", prog, path);
            key_path = NULL;
        } else {
            key_path = def_key;
        }
    }
    h->have_key = key_path != NULL && get_key(h, key_path) == 0;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT)
        bad = errno == ELOOP ? "a symbolic link (not followed)" : strerror(errno);
    if (fd >= 0) {
        if (fstat(fd, &st) != 0) {
            bad = strerror(errno);
        } else if (!S_ISREG(st.st_mode)) {
            bad = "not a regular file";
        } else if (st.st_size != (off_t)KL_CACHE_BLOB_SIZE || read_all(fd, cache, KL_CACHE_BLOB_SIZE) != 0) {
            memset(cache, 0, sizeof *cache);
            bad = kl_strerror(KL_ERR_CACHE_FORMAT);
        } else {
            read_one = 1;
            note = unsafe_file(&st, why, sizeof why); /* the session may have leaked */
        }
        close(fd);
    }
    if (bad != NULL)
        fprintf(stderr, "%s: hints file %s ignored: %s\n", prog, path, bad);
    if (note != NULL)
        fprintf(stderr, "%s: hints file %s is %s: its TLS session is not used\n", prog, path, note);
    st_load = kl_cache_load(cache, domain, h->have_key ? crypto : NULL, h->have_key ? h->key : NULL,
                            h->have_key ? sizeof h->key : 0);
    if (note != NULL && (st_load == KL_OK || st_load == KL_ERR_CACHE_NO_KEY))
        st_load = kl_cache_load(cache, domain, NULL, NULL, 0); /* the same hints, without the session */
    h->status = st_load;
    if (read_one && (st_load == KL_ERR_CACHE_AUTH || st_load == KL_ERR_CACHE_FORMAT))
        fprintf(stderr, "%s: hints file %s ignored: %s\n", prog, path, kl_strerror(st_load));
    return read_one && (st_load == KL_OK || st_load == KL_ERR_CACHE_NO_KEY);
}

/* Write len bytes to path safely (see kl_cli_common.h); what: for messages. */
static int write_private(const kl_cli_hints_t *h, const char *path, const void *buf, size_t len, const char *what)
{
    char tmp[4096];
    int fd;
    if ((fd = temp_beside(path, tmp, sizeof tmp)) < 0) {
        fprintf(stderr, "%s: %s not saved: cannot create a temporary file beside %s: %s\n", h->prog, what, path,
                strerror(errno));
        return -1;
    }
    if (write_all(fd, buf, len) != 0 || fsync(fd) != 0) {
        fprintf(stderr, "%s: %s not saved: writing %s: %s\n", h->prog, what, tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) { /* replaces a link at path, never follows it */
        fprintf(stderr, "%s: %s not saved: renaming to %s: %s\n", h->prog, what, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    sync_dir(path);
    return 0;
}

int kl_cli_hints_save(kl_cli_hints_t *h, kl_cache_t *cache)
{
    if (h->path == NULL)
        return 0;
    (void)kl_cache_store(cache, h->crypto, h->have_key ? h->key : NULL, h->have_key ? sizeof h->key : 0);
    return write_private(h, h->path, cache, KL_CACHE_BLOB_SIZE, "hints");
}

/* FILE.sm beside the hints file. */
static int sm_path(const kl_cli_hints_t *h, char *buf, size_t cap)
{
    return h->path != NULL && (size_t)snprintf(buf, cap, "%s.sm", h->path) < cap ? 0 : -1;
}

int kl_cli_sm_load(kl_cli_hints_t *h, kl_client_t *c, uint8_t *buf, size_t cap)
{
    char path[4096], why[96];
    struct stat st;
    const char *bad = NULL;
    int fd, r = 0;
    if (sm_path(h, path, sizeof path) != 0)
        return 0;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            fprintf(stderr, "%s: stream-management state %s ignored: %s\n", h->prog, path,
                    errno == ELOOP ? "a symbolic link (not followed)" : strerror(errno));
        return 0;
    }
    if (fstat(fd, &st) != 0)
        bad = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        bad = "not a regular file";
    else if ((bad = unsafe_file(&st, why, sizeof why)) != NULL)
        ; /* its stanzas and counters may have been read or planted */
    else if (!h->have_key)
        bad = kl_strerror(KL_ERR_CACHE_NO_KEY);
    else if (st.st_size <= 0 || (size_t)st.st_size > cap || read_all(fd, buf, (size_t)st.st_size) != 0)
        bad = kl_strerror(KL_ERR_SM_STATE);
    close(fd);
    if (bad == NULL) {
        int st_load = kl_sm_load(c, h->crypto, h->key, sizeof h->key, buf, (size_t)st.st_size);
        if (st_load == KL_OK)
            r = 1;
        else
            bad = kl_strerror(st_load);
    }
    if (bad != NULL)
        fprintf(stderr, "%s: stream-management state %s ignored: %s\n", h->prog, path, bad);
    unlink(path); /* used once: a resumed (or failed) session writes its own */
    return r;
}

int kl_cli_sm_save(kl_cli_hints_t *h, const kl_client_t *c, uint8_t *buf, size_t cap)
{
    char path[4096];
    kl_sm_info_t info;
    size_t len = 0;
    int st;
    if (sm_path(h, path, sizeof path) != 0 || kl_sm_info(c, &info) != KL_OK || !info.resumable)
        return 0;
    if (!h->have_key)
        return 0;
    if ((st = kl_sm_save(c, h->crypto, h->key, sizeof h->key, buf, cap, &len)) != KL_OK) {
        fprintf(stderr, "%s: stream-management state not saved: %s\n", h->prog, kl_strerror(st));
        return -1;
    }
    return write_private(h, path, buf, len, "stream-management state");
}

int kl_cli_deadline(kl_cli_run_t *r, kl_client_t *c, uint32_t now, uint32_t *t_end)
{
    if (r->echo && r->count < 0 && !r->recv_n) {
        if (!r->closing && kl_cli_close(r, c) == KL_OK) {
            r->closing = 1;
            *t_end = now + 3000;
            return -1;
        }
        return 0;
    }
    if (!kl_client_is_online(c))
        fprintf(stderr, "%s: timed out before online\n", r->prog);
    else
        fprintf(stderr, "%s: timed out (echoed %d, received %d)\n", r->prog, r->echoed, r->received);
    return 7;
}

/* Echoes wait here, in order, and go out as room allows: one that found
 * no room (the transmit buffer, or the stream-management queue full of
 * unacknowledged stanzas, or a resumption still resending what the server
 * missed: KL_ERR_TX_FULL; or no session while the link is down), and every
 * long one, which goes out in pieces as the output drains
 * (kl_send_message_begin / kl_send_text / kl_send_message_end). Bodies of
 * any size are kept in one ring of bytes. */
#define ECHO_WAIT 512
#define ECHO_ARENA (4u << 20)
static struct {
    char from[KL_JID_MAX * 3]; /* s2s: the address it was sent to, echoed from */
    char to[KL_JID_MAX * 3];
    size_t off, len;           /* the body in echo_arena */
    size_t sent;               /* a long one: bytes of it already in the stanza */
    int open;                  /* a long one: its start tag went out */
} echo_wait[ECHO_WAIT];
static unsigned echo_head, echo_count;
static char echo_arena[ECHO_ARENA];
static size_t arena_head, arena_tail; /* bytes in use: [head, tail), or wrapped */

/* Room for len bytes at the tail of the ring, or (size_t)-1. */
static size_t arena_alloc(size_t len)
{
    size_t off;
    if (!echo_count)
        arena_head = arena_tail = 0;
    if (arena_tail >= arena_head && ECHO_ARENA - arena_tail >= len)
        off = arena_tail;
    else if (arena_tail >= arena_head && arena_head > len)
        off = 0;
    else if (arena_tail < arena_head && arena_head - arena_tail > len)
        off = arena_tail;
    else
        return (size_t)-1;
    arena_tail = off + len;
    return off;
}

static void echo_push(kl_cli_run_t *r, const char *from, const char *to, const char *body, size_t len)
{
    unsigned i;
    size_t off;
    if (echo_count == ECHO_WAIT || (off = arena_alloc(len)) == (size_t)-1) {
        r->echo_lost++;
        fprintf(stderr, "%s: echo to %s dropped: %u echoes already wait for room\n", r->prog, to, echo_count);
        return;
    }
    i = (echo_head + echo_count++) % ECHO_WAIT;
    snprintf(echo_wait[i].from, sizeof echo_wait[i].from, "%s", from ? from : "");
    snprintf(echo_wait[i].to, sizeof echo_wait[i].to, "%s", to);
    memcpy(echo_arena + off, body, len);
    echo_wait[i].off = off;
    echo_wait[i].len = len;
    echo_wait[i].sent = 0;
    echo_wait[i].open = 0;
}

/* The head echo went (or failed for good). */
static void echo_pop(kl_cli_run_t *r, kl_client_t *c, int st)
{
    unsigned i = echo_head;
    arena_head = echo_wait[i].off + echo_wait[i].len;
    echo_head = (echo_head + 1) % ECHO_WAIT;
    echo_count--;
    if (st != KL_OK) {
        fprintf(stderr, "%s: cannot echo: %s\n", r->prog, kl_strerror(st));
        return;
    }
    r->echoed++;
    if (r->count >= 0 && r->echoed >= r->count && kl_cli_close(r, c) == KL_OK)
        r->closing = 1;
}

/* A body that fits the transmit buffer goes as one stanza; a longer one
 * in pieces. Returns 1 when the head echo is done, 0 when it waits for
 * room (progress made is counted in r->echo_progress). */
#define ECHO_SHORT 1024
static int echo_send(kl_cli_run_t *r, kl_client_t *c, int *st)
{
    unsigned i = echo_head;
    const char *body = echo_arena + echo_wait[i].off;
    size_t len = echo_wait[i].len;
    if (len <= ECHO_SHORT && !echo_wait[i].open) {
        char small[ECHO_SHORT + 1];
        memcpy(small, body, len);
        small[len] = '\0';
        *st = kl_send_message_from(c, echo_wait[i].from[0] ? echo_wait[i].from : NULL, echo_wait[i].to, "chat",
                                   small);
        return *st != KL_ERR_TX_FULL && *st != KL_ERR_NOT_ONLINE;
    }
    if (!echo_wait[i].open) {
        *st = kl_send_message_begin(c, echo_wait[i].to, "chat");
        if (*st == KL_ERR_TX_FULL || *st == KL_ERR_NOT_ONLINE || *st == KL_ERR_STATE)
            return 0; /* no room, no link, or called from inside a handler: from the loop */
        if (*st != KL_OK)
            return 1;
        echo_wait[i].open = 1;
        r->echo_progress++;
    }
    while (echo_wait[i].sent < len) {
        int n = kl_send_text(c, (const uint8_t *)body + echo_wait[i].sent, len - echo_wait[i].sent);
        if (n < 0) {
            *st = n;
            (void)kl_send_message_end(c); /* what went stays well-formed */
            return 1;
        }
        if (n == 0)
            return 0; /* the output drains first */
        echo_wait[i].sent += (size_t)n;
        r->echo_progress++;
    }
    *st = kl_send_message_end(c);
    if (*st == KL_ERR_TX_FULL)
        return 0;
    return 1;
}

void kl_cli_flush_echoes(kl_cli_run_t *r, kl_client_t *c)
{
    while (echo_count > 0 && (!r->closing || echo_wait[echo_head].open) &&
           (kl_client_is_online(c) || echo_wait[echo_head].open)) {
        int st = KL_OK;
        if (!kl_client_is_online(c)) {
            /* the link went down inside a long echo: it is lost with the
             * connection (stream management hands it back) */
            echo_wait[echo_head].open = 0;
            echo_wait[echo_head].sent = 0;
            return;
        }
        if (!echo_send(r, c, &st))
            return; /* later: after an ack, once the output drained, or once the resumption resent its share */
        echo_pop(r, c, st);
    }
}

void kl_cli_after_message(kl_cli_run_t *r, kl_client_t *c, const char *from, const char *to, const char *body)
{
    kl_cli_after_message_n(r, c, from, to, body, body ? strlen(body) : 0);
}

void kl_cli_after_message_n(kl_cli_run_t *r, kl_client_t *c, const char *from, const char *to, const char *body,
                            size_t len)
{
    r->received++;
    if (r->echo && !r->closing && body) {
        if (echo_count > 0 || !kl_client_is_online(c))
            r->echo_waits++;
        echo_push(r, r->s2s ? to : NULL, from, body, len);
        kl_cli_flush_echoes(r, c);
        if (echo_count > 0)
            r->echo_waits++;
    } else if (!r->echo && r->recv_n > 0 && r->received >= r->recv_n && !r->closing) {
        if (kl_cli_close(r, c) == KL_OK)
            r->closing = 1;
    }
}

void kl_cli_dropped(const kl_event_t *ev)
{
    printf("dropped stanza: %s\n", kl_strerror(ev->status));
    fflush(stdout);
}

void kl_cli_init_error(const char *prog, const char *jid, int status)
{
    if (status == KL_ERR_NO_ENTROPY)
        fprintf(stderr, "%s: no random source for the engine: %s\n", prog, kl_strerror(status));
    else
        fprintf(stderr, "%s: bad --jid '%s': %s\n", prog, jid, kl_strerror(status));
}

int kl_cli_secret_span(char dir, const uint8_t *data, size_t len, size_t *from, size_t *to)
{
    const char *base = (const char *)data, *lim = base + len, *p, *a = NULL, *end = NULL;
    for (p = base; p + 7 < lim && !a; p++) {
        const char *close_tag = NULL;
        if (dir == 'o' && !strncmp(p, "<auth ", 6))
            close_tag = "</auth>";
        else if (dir == 'o' && (size_t)(lim - p) >= 18 && !strncmp(p, "<initial-response>", 18))
            close_tag = "</initial-response>";
        else if (dir != 'o' && !strncmp(p, "<token ", 7)) {
            /* the token='...' attribute (either quote) of this element */
            const char *q = p + 6, *gt = memchr(p, '>', (size_t)(lim - p));
            if (!gt)
                gt = lim;
            for (; q + 8 <= gt; q++)
                if (!strncmp(q, " token=", 7) && (q[7] == '\'' || q[7] == '"')) {
                    a = q + 7;
                    end = memchr(q + 8, q[7], (size_t)(gt - q - 8));
                    if (!end)
                        end = gt;
                    break;
                }
            continue;
        } else {
            continue;
        }
        a = memchr(p, '>', (size_t)(lim - p));
        if (a) {
            size_t cl = strlen(close_tag);
            for (end = a; end + cl <= lim && strncmp(end, close_tag, cl); end++)
                ;
            if (end + cl > lim)
                end = lim; /* not closed in this write: hide the rest */
        }
    }
    if (!a || !end)
        return 0;
    *from = (size_t)(a + 1 - base);
    *to = (size_t)(end - base);
    return 1;
}

void kl_cli_trace_bytes(char dir, const uint8_t *data, size_t len, int ellipsis)
{
    size_t from, to;
    int show = (int)(len > 300 ? 300 : len);
    /* never print credentials (the <auth>/<initial-response> payload, a
     * server's FAST token): cut them out */
    if (kl_cli_secret_span(dir, data, len, &from, &to) && (int)from < show) {
        int tail = (int)(len - to > 300 ? 300 : len - to);
        fprintf(stderr, "  %s %4zu bytes | %.*s[%d bytes of credentials not shown]%.*s\n",
                dir == 'o' ? "C->S" : "S->C", len, (int)from, (const char *)data, (int)(to - from), tail,
                (const char *)data + to);
        return;
    }
    fprintf(stderr, "  %s %4zu bytes | %.*s%s\n", dir == 'o' ? "C->S" : "S->C", len, show, (const char *)data,
            ellipsis && len > 300 ? "..." : "");
}
