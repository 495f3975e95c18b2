/* kinglet — kl_strerror(). */
#include "kinglet/kl_config_defaults.h"
#include "kinglet/kl_status.h"

const char *kl_strerror(int status)
{
    switch (status) {
    case KL_OK: return "ok";
    case KL_ERR_ARG: return "invalid argument";
    case KL_ERR_STATE: return "not valid in this state";
    case KL_ERR_RX_FULL: return "XML token larger than the receive buffer (KL_RX_BUF_SIZE)";
    case KL_ERR_TX_FULL: return "transmit buffer full (KL_TX_BUF_SIZE)";
    case KL_ERR_WRITE_FULL: return "XML writer buffer full";
    case KL_ERR_IQ_SLOTS: return "too many IQ requests outstanding (KL_MAX_PENDING_IQ)";
    case KL_ERR_JID_TOO_LONG: return "JID longer than KL_JID_MAX";
    case KL_ERR_TOO_LARGE: return "value does not fit its buffer";
    case KL_ERR_XML_SYNTAX: return "XML not well-formed";
    case KL_ERR_XML_NAME_TOO_LONG: return "XML name longer than KL_XML_MAX_NAME";
    case KL_ERR_XML_DEPTH: return "XML nesting deeper than KL_XML_MAX_DEPTH";
    case KL_ERR_XML_STACK: return "XML element/namespace stack full (KL_XML_STACK_SIZE)";
    case KL_ERR_XML_UTF8: return "invalid UTF-8 or forbidden character";
    case KL_ERR_XML_ENTITY: return "XML entity reference not allowed";
    case KL_ERR_XML_CHARREF: return "invalid XML character reference";
    case KL_ERR_XML_COMMENT: return "XML comment not allowed in XMPP";
    case KL_ERR_XML_PI: return "XML processing instruction not allowed in XMPP";
    case KL_ERR_XML_DTD: return "XML DTD not allowed in XMPP";
    case KL_ERR_XML_NAMESPACE: return "XML namespace error (unbound prefix)";
    case KL_ERR_XML_MISMATCH: return "XML end tag does not match start tag";
    case KL_ERR_XML_ATTR_DUP: return "duplicate XML attribute";
    case KL_ERR_XML_ATTR_TOO_LONG: return "XML attribute value longer than KL_XML_MAX_ATTR";
    case KL_ERR_XML_ATTRS: return "more XML attributes on one element than KL_XML_MAX_ATTRS";
    case KL_ERR_STREAM_ERROR: return "stream error from peer";
    case KL_ERR_STREAM_CLOSED: return "peer closed the stream";
    case KL_ERR_NO_TLS: return "server does not offer STARTTLS but TLS is required";
    case KL_ERR_TLS_PREREAD: return "unexpected bytes after <proceed/>";
    case KL_ERR_STARTTLS_FAILED: return "server refused STARTTLS";
    case KL_ERR_AUTH: return "authentication failed";
    case KL_ERR_NO_MECHANISM: return "no usable SASL mechanism offered";
    case KL_ERR_BIND: return "resource binding failed";
    case KL_ERR_PROTOCOL: return "protocol violation by peer";
    case KL_ERR_TIMEOUT: return "timed out";
    case KL_ERR_PLAINTEXT: return "refusing to send credentials without TLS";
    case KL_ERR_NOT_ONLINE: return "session not online";
    case KL_ERR_FROM_DOMAIN: return "stanza from a domain not authenticated on this stream";
    case KL_ERR_NO_BIDI: return "peer does not offer bidirectional s2s (XEP-0288)";
    case KL_ERR_UNVERIFIED: return "credential refused: the channel's certificate was not verified";
    case KL_ERR_BIND_JID: return "bound JID is malformed or not of this account";
    case KL_ERR_SCRAM_ITERATIONS: return "SCRAM iteration count below 4096 (RFC 7677) or above KL_SCRAM_MAX_ITERATIONS";
    case KL_ERR_SASLPREP: return "SCRAM credential is not ASCII (SASLprep not supported) or has a prohibited character";
    case KL_ERR_NO_ENTROPY: return "no random source (kl_client_config_t.random), or it failed";
    case KL_ERR_CACHE_AUTH: return "connection hints failed authentication: ignored";
    case KL_ERR_CACHE_FORMAT: return "connection hints not of this build or domain: ignored";
    case KL_ERR_CACHE_NO_KEY: return "no device key: hints not authenticated, TLS session not kept";
    case KL_ERR_IO: return "I/O error";
    case KL_ERR_CONN_CLOSED: return "connection closed by peer";
    case KL_ERR_CONNECT: return "could not connect";
    case KL_ERR_DNS: return "name resolution failed";
    case KL_ERR_TLS: return "TLS failure";
    case KL_ERR_TLS_CERT: return "server certificate rejected";
    case KL_ERR_TLS_RECORD_TOO_LARGE: return "TLS record larger than the receive record buffer";
    case KL_ERR_TLS_SETUP: return "TLS setup failed";
    case KL_ERR_DNS_FORMAT: return "malformed DNS message";
    case KL_ERR_DNS_TRUNCATED: return "DNS answer truncated (TC bit)";
    case KL_ERR_DNS_NAME: return "DNS name too long or malformed";
    case KL_ERR_DNS_LOOP: return "DNS name compression loop (KL_DNS_MAX_HOPS)";
    case KL_ERR_DNS_MISMATCH: return "DNS answer does not match the query";
    case KL_ERR_DNS_SERVER: return "DNS server returned an error";
    case KL_ERR_DNS_UNAVAILABLE: return "XMPP service decidedly not available (SRV target \".\")";
    case KL_ERR_HTTP_SYNTAX: return "malformed HTTP response";
    case KL_ERR_HTTP_HEADER_TOO_LARGE: return "HTTP header larger than KL_HTTP_LINE_MAX / KL_HTTP_HEAD_MAX";
    case KL_ERR_HTTP_BODY_TOO_LARGE: return "HTTP body larger than the body buffer";
    case KL_ERR_HTTP_TRUNCATED: return "connection ended inside an HTTP response";
    case KL_ERR_HTTP_UNSUPPORTED: return "unsupported HTTP transfer coding";
    case KL_ERR_HTTP_STATUS: return "HTTP error status";
    case KL_ERR_BOSH_TERMINATE: return "BOSH session terminated by the connection manager";
    case KL_ERR_BOSH_PROTOCOL: return "malformed BOSH response";
    case KL_ERR_BOSH_QUEUE_FULL: return "BOSH payload queue full (KL_BOSH_QUEUE_MAX)";
    case KL_ERR_BOSH_REQUEST_FAILED: return "BOSH request failed twice";
    case KL_ERR_SM_ACK: return "stream management: acknowledgement out of range";
    case KL_ERR_SM_RESUME: return "stream management: resumed a session we did not ask for";
    case KL_ERR_SM_STATE: return "saved stream-management state rejected (authentication or format)";
    case KL_ERR_DEAD_PEER: return "keepalive unanswered: link dead";
    case KL_ERR_NO_ENDPOINT: return "every endpoint failed";
    case KL_ERR_SEE_OTHER_HOST: return "server redirected (see-other-host), not followed";
    case KL_ERR_WS_HANDSHAKE: return "WebSocket upgrade refused or invalid";
    case KL_ERR_WS_FRAME: return "malformed WebSocket frame";
    case KL_ERR_WS_TOO_LARGE: return "WebSocket frame larger than its buffer";
    case KL_ERR_WS_CLOSED: return "WebSocket closed by the server";
    case KL_ERR_SASL2_TASK: return "SASL2: the server asks for a task this client does not support";
    case KL_ERR_SASL2_GONE: return "SASL2: no longer offered by the server (hints updated; retry uses RFC 6120)";
    case KL_ERR_FAST_REFUSED: return "FAST: token refused and no password configured";
    case KL_ERR_FAST_EXPIRED: return "FAST: the token has expired and no password is configured";
    case KL_ERR_FAST_UNAVAILABLE: return "FAST: the server does not offer the token's mechanism and no password is configured";
    case KL_ERR_AUTHZID: return "SASL2: success without this account's authorization identifier";
    case KL_ERR_AUTH_LATER: return "FAST: the server could not check the token now (kept; retry later)";
#if KL_ENABLE_APP
    case KL_ERR_UNSUPPORTED: return "not supported here (not offered by the server, or not over this framing)";
    case KL_ERR_HANDLERS_FULL: return "handler table full (KL_APP_MAX_HANDLERS)";
#endif
    case KL_ERR_DOWNGRADE: return "SASL downgrade: mechanisms or channel bindings differ from what the server signed";
    default: return "unknown error";
    }
}
