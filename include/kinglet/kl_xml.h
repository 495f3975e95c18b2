/* kinglet — pull XML tokenizer and bounded XML writer.
 *
 * Tokenizer. The caller owns the input buffer; the tokenizer scans a slice
 * of it and returns one token per call, with zero-copy slices into that
 * buffer. If the slice ends inside a token, it returns KL_XML_NEED_MORE and
 * consumes nothing of that token: the caller keeps the unconsumed bytes,
 * appends more input after them and calls again (the bytes may be moved to
 * another address in between; nothing in kl_xml_t points into the input).
 * The tokenizer notes how far it got (an offset into the slice and a few
 * bits of scanner state), so the next call goes on from there instead of
 * reading the unfinished token again: the cost is linear in the input
 * however it is chunked (offsets are noted up to 64 KB into the slice;
 * beyond, the scan goes on from the last point noted below that). A caller
 * that presents fewer bytes than it did gets the token scanned again from
 * the slice's start (never undefined behaviour). Character data is
 * returned in pieces as it arrives (never
 * splitting a UTF-8 sequence or an entity reference), so text of any
 * length flows through a small buffer.
 *
 * What it accepts is the XML subset XMPP allows (RFC 6120 §11): elements,
 * attributes, character data, CDATA sections, the five predefined entities
 * and character references, an XML declaration before the root element.
 * Comments, processing instructions, DTDs and any other entity reference are
 * rejected with named errors. Names and text are checked as UTF-8 and
 * against XML's Char production; end tags must match; attribute names must
 * be unique; namespaces are resolved (default namespace and every declared
 * prefix, `xml` predefined), and an unbound prefix is an error.
 *
 * Slices in a token point either into the caller's input (names, raw
 * attribute text, raw character data) or into the tokenizer's own stack
 * (resolved namespace URIs). All are valid until the next call to
 * kl_xml_next() or kl_xml_reset(), or until the caller modifies or moves
 * the input bytes, whichever comes first.
 *
 * Details the engine can rely on:
 *  - TEXT tokens are never empty. A piece ends before '<', or at the last
 *    byte that cannot change meaning (an incomplete UTF-8 sequence, entity
 *    or character reference, a trailing CR, a possible "]]>" in a CDATA
 *    section are held back until more bytes arrive). A CDATA piece's
 *    consumed count includes the "<![CDATA[" / "]]>" delimiters it covers.
 *  - The XML declaration, empty CDATA sections and whitespace outside the
 *    root are not tokens: their bytes count towards the next token's
 *    *consumed. Only whitespace may appear outside the root. `<?xml` is the
 *    XML declaration only as the document's very first bytes (after
 *    whitespace, after the root, or twice it is a processing instruction:
 *    KL_ERR_XML_PI); its version must be "1.0", its encoding, if given,
 *    UTF-8 (else KL_ERR_XML_SYNTAX).
 *  - After the root's end tag (END at depth 1, or at the base depth + 1 of
 *    an inner tokenizer) the tokenizer is done: whitespace yields
 *    KL_XML_NEED_MORE with nothing consumed, anything else KL_ERR_XML_SYNTAX.
 *  - An end tag with no open element: KL_ERR_XML_MISMATCH. A '<' inside an
 *    attribute value, CDATA or text outside the root, "]]>" in text:
 *    KL_ERR_XML_SYNTAX. A reference '&' that is not one of the five
 *    predefined entities: KL_ERR_XML_ENTITY; "&#" forms that are malformed,
 *    longer than 16 bytes or not an XML Char: KL_ERR_XML_CHARREF.
 *  - Bad namespace use (unbound prefix, more than one ':' in a name, empty
 *    prefix or local part, xmlns:p='', rebinding xml/xmlns): KL_ERR_XML_NAMESPACE.
 *    Duplicate attributes (same qualified name, or same namespace URI and
 *    local name): KL_ERR_XML_ATTR_DUP, found by sorting (n log n
 *    comparisons; host builds compare up to 8 attributes by pairs). More
 *    than KL_XML_MAX_ATTRS attributes on one element: KL_ERR_XML_ATTRS.
 *  - Errors are sticky: every later call returns the same error until
 *    kl_xml_init()/kl_xml_reset(), or for a limit error (DEPTH, STACK,
 *    NAME_TOO_LONG, ATTR_TOO_LONG, ATTRS) kl_xml_skip(). Argument errors
 *    (KL_ERR_ARG) are not sticky.
 */
#ifndef KINGLET_KL_XML_H
#define KINGLET_KL_XML_H

#include <stddef.h>
#include <stdint.h>

#include "kl_config_defaults.h"
#include "kl_status.h"

typedef struct kl_slice {
    const uint8_t *p;
    size_t len;
} kl_slice_t;

typedef enum kl_xml_tok_type {
    KL_XML_NEED_MORE = 0, /* no complete token in the slice; nothing consumed */
    KL_XML_START = 1,     /* a start tag or empty-element tag, complete */
    KL_XML_END = 2,       /* an end tag; also synthesised after an empty-element tag */
    KL_XML_TEXT = 3,      /* a piece of character data (raw; see kl_xml_text_decode) */
    KL_XML_SKIP = 4       /* bytes of an element being skipped (kl_xml_skip) */
} kl_xml_tok_type_t;

typedef struct kl_xml_token {
    kl_xml_tok_type_t type;
    uint8_t depth;      /* depth of the element: the root is 1; text: its parent's depth;
                           SKIP: the skipped element's depth */
    uint8_t empty;      /* START: 1 for <a/> (an END for it follows with 0 bytes consumed).
                           SKIP: 1 in the token that ends the skipped element */
    uint8_t cdata;      /* TEXT: 1 if from a CDATA section (no entity decoding applies) */
    uint8_t plain;      /* 1 if decoding would copy the raw bytes unchanged, so the raw
                           slice is already the decoded form. TEXT: no '&' (unless cdata)
                           and no CR in the piece. START: no '&', TAB, LF or CR in any
                           attribute value (kl_xml_decode with KL_XML_RAW_ATTR). */
    kl_slice_t name;    /* START/END: qualified name as written (e.g. "stream:features") */
    kl_slice_t local;   /* START/END: local part of the name (e.g. "features") */
    kl_slice_t ns;      /* START/END: resolved namespace URI (empty if none) */
    kl_slice_t attrs;   /* START: raw text of all attributes (between name and '>' or '/>') */
    kl_slice_t text;    /* TEXT: raw character data as in the input */
    size_t offset;      /* START/END/TEXT: offset of the token's first byte in the
                           slice passed to this call */
} kl_xml_token_t;

/* Tokenizer state: fixed size, no pointers into the input.
 * Stack frame of the element at depth d (1..depth) begins at stack[frame[d]]:
 * name length, prefix length, where its namespace URI is (2: 0 for none),
 * declaration count, the qualified name, then each namespace declaration
 * as prefix length, prefix, URI length (2), decoded URI (so a URI's length
 * sits just before it). */
typedef struct kl_xml {
    uint16_t stack_len;
    int16_t error;       /* sticky error, 0 if none */
    uint16_t rs_at;      /* resume: offset in the slice where scanning goes on */
    uint16_t rs_tag;     /* resume: offset of the unfinished token's first byte */
    uint16_t rs_val;     /* resume: bytes of the open attribute value; skipping: open elements */
    uint8_t rs;          /* resume state and bits, 0 if none; skipping: the skip scanner's state */
    uint8_t rs_n;        /* resume: attributes seen in the unfinished start tag */
    uint8_t flags;
    uint8_t depth;
    uint8_t pending_end; /* an END for an empty element is owed */
    uint8_t base;        /* depth at which this tokenizer started (inner: the parent's) */
    uint8_t brackets;    /* ']' ending the last text piece (0..2), to catch a split "]]>" */
    uint16_t frame[KL_XML_MAX_DEPTH + 1]; /* stack offset where each open element's frame begins */
    uint8_t stack[KL_XML_STACK_SIZE];     /* open element names + namespace declarations */
} kl_xml_t;

/* Initial state: expects an optional XML declaration, then a root element. */
void kl_xml_init(kl_xml_t *x);

/* Same as init; used at an XMPP stream restart. */
void kl_xml_reset(kl_xml_t *x);

/* Start tokenizing a fragment that lives inside an element of `parent` at
 * `parent`'s current depth, inheriting its namespace context: used to walk
 * a stanza again (a cursor) from its raw bytes. The parent's stack is
 * copied (parent is not referenced afterwards), so call it while the parent
 * is at the stanza's parent depth: before it returned the stanza's START or
 * after it returned the stanza's END (e.g. depth 1 inside <stream:stream>).
 * The inner tokenizer reports absolute depths (the stanza is parent depth
 * + 1) and accepts exactly one element, optionally preceded by whitespace
 * (no XML declaration); after that element's END it is done like a
 * document after its root (see above): whitespace gives NEED_MORE, other
 * bytes KL_ERR_XML_SYNTAX. */
void kl_xml_init_inner(kl_xml_t *x, const kl_xml_t *parent);

/* Scan buf[0..len) for the next token.
 *  > 0: a token (kl_xml_tok_type_t); *consumed bytes of buf belong to it
 *       (and to any whitespace before it at depth 0).
 *    0: KL_XML_NEED_MORE; *consumed is 0; call again with more bytes appended.
 *  < 0: a kl_status_t error, consuming nothing; the tokenizer stays in
 *       error until reset (a limit error: until kl_xml_skip()).
 * `consumed` counts the exact bytes up to and including the token's last
 * byte, so buf + *consumed is where the next token (or TLS data) begins.
 * *tok is meaningful only for a token (> 0); otherwise only tok->type is
 * set (to KL_XML_NEED_MORE). */
int kl_xml_next(kl_xml_t *x, const uint8_t *buf, size_t len, size_t *consumed, kl_xml_token_t *tok);

/* Abandon the element at depth `depth` (base < depth <= x->depth + 1) and
 * everything in it. depth == x->depth + 1 means: the bytes the caller
 * presents next begin with that element's start tag (e.g. the tag that just
 * failed with a limit error; an error consumes nothing). Clears a sticky
 * *limit* error (DEPTH, STACK, NAME_TOO_LONG, ATTR_TOO_LONG, ATTRS); any other
 * sticky error stays and is returned (KL_ERR_STATE for a bad depth).
 * Afterwards kl_xml_next() consumes the element's bytes as KL_XML_SKIP tokens
 * without limits on depth, names or attribute lengths, and without storing
 * anything, until the element's end: the call that consumes its last byte
 * returns KL_XML_SKIP with tok->empty = 1 and the tokenizer is back at
 * depth - 1 in normal mode (frames at and above `depth` popped).
 *
 * Details: every byte presented is consumed (NEED_MORE only for an empty
 * slice), so a receive buffer always drains. The skipper counts nesting
 * (at most 65535 open elements inside the skipped one, else
 * KL_ERR_XML_DEPTH), knows quoted attribute values, empty-element tags, end
 * tags and CDATA sections, and still rejects comments, processing
 * instructions and DTDs (KL_ERR_XML_COMMENT/PI/DTD, sticky) and a '<!' that
 * opens nothing else (KL_ERR_XML_SYNTAX). It checks no names: the end tags
 * inside the skipped element, its own included, are matched by count only;
 * the elements above it stay on the stack and are matched by name as usual
 * once the skip is over. For a new element (depth == x->depth + 1) the
 * bytes the last call had already read before its '<' and not consumed
 * (whitespace outside the root, the end of a CDATA section: the tokenizer
 * noted where the tag begins, up to 64 KB into the slice) are passed over;
 * then its start tag must come: anything else there, an end tag included,
 * is KL_ERR_STATE. Also KL_ERR_STATE (not sticky): a skip while skipping,
 * or while the END of an empty element is owed (take that END first).
 * Returns KL_OK, KL_ERR_ARG for a NULL x. */
int kl_xml_skip(kl_xml_t *x, unsigned depth);

/* Attribute iteration over tok->attrs (already validated by kl_xml_next).
 * `*pos` starts at 0. Returns 1 and fills name/raw value, or 0 at the end. */
int kl_xml_attr_next(kl_slice_t attrs, size_t *pos, kl_slice_t *name, kl_slice_t *value);

/* Raw value of the attribute with qualified name `name` (NUL-terminated),
 * or returns 0 if absent. */
int kl_xml_attr_get(kl_slice_t attrs, const char *name, kl_slice_t *value);

/* Decode a raw attribute value or raw character data (entities, character
 * references; CDATA text is copied unchanged when cdata is 1) into out.
 * Returns the decoded length, or KL_ERR_TOO_LARGE if out is too small
 * (nothing useful is left in out then). out need not be NUL-terminated.
 * Line ends are normalised as XML requires (CR LF and lone CR become LF) in
 * every mode. cdata may also be KL_XML_RAW_ATTR: attribute-value
 * normalisation (literal TAB, LF, CR become spaces; references are kept).
 * Raw input kl_xml_next() did not accept gives KL_ERR_XML_ENTITY or
 * KL_ERR_XML_CHARREF for a bad reference (never undefined behaviour). */
#define KL_XML_RAW_TEXT 0
#define KL_XML_RAW_CDATA 1
#define KL_XML_RAW_ATTR 2
int kl_xml_decode(kl_slice_t raw, int cdata, uint8_t *out, size_t cap);

/* 1 if the decoded form (KL_XML_RAW_TEXT) of raw equals the NUL-terminated string s. */
int kl_xml_decoded_eq(kl_slice_t raw, const char *s);

/* 1 if the slice equals the NUL-terminated string s. */
int kl_slice_eq(kl_slice_t a, const char *s);

/* ---- writer --------------------------------------------------------- */

/* Builds XML into a caller's buffer. Errors are sticky: after the first
 * KL_ERR_WRITE_FULL every call is a no-op and kl_xw_status() reports it,
 * so a stanza can be built with no checks in between and checked once.
 * A failing call leaves len where it was before that call (no partial
 * output). Other sticky errors: KL_ERR_XML_UTF8 for text or attribute
 * values that are not UTF-8 or contain a character XML 1.0 forbids (C0
 * controls other than TAB LF CR, U+FFFE, U+FFFF; nothing is emitted for
 * them, never a dropped or replaced character); KL_ERR_ARG for a NULL or
 * empty name, or a name with a byte that cannot be in an XML name
 * (whitespace, controls, < > & ' " = /); KL_ERR_STATE for an attribute
 * with no open start tag. TAB, LF, CR are written as &#9; &#10; &#13; in
 * attribute values and CR as &#13; in text, so they survive a parser's
 * normalisation. buf is not NUL-terminated. */
typedef struct kl_xw {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int status;       /* KL_OK or the first error */
    uint8_t tag_open; /* a start tag was begun and its '>' not yet written */
} kl_xw_t;

void kl_xw_init(kl_xw_t *w, uint8_t *buf, size_t cap);
/* "<name" — attributes may follow until content or end. */
void kl_xw_start(kl_xw_t *w, const char *name);
/* ` name='value'` with value escaped (& < > ' " and control chars). */
void kl_xw_attr(kl_xw_t *w, const char *name, const char *value);
void kl_xw_attr_n(kl_xw_t *w, const char *name, const uint8_t *value, size_t len);
/* Escaped character data (closes an open start tag first). */
void kl_xw_text(kl_xw_t *w, const uint8_t *text, size_t len);
/* Verbatim bytes (closes an open start tag first). The caller vouches. */
void kl_xw_raw(kl_xw_t *w, const uint8_t *bytes, size_t len);
/* "/>" if the start tag is still open, else "</name>". */
void kl_xw_end(kl_xw_t *w, const char *name);
/* Close an open start tag with '>' without content (for stream headers). */
void kl_xw_close_start(kl_xw_t *w);
int kl_xw_status(const kl_xw_t *w);

#endif
