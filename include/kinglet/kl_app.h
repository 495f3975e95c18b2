/* kinglet — the application side: handlers, replies, stanzas of any size,
 * the device's own disco identity and XEP-0115 caps, presence
 * subscriptions, roster pushes, PubSub/PEP, MUC and client state
 * indication (KL_ENABLE_APP; PubSub, MUC and CSI each have their own
 * switch under it).
 *
 * The engine hands stanzas out as events, whole (KL_EV_STANZA,
 * KL_EV_IQ_RESULT) or, when one is larger than the receive buffer, as
 * KL_EV_STANZA_BEGIN, KL_EV_TOKEN… and KL_EV_STANZA_END (or
 * KL_EV_STANZA_DROPPED). kl_app_t turns both into one sequence of calls to
 * the handlers the application registered, so a handler written once
 * reads a message of 20 bytes and one of 50 KB alike:
 *
 *   static kl_app_t app;                          // static: fixed RAM
 *   kl_app_init(&app, &client, &app_cfg);         // after kl_client_init
 *   kl_app_on(&app, &(kl_handler_t){KL_KIND_MESSAGE, NULL, NULL, NULL, on_msg, NULL});
 *   loop: while (kl_session_step(&s, now, &ev) > 0)
 *             if (!kl_app_event(&app, &ev)) other(&ev);   // online, errors…
 *
 * For each stanza, every matching handler is called with in->part:
 *   KL_PART_STANZA  once, first: kind, type, from, to, id and the payload
 *                   child are known (decoded; they stay valid up to and
 *                   including KL_PART_END); in->stanza is the whole view
 *                   when the stanza fit in the receive buffer, else NULL.
 *                   Return KL_HANDLED to claim the stanza, KL_PASS not to.
 *   KL_PART_BODY    messages: the <body/> text, decoded, in pieces
 *                   (in->text); the last call for a body has in->last 1
 *                   and may have an empty text. A message without a body
 *                   has none.
 *   KL_PART_TOKEN   every token inside the stanza (its children, depth 3
 *                   and deeper; in->token), body included.
 *   KL_PART_END     the stanza is over: in->status KL_OK, or why it was
 *                   cut short (a bound; what came so far was delivered),
 *                   in->handled whether any handler claimed it.
 * Handlers may send (replies included) from any part. An IQ get or set
 * that no handler claimed is answered service-unavailable after its
 * KL_PART_END (policy-violation if it was cut short), as RFC 6120 8.4
 * asks. Nothing is dropped silently: a stanza the engine had to skip
 * before its start tag was known stays a KL_EV_STANZA_DROPPED event that
 * kl_app_event() returns 0 for.
 *
 * Matching: a handler names the kinds (a mask), the type attribute
 * (NULL: any; "" matches a stanza without one) and the payload child by
 * local name and namespace (NULL: any). The payload child is the first
 * child element in another namespace than the stanza's (message: not
 * body, subject, thread) or, if none, the first child; for a stanza larger
 * than the receive buffer it is its first child element.
 *
 * Single thread: every call here runs on the thread that drives the
 * client (see kl_post.h for other tasks and ISRs).
 */
#ifndef KINGLET_KL_APP_H
#define KINGLET_KL_APP_H

#include "kinglet.h"

#if KL_ENABLE_APP

typedef enum kl_kind {
    KL_KIND_MESSAGE = 1,
    KL_KIND_PRESENCE = 2,
    KL_KIND_IQ = 4,
    KL_KIND_ANY = 7
} kl_kind_t;

typedef enum kl_part {
    KL_PART_STANZA = 1,
    KL_PART_BODY = 2,
    KL_PART_TOKEN = 3,
    KL_PART_END = 4
} kl_part_t;

#define KL_PASS 0
#define KL_HANDLED 1

/* What a handler sees. Strings are NUL-terminated, decoded, "" when
 * absent. A from (or to) longer than KL_APP_ADDR_MAX is "" and in->flags
 * has KL_IN_ADDR_TOO_LONG: such a stanza cannot be answered. */
#define KL_IN_ADDR_TOO_LONG 1u
#define KL_IN_STREAMED 2u   /* larger than the receive buffer: no in->stanza */
typedef struct kl_in {
    kl_part_t part;
    kl_kind_t kind;
    const char *type, *from, *to, *id;
    const char *child, *child_ns;  /* the payload child (local name, namespace) */
    const kl_stanza_t *stanza;     /* KL_PART_STANZA..END of a stanza that fit; else NULL */
    uint16_t iq_id;                /* an answer to kl_send_iq(): its handle; else 0 */
    uint8_t flags;
    uint8_t last;                  /* KL_PART_BODY: the body ends with this piece */
    uint8_t handled;               /* KL_PART_END: a handler returned KL_HANDLED */
    kl_slice_t text;               /* KL_PART_BODY */
    const kl_xml_token_t *token;   /* KL_PART_TOKEN */
    int status;                    /* KL_PART_END */
} kl_in_t;

typedef struct kl_app kl_app_t;
typedef int (*kl_handler_fn)(void *ctx, kl_app_t *app, const kl_in_t *in);

typedef struct kl_handler {
    uint8_t kinds;          /* KL_KIND_* mask */
    const char *type;       /* NULL: any */
    const char *child;      /* NULL: any */
    const char *ns;         /* NULL: any */
    kl_handler_fn fn;
    void *ctx;
} kl_handler_t;

/* Presence subscription requests (RFC 6121 3.1): who is approved. */
typedef enum kl_sub_policy {
    KL_SUB_ROSTER = 0,  /* approve a JID that is in the roster (looked up with one roster get
                           per request, streamed: any roster size), refuse others */
    KL_SUB_ANYONE = 1,  /* approve every request */
    KL_SUB_NOBODY = 2,  /* refuse every request */
    KL_SUB_ASK = 3      /* hand it to the handlers (kind presence, type "subscribe"); a
                           handler answers with kl_sub_answer(); unanswered requests stay
                           pending on the server, which delivers them again at login */
} kl_sub_policy_t;

/* The device's disco identity (XEP-0030) and features; the strings are
 * borrowed and must outlive the app. Features the engine implements are
 * added by it (disco#info, ping, caps). */
typedef struct kl_app_config {
    const char *category;        /* NULL: "client" */
    const char *type;            /* NULL: "bot" */
    const char *name;            /* NULL: "kinglet" */
    const char *const *features; /* extra feature vars (e.g. "urn:example:t+notify") */
    size_t nfeatures;
    const char *caps_node;       /* XEP-0115 node; NULL: "https://kinglet.dev/caps" */
    kl_sub_policy_t subscriptions;
    /* Told of every answer the policy (or kl_sub_answer) sent: the bare
     * JID and 1 approved / 0 refused. NULL: not told. */
    void (*on_subscription)(void *ctx, const char *bare_jid, int approved);
    void *ctx;
} kl_app_config_t;

/* Counters of the application layer. */
typedef struct kl_app_stats {
    uint32_t stanzas;            /* dispatched */
    uint32_t unhandled_iq;       /* IQ get/set answered service-unavailable / policy-violation */
    uint32_t cut_short;          /* stanzas that ended with a bound (KL_PART_END status < 0) */
    uint32_t sub_approved, sub_refused, sub_asked, sub_unanswered;
    uint32_t roster_pushes;      /* acknowledged */
    uint32_t roster_pushes_refused; /* from anyone but the server: answered service-unavailable */
} kl_app_stats_t;

#ifndef KL_APP_MAX_HANDLERS
#define KL_APP_MAX_HANDLERS 8
#endif
#if KL_APP_MAX_HANDLERS > 32
#error "KL_APP_MAX_HANDLERS must be at most 32"
#endif
#ifndef KL_APP_ADDR_MAX
#define KL_APP_ADDR_MAX 256      /* a decoded from / to, with its NUL */
#endif
#ifndef KL_APP_ID_MAX
#define KL_APP_ID_MAX 72         /* a decoded id (longer ones cannot be answered) */
#endif
#ifndef KL_APP_NAME_MAX
#define KL_APP_NAME_MAX 64       /* the payload child's local name / namespace, type */
#endif
#ifndef KL_APP_CHUNK
#define KL_APP_CHUNK 128         /* decoding buffer for body text with references */
#endif
#ifndef KL_APP_SUB_PENDING
#define KL_APP_SUB_PENDING 2     /* KL_SUB_ROSTER: requests looked up at once */
#endif

/* Private; only sizeof() is public. */
struct kl_app {
    kl_client_t *KL_PRIVATE(c);
    kl_app_config_t KL_PRIVATE(cfg);
    kl_handler_t KL_PRIVATE(h)[KL_APP_MAX_HANDLERS];
    uint8_t KL_PRIVATE(nh);
    char KL_PRIVATE(ver)[32];              /* our caps ver (base64 SHA-1), "" if not computed */
    kl_app_stats_t KL_PRIVATE(stats);
    /* the stanza being dispatched */
    uint8_t KL_PRIVATE(active);            /* 1 between KL_PART_STANZA and KL_PART_END */
    uint8_t KL_PRIVATE(deferred);          /* streamed: dispatch waits for the first child */
    uint8_t KL_PRIVATE(in_body);
    uint8_t KL_PRIVATE(handled);
    uint8_t KL_PRIVATE(builtin);           /* one of the built-in roles below */
    uint8_t KL_PRIVATE(sub_slot);
    uint8_t KL_PRIVATE(claimed);           /* the last stanza was claimed (handler or built-in) */
    uint8_t KL_PRIVATE(had_from);          /* the stanza had a from attribute */
    uint16_t KL_PRIVATE(disco_len);        /* our disco#info payload, longest form */
    uint16_t KL_PRIVATE(ended_iq);         /* kl_app_ended_iq() */
    uint32_t KL_PRIVATE(mask);             /* handlers that matched */
    kl_in_t KL_PRIVATE(in);
    char KL_PRIVATE(from)[KL_APP_ADDR_MAX];
    char KL_PRIVATE(to)[KL_APP_ADDR_MAX];
    char KL_PRIVATE(id)[KL_APP_ID_MAX];
    char KL_PRIVATE(type)[16];
    char KL_PRIVATE(child)[KL_APP_NAME_MAX];
    char KL_PRIVATE(child_ns)[KL_APP_NAME_MAX];
    uint8_t KL_PRIVATE(chunk)[KL_APP_CHUNK];
    char KL_PRIVATE(roster_ver)[KL_CACHE_ROSTER_VER_MAX]; /* a streamed roster result's, kept till its end */
    uint8_t KL_PRIVATE(roster_ver_set);
    /* KL_SUB_ROSTER: requests being looked up */
    struct {
        uint16_t iq;                       /* the roster get's handle, 0: free */
        uint8_t found;
        char jid[KL_JID_MAX];
    } KL_PRIVATE(sub)[KL_APP_SUB_PENDING];
};

/* Bind the app layer to a client (after kl_client_init, before connecting;
 * again after each kl_client_init). IQ get/set requests then reach the
 * handlers (cfg.deliver_iq is set). cfg may be NULL (defaults); it is
 * copied, its strings borrowed. KL_ERR_ARG for a NULL app/client, a
 * feature, identity or node string with a quote, '<' or '&';
 * KL_ERR_TOO_LARGE when the disco#info answer (identity and features) with
 * its addresses would not fit the transmit buffer (the engine keeps that
 * much free before it reads a request, so that it can always answer). On
 * an error the client is left as it was (not attached). */
int kl_app_init(kl_app_t *app, kl_client_t *c, const kl_app_config_t *cfg);

/* kl_client_init() forgets the app layer: after calling it again (a new
 * configuration), attach the same app (its handlers stay). */
int kl_app_attach(kl_app_t *app, kl_client_t *c);

/* Register a handler (copied). KL_ERR_HANDLERS_FULL when the table
 * (KL_APP_MAX_HANDLERS) is full, KL_ERR_ARG without fn. Handlers are
 * called in registration order. */
int kl_app_on(kl_app_t *app, const kl_handler_t *h);

/* Feed one event from kl_engine_poll() / kl_session_step(). Returns 1 when
 * it was a stanza event the app layer consumed (KL_EV_STANZA,
 * KL_EV_IQ_RESULT, KL_EV_STANZA_BEGIN, KL_EV_TOKEN, KL_EV_STANZA_END, a
 * KL_EV_STANZA_DROPPED that ends a streamed stanza), 0 for every other
 * event (the application handles it), including a KL_EV_STANZA_DROPPED
 * that no KL_EV_STANZA_BEGIN announced, and an IQ result whose handle the
 * app layer does not own and no handler claimed (so the program that sent
 * the request still sees its KL_EV_IQ_RESULT). An answer larger than the
 * receive buffer that no handler claimed: 0 for its KL_EV_STANZA_END (or
 * KL_EV_STANZA_DROPPED), with its handle in kl_app_ended_iq() (its content
 * went to the handlers only). A new stream (KL_EV_ONLINE, KL_EV_RESUMED)
 * or a lost one ends a stanza still open for the handlers (status < 0,
 * nothing answered) and forgets the subscription look-ups in flight (the
 * server delivers those requests again). */
int kl_app_event(kl_app_t *app, const kl_event_t *ev);
/* The handle of the streamed IQ answer whose end kl_app_event() just
 * returned 0 for, else 0. */
uint16_t kl_app_ended_iq(const kl_app_t *app);

/* The client and counters. */
kl_client_t *kl_app_client(const kl_app_t *app);
const kl_app_stats_t *kl_app_stats(const kl_app_t *app);

/* ---- replies -------------------------------------------------------------
 * Built from what the handler got: to = in->from, the same id, and in s2s
 * mode from = in->to. KL_ERR_JID_TOO_LONG for a stanza whose from (or id)
 * did not fit (KL_IN_ADDR_TOO_LONG), KL_ERR_ARG for NULLs, else as
 * kl_stanza_commit. */

/* A writer over the transmit buffer with the reply's start tag written
 * and left open: name ("iq", "message", "presence") and type (NULL: none).
 * Add attributes and children, then kl_stanza_commit(). */
int kl_reply_begin(kl_app_t *app, const kl_in_t *in, kl_xw_t *w, const char *name, const char *type);
/* <iq type='result'/>, with payload_xml (caller vouches; NULL: empty). */
int kl_reply_iq_result(kl_app_t *app, const kl_in_t *in, const char *payload_xml);
/* <iq type='error'><error type='TYPE'><CONDITION xmlns=stanzas/></error></iq>;
 * type e.g. "cancel", "modify", "auth", "wait". */
int kl_reply_iq_error(kl_app_t *app, const kl_in_t *in, const char *type, const char *condition);

/* ---- payloads ------------------------------------------------------------ */

/* An <item/> of a roster result or push (RFC 6121), from its START token
 * (KL_PART_TOKEN: token->local "item", ns jabber:iq:roster); strings
 * decoded into the struct. 0, or KL_ERR_ARG if it is no item,
 * KL_ERR_TOO_LARGE if a value does not fit: that field is "" (a prefix of
 * a JID would name someone else), every other field is still read. */
typedef struct kl_roster_item {
    char jid[KL_JID_MAX];
    char name[64];
    char subscription[8];   /* none, to, from, both, remove; "" if absent */
    uint8_t ask;            /* ask='subscribe' */
} kl_roster_item_t;
int kl_roster_item(const kl_xml_token_t *t, kl_roster_item_t *it);

/* Decoded value of attribute `name` of a START token into out (NUL-
 * terminated): its length, KL_ERR_ARG if absent, KL_ERR_TOO_LARGE. */
int kl_token_attr(const kl_xml_token_t *t, const char *name, char *out, size_t cap);

/* ---- presence and subscriptions ----------------------------------------- */

/* Answer a subscription request (policy KL_SUB_ASK, or at any time):
 * presence type subscribed / unsubscribed to bare_jid. */
int kl_sub_answer(kl_app_t *app, const char *bare_jid, int approve);

/* Available presence with the device's caps (<c/>, XEP-0115), as the
 * engine's initial presence; status may be NULL. */
int kl_app_presence(kl_app_t *app, const char *show, const char *status);

/* The device's caps ver (XEP-0115 §5, SHA-1, base64) over its identity and
 * features, "" when the client has no crypto->hash. */
const char *kl_app_caps_ver(const kl_app_t *app);

/* ---- long stanzas out ------------------------------------------------------
 * A message whose body is larger than the transmit buffer: begin writes
 * <message to type><body>, kl_send_text() escapes as much of the text as
 * the free space takes, end closes it. Between begin and end the engine
 * sends nothing of its own and reads no input (kl_engine_poll() returns 0),
 * and kl_stanza_begin() says KL_ERR_TX_FULL: drain the output, go on, and
 * finish promptly. Under stream management the message is counted but its
 * bytes are not kept: if the session has to be resumed before the server
 * acknowledged it, it is not sent again; it comes back as KL_EV_UNACKED
 * with an empty ev.stanza and ev.status KL_ERR_TOO_LARGE (after a new
 * bind), or, on a resumption, as the same event right after
 * KL_EV_RESUMED, and the sequence numbers of later stanzas move down by one. */
int kl_send_message_begin(kl_client_t *c, const char *to, const char *type);
/* begin: KL_ERR_UNSUPPORTED over BOSH and WebSocket (they carry whole
 * stanzas only: send it as one, or not; the connection manager and
 * kl_bosh_pull() tell the client; a port that frames WebSocket with kl_ws
 * itself must not start one), KL_ERR_STATE while one is open or
 * from inside a handler's dispatch (the stanza being read would stall
 * behind it), KL_ERR_TX_FULL / KL_ERR_NOT_ONLINE as kl_stanza_begin. */
/* Takes whole UTF-8 sequences of text[0..len) into the stanza: returns how
 * many bytes it took (0: no room now; drain the output and call again), or
 * KL_ERR_XML_UTF8 (nothing taken) for bytes that are not UTF-8 text XML
 * allows, KL_ERR_STATE outside begin/end. A sequence split at len waits
 * for the rest. */
int kl_send_text(kl_client_t *c, const uint8_t *text, size_t len);
/* </body></message>: KL_OK, KL_ERR_TX_FULL (no room now: call again). */
int kl_send_message_end(kl_client_t *c);
/* 1 between kl_send_message_begin and a successful kl_send_message_end. */
int kl_send_long_open(const kl_client_t *c);

#if KL_ENABLE_PUBSUB
/* ---- PubSub / PEP (XEP-0060, XEP-0163) ------------------------------------
 * Publish one item to node on service (NULL: the account's own PEP
 * service). item_id may be NULL (the service picks one); payload_xml is
 * the item's child (caller vouches it is well-formed). opts: "var=value"
 * strings sent as publish-options (a data form, FORM_TYPE
 * pubsub#publish-options); the answer is KL_EV_IQ_RESULT with *iq_id (a
 * type='error' result: kl_stanza_error_condition). */
int kl_pubsub_publish(kl_client_t *c, const char *service, const char *node, const char *item_id,
                      const char *payload_xml, const char *const *opts, size_t nopts, uint16_t *iq_id);
#define KL_NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#endif

#if KL_ENABLE_MUC
/* ---- MUC (XEP-0045) --------------------------------------------------------
 * Join room_nick ("room@service/nick") with <history maxstanzas='0'/>
 * unless history is set (then maxstanzas=history); password may be NULL.
 * The room's self-presence (status 110) says the join succeeded. */
int kl_muc_join(kl_client_t *c, const char *room_nick, const char *password, int history);
int kl_muc_send(kl_client_t *c, const char *room, const char *body);
int kl_muc_leave(kl_client_t *c, const char *room_nick);
/* 1 if this presence (KL_PART_STANZA with in->stanza, or a status token) is
 * the room's self-presence (status code 110). */
int kl_muc_is_self(const kl_app_t *app, const kl_in_t *in);
#endif

#if KL_ENABLE_CSI
/* ---- client state indication (XEP-0352) -----------------------------------
 * <active/> or <inactive/>: KL_ERR_UNSUPPORTED when the server did not
 * offer urn:xmpp:csi:0, KL_ERR_NOT_ONLINE, KL_ERR_TX_FULL. */
int kl_csi_set(kl_client_t *c, int active);
#endif

/* The defined condition of an error stanza (<error><condition/>), into out:
 * its length, KL_ERR_ARG when there is none. */
int kl_stanza_error_condition(const kl_client_t *c, const kl_stanza_t *st, char *out, size_t cap);

#endif /* KL_ENABLE_APP */
#endif
