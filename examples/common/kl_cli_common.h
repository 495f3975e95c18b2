/* kinglet — what the command-line programs (kinglet, kinglet-sim)
 * share: exit codes, the hints file and its key. */
#ifndef KINGLET_KL_CLI_COMMON_H
#define KINGLET_KL_CLI_COMMON_H

#include <stdint.h>

#include "kinglet/kinglet.h"
#include "kinglet/kl_cache.h"
#include "kinglet/kl_session.h"
#include "kinglet/kl_app.h"

/* The documented exit code for a kl_status_t: 3 connect/DNS, 4 TLS or
 * certificate, 5 authentication, 6 stream error or malformed input (XMPP,
 * HTTP, BOSH, WebSocket, stream management), 7 timeout (also a dead link),
 * 1 anything else. */
int kl_cli_exit_code(int status);

/* Traces never show credentials. In one traced write (dir 'o': ours, 'i':
 * the server's), the span [*from, *to) that holds one: RFC 6120's <auth>
 * payload and SASL2's <initial-response> (PLAIN: the password;
 * HT-SHA-256-NONE: a replayable token proof) going out, the FAST token of a
 * server's <token token='...'/> coming in. Returns 1 with the span (to =
 * len when it is not closed in this write), 0 if there is none. */
int kl_cli_secret_span(char dir, const uint8_t *data, size_t len, size_t *from, size_t *to);
/* One traced write on stderr: "  C->S    N bytes | <the first 300 bytes>",
 * a credential cut out (kl_cli_secret_span); `ellipsis`: "..." after a
 * write that was cut short. */
void kl_cli_trace_bytes(char dir, const uint8_t *data, size_t len, int ellipsis);

/* The hints file (--cache FILE) holds TLS session secrets: it is
 * authenticated with a device key (kl_cache_load / kl_cache_store, HMAC-
 * SHA-256) kept in a key file (--cache-key KEYFILE, default FILE.key), and
 * both are written 0600.
 *
 * The key file: 32 bytes from getrandom(), created on first use (0600, a
 * unique temporary file linked into place: never over an existing file,
 * never through a symbolic link). Refused, with one line on stderr, if it
 * is a symbolic link, not a regular file, not owned by this user, readable
 * or writable by group/others, or not 32 bytes: then the run goes on
 * without a key (no TLS session is taken from or written into the hints).
 *
 * The hints file: opened with O_NOFOLLOW; a file that is not a regular
 * file of KL_CACHE_BLOB_SIZE bytes, fails authentication, or is for
 * another build or domain is ignored whole, with one line on stderr naming
 * the reason (kl_strerror). One that group/others can read or that another
 * user owns is used without its TLS session (the secret may have leaked).
 * Written through a unique temporary file in the same directory (mkstemp,
 * 0600), fsync'd, renamed over FILE (a symbolic link there is replaced,
 * never followed), then the directory fsync'd. */
typedef struct kl_cli_hints {
    const char *prog;             /* for messages */
    const char *path;             /* the hints file, NULL: none */
    const kl_crypto_t *crypto;    /* HMAC for kl_cache_load/_store (borrowed) */
    int have_key;
    uint8_t key[KL_CACHE_KEY_LEN];
    int status;                   /* what kl_cache_load returned */
} kl_cli_hints_t;

/* Read the key (creating it on first use) and the hints file into *cache
 * and authenticate it for domain (kl_cache_load). Returns 1 if hints were
 * taken from the file (authentic, or without a key: all but the TLS
 * session), 0 if not (none yet, or ignored: reported on stderr). *cache is
 * ready for the engine either way. key_path NULL: path + ".key". */
int kl_cli_hints_load(kl_cli_hints_t *h, const char *prog, const char *path, const char *key_path,
                      const kl_crypto_t *crypto, const char *domain, kl_cache_t *cache);

/* kl_cache_store (MAC with the key; without one the TLS session is
 * dropped), then write the file safely (see above), so a crash never leaves
 * half a blob. Returns 0, or -1 after one line on stderr. */
int kl_cli_hints_save(kl_cli_hints_t *h, kl_cache_t *cache);

/* The session went online at least once, by a login or a resumption:
 * online_ms cannot tell (a login inside one clock tick has 0). */
static inline int went_online(kl_session_t *s)
{
    const kl_session_stats_t *w = kl_session_stats(s);
    return w->onlines != 0 || w->resumes != 0;
}

/* Stream-management state across a process restart (XEP-0198 resumption):
 * FILE.sm beside the hints file, kl_sm_save()'d with the same device key
 * and written the same safe way (0600). kl_cli_sm_load, after
 * kl_client_init() with cfg.sm_queue set: reads it (refused like the hints
 * if it is a link, not ours or open to others), kl_sm_load()s it into the
 * client (the next connect resumes) and removes the file; 1 if loaded.
 * kl_cli_sm_save writes it when the session can be resumed (a program that
 * exits without logging out); 0 if there was nothing to save. buf/cap:
 * room for the blob (KL_SM_BLOB_MAX of the queue size). */
int kl_cli_sm_load(kl_cli_hints_t *h, kl_client_t *c, uint8_t *buf, size_t cap);
int kl_cli_sm_save(kl_cli_hints_t *h, const kl_client_t *c, uint8_t *buf, size_t cap);

/* The message script the programs share: --send, --recv N, --echo,
 * --count N, --timeout S. */
typedef struct kl_cli_run {
    const char *prog;  /* for messages on stderr */
    int echo;          /* --echo */
    int s2s;           /* s2s: echo from the address the message was sent to */
    long count;        /* --count (-1: none) */
    long recv_n;       /* --recv (0: none) */
    int echoed, received, closing;
    kl_session_t *session; /* the connection manager, if the program runs one: a close
                              is then a logout (kl_session_close: not reconnected) */
    int detach;            /* end by dropping the connection, without a logout: the
                              server keeps the session for resumption (--no-logout) */
    int detaching;         /* ... asked for: the last <a/> is going out */
    unsigned long echo_waits; /* echoes that waited for room (KL_ERR_TX_FULL, link down) */
    unsigned long echo_lost;  /* echoes dropped because too many waited */
    unsigned long echo_progress; /* pieces of long echoes written: a program that saw it
                                    grow goes on at once instead of waiting for I/O */
    void (*on_close)(void *ctx, kl_client_t *c); /* called by kl_cli_close() first (e.g. leave rooms) */
    void *close_ctx;
    int detached;          /* ... done: the program should end now */
} kl_cli_run_t;

/* Close the stream: kl_session_close() when r->session is set, else
 * kl_client_close(). With r->detach, drop the connection instead
 * (kl_session_shutdown; r->detached set). Returns KL_OK or the error. */
int kl_cli_close(kl_cli_run_t *r, kl_client_t *c);
/* While detaching: once nothing waits to be sent, drop the connection.
 * Returns 1 when detached (the program ends), 0 otherwise. */
int kl_cli_detach_step(kl_cli_run_t *r);

/* The deadline passed: --echo without --count or --recv ends with a clean
 * close (3 s more for it), anything else timed out. Returns -1 to go on,
 * else the exit code to end with. */
int kl_cli_deadline(kl_cli_run_t *r, kl_client_t *c, uint32_t now, uint32_t *t_end);

/* Echoes that found no room wait (up to 512, in order): send what fits
 * now. Call it whenever the program would otherwise wait. */
void kl_cli_flush_echoes(kl_cli_run_t *r, kl_client_t *c);

/* A message with a body arrived (the caller printed it): count it, echo
 * it if asked (an echo that finds no room waits: kl_cli_flush_echoes), and
 * close the stream once --count echoes or --recv messages are done. `to` is the address it was sent to, or NULL; body
 * NULL (a streamed stanza whose body was not kept) is counted, not echoed. */
void kl_cli_after_message(kl_cli_run_t *r, kl_client_t *c, const char *from, const char *to, const char *body);
/* The same for a body of len bytes (any size: one longer than the transmit
 * buffer is echoed in pieces, kl_send_message_begin / kl_send_text). */
void kl_cli_after_message_n(kl_cli_run_t *r, kl_client_t *c, const char *from, const char *to, const char *body,
                            size_t len);

/* KL_EV_STANZA_DROPPED: "dropped stanza: REASON" on stdout (the session goes on). */
void kl_cli_dropped(const kl_event_t *ev);

/* One line on stderr for a kl_client_init() failure, naming what is wrong. */
void kl_cli_init_error(const char *prog, const char *jid, int status);

#endif
