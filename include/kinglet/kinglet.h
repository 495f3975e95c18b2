/* kinglet — XMPP client engine for microcontrollers. Public API.
 *
 * The engine is sans-I/O: a port feeds it received bytes and the time,
 * drains the bytes it wants to send, and reacts to its events:
 *
 *   kl_client_init(&c, &cfg);
 *   kl_client_connect(&c, now, KL_CHANNEL_STARTTLS); // TCP is up: the first flight
 *   loop:
 *     while ((r = kl_engine_poll(&c, now, &ev)) > 0) handle(&ev);
 *     p = kl_engine_output(&c, &n); send(p, n); kl_engine_output_ack(&c, sent);
 *     buf = kl_engine_input_buf(&c, &cap); n = recv(buf, cap); kl_engine_input_ack(&c, n);
 *
 * KL_EV_START_TLS asks the port to run a TLS handshake on the same
 * connection now; when it is done the port calls kl_engine_tls_done().
 *
 * Memory: kl_client_t holds everything; its size is fixed at compile time
 * by kl_config.h / kl_config_defaults.h. Nothing is allocated.
 *
 * Lifetimes: every pointer in an event (stanza views, slices, tokens, the
 * condition text) stays valid until the next call into the engine with
 * the same client. Strings in kl_client_config_t are borrowed and must
 * outlive the client (the password is read when <auth/> is written).
 */
#ifndef KINGLET_KINGLET_H
#define KINGLET_KINGLET_H

#include <stddef.h>
#include <stdint.h>

#include "kl_cache.h"
#include "kl_config_defaults.h"
#include "kl_crypto.h"
#include "kl_status.h"
#include "kl_xml.h"

typedef enum kl_pipelining {
    KL_PIPELINING_OFF = 0,  /* one step per round trip (lockstep) */
    KL_PIPELINING_SAFE = 1, /* stream header + next command per flight (default) */
    KL_PIPELINING_FULL = 2  /* XEP-0305 full flights when the cache says the server
                               advertised urn:xmpp:features:pipelining (or force_full);
                               otherwise safe */
} kl_pipelining_t;

typedef struct kl_client_config {
    const char *jid;          /* "user@domain" or "user@domain/resource" (required);
                                 s2s: the device's own domain */
    const char *password;     /* borrowed; read when <auth/> is written */
    kl_pipelining_t pipelining;
    uint8_t allow_plaintext;  /* 1: may send a credential without TLS, or over TLS whose
                                 certificate the port did not verify. Never the default. */
    uint8_t no_plain;         /* 1: never use SASL PLAIN (SCRAM only) */
    uint8_t no_presence;      /* 1: do not send initial presence when online */
    uint8_t direct_tls;       /* 1: the port runs TLS before the stream (XEP-0368). Read by
                                 the ports; the engine learns what the channel is from
                                 kl_client_connect() */
    uint8_t force_full;       /* 1: with KL_PIPELINING_FULL, use full flights even
                                 without a cached pipelining advertisement */
    uint8_t deliver_iq;       /* 1: IQ get/set requests other than ping and disco#info
                                 reach the application, which must answer each;
                                 0: the engine answers them service-unavailable */
    uint32_t iq_timeout_ms;   /* 0: KL_IQ_TIMEOUT_MS */
    /* Hashing for SCRAM-SHA-1/-256 (a port provides it, e.g.
     * kl_crypto_mbedtls); NULL: SCRAM unavailable. With PLAIN allowed and
     * offered, PLAIN is used after a verified TLS handshake (one round trip
     * fewer); with no_plain, SCRAM-SHA-256 is preferred over SCRAM-SHA-1. */
    const kl_crypto_t *crypto;
    /* Entropy (required): IQ ids are 64 random bits, so that no entity that
     * did not see a request can answer it (RFC 6120 §8.2.3). Fills out with
     * len cryptographically strong random bytes; returns 0 on success.
     * NULL: crypto->random is used; with neither, kl_client_init() fails
     * with KL_ERR_NO_ENTROPY. */
    int (*random)(void *ctx, uint8_t *out, size_t len);
    void *random_ctx;
    /* Connection hints (kl_cache.h), borrowed, read and updated; NULL: none.
     * They hold a TLS session secret: kl_cache_load() them with the device
     * key after reading, kl_cache_store() before persisting; ports take the
     * TLS session only through kl_cache_tls_session(). */
    kl_cache_t *cache;
    /* Server-to-server (XEP-0288 bidi + SASL EXTERNAL, XEP-0178): the
     * device is the server of domain `jid` and opens one stream to the
     * server of `s2s_to`, authenticating with its TLS client certificate.
     * It sends stanzas from its own domain only and receives stanzas for
     * it on the same stream when the peer offers bidi. */
    uint8_t s2s;
    const char *s2s_to;
    /* XEP-0198 stream management (KL_ENABLE_SM; client streams only). The
     * stanzas sent and not yet acknowledged by the server are kept here, in
     * a buffer the application owns (it must outlive the client), each as
     * a 6-byte header and its bytes: size it for the unacknowledged bytes
     * you accept to hold (e.g. 2 KB). NULL/0: stream management is not
     * used even if the server offers it. While it is on, a stanza that
     * does not fit in the free space is refused with KL_ERR_TX_FULL (nothing
     * is sent; retry after KL_EV_ACKED), one larger than the whole buffer
     * with KL_ERR_TOO_LARGE. */
    uint8_t *sm_queue;
    size_t sm_queue_size;
    /* When to ask the server for an ack (<r/>): after sm_ack_every
     * unacknowledged stanzas (0: KL_SM_ACK_EVERY), when stanzas have been
     * unacknowledged for sm_ack_ms (0: KL_SM_ACK_MS), and when nothing more
     * was sent for sm_ack_idle_ms (0: KL_SM_ACK_IDLE_MS). */
    uint8_t sm_ack_every;
    uint32_t sm_ack_ms;
    uint32_t sm_ack_idle_ms;
    /* Keepalive: after keepalive_ms with nothing received, or nothing
     * sent, while online (what the device sends proves nothing about the
     * way back; what it receives keeps no server-side idle timer from
     * running out), probe the server (<r/> with stream management, else an XEP-0199 ping);
     * nothing at all received within keepalive_timeout_ms
     * after the probe ends the session with KL_ERR_DEAD_PEER (the port or
     * connection manager reconnects; stream management resumes). 0:
     * KL_KEEPALIVE_MS / KL_KEEPALIVE_TIMEOUT_MS; KL_KEEPALIVE_OFF: no
     * keepalive (both at most 2^31-1). A server's XEP-0478 <idle-seconds/>
     * lowers keepalive_ms to half of it (KL_ENABLE_STREAM_LIMITS; for this
     * client from then on). */
    uint32_t keepalive_ms;
    uint32_t keepalive_timeout_ms;
    /* SASL2 (XEP-0388) with Bind2 (XEP-0386), FAST (XEP-0484) and inline
     * stream-management resumption (KL_ENABLE_SASL2): used wherever the
     * server offers it; with the hints saying so, <authenticate/> rides
     * with the stream header right after TLS. Mechanisms: a FAST token
     * when there is one, else as for RFC 6120 SASL (PLAIN when allowed,
     * else the strongest SCRAM, -PLUS with tls-exporter channel binding
     * when the port gave it: kl_client_set_channel_binding). These fields
     * exist only in builds with it (a small image keeps its layout). */
#if KL_ENABLE_SASL2
    uint8_t no_sasl2;         /* 1: RFC 6120 SASL and bind even where SASL2 is offered */
    uint8_t no_fast;          /* 1: never request or use a FAST token */
    uint8_t csi_inactive;     /* 1: Bind2 starts the session inactive (XEP-0352), else active */
    /* <user-agent id>: a UUID stable per device. NULL: generated once and
     * kept in the hints (without hints: derived from the JID). */
    const char *user_agent_id;
    const char *software;     /* <software>; NULL: "kinglet" */
    const char *device;       /* <device>; NULL: none */
    /* A provisioned FAST token (HT-SHA-256-NONE), used while the hints
     * hold none: a device may be flashed with it and no password. The
     * token the server gives back (rotation) goes into the hints, so a
     * token-only device needs hints with a device key. */
    const char *fast_token;
    /* Wall clock (Unix seconds), to leave an expired token unused; NULL:
     * unknown (the server decides). */
    uint32_t (*unix_time)(void);
#endif
} kl_client_config_t;

#define KL_KEEPALIVE_OFF 0xFFFFFFFFu

/* Channel-binding data kept for SASL (tls-exporter: 32 bytes). */
#define KL_CB_MAX 32
/* XEP-0474: the advertised mechanism and channel-binding list kept for the
 * downgrade check (Prosody 13's is about 60 bytes). */
#ifndef KL_SSDP_MAX
#define KL_SSDP_MAX 160
#endif
#if KL_SSDP_MAX >= 255
#error "KL_SSDP_MAX must be below 255 (its length is a byte; 255 marks a list too long to keep)"
#endif

typedef enum kl_event_type {
    KL_EV_NONE = 0,         /* nothing more until new input, output space or time */
    KL_EV_START_TLS,        /* port: start TLS on this connection, then kl_engine_tls_done().
                               ev.early 1 (full pipelining): send the ClientHello now,
                               right behind <starttls/>, but keep giving received bytes
                               to the engine: a second KL_EV_START_TLS (early 0) comes
                               at <proceed/> with ev.tls_data, the bytes after it, which
                               are TLS records for the handshake already under way. */
    KL_EV_ONLINE,           /* resource bound; ev.jid is the full JID (s2s: authenticated,
                               ev.jid our domain; ev.bidi 0 means the peer offered no
                               bidi: we can send but will not receive on this stream) */
    KL_EV_STANZA,           /* a whole stanza: ev.stanza */
    KL_EV_STANZA_BEGIN,     /* a stanza larger than KL_RX_BUF_SIZE starts: ev.stanza (start tag only) */
    KL_EV_TOKEN,            /* ... one token inside it: ev.token */
    KL_EV_STANZA_END,       /* ... it ended */
    KL_EV_IQ_RESULT,        /* answer (result or error) to kl_send_iq: ev.iq_id, ev.stanza */
    KL_EV_IQ_TIMEOUT,       /* no answer in time: ev.iq_id */
    KL_EV_STANZA_DROPPED,   /* an inbound stanza broke a bound (ev.status: KL_ERR_XML_DEPTH,
                               _STACK, _NAME_TOO_LONG, _ATTR_TOO_LONG, _ATTRS, KL_ERR_RX_FULL)
                               and was skipped to its end; the stream goes on. An IQ get/set
                               whose start tag was still at hand was answered with
                               policy-violation. After KL_EV_STANZA_BEGIN it replaces
                               KL_EV_STANZA_END: the application answers such a request. */
    KL_EV_CLOSED,           /* stream closed; ev.status KL_OK if we closed, else why */
    KL_EV_ERROR,            /* fatal: ev.status, ev.condition; the port closes the connection */
    KL_EV_RESUMED,          /* XEP-0198: the previous session was resumed (ev.jid; ev.seq the
                               server's h); what the server had not acknowledged is sent
                               again first. Online again (instead of KL_EV_ONLINE). */
    KL_EV_ACKED,            /* XEP-0198: the server acknowledged our stanzas up to ev.seq */
    KL_EV_UNACKED,          /* XEP-0198: resumption failed and a new session was bound; one
                               stanza the old session never acknowledged is handed back:
                               ev.seq, ev.stanza (a view; .raw its bytes). Send it again
                               from the event, or not. KL_EV_ONLINE follows the last. */
    KL_EV_LINK_DOWN         /* connection manager: the connection was lost (ev.status,
                               ev.condition); the next attempt starts in ev.retry_ms.
                               Stream-management state is kept for resumption. */
} kl_event_type_t;

/* A view of one stanza in the receive buffer. Slices are raw (attribute
 * values undecoded: use kl_xml_decode / kl_xml_decoded_eq). */
typedef struct kl_stanza {
    kl_slice_t raw;     /* the stanza's bytes (KL_EV_STANZA_BEGIN: the start tag only) */
    kl_slice_t name;    /* local name: "message", "presence", "iq", … */
    kl_slice_t ns;      /* resolved namespace ("jabber:client") */
    kl_slice_t attrs;   /* raw attributes of the stanza element */
    kl_slice_t from, to, id, type; /* raw attribute values; len 0 if absent */
} kl_stanza_t;

typedef struct kl_event {
    kl_event_type_t type;
    int status;                 /* KL_EV_ERROR / KL_EV_CLOSED */
    const char *condition;      /* stream error or SASL condition, "" if none */
    const char *jid;            /* KL_EV_ONLINE: bound full JID */
    uint16_t iq_id;             /* KL_EV_IQ_RESULT / KL_EV_IQ_TIMEOUT */
    uint8_t bidi;               /* KL_EV_ONLINE in s2s mode: the stream is bidirectional */
    uint8_t early;              /* KL_EV_START_TLS: see there */
    kl_slice_t tls_data;        /* KL_EV_START_TLS at <proceed/> after an early start */
    uint32_t seq;               /* KL_EV_ACKED / KL_EV_UNACKED: outbound stanza number */
    uint32_t retry_ms;          /* KL_EV_LINK_DOWN */
    kl_stanza_t stanza;
    kl_xml_token_t token;       /* KL_EV_TOKEN */
} kl_event_t;

/* Counters. Round trips are counted up to online: the engine counts each
 * negotiation flight it must wait on; the port adds the waits it sees
 * (TCP connect, TLS handshake) with kl_stats_add_port_rt(). */
typedef struct kl_stats {
    uint32_t round_trips;       /* engine_round_trips + port_round_trips, frozen at online */
    uint32_t engine_round_trips;
    uint32_t port_round_trips;
    uint32_t flights_out;       /* flights sent up to online */
    uint32_t flights_total;     /* flights sent in all */
    uint32_t bytes_out;         /* XML bytes queued by the engine (plaintext) */
    uint32_t bytes_in;          /* XML bytes received by the engine (plaintext) */
    uint32_t bytes_out_online;  /* bytes_out when online was reached */
    uint32_t bytes_in_online;
    uint32_t online_ms;         /* from kl_client_connect() to the bind result */
    uint32_t stanzas_in, stanzas_out;
    uint32_t stanzas_dropped;   /* inbound stanzas skipped for breaking a bound */
    uint32_t iq_unmatched;      /* IQ results/errors that answered none of our requests
                                   (wrong id or wrong sender): delivered as plain stanzas */
    uint32_t keepalives_sent;   /* keepalive probes (<r/> or ping) */
    /* XEP-0198, on this connection */
    uint32_t sm_acked;          /* our stanzas the server acknowledged */
    uint32_t sm_resent;         /* stanzas sent again after a resumption */
    uint32_t sm_unacked_handed_back; /* KL_EV_UNACKED events */
    uint32_t sm_acks_ignored;   /* <a h/> that went backwards (ignored) */
    uint32_t sm_acks_requested; /* <r/> sent (keepalive ones included) */
    uint32_t sm_acks_sent;      /* <a/> sent (one answers any number of <r/>) */
#if KL_ENABLE_SASL2
    /* SASL2, on this connection */
    uint8_t sasl2;              /* authenticated with SASL2 (no stream restart) */
    uint8_t bind2;              /* bound inline (Bind2) */
    uint8_t fast;               /* authenticated with a FAST token */
    uint8_t fast_token_new;     /* the server gave a (new) token, kept in the hints */
    uint8_t fast_refused;       /* a token was refused (and forgotten) on this connection */
    uint8_t inline_resumed;     /* stream management resumed inside <authenticate/> */
    uint8_t channel_bound;      /* SCRAM-*-PLUS: bound to the TLS channel */
#endif
} kl_stats_t;

/* An IQ request in flight: the id on the wire is random; the application
 * sees a small handle. The answer must come from the JID it was sent to. */
#define KL_IQ_ID_LEN 12 /* 72 random bits, base64 */
typedef struct kl_pending_iq {
    uint16_t handle;            /* 0: free */
    char id[KL_IQ_ID_LEN + 1];
    char to[KL_JID_MAX];        /* "" for the account itself */
    uint32_t deadline;
} kl_pending_iq_t;

/* XEP-0198 state (private; see kl_sm_info()). The session part survives
 * kl_client_connect(): a lost link is resumed from it. */
typedef struct kl_sm {
    /* the stream-management session, kept across connections */
    uint32_t h_in;              /* inbound stanzas handled (our h) */
    uint32_t out;               /* sequence number of the last stanza sent */
    uint32_t acked;             /* the server's last h: stanzas it handled */
    uint32_t max_s;             /* <enabled max=''/> in seconds, 0 if not given */
    size_t head, tail;          /* the queue: records in cfg.sm_queue[head, tail) */
    size_t records;             /* how many */
    uint8_t resumable;          /* <enabled resume='true'/> with an id that fits */
    char id[KL_SM_ID_MAX + 1];
    char location[KL_SM_LOCATION_MAX + 1];
    /* this connection (reset by kl_client_connect) */
    uint8_t on;                 /* 0 off, 1 <enable/> sent, 2 enabled (counting both ways) */
    uint8_t resuming;           /* <resume/> sent on this connection */
    uint8_t a_owed;             /* an <a/> answers the latest <r/> (at most one pending) */
    uint8_t r_owed;             /* an <r/> is due */
    uint8_t r_out;              /* an <r/> was sent and no <a/> came since */
    uint8_t unreq;              /* stanzas sent since the last <r/> */
    uint8_t online_owed;        /* KL_EV_ONLINE follows the KL_EV_UNACKED hand-back */
    uint8_t resending;          /* after <resumed/>: records from `resend` go out again */
    size_t resend;
    size_t handback;            /* records at the head still to hand back (set when a new
                                   session is bound; KL_EV_UNACKED at online) */
    uint32_t t_sent;            /* when the last stanza was sent */
    uint32_t t_unacked;         /* since when stanzas have been unacknowledged */
    uint32_t t_r;               /* when the last <r/> was sent */
#if KL_ENABLE_APP
    uint8_t lost_owed;          /* a long stanza the resumed session cannot send again */
    uint32_t lost_seq;
#endif
} kl_sm_t;

/* The whole client. Fields are private: only sizeof() is public. Outside
 * core/ every member's name is mangled (KL_PRIVATE), so a port or an
 * application that reaches into kl_client_t does not compile; core/'s
 * sources define KL_CORE_BUILD before including this header. The public
 * calls (kl_client_stats, kl_client_jid, kl_client_domain, kl_sm_info, ...)
 * are the way in. */
#ifdef KL_CORE_BUILD
#define KL_PRIVATE(name) name
#else
#define KL_PRIVATE(name) kl_private_##name
#endif
typedef struct kl_client {
    /* Reset by kl_client_connect. The small hot fields come first: on
     * Thumb-2 short offsets keep the engine's code small. */
    uint8_t KL_PRIVATE(state);
    uint8_t KL_PRIVATE(mechs);              /* SASL mechanisms offered (bitmask) */
    uint16_t KL_PRIVATE(flags);
    uint16_t KL_PRIVATE(feat);              /* features of the current stream (bitmask) */
    uint8_t KL_PRIVATE(streaming);          /* large-stanza mode: 0, replay, live */
    uint8_t KL_PRIVATE(flight_open);
    uint8_t KL_PRIVATE(stanza_kind);        /* what the open top-level element is */
    uint8_t KL_PRIVATE(sasl_mech);          /* mechanism of the <auth/> in flight */
    uint8_t KL_PRIVATE(bidi);               /* s2s: peer offered bidi and we requested it */
    uint8_t KL_PRIVATE(early_reported);     /* full: the early KL_EV_START_TLS was given */
    uint8_t KL_PRIVATE(mechs_failed);       /* mechanisms refused on this connection */
    uint8_t KL_PRIVATE(ka_probe);           /* online: a keepalive probe is out, `deadline` is T2's */
#if KL_ENABLE_SASL2
    uint8_t KL_PRIVATE(s2);                 /* SASL2 on this connection (S2_* bits) */
#endif
#if KL_ENABLE_APP
    uint8_t KL_PRIVATE(long_out);           /* a long stanza is being written (kl_send_message_begin) */
    uint8_t KL_PRIVATE(iq_slot);            /* kl_iq_begin: the pending slot + 1, 0 none */
    uint8_t KL_PRIVATE(framed);             /* BOSH / WebSocket: no long stanzas (set by the manager) */
#endif
    uint16_t KL_PRIVATE(next_iq_id);
    uint16_t KL_PRIVATE(roster_iq);         /* id of the roster get in flight (roster versioning) */
    uint16_t KL_PRIVATE(disco_iq);          /* id of the server disco#info get in flight */
    int KL_PRIVATE(final_status);
    uint32_t KL_PRIVATE(now);
    uint32_t KL_PRIVATE(t_connect);
    uint32_t KL_PRIVATE(deadline);          /* negotiation timeout; online: the dead-peer timeout */
    uint32_t KL_PRIVATE(last_io);           /* online: when anything was last received */
    uint32_t KL_PRIVATE(last_tx);           /* online: when anything was last sent */
    size_t KL_PRIVATE(rx_len), KL_PRIVATE(rx_pos), KL_PRIVATE(scan), KL_PRIVATE(stanza_start);
    size_t KL_PRIVATE(tx_len), KL_PRIVATE(tx_sent);
    /* Kept across connections (set by kl_client_init). */
    kl_client_config_t KL_PRIVATE(cfg);
    uint16_t KL_PRIVATE(bare_len);          /* length of the bare JID in cfg.jid */
    uint16_t KL_PRIVATE(local_len);         /* length of its localpart */
    char KL_PRIVATE(domain)[KL_JID_MAX];
#if KL_ENABLE_APP
    struct kl_app *KL_PRIVATE(app);         /* kl_app_attach(): disco identity, caps */
#endif
#if KL_ENABLE_SASL2
    uint8_t KL_PRIVATE(cb_len);             /* tls-exporter data of this connection (RFC 9266) */
    uint8_t KL_PRIVATE(cb)[KL_CB_MAX];
#endif
#if KL_ENABLE_SM
    kl_sm_t KL_PRIVATE(sm);                 /* kept for resumption; its per-connection part is reset */
#endif
    /* Reset by kl_client_connect, from here to the end (the bound JID is
     * kept while a stream-management session can be resumed). */
    char KL_PRIVATE(jid)[KL_JID_MAX];       /* bound full JID */
    uint8_t KL_PRIVATE(scram_cnonce)[24];   /* SCRAM client nonce (printable) */
    uint8_t KL_PRIVATE(scram_sig)[KL_HASH_MAX]; /* expected ServerSignature */
#if KL_ENABLE_SASL2 && KL_ENABLE_SCRAM
    /* XEP-0474: what the server advertised, as SSDP hashes it (the sorted
     * mechanisms, 0x1E between them, 0x1F, the sorted channel-binding
     * types); ssdp_len 0xff: too long to keep, not checked */
    uint8_t KL_PRIVATE(ssdp_len);
    char KL_PRIVATE(ssdp)[KL_SSDP_MAX];
#endif
    kl_stats_t KL_PRIVATE(stats);
    kl_pending_iq_t KL_PRIVATE(iq)[KL_MAX_PENDING_IQ];
    char KL_PRIVATE(condition)[KL_CONDITION_MAX];
    kl_xml_t KL_PRIVATE(xml);               /* the stream's tokenizer */
    kl_xml_t KL_PRIVATE(root);              /* snapshot at the stream header: context for views */
    kl_xml_t KL_PRIVATE(vx);                /* tokenizer for the current view / large-stanza replay */
    uint8_t KL_PRIVATE(rx)[KL_RX_BUF_SIZE];
    uint8_t KL_PRIVATE(tx)[KL_TX_BUF_SIZE];
} kl_client_t;

/* ---- lifecycle ------------------------------------------------------ */

/* Validate cfg and reset c. KL_ERR_ARG for a missing/invalid JID,
 * KL_ERR_JID_TOO_LONG if it does not fit. */
int kl_client_init(kl_client_t *c, const kl_client_config_t *cfg);

/* What the port has under the stream when it starts. */
typedef enum kl_channel {
    KL_CHANNEL_STARTTLS = 0,     /* plain TCP: the stream negotiates STARTTLS */
    KL_CHANNEL_CLEAR = 1,        /* no TLS and none to come (BOSH over http://): a
                                    credential leaves only with cfg.allow_plaintext */
    KL_CHANNEL_TLS = 2,          /* TLS is up (direct TLS, https), certificate NOT verified:
                                    a credential leaves only with cfg.allow_plaintext */
    KL_CHANNEL_TLS_VERIFIED = 3  /* TLS is up, chain and name verified by the port */
} kl_channel_t;

/* The connection is up: start a new stream session from scratch over
 * `channel`. Queues the first flight. The engine never assumes a channel
 * is verified: the port says so here or in kl_engine_tls_done(). */
int kl_client_connect(kl_client_t *c, uint32_t now_ms, kl_channel_t channel);

/* The port finished the TLS handshake asked for by KL_EV_START_TLS.
 * verified: 1 if the chain and name were verified. Without it no
 * credential leaves (KL_ERR_UNVERIFIED) unless cfg.allow_plaintext. */
int kl_engine_tls_done(kl_client_t *c, int verified);

/* Process buffered input and timers. Returns 1 and fills ev when there is
 * an event, 0 (ev->type KL_EV_NONE) when it needs input, output space or
 * time. After KL_EV_ERROR or KL_EV_CLOSED it keeps returning 0. */
int kl_engine_poll(kl_client_t *c, uint32_t now_ms, kl_event_t *ev);

/* Milliseconds until the engine wants kl_engine_poll() for a timer, or
 * UINT32_MAX if none. */
uint32_t kl_engine_next_timeout(const kl_client_t *c, uint32_t now_ms);

/* ---- bytes in ------------------------------------------------------- */

/* Free space at the end of the receive buffer (compacting it first).
 * *cap is 0 when the engine cannot take input now (poll first, or TLS is
 * being started). Write up to *cap bytes there, then ack. */
uint8_t *kl_engine_input_buf(kl_client_t *c, size_t *cap);
void kl_engine_input_ack(kl_client_t *c, size_t n);
/* Copying convenience: returns how many bytes were taken. */
size_t kl_engine_input(kl_client_t *c, const uint8_t *data, size_t len);

/* ---- bytes out ------------------------------------------------------ */

/* Bytes waiting to be sent (a whole flight), *len 0 if none. */
const uint8_t *kl_engine_output(kl_client_t *c, size_t *len);
void kl_engine_output_ack(kl_client_t *c, size_t n);

/* ---- stanzas -------------------------------------------------------- */

/* Send a message; type may be NULL (defaults to "chat"); body is UTF-8.
 * KL_ERR_NOT_ONLINE before online; KL_ERR_TX_FULL if it does not fit now
 * (nothing is queued then). */
int kl_send_message(kl_client_t *c, const char *to, const char *type, const char *body);
/* The same with an explicit from (s2s: a JID of our domain; anything else is
 * KL_ERR_FROM_DOMAIN and nothing is sent). In s2s mode kl_send_message uses
 * our domain as from. Every stanza, also one built with kl_stanza_begin(),
 * is checked at kl_stanza_commit(). */
int kl_send_message_from(kl_client_t *c, const char *from, const char *to, const char *type, const char *body);
/* Presence; all may be NULL (available, broadcast). */
int kl_send_presence(kl_client_t *c, const char *to, const char *type, const char *status);
/* IQ request with a child payload (well-formed XML, caller vouches).
 * *id_out receives the id reported in KL_EV_IQ_RESULT / KL_EV_IQ_TIMEOUT.
 * timeout_ms 0 = cfg.iq_timeout_ms, counted from the time given to the
 * last kl_engine_poll(). */
int kl_send_iq(kl_client_t *c, const char *to, const char *type, const char *payload_xml,
               uint32_t timeout_ms, uint16_t *id_out);
#if KL_ENABLE_APP
/* Build an IQ request with the XML writer: kl_iq_begin() writes
 * <iq type id to> (to may be NULL: the account) and leaves the start tag
 * open for the payload; kl_iq_commit() closes it, queues it and fills
 * *id_out as kl_send_iq() does. A begin without a commit is forgotten at
 * the next begin. Errors as kl_send_iq(). */
int kl_iq_begin(kl_client_t *c, kl_xw_t *w, const char *to, const char *type);
int kl_iq_commit(kl_client_t *c, kl_xw_t *w, uint32_t timeout_ms, uint16_t *id_out);
#endif
/* Roster get (RFC 6121), with the cached roster version (XEP-0237) when the
 * server supports versioning; the result's new version is stored in the
 * cache. An empty result means the roster did not change since that
 * version. */
int kl_send_roster_get(kl_client_t *c, uint16_t *id_out);
/* The server's features from its disco#info (KL_SERVER_* in kl_cache.h).
 * Returns 1 and fills *features when the hints hold them for the caps ver
 * the server announced in this session's stream features (XEP-0115: the
 * same ver stands for the same disco#info, so no query is needed); 0 when
 * unknown or stale: then kl_send_server_disco() asks, and its
 * KL_EV_IQ_RESULT updates the hints. */
int kl_server_features(const kl_client_t *c, uint16_t *features);
int kl_send_server_disco(kl_client_t *c, uint16_t *id_out);
/* Build any stanza with the XML writer directly in the transmit buffer:
 * kl_stanza_begin() gives a writer over the free space; kl_stanza_commit()
 * queues what was written if the writer reports no error. */
int kl_stanza_begin(kl_client_t *c, kl_xw_t *w);
int kl_stanza_commit(kl_client_t *c, const kl_xw_t *w);

/* Close the stream (</stream:stream>); KL_EV_CLOSED follows when the peer
 * closes its side. */
int kl_client_close(kl_client_t *c);

/* ---- stream management (XEP-0198, KL_ENABLE_SM) -------------------------
 *
 * With cfg.sm_queue set and the server offering urn:xmpp:sm:3 after
 * authentication, the engine enables stream management with resumption
 * right behind the bind request when the hints say the server offers it
 * (same flight), else right after the bind result; <failed/> to that just
 * leaves it off. Then every stanza sent (kl_send_*, kl_stanza_commit, the
 * engine's own answers and initial presence) gets the next sequence number
 * and is kept in cfg.sm_queue until the server acknowledges it
 * (KL_EV_ACKED, ev.seq = the server's new h); the engine answers the
 * server's <r/> and asks for acks as cfg.sm_ack_* say. One commit must hold
 * exactly one stanza (message, presence or iq), else KL_ERR_ARG.
 *
 * The state survives kl_client_connect(): after a lost link the next
 * connect logs in and sends <resume/> where the bind request would go
 * (same flight under safe pipelining). <resumed/>: what the server did not
 * acknowledge is sent again in order (kl_send_* return KL_ERR_TX_FULL until
 * that is done) and KL_EV_RESUMED (ev.jid the session's JID) comes instead
 * of KL_EV_ONLINE; initial presence is not sent again. <failed/> (or no
 * resumption possible): a new session is bound and stream management
 * enabled again, then every stanza the old session never got acknowledged
 * comes back as one KL_EV_UNACKED (ev.seq, ev.stanza.raw its bytes; the
 * engine's own automatic answers and presence are not handed back) before
 * KL_EV_ONLINE; the application may send it again from that event.
 *
 * kl_client_close() ends the session: nothing is resumed after it, and once
 * the server has closed its side too (KL_EV_CLOSED) nothing is kept. */

/* Sequence number of the last stanza sent under stream management (the one
 * kl_send_* just queued), 0 if none. Numbers start at 1 with each session
 * and wrap from 2^32-1 to 0 (XEP-0198). */
uint32_t kl_sm_last_seq(const kl_client_t *c);

typedef struct kl_sm_info {
    uint8_t enabled;            /* on this stream: counting and acking */
    uint8_t resumable;          /* a lost link can be resumed (the server allowed it) */
    const char *id;             /* the SM-ID, "" if none */
    const char *location;       /* <enabled location=''/>: where the server prefers the
                                   client to reconnect, "" if none */
    uint32_t max_s;             /* the server's resumption window in seconds, 0 unknown */
    uint32_t h_in;              /* stanzas we handled */
    uint32_t last_seq;          /* kl_sm_last_seq() */
    uint32_t acked;             /* the server's last h */
    size_t unacked;             /* stanzas kept in the queue */
    size_t queue_used;          /* bytes of cfg.sm_queue in use */
} kl_sm_info_t;

/* Fills *info (zeroes when compiled out); KL_ERR_ARG for NULL. */
int kl_sm_info(const kl_client_t *c, kl_sm_info_t *info);

/* Forget the stream-management session: queue, counters, resumption (e.g.
 * for a deliberate logout; the stanzas in the queue are dropped without a
 * KL_EV_UNACKED). On a live stream the engine stops counting; the server
 * keeps its side until the stream ends, so call it after kl_client_close()
 * or once the connection is gone. */
void kl_sm_reset(kl_client_t *c);

/* Send <a h/> now (unasked): the server learns what this side handled. A
 * program that leaves without logging out calls it (and lets it go out)
 * first, so that what it handled is not delivered again when the session
 * is resumed; kl_client_close() does it by itself. KL_OK, KL_ERR_TX_FULL
 * (sent at the next poll), KL_ERR_STATE when stream management is not on. */
int kl_sm_ack_now(kl_client_t *c);

/* Persist the stream-management session across a reboot: a versioned blob
 * with the SM-ID, both counters, resume/max/location, the bound JID and
 * the unacknowledged stanzas, authenticated with HMAC-SHA-256
 * (crypto->hmac) under the device key the hints use (key_len
 * KL_CACHE_KEY_LEN). It holds the stanzas' bytes: store it as privately as
 * the hints. kl_sm_save writes at most cap bytes and sets *len:
 * KL_ERR_TOO_LARGE if it does not fit (KL_SM_BLOB_MAX(queue size) always
 * does), KL_ERR_CACHE_NO_KEY without crypto->hmac or key, KL_ERR_STATE
 * from a new bind request until the old session's stanzas were handed
 * back (KL_EV_ONLINE). Save when nothing is
 * in flight for the freshest state (e.g. after KL_EV_ACKED, or when the
 * link is gone); a blob is only as current as its last save.
 *
 * kl_sm_load, after kl_client_init() and before kl_client_connect() (the
 * connect then resumes): KL_OK, or KL_ERR_SM_STATE when the MAC or the
 * format does not check out, the blob is from another build, or its queue
 * does not fit cfg.sm_queue — the client is then left without stream
 * management state and a new session is bound; KL_ERR_CACHE_NO_KEY without
 * a key (state left empty), KL_ERR_ARG for NULL, KL_ERR_STATE once
 * connected. */
#define KL_SM_BLOB_MAGIC 0x4D534B4Cu /* "LKSM" little-endian */
#define KL_SM_BLOB_VERSION 1u
#define KL_SM_BLOB_MAX(queue_size) (68u + KL_SM_ID_MAX + KL_SM_LOCATION_MAX + KL_JID_MAX + (queue_size))
int kl_sm_save(const kl_client_t *c, const kl_crypto_t *crypto, const uint8_t *key, size_t key_len,
               uint8_t *out, size_t cap, size_t *len);
int kl_sm_load(kl_client_t *c, const kl_crypto_t *crypto, const uint8_t *key, size_t key_len,
               const uint8_t *blob, size_t len);

/* ---- reading stanzas ---------------------------------------------------- */

/* A cursor walks the tokens of a stanza view (its start tag first). */
typedef struct kl_cursor {
    kl_xml_t x;
    kl_slice_t raw;
    size_t pos;
} kl_cursor_t;

void kl_cursor_init(kl_cursor_t *cur, const kl_client_t *c, const kl_stanza_t *st);
/* Next token: 1 with tok filled, 0 at the end, < 0 on error. */
int kl_cursor_next(kl_cursor_t *cur, kl_xml_token_t *tok);

/* Decoded text of the first direct child element `local` (any namespace if
 * ns is NULL) of the stanza, into out (NUL-terminated). Returns its length,
 * KL_ERR_ARG if there is no such child, KL_ERR_TOO_LARGE if it does not fit. */
int kl_stanza_child_text(const kl_client_t *c, const kl_stanza_t *st, const char *local,
                         const char *ns, char *out, size_t cap);

/* ---- misc --------------------------------------------------------------- */

const kl_stats_t *kl_client_stats(const kl_client_t *c);
void kl_stats_add_port_rt(kl_client_t *c, uint32_t n);
/* Bound full JID ("" before online). */
const char *kl_client_jid(const kl_client_t *c);
/* Server domain (from the configured JID). */
const char *kl_client_domain(const kl_client_t *c);
int kl_client_is_online(const kl_client_t *c);
/* 1 when the engine's parser waits for the peer's stream header (at the
 * start and after each restart). HTTP framings (BOSH) that carry no stream
 * header feed a synthetic one then. */
int kl_engine_awaiting_header(const kl_client_t *c);
/* 1 if this connection uses XEP-0305 full flights. */
int kl_client_full_pipelining(const kl_client_t *c);
/* SASL mechanism used (or being used): "PLAIN", "SCRAM-SHA-256", … or "". */
const char *kl_client_sasl_mechanism(const kl_client_t *c);

/* The port's channel-binding data for the connection it is about to start
 * the stream on (RFC 9266 tls-exporter: 32 bytes exported with the label
 * "EXPORTER-Channel-Binding" and no context, after a TLS 1.3 handshake),
 * given before kl_client_connect() (direct TLS) or kl_engine_tls_done()
 * (STARTTLS); len 0 (or data NULL) when there is none, e.g. TLS 1.2 or
 * no TLS. It stays until replaced: give it (or 0) for every connection.
 * KL_OK, KL_ERR_ARG (len > KL_CB_MAX). Without it SCRAM-*-PLUS is not
 * used. */
int kl_client_set_channel_binding(kl_client_t *c, const uint8_t *data, size_t len);

#endif
