// SPDX-License-Identifier: Apache-2.0
/*
 * The control socket's server: listening socket, clients, the poll() loop on the control
 * thread, greeting, framing and parsing of input, bounded output, events. Commands are in
 * commands.c. Everything client-related happens on the control thread only; other threads
 * reach it through the event queue and the stop request (c->lock + the wake eventfd).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/trace.h"
#include "vmm/control/internal.h"
#include "vmm/machine.h"

#define CONTROL_READ_CHUNK 4096
#define CONTROL_FLUSH_MS   1000 /* how long control_stop() waits for slow readers */
#define CONTROL_GREETING_FMT                                                                       \
	"{\"QMP\": {\"version\": {\"qemu\": {\"major\": %u, \"minor\": %u, "                       \
	"\"micro\": %u}, \"package\": \"vmig %s\"}, \"capabilities\": []}}"

#ifndef VMIG_VERSION
#define VMIG_VERSION "0.0.0"
#endif

int control_parse_address(const char *spec, const char **path)
{
	if (strncmp(spec, "unix:", 5) != 0 || spec[5] == 0) {
		log_error("--qmp: '%s' is not unix:PATH", spec);
		return -EINVAL;
	}
	if (strlen(spec + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		log_error("--qmp: socket path too long (at most %zu bytes)",
			  sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -ENAMETOOLONG;
	}
	*path = spec + 5;
	return 0;
}

/* Clients: output ----------------------------------------------------------------------- */

static void client_flush(struct control_client *cl)
{
	while (!cl->dead && cl->out_off < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				cl->dead = true; /* EPIPE, ECONNRESET: the reader is gone */
			return;
		}
		cl->out_off += (size_t)n;
	}
	if (cl->out_off == cl->out_len)
		cl->out_off = cl->out_len = 0;
}

/* Room for len more bytes, compacting first; false when over the per-client bound. */
static bool client_reserve(struct control_client *cl, size_t len)
{
	if (cl->out_len - cl->out_off + len > CONTROL_OUT_MAX)
		return false;
	if (cl->out_off) {
		memmove(cl->out, cl->out + cl->out_off, cl->out_len - cl->out_off);
		cl->out_len -= cl->out_off;
		cl->out_off = 0;
	}
	if (cl->out_len + len <= cl->out_cap)
		return true;
	size_t ncap = cl->out_cap ? cl->out_cap : 4096;
	while (ncap < cl->out_len + len)
		ncap *= 2;
	char *nb = realloc(cl->out, ncap);
	if (!nb)
		return false;
	cl->out = nb;
	cl->out_cap = ncap;
	return true;
}

bool control_client_send(struct control_client *cl, const char *text, size_t len)
{
	if (cl->dead)
		return false;
	if (!client_reserve(cl, len + 2)) {
		/* A client that does not read its replies must not make us hoard memory. */
		log_warn("control: client %u does not read its output; dropping it", cl->id);
		cl->dead = true;
		return false;
	}
	memcpy(cl->out + cl->out_len, text, len);
	memcpy(cl->out + cl->out_len + len, "\r\n", 2);
	cl->out_len += len + 2;
	client_flush(cl);
	return !cl->dead;
}

/* Clients: life cycle ------------------------------------------------------------------- */

static void client_close(struct control *c, unsigned slot)
{
	struct control_client *cl = c->clients[slot];

	if (!cl)
		return;
	if (frame_pending(&cl->in))
		TRACE(control_client_left_mid_message, "client %u", cl->id);
	close(cl->fd);
	frame_fini(&cl->in);
	free(cl->out);
	free(cl);
	c->clients[slot] = NULL;
}

static void client_greet(struct control_client *cl)
{
	unsigned major = 0, minor = 0, micro = 0;
	char text[256];

	sscanf(VMIG_VERSION, "%u.%u.%u", &major, &minor, &micro);
	int n =
	    snprintf(text, sizeof(text), CONTROL_GREETING_FMT, major, minor, micro, VMIG_VERSION);
	control_client_send(cl, text, (size_t)n);
}

/* Refuses a connection beyond the limit with one error line (best effort) and closes it. */
static void control_refuse(int fd)
{
	static const char busy[] = "{\"error\": {\"class\": \"GenericError\", \"desc\": "
				   "\"too many control clients\"}}\r\n";
	ssize_t n = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n;
	close(fd);
}

static void control_accept(struct control *c)
{
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	unsigned slot = 0;

	if (fd < 0)
		return; /* EAGAIN, or a client that already left: nothing to do */
	while (slot < CONTROL_MAX_CLIENTS && c->clients[slot])
		slot++;
	if (slot == CONTROL_MAX_CLIENTS) {
		log_warn("control: refusing a client: %d already connected", CONTROL_MAX_CLIENTS);
		control_refuse(fd);
		return;
	}
	struct control_client *cl = calloc(1, sizeof(*cl));
	if (!cl || frame_init(&cl->in, CONTROL_MSG_MAX) < 0) {
		free(cl);
		close(fd);
		return;
	}
	cl->fd = fd;
	cl->id = ++c->next_id;
	c->clients[slot] = cl;
	client_greet(cl);
}

/* Clients: input ------------------------------------------------------------------------ */

struct client_ctx {
	struct control *c;
	struct control_client *cl;
};

static bool client_send_error(struct control_client *cl, const char *desc)
{
	struct json_writer w;
	bool ok;

	json_writer_init(&w, 1024);
	json_write_begin_object(&w);
	json_write_key(&w, "error");
	json_write_begin_object(&w);
	json_write_key(&w, "class");
	json_write_string(&w, "GenericError");
	json_write_key(&w, "desc");
	json_write_string(&w, desc);
	json_write_end_object(&w);
	json_write_end_object(&w);
	ok = json_writer_error(&w) == 0 && control_client_send(cl, w.buf, w.len);
	json_writer_fini(&w);
	return ok;
}

/* One framed message: parse, dispatch, reply. Never called for a dead client. */
static bool client_message(void *opaque, const char *msg, size_t len)
{
	struct client_ctx *ctx = opaque;
	struct json_value *v;
	struct json_error err;
	char desc[160];

	if (!msg) {
		snprintf(desc, sizeof(desc), "JSON parse error: message exceeds %d bytes",
			 CONTROL_MSG_MAX);
		return client_send_error(ctx->cl, desc);
	}
	if (json_parse(msg, len, NULL, &v, &err) < 0) {
		snprintf(desc, sizeof(desc), "JSON parse error at byte %zu: %s", err.pos, err.msg);
		return client_send_error(ctx->cl, desc);
	}
	bool ok = control_dispatch(ctx->c, ctx->cl, v);
	json_free(v);
	return ok;
}

static void client_read(struct control *c, struct control_client *cl)
{
	char buf[CONTROL_READ_CHUNK];
	struct client_ctx ctx = {c, cl};
	ssize_t n = recv(cl->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		cl->dead = true;
		return;
	}
	frame_feed(&cl->in, buf, (size_t)n, client_message, &ctx);
}

/* Events ---------------------------------------------------------------------------------- */

static char *control_format_event(const char *name, const char *data_json, size_t *len)
{
	struct json_writer w;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	json_writer_init(&w, CONTROL_REPLY_MAX);
	json_write_begin_object(&w);
	json_write_key(&w, "event");
	json_write_string(&w, name);
	if (data_json) {
		json_write_key(&w, "data");
		json_write_raw(&w, data_json, strlen(data_json));
	}
	json_write_key(&w, "timestamp");
	json_write_begin_object(&w);
	json_write_key(&w, "seconds");
	json_write_int(&w, ts.tv_sec);
	json_write_key(&w, "microseconds");
	json_write_int(&w, ts.tv_nsec / 1000);
	json_write_end_object(&w);
	json_write_end_object(&w);
	if (json_writer_error(&w) < 0) {
		json_writer_fini(&w);
		return NULL;
	}
	return json_writer_take(&w, len);
}

void control_wake(struct control *c)
{
	uint64_t one = 1;
	ssize_t n = write(c->wake_fd, &one, sizeof(one));
	(void)n; /* an eventfd at its limit is still readable: the wake-up is not lost */
}

void control_emit_event(struct control *c, const char *name, const char *data_json)
{
	size_t len;
	char *text = control_format_event(name, data_json, &len);

	if (!text)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->nr_events < CONTROL_MAX_EVENTS) {
		c->events[c->nr_events++] = text;
		text = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (text) {
		log_warn("control: event queue full, %s dropped", name);
		free(text);
	}
	control_wake(c);
}

void control_send_events(struct control *c)
{
	char *events[CONTROL_MAX_EVENTS];
	unsigned n;

	pthread_mutex_lock(&c->lock);
	n = c->nr_events;
	memcpy(events, c->events, n * sizeof(events[0]));
	c->nr_events = 0;
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < n; i++) {
		for (unsigned s = 0; s < CONTROL_MAX_CLIENTS; s++) {
			struct control_client *cl = c->clients[s];
			if (cl && cl->negotiated && !cl->dead)
				control_client_send(cl, events[i], strlen(events[i]));
		}
		free(events[i]);
	}
}

/* Wake-up: sends the queued events. True if a stop was requested. */
static bool control_drain(struct control *c)
{
	uint64_t cnt;
	bool stop;

	if (read(c->wake_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_warn("control: eventfd read: %s", strerror(errno));
	control_send_events(c);
	control_migration_settle(c); /* may queue RESUME: after the MIGRATION event it follows */
	control_send_events(c);
	pthread_mutex_lock(&c->lock);
	stop = c->stop_req;
	pthread_mutex_unlock(&c->lock);
	return stop;
}

/* The loop ---------------------------------------------------------------------------------- */

/* pollfds: [0] wake, [1] listen, then one per client; slot_of maps them back. */
static nfds_t control_poll_setup(struct control *c, struct pollfd *pfd, unsigned *slot_of)
{
	nfds_t n = 2;

	pfd[0] = (struct pollfd){.fd = c->wake_fd, .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
	for (unsigned s = 0; s < CONTROL_MAX_CLIENTS; s++) {
		struct control_client *cl = c->clients[s];
		if (!cl)
			continue;
		pfd[n] = (struct pollfd){.fd = cl->fd, .events = POLLIN};
		if (cl->out_len > cl->out_off)
			pfd[n].events |= POLLOUT;
		slot_of[n++] = s;
	}
	return n;
}

static void control_reap(struct control *c)
{
	for (unsigned s = 0; s < CONTROL_MAX_CLIENTS; s++) {
		if (c->clients[s] && c->clients[s]->dead)
			client_close(c, s);
	}
}

static void control_service(struct control *c, struct pollfd *pfd, unsigned *slot_of, nfds_t n)
{
	for (nfds_t i = 2; i < n; i++) {
		struct control_client *cl = c->clients[slot_of[i]];
		if (!cl || cl->dead)
			continue;
		if (pfd[i].revents & POLLOUT)
			client_flush(cl);
		if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
			client_read(c, cl);
	}
	if (pfd[1].revents & POLLIN)
		control_accept(c);
	control_reap(c);
}

static bool control_output_pending(struct control *c)
{
	for (unsigned s = 0; s < CONTROL_MAX_CLIENTS; s++) {
		struct control_client *cl = c->clients[s];
		if (cl && !cl->dead && cl->out_len > cl->out_off)
			return true;
	}
	return false;
}

/* Last words (SHUTDOWN) to clients that read them within CONTROL_FLUSH_MS. */
static void control_final_flush(struct control *c)
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (control_output_pending(c)) {
		struct pollfd pfd[CONTROL_MAX_CLIENTS];
		unsigned slot_of[CONTROL_MAX_CLIENTS];
		nfds_t n = 0;

		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = CONTROL_FLUSH_MS - ((now.tv_sec - t0.tv_sec) * 1000 +
						(now.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			break;
		for (unsigned s = 0; s < CONTROL_MAX_CLIENTS; s++) {
			struct control_client *cl = c->clients[s];
			if (cl && !cl->dead && cl->out_len > cl->out_off) {
				pfd[n] = (struct pollfd){.fd = cl->fd, .events = POLLOUT};
				slot_of[n++] = s;
			}
		}
		if (poll(pfd, n, (int)left) <= 0)
			break;
		for (nfds_t i = 0; i < n; i++) {
			if (pfd[i].revents)
				client_flush(c->clients[slot_of[i]]);
		}
	}
}

/* SHUTDOWN's data: QMP's guest/reason, and vmig's own reason and exit status. */
static void control_shutdown_data(struct control *c, int exit_code, char *buf, size_t size)
{
	struct vm *vm = c->cfg.m->vm;
	enum vm_stop_reason reason;
	const char *qmp = "host-error", *mine = "error";
	bool guest = false;

	pthread_mutex_lock(&vm->lock);
	reason = vm->stop ? vm->reason : VM_STOP_NONE;
	pthread_mutex_unlock(&vm->lock);
	if (c->quit) {
		qmp = "host-qmp-quit", mine = "quit";
	} else if (reason == VM_STOP_GUEST_EXIT) {
		qmp = "guest-shutdown", mine = "guest-exit", guest = true;
	} else if (reason == VM_STOP_CRASH) {
		qmp = "guest-panic", mine = "crash", guest = true;
	} else if (reason == VM_STOP_REQUEST) {
		mine = exit_code == VMIG_EXIT_TIMEOUT ? "timeout" : "stop";
	}
	snprintf(buf, size,
		 "{\"guest\": %s, \"reason\": \"%s\", \"vmig-reason\": \"%s\", "
		 "\"vmig-exit-status\": %d}",
		 guest ? "true" : "false", qmp, mine, exit_code);
}

static void control_send_shutdown(struct control *c)
{
	char data[256];
	int code;

	pthread_mutex_lock(&c->lock);
	code = c->exit_code;
	pthread_mutex_unlock(&c->lock);
	control_shutdown_data(c, code, data, sizeof(data));
	control_emit_event(c, "SHUTDOWN", data);
	control_drain(c);
}

static void *control_thread(void *arg)
{
	struct control *c = arg;
	struct pollfd pfd[2 + CONTROL_MAX_CLIENTS];
	unsigned slot_of[2 + CONTROL_MAX_CLIENTS];

	for (;;) {
		nfds_t n = control_poll_setup(c, pfd, slot_of);
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("control: poll: %s", strerror(errno));
			break;
		}
		if ((pfd[0].revents & POLLIN) && control_drain(c))
			break;
		control_service(c, pfd, slot_of, n);
	}
	control_send_shutdown(c);
	control_final_flush(c);
	for (unsigned s = 0; s < CONTROL_MAX_CLIENTS; s++)
		client_close(c, s);
	return NULL;
}

/* Set up and tear down ------------------------------------------------------------------- */

static int control_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	/* Replace a socket left by an earlier run, never any other kind of file. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void control_free(struct control *c)
{
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->cfg.path);
	}
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	for (unsigned i = 0; i < c->nr_events; i++)
		free(c->events[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int control_start(const struct control_config *cfg, struct control **out)
{
	struct control *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	c->state = cfg->start_paused ? CONTROL_PRELAUNCH : CONTROL_RUNNING;
	c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&c->lock, NULL);
	c->listen_fd = control_listen(cfg->path);
	if (c->listen_fd < 0 || c->wake_fd < 0) {
		ret = c->listen_fd < 0 ? c->listen_fd : -errno;
		log_error("--qmp: cannot listen on %s: %s", cfg->path, strerror(-ret));
		c->listen_fd = -1;
		control_free(c);
		return ret;
	}
	ret = -pthread_create(&c->thread, NULL, control_thread, c);
	if (ret < 0) {
		control_free(c);
		return ret;
	}
	c->thread_live = true;
	*out = c;
	return 0;
}

void control_stop(struct control *c, int exit_code)
{
	if (!c)
		return;
	/* The thread sends SHUTDOWN itself: only it knows whether a client said quit. */
	pthread_mutex_lock(&c->lock);
	c->stop_req = true;
	c->exit_code = exit_code;
	pthread_mutex_unlock(&c->lock);
	control_wake(c);
	if (c->thread_live)
		pthread_join(c->thread, NULL);
	control_free(c);
}
