/* kinglet — the connection-hints cache (XEP-0305 §2: cache what you can).
 *
 * One fixed-size, versioned blob that the application persists (a file on
 * POSIX, a flash/NVS record on a device) and hands back at the next
 * connect through kl_client_config_t.cache. The engine reads it at
 * kl_client_connect() and updates it as it learns (stream features at each
 * stage, SASL mechanisms, the pipelining feature, the caps hash, the roster
 * version); the port stores the TLS session and the SRV result in it.
 *
 * The blob holds a TLS session (mbedTLS's saved session: the TLS 1.2 master
 * secret, the TLS 1.3 resumption secret), so it is a secret and its
 * integrity matters: a planted session for another server would be resumed
 * without a certificate. It is therefore authenticated with a device key
 * (HMAC-SHA-256 through the port's kl_crypto_t, KL_CACHE_KEY_LEN bytes that
 * the port provides and the blob never holds):
 *
 *   read KL_CACHE_BLOB_SIZE bytes into the cache (or nothing)
 *   kl_cache_load(&cache, domain, crypto, key, key_len)   after reading
 *   ... connect: the engine and the port use and update it ...
 *   kl_cache_store(&cache, crypto, key, key_len)           before persisting
 *   write KL_CACHE_BLOB_SIZE bytes, privately (a key-grade secret: 0600)
 *
 * kl_cache_load ignores a blob that fails authentication whole (reset: a
 * full handshake with the full certificate check follows) and one that is
 * not for this build or domain. Without a key the other hints are used but
 * no TLS session is ever taken from the blob or written into it. Ports take
 * the TLS session only through kl_cache_tls_session(), which hands it out
 * only from an object that went through kl_cache_load (or kl_cache_reset):
 * a blob copied into RAM some other way is never resumed from.
 *
 * kl_cache_check / kl_cache_seal are the engine's in-RAM integrity check
 * (a checksum, not authentication): a blob that is not for this build or
 * domain is reset at connect. A feature that disappears invalidates what
 * depended on it.
 */
#ifndef KINGLET_KL_CACHE_H
#define KINGLET_KL_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "kl_config_defaults.h"
#include "kl_crypto.h"
#include "kl_status.h"

#define KL_CACHE_MAGIC 0x314B4C4Bu /* "KLK1" little-endian */
#define KL_CACHE_VERSION 3u /* 2: HMAC-SHA-256 over the blob (kl_cache_load/_store); 3: SASL2, FAST */

/* The device key: HMAC-SHA-256, 32 bytes. */
#define KL_CACHE_KEY_LEN 32u
#define KL_CACHE_MAC_LEN 32u

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
    uint16_t size;                /* KL_CACHE_BLOB_SIZE of the build that wrote it */
    uint32_t checksum;            /* over everything after this field up to mac */
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
    /* SASL2 (XEP-0388): the <user-agent id> this device generated once (a
     * UUID, "" until then), and the FAST token (XEP-0484) the server gave:
     * its mechanism (internal bit, 0: none), expiry (Unix seconds, 0 not
     * said) and bytes. The token is a credential: like the TLS session it
     * is kept only in a blob authenticated with the device key, and the
     * engine takes it only from one that went through kl_cache_load. */
    char ua_id[KL_UA_ID_LEN + 1];
    uint8_t fast_mech;
    uint8_t fast_len;
    uint32_t fast_expiry;
    uint8_t fast_token[KL_CACHE_FAST_TOKEN_MAX];
    uint16_t tls_session_len;     /* read it with kl_cache_tls_session() */
    uint8_t tls_session[KL_CACHE_TLS_SESSION_MAX];
    /* HMAC-SHA-256(device key, "kinglet-hints" || every byte before mac),
     * written by kl_cache_store, verified by kl_cache_load */
    uint8_t mac[KL_CACHE_MAC_LEN];
    /* ---- RAM only: after the blob, never persisted, never read back ---- */
    const struct kl_cache *trust; /* internal: this object's own address once
                                   * kl_cache_load or kl_cache_reset ran on it
                                   * (a byte copy of the blob does not carry
                                   * it); the TLS session is honoured only then */
} kl_cache_t;

/* The bytes to persist and read back: the blob ends with mac. */
#define KL_CACHE_BLOB_SIZE (offsetof(kl_cache_t, mac) + KL_CACHE_MAC_LEN)

#if KL_ENABLE_CACHE

/* After reading the persisted blob into c (KL_CACHE_BLOB_SIZE bytes; any
 * content, or none: zeroes): check it and authenticate it with the device
 * key (key_len must be KL_CACHE_KEY_LEN; crypto->hmac computes the MAC, the
 * comparison is constant-time). Returns
 *   KL_OK                the blob is authentic, for this build and domain;
 *   KL_ERR_CACHE_AUTH    the MAC does not match (forged, tampered, written
 *                        with another key or without one): c is reset;
 *   KL_ERR_CACHE_FORMAT  not a blob of this build (magic, version, size,
 *                        checksum) or not for this domain: c is reset;
 *   KL_ERR_CACHE_NO_KEY  key or crypto NULL: the blob's other hints are kept
 *                        if it checks out (else reset), its secrets (TLS
 *                        session, FAST token) are dropped;
 *   KL_ERR_ARG           c or domain NULL, or key_len wrong (c reset if given).
 * A zeroed c (nothing was persisted yet) gives KL_ERR_CACHE_FORMAT: the
 * caller reports an ignored blob only when it read one. Whatever it
 * returns, c is then usable by the engine and the port. */
int kl_cache_load(kl_cache_t *c, const char *domain, const kl_crypto_t *crypto, const uint8_t *key,
                  size_t key_len);

/* Before persisting c: seal and MAC it with the device key. Without a key
 * (or if the MAC cannot be computed) the TLS session is dropped and the
 * rest is sealed without a MAC: KL_ERR_CACHE_NO_KEY (persisting it is
 * safe; the next kl_cache_load with a key ignores it). KL_ERR_STATE if c
 * never went through kl_cache_load or kl_cache_reset (its TLS session is
 * not vouched for: dropped, rest MACed). The bytes of tls_session past
 * tls_session_len are zeroed. Returns KL_OK when the whole blob is MACed. */
int kl_cache_store(kl_cache_t *c, const kl_crypto_t *crypto, const uint8_t *key, size_t key_len);

/* The TLS session to offer for `domain`, or NULL (*len = 0): only from an
 * object that went through kl_cache_load (or kl_cache_reset) and still
 * checks out for domain. The ports take the session only through this. */
const uint8_t *kl_cache_tls_session(const kl_cache_t *c, const char *domain, size_t *len);

/* KL_OK if c holds a sealed blob of this build for `domain` (checksum, not
 * authentication); KL_ERR_CACHE_FORMAT otherwise (then the engine resets
 * it), KL_ERR_ARG for NULL. */
int kl_cache_check(const kl_cache_t *c, const char *domain);
/* The FAST token to use for `domain` (XEP-0484), as kl_cache_tls_session
 * hands out the TLS session: only from an object that went through
 * kl_cache_load with a key (or kl_cache_reset). NULL if none; *mech is its
 * mechanism bit, *expiry its expiry (Unix seconds, 0 unknown). */
const uint8_t *kl_cache_fast_token(const kl_cache_t *c, const char *domain, size_t *len, uint8_t *mech,
                                   uint32_t *expiry);
/* Forget the FAST token (refused by the server, or invalidated). */
void kl_cache_drop_fast(kl_cache_t *c);
/* Empty cache for domain (and trusted: nothing in it). */
void kl_cache_reset(kl_cache_t *c, const char *domain);
/* Set magic, version, size and checksum (the engine, after each update). */
void kl_cache_seal(kl_cache_t *c);

#else /* KL_ENABLE_CACHE == 0: no hints; nothing to link */

static inline int kl_cache_load(kl_cache_t *c, const char *domain, const kl_crypto_t *crypto,
                                const uint8_t *key, size_t key_len)
{
    (void)c, (void)domain, (void)crypto, (void)key, (void)key_len;
    return KL_ERR_CACHE_FORMAT;
}
static inline int kl_cache_store(kl_cache_t *c, const kl_crypto_t *crypto, const uint8_t *key, size_t key_len)
{
    (void)c, (void)crypto, (void)key, (void)key_len;
    return KL_ERR_CACHE_FORMAT;
}
static inline const uint8_t *kl_cache_tls_session(const kl_cache_t *c, const char *domain, size_t *len)
{
    (void)c, (void)domain;
    if (len)
        *len = 0;
    return (const uint8_t *)0;
}
static inline int kl_cache_check(const kl_cache_t *c, const char *domain)
{
    (void)c, (void)domain;
    return KL_ERR_CACHE_FORMAT;
}
static inline void kl_cache_reset(kl_cache_t *c, const char *domain) { (void)c, (void)domain; }
static inline const uint8_t *kl_cache_fast_token(const kl_cache_t *c, const char *domain, size_t *len,
                                                 uint8_t *mech, uint32_t *expiry)
{
    (void)c, (void)domain, (void)mech, (void)expiry;
    if (len)
        *len = 0;
    return (const uint8_t *)0;
}
static inline void kl_cache_drop_fast(kl_cache_t *c) { (void)c; }
static inline void kl_cache_seal(kl_cache_t *c) { (void)c; }

#endif

#endif
