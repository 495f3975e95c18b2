/* kinglet — BOSH framing of the engine (see kl_bosh.h). */
#include "kinglet/kl_bosh.h"

#include "kl_internal.h"
#include "kl_string.h"

#define NS_HTTPBIND "http://jabber.org/protocol/httpbind"
#define NS_XBOSH "urn:xmpp:xbosh"

enum { ST_INIT = 0, ST_CREATING, ST_ACTIVE, ST_TERMINATING, ST_DONE };

static const char synth_header[] =
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
static const char synth_end[] = "</stream:stream>";
#define HDR_DONE 0xFFu
#define HEAD_ROOM 320u /* room kept before the body for the HTTP head */

static int set_error(kl_bosh_t *b, int st)
{
    if (!b->error)
        b->error = st;
    b->state = ST_DONE;
    return b->error;
}

int kl_bosh_init(kl_bosh_t *b, const kl_bosh_config_t *cfg)
{
    if (!b || !cfg || !cfg->host || !cfg->path || !cfg->to || !*cfg->to || *cfg->path != '/')
        return KL_ERR_ARG;
    memset(b, 0, sizeof *b);
    b->cfg = *cfg;
    if (!b->cfg.lang)
        b->cfg.lang = "en";
    if (!b->cfg.wait)
        b->cfg.wait = 60;
    if (!b->cfg.hold)
        b->cfg.hold = 1;
    b->next_rid = cfg->rid & 0x7fffffffu;
    if (b->next_rid == 0)
        b->next_rid = 1;
    b->requests = 1;
    b->cur = -1;
    return KL_OK;
}

/* ---- engine output -> queue ------------------------------------------------ */

static int starts(const uint8_t *p, size_t n, const char *s)
{
    size_t l = strlen(s);
    return n >= l && memcmp(p, s, l) == 0;
}

/* End (exclusive) of the markup starting at p[0] == '<', or 0 if incomplete. */
static size_t markup_end(const uint8_t *p, size_t n)
{
    size_t i;
    uint8_t quote = 0;
    if (starts(p, n, "<![CDATA[")) {
        for (i = 9; i + 2 < n; i++)
            if (p[i] == ']' && p[i + 1] == ']' && p[i + 2] == '>')
                return i + 3;
        return 0;
    }
    for (i = 1; i < n; i++) {
        if (quote) {
            if (p[i] == quote)
                quote = 0;
        } else if (p[i] == '\'' || p[i] == '"') {
            quote = p[i];
        } else if (p[i] == '>') {
            return i + 1;
        }
    }
    return 0;
}

/* 1 if the start tag p[0..e) declares a default namespace (xmlns=
 * outside a quoted value). */
static int has_xmlns(const uint8_t *p, size_t e)
{
    size_t i;
    uint8_t quote = 0;
    for (i = 1; i + 7 < e; i++) {
        if (quote) {
            if (p[i] == quote)
                quote = 0;
        } else if (p[i] == '\'' || p[i] == '"') {
            quote = p[i];
        } else if ((p[i] == ' ' || p[i] == '\t' || p[i] == '\n') && !memcmp(p + i + 1, "xmlns=", 6)) {
            return 1;
        }
    }
    return 0;
}

/* XEP-0206 §5: a stanza inside <body/> is qualified by jabber:client itself
 * (the body's default namespace is httpbind's). */
#define NS_CLIENT_ATTR " xmlns='jabber:client'"

/* Copy one flight into the queue (q NULL: only count the bytes it takes).
 * Returns the bytes, or a negative error. */
static long bosh_take(kl_bosh_t *b, const uint8_t *p, size_t len, uint8_t *q)
{
    size_t i = 0, n = 0;
    int depth = b->depth;
    int got_header = b->got_header;
    while (i < len) {
        size_t e;
        if (p[i] != '<') {
            if (q)
                q[n] = p[i];
            n++, i++;
            continue;
        }
        e = markup_end(p + i, len - i);
        if (!e)
            return KL_ERR_BOSH_PROTOCOL; /* the engine writes whole flights */
        if (p[i + 1] == '?') {
            /* the XML declaration of a stream header: dropped */
        } else if (depth == 0 && starts(p + i, e, "<stream:stream")) {
            if (!got_header) {
                got_header = 1;
            } else if (q) {
                if (b->q_restart)
                    return KL_ERR_BOSH_PROTOCOL; /* two restarts pending */
                b->q_restart = 1;
                b->q_restart_at = b->q_len + n;
            }
        } else if (depth == 0 && starts(p + i, e, "</stream:stream")) {
            if (q)
                b->q_terminate = 1;
            break; /* nothing follows the end of the stream */
        } else {
            size_t name = 1;
            int top;
            if (p[i + 1] == '/' && depth == 0)
                return KL_ERR_BOSH_PROTOCOL; /* an end tag with nothing open */
            /* an end tag at depth 0 was refused just above */
            top = depth == 0 && p[i + 1] != '!' && !has_xmlns(p + i, e);
            if (p[i + 1] == '/')
                depth--;
            else if (p[i + 1] != '!' && p[i + e - 2] != '/')
                depth++;
            if (top) {
                /* the name ends at a space, a '/' or the '>' at e - 1 */
                while (name < e - 1 && p[i + name] != ' ' && p[i + name] != '/')
                    name++;
                if (q) {
                    memcpy(q + n, p + i, name);
                    memcpy(q + n + name, NS_CLIENT_ATTR, sizeof NS_CLIENT_ATTR - 1);
                    memcpy(q + n + name + sizeof NS_CLIENT_ATTR - 1, p + i + name, e - name);
                }
                n += sizeof NS_CLIENT_ATTR - 1;
            } else if (q) {
                memcpy(q + n, p + i, e);
            }
            n += e;
        }
        i += e;
    }
    if (q) {
        b->depth = depth;
        b->got_header = (uint8_t)got_header;
    }
    return (long)n;
}

int kl_bosh_pull(kl_bosh_t *b, kl_client_t *c)
{
    size_t len;
    long n;
    const uint8_t *p;
    if (!b || !c)
        return KL_ERR_ARG;
    if (b->error)
        return b->error;
#if KL_ENABLE_APP
    kl_i_set_framed(c, 1); /* BOSH wraps whole stanzas: no long one (also without the manager) */
#endif
    p = kl_engine_output(c, &len);
    if (!len)
        return KL_OK;
    if (b->q_terminate || b->state >= ST_TERMINATING) {
        kl_engine_output_ack(c, len); /* nothing goes after the terminate */
        return KL_OK;
    }
    if ((n = bosh_take(b, p, len, NULL)) < 0)
        return set_error(b, (int)n);
    if ((size_t)n > sizeof b->q - b->q_len)
        return b->q_len ? KL_OK : set_error(b, KL_ERR_BOSH_QUEUE_FULL);
    if ((n = bosh_take(b, p, len, b->q + b->q_len)) < 0)
        return set_error(b, (int)n);
    b->q_len += (size_t)n;
    kl_engine_output_ack(c, len);
    return KL_OK;
}

/* ---- requests ------------------------------------------------------------ */

static void w_u32(kl_xw_t *w, const char *name, uint32_t v)
{
    char num[12];
    size_t i = sizeof num - 1;
    num[i] = '\0';
    do {
        num[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    kl_xw_attr(w, name, num + i);
}

int kl_bosh_outstanding(const kl_bosh_t *b)
{
    int i, n = 0;
    for (i = 0; i < KL_BOSH_SLOTS; i++)
        n += b->slot[i].state != KL_BOSH_SLOT_FREE;
    return n;
}

int kl_bosh_done(const kl_bosh_t *b) { return b->state == ST_DONE; }

/* Build the next body into a free slot. Returns the slot or a negative
 * status. The callers leave a slot free (the creation request is built
 * with none in use, every other with fewer than KL_BOSH_SLOTS out), so the
 * last slot is free when no earlier one is. */
static int build(kl_bosh_t *b, int creation)
{
    kl_bosh_slot_t *s;
    kl_xw_t w;
    size_t take = b->q_len, hl;
    int restart = 0, terminate = 0, i, n;
    char head[HEAD_ROOM];
    for (i = 0; i < KL_BOSH_SLOTS - 1 && b->slot[i].state != KL_BOSH_SLOT_FREE; i++)
        ;
    s = &b->slot[i];
    if (b->q_restart) {
        if (b->cfg.split_restart) {
            /* what precedes the restart; the restart alone; then the rest */
            if (b->q_restart_at > 0)
                take = b->q_restart_at;
            else
                restart = 1, take = 0;
        } else {
            restart = 1;
        }
    }
    if (b->q_terminate && take == b->q_len && (!b->q_restart || restart))
        terminate = 1;
    kl_xw_init(&w, s->req + HEAD_ROOM, sizeof s->req - HEAD_ROOM);
    kl_xw_start(&w, "body");
    if (creation) {
        kl_xw_attr(&w, "content", "text/xml; charset=utf-8");
        w_u32(&w, "hold", b->cfg.hold);
    }
    w_u32(&w, "rid", b->next_rid);
    if (!creation)
        kl_xw_attr(&w, "sid", b->sid);
    if (creation || restart) {
        kl_xw_attr(&w, "to", b->cfg.to);
        kl_xw_attr(&w, "xml:lang", b->cfg.lang);
    }
    if (creation) {
        kl_xw_attr(&w, "ver", "1.6");
        w_u32(&w, "wait", b->cfg.wait);
        kl_xw_attr(&w, "xmpp:version", "1.0");
    }
    if (restart)
        kl_xw_attr(&w, "xmpp:restart", "true");
    if (terminate)
        kl_xw_attr(&w, "type", "terminate");
    kl_xw_attr(&w, "xmlns", NS_HTTPBIND);
    if (creation || restart)
        kl_xw_attr(&w, "xmlns:xmpp", NS_XBOSH);
    if (take)
        kl_xw_raw(&w, b->q, take);
    kl_xw_end(&w, "body");
    if (kl_xw_status(&w) != KL_OK)
        return set_error(b, KL_ERR_BOSH_QUEUE_FULL);
    n = kl_http_write_request((uint8_t *)head, sizeof head, b->cfg.host, b->cfg.path, w.len);
    if (n < 0)
        return set_error(b, n);
    hl = (size_t)n;
    memmove(s->req + hl, s->req + HEAD_ROOM, w.len);
    memcpy(s->req, head, hl);
    s->req_len = hl + w.len;
    s->rid = b->next_rid++;
    if (b->next_rid > 0x7fffffffu)
        b->next_rid = 1; /* 2^31 requests: not reached in practice */
    s->creation = (uint8_t)creation;
    s->restart = (uint8_t)restart;
    s->terminate = (uint8_t)terminate;
    s->tries = 0;
    s->state = KL_BOSH_SLOT_READY;
    /* consume */
    memmove(b->q, b->q + take, b->q_len - take);
    b->q_len -= take;
    if (b->q_restart) {
        if (restart)
            b->q_restart = 0;
        else
            b->q_restart_at -= take;
    }
    if (restart)
        b->restarts_sent++;
    if (terminate) {
        b->q_terminate = 0;
        b->state = ST_TERMINATING;
    }
    if (creation)
        b->state = ST_CREATING;
    return (int)(s - b->slot);
}

static int hand_out(kl_bosh_t *b, int i, const uint8_t **req, size_t *len)
{
    kl_bosh_slot_t *s = &b->slot[i];
    kl_http_resp_init(&s->resp, s->body, sizeof s->body);
    s->state = KL_BOSH_SLOT_SENT;
    s->tries++;
    if (s->tries == 1) {
        if (!b->waiting)
            b->round_trips++;
        b->waiting = 1;
    }
    b->requests_sent++;
    *req = s->req;
    *len = s->req_len;
    return i;
}

int kl_bosh_next_request(kl_bosh_t *b, const uint8_t **req, size_t *len)
{
    int i, out, limit, has_data;
    if (!b || !req || !len)
        return KL_ERR_ARG;
    *req = NULL;
    *len = 0;
    if (b->error)
        return -1;
    for (i = 0; i < KL_BOSH_SLOTS; i++)
        if (b->slot[i].state == KL_BOSH_SLOT_READY)
            return hand_out(b, i, req, len); /* a retry (same rid) */
    if (b->cur >= 0)
        return -1; /* a response is being processed: its answers go next */
    if (b->state == ST_INIT) {
        if (!b->got_header)
            return -1;
        i = build(b, 1);
        return i >= 0 ? hand_out(b, i, req, len) : -1;
    }
    if (b->state != ST_ACTIVE)
        return -1;
    out = kl_bosh_outstanding(b);
    limit = b->requests < KL_BOSH_SLOTS ? (int)b->requests : KL_BOSH_SLOTS;
    if (out >= limit)
        return -1;
    has_data = b->q_len || b->q_restart || b->q_terminate;
    if (!has_data && out > 0)
        return -1; /* a request is already held: that is the long poll */
    i = build(b, 0);
    return i >= 0 ? hand_out(b, i, req, len) : -1;
}

int kl_bosh_response(kl_bosh_t *b, int slot, const uint8_t *data, size_t len, size_t *used)
{
    kl_bosh_slot_t *s;
    int r;
    if (used)
        *used = 0;
    if (!b || slot < 0 || slot >= KL_BOSH_SLOTS || !used)
        return KL_ERR_ARG;
    if (b->error)
        return b->error;
    s = &b->slot[slot];
    if (s->state != KL_BOSH_SLOT_SENT)
        return len ? set_error(b, KL_ERR_HTTP_SYNTAX) : 0; /* bytes nobody asked for */
    r = kl_http_resp_feed(&s->resp, data, len, used);
    if (r < 0)
        return set_error(b, r);
    if (r == 1) {
        s->state = KL_BOSH_SLOT_DONE;
        b->waiting = 0;
    }
    return r;
}

int kl_bosh_conn_failed(kl_bosh_t *b, int slot)
{
    kl_bosh_slot_t *s;
    if (!b || slot < 0 || slot >= KL_BOSH_SLOTS)
        return KL_ERR_ARG;
    s = &b->slot[slot];
    if (s->state != KL_BOSH_SLOT_SENT)
        return 0;
    if (kl_http_resp_eof(&s->resp) == 1) {
        s->state = KL_BOSH_SLOT_DONE;
        b->waiting = 0;
        return 1;
    }
    if (s->tries >= 2)
        return set_error(b, KL_ERR_BOSH_REQUEST_FAILED);
    s->state = KL_BOSH_SLOT_READY; /* again, same rid */
    return 0;
}

/* ---- responses -> engine ------------------------------------------------------ */

static int attr_u32(kl_slice_t attrs, const char *name, uint32_t *out)
{
    kl_slice_t v;
    uint32_t n = 0;
    size_t i;
    if (!kl_xml_attr_get(attrs, name, &v))
        return 0;
    if (!v.len || v.len > 9)
        return KL_ERR_BOSH_PROTOCOL;
    for (i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return KL_ERR_BOSH_PROTOCOL;
        n = n * 10 + (uint32_t)(v.p[i] - '0');
    }
    *out = n;
    return 1;
}

static void copy_attr(kl_slice_t attrs, const char *name, char *out, size_t cap)
{
    kl_slice_t v;
    int n = kl_xml_attr_get(attrs, name, &v) ? kl_xml_decode(v, KL_XML_RAW_ATTR, (uint8_t *)out, cap - 1) : 0;
    out[n > 0 ? n : 0] = '\0';
}

/* The <body> start tag of the current response. */
static int on_body(kl_bosh_t *b, kl_bosh_slot_t *s, const kl_xml_token_t *t)
{
    kl_slice_t v;
    int r;
    /* t is the response's first token, so at depth 1 */
    if (!kl_slice_eq(t->local, "body") || !kl_slice_eq(t->ns, NS_HTTPBIND))
        return set_error(b, KL_ERR_BOSH_PROTOCOL);
    if (kl_xml_attr_get(t->attrs, "type", &v) &&
        (kl_xml_decoded_eq(v, "terminate") || kl_xml_decoded_eq(v, "error"))) {
        if (b->state == ST_TERMINATING || s->terminate) {
            b->close_owed = 1; /* our terminate was answered */
        } else {
            copy_attr(t->attrs, "condition", b->condition, sizeof b->condition);
            if (!b->condition[0])
                memcpy(b->condition, "undefined-condition", sizeof "undefined-condition");
            return set_error(b, KL_ERR_BOSH_TERMINATE);
        }
    }
    if (s->creation) {
        uint32_t req = 0;
        copy_attr(t->attrs, "sid", b->sid, sizeof b->sid);
        if (!b->sid[0])
            return set_error(b, KL_ERR_BOSH_PROTOCOL);
        if ((r = attr_u32(t->attrs, "wait", &b->wait)) < 0 || (r = attr_u32(t->attrs, "hold", &b->hold)) < 0 ||
            (r = attr_u32(t->attrs, "inactivity", &b->inactivity)) < 0 ||
            (r = attr_u32(t->attrs, "requests", &req)) < 0)
            return set_error(b, r);
        /* XEP-0124: without 'requests', hold + 1 */
        b->requests = req ? req : (b->hold ? b->hold : b->cfg.hold) + 1;
        b->state = ST_ACTIVE; /* from ST_CREATING: no other request goes out before */
    }
    return KL_OK;
}

/* The oldest outstanding request, if its response is complete. */
static int oldest_done(const kl_bosh_t *b)
{
    int i, best = -1;
    for (i = 0; i < KL_BOSH_SLOTS; i++) {
        const kl_bosh_slot_t *s = &b->slot[i];
        if (s->state == KL_BOSH_SLOT_FREE)
            continue;
        if (best < 0 || (int32_t)(s->rid - b->slot[best].rid) < 0)
            best = i;
    }
    return best >= 0 && b->slot[best].state == KL_BOSH_SLOT_DONE ? best : -1;
}

/* Give the engine more of the current element. 1 if anything was taken. */
static int feed_elem(kl_bosh_t *b, kl_client_t *c)
{
    kl_bosh_slot_t *s = &b->slot[b->cur];
    size_t n, fed = 0;
    while (b->hdr_fed != HDR_DONE) {
        n = kl_engine_input(c, (const uint8_t *)synth_header + b->hdr_fed, sizeof synth_header - 1 - b->hdr_fed);
        if (!n)
            return fed > 0;
        fed += n;
        b->hdr_fed = (uint8_t)(b->hdr_fed + n);
        if (b->hdr_fed == sizeof synth_header - 1)
            b->hdr_fed = HDR_DONE;
    }
    n = kl_engine_input(c, s->body + b->el_start + b->el_fed, b->el_end - b->el_start - b->el_fed);
    b->el_fed += n;
    fed += n;
    if (b->el_fed == b->el_end - b->el_start)
        b->in_elem = 0;
    return fed > 0;
}

int kl_bosh_push(kl_bosh_t *b, kl_client_t *c)
{
    kl_bosh_slot_t *s;
    size_t olen;
    if (!b || !c)
        return KL_ERR_ARG;
    if (b->error)
        return b->error;
    (void)kl_engine_output(c, &olen);
    if (olen)
        return 0; /* the engine's answers first (and it must have processed all input) */
    if (b->cur < 0) {
        kl_xml_token_t t;
        size_t n = 0;
        int r;
        if ((b->cur = oldest_done(b)) < 0)
            return 0;
        s = &b->slot[b->cur];
        if (s->resp.status != 200) {
            b->http_status = s->resp.status;
            return set_error(b, KL_ERR_HTTP_STATUS);
        }
        kl_xml_init(&b->x);
        b->pos = 0;
        r = kl_xml_next(&b->x, s->body, s->resp.body_len, &n, &t);
        if (r != KL_XML_START)
            return set_error(b, r < 0 ? r : KL_ERR_BOSH_PROTOCOL);
        b->pos = n;
        if ((r = on_body(b, s, &t)) != KL_OK)
            return r;
    }
    s = &b->slot[b->cur];
    if (b->in_elem)
        return feed_elem(b, c);
    for (;;) {
        kl_xml_token_t t;
        size_t n = 0;
        int r = kl_xml_next(&b->x, s->body + b->pos, s->resp.body_len - b->pos, &n, &t);
        if (r < 0)
            return set_error(b, r);
        if (r == KL_XML_NEED_MORE)
            return set_error(b, KL_ERR_BOSH_PROTOCOL); /* the body ended inside <body> */
        if (r == KL_XML_START && t.depth == 2) {
            b->el_start = b->pos + t.offset;
        } else if (r == KL_XML_END && t.depth == 2) {
            b->pos += n;
            b->el_end = b->pos;
            b->el_fed = 0;
            b->in_elem = 1;
            b->hdr_fed = kl_engine_awaiting_header(c) ? 0 : HDR_DONE;
            return feed_elem(b, c) ? 1 : 0;
        } else if (r == KL_XML_END && t.depth == 1) {
            /* this response is done */
            s->state = KL_BOSH_SLOT_FREE;
            b->cur = -1;
            if (b->close_owed) {
                b->close_owed = 0;
                b->state = ST_DONE;
                if (!kl_engine_awaiting_header(c))
                    (void)kl_engine_input(c, (const uint8_t *)synth_end, sizeof synth_end - 1);
                return 1;
            }
            return 1; /* the engine may want to send now; call again */
        }
        b->pos += n;
    }
}
