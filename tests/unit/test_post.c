/* The post queue (kl_post.h): bounds, wrap-around, one producer thread
 * against one consumer, and the drain into an online client. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinglet/kinglet.h"
#include "kinglet/kl_post.h"
#include "kinglet/kl_app.h"
#include "kt.h"

#define HDR "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
            "xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>"
#define FEAT_SASL "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
                  "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
#define FEAT_BIND "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
#define BIND_RES "<iq type='result' id='kl-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" \
                 "<jid>alice@localhost/dev</jid></bind></iq>"

static const uint8_t *u8(const char *s) { return (const uint8_t *)s; }

static void test_bounds(void)
{
    static uint8_t ring[64];
    kl_post_t q;
    uint8_t out[64];
    size_t n = 0;
    KT_CHECK_EQ(kl_post_init(&q, ring, 48), KL_ERR_ARG); /* not a power of two */
    KT_CHECK_EQ(kl_post_init(&q, ring, 2), KL_ERR_ARG);
    KT_CHECK_EQ(kl_post_init(NULL, ring, 64), KL_ERR_ARG);
    KT_CHECK_EQ(kl_post_init(&q, ring, 64), KL_OK);
    KT_CHECK_EQ(kl_post_pending(&q), 0);
    KT_CHECK_EQ(kl_post_take(&q, out, sizeof out, &n), KL_ERR_STATE);
    KT_CHECK_EQ(kl_post_stanza(&q, u8("x"), 0), KL_ERR_ARG);
    KT_CHECK_EQ(kl_post_stanza(&q, out, 63), KL_ERR_TOO_LARGE); /* 2 + 63 > 64: never fits */
    KT_CHECK_EQ(kl_post_stanza(&q, out, 62), KL_OK);            /* exactly the ring */
    KT_CHECK_EQ(kl_post_stanza(&q, u8("y"), 1), KL_ERR_TX_FULL);
    KT_CHECK_EQ(q.refused, 2);
    KT_CHECK_EQ(kl_post_take(&q, out, 10, &n), KL_ERR_TOO_LARGE); /* left in place */
    KT_CHECK_EQ(n, 62);
    KT_CHECK_EQ(kl_post_pending(&q), 1);
    KT_CHECK_EQ(kl_post_take(&q, out, sizeof out, &n), KL_OK);
    KT_CHECK_EQ(n, 62);
    KT_CHECK_EQ(kl_post_pending(&q), 0);
}

/* Records of every length through a small ring, so that headers and bodies
 * wrap at every offset. */
static void test_wrap(void)
{
    static uint8_t ring[32];
    kl_post_t q;
    uint8_t in[30], out[30];
    size_t len, n, k, bad = 0;
    KT_CHECK_EQ(kl_post_init(&q, ring, sizeof ring), KL_OK);
    for (k = 0; k < 2000; k++) {
        len = 1 + k % 29;
        memset(in, (int)(k & 0xff), len);
        in[0] = (uint8_t)len;
        KT_CHECK_EQ(kl_post_stanza(&q, in, len), KL_OK);
        if (k % 3 == 2 || kl_post_stanza(&q, in, 30) == KL_ERR_TX_FULL) {
            /* drain all */
        }
        while (kl_post_take(&q, out, sizeof out, &n) == KL_OK)
            if (n != (size_t)out[0] && n != 30)
                bad++;
    }
    KT_CHECK_EQ(bad, 0);
    KT_CHECK_EQ(kl_post_pending(&q), 0);
}

/* One producer thread, one consumer: every record arrives once, in order,
 * intact. */
#define N_POSTS 200000u
static kl_post_t tq;
static uint8_t tring[256];

static void *producer(void *arg)
{
    uint32_t seq;
    char buf[64];
    (void)arg;
    for (seq = 0; seq < N_POSTS;) {
        int n = snprintf(buf, sizeof buf, "<message id='%u'>%.*s</message>", (unsigned)seq, (int)(seq % 17),
                         "abcdefghijklmnopq");
        if (kl_post_stanza(&tq, (const uint8_t *)buf, (size_t)n) == KL_OK)
            seq++;
    }
    return NULL;
}

static void test_threads(void)
{
    pthread_t t;
    uint32_t seq = 0, bad = 0;
    char out[64], want[64];
    size_t n;
    KT_CHECK_EQ(kl_post_init(&tq, tring, sizeof tring), KL_OK);
    KT_CHECK_EQ(pthread_create(&t, NULL, producer, NULL), 0);
    while (seq < N_POSTS) {
        if (kl_post_take(&tq, (uint8_t *)out, sizeof out - 1, &n) != KL_OK)
            continue;
        out[n] = 0;
        snprintf(want, sizeof want, "<message id='%u'>%.*s</message>", (unsigned)seq, (int)(seq % 17),
                 "abcdefghijklmnopq");
        if (strcmp(out, want) != 0)
            bad++;
        seq++;
    }
    pthread_join(t, NULL);
    KT_CHECK_EQ(bad, 0);
    KT_CHECK_EQ(seq, N_POSTS);
    KT_CHECK_EQ(kl_post_pending(&tq), 0);
}

/* The drain: nothing before online, then every posted stanza in order; one
 * the client refuses is dropped and counted, not sent. */
static kl_client_t cl;
static char wire[16384];
static size_t wire_len;

static int rnd(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    memset(out, 7, len);
    return 0;
}

static void out_take(void)
{
    size_t n;
    const uint8_t *p = kl_engine_output(&cl, &n);
    if (wire_len + n < sizeof wire) {
        memcpy(wire + wire_len, p, n);
        wire_len += n;
        wire[wire_len] = 0;
    }
    kl_engine_output_ack(&cl, n);
}

static void feed(const char *s)
{
    size_t len = strlen(s), cap, n;
    kl_event_t ev;
    while (len) {
        uint8_t *b = kl_engine_input_buf(&cl, &cap);
        n = len < cap ? len : cap;
        memcpy(b, s, n);
        kl_engine_input_ack(&cl, n);
        s += n;
        len -= n;
        while (kl_engine_poll(&cl, 0, &ev) > 0)
            ;
    }
    out_take();
}

/* The drains' client: PLAIN over verified TLS, no initial presence. */
static void client_config(kl_client_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->jid = "alice@localhost/dev";
    cfg->password = "secret";
    cfg->pipelining = KL_PIPELINING_SAFE;
    cfg->no_presence = 1;
    cfg->random = rnd;
}

static void test_drain(void)
{
    static uint8_t ring[4096];
    kl_post_t q;
    kl_client_config_t cfg;
    client_config(&cfg);
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_post_init(&q, ring, sizeof ring), KL_OK);
    KT_CHECK_EQ(kl_post_stanza(&q, u8("<message to='bob@localhost'><body>1</body></message>"), 52), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, 0, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    out_take();
    KT_CHECK_EQ(kl_post_drain(&q, &cl), 0); /* not online yet */
    KT_CHECK(strstr(wire, "<body>1</body>") == NULL);
    feed(HDR FEAT_SASL SUCCESS HDR FEAT_BIND BIND_RES);
    KT_CHECK(kl_client_is_online(&cl));
    KT_CHECK_EQ(kl_post_stanza(&q, u8("<message to='bob@localhost'><body>2</body></message>"), 52), KL_OK);
    KT_CHECK_EQ(kl_post_stanza(&q, u8("<presence/>"), 11), KL_OK);
    KT_CHECK_EQ(kl_post_drain(&q, &cl), 3);
    out_take();
    KT_CHECK_EQ(q.sent, 3);
    KT_CHECK_EQ(q.rejected, 0);
    KT_CHECK(strstr(wire, "<body>1</body>") != NULL);
    KT_CHECK(strstr(wire, "<body>1</body>") < strstr(wire, "<body>2</body>"));
    KT_CHECK(strstr(wire, "<body>2</body>") < strstr(wire, "<presence/>"));
    /* a transmit buffer without room: the rest waits for the next drain */
    {
        char big[1200];
        int k;
        memset(big, 0, sizeof big);
        snprintf(big, sizeof big, "<message to='bob@localhost'><body>%0*d</body></message>", 1100, 0);
        for (k = 0; k < 3; k++)
            KT_CHECK_EQ(kl_post_stanza(&q, u8(big), strlen(big)), KL_OK);
        KT_CHECK(kl_post_drain(&q, &cl) < 3); /* 1536-byte transmit buffer: not all three */
        KT_CHECK_EQ(kl_post_pending(&q), 1);
        out_take();
        KT_CHECK(kl_post_drain(&q, &cl) >= 1);
        out_take();
        KT_CHECK(kl_post_drain(&q, &cl) >= 0);
        out_take();
        KT_CHECK_EQ(kl_post_pending(&q), 0);
        KT_CHECK_EQ(q.sent, 6);
    }
    KT_CHECK_EQ(kl_post_pending(&q), 0);
    /* a record longer than the transmit buffer ever takes: dropped and
     * counted, not left to hold up the ones after it */
    {
        static char huge[KL_TX_BUF_SIZE + 64];
        size_t sent = q.sent;
        memset(huge, 0, sizeof huge);
        snprintf(huge, sizeof huge, "<message to='bob@localhost'><body>%0*d</body></message>", KL_TX_BUF_SIZE, 0);
        KT_CHECK_EQ(kl_post_stanza(&q, u8(huge), strlen(huge)), KL_OK);
        KT_CHECK_EQ(kl_post_stanza(&q, u8("<presence type='away'/>"), 23), KL_OK);
        wire_len = 0;
        wire[0] = 0;
        KT_CHECK_EQ(kl_post_drain(&q, &cl), 2);
        out_take();
        KT_CHECK_STR(wire, "<presence type='away'/>");
        KT_CHECK_EQ(q.rejected, 1);
        KT_CHECK_EQ(q.sent, sent + 1);
        KT_CHECK_EQ(kl_post_pending(&q), 0);
    }
    /* records that wrap around the end of the ring go whole */
    {
        static uint8_t small[64];
        kl_post_t r;
        int k;
        KT_CHECK_EQ(kl_post_init(&r, small, sizeof small), KL_OK);
        wire_len = 0;
        wire[0] = 0;
        for (k = 0; k < 3; k++) {
            KT_CHECK_EQ(kl_post_stanza(&r, u8("<message to='bob@x'><body>w</body></message>"), 44), KL_OK);
            KT_CHECK_EQ(kl_post_drain(&r, &cl), 1);
        }
        out_take();
        KT_CHECK_STR(wire, "<message to='bob@x'><body>w</body></message><message to='bob@x'><body>w</body></message>"
                           "<message to='bob@x'><body>w</body></message>");
        KT_CHECK_EQ(r.sent, 3);
    }
#if KL_ENABLE_APP
    /* while a long stanza is open the client takes no other: the record
     * waits (not dropped) and goes after the long one ends */
    {
        size_t sent = q.sent, rejected = q.rejected;
        wire_len = 0;
        wire[0] = 0;
        KT_CHECK_EQ(kl_send_message_begin(&cl, "bob@localhost", NULL), KL_OK);
        KT_CHECK_EQ(kl_post_stanza(&q, u8("<presence type='dnd'/>"), 22), KL_OK);
        KT_CHECK_EQ(kl_post_drain(&q, &cl), 0);
        KT_CHECK_EQ(kl_post_pending(&q), 1);
        KT_CHECK_EQ(kl_send_text(&cl, u8("long"), 4), 4);
        KT_CHECK_EQ(kl_send_message_end(&cl), KL_OK);
        KT_CHECK_EQ(kl_post_drain(&q, &cl), 1);
        out_take();
        KT_CHECK(strstr(wire, "<body>long</body></message><presence type='dnd'/>") != NULL);
        KT_CHECK_EQ(q.sent, sent + 1);
        KT_CHECK_EQ(q.rejected, rejected);
    }
#endif
}

#if KL_ENABLE_SM
/* The stream-management queue full (the transmit buffer has room): the
 * record waits, not dropped, and goes once the server acknowledged. */
static void test_drain_sm_full(void)
{
    static uint8_t ring[1024], smq[128]; /* two 52-byte records and their headers */
    static const char msg[] = "<message to='bob@localhost'><body>1</body></message>";
    kl_post_t q;
    kl_client_config_t cfg;
    client_config(&cfg);
    cfg.sm_queue = smq;
    cfg.sm_queue_size = sizeof smq;
    wire_len = 0;
    wire[0] = 0;
    KT_CHECK_EQ(kl_client_init(&cl, &cfg), KL_OK);
    KT_CHECK_EQ(kl_post_init(&q, ring, sizeof ring), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&cl, 0, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    out_take();
    feed(HDR FEAT_SASL SUCCESS HDR
         "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/>"
         "</stream:features>" BIND_RES "<enabled xmlns='urn:xmpp:sm:3' id='s' resume='true'/>");
    KT_CHECK(kl_client_is_online(&cl));
    for (int k = 0; k < 3; k++)
        KT_CHECK_EQ(kl_post_stanza(&q, u8(msg), sizeof msg - 1), KL_OK);
    KT_CHECK_EQ(kl_post_drain(&q, &cl), 2);
    KT_CHECK_EQ(kl_post_pending(&q), 1);
    KT_CHECK_EQ(q.rejected, 0);
    out_take();
    feed("<a xmlns='urn:xmpp:sm:3' h='2'/>");
    KT_CHECK_EQ(kl_post_drain(&q, &cl), 1);
    KT_CHECK_EQ(kl_post_pending(&q), 0);
    KT_CHECK_EQ(q.sent, 3);
}
#endif

/* What the ring cannot use is refused with KL_ERR_ARG, nothing changed. */
static void test_arguments(void)
{
    static uint8_t ring[64], big[KL_POST_STANZA_MAX + 1];
    kl_post_t q, none;
    uint8_t out[8];
    size_t n = 5;
    memset(&none, 0, sizeof none);
    KT_CHECK_EQ(kl_post_init(&q, NULL, 64), KL_ERR_ARG);
    if (sizeof(size_t) > 4)
        KT_CHECK_EQ(kl_post_init(&q, ring, (size_t)0x80000000u * 2), KL_ERR_ARG);
    KT_CHECK_EQ(kl_post_init(&q, ring, sizeof ring), KL_OK);
    KT_CHECK_EQ(kl_post_stanza(NULL, u8("x"), 1), KL_ERR_ARG);
    KT_CHECK_EQ(kl_post_stanza(&none, u8("x"), 1), KL_ERR_ARG);
    KT_CHECK_EQ(kl_post_stanza(&q, NULL, 1), KL_ERR_ARG);
    KT_CHECK_EQ(kl_post_stanza(&q, big, sizeof big), KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(q.refused, 1);
    KT_CHECK_EQ(kl_post_pending(NULL), 0);
    KT_CHECK_EQ(kl_post_pending(&none), 0);
    KT_CHECK_EQ(kl_post_take(NULL, out, sizeof out, &n), KL_ERR_ARG);
    KT_CHECK_EQ(kl_post_take(&none, out, sizeof out, &n), KL_ERR_ARG);
    KT_CHECK_EQ(kl_post_take(&q, out, sizeof out, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_post_take(&q, NULL, sizeof out, &n), KL_ERR_ARG);
    /* no buffer and no room: the size of what waits */
    KT_CHECK_EQ(kl_post_stanza(&q, u8("<presence/>"), 11), KL_OK);
    KT_CHECK_EQ(kl_post_take(&q, NULL, 0, &n), KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(n, 11);
    KT_CHECK_EQ(kl_post_pending(&q), 1);
    KT_CHECK_EQ(kl_post_drain(NULL, &cl), KL_ERR_ARG);
    KT_CHECK_EQ(kl_post_drain(&none, &cl), KL_ERR_ARG);
    KT_CHECK_EQ(kl_post_drain(&q, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_post_pending(&q), 1);
}

int main(void)
{
    KT_RUN(test_bounds);
    KT_RUN(test_wrap);
    KT_RUN(test_threads);
    KT_RUN(test_drain);
#if KL_ENABLE_SM
    KT_RUN(test_drain_sm_full);
#endif
    KT_RUN(test_arguments);
    return kt_summary("post");
}
