/* kinglet-fleet — the shared-configuration TLS binding (kl_fleet_tls.h). */
#include "kl_fleet_tls.h"

#include <stdio.h>
#include <string.h>

#include "mbedtls/error.h"
#include "mbedtls/net_sockets.h"
#include "psa/crypto.h"

static const char pers[] = "kinglet-fleet";

int kl_fleet_tls_shared_init(kl_fleet_tls_shared_t *sh, const char *ca_file)
{
    int ret;
    char err[128];
    memset(sh, 0, sizeof *sh);
    mbedtls_x509_crt_init(&sh->ca);
    mbedtls_ctr_drbg_init(&sh->drbg);
    mbedtls_entropy_init(&sh->entropy);
    if (psa_crypto_init() != PSA_SUCCESS) {
        fprintf(stderr, "kinglet-fleet: psa_crypto_init failed\n");
        return -1;
    }
    if ((ret = mbedtls_ctr_drbg_seed(&sh->drbg, mbedtls_entropy_func, &sh->entropy, (const unsigned char *)pers,
                                     sizeof pers - 1)) != 0)
        goto fail;
    if ((ret = mbedtls_x509_crt_parse_file(&sh->ca, ca_file)) != 0) {
        if (ret > 0)
            ret = MBEDTLS_ERR_X509_INVALID_FORMAT;
        goto fail;
    }
    for (int i = 0; i < 2; i++) {
        mbedtls_ssl_config *c = &sh->conf[i];
        mbedtls_ssl_config_init(c);
        if ((ret = mbedtls_ssl_config_defaults(c, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                               MBEDTLS_SSL_PRESET_DEFAULT)) != 0)
            goto fail;
        mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, &sh->drbg);
        mbedtls_ssl_conf_min_tls_version(c, MBEDTLS_SSL_VERSION_TLS1_2);
        mbedtls_ssl_conf_max_tls_version(c, MBEDTLS_SSL_VERSION_TLS1_3);
        mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_ca_chain(c, &sh->ca, NULL);
#if defined(MBEDTLS_SSL_SESSION_TICKETS)
        /* no resumption in the fleet: no ticket kept per device */
        mbedtls_ssl_conf_session_tickets(c, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
#endif
    }
    return 0;
fail:
    mbedtls_strerror(ret, err, sizeof err);
    fprintf(stderr, "kinglet-fleet: TLS setup (%s): %s\n", ca_file, err);
    return ret;
}

void kl_fleet_tls_init(kl_fleet_tls_t *t, kl_fleet_tls_shared_t *sh)
{
    memset(t, 0, sizeof *t);
    t->sh = sh;
}

/* ---- the BIO ---------------------------------------------------------------- */
static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    kl_fleet_tls_t *t = ctx;
    int n = t->lower->send(t->lower->ctx, buf, len);
    if (n > 0) {
        t->wrote = 1;
        return n;
    }
    if (n == 0)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    t->lower_error = n;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    kl_fleet_tls_t *t = ctx;
    int n;
    if (!t->done && t->wrote) { /* a read after our write: one round trip */
        t->round_trips++;
        t->wrote = 0;
    }
    if (t->hold)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (t->pre_len > 0) {
        n = (int)(len < t->pre_len ? len : t->pre_len);
        memcpy(buf, t->pre, (size_t)n);
        t->pre += n;
        t->pre_len -= (size_t)n;
        return n;
    }
    n = t->lower->recv(t->lower->ctx, buf, len);
    if (n > 0)
        return n;
    if (n == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (n == KL_ERR_CONN_CLOSED)
        return 0;
    t->lower_error = n;
    return MBEDTLS_ERR_NET_RECV_FAILED;
}

static int fail(kl_fleet_tls_t *t, int status, int err)
{
    t->last_status = status;
    t->last_error = err;
    return status;
}

static int map_error(kl_fleet_tls_t *t, int ret)
{
    switch (ret) {
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
        t->verify_flags = mbedtls_ssl_get_verify_result(&t->ssl);
        return fail(t, KL_ERR_TLS_CERT, ret);
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
    case MBEDTLS_ERR_SSL_CONN_EOF:
        return fail(t, KL_ERR_CONN_CLOSED, ret);
    case MBEDTLS_ERR_NET_SEND_FAILED:
    case MBEDTLS_ERR_NET_RECV_FAILED:
        return fail(t, t->lower_error < 0 ? t->lower_error : KL_ERR_IO, ret);
    default:
        return fail(t, KL_ERR_TLS, ret);
    }
}

/* ---- kl_tls_ops_t ----------------------------------------------------------- */
static kl_fleet_tls_t *live(void *ctx, int slot)
{
    kl_fleet_tls_t *t = ctx;
    return t != NULL && slot == 0 && t->on ? t : NULL;
}

static int f_setup(void *ctx, int slot, const kl_tls_params_t *p, kl_transport_t *lower)
{
    kl_fleet_tls_t *t = ctx;
    kl_fleet_tls_shared_t *sh;
    mbedtls_ssl_config *conf;
    int ret;
    if (t == NULL || p == NULL || lower == NULL || p->server_name == NULL)
        return KL_ERR_ARG;
    if (slot != 0)
        return KL_ERR_TLS_SETUP;
    sh = t->sh;
    if (t->on)
        mbedtls_ssl_free(&t->ssl);
    memset((char *)t + offsetof(kl_fleet_tls_t, ssl), 0, sizeof *t - offsetof(kl_fleet_tls_t, ssl));
    t->lower = lower;
    conf = &sh->conf[0];
    if (p->alpn != NULL) {
        if (sh->alpn_list[0] == NULL) {
            sh->alpn_list[0] = p->alpn; /* the manager's: static or its configuration's */
            if (mbedtls_ssl_conf_alpn_protocols(&sh->conf[1], sh->alpn_list) != 0)
                return fail(t, KL_ERR_TLS_SETUP, 0);
        } else if (strcmp(sh->alpn_list[0], p->alpn)) {
            return fail(t, KL_ERR_TLS_SETUP, 0); /* one ALPN name per fleet */
        }
        conf = &sh->conf[1];
    }
    mbedtls_ssl_init(&t->ssl);
    t->on = 1;
    if ((ret = mbedtls_ssl_setup(&t->ssl, conf)) != 0 || (ret = mbedtls_ssl_set_hostname(&t->ssl, p->server_name)) != 0)
        return fail(t, KL_ERR_TLS_SETUP, ret);
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
    return KL_OK;
}

static int f_handshake(void *ctx, int slot)
{
    kl_fleet_tls_t *t = live(ctx, slot);
    int ret;
    if (t == NULL)
        return KL_ERR_STATE;
    if (t->done)
        return 1;
    if (t->last_status != KL_OK)
        return t->last_status;
    ret = mbedtls_ssl_handshake(&t->ssl);
    if (ret == 0) {
        t->done = 1;
        t->verify_flags = mbedtls_ssl_get_verify_result(&t->ssl);
        return 1;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
        return 0;
    return map_error(t, ret);
}

static void f_hold_reads(void *ctx, int slot, int hold)
{
    kl_fleet_tls_t *t = live(ctx, slot);
    if (t != NULL)
        t->hold = (uint8_t)(hold != 0);
}

static void f_preread(void *ctx, int slot, const uint8_t *data, size_t len)
{
    kl_fleet_tls_t *t = live(ctx, slot);
    if (t != NULL) {
        t->pre = data;
        t->pre_len = data != NULL ? len : 0;
    }
}

static int ready(kl_fleet_tls_t *t, const uint8_t *buf, size_t len)
{
    if (t == NULL)
        return KL_ERR_STATE;
    if (buf == NULL || len == 0)
        return KL_ERR_ARG;
    if (!t->done) {
        int h = f_handshake(t, 0);
        if (h <= 0)
            return h;
    }
    return t->last_status != KL_OK ? t->last_status : 1;
}

static int f_send(void *ctx, int slot, const uint8_t *buf, size_t len)
{
    kl_fleet_tls_t *t = live(ctx, slot);
    int r = ready(t, buf, len), ret, max;
    size_t n = len;
    if (r != 1)
        return r;
    /* a write that returned WANT_WRITE is repeated with the same bytes */
    if (t->write_pending > 0) {
        if (len < t->write_pending)
            return fail(t, KL_ERR_STATE, 0);
        n = t->write_pending;
    } else if ((max = mbedtls_ssl_get_max_out_record_payload(&t->ssl)) > 0 && n > (size_t)max) {
        n = (size_t)max;
    }
    ret = mbedtls_ssl_write(&t->ssl, buf, n);
    if (ret > 0) {
        t->write_pending = 0;
        return ret;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_WRITE || ret == MBEDTLS_ERR_SSL_WANT_READ) {
        t->write_pending = n;
        return 0;
    }
    return map_error(t, ret);
}

static int f_recv(void *ctx, int slot, uint8_t *buf, size_t len)
{
    kl_fleet_tls_t *t = live(ctx, slot);
    int r = ready(t, buf, len);
    if (r != 1)
        return r;
    for (;;) {
        int ret = mbedtls_ssl_read(&t->ssl, buf, len);
        if (ret > 0)
            return ret;
        if (ret == 0)
            return fail(t, KL_ERR_CONN_CLOSED, MBEDTLS_ERR_SSL_CONN_EOF);
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
            return 0;
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
        if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
            continue;
#endif
        return map_error(t, ret);
    }
}

static void f_info(void *ctx, int slot, kl_tls_info_t *out)
{
    kl_fleet_tls_t *t = live(ctx, slot);
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    out->version = "";
    if (t == NULL)
        return;
    out->verified = t->done; /* verification is always required */
    out->round_trips = t->round_trips;
    out->version = t->done ? mbedtls_ssl_get_version(&t->ssl) : "";
}

static int f_exporter(void *ctx, int slot, uint8_t *out, size_t len)
{
#if defined(MBEDTLS_SSL_KEYING_MATERIAL_EXPORT) && defined(MBEDTLS_SSL_PROTO_TLS1_3)
    static const char label[] = "EXPORTER-Channel-Binding";
    kl_fleet_tls_t *t = live(ctx, slot);
    if (t == NULL || out == NULL || len != 32)
        return KL_ERR_ARG;
    if (!t->done || mbedtls_ssl_get_version_number(&t->ssl) != MBEDTLS_SSL_VERSION_TLS1_3 ||
        mbedtls_ssl_export_keying_material(&t->ssl, out, 32, label, sizeof label - 1, NULL, 0, 0) != 0)
        return KL_ERR_STATE;
    return KL_OK;
#else
    (void)ctx, (void)slot, (void)out, (void)len;
    return KL_ERR_STATE;
#endif
}

static void f_close(void *ctx, int slot)
{
    kl_fleet_tls_t *t = live(ctx, slot);
    if (t == NULL)
        return;
    if (t->done && t->last_status == KL_OK)
        (void)mbedtls_ssl_close_notify(&t->ssl);
    mbedtls_ssl_free(&t->ssl); /* last_status and verify_flags stay for error_text */
    t->on = 0;
}

static const char *f_error_text(void *ctx, int slot, char *buf, size_t cap)
{
    kl_fleet_tls_t *t = ctx;
    if (buf == NULL || cap == 0)
        return "";
    buf[0] = '\0';
    if (t == NULL || slot != 0) {
        snprintf(buf, cap, "no TLS session for slot %d", slot);
        return buf;
    }
    if (t->last_status == KL_OK)
        return buf;
    if (t->last_status == KL_ERR_TLS_CERT) {
        char info[200];
        if (mbedtls_x509_crt_verify_info(info, sizeof info, "", t->verify_flags) > 0) {
            for (char *p = info; *p; p++)
                if (*p == '\n')
                    *p = p[1] ? ';' : '\0';
            snprintf(buf, cap, "certificate rejected: %s", info);
        } else {
            snprintf(buf, cap, "certificate rejected");
        }
        return buf;
    }
    if (t->last_error != 0) {
        char err[128];
        mbedtls_strerror(t->last_error, err, sizeof err);
        snprintf(buf, cap, "%s: %s", kl_strerror(t->last_status), err);
    } else {
        snprintf(buf, cap, "%s", kl_strerror(t->last_status));
    }
    return buf;
}

const kl_tls_ops_t kl_fleet_tls_ops = {
    .setup = f_setup,
    .handshake = f_handshake,
    .hold_reads = f_hold_reads,
    .preread = f_preread,
    .send = f_send,
    .recv = f_recv,
    .info = f_info,
    .save_session = NULL,
    .exporter = f_exporter,
    .close = f_close,
    .error_text = f_error_text,
};
