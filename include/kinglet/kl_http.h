/* kinglet — a minimal HTTP/1.1 client codec (for BOSH). Sans-I/O, bounded,
 * no allocation.
 *
 * Request: kl_http_write_request() writes the head of a POST (Host,
 * Content-Type: text/xml; charset=utf-8, Content-Length, keep-alive); the
 * caller appends exactly content_length bytes of body.
 *
 * Response: kl_http_resp_t parses one response fed in pieces of any size
 * (split at any byte): status line, headers (Content-Length,
 * Transfer-Encoding: chunked, Connection: close), then the body into the
 * caller's buffer. A body delimited by the connection's end (no length,
 * not chunked) completes at kl_http_resp_eof(). 1xx interim responses are
 * skipped. Every bound is a named error, never a truncation:
 *   KL_ERR_HTTP_SYNTAX        malformed status line, header or chunk size
 *   KL_ERR_HTTP_HEADER_TOO_LARGE  a line > KL_HTTP_LINE_MAX or the head
 *                             > KL_HTTP_HEAD_MAX bytes
 *   KL_ERR_HTTP_BODY_TOO_LARGE    the body does not fit the caller's buffer
 *   KL_ERR_HTTP_TRUNCATED     the connection ended inside the response
 *   KL_ERR_HTTP_UNSUPPORTED   a transfer coding other than chunked
 * Errors are sticky until kl_http_resp_init().
 *
 * Status codes: KL_ERR_HTTP_* and KL_ERR_BOSH_* in kl_status.h.
 */
#ifndef KINGLET_KL_HTTP_H
#define KINGLET_KL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "kl_status.h"

#ifndef KL_HTTP_LINE_MAX
#define KL_HTTP_LINE_MAX 256 /* longest status or header line we keep (bytes, without CRLF) */
#endif
#ifndef KL_HTTP_HEAD_MAX
#define KL_HTTP_HEAD_MAX 4096 /* status line + headers (+ chunk trailers) in all */
#endif

/* The codec's errors are KL_ERR_HTTP_* in kl_status.h (kl_strerror). */

/* Writes "POST path HTTP/1.1" and the headers, ending with the blank line.
 * Returns the number of bytes written, or KL_ERR_TOO_LARGE if cap is too
 * small (nothing useful in buf then), KL_ERR_ARG for NULL or names with
 * CR/LF. */
int kl_http_write_request(uint8_t *buf, size_t cap, const char *host, const char *path,
                          size_t content_length);

typedef struct kl_http_resp {
    uint8_t state;
    uint8_t chunked;
    uint8_t close;          /* Connection: close, or HTTP/1.0 without keep-alive */
    uint8_t has_length;
    uint8_t http10;
    int error;              /* sticky */
    int status;             /* the final status code (100..999) once the head is parsed */
    size_t content_length;
    size_t chunk_left;
    size_t head_bytes;
    size_t line_len;
    char line[KL_HTTP_LINE_MAX];
    uint8_t *body;
    size_t body_cap;
    size_t body_len;
} kl_http_resp_t;

/* body/cap: where the body goes (cap may be 0 for bodiless responses). */
void kl_http_resp_init(kl_http_resp_t *r, uint8_t *body, size_t cap);

/* Feed received bytes. *consumed: how many belong to this response (bytes
 * after its end are the next response's: keep them). Returns 1 when the
 * response is complete, 0 when more is needed (everything was consumed),
 * < 0 for an error. */
int kl_http_resp_feed(kl_http_resp_t *r, const uint8_t *data, size_t len, size_t *consumed);

/* The connection ended: 1 if that completes the response (close-delimited
 * body), else KL_ERR_HTTP_TRUNCATED (or the sticky error). */
int kl_http_resp_eof(kl_http_resp_t *r);

/* An http:// or https:// URL: host[:port]/path (port 80 / 443 by default,
 * path "/" when absent). */
typedef struct kl_http_url {
    uint8_t https;
    uint16_t port;
    char host[128];
    char hostport[140]; /* the Host header */
    char path[256];
} kl_http_url_t;

/* KL_OK, or KL_ERR_ARG for another scheme, an empty host, a bad port or a
 * part longer than its field (never truncated). */
int kl_http_parse_url(const char *url, kl_http_url_t *u);

#endif
