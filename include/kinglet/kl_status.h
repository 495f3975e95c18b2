/* kinglet — status codes.
 *
 * One enum for the whole stack. KL_OK is zero, every error is negative and
 * has a name and a kl_strerror() text. "Would block" / "need more bytes" is
 * never an error: transports return 0, the tokenizer returns KL_XML_NEED_MORE.
 */
#ifndef KINGLET_KL_STATUS_H
#define KINGLET_KL_STATUS_H

typedef enum kl_status {
    KL_OK = 0,

    /* API use */
    KL_ERR_ARG = -1,            /* invalid argument at the public edge */
    KL_ERR_STATE = -2,          /* call not valid in the current state */

    /* bounds: every compile-time bound has its own name */
    KL_ERR_RX_FULL = -10,       /* a single XML token is larger than the receive buffer */
    KL_ERR_TX_FULL = -11,       /* the transmit buffer has no room for this stanza now */
    KL_ERR_WRITE_FULL = -12,    /* an XML writer ran out of its buffer */
    KL_ERR_IQ_SLOTS = -13,      /* too many IQ requests outstanding (KL_MAX_PENDING_IQ) */
    KL_ERR_JID_TOO_LONG = -14,  /* a JID does not fit KL_JID_MAX */
    KL_ERR_TOO_LARGE = -15,     /* a value does not fit its buffer (generic bound) */

    /* XML tokenizer: malformed or forbidden input (RFC 6120 §11) */
    KL_ERR_XML_SYNTAX = -20,        /* not well-formed */
    KL_ERR_XML_NAME_TOO_LONG = -21, /* element/attribute name longer than KL_XML_MAX_NAME */
    KL_ERR_XML_DEPTH = -22,         /* nesting deeper than KL_XML_MAX_DEPTH */
    KL_ERR_XML_STACK = -23,         /* element/namespace stack (KL_XML_STACK_SIZE) full */
    KL_ERR_XML_UTF8 = -24,          /* invalid UTF-8 or a character XML forbids */
    KL_ERR_XML_ENTITY = -25,        /* entity reference other than the five predefined */
    KL_ERR_XML_CHARREF = -26,       /* malformed or forbidden character reference */
    KL_ERR_XML_COMMENT = -27,       /* comment (forbidden in XMPP) */
    KL_ERR_XML_PI = -28,            /* processing instruction (forbidden in XMPP) */
    KL_ERR_XML_DTD = -29,           /* DOCTYPE / DTD (forbidden in XMPP) */
    KL_ERR_XML_NAMESPACE = -30,     /* unbound prefix or bad namespace declaration */
    KL_ERR_XML_MISMATCH = -31,      /* end tag does not match start tag */
    KL_ERR_XML_ATTR_DUP = -32,      /* duplicate attribute */
    KL_ERR_XML_ATTR_TOO_LONG = -33, /* attribute value longer than KL_XML_MAX_ATTR */
    KL_ERR_XML_ATTRS = -34,         /* more attributes on one element than KL_XML_MAX_ATTRS */

    /* XMPP stream */
    KL_ERR_STREAM_ERROR = -40,      /* peer sent <stream:error/>; condition in the event */
    KL_ERR_STREAM_CLOSED = -41,     /* peer closed the stream (</stream:stream>) */
    KL_ERR_NO_TLS = -42,            /* TLS required but the server does not offer STARTTLS */
    KL_ERR_TLS_PREREAD = -43,       /* bytes followed <proceed/> where none may */
    KL_ERR_STARTTLS_FAILED = -44,   /* server answered <failure/> to <starttls/> */
    KL_ERR_AUTH = -45,              /* SASL failure (wrong password, not authorized) */
    KL_ERR_NO_MECHANISM = -46,      /* no SASL mechanism we may use is offered */
    KL_ERR_BIND = -47,              /* resource binding failed */
    KL_ERR_PROTOCOL = -48,          /* unexpected element or attribute from the peer */
    KL_ERR_TIMEOUT = -49,           /* the peer did not answer in time */
    KL_ERR_PLAINTEXT = -50,         /* would send a credential without TLS */
    KL_ERR_NOT_ONLINE = -51,        /* stanza API used before the session is online */
    KL_ERR_FROM_DOMAIN = -52,       /* s2s: stanza from a domain not authenticated on this stream */
    KL_ERR_NO_BIDI = -53,           /* s2s: peer does not offer bidirectional streams */
    KL_ERR_UNVERIFIED = -54,        /* would send a credential over a channel whose certificate
                                       the port did not verify */
    KL_ERR_BIND_JID = -55,          /* bound JID malformed or not of the account */
    KL_ERR_SCRAM_ITERATIONS = -56,  /* SCRAM iteration count below 4096 (RFC 7677 §4) or
                                       above KL_SCRAM_MAX_ITERATIONS */
    KL_ERR_SASLPREP = -57,          /* SCRAM credential needs SASLprep (non-ASCII) or holds a
                                       character it prohibits */
    KL_ERR_NO_ENTROPY = -58,        /* no random source configured, or it failed */

    /* ports */
    KL_ERR_IO = -60,                /* socket/link error */
    KL_ERR_CONN_CLOSED = -61,       /* the TCP connection was closed by the peer */
    KL_ERR_CONNECT = -62,           /* could not connect */
    KL_ERR_DNS = -63,               /* name resolution failed */
    KL_ERR_TLS = -64,               /* TLS failure (alert, handshake, record) */
    KL_ERR_TLS_CERT = -65,          /* server certificate not trusted or wrong name */
    KL_ERR_TLS_RECORD_TOO_LARGE = -66, /* record larger than MBEDTLS_SSL_IN_CONTENT_LEN */
    KL_ERR_TLS_SETUP = -67,         /* TLS configuration failed (CA file, RNG, …) */

    /* connection hints (kl_cache.h) */
    KL_ERR_CACHE_AUTH = -80,        /* hints blob failed authentication: ignored whole */
    KL_ERR_CACHE_FORMAT = -81,      /* hints blob not of this build or this domain: ignored */
    KL_ERR_CACHE_NO_KEY = -82,      /* no device key: hints not authenticated, TLS session not kept */

    /* DNS codec (core/kl_dns.c) */
    KL_ERR_DNS_FORMAT = -70,        /* malformed DNS message (a length runs past the end) */
    KL_ERR_DNS_TRUNCATED = -71,     /* DNS answer has the TC bit (does not fit UDP) */
    KL_ERR_DNS_NAME = -72,          /* DNS name over 255 bytes, bad label, or longer than KL_DNS_NAME_MAX */
    KL_ERR_DNS_LOOP = -73,          /* more than KL_DNS_MAX_HOPS compression pointers in a name */
    KL_ERR_DNS_MISMATCH = -74,      /* not the answer to our query (id, QR, opcode, question) */
    KL_ERR_DNS_SERVER = -75,        /* DNS server answered SERVFAIL, REFUSED or another error */
    KL_ERR_DNS_UNAVAILABLE = -76,   /* SRV target "." : service decidedly not available */

    /* HTTP codec and BOSH (kl_http.h, kl_bosh.h) */
    KL_ERR_HTTP_SYNTAX = -100,           /* malformed HTTP status line, header or chunk */
    KL_ERR_HTTP_HEADER_TOO_LARGE = -101, /* HTTP header line > KL_HTTP_LINE_MAX or head > KL_HTTP_HEAD_MAX */
    KL_ERR_HTTP_BODY_TOO_LARGE = -102,   /* HTTP body larger than the body buffer */
    KL_ERR_HTTP_TRUNCATED = -103,        /* connection ended inside an HTTP response */
    KL_ERR_HTTP_UNSUPPORTED = -104,      /* transfer coding other than chunked */
    KL_ERR_HTTP_STATUS = -105,           /* HTTP status other than 200 (BOSH) */
    KL_ERR_BOSH_TERMINATE = -110,        /* BOSH connection manager terminated the session */
    KL_ERR_BOSH_PROTOCOL = -111,         /* BOSH response not a <body/>, or missing sid */
    KL_ERR_BOSH_QUEUE_FULL = -112,       /* BOSH payload queue (KL_BOSH_QUEUE_MAX) full */
    KL_ERR_BOSH_REQUEST_FAILED = -113,   /* a BOSH request failed twice (same rid) */

    /* XEP-0198 stream management and keepalive */
    KL_ERR_SM_ACK = -120,           /* <a h/> acknowledges more than was sent (one going
                                       backwards is ignored) */
    KL_ERR_SM_RESUME = -121,        /* <resumed/> that does not match the session we asked for */
    KL_ERR_SM_STATE = -122,         /* saved stream-management state failed authentication or
                                       does not fit this build: ignored (a new session is bound) */
    KL_ERR_DEAD_PEER = -124,        /* keepalive unanswered: the link is dead */

    /* connection manager (kl_session.h) */
    KL_ERR_NO_ENDPOINT = -125,      /* every configured endpoint and SRV record failed */
    KL_ERR_SEE_OTHER_HOST = -126,   /* the server sent see-other-host (not followed) */

    /* WebSocket (RFC 6455 / RFC 7395, kl_ws.h) */
    KL_ERR_WS_HANDSHAKE = -130,     /* HTTP upgrade refused or invalid (status, Sec-WebSocket-Accept,
                                       subprotocol other than xmpp) */
    KL_ERR_WS_FRAME = -131,         /* malformed frame (reserved bits, masked from server, bad
                                       opcode, fragmented or oversized control frame) */
    KL_ERR_WS_TOO_LARGE = -132,     /* frame payload larger than the WebSocket buffer */
    KL_ERR_WS_CLOSED = -133,        /* the server sent a close frame */

    /* SASL2 (XEP-0388), Bind2 (XEP-0386), FAST (XEP-0484) */
    KL_ERR_SASL2_TASK = -140,       /* <continue/>: the server asks for a task this client does
                                       not do (2FA, password change): aborted */
    KL_ERR_SASL2_GONE = -141,       /* the hints said SASL2, the server no longer offers it: the
                                       hints now say so, the next attempt uses RFC 6120 SASL */
    KL_ERR_FAST_REFUSED = -142,     /* the FAST token was refused and no password is configured
                                       (a token from the hints is forgotten; a configured
                                       fast_token is the application's to replace) */
    KL_ERR_FAST_EXPIRED = -143,     /* the only credential is a FAST token past its expiry */
    KL_ERR_FAST_UNAVAILABLE = -144, /* the only credential is a FAST token and the server offers
                                       no FAST (or not the token's mechanism) */
    KL_ERR_AUTHZID = -145,          /* SASL2 <success> without an authorization identifier, or
                                       one that is not this account (or not a full JID after
                                       Bind2) */
    KL_ERR_AUTH_LATER = -147,       /* the server could not check the FAST token now
                                       (temporary-auth-failure, aborted, ...) and there is no
                                       password: the token is kept, the manager retries */
    KL_ERR_UNSUPPORTED = -150,      /* the server does not offer what this call needs (e.g. CSI),
                                       or the framing cannot carry it (a long stanza over BOSH) */
    KL_ERR_HANDLERS_FULL = -151,    /* the handler table (KL_APP_MAX_HANDLERS) is full */
    KL_ERR_DOWNGRADE = -146         /* XEP-0474: the mechanisms or channel-binding types the
                                       server signed differ from those the client saw (or
                                       were too many to keep for the check: KL_SSDP_MAX) */
} kl_status_t;

/* Static, never NULL. */
const char *kl_strerror(int status);

#endif
