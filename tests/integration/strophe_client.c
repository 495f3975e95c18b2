/*
 * strophe_client — the libstrophe baseline client for integration tests and
 * comparisons. Not part of kinglet.
 *
 *   strophe_client --jid JID --pass PASS [--host H] [--port P] [--cafile F]
 *                  [--direct-tls] [--to JID --send BODY] [--expect-body BODY]
 *                  [--ready-file F] [--no-presence] [--timeout S] [--verbose]
 *                  [--idle S] [--keepalive T I | --keepalive-default]
 *
 * Connects to H:P (default: the JID's domain, 5222; STARTTLS required, or
 * TLS from the first byte with --direct-tls), verifies the server chain
 * against --cafile and the name against the JID's domain, logs in, and
 * prints "online_ms=N jid=FULLJID" (N: from before the TCP connect until the
 * bound session). Then it sends initial presence (unless --no-presence) and
 * a ping to the server; once the ping answer is in, everything before it was
 * processed, so it prints "ready", creates --ready-file, and sends --send to
 * --to. With --expect-body it waits for a message with exactly that body and
 * prints "received from=JID body=BODY". Then it closes the stream and waits
 * for the server to close too. Exit 0 on success, 1 on any failure or on
 * --timeout (default 10 s) with one line on stderr, 2 on bad usage.
 *
 * For the idle benchmark (tests/bench/sm_bench.sh): --idle S stays online
 * and idle S seconds after "ready" (and after --expect-body, if given), then
 * closes; --timeout then counts from the start of that idle time.
 * --keepalive T I turns on libstrophe's keepalive with
 * xmpp_conn_set_keepalive(conn, T, I); --keepalive-default with the
 * library's own parameters (xmpp_sockopt_cb_keepalive as registered by
 * xmpp_conn_set_sockopt_callback). Either way the socket's options are read
 * back once it exists and printed as "sockopt SO_KEEPALIVE=.. TCP_KEEPIDLE=..
 * TCP_KEEPINTVL=.. TCP_KEEPCNT=.. TCP_USER_TIMEOUT=.." (libstrophe's
 * keepalive is TCP's: the kernel probes, nothing goes through TLS or XMPP).
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <strophe.h>

struct opts {
	const char *jid, *pass, *host, *cafile, *to, *send, *expect, *ready_file;
	unsigned short port;
	int direct_tls, no_presence, verbose;
	int ka_timeout, ka_interval, ka_default;
	double timeout_s, idle_s;
};

struct state {
	const struct opts *o;
	xmpp_ctx_t *ctx;
	int online, got_expected, done, failed;
	double t0, idle_until, deadline;
};

static const char *certfail_msg;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void fail(struct state *st, const char *msg)
{
	if (!st->failed) {
		st->failed = 1;
		fprintf(stderr, "strophe_client: %s\n", msg);
	}
	st->done = 1;
}

static int certfail(const xmpp_tlscert_t *cert, const char *const errormsg)
{
	(void)cert;
	certfail_msg = errormsg;
	return 0; /* never accept an unverified certificate */
}

static void finish(xmpp_conn_t *conn, struct state *st)
{
	if (st->o->expect && !st->got_expected)
		return;
	if (st->o->idle_s > 0) { /* --idle: the main loop closes later */
		st->idle_until = now_ms() + st->o->idle_s * 1e3;
		st->deadline = st->idle_until + st->o->timeout_s * 1e3;
		return;
	}
	xmpp_disconnect(conn);
}

/* --keepalive / --keepalive-default: apply libstrophe's keepalive callback,
 * then read the options back from the socket and print them. */
static int sockopt_report(xmpp_conn_t *conn, void *sock)
{
	int fd = *(int *)sock, ka = 0, idle = 0, intvl = 0, cnt = 0, uto = 0;
	socklen_t l;
	int rc = xmpp_sockopt_cb_keepalive(conn, sock);
	l = sizeof ka;
	getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, &l);
	l = sizeof idle;
	getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &l);
	l = sizeof intvl;
	getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, &l);
	l = sizeof cnt;
	getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, &l);
	l = sizeof uto;
	getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, &l);
	printf("sockopt SO_KEEPALIVE=%d TCP_KEEPIDLE=%d TCP_KEEPINTVL=%d TCP_KEEPCNT=%d TCP_USER_TIMEOUT=%d rc=%d\n",
	       ka, idle, intvl, cnt, uto, rc);
	fflush(stdout);
	return rc;
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *ud)
{
	struct state *st = ud;
	char *body = xmpp_message_get_body(stanza);
	const char *from = xmpp_stanza_get_from(stanza);
	if (!body)
		return 1;
	if (st->o->expect && !st->got_expected && strcmp(body, st->o->expect) == 0) {
		printf("received from=%s body=%s\n", from ? from : "", body);
		fflush(stdout);
		st->got_expected = 1;
		finish(conn, st);
	} else if (st->o->verbose) {
		fprintf(stderr, "strophe_client: other message from=%s body=%s\n",
			from ? from : "", body);
	}
	xmpp_free(st->ctx, body);
	return 1;
}

static int on_ping_result(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *ud)
{
	struct state *st = ud;
	const char *type = xmpp_stanza_get_type(stanza);
	if (!type || strcmp(type, "result") != 0) {
		fail(st, "ping to the server failed");
		xmpp_disconnect(conn);
		return 0;
	}
	printf("ready\n");
	fflush(stdout);
	if (st->o->ready_file) {
		FILE *f = fopen(st->o->ready_file, "w");
		if (f)
			fclose(f);
	}
	if (st->o->send) {
		xmpp_stanza_t *msg = xmpp_message_new(st->ctx, "chat", st->o->to, "m1");
		xmpp_message_set_body(msg, st->o->send);
		xmpp_send(conn, msg);
		xmpp_stanza_release(msg);
		printf("sent to=%s\n", st->o->to);
		fflush(stdout);
	}
	finish(conn, st);
	return 0;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t ev, int error,
		    xmpp_stream_error_t *se, void *ud)
{
	struct state *st = ud;
	char buf[256];

	if (ev == XMPP_CONN_CONNECT) {
		st->online = 1;
		printf("online_ms=%.0f jid=%s secured=%d\n", now_ms() - st->t0,
		       xmpp_conn_get_bound_jid(conn), xmpp_conn_is_secured(conn));
		fflush(stdout);
		xmpp_handler_add(conn, on_message, NULL, "message", NULL, st);
		if (!st->o->no_presence) {
			xmpp_stanza_t *pres = xmpp_presence_new(st->ctx);
			xmpp_send(conn, pres);
			xmpp_stanza_release(pres);
		}
		xmpp_stanza_t *iq = xmpp_iq_new(st->ctx, "get", "ping1");
		xmpp_stanza_t *ping = xmpp_stanza_new(st->ctx);
		xmpp_stanza_set_name(ping, "ping");
		xmpp_stanza_set_ns(ping, "urn:xmpp:ping");
		xmpp_stanza_add_child(iq, ping);
		xmpp_stanza_release(ping);
		/* the server: the JID's domain, without a resource (ejabberd
		 * answers a ping to domain/resource with item-not-found) */
		snprintf(buf, sizeof buf, "%.*s", (int)strcspn(strchr(st->o->jid, '@') + 1, "/"),
			 strchr(st->o->jid, '@') + 1);
		xmpp_stanza_set_to(iq, buf);
		xmpp_id_handler_add(conn, on_ping_result, "ping1", st);
		xmpp_send(conn, iq);
		xmpp_stanza_release(iq);
		return;
	}
	/* DISCONNECT or FAIL */
	if (!st->online) {
		if (certfail_msg)
			snprintf(buf, sizeof buf, "certificate rejected: %s", certfail_msg);
		else if (se)
			snprintf(buf, sizeof buf, "stream error %d%s%s before online",
				 (int)se->type, se->text ? ": " : "", se->text ? se->text : "");
		else
			snprintf(buf, sizeof buf, "disconnected before online (error %d; authentication failed or stream closed)", error);
		fail(st, buf);
	} else if (st->o->expect && !st->got_expected) {
		fail(st, "disconnected before the expected message arrived");
	} else if (st->idle_until > 0) {
		fail(st, "disconnected while idle (--idle)");
	}
	st->done = 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: strophe_client --jid JID --pass PASS [--host H] [--port P]\n"
		"  [--cafile F] [--direct-tls] [--to JID --send BODY] [--expect-body BODY]\n"
		"  [--ready-file F] [--no-presence] [--timeout S] [--verbose]\n"
		"  [--idle S] [--keepalive T I | --keepalive-default]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = { .timeout_s = 10 };
	/* libstrophe writes without MSG_NOSIGNAL: a write after the server
	 * closed (its stream-management <a/> racing the close) would kill the
	 * process with SIGPIPE, exit 141 and no message */
	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name, field) \
	if (strcmp(a, name) == 0) { if (!v) usage(); o.field = v; i++; continue; }
		ARG("--jid", jid) ARG("--pass", pass) ARG("--host", host)
		ARG("--cafile", cafile) ARG("--to", to) ARG("--send", send)
		ARG("--expect-body", expect) ARG("--ready-file", ready_file)
#undef ARG
		if (strcmp(a, "--port") == 0 && v) { o.port = (unsigned short)atoi(v); i++; continue; }
		if (strcmp(a, "--timeout") == 0 && v) { o.timeout_s = atof(v); i++; continue; }
		if (strcmp(a, "--idle") == 0 && v) { o.idle_s = atof(v); i++; continue; }
		if (strcmp(a, "--keepalive") == 0 && v && i + 2 < argc) {
			o.ka_timeout = atoi(v);
			o.ka_interval = atoi(argv[i + 2]);
			i += 2;
			continue;
		}
		if (strcmp(a, "--keepalive-default") == 0) { o.ka_default = 1; continue; }
		if (strcmp(a, "--direct-tls") == 0) { o.direct_tls = 1; continue; }
		if (strcmp(a, "--no-presence") == 0) { o.no_presence = 1; continue; }
		if (strcmp(a, "--verbose") == 0) { o.verbose = 1; continue; }
		usage();
	}
	if (!o.jid || !o.pass || !strchr(o.jid, '@') || (o.send && !o.to))
		usage();

	xmpp_initialize();
	xmpp_log_t *log = o.verbose ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG) : NULL;
	xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, log);
	xmpp_conn_t *conn = xmpp_conn_new(ctx);
	struct state st = { .o = &o, .ctx = ctx };

	long flags = o.direct_tls ? XMPP_CONN_FLAG_LEGACY_SSL : XMPP_CONN_FLAG_MANDATORY_TLS;
	if (xmpp_conn_set_flags(conn, flags) != 0) {
		fprintf(stderr, "strophe_client: cannot set connection flags\n");
		return 1;
	}
	xmpp_conn_set_jid(conn, o.jid);
	xmpp_conn_set_pass(conn, o.pass);
	if (o.cafile)
		xmpp_conn_set_cafile(conn, o.cafile);
	xmpp_conn_set_certfail_handler(conn, certfail);
	if (o.ka_timeout > 0) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
		xmpp_conn_set_keepalive(conn, o.ka_timeout, o.ka_interval);
#pragma GCC diagnostic pop
	}
	if (o.ka_timeout > 0 || o.ka_default) /* the same callback, and a report */
		xmpp_conn_set_sockopt_callback(conn, sockopt_report);

	st.t0 = now_ms();
	if (xmpp_connect_client(conn, o.host, o.port ? o.port : (o.direct_tls ? 5223 : 5222),
				on_conn, &st) != XMPP_EOK) {
		fprintf(stderr, "strophe_client: connect to %s failed\n", o.host ? o.host : "(domain)");
		return 1;
	}
	st.deadline = st.t0 + o.timeout_s * 1e3;
	while (!st.done) {
		if (st.idle_until > 0 && now_ms() >= st.idle_until) {
			st.idle_until = 0;
			xmpp_disconnect(conn);
		}
		if (now_ms() > st.deadline) {
			fail(&st, st.online ? "timeout waiting for the expected message"
					    : "timeout before online");
			break;
		}
		xmpp_run_once(ctx, 20);
	}
	xmpp_conn_release(conn);
	xmpp_ctx_free(ctx);
	xmpp_shutdown();
	return st.failed ? 1 : 0;
}
