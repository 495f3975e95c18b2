/* libFuzzer target for the BOSH framing (core/kl_bosh.c) driving the real
 * engine (configured as a BOSH port configures it: direct TLS, full
 * pipelining, PLAIN).
 *
 * Input: a sequence of records [op][len][bytes…]: op bit 0 picks the slot,
 * bit 1 = the connection of that slot fails instead (len and bytes unused),
 * bit 2 = the application sends a message afterwards, bit 3 = it closes;
 * len (0..255) bytes are fed as that slot's HTTP response bytes. After each
 * record the engine and the BOSH layer run until neither moves. Checked:
 * every status is a named one, bounds hold (queue, outstanding, body), rids
 * of new requests grow by one, nothing loops forever.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinglet/kl_bosh.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static kl_client_t client;
static kl_bosh_t bosh;

static int named(int st) { return st < 0 && strcmp(kl_strerror(st), "unknown error") != 0; }

static void run(void)
{
    int guard;
    for (guard = 0; guard < 100000; guard++) {
        kl_event_t ev;
        int r = kl_bosh_pull(&bosh, &client);
        CHECK(r == KL_OK || named(r));
        CHECK(bosh.q_len <= sizeof bosh.q);
        r = kl_engine_poll(&client, 0, &ev);
        CHECK(r == 0 || r == 1);
        if (r == 1) {
            CHECK(ev.type != KL_EV_ERROR || named(ev.status));
            continue;
        }
        r = kl_bosh_push(&bosh, &client);
        CHECK(r == 0 || r == 1 || named(r));
        if (r != 1)
            return;
    }
    abort(); /* no progress bound */
}

static uint32_t last_rid;

static void send_requests(void)
{
    const uint8_t *p;
    size_t n;
    int i;
    while ((i = kl_bosh_next_request(&bosh, &p, &n)) >= 0) {
        CHECK(i < KL_BOSH_SLOTS && n > 0 && n <= KL_BOSH_REQ_MAX);
        if (bosh.slot[i].tries == 1) {
            CHECK(last_rid == 0 || bosh.slot[i].rid == last_rid + 1);
            last_rid = bosh.slot[i].rid;
        }
        CHECK(kl_bosh_outstanding(&bosh) <= KL_BOSH_SLOTS);
    }
}

/* IQ ids: predictable here, unpredictable with a real port's entropy */
static int toy_ids(void *ctx, uint8_t *out, size_t len)
{
    static uint8_t k;
    (void)ctx;
    memset(out, 0, len);
    if (len)
        out[len - 1] = ++k;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kl_client_config_t cfg;
    kl_bosh_config_t bc;
    size_t off = 0;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/r";
    cfg.password = "alicepass";
    cfg.direct_tls = 1;
    cfg.allow_plaintext = 1;
    cfg.random = toy_ids;
    cfg.pipelining = KL_PIPELINING_FULL;
    cfg.force_full = 1;
    CHECK(kl_client_init(&client, &cfg) == KL_OK);
    memset(&bc, 0, sizeof bc);
    bc.host = "localhost";
    bc.path = "/http-bind";
    bc.to = "localhost";
    bc.rid = 77;
    bc.split_restart = size > 0 && (data[0] & 0x80);
    CHECK(kl_bosh_init(&bosh, &bc) == KL_OK);
    CHECK(kl_client_connect(&client, 0, KL_CHANNEL_TLS_VERIFIED) == KL_OK);
    last_rid = 0;
    run();
    send_requests();
    while (off + 2 <= size) {
        uint8_t op = data[off];
        size_t len = data[off + 1], used = 0;
        int slot = op & 1, r;
        off += 2;
        if (len > size - off)
            len = size - off;
        if (op & 2) {
            r = kl_bosh_conn_failed(&bosh, slot);
            CHECK(r == 0 || r == 1 || named(r));
        } else {
            r = kl_bosh_response(&bosh, slot, data + off, len, &used);
            CHECK(r == 0 || r == 1 || named(r));
            CHECK(used <= len);
            CHECK(bosh.slot[slot].resp.body_len <= KL_BOSH_BODY_MAX);
            off += len;
        }
        run();
        if ((op & 4) && kl_client_is_online(&client))
            (void)kl_send_message(&client, "bob@localhost", "chat", "x");
        if (op & 8)
            (void)kl_client_close(&client);
        run();
        send_requests();
    }
    return 0;
}
