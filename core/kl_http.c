/* kinglet — minimal HTTP/1.1 client codec (see kl_http.h). */
#include "kinglet/kl_http.h"

#include "kl_string.h"

enum {
    S_STATUS = 0, /* collecting the status line */
    S_HEADER,     /* collecting header lines */
    S_BODY_LEN,   /* Content-Length bytes */
    S_BODY_EOF,   /* until the connection ends */
    S_CHUNK_SIZE, /* chunk-size line */
    S_CHUNK_DATA,
    S_CHUNK_END,  /* the CRLF after a chunk's data */
    S_TRAILER,    /* trailer lines after the last chunk */
    S_DONE
};

/* ---- request ------------------------------------------------------------- */

typedef struct {
    uint8_t *buf;
    size_t cap, len;
    int bad;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->bad || n > o->cap - o->len) {
        o->bad = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void puts_(out_t *o, const char *s) { put(o, s, strlen(s)); }

static int has_crlf(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n' || *s == ' ')
            return 1;
    return 0;
}

int kl_http_write_request(uint8_t *buf, size_t cap, const char *host, const char *path,
                          size_t content_length)
{
    out_t o = {buf, cap, 0, 0};
    char num[24];
    size_t i = sizeof num;
    if (!buf || !host || !path || !*host || *path != '/' || has_crlf(host) || has_crlf(path))
        return KL_ERR_ARG;
    do {
        num[--i] = (char)('0' + content_length % 10);
        content_length /= 10;
    } while (content_length);
    puts_(&o, "POST ");
    puts_(&o, path);
    puts_(&o, " HTTP/1.1\r\nHost: ");
    puts_(&o, host);
    puts_(&o, "\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: ");
    put(&o, num + i, sizeof num - i);
    puts_(&o, "\r\nConnection: keep-alive\r\n\r\n");
    if (o.bad || o.len > 0x7fffffff)
        return KL_ERR_TOO_LARGE;
    return (int)o.len;
}

/* ---- response ------------------------------------------------------------ */

void kl_http_resp_init(kl_http_resp_t *r, uint8_t *body, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->body = body;
    r->body_cap = body ? cap : 0;
    r->state = S_STATUS;
}

static int lower(int ch) { return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch; }

/* Case-insensitive equality of line[0..n) with s. */
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

/* Does the comma-separated list p[0..n) contain token s (case-insensitive)? */
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

static int fail(kl_http_resp_t *r, int st)
{
    r->error = st;
    return st;
}

static int parse_status(kl_http_resp_t *r)
{
    const char *l = r->line;
    size_t n = r->line_len;
    if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || l[7] < '0' || l[7] > '9' || l[8] != ' ' ||
        l[9] < '1' || l[9] > '9' || l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9' ||
        (n > 12 && l[12] != ' '))
        return fail(r, KL_ERR_HTTP_SYNTAX);
    r->http10 = l[7] == '0';
    r->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    r->close = r->http10; /* HTTP/1.0: closes unless keep-alive */
    r->chunked = 0;
    r->has_length = 0;
    r->content_length = 0;
    r->state = S_HEADER;
    return 0;
}

static int is_tchar(int ch)
{
    static const char sep[] = "!#$%&'*+-.^_`|~";
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           memchr(sep, ch, sizeof sep - 1) != NULL; /* without its NUL: NUL is not one */
}

static int parse_header(kl_http_resp_t *r)
{
    const char *l = r->line;
    size_t n = r->line_len, c = 0, v, e;
    while (c < n && is_tchar((unsigned char)l[c]))
        c++;
    if (c == 0 || c >= n || l[c] != ':')
        return fail(r, KL_ERR_HTTP_SYNTAX); /* also obs-fold (leading whitespace) */
    v = c + 1;
    while (v < n && (l[v] == ' ' || l[v] == '\t'))
        v++;
    e = n;
    while (e > v && (l[e - 1] == ' ' || l[e - 1] == '\t'))
        e--;
    if (ieq(l, c, "content-length")) {
        size_t len = 0, i;
        if (e == v)
            return fail(r, KL_ERR_HTTP_SYNTAX);
        for (i = v; i < e; i++) {
            if (l[i] < '0' || l[i] > '9' || len > ((size_t)-1 - 9) / 10)
                return fail(r, KL_ERR_HTTP_SYNTAX);
            len = len * 10 + (size_t)(l[i] - '0');
        }
        if (r->has_length && r->content_length != len)
            return fail(r, KL_ERR_HTTP_SYNTAX);
        r->has_length = 1;
        r->content_length = len;
    } else if (ieq(l, c, "transfer-encoding")) {
        if (ieq(l + v, e - v, "chunked"))
            r->chunked = 1;
        else if (!ieq(l + v, e - v, "identity"))
            return fail(r, KL_ERR_HTTP_UNSUPPORTED);
    } else if (ieq(l, c, "connection")) {
        if (has_token(l + v, e - v, "close"))
            r->close = 1;
        else if (has_token(l + v, e - v, "keep-alive"))
            r->close = 0;
    }
    return 0;
}

static int end_of_head(kl_http_resp_t *r)
{
    if (r->status < 200) {
        /* 1xx interim response: the real one follows */
        r->state = S_STATUS;
        r->head_bytes = 0;
        return 0;
    }
    if (r->status == 204 || r->status == 304) {
        r->state = S_DONE;
        return 1;
    }
    if (r->chunked) {
        r->state = S_CHUNK_SIZE;
        return 0;
    }
    if (r->has_length) {
        if (r->content_length > r->body_cap)
            return fail(r, KL_ERR_HTTP_BODY_TOO_LARGE);
        r->state = r->content_length ? S_BODY_LEN : S_DONE;
        return r->state == S_DONE;
    }
    r->state = S_BODY_EOF;
    r->close = 1;
    return 0;
}

static int parse_chunk_size(kl_http_resp_t *r)
{
    size_t i = 0, n = r->line_len, sz = 0;
    int digits = 0;
    for (; i < n; i++) {
        int ch = lower((unsigned char)r->line[i]), d;
        if (ch >= '0' && ch <= '9')
            d = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            d = ch - 'a' + 10;
        else
            break;
        if (sz > ((size_t)-1 >> 4))
            return fail(r, KL_ERR_HTTP_SYNTAX);
        sz = (sz << 4) | (size_t)d;
        digits++;
    }
    while (i < n && (r->line[i] == ' ' || r->line[i] == '\t'))
        i++;
    if (!digits || (i < n && r->line[i] != ';'))
        return fail(r, KL_ERR_HTTP_SYNTAX);
    if (sz > r->body_cap - r->body_len)
        return fail(r, KL_ERR_HTTP_BODY_TOO_LARGE);
    /* chunk_left is stored in each branch apart, so that a state in
     * S_CHUNK_DATA never carries a chunk_left of 0 (the invariant the body
     * copy in kl_http_resp_feed relies on; analysers that do not relate
     * r->state and r->chunk_left keep it this way, see tests/prove) */
    if (sz) {
        r->state = S_CHUNK_DATA;
        r->chunk_left = sz;
    } else {
        r->state = S_TRAILER;
        r->chunk_left = 0;
        r->head_bytes = 0; /* the trailer gets the head's bound of its own */
    }
    return 0;
}

/* A complete line in r->line (CR stripped). 1: response done. */
static int on_line(kl_http_resp_t *r)
{
    switch (r->state) {
    case S_STATUS:
        if (r->line_len == 0 && r->head_bytes <= 2)
            return 0; /* tolerate a stray CRLF before the status line */
        return parse_status(r);
    case S_HEADER:
        if (r->line_len == 0)
            return end_of_head(r);
        return parse_header(r);
    case S_CHUNK_SIZE:
        return parse_chunk_size(r);
    case S_CHUNK_END:
        if (r->line_len != 0)
            return fail(r, KL_ERR_HTTP_SYNTAX);
        r->state = S_CHUNK_SIZE;
        return 0;
    default: /* S_TRAILER, the last state line_state() lets in */
        if (r->line_len == 0) {
            r->state = S_DONE;
            return 1;
        }
        return 0; /* trailers are ignored */
    }
}

static int line_state(uint8_t s)
{
    return s == S_STATUS || s == S_HEADER || s == S_CHUNK_SIZE || s == S_CHUNK_END || s == S_TRAILER;
}

int kl_http_resp_feed(kl_http_resp_t *r, const uint8_t *data, size_t len, size_t *consumed)
{
    size_t i = 0;
    int st;
    if (consumed)
        *consumed = 0;
    if (!r || (!data && len) || !consumed)
        return KL_ERR_ARG;
    if (r->error)
        return r->error;
    if (r->state == S_DONE)
        return 1;
    while (i < len) {
        if (line_state(r->state)) {
            uint8_t ch = data[i++];
            if (++r->head_bytes > KL_HTTP_HEAD_MAX && r->state != S_CHUNK_SIZE && r->state != S_CHUNK_END)
                return fail(r, KL_ERR_HTTP_HEADER_TOO_LARGE);
            if (ch == '\n') {
                if (r->line_len && r->line[r->line_len - 1] == '\r')
                    r->line_len--;
                st = on_line(r);
                r->line_len = 0;
                if (st < 0)
                    return st;
                if (st == 1) {
                    *consumed = i;
                    return 1;
                }
                continue;
            }
            if (ch == 0 || (ch == '\r' && r->line_len && r->line[r->line_len - 1] == '\r'))
                return fail(r, KL_ERR_HTTP_SYNTAX);
            if (r->line_len >= sizeof r->line)
                return fail(r, KL_ERR_HTTP_HEADER_TOO_LARGE);
            r->line[r->line_len++] = (char)ch;
            continue;
        }
        {
            /* The body states: S_BODY_LEN, S_CHUNK_DATA, and S_BODY_EOF,
             * which takes everything until the connection ends. (S_DONE
             * never gets here: each step into it returns.) The room check
             * is the one bound on every copy; a Content-Length and a chunk
             * size were checked against the room already, so only an EOF
             * body fails it. */
            size_t n = len - i, want = (size_t)-1;
            if (r->state == S_BODY_LEN)
                want = r->content_length - r->body_len;
            else if (r->state == S_CHUNK_DATA)
                want = r->chunk_left;
            if (n > want)
                n = want;
            if (n > r->body_cap - r->body_len)
                return fail(r, KL_ERR_HTTP_BODY_TOO_LARGE);
            memcpy(r->body + r->body_len, data + i, n);
            r->body_len += n;
            i += n;
            if (r->state == S_BODY_LEN && r->body_len == r->content_length) {
                r->state = S_DONE;
                *consumed = i;
                return 1;
            }
            if (r->state == S_CHUNK_DATA) {
                r->chunk_left -= n;
                if (!r->chunk_left)
                    r->state = S_CHUNK_END;
            }
        }
    }
    *consumed = i;
    return 0;
}

int kl_http_resp_eof(kl_http_resp_t *r)
{
    if (!r)
        return KL_ERR_ARG;
    if (r->error)
        return r->error;
    if (r->state == S_DONE)
        return 1;
    if (r->state == S_BODY_EOF) {
        r->state = S_DONE;
        return 1;
    }
    return fail(r, KL_ERR_HTTP_TRUNCATED);
}

/* ---- URL ------------------------------------------------------------------ */

int kl_http_parse_url(const char *url, kl_http_url_t *u)
{
    const char *h, *e, *p, *colon = NULL;
    size_t hl, pl;
    uint32_t port = 0;
    if (!url || !u)
        return KL_ERR_ARG;
    memset(u, 0, sizeof *u);
    if (!strncmp(url, "http://", 7)) {
        h = url + 7;
    } else if (!strncmp(url, "https://", 8)) {
        u->https = 1;
        h = url + 8;
    } else {
        return KL_ERR_ARG;
    }
    for (e = h; *e && *e != '/'; e++)
        if (*e == ':' && !colon)
            colon = e;
    hl = (size_t)((colon ? colon : e) - h);
    if (hl == 0 || hl >= sizeof u->host || (size_t)(e - h) >= sizeof u->hostport)
        return KL_ERR_ARG;
    u->port = u->https ? 443 : 80;
    if (colon) {
        if (colon + 1 == e)
            return KL_ERR_ARG;
        for (p = colon + 1; p < e; p++) {
            if (*p < '0' || *p > '9' || (port = port * 10 + (uint32_t)(*p - '0')) > 65535)
                return KL_ERR_ARG;
        }
        if (port == 0)
            return KL_ERR_ARG;
        u->port = (uint16_t)port;
    }
    pl = *e ? strlen(e) : 1;
    if (pl >= sizeof u->path)
        return KL_ERR_ARG;
    memcpy(u->host, h, hl);
    memcpy(u->hostport, h, (size_t)(e - h));
    memcpy(u->path, *e ? e : "/", pl);
    return KL_OK;
}
