/* kinglet-bosh — the CLI over BOSH (XEP-0124/0206); to be folded into the
 * main CLI as --bosh URL.
 *
 *   kinglet-bosh --jid J --password P --bosh URL [--cafile F] [--send TO BODY]
 *                [--recv N] [--echo] [--count N] [--timeout S] [--stats]
 *                [--allow-plaintext] [--bosh-path auto|all|split]
 *                [--cache FILE [--cache-key KEYFILE]]
 *
 * URL: http://host:port/path or https://host:port/path. Over http:// the
 * password goes in clear: refused unless --allow-plaintext (e.g. loopback).
 * --bosh-path: all = <auth/> + restart + bind in the session creation body
 * (Prosody: one HTTP round trip to a bound session); split = <auth/> in it,
 * then the restart and the bind as two requests at once (ejabberd 23.01);
 * auto (default) = all, and split once if the connection manager ends the
 * session before it is bound (the retry is reported as "full_fallback":1).
 * Exit codes and --stats keys as build/kinglet (round_trips: TCP + TLS +
 * each HTTP round of requests waited on), plus "http_round_trips",
 * "http_requests" and "bosh_path". --cache / --cache-key: the connection
 * hints as build/kinglet keeps them (authenticated with the key in KEYFILE,
 * default FILE.key; both 0600), here for the learned BOSH path.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinglet/kinglet.h"
#include "kl_cli_common.h"
#include "kl_crypto_mbedtls.h"
#include "kinglet/kl_http.h"
#include "kinglet/kl_bosh.h"
#include "kinglet/kl_session.h"
#include "kl_posix_net.h"
#include "kl_tls_bind.h"

static kl_client_t client;
static kl_bosh_t bosh;      /* the BOSH codec's state: two request/response buffers */
static kl_session_t sess;
static kl_posix_net_t net;
static kl_tls_t tls_sess[KL_SESSION_SLOTS];
static kl_tls_mbedtls_t tlsb;

static void usage(void)
{
    fprintf(stderr, "usage: kinglet-bosh --jid J --password P --bosh URL [--cafile F] [--send TO BODY]\n"
                    "                    [--recv N] [--echo] [--count N] [--timeout S] [--stats]\n"
                    "                    [--allow-plaintext] [--bosh-path auto|all|split]\n"
                    "                    [--cache FILE]  (connection hints, 0600, authenticated with KEYFILE)\n"
                    "                    [--cache-key KEYFILE]  (default FILE.key, created 0600 on first use)\n");
    exit(2);
}

static kl_cache_t cache; /* --cache FILE: connection hints, incl. the BOSH path */
static const char *cache_state = "none";

static void print_stats(const char *path, int fallback)
{
    const kl_stats_t *s = kl_client_stats(&client);
    const kl_session_stats_t *w = kl_session_stats(&sess);
    printf("{\"online_ms\":%u,\"round_trips\":%u,\"engine_round_trips\":%u,\"port_round_trips\":%u,"
           "\"flights_out\":%u,\"bytes_out\":%u,\"bytes_in\":%u,\"xml_bytes_out\":%u,\"xml_bytes_in\":%u,"
           "\"tcp_connect_ms\":%u,\"tls_handshake_ms\":%u,\"pipelining\":\"%s\",\"mode\":\"bosh\",\"tls\":\"%s\","
           "\"sasl\":\"%s\",\"cache\":\"%s\",\"full_fallback\":%d,\"tls_resumed\":0,\"srv\":\"none\","
           "\"http_round_trips\":%u,\"http_requests\":%u,\"bosh_path\":\"%s\",\"stanzas_dropped\":%u,"
           "\"iq_unmatched\":%u,\"sizeof_client\":%zu}\n",
           s->online_ms, s->round_trips, s->engine_round_trips, s->port_round_trips, s->flights_out,
           w->wire_out_online, w->wire_in_online, s->bytes_out_online, s->bytes_in_online, w->tcp_connect_ms,
           w->tls_handshake_ms, kl_client_full_pipelining(&client) ? "full" : "safe",
           w->tls_version && w->tls_version[0] ? w->tls_version : "none",
           kl_client_sasl_mechanism(&client), cache_state, fallback, w->http_round_trips_online,
           w->http_requests_online, path, s->stanzas_dropped, s->iq_unmatched, sizeof client + sizeof bosh);
}

int main(int argc, char **argv)
{
    const char *jid = NULL, *password = NULL, *url = NULL, *cafile = NULL, *send_to = NULL, *send_body = NULL;
    const char *path_mode = "auto", *cache_path = NULL, *cache_key = NULL;
    int cache_hit = 0;
    long count = -1, recv_n = 0, timeout_s = 30;
    int echo = 0, stats = 0, allow_plaintext = 0, i, st, rc = 0, split = 0, fallback = 0;
    kl_cli_run_t run;
    static kl_cli_hints_t hints;
    static kl_crypto_mbedtls_t crypto; /* the hints' HMAC; not cfg.crypto: SASL here stays PLAIN */
    kl_client_config_t cfg;
    kl_tls_config_t tls;
    kl_event_t ev;
    uint32_t t_end;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (usage(), ""))
        if (!strcmp(a, "--jid")) jid = NEXT();
        else if (!strcmp(a, "--password")) password = NEXT();
        else if (!strcmp(a, "--bosh")) url = NEXT();
        else if (!strcmp(a, "--cafile")) cafile = NEXT();
        else if (!strcmp(a, "--send")) { send_to = NEXT(); send_body = NEXT(); }
        else if (!strcmp(a, "--recv")) recv_n = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--echo")) echo = 1;
        else if (!strcmp(a, "--count")) count = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--timeout")) timeout_s = strtol(NEXT(), NULL, 10);
        else if (!strcmp(a, "--stats")) stats = 1;
        else if (!strcmp(a, "--allow-plaintext")) allow_plaintext = 1;
        else if (!strcmp(a, "--bosh-path")) path_mode = NEXT();
        else if (!strcmp(a, "--cache")) cache_path = NEXT();
        else if (!strcmp(a, "--cache-key")) cache_key = NEXT();
        else usage();
#undef NEXT
    }
    if (!jid || !password || !url || timeout_s <= 0 || (cache_key && !cache_path))
        usage();
    if (!strcmp(path_mode, "split"))
        split = 1;
    else if (strcmp(path_mode, "all") && strcmp(path_mode, "auto"))
        usage();
    if (!strncmp(url, "http://", 7) && !allow_plaintext) {
        /* security rule 1: no credentials over plain HTTP unless asked for */
        fprintf(stderr, "kinglet-bosh: %s is plain HTTP: the password would go in clear; use https:// "
                        "or --allow-plaintext\n", url);
        return 5;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.jid = jid;
    cfg.password = password;
    cfg.allow_plaintext = (uint8_t)(strncmp(url, "http://", 7) == 0);
    cfg.pipelining = KL_PIPELINING_FULL;
    cfg.force_full = 1; /* <auth/> + restart + bind in one flight */
    cfg.random = kl_posix_random; /* IQ ids */
    if (cache_path)
        cfg.cache = &cache;
    if ((st = kl_client_init(&client, &cfg)) != KL_OK) {
        kl_cli_init_error("kinglet-bosh", jid, st);
        return 2;
    }
    if (cache_path) {
        /* the path this connection manager took last time (and the rest
         * of the hints), authenticated; a foreign, corrupt or forged file
         * is not used (reported) */
        int crypto_ok = kl_crypto_mbedtls_init(&crypto) == 0;
        cache_hit = kl_cli_hints_load(&hints, "kinglet-bosh", cache_path, cache_key, crypto_ok ? &crypto.table : NULL,
                                      kl_client_domain(&client), &cache);
    }
    if (cache_path)
        cache_state = cache_hit ? "hit" : "miss";
    if (cache_hit && !strcmp(path_mode, "auto") && cache.bosh_path == KL_CACHE_BOSH_SPLIT)
        split = 1; /* learned: no wasted creation request */
    memset(&tls, 0, sizeof tls);
    tls.ca_file = cafile;
    memset(&run, 0, sizeof run);
    run.prog = "kinglet-bosh";
    run.echo = echo;
    run.count = count;
    run.recv_n = recv_n;
    run.session = &sess;
    t_end = kl_posix_now_ms() + (uint32_t)timeout_s * 1000u;
retry:
    {
        static char url_buf[512];
        kl_session_config_t scfg;
        memset(&scfg, 0, sizeof scfg);
        if (kl_endpoint_from_url(&scfg.endpoints[0], url, url_buf, sizeof url_buf) != KL_OK ||
            scfg.endpoints[0].framing != KL_FRAMING_BOSH) {
            fprintf(stderr, "kinglet-bosh: bad BOSH URL (http[s]://host[:port]/path): %s\n", url);
            return 2;
        }
        scfg.n_endpoints = 1;
        scfg.client = &client;
        scfg.net = &kl_posix_net_ops;
        scfg.net_ctx = &net;
        scfg.tls = &kl_tls_mbedtls_ops;
        scfg.tls_ctx = &tlsb;
        scfg.random = kl_posix_random;
        scfg.timeout_ms = (uint32_t)timeout_s * 1000u;
        scfg.bosh_split_restart = (uint8_t)split;
        kl_posix_net_init(&net);
        kl_tls_mbedtls_init(&tlsb, &tls, tls_sess, KL_SESSION_SLOTS);
        if ((st = kl_session_init(&sess, &scfg)) != KL_OK) {
            fprintf(stderr, "kinglet-bosh: cannot start the session: %s\n", kl_strerror(st));
            return 2;
        }
        kl_session_use_bosh(&sess, &bosh);
        kl_session_start(&sess, kl_posix_now_ms());
    }
    for (;;) {
        uint32_t now = kl_posix_now_ms();
        if ((int32_t)(now - t_end) >= 0) {
            if ((rc = kl_cli_deadline(&run, &client, now, &t_end)) < 0) {
                rc = 0;
                continue;
            }
            break;
        }
        st = kl_session_step(&sess, now, &ev);
        if (st < 0) {
            fprintf(stderr, "kinglet-bosh: %s\n", kl_strerror(st));
            rc = 1;
            break;
        }
        if (st == 0) {
            kl_posix_net_wait(&net, &sess, t_end - now);
            continue;
        }
        if (ev.type == KL_EV_ONLINE) {
            printf("online %s\n", ev.jid);
            fflush(stdout);
            if (send_to && (st = kl_send_message(&client, send_to, "chat", send_body)) != KL_OK) {
                fprintf(stderr, "kinglet-bosh: cannot send: %s\n", kl_strerror(st));
                rc = 1;
                break;
            }
            if (!echo && recv_n == 0 && kl_cli_close(&run, &client) == KL_OK)
                run.closing = 1;
        } else if (ev.type == KL_EV_STANZA && kl_slice_eq(ev.stanza.name, "message")) {
            char body[1024], from[KL_JID_MAX * 3];
            int n = kl_stanza_child_text(&client, &ev.stanza, "body", NULL, body, sizeof body);
            int fl = kl_xml_decode(ev.stanza.from, 0, (uint8_t *)from, sizeof from - 1);
            if (n < 0 || fl < 0)
                continue;
            from[fl] = '\0';
            printf("message from %s: %s\n", from, body);
            fflush(stdout);
            kl_cli_after_message(&run, &client, from, NULL, body);
        } else if (ev.type == KL_EV_STANZA_DROPPED) {
            kl_cli_dropped(&ev);
        } else if (ev.type == KL_EV_CLOSED) {
            rc = 0;
            break;
        } else if (ev.type == KL_EV_ERROR) {
            if (!strcmp(path_mode, "auto") && !split && !kl_client_is_online(&client) &&
                kl_client_stats(&client)->online_ms == 0 &&
                (ev.status == KL_ERR_BOSH_TERMINATE || ev.status == KL_ERR_STREAM_ERROR ||
                 ev.status == KL_ERR_BIND || ev.status == KL_ERR_PROTOCOL ||
                 (ev.status <= KL_ERR_XML_SYNTAX && ev.status >= KL_ERR_XML_ATTR_TOO_LONG))) {
                /* a connection manager that does not take the restart and
                 * the bind in the creation body: the split path, once */
                kl_session_shutdown(&sess);
                kl_client_init(&client, &cfg);
                split = 1;
                fallback = 1;
                goto retry;
            }
            if (ev.status == KL_ERR_STREAM_ERROR)
                fprintf(stderr, "kinglet-bosh: stream error from server: %s\n", ev.condition);
            else if (ev.status == KL_ERR_AUTH)
                fprintf(stderr, "kinglet-bosh: authentication failed (%s)\n",
                        ev.condition[0] ? ev.condition : "no condition");
            else if (strcmp(kl_session_error_text(&sess), kl_strerror(ev.status)))
                fprintf(stderr, "kinglet-bosh: %s: %s\n", kl_strerror(ev.status), kl_session_error_text(&sess));
            else
                fprintf(stderr, "kinglet-bosh: %s%s%s\n", kl_strerror(ev.status),
                        ev.condition && ev.condition[0] ? ": " : "", ev.condition ? ev.condition : "");
            rc = kl_cli_exit_code(ev.status);
            break;
        }
    }
    if (cache_path && kl_client_stats(&client)->online_ms) {
        /* remember the path that worked (the engine sealed the rest) */
        cache.bosh_path = split ? KL_CACHE_BOSH_SPLIT : KL_CACHE_BOSH_ALL;
        kl_cli_hints_save(&hints, &cache);
    }
    if (stats)
        print_stats(split ? "split" : "all", fallback);
    kl_session_shutdown(&sess);
    return rc;
}
