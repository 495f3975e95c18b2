/* kinglet — WebSocket (RFC 6455) framing of the XMPP stream (RFC 7395),
 * client side. Sans-I/O, bounded, no allocation.
 *
 * Like BOSH (kl_bosh.h), this is a framing of the same engine: the engine
 * keeps speaking an ordinary XML stream and kl_ws_t translates between it
 * and WebSocket messages on a byte transport (TCP or TLS):
 *
 *   kl_ws_init(&ws, &wcfg);                      // makes the Sec-WebSocket-Key
 *   kl_ws_request(&ws, buf, cap, &n); send(buf, n);
 *   loop:
 *     bytes from the transport: kl_ws_read(&ws, in, n, &used, ebuf, ecap, &made)
 *         with ebuf/ecap = kl_engine_input_buf(); kl_engine_input_ack(made);
 *         keep in[used..n) for the next call (it stops when ebuf is full).
 *         Call it also with n == 0 while kl_ws_read_pending(): translated
 *         bytes that did not fit ebuf, or an error found after bytes went
 *         out, come without new bytes from the transport. ecap may be 0
 *         (e.g. once the engine closed): control frames need no room.
 *         The first bytes are the server's 101 response; once
 *         kl_ws_state() is KL_WS_OPEN, kl_client_connect() the engine.
 *     engine output p, n = kl_engine_output():
 *         kl_ws_write(&ws, p, n, &used, obuf, ocap, &made); kl_engine_output_ack(used);
 *         send(obuf, made). Call it also with n == 0 while kl_ws_want_write():
 *         pongs and close frames go out that way.
 *
 * Handshake. kl_ws_request() writes the GET upgrade request (Host, Upgrade:
 * websocket, Connection: Upgrade, Sec-WebSocket-Key: 16 random bytes in
 * base64, Sec-WebSocket-Version: 13, Sec-WebSocket-Protocol: xmpp, Origin if
 * configured). The response must be status 101 with Upgrade: websocket,
 * Connection: upgrade (case-insensitive tokens), Sec-WebSocket-Accept =
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) through
 * cfg.crypto->hash, Sec-WebSocket-Protocol: xmpp, and no extension;
 * anything else is KL_ERR_WS_HANDSHAKE (the status in ws->http_status).
 * Header lines longer than KL_WS_LINE_MAX are skipped unless they are one of
 * those (then KL_ERR_WS_HANDSHAKE); the head is bounded by KL_WS_HEAD_MAX.
 * Bytes after the head in the same read are frames and are processed.
 *
 * Inbound frames (server -> client) are parsed from any chunking (one byte
 * at a time works) and never buffered whole: a text message's payload goes
 * to `out` as it arrives, so a 50 KB message needs no 50 KB buffer.
 *   - Server frames must be unmasked, RSV bits 0; opcodes continuation, text,
 *     close, ping, pong. Binary messages are refused (RFC 7395 §3.2: text
 *     only), as is a reserved opcode, a masked frame, a control frame that is
 *     fragmented or longer than 125 bytes, a continuation without a message
 *     or a new message inside one, a 64-bit length with its top bit set:
 *     KL_ERR_WS_FRAME, and a close frame 1002 is queued for the server.
 *     Text is not checked as UTF-8 here: the engine's tokenizer does that.
 *   - A message (all its frames) longer than KL_WS_MESSAGE_MAX:
 *     KL_ERR_WS_TOO_LARGE (close 1009 queued), seen in the frame header.
 *   - Ping: a pong with the same payload is queued (only the latest ping is
 *     answered, as RFC 6455 §5.5.3 allows). Pong: counted (ws->pongs).
 *   - Close: answered once (the server's status code echoed) and
 *     KL_ERR_WS_CLOSED; ws->close_code holds its code (0 if none).
 * RFC 7395 translation, so that the engine sees an ordinary stream: a
 * message that is <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' …/>
 * becomes `<stream:stream xmlns='jabber:client'
 * xmlns:stream='http://etherx.jabber.org/streams' …>` with every other
 * attribute of <open/> (id, from, version, xml:lang, …) copied as written
 * (same quotes, so the escaping stays valid); a <close/> in that namespace
 * becomes `</stream:stream>` (ws->see_other set if it carried
 * see-other-uri; with no <open/> before it, as a server may answer our
 * <open/>, it becomes a header and its end, so that the engine reports a
 * stream the server closed, KL_ERR_STREAM_CLOSED). To see them whole, a
 * message that starts with `<open` or `<close` (unprefixed, after optional
 * whitespace) is collected (at most KL_WS_OPEN_MAX bytes, else
 * KL_ERR_WS_TOO_LARGE) and checked with the tokenizer; one that is not
 * exactly one framing element is passed on as it came (the engine then
 * judges it). Every other message streams through untouched, except that
 * its first bytes (at most 6, "<close") are held until they cannot begin
 * one of those any more.
 *
 * Outbound (engine -> wire). Each WebSocket message carries exactly one
 * top-level element (RFC 7395 §3.3.3), as one unfragmented text frame whose
 * length is known before its header is written (Prosody 0.12 refuses
 * continuation frames and messages that do not start with '<'), masked
 * with a fresh 4-byte key from the random source per frame:
 *   - the engine's `<?xml …?>` is dropped, whitespace between elements is
 *     dropped (there are no whitespace keepalives over WebSocket; see
 *     kl_ws_ping());
 *   - `<stream:stream …>` becomes `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'
 *     …/>` with the header's attributes other than namespace declarations
 *     (to, from, version, xml:lang) copied as written; at every restart too;
 *   - `</stream:stream>` becomes `<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`;
 *   - any other top-level element goes out as is, except that one without a
 *     default namespace declaration gets ` xmlns='jabber:client'` after its
 *     name (there is no stream element to inherit it from: Prosody files an
 *     <iq/> without it under the empty namespace and never answers it), and
 *     a `stream:`-prefixed one without `xmlns:stream` gets that declaration
 *     (a <stream:error/>), as Prosody does for its own output.
 * An element must be present whole in the bytes given to kl_ws_write() to
 * start its frame (the engine's output is whole elements); its bytes are
 * then streamed, masked, from the input into `out`, so an element needs no
 * buffer of its own and may be larger than `out`.
 *
 * Backpressure. Both directions stop when `out` is full and resume on the
 * next call from the same state: the caller passes the unconsumed input
 * again (in[*consumed..len), possibly moved, with more appended). Frames are
 * never interleaved: pending control frames (close, else pong, else ping)
 * go out at the next frame boundary, before the next element.
 *
 * Errors. A call that returns < 0 produced nothing. Errors are sticky; one
 * found after bytes were produced in the same call is returned by the next
 * call (len may be 0). Read and write keep separate errors: after
 * KL_ERR_WS_FRAME, KL_ERR_WS_TOO_LARGE or KL_ERR_WS_CLOSED from kl_ws_read()
 * the queued close frame still goes out through kl_ws_write(). After our
 * close frame went out, kl_ws_write() consumes and discards all input.
 *
 * RAM: sizeof(kl_ws_t), 1108 bytes on Cortex-M4 with the defaults (no
 * pointer into the caller's buffers). kl_ws_read() puts one kl_xml_t (564
 * bytes with the default KL_XML_STACK_SIZE) on the C stack while it checks
 * an <open/> or <close/>.
 */
#ifndef KINGLET_KL_WS_H
#define KINGLET_KL_WS_H

#include <stddef.h>
#include <stdint.h>

#include "kl_crypto.h"
#include "kl_status.h"

#ifndef KL_WS_OPEN_MAX
#define KL_WS_OPEN_MAX 384 /* an inbound <open/> or <close/> message, collected whole */
#endif
#ifndef KL_WS_STAGE_MAX
#define KL_WS_STAGE_MAX 320 /* one generated outbound frame: <open/> (from the engine's
                               stream header), <close/>, pong, ping, close; data frame headers */
#endif
#ifndef KL_WS_MESSAGE_MAX
#define KL_WS_MESSAGE_MAX 262144u /* payload of one inbound message, all its frames
                                     (Prosody's default c2s stanza limit) */
#endif
#ifndef KL_WS_HEAD_MAX
#define KL_WS_HEAD_MAX 4096 /* the server's upgrade response: status line and headers */
#endif
#ifndef KL_WS_LINE_MAX
#define KL_WS_LINE_MAX 128 /* header line kept for inspection (longer ones are skipped
                              unless they are one we must read) */
#endif
/* Room before a collected <open/> for the longer stream header it becomes
 * (translated in place). Not a tunable. */
#define KL_WS_SLACK 96

#if KL_WS_STAGE_MAX < 139 || KL_WS_STAGE_MAX > 65535
#error "KL_WS_STAGE_MAX must be 139..65535 (a pong: 125 bytes of payload after 14 of header room)"
#endif
#if KL_WS_OPEN_MAX < 64 || KL_WS_OPEN_MAX > 16384
#error "KL_WS_OPEN_MAX out of range (64..16384)"
#endif
#if KL_WS_LINE_MAX < 64 || KL_WS_LINE_MAX > KL_WS_SLACK + KL_WS_OPEN_MAX
#error "KL_WS_LINE_MAX must be 64..KL_WS_SLACK + KL_WS_OPEN_MAX"
#endif
#if KL_WS_HEAD_MAX > 65535
#error "KL_WS_HEAD_MAX must be <= 65535"
#endif
#if KL_WS_MESSAGE_MAX > 0x7fffffffu
#error "KL_WS_MESSAGE_MAX must be < 2^31"
#endif

typedef struct kl_ws_config {
    const char *host;   /* Host header, without the port ("example.org", "[::1]"), borrowed */
    uint16_t port;      /* added to Host unless 0 or the scheme's default (80, 443 secure) */
    uint8_t secure;     /* wss:// (TLS under the WebSocket): default port 443 */
    const char *path;   /* "/xmpp-websocket", borrowed */
    const char *origin; /* Origin header or NULL (none; Prosody 0.12 does not check it) */
    /* Entropy for the key and the per-frame masks; NULL: crypto->random. */
    int (*random)(void *ctx, uint8_t *out, size_t len);
    void *random_ctx;
    const kl_crypto_t *crypto; /* required: hash (SHA-1) checks Sec-WebSocket-Accept */
} kl_ws_config_t;

typedef enum kl_ws_state {
    KL_WS_CONNECTING = 0, /* the upgrade response has not been read yet */
    KL_WS_OPEN = 1,       /* frames flow both ways */
    KL_WS_CLOSING = 2,    /* a close frame was queued, sent or received; the other half is
                             under way (keep calling kl_ws_write while kl_ws_want_write) */
    KL_WS_CLOSED = 3      /* close frames went both ways, or our close went out after an
                             inbound error, or the handshake failed: close the transport */
} kl_ws_state_t;

/* Everything is private except what is documented here. */
typedef struct kl_ws {
    kl_ws_config_t cfg;
    int rerr;               /* sticky inbound error */
    uint8_t rerr_told;      /* kl_ws_read() returned it */
    int werr;               /* sticky outbound error */
    int http_status;        /* the upgrade response's status code (0 before it) */
    uint16_t close_code;    /* status code of the server's close frame (0: none) */
    uint8_t see_other;      /* the server's <close/> carried see-other-uri */
    uint32_t pongs;         /* pong frames received */
    /* handshake */
    uint8_t open;           /* 101 accepted */
    uint8_t hs;             /* header bits seen */
    uint16_t line_len;
    uint16_t head_bytes;
    char key[25];           /* Sec-WebSocket-Key, NUL-terminated */
    char accept[28];        /* the Sec-WebSocket-Accept we expect */
    /* inbound frame parser */
    uint8_t hbuf[14];
    uint8_t hlen, hneed;
    uint8_t op;             /* opcode of the frame being read */
    uint8_t fin;
    uint8_t in_frame;       /* header complete, payload under way */
    uint8_t msg_open;       /* a text message is open (no FIN yet) */
    uint8_t m;              /* what the open message's payload does */
    uint8_t cpos;           /* control payload bytes read */
    uint8_t in_stream;      /* an <open/> came and no <close/> since */
    uint8_t ctl[2];         /* first bytes of a close frame */
    uint32_t left;          /* payload bytes left in this frame */
    uint32_t msg_len;       /* payload of the open message so far */
    uint16_t c_len;         /* message bytes held/collected in u.e[KL_WS_SLACK..] */
    uint16_t e_pos, e_end;  /* u.e[e_pos..e_end) still to hand out */
    /* control frames owed to the server */
    uint8_t pong_len, pong_pending, ping_pending, close_pending;
    uint8_t close_sent, s_close;
    uint16_t close_out;     /* code we send (0: no payload) */
    uint8_t pong[125];
    /* outbound */
    uint8_t mask[4];
    uint8_t m_pos;          /* payload index mod 4 */
    uint8_t ins_pos, ins_len;
    const char *ins;        /* declaration still to insert into the current element, or NULL */
    size_t d_left;          /* input bytes of the current data frame still to send */
    size_t d_ins_at;        /* input bytes before the insertion point */
    uint16_t s_len, s_pos;  /* stage[s_pos..s_len) still to send */
    uint8_t stage[KL_WS_STAGE_MAX];
    union {
        char line[KL_WS_LINE_MAX];                 /* during the handshake */
        uint8_t e[KL_WS_SLACK + KL_WS_OPEN_MAX];   /* afterwards: message start, <open/> */
    } u;
} kl_ws_t;

/* Validate cfg (host, path starting with '/', no CR/LF/space in them, a
 * crypto table with hash), draw the 16-byte key and compute the accept
 * value. KL_OK, KL_ERR_ARG, KL_ERR_NO_ENTROPY (no random source or it
 * failed), or the hash's failure as KL_ERR_ARG. */
int kl_ws_init(kl_ws_t *ws, const kl_ws_config_t *cfg);

/* Write the HTTP upgrade request into out. KL_OK with *len, KL_ERR_TOO_LARGE
 * if cap is too small (call again with more room: same request),
 * KL_ERR_STATE once the handshake is done. */
int kl_ws_request(kl_ws_t *ws, uint8_t *out, size_t cap, size_t *len);

/* Bytes from the transport -> XML bytes for the engine. First the upgrade
 * response, then frames. *consumed: bytes of in taken (the rest waits for
 * the next call, stopped because out is full); *produced: bytes written to
 * out. Returns KL_OK, or a sticky error with nothing produced:
 * KL_ERR_WS_HANDSHAKE, KL_ERR_WS_FRAME, KL_ERR_WS_TOO_LARGE, KL_ERR_WS_CLOSED
 * (the server's close frame), KL_ERR_ARG. */
int kl_ws_read(kl_ws_t *ws, const uint8_t *in, size_t len, size_t *consumed, uint8_t *out, size_t cap,
               size_t *produced);

/* Engine output -> wire bytes (frames). May consume a prefix only: when out
 * is full, or when the input ends inside an element (*consumed stops at its
 * start; present it again whole). Nothing happens before the handshake is
 * done (KL_OK, nothing consumed); after it failed, its error. Returns KL_OK,
 * or a sticky error with nothing produced: KL_ERR_ARG (not the engine's kind
 * of output: text or an end tag at the top level), KL_ERR_NO_ENTROPY (a mask
 * could not be drawn), KL_ERR_WS_TOO_LARGE (a stream header whose <open/>
 * does not fit KL_WS_STAGE_MAX). */
int kl_ws_write(kl_ws_t *ws, const uint8_t *xml, size_t len, size_t *consumed, uint8_t *out, size_t cap,
                size_t *produced);

/* 1 while kl_ws_write() has bytes to send without new input: a frame under
 * way, a pong, a ping or a close frame. */
int kl_ws_want_write(const kl_ws_t *ws);

/* 1 while kl_ws_read() has something to give without new input: bytes of a
 * translated <open/>/<close/> (or of a held message start) that did not
 * fit `out`, or a sticky error not returned yet. */
int kl_ws_read_pending(const kl_ws_t *ws);

/* Queue a ping with no payload (a keepalive; ws->pongs counts answers).
 * KL_OK, or KL_ERR_STATE unless the state is KL_WS_OPEN. */
int kl_ws_ping(kl_ws_t *ws);

/* Queue our close frame with `code` (0: 1000, normal closure); after it no
 * data frame goes out. KL_OK, KL_ERR_ARG for a code one may not send
 * (RFC 6455 7.4: 1004-1006, 1015, below 1000, 5000 and up), or KL_ERR_STATE
 * before the handshake or when a close was already queued or sent. */
int kl_ws_close(kl_ws_t *ws, uint16_t code);

kl_ws_state_t kl_ws_state(const kl_ws_t *ws);

#endif
