/* libFuzzer target: a saved XEP-0198 session as read from storage
 * (kl_sm_load), and the engine resuming from whatever passes, against a
 * hostile server.
 *
 * Input layout:
 *   byte 0   options: bit 0 give the blob a valid MAC (what a bug that
 *            stored garbage, or an attacker who knows the key, would leave:
 *            the checks after authentication are what is fuzzed);
 *            bit 1 load without a key; bits 2-3 the queue: 4096, 300, 40
 *            bytes or none; bit 4 the server's stream starts after SASL
 *            success (a canned direct-TLS login precedes it); bit 5 lockstep
 *            (pipelining off)
 *   bytes 1-2 the blob's length (little endian, modulo what is left + 1)
 *   then     the blob, then the server's stream. 0xFF followed by one
 *            control byte is taken out of the stream and runs an action
 *            there: send a message, advance time, lose the link (connect
 *            again), reboot (save, init, load), close, kl_sm_reset.
 *
 * Invariants (abort on violation):
 *  - kl_sm_load returns KL_OK, KL_ERR_SM_STATE or (no key)
 *    KL_ERR_CACHE_NO_KEY; after anything but KL_OK nothing is left: no
 *    queue, no SM-ID, not resumable;
 *  - a loaded session saves back to the very bytes it was loaded from, and
 *    every saved session loads again (KL_OK);
 *  - the queue never holds more than the buffer, and no record without
 *    its bytes;
 *  - the engine: output within the transmit buffer, no "<resume" unless a
 *    resumable session was there, poll 0/1 with events in range, nothing
 *    after KL_EV_ERROR / KL_EV_CLOSED; once a poll returned 0 and the
 *    output was drained, nothing is due (next_timeout > 0: no busy loop); KL_EV_UNACKED only before an online
 *    event, KL_EV_RESUMED only after a <resume/> went out, KL_EV_ACKED's
 *    h never repeating or going back within a session.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinglet/kinglet.h"
#include "fuzz_util.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define KL_SM_REC_HDR_BYTES 6 /* a queue record's header (core/kl_internal.h) */

#define HDR "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
            "xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>"
#define FEAT_SASL "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
                  "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"

static const uint8_t key[KL_CACHE_KEY_LEN] = {9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                              16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

/* A toy keyed hash in HMAC's shape: the MAC logic is what is fuzzed. */
static int toy_hmac(void *ctx, kl_hash_alg_t alg, const uint8_t *k, size_t klen, const kl_slice_t *parts,
                    size_t nparts, uint8_t *out)
{
    uint64_t h = 14695981039346656037ull;
    size_t i, j;
    (void)ctx;
    CHECK(alg == KL_HASH_SHA256);
    for (i = 0; i < klen; i++)
        h = (h ^ k[i]) * 1099511628211ull;
    for (j = 0; j < nparts; j++)
        for (i = 0; i < parts[j].len; i++)
            h = (h ^ parts[j].p[i]) * 1099511628211ull;
    for (i = 0; i < 32; i++) {
        h = (h ^ i) * 1099511628211ull;
        out[i] = (uint8_t)(h >> 56);
    }
    return 0;
}

static const kl_crypto_t toy = {NULL, NULL, toy_hmac, NULL, toy_random_seq};

static kl_client_t cl;
static kl_client_config_t cfg;
static uint8_t queue[4096];
static uint8_t blob[KL_SM_BLOB_MAX(4096) + 64], again[sizeof blob];
static uint32_t now;
static int finished, got_online, resume_sent, resumable_at_connect, have_acked;
static uint32_t last_acked;
static unsigned options;

static void check_state(void)
{
    kl_sm_info_t i;
    CHECK(kl_sm_info(&cl, &i) == KL_OK);
    CHECK(i.queue_used <= cfg.sm_queue_size);
    CHECK(i.unacked <= i.queue_used / (KL_SM_REC_HDR_BYTES + 1)); /* no record without its bytes */
    CHECK((i.unacked == 0) == (i.queue_used == 0));
    CHECK(strlen(i.id) <= KL_SM_ID_MAX && strlen(i.location) <= KL_SM_LOCATION_MAX);
}

static void drain(void)
{
    size_t n;
    const uint8_t *p = kl_engine_output(&cl, &n);
    CHECK(n <= KL_TX_BUF_SIZE);
    if (has(p, n, "<resume")) {
        CHECK(resumable_at_connect);
        resume_sent = 1;
    }
    kl_engine_output_ack(&cl, n);
}

static void pump(void)
{
    kl_event_t ev;
    int r, guard = 0;
    while ((r = kl_engine_poll(&cl, now, &ev)) > 0) {
        CHECK(r == 1 && !finished);
        CHECK(ev.type > KL_EV_NONE && ev.type < KL_EV_LINK_DOWN);
        drain(); /* what led to this event */
        switch (ev.type) {
        case KL_EV_ONLINE: got_online = 1; break;
        case KL_EV_RESUMED:
            CHECK(resume_sent);
            got_online = 1;
            break;
        case KL_EV_UNACKED:
            CHECK(!got_online);
            CHECK(ev.stanza.raw.len > 0 && ev.stanza.raw.len <= KL_TX_BUF_SIZE);
            CHECK(ev.stanza.raw.p >= queue && ev.stanza.raw.p + ev.stanza.raw.len <= queue + sizeof queue);
            break;
        case KL_EV_ACKED:
            CHECK(!have_acked || (int32_t)(ev.seq - last_acked) > 0);
            have_acked = 1;
            last_acked = ev.seq;
            break;
        case KL_EV_ERROR:
        case KL_EV_CLOSED: finished = 1; break;
        default: break;
        }
        check_state();
        CHECK(++guard < 1 << 20);
    }
    CHECK(r == 0);
    drain();
    /* nothing due that the poll did not do: a port sleeps until then */
    if (!finished)
        CHECK(kl_engine_next_timeout(&cl, now) > 0);
}

static void feed(const uint8_t *p, size_t len) { fuzz_feed(&cl, p, len, &finished, pump); }

static void connect_(void)
{
    kl_sm_info_t i;
    CHECK(kl_sm_info(&cl, &i) == KL_OK);
    resumable_at_connect = i.resumable && cfg.sm_queue;
    resume_sent = got_online = finished = have_acked = 0;
    CHECK(kl_client_connect(&cl, now, KL_CHANNEL_TLS_VERIFIED) == KL_OK);
    drain();
    if (options & 16)
        feed((const uint8_t *)HDR FEAT_SASL SUCCESS, strlen(HDR FEAT_SASL SUCCESS));
}

static int load(const uint8_t *b, size_t n, int with_key)
{
    kl_sm_info_t i;
    int st = kl_sm_load(&cl, with_key ? &toy : NULL, with_key ? key : NULL, KL_CACHE_KEY_LEN, b, n);
    CHECK(st == KL_OK || st == KL_ERR_SM_STATE || (!with_key && st == KL_ERR_CACHE_NO_KEY));
    CHECK(kl_sm_info(&cl, &i) == KL_OK);
    if (st != KL_OK) {
        CHECK(!i.resumable && i.unacked == 0 && i.queue_used == 0 && i.id[0] == 0 && i.last_seq == 0);
    } else {
        /* a loaded session saves back to the same bytes */
        size_t m = 0;
        CHECK(kl_sm_save(&cl, &toy, key, sizeof key, again, sizeof again, &m) == KL_OK);
        CHECK(m == n && memcmp(again, b, n) == 0);
    }
    return st;
}

static void reboot(void)
{
    size_t n = 0;
    int st = kl_sm_save(&cl, &toy, key, sizeof key, blob, sizeof blob, &n);
    CHECK(st == KL_OK || st == KL_ERR_STATE);
    CHECK(kl_client_init(&cl, &cfg) == KL_OK);
    if (st == KL_OK)
        CHECK(load(blob, n, 1) == KL_OK);
    connect_();
}

static void do_op(uint8_t ctrl)
{
    uint32_t arg = ctrl >> 3;
    int st;
    switch (ctrl & 7) {
    case 0:
        st = kl_send_message(&cl, "bob@localhost/x", NULL, "reading");
        CHECK(st == KL_OK || st == KL_ERR_TX_FULL || st == KL_ERR_NOT_ONLINE || st == KL_ERR_TOO_LARGE);
        break;
    case 1: now += arg * 1000; break;
    case 2: connect_(); break;
    case 3: reboot(); break;
    case 4: (void)kl_client_close(&cl); break;
    case 5: kl_sm_reset(&cl); break;
    case 6: (void)kl_send_presence(&cl, NULL, NULL, arg & 1 ? "here" : NULL); break;
    default: now += arg * 20000 + 1; break;
    }
    drain();
    pump();
    check_state();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t qsizes[4] = {4096, 300, 40, 0};
    size_t n, i, start;
    uint8_t signed_blob[sizeof blob];
    if (size < 3)
        return 0;
    options = data[0];
    n = (size_t)(data[1] | data[2] << 8) % (size - 3 + 1);
    data += 3, size -= 3;
    if (n > sizeof signed_blob - 32)
        n = sizeof signed_blob - 32;

    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = "secret";
    cfg.pipelining = (options & 32) ? KL_PIPELINING_OFF : KL_PIPELINING_SAFE;
    cfg.random = toy_random_seq;
    cfg.sm_ack_every = 3;
    if (qsizes[(options >> 2) & 3]) {
        cfg.sm_queue = queue;
        cfg.sm_queue_size = qsizes[(options >> 2) & 3];
    }
    memset(queue, 0, sizeof queue);
    now = 1000;
    CHECK(kl_client_init(&cl, &cfg) == KL_OK);

    memcpy(signed_blob, data, n);
    if (options & 1) {
        kl_slice_t parts[2];
        parts[0].p = (const uint8_t *)"kinglet-sm";
        parts[0].len = 10;
        parts[1].p = signed_blob;
        parts[1].len = n;
        toy_hmac(NULL, KL_HASH_SHA256, key, sizeof key, parts, 2, signed_blob + n);
        (void)load(signed_blob, n + 32, !(options & 2));
    } else {
        (void)load(signed_blob, n, !(options & 2));
    }
    data += n, size -= n;

    connect_();
    for (i = 0, start = 0; i <= size; i++) {
        if (i == size || (data[i] == 0xFF && i + 1 < size)) {
            feed(data + start, i - start);
            if (i == size)
                break;
            do_op(data[i + 1]);
            i++;
            start = i + 1;
        }
    }
    pump();
    check_state();
    return 0;
}
