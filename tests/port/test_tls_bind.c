/* port/mbedtls/kl_tls_bind.c: the connection manager's TLS binding over
 * transports that fail, stall or hold a canned answer (no server: the
 * handshake never completes here; the manager's tests run it end to end). */
#include <string.h>

#include "kl_tls_bind.h"
#include "kt.h"

/* A lower transport: records what is sent, answers recv from `in`. */
typedef struct fake {
    int send_ret;        /* 0: accept everything; else returned as is */
    int recv_ret;        /* returned when `in` is empty */
    uint8_t out[4096];
    size_t out_len;
    const uint8_t *in;
    size_t in_len;
    int sends, recvs;
} fake_t;

static int fake_send(void *ctx, const uint8_t *buf, size_t len)
{
    fake_t *f = ctx;
    f->sends++;
    if (f->send_ret != 0)
        return f->send_ret;
    if (len > sizeof f->out - f->out_len)
        len = sizeof f->out - f->out_len;
    memcpy(f->out + f->out_len, buf, len);
    f->out_len += len;
    return (int)len;
}

static int fake_recv(void *ctx, uint8_t *buf, size_t len)
{
    fake_t *f = ctx;
    f->recvs++;
    if (f->in_len == 0)
        return f->recv_ret;
    if (len > f->in_len)
        len = f->in_len;
    memcpy(buf, f->in, len);
    f->in += len;
    f->in_len -= len;
    return (int)len;
}

static kl_transport_t lower_of(fake_t *f)
{
    kl_transport_t t = {f, fake_send, fake_recv};
    return t;
}

static int contains(const uint8_t *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return 1;
    return 0;
}

static kl_tls_t sessions[KL_SESSION_SLOTS];
static const kl_tls_ops_t *ops = &kl_tls_mbedtls_ops;

static void insecure_base(kl_tls_config_t *base)
{
    memset(base, 0, sizeof *base);
    base->insecure_skip_verify = 1;
    base->server_name = "ignored.example"; /* per connection: from the params */
    base->alpn = "ignored";
}

static void test_init_and_idle_slots(void)
{
    kl_tls_mbedtls_t b;
    kl_tls_config_t base;
    kl_tls_info_t info;
    uint8_t blob[64];
    size_t len = 99;
    char text[128];
    insecure_base(&base);
    memset(sessions, 0xa5, sizeof sessions);
    kl_tls_mbedtls_init(&b, &base, sessions, 99);
    KT_CHECK_EQ(b.n, KL_SESSION_SLOTS);
    KT_CHECK(b.base.server_name == NULL && b.base.alpn == NULL && b.base.session == NULL);
    KT_CHECK_EQ(b.base.insecure_skip_verify, 1);
    KT_CHECK_EQ(sessions[0].last_status, 0); /* zeroed */
    ops->info(&b, 0, &info);
    KT_CHECK(!info.verified && !info.resumed && !info.session_offered && !info.new_session);
    KT_CHECK_STR(info.version, "");
    KT_CHECK_EQ(ops->handshake(&b, 0), KL_ERR_STATE);
    KT_CHECK_EQ(ops->send(&b, 0, (const uint8_t *)"x", 1), KL_ERR_STATE);
    KT_CHECK_EQ(ops->recv(&b, 0, blob, sizeof blob), KL_ERR_STATE);
    KT_CHECK_EQ(ops->save_session(&b, 0, blob, sizeof blob, &len), KL_ERR_STATE);
    KT_CHECK_EQ(len, 0);
    KT_CHECK_STR(ops->error_text(&b, 0, text, sizeof text), "");
    ops->close(&b, 0); /* nothing set up: harmless */
    ops->close(&b, -1);
    ops->close(&b, KL_SESSION_SLOTS);
    ops->hold_reads(&b, 1, 1);
    ops->preread(&b, 1, NULL, 0);
    KT_CHECK_EQ(ops->handshake(&b, KL_SESSION_SLOTS), KL_ERR_STATE);
}

/* The ClientHello goes through the lower transport with the params' name
 * and ALPN; the handshake waits (0) while the peer has nothing. */
static void test_client_hello_and_wait(void)
{
    kl_tls_mbedtls_t b;
    kl_tls_config_t base;
    kl_tls_params_t p = {"xmpp.example.org", "xmpp-client", NULL, 0};
    kl_tls_info_t info;
    fake_t f = {0};
    kl_transport_t lower = lower_of(&f);
    insecure_base(&base);
    kl_tls_mbedtls_init(&b, &base, sessions, KL_SESSION_SLOTS);
    KT_CHECK_EQ(ops->setup(&b, 0, &p, &lower), KL_OK);
    KT_CHECK_EQ(ops->handshake(&b, 0), 0);
    KT_CHECK(f.out_len > 5 && f.out[0] == 0x16); /* a handshake record */
    KT_CHECK(contains(f.out, f.out_len, "xmpp.example.org"));
    KT_CHECK(contains(f.out, f.out_len, "xmpp-client"));
    KT_CHECK(!contains(f.out, f.out_len, "ignored"));
    KT_CHECK(f.recvs > 0);
    ops->info(&b, 0, &info);
    KT_CHECK_EQ(info.verified, 0); /* not done (and verification is off) */
    KT_CHECK_EQ(info.round_trips, 1);
    KT_CHECK_STR(info.version, "");
    KT_CHECK(kl_tls_mbedtls_session(&b, 0) == &sessions[0]);
    KT_CHECK(kl_tls_mbedtls_session(&b, 1) == NULL);
    /* no close_notify before the handshake is done */
    size_t sent = f.out_len;
    ops->close(&b, 0);
    KT_CHECK_EQ(f.out_len, sent);
    KT_CHECK(kl_tls_mbedtls_session(&b, 0) == NULL);
    ops->close(&b, 0); /* idempotent */
    KT_CHECK_EQ(ops->handshake(&b, 0), KL_ERR_STATE);
}

/* XEP-0305 full: held reads do not touch the lower transport; then the
 * bytes after <proceed/> are read first: here a fatal alert. */
static void test_hold_and_preread(void)
{
    static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}; /* handshake_failure */
    kl_tls_mbedtls_t b;
    kl_tls_config_t base;
    kl_tls_params_t p = {"example.org", NULL, NULL, 0};
    fake_t f = {0};
    kl_transport_t lower = lower_of(&f);
    char text[160];
    insecure_base(&base);
    kl_tls_mbedtls_init(&b, &base, sessions, 1);
    KT_CHECK_EQ(ops->setup(&b, 0, &p, &lower), KL_OK);
    ops->hold_reads(&b, 0, 1);
    KT_CHECK_EQ(ops->handshake(&b, 0), 0);
    KT_CHECK(f.out_len > 0);
    KT_CHECK_EQ(f.recvs, 0);
    KT_CHECK(!contains(f.out, f.out_len, "xmpp-client")); /* no ALPN asked */
    ops->preread(&b, 0, alert, sizeof alert);
    ops->hold_reads(&b, 0, 0);
    KT_CHECK_EQ(ops->handshake(&b, 0), KL_ERR_TLS);
    KT_CHECK_EQ(f.recvs, 0); /* the alert came from the preread */
    KT_CHECK(ops->error_text(&b, 0, text, sizeof text)[0] != '\0');
    KT_CHECK_EQ(ops->handshake(&b, 0), KL_ERR_TLS); /* stays failed */
    ops->close(&b, 0);
    /* the reason survives close */
    KT_CHECK(ops->error_text(&b, 0, text, sizeof text)[0] != '\0');
}

/* The lower transport fails: the handshake reports its error. */
static void test_lower_fails(void)
{
    kl_tls_mbedtls_t b;
    kl_tls_config_t base;
    kl_tls_params_t p = {"example.org", "xmpp-client", NULL, 0};
    fake_t f = {0};
    kl_transport_t lower = lower_of(&f);
    uint8_t buf[16];
    insecure_base(&base);
    kl_tls_mbedtls_init(&b, &base, sessions, KL_SESSION_SLOTS);
    f.send_ret = KL_ERR_IO;
    KT_CHECK_EQ(ops->setup(&b, 1, &p, &lower), KL_OK);
    KT_CHECK_EQ(ops->handshake(&b, 1), KL_ERR_IO);
    KT_CHECK_EQ(ops->send(&b, 1, (const uint8_t *)"x", 1), KL_ERR_IO);
    ops->close(&b, 1);
    /* the peer closes before answering */
    memset(&f, 0, sizeof f);
    f.recv_ret = KL_ERR_CONN_CLOSED;
    KT_CHECK_EQ(ops->setup(&b, 1, &p, &lower), KL_OK);
    KT_CHECK_EQ(ops->recv(&b, 1, buf, sizeof buf), KL_ERR_CONN_CLOSED);
    /* set up again without close: the old session is freed, a new one runs */
    memset(&f, 0, sizeof f);
    KT_CHECK_EQ(ops->setup(&b, 1, &p, &lower), KL_OK);
    KT_CHECK_EQ(ops->handshake(&b, 1), 0);
    ops->close(&b, 1);
    ops->close(&b, 1);
}

/* Setup failures: a slot without a kl_tls_t, verification without a CA,
 * no server name. close is safe after each. */
static void test_setup_failures(void)
{
    kl_tls_mbedtls_t b;
    kl_tls_config_t base;
    kl_tls_params_t p = {"example.org", NULL, NULL, 0};
    fake_t f = {0};
    kl_transport_t lower = lower_of(&f);
    char text[160];

    memset(&base, 0, sizeof base); /* verification on, no CA */
    kl_tls_mbedtls_init(&b, &base, sessions, 1);
    KT_CHECK_EQ(ops->setup(&b, 1, &p, &lower), KL_ERR_TLS_SETUP);
    KT_CHECK(strstr(ops->error_text(&b, 1, text, sizeof text), "slot 1") != NULL);
    ops->close(&b, 1);
    KT_CHECK_EQ(ops->setup(&b, KL_SESSION_SLOTS, &p, &lower), KL_ERR_ARG);
    KT_CHECK_EQ(ops->setup(&b, 0, NULL, &lower), KL_ERR_ARG);
    KT_CHECK_EQ(ops->setup(&b, 0, &p, NULL), KL_ERR_ARG);

    KT_CHECK_EQ(ops->setup(&b, 0, &p, &lower), KL_ERR_TLS_SETUP);
    KT_CHECK(strstr(ops->error_text(&b, 0, text, sizeof text), "no CA") != NULL);
    KT_CHECK_EQ(ops->handshake(&b, 0), KL_ERR_TLS_SETUP);
    ops->close(&b, 0);
    ops->close(&b, 0);
    KT_CHECK(strstr(ops->error_text(&b, 0, text, sizeof text), "no CA") != NULL);
    KT_CHECK_EQ(f.sends, 0);

    insecure_base(&base);
    kl_tls_mbedtls_init(&b, &base, sessions, 1);
    p.server_name = NULL;
    KT_CHECK_EQ(ops->setup(&b, 0, &p, &lower), KL_ERR_ARG);
    ops->close(&b, 0);
    KT_CHECK_STR(ops->error_text(&b, 0, NULL, 0), "");
}

/* A session blob that is not one: not offered (a full handshake), no error. */
static void test_bad_session_blob(void)
{
    static const uint8_t junk[40] = "KLS1 this is not a session blob at all";
    kl_tls_mbedtls_t b;
    kl_tls_config_t base;
    kl_tls_params_t p = {"example.org", NULL, junk, sizeof junk};
    kl_tls_info_t info;
    fake_t f = {0};
    kl_transport_t lower = lower_of(&f);
    uint8_t out[64];
    size_t len = 1;
    insecure_base(&base);
    kl_tls_mbedtls_init(&b, &base, sessions, 1);
    KT_CHECK_EQ(ops->setup(&b, 0, &p, &lower), KL_OK);
    KT_CHECK(sessions[0].session_note != NULL);
    KT_CHECK_EQ(ops->handshake(&b, 0), 0);
    ops->info(&b, 0, &info);
    KT_CHECK_EQ(info.session_offered, 0);
    KT_CHECK_EQ(info.resumed, 0);
    KT_CHECK_EQ(ops->save_session(&b, 0, out, sizeof out, &len), KL_ERR_STATE);
    KT_CHECK_EQ(ops->save_session(&b, 0, NULL, sizeof out, &len), KL_ERR_ARG);
    ops->close(&b, 0);
}

int main(void)
{
    KT_RUN(test_init_and_idle_slots);
    KT_RUN(test_client_hello_and_wait);
    KT_RUN(test_hold_and_preread);
    KT_RUN(test_lower_fails);
    KT_RUN(test_setup_failures);
    KT_RUN(test_bad_session_blob);
    return kt_summary("tls_bind");
}
