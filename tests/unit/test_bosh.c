/* Unit tests: the BOSH framing (core/kl_bosh.c) driving the real engine
 * against scripted connection-manager responses. HTTP responses are fed
 * split at every byte. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <string.h>

#include "kinglet/kl_bosh.h"
#include "kinglet/kl_app.h"
#include "kt.h"

static kl_client_t client;
static kl_bosh_t bosh;
static char req_text[KL_BOSH_REQ_MAX + 1];

#define NSB "xmlns='http://jabber.org/protocol/httpbind'"

static const char *features_pre =
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
    "<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>";
static const char *success = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
static const char *features_post =
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>";
static const char *bind_result =
    "<iq type='result' id='kl-bind' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    "<jid>alice@localhost/r</jid></bind></iq>";

static void setup_cfg(const kl_bosh_config_t *bc)
{
    kl_client_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = "alice@localhost/r";
    cfg.password = "alicepass";
    cfg.direct_tls = 1;
    cfg.allow_plaintext = 1;
    cfg.pipelining = KL_PIPELINING_FULL;
    cfg.force_full = 1;
    cfg.no_presence = 0;
    cfg.random = kt_random;
    KT_CHECK_EQ(kl_client_init(&client, &cfg), KL_OK);
    KT_CHECK_EQ(kl_bosh_init(&bosh, bc), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&client, 0, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    KT_CHECK_EQ(kl_bosh_pull(&bosh, &client), KL_OK);
}

static void setup_with(int split, const char *host, const char *to, uint32_t rid)
{
    kl_bosh_config_t bc;
    memset(&bc, 0, sizeof bc);
    bc.host = host;
    bc.path = "/http-bind";
    bc.to = to;
    bc.rid = rid;
    bc.split_restart = (uint8_t)split;
    setup_cfg(&bc);
}

static void setup(int split) { setup_with(split, "127.0.0.1:5280", "localhost", 1000); }

/* The next request as text (its slot in *slot), or NULL. */
static const char *next_req(int *slot)
{
    const uint8_t *p;
    size_t n;
    int i;
    kl_bosh_pull(&bosh, &client);
    i = kl_bosh_next_request(&bosh, &p, &n);
    if (slot)
        *slot = i;
    if (i < 0)
        return NULL;
    memcpy(req_text, p, n);
    req_text[n] = '\0';
    return req_text;
}

/* Feed an HTTP response with body `body` to slot, split at `at`. */
static int respond_split(int slot, const char *status, const char *body, size_t at)
{
    char http[8192];
    size_t n = (size_t)snprintf(http, sizeof http, "HTTP/1.1 %s\r\nContent-Type: text/xml; charset=utf-8\r\n"
                                "Content-Length: %zu\r\n\r\n%s", status, strlen(body), body);
    size_t off = 0, used;
    int r = 0;
    if (at > n)
        at = n;
    while (off < n) {
        size_t piece = off < at ? at - off : n - off;
        r = kl_bosh_response(&bosh, slot, (const uint8_t *)http + off, piece, &used);
        off += used;
        if (r != 0)
            break;
    }
    return r;
}

static int respond(int slot, const char *body) { return respond_split(slot, "200 OK", body, 0); }

/* Run engine + push until nothing moves; record events. Returns the last push status. */
static kl_event_type_t evs[32];
static int nev, last_status;
static char last_cond[64], online_jid[64], last_body[256];

static int drive(void)
{
    int r = 0, guard = 0;
    nev = 0;
    for (; guard < 10000; guard++) {
        kl_event_t ev;
        kl_bosh_pull(&bosh, &client);
        if (kl_engine_poll(&client, 0, &ev) > 0) {
            if (nev < 32)
                evs[nev++] = ev.type;
            last_status = ev.status;
            snprintf(last_cond, sizeof last_cond, "%s", ev.condition ? ev.condition : "");
            if (ev.type == KL_EV_ONLINE)
                snprintf(online_jid, sizeof online_jid, "%s", ev.jid);
            if (ev.type == KL_EV_STANZA) {
                int l = kl_stanza_child_text(&client, &ev.stanza, "body", NULL, last_body, sizeof last_body);
                if (l < 0)
                    last_body[0] = '\0';
            }
            continue;
        }
        r = kl_bosh_push(&bosh, &client);
        if (r <= 0)
            return r;
    }
    return -9999;
}

static int saw(kl_event_type_t t)
{
    for (int i = 0; i < nev; i++)
        if (evs[i] == t)
            return 1;
    return 0;
}

static void login_prosody_path_at(size_t at)
{
    char body[2048];
    int slot;
    const char *r;
    setup(0);
    r = next_req(&slot);
    KT_CHECK(r != NULL);
    if (!r)
        return;
    if (at == 0) {
        KT_CHECK(strstr(r, "POST /http-bind HTTP/1.1\r\nHost: 127.0.0.1:5280\r\n") == r);
        KT_CHECK(strstr(r, "rid='1000'") != NULL);
        KT_CHECK(strstr(r, "to='localhost'") != NULL);
        KT_CHECK(strstr(r, "ver='1.6'") != NULL);
        KT_CHECK(strstr(r, "xmpp:version='1.0'") != NULL);
        KT_CHECK(strstr(r, "xmpp:restart='true'") != NULL);
        KT_CHECK(strstr(r, "wait='60'") != NULL && strstr(r, "hold='1'") != NULL);
        KT_CHECK(strstr(r, "<auth ") != NULL && strstr(r, "<iq ") != NULL);
        KT_CHECK(strstr(r, "<auth ") < strstr(r, "<iq "));
        KT_CHECK(strstr(r, "stream:stream") == NULL && strstr(r, "<?xml") == NULL);
        KT_CHECK(strstr(r, "xmlns:xmpp='urn:xmpp:xbosh'") != NULL);
        /* Content-Length matches */
        const char *b = strstr(r, "\r\n\r\n") + 4;
        char cl[40];
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", strlen(b));
        KT_CHECK(strstr(r, cl) != NULL);
        /* one request outstanding while the session is being created */
        KT_CHECK(next_req(NULL) == NULL);
    }
    snprintf(body, sizeof body,
             "<body " NSB " xmlns:stream='http://etherx.jabber.org/streams' sid='s1d' wait='60' "
             "requests='2' hold='1' inactivity='60' polling='5' ver='1.6' from='localhost'>%s%s%s%s</body>",
             features_pre, success, features_post, bind_result);
    KT_CHECK_EQ(respond_split(slot, "200 OK", body, at), 1);
    KT_CHECK_EQ(drive(), 0);
    KT_CHECK(saw(KL_EV_ONLINE));
    KT_CHECK_STR(online_jid, "alice@localhost/r");
    KT_CHECK_EQ(bosh.requests, 2);
    KT_CHECK_STR(bosh.sid, "s1d");
    KT_CHECK_EQ(bosh.round_trips, 1);
    KT_CHECK_EQ(kl_client_stats(&client)->engine_round_trips, 1);
}

static void test_login_prosody_path(void)
{
    /* every split of the creation response */
    for (size_t at = 0; at < 900; at++)
        login_prosody_path_at(at);
}

static void test_session(void)
{
    int s1, s2;
    const char *r;
    login_prosody_path_at(0);
    /* the presence goes out, with sid and the next rid */
    r = next_req(&s1);
    KT_CHECK(r && strstr(r, "rid='1001'") && strstr(r, "sid='s1d'") && strstr(r, "<presence xmlns='jabber:client'/>"));
    KT_CHECK(r && !strstr(r, "xmpp:restart"));
    /* the BOSH body wraps whole stanzas: no long one, also without the
     * connection manager (kl_bosh_pull told the client) */
    KT_CHECK_EQ(kl_send_message_begin(&client, "bob@localhost", NULL), KL_ERR_UNSUPPORTED);
    /* nothing queued and one outstanding: no second poll */
    KT_CHECK(next_req(NULL) == NULL);
    /* a message: a second request while the first is held */
    KT_CHECK_EQ(kl_send_message(&client, "bob@localhost", "chat", "hi"), KL_OK);
    r = next_req(&s2);
    KT_CHECK(r && strstr(r, "rid='1002'") && strstr(r, "<message"));
    /* XEP-0206 §5: the stanza says jabber:client itself (else its <body/>
     * child is read in httpbind's namespace: Prosody relays it so) */
    KT_CHECK(r && strstr(r, "<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>hi</body></message>"));
    KT_CHECK(s2 >= 0 && s2 != s1);
    KT_CHECK_EQ(kl_bosh_outstanding(&bosh), 2);
    /* responses out of order: 1002 first is held until 1001's arrives */
    KT_CHECK_EQ(respond(s2, "<body " NSB "><message xmlns='jabber:client' from='bob@localhost/x' "
                            "to='alice@localhost/r' type='chat'><body>second</body></message></body>"), 1);
    KT_CHECK_EQ(drive(), 0);
    KT_CHECK(!saw(KL_EV_STANZA));
    /* Prosody: the restarted stream's features come after the bind result */
    char b1[1024];
    snprintf(b1, sizeof b1, "<body " NSB " xmlns:stream='http://etherx.jabber.org/streams'>%s<message "
             "xmlns='jabber:client' from='bob@localhost/x' to='alice@localhost/r' type='chat'><body>first</body>"
             "</message></body>", features_post);
    KT_CHECK_EQ(respond(s1, b1), 1);
    KT_CHECK_EQ(drive(), 0);
    KT_CHECK_EQ(nev, 2);
    KT_CHECK(!saw(KL_EV_ERROR));
    KT_CHECK_STR(last_body, "second");
    /* nothing outstanding, nothing queued: an empty long poll */
    r = next_req(&s1);
    KT_CHECK(r && strstr(r, "rid='1003'") && strstr(r, "'/>") && !strstr(r, "<message"));
    /* its connection breaks: the same request again (same rid), once */
    KT_CHECK_EQ(kl_bosh_conn_failed(&bosh, s1), 0);
    r = next_req(&s2);
    KT_CHECK(r && strstr(r, "rid='1003'"));
    KT_CHECK_EQ(s2, s1);
    /* close: a terminate body; its answer closes the engine cleanly */
    KT_CHECK_EQ(kl_client_close(&client), KL_OK);
    r = next_req(&s2);
    KT_CHECK(r && strstr(r, "type='terminate'") && strstr(r, "rid='1004'") && !strstr(r, "stream:stream"));
    KT_CHECK_EQ(respond(s1, "<body " NSB "/>"), 1);
    KT_CHECK_EQ(respond(s2, "<body " NSB " type='terminate'/>"), 1);
    KT_CHECK_EQ(drive(), 0);
    KT_CHECK(saw(KL_EV_CLOSED));
    KT_CHECK(kl_bosh_done(&bosh));
    KT_CHECK(next_req(NULL) == NULL);
}

static void test_retry_fails_twice(void)
{
    int s;
    login_prosody_path_at(0);
    KT_CHECK(next_req(&s) != NULL);
    KT_CHECK_EQ(kl_bosh_conn_failed(&bosh, s), 0);
    KT_CHECK(next_req(&s) != NULL);
    KT_CHECK_EQ(kl_bosh_conn_failed(&bosh, s), KL_ERR_BOSH_REQUEST_FAILED);
    KT_CHECK_EQ(kl_bosh_push(&bosh, &client), KL_ERR_BOSH_REQUEST_FAILED);
}

static void test_errors(void)
{
    int s;
    setup(0);
    KT_CHECK(next_req(&s) != NULL);
    KT_CHECK_EQ(respond_split(s, "404 Not Found", "<html>no</html>", 0), 1);
    KT_CHECK_EQ(drive(), KL_ERR_HTTP_STATUS);
    KT_CHECK_EQ(bosh.http_status, 404);
    KT_CHECK(next_req(NULL) == NULL);

    setup(0);
    KT_CHECK(next_req(&s) != NULL);
    KT_CHECK_EQ(respond(s, "<body " NSB " type='terminate' condition='host-unknown'/>"), 1);
    KT_CHECK_EQ(drive(), KL_ERR_BOSH_TERMINATE);
    KT_CHECK_STR(bosh.condition, "host-unknown");

    setup(0);
    KT_CHECK(next_req(&s) != NULL);
    KT_CHECK_EQ(respond(s, "<body " NSB " wait='60'/>"), 1); /* no sid */
    KT_CHECK_EQ(drive(), KL_ERR_BOSH_PROTOCOL);

    setup(0);
    KT_CHECK(next_req(&s) != NULL);
    KT_CHECK_EQ(respond(s, "<notbody/>"), 1);
    KT_CHECK_EQ(drive(), KL_ERR_BOSH_PROTOCOL);

    setup(0);
    KT_CHECK(next_req(&s) != NULL);
    KT_CHECK_EQ(respond(s, "<body " NSB " sid='a'><!-- x --></body>"), 1);
    KT_CHECK_EQ(drive(), KL_ERR_XML_COMMENT);

    /* a SASL failure inside the creation response: the engine's named error */
    setup(0);
    KT_CHECK(next_req(&s) != NULL);
    char body[1024];
    snprintf(body, sizeof body, "<body " NSB " xmlns:stream='http://etherx.jabber.org/streams' sid='x' requests='2'>%s<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
             "<not-authorized/></failure></body>", features_pre);
    KT_CHECK_EQ(respond(s, body), 1);
    drive();
    KT_CHECK(saw(KL_EV_ERROR));
    KT_CHECK_EQ(last_status, KL_ERR_AUTH);
    KT_CHECK_STR(last_cond, "not-authorized");

    /* an unbound prefix in a response: the tokenizer's named error */
    setup(0);
    KT_CHECK(next_req(&s) != NULL);
    snprintf(body, sizeof body, "<body " NSB " sid='x'>%s</body>", features_pre);
    KT_CHECK_EQ(respond(s, body), 1);
    KT_CHECK_EQ(drive(), KL_ERR_XML_NAMESPACE);
}

static void test_split_restart(void)
{
    int s, s1, s2;
    const char *r;
    char body[1024];
    setup(1);
    r = next_req(&s);
    KT_CHECK(r && strstr(r, "<auth ") && !strstr(r, "<iq ") && !strstr(r, "xmpp:restart"));
    snprintf(body, sizeof body, "<body " NSB " xmlns:stream='http://etherx.jabber.org/streams' sid='e1' "
             "requests='2' hold='1' wait='60'>%s</body>", features_pre);
    KT_CHECK_EQ(respond(s, body), 1);
    KT_CHECK_EQ(drive(), 0);
    /* the restart and the bind: two requests at once */
    r = next_req(&s1);
    KT_CHECK(r && strstr(r, "xmpp:restart='true'") && strstr(r, "rid='1001'") && !strstr(r, "<iq "));
    r = next_req(&s2);
    KT_CHECK(r && strstr(r, "<iq ") && strstr(r, "rid='1002'") && !strstr(r, "xmpp:restart"));
    KT_CHECK_EQ(bosh.round_trips, 2);
    snprintf(body, sizeof body, "<body " NSB " xmlns:stream='http://etherx.jabber.org/streams'>%s%s</body>",
             success, features_post);
    KT_CHECK_EQ(respond(s1, body), 1);
    KT_CHECK_EQ(drive(), 0);
    snprintf(body, sizeof body, "<body " NSB ">%s</body>", bind_result);
    KT_CHECK_EQ(respond(s2, body), 1);
    KT_CHECK_EQ(drive(), 0);
    KT_CHECK(saw(KL_EV_ONLINE));
}

/* The configuration's checks and defaults; the API's argument checks. */
static void test_init_and_args(void)
{
    kl_bosh_config_t bc;
    const uint8_t *p = (const uint8_t *)"x";
    size_t n = 7, used = 7;
    const char *r;
    memset(&bc, 0, sizeof bc);
    bc.host = "h";
    bc.path = "/b";
    bc.to = "d";
    KT_CHECK_EQ(kl_bosh_init(NULL, &bc), KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_init(&bosh, NULL), KL_ERR_ARG);
    bc.host = NULL;
    KT_CHECK_EQ(kl_bosh_init(&bosh, &bc), KL_ERR_ARG);
    bc.host = "h", bc.path = NULL;
    KT_CHECK_EQ(kl_bosh_init(&bosh, &bc), KL_ERR_ARG);
    bc.path = "b";
    KT_CHECK_EQ(kl_bosh_init(&bosh, &bc), KL_ERR_ARG);
    bc.path = "/b", bc.to = NULL;
    KT_CHECK_EQ(kl_bosh_init(&bosh, &bc), KL_ERR_ARG);
    bc.to = "";
    KT_CHECK_EQ(kl_bosh_init(&bosh, &bc), KL_ERR_ARG);
    /* rid is taken mod 2^31 and is never 0 */
    bc.to = "d", bc.rid = 0x80000000u;
    KT_CHECK_EQ(kl_bosh_init(&bosh, &bc), KL_OK);
    KT_CHECK_EQ(bosh.next_rid, 1);
    KT_CHECK_STR(bosh.cfg.lang, "en");
    KT_CHECK_EQ(bosh.cfg.wait, 60);
    KT_CHECK_EQ(bosh.cfg.hold, 1);
    /* before the engine wrote its stream header: nothing to send */
    KT_CHECK_EQ(kl_bosh_next_request(&bosh, &p, &n), -1);
    KT_CHECK(p == NULL && n == 0);
    /* the caller's lang, wait and hold go into the creation request */
    memset(&bc, 0, sizeof bc);
    bc.host = "h", bc.path = "/b", bc.to = "d", bc.lang = "fr", bc.wait = 30, bc.hold = 2, bc.rid = 5;
    setup_cfg(&bc);
    r = next_req(NULL);
    KT_CHECK(r && strstr(r, "POST /b HTTP/1.1\r\nHost: h\r\n") == r);
    KT_CHECK(r && strstr(r, "hold='2' rid='5' to='d' xml:lang='fr' ver='1.6' wait='30'"));
    /* arguments */
    KT_CHECK_EQ(kl_bosh_pull(NULL, &client), KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_pull(&bosh, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_next_request(NULL, &p, &n), KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_next_request(&bosh, NULL, &n), KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_next_request(&bosh, &p, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_response(NULL, 0, p, 1, &used), KL_ERR_ARG);
    KT_CHECK_EQ(used, 0);
    KT_CHECK_EQ(kl_bosh_response(&bosh, -1, p, 1, &used), KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_response(&bosh, KL_BOSH_SLOTS, p, 1, &used), KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_response(&bosh, 0, p, 1, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_conn_failed(NULL, 0), KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_conn_failed(&bosh, -1), KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_conn_failed(&bosh, KL_BOSH_SLOTS), KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_push(NULL, &client), KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_push(&bosh, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(bosh.error, 0);
}

/* rid grows by one per request and wraps from 2^31 - 1 to 1. */
static void test_rid_wrap(void)
{
    char body[2048];
    const char *r;
    int s;
    setup_with(0, "127.0.0.1:5280", "localhost", 0x7fffffffu);
    r = next_req(&s);
    KT_CHECK(r && strstr(r, "rid='2147483647'"));
    snprintf(body, sizeof body, "<body " NSB " xmlns:stream='http://etherx.jabber.org/streams' sid='w' "
             "requests='2'>%s%s%s%s</body>", features_pre, success, features_post, bind_result);
    KT_CHECK_EQ(respond(s, body), 1);
    KT_CHECK_EQ(drive(), 0);
    KT_CHECK(saw(KL_EV_ONLINE));
    r = next_req(&s);
    KT_CHECK(r && strstr(r, "rid='1' sid='w'"));
}

/* A request that cannot be built ends the session with the named error:
 * a Host with a space (the HTTP writer's KL_ERR_ARG), a head longer than
 * its room (KL_ERR_TOO_LARGE), a body past the request buffer. */
static void test_build_fails(void)
{
    static char big[2600];
    const uint8_t *p;
    size_t n;
    setup_with(0, "bad host", "localhost", 1000);
    KT_CHECK_EQ(kl_bosh_next_request(&bosh, &p, &n), -1);
    KT_CHECK_EQ(bosh.error, KL_ERR_ARG);
    KT_CHECK_EQ(kl_bosh_push(&bosh, &client), KL_ERR_ARG);
    KT_CHECK(kl_bosh_done(&bosh));
    KT_CHECK_EQ(kl_bosh_next_request(&bosh, &p, &n), -1);
    KT_CHECK_EQ(kl_bosh_pull(&bosh, &client), KL_ERR_ARG);

    memset(big, 'h', 400);
    big[400] = '\0';
    setup_with(0, big, "localhost", 1000);
    KT_CHECK_EQ(kl_bosh_next_request(&bosh, &p, &n), -1);
    KT_CHECK_EQ(bosh.error, KL_ERR_TOO_LARGE);

    memset(big, 'd', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    setup_with(0, "127.0.0.1:5280", big, 1000);
    KT_CHECK_EQ(kl_bosh_next_request(&bosh, &p, &n), -1);
    KT_CHECK_EQ(bosh.error, KL_ERR_BOSH_QUEUE_FULL);
    KT_CHECK_EQ(bosh.requests_sent, 0);
}

/* Write raw bytes as one stanza (the engine sends them as they are). */
static int send_raw(const char *xml)
{
    kl_xw_t w;
    int st = kl_stanza_begin(&client, &w);
    if (st != KL_OK)
        return st;
    kl_xw_raw(&w, (const uint8_t *)xml, strlen(xml));
    return kl_stanza_commit(&client, &w);
}

/* Logged in with the presence's long poll outstanding: returns its slot. */
static int online_polling(void)
{
    int s = -1;
    login_prosody_path_at(0);
    KT_CHECK(next_req(&s) != NULL);
    return s;
}

/* The output scanner: top-level elements get xmlns='jabber:client' unless
 * they declare a default namespace (outside a quoted value); CDATA,
 * comments and quotes of either kind are copied as they are. */
static void test_scanner(void)
{
    const char *r;
    online_polling();
    KT_CHECK_EQ(send_raw("<message to=\"a'b>\" a='x\"y'><body>hi</body></message>"
                         "<message\txmlns='jabber:client'/><message\nxmlns='jabber:client'/>"
                         "<message a=' xmlns=1' b=\" xmlns=2\"/>"
                         "<![CDATA[a]b]]c]>]]><!-- c --><iq><![CDATA[<x>]]><!-- d --></iq>"), KL_OK);
    r = next_req(NULL);
    KT_CHECK(r && strstr(r, "rid='1002'"));
    KT_CHECK(r && strstr(r, "'><message xmlns='jabber:client' to=\"a'b>\" a='x\"y'><body>hi</body></message>"
                            "<message\txmlns='jabber:client'/><message\nxmlns='jabber:client'/>"
                            "<message xmlns='jabber:client' a=' xmlns=1' b=\" xmlns=2\"/>"
                            "<![CDATA[a]b]]c]>]]><!-- c --><iq xmlns='jabber:client'><![CDATA[<x>]]><!-- d --></iq>"
                            "</body>"));
    KT_CHECK_EQ(bosh.depth, 0);
}

/* Markup the engine never writes (a tag or CDATA cut short, a second
 * restart before the first went out, an end tag with nothing open, which
 * would leave every later stanza without its xmlns): KL_ERR_BOSH_PROTOCOL,
 * sticky. */
static void test_scanner_refuses(void)
{
    static const char *bad[] = {"<message", "<message a='>'", "<![CDATA[x]]", "<![CDATA[x]>",
                                "<stream:stream><stream:stream>", "</x>", "<message/></message><iq/>"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        online_polling();
        KT_CHECK_EQ(send_raw(bad[i]), KL_OK);
        KT_CHECK_EQ(kl_bosh_pull(&bosh, &client), KL_ERR_BOSH_PROTOCOL);
        KT_CHECK(kl_bosh_done(&bosh));
        KT_CHECK_EQ(kl_bosh_pull(&bosh, &client), KL_ERR_BOSH_PROTOCOL);
    }
}

/* A restart alone (nothing else queued) is reason enough for a request:
 * it carries to, xml:lang and xmpp:restart. */
static void test_restart_alone(void)
{
    const char *r;
    online_polling();
    KT_CHECK_EQ(send_raw("<stream:stream>"), KL_OK);
    r = next_req(NULL);
    KT_CHECK(r && strstr(r, "<body rid='1002' sid='s1d' to='localhost' xml:lang='en' xmpp:restart='true' " NSB
                            " xmlns:xmpp='urn:xmpp:xbosh'/>"));
    KT_CHECK_EQ(bosh.restarts_sent, 2);
}

/* A restart with a long 'to' and a full queue does not fit the request:
 * KL_ERR_BOSH_QUEUE_FULL, and no request. */
static void test_restart_too_large(void)
{
    static char to[1201], msg[1001];
    char body[4096];
    const char *r;
    int s;
    memset(to, 'd', sizeof to - 1);
    memset(msg, 'm', sizeof msg - 1);
    setup_with(0, "127.0.0.1:5280", to, 1000);
    r = next_req(&s);
    KT_CHECK(r != NULL);
    snprintf(body, sizeof body, "<body " NSB " xmlns:stream='http://etherx.jabber.org/streams' sid='s1d' "
             "requests='2'>%s%s%s%s</body>", features_pre, success, features_post, bind_result);
    KT_CHECK_EQ(respond(s, body), 1);
    KT_CHECK_EQ(drive(), 0);
    KT_CHECK(saw(KL_EV_ONLINE));
    KT_CHECK_EQ(send_raw("<stream:stream>"), KL_OK);
    KT_CHECK_EQ(kl_send_message(&client, "bob@localhost", "chat", msg), KL_OK);
    KT_CHECK(next_req(&s) == NULL);
    KT_CHECK_EQ(s, -1);
    KT_CHECK_EQ(bosh.error, KL_ERR_BOSH_QUEUE_FULL);
}

/* Output that does not fit behind what is queued waits in the engine. */
static void test_queue_waits(void)
{
    static char msg[1001];
    size_t olen, q1;
    const char *r;
    memset(msg, 'm', sizeof msg - 1);
    online_polling();
    KT_CHECK_EQ(kl_send_message(&client, "bob@localhost", "chat", msg), KL_OK);
    KT_CHECK_EQ(kl_bosh_pull(&bosh, &client), KL_OK);
    q1 = bosh.q_len;
    KT_CHECK(q1 > 1000);
    (void)kl_engine_output(&client, &olen);
    KT_CHECK_EQ(olen, 0);
    msg[0] = 'n';
    KT_CHECK_EQ(kl_send_message(&client, "bob@localhost", "chat", msg), KL_OK);
    KT_CHECK_EQ(kl_bosh_pull(&bosh, &client), KL_OK);
    KT_CHECK_EQ(bosh.q_len, q1);
    (void)kl_engine_output(&client, &olen);
    KT_CHECK_EQ(olen, q1 - strlen(" xmlns='jabber:client'"));
    KT_CHECK_EQ(bosh.error, 0);
    /* the first goes; then the second is pulled */
    r = next_req(NULL);
    KT_CHECK(r && strstr(r, "<body>mmm") && !strstr(r, "<body>nmm"));
    KT_CHECK_EQ(bosh.q_len, 0);
    KT_CHECK_EQ(kl_bosh_pull(&bosh, &client), KL_OK);
    KT_CHECK_EQ(bosh.q_len, q1);
    (void)kl_engine_output(&client, &olen);
    KT_CHECK_EQ(olen, 0);
}

/* Output after the terminate is dropped; a stream end is the last thing taken. */
static void test_after_terminate(void)
{
    const char *r;
    size_t olen;
    online_polling();
    KT_CHECK_EQ(send_raw("<message to='a'/></stream:stream><message to='b'/>"), KL_OK);
    KT_CHECK_EQ(kl_bosh_pull(&bosh, &client), KL_OK);
    KT_CHECK_EQ(bosh.q_terminate, 1);
    KT_CHECK_EQ(kl_send_message(&client, "bob@localhost", "chat", "late"), KL_OK);
    KT_CHECK_EQ(kl_bosh_pull(&bosh, &client), KL_OK);
    (void)kl_engine_output(&client, &olen);
    KT_CHECK_EQ(olen, 0);
    r = next_req(NULL);
    KT_CHECK(r && strstr(r, "type='terminate' " NSB "><message xmlns='jabber:client' to='a'/></body>"));
    KT_CHECK(r && !strstr(r, "late") && !strstr(r, "to='b'"));
    KT_CHECK_EQ(bosh.q_terminate, 0);
    /* the terminate went out: still nothing more is taken */
    KT_CHECK_EQ(kl_send_message(&client, "bob@localhost", "chat", "later"), KL_OK);
    KT_CHECK_EQ(kl_bosh_pull(&bosh, &client), KL_OK);
    (void)kl_engine_output(&client, &olen);
    KT_CHECK_EQ(olen, 0);
    KT_CHECK_EQ(bosh.q_len, 0);
    KT_CHECK(next_req(NULL) == NULL);
}

/* One flight that grows past the queue once each top-level element gets
 * its xmlns: KL_ERR_BOSH_QUEUE_FULL (it could never be taken). */
static void test_flight_too_large(void)
{
    static char many[401];
    size_t olen;
    for (size_t i = 0; i + 4 <= 400; i += 4)
        memcpy(many + i, "<a/>", 4);
    online_polling();
    KT_CHECK_EQ(send_raw(many), KL_OK);
    KT_CHECK_EQ(kl_bosh_pull(&bosh, &client), KL_ERR_BOSH_QUEUE_FULL);
    KT_CHECK_EQ(bosh.q_len, 0);
    (void)kl_engine_output(&client, &olen);
    KT_CHECK_EQ(olen, 400);
    KT_CHECK(kl_bosh_done(&bosh));
}

/* split_restart 1, a restart last in the queue and then the stream's end:
 * what precedes the restart goes first, without the terminate; then the
 * restart body carries it. */
static void test_split_restart_then_terminate(void)
{
    int s, s1, s2;
    const char *r;
    char body[1024];
    setup(1);
    KT_CHECK(next_req(&s) != NULL);
    snprintf(body, sizeof body, "<body " NSB " xmlns:stream='http://etherx.jabber.org/streams' sid='e1' "
             "requests='2' hold='1' wait='60'>%s</body>", features_pre);
    KT_CHECK_EQ(respond(s, body), 1);
    KT_CHECK_EQ(drive(), 0);
    KT_CHECK(next_req(&s1) != NULL);
    KT_CHECK(next_req(&s2) != NULL);
    snprintf(body, sizeof body, "<body " NSB " xmlns:stream='http://etherx.jabber.org/streams'>%s%s</body>",
             success, features_post);
    KT_CHECK_EQ(respond(s1, body), 1);
    KT_CHECK_EQ(drive(), 0);
    snprintf(body, sizeof body, "<body " NSB ">%s</body>", bind_result);
    KT_CHECK_EQ(respond(s2, body), 1);
    KT_CHECK_EQ(drive(), 0);
    KT_CHECK(saw(KL_EV_ONLINE));
    KT_CHECK_EQ(send_raw("<message to='m'/><stream:stream>"), KL_OK);
    KT_CHECK_EQ(kl_client_close(&client), KL_OK);
    r = next_req(&s1);
    KT_CHECK(r && strstr(r, "<message xmlns='jabber:client' to='m'/></body>"));
    KT_CHECK(r && !strstr(r, "type='terminate'") && !strstr(r, "xmpp:restart"));
    r = next_req(&s2);
    KT_CHECK(r && strstr(r, "xmpp:restart='true' type='terminate' " NSB " xmlns:xmpp='urn:xmpp:xbosh'/>"));
    KT_CHECK_EQ(bosh.q_len, 0);
}

/* Closed before the session was created: the creation request carries the
 * restart and the terminate (split_restart 0); its answer ends the session
 * without a </stream:stream> for an engine that never saw a header. With
 * split_restart 1 the terminate waits for the rest of the queue. */
static void test_close_before_creation(void)
{
    const char *r;
    int s;
    setup(0);
    KT_CHECK_EQ(kl_client_close(&client), KL_OK);
    r = next_req(&s);
    KT_CHECK(r && strstr(r, "xmpp:restart='true' type='terminate'"));
    KT_CHECK(r && strstr(r, "<auth ") && strstr(r, "<iq "));
    KT_CHECK_EQ(respond(s, "<body " NSB " sid='t1' type='terminate'/>"), 1);
    KT_CHECK_EQ(drive(), 0);
    KT_CHECK(kl_bosh_done(&bosh));
    KT_CHECK_EQ(bosh.error, 0);
    KT_CHECK_STR(bosh.sid, "t1");
    KT_CHECK(next_req(NULL) == NULL);

    setup(1);
    KT_CHECK_EQ(kl_client_close(&client), KL_OK);
    r = next_req(&s);
    KT_CHECK(r && strstr(r, "<auth ") && !strstr(r, "<iq ") && !strstr(r, "type='terminate'"));
    KT_CHECK_EQ(bosh.q_terminate, 1);
    KT_CHECK_EQ(bosh.q_restart, 1);
}

/* The creation response's attributes: decimal, 1 to 9 digits, or
 * KL_ERR_BOSH_PROTOCOL; type='error' without a condition. */
static void test_creation_attrs(void)
{
    static const char *bad[] = {"wait=''", "hold='x'", "inactivity='1234567890'", "requests='-1'", "wait='6 '"};
    char body[256];
    int s;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setup(0);
        KT_CHECK(next_req(&s) != NULL);
        snprintf(body, sizeof body, "<body " NSB " sid='a' %s/>", bad[i]);
        KT_CHECK_EQ(respond(s, body), 1);
        KT_CHECK_EQ(drive(), KL_ERR_BOSH_PROTOCOL);
    }
    /* no 'requests': hold + 1 (the server's hold, else ours) */
    setup(0);
    KT_CHECK(next_req(&s) != NULL);
    KT_CHECK_EQ(respond(s, "<body " NSB " sid='a' hold='3' wait='123456789' inactivity='0'/>"), 1);
    KT_CHECK_EQ(drive(), 0);
    KT_CHECK_EQ(bosh.requests, 4);
    KT_CHECK_EQ(bosh.wait, 123456789);
    setup(0);
    KT_CHECK(next_req(&s) != NULL);
    KT_CHECK_EQ(respond(s, "<body " NSB " sid='a'/>"), 1);
    KT_CHECK_EQ(drive(), 0);
    KT_CHECK_EQ(bosh.requests, 2);

    setup(0);
    KT_CHECK(next_req(&s) != NULL);
    KT_CHECK_EQ(respond(s, "<body " NSB " type='error'/>"), 1);
    KT_CHECK_EQ(drive(), KL_ERR_BOSH_TERMINATE);
    KT_CHECK_STR(bosh.condition, "undefined-condition");
}

/* A caller that pushes again without polling: the engine's receive buffer
 * fills, the synthetic header goes in as far as it fits, and the rest
 * waits (push 0) instead of being dropped or overrun. */
static void test_push_without_poll(void)
{
    static char body[4000];
    int s, l;
    setup(0);
    KT_CHECK(next_req(&s) != NULL);
    l = snprintf(body, sizeof body, "<body " NSB " sid='p'><x>");
    memset(body + l, 'a', 2950);
    l += 2950;
    snprintf(body + l, sizeof body - (size_t)l, "</x><y/></body>");
    KT_CHECK_EQ(respond(s, body), 1);
    KT_CHECK_EQ(kl_bosh_push(&bosh, &client), 1); /* header + <x> */
    KT_CHECK_EQ(bosh.hdr_fed, 0xFF);
    KT_CHECK_EQ(bosh.in_elem, 0);
    KT_CHECK_EQ(kl_bosh_push(&bosh, &client), 1); /* part of the header again, nothing of <y/> */
    KT_CHECK(bosh.hdr_fed > 0 && bosh.hdr_fed < 0xFF);
    KT_CHECK_EQ(bosh.in_elem, 1);
    KT_CHECK_EQ(bosh.el_fed, 0);
    KT_CHECK_EQ(kl_bosh_push(&bosh, &client), 0); /* full */
    KT_CHECK_EQ(bosh.el_fed, 0);
}

int main(void)
{
    KT_RUN(test_login_prosody_path);
    KT_RUN(test_session);
    KT_RUN(test_retry_fails_twice);
    KT_RUN(test_errors);
    KT_RUN(test_split_restart);
    KT_RUN(test_init_and_args);
    KT_RUN(test_rid_wrap);
    KT_RUN(test_build_fails);
    KT_RUN(test_scanner);
    KT_RUN(test_scanner_refuses);
    KT_RUN(test_restart_alone);
    KT_RUN(test_restart_too_large);
    KT_RUN(test_queue_waits);
    KT_RUN(test_after_terminate);
    KT_RUN(test_close_before_creation);
    KT_RUN(test_creation_attrs);
    KT_RUN(test_push_without_poll);
    KT_RUN(test_flight_too_large);
    KT_RUN(test_split_restart_then_terminate);
    return kt_summary("bosh");
}
