/* kinglet — helpers shared inside core/ (not public). */
#ifndef KINGLET_KL_INTERNAL_H
#define KINGLET_KL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kinglet/kl_xml.h"

/* One UTF-8 sequence at p (p < end, *p >= 0x80) that must encode an XML
 * Char (kl_xml.c): its length; 0 if the bytes so far are a valid but
 * incomplete prefix; -1 as soon as a byte makes it invalid. The tokenizer
 * and the writer share it. */
int kl_utf8_char(const uint8_t *p, const uint8_t *end, uint32_t *cp);

/* 1 if a[0..n) equals b[0..n), in a time that does not depend on where
 * they differ (MACs, signatures). */
static inline int kl_equal_ct(const uint8_t *a, const uint8_t *b, size_t n)
{
    volatile uint8_t d = 0;
    size_t i;
    for (i = 0; i < n; i++)
        d = (uint8_t)(d | (a[i] ^ b[i]));
    return d == 0;
}

/* Zero a secret (a key, a proof, a token) so that the compiler cannot
 * drop the stores as dead (a plain memset before a return may be). */
static inline void kl_wipe(void *p, size_t n)
{
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n--)
        *v++ = 0;
}

/* Streaming base64 encoder (RFC 4648) writing into an XML writer. */
typedef struct kl_b64 {
    kl_xw_t *w;
    uint8_t pend[3];
    uint8_t npend;
} kl_b64_t;

void kl_b64_init(kl_b64_t *b, kl_xw_t *w);
void kl_b64_feed(kl_b64_t *b, const uint8_t *data, size_t len);
void kl_b64_finish(kl_b64_t *b);

/* Decode base64 (no whitespace) into out; returns the length or a
 * negative kl_status_t (KL_ERR_PROTOCOL for bad input, KL_ERR_TOO_LARGE). */
int kl_b64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* The application layer (kl_app.c) and the engine's side of it. */
struct kl_client;
struct kl_app;
int kl_i_is_account(const struct kl_client *c, const char *jid);
int kl_i_is_s2s(const struct kl_client *c);
int kl_i_answer_begin(struct kl_client *c, kl_xw_t *w);
int kl_i_answer_commit(struct kl_client *c, kl_xw_t *w);
void kl_i_roster_ver(struct kl_client *c, const char *ver);
void kl_i_app_caps(const struct kl_app *a, kl_xw_t *w);
int kl_i_app_node(const struct kl_app *a, kl_slice_t node);
void kl_i_app_disco(const struct kl_app *a, kl_xw_t *w, kl_slice_t node);
int kl_i_app_busy(const struct kl_app *a);
void kl_i_set_framed(struct kl_client *c, int framed);
size_t kl_i_app_reserve(const struct kl_app *a);

/* SASL mechanisms (bitmask: offered, failed, in flight). */
enum {
    KL_MECH_PLAIN = 1u << 0,
    KL_MECH_SCRAM_SHA1 = 1u << 1,
    KL_MECH_SCRAM_SHA256 = 1u << 2,
    KL_MECH_EXTERNAL = 1u << 3,
    /* SCRAM with tls-exporter channel binding (RFC 9266, XEP-0440) */
    KL_MECH_SCRAM_SHA1_PLUS = 1u << 4,
    KL_MECH_SCRAM_SHA256_PLUS = 1u << 5,
    /* FAST's token mechanisms (XEP-0484): HT-SHA-256-NONE, -EXPR */
    KL_MECH_HT_NONE = 1u << 6,
    KL_MECH_HT_EXPR = 1u << 7
};
#define KL_MECH_SCRAM_ANY                                                                                        \
    (KL_MECH_SCRAM_SHA1 | KL_MECH_SCRAM_SHA256 | KL_MECH_SCRAM_SHA1_PLUS | KL_MECH_SCRAM_SHA256_PLUS)
#define KL_MECH_PLUS (KL_MECH_SCRAM_SHA1_PLUS | KL_MECH_SCRAM_SHA256_PLUS | KL_MECH_HT_EXPR)
#define KL_MECH_HT (KL_MECH_HT_NONE | KL_MECH_HT_EXPR)

#if defined(__GNUC__) || defined(__clang__)
#define KL_UNUSED __attribute__((unused))
#else
#define KL_UNUSED
#endif

/* Written once, inlined at each use (a helper the minimal build calls
 * once, where a call would cost more than the body). */
#if defined(__GNUC__) || defined(__clang__)
#define KL_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define KL_ALWAYS_INLINE inline
#endif

/* Out of line where a call is smaller than the inlined body at every use. */
#if defined(__GNUC__) || defined(__clang__)
#define KL_NOINLINE __attribute__((noinline))
#else
#define KL_NOINLINE
#endif

/* Output the engine keeps free for its own answers (ping, disco#info,
 * </stream:stream>): a stanza the application writes gets the rest. */
#define KL_TX_RESERVE 192u

struct kl_client;

/* XEP-0198's queue (kl_sm.c): records in cfg.sm_queue[sm.head, sm.tail),
 * each a 6-byte header (sequence number, little endian; length in 15 bits,
 * the top bit set for the engine's own stanzas: initial presence and
 * automatic answers, which are sent again after a resumption but never
 * handed back) and the stanza's bytes. */
#define KL_SM_REC_HDR 6u
/* kl_sm_t.on */
#define KL_SM_OFF 0u
#define KL_SM_REQUESTED 1u /* <enable/> sent: our stanzas are counted */
#define KL_SM_ON 2u        /* <enabled/> came: the server's are too */
#define KL_SM_REC_OWN 0x8000u
/* Append a record: KL_OK, KL_ERR_TX_FULL (no room now), KL_ERR_TOO_LARGE
 * (larger than the whole queue). Compacts the queue when the tail is out of
 * room. */
int kl_sm_push(struct kl_client *c, const uint8_t *p, size_t n, uint32_t seq, int own);
void kl_sm_unplace(struct kl_client *c, size_t off);
/* The record at offset off: its sequence number, bytes and length; returns
 * the offset of the next one. */
size_t kl_sm_rec(const struct kl_client *c, size_t off, uint32_t *seq, const uint8_t **p, size_t *n, int *own);
/* Drop the record at the head. */
void kl_sm_pop(struct kl_client *c);
/* Empty the queue. */
void kl_sm_clear(struct kl_client *c);

/* SCRAM (kl_scram.c), the base64 content of each message (the caller
 * writes the element around it, RFC 6120's or SASL2's): the client-first
 * message; the client-final answering a challenge (text is the challenge's
 * base64, decoded in place); the check of the server signature (text: the
 * base64 of the server-final message, decoded in place). The -PLUS
 * mechanisms bind to c->cb (tls-exporter). */
int kl_scram_start(struct kl_client *c, kl_xw_t *w, uint8_t mech);
int kl_scram_challenge(struct kl_client *c, uint8_t *text, size_t len, kl_xw_t *w);
int kl_scram_success(struct kl_client *c, uint8_t *text, size_t len);

/* SASL2 helpers (kl_sasl2.c). */
/* FAST's HT-SHA-256 initial response, base64: authcid NUL
 * HMAC-SHA-256(token, "Initiator" || cb); the Responder value the server
 * must prove is kept in c->scram_sig. */
int kl_ht_start(struct kl_client *c, kl_xw_t *w, uint8_t mech, const uint8_t *token, size_t len);
/* The server's proof in <additional-data> (base64, decoded in place). */
int kl_ht_success(struct kl_client *c, uint8_t *text, size_t len);
/* A UUID (version 4) from 16 random bytes, 36 characters and a NUL. */
void kl_uuid_format(const uint8_t rnd[16], char out[37]);
/* An XML Schema dateTime ("2026-12-06T10:00:00Z", "...+01:00", fractions)
 * as Unix seconds: KL_OK, or KL_ERR_PROTOCOL. */
int kl_datetime_parse(kl_slice_t s, uint32_t *unix_s);

#endif
