/* kinglet — WebSocket framing of the XMPP stream, RFC 6455 / RFC 7395 (see kl_ws.h). */
#include "kinglet/kl_ws.h"

#include "kl_internal.h"
#include "kl_string.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"

enum { OP_CONT = 0, OP_TEXT = 1, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

/* ws->hs: what the upgrade response showed so far */
enum {
    H_STATUS = 1, /* status line read: 101 */
    H_UPGRADE = 2,
    H_CONNECTION = 4,
    H_ACCEPT = 8,
    H_PROTOCOL = 16,
    H_TRUNC = 32, /* the current line is longer than KL_WS_LINE_MAX */
    H_CR = 64     /* the last byte was CR */
};
#define H_ALL (H_STATUS | H_UPGRADE | H_CONNECTION | H_ACCEPT | H_PROTOCOL)

/* ws->m: what the open message's payload does */
enum {
    M_START = 0, /* its first bytes: held while they may still begin <open or <close */
    M_PASS,      /* streamed to out as it arrives */
    M_COLLECT    /* an <open/> or <close/>: collected whole in u.e[KL_WS_SLACK..] */
};

/* Room in the stage for the largest frame header (2 + 8 + 4-byte mask):
 * payloads are built at stage[HDR], the header goes right before them. */
#define HDR 14

/* What replaces <open/> for the engine: 84 bytes, less than KL_WS_SLACK (see translate()). */
static const char synth_header[] =
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'";
static const char synth_end[] = "</stream:stream>";
static const char open_start[] = "<open xmlns='" NS_FRAMING "'";
static const char close_el[] = "<close xmlns='" NS_FRAMING "'/>";
/* declarations a top-level element may need: [0, 22) the default
 * namespace, [22, end) the stream prefix */
static const char decls[] = " xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'";
#define DECL_XMLNS 22

/* translate() writes in place behind what it reads (see there) */
_Static_assert(sizeof synth_header - 1 <= KL_WS_SLACK + sizeof "<open" - 1, "KL_WS_SLACK too small");
_Static_assert(sizeof decls - 1 < 256 && DECL_XMLNS == sizeof " xmlns='jabber:client'" - 1, "decls");

static int is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static size_t min2(size_t a, size_t b) { return a < b ? a : b; }

/* Case-insensitive p[0..n) == s (s in lower case). */
static int ieq(const char *p, size_t n, const char *s)
{
    size_t i;
    if (strlen(s) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (lower((unsigned char)p[i]) != s[i])
            return 0;
    return 1;
}

/* Does the comma-separated list p[0..n) hold token s (case-insensitive)? */
static int has_token(const char *p, size_t n, const char *s)
{
    size_t i = 0;
    while (i < n) {
        size_t a, b;
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
            i++;
        a = i;
        while (i < n && p[i] != ',')
            i++;
        b = i;
        while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
            b--;
        if (b > a && ieq(p + a, b - a, s))
            return 1;
    }
    return 0;
}

/* base64 of in[0..n) into out (4 * ceil(n / 3) bytes, not terminated). */
static void b64(const uint8_t *in, size_t n, char *out, size_t cap)
{
    kl_xw_t w;
    kl_b64_t b;
    kl_xw_init(&w, (uint8_t *)out, cap);
    kl_b64_init(&b, &w);
    kl_b64_feed(&b, in, n);
    kl_b64_finish(&b);
}

/* A configured header value (host, path, origin) may hold no control
 * character and no space. */
static int bad_text(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == ' ')
            return 1;
    return 0;
}

/* ---- setup and the upgrade request ------------------------------------------- */

int kl_ws_init(kl_ws_t *ws, const kl_ws_config_t *cfg)
{
    uint8_t raw[16], sha[KL_HASH_MAX], in[24 + sizeof WS_GUID - 1];
    if (!ws)
        return KL_ERR_ARG;
    memset(ws, 0, sizeof *ws);
    ws->rerr = ws->werr = KL_ERR_ARG; /* until init succeeds */
    if (!cfg || !cfg->host || !*cfg->host || !cfg->path || cfg->path[0] != '/' || bad_text(cfg->host) ||
        bad_text(cfg->path) || (cfg->origin && bad_text(cfg->origin)) || !cfg->crypto || !cfg->crypto->hash)
        return KL_ERR_ARG;
    ws->cfg = *cfg;
    if (!ws->cfg.random) {
        ws->cfg.random = cfg->crypto->random;
        ws->cfg.random_ctx = cfg->crypto->ctx;
    }
    if (!ws->cfg.random || ws->cfg.random(ws->cfg.random_ctx, raw, sizeof raw) != 0) {
        ws->rerr = ws->werr = KL_ERR_NO_ENTROPY;
        return KL_ERR_NO_ENTROPY;
    }
    b64(raw, sizeof raw, ws->key, 24);
    memcpy(in, ws->key, 24);
    memcpy(in + 24, WS_GUID, sizeof WS_GUID - 1);
    if (cfg->crypto->hash(cfg->crypto->ctx, KL_HASH_SHA1, in, sizeof in, sha) != 0)
        return KL_ERR_ARG;
    b64(sha, 20, ws->accept, sizeof ws->accept);
    ws->rerr = ws->werr = KL_OK;
    ws->hneed = 2;
    return KL_OK;
}

typedef struct {
    uint8_t *buf;
    size_t cap, len;
    int bad;
} out_t;

static void put(out_t *o, const char *s)
{
    size_t n = strlen(s);
    if (o->bad || n > o->cap - o->len) {
        o->bad = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

int kl_ws_request(kl_ws_t *ws, uint8_t *out, size_t cap, size_t *len)
{
    out_t o = {out, cap, 0, 0};
    if (len)
        *len = 0;
    if (!ws || !len || (!out && cap))
        return KL_ERR_ARG;
    if (ws->open)
        return KL_ERR_STATE;
    if (ws->rerr)
        return ws->rerr;
    put(&o, "GET ");
    put(&o, ws->cfg.path);
    put(&o, " HTTP/1.1\r\nHost: ");
    put(&o, ws->cfg.host);
    if (ws->cfg.port && ws->cfg.port != (ws->cfg.secure ? 443 : 80)) {
        char num[7];
        unsigned v = ws->cfg.port;
        size_t i = sizeof num - 1;
        num[i] = '\0';
        do {
            num[--i] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        num[--i] = ':';
        put(&o, num + i);
    }
    put(&o, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    put(&o, ws->key);
    put(&o, "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n");
    if (ws->cfg.origin) {
        put(&o, "Origin: ");
        put(&o, ws->cfg.origin);
        put(&o, "\r\n");
    }
    put(&o, "\r\n");
    if (o.bad)
        return KL_ERR_TOO_LARGE;
    *len = o.len;
    return KL_OK;
}

/* ---- the upgrade response ------------------------------------------------------ */

static int hs_fail(kl_ws_t *ws)
{
    ws->rerr = KL_ERR_WS_HANDSHAKE;
    return ws->rerr;
}

static int digit(char c) { return c >= '0' && c <= '9'; }

/* One complete line of the head, CR LF stripped. */
static int hs_line(kl_ws_t *ws)
{
    const char *l = ws->u.line;
    size_t n = ws->line_len, c = 0, v, e;
    int trunc = (ws->hs & H_TRUNC) != 0;
    if (!(ws->hs & H_STATUS)) {
        if (trunc || n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || !digit(l[7]) || l[8] != ' ' || !digit(l[9]) ||
            !digit(l[10]) || !digit(l[11]) || (n > 12 && l[12] != ' '))
            return hs_fail(ws);
        ws->http_status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
        if (ws->http_status != 101)
            return hs_fail(ws);
        ws->hs |= H_STATUS;
        return KL_OK;
    }
    while (c < n && l[c] != ':' && l[c] != ' ' && l[c] != '\t')
        c++;
    if (c == n && trunc)
        return KL_OK; /* a name longer than the line buffer: none we read */
    if (c == 0 || c == n || l[c] != ':')
        return hs_fail(ws); /* also obs-fold (a line starting with whitespace) */
    v = c + 1;
    while (v < n && (l[v] == ' ' || l[v] == '\t'))
        v++;
    e = n;
    while (e > v && (l[e - 1] == ' ' || l[e - 1] == '\t'))
        e--;
    if (ieq(l, c, "upgrade")) {
        if (trunc || !has_token(l + v, e - v, "websocket"))
            return hs_fail(ws);
        ws->hs |= H_UPGRADE;
    } else if (ieq(l, c, "connection")) {
        if (trunc)
            return hs_fail(ws);
        if (has_token(l + v, e - v, "upgrade"))
            ws->hs |= H_CONNECTION;
    } else if (ieq(l, c, "sec-websocket-accept")) {
        if (trunc || e - v != sizeof ws->accept || !kl_equal_ct((const uint8_t *)l + v, (const uint8_t *)ws->accept,
                                                               sizeof ws->accept))
            return hs_fail(ws);
        ws->hs |= H_ACCEPT;
    } else if (ieq(l, c, "sec-websocket-protocol")) {
        if (trunc || e - v != 4 || memcmp(l + v, "xmpp", 4) != 0)
            return hs_fail(ws);
        ws->hs |= H_PROTOCOL;
    } else if (ieq(l, c, "sec-websocket-extensions")) {
        if (trunc || e > v)
            return hs_fail(ws); /* we asked for none */
    }
    return KL_OK;
}

/* Feed head bytes. 1: the head is complete (*used bytes were its last), 0:
 * more needed (all used), < 0: refused. */
static int hs_feed(kl_ws_t *ws, const uint8_t *in, size_t len, size_t *used)
{
    size_t i = 0;
    while (i < len) {
        uint8_t ch = in[i++];
        if (++ws->head_bytes > KL_WS_HEAD_MAX)
            return hs_fail(ws);
        if (ch == '\n') {
            int r;
            ws->hs &= (uint8_t)~H_CR;
            if (ws->line_len == 0) { /* (H_TRUNC comes only with a full line buffer) */
                if ((ws->hs & H_ALL) != H_ALL)
                    return hs_fail(ws); /* an empty status line, or a header missing */
                ws->open = 1;
                ws->hneed = 2;
                memset(&ws->u, 0, sizeof ws->u);
                *used = i;
                return 1;
            }
            if ((r = hs_line(ws)) < 0)
                return r;
            ws->line_len = 0;
            ws->hs &= (uint8_t)~H_TRUNC;
            continue;
        }
        if ((ws->hs & H_CR) || ch == 0)
            return hs_fail(ws); /* a CR not before LF, or a NUL */
        if (ch == '\r') {
            ws->hs |= H_CR;
            continue;
        }
        if (ws->line_len < KL_WS_LINE_MAX)
            ws->u.line[ws->line_len++] = (char)ch;
        else
            ws->hs |= H_TRUNC;
    }
    *used = i;
    return 0;
}

/* ---- inbound frames ------------------------------------------------------------- */

/* An inbound protocol error: sticky, and a close frame for the server
 * (1002 protocol error, 1009 too big) unless ours is already under way.
 * Frames are read only while there is no error (kl_ws_read()), so this is
 * the first one, and no close came from the server yet (its close sets
 * one, KL_ERR_WS_CLOSED). */
static void frame_fail(kl_ws_t *ws, int st)
{
    ws->rerr = st;
    if (!ws->close_sent && !ws->close_pending && !ws->s_close) {
        ws->close_pending = 1;
        ws->close_out = st == KL_ERR_WS_TOO_LARGE ? 1009 : 1002;
    }
    ws->pong_pending = ws->ping_pending = 0;
}

/* Does p[0..n) (n grows by one per call) begin "<open" or "<close" and a
 * delimiter? 1 yes, 0 not yet known, -1 no. */
static int framing_prefix(const uint8_t *p, size_t n)
{
    static const char *const names[2] = {"<open", "<close"};
    int i, r = -1;
    for (i = 0; i < 2; i++) {
        size_t l = strlen(names[i]);
        if (n <= l) {
            if (memcmp(p, names[i], n) == 0)
                r = 0;
        } else if (n == l + 1 && memcmp(p, names[i], l) == 0 && (is_ws(p[l]) || p[l] == '/' || p[l] == '>')) {
            return 1;
        }
    }
    return r;
}

/* A collected message u.e[KL_WS_SLACK..+c_len) that began "<open" or
 * "<close": if it is exactly one element of the framing namespace (then
 * only whitespace), its translation goes to u.e[0..), else the message as
 * it came. Done in place: the stream header's fixed part (84 bytes) is
 * shorter than KL_WS_SLACK + "<open", and each attribute copied (` name=`
 * + quoted value) is no longer than it was in the input, so every byte is
 * written before (never after) the input bytes still to be read. */
static void translate(kl_ws_t *ws)
{
    uint8_t *src = ws->u.e + KL_WS_SLACK;
    size_t n = ws->c_len, used = 0, off, pos = 0, o;
    kl_xml_t x;
    kl_xml_token_t t;
    kl_slice_t attrs, name, val;
    int is_open;
    ws->e_pos = KL_WS_SLACK;
    ws->e_end = (uint16_t)(KL_WS_SLACK + n); /* by default: as it came */
    kl_xml_init(&x);
    if (kl_xml_next(&x, src, n, &used, &t) != KL_XML_START || !kl_slice_eq(t.ns, NS_FRAMING))
        return; /* (a first START is at depth 1) */
    is_open = kl_slice_eq(t.local, "open"); /* else "close": framing_prefix() saw one of them */
    attrs = t.attrs;
    for (off = used;; off += used) {
        int r = kl_xml_next(&x, src + off, n - off, &used, &t);
        if (r == KL_XML_END) { /* the element's own: a child returned below */
            off += used;
            break;
        }
        if (r != KL_XML_TEXT)
            return; /* a child element, or not well-formed */
    }
    if (kl_xml_next(&x, src + off, n - off, &used, &t) != KL_XML_NEED_MORE)
        return; /* more than one element */
    if (!is_open) {
        /* A <close/> with no stream open (the answer to our <open/> may be
         * one, RFC 7395 3.4, 3.6.1: see-other-uri): a header first, so that
         * the engine sees a stream the server closed, not a stray end tag. */
        ws->see_other = (uint8_t)(ws->see_other | kl_xml_attr_get(attrs, "see-other-uri", &val));
        o = 0;
        if (!ws->in_stream) {
            memcpy(ws->u.e, synth_header, sizeof synth_header - 1);
            memcpy(ws->u.e + sizeof synth_header - 1, " version='1.0'>", 15);
            o = sizeof synth_header - 1 + 15;
        }
        memcpy(ws->u.e + o, synth_end, sizeof synth_end - 1);
        ws->e_pos = 0;
        ws->e_end = (uint16_t)(o + sizeof synth_end - 1);
        ws->in_stream = 0;
        return;
    }
    ws->in_stream = 1;
    o = sizeof synth_header - 1;
    memcpy(ws->u.e, synth_header, o);
    while (kl_xml_attr_next(attrs, &pos, &name, &val)) {
        uint8_t q = val.p[-1];
        if (kl_slice_eq(name, "xmlns") || (name.len > 6 && memcmp(name.p, "xmlns:", 6) == 0))
            continue;
        ws->u.e[o++] = ' ';
        memmove(ws->u.e + o, name.p, name.len);
        o += name.len;
        ws->u.e[o++] = '=';
        ws->u.e[o++] = q;
        memmove(ws->u.e + o, val.p, val.len);
        o += val.len;
        ws->u.e[o++] = q;
    }
    ws->u.e[o++] = '>';
    ws->e_pos = 0;
    ws->e_end = (uint16_t)o;
}

/* The text message ended (its last frame is done). */
static void msg_end(kl_ws_t *ws)
{
    ws->msg_open = 0;
    ws->msg_len = 0;
    if (ws->m == M_COLLECT) {
        translate(ws);
    } else if (ws->m == M_START && ws->c_len) {
        ws->e_pos = KL_WS_SLACK; /* held bytes that never became <open: as they came */
        ws->e_end = (uint16_t)(KL_WS_SLACK + ws->c_len);
    }
    ws->m = M_START;
    ws->c_len = 0;
}

static int sendable(uint16_t code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

static void on_close(kl_ws_t *ws)
{
    if (ws->cpos == 1) {
        frame_fail(ws, KL_ERR_WS_FRAME); /* a payload too short for a status code */
        return;
    }
    ws->close_code = ws->cpos >= 2 ? (uint16_t)(ws->ctl[0] << 8 | ws->ctl[1]) : 0;
    if (!ws->close_sent && !ws->close_pending && !ws->s_close) {
        /* RFC 6455 5.5.1: answer once, echoing the code */
        ws->close_pending = 1;
        ws->close_out = ws->close_code == 0 ? 0 : sendable(ws->close_code) ? ws->close_code : 1002;
    }
    ws->pong_pending = ws->ping_pending = 0;
    ws->rerr = KL_ERR_WS_CLOSED; /* frames are read only while there is no error */
}

static void frame_done(kl_ws_t *ws)
{
    ws->in_frame = 0;
    ws->hlen = 0;
    ws->hneed = 2;
    switch (ws->op) {
    case OP_PING:
        if (!ws->close_pending && !ws->s_close && !ws->close_sent) {
            ws->pong_len = ws->cpos;
            ws->pong_pending = 1;
        }
        break;
    case OP_PONG:
        ws->pongs++;
        break;
    case OP_CLOSE:
        on_close(ws);
        break;
    default:
        if (ws->fin)
            msg_end(ws);
    }
}

/* The first two header bytes are in: everything they decide. */
static void header_start(kl_ws_t *ws)
{
    uint8_t b0 = ws->hbuf[0], b1 = ws->hbuf[1], op = b0 & 15, n7 = b1 & 127;
    int ok;
    if (op >= OP_CLOSE)
        ok = op <= OP_PONG && (b0 & 0x80) && n7 <= 125; /* control: whole, short */
    else if (op == OP_CONT)
        ok = ws->msg_open;
    else
        ok = op == OP_TEXT && !ws->msg_open; /* binary and reserved opcodes: no */
    if (!ok || (b0 & 0x70) || (b1 & 0x80)) {  /* RSV bits; a masked server frame */
        frame_fail(ws, KL_ERR_WS_FRAME);
        return;
    }
    ws->hneed = n7 == 126 ? 4 : n7 == 127 ? 10 : 2;
}

/* The whole header is in. */
static void header_done(kl_ws_t *ws)
{
    const uint8_t *h = ws->hbuf;
    uint32_t n = h[1] & 127;
    if (n == 126) {
        n = (uint32_t)h[2] << 8 | h[3];
    } else if (n == 127) {
        if (h[2] & 0x80) {
            frame_fail(ws, KL_ERR_WS_FRAME); /* the most significant bit MUST be 0 */
            return;
        }
        if (h[2] | h[3] | h[4] | h[5]) {
            frame_fail(ws, KL_ERR_WS_TOO_LARGE);
            return;
        }
        n = (uint32_t)h[6] << 24 | (uint32_t)h[7] << 16 | (uint32_t)h[8] << 8 | h[9];
    }
    ws->op = h[0] & 15;
    ws->fin = h[0] >> 7;
    if (ws->op < OP_CLOSE) {
        if (n > KL_WS_MESSAGE_MAX - ws->msg_len) {
            frame_fail(ws, KL_ERR_WS_TOO_LARGE);
            return;
        }
        ws->msg_len += n;
        if (ws->op == OP_TEXT) {
            ws->msg_open = 1;
            ws->m = M_START;
            ws->c_len = 0;
        }
    } else if (ws->op == OP_PING) {
        ws->pong_pending = 0; /* the newest ping is the one answered */
    }
    ws->left = n;
    ws->cpos = 0;
    ws->in_frame = 1;
    if (!n)
        frame_done(ws);
}

/* Payload bytes in[0..n) of the open text message. Returns how many were
 * taken: fewer than n when out is full, when held bytes must go out first
 * (e_pos < e_end), or on an error (ws->rerr). */
static size_t content(kl_ws_t *ws, const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *o)
{
    size_t k = 0, t;
    while (k < n) {
        switch (ws->m) {
        case M_START:
            if (ws->c_len == 0 && is_ws(in[k])) {
                if (*o == cap)
                    return k;
                out[(*o)++] = in[k++];
                continue;
            }
            ws->u.e[KL_WS_SLACK + ws->c_len++] = in[k++];
            switch (framing_prefix(ws->u.e + KL_WS_SLACK, ws->c_len)) {
            case -1:
                ws->m = M_PASS;
                ws->e_pos = KL_WS_SLACK;
                ws->e_end = (uint16_t)(KL_WS_SLACK + ws->c_len);
                ws->c_len = 0;
                return k;
            case 1:
                ws->m = M_COLLECT;
                break;
            default:
                break;
            }
            continue;
        case M_PASS:
            t = min2(n - k, cap - *o);
            if (!t)
                return k;
            memcpy(out + *o, in + k, t);
            *o += t;
            k += t;
            continue;
        default: /* M_COLLECT */
            t = n - k;
            if (t > (size_t)KL_WS_OPEN_MAX - ws->c_len) {
                frame_fail(ws, KL_ERR_WS_TOO_LARGE);
                return k;
            }
            memcpy(ws->u.e + KL_WS_SLACK + ws->c_len, in + k, t);
            ws->c_len = (uint16_t)(ws->c_len + t);
            k += t;
        }
    }
    return k;
}

int kl_ws_read(kl_ws_t *ws, const uint8_t *in, size_t len, size_t *consumed, uint8_t *out, size_t cap,
               size_t *produced)
{
    size_t i = 0, o = 0;
    uint8_t none[1];
    if (consumed)
        *consumed = 0;
    if (produced)
        *produced = 0;
    if (!ws || !consumed || !produced || (!in && len) || (!out && cap))
        return KL_ERR_ARG;
    if (!out)
        out = none; /* cap is 0: nothing is written, and no NULL reaches memcpy */
    if (ws->rerr) {
        ws->rerr_told = 1;
        return ws->rerr;
    }
    if (!ws->open) {
        int r = hs_feed(ws, in, len, &i);
        if (r < 0) {
            ws->rerr_told = 1;
            return r;
        }
        if (!r) {
            *consumed = i;
            return KL_OK;
        }
    }
    while (!ws->rerr) {
        size_t t;
        if (ws->e_pos < ws->e_end) {
            t = min2((size_t)(ws->e_end - ws->e_pos), cap - o);
            memcpy(out + o, ws->u.e + ws->e_pos, t);
            o += t;
            ws->e_pos = (uint16_t)(ws->e_pos + t);
            if (ws->e_pos < ws->e_end)
                break; /* out is full */
            ws->e_pos = ws->e_end = 0;
        }
        if (i == len)
            break;
        if (!ws->in_frame) {
            ws->hbuf[ws->hlen++] = in[i++];
            if (ws->hlen == 2)
                header_start(ws);
            if (!ws->rerr && ws->hlen == ws->hneed)
                header_done(ws);
            continue;
        }
        t = min2(len - i, ws->left);
        if (ws->op >= OP_CLOSE) {
            size_t k;
            for (k = 0; k < t; k++, ws->cpos++) {
                if (ws->op == OP_PING)
                    ws->pong[ws->cpos] = in[i + k];
                else if (ws->op == OP_CLOSE && ws->cpos < 2)
                    ws->ctl[ws->cpos] = in[i + k];
            }
        } else {
            size_t k = content(ws, in + i, t, out, cap, &o);
            if (k < t && !ws->rerr && ws->e_pos == ws->e_end) {
                i += k;
                ws->left -= (uint32_t)k;
                break; /* out is full */
            }
            t = k;
        }
        i += t;
        ws->left -= (uint32_t)t;
        if (!ws->left) /* (an error in content() leaves bytes of the frame) */
            frame_done(ws);
    }
    *consumed = i;
    *produced = o;
    if (ws->rerr && !o) {
        ws->rerr_told = 1;
        return ws->rerr;
    }
    return KL_OK;
}

int kl_ws_read_pending(const kl_ws_t *ws)
{
    return ws && (ws->e_pos < ws->e_end || (ws->rerr && !ws->rerr_told));
}

/* ---- outbound ------------------------------------------------------------------- */

/* The payload's first `body` bytes are at stage[HDR]; the frame carries n
 * bytes (n > body: the rest is streamed from the input). Puts the header
 * with a fresh mask right before them and masks them. */
static int finalize(kl_ws_t *ws, uint8_t op, size_t n, size_t body)
{
    uint8_t h[HDR];
    size_t hl = 2, k;
    if (ws->cfg.random(ws->cfg.random_ctx, ws->mask, 4) != 0)
        return KL_ERR_NO_ENTROPY;
    h[0] = (uint8_t)(0x80 | op);
    if (n < 126) {
        h[1] = (uint8_t)(0x80 | n);
    } else if (n <= 0xffff) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        uint64_t v = n;
        h[1] = 0x80 | 127;
        for (k = 0; k < 8; k++)
            h[2 + k] = (uint8_t)(v >> (56 - 8 * k));
        hl = 10;
    }
    memcpy(h + hl, ws->mask, 4);
    hl += 4;
    memcpy(ws->stage + HDR - hl, h, hl);
    for (k = 0; k < body; k++)
        ws->stage[HDR + k] ^= ws->mask[k & 3];
    ws->s_pos = (uint16_t)(HDR - hl);
    ws->s_len = (uint16_t)(HDR + body);
    ws->m_pos = (uint8_t)(body & 3);
    return KL_OK;
}

static int stage_frame(kl_ws_t *ws, uint8_t op, const void *p, size_t n)
{
    memcpy(ws->stage + HDR, p, n);
    return finalize(ws, op, n, n);
}

/* End (exclusive) of the markup at p[0] == '<' (quotes and CDATA known), 0 if incomplete. */
static size_t markup_end(const uint8_t *p, size_t n)
{
    size_t i;
    uint8_t quote = 0;
    if (n >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
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

/* End of the element whose start tag is at p[0] (not an end tag, comment
 * or declaration: next_elem() took those): 0 if incomplete. */
static size_t elem_end(const uint8_t *p, size_t n)
{
    size_t i = 0;
    long depth = 0;
    for (;;) {
        const uint8_t *lt;
        size_t e = markup_end(p + i, n - i);
        if (!e)
            return 0;
        if (p[i + 1] == '/')
            depth--;
        else if (p[i + 1] != '!' && p[i + 1] != '?' && p[i + e - 2] != '/')
            depth++;
        i += e;
        if (depth == 0)
            return i; /* it began at 1 (0 if self-closing): never below 0 before 0 */
        lt = memchr(p + i, '<', n - i);
        if (!lt)
            return 0;
        i = (size_t)(lt - p);
    }
}

/* The next attribute of the start tag p[0..e) from *j: its name
 * p[*na..*na + *nl) and its value with the quotes p[*va..*j). 0 at the end.
 * p[e - 1] is its '>' (markup_end()) and *j < e: the scans up to a value's
 * opening quote stop at that '>' at the latest. */
static int tag_attr(const uint8_t *p, size_t e, size_t *j, size_t *na, size_t *nl, size_t *va)
{
    size_t i = *j;
    uint8_t q;
    while (is_ws(p[i]))
        i++;
    if (p[i] == '/' || p[i] == '>')
        return 0;
    *na = i;
    while (p[i] != '=' && !is_ws(p[i]) && p[i] != '/' && p[i] != '>')
        i++;
    *nl = i - *na;
    while (p[i] != '\'' && p[i] != '"') {
        if (p[i] == '>')
            return 0;
        i++;
    }
    *va = i;
    q = p[i++];
    while (i < e && p[i] != q)
        i++;
    if (i >= e)
        return 0;
    *j = i + 1;
    return 1;
}

static int span_is(const uint8_t *p, size_t n, const char *s) { return strlen(s) == n && memcmp(p, s, n) == 0; }

/* Name of the tag at p[at..e) is `name`. */
static int tag_is(const uint8_t *p, size_t e, size_t at, const char *name)
{
    size_t l = strlen(name);
    return e > at + l && memcmp(p + at, name, l) == 0 && (is_ws(p[at + l]) || p[at + l] == '>' || p[at + l] == '/');
}

/* The engine's stream header p[0..e) as an <open/> frame: its attributes
 * other than namespace declarations, as written. */
static int stage_open(kl_ws_t *ws, const uint8_t *p, size_t e)
{
    uint8_t *s = ws->stage + HDR;
    size_t cap = KL_WS_STAGE_MAX - HDR, o = sizeof open_start - 1, j = 1 + 13, na, nl, va;
    memcpy(s, open_start, o);
    while (tag_attr(p, e, &j, &na, &nl, &va)) {
        size_t vl = j - va;
        if (span_is(p + na, nl, "xmlns") || (nl > 6 && memcmp(p + na, "xmlns:", 6) == 0))
            continue;
        if (1 + nl + 1 + vl > cap - 2 - o)
            return KL_ERR_WS_TOO_LARGE;
        s[o++] = ' ';
        memcpy(s + o, p + na, nl);
        o += nl;
        s[o++] = '=';
        memcpy(s + o, p + va, vl);
        o += vl;
    }
    s[o++] = '/';
    s[o++] = '>';
    return finalize(ws, OP_TEXT, o, o);
}

/* The engine's output at p[0..n), p[0] == '<'. 1: done (*used bytes
 * consumed: a declaration or a stream tag translated; 0 for an element,
 * whose frame header is staged and whose bytes now stream), 0: incomplete,
 * < 0: not the engine's kind of output. */
static int next_elem(kl_ws_t *ws, const uint8_t *p, size_t n, size_t *used)
{
    size_t e = markup_end(p, n), end, j, na, nl, va, nlen;
    int has_ns = 0, has_stream = 0, r;
    *used = 0;
    if (!e)
        return 0;
    if (p[1] == '?') {
        *used = e; /* <?xml …?> */
        return 1;
    }
    if (tag_is(p, e, 1, "stream:stream")) {
        if ((r = stage_open(ws, p, e)) < 0)
            return r;
        *used = e;
        return 1;
    }
    if (tag_is(p, e, 2, "stream:stream") && p[1] == '/') {
        if ((r = stage_frame(ws, OP_TEXT, close_el, sizeof close_el - 1)) < 0)
            return r;
        *used = e;
        return 1;
    }
    if (p[1] == '/' || p[1] == '!' || e < 3)
        return KL_ERR_ARG; /* an end tag, CDATA or a comment at the top level */
    end = elem_end(p, n);
    if (!end)
        return 0;
    for (j = 1; !is_ws(p[j]) && p[j] != '/' && p[j] != '>'; j++)
        ; /* p[e - 1] is '>' */
    nlen = j - 1;
    while (tag_attr(p, e, &j, &na, &nl, &va)) {
        has_ns |= span_is(p + na, nl, "xmlns");
        has_stream |= span_is(p + na, nl, "xmlns:stream");
    }
    ws->ins = decls;
    ws->ins_len = 0;
    if (!has_ns)
        ws->ins_len = DECL_XMLNS;
    if (!has_stream && nlen > 7 && memcmp(p + 1, "stream:", 7) == 0) {
        if (has_ns)
            ws->ins = decls + DECL_XMLNS;
        ws->ins_len = (uint8_t)(ws->ins_len + sizeof decls - 1 - DECL_XMLNS);
    }
    ws->ins_pos = 0;
    ws->d_ins_at = 1 + nlen;
    if ((r = finalize(ws, OP_TEXT, end + ws->ins_len, 0)) < 0)
        return r;
    ws->d_left = end;
    return 1;
}

/* Stream the current element's bytes (and its inserted declaration), masked. */
static void stream(kl_ws_t *ws, const uint8_t *xml, size_t len, size_t *i, uint8_t *out, size_t cap, size_t *o)
{
    while (ws->d_left && *o < cap) {
        size_t t, k;
        if (ws->ins_pos < ws->ins_len && ws->d_ins_at == 0) {
            out[(*o)++] = (uint8_t)(ws->ins[ws->ins_pos++] ^ ws->mask[ws->m_pos]);
            ws->m_pos = (ws->m_pos + 1) & 3;
            continue;
        }
        if (*i == len)
            return; /* the rest of the element was not given */
        t = min2(min2(len - *i, cap - *o), ws->d_left);
        if (ws->ins_pos < ws->ins_len && t > ws->d_ins_at)
            t = ws->d_ins_at;
        for (k = 0; k < t; k++)
            out[*o + k] = xml[*i + k] ^ ws->mask[(ws->m_pos + k) & 3];
        *o += t;
        *i += t;
        ws->d_left -= t;
        ws->m_pos = (uint8_t)((ws->m_pos + t) & 3);
        if (ws->ins_pos < ws->ins_len)
            ws->d_ins_at -= t;
    }
}

int kl_ws_write(kl_ws_t *ws, const uint8_t *xml, size_t len, size_t *consumed, uint8_t *out, size_t cap,
                size_t *produced)
{
    size_t i = 0, o = 0, used;
    int r = KL_OK;
    uint8_t none[1];
    if (consumed)
        *consumed = 0;
    if (produced)
        *produced = 0;
    if (!ws || !consumed || !produced || (!xml && len) || (!out && cap))
        return KL_ERR_ARG;
    if (!out)
        out = none; /* cap is 0: nothing is written, and no NULL reaches memcpy */
    if (!ws->open)
        return ws->rerr; /* KL_OK while the handshake is under way */
    if (ws->werr)
        return ws->werr;
    for (;;) {
        if (ws->s_pos < ws->s_len) {
            size_t t = min2((size_t)(ws->s_len - ws->s_pos), cap - o);
            memcpy(out + o, ws->stage + ws->s_pos, t);
            o += t;
            ws->s_pos = (uint16_t)(ws->s_pos + t);
            if (ws->s_pos < ws->s_len)
                break; /* out is full */
            ws->s_pos = ws->s_len = 0;
            if (ws->s_close) {
                ws->s_close = 0;
                ws->close_sent = 1;
            }
        }
        if (ws->d_left) {
            stream(ws, xml, len, &i, out, cap, &o);
            if (ws->d_left)
                break;
            continue;
        }
        if (ws->close_sent) {
            i = len; /* nothing goes out after our close frame */
            break;
        }
        if (ws->close_pending || ws->pong_pending || ws->ping_pending) {
            /* control frames, at a frame boundary: close, else pong, else ping */
            uint8_t code[2], op = OP_PING;
            const uint8_t *pl = code;
            size_t pn = 0;
            if (ws->close_pending) {
                code[0] = (uint8_t)(ws->close_out >> 8);
                code[1] = (uint8_t)ws->close_out;
                op = OP_CLOSE;
                pn = ws->close_out ? 2 : 0;
            } else if (ws->pong_pending) {
                op = OP_PONG;
                pl = ws->pong;
                pn = ws->pong_len;
            }
            if ((r = stage_frame(ws, op, pl, pn)) < 0)
                break;
            if (op == OP_CLOSE) {
                ws->s_close = 1;
                ws->close_pending = ws->pong_pending = ws->ping_pending = 0;
            } else if (op == OP_PONG) {
                ws->pong_pending = 0;
            } else {
                ws->ping_pending = 0;
            }
            continue;
        }
        while (i < len && is_ws(xml[i]))
            i++; /* no whitespace frames (Prosody refuses a message not starting with '<') */
        if (i == len)
            break;
        if (xml[i] != '<') {
            r = KL_ERR_ARG; /* text at the top level */
            break;
        }
        r = next_elem(ws, xml + i, len - i, &used);
        if (r <= 0)
            break;
        i += used;
        r = KL_OK;
    }
    *consumed = i;
    *produced = o;
    if (r < 0) {
        ws->werr = r;
        return o ? KL_OK : r;
    }
    return KL_OK;
}

int kl_ws_want_write(const kl_ws_t *ws)
{
    if (!ws || !ws->open || ws->werr)
        return 0;
    return ws->s_pos < ws->s_len || ws->d_left != 0 ||
           (!ws->close_sent && (ws->close_pending || ws->pong_pending || ws->ping_pending));
}

int kl_ws_ping(kl_ws_t *ws)
{
    if (!ws || kl_ws_state(ws) != KL_WS_OPEN)
        return KL_ERR_STATE;
    ws->ping_pending = 1;
    return KL_OK;
}

int kl_ws_close(kl_ws_t *ws, uint16_t code)
{
    if (code && !sendable(code))
        return KL_ERR_ARG;
    if (!ws || !ws->open || ws->close_pending || ws->s_close || ws->close_sent)
        return KL_ERR_STATE;
    ws->close_pending = 1;
    ws->close_out = code ? code : 1000;
    return KL_OK;
}

kl_ws_state_t kl_ws_state(const kl_ws_t *ws)
{
    if (!ws)
        return KL_WS_CLOSED;
    if (!ws->open)
        return ws->rerr ? KL_WS_CLOSED : KL_WS_CONNECTING;
    if (ws->close_sent && ws->rerr)
        return KL_WS_CLOSED;
    /* (an inbound error always queues our close: one of these is set) */
    if (ws->close_sent || ws->close_pending || ws->s_close)
        return KL_WS_CLOSING;
    return KL_WS_OPEN;
}
