/* kinglet — shared by the command-line programs. */
#include "kl_cli_common.h"

#include <stdio.h>

#include "kinglet/kl_status.h"

int kl_cli_exit_code(int status)
{
    switch (status) {
    case KL_ERR_DNS:
    case KL_ERR_CONNECT:
    case KL_ERR_CONN_CLOSED:
    case KL_ERR_IO:
    case KL_ERR_BOSH_REQUEST_FAILED:
        return 3;
    case KL_ERR_TLS:
    case KL_ERR_TLS_CERT:
    case KL_ERR_TLS_SETUP:
    case KL_ERR_TLS_RECORD_TOO_LARGE:
    case KL_ERR_NO_TLS:
    case KL_ERR_STARTTLS_FAILED:
    case KL_ERR_TLS_PREREAD:
        return 4;
    case KL_ERR_AUTH:
    case KL_ERR_NO_MECHANISM:
    case KL_ERR_PLAINTEXT:
        return 5;
    case KL_ERR_TIMEOUT:
        return 7;
    default:
        if (status <= KL_ERR_DNS_FORMAT && status >= KL_ERR_DNS_UNAVAILABLE)
            return 3;
        if (status <= KL_ERR_HTTP_SYNTAX && status >= KL_ERR_BOSH_REQUEST_FAILED)
            return 6;
        return status <= KL_ERR_XML_SYNTAX && status >= KL_ERR_NO_BIDI ? 6 : 1;
    }
}

int kl_cli_cache_load(const char *path, kl_cache_t *cache)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f)
        return 0;
    n = fread(cache, 1, sizeof *cache, f);
    fclose(f);
    return n == sizeof *cache;
}

void kl_cli_cache_save(const char *path, kl_cache_t *cache)
{
    char tmp[4096];
    FILE *f;
    int ok;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "wb")))
        return;
    kl_cache_seal(cache);
    ok = fwrite(cache, 1, sizeof *cache, f) == sizeof *cache;
    if (fclose(f) == 0 && ok)
        rename(tmp, path);
    else
        remove(tmp);
}

int kl_cli_deadline(kl_cli_run_t *r, kl_client_t *c, uint32_t now, uint32_t *t_end)
{
    if (r->echo && r->count < 0 && !r->recv_n) {
        if (!r->closing && kl_client_close(c) == KL_OK) {
            r->closing = 1;
            *t_end = now + 3000;
            return -1;
        }
        return 0;
    }
    if (!kl_client_is_online(c))
        fprintf(stderr, "%s: timed out before online\n", r->prog);
    else
        fprintf(stderr, "%s: timed out (echoed %d, received %d)\n", r->prog, r->echoed, r->received);
    return 7;
}

void kl_cli_after_message(kl_cli_run_t *r, kl_client_t *c, const char *from, const char *to, const char *body)
{
    int st;
    r->received++;
    if (r->echo && !r->closing && body) {
        st = kl_send_message_from(c, r->s2s ? to : NULL, from, "chat", body);
        if (st != KL_OK)
            fprintf(stderr, "%s: cannot echo: %s\n", r->prog, kl_strerror(st));
        else
            r->echoed++;
        if (r->count >= 0 && r->echoed >= r->count && kl_client_close(c) == KL_OK)
            r->closing = 1;
    } else if (!r->echo && r->recv_n > 0 && r->received >= r->recv_n && !r->closing) {
        if (kl_client_close(c) == KL_OK)
            r->closing = 1;
    }
}
