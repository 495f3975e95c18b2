/* kinglet — the application layer (kl_app.h): one dispatcher for whole
 * and streamed stanzas, replies, the device's disco identity and caps,
 * subscription policy, roster pushes, and the PubSub / MUC helpers. */
#include "kl_string.h"

#define KL_CORE_BUILD 1 /* core/: kl_client_t's members by their own names */
#include "kinglet/kl_app.h"
#include "kl_internal.h"

#if KL_ENABLE_APP

/* body_text() cuts body text into pieces of KL_APP_CHUNK less at most the
 * 16 bytes of a reference, a UTF-8 sequence's 3 and a CR: never empty. */
#if KL_APP_CHUNK < 32
#error "KL_APP_CHUNK must be at least 32"
#endif

#define NS_CLIENT "jabber:client"
#define NS_ROSTER "jabber:iq:roster"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_PING "urn:xmpp:ping"
#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_XDATA "jabber:x:data"

/* The stanza's own namespace: jabber:client, or jabber:server on s2s. */
static int stream_ns(kl_slice_t ns) { return kl_slice_eq(ns, NS_CLIENT) || kl_slice_eq(ns, "jabber:server"); }

/* What the app layer does with a stanza itself, besides the handlers. */
enum { BI_NONE, BI_PASS, BI_ROSTER_PUSH, BI_ROSTER_PUSH_BAD, BI_SUB_LOOKUP, BI_SUBSCRIBE, BI_ROSTER_RESULT };

/* The features the engine itself implements, always listed. */
static const char *const builtin_features[] = {NS_CAPS, NS_DISCO_INFO, NS_PING};
#define NBUILTIN (sizeof builtin_features / sizeof builtin_features[0])

static const char *id_category(const kl_app_t *a) { return a->cfg.category ? a->cfg.category : "client"; }
static const char *id_type(const kl_app_t *a) { return a->cfg.type ? a->cfg.type : "bot"; }
static const char *id_name(const kl_app_t *a) { return a->cfg.name ? a->cfg.name : "kinglet"; }
static const char *caps_node(const kl_app_t *a) { return a->cfg.caps_node ? a->cfg.caps_node : "https://kinglet.dev/caps"; }

/* Feature i of all of them (the app's, then the built-in ones). */
static const char *feature(const kl_app_t *a, size_t i)
{
    return i < a->cfg.nfeatures ? a->cfg.features[i] : builtin_features[i - a->cfg.nfeatures];
}
static size_t nfeatures(const kl_app_t *a) { return a->cfg.nfeatures + NBUILTIN; }

/* The features in byte order (XEP-0115 §5.1 sorts them, i;octet), each
 * once: the index of the smallest one greater than prev (NULL: the first),
 * or (size_t)-1. Quadratic, for a handful of features, and no array. */
static size_t next_feature(const kl_app_t *a, const char *prev)
{
    size_t i, best = (size_t)-1;
    for (i = 0; i < nfeatures(a); i++) {
        const char *f = feature(a, i);
        if (prev && strcmp(f, prev) <= 0)
            continue;
        if (best == (size_t)-1 || strcmp(f, feature(a, best)) < 0)
            best = i;
    }
    return best;
}

/* The caps ver: base64(SHA-1(S)), S = category/type//name< then each
 * feature< (XEP-0115 §5.1; one identity, no lang, no forms). S is built in
 * the client's transmit buffer, which is empty before a connection. */
static int compute_ver(kl_app_t *a)
{
    kl_client_t *c = a->c;
    const kl_crypto_t *cr = c->cfg.crypto;
    kl_xw_t w, vw;
    kl_b64_t b;
    uint8_t h[20];
    const char *f = NULL;
    size_t i;
    a->ver[0] = '\0';
    if (!cr || !cr->hash)
        return KL_OK;
    if (c->tx_len != c->tx_sent)
        return KL_ERR_STATE;
    kl_xw_init(&w, c->tx, sizeof c->tx);
#define RAWS(s) kl_xw_raw(&w, (const uint8_t *)(s), strlen(s))
    RAWS(id_category(a));
    RAWS("/");
    RAWS(id_type(a));
    RAWS("//");
    RAWS(id_name(a));
    RAWS("<");
    while ((i = next_feature(a, f)) != (size_t)-1) {
        f = feature(a, i);
        RAWS(f);
        RAWS("<");
    }
#undef RAWS
    if (kl_xw_status(&w) != KL_OK)
        return KL_ERR_TOO_LARGE;
    if (cr->hash(cr->ctx, KL_HASH_SHA1, w.buf, w.len, h) != 0)
        return KL_ERR_ARG;
    kl_xw_init(&vw, (uint8_t *)a->ver, sizeof a->ver - 1);
    kl_b64_init(&b, &vw);
    kl_b64_feed(&b, h, sizeof h);
    kl_b64_finish(&b);
    a->ver[vw.len] = '\0';
    return KL_OK;
}

void kl_i_app_disco(const kl_app_t *a, kl_xw_t *w, kl_slice_t node);

/* The disco#info answer must fit the transmit buffer with its addresses
 * (the engine keeps that much free before it reads a request): measured
 * once, in the transmit buffer, empty before a connection. */
#define ANSWER_HEAD 192 /* <iq type id to from> of an answer, as the engine's own reserve */
static int measure_disco(kl_app_t *a)
{
    kl_client_t *c = a->c;
    kl_xw_t w;
    kl_slice_t none = {NULL, 0};
    if (c->tx_len != c->tx_sent)
        return KL_ERR_STATE;
    kl_xw_init(&w, c->tx, sizeof c->tx);
    kl_i_app_disco(a, &w, none);
    /* the node='NODE#VER' form is longer by its attribute */
    if (kl_xw_status(&w) != KL_OK || w.len + 16 + strlen(caps_node(a)) + strlen(a->ver) + ANSWER_HEAD > sizeof c->tx)
        return KL_ERR_TOO_LARGE;
    a->disco_len = (uint16_t)(w.len + 16 + strlen(caps_node(a)) + strlen(a->ver));
    return KL_OK;
}

size_t kl_i_app_reserve(const kl_app_t *a) { return (size_t)a->disco_len + ANSWER_HEAD; }
int kl_i_app_busy(const kl_app_t *a) { return a->active == 1 || a->deferred; }

/* No quote or '<' in a configured string; the caps node is compared raw
 * with what a query names, so no '&' in it either. */
static int has_quote(const char *s) { return s && (strchr(s, '\'') || strchr(s, '"') || strchr(s, '<')); }

int kl_app_init(kl_app_t *app, kl_client_t *c, const kl_app_config_t *cfg)
{
    size_t i;
    int st;
    if (!app || !c)
        return KL_ERR_ARG;
    memset(app, 0, sizeof *app);
    app->c = c;
    if (cfg)
        app->cfg = *cfg;
    if (app->cfg.nfeatures && !app->cfg.features)
        return KL_ERR_ARG;
    for (i = 0; i < app->cfg.nfeatures; i++)
        if (!app->cfg.features[i] || !app->cfg.features[i][0] || has_quote(app->cfg.features[i]))
            return KL_ERR_ARG;
    if (has_quote(app->cfg.caps_node) || (app->cfg.caps_node && strchr(app->cfg.caps_node, '&')) || has_quote(app->cfg.category) || has_quote(app->cfg.type) ||
        has_quote(app->cfg.name) || (unsigned)app->cfg.subscriptions > KL_SUB_ASK)
        return KL_ERR_ARG;
    app->c = c;
    if ((st = compute_ver(app)) != KL_OK || (st = measure_disco(app)) != KL_OK)
        return st; /* not attached: the engine keeps answering by itself */
    return kl_app_attach(app, c);
}

int kl_app_attach(kl_app_t *app, kl_client_t *c)
{
    if (!app || !c)
        return KL_ERR_ARG;
    app->c = c;
    c->cfg.deliver_iq = 1; /* requests reach the handlers; unclaimed ones are answered here */
    c->app = app;
    return KL_OK;
}

int kl_app_on(kl_app_t *app, const kl_handler_t *h)
{
    if (!app || !h || !h->fn)
        return KL_ERR_ARG;
    if (app->nh >= KL_APP_MAX_HANDLERS)
        return KL_ERR_HANDLERS_FULL;
    app->h[app->nh++] = *h;
    return KL_OK;
}

kl_client_t *kl_app_client(const kl_app_t *app) { return app ? app->c : NULL; }
const kl_app_stats_t *kl_app_stats(const kl_app_t *app) { return app ? &app->stats : NULL; }
const char *kl_app_caps_ver(const kl_app_t *app) { return app ? app->ver : ""; }

/* ---- the engine's hooks ----------------------------------------------------- */

/* <c/> for a presence broadcast. */
void kl_i_app_caps(const kl_app_t *a, kl_xw_t *w)
{
    if (!a->ver[0])
        return;
    kl_xw_start(w, "c");
    kl_xw_attr(w, "xmlns", NS_CAPS);
    kl_xw_attr(w, "hash", "sha-1");
    kl_xw_attr(w, "node", caps_node(a));
    kl_xw_attr(w, "ver", a->ver);
    kl_xw_end(w, "c");
}

/* 1 if a disco#info query with node `node` (raw; p NULL: none) is for
 * us: no node, or our caps node#ver (XEP-0115 §6.2). */
int kl_i_app_node(const kl_app_t *a, kl_slice_t node)
{
    size_t nl = strlen(caps_node(a)), vl = strlen(a->ver);
    return !node.p || (vl && node.len == nl + 1 + vl && !memcmp(node.p, caps_node(a), nl) && node.p[nl] == '#' &&
                       !memcmp(node.p + nl + 1, a->ver, vl));
}

/* The disco#info answer's payload. */
void kl_i_app_disco(const kl_app_t *a, kl_xw_t *w, kl_slice_t node)
{
    const char *f = NULL;
    size_t i;
    kl_xw_start(w, "query");
    kl_xw_attr(w, "xmlns", NS_DISCO_INFO);
    if (node.p)
        kl_xw_attr_n(w, "node", node.p, node.len);
    kl_xw_start(w, "identity");
    kl_xw_attr(w, "category", id_category(a));
    kl_xw_attr(w, "type", id_type(a));
    kl_xw_attr(w, "name", id_name(a));
    kl_xw_end(w, "identity");
    while ((i = next_feature(a, f)) != (size_t)-1) {
        f = feature(a, i);
        kl_xw_start(w, "feature");
        kl_xw_attr(w, "var", f);
        kl_xw_end(w, "feature");
    }
    kl_xw_end(w, "query");
}

/* ---- decoding ----------------------------------------------------------------- */

/* Decoded raw value into out (NUL-terminated); -1 (out "") when it does
 * not fit. */
static int dec(kl_slice_t raw, char *out, size_t cap)
{
    int n = raw.p ? kl_xml_decode(raw, KL_XML_RAW_ATTR, (uint8_t *)out, cap - 1) : 0;
    out[n > 0 ? n : 0] = '\0';
    return n < 0 ? -1 : 0;
}

static void copy_name(kl_slice_t s, char *out, size_t cap)
{
    size_t n = s.len < cap - 1 ? s.len : 0; /* too long: "" (matches no handler's name) */
    if (n)
        memcpy(out, s.p, n); /* s.p may be NULL when s is empty */
    out[n] = '\0';
}

int kl_token_attr(const kl_xml_token_t *t, const char *name, char *out, size_t cap)
{
    kl_slice_t v;
    int n;
    if (!t || !name || !out || !cap || t->type != KL_XML_START)
        return KL_ERR_ARG;
    out[0] = '\0';
    if (!kl_xml_attr_get(t->attrs, name, &v))
        return KL_ERR_ARG;
    n = kl_xml_decode(v, KL_XML_RAW_ATTR, (uint8_t *)out, cap - 1);
    if (n < 0) {
        /* the longest prefix that fits is no use for a JID: truncate to "" */
        out[0] = '\0';
        return KL_ERR_TOO_LARGE;
    }
    out[n] = '\0';
    return n;
}

int kl_roster_item(const kl_xml_token_t *t, kl_roster_item_t *it)
{
    char ask[12];
    int big;
    if (!t || !it || t->type != KL_XML_START || !kl_slice_eq(t->local, "item") || !kl_slice_eq(t->ns, NS_ROSTER))
        return KL_ERR_ARG;
    memset(it, 0, sizeof *it);
    /* every field is read, whichever did not fit */
    big = kl_token_attr(t, "jid", it->jid, sizeof it->jid) == KL_ERR_TOO_LARGE;
    big |= kl_token_attr(t, "name", it->name, sizeof it->name) == KL_ERR_TOO_LARGE;
    big |= kl_token_attr(t, "subscription", it->subscription, sizeof it->subscription) == KL_ERR_TOO_LARGE;
    it->ask = kl_token_attr(t, "ask", ask, sizeof ask) > 0 && !strcmp(ask, "subscribe");
    return big ? KL_ERR_TOO_LARGE : KL_OK;
}

/* ---- dispatch ------------------------------------------------------------------- */

static int matches(const kl_app_t *a, const kl_handler_t *h)
{
    const kl_in_t *in = &a->in;
    return (h->kinds & in->kind) && (!h->type || !strcmp(h->type, in->type)) &&
           (!h->child || !strcmp(h->child, in->child)) && (!h->ns || !strcmp(h->ns, in->child_ns));
}

/* Call every matched handler with the current part. */
static void call(kl_app_t *a, kl_part_t part)
{
    size_t i;
    a->in.part = part;
    for (i = 0; i < a->nh; i++)
        if (a->mask & (1u << i))
            if (a->h[i].fn(a->h[i].ctx, a, &a->in) == KL_HANDLED && part == KL_PART_STANZA)
                a->handled = 1;
}

/* From the server for the account: no from at all, or the bare JID (a
 * from that did not fit is nobody's: a remote could pad its resource). */
static int is_account(const kl_app_t *a)
{
    return !(a->in.flags & KL_IN_ADDR_TOO_LONG) && (!a->had_from || kl_i_is_account(a->c, a->from));
}

static void bare(char *jid)
{
    char *s = strchr(jid, '/');
    if (s)
        *s = '\0';
}

/* The answer to a subscription request. */
static int sub_answer(kl_app_t *a, const char *jid, int approve)
{
    kl_xw_t w;
    int st = kl_i_answer_begin(a->c, &w);
    if (st != KL_OK)
        return st;
    kl_xw_start(&w, "presence");
    kl_xw_attr(&w, "to", jid);
    kl_xw_attr(&w, "type", approve ? "subscribed" : "unsubscribed");
    kl_xw_end(&w, "presence");
    st = kl_i_answer_commit(a->c, &w);
    if (st == KL_OK) {
        if (a->cfg.on_subscription)
            a->cfg.on_subscription(a->cfg.ctx, jid, approve);
        if (approve)
            a->stats.sub_approved++;
        else
            a->stats.sub_refused++;
    }
    return st;
}

int kl_sub_answer(kl_app_t *app, const char *bare_jid, int approve)
{
    if (!app || !bare_jid || !bare_jid[0])
        return KL_ERR_ARG;
    return sub_answer(app, bare_jid, approve);
}

/* A request under KL_SUB_ROSTER: look it up with a full roster get (no
 * version: the whole roster streams past, whatever its size). */
static void sub_lookup(kl_app_t *a)
{
    size_t i, n = strlen(a->from);
    for (i = 0; i < KL_APP_SUB_PENDING; i++)
        if (a->sub[i].iq && !strcmp(a->sub[i].jid, a->from))
            return; /* already being looked up */
    for (i = 0; i < KL_APP_SUB_PENDING && a->sub[i].iq; i++)
        ;
    if (i == KL_APP_SUB_PENDING || n >= sizeof a->sub[i].jid ||
        kl_send_iq(a->c, NULL, "get", "<query xmlns='" NS_ROSTER "'/>", 0, &a->sub[i].iq) != KL_OK) {
        /* no room to look it up now: left pending on the server, which
         * delivers it again at the next login */
        a->stats.sub_unanswered++;
        return;
    }
    memcpy(a->sub[i].jid, a->from, n + 1);
    a->sub[i].found = 0;
}

/* What the app layer does with this stanza itself. */
static int builtin_role(kl_app_t *a)
{
    const kl_in_t *in = &a->in;
    size_t i;
    if (in->kind == KL_KIND_IQ && in->iq_id)
        for (i = 0; i < KL_APP_SUB_PENDING; i++)
            if (a->sub[i].iq == in->iq_id) {
                /* a look-up's answer, whatever it holds */
                if (!strcmp(in->type, "result")) {
                    a->sub_slot = (uint8_t)i;
                    return BI_SUB_LOOKUP;
                }
                a->sub[i].iq = 0; /* the look-up failed: left pending on the server */
                a->stats.sub_unanswered++;
                return BI_PASS;
            }
    if (in->kind == KL_KIND_IQ && !strcmp(in->child, "query") && !strcmp(in->child_ns, NS_ROSTER)) {
        if (!strcmp(in->type, "set"))
            return is_account(a) ? BI_ROSTER_PUSH : BI_ROSTER_PUSH_BAD;
        if (!strcmp(in->type, "result") && in->iq_id && (in->flags & KL_IN_STREAMED) && in->iq_id == a->c->roster_iq)
            return BI_ROSTER_RESULT;
    }
    if (in->kind == KL_KIND_PRESENCE && !strcmp(in->type, "subscribe"))
        return BI_SUBSCRIBE;
    return BI_NONE;
}

/* The stanza's kind, addresses and payload child are known: choose the
 * handlers and start. */
static void start(kl_app_t *a)
{
    size_t i;
    a->builtin = (uint8_t)builtin_role(a);
    a->stats.stanzas++;
    if (a->builtin == BI_SUBSCRIBE) {
        bare(a->from);
        if (!a->from[0] || (a->in.flags & KL_IN_ADDR_TOO_LONG))
            a->builtin = BI_PASS; /* nobody to answer */
        else if (a->cfg.subscriptions == KL_SUB_ANYONE || a->cfg.subscriptions == KL_SUB_NOBODY)
            (void)sub_answer(a, a->from, a->cfg.subscriptions == KL_SUB_ANYONE);
        else if (a->cfg.subscriptions == KL_SUB_ROSTER)
            sub_lookup(a);
        else {
            a->stats.sub_asked++;
            a->builtin = BI_NONE; /* the handlers decide */
        }
    }
    a->mask = 0;
    for (i = 0; i < a->nh; i++)
        if (matches(a, &a->h[i]))
            a->mask |= 1u << i;
    if (a->builtin == BI_SUB_LOOKUP || a->builtin == BI_ROSTER_PUSH_BAD)
        a->mask = 0; /* ours alone / refused */
    if (a->builtin == BI_ROSTER_PUSH || a->builtin == BI_SUBSCRIBE)
        a->handled = 1;
    a->active = 1;
    call(a, KL_PART_STANZA);
}

/* Body text: a plain piece as it is, else decoded in chunks that split
 * no reference, no CR LF and no UTF-8 sequence. */
static void body_text(kl_app_t *a, const kl_xml_token_t *t)
{
    const uint8_t *p = t->text.p;
    size_t len = t->text.len;
    a->in.last = 0;
    if (t->plain) { /* also CDATA without a CR */
        a->in.text = t->text;
        call(a, KL_PART_BODY);
        return;
    }
    while (len) {
        size_t n = len < KL_APP_CHUNK ? len : KL_APP_CHUNK, j;
        int d;
        if (n < len) {
            for (j = n; !t->cdata && j > 0 && p[j - 1] != '&' && p[j - 1] != ';'; j--)
                ;
            /* n stays >= KL_APP_CHUNK - 16: a reference is at most 16
             * bytes, so the '&' of one cut here is among the last 15; a
             * UTF-8 sequence backs off at most 3, a CR 1 more */
            if (!t->cdata && j > 0 && p[j - 1] == '&')
                n = j - 1; /* a reference would be cut: stop before it */
            while ((p[n] & 0xC0) == 0x80)
                n--;
            if (p[n - 1] == '\r')
                n--;
        }
        d = kl_xml_decode((kl_slice_t){p, n}, t->cdata ? KL_XML_RAW_CDATA : KL_XML_RAW_TEXT, a->chunk, sizeof a->chunk);
        if (d > 0) {
            a->in.text.p = a->chunk;
            a->in.text.len = (size_t)d;
            call(a, KL_PART_BODY);
        }
        p += n;
        len -= n;
    }
}

/* One token inside the stanza (depth 3 and deeper). */
static void token(kl_app_t *a, const kl_xml_token_t *t)
{
    if (a->builtin == BI_SUB_LOOKUP && t->type == KL_XML_START && t->depth == 4 && kl_slice_eq(t->local, "item") &&
        kl_slice_eq(t->ns, NS_ROSTER)) {
        char jid[KL_JID_MAX], sub[8];
        /* only what decides (a long display name must not) */
        if (kl_token_attr(t, "jid", jid, sizeof jid) > 0 && !strcmp(jid, a->sub[a->sub_slot].jid) &&
            (kl_token_attr(t, "subscription", sub, sizeof sub) < 0 || strcmp(sub, "remove")))
            a->sub[a->sub_slot].found = 1;
    }
    if ((a->builtin == BI_ROSTER_PUSH || a->builtin == BI_ROSTER_RESULT) && t->type == KL_XML_START &&
        t->depth == 3 && kl_slice_eq(t->local, "query") && kl_slice_eq(t->ns, NS_ROSTER)) {
        a->roster_ver_set = kl_token_attr(t, "ver", a->roster_ver, sizeof a->roster_ver) >= 0;
    }
    if (a->in.kind == KL_KIND_MESSAGE && t->depth == 3) {
        if (t->type == KL_XML_START && kl_slice_eq(t->local, "body") && stream_ns(t->ns))
            a->in_body = 1;
        else if (t->type == KL_XML_TEXT && a->in_body)
            body_text(a, t);
        else if (t->type == KL_XML_END && a->in_body) {
            a->in_body = 0;
            a->in.text.p = a->chunk;
            a->in.text.len = 0;
            a->in.last = 1;
            call(a, KL_PART_BODY);
        }
    }
    a->in.token = t;
    call(a, KL_PART_TOKEN);
    a->in.token = NULL;
}

/* The stanza is over: the built-in answers, KL_PART_END, and an answer
 * for a request nobody claimed. */
static void finish(kl_app_t *a, int status)
{
    kl_in_t *in = &a->in;
    int req = in->kind == KL_KIND_IQ && (!strcmp(in->type, "get") || !strcmp(in->type, "set"));
    if (status < 0)
        a->stats.cut_short++;
    if (a->in_body) { /* cut short inside the body: its end still comes */
        a->in_body = 0;
        in->text.len = 0;
        in->last = 1;
        call(a, KL_PART_BODY);
    }
    if (a->builtin == BI_ROSTER_PUSH && status == KL_OK) {
        /* RFC 6121 2.1.6: acknowledge; XEP-0237: its version is now ours */
        if (kl_reply_iq_result(a, in, NULL) == KL_OK)
            a->stats.roster_pushes++;
    } else if (a->builtin == BI_ROSTER_PUSH && in->kind == KL_KIND_IQ) {
        (void)kl_reply_iq_error(a, in, "modify", "policy-violation"); /* cut short: not taken */
    }
    if ((a->builtin == BI_ROSTER_PUSH || a->builtin == BI_ROSTER_RESULT) && status == KL_OK && a->roster_ver_set)
        kl_i_roster_ver(a->c, a->roster_ver);
    if (a->builtin == BI_ROSTER_RESULT)
        a->c->roster_iq = 0;
    if (a->builtin == BI_SUB_LOOKUP) {
        if (status == KL_OK)
            (void)sub_answer(a, a->sub[a->sub_slot].jid, a->sub[a->sub_slot].found);
        else
            a->stats.sub_unanswered++;
        a->sub[a->sub_slot].iq = 0;
    }
    if (a->builtin == BI_ROSTER_PUSH_BAD) {
        a->stats.roster_pushes_refused++;
        (void)kl_reply_iq_error(a, in, "cancel", "service-unavailable");
        a->handled = 1;
    }
    in->status = status;
    in->handled = a->handled;
    call(a, KL_PART_END);
    if (req && !a->handled) {
        if (kl_reply_iq_error(a, in, status == KL_OK ? "cancel" : "modify",
                              status == KL_OK ? "service-unavailable" : "policy-violation") == KL_OK)
            a->stats.unhandled_iq++; /* answered (a from too long cannot be) */
    }
    a->claimed = a->handled || a->builtin != BI_NONE;
    /* a streamed answer to the program's own request nobody here took:
     * the program sees its end (kl_app_ended_iq) */
    a->ended_iq = !a->claimed && (in->flags & KL_IN_STREAMED) && in->kind == KL_KIND_IQ ? in->iq_id : 0;
    memset(in, 0, sizeof *in);
    a->active = a->deferred = a->in_body = a->handled = a->builtin = a->roster_ver_set = 0;
    a->mask = 0;
}

/* Kind and addresses from the stanza's start tag. 0 for something that is
 * no stanza (the application sees it as an event). */
static int open_stanza(kl_app_t *a, const kl_stanza_t *st, uint16_t iq_id)
{
    kl_in_t *in = &a->in;
    memset(in, 0, sizeof *in);
    if (kl_slice_eq(st->name, "message"))
        in->kind = KL_KIND_MESSAGE;
    else if (kl_slice_eq(st->name, "presence"))
        in->kind = KL_KIND_PRESENCE;
    else if (kl_slice_eq(st->name, "iq"))
        in->kind = KL_KIND_IQ;
    else
        return 0;
    a->had_from = st->from.p != NULL;
    if ((dec(st->from, a->from, sizeof a->from) | dec(st->to, a->to, sizeof a->to) |
         dec(st->id, a->id, sizeof a->id)) < 0)
        in->flags |= KL_IN_ADDR_TOO_LONG; /* each decoded: none keeps the last stanza's */
    if (dec(st->type, a->type, sizeof a->type) < 0)
        a->type[0] = '?'; /* matches no handler's type, and is no request */
    a->child[0] = a->child_ns[0] = '\0';
    in->from = a->from;
    in->to = a->to;
    in->id = a->id;
    in->type = a->type;
    in->child = a->child;
    in->child_ns = a->child_ns;
    in->iq_id = iq_id;
    return 1;
}

/* A whole stanza: walk it once for its payload child, once to deliver. */
static int whole(kl_app_t *a, const kl_stanza_t *st, uint16_t iq_id)
{
    kl_cursor_t cur;
    kl_xml_token_t t;
    int r, first = 1;
    if (!open_stanza(a, st, iq_id))
        return 0;
    a->in.stanza = st;
    kl_cursor_init(&cur, a->c, st);
    while (kl_cursor_next(&cur, &t) > 0)
        if (t.type == KL_XML_START && t.depth == 3) {
            /* the payload child: the first in another namespace, else the first */
            int foreign = !stream_ns(t.ns);
            if (first || foreign) {
                copy_name(t.local, a->child, sizeof a->child);
                copy_name(t.ns, a->child_ns, sizeof a->child_ns);
            }
            first = 0;
            if (foreign)
                break;
        }
    start(a);
    kl_cursor_init(&cur, a->c, st);
    while ((r = kl_cursor_next(&cur, &t)) > 0)
        if (t.depth >= 3)
            token(a, &t);
    finish(a, r < 0 ? r : KL_OK);
    return 1;
}

/* The stream this stanza came on is gone (or replaced): end it for the
 * handlers, answer nothing (nobody to answer on the new one). */
static void abandon(kl_app_t *a, int status)
{
    if (a->active == 1 || a->deferred) {
        if (a->deferred) {
            a->deferred = 0;
            start(a);
        }
        if (a->in.kind == KL_KIND_IQ)
            a->in.kind = (kl_kind_t)0;
        finish(a, status);
    }
    a->active = 0;
}

/* Look-ups of the last connection: their handles mean nothing now. */
static void forget_lookups(kl_app_t *a)
{
    size_t i;
    for (i = 0; i < KL_APP_SUB_PENDING; i++)
        if (a->sub[i].iq) {
            a->sub[i].iq = 0;
            a->stats.sub_unanswered++;
        }
}

uint16_t kl_app_ended_iq(const kl_app_t *app) { return app ? app->ended_iq : 0; }

int kl_app_event(kl_app_t *app, const kl_event_t *ev)
{
    kl_app_t *a = app;
    size_t i;
    if (!a || !ev)
        return 0;
    a->ended_iq = 0;
    switch (ev->type) {
    case KL_EV_STANZA:
        return whole(a, &ev->stanza, 0);
    case KL_EV_IQ_RESULT:
        /* the program that sent the request still sees its answer unless a
         * handler (or the app layer itself) took it */
        return whole(a, &ev->stanza, ev->iq_id) && a->claimed;
    case KL_EV_IQ_TIMEOUT:
        for (i = 0; i < KL_APP_SUB_PENDING; i++)
            if (a->sub[i].iq && a->sub[i].iq == ev->iq_id) {
                a->sub[i].iq = 0; /* left pending on the server */
                a->stats.sub_unanswered++;
                return 1;
            }
        return 0;
    case KL_EV_STANZA_BEGIN:
        abandon(a, KL_ERR_STREAM_CLOSED); /* a BEGIN while one was open: a new stream */
        if (!open_stanza(a, &ev->stanza, ev->iq_id)) {
            a->active = 2; /* not a stanza: its events pass through */
            return 0;
        }
        a->in.flags |= KL_IN_STREAMED;
        a->deferred = 1;
        return 1;
    case KL_EV_TOKEN:
        if (a->active == 2)
            return 0;
        if (!a->deferred && !a->active)
            return 0;
        if (a->deferred && ev->token.type == KL_XML_START && ev->token.depth == 3) {
            copy_name(ev->token.local, a->child, sizeof a->child);
            copy_name(ev->token.ns, a->child_ns, sizeof a->child_ns);
            a->deferred = 0;
            start(a);
        }
        if (a->active == 1 && ev->token.depth >= 3)
            token(a, &ev->token);
        return 1;
    case KL_EV_STANZA_END:
    case KL_EV_STANZA_DROPPED:
        if (a->active == 2) {
            a->active = 0;
            return 0;
        }
        if (!a->deferred && !a->active)
            return 0; /* dropped before it began: the application's event */
        if (a->deferred) {
            a->deferred = 0;
            start(a);
        }
        finish(a, ev->type == KL_EV_STANZA_END ? KL_OK : (ev->status < 0 ? ev->status : KL_ERR_TOO_LARGE));
        return a->ended_iq ? 0 : 1;
    case KL_EV_ONLINE:
    case KL_EV_RESUMED:
        /* a new stream (kl_session_kick, or a port that reconnected without
         * telling): nothing of the old one carries over */
        abandon(a, KL_ERR_STREAM_CLOSED);
        forget_lookups(a);
        return 0;
    case KL_EV_ERROR:
    case KL_EV_CLOSED:
    case KL_EV_LINK_DOWN:
        abandon(a, ev->status < 0 ? ev->status : KL_ERR_STREAM_CLOSED);
        forget_lookups(a);
        return 0;
    default:
        return 0;
    }
}

/* ---- replies ------------------------------------------------------------------ */

int kl_reply_begin(kl_app_t *app, const kl_in_t *in, kl_xw_t *w, const char *name, const char *type)
{
    int st;
    if (!app || !in || !w || !name)
        return KL_ERR_ARG;
    if (in->flags & KL_IN_ADDR_TOO_LONG)
        return KL_ERR_JID_TOO_LONG;
    /* s2s: from is the address the stanza was sent to (one of our domain:
     * the engine checked it); none, and the answer could carry no from */
    if (kl_i_is_s2s(app->c) && (!in->to || !in->to[0]))
        return KL_ERR_FROM_DOMAIN;
    if ((st = kl_i_answer_begin(app->c, w)) != KL_OK)
        return st;
    kl_xw_start(w, name);
    if (type)
        kl_xw_attr(w, "type", type);
    if (in->id && in->id[0])
        kl_xw_attr(w, "id", in->id);
    if (kl_i_is_s2s(app->c))
        kl_xw_attr(w, "from", in->to);
    if (in->from && in->from[0])
        kl_xw_attr(w, "to", in->from);
    return KL_OK;
}

int kl_reply_iq_result(kl_app_t *app, const kl_in_t *in, const char *payload_xml)
{
    kl_xw_t w;
    int st = kl_reply_begin(app, in, &w, "iq", "result");
    if (st != KL_OK)
        return st;
    if (payload_xml && *payload_xml)
        kl_xw_raw(&w, (const uint8_t *)payload_xml, strlen(payload_xml));
    kl_xw_end(&w, "iq");
    return kl_i_answer_commit(app->c, &w);
}

int kl_reply_iq_error(kl_app_t *app, const kl_in_t *in, const char *type, const char *condition)
{
    kl_xw_t w;
    int st;
    if (!type || !condition || !*condition)
        return KL_ERR_ARG;
    if ((st = kl_reply_begin(app, in, &w, "iq", "error")) != KL_OK)
        return st;
    kl_xw_start(&w, "error");
    kl_xw_attr(&w, "type", type);
    kl_xw_start(&w, condition);
    kl_xw_attr(&w, "xmlns", NS_STANZAS);
    kl_xw_end(&w, condition);
    kl_xw_end(&w, "error");
    kl_xw_end(&w, "iq");
    return kl_i_answer_commit(app->c, &w);
}

int kl_app_presence(kl_app_t *app, const char *show, const char *status)
{
    kl_xw_t w;
    int st;
    if (!app)
        return KL_ERR_ARG;
    if ((st = kl_stanza_begin(app->c, &w)) != KL_OK)
        return st;
    kl_xw_start(&w, "presence");
    if (show) {
        kl_xw_start(&w, "show");
        kl_xw_text(&w, (const uint8_t *)show, strlen(show));
        kl_xw_end(&w, "show");
    }
    if (status) {
        kl_xw_start(&w, "status");
        kl_xw_text(&w, (const uint8_t *)status, strlen(status));
        kl_xw_end(&w, "status");
    }
    kl_i_app_caps(app, &w);
    kl_xw_end(&w, "presence");
    return kl_stanza_commit(app->c, &w);
}

int kl_stanza_error_condition(const kl_client_t *c, const kl_stanza_t *st, char *out, size_t cap)
{
    kl_cursor_t cur;
    kl_xml_token_t t;
    int in_error = 0;
    if (!c || !st || !out || !cap)
        return KL_ERR_ARG;
    out[0] = '\0';
    kl_cursor_init(&cur, c, st);
    while (kl_cursor_next(&cur, &t) > 0) {
        if (t.type == KL_XML_START && t.depth == 3 && kl_slice_eq(t.local, "error"))
            in_error = 1;
        else if (t.type == KL_XML_END && t.depth == 3)
            in_error = 0;
        else if (in_error && t.type == KL_XML_START && t.depth == 4 && kl_slice_eq(t.ns, NS_STANZAS)) {
            if (t.local.len >= cap)
                return KL_ERR_TOO_LARGE;
            memcpy(out, t.local.p, t.local.len);
            out[t.local.len] = '\0';
            return (int)t.local.len;
        }
    }
    return KL_ERR_ARG;
}

/* ---- PubSub ----------------------------------------------------------------------- */

#if KL_ENABLE_PUBSUB
int kl_pubsub_publish(kl_client_t *c, const char *service, const char *node, const char *item_id,
                      const char *payload_xml, const char *const *opts, size_t nopts, uint16_t *iq_id)
{
    kl_xw_t w;
    size_t i;
    int st;
    if (!c || !node || !*node || !payload_xml || (nopts && !opts))
        return KL_ERR_ARG;
    for (i = 0; i < nopts; i++)
        if (!opts[i] || !strchr(opts[i], '=') || strchr(opts[i], '=') == opts[i])
            return KL_ERR_ARG;
    if ((st = kl_iq_begin(c, &w, service, "set")) != KL_OK)
        return st;
    kl_xw_start(&w, "pubsub");
    kl_xw_attr(&w, "xmlns", NS_PUBSUB);
    kl_xw_start(&w, "publish");
    kl_xw_attr(&w, "node", node);
    kl_xw_start(&w, "item");
    if (item_id)
        kl_xw_attr(&w, "id", item_id);
    kl_xw_raw(&w, (const uint8_t *)payload_xml, strlen(payload_xml));
    kl_xw_end(&w, "item");
    kl_xw_end(&w, "publish");
    if (nopts) {
        kl_xw_start(&w, "publish-options");
        kl_xw_start(&w, "x");
        kl_xw_attr(&w, "xmlns", NS_XDATA);
        kl_xw_attr(&w, "type", "submit");
        kl_xw_raw(&w, (const uint8_t *)"<field var='FORM_TYPE' type='hidden'><value>" NS_PUBSUB
                                       "#publish-options</value></field>",
                  sizeof("<field var='FORM_TYPE' type='hidden'><value>" NS_PUBSUB "#publish-options</value></field>") - 1);
        for (i = 0; i < nopts; i++) {
            const char *eq = strchr(opts[i], '=');
            kl_xw_start(&w, "field");
            kl_xw_attr_n(&w, "var", (const uint8_t *)opts[i], (size_t)(eq - opts[i]));
            kl_xw_start(&w, "value");
            kl_xw_text(&w, (const uint8_t *)eq + 1, strlen(eq + 1));
            kl_xw_end(&w, "value");
            kl_xw_end(&w, "field");
        }
        kl_xw_end(&w, "x");
        kl_xw_end(&w, "publish-options");
    }
    kl_xw_end(&w, "pubsub");
    return kl_iq_commit(c, &w, 0, iq_id);
}
#endif

/* ---- MUC --------------------------------------------------------------------------- */

#if KL_ENABLE_MUC
int kl_muc_join(kl_client_t *c, const char *room_nick, const char *password, int history)
{
    kl_xw_t w;
    char n[3 * sizeof(unsigned) + 1]; /* more than the digits of any unsigned and the NUL */
    int st;
    if (!c || !room_nick || !strchr(room_nick, '@') || !strchr(room_nick, '/') || history < 0)
        return KL_ERR_ARG;
    if ((st = kl_stanza_begin(c, &w)) != KL_OK)
        return st;
    kl_xw_start(&w, "presence");
    kl_xw_attr(&w, "to", room_nick);
    kl_xw_start(&w, "x");
    kl_xw_attr(&w, "xmlns", NS_MUC);
    kl_xw_start(&w, "history");
    {
        /* a device must not be flooded when it joins: no history unless asked */
        size_t i = sizeof n - 1;
        unsigned v = (unsigned)history;
        n[i] = '\0';
        do
            n[--i] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        kl_xw_attr(&w, "maxstanzas", n + i);
    }
    kl_xw_end(&w, "history");
    if (password) {
        kl_xw_start(&w, "password");
        kl_xw_text(&w, (const uint8_t *)password, strlen(password));
        kl_xw_end(&w, "password");
    }
    kl_xw_end(&w, "x");
    if (c->app)
        kl_i_app_caps(c->app, &w);
    kl_xw_end(&w, "presence");
    return kl_stanza_commit(c, &w);
}

int kl_muc_send(kl_client_t *c, const char *room, const char *body)
{
    if (!room || strchr(room, '/'))
        return KL_ERR_ARG;
    return kl_send_message(c, room, "groupchat", body);
}

int kl_muc_leave(kl_client_t *c, const char *room_nick)
{
    if (!room_nick || !strchr(room_nick, '/'))
        return KL_ERR_ARG;
    return kl_send_presence(c, room_nick, "unavailable", NULL);
}

int kl_muc_is_self(const kl_app_t *app, const kl_in_t *in)
{
    kl_cursor_t cur;
    kl_xml_token_t t;
    int in_x = 0;
    if (!app || !in || in->kind != KL_KIND_PRESENCE)
        return 0;
    if (in->token) {
        char code[8];
        return in->token->type == KL_XML_START && kl_slice_eq(in->token->local, "status") &&
               kl_slice_eq(in->token->ns, NS_MUC_USER) && kl_token_attr(in->token, "code", code, sizeof code) == 3 &&
               !strcmp(code, "110");
    }
    if (!in->stanza)
        return 0;
    kl_cursor_init(&cur, app->c, in->stanza);
    while (kl_cursor_next(&cur, &t) > 0) {
        char code[8];
        if (t.type == KL_XML_START && t.depth == 3)
            in_x = kl_slice_eq(t.ns, NS_MUC_USER);
        if (in_x && t.type == KL_XML_START && t.depth == 4 && kl_slice_eq(t.local, "status") &&
            kl_token_attr(&t, "code", code, sizeof code) == 3 && !strcmp(code, "110"))
            return 1;
    }
    return 0;
}
#endif

#endif /* KL_ENABLE_APP */
