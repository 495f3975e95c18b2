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

#if KL_RX_BUF_SIZE < 512
#error "KL_RX_BUF_SIZE must be at least 512 (stream features must fit)"
#endif
#if KL_TX_BUF_SIZE < 512
#error "KL_TX_BUF_SIZE must be at least 512 (a stream header + <auth/> must fit)"
#endif
#if KL_XML_MAX_NAME > KL_XML_STACK_SIZE / 4
#error "KL_XML_STACK_SIZE is too small for KL_XML_MAX_NAME"
#endif
#if KL_XML_MAX_DEPTH < 4 || KL_XML_MAX_DEPTH > 255
#error "KL_XML_MAX_DEPTH must be 4..255"
#endif
#if KL_XML_MAX_ATTRS < 4 || KL_XML_MAX_ATTRS > 255
#error "KL_XML_MAX_ATTRS must be 4..255"
#endif
#if KL_XML_MAX_ATTR >= KL_RX_BUF_SIZE
#error "KL_XML_MAX_ATTR must be smaller than KL_RX_BUF_SIZE"
#endif

#endif
