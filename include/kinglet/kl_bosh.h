/* kinglet — BOSH (XEP-0124 / XEP-0206): the HTTP framing of the same
 * engine. Sans-I/O, bounded, no allocation.
 *
 * The engine runs as for direct TLS (cfg.direct_tls = 1; over plain HTTP
 * also cfg.allow_plaintext = 1, which the application must choose), with
 * cfg.pipelining = KL_PIPELINING_FULL and cfg.force_full = 1, so
 * kl_client_connect() writes, in one flight, the stream header, PLAIN
 * <auth/>, the restart header and the bind request. kl_bosh_t turns that
 * output into BOSH requests and the HTTP responses back into engine input:
 *
 *   kl_bosh_init(&b, &bcfg);
 *   loop:
 *     kl_bosh_pull(&b, &c);                 // engine output -> queue (headers stripped)
 *     while ((i = kl_bosh_next_request(&b, &req, &n)) >= 0)
 *         send req[0..n) on an idle HTTP connection, remember slot i for it;
 *     bytes of the response on slot i's connection: kl_bosh_response(&b, i, p, n, &used);
 *     connection of slot i broke: kl_bosh_conn_failed(&b, i);   // resent once, same rid
 *     r = kl_bosh_push(&b, &c);             // one element (or part) -> kl_engine_input
 *     poll the engine until KL_EV_NONE after each push > 0.
 *
 * Output: each `<?xml?><stream:stream …>` header is dropped; the first one
 * becomes the session creation request (to, xml:lang, ver='1.6',
 * xmpp:version='1.0', wait, hold, rid); a later one makes the body carrying
 * it xmpp:restart='true'. `</stream:stream>` becomes type='terminate'.
 *   split_restart 0 (Prosody): everything queued goes into the next body,
 *     so the creation body holds <auth/> + restart + bind: one HTTP round
 *     trip to a bound session.
 *   split_restart 1 (ejabberd 23.01, which drops the restart and bind in
 *     the creation body): what precedes the restart goes in the creation
 *     body; then the restart body (empty) and the rest (the bind) go as
 *     two requests outstanding at once.
 *
 * Input: every response body is parsed with kl_xml (root <body/>): the
 * creation response's sid/wait/hold/requests/inactivity are read; each
 * child element's exact bytes go to the engine, preceded by a synthetic
 * `<stream:stream xmlns='jabber:client' …>` whenever
 * kl_engine_awaiting_header() (at the start and after <success/>).
 * Responses are processed in rid order. type='terminate' (or 'error') that
 * we did not ask for: KL_ERR_BOSH_TERMINATE, condition in b->condition.
 * Status other than 200: KL_ERR_HTTP_STATUS, code in b->http_status.
 * <stream:features/> arriving once the engine is online (Prosody sends the
 * restarted stream's features in the response after the bind result) is
 * fed like any element: the engine records it in the hints.
 * After our terminate is answered, `</stream:stream>` is fed so that the
 * engine reports KL_EV_CLOSED.
 *
 * Requests: rid starts at cfg.rid (random, from the port) and grows by one
 * per request; at most min(requests, KL_BOSH_SLOTS) outstanding; an empty
 * body long-polls when nothing is queued and nothing is outstanding; a
 * request whose connection failed is sent again with the same rid once.
 */
#ifndef KINGLET_KL_BOSH_H
#define KINGLET_KL_BOSH_H

#include <stddef.h>
#include <stdint.h>

#include "kinglet.h"
#include "kl_http.h"

#ifndef KL_BOSH_QUEUE_MAX
#define KL_BOSH_QUEUE_MAX 2048 /* payload waiting for a request (>= KL_TX_BUF_SIZE) */
#endif
#ifndef KL_BOSH_REQ_MAX
#define KL_BOSH_REQ_MAX (KL_BOSH_QUEUE_MAX + 640) /* one HTTP request: head + <body> + payload */
#endif
#ifndef KL_BOSH_BODY_MAX
#define KL_BOSH_BODY_MAX 4096 /* one HTTP response body */
#endif
#define KL_BOSH_SLOTS 2         /* requests outstanding at most (two HTTP connections) */
#define KL_BOSH_SID_MAX 64
#define KL_BOSH_COND_MAX 40

#if KL_BOSH_QUEUE_MAX < KL_TX_BUF_SIZE
#error "KL_BOSH_QUEUE_MAX must hold a whole engine transmit buffer"
#endif

typedef struct kl_bosh_config {
    const char *host;      /* HTTP Host header ("example.org" or "example.org:5280"), borrowed */
    const char *path;      /* "/http-bind", borrowed */
    const char *to;        /* the XMPP domain, borrowed */
    const char *lang;      /* NULL: "en" */
    uint32_t wait;         /* seconds the server may hold a request; 0: 60 */
    uint32_t hold;         /* 0: 1 */
    uint32_t rid;          /* first rid: random, from the port (taken mod 2^31, never 0) */
    uint8_t split_restart; /* see above */
} kl_bosh_config_t;

enum { KL_BOSH_SLOT_FREE = 0, KL_BOSH_SLOT_READY, KL_BOSH_SLOT_SENT, KL_BOSH_SLOT_DONE };

typedef struct kl_bosh_slot {
    uint8_t state;
    uint8_t tries;       /* times handed out */
    uint8_t terminate;   /* carries type='terminate' */
    uint8_t creation;    /* the session creation request */
    uint8_t restart;     /* carries xmpp:restart='true' */
    uint32_t rid;
    size_t req_len;
    kl_http_resp_t resp;
    uint8_t req[KL_BOSH_REQ_MAX];
    uint8_t body[KL_BOSH_BODY_MAX];
} kl_bosh_slot_t;

typedef struct kl_bosh {
    kl_bosh_config_t cfg;
    uint8_t state;          /* internal */
    uint8_t got_header;     /* the engine's first stream header was seen */
    uint8_t q_restart;      /* a restart header is queued at q_restart_at */
    uint8_t q_terminate;    /* </stream:stream> queued */
    uint8_t waiting;        /* a request went out since the last response */
    uint8_t close_owed;     /* feed </stream:stream> once the current body is done */
    uint8_t hdr_fed;        /* bytes of the synthetic header given to the engine so far */
    uint8_t in_elem;        /* an element of the current body is being fed */
    int depth;              /* of the engine output scanner */
    int error;              /* sticky */
    int http_status;        /* with KL_ERR_HTTP_STATUS */
    uint32_t next_rid;
    uint32_t wait, hold, requests, inactivity; /* as the connection manager set them */
    uint32_t round_trips;   /* request rounds: a request sent after a response came back */
    uint32_t requests_sent; /* HTTP requests handed out (retries included) */
    uint32_t restarts_sent; /* bodies with xmpp:restart='true' sent */
    int cur;                /* slot whose body is being fed, -1 */
    size_t pos;             /* parse position in the current body */
    size_t el_start, el_end, el_fed;
    size_t q_len, q_restart_at;
    char sid[KL_BOSH_SID_MAX];
    char condition[KL_BOSH_COND_MAX];
    kl_xml_t x;             /* tokenizer of the current body */
    uint8_t q[KL_BOSH_QUEUE_MAX];
    kl_bosh_slot_t slot[KL_BOSH_SLOTS];
} kl_bosh_t;

/* KL_ERR_ARG for a missing host/path/to. */
int kl_bosh_init(kl_bosh_t *b, const kl_bosh_config_t *cfg);

/* Move the engine's output into the queue (whole, or not at all while it
 * does not fit yet). KL_OK, or a sticky error. */
int kl_bosh_pull(kl_bosh_t *b, kl_client_t *c);

/* The next request to send: returns its slot (>= 0) and the HTTP request
 * bytes, or -1 if none now, also after a (sticky) error: kl_bosh_pull and
 * kl_bosh_push report it. KL_ERR_ARG for a NULL argument. */
int kl_bosh_next_request(kl_bosh_t *b, const uint8_t **req, size_t *len);

/* Response bytes for slot i. *used: bytes that belong to this response.
 * Returns 1 when it is complete, 0 for more, < 0 for an error. */
int kl_bosh_response(kl_bosh_t *b, int slot, const uint8_t *data, size_t len, size_t *used);

/* The connection of slot i ended. If its response was close-delimited this
 * completes it (returns 1); otherwise the request is queued again with the
 * same rid (returns 0) unless it was already tried twice
 * (KL_ERR_BOSH_REQUEST_FAILED). */
int kl_bosh_conn_failed(kl_bosh_t *b, int slot);

/* Feed the engine: returns 1 if bytes went to the engine (poll it until
 * KL_EV_NONE, drain its output, then call again), 0 if there is nothing to
 * feed now, < 0 for an error (sticky; see condition / http_status). Feeds
 * nothing while the engine has output not yet pulled. */
int kl_bosh_push(kl_bosh_t *b, kl_client_t *c);

/* Requests outstanding (sent, response not yet processed). */
int kl_bosh_outstanding(const kl_bosh_t *b);

/* 1 once the session ended (our terminate answered, or an error). */
int kl_bosh_done(const kl_bosh_t *b);

#endif
