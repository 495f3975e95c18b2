/* kinglet — the connection-hints cache (XEP-0305 §2: cache what you can).
 *
 * One fixed-size, versioned blob that the application persists (a file on
 * POSIX, a flash/NVS record on a device) and hands back at the next
 * connect through kl_client_config_t.cache. The engine reads it at
 * kl_client_connect() and updates it as it learns (stream features at each
 * stage, SASL mechanisms, the pipelining feature, the caps hash, the roster
 * version); the port stores the TLS session and the SRV result in it.
 *
 * A blob that is not for this build (magic, version, size), not for this
 * domain, or whose checksum does not match is ignored and reset, never
 * trusted. A feature that disappears invalidates what depended on it.
 * Call kl_cache_seal() before persisting (the engine seals what it writes).
 */
#ifndef KINGLET_KL_CACHE_H
#define KINGLET_KL_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "kl_config_defaults.h"

#define KL_CACHE_MAGIC 0x314B4C4Bu /* "KLK1" little-endian */
#define KL_CACHE_VERSION 1u

/* kl_cache_t.flags */
#define KL_CACHE_PIPELINING 0x01u  /* server advertised urn:xmpp:features:pipelining */
#define KL_CACHE_DIRECT_TLS 0x02u  /* direct TLS (XEP-0368) worked */
#define KL_CACHE_FULL_FAILED 0x04u /* a full-pipelined login failed: use safe */
#define KL_CACHE_ROSTERVER 0x08u   /* server supports roster versioning */

/* kl_cache_t.bosh_path */
#define KL_CACHE_BOSH_UNKNOWN 0u
#define KL_CACHE_BOSH_ALL 1u   /* auth + restart + bind in the creation body (Prosody) */
#define KL_CACHE_BOSH_SPLIT 2u /* auth in the creation body, restart and bind after (ejabberd) */

/* kl_cache_t.disco_features: what the server's disco#info announced */
#define KL_SERVER_CARBONS 0x0001u  /* urn:xmpp:carbons:2 */
#define KL_SERVER_MAM 0x0002u      /* urn:xmpp:mam:2 */
#define KL_SERVER_BLOCKING 0x0004u /* urn:xmpp:blocking */
#define KL_SERVER_PING 0x0008u     /* urn:xmpp:ping */
#define KL_SERVER_PUSH 0x0010u     /* urn:xmpp:push:0 */
#define KL_SERVER_VERSION 0x0020u  /* jabber:iq:version */

/* kl_cache_t.known: which stages' features are recorded */
#define KL_CACHE_KNOWN_PRE_TLS 0x01u
#define KL_CACHE_KNOWN_POST_TLS 0x02u
#define KL_CACHE_KNOWN_POST_AUTH 0x04u

typedef struct kl_cache {
    uint32_t magic;
    uint16_t version;
    uint16_t size;                /* sizeof(kl_cache_t) of the build that wrote it */
    uint32_t checksum;            /* over everything after this field */
    char domain[KL_JID_MAX];
    uint8_t known;
    uint8_t flags;
    uint16_t feat[3];             /* engine feature bits: pre-TLS, post-TLS, post-auth */
    uint8_t mechs;                /* SASL mechanisms offered after TLS */
    char caps_ver[KL_CACHE_CAPS_MAX];     /* XEP-0115 ver from stream features */
    char disco_ver[KL_CACHE_CAPS_MAX];    /* the caps ver the disco_features stand for */
    uint16_t disco_features;              /* KL_SERVER_* from the server's disco#info */
    char roster_ver[KL_CACHE_ROSTER_VER_MAX]; /* XEP-0237 */
    /* written by the port / application */
    char srv_host[KL_CACHE_HOST_MAX];
    uint16_t srv_port;
    uint8_t srv_direct_tls;
    uint32_t srv_expires;         /* application's wall clock, seconds */
    uint8_t bosh_path;            /* KL_CACHE_BOSH_*: what the connection manager takes */
    uint16_t tls_session_len;
    uint8_t tls_session[KL_CACHE_TLS_SESSION_MAX];
} kl_cache_t;

/* KL_OK if c holds a sealed blob of this build for `domain`;
 * KL_ERR_ARG otherwise (then the engine resets it). */
int kl_cache_check(const kl_cache_t *c, const char *domain);
/* Empty cache for domain. */
void kl_cache_reset(kl_cache_t *c, const char *domain);
/* Set magic, version, size and checksum. */
void kl_cache_seal(kl_cache_t *c);

#endif
