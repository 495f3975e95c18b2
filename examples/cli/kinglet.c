/* kinglet — command-line client (the integration point for tests).
 *
 *   kinglet --jid J --password P [--host H] [--port N] [--cafile F]
 *           [--pipelining off|safe|full|full-forced] [--send TO BODY] [--recv N] [--echo]
 *           [--count N] [--timeout S] [--stats] [--trace] [--allow-plaintext]
 *           [--no-plain] [--tls starttls|direct] [--cache FILE [--cache-key KEYFILE]]
 *           [--roster] [--srv [--dns HOST:PORT]] [--disco] [--reconnect [--backoff MIN_MS MAX_MS]]
 *           [--keepalive T_S T2_S] [--no-sm] [--no-logout]
 *           [--no-sasl2] [--no-fast] [--fast-token TOKEN] [--user-agent-id UUID]
 *   kinglet --bosh URL --jid J --password P [--bosh-path auto|all|split] … (the same options)
 *   kinglet --ws URL --jid J --password P … (the same options)
 *
 * --bosh URL: BOSH (XEP-0124/0206), a framing of the same session over
 * http://host:port/path or https://host:port/path. Over http:// the password
 * goes in clear: refused unless --allow-plaintext (e.g. loopback).
 * --bosh-path: all = <auth/> + restart + bind in the session creation body
 * (Prosody: one HTTP round trip to a bound session); split = <auth/> in it,
 * then the restart and the bind as two requests at once (ejabberd 23.01);
 * auto (default) = all, and split once if the connection manager ends the
 * session before it is bound (reported as "full_fallback":1); the hints
 * (--cache) remember the path that worked. --stats adds "http_round_trips",
 * "http_requests" and "bosh_path".
 * Stream management (XEP-0198) is on whenever the server offers it (--no-sm:
 * off): unacknowledged stanzas are kept (16 KB), a lost link is resumed
 * with --reconnect, and a stanza the server never acknowledged is sent again
 * when the session could not be resumed. --keepalive T T2: probe the server
 * after T idle seconds, reconnect when nothing came T2 seconds later.
 * --no-logout: end (--recv, --count, --timeout) by dropping the connection
 * instead of logging out; with --cache FILE the session is saved in FILE.sm
 * (authenticated with the device key, 0600) and the next run resumes it.
 * --ws URL: XMPP over WebSocket (RFC 7395), ws://host:port/path or wss://…;
 * the HTTP upgrade counts as one round trip.
 * --cache keeps connection hints across runs: features and mechanisms seen,
 * the pipelining advertisement, caps, roster version, the SRV answer (for
 * its TTL) and the TLS session, which the next connect offers (resumption).
 * The file holds TLS session secrets: it is authenticated (HMAC-SHA-256)
 * with a device key kept in KEYFILE (default FILE.key, created 0600 on
 * first use) and written 0600; a file that fails authentication is ignored
 * (one line on stderr) and the login does a full, verified TLS handshake.
 * SASL2 (XEP-0388) with Bind2, inline stream management and FAST tokens
 * (XEP-0484) is used wherever the server offers it; with --cache the
 * hints remember that, so the next login sends <authenticate/> with the
 * stream header, and keep the FAST token the server gave (then the
 * password is not sent again; the token rotates). --no-sasl2: RFC 6120
 * SASL and bind only; --no-fast: no tokens. --fast-token TOKEN: a
 * provisioned token (HT-SHA-256-NONE), used while the hints hold none;
 * with it --password may be left out (a token-only device). --stats adds
 * "sasl2", "bind2", "fast", "fast_token_new", "fast_refused",
 * "inline_resumed" and "channel_bound" (0/1, this connection).
 * Every stanza goes through the application layer (kl_app.h): a message
 * of any size is printed ("message from J: BODY", the body byte for byte)
 * and, with --echo, echoed byte for byte (one longer than the transmit
 * buffer in pieces); --bodies DIR also writes each body to DIR/NNNN.body.
 * --roster lists the roster item by item as it streams in ("roster item
 * JID SUBSCRIPTION"; any size, no RAM added) and the server's pushes
 * ("roster push JID SUBSCRIPTION", acknowledged). --identity, --feature and
 * --caps-node give the device's disco identity and features; its presence
 * carries the XEP-0115 caps ver ("caps ver V" at online). --subscriptions
 * says who may subscribe ("subscription request from J: accepted|refused|
 * asked"). --publish publishes an item to the account's own PEP node
 * ("published NODE ID" / "publish failed NODE: CONDITION"); PubSub events
 * print "pubsub event from J node N item I: PAYLOAD". --muc joins a room
 * without history ("muc joined R as N", "muc message from R/N: BODY", "muc
 * left R" at logout). --csi-inactive S sends <inactive/> at login and
 * <active/> S seconds later; --stay S stays online S seconds. Presence
 * prints "presence from J: available|TYPE".
 * --srv finds the server through DNS SRV (_xmpps-client / _xmpp-client),
 * asking the resolver --dns (default: /etc/resolv.conf's first).
 *
 *   kinglet --s2s --domain D --to PEER --cert F --key F [--cafile F] [--host H]
 *           [--port N] [--send TO BODY] [--echo] [--count N] [--timeout S] [--stats]
 *
 * --s2s: the device is the server of domain D and opens one bidirectional
 * server-to-server stream (XEP-0288, SASL EXTERNAL with its certificate) to
 * PEER's server; --echo answers every message received on it.
 * --send exits 0 once the message is written and the stream closed cleanly
 * (after --recv N messages were received, if given). --echo answers every
 * message with its own body until --count N were echoed or --timeout S
 * passes. Every error is one line on stderr and a non-zero exit:
 * 2 usage, 3 connect/DNS, 4 TLS/certificate, 5 authentication, 6 stream
 * error or protocol, 7 timeout, 1 anything else.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinglet/kinglet.h"
#include "kl_cli_common.h"
#include "kl_crypto_mbedtls.h"
#include "kl_posix_net.h"
#include "kl_tls_bind.h"
#include "kinglet/kl_session.h"
#include "kinglet/kl_bosh.h"
#include "kinglet/kl_ws.h"
#include "kl_posix_dns.h"
#include "kinglet/kl_app.h"


static kl_client_t client; /* the whole client state: static, no heap */
static kl_cache_t cache;   /* connection hints, persisted with --cache FILE */
/* XEP-0198: the stanzas sent and not yet acknowledged (backpressure when
 * full), and room for their saved form (--cache FILE keeps FILE.sm) */
static uint8_t sm_queue[16384];
static uint8_t sm_blob[KL_SM_BLOB_MAX(sizeof sm_queue)];

/* ---- the application layer: every stanza, whatever its size, reaches
 * these handlers (kl_app.h); nothing here allocates. */
static kl_app_t app;
#define MAX_FEATURES 16
#define MAX_PUB_OPTS 16
static struct {
    kl_cli_run_t *run;
    const char *bodies_dir;      /* --bodies DIR */
    unsigned body_n;
    FILE *body_f;
    int printing, groupchat;     /* a "message from X: " line is open */
    size_t body_len;
    int body_over;               /* the body outgrew body_buf: printed, not echoed */
    uint16_t roster_id;
    unsigned roster_items;
    int roster_mine;
    uint16_t pub_id;
    const char *pub_node, *pub_item, *pub_payload;
    const char *pub_opts[MAX_PUB_OPTS];
    size_t npub_opts;
    const char *muc;             /* --muc ROOM@SERVICE/NICK */
    char muc_room[KL_JID_MAX * 3];
    const char *muc_nick;
    int muc_joined;
    const char *muc_send;
    int sub_ask;                 /* --subscriptions ask */
    /* a PubSub event being read */
    char ps_node[256], ps_item[256], ps_from[KL_APP_ADDR_MAX];
    size_t ps_len;
    int ps_in_item, ps_over, ps_skip_end;
} A;
static char body_buf[(1u << 20) + 1]; /* a message's body as it arrives (for --echo) */
static char ps_buf[1u << 16];         /* a PubSub item's payload, as XML */

/* What the run still waits for before it logs out by itself. */
static struct {
    int echo;
    long recv_n;
    uint16_t disco_id;
    int stay;          /* --stay S: online until g.stay_until */
    uint32_t stay_until;
    int csi;           /* --csi-inactive S: <active/> at g.csi_at */
    uint32_t csi_at;
    int online;
} g;

/* Nothing more to wait for: log out (when the run asked for nothing else). */
static void cli_idle(void)
{
    kl_cli_run_t *r = A.run;
    if (!g.online || r->closing || g.echo || g.recv_n || A.roster_id || g.disco_id || A.pub_id || g.stay || g.csi ||
        (A.muc && !A.muc_joined))
        return;
    if (kl_cli_close(r, &client) == KL_OK)
        r->closing = 1;
}

static void body_piece(const kl_in_t *in)
{
    if (!A.printing) {
        printf(A.groupchat ? "muc message from %s: " : "message from %s: ", in->from);
        A.printing = 1;
        if (A.bodies_dir && !A.groupchat) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%04u.body", A.bodies_dir, ++A.body_n);
            if (!(A.body_f = fopen(path, "wb")))
                fprintf(stderr, "kinglet: cannot write %s\n", path);
        }
    }
    fwrite(in->text.p, 1, in->text.len, stdout);
    if (A.body_f)
        fwrite(in->text.p, 1, in->text.len, A.body_f);
    if (A.body_len + in->text.len <= sizeof body_buf - 1) {
        memcpy(body_buf + A.body_len, in->text.p, in->text.len);
        A.body_len += in->text.len;
    } else {
        A.body_over = 1;
    }
    if (in->last) {
        putchar('\n');
        fflush(stdout);
        if (A.body_f)
            fclose(A.body_f);
        A.body_f = NULL;
    }
}

static int on_message(void *ctx, kl_app_t *a, const kl_in_t *in)
{
    kl_client_t *c = kl_app_client(a);
    (void)ctx;
    switch (in->part) {
    case KL_PART_STANZA:
        A.groupchat = !strcmp(in->type, "groupchat");
        A.printing = A.body_over = 0;
        A.body_len = 0;
        return KL_PASS; /* others (PubSub events) may want it too */
    case KL_PART_BODY:
        body_piece(in);
        return KL_PASS;
    case KL_PART_END:
        if (in->status < 0)
            printf("message from %s cut short: %s\n", in->from, kl_strerror(in->status));
        if (A.printing && !A.groupchat && strcmp(in->type, "error") && in->status == KL_OK && in->from[0] &&
            !(in->flags & KL_IN_ADDR_TOO_LONG)) {
            body_buf[A.body_len] = '\0';
            if (A.body_over)
                fprintf(stderr, "kinglet: the body from %s is larger than %zu bytes: printed, not echoed\n", in->from,
                        sizeof body_buf - 1);
            kl_cli_after_message_n(A.run, c, in->from, in->to[0] ? in->to : NULL, A.body_over ? NULL : body_buf,
                                   A.body_len);
        }
        A.printing = 0;
        fflush(stdout);
        return KL_PASS;
    default:
        return KL_PASS;
    }
}

/* An item's payload again as XML, from its tokens. */
static void ps_put(const void *p, size_t n)
{
    if (A.ps_len + n > sizeof ps_buf - 1) {
        A.ps_over = 1;
        return;
    }
    memcpy(ps_buf + A.ps_len, p, n);
    A.ps_len += n;
}

static int on_pubsub_event(void *ctx, kl_app_t *a, const kl_in_t *in)
{
    const kl_xml_token_t *t = in->token;
    (void)ctx;
    (void)a;
    if (in->part == KL_PART_STANZA) {
        snprintf(A.ps_from, sizeof A.ps_from, "%s", in->from);
        A.ps_node[0] = '\0';
        return KL_HANDLED;
    }
    if (in->part != KL_PART_TOKEN)
        return KL_PASS;
    if (t->type == KL_XML_START && t->depth == 4 && kl_slice_eq(t->local, "items"))
        (void)kl_token_attr(t, "node", A.ps_node, sizeof A.ps_node);
    else if (t->type == KL_XML_START && t->depth == 5 && kl_slice_eq(t->local, "item")) {
        if (kl_token_attr(t, "id", A.ps_item, sizeof A.ps_item) < 0)
            A.ps_item[0] = '\0';
        A.ps_len = 0;
        A.ps_over = 0;
        A.ps_in_item = 1;
    } else if (t->type == KL_XML_END && t->depth == 5 && A.ps_in_item) {
        A.ps_in_item = 0;
        ps_buf[A.ps_len] = '\0';
        printf("pubsub event from %s node %s item %s: %s%s\n", A.ps_from, A.ps_node, A.ps_item, ps_buf,
               A.ps_over ? " (cut: larger than the payload buffer)" : "");
        fflush(stdout);
    } else if (A.ps_in_item && t->depth >= 6) {
        if (t->type == KL_XML_START) {
            ps_put("<", 1);
            ps_put(t->name.p, t->name.len);
            if (t->attrs.len) {
                ps_put(" ", 1);
                ps_put(t->attrs.p, t->attrs.len);
            }
            ps_put(t->empty ? "/>" : ">", t->empty ? 2 : 1);
            A.ps_skip_end = t->empty; /* its END follows, already written as "/>" */
        } else if (t->type == KL_XML_END) {
            if (!A.ps_skip_end) {
                ps_put("</", 2);
                ps_put(t->name.p, t->name.len);
                ps_put(">", 1);
            }
            A.ps_skip_end = 0;
        } else if (t->type == KL_XML_TEXT && !t->cdata) {
            ps_put(t->text.p, t->text.len); /* raw: still escaped as XML */
        } else if (t->type == KL_XML_TEXT) {
            size_t i;
            for (i = 0; i < t->text.len; i++) {
                const char *e = t->text.p[i] == '&' ? "&amp;" : t->text.p[i] == '<' ? "&lt;" : t->text.p[i] == '>' ? "&gt;" : NULL;
                if (e)
                    ps_put(e, strlen(e));
                else
                    ps_put(t->text.p + i, 1);
            }
        }
    }
    return KL_PASS;
}

/* The roster (result of --roster, streamed item by item: any size) and
 * the server's pushes. */
static int on_roster(void *ctx, kl_app_t *a, const kl_in_t *in)
{
    kl_roster_item_t it;
    (void)ctx;
    (void)a;
    switch (in->part) {
    case KL_PART_STANZA:
        A.roster_mine = in->iq_id && in->iq_id == A.roster_id;
        A.roster_items = 0;
        return A.roster_mine ? KL_HANDLED : KL_PASS;
    case KL_PART_TOKEN:
        if (A.roster_mine && in->token->depth == 4 && kl_roster_item(in->token, &it) >= 0) {
            A.roster_items++;
            printf("roster item %s %s\n", it.jid, it.subscription[0] ? it.subscription : "none");
        }
        return KL_PASS;
    case KL_PART_END:
        if (!A.roster_mine)
            return KL_PASS;
        printf("roster %s: %u items, version '%s'\n", in->status < 0 ? "cut short" : "received", A.roster_items,
               cache.roster_ver);
        fflush(stdout);
        A.roster_id = 0;
        A.roster_mine = 0;
        cli_idle();
        return KL_PASS;
    default:
        return KL_PASS;
    }
}

static int on_roster_push(void *ctx, kl_app_t *a, const kl_in_t *in)
{
    kl_roster_item_t it;
    (void)ctx;
    (void)a;
    if (in->part == KL_PART_TOKEN && in->token->depth == 4 && kl_roster_item(in->token, &it) >= 0) {
        printf("roster push %s %s\n", it.jid, it.subscription[0] ? it.subscription : "none");
        fflush(stdout);
    }
    return KL_PASS; /* the app layer acknowledges it */
}

static void on_subscription(void *ctx, const char *jid, int approved)
{
    (void)ctx;
    printf("subscription request from %s: %s\n", jid, approved ? "accepted" : "refused");
    fflush(stdout);
}

static int on_presence(void *ctx, kl_app_t *a, const kl_in_t *in)
{
    (void)ctx;
    if (in->part != KL_PART_STANZA)
        return KL_PASS;
    if (!strcmp(in->type, "subscribe")) {
        if (A.sub_ask) {
            char bare[KL_APP_ADDR_MAX];
            snprintf(bare, sizeof bare, "%s", in->from);
            if (strchr(bare, '/'))
                *strchr(bare, '/') = '\0';
            printf("subscription request from %s: asked\n", bare);
            fflush(stdout);
            (void)kl_sub_answer(a, bare, 0); /* this program has nobody to ask: refused */
            return KL_HANDLED;
        }
        return KL_PASS;
    }
    if (A.muc && !A.muc_joined && !strncmp(in->from, A.muc_room, strlen(A.muc_room)) &&
        in->from[strlen(A.muc_room)] == '/' && kl_muc_is_self(a, in)) {
        A.muc_joined = 1;
        printf("muc joined %s as %s\n", A.muc_room, A.muc_nick);
        fflush(stdout);
        if (A.muc_send && kl_muc_send(kl_app_client(a), A.muc_room, A.muc_send) != KL_OK)
            fprintf(stderr, "kinglet: cannot send to %s\n", A.muc_room);
    }
    printf("presence from %s: %s\n", in->from, in->type[0] ? in->type : "available");
    fflush(stdout);
    return KL_HANDLED;
}

static int on_publish_result(void *ctx, kl_app_t *a, const kl_in_t *in)
{
    char cond[64];
    (void)ctx;
    if (in->part != KL_PART_STANZA || !in->iq_id || in->iq_id != A.pub_id)
        return KL_PASS;
    if (!strcmp(in->type, "result"))
        printf("published %s %s\n", A.pub_node, A.pub_item ? A.pub_item : "");
    else
        printf("publish failed %s: %s\n", A.pub_node,
               in->stanza && kl_stanza_error_condition(kl_app_client(a), in->stanza, cond, sizeof cond) > 0
                   ? cond : "undefined-condition");
    fflush(stdout);
    A.pub_id = 0;
    cli_idle();
    return KL_HANDLED;
}

/* A logout leaves the room first. */
static void leave_rooms(void *ctx, kl_client_t *c)
{
    (void)ctx;
    if (A.muc && A.muc_joined && kl_muc_leave(c, A.muc) == KL_OK) {
        printf("muc left %s\n", A.muc_room);
        fflush(stdout);
        A.muc_joined = 0;
    }
}

static void print_server_features(const char *from, uint16_t f)
{
    printf("server features (%s):%s%s%s%s%s%s\n", from, f & KL_SERVER_CARBONS ? " carbons" : "",
           f & KL_SERVER_MAM ? " mam" : "", f & KL_SERVER_BLOCKING ? " blocking" : "",
           f & KL_SERVER_PING ? " ping" : "", f & KL_SERVER_PUSH ? " push" : "",
           f & KL_SERVER_VERSION ? " version" : "");
    fflush(stdout);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: kinglet --jid J --password P [--host H] [--port N] [--cafile F]\n"
            "               [--pipelining off|safe|full|full-forced] [--send TO BODY] [--recv N] [--echo]\n"
            "               [--count N] [--timeout S] [--stats] [--trace] [--allow-plaintext]\n"
            "               [--no-plain]   (SCRAM-SHA-256/-1 only, never send the password)\n"
            "               [--tls starttls|direct]  (direct: XEP-0368, default port 5223)\n"
            "               [--cache FILE]  (connection hints kept across runs, 0600; they hold TLS\n"
            "                               session secrets, authenticated with the key in KEYFILE)\n"
            "               [--cache-key KEYFILE]  (default FILE.key, created 0600 on first use)\n"
            "               [--roster] [--disco]\n"
            "               [--srv [--dns HOST:PORT]]  (find the server through DNS SRV)\n"
            "               [--bosh URL [--bosh-path auto|all|split]]  (BOSH over http(s)://host:port/path)\n"
            "               [--ws URL]  (WebSocket, RFC 7395, over ws(s)://host:port/path)\n"
            "               [--reconnect [--backoff MIN_MS MAX_MS]]  (a lost link is retried with\n"
            "                 backoff and full jitter; stream management resumes the session)\n"
            "               [--keepalive T_S T2_S] [--no-sm]  (probe after T idle seconds, dead after T2 more)\n"
            "               [--no-logout]  (end without logging out; with --cache the next run resumes)\n"
            "               [--no-sasl2] [--no-fast]  (RFC 6120 SASL only / no FAST tokens)\n"
            "               [--fast-token TOKEN]  (provisioned FAST token; --password may then be left out)\n"
            "               [--user-agent-id UUID]  (SASL2 <user-agent id>; default: generated, kept in the hints)\n"
            "               [--bodies DIR]  (each message body also written to DIR/0001.body, ...)\n"
            "               [--identity CATEGORY/TYPE/NAME] [--feature VAR]... [--caps-node URI]\n"
            "                 (the device's disco identity and features; XEP-0115 caps in its presence)\n"
            "               [--subscriptions roster|anyone|none|ask]  (who may subscribe; default roster)\n"
            "               [--publish NODE ITEM_ID PAYLOAD_XML [--publish-option VAR=VALUE]...]  (own PEP)\n"
            "               [--muc ROOM@SERVICE/NICK [--muc-send TEXT]]  (join without history, leave at logout)\n"
            "               [--csi-inactive S]  (XEP-0352: inactive for S seconds after login, then active)\n"
            "               [--stay S]  (stay online S seconds, then log out)\n"
            "       kinglet --bosh URL --jid J --password P [--cafile F] [--allow-plaintext] [--stats] ...\n"
            "       kinglet --s2s --domain D --to PEER --cert F --key F [--cafile F] [--host H]\n"
            "               [--port N] [--send TO BODY] [--echo] [--count N] [--timeout S] [--stats]\n");
    exit(2);
}

static void trace(void *arg, char dir, const uint8_t *data, size_t len, const char *note)
{
    static int flights[2];
    (void)arg;
    if (note) {
        fprintf(stderr, "  ---- %s\n", note);
        return;
    }
    flights[dir == 'o']++;
    kl_cli_trace_bytes(dir, data, len, 0);
}

static uint32_t unix_now(void) { return (uint32_t)time(NULL); }

static void print_stats(const kl_session_t *sess, const char *mode, const char *cache_state, int full_fallback,
                        const char *srv_state, const char *bosh_path)
{
    const kl_endpoint_t *ep = kl_session_endpoint(sess);
    const kl_stats_t *s = kl_client_stats(&client);
    const kl_session_stats_t *w = kl_session_stats(sess);
    printf("{\"online_ms\":%u,\"round_trips\":%u,\"engine_round_trips\":%u,\"port_round_trips\":%u,"
           "\"flights_out\":%u,\"bytes_out\":%u,\"bytes_in\":%u,\"xml_bytes_out\":%u,\"xml_bytes_in\":%u,"
           "\"tcp_connect_ms\":%u,\"tls_handshake_ms\":%u,\"pipelining\":\"%s\",\"mode\":\"%s\",\"tls\":\"%s\",\"sasl\":\"%s\",\"cache\":\"%s\",\"full_fallback\":%d,\"tls_resumed\":%d,\"srv\":\"%s\","
           "\"stanzas_dropped\":%u,\"iq_unmatched\":%u,\"sizeof_client\":%zu,"
           "\"attempts\":%u,\"link_downs\":%u,\"onlines\":%u,\"resumes\":%u,"
           "\"http_round_trips\":%u,\"http_requests\":%u,\"bosh_path\":\"%s\","
           "\"sasl2\":%u,\"bind2\":%u,\"fast\":%u,\"fast_token_new\":%u,\"fast_refused\":%u,"
           "\"inline_resumed\":%u,\"channel_bound\":%u}\n",
           s->online_ms, s->round_trips, s->engine_round_trips, s->port_round_trips, s->flights_out,
           w->wire_out_online, w->wire_in_online, s->bytes_out_online, s->bytes_in_online,
           w->tcp_connect_ms, w->tls_handshake_ms,
           kl_client_full_pipelining(&client) ? "full" : (!strcmp(mode, "off") ? "off" : "safe"),
           ep->framing == KL_FRAMING_BOSH ? "bosh" : ep->framing == KL_FRAMING_WS ? "ws"
           : ep->security == KL_SEC_DIRECT_TLS ? "direct" : "starttls",
           w->tls_version && w->tls_version[0] ? w->tls_version : "none", kl_client_sasl_mechanism(&client),
           cache_state, full_fallback, w->tls_session_resumed, srv_state, s->stanzas_dropped, s->iq_unmatched,
           sizeof client + (bosh_path ? sizeof(kl_bosh_t) : 0), w->attempts, w->link_downs, w->onlines, w->resumes,
           w->http_round_trips_online, w->http_requests_online, bosh_path ? bosh_path : "none",
           s->sasl2, s->bind2, s->fast, s->fast_token_new, s->fast_refused, s->inline_resumed, s->channel_bound);
}

int main(int argc, char **argv)
{
    const char *jid = NULL, *password = NULL, *host = NULL, *cafile = NULL, *mode = "safe";
    const char *send_to = NULL, *send_body = NULL, *tls_mode = "starttls", *cache_path = NULL, *cache_key = NULL;
    int want_roster = 0, want_disco = 0, cache_hit = 0, s2s = 0, retried = 0, use_srv = 0, ncand = 0, ci = 0;
    const char *dns = NULL, *srv_note = "none";
    static kl_posix_candidate_t cand[KL_POSIX_MAX_CANDIDATES];
    const char *domain = NULL, *peer = NULL, *cert = NULL, *key = NULL;
    uint16_t roster_id = 0, disco_id = 0, server_features = 0;
    long port = -1, count = -1, recv_n = 0, timeout_s = 30;
    int echo = 0, stats = 0, do_trace = 0, allow_plaintext = 0, no_plain = 0, i, st, rc = 0;
    static kl_crypto_mbedtls_t crypto;
    static kl_cli_hints_t hints;
    kl_cli_run_t run;
    kl_client_config_t cfg;
    kl_tls_config_t tls;
    static kl_tls_t tls_sess[KL_SESSION_SLOTS]; /* BOSH over https: two connections */
    static kl_bosh_t bosh;                        /* BOSH's two request/response buffers */
    static kl_ws_t ws;                            /* the WebSocket codec */
    int want_ws = 0;
    static char url_buf[512];
    const char *url = NULL, *bosh_path = "auto";
    int split = 0;
    static kl_tls_mbedtls_t tlsb;
    static kl_posix_net_t net;
    static kl_session_t sess;
    kl_session_config_t scfg;
    int reconnect = 0, no_sm = 0, no_logout = 0, sm_loaded = 0, no_sasl2 = 0, no_fast = 0;
    int started = 0; /* online once in this process (a login or the saved session resumed) */
    const char *fast_token = NULL, *ua_id = NULL;
    long keepalive_s = 0, keepalive_t2_s = 0;
    long backoff_min = 0, backoff_max = 0;
    kl_event_t ev;
    uint32_t t_end;
    static kl_app_config_t acfg;
    static const char *features[MAX_FEATURES];
    static char idbuf[256];
    size_t nfeatures = 0;
    const char *identity = NULL, *subs = "roster";
    long csi_s = -1, stay_s = -1;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (usage(), ""))
        if (!strcmp(a, "--jid")) jid = NEXT();
        else if (!strcmp(a, "--password")) password = NEXT();
        else if (!strcmp(a, "--host")) host = NEXT();
        else if (!strcmp(a, "--port")) port = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--cafile")) cafile = NEXT();
        else if (!strcmp(a, "--pipelining")) mode = NEXT();
        else if (!strcmp(a, "--send")) { send_to = NEXT(); send_body = NEXT(); }
        else if (!strcmp(a, "--recv")) recv_n = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--echo")) echo = 1;
        else if (!strcmp(a, "--count")) count = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--timeout")) timeout_s = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--stats")) stats = 1;
        else if (!strcmp(a, "--trace")) do_trace = 1;
        else if (!strcmp(a, "--allow-plaintext")) allow_plaintext = 1;
        else if (!strcmp(a, "--no-plain")) no_plain = 1;
        else if (!strcmp(a, "--tls")) tls_mode = NEXT();
        else if (!strcmp(a, "--cache")) cache_path = NEXT();
        else if (!strcmp(a, "--cache-key")) cache_key = NEXT();
        else if (!strcmp(a, "--roster")) want_roster = 1;
        else if (!strcmp(a, "--disco")) want_disco = 1;
        else if (!strcmp(a, "--srv")) use_srv = 1;
        else if (!strcmp(a, "--reconnect")) reconnect = 1;
        else if (!strcmp(a, "--no-sm")) no_sm = 1;
        else if (!strcmp(a, "--no-logout")) no_logout = 1;
        else if (!strcmp(a, "--no-sasl2")) no_sasl2 = 1;
        else if (!strcmp(a, "--no-fast")) no_fast = 1;
        else if (!strcmp(a, "--fast-token")) fast_token = NEXT();
        else if (!strcmp(a, "--user-agent-id")) ua_id = NEXT();
        else if (!strcmp(a, "--keepalive")) { keepalive_s = strtol(NEXT(), NULL, 10); keepalive_t2_s = strtol(NEXT(), NULL, 10); }
        else if (!strcmp(a, "--bosh")) url = NEXT();
        else if (!strcmp(a, "--ws")) { url = NEXT(); want_ws = 1; }
        else if (!strcmp(a, "--bosh-path")) bosh_path = NEXT();
        else if (!strcmp(a, "--backoff")) { backoff_min = strtol(NEXT(), NULL, 10); backoff_max = strtol(NEXT(), NULL, 10); }
        else if (!strcmp(a, "--dns")) dns = NEXT();
        else if (!strcmp(a, "--s2s")) s2s = 1;
        else if (!strcmp(a, "--domain")) domain = NEXT();
        else if (!strcmp(a, "--to")) peer = NEXT();
        else if (!strcmp(a, "--cert")) cert = NEXT();
        else if (!strcmp(a, "--key")) key = NEXT();
        else if (!strcmp(a, "--bodies")) A.bodies_dir = NEXT();
        else if (!strcmp(a, "--identity")) identity = NEXT();
        else if (!strcmp(a, "--feature")) { if (nfeatures == MAX_FEATURES) usage(); features[nfeatures++] = NEXT(); }
        else if (!strcmp(a, "--caps-node")) acfg.caps_node = NEXT();
        else if (!strcmp(a, "--subscriptions")) subs = NEXT();
        else if (!strcmp(a, "--muc")) A.muc = NEXT();
        else if (!strcmp(a, "--muc-send")) A.muc_send = NEXT();
        else if (!strcmp(a, "--publish")) { A.pub_node = NEXT(); A.pub_item = NEXT(); A.pub_payload = NEXT(); }
        else if (!strcmp(a, "--publish-option")) { if (A.npub_opts == MAX_PUB_OPTS) usage(); A.pub_opts[A.npub_opts++] = NEXT(); }
        else if (!strcmp(a, "--csi-inactive")) csi_s = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--stay")) stay_s = strtol(NEXT(), NULL, 10);
        else usage();
#undef NEXT
    }
    if (s2s) {
        if (!domain || !peer || !cert || !key)
            usage();
        jid = domain;
        password = "";
        if (port < 0)
            port = 5269;
    }
    if (port < 0)
        port = !strcmp(tls_mode, "direct") ? 5223 : 5222;
    if (!jid || (!password && !fast_token) || port <= 0 || port > 65535 || timeout_s <= 0)
        usage();
    memset(&scfg, 0, sizeof scfg);
    if (url) {
        /* BOSH (XEP-0124/0206) or WebSocket (RFC 7395): framings of the same session */
        if (kl_endpoint_from_url(&scfg.endpoints[0], url, url_buf, sizeof url_buf) != KL_OK ||
            scfg.endpoints[0].framing != (want_ws ? KL_FRAMING_WS : KL_FRAMING_BOSH) || s2s || use_srv) {
            fprintf(stderr, "kinglet: %s %s: use %s://host[:port]/path (not with --s2s or --srv)\n",
                    want_ws ? "--ws" : "--bosh", url, want_ws ? "ws[s]" : "http[s]");
            return 2;
        }
        if (scfg.endpoints[0].security == KL_SEC_NONE && !allow_plaintext) {
            /* security rule 1: no credentials in clear unless asked for */
            fprintf(stderr, "kinglet: %s is not encrypted: the password would go in clear; use %s:// "
                            "or --allow-plaintext\n", url, want_ws ? "wss" : "https");
            return 5;
        }
        if (!strcmp(bosh_path, "split"))
            split = 1;
        else if (strcmp(bosh_path, "all") && strcmp(bosh_path, "auto"))
            usage();
        scfg.n_endpoints = 1;
    }

    memset(&cfg, 0, sizeof cfg);
    cfg.jid = jid;
    cfg.password = s2s ? NULL : password;
    cfg.no_sasl2 = (uint8_t)no_sasl2;
    cfg.no_fast = (uint8_t)no_fast;
    cfg.fast_token = fast_token;
    cfg.user_agent_id = ua_id;
    cfg.device = "kinglet-cli";
    cfg.unix_time = unix_now;
    cfg.s2s = (uint8_t)s2s;
    cfg.s2s_to = peer;
    cfg.allow_plaintext = (uint8_t)allow_plaintext;
    cfg.no_plain = (uint8_t)no_plain;
    if (strcmp(tls_mode, "direct") && strcmp(tls_mode, "starttls")) {
        fprintf(stderr, "kinglet: --tls %s: use starttls or direct\n", tls_mode);
        return 2;
    }
    if (kl_crypto_mbedtls_init(&crypto) == 0)
        cfg.crypto = &crypto.table; /* SCRAM when PLAIN is not offered or not allowed */
    if (url && !want_ws) /* BOSH: <auth/> + restart + bind in one flight */
        mode = "full-forced";
    if (url) /* TLS, if any, is under HTTP; the clear case was refused above unless allowed */
        cfg.allow_plaintext = (uint8_t)(scfg.endpoints[0].security == KL_SEC_NONE);
    if (!strcmp(mode, "off"))
        cfg.pipelining = KL_PIPELINING_OFF;
    else if (!strcmp(mode, "safe"))
        cfg.pipelining = KL_PIPELINING_SAFE;
    else if (!strcmp(mode, "full"))
        cfg.pipelining = KL_PIPELINING_FULL; /* when the cache says the server advertised it */
    else if (!strcmp(mode, "full-forced")) {
        cfg.pipelining = KL_PIPELINING_FULL;
        cfg.force_full = 1;
    } else {
        fprintf(stderr, "kinglet: --pipelining %s: use off, safe, full or full-forced\n", mode);
        return 2;
    }
    if (cache_key && !cache_path)
        usage();
    if (!no_sm && !s2s) {
        cfg.sm_queue = sm_queue;
        cfg.sm_queue_size = sizeof sm_queue;
    }
    if (keepalive_s > 0)
        cfg.keepalive_ms = (uint32_t)keepalive_s * 1000u;
    if (keepalive_t2_s > 0)
        cfg.keepalive_timeout_ms = (uint32_t)keepalive_t2_s * 1000u;
    if (cache_path)
        cfg.cache = &cache;
    if ((st = kl_client_init(&client, &cfg)) != KL_OK) {
        kl_cli_init_error("kinglet", jid, st);
        return 2;
    }
    /* the application layer: the device's identity, and what it does with
     * each kind of stanza */
    if (identity) {
        char *t1, *t2;
        snprintf(idbuf, sizeof idbuf, "%s", identity);
        if (!(t1 = strchr(idbuf, '/')) || !(t2 = strchr(t1 + 1, '/'))) {
            fprintf(stderr, "kinglet: --identity %s: use CATEGORY/TYPE/NAME\n", identity);
            return 2;
        }
        *t1++ = '\0';
        *t2++ = '\0';
        acfg.category = idbuf;
        acfg.type = t1;
        acfg.name = t2;
    }
    acfg.features = features;
    acfg.nfeatures = nfeatures;
    if (!strcmp(subs, "roster")) acfg.subscriptions = KL_SUB_ROSTER;
    else if (!strcmp(subs, "anyone")) acfg.subscriptions = KL_SUB_ANYONE;
    else if (!strcmp(subs, "none")) acfg.subscriptions = KL_SUB_NOBODY;
    else if (!strcmp(subs, "ask")) acfg.subscriptions = KL_SUB_ASK, A.sub_ask = 1;
    else {
        fprintf(stderr, "kinglet: --subscriptions %s: use roster, anyone, none or ask\n", subs);
        return 2;
    }
    acfg.on_subscription = on_subscription;
    if (A.muc) {
        const char *sl = strchr(A.muc, '/');
        if (!sl || !strchr(A.muc, '@') || (size_t)(sl - A.muc) >= sizeof A.muc_room) {
            fprintf(stderr, "kinglet: --muc %s: use ROOM@SERVICE/NICK\n", A.muc);
            return 2;
        }
        memcpy(A.muc_room, A.muc, (size_t)(sl - A.muc));
        A.muc_nick = sl + 1;
    }
    if ((st = kl_app_init(&app, &client, &acfg)) != KL_OK) {
        fprintf(stderr, "kinglet: --identity / --feature / --caps-node: %s\n", kl_strerror(st));
        return 2;
    }
    {
        static const kl_handler_t hs[] = {
            {KL_KIND_MESSAGE, NULL, NULL, NULL, on_message, NULL},
            {KL_KIND_MESSAGE, NULL, "event", KL_NS_PUBSUB_EVENT, on_pubsub_event, NULL},
            {KL_KIND_IQ, "result", "query", "jabber:iq:roster", on_roster, NULL},
            {KL_KIND_IQ, "set", "query", "jabber:iq:roster", on_roster_push, NULL},
            {KL_KIND_IQ, NULL, NULL, NULL, on_publish_result, NULL},
            {KL_KIND_PRESENCE, NULL, NULL, NULL, on_presence, NULL},
        };
        for (i = 0; i < (int)(sizeof hs / sizeof hs[0]); i++)
            (void)kl_app_on(&app, &hs[i]);
    }
    /* the hints, authenticated with the device key (or ignored, reported) */
    if (cache_path)
        cache_hit = kl_cli_hints_load(&hints, "kinglet", cache_path, cache_key, cfg.crypto,
                                      kl_client_domain(&client), &cache);
    if (cache_path && cfg.sm_queue) /* a session this device left without logging out: resume it */
        sm_loaded = kl_cli_sm_load(&hints, &client, sm_blob, sizeof sm_blob);
    if (sm_loaded && do_trace)
        fprintf(stderr, "  ---- stream-management state loaded: the login resumes the session\n");
    if (url && cache_hit && !strcmp(bosh_path, "auto") && cache.bosh_path == KL_CACHE_BOSH_SPLIT)
        split = 1; /* learned: no wasted creation request */
    memset(&tls, 0, sizeof tls);
    tls.ca_file = cafile;
    tls.cert_file = cert; /* s2s: our domain's certificate, for SASL EXTERNAL */
    tls.key_file = key;

    memset(&run, 0, sizeof run);
    A.run = &run;
    run.on_close = leave_rooms;
    g.echo = echo;
    g.recv_n = recv_n;
    g.stay = stay_s >= 0;
    g.csi = csi_s >= 0;
    run.prog = "kinglet";
    run.echo = echo;
    run.s2s = s2s;
    run.count = count;
    run.recv_n = recv_n;
    run.session = &sess;
    run.detach = no_logout;
    t_end = kl_posix_now_ms() + (uint32_t)timeout_s * 1000u;
    if (url) {
        /* the endpoint is the URL's */
    } else if (use_srv && !host && !s2s) {
        /* the server from DNS SRV (or the hints' record while its TTL lasts) */
        if (cache_hit && cache.srv_host[0] && (uint32_t)time(NULL) < cache.srv_expires) {
            snprintf(cand[0].host, sizeof cand[0].host, "%s", cache.srv_host);
            cand[0].port = cache.srv_port;
            cand[0].direct_tls = cache.srv_direct_tls;
            cand[0].from_srv = 1;
            ncand = 1;
            srv_note = "cached";
        } else {
            ncand = kl_posix_srv_candidates(kl_client_domain(&client), dns, !strcmp(tls_mode, "direct"), 3000, cand,
                                            KL_POSIX_MAX_CANDIDATES);
            if (ncand <= 0) {
                fprintf(stderr, "kinglet: DNS SRV lookup for %s failed: %s\n", kl_client_domain(&client),
                        kl_strerror(ncand < 0 ? ncand : KL_ERR_DNS));
                return kl_cli_exit_code(KL_ERR_DNS);
            }
            srv_note = cand[0].from_srv ? "dns" : "fallback";
        }
        /* the records in their RFC 2782 order; the manager fails over */
        for (ci = 0; ci < ncand && ci < KL_SESSION_MAX_ENDPOINTS; ci++) {
            scfg.endpoints[ci].host = cand[ci].ip[0] ? cand[ci].ip : cand[ci].host;
            scfg.endpoints[ci].port = cand[ci].port;
            scfg.endpoints[ci].security = cand[ci].direct_tls ? KL_SEC_DIRECT_TLS : KL_SEC_STARTTLS;
        }
        scfg.n_endpoints = ci;
    } else {
        scfg.endpoints[0].host = host ? host : kl_client_domain(&client);
        scfg.endpoints[0].port = (uint16_t)port;
        scfg.endpoints[0].security = !strcmp(tls_mode, "direct") ? KL_SEC_DIRECT_TLS : KL_SEC_STARTTLS;
        scfg.n_endpoints = 1;
    }
    scfg.client = &client;
    scfg.net = &kl_posix_net_ops;
    scfg.net_ctx = &net;
    scfg.tls = &kl_tls_mbedtls_ops;
    scfg.tls_ctx = &tlsb;
    scfg.alpn = s2s ? "xmpp-server" : NULL;
    scfg.cache = cache_path && !s2s ? &cache : NULL; /* TLS resumption through the authenticated hints */
    scfg.random = kl_posix_random;
    scfg.crypto = cfg.crypto; /* WebSocket: SHA-1 for the upgrade's accept key */
    scfg.reconnect = (uint8_t)reconnect;
    scfg.backoff_min_ms = backoff_min > 0 ? (uint32_t)backoff_min : 0;
    scfg.backoff_max_ms = backoff_max > 0 ? (uint32_t)backoff_max : 0;
    /* per step (TCP connect, TLS handshake, HTTP upgrade), not the run's
     * length: a reconnect whose handshake stalls (a server that accepts and
     * never answers) is given up after 20 s, like the engine's negotiation,
     * and retried, instead of hanging until --timeout */
    scfg.timeout_ms = (uint32_t)(timeout_s < 20 ? timeout_s : 20) * 1000u;
    if (do_trace)
        scfg.trace = trace;

retry:
    (void)kl_app_attach(&app, &client); /* again after each kl_client_init() */
    kl_tls_mbedtls_init(&tlsb, &tls, tls_sess, KL_SESSION_SLOTS);
    kl_posix_net_init(&net);
    scfg.client = &client;
    scfg.bosh_split_restart = (uint8_t)split;
    if ((st = kl_session_init(&sess, &scfg)) != KL_OK) {
        fprintf(stderr, "kinglet: cannot start the session: %s\n", kl_strerror(st));
        return 2;
    }
    kl_session_use_bosh(&sess, &bosh);
    kl_session_use_ws(&sess, &ws);
    kl_session_start(&sess, kl_posix_now_ms());

    for (;;) {
        uint32_t now = kl_posix_now_ms();
        if (kl_cli_detach_step(&run)) { /* --no-logout: the connection was dropped on purpose */
            rc = 0;
            break;
        }
        if ((int32_t)(now - t_end) >= 0) {
            if ((rc = kl_cli_deadline(&run, &client, now, &t_end)) < 0) {
                rc = 0;
                continue;
            }
            break;
        }
        st = kl_session_step(&sess, now, &ev);
        if (st < 0) {
            fprintf(stderr, "kinglet: %s\n", kl_strerror(st));
            rc = 1;
            break;
        }
        if (st == 0) {
            int before = run.echoed;
            unsigned long progress = run.echo_progress;
            kl_cli_flush_echoes(&run, &client);
            if (g.csi && (int32_t)(now - g.csi_at) >= 0 && kl_client_is_online(&client)) {
                g.csi = 0;
                if ((st = kl_csi_set(&client, 1)) == KL_OK)
                    printf("csi active\n");
                else
                    fprintf(stderr, "kinglet: cannot send <active/>: %s\n", kl_strerror(st));
                fflush(stdout);
                cli_idle();
                continue;
            }
            if (g.stay && (int32_t)(now - g.stay_until) >= 0 && g.online) {
                g.stay = 0;
                cli_idle();
                continue;
            }
            if (run.echoed != before || run.echo_progress != progress)
                continue; /* the step sends them */
            {
                uint32_t until = t_end;
                if (g.csi && g.online && (int32_t)(g.csi_at - until) < 0)
                    until = g.csi_at;
                if (g.stay && g.online && (int32_t)(g.stay_until - until) < 0)
                    until = g.stay_until;
                kl_posix_net_wait(&net, &sess, (int32_t)(until - now) > 0 ? until - now : 0);
            }
            continue;
        }
        if (ev.type == KL_EV_STANZA_DROPPED)
            kl_cli_dropped(&ev); /* said, whether or not a handler saw its start */
        if (kl_app_event(&app, &ev) || (ev.type == KL_EV_STANZA_DROPPED && !kl_app_ended_iq(&app)))
            continue; /* a stanza: the handlers above had it */
        if (ev.type == KL_EV_LINK_DOWN) {
            fprintf(stderr, "kinglet: link down (%s%s%s); reconnecting in %u ms\n", kl_session_error_text(&sess),
                    ev.condition[0] ? ": " : "", ev.condition, ev.retry_ms);
            continue;
        }
        if (ev.type == KL_EV_RESUMED) {
            /* what the reconnect cost, from TCP connect to <resumed/> */
            const kl_session_stats_t *w = kl_session_stats(&sess);
            printf("resumed %s (%u round trips, %u bytes out, %u bytes in)\n", ev.jid, w->link_rt_online,
                   w->wire_out_online, w->wire_in_online);
            fflush(stdout);
            if (started)
                continue;
            /* the first online of this process is the resumption of the
             * session a --no-logout run saved: what this run was asked to do
             * (--send, --roster, --disco, the close) follows, as after a login */
        }
        if (ev.type == KL_EV_UNACKED) {
            /* the old session lost it: this program sends it again */
            kl_xw_t w;
            printf("unacknowledged stanza %u handed back (%zu bytes): sent again\n", ev.seq, ev.stanza.raw.len);
            fflush(stdout);
            if (kl_stanza_begin(&client, &w) != KL_OK ||
                (kl_xw_raw(&w, ev.stanza.raw.p, ev.stanza.raw.len), kl_stanza_commit(&client, &w)) != KL_OK)
                fprintf(stderr, "kinglet: stanza %u could not be sent again: transmit buffer full\n", ev.seq);
            continue;
        }
        if (ev.type == KL_EV_ACKED)
            continue;
        if (ev.type == KL_EV_ONLINE && started) {
            printf("online again %s\n", ev.jid);
            fflush(stdout);
            continue;
        }
        if (ev.type == KL_EV_ONLINE || ev.type == KL_EV_RESUMED) {
            int resumed = ev.type == KL_EV_RESUMED;
            started = 1;
            if (cache_path && ncand > 0 && strcmp(srv_note, "cached")) {
                /* the SRV record that answered, kept for its TTL (the engine
                 * has validated or reset the hints by now) */
                const kl_endpoint_t *e = kl_session_endpoint(&sess);
                for (ci = 0; ci < ncand; ci++) {
                    const char *h = cand[ci].ip[0] ? cand[ci].ip : cand[ci].host;
                    size_t hl = strlen(h);
                    if (!cand[ci].from_srv || strcmp(h, e->host) || cand[ci].port != e->port)
                        continue;
                    if (hl >= sizeof cache.srv_host)
                        hl = 0; /* a name longer than the hint field is simply not cached */
                    memcpy(cache.srv_host, h, hl);
                    cache.srv_host[hl] = '\0';
                    cache.srv_port = cand[ci].port;
                    cache.srv_direct_tls = cand[ci].direct_tls;
                    cache.srv_expires = (uint32_t)time(NULL) + cand[ci].ttl;
                    break;
                }
            }
            if (do_trace)
                fprintf(stderr, "  ---- online as %s after %u round trips (%u ms)\n", ev.jid,
                        kl_client_stats(&client)->round_trips, kl_client_stats(&client)->online_ms);
            if (!resumed) /* a resumption said "resumed" */
                printf("online %s\n", ev.jid);
            fflush(stdout);
            if (s2s && !ev.bidi)
                fprintf(stderr, "kinglet: warning: %s offers no bidirectional s2s (XEP-0288): this stream "
                                "can send but will not receive\n", peer);
            if (cache_path)
                cache_hit = cache_hit && kl_cache_check(&cache, kl_client_domain(&client)) == KL_OK;
            if (!s2s && kl_app_caps_ver(&app)[0])
                printf("caps ver %s\n", kl_app_caps_ver(&app));
            fflush(stdout);
            g.online = 1;
            if (want_disco) {
                if (kl_server_features(&client, &server_features))
                    print_server_features("hints (caps ver unchanged)", server_features);
                else if ((st = kl_send_server_disco(&client, &disco_id)) != KL_OK)
                    fprintf(stderr, "kinglet: cannot ask for the server's disco#info: %s\n", kl_strerror(st));
                g.disco_id = disco_id;
            }
            if (want_roster && (st = kl_send_roster_get(&client, &roster_id)) != KL_OK)
                fprintf(stderr, "kinglet: cannot ask for the roster: %s\n", kl_strerror(st));
            A.roster_id = roster_id;
            if (A.pub_node && (st = kl_pubsub_publish(&client, NULL, A.pub_node, A.pub_item, A.pub_payload, A.pub_opts,
                                                      A.npub_opts, &A.pub_id)) != KL_OK)
                fprintf(stderr, "kinglet: cannot publish to %s: %s\n", A.pub_node, kl_strerror(st));
            if (A.muc && !A.muc_joined && (st = kl_muc_join(&client, A.muc, NULL, 0)) != KL_OK)
                fprintf(stderr, "kinglet: cannot join %s: %s\n", A.muc, kl_strerror(st));
            if (g.csi) {
                if ((st = kl_csi_set(&client, 0)) == KL_OK) {
                    printf("csi inactive\n");
                    g.csi_at = kl_posix_now_ms() + (uint32_t)csi_s * 1000u;
                } else {
                    fprintf(stderr, "kinglet: cannot send <inactive/>: %s\n", kl_strerror(st));
                    g.csi = 0;
                }
                fflush(stdout);
            }
            if (g.stay)
                g.stay_until = kl_posix_now_ms() + (uint32_t)stay_s * 1000u;
            if (send_to) {
                st = kl_send_message(&client, send_to, "chat", send_body);
                if (st != KL_OK) {
                    fprintf(stderr, "kinglet: cannot send: %s\n", kl_strerror(st));
                    rc = 1;
                    break;
                }
            }
            cli_idle();
        } else if (disco_id && ((ev.type == KL_EV_IQ_RESULT && ev.iq_id == disco_id) ||
                                ((ev.type == KL_EV_STANZA_END || ev.type == KL_EV_STANZA_DROPPED) &&
                                 kl_app_ended_iq(&app) == disco_id))) {
            disco_id = g.disco_id = 0;
            if (kl_server_features(&client, &server_features))
                print_server_features("disco#info", server_features);
            else
                printf("server features: disco#info not cached (no caps ver, or no --cache)\n");
            fflush(stdout);
            cli_idle();
        } else if (ev.type == KL_EV_IQ_RESULT && ev.iq_id == A.roster_id && A.roster_id) {
            /* an error: the items came to on_roster otherwise */
            printf("roster error: 0 items, version '%s'\n", cache.roster_ver);
            fflush(stdout);
            A.roster_id = 0;
            cli_idle();
        } else if (ev.type == KL_EV_IQ_RESULT && ev.iq_id == A.pub_id && A.pub_id) {
            A.pub_id = 0; /* claimed by on_publish_result; not reached */
            cli_idle();
        } else if (ev.type == KL_EV_CLOSED) {
            rc = 0;
            break;
        } else if (ev.type == KL_EV_ERROR) {
            if (url && !want_ws && !strcmp(bosh_path, "auto") && !split && !went_online(&sess) &&
                (ev.status == KL_ERR_BOSH_TERMINATE || ev.status == KL_ERR_STREAM_ERROR ||
                 ev.status == KL_ERR_BIND || ev.status == KL_ERR_PROTOCOL ||
                 (ev.status <= KL_ERR_XML_SYNTAX && ev.status >= KL_ERR_XML_ATTR_TOO_LONG))) {
                /* a connection manager that does not take the restart and
                 * the bind in the creation body (ejabberd 23.01): the split
                 * path, once */
                kl_session_shutdown(&sess);
                kl_client_init(&client, &cfg);
                split = 1;
                retried = 1;
                goto retry;
            }
            if (!url && kl_client_full_pipelining(&client) && kl_session_stats(&sess)->connects && !retried &&
                ev.status != KL_ERR_AUTH &&
                ev.status != KL_ERR_TLS_CERT && ev.status != KL_ERR_NO_MECHANISM) {
                /* A server that mishandles full flights (Prosody 0.12 does):
                 * once more with safe; the cache already says so for next time. */
                if (do_trace)
                    fprintf(stderr, "  ---- full pipelining failed (%s); retrying with safe\n", kl_strerror(ev.status));
                kl_session_shutdown(&sess);
                cfg.pipelining = KL_PIPELINING_SAFE;
                cfg.force_full = 0;
                kl_client_init(&client, &cfg);
                retried = 1;
                goto retry;
            }
            if (ev.status == KL_ERR_STREAM_ERROR)
                fprintf(stderr, "kinglet: stream error from server: %s\n", ev.condition);
            else if (ev.status == KL_ERR_AUTH)
                fprintf(stderr, "kinglet: authentication failed (%s)\n", ev.condition[0] ? ev.condition : "no condition");
            else if ((ev.status == KL_ERR_FAST_REFUSED || ev.status == KL_ERR_FAST_UNAVAILABLE) && ev.condition[0])
                /* the condition of the server's SASL2 <failure/> (e.g.
                 * credentials-expired), not a stream error of ours */
                fprintf(stderr, "kinglet: %s (the server said %s)\n", kl_strerror(ev.status), ev.condition);
            else if (strcmp(kl_session_error_text(&sess), kl_strerror(ev.status)))
                fprintf(stderr, "kinglet: %s: %s\n", kl_strerror(ev.status), kl_session_error_text(&sess));
            else
                fprintf(stderr, "kinglet: %s%s%s%s\n", kl_strerror(ev.status),
                        ev.condition[0] ? " (sent stream error " : "", ev.condition, ev.condition[0] ? ")" : "");
            rc = kl_cli_exit_code(ev.status);
            break;
        }
    }
    if (no_logout && cache_path)
        kl_cli_sm_save(&hints, &client, sm_blob, sizeof sm_blob); /* the next run resumes */
    if (cache_path && went_online(&sess)) {
        if (url && !want_ws) /* remember the BOSH path that worked */
            cache.bosh_path = split ? KL_CACHE_BOSH_SPLIT : KL_CACHE_BOSH_ALL;
        kl_cli_hints_save(&hints, &cache); /* the manager kept the newest TLS session in it */
    }
    if (stats)
        print_stats(&sess, mode, cache_path ? (cache_hit ? "hit" : "miss") : "none", retried, srv_note,
                    url && !want_ws ? (split ? "split" : "all") : NULL);
    kl_session_shutdown(&sess);
    return rc;
}
