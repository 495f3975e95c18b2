/* kinglet — kl_strerror(): every status code's text exactly, codes between
 * and around them "unknown error", every name in kl_status.h distinct. */
#include "kinglet/kl_config_defaults.h"
#include "kinglet/kl_status.h"
#include "kt.h"

struct row { int code; const char *name; const char *text; };

static const struct row rows[] = {
    { KL_OK, "KL_OK", "ok" },
    { KL_ERR_ARG, "KL_ERR_ARG", "invalid argument" },
    { KL_ERR_STATE, "KL_ERR_STATE", "not valid in this state" },
    { KL_ERR_RX_FULL, "KL_ERR_RX_FULL", "XML token larger than the receive buffer (KL_RX_BUF_SIZE)" },
    { KL_ERR_TX_FULL, "KL_ERR_TX_FULL", "transmit buffer full (KL_TX_BUF_SIZE)" },
    { KL_ERR_WRITE_FULL, "KL_ERR_WRITE_FULL", "XML writer buffer full" },
    { KL_ERR_IQ_SLOTS, "KL_ERR_IQ_SLOTS", "too many IQ requests outstanding (KL_MAX_PENDING_IQ)" },
    { KL_ERR_JID_TOO_LONG, "KL_ERR_JID_TOO_LONG", "JID longer than KL_JID_MAX" },
    { KL_ERR_TOO_LARGE, "KL_ERR_TOO_LARGE", "value does not fit its buffer" },
    { KL_ERR_XML_SYNTAX, "KL_ERR_XML_SYNTAX", "XML not well-formed" },
    { KL_ERR_XML_NAME_TOO_LONG, "KL_ERR_XML_NAME_TOO_LONG", "XML name longer than KL_XML_MAX_NAME" },
    { KL_ERR_XML_DEPTH, "KL_ERR_XML_DEPTH", "XML nesting deeper than KL_XML_MAX_DEPTH" },
    { KL_ERR_XML_STACK, "KL_ERR_XML_STACK", "XML element/namespace stack full (KL_XML_STACK_SIZE)" },
    { KL_ERR_XML_UTF8, "KL_ERR_XML_UTF8", "invalid UTF-8 or forbidden character" },
    { KL_ERR_XML_ENTITY, "KL_ERR_XML_ENTITY", "XML entity reference not allowed" },
    { KL_ERR_XML_CHARREF, "KL_ERR_XML_CHARREF", "invalid XML character reference" },
    { KL_ERR_XML_COMMENT, "KL_ERR_XML_COMMENT", "XML comment not allowed in XMPP" },
    { KL_ERR_XML_PI, "KL_ERR_XML_PI", "XML processing instruction not allowed in XMPP" },
    { KL_ERR_XML_DTD, "KL_ERR_XML_DTD", "XML DTD not allowed in XMPP" },
    { KL_ERR_XML_NAMESPACE, "KL_ERR_XML_NAMESPACE", "XML namespace error (unbound prefix)" },
    { KL_ERR_XML_MISMATCH, "KL_ERR_XML_MISMATCH", "XML end tag does not match start tag" },
    { KL_ERR_XML_ATTR_DUP, "KL_ERR_XML_ATTR_DUP", "duplicate XML attribute" },
    { KL_ERR_XML_ATTR_TOO_LONG, "KL_ERR_XML_ATTR_TOO_LONG", "XML attribute value longer than KL_XML_MAX_ATTR" },
    { KL_ERR_XML_ATTRS, "KL_ERR_XML_ATTRS", "more XML attributes on one element than KL_XML_MAX_ATTRS" },
    { KL_ERR_STREAM_ERROR, "KL_ERR_STREAM_ERROR", "stream error from peer" },
    { KL_ERR_STREAM_CLOSED, "KL_ERR_STREAM_CLOSED", "peer closed the stream" },
    { KL_ERR_NO_TLS, "KL_ERR_NO_TLS", "server does not offer STARTTLS but TLS is required" },
    { KL_ERR_TLS_PREREAD, "KL_ERR_TLS_PREREAD", "unexpected bytes after <proceed/>" },
    { KL_ERR_STARTTLS_FAILED, "KL_ERR_STARTTLS_FAILED", "server refused STARTTLS" },
    { KL_ERR_AUTH, "KL_ERR_AUTH", "authentication failed" },
    { KL_ERR_NO_MECHANISM, "KL_ERR_NO_MECHANISM", "no usable SASL mechanism offered" },
    { KL_ERR_BIND, "KL_ERR_BIND", "resource binding failed" },
    { KL_ERR_PROTOCOL, "KL_ERR_PROTOCOL", "protocol violation by peer" },
    { KL_ERR_TIMEOUT, "KL_ERR_TIMEOUT", "timed out" },
    { KL_ERR_PLAINTEXT, "KL_ERR_PLAINTEXT", "refusing to send credentials without TLS" },
    { KL_ERR_NOT_ONLINE, "KL_ERR_NOT_ONLINE", "session not online" },
    { KL_ERR_FROM_DOMAIN, "KL_ERR_FROM_DOMAIN", "stanza from a domain not authenticated on this stream" },
    { KL_ERR_NO_BIDI, "KL_ERR_NO_BIDI", "peer does not offer bidirectional s2s (XEP-0288)" },
    { KL_ERR_UNVERIFIED, "KL_ERR_UNVERIFIED", "credential refused: the channel's certificate was not verified" },
    { KL_ERR_BIND_JID, "KL_ERR_BIND_JID", "bound JID is malformed or not of this account" },
    { KL_ERR_SCRAM_ITERATIONS, "KL_ERR_SCRAM_ITERATIONS", "SCRAM iteration count below 4096 (RFC 7677) or above KL_SCRAM_MAX_ITERATIONS" },
    { KL_ERR_SASLPREP, "KL_ERR_SASLPREP", "SCRAM credential is not ASCII (SASLprep not supported) or has a prohibited character" },
    { KL_ERR_NO_ENTROPY, "KL_ERR_NO_ENTROPY", "no random source (kl_client_config_t.random), or it failed" },
    { KL_ERR_CACHE_AUTH, "KL_ERR_CACHE_AUTH", "connection hints failed authentication: ignored" },
    { KL_ERR_CACHE_FORMAT, "KL_ERR_CACHE_FORMAT", "connection hints not of this build or domain: ignored" },
    { KL_ERR_CACHE_NO_KEY, "KL_ERR_CACHE_NO_KEY", "no device key: hints not authenticated, TLS session not kept" },
    { KL_ERR_IO, "KL_ERR_IO", "I/O error" },
    { KL_ERR_CONN_CLOSED, "KL_ERR_CONN_CLOSED", "connection closed by peer" },
    { KL_ERR_CONNECT, "KL_ERR_CONNECT", "could not connect" },
    { KL_ERR_DNS, "KL_ERR_DNS", "name resolution failed" },
    { KL_ERR_TLS, "KL_ERR_TLS", "TLS failure" },
    { KL_ERR_TLS_CERT, "KL_ERR_TLS_CERT", "server certificate rejected" },
    { KL_ERR_TLS_RECORD_TOO_LARGE, "KL_ERR_TLS_RECORD_TOO_LARGE", "TLS record larger than the receive record buffer" },
    { KL_ERR_TLS_SETUP, "KL_ERR_TLS_SETUP", "TLS setup failed" },
    { KL_ERR_DNS_FORMAT, "KL_ERR_DNS_FORMAT", "malformed DNS message" },
    { KL_ERR_DNS_TRUNCATED, "KL_ERR_DNS_TRUNCATED", "DNS answer truncated (TC bit)" },
    { KL_ERR_DNS_NAME, "KL_ERR_DNS_NAME", "DNS name too long or malformed" },
    { KL_ERR_DNS_LOOP, "KL_ERR_DNS_LOOP", "DNS name compression loop (KL_DNS_MAX_HOPS)" },
    { KL_ERR_DNS_MISMATCH, "KL_ERR_DNS_MISMATCH", "DNS answer does not match the query" },
    { KL_ERR_DNS_SERVER, "KL_ERR_DNS_SERVER", "DNS server returned an error" },
    { KL_ERR_DNS_UNAVAILABLE, "KL_ERR_DNS_UNAVAILABLE", "XMPP service decidedly not available (SRV target \".\")" },
    { KL_ERR_HTTP_SYNTAX, "KL_ERR_HTTP_SYNTAX", "malformed HTTP response" },
    { KL_ERR_HTTP_HEADER_TOO_LARGE, "KL_ERR_HTTP_HEADER_TOO_LARGE", "HTTP header larger than KL_HTTP_LINE_MAX / KL_HTTP_HEAD_MAX" },
    { KL_ERR_HTTP_BODY_TOO_LARGE, "KL_ERR_HTTP_BODY_TOO_LARGE", "HTTP body larger than the body buffer" },
    { KL_ERR_HTTP_TRUNCATED, "KL_ERR_HTTP_TRUNCATED", "connection ended inside an HTTP response" },
    { KL_ERR_HTTP_UNSUPPORTED, "KL_ERR_HTTP_UNSUPPORTED", "unsupported HTTP transfer coding" },
    { KL_ERR_HTTP_STATUS, "KL_ERR_HTTP_STATUS", "HTTP error status" },
    { KL_ERR_BOSH_TERMINATE, "KL_ERR_BOSH_TERMINATE", "BOSH session terminated by the connection manager" },
    { KL_ERR_BOSH_PROTOCOL, "KL_ERR_BOSH_PROTOCOL", "malformed BOSH response" },
    { KL_ERR_BOSH_QUEUE_FULL, "KL_ERR_BOSH_QUEUE_FULL", "BOSH payload queue full (KL_BOSH_QUEUE_MAX)" },
    { KL_ERR_BOSH_REQUEST_FAILED, "KL_ERR_BOSH_REQUEST_FAILED", "BOSH request failed twice" },
    { KL_ERR_SM_ACK, "KL_ERR_SM_ACK", "stream management: acknowledgement out of range" },
    { KL_ERR_SM_RESUME, "KL_ERR_SM_RESUME", "stream management: resumed a session we did not ask for" },
    { KL_ERR_SM_STATE, "KL_ERR_SM_STATE", "saved stream-management state rejected (authentication or format)" },
    { KL_ERR_DEAD_PEER, "KL_ERR_DEAD_PEER", "keepalive unanswered: link dead" },
    { KL_ERR_NO_ENDPOINT, "KL_ERR_NO_ENDPOINT", "every endpoint failed" },
    { KL_ERR_SEE_OTHER_HOST, "KL_ERR_SEE_OTHER_HOST", "server redirected (see-other-host), not followed" },
    { KL_ERR_WS_HANDSHAKE, "KL_ERR_WS_HANDSHAKE", "WebSocket upgrade refused or invalid" },
    { KL_ERR_WS_FRAME, "KL_ERR_WS_FRAME", "malformed WebSocket frame" },
    { KL_ERR_WS_TOO_LARGE, "KL_ERR_WS_TOO_LARGE", "WebSocket frame larger than its buffer" },
    { KL_ERR_WS_CLOSED, "KL_ERR_WS_CLOSED", "WebSocket closed by the server" },
    { KL_ERR_SASL2_TASK, "KL_ERR_SASL2_TASK", "SASL2: the server asks for a task this client does not support" },
    { KL_ERR_SASL2_GONE, "KL_ERR_SASL2_GONE", "SASL2: no longer offered by the server (hints updated; retry uses RFC 6120)" },
    { KL_ERR_FAST_REFUSED, "KL_ERR_FAST_REFUSED", "FAST: token refused and no password configured" },
    { KL_ERR_FAST_EXPIRED, "KL_ERR_FAST_EXPIRED", "FAST: the token has expired and no password is configured" },
    { KL_ERR_FAST_UNAVAILABLE, "KL_ERR_FAST_UNAVAILABLE", "FAST: the server does not offer the token's mechanism and no password is configured" },
    { KL_ERR_AUTHZID, "KL_ERR_AUTHZID", "SASL2: success without this account's authorization identifier" },
    { KL_ERR_AUTH_LATER, "KL_ERR_AUTH_LATER", "FAST: the server could not check the token now (kept; retry later)" },
    { KL_ERR_DOWNGRADE, "KL_ERR_DOWNGRADE", "SASL downgrade: mechanisms or channel bindings differ from what the server signed" },
};

#if KL_ENABLE_APP
static const struct row app_rows[] = {
    { KL_ERR_UNSUPPORTED, "KL_ERR_UNSUPPORTED", "not supported here (not offered by the server, or not over this framing)" },
    { KL_ERR_HANDLERS_FULL, "KL_ERR_HANDLERS_FULL", "handler table full (KL_APP_MAX_HANDLERS)" },
};
#endif

#define NROWS (sizeof rows / sizeof rows[0])

static int known(int code)
{
    size_t i;
    for (i = 0; i < NROWS; i++)
        if (rows[i].code == code)
            return 1;
#if KL_ENABLE_APP
    for (i = 0; i < sizeof app_rows / sizeof app_rows[0]; i++)
        if (app_rows[i].code == code)
            return 1;
#endif
    return 0;
}

static void test_every_code_text(void)
{
    size_t i;
    for (i = 0; i < NROWS; i++) {
        kt_current = rows[i].name;
        KT_CHECK_STR(kl_strerror(rows[i].code), rows[i].text);
    }
#if KL_ENABLE_APP
    for (i = 0; i < sizeof app_rows / sizeof app_rows[0]; i++) {
        kt_current = app_rows[i].name;
        KT_CHECK_STR(kl_strerror(app_rows[i].code), app_rows[i].text);
    }
#endif
    kt_current = "test_every_code_text";
    KT_CHECK_EQ(NROWS, 89);
}

/* Every gap in the numbering, positive codes and the extremes: the default. */
static void test_unknown_codes(void)
{
    int code, unknown = 0;
    for (code = -200; code <= 5; code++) {
        if (known(code))
            continue;
        KT_CHECK_STR(kl_strerror(code), "unknown error");
        unknown++;
    }
#if KL_ENABLE_APP
    KT_CHECK_EQ(unknown, 115);
#else
    KT_CHECK_EQ(unknown, 117);
#endif
    KT_CHECK_STR(kl_strerror(1), "unknown error");
    KT_CHECK_STR(kl_strerror(-3), "unknown error");
    KT_CHECK_STR(kl_strerror(-123), "unknown error");
    KT_CHECK_STR(kl_strerror(-2147483647 - 1), "unknown error");
    KT_CHECK_STR(kl_strerror(2147483647), "unknown error");
}

/* No two codes share a text (a copied line would hide a missing case). */
static void test_texts_distinct(void)
{
    size_t i, j;
    int dup = 0;
    for (i = 0; i < NROWS; i++)
        for (j = i + 1; j < NROWS; j++)
            if (rows[i].code == rows[j].code || strcmp(rows[i].text, rows[j].text) == 0)
                dup++;
    KT_CHECK_EQ(dup, 0);
}

int main(void)
{
    KT_RUN(test_every_code_text);
    KT_RUN(test_unknown_codes);
    KT_RUN(test_texts_distinct);
    return kt_summary("status");
}
