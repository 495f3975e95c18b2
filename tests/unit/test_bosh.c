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

static void setup(int split)
{
    kl_client_config_t cfg;
    kl_bosh_config_t bc;
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
    memset(&bc, 0, sizeof bc);
    bc.host = "127.0.0.1:5280";
    bc.path = "/http-bind";
    bc.to = "localhost";
    bc.rid = 1000;
    bc.split_restart = (uint8_t)split;
    KT_CHECK_EQ(kl_bosh_init(&bosh, &bc), KL_OK);
    KT_CHECK_EQ(kl_client_connect(&client, 0, KL_CHANNEL_TLS_VERIFIED), KL_OK);
    KT_CHECK_EQ(kl_bosh_pull(&bosh, &client), KL_OK);
}

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

int main(void)
{
    KT_RUN(test_login_prosody_path);
    KT_RUN(test_session);
    KT_RUN(test_retry_fails_twice);
    KT_RUN(test_errors);
    KT_RUN(test_split_restart);
    return kt_summary("bosh");
}
