/* kinglet — the connection manager (core/kl_session.c).
 *
 * One non-blocking session layer owns a connection's whole life on top of
 * the engine: the endpoint (a configured list, tried in order with
 * failover), connect, direct TLS or STARTTLS (XEP-0305 full pipelining's
 * early ClientHello included), the framing (XMPP over TCP, BOSH, and
 * WebSocket), the login, online, and — when the link is lost — backoff
 * with full jitter, reconnect and XEP-0198 resumption (the engine keeps
 * the stream-management state across kl_client_connect()). Keepalive and
 * dead-peer detection are the engine's (it knows the traffic): a dead link
 * comes up as KL_ERR_DEAD_PEER and is handled like any lost link.
 *
 * Sans-I/O like the engine: no socket, clock or allocator of its own. A
 * port supplies primitives through two small tables (kl_net_ops_t, a
 * non-blocking byte transport with numbered slots; kl_tls_ops_t, a TLS
 * binding — port/mbedtls has one), and the time with every call. Entropy
 * (backoff jitter) comes from the client's configured random source.
 *
 *   kl_session_init(&s, &scfg);             // client, net, tls, endpoints, policy
 *   kl_session_start(&s, now);
 *   for (;;) {
 *       while ((r = kl_session_step(&s, now, &ev)) > 0) handle(&ev);
 *       sleep until a slot is ready as kl_session_wants() says, or for
 *       kl_session_next_timeout(&s, now) ms;
 *   }
 *
 * Events: every engine event except KL_EV_START_TLS (handled inside), and
 *   KL_EV_LINK_DOWN  the connection was lost (ev.status, ev.condition) and
 *                    the next attempt starts in ev.retry_ms (with
 *                    cfg.reconnect; also, once and at once, without it when
 *                    the server refused the cached TLS session);
 *   KL_EV_ERROR      final: a failure that must not be retried (bad
 *                    credentials, a certificate failure, a stream error
 *                    other than system-shutdown / connection-timeout /
 *                    reset, see-other-host), or any failure when
 *                    cfg.reconnect is 0. kl_session_step() then returns 0.
 *   KL_EV_CLOSED     the application's kl_session_close() (or its own
 *                    kl_client_close()) finished: a logout, never retried.
 *                    A stream the server closes is a lost link.
 *
 * Pointers in events follow the engine's rule: valid until the next call.
 */
#ifndef KINGLET_KL_SESSION_H
#define KINGLET_KL_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "kinglet.h"
#include "kl_post.h"
#include "kl_transport.h"

/* Framings the manager can drive; 0 removes one's code (and the need to
 * link its codec). */
#ifndef KL_ENABLE_BOSH
#define KL_ENABLE_BOSH 1
#endif
#ifndef KL_ENABLE_WS
#define KL_ENABLE_WS 1
#endif
/* Connections one session may hold at once: BOSH uses two (a long poll
 * held while the other sends), XMPP over TCP and WebSocket one. */
#ifndef KL_SESSION_SLOTS
#define KL_SESSION_SLOTS 2
#endif
/* WebSocket: wire bytes buffered each way between the transport and the
 * codec (the codec streams; these only bound one read / one write). */
#ifndef KL_SESSION_WS_BUF
#define KL_SESSION_WS_BUF 512
#endif
/* Configured endpoints kept. */
#ifndef KL_SESSION_MAX_ENDPOINTS
#define KL_SESSION_MAX_ENDPOINTS 4
#endif

/* ---- port primitives: the byte transport ---------------------------------
 *
 * Numbered slots (0 .. KL_SESSION_SLOTS-1), each one connection. Every
 * call returns at once. send/recv as kl_transport.h: bytes moved (> 0),
 * 0 would block / nothing yet, < 0 a kl_status_t (KL_ERR_CONN_CLOSED at
 * the peer's end of stream). */
typedef struct kl_net_ops {
    /* Start connecting slot to host:port (a name the port resolves, or an
     * address). KL_OK: under way; < 0: KL_ERR_DNS, KL_ERR_CONNECT, KL_ERR_IO. */
    int (*open)(void *net, int slot, const char *host, uint16_t port);
    /* 1 connected, 0 still connecting, < 0 failed (KL_ERR_CONNECT, KL_ERR_DNS). */
    int (*poll_open)(void *net, int slot);
    int (*send)(void *net, int slot, const uint8_t *buf, size_t len);
    int (*recv)(void *net, int slot, uint8_t *buf, size_t len);
    /* The end of a flight: push what send() queued (lwIP: tcp_output).
     * NULL if sends go out at once. */
    void (*flush)(void *net, int slot);
    /* on 1: keep the following sends in one segment until flush() or
     * cork(0) (POSIX: MSG_MORE), so that <starttls/> and the early
     * ClientHello arrive together. NULL: not supported (harmless). */
    void (*cork)(void *net, int slot, int on);
    /* Close the slot (idempotent; also after a failed open). */
    void (*close)(void *net, int slot);
    /* 1 if received bytes wait in the port for recv() (lwIP queues them
     * without waking anyone). NULL: the port's own wait (poll) sees them. */
    int (*readable)(void *net, int slot);
    /* Drop the slot at once (RST, nothing kept): a lost link. A graceful
     * close into a dead link would hold the connection (lwIP: a pcb and
     * its unacknowledged segments, in FIN_WAIT_1 for minutes). NULL: close. */
    void (*abort)(void *net, int slot);
} kl_net_ops_t;

/* ---- port primitives: the TLS binding ------------------------------------ */

typedef struct kl_tls_params {
    const char *server_name;   /* SNI and the name the certificate must carry */
    const char *alpn;          /* "xmpp-client" for direct TLS, or NULL */
    const uint8_t *session;    /* a resumption blob from authenticated hints, or NULL */
    size_t session_len;
} kl_tls_params_t;

typedef struct kl_tls_info {
    uint8_t verified;          /* the chain and name were verified */
    uint8_t resumed;           /* the handshake resumed the offered session */
    uint8_t session_offered;   /* a session blob was offered */
    uint8_t new_session;       /* a newer resumable session can be saved now */
    uint32_t round_trips;      /* the handshake's waits for the peer */
    const char *version;       /* "TLSv1.3", or "" (static) */
} kl_tls_info_t;

typedef struct kl_tls_ops {
    /* A client session on slot over `lower` (the manager's view of the
     * net slot; it outlives the session). KL_OK or KL_ERR_TLS_SETUP. */
    int (*setup)(void *tls, int slot, const kl_tls_params_t *p, kl_transport_t *lower);
    /* 1 established, 0 call again when the slot is ready, < 0 an error
     * (KL_ERR_TLS_CERT, KL_ERR_TLS, KL_ERR_CONN_CLOSED, ...). */
    int (*handshake)(void *tls, int slot);
    /* XEP-0305 full: no reads from lower while held; then the bytes that
     * followed <proceed/> are read first (borrowed until consumed). */
    void (*hold_reads)(void *tls, int slot, int hold);
    void (*preread)(void *tls, int slot, const uint8_t *data, size_t len);
    /* Plaintext over the session (as kl_transport_t). */
    int (*send)(void *tls, int slot, const uint8_t *buf, size_t len);
    int (*recv)(void *tls, int slot, uint8_t *buf, size_t len);
    void (*info)(void *tls, int slot, kl_tls_info_t *out);
    /* The newest resumable session as a blob: KL_OK (*len set),
     * KL_ERR_STATE (nothing new), KL_ERR_TOO_LARGE. NULL: not supported. */
    int (*save_session)(void *tls, int slot, uint8_t *buf, size_t cap, size_t *len);
    /* close_notify (best effort) and free; idempotent. */
    void (*close)(void *tls, int slot);
    /* Human-readable reason for the last failure on slot, into buf. */
    const char *(*error_text)(void *tls, int slot, char *buf, size_t cap);
    /* RFC 9266 tls-exporter channel binding of the finished handshake
     * (len 32): KL_OK, or an error when there is none (TLS 1.2). NULL:
     * not supported. The manager hands it to the engine for SCRAM-*-PLUS
     * (kl_client_set_channel_binding). */
    int (*exporter)(void *tls, int slot, uint8_t *out, size_t len);
} kl_tls_ops_t;

/* ---- endpoints ------------------------------------------------------------ */

typedef enum kl_framing {
    KL_FRAMING_XMPP = 0,  /* RFC 6120 over TCP */
    KL_FRAMING_BOSH = 1,  /* XEP-0124/0206 over HTTP/1.1 */
    KL_FRAMING_WS = 2     /* RFC 7395 over WebSocket */
} kl_framing_t;

typedef enum kl_security {
    KL_SEC_STARTTLS = 0,  /* XMPP: plain TCP, the stream negotiates TLS */
    KL_SEC_DIRECT_TLS = 1,/* TLS from the first byte (XEP-0368, https://, wss://) */
    KL_SEC_NONE = 2       /* http:// or ws://: no TLS at all; a credential leaves only
                             with the client's allow_plaintext */
} kl_security_t;

typedef struct kl_endpoint {
    const char *host;     /* name or address; NULL: the client's domain (borrowed) */
    uint16_t port;        /* 0: 5222 / 5223 (XMPP), 80 / 443 (BOSH, WebSocket) */
    uint8_t framing;      /* kl_framing_t */
    uint8_t security;     /* kl_security_t */
    const char *path;     /* BOSH / WebSocket: the HTTP path (borrowed) */
} kl_endpoint_t;

/* Parses http://, https://, ws:// or wss:// host[:port]/path into ep
 * (framing BOSH for http(s), WebSocket for ws(s)); the host and path are
 * copied into buf (cap bytes) and ep points into it. KL_OK or KL_ERR_ARG. */
int kl_endpoint_from_url(kl_endpoint_t *ep, const char *url, char *buf, size_t cap);

/* ---- the session ---------------------------------------------------------- */

/* Called with every chunk of XML the engine sends ('o') or receives
 * ('i'), and with len 0 and a static note at milestones (connected, TLS
 * up, link down ...). */
typedef void (*kl_session_trace_fn)(void *arg, char dir, const uint8_t *data, size_t len,
                                    const char *note);

typedef struct kl_session_config {
    kl_client_t *client;              /* initialised (kl_client_init); borrowed */
    const kl_net_ops_t *net;
    void *net_ctx;
    const kl_tls_ops_t *tls;          /* NULL: no TLS (only KL_SEC_NONE endpoints work) */
    void *tls_ctx;
    kl_endpoint_t endpoints[KL_SESSION_MAX_ENDPOINTS];
    int n_endpoints;                  /* 0: one XMPP endpoint, the domain, STARTTLS */
    const char *tls_server_name;      /* NULL: the client's domain (RFC 6125) */
    const char *alpn;                 /* direct TLS over XMPP framing; NULL: "xmpp-client" */
    kl_cache_t *cache;                /* the client's hints (same pointer), or NULL: the TLS
                                         session is offered and kept through it */
    /* Entropy for the backoff's jitter (and BOSH's first rid): required
     * unless no_jitter. Returns 0 on success. */
    int (*random)(void *ctx, uint8_t *out, size_t len);
    void *random_ctx;
    /* Reconnect policy. */
    uint8_t reconnect;                /* 1: retry transient failures; 0: the first failure
                                         is final (one-shot tools) */
    uint8_t no_jitter;                /* 1: backoff without jitter (comparisons only) */
    /* Backoff after the n-th failure in a row (n from 0): with jitter
     * uniformly in [min, min(max, min * 2^(n+1))], the first retry too;
     * no_jitter: exactly min(max, min * 2^n). */
    uint32_t backoff_min_ms;          /* 0: 1000 */
    uint32_t backoff_max_ms;          /* 0: 60000 */
    uint32_t stable_ms;               /* online this long resets the backoff; 0: 60000 */
    uint32_t timeout_ms;              /* TCP connect, TLS handshake, HTTP upgrade each; 0: 20000;
                                         the TLS handshake's (and the login's) doubled after
                                         a timed-out TLS handshake or login, up to
                                         2^KL_SESSION_TIMEOUT_GROWTH times, until online */
    uint16_t max_attempts;            /* consecutive failed attempts before KL_EV_ERROR; 0: no limit */
    /* BOSH (see kl_bosh.h) */
    uint8_t bosh_split_restart;
    /* WebSocket: SHA-1 for Sec-WebSocket-Accept (the client's crypto
     * table, e.g. kl_crypto_mbedtls); required for WebSocket endpoints. */
    const kl_crypto_t *crypto;
    kl_session_trace_fn trace;
    void *trace_arg;
    /* Stanzas another task or an ISR posts (kl_post.h), or NULL: drained
     * at every kl_session_step while the client is online. */
    kl_post_t *post;
} kl_session_config_t;

/* Per connection and cumulative counters. */
typedef struct kl_session_stats {
    uint32_t attempts;           /* connection attempts started */
    uint32_t connects;           /* attempts that reached the transport */
    uint32_t onlines;            /* KL_EV_ONLINE */
    uint32_t resumes;            /* KL_EV_RESUMED */
    uint32_t link_downs;         /* KL_EV_LINK_DOWN */
    uint32_t location_tries;     /* attempts at the server's preferred location (XEP-0198) */
    uint32_t tls_resumed;        /* TLS handshakes that resumed a session */
    /* the current (or last) connection */
    uint32_t wire_in, wire_out;  /* bytes on the transport (all slots) */
    uint32_t wire_in_online, wire_out_online; /* ... when online/resumed */
    uint32_t tcp_connect_ms, tls_handshake_ms;
    const char *tls_version;     /* "TLSv1.3" ... (static), "" without TLS */
    uint8_t tls_session_resumed; /* this connection's TLS handshake resumed a session */
    uint8_t tls_verified;        /* ... and verified the certificate (or resumed a verified one) */
    uint8_t tls_session_offered; /* ... offered a saved session */
    uint32_t tls_sessions_saved; /* newer TLS sessions kept in the hints (cumulative) */
    uint32_t http_requests_online; /* BOSH: HTTP requests sent up to online */
    uint32_t http_round_trips_online; /* BOSH: rounds of requests waited on up to online */
    uint32_t link_rt_online;     /* round trips up to online/resumed, all counted */
} kl_session_stats_t;

typedef struct kl_session_slot {
    uint8_t state;               /* internal */
    uint8_t tls_on;              /* the TLS handshake finished: plaintext goes through TLS */
    uint8_t tls_set;             /* a TLS session was set up (close it) */
    uint8_t bosh_slot;           /* BOSH: the request on it + 1, 0 idle */
    uint32_t t0;
    const uint8_t *wr;           /* BOSH: the rest of a request being written */
    size_t wr_left;
    kl_transport_t lower;        /* the net slot as a transport, for TLS */
    struct kl_session *owner;
} kl_session_slot_t;

typedef struct kl_session {
    kl_session_config_t cfg;
    kl_client_t *c;
    uint8_t state;               /* internal */
    uint8_t ep;                  /* endpoint in use */
    uint8_t ep_first;            /* the first endpoint of this round */
    uint8_t early_tls;           /* full: the ClientHello went out behind <starttls/> */
    uint8_t tls_phase;           /* internal: STARTTLS sub-state */
    uint8_t session_offered;     /* this TLS handshake offered the cached session */
    uint8_t online;
    uint8_t closing;             /* kl_session_close() was called */
    uint8_t close_pending;       /* KL_EV_CLOSED owed to the next step */
    uint8_t no_session;          /* do not offer the cached TLS session (it just failed) */
    uint8_t sasl2_retry;         /* retried at once after KL_ERR_SASL2_GONE (once a run) */
    uint8_t slow;                /* timeouts doubled this many times (KL_SESSION_TIMEOUT_GROWTH) */
    uint16_t failures;           /* backoff exponent: consecutive failed rounds */
    int close_status;
    uint32_t now;                /* the time of the current call */
    uint32_t t_close;
    uint32_t t_state;            /* when the state began */
    uint32_t t_retry;            /* BACKOFF: when the next attempt starts */
    uint32_t t_online;
    uint32_t t_attempt;
    int last_status;
    kl_slice_t tls_data;         /* bytes that followed <proceed/> (the engine's) */
    kl_session_stats_t stats;
    kl_session_slot_t slot[KL_SESSION_SLOTS];
    /* XEP-0198 <enabled location=''/>: the next attempt after a lost link
     * goes there first (XMPP over TCP only; the certificate must still be
     * the domain's), then back to the configured endpoints */
    uint8_t use_loc;
    kl_endpoint_t loc_ep;
    char loc_host[KL_SM_LOCATION_MAX + 1];
    char condition[KL_CONDITION_MAX];
    char error_text[160];        /* the last failure, human-readable */
#if KL_ENABLE_BOSH
    struct kl_bosh *bosh;        /* borrowed (kl_session_use_bosh) */
    uint32_t bosh_rounds;        /* BOSH rounds already added to the engine's stats */
    char http_host[80];          /* BOSH: the Host header */
#endif
#if KL_ENABLE_WS
    struct kl_ws *ws;            /* borrowed (kl_session_use_ws) */
    uint8_t ws_started;          /* the upgrade succeeded and the engine's stream started */
    uint16_t ws_rlen, ws_roff;   /* wire bytes read, not yet taken by the codec */
    uint16_t ws_wlen, ws_woff;   /* wire bytes made, not yet sent */
    uint8_t ws_rbuf[KL_SESSION_WS_BUF];
    uint8_t ws_wbuf[KL_SESSION_WS_BUF];
    /* the engine's output length the codec took nothing of (it ends in half
     * an element): no write is wanted until it changes; 0 none */
#if KL_TX_BUF_SIZE > 0xFFFF
    uint32_t ws_stall;
#else
    uint16_t ws_stall;           /* in the struct's tail padding */
#endif
#endif
} kl_session_t;

/* Checks cfg (copied) and resets s. KL_ERR_ARG if something required is
 * missing. */
int kl_session_init(kl_session_t *s, const kl_session_config_t *cfg);

#if KL_ENABLE_BOSH
struct kl_bosh;
/* The BOSH codec state (large: two request/response buffers) for BOSH
 * endpoints; caller-allocated, so only programs that use BOSH pay. */
void kl_session_use_bosh(kl_session_t *s, struct kl_bosh *b);
#endif
#if KL_ENABLE_WS
struct kl_ws;
void kl_session_use_ws(kl_session_t *s, struct kl_ws *ws);
#endif

/* Start the first attempt. */
int kl_session_start(kl_session_t *s, uint32_t now_ms);

/* Everything that can be done now. 1: *ev holds an event; 0: nothing
 * until a slot is ready or time passes (also after the final KL_EV_ERROR
 * or KL_EV_CLOSED). < 0 only for misuse. */
int kl_session_step(kl_session_t *s, uint32_t now_ms, kl_event_t *ev);

/* What slot waits for: KL_WANT_READ | KL_WANT_WRITE, 0 if it is idle.
 * No KL_WANT_WRITE while all there is to write is an output the
 * WebSocket codec cannot frame yet (it ends in half an element). */
#define KL_WANT_READ 1
#define KL_WANT_WRITE 2
int kl_session_wants(const kl_session_t *s, int slot);

/* Milliseconds until kl_session_step() wants to run for a timer (the
 * engine's, a handshake deadline, the backoff), UINT32_MAX if none. */
uint32_t kl_session_next_timeout(const kl_session_t *s, uint32_t now_ms);

/* Log out: </stream:stream>, then KL_EV_CLOSED when the server closed its
 * side (or the link went down). Nothing is retried after it. */
int kl_session_close(kl_session_t *s);

/* The network changed (Wi-Fi roamed, the link came back): drop the
 * connection now and reconnect without waiting for the keepalive. */
void kl_session_kick(kl_session_t *s, uint32_t now_ms);

/* Close every slot now, without </stream:stream> (a stream-management
 * session stays resumable; TCP still closes gracefully, so what was sent
 * arrives); the session is then idle. A lost link is aborted instead. */
void kl_session_shutdown(kl_session_t *s);

const kl_session_stats_t *kl_session_stats(const kl_session_t *s);
/* The last failure in words (TLS reason, the endpoint that failed ...). */
const char *kl_session_error_text(const kl_session_t *s);
/* The endpoint of the current (or last) attempt. */
const kl_endpoint_t *kl_session_endpoint(const kl_session_t *s);
/* TLS details of the current connection (slot 0); 0 if TLS is not up. */
int kl_session_tls_info(const kl_session_t *s, kl_tls_info_t *out);

/* 1 if status should be retried (transport, timeouts, the stream errors
 * system-shutdown, connection-timeout and reset), 0 if it is final. */
int kl_session_retryable(int status, const char *condition);

#endif
