/* kinglet — compile-time configuration defaults.
 *
 * Put your overrides in kl_config.h on the include path and build with
 * -DKL_HAVE_CONFIG_H (like lwipopts.h over opt.h). Every option below has a
 * documented default; impossible combinations stop the build with #error.
 */
#ifndef KINGLET_KL_CONFIG_DEFAULTS_H
#define KINGLET_KL_CONFIG_DEFAULTS_H

#ifdef KL_HAVE_CONFIG_H
#include "kl_config.h"
#endif

/* Receive buffer, which is also the stanza buffer: a stanza that fits here
 * is delivered whole (KL_EV_STANZA); a larger one is delivered as
 * KL_EV_STANZA_BEGIN / KL_EV_TOKEN… / KL_EV_STANZA_END. A single XML token
 * (one start tag with all its attributes) must fit. */
#ifndef KL_RX_BUF_SIZE
#define KL_RX_BUF_SIZE 3072
#endif

/* Transmit buffer: one whole flight (stream header + command) and any
 * stanza the application sends must fit. */
#ifndef KL_TX_BUF_SIZE
#define KL_TX_BUF_SIZE 1536
#endif

/* Tokenizer: open-element names and namespace declarations live here. */
#ifndef KL_XML_STACK_SIZE
#define KL_XML_STACK_SIZE 512
#endif

/* Deepest element nesting accepted, the stream root counting as depth 1. */
#ifndef KL_XML_MAX_DEPTH
#define KL_XML_MAX_DEPTH 16
#endif

/* Longest element or attribute qualified name, in bytes. */
#ifndef KL_XML_MAX_NAME
#define KL_XML_MAX_NAME 64
#endif

/* Longest attribute value, raw bytes. */
#ifndef KL_XML_MAX_ATTR
#define KL_XML_MAX_ATTR 1024
#endif

/* Most attributes on one element (their duplicate check sorts a table of
 * this many entries on the C stack, 8 bytes each). */
#ifndef KL_XML_MAX_ATTRS
#define KL_XML_MAX_ATTRS 32
#endif

/* Longest JID the client stores (its own full JID, the server domain). */
#ifndef KL_JID_MAX
#define KL_JID_MAX 96
#endif

/* IQ requests the application may have outstanding at once. */
#ifndef KL_MAX_PENDING_IQ
#define KL_MAX_PENDING_IQ 4
#endif

/* Default IQ timeout and negotiation timeout. */
#ifndef KL_IQ_TIMEOUT_MS
#define KL_IQ_TIMEOUT_MS 15000u
#endif
#ifndef KL_NEGOTIATION_TIMEOUT_MS
#define KL_NEGOTIATION_TIMEOUT_MS 20000u
#endif

/* The connection manager's timeouts grow: after a TLS handshake or a
 * login timed out before online, the next attempt gets twice the time, up
 * to 2^KL_SESSION_TIMEOUT_GROWTH times (timeout_ms and
 * KL_NEGOTIATION_TIMEOUT_MS alike); online and kl_session_kick reset them.
 * A TCP connect timeout does not count (a node that drops SYNs is not
 * slow). A timeout in a login storm means a slow service, not a dead one:
 * with fixed timeouts the devices abandon logins the server has half done
 * and bring them back, and a storm larger than the service's rate times
 * the timeout may never drain. 0: fixed timeouts; at most 8. */
#ifndef KL_SESSION_TIMEOUT_GROWTH
#define KL_SESSION_TIMEOUT_GROWTH 2
#endif

/* Longest stream-error / SASL failure condition text kept for the event. */
#ifndef KL_CONDITION_MAX
#define KL_CONDITION_MAX 40
#endif

/* Highest SCRAM iteration count accepted from a server (PBKDF2 cost on a
 * small CPU: a hostile server must not make the device spin for minutes). */
#ifndef KL_SCRAM_MAX_ITERATIONS
#define KL_SCRAM_MAX_ITERATIONS 100000u
#endif

/* Connection-hints cache (kl_cache.h) field sizes. */
#ifndef KL_CACHE_CAPS_MAX
#define KL_CACHE_CAPS_MAX 48
#endif
#ifndef KL_CACHE_ROSTER_VER_MAX
#define KL_CACHE_ROSTER_VER_MAX 48
#endif
#ifndef KL_CACHE_HOST_MAX
#define KL_CACHE_HOST_MAX 64
#endif
/* A saved TLS session (mbedtls_ssl_session_save: ticket + peer data). */
#ifndef KL_CACHE_TLS_SESSION_MAX
#define KL_CACHE_TLS_SESSION_MAX 1024
#endif
/* A FAST token (XEP-0484) kept in the hints: a longer one the server
 * hands out is not kept (the password is used next time). Prosody's and
 * ejabberd's are well under it. */
#ifndef KL_CACHE_FAST_TOKEN_MAX
#define KL_CACHE_FAST_TOKEN_MAX 128
#endif
/* SASL2's <user-agent id> (XEP-0388): a UUID, 36 characters. */
#define KL_UA_ID_LEN 36

/* Features that can be left out of a small image (0 removes the code):
 * SCRAM-SHA-1/-256, server-to-server (XEP-0288), the connection-hints
 * cache (with roster versioning and caps), XEP-0305 full pipelining. The
 * minimal engine (PLAIN, bind, stanzas, safe pipelining) is what the
 * Cortex-M4 size budget counts. */
#ifndef KL_ENABLE_SCRAM
#define KL_ENABLE_SCRAM 1
#endif
#ifndef KL_ENABLE_S2S
#define KL_ENABLE_S2S 1
#endif
#ifndef KL_ENABLE_CACHE
#define KL_ENABLE_CACHE 1
#endif
#ifndef KL_ENABLE_FULL
#define KL_ENABLE_FULL 1
#endif
/* The RFC 3921 session establishment some old servers still require (RFC
 * 6121 dropped it; Prosody and ejabberd mark it optional). */
#ifndef KL_ENABLE_LEGACY_SESSION
#define KL_ENABLE_LEGACY_SESSION 1
#endif
/* SASL2 (XEP-0388) with Bind2 (XEP-0386), FAST tokens (XEP-0484), inline
 * stream-management resumption and SCRAM channel binding (XEP-0440,
 * tls-exporter): the three-round-trip login. Needs SCRAM's crypto hooks for
 * FAST (HMAC) and -PLUS. 0 removes it (RFC 6120 SASL and bind only). */
#ifndef KL_ENABLE_SASL2
#define KL_ENABLE_SASL2 1
#endif

/* XEP-0198 stream management: acks, the queue of unacknowledged stanzas
 * (in a buffer the application gives, kl_client_config_t.sm_queue),
 * resumption after a lost link, and kl_sm_save()/kl_sm_load() across a
 * reboot. 0 removes all of it (the minimal firmware profile). */
/* The application layer (kl_app.h): handlers, replies, stanzas of any
 * size in and out, disco identity + caps, subscriptions, roster pushes;
 * and under it PubSub/PEP, MUC and client state indication. */
#ifndef KL_ENABLE_APP
#define KL_ENABLE_APP 1
#endif
#ifndef KL_ENABLE_PUBSUB
#define KL_ENABLE_PUBSUB 1
#endif
#ifndef KL_ENABLE_MUC
#define KL_ENABLE_MUC 1
#endif
#ifndef KL_ENABLE_CSI
#define KL_ENABLE_CSI 1
#endif
/* they live in the application layer: without it they are off */
#if !KL_ENABLE_APP
#undef KL_ENABLE_PUBSUB
#define KL_ENABLE_PUBSUB 0
#undef KL_ENABLE_MUC
#define KL_ENABLE_MUC 0
#undef KL_ENABLE_CSI
#define KL_ENABLE_CSI 0
#endif
#ifndef KL_ENABLE_SM
#define KL_ENABLE_SM 1
#endif
/* Longest SM-ID (<enabled id=''/>) kept for resumption; a longer one
 * leaves the session without resumption (acks still work). Prosody's are
 * 36 bytes; ejabberd's encode the resource (base64 of about 25 bytes plus
 * the resource's), so a long resource makes them longer. */
#ifndef KL_SM_ID_MAX
#define KL_SM_ID_MAX 128
#endif
/* Longest <enabled location=''/> kept (the server's preferred address for
 * reconnecting, for the connection manager); a longer one is dropped. */
#ifndef KL_SM_LOCATION_MAX
#define KL_SM_LOCATION_MAX 64
#endif
/* When the engine asks the server for an ack (<r/>), defaults of
 * kl_client_config_t.sm_ack_every / sm_ack_ms / sm_ack_idle_ms: after this
 * many unacknowledged stanzas, once stanzas have been unacknowledged this
 * long, and when nothing more was sent for this long ("before going
 * idle": a burst is acknowledged as a whole, soon after it ends). */
#ifndef KL_SM_ACK_EVERY
#define KL_SM_ACK_EVERY 5u
#endif
#ifndef KL_SM_ACK_MS
#define KL_SM_ACK_MS 5000u
#endif
#ifndef KL_SM_ACK_IDLE_MS
#define KL_SM_ACK_IDLE_MS 200u
#endif

/* Keepalive and dead-peer detection, defaults of kl_client_config_t.
 * keepalive_ms / keepalive_timeout_ms: after KL_KEEPALIVE_MS with nothing
 * received and nothing sent while online the engine probes the server
 * (<r/> with stream management, else an XEP-0199 ping), and when nothing at
 * all arrives within KL_KEEPALIVE_TIMEOUT_MS after that it reports
 * KL_ERR_DEAD_PEER. 90 s stays under the idle timeouts that drop TCP flows
 * in practice (home routers and carrier-grade NATs from ~2 min, cloud load
 * balancers and NAT gateways at 4-6 min), so an idle device stays
 * reachable, and a dead link is noticed within two minutes; a server's
 * XEP-0478 <idle-seconds/> lowers it further (to half that). */
#ifndef KL_KEEPALIVE_MS
#define KL_KEEPALIVE_MS 90000u
#endif
#ifndef KL_KEEPALIVE_TIMEOUT_MS
#define KL_KEEPALIVE_TIMEOUT_MS 30000u
#endif

/* XEP-0478 stream limits: the engine reads <idle-seconds/> from the stream
 * features and keeps keepalives at half of it at most. 0 leaves it to
 * cfg.keepalive_ms (the minimal firmware profile: 150 bytes of code). */
#ifndef KL_ENABLE_STREAM_LIMITS
#define KL_ENABLE_STREAM_LIMITS 1
#endif

/* Invariant checks inside core/; compile out by default. */
#ifndef KL_ASSERT
#define KL_ASSERT(x) ((void)0)
#endif

/* DNS (core/kl_dns.c): SRV records kept per answer (the least preferred
 * are dropped beyond this), IPv4 addresses kept (A answers and SRV glue),
 * longest host name kept in text form (253 is DNS's own limit), and
 * compression pointers followed per name before KL_ERR_DNS_LOOP. */
#ifndef KL_DNS_MAX_SRV
#define KL_DNS_MAX_SRV 4
#endif
#ifndef KL_DNS_MAX_ADDR
#define KL_DNS_MAX_ADDR 4
#endif
#ifndef KL_DNS_NAME_MAX
#define KL_DNS_NAME_MAX 253
#endif
#ifndef KL_DNS_MAX_HOPS
#define KL_DNS_MAX_HOPS 16
#endif
#if KL_DNS_MAX_SRV < 1 || KL_DNS_MAX_SRV > 64
#error "KL_DNS_MAX_SRV must be 1..64"
#endif
#if KL_DNS_MAX_ADDR < 1 || KL_DNS_MAX_ADDR > 64
#error "KL_DNS_MAX_ADDR must be 1..64"
#endif
#if KL_DNS_NAME_MAX < 16 || KL_DNS_NAME_MAX > 253
#error "KL_DNS_NAME_MAX must be 16..253"
#endif

#if KL_CACHE_FAST_TOKEN_MAX > 255
#error "KL_CACHE_FAST_TOKEN_MAX must be at most 255 (the hints keep the token's length in a byte)"
#endif
#if KL_RX_BUF_SIZE < 512
#error "KL_RX_BUF_SIZE must be at least 512 (stream features must fit)"
#endif
#if KL_TX_BUF_SIZE < 512
#error "KL_TX_BUF_SIZE must be at least 512 (a stream header + <auth/> must fit)"
#endif
#if KL_XML_MAX_NAME > KL_XML_STACK_SIZE / 4
#error "KL_XML_STACK_SIZE is too small for KL_XML_MAX_NAME"
#endif
#if KL_XML_STACK_SIZE > 0xFFFF
#error "KL_XML_STACK_SIZE must be at most 65535 (the tokenizer keeps offsets into it in 16 bits)"
#endif
#if KL_XML_MAX_DEPTH < 4 || KL_XML_MAX_DEPTH > 255
#error "KL_XML_MAX_DEPTH must be 4..255"
#endif
#if KL_XML_MAX_ATTRS < 4 || KL_XML_MAX_ATTRS > 255
#error "KL_XML_MAX_ATTRS must be 4..255"
#endif
#if KL_SM_ID_MAX < 8 || KL_SM_ID_MAX > 255 || KL_SM_LOCATION_MAX < 8 || KL_SM_LOCATION_MAX > 255
#error "KL_SM_ID_MAX and KL_SM_LOCATION_MAX must be 8..255"
#endif
#if KL_ENABLE_SM && KL_TX_BUF_SIZE > 32767
#error "stream management keeps stanza lengths in 15 bits: KL_TX_BUF_SIZE must be at most 32767"
#endif
#if KL_SM_ACK_EVERY < 1 || KL_SM_ACK_EVERY > 255
#error "KL_SM_ACK_EVERY must be 1..255"
#endif
#if KL_XML_MAX_ATTR >= KL_RX_BUF_SIZE
#error "KL_XML_MAX_ATTR must be smaller than KL_RX_BUF_SIZE"
#endif

#endif
