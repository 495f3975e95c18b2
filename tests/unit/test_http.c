#define _GNU_SOURCE /* memmem */
/* Unit tests: the HTTP/1.1 client codec (core/kl_http.c). Every response is
 * also fed split at every byte and one byte at a time. */
#include <stdio.h>
#include <string.h>

#include "kinglet/kl_http.h"
#include "kt.h"

static uint8_t body[256];

/* Feed s in pieces: split at `at` (0: whole), or byte by byte (at == -1).
 * Returns the final result; *used = bytes consumed in all. */
static int feed(kl_http_resp_t *r, const char *s, size_t n, long at, size_t *used)
{
    size_t off = 0, c;
    int st = 0;
    kl_http_resp_init(r, body, sizeof body);
    memset(body, 0, sizeof body);
    while (off < n) {
        size_t piece = at < 0 ? 1 : (at > 0 && off < (size_t)at ? (size_t)at - off : n - off);
        st = kl_http_resp_feed(r, (const uint8_t *)s + off, piece, &c);
        off += c;
        if (st != 0)
            break;
        if (c != piece) {
            st = -999; /* 0 must mean "all consumed" */
            break;
        }
    }
    *used = off;
    return st;
}

/* Check one complete response at every split. */
static void all_splits(const char *s, size_t n, int status, const char *want_body, size_t want_used)
{
    long at;
    for (at = -1; at <= (long)n; at++) {
        kl_http_resp_t r;
        size_t used;
        int st = feed(&r, s, n, at, &used);
        if (st == 0 && want_used == n && kl_http_resp_eof(&r) == 1)
            st = 1; /* close-delimited */
        KT_CHECK_EQ(st, 1);
        KT_CHECK_EQ(used, want_used);
        KT_CHECK_EQ(r.status, status);
        KT_CHECK_EQ(r.body_len, strlen(want_body));
        KT_CHECK(memcmp(body, want_body, strlen(want_body)) == 0);
    }
}

static void all_splits_error(const char *s, size_t n, int want)
{
    long at;
    for (at = -1; at <= (long)n; at++) {
        kl_http_resp_t r;
        size_t used;
        int st = feed(&r, s, n, at, &used);
        if (st == 0)
            st = kl_http_resp_eof(&r);
        KT_CHECK_EQ(st, want);
        KT_CHECK_EQ(kl_http_resp_feed(&r, (const uint8_t *)"x", 1, &used), want); /* sticky */
    }
}

static void test_request(void)
{
    uint8_t buf[200];
    const char *want = "POST /http-bind HTTP/1.1\r\nHost: localhost:5280\r\n"
                       "Content-Type: text/xml; charset=utf-8\r\nContent-Length: 1234\r\n"
                       "Connection: keep-alive\r\n\r\n";
    int n = kl_http_write_request(buf, sizeof buf, "localhost:5280", "/http-bind", 1234);
    KT_CHECK_EQ(n, strlen(want));
    KT_CHECK(n > 0 && memcmp(buf, want, (size_t)n) == 0);
    n = kl_http_write_request(buf, sizeof buf, "h", "/", 0);
    KT_CHECK(n > 0 && memmem(buf, (size_t)n, "Content-Length: 0\r\n", 19) != NULL);
    for (size_t cap = 0; cap < strlen(want); cap++)
        KT_CHECK_EQ(kl_http_write_request(buf, cap, "localhost:5280", "/http-bind", 1234), KL_ERR_TOO_LARGE);
    KT_CHECK_EQ(kl_http_write_request(buf, sizeof buf, "a\r\nX: y", "/", 0), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_write_request(buf, sizeof buf, "a", "nopath", 0), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_write_request(buf, sizeof buf, "a", "/a b", 0), KL_ERR_ARG);
}

static void test_content_length(void)
{
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\ncontent-LENGTH:  11 \r\n"
                    "\r\n<body/>abcdHTTP/1.1 200 OK\r\n";
    size_t n = strlen(s) - strlen("HTTP/1.1 200 OK\r\n");
    all_splits(s, n, 200, "<body/>abcd", n);
    /* bytes of the next response stay unconsumed */
    kl_http_resp_t r;
    size_t c;
    kl_http_resp_init(&r, body, sizeof body);
    KT_CHECK_EQ(kl_http_resp_feed(&r, (const uint8_t *)s, strlen(s), &c), 1);
    KT_CHECK_EQ(c, n);
    KT_CHECK_EQ(r.close, 0);
}

static void test_chunked(void)
{
    const char *s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    "5;ext=1\r\n<body\r\nA\r\n xmlns='x'\r\n3\r\n/>x\r\n0\r\nX-Trailer: 1\r\n\r\n";
    all_splits(s, strlen(s), 200, "<body xmlns='x'/>x", strlen(s));
    kl_http_resp_t r;
    size_t c;
    kl_http_resp_init(&r, body, sizeof body);
    KT_CHECK_EQ(kl_http_resp_feed(&r, (const uint8_t *)s, strlen(s), &c), 1);
    KT_CHECK_EQ(r.close, 1);
    /* chunked wins over Content-Length */
    s = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
    all_splits(s, strlen(s), 200, "ab", strlen(s));
}

static void test_eof_body_and_interim(void)
{
    const char *s = "HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nnot here";
    all_splits(s, strlen(s), 404, "not here", strlen(s));
    s = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    all_splits(s, strlen(s), 200, "ok", strlen(s));
    s = "HTTP/1.1 204 No Content\r\n\r\n";
    all_splits(s, strlen(s), 204, "", strlen(s));
    s = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    all_splits(s, strlen(s), 200, "", strlen(s));
    s = "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nz";
    all_splits(s, strlen(s), 200, "z", strlen(s));
}

static void test_errors(void)
{
    char big[KL_HTTP_HEAD_MAX + 200];
    const char *s;
    s = "HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_BODY_TOO_LARGE);
    s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n101\r\n";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_BODY_TOO_LARGE);
    s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_UNSUPPORTED);
    s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_TRUNCATED);
    s = "HTTP/1.1 200 OK\r\nContent-Le";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_TRUNCATED);
    s = "HTTP/2 200 OK\r\n";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_SYNTAX);
    s = "HTTP/1.1 20x OK\r\n";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_SYNTAX);
    s = "HTTP/1.1 200 OK\r\nBad Header: 1\r\n";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_SYNTAX);
    s = "HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_SYNTAX);
    s = "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_SYNTAX);
    s = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_SYNTAX);
    s = "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999999\r\n";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_SYNTAX);
    s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_SYNTAX);
    s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n";
    all_splits_error(s, strlen(s), KL_ERR_HTTP_SYNTAX);
    /* a line longer than KL_HTTP_LINE_MAX */
    snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nX: %0*d\r\n", KL_HTTP_LINE_MAX, 7);
    all_splits_error(big, strlen(big), KL_ERR_HTTP_HEADER_TOO_LARGE);
    /* many short lines: the head's bound */
    size_t n = (size_t)snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\n");
    while (n + 12 < sizeof big)
        n += (size_t)snprintf(big + n, sizeof big - n, "X-Aaaaa: 1\r\n");
    all_splits_error(big, n, KL_ERR_HTTP_HEADER_TOO_LARGE);
    KT_CHECK(strcmp(kl_strerror(KL_ERR_HTTP_SYNTAX), "unknown error") != 0);
    KT_CHECK_STR(kl_strerror(KL_ERR_AUTH), kl_strerror(KL_ERR_AUTH));
}

static void test_parse_url(void)
{
    kl_http_url_t u;
    char longpath[300];
    KT_CHECK_EQ(kl_http_parse_url("http://127.0.0.1:5280/http-bind", &u), KL_OK);
    KT_CHECK(!u.https && u.port == 5280);
    KT_CHECK_STR(u.host, "127.0.0.1");
    KT_CHECK_STR(u.hostport, "127.0.0.1:5280");
    KT_CHECK_STR(u.path, "/http-bind");
    KT_CHECK_EQ(kl_http_parse_url("https://example.org", &u), KL_OK);
    KT_CHECK(u.https && u.port == 443);
    KT_CHECK_STR(u.path, "/");
    KT_CHECK_STR(u.hostport, "example.org");
    KT_CHECK_EQ(kl_http_parse_url("ftp://x/", &u), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_parse_url("http:///p", &u), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_parse_url("http://h:/p", &u), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_parse_url("http://h:0/p", &u), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_parse_url("http://h:65536/p", &u), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_parse_url("http://h:12a/p", &u), KL_ERR_ARG);
    memset(longpath, 'a', sizeof longpath);
    memcpy(longpath, "http://h/", 9);
    longpath[sizeof longpath - 1] = 0;
    KT_CHECK_EQ(kl_http_parse_url(longpath, &u), KL_ERR_ARG); /* never truncated */
}

/* The request writer's arguments: each missing or malformed one is KL_ERR_ARG. */
static void test_request_args(void)
{
    uint8_t buf[200];
    KT_CHECK_EQ(kl_http_write_request(NULL, sizeof buf, "h", "/", 0), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_write_request(buf, sizeof buf, NULL, "/", 0), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_write_request(buf, sizeof buf, "h", NULL, 0), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_write_request(buf, sizeof buf, "", "/", 0), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_write_request(buf, sizeof buf, "a\nb", "/", 0), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_write_request(buf, sizeof buf, "a\rb", "/", 0), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_write_request(buf, sizeof buf, "a b", "/", 0), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_write_request(buf, sizeof buf, "a", "/\n", 0), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_write_request(buf, sizeof buf, "a", "/\r", 0), KL_ERR_ARG);
}

/* Header values: whitespace (spaces and tabs) around them is not part of
 * them; Transfer-Encoding: identity is no encoding; Connection: keep-alive
 * keeps an HTTP/1.0 connection, close (in any list position) ends one. */
static void test_header_forms(void)
{
    kl_http_resp_t r;
    size_t c;
    const char *s = "HTTP/1.0 200 OK\r\nContent-Length:\t2\t\r\nTransfer-Encoding: identity\r\n"
                    "Connection: \tx-foo\t, keep-alive\r\n\r\nok";
    all_splits(s, strlen(s), 200, "ok", strlen(s));
    kl_http_resp_init(&r, body, sizeof body);
    KT_CHECK_EQ(kl_http_resp_feed(&r, (const uint8_t *)s, strlen(s), &c), 1);
    KT_CHECK_EQ(r.http10, 1);
    KT_CHECK_EQ(r.close, 0);
    s = "HTTP/1.0 200 OK\r\nConnection: x-foo\r\nContent-Length: 2\r\n\r\nok";
    kl_http_resp_init(&r, body, sizeof body);
    KT_CHECK_EQ(kl_http_resp_feed(&r, (const uint8_t *)s, strlen(s), &c), 1);
    KT_CHECK_EQ(r.close, 1);
    s = "HTTP/1.1 200 OK\r\nConnection: upgrade ,\tclose\t\r\nContent-Length: 2\r\n\r\nok";
    kl_http_resp_init(&r, body, sizeof body);
    KT_CHECK_EQ(kl_http_resp_feed(&r, (const uint8_t *)s, strlen(s), &c), 1);
    KT_CHECK_EQ(r.close, 1);
}

/* Chunk-size lines are not head: a body of many chunks whose size lines
 * (zero-padded) add up past KL_HTTP_HEAD_MAX is fine. */
static void test_chunk_lines_past_head_max(void)
{
    static char s[KL_HTTP_HEAD_MAX * 2];
    char want[64];
    size_t n = (size_t)snprintf(s, sizeof s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    int k;
    for (k = 0; k < 40; k++) {
        n += (size_t)snprintf(s + n, sizeof s - n, "%0*x\r\n%c\r\n", 150, 1, 'a' + k % 26);
        want[k] = (char)('a' + k % 26);
    }
    want[k] = '\0';
    n += (size_t)snprintf(s + n, sizeof s - n, "0\r\n\r\n");
    KT_CHECK(n > KL_HTTP_HEAD_MAX + 1000);
    all_splits(s, n, 200, want, n);
}

/* The API's edges: NULL arguments, no body buffer, feeding or ending a
 * response that is already complete. */
static void test_resp_api(void)
{
    kl_http_resp_t r;
    size_t c = 7;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    KT_CHECK_EQ(kl_http_resp_feed(NULL, (const uint8_t *)"x", 1, &c), KL_ERR_ARG);
    KT_CHECK_EQ(c, 0);
    kl_http_resp_init(&r, body, sizeof body);
    KT_CHECK_EQ(kl_http_resp_feed(&r, NULL, 1, &c), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_resp_feed(&r, (const uint8_t *)"x", 1, NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_resp_feed(&r, NULL, 0, &c), 0);
    KT_CHECK_EQ(kl_http_resp_eof(NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_resp_feed(&r, (const uint8_t *)s, strlen(s), &c), 1);
    KT_CHECK_EQ(c, strlen(s));
    KT_CHECK_EQ(kl_http_resp_feed(&r, (const uint8_t *)"more", 4, &c), 1);
    KT_CHECK_EQ(c, 0);
    KT_CHECK_EQ(kl_http_resp_eof(&r), 1);
    KT_CHECK_EQ(r.body_len, 2);
    /* no body buffer: room for no body at all */
    kl_http_resp_init(&r, NULL, 100);
    KT_CHECK_EQ(r.body_cap, 0);
    KT_CHECK_EQ(kl_http_resp_feed(&r, (const uint8_t *)s, strlen(s), &c), KL_ERR_HTTP_BODY_TOO_LARGE);
    s = "HTTP/1.1 204 No Content\r\n\r\n";
    kl_http_resp_init(&r, NULL, 0);
    KT_CHECK_EQ(kl_http_resp_feed(&r, (const uint8_t *)s, strlen(s), &c), 1);
}

static void test_parse_url_edges(void)
{
    kl_http_url_t u;
    char url[300];
    KT_CHECK_EQ(kl_http_parse_url(NULL, &u), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_parse_url("http://h/", NULL), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_parse_url("http://h:1:2/p", &u), KL_ERR_ARG); /* a second colon */
    KT_CHECK_EQ(kl_http_parse_url("http://h:8-/p", &u), KL_ERR_ARG);
    KT_CHECK_EQ(kl_http_parse_url("http://h:65535", &u), KL_OK);
    KT_CHECK_EQ(u.port, 65535);
    KT_CHECK_STR(u.hostport, "h:65535");
    KT_CHECK_STR(u.path, "/");
    /* the host: at most 127 bytes; host and port: at most 139 */
    memset(url, 0, sizeof url);
    memcpy(url, "http://", 7);
    memset(url + 7, 'h', 127);
    KT_CHECK_EQ(kl_http_parse_url(url, &u), KL_OK);
    KT_CHECK_EQ(strlen(u.host), 127);
    url[7 + 127] = 'h';
    KT_CHECK_EQ(kl_http_parse_url(url, &u), KL_ERR_ARG);
    memset(url + 7, 0, sizeof url - 7);
    memset(url + 7, 'h', 10);
    url[17] = ':';
    memset(url + 18, '0', 127);
    url[18 + 127] = '1'; /* 10 + 1 + 128 = 139: fits */
    KT_CHECK_EQ(kl_http_parse_url(url, &u), KL_OK);
    KT_CHECK_EQ(u.port, 1);
    KT_CHECK_EQ(strlen(u.hostport), 139);
    url[18 + 128] = '1';
    KT_CHECK_EQ(kl_http_parse_url(url, &u), KL_ERR_ARG);
}

int main(void)
{
    KT_RUN(test_parse_url);
    KT_RUN(test_request);
    KT_RUN(test_content_length);
    KT_RUN(test_chunked);
    KT_RUN(test_eof_body_and_interim);
    KT_RUN(test_errors);
    KT_RUN(test_request_args);
    KT_RUN(test_header_forms);
    KT_RUN(test_chunk_lines_past_head_max);
    KT_RUN(test_resp_api);
    KT_RUN(test_parse_url_edges);
    return kt_summary("http");
}
