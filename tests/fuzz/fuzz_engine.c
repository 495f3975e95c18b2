/* libFuzzer target: the engine as a parser of hostile server input.
 *
 * Input layout:
 *   byte 0   start state and options:
 *              (b0 % 3) 0 fresh connect, raw server bytes
 *                       1 after a canned pre-TLS exchange (header, STARTTLS
 *                         features, <proceed/>) and kl_engine_tls_done(c, 1)
 *                       2 online after a canned safe login
 *              (b0 / 3) bit 0 pipelining off instead of safe
 *                       bit 1 deliver_iq
 *                       bit 2 unverified TLS (tls_done(c, 0)) when the fuzz
 *                             bytes reach <proceed/> (state 0 only)
 *                       bit 3 clock starts just below the 32-bit wrap
 *                       bit 4 no_presence
 *                       bit 5 SCRAM available (a toy, deterministic crypto
 *                             table: the parsing of the server's SCRAM
 *                             messages is what is fuzzed, not the hashes)
 *   byte 1   chunking: (b1 % 4) 0 whole, 1 split once, 2 byte by byte,
 *            3 1460-byte chunks; bit 2: no_plain (not in state 2: the
 *            canned login uses PLAIN)
 *   bytes 2-3 the split point (little endian, modulo the length + 1)
 *   then     server bytes. 0xFF (never valid in UTF-8 XML) followed by one
 *            control byte is taken out of the stream and runs an action at
 *            that point: kl_send_iq with a short timeout, time advancing,
 *            a message, a presence, kl_client_close (see do_op()).
 *
 * Each step drains kl_engine_output and polls until 0. Every stanza is read
 * with kl_stanza_child_text and walked with a cursor to its end; every token
 * is decoded. Invariants (abort on violation):
 *  - before kl_engine_tls_done, the output never holds "<auth", the PLAIN
 *    payload or the password;
 *  - after KL_EV_ERROR / KL_EV_CLOSED, poll returns 0 forever and nothing
 *    more is written;
 *  - kl_engine_output never offers more than KL_TX_BUF_SIZE bytes;
 *  - poll returns 0 or 1, event types are in range, KL_EV_NONE iff 0;
 *  - the client's output, read by our own tokenizer as a server would (one
 *    document per stream header), is well-formed: hostile attribute values
 *    echoed in automatic answers cannot inject markup;
 *  - every slice of an event lies inside the client (text inside rx); a
 *    stanza the engine accepted re-tokenizes without error; decoding never
 *    fails on a validated token;
 *  - IQ results and timeouts only for ids we sent, each once, timeouts not
 *    before their deadline; KL_ERR_IQ_SLOTS exactly when all slots are used;
 *  - the engine never refuses input without ending the session.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* white-box: the invariants checked look inside kl_client_t */
#define KL_CORE_BUILD
#include "kinglet/kinglet.h"
#include "fuzz_util.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

#define HDR "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
            "xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>"
#define FEAT_TLS "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>" \
                 "</stream:features>"
#define PROCEED "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define FEAT_SASL "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
                  "<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
#define FEAT_BIND "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" \
                  "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>"
#define BIND_RES "<iq type='result' id='kl-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" \
                 "<jid>alice@localhost/dev</jid></bind></iq>"
#define PASSWORD "secret"
#define AUTH_B64 "AGFsaWNlAHNlY3JldA==" /* base64("\0alice\0secret") */

#define MAX_OPS 256
#define MAX_STREAM (1 << 16)

static kl_client_t cl;
static uint32_t now;
static int tls_done;   /* kl_engine_tls_done was called */
static int finished;   /* KL_EV_ERROR or KL_EV_CLOSED seen */
static int online;     /* kl_send_* may succeed */
static int closing;    /* kl_client_close succeeded */
static int got_online, got_start_tls;
static int tls_verified;

static struct {
    uint16_t id;
    uint32_t deadline;
} pend[KL_MAX_PENDING_IQ];

/* ---- a toy crypto table: FNV-1a spread over the output ------------------- */

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void spread(uint64_t h, uint8_t *out, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        h = (h ^ i) * 1099511628211ull;
        out[i] = (uint8_t)(h >> 56);
    }
}

static size_t hash_len(kl_hash_alg_t alg) { return alg == KL_HASH_SHA1 ? 20 : 32; }

static int toy_hash(void *ctx, kl_hash_alg_t alg, const uint8_t *data, size_t len, uint8_t *out)
{
    (void)ctx;
    CHECK(alg == KL_HASH_SHA1 || alg == KL_HASH_SHA256);
    CHECK(data || len == 0);
    spread(fnv(14695981039346656037ull, data, len), out, hash_len(alg));
    return 0;
}

static int toy_hmac(void *ctx, kl_hash_alg_t alg, const uint8_t *key, size_t key_len, const kl_slice_t *parts,
                    size_t nparts, uint8_t *out)
{
    uint64_t h = fnv(14695981039346656037ull, key, key_len);
    size_t i;
    (void)ctx;
    CHECK(alg == KL_HASH_SHA1 || alg == KL_HASH_SHA256);
    for (i = 0; i < nparts; i++) {
        CHECK(parts[i].p || parts[i].len == 0);
        h = fnv(h, parts[i].p, parts[i].len);
    }
    spread(h, out, hash_len(alg));
    return 0;
}

static int toy_pbkdf2(void *ctx, kl_hash_alg_t alg, const uint8_t *pw, size_t pw_len, const uint8_t *salt,
                      size_t salt_len, uint32_t iterations, uint8_t *out, size_t out_len)
{
    uint64_t h = fnv(fnv(14695981039346656037ull, pw, pw_len), salt, salt_len);
    (void)ctx;
    CHECK(alg == KL_HASH_SHA1 || alg == KL_HASH_SHA256);
    CHECK(iterations > 0 && out_len == hash_len(alg));
    spread(h ^ iterations, out, out_len);
    return 0;
}

static const kl_crypto_t toy_crypto = {NULL, toy_hash, toy_hmac, toy_pbkdf2, toy_random_seq};

/* The IQ id source: zeros and a counter in the last byte, reset for every
 * input, so ids differ ("AAAAAAAAAAAB", "AAAAAAAAAAAC", ...) and the fuzzer
 * can find them; a real port's entropy is unpredictable. */
static uint8_t id_counter;
static int toy_ids(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    memset(out, 0, len);
    if (len)
        out[len - 1] = ++id_counter;
    return 0;
}

/* ---- the client's output, read as a server would ---------------------- */

static uint8_t pre_tls[8192]; /* everything written before tls_done */
static size_t pre_tls_len;
static uint8_t obuf[KL_TX_BUF_SIZE * 4];
static size_t olen;
static kl_xml_t ox;
static int ox_fresh; /* ox has consumed nothing since kl_xml_init */

static size_t find_decl(const uint8_t *p, size_t n, size_t from)
{
    static const char decl[] = "<?xml";
    size_t i;
    for (i = from; i + 5 <= n; i++)
        if (memcmp(p + i, decl, 5) == 0)
            return i;
    return n;
}

static int only_ws(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return 0;
    return 1;
}

/* Tokenize obuf[0, end) with ox; returns how much was consumed. */
static size_t parse_out(size_t end)
{
    size_t pos = 0;
    for (;;) {
        kl_xml_token_t t;
        size_t n = 0;
        int r = kl_xml_next(&ox, obuf + pos, end - pos, &n, &t);
        CHECK(r >= 0); /* the client wrote malformed XML */
        if (r == KL_XML_NEED_MORE)
            return pos;
        pos += n;
        ox_fresh = 0;
    }
}

static void check_output(const uint8_t *p, size_t n)
{
    CHECK(n <= KL_TX_BUF_SIZE);
    if (n == 0)
        return;
    if (!tls_done) {
        CHECK(pre_tls_len + n <= sizeof pre_tls);
        memcpy(pre_tls + pre_tls_len, p, n);
        pre_tls_len += n;
        CHECK(!has(pre_tls, pre_tls_len, "<auth"));
        CHECK(!has(pre_tls, pre_tls_len, AUTH_B64));
        CHECK(!has(pre_tls, pre_tls_len, PASSWORD));
    }
    if (!tls_verified) {
        /* no credential over TLS the port did not verify (no allow_plaintext here) */
        CHECK(!has(p, n, "<auth"));
        CHECK(!has(p, n, AUTH_B64));
    }
    CHECK(olen + n <= sizeof obuf);
    memcpy(obuf + olen, p, n);
    olen += n;
    /* each "<?xml" starts a new stream document (the client restarts) */
    for (;;) {
        size_t next = find_decl(obuf, olen, ox_fresh ? 1 : 0), used;
        used = parse_out(next);
        if (next == olen) {
            memmove(obuf, obuf + used, olen - used);
            olen -= used;
            return;
        }
        CHECK(only_ws(obuf + used, next - used)); /* a truncated element before a restart */
        memmove(obuf, obuf + next, olen - next);
        olen -= next;
        kl_xml_init(&ox);
        ox_fresh = 1;
    }
}

static void drain(void)
{
    size_t n;
    const uint8_t *p = kl_engine_output(&cl, &n);
    CHECK(n <= KL_TX_BUF_SIZE);
    CHECK(n == 0 || (p >= cl.tx && p + n <= cl.tx + sizeof cl.tx));
    check_output(p, n);
    kl_engine_output_ack(&cl, n);
    p = kl_engine_output(&cl, &n);
    CHECK(n == 0);
}

/* ---- events ------------------------------------------------------------ */

static int in_client(kl_slice_t s)
{
    const uint8_t *lo = (const uint8_t *)&cl, *hi = lo + sizeof cl;
    if (s.len == 0)
        return 1;
    return s.p >= lo && s.p <= hi && s.len <= (size_t)(hi - s.p);
}

static int in_rx(kl_slice_t s)
{
    if (s.len == 0)
        return 1;
    return s.p >= cl.rx && s.p <= cl.rx + sizeof cl.rx && s.len <= (size_t)(cl.rx + sizeof cl.rx - s.p);
}

static uint8_t dec[KL_RX_BUF_SIZE + 16];

static void decode_ok(kl_slice_t raw, int mode)
{
    int d = kl_xml_decode(raw, mode, dec, sizeof dec);
    CHECK(d >= 0 && (size_t)d <= raw.len);
}

static void check_attrs(kl_slice_t attrs)
{
    size_t pos = 0;
    kl_slice_t name, value;
    int guard = 0;
    CHECK(in_rx(attrs));
    while (kl_xml_attr_next(attrs, &pos, &name, &value)) {
        CHECK(in_rx(name) && in_rx(value) && name.len > 0);
        decode_ok(value, KL_XML_RAW_TEXT);
        CHECK(++guard <= KL_XML_MAX_ATTR);
    }
}

static int within(kl_slice_t s, kl_slice_t region)
{
    return s.len == 0 || (s.p >= region.p && s.p <= region.p + region.len &&
                          s.len <= (size_t)(region.p + region.len - s.p));
}

/* ns points into a tokenizer's stack: the client's, or a cursor's. */
static void check_token(const kl_xml_token_t *t, const void *nsbase, size_t nssize)
{
    CHECK(t->type == KL_XML_START || t->type == KL_XML_END || t->type == KL_XML_TEXT);
    if (t->type == KL_XML_TEXT) {
        CHECK(t->text.len > 0 && in_rx(t->text));
        decode_ok(t->text, t->cdata ? KL_XML_RAW_CDATA : KL_XML_RAW_TEXT);
    } else {
        kl_slice_t region = {(const uint8_t *)nsbase, nssize};
        CHECK(within(t->ns, region));
        /* an END's names may come from the tokenizer's stack */
        CHECK(in_rx(t->name) || (t->type == KL_XML_END && within(t->name, region)));
        CHECK(in_rx(t->local) || (t->type == KL_XML_END && within(t->local, region)));
        CHECK(t->local.len > 0 && t->local.len <= t->name.len);
        if (t->type == KL_XML_START)
            check_attrs(t->attrs);
    }
}

static void check_view(const kl_stanza_t *st, int whole)
{
    kl_cursor_t cur;
    kl_xml_token_t t;
    int r, n = 0, depth0 = -1;
    CHECK(st->raw.len > 0 && in_rx(st->raw));
    CHECK(in_rx(st->name) && in_client(st->ns) && in_rx(st->attrs));
    CHECK(in_rx(st->from) && in_rx(st->to) && in_rx(st->id) && in_rx(st->type));
    CHECK(st->name.len > 0);
    check_attrs(st->attrs);
    kl_cursor_init(&cur, &cl, st);
    while ((r = kl_cursor_next(&cur, &t)) == 1) {
        check_token(&t, &cur, sizeof cur);
        if (n++ == 0) {
            CHECK(t.type == KL_XML_START);
            CHECK(t.local.len == st->name.len && memcmp(t.local.p, st->name.p, t.local.len) == 0);
            depth0 = t.depth;
        } else {
            CHECK(t.depth >= depth0);
        }
        CHECK(cur.pos <= st->raw.len);
    }
    /* the engine already tokenized these bytes in the same context */
    CHECK(r == 0);
    CHECK(n > 0);
    if (whole)
        CHECK(cur.pos == st->raw.len);
}

static void check_stanza(const kl_stanza_t *st)
{
    char out[KL_RX_BUF_SIZE + 1], tiny[4];
    int r;
    check_view(st, 1);
    r = kl_stanza_child_text(&cl, st, "body", NULL, out, sizeof out);
    CHECK(r >= 0 || r == KL_ERR_ARG || r == KL_ERR_TOO_LARGE);
    if (r >= 0)
        CHECK(strlen(out) == (size_t)r);
    r = kl_stanza_child_text(&cl, st, "body", "jabber:client", tiny, sizeof tiny);
    CHECK(r >= 0 || r == KL_ERR_ARG || r == KL_ERR_TOO_LARGE);
    if (r >= 0)
        CHECK(r < (int)sizeof tiny && strlen(tiny) == (size_t)r);
    r = kl_stanza_child_text(&cl, st, "status", NULL, out, 1);
    CHECK(r == 0 || r == KL_ERR_ARG || r == KL_ERR_TOO_LARGE);
}

static int take_pending(uint16_t id, int timeout)
{
    size_t i;
    for (i = 0; i < KL_MAX_PENDING_IQ; i++) {
        if (pend[i].id == id) {
            if (timeout)
                CHECK((int32_t)(now - pend[i].deadline) >= 0);
            pend[i].id = 0;
            return 1;
        }
    }
    return 0;
}

static size_t pending_count(void)
{
    size_t i, n = 0;
    for (i = 0; i < KL_MAX_PENDING_IQ; i++)
        n += pend[i].id != 0;
    return n;
}

static void on_event(const kl_event_t *ev)
{
    CHECK(!finished);
    /* after kl_client_close() nothing but the end of the stream */
    CHECK(!closing || ev->type == KL_EV_CLOSED || ev->type == KL_EV_ERROR);
    switch (ev->type) {
    case KL_EV_START_TLS:
        CHECK(!got_start_tls && !tls_done);
        got_start_tls = 1;
        break;
    case KL_EV_ONLINE:
        CHECK(!got_online && tls_done);
        CHECK(ev->jid && strlen(ev->jid) < KL_JID_MAX && ev->jid[0]);
        got_online = 1;
        online = 1;
        break;
    case KL_EV_STANZA:
        CHECK(got_online);
        check_stanza(&ev->stanza);
        break;
    case KL_EV_STANZA_BEGIN:
        CHECK(got_online);
        check_view(&ev->stanza, 0);
        if (ev->iq_id)
            CHECK(take_pending(ev->iq_id, 0));
        break;
    case KL_EV_TOKEN:
        CHECK(got_online);
        check_token(&ev->token, &cl, sizeof cl);
        break;
    case KL_EV_STANZA_END:
        CHECK(got_online);
        break;
    case KL_EV_STANZA_DROPPED:
        CHECK(got_online);
        CHECK(ev->status == KL_ERR_XML_DEPTH || ev->status == KL_ERR_XML_STACK ||
              ev->status == KL_ERR_XML_NAME_TOO_LONG || ev->status == KL_ERR_XML_ATTR_TOO_LONG ||
              ev->status == KL_ERR_XML_ATTRS || ev->status == KL_ERR_RX_FULL);
        break;
    case KL_EV_IQ_RESULT:
        CHECK(ev->iq_id && take_pending(ev->iq_id, 0));
        check_stanza(&ev->stanza);
        break;
    case KL_EV_IQ_TIMEOUT:
        CHECK(ev->iq_id && take_pending(ev->iq_id, 1));
        break;
    case KL_EV_CLOSED:
    case KL_EV_ERROR:
        CHECK(ev->condition && strlen(ev->condition) < KL_CONDITION_MAX);
        CHECK(kl_strerror(ev->status) != NULL);
        if (ev->type == KL_EV_ERROR)
            CHECK(ev->status < 0);
        else
            CHECK(closing);
        finished = 1;
        online = 0;
        break;
    default:
        abort(); /* out of range */
    }
}

/* Poll until the engine has nothing more; drain after every event. */
static void pump(void)
{
    kl_event_t ev;
    int r, guard = 0;
    for (;;) {
        r = kl_engine_poll(&cl, now, &ev);
        CHECK(r == 0 || r == 1);
        if (r == 0) {
            CHECK(ev.type == KL_EV_NONE);
            break;
        }
        CHECK(ev.type > KL_EV_NONE && ev.type <= KL_EV_ERROR);
        CHECK(!finished); /* poll returns 0 forever after the end */
        on_event(&ev);
        drain();
        if (ev.type == KL_EV_START_TLS) {
            tls_done = 1;
            CHECK(kl_engine_tls_done(&cl, tls_verified) == KL_OK);
            drain();
        }
        CHECK(++guard < 1 << 20);
    }
    drain();
    if (finished) {
        /* nothing new after the end, whatever the caller does */
        size_t cap, n;
        CHECK(kl_engine_poll(&cl, now + 1, &ev) == 0 && ev.type == KL_EV_NONE);
        CHECK(kl_engine_poll(&cl, now + 0x80000000u, &ev) == 0 && ev.type == KL_EV_NONE);
        (void)kl_engine_input_buf(&cl, &cap);
        CHECK(cap == 0);
        kl_engine_output(&cl, &n);
        CHECK(n == 0);
    } else {
        /* a due timer would have been reported */
        CHECK(kl_engine_next_timeout(&cl, now) > 0);
    }
}

/* ---- actions ------------------------------------------------------------- */

static void send_iq(const char *to, const char *type, const char *payload, uint32_t timeout)
{
    uint16_t id = 0;
    size_t before = pending_count();
    int st = kl_send_iq(&cl, to, type, payload, timeout, &id);
    if (!online) {
        CHECK(st == KL_ERR_NOT_ONLINE);
    } else if (before == KL_MAX_PENDING_IQ) {
        CHECK(st == KL_ERR_IQ_SLOTS);
    } else {
        CHECK(st == KL_OK || st == KL_ERR_TX_FULL);
    }
    if (st == KL_OK) {
        size_t i;
        CHECK(id != 0);
        for (i = 0; i < KL_MAX_PENDING_IQ; i++)
            CHECK(pend[i].id != id);
        for (i = 0; pend[i].id; i++)
            ;
        pend[i].id = id;
        pend[i].deadline = now + (timeout ? timeout : KL_IQ_TIMEOUT_MS);
    }
}

static void do_op(uint8_t ctrl)
{
    uint32_t arg = ctrl >> 3;
    int st;
    switch (ctrl & 7) {
    case 0: send_iq(NULL, "get", "<ping xmlns='urn:xmpp:ping'/>", 1 + arg * 7); break;
    case 1: now += arg * 250; break;
    case 2: now += arg + 1; break;
    case 3:
        st = kl_send_message(&cl, "bob@localhost/x", arg & 1 ? "normal" : NULL, "a<b & 'c' \xe2\x98\xba");
        CHECK(online ? (st == KL_OK || st == KL_ERR_TX_FULL) : st == KL_ERR_NOT_ONLINE);
        break;
    case 4:
        st = kl_send_presence(&cl, arg & 1 ? "bob@localhost" : NULL, NULL, arg & 2 ? "here" : NULL);
        CHECK(online ? (st == KL_OK || st == KL_ERR_TX_FULL) : st == KL_ERR_NOT_ONLINE);
        break;
    case 5:
#ifdef FUZZ_ENGINE_NO_CLOSE /* to hunt for other bugs while a close bug is open */
        break;
#endif
        st = kl_client_close(&cl);
        if (st == KL_OK) {
            closing = 1;
            online = 0;
            memset(pend, 0, sizeof pend); /* no timeouts after close */
        }
        break;
    case 6:
        send_iq(arg & 1 ? "localhost" : NULL, "set", "<query xmlns='jabber:iq:roster'><item jid='x@y'/></query>",
                arg & 2 ? 0 : 1 + arg * 100);
        break;
    default: now += arg * 3000; break;
    }
    drain();
    pump();
}

/* ---- feeding ------------------------------------------------------------- */

/* Give the engine data[0, n), polling in between; 0 if it took no more. */
static int feed(const uint8_t *data, size_t n)
{
    while (n > 0) {
        size_t cap, take;
        uint8_t *buf = kl_engine_input_buf(&cl, &cap);
        if (cap == 0) {
            pump();
            buf = kl_engine_input_buf(&cl, &cap);
            if (cap == 0) {
                /* refusing input is only allowed once the session ended */
                CHECK(finished);
                return 0;
            }
        }
        take = n < cap ? n : cap;
        memcpy(buf, data, take);
        kl_engine_input_ack(&cl, take);
        data += take;
        n -= take;
        pump();
    }
    return 1;
}

static int feed_str(const char *s) { return feed((const uint8_t *)s, strlen(s)); }

static uint8_t stream[MAX_STREAM];
static size_t op_pos[MAX_OPS];
static uint8_t op_ctrl[MAX_OPS];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kl_client_config_t cfg;
    unsigned mode, opts, pattern;
    size_t split, len = 0, nops = 0, i, pos, op;
    if (size < 4)
        return 0;
    mode = data[0] % 3;
    opts = data[0] / 3;
    pattern = data[1] % 4;
    split = (size_t)data[2] | (size_t)data[3] << 8;
    for (i = 4; i < size && len < sizeof stream; i++) {
        if (data[i] == 0xFF) {
            if (i + 1 < size && nops < MAX_OPS) {
                op_pos[nops] = len;
                op_ctrl[nops++] = data[i + 1];
            }
            i++;
            continue;
        }
        stream[len++] = data[i];
    }
    split %= len + 1;

    tls_done = finished = online = closing = got_online = got_start_tls = 0;
    memset(pend, 0, sizeof pend);
    pre_tls_len = olen = 0;
    kl_xml_init(&ox);
    ox_fresh = 1;
    tls_verified = (opts & 4) ? 0 : 1;
    now = (opts & 8) ? 0xFFFFFFFFu - 3000u : 1000u;

    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/dev";
    cfg.password = PASSWORD;
    cfg.pipelining = (opts & 1) ? KL_PIPELINING_OFF : KL_PIPELINING_SAFE;
    cfg.deliver_iq = (opts & 2) ? 1 : 0;
    cfg.no_presence = (opts & 16) ? 1 : 0;
    cfg.crypto = (opts & 32) ? &toy_crypto : NULL;
    cfg.random = toy_ids;
    id_counter = 0;
    cfg.no_plain = (data[1] & 4) && mode != 2 ? 1 : 0;
    CHECK(kl_client_init(&cl, &cfg) == KL_OK);
    CHECK(kl_client_connect(&cl, now, KL_CHANNEL_STARTTLS) == KL_OK);
    drain();

    if (mode >= 1) {
        tls_verified = 1;
        CHECK(feed_str(HDR FEAT_TLS PROCEED));
        CHECK(got_start_tls && tls_done && !finished);
    }
    if (mode == 2) {
        CHECK(feed_str(HDR FEAT_SASL SUCCESS HDR FEAT_BIND BIND_RES));
        CHECK(got_online && !finished);
    }

    /* feed the stream, cut where the pattern says and at every action */
    pos = 0;
    op = 0;
    while (pos < len || op < nops) {
        size_t end = len;
        while (op < nops && op_pos[op] <= pos)
            do_op(op_ctrl[op++]);
        if (pos >= len)
            break;
        if (op < nops && op_pos[op] < end)
            end = op_pos[op];
        switch (pattern) {
        case 1:
            if (pos < split && split < end)
                end = split;
            break;
        case 2: end = pos + 1; break;
        case 3:
            if (end - pos > 1460)
                end = pos + 1460;
            break;
        default: break;
        }
        if (!feed(stream + pos, end - pos))
            pos = len; /* the session is over: only the actions remain */
        else
            pos = end;
    }
    /* let every timer fire */
    now += KL_NEGOTIATION_TIMEOUT_MS;
    pump();
    now += KL_IQ_TIMEOUT_MS;
    pump();
    if (!finished)
        CHECK(pending_count() == 0);
    return 0;
}
