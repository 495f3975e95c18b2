/* kinglet — the post queue (kl_post.h): a single-producer /
 * single-consumer ring of length-prefixed stanzas. */
#include "kinglet/kl_post.h"

#include "kinglet/kinglet.h"
#include "kl_string.h"

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_ATOMICS__)
#include <stdatomic.h>
#define LOAD_ACQ(p) atomic_load_explicit(&(p), memory_order_acquire)
#define LOAD_RLX(p) atomic_load_explicit(&(p), memory_order_relaxed)
#define STORE_REL(p, v) atomic_store_explicit(&(p), (v), memory_order_release)
#else
#define LOAD_ACQ(p) (p)
#define LOAD_RLX(p) (p)
#define STORE_REL(p, v) ((p) = (v))
#endif

int kl_post_init(kl_post_t *q, uint8_t *buf, size_t cap)
{
    if (!q || !buf || cap < 4 || cap > 0x80000000u || (cap & (cap - 1)) != 0)
        return KL_ERR_ARG;
    memset(q, 0, sizeof *q);
    q->buf = buf;
    q->cap = (uint32_t)cap;
    STORE_REL(q->head, 0u);
    STORE_REL(q->tail, 0u);
    return KL_OK;
}

/* Where n bytes at free-running offset `at` lie in the buffer: from the
 * returned index, *first of them, the rest from index 0 (the ring wraps). */
static uint32_t ring_at(const kl_post_t *q, uint32_t at, size_t n, size_t *first)
{
    uint32_t i = at & (q->cap - 1);
    *first = n <= q->cap - i ? n : q->cap - i;
    return i;
}

static void ring_put(kl_post_t *q, uint32_t at, const uint8_t *p, size_t n)
{
    size_t first;
    uint32_t i = ring_at(q, at, n, &first);
    memcpy(q->buf + i, p, first);
    memcpy(q->buf, p + first, n - first);
}

static void ring_get(const kl_post_t *q, uint32_t at, uint8_t *p, size_t n)
{
    size_t first;
    uint32_t i = ring_at(q, at, n, &first);
    memcpy(p, q->buf + i, first);
    memcpy(p + first, q->buf, n - first);
}

int kl_post_stanza(kl_post_t *q, const uint8_t *xml, size_t len)
{
    uint32_t head, tail;
    uint8_t hdr[2];
    if (!q || !q->buf || !xml || len == 0)
        return KL_ERR_ARG;
    if (len > KL_POST_STANZA_MAX || len + 2 > q->cap) {
        q->refused++;
        return KL_ERR_TOO_LARGE;
    }
    head = LOAD_ACQ(q->head); /* the consumer is done with what lies before it */
    tail = LOAD_RLX(q->tail);
    if (q->cap - (tail - head) < len + 2) {
        q->refused++;
        return KL_ERR_TX_FULL;
    }
    hdr[0] = (uint8_t)(len >> 8);
    hdr[1] = (uint8_t)len;
    ring_put(q, tail, hdr, 2);
    ring_put(q, tail + 2, xml, len);
    STORE_REL(q->tail, tail + 2 + (uint32_t)len); /* the bytes before the index */
    return KL_OK;
}

int kl_post_pending(const kl_post_t *q)
{
    return q && q->buf && LOAD_ACQ(((kl_post_t *)q)->tail) != LOAD_ACQ(((kl_post_t *)q)->head);
}

/* The length of the record at head, or 0 if the ring is empty. */
static size_t next_len(kl_post_t *q, uint32_t head)
{
    uint8_t hdr[2];
    if (LOAD_ACQ(q->tail) == head)
        return 0;
    ring_get(q, head, hdr, 2);
    return (size_t)hdr[0] << 8 | hdr[1];
}

int kl_post_take(kl_post_t *q, uint8_t *out, size_t cap, size_t *len)
{
    uint32_t head;
    size_t n;
    if (!q || !q->buf || !len || (!out && cap))
        return KL_ERR_ARG;
    head = LOAD_RLX(q->head);
    if ((n = next_len(q, head)) == 0)
        return KL_ERR_STATE;
    *len = n;
    if (n > cap)
        return KL_ERR_TOO_LARGE;
    ring_get(q, head + 2, out, n);
    STORE_REL(q->head, head + 2 + (uint32_t)n);
    return KL_OK;
}

int kl_post_drain(kl_post_t *q, kl_client_t *c)
{
    int done = 0;
    if (!q || !q->buf || !c)
        return KL_ERR_ARG;
    while (kl_client_is_online(c)) {
        uint32_t head = LOAD_RLX(q->head), i;
        size_t n = next_len(q, head), first;
        kl_xw_t w;
        int st;
        if (n == 0 || kl_stanza_begin(c, &w) != KL_OK)
            break;
        /* the record, in one or two pieces, into the engine's writer */
        i = ring_at(q, head + 2, n, &first);
        kl_xw_raw(&w, q->buf + i, first);
        if (n > first)
            kl_xw_raw(&w, q->buf, n - first);
        st = kl_stanza_commit(c, &w);
        (void)kl_engine_output(c, &first);
        /* no room now (transmit buffer, or the stream-management queue);
         * but a record longer than an empty transmit buffer takes would
         * never go, and hold up every one after it: refused */
        if (st == KL_ERR_TX_FULL && (n <= w.cap || first))
            break;
        if (st == KL_OK)
            q->sent++;
        else
            q->rejected++; /* not one stanza the client may send: dropped */
        STORE_REL(q->head, head + 2 + (uint32_t)n);
        done++;
    }
    return done;
}
