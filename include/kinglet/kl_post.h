/* kinglet — the post queue: how another task or an interrupt handler hands
 * outgoing stanzas to the thread that runs the client.
 *
 * The client (kl_client_t, kl_session_t) is single-threaded: every call on
 * it comes from one thread (the one that runs the loop), none from an
 * interrupt handler. Anything else that wants to send — a sensor task, an
 * ISR — writes the stanza into a kl_post_t, a fixed-size single-producer /
 * single-consumer ring in a buffer the application owns, and the loop
 * sends it: kl_session_config_t.post (the manager drains it whenever the
 * client is online) or kl_post_drain() from the application's own loop.
 *
 *   static uint8_t ring[1024];                  power of two
 *   static kl_post_t post;
 *   kl_post_init(&post, ring, sizeof ring);     before either side runs
 *   producer (one task or ISR):  kl_post_stanza(&post, xml, len)
 *   consumer (the client's loop): kl_post_drain(&post, &client)
 *
 * One producer and one consumer: two producers must serialise their own
 * posts (e.g. mask interrupts around kl_post_stanza). Indices are C11
 * atomics where the compiler has them (acquire/release), else volatile
 * (correct on a single core only). Nothing blocks and nothing allocates;
 * kl_post_stanza copies the bytes and returns at once, so it may run in an
 * ISR. The producer must also wake the loop its own way (a semaphore, an
 * event flag) if the loop sleeps: kl_post_pending() says whether anything
 * waits.
 *
 * A stanza is sent as posted, once the client is online, and checked at
 * kl_stanza_commit like the application's own (under stream management it
 * must be exactly one message, presence or iq; on an s2s stream its `from`
 * must be the device's domain): the producer is trusted code writing
 * well-formed XML. One the client refuses is dropped and counted
 * (rejected); when the transmit buffer or the stream-management queue has
 * no room, the rest waits for the next drain. */
#ifndef KINGLET_KL_POST_H
#define KINGLET_KL_POST_H

#include <stddef.h>
#include <stdint.h>

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_ATOMICS__)
#define KL_POST_ATOMIC _Atomic
#else
#define KL_POST_ATOMIC volatile
#endif

/* Longest stanza a record holds (its length is 16 bits). */
#define KL_POST_STANZA_MAX 0xFFFFu

typedef struct kl_post {
    uint8_t *buf;                 /* the ring (borrowed; a power of two bytes) */
    uint32_t cap;
    KL_POST_ATOMIC uint32_t head; /* consumer: where the next record starts (free-running) */
    KL_POST_ATOMIC uint32_t tail; /* producer: where the next record goes (free-running) */
    uint32_t refused;             /* producer: posts refused (full, too large) */
    uint32_t sent;                /* consumer: stanzas handed to the client */
    uint32_t rejected;            /* consumer: stanzas the client refused (dropped) */
} kl_post_t;

struct kl_client;

/* cap must be a power of two, at least 4. KL_OK or KL_ERR_ARG. */
int kl_post_init(kl_post_t *q, uint8_t *buf, size_t cap);

/* Producer: queue a copy of one stanza (its XML, len bytes). KL_OK;
 * KL_ERR_TX_FULL (no room now: try again after the loop drained);
 * KL_ERR_TOO_LARGE (longer than the ring or KL_POST_STANZA_MAX: never fits);
 * KL_ERR_ARG. Safe in an interrupt handler. */
int kl_post_stanza(kl_post_t *q, const uint8_t *xml, size_t len);

/* Either side: 1 if a stanza waits. */
int kl_post_pending(const kl_post_t *q);

/* Consumer: the next stanza, copied into out (cap bytes), and dropped
 * from the ring: KL_OK (*len set), KL_ERR_STATE (empty), KL_ERR_TOO_LARGE
 * (it does not fit out: left in the ring, *len says its size). For loops
 * that send through something other than a kl_client_t. */
int kl_post_take(kl_post_t *q, uint8_t *out, size_t cap, size_t *len);

/* Consumer: send what waits, in order, while the client is online and has
 * room (the rest stays for the next call). Returns how many were handed to
 * the client (sent or rejected), or a negative kl_status_t. */
int kl_post_drain(kl_post_t *q, struct kl_client *c);

#endif
