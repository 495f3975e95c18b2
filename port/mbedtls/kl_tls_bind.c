/* kinglet — the mbedTLS binding for the connection manager. */
#include "kl_tls_bind.h"

#include <stdio.h>
#include <string.h>

void kl_tls_mbedtls_init(kl_tls_mbedtls_t *b, const kl_tls_config_t *base, kl_tls_t *sessions, int n)
{
    if (b == NULL)
        return;
    memset(b, 0, sizeof *b);
    if (base != NULL)
        b->base = *base;
    /* per connection: from kl_tls_params_t at every setup */
    b->base.server_name = NULL;
    b->base.alpn = NULL;
    b->base.session = NULL;
    b->base.session_len = 0;
    if (sessions == NULL || n < 0)
        n = 0;
    if (n > KL_SESSION_SLOTS)
        n = KL_SESSION_SLOTS;
    b->sess = sessions;
    b->n = n;
    if (n > 0) /* error_text reads a session that was never set up */
        memset(sessions, 0, (size_t)n * sizeof *sessions);
}

/* The slot's session if it is set up (kl_tls_setup was called, also if it
 * failed), else NULL. */
static kl_tls_t *live(kl_tls_mbedtls_t *b, int slot)
{
    if (b == NULL || slot < 0 || slot >= b->n || !b->on[slot])
        return NULL;
    return &b->sess[slot];
}

kl_tls_t *kl_tls_mbedtls_session(kl_tls_mbedtls_t *b, int slot)
{
    return live(b, slot);
}

static int b_setup(void *ctx, int slot, const kl_tls_params_t *p, kl_transport_t *lower)
{
    kl_tls_mbedtls_t *b = ctx;
    kl_tls_config_t cfg;
    kl_tls_t *t;
    if (b == NULL || p == NULL || lower == NULL || slot < 0 || slot >= KL_SESSION_SLOTS)
        return KL_ERR_ARG;
    if (slot >= b->n)
        return KL_ERR_TLS_SETUP; /* no kl_tls_t for it (error_text says so) */
    t = &b->sess[slot];
    if (b->on[slot]) {
        /* set up again without close: the old session goes, no close_notify
         * (its connection is not the one `lower` leads to now) */
        kl_tls_free(t);
        b->on[slot] = 0;
    }
    cfg = b->base;
    cfg.server_name = p->server_name;
    cfg.alpn = p->alpn;
    cfg.session = p->session_len > 0 ? p->session : NULL;
    cfg.session_len = cfg.session != NULL ? p->session_len : 0;
    b->on[slot] = 1; /* kl_tls_free is needed also after a failed setup */
    return kl_tls_setup(t, &cfg, lower);
}

static int b_handshake(void *ctx, int slot)
{
    kl_tls_t *t = live(ctx, slot);
    return t != NULL ? kl_tls_handshake(t) : KL_ERR_STATE;
}

static void b_hold_reads(void *ctx, int slot, int hold)
{
    kl_tls_t *t = live(ctx, slot);
    if (t != NULL)
        kl_tls_hold_reads(t, hold);
}

static void b_preread(void *ctx, int slot, const uint8_t *data, size_t len)
{
    kl_tls_t *t = live(ctx, slot);
    if (t != NULL)
        kl_tls_set_preread(t, data, data != NULL ? len : 0);
}

static int b_send(void *ctx, int slot, const uint8_t *buf, size_t len)
{
    kl_transport_t *tr = kl_tls_transport(live(ctx, slot));
    return tr != NULL ? tr->send(tr->ctx, buf, len) : KL_ERR_STATE;
}

static int b_recv(void *ctx, int slot, uint8_t *buf, size_t len)
{
    kl_transport_t *tr = kl_tls_transport(live(ctx, slot));
    return tr != NULL ? tr->recv(tr->ctx, buf, len) : KL_ERR_STATE;
}

static void b_info(void *ctx, int slot, kl_tls_info_t *out)
{
    kl_tls_mbedtls_t *b = ctx;
    kl_tls_t *t = live(b, slot);
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    out->version = "";
    if (t == NULL)
        return;
    /* what kl_posix / kl_lwip hand to kl_engine_tls_done: a finished
     * handshake with verification on (a resumed session was offered only
     * if its blob says it was verified) */
    out->verified = (uint8_t)(t->handshake_done && !b->base.insecure_skip_verify);
    out->resumed = (uint8_t)kl_tls_resumed(t);
    out->session_offered = (uint8_t)(t->session_offered != 0);
    out->new_session = (uint8_t)(t->new_session_available != 0);
    out->round_trips = (uint32_t)t->round_trips;
    out->version = kl_tls_version(t);
}

#if KL_ENABLE_SASL2
static int b_exporter(void *ctx, int slot, uint8_t *out, size_t len)
{
    kl_tls_t *t = live(ctx, slot);
    if (t == NULL || out == NULL || len != 32)
        return KL_ERR_ARG;
    return kl_tls_exporter(t, out);
}
#else
#define b_exporter NULL /* SASL2 compiled out: no channel binding to give */
#endif

static int b_save_session(void *ctx, int slot, uint8_t *buf, size_t cap, size_t *len)
{
    kl_tls_t *t = live(ctx, slot);
    if (len != NULL)
        *len = 0;
    if (buf == NULL || len == NULL)
        return KL_ERR_ARG;
    int r;
    if (t == NULL || !t->handshake_done || !t->new_session_available)
        return KL_ERR_STATE; /* nothing new to save */
    r = kl_tls_session_save(t, buf, cap, len);
    /* A session that does not fit (or does not serialise) now will not on
     * the next call either: not offered again until a newer ticket comes
     * (as the lwIP driver does; *len still says the size needed). */
    if (r != KL_OK)
        t->new_session_available = 0;
    return r;
}

static void b_close(void *ctx, int slot)
{
    kl_tls_mbedtls_t *b = ctx;
    kl_tls_t *t = live(b, slot);
    if (t == NULL)
        return;
    kl_tls_close(t); /* close_notify only after a handshake that did not fail */
    kl_tls_free(t);  /* last_status and the reason stay for error_text */
    b->on[slot] = 0;
}

static const char *b_error_text(void *ctx, int slot, char *buf, size_t cap)
{
    kl_tls_mbedtls_t *b = ctx;
    if (buf == NULL || cap == 0)
        return "";
    buf[0] = '\0';
    if (b == NULL || slot < 0 || slot >= KL_SESSION_SLOTS)
        return buf;
    if (slot >= b->n) {
        snprintf(buf, cap, "no TLS session for slot %d (kl_tls_mbedtls_init was given %d)", slot, b->n);
        return buf;
    }
    /* also after close: kl_tls_free keeps last_status and its details */
    return kl_tls_error_text(&b->sess[slot], buf, cap);
}

const kl_tls_ops_t kl_tls_mbedtls_ops = {
    .setup = b_setup,
    .handshake = b_handshake,
    .hold_reads = b_hold_reads,
    .preread = b_preread,
    .send = b_send,
    .recv = b_recv,
    .info = b_info,
    .save_session = b_save_session,
    .exporter = b_exporter,
    .close = b_close,
    .error_text = b_error_text,
};
