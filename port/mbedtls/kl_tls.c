/* kinglet — TLS over a byte pipe (mbedTLS 3.6), non-blocking. */
#include "kl_tls.h"

#include <stdio.h>
#include <string.h>

#include "mbedtls/error.h"
#include "mbedtls/net_sockets.h" /* MBEDTLS_ERR_NET_SEND_FAILED / RECV_FAILED */
#include "mbedtls/sha256.h"
#include "psa/crypto.h"

/* TLS record header: type(1) version(2) length(2). */
#define REC_HDR_LEN 5

/* ---- the BIO: ciphertext to and from the lower transport ------------------- */

/* Follows the record framing of the incoming ciphertext so that a failure
 * caused by an oversize record can be named as such: mbedTLS reports it as
 * a generic invalid record or bad input. */
static void track_records(kl_tls_t *tls, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (tls->rec_body_left > 0) {
            size_t k = n < tls->rec_body_left ? n : tls->rec_body_left;
            tls->rec_body_left -= k;
            p += k;
            n -= k;
            continue;
        }
        tls->rec_hdr[tls->rec_hdr_len++] = *p++;
        n--;
        if (tls->rec_hdr_len == REC_HDR_LEN) {
            tls->rec_last_len = (size_t)tls->rec_hdr[3] << 8 | tls->rec_hdr[4];
            tls->rec_body_left = tls->rec_last_len;
            tls->rec_hdr_len = 0;
        }
    }
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    kl_tls_t *tls = ctx;
    int n = tls->lower->send(tls->lower->ctx, buf, len);
    if (n > 0) {
        tls->bytes_out += (unsigned long)n;
        tls->wrote_since_read = 1;
        return n;
    }
    if (n == 0)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    tls->lower_error = n;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    kl_tls_t *tls = ctx;
    /* A read that follows our write during the handshake waits for the
     * peer's answer: one round trip. Counted on the transition, not on
     * whether the bytes happen to be there yet, so the count does not
     * depend on timing. */
    if (!tls->handshake_done && tls->wrote_since_read) {
        tls->round_trips++;
        tls->wrote_since_read = 0;
    }
    int n;
    if (tls->hold) /* full pipelining: the peer's bytes go to XML until <proceed/> */
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (tls->preread_len > 0) {
        /* TLS records that arrived in the same read as <proceed/> */
        n = (int)(len < tls->preread_len ? len : tls->preread_len);
        memcpy(buf, tls->preread, (size_t)n);
        tls->preread += n;
        tls->preread_len -= (size_t)n;
    } else {
        n = tls->lower->recv(tls->lower->ctx, buf, len);
    }
    if (n > 0) {
        tls->bytes_in += (unsigned long)n;
        track_records(tls, buf, (size_t)n);
        return n;
    }
    if (n == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (n == KL_ERR_CONN_CLOSED)
        return 0; /* EOF: mbedTLS turns it into MBEDTLS_ERR_SSL_CONN_EOF */
    tls->lower_error = n;
    return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* ---- errors ------------------------------------------------------------- */

static int fail(kl_tls_t *tls, int status, int mbedtls_err)
{
    tls->last_status = status;
    tls->last_error = mbedtls_err;
    return status;
}

/* what: a static string naming the step that failed */
static int fail_setup(kl_tls_t *tls, const char *what, int mbedtls_err)
{
    tls->setup_step = what;
    /* x509 parsers return > 0 when some certificates did not parse */
    return fail(tls, KL_ERR_TLS_SETUP, mbedtls_err > 0 ? MBEDTLS_ERR_X509_INVALID_FORMAT : mbedtls_err);
}

static int map_error(kl_tls_t *tls, int ret)
{
    switch (ret) {
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
        tls->verify_flags = mbedtls_ssl_get_verify_result(&tls->ssl);
        return fail(tls, KL_ERR_TLS_CERT, ret);
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
    case MBEDTLS_ERR_SSL_CONN_EOF:
        return fail(tls, KL_ERR_CONN_CLOSED, ret);
    case MBEDTLS_ERR_NET_SEND_FAILED:
    case MBEDTLS_ERR_NET_RECV_FAILED:
        if (tls->lower_error < 0)
            return fail(tls, tls->lower_error, ret);
        return fail(tls, KL_ERR_IO, ret);
    case MBEDTLS_ERR_SSL_INVALID_RECORD:
    case MBEDTLS_ERR_SSL_BAD_INPUT_DATA:
        if (tls->rec_last_len > MBEDTLS_SSL_IN_CONTENT_LEN)
            return fail(tls, KL_ERR_TLS_RECORD_TOO_LARGE, ret);
        return fail(tls, KL_ERR_TLS, ret);
    default:
        return fail(tls, KL_ERR_TLS, ret);
    }
}

/* ---- session blobs (layout in kl_tls.h) ------------------------------------- */

#define BLOB_MAGIC "KLS1"
#define BLOB_FLAG_VERIFIED 0x01

/* First 8 bytes of SHA-256 over the trust anchors' DER, in chain order: a
 * session saved under other trust anchors is not resumed (a CA removed from
 * the device must not keep a server trusted through an old ticket). */
static void trust_id(const kl_tls_t *tls, uint8_t out[8])
{
    uint8_t d[32];
    mbedtls_sha256_context h;
    mbedtls_sha256_init(&h);
    (void)mbedtls_sha256_starts(&h, 0);
    for (const mbedtls_x509_crt *c = &tls->ca; c != NULL && c->raw.len > 0; c = c->next)
        (void)mbedtls_sha256_update(&h, c->raw.p, c->raw.len);
    (void)mbedtls_sha256_finish(&h, d);
    mbedtls_sha256_free(&h);
    memcpy(out, d, 8);
}

static void blob_digest(const uint8_t *p, size_t n, uint8_t out[KL_TLS_SESSION_DIGEST])
{
    uint8_t d[32];
    (void)mbedtls_sha256(p, n, d, 0);
    memcpy(out, d, KL_TLS_SESSION_DIGEST);
}

#if defined(MBEDTLS_SSL_SESSION_TICKETS)
/* Checks the config's blob and, if it may be used, hands it to mbedTLS.
 * Returns the reason it was not offered, or NULL if it was. */
static const char *offer_session(kl_tls_t *tls, const kl_tls_config_t *cfg)
{
    const uint8_t *b = cfg->session;
    size_t n = cfg->session_len;
    const size_t name_len = strlen(cfg->server_name);

    if (n < KL_TLS_SESSION_HDR + KL_TLS_SESSION_DIGEST || n > KL_TLS_SESSION_MAX)
        return "session blob: size out of range";
    if (memcmp(b, BLOB_MAGIC, 4) != 0)
        return "session blob: not a kinglet TLS session";
    size_t nl = b[7], ml = (size_t)b[16] << 8 | b[17];
    if (KL_TLS_SESSION_HDR + nl + ml + KL_TLS_SESSION_DIGEST != n)
        return "session blob: inconsistent lengths";
    uint8_t d[KL_TLS_SESSION_DIGEST];
    blob_digest(b, n - KL_TLS_SESSION_DIGEST, d);
    if (memcmp(d, b + n - KL_TLS_SESSION_DIGEST, sizeof d) != 0)
        return "session blob: corrupt (checksum)";
    /* mbedTLS binds a TLS 1.3 ticket to the name too, but by failing the
     * handshake; TLS 1.2 sessions it does not bind at all. Exact compare,
     * as mbedTLS does. */
    if (nl != name_len || memcmp(b + KL_TLS_SESSION_HDR, cfg->server_name, nl) != 0)
        return "session blob: for another server name";
    uint8_t tid[8];
    trust_id(tls, tid);
    if (memcmp(tid, b + 8, 8) != 0)
        return "session blob: saved under other trust anchors";
    if (tls->verify_required && !(b[6] & BLOB_FLAG_VERIFIED))
        return "session blob: its certificate was not verified";
    unsigned ver = (unsigned)b[4] << 8 | b[5];
    if (ver != MBEDTLS_SSL_VERSION_TLS1_3 && ver != MBEDTLS_SSL_VERSION_TLS1_2)
        return "session blob: unknown TLS version";
    if (ver != MBEDTLS_SSL_VERSION_TLS1_3 && cfg->tls13_only)
        return "session blob: TLS 1.2 session, TLS 1.3 required";

    const char *why = NULL;
    mbedtls_ssl_session s;
    mbedtls_ssl_session_init(&s);
    int ret = mbedtls_ssl_session_load(&s, b + KL_TLS_SESSION_HDR + nl, ml);
    if (ret != 0)
        why = "session blob: mbedTLS could not load it (another build or configuration?)";
    else if ((unsigned)s.MBEDTLS_PRIVATE(tls_version) != ver)
        why = "session blob: inconsistent TLS version";
    else if (mbedtls_ssl_set_session(&tls->ssl, &s) != 0)
        why = "session blob: refused by mbedTLS (cipher suite no longer enabled?)";
    mbedtls_ssl_session_free(&s);
    return why;
}
#endif

#if defined(MBEDTLS_SSL_SESSION_TICKETS) /* resumption needs it, also for TLS 1.2 ids */
/* Takes the session mbedTLS has now (after a TLS 1.3 ticket or a TLS 1.2
 * handshake) into tls->session if it can be resumed. */
static void take_session(kl_tls_t *tls)
{
    mbedtls_ssl_session s;
    mbedtls_ssl_session_init(&s);
    if (mbedtls_ssl_get_session(&tls->ssl, &s) != 0) {
        mbedtls_ssl_session_free(&s);
        return;
    }
    int resumable = s.MBEDTLS_PRIVATE(tls_version) == MBEDTLS_SSL_VERSION_TLS1_2 &&
                    mbedtls_ssl_session_get_id_len(&s) > 0;
#if defined(MBEDTLS_SSL_SESSION_TICKETS)
    resumable = resumable || s.MBEDTLS_PRIVATE(ticket_len) > 0;
#endif
    if (!resumable) {
        mbedtls_ssl_session_free(&s);
        return;
    }
    if (tls->session_held)
        mbedtls_ssl_session_free(&tls->session);
    tls->session = s; /* a flat struct plus owned pointers: moved, not copied */
    tls->session_held = 1;
    tls->new_session_available = 1;
}
#endif

int kl_tls_session_save(kl_tls_t *tls, uint8_t *buf, size_t cap, size_t *len)
{
    if (tls == NULL || buf == NULL || len == NULL)
        return KL_ERR_ARG;
    *len = 0;
    if (!tls->session_held)
        return KL_ERR_STATE;
    const char *name = mbedtls_ssl_get_hostname(&tls->ssl);
    if (name == NULL)
        name = ""; /* no SNI name: memcpy below must not get NULL, even for 0 bytes */
    size_t nl = strlen(name);
    size_t ml = 0;
    int ret = mbedtls_ssl_session_save(&tls->session, NULL, 0, &ml);
    if (ret != 0 && ret != MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL)
        return KL_ERR_TLS; /* the connection itself is fine: no fail() */
    size_t need = KL_TLS_SESSION_HDR + nl + ml + KL_TLS_SESSION_DIGEST;
    if (nl > 255 || ml > 0xffff || need > KL_TLS_SESSION_MAX) {
        *len = need;
        return KL_ERR_TOO_LARGE; /* a bound of ours: never saved */
    }
    if (cap < need) {
        *len = need;
        return KL_ERR_TOO_LARGE;
    }
    memcpy(buf, BLOB_MAGIC, 4);
    unsigned ver = (unsigned)tls->session.MBEDTLS_PRIVATE(tls_version);
    buf[4] = (uint8_t)(ver >> 8);
    buf[5] = (uint8_t)ver;
    /* Verified: this connection verified the chain, or resumed a session
     * that was (only verified blobs are offered while verifying). */
    buf[6] = tls->verify_required && tls->verify_flags == 0 ? BLOB_FLAG_VERIFIED : 0;
    buf[7] = (uint8_t)nl;
    trust_id(tls, buf + 8);
    buf[16] = (uint8_t)(ml >> 8);
    buf[17] = (uint8_t)ml;
    memcpy(buf + KL_TLS_SESSION_HDR, name, nl);
    ret = mbedtls_ssl_session_save(&tls->session, buf + KL_TLS_SESSION_HDR + nl, ml, &ml);
    if (ret != 0)
        return KL_ERR_TLS;
    blob_digest(buf, need - KL_TLS_SESSION_DIGEST, buf + need - KL_TLS_SESSION_DIGEST);
    *len = need;
    tls->new_session_available = 0;
    return KL_OK;
}

int kl_tls_resumed(const kl_tls_t *tls)
{
    return tls != NULL && tls->handshake_done && tls->session_offered && !tls->cert_received;
}

/* ---- setup ----------------------------------------------------------------- */

static int tls_send(void *ctx, const uint8_t *buf, size_t len);
static int tls_recv(void *ctx, uint8_t *buf, size_t len);

int kl_tls_setup(kl_tls_t *tls, const kl_tls_config_t *cfg, kl_transport_t *lower)
{
    static const char pers[] = "kinglet";
    int ret;

    if (tls == NULL)
        return KL_ERR_ARG;
    memset(tls, 0, sizeof *tls);
    mbedtls_ssl_session_init(&tls->session);
    mbedtls_ssl_init(&tls->ssl);
    mbedtls_ssl_config_init(&tls->conf);
    mbedtls_x509_crt_init(&tls->ca);
    mbedtls_x509_crt_init(&tls->own_cert);
    mbedtls_pk_init(&tls->own_key);
    mbedtls_ctr_drbg_init(&tls->drbg);
    mbedtls_entropy_init(&tls->entropy);
    if (cfg == NULL || lower == NULL || lower->send == NULL || lower->recv == NULL ||
        cfg->server_name == NULL || cfg->server_name[0] == '\0')
        return fail(tls, KL_ERR_ARG, 0);
    tls->lower = lower;

    /* TLS 1.3 runs its key schedule and AEAD through PSA. Idempotent. */
    if (psa_crypto_init() != PSA_SUCCESS)
        return fail_setup(tls, "psa_crypto_init failed", 0);
    ret = mbedtls_ctr_drbg_seed(&tls->drbg, mbedtls_entropy_func, &tls->entropy,
                                (const unsigned char *)pers, sizeof pers - 1);
    if (ret != 0)
        return fail_setup(tls, "seeding the RNG from the entropy source", ret);

    ret = mbedtls_ssl_config_defaults(&tls->conf, MBEDTLS_SSL_IS_CLIENT,
                                      MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0)
        return fail_setup(tls, "TLS configuration defaults", ret);
    mbedtls_ssl_conf_rng(&tls->conf, mbedtls_ctr_drbg_random, &tls->drbg);
    mbedtls_ssl_conf_min_tls_version(&tls->conf, cfg->tls13_only ? MBEDTLS_SSL_VERSION_TLS1_3
                                                                  : MBEDTLS_SSL_VERSION_TLS1_2);
    mbedtls_ssl_conf_max_tls_version(&tls->conf, MBEDTLS_SSL_VERSION_TLS1_3);

    /* Trust anchors. Verification is on unless explicitly switched off;
     * verifying against nothing is a setup error, not a silent pass. */
    if (cfg->ca_file != NULL) {
#if defined(MBEDTLS_FS_IO)
        ret = mbedtls_x509_crt_parse_file(&tls->ca, cfg->ca_file);
#else
        return fail_setup(tls, "ca_file needs MBEDTLS_FS_IO (use ca_pem)", 0);
#endif
        if (ret != 0)
            return fail_setup(tls, "reading ca_file", ret);
    }
    if (cfg->ca_pem != NULL) {
        ret = mbedtls_x509_crt_parse(&tls->ca, cfg->ca_pem, cfg->ca_pem_len);
        if (ret != 0)
            return fail_setup(tls, "parsing ca_pem", ret);
    }
    if (cfg->insecure_skip_verify) {
        mbedtls_ssl_conf_authmode(&tls->conf, MBEDTLS_SSL_VERIFY_NONE);
    } else {
        if (cfg->ca_file == NULL && cfg->ca_pem == NULL)
            return fail_setup(tls, "no CA configured (ca_file or ca_pem) and verification is on", 0);
        mbedtls_ssl_conf_authmode(&tls->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
        tls->verify_required = 1;
    }
    mbedtls_ssl_conf_ca_chain(&tls->conf, &tls->ca, NULL);

    /* Our own certificate: SASL EXTERNAL for s2s. */
    if (cfg->cert_file != NULL || cfg->key_file != NULL) {
#if defined(MBEDTLS_FS_IO)
        if (cfg->cert_file == NULL || cfg->key_file == NULL)
            return fail_setup(tls, "cert_file and key_file go together", 0);
        ret = mbedtls_x509_crt_parse_file(&tls->own_cert, cfg->cert_file);
        if (ret != 0)
            return fail_setup(tls, "reading cert_file", ret);
        ret = mbedtls_pk_parse_keyfile(&tls->own_key, cfg->key_file, NULL,
                                       mbedtls_ctr_drbg_random, &tls->drbg);
        if (ret != 0)
            return fail_setup(tls, "reading key_file", ret);
        ret = mbedtls_ssl_conf_own_cert(&tls->conf, &tls->own_cert, &tls->own_key);
        if (ret != 0)
            return fail_setup(tls, "using cert_file/key_file", ret);
#else
        return fail_setup(tls, "cert_file/key_file need MBEDTLS_FS_IO", 0);
#endif
    }

    if (cfg->alpn != NULL) {
        tls->alpn_list[0] = cfg->alpn;
        tls->alpn_list[1] = NULL;
        ret = mbedtls_ssl_conf_alpn_protocols(&tls->conf, tls->alpn_list);
        if (ret != 0)
            return fail_setup(tls, "ALPN protocol name", ret);
    }

#if defined(MBEDTLS_SSL_SESSION_TICKETS)
    mbedtls_ssl_conf_session_tickets(&tls->conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
#if defined(MBEDTLS_SSL_PROTO_TLS1_3)
    /* Make a TLS 1.3 NewSessionTicket visible to recv (see on_new_ticket). */
    mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
        &tls->conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
#endif
#endif

    ret = mbedtls_ssl_setup(&tls->ssl, &tls->conf);
    if (ret != 0)
        return fail_setup(tls, "mbedtls_ssl_setup (out of memory?)", ret);
    ret = mbedtls_ssl_set_hostname(&tls->ssl, cfg->server_name); /* SNI + name check */
    if (ret != 0)
        return fail_setup(tls, "server_name", ret);
    mbedtls_ssl_set_bio(&tls->ssl, tls, bio_send, bio_recv, NULL);

    if (cfg->session != NULL && cfg->session_len > 0) {
#if defined(MBEDTLS_SSL_SESSION_TICKETS)
        tls->session_note = offer_session(tls, cfg);
        tls->session_offered = tls->session_note == NULL;
#else
        tls->session_note = "session blob: built without MBEDTLS_SSL_SESSION_TICKETS";
#endif
    }

    tls->self.ctx = tls;
    tls->self.send = tls_send;
    tls->self.recv = tls_recv;
    return KL_OK;
}

/* ---- handshake and data ------------------------------------------------------ */

int kl_tls_handshake(kl_tls_t *tls)
{
    if (tls == NULL || tls->lower == NULL)
        return KL_ERR_ARG;
    if (tls->handshake_done)
        return 1;
    if (tls->last_status != KL_OK)
        return tls->last_status; /* a failed handshake stays failed */
    /* mbedtls_ssl_handshake's own loop, one step at a time, to see whether
     * the server's Certificate is processed: it is not in a resumed
     * handshake (TLS 1.2: ServerHello -> ChangeCipherSpec; TLS 1.3:
     * EncryptedExtensions -> Finished once the PSK is accepted). mbedTLS
     * frees its handshake state (`resume`, the key exchange mode) before
     * the handshake returns, and has no public getter for either. */
    int ret = 0;
    while (!mbedtls_ssl_is_handshake_over(&tls->ssl)) {
        if (tls->ssl.MBEDTLS_PRIVATE(state) == MBEDTLS_SSL_SERVER_CERTIFICATE)
            tls->cert_received = 1;
        ret = mbedtls_ssl_handshake_step(&tls->ssl);
        if (ret != 0)
            break;
    }
    if (ret == 0) {
        tls->handshake_done = 1;
        tls->verify_flags = mbedtls_ssl_get_verify_result(&tls->ssl);
#if defined(MBEDTLS_SSL_SESSION_TICKETS) && defined(MBEDTLS_SSL_PROTO_TLS1_2)
        /* TLS 1.2: the ticket (or the session id) came with the handshake. */
        if (mbedtls_ssl_get_version_number(&tls->ssl) == MBEDTLS_SSL_VERSION_TLS1_2)
            take_session(tls);
#endif
        return 1;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
        return 0;
    return map_error(tls, ret);
}

#if defined(MBEDTLS_SSL_SESSION_TICKETS) && defined(MBEDTLS_SSL_PROTO_TLS1_3)
/* A TLS 1.3 server sent a NewSessionTicket; mbedTLS has stored it in its
 * session: take it (the application saves it with kl_tls_session_save). */
static void on_new_ticket(kl_tls_t *tls)
{
    tls->tickets_received++;
    take_session(tls);
}
#endif

/* Before application data moves: arguments, the handshake, a sticky
 * failure. Returns 1 to go on, else what send/recv return. */
static int session_ready(kl_tls_t *tls, const uint8_t *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return KL_ERR_ARG;
    if (!tls->handshake_done) {
        int h = kl_tls_handshake(tls);
        if (h <= 0)
            return h;
    }
    return tls->last_status != KL_OK ? tls->last_status : 1;
}

static int tls_recv(void *ctx, uint8_t *buf, size_t len)
{
    kl_tls_t *tls = ctx;
    int r = session_ready(tls, buf, len);
    if (r != 1)
        return r;
    for (;;) {
        int ret = mbedtls_ssl_read(&tls->ssl, buf, len);
        if (ret > 0)
            return ret;
        if (ret == 0)
            return fail(tls, KL_ERR_CONN_CLOSED, MBEDTLS_ERR_SSL_CONN_EOF);
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
            return 0;
#if defined(MBEDTLS_SSL_SESSION_TICKETS) && defined(MBEDTLS_SSL_PROTO_TLS1_3)
        if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
            on_new_ticket(tls);
            continue;
        }
#endif
        return map_error(tls, ret);
    }
}

static int tls_send(void *ctx, const uint8_t *buf, size_t len)
{
    kl_tls_t *tls = ctx;
    int r = session_ready(tls, buf, len);
    if (r != 1)
        return r;
    /* mbedTLS wants a write that returned WANT_WRITE repeated with the same
     * bytes; the layer above may offer more by then, so offer exactly what
     * mbedTLS took the first time. */
    size_t n = len;
    if (tls->write_pending > 0) {
        if (len < tls->write_pending)
            return fail(tls, KL_ERR_STATE, 0);
        n = tls->write_pending;
    } else {
        int max = mbedtls_ssl_get_max_out_record_payload(&tls->ssl);
        if (max > 0 && n > (size_t)max)
            n = (size_t)max;
    }
    int ret = mbedtls_ssl_write(&tls->ssl, buf, n);
    if (ret > 0) {
        tls->write_pending = 0;
        return ret;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_WRITE || ret == MBEDTLS_ERR_SSL_WANT_READ) {
        tls->write_pending = n;
        return 0;
    }
    return map_error(tls, ret);
}

kl_transport_t *kl_tls_transport(kl_tls_t *tls)
{
    return tls != NULL && tls->lower != NULL ? &tls->self : NULL;
}

void kl_tls_close(kl_tls_t *tls)
{
    if (tls != NULL && tls->handshake_done && tls->last_status == KL_OK)
        (void)mbedtls_ssl_close_notify(&tls->ssl);
}

void kl_tls_free(kl_tls_t *tls)
{
    if (tls == NULL)
        return;
    mbedtls_ssl_free(&tls->ssl);
    mbedtls_ssl_config_free(&tls->conf);
    mbedtls_x509_crt_free(&tls->ca);
    mbedtls_x509_crt_free(&tls->own_cert);
    mbedtls_pk_free(&tls->own_key);
    mbedtls_ctr_drbg_free(&tls->drbg);
    mbedtls_entropy_free(&tls->entropy);
    mbedtls_ssl_session_free(&tls->session); /* zeroises the secrets */
    tls->session_held = 0;
    tls->new_session_available = 0;
    tls->lower = NULL;
    tls->handshake_done = 0;
}

/* ---- diagnostics ------------------------------------------------------------ */

/* Appends to buf (capacity cap, always NUL-terminated). */
static void append(char *buf, size_t cap, const char *s)
{
    size_t used = strlen(buf);
    if (used + 1 >= cap)
        return;
    snprintf(buf + used, cap - used, "%s%s", used > 0 ? "; " : "", s);
}

static void cert_reasons(const kl_tls_t *tls, char *buf, size_t cap)
{
    uint32_t f = tls->verify_flags;
    char tmp[160];

    if (f & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
        const char *host = mbedtls_ssl_get_hostname((mbedtls_ssl_context *)&tls->ssl);
        snprintf(tmp, sizeof tmp, "certificate name mismatch (expected %s)", host ? host : "?");
        append(buf, cap, tmp);
        f &= ~(uint32_t)MBEDTLS_X509_BADCERT_CN_MISMATCH;
    }
    if (f & MBEDTLS_X509_BADCERT_NOT_TRUSTED) {
        append(buf, cap, "certificate not trusted (not issued by a configured CA)");
        f &= ~(uint32_t)MBEDTLS_X509_BADCERT_NOT_TRUSTED;
    }
    if (f & MBEDTLS_X509_BADCERT_EXPIRED) {
        append(buf, cap, "certificate expired");
        f &= ~(uint32_t)MBEDTLS_X509_BADCERT_EXPIRED;
    }
    if (f & MBEDTLS_X509_BADCERT_FUTURE) {
        append(buf, cap, "certificate not yet valid (check the clock)");
        f &= ~(uint32_t)MBEDTLS_X509_BADCERT_FUTURE;
    }
    if (f != 0) {
        /* The rest in mbedTLS's words, one reason per line. */
        char info[256];
        if (mbedtls_x509_crt_verify_info(info, sizeof info, "", f) > 0) {
            for (char *line = info, *nl; *line != '\0'; line = nl + 1) {
                nl = strchr(line, '\n');
                if (nl == NULL)
                    nl = line + strlen(line) - 1;
                else
                    *nl = '\0';
                if (*line != '\0')
                    append(buf, cap, line);
            }
        }
    }
    if (buf[0] == '\0')
        append(buf, cap, "certificate rejected");
}

const char *kl_tls_error_text(const kl_tls_t *tls, char *buf, size_t cap)
{
    if (buf == NULL || cap == 0)
        return "";
    buf[0] = '\0';
    if (tls == NULL || tls->last_status == KL_OK)
        return buf;
    if (tls->last_status == KL_ERR_TLS_CERT) {
        cert_reasons(tls, buf, cap);
        return buf;
    }
    if (tls->last_status == KL_ERR_TLS_RECORD_TOO_LARGE) {
        snprintf(buf, cap, "TLS record of %zu bytes exceeds MBEDTLS_SSL_IN_CONTENT_LEN (%d)",
                 tls->rec_last_len, MBEDTLS_SSL_IN_CONTENT_LEN);
        return buf;
    }
    append(buf, cap, kl_strerror(tls->last_status));
    if (tls->last_status == KL_ERR_TLS_SETUP && tls->setup_step != NULL)
        append(buf, cap, tls->setup_step);
    if (tls->last_error != 0) {
        char err[128];
#if defined(MBEDTLS_ERROR_C)
        mbedtls_strerror(tls->last_error, err, sizeof err);
#else
        snprintf(err, sizeof err, "mbedTLS error -0x%04x", (unsigned)-tls->last_error);
#endif
        append(buf, cap, err);
    }
    return buf;
}

const char *kl_tls_version(const kl_tls_t *tls)
{
    if (tls == NULL || !tls->handshake_done)
        return "";
    return mbedtls_ssl_get_version(&tls->ssl);
}

int kl_tls_exporter(kl_tls_t *tls, uint8_t out[32])
{
#if defined(MBEDTLS_SSL_KEYING_MATERIAL_EXPORT) && defined(MBEDTLS_SSL_PROTO_TLS1_3)
    static const char label[] = "EXPORTER-Channel-Binding";
    if (tls == NULL || !tls->handshake_done ||
        mbedtls_ssl_get_version_number(&tls->ssl) != MBEDTLS_SSL_VERSION_TLS1_3)
        return KL_ERR_STATE;
    if (mbedtls_ssl_export_keying_material(&tls->ssl, out, 32, label, sizeof label - 1, NULL, 0, 0) != 0)
        return KL_ERR_STATE;
    return KL_OK;
#else
    (void)tls, (void)out;
    return KL_ERR_STATE;
#endif
}

void kl_tls_hold_reads(kl_tls_t *tls, int hold) { tls->hold = hold ? 1 : 0; }

void kl_tls_set_preread(kl_tls_t *tls, const uint8_t *data, size_t len)
{
    tls->preread = data;
    tls->preread_len = len;
}
