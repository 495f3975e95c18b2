/* kinglet — XEP-0198 stream management: the queue of unacknowledged
 * stanzas in the application's buffer, and the session's persistence
 * across a reboot (kl_sm_save / kl_sm_load, HMAC-SHA-256 under the device
 * key the connection hints use). The protocol itself is in kl_engine.c. */
#include "kl_string.h"

#define KL_CORE_BUILD 1 /* core/: kl_client_t's members by their own names */
#include "kinglet/kinglet.h"
#include "kl_internal.h"

#if KL_ENABLE_SM

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v);
    put16(p + 2, v >> 16);
}

static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return get16(p) | get16(p + 2) << 16; }

/* ---- the queue ------------------------------------------------------------ */

int kl_sm_push(kl_client_t *c, const uint8_t *p, size_t n, uint32_t seq, int own)
{
    kl_sm_t *s = &c->sm;
    uint8_t *q = c->cfg.sm_queue;
    size_t size = c->cfg.sm_queue_size, need = KL_SM_REC_HDR + n;
    /* n 0 with p NULL: a placeholder for a long stanza, counted, not kept.
     * Callers push only while stream management is on (so a queue is
     * configured: sm_usable), n at most KL_TX_BUF_SIZE (<= 32767), and p
     * with every n > 0 (commit_stanza pushes only a writer with bytes) */
    if (need > size)
        return KL_ERR_TOO_LARGE;
    if (size - (s->tail - s->head) < need)
        return KL_ERR_TX_FULL;
    if (size - s->tail < need) {
        /* room, but not at the end: move the records to the front */
        memmove(q, q + s->head, s->tail - s->head);
        s->tail -= s->head;
        /* resend moves with the records; outside a resend it is unused
         * (set anew when one starts), so no test on resending */
        s->resend -= s->head;
        s->head = 0;
    }
    put32(q + s->tail, seq);
    put16(q + s->tail + 4, (uint32_t)n | (own ? KL_SM_REC_OWN : 0));
    if (n)
        memcpy(q + s->tail + KL_SM_REC_HDR, p, n);
    s->tail += need;
    s->records++;
    return KL_OK;
}

size_t kl_sm_rec(const kl_client_t *c, size_t off, uint32_t *seq, const uint8_t **p, size_t *n, int *own)
{
    const uint8_t *r = c->cfg.sm_queue + off;
    uint32_t len = get16(r + 4);
    *seq = get32(r);
    *own = (len & KL_SM_REC_OWN) != 0;
    *n = len & ~KL_SM_REC_OWN;
    *p = r + KL_SM_REC_HDR;
    return off + KL_SM_REC_HDR + *n;
}

void kl_sm_pop(kl_client_t *c)
{
    kl_sm_t *s = &c->sm;
    uint32_t seq;
    const uint8_t *p;
    size_t n;
    int own;
    /* never on an empty queue: sm_drop_acked pops while records are
     * left, sm_events while handback is, and handback (set to records when
     * a new session is bound) never exceeds records: nothing else pops
     * before it is handed back (<a/> counts only online, where sm_events
     * runs first; <resumed/>'s and <failed/>'s h only before a new bind) */
    s->head = kl_sm_rec(c, s->head, &seq, &p, &n, &own);
    if (--s->records == 0)
        s->head = s->tail = 0;
}

#if KL_ENABLE_APP
/* Take the placeholder at off out of the queue; the records after it are
 * numbered one lower (the server never counted it). */
void kl_sm_unplace(kl_client_t *c, size_t off)
{
    kl_sm_t *s = &c->sm;
    uint8_t *q = c->cfg.sm_queue;
    size_t o;
    memmove(q + off, q + off + KL_SM_REC_HDR, s->tail - off - KL_SM_REC_HDR);
    s->tail -= KL_SM_REC_HDR;
    s->records--;
    for (o = off; o < s->tail; o += KL_SM_REC_HDR + (get16(q + o + 4) & ~KL_SM_REC_OWN))
        put32(q + o, get32(q + o) - 1);
    s->out--;
    if (!s->records)
        s->head = s->tail = 0;
}
#endif

void kl_sm_clear(kl_client_t *c)
{
    c->sm.head = c->sm.tail = c->sm.records = 0;
    c->sm.resending = 0;
    c->sm.handback = 0;
}

/* ---- the public view ---------------------------------------------------- */

uint32_t kl_sm_last_seq(const kl_client_t *c) { return c && c->sm.on ? c->sm.out : 0; }

int kl_sm_info(const kl_client_t *c, kl_sm_info_t *info)
{
    const kl_sm_t *s;
    if (!c || !info)
        return KL_ERR_ARG;
    s = &c->sm;
    memset(info, 0, sizeof *info);
    info->enabled = s->on == KL_SM_ON;
    info->resumable = s->resumable;
    info->id = s->id;
    info->location = s->location;
    info->max_s = s->max_s;
    info->h_in = s->h_in;
    info->last_seq = s->out;
    info->acked = s->acked;
    info->unacked = s->records;
    info->queue_used = s->tail - s->head;
    return KL_OK;
}

void kl_sm_reset(kl_client_t *c)
{
    if (c)
        memset(&c->sm, 0, sizeof c->sm);
}

/* ---- persistence ------------------------------------------------------------
 *
 * The blob, little endian:
 *    0 magic (KL_SM_BLOB_MAGIC)   4 version (2 bytes)   6 flags (2: bit 0 resumable)
 *    8 h_in   12 out   16 acked   20 max_s   24 records   28 queue bytes
 *   32 id length, location length, JID length (1 byte each), 0
 *   36 the SM-ID, the location, the bound JID (no NULs), then the queue's
 *      records as they are in memory (6-byte header + stanza)
 *  end HMAC-SHA-256(device key, "kinglet-sm" || every byte before it) */
#define BLOB_FIXED 36u

static const uint8_t mac_label[] = "kinglet-sm";

static int blob_mac(const kl_crypto_t *crypto, const uint8_t *key, const uint8_t *blob, size_t len,
                    uint8_t out[KL_HASH_MAX])
{
    kl_slice_t parts[2];
    parts[0].p = mac_label;
    parts[0].len = sizeof mac_label - 1;
    parts[1].p = blob;
    parts[1].len = len;
    return crypto->hmac(crypto->ctx, KL_HASH_SHA256, key, KL_CACHE_KEY_LEN, parts, 2, out) < 0 ? KL_ERR_SM_STATE
                                                                                             : KL_OK;
}

int kl_sm_save(const kl_client_t *c, const kl_crypto_t *crypto, const uint8_t *key, size_t key_len, uint8_t *out,
               size_t cap, size_t *len)
{
    const kl_sm_t *s;
    size_t il, ll, jl, ql, need, o;
    if (len)
        *len = 0;
    if (!c || !out || !len || (key && key_len != KL_CACHE_KEY_LEN))
        return KL_ERR_ARG;
    if (!crypto || !crypto->hmac || !key)
        return KL_ERR_CACHE_NO_KEY;
    s = &c->sm;
    if (s->handback)
        return KL_ERR_STATE;
    il = strlen(s->id);
    ll = strlen(s->location);
    jl = s->resumable ? strlen(c->jid) : 0;
    ql = s->tail - s->head;
    need = BLOB_FIXED + il + ll + jl + ql + KL_CACHE_MAC_LEN;
    *len = need;
    if (cap < need)
        return KL_ERR_TOO_LARGE;
    memset(out, 0, BLOB_FIXED);
    put32(out, KL_SM_BLOB_MAGIC);
    put16(out + 4, KL_SM_BLOB_VERSION);
    put16(out + 6, s->resumable ? 1u : 0u);
    put32(out + 8, s->h_in);
    put32(out + 12, s->out);
    put32(out + 16, s->acked);
    put32(out + 20, s->max_s);
    put32(out + 24, (uint32_t)s->records);
    put32(out + 28, (uint32_t)ql);
    out[32] = (uint8_t)il;
    out[33] = (uint8_t)ll;
    out[34] = (uint8_t)jl;
    o = BLOB_FIXED;
    memcpy(out + o, s->id, il);
    o += il;
    memcpy(out + o, s->location, ll);
    o += ll;
    memcpy(out + o, c->jid, jl);
    o += jl;
    if (ql)
        memcpy(out + o, c->cfg.sm_queue + s->head, ql);
    o += ql;
    if (blob_mac(crypto, key, out, o, out + o) != KL_OK) {
        memset(out, 0, need);
        *len = 0;
        return KL_ERR_CACHE_NO_KEY;
    }
    return KL_OK;
}

/* A resumable session's JID must be a full JID of this account. */
static int jid_ours(const kl_client_t *c, const uint8_t *j, size_t n)
{
    size_t i, b = c->bare_len;
    if (n <= b + 1 || j[b] != '/')
        return 0;
    for (i = 0; i < b; i++) {
        uint8_t x = j[i], y = (uint8_t)c->cfg.jid[i];
        if (x >= 'A' && x <= 'Z')
            x = (uint8_t)(x | 0x20);
        if (y >= 'A' && y <= 'Z')
            y = (uint8_t)(y | 0x20);
        if (x != y)
            return 0;
    }
    return 1;
}

/* The queue's records as saved: within this build's bounds, and for a
 * session to resume numbered in order after acked up to out (what cannot
 * be resumed is only handed back: its numbers are what they were). */
static int queue_ok(const uint8_t *q, size_t ql, uint32_t records, uint32_t out, uint32_t acked, int resumable)
{
    size_t o = 0;
    uint32_t k = 0, prev = 0, span = out - acked;
    if (span > 0x7fffffffu)
        return 0; /* acked "after" out: no session counts like that */
    while (o < ql) {
        uint32_t len, n, d;
        if (ql - o < KL_SM_REC_HDR)
            return 0;
        d = get32(q + o) - acked;
        len = get16(q + o + 4);
        n = len & ~KL_SM_REC_OWN;
        if ((n == 0 && (len & KL_SM_REC_OWN)) || n > KL_TX_BUF_SIZE || ql - o - KL_SM_REC_HDR < n)
            return 0;
        if (resumable && (d == 0 || d > span || d <= prev))
            return 0;
        prev = d;
        o += KL_SM_REC_HDR + n;
        k++;
    }
    return k == records;
}

int kl_sm_load(kl_client_t *c, const kl_crypto_t *crypto, const uint8_t *key, size_t key_len, const uint8_t *blob,
               size_t len)
{
    kl_sm_t *s;
    uint8_t mac[KL_HASH_MAX];
    size_t il, ll, jl, ql, body;
    uint32_t records, flags;
    const uint8_t *v;
    int st;
    if (!c || !blob || (key && key_len != KL_CACHE_KEY_LEN))
        return KL_ERR_ARG;
    if (c->state != 0) /* ST_INIT: after kl_client_init, before kl_client_connect */
        return KL_ERR_STATE;
    kl_sm_reset(c); /* whatever happens below: nothing of an earlier state */
    c->jid[0] = '\0';
    if (!crypto || !crypto->hmac || !key)
        return KL_ERR_CACHE_NO_KEY;
    if (len < BLOB_FIXED + KL_CACHE_MAC_LEN)
        return KL_ERR_SM_STATE;
    /* every byte is under the MAC: authenticate before reading any */
    body = len - KL_CACHE_MAC_LEN;
    st = blob_mac(crypto, key, blob, body, mac);
    if (st == KL_OK && !kl_equal_ct(mac, blob + body, KL_CACHE_MAC_LEN))
        st = KL_ERR_SM_STATE;
    memset(mac, 0, sizeof mac);
    if (st != KL_OK)
        return KL_ERR_SM_STATE;
    flags = get16(blob + 6);
    records = get32(blob + 24);
    il = blob[32];
    ll = blob[33];
    jl = blob[34];
    ql = get32(blob + 28);
    if (get32(blob) != KL_SM_BLOB_MAGIC || get16(blob + 4) != KL_SM_BLOB_VERSION || (flags & ~1u) || blob[35] ||
        il > KL_SM_ID_MAX || ll > KL_SM_LOCATION_MAX || jl >= KL_JID_MAX || body < BLOB_FIXED + il + ll + jl ||
        ql != body - BLOB_FIXED - il - ll - jl)
        return KL_ERR_SM_STATE;
    v = blob + BLOB_FIXED;
    /* a JID only with a resumable session, and then one of this account */
    if (memchr(v, 0, il + ll + jl) || (flags ? il == 0 || !jid_ours(c, v + il + ll, jl) : jl != 0))
        return KL_ERR_SM_STATE;
    if (ql > c->cfg.sm_queue_size || (ql && !c->cfg.sm_queue) ||
        !queue_ok(v + il + ll + jl, ql, records, get32(blob + 12), get32(blob + 16), (int)flags))
        return KL_ERR_SM_STATE;
    s = &c->sm;
    s->resumable = (uint8_t)flags;
    s->h_in = get32(blob + 8);
    s->out = get32(blob + 12);
    s->acked = get32(blob + 16);
    s->max_s = get32(blob + 20);
    memcpy(s->id, v, il);
    s->id[il] = '\0';
    memcpy(s->location, v + il, ll);
    s->location[ll] = '\0';
    memcpy(c->jid, v + il + ll, jl);
    c->jid[jl] = '\0';
    if (ql)
        memcpy(c->cfg.sm_queue, v + il + ll + jl, ql);
    s->head = 0;
    s->tail = ql;
    s->records = records;
    return KL_OK;
}

#else /* KL_ENABLE_SM == 0: the API answers as if no session ever existed */

uint32_t kl_sm_last_seq(const kl_client_t *c)
{
    (void)c;
    return 0;
}

int kl_sm_info(const kl_client_t *c, kl_sm_info_t *info)
{
    if (!c || !info)
        return KL_ERR_ARG;
    memset(info, 0, sizeof *info);
    info->id = info->location = "";
    return KL_OK;
}

void kl_sm_reset(kl_client_t *c) { (void)c; }

int kl_sm_ack_now(kl_client_t *c) { return c ? KL_ERR_STATE : KL_ERR_ARG; }

int kl_sm_save(const kl_client_t *c, const kl_crypto_t *crypto, const uint8_t *key, size_t key_len, uint8_t *out,
               size_t cap, size_t *len)
{
    (void)c, (void)crypto, (void)key, (void)key_len, (void)out, (void)cap;
    if (len)
        *len = 0;
    return KL_ERR_STATE;
}

int kl_sm_load(kl_client_t *c, const kl_crypto_t *crypto, const uint8_t *key, size_t key_len, const uint8_t *blob,
               size_t len)
{
    (void)c, (void)crypto, (void)key, (void)key_len, (void)blob, (void)len;
    return KL_ERR_SM_STATE;
}

#endif
